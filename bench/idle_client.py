#!/usr/bin/env python3
"""Open N idle keep-alive connections to a server and measure what they cost its workers.

Used by bench/idle.sh. Each connection sends one complete keep-alive request, reads the whole
response, and then stays open and silent. The workers' resident memory (VmRSS, summed over the
given PIDs) is read before and after; the difference divided by the connections that are still
open is the cost of one idle connection.

With --tls each connection first makes a TLS handshake (certificate not checked: the server is
the one the benchmark started), so the figure is that of an idle TLS connection after its
handshake and one request.

Prints one line: "before_kb after_kb open closed_by_server bytes_per_conn".
Bounded: every socket operation times out, and the whole run gives up after --deadline seconds.
"""

import argparse
import resource
import select
import socket
import ssl
import sys
import time


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def read_response(sock):
    """Read one HTTP/1.1 response with a Content-Length body; return the status code."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
        if len(data) > 65536:
            raise ValueError("response head too long")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise ValueError("response without Content-Length")
    while len(body) < length:
        chunk = sock.recv(min(65536, length - len(body)))
        if not chunk:
            raise ConnectionError("closed inside the body")
        body += chunk
    return status


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def open_conn(port, request, timeout, tls=None):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls is not None:
        try:
            sock = tls.wrap_socket(sock, server_hostname="localhost")
        except (OSError, ssl.SSLError):
            sock.close()
            raise
    sock.sendall(request)
    status = read_response(sock)
    if status != 200:
        sock.close()
        raise ValueError(f"status {status}")
    return sock


def still_open(sock):
    """True when the server has neither closed nor reset the connection."""
    if isinstance(sock, ssl.SSLSocket):
        # A TLS socket cannot peek. The response and the session tickets before it have been
        # read, so anything readable now is the server closing (close_notify, FIN or reset).
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN | select.POLLRDHUP)
        return not poller.poll(0)
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pids", required=True, help="worker PIDs, space-separated")
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--path", default="/1k.bin")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds to wait before measuring")
    ap.add_argument("--deadline", type=float, default=120.0)
    ap.add_argument("--tls", action="store_true", help="connect with TLS")
    args = ap.parse_args()
    tls = tls_context() if args.tls else None

    pids = [int(p) for p in args.pids.split()]
    limit = raise_nofile(args.conns + 256)
    conns = min(args.conns, limit - 64)
    if conns < args.conns:
        print(f"idle: descriptor limit {limit} allows only {conns} connections", file=sys.stderr)

    request = (f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n"
               "User-Agent: netkit-bench-idle\r\n\r\n").encode()
    start = time.monotonic()

    # Warm up: let each worker do its first-request work (file cache, lazy tables) before the
    # baseline, so that it is not charged to the idle connections.
    for _ in range(50):
        open_conn(args.port, request, 10, tls).close()
    time.sleep(args.settle)
    before = rss_kb(pids)

    socks = []
    failures = 0
    try:
        while len(socks) < conns and time.monotonic() - start < args.deadline:
            try:
                socks.append(open_conn(args.port, request, 10, tls))
            except (OSError, ValueError) as e:
                failures += 1
                if failures > 100:
                    print(f"idle: giving up after {failures} failed connections ({e})",
                          file=sys.stderr)
                    break
        time.sleep(args.settle)
        after = rss_kb(pids)
        open_now = sum(1 for s in socks if still_open(s))
    finally:
        # Close with a reset (linger 0) so that thousands of sockets leave no TIME_WAIT behind.
        linger = b"\x01\x00\x00\x00\x00\x00\x00\x00"
        for s in socks:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            except OSError:
                pass
            s.close()

    if len(socks) < conns:
        print(f"idle: opened {len(socks)} of {conns} connections ({failures} failed)",
              file=sys.stderr)
    per = (after - before) * 1024 / open_now if open_now else float("nan")
    print(f"{before} {after} {open_now} {len(socks) - open_now} {per:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
