/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_kt_update.c: libFuzzer target for the witness: a log entry's update
 * and the head that claims it. Input: head (SOTTO_KT_HEAD_LEN) || update,
 * applied to a fresh witness of the fixed log. An accepted pair leaves the
 * witness at size 1 and cosignable; a refused one leaves it empty. */
#include <stdlib.h>

#include "kt_fixed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct sotto_kt_log_id id;
  static int init;
  struct sotto_kt_witness *w = NULL;
  struct sotto_kt_head h;
  uint8_t cosig[SOTTO_KT_COSIG_LEN];
  if (!init) {
    if (sodium_init() < 0) abort();
    kt_fixed_log_id(&id);
    init = 1;
  }
  if (size < SOTTO_KT_HEAD_LEN || sotto_kt_head_decode(&h, data, SOTTO_KT_HEAD_LEN) != 0) return 0;
  if (sotto_kt_witness_new(&w, &id) != 0) abort();
  if (sotto_kt_witness_apply(w, data + SOTTO_KT_HEAD_LEN, size - SOTTO_KT_HEAD_LEN, &h) == 0) {
    if (sotto_kt_witness_size(w) != 1) abort();
    if (sotto_kt_witness_cosign(cosig, w, kt_fixed_w1, 1, &h) != 0) abort();
  } else if (sotto_kt_witness_size(w) != 0) {
    abort();
  }
  sotto_kt_witness_free(w);
  return 0;
}
