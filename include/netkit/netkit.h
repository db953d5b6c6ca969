/* libnetkit: everything in one include. */
#ifndef NETKIT_H
#define NETKIT_H

#include <netkit/version.h> /* NETKIT_VERSION, nk_version() */
#include <netkit/api.h>
#include <netkit/err.h>
#include <netkit/loop.h>
#include <netkit/op.h>
#include <netkit/addr.h>
#include <netkit/proxy.h>
#include <netkit/sock.h>
#include <netkit/workers.h>
#include <netkit/service.h>
#include <netkit/udp.h>
#include <netkit/buf.h>
#include <netkit/frame.h>
#include <netkit/stream.h>
#include <netkit/xfer.h>
#include <netkit/http.h>
#include <netkit/httpd.h>
#include <netkit/tls.h>
#include <netkit/raw.h>

#endif
