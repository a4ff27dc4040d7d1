/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the session record loader. Whatever loads must serialize
 * back to the same bytes, or, if it held skipped keys of receiving chains
 * the state no longer has (the loader leaves those out: they can open
 * nothing), to a shorter record that itself round-trips exactly. And it
 * must survive an encrypt. */
#include <sotto/session.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *reserialize(const struct sotto_session *s, size_t *len) {
  size_t n = sotto_session_serialized_size(s);
  uint8_t *out = malloc(n ? n : 1);
  if (out == NULL || sotto_session_serialize(s, out, n, len) != 0 || *len != n) abort();
  return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto_session *s = NULL, *s2 = NULL;
  uint8_t *out, *out2;
  size_t len, len2;
  static uint8_t msg[SOTTO_SESSION_ENCRYPTED_MAX(16)];
  int type;

  if (sotto_session_deserialize(&s, data, size) != 0) {
    if (s != NULL) abort();
    return 0;
  }
  out = reserialize(s, &len);
  if (len != size || memcmp(out, data, size) != 0) {
    /* Only dropped orphan keys (68 bytes each) may make the difference. */
    if (len >= size || (size - len) % (32 + 4 + 32) != 0) abort();
    if (sotto_session_deserialize(&s2, out, len) != 0) abort();
    out2 = reserialize(s2, &len2);
    if (len2 != len || memcmp(out2, out, len) != 0) abort();
    free(out2);
    sotto_session_free(s2);
  }
  free(out);
  if (sotto_session_has_state(s))
    if (sotto_session_encrypt(s, msg, sizeof msg, &len, &type, (const uint8_t *)"fuzz", 4) == 0 &&
        type != SOTTO_MSG_SIGNAL && type != SOTTO_MSG_PREKEY)
      abort();
  sotto_session_free(s);
  return 0;
}
