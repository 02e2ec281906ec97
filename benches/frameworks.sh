#!/usr/bin/env bash
# TechEmpower's plaintext and json tests: oserver's example
# (crates/oserver-core/examples/techempower.rs) against hyper 1.x on tokio,
# actix-web 4 and may_minihttp (benches/frameworks/, a cargo workspace of its
# own), every server with 2 threads, on this machine. oserver runs twice:
# `oserver` as the example is (its event loops placed on CPUs: cpu_placement
# and sched_batch), and `oserver-unplaced`, the same binary with
# TECHEMPOWER_PLACEMENT=off, to show in the same run what the placement buys.
#
#   bash benches/frameworks.sh [--rounds N] [--duration SECS] [--warmup SECS]
#                              [--only oserver,oserver-unplaced,hyper,actix-web,may_minihttp]
#                              [--out PATH]
#
# Builds the four (release: fat LTO, one codegen unit), starts each once on
# 127.0.0.1 on a free port, checks with curl that GET /plaintext and GET /json
# answer 200 with the right body, Content-Type, Server and Date (and with
# python3 that 16 pipelined requests get 16 answers), warms each up with
# --warmup seconds of both cases, then runs the rounds. A round runs each case
# against every server in turn; the order of the servers rotates from round
# to round, so no server always goes first and noise spreads evenly:
#   plaintext: wrk -t2 -c256 with benches/frameworks/pipeline.lua, 16 requests
#              pipelined per write (as TechEmpower's plaintext test),
#   json:      wrk -t2 -c256, one request at a time per connection.
# Both send the headers TechEmpower's client sends (Accept, Connection).
# Prints the medians over the rounds per case and server (req/s, with
# each oserver column's ratio to the best of the others; and each server's CPU time per
# request) as Markdown, with the machine, date and command on top, and
# writes them to --out (default
# benches/frameworks-results.md). Exits non-zero if any run had a socket error
# or a non-2xx answer (the table is still written, the run marked).
#
# Defaults: 3 rounds of 5 s after 2 s of warm-up per server and case: about
# 3 minutes once built (building both from nothing takes ~10 minutes
# on 2 cores). Client and servers share the machine: every wrk run is bounded
# by `timeout`, and only 127.0.0.1 is loaded.
#
# Environment: CARGO_TARGET_DIR is honoured (both workspaces then build into
# it); FW_KEEP_TMP=1 keeps the temp dir (server logs, raw wrk output).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FW="$REPO/benches/frameworks"
SPID="" # common.sh's stop_server stops the process group of SPID
# shellcheck source=conformance/common.sh
source "$REPO/benches/conformance/common.sh"

ROUNDS=3
DURATION=5
WARMUP=2
THREADS=2         # every server's threads (workers), as the task sets them
CONNS=256         # wrk -c, both cases (TechEmpower's plaintext uses 256 and up)
DEPTH=16          # requests per write in the plaintext case
OUT=""
ALL_SERVERS=(oserver oserver-unplaced hyper actix-web may_minihttp) # column order
ONLY=$(IFS=,; echo "${ALL_SERVERS[*]}")
CASES=(plaintext json)
# What TechEmpower's client sends besides Host.
HEADERS=(-H 'Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7'
    -H 'Connection: keep-alive')

TMP=""
declare -A PID=() PORT=() BIN=()
ERRORS=0

parse_args() {
    while (($#)); do
        case "$1" in
        --rounds) ROUNDS=${2:?}; shift 2 ;;
        --duration) DURATION=${2:?}; shift 2 ;;
        --warmup) WARMUP=${2:?}; shift 2 ;;
        --only) ONLY=${2:?}; shift 2 ;;
        --out) OUT=${2:?}; shift 2 ;;
        -h | --help) usage 0 ;;
        *) warn "unknown argument: $1"; usage 2 ;;
        esac
    done
    [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds wants a positive integer"
    [[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "--duration wants a positive integer"
    [[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup wants a whole number of seconds"
    local s
    for s in ${ONLY//,/ }; do
        [[ " ${ALL_SERVERS[*]} " == *" $s "* ]] || die "--only: unknown server '$s'"
    done
    SERVERS=()
    for s in "${ALL_SERVERS[@]}"; do # fixed column order whatever --only says
        if [[ ",$ONLY," == *",$s,"* ]]; then SERVERS+=("$s"); fi
    done
    ((${#SERVERS[@]})) || die "--only selected no server"
    OUT=${OUT:-$REPO/benches/frameworks-results.md}
}

has() { [[ " ${SERVERS[*]} " == *" $1 "* ]]; }

# --- setup -------------------------------------------------------------------

install_tools() {
    local -A pkg_of=([wrk]=wrk [curl]=curl [python3]=python3 [timeout]=coreutils)
    local cmd missing=()
    for cmd in "${!pkg_of[@]}"; do
        command -v "$cmd" >/dev/null || missing+=("${pkg_of[$cmd]}")
    done
    if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
    command -v cargo >/dev/null || die "cargo is not on PATH (the servers are built from source)"
}

build() {
    local target fw_target
    target=$(target_dir)
    # The frameworks' workspace has its own target/ unless CARGO_TARGET_DIR
    # puts both in one place.
    fw_target=${CARGO_TARGET_DIR:+$target}
    fw_target=${fw_target:-$FW/target}
    if has oserver || has oserver-unplaced; then
        log "cargo build --release -p oserver-core --example techempower"
        (cd "$REPO" && cargo build --release -p oserver-core --example techempower) || die "cargo build failed"
        BIN[oserver]="$target/release/examples/techempower"
        BIN[oserver-unplaced]="$target/release/examples/techempower"
    fi
    if has hyper || has actix-web || has may_minihttp; then
        log "cargo build --release --locked (benches/frameworks)"
        (cd "$FW" && cargo build --release --locked) || die "cargo build of benches/frameworks failed"
        BIN[hyper]="$fw_target/release/hyper"
        BIN[actix-web]="$fw_target/release/actix"
        BIN[may_minihttp]="$fw_target/release/may"
    fi
    local name
    for name in "${SERVERS[@]}"; do
        [[ -x ${BIN[$name]} ]] || die "no binary at ${BIN[$name]} after the build"
    done
}

# 256 connections per run, each a file descriptor on both sides.
raise_nofile() {
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
}

machine_info() {
    local out="$TMP/machine.txt"
    {
        echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
        echo "command: $COMMAND"
        echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
        echo "kernel: $(uname -sr)"
        echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "rustc: $(rustc --version 2>/dev/null || echo unknown)"
        echo "wrk: $(wrk -v 2>&1 | head -1 || true)"
        echo "oserver: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
        echo "frameworks: $(awk '/^name = "(hyper|tokio|actix-web|may_minihttp|may)"$/ { n = $3; getline; printf "%s %s, ", n, $3 }' "$FW/Cargo.lock" | tr -d '"' | sed 's/, $//')"
        echo "settings: $THREADS threads each, system allocator, release builds with fat LTO and one codegen unit; hyper: a current-thread tokio runtime and an SO_REUSEPORT listener per thread; client (wrk -t2) and servers share the CPUs"
        echo "runs: $ROUNDS rounds, $DURATION s each run, $WARMUP s warm-up per server and case; plaintext: wrk -t2 -c$CONNS, $DEPTH requests pipelined per write; json: wrk -t2 -c$CONNS, no pipelining"
    } >"$out"
    cat "$out"
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    if awk -v l="$load" 'BEGIN { exit !(l > 1.0) }'; then
        warn "load average is $load before the benchmark: other work on this machine will make the numbers noisy"
    fi
}

# --- servers -----------------------------------------------------------------

start_server() {
    local name=$1 port i code=""
    port=$(free_port)
    mkdir -p "$TMP/$name"
    # Its own process group, so stop_server takes every thread and child.
    # oserver-unplaced: the same example without its CPU placement.
    local placement=on
    [[ $name == oserver-unplaced ]] && placement=off
    TECHEMPOWER_PLACEMENT=$placement setsid "${BIN[$name]}" "127.0.0.1:$port" "$THREADS" >"$TMP/$name/stderr.log" 2>&1 &
    PID[$name]=$!
    PORT[$name]=$port
    for ((i = 0; i < 100; i++)); do
        kill -0 "${PID[$name]}" 2>/dev/null || { server_log "$name"; die "$name exited at startup"; }
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/plaintext" || true)
        [[ $code == 200 ]] && break
        sleep 0.1
    done
    [[ $code == 200 ]] || { server_log "$name"; die "$name: GET /plaintext gave '$code', not 200, after 10 s"; }
    log "$name ready: pid ${PID[$name]}, port $port, $(awk '/^Threads:/ { print $2 }' "/proc/${PID[$name]}/status") threads"
}

server_log() {
    [[ -s $TMP/$1/stderr.log ]] || return 0
    echo "--- $1's stderr:" >&2
    tail -n 20 "$TMP/$1/stderr.log" >&2
}

# The answers TechEmpower's rules ask for: status 200, the exact body, the
# Content-Type, a Server header and a Date header in HTTP-date form.
check_answers() {
    local name=$1 path body ctype got status hdrs
    for path in /plaintext /json; do
        case $path in
        /plaintext) body='Hello, World!' ctype='text/plain' ;;
        /json) body='{"message":"Hello, World!"}' ctype='application/json' ;;
        esac
        hdrs="$TMP/$name/headers${path//\//-}.txt"
        got=$(curl -sS --http1.1 --max-time 5 -D "$hdrs" "http://127.0.0.1:${PORT[$name]}$path") ||
            die "$name: GET $path failed"
        status=$(head -1 "$hdrs" | tr -d '\r')
        [[ $status =~ ^HTTP/1\.1\ 200 ]] || die "$name: GET $path answered '$status', want 200"
        [[ $got == "$body" ]] || die "$name: GET $path body is '$got', want '$body'"
        grep -qiE "^content-type: $ctype(;.*)?"$'\r'"?\$" "$hdrs" ||
            die "$name: GET $path has no 'Content-Type: $ctype' (headers: $(tr -d '\r' <"$hdrs" | tr '\n' '|'))"
        grep -qiE '^server: [^[:space:]]' "$hdrs" || die "$name: GET $path has no Server header"
        grep -qiE '^date: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT'$'\r''?$' "$hdrs" ||
            die "$name: GET $path has no Date header in HTTP-date form"
    done
    check_pipelining "$name"
}

# DEPTH requests in one write must get DEPTH answers (wrk's pipelined run
# would otherwise only show timeouts).
check_pipelining() {
    python3 - "${PORT[$1]}" "$DEPTH" <<'EOF' || die "$1: $DEPTH pipelined GET /plaintext did not get $DEPTH answers"
import socket, sys
port, depth = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * depth)
data = b""
while data.count(b"Hello, World!") < depth:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
answers = data.count(b"HTTP/1.1 200")
print(f"    {answers} answers to {depth} pipelined requests", file=sys.stderr)
sys.exit(0 if answers == depth else 1)
EOF
}

cleanup() {
    local name
    for name in "${!PID[@]}"; do
        SPID=${PID[$name]}
        stop_server 30
    done
    if [[ -n $TMP && -n ${FW_KEEP_TMP:-} ]]; then
        echo "kept $TMP"
    elif [[ -n $TMP ]]; then
        rm -rf "$TMP"
    fi
    return 0
}

# --- measurements ------------------------------------------------------------

# CPU time (utime + stime of all its threads, in clock ticks) of a server.
cpu_ticks() {
    awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# One wrk run of case $3 against server $2; round $1 (0: warm-up, not
# recorded) appends "round case server req/s errors non2xx server_cpu_us_per_request".
run_wrk() {
    local round=$1 case=$2 name=$3 secs=$DURATION
    ((round)) || secs=$WARMUP
    local out="$TMP/wrk-$round-$case-$name.txt" url="http://127.0.0.1:${PORT[$name]}/$case"
    local script=() depth=() # the pipelining script, and its argument after the URL
    if [[ $case == plaintext ]]; then script=(-s "$FW/pipeline.lua") depth=(-- "$DEPTH"); fi
    local cpu0 cpu1 rc=0
    cpu0=$(cpu_ticks "${PID[$name]}")
    timeout -k 5 $((secs + 20)) wrk -t2 -c"$CONNS" -d"${secs}s" "${HEADERS[@]}" "${script[@]}" "$url" \
        "${depth[@]}" >"$out" 2>&1 || rc=$?
    cpu1=$(cpu_ticks "${PID[$name]}")
    kill -0 "${PID[$name]}" 2>/dev/null || { server_log "$name"; die "$name died during $case"; }
    local parsed
    parsed=$(awk -v rc="$rc" '
        / requests in / { total = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Socket errors:/ { gsub(",", ""); errs = $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { bad = $5 }
        END {
            if (rc != 0 || rps == "") { print "FAILED"; exit }
            printf "%s %d %d %d\n", rps, errs + 0, bad + 0, total
        }' "$out")
    if [[ $parsed == FAILED ]]; then
        cat "$out" >&2
        warn "$name $case round $round: wrk exited with $rc or printed no Requests/sec"
        ERRORS=$((ERRORS + 1))
        return 0
    fi
    local rps errs bad total cpu us
    read -r rps errs bad total <<<"$parsed"
    cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')
    us=$(awk -v c="$cpu" -v n="$total" 'BEGIN { printf "%.2f", n ? c * 1e6 / n : 0 }')
    printf '    %-8s %-13s %-10s %12s req/s  errors %s  non-2xx %s  server cpu %s s, %s us/req\n' \
        "$([[ $round == 0 ]] && echo warm-up || echo "round $round")" "$name" "$case" "$rps" "$errs" "$bad" "$cpu" "$us"
    if ((errs || bad)); then
        warn "$name $case round $round: $errs socket errors, $bad non-2xx answers"
        ((round == 0)) || ERRORS=$((ERRORS + 1))
    fi
    ((round)) || return 0
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$case" "$name" "$rps" "$errs" "$bad" "$us" >>"$TMP/results.tsv"
}

# Markdown: the machine, then a row per case with each server's median req/s
# and oserver's ratio to the best of the others.
report() {
    python3 - "$TMP/results.tsv" "$TMP/machine.txt" "$(IFS=,; echo "${SERVERS[*]}")" "${CASES[*]}" <<'EOF'
import statistics, sys
results, machine, servers, cases = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4].split()
runs = {}   # (case, server) -> [req/s, ...]
cpu = {}    # (case, server) -> [server CPU microseconds per request, ...]
marked = {} # (case, server) -> runs with errors
for line in open(results):
    rnd, case, server, rps, errs, bad, us = line.rstrip("\n").split("\t")
    runs.setdefault((case, server), []).append(float(rps))
    cpu.setdefault((case, server), []).append(float(us))
    if int(errs) or int(bad):
        marked[(case, server)] = marked.get((case, server), 0) + 1
print("## oserver against hyper, actix-web and may_minihttp (TechEmpower plaintext and json)\n")
for line in open(machine):
    print("- " + line.rstrip("\n"))
print("\nMedian req/s over the rounds (higher is better); `*` marks a median that includes a run with socket errors or non-2xx answers.\n")
others = [s for s in servers if not s.startswith("oserver")]
ours = [s for s in servers if s.startswith("oserver")] if others else []
header = ["case"] + servers + [f"{s} vs best" for s in ours]
print("| " + " | ".join(header) + " |")
print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
labels = {"plaintext": "plaintext (16-deep pipelining)", "json": "json"}
for case in cases:
    med = {s: statistics.median(runs[(case, s)]) for s in servers if runs.get((case, s))}
    row = [labels.get(case, case)]
    for s in servers:
        row.append(f"{med[s]:,.0f}" + ("*" if (case, s) in marked else "") if s in med else "failed")
    best = max((s for s in others if s in med), key=lambda s: med[s], default=None)
    for s in ours:
        row.append(f"{med[s] / med[best]:.2f}x ({best})" if best and s in med else "-")
    print("| " + " | ".join(row) + " |")
print("\nServer CPU time per request, microseconds (user + system, all its threads; median over the rounds, lower is better).")
print("Less noisy than req/s when other work shares the CPUs: the client and the server compete for them, so a server that")
print("spends less per request leaves more to the client.\n")
print("| " + " | ".join(["case"] + servers) + " |")
print("|" + "|".join(["---"] + ["---:"] * len(servers)) + "|")
for case in cases:
    row = [labels.get(case, case)]
    for s in servers:
        row.append(f"{statistics.median(cpu[(case, s)]):.2f}" if cpu.get((case, s)) else "failed")
    print("| " + " | ".join(row) + " |")
print("\nEvery run (req/s, in round order):\n")
for case in cases:
    for s in servers:
        print(f"- {case}, {s}: " + ", ".join(f"{v:,.0f}" for v in runs.get((case, s), [])))
EOF
}

main() {
    parse_args "$@"
    COMMAND="bash benches/frameworks.sh --rounds $ROUNDS --duration $DURATION --warmup $WARMUP"
    if [[ $ONLY != "$(IFS=,; echo "${ALL_SERVERS[*]}")" ]]; then COMMAND+=" --only $(IFS=,; echo "${SERVERS[*]}")"; fi
    install_tools
    build
    raise_nofile
    TMP=$(mktemp -d /tmp/oserver-frameworks.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    : >"$TMP/results.tsv"
    machine_info

    local name case round order=("${SERVERS[@]}")
    for name in "${SERVERS[@]}"; do
        start_server "$name"
        check_answers "$name"
    done
    if ((WARMUP)); then
        log "warm-up, $WARMUP s per server and case"
        for name in "${SERVERS[@]}"; do
            for case in "${CASES[@]}"; do run_wrk 0 "$case" "$name"; done
        done
    fi
    for ((round = 1; round <= ROUNDS; round++)); do
        log "round $round of $ROUNDS, order: ${order[*]}"
        for case in "${CASES[@]}"; do
            for name in "${order[@]}"; do run_wrk "$round" "$case" "$name"; done
        done
        order=("${order[@]:1}" "${order[0]}") # the next round starts with the next server
    done
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$TMP/machine.txt"

    echo
    report | tee "$OUT"
    echo
    log "wrote ${OUT#"$REPO"/}"
    if ((ERRORS)); then
        warn "$ERRORS run(s) had errors; see the warnings above"
        exit 1
    fi
}

main "$@"
