/* SPDX-License-Identifier: Apache-2.0 */
/* lspeer.h: drives @signalapp/libsignal-client@0.103.0 (TEST AND BENCHMARK PEER
 * ONLY, AGPL-3.0) running in a separate Node process (tests/libsignal/node/
 * driver.js) over a pipe, one request line and one reply line at a time.
 *
 * Nothing here links libsignal: the peer is a child process. A missing Node or
 * a missing install (scripts/fetch-libsignal-node.sh, run by `make deps`) makes
 * lspeer_start() fail, and the calling test fails with the reason. */
#ifndef SOTTO_LSPEER_H
#define SOTTO_LSPEER_H

#include <stddef.h>
#include <stdint.h>

#define LSPEER_MAX_WORDS 16

struct lspeer;

/* Starts the Node driver; NULL (reason on stderr) when it cannot run. */
struct lspeer *lspeer_start(void);
/* Closes the pipe and waits for the child. */
void lspeer_stop(struct lspeer *p);

/* Building a request: begin, then arguments, then lspeer_send(). */
void lspeer_begin(struct lspeer *p, const char *cmd);
/* Binary argument as hex; n == 0 is "." (empty), or "-" (absent) when b is NULL. */
void lspeer_arg_hex(struct lspeer *p, const uint8_t *b, size_t n);
void lspeer_arg_u(struct lspeer *p, unsigned long v);
void lspeer_arg_str(struct lspeer *p, const char *s);
/* Sends the request and reads the reply. Returns the number of words after
 * "ok" (word[i] valid until the next request), or -1 on "err" (the message in
 * lspeer_error()) or on a broken pipe. */
int lspeer_send(struct lspeer *p, char *word[LSPEER_MAX_WORDS]);
const char *lspeer_error(const struct lspeer *p);

/* Decodes a hex word ("." = empty) into out (cap bytes); returns the length or -1. */
long lspeer_unhex(uint8_t *out, size_t cap, const char *hex);

#endif
