/* SPDX-License-Identifier: Apache-2.0 */
/* account.c: identity, account record, pre-keys (see account.h). */
#include "account.h"

#include <sodium.h>
#include <sotto/keys.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"

#define ACCOUNT_VERSION 1
#define NAME_LEN 32

int account_new(struct account **out) {
  struct account *a = sodium_malloc(sizeof *a);
  *out = NULL;
  if (!a) return -1;
  memset(a, 0, sizeof *a);
  if (sotto_keypair_generate(a->id.pub, a->id.priv) || sotto_registration_id_generate(&a->id.registration_id)) {
    sodium_free(a);
    return -1;
  }
  a->spk_id = 0;
  a->next_prekey_id = 1;
  a->next_kem_id = 1;
  a->next_seq = 1;
  *out = a;
  return 0;
}

void account_free(struct account *a) {
  if (a) sodium_free(a); /* wipes */
}

int account_save(struct store *st, const struct account *a) {
  struct buf_wr w;
  int rc;
  buf_wr_init(&w, 8192);
  buf_put_u8(&w, ACCOUNT_VERSION);
  buf_put(&w, a->id.pub, sizeof a->id.pub);
  buf_put(&w, a->id.priv, sizeof a->id.priv);
  buf_put_u32(&w, a->id.registration_id);
  buf_put_str16(&w, a->username, strlen(a->username));
  buf_put_str16(&w, a->server, strlen(a->server));
  buf_put_str16(&w, a->pin, strlen(a->pin));
  buf_put_str16(&w, a->ca, strlen(a->ca));
  buf_put_u32(&w, a->device_id);
  buf_put(&w, a->secret, sizeof a->secret);
  buf_put_u32(&w, a->spk_id);
  buf_put_u32(&w, a->next_prekey_id);
  buf_put_u32(&w, a->next_kem_id);
  buf_put_u32(&w, a->last_resort_id);
  buf_put_u64(&w, a->next_seq);
  rc = buf_wr_ok(&w) ? STORE_E_IO : store_put(st, "account", w.p, w.len);
  buf_wr_free(&w);
  return rc;
}

int account_load(struct store *st, struct account **out) {
  struct account *a;
  struct buf_rd r;
  uint8_t *v, ver = 0;
  size_t n;
  int rc;

  *out = NULL;
  rc = store_get(st, "account", &v, &n);
  if (rc <= 0) return rc == 0 ? STORE_E_CORRUPT : rc;
  if (!(a = sodium_malloc(sizeof *a))) {
    store_free_value(v, n);
    return STORE_E_IO;
  }
  memset(a, 0, sizeof *a);
  buf_rd_init(&r, v, n);
  buf_get_u8(&r, &ver);
  buf_get(&r, a->id.pub, sizeof a->id.pub);
  buf_get(&r, a->id.priv, sizeof a->id.priv);
  buf_get_u32(&r, &a->id.registration_id);
  buf_get_cstr(&r, a->username, sizeof a->username);
  buf_get_cstr(&r, a->server, sizeof a->server);
  buf_get_cstr(&r, a->pin, sizeof a->pin);
  buf_get_cstr(&r, a->ca, sizeof a->ca);
  buf_get_u32(&r, &a->device_id);
  buf_get(&r, a->secret, sizeof a->secret);
  buf_get_u32(&r, &a->spk_id);
  buf_get_u32(&r, &a->next_prekey_id);
  buf_get_u32(&r, &a->next_kem_id);
  buf_get_u32(&r, &a->last_resort_id);
  buf_get_u64(&r, &a->next_seq);
  rc = (buf_rd_end(&r) || ver != ACCOUNT_VERSION) ? STORE_E_CORRUPT : 0;
  store_free_value(v, n);
  if (rc) {
    sodium_free(a);
    return rc;
  }
  *out = a;
  return 0;
}

/* ---- pre-key store callbacks --------------------------------------------- */

static int load_priv(struct store *st, const char *kind, uint32_t id, uint8_t pub[32], uint8_t priv[32]) {
  char name[NAME_LEN];
  uint8_t *v;
  size_t n;
  int rc;
  snprintf(name, sizeof name, "%s/%u", kind, id);
  rc = store_get(st, name, &v, &n);
  if (rc < 0) return SOTTO_ERR_STORE;
  if (rc == 0) return SOTTO_ERR_UNKNOWN_PREKEY;
  if (n != 32) {
    store_free_value(v, n);
    return SOTTO_ERR_STORE;
  }
  memcpy(priv, v, 32);
  store_free_value(v, n);
  return sotto_public_key(pub, priv) ? SOTTO_ERR_STORE : 0;
}

static int cb_load_spk(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]) {
  return load_priv(ud, "spk", id, pub, priv);
}

static int cb_load_opk(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]) {
  return load_priv(ud, "opk", id, pub, priv);
}

/* Deletion happens inside the caller's transaction: if anything later fails,
 * the rollback brings the key back. */
static void cb_remove_opk(void *ud, uint32_t id) {
  char name[NAME_LEN];
  snprintf(name, sizeof name, "opk/%u", id);
  (void)store_del(ud, name);
}

/* "kem/ID" = u8 last_resort || decapsulation key. */
static int cb_load_kem(void *ud, uint32_t id, uint8_t sk[SOTTO_KEM_SECRETKEY_LEN]) {
  char name[NAME_LEN];
  uint8_t *v;
  size_t n;
  int rc;
  snprintf(name, sizeof name, "kem/%u", id);
  rc = store_get(ud, name, &v, &n);
  if (rc < 0) return SOTTO_ERR_STORE;
  if (rc == 0) return SOTTO_ERR_UNKNOWN_PREKEY;
  if (n != 1 + SOTTO_KEM_SECRETKEY_LEN) {
    store_free_value(v, n);
    return SOTTO_ERR_STORE;
  }
  memcpy(sk, v + 1, SOTTO_KEM_SECRETKEY_LEN);
  store_free_value(v, n);
  return 0;
}

static void cb_kem_used(void *ud, uint32_t id) {
  char name[NAME_LEN];
  uint8_t *v;
  size_t n;
  snprintf(name, sizeof name, "kem/%u", id);
  if (store_get(ud, name, &v, &n) != 1) return;
  if (n >= 1 && v[0] == 0) (void)store_del(ud, name); /* one-time: gone; last resort: kept */
  store_free_value(v, n);
}

void account_prekey_store(struct store *st, struct sotto_prekey_store *ps) {
  memset(ps, 0, sizeof *ps);
  ps->ud = st;
  ps->load_signed_prekey = cb_load_spk;
  ps->load_one_time_prekey = cb_load_opk;
  ps->remove_one_time_prekey = cb_remove_opk;
  ps->is_trusted_identity = NULL; /* the client checks identities itself (contact.c) */
  ps->load_kem_prekey = cb_load_kem;
  ps->kem_prekey_used = cb_kem_used;
}

/* ---- generating pre-keys ------------------------------------------------- */

int account_new_signed_prekey(struct store *st, struct account *a, uint8_t pub[SOTTO_PUBKEY_LEN],
                              uint8_t sig[SOTTO_SIGNATURE_LEN]) {
  uint8_t priv[32];
  char name[NAME_LEN];
  int rc = -1;
  uint32_t id = a->spk_id + 1;
  if (sotto_keypair_generate(pub, priv) || sotto_signed_prekey_sign(sig, a->id.priv, pub)) goto out;
  snprintf(name, sizeof name, "spk/%u", id);
  if (store_put(st, name, priv, sizeof priv)) goto out;
  a->spk_id = id;
  rc = 0;
out:
  sodium_memzero(priv, sizeof priv);
  return rc;
}

int account_new_one_time_prekeys(struct store *st, struct account *a, struct prekey_pub *out, size_t n) {
  uint8_t priv[32];
  char name[NAME_LEN];
  size_t i;
  int rc = 0;
  for (i = 0; i < n && !rc; i++) {
    out[i].id = a->next_prekey_id++;
    snprintf(name, sizeof name, "opk/%u", out[i].id);
    if (sotto_keypair_generate(out[i].pub, priv) || store_put(st, name, priv, sizeof priv)) rc = -1;
  }
  sodium_memzero(priv, sizeof priv);
  return rc;
}

int account_new_kem_prekeys(struct store *st, struct account *a, struct kem_pub *out, size_t n, int last_resort) {
  uint8_t *v = sodium_malloc(1 + SOTTO_KEM_SECRETKEY_LEN);
  char name[NAME_LEN];
  size_t i;
  int rc = 0;
  if (!v) return -1;
  for (i = 0; i < n && !rc; i++) {
    out[i].id = a->next_kem_id++;
    v[0] = last_resort ? 1 : 0;
    snprintf(name, sizeof name, "kem/%u", out[i].id);
    if (sotto_kem_keypair_generate(out[i].pub, v + 1) || sotto_kem_prekey_sign(out[i].sig, a->id.priv, out[i].pub) ||
        store_put(st, name, v, 1 + SOTTO_KEM_SECRETKEY_LEN))
      rc = -1;
    if (last_resort && !rc) a->last_resort_id = out[i].id;
  }
  sodium_free(v);
  return rc;
}
