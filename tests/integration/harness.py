"""Helpers for integration tests that drive the real `netkit` binary.

A server is started on port 0 and the test waits for its readiness line
("listening on <url>") on stderr, so there are no fixed ports and no sleeps.
Every process started through this module is killed when the test ends,
whether it passed or not (register with TestCase.addCleanup).
"""
import os
import re
import select
import signal
import subprocess
import time

NETKIT = os.environ.get("NETKIT_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "netkit")

LISTEN_RE = re.compile(r"listening on (\S+)")


class Server:
    """A running netkit server: .proc, .urls (one per listener), .stderr_lines."""

    def __init__(self, proc, urls, lines):
        self.proc = proc
        self.urls = urls
        self.stderr_lines = lines

    @property
    def url(self):
        return self.urls[0]

    def host_port(self, index=0):
        """(host, port) of a tcp/udp/http listener URL."""
        m = re.match(r"^[a-z]+://\[?([^\]]*?)\]?:(\d+)/?$", self.urls[index])
        if not m:
            raise ValueError("not a host:port url: %r" % self.urls[index])
        return m.group(1), int(m.group(2))

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Send sig and wait; returns the exit code (kills on timeout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def read_stderr(self, timeout=0.2):
        """Collect whatever the server has written to stderr since the readiness lines."""
        out = []
        end = time.monotonic() + timeout
        fd = self.proc.stderr.fileno()
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out.append(chunk.decode("utf-8", "replace"))
        return "".join(out)


def start(test, args, listeners=1, timeout=10, env=None, stdout=subprocess.DEVNULL,
          preexec_fn=None, cwd=None, program=None):
    """Start `netkit ARGS` (or `program ARGS`), wait for `listeners` readiness lines,
    register cleanup."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.Popen([program or NETKIT] + list(args), stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=subprocess.PIPE, env=full_env, preexec_fn=preexec_fn,
                            cwd=cwd)
    server = Server(proc, [], [])
    test.addCleanup(_reap, proc)
    fd = proc.stderr.fileno()
    pending = b""
    deadline = time.monotonic() + timeout
    while len(server.urls) < listeners:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("netkit %s: no readiness line within %ss; stderr: %r"
                                 % (" ".join(args), timeout, pending + b"".join(
                                     l.encode() for l in server.stderr_lines)))
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            proc.wait()
            raise AssertionError("netkit %s exited with %s before it was ready; stderr: %r"
                                 % (" ".join(args), proc.returncode,
                                    "".join(server.stderr_lines) + pending.decode()))
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            text = line.decode("utf-8", "replace")
            server.stderr_lines.append(text)
            m = LISTEN_RE.search(text)
            if m:
                server.urls.append(m.group(1))
    return server


def run(args, input=None, timeout=30, env=None):
    """Run netkit to completion: CompletedProcess with text stdout/stderr."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run([NETKIT] + list(args), input=input, capture_output=True,
                          timeout=timeout, env=full_env)


def _reap(proc):
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream:
            stream.close()


def raise_nofile(minimum):
    """Raise this process's RLIMIT_NOFILE soft limit to at least `minimum` (up to the hard
    limit). Returns True when the soft limit is now >= minimum."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < minimum:
        target = minimum if hard == resource.RLIM_INFINITY else min(minimum, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft == resource.RLIM_INFINITY or soft >= minimum


def nofile_preexec(minimum):
    """A preexec_fn for start(): the child's RLIMIT_NOFILE soft limit raised to `minimum`
    (or as far as the hard limit allows)."""
    def preexec():
        raise_nofile(minimum)
    return preexec


def stream_roundtrip(sock, payload, timeout=30):
    """Send payload on a stream socket while reading what comes back, until as many bytes
    came back as were sent (so neither side's buffers can fill and deadlock). Returns the
    bytes received; fewer than sent when the peer closed. Raises TimeoutError after
    `timeout` seconds."""
    sock.setblocking(False)
    view = memoryview(payload)
    sent = 0
    got = bytearray()
    deadline = time.monotonic() + timeout
    while len(got) < len(payload):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("echo of %d bytes: sent %d, received %d"
                               % (len(payload), sent, len(got)))
        wlist = [sock] if sent < len(payload) else []
        r, w, _ = select.select([sock], wlist, [], left)
        if w:
            try:
                sent += sock.send(view[sent:sent + 65536])
            except BlockingIOError:
                pass
        if r:
            try:
                chunk = sock.recv(262144)
            except BlockingIOError:
                continue
            if not chunk:
                break
            got += chunk
    return bytes(got)
