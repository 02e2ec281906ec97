#!/usr/bin/env bash
# Load benchmark: oserver against nginx, lighttpd, h2o and Caddy on this
# machine.
#
#   bash benches/load.sh [--rounds N] [--duration SECS] [--baseline PATH] [--ab]
#                        [--only oserver,oserver-base,oserver-tuned,nginx,lighttpd,h2o,caddy,
#                                floor-epoll,floor-uring]
#                        [--tls] [--h2] [--cases a,b,c,...,n] [--out PATH]
#
# oserver runs twice: `oserver` with its defaults, and `oserver-tuned` with
# --cpu-affinity --sched-batch forced on (workers pinned one per CPU,
# connections steered to the worker on their CPU, SCHED_BATCH workers; see the
# README). On 127.0.0.1 with one worker per CPU the defaults decide the same
# (`auto`), so there the two columns are one configuration measured twice:
# their difference shows the run's noise.
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
# Without --only, a baseline joins the default servers.
#
# Each round starts the selected servers fresh on 127.0.0.1 (free ports, 2 workers
# each, sendfile, no access log, the repository root as document root), then:
#   (d) memory per idle keep-alive connection (benches/load/idle.py, 10,000 conns),
#   (a) wrk -t2 -c100 on /httptest/test.html (~100 B), keep-alive,
#   (b) the same on /httptest/large.html (~1 MB),
#   (c) (a) with `Connection: close`,
#   (m) (a) with 1,000 connections (wrk -t2 -c1000),
#   (n) (a) with 5,000 connections (wrk -t2 -c5000),
# and with --tls the same over HTTPS, on a second port of the same servers:
#   (h) memory per idle TLS keep-alive connection (10,000 connections, each a
#       full handshake and one request; on servers started afresh after (d)),
#   (e) (a) over HTTPS, (f) (b) over HTTPS,
#   (g) (c) over HTTPS: a new connection and a full handshake per request (wrk
#       resumes no session),
# running the servers one after the other per case, in an order that rotates each
# round so no server always goes first. Prints medians and oserver's ratio to the
# best of the others, each round's ratio (to that round's best other) for the
# cases with a target, and each server's CPU time per request in the wrk cases
# (two views the shared machine's noise moves less than req/s medians) with
# wrk's own beside it (server and client share the CPUs: the two sums show
# how much of the machine a server leaves to the client),
# writes them to benches/load-results.md, and exits non-zero
# if any run had a socket error, a non-2xx response or a failed idle connection.
#
# --h2 adds the HTTP/2 cases, run with h2load (Debian's nghttp2-client) for
# --duration seconds after 1 s of warm-up, 2 threads, 100 connections:
#   (i) the ~100 B file over h2 and TLS (ALPN h2 only), 10 streams in flight
#       per connection (h2load -c100 -m10),
#   (j) the ~1 MB file over h2 and TLS, one stream per connection (-c100 -m1),
#   (k) (i) over h2c (prior knowledge) on the plain port,
#   (l) (j) over h2c on the plain port.
# (i) and (j) run against every server with HTTPS (nginx with `http2` on its
# TLS listener, h2o and Caddy by default; lighttpd 1.4.69 too); (k) and (l)
# against the h2c servers only, oserver (all three) and h2o (h2o answers h2c
# prior knowledge on a plain listener by default; nginx cannot serve h2c and
# HTTP/1.1 on one port). A run counts only if h2load negotiated h2 (h2c) and
# every request succeeded with a 2xx: a run with a failed, errored or timed-out
# request, a non-2xx status or another protocol is marked invalid, reported as
# "failed", and makes the script exit non-zero. Before measuring, each
# server's h2 (h2c) answers are checked with curl (both files, status 200,
# every byte, HTTP/2); a server that fails the check is not measured in those
# cases that round and its runs are reported as failed with the reason (an
# oserver without HTTP/2 fails here, the script goes on with the others).
# `--cases i,j,k,l --rounds 3 --duration 5` with nginx, lighttpd, h2o and
# Caddy takes about 4 minutes.
# Every server is configured for well over 5,000 connections per worker (nginx
# worker_connections and h2o max-connections 20,000 or the fd limit, lighttpd
# max-connections half its max-fds, oserver 10,000 per worker, Caddy has no
# limit), and the script raises its open-file limit (which wrk and the
# servers inherit) to its hard limit, at most 65536.
# Defaults: cases (a)-(d), (m) and (n), the six servers above (oserver,
# oserver-tuned, nginx, lighttpd, h2o, Caddy), 2 rounds of 10 s runs.
# `--tls --rounds 3` takes roughly 30 minutes.
#
# --tls adds the HTTPS cases (e)-(h) to (a)-(d), --h2 the HTTP/2 cases (i)-(l);
# --cases picks any set of the letters, e.g. `--cases e,f,g,h` for HTTPS only,
# `--cases i,j,k,l` for HTTP/2 only. --out PATH writes the report there
# instead of benches/load-results.md. Every server
# gets the same certificate, made for the run in the temp dir with openssl: a
# private CA (ECDSA P-256) and a leaf for localhost and 127.0.0.1 signed by it
# (ECDSA P-256, SHA-256), leaf alone in the chain; TLS versions, ciphers and
# tickets are each server's defaults, except that nginx is told to allow TLS 1.3
# (1.22 leaves it off), and the report lists what an OpenSSL client
# negotiated with each. Before measuring, every server's HTTPS answers are checked with
# curl --cacert (HTTP/1.1, status 200, the right length) and the run fails
# otherwise. h2o runs with num-threads 2 (and its defaults: neverbleed, the
# separate process doing private-key operations, is on), Caddy with
# GOMAXPROCS=2, automatic HTTPS, admin API and HTTP/3 off. A server that cannot
# serve HTTPS here is left out of those cases with the reason printed: oserver
# (or a baseline) whose --help lists no --https-port, lighttpd without
# mod_openssl (`lighttpd -V` and a config test with it loaded).
#
# floor-epoll and floor-uring (with --only) are not servers but measuring
# sticks: the smallest programs that answer wrk in the keep-alive cases,
# built with gcc from benches/load/floor/ (liburing-dev for floor-uring,
# installed with apt when missing). One process per CPU, pinned and
# SCHED_BATCH as oserver's defaults on 127.0.0.1, each with its own
# SO_REUSEPORT listener with SO_INCOMING_CPU; one recv per request and the
# response oserver would send, the small file from memory, the large one by
# sendfile in oserver's turns. floor-epoll answers (a), (b), (m) and (n),
# floor-uring (io_uring, registered files) (a), (m) and (n); they sit out
# the other cases. Their CPU per request is what the kernel charges for a
# case below any real server. They are never "the best other".
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
DEFAULT_SERVERS="oserver,oserver-tuned,nginx,lighttpd,h2o,caddy"
ALL_SERVERS=(oserver oserver-base oserver-tuned nginx lighttpd h2o caddy floor-epoll floor-uring) # column order
# The cases each floor server answers; it sits out the others.
declare -A FLOOR_CASES=([floor-epoll]=a,b,m,n [floor-uring]=a,m,n)
CASES="a,b,c,d,m,n" # --cases; --tls adds e,f,g,h; --h2 adds i,j,k,l
ALL_CASES=(a b c d m n e f g h i j k l)
# The case letters of the README and the report, and the names in results.tsv.
declare -A CASE_NAME=([a]=small_ka [b]=large_ka [c]=small_close [d]=idle
    [e]=tls_small_ka [f]=tls_large_ka [g]=tls_close [h]=tls_idle
    [i]=h2_small [j]=h2_large [k]=h2c_small [l]=h2c_large
    [m]=small_c1000 [n]=small_c5000)
# wrk's connections (-c) per wrk case; 100 unless listed.
declare -A WRK_CONNS=([small_c1000]=1000 [small_c5000]=5000)
# The servers measured over h2c on their plain port, cases (k) and (l).
H2C_SERVERS="oserver oserver-base oserver-tuned h2o"
H2_WARMUP=1 # h2load --warm-up-time, seconds, before the --duration it measures
OUT="" # --out; empty: benches/load-results.md
BASE_BIN=${OSERVER_BASE_BIN:-} # --baseline; empty: no oserver-base
RUN_AB=0
IDLE_CONNS=10000
# A TLS idle run is bounded by this (idle.py's --timeout): the Python client
# spends about 2 ms of CPU per handshake, so 10,000 take 20-30 s here.
IDLE_TLS_TIMEOUT=180
LIGHTTPD_MODULES=/usr/lib/lighttpd # Debian's module directory
SMALL=/httptest/test.html
LARGE=/httptest/large.html

TMP=""
declare -A PID=() PORT=() TPORT=() # TPORT: the HTTPS port, when the server has one
declare -A NO_TLS=()                # server -> why it sits out the HTTPS cases
declare -A H2_BAD=() H2C_BAD=()     # server -> why its h2 (h2c) check failed this round
TLS_DIR=""                          # ca.pem, cert.pem, key.pem once make_certs ran
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
        --tls) CASES+=",e,f,g,h"; shift ;;
        --h2) CASES+=",i,j,k,l"; shift ;;
        --out) OUT=${2:?}; shift 2 ;;
        --cases) CASES=${2:?}; shift 2 ;;
        -h | --help) usage 0 ;;
        *) warn "unknown argument: $1"; usage 2 ;;
        esac
    done
    [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds wants a positive integer"
    [[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "--duration wants a positive integer"
    local c letters=""
    for c in ${CASES//,/ }; do
        [[ $c =~ ^[a-n]$ ]] || die "--cases: unknown case '$c' (letters a to n)"
    done
    for c in "${ALL_CASES[@]}"; do # sorted, once each
        if [[ ",$CASES," == *",$c,"* ]]; then letters+=${letters:+,}$c; fi
    done
    CASES=$letters
    [[ -n $CASES ]] || die "--cases selected no case"
    if [[ -z $ONLY ]]; then
        ONLY=$DEFAULT_SERVERS
        if [[ -n $BASE_BIN ]]; then ONLY+=",oserver-base"; fi
    fi
    SERVERS=()
    local s
    for s in ${ONLY//,/ }; do
        [[ $s =~ ^(oserver|oserver-base|oserver-tuned|nginx|lighttpd|h2o|caddy|floor-epoll|floor-uring)$ ]] ||
            die "--only: unknown server '$s'"
    done
    for s in "${ALL_SERVERS[@]}"; do # fixed column order whatever --only says
        if [[ ",$ONLY," == *",$s,"* ]]; then SERVERS+=("$s"); fi
    done
    ((${#SERVERS[@]})) || die "--only selected no server"
    for s in floor-epoll floor-uring; do
        has "$s" || continue
        local any=""
        for c in ${CASES//,/ }; do answers "$s" "$c" && any=1; done
        [[ -n $any ]] || warn "$s answers only the cases ${FLOOR_CASES[$s]}: it sits out this run"
    done
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
has_case() { [[ ",$CASES," == *",$1,"* ]]; }
# The HTTP/2-over-TLS cases need the HTTPS port and certificate too.
any_tls_case() { has_case e || has_case f || has_case g || has_case h || has_case i || has_case j; }
any_plain_case() { has_case a || has_case b || has_case c || has_case d || has_case m || has_case n; }
any_h2_case() { has_case i || has_case j || has_case k || has_case l; }
any_h2c_case() { has_case k || has_case l; }
# Whether server $1 takes part in the HTTPS cases of this run.
serves_tls() { any_tls_case && [[ -z ${NO_TLS[$1]:-} ]]; }
# Whether server $1 takes part in case $2 (a letter): every server does but a
# floor, which answers its own few.
answers() { [[ $1 != floor-* || ",${FLOOR_CASES[$1]}," == *",$2,"* ]]; }
# Whether server $1 takes part in the h2c cases (k), (l) of this run.
serves_h2c() { any_h2c_case && [[ " $H2C_SERVERS " == *" $1 "* ]]; }

# --- setup -------------------------------------------------------------------

install_tools() {
    local -A pkg_of=([wrk]=wrk [curl]=curl [python3]=python3)
    if has nginx; then pkg_of[nginx]=nginx-light; fi
    if has lighttpd; then pkg_of[lighttpd]=lighttpd; fi
    if has h2o; then pkg_of[h2o]=h2o; fi
    if has caddy; then pkg_of[caddy]=caddy; fi
    if has floor-epoll || has floor-uring; then pkg_of[gcc]=gcc; fi
    if any_tls_case; then pkg_of[openssl]=openssl; fi
    if any_h2_case; then pkg_of[h2load]=nghttp2-client; fi
    if ((RUN_AB)); then pkg_of[ab]=apache2-utils; fi
    local cmd missing=() optional=()
    for cmd in "${!pkg_of[@]}"; do
        command -v "$cmd" >/dev/null || missing+=("${pkg_of[$cmd]}")
    done
    if has floor-uring && [[ ! -e /usr/include/liburing.h ]]; then missing+=(liburing-dev); fi
    # Debian ships lighttpd's TLS module apart. Optional: without it lighttpd
    # only sits out the HTTPS cases (lighttpd_tls says why).
    if has lighttpd && any_tls_case && [[ ! -e $LIGHTTPD_MODULES/mod_openssl.so ]]; then
        optional+=(lighttpd-mod-openssl)
    fi
    ((${#missing[@]} + ${#optional[@]})) || return 0
    log "installing ${missing[*]} ${optional[*]}"
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    if ((${#missing[@]})); then
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
    fi
    if ((${#optional[@]})); then
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${optional[@]}" ||
            warn "could not install ${optional[*]}"
    fi
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

# The floor servers, compiled into the run's temp dir.
build_floors() {
    local name
    for name in floor-epoll floor-uring; do
        has "$name" || continue
        local src="$HERE/floor/${name/-/_}.c" libs=()
        [[ $name == floor-uring ]] && libs+=(-luring)
        gcc -O2 -Wall -Wextra -Werror -o "$TMP/bin-$name" "$src" "${libs[@]}" || die "gcc could not build $src"
    done
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

# Which servers can take part in the HTTPS cases; the others are left out of
# them (NO_TLS[name] says why, printed now and listed in the report).
check_tls_support() {
    any_tls_case || return 0
    local name help
    for name in "${SERVERS[@]}"; do
        case "$name" in
        oserver | oserver-tuned | oserver-base)
            local bin=${OSERVER_BIN:-}
            [[ $name == oserver-base ]] && bin=$BASE_BIN
            help=$("$bin" --help 2>&1) || true
            if ! grep -q -- '--https-port' <<<"$help"; then
                NO_TLS[$name]="$bin --help lists no --https-port (a build without the HTTPS flags)"
            fi
            ;;
        nginx)
            nginx -V 2>&1 | grep -q -- '--with-http_ssl_module' ||
                NO_TLS[$name]="nginx -V shows no --with-http_ssl_module"
            ;;
        lighttpd) lighttpd_tls ;;
        h2o | caddy) ;; # both always have TLS
        floor-*) NO_TLS[$name]="a floor answers plain HTTP only" ;;
        esac
        if [[ -n ${NO_TLS[$name]:-} ]]; then
            warn "$name sits out the HTTPS cases: ${NO_TLS[$name]}"
        fi
    done
}

# lighttpd's TLS is a module (Debian: lighttpd-mod-openssl). `lighttpd -V`
# lists the TLS libraries the build supports; whether mod_openssl is there and
# loads is what a config test with it says.
lighttpd_tls() {
    if ! lighttpd -V 2>&1 | grep -q '^[[:space:]]*+ OpenSSL support'; then
        NO_TLS[lighttpd]="lighttpd -V shows no OpenSSL support"
        return 0
    fi
    local conf out
    conf=$(mktemp /tmp/oserver-load-lighttpd.XXXXXX)
    printf 'server.document-root = "%s"\nserver.port = 1\nserver.modules += ("mod_openssl")\n' "$REPO" >"$conf"
    if ! out=$(lighttpd -tt -f "$conf" 2>&1); then
        NO_TLS[lighttpd]="mod_openssl does not load ($(tr '\n' ' ' <<<"$out" | cut -c1-200))"
    fi
    rm -f "$conf"
}

# The one certificate every server gets: a private CA and a leaf signed by it,
# both ECDSA P-256, the leaf for localhost and 127.0.0.1 (clients connect to
# the address: curl and idle.py check it against the IP entry and send no SNI;
# wrk checks nothing). Keys in PKCS#8, which every server here reads.
make_certs() {
    TLS_DIR="$TMP/tls"
    mkdir -p "$TLS_DIR"
    local d=$TLS_DIR
    {
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ca.key" &&
            openssl req -x509 -new -key "$d/ca.key" -sha256 -days 7 -subj "/CN=oserver load.sh CA" \
                -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
                -out "$d/ca.pem" &&
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/key.pem" &&
            openssl req -new -key "$d/key.pem" -subj "/CN=localhost" -out "$d/leaf.csr" &&
            printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
                "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$d/leaf.ext" &&
            openssl x509 -req -in "$d/leaf.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
                -set_serial "0x$(openssl rand -hex 8)" -days 7 -sha256 -extfile "$d/leaf.ext" -out "$d/cert.pem" &&
            openssl verify -CAfile "$d/ca.pem" "$d/cert.pem"
    } >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; die "openssl could not make the test certificate"; }
    chmod 644 "$d"/*.pem # a server that drops root (h2o's neverbleed, say) still reads them
    log "certificate: $d/cert.pem (ECDSA P-256, localhost and 127.0.0.1), CA $d/ca.pem"
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
        if any_h2_case; then echo "h2load: $(h2load --version 2>&1 | head -1)"; fi
        if has nginx; then echo "nginx: $(nginx -v 2>&1)"; fi
        if has lighttpd; then echo "lighttpd: $(lighttpd -v 2>&1 | head -1)"; fi
        if has h2o; then echo "h2o: $(h2o --version 2>&1 | head -2 | tr '\n' ' ')"; fi
        if has caddy; then echo "caddy: $(caddy version 2>&1 | head -1)"; fi
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
        if has h2o || has caddy; then
            echo "threaded servers: h2o num-threads 2 (neverbleed on, its default); caddy GOMAXPROCS=2, HTTP/3 off"
        fi
        if has floor-epoll || has floor-uring; then
            echo "floor servers (not servers: the kernel's cost of the case, benches/load/floor): one pinned SCHED_BATCH process per CPU, one recv per request, oserver's response (the small file from memory, the large one by sendfile); $(gcc --version | head -1)$(has floor-uring && echo ", liburing $(dpkg-query -W -f '${Version}' liburing-dev 2>/dev/null)")"
        fi
        if any_tls_case; then
            echo "https: one ECDSA P-256 certificate (private CA, leaf for localhost/127.0.0.1) for all; TLS settings each server's defaults; wrk makes a full handshake per connection (no resumption)"
            echo "openssl: $(openssl version)"
            local name
            for name in "${SERVERS[@]}"; do
                if [[ -n ${NO_TLS[$name]:-} ]]; then echo "no https for $name: ${NO_TLS[$name]}"; fi
            done
        fi
        if any_h2_case; then
            echo "http/2: h2load -t2 -c100, -m10 for the small file and -m1 for the large one, ${H2_WARMUP} s warm-up then ${DURATION} s measured; over TLS ALPN offers h2 only; h2c by prior knowledge; each server's default HTTP/2 settings (nginx: \`http2\` on the TLS listener)"
            echo "h2c servers: $(for s in $H2C_SERVERS; do if has "$s"; then printf '%s ' "$s"; fi; done)"
        fi
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
    local dir=$1 port=$2 tport=${3:-} user="" tls=""
    # As root nginx would switch its workers to "nobody", who may not read the
    # repository; as a normal user the directive is ignored with a warning.
    if ((EUID == 0)); then user="user root;"; fi
    # worker_connections counts every connection of a worker; 20000 (or the fd
    # limit if lower) so 10,000 idle ones fit even if one worker gets them all.
    # nginx allocates and touches that many connection slots (~0.4 KiB each) at
    # startup, so they sit in the idle test's "before" RSS, not in its per-conn delta.
    local wc=$((NOFILE < 20000 ? NOFILE : 20000))
    mkdir -p "$dir/tmp"
    if [[ -n $tport ]]; then
        # TLS settings left at nginx's defaults (ciphers, tickets on, no session
        # cache), as the other servers' are, but for the protocols: nginx
        # before 1.23.4 leaves TLS 1.3 off unless told, and every other server
        # here speaks it by default (newer nginx too).
        # http2 on the TLS listener (ALPN h2 or http/1.1, so wrk and the
        # HTTP/1.1 checks are served as before); 1.22 knows no `http2 on;`.
        tls="listen 127.0.0.1:$tport ssl http2 backlog=1024 reuseport;
        ssl_certificate $TLS_DIR/cert.pem;
        ssl_certificate_key $TLS_DIR/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;"
    fi
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
        $tls
        root $REPO;
    }
}
EOF
}

write_lighttpd_conf() {
    local dir=$1 port=$2 tport=${3:-}
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
    [[ -n $tport ]] || return 0
    cat >>"$dir/lighttpd.conf" <<EOF
server.modules += ("mod_openssl")
\$SERVER["socket"] == "127.0.0.1:$tport" {
    ssl.engine = "enable"
    ssl.pemfile = "$TLS_DIR/cert.pem"
    ssl.privkey = "$TLS_DIR/key.pem"
}
EOF
}

# h2o: one process, num-threads event loops (its worker threads).
write_h2o_conf() {
    local dir=$1 port=$2 tport=${3:-} user=""
    # As root h2o would switch to "nobody", who may not read the repository.
    if ((EUID == 0)); then user="user: root"; fi
    local mc=$((NOFILE < 20000 ? NOFILE : 20000))
    cat >"$dir/h2o.conf" <<EOF
# Generated by benches/load.sh
$user
num-threads: 2
# The default, 1024, would refuse most of the idle test's 10,000.
max-connections: $mc
# Idle keep-alive time, as the others' 65 s (h2o's default is 10 s).
http1-request-timeout: 65
error-log: $dir/error.log
pid-file: $dir/h2o.pid
# No access-log directive: no access log.
listen:
  host: 127.0.0.1
  port: $port
EOF
    if [[ -n $tport ]]; then
        cat >>"$dir/h2o.conf" <<EOF
listen:
  host: 127.0.0.1
  port: $tport
  ssl:
    certificate-file: $TLS_DIR/cert.pem
    key-file: $TLS_DIR/key.pem
    # The test certificate names no OCSP responder; without this h2o runs a
    # fetcher at startup only to log that it failed.
    ocsp-update-interval: 0
EOF
    fi
    cat >>"$dir/h2o.conf" <<EOF
hosts:
  default:
    paths:
      /:
        file.dir: $REPO
EOF
}

# Caddy: one process; its 2 "workers" are GOMAXPROCS=2 (set by start_server).
write_caddyfile() {
    local dir=$1 port=$2 tport=${3:-}
    cat >"$dir/Caddyfile" <<EOF
# Generated by benches/load.sh
{
	# No certificates from anywhere, no redirects, no admin endpoint: a
	# static server on the certificate it is given.
	auto_https off
	admin off
	# curl and idle.py send no SNI to an address; wrk sends "127.0.0.1".
	default_sni 127.0.0.1
	log {
		level WARN
	}
	servers {
		# h2 is served over TLS (ALPN), HTTP/1.1 on both ports; no UDP
		# listener for HTTP/3.
		protocols h1 h2
		timeouts {
			idle 65s
		}
	}
}
# A site address does not choose the listening address: bind does.
http://127.0.0.1:$port {
	bind 127.0.0.1
	root * $REPO
	file_server
}
EOF
    if [[ -n $tport ]]; then
        cat >>"$dir/Caddyfile" <<EOF
https://127.0.0.1:$tport {
	bind 127.0.0.1
	tls $TLS_DIR/cert.pem $TLS_DIR/key.pem
	root * $REPO
	file_server
}
EOF
    fi
}

# --- servers -----------------------------------------------------------------

# Start server $1 on a new free port, and when it takes part in the HTTPS
# cases with an HTTPS listener on a second one. setsid makes its pid the
# process-group id, so stop_server can signal the master and all its workers at once.
start_server() {
    local name=$1 dir="$TMP/$1" port tport="" tls_args=()
    rm -rf "$dir"
    mkdir -p "$dir"
    unset "H2_BAD[$name]" "H2C_BAD[$name]"
    port=$(free_port)
    if serves_tls "$name"; then
        tport=$(free_port)
        while [[ $tport == "$port" ]]; do tport=$(free_port); done
        tls_args=(--https-port "$tport" --tls-cert "$TLS_DIR/cert.pem" --tls-key "$TLS_DIR/key.pem")
    fi
    case "$name" in
    oserver)
        setsid "$OSERVER_BIN" -r "$REPO" -p "$port" "${OSERVER_ARGS[@]}" "${tls_args[@]}" \
            >"$dir/stderr.log" 2>&1 &
        ;;
    oserver-base)
        setsid "$BASE_BIN" -r "$REPO" -p "$port" "${BASE_ARGS[@]}" "${tls_args[@]}" >"$dir/stderr.log" 2>&1 &
        ;;
    oserver-tuned)
        setsid "$OSERVER_BIN" -r "$REPO" -p "$port" "${OSERVER_ARGS[@]}" "${TUNED_FLAGS[@]}" "${tls_args[@]}" \
            >"$dir/stderr.log" 2>&1 &
        ;;
    nginx)
        write_nginx_conf "$dir" "$port" "$tport"
        setsid nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stderr.log" 2>&1 &
        ;;
    lighttpd)
        write_lighttpd_conf "$dir" "$port" "$tport"
        setsid lighttpd -D -f "$dir/lighttpd.conf" >"$dir/stderr.log" 2>&1 &
        ;;
    h2o)
        write_h2o_conf "$dir" "$port" "$tport"
        setsid h2o -c "$dir/h2o.conf" >"$dir/stderr.log" 2>&1 &
        ;;
    floor-epoll)
        setsid "$TMP/bin-$name" "$port" "$SMALL" "$REPO$SMALL" "$LARGE" "$REPO$LARGE" >"$dir/stderr.log" 2>&1 &
        ;;
    floor-uring)
        setsid "$TMP/bin-$name" "$port" "$SMALL" "$REPO$SMALL" >"$dir/stderr.log" 2>&1 &
        ;;
    caddy)
        write_caddyfile "$dir" "$port" "$tport"
        # Caddy keeps state (autosaved config, certificate storage) under XDG dirs.
        GOMAXPROCS=2 XDG_DATA_HOME="$dir/xdg" XDG_CONFIG_HOME="$dir/xdg" \
            setsid caddy run --config "$dir/Caddyfile" --adapter caddyfile >"$dir/stderr.log" 2>&1 &
        ;;
    esac
    PID[$name]=$!
    PORT[$name]=$port
    if [[ -n $tport ]]; then TPORT[$name]=$tport; else unset "TPORT[$name]"; fi
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
# look, except the notices each prints whatever happens: lighttpd's start and
# stop, h2o's start, Caddy's warnings about what this config turns off.
QUIET_LOG='\) server (started|stopped)|h2o server \(pid:[0-9]+\) is ready|raised RLIMIT_NOFILE'
QUIET_LOG+='|^received SIGTERM, gracefully shutting down$'
QUIET_LOG+='|"msg":"(using provided configuration|admin endpoint disabled|automatic HTTPS is completely disabled for server)"'
QUIET_LOG+='|"msg":"exiting; byeee!!'
QUIET_LOG+='|"msg":"stapling OCSP".*no OCSP server specified'
show_server_log() {
    local lines
    lines=$(cat "$TMP/$1"/*.log 2>/dev/null | grep -v -E "$QUIET_LOG" || true)
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
    if answers "$name" b; then # every server serves the large page but floor-uring
        local got want
        got=$(curl -s -o /dev/null -w '%{size_download}' --max-time 10 "$url$LARGE")
        want=$(stat -c %s "$REPO$LARGE")
        [[ $got == "$want" ]] || die "$name: GET $LARGE gave $got bytes, want $want"
    fi
    if [[ -n ${TPORT[$name]:-} ]]; then check_https "$name"; fi
    if [[ -n ${TPORT[$name]:-} ]] && (has_case i || has_case j); then check_h2 "$name" h2; fi
    if serves_h2c "$name"; then check_h2 "$name" h2c; fi
    local procs https=""
    [[ -z ${TPORT[$name]:-} ]] || https=", https port ${TPORT[$name]}"
    case "$name" in
    floor-*) # one process per CPU
        log "$name ready: pid ${PID[$name]}, $((1 + $(pgrep -c -P "${PID[$name]}" || true))) processes, port ${PORT[$name]}"
        return 0
        ;;
    h2o | caddy)
        # Threads, not worker processes (h2o also forks helpers: neverbleed
        # for the private key, a crash handler).
        procs=$((1 + $(pgrep -c -P "${PID[$name]}" || true)))
        log "$name ready: pid ${PID[$name]}, $procs processes, $(awk '/^Threads:/ { print $2 }' "/proc/${PID[$name]}/status") threads in the main one, port ${PORT[$name]}$https"
        return 0
        ;;
    esac
    # Workers are forked after the listener is up; give them a moment.
    for ((i = 0; i < 20; i++)); do
        procs=$((1 + $(pgrep -c -P "${PID[$name]}" || true)))
        ((procs >= 3)) && break
        sleep 0.1
    done
    ((procs == 3)) || warn "$name has $procs processes, expected master + 2 workers"
    log "$name ready: pid ${PID[$name]}, $procs processes, port ${PORT[$name]}$https"
}

# The HTTPS answers, checked as a client that trusts only the run's CA would:
# both files, over HTTP/1.1 as wrk speaks it, status 200 and every byte. The
# first check of each server also notes what TLS it negotiated.
check_https() {
    local name=$1 url="https://127.0.0.1:${TPORT[$1]}" path want out code size i
    local err="$TMP/$name/curl-https.txt"
    for path in "$SMALL" "$LARGE"; do
        want=$(stat -c %s "$REPO$path")
        out=""
        # The HTTPS listener may open a moment after the plain one.
        for ((i = 0; i < 50; i++)); do
            out=$(curl -sSv --http1.1 --cacert "$TLS_DIR/ca.pem" -o /dev/null -w '%{http_code} %{size_download}' \
                --max-time 10 "$url$path" 2>"$err") || true
            [[ $out == "200 "* ]] && break
            kill -0 "${PID[$name]}" 2>/dev/null || break
            sleep 0.1
        done
        read -r code size <<<"$out"
        if [[ $code != 200 || $size != "$want" ]]; then
            grep -v -E '^[<>{}] ' "$err" | tail -n 15 >&2
            server_logs "$name"
            die "$name: GET $url$path (curl --cacert) gave status '${code:-none}' and ${size:-0} bytes, want 200 and $want"
        fi
    done
    local tls
    tls=$(sed -n 's/^\* SSL connection using //p' "$err" | head -1)
    if ! grep -q "^tls $name:" "$TMP/machine.txt"; then
        echo "tls $name: ${tls:-unknown} (curl, OpenSSL client defaults)" >>"$TMP/machine.txt"
    fi
}

# The HTTP/2 answers, as curl sees them: over TLS with ALPN (kind h2) or by
# prior knowledge on the plain port (h2c), both files, HTTP/2, status 200 and
# every byte. A failure is no reason to stop the benchmark (an oserver without
# HTTP/2 fails here): the reason goes to H2_BAD or H2C_BAD, the server's runs
# of those cases are recorded as failed, and the others go on.
check_h2() {
    local name=$1 kind=$2 url path want out code size ver i args=()
    local err="$TMP/$name/curl-$kind.txt"
    if [[ $kind == h2 ]]; then
        url="https://127.0.0.1:${TPORT[$name]}"
        args=(--http2 --cacert "$TLS_DIR/ca.pem")
    else
        url="http://127.0.0.1:${PORT[$name]}"
        args=(--http2-prior-knowledge)
    fi
    for path in "$SMALL" "$LARGE"; do
        want=$(stat -c %s "$REPO$path")
        out=""
        for ((i = 0; i < 20; i++)); do
            out=$(curl -sSv "${args[@]}" -o /dev/null -w '%{http_version} %{http_code} %{size_download}' \
                --max-time 10 "$url$path" 2>"$err") || true
            [[ $out == "2 200 "* ]] && break
            kill -0 "${PID[$name]}" 2>/dev/null || break
            sleep 0.1
        done
        read -r ver code size <<<"$out"
        if [[ $ver != 2 || $code != 200 || $size != "$want" ]]; then
            local why
            why="GET $url$path (curl ${args[0]}) gave HTTP version '${ver:-none}', status '${code:-none}', ${size:-0} bytes, want 2, 200, $want"
            local said
            said=$(grep -v -E '^[<>{}] ' "$err" | grep -E -i 'alpn|error|fail|reset|closed|empty|^curl: ' | tail -n 3 | tr '\n' ' ' | cut -c1-300) || true
            why+="; curl: ${said:-nothing}"
            if [[ $kind == h2 ]]; then H2_BAD[$name]=$why; else H2C_BAD[$name]=$why; fi
            warn "$name: no $kind: $why"
            warn "$name is recorded as failed in the $kind cases this round"
            kill -0 "${PID[$name]}" 2>/dev/null || { server_logs "$name"; die "$name died during the $kind check"; }
            return 0
        fi
    done
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

# Microseconds of CPU per request from cpu_seconds' output (the master's and
# workers' seconds, summed) and a request count: "-" if there were none.
cpu_us_per_request() {
    awk -v secs="$1" -v n="$2" 'BEGIN {
        k = split(secs, s, " "); for (i = 1; i <= k; i++) sum += s[i]
        if (n + 0 > 0) printf "%.2f", sum * 1e6 / n; else print "-"
    }'
}

# Seconds of CPU (user + system) used by the children of the shell it runs
# in, from bash's `times` (its second line, "0m1.234s 0m5.678s"). Run as
# `{ cmd; times; } | children_seconds` in a subshell whose only child is cmd.
children_seconds() {
    awk 'NR == 2 {
        for (i = 1; i <= 2; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); sum += p[1] * 60 + p[2] }
        printf "%.2f", sum
    }'
}

# Append "round case server req/s MiB/s socket_errors non2xx cpu_us_per_req
# wrk_cpu_us_per_req" for one wrk run (the server's CPU, master and workers,
# and wrk's own, per request wrk completed: with client and servers on the
# same CPUs the two together show how near a run is to what the machine can
# do). A case named tls_* goes to the server's HTTPS port.
run_wrk() {
    local round=$1 case=$2 name=$3 path=$4
    shift 4 # the rest goes to wrk (the Connection: close header)
    local out="$TMP/wrk-$round-$case-$name.txt" cpu0 cpu1 wrk_secs url="http://127.0.0.1:${PORT[$name]}$path"
    if [[ $case == tls_* ]]; then url="https://127.0.0.1:${TPORT[$name]}$path"; fi
    cpu0=$(cpu_ticks "${PID[$name]}")
    wrk_secs=$(
        {
            wrk -t2 -c"${WRK_CONNS[$case]:-100}" -d"${DURATION}s" "$@" "$url" >"$out" 2>&1 || true
            times
        } | children_seconds
    )
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
        / requests in / { n = $1 }
        /^Transfer\/sec:/ { mibs = mib($2) }
        /Socket errors:/ { gsub(",", ""); c = $4; r = $6; w = $8; t = $10 }
        /Non-2xx or 3xx responses:/ { bad = $5 }
        END {
            if (rps == "") { print "FAILED"; exit }
            printf "%s %.2f %d %d %d %d %d %d %d\n", rps, mibs, c + r + w + t, bad + 0, c, r, w, t, n
        }' "$out")
    if [[ $parsed == FAILED ]]; then
        cat "$out" >&2
        warn "$name $case round $round: wrk printed no Requests/sec"
        ERRORS=$((ERRORS + 1))
        return 0
    fi
    local rps mibs errs bad c r w t n secs
    read -r rps mibs errs bad c r w t n <<<"$parsed"
    secs=$(cpu_seconds "$cpu0" "$cpu1")
    printf '    %-13s %-12s %12s req/s %10s MiB/s  errors %s  non-2xx %s  cpu s (master workers) %s\n' \
        "$name" "$case" "$rps" "$mibs" "$errs" "$bad" "$secs"
    ((errs == 0)) || warn "$name $case round $round: socket errors connect $c, read $r, write $w, timeout $t"
    ((bad == 0)) || warn "$name $case round $round: $bad non-2xx/3xx responses"
    ((errs == 0 && bad == 0)) || ERRORS=$((ERRORS + 1))
    kill -0 "${PID[$name]}" 2>/dev/null || { server_logs "$name"; die "$name died during $case"; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$case" "$name" "$rps" "$mibs" "$errs" "$bad" \
        "$(cpu_us_per_request "$secs" "$n")" "$(cpu_us_per_request "$wrk_secs" "$n")" >>"$TMP/results.tsv"
}

# Append "round case server req/s MiB/s failed non2xx" for one h2load run:
# case h2_* over TLS on the HTTPS port (ALPN offers only h2), h2c_* by prior
# knowledge on the plain port; $5 is the streams in flight per connection.
# The run is invalid (req/s and MiB/s recorded as "-", shown as failed) unless
# h2load negotiated the protocol, finished in time and every request
# succeeded with a 2xx; failed counts h2load's failed, errored and timed-out
# requests, non2xx its 3xx, 4xx and 5xx statuses. (h2load counts a status
# when the headers arrive and a success when the stream ends, so around the
# edges of the measured window its 2xx count and its succeeded count differ
# by a few: not an error.)
run_h2load() {
    local round=$1 case=$2 name=$3 path=$4 streams=$5
    local out="$TMP/h2load-$round-$case-$name.txt" url proto bad args=() cpu0 cpu1 rc=0
    if [[ $case == h2c_* ]]; then
        url="http://127.0.0.1:${PORT[$name]}$path" proto=h2c bad=${H2C_BAD[$name]:-}
    else
        url="https://127.0.0.1:${TPORT[$name]}$path" proto=h2 bad=${H2_BAD[$name]:-}
        args=(--npn-list=h2) # h2load 1.52's name for its ALPN list
    fi
    if [[ -n $bad ]]; then
        printf '    %-13s %-12s failed: not run, the %s check failed (see above)\n' "$name" "$case" "$proto"
        ERRORS=$((ERRORS + 1))
        printf '%s\t%s\t%s\t-\t-\t0\t0\n' "$round" "$case" "$name" >>"$TMP/results.tsv"
        return 0
    fi
    cpu0=$(cpu_ticks "${PID[$name]}")
    timeout -k 5 $((H2_WARMUP + DURATION + 30)) \
        h2load -t2 -c100 -m"$streams" -D "$DURATION" --warm-up-time="$H2_WARMUP" "${args[@]}" "$url" \
        >"$out" 2>&1 || rc=$?
    cpu1=$(cpu_ticks "${PID[$name]}")
    local parsed
    parsed=$(awk -v want="$proto" -v rc="$rc" '
        function mib(s,   n, u) {  # h2load prints 1024-based B, KB, MB, GB per second
            n = s + 0; u = s; sub(/^[0-9.]+/, "", u); sub(/\/s$/, "", u)
            if (u == "KB") n /= 1024; else if (u == "MB") n *= 1; else if (u == "GB") n *= 1024
            else if (u == "TB") n *= 1048576; else n /= 1048576
            return n
        }
        /^Application protocol:/ { got = $3 }
        /^finished in / { rps = $4; mibs = mib($6) }
        /^requests: / { total = $2; ok = $8; failed = $10 + $12 + $14 }
        /^status codes: / { s2 = $3; bad = $5 + $7 + $9 }
        END {
            why = ""
            if (rc == 124 || rc == 137) why = "h2load did not finish in time"
            else if (rc != 0) why = "h2load exited with " rc
            else if (got != want) why = "negotiated " (got == "" ? "no protocol" : got) ", not " want
            else if (rps == "" || total == "") why = "h2load printed no result"
            else if (ok + 0 == 0) why = "no request succeeded"
            else if (failed + 0 > 0) why = failed " requests failed, errored or timed out"
            else if (bad + 0 > 0) why = bad " non-2xx responses"
            else if (s2 + 0 == 0) why = "no 2xx response"
            printf "%s %.2f %d %d %s\n", (rps == "" ? "-" : rps), mibs, failed, bad, (why == "" ? "ok" : why)
        }' "$out")
    local rps mibs failed bad why
    read -r rps mibs failed bad why <<<"$parsed"
    printf '    %-13s %-12s %12s req/s %10s MiB/s  failed %s  non-2xx %s  cpu s (master workers) %s\n' \
        "$name" "$case" "$rps" "$mibs" "$failed" "$bad" "$(cpu_seconds "$cpu0" "$cpu1")"
    if [[ $why != ok ]]; then
        warn "$name $case round $round: invalid run: $why; h2load said:"
        grep -v -E '^(progress:|spawning thread|Warm-up|Main benchmark|Stopped all)' "$out" | head -n 12 | sed 's/^/    /' >&2
        ERRORS=$((ERRORS + 1))
        rps=- mibs=-
    fi
    kill -0 "${PID[$name]}" 2>/dev/null || { server_logs "$name"; die "$name died during $case"; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$case" "$name" "$rps" "$mibs" "$failed" "$bad" >>"$TMP/results.tsv"
}

# Case idle (plain) or tls_idle (the HTTPS port, a full handshake per connection).
run_idle() {
    local round=$1 case=$2 name=$3 line args=(--port "${PORT[$name]}")
    if [[ $case == tls_idle ]]; then
        args=(--port "${TPORT[$name]}" --tls --cafile "$TLS_DIR/ca.pem" --timeout "$IDLE_TLS_TIMEOUT")
    fi
    line=$(python3 "$HERE/idle.py" "${args[@]}" --pid "${PID[$name]}" \
        --conns "$IDLE_CONNS" --path "$SMALL") || die "idle.py failed against $name"
    local -A f=()
    local kv
    for kv in $line; do f[${kv%%=*}]=${kv#*=}; done
    local failed=$((IDLE_CONNS - f[open])) kib=${f[kib_per_conn]}
    printf '    %-13s %-12s %8s KiB/conn  (RSS %s -> %s KiB, %s/%s open, opened in %s s, per process %s)\n' \
        "$name" "$case" "${f[kib_per_conn]}" "${f[before_kib]}" "${f[after_kib]}" \
        "${f[open]}" "$IDLE_CONNS" "${f[open_secs]}" "${f[per_proc]}"
    if ((failed)); then
        warn "$name $case round $round: $failed of $IDLE_CONNS connections failed or were closed"
        ERRORS=$((ERRORS + 1))
        kib=- # not a per-connection figure any more; report.py leaves it out
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t0\n' "$round" "$case" "$name" "$kib" "${f[open_secs]}" "$failed" >>"$TMP/results.tsv"
}

# A row in the report that says server $3 sat out case $2 (a letter) in round $1.
sit_out() {
    printf '%s\t%s\t%s\tskip\tskip\t0\t0\n' "$1" "${CASE_NAME[$2]}" "$3" >>"$TMP/results.tsv"
}

# Plain wrk case $2 (a letter) of round $1 on path $3, for the servers that
# follow, one after the other; (c) sends `Connection: close`.
run_plain() {
    local round=$1 letter=$2 path=$3 name args=()
    shift 3
    has_case "$letter" || return 0
    if [[ $letter == c ]]; then args=(-H "Connection: close"); fi
    for name in "$@"; do
        if answers "$name" "$letter"; then
            run_wrk "$round" "${CASE_NAME[$letter]}" "$name" "$path" "${args[@]}"
        else
            sit_out "$round" "$letter" "$name"
        fi
    done
}

# One round: fresh servers (so the idle test sees a server that has not yet
# grown its buffers or heap), then every selected case with the servers in turn.
# The TLS idle test (h) gets servers started afresh after the plain one (d),
# for the same reason.
run_round() {
    local round=$1 order=("${@:2}") name up=() tls=() h2c=() c
    log "round $round of $ROUNDS, order: ${order[*]}"
    for name in "${order[@]}"; do
        if serves_tls "$name"; then
            tls+=("$name")
        elif any_tls_case; then
            for c in e f g h i j; do # a row in the report that says so
                if has_case "$c"; then
                    sit_out "$round" "$c" "$name"
                fi
            done
        fi
        if serves_h2c "$name"; then
            h2c+=("$name")
        elif any_h2c_case; then
            for c in k l; do
                if has_case "$c"; then
                    sit_out "$round" "$c" "$name"
                fi
            done
        fi
    done
    if any_plain_case; then
        up=("${order[@]}")
    else # only the servers some selected case measures
        for name in "${order[@]}"; do
            if [[ " ${tls[*]} ${h2c[*]} " == *" $name "* ]]; then up+=("$name"); fi
        done
    fi
    for name in "${up[@]}"; do start_server "$name"; done
    if has_case d; then
        for name in "${order[@]}"; do
            if answers "$name" d; then run_idle "$round" idle "$name"; else sit_out "$round" d "$name"; fi
        done
    fi
    if has_case h && ((${#tls[@]})); then
        if has_case d; then
            log "fresh servers for the TLS idle test"
            for name in "${tls[@]}"; do
                stop_server "$name"
                start_server "$name"
            done
        fi
        for name in "${tls[@]}"; do run_idle "$round" tls_idle "$name"; done
    fi
    run_plain "$round" a "$SMALL" "${order[@]}"
    run_plain "$round" b "$LARGE" "${order[@]}"
    run_plain "$round" c "$SMALL" "${order[@]}"
    run_plain "$round" m "$SMALL" "${order[@]}"
    run_plain "$round" n "$SMALL" "${order[@]}"
    if has_case e; then for name in "${tls[@]}"; do run_wrk "$round" tls_small_ka "$name" "$SMALL"; done; fi
    if has_case f; then for name in "${tls[@]}"; do run_wrk "$round" tls_large_ka "$name" "$LARGE"; done; fi
    if has_case g; then
        for name in "${tls[@]}"; do run_wrk "$round" tls_close "$name" "$SMALL" -H "Connection: close"; done
    fi
    if has_case i; then for name in "${tls[@]}"; do run_h2load "$round" h2_small "$name" "$SMALL" 10; done; fi
    if has_case j; then for name in "${tls[@]}"; do run_h2load "$round" h2_large "$name" "$LARGE" 1; done; fi
    if has_case k; then for name in "${h2c[@]}"; do run_h2load "$round" h2c_small "$name" "$SMALL" 10; done; fi
    if has_case l; then for name in "${h2c[@]}"; do run_h2load "$round" h2c_large "$name" "$LARGE" 1; done; fi
    for name in "${up[@]}"; do
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
    if [[ $CASES != a,b,c,d,m,n ]]; then command+=" --cases $CASES"; fi
    if [[ -n $BASE_BIN ]]; then command+=" --baseline $BASE_BIN"; fi
    if ((RUN_AB)); then command+=" --ab"; fi
    install_tools
    build_oserver
    split_flags
    check_tls_support
    check_fixtures
    raise_nofile
    TMP=$(mktemp -d /tmp/oserver-load.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    : >"$TMP/results.tsv"
    build_floors
    if any_tls_case; then make_certs; fi
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
        --out "${OUT:-$REPO/benches/load-results.md}"
    echo
    log "wrote ${OUT:-benches/load-results.md}"
    if ((ERRORS)); then
        warn "$ERRORS run(s) had errors; see the warnings above"
        exit 1
    fi
}

main "$@"
