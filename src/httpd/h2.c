/* The HTTP/2 session of a connection (see h2.h): frames in through nghttp2, frames out
 * through the connection's transport, the streams' virtual connections run in between.
 *
 * One pass of the I/O handler: write what waits, read a bounded batch of frames, run the
 * streams that became ready (their requests are answered into their buffers), then let
 * nghttp2 frame everything into one buffer written with one call, so a small file's HEADERS
 * and DATA of many streams leave together. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "httpd/h2.h"

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_READ_BATCH 4               /* reads per event: one client cannot hold the loop */
#define H2_OUT_HIGH (128u * 1024)     /* frames buffered before the transport must take them */
#define H2_STREAM_WINDOW (256 * 1024) /* per stream: an upload streams without waiting */
#define H2_CONN_WINDOW (1024 * 1024)  /* per connection: what all its uploads may buffer */
#define H2_RUN_ROUNDS 8               /* stream runs and frame writes per event */

int nk__h2_preface(const char *p, size_t n)
{
    size_t k = sizeof H2_PREFACE - 1;
    if (memcmp(p, H2_PREFACE, n < k ? n : k) != 0)
        return 0;
    return n >= k ? 1 : -EAGAIN;
}

/* ---- streams that are ready to run ---------------------------------------------------------- */

void nk__h2_schedule(nk__h2 *h)
{
    if (h && !h->in_io)
        nk__conn_kick(h->c);
}

void nk__h2_ready(nk__h2s *s)
{
    nk__h2 *h = s->h2;
    if (!h || s->on_ready)
        return;
    s->on_ready = 1;
    s->ready_next = NULL;
    if (h->ready_tail)
        h->ready_tail->ready_next = s;
    else
        h->ready = s;
    h->ready_tail = s;
    nk__h2_schedule(h);
}

static nk__h2s *ready_pop(nk__h2 *h)
{
    nk__h2s *s = h->ready;
    if (!s)
        return NULL;
    h->ready = s->ready_next;
    if (!h->ready)
        h->ready_tail = NULL;
    s->ready_next = NULL;
    s->on_ready = 0;
    return s;
}

/* Those ready now, once each: a stream that becomes ready again waits for the next round. */
static void run_ready(nk__h2 *h)
{
    unsigned n = 0;
    for (const nk__h2s *s = h->ready; s; s = s->ready_next)
        n++;
    while (n-- && h->ready) {
        nk__h2s *s = ready_pop(h);
        if (!s->vc_started)
            nk__h2s_run(s);
        else if (s->vc)
            nk__conn_run(s->vc, s->want ? s->want : NK_READ);
    }
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------------ */

static nk__h2s *stream_of(nghttp2_session *ng, int32_t id)
{
    return nghttp2_session_get_stream_user_data(ng, id);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    nk__h2 *h = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h->got_frame = 1;
    if (h->c->srv->h2_streams_open >= h->c->srv->cfg.max_conns) {
        /* Each stream in progress holds what an HTTP/1.1 connection does: past max_conns of
         * them in the whole engine, new ones are refused (the client may retry them). */
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    nk__h2s *s = nk__h2s_new(h, f->hd.stream_id);
    if (!s)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM: INTERNAL_ERROR */
    nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, s);
    h->streams_begun++;
    NK__COUNT(h->c->srv, h2_streams, 1);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)flags;
    nk__h2 *h = ud;
    nk__h2s *s = stream_of(ng, f->hd.stream_id);
    if (!s || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (f->headers.cat != NGHTTP2_HCAT_REQUEST) {
        /* Trailers: nothing here reads them, but they are bounded like the head. */
        s->decoded += nlen + vlen + 32;
        if (s->decoded > 4 * (size_t)h->c->srv->cfg.limits.max_head + 65536) {
            h->calm = 1;
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        return 0;
    }
    int r = nk__h2s_header(s, name, nlen, value, vlen);
    if (r == NGHTTP2_ERR_CALLBACK_FAILURE)
        h->calm = 1;
    return r;
}

/* ---- RFC 9113 rules nghttp2 leaves to the application ------------------------------------------
 * Without RFC 7540 priorities nghttp2 keeps no closed streams and skips PRIORITY frames, so
 * frames on closed streams and PRIORITY errors are found here; and a SETTINGS change that
 * overflows a stream's window is a connection error (section 6.9.2), not a stream one. */

static int reset_by_us(const nk__h2 *h, int32_t id)
{
    if (!h->reset_ids)
        return 0;
    for (unsigned i = 0; i < NK__H2_RESET_RING; i++)
        if (h->reset_ids[i] == id)
            return 1;
    return 0;
}

static void remember_reset(nk__h2 *h, int32_t id)
{
    if (!h->reset_ids && !(h->reset_ids = calloc(NK__H2_RESET_RING, sizeof *h->reset_ids)))
        return; /* without memory, frames on it may be taken for errors: the peer's loss */
    h->reset_ids[h->reset_next++ % NK__H2_RESET_RING] = id;
}

static int fatal(nk__h2 *h, uint32_t code)
{
    h->fatal = code;
    return NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *ud)
{
    nk__h2 *h = ud;
    if (hd->type == NGHTTP2_PRIORITY && hd->stream_id == 0)
        return fatal(h, NGHTTP2_PROTOCOL_ERROR); /* section 6.3 */
    if ((hd->type != NGHTTP2_DATA && hd->type != NGHTTP2_HEADERS) || !(hd->stream_id & 1) ||
        hd->stream_id > nghttp2_session_get_last_proc_stream_id(ng) ||
        nghttp2_session_find_stream(ng, hd->stream_id) || reset_by_us(h, hd->stream_id))
        return 0;
    /* Section 5.1: a closed stream (frames after our RST_STREAM are ignored: they may have
     * been in flight); section 5.1.1: HEADERS cannot open a stream below one already used. */
    return fatal(h, hd->type == NGHTTP2_DATA ? NGHTTP2_STREAM_CLOSED : NGHTTP2_PROTOCOL_ERROR);
}

static int settings_overflow(nk__h2 *h)
{
    uint32_t now = nghttp2_session_get_remote_settings(h->ng, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE);
    int64_t delta = (int64_t)now - (int64_t)h->peer_window;
    h->peer_window = now;
    if (delta <= 0)
        return 0;
    for (const nk__h2s *s = h->streams; s; s = s->next) {
        if (s->ng_closed)
            continue;
        int32_t w = nghttp2_session_get_stream_remote_window_size(h->ng, s->id);
        /* nghttp2 leaves a window it could not grow as it was (and resets the stream). */
        if (w >= 0 && (int64_t)w + delta > INT32_MAX)
            return 1;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    nk__h2 *h = ud;
    h->got_frame = 1;
    if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK)) {
        if (settings_overflow(h))
            return fatal(h, NGHTTP2_FLOW_CONTROL_ERROR);
        return 0;
    }
    if (f->hd.type == NGHTTP2_PRIORITY) {
        if (f->priority.pri_spec.stream_id == f->hd.stream_id) /* section 5.3.1 */
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                                      NGHTTP2_PROTOCOL_ERROR);
        return 0;
    }
    nk__h2s *s = f->hd.stream_id ? stream_of(ng, f->hd.stream_id) : NULL;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        if (!s)
            break;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST)
            return nk__h2s_head_end(s, (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
            nk__h2s_body_end(s);
        break;
    case NGHTTP2_DATA:
        if (s && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            nk__h2s_body_end(s);
        break;
    case NGHTTP2_RST_STREAM:
        NK__COUNT(h->c->srv, h2_resets, 1);
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    nk__h2s *s = stream_of(ng, id);
    if (!s || (s->vc_started && !s->vc)) {
        /* Nobody will read it: the windows get it back at once. */
        nghttp2_session_consume(ng, id, len);
        if (s && s->answered)
            nk__h2s_discard(s, len);
        return 0;
    }
    return nk__h2s_data(s, data, len);
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    (void)ud;
    nk__h2s *s = stream_of(ng, id);
    if (s) {
        nghttp2_session_set_stream_user_data(ng, id, NULL);
        nk__h2s_stream_closed(s, code);
    }
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    if (f->hd.type == NGHTTP2_RST_STREAM)
        remember_reset(ud, f->hd.stream_id);
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        nk__h2s *s = stream_of(ng, f->hd.stream_id);
        if (s)
            nk__h2s_sent_end(s);
    }
    return 0;
}

static int send_data(nghttp2_session *ng, nghttp2_frame *f, const uint8_t *framehd,
                     size_t length, nghttp2_data_source *src, void *ud)
{
    (void)ng;
    nk__h2 *h = ud;
    if (f->data.padlen) /* no padding is ever chosen for what we send */
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return nk__h2s_send_data(src->ptr, &h->out, framehd, length) < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE
                                                                     : 0;
}

/* DATA frames as large as the client allows (SETTINGS_MAX_FRAME_SIZE) and the windows let
 * through, up to 64 KiB: fewer frames and writes for large bodies. */
static ssize_t data_length(nghttp2_session *ng, uint8_t type, int32_t id, int32_t conn_window,
                           int32_t stream_window, uint32_t max_frame, void *ud)
{
    (void)ng;
    (void)type;
    (void)id;
    (void)ud;
    int64_t n = 65536;
    if (n > conn_window)
        n = conn_window;
    if (n > stream_window)
        n = stream_window;
    if (n > (int64_t)max_frame)
        n = max_frame;
    return n > 0 ? (ssize_t)n : 1;
}

static int make_session(nk__h2 *h)
{
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -ENOMEM;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return -ENOMEM;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_send_data_callback(cb, send_data);
    nghttp2_session_callbacks_set_data_source_read_length_callback(cb, data_length);
    /* Request bodies give their window back only as the handler reads them, so a client
     * cannot make the server buffer more than the windows below. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* CVE-2023-44487 (rapid reset): past a burst of 1000 resets, 33 a second. */
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
    nghttp2_option_set_max_continuations(opt, 8);
    int rv = nghttp2_session_server_new2(&h->ng, cb, h, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0)
        return -ENOMEM;
    const nk_httpd *srv = h->c->srv;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, srv->h2_max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)srv->cfg.limits.max_head + 4096},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        /* RFC 9218: the priority field and PRIORITY_UPDATE, which nghttp2 schedules by. */
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    if (nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
        nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0)
        return -ENOMEM;
    return 0;
}

/* ---- I/O ------------------------------------------------------------------------------------ */

/* Write what waits: 0 (all written, or the socket is full), negative on error. */
static int write_out(nk__h2 *h)
{
    nk__conn *c = h->c;
    while (nk_buf_len(&h->out)) {
        ssize_t n = nk__xp_send(c, nk_buf_rptr(&h->out), nk_buf_len(&h->out), 0);
        if (n == -EAGAIN)
            return 0;
        if (n <= 0)
            return n < 0 ? (int)n : -EIO;
        nk_buf_consume(&h->out, (size_t)n);
    }
    /* An idle connection keeps no buffer (HTTP/1.1's give theirs back to the pool too). */
    nk_buf_release(&h->out);
    return 0;
}

/* Let nghttp2 frame what it has, then write: negative on error. */
static int send_frames(nk__h2 *h)
{
    for (;;) {
        while (nk_buf_len(&h->out) < H2_OUT_HIGH) {
            const uint8_t *p;
            ssize_t n = nghttp2_session_mem_send(h->ng, &p);
            if (n < 0)
                return -EPROTO;
            if (n == 0)
                break;
            if (nk_buf_append(&h->out, (const char *)p, (size_t)n) < 0)
                return -ENOMEM;
        }
        size_t before = nk_buf_len(&h->out);
        int r = write_out(h);
        if (r < 0)
            return r;
        if (nk_buf_len(&h->out) || before < H2_OUT_HIGH)
            return 0; /* the socket is full, or nghttp2 had no more */
    }
}

/* Give bytes to nghttp2: negative (an nghttp2 error) when the session cannot go on. */
static int recv_bytes(nk__h2 *h, const uint8_t *p, size_t n)
{
    if (!n)
        return 0;
    ssize_t used = nghttp2_session_mem_recv(h->ng, p, n);
    return used < 0 ? (int)used : 0;
}

/* Checked at the start of a DATA frame, with everything before it processed (section 5.1):
 * DATA on a stream that was closed, and not by our RST_STREAM, is an error. */
static int data_on_closed(nk__h2 *h, uint32_t id)
{
    return id && (id & 1) && id <= (uint32_t)nghttp2_session_get_last_proc_stream_id(h->ng) &&
           !nghttp2_session_find_stream(h->ng, (int32_t)id) && !reset_by_us(h, (int32_t)id);
}

/* Bytes from the client to nghttp2, walking the frame headers on the way (payloads are not
 * read, except a PRIORITY frame's 5 bytes). 0, or negative when the session must end. */
static int feed(nk__h2 *h, const uint8_t *p, size_t n)
{
    size_t start = 0, i = 0, hdr_at = 0;
    while (i < n) {
        if (h->sc_preface) {
            size_t k = n - i < h->sc_preface ? n - i : h->sc_preface;
            h->sc_preface = (unsigned char)(h->sc_preface - k);
            i += k;
            continue;
        }
        if (h->sc_skip) {
            size_t k = n - i < h->sc_skip ? n - i : h->sc_skip;
            if (h->sc_type == NGHTTP2_PRIORITY && h->sc_plen < 5) {
                size_t want = 5u - h->sc_plen;
                k = k < want ? k : want;
                memcpy(h->sc_pri + h->sc_plen, p + i, k);
                h->sc_plen = (unsigned char)(h->sc_plen + k);
                uint32_t dep = ((uint32_t)h->sc_pri[0] << 24 | (uint32_t)h->sc_pri[1] << 16 |
                                (uint32_t)h->sc_pri[2] << 8 | h->sc_pri[3]) & 0x7fffffffu;
                /* Section 5.3.1: a stream cannot depend on itself (nghttp2 skips PRIORITY
                 * frames once RFC 7540 priorities are off). */
                if (h->sc_plen == 5 && dep == h->sc_id) {
                    int r = recv_bytes(h, p + start, i + k - start);
                    if (r < 0)
                        return r;
                    h->fatal = NGHTTP2_PROTOCOL_ERROR;
                    return NGHTTP2_ERR_CALLBACK_FAILURE;
                }
            }
            h->sc_skip -= (uint32_t)k;
            i += k;
            continue;
        }
        if (h->sc_hlen == 0)
            hdr_at = i;
        size_t k = 9u - h->sc_hlen < n - i ? 9u - h->sc_hlen : n - i;
        memcpy(h->sc_hdr + h->sc_hlen, p + i, k);
        h->sc_hlen = (unsigned char)(h->sc_hlen + k);
        i += k;
        if (h->sc_hlen < 9)
            continue;
        h->sc_hlen = 0;
        const unsigned char *f = h->sc_hdr;
        h->sc_skip = (uint32_t)f[0] << 16 | (uint32_t)f[1] << 8 | f[2];
        h->sc_type = f[3];
        h->sc_id = ((uint32_t)f[5] << 24 | (uint32_t)f[6] << 16 | (uint32_t)f[7] << 8 | f[8]) &
                   0x7fffffffu;
        h->sc_plen = 0;
        if (h->sc_type != NGHTTP2_DATA)
            continue;
        /* What precedes this frame first, so that the stream's state is current. */
        int r = recv_bytes(h, p + start, hdr_at - start);
        if (r < 0)
            return r;
        start = hdr_at;
        if (data_on_closed(h, h->sc_id)) {
            h->fatal = NGHTTP2_STREAM_CLOSED;
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
    }
    return recv_bytes(h, p + start, n - start);
}

/* Feed what the transport has to nghttp2: 1 read something, 0 nothing, -1 the peer left or
 * broke the protocol (whatever nghttp2 queued in answer, GOAWAY, is still sent). */
static int read_frames(nk__h2 *h)
{
    char buf[16384];
    int got = 0;
    for (int i = 0; i < H2_READ_BATCH; i++) {
        ssize_t n = nk__xp_recv(h->c, buf, sizeof buf);
        if (n == -EAGAIN)
            return got;
        if (n <= 0)
            return -1;
        got = 1;
        int used = feed(h, (const uint8_t *)buf, (size_t)n);
        if (used < 0) {
            /* Fatal for the session: nghttp2 queued a GOAWAY for protocol errors; for ours
             * (a header flood) and for a bad preface, say why here. */
            uint32_t code = h->fatal ? h->fatal
                            : h->calm || used == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM
                                                                     : NGHTTP2_PROTOCOL_ERROR;
            nghttp2_session_terminate_session(h->ng, code);
            return -1;
        }
        if ((size_t)n < sizeof buf)
            break;
    }
    return got;
}

static int session_done(const nk__h2 *h)
{
    return !nghttp2_session_want_read(h->ng) && !nghttp2_session_want_write(h->ng) &&
           nk_buf_len(&h->out) == 0;
}

/* A last attempt to say why (GOAWAY), without waiting for the socket. */
static void close_with_goaway(nk__h2 *h)
{
    nk__conn *c = h->c;
    (void)send_frames(h);
    nk__conn_close(c);
}

void nk__h2_on_io(nk__conn *c, unsigned events)
{
    nk__h2 *h = nk__conn_h2(c);
    h->in_io = 1;
    if (c->tls && (events & NK_WRITE))
        events |= NK_READ; /* a TLS read may have waited for the socket to take a write */
    int progress = 0;
    if (nk_buf_len(&h->out)) {
        size_t before = nk_buf_len(&h->out);
        if (write_out(h) < 0) {
            nk__conn_close(c);
            return;
        }
        progress = nk_buf_len(&h->out) < before;
    }
    if ((events & (NK_READ | NK_ERROR)) && nk_buf_len(&h->out) < H2_OUT_HIGH) {
        int r = read_frames(h);
        if (r < 0) {
            h->in_io = 0;
            close_with_goaway(h);
            return;
        }
    }
    for (int round = 0; round < H2_RUN_ROUNDS; round++) {
        run_ready(h);
        if (nk__conn_h2(c) != h)
            return; /* closed under a stream's run (cannot happen today; cheap to check) */
        size_t before = nk_buf_len(&h->out);
        if (send_frames(h) < 0) {
            h->in_io = 0;
            nk__conn_close(c);
            return;
        }
        if (nk_buf_len(&h->out) != before)
            progress = 1;
        if (!h->ready || nk_buf_len(&h->out))
            break;
    }
    h->in_io = 0;
    if (session_done(h)) {
        nk__conn_close(c);
        return;
    }
    if (progress && h->phase == NK__PHASE_WRITE)
        h->phase = NK__PHASE_NONE; /* renew the send deadline */
    nk__h2_update(c);
    if (h->ready)
        nk__conn_kick(c);
}

void nk__h2_update(nk__conn *c)
{
    nk__h2 *h = nk__conn_h2(c);
    nk_httpd *srv = c->srv;
    unsigned ev = 0;
    int pending = nk_buf_len(&h->out) != 0;
    if (nghttp2_session_want_read(h->ng) && !pending)
        ev |= NK_READ;
    if (pending || nk__conn_tls_want_write(c))
        ev |= NK_WRITE;
    nk_io_start(srv->loop, &c->io, ev);
    if ((ev & NK_READ) && nk__xp_pending(c))
        nk__conn_kick(c); /* plaintext already inside OpenSSL raises no readiness event */
    nk__phase phase;
    if (pending || (!h->nvc && h->nstreams))
        phase = NK__PHASE_WRITE; /* for the socket, or for the client's windows to open */
    else if (h->nvc)
        phase = NK__PHASE_WAIT; /* the streams' connections have their own deadlines */
    else
        phase = h->got_frame ? NK__PHASE_IDLE : NK__PHASE_HEAD;
    /* Like HTTP/1.1's, the idle deadline runs from the last request, not the first. */
    if (phase == h->phase && h->streams_begun == h->timer_streams)
        return;
    h->phase = (unsigned char)phase;
    h->timer_streams = h->streams_begun;
    unsigned ms = phase == NK__PHASE_WRITE  ? srv->cfg.send_timeout_ms
                  : phase == NK__PHASE_IDLE ? srv->cfg.idle_timeout_ms
                  : phase == NK__PHASE_HEAD ? srv->cfg.header_timeout_ms
                                            : 0;
    if (ms)
        nk_timer_start(srv->loop, &c->timer, ms, 0);
    else
        nk_timer_stop(srv->loop, &c->timer);
}

void nk__h2_on_timer(nk__conn *c)
{
    nk__h2 *h = nk__conn_h2(c);
    if (h->phase == NK__PHASE_IDLE || h->phase == NK__PHASE_HEAD) {
        /* RFC 9113 section 6.8: an idle connection is closed with a GOAWAY that says so. */
        nghttp2_session_terminate_session(h->ng, NGHTTP2_NO_ERROR);
        close_with_goaway(h);
        return;
    }
    nk__conn_close(c); /* the client does not read what is sent: nothing more to say */
}

void nk__h2_shutdown(nk__conn *c)
{
    nk__h2 *h = nk__conn_h2(c);
    if (!h->goaway) {
        /* Streams begun so far finish; later ones are refused and may be retried elsewhere. */
        h->goaway = 1;
        nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(h->ng), NGHTTP2_NO_ERROR,
                              NULL, 0);
    }
    if (!h->in_io)
        nk__h2_on_io(c, 0);
}

int nk__h2_start(nk__conn *c, const char *early, size_t n)
{
    nk__h2 *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->c = c;
    h->peer_window = 65535; /* RFC 9113 section 6.9.2 */
    h->sc_preface = 24;
    nk_buf_init(&h->out, 0);
    int r = make_session(h);
    if (r < 0) {
        if (h->ng)
            nghttp2_session_del(h->ng);
        free(h);
        return r;
    }
    nk__conn_set_h2(c, h);
    NK__COUNT(c->srv, h2_connections, 1);
    if (n && feed(h, (const uint8_t *)early, n) < 0)
        return -EPROTO;
    return 0;
}

void nk__h2_free(nk__conn *c)
{
    nk__h2 *h = nk__conn_h2(c);
    if (!h)
        return;
    /* The streams' virtual connections end first (uploads are undone, LATER exchanges
     * detached); a stream whose connection cannot end now outlives the session alone. */
    while (h->streams) {
        nk__h2s *s = h->streams;
        h->streams = s->next;
        s->prev = s->next = NULL;
        s->h2 = NULL;
        s->on_ready = 0;
        h->nstreams--;
        if (s->vc) {
            h->nvc--;
            nk__conn_close(s->vc);
        } /* frees s through nk__h2s_conn_closed */
        else
            nk__h2s_free(s);
    }
    nghttp2_session_del(h->ng);
    nk_buf_free(&h->out);
    free(h->reset_ids);
    nk__conn_set_h2(c, NULL);
    free(h);
}
