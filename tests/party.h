/* SPDX-License-Identifier: Apache-2.0 */
/* party.h: a libsotto user for tests and benchmarks: identity, an in-memory
 * pre-key store behind struct sotto_prekey_store, and bundle making. */
#ifndef SOTTO_TEST_PARTY_H
#define SOTTO_TEST_PARTY_H

#include <sotto/keys.h>
#include <sotto/session.h>

#define PARTY_MAX_KEYS 16

struct party_key {
  uint32_t id;
  int used; /* slot in use */
  uint8_t pub[32], priv[32];
};

struct party_kem {
  uint32_t id;
  int used, last_resort;
  unsigned uses;
  uint8_t pub[SOTTO_KEM_PUBKEY_LEN], sig[64], sk[SOTTO_KEM_SECRETKEY_LEN];
};

struct party {
  struct sotto_identity id;
  struct party_key spk[PARTY_MAX_KEYS];
  uint8_t spk_sig[PARTY_MAX_KEYS][64];
  struct party_key opk[PARTY_MAX_KEYS];
  unsigned opk_removed; /* count of remove callbacks */
  struct party_kem kem[4];
  struct sotto_prekey_store store;
  int distrust; /* is_trusted_identity returns 0 when set */
};

int party_init(struct party *p);
/* Adds a signed pre-key / one-time pre-key with that id. */
int party_add_spk(struct party *p, uint32_t id);
int party_add_opk(struct party *p, uint32_t id);
/* Fills a bundle from spk_id and (if opk_id != 0) opk_id. */
int party_bundle(const struct party *p, uint32_t spk_id, uint32_t opk_id, struct sotto_bundle *b);
/* Adds an ML-KEM-1024 pre-key (one-time, or last resort: kept after use). */
int party_add_kem(struct party *p, uint32_t id, int last_resort);
/* A version 4 bundle: as party_bundle plus the KEM pre-key kem_id. */
int party_bundle_pq(const struct party *p, uint32_t spk_id, uint32_t opk_id, uint32_t kem_id, struct sotto_bundle *b);
/* Re-adds a consumed one-time pre-key with the same key pair. */
void party_restore_opk(struct party *p, uint32_t id, const uint8_t pub[32], const uint8_t priv[32]);

#endif
