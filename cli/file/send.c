/* netkit file send: send files to a 'netkit file recv' (protocol: docs/file-protocol.md).
 *
 * One file at a time over one connection: hash it (the header carries the SHA-256), send the
 * header, wait for 'G' (go, with the offset the receiver already has) or a refusal, stream the
 * bytes from that offset as 'D' messages, then wait for the verdict. The file is read only
 * while less than SEND_HIGH_WATER bytes wait for the socket, so memory stays small whatever
 * the file size. Exit 0 only when every file was accepted.
 *
 * --resume asks the receiver to prove what it holds (NK_XFER_F_PREFIX): its 'G' carries the
 * SHA-256 of the bytes before the offset, and unless that is the hash of the same bytes of
 * our file the partial is someone else's, so we answer 'R' and send everything. A receiver
 * from before the flag refuses the header as a bad name; the header is then sent once more
 * without it (such a receiver resumes unchecked, as it always did).
 *
 * With --tls the handshake is done (within the connect timeout) before the first header, and
 * every byte goes through it (cli_conn).
 */
#include "cli.h"
#include "cli_tls.h"
#include "framed_peer.h"
#include "file/file.h"
#include "opt.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEND_HIGH_WATER (256 * 1024)
#define SEND_CONNECT_TIMEOUT_SEC 10
#define SEND_CONNECT_TIMEOUT_MS (SEND_CONNECT_TIMEOUT_SEC * 1000)
#define SEND_PROGRESS_MS 200

enum { SS_NEXT, SS_WAIT_GO, SS_DATA, SS_WAIT_VERDICT, SS_DONE };

typedef struct sender {
    const char *cmd;
    framed_peer peer; /* the receiver: connection, loop, frames in, bytes out, stop signals */
    char **files;
    int nfiles, idx;
    int state;
    int fd;
    nk_xfer_header h;
    char shown[NK_XFER_NAME_MAX * CLI_ESC_GROWTH + 1]; /* h.name as printed (escaped) */
    uint64_t offset, sent;
    int resume;
    int legacy_retry; /* the header went again without NK_XFER_F_PREFIX */
    int failures;
    int progress; /* stderr is a terminal */
    uint64_t started_ms, last_ms;
    int exit_code;
} sender;

static void finish_all(sender *s, int code)
{
    s->exit_code = code;
    nk_loop_stop(s->peer.loop);
}

static void progress(sender *s, int final)
{
    if (!s->progress)
        return;
    uint64_t now = nk_loop_now(s->peer.loop);
    if (!final && now - s->last_ms < SEND_PROGRESS_MS)
        return;
    s->last_ms = now;
    double secs = (double)(now - s->started_ms) / 1000.0;
    double done = (double)(s->sent - s->offset);
    double rate = secs > 0 ? done / secs : 0;
    double left = (double)(s->h.size - s->sent);
    int pct = s->h.size ? (int)(100.0 * (double)s->sent / (double)s->h.size) : 100;
    fprintf(stderr, "\r%-24.24s %3d%% %10.1f MiB %8.1f MiB/s  ETA %5.0fs ", s->shown, pct,
            (double)s->sent / 1048576.0, rate / 1048576.0, rate > 0 ? left / rate : 0.0);
    if (final)
        fputc('\n', stderr);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The header carries the file's SHA-256, so the whole file is read before its first byte can
 * go (4 s for 1 GiB): on a terminal that wait shows as its own progress line, which the
 * transfer's line then replaces. */
static void hash_progress(sender *s, uint64_t done, uint64_t *last_ms, int final)
{
    if (!s->progress)
        return;
    uint64_t now = mono_ms();
    if (!final && done && now - *last_ms < SEND_PROGRESS_MS)
        return;
    *last_ms = now;
    int pct = s->h.size ? (int)(100.0 * (double)done / (double)s->h.size) : 100;
    fprintf(stderr, "\rhashing %-24.24s %3d%% %10.1f MiB ", s->shown, pct > 100 ? 100 : pct,
            (double)done / 1048576.0);
    if (final)
        fputs("\r\033[K", stderr); /* the transfer's progress line takes its place */
    fflush(stderr);
}

static int hash_file(sender *s, int fd, uint8_t out[NK_XFER_HASH_LEN])
{
    uint64_t done = 0, last_ms = 0;
    hash_progress(s, 0, &last_ms, 0);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return -ENOMEM;
    }
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = -errno;
            EVP_MD_CTX_free(md);
            return err;
        }
        EVP_DigestUpdate(md, buf, (size_t)n);
        done += (uint64_t)n;
        hash_progress(s, done, &last_ms, 0);
    }
    hash_progress(s, done, &last_ms, 1);
    unsigned len = 0;
    EVP_DigestFinal_ex(md, out, &len);
    EVP_MD_CTX_free(md);
    return lseek(fd, 0, SEEK_SET) < 0 ? -errno : 0;
}

/* SHA-256 of the file's bytes [0, len). */
static int hash_prefix(int fd, uint64_t len, uint8_t out[NK_XFER_HASH_LEN])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return -ENOMEM;
    }
    char buf[65536];
    uint64_t done = 0;
    while (done < len) {
        size_t want = len - done < sizeof buf ? (size_t)(len - done) : sizeof buf;
        ssize_t n = pread(fd, buf, want, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? -errno : -EIO; /* the file shrank */
            EVP_MD_CTX_free(md);
            return err;
        }
        EVP_DigestUpdate(md, buf, (size_t)n);
        done += (uint64_t)n;
    }
    unsigned got = 0;
    EVP_DigestFinal_ex(md, out, &got);
    EVP_MD_CTX_free(md);
    return 0;
}

static void queue_msg(sender *s, const void *msg, size_t len)
{
    if (nk_frame_encode(NK_FRAME_LEN32, msg, len, NK_XFER_MSG_MAX, &s->peer.out) < 0)
        finish_all(s, cli_fail(s->cmd, "out of memory"));
}

/* Start the next file, skipping (and counting) the ones that cannot be sent. */
static void next_file(sender *s)
{
    while (s->idx < s->nfiles) {
        const char *path = s->files[s->idx++];
        char copy[4096];
        snprintf(copy, sizeof copy, "%s", path);
        const char *name = basename(copy);
        struct stat st;
        s->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (s->fd < 0 || fstat(s->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
            cli_fail(s->cmd, "%s: %s", path, s->fd < 0 ? strerror(errno) : "not a regular file");
            if (s->fd >= 0)
                close(s->fd);
            s->fd = -1;
            s->failures++;
            continue;
        }
        memset(&s->h, 0, sizeof s->h);
        s->h.name_len = strlen(name);
        if (!nk_xfer_name_valid(name, s->h.name_len)) {
            char shown[NK_XFER_NAME_MAX * CLI_ESC_GROWTH + 1];
            cli_term_escape(shown, sizeof shown, name, strlen(name), 0);
            cli_fail(s->cmd, "%s: the name '%s' cannot be sent (no leading dot, '..', '\\' or "
                     "control characters)", path, shown);
            close(s->fd);
            s->fd = -1;
            s->failures++;
            continue;
        }
        memcpy(s->h.name, name, s->h.name_len + 1);
        /* Any byte but C0/DEL may be in a name (C1 controls too): printed escaped. */
        cli_term_escape(s->shown, sizeof s->shown, s->h.name, s->h.name_len, 0);
        s->h.size = (uint64_t)st.st_size;
        s->h.mode = st.st_mode & 0777;
        s->h.flags = s->resume ? NK_XFER_F_RESUME | NK_XFER_F_PREFIX : 0;
        s->legacy_retry = 0;
        int rc = hash_file(s, s->fd, s->h.sha256);
        if (rc < 0) {
            cli_fail(s->cmd, "%s: %s", path, nk_strerror(rc));
            close(s->fd);
            s->fd = -1;
            s->failures++;
            continue;
        }
        unsigned char msg[NK_XFER_HEADER_FIXED + NK_XFER_NAME_MAX];
        int n = nk_xfer_header_encode(&s->h, msg, sizeof msg);
        if (n < 0) {
            cli_fail(s->cmd, "%s: %s", path, nk_strerror(n));
            close(s->fd);
            s->fd = -1;
            s->failures++;
            continue;
        }
        queue_msg(s, msg, (size_t)n);
        s->state = SS_WAIT_GO;
        return;
    }
    s->state = SS_DONE;
    finish_all(s, s->failures ? CLI_FAIL : CLI_OK);
}

/* Queue file bytes while there is room. */
static void fill(sender *s)
{
    static char chunk[1 + NK_XFER_DATA_MAX];
    while (s->state == SS_DATA && nk_buf_len(&s->peer.out) < SEND_HIGH_WATER) {
        if (s->sent == s->h.size) {
            s->state = SS_WAIT_VERDICT;
            progress(s, 1);
            return;
        }
        uint64_t left = s->h.size - s->sent;
        size_t want = left < NK_XFER_DATA_MAX ? (size_t)left : NK_XFER_DATA_MAX;
        ssize_t n = read(s->fd, chunk + 1, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            finish_all(s, cli_fail(s->cmd, "%s: %s", s->shown,
                                   n < 0 ? strerror(errno) : "file shrank while being sent"));
            return;
        }
        chunk[0] = NK_XFER_MSG_DATA;
        queue_msg(s, chunk, 1 + (size_t)n);
        s->sent += (uint64_t)n;
        progress(s, 0);
    }
}

/* --resume: unless the receiver's partial file holds the first off bytes of ours (its 'G'
 * carries their SHA-256), send an 'R' and all of it (*off set to 0). 0, or -1 once finished. */
static int send_check_prefix(sender *s, uint64_t *off, const uint8_t prefix[NK_XFER_HASH_LEN])
{
    uint8_t mine[NK_XFER_HASH_LEN];
    int rc = hash_prefix(s->fd, *off, mine);
    if (rc < 0) {
        finish_all(s, cli_fail(s->cmd, "%s: %s", s->shown, nk_strerror(rc)));
        return -1;
    }
    if (memcmp(mine, prefix, NK_XFER_HASH_LEN) == 0)
        return 0;
    if (*off == s->h.size) { /* the receiver checks that case itself */
        finish_all(s, cli_fail(s->cmd, "%s: the receiver claims a file that is not this one",
                               s->shown));
        return -1;
    }
    fprintf(stderr, "netkit: %s: %s: the receiver's partial file is not a part of this file: "
            "sending all of it\n", s->cmd, s->shown);
    unsigned char r[1];
    queue_msg(s, r, (size_t)nk_xfer_restart_encode(r, sizeof r));
    *off = 0;
    return 0;
}

/* 'G': the receiver is ready for the bytes from its offset on. */
static void send_on_go(sender *s, const char *msg, size_t len)
{
    uint64_t off;
    uint8_t prefix[NK_XFER_HASH_LEN];
    int checked = (s->h.flags & NK_XFER_F_PREFIX) != 0;
    int rc = checked ? nk_xfer_go_prefix_decode(msg, len, &off, prefix)
                     : nk_xfer_go_decode(msg, len, &off);
    if (rc < 0 || off > s->h.size) {
        finish_all(s, cli_fail(s->cmd, "%s: the receiver sent a bad offset", s->shown));
        return;
    }
    if (checked && off > 0 && send_check_prefix(s, &off, prefix) < 0)
        return;
    if (lseek(s->fd, (off_t)off, SEEK_SET) < 0) {
        finish_all(s, cli_fail(s->cmd, "%s: %s", s->shown, strerror(errno)));
        return;
    }
    if (off > 0)
        printf("resuming %s at byte %llu\n", s->shown, (unsigned long long)off);
    s->offset = s->sent = off;
    s->started_ms = s->last_ms = nk_loop_now(s->peer.loop);
    s->state = SS_DATA;
    fill(s);
}

/* A verdict on the current file (refused at once, or after its bytes); then the next file. */
static void send_on_verdict(sender *s, const char *msg, size_t len)
{
    int code;
    char reason[NK_XFER_REASON_MAX + 1];
    if (nk_xfer_verdict_decode(msg, len, &code, reason, sizeof reason) < 0) {
        finish_all(s, cli_fail(s->cmd, "malformed verdict from the receiver"));
        return;
    }
    if (code == NK_XFER_E_NAME && s->state == SS_WAIT_GO && (s->h.flags & NK_XFER_F_PREFIX) &&
        !s->legacy_retry) {
        /* A receiver from before NK_XFER_F_PREFIX refuses the unknown flag this way: try once
         * more without it. */
        s->legacy_retry = 1;
        s->h.flags &= (uint8_t)~NK_XFER_F_PREFIX;
        unsigned char hdr[NK_XFER_HEADER_FIXED + NK_XFER_NAME_MAX];
        int n = nk_xfer_header_encode(&s->h, hdr, sizeof hdr);
        if (n > 0) {
            queue_msg(s, hdr, (size_t)n);
            return;
        }
    }
    if (code == NK_XFER_OK) {
        printf("sent %s (%llu bytes)\n", s->shown, (unsigned long long)s->h.size);
    } else {
        cli_fail(s->cmd, "%s refused: %s%s%s", s->shown, nk_xfer_code_name(code),
                 reason[0] ? ": " : "", reason);
        s->failures++;
    }
    fflush(stdout);
    close(s->fd);
    s->fd = -1;
    next_file(s);
}

static void on_message(sender *s, const char *msg, size_t len)
{
    int type = nk_xfer_msg_type(msg, len);
    if (s->state == SS_WAIT_GO && type == NK_XFER_MSG_GO)
        send_on_go(s, msg, len);
    else if ((s->state == SS_WAIT_GO || s->state == SS_WAIT_VERDICT) &&
             type == NK_XFER_MSG_VERDICT)
        send_on_verdict(s, msg, len);
    else
        finish_all(s, cli_fail(s->cmd, "unexpected message from the receiver"));
}

static void update(sender *s)
{
    (void)framed_peer_watch(&s->peer); /* a failure keeps the old watch: the next event retries */
}

static void on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    sender *s = io->data;
    if (cli_conn_can_write(&s->peer.conn, events)) {
        while (nk_buf_len(&s->peer.out) > 0) {
            ssize_t n = cli_conn_send(&s->peer.conn, &s->peer.out);
            if (n == -EAGAIN)
                break;
            if (n < 0) {
                finish_all(s, cli_fail(s->cmd, "connection lost: %s",
                                       cli_conn_why(&s->peer.conn, (int)n)));
                return;
            }
            fill(s);
        }
    }
    if (cli_conn_can_read(&s->peer.conn, events)) {
        char buf[CLI_CONN_READ_MIN];
        ssize_t n = cli_conn_read(&s->peer.conn, buf, sizeof buf);
        if (n == 0 || (n < 0 && n != -EAGAIN)) {
            finish_all(s, cli_fail(s->cmd, "the receiver closed the connection%s%s%s%s",
                                   s->fd >= 0 ? " during " : "", s->fd >= 0 ? s->shown : "",
                                   n < 0 && s->peer.conn.tls ? ": TLS: " : "",
                                   n < 0 && s->peer.conn.tls ? cli_conn_why(&s->peer.conn, (int)n)
                                                             : ""));
            return;
        }
        if (n > 0) {
            if (nk_frame_feed(&s->peer.in, buf, (size_t)n) < 0) {
                finish_all(s, cli_fail(s->cmd, "the receiver sent an oversized message"));
                return;
            }
            const char *msg;
            size_t len;
            while (s->state != SS_DONE && nk_frame_next(&s->peer.in, &msg, &len) > 0)
                on_message(s, msg, len);
        }
    }
    fill(s);
    update(s);
}

static void on_signal(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)loop;
    (void)signum;
    sender *s = sig->data;
    finish_all(s, cli_fail(s->cmd, "interrupted"));
}

#define SEND_STR_(x) #x
#define SEND_STR(x) SEND_STR_(x) /* a number's digits, for the option table */

static const cli_opt file_send_opts[] = {
    {"resume", 'r', NULL, "continue an interrupted transfer where the receiver's partial file "
                          "ends (the receiver needs --resume too)"},
    {"tls", CLI_TLS_OPT_TLS, NULL,
     "speak TLS (1.2 or 1.3); the server's certificate must chain to a CA of the system's store "
     "(or of --cacert) and name the host of ADDR (an IP address among its IP addresses), which "
     "is also sent as SNI. A failed check is one line, \"netkit: file send: TLS: certificate "
     "verify failed: REASON\", and exit status 1. The connection and the handshake are bounded "
     "by " SEND_STR(SEND_CONNECT_TIMEOUT_SEC) " seconds each"},
    CLI_TLS_VERIFY_OPTS,
    {"insecure", 'k', NULL, "no verification at all: encrypted, but not authenticated"},
    {"servername", CLI_TLS_OPT_SERVERNAME, "NAME",
     "the name sent as SNI and checked in the certificate, instead of the host of ADDR"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand file_send_operands[] = {
    {"ADDR", "HOST:PORT or [IPV6]:PORT of a 'netkit file recv'"},
    {"FILE...", "the files, sent in this order, each under its last path component"},
    {NULL, NULL},
};

static void file_send_notes(FILE *out)
{
    fputs("Prints \"sent NAME (N bytes)\" per accepted file. On a terminal, a progress line on\n"
          "stderr shows the SHA-256 being computed (the header carries it, so the whole file\n"
          "is read before the first byte goes), then the transfer's progress. Exit status 0\n"
          "only when every file was accepted.\n", out);
}

static const cli_spec file_send_spec = {
    .cmd = "file send",
    .synopsis = "ADDR FILE... [--resume] [--tls [--cacert FILE|--pin-sha256 HEX|-k]]",
    .about = "Send files to a 'netkit file recv' at ADDR, one after another on one connection.\n"
             "Each carries its name (the last path component), size, mode and SHA-256; the\n"
             "receiver checks them and answers with a verdict per file.\n",
    .operands = file_send_operands,
    .opts = file_send_opts,
    .notes = file_send_notes,
};
CLI_SPEC_REGISTER(file_send_spec);

/* What the command line of file send asked for. */
typedef struct file_send_args {
    const char *cmd;
    const char *text; /* ADDR as given */
    nk_addr addr;
    cli_tls_opts tls;
    int resume;
    char **files;
    int nfiles;
} file_send_args;

static int on_file_send_opt(void *ctx, int key, const char *value)
{
    file_send_args *a = ctx;
    switch (key) {
    case 'r':
        a->resume = 1;
        return 0;
    case 'k':
        a->tls.insecure = 1;
        return 0;
    default:
        return cli_tls_option(&a->tls, key, value) ? 0 : CLI_USAGE;
    }
}

/* Options, ADDR and the files. 0, CLI_OPT_HELP_SHOWN or an exit code. */
static int parse_file_send_args(int argc, char **argv, file_send_args *a)
{
    memset(a, 0, sizeof *a);
    a->cmd = argv[0];
    int first;
    int rc = cli_opt_parse(&file_send_spec, argc, argv, on_file_send_opt, a, &first);
    if (rc)
        return rc;
    if (first >= argc)
        return cli_usage(a->cmd, "missing ADDR");
    if (first + 1 >= argc)
        return cli_usage(a->cmd, "missing FILE");
    a->text = argv[first];
    a->files = argv + first + 1;
    a->nfiles = argc - first - 1;
    size_t naddr;
    if ((rc = cli_parse_addrs(a->cmd, a->text, SOCK_STREAM, 0, &a->addr, 1, &naddr)) != 0)
        return rc;
    return cli_tls_check(a->cmd, &a->tls, 0);
}

/* Connect (and shake hands), then the loop and the sender's state: 0 or an exit code (nothing
 * kept). */
static int file_send_open(sender *s, const file_send_args *a)
{
    memset(s, 0, sizeof *s);
    const framed_peer_cfg cfg = {
        .cmd = a->cmd, .tls = &a->tls, .text = a->text, .addr = &a->addr,
        .timeout_ms = SEND_CONNECT_TIMEOUT_MS, .frame_max = NK_XFER_MSG_MAX,
        .on_io = on_io, .on_signal = on_signal, .data = s,
    };
    int rc = framed_peer_open(&s->peer, &cfg);
    if (rc)
        return rc;
    s->cmd = a->cmd;
    s->fd = -1;
    s->resume = a->resume;
    s->files = a->files;
    s->nfiles = a->nfiles;
    s->progress = isatty(STDERR_FILENO);
    return 0;
}

static void file_send_close(sender *s)
{
    fflush(stdout);
    if (s->fd >= 0)
        close(s->fd);
    framed_peer_close(&s->peer);
}

int file_send(int argc, char **argv)
{
    file_send_args a;
    int rc = parse_file_send_args(argc, argv, &a);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    signal(SIGPIPE, SIG_IGN);
    sender s;
    if ((rc = file_send_open(&s, &a)) != 0)
        return rc;
    next_file(&s);
    if (s.state != SS_DONE) {
        update(&s);
        rc = nk_loop_run(s.peer.loop, NK_RUN_DEFAULT);
        if (rc < 0)
            s.exit_code = cli_fail(a.cmd, "event loop: %s", nk_strerror(rc));
    }
    file_send_close(&s);
    return s.exit_code;
}
