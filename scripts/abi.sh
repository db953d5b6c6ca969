#!/bin/sh
# The exported ABI of libnetkit.so and libnetkit-httpd.so against the baselines in abi/.
#   scripts/abi.sh check [BUILD_DIR]      `make abi-check`: exit 1 on a break
#   scripts/abi.sh baseline [BUILD_DIR]   `make abi-baseline`: rewrite abi/*.abi from this tree
# BUILD_DIR (build-abi by default) gets a Release build of the two shared libraries (-O2 -g:
# abidw reads the types from the DWARF). abidw keeps only what the public headers define
# (--headers-dir include/netkit, --drop-private-types), so the insides of opaque types such as
# nk_loop may change freely, and leaves out paths and line numbers so that a baseline made in
# another checkout, or after an edit that moved a definition, is the same file.
#
# What fails: abidiff sets bit 8 of its exit status only for removed symbols; a changed return
# or parameter type and a grown struct (an nk_timer embedded in a caller's struct, an
# nk_httpd_config on the caller's stack) set only bit 4, "ABI change", as added functions do.
# So the decision is taken on a second run with --no-added-syms: any bit left there is a
# break. Added functions alone pass (old programs keep working) with a note to refresh the
# baseline, so that later changes to them are checked too.
set -eu
cd "$(dirname "$0")/.."
mode=${1:-}
build=${2:-build-abi}
libs="libnetkit libnetkit-httpd"

case "$mode" in
  check|baseline) ;;
  *) echo "usage: scripts/abi.sh check|baseline [BUILD_DIR]" >&2; exit 2 ;;
esac
for tool in abidw abidiff; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "netkit: abi: $tool not found (scripts/install-deps abi installs abigail-tools)" >&2
    exit 1
  fi
done

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNK_WERROR=ON -DNK_SANITIZE=OFF \
    -DNK_TESTS=OFF >/dev/null
cmake --build "$build" -j"${JOBS:-2}" --target netkit_shared netkit_httpd_shared >/dev/null

mkdir -p "$build/abi"
for lib in $libs; do
  so="$build/$lib.so"
  # Without DWARF abidw would still write the symbol list, and a changed struct would pass.
  if ! readelf -S "$so" | grep -q '\.debug_info'; then
    echo "netkit: abi: $so has no debug information (build it with -g)" >&2
    exit 1
  fi
  abidw --headers-dir include/netkit --headers-dir "$build/include/netkit" \
        --drop-private-types --drop-undefined-syms --no-corpus-path --no-comp-dir-path \
        --short-locs --no-show-locs \
        --out-file "$build/abi/$lib.abi" "$so"
done

if [ "$mode" = baseline ]; then
  mkdir -p abi
  for lib in $libs; do
    cp "$build/abi/$lib.abi" "abi/$lib.abi"
    echo "abi: wrote abi/$lib.abi"
  done
  echo "abi: if this records a break, list it under \"ABI\" in CHANGELOG.md"
  exit 0
fi

broken=""
for lib in $libs; do
  base="abi/$lib.abi"
  if [ ! -f "$base" ]; then
    echo "netkit: abi: no baseline $base (make abi-baseline writes it)" >&2
    exit 1
  fi
  status=0
  abidiff "$base" "$build/abi/$lib.abi" >"$build/abi/$lib.report" || status=$?
  if [ "$status" -eq 0 ]; then
    echo "abi: $lib.so: same ABI as $base"
    continue
  fi
  # Bits 1 (error) and 2 (usage) mean abidiff could not compare: that is a failure too.
  strict=0
  abidiff --no-added-syms "$base" "$build/abi/$lib.abi" >/dev/null || strict=$?
  cat "$build/abi/$lib.report"
  if [ "$strict" -ne 0 ]; then
    echo "abi: $lib.so: INCOMPATIBLE with $base (abidiff exit status $status)"
    broken="$broken $lib"
  else
    echo "abi: $lib.so: only additions; make abi-baseline records them"
  fi
done

if [ -n "$broken" ]; then
  cat >&2 <<EOF
netkit: abi: the ABI of$broken changed in a way that breaks programs built against the baseline.
  If the change is a mistake, undo it (add a field through a new call or at the end of an
  opaque type instead of growing a public struct, add a new function instead of changing one).
  If it is deliberate: run 'make abi-baseline', add one line per break under "ABI" in
  CHANGELOG.md, and commit both with the change.
EOF
  exit 1
fi
