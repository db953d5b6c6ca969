/* Error codes to text.
 *
 * Errno values are described by glibc's strerrordesc_np/strerrorname_np, which return static
 * strings (unlike strerror, which may format into a thread-local buffer and is locale-
 * dependent). Resolver codes live in the NK_ERR_GAI range; gai_strerror gives their message
 * and a small table gives their names, since libc has no gai_strerrorname.
 */
#include <netkit/err.h>

#include <netdb.h>
#include <string.h>

struct gai_name {
    int code;
    const char *name;
};

/* The EAI_* codes glibc defines (the GNU extensions are visible with _GNU_SOURCE). */
static const struct gai_name gai_names[] = {
    {EAI_BADFLAGS, "EAI_BADFLAGS"},
    {EAI_NONAME, "EAI_NONAME"},
    {EAI_AGAIN, "EAI_AGAIN"},
    {EAI_FAIL, "EAI_FAIL"},
    {EAI_FAMILY, "EAI_FAMILY"},
    {EAI_SOCKTYPE, "EAI_SOCKTYPE"},
    {EAI_SERVICE, "EAI_SERVICE"},
    {EAI_MEMORY, "EAI_MEMORY"},
    {EAI_SYSTEM, "EAI_SYSTEM"},
    {EAI_OVERFLOW, "EAI_OVERFLOW"},
#ifdef EAI_NODATA
    {EAI_NODATA, "EAI_NODATA"},
#endif
#ifdef EAI_ADDRFAMILY
    {EAI_ADDRFAMILY, "EAI_ADDRFAMILY"},
#endif
#ifdef EAI_INPROGRESS
    {EAI_INPROGRESS, "EAI_INPROGRESS"},
    {EAI_CANCELED, "EAI_CANCELED"},
    {EAI_NOTCANCELED, "EAI_NOTCANCELED"},
    {EAI_ALLDONE, "EAI_ALLDONE"},
    {EAI_INTR, "EAI_INTR"},
#endif
#ifdef EAI_IDN_ENCODE
    {EAI_IDN_ENCODE, "EAI_IDN_ENCODE"},
#endif
};

/* The library's convention is negative codes; a positive errno is accepted as well, so that a
 * caller holding a raw errno still gets text instead of "unknown". */
static int errno_of(int err)
{
    if (err == -2147483647 - 1)
        return -1; /* cannot be negated; no errno is that large anyway */
    return err < 0 ? -err : err;
}

const char *nk_strerror(int err)
{
    if (NK_ERR_IS_GAI(err)) {
        const char *s = gai_strerror(err - NK_ERR_GAI_BASE);
        return s ? s : "Unknown resolver error";
    }
    int e = errno_of(err);
    const char *s = e >= 0 ? strerrordesc_np(e) : NULL;
    return s ? s : "Unknown error";
}

const char *nk_errname(int err)
{
    if (NK_ERR_IS_GAI(err)) {
        int eai = err - NK_ERR_GAI_BASE;
        for (size_t i = 0; i < sizeof(gai_names) / sizeof(gai_names[0]); i++)
            if (gai_names[i].code == eai)
                return gai_names[i].name;
        return "EAI_?";
    }
    if (err == 0)
        return "OK"; /* strerrorname_np(0) is "0", which reads like a bug in messages */
    int e = errno_of(err);
    const char *s = e >= 0 ? strerrorname_np(e) : NULL;
    return s ? s : "E?";
}
