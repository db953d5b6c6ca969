/* The HTTP/1.1 static-file server engine: one nk_httpd per event loop (per worker process).
 *
 * The engine accepts on the listening sockets it is given, reads and parses requests, serves
 * files below a root directory, and keeps every client-controlled quantity bounded: head size,
 * field count, body size, number of connections and time (header, idle, body and send
 * timeouts). It never prints: messages for the operator go through config.log.
 *
 * Life cycle: nk_httpd_new -> nk_httpd_listen (one or more) -> run the loop ->
 * nk_httpd_shutdown (stop accepting, finish in-flight responses, close idle connections;
 * config.on_drained is called when the last connection is gone) -> nk_httpd_free.
 * on_drained is called from the loop (a deferred callback), never from inside an engine call
 * or callback, so it may free the engine; nk_httpd_free before it ran cancels it.
 */
#ifndef NETKIT_HTTPD_H
#define NETKIT_HTTPD_H

#include <stdint.h>
#include <netkit/addr.h>
#include <netkit/buf.h>
#include <netkit/loop.h>
#include <netkit/http.h>
#include <errno.h>
#include <stddef.h>
#include <netkit/api.h>
#include <netkit/tls.h>

#ifdef __cplusplus
extern "C" {
#endif
NK_API_BEGIN

typedef struct nk_httpd nk_httpd;

typedef enum { NK_LOG_INFO, NK_LOG_WARN, NK_LOG_ERROR } nk_log_level;

/* One user allowed to authenticate: a plain password (compared in constant time) or a hash
 * in the format of nk_httpd_auth_hash. */
typedef struct nk_httpd_user {
    const char *name;
    const char *password;   /* plain text, or NULL */
    const char *hash;       /* "pbkdf2-sha256$ITER$SALT_B64$HASH_B64", or NULL */
} nk_httpd_user;

/* Live counters of one engine (one worker). They may sit in memory shared between processes
 * (MAP_SHARED): the engine updates its own slot with relaxed atomic operations, and readers
 * of other slots accept slightly inconsistent totals. */
typedef struct nk_httpd_counters {
    uint64_t connections_open;  /* right now */
    uint64_t connections_total; /* accepted so far */
    uint64_t requests_total;    /* answered (final responses) */
    uint64_t status[5];         /* answered by status class: [0] 1xx ... [4] 5xx */
    uint64_t bytes_sent;        /* what write/sendmsg/sendfile returned */
    uint64_t started;           /* Unix time the engine started */
    uint64_t pid;               /* the process of the engine */
    uint64_t listings_rendered; /* directory listings built (not answered from the cache) */
    uint64_t tls_handshakes;    /* TLS handshakes completed */
    uint64_t tls_resumed;       /* of which resumed a session (a ticket) */
    uint64_t tls_failed;        /* handshakes that failed or timed out */
    uint64_t h2_connections;    /* connections that spoke HTTP/2 */
    uint64_t h2_streams;        /* HTTP/2 requests (streams) begun */
    uint64_t h2_resets;         /* HTTP/2 streams reset by the client (RST_STREAM) */
    uint64_t proxy_refused;     /* connections closed for their PROXY header (or its source) */
} nk_httpd_counters;

typedef enum { NK_HTTPD_LOG_COMBINED = 0, NK_HTTPD_LOG_JSON } nk_httpd_log_format;

/* How a file body goes from the disk to a plain (not TLS, not HTTP/2) connection. */
typedef enum {
    NK_HTTPD_SENDFILE_AUTO = 0, /* copy bodies from 4 MiB up to loopback and unix-socket
                                 * peers, sendfile otherwise */
    NK_HTTPD_SENDFILE_ON,       /* sendfile(2): the kernel sends from the page cache */
    NK_HTTPD_SENDFILE_OFF,      /* pread(2) into a buffer and send(2) from it */
} nk_httpd_sendfile;

#define NK_HTTPD_BODY_MIN_RATE 1024 /* bytes per second that extend body_total_timeout_ms */

/* Extensible (docs/library.md, "Config structs"): size is the size the caller was compiled
 * with, set by nk_httpd_config_init; fields are only ever added at the end. Fill it with
 * nk_httpd_config_init, then change what differs. */
typedef struct nk_httpd_config {
    size_t size;               /* sizeof(nk_httpd_config) of the caller: set by _init */
    const char *root;          /* directory to serve */
    const char *index;         /* index file name, NULL for none ("index.html" by default) */
    int listing;               /* directory listings */
    int dotfiles;              /* serve names starting with "." */
    int follow_symlinks;       /* serve symlinks that leave root */
    nk_http_limits limits;     /* request line, head, field count */
    uint64_t max_body;         /* request body limit (413 above) */
    unsigned max_conns;        /* open connections; accepting pauses at the limit */
    unsigned header_timeout_ms;/* a request head must arrive within this (slowloris) */
    unsigned idle_timeout_ms;  /* keep-alive connection with no request */
    unsigned body_timeout_ms;  /* gap between body reads */
    unsigned send_timeout_ms;  /* gap between successful writes (client not reading) */
    unsigned drain_timeout_ms; /* nk_httpd_shutdown: bound for in-flight responses */
    int sndbuf;                /* SO_SNDBUF of accepted sockets in bytes; 0: the kernel's
                                * autotuning (which may grow to 4 MiB per connection) */
    int defer_accept_s;        /* TCP_DEFER_ACCEPT: a connection is accepted once its first
                                * bytes arrive, or after about this many seconds; 0: off */
    int access_log_fd;         /* combined log format lines; -1 for none */
    const char *mime_types;    /* path of mime.types, NULL for /etc/mime.types */
    /* Operator messages (descriptor exhaustion, ...); may be NULL. */
    void (*log)(void *arg, nk_log_level level, const char *msg);
    void *log_arg;
    /* Writing (PUT, DELETE, POST multipart/form-data): see nk_httpd_clean_uploads. */
    int upload;                /* allow writes below root */
    int mkdirs;                /* PUT creates missing parent directories */
    int echo;                  /* answer every request with what was received */
    /* Credentials (HTTP Basic, RFC 7617). With none, nobody is asked. With upload, only
     * writes need them; without, every request does. */
    const struct nk_httpd_user *users;
    size_t nusers;
    /* Called with each request head as it arrives (raw bytes, through the blank line); may
     * be NULL. For `-v`: the caller prints. */
    void (*on_head)(void *arg, const char *head, size_t len);
    void *head_arg;
    /* Compression on the fly (gzip, RFC 9110 section 8.4.1.3) of compressible types above
     * 1 KiB for clients that accept it, sent chunked to HTTP/1.1 clients. Level 1-9. */
    int gzip;
    int gzip_level;            /* 0: 6 */
    int cors;                  /* Access-Control-Allow-Origin: * and preflight answers */
    int spa;                   /* missing navigations (Accept: text/html) get /index.html */
    /* Live counters as JSON (or ?format=prometheus) at this exact path; NULL for none. Only
     * loopback and unix-socket clients may read them unless status_public. */
    const char *status_path;
    int status_public;
    nk_httpd_log_format log_format;
    /* The engine's counters slot (NULL: its own). With several workers, all_counters points
     * at nworkers slots (this one is all_counters[worker_index]) for the status page. */
    nk_httpd_counters *counters;
    const nk_httpd_counters *all_counters;
    unsigned nworkers;
    unsigned worker_index;
    /* Called once after nk_httpd_shutdown when no connection is left, from the loop on a
     * later turn (never inside nk_httpd_shutdown or another engine call): it may free the
     * engine. The loop must keep running for it to come. */
    void (*on_drained)(void *arg);
    void *drained_arg;
    /* A whole request body must arrive within this, extended by one second per KiB
     * received (NK_HTTPD_BODY_MIN_RATE), so a steady slow upload finishes but a body
     * trickled a byte at a time does not hold a connection forever; 0: no total bound
     * (body_timeout_ms still bounds each gap). */
    unsigned body_total_timeout_ms;
    /* TCP_NOTSENT_LOWAT of accepted sockets: bytes written but not yet sent that the kernel
     * queues per connection. Autotuning still sizes the bytes in flight, so fast clients are
     * not slowed down, but a client that stops reading pins at most this much plus its own
     * receive window, instead of up to tcp_wmem's maximum (4 MiB) until the send timeout.
     * 256 KiB by default; 0: the kernel's setting (unbounded unless the system sets one). */
    int unsent_max;
    /* Like on_head (and called in its place when set, with head_arg), with who sent the head:
     * conn identifies the connection while it is open, nth counts the requests it carried
     * before this one (0: a new connection), and the peer is family AF_INET or AF_INET6 with
     * its address bytes and port, or AF_UNIX with ip NULL. For `-v` lines that tell clients
     * apart. */
    void (*on_head_from)(void *arg, const void *conn, unsigned nth, int family,
                         const unsigned char *ip, unsigned port, const char *head, size_t len);
    /* A directory is also served as a tar archive (?download=tar) or a gzip-compressed one
     * (?download=tar.gz), streamed, holding what its listings list; off: 404. */
    int archives;
    /* The body limit of an upload (PUT, POST with upload) whose credentials were checked:
     * UINT64_MAX (the default) for none but the disk (507 when it is full). Anonymous
     * bodies, echoed ones and routes' (held in memory) keep max_body. */
    uint64_t max_body_authenticated;
    /* File bodies above the small-file size: sendfile hands the socket page-cache pages, so
     * the server copies nothing, which is what a network card wants. A peer on the same
     * machine copies every byte out of those pages itself, and for large bodies a copy into
     * ordinary socket memory is faster end to end (bench/RESULTS.md: 10 MiB over loopback,
     * 1.15-1.6x). AUTO decides from the socket's own peer address and the body's size. */
    nk_httpd_sendfile sendfile;
} nk_httpd_config;

/* Fill the first size bytes of cfg with the defaults (root ".") and cfg->size with size; a
 * caller's struct larger than this library's gets its unknown tail zeroed. -EINVAL when size
 * is below sizeof(size_t). Called through nk_httpd_config_init, which passes the caller's
 * sizeof: a library function cannot know it. */
int nk_httpd_config_init_size(nk_httpd_config *cfg, size_t size);
/* Sensible defaults for everything, and cfg->size. */
static inline void nk_httpd_config_init(nk_httpd_config *cfg)
{
    (void)nk_httpd_config_init_size(cfg, sizeof *cfg);
}
/* The older name of nk_httpd_config_init. */
static inline void nk_httpd_config_default(nk_httpd_config *cfg)
{
    nk_httpd_config_init(cfg);
}

/* Create the engine on loop. The config is copied (strings must outlive the engine); a
 * struct from an older header (a smaller size) gets the defaults for the fields it lacks.
 * Errors: -EINVAL for cfg->size 0 (a struct nk_httpd_config_init never filled), -E2BIG for
 * a newer caller's struct that sets a field this library does not know, -ENOENT/-ENOTDIR/
 * -EACCES for the root, -ENOMEM. */
int nk_httpd_new(nk_loop *loop, const nk_httpd_config *cfg, nk_httpd **out);
/* Accept connections on a listening stream socket (TCP or unix). The engine sets O_NONBLOCK
 * on it and, once this returns 0, owns it and closes it in nk_httpd_free. Errors (the caller
 * keeps the descriptor): -EBADF (negative or not open), -ENOTSOCK (not a socket), -EINVAL (not
 * SOCK_STREAM, or listen() was not called), -EEXIST (already this engine's, or watched by
 * another watcher of the loop), -ERANGE (select backend: above FD_SETSIZE), -ENOMEM. A
 * listener whose accept later fails for good (not an error of one client, not running out of
 * descriptors or memory) is reported once through config.log (NK_LOG_ERROR) and no longer
 * watched. */
int nk_httpd_listen(nk_httpd *srv, int listen_fd);
/* As nk_httpd_listen, for a listener whose connections speak TLS (netkit/tls.h) with ctx, a
 * server context holding at least one certificate; ctx NULL: the engine's current one. The
 * engine takes its own reference. The handshake counts against header_timeout_ms; at most
 * 512 handshakes are in flight at once (nk_httpd_set_handshake_limit): further clients wait,
 * their ClientHello unread, for a slot (within header_timeout_ms), and a handshake takes none
 * while it waits for its client's bytes (a connection that has sent nothing yet, or that
 * stalls). Errors: nk_httpd_listen's, -EINVAL for no usable context. */
int nk_httpd_listen_tls(nk_httpd *srv, int listen_fd, nk_tls_ctx *ctx);
/* Listener options for nk_httpd_listen_opts. */
enum {
    NK_HTTPD_LISTEN_TLS = 1 << 0,   /* as nk_httpd_listen_tls, with ctx */
    /* Behind a load balancer (HAProxy's send-proxy / send-proxy-v2): every connection must
     * begin with a PROXY protocol header, v1 or v2 (netkit/proxy.h), read before anything
     * else (before the TLS handshake with NK_HTTPD_LISTEN_TLS) and within header_timeout_ms.
     * It is accepted only from a peer in the ranges of nk_httpd_set_proxy_from (none by
     * default: every connection is refused; a unix-socket peer is always accepted). A
     * connection from elsewhere, with a malformed or missing header, is closed, counted in
     * proxy_refused and reported through config.log at most once per 10 seconds. The
     * header's client then stands for the peer everywhere (access log, on_head_from, the
     * status page's loopback rule, failed-credential limits, nk_httpd_ex_peer); a LOCAL
     * header (the balancer's own health checks) or UNKNOWN keeps the socket's peer. */
    NK_HTTPD_LISTEN_PROXY = 1 << 1
};
/* nk_httpd_listen with options (NK_HTTPD_LISTEN_*); ctx as nk_httpd_listen_tls's when TLS,
 * else ignored. Errors: nk_httpd_listen's, -EINVAL for unknown flags or no usable context. */
int nk_httpd_listen_opts(nk_httpd *srv, int listen_fd, unsigned flags, nk_tls_ctx *ctx);
/* The peers allowed to send a PROXY header: n address ranges ("10.0.0.0/8", "::1", parsed
 * by nk_proxy_cidr_parse), replacing the previous list; n 0: none. -EINVAL for a bad range
 * (nothing changes), -ENOMEM. */
int nk_httpd_set_proxy_from(nk_httpd *srv, const char *const *ranges, size_t n);
/* A health check for load balancers at this exact path (copied; NULL: none): GET or HEAD
 * answers 200 "ok" while the engine serves, 503 "draining" once nk_httpd_shutdown was
 * called or nk_httpd_set_healthy(srv, 0), so a balancer stops sending before the node
 * stops. No credentials are asked for it. -EINVAL for a path not starting with "/",
 * -ENOMEM. */
int nk_httpd_set_health_path(nk_httpd *srv, const char *path);
/* Mark the engine up (1, the default) or down (0) for the health check, while it goes on
 * serving and accepting: call it with 0 some seconds before nk_httpd_shutdown so balancers
 * see the node leave while its listeners still take what they send meanwhile. */
void nk_httpd_set_healthy(nk_httpd *srv, int up);
/* Replace the context of every TLS listener (a certificate reload): connections already
 * open keep theirs, new handshakes use ctx. -EINVAL when ctx has no certificate. */
int nk_httpd_set_tls(nk_httpd *srv, nk_tls_ctx *ctx);
/* HTTP/2 (RFC 9113, framing by nghttp2): on (the default) the engine speaks it on cleartext
 * listeners to clients that open with the connection preface (h2c with prior knowledge), and
 * over TLS when the handshake's ALPN chose "h2" (offer it with nk_tls_ctx_set_alpn, before
 * "http/1.1"). Every request is served as over HTTP/1.1: the same handlers, limits and log.
 * max_streams is SETTINGS_MAX_CONCURRENT_STREAMS (0: 100). Off: only HTTP/1.x. */
void nk_httpd_set_http2(nk_httpd *srv, int on, unsigned max_streams);
/* Strict-Transport-Security: max-age=max_age_s on every response sent over TLS; 0: none. */
void nk_httpd_set_hsts(nk_httpd *srv, unsigned max_age_s);
/* Cleartext listeners answer every request with 308 to the same path and query over https
 * on port (443 leaves the port out), for the Host the request named (validated; the
 * listener's own address otherwise); 0: off. Requests over TLS are served normally. */
void nk_httpd_set_https_redirect(nk_httpd *srv, unsigned port);
/* How an operator raises the body limit, for the 413 page and the log line that name the
 * limit passed ("raise it with --max-body-bytes"); the string must outlive the engine. NULL:
 * the limit alone. */
void nk_httpd_set_limit_hint(nk_httpd *srv, const char *hint);
/* TLS handshakes in flight at once (0: the default, 512). */
void nk_httpd_set_handshake_limit(nk_httpd *srv, unsigned max_in_flight);
/* Stop accepting and drain; see above. Safe to call more than once. */
void nk_httpd_shutdown(nk_httpd *srv);
/* Change the access log descriptor (after the caller reopened the file); flushes first. */
void nk_httpd_set_access_log(nk_httpd *srv, int fd);
/* Close everything (connections are dropped) and free the engine. */
void nk_httpd_free(nk_httpd *srv);

/* ---- Handlers ---------------------------------------------------------------------------------
 * An application answers requests through routes: a handler is called with an exchange (one
 * request and its response; the same object whatever carries the bytes) and either answers,
 * answers later, or lets the request fall through to the built-in handlers (static files,
 * listings, uploads, echo). Order: authentication and the status page first (they guard
 * every request), then routes in the order they were added, then the built-ins.
 *
 *   static int hello(nk_httpd_ex *ex, void *arg)
 *   {
 *       return nk_httpd_respond(ex, 200, "application/json", "{\"hello\":1}", 11);
 *   }
 *   nk_httpd_route(srv, "GET", "/api/hello", 0, hello, NULL);
 *
 * A route that matches a request with a body receives the whole body (at most the engine's
 * max_body, else 413) before its handler runs: nk_httpd_ex_body. If it declines
 * (NK_HTTPD_NEXT), the request goes on as if the route had not matched: the built-in handler
 * that takes bodies (the echo, an upload's PUT or POST) is given the body received, under its
 * own limit and rules (an upload is written to a temporary file, fsynced and renamed). Held
 * in memory, such a body stays bounded by max_body even where an authenticated upload would
 * take more (max_body_authenticated). A route added with NK_HTTPD_STREAM_BODY runs as soon as
 * the head has arrived and reads the body in pieces as it comes (nk_httpd_ex_body_read):
 * memory does not grow with the body. */
typedef struct nk_httpd_ex nk_httpd_ex;

/* What a handler returns (or a negative errno, answered 500). */
enum {
    NK_HTTPD_NEXT = 0,  /* not answered: the next route, then the built-in handlers */
    NK_HTTPD_DONE = 1,  /* answered with one of the nk_httpd_respond calls */
    NK_HTTPD_LATER = 2  /* will be answered later, from another callback on the same loop
                         * (a timer, another watcher, an nk_io on an eventfd that a thread
                         * writes; the loop itself is not thread-safe): the
                         * connection waits and reads nothing meanwhile. ex stays valid until
                         * it is answered, even when the client goes away (see
                         * nk_httpd_ex_alive); every LATER exchange must be answered once. */
};
typedef int (*nk_httpd_handler)(nk_httpd_ex *ex, void *arg);

enum {
    NK_HTTPD_PREFIX = 1 << 0, /* path matches itself and every path below it ("/api" matches
                               * "/api" and "/api/x", not "/apix") */
    /* The body is not read before the handler: it runs when the head has arrived (with or
     * without a body to come) and either reads the body with nk_httpd_ex_body_read and
     * returns NK_HTTPD_LATER, answers at once (the body is then not read: the connection
     * closes after the answer), or returns NK_HTTPD_NEXT before reading (the request goes on
     * as if the route were not there). Once nk_httpd_ex_body_read was called it is too late
     * to decline: anything but NK_HTTPD_LATER or an answer is answered 500 (the body unread,
     * the connection closed), after on_data's last call with end -ECANCELED. on_data cannot
     * decline either (its 0 means go on). nk_httpd_ex_body is empty for such a route. */
    NK_HTTPD_STREAM_BODY = 1 << 1
};

/* Add a route. method: an exact method token ("GET", "PURGE", any token), or NULL for any;
 * a route for GET also takes HEAD (whose answer then has no body). path: a decoded,
 * normalised path starting with "/", compared with the request's decoded, normalised path.
 * Errors: -EINVAL (bad method or path), -ENOMEM. */
int nk_httpd_route(nk_httpd *srv, const char *method, const char *path, int flags,
                   nk_httpd_handler handler, void *arg);

/* The request. Strings are views into the request (not NUL-terminated unless said), valid
 * until the exchange is answered. */
nk_str nk_httpd_ex_method(const nk_httpd_ex *ex);   /* as sent, any token */
nk_str nk_httpd_ex_target(const nk_httpd_ex *ex);   /* the request-target as sent */
nk_str nk_httpd_ex_query(const nk_httpd_ex *ex);    /* after '?', p NULL when none */
/* The decoded, normalised path (NUL-terminated), or NULL when the target cannot be decoded
 * (such a request is answered 400 before any route sees it). */
const char *nk_httpd_ex_path(nk_httpd_ex *ex);
/* The value of the first field named name (case-insensitive); p NULL when absent. */
nk_str nk_httpd_ex_header(const nk_httpd_ex *ex, const char *name);
/* Decode query parameter name ("a+b%21" -> "a b!") into out (NUL-terminated). Returns its
 * length, -ENOENT when absent, -ENOSPC when out is too small, -EINVAL for bad escapes. */
int nk_httpd_ex_query_param(const nk_httpd_ex *ex, const char *name, char *out, size_t outlen);
/* The request body (routes receive it whole); p NULL when there is none. */
nk_str nk_httpd_ex_body(const nk_httpd_ex *ex);
/* A streamed body (NK_HTTPD_STREAM_BODY), piece by piece as it arrives, decoded (chunked or
 * Content-Length alike; over HTTP/2 the same). Called with end 0 for each piece (n > 0), then
 * exactly once with end != 0 and no bytes:
 *   end 1      the body is whole. Answer now or later: ex stays valid until answered, as
 *              after NK_HTTPD_LATER (even if the client leaves meanwhile).
 *   end < 0    the body will not complete: -EFBIG it passed the limit (the engine answers 413
 *              and closes), -ECONNRESET the client went away, its body timed out or was
 *              malformed, or the engine is shutting down or freed, -ECANCELED the handler
 *              that began reading returned neither NK_HTTPD_LATER nor an answer (the engine
 *              answers 500 and closes; no piece came before). ex is gone when this call
 *              returns: free what arg holds, do not answer (an answer is refused, -EINVAL).
 * Returns 0 to go on, NK_HTTPD_LATER to pause (as nk_httpd_ex_body_pause), or a negative
 * errno: the engine answers 500 and closes, and calls no more. The handler may answer from
 * any call or any other callback before the end (413 after counting, 507 on a full disk...):
 * no call follows, the rest of the body is not read, and the connection closes after the
 * answer (an HTTP/2 stream ends; what the client still sends is discarded, within a bound).
 * on_data is called from the loop, never from inside the handler or the functions below. */
typedef int (*nk_httpd_body_fn)(nk_httpd_ex *ex, const void *p, size_t n, int end, void *arg);
/* Start reading the body of a NK_HTTPD_STREAM_BODY exchange, from its handler or later. max
 * bounds it in bytes: 0 for the engine's max_body, UINT64_MAX for no bound. body_timeout_ms
 * and body_total_timeout_ms run from this call (time paused does not count). An
 * "Expect: 100-continue" is answered now, so a handler that answers without reading saves
 * the client the upload. Returns 0; -EFBIG when the Content-Length is above max (nothing is
 * read: answer 413); -ENOTCONN when the client went away (answer: it is dropped); -EINVAL
 * for no on_data, an exchange of another kind, a second call or one already answered. */
int nk_httpd_ex_body_read(nk_httpd_ex *ex, uint64_t max, nk_httpd_body_fn on_data, void *arg);
/* Back-pressure: while paused the engine reads nothing more of the connection (HTTP/1.1: the
 * socket; HTTP/2: the stream's flow-control window is not given back), on_data is not called
 * and no body timeout runs. Resume calls on_data again from the loop on its next turn.
 * Both return 0, or -EINVAL when ex is not reading a body. */
int nk_httpd_ex_body_pause(nk_httpd_ex *ex);
int nk_httpd_ex_body_resume(nk_httpd_ex *ex);
/* The client's address (AF_UNIX with an empty path for a unix socket). -ENOTCONN once the
 * client went away. */
int nk_httpd_ex_peer(const nk_httpd_ex *ex, nk_addr *out);
/* 1 while the client is connected (a LATER exchange may outlive it). */
int nk_httpd_ex_alive(const nk_httpd_ex *ex);
nk_httpd *nk_httpd_ex_server(const nk_httpd_ex *ex);

/* The response. Add fields first, then answer once with one of the respond calls.
 * Content-Length, Transfer-Encoding, Connection, Date and Server are the engine's: adding
 * them is -EINVAL, as is a name that is not a token or a value with CR, LF or NUL. */
int nk_httpd_ex_add_header(nk_httpd_ex *ex, const char *name, const char *value);
/* Answer with body bytes from memory (copied when the socket does not take them at once, so
 * body need only live until the call returns). Returns NK_HTTPD_DONE, for `return
 * nk_httpd_respond(...)` in a handler; -EINVAL for a status outside 200..599 or a second
 * answer. After it (called from outside the handler) ex is gone. */
int nk_httpd_respond(nk_httpd_ex *ex, int status, const char *content_type, const void *body,
                     size_t len);
/* Answer with len bytes of the file fd from offset off, sent with sendfile; the engine owns
 * fd from here on (it is closed when sent, or at once on error). */
int nk_httpd_respond_fd(nk_httpd_ex *ex, int status, const char *content_type, int fd,
                        uint64_t off, uint64_t len);
/* A body produced in pieces, of a length not known in advance: sent chunked to HTTP/1.1
 * clients (RFC 9112 section 7.1), and to HTTP/1.0 clients delimited by closing the
 * connection. produce(ex, out, arg) is called whenever the connection can take more: it
 * appends the next piece to out and returns 0 (call again; with nothing appended it counts
 * as NK_HTTPD_LATER), NK_HTTPD_DONE (that was the
 * last piece), NK_HTTPD_LATER (nothing yet: call nk_httpd_ex_resume when there is), or a
 * negative errno (the connection is closed, so a cut body never looks complete). It is
 * called once more with out NULL when the exchange ends early (the client went away, the
 * server is freed, a HEAD request needs no body): free what arg holds then. ex stays valid
 * until DONE or that last call. */
typedef int (*nk_httpd_producer)(nk_httpd_ex *ex, nk_buf *out, void *arg);
int nk_httpd_respond_stream(nk_httpd_ex *ex, int status, const char *content_type,
                            nk_httpd_producer produce, void *arg);
/* A producer that returned NK_HTTPD_LATER has more: call it again. Not from inside it. */
int nk_httpd_ex_resume(nk_httpd_ex *ex);

/* Password hashes: "pbkdf2-sha256$ITER$SALT_B64$HASH_B64", PBKDF2-HMAC-SHA256 (RFC 8018
 * section 5.2) of the password with ITER iterations (decimal, 1000 to 10000000) and the salt,
 * 32 bytes of output; salt and output in standard base64 with padding. A line of an auth file
 * is "USER:HASH".
 * nk_httpd_auth_hash: hash password with salt into out (NUL-terminated). Returns the length,
 * -EINVAL for a bad iteration count or salt, -ENOSPC when out is too small (128 is enough for
 * salts up to 32 bytes), -EIO when libcrypto fails. */
int nk_httpd_auth_hash(const char *password, size_t len, unsigned iterations,
                       const unsigned char *salt, size_t saltlen, char *out, size_t outlen);
/* 1 when password matches hash, 0 when not, -EINVAL when hash is malformed. The comparison
 * takes the same time whatever the password. */
int nk_httpd_auth_verify(const char *hash, const char *password, size_t len);

/* Remove temporary upload files (".netkit-upload-*") that a killed server left below root,
 * visiting at most max_dirs directories (symbolic links are not followed). Call it before
 * starting the servers that may write there. Returns how many were removed, or a negative
 * error for the root. */
int nk_httpd_clean_uploads(const char *root, unsigned max_dirs);
/* Remove the temporary upload files of one process that died (its pid is in their names,
 * ".netkit-upload-PID-*"), for a supervisor restarting a worker while other workers keep
 * writing. The walk goes at most max_depth directories down and looks at most max_entries
 * names in all; it never follows a symbolic link and removes nothing but regular files with
 * that pid's names. Returns how many were removed, or a negative error for the root. */
int nk_httpd_clean_worker_uploads(const char *root, int pid, unsigned max_depth,
                                  unsigned max_entries);

typedef struct nk_httpd_stats {
    uint64_t requests;
    uint64_t connections;   /* accepted so far */
    unsigned open;          /* open right now */
} nk_httpd_stats;
/* The engine's request and connection counts so far. */
void nk_httpd_get_stats(const nk_httpd *srv, nk_httpd_stats *out);

/* Requests whose answer waits for a file operation off the loop (a static file's cache miss
 * being opened by the loop's file steps, netkit/op.h), so that no turn of the loop moves them
 * until that operation completes. For code that drives the loop with NK_RUN_NOWAIT and judges
 * the engine idle when nothing moves (tests, fuzzers): while this is non-zero, a turn with
 * NK_RUN_ONCE is sure to return. */
unsigned nk_httpd_waiting(const nk_httpd *srv);

/* 1 when a peer (family AF_INET/AF_INET6 with its 4 or 16 address bytes, or AF_UNIX with ip
 * NULL) is local: 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 or a unix socket. For --status. */
int nk_httpd_peer_is_local(int family, const unsigned char *ip);

NK_API_END
#ifdef __cplusplus
}
#endif

#endif
