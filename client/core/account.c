/* SPDX-License-Identifier: Apache-2.0 */
/* account.c: identity, account record, pre-keys (see account.h). */
#include "account.h"

#include <sodium.h>
#include <sotto/keys.h>
#include <stdio.h>
#include <string.h>

#include "record.h"

#define ACCOUNT_VERSION 2 /* 1: without the key lifecycle fields (still read) */
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
  a->next_lr_id = ACCOUNT_LR_ID_BASE;
  a->opk_low = 1;
  a->kem_low = 1;
  *out = a;
  return 0;
}

void account_free(struct account *a) {
  if (a) sodium_free(a); /* wipes */
}

int account_save(struct store *st, const struct account *a) {
  struct rec_wr w;
  int rc;
  rec_wr_init(&w, 8192);
  rec_put_u8(&w, ACCOUNT_VERSION);
  rec_put(&w, a->id.pub, sizeof a->id.pub);
  rec_put(&w, a->id.priv, sizeof a->id.priv);
  rec_put_u32(&w, a->id.registration_id);
  rec_put_str16(&w, a->username, strlen(a->username));
  rec_put_str16(&w, a->server, strlen(a->server));
  rec_put_str16(&w, a->pin, strlen(a->pin));
  rec_put_str16(&w, a->ca, strlen(a->ca));
  rec_put_u32(&w, a->device_id);
  rec_put(&w, a->secret, sizeof a->secret);
  rec_put_u32(&w, a->spk_id);
  rec_put_u32(&w, a->next_prekey_id);
  rec_put_u32(&w, a->next_kem_id);
  rec_put_u32(&w, a->last_resort_id);
  rec_put_u64(&w, a->next_seq);
  {
    size_t i;
    rec_put_u64(&w, a->spk_created);
    rec_put_u64(&w, a->lr_created);
    rec_put_u32(&w, a->next_lr_id);
    rec_put_u64(&w, a->last_topup);
    rec_put_u32(&w, a->opk_low);
    rec_put_u32(&w, a->kem_low);
    rec_put_u8(&w, a->n_retired);
    for (i = 0; i < a->n_retired; i++) {
      rec_put_u8(&w, a->retired[i].kind);
      rec_put_u32(&w, a->retired[i].id);
      rec_put_u64(&w, a->retired[i].at);
    }
    rec_put_u8(&w, a->n_ec_marks);
    for (i = 0; i < a->n_ec_marks; i++) {
      rec_put_u32(&w, a->ec_marks[i].below);
      rec_put_u64(&w, a->ec_marks[i].at);
    }
    rec_put_u8(&w, a->n_kem_marks);
    for (i = 0; i < a->n_kem_marks; i++) {
      rec_put_u32(&w, a->kem_marks[i].below);
      rec_put_u64(&w, a->kem_marks[i].at);
    }
  }
  rc = rec_wr_ok(&w) ? STORE_E_IO : store_put(st, "account", w.p, w.len);
  rec_wr_free(&w);
  return rc;
}

int account_load(struct store *st, struct account **out) {
  struct account *a;
  struct rec_rd r;
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
  rec_rd_init(&r, v, n);
  rec_get_u8(&r, &ver);
  rec_get(&r, a->id.pub, sizeof a->id.pub);
  rec_get(&r, a->id.priv, sizeof a->id.priv);
  rec_get_u32(&r, &a->id.registration_id);
  rec_get_cstr(&r, a->username, sizeof a->username);
  rec_get_cstr(&r, a->server, sizeof a->server);
  rec_get_cstr(&r, a->pin, sizeof a->pin);
  rec_get_cstr(&r, a->ca, sizeof a->ca);
  rec_get_u32(&r, &a->device_id);
  rec_get(&r, a->secret, sizeof a->secret);
  rec_get_u32(&r, &a->spk_id);
  rec_get_u32(&r, &a->next_prekey_id);
  rec_get_u32(&r, &a->next_kem_id);
  rec_get_u32(&r, &a->last_resort_id);
  rec_get_u64(&r, &a->next_seq);
  if (ver == ACCOUNT_VERSION) {
    size_t i;
    rec_get_u64(&r, &a->spk_created);
    rec_get_u64(&r, &a->lr_created);
    rec_get_u32(&r, &a->next_lr_id);
    rec_get_u64(&r, &a->last_topup);
    rec_get_u32(&r, &a->opk_low);
    rec_get_u32(&r, &a->kem_low);
    rec_get_u8(&r, &a->n_retired);
    if (a->n_retired > ACCOUNT_MAX_RETIRED) a->n_retired = 0, r.err = 1;
    for (i = 0; i < a->n_retired; i++) {
      rec_get_u8(&r, &a->retired[i].kind);
      rec_get_u32(&r, &a->retired[i].id);
      rec_get_u64(&r, &a->retired[i].at);
    }
    rec_get_u8(&r, &a->n_ec_marks);
    if (a->n_ec_marks > ACCOUNT_MAX_MARKS) a->n_ec_marks = 0, r.err = 1;
    for (i = 0; i < a->n_ec_marks; i++) {
      rec_get_u32(&r, &a->ec_marks[i].below);
      rec_get_u64(&r, &a->ec_marks[i].at);
    }
    rec_get_u8(&r, &a->n_kem_marks);
    if (a->n_kem_marks > ACCOUNT_MAX_MARKS) a->n_kem_marks = 0, r.err = 1;
    for (i = 0; i < a->n_kem_marks; i++) {
      rec_get_u32(&r, &a->kem_marks[i].below);
      rec_get_u64(&r, &a->kem_marks[i].at);
    }
  } else {
    /* Version 1: lifecycle unknown; the first connection rotates both
     * pre-keys, and expiry starts at the first one-time id. */
    a->opk_low = 1;
    a->kem_low = 1;
  }
  rc = (rec_rd_end(&r) || (ver != ACCOUNT_VERSION && ver != 1)) ? STORE_E_CORRUPT : 0;
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
  if (n != 32) { /* the private key; nothing else (replacement times live in the account) */
    store_free_value(v, n);
    return SOTTO_ERR_STORE;
  }
  memcpy(priv, v, 32);
  store_free_value(v, n);
  return sotto_public_key(pub, priv) ? SOTTO_ERR_STORE : 0;
}

static int cb_load_spk(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]) {
  return load_priv(((struct prekey_ctx *)ud)->st, "spk", id, pub, priv);
}

static int cb_load_opk(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]) {
  return load_priv(((struct prekey_ctx *)ud)->st, "opk", id, pub, priv);
}

static int cb_trusted(void *ud, const uint8_t identity[32]) {
  struct prekey_ctx *x = ud;
  return x->trusted ? x->trusted(x->tud, identity) : 1;
}

/* Deletion happens inside the caller's transaction: if anything later fails,
 * the rollback brings the key back. */
static void cb_remove_opk(void *ud, uint32_t id) {
  struct prekey_ctx *x = ud;
  char name[NAME_LEN];
  if (x->keep_keys) return;
  snprintf(name, sizeof name, "opk/%u", id);
  (void)store_del(x->st, name);
}

/* "kem/ID" = u8 last_resort || decapsulation key. */
static int cb_load_kem(void *ud, uint32_t id, uint8_t sk[SOTTO_KEM_SECRETKEY_LEN]) {
  char name[NAME_LEN];
  uint8_t *v;
  size_t n;
  int rc;
  snprintf(name, sizeof name, "kem/%u", id);
  rc = store_get(((struct prekey_ctx *)ud)->st, name, &v, &n);
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
  struct prekey_ctx *x = ud;
  char name[NAME_LEN];
  uint8_t *v;
  size_t n;
  if (x->keep_keys) return;
  snprintf(name, sizeof name, "kem/%u", id);
  if (store_get(x->st, name, &v, &n) != 1) return;
  if (n >= 1 && v[0] == 0) (void)store_del(x->st, name); /* one-time: gone; last resort: kept */
  store_free_value(v, n);
}

void account_prekey_store(struct prekey_ctx *ctx, struct sotto_prekey_store *ps) {
  memset(ps, 0, sizeof *ps);
  ps->ud = ctx;
  ps->load_signed_prekey = cb_load_spk;
  ps->load_one_time_prekey = cb_load_opk;
  ps->remove_one_time_prekey = cb_remove_opk;
  ps->is_trusted_identity = cb_trusted; /* client_identity_check (contact.c), through inbox.c */
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
    if (last_resort && a->next_lr_id < ACCOUNT_LR_ID_BASE) a->next_lr_id = ACCOUNT_LR_ID_BASE;
    out[i].id = last_resort ? a->next_lr_id++ : a->next_kem_id++;
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

/* ---- key lifecycle ------------------------------------------------------- */

static void add_mark(struct handed_mark *m, uint8_t *n, uint32_t below, uint64_t now) {
  if (*n && m[*n - 1].below >= below) return; /* nothing newly handed out */
  if (*n == ACCOUNT_MAX_MARKS) {
    /* Full: the newest mark grows (its ids are kept a little longer). */
    m[*n - 1].below = below;
    m[*n - 1].at = now;
    return;
  }
  m[*n].below = below;
  m[*n].at = now;
  (*n)++;
}

static int del_key(struct store *st, const char *kind, uint32_t id) {
  char name[NAME_LEN];
  snprintf(name, sizeof name, "%s/%u", kind, id);
  return store_del(st, name);
}

/* Deletes the one-time keys of the oldest mark ([*low, below)) and drops
 * the mark. KEM ids of a version 1 account may include its last-resort key,
 * which is skipped (a one-time record has flag 0). */
static int expire_mark(struct store *st, struct account *a, int kem) {
  struct handed_mark *m = kem ? a->kem_marks : a->ec_marks;
  uint8_t *n = kem ? &a->n_kem_marks : &a->n_ec_marks;
  uint32_t *low = kem ? &a->kem_low : &a->opk_low, id;
  int rc = 0;
  for (id = *low; id < m[0].below && !rc; id++) {
    if (kem) {
      char name[NAME_LEN];
      uint8_t *v;
      size_t vn;
      snprintf(name, sizeof name, "kem/%u", id);
      if ((rc = store_get(st, name, &v, &vn)) <= 0) continue;
      rc = (vn >= 1 && v[0] == 0) ? store_del(st, name) : 0;
      store_free_value(v, vn);
    } else {
      rc = del_key(st, "opk", id);
    }
  }
  if (rc) return rc;
  if (m[0].below > *low) *low = m[0].below;
  memmove(m, m + 1, (size_t)(*n - 1) * sizeof *m);
  (*n)--;
  return 0;
}

int account_keys_maintain(struct store *st, struct account *a, uint64_t now, uint32_t ec_left, uint32_t kem_left,
                          int *rotate) {
  size_t i;
  int rc = 0;
  if (a->next_prekey_id > ec_left) add_mark(a->ec_marks, &a->n_ec_marks, a->next_prekey_id - ec_left, now);
  if (a->next_kem_id > kem_left) add_mark(a->kem_marks, &a->n_kem_marks, a->next_kem_id - kem_left, now);
  while (!rc && a->n_ec_marks && now >= a->ec_marks[0].at + ACCOUNT_HANDED_TTL_S) rc = expire_mark(st, a, 0);
  while (!rc && a->n_kem_marks && now >= a->kem_marks[0].at + ACCOUNT_HANDED_TTL_S) rc = expire_mark(st, a, 1);
  for (i = 0; i < a->n_retired && !rc;) {
    if (now >= a->retired[i].at + ACCOUNT_GRACE_S) {
      rc = del_key(st, a->retired[i].kind ? "kem" : "spk", a->retired[i].id);
      memmove(&a->retired[i], &a->retired[i + 1], (size_t)(a->n_retired - i - 1) * sizeof a->retired[0]);
      a->n_retired--;
    } else {
      i++;
    }
  }
  *rotate = a->spk_created == 0 || a->lr_created == 0 || now >= a->spk_created + ACCOUNT_ROTATE_S ||
            now >= a->lr_created + ACCOUNT_ROTATE_S;
  return rc;
}

static int retire(struct store *st, struct account *a, uint8_t kind, uint32_t id, uint64_t now) {
  int rc = 0;
  if (id == 0) return 0;
  if (a->n_retired == ACCOUNT_MAX_RETIRED) {
    /* Full (rotations far more often than the grace period): the oldest
     * replaced key goes now. */
    rc = del_key(st, a->retired[0].kind ? "kem" : "spk", a->retired[0].id);
    memmove(&a->retired[0], &a->retired[1], (size_t)(a->n_retired - 1) * sizeof a->retired[0]);
    a->n_retired--;
  }
  a->retired[a->n_retired].kind = kind;
  a->retired[a->n_retired].id = id;
  a->retired[a->n_retired].at = now;
  a->n_retired++;
  return rc;
}

int account_retire_current(struct store *st, struct account *a, uint64_t now) {
  int rc = retire(st, a, 0, a->spk_id, now);
  return rc ? rc : retire(st, a, 1, a->last_resort_id, now);
}

int account_room(struct store *st, struct account *a, size_t want_ec, size_t want_kem, size_t *ec_room,
                 size_t *kem_room) {
  int rc = 0;
  for (;;) {
    size_t live_ec = a->next_prekey_id >= a->opk_low ? a->next_prekey_id - a->opk_low : 0;
    size_t live_kem = a->next_kem_id >= a->kem_low ? a->next_kem_id - a->kem_low : 0;
    *ec_room = live_ec < ACCOUNT_EC_PRIVATE_MAX ? ACCOUNT_EC_PRIVATE_MAX - live_ec : 0;
    *kem_room = live_kem < ACCOUNT_KEM_PRIVATE_MAX ? ACCOUNT_KEM_PRIVATE_MAX - live_kem : 0;
    /* Short of room: the oldest handed-out keys go first, even early. */
    if (*ec_room < want_ec && a->n_ec_marks) rc = expire_mark(st, a, 0);
    else if (*kem_room < want_kem && a->n_kem_marks) rc = expire_mark(st, a, 1);
    else break;
    if (rc) return rc;
  }
  if (*ec_room > want_ec) *ec_room = want_ec;
  if (*kem_room > want_kem) *kem_room = want_kem;
  return 0;
}
