/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the SignalMessage parser, then a decrypt attempt with a fixed
 * session record (so the MAC/ratchet paths see the parsed values). */
#include <sotto/session.h>
#include <stdlib.h>

#include "wire/messages.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto__signal_msg m;
  static uint8_t pt[8192];
  size_t n;
  struct sotto_session *s;
  if (sotto__signal_msg_parse(&m, data, size) == 0) {
    if (m.ciphertext_len == 0 || m.ciphertext_len % 16 || m.mac_input_len + 8 != size) abort();
  }
  if (sotto_session_new(&s) == 0) {
    if (sotto_session_decrypt(s, NULL, NULL, SOTTO_MSG_SIGNAL, data, size, pt, sizeof pt, &n) == 0) abort();
    sotto_session_free(s);
  }
  return 0;
}
