/* The compiled-in backends, best first. This is the only place that knows backends by name. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "loop/backend.h"

/* Each backend once, best first: both tables below are generated from this list, so the
 * names callers see cannot drift from the backends that can be opened. The name is the
 * backend's own (nk__backend_<name>.name is "<name>"; test_registry in
 * tests/unit/test_loop_io.c opens each listed name and checks the name it runs). */
#define BACKENDS(X) X(epoll) X(uring) X(poll) X(select)

#define BACKEND_ADDRESS(n) &nk__backend_##n,
#define BACKEND_NAME(n) #n,

static const nk_backend *const backends[] = {BACKENDS(BACKEND_ADDRESS)};

#define NBACKENDS (sizeof backends / sizeof backends[0])

/* A NULL-terminated list of plain strings for callers that print or choose a name. */
static const char *const backend_names[NBACKENDS + 1] = {BACKENDS(BACKEND_NAME) NULL};

const char *const *nk_loop_backends(void)
{
    return backend_names;
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
        for (size_t i = 0; i < NBACKENDS; i++) {
            if (strcmp(backends[i]->name, name) == 0) {
                /* Asked for by name: a failure is the caller's to see, never a fallback. */
                int rc = backends[i]->init(state);
                if (rc < 0)
                    return rc;
                *be = backends[i];
                return 0;
            }
        }
        return -EINVAL;
    }
    int rc = -ENOSYS;
    for (size_t i = 0; i < NBACKENDS; i++) {
        if (backends[i]->flags & NK_BACKEND_NAMED)
            continue;
        rc = backends[i]->init(state);
        if (rc == 0) {
            *be = backends[i];
            return 0;
        }
    }
    return rc;
}
