#!/usr/bin/env python3
"""Hold N idle TCP connections open to an echo server. Used by bench/backends.sh.

Each connection sends one byte and waits for it to come back before it counts: a connect alone
only proves the kernel queued it, the echo proves the server accepted it and watches it (a
select server closes what it cannot watch, which then shows as a failure here). Connections are
opened in batches smaller than the listen backlog, so none waits on a SYN retransmission.

Once all are open it prints "ready N" on stdout and then stays silent until stdin reaches end of
file, SIGTERM or SIGINT arrives, or --hold seconds pass (a bound in case nobody stops it). On the
way out it prints "held N closed_by_server K". With --watch-parent it also leaves when the
process that started it dies (it is re-parented), so a caller killed with SIGKILL, whose
descriptors other children may keep open, does not leave it behind.

Exit status: 0 after a normal stop, 1 when the connections could not be opened.
"""

import argparse
import os
import resource
import select
import signal
import socket
import sys
import time


class Stop(Exception):
    pass


def on_signal(signum, frame):
    raise Stop()


def raise_nofile(want):
    """Raise the soft descriptor limit to want (at most the hard limit); return the new soft."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def open_batch(host, port, count, timeout):
    """Open count connections, send one byte on each, then read it back on each."""
    socks = []
    try:
        for _ in range(count):
            s = socket.create_connection((host, port), timeout=timeout)
            socks.append(s)
            s.sendall(b"i")
        for s in socks:
            if s.recv(1) != b"i":
                raise ConnectionError("the server closed a connection instead of echoing")
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def closed_by_server(socks):
    """How many of socks the server has closed (readable with end of file, or reset)."""
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, required=True, help="connections to hold (0 to 100000)")
    ap.add_argument("--batch", type=int, default=500,
                    help="connections opened before their echoes are read (keep under the backlog)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per socket operation")
    ap.add_argument("--deadline", type=float, default=60.0, help="seconds to open them all")
    ap.add_argument("--hold", type=float, default=600.0, help="seconds to hold them at most")
    ap.add_argument("--watch-parent", action="store_true",
                    help="stop when the parent process goes away (checked every second)")
    args = ap.parse_args()
    if not 0 <= args.conns <= 100000 or args.batch < 1:
        ap.error("--conns must be 0 to 100000 and --batch at least 1")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    parent = os.getppid()

    # stdin, stdout, stderr and a few spare descriptors besides the connections.
    have = raise_nofile(args.conns + 32)
    if have < args.conns + 16:
        print(f"idle_holder: descriptor limit {have} is too low for {args.conns} connections",
              file=sys.stderr)
        return 1

    socks = []
    try:
        start = time.monotonic()
        while len(socks) < args.conns:
            if time.monotonic() - start > args.deadline:
                raise TimeoutError(f"only {len(socks)} connected after {args.deadline:.0f} s")
            n = min(args.batch, args.conns - len(socks))
            socks += open_batch(args.host, args.port, n, args.timeout)
        print(f"ready {len(socks)}", flush=True)

        # Wait for end of input (the caller went away or closed the pipe) or a signal. stdin is
        # descriptor 0, so select() is fine whatever the number of connections.
        end = time.monotonic() + args.hold
        while True:
            left = end - time.monotonic()
            if left <= 0:
                print("idle_holder: --hold time is over", file=sys.stderr)
                break
            r, _, _ = select.select([sys.stdin], [], [], min(left, 1.0))
            if r and not sys.stdin.buffer.read1(4096):
                break
            if args.watch_parent and os.getppid() != parent:
                print("idle_holder: the parent process went away", file=sys.stderr)
                break
    except Stop:
        pass
    except (OSError, TimeoutError, ConnectionError) as e:
        print(f"idle_holder: {len(socks)} of {args.conns} connected: {e}", file=sys.stderr)
        for s in socks:
            s.close()
        return 1

    # Ignore further signals while reporting; the report is quick and bounded.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print(f"held {len(socks)} closed_by_server {closed_by_server(socks)}", flush=True)
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
