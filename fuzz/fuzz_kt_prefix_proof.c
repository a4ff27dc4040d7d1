/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_kt_prefix_proof.c: libFuzzer target for the prefix-tree search proof
 * parser. Input: search key (32) || proof. When the proof parses, the root
 * it implies must verify it, with the same inclusion result; one flipped
 * root bit must not. */
#include <stdlib.h>
#include <string.h>

#include <sotto/kt.h>

#include "kt/kt_internal.h"
#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t root[32], c[32], c2[32];
  int found, found2;
  struct sotto__rd r;
  if (size < 32) return 0;
  sotto__rd_init(&r, data + 32, size - 32);
  if (sotto__kt_prefix_eval(root, &found, c, data, &r) != 0) {
    if (sotto_kt_prefix_verify(&found2, c2, root, data, data + 32, size - 32) == 0) abort();
    return 0;
  }
  if (sotto__rd_left(&r) != 0) {
    if (sotto_kt_prefix_verify(&found2, c2, root, data, data + 32, size - 32) != SOTTO_ERR_TRAILING) abort();
    return 0;
  }
  if (sotto_kt_prefix_verify(&found2, c2, root, data, data + 32, size - 32) != 0) abort();
  if (found2 != found || memcmp(c, c2, 32) != 0) abort();
  root[0] ^= 1;
  if (sotto_kt_prefix_verify(&found2, c2, root, data, data + 32, size - 32) != SOTTO_ERR_AUTH) abort();
  return 0;
}
