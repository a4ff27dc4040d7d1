/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_server_kt.c: libFuzzer target for the key-transparency request and
 * answer parsers of proto/ (KT_SEARCH, KT_CONSISTENCY, KT_UPDATES, KT_COSIGN,
 * KT_VERSIONS requests; KT_CONFIG, KT_HEAD, proof, KT_UPDATES and KT_VERSIONS
 * answers). A successful parse is
 * re-encoded and must give back the input bytes (the encodings are
 * canonical). proto.c is compiled in directly because the libFuzzer build of
 * fuzz/ links libsotto only. */
#include <stdlib.h>

#include "proto.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[1 << 20];

static void same(const struct sotto__wr *w, const uint8_t *data, size_t size) {
  if (w->err || w->len != size || memcmp(out, data, size) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto_srv_str user;
  struct sotto_srv_kt_range rg;
  struct sotto_srv_kt_cosign cs;
  struct sotto_srv_kt_config kc;
  struct sotto_srv_kt_head kh;
  struct sotto_srv_kt_proof kp;
  struct sotto_srv_kt_entry ke[SOTTO_SRV_KT_MAX_UPDATES];
  struct sotto_srv_kt_versions_req vq;
  struct sotto_srv_kt_versions vs;
  struct sotto__wr w;
  uint64_t old;
  size_t n, i;
  if (size > sizeof out) return 0;
  if (sotto__srv_parse_kt_search_req(data, size, &user) == 0) {
    if (!sotto__srv_username_ok(user.p, user.len)) abort();
    sotto__wr_init(&w, out, sizeof out);
    sotto__srv_put_str8(&w, user.p, user.len);
    same(&w, data, size);
  }
  if (sotto__srv_parse_kt_consistency_req(data, size, &old) == 0) {
    if (old == 0 || old > (1ull << 62)) abort();
    sotto__wr_init(&w, out, sizeof out);
    sotto__srv_put_u64_req(&w, old);
    same(&w, data, size);
  }
  if (sotto__srv_parse_kt_updates_req(data, size, &rg) == 0) {
    if (rg.count == 0 || rg.count > SOTTO_SRV_KT_MAX_UPDATES) abort();
    sotto__wr_init(&w, out, sizeof out);
    sotto__srv_put_kt_updates_req(&w, rg.first, rg.count);
    same(&w, data, size);
  }
  if (sotto__srv_parse_kt_cosign_req(data, size, &cs) == 0) {
    sotto__wr_init(&w, out, sizeof out);
    sotto__srv_put_kt_cosign_req(&w, cs.witness_pk, cs.head, cs.cosig);
    same(&w, data, size);
  }
  if (sotto__srv_parse_kt_config(data, size, &kc) == 0) {
    if (kc.n > SOTTO_SRV_KT_MAX_WITNESSES) abort();
    for (i = 0; i < kc.n; i++)
      if (!sotto__srv_kt_name_ok(kc.w[i].name.p, kc.w[i].name.len)) abort();
    sotto__wr_init(&w, out, sizeof out);
    sotto__srv_put_kt_config(&w, &kc);
    same(&w, data, size);
  }
  if (sotto__srv_parse_kt_head(data, size, &kh) == 0) {
    if (kh.n_cosigs > SOTTO_SRV_KT_MAX_COSIGS) abort();
    sotto__wr_init(&w, out, sizeof out);
    sotto__srv_put_kt_head(&w, kh.head, kh.cosigs, kh.n_cosigs);
    same(&w, data, size);
  }
  if (sotto__srv_parse_kt_proof(data, size, &kp) == 0) {
    if (kp.proof_len > SOTTO_SRV_KT_MAX_PROOF) abort();
    sotto__wr_init(&w, out, sizeof out);
    sotto__srv_put_kt_proof(&w, kp.head, kp.proof, kp.proof_len);
    same(&w, data, size);
  }
  if (sotto__srv_parse_kt_versions_req(data, size, &vq) == 0) {
    char u[SOTTO_SRV_USER_MAX + 1];
    if (vq.kind > 1 || vq.from > 0x7FFFFFFFu || vq.count == 0 || vq.count > SOTTO_SRV_KT_MAX_VERSIONS ||
        !sotto__srv_username_ok(vq.user.p, vq.user.len))
      abort();
    memcpy(u, vq.user.p, vq.user.len);
    u[vq.user.len] = 0;
    sotto__wr_init(&w, out, sizeof out);
    sotto__srv_put_kt_versions_req(&w, vq.kind, vq.from, vq.count, u);
    same(&w, data, size);
  }
  if (sotto__srv_parse_kt_versions(data, size, &vs) == 0) {
    if (vs.n == 0 || vs.n > SOTTO_SRV_KT_MAX_VERSIONS) abort();
    sotto__wr_init(&w, out, sizeof out);
    sotto__wr_bytes(&w, vs.head, SOTTO_SRV_KT_HEAD_LEN);
    sotto__wr_u8(&w, (uint8_t)vs.n);
    for (i = 0; i < vs.n; i++) {
      if (vs.v[i].proof_len == 0 || vs.v[i].proof_len > SOTTO_SRV_KT_MAX_VERSION_PROOF ||
          vs.v[i].list_len > SOTTO_SRV_MAX_DEVLIST)
        abort();
      sotto__wr_u32be(&w, (uint32_t)vs.v[i].proof_len);
      sotto__wr_bytes(&w, vs.v[i].proof, vs.v[i].proof_len);
      sotto__wr_u32be(&w, (uint32_t)vs.v[i].list_len);
      sotto__wr_bytes(&w, vs.v[i].list, vs.v[i].list_len);
    }
    same(&w, data, size);
  }
  if (sotto__srv_parse_kt_updates(data, size, ke, SOTTO_SRV_KT_MAX_UPDATES, 4096, &n) == 0) {
    sotto__wr_init(&w, out, sizeof out);
    sotto__wr_u8(&w, (uint8_t)(n >> 8));
    sotto__wr_u8(&w, (uint8_t)n);
    for (i = 0; i < n; i++) {
      if (ke[i].update_len > 4096) abort();
      sotto__srv_put_kt_entry(&w, ke[i].head, ke[i].update, ke[i].update_len);
    }
    same(&w, data, size);
  }
  return 0;
}
