# What the conformance scripts (httpwg.sh, chromium-h2.sh) and
# benches/frameworks.sh share: messages, help,
# installing Debian packages, building the binaries, a free port, stopping
# the server's process group. Sourced; expects REPO (the repository root)
# and SPID (the server's pid, empty when none) to be set by the script.

log() { printf '==> %s\n' "$*"; }
warn() { printf '!!! WARNING: %s\n' "$*" >&2; }

# The running script's header comment (line 2 up to `set -euo`) as its
# help; exit with $1 (default 0).
usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
    exit "${1:-0}"
}

die() {
    printf '!!! ERROR: %s\n' "$*" >&2
    exit 2
}

# apt-get install the given Debian packages (with sudo unless root).
apt_install() {
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    log "installing $*"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@"
}

# Cargo's target directory: CARGO_TARGET_DIR (relative to the repository
# if it is relative), else the repository's target/.
target_dir() {
    local target=${CARGO_TARGET_DIR:-target}
    [[ $target == /* ]] || target="$REPO/$target"
    printf '%s\n' "$target"
}

# OSERVER_BIN: as given, else the release build of the command.
build_oserver() {
    if [[ -n ${OSERVER_BIN:-} ]]; then
        [[ -x $OSERVER_BIN ]] || die "OSERVER_BIN=$OSERVER_BIN is not executable"
        return 0
    fi
    log "cargo build --release -p oserver-cli"
    (cd "$REPO" && cargo build --release -p oserver-cli) || die "cargo build failed"
    OSERVER_BIN="$(target_dir)/release/oserver"
    [[ -x $OSERVER_BIN ]] || die "no binary at $OSERVER_BIN after the build"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# SIGTERM to the server's process group (a graceful stop, which also writes
# out buffered access-log lines), SIGKILL after $1 tenths of a second
# (default 100).
stop_server() {
    [[ -n $SPID ]] || return 0
    kill -TERM -- "-$SPID" 2>/dev/null || true
    local i
    for ((i = 0; i < ${1:-100}; i++)); do
        kill -0 -- "-$SPID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=""
}
