//! Where event loops run: pinning a thread to one CPU, `SCHED_BATCH`, and
//! steering each new connection to the loop on the CPU where the kernel
//! handled its SYN. The mechanism only; when to use it is the caller's
//! policy ([`ServerBuilder::cpu_placement`](crate::ServerBuilder::cpu_placement)
//! in process, the `oserver` command's `--cpu-affinity` across worker
//! processes). Linux only, like the rest of the crate.
//!
//! Pinning alone keeps a loop's caches warm and stops the scheduler from
//! moving it, but the SO_REUSEPORT hash still hands half the connections to
//! a loop on another CPU, so every packet of those crosses CPUs: a wakeup
//! by inter-processor interrupt and cold cache lines. Steering fixes that. A
//! classic BPF program on the reuseport group (`SO_ATTACH_REUSEPORT_CBPF`)
//! reads the CPU the SYN is processed on (`SKF_AD_CPU`: the CPU the NIC's
//! receive queue interrupts, or on loopback the client's own) and answers the
//! index of the socket whose loop is pinned there ([`steer`]).
//! Sockets join the group in the order they are bound, so index = slot, as
//! long as every socket stays open. A CPU with no loop gets an out-of-range
//! index, and the kernel then falls back to its hash. Later, idle
//! connections whose client moved to another CPU are handed to the loop
//! there ([`Mailboxes`], [`Handoff`]).
//!
//! The risk is the caller's to weigh: steering follows the CPU that
//! processed the SYN, so where one CPU processes every packet (a
//! single-queue NIC without RPS) every connection goes to one loop. On
//! loopback the packets are processed on the client's CPU, wherever it
//! runs; a NIC with several receive queues, or RPS, spreads them.
//!
//! `SCHED_BATCH` ([`batch`]): a thread woken by a new request then does not
//! preempt the task running on its CPU; it runs when that task blocks or its
//! slice ends, and finds several requests waiting, which it answers from one
//! `epoll_wait`. Fewer context switches for the same work when CPUs are
//! shared (with other services, or a load generator); the price is that a
//! loop sharing a busy CPU answers its first request a little later.

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;

use super::handoff::Handoff;

/// The CPUs this thread may run on (its affinity mask: a container's cpuset
/// or `taskset` narrow it), in ascending order.
///
/// # Errors
///
/// sched_getaffinity(2) failed.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect())
    }
}

/// Pin the calling thread to `cpu`. Threads it starts later inherit the
/// mask, so a process pinned before it starts any thread runs wholly there.
///
/// # Errors
///
/// `cpu` is out of range, or sched_setaffinity(2) failed (a CPU outside
/// the cpuset, say).
pub fn pin(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("cpu {cpu} out of range")));
    }
    // SAFETY: as above; `cpu` is below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Put the calling thread (and the threads it starts later) under
/// `SCHED_BATCH`, which any user may choose for their own threads.
///
/// # Errors
///
/// sched_setscheduler(2) failed.
pub fn batch() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscall on this thread with a valid parameter block.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter { code: code as u16, jt: 0, jf: 0, k }
}

fn jump_eq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16, jt, jf, k }
}

/// The steering program for `cpus` (the socket of slot `i` is served on
/// `cpus[i]`):
///
/// ```text
/// A = current cpu
/// if A == cpus[0] return 0
/// if A == cpus[1] return 1
/// ...
/// return u32::MAX            (no loop here: the kernel hashes)
/// ```
fn program(cpus: &[usize]) -> Vec<libc::sock_filter> {
    let mut code = Vec::with_capacity(2 + 2 * cpus.len());
    code.push(stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, (libc::SKF_AD_OFF + libc::SKF_AD_CPU) as u32));
    for (slot, &cpu) in cpus.iter().enumerate() {
        // On a match fall through to the return below; otherwise skip it.
        code.push(jump_eq(cpu as u32, 0, 1));
        code.push(stmt(libc::BPF_RET | libc::BPF_K, slot as u32));
    }
    code.push(stmt(libc::BPF_RET | libc::BPF_K, u32::MAX));
    code
}

/// Attach the steering program for `cpus` to the SO_REUSEPORT group that
/// `listener` belongs to (one socket of the group is enough). The group's
/// sockets must have been bound in slot order, and stay open.
///
/// # Errors
///
/// Too many CPUs for one classic BPF program, or the kernel refused it.
pub fn steer(listener: &TcpListener, cpus: &[usize]) -> io::Result<()> {
    let mut code = program(cpus);
    // A classic BPF program has at most BPF_MAXINSNS (4096) instructions.
    let len = u16::try_from(code.len())
        .ok()
        .filter(|&n| n <= 4096)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "too many workers to steer"))?;
    let prog = libc::sock_fprog { len, filter: code.as_mut_ptr() };
    // SAFETY: `prog` points at `code`, which outlives the call; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&prog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Where each slot (an event loop, or a worker process with one) runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// The CPU of slot `i` is `cpus[i]`.
    pub cpus: Vec<usize>,
    /// Every slot has a CPU of its own, so connections can be steered.
    pub steer: bool,
}

impl Plan {
    /// Slot `i` on the `i`-th allowed CPU, wrapping around when there are
    /// more slots than CPUs (then some share a CPU and nothing is steered:
    /// the kernel's hash spreads connections as without placement).
    pub fn new(slots: usize, allowed: &[usize]) -> Plan {
        let cpus = if allowed.is_empty() {
            Vec::new()
        } else {
            (0..slots).map(|i| allowed[i % allowed.len()]).collect()
        };
        let steer = !cpus.is_empty() && slots <= allowed.len();
        Plan { cpus, steer }
    }

    /// The CPU to pin `slot` to, if any.
    pub fn cpu(&self, slot: usize) -> Option<usize> {
        self.cpus.get(slot).copied()
    }
}

/// One inbox per slot of a [`Plan`], through which the other slots hand it
/// connections whose packets have come to arrive on its CPU ([`Handoff`]).
/// Steering at the SYN decides where a connection starts; this follows a
/// client whose thread the scheduler later moves to another CPU. Whoever
/// holds the set holds every inbox open: a prefork master keeps it for its
/// whole life, so what is in flight to a dead worker waits for its
/// replacement.
#[derive(Debug)]
pub struct Mailboxes {
    /// Per slot: (receiving end, sending end).
    pairs: Vec<(UnixDatagram, UnixDatagram)>,
    cpus: Vec<usize>,
}

impl Mailboxes {
    /// One inbox per slot, slot `i` on `cpus[i]` (one CPU each).
    ///
    /// # Errors
    ///
    /// socketpair(2) failed (out of descriptors).
    pub fn new(cpus: &[usize]) -> io::Result<Mailboxes> {
        let pairs = cpus.iter().map(|_| UnixDatagram::pair()).collect::<io::Result<_>>()?;
        Ok(Mailboxes { pairs, cpus: cpus.to_vec() })
    }

    /// The handoff of the loop in `slot`: its own inbox and the other
    /// slots' senders (new descriptors of them; the set keeps its own).
    ///
    /// # Errors
    ///
    /// No such slot, or duplicating a descriptor failed.
    pub fn handoff(&self, slot: usize) -> io::Result<Handoff> {
        let (rx, _) =
            self.pairs.get(slot).ok_or_else(|| io::Error::other(format!("no inbox for slot {slot}")))?;
        let mut peers = Vec::with_capacity(self.pairs.len().saturating_sub(1));
        for (i, ((_, tx), &cpu)) in self.pairs.iter().zip(&self.cpus).enumerate() {
            if i != slot {
                peers.push((cpu, tx.try_clone()?));
            }
        }
        Handoff::new(self.cpus[slot], rx.try_clone()?, peers)
    }

    /// As [`handoff`](Self::handoff), and close the rest of the set: what a
    /// forked worker keeps of its master's set.
    ///
    /// # Errors
    ///
    /// As [`handoff`](Self::handoff).
    pub fn into_handoff(self, slot: usize) -> io::Result<Handoff> {
        self.handoff(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_one_cpu_each_when_there_are_enough() {
        let p = Plan::new(2, &[0, 1, 2, 3]);
        assert_eq!(p.cpus, vec![0, 1]);
        assert!(p.steer);
        // A narrowed mask (taskset -c 4,6) is followed, not CPU numbers from 0.
        let p = Plan::new(2, &[4, 6]);
        assert_eq!(p.cpus, vec![4, 6]);
        assert!(p.steer);
        assert_eq!(p.cpu(1), Some(6));
        assert_eq!(p.cpu(2), None);
    }

    #[test]
    fn plan_wraps_and_does_not_steer_with_more_slots_than_cpus() {
        let p = Plan::new(5, &[2, 3]);
        assert_eq!(p.cpus, vec![2, 3, 2, 3, 2]);
        assert!(!p.steer);
        assert_eq!(Plan::new(3, &[]), Plan { cpus: vec![], steer: false });
    }

    /// Run the program as the kernel would, for a given current CPU.
    fn run(code: &[libc::sock_filter], cpu: u32) -> u32 {
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = code[pc];
            let class = u32::from(i.code) & 0x07;
            match class {
                c if c == libc::BPF_LD => {
                    assert_eq!(i.k, (libc::SKF_AD_OFF + libc::SKF_AD_CPU) as u32);
                    a = cpu;
                    pc += 1;
                }
                c if c == libc::BPF_JMP => {
                    pc += 1 + usize::from(if a == i.k { i.jt } else { i.jf });
                }
                c if c == libc::BPF_RET => return i.k,
                other => panic!("unexpected instruction class {other}"),
            }
        }
    }

    #[test]
    fn program_maps_each_cpu_to_its_slot_and_others_out_of_range() {
        let code = program(&[4, 6, 9]);
        assert_eq!(code.len(), 2 + 2 * 3);
        assert_eq!(run(&code, 4), 0);
        assert_eq!(run(&code, 6), 1);
        assert_eq!(run(&code, 9), 2);
        for cpu in [0, 5, 7, 8, 10] {
            assert_eq!(run(&code, cpu), u32::MAX, "cpu {cpu}");
        }
    }

    #[test]
    fn steer_attaches_to_a_reuseport_group() {
        let l = crate::bind_listener("127.0.0.1:0".parse().unwrap(), true).unwrap();
        steer(&l, &allowed_cpus().unwrap()).unwrap();
    }

    #[test]
    fn batch_sets_the_policy_of_this_thread() {
        // A thread of its own, so the test runner's threads keep their policy.
        let policy = std::thread::spawn(|| {
            batch().unwrap();
            // SAFETY: plain syscall.
            unsafe { libc::sched_getscheduler(0) }
        })
        .join()
        .unwrap();
        assert_eq!(policy, libc::SCHED_BATCH);
    }

    #[test]
    fn pin_narrows_this_thread_only() {
        let allowed = allowed_cpus().unwrap();
        let last = *allowed.last().unwrap();
        let inside = std::thread::spawn(move || {
            pin(last).unwrap();
            allowed_cpus().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(inside, vec![last]);
        assert_eq!(allowed_cpus().unwrap(), allowed, "the test thread keeps its mask");
        assert!(pin(libc::CPU_SETSIZE as usize).is_err());
    }

    #[test]
    fn allowed_cpus_is_sorted_and_not_empty() {
        let cpus = allowed_cpus().unwrap();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn mailboxes_give_each_slot_its_inbox_and_the_others_senders() {
        let m = Mailboxes::new(&[4, 6, 9]).unwrap();
        let h = m.handoff(1).unwrap();
        assert!(h.peer_for(6).is_none(), "not to itself");
        assert!(h.peer_for(4).is_some() && h.peer_for(9).is_some());
        assert!(h.peer_for(5).is_none(), "no loop there");
        // Slot 0's sender reaches slot 0's inbox.
        let h0 = m.handoff(0).unwrap();
        h.peer_for(4).unwrap().send(b"x").unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(h0.inbox().recv(&mut buf).unwrap(), 1);
        assert!(m.handoff(3).is_err());
        assert!(m.into_handoff(2).is_ok());
    }
}
