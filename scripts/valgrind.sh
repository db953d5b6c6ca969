#!/usr/bin/env bash
# Run every unit test binary and one server start/serve/stop cycle under valgrind memcheck.
#   scripts/valgrind.sh [BUILD_DIR]     (default build-valgrind; `make valgrind` builds it)
# The tree must be a Debug build without sanitizers: ASan and valgrind cannot share a process.
# Exits non-zero when any run reports a memory error or a definite/indirect leak.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-valgrind}
case "$build" in /*) ;; *) build=$here/$build ;; esac
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 1; }
vg=(valgrind --quiet --leak-check=full --error-exitcode=1 --errors-for-leak-kinds=definite,indirect
    --track-fds=no)
status=0
failed=()

run() { # label, then the command
    local label=$1; shift
    local log
    log=$(mktemp)
    local rc=0
    "$@" >"$log" 2>&1 || rc=$?
    if [ $rc -eq 0 ]; then
        echo "ok    $label"
    elif [ $rc -eq 77 ]; then
        # A loop suite on a backend this kernel refuses (uring): it says why.
        echo "skip  $label: $(head -n 1 "$log")"
    else
        echo "FAIL  $label (exit $rc)"
        tail -n 60 "$log"
        failed+=("$label")
        status=1
    fi
    rm -f "$log"
}

shopt -s nullglob
tests=("$build"/tests/test_*)
if [ ${#tests[@]} -eq 0 ]; then
    echo "valgrind.sh: no unit test binaries in $build/tests" >&2
    exit 1
fi
for bin in "${tests[@]}"; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    case "$name" in
    test_loop*)
        # The loop suite runs once per backend, as ctest does.
        for backend in select poll epoll uring; do
            run "$name ($backend)" env NETKIT_BACKEND=$backend "${vg[@]}" "$bin"
        done ;;
    *) run "$name" "${vg[@]}" "$bin" ;;
    esac
done

run "http serve cycle" "$here/scripts/valgrind-server.sh" "$build/netkit"

if [ $status -ne 0 ]; then
    echo "valgrind: ${#failed[@]} failing: ${failed[*]}"
else
    echo "valgrind: all clean"
fi
exit $status
