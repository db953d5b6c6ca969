"""`netkit chat`: five members, ordering and exactly-once delivery, /nick, /who, duplicate
names, abrupt leaves, flow control (a slow reader gets everything, a member that never reads is
dropped within the send timeout) and connections that never say HELLO."""
import os
import signal
import socket
import struct
import subprocess
import threading
import time
import unittest

import harness


class Member:
    """A `netkit chat join` process; its stdout lines are collected by a thread."""

    def __init__(self, test, addr, name):
        self.name = name
        self.proc = subprocess.Popen([harness.NETKIT, "chat", "join", addr, "--name", name],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        test.addCleanup(harness._reap, self.proc)
        self.lines = []
        self.times = []  # arrival time of each line, to measure stalls
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(raw.decode().rstrip("\n"))
                self.times.append(time.monotonic())
                self.cond.notify_all()

    def say(self, text):
        self.proc.stdin.write((text + "\n").encode())
        self.proc.stdin.flush()

    def wait_for(self, pred, timeout=20, what="a line"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.lines):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s: no %s within %ss; got %r"
                                         % (self.name, what, timeout, self.lines[-10:]))
                self.cond.wait(left)

    def wait_line(self, line, timeout=20):
        self.wait_for(lambda ls: line in ls, timeout, repr(line))

    def messages(self):
        with self.cond:
            return [l for l in self.lines if l.startswith("[")]


def frame(text):
    data = text.encode()
    return struct.pack(">I", len(data)) + data


def read_frame(sock):
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    n = struct.unpack(">I", head)[0]
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            return None
        body += chunk
    return body.decode()


def read_frame_skip(sock, prefix):
    """The next frame starting with prefix (others, such as the rest of a flood, skipped)."""
    while True:
        msg = read_frame(sock)
        if msg is None or msg.startswith(prefix):
            return msg


class TestChat(unittest.TestCase):
    def setUp(self):
        self.server = harness.start(self, ["chat", "serve", "127.0.0.1:0"])
        self.assertRegex(self.server.url, r"^tcp://127\.0\.0\.1:\d+$")
        self.addr = "%s:%d" % self.server.host_port()

    def join_all(self, names):
        members = []
        for name in names:
            m = Member(self, self.addr, name)
            m.wait_for(lambda ls: any(l.startswith("* joined as ") for l in ls), what="welcome")
            for other in members:
                other.wait_line("* %s joined" % name)
            members.append(m)
        return members

    def raw_join(self, name, rcvbuf=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(10)
        s.connect(self.server.host_port())
        self.addCleanup(s.close)
        s.sendall(frame("HELLO " + name))
        self.assertTrue(read_frame(s).startswith("WELCOME %s " % name))
        return s

    def test_five_members_order_and_exactly_once(self):
        names = ["alice", "bob", "carol", "dave", "erin"]
        members = self.join_all(names)
        per = 40
        threads = []
        for m in members:
            def talk(m=m):
                for i in range(per):
                    m.say("%s says %d" % (m.name, i))
            threads.append(threading.Thread(target=talk))
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        expect = per * (len(names) - 1)
        for m in members:
            m.wait_for(lambda ls: len([l for l in ls if l.startswith("[")]) >= expect,
                       what="%d messages" % expect)
        time.sleep(0.2)  # anything extra (a duplicate) would arrive now
        orders = {}
        for m in members:
            got = m.messages()
            self.assertEqual(len(got), expect, "%s got %d messages" % (m.name, len(got)))
            for sender in names:
                mine = [l for l in got if l.startswith("[%s] " % sender)]
                if sender == m.name:
                    self.assertEqual(mine, [], "own messages echoed")
                else:
                    self.assertEqual(mine, ["[%s] %s says %d" % (sender, sender, i)
                                            for i in range(per)])
            orders[m.name] = got
        # One server order: any two members see their common messages in the same order.
        for a in names:
            for b in names:
                common_a = [l for l in orders[a] if not l.startswith("[%s] " % b)]
                common_b = [l for l in orders[b] if not l.startswith("[%s] " % a)]
                self.assertEqual(common_a, common_b)
        for m in members:
            m.proc.stdin.close()  # EOF: leave gracefully
        for m in members:
            self.assertEqual(m.proc.wait(10), 0, m.proc.stderr.read())

    def test_nick_who_and_duplicate_name(self):
        alice, bob = self.join_all(["alice", "bob"])
        dup = subprocess.run([harness.NETKIT, "chat", "join", self.addr, "--name", "alice"],
                             input=b"", capture_output=True, timeout=10)
        self.assertEqual(dup.returncode, 1)
        self.assertIn(b"netkit: chat join: the name 'alice' is taken (try --name alice2)",
                      dup.stderr)
        bob.say("/nick robert")
        alice.wait_line("* bob is now known as robert")
        bob.wait_line("* bob is now known as robert")
        bob.say("/nick alice")
        bob.wait_line("! name taken: alice (try alice2)")
        alice.say("/who")
        alice.wait_for(lambda ls: any(l in ("* members: alice, robert", "* members: robert, alice") for l in ls), what="member list")
        bob.say("hi")
        alice.wait_line("[robert] hi")
        alice.proc.stdin.close()
        bob.wait_line("* alice left")
        self.assertEqual(alice.proc.wait(10), 0)

    def test_abrupt_leaves(self):
        alice, bob = self.join_all(["alice", "bob"])
        os.kill(bob.proc.pid, signal.SIGKILL)
        alice.wait_line("* bob left")
        raw = self.raw_join("carol")
        alice.wait_line("* carol joined")
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()  # RST
        alice.wait_for(lambda ls: any(l.startswith("* carol left") for l in ls),
                       what="carol's leave")
        alice.say("still here")
        dave = self.join_all(["dave"])[0]
        alice.say("hello dave")
        dave.wait_line("[alice] hello dave")

    def test_member_that_never_reads_is_dropped(self):
        # Own server with a short send timeout, to keep the test quick.
        timeout = 2
        server = harness.start(self, ["chat", "serve", "127.0.0.1:0",
                                      "--send-timeout", str(timeout)])
        self.addr = "%s:%d" % server.host_port()
        self.server = server
        alice, bob = self.join_all(["alice", "bob"])
        # turtle reads, but slowly (small reads with pauses): it must get every message and
        # must not be dropped; slow joins and never reads: it must be dropped.
        turtle = self.raw_join("turtle", rcvbuf=16384)
        turtle.settimeout(30)
        alice.wait_line("* turtle joined")
        slow = self.raw_join("slow", rcvbuf=4096)
        alice.wait_line("* slow joined")
        text = "x" * 30000
        count = 300  # 9 MB: far past the low-water mark, the hard cap and every socket buffer
        turtle_got = []

        def turtle_read():
            buf = b""
            while len([m for m in turtle_got if m.startswith("MSG ")]) < count:
                try:
                    chunk = turtle.recv(8192)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                    n = struct.unpack(">I", buf[:4])[0]
                    turtle_got.append(buf[4:4 + n].decode())
                    buf = buf[4 + n:]
                time.sleep(0.002)

        reader = threading.Thread(target=turtle_read, daemon=True)
        reader.start()
        feeder = threading.Thread(target=lambda: [alice.say("%d %s" % (i, text))
                                                  for i in range(count)], daemon=True)
        started = time.monotonic()
        feeder.start()
        bob.wait_for(lambda ls: len([l for l in ls if l.startswith("[alice] ")]) >= count,
                     timeout=45, what="all of alice's messages")
        feeder.join(10)
        self.assertFalse(feeder.is_alive(), "alice's input was never all taken")
        bob.wait_line("* slow dropped (not reading)")
        reader.join(30)
        self.assertFalse(reader.is_alive(), "turtle did not get all of alice's messages")
        expect = ["[alice] %d %s" % (i, text) for i in range(count)]
        got = [l for l in bob.lines if l.startswith("[alice] ")]
        self.assertEqual(got, expect)
        self.assertEqual([m for m in turtle_got if m.startswith("MSG ")],
                         ["MSG alice %d %s" % (i, text) for i in range(count)])
        self.assertIn("DROP slow not reading", turtle_got)
        self.assertNotIn("turtle", " ".join(l for l in bob.lines if l.startswith("* ")
                                            and "joined" not in l))
        # The never-reading member stalled the others once, for about the send timeout, and
        # no longer: no gap between two of bob's lines comes near twice that.
        with bob.cond:
            times = [started] + [t for t in bob.times if t >= started]
        gap = max(b - a for a, b in zip(times, times[1:]))
        self.assertLess(gap, 2 * timeout + 1, "bob stalled for %.1fs" % gap)
        # slow's connection was closed by the server.
        slow.settimeout(10)
        data = b""
        try:
            while True:
                chunk = slow.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        self.assertIsNone(server.proc.poll())
        # Everyone left is still served.
        bob.say("after the flood")
        alice.wait_line("[bob] after the flood")
        self.assertEqual(read_frame_skip(turtle, "MSG bob "), "MSG bob after the flood")

    def test_message_size_limit(self):
        # A frame at the decoder's limit (MSG + 65,532 bytes) once passed, and its relay, with
        # the sender's name added, was over every receiver's limit: each of them was dropped as
        # "not reading". The server enforces the 60,000-byte text limit itself: the sender
        # gets ERR and stays joined, nobody else notices.
        alice, bob = self.join_all(["alice", "bob"])
        name = "m" * 32  # the longest name makes the longest relayed frame
        mallory = self.raw_join(name)
        alice.wait_line("* %s joined" % name)
        watcher = self.raw_join("watcher")
        for text in ("y" * 65532, "z" * 60001):
            mallory.sendall(frame("MSG " + text))
            self.assertEqual(read_frame_skip(mallory, "ERR "),
                             "ERR message too long (at most 60000 bytes)")
        at_limit = "w" * 60000
        mallory.sendall(frame("MSG " + at_limit))
        mallory.sendall(frame("MSG still here"))
        self.assertEqual(read_frame_skip(watcher, "MSG "), "MSG %s %s" % (name, at_limit))
        self.assertEqual(read_frame_skip(watcher, "MSG "), "MSG %s still here" % name)
        for m in (alice, bob):
            m.wait_line("[%s] still here" % name)
            self.assertEqual(m.messages(), ["[%s] %s" % (name, at_limit),
                                            "[%s] still here" % name])
            self.assertFalse([l for l in m.lines if "dropped" in l or " left" in l], m.lines)
        # everyone is still connected and served, mallory included
        bob.say("/who")
        bob.wait_for(lambda ls: any(l.startswith("* members:") and name in l and "alice" in l
                                    and "watcher" in l for l in ls), what="member list")
        alice.say("hello all")
        bob.wait_line("[alice] hello all")
        self.assertEqual(read_frame_skip(mallory, "MSG "), "MSG alice hello all")
        self.assertIsNone(alice.proc.poll())
        self.assertIsNone(bob.proc.poll())

    def test_join_with_empty_input(self):
        # stdin at end of input before anything is typed: leave cleanly (and, under the
        # sanitizers, without memchr on an empty buffer)
        r = subprocess.run([harness.NETKIT, "chat", "join", self.addr, "--name", "quiet"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_c1_controls_refused_by_the_server(self):
        alice, bob = self.join_all(["alice", "bob"])
        raw = self.raw_join("raw")
        for text in (b"csi \xc2\x9b2J", b"raw \x9b2J", b"esc \x1b[2J", b"del \x7f"):
            payload = b"MSG " + text
            raw.sendall(struct.pack(">I", len(payload)) + payload)
            self.assertEqual(read_frame_skip(raw, "ERR "),
                             "ERR control characters are not allowed")
        raw.sendall(frame("MSG caf\u00e9 \u00a0ok"))  # UTF-8 text is not a control
        alice.wait_line("[raw] caf\u00e9 \u00a0ok")
        self.assertEqual(alice.messages(), ["[raw] caf\u00e9 \u00a0ok"])

    def test_join_escapes_what_the_server_sends(self):
        # A hostile server: every field it sends reaches the terminal escaped (C0 but the
        # line's own newline, DEL, raw bytes that are not UTF-8, C1 in UTF-8), while valid
        # UTF-8 text and tabs pass.
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(lsock.close)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        proc = subprocess.Popen([harness.NETKIT, "chat", "join",
                                 "127.0.0.1:%d" % lsock.getsockname()[1], "--name", "me"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        self.addCleanup(harness._reap, proc)
        lsock.settimeout(10)
        conn, _ = lsock.accept()
        self.addCleanup(conn.close)
        conn.settimeout(10)
        self.assertEqual(read_frame(conn), "HELLO me")
        hostile = [b"WELCOME me 1", b"JOIN ev\x1b]0;pwned\x07il", b"MSG ev\xc2\x9bil t\x9b2J\ta\x7fb",
                   b"MSG x caf\xc3\xa9 \xc4\x9b", b"ERR bad\r\nline\x1b[2J",
                   b"WHO a \xc2\x85b", b"LEAVE ev\xc2\x9bil why\x9b", b"NICK a b\xc2\x9d"]
        conn.sendall(b"".join(struct.pack(">I", len(m)) + m for m in hostile))
        proc.stdin.close()
        self.assertEqual(read_frame(conn), "QUIT")
        conn.sendall(frame("BYE"))
        conn.close()
        out = proc.stdout.read()
        self.assertEqual(proc.wait(10), 0, proc.stderr.read())
        self.assertEqual(out.split(b"\n"), [
            b"* joined as me (1 online)",
            b"* ev\\x1b]0;pwned\\x07il joined",
            b"[ev\\u009bil] t\\x9b2J\ta\\x7fb",
            b"[x] caf\xc3\xa9 \xc4\x9b",
            b"! bad\\x0d\\x0aline\\x1b[2J",
            b"* members: a, \\u0085b",
            b"* ev\\u009bil left (why\\x9b)",
            b"* a is now known as b\\u009d",
            b""])

    def test_silent_connection_is_closed(self):
        server = harness.start(self, ["chat", "serve", "127.0.0.1:0", "--max-clients", "1",
                                      "--hello-timeout", "1"])
        silent = socket.create_connection(server.host_port(), timeout=10)
        self.addCleanup(silent.close)
        t0 = time.monotonic()
        self.assertEqual(silent.recv(100), b"")  # closed by the server, no HELLO sent
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        # Its slot is free again: a member can join (--max-clients 1).
        self.addr = "%s:%d" % server.host_port()
        self.join_all(["alice"])
        self.assertIn("sent no HELLO within 1 s", server.read_stderr(0.5))

    def test_bad_timeouts(self):
        for opt in ("--send-timeout", "--hello-timeout"):
            r = subprocess.run([harness.NETKIT, "chat", "serve", "127.0.0.1:0", opt, "0"],
                               capture_output=True, timeout=10)
            self.assertEqual(r.returncode, 2)
            self.assertIn(("netkit: chat serve: invalid %s '0'" % opt).encode(), r.stderr)

    def test_sigterm(self):
        self.join_all(["alice"])
        self.assertEqual(self.server.stop(), 0)

    def test_members_told_when_the_server_stops(self):
        # docs/chat-protocol.md: on SIGTERM/SIGINT every member gets NOTICE before the close.
        s = self.raw_join("bob")
        alice = self.join_all(["alice"])[0]
        self.assertEqual(read_frame(s), "JOIN alice")
        self.assertEqual(self.server.stop(signal.SIGTERM), 0)
        self.assertEqual(read_frame(s), "NOTICE server shutting down")
        self.assertIsNone(read_frame(s))
        alice.wait_line("* notice: server shutting down")
        self.assertEqual(alice.proc.wait(10), 1)
        self.assertIn(b"netkit: chat join: the server shut down", alice.proc.stderr.read())

    def test_terminal_prompt_survives_incoming_messages(self):
        # On a terminal the line being typed is redrawn below each incoming message, and what
        # the member sends is shown as the others see it.
        import pty
        import select
        bob = self.raw_join("bob")
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        alice = subprocess.Popen([harness.NETKIT, "chat", "join", self.addr, "--name", "alice"],
                                 stdin=slave, stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        self.addCleanup(harness._reap, alice)
        got = [b""]

        def read_until(needle, timeout=10):
            deadline = time.monotonic() + timeout
            while needle not in got[0]:
                left = deadline - time.monotonic()
                self.assertGreater(left, 0, "no %r in %r" % (needle, got[0]))
                r, _, _ = select.select([master], [], [], left)
                if r:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:
                        chunk = b""
                    self.assertTrue(chunk, "the terminal closed: %r" % got[0])
                    got[0] += chunk

        read_until(b"* joined as alice (2 online)\r\n> ")
        self.assertEqual(read_frame(bob), "JOIN alice")
        os.write(master, b"hel")
        read_until(b"> hel")
        bob.sendall(frame("MSG hi there"))
        read_until(b"\r\x1b[K[bob] hi there\r\n> hel")
        os.write(master, b"lo\r")
        self.assertEqual(read_frame(bob), "MSG alice hello")
        read_until(b"[alice] hello\r\n> ")
        # A line longer than the terminal shows its end after "<", so it never wraps (a
        # wrapped line could not be cleared for the next message).
        import fcntl
        import termios
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 40, 0, 0))
        os.write(master, b"y" * 10 + b"x" * 50)
        read_until(b"\r\x1b[K> <" + b"x" * 36)
        os.write(master, b"\x15")  # Ctrl-U: the whole line goes
        read_until(b"x" * 36 + b"\r\x1b[K> ")
        os.write(master, b"\x04")  # Ctrl-D on an empty line: leave
        self.assertEqual(alice.wait(10), 0, alice.stderr.read())
        self.assertEqual(read_frame(bob), "LEAVE alice")


if __name__ == "__main__":
    unittest.main()
