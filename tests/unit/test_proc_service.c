/* A server under a service manager (netkit/service.h): listeners passed as descriptors 3, 4, ...
 * with $LISTEN_PID/$LISTEN_FDS/$LISTEN_FDNAMES, refused when not listening stream sockets, and
 * states sent to $NOTIFY_SOCKET (a path, and the abstract namespace). */
#include <netkit/addr.h>
#include <netkit/service.h>
#include <netkit/sock.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

/* Put fd on number at (3, 4, ...); what was there is kept elsewhere and put back by restore. */
typedef struct placed {
    int at, saved;
} placed;

static placed place(int fd, int at)
{
    placed p = {.at = at, .saved = -1};
    if (fd == at)
        return p; /* the socket got that number itself */
    p.saved = fcntl(at, F_DUPFD_CLOEXEC, 100); /* -1: nothing was there */
    assert_int_equal(dup2(fd, at), at);
    close(fd);
    return p;
}

static void restore(placed p)
{
    close(p.at);
    if (p.saved >= 0) {
        dup2(p.saved, p.at);
        close(p.saved);
    }
}

static void set_env(const char *fds, const char *names, pid_t pid)
{
    char text[32];
    snprintf(text, sizeof text, "%d", (int)pid);
    setenv("LISTEN_PID", text, 1);
    setenv("LISTEN_FDS", fds, 1);
    if (names)
        setenv("LISTEN_FDNAMES", names, 1);
    else
        unsetenv("LISTEN_FDNAMES");
}

static int tcp_listener(void)
{
    nk_addr a;
    assert_int_equal(nk_addr_parse("127.0.0.1:0", 0, &a), 0);
    int fd = nk_sock_listen(&a, SOCK_STREAM, 0, 0);
    assert_true(fd >= 0);
    return fd;
}

static void test_none_or_not_ours(void **state)
{
    (void)state;
    nk_listen_fds_forget();
    assert_int_equal(nk_listen_fds(16, NULL), 0);
    set_env("2", NULL, getppid()); /* an ancestor's: not for this process */
    assert_int_equal(nk_listen_fds(16, NULL), 0);
    nk_listen_fds_forget();
    assert_null(getenv("LISTEN_PID"));
    assert_null(getenv("LISTEN_FDS"));
}

static void test_two_named_listeners(void **state)
{
    (void)state;
    placed a = place(tcp_listener(), 3), b = place(tcp_listener(), 4);
    set_env("2", "https:proxy+http", getpid());
    assert_int_equal(nk_listen_fds(16, NULL), 2);
    assert_true(fcntl(3, F_GETFD) & FD_CLOEXEC); /* dup2 cleared it; the library sets it */
    assert_true(fcntl(4, F_GETFD) & FD_CLOEXEC);
    char name[16];
    assert_int_equal(nk_listen_fd_name(0, name, sizeof name), 0);
    assert_string_equal(name, "https");
    assert_int_equal(nk_listen_fd_name(1, name, sizeof name), 0);
    assert_string_equal(name, "proxy+http");
    assert_int_equal(nk_listen_fd_name(2, name, sizeof name), 0);
    assert_string_equal(name, "");
    assert_int_equal(nk_listen_fd_name(1, name, 4), -ENAMETOOLONG);
    assert_string_equal(name, "pro");
    /* More than the caller takes, or not a number: refused. */
    assert_int_equal(nk_listen_fds(1, NULL), -ERANGE);
    set_env("2x", NULL, getpid());
    assert_int_equal(nk_listen_fds(16, NULL), -ERANGE);
    nk_listen_fds_forget();
    restore(b);
    restore(a);
}

static void test_not_a_listener_is_refused(void **state)
{
    (void)state;
    placed a = place(tcp_listener(), 3);
    placed b = place(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), 4); /* a datagram socket */
    int bad = -1;
    set_env("2", NULL, getpid());
    assert_int_equal(nk_listen_fds(16, &bad), -ENOTSOCK);
    assert_int_equal(bad, 4);
    restore(b);
    b = place(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), 4); /* a stream, not listening */
    assert_int_equal(nk_listen_fds(16, &bad), -ENOTSOCK);
    assert_int_equal(bad, 4);
    nk_listen_fds_forget();
    restore(b);
    restore(a);
}

static void notify_to(const struct sockaddr_un *sun, socklen_t len, const char *env)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (const struct sockaddr *)sun, len), 0);
    setenv("NOTIFY_SOCKET", env, 1);
    assert_int_equal(nk_notify("MAINPID=7\nREADY=1"), 0);
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    assert_int_equal(n, (ssize_t)strlen("MAINPID=7\nREADY=1"));
    buf[n] = '\0';
    assert_string_equal(buf, "MAINPID=7\nREADY=1");
    close(fd);
}

static void test_notify(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(nk_notify("READY=1"), 0); /* no manager: nothing to do */
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof sun.sun_path, "/tmp/nk-test-notify-%d", (int)getpid());
    unlink(sun.sun_path);
    char env[sizeof sun.sun_path + 1];
    snprintf(env, sizeof env, "%s", sun.sun_path);
    notify_to(&sun, sizeof sun, env);
    unlink(sun.sun_path);
    /* "@name": the abstract namespace (a leading NUL, no file). */
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    int len = snprintf(sun.sun_path + 1, sizeof sun.sun_path - 1, "nk-test-notify-%d",
                       (int)getpid());
    snprintf(env, sizeof env, "@%s", sun.sun_path + 1);
    notify_to(&sun, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len), env);
    /* Nobody at the path: the error is the caller's to ignore. */
    setenv("NOTIFY_SOCKET", "/tmp/nk-test-notify-nobody", 1);
    assert_true(nk_notify("READY=1") < 0);
    unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_none_or_not_ours),
        cmocka_unit_test(test_two_named_listeners),
        cmocka_unit_test(test_not_a_listener_is_refused),
        cmocka_unit_test(test_notify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
