"""The attacks HTTP/2 servers fell to, against `netkit http serve` (h2c on an explicit http://
listener: the transport is the test's own choice).

Rapid reset (CVE-2023-44487), CONTINUATION floods (CVE-2024-27316 and kin), the HPACK bomb, the
2019 set (CVE-2019-9511 data dribble, 9512 ping flood, 9513 resource loop, 9514 reset flood,
9515 SETTINGS flood, 9516 0-length headers, 9517 internal data buffering, 9518 empty frames), a
zero window held forever, a stream count flood and oversized header lists.

Every attack is bounded in count and time. For each: the attacking connection ends (a GOAWAY
then the close, or the close) within a bound, while a second, well-behaved client keeps getting
its answers (each within a generous latency bound), and the server's CPU time and RSS grow by
less than a broken server would need for the same attack. Attacks that nghttp2 or the server
detect must end soon after the flood; the others (the server may tolerate what it is sent) must
end once the server's timeouts, set small here, expire.
"""
import os
import random
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest

import h2frames as F
import httptest as H
from h2frames import CONTINUATION, END_HEADERS, HEADERS, frame
from test_hardening import asan_build, asan_env, vm_rss

MIB = 1024 * 1024
HELLO = b"hello, world\n"
BIG = 10 * MIB


def slow():
    """ASan builds run some 3 times slower (and keep more memory)."""
    return 3.0 if asan_build() else 1.0


# The server's --send-timeout, --idle-timeout, --header-timeout and --body-timeout.
TIMEOUT = 3 if not asan_build() else 6
ATTACK_TIME = 4.0  # the longest any flood goes on
SETTLE = 2.0 * slow()  # how long after its flood a detected attack may take to be ended
PROBE_LIMIT = 2.0 * slow()  # the well-behaved client's latency bound
CPU_BOUND = 1.5 * slow()  # CPU seconds the server may spend on one attack (see each test)
RSS_BOUND = 40 * MIB * (2 if asan_build() else 1)


def make_root(test):
    base = tempfile.mkdtemp(prefix="netkit-h2attack-")
    test.addCleanup(shutil.rmtree, base, True)
    with open(os.path.join(base, "hello.txt"), "wb") as f:
        f.write(HELLO)
    with open(os.path.join(base, "big.bin"), "wb") as f:
        block = bytes(range(256)) * 4096
        for _ in range(BIG // len(block)):
            f.write(block)
    return base


class Probe(threading.Thread):
    """The well-behaved client: one GET on a fresh connection every 100 ms while an attack
    runs; records each latency or failure."""

    def __init__(self, addr, echo=False):
        super().__init__(daemon=True)
        self.addr, self.echo = addr, echo
        self.stop = threading.Event()
        self.results = []  # (seconds, None) or (seconds, error text)

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                r = F.get(self.addr, timeout=PROBE_LIMIT + 3)
                body = bytes(r.body)
                good = b"\nrequest-line GET /hello.txt " in body if self.echo else body == HELLO
                err = None if r.status == 200 and good else \
                    "status %s body %r" % (r.status, body[:40])
            except Exception as e:  # every failure counts, whatever it is
                err = "%s: %s" % (type(e).__name__, str(e)[:300])
            self.results.append((time.monotonic() - t0, err))
            self.stop.wait(0.1)


def usage(pid):
    pids = H.proc_tree(pid)
    rss = 0
    for p in pids:
        try:
            rss += vm_rss(p)
        except (OSError, AssertionError):
            pass
    return H.cpu_seconds(pids), rss


def server_holds(pid, server_port, client_port):
    """True while a process of the server still has the socket of this connection open. Once
    it closed it, the kernel may still hold what the server wrote (and the FIN after it) for
    a client that does not read: the client cannot see that end, /proc can (an orphaned socket
    has inode 0)."""
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                rows = f.readlines()[1:]
        except OSError:
            continue
        for row in rows:
            col = row.split()
            local, remote = int(col[1].rsplit(":", 1)[1], 16), int(col[2].rsplit(":", 1)[1], 16)
            if local == server_port and remote == client_port and col[9] != "0":
                inodes.add("socket:[%s]" % col[9])
    for p in H.proc_tree(pid) if inodes else ():
        try:
            fds = os.listdir("/proc/%d/fd" % p)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%d/fd/%s" % (p, fd)) in inodes:
                    return True
            except OSError:
                pass
    return False


def push(c, data, deadline):
    """Send data on the attacking connection: 'ok', 'closed' (the server ended it) or
    'blocked/time' (the deadline passed before all was sent: the server stopped reading, or
    the attack's time is up)."""
    view = memoryview(data)
    while view:
        left = deadline - time.monotonic()
        if left <= 0:
            return "blocked/time"
        c.sock.settimeout(min(left, 1.0))
        try:
            n = c.sock.send(view)
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            c.ev.eof = True
            return "closed"
        view = view[n:]
    return "ok"


@unittest.skipUnless(F.AVAILABLE, F.MISSING)
class Attacks(unittest.TestCase):

    def serve(self, *extra):
        root = make_root(self)
        t = str(TIMEOUT)
        self.srv = H.serve(self, root, "--access-log", "off", "--send-timeout", t,
                           "--idle-timeout", t, "--header-timeout", t, "--body-timeout", t,
                           *extra, listen=("http://127.0.0.1:0",), env=asan_env())
        self.addr = self.srv.host_port()
        r = F.get(self.addr)  # warm: what the first request allocates is not the attack's
        self.assertEqual(r.status, 200)

    def attack(self, setup=None, flood=None, settings=(), read=True, detected=True, rcvbuf=None,
               hold=0.0, cpu_bound=CPU_BOUND, rss_bound=RSS_BOUND, server=()):
        """Run one attack: setup(c) bytes sent first, then the byte strings flood(c) yields until
        it is exhausted, ATTACK_TIME passed or the server ended the connection (reading what
        comes back between them when read is true), then hold seconds without sending.
        detected: the server must end the connection within SETTLE of the flood; else within
        its timeouts (TIMEOUT) and SETTLE. Returns the connection (its events) for more checks."""
        self.serve(*server)
        probe = Probe(self.addr, echo="--echo" in server)
        cpu0, rss0 = usage(self.srv.proc.pid)
        c = F.Conn(self.addr, timeout=5 * slow(), rcvbuf=rcvbuf)
        self.addCleanup(c.close)
        c.handshake(settings, time.monotonic() + 5 * slow())
        probe.start()
        self.addCleanup(probe.stop.set)
        t0 = time.monotonic()
        stop_at = t0 + ATTACK_TIME
        why, chunks = "exhausted", 0
        if setup is not None:
            why = push(c, setup(c), stop_at)
        if flood is not None and why in ("ok", "exhausted"):
            why = "exhausted"
            for chunk in flood(c):
                got = push(c, chunk, stop_at)
                if got != "ok":
                    why = got
                    break
                chunks += 1
                if read:
                    c.poll()
                if c.ended():
                    why = "ended"
                    break
                if time.monotonic() >= stop_at:
                    why = "time"
                    break
        if hold:
            end_hold = time.monotonic() + hold
            while time.monotonic() < end_hold and not c.ended():
                if read:
                    c.poll()
                time.sleep(0.05)
        flood_end = time.monotonic()
        # undetected: the streams the server gave up on are reset at its send or body timeout,
        # then the connection, left without streams, is closed at its idle timeout
        bound = flood_end + SETTLE + (0 if detected else 2 * TIMEOUT)
        client_port = c.sock.getsockname()[1]
        while True:
            if read:
                c.poll()
            ended = c.ev.eof or not server_holds(self.srv.proc.pid, self.addr[1], client_port)
            if ended or time.monotonic() >= bound:
                break
            time.sleep(0.02)
        if ended and read:
            # what the server said before it closed (its GOAWAY) is still on its way
            c.collect(lambda ev: ev.eof, time.monotonic() + SETTLE)
        took = time.monotonic() - t0
        while len(probe.results) < 3 and time.monotonic() < t0 + 10 * PROBE_LIMIT:
            time.sleep(0.05)  # an attack ended at once: the probe still gets its say
        probe.stop.set()
        probe.join(PROBE_LIMIT + 5)
        cpu1, rss1 = usage(self.srv.proc.pid)
        report = ("flood: %d chunks in %.2fs, stopped by %s; connection %s after %.2fs; "
                  "server CPU +%.2fs, RSS +%.1f MiB; probes %d, max latency %.2fs; received: %s"
                  % (chunks, flood_end - t0, why, "ended" if ended else "still open", took,
                     cpu1 - cpu0, (rss1 - rss0) / MIB, len(probe.results),
                     max([r[0] for r in probe.results] or [0]), c.ev.describe(12)))
        self.report = report
        # the measurements, for bounds chosen from them (ctest keeps this output)
        sys.stderr.write("\n%s: %s\n" % (self.id().rsplit(".", 1)[-1], report))
        self.assertIsNone(self.srv.proc.poll(), "the server died: " + report)
        self.assertTrue(ended, "the attacking connection is not ended within %.1fs of the "
                        "flood: %s" % (bound - flood_end, report))
        failures = [r for r in probe.results if r[1] is not None]
        self.assertFalse(failures, "the well-behaved client failed: %r; %s" % (failures[:3], report))
        self.assertGreaterEqual(len(probe.results), 3, "too few probes ran: " + report)
        worst = max(r[0] for r in probe.results)
        self.assertLess(worst, PROBE_LIMIT, "the well-behaved client waited %.2fs: %s"
                        % (worst, report))
        self.assertLess(cpu1 - cpu0, cpu_bound, "server CPU: " + report)
        self.assertLess(rss1 - rss0, rss_bound, "server RSS: " + report)
        # and a client after the attack is served at once
        r = F.get(self.addr, timeout=PROBE_LIMIT + 3)
        self.assertEqual(r.status, 200)
        return c

    # -----------------------------------------------------------------------------------------
    # attacks the server (or nghttp2) detects: the connection must end soon after the flood

    def test_rapid_reset(self):
        """CVE-2023-44487: HEADERS then RST_STREAM, 20000 times; each stream costs the server
        a request it starts and drops, so it must stop the connection, not serve them all."""
        def flood(c):
            # the first block puts the fields into the dynamic table, the others name them
            yield F.headers(1, c.block(F.request_fields())) + F.rst_stream(1, F.CANCEL)
            blk = c.block(F.request_fields())
            sid = 3
            for _ in range(200):
                out = []
                for _ in range(100):
                    out.append(F.headers(sid, blk) + F.rst_stream(sid, F.CANCEL))
                    sid += 2
                yield b"".join(out)
        self.attack(flood=flood)

    def test_continuation_flood(self):
        """A field block that never ends: CONTINUATION frames of 16 KiB without END_HEADERS
        (up to 64 MiB); the server must not collect them without bound."""
        field = F.hpack_literal("x-flood", "a" * 1000)
        def flood(c):
            yield F.headers(1, F.raw_block(F.request_fields()), end_headers=False)
            for _ in range(4000):
                yield F.continuation(1, field * 16, end_headers=False)
        self.attack(flood=flood)

    def test_continuation_flood_empty(self):
        """Empty CONTINUATION frames without END_HEADERS (up to 200000): no memory grows,
        only the count tells the server something is wrong."""
        def flood(c):
            yield F.headers(1, F.raw_block(F.request_fields()), end_headers=False)
            empty = F.continuation(1, b"", end_headers=False) * 1000
            for _ in range(200):
                yield empty
        self.attack(flood=flood)

    def test_hpack_bomb(self):
        """One 4000-byte field put into the dynamic table, then field blocks that name it
        16000 times by its index: 16 KiB on the wire, 64 MB once decoded, per request."""
        def setup(c):
            blk = F.raw_block(F.request_fields()) + F.hpack_literal("x-bomb", "a" * 4000,
                                                                      index=True)
            return F.headers(1, blk)

        def flood(c):
            bomb = F.raw_block(F.request_fields()) + F.hpack_indexed(62) * 16000
            for i in range(100):
                sid = 3 + 2 * i
                parts = [bomb[j:j + 16000] for j in range(0, len(bomb), 16000)]
                out = F.headers(sid, parts[0], end_headers=len(parts) == 1)
                for k, p in enumerate(parts[1:]):
                    out += F.continuation(sid, p, end_headers=k == len(parts) - 2)
                yield out
        c = self.attack(setup=setup, flood=flood)
        served = [s for s, r in c.ev.streams.items() if s > 1 and r.status == 200]
        self.assertFalse(served, "requests of 64 MB of fields were served: %s" % self.report)

    def test_oversized_header_list(self):
        """Requests of 64 KiB of fields (HEADERS and CONTINUATION), past the server's header
        list limit, again and again (up to 200): each is refused with 431 at the cost of
        decoding it, so the connection may live on until its idle timeout."""
        fields = b"".join(F.hpack_literal("x-big-%d" % i, "b" * 1000) for i in range(64))

        def flood(c):
            blk = F.raw_block(F.request_fields()) + fields
            for i in range(200):
                sid = 1 + 2 * i
                parts = [blk[j:j + 16000] for j in range(0, len(blk), 16000)]
                out = F.headers(sid, parts[0], end_headers=False)
                for k, p in enumerate(parts[1:]):
                    out += F.continuation(sid, p, end_headers=k == len(parts) - 2)
                yield out
        c = self.attack(flood=flood, detected=False)
        answers = {s: r.status for s, r in c.ev.streams.items() if r.headers}
        self.assertFalse([s for s, st in answers.items() if st != 431],
                         "requests past the header list limit not refused with 431: %r; %s"
                         % (answers, self.report))

    def test_ping_flood(self):
        """CVE-2019-9512: PINGs without reading the ACKs (a 4 KiB receive buffer): the ACKs
        the server queues must not grow without bound."""
        batch = b"".join(F.ping(struct.pack(">Q", i)) for i in range(1000))

        def flood(c):
            for _ in range(300):
                yield batch
        self.attack(flood=flood, read=False, rcvbuf=4096)

    def test_settings_flood(self):
        """CVE-2019-9515: SETTINGS frames without reading the ACKs."""
        batch = F.settings((F.INITIAL_WINDOW_SIZE, 65535)) * 1000

        def flood(c):
            for _ in range(300):
                yield batch
        self.attack(flood=flood, read=False, rcvbuf=4096)

    def test_settings_many_entries(self):
        """CVE-2020-11080: one SETTINGS frame of 2700 entries (each costs work), sent 50
        times."""
        one = F.settings(*([(F.HEADER_TABLE_SIZE, 4096)] * 2700))

        def flood(c):
            for _ in range(50):
                yield one
        self.attack(flood=flood)

    def test_reset_flood(self):
        """CVE-2019-9514: requests the server must refuse with RST_STREAM (an upper-case field
        name), without reading what it answers."""
        def flood(c):
            blk = F.raw_block(F.request_fields(extra=[("X-Upper", "1")]))
            sid = 1
            for _ in range(400):
                out = []
                for _ in range(500):
                    out.append(F.headers(sid, blk))
                    sid += 2
                yield b"".join(out)
        self.attack(flood=flood, read=False, rcvbuf=4096)

    # -----------------------------------------------------------------------------------------
    # attacks made of traffic a server may accept: bounded cost, then the timeouts end them

    def test_data_dribble(self):
        """CVE-2019-9511: 20 streams of a 10 MiB file with a window of 1 byte, opened by 1 byte
        at a time: the server sends 1-byte DATA frames; then the client stops."""
        def setup(c):
            return b"".join(F.headers(1 + 2 * i, c.block(F.request_fields(path="/big.bin")))
                            for i in range(20))

        def flood(c):
            one = b"".join(F.window_update(1 + 2 * i, 1) for i in range(20)) + \
                F.window_update(0, 20)
            while True:
                yield one
                time.sleep(0.001)
        self.attack(setup=setup, flood=flood, settings=((F.INITIAL_WINDOW_SIZE, 1),),
                    detected=False)

    def test_internal_data_buffering(self):
        """CVE-2019-9517: 50 streams of a 10 MiB file with windows wide open, the socket never
        read (a 4 KiB receive buffer): the server must not buffer 500 MiB of responses."""
        def setup(c):
            return F.window_update(0, F.MAX_WINDOW - 65535) + b"".join(
                F.headers(1 + 2 * i, c.block(F.request_fields(path="/big.bin")))
                for i in range(50))
        self.attack(setup=setup, settings=((F.INITIAL_WINDOW_SIZE, F.MAX_WINDOW),), read=False,
                    rcvbuf=4096, hold=ATTACK_TIME, detected=False)

    def test_priority_resource_loop(self):
        """CVE-2019-9513: 50 open streams shuffled in the priority tree by PRIORITY frames
        (exclusive dependencies on each other), up to 200000."""
        rnd = random.Random(9513)

        def setup(c):
            return b"".join(F.headers(1 + 2 * i, c.block(F.request_fields(path="/big.bin")))
                            for i in range(50))

        def flood(c):
            for _ in range(200):
                out = []
                while len(out) < 1000:
                    sid, dep = 1 + 2 * rnd.randrange(50), 1 + 2 * rnd.randrange(50)
                    if sid != dep:  # a stream on itself is an error, not a loop
                        out.append(F.priority(sid, dep, rnd.randrange(1, 257), exclusive=True))
                yield b"".join(out)
        self.attack(setup=setup, flood=flood, settings=((F.INITIAL_WINDOW_SIZE, 0),),
                    detected=False)

    def test_zero_length_headers(self):
        """CVE-2019-9516: requests with 1000 fields of empty name and value (half of them
        indexed into the dynamic table), on up to 5000 streams: 5 million fields, some 160 MB
        if the server kept them."""
        def flood(c):
            blk = F.raw_block(F.request_fields()) + b"\x40\x00\x00" * 500 + b"\x00\x00\x00" * 500
            sid = 1
            for _ in range(50):
                out = []
                for _ in range(100):
                    out.append(F.headers(sid, blk))
                    sid += 2
                yield b"".join(out)
        c = self.attack(flood=flood, detected=False)
        served = [s for s, r in c.ev.streams.items() if r.status == 200]
        self.assertFalse(served, "requests with empty field names served: " + self.report)

    def test_empty_data_flood(self):
        """CVE-2019-9518: a request body sent as empty DATA frames, up to 300000 of them."""
        def setup(c):
            return F.headers(1, c.block(F.request_fields("POST", "/echo")), end_stream=False)

        def flood(c):
            empty = F.data(1, b"") * 1000
            for _ in range(300):
                yield empty
        self.attack(setup=setup, flood=flood, detected=False, server=("--echo",))

    def test_zero_window_held(self):
        """SETTINGS_INITIAL_WINDOW_SIZE 0, then a 10 MiB file, and the window never opened:
        the server drops the connection once its send timeout passes."""
        def setup(c):
            return F.headers(1, c.block(F.request_fields(path="/big.bin")))
        t0 = time.monotonic()
        c = self.attack(setup=setup, settings=((F.INITIAL_WINDOW_SIZE, 0),), detected=False)
        r = c.ev.streams.get(1)
        self.assertTrue(r is not None and r.status == 200, "the request was not answered: " +
                        self.report)
        self.assertEqual(len(r.body), 0, self.report)
        # the stalled response itself is given up at the send timeout: the stream reset (the
        # connection then closes at the idle timeout) or the connection closed
        i = [k for k, f in enumerate(c.ev.frames)
             if f.type == F.RST_STREAM and f.sid == 1 or f.type == F.GOAWAY]
        self.assertTrue(i, "neither RST_STREAM nor GOAWAY: " + self.report)
        given_up = c.ev.times[i[0]] - t0
        self.assertLess(given_up, TIMEOUT + SETTLE, "the stalled stream was given up after "
                        "%.2fs: %s" % (given_up, self.report))

    def test_stream_count_flood(self):
        """More streams than SETTINGS_MAX_CONCURRENT_STREAMS, all held open (window 0): the
        ones past the limit are refused (REFUSED_STREAM or PROTOCOL_ERROR), up to 3000."""
        limit = {}

        def flood(c):
            limit["n"] = c.server_settings.get(F.MAX_CONCURRENT_STREAMS)
            sid = 1
            for _ in range(30):
                out = []
                for _ in range(100):
                    out.append(F.headers(sid, c.block(F.request_fields(path="/big.bin"))))
                    sid += 2
                yield b"".join(out)
                # in step with the server: nothing sent after its GOAWAY, which a reset (the
                # close of a socket with unread data) could destroy before it is read
                last = sid - 2
                c.collect(lambda ev: last in ev.rst or last in ev.streams or
                          ev.goaway is not None or ev.eof, time.monotonic() + SETTLE)
        c = self.attack(flood=flood, settings=((F.INITIAL_WINDOW_SIZE, 0),), detected=False)
        n = limit["n"]
        self.assertIsNotNone(n, "no SETTINGS_MAX_CONCURRENT_STREAMS announced")
        over = [s for s, r in c.ev.streams.items() if r.headers and s > 2 * n - 1]
        self.assertFalse(over, "streams past the limit of %d served: %s" % (n, self.report))
        if c.ev.goaway is None or c.ev.goaway[1] == F.NO_ERROR:
            refused = [s for s, code in c.ev.rst.items() if s > 2 * n - 1]
            self.assertTrue(refused, "no stream past the limit refused: " + self.report)
            bad = {s: code for s, code in c.ev.rst.items()
                   if s > 2 * n - 1 and code not in (F.REFUSED_STREAM, F.PROTOCOL_ERROR)}
            self.assertFalse(bad, "refused with other codes: %r; %s" % (bad, self.report))
        else:
            self.assertIn(c.ev.goaway[1], (F.PROTOCOL_ERROR, F.REFUSED_STREAM,
                                           F.ENHANCE_YOUR_CALM), self.report)


if __name__ == "__main__":
    unittest.main()
