#!/usr/bin/env bash
# HTTP/2 side by side: netkit against h2o, nginx and lighttpd (those installed), every one with
# one worker, TLS on one ECDSA P-256 certificate and HTTP/2 chosen by ALPN, loaded by h2load
# (nghttp2-client). One results file, bench/results/h2-<stamp>.tsv. Parts:
#
#   load   1k:  GET /1k.bin,  h2load -t1 -c16 -m32: req/s and server CPU microseconds per request
#          64k: GET /64k.bin, h2load -t1 -c16 -m8:  MiB/s and CPU per request
#          R rounds of D seconds (-D) per contender, in turns that rotate each round; medians.
#          A run counts only when h2load says "Application protocol: h2" and every request
#          finished with a 2xx (no failed, errored or timed-out one); any other run is reported
#          as failed and left out of the medians.
#   idle   memory per idle HTTP/2 connection: bench/idle.sh with BENCH_H2=1 (N connections that
#          each made one request over h2 and stay open; VmRSS growth of the worker / N).
#   syscalls (not run unless asked for) system calls per request of each server during a short
#          1k run under `strace -c -f` (slows the servers several times over: counts only).
#
# Then the targets: 1k req/s >= h2o's, 1k CPU/request <= the leanest peer's, 64k MiB/s >= the
# best peer's, idle bytes per connection <= nginx's.
#
# Environment: BENCH_QUICK=1 (R=1, D=2, N=300), BENCH_ROUNDS=R (3), BENCH_DURATION=D (5),
# BENCH_WARMUP=S (1; 0 skips), BENCH_CONTENDERS="netkit h2o nginx lighttpd",
# BENCH_H2_PARTS="load idle" (add syscalls for the counts), BENCH_H2_SCENARIOS="1k 64k",
# BENCH_H2_IDLE_CONNS=N (500), BENCH_STRACE_SECONDS=S (3), NETKIT_BIN (default build/netkit).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BENCH_ROOT=$(dirname "$here")
export BENCH_TLS=1 BENCH_H2=1
. "$here/lib.sh"
. "$here/servers.sh"

if [ "${BENCH_QUICK:-0}" = 1 ]; then rounds=1 duration=2 idle_conns=300
else rounds=3 duration=5 idle_conns=500; fi
rounds=${BENCH_ROUNDS:-$rounds}
duration=${BENCH_DURATION:-$duration}
warmup=${BENCH_WARMUP:-1}
idle_conns=${BENCH_H2_IDLE_CONNS:-$idle_conns}
strace_secs=${BENCH_STRACE_SECONDS:-3}
contenders=${BENCH_CONTENDERS:-netkit h2o nginx lighttpd}
parts=${BENCH_H2_PARTS:-load idle}
scenarios=${BENCH_H2_SCENARIOS:-1k 64k}

command -v h2load >/dev/null 2>&1 || bench_die "h2load is not installed (scripts/install-deps bench)"
command -v curl >/dev/null 2>&1 || bench_die "curl is not installed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/netkit-bench-h2.XXXXXX")
child=
# The idle part runs as a child script with its own cleanup trap; pass a stop on to it first and
# wait for it alone (the servers of the load part are children too, and bench_cleanup stops them).
stop_child() {
  [ -n "$child" ] || return 0
  kill -TERM "$child" 2>/dev/null
  wait "$child" 2>/dev/null || true
}
trap 'stop_child; bench_cleanup; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE
chmod 755 "$tmp"
bench_tls_setup "$tmp"

docroot=$tmp/www
mkdir -p "$docroot"
head -c 1024 /dev/urandom >"$docroot/1k.bin"
head -c 65536 /dev/urandom >"$docroot/64k.bin"
chmod 755 "$docroot"
chmod 644 "$docroot"/*.bin

mkdir -p "$here/results"
tsv=$here/results/h2-$(date +%Y%m%d-%H%M%S).tsv
{
  printf '# netkit bench/h2.sh %s host=%s cpus=%s rounds=%s duration=%ss load=%s parts=%s\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(uname -n)" "$(nproc)" "$rounds" "$duration" \
    "$(cut -d' ' -f1 /proc/loadavg)" "$parts"
  printf '# h2load: %s\n' "$(h2load --version 2>&1 | head -n 1)"
} >"$tsv"

scenario_path() { case $1 in 1k) echo /1k.bin ;; 64k) echo /64k.bin ;; esac; }
scenario_size() { case $1 in 1k) echo 1024 ;; 64k) echo 65536 ;; esac; }
scenario_streams() { case $1 in 1k) echo 32 ;; 64k) echo 8 ;; esac; }

# The medians that the targets are judged on, per "scenario:contender".
declare -A med_rps=() med_mibs=() med_cpu=() failed_runs=() idle_bytes=()
declare -A port=() pid=()
active=()

# run_h2load CONTENDER SCENARIO SECONDS OUT: one h2load run. Sets H2_RESULT to
# "REQ_S MIB_S CPU_US_PER_REQ DONE" when the run is valid, else H2_RESULT="" and H2_WHY to what
# was wrong with it. (No subshell: h2load must stay known to the cleanup trap.)
run_h2load() {
  local c=$1 s=$2 secs=$3 out=$4 t0 t1 proto rps mibs ndone ok failed errored tmo bad
  H2_RESULT='' H2_WHY=''
  t0=$(bench_cpu_ticks "${pid[$c]}")
  bench_run_bounded $(( secs + 30 )) h2load -t1 -c16 -m"$(scenario_streams "$s")" -D "$secs" \
    "https://127.0.0.1:${port[$c]}$(scenario_path "$s")" >"$out" 2>&1 || true
  t1=$(bench_cpu_ticks "${pid[$c]}")
  read -r proto rps mibs ndone ok failed errored tmo bad <<<"$(bench_parse_h2load "$out")"
  if [ "$rps" = - ]; then H2_WHY="h2load printed no result ($(tail -n 1 "$out"))"
  elif [ "$proto" != h2 ]; then H2_WHY="negotiated '$proto', not h2"
  elif [ "$ndone" -le 0 ]; then H2_WHY="no request completed"
  elif [ $(( failed + errored + tmo )) -gt 0 ]; then
    H2_WHY="$failed failed, $errored errored, $tmo timed out of $ndone"
  elif [ "$bad" -gt 0 ]; then H2_WHY="$bad answers were not 2xx"
  else
    H2_RESULT="$rps $mibs $(awk -v t=$(( t1 - t0 )) -v hz="$BENCH_CLK_TCK" -v n="$ndone" \
      'BEGIN { printf "%.2f", t * 1e6 / hz / n }') $ndone"
  fi
  return 0
}

# best_of KIND SCENARIO: the peer (not netkit) with the highest (KIND=max) or lowest (KIND=min)
# median in the array named by the third argument; empty when none has one.
best_of() {
  local kind=$1 s=$2 c best='' v b
  local -n arr=$3
  for c in "${active[@]}"; do
    [ "$c" = netkit ] && continue
    v=${arr[$s:$c]:--}
    [ "$v" = - ] && continue
    b=${arr[$s:$best]:--}
    if [ -z "$best" ] || awk -v a="$v" -v b="$b" -v k="$kind" \
        'BEGIN { exit !(k == "max" ? a > b : a < b) }'; then
      best=$c
    fi
  done
  printf '%s\n' "$best"
}

load_part() {
  local c ok s r i n q m cpuv reqs
  for c in $contenders; do
    bench_server_start "$c" "$docroot" "$tmp" 1 1024 || continue
    ok=1
    for s in $scenarios; do
      if ! bench_check_file "$SERVER_PORT" "$(scenario_path "$s")" "$(scenario_size "$s")"; then
        bench_log "skipping $c: GET $(scenario_path "$s") over HTTP/2 did not return 200 with" \
          "$(scenario_size "$s") bytes"
        ok=0
        break
      fi
    done
    if [ "$ok" = 1 ]; then
      port[$c]=$SERVER_PORT pid[$c]=$SERVER_PID
      active+=("$c")
      bench_log "$c ($(bench_server_version "$c")) on 127.0.0.1:$SERVER_PORT, pid $SERVER_PID"
      printf '# %s: %s\n' "$c" "$(bench_server_version "$c")" >>"$tsv"
    else
      bench_stop "$SERVER_PID"
    fi
  done
  [ "${#active[@]}" -gt 0 ] || bench_die "no contender could be started"
  n=${#active[@]}
  bench_log "rounds=$rounds duration=${duration}s contenders: ${active[*]}"
  bench_log "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
  if awk -v n="$(nproc)" '{ exit !($1 > n) }' /proc/loadavg; then
    bench_log "warning: the load average is above the number of CPUs: other work is running, so" \
      "every figure will be low and noisy"
  fi
  printf 'row\tscenario\tcontender\tround\treq_s\tmib_s\tcpu_us_per_req\trequests\tfailed\n' >>"$tsv"

  for s in $scenarios; do
    local -A rps=() mibs=() cpu=()
    if [ "$warmup" != 0 ]; then
      for c in "${active[@]}"; do run_h2load "$c" "$s" "$warmup" "$tmp/warmup.out"; done
    fi
    printf '\n== %s: GET %s over h2 (TLS), h2load -t1 -c16 -m%s, %s x %ss, 1 worker\n' "$s" \
      "$(scenario_path "$s")" "$(scenario_streams "$s")" "$rounds" "$duration"
    for (( r = 1; r <= rounds; r++ )); do
      for (( i = 0; i < n; i++ )); do
        c=${active[(i + r - 1) % n]}
        run_h2load "$c" "$s" "$duration" "$tmp/h2load-$c-$s-$r.out"
        if [ -n "$H2_RESULT" ]; then
          read -r q m cpuv reqs <<<"$H2_RESULT"
          rps[$c]="${rps[$c]:-} $q" mibs[$c]="${mibs[$c]:-} $m" cpu[$c]="${cpu[$c]:-} $cpuv"
          printf '  round %s %-9s %10s req/s %9s MiB/s %8s us/req\n' "$r" "$c" "$q" "$m" "$cpuv"
          printf 'round\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t0\n' "$s" "$c" "$r" "$q" "$m" "$cpuv" \
            "$reqs" >>"$tsv"
        else
          failed_runs[$s:$c]=$(( ${failed_runs[$s:$c]:-0} + 1 ))
          printf '  round %s %-9s FAILED: %s\n' "$r" "$c" "$H2_WHY"
          printf 'round\t%s\t%s\t%s\t-\t-\t-\t-\t1\n' "$s" "$c" "$r" >>"$tsv"
          cp "$tmp/h2load-$c-$s-$r.out" "$here/results/h2-failed-$c-$s-$r.out" 2>/dev/null || true
        fi
      done
    done

    printf '%-10s %12s %10s %12s %8s\n' contender req/s MiB/s 'CPU us/req' failed
    for c in "${active[@]}"; do
      # shellcheck disable=SC2086 # lists of numbers, split on purpose
      med_rps[$s:$c]=$(bench_median ${rps[$c]:-}) med_mibs[$s:$c]=$(bench_median ${mibs[$c]:-})
      # shellcheck disable=SC2086
      med_cpu[$s:$c]=$(bench_median ${cpu[$c]:-})
      if [ "${med_rps[$s:$c]}" = - ]; then
        printf '%-10s %12s %10s %12s %8s\n' "$c" FAILED FAILED FAILED "${failed_runs[$s:$c]:-0}/$rounds"
      else
        printf '%-10s %12s %10s %12s %8s\n' "$c" "${med_rps[$s:$c]}" "${med_mibs[$s:$c]}" \
          "${med_cpu[$s:$c]}" "${failed_runs[$s:$c]:-0}/$rounds"
      fi
      printf 'median\t%s\t%s\t-\t%s\t%s\t%s\t-\t%s\n' "$s" "$c" "${med_rps[$s:$c]}" \
        "${med_mibs[$s:$c]}" "${med_cpu[$s:$c]}" "${failed_runs[$s:$c]:-0}" >>"$tsv"
    done
    # Above 1 means netkit is ahead for req/s and MiB/s, below 1 for CPU per request.
    [ -n "${med_rps[$s:netkit]:-}" ] || continue
    for c in "${active[@]}"; do
      [ "$c" = netkit ] && continue
      printf '%-22s req/s x%-6s MiB/s x%-6s CPU/req x%s\n' "netkit / $c" \
        "$(bench_ratio "${med_rps[$s:netkit]}" "${med_rps[$s:$c]}")" \
        "$(bench_ratio "${med_mibs[$s:netkit]}" "${med_mibs[$s:$c]}")" \
        "$(bench_ratio "${med_cpu[$s:netkit]}" "${med_cpu[$s:$c]}")"
      printf 'ratio\t%s\tnetkit/%s\t-\t%s\t%s\t%s\t-\t-\n' "$s" "$c" \
        "$(bench_ratio "${med_rps[$s:netkit]}" "${med_rps[$s:$c]}")" \
        "$(bench_ratio "${med_mibs[$s:netkit]}" "${med_mibs[$s:$c]}")" \
        "$(bench_ratio "${med_cpu[$s:netkit]}" "${med_cpu[$s:$c]}")" >>"$tsv"
    done
    unset rps mibs cpu
  done
  for c in "${active[@]}"; do bench_stop "${pid[$c]}"; done
}

idle_part() {
  local rc=0 c b
  env BENCH_CONTENDERS="$contenders" BENCH_IDLE_CONNS="$idle_conns" BENCH_TSV="$tsv" \
    "$here/idle.sh" &
  child=$!
  wait "$child" || rc=$?
  child=
  [ "$rc" = 0 ] || bench_log "idle.sh failed (exit $rc)"
  # idle.sh appended "result CONTENDER WORKERS BEFORE AFTER OPEN CLOSED BYTES" rows. A server
  # that closed some of the connections did not hold them all: no figure for it.
  while read -r c b; do idle_bytes[$c]=$b; done < <(awk -F'\t' \
    '$1 == "result" { print $2, ($7 > 0 ? "-" : $8) }' "$tsv")
}

# System calls per request: as bench/tls.sh does for HTTP/1.1 over TLS, with h2load.
syscalls_part() {
  local c dir spid i reqs p args
  command -v strace >/dev/null 2>&1 || { bench_log "skipping the system call counts: no strace"; return 0; }
  printf '\n== system calls per request: 1k over h2, h2load -t1 -c16 -m32, %ss under strace -c -f\n' \
    "$strace_secs"
  printf 'row\tcontender\trequests\tsyscall\tcalls\tcalls_per_req\n' >>"$tsv"
  for c in $contenders; do
    dir=$tmp/strace-$c
    mkdir -p "$dir"
    bench_server_start "$c" "$docroot" "$dir" 1 1024 || continue
    if ! bench_check_file "$SERVER_PORT" /1k.bin 1024; then
      bench_log "skipping $c: GET /1k.bin over HTTP/2 did not return 200 with 1024 bytes"
      bench_stop "$SERVER_PID"
      continue
    fi
    args=()
    for p in $(bench_server_workers "$c" "$SERVER_PID"); do args+=(-p "$p"); done
    bench_start "$dir/strace.err" 1024 strace -c -f -o "$dir/strace.out" "${args[@]}"
    spid=$BENCH_STARTED
    for (( i = 0; i < 100; i++ )); do
      grep -q 'attached' "$dir/strace.err" 2>/dev/null && break
      bench_alive "$spid" || break
      sleep 0.05
    done
    sleep 0.2
    bench_run_bounded $(( strace_secs + 30 )) h2load -t1 -c16 -m32 -D "$strace_secs" \
      "https://127.0.0.1:$SERVER_PORT/1k.bin" >"$dir/h2load.out" 2>&1 || true
    bench_stop "$spid" 10
    bench_stop "$SERVER_PID"
    # shellcheck disable=SC2046 # the fourth figure is the completed requests
    reqs=$(set -- $(bench_parse_h2load "$dir/h2load.out"); echo "$4")
    if [ "${reqs:-0}" -le 0 ] || [ ! -s "$dir/strace.out" ]; then
      bench_log "no system call counts for $c (h2load or strace failed)"
      continue
    fi
    awk -v c="$c" -v n="$reqs" -v tsv="$tsv" '
      $1 ~ /^[0-9.]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" {
        calls[$NF] = $4; total += $4; order[++k] = $NF
      }
      END {
        printf "%-10s %9d requests %6.2f calls/req:", c, n, total / n
        shown = 0
        for (i = 1; i <= k; i++) {
          s = order[i]
          printf "h2-syscalls\t%s\t%d\t%s\t%d\t%.3f\n", c, n, s, calls[s], calls[s] / n >> tsv
          if (calls[s] / n >= 0.01 && shown < 8) { printf " %s %.2f", s, calls[s] / n; shown++ }
        }
        printf "h2-syscalls\t%s\t%d\ttotal\t%d\t%.3f\n", c, n, total, total / n >> tsv
        printf "\n"
      }' "$dir/strace.out"
  done
  printf '(strace slows every server several times over: compare the counts, not the rates)\n'
}

for part in $parts; do
  case $part in
    load) load_part ;;
    idle) idle_part ;;
    syscalls) syscalls_part ;;
    *) bench_log "unknown part '$part' (load idle syscalls)" ;;
  esac
done

# target LABEL VERDICT DETAIL: one line of the summary and one row of the results.
target() {
  printf '%-44s %-6s %s\n' "$1" "$2" "$3"
  printf 'target\t%s\t%s\t%s\n' "$1" "$2" "$3" >>"$tsv"
}

# judge SCENARIO ARRAY PEER KIND LABEL: netkit's median against PEER's; KIND ge (netkit must be
# at least as high) or le (at most as high). A failed run of netkit is never a pass.
judge() {
  local s=$1 peer=$3 kind=$4 label=$5 a b r
  local -n vals=$2
  a=${vals[$s:netkit]:--} b=${vals[$s:$peer]:--}
  if [ -z "$peer" ]; then target "$label" '-' "no peer measured"; return; fi
  if [ "${failed_runs[$s:netkit]:-0}" -gt 0 ]; then
    target "$label" FAILED "netkit had ${failed_runs[$s:netkit]} failed run(s)"; return
  fi
  if [ "$a" = - ] || [ "$b" = - ]; then target "$label" '-' "not measured"; return; fi
  r=$(bench_ratio "$a" "$b")
  if awk -v a="$a" -v b="$b" -v k="$kind" 'BEGIN { exit !(k == "ge" ? a >= b : a <= b) }'; then
    target "$label" met "netkit $a vs $peer $b (x$r)"
  else
    target "$label" MISSED "netkit $a vs $peer $b (x$r)"
  fi
}

printf '\n== targets\n'
printf 'row\ttarget\tverdict\tdetail\n' >>"$tsv"
case " $parts " in
  *" load "*)
    for s in $scenarios; do
      case $s in
        1k)
          judge 1k med_rps h2o ge "1k: req/s >= h2o's"
          judge 1k med_cpu "$(best_of min 1k med_cpu)" le "1k: CPU/request <= the leanest peer's" ;;
        64k)
          judge 64k med_mibs "$(best_of max 64k med_mibs)" ge "64k: MiB/s >= the best peer's" ;;
      esac
    done ;;
esac
case " $parts " in
  *" idle "*)
    if [ -n "${idle_bytes[netkit]:-}" ] && [ -n "${idle_bytes[nginx]:-}" ] &&
      [ "${idle_bytes[netkit]}" != - ] && [ "${idle_bytes[nginx]}" != - ]; then
      if [ "${idle_bytes[netkit]}" -le "${idle_bytes[nginx]}" ]; then v=met; else v=MISSED; fi
      target "idle: bytes/connection <= nginx's" "$v" "netkit ${idle_bytes[netkit]} vs nginx \
${idle_bytes[nginx]} (x$(bench_ratio "${idle_bytes[netkit]}" "${idle_bytes[nginx]}"))"
    else
      target "idle: bytes/connection <= nginx's" '-' "not measured (or connections were closed)"
    fi ;;
esac
printf '\nresults written to %s\n' "${tsv#"$BENCH_ROOT"/}"
