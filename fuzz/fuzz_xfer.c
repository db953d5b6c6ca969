/* libFuzzer target for the file-transfer messages (src/frame/xfer.c): decoding arbitrary bytes
 * never crashes or over-reads, and whatever decodes re-encodes to exactly the same bytes
 * (decoding is strict, so it is the inverse of encoding). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netkit/xfer.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char out[NK_XFER_HEADER_FIXED + NK_XFER_NAME_MAX + NK_XFER_REASON_MAX + 16];
    nk_xfer_header h;
    if (nk_xfer_header_decode(data, size, &h) == 0) {
        if (!nk_xfer_name_valid(h.name, h.name_len) || strlen(h.name) != h.name_len)
            abort();
        int n = nk_xfer_header_encode(&h, out, sizeof out);
        if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
            abort();
    }
    uint64_t off;
    if (nk_xfer_go_decode(data, size, &off) == 0) {
        int n = nk_xfer_go_encode(off, out, sizeof out);
        if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
            abort();
    }
    uint8_t prefix[NK_XFER_HASH_LEN];
    if (nk_xfer_go_prefix_decode(data, size, &off, prefix) == 0) {
        int n = nk_xfer_go_prefix_encode(off, prefix, out, sizeof out);
        if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
            abort();
    }
    if (nk_xfer_restart_decode(data, size) == 0 && (size != 1 || data[0] != 'R'))
        abort();
    int code;
    char reason[NK_XFER_REASON_MAX + 1];
    if (nk_xfer_verdict_decode(data, size, &code, reason, sizeof reason) == 0) {
        int n = nk_xfer_verdict_encode(code, reason, out, sizeof out);
        if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
            abort();
    }
    int type = nk_xfer_msg_type(data, size);
    if (type >= 0 && (size == 0 || data[0] != type))
        abort();
    return 0;
}
