/* Reading a password from the terminal with echo off, as htpasswd and passwd do.
 *
 * The terminal settings are put back before returning, and also when a signal (Ctrl-C,
 * Ctrl-\, a hang-up, SIGTERM) ends the command while echo is off: otherwise the user's shell
 * would be left not echoing what they type. A signal handler can only reach file-scope state,
 * hence the one static below; it is set only while a prompt is on the screen.
 */
#include "cli_password.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved_termios; /* the settings to restore from a signal handler */
static volatile sig_atomic_t saved_fd = -1;

static void restore_and_reraise(int sig)
{
    if (saved_fd >= 0)
        tcsetattr(saved_fd, TCSAFLUSH, &saved_termios);
    signal(sig, SIG_DFL);
    raise(sig);
}

static const int fatal_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define NFATAL (sizeof fatal_signals / sizeof fatal_signals[0])

int cli_read_password(FILE *in, FILE *prompt_out, const char *prompt, char *buf, size_t cap)
{
    int fd = fileno(in);
    struct termios t;
    if (tcgetattr(fd, &t) < 0)
        return -errno;
    struct sigaction sa, old[NFATAL];
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = restore_and_reraise;
    sigemptyset(&sa.sa_mask);
    saved_termios = t;
    saved_fd = fd;
    for (size_t i = 0; i < NFATAL; i++)
        sigaction(fatal_signals[i], &sa, &old[i]);

    struct termios quiet = t;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
    int r = 0;
    if (tcsetattr(fd, TCSAFLUSH, &quiet) < 0) {
        r = -errno;
    } else {
        fputs(prompt, prompt_out);
        fflush(prompt_out);
        if (!fgets(buf, (int)cap, in))
            r = ferror(in) ? -EIO : -ENODATA;
        fputc('\n', prompt_out); /* the Enter the user typed was not echoed */
        fflush(prompt_out);
        tcsetattr(fd, TCSAFLUSH, &t);
    }
    saved_fd = -1;
    for (size_t i = 0; i < NFATAL; i++)
        sigaction(fatal_signals[i], &old[i], NULL);
    if (r == 0) {
        size_t len = strcspn(buf, "\r\n");
        if (buf[len] == '\0' && len + 1 == cap)
            r = -EMSGSIZE; /* longer than the buffer: refuse rather than cut */
        buf[len] = '\0';
    }
    return r;
}
