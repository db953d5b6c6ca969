/* The compiled-in backends, best first. This is the only place that knows backends by name. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "loop/backend.h"

static const nk_backend *const nk_backends[] = {
    &nk__backend_epoll,
    &nk__backend_poll,
    &nk__backend_select,
};

#define NK_NBACKENDS (sizeof nk_backends / sizeof nk_backends[0])

/* Kept as a separate constant array so callers get a NULL-terminated list of plain strings. */
static const char *const nk_backend_names[NK_NBACKENDS + 1] = {"epoll", "poll", "select", NULL};

const char *const *nk_loop_backends(void)
{
    return nk_backend_names;
}

int nk__backend_open(const char *name, const nk_backend **be, void **state)
{
    if (name == NULL) {
        /* An empty variable counts as unset, so `NETKIT_BACKEND= cmd` behaves like no override. */
        const char *env = getenv("NETKIT_BACKEND");
        if (env != NULL && env[0] != '\0')
            name = env;
    }
    if (name != NULL) {
        for (size_t i = 0; i < NK_NBACKENDS; i++) {
            if (strcmp(nk_backends[i]->name, name) == 0) {
                /* Asked for by name: a failure is the caller's to see, never a fallback. */
                int rc = nk_backends[i]->init(state);
                if (rc < 0)
                    return rc;
                *be = nk_backends[i];
                return 0;
            }
        }
        return -EINVAL;
    }
    int rc = -ENOSYS;
    for (size_t i = 0; i < NK_NBACKENDS; i++) {
        rc = nk_backends[i]->init(state);
        if (rc == 0) {
            *be = nk_backends[i];
            return 0;
        }
    }
    return rc;
}
