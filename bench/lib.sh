# Shared helpers for the benchmark scripts in bench/. Source it from bash:
#   . "$(dirname "$0")/lib.sh"
#
# Every process started through bench_start is remembered and stopped by bench_cleanup, which the
# scripts run from an EXIT trap, so an error or Ctrl-C never leaves a server behind. Processes are
# only ever signalled by PID, and a PID is only signalled while its start time still matches the
# one recorded when we found it (a recycled PID is left alone).

# The kernel's clock tick, the unit of utime/stime in /proc/PID/stat.
BENCH_CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# "pid:starttime" of every process we started (and descendants found when stopping it).
BENCH_PIDS=()

bench_log() { printf '%s\n' "bench: $*" >&2; }
bench_die() { printf '%s\n' "bench: error: $*" >&2; exit 1; }

# The netkit under test: NETKIT_BIN (default build/netkit), a relative path taken from the top
# of the checkout (where make runs).
BENCH_ROOT=${BENCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
NETKIT_BIN=${NETKIT_BIN:-build/netkit}
case $NETKIT_BIN in /*) ;; *) NETKIT_BIN=$BENCH_ROOT/$NETKIT_BIN ;; esac

# Stop with a clear message unless NETKIT_BIN can run `netkit bench echo` (the echo load).
bench_need_bench_echo() {
  [ -x "$NETKIT_BIN" ] || bench_die "no netkit executable at $NETKIT_BIN (build it, or set NETKIT_BIN)"
  "$NETKIT_BIN" bench echo --help >/dev/null 2>&1 ||
    bench_die "$NETKIT_BIN has no 'bench echo' command (rebuild it)"
}

# bench_free_port: print a TCP port on 127.0.0.1 that was free a moment ago. The socket is closed
# before the port is used, so a race is possible but unlikely; servers that can take port 0 and
# report the real port (netkit) do not need this.
bench_free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# bench_stat_field PID N: field N (1-based, as in proc(5)) of /proc/PID/stat. The command name in
# field 2 may hold spaces or parentheses, so we cut after its last ')'.
bench_stat_field() {
  local line rest n=$(( $2 - 2 ))
  [ "$n" -ge 1 ] || return 1
  line=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  rest=${line##*) }
  # rest starts at field 3; every field from there on is a plain word.
  set -f
  # shellcheck disable=SC2086 # splitting into fields is the point
  set -- $rest
  set +f
  [ "$#" -ge "$n" ] || return 1
  shift $(( n - 1 ))
  printf '%s\n' "$1"
}

# bench_alive PID: true while the process exists and is not a zombie.
bench_alive() {
  local state
  state=$(bench_stat_field "$1" 3) || return 1
  [ "$state" != Z ] && [ "$state" != X ]
}

# bench_tree PID: print PID and every live descendant, one per line (parents before children).
# One pass over /proc builds the parent map; awk then walks it breadth-first.
bench_tree() {
  # cat keeps going when a process vanishes between the glob and the read (awk would not), but
  # then fails; that is expected, and must not fail the pipeline under pipefail.
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v root="$1" '
    {
      pid = $1
      rest = $0; sub(/^.*\) /, "", rest)
      split(rest, f, " ")
      # f[1] is the state (field 3), f[2] the parent (field 4).
      if (f[1] == "Z") next
      kids[f[2]] = kids[f[2]] " " pid
      seen[pid] = 1
    }
    END {
      if (!(root in seen)) exit
      queue[1] = root; n = 1
      for (i = 1; i <= n; i++) {
        print queue[i]
        c = split(kids[queue[i]], k, " ")
        for (j = 1; j <= c; j++) queue[++n] = k[j]
      }
    }'
}

# bench_workers PID: the processes that serve connections. A server whose root process has
# children (nginx's master, a multi-worker netkit or lighttpd) is served by those children;
# a single-process server (h2o's threads, a one-worker netkit) by the root itself.
bench_workers() {
  local kids
  kids=$(bench_tree "$1" | tail -n +2)
  if [ -n "$kids" ]; then printf '%s\n' "$kids"; else printf '%s\n' "$1"; fi
}

# bench_cpu_ticks PID: utime+stime, in clock ticks, summed over PID and all its live descendants.
# Threads are included: a process's stat line already sums its threads.
bench_cpu_ticks() {
  local pids
  pids=$(bench_tree "$1" | tr '\n' ' ')
  [ -n "$pids" ] || { echo 0; return; }
  # shellcheck disable=SC2086
  (cd /proc && for p in $pids; do cat "$p/stat" 2>/dev/null || true; done) | awk '
    { rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " "); t += f[12] + f[13] }
    END { printf "%d\n", t }'
}

# bench_ticks_to_us TICKS: microseconds.
bench_ticks_to_us() { echo $(( $1 * 1000000 / BENCH_CLK_TCK )); }

# bench_rss_kb PID...: sum of VmRSS (kB) over the given processes.
bench_rss_kb() {
  local p total=0 kb
  for p in "$@"; do
    kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || kb=0
    total=$(( total + ${kb:-0} ))
  done
  echo "$total"
}

bench_remember() {
  local start
  start=$(bench_stat_field "$1" 22) || return 0
  BENCH_PIDS+=("$1:$start")
}

# bench_start LOG NOFILE CMD...: run CMD in the background with stdout+stderr in LOG and the
# descriptor limit raised to NOFILE (capped at what we may raise it to), remember it, and set
# BENCH_STARTED to its PID.
# CMD runs in a session of its own: some servers signal their whole process group when they stop
# (lighttpd's master with server.max-worker does kill(0, SIGTERM)), which must not reach this
# script. setsid(1) forks only when its caller leads a process group; a background job of a
# script without job control never does, so the exec chain keeps the PID the server's own.
bench_start() {
  local log=$1 nofile=$2
  shift 2
  bash -c 'ulimit -n "$1" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; shift
    exec setsid "$@"' _ "$nofile" "$@" </dev/null >"$log" 2>&1 &
  BENCH_STARTED=$!
  bench_remember "$BENCH_STARTED"
}

# bench_port_open PORT: true when 127.0.0.1:PORT accepts a connection.
bench_port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# bench_wait_port PID PORT [SECONDS]: wait until PORT accepts connections, giving up after
# SECONDS (default 10) or as soon as PID dies.
bench_wait_port() {
  local pid=$1 port=$2 limit=${3:-10} i
  for (( i = 0; i < limit * 20; i++ )); do
    bench_alive "$pid" || return 1
    bench_port_open "$port" && return 0
    sleep 0.05
  done
  return 1
}

# bench_wait_listening PID LOG [SECONDS]: wait for the "listening on http://HOST:PORT" (or
# https://) line that netkit prints when ready and print PORT (bounded, gives up if PID dies).
bench_wait_listening() {
  local pid=$1 log=$2 limit=${3:-10} i line
  for (( i = 0; i < limit * 20; i++ )); do
    line=$(grep -m1 -Eo 'listening on https?://[^ ]*' "$log" 2>/dev/null) || line=
    if [ -n "$line" ]; then
      printf '%s\n' "${line##*:}"
      return 0
    fi
    bench_alive "$pid" || return 1
    sleep 0.05
  done
  return 1
}

# bench_known PID: true if PID is a process we recorded, with the same start time.
bench_known() {
  local entry start
  start=$(bench_stat_field "$1" 22) || return 1
  for entry in "${BENCH_PIDS[@]}"; do
    [ "$entry" = "$1:$start" ] && return 0
  done
  return 1
}

# bench_signal_known PID SIGNAL: signal PID only if bench_known says it is ours.
bench_signal_known() {
  bench_known "$1" && kill "-$2" "$1" 2>/dev/null
  return 0
}

# bench_stop PID [SECONDS]: SIGTERM PID, wait up to SECONDS (default 5) for it and its
# descendants to exit, then SIGKILL whatever of that tree is left. Reaps PID if it is our child.
bench_stop() {
  local pid=$1 limit=${2:-5} i p tree left=
  # Only a process we started (same PID and start time) and what descends from it.
  bench_known "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
  tree=$(bench_tree "$pid")
  for p in $tree; do bench_remember "$p"; done
  bench_signal_known "$pid" TERM
  for (( i = 0; i < limit * 20; i++ )); do
    left=
    for p in $tree; do bench_alive "$p" && left="$left $p"; done
    [ -z "$left" ] && break
    sleep 0.05
  done
  for p in $left; do bench_signal_known "$p" KILL; done
  wait "$pid" 2>/dev/null || true
}

# bench_cleanup: stop every process we started that still runs (newest first).
bench_cleanup() {
  local i entry pid
  for (( i = ${#BENCH_PIDS[@]} - 1; i >= 0; i-- )); do
    entry=${BENCH_PIDS[i]}
    pid=${entry%%:*}
    bench_alive "$pid" && bench_stop "$pid" 3
  done
  return 0
}

# bench_run_bounded SECONDS CMD...: run CMD in the background (so traps fire at once on Ctrl-C
# or SIGTERM) and wait for it; timeout kills it if it overruns. Returns CMD's status.
bench_run_bounded() {
  local limit=$1 pid rc=0
  shift
  timeout --kill-after=5 "$limit" "$@" &
  pid=$!
  bench_remember "$pid"
  wait "$pid" || rc=$?
  return "$rc"
}

# bench_median N...: the median of the numbers (mean of the middle two for an even count);
# prints "-" for an empty list or one made only of "-".
bench_median() {
  printf '%s\n' "$@" | awk '/^-?[0-9.]+([eE][-+]?[0-9]+)?$/' | sort -g | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "-"; exit }
      if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.6g\n", m
    }'
}

# bench_ratio A B: A/B with two decimals, "-" when either is missing or B is zero.
bench_ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) { print "-"; exit }
    printf "%.2f\n", a / b }'
}

# bench_parse_wrk FILE: print "REQ_PER_S MB_PER_S P99_MS REQUESTS ERRORS NON2XX" from wrk --latency
# output. MB/s is decimal megabytes (10^6 bytes) per second; wrk prints binary units (KB = 1024).
bench_parse_wrk() {
  awk '
    function bytes(s,   n, u) {
      n = s + 0; u = s; sub(/^[0-9.]+/, "", u)
      if (u == "KB") n *= 1024; else if (u == "MB") n *= 1048576
      else if (u == "GB") n *= 1073741824; else if (u == "TB") n *= 1099511627776
      return n
    }
    function ms(s,   n, u) {
      n = s + 0; u = s; sub(/^[0-9.]+/, "", u)
      if (u == "us") n /= 1000; else if (u == "s") n *= 1000
      else if (u == "m") n *= 60000; else if (u == "h") n *= 3600000
      return n
    }
    /^Requests\/sec:/ { rps = $2 }
    /^Transfer\/sec:/ { mbs = bytes($2) / 1e6 }
    /^ +99%/ { p99 = ms($2) }
    / requests in / { reqs = $1 }
    /^ +Socket errors:/ {
      for (i = 3; i <= NF; i += 2) { v = $(i + 1); sub(/,/, "", v); errs += v }
    }
    /^ +Non-2xx or 3xx responses:/ { non2xx = $NF }
    END {
      if (rps == "") { print "- - - 0 0 0"; exit }
      printf "%.1f %.2f %.3f %d %d %d\n", rps, mbs, p99, reqs, errs, non2xx
    }' "$1"
}

# bench_python_h2: print a python3 that can import h2 (python3-h2), preferring the first one on
# PATH and falling back to Debian's /usr/bin/python3 (a python3 of its own, pyenv or venv, on
# PATH usually lacks Debian's modules); fails when there is none.
bench_python_h2() {
  local py
  for py in "$(command -v python3 || true)" /usr/bin/python3; do
    [ -n "$py" ] && [ -x "$py" ] && "$py" -c 'import h2.connection' 2>/dev/null &&
      { printf '%s\n' "$py"; return 0; }
  done
  return 1
}

# bench_parse_h2load FILE: print "PROTO REQ_PER_S MIB_PER_S DONE SUCCEEDED FAILED ERRORED TIMEOUT
# NOT_2XX" from h2load's output (NOT_2XX: answers with a 3xx, 4xx or 5xx status; h2load also
# counts the status of answers still arriving when a -D run ends, so 2xx may exceed DONE). PROTO is the ALPN result ("-" when h2load printed none);
# MiB/s is h2load's traffic rate (its "MB" are 2^20 bytes: frames, headers and bodies).
bench_parse_h2load() {
  awk '
    /^Application protocol:/ { proto = $3 }
    /^finished in / {
      for (i = 1; i <= NF; i++) {
        v = $i; sub(/,$/, "", v)
        if (v == "req/s") rps = $(i - 1) + 0
        if (v ~ /B\/s,?$/) {
          n = v + 0; u = v; sub(/^[0-9.]+/, "", u); sub(/\/s,?$/, "", u)
          if (u == "B") n /= 1048576; else if (u == "KB") n /= 1024
          else if (u == "GB") n *= 1024
          mibs = n
        }
      }
    }
    /^requests: / {
      for (i = 2; i < NF; i++) {
        v = $(i + 1); sub(/,$/, "", v)
        if (v == "done") done = $i + 0
        else if (v == "succeeded") ok = $i + 0
        else if (v == "failed") failed = $i + 0
        else if (v == "errored") errored = $i + 0
        else if (v == "timeout") tmo = $i + 0
      }
    }
    /^status codes: / { bad = $5 + $7 + $9 }
    END {
      if (rps == "") { print "- - - 0 0 0 0 0 0"; exit }
      printf "%s %.1f %.2f %d %d %d %d %d %d\n", (proto == "" ? "-" : proto), rps, mibs, done, ok,
        failed, errored, tmo, bad
    }' "$1"
}
