/* Blocking work off the loop: one job thread per server, started on first use.
 *
 * Making an upload durable means fsync of the file and of its directory, which on a real
 * disk can take a long time; done on the loop it would stall every other connection of the
 * worker. A request that needs such work hands a job to this thread and its connection
 * waits (reading nothing, no timer) until the thread has run job->work; an eventfd then
 * wakes the loop, which runs job->done to answer and resumes the connection. A connection
 * that goes away meanwhile only loses its answer: the work still completes, which is the
 * same outcome as an answer lost in transit.
 *
 * The thread touches nothing but the job (its descriptors and names): the server, the
 * connections and the loop stay single-threaded.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct nk__jobs {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    nk__job *todo, *todo_tail; /* FIFO, guarded by mu */
    nk__job *done;             /* finished, guarded by mu */
    int stopping;              /* guarded by mu */
    unsigned inflight;         /* loop side: submitted and not yet done */
    int efd;
    nk_io io;
} nk__jobs;

static void *job_thread(void *arg)
{
    nk__jobs *j = arg;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        while (!j->todo && !j->stopping)
            pthread_cond_wait(&j->cv, &j->mu);
        nk__job *job = j->todo;
        if (!job)
            break; /* stopping, and the queue is empty */
        j->todo = job->next;
        if (!j->todo)
            j->todo_tail = NULL;
        pthread_mutex_unlock(&j->mu);
        job->work(job);
        pthread_mutex_lock(&j->mu);
        job->next = j->done;
        j->done = job;
        uint64_t one = 1;
        ssize_t w = write(j->efd, &one, sizeof one);
        (void)w; /* a full counter still wakes the loop */
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* Take the finished jobs, oldest first. */
static nk__job *take_done(nk__jobs *j)
{
    pthread_mutex_lock(&j->mu);
    nk__job *list = j->done;
    j->done = NULL;
    pthread_mutex_unlock(&j->mu);
    nk__job *rev = NULL;
    while (list) {
        nk__job *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    return rev;
}

static void on_jobs_done(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    nk__jobs *j = io->data;
    uint64_t n;
    ssize_t r = read(j->efd, &n, sizeof n);
    (void)r;
    for (nk__job *job = take_done(j), *next; job; job = next) {
        next = job->next;
        nk__conn *c = job->conn;
        if (c)
            c->x->job = NULL;
        j->inflight--;
        job->done(job); /* answers (c may be closed by it) and frees the job */
    }
    /* Watch the eventfd only while work is out, so an idle server's loop can end. */
    if (j->inflight == 0)
        nk_io_stop(loop, &j->io);
}

static nk__jobs *jobs_start(nk_httpd *srv)
{
    nk__jobs *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (j->efd < 0) {
        free(j);
        return NULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    /* The thread starts with every signal blocked, so a process-directed signal (SIGTERM,
     * SIGCHLD...) is always left to the loop's signal watchers. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int started = pthread_create(&j->thread, NULL, job_thread, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started != 0) {
        pthread_cond_destroy(&j->cv);
        pthread_mutex_destroy(&j->mu);
        close(j->efd);
        free(j);
        return NULL;
    }
    nk_io_init(&j->io, j->efd, on_jobs_done, j);
    srv->jobs = j;
    return j;
}

int nk__job_submit(nk__conn *c, nk__job *job)
{
    nk_httpd *srv = c->srv;
    nk__jobs *j = srv->jobs ? srv->jobs : jobs_start(srv);
    if (!j)
        return -EAGAIN;
    if (j->inflight == 0) {
        int err = nk_io_start(srv->loop, &j->io, NK_READ);
        if (err < 0)
            return err;
    }
    j->inflight++;
    job->conn = c;
    job->next = NULL;
    c->x->job = job;
    pthread_mutex_lock(&j->mu);
    if (j->todo_tail)
        j->todo_tail->next = job;
    else
        j->todo = job;
    j->todo_tail = job;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return 0;
}

void nk__jobs_free(nk_httpd *srv)
{
    nk__jobs *j = srv->jobs;
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    j->stopping = 1;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->thread, NULL); /* queued work finishes: uploads are committed, not lost */
    nk_io_stop(srv->loop, &j->io);
    for (nk__job *job = take_done(j), *next; job; job = next) {
        next = job->next;
        job->conn = NULL; /* every connection is closed by now */
        job->done(job);
    }
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    close(j->efd);
    free(j);
    srv->jobs = NULL;
}

/* Copy s into *p (NUL-terminated) and return its view there. */
static nk_str keep(char **p, nk_str s)
{
    nk_str out = {*p, s.len};
    if (s.len)
        memcpy(*p, s.p, s.len);
    (*p)[s.len] = '\0';
    *p += s.len + 1;
    return out;
}

int nk__job_log_keep(nk__job_log *l, const nk_httpd *srv)
{
    size_t need = srv->log_line.len + srv->log_referer.len + srv->log_agent.len + 3;
    char *p = malloc(need);
    if (!p)
        return -ENOMEM;
    l->strings = p;
    l->line = keep(&p, srv->log_line);
    l->referer = keep(&p, srv->log_referer);
    l->agent = keep(&p, srv->log_agent);
    return 0;
}

void nk__job_log_restore(const nk__job_log *l, nk_httpd *srv)
{
    srv->log_line = l->line;
    srv->log_referer = l->referer;
    srv->log_agent = l->agent;
    srv->req_is_head = 0;
}

void nk__job_log_free(nk__job_log *l)
{
    free(l->strings);
    l->strings = NULL;
}
