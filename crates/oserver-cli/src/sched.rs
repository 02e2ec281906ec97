//! Where and how the workers run: `--cpu-affinity` and `--sched-batch`.
//! The policy only: whether to place the workers ([`decide`]) and whether
//! to run them under SCHED_BATCH ([`batch_decision`]). The mechanism
//! (pinning, SCHED_BATCH, the steering program on the SO_REUSEPORT group,
//! the plan of which slot runs where, the handoff inboxes) is the core's,
//! `oserver_core::placement`, shared with library embedders that turn on
//! `ServerBuilder::cpu_placement`; it is re-exported here for the rest of
//! the command. Its module documentation explains the steering.
//!
//! `--cpu-affinity`: each worker stays on one CPU, and each new connection
//! goes to the worker on the CPU where the kernel handled its SYN. The
//! master binds one socket per worker in slot order and holds every socket
//! for its whole life, so the group's indexes never shift; it holds the
//! handoff inboxes ([`Mailboxes`]) the same way.
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
//! `--sched-batch`: the workers run under `SCHED_BATCH` (fewer context
//! switches when the CPUs are shared; see `oserver_core::placement::batch`).
//! By default it goes with the placement: on when the workers are placed.

pub use oserver_core::placement::{allowed_cpus, batch, pin, steer, Mailboxes, Plan};

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
}
