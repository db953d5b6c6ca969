/* The library's own version, fixed when it was compiled (see netkit/version.h). */
#include <netkit/version.h>

const char *nk_version(void)
{
    return NETKIT_VERSION;
}

unsigned nk_version_number(void)
{
    return NETKIT_VERSION_NUMBER;
}
