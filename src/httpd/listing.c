/* Directory listings for the static handler: what nk_http_dirlist_render shows, judged by the
 * same rules as requests.
 *
 * A listing links each entry as "<directory path><name>"; the page must list only what such
 * a request is served. The name rules (dotfiles, temporary uploads, names a request cannot
 * carry) are dirlist.c's; a symbolic link is opened here exactly as a request for it would
 * be (nk__open_beneath from the root: confinement, the rules on the real path), and listed
 * with what it leads to.
 *
 * Rendering a big directory is slow (a stat per entry: about 150 ms for 20,000 entries), and
 * pipelined requests for it would hold the worker for seconds, so each worker keeps the pages
 * it rendered, per request path and variant (HTML or JSON, with or without the upload form,
 * and each sort order: a page per order, which costs less than sorting cached entries again).
 * A page is reused while the directory keeps its identity and its modification and change
 * times (to the nanosecond), which every entry added, removed or renamed updates, and for at
 * most LCACHE_VALID_MS: a file written in place changes its own size and time, not the
 * directory's. A directory changed within the last second or so is not cached at all: file
 * system times come from a coarse clock, so two changes within one tick could leave the same
 * times behind. Memory is bounded per worker (LCACHE_BYTES, pages over LCACHE_PAGE_MAX are
 * not kept), and the number of rows of a page by nk_http_dirlist_render.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LCACHE_SLOTS 64
#define LCACHE_BYTES (16u << 20)   /* per worker */
#define LCACHE_PAGE_MAX (8u << 20)
#define LCACHE_VALID_MS 5000

typedef struct lc_page {
    char *key;          /* the directory's request path */
    int variant;        /* bit 0: JSON; above it the page's NK_HTTP_DIRLIST_* flags (the
                         * upload form, the archive links, the sort) */
    dev_t dev;
    ino_t ino;
    struct timespec mtim, ctim;
    uint64_t expires;   /* loop time */
    size_t len;
    char *body;
} lc_page;

struct nk__lcache {
    lc_page *slot[LCACHE_SLOTS];
    size_t bytes;
};

/* nk_http_dirlist_opts.resolve: open "<srv->path><name>" as a request would, then fstat. */
static int resolve_link(void *ctx, const char *name, struct stat *st)
{
    nk_httpd *srv = ctx;
    char rel[4096];
    int n = snprintf(rel, sizeof rel, "%s%s", srv->path + 1, name);
    if (n < 0 || (size_t)n >= sizeof rel)
        return -ENAMETOOLONG;
    int fd = nk__open_beneath(srv, srv->root_fd, rel);
    if (fd < 0)
        return fd;
    int r = fstat(fd, st) < 0 ? -errno : 0;
    close(fd);
    return r;
}

/* The page's flags: the options that change it, and the sort the request asked for. */
static int page_flags(const nk_httpd *srv, int sort)
{
    return (srv->cfg.upload ? NK_HTTP_DIRLIST_UPLOAD : 0) |
           (srv->cfg.upload && srv->cfg.mkdirs ? NK_HTTP_DIRLIST_MKDIR : 0) |
           (srv->cfg.archives ? NK_HTTP_DIRLIST_ARCHIVES : 0) | (sort & NK_HTTP_DIRLIST_SORT_MASK);
}

static int listing_render(nk_httpd *srv, int dirfd, int json, int sort, nk_buf *out)
{
    nk_http_dirlist_opts o = {
        .json = json,
        .show_dotfiles = srv->cfg.dotfiles,
        .flags = page_flags(srv, sort),
        .resolve = resolve_link,
        .ctx = srv,
        /* what an upload may carry: with users only authenticated clients write */
        .max_upload = srv->cfg.nusers > 0 ? srv->cfg.max_body_authenticated : srv->cfg.max_body,
    };
    return nk_http_dirlist_render(dirfd, srv->path, &o, out);
}

static void page_drop(struct nk__lcache *lc, size_t i)
{
    lc_page *p = lc->slot[i];
    if (!p)
        return;
    lc->slot[i] = NULL;
    lc->bytes -= p->len;
    free(p->key);
    free(p->body);
    free(p);
}

void nk__listing_cache_free(nk_httpd *srv)
{
    if (!srv->lcache)
        return;
    for (size_t i = 0; i < LCACHE_SLOTS; i++)
        page_drop(srv->lcache, i);
    free(srv->lcache);
    srv->lcache = NULL;
}

static size_t slot_of(const char *key, int variant)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *key; key++)
        h = (h ^ (unsigned char)*key) * 16777619u;
    h = (h ^ (uint32_t)variant) * 16777619u;
    return h % LCACHE_SLOTS;
}

static int same_time(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* Changed long enough ago that a later change cannot leave the same times behind. */
static int quiet(const struct stat *st)
{
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) < 0)
        return 0;
    time_t changed = st->st_mtim.tv_sec > st->st_ctim.tv_sec ? st->st_mtim.tv_sec : st->st_ctim.tv_sec;
    return changed < now.tv_sec - 1;
}

static void page_store(nk_httpd *srv, size_t i, int variant, const struct stat *st,
                       const char *body, size_t len)
{
    if (!srv->lcache && !(srv->lcache = calloc(1, sizeof *srv->lcache)))
        return;
    struct nk__lcache *lc = srv->lcache;
    page_drop(lc, i);
    /* Over the memory bound: drop other pages, starting after this slot. */
    for (size_t k = 1; k < LCACHE_SLOTS && lc->bytes + len > LCACHE_BYTES; k++)
        page_drop(lc, (i + k) % LCACHE_SLOTS);
    lc_page *p = calloc(1, sizeof *p);
    char *key = strdup(srv->path), *copy = malloc(len ? len : 1);
    if (!p || !key || !copy) {
        free(p);
        free(key);
        free(copy);
        return;
    }
    if (len && body) /* body is NULL only for an empty page */
        memcpy(copy, body, len);
    p->key = key;
    p->variant = variant;
    p->dev = st->st_dev;
    p->ino = st->st_ino;
    p->mtim = st->st_mtim;
    p->ctim = st->st_ctim;
    p->expires = nk_loop_now(srv->loop) + LCACHE_VALID_MS;
    p->len = len;
    p->body = copy;
    lc->slot[i] = p;
    lc->bytes += len;
}

int nk__listing_get(nk_httpd *srv, int dirfd, int json, int sort, const char **body,
                    size_t *len)
{
    struct stat st;
    if (fstat(dirfd, &st) < 0)
        return -errno;
    int variant = (json ? 1 : 0) | page_flags(srv, sort) << 1;
    size_t i = slot_of(srv->path, variant);
    lc_page *p = srv->lcache ? srv->lcache->slot[i] : NULL;
    if (p && p->variant == variant && strcmp(p->key, srv->path) == 0) {
        if (p->dev == st.st_dev && p->ino == st.st_ino && same_time(&p->mtim, &st.st_mtim) &&
            same_time(&p->ctim, &st.st_ctim) && nk_loop_now(srv->loop) < p->expires) {
            *body = p->body;
            *len = p->len;
            return 0;
        }
        page_drop(srv->lcache, i);
    }
    nk_buf_clear(&srv->body);
    int r = listing_render(srv, dirfd, json, sort, &srv->body);
    if (r < 0)
        return r;
    NK__COUNT(srv, listings_rendered, 1);
    *body = nk_buf_rptr(&srv->body);
    *len = nk_buf_len(&srv->body);
    if (quiet(&st) && *len <= LCACHE_PAGE_MAX)
        page_store(srv, i, variant, &st, *body, *len);
    return 0;
}

/* A key that is "<path>/..." (a directory below path), or path's parent directory. */
static int affected(const char *key, const char *path, size_t parent_len)
{
    size_t n = strlen(path);
    if (strncmp(key, path, n) == 0 && key[n] == '/')
        return 1;
    return strlen(key) == parent_len && strncmp(key, path, parent_len) == 0;
}

void nk__listing_forget(nk_httpd *srv, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!srv->lcache || !slash)
        return;
    size_t parent_len = (size_t)(slash - path) + 1; /* "/a/" of "/a/b" */
    for (size_t i = 0; i < LCACHE_SLOTS; i++) {
        const lc_page *p = srv->lcache->slot[i];
        if (p && affected(p->key, path, parent_len))
            page_drop(srv->lcache, i);
    }
}
