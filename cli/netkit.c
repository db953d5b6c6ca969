/* netkit: the command. Each tool lives in its own file or folder of cli/ (see cli.h); this file
 * only dispatches. */
#include "cli.h"
#include "opt.h"

#include <string.h>

static const cli_cmd commands[] = {
    {"http", "HTTP/1.1 static file server and client", cmd_http},
    {"echo", "echo server on any backend (tcp, udp, unix)", cmd_echo},
    {"lookup", "names, addresses, services, interfaces", cmd_lookup},
    {"tcp", "netcat-style TCP: listen, connect, wait", cmd_tcp},
    {"udp", "datagrams: listen, send", cmd_udp},
    {"unix", "Unix-domain stream or datagram sockets: listen, connect", cmd_unix},
    {"broadcast", "UDP broadcast: one sender, many listeners", cmd_broadcast},
    {"chat", "group chat over TCP with framed messages", cmd_chat},
    {"file", "reliable file transfer with SHA-256 checks", cmd_file},
    {"bench", "load generators: echo ping-pong", cmd_bench},
    {"ping", "ICMP echo (IPv4 and IPv6)", cmd_ping},
    {"sniff", "capture packets, decoded layer by layer", cmd_sniff},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
        printf("netkit %s\n", NETKIT_VERSION);
        return CLI_OK;
    }
    /* Not in the usage: the option lists of docs/netkit.1 come from here (scripts/man-options). */
    if (argc == 3 && strcmp(argv[1], "help") == 0 && strcmp(argv[2], "--roff") == 0)
        return cli_opt_roff_all(stdout) < 0 ? CLI_FAIL : CLI_OK;
    return cli_dispatch(NULL, commands, argc, argv);
}
