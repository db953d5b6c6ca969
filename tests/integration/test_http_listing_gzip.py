"""--gzip compresses directory listings (HTML and JSON) for clients that accept gzip: the same
page once decompressed, Vary: Accept-Encoding, a Content-Length; clients without gzip and small
listings get the page as it is."""
import gzip
import os
import tempfile
import unittest

import harness
import httptest as H


class ListingGzip(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        big = os.path.join(self.tmp.name, "big")
        os.mkdir(big)
        for i in range(80):
            open(os.path.join(big, "a-rather-long-file-name-%03d.txt" % i), "w").close()
        os.mkdir(os.path.join(self.tmp.name, "small"))
        srv = harness.start(self, ["http", "serve", self.tmp.name, "-l", "127.0.0.1:0", "-w", "1",
                                   "--access-log", "off", "--gzip"])
        self.addr = srv.host_port()

    def get(self, target, *headers):
        data = H.raw(self.addr[0], self.addr[1], H.get_close(target, *headers))
        return H.parse_one(data, eof=True)[0]

    def test_html_and_json_listings_compressed(self):
        for target in ("/big/", "/big/?format=json"):
            plain = self.get(target)
            zipped = self.get(target, "Accept-Encoding: gzip")
            self.assertEqual(plain.status, 200)
            self.assertIsNone(plain.header("Content-Encoding"))
            self.assertEqual(zipped.header("Content-Encoding"), "gzip")
            self.assertIn("Accept-Encoding", plain.header("Vary") or "")
            self.assertIn("Accept-Encoding", zipped.header("Vary") or "")
            self.assertEqual(int(zipped.header("Content-Length")), len(zipped.body))
            self.assertLess(len(zipped.body), len(plain.body))
            self.assertEqual(gzip.decompress(zipped.body), plain.body)

    def test_refused_gzip_and_small_listing_stay_identity(self):
        self.assertIsNone(self.get("/big/", "Accept-Encoding: gzip;q=0").header("Content-Encoding"))
        small = self.get("/small/?format=json", "Accept-Encoding: gzip")
        self.assertLess(len(small.body), 1024)
        self.assertIsNone(small.header("Content-Encoding"))


if __name__ == "__main__":
    unittest.main()
