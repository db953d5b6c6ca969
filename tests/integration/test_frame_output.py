"""--frame output: one received message is always one line of stdout (escaped by default for
len32, --frame-output raw|escaped|hex), and with --frame line the peer's last line is printed
even without its newline, as nc prints every byte."""
import socket
import struct
import threading
import unittest

import harness


def serve_once(test, payload):
    """A one-shot TCP peer on loopback that sends payload, then closes."""
    lsock = socket.socket()
    test.addCleanup(lsock.close)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def run():
        conn, _ = lsock.accept()
        with conn:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(10)
            try:
                while conn.recv(4096):
                    pass
            except OSError:
                pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    test.addCleanup(t.join, 10)
    return "127.0.0.1:%d" % lsock.getsockname()[1]


def len32(*msgs):
    return b"".join(struct.pack(">I", len(m)) + m for m in msgs)


class TestFrameOutput(unittest.TestCase):
    def connect(self, payload, *extra):
        addr = serve_once(self, payload)
        r = harness.run(["tcp", "connect", addr] + list(extra), input=b"", timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def test_len32_message_with_newline_is_one_line(self):
        msgs = [b"two\nlines", b"back\\slash", b"tab\there", b"\x00\x1b[2J", b"caf\xc3\xa9",
                b"\xff\xc2\x85", b""]
        r = self.connect(len32(*msgs), "--frame", "len32")
        lines = r.stdout.split(b"\n")
        self.assertEqual(lines[-1], b"")
        self.assertEqual(lines[:-1], [b"two\\nlines", b"back\\\\slash", b"tab\\there",
                                      b"\\x00\\x1b[2J", b"caf\xc3\xa9", b"\\xff\\xc2\\x85", b""])

    def test_len32_raw_and_hex(self):
        r = self.connect(len32(b"a\nb", b"c"), "--frame", "len32", "--frame-output", "raw")
        self.assertEqual(r.stdout, b"a\nb\nc\n")
        r = self.connect(len32(b"a\nb", b""), "--frame", "len32", "--frame-output", "hex")
        self.assertEqual(r.stdout, b"610a62\n\n")

    def test_frame_output_needs_frame_and_a_known_name(self):
        r = harness.run(["tcp", "connect", "127.0.0.1:9", "--frame-output", "hex"])
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--frame-output needs --frame", r.stderr)
        r = harness.run(["tcp", "connect", "127.0.0.1:9", "--frame", "line",
                         "--frame-output", "octal"])
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"unknown frame output 'octal'", r.stderr)

    def test_line_last_line_without_newline_is_printed(self):
        r = self.connect(b"first\nlast without newline", "--frame", "line")
        self.assertEqual(r.stdout, b"first\nlast without newline\n")
        self.assertIn(b"netkit: tcp connect: warning: the peer's last line had no newline",
                      r.stderr)

    def test_line_output_stays_raw_in_a_pipe(self):
        r = self.connect(b"a\\b\tc\n", "--frame", "line")
        self.assertEqual(r.stdout, b"a\\b\tc\n")


if __name__ == "__main__":
    unittest.main()
