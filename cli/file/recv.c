/* netkit file recv: receive files into a directory (protocol: docs/file-protocol.md).
 *
 * Many senders at once on one event loop, each connection a small state machine:
 *   HEADER  waiting for a file's header ('H'); answered with 'G' (go, from an offset) or a
 *           refusal verdict ('V'), after which the next header may follow
 *   DATA    'D' messages are written to the temporary file as they arrive (never buffered
 *           whole) and hashed; after exactly `size` bytes the file is checked and the verdict
 *           sent
 * The file is created as a temporary ".NAME.netkit-part-XXXXXX" in DIR (O_EXCL), verified
 * (size, SHA-256), fsynced, renamed into place and the directory fsynced: a crash leaves either
 * the old state or the complete new file, and a refused or broken transfer leaves nothing.
 * With --resume the temporary name is derived from (name, size, hash) and a broken transfer's
 * partial file is kept, so a new attempt can continue where it stopped (flock keeps two
 * connections off the same partial file). Anyone who knows the name, size and hash can
 * create that partial, so it is continued only for a sender that checks it: the long 'G'
 * carries the SHA-256 of the bytes held, and the sender answers 'R' (start from 0) when they
 * are not a prefix of its file. A whole-size partial is checked here, against the header.
 *
 * Disk writes are synchronous (regular files are always "ready"); reads from each socket are
 * bounded per event so one fast sender cannot starve the others. A sender that makes no
 * progress for --idle-timeout is dropped, and at --max-conns accepting pauses, so silent or
 * piled-up clients cannot hold descriptors and temporary files for ever.
 *
 * With --tls each connection starts with its handshake, driven on the loop like the rest
 * (cli_conn) and bounded by the same idle timeout. A connection that closes without a byte of
 * it is a port probe, as without TLS, and goes unreported.
 */
#include "cli.h"
#include "cli_tls.h"
#include "file/file.h"
#include "cli_server.h"
#include "opt.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h> /* optind, for cli_one_operand */
#include <stdarg.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECV_READ_CHUNK (NK_XFER_MSG_MAX + 4)
#define RECV_READS_PER_EVENT 8
#define RECV_ACCEPTS_PER_EVENT 64
#define RECV_OUT_MAX 65536 /* verdicts are tiny; a sender that never reads them is cut off */
#define RECV_TEMP_NAME_PART 200 /* the name's share of a temporary name (NAME_MAX is 255) */
#define RECV_IDLE_SEC_DEFAULT 60
#define RECV_MAX_CONNS_DEFAULT 256

typedef struct recv_server recv_server;
typedef struct recv_conn recv_conn;

enum { RS_HEADER, RS_DATA, RS_CLOSING };

struct recv_conn {
    cli_conn conn;
    nk_io io;
    nk_timer idle;    /* restarted by every read or write that moves bytes */
    unsigned interest;
    int state;
    nk_frame_decoder in;
    nk_buf out;
    char peer[NK_ADDR_STRLEN];
    /* the file being received (RS_DATA) */
    nk_xfer_header h;
    char shown[NK_XFER_NAME_MAX * CLI_ESC_GROWTH + 1]; /* h.name as printed (escaped) */
    int fd;
    char temp[NK_XFER_NAME_MAX + 1];
    uint64_t have;
    EVP_MD_CTX *md;
    int keep_partial; /* --resume: a broken transfer leaves the partial file for next time */
    int offer_prefix; /* the header asked for the long 'G' (NK_XFER_F_PREFIX) */
    int offered;      /* a long 'G' offered 0 < offset < size: the sender may answer 'R' */
    uint8_t prefix_sha[NK_XFER_HASH_LEN]; /* SHA-256 of the bytes [0, offset) offered */
    /* outcome, for --once */
    unsigned files_ok, files_failed;
    int heard; /* some byte arrived: not a bare port probe */
    recv_server *srv;
    recv_conn *prev, *next;
};

struct recv_server {
    const char *cmd;
    cli_server net; /* listener, loop, TLS context, acceptor, stop signals */
    int dirfd;
    recv_conn *conns;
    unsigned nconns, max_conns;
    int accept_paused;
    uint64_t idle_ms;
    int once, overwrite, resume;
    int exit_code;
};

static void conn_update(recv_conn *c);

static void temp_discard(recv_conn *c, int keep)
{
    if (c->fd < 0)
        return;
    close(c->fd); /* also releases the flock */
    c->fd = -1;
    if (!keep)
        unlinkat(c->srv->dirfd, c->temp, 0);
    c->temp[0] = '\0';
}

static void conn_free(recv_conn *c)
{
    recv_server *srv = c->srv;
    temp_discard(c, c->state == RS_DATA && c->keep_partial);
    EVP_MD_CTX_free(c->md);
    nk_timer_stop(srv->net.loop, &c->idle);
    nk_io_stop(srv->net.loop, &c->io);
    cli_conn_close(&c->conn);
    nk_frame_decoder_free(&c->in);
    nk_buf_free(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    if (srv->accept_paused && srv->nconns < srv->max_conns && !srv->once) {
        srv->accept_paused = 0;
        if (cli_acceptor_start(&srv->net.accept) < 0)
            nk_loop_stop(srv->net.loop);
    }
    if (srv->once && !c->heard) {
        /* A connection that ended before sending a byte (nc -z, netkit tcp wait) was a
         * probe, not the transfer: keep waiting for the sender. */
        if (cli_acceptor_start(&srv->net.accept) < 0)
            nk_loop_stop(srv->net.loop);
    } else if (srv->once) {
        if (c->files_failed || c->state != RS_HEADER)
            srv->exit_code = CLI_FAIL;
        nk_loop_stop(srv->net.loop);
    }
    free(c);
}

static void queue(recv_conn *c, const unsigned char *msg, int len)
{
    if (len < 0 || nk_frame_encode(NK_FRAME_LEN32, msg, (size_t)len, NK_XFER_MSG_MAX, &c->out) < 0)
        c->state = RS_CLOSING; /* a sender that does not read its verdicts */
}

/* Send a verdict. A refusal of something out of sync with the stream also ends the
 * connection (after the verdict is flushed). */
static void verdict(recv_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void verdict(recv_conn *c, int code, const char *fmt, ...)
{
    char reason[NK_XFER_REASON_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    for (char *p = reason; *p; p++) /* names may hold UTF-8; the reason is plain ASCII */
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    unsigned char msg[2 + NK_XFER_REASON_MAX];
    queue(c, msg, nk_xfer_verdict_encode(code, reason, msg, sizeof msg));
    if (code == NK_XFER_OK)
        c->files_ok++;
    else
        c->files_failed++;
    if (code != NK_XFER_OK)
        fprintf(stderr, "netkit: %s: %s: refused %s: %s\n", c->srv->cmd, c->peer,
                c->h.name[0] ? c->shown : "a file", reason);
}

static int hash_prefix(recv_conn *c, uint64_t len)
{
    char buf[65536];
    uint64_t done = 0;
    while (done < len) {
        size_t want = len - done < sizeof buf ? (size_t)(len - done) : sizeof buf;
        ssize_t n = pread(c->fd, buf, want, (off_t)done);
        if (n <= 0)
            return -1;
        EVP_DigestUpdate(c->md, buf, (size_t)n);
        done += (uint64_t)n;
    }
    return 0;
}

/* c->prefix_sha = SHA-256 of what c->md has hashed so far; c->md goes on unchanged. */
static int prefix_digest(recv_conn *c)
{
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    unsigned len = 0;
    int ok = copy && EVP_MD_CTX_copy_ex(copy, c->md) == 1 &&
             EVP_DigestFinal_ex(copy, c->prefix_sha, &len) == 1 && len == NK_XFER_HASH_LEN;
    EVP_MD_CTX_free(copy);
    if (!ok)
        errno = ENOMEM;
    return ok ? 0 : -1;
}

/* --resume: the temporary file's name, the same for the same file (name, size, content
 * hash), so that a new attempt finds its partial again. */
static void temp_resume_name(recv_conn *c, int name_part)
{
    unsigned char key[NK_XFER_NAME_MAX + 8 + NK_XFER_HASH_LEN], id[EVP_MAX_MD_SIZE];
    unsigned idlen = 0;
    memcpy(key, c->h.name, c->h.name_len);
    for (int i = 0; i < 8; i++)
        key[c->h.name_len + (size_t)i] = (unsigned char)(c->h.size >> (56 - 8 * i));
    memcpy(key + c->h.name_len + 8, c->h.sha256, NK_XFER_HASH_LEN);
    EVP_Digest(key, c->h.name_len + 8 + NK_XFER_HASH_LEN, id, &idlen, EVP_sha256(), NULL);
    char hex[17];
    file_hex(id, 8, hex);
    snprintf(c->temp, sizeof c->temp, ".%.*s.netkit-part-%s", name_part, c->h.name, hex);
}

/* --resume: the partial file's first `offset` bytes hashed into c->md (and c->prefix_sha), a
 * whole-size partial that is not this file started over. The offset, or -1 after a verdict. */
static int64_t temp_resume_at(recv_conn *c, uint64_t offset)
{
    for (;;) {
        if (ftruncate(c->fd, (off_t)offset) < 0 || lseek(c->fd, (off_t)offset, SEEK_SET) < 0 ||
            hash_prefix(c, offset) < 0 || prefix_digest(c) < 0) {
            int err = errno;
            temp_discard(c, 0);
            verdict(c, NK_XFER_E_IO, "cannot reuse the partial file: %s", strerror(err));
            return -1;
        }
        /* A whole-size partial can be judged here: its hash must be the file's. */
        if (offset == 0 || offset < c->h.size ||
            memcmp(c->prefix_sha, c->h.sha256, NK_XFER_HASH_LEN) == 0)
            return (int64_t)offset;
        fprintf(stderr, "netkit: %s: %s: %s: the partial file is not this file: starting "
                "over\n", c->srv->cmd, c->peer, c->shown);
        offset = 0;
        if (EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
            temp_discard(c, 0);
            verdict(c, NK_XFER_E_IO, "out of memory");
            return -1;
        }
    }
}

/* --resume: open (or create) the partial file of c->h and lock it. The offset to resume
 * from, or -1 after a verdict. */
static int64_t temp_open_resume(recv_conn *c, int name_part)
{
    temp_resume_name(c, name_part);
    c->fd = openat(c->srv->dirfd, c->temp, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    struct stat st;
    if (c->fd < 0 || fstat(c->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int err = errno;
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        verdict(c, NK_XFER_E_IO, "cannot create a temporary file: %s", strerror(err));
        return -1;
    }
    if (flock(c->fd, LOCK_EX | LOCK_NB) < 0) {
        close(c->fd);
        c->fd = -1;
        verdict(c, NK_XFER_E_BUSY, "%s is being received from another connection", c->h.name);
        return -1;
    }
    /* Only a sender that checks the prefix may continue a partial: for one that does not (an
     * older netkit), whoever planted the partial would decide the file's first bytes and the
     * transfer would fail at the end. It starts from 0 instead. */
    uint64_t offset = 0;
    if ((c->h.flags & NK_XFER_F_RESUME) && (c->h.flags & NK_XFER_F_PREFIX) &&
        (uint64_t)st.st_size <= c->h.size)
        offset = (uint64_t)st.st_size;
    int64_t at = temp_resume_at(c, offset);
    if (at >= 0)
        c->keep_partial = 1;
    return at;
}

/* Open the temporary file for c->h; returns the offset to resume from, or -1 after sending a
 * verdict. */
static int64_t temp_open(recv_conn *c)
{
    int name_part = (int)(c->h.name_len < RECV_TEMP_NAME_PART ? c->h.name_len
                                                              : RECV_TEMP_NAME_PART);
    if (c->srv->resume)
        return temp_open_resume(c, name_part);
    for (int tries = 0; tries < 100; tries++) {
        unsigned char rnd[3];
        char hex[7];
        if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
            memset(rnd, tries, sizeof rnd);
        file_hex(rnd, sizeof rnd, hex);
        snprintf(c->temp, sizeof c->temp, ".%.*s.netkit-part-%s", name_part, c->h.name, hex);
        c->fd = openat(c->srv->dirfd, c->temp,
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (c->fd >= 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    int err = errno;
    c->temp[0] = '\0';
    verdict(c, NK_XFER_E_IO, "cannot create a temporary file: %s", strerror(err));
    return -1;
}

/* All bytes are in: check, then move into place. */
static void finish(recv_conn *c)
{
    recv_server *srv = c->srv;
    unsigned char got[EVP_MAX_MD_SIZE];
    unsigned got_len = 0;
    EVP_DigestFinal_ex(c->md, got, &got_len);
    c->state = RS_HEADER;
    if (got_len != NK_XFER_HASH_LEN || memcmp(got, c->h.sha256, NK_XFER_HASH_LEN) != 0) {
        temp_discard(c, 0); /* a partial that hashes wrong is useless for a retry too */
        verdict(c, NK_XFER_E_HASH, "%s: SHA-256 mismatch, file discarded", c->h.name);
        return;
    }
    if (fchmod(c->fd, c->h.mode & 0777) < 0 || fsync(c->fd) < 0) {
        int err = errno;
        temp_discard(c, 0);
        verdict(c, NK_XFER_E_IO, "%s: %s", c->h.name, strerror(err));
        return;
    }
    /* Without --overwrite, RENAME_NOREPLACE closes the window between the header's check and
     * now: a file that appeared meanwhile is not replaced either. */
    int rc = renameat2(srv->dirfd, c->temp, srv->dirfd, c->h.name,
                       srv->overwrite ? 0 : RENAME_NOREPLACE);
    if (rc < 0) {
        int err = errno;
        temp_discard(c, 0);
        if (err == EEXIST)
            verdict(c, NK_XFER_E_EXISTS, "%s exists (use --overwrite)", c->h.name);
        else
            verdict(c, NK_XFER_E_IO, "%s: rename: %s", c->h.name, strerror(err));
        return;
    }
    close(c->fd);
    c->fd = -1;
    c->temp[0] = '\0';
    fsync(srv->dirfd); /* the rename itself must survive a crash */
    char hex[2 * NK_XFER_HASH_LEN + 1];
    file_hex(c->h.sha256, NK_XFER_HASH_LEN, hex);
    printf("received %s (%llu bytes, sha256 %s)\n", c->shown, (unsigned long long)c->h.size,
           hex);
    fflush(stdout);
    verdict(c, NK_XFER_OK, "%s", "");
}

static void say_resuming(recv_conn *c)
{
    printf("resuming %s at byte %llu of %llu\n", c->shown, (unsigned long long)c->have,
           (unsigned long long)c->h.size);
    fflush(stdout);
}

/* 'R': the sender found that the partial file is not a prefix of its file. */
static void on_restart(recv_conn *c)
{
    c->offered = 0;
    if (ftruncate(c->fd, 0) < 0 || lseek(c->fd, 0, SEEK_SET) < 0 ||
        EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
        int err = errno;
        temp_discard(c, 0);
        verdict(c, NK_XFER_E_IO, "%s: cannot restart: %s", c->h.name, strerror(err));
        c->state = RS_CLOSING;
        return;
    }
    fprintf(stderr, "netkit: %s: %s: %s: the partial file is not the sender's: starting over\n",
            c->srv->cmd, c->peer, c->shown);
    c->have = 0;
}

static void on_header(recv_conn *c, const char *msg, size_t len)
{
    recv_server *srv = c->srv;
    memset(&c->h, 0, sizeof c->h);
    if (nk_xfer_header_decode(msg, len, &c->h) < 0) {
        int bad_name = len >= NK_XFER_HEADER_FIXED && ((const unsigned char *)msg)[1] == 1;
        memset(&c->h, 0, sizeof c->h);
        c->shown[0] = '\0';
        /* The stream stays in sync after a refused header: the sender waits for this verdict
         * before sending any data, so it may go on with its next file. */
        verdict(c, bad_name ? NK_XFER_E_NAME : NK_XFER_E_PROTO,
                bad_name ? "refused: the name is not a plain file name" : "malformed header");
        if (!bad_name)
            c->state = RS_CLOSING;
        return;
    }
    /* The name comes from the peer: any byte but "/", "\\", NUL and C0/DEL, so C1 controls
     * too. Every line that shows it on a terminal shows this escaped copy. */
    cli_term_escape(c->shown, sizeof c->shown, c->h.name, c->h.name_len, 0);
    struct stat st;
    if (!srv->overwrite && fstatat(srv->dirfd, c->h.name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        verdict(c, NK_XFER_E_EXISTS, "%s exists (use --overwrite)", c->h.name);
        return;
    }
    if (!c->md)
        c->md = EVP_MD_CTX_new();
    if (!c->md || EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1 || prefix_digest(c) < 0) {
        verdict(c, NK_XFER_E_IO, "out of memory");
        return;
    }
    c->keep_partial = 0;
    int64_t offset = temp_open(c);
    if (offset < 0)
        return;
    c->have = (uint64_t)offset;
    /* Between 0 and the size, the sender has the last word ('R' or data): "resuming" is
     * said once its first data shows that it accepted the prefix. */
    c->offered = offset > 0 && (uint64_t)offset < c->h.size;
    if (offset > 0 && !c->offered)
        say_resuming(c);
    unsigned char go[NK_XFER_GO_PREFIX_LEN];
    if (c->h.flags & NK_XFER_F_PREFIX)
        queue(c, go, nk_xfer_go_prefix_encode((uint64_t)offset, c->prefix_sha, go, sizeof go));
    else
        queue(c, go, nk_xfer_go_encode((uint64_t)offset, go, sizeof go));
    c->state = RS_DATA;
    if (c->have == c->h.size)
        finish(c);
}

static void on_data(recv_conn *c, const char *msg, size_t len)
{
    size_t n = len - 1;
    if (n == 0 || n > c->h.size - c->have) {
        temp_discard(c, 0);
        verdict(c, NK_XFER_E_SIZE, "%s: more data than the announced %llu bytes", c->h.name,
                (unsigned long long)c->h.size);
        c->state = RS_CLOSING;
        return;
    }
    if (c->offered) { /* the sender accepted the offered prefix */
        c->offered = 0;
        say_resuming(c);
    }
    const char *p = msg + 1;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(c->fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int err = w < 0 ? errno : ENOSPC;
            temp_discard(c, 0);
            verdict(c, NK_XFER_E_IO, "%s: write: %s", c->h.name, strerror(err));
            c->state = RS_CLOSING;
            return;
        }
        p += w;
        left -= (size_t)w;
    }
    EVP_DigestUpdate(c->md, msg + 1, n);
    c->have += n;
    if (c->have == c->h.size)
        finish(c);
}

static void on_message(recv_conn *c, const char *msg, size_t len)
{
    int type = nk_xfer_msg_type(msg, len);
    if (c->state == RS_HEADER && type == NK_XFER_MSG_HEADER) {
        on_header(c, msg, len);
    } else if (c->state == RS_DATA && type == NK_XFER_MSG_DATA) {
        on_data(c, msg, len);
    } else if (c->state == RS_DATA && c->offered && nk_xfer_restart_decode(msg, len) == 0) {
        on_restart(c);
    } else {
        if (c->state == RS_DATA)
            temp_discard(c, 0);
        verdict(c, NK_XFER_E_PROTO, "unexpected message");
        c->state = RS_CLOSING;
    }
}

static void conn_update(recv_conn *c)
{
    unsigned want = cli_conn_interest(&c->conn, c->state != RS_CLOSING, nk_buf_len(&c->out) > 0);
    if (want == 0) {
        conn_free(c);
        return;
    }
    if (want != c->interest) {
        if (nk_io_start(c->srv->net.loop, &c->io, want) < 0) {
            conn_free(c);
            return;
        }
        c->interest = want;
    }
}

/* The sender is gone or silent: a file in progress stays unfinished. */
static void conn_abandon(recv_conn *c, const char *why)
{
    if (c->state == RS_DATA) {
        fprintf(stderr, "netkit: %s: %s: %s: transfer %s at %llu of %llu bytes%s\n",
                c->srv->cmd, c->peer, c->shown, why, (unsigned long long)c->have,
                (unsigned long long)c->h.size, c->keep_partial ? " (kept for --resume)" : "");
        c->files_failed++;
    } else if (strcmp(why, "interrupted") != 0) {
        fprintf(stderr, "netkit: %s: %s: connection %s\n", c->srv->cmd, c->peer, why);
    }
    conn_free(c);
}

static void conn_on_idle(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    conn_abandon(t->data, "timed out");
}

/* --tls: one step of the handshake. 0 once done, 1 while it goes on, -1 when c was freed. */
static int conn_handshake(recv_conn *c)
{
    int rc = cli_conn_handshake(&c->conn);
    if (rc == -EAGAIN) {
        conn_update(c);
        return 1;
    }
    if (rc < 0) {
        cli_server_handshake_failed(c->srv->cmd, c->peer, &c->conn, rc);
        conn_free(c);
        return -1;
    }
    return 0;
}

static void conn_on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    recv_conn *c = io->data;
    int progress = 0;
    if (c->conn.handshaking) {
        int hs = conn_handshake(c);
        if (hs != 0)
            return;
        events |= c->conn.rd_wait; /* a sender's first message may be in already */
    }
    if (cli_conn_can_write(&c->conn, events)) {
        while (nk_buf_len(&c->out) > 0) {
            ssize_t n = cli_conn_send(&c->conn, &c->out);
            if (n == -EAGAIN)
                break;
            if (n < 0) {
                conn_free(c);
                return;
            }
            progress = 1;
        }
    }
    if (cli_conn_can_read(&c->conn, events) && c->state != RS_CLOSING) {
        char chunk[RECV_READ_CHUNK];
        for (int i = 0; i < RECV_READS_PER_EVENT && c->state != RS_CLOSING; i++) {
            ssize_t n = cli_conn_read(&c->conn, chunk, sizeof chunk);
            if (n == -EAGAIN)
                break;
            if (n <= 0) {
                if (n < 0 && c->conn.tls)
                    fprintf(stderr, "netkit: %s: %s: TLS: %s\n", c->srv->cmd, c->peer,
                            cli_conn_why(&c->conn, (int)n));
                conn_abandon(c, "interrupted");
                return;
            }
            progress = 1;
            c->heard = 1;
            if (nk_frame_feed(&c->in, chunk, (size_t)n) < 0) {
                if (c->state == RS_DATA)
                    temp_discard(c, 0);
                verdict(c, NK_XFER_E_PROTO, "message too long");
                c->state = RS_CLOSING;
                break;
            }
            const char *msg;
            size_t len;
            while (c->state != RS_CLOSING && nk_frame_next(&c->in, &msg, &len) > 0)
                on_message(c, msg, len);
            if (!c->conn.tls && (size_t)n < sizeof chunk) /* drained; TLS reads a record */
                break;
        }
    }
    if (progress && nk_timer_start(loop, &c->idle, c->srv->idle_ms, 0) < 0) {
        conn_free(c);
        return;
    }
    conn_update(c);
}

static void on_conn(cli_acceptor *a, int fd, const nk_addr *peer)
{
    recv_server *srv = a->data;
    recv_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->srv = srv;
    c->fd = -1;
    c->state = RS_HEADER;
    if (nk_addr_format(peer, c->peer, sizeof c->peer) < 0)
        strcpy(c->peer, "?");
    cli_conn_init(&c->conn, fd, NULL);
    if (srv->net.tls_ctx && cli_conn_accept_tls(&c->conn, srv->net.tls_ctx) < 0) {
        close(fd);
        free(c);
        return;
    }
    nk_io_init(&c->io, fd, conn_on_io, c);
    nk_timer_init(&c->idle, conn_on_idle, c);
    nk_frame_decoder_init(&c->in, NK_FRAME_LEN32, NK_XFER_MSG_MAX);
    nk_buf_init(&c->out, RECV_OUT_MAX);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    if (srv->once) { /* one sender only: stop accepting */
        cli_acceptor_stop(a);
    } else if (srv->nconns >= srv->max_conns) {
        /* further senders wait in the kernel's backlog until one finishes */
        cli_acceptor_stop(a);
        srv->accept_paused = 1;
    }
    if (nk_timer_start(srv->net.loop, &c->idle, srv->idle_ms, 0) < 0) {
        conn_free(c);
        return;
    }
    conn_update(c);
}

#define RECV_STR_(x) #x
#define RECV_STR(x) RECV_STR_(x) /* a number's digits, for the option table */

enum { RECV_OPT_IDLE_TIMEOUT = CLI_OPT_LONG, RECV_OPT_MAX_CONNS, RECV_OPT_LIST_PARTIALS };

static const cli_opt file_recv_opts[] = {
    {"dir", 'd', "DIR", "where files go (default: the current directory)"},
    {"once", '1', NULL,
     "exit after the first sender is done (status 1 if a file failed); a connection that "
     "closes without sending a byte (a port probe such as 'netkit tcp wait' or 'nc -z') does "
     "not count"},
    {"overwrite", 'f', NULL, "replace existing files (refused otherwise)"},
    {"resume", 'r', NULL,
     "keep interrupted transfers and let 'file send --resume' continue them"},
    {"idle-timeout", RECV_OPT_IDLE_TIMEOUT, "SEC",
     "drop a sender that moves no byte for SEC (default " RECV_STR(RECV_IDLE_SEC_DEFAULT) ")"},
    {"max-conns", RECV_OPT_MAX_CONNS, "N", "senders at once; more wait to be accepted "
                                           "(default " RECV_STR(RECV_MAX_CONNS_DEFAULT) ")"},
    {"list-partials", RECV_OPT_LIST_PARTIALS, NULL,
     "list DIR's partial files (name, size, age) and exit; ADDR may be left out"},
    {"tls", CLI_TLS_OPT_TLS, NULL,
     "speak TLS (1.2 or 1.3, forward-secret AEAD ciphers only) with the certificate of "
     "--tls-cert and --tls-key, or of --tls-self-signed; each handshake runs on the event "
     "loop, bounded by --idle-timeout"},
    CLI_TLS_CERT_OPTS,
    {NULL, 0, NULL, NULL},
};

static const cli_operand file_recv_operands[] = {
    {"ADDR", "HOST:PORT, [IPV6]:PORT or PORT (port 0 picks a free one)"},
    {NULL, NULL},
};

static void file_recv_notes(FILE *out)
{
    fputs("Prints \"listening on tcp://HOST:PORT\" on stderr once ready, and one line\n"
          "\"received NAME (N bytes, sha256 HEX)\" per file on stdout (\"resuming NAME at byte\n"
          "N of SIZE\" first when a partial file is continued). Names with '/', '\\',\n"
          "'..', control characters or a leading dot are refused. At start, partial files\n"
          "(.NAME.netkit-part-*) of a receiver that was killed are removed once untouched\n"
          "for a day (one line on stderr each); younger ones stay for --resume.\n", out);
}

static const cli_spec file_recv_spec = {
    .cmd = "file recv",
    .synopsis = "ADDR [--dir DIR] [--once] [--overwrite] [--resume]\n"
                "                              [--idle-timeout SEC] [--max-conns N] "
                "[--list-partials]\n"
                "                              [--tls --tls-cert FILE --tls-key FILE|"
                "--tls-self-signed]",
    .about = "Receive files from 'netkit file send' into DIR, checking each one's size and\n"
             "SHA-256 before it is renamed into place.\n",
    .operands = file_recv_operands,
    .opts = file_recv_opts,
    .notes = file_recv_notes,
};
CLI_SPEC_REGISTER(file_recv_spec);

/* What the command line of file recv asked for. */
typedef struct file_recv_args {
    const char *cmd;
    const char *dir;
    const char *text; /* ADDR as given */
    nk_addr addr;
    cli_tls_opts tls;
    int list_partials;
    int list_now;     /* --list-partials without ADDR: list and exit */
    recv_server *srv; /* the settings go straight into the server */
} file_recv_args;

static int on_file_recv_opt(void *ctx, int key, const char *value)
{
    file_recv_args *a = ctx;
    recv_server *srv = a->srv;
    long v;
    switch (key) {
    case 'd': a->dir = value; return 0;
    case RECV_OPT_LIST_PARTIALS: a->list_partials = 1; return 0;
    case '1': srv->once = 1; return 0;
    case 'f': srv->overwrite = 1; return 0;
    case 'r': srv->resume = 1; return 0;
    case RECV_OPT_IDLE_TIMEOUT:
        if (cli_parse_seconds(value, &v) < 0 || v <= 0)
            return cli_usage(a->cmd, "invalid --idle-timeout '%s' (seconds, more than 0)", value);
        srv->idle_ms = (uint64_t)v;
        return 0;
    case RECV_OPT_MAX_CONNS:
        if (cli_parse_long(value, 1, 100000, &v) < 0)
            return cli_usage(a->cmd, "invalid --max-conns '%s' (1 to 100000)", value);
        srv->max_conns = (unsigned)v;
        return 0;
    default:
        return cli_tls_option(&a->tls, key, value) ? 0 : CLI_USAGE;
    }
}

/* Options (the settings in srv), then ADDR unless only the partial files are listed. 0,
 * CLI_OPT_HELP_SHOWN or an exit code. */
static int parse_file_recv_args(int argc, char **argv, file_recv_args *a, recv_server *srv)
{
    memset(a, 0, sizeof *a);
    memset(srv, 0, sizeof *srv);
    a->cmd = srv->cmd = argv[0];
    a->dir = ".";
    a->srv = srv;
    srv->idle_ms = RECV_IDLE_SEC_DEFAULT * 1000;
    srv->max_conns = RECV_MAX_CONNS_DEFAULT;
    int first;
    int rc = cli_opt_parse(&file_recv_spec, argc, argv, on_file_recv_opt, a, &first);
    if (rc)
        return rc;
    if (a->list_partials && argc - first <= 1) {
        a->list_now = 1; /* ADDR is optional here: nothing is received */
        return 0;
    }
    optind = first;
    if (cli_one_operand(a->cmd, argc, argv, "ADDR", &a->text) != 0)
        return CLI_USAGE;
    if ((rc = cli_parse_bind_addr(a->cmd, a->text, SOCK_STREAM, &a->addr)) != 0)
        return rc;
    if (nk_addr_family(&a->addr) == AF_UNIX)
        return cli_usage(a->cmd, "file recv listens on TCP only (HOST:PORT)");
    return cli_tls_check(a->cmd, &a->tls, 1);
}

static int file_recv_list(const file_recv_args *a)
{
    int dfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return cli_fail(a->cmd, "cannot open directory '%s': %s", a->dir, strerror(errno));
    int rc = file_partials_list(a->cmd, dfd, stdout);
    close(dfd);
    return rc;
}

/* The directory (its stale partial files removed), the TLS context, the listener and the
 * loop: 0 or an exit code (nothing kept). */
static int file_recv_open(recv_server *srv, const file_recv_args *a)
{
    srv->dirfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (srv->dirfd < 0)
        return cli_fail(a->cmd, "cannot open directory '%s': %s", a->dir, strerror(errno));
    file_partials_clean(a->cmd, srv->dirfd);
    int rc = cli_server_open(&srv->net, a->cmd, a->text, &a->addr, &a->tls);
    if (rc != 0)
        close(srv->dirfd);
    return rc;
}

static void file_recv_close(recv_server *srv)
{
    srv->once = 0; /* closing on a signal does not change the outcome */
    /* conn_free unlinks only the connection it frees: take the next one first. */
    for (recv_conn *conn = srv->conns, *next; conn; conn = next) {
        next = conn->next;
        conn_free(conn);
    }
    cli_server_close(&srv->net);
    close(srv->dirfd);
}

int file_recv(int argc, char **argv)
{
    file_recv_args a;
    recv_server srv;
    int rc = parse_file_recv_args(argc, argv, &a, &srv);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    if (a.list_now)
        return file_recv_list(&a);
    if ((rc = file_recv_open(&srv, &a)) != 0)
        return rc;
    /* Accept and receive until --once is done or a stop signal; a callback may have set the
     * outcome already. */
    int code = cli_server_run(&srv.net, RECV_ACCEPTS_PER_EVENT, on_conn, &srv, NULL, NULL);
    if (code != CLI_OK)
        srv.exit_code = code;
    file_recv_close(&srv);
    return srv.exit_code;
}
