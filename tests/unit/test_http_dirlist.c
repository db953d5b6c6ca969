/* Directory listings and the escaping helpers, on a real temporary directory. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "netkit/buf.h"
#include "netkit/http.h"

#define EVIL "<script>&\"'.txt"
#define T_2026 ((time_t)1795839030) /* 2026-11-28T04:10:30Z */

typedef struct fixture {
    char dir[64];
    int fd;
} fixture;

static void make_file(int dfd, const char *name, off_t size)
{
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0); /* sparse: no disk space needed */
    struct timespec ts[2] = {{T_2026, 0}, {T_2026, 0}};
    assert_int_equal(futimens(fd, ts), 0);
    close(fd);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/nk_dirlist_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(f->fd >= 0);
    make_file(f->fd, EVIL, 1500);
    make_file(f->fd, "A.txt", 1023);
    make_file(f->fd, "b.txt", 1024);
    make_file(f->fd, "x y.txt", 1048575);
    make_file(f->fd, "big.iso", (off_t)5 << 30);
    make_file(f->fd, ".hidden", 1);
    assert_int_equal(mkdirat(f->fd, "sub", 0755), 0);
    assert_int_equal(mkdirat(f->fd, "zdir", 0755), 0);
    assert_int_equal(symlinkat("does-not-exist", f->fd, "dangle"), 0);
    assert_int_equal(symlinkat("sub", f->fd, "linkdir"), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    static const char *const files[] = {EVIL, "A.txt", "b.txt", "x y.txt", "big.iso",
                                        ".hidden", "dangle", "linkdir"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlinkat(f->fd, files[i], 0);
    unlinkat(f->fd, "sub", AT_REMOVEDIR);
    unlinkat(f->fd, "zdir", AT_REMOVEDIR);
    close(f->fd);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Render into a NUL-terminated string the caller frees. */
static char *render(int fd, const char *url, int json, int dots)
{
    nk_buf b;
    nk_buf_init(&b, 1 << 20);
    int r = nk_http_dirlist(fd, url, json, dots, &b);
    if (r != 0)
        fail_msg("nk_http_dirlist: %d", r);
    char *s = malloc(nk_buf_len(&b) + 1);
    assert_non_null(s);
    memcpy(s, nk_buf_rptr(&b), nk_buf_len(&b));
    s[nk_buf_len(&b)] = '\0';
    nk_buf_free(&b);
    return s;
}

/* Position of needle in s, failing the test when absent. */
static size_t pos(const char *s, const char *needle)
{
    const char *p = strstr(s, needle);
    if (!p)
        fail_msg("'%s' not found", needle);
    return (size_t)(p - s);
}

static void test_html(void **state)
{
    fixture *f = *state;
    char *h = render(f->fd, "/a&b/", 0, 0);

    assert_int_equal(pos(h, "<!DOCTYPE html>"), 0);
    pos(h, "<meta charset=\"utf-8\">");
    pos(h, "<title>Index of /a&amp;b/</title>");
    /* The heading is a breadcrumb: each ancestor a link, percent-encoded in the href and
     * escaped in the text, as the rows are. */
    pos(h, "<h1>Index of <a href=\"/\">/</a><a href=\"/a%26b/\" aria-current=\"page\">"
           "a&amp;b</a>/</h1>");
    assert_null(strstr(h, "/a&b/")); /* the path only ever appears escaped */
    /* The evil name: escaped text, percent-encoded link, never raw. */
    pos(h, "<a href=\"%3Cscript%3E%26%22%27.txt\">&lt;script&gt;&amp;&quot;&#39;.txt</a>");
    assert_null(strstr(h, "<script>"));
    pos(h, "<a href=\"x%20y.txt\">x y.txt</a>");
    /* Directories (a link to one too) get a trailing slash in the link and the text. */
    pos(h, "<a href=\"sub/\">sub/</a>");
    pos(h, "<a href=\"linkdir/\">linkdir/</a>");
    pos(h, "<a href=\"../\">../</a>");
    /* Sizes: exact bytes in the title, human-readable text. */
    pos(h, "title=\"1500 bytes\">1.5 KiB</td>");
    pos(h, "title=\"1023 bytes\">1023 B</td>");
    pos(h, "title=\"1024 bytes\">1.0 KiB</td>");
    pos(h, "title=\"1048575 bytes\">1.0 MiB</td>"); /* 1023.99 KiB rounds up a unit */
    pos(h, "title=\"5368709120 bytes\">5.0 GiB</td>");
    pos(h, "2026-11-28 04:10");
    /* A dangling link would be 404: not listed. */
    assert_null(strstr(h, "dangle"));
    /* Hidden by default. */
    assert_null(strstr(h, ".hidden"));
    /* Order: parent, directories by name, then files by name (byte order). */
    size_t up = pos(h, "href=\"../\""), ld = pos(h, "href=\"linkdir/\""), sub = pos(h, "href=\"sub/\""),
           z = pos(h, "href=\"zdir/\""), evil = pos(h, "href=\"%3C"), a = pos(h, "href=\"A.txt\""),
           b = pos(h, "href=\"b.txt\""), big = pos(h, "href=\"big.iso\""), xy = pos(h, "href=\"x%20y");
    assert_true(up < ld && ld < sub && sub < z && z < evil && evil < a && a < b && b < big &&
                big < xy);
    pos(h, "</html>\n");
    free(h);
}

/* Every ancestor of a deep path, with odd bytes in its names. */
static void test_breadcrumb(void **state)
{
    fixture *f = *state;
    char *h = render(f->fd, "/x y/<b>&\"/caf\xc3\xa9/", 0, 0);
    pos(h, "<h1>Index of <a href=\"/\">/</a>"
           "<a href=\"/x%20y/\">x y</a>/"
           "<a href=\"/x%20y/%3Cb%3E%26%22/\">&lt;b&gt;&amp;&quot;</a>/"
           "<a href=\"/x%20y/%3Cb%3E%26%22/caf%C3%A9/\" aria-current=\"page\">caf\xc3\xa9</a>/"
           "</h1>");
    assert_null(strstr(h, "<b>"));
    free(h);
    h = render(f->fd, "/", 0, 0);
    pos(h, "<h1>Index of <a href=\"/\" aria-current=\"page\">/</a></h1>");
    free(h);
}

static void test_root_and_dotfiles(void **state)
{
    fixture *f = *state;
    char *h = render(f->fd, "/", 0, 1);
    assert_null(strstr(h, "href=\"../\"")); /* no parent above the root */
    pos(h, "<a href=\".hidden\">.hidden</a>");
    free(h);
    /* The caller's descriptor is still open and a second listing is complete again. */
    assert_true(fcntl(f->fd, F_GETFD) >= 0);
    char *again = render(f->fd, "/", 0, 1);
    pos(again, "<a href=\".hidden\">.hidden</a>");
    pos(again, "href=\"zdir/\"");
    free(again);
}

/* A small JSON checker: enough grammar (RFC 8259) to prove the output is well formed. */
static const char *j_value(const char *p);

static const char *j_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

static const char *j_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20)
            return NULL; /* raw control characters are not allowed */
        if (c == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++) {
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
                        return NULL;
                }
                p += 5;
                continue;
            }
            if (!*p || !strchr("\"\\/bfnrt", *p))
                return NULL;
        }
        p++;
    }
    return p + 1;
}

static const char *j_value(const char *p)
{
    p = j_ws(p);
    if (*p == '"')
        return j_string(p);
    if (*p == '[' || *p == '{') {
        char close = *p == '[' ? ']' : '}';
        int obj = *p == '{';
        p = j_ws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                if (!(p = j_string(j_ws(p))) || *(p = j_ws(p)) != ':')
                    return NULL;
                p++;
            }
            if (!(p = j_value(p)))
                return NULL;
            p = j_ws(p);
            if (*p == close)
                return p + 1;
            if (*p++ != ',')
                return NULL;
        }
    }
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
        p++;
        while (*p >= '0' && *p <= '9')
            p++;
        return p;
    }
    if (strncmp(p, "null", 4) == 0)
        return p + 4;
    if (strncmp(p, "true", 4) == 0)
        return p + 4;
    if (strncmp(p, "false", 5) == 0)
        return p + 5;
    return NULL;
}

static int json_valid(const char *s)
{
    const char *end = j_value(s);
    return end && *j_ws(end) == '\0';
}

static void test_json(void **state)
{
    fixture *f = *state;
    char *j = render(f->fd, "/x/", 1, 0);
    if (!json_valid(j))
        fail_msg("invalid JSON:\n%s", j);
    assert_int_equal(j[0], '[');
    pos(j, "{\"name\":\"<script>&\\\"'.txt\",\"type\":\"file\",\"size\":1500,"
           "\"mtime\":\"2026-11-28T04:10:30Z\"}");
    pos(j, "{\"name\":\"sub\",\"type\":\"dir\",\"size\":null,\"mtime\":");
    assert_null(strstr(j, "dangle")); /* would be 404 */
    pos(j, "\"size\":5368709120");
    assert_null(strstr(j, ".hidden"));
    assert_true(pos(j, "\"zdir\"") < pos(j, "\"A.txt\""));
    free(j);
    j = render(f->fd, "/x/", 1, 1);
    assert_true(json_valid(j));
    pos(j, "\".hidden\"");
    free(j);
    /* The checker itself rejects broken JSON, so the checks above can fail. */
    assert_false(json_valid("[{\"a\":1,}]"));
    assert_false(json_valid("[\"a\nb\"]"));
    assert_false(json_valid("[\"a\"\"b\"]"));
}

static void test_empty_dir(void **state)
{
    fixture *f = *state;
    int fd = openat(f->fd, "zdir", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    char *j = render(fd, "/zdir/", 1, 1);
    assert_string_equal(j, "[]\n");
    free(j);
    char *h = render(fd, "/zdir/", 0, 1);
    pos(h, "<tbody>\n<tr><td><a href=\"../\">../</a>");
    free(h);
    close(fd);
    nk_buf b;
    nk_buf_init(&b, 0);
    assert_int_equal(nk_http_dirlist(-1, "/", 0, 0, &b), -EINVAL);
    /* A limit on the output buffer is reported, not overrun. */
    nk_buf small;
    nk_buf_init(&small, 64);
    assert_true(nk_http_dirlist(f->fd, "/", 0, 0, &small) < 0);
    nk_buf_free(&small);
    nk_buf_free(&b);
}

/* Render with options into a NUL-terminated string the caller frees. */
static char *render_opts(int fd, const nk_http_dirlist_opts *o)
{
    nk_buf b;
    nk_buf_init(&b, 1 << 22);
    int r = nk_http_dirlist_render(fd, "/d/", o, &b);
    if (r != 0)
        fail_msg("nk_http_dirlist_render: %d", r);
    char *s = strndup(nk_buf_rptr(&b), nk_buf_len(&b));
    assert_non_null(s);
    nk_buf_free(&b);
    return s;
}

/* A resolve callback that refuses every link but "linkdir". */
static int refuse_most(void *ctx, const char *name, struct stat *st)
{
    int dfd = *(int *)ctx;
    if (strcmp(name, "linkdir") != 0)
        return -ENOENT;
    return fstatat(dfd, name, st, 0) == 0 ? 0 : -errno;
}

/* Only what a request would be served is listed. */
static void test_unservable_left_out(void **state)
{
    fixture *f = *state;
    make_file(f->fd, "line\nfeed", 1);
    make_file(f->fd, "tab\tname", 1);
    make_file(f->fd, "back\\slash", 1);
    make_file(f->fd, "bad\xff.txt", 1);
    make_file(f->fd, ".netkit-upload-AbC123", 7);
    make_file(f->fd, "100%.txt", 1);
    assert_int_equal(mkfifoat(f->fd, "fifo", 0600), 0);
    assert_int_equal(symlinkat("A.txt", f->fd, "goodlink"), 0);
    nk_http_dirlist_opts o = {.json = 1, .show_dotfiles = 1};
    char *j = render_opts(f->fd, &o);
    assert_null(strstr(j, "line"));
    assert_null(strstr(j, "tab"));
    assert_null(strstr(j, "slash"));
    assert_null(strstr(j, "bad"));
    assert_null(strstr(j, "netkit-upload")); /* even with dotfiles shown */
    assert_null(strstr(j, "fifo"));
    pos(j, "\".hidden\"");
    pos(j, "\"100%.txt\"");
    pos(j, "{\"name\":\"goodlink\",\"type\":\"file\",\"size\":1023,");
    free(j);
    /* The callback decides for links: refused ones are left out. */
    o.resolve = refuse_most;
    o.ctx = &f->fd;
    j = render_opts(f->fd, &o);
    assert_null(strstr(j, "goodlink"));
    pos(j, "{\"name\":\"linkdir\",\"type\":\"dir\"");
    free(j);
    static const char *const extra[] = {"line\nfeed", "tab\tname", "back\\slash", "bad\xff.txt",
                                        ".netkit-upload-AbC123", "100%.txt", "fifo", "goodlink"};
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
        assert_int_equal(unlinkat(f->fd, extra[i], 0), 0);
}

/* At most max_rows rows, the first in order, and the page says the list was cut. */
static void test_max_rows(void **state)
{
    fixture *f = *state;
    nk_http_dirlist_opts o = {.max_rows = 3};
    char *h = render_opts(f->fd, &o);
    pos(h, "href=\"linkdir/\"");
    pos(h, "href=\"zdir/\"");
    assert_null(strstr(h, "href=\"A.txt\""));
    pos(h, "This list was truncated: 5 more entries not shown.");
    free(h);
    o.json = 1;
    char *j = render_opts(f->fd, &o);
    assert_null(strstr(j, "A.txt"));
    pos(j, "\"zdir\"");
    free(j);
    o.json = 0;
    o.max_rows = 0; /* default: everything here */
    h = render_opts(f->fd, &o);
    assert_null(strstr(h, "truncated"));
    pos(h, "href=\"x%20y.txt\"");
    free(h);
}

/* The "name" values of a JSON listing in order, joined by '|' (as escaped in the JSON). */
static char *json_names(const char *j)
{
    char *o = calloc(1, strlen(j) + 1);
    assert_non_null(o);
    for (const char *p = strstr(j, "{\"name\":\""); p; p = strstr(p, "{\"name\":\"")) {
        p += 9;
        const char *e = strstr(p, "\",\"type\"");
        assert_non_null(e);
        if (*o)
            strcat(o, "|");
        strncat(o, p, (size_t)(e - p));
        p = e;
    }
    return o;
}

static void expect_order(int fd, int flags, const char *want)
{
    nk_http_dirlist_opts o = {.json = 1, .flags = flags};
    char *j = render_opts(fd, &o);
    char *got = json_names(j);
    if (strcmp(got, want) != 0)
        fail_msg("flags %#x:\n got  %s\n want %s", (unsigned)flags, got, want);
    free(got);
    free(j);
}

#define EVIL_J "<script>&\\\"'.txt"

/* Sorting by name, size and time, either way: directories always first, ties by name. */
static void test_sort_order(void **state)
{
    fixture *f = *state;
    make_file(f->fd, "a-same.txt", 1024); /* the size of b.txt: a tie broken by name */
    struct timespec old[2] = {{T_2026 - 100, 0}, {T_2026 - 100, 0}};
    struct timespec young[2] = {{T_2026 + 100, 0}, {T_2026 + 100, 0}};
    struct timespec dold[2] = {{T_2026 - 5, 0}, {T_2026 - 5, 0}};
    struct timespec dyoung[2] = {{T_2026 + 5, 0}, {T_2026 + 5, 0}};
    assert_int_equal(utimensat(f->fd, "A.txt", old, 0), 0);
    assert_int_equal(utimensat(f->fd, "b.txt", young, 0), 0);
    assert_int_equal(utimensat(f->fd, "zdir", dold, 0), 0);
    assert_int_equal(utimensat(f->fd, "sub", dyoung, 0), 0); /* linkdir leads there: a tie */
    const int size = NK_HTTP_DIRLIST_SORT_SIZE, mtime = NK_HTTP_DIRLIST_SORT_MTIME,
              desc = NK_HTTP_DIRLIST_DESC;
    expect_order(f->fd, 0, "linkdir|sub|zdir|" EVIL_J "|A.txt|a-same.txt|b.txt|big.iso|x y.txt");
    expect_order(f->fd, desc, "zdir|sub|linkdir|x y.txt|big.iso|b.txt|a-same.txt|A.txt|" EVIL_J);
    expect_order(f->fd, size, "linkdir|sub|zdir|A.txt|a-same.txt|b.txt|" EVIL_J "|x y.txt|big.iso");
    expect_order(f->fd, size | desc,
                 "linkdir|sub|zdir|big.iso|x y.txt|" EVIL_J "|a-same.txt|b.txt|A.txt");
    expect_order(f->fd, mtime,
                 "zdir|linkdir|sub|A.txt|" EVIL_J "|a-same.txt|big.iso|x y.txt|b.txt");
    expect_order(f->fd, mtime | desc,
                 "linkdir|sub|zdir|b.txt|" EVIL_J "|a-same.txt|big.iso|x y.txt|A.txt");
    /* The HTML rows follow the same order, and each column header links to its sort: the
     * current column toggles its order, the others start ascending. */
    nk_http_dirlist_opts o = {.flags = size | desc};
    char *h = render_opts(f->fd, &o);
    assert_true(pos(h, "href=\"big.iso\"") < pos(h, "href=\"A.txt\""));
    assert_true(pos(h, "href=\"zdir/\"") < pos(h, "href=\"big.iso\""));
    pos(h, "<a href=\"?sort=name&amp;order=asc\">Name</a>");
    pos(h, "<a href=\"?sort=size&amp;order=asc\">Size");
    pos(h, "<a href=\"?sort=mtime&amp;order=asc\">Modified");
    pos(h, "aria-sort=\"descending\"");
    free(h);
    o.flags = 0;
    h = render_opts(f->fd, &o);
    pos(h, "<a href=\"?sort=name&amp;order=desc\">Name");
    pos(h, "<a href=\"?sort=size&amp;order=asc\">Size");
    pos(h, "aria-sort=\"ascending\"");
    free(h);
    assert_int_equal(unlinkat(f->fd, "a-same.txt", 0), 0);
}

/* ?sort=name|size|mtime&order=asc|desc; anything else is ignored. */
static void test_sort_query(void **state)
{
    (void)state;
    static const struct {
        const char *q;
        int want;
    } c[] = {
        {"", 0},
        {"sort=size", NK_HTTP_DIRLIST_SORT_SIZE},
        {"sort=mtime&order=desc", NK_HTTP_DIRLIST_SORT_MTIME | NK_HTTP_DIRLIST_DESC},
        {"order=desc", NK_HTTP_DIRLIST_DESC},
        {"format=json&order=asc&sort=name", 0},
        {"format=json&sort=size&order=desc", NK_HTTP_DIRLIST_SORT_SIZE | NK_HTTP_DIRLIST_DESC},
        {"sort=bogus&order=up", 0},
        {"sort=sizes&order=descending", 0},
        {"xsort=size&border=desc", 0},
        {"sort=&order=", 0},
        {"sort=size&sort=mtime", NK_HTTP_DIRLIST_SORT_SIZE}, /* the first one counts */
        {"sort=SIZE", 0},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        int got = nk_http_dirlist_sort_query(c[i].q, strlen(c[i].q));
        if (got != c[i].want)
            fail_msg("'%s': got %#x, want %#x", c[i].q, (unsigned)got, (unsigned)c[i].want);
    }
    assert_int_equal(nk_http_dirlist_sort_query(NULL, 0), 0);
}

static char *esc(int (*fn)(const char *, size_t, struct nk_buf *), const char *s, size_t len)
{
    nk_buf b;
    nk_buf_init(&b, 0);
    assert_int_equal(fn(s, len, &b), 0);
    char *r = nk_buf_len(&b) ? strndup(nk_buf_rptr(&b), nk_buf_len(&b)) : strdup("");
    nk_buf_free(&b);
    return r;
}

static void test_escape(void **state)
{
    (void)state;
    static const struct {
        int which; /* 0 html, 1 json, 2 url */
        const char *in;
        size_t len;
        const char *want;
        const char *why;
    } c[] = {
        {0, "plain", 5, "plain", "nothing to escape"},
        {0, "<a href='x'>&\"", 14, "&lt;a href=&#39;x&#39;&gt;&amp;&quot;", "all five"},
        {0, "", 0, "", "empty"},
        {1, "a\"b\\c", 5, "a\\\"b\\\\c", "quote and backslash"},
        {1, "\n\r\t\b\f", 5, "\\n\\r\\t\\b\\f", "short escapes"},
        {1, "\x01\x1f\x7f", 3, "\\u0001\\u001F\\u007F", "other control characters"},
        {1, "a\0b", 3, "a\\u0000b", "NUL inside the length"},
        {1, "caf\xc3\xa9 \xe2\x82\xac", 9, "caf\xc3\xa9 \xe2\x82\xac", "valid UTF-8 as is"},
        {1, "\xff", 1, "\xef\xbf\xbd", "an invalid byte becomes U+FFFD"},
        {1, "a\xc3", 2, "a\xef\xbf\xbd", "a truncated sequence"},
        {1, "\xc0\xae", 2, "\xef\xbf\xbd\xef\xbf\xbd", "overlong: one U+FFFD per byte"},
        {1, "\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "a surrogate"},
        {1, "</script>", 9, "</script>", "JSON needs no HTML escaping"},
        {2, "a-z_0.9~", 8, "a-z_0.9~", "unreserved stays"},
        {2, "a/b", 3, "a%2Fb", "a slash is encoded: one segment"},
        {2, "a b?#%:", 7, "a%20b%3F%23%25%3A", "space, ?, #, %, :"},
        {2, "\xc3\xa9", 2, "%C3%A9", "UTF-8 bytes"},
    };
    int (*fns[3])(const char *, size_t, struct nk_buf *) = {nk_http_html_escape,
                                                            nk_http_json_escape, nk_http_url_escape};
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char *got = esc(fns[c[i].which], c[i].in, c[i].len);
        if (strcmp(got, c[i].want) != 0)
            fail_msg("escape case %zu (%s): got '%s'", i, c[i].why, got);
        free(got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_html, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breadcrumb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_and_dotfiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unservable_left_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sort_order, setup, teardown),
        cmocka_unit_test(test_sort_query),
        cmocka_unit_test(test_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
