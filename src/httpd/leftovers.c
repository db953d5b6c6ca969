/* What a worker that died leaves below the root: the temporary files of the uploads it was
 * writing (upload.c names them ".netkit-upload-PID-XXXXXX"). A worker removes its own when an
 * upload fails or its client goes, but not when it is killed; its supervisor then calls
 * nk_httpd_clean_worker_uploads before starting the replacement, while the other workers may
 * be writing theirs, hence the pid in the name.
 *
 * The supervisor does this walk on its own loop, so it is bounded in depth and in names
 * looked at; what lies beyond the bounds waits for nk_httpd_clean_uploads at the next start.
 * Every directory is opened relative to its parent with O_NOFOLLOW, so a symbolic link
 * planted in the tree cannot lead the walk (or an unlink) elsewhere.
 */
#include <netkit/httpd.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <limits.h>

/* One walk removes the regular files whose names start with prefix: all temporary upload
 * files (nk_httpd_clean_uploads, at start) or one dead worker's. */
typedef struct walk {
    char prefix[40];    /* ".netkit-upload-" or ".netkit-upload-PID-" */
    size_t prefix_len;
    unsigned entries_left;
    unsigned dirs_left; /* directories it may still enter */
    unsigned max_depth;
    int removed;
} walk;

static void walk_dir(walk *w, int dfd, unsigned depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    struct dirent *e;
    while (w->entries_left > 0 && (e = readdir(d)) != NULL) {
        w->entries_left--;
        const char *n = e->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        unsigned char type = e->d_type;
        if (type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0)
                continue;
            type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
        }
        if (type == DT_REG && strncmp(n, w->prefix, w->prefix_len) == 0) {
            if (unlinkat(dirfd(d), n, 0) == 0)
                w->removed++;
        } else if (type == DT_DIR && depth < w->max_depth && w->dirs_left > 0) {
            w->dirs_left--;
            int sub = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                walk_dir(w, sub, depth + 1);
        }
    }
    closedir(d);
}

int nk_httpd_clean_worker_uploads(const char *root, int pid, unsigned max_depth,
                                  unsigned max_entries)
{
    if (pid <= 0)
        return -EINVAL;
    walk w = {.entries_left = max_entries, .dirs_left = UINT_MAX, .max_depth = max_depth};
    int len = snprintf(w.prefix, sizeof w.prefix, NK_HTTP_UPLOAD_TMP_PREFIX "%d-", pid);
    if (len < 0 || (size_t)len >= sizeof w.prefix)
        return -EINVAL;
    w.prefix_len = (size_t)len;
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    walk_dir(&w, fd, 0);
    return w.removed;
}

int nk_httpd_clean_uploads(const char *root, unsigned max_dirs)
{
    walk w = {.prefix = NK_HTTP_UPLOAD_TMP_PREFIX,
              .prefix_len = sizeof NK_HTTP_UPLOAD_TMP_PREFIX - 1,
              .entries_left = UINT_MAX,
              .dirs_left = max_dirs ? max_dirs - 1 : 0, /* the root is the first */
              .max_depth = 64};
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    walk_dir(&w, fd, 0);
    return w.removed;
}
