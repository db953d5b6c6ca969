/* --cpu-affinity: each worker pinned to one CPU, and each new connection handed to the worker
 * on the CPU that received it (nginx's reuseport with worker_cpu_affinity).
 *
 * Worker w runs on the w-th CPU this process may use. The supervisor binds one SO_REUSEPORT
 * socket per worker and address, in worker order, and keeps them all open, so socket w of a
 * group is worker w's for the server's whole life (a closed socket would let the kernel move
 * the last one into its slot). A classic BPF program attached to the group
 * (SO_ATTACH_REUSEPORT_CBPF) reads the CPU the connection's first packet was handled on and
 * returns the index of the worker pinned there; on any other CPU it returns an index past the
 * group, and the kernel falls back to its hash. The connection's packets, its accept and its
 * whole life then stay on one CPU's caches. */
#include "cli.h"
#include "http/serve.h"

#include <errno.h>
#include <linux/filter.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif
#ifndef SO_DETACH_REUSEPORT_BPF
#define SO_DETACH_REUSEPORT_BPF 68
#endif

int http_affinity_cpus(int *cpus, int max)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) < 0)
        return -errno;
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < max; c++)
        if (CPU_ISSET(c, &set))
            cpus[n++] = c;
    return n;
}

int http_affinity_pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) < 0 ? -errno : 0;
}

int http_affinity_steer(int fd, const int *cpus, int nworkers)
{
    /* ld cpu; then per worker "jeq cpu_w ? ret w"; finally "ret past the group". */
    struct sock_filter code[2 * HTTP_MAX_AFFINITY + 2];
    int n = 0;
    if (nworkers > HTTP_MAX_AFFINITY)
        return -E2BIG;
    code[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_CPU);
    for (int w = 0; w < nworkers; w++) {
        code[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)cpus[w], 0, 1);
        code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (unsigned)w);
    }
    code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
    struct sock_fprog prog = {.len = (unsigned short)n, .filter = code};
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0)
        return -errno;
    return 0;
}

void http_affinity_unsteer(int fd)
{
    /* A group inherited from a server that steered: the kernel's hash again. Kernels before
     * 5.8 cannot detach (ENOPROTOOPT); their program still only picks among these sockets. */
    int zero = 0;
    (void)setsockopt(fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &zero, sizeof zero);
}
