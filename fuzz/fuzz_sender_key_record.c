/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_sender_key_record.c: our record parser (sotto_sender_key_deserialize).
 * The format is canonical, so every accepted input must serialize back to
 * exactly the same bytes; an accepted sender record must be able to sign and
 * to distribute its chain in its own layout (and refuse the other one). */
#include <stdlib.h>
#include <string.h>

#include <sotto/group.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto_sender_key *r = NULL;
  uint8_t *b, m[SOTTO_GROUP_MESSAGE_MAX_LEN(4)], d[SOTTO_SKDM_MAX_LEN];
  size_t n, mn, dn;
  uint32_t id;
  uint8_t uuid[16], other[16];
  int has_uuid;

  if (sotto_sender_key_deserialize(&r, data, size) != 0) {
    if (r != NULL) abort();
    return 0;
  }
  n = sotto_sender_key_serialized_size(r);
  if (n != size || (b = malloc(n ? n : 1)) == NULL) abort();
  if (sotto_sender_key_serialize(r, b, n, &n) != 0 || n != size || memcmp(b, data, n) != 0) abort();
  free(b);
  if (sotto_sender_key_own_chain_id(r, &id) == 0) {
    int rc = sotto_group_encrypt(r, m, sizeof m, &mn, (const uint8_t *)"ping", 4);
    if (rc != 0 && rc != SOTTO_ERR_TOO_LARGE) abort(); /* TOO_LARGE: exhausted chain */
    if (sotto_sender_key_own_distribution_uuid(r, uuid, &has_uuid) != 0) abort();
    if (has_uuid) {
      memcpy(other, uuid, sizeof other);
      other[0] ^= 1;
      if (sotto_sender_key_distribution(r, d, sizeof d, &dn) != SOTTO_ERR_USAGE) abort();
      if (sotto_sender_key_distribution_uuid(r, d, sizeof d, &dn, other) != SOTTO_ERR_USAGE) abort();
      if (sotto_sender_key_distribution_uuid(r, d, sizeof d, &dn, uuid) != 0) abort();
    } else {
      if (sotto_sender_key_distribution_uuid(r, d, sizeof d, &dn, uuid) != SOTTO_ERR_USAGE) abort();
      if (sotto_sender_key_distribution(r, d, sizeof d, &dn) != 0) abort();
    }
  } else if (sotto_sender_key_own_distribution_uuid(r, uuid, &has_uuid) != SOTTO_ERR_NOT_SENDER) {
    abort();
  }
  sotto_sender_key_free(r);
  return 0;
}
