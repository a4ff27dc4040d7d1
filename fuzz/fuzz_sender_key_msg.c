/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_sender_key_msg.c: SenderKeyMessage parser and decrypt path.
 * Input framing: [1 byte n][n-byte SenderKeyDistributionMessage][message];
 * the distribution message (possibly invalid) seeds the record, then the
 * message is decrypted twice. Invariants: a failed decrypt leaves the
 * record unchanged and the output zeroed; a message never decrypts twice. */
#include <stdlib.h>
#include <string.h>

#include <sotto/group.h>

static uint8_t *ser(const struct sotto_sender_key *r, size_t *n) {
  size_t cap = sotto_sender_key_serialized_size(r);
  uint8_t *b = malloc(cap ? cap : 1);
  if (b == NULL || sotto_sender_key_serialize(r, b, cap, n) != 0 || *n != cap) abort();
  return b;
}

static int all_zero(const uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto_sender_key *r = NULL;
  const uint8_t *msg;
  size_t dn, mn, cap, pn, n1, n2;
  uint8_t *pt, *b1, *b2;
  uint32_t id;
  int rc;

  if (size < 1) return 0;
  dn = data[0];
  if (dn > size - 1) return 0;
  msg = data + 1 + dn;
  mn = size - 1 - dn;
  if (sotto_sender_key_new(&r) != 0) abort();
  /* Either may fail: the record may stay empty. */
  if (sotto_sender_key_process(r, data + 1, dn) != 0 && sotto_sender_key_state_count(r) != 0)
    abort();
  if (sotto_group_message_chain_id(msg, mn, &id) != 0) id = 0;

  cap = mn + 1;
  if ((pt = malloc(cap)) == NULL) abort();
  b1 = ser(r, &n1);
  memset(pt, 0xAA, cap);
  rc = sotto_group_decrypt(r, pt, cap, &pn, msg, mn);
  if (rc != 0) {
    b2 = ser(r, &n2);
    if (n1 != n2 || memcmp(b1, b2, n1) != 0 || pn != 0 || !all_zero(pt, cap)) abort();
    free(b2);
  } else {
    if (pn > mn) abort();
    if (sotto_group_decrypt(r, pt, cap, &pn, msg, mn) != SOTTO_ERR_DUPLICATE) abort();
  }
  free(b1);
  free(pt);
  sotto_sender_key_free(r);
  return 0;
}
