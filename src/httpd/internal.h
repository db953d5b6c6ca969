/* Private structures of the HTTP server engine, shared by its files (its rooms):
 *   server.c   listeners, accept, connection limits, date cache, shutdown
 *   conn.c     per-connection state machine: read, parse, respond, send, keep-alive or close
 *   xport.c    the transport under a connection: socket or TLS
 *   opconn.c   a plain connection's transport on completion operations (uring backend)
 *   proxied.c  the PROXY protocol header of listeners behind a load balancer
 *   respond.c  response plans and heads, error pages, writing memory and file segments
 *   handler.c  routes and the public exchange API (nk_httpd_route, nk_httpd_ex_*, respond)
 *   bodyread.c request bodies streamed to a route's handler (bodyread.h)
 *   static.c   the static-file handler: path -> open -> conditionals -> ranges
 *   open.c     opening below the root (openat2 RESOLVE_BENEATH), errno -> status
 *   fopen.c    a cache miss opened by the loop's file operations (no wait on the disk)
 *   fcache.c   the open-file cache: descriptors, metadata, small bodies
 *   listing.c  directory listings (cached); archive.c: a directory as a tar download
 *   upload.c   PUT, DELETE and multipart POST: bodies streamed to temporary files, renamed
 *   deldir.c   DELETE of a directory; rmtree.c: its walk; leftovers.c: a dead worker's files
 *   commit.c   the job thread: blocking work (a PUT's fsync and rename) off the loop
 *   auth.c     HTTP Basic authentication, password hashes
 *   echo.c     --echo: answer with what was received
 *   gzip.c     --gzip: compression on the fly, streamed as chunks from the flush loop
 *   ops.c      --status (live counters), health check, --cors preflight, --spa fallback
 *   log.c      access log (combined format) buffered per worker
 *   h2.c       HTTP/2 sessions (h2.h); h2stream.c: each stream as a virtual connection
 */
#ifndef NK_HTTPD_INTERNAL_H
#define NK_HTTPD_INTERNAL_H

#include <netkit/netkit.h>
#include <netkit/httpd.h>
#include <netkit/tls.h>

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <linux/openat2.h>

#define NK_SERVER_NAME "netkit/" NETKIT_VERSION

/* What is written after the head: `mem` bytes from conn.out, then `len` bytes of the body
 * file starting at `off`. A multipart/byteranges response is a list of these. */
typedef struct nk__seg {
    size_t mem;
    off_t off;
    uint64_t len;
} nk__seg;

typedef enum {
    NK__PHASE_NONE = 0,
    NK__PHASE_HEAD,  /* waiting for (the rest of) a request head: header timeout, not renewed */
    NK__PHASE_IDLE,  /* keep-alive, nothing buffered: idle timeout */
    NK__PHASE_BODY,  /* discarding a request body: body timeout, renewed on progress */
    NK__PHASE_WRITE, /* output pending: send timeout, renewed on progress */
    NK__PHASE_LINGER, /* closing: draining what the client still sends */
    NK__PHASE_WAIT   /* a job (commit.c) works for this request: no reading, no timer */
} nk__phase;

/* One representation of a file: its open descriptor, metadata and validator. */
typedef struct nk__rep {
    int fd;
    struct stat st;
    char etag[NK_HTTP_ETAG_MAX];
    char *body;      /* the whole content of a small file (NK__SMALL_FILE), or NULL */
} nk__rep;

/* Files up to this size are kept in memory by the file cache and sent together with the
 * head in one writev: one system call and one pass through the TCP stack instead of a
 * sendmsg and a sendfile (lighttpd and h2o do the same). Larger files use sendfile. */
#define NK__SMALL_FILE 16384
#define NK__SMALL_FILE_BYTES (4u << 20) /* memory for small files, per worker */
/* --sendfile auto copies a file body of at least this many bytes to a local client. On
 * loopback, copying moved 10 MiB bodies 1.15-1.6x faster than sendfile, 2-4 MiB ones about
 * level, and 64 KiB-1 MiB ones 6-35% slower (the server's extra copy then costs more than the
 * client saves: bench/RESULTS.md). */
#define NK__COPY_MIN (4u << 20)

/* An entry of the open-file cache (fcache.c): what a request path resolves to. */
typedef struct nk__file {
    char *key;                /* the normalised request path */
    nk__rep plain;
    nk__rep gz;               /* precompressed sidecar, fd -1 when there is none */
    const char *content_type;
    char gz_etag[NK_HTTP_ETAG_MAX]; /* plain.etag with "-gzip": the --gzip representation */
    uint64_t expires;         /* loop time after which it is opened again */
    unsigned checked;         /* srv->input_batch when its descriptors were last checked */
    unsigned refs;            /* the table's and each response's */
    int dead;                 /* evicted: freed by the last release */
} nk__file;

/* What a step of request handling did. Handlers and the respond functions return one of
 * these; an HTTP status that a step decided on travels apart, as an nk__status, so that no
 * value means "closed" in one place and "answer 100" or "not mine" in another. */
typedef enum nk__outcome {
    NK__CLOSED = -1, /* the connection failed and was closed: c must not be touched */
    NK__DONE = 0,    /* handled: answered, claimed, or waiting for its answer (LATER, a job) */
    NK__PASS = 1,    /* not this handler's request: the next one may take it */
    NK__WAIT = 2,    /* decided off the loop (a password hash): the head is processed again */
} nk__outcome;

/* An HTTP status (100-599) for the engine to answer with, or NK__NO_STATUS. */
typedef int nk__status;
#define NK__NO_STATUS 0

/* What a body sink's data call did with a piece of the body. */
typedef enum nk__sink_step {
    NK__SINK_MORE = 0, /* taken: go on */
    NK__SINK_REFUSED,  /* refused with the status it set: the engine calls abort, answers it
                        * and closes */
    NK__SINK_ANSWERED, /* a streaming handler answered before the end (or its connection must
                        * close) */
    NK__SINK_PAUSED,   /* a streaming handler paused the body: nothing is read meanwhile */
} nk__sink_step;

/* A sink's data call refusing the body with status. */
static inline nk__sink_step nk__sink_refuse(nk__status *status, nk__status answer)
{
    *status = answer;
    return NK__SINK_REFUSED;
}

typedef struct nk__conn nk__conn;
typedef struct nk__route nk__route;
typedef struct nk__h2 nk__h2;   /* an HTTP/2 session on a connection (h2.c) */
struct nk__pp;                  /* a PROXY protocol header being read (proxied.c) */
typedef struct nk__h2s nk__h2s; /* one HTTP/2 stream under a virtual connection (h2stream.c) */

/* A body sink: a handler that claims a request body at head time (see nk__claim_body in
 * conn.c) gets the decoded body bytes as they arrive instead of the default "discard, then
 * respond". The connection buffer holds the head plus at most one read of body bytes, so
 * memory does not grow with the body. Exactly one of end or abort is called. */
typedef struct nk__sink {
    /* A piece of decoded body (Content-Length or chunked). NK__SINK_REFUSED comes with an
     * HTTP status (4xx/5xx) in *status. */
    nk__sink_step (*data)(nk__conn *c, const char *p, size_t n, nk__status *status);
    /* The whole body arrived; req is the head parsed again. The sink answers and frees its
     * state; returns as a handler does (NK__CLOSED or NK__DONE). */
    nk__outcome (*end)(nk__conn *c, const nk_http_request *req);
    /* The body will not complete (disconnect, timeout, limit, bad framing, shutdown): free
     * the state and undo any partial effect. No answer may be sent from here. */
    void (*abort)(nk__conn *c);
} nk__sink;

/* Blocking work done off the loop for one request (commit.c): `work` runs in the server's
 * job thread, then `done` runs in the loop, answers when conn is still there (NULL once the
 * connection went away) and frees the job. */
typedef struct nk__job nk__job;
struct nk__job {
    nk__job *next;
    nk__conn *conn;                 /* loop side only */
    void (*work)(nk__job *job);     /* job thread */
    void (*done)(nk__job *job);     /* loop */
};

/* The state of a request/response exchange in progress. Idle keep-alive connections hold
 * none: it is taken from a per-server pool when bytes arrive and given back when the
 * connection goes idle, so 10,000 idle clients cost only their nk__conn (about 150 bytes).
 * It is the public nk_httpd_ex that handlers see. */
typedef struct nk_httpd_ex nk__ex;
struct nk_httpd_ex {
    nk_buf in;            /* request bytes, parsed in place */
    nk_buf out;           /* response bytes not yet written */
    nk_buf fcopy;         /* file bytes read and not yet written (copy_body) */
    size_t parsed_prev;   /* bytes of the current head already scanned */
    size_t head_len;      /* head kept at the front of `in` while its body is read */
    nk__file *file;       /* the file being sent (a reference), NULL when none */
    int file_fd;          /* its descriptor for the representation being sent */
    int early_status;     /* an answer decided at head time for a request without body */
    nk__seg seg;          /* segment being written */
    nk__seg *segs;        /* further segments (multipart responses) */
    unsigned nsegs, iseg;
    uint64_t body_left;   /* Content-Length body bytes still to discard */
    nk_http_chunked chunked;
    int chunked_active;
    uint64_t linger_bytes;
    const nk__sink *sink; /* the handler that claimed the current body, or NULL (discard) */
    void *sink_state;     /* its private state */
    struct nk__gz *gz;    /* --gzip stream feeding `out` once the segments are written */
    nk__job *job;         /* work off the loop that this request waits for, or NULL */
    uint64_t t_head_us;   /* monotonic time the current head arrived (0: none), for the log */
    uint64_t body_start_ms; /* loop time the current body began (total body deadline) */
    uint64_t body_received; /* its bytes so far (each KiB extends the deadline a second) */
    unsigned char authenticated; /* this request proved its credentials (body_limit) */
    unsigned char auth_verdict; /* a password hash checked off the loop for the head in `in`:
                                 * NK__AUTH_NONE, _OK or _FAILED (auth.c) */
    nk__ex *next_free;    /* in the server's pool, or the server's detached list */
    /* Handlers (handler.c). */
    nk__conn *conn;       /* the connection, NULL once the client went away (LATER) */
    nk_httpd *srv;
    const nk__route *route; /* matched at head time, or NULL */
    const nk_http_request *req; /* the request a handler sees: &request */
    nk_buf rbody;         /* a route's request body */
    nk_buf hdrs;          /* fields a handler added */
    char *dpath;          /* the decoded path, made on demand */
    unsigned char later;  /* a handler will answer later: no reading meanwhile */
    unsigned char answered; /* the handler's respond call was made */
    unsigned char file_fd_owned; /* file_fd is the handler's, closed once sent */
    unsigned char copy_body; /* the file goes through fcopy, not sendfile (hand_file) */
    /* A body produced in pieces (nk_httpd_respond_stream), fed from nk__respond_flush. */
    nk_httpd_producer produce;
    void *produce_arg;
    unsigned char produce_paused;  /* it said LATER: no write interest until resumed */
    unsigned char produce_chunked; /* chunk framing (HTTP/1.1), else close-delimited */
    nk_buf piece;                  /* what the producer appends to */
    /* Last, and not cleared when the exchange is reused (the parser sets what it uses): the
     * request being handled, its views pointing into `in`. It belongs to the exchange, not
     * to the server, so an answer may come later (and, with HTTP/2, many at once). */
    nk_http_request request;
};

/* One client connection. Kept small: it is all an idle keep-alive connection costs. */
/* Budget: an idle keep-alive connection on epoll costs its nk__conn (184 bytes, a 192-byte
 * malloc chunk) plus about 50 bytes of the loop's per-descriptor tables (nk__fdent 24, the
 * inode 8, the change queue 4; the per-wait arrays are capped at 1024 entries) and timer heap
 * (8): 244 B by bench/idle.sh, where issue 18 wants at most half of nginx's 526 B (263 B).
 * 184 is the edge of the 192-byte chunk: every 16 bytes more is a malloc chunk size more, so
 * add no field here: a field that only some connections need goes in a record of its own
 * (TLS: nk__tlsconn; HTTP/2 and PROXY: `side`; operations: opc), flags are bits, and the
 * order leaves no holes (gdb's `ptype /o struct nk__conn`). */
struct nk__conn {
    nk_httpd *srv;
    nk__conn *prev, *next;
    nk_io io;
    nk_timer timer;
    nk__ex *x;            /* the exchange in progress, NULL while idle */
    unsigned requests;    /* served on this connection */
    unsigned timer_requests; /* `requests` when the timer was last armed */
    unsigned char phase;  /* nk__phase */
    unsigned char peer_family;
    unsigned short peer_port;
    unsigned close_after : 1, peer_eof : 1, lingering : 1, is_tcp : 1, http10 : 1;
    unsigned linger_needed : 1; /* unread input may follow: drain before closing */
    unsigned busy : 1;          /* a handler runs on this connection: closing is deferred */
    unsigned close_pending : 1; /* closed while busy: nk__conn_close runs when it returns */
    unsigned kicked : 1;        /* on srv->kicks: plaintext waits inside OpenSSL, or a resume */
    unsigned tls_side : 1;      /* accepted on a TLS listener: c is an nk__tlsconn */
    unsigned peer_local : 1;    /* the socket's peer is loopback or a unix socket (hand_file) */
    unsigned side_kind : 2;     /* nk__side: which of `side` this connection has, if any */
    unsigned char peer_ip[16];
    nk_tls *tls;                 /* TLS over the socket, or NULL (xport.c) */
    nk__conn *kick_next;         /* on srv->kicks */
    /* Records that only some connections have, and never two at once, so they share one
     * pointer (side_kind says which; read them with nk__conn_h2, _h2s and _pp):
     * - HTTP/2 (h2.c). A connection that speaks it holds the session and serves no exchange
     *   itself: each stream is a virtual connection of its own (the stream set, no socket)
     *   that runs the HTTP/1.1 code above over a memory transport (h2stream.c).
     * - A PROXY protocol header still expected (proxied.c): nothing else is read before it,
     *   so it is gone before HTTP/2 can begin, and a stream never has one. */
    union {
        nk__h2 *h2;
        nk__h2s *h2s;
        struct nk__pp *pp;
    } side;
    /* Receives and sends are completion operations, not calls on readiness (opconn.c). */
    struct nk__opc *opc;
};

typedef enum { NK__SIDE_NONE, NK__SIDE_H2, NK__SIDE_H2S, NK__SIDE_PP } nk__side;

/* c's HTTP/2 session, its stream (c is a stream's virtual connection), its PROXY header state:
 * NULL when it has none. */
static inline nk__h2 *nk__conn_h2(const nk__conn *c)
{
    return c->side_kind == NK__SIDE_H2 ? c->side.h2 : NULL;
}

static inline nk__h2s *nk__conn_h2s(const nk__conn *c)
{
    return c->side_kind == NK__SIDE_H2S ? c->side.h2s : NULL;
}

static inline struct nk__pp *nk__conn_pp(const nk__conn *c)
{
    return c->side_kind == NK__SIDE_PP ? c->side.pp : NULL;
}

/* Give c its side record (non-NULL), or drop it (NULL: only a record of that kind is dropped).
 * One at a time: each is set while the connection has none (see the order above). */
static inline void nk__conn_set_h2(nk__conn *c, nk__h2 *h)
{
    if (h != NULL || c->side_kind == NK__SIDE_H2) {
        c->side_kind = h ? NK__SIDE_H2 : NK__SIDE_NONE;
        c->side.h2 = h;
    }
}

static inline void nk__conn_set_h2s(nk__conn *c, nk__h2s *s)
{
    if (s != NULL || c->side_kind == NK__SIDE_H2S) {
        c->side_kind = s ? NK__SIDE_H2S : NK__SIDE_NONE;
        c->side.h2s = s;
    }
}

static inline void nk__conn_set_pp(nk__conn *c, struct nk__pp *pp)
{
    if (pp != NULL || c->side_kind == NK__SIDE_PP) {
        c->side_kind = pp ? NK__SIDE_PP : NK__SIDE_NONE;
        c->side.pp = pp;
    }
}

/* A connection accepted on a TLS listener: its nk__conn first, then what only TLS needs, in
 * the same allocation (conn.c), so that plain connections do not carry it. */
typedef struct nk__tlsconn {
    nk__conn c;
    nk__conn *hs_next, *hs_prev; /* on srv->hs_wait */
    unsigned char handshaking;   /* the handshake is not done (or not begun) */
    unsigned char want_write;    /* the transport waits for the socket to be writable */
    unsigned char hs_waiting;    /* spoke while the handshake cap was reached: waits its turn */
    unsigned char hs_slot;       /* holds a handshake slot (xport.c: not while it waits for its
                                  * client) */
} nk__tlsconn;

/* c's TLS record, or NULL for a plain connection (and a stream's virtual one). */
static inline nk__tlsconn *nk__conn_tlsc(nk__conn *c)
{
    return c->tls_side ? (nk__tlsconn *)c : NULL;
}

/* The TLS handshake is still to do: nothing else is read or written before it. */
static inline int nk__conn_handshaking(const nk__conn *c)
{
    return c->tls_side && ((const nk__tlsconn *)c)->handshaking;
}

/* The TLS transport waits for the socket to become writable (a read can need to write). */
static inline int nk__conn_tls_want_write(const nk__conn *c)
{
    return c->tls_side && ((const nk__tlsconn *)c)->want_write;
}

typedef struct nk__listener {
    nk_io io;
    int fd;
    nk_httpd *srv;
    int failed;             /* accept failed for good (reported once): no longer watched */
    int tls;                /* connections speak TLS with srv->tls_ctx */
    int proxy;              /* connections begin with a PROXY protocol header */
    /* On operations (opaccept.c): its one-shot accepts, NULL until the first is started, and
     * how many of them are started (each holds one of srv's connection slots). */
    unsigned accepting;
    struct nk__acc *accepts;
} nk__listener;

struct nk_httpd {
    nk_loop *loop;
    nk_httpd_config cfg;
    int root_fd;
    char *root_real;        /* realpath of the root, for the fallback confinement check */
    size_t root_real_len;
    int have_openat2;
    int ops_engine;         /* plain connections run on completion operations (opconn.c) */
    nk_mime_table *mime;

    nk__listener **listeners; /* separately allocated: their watchers must not move */
    size_t nlisteners;
    int accept_paused;      /* at max_conns */
    int accept_backoff;     /* out of descriptors: waiting for accept_timer */
    nk_timer accept_timer;
    uint64_t last_fd_warning_ms;

    nk__conn *conns;
    struct nk__opc *opc_orphans; /* records of closed connections the kernel still holds */
    nk_op_bufpool *opc_pool;     /* their receive buffers, from the first such connection */
    void *opc_spare_sends;       /* send records of finished sends, for the next (opconn.c) */
    unsigned opc_nspare;
    /* Cache misses being opened by file operations (fopen.c), by their path's hash. */
    struct nk__fopen **fopen_live; /* NK__FOPEN_BUCKETS lists, allocated by the first miss */
    unsigned fopen_count;
    unsigned nconns;
    unsigned accepts_started; /* one-shot accepts started, a connection slot each (opaccept.c) */

    nk_buf head;            /* scratch: response head being built */
    nk_buf body;            /* scratch: generated bodies (error pages, listings) */
    char path[4096];        /* scratch: normalised path */
    nk_str log_line, log_referer, log_agent; /* the request being answered, for the log */
    int req_is_head;        /* the request being answered is HEAD: no body in any answer */

    char **pool;            /* free read buffers of POOL_BLOCK bytes, reused across requests */
    size_t npool;
    nk__ex *ex_pool;        /* free exchange states (at most NK__POOL_MAX) */
    size_t nex_pool;

    time_t date_sec;        /* cached Date header value, reformatted once a second */
    char date[NK_HTTP_DATE_LEN + 1];
    /* The Last-Modified text of the last response that had one (respond.c): the same file
     * is usually served again, and formatting a date costs more than the rest of the head.
     * (32 bytes: the text and its NUL, rounded up so as to leave the struct's packing be.) */
    char lm_text[32];
    time_t logtime_sec;
    char logtime[32];

    nk_buf log;             /* access log lines not yet written */
    nk_timer log_timer;

    int shutting_down;
    int drained_called;
    nk_defer drained_defer; /* on_drained runs from here, never under the engine's frames */
    nk_defer listeners_close; /* shutdown: closes the listeners (server.c) */
    int listeners_closing;
    nk_timer drain_timer;
    nk_httpd_stats stats;
    nk__file **fcache;      /* open-file cache slots (fcache.c) */
    unsigned fcache_count, fcache_max;
    size_t fcache_bytes;    /* memory held by small-file bodies */
    struct nk__lcache *lcache; /* rendered directory listings (listing.c), NULL until used */
    unsigned gz_streams;    /* --gzip streams in flight (each holds ~330 KiB of zlib state) */
    unsigned long fd_limit; /* RLIMIT_NOFILE when the engine started */
    unsigned peak_conns;    /* since the last heap trim */
    nk_timer trim_timer;
    struct nk__jobs *jobs;  /* the job thread and its queues (commit.c), NULL until used */
    nk__route *routes;      /* handler.c */
    size_t nroutes;
    nk__ex *detached;       /* LATER exchanges whose client went away, awaiting their answer */
    unsigned char auth_cache[8][32]; /* SHA-256 of credentials verified by hash (auth.c) */
    unsigned auth_cache_next;
    unsigned upload_seq;    /* makes temporary names unique within the process */
    struct nk__auth_fails {   /* recent failed credentials per client address (auth.c) */
        unsigned char ip[16];
        unsigned char family;
        unsigned fails;
        uint64_t since_ms;
    } auth_fails[64];
    nk_httpd_counters own_counters;
    nk_httpd_counters *ctr; /* cfg.counters or &own_counters */
    /* TLS (xport.c): the context of TLS listeners, handshakes in flight and their cap,
     * connections whose plaintext waits inside OpenSSL (no readiness event will come). */
    nk_tls_ctx *tls_ctx;
    unsigned handshakes, max_handshakes;
    unsigned hsts_s;        /* Strict-Transport-Security max-age on TLS responses; 0: none */
    unsigned https_port;    /* cleartext listeners answer 308 to https on this port; 0: off */
    nk__conn *kicks;
    nk_timer kick_timer;
    nk__conn *hs_wait, *hs_wait_tail; /* clients waiting for a handshake slot, in order */
    const char *limit_hint; /* nk_httpd_set_limit_hint */
    uint64_t last_413_log_ms;
    unsigned h2_max_streams;  /* nk_httpd_set_http2 */
    unsigned h2_streams_open; /* over all sessions: at max_conns new ones are refused */
    /* Counts the loop's turns (batch_hook, before each wait): the requests one wake-up
     * finds waiting (every ready connection's, the streams of an HTTP/2 read, a pipeline)
     * share one check of a cached file (fcache.c), while a request read on a later turn
     * always sees a file changed before it. */
    unsigned input_batch;
    unsigned h2_on;
    nk_prepare batch_hook;
    time_t lm_sec;          /* the Last-Modified time whose text is lm_text */
    /* PROXY protocol (proxied.c): the peers allowed to send the header, refusals not yet
     * reported (logged at most once per interval). */
    nk_proxy_cidr *proxy_from;
    size_t nproxy_from;
    uint64_t last_proxy_log_ms;
    char *health_path;        /* nk_httpd_set_health_path, or NULL */
    unsigned proxy_unlogged;
    int health_down;          /* nk_httpd_set_healthy(srv, 0) */
};

/* Counters may be read by other processes (shared memory): relaxed atomics, no ordering. */
#define NK__COUNT(srv, field, n) __atomic_fetch_add(&(srv)->ctr->field, (uint64_t)(n), __ATOMIC_RELAXED)

/* xport.c: the connection's transport (socket or TLS) */
ssize_t nk__xp_recv(nk__conn *c, void *buf, size_t len);
ssize_t nk__xp_send(nk__conn *c, const void *buf, size_t len, int more);
ssize_t nk__xp_sendv(nk__conn *c, const struct iovec *iov, int iovcnt, int more);
ssize_t nk__xp_sendfile(nk__conn *c, int fd, off_t *off, size_t len);
size_t nk__xp_pending(const nk__conn *c);
int nk__xp_handshake(nk__conn *c);
void nk__xp_shutdown_write(nk__conn *c);
void nk__xp_close(nk__conn *c);

/* h2.c: HTTP/2 on a connection. nk__h2_start turns c into a session, feeding it the bytes
 * already read (the preface of h2c); 0, or negative when c must be closed. */
int nk__h2_start(nk__conn *c, const char *early, size_t n);
/* 1 when p begins with the whole client preface, -EAGAIN when it is a prefix of it, else 0. */
int nk__h2_preface(const char *p, size_t n);
void nk__h2_on_io(nk__conn *c, unsigned events);
void nk__h2_on_timer(nk__conn *c);
void nk__h2_update(nk__conn *c);
void nk__h2_shutdown(nk__conn *c);
void nk__h2_free(nk__conn *c);       /* from nk__conn_close: its streams end too */
/* h2stream.c: the memory transport of a stream's virtual connection (xport.c) */
ssize_t nk__h2s_recv(nk__h2s *s, void *buf, size_t len);
ssize_t nk__h2s_send(nk__h2s *s, const void *buf, size_t len);
ssize_t nk__h2s_sendfile(nk__h2s *s, int fd, off_t *off, size_t len);
void nk__h2s_want(nk__h2s *s, unsigned events);
void nk__h2s_kick(nk__h2s *s);
void nk__h2s_conn_closed(nk__h2s *s);
/* cfg.on_head_from for a stream: the head as the client sent it (HTTP/2, its stream), tagged
 * with the connection it came on. */
void nk__h2s_show_head(nk__h2s *s, const char *head, size_t len);
/* The head of a stream's request as the client sent it (request line "M T HTTP/2", its
 * fields, :authority), from the HTTP/1.1 head made for the engine, appended to out. */
int nk__h2s_received_head(const nk__h2s *s, const char *head, size_t len, int with_stream,
                          nk_buf *out);
/* The socket under c (a stream's: its connection's), and whether it is TLS. */
int nk__conn_fd(const nk__conn *c);
int nk__conn_secure(const nk__conn *c);
/* conn.c: a virtual connection for stream s of parent, and one run of its I/O handler. */
nk__conn *nk__conn_new_stream(nk__conn *parent, nk__h2s *s);
void nk__conn_run(nk__conn *c, unsigned events);

/* server.c */
const char *nk__httpd_date(nk_httpd *srv);
void nk__httpd_conn_closed(nk_httpd *srv);
void nk__httpd_log(nk_httpd *srv, nk_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Read buffers are taken from a small per-server pool while a connection is busy and given
 * back when it goes idle, so idle keep-alive connections hold no buffer and busy ones do not
 * allocate per request. */
#define NK__POOL_BLOCK 16384
/* TLS handshakes in flight per engine: each costs a private-key operation, so a flood of them
 * waits in the listen backlog rather than in memory and CPU. */
#define NK__MAX_HANDSHAKES 512
#define NK__POOL_MAX 256

/* commit.c: run job->work in the server's job thread, then job->done in the loop. The
 * connection waits (NK__PHASE_WAIT) meanwhile. 0, or a negative errno when no thread could
 * be started (the caller then does the work itself). */
int nk__job_submit(nk__conn *c, nk__job *job);
/* What the access log line of a job's answer shows, copied from the request (its bytes are
 * gone by the time the answer is sent): keep at submit time, restore before answering. */
typedef struct nk__job_log {
    char *strings;           /* the three, NUL-separated */
    nk_str line, referer, agent;
} nk__job_log;
int nk__job_log_keep(nk__job_log *l, const nk_httpd *srv); /* 0 or -ENOMEM */
void nk__job_log_restore(const nk__job_log *l, nk_httpd *srv);
void nk__job_log_free(nk__job_log *l);
/* At nk_httpd_free: finish queued work, join the thread, run the pending done callbacks. */
void nk__jobs_free(nk_httpd *srv);

/* proxied.c: read the PROXY header of c from its socket, no byte past it. 1 when it is in
 * (the peer fields now name the client), 0 to wait for more, negative to close c. */
int nk__proxy_read(nk__conn *c);
int nk__proxy_new(nk__conn *c); /* a header is expected: 0 or -ENOMEM */
void nk__proxy_free(nk__conn *c);

/* opconn.c: the transport of a plain connection on completion operations (uring). Each call
 * answers as its nk__xp_ counterpart does, -EAGAIN while an operation is under way. */
typedef struct nk__opc nk__opc;
/* A file body goes out in one operation (up to this size): the emulated sendfile writes until
 * the socket is full and waits for it to drain, as the readiness path does, and the send
 * timeout sees its progress through a ticker of opconn.c, not through completions. */
#define NK__OPC_SENDFILE_STEP (1u << 30)
int nk__opc_wanted(const nk_httpd *srv, int tls, int proxy);
int nk__opc_new(nk__conn *c); /* sets c->opc: 0 or -ENOMEM */
int nk__opc_arm_read(nk__conn *c); /* a receive under way (the connection reads): 0 or -errno */
ssize_t nk__opc_recv(nk__conn *c, void *buf, size_t len);
size_t nk__opc_pending(const nk__conn *c); /* received bytes not yet handed over */
int nk__opc_sending(const nk__conn *c);    /* a send is under way or its result waits */
ssize_t nk__opc_send(nk__conn *c, const void *buf, size_t len);
ssize_t nk__opc_sendfile(nk__conn *c, int fd, off_t *off, size_t len);
/* A piece of a file read into `into` (empty, room reserved) by an operation: -EAGAIN until
 * it is done, then the bytes read (into's write end moved past them), 0 at the end, -errno. */
ssize_t nk__opc_pread(nk__conn *c, int fd, off_t off, size_t len, nk_buf *into);
void nk__opc_close(nk__conn *c);   /* before its descriptor closes */
int nk__opc_leave(nk__conn *c);    /* back to readiness (HTTP/2): 0, or -EBUSY */
void nk__opc_drain(nk_httpd *srv); /* nk_httpd_free: wait for the cancelled operations */

/* opaccept.c: on the uring backend the listeners accept through one-shot accept operations,
 * a few in flight on each, so that accept and the first receive reach the kernel in one
 * io_uring_enter; each one started holds a connection slot, so the cap is never passed. */
int nk__lops_fill(nk_httpd *srv, nk__listener *l);  /* start what room allows: 0 or -errno */
void nk__lops_stop(nk_httpd *srv, nk__listener *l); /* stop them (cancelled ones come back) */
/* nk_httpd_free: wait for the cancelled accepts, then free the listeners (one the kernel
 * still holds is left to its last callback) and the array. */
void nk__lops_free_listeners(nk_httpd *srv);
/* server.c: what both ways of accepting share. */
int nk__accept_room(const nk_httpd *srv);  /* may one more connection be taken now? */
void nk__accept_took(nk_httpd *srv, nk__listener *l, int fd, const nk_addr *peer);
void nk__accept_failed(nk_httpd *srv, nk__listener *l, int err); /* back-off, skip, or give up */
void nk__accept_update(nk_httpd *srv); /* re-evaluate the limits: pause or resume accepting */

/* conn.c */
int nk__conn_start(nk_httpd *srv, int fd, const nk_addr *peer, int tls, int proxy);
/* The built-in handlers (after routes): returns as a handler does. */
nk__outcome nk__conn_handle(nk__conn *c, const nk_http_request *req);
/* The built-in handler that takes req's body, echo or upload, claims it (c->x->sink set) or
 * gives the status to answer; NK__NO_STATUS with no sink when none takes bodies of req. */
nk__status nk__conn_claim_builtin(nk__conn *c, const nk_http_request *req);
/* The most body bytes req may carry, for the handler that will take them (c->x->route). */
uint64_t nk__conn_body_limit(const nk__conn *c, const nk_http_request *req);
/* Point the access-log fields at req (its bytes stay in the connection's buffer). */
void nk__conn_log_fields(nk__conn *c, const nk_http_request *req);
/* A LATER answer is out: drop the head it answered and carry on. */
void nk__conn_after_later(nk__conn *c);
/* Output became available outside the loop's own events (a producer resumed): write it. */
void nk__conn_resume_output(nk__conn *c);
void nk__conn_close(nk__conn *c);
void nk__conn_on_kick(nk_loop *loop, nk_timer *t);
/* Run c's I/O handler on the next loop turn as if it were readable. */
void nk__conn_kick(nk__conn *c);
void nk__conn_shutdown(nk__conn *c);
void nk__pool_free(nk_httpd *srv);
/* A job's answer is out: carry on with the connection (pipelined requests, keep-alive). */
void nk__conn_resume(nk__conn *c);

/* respond.c: a response plan filled by a handler, then sent by nk__respond. */
typedef struct nk__resp {
    int status;
    const char *content_type;
    const char *etag;
    time_t last_modified;       /* 0: none */
    const char *content_encoding;
    int vary_accept_encoding;
    int accept_ranges;
    const char *allow;
    /* Location (redirects, 201): built by respond.c from a normalised, decoded path (as
     * nk_http_path_normalize makes it), percent-encoded segment by segment, so it always
     * names a path on this server (one leading "/", never "//", no dot segments). Never
     * from the raw request target. NULL: no Location. */
    const char *location_path;
    int location_dir;           /* end the Location with "/" (a directory's URL) */
    const char *location_origin; /* "https://host:port" before the path (respond.c builds
                                  * it from validated parts), or NULL: a path on this origin */
    nk_str location_query;      /* the request's query, appended after "?" when set */
    char content_range[96];     /* "" when none */
    uint64_t content_length;
    nk__file *file;             /* a file reference (owned by the plan: see nk__respond) */
    const char *mem_body;       /* body bytes in memory (a cached file's, or srv->body via
                                 * nk__resp_body_scratch), instead of file_fd */
    int file_fd;                /* the representation to send, or -1 */
    off_t file_off;
    int no_body;                /* HEAD, 304: headers only */
    int file_fd_owned;          /* file_fd (without file) is owned: closed once sent */
    const char *extra_headers;  /* preformatted "Name: value\r\n" lines, or NULL */
    int gzip;                   /* compress the body on the fly, chunked (gzip.c) */
    int stream;                 /* a produced body: chunked (HTTP/1.1) or close-delimited */
} nk__resp;

void nk__resp_init(nk__resp *r, int status);
/* The body is the page just generated in srv->body: mem_body and content_length from it.
 * A plan never sends a body it does not name (no implicit scratch buffer). */
void nk__resp_body_scratch(nk__resp *r, nk_httpd *srv);
/* The page just generated in srv->body, answered with status: a view of this moment
 * (counters, health, the request echoed), so never stored by caches; only the head for HEAD.
 * Returns as nk__respond does. */
nk__outcome nk__respond_live(nk__conn *c, const nk_http_request *req, nk__status status,
                             const char *content_type);
/* Send a planned response on c: NK__DONE, or NK__CLOSED when the connection failed and
 * was closed. The plan owns its file reference (file) and a handler's descriptor
 * (file_fd_owned) until it is sent: nk__respond and nk__respond_multipart hand them to the
 * exchange when a body is sent from them and release them otherwise, so r holds neither
 * afterwards. A plan that is never sent goes with nk__resp_release. */
nk__outcome nk__respond(nk__conn *c, nk__resp *r);
void nk__resp_release(nk_httpd *srv, nk__resp *r);
/* The exchange's file (from a plan) is sent, or will not be: its reference and descriptor
 * go. The one place an exchange lets them go. */
void nk__ex_file_release(nk_httpd *srv, nk__ex *x);
/* Methods allowed on this server, for Allow and 405 (depends on --upload). */
const char *nk__resp_allow(const nk_httpd *srv);
/* Build and send a small HTML error page. */
nk__outcome nk__respond_error(nk__conn *c, nk__status status, const char *detail);
/* 308 to the same path and query over https (nk_httpd_set_https_redirect). */
nk__outcome nk__respond_https_redirect(nk__conn *c, const nk_http_request *req);
/* Send a multipart/byteranges body: segments already in c->x->out and c->x->segs. */
nk__outcome nk__respond_multipart(nk__conn *c, nk__resp *r);
/* Write pending output. Returns 1 when everything is written, 0 when the socket is full (or
 * a producer has nothing yet), negative on a connection error. */
int nk__respond_flush(nk__conn *c);
/* handler.c: append the producer's next piece to c->x->out. 1 when output was added (or the
 * stream ended), 0 when the producer paused, negative on error. */
int nk__produce_fill(nk__conn *c);
/* The exchange ends without its stream finishing: the producer's last call (out NULL). */
void nk__produce_abort(nk__ex *x);

/* static.c */
nk__outcome nk__static_handle(nk__conn *c, const nk_http_request *req);

/* open.c: opening below the root. nk__open_beneath opens rel (relative, may be ".") beneath
 * dirfd for reading, confined to the root and to what requests may reach; the fd or a
 * negative errno. nk__openat2 is the system call (have_openat2 only), retried while the
 * kernel asks to: the fd or a negative errno. */
int nk__open_beneath(nk_httpd *srv, int dirfd, const char *rel);
int nk__openat2(int dirfd, const char *rel, int flags, mode_t mode, uint64_t resolve);
/* nk__open_beneath's rules as a sequence of calls, for callers that make them elsewhere: the
 * call due is openat(dirfd, rel, how.flags) when plain, else openat2(dirfd, rel, &how). Its
 * result goes to nk__openseq_next: 1 when another call is due (seq describes it), 0 when the
 * sequence is over with *out the descriptor or a negative errno. */
typedef struct nk__openseq {
    struct open_how how;
    unsigned char plain;   /* openat, no resolve rules */
    unsigned char stage;   /* 0: the link-free try; 1: the last call */
    unsigned char check;   /* the result's real path is checked */
    unsigned char retries; /* EAGAIN from openat2 (a rename raced the look-up) */
} nk__openseq;
void nk__openseq_init(nk__openseq *s, const nk_httpd *srv);
int nk__openseq_next(nk_httpd *srv, nk__openseq *s, int result, int *out);
/* fopen.c: open rel (in srv->path, or ".") below the root by the loop's file operations, so
 * a slow disk stalls no other connection, then its sidecar rel.gz when one is looked for.
 * NK__DONE: c waits, and done(c, req, fd, gzfd) answers when both are over (fd or -errno,
 * gzfd or negative; req parsed again from a copy of the head, srv->path as it was);
 * NK__PASS when no operation could start (the caller opens itself). */
typedef nk__outcome nk__opened_fn(nk__conn *c, const nk_http_request *req, int fd, int gzfd);
nk__outcome nk__open_async(nk__conn *c, const char *rel, nk__opened_fn *done);
/* nk_httpd_free: stop the opens still in flight and let the loop finish them, so that the loop
 * can be freed; records left to a disk that does not answer no longer point at srv. */
void nk__fopen_drain(nk_httpd *srv);
/* HTTP status for a negative errno from opening a path. */
int nk__open_status(int err);

/* auth.c: may this request go on? NK__DONE with *status NK__NO_STATUS when it carries valid
 * credentials (or none are configured), 401 when not, 429 when its client failed too often
 * lately; NK__WAIT when a password hash is being checked off the loop: the connection then
 * waits and its head is processed again once the verdict (c->x->auth_verdict) is in. */
enum { NK__AUTH_NONE = 0, NK__AUTH_OK, NK__AUTH_FAILED };
nk__outcome nk__auth_check(nk__conn *c, const nk_http_request *req, nk__status *status);
/* Does this request need credentials? */
int nk__auth_needed(const nk_httpd *srv, const nk_http_request *req);

/* upload.c: PUT and POST claim their bodies at head time (c->x->sink set), or give the
 * status to answer at once. DELETE has none, and answers as a handler does. */
nk__status nk__upload_begin(nk__conn *c, const nk_http_request *req);
nk__outcome nk__upload_delete(nk__conn *c, const nk_http_request *req);

/* rmtree.c: the tree below an open directory, checked (scan) or removed (empty) without
 * following a symbolic link, leaving the file system or passing the limits; an entry the
 * listing would not show refuses the whole tree. Job thread. 0, or -1 with why, err (an
 * errno for NK__RM_FAILED) and where (the entry, relative to the directory) set. */
#define NK__RMTREE_MAX_ENTRIES 10000 /* entries below the directory, at every depth */
#define NK__RMTREE_MAX_DEPTH 32      /* levels of directories below it */
enum { NK__RM_OK = 0, NK__RM_HIDDEN, NK__RM_DEPTH, NK__RM_ENTRIES, NK__RM_MOUNT, NK__RM_FAILED };
typedef struct nk__rmtree {
    int dotfiles;            /* dotfiles are listed (--dotfiles): they may go too */
    unsigned max_entries, max_depth;
    dev_t dev;               /* the directory's file system, never left */
    unsigned entries;        /* entries met by the last walk */
    unsigned removed;        /* entries removed so far */
    int why, err;
    char where[1024];
} nk__rmtree;
void nk__rmtree_init(nk__rmtree *t, int dotfiles);
int nk__rmtree_scan(nk__rmtree *t, int dirfd);
int nk__rmtree_empty(nk__rmtree *t, int dirfd);

/* deldir.c: DELETE of the directory at the normalised path (no trailing "/", not the root),
 * an entry of parentfd (taken over), in the job thread. Returns as a handler does. */
nk__outcome nk__delete_dir(nk__conn *c, const nk_http_request *req, int parentfd, const char *path);

/* echo.c: claim the body (c->x->sink set), or the status to answer at once. */
nk__status nk__echo_begin(nk__conn *c, const nk_http_request *req);

/* fcache.c */
nk__file *nk__fcache_get(nk_httpd *srv, const char *key);
/* Wrap fd (taken over) for key; rel is the file's path relative to the root (for the type).
 * gzfd: the precompressed sidecar rel.gz opened (taken over, kept only if it is a valid and
 * fresh one), or negative for none. Returns a referenced entry, or NULL (fds closed) without
 * memory. */
nk__file *nk__fcache_put(nk_httpd *srv, const char *key, const char *rel, int fd,
                         const struct stat *st, int gzfd);
/* Is a sidecar rel.gz looked for (a compressible type)? Its path into gz (4096 bytes): 1, or
 * 0 when none is looked for. */
int nk__sidecar_path(const nk_httpd *srv, const char *rel, char *gz);
/* The sidecar of rel opened here (on the loop): its fd, or negative for none. */
int nk__sidecar_open(nk_httpd *srv, const char *rel);
void nk__fcache_release(nk_httpd *srv, nk__file *f);
void nk__fcache_clear(nk_httpd *srv); /* drop every entry (descriptors run short) */
void nk__fcache_free(nk_httpd *srv);
void nk__fcache_forget(nk_httpd *srv, const char *key); /* the file at key was changed */
void nk__fcache_forget_prefix(nk_httpd *srv, const char *prefix); /* a tree went */

/* listing.c: the listing of the open directory dirfd, requested as srv->path, showing only
 * what requests for its links would be served, in the order sort says (NK_HTTP_DIRLIST_SORT_*
 * flags): from the worker's cache while the directory is unchanged, else rendered now.
 * *body stays valid until the next call into the engine (nk__respond copies what the socket
 * does not take at once). 0 or a negative errno. */
int nk__listing_get(nk_httpd *srv, int dirfd, int json, int sort, const char **body,
                    size_t *len);
/* The entry at path (normalised, no trailing "/") was deleted: drop the pages of its parent
 * and of every directory below it, at once rather than when their times are next checked. */
void nk__listing_forget(nk_httpd *srv, const char *path);
void nk__listing_cache_free(nk_httpd *srv);
/* archive.c (--archives): which archive the query asks for with "download=": 1 tar, 2 tar.gz,
 * 0 none, -1 another value. nk__archive_serve streams the open directory dirfd (requested as
 * srv->path; taken over) as a tar archive of what its listing lists, gzip-compressed when gz. */
int nk__archive_wanted(const nk_http_request *req);
nk__outcome nk__archive_serve(nk__conn *c, const nk_http_request *req, int dirfd, int gz);

/* gzip.c: a deflate stream of the body (mem, or else fd from offset 0, size bytes) that
 * nk__respond_flush turns into chunks (RFC 9112 section 7.1) when c->x->out runs dry. */
int nk__gz_start(nk__conn *c, int fd, const char *mem, uint64_t size);
/* Append the next chunk(s) to c->x->out (c->x->seg.mem grows). Returns 1 when output was added,
 * 0 when the stream is finished (and freed), negative on error. */
int nk__gz_fill(nk__conn *c);
void nk__gz_free(nk__conn *c);
/* Compress a whole in-memory body into out (gzip format). 0 or a negative error. */
int nk__gz_whole(const nk_httpd *srv, const char *in, size_t len, nk_buf *out);

/* handler.c */
/* At head time: the route for this request, or NULL. Uses srv->path as scratch. */
const nk__route *nk__route_match(nk_httpd *srv, const nk_http_request *req);
/* Claim the body for the route (x->route set): returns as nk__bodyrd_begin does for a
 * streaming route (NK__PASS when its handler let the request fall through); otherwise
 * NK__DONE, the body then collected in x->rbody for the handler. */
nk__outcome nk__route_claim(nk__conn *c, const nk_http_request *req, nk__status *status);
/* Run the matched route (not a streaming one): NK__DONE when answered (or LATER), or when it
 * declined and the built-in handlers took the request as if the route were not there (a body
 * it received given to the one that takes bodies); NK__CLOSED. Never NK__PASS. */
nk__outcome nk__route_call(nk__conn *c, const nk_http_request *req);
/* The exchange's handler state goes (pool reuse); a detached LATER exchange is kept. Returns
 * 1 when x was detached and must not be reused. */
int nk__ex_release_handler(nk_httpd *srv, nk__ex *x);
void nk__routes_free(nk_httpd *srv);

/* ops.c. Each returns as a handler does, or NK__PASS when the request is not theirs. */
nk__outcome nk__status_handle(nk__conn *c, const nk_http_request *req);
nk__outcome nk__cors_preflight(nk__conn *c, const nk_http_request *req);
int nk__cors_is_preflight(const nk_httpd *srv, const nk_http_request *req);
int nk__status_is_path(const nk_httpd *srv, const nk_http_request *req);
/* The status page or the health check: the engine's own paths, before routes and uploads. */
int nk__ops_is_path(const nk_httpd *srv, const nk_http_request *req);
int nk__health_is_path(const nk_httpd *srv, const nk_http_request *req);
nk__outcome nk__health_handle(nk__conn *c, const nk_http_request *req);
int nk__spa_wanted(const nk_httpd *srv, const nk_http_request *req);

/* log.c */
void nk__log_request(nk__conn *c, int status, uint64_t bytes);
void nk__log_flush(nk_httpd *srv);
/* The monotonic clock in microseconds: when a head arrived, for the log's durations. */
uint64_t nk__log_clock_us(void);

#endif
