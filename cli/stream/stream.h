/* The stream commands: netkit tcp listen|connect|wait and the stream half of netkit unix
 * listen|connect. */
#ifndef NETKIT_CLI_STREAM_H
#define NETKIT_CLI_STREAM_H

/* Resolved addresses tried in turn by tcp connect and tcp wait. */
#define STREAM_MAX_ADDRS 16

/* netkit tcp wait (stream/tcp_wait.c). */
int tcp_wait(int argc, char **argv);

#endif
