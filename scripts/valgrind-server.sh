#!/usr/bin/env bash
# One `netkit http serve` start/serve/stop cycle under valgrind memcheck:
# start on 127.0.0.1:0 with one worker, wait for the readiness line, make a few requests
# (GET, HEAD, 404, range, directory listing, a malformed request), SIGTERM, and require that
# valgrind reports no error or definite/indirect leak and that the server exits 0.
#   scripts/valgrind-server.sh [NETKIT_BINARY]   (default build-valgrind/netkit)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build-valgrind/netkit}
work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

valgrind --leak-check=full --error-exitcode=1 --errors-for-leak-kinds=definite,indirect \
    --log-file="$work/valgrind.log" \
    "$bin" http serve "$here/www" -l 127.0.0.1:0 -w 1 -q 2>"$work/stderr" &
pid=$!

# Wait (bounded: valgrind start-up is slow) for "listening on http://127.0.0.1:PORT".
url=""
for _ in $(seq 1 300); do
    url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/stderr" | head -n 1)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$url" ]; then
    echo "valgrind-server: no readiness line; stderr:" >&2
    cat "$work/stderr" "$work/valgrind.log" >&2
    exit 1
fi
url=${url%/}
hostport=${url#http://}
host=${hostport%:*}
port=${hostport##*:}

fail=0
check() { # expected-status, then curl arguments
    local want=$1; shift
    local got
    got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$@" || true)
    if [ "$got" != "$want" ]; then
        echo "valgrind-server: curl $*: status $got, expected $want" >&2
        fail=1
    fi
}
check 200 "$url/"
check 200 -I "$url/index.html"
check 404 "$url/no-such-file"
check 206 -r 0-9 "$url/index.html"
check 200 "$url/docs/"
check 200200 -o /dev/null "$url/assets/app.js" "$url/assets/style.css"   # two requests on one connection

# A malformed request on a raw connection: the server must answer 400 and close.
if command -v python3 >/dev/null; then
    reply=$(python3 - "$host" "$port" <<'PY'
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
s.sendall(b"GARBAGE \x01\x02 nonsense\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n", 1)[0].decode("latin-1"))
PY
    ) || reply="(python failed)"
    case "$reply" in
    "HTTP/1.1 400"*) ;;
    *) echo "valgrind-server: malformed request answered with: $reply" >&2; fail=1 ;;
    esac
fi

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
if [ $rc -ne 0 ]; then
    echo "valgrind-server: exit status $rc" >&2
    cat "$work/valgrind.log" >&2
    cat "$work/stderr" >&2
    exit 1
fi
if [ $fail -ne 0 ]; then
    cat "$work/stderr" >&2
    exit 1
fi
echo "valgrind-server: clean (GET, HEAD, 404, range, listing, malformed)"
