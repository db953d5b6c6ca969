/* Suites run once per backend (NETKIT_BACKEND, tests/CMakeLists.txt): a backend this kernel
 * refuses turns the run into a skip, never a pass. */
#ifndef NETKIT_TEST_BACKEND_SKIP_H
#define NETKIT_TEST_BACKEND_SKIP_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netkit/loop.h>

/* The kernel may refuse io_uring (not built in, kernel.io_uring_disabled, a seccomp filter):
 * that is the one failure to open a compiled-in backend that is not a bug. */
static inline int uring_refused(const char *name, int rc)
{
    return strcmp(name, "uring") == 0 && (rc == -ENOSYS || rc == -EPERM);
}

/* First thing in main: a suite run on a backend this kernel refuses exits 77, which CMake marks
 * as a skip (SKIP_RETURN_CODE), with the reason, rather than failing every test. */
static inline void skip_suite_if_backend_refused(void)
{
    const char *want = getenv("NETKIT_BACKEND");
    nk_loop *loop = NULL;
    if (want == NULL || want[0] == '\0')
        return;
    int rc = nk_loop_new(want, &loop);
    if (rc == 0) {
        nk_loop_free(loop);
        return;
    }
    if (uring_refused(want, rc)) {
        printf("skipped: this kernel refuses the %s backend (%s)\n", want, strerror(-rc));
        exit(77);
    }
}

#endif
