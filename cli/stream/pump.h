/* The bidirectional stdin/stdout <-> stream socket pump shared by `netkit tcp` and `netkit unix`.
 *
 * Both directions run at once on the loop. Each direction has a bounded buffer: a side is read
 * only while the buffer it fills holds less than SP_HIGH_WATER bytes, so a slow reader pushes
 * back on the writer (TCP flow control, or a blocked pipe) instead of growing memory.
 *
 * One pump lives for the whole command and serves one connection at a time (listen -k serves
 * several in turn). stdin belongs to the pump, not to a connection: bytes read from it and not
 * yet sent go to the next connection, and once stdin has ended every later connection gets its
 * FIN (shutdown(SHUT_WR)) as soon as it starts. stdin is read only while a connection is
 * attached.
 *
 * Half-close: EOF on stdin sends FIN after everything read was sent, and the pump goes on
 * reading until the peer's FIN. The peer's FIN ends the connection once stdout has everything,
 * provided our FIN was sent too, or end_on_peer_eof is set (listen -k, or an interactive
 * terminal on stdin, where waiting for stdin to end would hang the tool).
 *
 * TLS (sp_attach_tls): the same, with the bytes going through the connection's nk_tls after
 * its handshake; -x shows the plaintext, the counts are plaintext bytes, our end of input is
 * close_notify before the FIN, and the peer's close_notify (or its FIN, with a warning: a
 * cut connection looks the same) is the end of its input. A TLS failure ends the connection with SP_END_SOCK and sp_tls_error says why.
 */
#ifndef NETKIT_CLI_STREAM_PUMP_H
#define NETKIT_CLI_STREAM_PUMP_H

#include <stdint.h>
#include <netkit/netkit.h>

/* Bytes allowed to wait in one direction before the side that fills it stops being read. */
#define SP_HIGH_WATER (256 * 1024)
/* Largest message --frame accepts from the peer or stdin (a bound on buffered memory). */
#define SP_FRAME_MAX (8 * 1024 * 1024)

typedef struct sp_opts {
    int crlf;            /* stdin's LF sent as CRLF (a CR already before it is kept, not doubled) */
    int hexdump;         /* -x: dump every byte sent ('>') and received ('<') to stderr */
    int close_on_eof;    /* stdin EOF: flush what was read, then end without waiting for the peer */
    int end_on_peer_eof; /* the peer's FIN ends the connection even while stdin is open */
    int frame;           /* 0, NK_FRAME_LINE or NK_FRAME_LEN32: stdin lines <-> framed messages */
    int frame_output;    /* how a received message becomes one line of stdout (SP_FRAME_OUT_*) */
    long idle_ms;        /* end with SP_END_TIMEOUT after this long without traffic; 0: never */
    const char *cmd;     /* the command's name, for warnings ("tcp connect") */
} sp_opts;

/* --frame-output: every received message is printed as exactly one line.
 *   RAW      the bytes as they are (a message holding "\n" spans several lines)
 *   ESCAPED  "\\" for a backslash, "\n", "\r", "\t", "\xNN" for other control bytes, DEL and
 *            bytes that are not valid UTF-8; valid UTF-8 text as it is (reversible)
 *   HEX      the bytes in lowercase hex (an empty message is an empty line) */
enum { SP_FRAME_OUT_RAW = 0, SP_FRAME_OUT_ESCAPED, SP_FRAME_OUT_HEX };

/* How a connection ended (the end callback's `how`). */
enum {
    SP_END_DONE = 0,  /* finished: FINs exchanged (or close_on_eof), stdout has everything */
    SP_END_TIMEOUT,   /* idle for idle_ms */
    SP_END_SOCK,      /* the socket failed (reset, ...); err says why; stdout was flushed */
    SP_END_FRAME,     /* the peer broke the framing (message over SP_FRAME_MAX); err says why */
    SP_END_STDIN,     /* reading stdin failed, or a stdin line too long to frame */
    SP_END_STDOUT,    /* writing stdout failed (EPIPE, ...): nothing more can be delivered */
};

typedef struct stream_pump stream_pump;
/* Called once per connection, from inside the loop, as the last thing the pump does; it may
 * call sp_detach and sp_attach (the next connection) or stop the loop. */
typedef void (*sp_end_cb)(stream_pump *p, int how, int err);

struct stream_pump {
    nk_loop *loop;
    sp_opts opts;
    void *data; /* the caller's */
    /* per connection, read-only for the caller */
    int sock_fd;        /* -1 when no connection is attached */
    nk_tls *tls;        /* the connection's TLS, NULL for a plain one */
    uint64_t bytes_in;  /* received from the peer */
    uint64_t bytes_out; /* sent to the peer */
    /* private */
    nk_io in_io, out_io, sock_io;
    unsigned in_ev, out_ev, sock_ev;
    nk_timer idle;
    nk_defer tls_more; /* TLS plaintext buffered inside, which no readiness announces */
    unsigned rd_wait, wr_wait; /* the readiness the next socket read / write waits for */
    nk_buf to_sock, to_out, lines;
    nk_frame_decoder dec;
    char *chunk;
    int out_flags; /* stdout's file status flags before O_NONBLOCK, -1 when untouched */
    int in_eof, prev_cr, peer_eof, fin_sent, fin_wait, sock_dead, sock_err, in_err, ended;
    sp_end_cb cb;
};

/* Prepare the pump on stdin (fd 0) and stdout (fd 1). Returns 0 or a negative error. */
int sp_init(stream_pump *p, nk_loop *loop, const sp_opts *opts);
/* Start pumping between stdio and the connected stream socket fd (the pump owns fd until
 * sp_detach). cb is called once when the connection ends. */
int sp_attach(stream_pump *p, int fd, sp_end_cb cb);
/* The same over tls, a connection on fd whose handshake is done; on success the pump owns
 * both until sp_detach (on failure they are still the caller's). */
int sp_attach_tls(stream_pump *p, int fd, nk_tls *tls, sp_end_cb cb);
/* For SP_END_SOCK: the TLS reason of the failure, or NULL (plain, or not a TLS failure). */
const char *sp_tls_error(const stream_pump *p);
/* Stop watching and close the connection's socket (and free its TLS). Safe when none is
 * attached. */
void sp_detach(stream_pump *p);
/* Detach, restore stdout's flags, free the buffers. */
void sp_free(stream_pump *p);
/* Has stdin ended? */
static inline int sp_stdin_done(const stream_pump *p) { return p->in_eof; }

#endif
