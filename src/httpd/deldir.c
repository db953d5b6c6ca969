/* DELETE of a directory (with --upload, under the same credentials as a file's).
 *
 * An empty directory is removed. One that holds anything is removed only when the request
 * asks for its whole tree, with "Depth: infinity" (RFC 4918 section 9.6.1's word for it; no
 * other Depth is accepted on a directory) or the query "recursive=1" (what the listing's
 * button and a plain `curl -X DELETE` can send); otherwise the answer is 409, saying how many
 * entries are below it, and nothing is touched. The difference from WebDAV, where DELETE of a
 * collection always takes the tree, is deliberate: a file server's client that names a folder
 * by mistake should not lose it whole.
 *
 * The tree is checked, then removed, by rmtree.c in the server's job thread (a large tree on
 * a slow disk takes long), without following links, leaving the file system or passing its
 * limits, and refused whole (409) when it holds anything the listing would not show. A removal
 * that fails half-way (a permission, an entry that appeared meanwhile) answers with the entry
 * it stopped at; what was removed stays removed. Success is 204.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct deldir_job {
    nk__job job;
    nk_httpd *srv;
    nk__job_log log;
    int parentfd;
    int recursive;
    int status;        /* 0: removed (204), else the HTTP status */
    int not_empty;     /* 409 only because the request did not ask for the tree */
    nk__rmtree t;
    char path[4096];   /* normalised, without the trailing "/" */
} deldir_job;

static int errno_status(int err)
{
    switch (err) {
    case EACCES:
    case EPERM:
    case EROFS:
        return 403;
    case ENOENT:
        return 404;
    case ENOTEMPTY:
    case EEXIST:
    case EBUSY:
    case ELOOP:
    case ENOTDIR:
        return 409; /* changed under us (filled, replaced by a link), or a mount point */
    default:
        return 500;
    }
}

static int refused_status(const nk__rmtree *t)
{
    return t->why == NK__RM_FAILED ? errno_status(t->err) : 409;
}

static void deldir_work(nk__job *job)
{
    deldir_job *dj = (deldir_job *)job;
    const char *name = strrchr(dj->path, '/') + 1;
    if (unlinkat(dj->parentfd, name, AT_REMOVEDIR) == 0) {
        fsync(dj->parentfd);
        return;
    }
    int fd = errno == ENOTEMPTY || errno == EEXIST
                 ? openat(dj->parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                 : -1;
    struct stat dir, parent;
    if (fd < 0) {
        dj->t.why = NK__RM_FAILED;
        dj->t.err = errno;
        dj->status = errno_status(errno);
        return;
    }
    if (fstat(fd, &dir) < 0 || fstat(dj->parentfd, &parent) < 0 || dir.st_dev != parent.st_dev) {
        dj->t.why = NK__RM_MOUNT; /* a mount point: what is mounted there is not ours */
        dj->status = 409;
        close(fd);
        return;
    }
    /* Checked whole first: a tree refused for any entry loses none. */
    int r = nk__rmtree_scan(&dj->t, fd);
    if (r == 0 && dj->recursive)
        r = nk__rmtree_empty(&dj->t, fd);
    if (r < 0) {
        dj->status = refused_status(&dj->t);
    } else if (!dj->recursive) {
        dj->not_empty = 1;
        dj->status = 409;
    } else if (unlinkat(dj->parentfd, name, AT_REMOVEDIR) < 0) {
        dj->t.why = NK__RM_FAILED; /* something was created in it meanwhile */
        dj->t.err = errno;
        dj->t.where[0] = '\0';
        dj->status = errno_status(errno);
    }
    close(fd);
    if (dj->t.removed)
        fsync(dj->parentfd);
}

/* The explanation of a refusal, for the error page: names HTML-escaped, a hidden entry not
 * named at all (the client was not meant to see it). */
static void explain(const deldir_job *dj, nk_buf *b)
{
    const nk__rmtree *t = &dj->t;
    if (dj->not_empty) {
        /* The listing's script looks for "is not empty: N entr" (dirlist.c). */
        nk_buf_printf(b, "This directory is not empty: %u entr%s below it. Send the DELETE with "
                         "\"Depth: infinity\" or \"?recursive=1\" to delete it with everything "
                         "in it.", t->entries, t->entries == 1 ? "y is" : "ies are");
        return;
    }
    if (t->why == NK__RM_OK) {
        nk_buf_append_str(b, nk_http_reason(dj->status));
        return;
    }
    if (t->removed)
        nk_buf_printf(b, "Deleted %u entr%s, then stopped: ", t->removed,
                      t->removed == 1 ? "y" : "ies");
    else
        nk_buf_append_str(b, "Nothing was deleted: ");
    const char *where = t->where[0] ? t->where : "the directory itself";
    switch (t->why) {
    case NK__RM_HIDDEN:
        nk_buf_append_str(b, "the directory holds entries this server does not list (dotfiles, "
                             "uploads in progress, special files).");
        return;
    case NK__RM_DEPTH:
        nk_buf_printf(b, "the tree is more than %u directories deep; delete it in parts.",
                      t->max_depth);
        return;
    case NK__RM_ENTRIES:
        nk_buf_printf(b, "the tree holds more than %u entries; delete it in parts.",
                      t->max_entries);
        return;
    case NK__RM_MOUNT:
        nk_buf_append_str(b, "\"");
        nk_http_html_escape(where, strlen(where), b);
        nk_buf_append_str(b, "\" is another file system.");
        return;
    default:
        nk_buf_append_str(b, "could not delete \"");
        nk_http_html_escape(where, strlen(where), b);
        nk_buf_printf(b, "\": %s.", nk_strerror(-t->err));
        return;
    }
}

static nk__outcome deldir_answer(nk__conn *c, deldir_job *dj)
{
    if (dj->status) {
        nk_buf b;
        nk_buf_init(&b, 4 * 1024 + 6 * sizeof dj->t.where);
        explain(dj, &b);
        int r = nk_buf_append(&b, "", 1) < 0
                    ? nk__respond_error(c, dj->status, NULL)
                    : nk__respond_error(c, dj->status, nk_buf_rptr(&b));
        nk_buf_free(&b);
        return r;
    }
    nk__resp r;
    nk__resp_init(&r, 204);
    r.no_body = 1;
    return nk__respond(c, &r);
}

/* The caches forget the tree (even when nobody waits for the answer). */
static void forget_tree(deldir_job *dj)
{
    if (dj->status && !dj->t.removed)
        return;
    char prefix[sizeof dj->path + 1];
    snprintf(prefix, sizeof prefix, "%s/", dj->path);
    nk__fcache_forget(dj->srv, dj->path);
    nk__fcache_forget_prefix(dj->srv, prefix);
    nk__listing_forget(dj->srv, dj->path);
}

static void deldir_free(deldir_job *dj)
{
    close(dj->parentfd);
    nk__job_log_free(&dj->log);
    free(dj);
}

static void deldir_done(nk__job *job)
{
    deldir_job *dj = (deldir_job *)job;
    nk__conn *c = job->conn;
    forget_tree(dj);
    if (c) {
        nk__job_log_restore(&dj->log, dj->srv);
        if (deldir_answer(c, dj) == 0)
            nk__conn_resume(c);
    }
    deldir_free(dj);
}

/* Does the request ask for the whole tree? 1, 0, or -1 for a Depth other than infinity. */
static int wants_tree(const nk_http_request *req)
{
    const nk_http_header *h = nk_http_find_header(req, "Depth");
    if (h)
        return h->value.len == 8 && strncasecmp(h->value.p, "infinity", 8) == 0 ? 1 : -1;
    const char *q = req->query.p;
    size_t n = req->query.len;
    static const char kv[] = "recursive=1";
    size_t kl = sizeof kv - 1;
    for (size_t i = 0; q && i + kl <= n; i++)
        if ((i == 0 || q[i - 1] == '&') && memcmp(q + i, kv, kl) == 0 &&
            (i + kl == n || q[i + kl] == '&'))
            return 1;
    return 0;
}

nk__outcome nk__delete_dir(nk__conn *c, const nk_http_request *req, int parentfd, const char *path)
{
    nk_httpd *srv = c->srv;
    int tree = wants_tree(req);
    if (tree < 0) {
        close(parentfd);
        return nk__respond_error(c, 400, "A directory is deleted with \"Depth: infinity\" or "
                                         "without a Depth header.");
    }
    size_t plen = strlen(path);
    deldir_job *dj = plen < sizeof dj->path ? calloc(1, sizeof *dj) : NULL;
    if (!dj) {
        close(parentfd);
        return plen < sizeof dj->path ? 500 : 414;
    }
    dj->srv = srv;
    dj->parentfd = parentfd;
    dj->recursive = tree;
    memcpy(dj->path, path, plen + 1);
    nk__rmtree_init(&dj->t, srv->cfg.dotfiles);
    dj->job.work = deldir_work;
    dj->job.done = deldir_done;
    if (nk__job_log_keep(&dj->log, srv) == 0 && nk__job_submit(c, &dj->job) == 0)
        return NK__DONE; /* answered by deldir_done */
    /* No job thread (or no memory for the job's log line): the work is done here. */
    deldir_work(&dj->job);
    forget_tree(dj);
    nk__outcome r = deldir_answer(c, dj);
    deldir_free(dj);
    return r;
}
