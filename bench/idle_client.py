#!/usr/bin/env python3
"""Open N idle keep-alive connections to a server and measure what they cost its workers.

Used by bench/idle.sh. Each connection sends one complete keep-alive request, reads the whole
response, and then stays open and silent. The workers' resident memory (VmRSS, summed over the
given PIDs) is read before and after; the difference divided by the connections that are still
open is the cost of one idle connection.

With --tls each connection first makes a TLS handshake (certificate not checked: the server is
the one the benchmark started), so the figure is that of an idle TLS connection after its
handshake and one request.

With --h2 (implies --tls) each connection offers only "h2" by ALPN, must get it, sends the
HTTP/2 preface and its SETTINGS, makes one GET on stream 1 and reads the whole response (the
server's SETTINGS acknowledged); the figure is then that of an idle HTTP/2 connection
(python3-h2 frames the requests).

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


def tls_context(h2=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if h2:
        ctx.set_alpn_protocols(["h2"])
    return ctx


class H2Conn:
    """One client HTTP/2 connection that made its request and now idles."""

    def __init__(self, sock, conn):
        self.sock = sock
        self.conn = conn

    def fileno(self):
        return self.sock.fileno()

    def setsockopt(self, *args):
        self.sock.setsockopt(*args)

    def close(self):
        self.sock.close()


def open_h2(port, path, timeout, tls):
    # Imported here so that the HTTP/1.1 runs need no python3-h2.
    import h2.config
    import h2.connection
    import h2.events

    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock = tls.wrap_socket(sock, server_hostname="localhost")
        if sock.selected_alpn_protocol() != "h2":
            raise ValueError(f"ALPN chose {sock.selected_alpn_protocol()!r}, not h2")
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        conn.send_headers(1, [(":method", "GET"), (":scheme", "https"),
                              (":authority", f"127.0.0.1:{port}"), (":path", path),
                              ("user-agent", "netkit-bench-idle")], end_stream=True)
        sock.sendall(conn.data_to_send())
        status = None
        ended = acked = False
        while not (ended and acked):
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed before the response ended")
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = int(dict(ev.headers)[b":status"])
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    ended = True
                elif isinstance(ev, h2.events.SettingsAcknowledged):
                    acked = True
                elif isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                    raise ConnectionError(f"the server ended the exchange: {ev}")
            pending = conn.data_to_send()
            if pending:
                sock.sendall(pending)
        if status != 200:
            raise ValueError(f"status {status}")
        return H2Conn(sock, conn)
    except (OSError, ssl.SSLError, ValueError):
        sock.close()
        raise


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
    if isinstance(sock, H2Conn):
        # What an HTTP/2 server may still send (a WINDOW_UPDATE, a PING) is not a close; a
        # GOAWAY, a close_notify, a FIN or a reset is.
        import h2.events
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN | select.POLLRDHUP)
        if not poller.poll(0):
            return True
        sock.sock.setblocking(False)
        try:
            data = sock.sock.recv(65536)
        except (ssl.SSLWantReadError, BlockingIOError):
            return True
        except OSError:
            return False
        if not data:
            return False
        try:
            events = sock.conn.receive_data(data)
        except Exception:  # a protocol error on the server's side counts as an end
            return False
        return not any(isinstance(ev, h2.events.ConnectionTerminated) for ev in events)
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
    ap.add_argument("--h2", action="store_true", help="HTTP/2 over TLS (ALPN h2)")
    args = ap.parse_args()
    tls = tls_context(args.h2) if args.tls or args.h2 else None

    pids = [int(p) for p in args.pids.split()]
    limit = raise_nofile(args.conns + 256)
    conns = min(args.conns, limit - 64)
    if conns < args.conns:
        print(f"idle: descriptor limit {limit} allows only {conns} connections", file=sys.stderr)

    if args.h2:
        def connect():
            return open_h2(args.port, args.path, 10, tls)
    else:
        def connect():
            return open_conn(args.port, request, 10, tls)
    request = (f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n"
               "User-Agent: netkit-bench-idle\r\n\r\n").encode()
    start = time.monotonic()

    # Warm up: let each worker do its first-request work (file cache, lazy tables) before the
    # baseline, so that it is not charged to the idle connections.
    for _ in range(50):
        connect().close()
    time.sleep(args.settle)
    before = rss_kb(pids)

    socks = []
    failures = 0
    try:
        while len(socks) < conns and time.monotonic() - start < args.deadline:
            try:
                socks.append(connect())
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
