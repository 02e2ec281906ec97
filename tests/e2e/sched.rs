//! `--cpu-affinity` and `--sched-batch`: where the workers run, which worker
//! a new connection reaches, and the workers' scheduling policy, read back
//! from /proc and the scheduler of the real processes; and what the defaults
//! (`auto`) decide.

use std::time::Duration;

use crate::support::*;

/// A process's allowed CPUs, from `Cpus_allowed_list` in /proc/PID/status
/// (e.g. "0-2,5").
pub(crate) fn cpus_of(pid: u32) -> Vec<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap().trim();
    let mut cpus = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
            None => cpus.push(part.parse().unwrap()),
        }
    }
    cpus
}

/// Wait (at most 5 s) until each of `workers` has set itself up: a worker
/// pins itself and picks its policy a moment after the fork that makes it
/// visible as a child. Then the checks below see the settled state.
fn settle(workers: &[u32], ready: impl Fn(u32) -> bool) {
    let ok = wait_until(Duration::from_secs(5), || workers.iter().all(|&w| ready(w)));
    assert!(ok || workers.is_empty(), "workers {workers:?} did not settle");
}

fn pinned(pid: u32) -> bool {
    cpus_of(pid).len() == 1
}

/// The first two CPUs this process may use, or None (after saying why the
/// test is skipped) on a machine or cpuset with one.
pub(crate) fn two_cpus(what: &str) -> Option<[usize; 2]> {
    let allowed = allowed_cpus();
    if allowed.len() < 2 {
        eprintln!("skipped: {what} needs 2 CPUs, this process may use {allowed:?}");
        return None;
    }
    Some([allowed[0], allowed[1]])
}

fn policy_of(pid: u32) -> i32 {
    // SAFETY: plain syscall.
    unsafe { libc::sched_getscheduler(pid as libc::pid_t) }
}

/// The inode of the server's socket for the connection whose client end is
/// `client_port`, from /proc/net/tcp (addresses and ports there are hex).
pub(crate) fn server_socket_inode(server_port: u16, client_port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
        (port(f[1])? == server_port && port(f[2])? == client_port).then(|| f[9].parse().ok())?
    })
}

/// Which of `pids` holds the socket `inode` among its descriptors.
pub(crate) fn holder_of(inode: u64, pids: &[u32]) -> Option<u32> {
    let want = format!("socket:[{inode}]");
    pids.iter().copied().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|target| target.as_os_str() == want.as_str()))
    })
}

/// A keep-alive request for the small fixture on `c`, and its whole answer
/// checked byte for byte.
fn request_ok(c: &mut Client) {
    c.send(b"GET /httptest/test.html HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, std::fs::read(repo_root().join("httptest/test.html")).unwrap());
    assert!(c.pending().is_empty(), "nothing after the response");
}

/// Open a keep-alive connection and complete one request on it, so the
/// server has accepted it by the time this returns.
fn served_connection(server: &Oserver) -> Client {
    let mut c = Client::connect(server.addr());
    request_ok(&mut c);
    c
}

#[test]
fn cpu_affinity_pins_each_worker_to_a_cpu_of_its_own_and_respawns_keep_it() {
    let allowed = allowed_cpus();
    let n = allowed.len().min(2);
    let server = Oserver::start(&["-w", &n.to_string(), "--cpu-affinity"]);
    let workers = server.wait_workers(n, Duration::from_secs(5));
    settle(&workers, pinned);
    let mut masks: Vec<Vec<usize>> = workers.iter().map(|&w| cpus_of(w)).collect();
    masks.sort();
    let want: Vec<Vec<usize>> = allowed[..n].iter().map(|&c| vec![c]).collect();
    assert_eq!(masks, want, "workers {workers:?}");
    // The master is not pinned: it keeps the mask it started with.
    assert_eq!(cpus_of(server.pid()), allowed);

    // A replacement takes over its slot's CPU.
    let victim = workers[0];
    let cpu = cpus_of(victim);
    signal(victim, libc::SIGKILL);
    let ok = wait_until(Duration::from_secs(5), || {
        let now = server.worker_pids();
        now.len() == n && !now.contains(&victim)
    });
    assert!(ok, "no replacement for {victim}: {}", server.stderr_text());
    let fresh: Vec<u32> = server.worker_pids().into_iter().filter(|p| !workers.contains(p)).collect();
    assert_eq!(fresh.len(), 1);
    settle(&fresh, pinned);
    assert_eq!(cpus_of(fresh[0]), cpu);
}

#[test]
fn with_cpu_affinity_off_workers_may_run_anywhere() {
    let allowed = allowed_cpus();
    let n = allowed.len().to_string();
    let server = Oserver::start(&["-w", &n, "--cpu-affinity=off"]);
    for w in server.wait_workers(allowed.len(), Duration::from_secs(5)) {
        assert_eq!(cpus_of(w), allowed);
        assert_eq!(policy_of(w), libc::SCHED_OTHER, "worker {w}: --sched-batch follows the placement");
    }
    assert!(server.wait_stderr("CPU placement off: --cpu-affinity=off", Duration::from_secs(5)));
}

/// The default on loopback with one worker per CPU: placed (pinned, steered)
/// and under SCHED_BATCH, and one info line says so and why.
#[test]
fn by_default_one_worker_per_cpu_on_loopback_is_placed_and_batched() {
    let allowed = allowed_cpus();
    let n = allowed.len();
    let server = Oserver::start(&["-w", &n.to_string()]);
    let workers = server.wait_workers(n, Duration::from_secs(5));
    settle(&workers, |w| pinned(w) && policy_of(w) == libc::SCHED_BATCH);
    let mut masks: Vec<Vec<usize>> = workers.iter().map(|&w| cpus_of(w)).collect();
    masks.sort();
    assert_eq!(masks, allowed.iter().map(|&c| vec![c]).collect::<Vec<_>>(), "workers {workers:?}");
    assert!(
        server.wait_stderr("CPU placement on (listening on loopback only)", Duration::from_secs(5)),
        "{}",
        server.stderr_text()
    );
    assert_eq!(get(server.addr(), "/httptest/test.html").status, 200);
}

/// More workers than CPUs: the default leaves placement and SCHED_BATCH
/// off, and says why in one info line.
#[test]
fn by_default_more_workers_than_cpus_are_not_placed_and_it_says_why() {
    let allowed = allowed_cpus();
    let n = allowed.len() + 1;
    let server = Oserver::start(&["-w", &n.to_string()]);
    let workers = server.wait_workers(n, Duration::from_secs(5));
    assert!(server.wait_stderr("workers started", Duration::from_secs(5)), "{}", server.stderr_text());
    for &w in &workers {
        assert_eq!(cpus_of(w), allowed, "worker {w}");
        assert_eq!(policy_of(w), libc::SCHED_OTHER, "worker {w}");
    }
    let text = server.stderr_text();
    let want = format!("CPU placement off: {n} workers on {} CPUs, not one each", allowed.len());
    assert_eq!(text.matches("CPU placement").count(), 1, "{text}");
    assert!(text.contains(&want), "{text}");
}

#[test]
fn bad_placement_values_exit_2_with_one_line_naming_the_flag() {
    let repo = repo_root();
    let repo = repo.to_str().expect("utf-8 repo path");
    for (flag, bad) in [("--cpu-affinity", "sometimes"), ("--sched-batch", "yes"), ("--cpu-affinity", "")] {
        let arg = format!("{flag}={bad}");
        let (status, stderr, leftovers) = run_to_exit(&["-r", repo, "-p", "0", &arg], Duration::from_secs(5));
        let status = status.unwrap_or_else(|| panic!("{arg}: still running after 5 s"));
        assert_eq!(status.code(), Some(2), "{arg}: {stderr:?}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{arg}: {stderr:?}");
        assert!(lines[0].contains(flag), "{arg}: {stderr:?}");
        assert!(!leftovers, "{arg}: a process of its group outlived it");
    }
}

/// Connections opened from a thread on CPU c all reach the worker pinned to
/// c. Without steering the kernel's hash would send each to either worker,
/// so 8 connections from each of 2 CPUs all landing right by chance has a
/// probability of 1 in 65,536.
#[test]
fn cpu_affinity_steers_each_connection_to_the_worker_on_its_cpu() {
    let Some(two) = two_cpus("steering") else { return };
    let server = Oserver::start(&["-w", "2", "--cpu-affinity"]);
    let workers = server.wait_workers(2, Duration::from_secs(5));
    assert!(server.wait_stderr("connections steered", Duration::from_secs(5)), "{}", server.stderr_text());
    let port = server.addr().port();
    for cpu in two {
        let conns: Vec<Client> = std::thread::scope(|s| {
            s.spawn(|| {
                pin_this_thread(cpu);
                (0..8).map(|_| served_connection(&server)).collect()
            })
            .join()
            .unwrap()
        });
        for c in &conns {
            let client_port = c.stream.local_addr().unwrap().port();
            let inode = server_socket_inode(port, client_port)
                .unwrap_or_else(|| panic!("no server socket for client port {client_port}"));
            let worker = holder_of(inode, &workers).unwrap_or_else(|| panic!("no worker holds {inode}"));
            assert_eq!(cpus_of(worker), vec![cpu], "connection from CPU {cpu} served by worker {worker}");
        }
    }
}

#[test]
fn cpu_affinity_with_more_workers_than_cpus_shares_cpus_and_says_so() {
    let allowed = allowed_cpus();
    let n = allowed.len() + 1;
    let server = Oserver::start(&["-w", &n.to_string(), "--cpu-affinity"]);
    let workers = server.wait_workers(n, Duration::from_secs(5));
    settle(&workers, pinned);
    assert!(
        server.wait_stderr("connections are spread by hash", Duration::from_secs(5)),
        "{}",
        server.stderr_text()
    );
    let mut used: Vec<usize> = workers.iter().flat_map(|&w| cpus_of(w)).collect();
    assert_eq!(used.len(), n, "each worker on one CPU");
    used.sort();
    used.dedup();
    assert_eq!(used, allowed, "every allowed CPU has a worker");
    // Still serves.
    assert_eq!(get(server.addr(), "/httptest/test.html").status, 200);
}

#[test]
fn sched_batch_sets_the_workers_policy_and_leaves_the_master_alone() {
    let server = Oserver::start(&["-w", "2", "--sched-batch"]);
    let workers = server.wait_workers(2, Duration::from_secs(5));
    settle(&workers, |w| policy_of(w) == libc::SCHED_BATCH);
    for w in workers {
        assert_eq!(policy_of(w), libc::SCHED_BATCH, "worker {w}");
    }
    assert_eq!(policy_of(server.pid()), libc::SCHED_OTHER);
    assert_eq!(get(server.addr(), "/httptest/test.html").status, 200);

    let plain = Oserver::start(&["-w", "1", "--sched-batch=off"]);
    for w in plain.wait_workers(1, Duration::from_secs(5)) {
        assert_eq!(policy_of(w), libc::SCHED_OTHER, "worker {w} with --sched-batch=off");
    }
}

/// A connection steered to the worker on CPU a whose client thread then
/// moves to CPU b is handed to the worker on b between two requests, and
/// keeps being served, byte-exact, across the move.
#[test]
fn cpu_affinity_hands_a_connection_to_the_worker_on_its_clients_new_cpu() {
    let Some([a, b]) = two_cpus("handoff") else { return };
    let mut server = Oserver::start(&["-w", "2", "--cpu-affinity"]);
    let workers = server.wait_workers(2, Duration::from_secs(5));
    let port = server.addr().port();
    let holder = |c: &Client| {
        let inode = server_socket_inode(port, c.stream.local_addr().unwrap().port()).expect("server socket");
        let w = holder_of(inode, &workers).expect("a worker holds it");
        cpus_of(w)
    };
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                pin_this_thread(a);
                let mut conns: Vec<Client> = (0..4).map(|_| served_connection(&server)).collect();
                for c in &conns {
                    assert_eq!(holder(c), vec![a], "steered to CPU {a}'s worker first");
                }
                pin_this_thread(b);
                // Checks come after the 1st, 2nd, 4th, 8th... response; by
                // the 8th every connection has been looked at from CPU b.
                for _ in 0..8 {
                    for c in &mut conns {
                        request_ok(c);
                    }
                }
                for c in &conns {
                    assert_eq!(holder(c), vec![b], "followed its client to CPU {b}");
                }
            })
            .join()
            .unwrap()
    });
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    let log = server.stderr_text();
    assert!(log.contains("(4 handed to other workers, 0 taken)"), "{log}");
    assert!(log.contains("(0 handed to other workers, 4 taken)"), "{log}");
}
