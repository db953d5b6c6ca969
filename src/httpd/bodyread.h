/* Request bodies streamed to a NK_HTTPD_STREAM_BODY route (bodyread.c): how the connection
 * code (conn.c) and the exchange API (handler.c) meet it. */
#ifndef NK_HTTPD_BODYREAD_H
#define NK_HTTPD_BODYREAD_H

#include "internal.h"

/* handler.c: the route was added with NK_HTTPD_STREAM_BODY. */
int nk__route_streams(const nk__route *route);
/* At head time, for a streaming route: run its handler. NK__DONE when reading, waiting or
 * answered, or with *status set for the engine to answer (the handler failed); NK__PASS when
 * the handler let the request fall through (nothing claimed); NK__CLOSED. */
nk__outcome nk__bodyrd_begin(nk__conn *c, const nk_http_request *req, nk_httpd_handler handler,
                             void *arg, nk__status *status);
/* The exchange's body goes to a handler piece by piece (its sink is the streaming one). */
int nk__bodyrd_active(const nk__ex *x);
/* The connection reads nothing for it now: the handler paused the body. */
int nk__bodyrd_paused(const nk__ex *x);
/* The handler answers before the body's end: called before its head is built. */
void nk__bodyrd_answering(nk__conn *c);
/* The handler answered before the body's end: no more of it is read (the connection closes
 * after the answer unless the body was whole). NK__CLOSED when c was closed (a write failed
 * under the handler), else NK__DONE. */
nk__outcome nk__bodyrd_answered(nk__conn *c);

#endif
