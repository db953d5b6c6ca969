/* Content types: the built-in table, a mime.types file under it, lookups, compressibility. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "netkit/http.h"

#define OCTET "application/octet-stream"

static void test_builtin(void **state)
{
    (void)state;
    nk_mime_table *t = NULL;
    assert_int_equal(nk_mime_load("", &t), 0); /* "": the built-in table alone */
    static const struct {
        const char *name, *want, *why;
    } c[] = {
        {"index.html", "text/html; charset=utf-8", "html with charset"},
        {"INDEX.HTM", "text/html; charset=utf-8", "case-insensitive extension"},
        {"style.css", "text/css; charset=utf-8", "css"},
        {"app.js", "text/javascript; charset=utf-8", "js (RFC 9239)"},
        {"mod.mjs", "text/javascript; charset=utf-8", "ES modules"},
        /* RFC 8259 section 11: application/json defines no charset parameter (JSON is
         * UTF-8 by definition), so none is sent. */
        {"data.json", "application/json", "json has no charset parameter"},
        {"app.js.map", "application/json", "source maps are json"},
        {"a.svg", "image/svg+xml; charset=utf-8", "svg gets a charset"},
        {"feed.xml", "application/xml; charset=utf-8", "xml gets a charset"},
        {"README.md", "text/markdown; charset=utf-8", "markdown"},
        {"x.png", "image/png", "binary types get no charset"},
        {"photo.JPEG", "image/jpeg", "jpeg, upper case"},
        {"f.woff2", "font/woff2", "web font"},
        {"m.wasm", "application/wasm", "wasm"},
        {"v.webm", "video/webm", "video"},
        {"archive.tar.gz", "application/gzip", "the last extension decides"},
        {"dir.d/file", OCTET, "a dot in a directory name is not an extension"},
        {"/srv/www/a.txt", "text/plain; charset=utf-8", "a full path"},
        {"Makefile", OCTET, "no extension"},
        {".profile", OCTET, "a dotfile's leading dot is not an extension"},
        {".hidden.css", "text/css; charset=utf-8", "a dotfile with an extension"},
        {"name.", OCTET, "empty extension"},
        {"x.nosuchextension", OCTET, "unknown"},
        {"x.abcdefghijklmnopqrstuvwxyzabcdefghijkl", OCTET, "an extension too long to be real"},
        {"", OCTET, "empty name"},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        const char *got = nk_mime_lookup(t, c[i].name);
        if (strcmp(got, c[i].want) != 0)
            fail_msg("case %zu (%s): '%s' gave '%s'", i, c[i].why, c[i].name, got);
    }
    /* The same pointer each time: no per-lookup allocation. */
    assert_ptr_equal(nk_mime_lookup(t, "a.html"), nk_mime_lookup(t, "b.HTML"));
    assert_string_equal(nk_mime_lookup(NULL, "a.html"), OCTET);
    nk_mime_free(t);
}

static void test_file_under_builtin(void **state)
{
    (void)state;
    char path[] = "/tmp/nk_mime_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("# comment line\n"
          "\n"
          "application/x-javascript\tjs\n"           /* must not override the built-in */
          "text/x-markdown md markdown\n"             /* same */
          "application/x-foo\tfoo fooz   # trailing comment\n"
          "application/x-first\tdup\n"
          "application/x-second\tdup\n"               /* first line wins */
          "text/x-bar BAR\n"                          /* extension lower-cased */
          "bad type\twhat\n"                          /* no slash: ignored */
          "application/x-bad\tok bad/ext\n"           /* a bad extension is skipped */
          "application/x-crlf crlf\r\n",
          f);
    /* A line far longer than the reader's buffer is skipped whole. */
    fputs("application/x-long", f);
    for (int i = 0; i < 300; i++)
        fputs(" longext", f);
    fputs(" toolong\n", f);
    fputs("application/x-after after", f); /* last line without a newline */
    fclose(f);

    nk_mime_table *t = NULL;
    assert_int_equal(nk_mime_load(path, &t), 0);
    assert_string_equal(nk_mime_lookup(t, "a.js"), "text/javascript; charset=utf-8");
    assert_string_equal(nk_mime_lookup(t, "a.md"), "text/markdown; charset=utf-8");
    assert_string_equal(nk_mime_lookup(t, "a.foo"), "application/x-foo");
    assert_string_equal(nk_mime_lookup(t, "a.FOOZ"), "application/x-foo");
    assert_string_equal(nk_mime_lookup(t, "a.dup"), "application/x-first");
    assert_string_equal(nk_mime_lookup(t, "a.bar"), "text/x-bar; charset=utf-8");
    assert_string_equal(nk_mime_lookup(t, "a.what"), OCTET);
    assert_string_equal(nk_mime_lookup(t, "a.ok"), "application/x-bad");
    assert_string_equal(nk_mime_lookup(t, "a.crlf"), "application/x-crlf");
    assert_string_equal(nk_mime_lookup(t, "a.toolong"), OCTET);
    assert_string_equal(nk_mime_lookup(t, "a.after"), "application/x-after");
    assert_string_equal(nk_mime_lookup(t, "a.png"), "image/png");
    nk_mime_free(t);
    unlink(path);
}

static void test_missing_file(void **state)
{
    (void)state;
    nk_mime_table *t = NULL;
    assert_int_equal(nk_mime_load("/nonexistent/mime.types", &t), 0);
    assert_string_equal(nk_mime_lookup(t, "x.css"), "text/css; charset=utf-8");
    nk_mime_free(t);
    /* The system file, whatever it holds, never overrides the web types. */
    assert_int_equal(nk_mime_load(NULL, &t), 0);
    assert_string_equal(nk_mime_lookup(t, "x.js"), "text/javascript; charset=utf-8");
    assert_string_equal(nk_mime_lookup(t, "x.html"), "text/html; charset=utf-8");
    nk_mime_free(t);
    nk_mime_free(NULL);
}

static void test_compressible(void **state)
{
    (void)state;
    static const struct {
        const char *ct;
        int want;
        const char *why;
    } c[] = {
        {"text/html; charset=utf-8", 1, "text with a parameter"},
        {"TEXT/PLAIN", 1, "case-insensitive"},
        {"application/json", 1, "json"},
        {"application/javascript", 1, "javascript"},
        {"image/svg+xml; charset=utf-8", 1, "svg (+xml suffix)"},
        {"application/ld+json", 1, "+json suffix"},
        {"application/wasm", 1, "wasm compresses well"},
        {"image/png", 0, "already compressed"},
        {"application/gzip", 0, "already compressed"},
        {"video/mp4", 0, "already compressed"},
        {"application/octet-stream", 0, "unknown bytes"},
        {"application/jsonx", 0, "not json"},
        {"text", 0, "no subtype"},
        {"", 0, "empty"},
        {NULL, 0, "none"},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        if (nk_mime_compressible(c[i].ct) != c[i].want)
            fail_msg("compressible case %zu (%s)", i, c[i].why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin),
        cmocka_unit_test(test_file_under_builtin),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_compressible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
