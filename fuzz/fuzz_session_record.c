/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the session record loader. Whatever loads must serialize
 * back to the same bytes and survive an encrypt. */
#include <sotto/session.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto_session *s = NULL;
  uint8_t *out;
  size_t n, len;
  static uint8_t msg[SOTTO_SESSION_ENCRYPTED_MAX(16)];
  int type;

  if (sotto_session_deserialize(&s, data, size) != 0) {
    if (s != NULL) abort();
    return 0;
  }
  n = sotto_session_serialized_size(s);
  out = malloc(n ? n : 1);
  if (out == NULL || sotto_session_serialize(s, out, n, &len) != 0 || len != size ||
      memcmp(out, data, size) != 0)
    abort();
  free(out);
  if (sotto_session_has_state(s))
    if (sotto_session_encrypt(s, msg, sizeof msg, &len, &type, (const uint8_t *)"fuzz", 4) == 0 &&
        type != SOTTO_MSG_SIGNAL && type != SOTTO_MSG_PREKEY)
      abort();
  sotto_session_free(s);
  return 0;
}
