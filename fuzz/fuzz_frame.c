/* libFuzzer target for the framing decoders (src/frame/frame.c), both LINE and LEN32.
 *
 * Input: byte 0 picks the kind (bit 0) and the limit (bits 1-3); byte 1 a cut point; byte 2
 * a piece size; the rest is the stream. The stream is decoded three ways: fed whole, cut in
 * two at the cut point, and in pieces of 1..16 bytes, taking every available message after
 * each feed as a real reader does. frame.h promises that any split of the same bytes yields
 * the same messages, so all three must agree on the messages, on the error (if any), and, when
 * there is none, on the bytes left pending. Every message must respect the limit (and hold no
 * "\n" for LINE), and, without an error, re-encoding the messages must reproduce the stream's
 * consumed prefix for LEN32.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netkit/frame.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

/* Messages decoded so far, each stored as a 4-byte length then its bytes. */
struct result {
    nk_buf msgs;
    size_t count;
    int err;        /* 0 or the first negative error from feed or next */
    size_t pending; /* nk_frame_pending at the end, meaningful when err == 0 */
};

static void record(struct result *r, const char *msg, size_t len, nk_frame_kind kind, size_t max)
{
    check(kind != NK_FRAME_LINE || memchr(msg, '\n', len) == NULL);
    check(max == 0 || len <= max);
    check(len <= UINT32_MAX);
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                      (uint8_t)len};
    if (nk_buf_append(&r->msgs, hdr, 4) < 0 || nk_buf_append(&r->msgs, msg, len) < 0)
        abort();
    r->count++;
}

/* Take messages until the decoder needs more input; returns the error from next, if any. */
static int drain(nk_frame_decoder *d, struct result *r, size_t max)
{
    for (;;) {
        const char *msg;
        size_t len;
        int rc = nk_frame_next(d, &msg, &len);
        if (rc == 1) {
            record(r, msg, len, d->kind, max);
            continue;
        }
        check(rc <= 0);
        return rc;
    }
}

/* Feed [0, cut) first, then pieces of step bytes (0: all the rest at once). */
static void decode(nk_frame_kind kind, size_t max, const uint8_t *in, size_t len, size_t cut,
                   size_t step, struct result *r)
{
    nk_frame_decoder d;
    nk_frame_decoder_init(&d, kind, max);
    memset(r, 0, sizeof *r);
    nk_buf_init(&r->msgs, 0);
    size_t off = 0;
    while (off < len) {
        size_t end = off < cut ? cut : (step ? off + step : len);
        if (end > len)
            end = len;
        size_t n = end - off;
        /* An exact-size copy of each piece, so ASan catches reads past it. */
        char *piece = malloc(n);
        if (!piece)
            abort();
        memcpy(piece, in + off, n);
        int frc = nk_frame_feed(&d, piece, n);
        free(piece);
        check(frc <= 0);
        int nrc = drain(&d, r, max);
        if (frc < 0 || nrc < 0) {
            /* Messages complete before the failure are handed out before the sticky error. */
            r->err = frc < 0 ? frc : nrc;
            check(nrc == r->err);
            break;
        }
        off = end;
    }
    if (!r->err)
        r->pending = nk_frame_pending(&d);
    check(r->err == 0 || r->err == -EMSGSIZE);
    nk_frame_decoder_free(&d);
}

static void same(const struct result *a, const struct result *b)
{
    check(a->err == b->err);
    check(a->count == b->count);
    check(nk_buf_len(&a->msgs) == nk_buf_len(&b->msgs));
    check(memcmp(nk_buf_rptr(&a->msgs), nk_buf_rptr(&b->msgs), nk_buf_len(&a->msgs)) == 0);
    if (a->err == 0)
        check(a->pending == b->pending);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    static const size_t maxes[] = {0, 1, 2, 3, 8, 64, 1000, 65536};
    nk_frame_kind kind = (data[0] & 1) ? NK_FRAME_LEN32 : NK_FRAME_LINE;
    size_t max = maxes[(data[0] >> 1) & 7];
    const uint8_t *in = data + 3;
    size_t len = size - 3;
    size_t cut = len ? data[1] % (len + 1) : 0;
    size_t step = (size_t)(data[2] % 16) + 1;

    struct result whole, split, pieces;
    decode(kind, max, in, len, 0, 0, &whole);
    decode(kind, max, in, len, cut, 0, &split);
    decode(kind, max, in, len, 0, step, &pieces);
    same(&whole, &split);
    same(&whole, &pieces);

    if (whole.err == 0) {
        /* Without an error every byte is either in a message or pending. For LEN32 the
         * messages re-encoded are exactly the consumed prefix of the stream. */
        if (kind == NK_FRAME_LEN32) {
            size_t used = len - whole.pending;
            check(nk_buf_len(&whole.msgs) == used);
            check(memcmp(nk_buf_rptr(&whole.msgs), in, used) == 0);
        } else {
            check(whole.pending <= len);
        }
        /* Encoding the decoded messages and decoding that gives them back. LINE drops one "\r"
         * before the "\n", so a message that itself ends in "\r" cannot round-trip: skip. */
        int lossy = 0;
        nk_buf enc;
        nk_buf_init(&enc, 0);
        const uint8_t *p = (const uint8_t *)nk_buf_rptr(&whole.msgs);
        size_t left = nk_buf_len(&whole.msgs);
        while (left >= 4) {
            size_t n = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
            int rc = nk_frame_encode(kind, p + 4, n, max, &enc);
            check(rc == 0);
            if (kind == NK_FRAME_LINE && n && p[4 + n - 1] == '\r')
                lossy = 1;
            p += 4 + n;
            left -= 4 + n;
        }
        if (!lossy) {
            struct result again;
            decode(kind, max, (const uint8_t *)nk_buf_rptr(&enc), nk_buf_len(&enc), 0, 0, &again);
            check(again.err == 0 && again.pending == 0);
            again.pending = whole.pending; /* the re-encoding has no unfinished tail */
            same(&whole, &again);
            nk_buf_free(&again.msgs);
        }
        nk_buf_free(&enc);
    }
    nk_buf_free(&whole.msgs);
    nk_buf_free(&split.msgs);
    nk_buf_free(&pieces.msgs);
    return 0;
}
