#!/usr/bin/env bash
# HTTP/2 conformance: the httpwg test suite (crate httpwg-cli, RFC 9113 cases)
# against oserver's h2c (prior knowledge) on its plain port.
#
#   bash benches/conformance/httpwg.sh [--server oserver|library|h2o] [--filter TEXT]
#        [--frame-timeout MS] [--connect-timeout MS] [--limit SECS] [--parallel]
#
# Starts the server on a free 127.0.0.1 port (oserver: 2 workers, log level
# warn; h2o: 2 threads, h2c on its plain listener) with a document root made
# for the run: index.html of about 1 KB, so `/`, which every httpwg request
# asks for, is a file. Runs `httpwg -a 127.0.0.1:PORT -v` under `timeout`
# (--limit, default 300 s) and prints a summary: how many cases passed and
# failed, and each failing case's name (`RFC 9113 :: SECTION :: CASE`) with
# the first line of its reason. The last line is `httpwg: N passed, N failed`.
#
# The cases run one after the other (httpwg's SEQUENTIAL=1), so each reason
# belongs to its case (a case that panics, e.g. on a frame that never came,
# prints no "failed" line of its own: it counts as failed with its panic
# message). --parallel lets httpwg open all its connections at once (its
# default, a few seconds faster). --frame-timeout is how long a case waits for
# a frame (default 500 ms; httpwg's own default, 250 ms, flakes on a loaded
# 2-core machine); --filter keeps the cases whose name contains TEXT.
#
# Most cases send `POST /` with no body and need an answer with a body of 5
# bytes or more (any status); one, `RFC 9113 :: 8. expressing http semantics
# in http2 :: sends headers frame with te trailers`, wants status 200 to a
# `POST /` that carries `te: trailers`.
#
# --server library runs the same core as a library instead of the command:
# crates/oserver-core/examples/conformance.rs, static files plus a handler
# that answers POST with 200, which the `te: trailers` case asks of `POST /`.
#
# --server h2o runs the same against h2o (Debian's package; installed with apt
# if missing), as a reference for the suite itself: h2o 2.2.5 passes 91 of
# 107 (it answers 405 to the `te: trailers` POST, answers requests whose
# header fields are malformed or connection-specific instead of resetting the
# stream, and resets rather than GOAWAYs a smaller stream identifier).
#
# Environment: OSERVER_BIN=path skips the cargo build (else `cargo build
# --release -p oserver-cli`, CARGO_TARGET_DIR honoured); HTTPWG_KEEP_TMP=1
# keeps the temp dir (httpwg's full output, the server's log).
# Exit status: 0 when every case passed, 1 when any failed or the run did not
# finish, 2 when the suite could not run at all.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SERVER=oserver
FILTER=""
FRAME_MS=500
CONNECT_MS=1000
LIMIT=300
SEQUENTIAL=1
TMP=""
SPID=""

log() { printf '==> %s\n' "$*"; }
die() {
    printf '!!! ERROR: %s\n' "$*" >&2
    exit 2
}
usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

while (($#)); do
    case "$1" in
    --server) SERVER=${2:?}; shift 2 ;;
    --filter) FILTER=${2:?}; shift 2 ;;
    --frame-timeout) FRAME_MS=${2:?}; shift 2 ;;
    --connect-timeout) CONNECT_MS=${2:?}; shift 2 ;;
    --limit) LIMIT=${2:?}; shift 2 ;;
    --parallel) SEQUENTIAL=0; shift ;;
    -h | --help) usage 0 ;;
    *) printf 'unknown argument: %s\n' "$1" >&2; usage 2 ;;
    esac
done
[[ $SERVER =~ ^(oserver|library|h2o)$ ]] || die "--server: oserver, library or h2o, not '$SERVER'"
for n in "$FRAME_MS" "$CONNECT_MS" "$LIMIT"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "timeouts want positive integers, got '$n'"
done

apt_install() {
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    log "installing $*"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@"
}

find_httpwg() {
    HTTPWG=$(command -v httpwg || true)
    [[ -n $HTTPWG ]] || [[ ! -x $HOME/.cargo/bin/httpwg ]] || HTTPWG=$HOME/.cargo/bin/httpwg
    if [[ -z $HTTPWG ]]; then
        log "cargo install --locked httpwg-cli"
        timeout 1200 cargo install --locked httpwg-cli || die "could not install httpwg-cli"
        HTTPWG=$HOME/.cargo/bin/httpwg
    fi
    [[ -x $HTTPWG ]] || die "no httpwg binary"
}

build_example() {
    log "cargo build --release -p oserver-core --example conformance"
    (cd "$REPO" && cargo build --release -p oserver-core --example conformance) || die "cargo build failed"
    local target=${CARGO_TARGET_DIR:-$REPO/target}
    EXAMPLE_BIN="$target/release/examples/conformance"
    [[ -x $EXAMPLE_BIN ]] || die "no binary at $EXAMPLE_BIN after the build"
}

build_oserver() {
    if [[ -n ${OSERVER_BIN:-} ]]; then
        [[ -x $OSERVER_BIN ]] || die "OSERVER_BIN=$OSERVER_BIN is not executable"
        return 0
    fi
    log "cargo build --release -p oserver-cli"
    (cd "$REPO" && cargo build --release -p oserver-cli) || die "cargo build failed"
    local target=${CARGO_TARGET_DIR:-target}
    [[ $target == /* ]] || target="$REPO/$target"
    OSERVER_BIN="$target/release/oserver"
    [[ -x $OSERVER_BIN ]] || die "no binary at $OSERVER_BIN after the build"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cleanup() {
    if [[ -n $SPID ]]; then
        kill -TERM -- "-$SPID" 2>/dev/null || true
        local i
        for ((i = 0; i < 50; i++)); do
            kill -0 -- "-$SPID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$SPID" 2>/dev/null || true
        wait "$SPID" 2>/dev/null || true
    fi
    if [[ -n $TMP && -n ${HTTPWG_KEEP_TMP:-} ]]; then
        echo "kept $TMP"
    elif [[ -n $TMP ]]; then
        rm -rf "$TMP"
    fi
    return 0
}

start_server() {
    local port=$1 root=$2
    case "$SERVER" in
    library)
        setsid "$EXAMPLE_BIN" "127.0.0.1:$port" "$root" >"$TMP/server.log" 2>&1 &
        ;;
    oserver)
        setsid "$OSERVER_BIN" -r "$root" -p "$port" -w 2 --log-level warn >"$TMP/server.log" 2>&1 &
        ;;
    h2o)
        local user=""
        ((EUID == 0)) && user="user: root"
        cat >"$TMP/h2o.conf" <<EOF
# Generated by benches/conformance/httpwg.sh
$user
num-threads: 2
error-log: $TMP/server.log
pid-file: $TMP/h2o.pid
listen:
  host: 127.0.0.1
  port: $port
hosts:
  default:
    paths:
      /:
        file.dir: $root
EOF
        setsid h2o -c "$TMP/h2o.conf" >"$TMP/server.out" 2>&1 &
        ;;
    esac
    SPID=$!
    local i code=""
    for ((i = 0; i < 100; i++)); do
        kill -0 "$SPID" 2>/dev/null || { tail -n 20 "$TMP"/server.* >&2; die "$SERVER exited at startup"; }
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/" || true)
        [[ $code == 200 ]] && break
        sleep 0.1
    done
    [[ $code == 200 ]] || { tail -n 20 "$TMP"/server.* >&2; die "$SERVER: GET / gave '$code', not 200, after 10 s"; }
    log "$SERVER ready: pid $SPID, 127.0.0.1:$port, root $root"
}

# What the suite printed, as a summary. httpwg writes to stderr, per case:
#   🔷 Running test: NAME                (with -v)
#   ✅ Test passed: NAME
#   ❌ Test failed: NAME  then the error report on the following lines
# and a case that panics (an unwrap on a frame that never came, a failed
# assert) prints the panic report instead of a "failed" line. Then
#   🚄 Passed N/M tests in S seconds against ...
summarize() {
    local out=$1 rc=$2
    python3 - "$out" "$rc" "$SEQUENTIAL" <<'EOF'
import re
import sys

path, rc, sequential = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
ansi = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
lines = [ansi.sub("", l.rstrip("\n")) for l in open(path, errors="replace")]

ran, passed, failed = [], set(), set()
said = {}  # case -> the lines printed while it ran (sequential mode only)
current = None
summary = None
NOISE = ("Holding ", "Location:", "Backtrace omitted", "Run with", "Awaiting",
         "The application panicked (crashed).", "====")
for line in lines:
    m = re.match(r"^\S*\s*Running test: (.*)$", line)
    if m:
        current = m.group(1).strip()
        ran.append(current)
        continue
    m = re.match(r"^\S*\s*Test passed: (.*)$", line)
    if m:
        passed.add(m.group(1).strip())
        continue
    m = re.match(r"^\S*\s*Test failed: (.*)$", line)
    if m:
        failed.add(m.group(1).strip())
        continue
    m = re.match(r"^\S*\s*Passed (\d+)/(\d+) tests in ([0-9.]+) seconds", line)
    if m:
        summary = m.groups()
        current = None
        continue
    t = line.strip()
    if re.search(r"\.rs:\d+$", t):  # where in httpwg's source: no news
        continue
    if sequential and current and t and not t.startswith(NOISE):
        said.setdefault(current, []).append(t)

# A case's reason: the first lines it printed (an error report's "0: ..." or a
# panic's message with an assertion's left and right).
reason = {n: " | ".join(v[:3])[:300] for n, v in said.items()}
not_passed = [n for n in dict.fromkeys(ran) if n not in passed]
print()
print("httpwg summary")
if summary:
    print(f"  suite's own count: passed {summary[0]}/{summary[1]} in {summary[2]} s")
else:
    print("  the suite printed no final count: it did not finish"
          + (" (time limit reached)" if rc in (124, 137) else f" (exit status {rc})"))
print(f"  cases run: {len(set(ran))}, passed: {len(passed)}, failed: {len(not_passed)}"
      f" (of which {len([n for n in not_passed if n not in failed])} panicked or never finished)")
if not_passed:
    print("  failing cases:")
    for n in sorted(not_passed):
        why = reason.get(n, "")
        print(f"    {n}" + (f"\n        {why}" if why else ""))
print()
print(f"httpwg: {len(passed)} passed, {len(not_passed)} failed")
complete = summary is not None and rc not in (124, 137)
sys.exit(0 if complete and not not_passed and ran else 1)
EOF
}

main() {
    command -v curl >/dev/null || apt_install curl
    command -v python3 >/dev/null || apt_install python3
    if [[ $SERVER == h2o ]]; then command -v h2o >/dev/null || apt_install h2o; fi
    find_httpwg
    if [[ $SERVER == oserver ]]; then build_oserver; fi
    if [[ $SERVER == library ]]; then build_example; fi
    TMP=$(mktemp -d /tmp/oserver-httpwg.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$TMP/root"
    {
        printf '<!DOCTYPE html>\n<html><head><title>httpwg</title></head><body>\n'
        for _ in $(seq 16); do printf '<p>A page for the HTTP/2 conformance cases of httpwg.</p>\n'; done
        printf '</body></html>\n'
    } >"$TMP/root/index.html"
    local port
    port=$(free_port)
    start_server "$port" "$TMP/root"

    local args=(-a "127.0.0.1:$port" --frame-timeout "$FRAME_MS" --connect-timeout "$CONNECT_MS" -v)
    [[ -z $FILTER ]] || args+=(-f "$FILTER")
    log "SEQUENTIAL=$SEQUENTIAL timeout $LIMIT $HTTPWG ${args[*]}"
    local rc=0 start=$SECONDS
    # RUST_LOG=warn: httpwg's debug tracing of every frame would bury the results.
    SEQUENTIAL=$SEQUENTIAL RUST_LOG=warn RUST_BACKTRACE=0 timeout -k 5 "$LIMIT" "$HTTPWG" "${args[@]}" \
        >"$TMP/httpwg.txt" 2>&1 || rc=$?
    log "httpwg took $((SECONDS - start)) s, exit status $rc; full output: $TMP/httpwg.txt$([[ -n ${HTTPWG_KEEP_TMP:-} ]] || echo ' (removed at exit unless HTTPWG_KEEP_TMP=1)')"
    kill -0 "$SPID" 2>/dev/null || log "!!! $SERVER is no longer running (see $TMP/server.log)"
    if [[ -s $TMP/server.log ]]; then
        log "$SERVER logged (last 10 lines):"
        tail -n 10 "$TMP/server.log" | sed 's/^/    /'
    fi
    summarize "$TMP/httpwg.txt" "$rc"
}

main "$@"
