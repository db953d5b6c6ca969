"""`netkit http serve` over https in headless Chromium: the demo site and a listing load over TLS
with the server's self-signed certificate trusted by its key alone (Chromium's SPKI pin list,
computed here from the certificate the server presents, so nothing else is trusted), the page is
a secure context, the connection is HTTP/2 over TLS (ALPN h2; HTTP/1.1 with --no-http2), every
subresource of the page comes over the same protocol, and the cleartext listener with
--redirect-https sends the browser to the https URL.

Needs Debian's chromium (scripts/install-deps browser); skipped with that reason without it.
"""
import base64
import hashlib
import os
import ssl
import subprocess
import tempfile
import unittest

import harness
from browser import cdp

WWW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "www")


def spki_sha256_b64(host, port):
    """base64(SHA-256(SubjectPublicKeyInfo)) of the certificate the server presents."""
    pem = ssl.get_server_certificate((host, port))
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=pem.encode(),
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                         capture_output=True, check=True).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


class BrowserTls(unittest.TestCase):
    def setUp(self):
        if not os.access(cdp.CHROMIUM, os.X_OK):
            self.skipTest("%s not installed (run scripts/install-deps browser)" % cdp.CHROMIUM)
        self.srv = harness.start(self, ["http", "serve", WWW, "-l", "https://127.0.0.1:0",
                                        "-l", "127.0.0.1:0", "--tls-self-signed",
                                        "--redirect-https", "-w", "1", "-q"], listeners=2)
        self.https = self.srv.urls[0].rstrip("/")
        self.http = self.srv.urls[1].rstrip("/")
        self.assertTrue(self.https.startswith("https://"), self.srv.urls)
        host, port = self.srv.host_port(0)
        pin = spki_sha256_b64(host, port)
        self.browser = cdp.Browser(timeout=20, flags=["--ignore-certificate-errors-spki-list=" + pin])
        self.addCleanup(self.browser.close)

    def test_demo_page_over_https(self):
        page = self.browser.new_page(1000, 700)
        self.assertEqual(page.goto(self.https + "/"), 200)
        self.assertEqual(page.eval("document.title"), "netkit \u2014 it works")
        self.assertIs(page.eval("window.isSecureContext"), True)
        self.assertEqual(page.eval("location.protocol"), "https:")
        self.assertEqual(page.eval("performance.getEntries()[0].nextHopProtocol"), "h2")
        # The stylesheet, scripts and images of the page: all fetched, all over h2.
        entries = page.eval("performance.getEntriesByType('resource')"
                            ".map(e => [e.name, e.nextHopProtocol, e.responseStatus || 200])")
        self.assertTrue(entries, "the demo page loads subresources")
        for name, proto, status in entries:
            self.assertEqual((name, proto), (name, "h2"))
            if not name.endswith("/favicon.ico"):  # asked by the browser; the site has none
                self.assertEqual((name, status), (name, 200))
        self.assertEqual([e for e in self.browser.events
                          if e[0] == "Runtime.exceptionThrown"], [])

    def test_http1_without_http2(self):
        srv = harness.start(self, ["http", "serve", WWW, "-l", "https://127.0.0.1:0",
                                   "--tls-self-signed", "--no-http2", "-w", "1", "-q"])
        host, port = srv.host_port(0)
        browser = cdp.Browser(timeout=20, flags=["--ignore-certificate-errors-spki-list=" +
                                                 spki_sha256_b64(host, port)])
        self.addCleanup(browser.close)
        page = browser.new_page(1000, 700)
        self.assertEqual(page.goto(srv.url.rstrip("/") + "/"), 200)
        self.assertEqual(page.eval("performance.getEntries()[0].nextHopProtocol"), "http/1.1")

    def test_cleartext_listener_redirects_the_browser(self):
        page = self.browser.new_page(1000, 700)
        self.assertEqual(page.goto(self.http + "/assets/style.css?v=1"), 200)
        self.assertEqual(page.eval("location.href"), self.https + "/assets/style.css?v=1")

    def test_untrusted_key_is_refused(self):
        """The pin is what makes the page load: a browser without it refuses the certificate,
        so the tests above cannot pass by ignoring certificate errors."""
        other = cdp.Browser(timeout=20)
        self.addCleanup(other.close)
        page = other.new_page(1000, 700)
        try:
            status = page.goto(self.https + "/")
        except Exception:  # the navigation itself fails: refused, as it must be
            status = None
        self.assertNotEqual(status, 200)


if __name__ == "__main__":
    unittest.main()
