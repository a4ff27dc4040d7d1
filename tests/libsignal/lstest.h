/* SPDX-License-Identifier: Apache-2.0 */
/* lstest.h: small helpers shared by the libsignal interop tests. */
#ifndef SOTTO_LSTEST_H
#define SOTTO_LSTEST_H

#include <stdio.h>
#include <string.h>

#include "lspeer.h"
#include "testutil.h"
#include "wire/wire.h"

/* REQUIRE for void functions; prints the peer's last error. */
#define LS_REQUIRE(p, expr)                                                                  \
  do {                                                                                       \
    tu_checks++;                                                                             \
    if (!(expr)) {                                                                           \
      tu_failures++;                                                                         \
      fprintf(stderr, "%s:%d: REQUIRE failed: %s (peer: %s)\n", __FILE__, __LINE__, #expr,   \
              lspeer_error(p));                                                              \
      return;                                                                                \
    }                                                                                        \
  } while (0)

/* The first length-delimited field `num` of a protobuf message, or NULL. */
static inline const uint8_t *ls_pb_field(const uint8_t *p, size_t len, uint32_t num,
                                         size_t *out_len) {
  struct sotto__rd r;
  struct sotto__pb_field f;
  sotto__rd_init(&r, p, len);
  while (sotto__pb_next(&r, &f) == 1) {
    if (f.num == num && f.wt == SOTTO__PB_LEN) {
      *out_len = f.len;
      return f.p;
    }
  }
  return NULL;
}

#endif
