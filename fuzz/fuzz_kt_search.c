/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_kt_search.c: libFuzzer target for the key-transparency search proof
 * (the client side). Input: head (SOTTO_KT_HEAD_LEN) || u8 label length ||
 * label || search proof, checked against the fixed log's keys. An accepted
 * proof gives a version and a value within their limits. */
#include <stdlib.h>

#include "kt_fixed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct sotto_kt_log_id id;
  static int init;
  struct sotto_kt_head h;
  uint8_t value[SOTTO_KT_MAX_VALUE_LEN];
  uint32_t version;
  size_t vl, ll;
  if (!init) {
    if (sodium_init() < 0) abort();
    kt_fixed_log_id(&id);
    init = 1;
  }
  if (size < SOTTO_KT_HEAD_LEN + 1) return 0;
  if (sotto_kt_head_decode(&h, data, SOTTO_KT_HEAD_LEN) != 0) return 0;
  ll = data[SOTTO_KT_HEAD_LEN];
  if (size - SOTTO_KT_HEAD_LEN - 1 < ll) return 0;
  data += SOTTO_KT_HEAD_LEN + 1;
  size -= SOTTO_KT_HEAD_LEN + 1;
  if (sotto_kt_search_verify(&version, value, &vl, &h, &id, data, ll, data + ll, size - ll) == 0) {
    if (vl > SOTTO_KT_MAX_VALUE_LEN) abort();
    if (version != SOTTO_KT_ABSENT && version > SOTTO_KT_MAX_VERSION) abort();
  }
  return 0;
}
