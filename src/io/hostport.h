/*
 * hostport.h - splitting "host:port" addresses (Go's net.SplitHostPort), for
 * the I/O calls (net.c) and the debug server, so both read an address the
 * same way. Pure string work: no resolving, no system calls.
 */
#ifndef GORO_IO_HOSTPORT_H
#define GORO_IO_HOSTPORT_H

#include "runtime/runtime.h"

#include <stddef.h>
#include <stdint.h>

/* "host:port" or "[host]:port" (a host with a colon - IPv6 - needs the
   brackets) into host and port, NUL-terminated. The host may come back
   empty (":80"); the port is never empty and holds no ':', '[' or ']'; a
   bracketed host holds no '[' or ']'. 0, or EINVAL (also when a part does
   not fit its buffer). */
GORO__HIDDEN int goro__split_hostport(const char *addr, char *host, size_t hostlen, char *port,
                                      size_t portlen);

/* Whether p is a port number in decimal: 1 to 5 digits, at most 65535
   (stored in *out). */
GORO__HIDDEN bool goro__port_decimal(const char *p, uint16_t *out);

#endif
