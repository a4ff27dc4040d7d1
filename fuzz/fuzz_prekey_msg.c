/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the PreKeySignalMessage parser (v3 and v4 fields) and its
 * inner SignalMessage. */
#include <stdlib.h>

#include "wire/messages.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto__prekey_msg m;
  struct sotto__signal_msg inner;
  if (sotto__prekey_msg_parse(&m, data, size) != 0) return 0;
  if (m.message < data || m.message + m.message_len > data + size) abort();
  if (m.has_kem && (m.kem_ct < data || m.kem_ct + m.kem_ct_len > data + size)) abort();
  (void)sotto__signal_msg_parse(&inner, m.message, m.message_len);
  return 0;
}
