/*
 * hostport.h - the one "host:port" parser of the library, used by the TCP
 * calls (net.c) and the debug HTTP server (src/debug). It lives in io, the
 * lowest layer that both include.
 *
 * The rules are Go's net.SplitHostPort:
 *   "127.0.0.1:8080", "localhost:0", "[::1]:0", "[fe80::1%eth0]:80", ":8080"
 * split into host and port; an IPv6 literal must be in brackets; the host may
 * be empty (":8080": every local address when listening, the loopback when
 * dialing). One stricter rule than Go: the port must not be empty ("host:"
 * is an error, write "host:0" to pick a port).
 *
 * A port is a decimal number 0..65535 or a service name from /etc/services
 * ("http"), as Go's net.LookupPort.
 */
#ifndef GORO_IO_HOSTPORT_H
#define GORO_IO_HOSTPORT_H

#include "../runtime/runtime.h"

#include <stddef.h>
#include <stdint.h>

/* Splits addr into host (hostcap bytes) and port (portcap bytes), both
   NUL-terminated. 0, or EINVAL with *why (if why is not NULL) set to Go's
   message for the fault, e.g. "missing port in address". */
GORO__HIDDEN int goro__split_hostport(const char *addr, char *host, size_t hostcap, char *port,
                                      size_t portcap, const char **why);

/* The number of a port string: decimal 0..65535 or a service name. 0 or
   EINVAL (with *why as above). A name is looked up in the services database,
   which may block: it runs between goro_syscall_enter and _exit. */
GORO__HIDDEN int goro__parse_port(const char *port, uint16_t *out, const char **why);

#endif
