/* File steps (nk_op_openat, statx, fsync, renameat, pread): the public calls, and their
 * emulation on every backend but uring, where a thread of the loop's own makes the system
 * calls.
 *
 * Why a thread: a regular file is always "ready" to poll and epoll, so readiness cannot keep
 * the loop from waiting on the disk; only a call made elsewhere can. The thread takes the steps
 * one at a time in start order from a pending list and puts each, with its result, on a
 * finished list, then rings an eventfd; the loop's watcher on that eventfd moves the finished
 * ones to the completion list (op.c), whose callbacks run after the I/O callbacks of the same
 * iteration, as every emulated operation's do. The thread reads the nk_op's parameters and
 * writes its result; everything else of the nk_op (its state above all) belongs to the loop's
 * thread, and the two lists are the only shared data, under one mutex.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "loop/op_internal.h"

struct nk__files {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;                  /* pending work, or quit */
    nk_op *pending_head, *pending_tail;   /* to run, in start order (linked by op->link) */
    nk_op *finished_head, *finished_tail; /* run, waiting for the loop */
    nk_op *running;                       /* in its system call now */
    int quit;
    int efd; /* rung by the thread after each step */
    nk_io io;
};

/* pread(2), retried after EINTR: a guard, as the thread blocks every signal (a file system
 * may still answer EINTR), so that the caller never sees it, as on uring. */
static ssize_t file_pread(const nk_op *op)
{
    size_t len = op->len < NK__OP_PREAD_MAX ? op->len : NK__OP_PREAD_MAX;
    ssize_t n;
    do
        n = pread(op->at_fd, op->buf, len, (off_t)op->offset);
    while (n < 0 && errno == EINTR);
    return n;
}

ssize_t nk__file_step(const nk_op *op)
{
    long rc;
    switch (op->kind) {
    case NK__OP_PREAD:
        rc = file_pread(op);
        break;
    case NK__OP_OPENAT:
        rc = openat(op->at_fd, op->path, (int)op->flags | O_CLOEXEC, (mode_t)op->mode);
        break;
    case NK__OP_OPENAT2:
        rc = syscall(SYS_openat2, op->at_fd, op->path, (const void *)op->msg,
                     sizeof(struct open_how));
        break;
    case NK__OP_STATX:
        rc = statx(op->at_fd, op->path, (int)op->flags, op->mode, op->out);
        break;
    case NK__OP_FSYNC:
        rc = (op->flags & NK_OP_FSYNC_DATA) ? fdatasync(op->at_fd) : fsync(op->at_fd);
        break;
    default: /* NK__OP_RENAMEAT */
        rc = renameat2(op->at_fd, op->path, op->at_fd2, op->path2, op->flags);
        break;
    }
    return rc < 0 ? -errno : (ssize_t)rc;
}

static void list_push(nk_op **head, nk_op **tail, nk_op *op)
{
    op->link = NULL;
    if (*tail)
        (*tail)->link = op;
    else
        *head = op;
    *tail = op;
}

static nk_op *list_pop(nk_op **head, nk_op **tail)
{
    nk_op *op = *head;
    if (op != NULL) {
        *head = op->link;
        if (*head == NULL)
            *tail = NULL;
        op->link = NULL;
    }
    return op;
}

/* Remove op from the list; 1 when it was there. */
static int list_remove(nk_op **head, nk_op **tail, nk_op *op)
{
    nk_op *prev = NULL;
    for (nk_op *p = *head; p; prev = p, p = p->link) {
        if (p != op)
            continue;
        if (prev)
            prev->link = op->link;
        else
            *head = op->link;
        if (*tail == op)
            *tail = prev;
        op->link = NULL;
        return 1;
    }
    return 0;
}

static void *file_thread(void *arg)
{
    struct nk__files *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!f->quit) {
        nk_op *op = list_pop(&f->pending_head, &f->pending_tail);
        if (op == NULL) {
            pthread_cond_wait(&f->wake, &f->mu);
            continue;
        }
        f->running = op;
        pthread_mutex_unlock(&f->mu);
        op->result = nk__file_step(op);
        pthread_mutex_lock(&f->mu);
        f->running = NULL;
        list_push(&f->finished_head, &f->finished_tail, op);
        uint64_t one = 1;
        ssize_t n = write(f->efd, &one, sizeof one); /* the counter cannot overflow here */
        (void)n;
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* The eventfd rang: hand the finished steps to the loop. */
static void files_ready(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    struct nk__files *f = io->data;
    uint64_t count;
    ssize_t n = read(f->efd, &count, sizeof count);
    (void)n; /* -EAGAIN when a previous turn took these steps already */
    pthread_mutex_lock(&f->mu);
    nk_op *list = f->finished_head;
    f->finished_head = f->finished_tail = NULL;
    pthread_mutex_unlock(&f->mu);
    while (list != NULL) {
        nk_op *op = list;
        list = op->link;
        op->link = NULL;
        if (op->state == NK__OP_CANCELLING) {
            /* Stopped while its call ran: what it opened has no taker. */
            if (nk__op_opens(op) && op->result >= 0)
                close((int)op->result);
            op->state = NK__OP_IDLE;
            loop->ops.active--;
            op->cb(loop, op, -ECANCELED);
        } else {
            nk__op_finish_now(loop, op, op->result);
        }
    }
}

/* Start the thread with every signal blocked, so that signals stay the loop thread's (a
 * watched signal is blocked there and read from a signalfd). */
static int files_spawn(struct nk__files *f)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&f->thread, NULL, file_thread, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}

/* The file thread and its doorbell, or NULL with *err set. */
static struct nk__files *files_open(nk_loop *loop, int *err)
{
    struct nk__files *f = calloc(1, sizeof *f);
    if (f == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    f->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (f->efd < 0) {
        *err = -errno;
        free(f);
        return NULL;
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->wake, NULL);
    nk_io_init(&f->io, f->efd, files_ready, f);
    nk_io_unref(loop, &f->io); /* the steps count in nk_loop_active, not their plumbing */
    int rc = nk_io_start(loop, &f->io, NK_READ);
    if (rc == 0 && (rc = files_spawn(f)) < 0)
        nk_io_stop(loop, &f->io);
    if (rc < 0) {
        pthread_cond_destroy(&f->wake);
        pthread_mutex_destroy(&f->mu);
        close(f->efd);
        free(f);
        *err = rc;
        return NULL;
    }
    loop->ops.files = f;
    return f;
}

int nk__files_start(nk_loop *loop, nk_op *op)
{
    struct nk__files *f = loop->ops.files;
    int err = 0;
    if (f == NULL && (f = files_open(loop, &err)) == NULL)
        return err;
    pthread_mutex_lock(&f->mu);
    list_push(&f->pending_head, &f->pending_tail, op);
    pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

int nk__files_stop(nk_loop *loop, nk_op *op)
{
    struct nk__files *f = loop->ops.files;
    pthread_mutex_lock(&f->mu);
    int was_pending = list_remove(&f->pending_head, &f->pending_tail, op);
    pthread_mutex_unlock(&f->mu);
    /* Not pending: running, or finished and not yet collected; files_ready ends it. */
    return was_pending ? 0 : -EINPROGRESS;
}

void nk__files_free(nk_loop *loop)
{
    struct nk__files *f = loop->ops.files;
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->mu);
    f->quit = 1;
    pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    nk_io_stop(loop, &f->io);
    close(f->efd);
    pthread_cond_destroy(&f->wake);
    pthread_mutex_destroy(&f->mu);
    free(f);
    loop->ops.files = NULL;
}

/* ---- the public calls ------------------------------------------------------------------ */

static int file_start(nk_loop *loop, nk_op *op, int kind)
{
    int native = loop->be == &nk__backend_uring;
    int rc = native ? nk__uring_ops_open(loop) : 0;
    if (rc < 0)
        return rc;
    op->kind = (unsigned char)kind;
    op->fd = -1;
    op->native = (unsigned char)native;
    op->inflight = NK__OP_UNSENT;
    op->result = 0;
    op->link = NULL;
    if (native)
        nk__uring_ops_queue(loop, op);
    else if ((rc = nk__files_start(loop, op)) < 0)
        return rc;
    op->state = NK__OP_QUEUED;
    loop->ops.active++;
    return 0;
}

int nk_op_openat(nk_loop *loop, nk_op *op, int dirfd, const char *path, int flags,
                 unsigned mode)
{
    if (op->state != NK__OP_IDLE)
        return -EBUSY;
    if (path == NULL)
        return -EFAULT;
    if (dirfd < 0 && dirfd != AT_FDCWD)
        return -EBADF;
    op->at_fd = dirfd;
    op->path = path;
    op->flags = (unsigned)flags;
    op->mode = mode;
    return file_start(loop, op, NK__OP_OPENAT);
}

int nk_op_openat2(nk_loop *loop, nk_op *op, int dirfd, const char *path,
                  const struct open_how *how)
{
    if (op->state != NK__OP_IDLE)
        return -EBUSY;
    if (path == NULL || how == NULL)
        return -EFAULT;
    if (dirfd < 0 && dirfd != AT_FDCWD)
        return -EBADF;
    /* Copied into the op (msg is a writev's alone), so the caller's how may go at once and
     * O_CLOEXEC can be added on every backend. */
    _Static_assert(sizeof(struct open_how) <= sizeof op->msg, "open_how fits in nk_op.msg");
    struct open_how copy = *how;
    copy.flags |= O_CLOEXEC;
    memcpy(op->msg, &copy, sizeof copy);
    op->at_fd = dirfd;
    op->path = path;
    return file_start(loop, op, NK__OP_OPENAT2);
}

int nk_op_statx(nk_loop *loop, nk_op *op, int dirfd, const char *path, int flags, unsigned mask,
                struct statx *out)
{
    if (op->state != NK__OP_IDLE)
        return -EBUSY;
    if (path == NULL || out == NULL)
        return -EFAULT;
    if (dirfd < 0 && dirfd != AT_FDCWD)
        return -EBADF;
    op->at_fd = dirfd;
    op->path = path;
    op->flags = (unsigned)flags;
    op->mode = mask;
    op->out = out;
    return file_start(loop, op, NK__OP_STATX);
}

int nk_op_fsync(nk_loop *loop, nk_op *op, int fd, unsigned flags)
{
    if (op->state != NK__OP_IDLE)
        return -EBUSY;
    if (fd < 0)
        return -EBADF;
    if (flags & ~(unsigned)NK_OP_FSYNC_DATA)
        return -EINVAL;
    op->at_fd = fd;
    op->flags = flags;
    return file_start(loop, op, NK__OP_FSYNC);
}

int nk_op_renameat(nk_loop *loop, nk_op *op, int olddirfd, const char *oldpath, int newdirfd,
                   const char *newpath, unsigned flags)
{
    if (op->state != NK__OP_IDLE)
        return -EBUSY;
    if (oldpath == NULL || newpath == NULL)
        return -EFAULT;
    if ((olddirfd < 0 && olddirfd != AT_FDCWD) || (newdirfd < 0 && newdirfd != AT_FDCWD))
        return -EBADF;
    op->at_fd = olddirfd;
    op->at_fd2 = newdirfd;
    op->path = oldpath;
    op->path2 = newpath;
    op->flags = flags;
    return file_start(loop, op, NK__OP_RENAMEAT);
}

int nk_op_pread(nk_loop *loop, nk_op *op, int fd, void *buf, size_t len, int64_t offset)
{
    if (op->state != NK__OP_IDLE)
        return -EBUSY;
    if (buf == NULL)
        return -EFAULT;
    if (fd < 0)
        return -EBADF;
    /* len 0 is refused as for nk_op_recv, so that a result of 0 always means end of file. */
    if (len == 0 || len > SSIZE_MAX || offset < 0)
        return -EINVAL;
    op->at_fd = fd;
    op->buf = buf;
    op->len = len;
    op->offset = offset;
    return file_start(loop, op, NK__OP_PREAD);
}
