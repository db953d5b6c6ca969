/* Datagram receive with truncation detection, and send.
 *
 * recvmsg sets MSG_TRUNC in msg_flags when the datagram did not fit; passing MSG_TRUNC in the
 * flags as well makes Linux return the datagram's real length (udp(7), unix(7)), which is what
 * a truncation report needs ("70000 bytes, 65536 kept").
 */
#include <netkit/udp.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* EINTR retries are bounded so that a signal storm cannot pin a caller in a loop. */
#define UDP_EINTR_RETRIES 100

ssize_t nk_udp_recv(int fd, void *buf, size_t len, nk_addr *from, size_t *dgram_len)
{
    for (int i = 0; i < UDP_EINTR_RETRIES; i++) {
        struct sockaddr_storage ss;
        struct iovec iov = {.iov_base = buf, .iov_len = len};
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_name = &ss;
        msg.msg_namelen = sizeof ss;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        ssize_t n = recvmsg(fd, &msg, MSG_TRUNC);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
        size_t real = (size_t)n;
        /* Should a kernel not report the real length, the flag still says it was cut. */
        if ((msg.msg_flags & MSG_TRUNC) && real <= len)
            real = len + 1;
        if (from) {
            memset(from, 0, sizeof *from);
            socklen_t alen = msg.msg_namelen;
            if (alen > sizeof from->u)
                alen = sizeof from->u;
            memcpy(&from->u, &ss, alen);
            from->len = alen;
            if (alen == 0) /* unbound unix sender: still say which family it was */
                from->u.sa.sa_family = AF_UNIX;
        }
        if (dgram_len)
            *dgram_len = real;
        return (ssize_t)(real < len ? real : len);
    }
    return -EINTR;
}

ssize_t nk_udp_send(int fd, const void *buf, size_t len, const nk_addr *to)
{
    for (int i = 0; i < UDP_EINTR_RETRIES; i++) {
        ssize_t n = to ? sendto(fd, buf, len, MSG_NOSIGNAL, &to->u.sa, to->len)
                       : send(fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
    return -EINTR;
}
