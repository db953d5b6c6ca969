/* netkit file recv: the partial files a receiver leaves behind.
 *
 * A receiver that is killed (SIGKILL, power loss) cannot remove its ".NAME.netkit-part-*"
 * temporary file, and since the name starts with a dot nobody sees it fill the disk. At start
 * the receiver removes those untouched for FILE_PARTIAL_STALE_SEC: a transfer in progress
 * writes at least every --idle-timeout, and a --resume partial worth continuing is continued
 * within a day. One that another receiver holds (flock, --resume) is left alone.
 * --list-partials shows them all instead, and removes nothing.
 */
#include "cli.h"
#include "file/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int is_partial_name(const char *name)
{
    return name[0] == '.' && strstr(name, ".netkit-part-") != NULL;
}

/* Open d for listing on its own descriptor (readdir consumes the position). */
static DIR *open_listing(int dirfd)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    DIR *d = fdopendir(fd);
    if (!d)
        close(fd);
    return d;
}

static void age_text(time_t secs, char *buf, size_t len)
{
    if (secs >= 2 * 86400)
        snprintf(buf, len, "%lld days old", (long long)(secs / 86400));
    else if (secs >= 2 * 3600)
        snprintf(buf, len, "%lld hours old", (long long)(secs / 3600));
    else
        snprintf(buf, len, "%lld minutes old", (long long)(secs / 60));
}

int file_partials_list(const char *cmd, int dirfd, FILE *out)
{
    DIR *d = open_listing(dirfd);
    if (!d)
        return cli_fail(cmd, "cannot list the directory: %s", strerror(errno));
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (!is_partial_name(e->d_name) ||
            fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        char shown[NAME_MAX * CLI_ESC_GROWTH + 1], age[32];
        cli_term_escape(shown, sizeof shown, e->d_name, strlen(e->d_name), 0);
        age_text(now - st.st_mtime, age, sizeof age);
        fprintf(out, "%s  %lld bytes  %s\n", shown, (long long)st.st_size, age);
    }
    closedir(d);
    return CLI_OK;
}

void file_partials_clean(const char *cmd, int dirfd)
{
    DIR *d = open_listing(dirfd);
    if (!d)
        return; /* the receiver reports an unusable directory itself */
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (!is_partial_name(e->d_name) ||
            fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
            now - st.st_mtime < FILE_PARTIAL_STALE_SEC)
            continue;
        int fd = openat(dirfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        /* A --resume receiver holds its partial locked: not ours to remove. */
        int free_to_remove = flock(fd, LOCK_EX | LOCK_NB) == 0;
        char shown[NAME_MAX * CLI_ESC_GROWTH + 1], age[32];
        cli_term_escape(shown, sizeof shown, e->d_name, strlen(e->d_name), 0);
        age_text(now - st.st_mtime, age, sizeof age);
        if (free_to_remove && unlinkat(dirfd, e->d_name, 0) == 0)
            fprintf(stderr, "netkit: %s: removed a stale partial file '%s' (%lld bytes, %s)\n",
                    cmd, shown, (long long)st.st_size, age);
        close(fd);
    }
    closedir(d);
}
