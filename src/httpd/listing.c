/* Directory listings for the static handler: what nk_http_dirlist_render shows, judged by the
 * same rules as requests.
 *
 * A listing links each entry as "<directory path><name>"; the page must list only what such
 * a request is served. The name rules (dotfiles, temporary uploads, names a request cannot
 * carry) are dirlist.c's; a symbolic link is opened here exactly as a request for it would
 * be (nk__open_beneath from the root: confinement, the rules on the real path), and listed
 * with what it leads to.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* nk_http_dirlist_opts.resolve: open "<srv->path><name>" as a request would, then fstat. */
static int resolve_link(void *ctx, const char *name, struct stat *st)
{
    nk_httpd *srv = ctx;
    char rel[4096];
    int n = snprintf(rel, sizeof rel, "%s%s", srv->path + 1, name);
    if (n < 0 || (size_t)n >= sizeof rel)
        return -ENAMETOOLONG;
    int fd = nk__open_beneath(srv, srv->root_fd, rel);
    if (fd < 0)
        return fd;
    int r = fstat(fd, st) < 0 ? -errno : 0;
    close(fd);
    return r;
}

int nk__listing_render(nk_httpd *srv, int dirfd, int json, nk_buf *out)
{
    nk_http_dirlist_opts o = {
        .json = json,
        .show_dotfiles = srv->cfg.dotfiles,
        .flags = srv->cfg.upload ? NK_HTTP_DIRLIST_UPLOAD : 0,
        .resolve = resolve_link,
        .ctx = srv,
    };
    return nk_http_dirlist_render(dirfd, srv->path, &o, out);
}
