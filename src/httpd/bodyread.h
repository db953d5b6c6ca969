/* Request bodies streamed to a NK_HTTPD_STREAM_BODY route (bodyread.c): how the connection
 * code (conn.c) and the exchange API (handler.c) meet it. */
#ifndef NK_HTTPD_BODYREAD_H
#define NK_HTTPD_BODYREAD_H

#include "internal.h"

/* What the body sink's data call returns besides 0 and an HTTP status (take_body passes it
 * on): the handler answered (or its connection must close), or it paused the body. */
#define NK__SINK_ANSWERED (-1)
#define NK__SINK_PAUSED (-2)

/* handler.c: the route was added with NK_HTTPD_STREAM_BODY. */
int nk__route_streams(const nk__route *route);
/* At head time, for a streaming route: run its handler. Returns 0 (reading, waiting, or
 * answered), an HTTP status for the engine to answer (the handler failed), 1 when the handler
 * let the request fall through (nothing claimed), or -1 when c was closed. */
int nk__bodyrd_begin(nk__conn *c, const nk_http_request *req, nk_httpd_handler handler,
                     void *arg);
/* The exchange's body goes to a handler piece by piece (its sink is the streaming one). */
int nk__bodyrd_active(const nk__ex *x);
/* The connection reads nothing for it now: the handler paused the body. */
int nk__bodyrd_paused(const nk__ex *x);
/* The handler answers before the body's end: called before its head is built. */
void nk__bodyrd_answering(nk__conn *c);
/* The handler answered before the body's end: no more of it is read (the connection closes
 * after the answer unless the body was whole). -1 when c was closed (a write failed under
 * the handler), else 0. */
int nk__bodyrd_answered(nk__conn *c);

#endif
