"""netkit http passwd: on a terminal it prompts twice with echo off (as htpasswd does) and
refuses two different passwords; from a pipe it reads the first line, without prompts."""
import base64
import hashlib
import os
import pty
import select
import subprocess
import time
import unittest

import harness


def check_line(test, line, user, password):
    test.assertRegex(line, r"^%s:pbkdf2-sha256\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$" % user)
    _, h = line.split(":", 1)
    _, it, salt, dk = h.split("$")
    want = hashlib.pbkdf2_hmac("sha256", password, base64.b64decode(salt), int(it))
    test.assertEqual(base64.b64decode(dk), want)


class PtySession:
    """netkit with stdin and stderr on a pseudo-terminal, stdout on a pipe."""

    def __init__(self, test, args):
        self.master, slave = pty.openpty()
        test.addCleanup(os.close, self.master)
        self.proc = subprocess.Popen([harness.NETKIT] + args, stdin=slave, stdout=subprocess.PIPE,
                                     stderr=slave, start_new_session=True)
        os.close(slave)
        test.addCleanup(self._reap)
        self.seen = b""

    def _reap(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stdout.close()

    def read_until(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r on the terminal within %ss; saw %r"
                                     % (text, timeout, self.seen))
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError("terminal closed before %r; saw %r" % (text, self.seen))
                self.seen += chunk
        return self.seen

    def drain(self, timeout=2):
        """Whatever else reaches the terminal until the child exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.master], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.seen += chunk
            elif self.proc.poll() is not None:
                break
        return self.seen


class PasswdTerminal(unittest.TestCase):
    ARGS = ["http", "passwd", "bob", "--iterations", "2000"]

    def test_prompts_twice_without_echo(self):
        s = PtySession(self, self.ARGS)
        s.read_until(b"New password: ")
        os.write(s.master, b"hunter2\r")
        s.read_until(b"Re-type new password: ")
        os.write(s.master, b"hunter2\r")
        out, _ = s.proc.communicate(timeout=30)
        seen = s.drain()
        self.assertEqual(s.proc.returncode, 0, seen)
        self.assertNotIn(b"hunter2", seen, "the password was echoed")
        check_line(self, out.decode().strip(), "bob", b"hunter2")

    def test_mismatch_fails(self):
        s = PtySession(self, self.ARGS)
        s.read_until(b"New password: ")
        os.write(s.master, b"hunter2\r")
        s.read_until(b"Re-type new password: ")
        os.write(s.master, b"hunter3\r")
        out, _ = s.proc.communicate(timeout=30)
        seen = s.drain()
        self.assertEqual(s.proc.returncode, 1, seen)
        self.assertEqual(out, b"")
        self.assertIn(b"netkit: http passwd: passwords do not match", seen)
        self.assertNotIn(b"hunter", seen)

    def test_echo_restored(self):
        """After the prompts the terminal echoes again (the settings are put back)."""
        s = PtySession(self, self.ARGS)
        s.read_until(b"New password: ")
        os.write(s.master, b"x1\r")
        s.read_until(b"Re-type new password: ")
        os.write(s.master, b"x1\r")
        s.proc.communicate(timeout=30)
        import termios
        attrs = termios.tcgetattr(s.master)
        self.assertTrue(attrs[3] & termios.ECHO, "echo left off")


class PasswdPipe(unittest.TestCase):
    def test_stdin_pipe_no_prompt(self):
        r = harness.run(["http", "passwd", "ann", "--iterations", "2000"], input=b"s3cret\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"")
        check_line(self, r.stdout.decode().strip(), "ann", b"s3cret")


if __name__ == "__main__":
    unittest.main()
