/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_server_link.c: libFuzzer target for the link-slot and device-identity
 * messages of the sotto-server protocol (proto.c, "linking"): the four
 * LINK_* requests and DEVICE_IDENTITY the server parses, and the three
 * answers the client parses. The first input byte picks the message (low 3
 * bits: OPEN, PUT, GET, REPLY, DEVICE_IDENTITY, then the OPEN, PUT and GET
 * answers), the rest is its payload. Whatever parses stays in the
 * protocol's bounds and re-encodes to the same bytes. proto.c is compiled
 * in directly (the libFuzzer build links libsotto only). */
#include "proto.c"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void in(const uint8_t *x, size_t xl, const uint8_t *p, size_t n) {
  if (xl && (!x || x < p || x + xl > p + n)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t out[SOTTO_SRV_LINK_MAX_BLOB + 64];
  struct sotto__wr w;
  const uint8_t *p;
  size_t n;
  uint8_t sel;
  if (size < 1) return 0;
  sel = data[0] & 7;
  p = data + 1;
  n = size - 1;
  sotto__wr_init(&w, out, sizeof out);
  if (sel < 4) {
    static const uint8_t types[4] = {SOTTO_SRV_LINK_OPEN, SOTTO_SRV_LINK_PUT, SOTTO_SRV_LINK_GET,
                                     SOTTO_SRV_LINK_REPLY};
    struct sotto_srv_link m;
    if (sotto__srv_parse_link_req(types[sel], p, n, &m) != 0) return 0;
    if (types[sel] != SOTTO_SRV_LINK_OPEN) in(m.code, SOTTO_SRV_LINK_CODE_LEN, p, n);
    in(m.data, m.data_len, p, n);
    if (types[sel] == SOTTO_SRV_LINK_OPEN && (m.data_len == 0 || m.data_len > SOTTO_SRV_LINK_MAX_KEYS)) abort();
    if (types[sel] == SOTTO_SRV_LINK_PUT && m.data_len > SOTTO_SRV_LINK_MAX_BLOB) abort();
    if (types[sel] == SOTTO_SRV_LINK_GET && m.data_len) abort();
    if (types[sel] == SOTTO_SRV_LINK_REPLY && (m.data_len == 0 || m.data_len > SOTTO_SRV_LINK_MAX_REPLY)) abort();
    sotto__srv_put_link_req(&w, types[sel], &m);
  } else if (sel == 4) {
    struct sotto_srv_str ik;
    if (sotto__srv_parse_device_identity(p, n, &ik) != 0) return 0;
    in(ik.p, ik.len, p, n);
    if (ik.len < SOTTO_SRV_DEVICE_IDENTITY_MIN || ik.len > SOTTO_SRV_MAX_IDENTITY || ik.p[0] != 0x05) abort();
    sotto__srv_put_device_identity(&w, ik.p, ik.len);
  } else if (sel == 5) {
    const uint8_t *code;
    uint32_t ttl;
    if (sotto__srv_parse_link_opened(p, n, &code, &ttl) != 0) return 0;
    sotto__srv_put_link_opened(&w, code, ttl);
  } else if (sel == 6) {
    const uint8_t *keys;
    size_t kl;
    if (sotto__srv_parse_link_keys(p, n, &keys, &kl) != 0) return 0;
    if (kl == 0 || kl > SOTTO_SRV_LINK_MAX_KEYS) abort();
    sotto__srv_put_blob16(&w, keys, kl);
  } else {
    const uint8_t *d;
    size_t dl;
    uint8_t st;
    if (sotto__srv_parse_link_state(p, n, &st, &d, &dl) != 0) return 0;
    if (st > SOTTO_SRV_LINK_REPLIED || (st == SOTTO_SRV_LINK_WAITING && dl) ||
        (st == SOTTO_SRV_LINK_PROVISIONED && dl == 0) ||
        dl > (st == SOTTO_SRV_LINK_REPLIED ? SOTTO_SRV_LINK_MAX_REPLY : SOTTO_SRV_LINK_MAX_BLOB))
      abort();
    in(d, dl, p, n);
    sotto__srv_put_link_state(&w, st, d, dl);
  }
  if (w.err || w.len != n || memcmp(out, p, n) != 0) abort();
  return 0;
}
