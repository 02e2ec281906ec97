//! `ServerBuilder::cpu_placement` and `sched_batch`: where the event loops
//! run, seen from outside. Handlers answer the CPU and thread they run on;
//! clients are test threads pinned to one CPU, over real TCP on 127.0.0.1,
//! where the kernel processes a client's packets on the client's own CPU.

use std::io::Read;
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use oserver_core::{Request, Response, ServerBuilder};

use super::Running;
use crate::support::{allowed_cpus, find, is_imf_fixdate, pin_this_thread, Client};

/// The CPU and thread a handler runs on: `CPU TID`.
fn where_am_i(_: &Request<'_>) -> Option<Response> {
    // SAFETY: plain syscalls about the calling thread.
    let (cpu, tid) = unsafe { (libc::sched_getcpu(), libc::syscall(libc::SYS_gettid)) };
    Some(Response::new(200).header("Content-Type", "text/plain").body(format!("{cpu} {tid}")))
}

/// Only the CPU: a body whose bytes a test can predict.
fn cpu_only(_: &Request<'_>) -> Option<Response> {
    // SAFETY: plain syscall.
    let cpu = unsafe { libc::sched_getcpu() };
    Some(Response::new(200).header("Content-Type", "text/plain").body(cpu.to_string()))
}

/// How many CPUs the calling thread may use.
fn mask_size(_: &Request<'_>) -> Option<Response> {
    Some(Response::new(200).body(allowed_cpus().len().to_string()))
}

/// Two allowed CPUs, or why the test cannot run.
fn two_cpus() -> Option<[usize; 2]> {
    let cpus = allowed_cpus();
    if cpus.len() < 2 {
        eprintln!("skipped: this process may use {} CPU(s) ({cpus:?}); placement needs 2", cpus.len());
        return None;
    }
    Some([cpus[0], cpus[1]])
}

/// `(cpu, tid)` from a fresh connection opened by a thread pinned to `cpu`.
fn ask_from(cpu: usize, addr: SocketAddr) -> (usize, i64) {
    thread::spawn(move || {
        pin_this_thread(cpu);
        let mut c = Client::connect(addr);
        c.send(b"GET /where HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let text = c.response(false).text();
        let (cpu, tid) = text.split_once(' ').unwrap_or_else(|| panic!("{text:?}"));
        (cpu.parse().unwrap(), tid.parse().unwrap())
    })
    .join()
    .unwrap()
}

/// A line of a thread's `/proc` status, e.g. `Cpus_allowed_list`.
fn status_of(tid: i64, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap();
    line[field.len() + 1..].trim().to_string()
}

/// Steering: each new connection is served on the CPU of the client that
/// opened it; each loop thread may run on exactly one CPU (its own); the
/// blocking pool is not pinned.
#[test]
fn placed_loops_serve_each_connection_on_its_clients_cpu_each_pinned_to_one() {
    let Some(cpus) = two_cpus() else { return };
    let s = Running::start(
        ServerBuilder::new().threads(2).cpu_placement(true).handler("/where", where_am_i).blocking_route(
            &["GET"],
            "/pool",
            mask_size,
        ),
    );
    let mut tids = Vec::new();
    for round in 0..5 {
        for k in cpus {
            let (cpu, tid) = ask_from(k, s.addr);
            assert_eq!(cpu, k, "round {round}: a client on CPU {k} was served on CPU {cpu}");
            if round == 0 {
                tids.push((k, tid));
            }
        }
    }
    assert_ne!(tids[0].1, tids[1].1, "two loops: {tids:?}");
    for (k, tid) in tids {
        assert_eq!(status_of(tid, "Cpus_allowed_list"), k.to_string(), "loop thread {tid}");
        let name = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap();
        assert!(name.starts_with("oserver-loop-"), "{name:?}");
    }
    // A kept-open client: `get` half-closes, which ends a connection
    // waiting for the pool.
    let mut c = Client::connect(s.addr);
    c.send(b"GET /pool HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        c.response(false).text(),
        allowed_cpus().len().to_string(),
        "the blocking pool may use every CPU"
    );
    s.stop();
}

/// Read one response whole, as bytes (by its Content-Length).
fn read_response(c: &mut Client) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{head}"));
            if buf.len() >= end + 4 + len {
                assert_eq!(buf.len(), end + 4 + len, "nothing beyond the response");
                return buf;
            }
        }
        let n = c.stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The in-process handoff: a connection opened from CPU A is served there;
/// once its client thread has moved to CPU B, the loop on A hands the idle
/// connection to the loop on B at its next check (after response 4), and B
/// serves the rest. Every answer byte for byte what the server sends.
#[test]
fn placed_loops_hand_an_idle_connection_to_its_clients_new_cpu() {
    let Some([a, b]) = two_cpus() else { return };
    let s = Running::start(ServerBuilder::new().threads(2).cpu_placement(true).handler("/cpu", cpu_only));
    let addr = s.addr;
    let answers = thread::spawn(move || {
        pin_this_thread(a);
        let mut c = Client::connect(addr);
        let mut answers = Vec::new();
        for i in 0..10 {
            if i == 2 {
                pin_this_thread(b);
            }
            c.send(b"GET /cpu HTTP/1.1\r\nHost: t\r\n\r\n");
            answers.push(read_response(&mut c));
        }
        answers
    })
    .join()
    .unwrap();
    let mut served_on = Vec::new();
    for got in &answers {
        let text = String::from_utf8(got.clone()).unwrap();
        let date = text.split("\r\nDate: ").nth(1).and_then(|r| r.get(..29)).unwrap_or_default();
        assert!(is_imf_fixdate(date), "{text:?}");
        let cpu = text.rsplit("\r\n\r\n").next().unwrap();
        let want = format!(
            "HTTP/1.1 200 OK\r\nServer: oserver/{}\r\nDate: {date}\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\n\r\n{cpu}",
            env!("CARGO_PKG_VERSION"),
            cpu.len()
        );
        assert_eq!(text, want);
        served_on.push(cpu.parse::<usize>().unwrap());
    }
    // A, A before the move; A until the check after response 4; B after.
    assert_eq!(served_on[..2], [a, a], "{served_on:?}");
    assert!(served_on[4..].iter().all(|&c| c == b), "{served_on:?}");
    let stats = s.stop();
    assert_eq!((stats.handed_off, stats.taken), (1, 1), "{stats:?}");
}

/// The thread ids of both loops of a two-loop server: the first connection
/// holds its loop in a slow handler, so the second is accepted by the other.
fn loop_tids(addr: SocketAddr) -> [i64; 2] {
    let ask = move || {
        let mut c = Client::connect(addr);
        c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        c.response(false).text().parse::<i64>().unwrap()
    };
    let first = thread::spawn(ask);
    thread::sleep(Duration::from_millis(100));
    let second = ask();
    [first.join().unwrap(), second]
}

fn slow_tid(_: &Request<'_>) -> Option<Response> {
    thread::sleep(Duration::from_millis(400));
    // SAFETY: plain syscall.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    Some(Response::new(200).body(tid.to_string()))
}

fn policy(tid: i64) -> i32 {
    // SAFETY: plain syscall; the thread is alive (its server still runs).
    unsafe { libc::sched_getscheduler(tid as libc::pid_t) }
}

#[test]
fn sched_batch_puts_every_loop_under_sched_batch_and_only_then() {
    for (on, want) in [(true, libc::SCHED_BATCH), (false, libc::SCHED_OTHER)] {
        let s = Running::start(ServerBuilder::new().threads(2).sched_batch(on).handler("/slow", slow_tid));
        let tids = loop_tids(s.addr);
        assert_ne!(tids[0], tids[1], "two loops");
        for tid in tids {
            assert_eq!(policy(tid), want, "sched_batch({on}): loop thread {tid}");
        }
        s.stop();
    }
}
