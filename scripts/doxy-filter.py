#!/usr/bin/env python3
"""Doxygen INPUT_FILTER for the public headers: their comments are plain C comments.

The headers say what a declaration does in the /* ... */ block right above it, or in a
comment at the end of its line (struct fields, enum values), and introduce a file with the
comment at its top. Doxygen only reads /** and /**< comments, so this filter rewrites, without
changing any line count (warnings keep pointing at the header's own lines):

  - the file's first comment           -> /** ... \\file */    (the file's description)
  - a comment on its own lines followed
    directly by a declaration          -> /** ... */          (that declaration's)
  - a comment after code on its line   -> /**< ... */         (the member's on that line)

When such a comment is followed by several declarations without a blank line between them
(nk_io_init, nk_io_start, nk_io_stop ...), they are put in one member group, so that each of
them gets the comment (DISTRIBUTE_GROUP_DOC). A comment followed by a blank line or by
another comment introduces a section and stays a plain comment. Section titles written as
"---- Timers ----" become "Timers.", the brief description of what follows. Characters that
Doxygen would take as commands or HTML in converted comments (\\ @ < > & # % ::) are escaped.

usage: doxy-filter.py FILE   (writes the filtered text to standard output)
"""
import re
import sys

STRUCTURAL = re.compile(r'\s*(#\s*(ifndef|ifdef|if|else|elif|endif|include)\b|NK_API_(BEGIN|END)\b'
                        r'|extern\s+"C"|\}\s*$|$)')
ESCAPE = re.compile(r'([\\@<>&#%]|::)')
TITLE = re.compile(r'-{3,}[ \t]*(.*?)[ \t]*-{3,}[ \t]*')


def comments(text):
    """(start, end) offsets of every /* */ comment, skipping strings and // comments."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in '"\'':
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == '\\' else 1
            i = j + 1
        elif text.startswith('//', i):
            j = text.find('\n', i)
            i = n if j < 0 else j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append((i, j))
            i = j
        else:
            i += 1
    return out


def escape_body(body):
    """Escape Doxygen's special characters, except inside `code spans` and "quoted text" of a
    line, which Doxygen prints as written."""
    out = []
    for line in body.split('\n'):
        pieces = re.split(r'(`[^`]*`|"[^"\n]*")', line)
        out.append(''.join(p if k % 2 else ESCAPE.sub(r'\\\1', p) for k, p in enumerate(pieces)))
    return '\n'.join(out)


def declaration_run(lines, first):
    """Index of the last line of the declarations starting at line first (up to a blank line,
    a comment, a preprocessor or a structural line), and how many it holds. Macros are left
    out: a group marker cannot follow a #define on its line."""
    depth = 0
    count = 0
    last = first
    i = first
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if depth == 0 and (not stripped or stripped.startswith(('/*', '#')) or
                           (i > first and STRUCTURAL.match(line))):
            break
        code = re.sub(r'/\*.*?(\*/|$)', '', line)
        depth += code.count('{') + code.count('(') - code.count('}') - code.count(')')
        last = i
        if depth <= 0:
            depth = 0
            if code.rstrip().endswith((';', '}')):
                count += 1
        i += 1
    return last, count


def file_scope_lines(text, spans, nlines):
    """For each line, whether it starts outside every brace (comments, strings and the
    extern "C" block for C++ aside)."""
    text = re.sub(r'extern\s+"C"\s*\{', lambda m: ' ' * len(m.group(0)), text)
    text = re.sub(r'(#ifdef __cplusplus\n)\}', r'\1 ', text)
    code = list(text)
    for start, end in spans:
        for k in range(start, end):
            if code[k] != '\n':
                code[k] = ' '
    depth = 0
    out = [True] * (nlines + 1)
    line = 0
    for ch in code:
        if ch == '\n':
            line += 1
            out[line] = depth == 0
        elif ch == '{':
            depth += 1
        elif ch == '}':
            depth -= 1
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    text = open(sys.argv[1], encoding='utf-8').read()
    edits = []  # (offset, length to replace, replacement)
    groups_close = set()  # line indexes after which a member group ends
    lines = text.split('\n')
    line_start = [0]
    for line in lines:
        line_start.append(line_start[-1] + len(line) + 1)

    def line_of(offset):
        lo, hi = 0, len(lines)
        while lo < hi - 1:
            mid = (lo + hi) // 2
            if line_start[mid] <= offset:
                lo = mid
            else:
                hi = mid
        return lo

    spans = comments(text)
    at_file_scope = file_scope_lines(text, spans, len(lines))
    for start, end in spans:
        if text.startswith('/**', start) or text.startswith('/*!', start):
            continue
        first, last = line_of(start), line_of(end - 1)
        before = text[line_start[first]:start]
        after = text[end:line_start[last + 1] - 1] if last + 1 < len(line_start) else ''
        body = text[start + 2:end - 2]
        if before.strip():
            edits.append((start, end - start, '/**<' + escape_body(body) + '*/'))
            continue
        if after.strip():
            continue
        if not text[:start].strip():
            edits.append((start, end - start, '/**' + escape_body(body) + ' \\file */'))
            continue
        nxt = last + 1
        if nxt >= len(lines) or STRUCTURAL.match(lines[nxt]) or lines[nxt].strip().startswith('/*'):
            continue
        body = TITLE.sub(lambda m: m.group(1) + '. ', body, count=1)
        run_end, count = declaration_run(lines, nxt)
        doc = '/**' + escape_body(body) + '*/'
        if count >= 2 and at_file_scope[first]:
            doc = '/**@{*/ ' + doc
            groups_close.add(run_end)
        edits.append((start, end - start, doc))

    for line_index in groups_close:
        pos = line_start[line_index] + len(lines[line_index])
        edits.append((pos, 0, ' /**@}*/'))

    for offset, length, new in sorted(edits, key=lambda e: e[0], reverse=True):
        text = text[:offset] + new + text[offset + length:]
    sys.stdout.write(text)


if __name__ == '__main__':
    main()
