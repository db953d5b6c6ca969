/* netkit error model.
 *
 * Every library call that can fail returns a negative errno value (-EINVAL, -ENOMEM, ...).
 * Resolver failures (getaddrinfo/getnameinfo) do not have errno values; they are mapped into
 * a reserved range with NK_ERR_GAI() so that one int still carries every failure and
 * nk_strerror() can describe it. Nothing in the library prints or sets a global.
 */
#ifndef NETKIT_ERR_H
#define NETKIT_ERR_H

#include <errno.h>
#include <netkit/api.h>

#ifdef __cplusplus
extern "C" {
#endif
NK_API_BEGIN

/* getaddrinfo's EAI_* codes are small negative numbers; shift them below errno's range. */
#define NK_ERR_GAI_BASE (-20000)
#define NK_ERR_GAI(eai) (NK_ERR_GAI_BASE + (eai))
#define NK_ERR_IS_GAI(err) ((err) <= NK_ERR_GAI_BASE + 0 && (err) > NK_ERR_GAI_BASE - 1000)

/* Human-readable message for a negative error code (never NULL, never allocated). */
const char *nk_strerror(int err);

/* Symbolic name such as "EINVAL" or "EAI_NONAME" (never NULL; "E?" when unknown). */
const char *nk_errname(int err);

NK_API_END
#ifdef __cplusplus
}
#endif

#endif
