/* The file-transfer protocol's messages ("netkit file send/recv"; docs/file-protocol.md).
 *
 * Every message travels in one NK_FRAME_LEN32 frame; its first byte is its type. These are pure
 * functions over byte arrays: they never touch a socket or a file, so that every malformed
 * input can be tested and fuzzed. Decoding is strict (reserved bits zero, exact lengths, names
 * checked), which makes it the inverse of encoding: a message that decodes re-encodes to the
 * very same bytes.
 *
 *   'H' header    sender -> receiver, one per file:
 *                 'H' u8 version(1) u8 flags u8 reserved(0) u64 size u32 mode u8[32] sha256
 *                 u16 name_len, name bytes                        (integers big-endian)
 *   'G' go        receiver -> sender: u64 offset; send the file's bytes from offset on.
 *                 After a header with NK_XFER_F_PREFIX the long form: u64 offset, then the
 *                 SHA-256 of the receiver's bytes [0, offset), for the sender to check
 *   'R' restart   sender -> receiver, no payload, only right after a long 'G' with
 *                 0 < offset < size: those bytes are not a prefix of my file; drop them,
 *                 the data starts at byte 0
 *   'D' data      sender -> receiver: the next bytes of the file (1 .. NK_XFER_DATA_MAX)
 *   'V' verdict   receiver -> sender: u8 code, then a reason (0 .. NK_XFER_REASON_MAX
 *                 printable ASCII bytes); code NK_XFER_OK means the file is in place
 */
#ifndef NETKIT_XFER_H
#define NETKIT_XFER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <errno.h>
#include <netkit/api.h>

#ifdef __cplusplus
extern "C" {
#endif
NK_API_BEGIN

#define NK_XFER_VERSION 1
#define NK_XFER_NAME_MAX 255      /* a file name component on Linux */
#define NK_XFER_REASON_MAX 200    /* one line of text for the sender */
#define NK_XFER_DATA_MAX 65536    /* payload bytes of one 'D' message */
#define NK_XFER_HASH_LEN 32       /* SHA-256 */
#define NK_XFER_HEADER_FIXED 50   /* header bytes before the name */
/* Largest message of any type: a frame decoder's limit. */
#define NK_XFER_MSG_MAX (1 + NK_XFER_DATA_MAX)
#define NK_XFER_GO_LEN 9                               /* 'G' u64 */
#define NK_XFER_GO_PREFIX_LEN (9 + NK_XFER_HASH_LEN)   /* 'G' u64 sha256 */

enum {
    NK_XFER_MSG_HEADER = 'H',
    NK_XFER_MSG_GO = 'G',
    NK_XFER_MSG_DATA = 'D',
    NK_XFER_MSG_VERDICT = 'V',
    NK_XFER_MSG_RESTART = 'R',
};

/* Header flags. */
enum {
    NK_XFER_F_RESUME = 1u << 0, /* the sender can skip bytes the receiver already has */
    /* With RESUME only: the sender checks what the receiver has before it skips it (long 'G',
     * 'R'), so that a partial file someone else left cannot spoil the transfer. */
    NK_XFER_F_PREFIX = 1u << 1,
    NK_XFER_F_ALL = NK_XFER_F_RESUME | NK_XFER_F_PREFIX,
};

/* Verdict codes. */
enum {
    NK_XFER_OK = 0,
    NK_XFER_E_NAME = 1,     /* the name is not a plain file name */
    NK_XFER_E_EXISTS = 2,   /* a file of that name exists and --overwrite was not given */
    NK_XFER_E_HASH = 3,     /* the bytes do not have the announced SHA-256 */
    NK_XFER_E_SIZE = 4,     /* more or fewer bytes than announced */
    NK_XFER_E_IO = 5,       /* the receiver could not write the file */
    NK_XFER_E_BUSY = 6,     /* another connection is receiving the same file */
    NK_XFER_E_PROTO = 7,    /* a message out of place or malformed */
    NK_XFER_E_MAX = 7,
};

typedef struct nk_xfer_header {
    uint8_t flags;                   /* NK_XFER_F_* */
    uint64_t size;                   /* bytes in the file, at most 2^63-1 */
    uint32_t mode;                   /* permission bits, at most 07777 */
    uint8_t sha256[NK_XFER_HASH_LEN];
    size_t name_len;
    char name[NK_XFER_NAME_MAX + 1]; /* NUL-terminated copy of the name */
} nk_xfer_header;

/* 1 when name[0..len) may be created inside the receiving directory: 1 to NK_XFER_NAME_MAX
 * bytes, no "/", "\", NUL or control character, no leading "." (no hidden files, and so no "."
 * or ".."), no ".." anywhere. 0 otherwise. */
int nk_xfer_name_valid(const char *name, size_t len);

/* Type of a message (its first byte), or -EBADMSG for an empty message or an unknown type. */
int nk_xfer_msg_type(const void *msg, size_t len);

/* Encoders write one whole message into out[0..cap) and return its length; -ENOSPC when cap
 * is too small, -EINVAL when a field is out of range (bad name, unknown flags, mode > 07777,
 * size > 2^63-1, NK_XFER_F_PREFIX without NK_XFER_F_RESUME, unknown verdict code, reason too long or not printable). */
ssize_t nk_xfer_header_encode(const nk_xfer_header *h, void *out, size_t cap);
ssize_t nk_xfer_go_encode(uint64_t offset, void *out, size_t cap);
ssize_t nk_xfer_go_prefix_encode(uint64_t offset, const uint8_t prefix[NK_XFER_HASH_LEN],
                                 void *out, size_t cap);
ssize_t nk_xfer_restart_encode(void *out, size_t cap);
ssize_t nk_xfer_verdict_encode(int code, const char *reason, void *out, size_t cap);

/* Decoders take one whole message and return 0, or -EBADMSG when it is not exactly a valid
 * message of that type (wrong type byte, wrong length, version, reserved bits, flags, mode,
 * size, name, code or reason); the outputs are unspecified after an error. The verdict's reason is copied
 * NUL-terminated into reason[0..reason_cap) (reason_cap >= NK_XFER_REASON_MAX + 1 holds any). */
int nk_xfer_header_decode(const void *msg, size_t len, nk_xfer_header *out);
int nk_xfer_go_decode(const void *msg, size_t len, uint64_t *offset);
int nk_xfer_go_prefix_decode(const void *msg, size_t len, uint64_t *offset,
                             uint8_t prefix[NK_XFER_HASH_LEN]);
int nk_xfer_restart_decode(const void *msg, size_t len);
int nk_xfer_verdict_decode(const void *msg, size_t len, int *code, char *reason,
                           size_t reason_cap);

/* A short English text for a verdict code ("ok", "bad name", ...). Never NULL. */
const char *nk_xfer_code_name(int code);

NK_API_END
#ifdef __cplusplus
}
#endif

#endif
