#!/bin/sh
# Static checks of src/ and cli/: cppcheck, then clang-tidy with the checks in .clang-tidy.
#   scripts/lint.sh          (`make lint` runs it); exit 1 on any finding
# clang-tidy reads the compile commands of a build configured in build-lint/ (not built).
# A finding that is wrong is silenced where it stands, with the reason next to it:
# `// cppcheck-suppress <id>` or NOLINTNEXTLINE(<check>) in a comment.
set -eu
cd "$(dirname "$0")/.."
jobs=${JOBS:-2}
out=build-lint/lint.txt

cmake -S . -B build-lint -DCMAKE_BUILD_TYPE=Debug -DNK_TESTS=OFF \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
: >"$out"
rm -f "$out.tidy"

echo "lint: cppcheck" >&2
cppcheck --enable=warning,performance,portability --inline-suppr --error-exitcode=1 \
    --std=c11 -D_GNU_SOURCE -I include -I src -j"$jobs" --quiet src cli 2>>"$out" || true

echo "lint: clang-tidy (-P$jobs)" >&2
# One clang-tidy per few files, two at a time; headers are checked through the files that
# include them (HeaderFilterRegex in .clang-tidy), and each report is printed once.
python3 -c '
import json, os
for e in json.load(open("build-lint/compile_commands.json")):
    f = os.path.relpath(e["file"])
    if f.startswith(("src/", "cli/")):
        print(f)' |
    xargs -P"$jobs" -n4 clang-tidy -p build-lint --quiet 2>/dev/null >>"$out.tidy" || true
cat "$out.tidy" >>"$out" && rm -f "$out.tidy"

# Both tools print "file:line:col: warning|error|style|...: message [id]"; notes follow them.
findings=$(grep -E '^[^ ].*:[0-9]+:[0-9]+: (warning|error|style|performance|portability):' "$out" |
    sed "s|^$PWD/||" | sort -u)
if [ -n "$findings" ]; then
    printf '%s\n' "$findings"
    echo "lint: $(printf '%s\n' "$findings" | wc -l) finding(s); full output in $out" >&2
    exit 1
fi
echo "lint: no findings" >&2
