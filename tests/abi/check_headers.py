#!/usr/bin/env python3
"""Every public header stands on its own in the languages and modes users compile with.

For each include/netkit/*.h, a file that includes only that header is compiled with warnings
as errors as ISO C99 and C11 with -pedantic and no feature macros (the strictest thing a user
may do), and as C++11. netkit.h ("everything in one include") must include every other
public header, and every header that declares functions must give them C linkage for C++.

usage: check_headers.py CC CXX INCLUDE_DIR...
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

MODES = [
    ('c99', 'c', ['-std=c99', '-pedantic']),
    ('c11', 'c', ['-std=c11', '-pedantic']),
    ('c++11', 'c++', ['-std=c++11', '-pedantic']),
]


def compile_one(compiler, lang, flags, incs, header, workdir):
    src = os.path.join(workdir, 'one.' + ('c' if lang == 'c' else 'cpp'))
    with open(src, 'w') as f:
        f.write('#include <netkit/%s>\nint main(void) { return 0; }\n' % header)
    cmd = [compiler, '-x', lang, *flags, '-Wall', '-Wextra', '-Werror', '-fsyntax-only',
           *['-I' + d for d in incs], src]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        return 127, ' '.join(cmd), 'compiler not found: %s' % compiler
    return r.returncode, ' '.join(cmd), r.stderr


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    cc, cxx, incs = sys.argv[1], sys.argv[2], sys.argv[3:]
    headers = sorted({os.path.basename(p) for d in incs for p in glob.glob(d + '/netkit/*.h')})
    if 'netkit.h' not in headers or len(headers) < 5:
        sys.exit('check_headers: public headers not found under %s' % incs)
    failures = []

    umbrella = open(next(d + '/netkit/netkit.h' for d in incs
                         if os.path.exists(d + '/netkit/netkit.h'))).read()
    included = set(re.findall(r'#include <netkit/([\w.]+)>', umbrella))
    for h in headers:
        if h != 'netkit.h' and h not in included:
            failures.append('netkit.h does not include <netkit/%s>' % h)

    for h in headers:
        path = next(d + '/netkit/' + h for d in incs if os.path.exists(d + '/netkit/' + h))
        text = open(path).read()
        declares_functions = re.search(r'^[A-Za-z_][\w \*]*\bnk_\w+\s*\(', text, re.M)
        if declares_functions and 'extern "C"' not in text:
            failures.append('%s declares functions without extern "C" for C++' % h)

    with tempfile.TemporaryDirectory() as workdir:
        for h in headers:
            for name, lang, flags in MODES:
                compiler = cxx if lang == 'c++' else cc
                rc, cmd, err = compile_one(compiler, lang, flags, incs, h, workdir)
                status = 'ok' if rc == 0 else 'FAILED'
                print('%-10s %-6s %s' % (h, name, status))
                if rc != 0:
                    failures.append('%s as %s: %s\n%s' % (h, name, cmd, err.strip()))

    for f in failures:
        print('check_headers: ' + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
