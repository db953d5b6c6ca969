/* Listeners of a worker group: one SO_REUSEPORT socket per worker on one address, and which
 * worker accepts on which socket. See netkit/workers.h. */
#include <netkit/sock.h>
#include <netkit/workers.h>

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

int nk_workers_listen(const nk_addr *addr, int flags, unsigned n, int *fds)
{
    if (!addr || !fds || n == 0 || (n > 1 && nk_addr_family(addr) == AF_UNIX))
        return -EINVAL;
    if (n > 1)
        flags |= NK_SOCK_REUSEPORT;
    nk_addr a = *addr;
    for (unsigned i = 0; i < n; i++) {
        int fd = nk_sock_listen(&a, SOCK_STREAM, flags, 0);
        if (fd < 0) {
            while (i > 0)
                close(fds[--i]);
            return fd;
        }
        fds[i] = fd;
        nk_addr bound;
        /* Port 0: the kernel chose one for the first socket; the others join it there. */
        if (i == 0 && nk_addr_family(&a) != AF_UNIX && nk_addr_port(&a) == 0 &&
            nk_sock_local(fd, &bound) == 0)
            nk_addr_set_port(&a, nk_addr_port(&bound));
    }
    return 0;
}

int nk_workers_takes(unsigned pos, unsigned count, unsigned index, unsigned nworkers)
{
    if (count == 0 || nworkers == 0)
        return 0;
    return pos % nworkers == index || (index >= count && pos == index % count);
}
