#!/usr/bin/env bash
# Load benchmark: oserver against nginx and lighttpd on this machine.
#
#   bash benches/load.sh [--rounds N] [--duration SECS] [--baseline PATH]
#                        [--only oserver,oserver-base,oserver-tuned,nginx,lighttpd] [--ab]
#
# oserver runs twice: `oserver` with its defaults, and `oserver-tuned` with
# --cpu-affinity --sched-batch (workers pinned one per CPU, connections
# steered to the worker on their CPU, SCHED_BATCH workers; see the README).
#
# --baseline PATH (or OSERVER_BASE_BIN=PATH) adds `oserver-base`: the oserver
# binary at PATH (e.g. a release build of an older commit), started exactly
# like `oserver` (its defaults, the same flags, except any flag the baseline's
# --help does not list, which is left out with a warning). The report then
# gets a column oserver / oserver-base per case; within 3% counts as "same".
# To show a refactor lost no speed, build the old commit outside the repo:
#   git worktree add /tmp/base-src COMMIT
#   (cd /tmp/base-src && CARGO_TARGET_DIR=/tmp/base-target cargo build --release)
#   bash benches/load.sh --baseline /tmp/base-target/release/oserver --only oserver,oserver-base
# Without --only, a baseline joins the four default servers.
#
# Each round starts the selected servers fresh on 127.0.0.1 (free ports, 2 workers
# each, sendfile, no access log, the repository root as document root), then:
#   (d) memory per idle keep-alive connection (benches/load/idle.py, 10,000 conns),
#   (a) wrk -t2 -c100 on /httptest/test.html (~100 B), keep-alive,
#   (b) the same on /httptest/large.html (~1 MB),
#   (c) (a) with `Connection: close`,
# running the servers one after the other per case, in an order that rotates each
# round so no server always goes first. Prints medians and oserver's ratio to the
# better of the others, writes them to benches/load-results.md, and exits non-zero
# if any run had a socket error, a non-2xx response or a failed idle connection.
# Defaults: 2 rounds of 10 s runs, about 5 minutes in all (3 rounds: 8).
#
# --ab adds ApacheBench, a second client, against oserver (or the first server
# --only leaves): 50,000 requests for the 1 MB page, a new connection each
# (`ab -n 50000 -c 100 -r`). Off by default: it takes 30-40 s on 2 cores.
#
# Environment: OSERVER_BIN=path skips the cargo build; OSERVER_BASE_BIN=path is
# --baseline (the option wins); CARGO_TARGET_DIR is honoured;
# LOAD_KEEP_TMP=1 keeps the temp dir (generated configs, server logs, raw wrk output).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$REPO/benches/load"
# nginx and lighttpd live in /usr/sbin, which is not on a normal user's PATH.
export PATH="$PATH:/usr/sbin:/sbin"

ROUNDS=2
DURATION=10
ONLY="" # empty: the default servers below
DEFAULT_SERVERS="oserver,oserver-tuned,nginx,lighttpd"
ALL_SERVERS=(oserver oserver-base oserver-tuned nginx lighttpd) # column order
BASE_BIN=${OSERVER_BASE_BIN:-} # --baseline; empty: no oserver-base
RUN_AB=0
IDLE_CONNS=10000
SMALL=/httptest/test.html
LARGE=/httptest/large.html

TMP=""
declare -A PID=() PORT=()
ERRORS=0 # runs with any error; non-zero makes the script fail at the end

log() { printf '==> %s\n' "$*"; }
warn() { printf '!!! WARNING: %s\n' "$*" >&2; }
die() {
    printf '!!! ERROR: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

parse_args() {
    while (($#)); do
        case "$1" in
        --rounds) ROUNDS=${2:?}; shift 2 ;;
        --duration) DURATION=${2:?}; shift 2 ;;
        --only) ONLY=${2:?}; shift 2 ;;
        --baseline) BASE_BIN=${2:?}; shift 2 ;;
        --ab) RUN_AB=1; shift ;;
        -h | --help) usage 0 ;;
        *) warn "unknown argument: $1"; usage 2 ;;
        esac
    done
    [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds wants a positive integer"
    [[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "--duration wants a positive integer"
    if [[ -z $ONLY ]]; then
        ONLY=$DEFAULT_SERVERS
        if [[ -n $BASE_BIN ]]; then ONLY+=",oserver-base"; fi
    fi
    SERVERS=()
    local s
    for s in ${ONLY//,/ }; do
        [[ $s =~ ^(oserver|oserver-base|oserver-tuned|nginx|lighttpd)$ ]] || die "--only: unknown server '$s'"
    done
    for s in "${ALL_SERVERS[@]}"; do # fixed column order whatever --only says
        if [[ ",$ONLY," == *",$s,"* ]]; then SERVERS+=("$s"); fi
    done
    ((${#SERVERS[@]})) || die "--only selected no server"
    if has oserver-base; then
        [[ -n $BASE_BIN ]] || die "oserver-base needs a baseline binary: --baseline PATH or OSERVER_BASE_BIN=PATH"
        [[ -f $BASE_BIN && -x $BASE_BIN ]] || die "baseline $BASE_BIN is not an executable file"
        BASE_BIN=$(realpath "$BASE_BIN")
    elif [[ -n $BASE_BIN ]]; then
        warn "--only leaves out oserver-base: the baseline $BASE_BIN is not run"
        BASE_BIN=""
    fi
}

has() { [[ " ${SERVERS[*]} " == *" $1 "* ]]; }

# --- setup -------------------------------------------------------------------

install_tools() {
    local -A pkg_of=([wrk]=wrk [curl]=curl [python3]=python3)
    if has nginx; then pkg_of[nginx]=nginx-light; fi
    if has lighttpd; then pkg_of[lighttpd]=lighttpd; fi
    if ((RUN_AB)); then pkg_of[ab]=apache2-utils; fi
    local cmd missing=()
    for cmd in "${!pkg_of[@]}"; do
        command -v "$cmd" >/dev/null || missing+=("${pkg_of[$cmd]}")
    done
    ((${#missing[@]})) || return 0
    log "installing ${missing[*]}"
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
}

build_oserver() {
    has oserver || has oserver-tuned || return 0
    if [[ -n ${OSERVER_BIN:-} ]]; then
        [[ -x $OSERVER_BIN ]] || die "OSERVER_BIN=$OSERVER_BIN is not executable"
        return 0
    fi
    log "cargo build --release -p oserver-cli"
    (cd "$REPO" && cargo build --release -p oserver-cli)
    local target=${CARGO_TARGET_DIR:-target}
    [[ $target == /* ]] || target="$REPO/$target"
    OSERVER_BIN="$target/release/oserver"
    [[ -x $OSERVER_BIN ]] || die "no binary at $OSERVER_BIN after the build"
}

# The flags every oserver run gets besides -r and -p, one flag (and its value)
# per word group; oserver-tuned adds TUNED_FLAGS. --keepalive-timeout 65
# matches nginx's keepalive_timeout and lighttpd's max-keep-alive-idle; the
# defaults differ (15 s, 75 s, 5 s). --keepalive-requests 0 lifts the
# per-connection request cap as nginx's keepalive_requests 1000000 does here
# (a baseline older than the flag has no cap and drops it).
OSERVER_FLAGS=("-w 2" "--log-level warn" "--keepalive-timeout 65" "--keepalive-requests 0")
TUNED_FLAGS=(--cpu-affinity --sched-batch)
OSERVER_ARGS=() # OSERVER_FLAGS split into words
BASE_ARGS=()    # the OSERVER_FLAGS the baseline binary knows, split into words
BASE_DROPPED=() # and those it does not

# oserver-base runs with oserver's flags, but a baseline built from an older
# commit may not know all of them (and would exit at startup): it gets only
# the flags its --help lists.
split_flags() {
    local help="" flag words
    if has oserver-base; then help=$("$BASE_BIN" --help 2>&1) || true; fi
    for flag in "${OSERVER_FLAGS[@]}"; do
        read -ra words <<<"$flag"
        OSERVER_ARGS+=("${words[@]}")
        has oserver-base || continue
        if grep -qE -- "(^|[[:space:],])${words[0]}([[:space:],=]|\$)" <<<"$help"; then
            BASE_ARGS+=("${words[@]}")
        else
            BASE_DROPPED+=("$flag")
        fi
    done
    if ((${#BASE_DROPPED[@]})); then
        warn "oserver-base runs without $(IFS=,; echo "${BASE_DROPPED[*]}"): $BASE_BIN --help does not list it"
    fi
}

check_fixtures() {
    local f
    for f in "$SMALL" "$LARGE"; do
        [[ -f $REPO$f ]] || die "missing fixture $REPO$f"
    done
}

# The servers inherit this limit. 10,000 idle connections need 10,000 fds on
# the server side (plus the client's own, raised by idle.py), and lighttpd and
# nginx size their tables from it. 65536 is plenty; an unprivileged or
# containerised run may only get its hard limit.
raise_nofile() {
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    NOFILE=$(ulimit -n)
    [[ $NOFILE == unlimited ]] && NOFILE=65536
    ((NOFILE >= IDLE_CONNS + 1000)) ||
        warn "open-file limit $NOFILE is low for $IDLE_CONNS idle connections"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

machine_info() {
    local out="$TMP/machine.txt" v
    {
        echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "cpu: $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
        echo "kernel: $(uname -sr)"
        echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "wrk: $(wrk -v 2>&1 | head -1 || true)"
        if has nginx; then echo "nginx: $(nginx -v 2>&1)"; fi
        if has lighttpd; then echo "lighttpd: $(lighttpd -v 2>&1 | head -1)"; fi
        if has oserver || has oserver-tuned; then
            v=$("$OSERVER_BIN" --version 2>/dev/null || echo "unknown (no --version)")
            echo "oserver: $v"
        fi
        if has oserver-base; then
            v=$("$BASE_BIN" --version 2>/dev/null || echo "unknown (no --version)")
            echo "oserver-base: $v, $BASE_BIN"
            if ((${#BASE_DROPPED[@]})); then
                echo "oserver-base flags left out (unknown to it): $(IFS=,; echo "${BASE_DROPPED[*]}")"
            fi
        fi
        echo "open-file limit: $NOFILE"
        echo "settings: 2 workers each, sendfile, no access log, keep-alive timeout 65 s, no per-connection request cap (lighttpd: 65535); client and servers share the machine"
    } >"$out"
    cat "$out"
    # Client and servers share the CPUs, so anything else running skews the numbers.
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    if awk -v l="$load" 'BEGIN { exit !(l > 1.0) }'; then
        warn "load average is $load before the benchmark: other work on this machine will make the numbers noisy"
    fi
}

# --- server configs ----------------------------------------------------------

write_nginx_conf() {
    local dir=$1 port=$2 user=""
    # As root nginx would switch its workers to "nobody", who may not read the
    # repository; as a normal user the directive is ignored with a warning.
    if ((EUID == 0)); then user="user root;"; fi
    # worker_connections counts every connection of a worker; 20000 (or the fd
    # limit if lower) so 10,000 idle ones fit even if one worker gets them all.
    # nginx allocates and touches that many connection slots (~0.4 KiB each) at
    # startup, so they sit in the idle test's "before" RSS, not in its per-conn delta.
    local wc=$((NOFILE < 20000 ? NOFILE : 20000))
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
# Generated by benches/load.sh
$user
worker_processes 2;
worker_rlimit_nofile $NOFILE;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    use epoll;
    worker_connections $wc;
    # multi_accept left at its default (off); accept_mutex is moot with reuseport.
}
http {
    types { text/html html; }
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    # oserver has no per-connection request cap; nginx's default 1000 would
    # make wrk reconnect in the middle of a keep-alive run.
    keepalive_requests 1000000;
    keepalive_timeout 65;
    # Temp paths default to /var/lib/nginx, which may not exist or be writable.
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        # reuseport gives each worker its own socket, like oserver's workers.
        listen 127.0.0.1:$port backlog=1024 reuseport;
        root $REPO;
    }
}
EOF
}

write_lighttpd_conf() {
    local dir=$1 port=$2
    # max-fds is a 16-bit setting in lighttpd.
    local fds=$((NOFILE < 65535 ? NOFILE : 65535))
    cat >"$dir/lighttpd.conf" <<EOF
# Generated by benches/load.sh
server.document-root = "$REPO"
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = "$dir/error.log"
mimetype.assign = (".html" => "text/html")
# 2 forked workers sharing one listening socket (lighttpd has no reuseport):
# which worker accepts is a race, and one may take all of wrk's 100 connections.
server.max-worker = 2
server.network-backend = "sendfile"
server.listen-backlog = 1024
# 0 would disable keep-alive; the setting is 16-bit, so 65535 is the largest
# cap (6.5 million requests per run at -c100, far above what 2 cores serve).
server.max-keep-alive-requests = 65535
# Default 5 s would close idle connections while the idle test opens 10,000.
server.max-keep-alive-idle = 65
server.max-fds = $fds
# lighttpd refuses more than max-fds/2: a connection may hold a file fd too.
# Both limits apply to each worker process.
server.max-connections = $((fds / 2))
# server.stat-cache-engine is left at its default ("simple": stat() results
# cached for about a second), as nginx's open_file_cache is left at its default (off).
EOF
}

# --- servers -----------------------------------------------------------------

# Start server $1 on a new free port. setsid makes its pid the process-group id,
# so stop_server can signal the master and all its workers at once.
start_server() {
    local name=$1 dir="$TMP/$1" port
    rm -rf "$dir"
    mkdir -p "$dir"
    port=$(free_port)
    case "$name" in
    oserver)
        setsid "$OSERVER_BIN" -r "$REPO" -p "$port" "${OSERVER_ARGS[@]}" >"$dir/stderr.log" 2>&1 &
        ;;
    oserver-base)
        setsid "$BASE_BIN" -r "$REPO" -p "$port" "${BASE_ARGS[@]}" >"$dir/stderr.log" 2>&1 &
        ;;
    oserver-tuned)
        setsid "$OSERVER_BIN" -r "$REPO" -p "$port" "${OSERVER_ARGS[@]}" "${TUNED_FLAGS[@]}" \
            >"$dir/stderr.log" 2>&1 &
        ;;
    nginx)
        write_nginx_conf "$dir" "$port"
        setsid nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stderr.log" 2>&1 &
        ;;
    lighttpd)
        write_lighttpd_conf "$dir" "$port"
        setsid lighttpd -D -f "$dir/lighttpd.conf" >"$dir/stderr.log" 2>&1 &
        ;;
    esac
    PID[$name]=$!
    PORT[$name]=$port
    wait_ready "$name"
}

server_logs() {
    local f
    for f in "$TMP/$1"/*.log; do
        [[ -s $f ]] && { echo "--- $f"; tail -n 20 "$f"; }
    done >&2
    return 0
}

# After a server stops: anything it logged (at warn level or above) is worth a
# look, except lighttpd's unconditional start/stop notices.
show_server_log() {
    local lines
    lines=$(cat "$TMP/$1"/*.log 2>/dev/null | grep -v -E '\) server (started|stopped)' || true)
    if [[ -n $lines ]]; then
        log "$1 logged:"
        printf '%s\n' "$lines" | tail -n 20 | sed 's/^/    /'
    fi
}

wait_ready() {
    local name=$1 url="http://127.0.0.1:${PORT[$1]}" code="" i
    for ((i = 0; i < 100; i++)); do
        kill -0 "${PID[$name]}" 2>/dev/null || { server_logs "$name"; die "$name exited at startup"; }
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url$SMALL" || true)
        [[ $code == 200 ]] && break
        sleep 0.1
    done
    [[ $code == 200 ]] || { server_logs "$name"; die "$name: GET $SMALL gave '$code', not 200, after 10 s"; }
    local got want
    got=$(curl -s -o /dev/null -w '%{size_download}' --max-time 10 "$url$LARGE")
    want=$(stat -c %s "$REPO$LARGE")
    [[ $got == "$want" ]] || die "$name: GET $LARGE gave $got bytes, want $want"
    # Workers are forked after the listener is up; give them a moment.
    local procs
    for ((i = 0; i < 20; i++)); do
        procs=$((1 + $(pgrep -c -P "${PID[$name]}" || true)))
        ((procs >= 3)) && break
        sleep 0.1
    done
    ((procs == 3)) || warn "$name has $procs processes, expected master + 2 workers"
    log "$name ready: pid ${PID[$name]}, $procs processes, port ${PORT[$name]}"
}

stop_server() {
    local name=$1 pid=${PID[$1]:-} i
    [[ -n $pid ]] || return 0
    kill -TERM -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 -- "-$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "PID[$name]"
}

cleanup() {
    local name
    for name in "${!PID[@]}"; do stop_server "$name"; done
    if [[ -n $TMP && -n ${LOAD_KEEP_TMP:-} ]]; then
        echo "kept $TMP"
    elif [[ -n $TMP ]]; then
        rm -rf "$TMP"
    fi
    return 0
}

# --- measurements ------------------------------------------------------------

# CPU time (utime + stime, in clock ticks) of a server's master and workers, as
# "pid:ticks" words. Printed per run because on a small machine the client and
# the servers compete for the same cores: how a server spreads (or concentrates)
# its load over its workers changes what is left for wrk.
cpu_ticks() {
    local pid
    for pid in "$1" $(pgrep -P "$1" || true); do
        awk -v pid="$pid" '{ sub(/.*\) /, ""); print pid ":" $12 + $13 }' "/proc/$pid/stat" 2>/dev/null || true
    done
}

# Seconds of CPU per process between two cpu_ticks outputs, e.g. "0.00 1.52 1.49".
cpu_seconds() {
    local hz
    hz=$(getconf CLK_TCK)
    awk -v hz="$hz" -v before="$1" -v after="$2" 'BEGIN {
        n = split(before, b, " "); for (i = 1; i <= n; i++) { split(b[i], kv, ":"); t0[kv[1]] = kv[2] }
        n = split(after, a, " ")
        for (i = 1; i <= n; i++) { split(a[i], kv, ":"); printf "%s%.2f", (i > 1 ? " " : ""), (kv[2] - t0[kv[1]]) / hz }
    }'
}

# Append "round case server req/s MiB/s socket_errors non2xx" for one wrk run.
run_wrk() {
    local round=$1 case=$2 name=$3 path=$4
    shift 4 # the rest goes to wrk (the Connection: close header)
    local out="$TMP/wrk-$round-$case-$name.txt" cpu0 cpu1
    cpu0=$(cpu_ticks "${PID[$name]}")
    wrk -t2 -c100 -d"${DURATION}s" "$@" "http://127.0.0.1:${PORT[$name]}$path" >"$out" 2>&1 || true
    cpu1=$(cpu_ticks "${PID[$name]}")
    local parsed
    parsed=$(awk '
        function mib(s,   n, u) {  # wrk prints 1024-based B, KB, MB, GB
            n = s + 0; u = s; sub(/^[0-9.]+/, "", u)
            if (u == "KB") n /= 1024; else if (u == "MB") n *= 1; else if (u == "GB") n *= 1024
            else if (u == "TB") n *= 1048576; else n /= 1048576
            return n
        }
        /^Requests\/sec:/ { rps = $2 }
        /^Transfer\/sec:/ { mibs = mib($2) }
        /Socket errors:/ { gsub(",", ""); c = $4; r = $6; w = $8; t = $10 }
        /Non-2xx or 3xx responses:/ { bad = $5 }
        END {
            if (rps == "") { print "FAILED"; exit }
            printf "%s %.2f %d %d %d %d %d\n", rps, mibs, c + r + w + t, bad + 0, c, r, w, t
        }' "$out")
    if [[ $parsed == FAILED ]]; then
        cat "$out" >&2
        warn "$name $case round $round: wrk printed no Requests/sec"
        ERRORS=$((ERRORS + 1))
        return 0
    fi
    local rps mibs errs bad c r w t
    read -r rps mibs errs bad c r w t <<<"$parsed"
    printf '    %-13s %-12s %12s req/s %10s MiB/s  errors %s  non-2xx %s  cpu s (master workers) %s\n' \
        "$name" "$case" "$rps" "$mibs" "$errs" "$bad" "$(cpu_seconds "$cpu0" "$cpu1")"
    ((errs == 0)) || warn "$name $case round $round: socket errors connect $c, read $r, write $w, timeout $t"
    ((bad == 0)) || warn "$name $case round $round: $bad non-2xx/3xx responses"
    ((errs == 0 && bad == 0)) || ERRORS=$((ERRORS + 1))
    kill -0 "${PID[$name]}" 2>/dev/null || { server_logs "$name"; die "$name died during $case"; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$case" "$name" "$rps" "$mibs" "$errs" "$bad" >>"$TMP/results.tsv"
}

run_idle() {
    local round=$1 name=$2 line
    line=$(python3 "$HERE/idle.py" --port "${PORT[$name]}" --pid "${PID[$name]}" \
        --conns "$IDLE_CONNS" --path "$SMALL") || die "idle.py failed against $name"
    local -A f=()
    local kv
    for kv in $line; do f[${kv%%=*}]=${kv#*=}; done
    local failed=$((IDLE_CONNS - f[open])) kib=${f[kib_per_conn]}
    printf '    %-13s %-12s %8s KiB/conn  (RSS %s -> %s KiB, %s/%s open, opened in %s s, per process %s)\n' \
        "$name" idle "${f[kib_per_conn]}" "${f[before_kib]}" "${f[after_kib]}" \
        "${f[open]}" "$IDLE_CONNS" "${f[open_secs]}" "${f[per_proc]}"
    if ((failed)); then
        warn "$name idle round $round: $failed of $IDLE_CONNS connections failed or were closed"
        ERRORS=$((ERRORS + 1))
        kib=- # not a per-connection figure any more; report.py leaves it out
    fi
    printf '%s\tidle\t%s\t%s\t%s\t%s\t0\n' "$round" "$name" "$kib" "${f[open_secs]}" "$failed" >>"$TMP/results.tsv"
}

# One round: fresh servers (so the idle test sees a server that has not yet
# grown its buffers or heap), then every case with the servers in turn.
run_round() {
    local round=$1 order=("${@:2}") name
    log "round $round of $ROUNDS, order: ${order[*]}"
    for name in "${order[@]}"; do start_server "$name"; done
    for name in "${order[@]}"; do run_idle "$round" "$name"; done
    for name in "${order[@]}"; do run_wrk "$round" small_ka "$name" "$SMALL"; done
    for name in "${order[@]}"; do run_wrk "$round" large_ka "$name" "$LARGE"; done
    for name in "${order[@]}"; do run_wrk "$round" small_close "$name" "$SMALL" -H "Connection: close"; done
    for name in "${order[@]}"; do
        stop_server "$name"
        show_server_log "$name"
    done
}

# ApacheBench against oserver (or the first server chosen with --only): a
# different client, one new connection per request, 1 MB each.
run_ab() {
    local name=${SERVERS[0]}
    start_server "$name"
    log "ab -n 50000 -c 100 -r against $name (${LARGE})"
    local out="$TMP/ab.txt" start=$SECONDS
    ab -n 50000 -c 100 -r "http://127.0.0.1:${PORT[$name]}$LARGE" >"$out" 2>&1 || true
    grep -E '^(Complete requests|Failed requests|Non-2xx responses|Requests per second|Transfer rate):' "$out" |
        sed 's/^/    /'
    log "ab took $((SECONDS - start)) s"
    local failed
    failed=$(awk '/^Failed requests:/ { print $3 }' "$out")
    if [[ $failed != 0 ]] || grep -q '^Non-2xx responses:' "$out"; then
        warn "ab against $name: failed requests ${failed:-unknown}"
        ERRORS=$((ERRORS + 1))
    fi
    stop_server "$name"
}

main() {
    parse_args "$@"
    local list
    list=$(IFS=,; echo "${SERVERS[*]}")
    local command="bash benches/load.sh --rounds $ROUNDS --duration $DURATION --only $list"
    if [[ -n $BASE_BIN ]]; then command+=" --baseline $BASE_BIN"; fi
    if ((RUN_AB)); then command+=" --ab"; fi
    install_tools
    build_oserver
    split_flags
    check_fixtures
    raise_nofile
    TMP=$(mktemp -d /tmp/oserver-load.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    : >"$TMP/results.tsv"
    machine_info

    local round order=("${SERVERS[@]}")
    for ((round = 1; round <= ROUNDS; round++)); do
        run_round "$round" "${order[@]}"
        order=("${order[@]:1}" "${order[0]}") # rotate: next round starts with the next server
    done
    if ((RUN_AB)); then run_ab; fi
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$TMP/machine.txt"

    echo
    python3 "$HERE/report.py" --results "$TMP/results.tsv" --machine "$TMP/machine.txt" \
        --servers "$list" --command "$command" \
        --out "$REPO/benches/load-results.md"
    echo
    log "wrote benches/load-results.md"
    if ((ERRORS)); then
        warn "$ERRORS run(s) had errors; see the warnings above"
        exit 1
    fi
}

main "$@"
