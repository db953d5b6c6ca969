#!/usr/bin/env bash
# select / poll / epoll / uring as the number of watched descriptors grows, most of them idle.
#
# For each backend B and each connection count N, a fresh `netkit echo serve 127.0.0.1:0
# --backend B` gets N connections: N-8 idle ones held open by bench/idle_holder.py, and 8 active
# ones driven by `netkit bench echo --conns 8` (64-byte ping-pong) for D seconds. The active load
# is the same every time; only the number of descriptors the server watches changes. select(2)
# and poll(2) hand the kernel the whole set on every wake-up and scan it again afterwards, so
# their cost per wake-up grows with N; epoll keeps the set in the kernel and reports only what is
# ready, and so does uring (a poll request per descriptor stays armed in the kernel; only those
# delivered are armed again). That is the curve this draws.
#
# N: 10 100 1000 3000 10000 (select stops at 1000: it cannot watch descriptors past FD_SETSIZE).
# Writes bench/results/backends-<timestamp>.csv (backend,conns,msgs_per_s,p99_us) and an SVG
# plot of it (bench/plot_backends.py), copied to bench/results/backends-latest.svg.
#
# Environment: BENCH_QUICK=1 (N in 10 1000 3000, 1 s runs), BENCH_DURATION=D (default 3),
# BENCH_BACKENDS_CONNS="10 100 ...", BENCH_BACKENDS="select poll epoll uring",
# NETKIT_BIN (default build/netkit).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BENCH_ROOT=$(dirname "$here")
. "$here/lib.sh"

if [ "${BENCH_QUICK:-0}" = 1 ]; then conns_list="10 1000 3000" duration=1
else conns_list="10 100 1000 3000 10000" duration=3; fi
conns_list=${BENCH_BACKENDS_CONNS:-$conns_list}
duration=${BENCH_DURATION:-$duration}
backends=${BENCH_BACKENDS:-select poll epoll uring}
active=8 size=64
# select(2) watches descriptors below FD_SETSIZE only. Besides the connections the server holds
# stdin/out/err, the listener and its signal pipe; the same margin as echo.sh covers those.
fd_setsize=1024 select_margin=16

bench_need_bench_echo
command -v python3 >/dev/null 2>&1 || bench_die "python3 is not installed"
for n in $conns_list; do
  case $n in ''|*[!0-9]*) bench_die "connection count '$n' is not a number" ;; esac
  [ "$n" -ge "$active" ] || bench_die "connection count $n is below the $active active ones"
  [ "$n" -le 19000 ] || bench_die "connection count $n is over 19000 (descriptor limits)"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/netkit-bench-backends.XXXXXX")
trap 'bench_cleanup; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

mkdir -p "$here/results"
stamp=$(date +%Y%m%d-%H%M%S)
csv=$here/results/backends-$stamp.csv svg=$here/results/backends-$stamp.svg
printf 'backend,conns,msgs_per_s,p99_us\n' >"$csv"

bench_log "backends: $backends; connections: $conns_list ($active active, the rest idle);" \
  "${duration}s per run"
bench_log "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"

# wait_line PID FILE REGEX SECONDS: wait (bounded) until FILE has a line matching REGEX; print
# the first match. Fails when PID dies first or time runs out.
wait_line() {
  local pid=$1 file=$2 re=$3 limit=$4 i line
  for (( i = 0; i < limit * 20; i++ )); do
    line=$(grep -m1 -oE "$re" "$file" 2>/dev/null) || line=
    if [ -n "$line" ]; then
      printf '%s\n' "$line"
      return 0
    fi
    bench_alive "$pid" || return 1
    sleep 0.05
  done
  return 1
}

# run_point BACKEND N: one measurement; sets POINT to "MSGS_PER_S P99_US" ("- -" on failure).
run_point() {
  local b=$1 n=$2 idle=$(( $2 - active )) log=$tmp/$1-$2 spid hpid port line json
  local rate=- p99=-
  POINT="- -"
  # The server holds every connection plus a few descriptors of its own.
  bench_start "$log.server" $(( n + 64 )) "$NETKIT_BIN" echo serve 127.0.0.1:0 --backend "$b"
  spid=$BENCH_STARTED
  if ! line=$(wait_line "$spid" "$log.server" 'listening on tcp://[^ ]*' 10); then
    bench_log "warning: $b: the server did not start: $(head -n 1 "$log.server")"
    bench_stop "$spid"
    return
  fi
  port=${line##*:}

  hpid=
  if [ "$idle" -gt 0 ]; then
    # The holder's stdin is a FIFO it holds both ends of: it never reads end of file, so it
    # goes on SIGTERM from bench_stop, or by itself when this script dies without running its
    # traps (--watch-parent), or after --hold seconds at the latest.
    [ -p "$tmp/hold" ] || mkfifo "$tmp/hold"
    python3 "$here/idle_holder.py" --port "$port" --conns "$idle" --deadline 60 --hold 300 \
      --watch-parent <>"$tmp/hold" >"$log.idle" 2>&1 &
    hpid=$!
    bench_remember "$hpid"
    if ! wait_line "$hpid" "$log.idle" '^ready [0-9]+' 70 >/dev/null; then
      bench_log "warning: $b, $n conns: the idle connections did not open: $(tail -n 1 "$log.idle")"
      bench_stop "$spid"; bench_stop "$hpid"
      return
    fi
  fi

  if bench_run_bounded $(( ${duration%.*} + 30 )) "$NETKIT_BIN" bench echo "127.0.0.1:$port" \
      --conns "$active" --size "$size" --duration "$duration" --backend epoll --json \
      >"$log.json" 2>"$log.err"; then
    json=$(<"$log.json")
    [[ $json =~ \"messages_per_s\":([0-9.]+) ]] && rate=${BASH_REMATCH[1]}
    [[ $json =~ \"p99\":([0-9.]+) ]] && p99=${BASH_REMATCH[1]}
    POINT="$rate $p99"
  else
    bench_log "warning: $b, $n conns: the client failed: $(head -n 1 "$log.err")"
  fi

  # The server goes first: it then closes the idle connections itself, so the TIME_WAIT state
  # stays on its side instead of tying up the client's ephemeral ports across runs.
  bench_stop "$spid"
  if [ -n "$hpid" ]; then
    bench_stop "$hpid"
    # After the server is gone every idle connection must read as closed; anything else means
    # the holder was not holding what it said.
    line=$(grep -m1 -oE '^held [0-9]+ closed_by_server [0-9]+' "$log.idle" || true)
    set -f
    # shellcheck disable=SC2086 # "held N closed_by_server K", split on purpose
    set -- $line
    set +f
    if [ "$#" != 4 ] || [ "$2" != "$idle" ] || [ "$4" != "$idle" ]; then
      bench_log "note: $b, $n conns: the idle holder reports '${line:-nothing}' (expected $idle)"
    fi
  fi
}

printf '\n== echo with %s active connections (%s B ping-pong), the rest idle: %ss per point\n' \
  "$active" "$size" "$duration"
printf '%-8s %7s %12s %10s\n' backend conns 'msgs/s' 'p99 us'
for b in $backends; do
  for n in $conns_list; do
    if [ "$b" = select ] && [ $(( n + select_margin )) -gt "$fd_setsize" ]; then
      printf '%-8s %7s %12s %10s   (over FD_SETSIZE %s: not run)\n' "$b" "$n" - - "$fd_setsize"
      continue
    fi
    run_point "$b" "$n"
    read -r rate p99 <<<"$POINT"
    printf '%-8s %7s %12s %10s\n' "$b" "$n" "$rate" "$p99"
    [ "$rate" = - ] || printf '%s,%s,%s,%s\n' "$b" "$n" "$rate" "$p99" >>"$csv"
  done
done

if python3 "$here/plot_backends.py" "$csv" "$svg"; then
  cp "$svg" "$here/results/backends-latest.svg"
  printf '\nplot: %s (also bench/results/backends-latest.svg)\n' "${svg#"$BENCH_ROOT"/}"
else
  bench_log "warning: the plot could not be drawn"
fi
printf 'results written to %s\n' "${csv#"$BENCH_ROOT"/}"
printf 'note: the load generator shares the %s CPU(s) with the server; compare the shape of\n' "$(nproc)"
printf 'the curves (how each backend falls off as idle descriptors grow), not absolute figures.\n'
