#!/usr/bin/env python3
"""Write every command's option list into docs/netkit.1 from the command's own option table.

`netkit help --roff` prints, for each command with a table (cli/opt.h), a block from
'.\\" options: CMD' to '.\\" end options'; this replaces the block of the same name in the man
page, which must sit in that command's '.SS "CMD"' section. A command's first block is placed
with markers by hand, where its option list goes; after that, run `make man-options` whenever a
table changes. With --check nothing is written: the exit status is 1 when the page differs.

usage: man-options.py [--check] NETKIT [MANPAGE]
"""
import re
import subprocess
import sys

BLOCK_RE = re.compile(r'(?ms)^\.\\" options: (.+?)\n.*?^\.\\" end options\n')


def generated(netkit):
    out = subprocess.run([netkit, "help", "--roff"], check=True, capture_output=True,
                         text=True).stdout
    return {m.group(1): m.group(0) for m in BLOCK_RE.finditer(out)}


def section_of(page, pos):
    """The name of the '.SS' section around offset pos, or None."""
    heads = [m for m in re.finditer(r'(?m)^\.SS\s+"?([^"\n]+?)"?\s*$', page) if m.start() < pos]
    return heads[-1].group(1) if heads else None


def rewrite(page, blocks):
    """The page with every block replaced, and a list of problems."""
    problems = []
    seen = set()

    def swap(m):
        cmd = m.group(1)
        seen.add(cmd)
        if cmd not in blocks:
            problems.append("%s: a block in the man page, but no such command table" % cmd)
            return m.group(0)
        if section_of(page, m.start()) != cmd:
            problems.append("%s: its block is outside its .SS section" % cmd)
        return blocks[cmd]

    page = BLOCK_RE.sub(swap, page)
    problems += ["%s: no '.\\\" options: %s' block in the man page" % (c, c)
                 for c in sorted(set(blocks) - seen)]
    return page, problems


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    if not args:
        sys.exit(__doc__.strip().splitlines()[-1])
    man = args[1] if len(args) > 1 else "docs/netkit.1"
    with open(man) as f:
        page = f.read()
    new, problems = rewrite(page, generated(args[0]))
    for p in problems:
        print("man-options: " + p, file=sys.stderr)
    if check:
        if new != page:
            print("man-options: %s is not up to date: run `make man-options`" % man,
                  file=sys.stderr)
        return 1 if problems or new != page else 0
    if new != page:
        with open(man + ".tmp", "w") as f:
            f.write(new)
        import os
        os.replace(man + ".tmp", man)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
