/* CPU pinning of workers, and a reuseport group steered by CPU (nginx's reuseport with
 * worker_cpu_affinity): a classic BPF program attached to the group reads the CPU the
 * connection's first packet was handled on and returns the index of the socket whose worker is
 * pinned there; on any other CPU it returns an index past the group, and the kernel falls back
 * to its hash. A connection's packets, its accept and its whole life then stay on one CPU's
 * caches. */
#include <netkit/workers.h>

#include <errno.h>
#include <linux/filter.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif
#ifndef SO_DETACH_REUSEPORT_BPF
#define SO_DETACH_REUSEPORT_BPF 68
#endif

int nk_cpu_list(int *cpus, int max)
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

int nk_cpu_pin(int cpu)
{
    if (cpu < 0 || cpu >= CPU_SETSIZE)
        return -EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) < 0 ? -errno : 0;
}

int nk_reuseport_steer(int fd, const int *cpus, unsigned nworkers)
{
    /* ld cpu; then per worker "jeq cpu_w ? ret w"; finally "ret past the group". */
    unsigned len = 2 * nworkers + 2;
    if (nworkers == 0 || len > BPF_MAXINSNS)
        return -E2BIG;
    struct sock_filter *code = malloc(len * sizeof *code);
    if (!code)
        return -ENOMEM;
    unsigned n = 0;
    code[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_CPU);
    for (unsigned w = 0; w < nworkers; w++) {
        code[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)cpus[w], 0, 1);
        code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, w);
    }
    code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
    /* Zeroed whole: the kernel copies sizeof prog bytes, padding included, and an initializer
     * leaves the padding after len undefined (memcheck reports the syscall reading it). */
    struct sock_fprog prog;
    memset(&prog, 0, sizeof prog);
    prog.len = (unsigned short)n;
    prog.filter = code;
    int rc = setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0 ? -errno : 0;
    free(code);
    return rc;
}

void nk_reuseport_unsteer(int fd)
{
    /* Kernels before 5.8 cannot detach (ENOPROTOOPT); their program still only picks among the
     * group's sockets. */
    int zero = 0;
    (void)setsockopt(fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &zero, sizeof zero);
}
