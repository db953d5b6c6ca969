#!/usr/bin/env python3
"""Kernel memory pinned by clients that ask for a large file and never read it.

Starts a server (netkit, or nginx when asked and installed) on 127.0.0.1 over a temporary
docroot holding a 10 MiB file, opens CONNS connections that each send one GET for it and then
never read, and reports the kernel's TCP memory (/proc/net/sockstat, "TCP: ... mem N", in
pages, counting every TCP socket of this network namespace: the server's send queues and the
clients' receive queues) before, at its peak while the clients stall, and after they are gone,
plus the bytes queued on the server's side (the tx_queue column of /proc/net/tcp).

    bench/stalled.py                                  # netkit from NETKIT_BIN or build/netkit
    bench/stalled.py --server nginx
    bench/stalled.py -- --sndbuf 65536                # extra arguments for netkit http serve

Opt-in: not part of the test suite; it prints figures and never passes or fails on them.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


def tcp_mem_pages():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                m = re.search(r"\bmem (\d+)", line)
                return int(m.group(1)) if m else 0
    return 0


def server_tx_queue(port):
    """Bytes in the send queues of the sockets whose local port is `port` (the server's)."""
    total = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local_port = int(fields[1].rsplit(":", 1)[1], 16)
                    if local_port == port:
                        total += int(fields[4].split(":")[0], 16)
        except OSError:
            pass
    return total


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, proc, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit("server exited with %s before listening" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not listen on %d within %ss" % (port, timeout))


def start_netkit(root, port, extra):
    binary = os.environ.get("NETKIT_BIN") or os.path.join(HERE, "..", "build", "netkit")
    if not os.access(binary, os.X_OK):
        raise SystemExit("no netkit executable at %s (set NETKIT_BIN)" % binary)
    args = [binary, "http", "serve", root, "-l", "127.0.0.1:%d" % port, "-w", "1",
            "--access-log", "off"] + extra
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def start_nginx(root, port, work):
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(binary, os.X_OK):
        raise SystemExit("nginx is not installed (scripts/install-deps bench)")
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""daemon off; worker_processes 1; pid %(w)s/nginx.pid; error_log %(w)s/error.log;
events { worker_connections 4096; }
http { access_log off; sendfile on; client_body_temp_path %(w)s; proxy_temp_path %(w)s;
  fastcgi_temp_path %(w)s; uwsgi_temp_path %(w)s; scgi_temp_path %(w)s;
  server { listen 127.0.0.1:%(p)d; root %(r)s; } }
""" % {"w": work, "p": port, "r": root})
    return subprocess.Popen([binary, "-p", work, "-c", conf], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", choices=("netkit", "nginx"), default="netkit")
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--hold", type=float, default=5.0, help="seconds the clients stall")
    ap.add_argument("extra", nargs="*", help="extra netkit http serve arguments (after --)")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="netkit-stalled-")
    root = os.path.join(work, "root")
    os.mkdir(root)
    with open(os.path.join(root, "10m.bin"), "wb") as f:
        f.write(os.urandom(10 * MIB))
    port = free_port()
    proc = start_netkit(root, port, a.extra) if a.server == "netkit" else start_nginx(root, port, work)
    clients = []
    try:
        wait_listening(port, proc)
        time.sleep(0.3)
        before = tcp_mem_pages()
        for _ in range(a.conns):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /10m.bin HTTP/1.1\r\nHost: bench\r\n\r\n")
            clients.append(s)
        peak, peak_tx = before, 0
        end = time.monotonic() + a.hold
        while time.monotonic() < end:
            peak = max(peak, tcp_mem_pages())
            peak_tx = max(peak_tx, server_tx_queue(port))
            time.sleep(0.1)
        for s in clients:
            s.close()
        clients = []
        time.sleep(1.0)
        after = tcp_mem_pages()
        label = a.server + ((" " + " ".join(a.extra)) if a.extra else "")
        print("%s: %d stalled clients x 10 MiB" % (label, a.conns))
        print("  TCP mem before  %8d pages (%7.1f MiB)" % (before, before * PAGE / MIB))
        print("  TCP mem peak    %8d pages (%7.1f MiB), +%.1f MiB, %.0f KiB per client"
              % (peak, peak * PAGE / MIB, (peak - before) * PAGE / MIB,
                 (peak - before) * PAGE / 1024 / a.conns))
        print("  server send queues at peak %.1f MiB" % (peak_tx / MIB))
        print("  TCP mem after   %8d pages (%7.1f MiB)" % (after, after * PAGE / MIB))
    finally:
        for s in clients:
            s.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
