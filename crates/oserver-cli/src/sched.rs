//! Where and how the workers run: `--cpu-affinity` and `--sched-batch`.
//!
//! `--cpu-affinity`: each worker stays on one CPU, and each new connection
//! goes to the worker on the CPU where the kernel handled its SYN.
//!
//! Pinning alone keeps a worker's caches warm and stops the scheduler from
//! moving it, but the SO_REUSEPORT hash still hands half the connections to
//! a worker on another CPU, so every packet of those crosses CPUs: a wakeup
//! by inter-processor interrupt and cold cache lines. Steering fixes that. A
//! classic BPF program on the reuseport group (`SO_ATTACH_REUSEPORT_CBPF`)
//! reads the CPU the SYN is processed on (`SKF_AD_CPU`: the CPU the NIC's
//! receive queue interrupts, or on loopback the client's own) and answers the
//! index of the socket whose worker is pinned there. Sockets join the group
//! in the order they are bound, so index = slot, and the master holds every
//! socket for its whole life, so the indexes never shift. A CPU with no
//! worker gets an out-of-range index, and the kernel then falls back to its
//! hash. Later, idle connections whose client moved to another CPU are handed
//! to the worker there (`Mailboxes` below, `oserver_core::Handoff`).
//!
//! On by default only where it cannot concentrate the load (see
//! [`decide`]): with as many workers as CPUs, and when the packets of the
//! listening address are processed on every CPU. Steering follows the CPU
//! that processed the SYN, so where one CPU processes every packet (a
//! single-queue NIC without RPS), every connection would go to one worker.
//! On loopback the packets are processed on the client's CPU, wherever it
//! runs; a NIC with several receive queues, or RPS, spreads them.
//! Elsewhere it is off, as nginx's `worker_cpu_affinity` is, with one info
//! line saying why; `--cpu-affinity=on|off` forces either way.
//!
//! `--sched-batch`: the workers run under `SCHED_BATCH`. A worker woken by a
//! new request then does not preempt the task running on its CPU; it runs
//! when that task blocks or its slice ends, and finds several requests
//! waiting, which it answers from one `epoll_wait`. Fewer context switches
//! for the same work, so more throughput when the CPUs are shared (with other
//! services, or with a load generator); the price is that a worker sharing a
//! busy CPU answers its first request a little later. By default it goes
//! with the placement: on when the workers are placed.

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;

use oserver_core::Handoff;

use crate::args::When;

/// A network interface, as far as the placement decision cares: whether the
/// kernel spreads its incoming packets over CPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    /// Its name (`eth0`).
    pub name: String,
    /// Receive queues (`/sys/class/net/NAME/queues/rx-*`); a multi-queue NIC
    /// interrupts a different CPU per queue.
    pub rx_queues: usize,
    /// Receive packet steering is on for some queue (a non-zero
    /// `rps_cpus` mask): the kernel hands packets to other CPUs itself.
    pub rps: bool,
}

impl Nic {
    fn spreads(&self) -> bool {
        self.rx_queues > 1 || self.rps
    }
}

/// Whether to place the workers, and why, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Pin the workers and steer connections.
    pub place: bool,
    /// Why, in words for an info line.
    pub why: String,
}

/// Whether to place the workers (`--cpu-affinity=WHEN`).
///
/// `auto` places only when it cannot pile the load on one worker: as many
/// workers as allowed CPUs (so each CPU has exactly one worker to steer
/// to), and the listening address's packets processed on every CPU: either
/// it is a loopback address (packets are processed on the client's CPU), or
/// every network interface that is not down has several receive queues or
/// RPS. With one CPU processing every packet (one queue, no RPS) every SYN
/// would be steered to that CPU's worker.
pub fn decide(when: When, workers: usize, cpus: usize, loopback_only: bool, nics: &[Nic]) -> Decision {
    let (place, why) = match when {
        When::On => (true, "--cpu-affinity=on".to_string()),
        When::Off => (false, "--cpu-affinity=off".to_string()),
        When::Auto if workers != cpus => (false, format!("{workers} workers on {cpus} CPUs, not one each")),
        When::Auto if loopback_only => (true, "listening on loopback only".to_string()),
        When::Auto => match nics.iter().find(|n| !n.spreads()) {
            Some(n) => (
                false,
                format!(
                    "{} has {} receive queue{} and no RPS, so one CPU may process all its packets",
                    n.name,
                    n.rx_queues,
                    if n.rx_queues == 1 { "" } else { "s" }
                ),
            ),
            None => (true, "every network interface spreads its packets over CPUs".to_string()),
        },
    };
    Decision { place, why }
}

/// Whether to run the workers under SCHED_BATCH (`--sched-batch=WHEN`):
/// `auto` goes with the placement. A placed worker shares its CPU with the
/// clients it serves there; not preempting them is what lets it answer
/// their requests in batches. Unplaced, nothing says who shares its CPU.
pub fn batch_decision(when: When, placed: bool) -> bool {
    match when {
        When::On => true,
        When::Off => false,
        When::Auto => placed,
    }
}

/// The network interfaces under `/sys/class/net` (`sysfs`), but loopback
/// and those that are down: their queues and RPS masks.
pub fn nics(sysfs: &std::path::Path) -> Vec<Nic> {
    let Ok(dir) = std::fs::read_dir(sysfs) else { return Vec::new() };
    let mut found: Vec<Nic> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let state = std::fs::read_to_string(path.join("operstate")).unwrap_or_default();
            if name == "lo" || state.trim() == "down" {
                return None;
            }
            let queues: Vec<_> = std::fs::read_dir(path.join("queues"))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|q| q.file_name().to_string_lossy().starts_with("rx-"))
                .collect();
            let rps = queues.iter().any(|q| {
                let mask = std::fs::read_to_string(q.path().join("rps_cpus")).unwrap_or_default();
                mask.trim().chars().any(|c| c.is_ascii_hexdigit() && c != '0')
            });
            Some(Nic { name, rx_queues: queues.len(), rps })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// Where each worker slot runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The CPU of slot `i` is `cpus[i]`.
    pub cpus: Vec<usize>,
    /// Every slot has a CPU of its own, so connections can be steered.
    pub steer: bool,
}

impl Plan {
    /// Slot `i` on the `i`-th allowed CPU, wrapping around when there are
    /// more workers than CPUs (then some share a CPU and nothing is
    /// steered: the kernel's hash spreads connections as without the flag).
    pub fn new(workers: usize, allowed: &[usize]) -> Plan {
        let cpus = if allowed.is_empty() {
            Vec::new()
        } else {
            (0..workers).map(|i| allowed[i % allowed.len()]).collect()
        };
        let steer = !cpus.is_empty() && workers <= allowed.len();
        Plan { cpus, steer }
    }

    /// The CPU to pin `slot` to, if any.
    pub fn cpu(&self, slot: usize) -> Option<usize> {
        self.cpus.get(slot).copied()
    }
}

/// The CPUs this process may run on (its affinity mask: a container's
/// cpuset or `taskset` narrow it), in ascending order.
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

/// Pin the calling process (all its threads started later inherit it) to `cpu`.
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

/// With `--cpu-affinity` and steering: one inbox per worker slot, through
/// which the other workers hand it connections whose packets have come to
/// arrive on its CPU (`oserver_core::Handoff`). Steering at the SYN decides
/// where a connection starts; this follows a client whose thread the
/// scheduler later moves to another CPU. The master holds every pair for its
/// whole life, like the listeners, so what is in flight to a dead worker
/// waits for its replacement.
pub struct Mailboxes {
    /// Per slot: (receiving end, sending end).
    pairs: Vec<(UnixDatagram, UnixDatagram)>,
    cpus: Vec<usize>,
}

impl Mailboxes {
    /// One inbox per slot of `plan`.
    pub fn new(plan: &Plan) -> io::Result<Mailboxes> {
        let pairs = plan.cpus.iter().map(|_| UnixDatagram::pair()).collect::<io::Result<_>>()?;
        Ok(Mailboxes { pairs, cpus: plan.cpus.clone() })
    }

    /// The handoff of the worker in `slot`: its own inbox and the other
    /// slots' senders. Consumes the set, so a worker keeps only those and
    /// closes the rest (the master's copies stay open).
    pub fn into_handoff(self, slot: usize) -> io::Result<Handoff> {
        let mut inbox = None;
        let mut peers = Vec::new();
        for (i, ((rx, tx), cpu)) in self.pairs.into_iter().zip(self.cpus).enumerate() {
            if i == slot {
                inbox = Some((rx, cpu));
            } else {
                peers.push((cpu, tx));
            }
        }
        let (rx, cpu) = inbox.ok_or_else(|| io::Error::other(format!("no inbox for slot {slot}")))?;
        Handoff::new(cpu, rx, peers)
    }
}

/// Put the calling thread (and the threads it starts later) under
/// `SCHED_BATCH`, which any user may choose for their own processes.
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

/// The steering program for `cpus` (slot `i` runs on `cpus[i]`):
///
/// ```text
/// A = current cpu
/// if A == cpus[0] return 0
/// if A == cpus[1] return 1
/// ...
/// return u32::MAX            (no worker here: the kernel hashes)
/// ```
pub fn program(cpus: &[usize]) -> Vec<libc::sock_filter> {
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

/// Attach the steering program for `cpus` to the reuseport group that
/// `listener` belongs to (one socket of the group is enough).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(name: &str, rx_queues: usize, rps: bool) -> Nic {
        Nic { name: name.into(), rx_queues, rps }
    }

    #[test]
    fn auto_places_only_where_packets_are_spread_and_each_cpu_has_a_worker() {
        let multi = nic("eth0", 4, false);
        let rps = nic("eth1", 1, true);
        let single = nic("eth2", 1, false);
        // (when, workers, cpus, loopback only, nics, place, words of the reason)
        type Row = (When, usize, usize, bool, Vec<Nic>, bool, &'static str);
        #[rustfmt::skip]
        let table: &[Row] = &[
            (When::Auto, 2, 2, true, vec![single.clone()], true, "loopback only"),
            (When::Auto, 2, 2, false, vec![multi.clone(), rps.clone()], true, "every network interface spreads"),
            (When::Auto, 2, 2, false, vec![], true, "every network interface spreads"),
            (When::Auto, 2, 2, false, vec![multi.clone(), single.clone()], false, "eth2 has 1 receive queue and no RPS"),
            (When::Auto, 2, 2, false, vec![nic("eth3", 0, false)], false, "eth3 has 0 receive queues"),
            (When::Auto, 3, 2, true, vec![], false, "3 workers on 2 CPUs"),
            (When::Auto, 1, 2, true, vec![], false, "1 workers on 2 CPUs"),
            (When::Auto, 1, 1, true, vec![], true, "loopback only"),
            (When::On, 5, 2, false, vec![single.clone()], true, "--cpu-affinity=on"),
            (When::Off, 2, 2, true, vec![multi.clone()], false, "--cpu-affinity=off"),
        ];
        for (when, workers, cpus, lo, nics, place, why) in table {
            let d = decide(*when, *workers, *cpus, *lo, nics);
            assert_eq!(d.place, *place, "{when:?} {workers} {cpus} {lo} {nics:?}: {}", d.why);
            assert!(d.why.contains(why), "{:?} should contain {why:?}", d.why);
        }
    }

    #[test]
    fn sched_batch_follows_the_placement_unless_forced() {
        assert!(batch_decision(When::Auto, true));
        assert!(!batch_decision(When::Auto, false));
        assert!(batch_decision(When::On, false));
        assert!(!batch_decision(When::Off, true));
    }

    #[test]
    fn nics_reads_queues_and_rps_masks_and_skips_loopback_and_down() {
        let root = std::env::temp_dir().join(format!("oserver-nics-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let make = |name: &str, state: &str, queues: &[&str]| {
            let dir = root.join(name);
            std::fs::create_dir_all(dir.join("queues/tx-0")).unwrap();
            std::fs::write(dir.join("operstate"), format!("{state}\n")).unwrap();
            for (i, mask) in queues.iter().enumerate() {
                let q = dir.join(format!("queues/rx-{i}"));
                std::fs::create_dir_all(&q).unwrap();
                std::fs::write(q.join("rps_cpus"), format!("{mask}\n")).unwrap();
            }
        };
        make("lo", "unknown", &["0"]);
        make("eth0", "up", &["0"]);
        make("eth1", "up", &["00000000,00000000", "00000000,00000000"]);
        make("eth2", "unknown", &["00000000,00000003"]);
        make("eth3", "down", &["0"]);
        let got = nics(&root);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(got, vec![nic("eth0", 1, false), nic("eth1", 2, false), nic("eth2", 1, true)]);
        assert!(nics(std::path::Path::new("/nonexistent/oserver")).is_empty());
    }

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
    fn plan_wraps_and_does_not_steer_with_more_workers_than_cpus() {
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
    fn allowed_cpus_is_sorted_and_not_empty() {
        let cpus = allowed_cpus().unwrap();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
    }
}
