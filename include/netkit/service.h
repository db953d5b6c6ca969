/* A server under a service manager: listeners it passes (socket activation) and the states the
 * server reports to it (readiness, stopping). This is systemd's protocol, done without
 * libsystemd: two environment variables and a datagram (sd_listen_fds(3), sd_notify(3)).
 *
 * Passed listeners are descriptors NK_LISTEN_FDS_START, +1, ... ($LISTEN_FDS of them), meant
 * for the process whose pid is $LISTEN_PID (a child that inherited the variables must not take
 * them); $LISTEN_FDNAMES names them (FileDescriptorName= of the socket units, colon-separated).
 * A server can hand its own listeners to a successor the same way. Linux only. */
#ifndef NETKIT_SERVICE_H
#define NETKIT_SERVICE_H

#include <netkit/api.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif
NK_API_BEGIN

#define NK_LISTEN_FDS_START 3

/* The number of listeners passed to this process (0: none, or meant for another process),
 * each checked to be a listening stream socket and made close-on-exec. -ERANGE: $LISTEN_FDS
 * is not a number from 0 to max; -ENOTSOCK: a descriptor is not a listening stream socket
 * (*bad_fd says which; bad_fd may be NULL). */
int nk_listen_fds(int max, int *bad_fd);

/* The name of passed descriptor i (the i-th of $LISTEN_FDNAMES) into buf, "" when it has none.
 * 0, or -ENAMETOOLONG (buf holds what fits). */
int nk_listen_fd_name(int i, char *buf, size_t len);

/* Unset $LISTEN_PID, $LISTEN_FDS and $LISTEN_FDNAMES, so that nothing the server starts later
 * takes the listeners for its own. */
void nk_listen_fds_forget(void);

/* Send state ("READY=1", "STOPPING=1", "MAINPID=N\nREADY=1") to $NOTIFY_SOCKET: a path, or
 * "@name" in the abstract namespace. 0 when sent or when there is no manager to tell; -errno
 * when the datagram could not be sent (a manager that does not listen changes nothing for the
 * server: callers may ignore it, as sd_notify's do). */
int nk_notify(const char *state);

NK_API_END
#ifdef __cplusplus
}
#endif
#endif
