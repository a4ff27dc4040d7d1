/* SPDX-License-Identifier: Apache-2.0 */
/* kt.c: key transparency in the client (kt.h; docs/key-transparency.md,
 * "Clients"). Nothing prints: failures are recorded sentences (sc__fail),
 * monitoring results are SC_EV_KT_ALERT events and the "kt" record. */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sotto/devlist.h>

#include "account.h"
#include "kt.h"
#include "devices.h"
#include "record.h"

#define KT_RECORD "kt"
#define KT_VERSION 3 /* 2: + alert acknowledgements and the device-list label; 3: + list_seen */
#define KT_TRIES 3 /* the log may gain an entry between two requests: fetch again, a bounded number of times */

/* ---- the record ------------------------------------------------------------------ */

int kt_load(struct store *st, struct kt_state *s) {
  uint8_t *v = NULL, ver = 0;
  size_t n = 0, i;
  struct rec_rd r;
  int rc;
  memset(s, 0, sizeof *s);
  if ((rc = store_get(st, KT_RECORD, &v, &n)) <= 0) return rc;
  rec_rd_init(&r, v, n);
  rec_get_u8(&r, &ver);
  rec_get_u8(&r, &s->pinned);
  rec_get(&r, s->sig_pk, sizeof s->sig_pk);
  rec_get(&r, s->vrf_pk, sizeof s->vrf_pk);
  rec_get_u8(&r, &s->n_wit);
  for (i = 0; i < s->n_wit && i < KT_MAX_WITNESSES; i++) {
    rec_get_cstr(&r, s->wit[i].name, sizeof s->wit[i].name);
    rec_get(&r, s->wit[i].pk, sizeof s->wit[i].pk);
    rec_get_u8(&r, &s->wit[i].added);
    rec_get_u64(&r, &s->wit[i].last_size);
  }
  rec_get_u8(&r, &s->k_set);
  rec_get_u8(&r, &s->k);
  rec_get_u8(&r, &s->required);
  rec_get_u8(&r, &s->off);
  rec_get_u8(&r, &s->has_head);
  rec_get(&r, s->head, sizeof s->head);
  rec_get_u8(&r, &s->has_own);
  rec_get_u32(&r, &s->own_version);
  rec_get(&r, s->own_value, sizeof s->own_value);
  rec_get_u8(&r, &s->mon_result);
  rec_get_u64(&r, &s->mon_time);
  rec_get_cstr(&r, s->mon_detail, sizeof s->mon_detail);
  if (ver >= 2) {
    rec_get(&r, s->key_alert, sizeof s->key_alert);
    rec_get(&r, s->key_acked, sizeof s->key_acked);
    rec_get_u8(&r, &s->has_list_ok);
    rec_get(&r, s->list_ok, sizeof s->list_ok);
    rec_get_u8(&r, &s->list_result);
    rec_get_cstr(&r, s->list_detail, sizeof s->list_detail);
    rec_get(&r, s->list_alert, sizeof s->list_alert);
    rec_get(&r, s->list_acked, sizeof s->list_acked);
  }
  if (ver >= 3) {
    rec_get_u8(&r, &s->has_list_seen);
    rec_get_u32(&r, &s->list_seen);
  }
  rc = rec_rd_end(&r) || ver < 1 || ver > KT_VERSION || s->list_result > KT_MON_FAILED || s->n_wit > KT_MAX_WITNESSES || s->mon_result > KT_MON_FAILED
           ? STORE_E_CORRUPT
           : 0;
  store_free_value(v, n);
  if (rc) memset(s, 0, sizeof *s);
  return rc;
}

int kt_save(struct store *st, const struct kt_state *s) {
  struct rec_wr w;
  size_t i;
  int rc;
  rec_wr_init(&w, 4096);
  rec_put_u8(&w, KT_VERSION);
  rec_put_u8(&w, s->pinned);
  rec_put(&w, s->sig_pk, sizeof s->sig_pk);
  rec_put(&w, s->vrf_pk, sizeof s->vrf_pk);
  rec_put_u8(&w, s->n_wit);
  for (i = 0; i < s->n_wit; i++) {
    rec_put_str16(&w, s->wit[i].name, strlen(s->wit[i].name));
    rec_put(&w, s->wit[i].pk, sizeof s->wit[i].pk);
    rec_put_u8(&w, s->wit[i].added);
    rec_put_u64(&w, s->wit[i].last_size);
  }
  rec_put_u8(&w, s->k_set);
  rec_put_u8(&w, s->k);
  rec_put_u8(&w, s->required);
  rec_put_u8(&w, s->off);
  rec_put_u8(&w, s->has_head);
  rec_put(&w, s->head, sizeof s->head);
  rec_put_u8(&w, s->has_own);
  rec_put_u32(&w, s->own_version);
  rec_put(&w, s->own_value, sizeof s->own_value);
  rec_put_u8(&w, s->mon_result);
  rec_put_u64(&w, s->mon_time);
  rec_put_str16(&w, s->mon_detail, strlen(s->mon_detail));
  rec_put(&w, s->key_alert, sizeof s->key_alert);
  rec_put(&w, s->key_acked, sizeof s->key_acked);
  rec_put_u8(&w, s->has_list_ok);
  rec_put(&w, s->list_ok, sizeof s->list_ok);
  rec_put_u8(&w, s->list_result);
  rec_put_str16(&w, s->list_detail, strlen(s->list_detail));
  rec_put(&w, s->list_alert, sizeof s->list_alert);
  rec_put(&w, s->list_acked, sizeof s->list_acked);
  rec_put_u8(&w, s->has_list_seen);
  rec_put_u32(&w, s->list_seen);
  rc = rec_wr_ok(&w) ? STORE_E_IO : store_put(st, KT_RECORD, w.p, w.len);
  rec_wr_free(&w);
  return rc;
}

unsigned kt_required(const struct kt_state *s) {
  if (s->k_set) return s->k;
  return s->n_wit ? 1 : 0;
}

/* Writes s in its own transaction. */
static int save_now(struct sc_client *c, const struct kt_state *s) {
  int rc;
  if ((rc = store_begin(c->st)) != 0) return sc__store_error(c, rc);
  if ((rc = kt_save(c->st, s)) != 0 || (rc = store_commit(c->st)) != 0) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  return 0;
}

/* ---- requests ---------------------------------------------------------------------- */

static int call(struct sc_client *c, struct conn *k, uint8_t type, const uint8_t *p, size_t len,
                struct sotto_net_event *ans, const char *what) {
  int rc, tries = 0;
  for (;;) {
    rc = sotto_net_call(k->net, type, p, len, ans);
    if (!conn_kt_pending_wait(rc, &tries)) break;
    sotto_net_event_clear(ans);
  }
  if (rc == 0) return 0;
  sotto_net_event_clear(ans); /* the payload of an answer is used only with 0 */
  if (rc == SOTTO_SRV_E_NOT_FOUND) return rc;
  return conn_error(c, k, rc, what, NULL);
}

/* Pins the log's keys and the server's witnesses (first contact). 1 if
 * the server runs no KT. */
static int pin(struct sc_client *c, struct conn *k, struct kt_state *s) {
  struct sotto_net_event ans;
  struct sotto_srv_kt_config m;
  size_t i, j;
  int rc = call(c, k, SOTTO_SRV_KT_CONFIG, NULL, 0, &ans, "asking for the key-transparency log");
  if (rc == SOTTO_SRV_E_NOT_FOUND) {
    sotto_net_event_clear(&ans);
    return 1;
  }
  if (rc) return rc;
  if (sotto__srv_parse_kt_config(ans.payload, ans.payload_len, &m) != 0) {
    sotto_net_event_clear(&ans);
    return sc__fail(c, SC_ERR_PROTOCOL, "the server's key-transparency configuration does not parse");
  }
  memcpy(s->sig_pk, m.sig_pk, sizeof s->sig_pk);
  memcpy(s->vrf_pk, m.vrf_pk, sizeof s->vrf_pk);
  for (i = 0; i < m.n; i++) {
    for (j = 0; j < s->n_wit; j++)
      if (!memcmp(s->wit[j].pk, m.w[i].pk, 32) || (strlen(s->wit[j].name) == m.w[i].name.len &&
                                                   !memcmp(s->wit[j].name, m.w[i].name.p, m.w[i].name.len)))
        break;
    if (j < s->n_wit || s->n_wit >= KT_MAX_WITNESSES) continue; /* the user's own entry of that name or key wins */
    memset(&s->wit[s->n_wit], 0, sizeof s->wit[0]);
    memcpy(s->wit[s->n_wit].name, m.w[i].name.p, m.w[i].name.len);
    memcpy(s->wit[s->n_wit].pk, m.w[i].pk, 32);
    s->n_wit++;
  }
  s->pinned = 1;
  sotto_net_event_clear(&ans);
  return 0;
}

/* The server's current head, checked: the log's signature, enough
 * witnesses, consistent with s->head. On success s->head is the new head
 * (not yet stored) and hb/h hold it. 1 if the server runs no KT. */
static int fresh_head(struct sc_client *c, struct conn *k, struct kt_state *s, struct sotto_kt_head *h,
                      uint8_t hb[SOTTO_KT_HEAD_LEN]) {
  struct sotto_kt_log_id id;
  struct sotto_net_event ans;
  struct sotto_srv_kt_head kh;
  unsigned valid = 0, need = kt_required(s);
  size_t i, j;
  int rc;
  if (!s->pinned) {
    /* First contact: the pins are kept whatever the checks below say. */
    if ((rc = pin(c, k, s)) != 0 || (rc = save_now(c, s)) != 0) return rc;
    need = kt_required(s);
  }
  memcpy(id.sig_pk, s->sig_pk, 32);
  memcpy(id.vrf_pk, s->vrf_pk, 32);
  rc = call(c, k, SOTTO_SRV_KT_HEAD, NULL, 0, &ans, "asking for the key-transparency head");
  if (rc == SOTTO_SRV_E_NOT_FOUND) {
    sotto_net_event_clear(&ans);
    return sc__fail(c, SC_ERR_KT_OFF,
                    "the server ran a key-transparency log before and no longer answers for it: not trusting its "
                    "keys");
  }
  if (rc) return rc;
  if (sotto__srv_parse_kt_head(ans.payload, ans.payload_len, &kh) != 0 ||
      sotto_kt_head_decode(h, kh.head, SOTTO_KT_HEAD_LEN) != 0) {
    sotto_net_event_clear(&ans);
    return sc__fail(c, SC_ERR_PROTOCOL, "the server's key-transparency head does not parse");
  }
  memcpy(hb, kh.head, SOTTO_KT_HEAD_LEN);
  if (sotto_kt_head_verify(h, &id) != 0) {
    sotto_net_event_clear(&ans);
    return sc__fail(c, SC_ERR_KT_BAD_PROOF,
                    "the server's key-transparency head is not signed by the log's key pinned at first contact");
  }
  for (i = 0; i < s->n_wit; i++)
    for (j = 0; j < kh.n_cosigs; j++)
      if (sotto_kt_cosig_verify(kh.cosigs + j * SOTTO_KT_COSIG_LEN, s->wit[i].pk, h, &id) == 0) {
        valid++;
        if (h->tree_size > s->wit[i].last_size) s->wit[i].last_size = h->tree_size;
        break;
      }
  sotto_net_event_clear(&ans);
  if (valid < need) {
    char names[512];
    size_t off = 0;
    names[0] = 0;
    for (i = 0; i < s->n_wit && off < sizeof names - 80; i++)
      off += (size_t)snprintf(names + off, sizeof names - off, "%s%s (last cosigned size %llu)", i ? ", " : "",
                              s->wit[i].name, (unsigned long long)s->wit[i].last_size);
    return sc__fail(c, SC_ERR_KT_QUORUM,
                    "the server's key-transparency head (size %llu) is cosigned by %u of the %u witnesses required "
                    "(%s%s): a head no witness vouches for may be a split view; not trusting it",
                    (unsigned long long)h->tree_size, valid, need, names[0] ? "witnesses: " : "no witnesses known",
                    names);
  }
  if (s->has_head) {
    struct sotto_kt_head old;
    uint8_t b[8];
    struct sotto__wr w;
    struct sotto_srv_kt_proof kp;
    if (sotto_kt_head_decode(&old, s->head, sizeof s->head) != 0)
      return sc__fail(c, SC_ERR_STORE_CORRUPT, "the stored key-transparency head does not parse");
    if (h->tree_size < old.tree_size || (h->tree_size == old.tree_size && sodium_memcmp(hb, s->head, SOTTO_KT_HEAD_LEN)))
      return sc__fail(c, SC_ERR_KT_FORK,
                      "the server's key-transparency log (size %llu) is not an extension of the one it showed you "
                      "before (size %llu): it shows different logs to different people; not trusting its keys",
                      (unsigned long long)h->tree_size, (unsigned long long)old.tree_size);
    if (h->tree_size > old.tree_size) {
      sotto__wr_init(&w, b, sizeof b);
      sotto__wr_u64be(&w, old.tree_size);
      if ((rc = call(c, k, SOTTO_SRV_KT_CONSISTENCY, b, w.len, &ans, "asking for a key-transparency consistency proof")))
        return rc == SOTTO_SRV_E_NOT_FOUND
                   ? sc__fail(c, SC_ERR_KT_FORK, "the server has no consistency proof from the head you saw before")
                   : rc;
      if (sotto__srv_parse_kt_proof(ans.payload, ans.payload_len, &kp) != 0) {
        sotto_net_event_clear(&ans);
        return sc__fail(c, SC_ERR_PROTOCOL, "the server's consistency proof does not parse");
      }
      if (sodium_memcmp(kp.head, hb, SOTTO_KT_HEAD_LEN) != 0) {
        sotto_net_event_clear(&ans);
        return 2; /* the log moved on meanwhile: again */
      }
      rc = sotto_kt_log_verify_consistency(old.root, old.tree_size, h->root, h->tree_size, kp.proof, kp.proof_len);
      sotto_net_event_clear(&ans);
      if (rc != 0)
        return sc__fail(c, SC_ERR_KT_FORK,
                        "the server's key-transparency log (size %llu) is not an extension of the one it showed "
                        "you before (size %llu): its consistency proof fails; not trusting its keys",
                        (unsigned long long)h->tree_size, (unsigned long long)old.tree_size);
    }
  }
  memcpy(s->head, hb, SOTTO_KT_HEAD_LEN);
  s->has_head = 1;
  return 0;
}

/* The label of a username: its canonical form, as the server logs it
 * (proto/'s sotto__srv_username_canon: look-alikes folded). */
static size_t label_of(char out[SC_USER_MAX + 1], const char *user) {
  _Static_assert(SC_USER_MAX == SOTTO_SRV_USER_MAX, "username bounds");
  sotto__srv_username_canon((const uint8_t *)user, strlen(user), out);
  return strlen(out);
}

/* A checked head, then the search proof for user against it: version and
 * value (value: SOTTO_KT_MAX_VALUE_LEN bytes). 1: the server runs no KT. */
static int search(struct sc_client *c, struct conn *k, struct kt_state *s, const char *user, int list,
                  uint32_t *version, uint8_t *value, size_t *vlen) {
  char label[SOTTO_SRV_KT_LIST_LABEL_MAX + 1];
  size_t ll;
  int tries, rc = 0;
  if (list) {
    sotto__srv_kt_list_label(label, user);
    ll = strlen(label);
  } else {
    ll = label_of(label, user);
  }
  for (tries = 0; tries < KT_TRIES; tries++) {
    struct sotto_kt_head h;
    struct sotto_kt_log_id id;
    struct sotto_net_event ans;
    struct sotto_srv_kt_proof kp;
    uint8_t hb[SOTTO_KT_HEAD_LEN], b[SC_USER_MAX + 2];
    struct sotto__wr w;
    struct kt_state keep = *s;
    rc = fresh_head(c, k, s, &h, hb);
    if (rc == 2) {
      *s = keep;
      continue;
    }
    if (rc) return rc;
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_search_req(&w, list ? label + strlen(SOTTO_SRV_KT_LIST_PREFIX) : label);
    if ((rc = call(c, k, list ? SOTTO_SRV_KT_SEARCH_LIST : SOTTO_SRV_KT_SEARCH, b, w.len, &ans,
                   "asking for a key-transparency search proof")))
      return rc == SOTTO_SRV_E_NOT_FOUND ? sc__fail(c, SC_ERR_KT_OFF, "the server gave no key-transparency proof") : rc;
    if (sotto__srv_parse_kt_proof(ans.payload, ans.payload_len, &kp) != 0) {
      sotto_net_event_clear(&ans);
      return sc__fail(c, SC_ERR_PROTOCOL, "the server's search proof does not parse");
    }
    if (sodium_memcmp(kp.head, hb, SOTTO_KT_HEAD_LEN) != 0) {
      sotto_net_event_clear(&ans);
      *s = keep; /* a newer entry meanwhile: check that head first */
      continue;
    }
    memcpy(id.sig_pk, s->sig_pk, 32);
    memcpy(id.vrf_pk, s->vrf_pk, 32);
    rc = sotto_kt_search_verify(version, value, vlen, &h, &id, (const uint8_t *)label, ll, kp.proof, kp.proof_len);
    sotto_net_event_clear(&ans);
    if (rc != 0)
      return sc__fail(c, SC_ERR_KT_BAD_PROOF,
                      "the server's key-transparency proof for %s does not verify against its signed head (%s)", user,
                      sotto_strerror(rc));
    return 0;
  }
  return sc__fail(c, SC_ERR_KT_BAD_PROOF, "the server's key-transparency log kept changing while it was checked; "
                                          "try again");
}

/* ---- the checks ------------------------------------------------------------------------ */

int kt_check_contact(struct sc_client *c, struct conn *k, const char *user, const uint8_t *identity, size_t len) {
  struct kt_state s;
  uint8_t value[SOTTO_KT_MAX_VALUE_LEN];
  uint32_t version = SOTTO_KT_ABSENT;
  size_t vlen = 0;
  int rc;
  if ((rc = kt_load(c->st, &s)) != 0) return sc__store_error(c, rc);
  rc = search(c, k, &s, user, 0, &version, value, &vlen);
  if (rc == 1) {
    if (s.required)
      return sc__fail(c, SC_ERR_KT_OFF,
                      "key transparency is required for this server, but it runs no log: the key for %s cannot be "
                      "checked; not sending",
                      user);
    if (!s.off) {
      s.off = 1;
      (void)save_now(c, &s);
    }
    return 0;
  }
  if (rc) return rc;
  s.off = 0;
  if ((rc = save_now(c, &s)) != 0) return rc; /* the checked head (and the pins) stay, whatever comes next */
  if (version == SOTTO_KT_ABSENT || vlen != len || sodium_memcmp(value, identity, len) != 0)
    return sc__fail(c, SC_ERR_KT_NOT_LOGGED,
                    "the server showed you a key for %s that is not in its public log; not sending", user);
  return 0;
}

/* The list version in a logged device-list value (u32 big endian first). */
static uint32_t list_value_version(const uint8_t *v) {
  return (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
}

int kt_check_list(struct sc_client *c, struct conn *k, const char *user, uint32_t list_version, const uint8_t *list,
                  size_t len) {
  struct kt_state s;
  uint8_t value[SOTTO_KT_MAX_VALUE_LEN], want[SOTTO_SRV_KT_LIST_VALUE_LEN];
  uint32_t version = SOTTO_KT_ABSENT;
  size_t vlen = 0;
  int rc;
  if ((rc = kt_load(c->st, &s)) != 0) return sc__store_error(c, rc);
  rc = search(c, k, &s, user, 1, &version, value, &vlen);
  if (rc == 1) {
    if (s.required)
      return sc__fail(c, SC_ERR_KT_OFF,
                      "key transparency is required for this server, but it runs no log: the device list of %s "
                      "cannot be checked; not sending",
                      user);
    return 0; /* kt_check_contact records that the server runs no log */
  }
  if (rc) return rc;
  if ((rc = save_now(c, &s)) != 0) return rc;
  sotto__srv_kt_list_value(want, list_version, list, len);
  if (version != SOTTO_KT_ABSENT && vlen == sizeof want && sodium_memcmp(value, want, sizeof want) == 0) return 0;
  if (version != SOTTO_KT_ABSENT && vlen == sizeof want && list_value_version(value) > list_version)
    return sc__fail(c, SC_ERR_KT_LIST_HIDDEN,
                    "the server showed you version %lu of %s's device list, but its public log holds a newer one "
                    "(version %lu): the server may be hiding one of their devices; not sending",
                    (unsigned long)list_version, user, (unsigned long)list_value_version(value));
  return sc__fail(c, SC_ERR_KT_NOT_LOGGED,
                  "the server showed you a device list for %s that is not in its public log; not sending", user);
}

int kt_check_no_list(struct sc_client *c, struct conn *k, const char *user) {
  struct kt_state s;
  uint8_t value[SOTTO_KT_MAX_VALUE_LEN];
  uint32_t version = SOTTO_KT_ABSENT;
  size_t vlen = 0;
  int rc;
  if ((rc = kt_load(c->st, &s)) != 0) return sc__store_error(c, rc);
  rc = search(c, k, &s, user, 1, &version, value, &vlen);
  if (rc == 1) return 0; /* no log: kt_check_contact decides (kt require) */
  if (rc) return rc;
  if ((rc = save_now(c, &s)) != 0) return rc;
  /* Nothing logged, or the newest version is the deletion marker that
   * UNREGISTER logs: the account has no device list. */
  if (version == SOTTO_KT_ABSENT || vlen == 0) return 0;
  if (vlen == SOTTO_SRV_KT_LIST_VALUE_LEN)
    return sc__fail(c, SC_ERR_KT_LIST_HIDDEN,
                    "the server shows no device list for %s, but its public log holds one (version %lu): the server "
                    "may be hiding their devices; not sending",
                    user, (unsigned long)list_value_version(value));
  return sc__fail(c, SC_ERR_KT_LIST_HIDDEN,
                  "the server shows no device list for %s, but its public log holds an entry for one; not sending",
                  user);
}

static void mon_set(struct sc_client *c, struct kt_state *s, uint8_t result, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void mon_set(struct sc_client *c, struct kt_state *s, uint8_t result, const char *fmt, ...) {
  va_list ap;
  s->mon_result = result;
  s->mon_time = sc__now_s();
  va_start(ap, fmt);
  vsnprintf(s->mon_detail, sizeof s->mon_detail, fmt, ap);
  va_end(ap);
  (void)c;
}

/* The identity of an alerting entry: SHA-256(kind || u32 version || value),
 * what `sotto kt ack` acknowledges (a new version or value alerts again). */
static void entry_digest(uint8_t out[32], const char *kind, uint32_t version, const uint8_t *value, size_t len) {
  crypto_hash_sha256_state h;
  uint8_t v[4] = {(uint8_t)(version >> 24), (uint8_t)(version >> 16), (uint8_t)(version >> 8), (uint8_t)version};
  crypto_hash_sha256_init(&h);
  crypto_hash_sha256_update(&h, (const uint8_t *)kind, strlen(kind) + 1);
  crypto_hash_sha256_update(&h, v, sizeof v);
  crypto_hash_sha256_update(&h, value, len);
  crypto_hash_sha256_final(&h, out);
}

static int is_zero32(const uint8_t d[32]) {
  return sodium_is_zero(d, 32);
}

/* 1 if the alert d (non-zero) is the one the user acknowledged. */
static int is_acked(const uint8_t d[32], const uint8_t acked[32]) {
  return !is_zero32(d) && sodium_memcmp(d, acked, 32) == 0;
}

int kt_monitor(struct sc_client *c, struct conn *k) {
  struct kt_state s;
  uint8_t value[SOTTO_KT_MAX_VALUE_LEN], mine[CONN_IDENTITY_BLOB_LEN];
  uint32_t version = SOTTO_KT_ABSENT;
  size_t vlen = 0;
  int rc, saved_err = c->err;
  char saved[sizeof c->errdetail];
  const char *me = c->acct->username;
  memcpy(saved, c->errdetail, sizeof saved);
  if ((rc = kt_load(c->st, &s)) != 0) return sc__store_error(c, rc);
  conn_identity_blob(c, mine);
  rc = search(c, k, &s, me, 0, &version, value, &vlen);
  /* A linked device: the log holds the account key (device 1's identity
   * blob), not this device's own key; it is "ours" when its key is the
   * account key device 1 gave us at linking (the registration id in the
   * blob's tail is device 1's). */
  if (rc == 0 && c->acct->device_id != 1) {
    uint8_t akey[SOTTO_PUBKEY_LEN];
    if (devices_linked_load(c, akey, NULL) == 1) {
      mine[0] = 0x05;
      memcpy(mine + 1, akey, SOTTO_PUBKEY_LEN);
      if (vlen == sizeof mine && sodium_memcmp(value, mine, 33) == 0) memcpy(mine, value, sizeof mine);
    }
  }
  if (rc == 1) {
    rc = 0;
    if (!s.off || s.mon_result != KT_MON_NONE) { /* write only what changed (this runs at every connect) */
      s.off = 1;
      s.mon_result = KT_MON_NONE;
      rc = save_now(c, &s);
    }
    goto out;
  }
  s.off = 0;
  if (rc < 0) {
    if (rc == SC_ERR_UNREACHABLE || rc == SC_ERR_TIMEOUT || rc == SC_ERR_CONNECTION_LOST || rc == SC_ERR_RATE_LIMITED ||
        rc == SC_ERR_KT_PENDING) {
      rc = 0; /* tried again at the next connect */
      goto out;
    }
    {
      struct kt_state cur;
      char why[sizeof c->errdetail];
      snprintf(why, sizeof why, "%s", c->errdetail);
      if (kt_load(c->st, &cur) == 0) s = cur; /* keep the last good head: nothing of this answer is stored */
      mon_set(c, &s, KT_MON_FAILED, "key transparency: could not check your own account's entry in the log: %s", why);
    }
  } else if (s.has_own && sodium_memcmp(s.own_value, mine, sizeof mine) != 0) {
    s.has_own = 0; /* our identity changed (recovered): we made the new key */
  }
  if (rc == 0) {
    if (version == SOTTO_KT_ABSENT) {
      mon_set(c, &s, KT_MON_ALERT,
              "KEY TRANSPARENCY ALERT: the server's public log has no key for your account %s: contacts that check "
              "the log cannot start a conversation with you (an account made before the server kept its log, or the "
              "server hides it)",
              me);
    } else if (vlen != sizeof mine || sodium_memcmp(value, mine, sizeof mine) != 0) {
      mon_set(c, &s, KT_MON_ALERT,
              "KEY TRANSPARENCY ALERT: the server's public log shows a key for your account %s (version %lu) that "
              "this device did not make: someone may be receiving messages meant for you; verify safety numbers "
              "with your contacts",
              me, (unsigned long)version);
    } else if (s.has_own && version != s.own_version) {
      mon_set(c, &s, KT_MON_ALERT,
              "KEY TRANSPARENCY ALERT: the server's public log shows versions %lu to %lu of your account %s's key; "
              "this device made only version %lu: someone else's key was logged for you in between",
              (unsigned long)s.own_version + 1, (unsigned long)version, me, (unsigned long)s.own_version);
    } else {
      if (!s.has_own) {
        s.has_own = 1;
        s.own_version = version;
        memcpy(s.own_value, mine, sizeof mine);
      }
      {
        struct sotto_kt_head h;
        if (sotto_kt_head_decode(&h, s.head, sizeof s.head) != 0) memset(&h, 0, sizeof h);
        mon_set(c, &s, KT_MON_OK, "the log shows exactly this device's key for %s (version %lu) at size %llu", me,
                (unsigned long)version, (unsigned long long)h.tree_size);
      }
    }
  }
  if (rc == 0 && s.mon_result == KT_MON_ALERT) entry_digest(s.key_alert, "key", version, value, vlen);
  else if (rc == 0) memset(s.key_alert, 0, sizeof s.key_alert);
  if ((s.mon_result == KT_MON_ALERT && !is_acked(s.key_alert, s.key_acked)) || s.mon_result == KT_MON_FAILED)
    sc__event(c, SC_EV_KT_ALERT, SC_R_NONE, me, s.mon_detail);
  rc = save_now(c, &s);
out:
  c->err = saved_err;
  memcpy(c->errdetail, saved, sizeof saved);
  return rc;
}

static void list_set(struct kt_state *s, uint8_t result, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void list_set(struct kt_state *s, uint8_t result, const char *fmt, ...) {
  va_list ap;
  s->list_result = result;
  va_start(ap, fmt);
  vsnprintf(s->list_detail, sizeof s->list_detail, fmt, ap);
  va_end(ap);
}

/* The device ids the server has rows for that `mine` (a list our account
 * key signed) does not name, as text ("" if none or unknown). */
static void extra_devices(struct sc_client *c, struct conn *k, const struct sotto_devlist *mine, char *out,
                          size_t cap) {
  uint32_t ids[SOTTO_SRV_MAX_DEVICES];
  size_t n = 0, i, used = 0;
  out[0] = 0;
  if (!mine || sotto_net_devices(k->net, c->acct->username, ids, SOTTO_SRV_MAX_DEVICES, &n) != 0) return;
  for (i = 0; i < n && used + 16 < cap; i++)
    if (sotto_devlist_find(mine, ids[i]) < 0)
      used += (size_t)snprintf(out + used, cap - used, "%s%u", used ? ", " : "", (unsigned)ids[i]);
}

/* Decides whether the logged device-list value of our account is ours: the
 * last value found ours, or the list the server serves now if our account
 * key signed it and it hashes to the logged value. */
static void list_check(struct sc_client *c, struct conn *k, struct kt_state *s, uint32_t version,
                       const uint8_t *value, size_t vlen) {
  const char *me = c->acct->username;
  uint8_t want[SOTTO_SRV_KT_LIST_VALUE_LEN], akey[SOTTO_PUBKEY_LEN];
  uint8_t *buf = malloc(SOTTO_SRV_MAX_DEVLIST);
  struct sotto_devlist *l = calloc(1, sizeof *l), *mine = calloc(1, sizeof *mine);
  char extra[128] = "";
  size_t len = 0;
  uint32_t lv;
  int rc, have_mine = 0;
  memset(s->list_alert, 0, sizeof s->list_alert);
  if (!buf || !l || !mine) {
    list_set(s, KT_MON_FAILED, "key transparency: could not check your account's device list: out of memory");
    goto out;
  }
  if (version == SOTTO_KT_ABSENT) {
    list_set(s, KT_MON_OK, "the log holds no device list of your account %s", me);
    goto out;
  }
  if (vlen == 0) {
    /* The deletion marker UNREGISTER logs: contacts that check the log take
     * it as "no device list", while this account still logs in. */
    entry_digest(s->list_alert, "devices", version, value, vlen);
    list_set(s, KT_MON_ALERT,
             "KEY TRANSPARENCY ALERT: the server's public log shows your account %s's device list as deleted "
             "(entry %lu), as if the account had been unregistered: contacts that check the log see no device list "
             "for you; if none of your devices unregistered, the server logged it",
             me, (unsigned long)version);
    goto out;
  }
  if (vlen != SOTTO_SRV_KT_LIST_VALUE_LEN) {
    entry_digest(s->list_alert, "devices", version, value, vlen);
    list_set(s, KT_MON_ALERT,
             "KEY TRANSPARENCY ALERT: the server's public log shows a device list for your account %s (entry %lu) "
             "that is not a device list at all (%zu bytes)",
             me, (unsigned long)version, vlen);
    goto out;
  }
  lv = (uint32_t)value[0] << 24 | (uint32_t)value[1] << 16 | (uint32_t)value[2] << 8 | value[3];
  if (s->has_list_ok && sodium_memcmp(s->list_ok, value, SOTTO_SRV_KT_LIST_VALUE_LEN) == 0) {
    list_set(s, KT_MON_OK, "the log shows your account's own signed device list (version %lu)", (unsigned long)lv);
    goto out;
  }
  if (devices_account_key(c, akey) != 0) {
    list_set(s, KT_MON_FAILED, "key transparency: could not read this account's key to check its device list");
    goto out;
  }
  rc = sotto_net_devlist_get(k->net, me, buf, SOTTO_SRV_MAX_DEVLIST, &len);
  if (rc < 0) {
    list_set(s, KT_MON_FAILED, "key transparency: could not read your device list from the server to check it");
    goto out;
  }
  if (rc == 0 && sotto_devlist_parse(l, buf, len) == 0 && strcmp(l->username, me) == 0 &&
      sodium_memcmp(l->account_key, akey, SOTTO_PUBKEY_LEN) == 0) {
    sotto__srv_kt_list_value(want, l->version, buf, len);
    if (sodium_memcmp(want, value, sizeof want) == 0) {
      s->has_list_ok = 1;
      memcpy(s->list_ok, value, sizeof s->list_ok);
      list_set(s, KT_MON_OK, "the log shows your account's own signed device list (version %lu)", (unsigned long)lv);
      goto out;
    }
    *mine = *l;
    have_mine = 1;
  }
  if (!have_mine && devices_own(c, mine) == 1 && sodium_memcmp(mine->account_key, akey, SOTTO_PUBKEY_LEN) == 0)
    have_mine = 1;
  extra_devices(c, k, have_mine ? mine : NULL, extra, sizeof extra);
  entry_digest(s->list_alert, "devices", version, value, vlen);
  list_set(s, KT_MON_ALERT,
           "KEY TRANSPARENCY ALERT: the server's public log shows a device list for your account %s (version %lu) "
           "that none of your devices signed%s%s%s: someone may have added a device to read your messages; check "
           "'sotto devices' on your first device",
           me, (unsigned long)lv, extra[0] ? " (the server has device " : "", extra, extra[0] ? ", which your own list does not name)" : "");
out:
  free(buf);
  free(l);
  free(mine);
}

/* 1 if the logged device-list value (36 bytes) is one our account key
 * signed: the one last found ours, or `list` (the signed list the server
 * still stores for that version) verifying under our key and hashing to it. */
static int list_value_ours(struct sc_client *c, const struct kt_state *s, const uint8_t *value, const uint8_t *list,
                           size_t len, const uint8_t akey[SOTTO_PUBKEY_LEN]) {
  struct sotto_devlist *l;
  uint8_t want[SOTTO_SRV_KT_LIST_VALUE_LEN];
  int ok = 0;
  if (s->has_list_ok && sodium_memcmp(s->list_ok, value, SOTTO_SRV_KT_LIST_VALUE_LEN) == 0) return 1;
  if (!len || (l = calloc(1, sizeof *l)) == NULL) return 0;
  if (sotto_devlist_parse(l, list, len) == 0 && strcmp(l->username, c->acct->username) == 0 &&
      sodium_memcmp(l->account_key, akey, SOTTO_PUBKEY_LEN) == 0) {
    sotto__srv_kt_list_value(want, l->version, list, len);
    ok = sodium_memcmp(want, value, sizeof want) == 0;
  }
  free(l);
  return ok;
}

/* Every version of our device-list label after s->list_seen and before
 * `newest` (which list_check judged), each with a version proof against
 * the head just checked (s->head): a version none of our devices signed
 * that the server logged and replaced before this device looked is
 * reported like the newest one. Advances s->list_seen over what was
 * checked; an alert not acknowledged stays at its version, so it repeats
 * at every check. */
static void list_versions_check(struct sc_client *c, struct conn *k, struct kt_state *s, uint32_t newest) {
  const char *me = c->acct->username;
  char label[SOTTO_SRV_KT_LIST_LABEL_MAX + 1];
  uint8_t akey[SOTTO_PUBKEY_LEN], value[SOTTO_KT_MAX_VALUE_LEN], req[SC_USER_MAX + 8];
  struct sotto_kt_head h;
  struct sotto_kt_log_id id;
  uint32_t from;
  size_t vlen, i;
  int rc;
  if (!s->has_list_seen || s->list_seen >= newest || newest == SOTTO_KT_ABSENT) return;
  if (devices_account_key(c, akey) != 0 || sotto_kt_head_decode(&h, s->head, sizeof s->head) != 0) {
    list_set(s, KT_MON_FAILED, "key transparency: could not check the earlier versions of your device list");
    return;
  }
  memcpy(id.sig_pk, s->sig_pk, 32);
  memcpy(id.vrf_pk, s->vrf_pk, 32);
  sotto__srv_kt_list_label(label, me);
  from = s->list_seen + 1;
  while (from < newest) {
    struct sotto_net_event ans;
    struct sotto_srv_kt_versions vs;
    struct sotto__wr w;
    uint32_t want = newest - from < SOTTO_SRV_KT_MAX_VERSIONS ? newest - from : SOTTO_SRV_KT_MAX_VERSIONS;
    sotto__wr_init(&w, req, sizeof req);
    sotto__srv_put_kt_versions_req(&w, 1, from, (uint8_t)want, me);
    {
      int tries = 0;
      for (;;) {
        rc = sotto_net_call(k->net, SOTTO_SRV_KT_VERSIONS, req, w.len, &ans);
        if (!conn_kt_pending_wait(rc, &tries)) break;
        sotto_net_event_clear(&ans);
      }
    }
    if (rc >= SOTTO_NET_E_IO || rc < 0) { /* the connection, not an answer: tried again at the next connect */
      sotto_net_event_clear(&ans);
      return;
    }
    if (rc != 0) {
      sotto_net_event_clear(&ans);
      list_set(s, KT_MON_FAILED,
               "key transparency: the server gave no proof of versions %lu to %lu of your device list in its log "
               "(%s): they could not be checked",
               (unsigned long)from, (unsigned long)newest - 1, rc == SOTTO_SRV_E_NOT_FOUND ? "not found" : "refused");
      /* Not found: versions the server logged before it kept every version
       * (or it will not show them). Said once, loudly; the next check
       * starts after them, as it cannot do better. */
      if (rc == SOTTO_SRV_E_NOT_FOUND) s->list_seen = newest - 1;
      return;
    }
    if (sotto__srv_parse_kt_versions(ans.payload, ans.payload_len, &vs) != 0 ||
        sodium_memcmp(vs.head, s->head, SOTTO_KT_HEAD_LEN) != 0) {
      /* a newer head meanwhile: checked at the next round */
      sotto_net_event_clear(&ans);
      return;
    }
    for (i = 0; i < vs.n && from < newest; i++, from++) {
      uint32_t lv = 0;
      rc = sotto_kt_version_verify(value, &vlen, &h, &id, (const uint8_t *)label, strlen(label), from, vs.v[i].proof,
                                   vs.v[i].proof_len);
      if (rc != 0) {
        sotto_net_event_clear(&ans);
        list_set(s, KT_MON_FAILED,
                 "key transparency: the server's proof of version %lu of your device list does not verify against "
                 "its signed head (%s)",
                 (unsigned long)from, sotto_strerror(rc));
        return;
      }
      if (vlen == SOTTO_SRV_KT_LIST_VALUE_LEN) lv = list_value_version(value);
      if (vlen == SOTTO_SRV_KT_LIST_VALUE_LEN && list_value_ours(c, s, value, vs.v[i].list, vs.v[i].list_len, akey)) {
        s->list_seen = from;
        continue;
      }
      entry_digest(s->list_alert, "devices", from, value, vlen);
      if (is_acked(s->list_alert, s->list_acked)) {
        s->list_seen = from; /* acknowledged: on to the next */
        continue;
      }
      sotto_net_event_clear(&ans);
      if (vlen == 0)
        list_set(s, KT_MON_ALERT,
                 "KEY TRANSPARENCY ALERT: the server's public log showed your account %s's device list as deleted "
                 "(log version %lu) before version %lu: your devices did not unregister the account",
                 me, (unsigned long)from, (unsigned long)newest);
      else
        list_set(s, KT_MON_ALERT,
                 "KEY TRANSPARENCY ALERT: the server's public log showed a device list for your account %s "
                 "(version %lu, log version %lu) that none of your devices signed, replaced before this device "
                 "checked: someone may have added a device to read your messages for a while; check 'sotto devices' "
                 "on your first device",
                 me, (unsigned long)lv, (unsigned long)from);
      return; /* list_seen stays before it: it is reported again until acknowledged */
    }
    sotto_net_event_clear(&ans);
  }
}

int kt_monitor_list(struct sc_client *c, struct conn *k) {
  struct kt_state s, keep;
  uint8_t value[SOTTO_KT_MAX_VALUE_LEN];
  uint32_t version = SOTTO_KT_ABSENT;
  size_t vlen = 0;
  int rc, saved_err = c->err;
  char saved[sizeof c->errdetail];
  memcpy(saved, c->errdetail, sizeof saved);
  if ((rc = kt_load(c->st, &s)) != 0) return sc__store_error(c, rc);
  keep = s;
  rc = search(c, k, &s, c->acct->username, 1, &version, value, &vlen);
  if (rc == 1) {
    rc = 0; /* no log: kt_monitor records that */
    goto out;
  }
  if (rc < 0) {
    char why[sizeof c->errdetail];
    snprintf(why, sizeof why, "%s", c->errdetail);
    s = keep; /* nothing of this answer is stored */
    if (rc == SC_ERR_UNREACHABLE || rc == SC_ERR_TIMEOUT || rc == SC_ERR_CONNECTION_LOST || rc == SC_ERR_RATE_LIMITED ||
        rc == SC_ERR_KT_PENDING) {
      rc = 0;
      goto out;
    }
    list_set(&s, KT_MON_FAILED, "key transparency: could not check your account's device list in the log: %s", why);
  } else {
    list_check(c, k, &s, version, value, vlen);
    /* The versions before the newest since the last check (the newest's
     * own alert, if any, comes first). */
    if (s.list_result != KT_MON_ALERT || is_acked(s.list_alert, s.list_acked)) list_versions_check(c, k, &s, version);
    if (!s.has_list_seen && version != SOTTO_KT_ABSENT) {
      s.has_list_seen = 1; /* the first check: from here on */
      s.list_seen = version;
    } else if (s.has_list_seen && version != SOTTO_KT_ABSENT && s.list_seen + 1 == version &&
               s.list_result != KT_MON_FAILED) {
      s.list_seen = version; /* every earlier version checked: the newest is list_check's */
    }
  }
  if ((s.list_result == KT_MON_ALERT && !is_acked(s.list_alert, s.list_acked)) || s.list_result == KT_MON_FAILED)
    sc__event(c, SC_EV_KT_ALERT, SC_R_NONE, c->acct->username, s.list_detail);
  rc = save_now(c, &s);
out:
  c->err = saved_err;
  memcpy(c->errdetail, saved, sizeof saved);
  return rc;
}

/* ---- the API (sotto_client.h) ---------------------------------------------------------- */

int sc_kt_status(struct sc_kt_status *out, struct sc_client *c, int refresh) {
  struct kt_state s;
  size_t i;
  int rc, opened = 0;
  memset(out, 0, sizeof *out);
  if ((rc = sc__need_open(c))) return rc;
  if (refresh && sc__acquire(c, &opened) == 0) {
    out->refreshed = 1;
    sc__release(c, opened);
  }
  if ((rc = kt_load(c->st, &s)) != 0) return sc__store_error(c, rc);
  out->pinned = s.pinned;
  out->off = s.off;
  out->required = s.required;
  out->k = kt_required(&s);
  out->n_wit = s.n_wit;
  for (i = 0; i < s.n_wit; i++) {
    snprintf(out->wit[i].name, sizeof out->wit[i].name, "%s", s.wit[i].name);
    sodium_bin2hex(out->wit[i].pk_hex, sizeof out->wit[i].pk_hex, s.wit[i].pk, sizeof s.wit[i].pk);
    out->wit[i].added = s.wit[i].added;
    out->wit[i].last_size = s.wit[i].last_size;
  }
  if (s.has_head) {
    struct sotto_kt_head h;
    if (sotto_kt_head_decode(&h, s.head, sizeof s.head) == 0) {
      out->has_head = 1;
      out->size = h.tree_size;
      out->timestamp_ms = h.timestamp_ms;
      sodium_bin2hex(out->root_hex, sizeof out->root_hex, h.root, sizeof h.root);
    }
  }
  if (s.pinned) {
    uint8_t id[64];
    memcpy(id, s.sig_pk, 32);
    memcpy(id + 32, s.vrf_pk, 32);
    sodium_bin2hex(out->log_hex, sizeof out->log_hex, id, sizeof id);
  }
  out->monitor = s.mon_result;
  out->monitor_time = s.mon_time;
  snprintf(out->monitor_detail, sizeof out->monitor_detail, "%s", s.mon_detail);
  out->monitor_acked = s.mon_result == KT_MON_ALERT && is_acked(s.key_alert, s.key_acked);
  out->list_monitor = s.list_result;
  snprintf(out->list_detail, sizeof out->list_detail, "%s", s.list_detail);
  out->list_acked = s.list_result == KT_MON_ALERT && is_acked(s.list_alert, s.list_acked);
  return 0;
}


/* Loads the record in a transaction for a change; the caller commits. */
static int change_begin(struct sc_client *c, struct kt_state *s) {
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  if ((rc = store_begin(c->st)) != 0) return sc__store_error(c, rc);
  if ((rc = kt_load(c->st, s)) != 0) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  return 0;
}

static int change_end(struct sc_client *c, const struct kt_state *s) {
  int rc;
  if ((rc = kt_save(c->st, s)) != 0 || (rc = store_commit(c->st)) != 0) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  return 0;
}

int sc_kt_witness_add(struct sc_client *c, const char *name, const char *pk_hex) {
  struct kt_state s;
  uint8_t pk[32];
  size_t bl = 0, i;
  int rc;
  if (!name || !pk_hex || !sotto__srv_kt_name_ok((const uint8_t *)name, strlen(name)))
    return sc__fail(c, SC_ERR_ARG, "a witness name is 1-%d of A-Z a-z 0-9 . _ -", KT_NAME_MAX);
  if (strlen(pk_hex) != 64 || sodium_hex2bin(pk, sizeof pk, pk_hex, 64, NULL, &bl, NULL) != 0 || bl != 32)
    return sc__fail(c, SC_ERR_ARG, "a witness key is 64 hex digits (what 'sotto-witness --key' prints)");
  if ((rc = change_begin(c, &s))) return rc;
  for (i = 0; i < s.n_wit; i++)
    if (!strcmp(s.wit[i].name, name) || !memcmp(s.wit[i].pk, pk, 32)) {
      store_rollback(c->st);
      return sc__fail(c, SC_ERR_EXISTS, "there is a witness of that name or key already (%s)", s.wit[i].name);
    }
  if (s.n_wit >= KT_MAX_WITNESSES) {
    store_rollback(c->st);
    return sc__fail(c, SC_ERR_TOO_LARGE, "at most %d witnesses", KT_MAX_WITNESSES);
  }
  memset(&s.wit[s.n_wit], 0, sizeof s.wit[0]);
  snprintf(s.wit[s.n_wit].name, sizeof s.wit[0].name, "%s", name);
  memcpy(s.wit[s.n_wit].pk, pk, 32);
  s.wit[s.n_wit].added = 1;
  s.n_wit++;
  return change_end(c, &s);
}

int sc_kt_witness_remove(struct sc_client *c, const char *name) {
  struct kt_state s;
  size_t i;
  int rc;
  if ((rc = change_begin(c, &s))) return rc;
  for (i = 0; i < s.n_wit && strcmp(s.wit[i].name, name ? name : ""); i++) {
  }
  if (i == s.n_wit) {
    store_rollback(c->st);
    return sc__fail(c, SC_ERR_ARG, "no witness is named '%s' ('sotto kt status' lists them)", name ? name : "");
  }
  memmove(&s.wit[i], &s.wit[i + 1], (s.n_wit - i - 1) * sizeof s.wit[0]);
  s.n_wit--;
  if (s.k_set && s.k > s.n_wit) s.k = s.n_wit;
  return change_end(c, &s);
}

int sc_kt_require(struct sc_client *c, int k) {
  struct kt_state s;
  int rc, opened = 0;
  if ((rc = sc__need_open(c))) return rc;
  if ((rc = kt_load(c->st, &s)) != 0) return sc__store_error(c, rc);
  if (!s.pinned && k > (int)s.n_wit && sc__acquire(c, &opened) == 0) /* first contact: learn the witnesses */
    sc__release(c, opened);
  if ((rc = change_begin(c, &s))) return rc;
  if (k > (int)s.n_wit) {
    store_rollback(c->st);
    return sc__fail(c, SC_ERR_ARG, "only %u witnesses are known: add more first ('sotto kt witnesses add NAME KEY')",
                    (unsigned)s.n_wit);
  }
  s.required = k >= 0;
  s.k_set = k >= 0;
  s.k = (uint8_t)(k >= 0 ? k : 0);
  return change_end(c, &s);
}

int sc_kt_ack(struct sc_client *c) {
  struct kt_state s;
  int rc, n = 0;
  if ((rc = change_begin(c, &s))) return rc;
  if (s.mon_result == KT_MON_ALERT && !is_zero32(s.key_alert) && !is_acked(s.key_alert, s.key_acked)) {
    memcpy(s.key_acked, s.key_alert, 32);
    n++;
  }
  if (s.list_result == KT_MON_ALERT && !is_zero32(s.list_alert) && !is_acked(s.list_alert, s.list_acked)) {
    memcpy(s.list_acked, s.list_alert, 32);
    n++;
  }
  if (n == 0) {
    store_rollback(c->st);
    return sc__fail(c, SC_ERR_ARG, "there is no key-transparency alert to acknowledge ('sotto kt status')");
  }
  if ((rc = change_end(c, &s)) != 0) return rc;
  return n;
}
