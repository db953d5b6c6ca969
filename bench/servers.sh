# Start netkit and the peer servers for the benchmarks, each with a minimal configuration written
# into a scratch directory. Source after lib.sh. Every server binds 127.0.0.1 only, logs no
# accesses, keeps connections alive and uses the same number of workers.
#
#   bench_server_start NAME DOCROOT WORKDIR WORKERS MAXCONNS
#     starts NAME (netkit, netkit-uring, nginx, lighttpd, h2o) and sets SERVER_PID and
#     SERVER_PORT; returns 1 (with a message on stderr) when NAME is not installed or does not
#     come up. netkit-uring is netkit with --backend uring (plain connections then run on
#     completion operations); where the kernel refuses io_uring it is skipped, saying so.
#   bench_server_version NAME: one line naming the version, for the results.
#
# With BENCH_TLS=1 every server listens with TLS instead (https://), on the certificate that
# bench_tls_setup makes; call that first. Each keeps its own TLS defaults apart from the
# certificate, TLS 1.2 and 1.3 and session tickets on, which all of them have by default.
# With BENCH_H2=1 as well (bench/h2.sh) every server offers HTTP/2 by ALPN on that listener:
# netkit, h2o and lighttpd do by default, nginx is given `listen ... ssl http2`; idle HTTP/2
# connections are kept 120 s as HTTP/1.1 ones are (h2o's http2-idle-timeout).

# Where each peer lives; overridable for a peer installed elsewhere.
BENCH_NGINX=${BENCH_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
BENCH_LIGHTTPD=${BENCH_LIGHTTPD:-$(command -v lighttpd || echo /usr/sbin/lighttpd)}
BENCH_H2O=${BENCH_H2O:-$(command -v h2o || echo /usr/bin/h2o)}

BENCH_TLS=${BENCH_TLS:-0}
if [ "$BENCH_TLS" = 1 ]; then BENCH_SCHEME=https; else BENCH_SCHEME=http; fi
BENCH_H2=${BENCH_H2:-0}
if [ "$BENCH_H2" = 1 ] && [ "$BENCH_TLS" != 1 ]; then
  bench_die "BENCH_H2=1 needs BENCH_TLS=1 (HTTP/2 over TLS)"
fi
BENCH_TLS_CERT='' BENCH_TLS_KEY='' BENCH_WRK_TLS=''

# bench_tls_setup DIR: make the servers' certificate in DIR (ECDSA P-256, self-signed, for
# 127.0.0.1 and localhost; BENCH_TLS_CERT, BENCH_TLS_KEY) and build bench/wrk_tls.c, the
# library preloaded into wrk that counts full and resumed handshakes and can forbid resumption
# (BENCH_WRK_TLS, empty when it cannot be built).
bench_tls_setup() {
  local dir=$1 src
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/wrk_tls.c
  command -v openssl >/dev/null 2>&1 || bench_die "openssl is not installed (it makes the certificate)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
    -keyout "$dir/tls.key" -out "$dir/tls.crt" >"$dir/openssl.log" 2>&1 ||
    bench_die "openssl could not make the certificate: $(tail -n 1 "$dir/openssl.log")"
  # Servers that drop privileges must still read them.
  chmod 644 "$dir/tls.key" "$dir/tls.crt"
  BENCH_TLS_CERT=$dir/tls.crt BENCH_TLS_KEY=$dir/tls.key
  if ${CC:-cc} -shared -fPIC -O2 -o "$dir/wrk_tls.so" "$src" -ldl >"$dir/wrk_tls.log" 2>&1; then
    # shellcheck disable=SC2034 # read by the scripts that source this file
    BENCH_WRK_TLS=$dir/wrk_tls.so
  else
    bench_log "could not build bench/wrk_tls.c (needs cc and libssl-dev): $(head -n 1 "$dir/wrk_tls.log")"
  fi
}

# bench_nofile WANT: the descriptor limit the servers can actually get (the hard limit caps it
# unless we may raise that too).
bench_nofile() {
  local hard
  hard=$(ulimit -Hn)
  if [ "$hard" = unlimited ] || [ "$hard" -ge "$1" ]; then echo "$1"; else echo "$hard"; fi
}

bench_server_installed() {
  case $1 in
    netkit | netkit-affinity | netkit-uring | netkit-sendfile | netkit-uring-sendfile) [ -x "$NETKIT_BIN" ] ;;
    nginx) [ -x "$BENCH_NGINX" ] ;;
    lighttpd) [ -x "$BENCH_LIGHTTPD" ] ;;
    h2o) [ -x "$BENCH_H2O" ] ;;
    *) return 1 ;;
  esac
}

bench_server_version() {
  case $1 in
    netkit | netkit-affinity) "$NETKIT_BIN" --version 2>&1 | head -n 1 ;;
    netkit-uring) echo "$("$NETKIT_BIN" --version 2>&1 | head -n 1), --backend uring" ;;
    netkit-sendfile) echo "$("$NETKIT_BIN" --version 2>&1 | head -n 1), --sendfile on" ;;
    netkit-uring-sendfile) echo "$("$NETKIT_BIN" --version 2>&1 | head -n 1), --backend uring --sendfile on" ;;
    nginx) "$BENCH_NGINX" -v 2>&1 | head -n 1 ;;
    lighttpd) "$BENCH_LIGHTTPD" -v 2>&1 | head -n 1 ;;
    h2o) "$BENCH_H2O" --version 2>&1 | head -n 1 ;;
  esac
}

bench_server_start() {
  local name=$1 docroot=$2 work=$3 workers=$4 maxconns=$5 nofile
  nofile=$(bench_nofile $(( maxconns * 2 + 1024 )))
  SERVER_PID='' SERVER_PORT=
  if ! bench_server_installed "$name"; then
    case $name in
      netkit | netkit-affinity | netkit-uring | netkit-sendfile | netkit-uring-sendfile) bench_log "skipping $name: no executable at $NETKIT_BIN (build it, or set NETKIT_BIN)" ;;
      *) bench_log "skipping $name: not installed (scripts/install-deps bench installs the peers)" ;;
    esac
    return 1
  fi
  mkdir -p "$work/$name"
  "bench_start_$name" "$docroot" "$work/$name" "$workers" "$maxconns" "$nofile" || {
    # A kernel that refuses io_uring (seccomp, kernel.io_uring_disabled, not built in) makes
    # `http serve --backend uring` fail with EPERM or ENOSYS: a skip, said in one line.
    if grep -qE "cannot start the uring backend: (Operation not permitted|Function not implemented)" \
        "$work/$name/server.log" 2>/dev/null; then
      bench_log "skipping $name: this kernel refuses io_uring ($(grep -m1 -oE "Operation not permitted|Function not implemented" "$work/$name/server.log"))"
      [ -n "$SERVER_PID" ] && bench_stop "$SERVER_PID"
      SERVER_PID=
      return 1
    fi
    bench_log "skipping $name: it did not start; its log says:"
    tail -n 5 "$work/$name/server.log" >&2 2>/dev/null || true
    [ -n "$SERVER_PID" ] && bench_stop "$SERVER_PID"
    SERVER_PID=
    return 1
  }
}

# netkit takes port 0 and prints the real one when it is ready. Arguments after the first five
# go to `http serve` as they are (netkit-uring's --backend).
bench_start_netkit() {
  local docroot=$1 dir=$2 workers=$3 maxconns=$4 nofile=$5 limits=()
  shift 5
  # Many-connection runs (idle.sh) raise netkit's connection cap and idle timeout as the peers'
  # configurations do; throughput runs use netkit's defaults.
  [ "$maxconns" -gt 1024 ] && limits=(--max-conns "$maxconns" --idle-timeout 120)
  local listen=(-l 127.0.0.1:0)
  [ "$BENCH_TLS" = 1 ] &&
    listen=(-l https://127.0.0.1:0 --tls-cert "$BENCH_TLS_CERT" --tls-key "$BENCH_TLS_KEY")
  bench_start "$dir/server.log" "$nofile" "$NETKIT_BIN" http serve "$docroot" \
    "${listen[@]}" -w "$workers" --access-log off "${limits[@]}" "$@"
  SERVER_PID=$BENCH_STARTED
  SERVER_PORT=$(bench_wait_listening "$SERVER_PID" "$dir/server.log" 10) || return 1
  bench_wait_port "$SERVER_PID" "$SERVER_PORT" 10
}

# netkit on the uring backend, where the engine serves plain connections with completion
# operations (src/httpd/opconn.c); TLS connections stay on readiness there. The backend is
# named on the command line, so a kernel that refuses io_uring stops it with its one-line reason
# instead of falling back to epoll.
bench_start_netkit-uring() {
  bench_start_netkit "$@" --backend uring
}

# File bodies by sendfile whatever the client's address (the default, --sendfile auto, copies
# them for loopback clients such as the benchmark's): the A/B of the two ways to send a file.
bench_start_netkit-sendfile() {
  bench_start_netkit "$@" --sendfile on
}
bench_start_netkit-uring-sendfile() {
  bench_start_netkit "$@" --backend uring --sendfile on
}

# The same with --cpu-affinity: workers pinned, connections steered to the worker on the CPU
# that received them (bench/workers.sh compares it with plain SO_REUSEPORT).
bench_start_netkit-affinity() {
  local docroot=$1 dir=$2 workers=$3 maxconns=$4 nofile=$5
  bench_start "$dir/server.log" "$nofile" "$NETKIT_BIN" http serve "$docroot" \
    -l 127.0.0.1:0 -w "$workers" --access-log off --cpu-affinity
  SERVER_PID=$BENCH_STARTED
  SERVER_PORT=$(bench_wait_listening "$SERVER_PID" "$dir/server.log" 10) || return 1
  bench_wait_port "$SERVER_PID" "$SERVER_PORT" 10
}

bench_start_nginx() {
  local docroot=$1 dir=$2 workers=$3 maxconns=$4 nofile=$5 user='' extra='' built m ssl='' tls=''
  SERVER_PORT=$(bench_free_port)
  # Tickets are on by default; said explicitly since resumption is part of what is compared.
  [ "$BENCH_TLS" = 1 ] && ssl=' ssl' tls="ssl_certificate $BENCH_TLS_CERT;
        ssl_certificate_key $BENCH_TLS_KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets on;"
  # The http2 module is in Debian's nginx-light; a build without it cannot take part.
  if [ "$BENCH_H2" = 1 ]; then
    case $("$BENCH_NGINX" -V 2>&1) in
      *--with-http_v2_module*) ssl="$ssl http2" ;;
      *) bench_log "nginx: built without http_v2_module"; return 1 ;;
    esac
  fi
  # BENCH_NGINX_REUSEPORT=1: one listening socket per worker (SO_REUSEPORT), the kernel
  # spreading connections over them, as netkit's workers do (bench/workers.sh).
  [ "${BENCH_NGINX_REUSEPORT:-0}" = 1 ] && ssl="$ssl reuseport"
  # As root the master would hand the workers to "nobody"; keep them as the current user.
  [ "$(id -u)" -eq 0 ] && user="user $(id -un) $(id -gn);"
  # Temp paths of modules that this build lacks would be rejected as unknown directives.
  built=$("$BENCH_NGINX" -V 2>&1) || true
  for m in uwsgi scgi fastcgi proxy; do
    case $built in
      *--without-http_${m}_module*) ;;
      *) extra="$extra ${m}_temp_path $dir/$m;" ;;
    esac
  done
  cat >"$dir/nginx.conf" <<EOF
$user
daemon off;
master_process on;
worker_processes $workers;
worker_rlimit_nofile $nofile;
error_log $dir/error.log warn;
pid $dir/nginx.pid;
events {
    use epoll;
    worker_connections $(( maxconns + 64 ));
}
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 100000;
    client_body_temp_path $dir/body;
    $extra
    types { application/octet-stream bin; }
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$SERVER_PORT$ssl;
        root $docroot;
        $tls
    }
}
EOF
  # -e: the error log before the configuration is read (nginx >= 1.19.5).
  bench_start "$dir/server.log" "$nofile" "$BENCH_NGINX" -p "$dir" -e "$dir/error.log" \
    -c "$dir/nginx.conf"
  SERVER_PID=$BENCH_STARTED
  bench_wait_port "$SERVER_PID" "$SERVER_PORT" 10
}

bench_start_lighttpd() {
  local docroot=$1 dir=$2 workers=$3 maxconns=$4 nofile=$5 backend='' worker='' tls=''
  SERVER_PORT=$(bench_free_port)
  # One worker is lighttpd's ordinary single process; server.max-worker forks that many.
  [ "$workers" -gt 1 ] && worker="server.max-worker = $workers"
  # TLS comes from mod_openssl (Debian: lighttpd-mod-openssl); ssl.engine at the top level
  # applies to the server.bind socket.
  if [ "$BENCH_TLS" = 1 ]; then
    if [ ! -e /usr/lib/lighttpd/mod_openssl.so ] && [ -d /usr/lib/lighttpd ]; then
      bench_log "lighttpd: no mod_openssl (scripts/install-deps bench installs lighttpd-mod-openssl)"
      return 1
    fi
    tls="server.modules += (\"mod_openssl\")
ssl.engine = \"enable\"
ssl.pemfile = \"$BENCH_TLS_CERT\"
ssl.privkey = \"$BENCH_TLS_KEY\""
    # On by default since 1.4.59; said explicitly so that a change of default shows.
    if [ "$BENCH_H2" = 1 ]; then
      tls="$tls
server.feature-flags += (\"server.h2proto\" => \"enable\")"
    fi
  fi
  cat >"$dir/lighttpd.conf" <<EOF
server.document-root = "$docroot"
server.bind = "127.0.0.1"
server.port = $SERVER_PORT
server.errorlog = "$dir/error.log"
server.event-handler = "linux-sysepoll"
server.max-keep-alive-requests = 65535
server.max-keep-alive-idle = 120
server.max-connections = $maxconns
server.max-fds = $nofile
$worker
$tls
mimetype.assign = (".bin" => "application/octet-stream")
EOF
  # Ask for the sendfile backend only where this version accepts the name.
  backend='server.network-backend = "sendfile"'
  cp "$dir/lighttpd.conf" "$dir/probe.conf"
  printf '%s\n' "$backend" >>"$dir/probe.conf"
  if "$BENCH_LIGHTTPD" -tt -f "$dir/probe.conf" >/dev/null 2>&1; then
    printf '%s\n' "$backend" >>"$dir/lighttpd.conf"
  else
    bench_log "lighttpd: this version rejects $backend; using its default backend"
  fi
  bench_start "$dir/server.log" "$nofile" "$BENCH_LIGHTTPD" -D -f "$dir/lighttpd.conf"
  SERVER_PID=$BENCH_STARTED
  bench_wait_port "$SERVER_PID" "$SERVER_PORT" 10
}

bench_start_h2o() {
  local docroot=$1 dir=$2 workers=$3 maxconns=$4 nofile=$5 user='' tls=''
  SERVER_PORT=$(bench_free_port)
  [ "$BENCH_TLS" = 1 ] && tls="  ssl:
    certificate-file: $BENCH_TLS_CERT
    key-file: $BENCH_TLS_KEY"
  # As root h2o would switch to "nobody"; keep the current user. Without an access-log
  # directive h2o logs no accesses. http1-request-timeout is also its keep-alive idle timeout.
  [ "$(id -u)" -eq 0 ] && user="user: $(id -un)"
  # Its HTTP/2 idle timeout is 10 s by default, too short for idle.sh's connections.
  if [ "$BENCH_H2" = 1 ]; then
    user="$user
http2-idle-timeout: 120"
  fi
  cat >"$dir/h2o.conf" <<EOF
$user
num-threads: $workers
max-connections: $maxconns
http1-request-timeout: 120
pid-file: $dir/h2o.pid
error-log: $dir/error.log
listen:
  host: 127.0.0.1
  port: $SERVER_PORT
$tls
hosts:
  default:
    paths:
      /:
        file.dir: $docroot
EOF
  bench_start "$dir/server.log" "$nofile" "$BENCH_H2O" -m worker -c "$dir/h2o.conf"
  SERVER_PID=$BENCH_STARTED
  bench_wait_port "$SERVER_PID" "$SERVER_PORT" 10
}

# bench_server_workers NAME PID: the processes of server NAME (root PID) that hold connections.
# h2o serves from threads of its one process; its child is a perl crash-handler helper
# (annotate-backtrace-symbols), not a worker. The others serve from their children when they
# have any (nginx's workers, lighttpd's or netkit's with several workers), else from the root.
bench_server_workers() {
  case $1 in
    h2o) printf '%s\n' "$2" ;;
    *) bench_workers "$2" ;;
  esac
}

# bench_check_file PORT PATH SIZE: true when GET PATH answers 200 with SIZE bytes (over TLS
# with BENCH_TLS=1, checking the server's certificate against ours; with BENCH_H2=1 the answer
# must also have come over HTTP/2).
bench_check_file() {
  local got tls=() proto=--http1.1 want="200 $3 1.1"
  [ "$BENCH_TLS" = 1 ] && tls=(--cacert "$BENCH_TLS_CERT")
  [ "$BENCH_H2" = 1 ] && proto=--http2 want="200 $3 2"
  got=$(curl -s -o /dev/null --max-time 10 "$proto" "${tls[@]}" \
    -w '%{http_code} %{size_download} %{http_version}' "$BENCH_SCHEME://127.0.0.1:$1$2" \
    2>/dev/null) || true
  [ "$got" = "$want" ]
}
