/* Datagram helpers (UDP and Unix datagram sockets).
 *
 * A datagram larger than the buffer handed to recv is cut by the kernel, and plain recvfrom
 * gives no sign of it. nk_udp_recv reports the datagram's real length so that a tool can say
 * "truncated" instead of silently printing part of a message.
 */
#ifndef NETKIT_UDP_H
#define NETKIT_UDP_H

#include <stddef.h>
#include <sys/types.h>
#include <netkit/addr.h>
#include <errno.h>
#include <netkit/api.h>

#ifdef __cplusplus
extern "C" {
#endif
NK_API_BEGIN

/* Receive one datagram into buf (at most len bytes kept). from (may be NULL) gets the sender;
 * an unbound Unix datagram sender gives an address of family AF_UNIX with no path.
 * dgram_len (may be NULL) gets the datagram's real length, which is larger than the returned
 * count exactly when the datagram was truncated.
 * Returns the bytes kept in buf (0 for an empty datagram) or a negative error: -EAGAIN when
 * nothing is queued, -ECONNREFUSED for an ICMP error about an earlier send on this socket. */
ssize_t nk_udp_recv(int fd, void *buf, size_t len, nk_addr *from, size_t *dgram_len);

/* Send one datagram: to a destination, or (to NULL) to the connected peer. Returns the bytes
 * sent (always len: datagrams are never sent in part) or a negative error (-EAGAIN when the
 * socket buffer is full, -EMSGSIZE when len is over the protocol's maximum, ...). */
ssize_t nk_udp_send(int fd, const void *buf, size_t len, const nk_addr *to);

NK_API_END
#ifdef __cplusplus
}
#endif

#endif
