/* Writing below the root: PUT (create or replace a file), DELETE (a file; a directory is
 * deldir.c's) and POST of multipart/form-data to a directory (RFC 7578; one or more files).
 *
 * A form never replaces a file unless it says so (a field overwrite=1 or on, the listing's
 * checkbox): a browser user picking a file that happens to share a name would otherwise lose
 * the old one without a word. Such a form is refused whole (409) and nothing of it is kept.
 * PUT names its target on purpose, so it replaces (If-None-Match: * makes it create-only).
 * A field mkdir=NAME (also as application/x-www-form-urlencoded) creates a directory, with
 * --mkdirs only, the name checked as an uploaded file's.
 *
 * A write never leaves a partial or corrupt file visible: the body streams (as a body sink,
 * see conn.c) into a temporary file ".netkit-upload-PID-XXXXXX" created with O_EXCL in the
 * target's own directory, which is fsynced and then renamed over the target, and the directory
 * is fsynced so the rename itself survives a crash (for PUT in the server's job thread,
 * commit.c, so a slow fsync does not stall the other connections). A client that goes away, a
 * body over the limit or a full disk unlinks the temporary file and leaves the old file (or
 * nothing); after a killed server, nk_httpd_clean_uploads removes the leftovers at the next
 * start, and after a killed worker its supervisor removes that pid's. The name starts with
 * "." so the read side never serves or lists it.
 *
 * Paths are normalised and refused exactly as for reads (dotfiles, escapes), and the parent
 * directory is opened with openat2(RESOLVE_BENEATH), so neither ".." nor a symbolic link can
 * lead a write outside the root; every later call is relative to that directory descriptor.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/openat2.h>

#define TMP_PREFIX NK_HTTP_UPLOAD_TMP_PREFIX
#define MAX_FILES 1000 /* files per multipart POST: each costs descriptors and fsyncs */

/* A multipart part whose bytes are all in its temporary file, waiting for the whole form:
 * nothing is renamed into place until the body is complete, so a form refused half-way
 * (413, 400, a client gone) leaves nothing behind. */
typedef struct staged {
    char tmpname[32];
    char name[256];
    int committed;        /* renamed into place (then the temporary name no longer exists) */
} staged;

typedef struct upload {
    int dirfd;
    int tmpfd;            /* -1 when no file is being written */
    char tmpname[32];
    char name[256];       /* target name within dirfd */
    int existed;
    int noreplace;        /* If-None-Match: *: the rename must not replace anything */
    mode_t mode;          /* mode of the replaced file, kept */
    int multipart;
    nk_http_multipart *mp;
    unsigned nfiles;
    nk_buf names;         /* multipart: the names stored, for the answer */
    staged *staged;       /* multipart: complete parts not yet renamed into place */
    unsigned nstaged;
    int is_html;          /* multipart: the client is a browser's form (303 to the listing) */
    int overwrite;        /* multipart: the form's "overwrite" box was ticked (1 or on) */
    int conflict;         /* multipart: refused because a part would replace a file */
    int field;            /* multipart: the plain field being read (FIELD_*), its value: */
    char field_val[256];
    size_t field_len;     /* bytes of the value; past sizeof field_val - 1 it is too long */
    char mkdir[256];      /* multipart: the "mkdir" field, a directory to create, "" if none */
    int made;             /* the directory was created */
    int urlenc;           /* the body is application/x-www-form-urlencoded */
    char form[1024];      /* an application/x-www-form-urlencoded body (only mkdir=NAME) */
    size_t form_len;
    char path[4096];      /* the normalised request path (srv->path is scratch) */
} upload;

/* ---- opening --------------------------------------------------------------------------------- */

static int open_how(nk_httpd *srv, int dirfd, const char *rel, int flags, mode_t mode)
{
    if (srv->have_openat2)
        return nk__openat2(dirfd, rel, flags, mode, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
    if (flags & O_CREAT) {
        /* rel is a single name here (no '/'), so nothing can be resolved outside dirfd */
        int fd = openat(dirfd, rel, flags, mode);
        return fd < 0 ? -errno : fd;
    }
    return nk__open_beneath(srv, dirfd, rel);
}

static int open_dir(nk_httpd *srv, int dirfd, const char *rel)
{
    int fd = open_how(srv, dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    return fd;
}

static int write_status(int err)
{
    /* RFC 4918 section 11.5: 507 Insufficient Storage. */
    return (err == -ENOSPC || err == -EDQUOT) ? 507 : 500;
}

static int open_status(int err)
{
    switch (err) {
    case -EXDEV: /* RESOLVE_BENEATH: the path would leave the root */
    case -ELOOP:
    case -EACCES:
    case -EPERM:
        return 403;
    case -ENOENT:
    case -ENOTDIR:
        return 409; /* RFC 9110 section 9.3.4: the parent is missing: a conflict */
    default:
        return nk__open_status(err);
    }
}

/* Open the parent directory of the normalised path p (its last '/' separates the name);
 * with mkdirs, create what is missing, one confined step at a time. */
static int open_parent(nk_httpd *srv, const char *p, int mkdirs)
{
    const char *slash = strrchr(p, '/');
    char rel[4096];
    size_t n = (size_t)(slash - p);
    if (n == 0)
        return open_dir(srv, srv->root_fd, ".");
    memcpy(rel, p + 1, n - 1);
    rel[n - 1] = '\0';
    int fd = open_dir(srv, srv->root_fd, rel);
    if (fd != -ENOENT || !mkdirs)
        return fd;
    int cur = open_dir(srv, srv->root_fd, ".");
    char *save = NULL;
    for (char *seg = strtok_r(rel, "/", &save); seg && cur >= 0; seg = strtok_r(NULL, "/", &save)) {
        if (mkdirat(cur, seg, 0755) < 0 && errno != EEXIST) {
            int err = -errno;
            close(cur);
            return err;
        }
        int next = open_dir(srv, cur, seg);
        close(cur);
        cur = next;
    }
    return cur;
}

static int make_temp(nk_httpd *srv, upload *u)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (int attempt = 0; attempt < 16; attempt++) {
        unsigned char rnd[6];
        if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
            uint64_t x = ((uint64_t)getpid() << 32) ^ ++srv->upload_seq ^ (uint64_t)time(NULL);
            memcpy(rnd, &x, sizeof rnd);
        }
        /* ".netkit-upload-PID-XXXXXX": the pid lets the supervisor remove what a worker that
         * died was writing (nk_httpd_clean_worker_uploads) and leave the others' alone. */
        int head = snprintf(u->tmpname, sizeof u->tmpname, TMP_PREFIX "%d-", (int)getpid());
        if (head < 0 || (size_t)head + sizeof rnd >= sizeof u->tmpname)
            return -ENAMETOOLONG; /* not with Linux pids (7 digits at most) */
        char *w = u->tmpname + head;
        for (size_t i = 0; i < sizeof rnd; i++)
            *w++ = chars[rnd[i] % (sizeof chars - 1)];
        *w = '\0';
        int fd = open_how(srv, u->dirfd, u->tmpname,
                          O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
        if (fd != -EEXIST) {
            if (fd >= 0) {
                u->tmpfd = fd;
                if (u->existed)
                    fchmod(fd, u->mode);
            }
            return fd < 0 ? fd : 0;
        }
    }
    return -EEXIST;
}

static void drop_temp(upload *u)
{
    if (u->tmpfd < 0)
        return;
    close(u->tmpfd);
    u->tmpfd = -1;
    unlinkat(u->dirfd, u->tmpname, 0);
}

/* Free an upload and whatever it holds; an unfinished temporary file is removed. */
static void upload_destroy(upload *u)
{
    drop_temp(u);
    for (unsigned i = 0; i < u->nstaged; i++)
        if (!u->staged[i].committed)
            unlinkat(u->dirfd, u->staged[i].tmpname, 0);
    free(u->staged);
    if (u->dirfd >= 0)
        close(u->dirfd);
    free(u->mp);
    nk_buf_free(&u->names);
    free(u);
}

static void upload_free(nk__conn *c)
{
    upload *u = c->x->sink_state;
    if (!u)
        return;
    upload_destroy(u);
    c->x->sink_state = NULL;
}

/* Make the temporary file the target: fsync, rename (replacing unless noreplace). Returns 0
 * or an HTTP status. */
static int commit_temp(upload *u)
{
    int err = 0;
    if (fsync(u->tmpfd) < 0)
        err = -errno;
    if (close(u->tmpfd) < 0 && !err)
        err = -errno;
    u->tmpfd = -1;
    if (err) {
        unlinkat(u->dirfd, u->tmpname, 0);
        return write_status(err);
    }
    int r = u->noreplace ? renameat2(u->dirfd, u->tmpname, u->dirfd, u->name, RENAME_NOREPLACE)
                         : renameat(u->dirfd, u->tmpname, u->dirfd, u->name);
    if (r < 0) {
        err = errno;
        unlinkat(u->dirfd, u->tmpname, 0);
        if (err == EEXIST)
            return 412;
        return (err == EISDIR || err == ENOTDIR || err == ENOTEMPTY) ? 409 : write_status(-err);
    }
    return 0;
}

/* Would a form without the "overwrite" box replace anything? A name already in the
 * directory, or the same name twice in the form (the second would replace the first). Checked
 * before anything is renamed, so a refused form stores nothing; RENAME_NOREPLACE then closes
 * the window between this check and the renames. */
static int form_replaces(const upload *u)
{
    for (unsigned i = 0; i < u->nstaged; i++) {
        struct stat sb;
        if (fstatat(u->dirfd, u->staged[i].name, &sb, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
            return 1;
        for (unsigned j = 0; j < i; j++)
            if (strcmp(u->staged[i].name, u->staged[j].name) == 0)
                return 1;
    }
    return 0;
}

/* Commit every staged part of a complete form, in order (job thread, or the loop when there
 * is no thread): fsync each file, rename it into place, then fsync the directory once.
 * Returns 0 or the HTTP status of the first failure; the parts after it are removed. Without
 * the "overwrite" box a form never replaces a file: 409 (u->conflict) and nothing stored. */
static int commit_staged(upload *u)
{
    int status = 0;
    if (u->mkdir[0]) {
        if (mkdirat(u->dirfd, u->mkdir, 0755) < 0)
            return errno == EEXIST ? 409 : open_status(-errno);
        u->made = 1;
        fsync(u->dirfd);
    }
    if (!u->overwrite && form_replaces(u)) {
        u->conflict = 1;
        return 409; /* upload_destroy removes every staged part */
    }
    for (unsigned i = 0; i < u->nstaged; i++) {
        staged *s = &u->staged[i];
        if (status)
            break; /* upload_destroy removes the rest */
        int fd = openat(u->dirfd, s->tmpname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || fsync(fd) < 0)
            status = write_status(-errno);
        if (fd >= 0)
            close(fd);
        if (!status && (u->overwrite ? renameat(u->dirfd, s->tmpname, u->dirfd, s->name)
                                     : renameat2(u->dirfd, s->tmpname, u->dirfd, s->name,
                                                 RENAME_NOREPLACE)) < 0) {
            u->conflict = errno == EEXIST; /* created since form_replaces looked */
            status = (errno == EEXIST || errno == EISDIR || errno == ENOTDIR || errno == ENOTEMPTY)
                         ? 409 : write_status(-errno);
        }
        if (status)
            break;
        s->committed = 1;
        u->nfiles++;
        nk_buf_printf(&u->names, "%s\n", s->name);
    }
    if (u->nfiles)
        fsync(u->dirfd); /* the renames themselves survive a crash */
    return status;
}

static void forget(nk_httpd *srv, upload *u, const char *key)
{
    /* The cache re-checks entries with fstat and sees a replaced file's link count drop, but a
     * path that was cached as missing-then-created, or a directory's index, is dropped here. */
    nk__fcache_forget(srv, key);
    const char *slash = strrchr(key, '/');
    if (slash && srv->cfg.index && strcmp(slash + 1, srv->cfg.index) == 0) {
        char dir[4096];
        size_t n = (size_t)(slash - key) + 1;
        memcpy(dir, key, n);
        dir[n] = '\0';
        nk__fcache_forget(srv, dir);
    }
    (void)u;
}

/* ---- preconditions ----------------------------------------------------------------------- */

/* Check If-Match / If-None-Match against the target's current state (st NULL: absent).
 * RFC 9110 section 13.1.1/13.1.2: "*" matches any current representation. */
static int preconditions(const nk_http_request *req, const struct stat *st, upload *u)
{
    const nk_http_header *im = nk_http_find_header(req, "If-Match");
    const nk_http_header *inm = nk_http_find_header(req, "If-None-Match");
    if (!st) {
        if (im)
            return 412;
        if (inm && inm->value.len == 1 && inm->value.p[0] == '*' && u)
            u->noreplace = 1; /* create only: enforced again by the rename */
        return 0;
    }
    char etag[NK_HTTP_ETAG_MAX];
    nk_http_file_etag(etag, sizeof etag, (uint64_t)st->st_size, (int64_t)st->st_mtim.tv_sec,
                      st->st_mtim.tv_nsec);
    nk_http_cond_input cond = {
        .method = req->method,
        .if_match = im ? im->value : (nk_str){NULL, 0},
        .if_none_match = inm ? inm->value : (nk_str){NULL, 0},
        .etag = etag,
        .mtime = st->st_mtim.tv_sec,
    };
    return nk_http_cond_evaluate(&cond) ? 412 : 0;
}

/* ---- PUT -------------------------------------------------------------------------------------- */

/* Normalise the target into u->path and refuse what the read side refuses. */
static int target_path(nk_httpd *srv, const nk_http_request *req, char *out, size_t outlen)
{
    int n = nk_http_path_normalize(req->path.p, req->path.len, out, outlen);
    if (n == -ENAMETOOLONG)
        return 414;
    if (n < 0)
        return 400;
    if (!srv->cfg.dotfiles && nk_http_path_has_dotfile(out))
        return 403;
    /* Another upload's temporary file is never a target, whatever the options: writing or
     * deleting it would corrupt or cancel that upload. */
    if (nk_http_path_has_upload_tmp(out))
        return 403;
    return 0;
}

/* A piece of a file's body into its temporary file: 0, or the status of the failure. */
static nk__status write_piece(upload *u, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(u->tmpfd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return write_status(-errno);
        }
        p += w;
        n -= (size_t)w;
    }
    return NK__NO_STATUS;
}

static nk__sink_step put_data(nk__conn *c, const char *p, size_t n, nk__status *status)
{
    nk__status st = write_piece(c->x->sink_state, p, n);
    return st ? nk__sink_refuse(status, st) : NK__SINK_MORE;
}

/* The answer to a committed PUT (status 0) or a failed one. */
static nk__outcome put_answer(nk__conn *c, nk__status status, int existed, const char *location)
{
    nk_httpd *srv = c->srv;
    if (status)
        return nk__respond_error(c, status, NULL);
    nk__resp r;
    nk__resp_init(&r, existed ? 204 : 201);
    nk_buf_clear(&srv->body);
    if (!existed) {
        /* RFC 9110 section 9.3.4: 201 for a new resource; Location names it. */
        r.location_path = location; /* normalised: see target_path */
        nk_buf_append_str(&srv->body, "Created\n");
        r.content_type = "text/plain; charset=utf-8";
        nk__resp_body_scratch(&r, srv);
    } else {
        r.no_body = 1;
    }
    return nk__respond(c, &r);
}

/* The answer to a commit: status NK__NO_STATUS when it succeeded. */
typedef nk__outcome put_answer_fn(nk__conn *c, nk__status status, upload *u);

/* A PUT's commit (fsync, rename, directory fsync) as a job for the server's job thread
 * (commit.c), with copies of what the answer and its log line need from the request, whose
 * bytes are gone by the time the answer is sent. */
typedef struct put_job {
    nk__job job;
    nk_httpd *srv;
    upload *u;
    nk__status status;
    put_answer_fn *answer; /* loop side, once the work is done */
    nk__job_log log;
} put_job;

static void put_work(nk__job *job)
{
    put_job *pj = (put_job *)job;
    pj->status = pj->u->multipart ? commit_staged(pj->u) : commit_temp(pj->u);
    if (pj->status == 0 && !pj->u->multipart)
        fsync(pj->u->dirfd); /* the rename itself survives a crash */
}

/* Drop the committed paths from the file cache (even when nobody waits for the answer). */
static void forget_committed(nk_httpd *srv, upload *u, int status)
{
    if (!u->multipart) {
        if (status == 0)
            forget(srv, u, u->path);
        return;
    }
    for (unsigned i = 0; i < u->nstaged; i++) {
        if (!u->staged[i].committed)
            continue;
        char key[4096 + 256];
        snprintf(key, sizeof key, "%s%s", u->path, u->staged[i].name);
        forget(srv, u, key);
    }
}

static void put_job_free(put_job *pj)
{
    upload_destroy(pj->u);
    nk__job_log_free(&pj->log);
    free(pj);
}

static void put_done(nk__job *job)
{
    put_job *pj = (put_job *)job;
    nk__conn *c = job->conn;
    nk_httpd *srv = pj->srv;
    forget_committed(srv, pj->u, pj->status);
    if (c) {
        nk__job_log_restore(&pj->log, srv);
        if (pj->answer(c, pj->status, pj->u) == 0)
            nk__conn_resume(c);
    }
    put_job_free(pj);
}

/* Hand the commit of c's upload to the job thread; answer(c, status, u) runs on the loop
 * when it is done. Without a thread (or memory for the job) the commit runs here. */
static nk__outcome commit_async(nk__conn *c, put_answer_fn *answer)
{
    nk_httpd *srv = c->srv;
    upload *u = c->x->sink_state;
    put_job *pj = calloc(1, sizeof *pj);
    if (pj && nk__job_log_keep(&pj->log, srv) == 0) {
        pj->srv = srv;
        pj->u = u;
        pj->answer = answer;
        pj->job.work = put_work;
        pj->job.done = put_done;
        c->x->sink_state = NULL; /* the job owns the upload now */
        if (nk__job_submit(c, &pj->job) == 0)
            return NK__DONE; /* answered by put_done */
        c->x->sink_state = u;
        nk__job_log_free(&pj->log);
    }
    free(pj);
    /* No job thread (or no memory for the job): commit here, on the loop. */
    int status = u->multipart ? commit_staged(u) : commit_temp(u);
    if (status == 0 && !u->multipart)
        fsync(u->dirfd);
    forget_committed(srv, u, status);
    c->x->sink_state = NULL;
    nk__outcome r = answer(c, status, u);
    upload_destroy(u);
    return r;
}

static nk__outcome put_answer_u(nk__conn *c, nk__status status, upload *u)
{
    return put_answer(c, status, u->existed, u->path);
}

static nk__outcome put_end(nk__conn *c, const nk_http_request *req)
{
    (void)req;
    return commit_async(c, put_answer_u);
}

static void put_abort(nk__conn *c)
{
    upload_free(c);
}

static const nk__sink put_sink = {put_data, put_end, put_abort};

static upload *upload_new(void)
{
    upload *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->dirfd = u->tmpfd = -1;
    nk_buf_init(&u->names, 64 * 1024);
    return u;
}

static nk__status begin_put(nk__conn *c, const nk_http_request *req)
{
    nk_httpd *srv = c->srv;
    /* RFC 9110 section 14.4: a PUT with Content-Range carries part of a representation, and
     * this server only replaces whole files: storing the part as the file would lose the rest. */
    if (nk_http_find_header(req, "Content-Range"))
        return 400;
    upload *u = upload_new();
    if (!u)
        return 500;
    int st = target_path(srv, req, u->path, sizeof u->path);
    size_t plen = strlen(u->path);
    if (st == 0 && u->path[plen - 1] == '/')
        st = 409; /* a directory is not a file to write */
    const char *name = strrchr(u->path, '/') + 1;
    size_t name_len = strlen(name);
    if (st == 0 && name_len >= sizeof u->name)
        st = 414;
    if (st) {
        free(u);
        return st;
    }
    memcpy(u->name, name, name_len + 1); /* bounded just above */
    u->dirfd = open_parent(srv, u->path, srv->cfg.mkdirs);
    if (u->dirfd < 0) {
        st = open_status(u->dirfd);
        free(u);
        return st;
    }
    c->x->sink_state = u;
    struct stat sb;
    if (fstatat(u->dirfd, u->name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(sb.st_mode))
            st = 403; /* never write through (or over) a symbolic link */
        else if (!S_ISREG(sb.st_mode))
            st = 409;
        else {
            u->existed = 1;
            u->mode = sb.st_mode & 07777;
        }
    } else if (errno != ENOENT) {
        st = open_status(-errno);
    }
    if (!st)
        st = preconditions(req, u->existed ? &sb : NULL, u);
    if (!st) {
        int err = make_temp(srv, u);
        if (err < 0)
            st = write_status(err);
    }
    if (st) {
        upload_free(c);
        return st;
    }
    c->x->sink = &put_sink;
    return 0;
}

/* ---- POST multipart/form-data ---------------------------------------------------------------- */

/* A file name from a form, reduced to its last component; 0, or an HTTP status. */
static int form_filename(nk_httpd *srv, const char *in, char *out, size_t outlen)
{
    /* RFC 7578 section 4.2: a filename may carry a path; only the last part is used. */
    const char *base = in;
    for (const char *p = in; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    size_t n = strlen(base);
    if (n == 0 || n >= outlen || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return 400;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)base[i] < 0x20 || base[i] == 0x7f)
            return 400;
    if ((base[0] == '.' && !srv->cfg.dotfiles) ||
        strncmp(base, TMP_PREFIX, sizeof TMP_PREFIX - 1) == 0)
        return 403;
    memcpy(out, base, n + 1);
    return 0;
}

enum { FIELD_NONE, FIELD_OVERWRITE, FIELD_MKDIR };

/* A plain field's value is complete: act on it. "overwrite" is a checkbox: a ticked box
 * sends its value ("1" in our form, "on" by a browser's default), an unticked one nothing. */
static int field_end(upload *u)
{
    if (u->field_len >= sizeof u->field_val)
        return u->field == FIELD_NONE ? 0 : 400; /* longer than any value we understand */
    u->field_val[u->field_len] = '\0';
    if (u->field == FIELD_OVERWRITE &&
        (strcmp(u->field_val, "1") == 0 || strcmp(u->field_val, "on") == 0))
        u->overwrite = 1;
    if (u->field == FIELD_MKDIR) {
        if (u->mkdir[0] || !u->field_val[0])
            return 400; /* one directory per form, with a name */
        memcpy(u->mkdir, u->field_val, u->field_len + 1);
    }
    return 0;
}

static void field_data(upload *u, const char *p, size_t n)
{
    if (u->field == FIELD_NONE)
        return;
    if (u->field_len + n >= sizeof u->field_val) {
        u->field_len = sizeof u->field_val; /* too long: refused by field_end */
        return;
    }
    memcpy(u->field_val + u->field_len, p, n);
    u->field_len += n;
}

static int post_part(nk__conn *c, upload *u)
{
    nk_httpd *srv = c->srv;
    u->field = FIELD_NONE;
    u->field_len = 0;
    if (!u->mp->has_filename || !u->mp->filename[0]) {
        /* a plain form field (or no file chosen): nothing to store, some fields to read */
        if (!u->mp->has_filename && strcmp(u->mp->name, "overwrite") == 0)
            u->field = FIELD_OVERWRITE;
        else if (!u->mp->has_filename && strcmp(u->mp->name, "mkdir") == 0)
            u->field = FIELD_MKDIR;
        return 0;
    }
    if (u->nstaged >= MAX_FILES)
        return 413;
    int st = form_filename(srv, u->mp->filename, u->name, sizeof u->name);
    if (st)
        return st;
    struct stat sb;
    u->existed = 0;
    if (fstatat(u->dirfd, u->name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISREG(sb.st_mode))
            return S_ISLNK(sb.st_mode) ? 403 : 409;
        u->existed = 1;
        u->mode = sb.st_mode & 07777;
    }
    int err = make_temp(srv, u);
    return err < 0 ? write_status(err) : 0;
}

/* The current part is complete: close its file and keep it for the commit at the end. */
static int stage_part(upload *u)
{
    staged *grown = realloc(u->staged, (u->nstaged + 1) * sizeof *grown);
    if (!grown)
        return 500;
    u->staged = grown;
    staged *s = &u->staged[u->nstaged];
    memset(s, 0, sizeof *s);
    memcpy(s->tmpname, u->tmpname, sizeof s->tmpname);
    memcpy(s->name, u->name, sizeof s->name);
    int err = close(u->tmpfd) < 0 ? -errno : 0;
    u->tmpfd = -1;
    u->nstaged++; /* from here upload_destroy removes it */
    return err ? write_status(err) : 0;
}

static nk__sink_step post_data(nk__conn *c, const char *p, size_t n, nk__status *status)
{
    upload *u = c->x->sink_state;
    while (n) {
        size_t used;
        const char *data;
        size_t dlen;
        int ev = nk_http_multipart_step(u->mp, p, n, &used, &data, &dlen);
        p += used;
        n -= used;
        if (ev < 0)
            return nk__sink_refuse(status, 400);
        nk__status st = NK__NO_STATUS;
        if (ev == NK_HTTP_MP_PART) {
            st = post_part(c, u);
        } else if (ev == NK_HTTP_MP_DATA && u->tmpfd >= 0) {
            st = write_piece(u, data, dlen);
        } else if (ev == NK_HTTP_MP_DATA) {
            field_data(u, data, dlen);
        } else if (ev == NK_HTTP_MP_PART_END && u->tmpfd >= 0) {
            st = stage_part(u);
        } else if (ev == NK_HTTP_MP_PART_END) {
            st = field_end(u);
        } else if (ev == NK_HTTP_MP_DONE) {
            break;
        }
        if (st)
            return nk__sink_refuse(status, st);
    }
    return NK__SINK_MORE;
}

/* A browser's form names text/html in Accept (q > 0; "text/html;q=0" refuses it). */
static int accepts_html(const nk_http_request *req)
{
    return nk_http_accepts_explicitly(req, "Accept", "text/html") > 0;
}

static nk__outcome post_answer(nk__conn *c, nk__status status, upload *u);

/* A new directory's name, checked as an uploaded file's is, except that a path is refused
 * rather than cut to its last part (a form that asks for "a/b" wants something else).
 * 0, or an HTTP status. */
static int mkdir_name(const nk_httpd *srv, const char *name)
{
    size_t n = strlen(name);
    if (!srv->cfg.mkdirs)
        return 403;
    if (n == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strchr(name, '/') ||
        !nk_http_name_servable(name, n))
        return 400; /* nk_http_name_servable: no control bytes, backslash or bad UTF-8 */
    if ((name[0] == '.' && !srv->cfg.dotfiles) || nk_http_path_has_upload_tmp(name))
        return 403;
    return 0;
}

static nk__outcome post_end(nk__conn *c, const nk_http_request *req)
{
    upload *u = c->x->sink_state;
    size_t used;
    const char *data;
    size_t dlen;
    /* the closing delimiter must have been seen: a cut body is not a complete form */
    int done = nk_http_multipart_step(u->mp, "", 0, &used, &data, &dlen) == NK_HTTP_MP_DONE;
    if (!done) {
        upload_free(c);
        return nk__respond_error(c, 400, "The multipart body is incomplete.");
    }
    u->is_html = accepts_html(req);
    int st = u->mkdir[0] ? mkdir_name(c->srv, u->mkdir) : 0;
    if (st) {
        upload_free(c);
        return nk__respond_error(c, st, st == 403 && !c->srv->cfg.mkdirs
                                            ? "Creating directories needs --mkdirs." : NULL);
    }
    return commit_async(c, post_answer);
}

static nk__outcome post_answer(nk__conn *c, nk__status status, upload *u)
{
    nk_httpd *srv = c->srv;
    if (status)
        return nk__respond_error(c, status, u->conflict ? "A file of that name exists: tick "
                                                          "\"overwrite\" to replace it."
                                                        : NULL);
    nk__resp r;
    nk_buf_clear(&srv->body);
    if (u->is_html) {
        /* A browser's form: RFC 9110 section 15.4.4, 303 sends it back to the listing. */
        nk__resp_init(&r, 303);
        nk_buf_append_str(&srv->body, "See Other\n");
    } else if (u->made && !u->nstaged) {
        /* a new directory alone: 201 naming it (RFC 9110 section 15.3.2) */
        char made[4096 + 256 + 2];
        nk__resp_init(&r, 201);
        nk_buf_printf(&srv->body, "created %s/\n", u->mkdir);
        r.content_type = "text/plain; charset=utf-8";
        nk__resp_body_scratch(&r, srv);
        snprintf(made, sizeof made, "%s%s/", u->path, u->mkdir);
        r.location_path = made;
        return nk__respond(c, &r);
    } else {
        nk__resp_init(&r, 201);
        nk_buf_printf(&srv->body, "stored %u file%s\n", u->nfiles, u->nfiles == 1 ? "" : "s");
        nk_buf_append(&srv->body, nk_buf_rptr(&u->names), nk_buf_len(&u->names));
    }
    r.content_type = "text/plain; charset=utf-8";
    nk__resp_body_scratch(&r, srv);
    r.location_path = u->path; /* normalised, ends in "/" */
    return nk__respond(c, &r);
}

static const nk__sink post_sink = {post_data, post_end, put_abort};

/* ---- POST application/x-www-form-urlencoded: mkdir=NAME, what `curl -d` sends ------------- */

static int hexval(int ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0'
         : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
         : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* Decode one value ('+' is a space, %XX a byte) into out; -1 when malformed or too long. */
static int form_decode(const char *p, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)p[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)p[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            ch = hi * 16 + lo;
            i += 2;
        }
        if (ch == 0 || o + 1 >= outlen)
            return -1;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return 0;
}

static nk__sink_step urlenc_data(nk__conn *c, const char *p, size_t n, nk__status *status)
{
    upload *u = c->x->sink_state;
    if (n > sizeof u->form - u->form_len)
        return nk__sink_refuse(status, 413); /* a name fits in far less */
    memcpy(u->form + u->form_len, p, n);
    u->form_len += n;
    return NK__SINK_MORE;
}

static nk__outcome urlenc_end(nk__conn *c, const nk_http_request *req)
{
    upload *u = c->x->sink_state;
    int st = 400;
    for (size_t i = 0; i < u->form_len;) {
        const char *amp = memchr(u->form + i, '&', u->form_len - i);
        size_t end = amp ? (size_t)(amp - u->form) : u->form_len;
        if (end - i >= 6 && memcmp(u->form + i, "mkdir=", 6) == 0) {
            st = form_decode(u->form + i + 6, end - i - 6, u->mkdir, sizeof u->mkdir) < 0 ||
                         !u->mkdir[0] ? 400 : mkdir_name(c->srv, u->mkdir);
            break;
        }
        i = end + 1;
    }
    if (st) {
        upload_free(c);
        return nk__respond_error(c, st, st == 403 && !c->srv->cfg.mkdirs
                                            ? "Creating directories needs --mkdirs." : NULL);
    }
    u->is_html = accepts_html(req);
    return commit_async(c, post_answer);
}

static const nk__sink urlenc_sink = {urlenc_data, urlenc_end, put_abort};

static nk__status begin_post(nk__conn *c, const nk_http_request *req)
{
    nk_httpd *srv = c->srv;
    upload *u = upload_new();
    if (!u)
        return 500;
    int st = target_path(srv, req, u->path, sizeof u->path);
    if (!st) {
        u->mp = malloc(sizeof *u->mp);
        const nk_http_header *ct = nk_http_find_header(req, "Content-Type");
        static const char urlenc[] = "application/x-www-form-urlencoded";
        if (!u->mp)
            st = 500;
        else if (ct && ct->value.len >= sizeof urlenc - 1 &&
                 strncasecmp(ct->value.p, urlenc, sizeof urlenc - 1) == 0 &&
                 (ct->value.len == sizeof urlenc - 1 || ct->value.p[sizeof urlenc - 1] == ';'))
            u->urlenc = 1;
        else if (!ct || nk_http_multipart_init(u->mp, ct->value) < 0)
            st = 415;
    }
    if (!st) {
        const char *rel = u->path[1] ? u->path + 1 : ".";
        u->dirfd = open_dir(srv, srv->root_fd, rel);
        if (u->dirfd < 0)
            st = u->dirfd == -ENOENT ? 404 : open_status(u->dirfd);
    }
    c->x->sink_state = u;
    if (!st && u->path[strlen(u->path) - 1] != '/') {
        /* the form posts to the directory's URL; keep names below it unambiguous */
        size_t n = strlen(u->path);
        if (n + 1 < sizeof u->path) {
            u->path[n] = '/';
            u->path[n + 1] = '\0';
        }
    }
    if (st) {
        upload_free(c);
        return st;
    }
    u->multipart = 1; /* committed as a form (commit_staged), even with no file */
    c->x->sink = u->urlenc ? &urlenc_sink : &post_sink;
    return 0;
}

nk__status nk__upload_begin(nk__conn *c, const nk_http_request *req)
{
    return req->method == NK_HTTP_PUT ? begin_put(c, req) : begin_post(c, req);
}

/* ---- DELETE ----------------------------------------------------------------------------------- */

/* A file goes at once (one unlink); a directory, which may be a whole tree, in deldir.c. The
 * path may end in "/" (a directory's URL) or not; the root is never deleted. */
nk__outcome nk__upload_delete(nk__conn *c, const nk_http_request *req)
{
    nk_httpd *srv = c->srv;
    char path[4096];
    int st = target_path(srv, req, path, sizeof path);
    if (st)
        return nk__respond_error(c, st, NULL);
    size_t plen = strlen(path);
    if (plen == 1)
        return nk__respond_error(c, 403, "The root directory is never deleted.");
    int want_dir = path[plen - 1] == '/';
    if (want_dir)
        path[--plen] = '\0'; /* the directory as an entry of its parent */
    int dirfd = open_parent(srv, path, 0);
    if (dirfd < 0)
        return nk__respond_error(c, dirfd == -ENOENT || dirfd == -ENOTDIR ? 404
                                                                           : open_status(dirfd),
                                 NULL);
    const char *name = strrchr(path, '/') + 1;
    struct stat sb;
    if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
        st = errno == ENOENT ? 404 : open_status(-errno);
    else if (S_ISLNK(sb.st_mode))
        st = 403;
    else if (S_ISDIR(sb.st_mode)) {
        if (!(st = preconditions(req, &sb, NULL)))
            return nk__delete_dir(c, req, dirfd, path); /* takes dirfd over */
    } else if (want_dir)
        st = 404; /* "name/" names a directory, and there is none */
    else if (!S_ISREG(sb.st_mode))
        st = 405;
    else
        st = preconditions(req, &sb, NULL);
    if (!st && unlinkat(dirfd, name, 0) < 0)
        st = errno == ENOENT ? 404 : open_status(-errno);
    if (!st) {
        fsync(dirfd);
        forget(srv, NULL, path);
        nk__listing_forget(srv, path);
    }
    close(dirfd);
    if (st)
        return nk__respond_error(c, st, NULL);
    nk__resp r;
    nk__resp_init(&r, 204);
    r.no_body = 1;
    return nk__respond(c, &r);
}
