/* A static file's cache miss opened by the loop's file operations.
 *
 * The look-up of a path that is not in the file cache may read directories and inodes from
 * the disk; made on the loop it would stall every other connection of the worker for as long
 * as the disk takes. Here the calls of open.c's sequence (openat2 RESOLVE_BENEATH, and after a
 * link on the way the second try and the real-path check) run as nk_op_openat2/nk_op_openat:
 * native requests on uring, the loop's file thread on the other backends; then the same for
 * the precompressed sidecar REL.gz of a compressible file (fcache.c). The connection
 * waits meanwhile (an nk__job that no thread runs: conn.c treats it as any work off the
 * loop, reads nothing, and clears its conn when the connection goes away).
 *
 * The request's head leaves the connection's buffer when the handler returns, so a copy of
 * it is kept and parsed again when the file is open; the answer is then made exactly as a
 * synchronous open would have made it. A connection gone before the open completes leaves
 * only this record: the callback closes what was opened and frees it, touching nothing
 * else (the engine may be freed by then).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The set of opens in progress is looked up by path on every miss (a second open of a path
 * being opened is not started): a hash of lists keeps that, and the removal, short however
 * many connections wait for the disk at once. */
#define NK__FOPEN_BUCKETS 256

typedef struct nk__fopen fopen_rec;
struct nk__fopen {
    nk__job job;          /* job.conn only: NULL once the connection went away */
    fopen_rec *live_next; /* in srv->fopen_live[bucket] while the server lives */
    fopen_rec **live_prev; /* what points at this record there */
    nk_op op;
    nk_httpd *srv;
    nk__opened_fn *done;
    nk__openseq seq;
    int dirfd;
    uint32_t hash;        /* of path */
    size_t rel_off;       /* the relative path: path + rel_off, or "." when rel_off is 0 */
    int fd;               /* the file, once opened (or -errno) */
    int sidecar;          /* 1: gz is looked for; 2: it is being opened */
    char *gz;             /* the sidecar's relative path, in text[] */
    char *path;           /* srv->path, the normalised request path, in text[] */
    size_t head_len;
    char text[];          /* the request head as the connection received it, path, gz */
};

static uint32_t path_hash(const char *p)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
}

/* Off srv->fopen_live, before the record is freed (m->srv is NULL once the server is gone). */
static void rec_unlink(fopen_rec *m)
{
    if (!m->srv || !m->live_prev)
        return;
    *m->live_prev = m->live_next;
    if (m->live_next)
        m->live_next->live_prev = m->live_prev;
    m->live_prev = NULL;
    m->srv->fopen_count--;
}

static void rec_link(nk_httpd *srv, fopen_rec *m)
{
    fopen_rec **head = &srv->fopen_live[m->hash % NK__FOPEN_BUCKETS];
    m->live_next = *head;
    if (*head)
        (*head)->live_prev = &m->live_next;
    m->live_prev = head;
    *head = m;
    srv->fopen_count++;
}

static const char *rec_rel(const fopen_rec *m)
{
    if (m->sidecar == 2)
        return m->gz;
    return m->rel_off ? m->path + m->rel_off : ".";
}

static int rec_call(fopen_rec *m)
{
    nk_loop *loop = m->srv->loop;
    if (m->seq.plain)
        return nk_op_openat(loop, &m->op, m->dirfd, rec_rel(m), (int)m->seq.how.flags, 0);
    return nk_op_openat2(loop, &m->op, m->dirfd, rec_rel(m), &m->seq.how);
}

/* The connection went away: close what was opened, free the record, touch nothing else. */
static void rec_orphan(fopen_rec *m, ssize_t result)
{
    if (result >= 0)
        close((int)result);
    if (m->sidecar == 2 && m->fd >= 0)
        close(m->fd);
    rec_unlink(m);
    free(m);
}

/* The file and its sidecar are open (or not): answer as a synchronous open would have. */
static void rec_answer(nk__conn *c, fopen_rec *m, int gzfd)
{
    nk_httpd *srv = m->srv;
    c->x->job = NULL;
    size_t plen = strlen(m->path); /* it came from there: it fits */
    memcpy(srv->path, m->path, plen + 1);
    nk_http_request *req = &c->x->request;
    int status;
    nk__outcome r;
    if (nk_http_parse_request(m->text, m->head_len, 0, &srv->cfg.limits, req, &status) <= 0) {
        if (m->fd >= 0) /* it was parsed once already: not expected */
            close(m->fd);
        if (gzfd >= 0)
            close(gzfd);
        r = nk__respond_error(c, 500, NULL);
    } else {
        srv->req_is_head = req->method == NK_HTTP_HEAD;
        nk__conn_log_fields(c, req);
        r = m->done(c, req, m->fd, gzfd);
    }
    rec_unlink(m);
    free(m); /* the answer is made: its head and log line are copied out */
    if (r == NK__DONE)
        nk__conn_resume(c); /* pipelined requests, keep-alive */
}

static void rec_opened(nk_loop *loop, nk_op *op, ssize_t result)
{
    (void)loop;
    fopen_rec *m = op->data;
    nk__conn *c = m->job.conn;
    if (!c) {
        rec_orphan(m, result);
        return;
    }
    nk_httpd *srv = m->srv;
    int fd;
    if (nk__openseq_next(srv, &m->seq, (int)result, &fd)) {
        int rc = rec_call(m); /* the next call of the sequence */
        if (rc == 0)
            return;
        fd = rc;
    }
    if (m->sidecar == 2) {
        rec_answer(c, m, fd);
        return;
    }
    m->fd = fd;
    if (fd >= 0 && m->sidecar == 1) {
        m->sidecar = 2;
        nk__openseq_init(&m->seq, srv);
        if (rec_call(m) == 0)
            return;
    }
    rec_answer(c, m, -1);
}

nk__outcome nk__open_async(nk__conn *c, const char *rel, nk__opened_fn *done)
{
    nk_httpd *srv = c->srv;
    nk__ex *x = c->x;
    size_t head_len = x->head_len;
    if (!head_len || head_len > nk_buf_len(&x->in) || x->job)
        return NK__PASS;
    /* The same path already being opened: the caller opens it itself. Its look-up has just
     * been made (its directory entries are in memory), and the entry the open puts back in
     * the file cache serves every later request; without this, all the requests for a hot
     * file arriving while its cache entry is renewed (once a second, fcache.c) would each
     * start an open of their own. */
    if (!srv->fopen_live && !(srv->fopen_live = calloc(NK__FOPEN_BUCKETS, sizeof(fopen_rec *))))
        return NK__PASS;
    uint32_t hash = path_hash(srv->path);
    for (const fopen_rec *o = srv->fopen_live[hash % NK__FOPEN_BUCKETS]; o; o = o->live_next)
        if (o->hash == hash && strcmp(o->path, srv->path) == 0)
            return NK__PASS;
    size_t path_len = strlen(srv->path);
    /* The sidecar's name is the relative path and ".gz", at most the path's length + 4. */
    fopen_rec *m = malloc(sizeof *m + head_len + 2 * (path_len + 1) + 4);
    if (!m)
        return NK__PASS;
    memset(m, 0, sizeof *m);
    memcpy(m->text, nk_buf_rptr(&x->in), head_len);
    m->head_len = head_len;
    m->path = m->text + head_len;
    memcpy(m->path, srv->path, path_len + 1);
    m->gz = m->path + path_len + 1;
    m->hash = hash;
    m->rel_off = rel >= srv->path && rel <= srv->path + path_len ? (size_t)(rel - srv->path) : 0;
    m->srv = srv;
    m->done = done;
    m->dirfd = srv->root_fd;
    m->fd = -1;
    m->sidecar = nk__sidecar_path(srv, rec_rel(m), m->gz);
    nk__openseq_init(&m->seq, srv);
    nk_op_init(&m->op, rec_opened, m);
    if (rec_call(m) < 0) {
        free(m);
        return NK__PASS;
    }
    m->job.conn = c;
    x->job = &m->job;
    rec_link(srv, m);
    return NK__DONE;
}

unsigned nk_httpd_waiting(const nk_httpd *srv)
{
    return srv->fopen_count;
}

/* Every record in progress, each once, whatever f does to the one it is given. */
static void each_live(nk_httpd *srv, void (*f)(nk_httpd *srv, fopen_rec *m))
{
    for (unsigned b = 0; srv->fopen_live && b < NK__FOPEN_BUCKETS; b++)
        for (fopen_rec *m = srv->fopen_live[b], *next; m; m = next) {
            next = m->live_next;
            f(srv, m);
        }
}

static void stop_one(nk_httpd *srv, fopen_rec *m)
{
    m->job.conn = NULL; /* the connections are closed by now; make sure */
    if (nk_op_stop(srv->loop, &m->op) == 0)
        rec_orphan(m, -ECANCELED); /* not begun: no callback will come */
}

static void leave_one(nk_httpd *srv, fopen_rec *m)
{
    (void)srv;
    m->srv = NULL;
    m->live_next = NULL;
    m->live_prev = NULL;
}

void nk__fopen_drain(nk_httpd *srv)
{
    each_live(srv, stop_one);
    /* The others' calls are running (file thread, or the kernel): each ends with one callback,
     * which frees its record. Bounded as nk__opc_drain is. */
    for (int i = 0; i < 100 && srv->fopen_count; i++)
        nk_loop_run(srv->loop, NK_RUN_ONCE);
    each_live(srv, leave_one);
    srv->fopen_count = 0;
    free(srv->fopen_live);
    srv->fopen_live = NULL;
}
