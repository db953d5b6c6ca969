/* libFuzzer target for nk_proxy_parse.
 *
 * Properties: the result is a length within the input and the version's bound, -EAGAIN,
 * -EINVAL or -EMSGSIZE; a parsed header parses to the same length and fields with any bytes
 * after it; every proper prefix of a parsed header is -EAGAIN (the engine waits for more
 * rather than refusing a header that arrives in pieces); the fields are consistent (a v1
 * header fits in 107 bytes, a client has a family, a local header none, ports fit 16 bits).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "netkit/proxy.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nk_proxy_info a, b;
    int r = nk_proxy_parse(data, size, &a);
    if (r <= 0) {
        check(r == -EAGAIN || r == -EINVAL || r == -EMSGSIZE);
        check(r != -EAGAIN || size < NK_PROXY_MAX);
        return 0;
    }
    check((size_t)r <= size);
    check(a.version == 1 || a.version == 2);
    check(a.version != 1 || r <= NK_PROXY_V1_MAX);
    check(r <= NK_PROXY_V2_MAX);
    check(a.local ? a.family == AF_UNSPEC : a.family == AF_INET || a.family == AF_INET6);
    check(a.src_port <= 65535 && a.dst_port <= 65535);
    /* Only the header's bytes count. */
    check(nk_proxy_parse(data, (size_t)r, &b) == r);
    check(memcmp(&a, &b, sizeof a) == 0);
    for (size_t i = 0; i < (size_t)r; i++)
        check(nk_proxy_parse(data, i, &b) == -EAGAIN);
    return 0;
}
