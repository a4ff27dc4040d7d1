/* SPDX-License-Identifier: Apache-2.0 */
/* lineio.h: bounded line input and bounded output queues for the daemon's
 * clients. A client cannot grow the daemon's memory without bound: a line
 * is at most RPC_MAX_LINE bytes (the rest of a longer one is skipped up to
 * its newline and reported once), and what waits to be written to a client
 * is at most LINEIO_OUT_MAX bytes (a client that does not read its answers
 * or notifications is disconnected when over). */
#ifndef SOTTO_DAEMON_LINEIO_H
#define SOTTO_DAEMON_LINEIO_H

#include <stddef.h>
#include <sys/types.h>

#define LINEIO_OUT_MAX (8u * 1024 * 1024)

struct line_in {
  char *buf; /* grows by doubling from 4 KiB up to RPC_MAX_LINE + 1 bytes */
  size_t cap;
  size_t len;   /* bytes of the current, incomplete line */
  int skipping; /* inside an overlong line: drop up to its newline */
};

/* Called per complete line (without '\n', NUL-terminated at line[len]); an
 * overlong line gives one call with line == NULL. Non-zero stops the feed
 * and is returned by line_in_feed. */
typedef int (*line_cb)(void *ud, const char *line, size_t len);

/* Feeds n bytes. Returns 0, what cb returned, or -1 (no memory). *used
 * gets how many bytes were consumed (all of them unless cb stopped). */
int line_in_feed(struct line_in *li, const char *data, size_t n, size_t *used, line_cb cb, void *ud);
void line_in_free(struct line_in *li);

struct line_out {
  char *buf;
  size_t off, len, cap; /* pending bytes are buf[off..len) */
  size_t max;           /* LINEIO_OUT_MAX unless set lower (tests) */
};

/* Queues s[0..n) and a newline. -1 if that would put more than max bytes
 * in the queue (the caller disconnects the client) or no memory. */
int line_out_push(struct line_out *lo, const char *s, size_t n);
/* Writes what it can to fd without blocking. 0 when the queue is empty,
 * 1 when bytes remain (wait for POLLOUT), -1 on a write error. */
int line_out_flush(struct line_out *lo, int fd);
size_t line_out_pending(const struct line_out *lo);
void line_out_free(struct line_out *lo);

#endif
