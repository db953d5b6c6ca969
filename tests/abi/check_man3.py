#!/usr/bin/env python3
"""The section-3 man pages: present, well formed, true to the headers, examples that compile.

For each expected page in docs/man3: groff renders it (-man -Tutf8 -ww) without a single
warning; it has the sections a reader looks for; every function its SYNOPSIS declares is one
the public headers declare; and its EXAMPLE compiles against the public headers with warnings
as errors (so that an example cannot drift from the API).

usage: check_man3.py CC MAN3_DIR INCLUDE_DIR...
"""
import os
import re
import subprocess
import sys
import tempfile

PAGES = ['nk_loop_new', 'nk_io_start', 'nk_timer_start', 'nk_signal_start', 'nk_async_send',
         'nk_httpd_new', 'nk_httpd_route', 'nk_http_parse_request', 'nk_strerror']
SECTIONS = ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'RETURN VALUE', 'ERRORS', 'EXAMPLE', 'SEE ALSO']


def declared(include_dirs):
    """Function names the public headers declare (static inline ones included)."""
    names = set()
    for d in include_dirs:
        folder = os.path.join(d, 'netkit')
        for f in os.listdir(folder) if os.path.isdir(folder) else []:
            if f.endswith('.h'):
                text = re.sub(r'/\*.*?\*/', ' ', open(os.path.join(folder, f)).read(), flags=re.S)
                for m in re.finditer(r'^([^#\n;{}()]*?)\b(nk_[a-z0-9]\w*)\s*\(', text, re.M):
                    if 'typedef' not in m.group(1) and m.group(1).strip():
                        names.add(m.group(2))
    return names


def sections(text):
    """{section title: [lines]} of a man page."""
    out, current = {}, None
    for line in text.splitlines():
        m = re.match(r'\.SH\s+"?([^"]*)"?\s*$', line)
        if m:
            current = m.group(1).strip()
            out[current] = []
        elif current:
            out[current].append(line)
    return out


def unroff(lines):
    """The C text of an .EX/.EE block: troff escapes back to characters."""
    code, inside = [], False
    for line in lines:
        if line.startswith('.EX'):
            inside = True
        elif line.startswith('.EE'):
            inside = False
        elif inside:
            line = line.replace('\\e', '\\').replace('\\-', '-').replace('\\(dq', '"')
            line = line.replace('\\(aq', "'").replace('\\&', '')
            code.append(line)
    return '\n'.join(code) + '\n'


def check_page(path, cc, incs, api, workdir):
    problems = []
    name = os.path.basename(path)
    r = subprocess.run(['groff', '-man', '-Tutf8', '-ww', '-z', path],
                       capture_output=True, text=True)
    if r.returncode != 0 or r.stderr.strip():
        problems.append('%s: groff: %s' % (name, r.stderr.strip() or 'exit %d' % r.returncode))
    text = open(path).read()
    secs = sections(text)
    for s in SECTIONS:
        if s not in secs:
            problems.append('%s: no %s section' % (name, s))
    synopsis = '\n'.join(secs.get('SYNOPSIS', []))
    funcs = re.findall(r'\b(nk_[a-z0-9]\w*)\s*\(', synopsis)
    if not funcs:
        problems.append('%s: SYNOPSIS declares no function' % name)
    page_name = name.rsplit('.', 1)[0]
    if page_name not in funcs:
        problems.append('%s: SYNOPSIS does not declare %s' % (name, page_name))
    for f in funcs:
        if f not in api:
            problems.append('%s: SYNOPSIS declares %s, which no public header declares'
                            % (name, f))
    if not re.search(r'#include <netkit/\w+\.h>', synopsis):
        problems.append('%s: SYNOPSIS has no #include <netkit/...>' % name)
    example = unroff(secs.get('EXAMPLE', []))
    if 'main' not in example and 'static' not in example:
        problems.append('%s: EXAMPLE has no code between .EX and .EE' % name)
    else:
        src = os.path.join(workdir, page_name + '.c')
        with open(src, 'w') as f:
            f.write(example)
        cmd = [cc, '-std=c11', '-D_GNU_SOURCE', '-Wall', '-Wextra', '-Werror',
               '-Wno-unused-parameter', '-fsyntax-only', *['-I' + d for d in incs], src]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            problems.append('%s: EXAMPLE does not compile: %s\n%s' % (name, ' '.join(cmd),
                                                                      r.stderr.strip()))
    print('%-26s %d functions in SYNOPSIS, %s' % (name, len(funcs),
                                                  'ok' if not problems else 'FAILED'))
    return problems


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    cc, man3, incs = sys.argv[1], sys.argv[2], sys.argv[3:]
    api = declared(incs)
    if len(api) < 100:
        sys.exit('check_man3: only %d functions found under %s' % (len(api), incs))
    problems = []
    with tempfile.TemporaryDirectory() as workdir:
        for page in PAGES:
            path = os.path.join(man3, page + '.3')
            if not os.path.exists(path):
                problems.append('%s.3: missing' % page)
                continue
            problems += check_page(path, cc, incs, api, workdir)
    for p in problems:
        print('check_man3: ' + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
