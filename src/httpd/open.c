/* Opening paths below the root, and what a failure to open one answers.
 *
 * Confinement is done by the kernel: openat2(RESOLVE_BENEATH) fails for any path, ".." or
 * symlink that would leave the root. Kernels without openat2 get the same rule by checking
 * the opened file's real path. The static handler (static.c), uploads (upload.c), listings
 * and archives all open through here, so there is one set of rules to audit.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

int nk__openat2(int dirfd, const char *rel, int flags, mode_t mode, uint64_t resolve)
{
    struct open_how how = {.flags = (uint64_t)flags, .mode = mode, .resolve = resolve};
    int fd;
    /* EAGAIN: a rename raced the look-up under RESOLVE_BENEATH; the kernel asks to retry. */
    do
        fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
    while (fd < 0 && errno == EAGAIN);
    return fd < 0 ? -errno : fd;
}

/* Is the file open on fd somewhere a request may reach? The rules on request paths (no
 * dotfile unless --dotfiles, never a temporary upload file) applied to its real path, as the
 * kernel reports it, relative to the root; and, without --follow-symlinks, confinement to the
 * root. Outside the root (--follow-symlinks only) the file's own name is checked. */
static int resolved_ok(nk_httpd *srv, int fd)
{
    char link[64], real[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    if (n < 0)
        return 0;
    real[n] = '\0';
    size_t rl = srv->root_real_len;
    const char *rel;
    if ((size_t)n >= rl && memcmp(real, srv->root_real, rl) == 0 &&
        (rl == 1 || real[rl] == '/' || real[rl] == '\0'))
        rel = real + rl;
    else if (srv->cfg.follow_symlinks)
        rel = strrchr(real, '/') ? strrchr(real, '/') : real;
    else
        return 0;
    if (*rel == '/')
        rel++;
    if (!srv->cfg.dotfiles && nk_http_path_has_dotfile(rel))
        return 0;
    return !nk_http_path_has_upload_tmp(rel);
}

/* rel itself has passed the request-path rules; a symbolic link on the way could still lead
 * to a dotfile or a temporary upload file, so then the real path is checked as well. The
 * common case, a path without links, costs one openat2.
 *
 * The rules are a sequence of calls, each chosen by the result of the one before, so that the
 * same rules run whether the calls are made here (nk__open_beneath) or as the loop's file
 * operations (static.c's cache misses, fopen.c). */
void nk__openseq_init(nk__openseq *s, const nk_httpd *srv)
{
    memset(s, 0, sizeof *s);
    s->how.flags = OPEN_FLAGS;
    if (srv->have_openat2) {
        s->how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
    } else {
        s->plain = 1; /* no openat2: the real path alone confines */
        s->check = 1;
        s->stage = 1;
    }
}

int nk__openseq_next(nk_httpd *srv, nk__openseq *s, int result, int *out)
{
    /* EAGAIN: a rename raced the look-up under RESOLVE_BENEATH; the kernel asks to retry. */
    if (result == -EAGAIN && !s->plain && s->retries++ < 64)
        return 1;
    if (result == -ELOOP && s->stage == 0) {
        /* A link on the way: open as the options say, then check where it led. */
        s->stage = 1;
        s->check = 1;
        s->retries = 0;
        if (srv->cfg.follow_symlinks)
            s->plain = 1;
        else
            s->how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        return 1;
    }
    /* EXDEV: the path tried to leave the root; report it as absent */
    if (result < 0) {
        *out = result == -EXDEV ? -ENOENT : result;
        return 0;
    }
    if (s->check && !resolved_ok(srv, result)) {
        close(result);
        result = -ENOENT;
    }
    *out = result;
    return 0;
}

int nk__open_beneath(nk_httpd *srv, int dirfd, const char *rel)
{
    nk__openseq s;
    nk__openseq_init(&s, srv);
    int r, out;
    do {
        if (s.plain) {
            r = openat(dirfd, rel, (int)s.how.flags);
            r = r < 0 ? -errno : r;
        } else {
            r = (int)syscall(SYS_openat2, dirfd, rel, &s.how, sizeof s.how);
            r = r < 0 ? -errno : r;
        }
    } while (nk__openseq_next(srv, &s, r, &out));
    return out;
}

int nk__open_status(int err)
{
    switch (err) {
    case -ENOENT:
    case -ENOTDIR:
    case -ELOOP:
    case -ENAMETOOLONG:
    case -ENXIO:
        return 404;
    case -EACCES:
    case -EPERM:
        return 403;
    case -EMFILE:
    case -ENFILE:
        return 503;
    default:
        return 500;
    }
}
