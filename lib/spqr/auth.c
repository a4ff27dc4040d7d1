/* SPDX-License-Identifier: Apache-2.0 */
/* auth.c: the SPQR v1 authenticator and SCKA key (auth.h). */
#include <string.h>

#include <sotto/error.h>

#include "crypto/crypto.h"
#include "spqr/auth.h"

static const char L_UPDATE[] = "Signal_PQCKA_V1_MLKEM768:Authenticator Update";
static const char L_HDR[] = "Signal_PQCKA_V1_MLKEM768:ekheader";
static const char L_CT[] = "Signal_PQCKA_V1_MLKEM768:ciphertext";
static const char L_SCKA[] = "Signal_PQCKA_V1_MLKEM768:SCKA Key";

static void be64(uint8_t out[8], uint64_t v) {
  int i;
  for (i = 7; i >= 0; i--) {
    out[i] = (uint8_t)v;
    v >>= 8;
  }
}

/* HKDF info = label || BE64(epoch). */
static size_t info_of(uint8_t *info, const char *label, uint64_t epoch) {
  size_t n = strlen(label);
  memcpy(info, label, n);
  be64(info + n, epoch);
  return n + 8;
}

int sotto__spqr_auth_update(struct sotto__spqr_auth *a, uint64_t epoch, const uint8_t *k,
                            size_t k_len) {
  uint8_t info[64], okm[64], ikm[32 + 64];
  size_t n;
  /* k is a 32-byte key in SPQR (PQR, an epoch secret). */
  if (a == NULL || k_len > 64 || (k == NULL && k_len != 0)) return SOTTO_ERR_USAGE;
  n = info_of(info, L_UPDATE, epoch);
  memcpy(ikm, a->root, 32);
  if (k_len > 0) memcpy(ikm + 32, k, k_len);
  if (sotto__hkdf(okm, 64, NULL, 0, ikm, 32 + k_len, info, n) != 0) {
    sotto__wipe(ikm, sizeof ikm);
    return SOTTO_ERR_INTERNAL;
  }
  memcpy(a->root, okm, 32);
  memcpy(a->mac, okm + 32, 32);
  sotto__wipe(okm, sizeof okm);
  sotto__wipe(ikm, sizeof ikm);
  return 0;
}

int sotto__spqr_auth_init(struct sotto__spqr_auth *a, const uint8_t *key, size_t key_len,
                          uint64_t epoch) {
  if (a == NULL) return SOTTO_ERR_USAGE;
  memset(a, 0, sizeof *a);
  return sotto__spqr_auth_update(a, epoch, key, key_len);
}

static void mac_of(uint8_t out[32], const uint8_t key[32], const char *label, uint64_t epoch,
                   const uint8_t *p, size_t len) {
  uint8_t head[64];
  size_t n = info_of(head, label, epoch);
  struct sotto__hmac_key hk;
  struct sotto__hmac_ctx c;
  sotto__hmac_key_init(&hk, key, 32);
  sotto__hmac_start(&c, &hk);
  sotto__hmac_update(&c, head, n);
  sotto__hmac_update(&c, p, len);
  sotto__hmac_finish(&c, out);
  sotto__hmac_key_clear(&hk);
}

void sotto__spqr_auth_mac_hdr(uint8_t out[32], const struct sotto__spqr_auth *a, uint64_t epoch,
                              const uint8_t *hdr, size_t len) {
  mac_of(out, a->mac, L_HDR, epoch, hdr, len);
}

void sotto__spqr_auth_mac_ct(uint8_t out[32], const struct sotto__spqr_auth *a, uint64_t epoch,
                             const uint8_t *ct, size_t len) {
  mac_of(out, a->mac, L_CT, epoch, ct, len);
}

int sotto__spqr_auth_verify_hdr(const struct sotto__spqr_auth *a, uint64_t epoch,
                                const uint8_t *hdr, size_t len, const uint8_t mac[32]) {
  uint8_t m[32];
  int ok;
  sotto__spqr_auth_mac_hdr(m, a, epoch, hdr, len);
  ok = sotto__ct_eq(m, mac, 32);
  sotto__wipe(m, sizeof m);
  return ok ? 0 : SOTTO_ERR_AUTH;
}

int sotto__spqr_auth_verify_ct(const struct sotto__spqr_auth *a, uint64_t epoch, const uint8_t *ct,
                               size_t len, const uint8_t mac[32]) {
  uint8_t m[32];
  int ok;
  sotto__spqr_auth_mac_ct(m, a, epoch, ct, len);
  ok = sotto__ct_eq(m, mac, 32);
  sotto__wipe(m, sizeof m);
  return ok ? 0 : SOTTO_ERR_AUTH;
}

void sotto__spqr_scka_key(uint8_t out[32], const uint8_t ss[32], uint64_t epoch) {
  uint8_t info[64];
  size_t n = info_of(info, L_SCKA, epoch);
  /* 32 bytes from HKDF-SHA256 cannot fail (the limit is 255 * 32). */
  if (sotto__hkdf(out, 32, NULL, 0, ss, 32, info, n) != 0) sotto__wipe(out, 32);
}
