/* Extensible configuration structs (the rule is stated in docs/library.md, section "Config
 * structs"): a public config begins with `size_t size`, the size the caller was compiled
 * with. A struct only ever grows at its end, so the first `size` bytes of a caller's struct
 * mean what they mean to this library whatever the two versions are.
 *
 * Static inline rather than a function of libnetkit: libnetkit-httpd uses it too, and only
 * the public nk_ names cross the libraries' boundary.
 */
#ifndef NETKIT_CORE_EXTSTRUCT_H
#define NETKIT_CORE_EXTSTRUCT_H

#include <errno.h>
#include <stddef.h>
#include <string.h>

/* Check the caller's struct src against this library's version of it (known bytes) and
 * copy it over dst, which already holds the defaults: fields past an older caller's size
 * keep them. Returns 0; -EINVAL when size does not even cover the size field (0: a struct
 * that was never initialised); -E2BIG when the caller's struct is newer and sets a field
 * this library does not know (a non-zero byte past known), which it could not honour: as
 * openat2(2) and clone3(2) do, refuse rather than ignore it. dst->size ends as known. */
static inline int nk__ext_copy(void *dst, size_t known, const void *src)
{
    size_t size;
    memcpy(&size, src, sizeof size);
    if (size < sizeof size)
        return -EINVAL;
    if (size > known) {
        const unsigned char *tail = (const unsigned char *)src + known;
        for (size_t i = 0; i < size - known; i++)
            if (tail[i])
                return -E2BIG;
        size = known;
    }
    memcpy(dst, src, size);
    memcpy(dst, &known, sizeof known);
    return 0;
}

/* Fill a caller's struct of size bytes from this library's defaults (known bytes): the
 * common part is copied, a newer caller's tail (fields this library does not know) zeroed,
 * and size set to the caller's. -EINVAL when size does not cover the size field. */
static inline int nk__ext_fill(void *dst, size_t size, const void *defaults, size_t known)
{
    if (size < sizeof size)
        return -EINVAL;
    memcpy(dst, defaults, size < known ? size : known);
    if (size > known)
        memset((unsigned char *)dst + known, 0, size - known);
    memcpy(dst, &size, sizeof size);
    return 0;
}

#endif
