/* SPDX-License-Identifier: Apache-2.0 */
#include "party.h"

#include <string.h>

static struct party_key *find(struct party_key *k, uint32_t id) {
  for (int i = 0; i < PARTY_MAX_KEYS; i++)
    if (k[i].used && k[i].id == id) return &k[i];
  return NULL;
}

static struct party_key *slot(struct party_key *k) {
  for (int i = 0; i < PARTY_MAX_KEYS; i++)
    if (!k[i].used) return &k[i];
  return NULL;
}

static int load_spk(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]) {
  struct party_key *k = find(((struct party *)ud)->spk, id);
  if (!k) return SOTTO_ERR_UNKNOWN_PREKEY;
  memcpy(pub, k->pub, 32);
  memcpy(priv, k->priv, 32);
  return 0;
}

static int load_opk(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]) {
  struct party_key *k = find(((struct party *)ud)->opk, id);
  if (!k) return SOTTO_ERR_UNKNOWN_PREKEY;
  memcpy(pub, k->pub, 32);
  memcpy(priv, k->priv, 32);
  return 0;
}

static void remove_opk(void *ud, uint32_t id) {
  struct party *p = ud;
  struct party_key *k = find(p->opk, id);
  if (k) memset(k, 0, sizeof *k);
  p->opk_removed++;
}

static struct party_kem *find_kem(struct party *p, uint32_t id) {
  for (int i = 0; i < 4; i++)
    if (p->kem[i].used && p->kem[i].id == id) return &p->kem[i];
  return NULL;
}

static int load_kem(void *ud, uint32_t id, uint8_t sk[SOTTO_KEM_SECRETKEY_LEN]) {
  struct party_kem *k = find_kem(ud, id);
  if (!k) return SOTTO_ERR_UNKNOWN_PREKEY;
  memcpy(sk, k->sk, SOTTO_KEM_SECRETKEY_LEN);
  return 0;
}

static void kem_used(void *ud, uint32_t id) {
  struct party_kem *k = find_kem(ud, id);
  if (!k) return;
  k->uses++;
  if (!k->last_resort) k->used = 0; /* one-time: gone */
}

int party_add_kem(struct party *p, uint32_t id, int last_resort) {
  int rc;
  for (int i = 0; i < 4; i++) {
    struct party_kem *k = &p->kem[i];
    if (k->used) continue;
    if ((rc = sotto_kem_keypair_generate(k->pub, k->sk)) != 0) return rc;
    if ((rc = sotto_kem_prekey_sign(k->sig, p->id.priv, k->pub)) != 0) return rc;
    k->id = id;
    k->used = 1;
    k->last_resort = last_resort;
    k->uses = 0;
    return 0;
  }
  return SOTTO_ERR_TOO_LARGE;
}

int party_bundle_pq(const struct party *p, uint32_t spk_id, uint32_t opk_id, uint32_t kem_id, struct sotto_bundle *b) {
  const struct party_kem *k = find_kem((struct party *)p, kem_id);
  int rc = party_bundle(p, spk_id, opk_id, b);
  if (rc != 0) return rc;
  if (!k) return SOTTO_ERR_UNKNOWN_PREKEY;
  b->has_kem_prekey = 1;
  b->kem_prekey_id = kem_id;
  memcpy(b->kem_prekey, k->pub, sizeof k->pub);
  memcpy(b->kem_prekey_sig, k->sig, 64);
  return 0;
}

static int trusted(void *ud, const uint8_t identity[32]) {
  (void)identity;
  return ((struct party *)ud)->distrust ? 0 : 1;
}

int party_init(struct party *p) {
  int rc;
  memset(p, 0, sizeof *p);
  if ((rc = sotto_keypair_generate(p->id.pub, p->id.priv)) != 0) return rc;
  if ((rc = sotto_registration_id_generate(&p->id.registration_id)) != 0) return rc;
  p->store.ud = p;
  p->store.load_signed_prekey = load_spk;
  p->store.load_one_time_prekey = load_opk;
  p->store.remove_one_time_prekey = remove_opk;
  p->store.is_trusted_identity = trusted;
  p->store.load_kem_prekey = load_kem;
  p->store.kem_prekey_used = kem_used;
  return 0;
}

int party_add_spk(struct party *p, uint32_t id) {
  struct party_key *k = slot(p->spk);
  int rc;
  if (!k) return SOTTO_ERR_TOO_LARGE;
  if ((rc = sotto_keypair_generate(k->pub, k->priv)) != 0) return rc;
  if ((rc = sotto_signed_prekey_sign(p->spk_sig[k - p->spk], p->id.priv, k->pub)) != 0) return rc;
  k->id = id;
  k->used = 1;
  return 0;
}

int party_add_opk(struct party *p, uint32_t id) {
  struct party_key *k = slot(p->opk);
  int rc;
  if (!k) return SOTTO_ERR_TOO_LARGE;
  if ((rc = sotto_keypair_generate(k->pub, k->priv)) != 0) return rc;
  k->id = id;
  k->used = 1;
  return 0;
}

void party_restore_opk(struct party *p, uint32_t id, const uint8_t pub[32], const uint8_t priv[32]) {
  struct party_key *k = find(p->opk, id);
  if (!k) k = slot(p->opk);
  if (!k) return;
  k->id = id;
  k->used = 1;
  memcpy(k->pub, pub, 32);
  memcpy(k->priv, priv, 32);
}

int party_bundle(const struct party *p, uint32_t spk_id, uint32_t opk_id, struct sotto_bundle *b) {
  const struct party_key *s = find((struct party_key *)p->spk, spk_id);
  memset(b, 0, sizeof *b);
  if (!s) return SOTTO_ERR_UNKNOWN_PREKEY;
  b->registration_id = p->id.registration_id;
  b->device_id = 1;
  memcpy(b->identity_key, p->id.pub, 32);
  b->signed_prekey_id = spk_id;
  memcpy(b->signed_prekey, s->pub, 32);
  memcpy(b->signed_prekey_sig, p->spk_sig[s - p->spk], 64);
  if (opk_id) {
    const struct party_key *o = find((struct party_key *)p->opk, opk_id);
    if (!o) return SOTTO_ERR_UNKNOWN_PREKEY;
    b->has_one_time_prekey = 1;
    b->one_time_prekey_id = opk_id;
    memcpy(b->one_time_prekey, o->pub, 32);
  }
  return 0;
}
