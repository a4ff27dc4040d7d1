/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_kt_head.c: libFuzzer target for the key-transparency tree head and its
 * witness cosignatures. Input: head (SOTTO_KT_HEAD_LEN bytes) || cosignatures.
 * A decoded head re-encodes to the same bytes; the quorum check (the fixed
 * log and two fixed witnesses, k = 1) must not crash and its count of valid
 * witnesses is never above two. */
#include <stdlib.h>

#include "kt_fixed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct sotto_kt_log_id id;
  static uint8_t pks[64];
  static int init;
  struct sotto_kt_head h;
  uint8_t again[SOTTO_KT_HEAD_LEN];
  unsigned valid = 0;
  size_t hl = size < SOTTO_KT_HEAD_LEN ? size : SOTTO_KT_HEAD_LEN;
  int rc;
  if (!init) {
    if (sodium_init() < 0) abort();
    kt_fixed_log_id(&id);
    kt_fixed_witness_pks(pks);
    init = 1;
  }
  if (sotto_kt_head_decode(&h, data, hl) != 0) return 0;
  sotto_kt_head_encode(again, &h);
  if (memcmp(again, data, SOTTO_KT_HEAD_LEN) != 0) abort();
  rc = sotto_kt_head_verify_quorum(&valid, &h, &id, pks, 2, 1, data + hl, size - hl);
  if (valid > 2 || (rc == 0 && valid < 1)) abort();
  return 0;
}
