"""The rules every `Location` sent by `netkit http serve` must follow.

The server only ever redirects to itself (a directory's trailing slash, the page after a form
upload, the file a PUT created), so a Location is always a same-origin absolute path:

- it starts with exactly one "/": "//host" and "/\\host" are read by browsers as another
  host (an open redirect), and anything with a scheme leaves the origin;
- it holds only the octets RFC 3986 allows in a path and query, everything else
  percent-encoded: no CR/LF (response splitting), no controls, spaces, backslashes, "#",
  quotes or non-ASCII;
- every "%" starts a valid escape;
- its path is already normalised: no "." or ".." segment, neither as sent nor once decoded
  (a client or proxy that decodes "%2e%2e" would otherwise climb out), no empty segment
  inside it, and the decoded path does not start with "//" or "/\\" either.

check_location(value) raises AssertionError saying which rule a value breaks.
"""
import re

# pchar (RFC 3986 3.3) plus "/" and the query's "?"; "%" is checked separately.
_ALLOWED = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*$")
_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _decode(text):
    """Percent-decode to bytes (the escapes are already known to be valid)."""
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "%":
            out.append(int(text[i + 1:i + 3], 16))
            i += 3
        else:
            out += text[i].encode("latin-1")
            i += 1
    return bytes(out)


def location_problem(value):
    """None when value is an acceptable Location, else what is wrong with it."""
    if value is None:
        return "no value"
    if not value.startswith("/"):
        return "not an absolute path (no leading '/'; a scheme or a relative reference)"
    if value.startswith("//"):
        return "starts with '//': another host (network-path reference)"
    if value.startswith("/\\"):
        return "starts with '/\\': browsers read it as another host"
    bad = [c for c in value if not _ALLOWED.match(c)]
    if bad:
        return "characters that must be percent-encoded: %r" % "".join(sorted(set(bad)))
    if _ESCAPE.search(value):
        return "a '%' that does not start a %XX escape"
    path = value.split("?", 1)[0]
    segments = path.split("/")[1:]
    for seg in segments:
        if seg in (".", ".."):
            return "dot segment %r: the path is not normalised" % seg
    for seg in segments[:-1]:
        if seg == "":
            return "empty segment ('//') inside the path"
    decoded = _decode(path)
    if decoded.startswith(b"//") or decoded.startswith(b"/\\"):
        return "decodes to %r: another host once decoded" % decoded[:40]
    for seg in re.split(rb"[/\\]", decoded)[1:]:
        if seg in (b".", b".."):
            return "decodes to a dot segment %r: the path is not normalised" % seg
    return None


def check_location(value):
    """AssertionError when `value` is not a same-origin, encoded, normalised path."""
    problem = location_problem(value)
    if problem is not None:
        raise AssertionError("bad Location %r: %s" % (value, problem))
