#!/usr/bin/env bash
# Run every fuzz target built in BUILD_DIR for FUZZ_SECONDS each, on a copy of its seed
# corpus (so the checked-in corpus only changes on purpose). Exits non-zero if any target
# finds a crash, leak or sanitizer error; the input is kept in fuzz/artifacts/.
set -euo pipefail
build=${1:-build-fuzz}
secs=${FUZZ_SECONDS:-60}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/artifacts"
status=0
found=0
for bin in "$build"/fuzz_* "$build"/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  found=$((found + 1))
  name=$(basename "$bin"); short=${name#fuzz_}
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  if [ -d "$here/corpus/$short" ]; then cp -r "$here/corpus/$short/." "$work/"; fi
  dict=()
  case "$short" in http_parse|chunked|httpd) [ -f "$here/http.dict" ] && dict=(-dict="$here/http.dict") ;; esac
  echo "== $name for ${secs}s"
  if ! "$bin" "${dict[@]}" -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="$here/artifacts/$name-" "$work" 2>"$work.log"; then
    tail -n 40 "$work.log"
    echo "FAIL: $name (artifact in fuzz/artifacts/)"
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$work.log" | sed "s/^/  /"
  fi
  rm -rf "$work" "$work.log"
  trap - EXIT
done
if [ "$found" -eq 0 ]; then
  echo "no fuzz targets found in $build: nothing was fuzzed" >&2
  exit 1
fi
exit $status
