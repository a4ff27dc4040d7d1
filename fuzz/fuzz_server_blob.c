/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_server_blob.c: libFuzzer target for the blob (attachment) messages of
 * the sotto-server protocol (proto/blob.c): the seven requests the server
 * parses and the three answers the client parses. The first input byte
 * picks the message (bit 3 set: FETCHES; else the low 3 bits: CREATE, PUT,
 * STAT, COMMIT, GET, DONE, then the CREATE, PUT and STAT answers), the rest
 * is its payload. Whatever
 * parses stays in the protocol's bounds and re-encodes to the same bytes
 * (the encoding is canonical). blob.c is compiled in directly because the
 * libFuzzer build of fuzz/ links libsotto only. */
#include "blob.c"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t out[SOTTO_SRV_BLOB_MAX_CHUNK + 64];
  struct sotto__wr w;
  uint8_t sel, id[SOTTO_SRV_BLOB_ID_LEN];
  const uint8_t *p;
  size_t n;
  if (size < 1) return 0;
  sel = data[0] & 7;
  p = data + 1;
  n = size - 1;
  sotto__wr_init(&w, out, sizeof out);
  if (data[0] & 8) {
    struct sotto_srv_blob_req m;
    if (sotto__srv_parse_blob_req(SOTTO_SRV_BLOB_FETCHES, p, n, &m) != 0) return 0;
    if (m.fetches == 0 || m.fetches > SOTTO_SRV_BLOB_MAX_FETCHES || !m.id || m.id != p ||
        n != SOTTO_SRV_BLOB_ID_LEN + 2)
      abort();
    sotto__srv_put_blob_req(&w, SOTTO_SRV_BLOB_FETCHES, &m);
  } else if (sel < 6) {
    static const uint8_t types[6] = {SOTTO_SRV_BLOB_CREATE, SOTTO_SRV_BLOB_PUT, SOTTO_SRV_BLOB_STAT,
                                     SOTTO_SRV_BLOB_COMMIT, SOTTO_SRV_BLOB_GET,  SOTTO_SRV_BLOB_DONE};
    struct sotto_srv_blob_req m;
    if (sotto__srv_parse_blob_req(types[sel], p, n, &m) != 0) return 0;
    if (types[sel] == SOTTO_SRV_BLOB_CREATE &&
        (m.size == 0 || m.size > SOTTO_SRV_BLOB_MAX_SIZE || m.fetches == 0 || m.fetches > SOTTO_SRV_BLOB_MAX_FETCHES))
      abort();
    if (types[sel] == SOTTO_SRV_BLOB_PUT && (m.data_len == 0 || m.data_len > SOTTO_SRV_BLOB_MAX_CHUNK)) abort();
    if (types[sel] == SOTTO_SRV_BLOB_GET && (m.max == 0 || m.max > SOTTO_SRV_BLOB_MAX_CHUNK)) abort();
    if (types[sel] != SOTTO_SRV_BLOB_CREATE && (!m.id || m.id < p || m.id + SOTTO_SRV_BLOB_ID_LEN > p + n)) abort();
    sotto__srv_put_blob_req(&w, types[sel], &m);
  } else if (sel == 6) {
    uint64_t exp;
    if (sotto__srv_parse_blob_created(p, n, id, &exp) != 0) return 0;
    sotto__srv_put_blob_created(&w, id, exp);
  } else {
    struct sotto_srv_blob_stat st;
    uint64_t stored;
    if (sotto__srv_parse_blob_stored(p, n, &stored) == 0) {
      if (n != 8 || stored > SOTTO_SRV_BLOB_MAX_SIZE) abort();
      sotto__wr_u64be(&w, stored);
    } else if (sotto__srv_parse_blob_stat(p, n, &st) == 0) {
      if (st.stored > st.size || st.committed > 1) abort();
      sotto__srv_put_blob_stat(&w, &st);
    } else {
      return 0;
    }
  }
  if (w.err || w.len != n || memcmp(out, p, n) != 0) abort();
  return 0;
}
