#!/usr/bin/env python3
"""After Doxygen: every function of the public headers is in the reference, with a description.

Reads the XML that Doxygen writes next to the HTML (GENERATE_XML in Doxyfile) and the headers
themselves, and fails when a function the headers declare is missing from the reference or
has neither a brief nor a detailed description (its header comment did not reach it), and
when Doxygen's warning log is not empty.

usage: docs-check.py DOCS_DIR INCLUDE_DIR       (`make docs`: build-docs include/netkit)
"""
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET


def declared(include_dir):
    """Function names the headers declare (static inline ones included)."""
    names = {}
    for path in sorted(glob.glob(os.path.join(include_dir, '*.h*'))):
        text = re.sub(r'/\*.*?\*/', ' ', open(path).read(), flags=re.S)
        for m in re.finditer(r'^([^#\n;{}()]*?)\b(nk_[a-z0-9]\w*)\s*\(', text, re.M):
            if 'typedef' in m.group(1) or not m.group(1).strip():
                continue
            names.setdefault(m.group(2), os.path.basename(path))
    return names


def documented(xml_dir):
    """{function name: has a description} over the file pages of the reference."""
    out = {}
    for path in glob.glob(os.path.join(xml_dir, '*.xml')):
        root = ET.parse(path).getroot()
        for compound in root.iter('compounddef'):
            if compound.get('kind') != 'file':
                continue
            for member in compound.iter('memberdef'):
                if member.get('kind') != 'function':
                    continue
                name = member.findtext('name')
                text = ''.join(''.join(member.find(tag).itertext())
                               for tag in ('briefdescription', 'detaileddescription')
                               if member.find(tag) is not None)
                out[name] = out.get(name, False) or bool(text.strip())
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    docs, include_dir = sys.argv[1], sys.argv[2]
    want = declared(include_dir)
    have = documented(os.path.join(docs, 'xml'))
    problems = []
    for name, header in sorted(want.items()):
        if name not in have:
            problems.append('%s: %s is not in the reference' % (header, name))
        elif not have[name]:
            problems.append('%s: %s has no description (no comment right above it, or at '
                            'the end of its line)' % (header, name))
    warnings_path = os.path.join(docs, 'warnings.txt')
    warnings = open(warnings_path).read().strip() if os.path.exists(warnings_path) else ''
    if warnings:
        problems += ['doxygen: ' + line for line in warnings.splitlines()]
    if len(want) < 100:
        problems.append('only %d functions found in %s: the header scan is broken'
                        % (len(want), include_dir))
    for p in problems:
        print('docs-check: ' + p, file=sys.stderr)
    documented_count = sum(1 for n in want if have.get(n))
    print('docs: %d of %d public functions described, %d doxygen warnings; HTML in %s'
          % (documented_count, len(want), len(warnings.splitlines()),
             os.path.join(docs, 'html', 'index.html')))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
