/* The HTTP/1.1 client behind `netkit http get`: URLs, and one request/response exchange on an
 * event loop (connect with a timeout, send, read the response heads and the body). The command
 * (cmd_http_get.c) builds the request, follows redirects, and decides where the body goes. */
#ifndef NETKIT_HTTP_CLIENT_H
#define NETKIT_HTTP_CLIENT_H

#include "cli.h"

/* An http:// URL, split. */
typedef struct hc_url {
    char *host;   /* as written, without brackets for an IPv6 literal */
    int port;     /* 80 when not given */
    char *target; /* origin-form request-target: path (at least "/") and query, no fragment */
    int ipv6;     /* the host is an IPv6 literal (written in brackets) */
} hc_url;

/* Parse an absolute URL ("http://host[:port][/path][?query][#frag]"; the scheme may be left
 * out). -EPROTONOSUPPORT for https:// (no TLS here) and other schemes, -EINVAL when malformed,
 * -ENOMEM. */
int hc_url_parse(const char *text, hc_url *out);
/* Resolve a reference (a Location value) against base (RFC 3986 section 5.2). */
int hc_url_resolve(const hc_url *base, const char *ref, size_t reflen, hc_url *out);
/* "http://host[:port]/target" into a new string (NULL when out of memory). */
char *hc_url_format(const hc_url *u);
void hc_url_free(hc_url *u);

/* Print a head's lines on stderr, each after prefix ("> ", "< "), CR LF dropped, as curl -v. */
void hc_show_lines(const char *prefix, const char *p, size_t n);

/* What the caller wants to hear about during an exchange. */
typedef struct hc_events {
    void *arg;
    /* Every response head, interim (1xx) ones too; raw is the head as received. */
    void (*on_head)(void *arg, const nk_http_response *resp, const char *raw, size_t len);
    /* A piece of the final response's body. Returns 0, or a negative error to abort. */
    int (*on_body)(void *arg, const char *p, size_t n);
} hc_events;

typedef struct hc_request {
    const hc_url *url;
    const char *unix_path; /* connect to this Unix socket instead of url's host */
    const char *head;      /* the complete request head, sent as is */
    size_t head_len;
    const char *body;
    size_t body_len;
    int head_request;      /* HEAD: the response has no body whatever it says */
    long timeout_ms;       /* for the connection, and for each wait for the server after it */
    int verbose;           /* "* Trying", "* Connected to" lines on stderr */
} hc_request;

/* Run one exchange on loop. The exchange ends early with -EINTR ("interrupted") once the
 * loop's data pointer (nk_loop_set_data) is not NULL: a signal watcher sets it. Returns 0 with the final response's status in *status once its
 * body has been delivered, or a negative error with a one-line reason in msg. */
int hc_exchange(nk_loop *loop, const hc_request *req, const hc_events *ev, int *status, char *msg,
                size_t msglen);

#endif
