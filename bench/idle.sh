#!/usr/bin/env bash
# Memory per idle keep-alive connection: netkit, on epoll and on uring (netkit-uring), against
# nginx, lighttpd and h2o (those installed). Each server runs with one worker;
# bench/idle_client.py opens N connections that each send one complete keep-alive request, read
# the response and then stay open and silent. The workers' VmRSS (not a master's) is read
# before and after; the growth divided by the connections still open is the figure.
#
# With BENCH_TLS=1 the servers listen with TLS and every connection makes a full handshake
# first: the figure is then the memory of an idle TLS connection (N defaults to 5000, 2000 with
# BENCH_QUICK=1: a Python client makes the handshakes one after another).
#
# With BENCH_H2=1 too (bench/h2.sh) the connections speak HTTP/2 (ALPN h2, python3-h2): the
# figure is that of an idle HTTP/2 connection after one request.
#
# Environment: BENCH_QUICK=1 (N=2000), BENCH_IDLE_CONNS=N (default 10000), BENCH_TLS=1,
# BENCH_TSV=FILE (append the results there instead of bench/results/idle-<stamp>.tsv),
# BENCH_CONTENDERS="netkit nginx ...", NETKIT_BIN (default build/netkit).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BENCH_ROOT=$(dirname "$here")
. "$here/lib.sh"
. "$here/servers.sh"

if [ "${BENCH_QUICK:-0}" = 1 ]; then conns=2000
elif [ "${BENCH_TLS:-0}" = 1 ]; then conns=5000
else conns=10000; fi
conns=${BENCH_IDLE_CONNS:-$conns}
contenders=${BENCH_CONTENDERS:-netkit netkit-uring nginx lighttpd h2o}
# Room for the connections, the listener and the server's own files.
maxconns=20000

command -v python3 >/dev/null 2>&1 || bench_die "python3 is not installed"
python=python3
if [ "$BENCH_H2" = 1 ]; then
  python=$(bench_python_h2) || bench_die "no python3 with python3-h2 (scripts/install-deps test)"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/netkit-bench-idle.XXXXXX")
trap 'bench_cleanup; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE
chmod 755 "$tmp"
tls=()
if [ "$BENCH_TLS" = 1 ]; then
  bench_tls_setup "$tmp"
  tls=(--tls)
  [ "$BENCH_H2" = 1 ] && tls=(--h2)
fi
docroot=$tmp/www
mkdir -p "$docroot"
head -c 1024 /dev/urandom >"$docroot/1k.bin"
chmod 755 "$docroot"
chmod 644 "$docroot/1k.bin"

# The client raises its own soft limit to hold a descriptor per connection; the hard limit caps
# it (and the servers, which bench_start raises as far as they may go).
if [ "$(bench_nofile $(( conns + 256 )))" -lt $(( conns + 256 )) ]; then
  bench_log "warning: hard descriptor limit $(ulimit -Hn) is below $((conns + 256)); fewer connections will open"
fi

mkdir -p "$here/results"
tsv=${BENCH_TSV:-$here/results/idle-$(date +%Y%m%d-%H%M%S).tsv}
{
  printf '# netkit bench/idle.sh %s host=%s conns=%s tls=%s\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(uname -n)" "$conns" "$BENCH_TLS$([ "$BENCH_H2" = 1 ] && echo ' h2=1')"
  printf 'row\tcontender\tworkers\trss_before_kb\trss_after_kb\topen\tclosed_by_server\tbytes_per_conn\n'
} >>"$tsv"

declare -A per
done_list=()
what=keep-alive
[ "$BENCH_TLS" = 1 ] && what="TLS keep-alive"
[ "$BENCH_H2" = 1 ] && what="HTTP/2 (TLS)"
printf '\n== idle: VmRSS per idle %s connection, %s connections, 1 worker\n' "$what" "$conns"
printf '%-13s %8s %14s %14s %8s %8s %12s\n' contender workers 'RSS before kB' 'RSS after kB' \
  open closed 'B/conn'
for c in $contenders; do
  bench_server_start "$c" "$docroot" "$tmp" 1 "$maxconns" || continue
  if ! bench_check_file "$SERVER_PORT" /1k.bin 1024; then
    bench_log "skipping $c: GET /1k.bin did not return 200 with 1024 bytes"
    bench_stop "$SERVER_PID"
    continue
  fi
  workers=$(bench_server_workers "$c" "$SERVER_PID" | tr '\n' ' ')
  workers=${workers% }
  out=$tmp/$c/idle.out
  if ! bench_run_bounded 180 "$python" "$here/idle_client.py" --port "$SERVER_PORT" \
      --pids "$workers" --conns "$conns" --deadline 120 "${tls[@]}" >"$out"; then
    bench_log "skipping $c: the idle client failed"
    bench_stop "$SERVER_PID"
    continue
  fi
  read -r before after open closed bytes <"$out"
  bench_stop "$SERVER_PID"
  per[$c]=$bytes
  done_list+=("$c")
  # shellcheck disable=SC2086 # a list of PIDs, split on purpose
  nworkers=$(set -- $workers; echo $#)
  printf '%-13s %8s %14s %14s %8s %8s %12s\n' "$c" "$nworkers" "$before" "$after" "$open" \
    "$closed" "$bytes"
  printf 'result\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$nworkers" "$before" "$after" "$open" \
    "$closed" "$bytes" >>"$tsv"
  if [ "$closed" -gt 0 ]; then
    bench_log "warning: $c closed $closed of the idle connections"
  fi
done

# Each netkit contender (netkit, netkit-uring) against each peer.
for k in "${done_list[@]}"; do
  case $k in netkit*) ;; *) continue ;; esac
  for c in "${done_list[@]}"; do
    case $c in netkit*) continue ;; esac
    # Below 1 means netkit needs less memory per idle connection.
    printf '%-26s bytes/conn x%s\n' "$k / $c" "$(bench_ratio "${per[$k]}" "${per[$c]}")"
    printf 'ratio\t%s/%s\t-\t-\t-\t-\t-\t%s\n' "$k" "$c" \
      "$(bench_ratio "${per[$k]}" "${per[$c]}")" >>"$tsv"
  done
done
printf '\nresults written to %s\n' "${tsv#"$BENCH_ROOT"/}"
