#!/bin/sh
# Line coverage of src/ from the whole test suite (unit + integration), per module and in total.
#   scripts/coverage.sh [BUILD_DIR]      (default build-coverage; `make coverage` runs it)
# The build is instrumented with gcc --coverage; the integration tests run the instrumented
# `netkit`, so server code they reach counts too. A process killed with SIGKILL writes no .gcda
# file: what only such a process ran is reported as uncovered.
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build-coverage}
jobs=${JOBS:-2}
command -v lcov >/dev/null || { echo "coverage: lcov is missing (scripts/install-deps coverage)" >&2; exit 1; }

cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DNK_SANITIZE=OFF \
    -DCMAKE_C_FLAGS=--coverage -DCMAKE_EXE_LINKER_FLAGS=--coverage \
    -DCMAKE_SHARED_LINKER_FLAGS=--coverage >/dev/null
cmake --build "$dir" -j"$jobs"
# Counters add up across runs: start from zero so the figures describe this run only.
find "$dir" -name '*.gcda' -delete
# A failing test still leaves its coverage; report it and fail at the end.
status=0
(cd "$dir" && ctest --output-on-failure -j"$jobs") || status=$?

# lcov 1.16's geninfo prints "Subroutine ... redefined" perl warnings on every run: not ours.
lcov --quiet --capture --directory "$dir" --output-file "$dir/all.info" 2>&1 >/dev/null |
    grep -v '^Subroutine .* redefined' >&2 || true
[ -s "$dir/all.info" ] || { echo "coverage: lcov captured nothing" >&2; exit 1; }
lcov --quiet --extract "$dir/all.info" "$PWD/src/*" --output-file "$dir/src.info" >/dev/null

# An lcov tracefile lists, per source file (SF:), lines found (LF:) and lines hit (LH:).
awk -v root="$PWD/src/" '
  /^SF:/ { f = substr($0, 4); sub(root, "", f); m = f; sub("/.*", "", m) }
  /^LF:/ { lf[f] = substr($0, 4); mf[m] += lf[f]; tf += lf[f] }
  /^LH:/ { lh[f] = substr($0, 4); mh[m] += lh[f]; th += lh[f] }
  END {
    printf "line coverage of src/ by module\n"
    for (m in mf) printf "  %-8s %6.1f%%  %5d of %5d lines\n", m, 100 * mh[m] / mf[m], mh[m], mf[m] | "sort"
    close("sort")
    printf "  %-8s %6.1f%%  %5d of %5d lines\n", "total", 100 * th / tf, th, tf
    printf "lowest-covered files\n"
    for (f in lf) if (lf[f] > 0) printf "  %6.1f%%  %5d of %5d  %s\n", 100 * lh[f] / lf[f], lh[f], lf[f], f | "sort -n | head -n 12"
    close("sort -n | head -n 12")
  }' "$dir/src.info"
echo "per-line detail: genhtml $dir/src.info -o $dir/html"
exit "$status"
