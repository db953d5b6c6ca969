#!/usr/bin/env bash
# Run every benchmark in bench/, one after another, each under a time limit so the whole set
# stays bounded: under ~20 minutes by default, ~5-6 minutes with BENCH_QUICK=1.
# A benchmark that fails or overruns is reported and the others still run; the exit status is 1
# if any of them did. Benchmarks print figures, they never judge them.
#
# To add a benchmark: write bench/NAME.sh (source lib.sh, clean up in an EXIT trap, write its
# figures to bench/results/NAME-<timestamp>.tsv) and list it below with its time limits.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.." || exit 1
. "$here/lib.sh"

# name, limit in seconds (full run), limit with BENCH_QUICK=1.
# http.sh: five contenders (netkit-uring among them) and system calls in three scenarios took
# 570 s in one full run and 317 s quick, both at load 10-20.
benchmarks=(
  "http.sh 720 360"
  "idle.sh 240 90"
  "echo.sh 300 75"
  "backends.sh 240 90"
  "tls.sh 540 240"
  "h2.sh 360 120"
  "workers.sh 480 200"
)

child=
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait 2>/dev/null; exit 130' INT
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait 2>/dev/null; exit 143' TERM

failed=()
start=$SECONDS
for entry in "${benchmarks[@]}"; do
  # shellcheck disable=SC2086 # "name limit quick-limit", split on purpose
  set -- $entry
  name=$1 limit=$2
  [ "${BENCH_QUICK:-0}" = 1 ] && limit=$3
  printf '\n######## bench/%s (limit %ss)\n' "$name" "$limit"
  # timeout sends SIGTERM first: each script's trap then stops the servers it started.
  timeout --kill-after=20 "$limit" "$here/$name" &
  child=$!
  wait "$child"
  rc=$?
  child=
  case $rc in
    0) ;;
    124) bench_log "$name overran its ${limit}s limit and was stopped"; failed+=("$name") ;;
    *) bench_log "$name failed (exit $rc)"; failed+=("$name") ;;
  esac
done

printf '\nall benchmarks done in %ss; tables in bench/results/\n' $(( SECONDS - start ))
if [ "${#failed[@]}" -gt 0 ]; then
  bench_log "did not finish: ${failed[*]}"
  exit 1
fi
