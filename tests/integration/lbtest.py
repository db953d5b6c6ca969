"""Helpers for the tests of http serve behind a real load balancer (test_proxy_haproxy.py,
test_lb_nginx.py): the balancer configurations are the files in contrib/, with their
@PLACEHOLDERS@ filled in; nodes are `http serve` on proxy+http:// listeners, each in a session
of its own so that a test can SIGKILL one whole node; clients connect from 127.0.0.2 while the
balancer reaches the nodes from 127.0.0.1, so a node that logs 127.0.0.2 took the client from
the PROXY header."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import harness

CONTRIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "contrib")
WRK = shutil.which("wrk")
CLIENT_ADDR = "127.0.0.2"
PAGE = b"hello\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill(name, values):
    """contrib/NAME with every @KEY@ replaced by values[KEY]; fails on a placeholder left."""
    with open(os.path.join(CONTRIB, name)) as f:
        text = f.read()
    for key, value in values.items():
        if "@%s@" % key not in text:
            raise AssertionError("contrib/%s has no @%s@" % (name, key))
        text = text.replace("@%s@" % key, str(value))
    left = re.findall(r"@[A-Z0-9_]+@", text)
    if left:
        raise AssertionError("contrib/%s: placeholders left unfilled: %s" % (name, left))
    return text


def get_via(port, path="/a.txt", timeout=5.0):
    """GET through the balancer from CLIENT_ADDR, Connection: close: (status, body)."""
    data = b""
    with socket.socket() as s:
        s.settimeout(timeout)
        s.bind((CLIENT_ADDR, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0, body


def try_get(port, path="/a.txt"):
    try:
        return get_via(port, path)[0]
    except OSError:
        return 0


def wait_for(cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


class Node:
    """One `http serve` node: .srv (harness.Server), .addr ("127.0.0.1:PORT"), .log (path)."""

    def __init__(self, srv, log):
        self.srv = srv
        self.log = log
        self.addr = re.sub(r"^[a-z+]+://", "", srv.url).rstrip("/")  # 127.0.0.1:PORT

    def kill(self):
        """SIGKILL the node's whole process group (workers included), as a crash would."""
        kill_group(self.srv.proc.pid)
        self.srv.proc.wait(timeout=10)

    def log_text(self):
        with open(self.log) as f:
            return f.read()

    def log_lines(self, want=None, wait=3.0):
        """The access log's lines, waiting up to `wait` s for one holding `want` (the log is
        written in batches, at least once a second)."""
        end = time.monotonic() + wait
        while True:
            text = self.log_text() if os.path.exists(self.log) else ""
            if want is None or want in text or time.monotonic() >= end:
                return text.splitlines()
            time.sleep(0.1)


def kill_group(pgid):
    """SIGKILL a node's process group (what is left of it after an upgrade: the new server)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def assert_clients_logged(test, nodes, marker):
    """Every node served requests whose target holds marker, and logged each of them from
    CLIENT_ADDR (the client in the PROXY header), not from the balancer."""
    for i, node in enumerate(nodes):
        lines = [l for l in node.log_lines(marker) if marker in l]
        test.assertTrue(lines, "node %d (%s) served nothing" % (i + 1, node.addr))
        for line in lines:
            test.assertTrue(line.startswith(CLIENT_ADDR + " "), line)


def start_nodes(test, workdir, count, proxy_from="127.0.0.1/32", grace=4):
    """Start `count` nodes serving workdir/www (a.txt holds PAGE) on proxy+http:// listeners,
    with --health /health and --health-grace `grace`."""
    root = os.path.join(workdir, "www")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "a.txt"), "wb") as f:
        f.write(PAGE)
    nodes = []
    for i in range(count):
        log = os.path.join(workdir, "node%d.log" % (i + 1))
        srv = harness.start(test, ["http", "serve", root, "-w", "1",
                                   "-l", "proxy+http://127.0.0.1:0", "--proxy-from", proxy_from,
                                   "--access-log", log, "--health", "/health",
                                   "--health-grace", str(grace)],
                            preexec_fn=os.setsid)
        nodes.append(Node(srv, log))
    return nodes


def start_balancer(test, argv, port, log, ready, attempts=5):
    """Run a balancer (argv, stdout and stderr into log) until ready() or it exits; a balancer
    that could not bind its port (taken between free_port and its start) is the caller's to
    retry: returns None then. Stopped (SIGKILL by PID) at the end of the test."""
    out = open(log, "ab")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    test.addCleanup(harness._reap, proc)
    if wait_for(lambda: proc.poll() is not None or ready(), 10) and proc.poll() is None:
        return proc
    harness._reap(proc)
    with open(log, errors="replace") as f:
        text = f.read()
    if "in use" in text.lower():
        return None
    raise AssertionError("%s did not start on port %d: %s" % (argv[0], port, text[-2000:]))


class Wrk:
    """wrk in the background against url, for `seconds` s: .result() waits and parses."""

    def __init__(self, test, url, seconds=3, conns=8, out=None):
        self.out = out
        self.proc = subprocess.Popen([WRK, "-t1", "-c%d" % conns, "-d%ds" % seconds,
                                      "--timeout", "5s", url],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        test.addCleanup(harness._reap, self.proc)
        self.seconds = seconds

    def result(self):
        """{"requests", "non2xx", "socket_errors", "text"} from wrk's report."""
        text, _ = self.proc.communicate(timeout=self.seconds + 30)
        return parse_wrk(text.decode("utf-8", "replace"))


def parse_wrk(text):
    m = re.search(r"^\s*(\d+) requests in ", text, re.M)
    if not m:
        raise AssertionError("no summary in wrk's output: %r" % text)
    errors = 0
    m2 = re.search(r"^\s*Socket errors: (.*)$", text, re.M)
    if m2:  # "connect 0, read 1, write 0, timeout 0"
        errors = sum(int(n) for n in re.findall(r"\d+", m2.group(1)))
    m3 = re.search(r"^\s*Non-2xx or 3xx responses: (\d+)", text, re.M)
    return {"requests": int(m.group(1)), "socket_errors": errors,
            "non2xx": int(m3.group(1)) if m3 else 0, "text": text}
