/* A whole directory as one download (--archives): "?download=tar" streams a POSIX ustar
 * archive (pax extended headers for names over 100 bytes and sizes from 8 GiB), and
 * "?download=tar.gz" the same through deflate with a gzip wrapper.
 *
 * What goes in is what the listings show, judged the same way: the name rules (no dotfile
 * unless --dotfiles, never a temporary upload file, only names a request can carry), regular
 * files and directories only, and each entry opened as a request for it would be
 * (nk__open_beneath from the root: confinement unless --follow-symlinks, the rules on the
 * real path). A link is archived as what it leads to. A directory already being walked (a
 * link back up the tree) is left out, so the walk ends.
 *
 * Memory is constant: the body is produced piece by piece (nk_httpd_respond_stream) as the
 * client takes it, a file read AR_PIECE bytes at a time, with one open directory per level
 * of the walk (at most AR_MAX_DEPTH). Past AR_MAX_ENTRIES entries the body fails, so the
 * connection closes and the client sees a cut download rather than an archive that looks
 * complete. A file that shrinks while it is read is padded with zeros to the size its header
 * announced; one that grows is cut at it.
 *
 * Directories are read in readdir order (sorting would hold every name in memory), and files
 * are read on the loop, as sendfile reads them for plain responses.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#define ZLIB_CONST
#include <zlib.h>

#define AR_MAX_DEPTH 32
#define AR_MAX_ENTRIES 100000
#define AR_PIECE 65536
#define AR_BLOCK 512
#define AR_MAX_OCTAL_SIZE UINT64_C(077777777777) /* 11 octal digits */

typedef struct ar_dir {
    DIR *d;
    dev_t dev;
    ino_t ino;
    size_t plen; /* length of rel for this directory, with its trailing '/' */
} ar_dir;

typedef struct ar_state {
    nk_httpd *srv;
    ar_dir dirs[AR_MAX_DEPTH];
    int depth;
    char rel[4096];  /* the current path relative to the root */
    size_t base;     /* the archived directory's part of rel */
    char top[256];   /* the archive's top directory: the archived directory's name */
    int fd;          /* the file being copied, or -1 */
    uint64_t left;   /* its bytes still to copy */
    size_t pad;      /* zeros to the end of its last block */
    unsigned entries;
    int ended;       /* the two zero blocks are out */
    int top_done;    /* the top directory's header is out */
    struct stat top_st;
    int gz;
    int z_ready;
    z_stream z;
    nk_buf raw;      /* tar bytes waiting for deflate (gz only) */
} ar_state;

static void ar_free(ar_state *a)
{
    for (int i = 0; i < a->depth; i++)
        closedir(a->dirs[i].d);
    if (a->fd >= 0)
        close(a->fd);
    if (a->z_ready)
        deflateEnd(&a->z);
    nk_buf_free(&a->raw);
    free(a);
}

/* ---- tar headers ----------------------------------------------------------------------------- */

static void octal(char *field, size_t width, uint64_t v)
{
    /* width - 1 digits and a NUL, as POSIX ustar writes numeric fields */
    snprintf(field, width, "%0*" PRIo64, (int)(width - 1), v);
}

static int put_block(nk_buf *out, const char *name, size_t nlen, char type, unsigned mode,
                     uint64_t size, uint64_t mtime)
{
    char h[AR_BLOCK];
    memset(h, 0, sizeof h);
    memcpy(h, name, nlen > 100 ? 100 : nlen); /* longer: the pax header before holds it */
    octal(h + 100, 8, mode & 07777);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    octal(h + 124, 12, size > AR_MAX_OCTAL_SIZE ? 0 : size);
    octal(h + 136, 12, mtime > AR_MAX_OCTAL_SIZE ? 0 : mtime);
    h[156] = type;
    memcpy(h + 257, "ustar", 6); /* with its NUL */
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof h; i++)
        sum += (unsigned char)h[i];
    snprintf(h + 148, 8, "%06o", sum); /* six digits, NUL, and the space left from above */
    return nk_buf_append(out, h, sizeof h);
}

static int zeros(nk_buf *out, size_t n)
{
    static const char z[AR_BLOCK];
    int r = 0;
    while (n && r == 0) {
        size_t k = n < sizeof z ? n : sizeof z;
        r = nk_buf_append(out, z, k);
        n -= k;
    }
    return r;
}

/* One pax record, "LEN KEY=VALUE\n", where LEN counts the whole record itself. */
static int pax_record(nk_buf *out, const char *key, const char *val, size_t vlen)
{
    /* The length's own digits count too: the smallest d with body + d below 10^d. */
    size_t body = strlen(key) + vlen + 3, d = 1;
    for (size_t p = 10; body + d >= p; p *= 10)
        d++;
    size_t len = body + d;
    int r;
    if ((r = nk_buf_printf(out, "%zu %s=", len, key)) < 0 || (r = nk_buf_append(out, val, vlen)) < 0)
        return r;
    return nk_buf_append(out, "\n", 1);
}

/* The header of one member: a pax extended header first when ustar cannot hold the name or
 * the size. */
static int put_header(ar_state *a, nk_buf *out, const char *name, size_t nlen, char type,
                      const struct stat *st)
{
    uint64_t size = type == '0' ? (uint64_t)st->st_size : 0;
    uint64_t mtime = st->st_mtime > 0 ? (uint64_t)st->st_mtime : 0;
    if (nlen > 100 || size > AR_MAX_OCTAL_SIZE) {
        nk_buf pax;
        nk_buf_init(&pax, 0);
        char num[24];
        int n = snprintf(num, sizeof num, "%" PRIu64, size);
        int r = 0;
        if (nlen > 100)
            r = pax_record(&pax, "path", name, nlen);
        if (r == 0 && size > AR_MAX_OCTAL_SIZE)
            r = pax_record(&pax, "size", num, (size_t)n);
        size_t plen = nk_buf_len(&pax);
        char pname[100];
        int pn = snprintf(pname, sizeof pname, "%.80s/PaxHeader", a->top);
        if (r == 0)
            r = put_block(out, pname, (size_t)pn < sizeof pname ? (size_t)pn : sizeof pname - 1,
                          'x', 0644, plen, mtime);
        if (r == 0)
            r = nk_buf_append(out, nk_buf_rptr(&pax), plen);
        nk_buf_free(&pax);
        if (r < 0 || (r = zeros(out, (AR_BLOCK - plen % AR_BLOCK) % AR_BLOCK)) < 0)
            return r;
    }
    return put_block(out, name, nlen, type, (unsigned)st->st_mode, size, mtime);
}

/* The member name of rel (a directory's ends with '/'): "<top>/<path below the base>". */
static int member_name(const ar_state *a, char *name, size_t cap)
{
    int n = snprintf(name, cap, "%s/%s", a->top, a->rel + a->base);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : n;
}

/* ---- the walk -------------------------------------------------------------------------------- */

static int on_stack(const ar_state *a, const struct stat *st)
{
    for (int i = 0; i < a->depth; i++)
        if (a->dirs[i].dev == st->st_dev && a->dirs[i].ino == st->st_ino)
            return 1;
    return 0;
}

/* Add the entry `name` of the current directory: its header, and for a file its contents
 * from the next calls. Entries a listing would leave out are skipped (0). */
static int add_entry(ar_state *a, nk_buf *out, const char *name)
{
    nk_httpd *srv = a->srv;
    ar_dir *cur = &a->dirs[a->depth - 1];
    size_t nlen = strlen(name);
    if ((name[0] == '.' && !srv->cfg.dotfiles) || nk_http_path_has_upload_tmp(name) ||
        !nk_http_name_servable(name, nlen))
        return 0;
    struct stat st;
    if (fstatat(dirfd(cur->d), name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode)))
        return 0; /* gone, or a device, FIFO or socket: never served */
    if (cur->plen + nlen + 2 > sizeof a->rel)
        return 0;
    memcpy(a->rel + cur->plen, name, nlen + 1);
    int fd = nk__open_beneath(srv, srv->root_fd, a->rel);
    if (fd < 0)
        return 0; /* refused as a request would be, or gone */
    if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) ||
        (S_ISDIR(st.st_mode) && (a->depth >= AR_MAX_DEPTH || on_stack(a, &st)))) {
        close(fd);
        return 0;
    }
    if (++a->entries > AR_MAX_ENTRIES) {
        close(fd);
        return -E2BIG;
    }
    int is_dir = S_ISDIR(st.st_mode);
    if (is_dir)
        memcpy(a->rel + cur->plen + nlen, "/", 2);
    char member[4096 + 256];
    int ml = member_name(a, member, sizeof member);
    int r = ml < 0 ? ml : put_header(a, out, member, (size_t)ml, is_dir ? '5' : '0', &st);
    if (r < 0) {
        close(fd);
        return r;
    }
    if (!is_dir) {
        a->fd = fd;
        a->left = (uint64_t)st.st_size;
        a->pad = (AR_BLOCK - (size_t)(a->left % AR_BLOCK)) % AR_BLOCK;
        return 0;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return 0;
    }
    a->dirs[a->depth++] = (ar_dir){d, st.st_dev, st.st_ino, cur->plen + nlen + 1};
    return 0;
}

/* Append the next tar bytes to out, about AR_PIECE of them. */
static int tar_step(ar_state *a, nk_buf *out)
{
    size_t start = nk_buf_len(out);
    if (!a->top_done) {
        /* The top directory first, so the archive unpacks into one folder. */
        char member[300];
        int ml = snprintf(member, sizeof member, "%s/", a->top);
        int r = put_header(a, out, member, (size_t)ml, '5', &a->top_st);
        if (r < 0)
            return r;
        a->top_done = 1;
    }
    while (!a->ended && nk_buf_len(out) - start < AR_PIECE) {
        if (a->fd >= 0 && a->left) {
            size_t want = a->left < AR_PIECE ? (size_t)a->left : AR_PIECE;
            int r = nk_buf_reserve(out, want);
            if (r < 0)
                return r;
            ssize_t n = read(a->fd, nk_buf_wptr(out), want);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return -errno;
            if (n == 0) { /* shrank: keep the promised size */
                memset(nk_buf_wptr(out), 0, want);
                n = (ssize_t)want;
            }
            nk_buf_commit(out, (size_t)n);
            a->left -= (uint64_t)n;
            continue;
        }
        if (a->fd >= 0) {
            close(a->fd);
            a->fd = -1;
            int r = zeros(out, a->pad);
            if (r < 0)
                return r;
            continue;
        }
        if (a->depth == 0) {
            int r = zeros(out, 2 * AR_BLOCK); /* the end of the archive */
            if (r < 0)
                return r;
            a->ended = 1;
            break;
        }
        ar_dir *cur = &a->dirs[a->depth - 1];
        errno = 0;
        struct dirent *de = readdir(cur->d);
        if (!de) {
            if (errno)
                return -errno;
            closedir(cur->d);
            a->depth--;
            continue;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int r = add_entry(a, out, de->d_name);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Deflate the next tar bytes into out until some output is ready or the stream ends. */
static int gz_step(ar_state *a, nk_buf *out)
{
    size_t start = nk_buf_len(out);
    for (;;) {
        if (nk_buf_len(&a->raw) == 0 && !a->ended) {
            nk_buf_clear(&a->raw);
            int r = tar_step(a, &a->raw);
            if (r < 0)
                return r;
        }
        a->z.next_in = (const Bytef *)nk_buf_rptr(&a->raw);
        a->z.avail_in = (uInt)nk_buf_len(&a->raw);
        int flush = a->ended ? Z_FINISH : Z_NO_FLUSH;
        int zr;
        do {
            int r = nk_buf_reserve(out, AR_PIECE);
            if (r < 0)
                return r;
            a->z.next_out = (Bytef *)nk_buf_wptr(out);
            a->z.avail_out = AR_PIECE;
            zr = deflate(&a->z, flush);
            if (zr == Z_STREAM_ERROR)
                return -EIO;
            nk_buf_commit(out, AR_PIECE - a->z.avail_out);
        } while (a->z.avail_out == 0);
        nk_buf_consume(&a->raw, nk_buf_len(&a->raw) - a->z.avail_in);
        if (zr == Z_STREAM_END)
            return NK_HTTPD_DONE;
        if (nk_buf_len(out) > start)
            return 0;
    }
}

static int ar_produce(nk_httpd_ex *ex, nk_buf *out, void *arg)
{
    (void)ex;
    ar_state *a = arg;
    if (!out) { /* the exchange ended early */
        ar_free(a);
        return 0;
    }
    int r = a->gz ? gz_step(a, out) : tar_step(a, out);
    if (r < 0 || (!a->gz && a->ended))
        r = r < 0 ? r : NK_HTTPD_DONE;
    if (r != 0)
        ar_free(a);
    return r;
}

/* ---- the request ----------------------------------------------------------------------------- */

/* Which archive the query asks for: 1 tar, 2 tar.gz, 0 none, -1 another value. */
int nk__archive_wanted(const nk_http_request *req)
{
    const char *q = req->query.p;
    size_t len = req->query.len;
    for (size_t i = 0; q && i < len;) {
        const char *amp = memchr(q + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - q) : len;
        if (end - i >= 9 && memcmp(q + i, "download=", 9) == 0) {
            size_t vl = end - i - 9;
            const char *v = q + i + 9;
            if (vl == 3 && memcmp(v, "tar", 3) == 0)
                return 1;
            if (vl == 6 && memcmp(v, "tar.gz", 6) == 0)
                return 2;
            return -1;
        }
        i = end + 1;
    }
    return 0;
}

/* The top directory's name: the last segment of the request path, or the root's own name. */
static void top_name(const nk_httpd *srv, const char *path, char *out, size_t cap)
{
    size_t plen = strlen(path);
    const char *name;
    size_t n;
    if (plen > 1) {
        size_t e = plen - 1, s = e;
        while (s > 0 && path[s - 1] != '/')
            s--;
        name = path + s;
        n = e - s;
    } else {
        const char *slash = strrchr(srv->root_real, '/');
        name = slash && slash[1] ? slash + 1 : "root";
        n = strlen(name);
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(out, name, n);
    out[n] = '\0';
}

/* Content-Disposition (RFC 6266): a quoted ASCII fallback, and the exact name as filename*
 * (RFC 8187) when it is not plain ASCII. */
static int disposition(const char *top, const char *ext, char *out, size_t cap)
{
    nk_buf b;
    nk_buf_init(&b, cap - 1);
    int r = nk_buf_append_str(&b, "attachment; filename=\"");
    int plain = 1;
    for (const unsigned char *p = (const unsigned char *)top; *p && r >= 0; p++) {
        int ok = *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\' && *p != '%';
        plain &= ok;
        char c = ok ? (char)*p : '_';
        r = nk_buf_append(&b, &c, 1);
    }
    if (r >= 0)
        r = nk_buf_printf(&b, "%s\"", ext);
    if (r >= 0 && !plain) {
        r = nk_buf_append_str(&b, "; filename*=UTF-8''");
        if (r >= 0)
            r = nk_http_url_escape(top, strlen(top), &b);
        if (r >= 0)
            r = nk_buf_append_str(&b, ext);
    }
    if (r >= 0) {
        memcpy(out, nk_buf_rptr(&b), nk_buf_len(&b));
        out[nk_buf_len(&b)] = '\0';
    }
    nk_buf_free(&b);
    return r < 0 ? r : 0;
}

nk__outcome nk__archive_serve(nk__conn *c, const nk_http_request *req, int dirfd, int gz)
{
    nk_httpd *srv = c->srv;
    nk__ex *x = c->x;
    ar_state *a = calloc(1, sizeof *a);
    if (!a) {
        close(dirfd);
        return nk__respond_error(c, 500, NULL);
    }
    a->srv = srv;
    a->fd = -1;
    a->gz = gz;
    nk_buf_init(&a->raw, 0);
    top_name(srv, srv->path, a->top, sizeof a->top);
    size_t base = strlen(srv->path + 1);
    struct stat st;
    DIR *d = NULL;
    int err = base + 1 < sizeof a->rel ? 0 : -ENAMETOOLONG;
    if (err == 0 && fstat(dirfd, &st) < 0)
        err = -errno;
    if (err == 0 && !(d = fdopendir(dirfd)))
        err = -errno;
    if (err < 0) {
        close(dirfd);
        free(a);
        return nk__respond_error(c, nk__open_status(err), NULL);
    }
    memcpy(a->rel, srv->path + 1, base + 1);
    a->base = base;
    a->dirs[0] = (ar_dir){d, st.st_dev, st.st_ino, base};
    a->depth = 1;
    a->top_st = st;
    char hdr[1024];
    err = disposition(a->top, gz ? ".tar.gz" : ".tar", hdr, sizeof hdr);
    if (err == 0 && gz &&
        deflateInit2(&a->z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        err = -ENOMEM;
    a->z_ready = gz && err == 0;
    if (err < 0) {
        ar_free(a);
        return nk__respond_error(c, 500, NULL);
    }
    /* The engine's streamed body, as nk_httpd_respond_stream gives it to routes: this
     * exchange is answered here, with the fields below. */
    x->req = req;
    x->answered = 0;
    nk_buf_clear(&x->hdrs);
    if (nk_httpd_ex_add_header(x, "Content-Disposition", hdr) < 0 ||
        nk_httpd_ex_add_header(x, "Cache-Control", "no-cache") < 0) {
        ar_free(a);
        return nk__respond_error(c, 500, NULL);
    }
    int r = nk_httpd_respond_stream(x, 200, gz ? "application/gzip" : "application/x-tar",
                                    ar_produce, a);
    if (r == -EINVAL) { /* refused before the producer was taken */
        ar_free(a);
        return nk__respond_error(c, 500, NULL);
    }
    return r < 0 ? r : 0;
}
