#!/usr/bin/env bash
# TCP echo: `netkit echo serve` on each of its backends (epoll, uring, poll, select), the
# operations example (examples/echo_ops: completion-based nk_op, on uring and on epoll), against
# small echo servers written on libev, libevent and libuv, and a minimal raw-epoll server that is
# the reference (bench/peers/). All are single-threaded, read at most 64 KiB at once and set
# TCP_NODELAY on accepted sockets. The load is `netkit bench echo` (ping-pong: each connection
# sends a message, waits for all of it to come back, checks it, sends the next).
#
# Scenarios: 1, 64 and 1,000 connections, each with 64 B and 4 KiB messages. Each scenario runs
# every contender for R rounds of D seconds, taking turns round by round (the order rotates),
# and reports medians: messages/s, p99 round-trip latency, and the server's CPU time (utime +
# stime from /proc/PID/stat) per message, then each contender's ratio to raw epoll.
#
# Environment: BENCH_QUICK=1 (R=1, D=1), BENCH_ROUNDS=R (default 3), BENCH_DURATION=D (default
# 1.5), BENCH_ECHO_CONNS="1 64 1000", BENCH_ECHO_SIZES="64 4096",
# BENCH_ECHO_CONTENDERS="raw-epoll libev libevent libuv netkit-epoll netkit-uring netkit-poll
# netkit-select netkit-ops-uring netkit-ops-epoll",
# NETKIT_BIN (default build/netkit).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BENCH_ROOT=$(dirname "$here")
. "$here/lib.sh"

if [ "${BENCH_QUICK:-0}" = 1 ]; then rounds=1 duration=1; else rounds=3 duration=1.5; fi
rounds=${BENCH_ROUNDS:-$rounds}
duration=${BENCH_DURATION:-$duration}
conns_list=${BENCH_ECHO_CONNS:-1 64 1000}
sizes=${BENCH_ECHO_SIZES:-64 4096}
contenders=${BENCH_ECHO_CONTENDERS:-raw-epoll libev libevent libuv netkit-epoll netkit-uring netkit-poll netkit-select netkit-ops-uring netkit-ops-epoll}
ref=raw-epoll
# select(2) watches descriptors below FD_SETSIZE only. Besides the connections netkit holds
# stdin/out/err, the listener and its signal pipe; this margin covers those.
fd_setsize=1024 select_margin=16

bench_need_bench_echo
command -v make >/dev/null 2>&1 || bench_die "make is not installed (scripts/install-deps)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/netkit-bench-echo.XXXXXX")
trap 'bench_cleanup; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# ---- the peers: install their libraries when missing, then build them -----------------------

peer_header() {
  case $1 in
    libev) echo /usr/include/ev.h ;;
    libevent) echo /usr/include/event2/event.h ;;
    libuv) echo /usr/include/uv.h ;;
  esac
}
peer_source() {
  case $1 in
    raw-epoll) echo echo_epoll ;;
    libev|libevent|libuv) echo "echo_$1" ;;
  esac
}

need_install=0
for c in $contenders; do
  h=$(peer_header "$c")
  [ -n "$h" ] && [ ! -e "$h" ] && need_install=1
done
if [ "$need_install" = 1 ]; then
  # install-deps bench is a no-op for what is there; as non-root it prints the command to run.
  "$BENCH_ROOT/scripts/install-deps" bench ||
    bench_log "warning: could not install the peers' libraries; those peers are skipped"
fi

declare -A cmd
for c in $contenders; do
  case $c in
    netkit-epoll|netkit-uring|netkit-poll|netkit-select)
      cmd[$c]="$NETKIT_BIN echo serve 127.0.0.1:0 --backend ${c#netkit-}" ;;
    netkit-ops-uring|netkit-ops-epoll)
      # Built with netkit, beside it: examples/echo_ops HOST:PORT BACKEND.
      ops_bin=$(dirname "$NETKIT_BIN")/examples/echo_ops
      if [ ! -x "$ops_bin" ]; then
        bench_log "skipping $c: $ops_bin is not built"
        continue
      fi
      cmd[$c]="$ops_bin 127.0.0.1:0 ${c#netkit-ops-}" ;;
    raw-epoll|libev|libevent|libuv)
      h=$(peer_header "$c") src=$(peer_source "$c")
      if [ -n "$h" ] && [ ! -e "$h" ]; then
        bench_log "skipping $c: $h is missing (scripts/install-deps bench)"
        continue
      fi
      if ! make -s -C "$here/peers" BUILD="$tmp/peers" "$tmp/peers/$src" >"$tmp/build-$c.log" 2>&1; then
        bench_log "skipping $c: it did not build:"
        sed 's/^/  /' "$tmp/build-$c.log" >&2
        continue
      fi
      cmd[$c]="$tmp/peers/$src 0" ;;
    *) bench_log "unknown contender '$c'" ;;
  esac
done

# ---- start every contender once; an idle server costs nothing while another is loaded ------

# echo_wait_listening PID LOG: wait (bounded) for "listening on tcp://HOST:PORT"; print PORT.
echo_wait_listening() {
  local pid=$1 log=$2 i line
  for (( i = 0; i < 200; i++ )); do
    line=$(grep -m1 -o 'listening on tcp://[^ ]*' "$log" 2>/dev/null) || line=
    if [ -n "$line" ]; then
      printf '%s\n' "${line##*:}"
      return 0
    fi
    bench_alive "$pid" || return 1
    sleep 0.05
  done
  return 1
}

# echo_cpu_ticks PID: set ECHO_TICKS to utime + stime of PID (fields 14 and 15 of
# /proc/PID/stat), or to "-" when PID is gone or a zombie. Every server here is one single-threaded process, so no tree walk is
# needed; bash builtins only, so that measuring adds no forks between runs.
echo_cpu_ticks() {
  local line rest f
  ECHO_TICKS=-
  { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 0
  rest=${line##*) }
  # rest starts at field 3 (the state), so utime (14) and stime (15) are f[11] and f[12].
  read -r -a f <<<"$rest"
  case ${f[0]} in Z|X) return 0 ;; esac
  ECHO_TICKS=$(( f[11] + f[12] ))
}

declare -A port pid
active=()
for c in $contenders; do
  [ -n "${cmd[$c]:-}" ] || continue
  # shellcheck disable=SC2086 # the command line is split on purpose
  bench_start "$tmp/$c.log" 4096 ${cmd[$c]}
  if p=$(echo_wait_listening "$BENCH_STARTED" "$tmp/$c.log"); then
    port[$c]=$p pid[$c]=$BENCH_STARTED
    active+=("$c")
  else
    bench_log "skipping $c: it did not start; its log says:"
    sed 's/^/  /' "$tmp/$c.log" >&2
    bench_stop "$BENCH_STARTED"
  fi
done
[ "${#active[@]}" -gt 0 ] || bench_die "no contender could be started"
[ -n "${port[$ref]:-}" ] || bench_log "warning: the reference ($ref) is not running; no ratios"

# The client holds one descriptor per connection.
ulimit -n 4096 2>/dev/null || true

mkdir -p "$here/results"
tsv=$here/results/echo-$(date +%Y%m%d-%H%M%S).tsv
{
  printf '# netkit bench/echo.sh %s host=%s cpus=%s rounds=%s duration=%ss load=%s\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(uname -n)" "$(nproc)" "$rounds" "$duration" \
    "$(cut -d' ' -f1 /proc/loadavg)"
  printf '# load generator: netkit bench echo --backend epoll, on the same machine as the servers\n'
  printf 'row\tscenario\tconns\tsize\tcontender\tround\tmsgs_s\tp99_us\tcpu_us_per_msg\tmessages\tfailed\n'
} >"$tsv"

bench_log "rounds=$rounds duration=${duration}s contenders: ${active[*]}"
bench_log "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
bench_log "the load generator (netkit bench echo) shares the CPUs with the server under test"
bench_log "results: $tsv"

# run_one CONTENDER CONNS SIZE OUT: one client run; sets RUN_RESULT to
# "MSGS_PER_S P99_US CPU_US_PER_MSG MESSAGES FAILED" ("-" for what is missing).
run_one() {
  local c=$1 n=$2 size=$3 out=$4 t0 t1 json rate=- p99=- msgs=0 cpu=-
  RUN_RESULT="- - - 0 1"
  echo_cpu_ticks "${pid[$c]}"
  t0=$ECHO_TICKS
  if [ "$t0" = - ]; then
    bench_log "warning: $c is no longer running"
    return
  fi
  if ! bench_run_bounded "$limit" "$NETKIT_BIN" bench echo "127.0.0.1:${port[$c]}" \
      --conns "$n" --size "$size" --duration "$duration" --backend epoll --json \
      >"$out" 2>"$out.err"; then
    bench_log "warning: $c, $n conns, $size B: the client failed: $(head -n 1 "$out.err")"
    return
  fi
  echo_cpu_ticks "${pid[$c]}"
  t1=$ECHO_TICKS
  json=$(<"$out")
  [[ $json =~ \"messages_per_s\":([0-9.]+) ]] && rate=${BASH_REMATCH[1]}
  [[ $json =~ \"p99\":([0-9.]+) ]] && p99=${BASH_REMATCH[1]}
  [[ $json =~ \"messages\":([0-9]+) ]] && msgs=${BASH_REMATCH[1]}
  if [ "$msgs" -gt 0 ] && [ "$t1" != - ]; then
    # Microseconds with three decimals, in integer arithmetic (no fork for awk).
    local ns=$(( (t1 - t0) * 1000000000 / BENCH_CLK_TCK / msgs ))
    printf -v cpu '%d.%03d' $(( ns / 1000 )) $(( ns % 1000 ))
  fi
  RUN_RESULT="$rate $p99 $cpu $msgs 0"
}
# The client's time limit: the run, the connection phase and a margin.
limit=$(awk -v d="$duration" 'BEGIN { printf "%d", d + 30 }')

size_label() { if [ "$1" -ge 1024 ] && [ $(( $1 % 1024 )) = 0 ]; then echo "$(( $1 / 1024 )) KiB"; else echo "$1 B"; fi; }

declare -A summary_rate summary_cpu
scen_names=()
for n in $conns_list; do
  for size in $sizes; do
    s="c${n}-s${size}"
    scen_names+=("$s")
    runners=()
    for c in "${active[@]}"; do
      if [ "$c" = netkit-select ] && [ $(( n + select_margin )) -gt "$fd_setsize" ]; then
        bench_log "note: netkit-select skipped at $n connections (over FD_SETSIZE $fd_setsize)"
        continue
      fi
      runners+=("$c")
    done
    declare -A rates=() p99s=() cpus=() fails=()
    k=${#runners[@]}
    for (( r = 1; r <= rounds; r++ )); do
      for (( i = 0; i < k; i++ )); do
        c=${runners[(i + r - 1) % k]}
        run_one "$c" "$n" "$size" "$tmp/run-$c-$s-$r.json"
        read -r q p cpuv m f <<<"$RUN_RESULT"
        rates[$c]="${rates[$c]:-} $q" p99s[$c]="${p99s[$c]:-} $p" cpus[$c]="${cpus[$c]:-} $cpuv"
        fails[$c]=$(( ${fails[$c]:-0} + f ))
        printf 'round\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
          "$s" "$n" "$size" "$c" "$r" "$q" "$p" "$cpuv" "$m" "$f" >>"$tsv"
      done
    done

    declare -A mr=() mp=() mc=()
    for c in "${runners[@]}"; do
      # shellcheck disable=SC2086 # lists of numbers, split on purpose
      mr[$c]=$(bench_median ${rates[$c]}) mp[$c]=$(bench_median ${p99s[$c]})
      # shellcheck disable=SC2086
      mc[$c]=$(bench_median ${cpus[$c]})
    done
    printf '\n== %s connection(s), %s messages: %s x %ss (median)\n' "$n" "$(size_label "$size")" \
      "$rounds" "$duration"
    printf '%-14s %11s %10s %12s %14s %14s %6s\n' contender 'msgs/s' 'p99 us' 'CPU us/msg' \
      "msgs/s vs ref" "CPU/msg vs ref" fails
    for c in "${runners[@]}"; do
      rr=- rc=- rp=-
      if [ -n "${mr[$ref]:-}" ]; then
        rr=$(bench_ratio "${mr[$c]}" "${mr[$ref]}") rc=$(bench_ratio "${mc[$c]}" "${mc[$ref]}")
        rp=$(bench_ratio "${mp[$c]}" "${mp[$ref]}")
      fi
      summary_rate[$s,$c]=$rr summary_cpu[$s,$c]=$rc
      printf '%-14s %11s %10s %12s %14s %14s %6s\n' "$c" "${mr[$c]}" "${mp[$c]}" "${mc[$c]}" \
        "x$rr" "x$rc" "${fails[$c]}"
      printf 'median\t%s\t%s\t%s\t%s\t-\t%s\t%s\t%s\t-\t%s\n' "$s" "$n" "$size" "$c" \
        "${mr[$c]}" "${mp[$c]}" "${mc[$c]}" "${fails[$c]}" >>"$tsv"
      if [ "$c" != "$ref" ] && [ -n "${mr[$ref]:-}" ]; then
        printf 'ratio\t%s\t%s\t%s\t%s/%s\t-\t%s\t%s\t%s\t-\t-\n' "$s" "$n" "$size" "$c" "$ref" \
          "$rr" "$rp" "$rc" >>"$tsv"
      fi
    done
    unset rates p99s cpus fails mr mp mc
  done
done

# One line per contender: messages/s relative to raw epoll in every scenario.
if [ -n "${port[$ref]:-}" ]; then
  printf '\n== messages/s relative to %s (above 1: faster; - not run)\n' "$ref"
  printf '%-14s' contender
  for s in "${scen_names[@]}"; do printf ' %11s' "$s"; done
  printf '\n'
  for c in "${active[@]}"; do
    printf '%-14s' "$c"
    for s in "${scen_names[@]}"; do printf ' %11s' "${summary_rate[$s,$c]:--}"; done
    printf '\n'
  done
  printf '\n== server CPU per message relative to %s (below 1: leaner)\n' "$ref"
  printf '%-14s' contender
  for s in "${scen_names[@]}"; do printf ' %11s' "$s"; done
  printf '\n'
  for c in "${active[@]}"; do
    printf '%-14s' "$c"
    for s in "${scen_names[@]}"; do printf ' %11s' "${summary_cpu[$s,$c]:--}"; done
    printf '\n'
  done
  printf '(cN-sS: N connections, S-byte messages)\n'
fi
printf '\nnote: the load generator runs on the same %s CPU(s) as the server; on a 2-core machine\n' "$(nproc)"
printf 'it takes one core, so messages/s of fast servers is capped by the client. CPU us/msg has\n'
printf 'no such ceiling (it includes accepting and closing the connections of each run).\n'

for c in "${active[@]}"; do bench_stop "${pid[$c]}"; done
printf '\nresults written to %s\n' "${tsv#"$BENCH_ROOT"/}"
