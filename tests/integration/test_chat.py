"""`netkit chat`: five members, ordering and exactly-once delivery, /nick, /who, duplicate
names, abrupt leaves, and a member that never reads."""
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
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(raw.decode().rstrip("\n"))
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
        server = self.server
        alice, bob = self.join_all(["alice", "bob"])
        slow = self.raw_join("slow", rcvbuf=4096)  # joins, then never reads
        alice.wait_line("* slow joined")
        text = "x" * 30000
        count = 300  # 9 MB: far past the queue and every socket buffer
        feeder = threading.Thread(target=lambda: [alice.say("%d %s" % (i, text))
                                                  for i in range(count)])
        feeder.start()
        bob.wait_for(lambda ls: len([l for l in ls if l.startswith("[alice] ")]) >= count,
                     timeout=40, what="all of alice's messages")
        feeder.join(30)
        bob.wait_line("* slow dropped (not reading)")
        got = [l for l in bob.lines if l.startswith("[alice] ")]
        self.assertEqual(got, ["[alice] %d %s" % (i, text) for i in range(count)])
        self.assertIsNone(server.proc.poll())

    def test_sigterm(self):
        self.join_all(["alice"])
        self.assertEqual(self.server.stop(), 0)


if __name__ == "__main__":
    unittest.main()
