/* SPDX-License-Identifier: Apache-2.0 */
/* daemon.h: `sotto daemon` and `sotto jsonrpc`: the JSON-RPC 2.0 front end
 * over the client core (docs/client.md, "The daemon").
 *
 * One thread, one poll(2) loop over: the core's link to the server
 * (sc_link_fd / sc_link_pending / sc_link_next_deadline, then sc_link_step),
 * the listening Unix socket and each client (or standard input and output
 * for `sotto jsonrpc`), and a self-pipe for SIGINT/SIGTERM. Requests of one
 * client are answered in order; a method that talks to the server (send,
 * createGroup...) runs to its answer, bounded by the core's request
 * timeout, while the others wait.
 *
 * Bounds: at most DAEMON_MAX_CLIENTS clients (one more is told so and
 * closed); a request line is at most RPC_MAX_LINE bytes; a client whose
 * queued answers pass DAEMON_HIGH_WATER is not read from until it reads
 * them (back-pressure), and one whose queue would pass LINEIO_OUT_MAX
 * (notifications it does not read) is disconnected. */
#ifndef SOTTO_DAEMON_H
#define SOTTO_DAEMON_H

#include "sotto_client.h"

#define DAEMON_MAX_CLIENTS 64
#define DAEMON_HIGH_WATER (1024 * 1024)
#define DAEMON_READ_CHUNK 16384
#define DAEMON_HISTORY_MAX 1000                /* entries of one history answer */
#define DAEMON_HISTORY_BYTES (2 * 1024 * 1024) /* and its text bytes */

struct daemon_opts {
  const char *home;
  const char *socket; /* NULL: standard input and output (sotto jsonrpc) */
  int lock_fd;        /* the home lock, held by the caller */
};

/* Runs until SIGINT/SIGTERM (or end of standard input). c is open (sc_open
 * done); the daemon sets its sink and connects. Returns 0, or -1 after
 * printing on stderr why it could not start (socket in use...). */
int daemon_run(struct sc_client *c, const struct daemon_opts *o);

/* Checks the socket path before anything is opened: -1 with a message in
 * err if it is too long, or a live daemon listens there. */
int daemon_socket_check(const char *path, char *err, size_t cap);

#endif
