/* SPDX-License-Identifier: Apache-2.0 */
/* conn.c: connection, authentication, pre-key upload, bundles (conn.h). */
#include "conn.h"
#include "kt.h"
#include "devices.h"

#include <sotto/keys.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "grp.h"
#include "record.h"

int conn_split(const char *hp, char *host, size_t hcap, char *port, size_t pcap) {
  const char *colon, *h = hp;
  size_t hl;
  if (hp[0] == '[') {
    const char *end = strchr(hp, ']');
    if (!end || end[1] != ':') return -1;
    h = hp + 1;
    hl = (size_t)(end - h);
    colon = end + 1;
  } else {
    colon = strrchr(hp, ':');
    if (!colon) return -1;
    hl = (size_t)(colon - hp);
  }
  if (hl == 0 || hl >= hcap || strlen(colon + 1) == 0 || strlen(colon + 1) >= pcap) return -1;
  if (strspn(colon + 1, "0123456789") != strlen(colon + 1)) return -1;
  memcpy(host, h, hl);
  host[hl] = 0;
  snprintf(port, pcap, "%s", colon + 1);
  return 0;
}

static int cap_timeout(int dflt, int64_t deadline_ms);

/* Copies the i-th comma-separated element into out. 0 or -1. */
static int list_elem(const char *list, size_t i, char *out, size_t cap) {
  const char *p = list, *e;
  size_t n;
  for (;;) {
    e = strchr(p, ',');
    n = e ? (size_t)(e - p) : strlen(p);
    if (i == 0) break;
    if (!e) return -1;
    p = e + 1;
    i--;
  }
  if (n == 0 || n >= cap) return -1;
  memcpy(out, p, n);
  out[n] = 0;
  return 0;
}

int conn_list_nth(const char *list, size_t i, char *host, size_t hcap, char *port, size_t pcap) {
  char one[300];
  if (list_elem(list, i, one, sizeof one) != 0) return -1;
  return conn_split(one, host, hcap, port, pcap);
}

size_t conn_list_count(const char *list) {
  char host[256], port[16];
  size_t n = 0;
  const char *p;
  for (p = list; *p; p++)
    if (*p == ',') n++;
  if (++n > CONN_MAX_SERVERS) return 0;
  for (size_t i = 0; i < n; i++)
    if (conn_list_nth(list, i, host, sizeof host, port, sizeof port) != 0) return 0;
  return n;
}

int conn_connect_list(struct sc_client *c, struct conn *k, const char *list, int64_t deadline_ms) {
  size_t n = conn_list_count(list), t, i;
  int rc = SOTTO_NET_E_CONNECT;
  for (t = 0; t < n; t++) {
    i = (c->srv_next + t) % n;
    if (conn_list_nth(list, i, k->host, sizeof k->host, k->port, sizeof k->port) != 0) break;
    rc = sotto_net_connect(k->ctx, k->host, k->port, cap_timeout(CONN_CONNECT_TIMEOUT_MS, deadline_ms), 1, &k->net);
    if (rc == 0) {
      c->srv_next = (unsigned)i;
      return 0;
    }
    /* A node that is down: the next one. A wrong certificate is not tried
     * around: it is said at once. */
    if (rc != SOTTO_NET_E_CONNECT && rc != SOTTO_NET_E_TIMEOUT && rc != SOTTO_NET_E_IO) break;
    if (deadline_ms && cap_timeout(CONN_CONNECT_TIMEOUT_MS, deadline_ms) <= 1) break;
  }
  /* Next time, start after the one that failed last. */
  if (n) c->srv_next = (unsigned)((c->srv_next + t + 1) % n);
  return rc;
}

int conn_kt_pending_wait(int rc, int *tries) {
  struct timespec ts;
  long ms;
  if (rc != SOTTO_SRV_E_KT_PENDING || *tries >= CONN_KT_PENDING_TRIES) return 0;
  ms = *tries < 5 ? 20L << *tries : 500;
  (*tries)++;
  ts.tv_sec = 0;
  ts.tv_nsec = ms * 1000000L;
  nanosleep(&ts, NULL);
  return 1;
}

int conn_error(struct sc_client *c, const struct conn *k, int rc, const char *what, const char *user) {
  const char *h = k ? k->host : "?", *p = k ? k->port : "?";
  switch (rc) {
    case SOTTO_NET_E_CONNECT:
      return sc__fail(c, SC_ERR_UNREACHABLE,
                       "cannot reach the server at %s:%s: is it running? check the address and your network, "
                       "then try again",
                       h, p);
    case SOTTO_NET_E_TIMEOUT:
      return sc__fail(c, SC_ERR_TIMEOUT,
                       "%s:%s did not answer in time while %s (it accepted the connection, then nothing); try "
                       "again later, or check the address",
                       h, p, what);
    case SOTTO_NET_E_TLS:
      return sc__fail(c, SC_ERR_TLS,
                       "the TLS handshake with %s:%s failed (the peer refused it; a sotto server speaks TLS 1.3): "
                       "check the address",
                       h, p);
    case SOTTO_NET_E_NOT_TLS:
      return sc__fail(c, SC_ERR_NOT_TLS,
                       "%s:%s does not speak TLS (it answered something else, or closed the connection): it is not "
                       "a sotto server; check the host and port",
                       h, p);
    case SOTTO_NET_E_NOT_SOTTO:
      return sc__fail(c, SC_ERR_NOT_SOTTO,
                       "%s:%s speaks TLS but did not answer as a sotto server: check the host and port", h, p);
    case SOTTO_NET_E_PIN:
      return sc__fail(c, SC_ERR_PIN_MISMATCH,
                       "the server at %s:%s presented a certificate that differs from the pinned one, and no "
                       "valid rotation leads to it: it may be an impostor; ask its operator for the fingerprint "
                       "('sotto-server fingerprint') before trusting it (after a move: 'sotto server set "
                       "HOST:PORT --pin SHA256')",
                       h, p);
    case SOTTO_NET_E_CERT:
      return sc__fail(c, SC_ERR_CERT_UNTRUSTED,
                       "the certificate of %s:%s does not verify against the CA file (or does not name %s): it "
                       "may be an impostor; check the CA file and the address",
                       h, p, h);
    case SOTTO_NET_E_IO:
      return sc__fail(c, SC_ERR_CONNECTION_LOST, "lost the connection to the server at %s:%s while %s; try again", h, p,
                       what);
    case SOTTO_SRV_E_NOT_FOUND:
      if (user)
        return sc__fail(c, SC_ERR_UNKNOWN_USER, "there is no user '%s' on %s:%s; check the spelling", user, h, p);
      break;
    case SOTTO_SRV_E_KT_PENDING:
      return sc__fail(c, SC_ERR_KT_PENDING,
                       "the server at %s:%s has not put %s%s account into its public key-transparency log yet (it "
                       "registered moments ago), so nothing of it was used while %s; try again in a few seconds",
                       h, p, user ? user : "the", user ? "'s" : "", what);
    case SOTTO_SRV_E_QUEUE_FULL:
      return sc__fail(c, SC_ERR_QUEUE_FULL,
                       "%s's message queue on the server is full (they have not fetched messages for a long "
                       "time); try again after they run 'sotto receive'",
                       user ? user : "the recipient");
    case SOTTO_SRV_E_TAKEN:
      return sc__fail(c, SC_ERR_USERNAME_TAKEN, "the username '%s' is taken on %s:%s; choose another one",
                       user ? user : "?", h, p);
    case SOTTO_SRV_E_QUARANTINED:
      return sc__fail(c, SC_ERR_QUARANTINED,
                       "the username '%s' belonged to an account deleted recently and is held on %s:%s for the "
                       "server's quarantine (so that its contacts learn it is gone); choose another name or try "
                       "again later",
                       user ? user : "?", h, p);
    case SOTTO_SRV_E_BAD_USERNAME:
      return sc__fail(c, SC_ERR_BAD_USERNAME, "the server refused the username '%s' (3-32 of a-z 0-9 _ .)",
                       user ? user : "?");
    case SOTTO_SRV_E_AUTH:
      /* A linked device whose row is gone was removed from its account
       * (the server cannot tell a removed device from a wrong secret). */
      if (c->acct && c->acct->device_id > 1)
        return sc__fail(c, SC_ERR_AUTH_FAILED,
                        "the server at %s:%s refused this device's credentials: device %u was probably removed from "
                        "the account ('sotto devices' on device 1 shows it); to use it again, link a fresh --home "
                        "('sotto link')",
                        h, p, (unsigned)c->acct->device_id);
      return sc__fail(c, SC_ERR_AUTH_FAILED,
                       "the server at %s:%s refused this device's credentials (was the account deleted, or the "
                       "server's data reset?); register a new account with a fresh --home",
                       h, p);
    case SOTTO_SRV_E_RATE:
      return sc__fail(c, SC_ERR_RATE_LIMITED, "the server is rate limiting us while %s; wait a minute and try again",
                       what);
    case SOTTO_SRV_E_AUTH_RATE:
      return sc__fail(c, SC_ERR_AUTH_RATE_LIMITED,
                       "the server at %s:%s refuses logins from this address for now (too many failed logins); "
                       "wait a few minutes and try again",
                       h, p);
    case SOTTO_SRV_E_NO_KEYS:
      return sc__fail(c, SC_ERR_NO_KEYS, "%s has no pre-keys on the server yet; ask them to run 'sotto receive' once",
                       user ? user : "the recipient");
    case SOTTO_SRV_E_DISPLACED:
      return sc__fail(c, SC_ERR_DISPLACED,
                       "another sotto process of this identity connected to the server while %s; run one at a "
                       "time and try again",
                       what);
    case SOTTO_SRV_E_SHUTDOWN:
      return sc__fail(c, SC_ERR_SHUTDOWN, "the server at %s:%s is shutting down; try again in a moment", h, p);
    case SOTTO_SRV_E_BUSY:
      return sc__fail(c, SC_ERR_SERVER_BUSY, "the server at %s:%s has too many connections; try again in a moment", h, p);
    default:
      break;
  }
  if (rc > 0 && rc < 1000)
    return sc__fail(c, SC_ERR_SERVER, "the server answered '%s' while %s", sotto__srv_code_str((unsigned)rc),
                     what);
  return sc__fail(c, SC_ERR_PROTOCOL, "unexpected answer from the server while %s (%s); try again", what,
                   rc < 0 ? sotto_strerror(rc) : "transport error");
}

/* Trust on first use: one TLS 1.3 handshake without certificate checks,
 * then HELLO (nothing secret), to learn the fingerprint (SHA-256 of the
 * DER certificate) that every later connection then requires, and to tell
 * a refused port, a hung one, a non-TLS one and a TLS one that is no sotto
 * server apart (each its own error). */
int conn_probe_pin(struct sc_client *c, const char *host, const char *port, char pin[65]) {
  struct conn k;
  int rc = sotto_net_probe(host, port, CONN_CONNECT_TIMEOUT_MS, pin, NULL);
  if (rc == 0) return 0;
  memset(&k, 0, sizeof k);
  snprintf(k.host, sizeof k.host, "%s", host);
  snprintf(k.port, sizeof k.port, "%s", port);
  if (rc == SOTTO_ERR_NOMEM) return sc__fail(c, SC_ERR_INTERNAL, "cannot set up TLS");
  return conn_error(c, &k, rc, "connecting", NULL);
}

void conn_identity_blob(const struct sc_client *c, uint8_t out[CONN_IDENTITY_BLOB_LEN]) {
  uint32_t r = c->acct->id.registration_id;
  sotto_pubkey_serialize(out, c->acct->id.pub);
  out[33] = (uint8_t)(r >> 24);
  out[34] = (uint8_t)(r >> 16);
  out[35] = (uint8_t)(r >> 8);
  out[36] = (uint8_t)r;
}

int conn_upload_keys(struct sc_client *c, struct conn *k, int initial, size_t n_ec, size_t n_kem) {
  struct sotto_srv_keys *m = calloc(1, sizeof *m);
  struct prekey_pub *ec = calloc(n_ec ? n_ec : 1, sizeof *ec);
  struct kem_pub *kem = calloc(n_kem + 1, sizeof *kem);
  uint8_t spk[CONN_SPK_BLOB_LEN], *kb = calloc(n_kem + 1, CONN_KEM_BLOB_LEN);
  uint32_t ec_left, kem_left;
  uint64_t now;
  size_t i;
  int rc = SC_ERR_INTERNAL, src;

  if (!m || !ec || !kem || !kb || n_ec > SOTTO_SRV_MAX_KEYS_PER_UPLOAD || n_kem > SOTTO_SRV_MAX_KEYS_PER_UPLOAD) {
    rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  /* Private halves are committed first: an upload that fails later only
   * leaves unused keys behind, never a public key without its private one.
   * The stock of one-time private keys is bounded (account_room); the
   * replaced signed and last-resort keys stay for the grace period. */
  if ((src = sc__begin(c)) != 0) {
    rc = sc__store_error(c, src);
    goto out;
  }
  now = sc__now_s();
  if (account_room(c->st, c->acct, n_ec, n_kem, &n_ec, &n_kem) ||
      (initial && (account_retire_current(c->st, c->acct, now) ||
                   account_new_signed_prekey(c->st, c->acct, spk, spk + 32) ||
                   account_new_kem_prekeys(c->st, c->acct, &kem[n_kem], 1, 1))) ||
      account_new_one_time_prekeys(c->st, c->acct, ec, n_ec) ||
      account_new_kem_prekeys(c->st, c->acct, kem, n_kem, 0)) {
    store_rollback(c->st);
    rc = sc__store_error(c, STORE_E_IO);
    goto out;
  }
  if (initial) c->acct->spk_created = c->acct->lr_created = now;
  if (!initial) c->acct->last_topup = now; /* a top-up proper (not registration or rotation) */
  if (account_save(c->st, c->acct) || store_commit(c->st)) {
    store_rollback(c->st);
    rc = sc__store_error(c, STORE_E_IO);
    goto out;
  }
  if (!initial && n_ec == 0 && n_kem == 0) {
    rc = 0; /* nothing fits: the stock is full of keys the server still holds or handed out recently */
    goto out;
  }
  if (initial) {
    m->flags = SOTTO_SRV_KEYS_SIGNED | SOTTO_SRV_KEYS_LAST_RESORT;
    m->signed_prekey.id = c->acct->spk_id;
    m->signed_prekey.p = spk;
    m->signed_prekey.len = sizeof spk;
  }
  for (i = 0; i < n_kem + (initial ? 1 : 0); i++) {
    memcpy(kb + i * CONN_KEM_BLOB_LEN, kem[i].pub, SOTTO_KEM_PUBKEY_LEN);
    memcpy(kb + i * CONN_KEM_BLOB_LEN + SOTTO_KEM_PUBKEY_LEN, kem[i].sig, SOTTO_SIGNATURE_LEN);
  }
  if (initial) {
    m->last_resort.id = kem[n_kem].id;
    m->last_resort.p = kb + n_kem * CONN_KEM_BLOB_LEN;
    m->last_resort.len = CONN_KEM_BLOB_LEN;
  }
  m->n_ec = (uint16_t)n_ec;
  for (i = 0; i < n_ec; i++) {
    m->ec[i].id = ec[i].id;
    m->ec[i].p = ec[i].pub;
    m->ec[i].len = SOTTO_PUBKEY_LEN;
  }
  m->n_kem = (uint16_t)n_kem;
  for (i = 0; i < n_kem; i++) {
    m->kem[i].id = kem[i].id;
    m->kem[i].p = kb + i * CONN_KEM_BLOB_LEN;
    m->kem[i].len = CONN_KEM_BLOB_LEN;
  }
  src = sotto_net_upload_keys(k->net, m, &ec_left, &kem_left);
  rc = src ? conn_error(c, k, src, "uploading pre-keys", NULL) : 0;
  if (rc == 0) {
    struct sc_event ev;
    if (initial) sc__event(c, SC_EV_KEYS_ROTATED, SC_R_NONE, NULL, NULL);
    if (n_ec || n_kem) {
      memset(&ev, 0, sizeof ev);
      ev.kind = SC_EV_KEYS_TOPPED_UP;
      ev.count = n_ec;
      ev.total = n_kem + (initial ? 1 : 0);
      sc__emit(c, &ev);
    }
  }
out:
  free(m);
  free(ec);
  free(kem);
  free(kb);
  return rc;
}

int conn_top_up(struct sc_client *c, struct conn *k, uint32_t ec_left, uint32_t kem_left) {
  size_t n_ec = ec_left < CONN_EC_STOCK ? CONN_EC_STOCK - ec_left : 0;
  size_t n_kem = kem_left < CONN_KEM_STOCK ? CONN_KEM_STOCK - kem_left : 0;
  uint64_t now = sc__now_s();
  int rc, rotate = 0;
  /* What the counts say was handed out, what expired, whether the signed
   * and last-resort pre-keys are due (account_keys_maintain). */
  if ((rc = sc__begin(c)) != 0) return sc__store_error(c, rc);
  if ((rc = account_keys_maintain(c->st, c->acct, now, ec_left, kem_left, &rotate)) ||
      (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  if (ec_left >= SOTTO_SRV_KEYS_LOW) n_ec = 0;
  if (kem_left >= SOTTO_SRV_KEYS_LOW) n_kem = 0;
  /* At most one top-up per ACCOUNT_TOPUP_MIN_S: someone draining our keys
   * on the server cannot keep us generating keys. */
  if (now < c->acct->last_topup + ACCOUNT_TOPUP_MIN_S) n_ec = n_kem = 0;
  if (n_ec == 0 && n_kem == 0 && !rotate) return 0;
  return conn_upload_keys(c, k, rotate, n_ec, n_kem);
}

/* ---- device epoch: a restored copy of the store is re-keyed ------------- */

struct names {
  char (*v)[SC_USER_MAX + 1];
  size_t n, cap;
  uint8_t (*gids)[GROUP_ID_LEN];
  size_t ng, gcap;
};

static int session_name_cb(void *ud, const char *name, const uint8_t *val, size_t len) {
  struct names *x = ud;
  (void)val;
  (void)len;
  if (strlen(name + 8) > SC_USER_MAX) return 0;
  if (x->n == x->cap) {
    size_t nc = x->cap ? 2 * x->cap : 64;
    void *nv = realloc(x->v, nc * sizeof *x->v);
    if (!nv) return STORE_E_IO;
    x->v = nv;
    x->cap = nc;
  }
  snprintf(x->v[x->n++], sizeof x->v[0], "%s", name + 8); /* after "session/" */
  return 0;
}

static int group_id_cb(void *ud, const struct grp *g) {
  struct names *x = ud;
  if (x->ng == x->gcap) {
    size_t nc = x->gcap ? 2 * x->gcap : 16;
    void *nv = realloc(x->gids, nc * sizeof *x->gids);
    if (!nv) return STORE_E_IO;
    x->gids = nv;
    x->gcap = nc;
  }
  memcpy(x->gids[x->ng++], g->gid, GROUP_ID_LEN);
  return 0;
}

/* Inside the caller's transaction: every pairwise session gets a "rekey/"
 * mark (the next message starts a fresh session from a bundle; the old
 * state stays archived for messages still in flight), and our own sender
 * key of every group is dropped (a fresh one is made and distributed
 * before the next group message). Nothing this copy sends can then reuse a
 * message key that a newer copy already used. */
int sc__rekey_all(struct sc_client *c) {
  struct names x;
  struct grp *g = calloc(1, sizeof *g);
  size_t i;
  int rc;
  memset(&x, 0, sizeof x);
  if (!g) return STORE_E_IO;
  if ((rc = store_scan(c->st, "session/", session_name_cb, &x)) || (rc = grp_each(c->st, group_id_cb, &x))) goto out;
  for (i = 0; i < x.n && !rc; i++) {
    char rn[64];
    snprintf(rn, sizeof rn, "rekey/%s", x.v[i]);
    rc = store_put(c->st, rn, (const uint8_t *)"", 0);
  }
  for (i = 0; i < x.ng && !rc; i++) {
    if ((rc = grp_load(c->st, x.gids[i], g)) != 1) {
      rc = rc < 0 ? rc : 0;
      continue;
    }
    g->n_dist = 0;
    if ((rc = grp_sk_del_dev(c->st, g, c->acct->username, sc__own_device(c))) == 0) rc = grp_save(c->st, g);
  }
out:
  free(x.v);
  free(x.gids);
  free(g);
  return rc;
}

/* Raises the device epoch, first in the store then on the server, at every
 * connection. If the server already had a higher one, another copy of this
 * store connected after this copy was made: this one is stale (docs/client.md,
 * "Rollback"), so every session is re-keyed before anything is sent. */
static int epoch_step(struct sc_client *c, struct conn *k) {
  uint64_t mine, old = 0, dummy;
  int rc;
  if ((rc = sc__begin(c)) != 0) return sc__store_error(c, rc);
  mine = store_epoch(c->st) + 1;
  if ((rc = store_set_epoch(c->st, mine)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  if ((rc = sotto_net_epoch(k->net, mine, &old)) != 0) return conn_error(c, k, rc, "checking the device epoch", NULL);
  if (old < mine) return 0;
  {
    struct sc_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = SC_EV_RESTORED_STORE;
    ev.count = mine - 1;
    ev.total = old;
    sc__emit(c, &ev);
  }
  if ((rc = sc__begin(c)) != 0) return sc__store_error(c, rc);
  if ((rc = sc__rekey_all(c)) || (rc = store_set_epoch(c->st, old + 1)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  if ((rc = sotto_net_epoch(k->net, old + 1, &dummy)) != 0)
    return conn_error(c, k, rc, "checking the device epoch", NULL);
  return 0;
}

/* This account's device list as the server has it, against the one seen at
 * the last connection (record "devices.known"): a device that appeared or
 * went away in between is reported (SC_EV_DEVICE_CHANGE), whoever did it:
 * another holder of this device's secret, or the server itself. The first
 * connection only records the list. */
#define KNOWN_DEVICES_REC "devices.known"
#define KNOWN_DEVICES_VERSION 1

static int known_devices_load(struct sc_client *c, uint32_t *ids, size_t max, size_t *n, int *had) {
  uint8_t *v = NULL;
  size_t vn = 0, i;
  uint8_t ver = 0;
  uint16_t cnt = 0;
  struct rec_rd r;
  int rc;
  *n = 0;
  *had = 0;
  if ((rc = store_get(c->st, KNOWN_DEVICES_REC, &v, &vn)) <= 0) return rc;
  rec_rd_init(&r, v, vn);
  rec_get_u8(&r, &ver);
  rec_get_u16(&r, &cnt);
  if (ver != KNOWN_DEVICES_VERSION || cnt > max) rc = STORE_E_CORRUPT;
  for (i = 0; rc >= 0 && i < cnt; i++) rec_get_u32(&r, &ids[i]);
  if (rc >= 0 && rec_rd_end(&r) != 0) rc = STORE_E_CORRUPT;
  store_free_value(v, vn);
  if (rc < 0) return rc;
  *n = cnt;
  *had = 1;
  return 0;
}

static int known_devices_save(struct sc_client *c, const uint32_t *ids, size_t n) {
  struct rec_wr w;
  size_t i;
  int rc;
  rec_wr_init(&w, 3 + 4 * n);
  rec_put_u8(&w, KNOWN_DEVICES_VERSION);
  rec_put_u16(&w, (uint16_t)n);
  for (i = 0; i < n; i++) rec_put_u32(&w, ids[i]);
  rc = rec_wr_ok(&w) ? SC_ERR_NOMEM : store_put(c->st, KNOWN_DEVICES_REC, w.p, w.len);
  rec_wr_free(&w);
  return rc;
}

static int has_id(const uint32_t *ids, size_t n, uint32_t id) {
  size_t i;
  for (i = 0; i < n; i++)
    if (ids[i] == id) return 1;
  return 0;
}

/* Appends "what N, M" (after "; " when out is not empty) for the ids of a
 * that are not in b; returns how many there are. */
static size_t list_diff(char *out, size_t cap, const char *what, const uint32_t *a, size_t na, const uint32_t *b,
                        size_t nb) {
  size_t i, k = 0, len = strlen(out);
  for (i = 0; i < na; i++) {
    if (has_id(b, nb, a[i])) continue;
    if (len < cap) {
      if (k == 0) len += (size_t)snprintf(out + len, cap - len, "%s%s %u", len ? "; " : "", what, (unsigned)a[i]);
      else len += (size_t)snprintf(out + len, cap - len, ", %u", (unsigned)a[i]);
    }
    k++;
  }
  return k;
}

static int devices_step(struct sc_client *c, struct conn *k) {
  uint32_t now[SOTTO_SRV_MAX_DEVICES], old[SOTTO_SRV_MAX_DEVICES];
  size_t n = 0, no = 0, added, removed;
  char detail[512] = "";
  int rc, had = 0;
  if ((rc = sotto_net_devices(k->net, c->acct->username, now, SOTTO_SRV_MAX_DEVICES, &n)) != 0)
    return conn_error(c, k, rc, "listing this account's devices", NULL);
  if ((rc = sc__begin(c)) != 0) return sc__store_error(c, rc);
  if ((rc = known_devices_load(c, old, SOTTO_SRV_MAX_DEVICES, &no, &had)) < 0) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  added = list_diff(detail, sizeof detail, "added", now, n, old, no);
  removed = list_diff(detail, sizeof detail, "removed", old, no, now, n);
  if (had && !added && !removed) {
    store_rollback(c->st);
    return 0;
  }
  if ((rc = known_devices_save(c, now, n)) != 0 || (rc = store_commit(c->st)) != 0) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  if (had) {
    struct sc_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = SC_EV_DEVICE_CHANGE;
    ev.peer = "";
    ev.count = added;
    ev.total = removed;
    ev.detail = detail;
    ev.timestamp_ms = sc_now_ms();
    sc__emit(c, &ev);
  }
  return 0;
}

int conn_forget_device(struct sc_client *c, uint32_t device_id) {
  uint32_t ids[SOTTO_SRV_MAX_DEVICES];
  size_t n = 0, i, j;
  int rc, had = 0;
  if ((rc = sc__begin(c)) != 0) return rc;
  if ((rc = known_devices_load(c, ids, SOTTO_SRV_MAX_DEVICES, &n, &had)) < 0 || !had) {
    store_rollback(c->st);
    return rc < 0 ? rc : 0;
  }
  for (i = j = 0; i < n; i++)
    if (ids[i] != device_id) ids[j++] = ids[i];
  if ((rc = known_devices_save(c, ids, j)) != 0 || (rc = store_commit(c->st)) != 0) store_rollback(c->st);
  return rc;
}

int conn_know_device(struct sc_client *c, uint32_t device_id) {
  uint32_t ids[SOTTO_SRV_MAX_DEVICES];
  size_t n = 0, i;
  int rc, had = 0;
  if ((rc = sc__begin(c)) != 0) return rc;
  if ((rc = known_devices_load(c, ids, SOTTO_SRV_MAX_DEVICES, &n, &had)) < 0 || !had) {
    store_rollback(c->st);
    return rc < 0 ? rc : 0;
  }
  for (i = 0; i < n && ids[i] != device_id; i++) {
  }
  if (i < n || n >= SOTTO_SRV_MAX_DEVICES) {
    store_rollback(c->st);
    return 0;
  }
  /* In id order, as the server lists them. */
  for (i = n; i > 0 && ids[i - 1] > device_id; i--) ids[i] = ids[i - 1];
  ids[i] = device_id;
  if ((rc = known_devices_save(c, ids, n + 1)) != 0 || (rc = store_commit(c->st)) != 0) store_rollback(c->st);
  return rc;
}

int conn_open(struct sc_client *c, struct conn *k) { return conn_open_until(c, k, 0); }

/* The smaller of a default timeout and what is left before deadline_ms
 * (monotonic; 0 = none), at least 1 ms. */
static int cap_timeout(int dflt, int64_t deadline_ms) {
  struct timespec ts;
  int64_t left;
  if (!deadline_ms) return dflt;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  left = deadline_ms - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
  return left < 1 ? 1 : left < dflt ? (int)left : dflt;
}

int conn_open_until(struct sc_client *c, struct conn *k, int64_t deadline_ms) {
  static uint64_t gens; /* the process's connections, numbered */
  uint32_t ec_left = 0, kem_left = 0;
  int rc;

  memset(k, 0, sizeof *k);
  k->gen = ++gens;
  if (!c->acct->username[0])
    return sc__fail(c, SC_ERR_NOT_REGISTERED,
                     "this identity is not registered with a server yet: run 'sotto register --server HOST:PORT "
                     "USERNAME'");
  if (!conn_list_count(c->acct->server))
    return sc__fail(c, SC_ERR_STORE, "the stored server address '%s' is invalid", c->acct->server);
  k->ctx = sotto_net_ctx_new(c->acct->pin[0] ? c->acct->pin : NULL, c->acct->pin[0] ? NULL : c->acct->ca);
  if (!k->ctx) return sc__fail(c, SC_ERR_TLS, "cannot set up TLS for %s (is the CA file %s readable?)", c->acct->server,
                                c->acct->ca[0] ? c->acct->ca : "-");
  rc = conn_connect_list(c, k, c->acct->server, deadline_ms);
  /* Another certificate than the pinned one: a rotation chain from the
   * pinned key may lead to it (repin.c); else refused as before. */
  if (rc == SOTTO_NET_E_PIN) rc = conn_repin(c, k, cap_timeout(CONN_CONNECT_TIMEOUT_MS, deadline_ms));
  else if (rc != 0) rc = conn_error(c, k, rc, "connecting", NULL);
  else rc = conn_pinkey_learn(c, k);
  if (rc != 0) {
    conn_close(k);
    return rc;
  }
  sotto_net_set_timeout(k->net, cap_timeout(CONN_REQUEST_TIMEOUT_MS, deadline_ms));
  /* Key transparency: this account's own log entry, before logging in (a
   * device the server removed after logging a new key still learns it). */
  if ((rc = kt_monitor(c, k)) != 0) {
    conn_close(k);
    return rc;
  }
  if ((rc = sotto_net_auth(k->net, c->acct->username, c->acct->device_id, c->acct->secret, &ec_left, &kem_left))) {
    /* A node that goes away while logging in: the next try starts at the next one. */
    if (rc == SOTTO_NET_E_IO || rc == SOTTO_NET_E_TIMEOUT || rc == SOTTO_SRV_E_SHUTDOWN) c->srv_next++;
    rc = conn_error(c, k, rc, "logging in", c->acct->username);
    conn_close(k);
    return rc;
  }
  if ((rc = epoch_step(c, k)) || (rc = devices_step(c, k)) || (rc = devices_publish(c, k)) ||
      (rc = kt_monitor_list(c, k)) || (rc = conn_top_up(c, k, ec_left, kem_left))) {
    conn_close(k);
    return rc;
  }
  c->kt_monitor_at = sc__now_s() + KT_MONITOR_EVERY_S;
  return 0;
}

void conn_close(struct conn *k) {
  if (k->net) sotto_net_close(k->net);
  if (k->ctx) sotto_net_ctx_free(k->ctx);
  k->net = NULL;
  k->ctx = NULL;
}

/* Parses the opaque key blobs of a fetched bundle (layouts in conn.h). */
static int bundle_parse(const struct sotto_srv_bundle_buf *nb, struct sotto_bundle *b) {
  memset(b, 0, sizeof *b);
  if (nb->identity_len != CONN_IDENTITY_BLOB_LEN || sotto_pubkey_parse(b->identity_key, nb->identity, 33)) return -1;
  b->registration_id = ((uint32_t)nb->identity[33] << 24) | ((uint32_t)nb->identity[34] << 16) |
                       ((uint32_t)nb->identity[35] << 8) | nb->identity[36];
  b->device_id = CONN_PEER_DEVICE;
  if (nb->spk_len != CONN_SPK_BLOB_LEN) return -1;
  b->signed_prekey_id = nb->spk_id;
  memcpy(b->signed_prekey, nb->spk, 32);
  memcpy(b->signed_prekey_sig, nb->spk + 32, 64);
  if (nb->has_ec) {
    if (nb->ec_len != SOTTO_PUBKEY_LEN) return -1;
    b->has_one_time_prekey = 1;
    b->one_time_prekey_id = nb->ec_id;
    memcpy(b->one_time_prekey, nb->ec, 32);
  }
  if (nb->kem_kind) {
    if (nb->kem_len != CONN_KEM_BLOB_LEN) return -1;
    b->has_kem_prekey = 1;
    b->kem_prekey_id = nb->kem_id;
    memcpy(b->kem_prekey, nb->kem, SOTTO_KEM_PUBKEY_LEN);
    memcpy(b->kem_prekey_sig, nb->kem + SOTTO_KEM_PUBKEY_LEN, 64);
  }
  return 0;
}

int conn_fetch_bundle(struct sc_client *c, struct conn *k, const char *user, struct sotto_bundle *b) {
  return conn_fetch_bundle_dev(c, k, user, CONN_PEER_DEVICE, b);
}

int conn_fetch_bundle_dev(struct sc_client *c, struct conn *k, const char *user, uint32_t device,
                          struct sotto_bundle *b) {
  struct sotto_srv_bundle_buf *nb = calloc(1, sizeof *nb);
  char what[96];
  int rc;
  if (!nb) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  snprintf(what, sizeof what, "fetching %s's keys (device %u)", user, device);
  {
    int tries = 0;
    do
      rc = sotto_net_fetch_bundle(k->net, user, device, nb);
    while (conn_kt_pending_wait(rc, &tries));
  }
  if (rc) {
    free(nb);
    return conn_error(c, k, rc, what, user);
  }
  rc = bundle_parse(nb, b);
  if (rc == 0) b->device_id = device;
  /* Key transparency: the identity (account) key must be what the log
   * holds for user. Another device's key is vouched for by the account's
   * signed device list instead (the caller compares it with its entry). */
  if (rc == 0 && device == CONN_PEER_DEVICE && (rc = kt_check_contact(c, k, user, nb->identity, nb->identity_len)) != 0) {
    free(nb);
    return rc;
  }
  free(nb);
  if (rc) return sc__fail(c, SC_ERR_BAD_BUNDLE, "the server returned unusable keys for %s; they may need to register again",
                           user);
  return 0;
}
