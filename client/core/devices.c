/* SPDX-License-Identifier: Apache-2.0 */
/* devices.c: signed device lists in the client (devices.h,
 * docs/multi-device.md): publishing our own, checking a contact's. */
#include "devices.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sotto/devlist.h>

#include "account.h"
#include "conn.h"
#include "contact.h"
#include "kt.h"
#include "grp.h"
#include "net.h"
#include "record.h"

#define DEVLIST_REC_VERSION 1
/* A contact's list verified on this connection is not fetched again for
 * this long: one round trip per contact and half-minute instead of one
 * per message (a rollback on a long-lived connection is seen at most this
 * much later). */
#define DEVICES_RECHECK_MS 30000

/* DEVLIST_GET, counted (c->devlist_gets: tests check that a stale sender
 * that got the list with ERR(30) fetches nothing more). */
static int fetch_list(struct sc_client *c, struct conn *k, const char *user, uint8_t *buf, size_t cap, size_t *len) {
  int rc, tries = 0;
  c->devlist_gets++;
  do
    rc = sotto_net_devlist_get(k->net, user, buf, cap, len);
  while (conn_kt_pending_wait(rc, &tries));
  return rc;
}

static int seen_recently(struct sc_client *c, const struct conn *k, const char *user, const uint8_t key[32]) {
  size_t i;
  int64_t now = sc_monotonic_ms();
  for (i = 0; i < sizeof c->dl_seen / sizeof c->dl_seen[0]; i++)
    if (c->dl_seen[i].net == (const void *)k->net && c->dl_seen[i].gen == k->gen && strcmp(c->dl_seen[i].user, user) == 0 &&
        sodium_memcmp(c->dl_seen[i].key, key, 32) == 0 && now - c->dl_seen[i].at_ms < DEVICES_RECHECK_MS)
      return 1;
  return 0;
}

static void seen_now(struct sc_client *c, const struct conn *k, const char *user, const uint8_t key[32]) {
  unsigned i = c->dl_next++ % (unsigned)(sizeof c->dl_seen / sizeof c->dl_seen[0]);
  c->dl_seen[i].net = k->net;
  c->dl_seen[i].gen = k->gen;
  snprintf(c->dl_seen[i].user, sizeof c->dl_seen[i].user, "%s", user);
  memcpy(c->dl_seen[i].key, key, 32);
  c->dl_seen[i].at_ms = sc_monotonic_ms();
}

int devices_account_key(struct sc_client *c, uint8_t out[SOTTO_PUBKEY_LEN]) {
  int rc;
  memcpy(out, c->acct->id.pub, SOTTO_PUBKEY_LEN);
  if (c->acct->device_id == 1) return 0;
  /* a linked device: the key device 1 gave it (record "linked") */
  rc = devices_linked_load(c, out, NULL);
  if (rc == 0) memcpy(out, c->acct->id.pub, SOTTO_PUBKEY_LEN);
  return rc < 0 ? rc : 0;
}

void devices_recheck(struct sc_client *c, const char *user) {
  size_t i;
  for (i = 0; i < sizeof c->dl_seen / sizeof c->dl_seen[0]; i++)
    if (strcmp(c->dl_seen[i].user, user) == 0) c->dl_seen[i].at_ms = INT64_MIN / 2;
}

/* "devlist/NAME": u8 record version, str16 list bytes. 1 and *l (verified
 * again: the store is ours, but a list is only ever used verified), 0 none. */
static int rec_load(struct sc_client *c, const char *name, struct sotto_devlist *l) {
  char rn[64];
  uint8_t *v = NULL, ver = 0;
  const uint8_t *p = NULL;
  size_t n = 0, pl = 0;
  struct rec_rd r;
  int rc;
  snprintf(rn, sizeof rn, "devlist/%s", name);
  if ((rc = store_get(c->st, rn, &v, &n)) <= 0) return rc;
  rec_rd_init(&r, v, n);
  rec_get_u8(&r, &ver);
  rec_get_str16(&r, &p, &pl, SOTTO_DEVLIST_MAX_LEN);
  rc = rec_rd_end(&r) || ver != DEVLIST_REC_VERSION || sotto_devlist_parse(l, p, pl) != 0 ? STORE_E_CORRUPT : 1;
  store_free_value(v, n);
  return rc;
}

int devices_list_of(struct sc_client *c, const char *user, struct sotto_devlist *l) {
  return rec_load(c, user, l);
}

static int rec_save(struct sc_client *c, const char *name, const uint8_t *list, size_t len) {
  struct rec_wr w;
  struct sotto_devlist *old = calloc(1, sizeof *old), *now = calloc(1, sizeof *now);
  char rn[64];
  int rc, had;
  /* groups follow the change (grp.h): keys to new devices, rotated past
   * removed ones */
  if (!old || !now) rc = STORE_E_IO;
  else if ((had = rec_load(c, name, old)) < 0) rc = had;
  else if (sotto_devlist_parse(now, list, len) != 0) rc = STORE_E_CORRUPT;
  else rc = grp_follow_devices(c->st, name, c->acct->username, c->acct->device_id ? c->acct->device_id : 1,
                               had == 1 ? old : NULL, now);
  free(old);
  free(now);
  if (rc) return rc;
  snprintf(rn, sizeof rn, "devlist/%s", name);
  rec_wr_init(&w, 8 + len);
  rec_put_u8(&w, DEVLIST_REC_VERSION);
  rec_put_str16(&w, list, len);
  rc = rec_wr_ok(&w) ? STORE_E_IO : store_put(c->st, rn, w.p, w.len);
  rec_wr_free(&w);
  return rc;
}

/* "added device 2 'laptop' on 2026-12-03; removed device 3" into out. */
static size_t describe(char *out, size_t cap, const struct sotto_devlist *old, const struct sotto_devlist *now) {
  size_t len = 0, changes = 0;
  unsigned i;
  out[0] = '\0';
  for (i = 0; i < now->n; i++) {
    const struct sotto_devlist_entry *e = &now->dev[i];
    int j = old ? sotto_devlist_find(old, e->device_id) : -1;
    char day[16] = "?";
    time_t t = (time_t)(e->added_at_ms / 1000);
    struct tm tm;
    if (j >= 0 && sodium_memcmp(old->dev[j].device_key, e->device_key, SOTTO_PUBKEY_LEN) == 0) continue;
    if (gmtime_r(&t, &tm)) strftime(day, sizeof day, "%Y-%m-%d", &tm);
    if (len < cap)
      len += (size_t)snprintf(out + len, cap - len, "%sadded device %u '%s' on %s", changes ? "; " : "",
                              e->device_id, e->name, day);
    changes++;
  }
  for (i = 0; old && i < old->n; i++) {
    int j = sotto_devlist_find(now, old->dev[i].device_id);
    if (j >= 0 && sodium_memcmp(now->dev[j].device_key, old->dev[i].device_key, SOTTO_PUBKEY_LEN) == 0) continue;
    if (len < cap)
      len += (size_t)snprintf(out + len, cap - len, "%sremoved device %u '%s'", changes ? "; " : "",
                              old->dev[i].device_id, old->dev[i].name);
    changes++;
  }
  return changes;
}

static void list_event(struct sc_client *c, const char *peer, uint32_t version, const char *detail, int error) {
  struct sc_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = SC_EV_DEVICE_LIST;
  ev.peer = peer;
  ev.count = version;
  ev.error = error;
  ev.detail = detail;
  ev.timestamp_ms = sc_now_ms();
  sc__emit(c, &ev);
}

static int has_row(const uint32_t *rows, size_t n, uint32_t id) {
  size_t i;
  for (i = 0; i < n; i++)
    if (rows[i] == id) return 1;
  return 0;
}

/* Our list, version `version`: device 1 (this device, the account key),
 * then the linked devices of base (our last list, or NULL) that still have
 * a device row on the server (rows; a device that removed itself drops
 * out), then add (a device being linked, or NULL), in id order. */
static int make_own(struct sc_client *c, uint32_t version, const struct sotto_devlist *base, const uint32_t *rows,
                    size_t n_rows, const struct sotto_devlist_entry *add, uint8_t *out, size_t *len) {
  struct sotto_devlist *l = calloc(1, sizeof *l);
  unsigned i;
  int rc;
  if (!l) return SC_ERR_NOMEM;
  snprintf(l->username, sizeof l->username, "%s", c->acct->username);
  memcpy(l->account_key, c->acct->id.pub, SOTTO_PUBKEY_LEN);
  l->version = version;
  l->n = 1;
  l->dev[0].device_id = 1;
  memcpy(l->dev[0].device_key, c->acct->id.pub, SOTTO_PUBKEY_LEN);
  snprintf(l->dev[0].name, sizeof l->dev[0].name, "primary");
  l->dev[0].added_at_ms = (uint64_t)sc_now_ms();
  if (base && base->n && base->dev[0].device_id == 1) {
    snprintf(l->dev[0].name, sizeof l->dev[0].name, "%s", base->dev[0].name);
    l->dev[0].added_at_ms = base->dev[0].added_at_ms;
  }
  for (i = 0; base && i < base->n; i++) {
    const struct sotto_devlist_entry *e = &base->dev[i];
    if (e->device_id == 1 || !has_row(rows, n_rows, e->device_id) || (add && e->device_id == add->device_id))
      continue;
    if (add && add->device_id < e->device_id && sotto_devlist_find(l, add->device_id) < 0 &&
        l->n < SOTTO_DEVLIST_MAX_DEVICES)
      l->dev[l->n++] = *add;
    if (l->n < SOTTO_DEVLIST_MAX_DEVICES) l->dev[l->n++] = *e;
  }
  if (add && sotto_devlist_find(l, add->device_id) < 0) {
    if (l->n >= SOTTO_DEVLIST_MAX_DEVICES) {
      free(l);
      return SC_ERR_TOO_LARGE;
    }
    l->dev[l->n++] = *add;
  }
  rc = sotto_devlist_member_sign(l->dev[0].member_sig, c->acct->id.priv, l->username, l->account_key, 1);
  if (rc == 0) rc = sotto_devlist_sign(l, c->acct->id.priv, out, SOTTO_DEVLIST_MAX_LEN, len);
  free(l);
  return rc ? SC_ERR_INTERNAL : 0;
}

/* ---- the account key of a linked device (record "linked") ---- */

#define LINKED_REC_VERSION 1

int devices_linked_load(struct sc_client *c, uint8_t key[SOTTO_PUBKEY_LEN], char name[SOTTO_DEVLIST_MAX_NAME + 1]) {
  uint8_t *v = NULL, ver = 0;
  size_t n = 0;
  struct rec_rd r;
  char nm[SOTTO_DEVLIST_MAX_NAME + 1];
  int rc;
  if ((rc = store_get(c->st, "linked", &v, &n)) <= 0) return rc;
  rec_rd_init(&r, v, n);
  rec_get_u8(&r, &ver);
  rec_get(&r, key, SOTTO_PUBKEY_LEN);
  rec_get_cstr(&r, nm, sizeof nm);
  rc = rec_rd_end(&r) || ver != LINKED_REC_VERSION ? STORE_E_CORRUPT : 1;
  if (rc == 1 && name) snprintf(name, SOTTO_DEVLIST_MAX_NAME + 1, "%s", nm);
  store_free_value(v, n);
  return rc;
}

int devices_linked_save(struct sc_client *c, const uint8_t key[SOTTO_PUBKEY_LEN], const char *name) {
  struct rec_wr w;
  int rc;
  rec_wr_init(&w, 8 + SOTTO_PUBKEY_LEN + strlen(name));
  rec_put_u8(&w, LINKED_REC_VERSION);
  rec_put(&w, key, SOTTO_PUBKEY_LEN);
  rec_put_str16(&w, name, strlen(name));
  rc = rec_wr_ok(&w) ? STORE_E_IO : store_put(c->st, "linked", w.p, w.len);
  rec_wr_free(&w);
  return rc;
}

#define FLOOR_REC_VERSION 1

int devices_floor_load(struct sc_client *c, uint32_t *floor) {
  uint8_t *v = NULL, ver = 0;
  size_t n = 0;
  struct rec_rd r;
  int rc;
  *floor = 0;
  if ((rc = store_get(c->st, "devfloor", &v, &n)) <= 0) return rc;
  rec_rd_init(&r, v, n);
  rec_get_u8(&r, &ver);
  rec_get_u32(&r, floor);
  rc = rec_rd_end(&r) || ver != FLOOR_REC_VERSION ? STORE_E_CORRUPT : 0;
  if (rc) *floor = 0;
  store_free_value(v, n);
  return rc;
}

int devices_floor_save(struct sc_client *c, uint32_t floor) {
  struct rec_wr w;
  int rc;
  rec_wr_init(&w, 8);
  rec_put_u8(&w, FLOOR_REC_VERSION);
  rec_put_u32(&w, floor);
  rc = rec_wr_ok(&w) ? STORE_E_IO : store_put(c->st, "devfloor", w.p, w.len);
  rec_wr_free(&w);
  return rc;
}

/* The account key our list must be signed with: ours on device 1, the one
 * device 1 gave us when this device was linked otherwise. 0, 1 (a device
 * of before linking, not device 1: none known) or < 0. */
static int account_key(struct sc_client *c, uint8_t key[SOTTO_PUBKEY_LEN]) {
  int rc;
  if (c->acct->device_id == 1) {
    memcpy(key, c->acct->id.pub, SOTTO_PUBKEY_LEN);
    return 0;
  }
  rc = devices_linked_load(c, key, NULL);
  return rc < 0 ? rc : rc == 1 ? 0 : 1;
}

int devices_own(struct sc_client *c, struct sotto_devlist *l) {
  return rec_load(c, c->acct->username, l);
}

/* The version field of a list's bytes, whether it verifies or not (0 if
 * the bytes are too short): a new list must be above what the server holds. */
static uint32_t raw_version(const uint8_t *b, size_t len) {
  size_t off;
  if (len < 2) return 0;
  off = 2 + (size_t)b[1] + SOTTO_PUBKEY_LEN;
  if (off + 4 > len) return 0;
  return (uint32_t)b[off] << 24 | (uint32_t)b[off + 1] << 16 | (uint32_t)b[off + 2] << 8 | b[off + 3];
}

int devices_publish(struct sc_client *c, struct conn *k) {
  struct sotto_devlist *mine = calloc(1, sizeof *mine), *srv = calloc(1, sizeof *srv);
  uint8_t *buf = malloc(SOTTO_SRV_MAX_DEVLIST), *own = malloc(SOTTO_DEVLIST_MAX_LEN);
  char me[SC_USER_MAX + 1]; /* sc__begin reloads the account: a copy */
  size_t len = 0, olen = 0;
  uint32_t next = 1, sv = 0;
  int rc, had, got, ret = 0;
  char why[400] = "";
  uint8_t akey[SOTTO_PUBKEY_LEN] = {0};
  uint32_t rows[SOTTO_SRV_MAX_DEVICES];
  size_t n_rows = 0, i;
  int stale = 0;
  uint32_t floor = 0;
  snprintf(me, sizeof me, "%s", c->acct->username);
  if (!mine || !srv || !buf || !own) {
    ret = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  if ((rc = account_key(c, akey)) < 0) {
    ret = sc__store_error(c, rc);
    goto out;
  }
  if (rc == 1) goto out; /* a second device of before linking: no account key to check against */
  if ((had = rec_load(c, me, mine)) < 0) {
    ret = sc__store_error(c, had);
    goto out;
  }
  /* A linked device: the version device 1 promised when it added us. */
  if (c->acct->device_id != 1 && (rc = devices_floor_load(c, &floor)) < 0) {
    ret = sc__store_error(c, rc);
    goto out;
  }
  rc = fetch_list(c, k, me, buf, SOTTO_SRV_MAX_DEVLIST, &len);
  if (rc != 0 && rc != SOTTO_SRV_E_NOT_FOUND) {
    ret = conn_error(c, k, rc, "reading this account's device list", NULL);
    goto out;
  }
  got = rc == 0;
  if (got) sv = raw_version(buf, len);
  if (got && sotto_devlist_parse(srv, buf, len) != 0) {
    snprintf(why, sizeof why, "the server's copy of your device list does not verify (version %u)", sv);
  } else if (got && (strcmp(srv->username, me) != 0 ||
                     sodium_memcmp(srv->account_key, akey, SOTTO_PUBKEY_LEN) != 0)) {
    snprintf(why, sizeof why, "the server's device list for you is not signed by your account key");
  } else if (got && had == 1 && srv->version < mine->version) {
    snprintf(why, sizeof why, "the server serves an older device list of yours (version %u; you made %u)",
             srv->version, mine->version);
  } else if (got && floor && srv->version < floor) {
    /* Older than the list that added this device: a rollback, never
     * recorded (whether or not it names this device). */
    snprintf(why, sizeof why,
             "the server serves version %u of your device list, older than version %u that device 1 signed when "
             "it added this device",
             srv->version, floor);
  } else if (got && c->acct->device_id != 1 &&
             (sotto_devlist_find(srv, c->acct->device_id) < 0 ||
              sodium_memcmp(srv->dev[sotto_devlist_find(srv, c->acct->device_id)].device_key, c->acct->id.pub,
                            SOTTO_PUBKEY_LEN) != 0)) {
    /* A linked device the account's list does not name (with its key)
     * receives nothing from contacts that check lists: said once per
     * connection (a server hiding this device, or device 1 removed it). */
    snprintf(why, sizeof why,
             "this device (%u) is not in your account's signed device list (version %u): contacts do not send to "
             "it; device 1 removed it, or the server hides it",
             (unsigned)c->acct->device_id, srv->version);
    list_event(c, "", srv->version, why, SC_ERR_DEVICE_HIDDEN);
    if (had == 1 && srv->version <= mine->version) goto out;
    if ((rc = sc__begin(c)) != 0 || (rc = rec_save(c, me, buf, len)) != 0 || (rc = store_commit(c->st)) != 0) {
      store_rollback(c->st);
      ret = sc__store_error(c, rc);
    }
    goto out;
  } else if (got) {
    /* Ours, as we left it, or newer (a restored copy of this device made
     * it): recorded. Device 1 also drops a device that is gone from the
     * server (it removed itself): the next version without it. */
    if (c->acct->device_id == 1) {
      if ((rc = sotto_net_devices(k->net, me, rows, SOTTO_SRV_MAX_DEVICES, &n_rows)) != 0) {
        ret = conn_error(c, k, rc, "listing this account's devices", NULL);
        goto out;
      }
      for (i = 0; i < srv->n; i++)
        if (!has_row(rows, n_rows, srv->dev[i].device_id)) stale = 1;
    }
    if (!stale && had == 1 && srv->version == mine->version) goto out;
    if ((rc = sc__begin(c)) != 0 || (rc = rec_save(c, me, buf, len)) != 0 || (rc = store_commit(c->st)) != 0) {
      store_rollback(c->st);
      ret = sc__store_error(c, rc);
      goto out;
    }
    if (!stale) goto out;
    had = rec_load(c, me, mine);
    if (had < 0) {
      ret = sc__store_error(c, had);
      goto out;
    }
  } else if (had == 1) {
    snprintf(why, sizeof why, "the server no longer has your device list (you made version %u)", mine->version);
  } else if (!got && floor) {
    snprintf(why, sizeof why,
             "the server has no device list of yours, though device 1 signed version %u when it added this device",
             floor);
  }
  if (why[0] && c->acct->device_id != 1) {
    /* A linked device cannot publish the list again (only device 1 holds
     * the account key): what the server serves is what senders that did not
     * see a newer list go by, so to them this device is hidden. Said as
     * such (device_hidden), not as a rollback that was repaired. */
    size_t wl = strlen(why);
    snprintf(why + wl, sizeof why - wl,
             ": contacts going by it may not send to this device (%u); the server may be hiding it, and only "
             "device 1 can publish your list again",
             (unsigned)c->acct->device_id);
    list_event(c, "", had == 1 ? mine->version : floor, why, SC_ERR_DEVICE_HIDDEN);
    goto out;
  }
  if (why[0]) list_event(c, "", had == 1 ? mine->version : 0, why, SC_ERR_DEVLIST_ROLLBACK);
  if (c->acct->device_id != 1) goto out; /* only the account key signs */
  if (!n_rows && (rc = sotto_net_devices(k->net, me, rows, SOTTO_SRV_MAX_DEVICES, &n_rows)) != 0) {
    ret = conn_error(c, k, rc, "listing this account's devices", NULL);
    goto out;
  }
  if (had == 1 && mine->version >= next) next = mine->version + 1;
  if (sv >= next && sv < UINT32_MAX) next = sv + 1;
  if ((rc = make_own(c, next, had == 1 ? mine : NULL, rows, n_rows, NULL, own, &olen)) != 0) {
    ret = sc__fail(c, rc, "cannot sign this account's device list");
    goto out;
  }
  if ((rc = sotto_net_devlist_put(k->net, own, olen)) != 0) {
    ret = conn_error(c, k, rc, "publishing this account's signed device list", NULL);
    goto out;
  }
  if ((rc = sc__begin(c)) != 0 || (rc = rec_save(c, me, own, olen)) != 0 || (rc = store_commit(c->st)) != 0) {
    store_rollback(c->st);
    ret = sc__store_error(c, rc);
  }
out:
  /* checked on this connection: devices_refresh_own need not fetch it
   * again for a while */
  if (ret == 0) seen_now(c, k, me, akey);
  free(mine);
  free(srv);
  free(buf);
  free(own);
  return ret;
}

int devices_refresh_own(struct sc_client *c, struct conn *k) {
  uint8_t akey[SOTTO_PUBKEY_LEN];
  char me[SC_USER_MAX + 1];
  int rc;
  if (!k->net) return 0;
  snprintf(me, sizeof me, "%s", c->acct->username);
  if ((rc = account_key(c, akey)) < 0) return sc__store_error(c, rc);
  if (rc == 1 || seen_recently(c, k, me, akey)) return 0;
  return devices_publish(c, k);
}

/* Inside a transaction: the sessions with devices of user that the new list
 * no longer names, or names under another key, are closed (their records
 * deleted): nothing more is encrypted to them, and a new device under a
 * reused id starts a fresh session. Device 1's is the contact's own. */
static int drop_gone_sessions(struct sc_client *c, const char *user, const struct sotto_devlist *old,
                              const struct sotto_devlist *now) {
  char rn[64];
  unsigned i;
  int j, rc;
  for (i = 0; i < old->n; i++) {
    if (old->dev[i].device_id == 1) continue;
    j = sotto_devlist_find(now, old->dev[i].device_id);
    if (j >= 0 && sodium_memcmp(now->dev[j].device_key, old->dev[i].device_key, SOTTO_PUBKEY_LEN) == 0) continue;
    session_rec_name(rn, sizeof rn, user, old->dev[i].device_id);
    if ((rc = store_del(c->st, rn)) != 0) return rc;
  }
  return 0;
}

/* devices_check_peer (given NULL: fetched with DEVLIST_GET) and
 * devices_check_peer_list (given: the bytes an ERR(30) carried). */
static int check_peer(struct sc_client *c, struct conn *k, const char *user, const uint8_t key[SOTTO_PUBKEY_LEN],
                      const uint8_t *given, size_t given_len) {
  struct sotto_devlist *old = calloc(1, sizeof *old), *now = calloc(1, sizeof *now);
  uint8_t *buf = malloc(SOTTO_SRV_MAX_DEVLIST);
  char detail[768];
  size_t len = 0;
  int rc, had, ret = 0;
  if (!old || !now || !buf) {
    ret = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  if (!given && seen_recently(c, k, user, key)) goto out;
  if ((had = rec_load(c, user, old)) < 0) {
    ret = sc__store_error(c, had);
    goto out;
  }
  /* A list under another account key than the one we send to is not this
   * key's history: the identity change is decided elsewhere (deliver.c). */
  if (had == 1 && sodium_memcmp(old->account_key, key, SOTTO_PUBKEY_LEN) != 0) had = 0;
  if (given) {
    /* the proto parser bounds it; a length out of bounds stays 0, which
     * sotto_devlist_parse below refuses like any list that does not verify */
    if (given_len && given_len <= SOTTO_SRV_MAX_DEVLIST) {
      memcpy(buf, given, given_len);
      len = given_len;
    }
    rc = 0;
  } else {
#ifdef SOTTO_TEST_HOOKS
    /* test_multidevice_held.sh: the server declines the list request (rate
     * limited) on a receive; the connection stays. */
    if (getenv("SOTTO_TEST_DEVLIST_UNAVAILABLE") && *getenv("SOTTO_TEST_DEVLIST_UNAVAILABLE"))
      rc = SOTTO_SRV_E_RATE;
    else
#endif
      rc = fetch_list(c, k, user, buf, SOTTO_SRV_MAX_DEVLIST, &len);
  }
  if (rc == SOTTO_SRV_E_NOT_FOUND) {
    uint32_t ids[SOTTO_SRV_MAX_DEVICES];
    size_t n = 0;
    /* No list because no account (deleted): said as such, not as a rollback. */
    if (had == 1 && (rc = sotto_net_devices(k->net, user, ids, SOTTO_SRV_MAX_DEVICES, &n)) != 0) {
      ret = conn_error(c, k, rc, "reading a contact's devices", user);
      goto out;
    }
    if (had == 1)
      ret = sc__fail(c, SC_ERR_DEVLIST_ROLLBACK,
                     "the server no longer shows %s's signed device list (you saw version %u): nothing was sent; "
                     "the server may be hiding or replacing their devices",
                     user, old->version);
    else if ((ret = kt_check_no_list(c, k, user)) != 0) /* the log may hold a list the server hides */
      list_event(c, user, 0, "the server hides a device list its public log holds", SC_ERR_KT_LIST_HIDDEN);
    if (ret == 0) seen_now(c, k, user, key);
    goto out; /* an account of before signed device lists */
  }
  if (rc != 0) {
    ret = conn_error(c, k, rc, "reading a contact's device list", user);
    goto out;
  }
  if ((rc = sotto_devlist_parse(now, buf, len)) != 0 || strcmp(now->username, user) != 0) {
    ret = sc__fail(c, SC_ERR_DEVLIST_INVALID,
                   "%s's device list on the server does not verify (%s): nothing was sent; a device their own "
                   "devices did not sign never receives a message (the server may be adding one)",
                   user, rc ? sotto_strerror(rc) : "it names another account");
    list_event(c, user, 0, "a device list that does not verify was refused", SC_ERR_DEVLIST_INVALID);
    goto out;
  }
  /* A valid list under another account key than the one this message goes
   * to: the key we send to was accepted by the user (trust, verify) and the
   * identity decision is deliver.c's; this list is not that key's history.
   * The single-device send path goes to device 1 of the session's key
   * only, so nothing reaches a device of that list. */
  if (sodium_memcmp(now->account_key, key, SOTTO_PUBKEY_LEN) != 0) {
    seen_now(c, k, user, key);
    goto out;
  }
  /* Used only when the log holds exactly this list (key transparency). */
  if ((ret = kt_check_list(c, k, user, now->version, buf, len)) != 0) {
    list_event(c, user, now->version,
               ret == SC_ERR_KT_LIST_HIDDEN ? "a device list older than the one in the server's public log was refused"
                                            : "a device list that is not in the server's public log was refused",
               ret);
    goto out;
  }
  if (had != 1 && c->acct->device_id != 1 && strcmp(user, c->acct->username) == 0) {
    /* Our own list on a linked device that recorded none yet: not older
     * than the one device 1 signed when it added this device. */
    uint32_t floor = 0;
    if ((rc = devices_floor_load(c, &floor)) < 0) {
      ret = sc__store_error(c, rc);
      goto out;
    }
    if (floor && now->version < floor) {
      ret = sc__fail(c, SC_ERR_DEVICE_HIDDEN,
                     "the server serves version %u of your device list, older than version %u that device 1 signed "
                     "when it added this device: nothing was sent",
                     now->version, floor);
      goto out;
    }
  }
  if (had == 1 && now->version < old->version) {
    ret = sc__fail(c, SC_ERR_DEVLIST_ROLLBACK,
                   "the server serves an older device list of %s (version %u, you saw %u): nothing was sent; the "
                   "server may be rolling back a removal",
                   user, now->version, old->version);
    goto out;
  }
  if (had == 1 && now->version == old->version) {
    if (sodium_memcmp(now->sig, old->sig, SOTTO_SIGNATURE_LEN) != 0 && (now->n != old->n ||
        describe(detail, sizeof detail, old, now) != 0)) {
      /* Two different lists under one version can only come from the
       * account key's holder; shown, the newer copy is not taken. */
      ret = sc__fail(c, SC_ERR_DEVLIST_ROLLBACK,
                     "%s's account key signed two different device lists as version %u: nothing was sent", user,
                     now->version);
    }
    if (ret == 0) seen_now(c, k, user, key);
    goto out;
  }
  if ((rc = sc__begin(c)) != 0 || (rc = rec_save(c, user, buf, len)) != 0 ||
      (had == 1 && (rc = drop_gone_sessions(c, user, old, now)) != 0) || (rc = store_commit(c->st)) != 0) {
    store_rollback(c->st);
    ret = sc__store_error(c, rc);
    goto out;
  }
  if (had == 1 && describe(detail, sizeof detail, old, now) > 0) list_event(c, user, now->version, detail, 0);
  else if (had != 1 && now->n > 1 && describe(detail, sizeof detail, NULL, now) > 0)
    list_event(c, user, now->version, detail, 0);
  seen_now(c, k, user, key);
out:
  free(old);
  free(now);
  free(buf);
  return ret;
}

int devices_check_peer(struct sc_client *c, struct conn *k, const char *user, const uint8_t key[SOTTO_PUBKEY_LEN]) {
  return check_peer(c, k, user, key, NULL, 0);
}

int devices_check_peer_list(struct sc_client *c, struct conn *k, const char *user,
                            const uint8_t key[SOTTO_PUBKEY_LEN], const uint8_t *list, size_t len) {
  return check_peer(c, k, user, key, list, len);
}

int devices_add_member(struct sc_client *c, struct conn *k, const struct sotto_devlist_entry *e, uint32_t *version) {
  struct sotto_devlist *mine = calloc(1, sizeof *mine);
  uint8_t *own = malloc(SOTTO_DEVLIST_MAX_LEN), *buf = malloc(SOTTO_SRV_MAX_DEVLIST);
  uint32_t rows[SOTTO_SRV_MAX_DEVICES], next = 1, sv = 0;
  size_t n_rows = 0, olen = 0, len = 0;
  int rc, had, ret = 0;
  *version = 0;
  if (!mine || !own || !buf) {
    ret = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  if ((had = rec_load(c, c->acct->username, mine)) < 0) {
    ret = sc__store_error(c, had);
    goto out;
  }
  if ((rc = sotto_net_devices(k->net, c->acct->username, rows, SOTTO_SRV_MAX_DEVICES, &n_rows)) != 0) {
    ret = conn_error(c, k, rc, "listing this account's devices", NULL);
    goto out;
  }
  rc = fetch_list(c, k, c->acct->username, buf, SOTTO_SRV_MAX_DEVLIST, &len);
  if (rc == 0) sv = raw_version(buf, len);
  else if (rc != SOTTO_SRV_E_NOT_FOUND) {
    ret = conn_error(c, k, rc, "reading this account's device list", NULL);
    goto out;
  }
  if (had == 1 && mine->version >= next) next = mine->version + 1;
  if (sv >= next && sv < UINT32_MAX) next = sv + 1;
  if ((rc = make_own(c, next, had == 1 ? mine : NULL, rows, n_rows, e, own, &olen)) != 0) {
    ret = sc__fail(c, rc == SC_ERR_TOO_LARGE ? SC_ERR_TOO_LARGE : SC_ERR_INTERNAL,
                   "cannot sign the account's next device list with device %u", (unsigned)e->device_id);
    goto out;
  }
  if ((rc = sotto_net_devlist_put(k->net, own, olen)) != 0) {
    ret = conn_error(c, k, rc, "publishing this account's signed device list", NULL);
    goto out;
  }
  if ((rc = sc__begin(c)) != 0 || (rc = rec_save(c, c->acct->username, own, olen)) != 0 ||
      (rc = store_commit(c->st)) != 0) {
    store_rollback(c->st);
    ret = sc__store_error(c, rc);
    goto out;
  }
  *version = next;
out:
  free(mine);
  free(own);
  free(buf);
  return ret;
}
