/* Removing a directory tree for DELETE of a directory (deldir.c), in the job thread.
 *
 * The walk never builds a path for a system call: every step is relative to the descriptor
 * of the directory being read (fstatat, openat with O_NOFOLLOW | O_DIRECTORY, unlinkat), so
 * a name swapped for a symbolic link while we work cannot lead anywhere else, and nothing
 * above the target is ever named. A symbolic link is an entry like a file: unlinked, never
 * followed, whatever it points to. Another file system mounted below the target is not
 * entered (refused, like rm --one-file-system).
 *
 * A client deletes only what it could see: an entry the listing would not show (a dotfile
 * unless --dotfiles, another upload's temporary file, a name no request can carry, a device,
 * FIFO or socket) refuses the whole tree. So does a tree deeper or larger than the limits,
 * which keep the job thread (shared by the worker's uploads and password checks) from being
 * held for long. A scan checks all of that before anything is removed; the removal checks
 * again as it goes, since the tree may change in between, and stops at the first entry it
 * cannot remove, which it names.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Note the entry concerned (name below the path so far) and why the walk stops. */
static int stop(nk__rmtree *t, size_t plen, const char *name, int why, int err)
{
    size_t n = strlen(name);
    if (plen + n + 1 < sizeof t->where) {
        memcpy(t->where + plen, name, n + 1);
    } else {
        t->where[plen < sizeof t->where ? plen : sizeof t->where - 1] = '\0';
    }
    t->why = why;
    t->err = err;
    return -1;
}

static int listed_name(const nk__rmtree *t, const char *name)
{
    if (name[0] == '.' && !t->dotfiles)
        return 0;
    return !nk_http_path_has_upload_tmp(name) && nk_http_name_servable(name, strlen(name));
}

static int walk(nk__rmtree *t, int dfd, unsigned depth, size_t plen, int remove);

/* The subdirectory name of dfd (lstat as *st): entered, emptied when removing, then removed. */
static int walk_dir(nk__rmtree *t, int dfd, const char *name, const struct stat *st,
                    unsigned depth, size_t plen, int remove)
{
    if (st->st_dev != t->dev)
        return stop(t, plen, name, NK__RM_MOUNT, 0);
    if (depth + 1 > t->max_depth)
        return stop(t, plen, name, NK__RM_DEPTH, 0);
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : stop(t, plen, name, NK__RM_FAILED, errno);
    struct stat now;
    if (fstat(fd, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino) {
        close(fd); /* replaced since we looked: not what was checked */
        return stop(t, plen, name, NK__RM_FAILED, EBUSY);
    }
    size_t n = strlen(name);
    if (plen + n + 2 >= sizeof t->where) {
        close(fd);
        return stop(t, plen, name, NK__RM_DEPTH, 0); /* a path too long to report */
    }
    memcpy(t->where + plen, name, n);
    t->where[plen + n] = '/';
    t->where[plen + n + 1] = '\0';
    int r = walk(t, fd, depth + 1, plen + n + 1, remove); /* closes fd */
    if (r < 0)
        return r; /* where names the entry it stopped at */
    t->where[plen] = '\0';
    if (remove && unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return stop(t, plen, name, NK__RM_FAILED, errno);
    return 0;
}

/* Check (and with remove, delete) every entry of the directory fd, which is taken over. */
static int walk(nk__rmtree *t, int fd, unsigned depth, size_t plen, int remove)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        int err = errno;
        close(fd);
        return stop(t, plen, "", NK__RM_FAILED, err);
    }
    rewinddir(d); /* the target's descriptor is a duplicate: its offset is shared */
    int r = 0;
    for (;;) {
        errno = 0;
        const struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                r = stop(t, plen, "", NK__RM_FAILED, errno);
            break;
        }
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (++t->entries > t->max_entries) {
            r = stop(t, plen, name, NK__RM_ENTRIES, 0);
            break;
        }
        if (!listed_name(t, name)) {
            r = stop(t, plen, name, NK__RM_HIDDEN, 0);
            break;
        }
        struct stat st;
        if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue; /* removed meanwhile */
            r = stop(t, plen, name, NK__RM_FAILED, errno);
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            r = walk_dir(t, dirfd(d), name, &st, depth, plen, remove);
        } else if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
            r = stop(t, plen, name, NK__RM_HIDDEN, 0); /* never listed nor served */
        } else if (remove && unlinkat(dirfd(d), name, 0) < 0 && errno != ENOENT) {
            r = stop(t, plen, name, NK__RM_FAILED, errno);
        }
        if (r < 0)
            break;
        if (remove)
            t->removed++;
    }
    closedir(d);
    return r;
}

void nk__rmtree_init(nk__rmtree *t, int dotfiles)
{
    memset(t, 0, sizeof *t);
    t->dotfiles = dotfiles;
    t->max_entries = NK__RMTREE_MAX_ENTRIES;
    t->max_depth = NK__RMTREE_MAX_DEPTH;
}

static int run(nk__rmtree *t, int dirfd, int remove)
{
    struct stat st;
    int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0); /* the walk closes what it reads */
    if (fd < 0 || fstat(fd, &st) < 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return stop(t, 0, "", NK__RM_FAILED, err);
    }
    t->dev = st.st_dev;
    t->entries = 0;
    t->where[0] = '\0';
    return walk(t, fd, 0, 0, remove);
}

int nk__rmtree_scan(nk__rmtree *t, int dirfd)
{
    return run(t, dirfd, 0);
}

int nk__rmtree_empty(nk__rmtree *t, int dirfd)
{
    return run(t, dirfd, 1);
}
