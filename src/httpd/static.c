/* The static-file handler, as a sequence of small steps (STYLE habit 6):
 *   decode + normalise the path (nk_http_path_normalize) -> refuse dotfiles ->
 *   open beneath the root, then fstat the open file (no stat-then-open race) ->
 *   directory: redirect / index / listing; file: sidecar .gz -> conditionals -> ranges -> send.
 * Opening is confined to the root by open.c.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GZIP_MIN_SIZE 1024 /* below this the gzip header and chunk framing eat the gain */
/* Each on-the-fly stream holds about 330 KiB (deflate's window and hash tables plus two
 * 32 KiB buffers), so without a cap many slow clients could pin gigabytes. Past the cap a
 * response goes out uncompressed, which is always a valid answer to Accept-Encoding. */
#define GZIP_MAX_STREAMS 64

static const nk_str *header_value(const nk_http_request *req, const char *name)
{
    const nk_http_header *h = nk_http_find_header(req, name);
    return h ? &h->value : NULL;
}

/* The fields a file answer reads (conditionals, Range, If-Range), each the first of its name as
 * header_value finds it, but in one pass over the fields instead of one pass per name. */
struct file_fields {
    const nk_str *if_match, *if_none_match, *if_modified_since, *if_unmodified_since;
    const nk_str *if_range, *range;
};

static void take_field(const nk_str **slot, const nk_http_header *h, const char *name)
{
    if (!*slot && strncasecmp(h->name.p, name, h->name.len) == 0)
        *slot = &h->value;
}

static void find_file_fields(const nk_http_request *req, struct file_fields *ff)
{
    *ff = (struct file_fields){0};
    const nk_http_header *f = nk_http_fields(req);
    for (size_t i = 0; i < req->nheaders; i++) {
        const nk_http_header *h = &f[i];
        switch (h->name.len) { /* the lengths of the names below */
        case 5: take_field(&ff->range, h, "Range"); break;
        case 8:
            take_field(&ff->if_match, h, "If-Match");
            take_field(&ff->if_range, h, "If-Range");
            break;
        case 13: take_field(&ff->if_none_match, h, "If-None-Match"); break;
        case 17: take_field(&ff->if_modified_since, h, "If-Modified-Since"); break;
        case 19: take_field(&ff->if_unmodified_since, h, "If-Unmodified-Since"); break;
        default: break;
        }
    }
}

static nk_str value_or_absent(const nk_str *v) { return v ? *v : (nk_str){NULL, 0}; }

/* RFC 9110 section 12.5.3: is gzip acceptable (listed, or covered by "*", with q > 0)? A
 * request without Accept-Encoding gets the identity coding, as from every common server. */
static int accepts_gzip(const nk_http_request *req)
{
    return nk_http_find_header(req, "Accept-Encoding") &&
           nk_http_accepts(req, "Accept-Encoding", "gzip") > 0;
}

static nk__outcome respond_simple(nk__conn *c, nk__status status)
{
    return nk__respond_error(c, status, NULL);
}

static nk__outcome redirect_dir(nk__conn *c, const nk_http_request *req)
{
    /* RFC 9110 section 15.4.2: the directory's URL ends in "/"; relative links in its
     * index resolve against it. The Location is made from the normalised path (srv->path),
     * never from the raw target: "//host/../dir" must not come back as "//host/../dir/". */
    nk_httpd *srv = c->srv;
    nk_buf *b = &srv->body;
    nk_buf_clear(b);
    nk_buf_append_str(b, "<!DOCTYPE html>\n<html><head><title>301 Moved Permanently</title></head>"
                         "<body><h1>301 Moved Permanently</h1></body></html>\n");
    nk__resp r;
    nk__resp_init(&r, 301);
    r.content_type = "text/html; charset=utf-8";
    nk__resp_body_scratch(&r, srv);
    r.location_path = srv->path;
    r.location_dir = 1;
    r.location_query = req->query;
    r.no_body = req->method == NK_HTTP_HEAD;
    return nk__respond(c, &r);
}

static int query_wants_json(const nk_http_request *req)
{
    const char *p = req->query.p;
    if (!p)
        return 0;
    size_t len = req->query.len;
    for (size_t i = 0; i + 11 <= len; i++) {
        if ((i == 0 || p[i - 1] == '&') && memcmp(p + i, "format=json", 11) == 0 &&
            (i + 11 == len || p[i + 11] == '&'))
            return 1;
    }
    return 0;
}

static nk__outcome serve_listing(nk__conn *c, const nk_http_request *req, int dirfd)
{
    nk_httpd *srv = c->srv;
    int json = query_wants_json(req);
    int sort = nk_http_dirlist_sort_query(req->query.p, req->query.len);
    const char *body = NULL;
    size_t len = 0;
    int err = nk__listing_get(srv, dirfd, json, sort, &body, &len);
    close(dirfd);
    if (err < 0)
        return respond_simple(c, nk__open_status(err));
    nk__resp r;
    nk__resp_init(&r, 200);
    r.content_type = json ? "application/json" : "text/html; charset=utf-8";
    r.mem_body = body; /* the cached page, or the one just rendered in srv->body */
    r.content_length = len;
    r.no_body = req->method == NK_HTTP_HEAD;
    r.extra_headers = "Cache-Control: no-cache\r\n";
    /* --gzip: a listing of many entries compresses several times over. It is compressed
     * whole, into memory owned by this response (respond writes it or copies what the
     * socket does not take), so nothing refers to a page another request may replace. */
    nk_buf gz;
    nk_buf_init(&gz, 0);
    if (srv->cfg.gzip && len > GZIP_MIN_SIZE) {
        r.vary_accept_encoding = 1;
        if (accepts_gzip(req) && nk__gz_whole(srv, body, len, &gz) == 0) {
            r.mem_body = nk_buf_rptr(&gz);
            r.content_length = nk_buf_len(&gz);
            r.content_encoding = "gzip";
        }
    }
    nk__outcome ret = nk__respond(c, &r);
    nk_buf_free(&gz);
    return ret;
}

static uint32_t boundary_seed(const struct stat *st, const nk__conn *c)
{
    /* Not a secret, only unlikely to occur in the file: mix identity and time. */
    uint64_t x = (uint64_t)st->st_ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)st->st_mtim.tv_nsec ^
                 (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)c;
    x ^= x >> 29;
    return (uint32_t)(x * 0xbf58476d1ce4e5b9ull >> 32);
}

static nk__outcome serve_multipart(nk__conn *c, nk__resp *r, const struct stat *st,
                           const nk_http_range *ranges, int n)
{
    /* RFC 9110 section 14.6: each part carries its own Content-Type and Content-Range. */
    char boundary[40];
    snprintf(boundary, sizeof boundary, "nk%08x%08x", boundary_seed(st, c),
             (unsigned)(st->st_size ^ (off_t)n));
    nk__seg *segs = calloc((size_t)n + 1, sizeof *segs);
    if (!segs)
        return respond_simple(c, 500);
    nk_buf_clear(&c->x->out);
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t before = nk_buf_len(&c->x->out);
        nk_buf_printf(&c->x->out,
                      "%s--%s\r\nContent-Type: %s\r\nContent-Range: bytes %llu-%llu/%llu\r\n\r\n",
                      i ? "\r\n" : "", boundary, r->content_type,
                      (unsigned long long)ranges[i].first, (unsigned long long)ranges[i].last,
                      (unsigned long long)st->st_size);
        segs[i].mem = nk_buf_len(&c->x->out) - before;
        segs[i].off = (off_t)ranges[i].first;
        segs[i].len = ranges[i].last - ranges[i].first + 1;
        total += segs[i].mem + segs[i].len;
    }
    size_t before = nk_buf_len(&c->x->out);
    nk_buf_printf(&c->x->out, "\r\n--%s--\r\n", boundary);
    segs[n].mem = nk_buf_len(&c->x->out) - before;
    total += segs[n].mem;
    c->x->segs = segs;
    c->x->nsegs = (unsigned)n + 1;
    c->x->iseg = 0;
    char type[80];
    snprintf(type, sizeof type, "multipart/byteranges; boundary=%s", boundary);
    r->status = 206;
    r->content_type = type;
    r->content_length = total;
    return nk__respond_multipart(c, r);
}

/* Is an If-Range value a date rather than an entity-tag? RFC 9110 section 13.1.5: a tag has a
 * DQUOTE in its first three characters. */
static int if_range_is_date(nk_str v)
{
    size_t i = 0;
    while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t'))
        i++;
    for (size_t k = i; k < v.len && k < i + 3; k++)
        if (v.p[k] == '"')
            return 0;
    return 1;
}

/* Answer req from the cached file f, whose reference r holds: nk__respond takes it over;
 * every other answer (412, 416, an allocation failure) leaves it in r. */
static nk__outcome answer_file(nk__conn *c, const nk_http_request *req, nk__file *f, nk__resp *r)
{
    nk_httpd *srv = c->srv;
    r->content_type = f->content_type;
    r->accept_ranges = 1;

    /* A precompressed sidecar is chosen by Accept-Encoding, so Vary says so; it is its own
     * representation with its own validator (RFC 9110 section 8.8.3). */
    const nk__rep *rep = &f->plain;
    int on_the_fly = 0;
    if (f->gz.fd >= 0) {
        r->vary_accept_encoding = 1;
        if (accepts_gzip(req)) {
            rep = &f->gz;
            r->content_encoding = "gzip";
        }
    } else if (srv->cfg.gzip && f->gz_etag[0] && nk_mime_compressible(f->content_type) &&
               f->plain.st.st_size > GZIP_MIN_SIZE) {
        /* --gzip: the choice depends on Accept-Encoding, whichever way it goes. A Range
         * request gets the identity representation (ranges of a compressed stream made on
         * the fly could not be repeated byte for byte), and so does HTTP/1.0, which has no
         * chunked coding to carry a body of unknown length. */
        r->vary_accept_encoding = 1;
        int ranged = req->method == NK_HTTP_GET && header_value(req, "Range");
        if (!c->http10 && !ranged && srv->gz_streams < GZIP_MAX_STREAMS && accepts_gzip(req)) {
            on_the_fly = 1;
            r->content_encoding = "gzip";
            r->accept_ranges = 0;
        }
    }
    const struct stat *st = &rep->st;
    r->file_fd = rep->fd;
    r->etag = on_the_fly ? f->gz_etag : rep->etag;
    /* RFC 9110 section 8.8.2.1: a modification time in the future (a clock set wrong, times
     * copied with the file) is sent as the time of the answer, never later than its Date. By
     * section 8.8.2.2 only a time at least a second before the Date is a strong validator: the
     * file could still change within the second it names (If-Range below). */
    time_t now = time(NULL);
    r->last_modified = st->st_mtim.tv_sec < now ? st->st_mtim.tv_sec : now;
    int strong_date = st->st_mtim.tv_sec < now;

    struct file_fields ff;
    find_file_fields(req, &ff);
    nk_http_cond_input cond = {
        .method = req->method,
        .if_match = value_or_absent(ff.if_match),
        .if_none_match = value_or_absent(ff.if_none_match),
        .if_modified_since = value_or_absent(ff.if_modified_since),
        .if_unmodified_since = value_or_absent(ff.if_unmodified_since),
        .etag = r->etag,
        .mtime = st->st_mtim.tv_sec,
    };
    int cs = nk_http_cond_evaluate(&cond);
    if (cs == 304) {
        /* RFC 9110 section 15.4.5: a 304 repeats the validators and Vary of the 200, and
         * nothing that describes a body it does not have (no Content-Encoding). */
        r->status = 304;
        r->no_body = 1;
        r->content_type = NULL;
        r->content_encoding = NULL;
        r->accept_ranges = 0;
        return nk__respond(c, r);
    }
    if (cs == 412)
        return respond_simple(c, 412);

    uint64_t size = (uint64_t)st->st_size;
    r->content_length = size;
    r->no_body = req->method == NK_HTTP_HEAD;
    if (on_the_fly) {
        r->gzip = 1;
        r->mem_body = rep->body;
        return nk__respond(c, r);
    }

    const nk_str *range = req->method == NK_HTTP_GET ? ff.range : NULL;
    if (range) {
        nk_str if_range = value_or_absent(ff.if_range);
        if (!if_range.p || (nk_http_if_range_ok(if_range, rep->etag, st->st_mtim.tv_sec) &&
                            (strong_date || !if_range_is_date(if_range)))) {
            nk_http_range ranges[NK_HTTP_MAX_RANGES];
            int n = nk_http_range_parse(*range, size, ranges, NK_HTTP_MAX_RANGES);
            if (n == -ERANGE) {
                /* RFC 9110 section 15.5.17: say how long the representation is. */
                nk__resp e;
                nk__resp_init(&e, 416);
                snprintf(e.content_range, sizeof e.content_range, "bytes */%llu",
                         (unsigned long long)size);
                nk_buf_clear(&srv->body);
                nk_buf_printf(&srv->body, "<!DOCTYPE html>\n<html><head><title>416 Range Not "
                                          "Satisfiable</title></head><body><h1>416 Range Not "
                                          "Satisfiable</h1></body></html>\n");
                e.content_type = "text/html; charset=utf-8";
                nk__resp_body_scratch(&e, srv);
                e.etag = rep->etag;
                e.last_modified = r->last_modified;
                e.vary_accept_encoding = r->vary_accept_encoding;
                e.content_encoding = NULL;
                return nk__respond(c, &e);
            }
            if (n == 1) {
                r->status = 206;
                r->file_off = (off_t)ranges[0].first;
                r->content_length = ranges[0].last - ranges[0].first + 1;
                snprintf(r->content_range, sizeof r->content_range, "bytes %llu-%llu/%llu",
                         (unsigned long long)ranges[0].first,
                         (unsigned long long)ranges[0].last, (unsigned long long)size);
            } else if (n > 1) {
                return serve_multipart(c, r, st, ranges, n);
            }
        }
    }
    if (rep->body && !r->no_body && r->content_length)
        r->mem_body = rep->body + r->file_off; /* small file: head and body in one writev */
    return nk__respond(c, r);
}

static nk__outcome serve_file(nk__conn *c, const nk_http_request *req, nk__file *f)
{
    nk_httpd *srv = c->srv; /* c may be gone once answered */
    nk__resp r;
    nk__resp_init(&r, 200);
    r.file = f; /* the plan owns the reference from here on */
    nk__outcome ret = answer_file(c, req, f, &r);
    nk__resp_release(srv, &r); /* the one place: unless the answer took it over */
    return ret;
}

/* Serve an opened regular file for request key; rel names it relative to the root; gzfd is
 * its sidecar rel.gz (taken over), or negative when there is none. */
static nk__outcome serve_opened(nk__conn *c, const nk_http_request *req, int fd,
                                const struct stat *st, const char *rel, int gzfd)
{
    nk__file *f = nk__fcache_put(c->srv, c->srv->path, rel, fd, st, gzfd);
    if (!f)
        return respond_simple(c, 500);
    return serve_file(c, req, f);
}

static nk__outcome serve_directory(nk__conn *c, const nk_http_request *req, int dirfd)
{
    nk_httpd *srv = c->srv;
    size_t plen = strlen(srv->path);
    if (srv->path[plen - 1] != '/') {
        close(dirfd);
        return redirect_dir(c, req);
    }
    /* ?download=tar|tar.gz: what the listing lists, as one archive; whether or not the
     * directory has an index, but never where listings are off. */
    int archive = nk__archive_wanted(req);
    if (archive) {
        if (archive < 0 || !srv->cfg.archives || !srv->cfg.listing) {
            close(dirfd);
            return respond_simple(c, archive > 0 && srv->cfg.archives ? 403 : 404);
        }
        return nk__archive_serve(c, req, dirfd, archive == 2);
    }
    if (srv->cfg.index && *srv->cfg.index) {
        int fd = nk__open_beneath(srv, dirfd, srv->cfg.index);
        if (fd >= 0) {
            struct stat st;
            if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
                close(dirfd);
                /* cached under the directory's path; typed by the index file's name */
                char rel[4096];
                snprintf(rel, sizeof rel, "%s%s", srv->path + 1, srv->cfg.index);
                return serve_opened(c, req, fd, &st, rel, nk__sidecar_open(srv, rel));
            }
            close(fd);
        }
    }
    if (!srv->cfg.listing) {
        close(dirfd);
        return respond_simple(c, 403);
    }
    return serve_listing(c, req, dirfd);
}

/* --spa: a client-side route that is not a file gets the root index, as the application's
 * router handles it in the browser. Cached under "/", like the root directory's index. */
static nk__outcome serve_spa_index(nk__conn *c, const nk_http_request *req)
{
    nk_httpd *srv = c->srv;
    const char *index = srv->cfg.index && *srv->cfg.index ? srv->cfg.index : "index.html";
    strcpy(srv->path, "/");
    nk__file *cached = nk__fcache_get(srv, srv->path);
    if (cached)
        return serve_file(c, req, cached);
    int fd = nk__open_beneath(srv, srv->root_fd, index);
    if (fd < 0)
        return respond_simple(c, 404);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return respond_simple(c, 404);
    }
    return serve_opened(c, req, fd, &st, index, nk__sidecar_open(srv, index));
}

/* The request path (srv->path) opened below the root: fd, or a negative errno; gzfd its
 * sidecar (taken over), or negative. */
static nk__outcome serve_opened_path(nk__conn *c, const nk_http_request *req, int fd, int gzfd)
{
    nk_httpd *srv = c->srv;
    size_t n = strlen(srv->path);
    const char *rel = srv->path[1] ? srv->path + 1 : ".";
    struct stat st;
    memset(&st, 0, sizeof st);
    int err = fd >= 0 && fstat(fd, &st) < 0 ? -errno : 0;
    /* The sidecar only goes with a regular file. */
    if (gzfd >= 0 && (fd < 0 || err || !S_ISREG(st.st_mode))) {
        close(gzfd);
        gzfd = -1;
    }
    if (fd < 0 && (fd == -ENOENT || fd == -ENOTDIR) && srv->cfg.spa && nk__spa_wanted(srv, req))
        return serve_spa_index(c, req);
    if (fd < 0)
        return respond_simple(c, nk__open_status(fd));
    if (err) {
        close(fd);
        return respond_simple(c, nk__open_status(err));
    }
    if (S_ISDIR(st.st_mode))
        return serve_directory(c, req, fd);
    if (!S_ISREG(st.st_mode) || srv->path[n - 1] == '/') {
        /* devices, FIFOs and sockets are never served */
        close(fd);
        if (gzfd >= 0)
            close(gzfd);
        return respond_simple(c, 404);
    }
    return serve_opened(c, req, fd, &st, rel, gzfd);
}

nk__outcome nk__static_handle(nk__conn *c, const nk_http_request *req)
{
    nk_httpd *srv = c->srv;
    int n = nk_http_path_normalize(req->path.p, req->path.len, srv->path, sizeof srv->path);
    if (n == -ENAMETOOLONG)
        return respond_simple(c, 404); /* the target was within limits; no such file can exist */
    if (n < 0)
        return respond_simple(c, 400);
    /* Temporary upload files are never served, whatever the options: a client could read
     * another's upload before it is complete and committed. */
    if ((!srv->cfg.dotfiles && nk_http_path_has_dotfile(srv->path)) ||
        nk_http_path_has_upload_tmp(srv->path))
        return respond_simple(c, 404);
    nk__file *cached = nk__fcache_get(srv, srv->path);
    if (cached)
        return serve_file(c, req, cached); /* a hit answers at once */
    /* A miss: the path walk may wait for the disk, so it is made off the loop and the
     * request answered when it is done (fopen.c); here only if that cannot start. */
    const char *rel = srv->path[1] ? srv->path + 1 : ".";
    if (nk__open_async(c, rel, serve_opened_path) == NK__DONE)
        return NK__DONE;
    int fd = nk__open_beneath(srv, srv->root_fd, rel);
    return serve_opened_path(c, req, fd, fd >= 0 ? nk__sidecar_open(srv, rel) : -1);
}
