#!/usr/bin/env python3
"""A loop-only program linked against libnetkit.so runs, and the dynamic loader brings in
libnetkit, the C library and liburing (the loop's uring backend) but neither zlib nor libcrypto
(the server engine's dependencies, which live in libnetkit-httpd), nor anything else.

usage: check_deps.py PROGRAM
"""
import re
import subprocess
import sys

FORBIDDEN = ('libz.so', 'libcrypto.so', 'libssl.so', 'libnetkit-httpd.so')
# What libnetkit may bring: libc and libm, liburing, the loader; sanitizer builds add their
# runtimes. Anything else is a new dependency of every loop-only program: add it here on purpose.
ALLOWED = ('linux-vdso.so', 'linux-gate.so', 'libnetkit.so', 'libc.so', 'libm.so', 'liburing.so',
           '/lib64/ld-linux', '/lib/ld-linux', 'ld-linux', 'libasan.so', 'libubsan.so',
           'libgcc_s.so', 'libstdc++.so')


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    prog = sys.argv[1]
    out = subprocess.run(['ldd', prog], capture_output=True, text=True, check=True).stdout
    libs = [line.split()[0] for line in out.splitlines() if line.strip()]
    print('%s needs: %s' % (prog, ' '.join(libs)))
    failures = []
    if not any(re.match(r'libnetkit\.so', lib) for lib in libs):
        failures.append('not linked against libnetkit.so (the check would prove nothing)')
    for lib in libs:
        if lib.startswith(FORBIDDEN) or not lib.startswith(ALLOWED):
            failures.append('a loop-only program pulls in %s' % lib)
    run = subprocess.run([prog], capture_output=True, text=True, timeout=30)
    if run.returncode != 0:
        failures.append('the program failed (%d): %s' % (run.returncode, run.stderr.strip()))
    for f in failures:
        print('check_deps: ' + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
