/* Open-file cache: the files recently served, kept open with their metadata.
 *
 * Serving a small file costs a handful of system calls, and on a busy server the path walk of
 * open (confined with RESOLVE_BENEATH), the fstat and the close are half of them. An entry
 * keeps the descriptor, its stat, the ETag, the content type and the precompressed sidecar
 * for a request path, for at most FCACHE_VALID_MS; the open file is re-checked with fstat
 * once per turn of the loop (the requests read on one turn, found waiting by one wake-up,
 * share the check), so a file changed in place (written, touched) is seen by
 * every request read on a later turn, and a file replaced by rename is seen within
 * FCACHE_VALID_MS (nginx's open_file_cache makes the same trade with a longer default).
 * With many clients one fstat serves dozens of requests: at one system call in three it was
 * the largest share of a small response's cost besides the socket's own.
 *
 * Entries are shared by every response that sends them (sendfile takes an explicit offset,
 * so one descriptor serves many connections) and reference-counted; an entry evicted while
 * in use is freed by its last release. The table is direct-mapped and bounded, so it never
 * holds more than FCACHE_SLOTS descriptors besides those in flight.
 */
#include "internal.h"

#define GZIP_MEMBER_MIN 20 /* bytes of the smallest valid gzip file */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FCACHE_SLOTS 512
#define FCACHE_VALID_MS 1000

static uint32_t hash_path(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a: short keys, good spread, no state */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void rep_close(nk_httpd *srv, nk__rep *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    if (r->body) {
        srv->fcache_bytes -= (size_t)r->st.st_size;
        free(r->body);
        r->body = NULL;
    }
}

static void entry_free(nk_httpd *srv, nk__file *f)
{
    rep_close(srv, &f->plain);
    rep_close(srv, &f->gz);
    free(f->key);
    free(f);
}

void nk__fcache_release(nk_httpd *srv, nk__file *f)
{
    if (!f)
        return;
    if (--f->refs == 0 && f->dead)
        entry_free(srv, f);
}

static void evict(nk_httpd *srv, size_t slot)
{
    nk__file *f = srv->fcache[slot];
    if (!f)
        return;
    srv->fcache[slot] = NULL;
    srv->fcache_count--;
    f->dead = 1;
    /* drop the table's reference; responses still sending it hold their own */
    if (--f->refs == 0)
        entry_free(srv, f);
}

void nk__fcache_clear(nk_httpd *srv)
{
    if (!srv->fcache)
        return;
    for (size_t i = 0; i < FCACHE_SLOTS; i++)
        evict(srv, i);
}

void nk__fcache_free(nk_httpd *srv)
{
    nk__listing_cache_free(srv); /* the other per-worker cache of rendered pages */
    nk__fcache_clear(srv);
    free(srv->fcache);
    srv->fcache = NULL;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

void nk__fcache_forget(nk_httpd *srv, const char *key)
{
    if (!srv->fcache)
        return;
    size_t slot = hash_path(key) % FCACHE_SLOTS;
    nk__file *f = srv->fcache[slot];
    if (f && strcmp(f->key, key) == 0)
        evict(srv, slot);
}

void nk__fcache_forget_prefix(nk_httpd *srv, const char *prefix)
{
    if (!srv->fcache)
        return;
    size_t n = strlen(prefix);
    for (size_t slot = 0; slot < FCACHE_SLOTS; slot++) {
        const nk__file *f = srv->fcache[slot];
        if (f && strncmp(f->key, prefix, n) == 0)
            evict(srv, slot);
    }
}

nk__file *nk__fcache_get(nk_httpd *srv, const char *key)
{
    if (!srv->fcache)
        return NULL;
    size_t slot = hash_path(key) % FCACHE_SLOTS;
    nk__file *f = srv->fcache[slot];
    if (!f || strcmp(f->key, key) != 0)
        return NULL;
    struct stat st;
    struct stat gst;
    if (nk_loop_now(srv->loop) >= f->expires) {
        evict(srv, slot);
        return NULL;
    }
    /* Checked already on this turn of the loop: for requests that arrived together. */
    if (f->checked != srv->input_batch &&
        (fstat(f->plain.fd, &st) < 0 || !same_file(&st, &f->plain.st) || st.st_nlink == 0 ||
         (f->gz.fd >= 0 && (fstat(f->gz.fd, &gst) < 0 || !same_file(&gst, &f->gz.st) ||
                            gst.st_nlink == 0)))) {
        evict(srv, slot);
        return NULL;
    }
    f->checked = srv->input_batch;
    f->refs++;
    return f;
}

static void rep_fill(nk_httpd *srv, nk__rep *r, int fd, const struct stat *st)
{
    r->fd = fd;
    r->st = *st;
    nk_http_file_etag(r->etag, sizeof r->etag, (uint64_t)st->st_size, (int64_t)st->st_mtim.tv_sec,
                      st->st_mtim.tv_nsec);
    size_t size = (size_t)st->st_size;
    if (st->st_size <= 0 || size > NK__SMALL_FILE || srv->fcache_bytes + size > NK__SMALL_FILE_BYTES)
        return;
    char *body = malloc(size);
    if (!body)
        return;
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, body + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    /* Keep the copy only if it is the whole file as stat saw it (not changed meanwhile). */
    struct stat now;
    if (got != size || fstat(fd, &now) < 0 || now.st_size != st->st_size ||
        now.st_mtim.tv_sec != st->st_mtim.tv_sec || now.st_mtim.tv_nsec != st->st_mtim.tv_nsec) {
        free(body);
        return;
    }
    r->body = body;
    srv->fcache_bytes += size;
}

static int timespec_older(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

int nk__sidecar_path(const nk_httpd *srv, const char *rel, char *gz)
{
    /* Only compressible types are looked for, so binary files cost no extra open. */
    size_t rlen = strlen(rel);
    if (!nk_mime_compressible(nk_mime_lookup(srv->mime, rel)) || rlen + 4 >= 4096)
        return 0;
    memcpy(gz, rel, rlen);
    memcpy(gz + rlen, ".gz", 4);
    return 1;
}

int nk__sidecar_open(nk_httpd *srv, const char *rel)
{
    char gz[4096];
    return nk__sidecar_path(srv, rel, gz) ? nk__open_beneath(srv, srv->root_fd, gz) : -ENOENT;
}

nk__file *nk__fcache_put(nk_httpd *srv, const char *key, const char *rel, int fd,
                         const struct stat *st, int gzfd)
{
    nk__file *f = calloc(1, sizeof *f);
    char *k = strdup(key);
    if (!f || !k) {
        free(f);
        free(k);
        close(fd);
        if (gzfd >= 0)
            close(gzfd);
        return NULL;
    }
    f->key = k;
    f->refs = 1;
    f->gz.fd = -1;
    rep_fill(srv, &f->plain, fd, st);
    f->content_type = nk_mime_lookup(srv->mime, rel);
    /* The --gzip representation's validator: the plain one with a suffix inside the quotes
     * (RFC 9110 section 8.8.3: each representation has its own strong ETag). */
    size_t el = strlen(f->plain.etag);
    if (el >= 2 && el + 5 < sizeof f->gz_etag)
        snprintf(f->gz_etag, sizeof f->gz_etag, "%.*s-gzip\"", (int)(el - 1), f->plain.etag);
    f->expires = nk_loop_now(srv->loop) + FCACHE_VALID_MS;
    f->checked = srv->input_batch;

    /* A precompressed sidecar REL.gz is a second representation of the same resource. */
    struct stat gst;
    /* A sidecar older than its file is stale: the file was edited or uploaded since,
     * and sending the sidecar would serve the old content to gzip clients only. */
    /* Shorter than the smallest gzip member (10-byte header, an empty deflate block,
     * 8-byte trailer) it cannot be one: an empty or cut sidecar is no representation. */
    if (gzfd >= 0 && fstat(gzfd, &gst) == 0 && S_ISREG(gst.st_mode) &&
        gst.st_size >= GZIP_MEMBER_MIN && !timespec_older(&gst.st_mtim, &st->st_mtim))
        rep_fill(srv, &f->gz, gzfd, &gst);
    else if (gzfd >= 0)
        close(gzfd);

    if (!srv->fcache)
        srv->fcache = calloc(FCACHE_SLOTS, sizeof(nk__file *));
    size_t slot = hash_path(key) % FCACHE_SLOTS;
    if (srv->fcache && (srv->fcache[slot] || srv->fcache_count < srv->fcache_max)) {
        evict(srv, slot);
        srv->fcache[slot] = f;
        srv->fcache_count++;
        f->refs++; /* the table's reference */
    } else {
        f->dead = 1;
    }
    return f;
}
