"""README.md is executed: every command line of every ```sh block runs as written, in order, in
a scratch directory on loopback, with `netkit` the binary under test.

- Servers (a `serve`, `listen` or `sniff` command, or a line ending in `&`) run in the
  background until the end of the block's run (bounded: all of them are killed in clean-up);
  a server must print its "listening on" line, a line ending in `&` must leave its shell with
  status 0. Every other line must exit 0 within LINE_TIMEOUT seconds.
- The README's fixed ports are replaced by free ones (the same port by the same free port
  everywhere, so that clients reach the servers started before them), /tmp/ paths by the
  scratch directory; `www` is the repository's demo site and `big.iso` a small file made here.
- Skipped, with the reason printed: `make` lines (they would run the whole suite from inside
  it) and raw-socket lines (`ping`, `sniff`) when not root.
"""
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import harness

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
README = os.path.join(ROOT, "README.md")
LINE_TIMEOUT = 30
READY_TIMEOUT = 10


def sh_lines(text):
    """(line number, command line) for every command of every ```sh block."""
    out, inside = [], False
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            inside = line.strip() == "```sh" if not inside else False
            continue
        if inside and line.strip() and not line.lstrip().startswith("#"):
            out.append((n, line.strip()))
    return out


def words(line):
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.commenters = "#"
    lex.whitespace_split = True
    return list(lex)


def free_port():
    """A port free for TCP and UDP on 127.0.0.1 and ::1 right now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            for fam, typ, host in ((socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1"),
                                   (socket.AF_INET6, socket.SOCK_STREAM, "::1"),
                                   (socket.AF_INET6, socket.SOCK_DGRAM, "::1")):
                with socket.socket(fam, typ) as s:
                    s.bind((host, port))
            return port
        except OSError:
            continue
    raise AssertionError("no free port")


class TestReadme(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="nk-readme-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        bindir = os.path.join(self.dir, "bin")
        os.mkdir(bindir)
        os.symlink(os.path.abspath(harness.NETKIT), os.path.join(bindir, "netkit"))
        self.env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
        os.symlink(os.path.join(ROOT, "www"), os.path.join(self.dir, "www"))
        with open(os.path.join(self.dir, "big.iso"), "wb") as f:
            f.write(os.urandom(1 << 20))
        self.procs = []
        self.addCleanup(self.stop_all)

    def stop_all(self):
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        for proc in self.procs:
            while time.monotonic() < deadline:
                try:
                    os.killpg(proc.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def localise(self, line, ports):
        for readme_port, port in ports.items():
            line = re.sub(r"(?<![\d.])%d(?!\d)" % readme_port, str(port), line)
        return line.replace("/tmp/", self.dir + "/")

    def start(self, line, stderr):
        proc = subprocess.Popen(["bash", "-c", line], cwd=self.dir, env=self.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=stderr, start_new_session=True)
        self.procs.append(proc)
        return proc

    def wait_listening(self, proc, line):
        deadline = time.monotonic() + READY_TIMEOUT
        seen = b""
        fd = proc.stderr.fileno()
        os.set_blocking(fd, False)
        while time.monotonic() < deadline:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                chunk = None
            if chunk:
                seen += chunk
                if b"listening on" in seen:
                    return
            elif chunk == b"" or proc.poll() is not None:
                self.fail("README line %r ended before it was ready (status %s): %r"
                          % (line, proc.poll(), seen))
            else:
                time.sleep(0.05)
        self.fail("README line %r: no 'listening on' within %d s: %r"
                  % (line, READY_TIMEOUT, seen))

    def test_every_readme_command_runs(self):
        with open(README) as f:
            lines = sh_lines(f.read())
        self.assertGreater(len(lines), 20)
        readme_ports = set()
        for _, line in lines:
            readme_ports.update(int(p) for p in re.findall(r":(\d{4,5})\b", line))
            readme_ports.update(int(p) for p in re.findall(r"broadcast \w+ (\d{4,5})\b", line))
        ports = {p: free_port() for p in sorted(readme_ports)}
        ran = 0
        for n, text in lines:
            w = words(text)
            if w[0] == "make":
                print("README.md:%d: skipped %r: make targets are not run from inside the "
                      "suite" % (n, text), file=sys.stderr)
                continue
            raw = "ping" in w[:2] or "sniff" in w[:2]
            if raw and os.geteuid() != 0:
                print("README.md:%d: skipped %r: raw sockets need root" % (n, text),
                      file=sys.stderr)
                continue
            line = self.localise(text, ports)
            with self.subTest(line=n, command=text):
                ran += 1
                if w[-1] == "&":
                    proc = self.start(line, subprocess.DEVNULL)
                    self.assertEqual(proc.wait(LINE_TIMEOUT), 0, text)
                elif "&" in w or "--help" in w or not ({"serve", "listen"} & set(w[:3]) or
                                                      "sniff" in w[:2]):
                    # stderr to a file: a server this line backgrounds keeps a pipe open
                    with tempfile.TemporaryFile() as err:
                        proc = self.start(line, err)
                        try:
                            proc.wait(LINE_TIMEOUT)
                        except subprocess.TimeoutExpired:
                            self.fail("README.md:%d %r still running after %d s"
                                      % (n, text, LINE_TIMEOUT))
                        err.seek(0)
                        self.assertEqual(proc.returncode, 0,
                                         "README.md:%d %r: %r" % (n, text, err.read()))
                elif "sniff" in w[:2]:
                    proc = self.start(line, subprocess.DEVNULL)
                    time.sleep(1)
                    self.assertIsNone(proc.poll(), "README.md:%d %r exited" % (n, text))
                else:
                    proc = self.start(line, subprocess.PIPE)
                    self.addCleanup(proc.stderr.close)
                    self.wait_listening(proc, text)
        self.assertGreater(ran, 20)
        # The file transfer line really moved the file.
        with open(os.path.join(self.dir, "big.iso"), "rb") as a, \
                open(os.path.join(self.dir, "inbox", "big.iso"), "rb") as b:
            self.assertEqual(a.read(), b.read())


if __name__ == "__main__":
    unittest.main()
