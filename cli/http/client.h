/* The HTTP client behind `netkit http get`: URLs, and one request/response exchange on an
 * event loop (connect with a timeout, the TLS handshake for https, send, read the response
 * heads and the body). The command (http/get.c) builds the request, follows redirects, and
 * decides where the body goes; `netkit lookup tls` uses the exchange for its handshake alone. */
#ifndef NETKIT_HTTP_CLIENT_H
#define NETKIT_HTTP_CLIENT_H

#include "cli.h"

#include <netkit/tls.h>

/* An http:// or https:// URL, split. */
typedef struct hc_url {
    char *host;   /* as written, without brackets for an IPv6 literal */
    int port;     /* 80 (http) or 443 (https) when not given */
    char *target; /* origin-form request-target: path (at least "/") and query, no fragment */
    int ipv6;     /* the host is an IPv6 literal (written in brackets) */
    int tls;      /* https:// */
} hc_url;

/* Parse an absolute URL ("http[s]://host[:port][/path][?query][#frag]"; the scheme may be
 * left out, meaning http). -EPROTONOSUPPORT for other schemes, -EINVAL when malformed,
 * -ENOMEM. */
int hc_url_parse(const char *text, hc_url *out);
/* Resolve a reference (a Location value) against base (RFC 3986 section 5.2). */
int hc_url_resolve(const hc_url *base, const char *ref, size_t reflen, hc_url *out);
/* "http[s]://host[:port]/target" into a new string (NULL when out of memory). */
char *hc_url_format(const hc_url *u);
/* The port a URL of this scheme means when it names none. */
int hc_url_default_port(const hc_url *u);
/* Same origin (RFC 6454): scheme, host (case-insensitive) and port. */
int hc_url_same_origin(const hc_url *a, const hc_url *b);
void hc_url_free(hc_url *u);

/* ---- TLS ------------------------------------------------------------------------------------ */

/* How the client checks servers, from --cacert, --pin-sha256, -k. */
typedef struct hc_tls_opts {
    const char *ca_file;
    const char *pin;
    int insecure;
    int http2;   /* ALPN offers h2 before http/1.1 */
} hc_tls_opts;

/* Is host an IPv4 or IPv6 address (checked as an IP address of the certificate, not sent as
 * SNI) rather than a name? */
int hc_is_ip_literal(const char *host);
/* Is text a SHA-256 fingerprint (64 hex digits, colons allowed between them)? */
int hc_tls_pin_valid(const char *text);
/* A client context offering ALPN http/1.1 (h2 first with o->http2); on failure a one-line reason in msg. */
int hc_tls_ctx_new(const hc_tls_opts *o, nk_tls_ctx **out, char *msg, size_t msglen);
/* After a handshake: what was negotiated, how the certificate was checked and the chain, as
 * "label  value" lines each after prefix ("* " for -v on stderr, "" for an info report). */
void hc_tls_describe(FILE *out, const char *prefix, const nk_tls *t, const hc_tls_opts *o,
                     const char *host);
/* The same report for an info command, after an "address" row (peer, and host the name it
 * was reached by). */
void hc_tls_report(FILE *out, const nk_tls *t, const nk_addr *peer, const hc_tls_opts *o,
                   const char *host);

/* Print a head's lines on stderr, each after prefix ("> ", "< "), CR LF dropped, as curl -v. */
void hc_show_lines(const char *prefix, const char *p, size_t n);

/* What the caller wants to hear about during an exchange. */
typedef struct hc_events {
    void *arg;
    /* Every response head, interim (1xx) ones too; raw is the head as received. */
    void (*on_head)(void *arg, const nk_http_response *resp, const char *raw, size_t len);
    /* A piece of the final response's body. Returns 0, or a negative error to abort. */
    int (*on_body)(void *arg, const char *p, size_t n);
    /* The TLS handshake with peer is done (may be NULL). */
    void (*on_tls)(void *arg, const nk_tls *t, const nk_addr *peer);
} hc_events;

typedef struct hc_request {
    const hc_url *url;
    const char *unix_path; /* connect to this Unix socket instead of url's host */
    const char *head;      /* the complete request head, sent as is */
    size_t head_len;
    const char *body;
    size_t body_len;
    int head_request;      /* HEAD: the response has no body whatever it says */
    long timeout_ms;       /* for the connection, the whole TLS handshake, and each wait for
                            * the server after it */
    int verbose;           /* "* Trying", "* Connected to" lines on stderr */
    nk_tls_ctx *tls;       /* speak TLS (url->tls) with this client context */
    const char *server_name; /* sent as SNI, and what the certificate must name; NULL: the
                              * URL's host */
    int tls_only;          /* stop once the handshake is done: no request is sent */
    int http2;             /* speak HTTP/2 when ALPN picks h2 (the context must offer it) */
    int h2c;               /* without TLS, speak HTTP/2 from the start (prior knowledge) */
} hc_request;

/* Run one exchange on loop, in HTTP/1.1 or HTTP/2 (http/client_h2.c): the same head and body
 * go out either way, and the same events come back (an HTTP/2 head as "HTTP/2 200" and
 * "name: value" lines, version_major 2). The exchange ends early with -EINTR ("interrupted")
 * once the loop's data pointer (nk_loop_set_data) is not NULL: a signal watcher sets it.
 * Returns 0 with the final response's status in *status once its body has been delivered (0
 * with tls_only), or a negative error with a one-line reason in msg; a TLS failure's reason starts "TLS: ". */
int hc_exchange(nk_loop *loop, const hc_request *req, const hc_events *ev, int *status, char *msg,
                size_t msglen);

#endif
