//! Running out of resources: descriptors exhausted at accept, a worker that
//! cannot start. The server must neither spin nor go deaf, and the master
//! must not fork in a tight loop.

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{get, proc_state, repo_root, scratch_dir, signal, wait_until, write_file, Oserver};

/// CPU time (user + system) a process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("worker stat");
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn accept_backs_off_when_descriptors_run_out_and_resumes() {
    // 64 descriptors: the worker can hold a few dozen connections only.
    let s = Oserver::start_with_fd_limit(&repo_root(), &["-w", "1"], 64);
    let worker = s.wait_workers(1, Duration::from_secs(5))[0];
    // Each connection sends the start of a request, so the kernel hands it
    // over (TCP_DEFER_ACCEPT) and it occupies a descriptor in the worker.
    let mut held: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut c = TcpStream::connect(s.addr()).unwrap();
            c.write_all(b"GET /httptest/test.html HTTP/1.1\r\n").unwrap();
            c
        })
        .collect();
    assert!(
        s.wait_stderr("Too many open files", Duration::from_secs(5)),
        "the worker never hit EMFILE:\n{}",
        s.stderr_text()
    );
    // Out of descriptors with connections still queued: it must wait, not
    // spin. Having dealt with what it accepted (microseconds of work; 2 s
    // is slack for a loaded machine) it sleeps in epoll.
    let asleep = wait_until(Duration::from_secs(2), || proc_state(worker) == Some('S'));
    assert!(asleep, "the worker never went to sleep while out of descriptors");
    // A rate is measured over a fixed time: half a second is 50 ticks of a
    // full core, of which a spinning accept loop uses nearly all and a
    // waiting worker next to none.
    let before = cpu_ticks(worker);
    thread::sleep(Duration::from_millis(500));
    let used = cpu_ticks(worker) - before;
    assert!(used < 10, "worker used {used} ticks in 0.5 s while out of descriptors");
    // Free the descriptors: the worker resumes and serves again.
    held.clear();
    let t0 = Instant::now();
    let ok = wait_until(Duration::from_secs(5), || {
        std::panic::catch_unwind(|| get(s.addr(), "/httptest/text..txt")).is_ok_and(|r| r.status == 200)
    });
    assert!(ok, "not serving again 5 s after descriptors were freed");
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_worker_that_cannot_start_is_retried_with_growing_delays() {
    let (dir, _cleanup) = scratch_dir("crashloop");
    write_file(&dir.join("root/a.txt"), "a\n");
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let log = dir.join("logs/access.log");
    let root = dir.join("root");
    let s = Oserver::start_in(&root, &["-w", "1", "--access-log", log.to_str().unwrap()]);
    assert_eq!(get(s.addr(), "/a.txt").status, 200);
    let worker = s.wait_workers(1, Duration::from_secs(5))[0];
    // Take the log's directory away: a new worker cannot open its log and
    // exits at once, again and again.
    std::fs::remove_dir_all(dir.join("logs")).unwrap();
    signal(worker, libc::SIGKILL);
    let killed = Instant::now();
    // Four delayed respawns: 0.1 + 0.2 + 0.4 s of announced delays before
    // the fourth (0.8 s more if the killed worker was not an early death).
    let mut text = String::new();
    let four = wait_until(Duration::from_secs(10), || {
        text = s.stderr_text();
        respawn_delays(&text).len() >= 4
    });
    let elapsed = killed.elapsed();
    let delays = respawn_delays(&text);
    assert!(four, "{} delayed respawns logged in 10 s: {delays:?}\n{text}", delays.len());
    // A tight fork loop would log hundreds of deaths, and faster than the
    // delays it announces.
    assert!(delays.len() <= 8, "{} respawns logged in {elapsed:?}: {delays:?}\n{text}", delays.len());
    let announced: f64 = delays[..delays.len() - 1].iter().sum();
    assert!(
        elapsed.as_secs_f64() >= announced,
        "{} respawns in {elapsed:?}, announced delays {delays:?}",
        delays.len()
    );
    assert!(delays.windows(2).all(|w| w[1] >= w[0]), "delays do not grow: {delays:?}");
    assert!(delays.last() > delays.first(), "delays do not grow: {delays:?}");
    // Give the directory back: the next retry succeeds and serves.
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let ok = wait_until(Duration::from_secs(8), || {
        std::panic::catch_unwind(|| get(s.addr(), "/a.txt")).is_ok_and(|r| r.status == 200)
    });
    assert!(ok, "not serving after the cause was fixed:\n{}", s.stderr_text());
}

/// The delays of `... respawning in 100ms` lines, in seconds.
fn respawn_delays(stderr: &str) -> Vec<f64> {
    stderr
        .lines()
        .filter_map(|l| l.split("respawning in ").nth(1))
        .map(|d| {
            let d = d.trim();
            if let Some(ms) = d.strip_suffix("ms") {
                ms.parse::<f64>().unwrap() / 1000.0
            } else {
                d.trim_end_matches('s').parse::<f64>().unwrap()
            }
        })
        .collect()
}
