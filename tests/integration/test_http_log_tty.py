"""The access log on a terminal: a request's line shows up at once, not when the engine's
one-second flush timer fires (to a file or a pipe the lines stay batched)."""
import os
import pty
import select
import tempfile
import time
import unittest

import harness

# Well under the engine's 1 s batching, well over a loaded machine's scheduling delays.
BOUND_S = 0.7


class LogOnTerminal(unittest.TestCase):
    def test_line_appears_at_once(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        with open(os.path.join(tmp.name, "hello.txt"), "w") as f:
            f.write("hello\n")
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        srv = harness.start(self, ["http", "serve", tmp.name, "-l", "127.0.0.1:0", "-w", "1"],
                            stdout=slave)
        os.close(slave)
        url = srv.url
        for i in range(2):  # the first line, and one while the flush timer may be running
            path = "/hello.txt?n=%d" % i
            with harness.urlopen(url + path, timeout=10) as r:
                self.assertEqual(r.read(), b"hello\n")
            t0 = time.monotonic()
            seen = b""
            marker = ('"GET %s %s" 200' % (path, harness.PROTOCOL)).encode()
            # A terminal's output processing turns "\n" into "\r\n" apart from the text before
            # it, so one write of the server can reach the reader in two reads: wait for the
            # line's end, not only its text.
            while marker not in seen or not seen.endswith(b"\r\n"):
                left = t0 + BOUND_S - time.monotonic()
                if left <= 0:
                    self.fail("no log line for %s within %.1f s; terminal shows %r"
                              % (path, BOUND_S, seen))
                if select.select([master], [], [], left)[0]:
                    seen += os.read(master, 4096)
            self.assertIn(b"127.0.0.1 - - [", seen)
            self.assertTrue(seen.endswith(b"\r\n"), seen)


if __name__ == "__main__":
    unittest.main()
