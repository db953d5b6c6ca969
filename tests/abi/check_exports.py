#!/usr/bin/env python3
"""libnetkit.so and libnetkit-httpd.so export their public API and nothing else.

Every defined dynamic symbol must be a public name (nk_ followed by a letter or digit): no
internal nk__ function, no helper without the prefix. And every function the public headers
declare must be exported, so that hiding by default (-fvisibility=hidden) cannot silently drop
one from the API.

usage: check_exports.py NM LIBRARY[,LIBRARY...] INCLUDE_DIR...
"""
import glob
import re
import subprocess
import sys


def exported(nm, lib):
    """The defined dynamic symbols of lib; a name exported by two libraries counts twice."""
    out = subprocess.run([nm, '-D', '--defined-only', lib], capture_output=True, text=True,
                         check=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if parts:
            names.add(parts[-1].split('@')[0])
    return names


def declared(include_dirs):
    names = set()
    for d in include_dirs:
        for path in glob.glob(d + '/netkit/*.h'):
            text = open(path).read()
            text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
            # A function declaration: a return type, then the name, then "(". static inline
            # helpers live in the header itself and are not exported.
            for m in re.finditer(r'^([^#\n;{}()]*?)\b(nk_[a-z0-9]\w*)\s*\(', text, re.M):
                if 'static' in m.group(1) or 'typedef' in m.group(1) or not m.group(1).strip():
                    continue
                names.add(m.group(2))
    return names


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    nm, libs, incs = sys.argv[1], sys.argv[2].split(','), sys.argv[3:]
    have = set()
    twice = []
    for lib in libs:
        mine = exported(nm, lib)
        twice += sorted(have & mine)
        have |= mine
        print('%s: %d symbols exported' % (lib, len(mine)))
    want = declared(incs)
    bad = sorted(s for s in have if not re.match(r'nk_[a-z0-9]', s))
    missing = sorted(want - have)
    print('%d functions declared by the public headers' % len(want))
    for s in twice:
        print('check_exports: exported by two libraries: %s' % s, file=sys.stderr)
    for s in bad:
        print('check_exports: not public API but exported: %s' % s, file=sys.stderr)
    for s in missing:
        print('check_exports: declared in a public header but not exported: %s' % s,
              file=sys.stderr)
    if len(want) < 50:
        print('check_exports: only %d declarations found: the header scan is broken'
              % len(want), file=sys.stderr)
        return 1
    return 1 if bad or missing or twice else 0


if __name__ == '__main__':
    sys.exit(main())
