/* Content types by file extension.
 *
 * The table is a sorted array of (lower-case extension, full Content-Type value) searched
 * by binary search; it is built once by nk_mime_load and read-only afterwards, so one table
 * can serve every connection of a worker. The full value, charset included, is computed at
 * load time: a lookup allocates nothing and returns a pointer into the table.
 *
 * Sources, in order of precedence:
 *   1. The built-in table of common web types below. It wins over the system file because
 *      /etc/mime.types differs between distributions and sometimes holds values browsers
 *      handle badly for the web (application/x-javascript, text/x-markdown, no entry for
 *      .mjs or .wasm, ...), and a static server must send the same types everywhere.
 *   2. /etc/mime.types (or the path given) fills in every other extension. Where it lists an
 *      extension twice, the first line wins.
 *
 * Charset: every text/ type and the textual types application/javascript,
 * application/xml and image/svg+xml get "; charset=utf-8", since the files we serve are
 * expected to be UTF-8 and browsers would otherwise guess (RFC 9110 section 8.3.2 on charset
 * as a media-type parameter). application/json does not: RFC 8259 section 11 defines no
 * charset parameter for it (JSON text is UTF-8 by definition), nor do the +json types.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netkit/http.h"

#define MIME_EXT_MAX 31        /* longest extension we keep or look up */
#define MIME_TYPE_MAX 127      /* longest media type we keep from the system file */
#define MIME_FILE_ENTRIES 20000 /* bound on entries read from the file (a typical one has ~2000) */

/* ASCII only, whatever the process locale says about bytes above 0x7F. */
static int is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char lower(unsigned char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

/* strncasecmp follows the locale (the Turkish dotless i); names here are ASCII. */
static int ascii_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    }
    return 1;
}

static const char *const builtin[][2] = {
    {"html", "text/html"},        {"htm", "text/html"},
    {"css", "text/css"},          {"js", "text/javascript"}, /* RFC 9239 */
    {"mjs", "text/javascript"},   {"json", "application/json"},
    {"map", "application/json"},  {"jsonld", "application/ld+json"},
    {"webmanifest", "application/manifest+json"},
    {"txt", "text/plain"},        {"log", "text/plain"},
    {"md", "text/markdown"},      {"markdown", "text/markdown"},
    {"csv", "text/csv"},          {"tsv", "text/tab-separated-values"},
    {"ics", "text/calendar"},     {"vtt", "text/vtt"},
    {"xml", "application/xml"},   {"xsl", "application/xml"},
    {"xhtml", "application/xhtml+xml"},
    {"rss", "application/rss+xml"},
    {"atom", "application/atom+xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},         {"apng", "image/apng"},
    {"jpg", "image/jpeg"},        {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},         {"webp", "image/webp"},
    {"avif", "image/avif"},       {"jxl", "image/jxl"},
    {"bmp", "image/bmp"},         {"ico", "image/x-icon"},
    {"tif", "image/tiff"},        {"tiff", "image/tiff"},
    {"pdf", "application/pdf"},   {"zip", "application/zip"},
    {"gz", "application/gzip"},   {"tgz", "application/gzip"},
    {"tar", "application/x-tar"}, {"bz2", "application/x-bzip2"},
    {"xz", "application/x-xz"},   {"zst", "application/zstd"},
    {"7z", "application/x-7z-compressed"},
    {"wasm", "application/wasm"}, {"epub", "application/epub+zip"},
    {"woff", "font/woff"},        {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},          {"otf", "font/otf"},
    {"eot", "application/vnd.ms-fontobject"},
    {"mp4", "video/mp4"},         {"m4v", "video/mp4"},
    {"webm", "video/webm"},       {"ogv", "video/ogg"},
    {"mov", "video/quicktime"},   {"mkv", "video/x-matroska"},
    {"mp3", "audio/mpeg"},        {"m4a", "audio/mp4"},
    {"aac", "audio/aac"},         {"ogg", "audio/ogg"},
    {"oga", "audio/ogg"},         {"opus", "audio/ogg"},
    {"flac", "audio/flac"},       {"wav", "audio/wav"},
    {"m3u8", "application/vnd.apple.mpegurl"},
};

typedef struct mime_entry {
    char *ext;   /* lower case */
    char *ctype; /* full Content-Type value */
    int prio;    /* 0 built-in, 1 file (sort key only) */
    size_t seq;  /* order of appearance (sort key only) */
} mime_entry;

struct nk_mime_table {
    mime_entry *e;
    size_t n, cap;
};

static int wants_charset(const char *type)
{
    static const char *const types[] = {"application/javascript", "application/xml",
                                        "image/svg+xml"};
    size_t len = strlen(type);
    if (len >= 5 && ascii_ieq(type, "text/", 5))
        return 1;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strlen(types[i]) == len && ascii_ieq(type, types[i], len))
            return 1;
    }
    return 0;
}

static int add(nk_mime_table *t, const char *ext, size_t elen, const char *type, size_t tlen,
               int prio)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        mime_entry *e = realloc(t->e, cap * sizeof(*e));
        if (!e)
            return -ENOMEM;
        t->e = e;
        t->cap = cap;
    }
    static const char cs[] = "; charset=utf-8";
    char *x = malloc(elen + 1);
    /* Decide on the charset with a NUL-terminated copy of the type. */
    char *c = malloc(tlen + sizeof(cs));
    if (!x || !c) {
        free(x);
        free(c);
        return -ENOMEM;
    }
    for (size_t i = 0; i < elen; i++)
        x[i] = lower((unsigned char)ext[i]);
    x[elen] = '\0';
    memcpy(c, type, tlen);
    c[tlen] = '\0';
    if (wants_charset(c))
        memcpy(c + tlen, cs, sizeof(cs));
    t->e[t->n].ext = x;
    t->e[t->n].ctype = c;
    t->e[t->n].prio = prio;
    t->e[t->n].seq = t->n;
    t->n++;
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const mime_entry *x = a, *y = b;
    int c = strcmp(x->ext, y->ext);
    if (c)
        return c;
    if (x->prio != y->prio)
        return x->prio - y->prio;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A media type as the system file writes it: type "/" subtype, token characters only. */
static int valid_type(const char *s, size_t len)
{
    size_t slash = 0;
    if (len == 0 || len > MIME_TYPE_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '/') {
            if (slash || i == 0 || i == len - 1)
                return 0;
            slash = i;
        } else if (!is_alnum(c) && !strchr("!#$&-^_.+", c)) {
            return 0;
        }
    }
    return slash != 0;
}

static int valid_ext(const char *s, size_t len)
{
    if (len == 0 || len > MIME_EXT_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_alnum(c) && c != '-' && c != '_' && c != '+')
            return 0;
    }
    return 1;
}

/* One line of mime.types: "type ext1 ext2 ...", '#' starts a comment. */
static int load_line(nk_mime_table *t, char *line, size_t *count)
{
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '#' || *p == '\0')
        return 0;
    const char *type = p;
    while (*p && *p != ' ' && *p != '\t' && *p != '#')
        p++;
    size_t tlen = (size_t)(p - type);
    if (!valid_type(type, tlen))
        return 0;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            return 0;
        const char *ext = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '#')
            p++;
        size_t elen = (size_t)(p - ext);
        if (!valid_ext(ext, elen))
            continue;
        if (*count >= MIME_FILE_ENTRIES)
            return 0;
        (*count)++;
        int r = add(t, ext, elen, type, tlen, 1);
        if (r < 0)
            return r;
    }
}

static int load_file(nk_mime_table *t, const char *path)
{
    FILE *f = fopen(path, "re");
    char line[1024];
    size_t count = 0;
    int r = 0;

    if (!f)
        return 0; /* no file (or unreadable): the built-in table is enough */
    while (fgets(line, sizeof(line), f)) {
        size_t l = strlen(line);
        if (l > 0 && line[l - 1] != '\n' && !feof(f)) {
            /* A line longer than any sane one: skip the rest of it, and the line. */
            int ch;
            while ((ch = getc(f)) != EOF && ch != '\n')
                ;
            continue;
        }
        line[strcspn(line, "\r\n")] = '\0';
        if ((r = load_line(t, line, &count)) < 0)
            break;
    }
    fclose(f);
    return r;
}

int nk_mime_load(const char *path, nk_mime_table **out)
{
    nk_mime_table *t = calloc(1, sizeof(*t));
    int r = 0;
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]) && r == 0; i++)
        r = add(t, builtin[i][0], strlen(builtin[i][0]), builtin[i][1], strlen(builtin[i][1]), 0);
    /* path NULL: the system file; "" : the built-in table only. */
    if (r == 0 && !(path && path[0] == '\0'))
        r = load_file(t, path ? path : "/etc/mime.types");
    if (r < 0) {
        nk_mime_free(t);
        return r;
    }
    /* Sort by extension, built-in first, then file order; keep the first of each run. */
    qsort(t->e, t->n, sizeof(*t->e), cmp_entry);
    size_t w = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (w > 0 && strcmp(t->e[w - 1].ext, t->e[i].ext) == 0) {
            free(t->e[i].ext);
            free(t->e[i].ctype);
            continue;
        }
        t->e[w++] = t->e[i];
    }
    t->n = w;
    *out = t;
    return 0;
}

void nk_mime_free(nk_mime_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->e[i].ext);
        free(t->e[i].ctype);
    }
    free(t->e);
    free(t);
}

const char *nk_mime_lookup(const nk_mime_table *t, const char *filename)
{
    static const char unknown[] = "application/octet-stream";
    char ext[MIME_EXT_MAX + 1];

    if (!t || !filename)
        return unknown;
    const char *base = strrchr(filename, '/');
    base = base ? base + 1 : filename;
    const char *dot = strrchr(base, '.');
    /* No dot, or only the leading dot of a dotfile such as ".profile": no extension. */
    if (!dot || dot == base)
        return unknown;
    size_t len = strlen(dot + 1);
    if (len == 0 || len > MIME_EXT_MAX)
        return unknown;
    for (size_t i = 0; i <= len; i++)
        ext[i] = lower((unsigned char)dot[1 + i]);

    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ext, t->e[mid].ext);
        if (c == 0)
            return t->e[mid].ctype;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return unknown;
}

int nk_mime_compressible(const char *ct)
{
    if (!ct)
        return 0;
    size_t len = strcspn(ct, ";");
    while (len > 0 && (ct[len - 1] == ' ' || ct[len - 1] == '\t'))
        len--;
    if (len >= 5 && ascii_ieq(ct, "text/", 5))
        return 1;
    /* Structured-syntax suffixes (RFC 6839): anything +json or +xml is text underneath. */
    if ((len > 5 && ascii_ieq(ct + len - 5, "+json", 5)) ||
        (len > 4 && ascii_ieq(ct + len - 4, "+xml", 4)))
        return 1;
    static const char *const types[] = {
        "application/javascript", "application/json",  "application/xml",
        "application/wasm",       "application/x-tar", "application/vnd.ms-fontobject",
        "application/yaml",       "application/toml",  "image/x-icon",
        "image/bmp",              "font/ttf",          "font/otf",
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strlen(types[i]) == len && ascii_ieq(ct, types[i], len))
            return 1;
    }
    return 0;
}
