/* libFuzzer target for nk_raw_decode.
 *
 * Properties checked on every input:
 *   - decoding never reads outside the input (ASan) and always returns 0;
 *   - the payload, when present, lies inside the input;
 *   - a layer reported decoded implies the layers below it were decoded too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "netkit/raw.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nk_raw_packet pkt;
    check(nk_raw_decode(data, size, &pkt) == 0);
    if (pkt.layers & NK_RAW_PAYLOAD) {
        check(pkt.payload >= data && pkt.payload + pkt.payload_len <= data + size);
        check(pkt.payload_len <= pkt.payload_wire || pkt.net == NK_RAW_NET_NONE);
    }
    if (pkt.layers & NK_RAW_TRANSPORT)
        check((pkt.layers & NK_RAW_NETWORK) && (pkt.layers & NK_RAW_LINK));
    if (pkt.layers & NK_RAW_NETWORK)
        check(pkt.layers & NK_RAW_LINK);
    if (!(pkt.layers & NK_RAW_LINK))
        check(pkt.problem != NULL);
    return 0;
}
