/* HTTP/2 inside the engine (RFC 9113; framing, HPACK and flow control by nghttp2).
 *
 *   h2.c        the session on a connection: reads frames into nghttp2, writes what it
 *               produces, runs the streams that are ready, timeouts and GOAWAY
 *   h2stream.c  one stream: its request given to a virtual connection as HTTP/1.1 bytes,
 *               the answer that connection writes turned back into HEADERS and DATA
 *
 * A stream is served by the same code as an HTTP/1.1 connection (conn.c and everything
 * under it): a virtual nk__conn without a socket whose transport (xport.c) is the stream.
 * So every handler, limit, log line and counter is the same over both protocols; what
 * differs is only how the bytes travel. The price is a request head written and parsed once
 * more, and body bytes copied once more, per request; docs/http2.md measures it. */
#ifndef NK_HTTPD_H2_H
#define NK_HTTPD_H2_H

#include <nghttp2/nghttp2.h>

#include "httpd/internal.h"

/* How the answer's body is delimited in the HTTP/1.1 bytes the virtual connection writes. */
enum {
    NK__H2_RESP_HEAD = 0, /* the head is still coming */
    NK__H2_RESP_NONE,     /* no body (HEAD, 204, 304): anything more is dropped */
    NK__H2_RESP_LENGTH,   /* Content-Length bytes */
    NK__H2_RESP_CHUNKED,  /* chunked: decoded here, DATA carries the data only */
    NK__H2_RESP_CLOSE     /* until the virtual connection closes */
};

struct nk__h2s {
    nk__h2 *h2;               /* NULL once the session is gone (the stream then only waits
                               * for its virtual connection to close) */
    nk_httpd *srv;
    int32_t id;
    nk__conn *vc;             /* the virtual connection, NULL before it starts and once closed */
    nk__h2s *prev, *next;     /* h2->streams */
    nk__h2s *ready_next;      /* on h2->ready */
    unsigned char on_ready;
    unsigned char want;       /* NK_READ / NK_WRITE: what vc waits for */
    /* The request. */
    char *method, *path, *authority; /* pseudo-header fields until the head is complete */
    nk_buf in;                /* HTTP/1.1 bytes for vc: the head, then the body */
    size_t unacked;           /* DATA bytes received but not yet given back to the windows */
    size_t decoded;           /* header bytes decoded for this stream (HPACK bomb guard) */
    unsigned nfields;
    unsigned char head_done, in_eof, chunked_in, is_head, oversize, has_length;
    /* The answer. */
    unsigned char resp;       /* NK__H2_RESP_* */
    unsigned char submitted, body_done, deferred, ng_closed, reset, vc_started, answered;
    uint64_t discarded;       /* request bytes dropped after the answer (nk__h2s_discard) */
    nk_buf head;              /* response head bytes until it is complete */
    nk_buf body;              /* response body bytes nghttp2 has not framed yet */
    uint64_t body_left;       /* NK__H2_RESP_LENGTH: bytes still to come */
    nk_http_chunked chunk;    /* NK__H2_RESP_CHUNKED: the decoder */
};

#define NK__H2_RESET_RING 128

struct nk__h2 {
    nghttp2_session *ng;
    nk__conn *c;              /* the connection (socket or TLS) */
    nk_buf out;               /* frames nghttp2 produced that the transport has not taken */
    nk__h2s *streams;
    nk__h2s *ready, *ready_tail;
    unsigned nstreams;
    unsigned nvc;             /* streams whose virtual connection runs */
    unsigned char in_io;      /* nk__h2_on_io runs: a stream that becomes ready is run by it */
    unsigned char goaway;     /* GOAWAY sent: finishing the streams in flight */
    unsigned char calm;       /* a fatal error is the client's excess: ENHANCE_YOUR_CALM */
    uint32_t fatal;           /* the error code of a connection error found by a callback */
    int32_t *reset_ids;       /* streams we reset lately (ring of NK__H2_RESET_RING), lazily */
    unsigned reset_next;
    uint32_t peer_window;     /* the client's SETTINGS_INITIAL_WINDOW_SIZE before its last */
    /* Frame boundaries of what the client sends (h2.c: feed): DATA and PRIORITY frames are
     * checked where nghttp2 does not look, with nghttp2's state current at their start. */
    uint32_t sc_skip;         /* payload bytes of the current frame still to pass */
    uint32_t sc_id;           /* its stream */
    unsigned char sc_preface; /* preface bytes still to pass */
    unsigned char sc_hlen;    /* header bytes of the next frame gathered so far */
    unsigned char sc_type;
    unsigned char sc_plen;    /* PRIORITY payload bytes gathered */
    unsigned char sc_hdr[9];
    unsigned char sc_pri[5];
    unsigned char phase;      /* nk__phase of the session's timer */
    unsigned char got_frame;  /* the first frame after the preface has come */
    unsigned streams_begun;   /* requests so far: each one renews the idle deadline */
    unsigned timer_streams;   /* streams_begun when the timer was last armed */
};

/* h2.c */
void nk__h2_ready(nk__h2s *s);   /* run s's virtual connection soon */
void nk__h2_schedule(nk__h2 *h); /* nghttp2 has something to send: write it soon */

/* h2stream.c: the stream side of nghttp2's callbacks. Those returning int give 0 or an
 * nghttp2 error code for the callback to return. */
nk__h2s *nk__h2s_new(nk__h2 *h, int32_t id);
void nk__h2s_free(nk__h2s *s);
int nk__h2s_header(nk__h2s *s, const uint8_t *name, size_t nlen, const uint8_t *value,
                   size_t vlen);
int nk__h2s_head_end(nk__h2s *s, int end_stream);
int nk__h2s_data(nk__h2s *s, const uint8_t *data, size_t len);
void nk__h2s_body_end(nk__h2s *s);
void nk__h2s_stream_closed(nk__h2s *s, uint32_t error_code);
/* The first run of a ready stream: its virtual connection is made and reads the head. */
void nk__h2s_run(nk__h2s *s);
/* After its frame with END_STREAM went out: a request still sending is told to stop. */
void nk__h2s_sent_end(nk__h2s *s);
int nk__h2s_discard(nk__h2s *s, size_t len);
/* A DATA frame of s (NO_COPY): its header and payload appended to out. */
int nk__h2s_send_data(nk__h2s *s, nk_buf *out, const uint8_t *framehd, size_t length);

#endif
