#!/usr/bin/env bash
# TLS side by side: netkit against nginx, lighttpd and h2o (those installed), every one with
# one worker and TLS on the same ECDSA P-256 certificate. Three parts, one results file
# (bench/results/tls-<stamp>.tsv):
#
#   1. throughput (bench/http.sh with BENCH_TLS=1): 1 KiB keep-alive (req/s, CPU per request),
#      1 KiB with "Connection: close" and a full handshake per request (handshakes/s, CPU per
#      handshake), 10 MiB keep-alive (MB/s);
#   2. memory per idle TLS connection after its handshake and one request (bench/idle.sh with
#      BENCH_TLS=1, 5000 connections, 2000 with BENCH_QUICK=1);
#   3. system calls per request of each server for 1 KiB keep-alive over TLS, and of netkit
#      without TLS beside it: `strace -c -f` attached to the workers during a short wrk run
#      (strace slows the server several times over: only the counts per request mean anything).
#
# Environment: as http.sh and idle.sh (BENCH_QUICK, BENCH_ROUNDS, BENCH_DURATION,
# BENCH_CONTENDERS, NETKIT_BIN, ...), plus BENCH_TLS_PARTS="http idle syscalls" (which parts),
# BENCH_TLS_IDLE_CONNS=N (part 2) and BENCH_STRACE_SECONDS=S (part 3; default 3, 2 quick).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BENCH_ROOT=$(dirname "$here")
export BENCH_TLS=1
. "$here/lib.sh"
. "$here/servers.sh"

parts=${BENCH_TLS_PARTS:-http idle syscalls}
contenders=${BENCH_CONTENDERS:-netkit nginx lighttpd h2o}
if [ "${BENCH_QUICK:-0}" = 1 ]; then idle_conns=2000 strace_secs=2; else idle_conns=5000 strace_secs=3; fi
idle_conns=${BENCH_TLS_IDLE_CONNS:-$idle_conns}
strace_secs=${BENCH_STRACE_SECONDS:-$strace_secs}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/netkit-bench-tls.XXXXXX")
child=
# A part runs as a child script with its own cleanup trap; pass a stop on to it first.
stop_child() { [ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait 2>/dev/null || true; }
trap 'stop_child; bench_cleanup; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE
chmod 755 "$tmp"

mkdir -p "$here/results"
tsv=$here/results/tls-$(date +%Y%m%d-%H%M%S).tsv
printf '# netkit bench/tls.sh %s host=%s cpus=%s parts=%s\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(uname -n)" "$(nproc)" "$parts" >"$tsv"
export BENCH_TSV=$tsv

# run_part SCRIPT [VAR=VALUE...]: one of the other benchmarks, in the background so that a
# signal reaches this script's trap at once.
run_part() {
  local script=$1 rc=0
  shift
  env "$@" "$here/$script" &
  child=$!
  wait "$child" || rc=$?
  child=
  [ "$rc" = 0 ] || bench_log "$script failed (exit $rc)"
  return 0
}

for part in $parts; do
  case $part in
    http) run_part http.sh BENCH_CONTENDERS="$contenders" ;;
    idle) run_part idle.sh BENCH_CONTENDERS="$contenders" BENCH_IDLE_CONNS="$idle_conns" ;;
    syscalls) ;;
    *) bench_log "unknown part '$part' (http idle syscalls)" ;;
  esac
done

case " $parts " in *" syscalls "*) ;; *) printf '\nresults written to %s\n' "${tsv#"$BENCH_ROOT"/}"; exit 0 ;; esac

# Part 3: system calls per request, 1 KiB keep-alive, wrk -t1 -c64.
if ! command -v strace >/dev/null 2>&1; then
  bench_log "skipping the system call counts: strace is not installed"
  printf '\nresults written to %s\n' "${tsv#"$BENCH_ROOT"/}"
  exit 0
fi
command -v wrk >/dev/null 2>&1 || bench_die "wrk is not installed (scripts/install-deps bench)"
bench_tls_setup "$tmp"
docroot=$tmp/www
mkdir -p "$docroot"
head -c 1024 /dev/urandom >"$docroot/1k.bin"
chmod 755 "$docroot"
chmod 644 "$docroot/1k.bin"

{
  printf '# system calls per request: 1 KiB keep-alive, wrk -t1 -c64, %ss under strace -c -f\n' \
    "$strace_secs"
  printf 'row\tcontender\ttls\trequests\tsyscall\tcalls\tcalls_per_req\n'
} >>"$tsv"

# count_syscalls NAME TLS(0|1): start NAME with or without TLS, trace its workers during a wrk
# run, print the counts per request and append them to the results.
count_syscalls() {
  local c=$1 label=$1 dir workers spid i reqs p args=()
  # servers.sh reads these when it starts and checks a server; bash's locals reach it.
  local BENCH_TLS=$2 BENCH_SCHEME=https
  [ "$BENCH_TLS" = 1 ] || BENCH_SCHEME=http label="$c (plain)"
  dir=$tmp/strace-$c-$BENCH_TLS
  mkdir -p "$dir"
  bench_server_start "$c" "$docroot" "$dir" 1 1024 || return 0
  if ! bench_check_file "$SERVER_PORT" /1k.bin 1024; then
    bench_log "skipping $label: GET /1k.bin did not return 200 with 1024 bytes"
    bench_stop "$SERVER_PID"
    return 0
  fi
  workers=$(bench_server_workers "$c" "$SERVER_PID")
  for p in $workers; do args+=(-p "$p"); done
  bench_start "$dir/strace.err" 1024 strace -c -f -o "$dir/strace.out" "${args[@]}"
  spid=$BENCH_STARTED
  # Load only once strace holds the workers (it says so for each one it attaches).
  for (( i = 0; i < 100; i++ )); do
    grep -q 'attached' "$dir/strace.err" 2>/dev/null && break
    bench_alive "$spid" || break
    sleep 0.05
  done
  sleep 0.2
  bench_run_bounded $(( strace_secs + 20 )) wrk -t1 -c64 -d"${strace_secs}s" --timeout 5s \
    "$BENCH_SCHEME://127.0.0.1:$SERVER_PORT/1k.bin" >"$dir/wrk.out" 2>&1 || true
  # strace detaches on SIGTERM and writes its summary.
  bench_stop "$spid" 10
  bench_stop "$SERVER_PID"
  # shellcheck disable=SC2046 # the fourth of the figures is the request count
  reqs=$(set -- $(bench_parse_wrk "$dir/wrk.out"); echo "$4")
  if [ "${reqs:-0}" -le 0 ] || [ ! -s "$dir/strace.out" ]; then
    bench_log "no system call counts for $label (wrk or strace failed)"
    return 0
  fi
  # strace -c: "% time seconds usecs/call calls [errors] syscall"; the calls are field 4.
  awk -v c="$c" -v tls="$BENCH_TLS" -v n="$reqs" -v label="$label" -v tsv="$tsv" '
    $1 ~ /^[0-9.]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" {
      calls[$NF] = $4; total += $4; order[++k] = $NF
    }
    END {
      printf "%-18s %9d requests %6.2f calls/req:", label, n, total / n
      shown = 0
      for (i = 1; i <= k; i++) {
        s = order[i]
        printf "tls-syscalls\t%s\t%s\t%d\t%s\t%d\t%.3f\n", c, tls, n, s, calls[s], calls[s] / n >> tsv
        if (calls[s] / n >= 0.01 && shown < 8) { printf " %s %.2f", s, calls[s] / n; shown++ }
      }
      printf "tls-syscalls\t%s\t%s\t%d\ttotal\t%d\t%.3f\n", c, tls, n, total, total / n >> tsv
      printf "\n"
    }' "$dir/strace.out"
}

printf '\n== system calls per request: 1 KiB keep-alive, wrk -t1 -c64, %ss under strace -c -f\n' \
  "$strace_secs"
for c in $contenders; do
  count_syscalls "$c" 1
  [ "$c" = netkit ] && count_syscalls netkit 0
done
printf '(strace slows every server several times over: compare the counts, not the rates)\n'
printf '\nresults written to %s\n' "${tsv#"$BENCH_ROOT"/}"
