/* Helpers shared by the files of the net module (not part of the API). */
#ifndef NETKIT_NET_INTERNAL_H
#define NETKIT_NET_INTERNAL_H

#include <stddef.h>

/* A port in decimal, digits only: 0..65535, -ERANGE when larger, -EINVAL otherwise. */
int nk__port_parse(const char *s);

/* nk_addr_split, also telling whether the host was in brackets (then it must be IPv6). */
int nk__addr_split(const char *text, char *host, size_t hostlen, char *port, size_t portlen,
                   int *bracketed);

#endif
