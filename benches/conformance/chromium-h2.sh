#!/usr/bin/env bash
# HTTP/2 with a real browser: headless Chromium loads a page with images, a
# stylesheet, a script and the ~1 MB page (in an iframe) from oserver over
# HTTPS, and the script checks that every one of them came over h2 with 200.
#
#   bash benches/conformance/chromium-h2.sh [--server oserver|h2o] [--copies N] [--limit SECS]
#
# httptest/ has no page that references images (test.html is ~100 B of text,
# large.html ~1 MB of paragraphs), so the script writes one: a document root
# in a temp dir with a copy of httptest/ and httptest/h2-page.html, which
# loads httptest/style.css and script.js, N copies (--copies, default 5) of
# each of image.gif, image.jpeg, image.jpg and image.png (`?n=1` .. `?n=N`, so
# each is its own request on the one connection) and httptest/large.html in
# an iframe. On `load` the page writes what the browser saw into a <pre>:
# the navigation's and every resource's nextHopProtocol and responseStatus
# (Resource Timing), how many images decoded and how much text the iframe got.
#
# The certificate is made for the run with openssl: a private CA (ECDSA
# P-256) and a leaf for 127.0.0.1 and localhost. Chromium does not trust the
# CA; it is told to accept this leaf alone with
# --ignore-certificate-errors-spki-list=<SHA-256 of the leaf's public key>
# (which it honours only with --user-data-dir, here a fresh profile in the temp dir).
#
# The server: oserver with --https-port, the certificate, 2 workers and
# --access-log; or --server h2o (Debian's package) as a reference, with its
# access log. Chromium runs headless (--headless=new --no-sandbox, as root
# needs) with --dump-dom, --log-net-log, background networking off and
# --host-resolver-rules that resolve no name (127.0.0.1 is let through), so
# it connects to 127.0.0.1 and nothing else (its own background requests to
# Google's hosts fail to resolve; the net-log check lists them); the whole run is bounded by --limit (default 120 s).
#
# Checks, each PASS or FAIL:
#   - the page's own report: navigation and every resource over h2, status
#     200, all images decoded, the iframe's text there, as many resources as expected;
#   - the server's access log (read after a graceful stop, so nothing is left
#     in a buffer; the script's curl check left out): each path requested
#     with protocol HTTP/2.0 (or HTTP/2, as h2o writes it) and status 200, and no
#     request over another protocol (Chromium's /favicon.ico, a 404, included);
#   - Chromium's net log: HTTP/2 sessions to 127.0.0.1:PORT (how many is
#     printed: one is expected, every request multiplexed on it), and TCP
#     connections to 127.0.0.1:PORT only.
# Exit status 0 if every check passed, 1 otherwise, 2 if it could not run.
#
# Environment: OSERVER_BIN=path skips the cargo build (else `cargo build
# --release -p oserver-cli`, CARGO_TARGET_DIR honoured); CHROMIUM_KEEP_TMP=1
# keeps the temp dir (page, DOM dump, net log, access log, logs).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=benches/conformance/common.sh
source "$REPO/benches/conformance/common.sh"
SERVER=oserver
COPIES=5
LIMIT=120
TMP=""
SPID=""

while (($#)); do
    case "$1" in
    --server) SERVER=${2:?}; shift 2 ;;
    --copies) COPIES=${2:?}; shift 2 ;;
    --limit) LIMIT=${2:?}; shift 2 ;;
    -h | --help) usage 0 ;;
    *) printf 'unknown argument: %s\n' "$1" >&2; usage 2 ;;
    esac
done
[[ $SERVER =~ ^(oserver|h2o)$ ]] || die "--server: oserver or h2o, not '$SERVER'"
[[ $COPIES =~ ^[1-9][0-9]?$ ]] || die "--copies: 1 to 99"
[[ $LIMIT =~ ^[1-9][0-9]*$ ]] || die "--limit wants a positive integer"

install_tools() {
    local -A pkg_of=([chromium]=chromium [openssl]=openssl [curl]=curl [python3]=python3)
    [[ $SERVER == h2o ]] && pkg_of[h2o]=h2o
    local cmd missing=()
    for cmd in "${!pkg_of[@]}"; do
        command -v "$cmd" >/dev/null || missing+=("${pkg_of[$cmd]}")
    done
    ((${#missing[@]})) || return 0
    apt_install "${missing[@]}"
}




cleanup() {
    stop_server
    if [[ -n $TMP && -n ${CHROMIUM_KEEP_TMP:-} ]]; then
        echo "kept $TMP"
    elif [[ -n $TMP ]]; then
        rm -rf "$TMP"
    fi
    return 0
}

make_certs() {
    local d=$TMP/tls
    mkdir -p "$d"
    {
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ca.key" &&
            openssl req -x509 -new -key "$d/ca.key" -sha256 -days 2 -subj "/CN=oserver chromium-h2.sh CA" \
                -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
                -out "$d/ca.pem" &&
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/key.pem" &&
            openssl req -new -key "$d/key.pem" -subj "/CN=localhost" -out "$d/leaf.csr" &&
            printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
                "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$d/leaf.ext" &&
            openssl x509 -req -in "$d/leaf.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
                -set_serial "0x$(openssl rand -hex 8)" -days 2 -sha256 -extfile "$d/leaf.ext" -out "$d/cert.pem"
    } >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; die "openssl could not make the test certificate"; }
    chmod 644 "$d"/*.pem
    # What --ignore-certificate-errors-spki-list wants: base64 of the SHA-256
    # of the leaf's SubjectPublicKeyInfo (DER).
    SPKI=$(openssl x509 -in "$d/cert.pem" -noout -pubkey | openssl pkey -pubin -outform der |
        openssl dgst -sha256 -binary | base64)
    TLS_DIR=$d
}

# The document root: a copy of httptest/ and the page that uses it.
make_root() {
    local root=$TMP/root
    mkdir -p "$root"
    cp -r "$REPO/httptest" "$root/httptest"
    EXPECTED=(/httptest/h2-page.html /httptest/style.css /httptest/script.js /httptest/large.html)
    local imgs="" n f
    for ((n = 1; n <= COPIES; n++)); do
        for f in image.gif image.jpeg image.jpg image.png; do
            imgs+="<img src=\"/httptest/$f?n=$n\" width=\"8\" height=\"8\" alt=\"$f $n\">"$'\n'
            EXPECTED+=("/httptest/$f?n=$n")
        done
    done
    cat >"$root/httptest/h2-page.html" <<EOF
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>h2 page</title>
<link rel="stylesheet" href="/httptest/style.css">
<script src="/httptest/script.js"></script>
</head><body>
<h1>A page over HTTP/2</h1>
$imgs
<iframe src="/httptest/large.html" width="600" height="200"></iframe>
<pre id="result">no load event</pre>
<script>
window.addEventListener("load", function () {
  var out = [], nav = performance.getEntriesByType("navigation")[0];
  out.push("navigation " + (nav.nextHopProtocol || "none") + " " + (nav.responseStatus || 0) + " " + location.pathname);
  performance.getEntriesByType("resource").forEach(function (e) {
    var u = new URL(e.name);
    out.push("resource " + (e.nextHopProtocol || "none") + " " + (e.responseStatus || 0) + " " + u.pathname + u.search);
  });
  var ok = 0;
  for (var i = 0; i < document.images.length; i++) {
    if (document.images[i].complete && document.images[i].naturalWidth > 0) ok++;
  }
  out.push("images " + ok + " " + document.images.length);
  try {
    out.push("iframe " + document.querySelector("iframe").contentDocument.body.textContent.length);
  } catch (err) {
    out.push("iframe 0 " + err);
  }
  document.getElementById("result").textContent = out.join("\n");
});
</script>
</body></html>
EOF
    ROOT=$root
}

start_server() {
    local port=$1 tport=$2
    ACCESS_LOG=$TMP/access.log
    case "$SERVER" in
    oserver)
        setsid "$OSERVER_BIN" -r "$ROOT" -p "$port" --https-port "$tport" \
            --tls-cert "$TLS_DIR/cert.pem" --tls-key "$TLS_DIR/key.pem" \
            -w 2 --log-level warn --access-log "$ACCESS_LOG" >"$TMP/server.log" 2>&1 &
        ;;
    h2o)
        local user=""
        ((EUID == 0)) && user="user: root"
        cat >"$TMP/h2o.conf" <<EOF
# Generated by benches/conformance/chromium-h2.sh
$user
num-threads: 2
error-log: $TMP/server.log
pid-file: $TMP/h2o.pid
access-log: $ACCESS_LOG
listen:
  host: 127.0.0.1
  port: $port
listen:
  host: 127.0.0.1
  port: $tport
  ssl:
    certificate-file: $TLS_DIR/cert.pem
    key-file: $TLS_DIR/key.pem
    ocsp-update-interval: 0
hosts:
  default:
    paths:
      /:
        file.dir: $ROOT
EOF
        setsid h2o -c "$TMP/h2o.conf" >"$TMP/server.out" 2>&1 &
        ;;
    esac
    SPID=$!
    local i code=""
    for ((i = 0; i < 100; i++)); do
        kill -0 "$SPID" 2>/dev/null || { tail -n 20 "$TMP"/server.* >&2; die "$SERVER exited at startup"; }
        code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$TLS_DIR/ca.pem" --max-time 2 \
            "https://127.0.0.1:$tport/httptest/test.html" || true)
        [[ $code == 200 ]] && break
        sleep 0.1
    done
    [[ $code == 200 ]] || { tail -n 20 "$TMP"/server.* >&2; die "$SERVER: GET https://127.0.0.1:$tport/httptest/test.html gave '$code', not 200, after 10 s"; }
    log "$SERVER ready: pid $SPID, https://127.0.0.1:$tport/ (plain port $port), access log $ACCESS_LOG"
}

main() {
    install_tools
    if [[ $SERVER == oserver ]]; then build_oserver; fi
    TMP=$(mktemp -d /tmp/oserver-chromium.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    make_certs
    make_root
    local port tport
    port=$(free_port)
    tport=$(free_port)
    while [[ $tport == "$port" ]]; do tport=$(free_port); done
    start_server "$port" "$tport"

    local url="https://127.0.0.1:$tport/httptest/h2-page.html" rc=0 start=$SECONDS
    log "chromium --headless=new ... --dump-dom $url"
    # HOME in the temp dir too: Chromium writes caches and crash reports there.
    HOME=$TMP/home timeout -k 5 "$LIMIT" chromium \
        --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --user-data-dir="$TMP/profile" --no-first-run --no-default-browser-check \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-domain-reliability --disable-client-side-phishing-detection \
        --disable-default-apps --disable-extensions --no-pings --metrics-recording-only \
        --host-resolver-rules="MAP * ~NOTFOUND , EXCLUDE 127.0.0.1" \
        --ignore-certificate-errors-spki-list="$SPKI" \
        --log-net-log="$TMP/netlog.json" \
        --dump-dom "$url" >"$TMP/dom.html" 2>"$TMP/chromium.err" || rc=$?
    log "chromium took $((SECONDS - start)) s, exit status $rc"
    if ((rc != 0)); then
        grep -v -E 'dbus|Fontconfig|sandbox' "$TMP/chromium.err" | tail -n 10 | sed 's/^/    /' >&2 || true
    fi
    kill -0 "$SPID" 2>/dev/null || log "!!! $SERVER is no longer running"
    stop_server # so that its access log is complete
    if [[ -s $TMP/server.log ]]; then
        log "$SERVER logged (last 10 lines):"
        tail -n 10 "$TMP/server.log" | sed 's/^/    /'
    fi
    python3 - "$TMP/dom.html" "$ACCESS_LOG" "$TMP/netlog.json" "$tport" \
        "${EXPECTED[@]}" <<'EOF'
import collections
import html
import json
import re
import sys

dom_path, access_path, netlog_path, tport = sys.argv[1:5]
expected = sys.argv[5:]
H2 = ("HTTP/2.0", "HTTP/2")  # oserver and nginx write the one, h2o the other
page = expected[0]
results = []


def check(name, ok, detail):
    results.append(ok)
    print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}")


print()
print("chromium-h2 checks")

# 1. What the page saw (Resource Timing), from the DOM dump.
dom = open(dom_path, errors="replace").read()
m = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
report = html.unescape(m.group(1)).splitlines() if m else []
if not report or report == ["no load event"]:
    check("page report", False, "no report in the DOM dump (the page did not load, or its load event never fired)")
else:
    seen, bad, images, iframe = {}, [], None, None
    for line in report:
        f = line.split()
        if f[0] in ("navigation", "resource") and len(f) >= 4:
            proto, status, path = f[1], f[2], f[3]
            seen[path] = (proto, status)
            if proto != "h2" or status != "200":
                bad.append(f"{path} {proto} {status}")
        elif f[0] == "images":
            images = (int(f[1]), int(f[2]))
        elif f[0] == "iframe":
            iframe = int(f[1])
    missing = [p for p in expected if p not in seen]
    check("page: every fetch over h2 with 200", not bad and not missing,
          f"{len(seen)} of {len(expected)} expected fetches reported"
          + (f"; not h2/200: {', '.join(bad[:5])}" if bad else "")
          + (f"; missing: {', '.join(missing[:5])}" if missing else ""))
    check("page: images decoded", images is not None and images[0] == images[1] == len(expected) - 4,
          f"{images[0] if images else 0} of {images[1] if images else '?'}")
    check("page: the ~1 MB iframe arrived", (iframe or 0) > 900_000, f"{iframe or 0} characters of text")

# 2. The server's access log (combined format: "METHOD PATH PROTOCOL" STATUS).
try:
    # Leave out the script's own readiness check (curl).
    lines = [l for l in open(access_path, errors="replace").read().splitlines() if '"curl/' not in l]
except OSError:
    lines = []
req = re.compile(r'"(\S+) (\S+) (HTTP/[0-9.]+)" (\d{3}) ')
by_path = collections.defaultdict(list)
protos = collections.Counter()
for line in lines:
    m = req.search(line)
    if m:
        method, path, proto, status = m.groups()
        by_path[path].append((method, proto, status))
        protos[proto] += 1
wrong = [p for p in expected if not any(m == "GET" and v in H2 and s == "200" for m, v, s in by_path.get(p, []))]
other = {k: v for k, v in protos.items() if k not in H2}
check("access log: each path GET over HTTP/2.0 with 200", not wrong,
      f"{len(lines)} lines, protocols {dict(protos)}"
      + (f"; not logged as GET HTTP/2.0 200: {', '.join(wrong[:5])}" if wrong else ""))
check("access log: nothing over another protocol", not other, f"{dict(other) or 'none'}")

# 3. Chromium's own record: HTTP/2 sessions, and the hosts it asked for.
try:
    netlog = json.load(open(netlog_path))
except (OSError, ValueError) as e:
    check("net log", False, f"unreadable: {e}")
else:
    c = netlog["constants"]
    src_name = {v: k for k, v in c["logSourceType"].items()}
    evt_name = {v: k for k, v in c["logEventTypes"].items()}
    h2_sessions, hosts, alpn = set(), collections.Counter(), collections.Counter()
    connects = collections.Counter()
    for e in netlog.get("events", []):
        src = e.get("source", {})
        p = e.get("params") or {}
        if src_name.get(src.get("type")) == "HTTP2_SESSION":
            h2_sessions.add(src.get("id"))
        if evt_name.get(e.get("type")) == "URL_REQUEST_START_JOB" and "url" in p:
            hosts[re.sub(r"^(\w+://[^/]+).*$", r"\1", p["url"])] += 1
        if evt_name.get(e.get("type")) in ("TCP_CONNECT", "TCP_CONNECT_ATTEMPT") and "address" in p:
            connects[p["address"]] += 1
        if "negotiated_protocol" in p:
            alpn[p["negotiated_protocol"]] += 1
    origin = f"https://127.0.0.1:{tport}"
    check("net log: HTTP/2 session(s) to the server", len(h2_sessions) >= 1,
          f"{len(h2_sessions)} HTTP/2 session(s) (one expected, every request on it)"
          + (f"; negotiated protocols {dict(alpn)}" if alpn else ""))
    elsewhere = {a: n for a, n in connects.items() if a != f"127.0.0.1:{tport}"}
    check(f"net log: TCP connections to 127.0.0.1:{tport} only", connects and not elsewhere,
          f"connection attempts by address {dict(connects)}")
    others = sorted(h for h in hosts if h != origin)
    if others:
        print(f"        (Chromium's own requests, unresolved by design: {', '.join(others)})")

passed = sum(results)
print()
print(f"chromium-h2: {passed} passed, {len(results) - passed} failed")
sys.exit(0 if all(results) else 1)
EOF
}

main "$@"
