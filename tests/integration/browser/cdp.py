"""A minimal Chrome DevTools Protocol client for integration tests, on the python3 stdlib.

Chromium is started with --remote-debugging-pipe: it reads commands from its descriptor 3 and
writes answers and events to its descriptor 4, each message one JSON text ended by a NUL byte.
That is the same protocol as the --remote-debugging-port websocket, without a TCP port to
discover and without a websocket framing layer to get right, so there is less that can break.

Every wait has a deadline; Chromium runs in its own process group (it forks a zygote, renderers
and utility processes) and close() kills that group by the PID we started, even after a failure.
"""
import base64
import fcntl
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import zlib

CHROMIUM = os.environ.get("NETKIT_CHROMIUM", "/usr/bin/chromium")

# Flags from the machine notes: headless as root, and no traffic beyond the pages we open
# (without the background-networking flags Chromium tries to reach Google's services).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--hide-scrollbars", "--remote-debugging-pipe"]


class CDPError(AssertionError):
    pass


class Browser:
    """One headless Chromium. call() sends a command and returns its result; events arrive in
    self.events (a list of (method, params, sessionId)) while we wait for answers."""

    def __init__(self, timeout=20, flags=()):
        self.timeout = timeout
        self.events = []
        self._next_id = 0
        self._rbuf = b""
        self.profile = tempfile.mkdtemp(prefix="netkit-chromium-")
        self.log_path = os.path.join(self.profile, "chromium.log")
        cmd_r, self._cmd_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        # The child's ends move to 3 and 4; keep them above 4 first so that neither dup2 can
        # overwrite the other's source.
        cmd_r, resp_w = [self._above4(fd) for fd in (cmd_r, resp_w)]

        def child_fds():
            # Chromium expects the command pipe on 3 and the answer pipe on 4. Popen closes
            # every descriptor not in pass_fds after this runs, so 3 and 4 are listed there.
            os.dup2(cmd_r, 3)
            os.dup2(resp_w, 4)

        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                [CHROMIUM] + FLAGS + list(flags) +
                ["--user-data-dir=" + os.path.join(self.profile, "ud"), "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=child_fds,
                pass_fds=(3, 4), start_new_session=True)
        finally:
            log.close()
            os.close(cmd_r)
            os.close(resp_w)
        # Readiness: the first answer on the pipe. Browser.getVersion needs no target.
        self.version = self.call("Browser.getVersion")

    @staticmethod
    def _above4(fd):
        if fd > 4:
            return fd
        moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5)
        os.close(fd)
        return moved

    # ---- transport ------------------------------------------------------------------------

    def _send(self, method, params=None, session=None):
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            n = os.write(self._cmd_w, data)
            data = data[n:]
        return self._next_id

    def _read_one(self, deadline):
        """The next message, or None at the deadline."""
        while b"\0" not in self._rbuf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self._resp_r], [], [], left)
            if not r:
                continue
            chunk = os.read(self._resp_r, 1 << 20)
            if not chunk:
                raise CDPError("chromium closed its DevTools pipe (exit %s); log: %s"
                               % (self.proc.poll(), self.log_tail()))
            self._rbuf += chunk
        raw, self._rbuf = self._rbuf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method, params=None, session=None, timeout=None):
        mid = self._send(method, params, session)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._read_one(deadline)
            if msg is None:
                raise CDPError("%s: no answer within %ss" % (method, timeout or self.timeout))
            if "id" not in msg:
                self.events.append((msg.get("method"), msg.get("params", {}),
                                    msg.get("sessionId")))
                continue
            if msg["id"] != mid:
                continue  # an answer to a command whose caller already gave up
            if "error" in msg:
                raise CDPError("%s: %s" % (method, msg["error"]))
            return msg.get("result", {})

    def wait_event(self, method, session=None, timeout=None, pred=None):
        """Remove and return the params of the first buffered or arriving event `method`.
        With a tuple of methods, the first event of any of them, as (method, params)."""
        names = method if isinstance(method, tuple) else (method,)
        deadline = time.monotonic() + (timeout or self.timeout)
        i = 0
        while True:
            while i < len(self.events):
                m, p, s = self.events[i]
                if m in names and (session is None or s == session) and (not pred or pred(p)):
                    del self.events[i]
                    return (m, p) if isinstance(method, tuple) else p
                i += 1
            msg = self._read_one(deadline)
            if msg is None:
                raise CDPError("no %s event within %ss" % (method, timeout or self.timeout))
            if "id" not in msg:
                self.events.append((msg.get("method"), msg.get("params", {}),
                                    msg.get("sessionId")))

    def log_tail(self, n=2000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def close(self):
        """Ask Chromium to quit (it then reaps its own children), wait a bounded time, then
        kill its whole process group by the PID we started, and remove the profile."""
        if self.proc.poll() is None:
            try:
                self._send("Browser.close")
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        # Children may outlive the leader for a moment; the group id is still ours to signal.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for fd in (self._cmd_w, self._resp_r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    # ---- pages ----------------------------------------------------------------------------

    def new_page(self, width=1000, height=700, headers=None, context=None, mobile=False):
        params = {"url": "about:blank"}
        if context:
            params["browserContextId"] = context
        target = self.call("Target.createTarget", params)["targetId"]
        session = self.call("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.cmd("Page.enable")
        page.cmd("Runtime.enable")
        page.cmd("Network.enable")
        page.cmd("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
        if headers:
            page.cmd("Network.setExtraHTTPHeaders", {"headers": headers})
        return page


class Page:
    def __init__(self, browser, session):
        self.b = browser
        self.session = session

    def cmd(self, method, params=None, timeout=None):
        return self.b.call(method, params, self.session, timeout)

    def forget_events(self):
        self.b.events = [e for e in self.b.events if e[2] != self.session]

    def goto(self, url, timeout=None):
        """Navigate and wait for the load event; returns the main document's HTTP status."""
        self.forget_events()
        res = self.cmd("Page.navigate", {"url": url}, timeout)
        if res.get("errorText"):
            raise CDPError("navigate %s: %s" % (url, res["errorText"]))
        self.b.wait_event("Page.loadEventFired", self.session, timeout)
        return self.document_status(res.get("loaderId"))

    def document_status(self, loader=None):
        status = None
        for m, p, s in self.b.events:
            if (s == self.session and m == "Network.responseReceived"
                    and p.get("type") == "Document"
                    and (loader is None or p.get("loaderId") == loader)):
                status = p["response"]["status"]
        return status

    def document_requests(self):
        """Main-document requests since the last goto/click_and_wait_load, in order:
        (method, url, status of the redirect that led to it or None)."""
        out = []
        for m, p, s in self.b.events:
            if s == self.session and m == "Network.requestWillBeSent" and p.get("type") == "Document":
                redir = p.get("redirectResponse")
                out.append((p["request"]["method"], p["request"]["url"],
                            redir["status"] if redir else None))
        return out

    def click(self, selector, timeout=None):
        """A real mouse click (pressed + released) in the middle of the element."""
        x, y = self.eval("(function(){var r=document.querySelector(%s).getBoundingClientRect();"
                         "return [r.left+r.width/2, r.top+r.height/2];})()"
                         % json.dumps(selector))
        for kind in ("mousePressed", "mouseReleased"):
            self.cmd("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y,
                                                  "button": "left", "clickCount": 1}, timeout)

    def click_and_wait_load(self, selector, timeout=None):
        """Click something that navigates (a submit button) and wait for the next page's load
        event; returns that document's HTTP status."""
        self.forget_events()
        self.click(selector, timeout)
        self.b.wait_event("Page.loadEventFired", self.session, timeout)
        return self.document_status()

    def eval(self, expr, timeout=None, await_promise=False):
        res = self.cmd("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                            "awaitPromise": await_promise}, timeout)
        if "exceptionDetails" in res:
            raise CDPError("evaluate %r: %s" % (expr[:80], res["exceptionDetails"]))
        return res["result"].get("value")

    def set_files(self, selector, paths):
        root = self.cmd("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self.cmd("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise CDPError("no element matches %r" % selector)
        self.cmd("DOM.setFileInputFiles", {"nodeId": node, "files": list(paths)})

    def screenshot(self, path):
        data = base64.b64decode(self.cmd("Page.captureScreenshot", {"format": "png"})["data"])
        with open(path, "wb") as f:
            f.write(data)
        return data


def png_info(data):
    """(width, height) of a PNG after checking its structure: the signature, every chunk's
    CRC, IHDR first, IEND last, and that the IDAT stream inflates to exactly the bytes the
    header promises (height rows of a filter byte plus width pixels). Raises ValueError."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("no PNG signature")
    pos, chunks, idat = 8, [], b""
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError("truncated chunk at %d" % pos)
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if len(body) != length or zlib.crc32(ctype + body) != crc:
            raise ValueError("bad chunk %r at %d" % (ctype, pos))
        chunks.append((ctype, body))
        if ctype == b"IDAT":
            idat += body
        pos += 12 + length
    if not chunks or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        raise ValueError("IHDR not first or IEND not last")
    w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(color)
    if channels is None or depth != 8 or interlace != 0:
        raise ValueError("unexpected PNG format (depth %d, color %d, interlace %d)"
                         % (depth, color, interlace))
    raw = zlib.decompress(idat)
    if len(raw) != h * (1 + w * channels):
        raise ValueError("pixel data is %d bytes, expected %d" % (len(raw), h * (1 + w * channels)))
    return w, h
