//! Connection timeouts: a hashed timing wheel with one-second slots, armed
//! lazily.
//!
//! Every connection has one deadline (header, keep-alive, send or linger
//! timeout, whichever its state is in). Deadlines move on every request, so
//! the wheel is not told about each move: a connection sits in the slot of
//! the earliest deadline it has had since it was last checked, and when that
//! slot comes up, a connection whose deadline has meanwhile moved later is
//! simply put into the slot of its new deadline. Only a deadline that moves
//! *earlier* than the slot it sits in costs an insertion. A busy keep-alive
//! connection is thus looked at about once per timeout period, not once per
//! request, and nothing is allocated once the slots have grown. A slot's
//! buffer goes back to a small pool when its second has passed and a slot
//! that starts filling takes one from there, so only the slots of the next
//! few seconds hold buffers (not all 64), each no bigger than twice what it
//! last held.

use std::time::{Duration, Instant};

/// A connection's place in the wheel. The deadline itself is the
/// connection's (see `Timers`); this is only where it is filed, kept small
/// because every open connection has one.
#[derive(Debug)]
pub(crate) struct Timer {
    /// The tick this connection is filed under; 0 when it is not filed
    /// (ticks filed are always at least 1). Ticks are seconds since the
    /// wheel started: 32 bits last 136 years.
    tick: u32,
    /// Tells this connection from a later one with the same slab key.
    generation: u32,
}

impl Timer {
    pub(crate) fn new(generation: u32) -> Timer {
        Timer { tick: 0, generation }
    }
}

/// Slots in the wheel: one second each. Deadlines further out than this land
/// in a slot that comes up early and are put back; 64 s covers every default
/// timeout in one lap.
const SLOTS: usize = 64;

/// Entries a slot keeps room for however few it held (4 KiB): below this,
/// letting go of a buffer would only mean growing it again.
const SLOT_FLOOR: usize = 256;

/// Emptied buffers the pool keeps. A slot comes up and one starts filling
/// each second, so one or two are in use at a time; more only after a
/// deadline moved earlier than the slots in between.
const SPARE_BUFFERS: usize = 4;

/// An entry: connection key, its generation (slab keys are reused), and the
/// tick it was filed for (a connection filed again earlier leaves its old
/// entry behind; the tick tells them apart).
type Entry = (usize, u32, u32);

/// Where the wheel finds a connection by key: its timer and its current
/// deadline.
pub(crate) trait Timers {
    fn timer(&mut self, k: usize) -> Option<(&mut Timer, Instant)>;
}

pub(crate) struct Wheel {
    slots: Vec<Vec<Entry>>,
    /// Emptied slots' buffers, for the next slots to fill.
    spare: Vec<Vec<Entry>>,
    origin: Instant,
    /// The last tick whose slot was processed.
    done: u32,
}

impl Wheel {
    pub(crate) fn new(now: Instant) -> Wheel {
        Wheel { slots: (0..SLOTS).map(|_| Vec::new()).collect(), spare: Vec::new(), origin: now, done: 0 }
    }

    /// The first tick at or after `t` (ticks are whole seconds from origin).
    fn tick_of(&self, t: Instant) -> u32 {
        let d = t.saturating_duration_since(self.origin);
        let tick = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        u32::try_from(tick).unwrap_or(u32::MAX)
    }

    /// When tick `tick` begins.
    fn time_of(&self, tick: u32) -> Instant {
        self.origin + Duration::from_secs(u64::from(tick))
    }

    /// Connection `k`'s deadline is now `deadline`: file it earlier in the
    /// wheel if the deadline moved before the slot it sits in.
    pub(crate) fn arm(&mut self, k: usize, t: &mut Timer, deadline: Instant) {
        let tick = self.tick_of(deadline).max(self.done + 1);
        if t.tick != 0 && t.tick <= tick {
            return;
        }
        t.tick = tick;
        let slot = &mut self.slots[tick as usize % SLOTS];
        if slot.capacity() == 0 {
            if let Some(buffer) = self.spare.pop() {
                *slot = buffer;
            }
        }
        slot.push((k, t.generation, tick));
    }

    /// When the next slot is due (the poll timeout is at most this far away).
    pub(crate) fn next_due(&self) -> Instant {
        self.time_of(self.done + 1)
    }

    /// Process every slot due by `now`: connections whose deadline has passed
    /// go into `expired`; those whose deadline moved later are filed again.
    pub(crate) fn expire(&mut self, now: Instant, conns: &mut impl Timers, expired: &mut Vec<usize>) {
        // Every tick that has begun by `now`.
        let last = u32::try_from(now.saturating_duration_since(self.origin).as_secs()).unwrap_or(u32::MAX);
        while self.done < last {
            self.done += 1;
            let tick = self.done;
            let slot = tick as usize % SLOTS;
            let mut entries = std::mem::take(&mut self.slots[slot]);
            let held = entries.len();
            for (k, generation, filed) in entries.drain(..) {
                if filed != tick {
                    // A later lap's entry: keep it for then.
                    self.slots[slot].push((k, generation, filed));
                    continue;
                }
                let Some((t, deadline)) = conns.timer(k) else { continue };
                if t.generation != generation || t.tick != tick {
                    continue; // closed and reused, or filed again earlier
                }
                t.tick = 0;
                if deadline <= now {
                    expired.push(k);
                } else {
                    self.arm(k, t, deadline);
                }
            }
            // The (now empty) buffer goes to the pool, no bigger than twice
            // what it held this lap. A slot holds every connection filed in
            // its second, closed or not: 40,000 short connections a second
            // make it hundreds of KiB, and 64 slots that each kept their
            // largest second held tens of MiB for good (6 rounds of
            // benches/load/soak.py grew the workers by 7.2 MiB).
            if self.slots[slot].is_empty() && self.spare.len() < SPARE_BUFFERS {
                let keep = held.max(SLOT_FLOOR);
                if entries.capacity() > 2 * keep {
                    entries.shrink_to(keep);
                }
                self.spare.push(entries);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections as the tests keep them: a timer and a deadline each.
    type Conns = Vec<Option<(Timer, Instant)>>;

    impl Timers for Conns {
        fn timer(&mut self, k: usize) -> Option<(&mut Timer, Instant)> {
            self.get_mut(k).and_then(Option::as_mut).map(|(t, d)| (t, *d))
        }
    }

    /// Give connection `k` the deadline `d`, as the event loop does.
    fn arm(w: &mut Wheel, conns: &mut Conns, k: usize, d: Instant) {
        let (t, deadline) = conns[k].as_mut().unwrap();
        *deadline = d;
        w.arm(k, t, d);
    }

    fn fresh(generation: u32, t0: Instant) -> Option<(Timer, Instant)> {
        Some((Timer::new(generation), t0))
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Run the wheel to `at` seconds after `t0` and return who expired.
    fn run(w: &mut Wheel, timers: &mut Conns, t0: Instant, at: f64) -> Vec<usize> {
        let mut out = Vec::new();
        w.expire(t0 + secs(at), timers, &mut out);
        out.sort();
        out
    }

    #[test]
    fn fires_within_a_second_after_the_deadline() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let mut timers: Conns = (0..3).map(|g| fresh(g, t0)).collect();
        for (k, d) in [(0, 1.5), (1, 3.0), (2, 10.0)] {
            arm(&mut w, &mut timers, k, t0 + secs(d));
        }
        assert_eq!(run(&mut w, &mut timers, t0, 1.4), Vec::<usize>::new());
        assert_eq!(run(&mut w, &mut timers, t0, 2.0), vec![0]);
        assert_eq!(run(&mut w, &mut timers, t0, 2.9), Vec::<usize>::new());
        assert_eq!(run(&mut w, &mut timers, t0, 3.0), vec![1]);
        assert_eq!(run(&mut w, &mut timers, t0, 9.5), Vec::<usize>::new());
        assert_eq!(run(&mut w, &mut timers, t0, 10.2), vec![2]);
    }

    #[test]
    fn a_deadline_moved_later_is_refiled_and_one_moved_earlier_fires_early() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let mut timers = vec![fresh(1, t0), fresh(2, t0)];
        arm(&mut w, &mut timers, 0, t0 + secs(2.0));
        // Moved later many times (keep-alive traffic): no new entries needed.
        for i in 1..100 {
            arm(&mut w, &mut timers, 0, t0 + secs(2.0 + f64::from(i) * 0.05));
        }
        assert_eq!(w.slots.iter().map(Vec::len).sum::<usize>(), 1);
        arm(&mut w, &mut timers, 1, t0 + secs(30.0));
        arm(&mut w, &mut timers, 1, t0 + secs(1.0)); // moved earlier: must fire at 1 s
        assert_eq!(run(&mut w, &mut timers, t0, 1.0), vec![1]);
        // 0 is looked at when its first slot comes up, and filed again.
        assert_eq!(run(&mut w, &mut timers, t0, 2.0), Vec::<usize>::new());
        // Its last deadline is 6.95 s: due at the 7 s tick, not before.
        assert_eq!(run(&mut w, &mut timers, t0, 6.9), Vec::<usize>::new());
        assert_eq!(run(&mut w, &mut timers, t0, 7.0), vec![0]);
    }

    #[test]
    fn a_reused_key_is_not_confused_with_the_closed_connection() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let mut timers = vec![fresh(1, t0)];
        arm(&mut w, &mut timers, 0, t0 + secs(1.0));
        // Closed, and the slot reused by a new connection with a later deadline.
        timers[0] = fresh(2, t0);
        arm(&mut w, &mut timers, 0, t0 + secs(5.0));
        assert_eq!(run(&mut w, &mut timers, t0, 1.5), Vec::<usize>::new());
        assert_eq!(run(&mut w, &mut timers, t0, 5.0), vec![0]);
    }

    /// Entries the wheel has room for, in its slots and its pool.
    fn room(w: &Wheel) -> usize {
        w.slots.iter().chain(&w.spare).map(Vec::capacity).sum()
    }

    #[test]
    fn a_burst_is_let_go_once_it_has_passed() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        // 10,000 connections filed in one second, closed before it comes up.
        let mut timers: Conns = (0..10_000).map(|g| fresh(g, t0)).collect();
        for k in 0..10_000 {
            arm(&mut w, &mut timers, k, t0 + secs(1.0));
        }
        timers.iter_mut().for_each(|t| *t = None);
        assert_eq!(run(&mut w, &mut timers, t0, 1.0), Vec::<usize>::new());
        // It held 10,000 this lap: the pool keeps room for them.
        assert!(room(&w) >= 10_000);
        // Then a quiet second: down to the floor.
        timers.push(fresh(1, t0));
        arm(&mut w, &mut timers, 10_000, t0 + secs(30.0));
        assert_eq!(run(&mut w, &mut timers, t0, 30.0), vec![10_000]);
        assert!(room(&w) <= 2 * SLOT_FLOOR, "{}", room(&w));
    }

    #[test]
    fn a_steady_stream_of_connections_fills_the_next_seconds_slots_only() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let mut timers: Conns = Vec::new();
        // 500 short connections a second, each filed 10 s ahead and closed
        // at once.
        let mut seconds = |from: u32, to: u32, w: &mut Wheel| {
            for second in from..to {
                for _ in 0..500 {
                    timers.push(fresh(second, t0));
                    let k = timers.len() - 1;
                    arm(w, &mut timers, k, t0 + secs(f64::from(second) + 10.0));
                    timers[k] = None;
                }
                run(w, &mut timers, t0, f64::from(second));
            }
        };
        // Three laps: eleven slots in use and a spare or two, not all 64.
        seconds(0, 200, &mut w);
        assert!(room(&w) <= 16 * 512, "room for {} entries", room(&w));
        // A second's worth is not allocated again every second either.
        let before = room(&w);
        seconds(200, 210, &mut w);
        assert_eq!(room(&w), before);
    }

    #[test]
    fn deadlines_beyond_one_lap() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let mut timers = vec![fresh(1, t0)];
        arm(&mut w, &mut timers, 0, t0 + secs(100.0));
        assert_eq!(run(&mut w, &mut timers, t0, 99.0), Vec::<usize>::new());
        assert_eq!(run(&mut w, &mut timers, t0, 100.0), vec![0]);
    }
}
