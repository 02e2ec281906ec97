#!/usr/bin/env python3
"""Summary table for benches/load.sh: medians per case and server, as Markdown.

Reads the tab-separated results the script appends (one line per run):
    round  case  server  value  value2  errors  non2xx  [cpu_us  [wrk_cpu_us]]
where for the wrk and h2load cases value is req/s and value2 MiB/s, and for
the idle cases value is KiB per connection and errors the connections that
failed. For the h2load cases (HTTP/2) errors counts failed, errored and
timed-out requests, and value "-" marks an invalid run (wrong protocol, a
failed request, a non-2xx, a failed h2 check). A server that could not take
part in a case (no HTTPS, no h2c) has value "skip". The wrk cases add
cpu_us, the server's CPU time (master and workers) per completed request in
microseconds, and then wrk_cpu_us, wrk's own per request.
Only the cases that ran get a row. Writes the Markdown to --out and prints it.

Besides the medians, two views that the machine's noise moves less:
- each round's ratio, oserver against the best other server of that round
  (the servers of a round run minutes apart at most, the rounds of a run up
  to half an hour: a slow spell of a shared host then shifts one round, not
  one server's median), and the median of those ratios;
- the server's CPU per request: with client and servers on the same CPUs,
  req/s also measures what a server leaves to wrk, CPU per request only the
  server. wrk's CPU per request beside it shows what the client costs
  against each server; the two together, against the machine's CPUs, show
  how close a run came to what the machine can do.
"""

import argparse
import statistics

# (case, column of the TSV, label, higher_is_better)
ROWS = [
    ("small_ka", 3, "(a) ~100 B file, keep-alive: req/s", True),
    ("large_ka", 3, "(b) ~1 MB file, keep-alive: req/s", True),
    ("large_ka", 4, "(b) ~1 MB file, keep-alive: MiB/s", True),
    ("small_close", 3, "(c) ~100 B file, `Connection: close`: req/s", True),
    ("small_c1000", 3, "(m) ~100 B file, keep-alive, 1,000 connections: req/s", True),
    ("small_c5000", 3, "(n) ~100 B file, keep-alive, 5,000 connections: req/s", True),
    ("idle", 3, "(d) 10,000 idle keep-alive connections: KiB/conn (lower is better)", False),
    ("tls_small_ka", 3, "(e) ~100 B file, keep-alive, HTTPS: req/s", True),
    ("tls_large_ka", 3, "(f) ~1 MB file, keep-alive, HTTPS: req/s", True),
    ("tls_large_ka", 4, "(f) ~1 MB file, keep-alive, HTTPS: MiB/s", True),
    ("tls_close", 3, "(g) ~100 B file, `Connection: close`, HTTPS (full handshake each): req/s", True),
    ("tls_idle", 3, "(h) 10,000 idle TLS keep-alive connections: KiB/conn (lower is better)", False),
    ("h2_small", 3, "(i) ~100 B file, HTTP/2 over TLS, h2load -c100 -m10: req/s", True),
    ("h2_large", 3, "(j) ~1 MB file, HTTP/2 over TLS, h2load -c100 -m1: req/s", True),
    ("h2_large", 4, "(j) ~1 MB file, HTTP/2 over TLS, h2load -c100 -m1: MiB/s", True),
    ("h2c_small", 3, "(k) ~100 B file, h2c (prior knowledge), h2load -c100 -m10: req/s", True),
    ("h2c_large", 3, "(l) ~1 MB file, h2c (prior knowledge), h2load -c100 -m1: req/s", True),
    ("h2c_large", 4, "(l) ~1 MB file, h2c (prior knowledge), h2load -c100 -m1: MiB/s", True),
]
WRK_CASES = {
    "small_ka",
    "large_ka",
    "small_close",
    "small_c1000",
    "small_c5000",
    "tls_small_ka",
    "tls_large_ka",
    "tls_close",
}
H2_CASES = {"h2_small", "h2_large", "h2c_small", "h2c_large"}
IDLE_CASES = {"idle", "tls_idle"}

# The goal set for oserver's memory per idle connection.
IDLE_TARGET_KIB = 0.4

# oserver against the best other, req/s: the goals of issue 15 for the plain
# cases and of issue 12 for HTTPS.
TARGETS = {
    "small_ka": 1.3,
    "large_ka": 1.1,
    "small_close": 1.3,
    "small_c5000": 1.15,
    "tls_small_ka": 1.15,
    "tls_large_ka": 1.05,
    "tls_close": 1.0,
}

# oserver-base is oserver built from an older commit (load.sh --baseline): not
# a server to beat but the one to match. A ratio oserver / oserver-base within
# this fraction of 1 counts as "same".
BASELINE = "oserver-base"
SAME_WITHIN = 0.03

# load.sh's floor servers (floor-epoll, floor-uring) are measuring sticks, not
# servers: the least a program can spend on the case. oserver gets a column
# against each, and they are never the best other.
FLOOR_PREFIX = "floor-"


def is_other(server):
    """Whether oserver is compared with this server: not an oserver build, not a floor."""
    return not server.startswith("oserver") and not server.startswith(FLOOR_PREFIX)


def fmt(x):
    if x is None:
        return "failed"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.2f}"


def baseline_ratio(ours, base, higher):
    """oserver / oserver-base as text, e.g. "0.994x (same)" or "0.912x (slower)"."""
    if ours is None or base is None or base <= 0:
        return "n/a"
    r = ours / base
    if abs(r - 1) <= SAME_WITHIN:
        verdict = "same"
    elif higher:
        verdict = "faster" if r > 1 else "slower"
    else:
        verdict = "better" if r < 1 else "worse"
    return f"{r:.3f}x ({verdict})"


def case_name(label):
    """A row's label without what it measures: "(c) ... `Connection: close`"."""
    return label.rsplit(":", 1)[0]


def round_ratios(runs, servers, ours, ran):
    """Lines of Markdown: per target case and server in `ours` (oserver's
    configurations, and any floor), each round's ratio to the best other
    server of that round, and their median."""
    out = []
    for case, col, label, _ in ROWS:
        if case not in ran or case not in TARGETS or col != 3:
            continue
        for o in ours:
            ratios = []
            for rnd in sorted({r[0] for r in runs}, key=int):
                got = {r[2]: r[3] for r in runs if r[0] == rnd and r[1] == case}
                others = [float(v) for s, v in got.items() if is_other(s) and s in servers and v not in ("-", "skip")]
                if got.get(o, "-") in ("-", "skip") or not others or max(others) <= 0:
                    continue
                ratios.append(float(got[o]) / max(others))
            if ratios:
                if not out:
                    out.append("| Case, per-round ratio to that round's best other | rounds | median | target |")
                    out.append("|---|---|---:|---:|")
                name = case_name(label) + ("" if o == "oserver" else f" ({o})")
                each = " ".join(f"{r:.2f}" for r in ratios)
                out.append(f"| {name} | {each} | {statistics.median(ratios):.2f}x | {TARGETS[case]:.2f}x |")
    return out + [""] if out else []


SERVER_CPU = (7, "Server CPU per request, µs (master and workers, median; lower is better)")
WRK_CPU = (8, "wrk's CPU per request, µs (the client, against each server; median)")


def cpu_table(runs, servers, ran, which=SERVER_CPU):
    """Lines of Markdown: the median CPU per request in each wrk case, the
    server's (SERVER_CPU) or wrk's (WRK_CPU)."""
    col, title = which
    rows = []
    for case, value_col, label, _ in ROWS:
        if case not in ran or case not in WRK_CASES or value_col != 3:
            continue
        cells = []
        for s in servers:
            v = [float(r[col]) for r in runs if r[1] == case and r[2] == s and len(r) > col and r[col] not in ("-", "")]
            cells.append(f"{statistics.median(v):.2f}" if v else "n/a")
        if any(c != "n/a" for c in cells):
            rows.append(f"| {case_name(label)} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    head = [f"| {title} | " + " | ".join(servers) + " |", "|---|" + "---:|" * len(servers)]
    return head + rows + [""]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--results", required=True)
    p.add_argument("--machine", required=True, help="file of `key: value` lines")
    p.add_argument("--servers", required=True, help="comma-separated, in column order")
    p.add_argument("--command", required=True, help="the command line, for the header")
    p.add_argument("--out", required=True)
    args = p.parse_args()

    servers = args.servers.split(",")
    with open(args.results) as f:
        runs = [line.rstrip("\n").split("\t") for line in f if line.strip()]

    def values(case, col, server):
        # An idle run with failed connections records "-": its memory figure
        # would be meaningless.
        return [float(r[col]) for r in runs if r[1] == case and r[2] == server and r[col] not in ("-", "skip")]

    def skipped(case, server):
        rows = [r for r in runs if r[1] == case and r[2] == server]
        return bool(rows) and all(r[3] == "skip" for r in rows)

    def median(case, col, server):
        v = values(case, col, server)
        return statistics.median(v) if v else None

    rounds = len({r[0] for r in runs})
    out = []
    out.append(f"Generated by `{args.command}`; each number is the median of {rounds} round(s).")
    out.append("")
    with open(args.machine) as f:
        machine = f.read().splitlines()
    for line in machine:
        key, _, value = line.partition(": ")
        out.append(f"- {key}: {value}")
    out.append("")
    # Each oserver configuration gets a ratio column against the best of the
    # servers it is compared with (the baseline is neither: it gets its own
    # column, oserver / oserver-base, when both ran).
    ours = [s for s in servers if s.startswith("oserver") and s != BASELINE]
    vs_base = "oserver" in servers and BASELINE in servers
    all_floors = [s for s in servers if s.startswith(FLOOR_PREFIX)]
    floors = all_floors if "oserver" in servers else []  # the floors oserver gets a column against
    extra = [f"{o} vs best other" for o in ours] + ([f"oserver / {BASELINE}"] if vs_base else [])
    extra += [f"oserver / {f}" for f in floors]
    out.append("| Case | " + " | ".join(servers + extra) + " |")
    out.append("|---|" + "---:|" * len(servers) + "---|" * len(extra))
    ran = {r[1] for r in runs}
    for case, col, label, higher in ROWS:
        if case not in ran:
            continue
        meds = {s: median(case, col, s) for s in servers}
        cells = ["skipped" if skipped(case, s) else fmt(meds[s]) for s in servers]
        others = [meds[s] for s in servers if is_other(s) and meds[s] is not None]
        ratios = []
        for o in ours:
            ratio = "n/a"
            if meds[o] is not None and others:
                best = max(others) if higher else min(others)
                if best > 0:
                    ratio = f"{meds[o] / best:.2f}x"
            if skipped(case, o):
                ratio = "n/a (skipped)"
            elif case == "idle" and meds[o] is None:
                ratio = "n/a (every idle run failed)"
            elif case == "idle":
                verdict = "PASS" if meds[o] <= IDLE_TARGET_KIB else "FAIL"
                ratio += f" (target <= {IDLE_TARGET_KIB} KiB: {verdict})"
            elif case in TARGETS and col == 3 and ratio != "n/a":
                target = TARGETS[case]
                verdict = "PASS" if meds[o] / best >= target else "FAIL"
                ratio += f" (target >= {target:.2f}x: {verdict})"
            ratios.append(ratio)
        if vs_base:
            ratios.append(baseline_ratio(meds["oserver"], meds[BASELINE], higher))
        for f in floors:
            ok = meds["oserver"] is not None and meds[f]
            ratios.append(f"{meds['oserver'] / meds[f]:.2f}x" if ok else "n/a")
        out.append(f"| {label} | " + " | ".join(cells + ratios) + " |")
    out.append("")
    # A floor's own ratios show what the best possible program reaches
    # against the same others, round by round.
    out += round_ratios(runs, servers, ours + all_floors, ran)
    out += cpu_table(runs, servers, ran)
    out += cpu_table(runs, servers, ran, WRK_CPU)
    if floors:
        out.append(
            f"{', '.join(floors)}: not servers but the least a program spends on a keep-alive case "
            "(benches/load/floor: one recv per request and the response oserver sends, the large "
            "file by sendfile, placed as oserver's defaults; floor-uring through io_uring); "
            "never the best other. oserver / floor is oserver's share of what the floor reaches."
        )
        out.append("")
    if vs_base:
        out.append(
            f"oserver / {BASELINE}: the current build against the baseline binary, "
            f"both with the same flags; within {SAME_WITHIN:.0%} counts as same. "
            "Single runs on a shared machine vary by more than that: "
            "judge from several rounds."
        )
        out.append("")
    out.append("| Errors over all runs | " + " | ".join(servers) + " |")
    out.append("|---|" + "---:|" * len(servers))
    # The rows of the kinds of case that ran (all three when none of the
    # HTTP/2 cases ran, as before they existed).
    table = []
    if ran & WRK_CASES or not ran & H2_CASES:
        table += [
            ("wrk socket errors (connect+read+write+timeout)", 5, WRK_CASES),
            ("wrk non-2xx/3xx responses", 6, WRK_CASES),
        ]
    if ran & IDLE_CASES or not ran & H2_CASES:
        table.append(("idle connections failed or closed early", 5, IDLE_CASES))
    if ran & H2_CASES:
        table += [
            ("h2load requests failed, errored or timed out", 5, H2_CASES),
            ("h2load non-2xx responses", 6, H2_CASES),
            ("h2load runs invalid (wrong protocol, failed requests, failed h2 check)", None, H2_CASES),
        ]
    for label, col, cases in table:
        cells = []
        for s in servers:
            mine = [r for r in runs if r[2] == s and r[1] in cases]
            if col is None:
                cells.append(str(sum(1 for r in mine if r[3] == "-")))
            else:
                cells.append(str(sum(int(r[col]) for r in mine)))
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    text = "\n".join(out) + "\n"
    with open(args.out, "w") as f:
        f.write("# Load benchmark results\n\n" + text)
    print(text, end="")


if __name__ == "__main__":
    main()
