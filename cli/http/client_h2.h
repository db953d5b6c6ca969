/* HTTP/2 (RFC 9113) for the client behind `netkit http get`, over nghttp2: one request on one
 * stream of a fresh connection. http/client.c owns the socket, TLS and timeouts and moves bytes;
 * this part turns the HTTP/1.1 request head the command built into a HEADERS frame (so both
 * protocols send the same fields), and the response's frames back into the heads and body
 * pieces the command already handles. */
#ifndef NETKIT_HTTP_CLIENT_H2_H
#define NETKIT_HTTP_CLIENT_H2_H

#include "http/client.h"

typedef struct hc_h2 hc_h2;

/* A client session with the connection preface, SETTINGS and the request (req->head and
 * req->body) queued. On failure a one-line reason in msg. */
int hc_h2_new(const hc_request *req, const hc_events *ev, hc_h2 **out, char *msg, size_t msglen);

/* Bytes received from the server. Returns 1 once the response is complete (its final status
 * in *status), 0 while more is needed, or a negative error with a one-line reason in msg
 * (left empty when an hc_events callback refused the body with its own error). */
int hc_h2_recv(hc_h2 *h, const char *p, size_t n, int *status, char *msg, size_t msglen);

/* Append the frames waiting to be sent to out, while out holds less than cap bytes. Returns 0,
 * or a negative error with a reason in msg (the session can neither read nor write any more
 * although the response is not complete). */
int hc_h2_send(hc_h2 *h, nk_buf *out, size_t cap, char *msg, size_t msglen);

/* The connection ended (end of stream from the server) before the response did: the reason,
 * naming a GOAWAY the server sent. */
void hc_h2_eof(const hc_h2 *h, char *msg, size_t msglen);

/* Queue GOAWAY (NO_ERROR) and append it to out: the polite end of a connection. */
void hc_h2_goodbye(hc_h2 *h, nk_buf *out);

void hc_h2_free(hc_h2 *h);

#endif
