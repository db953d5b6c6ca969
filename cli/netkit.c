/* netkit: the command. Each noun lives in its own cmd_<noun>.c; this file only dispatches. */
#include "cli.h"

#include <string.h>

static const cli_cmd commands[] = {
    {"http", "HTTP/1.1 static file server and client", cmd_http},
    {"echo", "echo server on any backend (tcp, udp, unix)", cmd_echo},
    {"lookup", "names, addresses, services, interfaces", cmd_lookup},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
        printf("netkit %s\n", NETKIT_VERSION);
        return CLI_OK;
    }
    return cli_dispatch(NULL, commands, argc, argv);
}
