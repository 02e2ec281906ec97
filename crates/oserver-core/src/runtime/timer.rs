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
//! request, and nothing is allocated once the slots have grown.

use std::time::{Duration, Instant};

/// A connection's place in the wheel. Kept as its own field of the
/// connection so it can be armed while the connection's state is borrowed.
#[derive(Debug)]
pub(crate) struct Timer {
    /// When the current state's timeout fires.
    pub deadline: Instant,
    /// The tick this connection is filed under, if any.
    tick: Option<u64>,
    /// Tells this connection from a later one with the same slab key.
    generation: u32,
}

impl Timer {
    pub(crate) fn new(generation: u32, now: Instant) -> Timer {
        Timer { deadline: now, tick: None, generation }
    }
}

/// Slots in the wheel: one second each. Deadlines further out than this land
/// in a slot that comes up early and are put back; 64 s covers every default
/// timeout in one lap.
const SLOTS: usize = 64;

/// An entry: connection key, its generation (slab keys are reused), and the
/// tick it was filed for (a connection filed again earlier leaves its old
/// entry behind; the tick tells them apart).
type Entry = (usize, u32, u64);

/// Where the wheel finds a connection's timer by key.
pub(crate) trait Timers {
    fn timer(&mut self, k: usize) -> Option<&mut Timer>;
}

pub(crate) struct Wheel {
    slots: Vec<Vec<Entry>>,
    origin: Instant,
    /// The last tick whose slot was processed.
    done: u64,
}

impl Wheel {
    pub(crate) fn new(now: Instant) -> Wheel {
        Wheel { slots: (0..SLOTS).map(|_| Vec::new()).collect(), origin: now, done: 0 }
    }

    /// The first tick at or after `t` (ticks are whole seconds from origin).
    fn tick_of(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.origin);
        d.as_secs() + u64::from(d.subsec_nanos() > 0)
    }

    /// When tick `tick` begins.
    fn time_of(&self, tick: u64) -> Instant {
        self.origin + Duration::from_secs(tick)
    }

    /// Set connection `k`'s deadline, filing it earlier in the wheel if the
    /// deadline moved before the slot it sits in.
    pub(crate) fn arm(&mut self, k: usize, t: &mut Timer, deadline: Instant) {
        t.deadline = deadline;
        let tick = self.tick_of(deadline).max(self.done + 1);
        if t.tick.is_some_and(|filed| filed <= tick) {
            return;
        }
        t.tick = Some(tick);
        self.slots[(tick % SLOTS as u64) as usize].push((k, t.generation, tick));
    }

    /// When the next slot is due (the poll timeout is at most this far away).
    pub(crate) fn next_due(&self) -> Instant {
        self.time_of(self.done + 1)
    }

    /// Process every slot due by `now`: connections whose deadline has passed
    /// go into `expired`; those whose deadline moved later are filed again.
    pub(crate) fn expire(&mut self, now: Instant, conns: &mut impl Timers, expired: &mut Vec<usize>) {
        // Every tick that has begun by `now`.
        let last = now.saturating_duration_since(self.origin).as_secs();
        while self.done < last {
            self.done += 1;
            let tick = self.done;
            let slot = (tick % SLOTS as u64) as usize;
            let mut entries = std::mem::take(&mut self.slots[slot]);
            for (k, generation, filed) in entries.drain(..) {
                if filed != tick {
                    // A later lap's entry: keep it for then.
                    self.slots[slot].push((k, generation, filed));
                    continue;
                }
                let Some(t) = conns.timer(k) else { continue };
                if t.generation != generation || t.tick != Some(tick) {
                    continue; // closed and reused, or filed again earlier
                }
                t.tick = None;
                if t.deadline <= now {
                    expired.push(k);
                } else {
                    let d = t.deadline;
                    self.arm(k, t, d);
                }
            }
            // Give the (now empty) buffer back so the slot keeps its capacity.
            if self.slots[slot].is_empty() {
                self.slots[slot] = entries;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Timers for Vec<Option<Timer>> {
        fn timer(&mut self, k: usize) -> Option<&mut Timer> {
            self.get_mut(k).and_then(Option::as_mut)
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Run the wheel to `at` seconds after `t0` and return who expired.
    fn run(w: &mut Wheel, timers: &mut Vec<Option<Timer>>, t0: Instant, at: f64) -> Vec<usize> {
        let mut out = Vec::new();
        w.expire(t0 + secs(at), timers, &mut out);
        out.sort();
        out
    }

    #[test]
    fn fires_within_a_second_after_the_deadline() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let mut timers: Vec<Option<Timer>> = (0..3).map(|g| Some(Timer::new(g, t0))).collect();
        for (k, d) in [(0, 1.5), (1, 3.0), (2, 10.0)] {
            let mut t = timers[k].take().unwrap();
            w.arm(k, &mut t, t0 + secs(d));
            timers[k] = Some(t);
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
        let mut timers = vec![Some(Timer::new(1, t0)), Some(Timer::new(2, t0))];
        let (a, b) = timers.split_at_mut(1);
        let (ta, tb) = (a[0].as_mut().unwrap(), b[0].as_mut().unwrap());
        w.arm(0, ta, t0 + secs(2.0));
        // Moved later many times (keep-alive traffic): no new entries needed.
        for i in 1..100 {
            w.arm(0, ta, t0 + secs(2.0 + f64::from(i) * 0.05));
        }
        w.arm(1, tb, t0 + secs(30.0));
        w.arm(1, tb, t0 + secs(1.0)); // moved earlier: must fire at 1 s
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
        let mut timers = vec![Some(Timer::new(1, t0))];
        w.arm(0, timers[0].as_mut().unwrap(), t0 + secs(1.0));
        // Closed, and the slot reused by a new connection with a later deadline.
        timers[0] = Some(Timer::new(2, t0));
        w.arm(0, timers[0].as_mut().unwrap(), t0 + secs(5.0));
        assert_eq!(run(&mut w, &mut timers, t0, 1.5), Vec::<usize>::new());
        assert_eq!(run(&mut w, &mut timers, t0, 5.0), vec![0]);
    }

    #[test]
    fn deadlines_beyond_one_lap() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let mut timers = vec![Some(Timer::new(1, t0))];
        w.arm(0, timers[0].as_mut().unwrap(), t0 + secs(100.0));
        assert_eq!(run(&mut w, &mut timers, t0, 99.0), Vec::<usize>::new());
        assert_eq!(run(&mut w, &mut timers, t0, 100.0), vec![0]);
    }
}
