"""`netkit http serve` in a real browser: headless Chromium, driven over the DevTools protocol
(browser/cdp.py), loads the directory listing, uploads a file through its form, and renders the
demo site (www/) whose script fills in the response headers.

Needs Debian's chromium (scripts/install-deps browser, which `make test` runs); without it the
tests are skipped with that reason. Screenshots of both pages are also left in
/tmp/netkit-screens/ for a person to look at.
"""
import base64
import json
import os
import shutil
import tempfile
import time
import unittest

import harness
from browser import cdp

WWW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "www")
SCREENS = "/tmp/netkit-screens"
USER, PASS = "user", "secret"
WIDTH, HEIGHT = 1000, 700

# Names the listing must show literally: markup, an ampersand, a quote, spaces and UTF-8.
ODD_NAMES = ["a&b <em>x.txt", "h\u00e9llo w\u00f6rld.txt", 'say "hi".txt']
UPLOAD_NAME = "up load \u00fc.bin"

# A listing row's link text and href, in page order.
ROWS_JS = ("Array.from(document.querySelectorAll('tbody tr td:first-child a'))"
           ".map(function(a){return [a.textContent, decodeURIComponent(new URL(a.href).pathname)]})")


def auth_header():
    return {"Authorization": "Basic " + base64.b64encode(
        ("%s:%s" % (USER, PASS)).encode()).decode()}


def save_screen(data, name):
    """Keep a copy for the lead; a full /tmp is no reason to fail the test."""
    try:
        os.makedirs(SCREENS, exist_ok=True)
        with open(os.path.join(SCREENS, name), "wb") as f:
            f.write(data)
    except OSError:
        pass


class BrowserTest(unittest.TestCase):
    def setUp(self):
        if not os.access(cdp.CHROMIUM, os.X_OK):
            self.skipTest("%s not installed (run scripts/install-deps browser)" % cdp.CHROMIUM)

    def serve(self, root, *extra):
        """Start the server, then the browser (self.browser): over https it trusts the server's
        self-signed key and nothing else (Chromium's SPKI list)."""
        srv = harness.start(self, ["http", "serve", root, "-l", "127.0.0.1:0", "-w", "1", "-q"]
                            + list(extra))
        addr = srv.host_port()
        flags = []
        peer = harness.tls_peer(addr)
        if peer is not None:
            flags.append("--ignore-certificate-errors-spki-list=" + peer.spki_sha256_b64())
        self.browser = cdp.Browser(timeout=20, flags=flags)
        self.addCleanup(self.browser.close)
        return harness.origin(addr) + "/"

    def check_png(self, data):
        self.assertEqual(cdp.png_info(data), (WIDTH, HEIGHT))
        # A blank 1000x700 page compresses to about 3 KiB; text and colours make it larger.
        self.assertGreater(len(data), 8000)

    def test_listing_and_upload_form(self):
        root = tempfile.mkdtemp(prefix="netkit-browser-")
        self.addCleanup(lambda: shutil.rmtree(root, ignore_errors=True))
        os.mkdir(os.path.join(root, "sub"))
        for i, name in enumerate(ODD_NAMES):
            with open(os.path.join(root, name), "wb") as f:
                f.write(("file %d\n" % i).encode())
        src = tempfile.mkdtemp(prefix="netkit-browser-src-")
        self.addCleanup(lambda: shutil.rmtree(src, ignore_errors=True))
        payload = os.urandom(150000) + b"\0\r\n--\r\n\r\n"  # binary, with CRLFs and dashes
        with open(os.path.join(src, UPLOAD_NAME), "wb") as f:
            f.write(payload)

        url = self.serve(root, "--upload", "--auth", "%s:%s" % (USER, PASS))
        page = self.browser.new_page(WIDTH, HEIGHT, headers=auth_header())
        # Without JavaScript: the form is a plain form (the script's upload is tested below).
        page.cmd("Emulation.setScriptExecutionDisabled", {"value": True})
        self.assertEqual(page.goto(url), 200)

        # The listing: directories first, then files in byte order, each name shown as text
        # (escaped, so '<em>' made no element) with a link that decodes back to the name.
        self.assertEqual(page.eval("document.title"), "Index of /")
        self.assertEqual(page.eval("document.querySelector('h1').textContent"), "Index of /")
        expected = [["sub/", "/sub/"]] + [[n, "/" + n] for n in sorted(
            ODD_NAMES, key=lambda s: s.encode())]
        self.assertEqual(page.eval(ROWS_JS), expected)
        self.assertIsNone(page.eval("document.querySelector('tbody em') && 'em'"))
        # A link with odd characters really leads to the file.
        body = page.eval("fetch(document.querySelectorAll('tbody a')[1].href)"
                         ".then(function(r){return r.status + ' ' + r.headers.get('content-length')"
                         " + ' ' + r.url})", await_promise=True)
        self.assertRegex(body, r"^200 7 ")

        # The upload form, as the listing renders it with --upload.
        form = page.eval("(function(){var f=document.querySelector('form.upload');"
                         "if(!f)return null;var i=f.querySelector('input[type=file]');"
                         "return [f.method, f.enctype, f.action, i && i.name, i && i.multiple]})()")
        self.assertEqual(form, ["post", "multipart/form-data", url, "file", True])

        shot = page.screenshot(os.path.join(src, "listing-before.png"))
        self.check_png(shot)
        save_screen(shot, "listing.png")

        page.set_files("form.upload input[type=file]", [os.path.join(src, UPLOAD_NAME)])
        self.assertEqual(page.eval("document.querySelector('form.upload input').files[0].name"),
                         UPLOAD_NAME)
        # A real click on the button: the POST answers 303 and the browser comes back to the
        # listing with a GET (RFC 9110 section 15.4.4).
        self.assertEqual(page.click_and_wait_load("form.upload button[type=submit]"), 200)
        self.assertEqual(page.document_requests(), [("POST", url, None), ("GET", url, 303)])
        self.assertEqual(page.eval("location.href"), url)

        rows = page.eval(ROWS_JS)
        self.assertIn([UPLOAD_NAME, "/" + UPLOAD_NAME], rows)
        self.assertEqual(len(rows), len(expected) + 1)
        size_title = page.eval(
            "(function(){var a=Array.from(document.querySelectorAll('tbody a')).filter("
            "function(a){return a.textContent===%s})[0];"
            "return a.parentNode.nextElementSibling.title})()" % json.dumps(UPLOAD_NAME))
        self.assertEqual(size_title, "%d bytes" % len(payload))
        with open(os.path.join(root, UPLOAD_NAME), "rb") as f:
            self.assertEqual(f.read(), payload)
        # Nothing else appeared in the directory (no temp file left behind).
        self.assertEqual(sorted(os.listdir(root)), sorted(ODD_NAMES + ["sub", UPLOAD_NAME]))

        shot = page.screenshot(os.path.join(src, "listing-after.png"))
        self.check_png(shot)
        save_screen(shot, "listing-after-upload.png")

    def poll(self, page, expr, timeout=10.0):
        """Evaluate expr until it is truthy (bounded in time); its last value."""
        end = time.monotonic() + timeout
        while True:
            v = page.eval(expr)
            if v or time.monotonic() > end:
                return v
            time.sleep(0.05)

    def test_script_upload_progress_overwrite_mkdir_delete(self):
        """With scripts: files dropped on the zone go up by XMLHttpRequest with a progress
        bar that reaches 100 %; a form that would replace a file is refused (409, shown on the
        page) until "overwrite" is ticked; "new folder" and a delete button work."""
        root = tempfile.mkdtemp(prefix="netkit-browser-")
        self.addCleanup(lambda: shutil.rmtree(root, ignore_errors=True))
        src = tempfile.mkdtemp(prefix="netkit-browser-src-")
        self.addCleanup(lambda: shutil.rmtree(src, ignore_errors=True))
        with open(os.path.join(root, "old.txt"), "wb") as f:
            f.write(b"old\n")
        big = os.urandom(3 << 20)  # several progress events on the way
        small = b"second file\n"
        for name, data in (("big.bin", big), ("small.txt", small), ("old.txt", b"new\n")):
            with open(os.path.join(src, name), "wb") as f:
                f.write(data)
        url = self.serve(root, "--upload", "--mkdirs", "--auth", "%s:%s" % (USER, PASS))
        page = self.browser.new_page(WIDTH, HEIGHT, headers=auth_header())
        self.assertEqual(page.goto(url), 200)
        self.assertFalse(page.eval("document.querySelector('button.del').hidden"))

        # Every value the bar takes, kept across the reload that follows a success.
        page.eval("sessionStorage.setItem('seen','[]');"
                  "(function(){var p=document.getElementById('progress');"
                  "new MutationObserver(function(){var a=JSON.parse(sessionStorage.getItem('seen'));"
                  "a.push(Number(p.getAttribute('value')));"
                  "sessionStorage.setItem('seen',JSON.stringify(a));})"
                  ".observe(p,{attributes:true,attributeFilter:['value']});})()")
        # Drop two files on the zone: the chooser fills a DataTransfer, which a drop event
        # carries (as a person dragging files from a file manager would).
        page.set_files("#files", [os.path.join(src, "big.bin"), os.path.join(src, "small.txt")])
        dropped = page.eval(
            "(function(){var i=document.getElementById('files'),dt=new DataTransfer();"
            "Array.prototype.forEach.call(i.files,function(f){dt.items.add(f)});i.value='';"
            "var n0=i.files.length,one=new DataTransfer();one.items.add(dt.files[1]);"
            # beside the zone (on the heading): the page takes it rather than leaving for the file
            "var h=document.querySelector('h1').dispatchEvent(new DragEvent('drop',"
            "{dataTransfer:one,bubbles:true,cancelable:true}));var n1=i.files.length;"
            "document.getElementById('drop').dispatchEvent(new DragEvent("
            "'drop',{dataTransfer:dt,bubbles:true,cancelable:true}));"
            "return [n0,h,n1,Array.prototype.map.call(i.files,function(f){return f.name})]})()")
        # dispatchEvent is false when the default (opening the file) was prevented
        self.assertEqual(dropped, [0, False, 1, ["big.bin", "small.txt"]])
        page.forget_events()
        page.click("form.upload button[type=submit]")
        self.browser.wait_event("Page.loadEventFired", page.session)  # the reload after 201
        seen = json.loads(page.eval("sessionStorage.getItem('seen')"))
        self.assertGreaterEqual(len(seen), 2, seen)
        self.assertEqual(seen[0], 0)
        self.assertEqual(max(seen), 100)
        self.assertEqual(seen[-1], 100)
        self.assertEqual(seen, sorted(seen))
        names = [r[0] for r in page.eval(ROWS_JS)]
        self.assertEqual(names, ["big.bin", "old.txt", "small.txt"])
        with open(os.path.join(root, "big.bin"), "rb") as f:
            self.assertEqual(f.read(), big)
        # No document request: the form went by script, the page only reloaded.
        self.assertNotIn("POST", [r[0] for r in page.document_requests()])

        # A file of that name exists: refused and said so on the page, old content kept.
        page.set_files("#files", [os.path.join(src, "old.txt")])
        page.click("form.upload button[type=submit]")
        status = self.poll(page, "(function(){var t=document.getElementById('status')"
                                 ".textContent;return /^409/.test(t)&&t})()")
        self.assertRegex(status or "", r"^409 .*overwrite")
        with open(os.path.join(root, "old.txt"), "rb") as f:
            self.assertEqual(f.read(), b"old\n")
        # Ticked: replaced.
        page.click("input[name=overwrite]")
        self.assertTrue(page.eval("document.querySelector('input[name=overwrite]').checked"))
        page.forget_events()
        page.click("form.upload button[type=submit]")
        self.browser.wait_event("Page.loadEventFired", page.session)
        with open(os.path.join(root, "old.txt"), "rb") as f:
            self.assertEqual(f.read(), b"new\n")

        # New folder: a plain form, 303 back to the listing, which shows it.
        page.eval("document.querySelector('form.mkdir input[name=mkdir]').value='new dir'")
        self.assertEqual(page.click_and_wait_load("form.mkdir button[type=submit]"), 200)
        self.assertEqual(page.document_requests(), [("POST", url, None), ("GET", url, 303)])
        self.assertTrue(os.path.isdir(os.path.join(root, "new dir")))
        self.assertIn(["new dir/", "/new dir/"], page.eval(ROWS_JS))

        # Delete: confirm, DELETE by fetch, the row goes. The click comes from a timer so that
        # the confirm dialog does not hold up the evaluation that caused it.
        page.eval("setTimeout(function(){Array.prototype.filter.call("
                  "document.querySelectorAll('button.del'),function(b){"
                  "return b.previousElementSibling.textContent==='small.txt'})[0].click()},0)")
        dialog = self.browser.wait_event("Page.javascriptDialogOpening", page.session)
        self.assertEqual((dialog["type"], dialog["message"]), ("confirm", "Delete small.txt?"))
        page.cmd("Page.handleJavaScriptDialog", {"accept": True})
        gone = self.poll(page, "!Array.prototype.some.call(document.querySelectorAll("
                               "'tbody a'),function(a){return a.textContent==='small.txt'})")
        self.assertTrue(gone)
        self.assertFalse(os.path.exists(os.path.join(root, "small.txt")))
        self.assertEqual(sorted(os.listdir(root)), ["big.bin", "new dir", "old.txt"])
        save_screen(page.screenshot(os.path.join(src, "after.png")), "listing-script-upload.png")

    def click_delete(self, page, text):
        """Click the delete button of the row whose link reads text, from a timer so that the
        confirm dialog does not hold up the evaluation that caused it."""
        page.eval("setTimeout(function(){Array.prototype.filter.call("
                  "document.querySelectorAll('button.del'),function(b){"
                  "return b.previousElementSibling.textContent===%s})[0].click()},0)"
                  % json.dumps(text))

    def answer_dialog(self, page, message, accept=True):
        dialog = self.browser.wait_event("Page.javascriptDialogOpening", page.session)
        self.assertEqual((dialog["type"], dialog["message"]), ("confirm", message))
        page.cmd("Page.handleJavaScriptDialog", {"accept": accept})

    def row_gone(self, page, text):
        return self.poll(page, "!Array.prototype.some.call(document.querySelectorAll("
                               "'tbody a'),function(a){return a.textContent===%s})"
                               % json.dumps(text))

    def test_delete_directories(self):
        """A directory's delete button: an empty one goes after the usual confirm; a full one
        is refused by the server (409, with the number of entries), and a second confirm naming
        that number sends ?recursive=1; one holding a dotfile is refused with the server's
        explanation and no second question."""
        root = tempfile.mkdtemp(prefix="netkit-browser-")
        self.addCleanup(lambda: shutil.rmtree(root, ignore_errors=True))
        os.makedirs(os.path.join(root, "empty"))
        os.makedirs(os.path.join(root, "full", "inner"))
        os.makedirs(os.path.join(root, "hid"))
        for rel in ("full/a.txt", "full/inner/b.txt", "hid/.dot"):
            with open(os.path.join(root, rel), "wb") as f:
                f.write(b"x\n")
        url = self.serve(root, "--upload", "--auth", "%s:%s" % (USER, PASS))
        page = self.browser.new_page(WIDTH, HEIGHT, headers=auth_header())
        self.assertEqual(page.goto(url), 200)

        self.click_delete(page, "empty/")
        self.answer_dialog(page, "Delete empty/?")
        self.assertTrue(self.row_gone(page, "empty/"))
        self.assertFalse(os.path.exists(os.path.join(root, "empty")))

        # Full: the first answer is 409; declining the second question keeps everything.
        self.click_delete(page, "full/")
        self.answer_dialog(page, "Delete full/?")
        self.answer_dialog(page, "full/ holds 3 entries. Delete it with everything in it?",
                           accept=False)
        self.assertTrue(os.path.isfile(os.path.join(root, "full", "inner", "b.txt")))
        self.click_delete(page, "full/")
        self.answer_dialog(page, "Delete full/?")
        self.answer_dialog(page, "full/ holds 3 entries. Delete it with everything in it?")
        self.assertTrue(self.row_gone(page, "full/"))
        self.assertEqual(page.eval("document.getElementById('status').textContent"),
                         "Deleted full/.")
        self.assertFalse(os.path.exists(os.path.join(root, "full")))

        self.click_delete(page, "hid/")
        self.answer_dialog(page, "Delete hid/?")
        status = self.poll(page, "(function(){var t=document.getElementById('status')"
                                 ".textContent;return /^409/.test(t)&&t})()")
        # (no reason phrase over HTTP/2, which Chromium speaks over https)
        self.assertRegex(status or "", r"^409 (Conflict)?: could not delete hid/: Nothing was "
                                       r"deleted: .*does not list")
        self.assertTrue(os.path.isfile(os.path.join(root, "hid", ".dot")))
        self.assertEqual(sorted(os.listdir(root)), ["hid"])

    def test_upload_form_without_credentials_is_refused(self):
        root = tempfile.mkdtemp(prefix="netkit-browser-")
        self.addCleanup(lambda: shutil.rmtree(root, ignore_errors=True))
        src = tempfile.mkdtemp(prefix="netkit-browser-src-")
        self.addCleanup(lambda: shutil.rmtree(src, ignore_errors=True))
        with open(os.path.join(src, "x.txt"), "wb") as f:
            f.write(b"nope\n")
        url = self.serve(root, "--upload", "--auth", "%s:%s" % (USER, PASS))
        # A context of its own: no credentials cached from anything else.
        ctx = self.browser.call("Target.createBrowserContext")["browserContextId"]
        page = self.browser.new_page(WIDTH, HEIGHT, context=ctx)
        page.cmd("Emulation.setScriptExecutionDisabled", {"value": True})  # a plain form
        self.assertEqual(page.goto(url), 200)  # reading stays public with --upload
        page.set_files("form.upload input[type=file]", [os.path.join(src, "x.txt")])
        # Headless Chromium has no one to ask for a password; the Fetch domain lets us see the
        # challenge and cancel it like a person pressing Cancel, after which the 401 page loads.
        # Fetch also pauses each request (requestPaused) until we let it continue.
        self.browser.call("Fetch.enable", {"handleAuthRequests": True}, page.session)
        page.forget_events()
        page.click("form.upload button[type=submit]")
        challenges = []
        for _ in range(20):  # a handful of events at most; each wait has its own deadline
            ev = self.browser.wait_event(("Fetch.requestPaused", "Fetch.authRequired",
                                          "Page.loadEventFired"), page.session)
            if ev[0] == "Fetch.requestPaused":
                self.browser.call("Fetch.continueRequest", {"requestId": ev[1]["requestId"]},
                                  page.session)
            elif ev[0] == "Fetch.authRequired":
                challenges.append(ev[1]["authChallenge"])
                self.browser.call("Fetch.continueWithAuth", {
                    "requestId": ev[1]["requestId"],
                    "authChallengeResponse": {"response": "CancelAuth"}}, page.session)
            elif ev[0] == "Page.loadEventFired":
                break
        else:
            self.fail("the 401 page never loaded")
        self.assertEqual(len(challenges), 1)
        self.assertEqual(challenges[0]["scheme"].lower(), "basic")
        self.assertEqual([r[0] for r in page.document_requests()], ["POST"])
        self.assertEqual(page.document_status(), 401)
        self.assertEqual(os.listdir(root), [])

    def test_listing_on_a_phone(self):
        """390 px wide: no horizontal scrolling, and the breadcrumb and the sort links work."""
        root = tempfile.mkdtemp(prefix="netkit-browser-")
        self.addCleanup(lambda: shutil.rmtree(root, ignore_errors=True))
        deep = os.path.join(root, "photos", "2026-summer-holidays")
        os.makedirs(os.path.join(deep, "raw"))
        files = {"IMG_0001_a_very_long_camera_file_name_without_any_spaces_at_all.jpg": 3000,
                 "b.txt": 10, "c.txt": 200000, "notes with spaces and more words.md": 500}
        for name, size in files.items():
            with open(os.path.join(deep, name), "wb") as f:
                f.write(b"x" * size)
        url = self.serve(root, "--archives")
        page = self.browser.new_page(390, 844, mobile=True)
        here = url + "photos/2026-summer-holidays/"
        self.assertEqual(page.goto(here), 200)
        width = page.eval("[document.documentElement.scrollWidth, window.innerWidth]")
        # A mobile viewport widens to content that does not fit: both must stay at 390.
        self.assertLessEqual(width[0], 390, "the listing scrolls sideways on a phone")
        self.assertEqual(width[1], 390, "the page is wider than the phone")
        shot = os.path.join(tempfile.mkdtemp(prefix="netkit-browser-shot-"), "phone.png")
        self.addCleanup(lambda: shutil.rmtree(os.path.dirname(shot), ignore_errors=True))
        save_screen(page.screenshot(shot), "listing-phone.png")

        names = "Array.from(document.querySelectorAll('tbody tr td:first-child a'))" \
                ".map(function(a){return a.textContent})"
        self.assertEqual(page.eval(names), ["../", "raw/", "IMG_0001_a_very_long_camera_file_"
                                            "name_without_any_spaces_at_all.jpg", "b.txt",
                                            "c.txt", "notes with spaces and more words.md"])
        # Sort by size with a real tap on the column header, then again for the other order.
        self.assertEqual(page.click_and_wait_load("thead th.s a"), 200)
        self.assertEqual(page.eval("location.href"), here + "?sort=size&order=asc")
        self.assertEqual(page.eval(names), ["../", "raw/", "b.txt",
                                            "notes with spaces and more words.md",
                                            "IMG_0001_a_very_long_camera_file_name_without_any_"
                                            "spaces_at_all.jpg", "c.txt"])
        self.assertLessEqual(page.eval("document.documentElement.scrollWidth"), 390)
        self.assertEqual(page.click_and_wait_load("thead th.s a"), 200)
        self.assertEqual(page.eval("location.href"), here + "?sort=size&order=desc")
        self.assertEqual(page.eval(names)[2:4], ["c.txt", "IMG_0001_a_very_long_camera_file_"
                                                 "name_without_any_spaces_at_all.jpg"])
        # The breadcrumb: the middle crumb leads to /photos/, the first to the root.
        crumbs = page.eval("Array.from(document.querySelectorAll('h1 a'))"
                           ".map(function(a){return a.textContent})")
        self.assertEqual(crumbs, ["/", "photos", "2026-summer-holidays"])
        self.assertEqual(page.click_and_wait_load("h1 a:nth-of-type(2)"), 200)
        self.assertEqual(page.eval("location.href"), url + "photos/")
        self.assertEqual(page.eval(names), ["../", "2026-summer-holidays/"])
        self.assertEqual(page.click_and_wait_load("h1 a:nth-of-type(1)"), 200)
        self.assertEqual(page.eval("location.href"), url)
        self.assertEqual(page.eval("document.querySelector('h1').textContent"), "Index of /")
        self.assertLessEqual(page.eval("document.documentElement.scrollWidth"), 390)

    def test_demo_index_page(self):
        url = self.serve(WWW)
        page = self.browser.new_page(WIDTH, HEIGHT)
        self.assertEqual(page.goto(url), 200)
        self.assertEqual(page.eval("document.title"), "netkit \u2014 it works")
        # app.js fetches the page again with HEAD and writes the answer into #status; wait for
        # the change itself (a MutationObserver), bounded by a timer in the page.
        status = page.eval("""new Promise(function (resolve, reject) {
  var el = document.getElementById('status');
  var initial = 'Checking the response headers\\u2026';
  if (el.textContent !== initial) return resolve(el.textContent);
  var obs = new MutationObserver(function () {
    if (el.textContent !== initial) { clearTimeout(t); obs.disconnect(); resolve(el.textContent); }
  });
  var t = setTimeout(function () { obs.disconnect(); reject(new Error('#status unchanged')); }, 10000);
  obs.observe(el, {childList: true, characterData: true, subtree: true});
})""", await_promise=True, timeout=15)
        self.assertIn("200", status)
        self.assertIn("netkit/", status)
        self.assertRegex(status, r"^HEAD / \u2192 200 \u2014 server: netkit/\S+ \u00b7 date: ")
        self.assertIn("content-type: text/html", status)
        # The stylesheet loaded and applied: the header's background is --fg (#1d2330).
        self.assertEqual(page.eval("getComputedStyle(document.querySelector('header'))"
                                   ".backgroundColor"), "rgb(29, 35, 48)")
        self.assertEqual([e for e in self.browser.events
                          if e[0] == "Runtime.exceptionThrown"], [])

        tmp = tempfile.mkdtemp(prefix="netkit-browser-shot-")
        self.addCleanup(lambda: shutil.rmtree(tmp, ignore_errors=True))
        path = os.path.join(tmp, "index.png")
        shot = page.screenshot(path)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), shot)
        self.check_png(shot)
        save_screen(shot, "index.png")


if __name__ == "__main__":
    unittest.main()
