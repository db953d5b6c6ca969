/* libFuzzer target for nk_http_path_normalize.
 *
 * Properties checked on every input that is accepted:
 *   - the output starts with "/", and its length is the return value;
 *   - it holds no NUL, no backslash, no "//", no "." or ".." segment (so no "/./", "/../",
 *     and it does not end in "/." or "/..");
 *   - normalising it again gives the same output (a fixed point), unless it holds a '%',
 *     which a second pass would decode again (decoding happens exactly once by design);
 *   - a smaller output buffer yields either the same result or -ENAMETOOLONG, never a
 *     different path.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netkit/http.h"

#define OUT_MAX 4096

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[OUT_MAX], again[OUT_MAX];
    int r = nk_http_path_normalize((const char *)data, size, out, sizeof(out));
    if (r < 0) {
        check(r == -EINVAL || r == -ENAMETOOLONG);
        return 0;
    }
    size_t len = (size_t)r;
    check(len >= 1 && len < sizeof(out) && out[0] == '/' && out[len] == '\0');
    check(strlen(out) == len);
    check(memchr(out, '\\', len) == NULL);
    check(strstr(out, "//") == NULL);
    check(strstr(out, "/./") == NULL && strstr(out, "/../") == NULL);
    check(!(len >= 2 && strcmp(out + len - 2, "/.") == 0));
    check(!(len >= 3 && strcmp(out + len - 3, "/..") == 0));

    if (!memchr(out, '%', len)) {
        int r2 = nk_http_path_normalize(out, len, again, sizeof(again));
        check(r2 == r && memcmp(out, again, len + 1) == 0);
    }

    /* Exactly enough room works; one byte less does not. */
    int r3 = nk_http_path_normalize((const char *)data, size, again, len + 1);
    check(r3 == r && memcmp(out, again, len + 1) == 0);
    check(nk_http_path_normalize((const char *)data, size, again, len) == -ENAMETOOLONG);
    return 0;
}
