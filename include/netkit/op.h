/* Completion-based I/O on the event loop: operations (nk_op).
 *
 * The loop's watchers (loop.h) say when a descriptor is ready and leave the system call to the
 * caller (the reactor model). An operation is the other model, the proactor: the caller hands
 * the loop a whole request (accept on this listener, receive into this buffer, send these
 * bytes, send this file) and is called back once it is done, with
 *
 *     void cb(nk_loop *loop, nk_op *op, ssize_t result)
 *
 * result: for accept the new descriptor, for the others the number of bytes, or a negative
 * errno. The callback has the same shape on every backend. On "uring" the operations are
 * native io_uring requests, written into the submission queue the backend already submits with
 * its wait (one io_uring_enter per iteration for readiness and operations together). On
 * "epoll", "poll" and "select" they are emulated: a readiness watcher plus the non-blocking
 * system call, with the same callbacks and the same guarantees. A file sent with nk_op_sendfile
 * is emulated on every backend (sendfile(2) when the socket is writable).
 *
 * An nk_op is a caller-owned struct like a watcher: nk_op_init once, then start it with one of
 * the nk_op_* calls; the loop never allocates per operation (it keeps one small queue record
 * per descriptor that operations have used, freed with the loop). One nk_op runs one operation
 * at a time; start another when its callback has come (a finished operation may be restarted
 * from inside its own callback).
 *
 * Rules, the same on every backend:
 * - Callbacks: never from inside the nk_op_* call that starts an operation; always from
 *   nk_loop_run, right after the I/O callbacks of an iteration (step 4 in loop.h), except an
 *   emulated send that finished inside its start call, which is called back at the start of
 *   the next iteration (step 1, after the defers; the wait then does not block).
 * - Order: operations on one descriptor form two queues, "in" (accept, recv) and "out" (send,
 *   writev, sendfile), each running one operation at a time in start order. So two sends on a
 *   socket never interleave their bytes, and the callbacks of one queue come in start order.
 *   Between the two queues of a descriptor, and between descriptors, no order is promised.
 * - Whole writes: send, writev and sendfile complete when every byte is written (the loop
 *   writes the rest after a partial write; result = the full length), or with the error that
 *   stopped them (bytes already written before the error are not reported). recv completes
 *   with whatever one receive returns: 1 to len bytes, or 0 when the peer has closed its side.
 *   Signals: sends use MSG_NOSIGNAL, so a reset peer gives -EPIPE or -ECONNRESET, never SIGPIPE.
 * - Liveness: a started operation keeps nk_loop_run(NK_RUN_DEFAULT) going, as a watcher does.
 * - Buffers and the nk_op itself must stay valid and untouched while the operation is started
 *   (nk_op_active), that is until its final callback or until nk_op_stop returned 0.
 * - Stop: nk_op_stop(loop, op) returns 0 when the operation is over at once: its callback will
 *   not be called again and its buffers and memory are the caller's again (always so on the
 *   emulated backends, and on uring while the request has not reached the kernel). On uring a
 *   request that the kernel already holds may still be writing into the buffer: then nk_op_stop
 *   returns -EINPROGRESS, asks the kernel to cancel it (IORING_OP_ASYNC_CANCEL), and the
 *   callback is called exactly once more, with -ECANCELED, when the kernel has let go (like
 *   libuv's close callback); only then are the buffers and the nk_op free. Whatever the kernel
 *   completed in between is dropped: a connection it accepted is closed, bytes it received are
 *   lost to the caller (stop a receive only when the stream is abandoned), bytes it sent are
 *   sent. No other callback comes after nk_op_stop returns. Portable code handles both returns.
 *   Stopping is safe from any callback, including the operation's own (a finished single-shot
 *   operation is no longer started there: stop is then a no-op returning 0).
 * - nk_loop_free refuses with -EBUSY while any operation is started (including one waiting for
 *   its -ECANCELED callback), on every backend: the kernel could still write into buffers or
 *   complete into a freed loop. Stop them and run the loop until nk_loop_active is 0.
 * - A descriptor used by operations must not also have an nk_io watcher on the same loop: the
 *   emulation watches it with one of its own (nk_io_start may then fail with -EEXIST, and an
 *   operation started while a watcher of the caller's holds the fd fails with -EEXIST on
 *   every backend). Stop every operation on a descriptor before closing it.
 * - Errors at start (negative errno; the operation is then not started): -EBUSY (op already
 *   started), -EBADF (fd < 0; a file step's dirfd may be AT_FDCWD), -EFAULT (a NULL path or
 *   read buffer), -EINVAL (len or count 0, iovcnt out of range), -ERANGE (select: fd >=
 *   FD_SETSIZE), -EEXIST (see above), -ENOMEM.
 */
#ifndef NETKIT_OP_H
#define NETKIT_OP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h> /* struct sockaddr_storage, socklen_t */
#include <sys/types.h> /* ssize_t */
#include <sys/uio.h>   /* struct iovec */
#include <netkit/api.h>
#include <netkit/loop.h>

#ifdef __cplusplus
extern "C" {
#endif
NK_API_BEGIN

typedef struct nk_op nk_op;
typedef void (*nk_op_cb)(nk_loop *loop, nk_op *op, ssize_t result);

struct nk_op {
    void *data;                /* the caller's */
    nk_op_cb cb;               /* private */
    nk_op *next;               /* private: the descriptor's queue */
    nk_op *link;               /* private: the loop's submission, cancel or completion list */
    void *buf;                 /* private: recv, send and pread buffer */
    const struct iovec *iov;   /* private: writev */
    size_t len;                /* private: recv/send/pread length, sendfile count */
    size_t done;               /* private: bytes written so far */
    int64_t offset;            /* private: sendfile, pread file offset */
    ssize_t result;            /* private: a completion waiting for its callback */
    int fd;                    /* private */
    int file_fd;               /* private: sendfile source */
    int iovcnt, iovidx;        /* private: writev progress */
    uint32_t slot;             /* private: uring request tag */
    unsigned char kind;        /* private */
    unsigned char state;       /* private: 0 when not started */
    unsigned char native;      /* private: run by io_uring */
    unsigned char inflight;    /* private: uring: 1 queued for submission, 2 in the kernel */
    uint64_t msg[8];           /* private: uring: the sendmsg header of a writev in the kernel */
    /* private: the file steps (openat, statx, fsync, renameat; pread uses buf, len, offset
     * and at_fd) */
    const char *path, *path2;
    void *out;
    int at_fd, at_fd2;
    unsigned flags, mode;
};

/* Prepare op (no loop involved). Call once before the first start, never while it is started. */
void nk_op_init(nk_op *op, nk_op_cb cb, void *data);

/* Accept connections on listen_fd (a listening stream socket): multishot, one start and one
 * callback per accepted connection, result = the new descriptor (non-blocking, close-on-exec,
 * the caller's to close), until nk_op_stop or an error. An error result (-EMFILE, -ENFILE,
 * -ENOBUFS ...) ends the operation: it is no longer started when that callback runs, and may be
 * restarted there or later. One accept operation per listener. */
int nk_op_accept(nk_loop *loop, nk_op *op, int listen_fd);

/* Accept one connection on listen_fd and say who it came from: result = the new descriptor
 * (non-blocking, close-on-exec, the caller's to close), with *peer holding the peer's address
 * and *peerlen its length, as accept(2) fills them (the call sets *peerlen to sizeof *peer
 * itself; both stay the caller's and must stay valid while started; both NULL: no address).
 * One-shot: the operation is no longer started when its callback runs. On uring it is one
 * IORING_OP_ACCEPT (not multishot: the kernel writes the address), elsewhere accept4(2) when
 * the listener is readable. Unlike nk_op_accept, several may be started on one listener at
 * once, each taking one connection, so that a caller with a connection cap keeps exactly as
 * many in flight as it has room for while the connections beyond wait in the kernel's backlog
 * (a multishot accept cannot be paused without closing the ones the kernel already took).
 * Their callbacks come in no promised order among themselves; one started behind an operation
 * of another kind on the same descriptor waits for it. A connection that goes away before it
 * is taken (ECONNABORTED) is skipped, not reported. Error results as nk_op_accept's (-EMFILE,
 * -ENFILE, -ENOBUFS, -EINVAL on a socket that does not listen ...). Stopping follows the rules
 * above: a connection the kernel accepted after the stop is closed, never handed over. Start
 * errors as below, and -EINVAL when only one of peer and peerlen is NULL. */
int nk_op_accept_once(nk_loop *loop, nk_op *op, int listen_fd, struct sockaddr_storage *peer,
                      socklen_t *peerlen);

/* Receive once into buf[0..len): result = bytes received (1..len), 0 at the peer's end of
 * stream, or -errno (-ECONNRESET ...). */
int nk_op_recv(nk_loop *loop, nk_op *op, int fd, void *buf, size_t len);

/* Send buf[0..len) whole: result = len, or -errno (-EPIPE, -ECONNRESET ...). */
int nk_op_send(nk_loop *loop, nk_op *op, int fd, const void *buf, size_t len);

/* Send iov[0..iovcnt) whole (1 <= iovcnt <= IOV_MAX): result = the total length, or -errno.
 * The array and every buffer it names stay the caller's and must stay valid while started. */
int nk_op_writev(nk_loop *loop, nk_op *op, int fd, const struct iovec *iov, int iovcnt);

/* Send count bytes of file_fd (a regular file) from offset to the socket fd with sendfile(2),
 * without moving file_fd's own file position: result = count, or fewer when the file ends
 * first, or -errno. */
int nk_op_sendfile(nk_loop *loop, nk_op *op, int fd, int file_fd, int64_t offset, size_t count);

/* ---- receive buffer pools --------------------------------------------------------------
 *
 * nk_op_recv needs its buffer from the start, so a connection that waits for a request holds
 * one all the time it is idle. A pool lets many receives share few buffers: a receive started
 * with nk_op_recv_pool takes a buffer only when bytes arrive, and its callback (result > 0)
 * gets that buffer (nk_op_pool_buf), the caller's until nk_op_bufpool_release gives it back.
 * On "uring" the pool is a provided-buffer ring registered with the kernel (IOSQE_BUFFER_SELECT:
 * the kernel picks a buffer as the data comes); on the other backends it is emulated, a buffer
 * taken from the pool when the descriptor is readable, then recv(2).
 *
 * When the pool is empty, a receive whose bytes have arrived waits: it is not called back
 * (no -ENOBUFS reaches the caller) and goes on, in its turn, as soon as a buffer is released
 * (on uring the kernel's -ENOBUFS parks it and a release submits it again). So a program that
 * holds every buffer stalls every pooled receive: give buffers back promptly (copy what must be
 * kept). A result of 0 or -errno carries no buffer. Stopping a pooled receive follows the rules
 * above; a buffer the kernel filled for a stopped receive goes back to the pool by itself.
 *
 * A pool belongs to one loop, and is freed before it (nk_loop_free answers -EBUSY while a pool
 * of the loop exists). */
typedef struct nk_op_bufpool nk_op_bufpool;

/* A pool of count buffers (1..32768) of size bytes each (1..1 GiB) for loop: 0 and *out, or
 * -EINVAL, -ENOMEM, or the kernel's refusal of the buffer ring (uring). */
int nk_op_bufpool_new(nk_loop *loop, unsigned count, size_t size, nk_op_bufpool **out);

/* Free pool: 0, or -EBUSY while a receive on it is started or one of its buffers is out (not
 * released). NULL is a no-op. */
int nk_op_bufpool_free(nk_op_bufpool *pool);

/* Give back buf, a buffer of this pool that a receive's callback received (nk_op_pool_buf):
 * 0, or -EINVAL when buf is not one of the pool's buffers out. May be called from any
 * callback; a receive waiting for a buffer goes on. */
int nk_op_bufpool_release(nk_op_bufpool *pool, void *buf);

/* Buffers in the pool now, free for a receive (count minus those out). */
unsigned nk_op_bufpool_avail(const nk_op_bufpool *pool);

/* Receive once into a buffer of pool, taken when bytes arrive: result = bytes received (from
 * 1 up to the pool's buffer size), 0 at the peer's end of stream, or -errno; for result > 0 the
 * callback finds the buffer with nk_op_pool_buf(op) and must release it later. Start errors
 * as above, and -EINVAL for a NULL pool or one of another loop. */
int nk_op_recv_pool(nk_loop *loop, nk_op *op, int fd, nk_op_bufpool *pool);

/* In the callback of nk_op_recv_pool with result > 0: the buffer holding the bytes. */
static inline void *nk_op_pool_buf(const nk_op *op) { return op->buf; }

/* ---- file steps ----------------------------------------------------------------------
 *
 * The system calls of a file server that wait for the disk: open, stat, read, fsync, rename.
 * On "uring" they are native requests (IORING_OP_OPENAT, OPENAT2, STATX, READ, FSYNC,
 * RENAMEAT); on the other backends they run on the loop's file thread, one at a time in start
 * order (started by the first file step, joined by nk_loop_free; all signals blocked in it), so
 * that the loop itself never waits for the disk. Results: openat the new descriptor (O_CLOEXEC is
 * always added), pread the bytes read, the others 0, or -errno. Every path string, the statx
 * buffer and the pread buffer stay the caller's and must stay valid while the operation is
 * started (after a stop that returned -EINPROGRESS, until the -ECANCELED callback: the read
 * may still be writing into the buffer). These operations name no socket, so they have no
 * queue of a descriptor: several may run at once (on uring) and their callbacks come in
 * completion order. Stopping: 0 while the step has not begun; once its system call runs (on
 * the file thread, or in the kernel) -EINPROGRESS, and one last callback with -ECANCELED when
 * it has returned; a descriptor it opened meanwhile is closed, bytes a read put into the
 * buffer are not reported, but a rename or fsync that happened stays done. One difference
 * stays: the kernel's first try at an io_uring open is non-blocking, so on uring a FIFO opens
 * without waiting for its other end.
 */
struct statx;
struct open_how;
enum { NK_OP_FSYNC_DATA = 1u << 0 }; /* nk_op_fsync: fdatasync(2) instead of fsync(2) */

/* openat(dirfd, path, flags | O_CLOEXEC, mode): result = the new descriptor. */
int nk_op_openat(nk_loop *loop, nk_op *op, int dirfd, const char *path, int flags,
                 unsigned mode);

/* openat2(dirfd, path, how, sizeof *how) (<linux/openat2.h>): an open with resolve rules
 * (RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS ...): result = the new descriptor. *how is copied at
 * the start (it may go once this returns); O_CLOEXEC is added to how->flags. A kernel
 * without openat2 (before 5.6) gives -ENOSYS; on uring before 5.6 -EINVAL. */
int nk_op_openat2(nk_loop *loop, nk_op *op, int dirfd, const char *path,
                  const struct open_how *how);

/* statx(dirfd, path, flags, mask, out): result = 0, *out filled. */
int nk_op_statx(nk_loop *loop, nk_op *op, int dirfd, const char *path, int flags, unsigned mask,
                struct statx *out);

/* fsync(fd), or fdatasync(fd) with NK_OP_FSYNC_DATA in flags: result = 0. */
int nk_op_fsync(nk_loop *loop, nk_op *op, int fd, unsigned flags);

/* pread(fd, buf, len, offset): read up to len bytes of fd from offset into buf, without using
 * or moving fd's file position: result = the bytes read, fewer than len when the file ends
 * first (a read may be short anyway: read on from offset + result), 0 at or past the end of
 * the file, or -errno (-EBADF for a descriptor not open for reading, -EISDIR for a directory,
 * -EIO ...). At most 1 GiB is read per call (a longer len gives a short read). On uring an
 * IORING_OP_READ (it completes within the wait that submits it when the bytes are in the page
 * cache), elsewhere pread(2) on the file thread (retried after EINTR). Several reads, of one
 * file or of many, may be started at once; their callbacks come in completion order. fd is a
 * regular file or a block device (one opened with O_NONBLOCK is read as without it); the
 * backends differ on other descriptors (a pipe: -ESPIPE from pread(2), but a stream read on
 * uring, which waits for data), so do not use it on them. Start errors as above, and -EFAULT
 * for a NULL buf, -EINVAL for len 0, len > SSIZE_MAX or offset < 0. */
int nk_op_pread(nk_loop *loop, nk_op *op, int fd, void *buf, size_t len, int64_t offset);

/* renameat2(olddirfd, oldpath, newdirfd, newpath, flags) (flags: RENAME_NOREPLACE, ...; 0 is
 * renameat): result = 0. */
int nk_op_renameat(nk_loop *loop, nk_op *op, int olddirfd, const char *oldpath, int newdirfd,
                   const char *newpath, unsigned flags);

/* Stop op: 0 (over, no further callback) or -EINPROGRESS (uring: one last callback with
 * -ECANCELED is coming); see the rules above. 0 for an op that is not started. */
int nk_op_stop(nk_loop *loop, nk_op *op);

/* Started and not yet finished (its final callback not yet called). */
static inline int nk_op_active(const nk_op *op) { return op->state != 0; }

/* Bytes a send, writev or sendfile in progress has written so far, as the loop has seen them:
 * a long operation's progress, for a caller that watches a peer which stops reading (a send
 * timeout) without cutting the operation into pieces. It advances with each partial write of
 * an emulated operation and of sendfile (emulated on every backend); a native send on uring
 * asks the kernel for the whole length and advances only when a completion is short. */
static inline size_t nk_op_progress(const nk_op *op) { return op->done; }

NK_API_END
#ifdef __cplusplus
}
#endif

#endif
