/* The file-transfer protocol's messages: strict encoders and decoders (include/netkit/xfer.h).
 *
 * Strictness is the point: the receiver decides what to create on disk from a header, so
 * anything that is not exactly a well-formed header is refused here, before any file is
 * touched. Every length is checked before the bytes it covers are read.
 */
#include <netkit/xfer.h>

#include <errno.h>
#include <string.h>

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

static uint64_t get_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

int nk_xfer_name_valid(const char *name, size_t len)
{
    if (!name || len == 0 || len > NK_XFER_NAME_MAX)
        return 0;
    /* A leading dot would make hidden files and allows "." and ".."; the receiver's own
     * temporary files start with a dot too, so no sender can name one of them. */
    if (name[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f)
            return 0;
        if (c == '.' && i + 1 < len && name[i + 1] == '.')
            return 0;
    }
    return 1;
}

int nk_xfer_msg_type(const void *msg, size_t len)
{
    if (!msg || len == 0)
        return -EBADMSG;
    switch (((const unsigned char *)msg)[0]) {
    case NK_XFER_MSG_HEADER:
    case NK_XFER_MSG_GO:
    case NK_XFER_MSG_DATA:
    case NK_XFER_MSG_VERDICT:
    case NK_XFER_MSG_RESTART:
        return ((const unsigned char *)msg)[0];
    default:
        return -EBADMSG;
    }
}

/* Sizes travel as u64 but files (off_t) cannot pass 2^63-1. */
#define XFER_SIZE_MAX ((uint64_t)INT64_MAX)

/* Known bits only, and PREFIX only with RESUME (it qualifies how a resume is done). */
static int flags_valid(unsigned flags)
{
    return !(flags & ~NK_XFER_F_ALL) &&
           (!(flags & NK_XFER_F_PREFIX) || (flags & NK_XFER_F_RESUME));
}

ssize_t nk_xfer_header_encode(const nk_xfer_header *h, void *out, size_t cap)
{
    if (!h || !flags_valid(h->flags) || h->mode > 07777 || h->size > XFER_SIZE_MAX ||
        !nk_xfer_name_valid(h->name, h->name_len))
        return -EINVAL;
    size_t total = NK_XFER_HEADER_FIXED + h->name_len;
    if (!out || cap < total)
        return -ENOSPC;
    unsigned char *p = out;
    p[0] = NK_XFER_MSG_HEADER;
    p[1] = NK_XFER_VERSION;
    p[2] = h->flags;
    p[3] = 0;
    put_be(p + 4, h->size, 8);
    put_be(p + 12, h->mode, 4);
    memcpy(p + 16, h->sha256, NK_XFER_HASH_LEN);
    put_be(p + 48, h->name_len, 2);
    memcpy(p + NK_XFER_HEADER_FIXED, h->name, h->name_len);
    return (int)total;
}

int nk_xfer_header_decode(const void *msg, size_t len, nk_xfer_header *out)
{
    const unsigned char *p = msg;
    if (!p || !out || len < NK_XFER_HEADER_FIXED || p[0] != NK_XFER_MSG_HEADER ||
        p[1] != NK_XFER_VERSION || !flags_valid(p[2]) || p[3] != 0)
        return -EBADMSG;
    uint64_t size = get_be(p + 4, 8);
    uint64_t mode = get_be(p + 12, 4);
    size_t name_len = (size_t)get_be(p + 48, 2);
    if (size > XFER_SIZE_MAX || mode > 07777 || len != NK_XFER_HEADER_FIXED + name_len)
        return -EBADMSG;
    const char *name = (const char *)p + NK_XFER_HEADER_FIXED;
    if (!nk_xfer_name_valid(name, name_len))
        return -EBADMSG;
    out->flags = p[2];
    out->size = size;
    out->mode = (uint32_t)mode;
    memcpy(out->sha256, p + 16, NK_XFER_HASH_LEN);
    out->name_len = name_len;
    memcpy(out->name, name, name_len);
    out->name[name_len] = '\0';
    return 0;
}

ssize_t nk_xfer_go_encode(uint64_t offset, void *out, size_t cap)
{
    if (offset > XFER_SIZE_MAX)
        return -EINVAL;
    if (!out || cap < 9)
        return -ENOSPC;
    unsigned char *p = out;
    p[0] = NK_XFER_MSG_GO;
    put_be(p + 1, offset, 8);
    return 9;
}

int nk_xfer_go_decode(const void *msg, size_t len, uint64_t *offset)
{
    const unsigned char *p = msg;
    if (!p || !offset || len != 9 || p[0] != NK_XFER_MSG_GO)
        return -EBADMSG;
    uint64_t v = get_be(p + 1, 8);
    if (v > XFER_SIZE_MAX)
        return -EBADMSG;
    *offset = v;
    return 0;
}

ssize_t nk_xfer_go_prefix_encode(uint64_t offset, const uint8_t prefix[NK_XFER_HASH_LEN],
                                 void *out, size_t cap)
{
    if (offset > XFER_SIZE_MAX || !prefix)
        return -EINVAL;
    if (!out || cap < NK_XFER_GO_PREFIX_LEN)
        return -ENOSPC;
    unsigned char *p = out;
    p[0] = NK_XFER_MSG_GO;
    put_be(p + 1, offset, 8);
    memcpy(p + 9, prefix, NK_XFER_HASH_LEN);
    return NK_XFER_GO_PREFIX_LEN;
}

int nk_xfer_go_prefix_decode(const void *msg, size_t len, uint64_t *offset,
                             uint8_t prefix[NK_XFER_HASH_LEN])
{
    const unsigned char *p = msg;
    if (!p || !offset || !prefix || len != NK_XFER_GO_PREFIX_LEN || p[0] != NK_XFER_MSG_GO)
        return -EBADMSG;
    uint64_t v = get_be(p + 1, 8);
    if (v > XFER_SIZE_MAX)
        return -EBADMSG;
    *offset = v;
    memcpy(prefix, p + 9, NK_XFER_HASH_LEN);
    return 0;
}

ssize_t nk_xfer_restart_encode(void *out, size_t cap)
{
    if (!out || cap < 1)
        return -ENOSPC;
    *(unsigned char *)out = NK_XFER_MSG_RESTART;
    return 1;
}

int nk_xfer_restart_decode(const void *msg, size_t len)
{
    const unsigned char *p = msg;
    return p && len == 1 && p[0] == NK_XFER_MSG_RESTART ? 0 : -EBADMSG;
}

/* Reasons are shown to a user on a terminal: printable ASCII only, so a hostile receiver
 * cannot send escape sequences. */
static int reason_valid(const char *r, size_t len)
{
    if (len > NK_XFER_REASON_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)r[i] < 0x20 || (unsigned char)r[i] > 0x7e)
            return 0;
    return 1;
}

ssize_t nk_xfer_verdict_encode(int code, const char *reason, void *out, size_t cap)
{
    size_t rlen = reason ? strlen(reason) : 0;
    if (code < 0 || code > NK_XFER_E_MAX || !reason_valid(reason, rlen))
        return -EINVAL;
    if (!out || cap < 2 + rlen)
        return -ENOSPC;
    unsigned char *p = out;
    p[0] = NK_XFER_MSG_VERDICT;
    p[1] = (unsigned char)code;
    if (rlen)
        memcpy(p + 2, reason, rlen);
    return (int)(2 + rlen);
}

int nk_xfer_verdict_decode(const void *msg, size_t len, int *code, char *reason,
                           size_t reason_cap)
{
    const unsigned char *p = msg;
    if (!p || !code || len < 2 || p[0] != NK_XFER_MSG_VERDICT || p[1] > NK_XFER_E_MAX)
        return -EBADMSG;
    size_t rlen = len - 2;
    if (!reason_valid((const char *)p + 2, rlen))
        return -EBADMSG;
    *code = p[1];
    if (reason && reason_cap > 0) {
        size_t n = rlen < reason_cap - 1 ? rlen : reason_cap - 1;
        memcpy(reason, p + 2, n);
        reason[n] = '\0';
    }
    return 0;
}

const char *nk_xfer_code_name(int code)
{
    switch (code) {
    case NK_XFER_OK: return "ok";
    case NK_XFER_E_NAME: return "bad name";
    case NK_XFER_E_EXISTS: return "file exists";
    case NK_XFER_E_HASH: return "checksum mismatch";
    case NK_XFER_E_SIZE: return "size mismatch";
    case NK_XFER_E_IO: return "write error";
    case NK_XFER_E_BUSY: return "busy";
    case NK_XFER_E_PROTO: return "protocol error";
    default: return "unknown";
    }
}
