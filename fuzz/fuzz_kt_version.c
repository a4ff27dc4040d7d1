/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_kt_version.c: libFuzzer target for the key-transparency version
 * proof (monitoring of every version, the client side). Input: head
 * (SOTTO_KT_HEAD_LEN) || u8 label length || label || u32 version || version
 * proof, checked against the fixed log's keys. An accepted proof gives a
 * value within its limit. */
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
  data += SOTTO_KT_HEAD_LEN + 1;
  size -= SOTTO_KT_HEAD_LEN + 1;
  if (size < ll + 4) return 0;
  version = (uint32_t)data[ll] << 24 | (uint32_t)data[ll + 1] << 16 | (uint32_t)data[ll + 2] << 8 | data[ll + 3];
  if (sotto_kt_version_verify(value, &vl, &h, &id, data, ll, version & 0x7FFFFFFFu, data + ll + 4, size - ll - 4) ==
      0) {
    if (vl > SOTTO_KT_MAX_VALUE_LEN) abort();
  }
  return 0;
}
