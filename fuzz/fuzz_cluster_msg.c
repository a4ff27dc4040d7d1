/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_cluster_msg.c: what cluster mode reads from Redis (server/cluster_msg.h):
 * an announcement on a node's channel and a device registry value.
 * Invariants: a parsed announcement has a known kind and a devkey > 0, and
 * prints back to exactly the bytes it came from (so nothing was skipped or
 * read past the end); a parsed registry value has a non-empty node name of
 * the allowed characters and prints back exactly too; nothing reads out of
 * bounds (ASan). The input is copied to a buffer of its own size so that a
 * read past it is caught. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *m = malloc(size ? size : 1), out[256], node[SOTTO_CLUSTER_NODE_MAX + 1];
  struct sotto_cluster_msg a;
  uint64_t gen;
  int n;
  if (!m) return 0;
  if (size) memcpy(m, data, size);
  if (sotto__cluster_msg_parse(m, size, &a) == 0) {
    if ((a.kind != 'm' && a.kind != 'r' && a.kind != 'k') || a.devkey <= 0) abort();
    n = a.kind == 'k' ? snprintf(out, sizeof out, "k %lld %llu", (long long)a.devkey, (unsigned long long)a.gen)
                      : snprintf(out, sizeof out, "%c %lld", a.kind, (long long)a.devkey);
    if (n < 0 || (size_t)n != size || memcmp(out, m, size) != 0) abort();
  }
  if (sotto__cluster_reg_parse(m, size, node, &gen) == 0) {
    size_t nl = strlen(node);
    if (nl == 0 || nl > SOTTO_CLUSTER_NODE_MAX ||
        strspn(node, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != nl)
      abort();
    n = snprintf(out, sizeof out, "%s %llu", node, (unsigned long long)gen);
    if (n < 0 || (size_t)n != size || memcmp(out, m, size) != 0) abort();
  }
  free(m);
  return 0;
}
