/* Message framing over byte streams.
 *
 * TCP delivers bytes, not messages: one send may arrive in pieces and several sends may
 * arrive as one read ("sticky packets"). A framing puts the boundaries back:
 *   NK_FRAME_LINE   each message ends with "\n" (a "\r" before it is dropped on decoding)
 *   NK_FRAME_LEN32  a 4-byte big-endian length, then that many payload bytes
 * The decoder is incremental: feed it whatever arrived, then take messages until it needs
 * more. Any split of the same bytes yields the same messages. A message over the configured
 * maximum is an error (-EMSGSIZE) detected before anything is allocated for it.
 */
#ifndef NETKIT_FRAME_H
#define NETKIT_FRAME_H

#include <stddef.h>
#include <netkit/buf.h>
#include <errno.h>
#include <netkit/api.h>

#ifdef __cplusplus
extern "C" {
#endif
NK_API_BEGIN

typedef enum nk_frame_kind { NK_FRAME_LINE = 1, NK_FRAME_LEN32 = 2 } nk_frame_kind;

typedef struct nk_frame_decoder {
    nk_frame_kind kind;
    size_t max;      /* largest payload accepted */
    nk_buf in;       /* private: buffered, not yet decoded bytes */
    size_t scanned;  /* private: LINE: bytes already searched for "\n" */
    int failed;      /* private: sticky error */
} nk_frame_decoder;

/* Parse "line" or "len32". Returns the kind or -EINVAL. */
int nk_frame_kind_parse(const char *name);

/* Append one framed message to out. LINE: -EINVAL if msg contains "\n". -EMSGSIZE when over
 * max (0: no limit other than 2^32-1 for LEN32). */
int nk_frame_encode(nk_frame_kind kind, const void *msg, size_t len, size_t max, nk_buf *out);

/* max 0: no limit other than 2^32-1 for LEN32. */
void nk_frame_decoder_init(nk_frame_decoder *d, nk_frame_kind kind, size_t max);
void nk_frame_decoder_free(nk_frame_decoder *d);
/* Buffer more input. -EMSGSIZE if the data can only become a message over max. */
int nk_frame_feed(nk_frame_decoder *d, const void *data, size_t len);
/* Take the next whole message: returns 1 and sets *msg and *len (valid until the next call to
 * feed or next), 0 when more input is needed, or a negative error (sticky). */
int nk_frame_next(nk_frame_decoder *d, const char **msg, size_t *len);
/* Bytes buffered but not yet returned (an incomplete message at end of stream). */
size_t nk_frame_pending(const nk_frame_decoder *d);

NK_API_END
#ifdef __cplusplus
}
#endif

#endif
