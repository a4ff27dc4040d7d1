/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_skdm.c: SenderKeyDistributionMessage parser (sotto_sender_key_process).
 * Invariants checked: a rejected message leaves the record empty; an
 * accepted one adds exactly one state, survives a serialize/deserialize
 * round trip byte for byte, and re-processing it changes nothing. */
#include <stdlib.h>
#include <string.h>

#include <sotto/group.h>

static uint8_t *ser(const struct sotto_sender_key *r, size_t *n) {
  size_t cap = sotto_sender_key_serialized_size(r);
  uint8_t *b = malloc(cap ? cap : 1);
  if (b == NULL || sotto_sender_key_serialize(r, b, cap, n) != 0 || *n != cap) abort();
  return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto_sender_key *r = NULL, *c = NULL;
  uint8_t *b1, *b2, d[SOTTO_SKDM_MAX_LEN];
  size_t n1, n2, dn;

  if (sotto_sender_key_new(&r) != 0) abort();
  if (sotto_sender_key_process(r, data, size) != 0) {
    if (sotto_sender_key_state_count(r) != 0) abort();
    sotto_sender_key_free(r);
    return 0;
  }
  if (sotto_sender_key_state_count(r) != 1) abort();
  b1 = ser(r, &n1);
  if (sotto_sender_key_process(r, data, size) != 0) abort();
  b2 = ser(r, &n2);
  if (n1 != n2 || memcmp(b1, b2, n1) != 0) abort();
  free(b2);
  if (sotto_sender_key_deserialize(&c, b1, n1) != 0) abort();
  b2 = ser(c, &n2);
  if (n1 != n2 || memcmp(b1, b2, n1) != 0) abort();
  free(b1);
  free(b2);
  /* A member's record cannot encrypt, but can start its own chain. */
  if (sotto_group_encrypt(c, d, sizeof d, &dn, d, 0) != SOTTO_ERR_NOT_SENDER) abort();
  if (sotto_sender_key_distribution(c, d, sizeof d, &dn) != 0) abort();
  if (sotto_sender_key_state_count(c) != 2) abort();
  sotto_sender_key_free(c);
  sotto_sender_key_free(r);
  return 0;
}
