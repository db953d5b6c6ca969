#!/usr/bin/env bash
# Static-file throughput: netkit, on epoll and on uring (netkit-uring: plain connections on
# completion operations), against nginx, lighttpd and h2o (those installed), all serving
# the same docroot on 127.0.0.1 with the same number of workers, loaded by wrk.
#
# Scenarios (BENCH_SCENARIOS picks some, by name):
#   1k       GET /1k.bin (1 KiB), keep-alive,           wrk -t1 -c64
#   64k      GET /64k.bin (64 KiB), keep-alive,         wrk -t1 -c64
#   1k-close GET /1k.bin with "Connection: close",      wrk -t1 -c64
#   10m      GET /10m.bin (10 MiB), keep-alive,         wrk -t1 -c8
#
# Each scenario runs every contender for R rounds of D seconds, taking turns round by round (the
# order rotates, so no contender always runs first), and reports medians: req/s, MB/s, p99
# latency and the server's CPU time per request, then each netkit contender's ratio to each
# peer, to the best peer by req/s and to the leanest peer by CPU per request. A kernel that
# refuses io_uring drops netkit-uring with a line saying so; the rest run as usual.
# netkit-sendfile and netkit-uring-sendfile (not run by default) are netkit with --sendfile on:
# the default copies file bodies for loopback clients such as wrk here, and these show the
# other way (BENCH_CONTENDERS="netkit netkit-sendfile ..." for the A/B).
#
# With BENCH_TLS=1 every server listens with TLS on one ECDSA P-256 certificate and wrk gets
# https:// URLs (default scenarios then 1k, 1k-close and 10m). wrk runs with bench/wrk_tls.c
# preloaded, which counts its full and resumed handshakes and reports the negotiated version,
# cipher and group; in 1k-close it also stops wrk from resuming sessions, so that every
# request is one full handshake (wrk would otherwise resume about half of them).
#
# With two CPUs or more and one worker, the servers run on CPU 0 and wrk on CPU 1 (taskset), so
# that wrk does not compete with the server it loads and each side's CPU time is its own;
# BENCH_PIN=0 lets the scheduler place them, BENCH_SERVER_CPUS and BENCH_CLIENT_CPUS (taskset
# lists) choose other CPUs.
#
# After the load, each server's system calls per request: `strace -c -f` attached to its workers
# during a BENCH_STRACE_SECONDS wrk run of each scenario in BENCH_SYSCALL_SCENARIOS (default 1k,
# 1k-close and 10m; none with TLS, which bench/tls.sh counts itself), for every contender, so
# each netkit backend has its own line. strace slows every server several times over: only the
# counts per request mean anything. On uring the accepts, receives and sends are operations
# carried by io_uring_enter, not calls of their own: there the count is of kernel entries.
#
# Environment: BENCH_QUICK=1 (R=1, D=2), BENCH_ROUNDS=R, BENCH_DURATION=D, BENCH_WORKERS=N
# (default 1), BENCH_WARMUP=S (default 1, 0 skips), BENCH_CONTENDERS="netkit nginx ...",
# BENCH_SCENARIOS="1k 64k ...", BENCH_TLS=1, BENCH_TSV=FILE (append the results there instead
# of bench/results/http-<stamp>.tsv, or tls-<stamp>.tsv with TLS), NETKIT_BIN
# (default build/netkit), BENCH_PIN, BENCH_SERVER_CPUS, BENCH_CLIENT_CPUS,
# BENCH_SYSCALL_SCENARIOS, BENCH_STRACE_SECONDS (default 3, 2 with BENCH_QUICK=1).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BENCH_ROOT=$(dirname "$here")
. "$here/lib.sh"
. "$here/servers.sh"

if [ "${BENCH_QUICK:-0}" = 1 ]; then rounds=1 duration=2 strace_secs=2; else rounds=3 duration=5 strace_secs=3; fi
strace_secs=${BENCH_STRACE_SECONDS:-$strace_secs}
rounds=${BENCH_ROUNDS:-$rounds}
duration=${BENCH_DURATION:-$duration}
workers=${BENCH_WORKERS:-1}
warmup=${BENCH_WARMUP:-1}
contenders=${BENCH_CONTENDERS:-netkit netkit-uring nginx lighttpd h2o}
if [ "${BENCH_TLS:-0}" = 1 ]; then scenarios="1k 1k-close 10m"; else scenarios="1k 64k 1k-close 10m"; fi
scenarios=${BENCH_SCENARIOS:-$scenarios}
if [ "$BENCH_TLS" = 1 ]; then syscall_scenarios=''; else syscall_scenarios='1k 1k-close 10m'; fi
syscall_scenarios=${BENCH_SYSCALL_SCENARIOS-$syscall_scenarios}
if [ "$(nproc)" -ge 2 ] && [ "$workers" = 1 ]; then pin=1; else pin=0; fi
pin=${BENCH_PIN:-$pin}
server_cpus=${BENCH_SERVER_CPUS:-0}
client_cpus=${BENCH_CLIENT_CPUS:-1}
client=()
if [ "$pin" = 1 ]; then
  command -v taskset >/dev/null 2>&1 || bench_die "BENCH_PIN=1 needs taskset (util-linux)"
  client=(taskset -c "$client_cpus")
fi

command -v wrk >/dev/null 2>&1 || bench_die "wrk is not installed (scripts/install-deps bench)"
command -v curl >/dev/null 2>&1 || bench_die "curl is not installed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/netkit-bench-http.XXXXXX")
trap 'bench_cleanup; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE
# Servers that drop to another user must still reach the docroot.
chmod 755 "$tmp"
[ "$BENCH_TLS" = 1 ] && bench_tls_setup "$tmp"

docroot=$tmp/www
mkdir -p "$docroot"
head -c 1024 /dev/urandom >"$docroot/1k.bin"
head -c 65536 /dev/urandom >"$docroot/64k.bin"
head -c 10485760 /dev/urandom >"$docroot/10m.bin"
chmod 755 "$docroot"
chmod 644 "$docroot"/*.bin

# Start every contender once; idle servers cost nothing while another one is loaded.
declare -A port pid
active=()
for c in $contenders; do
  if bench_server_start "$c" "$docroot" "$tmp" "$workers" 1024; then
    ok=1
    for f in 1k.bin:1024 64k.bin:65536 10m.bin:10485760; do
      if ! bench_check_file "$SERVER_PORT" "/${f%%:*}" "${f#*:}"; then
        bench_log "skipping $c: GET /${f%%:*} did not return 200 with ${f#*:} bytes"
        ok=0
        break
      fi
    done
    if [ "$ok" = 1 ] && [ "$pin" = 1 ]; then
      # Every process and thread of the server (children forked later inherit it).
      for p in $(bench_tree "$SERVER_PID"); do
        taskset -a -c -p "$server_cpus" "$p" >/dev/null || ok=0
      done
      [ "$ok" = 1 ] || bench_log "skipping $c: taskset could not pin it to CPU(s) $server_cpus"
    fi
    if [ "$ok" = 1 ]; then
      port[$c]=$SERVER_PORT pid[$c]=$SERVER_PID
      active+=("$c")
      bench_log "$c ($(bench_server_version "$c")) on 127.0.0.1:$SERVER_PORT, pid $SERVER_PID"
    else
      bench_stop "$SERVER_PID"
    fi
  fi
done
[ "${#active[@]}" -gt 0 ] || bench_die "no contender could be started"

mkdir -p "$here/results"
stamp=$(date +%Y%m%d-%H%M%S)
if [ "$BENCH_TLS" = 1 ]; then tsv=$here/results/tls-$stamp.tsv; else tsv=$here/results/http-$stamp.tsv; fi
tsv=${BENCH_TSV:-$tsv}
{
  printf '# netkit bench/http.sh %s host=%s cpus=%s workers=%s rounds=%s duration=%ss load=%s tls=%s pin=%s\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(uname -n)" "$(nproc)" "$workers" "$rounds" "$duration" \
    "$(cut -d' ' -f1 /proc/loadavg)" "$BENCH_TLS" \
    "$([ "$pin" = 1 ] && echo "server:$server_cpus,client:$client_cpus" || echo off)"
  for c in "${active[@]}"; do printf '# %s: %s\n' "$c" "$(bench_server_version "$c")"; done
  printf 'row\tscenario\tcontender\tround\treq_s\tmb_s\tp99_ms\tcpu_us_per_req\trequests\terrors\tnon_2xx\n'
} >>"$tsv"

# scenario NAME -> "PATH CONNECTIONS EXTRA-HEADER"
scenario_path() { case $1 in 1k|1k-close) echo /1k.bin ;; 64k) echo /64k.bin ;; 10m) echo /10m.bin ;; esac; }
scenario_conns() { case $1 in 10m) echo 8 ;; *) echo 64 ;; esac; }
scenario_title() {
  case $1 in
    1k) echo "1 KiB file, keep-alive" ;;
    64k) echo "64 KiB file, keep-alive" ;;
    1k-close)
      if [ "$BENCH_TLS" = 1 ]; then echo "1 KiB file, Connection: close, a full TLS handshake each"
      else echo "1 KiB file, Connection: close"; fi ;;
    10m) echo "10 MiB file, keep-alive" ;;
  esac
}

# run_wrk CONTENDER SCENARIO SECONDS OUT: one wrk run; sets WRK_RESULT to the parsed figures
# followed by the server's CPU microseconds per request, and with TLS WRK_TLS to the line of
# bench/wrk_tls.c ("full N resumed N version V cipher C group G"). (No subshell: wrk must stay
# known to the cleanup trap.)
run_wrk() {
  local c=$1 s=$2 secs=$3 out=$4 args t0 t1 figures reqs pre=()
  args=(-t1 -c"$(scenario_conns "$s")" -d"${secs}s" --latency --timeout 5s)
  [ "$s" = 1k-close ] && args+=(-H 'Connection: close')
  WRK_TLS=
  if [ "$BENCH_TLS" = 1 ] && [ -n "$BENCH_WRK_TLS" ]; then
    rm -f "$out.tls"
    pre=(env LD_PRELOAD="$BENCH_WRK_TLS" BENCH_TLS_REPORT="$out.tls")
    [ "$s" = 1k-close ] && pre+=(BENCH_TLS_FORGET=1)
  fi
  t0=$(bench_cpu_ticks "${pid[$c]}")
  bench_run_bounded $(( secs + 20 )) "${client[@]}" "${pre[@]}" wrk "${args[@]}" \
    "$BENCH_SCHEME://127.0.0.1:${port[$c]}$(scenario_path "$s")" >"$out" 2>&1 || true
  t1=$(bench_cpu_ticks "${pid[$c]}")
  figures=$(bench_parse_wrk "$out")
  # shellcheck disable=SC2086 # five numbers, split on purpose
  reqs=$(set -- $figures; echo "$4")
  if [ "$reqs" -gt 0 ]; then
    WRK_RESULT="$figures $(awk -v t=$(( t1 - t0 )) -v hz="$BENCH_CLK_TCK" -v n="$reqs" \
      'BEGIN { printf "%.2f", t * 1e6 / hz / n }')"
  else
    WRK_RESULT="$figures -"
  fi
  [ -n "${pre[*]}" ] && WRK_TLS=$(cat "$out.tls" 2>/dev/null || echo "full 0 resumed 0 version - cipher - group -")
  return 0
}

bench_log "workers=$workers rounds=$rounds duration=${duration}s contenders: ${active[*]}"
if [ "$pin" = 1 ]; then
  bench_log "servers on CPU(s) $server_cpus, wrk on CPU(s) $client_cpus"
else
  bench_log "servers and wrk not pinned"
fi
# A busy machine lowers every figure; the load average says how busy this one was.
bench_log "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v n="$(nproc)" '{ exit !($1 > n) }' /proc/loadavg; then
  bench_log "warning: the load average is above the number of CPUs: other work is running, so" \
    "every figure will be low and noisy"
fi
bench_log "results: $tsv"
n=${#active[@]}

for s in $scenarios; do
  [ -n "$(scenario_path "$s")" ] || { bench_log "unknown scenario '$s' (1k 64k 1k-close 10m)"; continue; }
  if [ "$BENCH_TLS" = 1 ] && [ "$s" = 1k-close ] && [ -z "$BENCH_WRK_TLS" ]; then
    bench_log "skipping 1k-close: without bench/wrk_tls.c wrk resumes sessions, so the figures" \
      "would not be full handshakes"
    continue
  fi
  declare -A rps=() mbs=() p99=() cpu=() errs=() non2xx=() hs_full=() hs_resumed=() hs_what=()
  if [ "$warmup" != 0 ]; then
    for c in "${active[@]}"; do run_wrk "$c" "$s" "$warmup" "$tmp/warmup.out"; done
  fi
  for (( r = 1; r <= rounds; r++ )); do
    for (( i = 0; i < n; i++ )); do
      c=${active[(i + r - 1) % n]}
      run_wrk "$c" "$s" "$duration" "$tmp/wrk-$c-$s-$r.out"
      read -r q m p99v reqs e x cpuv <<<"$WRK_RESULT"
      rps[$c]="${rps[$c]:-} $q" mbs[$c]="${mbs[$c]:-} $m" p99[$c]="${p99[$c]:-} $p99v"
      cpu[$c]="${cpu[$c]:-} $cpuv"
      errs[$c]=$(( ${errs[$c]:-0} + e )) non2xx[$c]=$(( ${non2xx[$c]:-0} + x ))
      printf 'round\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$s" "$c" "$r" "$q" "$m" "$p99v" "$cpuv" "$reqs" "$e" "$x" >>"$tsv"
      if [ -n "$WRK_TLS" ]; then
        read -r _ hf _ hr _ tv _ tc _ tg <<<"$WRK_TLS"
        hs_full[$c]=$(( ${hs_full[$c]:-0} + hf )) hs_resumed[$c]=$(( ${hs_resumed[$c]:-0} + hr ))
        [ "$tv" != - ] && hs_what[$c]="$tv $tc $tg"
      fi
    done
  done

  declare -A med_rps=() med_mbs=() med_p99=() med_cpu=()
  printf '\n== %s: %s, wrk -t1 -c%s, %s x %ss, %s worker(s)\n' "$s" "$(scenario_title "$s")" \
    "$(scenario_conns "$s")" "$rounds" "$duration" "$workers"
  printf '%-13s %12s %10s %10s %12s %8s\n' contender 'req/s' 'MB/s' 'p99 ms' 'CPU us/req' errors
  for c in "${active[@]}"; do
    # shellcheck disable=SC2086
    med_rps[$c]=$(bench_median ${rps[$c]}) med_mbs[$c]=$(bench_median ${mbs[$c]})
    # shellcheck disable=SC2086
    med_p99[$c]=$(bench_median ${p99[$c]}) med_cpu[$c]=$(bench_median ${cpu[$c]})
    printf '%-13s %12s %10s %10s %12s %8s\n' "$c" "${med_rps[$c]}" "${med_mbs[$c]}" \
      "${med_p99[$c]}" "${med_cpu[$c]}" $(( ${errs[$c]} + ${non2xx[$c]} ))
    printf 'median\t%s\t%s\t-\t%s\t%s\t%s\t%s\t-\t%s\t%s\n' "$s" "$c" "${med_rps[$c]}" \
      "${med_mbs[$c]}" "${med_p99[$c]}" "${med_cpu[$c]}" "${errs[$c]}" "${non2xx[$c]}" >>"$tsv"
    if [ $(( ${errs[$c]} + ${non2xx[$c]} )) -gt 0 ]; then
      bench_log "warning: $c had ${errs[$c]} socket errors and ${non2xx[$c]} non-2xx answers in $s"
    fi
  done
  # What wrk negotiated, and how many of its handshakes were full (counted by wrk_tls.c over
  # the measured rounds; a keep-alive run makes one per connection).
  if [ "$BENCH_TLS" = 1 ] && [ -n "$BENCH_WRK_TLS" ]; then
    printf '%-10s %-40s %10s %10s\n' 'TLS' 'version cipher group' 'full hs' 'resumed'
    for c in "${active[@]}"; do
      printf '%-10s %-40s %10s %10s\n' "$c" "${hs_what[$c]:--}" "${hs_full[$c]:-0}" \
        "${hs_resumed[$c]:-0}"
      printf 'tls\t%s\t%s\t-\t%s\t%s\t%s\n' "$s" "$c" "${hs_full[$c]:-0}" \
        "${hs_resumed[$c]:-0}" "$(tr ' ' '\t' <<<"${hs_what[$c]:-- - -}")" >>"$tsv"
      if [ "$s" = 1k-close ] && [ "${hs_resumed[$c]:-0}" -gt 0 ]; then
        bench_log "warning: $c resumed ${hs_resumed[$c]} sessions in 1k-close: not all full handshakes"
      fi
    done
  fi

  # Ratios of each netkit contender (netkit, netkit-uring ...) to each peer: above 1 means
  # netkit is ahead for req/s and MB/s; below 1 means netkit is ahead for p99 and CPU per
  # request. The best peer by req/s and the leanest by CPU/req are peers only, never another
  # netkit contender.
  best='' best_cpu=''
  for c in "${active[@]}"; do
    case $c in netkit*) continue ;; esac
    if [ "${med_rps[$c]}" != - ] && { [ -z "$best" ] ||
      awk -v a="${med_rps[$c]}" -v b="${med_rps[$best]}" 'BEGIN { exit !(a > b) }'; }; then
      best=$c
    fi
    if [ "${med_cpu[$c]}" != - ] && { [ -z "$best_cpu" ] ||
      awk -v a="${med_cpu[$c]}" -v b="${med_cpu[$best_cpu]}" 'BEGIN { exit !(a < b) }'; }; then
      best_cpu=$c
    fi
  done
  for k in "${active[@]}"; do
    case $k in netkit*) ;; *) continue ;; esac
    if [ -z "${med_rps[$k]:-}" ] || [ "${med_rps[$k]}" = - ]; then continue; fi
    for c in "${active[@]}"; do
      case $c in netkit*) continue ;; esac
      printf '%-26s req/s x%-6s MB/s x%-6s p99 x%-6s CPU/req x%s\n' "$k / $c" \
        "$(bench_ratio "${med_rps[$k]}" "${med_rps[$c]}")" \
        "$(bench_ratio "${med_mbs[$k]}" "${med_mbs[$c]}")" \
        "$(bench_ratio "${med_p99[$k]}" "${med_p99[$c]}")" \
        "$(bench_ratio "${med_cpu[$k]}" "${med_cpu[$c]}")"
      printf 'ratio\t%s\t%s/%s\t-\t%s\t%s\t%s\t%s\t-\t-\t-\n' "$s" "$k" "$c" \
        "$(bench_ratio "${med_rps[$k]}" "${med_rps[$c]}")" \
        "$(bench_ratio "${med_mbs[$k]}" "${med_mbs[$c]}")" \
        "$(bench_ratio "${med_p99[$k]}" "${med_p99[$c]}")" \
        "$(bench_ratio "${med_cpu[$k]}" "${med_cpu[$c]}")" >>"$tsv"
    done
    if [ -n "$best" ]; then
      printf '%-26s req/s x%-6s (best peer by req/s: %s)\n' "$k / best peer" \
        "$(bench_ratio "${med_rps[$k]}" "${med_rps[$best]}")" "$best"
      printf 'ratio\t%s\t%s/best-req_s:%s\t-\t%s\t%s\t%s\t%s\t-\t-\t-\n' "$s" "$k" "$best" \
        "$(bench_ratio "${med_rps[$k]}" "${med_rps[$best]}")" \
        "$(bench_ratio "${med_mbs[$k]}" "${med_mbs[$best]}")" \
        "$(bench_ratio "${med_p99[$k]}" "${med_p99[$best]}")" \
        "$(bench_ratio "${med_cpu[$k]}" "${med_cpu[$best]}")" >>"$tsv"
    fi
    if [ -n "$best_cpu" ]; then
      printf '%-26s CPU/req x%-6s (leanest peer by CPU/req: %s)\n' "$k / best peer" \
        "$(bench_ratio "${med_cpu[$k]}" "${med_cpu[$best_cpu]}")" "$best_cpu"
      printf 'ratio\t%s\t%s/leanest-cpu:%s\t-\t-\t-\t-\t%s\t-\t-\t-\n' "$s" "$k" "$best_cpu" \
        "$(bench_ratio "${med_cpu[$k]}" "${med_cpu[$best_cpu]}")" >>"$tsv"
    fi
  done
  unset rps mbs p99 cpu errs non2xx med_rps med_mbs med_p99 med_cpu hs_full hs_resumed hs_what
done

# syscalls_of CONTENDER SCENARIO: trace the contender's workers during one wrk run of the
# scenario; print its system calls per request and append them to the results.
syscalls_of() {
  local c=$1 s=$2 dir spid i reqs p args=()
  dir=$tmp/strace-$c-$s
  mkdir -p "$dir"
  for p in $(bench_server_workers "$c" "${pid[$c]}"); do args+=(-p "$p"); done
  bench_start "$dir/strace.err" 1024 strace -c -f -o "$dir/strace.out" "${args[@]}"
  spid=$BENCH_STARTED
  # Load only once strace holds the workers (it says so for each one it attaches).
  for (( i = 0; i < 100; i++ )); do
    grep -q 'attached' "$dir/strace.err" 2>/dev/null && break
    bench_alive "$spid" || break
    sleep 0.05
  done
  sleep 0.2
  run_wrk "$c" "$s" "$strace_secs" "$dir/wrk.out"
  # strace detaches on SIGTERM and writes its summary.
  bench_stop "$spid" 10
  # shellcheck disable=SC2086 # the fourth of the figures is the request count
  reqs=$(set -- $WRK_RESULT; echo "$4")
  if [ "${reqs:-0}" -le 0 ] || [ ! -s "$dir/strace.out" ]; then
    bench_log "no system call counts for $c in $s (wrk or strace failed)"
    return 0
  fi
  # strace -c: "% time seconds usecs/call calls [errors] syscall"; the calls are field 4.
  awk -v c="$c" -v s="$s" -v n="$reqs" -v tsv="$tsv" '
    $1 ~ /^[0-9.]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" {
      calls[$NF] = $4; total += $4; order[++k] = $NF
    }
    END {
      printf "%-13s %8d requests %8.2f calls/req:", c, n, total / n
      shown = 0
      for (i = 1; i <= k; i++) {
        x = order[i]
        printf "syscalls\t%s\t%s\t%d\t%s\t%d\t%.3f\n", s, c, n, x, calls[x], calls[x] / n >> tsv
        if (calls[x] / n >= 0.01 && shown < 8) { printf " %s %.2f", x, calls[x] / n; shown++ }
      }
      printf "syscalls\t%s\t%s\t%d\ttotal\t%d\t%.3f\n", s, c, n, total, total / n >> tsv
      printf "\n"
    }' "$dir/strace.out"
}

if [ -n "$syscall_scenarios" ] && ! command -v strace >/dev/null 2>&1; then
  bench_log "skipping the system call counts: strace is not installed"
  syscall_scenarios=
fi
[ -n "$syscall_scenarios" ] &&
  printf 'row\tscenario\tcontender\trequests\tsyscall\tcalls\tcalls_per_req\n' >>"$tsv"
for s in $syscall_scenarios; do
  [ -n "$(scenario_path "$s")" ] || continue
  printf '\n== system calls per request: %s, wrk -t1 -c%s, %ss under strace -c -f\n' \
    "$(scenario_title "$s")" "$(scenario_conns "$s")" "$strace_secs"
  for c in "${active[@]}"; do syscalls_of "$c" "$s"; done
  printf '(strace slows every server several times over: compare the counts, not the rates)\n'
  case " ${active[*]} " in
    *" netkit-uring "*) printf '(netkit-uring: its I/O is io_uring operations, submitted and reaped by io_uring_enter)\n' ;;
  esac
done

for c in "${active[@]}"; do bench_stop "${pid[$c]}"; done
printf '\nresults written to %s\n' "${tsv#"$BENCH_ROOT"/}"
