/* SPDX-License-Identifier: Apache-2.0 */
/* testutil.h: minimal check macros shared by the test programs.
 * A failed check prints file:line and the expression and is counted;
 * test_done() prints the totals and returns the exit status. */
#ifndef SOTTO_TESTUTIL_H
#define SOTTO_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern unsigned tu_checks, tu_failures;

#define CHECK(expr)                                                            \
  do {                                                                         \
    tu_checks++;                                                               \
    if (!(expr)) {                                                             \
      tu_failures++;                                                           \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr); \
    }                                                                          \
  } while (0)

/* CHECK_RC(call, expected): compares an error code and prints both names. */
#define CHECK_RC(call, expected)                                                         \
  do {                                                                                   \
    int tu_rc_ = (call), tu_ex_ = (expected);                                            \
    tu_checks++;                                                                         \
    if (tu_rc_ != tu_ex_) {                                                              \
      tu_failures++;                                                                     \
      fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d (%s)\n", __FILE__, __LINE__, \
              #call, tu_rc_, tu_errname(tu_rc_), tu_ex_, tu_errname(tu_ex_));            \
    }                                                                                    \
  } while (0)

#define REQUIRE(expr)                                                                  \
  do {                                                                                 \
    tu_checks++;                                                                       \
    if (!(expr)) {                                                                     \
      tu_failures++;                                                                   \
      fprintf(stderr, "%s:%d: REQUIRE failed, stopping: %s\n", __FILE__, __LINE__, #expr); \
      return test_done(__FILE__);                                                      \
    }                                                                                  \
  } while (0)

const char *tu_errname(int rc);
int test_done(const char *name);
/* Decodes hex into out (cap bytes); returns the length or -1. */
long tu_unhex(uint8_t *out, size_t cap, const char *hex);
/* Reads a whole file (malloc'd, NUL-terminated); NULL on error. */
char *tu_read_file(const char *path, size_t *len);

#endif
