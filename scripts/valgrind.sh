#!/usr/bin/env bash
# Run every unit test binary and one server start/serve/stop cycle under valgrind memcheck.
#   scripts/valgrind.sh [BUILD_DIR]     (default build-valgrind; `make valgrind` builds it)
# The tree must be a Debug build without sanitizers: ASan and valgrind cannot share a process.
# Exits non-zero when any run reports a memory error or a definite/indirect leak.
# What is not checked is said, never counted as clean: the loop suites' uring runs are skipped
# (valgrind does not model io_uring: the kernel reads and writes the rings and the buffers
# behind its back), and a test a suite skips inside (cmocka's SKIPPED, with its reason) is
# listed under the suite's line. Both are counted in the last line.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-valgrind}
case "$build" in /*) ;; *) build=$here/$build ;; esac
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 1; }
vg=(valgrind --quiet --leak-check=full --error-exitcode=1 --errors-for-leak-kinds=definite,indirect
    --track-fds=no)
status=0
failed=()
skipped=()

# A passing run may still have skipped tests inside: list them with the reasons they printed.
inner_skips() { # label, log
    local names
    names=$(sed -n 's/^\[  SKIPPED \] \(test_[A-Za-z0-9_]*\)$/\1/p' "$2" | sort -u)
    [ -n "$names" ] || return 0
    local name
    for name in $names; do
        echo "      skipped inside: $name"
        skipped+=("$1: $name")
    done
    grep '^skipped: ' "$2" | sed 's/^/      /' || true
}

run() { # label, then the command
    local label=$1; shift
    local log
    log=$(mktemp)
    local rc=0
    "$@" >"$log" 2>&1 || rc=$?
    if [ $rc -eq 0 ]; then
        echo "ok    $label"
        inner_skips "$label" "$log"
    elif [ $rc -eq 77 ]; then
        # A loop suite on a backend this kernel refuses (uring): it says why.
        echo "skip  $label: $(head -n 1 "$log")"
        skipped+=("$label")
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
        for backend in select poll epoll; do
            run "$name ($backend)" env NETKIT_BACKEND=$backend "${vg[@]}" "$bin"
        done
        echo "skip  $name (uring): not run under valgrind, which does not model io_uring"
        skipped+=("$name (uring)") ;;
    *) run "$name" "${vg[@]}" "$bin" ;;
    esac
done

run "http serve cycle" "$here/scripts/valgrind-server.sh" "$build/netkit"

not_checked=""
if [ ${#skipped[@]} -ne 0 ]; then
    not_checked="; ${#skipped[@]} not checked (the skip lines above)"
fi
if [ $status -ne 0 ]; then
    echo "valgrind: ${#failed[@]} failing: ${failed[*]}$not_checked"
else
    echo "valgrind: everything run is clean$not_checked"
fi
exit $status
