#!/usr/bin/env bash
# Scaling with workers: netkit `-w W` and nginx `worker_processes W` (each worker with its own
# SO_REUSEPORT listener, as netkit's have) for W = 1 .. N (N = nproc; above 8 CPUs the powers of
# two and N), on the 1 KiB file with keep-alive and with `Connection: close`, loaded by wrk.
#
# For each worker count both servers are started afresh, every scenario runs R rounds of D
# seconds, the two taking turns (the order alternating by round), and the table shows the
# medians: req/s and the servers' CPU time per request (the whole process tree, from
# /proc/PID/stat). Then, per server and scenario, the scaling efficiency
#   req/s at N / (N x req/s at 1)
# 1.00 is perfect scaling. wrk runs on the same machine: on a machine with few CPUs the load
# generator takes a CPU the workers would need, so the efficiency says as much about the
# machine as about the servers; the CPU per request does not depend on that.
#
# Environment: BENCH_QUICK=1 (R=1, D=2), BENCH_ROUNDS=R (default 2), BENCH_DURATION=D (default
# 3), BENCH_MAX_WORKERS=N (default nproc), BENCH_WRK_THREADS (default 1), BENCH_WARMUP=S
# (default 1, 0 skips), BENCH_CONTENDERS="netkit netkit-affinity nginx" (netkit-affinity:
# netkit with --cpu-affinity, against plain SO_REUSEPORT), BENCH_TSV=FILE, NETKIT_BIN.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BENCH_ROOT=$(dirname "$here")
. "$here/lib.sh"
export BENCH_NGINX_REUSEPORT=1
. "$here/servers.sh"

if [ "${BENCH_QUICK:-0}" = 1 ]; then rounds=1 duration=2; else rounds=2 duration=3; fi
rounds=${BENCH_ROUNDS:-$rounds}
duration=${BENCH_DURATION:-$duration}
warmup=${BENCH_WARMUP:-1}
maxw=${BENCH_MAX_WORKERS:-$(nproc)}
threads=${BENCH_WRK_THREADS:-1}
contenders=${BENCH_CONTENDERS:-netkit netkit-affinity nginx}
conns=64

command -v wrk >/dev/null 2>&1 || bench_die "wrk is not installed (scripts/install-deps bench)"
command -v curl >/dev/null 2>&1 || bench_die "curl is not installed"
[ "$maxw" -ge 1 ] 2>/dev/null || bench_die "BENCH_MAX_WORKERS must be a positive number"

counts=()
if [ "$maxw" -le 8 ]; then
  for (( w = 1; w <= maxw; w++ )); do counts+=("$w"); done
else
  for (( w = 1; w < maxw; w *= 2 )); do counts+=("$w"); done
  counts+=("$maxw")
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/netkit-bench-workers.XXXXXX")
trap 'bench_cleanup; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
chmod 755 "$tmp"
docroot=$tmp/www
mkdir -p "$docroot"
head -c 1024 /dev/urandom >"$docroot/1k.bin"
chmod 755 "$docroot"
chmod 644 "$docroot/1k.bin"

mkdir -p "$here/results"
tsv=${BENCH_TSV:-$here/results/workers-$(date +%Y%m%d-%H%M%S).tsv}
{
  printf '# netkit bench/workers.sh %s host=%s cpus=%s counts=%s rounds=%s duration=%ss wrk=-t%s-c%s load=%s\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(uname -n)" "$(nproc)" "${counts[*]}" "$rounds" \
    "$duration" "$threads" "$conns" "$(cut -d' ' -f1 /proc/loadavg)"
  printf 'row\tscenario\tcontender\tworkers\tround\treq_s\tcpu_us_per_req\trequests\terrors\tnon_2xx\n'
} >>"$tsv"

bench_log "workers ${counts[*]}, rounds=$rounds duration=${duration}s, wrk -t$threads -c$conns," \
  "contenders: $contenders"
bench_log "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_log "results: $tsv"

scenarios="1k 1k-close"
# run_wrk PID PORT SCENARIO SECONDS OUT: sets WRK_RESULT to "REQ_PER_S CPU_US_PER_REQ REQUESTS
# ERRORS NON2XX" (no subshell: wrk must stay known to the cleanup trap).
run_wrk() {
  local pid=$1 port=$2 s=$3 secs=$4 out=$5 args t0 t1 q reqs e x cpu=-
  args=(-t"$threads" -c"$conns" -d"${secs}s" --latency --timeout 5s)
  [ "$s" = 1k-close ] && args+=(-H 'Connection: close')
  t0=$(bench_cpu_ticks "$pid")
  bench_run_bounded $(( secs + 20 )) wrk "${args[@]}" "http://127.0.0.1:$port/1k.bin" \
    >"$out" 2>&1 || true
  t1=$(bench_cpu_ticks "$pid")
  read -r q _ _ reqs e x <<<"$(bench_parse_wrk "$out")"
  [ "$reqs" -gt 0 ] && cpu=$(awk -v t=$(( t1 - t0 )) -v hz="$BENCH_CLK_TCK" -v n="$reqs" \
    'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
  WRK_RESULT="$q $cpu $reqs $e $x"
}

declare -A med_rps=() med_cpu=()
for w in "${counts[@]}"; do
  declare -A port=() pid=()
  active=()
  for c in $contenders; do
    if bench_server_start "$c" "$docroot" "$tmp" "$w" 1024; then
      if bench_check_file "$SERVER_PORT" /1k.bin 1024; then
        port[$c]=$SERVER_PORT pid[$c]=$SERVER_PID
        active+=("$c")
      else
        bench_log "skipping $c at $w workers: GET /1k.bin did not return 200 with 1024 bytes"
        bench_stop "$SERVER_PID"
      fi
    fi
  done
  [ "${#active[@]}" -gt 0 ] || bench_die "no contender could be started with $w workers"
  for s in $scenarios; do
    declare -A rps=() cpu=()
    if [ "$warmup" != 0 ]; then
      for c in "${active[@]}"; do run_wrk "${pid[$c]}" "${port[$c]}" "$s" "$warmup" "$tmp/warmup.out"; done
    fi
    for (( r = 1; r <= rounds; r++ )); do
      for (( i = 0; i < ${#active[@]}; i++ )); do
        c=${active[(i + r - 1) % ${#active[@]}]}
        run_wrk "${pid[$c]}" "${port[$c]}" "$s" "$duration" "$tmp/wrk-$c-$w-$s-$r.out"
        read -r q cpuv reqs e x <<<"$WRK_RESULT"
        rps[$c]="${rps[$c]:-} $q" cpu[$c]="${cpu[$c]:-} $cpuv"
        printf 'round\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$c" "$w" "$r" "$q" "$cpuv" \
          "$reqs" "$e" "$x" >>"$tsv"
        [ $(( e + x )) -gt 0 ] &&
          bench_log "warning: $c at $w workers, $s: $e socket errors, $x non-2xx answers"
      done
    done
    for c in "${active[@]}"; do
      # shellcheck disable=SC2086 # lists of numbers, split on purpose
      med_rps[$c,$s,$w]=$(bench_median ${rps[$c]}) med_cpu[$c,$s,$w]=$(bench_median ${cpu[$c]})
      printf 'median\t%s\t%s\t%s\t-\t%s\t%s\t-\t-\t-\n' "$s" "$c" "$w" "${med_rps[$c,$s,$w]}" \
        "${med_cpu[$c,$s,$w]}" >>"$tsv"
    done
    unset rps cpu
  done
  for c in "${active[@]}"; do bench_stop "${pid[$c]}"; done
  bench_log "done with $w worker(s)"
  unset port pid
done

title() { case $1 in 1k) echo "1 KiB file, keep-alive" ;; 1k-close) echo "1 KiB file, Connection: close" ;; esac; }
last=${counts[${#counts[@]} - 1]}
for s in $scenarios; do
  printf '\n== %s: %s, wrk -t%s -c%s, %s x %ss per point (medians), %s CPUs\n' "$s" "$(title "$s")" \
    "$threads" "$conns" "$rounds" "$duration" "$(nproc)"
  printf '%-8s' workers
  for c in $contenders; do printf ' %14s %12s' "$c req/s" "CPU us/req"; done
  printf '\n'
  for w in "${counts[@]}"; do
    printf '%-8s' "$w"
    for c in $contenders; do printf ' %14s %12s' "${med_rps[$c,$s,$w]:--}" "${med_cpu[$c,$s,$w]:--}"; done
    printf '\n'
  done
  printf '%-8s' "eff@$last"
  for c in $contenders; do
    e=$(awk -v a="${med_rps[$c,$s,$last]:--}" -v b="${med_rps[$c,$s,1]:--}" -v n="$last" 'BEGIN {
      if (a == "-" || b == "-" || b + 0 == 0) { print "-"; exit }
      printf "%.2f\n", a / (n * b) }')
    printf ' %14s %12s' "$e" ''
    printf 'efficiency\t%s\t%s\t%s\t-\t%s\t-\t-\t-\t-\n' "$s" "$c" "$last" "$e" >>"$tsv"
  done
  printf '\n'
done
printf '\nscaling efficiency: req/s at %s workers / (%s x req/s at 1); results in %s\n' \
  "$last" "$last" "${tsv#"$BENCH_ROOT"/}"
