/* SPDX-License-Identifier: Apache-2.0 */
/* linkdev.c: linking a device (sotto_client.h, docs/multi-device.md
 * "Linking"): the new device's side (sc_link_open, sc_link_wait), device 1's
 * side (sc_devices_peek, sc_devices_add) and the account's devices as this
 * device knows them (sc_devices_info). The messages are provision.c's; the
 * slot is the server's (LINK_*, docs/protocol-server.md).
 *
 * Who can do what: the server relays and can refuse, delay or drop, but it
 * never holds the link secret (in the code the user carries from one
 * screen to the other), so it can neither swap the new device's keys
 * unnoticed (their tag fails on device 1) nor read or forge the
 * provisioning message (its key needs the secret), and device 1 checks the
 * new device's membership signature before it signs the list. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sotto/devlist.h>

#include "account.h"
#include "conn.h"
#include "contact.h"
#include "devices.h"
#include "content.h"
#include "grp.h"
#include "messaging.h"
#include "net.h"
#include "provision.h"

#define LINK_POLL_MS 500
/* Device 1 waits for the new device's reply, which follows the blob within
 * the new device's own poll interval: it asks more often (bounded by the
 * command's timeout), so the second wait adds at most this much to the
 * time to link (bench/run link). */
#define LINK_REPLY_POLL_MS 100
/* How long a new device waits for device 1 to publish the list naming it
 * before its hello (link_hello). */
#define LINK_HELLO_WAIT_MS 10000

/* What sc_link_open leaves for sc_link_wait (heap; the ephemeral private
 * key is wiped when it goes). */
struct link_pending {
  uint8_t slot[PROV_SLOT_LEN];
  uint8_t secret[PROV_SECRET_LEN];
  uint8_t eph_priv[32];
  struct prov_keys keys;
  char server[ACCOUNT_MAX_SERVER];
  char pin[ACCOUNT_PIN_LEN + 1];
  char ca[PATH_MAX];
  int64_t expires_ms; /* monotonic */
};

void linkdev_free(struct sc_client *c) {
  if (!c->lp) return;
  sodium_memzero(c->lp, sizeof *c->lp);
  free(c->lp);
  c->lp = NULL;
}

static void nap(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A fresh unauthenticated connection to server (pin or CA). */
static int open_unauth(struct sc_client *c, struct conn *k, const char *server, const char *pin, const char *ca) {
  int rc;
  memset(k, 0, sizeof *k);
  if (!(k->ctx = sotto_net_ctx_new(pin && pin[0] ? pin : NULL, pin && pin[0] ? NULL : ca)))
    return sc__fail(c, SC_ERR_TLS, "cannot set up TLS (is the CA file readable?)");
  if ((rc = conn_connect_list(c, k, server, 0)) != 0) {
    rc = conn_error(c, k, rc, "connecting", NULL);
    conn_close(k);
    return rc;
  }
  sotto_net_set_timeout(k->net, CONN_REQUEST_TIMEOUT_MS);
  return 0;
}

static int link_code_error(struct sc_client *c) {
  return sc__fail(c, SC_ERR_LINK_CODE,
                  "the link code is unknown, already used, expired or mistyped: run 'sotto link' again on the new "
                  "device and use the code it prints");
}

/* ---- the new device ------------------------------------------------------------------ */

int sc_link_open(char code[SC_LINK_CODE_MAX], char fingerprint[SC_FINGERPRINT_LEN + 1], uint32_t *ttl_s,
                 struct sc_client *c, const char *server, const char *pin, const char *ca, const char *name) {
  struct link_pending *lp;
  uint8_t keys[PROV_KEYS_MAX];
  char capath[PATH_MAX] = "";
  size_t kl = 0;
  struct conn k;
  int rc;
  code[0] = 0;
  fingerprint[0] = 0;
  *ttl_s = 0;
  if ((rc = sc__need_open(c))) return rc;
  if (c->acct->username[0])
    return sc__fail(c, SC_ERR_ALREADY_REGISTERED,
                    "this home is already registered as '%s' (device %u); link a new device from a new --home",
                    c->acct->username, (unsigned)c->acct->device_id);
  if (!server || strlen(server) >= ACCOUNT_MAX_SERVER || strlen(server) > PROV_MAX_SERVER ||
      !conn_list_count(server))
    return sc__fail(c, SC_ERR_ARG, "--server must be HOST:PORT, e.g. 127.0.0.1:7443");
  if ((pin && ca) || (!pin && !ca)) return sc__fail(c, SC_ERR_ARG, "give a CA file or a pin, not both");
  if (pin && strlen(pin) != ACCOUNT_PIN_LEN)
    return sc__fail(c, SC_ERR_ARG, "--pin must be the 64 hex digits 'sotto-server fingerprint' prints");
  if (ca && !realpath(ca, capath)) return sc__fail(c, SC_ERR_CA, "cannot read the CA file %s; check the path", ca);
  if (!name) name = "";
  if (!prov_name_ok(name))
    return sc__fail(c, SC_ERR_ARG, "a device name is at most %d printable ASCII characters", PROV_NAME_MAX);
  linkdev_free(c);
  if ((lp = c->lp = calloc(1, sizeof *lp)) == NULL) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  snprintf(lp->server, sizeof lp->server, "%s", server);
  snprintf(lp->pin, sizeof lp->pin, "%s", pin ? pin : "");
  snprintf(lp->ca, sizeof lp->ca, "%s", capath);
  memcpy(lp->keys.identity, c->acct->id.pub, 32);
  snprintf(lp->keys.name, sizeof lp->keys.name, "%s", name);
  crypto_box_keypair(lp->keys.eph, lp->eph_priv);
  randombytes_buf(lp->secret, sizeof lp->secret);
  if (prov_keys_encode(keys, sizeof keys, &kl, &lp->keys, lp->secret) != 0) {
    linkdev_free(c);
    return sc__fail(c, SC_ERR_INTERNAL, "cannot encode this device's keys");
  }
  if ((rc = open_unauth(c, &k, server, lp->pin, lp->ca)) != 0) {
    linkdev_free(c);
    return rc;
  }
  rc = sotto_net_link_open(k.net, keys, kl, lp->slot, ttl_s);
  if (rc == SOTTO_SRV_E_RATE)
    rc = sc__fail(c, SC_ERR_RATE_LIMITED, "the server has too many open link slots from this address; wait for them "
                                          "to expire (10 minutes by default) and try again");
  else if (rc)
    rc = conn_error(c, &k, rc, "opening a link slot", NULL);
  conn_close(&k);
  if (rc) {
    linkdev_free(c);
    return rc;
  }
  lp->expires_ms = sc_monotonic_ms() + (int64_t)*ttl_s * 1000;
  prov_code_format(code, lp->slot, lp->secret);
  prov_fingerprint(fingerprint, c->acct->id.pub);
  return 0;
}

/* Stores what device 1 sent, inside one transaction: the account, the
 * account key, contacts (with their verified state; a contact we already
 * know keeps our record) and groups. */
static int link_store(struct sc_client *c, const struct prov_msg *m, const char *pin, const char *ca,
                      const char *name) {
  size_t i, j;
  int rc;
  if ((rc = sc__begin(c)) != 0) return rc;
  snprintf(c->acct->username, sizeof c->acct->username, "%s", m->username);
  snprintf(c->acct->server, sizeof c->acct->server, "%s", m->server);
  snprintf(c->acct->pin, sizeof c->acct->pin, "%s", pin);
  snprintf(c->acct->ca, sizeof c->acct->ca, "%s", ca);
  c->acct->device_id = m->device_id;
  memcpy(c->acct->secret, m->secret, sizeof c->acct->secret);
  if ((rc = account_save(c->st, c->acct)) != 0 || (rc = conn_pinkey_del(c)) != 0 ||
      (rc = devices_linked_save(c, m->account_key, name)) != 0 ||
      (rc = devices_floor_save(c, m->list_version)) != 0) /* 0 (a device 1 of before): none, not a stale one */
    goto fail;
  for (i = 0; i < m->n_contacts; i++) {
    struct contact ct;
    const struct prov_contact *pc = &m->contacts[i];
    if (strcmp(pc->name, m->username) == 0) continue;
    if ((rc = contact_load(c->st, pc->name, &ct)) < 0) goto fail;
    if (rc == 1) continue;
    ct.has_key = 1;
    memcpy(ct.key, pc->key, SOTTO_PUBKEY_LEN);
    if (pc->verified) {
      ct.verified = 1;
      memcpy(ct.verified_key, pc->key, SOTTO_PUBKEY_LEN);
    }
    if ((rc = contact_save(c->st, &ct)) != 0) goto fail;
  }
  for (i = 0; i < m->n_groups; i++) {
    struct grp *g = calloc(1, sizeof *g);
    const struct prov_group *pg = &m->groups[i];
    if (!g) {
      rc = STORE_E_IO;
      goto fail;
    }
    if ((rc = grp_load(c->st, pg->gid, g)) < 0 || rc == 1) {
      free(g);
      if (rc < 0) goto fail;
      continue;
    }
    memset(g, 0, sizeof *g);
    memcpy(g->gid, pg->gid, GROUP_ID_LEN);
    if ((rc = grp_unique_name(c->st, pg->name, pg->gid, g->name)) != 0) {
      free(g);
      goto fail;
    }
    g->epoch = pg->epoch;
    for (j = 0; j < pg->n; j++) grp_list_add(g->members, &g->n, pg->members[j]);
    rc = grp_save(c->st, g);
    free(g);
    if (rc != 0) goto fail;
  }
  if ((rc = store_commit(c->st)) != 0) goto fail;
  return 0;
fail:
  store_rollback(c->st);
  return rc;
}

/* After the reply: logs in with the new credentials, publishes this
 * device's identity key (DEVICE_IDENTITY), then pre-keys signed with it. */
static int link_publish_keys(struct sc_client *c) {
  uint8_t idblob[CONN_IDENTITY_BLOB_LEN];
  uint32_t ec_left = 0, kem_left = 0;
  struct conn k;
  int rc;
  if ((rc = open_unauth(c, &k, c->acct->server, c->acct->pin, c->acct->ca)) != 0) return rc;
  if ((rc = conn_pinkey_learn(c, &k)) != 0) {
    conn_close(&k);
    return rc;
  }
  conn_identity_blob(c, idblob);
  if ((rc = sotto_net_auth(k.net, c->acct->username, c->acct->device_id, c->acct->secret, &ec_left, &kem_left)) ||
      (rc = sotto_net_device_identity(k.net, idblob, sizeof idblob))) {
    rc = conn_error(c, &k, rc, "publishing this device's identity key", NULL);
    conn_close(&k);
    return rc;
  }
  rc = conn_upload_keys(c, &k, 1, CONN_EC_STOCK, CONN_KEM_STOCK);
  conn_close(&k);
  return rc;
}

/* Our other devices learn of this one at once: a DEVICE_HELLO (content kind
 * 18) to each of them, whose arrival from a device not in the list they
 * recorded makes them fetch the list again (docs/multi-device.md, "A new
 * device says hello"), so a connection that checked the list a moment ago
 * sends this device its group keys before its next group message. Best
 * effort: a failure is an event; they find the device at their next list
 * check anyway. */
static void link_hello(struct sc_client *c) {
  struct content *ct = calloc(1, sizeof *ct);
  struct sotto_devlist *l = calloc(1, sizeof *l);
  uint8_t *buf = malloc(SOTTO_SRV_MAX_DEVLIST);
  uint32_t ec_left = 0, kem_left = 0, floor = 0;
  int64_t deadline = sc_monotonic_ms() + LINK_HELLO_WAIT_MS;
  int opened = 0, saved_err = c->err, ready = 0, skip = 0;
  char saved[sizeof c->errdetail];
  size_t len = 0;
  struct conn k;
  memset(&k, 0, sizeof k);
  memcpy(saved, c->errdetail, sizeof saved);
#ifdef SOTTO_TEST_HOOKS
  /* test_link_floor.sh: a device whose hello did not go (the list naming it
   * was not served in time), so its first list check is its next connect. */
  if (getenv("SOTTO_TEST_NO_HELLO") && *getenv("SOTTO_TEST_NO_HELLO")) skip = 1;
#endif
  /* Device 1 publishes the list that names this device after our reply:
   * the hello waits (a little) until the server serves it, so that it goes
   * to every device of that list. */
  if (!skip && ct && l && buf && devices_floor_load(c, &floor) >= 0 && floor &&
      open_unauth(c, &k, c->acct->server, c->acct->pin, c->acct->ca) == 0 &&
      sotto_net_auth(k.net, c->acct->username, c->acct->device_id, c->acct->secret, &ec_left, &kem_left) == 0) {
    for (;;) {
      if (sotto_net_devlist_get(k.net, c->acct->username, buf, SOTTO_SRV_MAX_DEVLIST, &len) == 0 &&
          sotto_devlist_parse(l, buf, len) == 0 && l->version >= floor) {
        ready = 1;
        break;
      }
      if (sc_monotonic_ms() >= deadline) break;
      nap(LINK_POLL_MS / 5);
    }
  }
  conn_close(&k);
  if (ready && sc__acquire(c, &opened) == 0) {
    ct->kind = CONTENT_DEVICE_HELLO;
    ct->ts = sc_now_ms();
    (void)deliver_own(c, &c->k, ct, "this device's hello");
    sc__release(c, opened);
  }
  free(ct);
  free(l);
  free(buf);
  c->err = saved_err;
  memcpy(c->errdetail, saved, sizeof saved);
}

int sc_link_wait(struct sc_linked *out, struct sc_client *c, int timeout_ms) {
  struct link_pending *lp = c->lp;
  struct prov_msg *m = NULL;
  uint8_t *blob = NULL, sig[SOTTO_SIGNATURE_LEN], reply[PROV_REPLY_LEN], state = 0;
  int64_t deadline;
  size_t bl = 0;
  struct conn k;
  int rc = 0;
  memset(out, 0, sizeof *out);
  memset(&k, 0, sizeof k);
  if ((rc = sc__need_open(c))) return rc;
  if (!lp) return sc__fail(c, SC_ERR_ARG, "no link slot is open (sc_link_open first)");
  deadline = sc_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 0);
  if (timeout_ms <= 0 || deadline > lp->expires_ms + 2000) deadline = lp->expires_ms + 2000;
  if ((blob = malloc(PROV_MAX_BLOB)) == NULL || (m = malloc(sizeof *m)) == NULL) {
    rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  /* Poll the slot. A connection that is not authenticated is closed by
   * the server after its auth-timeout: then a new one. */
  for (;;) {
    if (!k.net && (rc = open_unauth(c, &k, lp->server, lp->pin, lp->ca)) != 0) goto out;
    rc = sotto_net_link_get(k.net, lp->slot, &state, blob, PROV_MAX_BLOB, &bl);
    if (rc == SOTTO_SRV_E_LINK_CODE) {
      rc = sc__fail(c, SC_ERR_LINK_CODE, "the link slot expired or was used before device 1 answered: run 'sotto "
                                         "link' again");
      goto out;
    }
    if (rc == SOTTO_NET_E_IO || rc == SOTTO_NET_E_TIMEOUT || rc == SOTTO_SRV_E_TIMEOUT) {
      conn_close(&k);
    } else if (rc) {
      rc = conn_error(c, &k, rc, "waiting for device 1", NULL);
      goto out;
    } else if (state == SOTTO_SRV_LINK_PROVISIONED) {
      break;
    } else if (state != SOTTO_SRV_LINK_WAITING) {
      rc = sc__fail(c, SC_ERR_LINK_CODE, "this link slot was already answered: run 'sotto link' again");
      goto out;
    }
    if (sc_monotonic_ms() >= deadline) {
      rc = sc__fail(c, SC_ERR_TIMEOUT,
                    "device 1 did not answer in time ('sotto devices add CODE' there); run 'sotto link' again");
      goto out;
    }
    nap(LINK_POLL_MS);
  }
  rc = prov_open(m, blob, bl, &lp->keys, lp->eph_priv, lp->slot, lp->secret);
  if (rc) {
    /* Nothing is stored and nothing answered: the slot stays as it is. */
    rc = sc__fail(c, SC_ERR_LINK_FAILED,
                  rc == -2 ? "the provisioning message in the slot was not sealed with this link code for this "
                             "device (the server or someone else put it there): nothing was linked"
                           : "the provisioning message in the slot is malformed: nothing was linked");
    goto out;
  }
  /* The server device 1 uses must be the one we linked through. */
  if (lp->pin[0] && m->pin[0] && strcmp(lp->pin, m->pin) != 0) {
    rc = sc__fail(c, SC_ERR_PIN_MISMATCH,
                  "device 1 uses a server with another certificate than the one this device linked through: "
                  "nothing was linked");
    goto out;
  }
  if ((rc = sotto_devlist_member_sign(sig, c->acct->id.priv, m->username, m->account_key, m->device_id)) != 0) {
    rc = sc__fail(c, SC_ERR_INTERNAL, "cannot sign this device's membership");
    goto out;
  }
  /* The credentials exist on the server: kept before anything else. */
  if ((rc = link_store(c, m, lp->pin[0] ? lp->pin : m->pin, lp->ca, lp->keys.name)) != 0) {
    rc = sc__store_error(c, rc);
    goto out;
  }
  prov_reply_encode(reply, sig);
  if (!k.net && (rc = open_unauth(c, &k, lp->server, lp->pin, lp->ca)) != 0) goto out;
  if ((rc = sotto_net_link_reply(k.net, lp->slot, reply, sizeof reply)) != 0) {
    rc = rc == SOTTO_SRV_E_LINK_CODE
             ? sc__fail(c, SC_ERR_LINK_CODE, "the link slot expired before this device answered: remove device %u "
                                             "on device 1 and link again",
                        (unsigned)m->device_id)
             : conn_error(c, &k, rc, "answering device 1", NULL);
    goto out;
  }
  conn_close(&k);
  if ((rc = link_publish_keys(c)) != 0) goto out;
  link_hello(c);
  snprintf(out->username, sizeof out->username, "%s", m->username);
  out->device_id = m->device_id;
  prov_fingerprint(out->account_fingerprint, m->account_key);
  out->contacts = (unsigned)m->n_contacts;
  out->groups = (unsigned)m->n_groups;
  linkdev_free(c);
out:
  conn_close(&k);
  if (m) sodium_memzero(m, sizeof *m);
  free(m);
  if (blob) sodium_memzero(blob, PROV_MAX_BLOB);
  free(blob);
  sodium_memzero(sig, sizeof sig);
  return rc;
}

/* ---- device 1 ------------------------------------------------------------------------ */

/* The keys in the slot named by code, checked against its secret. */
static int peek(struct sc_client *c, struct conn *k, const char *code, uint8_t slot[PROV_SLOT_LEN],
                uint8_t secret[PROV_SECRET_LEN], struct prov_keys *keys) {
  uint8_t raw[SOTTO_SRV_LINK_MAX_KEYS];
  size_t rl = 0;
  int rc;
  if (prov_code_parse(slot, secret, code) != 0)
    return sc__fail(c, SC_ERR_LINK_CODE, "'%s' is not a link code (42 letters and digits, as 'sotto link' prints "
                                         "it; '-' and spaces do not matter)",
                    code);
  rc = sotto_net_link_put(k->net, slot, NULL, 0, raw, sizeof raw, &rl);
  if (rc == SOTTO_SRV_E_LINK_CODE) return link_code_error(c);
  if (rc == SOTTO_SRV_E_FORBIDDEN)
    return sc__fail(c, SC_ERR_FORBIDDEN, "only device 1 (it holds the account key) can add a device; this is "
                                         "device %u",
                    (unsigned)c->acct->device_id);
  if (rc) return conn_error(c, k, rc, "reading the link slot", NULL);
  rc = prov_keys_decode(keys, raw, rl, secret);
  if (rc == -2)
    return sc__fail(c, SC_ERR_LINK_CODE, "the link code does not match the keys in its slot: it is mistyped (or "
                                         "the server changed the keys); nothing was added");
  if (rc) return sc__fail(c, SC_ERR_PROTOCOL, "the keys in the link slot are malformed; nothing was added");
  return 0;
}

int sc_devices_peek(struct sc_link_peer *out, struct sc_client *c, const char *code) {
  uint8_t slot[PROV_SLOT_LEN], secret[PROV_SECRET_LEN];
  struct prov_keys keys;
  int rc, opened;
  memset(out, 0, sizeof *out);
  if ((rc = sc__acquire(c, &opened))) return rc;
  if (c->acct->device_id != 1) {
    rc = sc__fail(c, SC_ERR_FORBIDDEN,
                  "only device 1 (it holds the account key) can add a device; this is device %u",
                  (unsigned)c->acct->device_id);
  } else if ((rc = peek(c, &c->k, code, slot, secret, &keys)) == 0) {
    snprintf(out->name, sizeof out->name, "%s", keys.name);
    prov_fingerprint(out->fingerprint, keys.identity);
    memcpy(out->identity, keys.identity, 32);
  }
  sodium_memzero(secret, sizeof secret);
  sc__release(c, opened);
  return rc;
}

struct prov_collect {
  struct prov_msg *m;
  int over;
};

static int collect_contact(void *ud, const struct contact *ct) {
  struct prov_collect *pc = ud;
  struct prov_contact *o;
  if (!ct->has_key || !sc_username_ok(ct->name)) return 0;
  if (pc->m->n_contacts >= PROV_MAX_CONTACTS) {
    pc->over = 1;
    return 1;
  }
  o = &pc->m->contacts[pc->m->n_contacts++];
  snprintf(o->name, sizeof o->name, "%s", ct->name);
  memcpy(o->key, ct->key, SOTTO_PUBKEY_LEN);
  o->verified = ct->verified && sodium_memcmp(ct->verified_key, ct->key, SOTTO_PUBKEY_LEN) == 0;
  return 0;
}

static int collect_group(void *ud, const struct grp *g) {
  struct prov_collect *pc = ud;
  struct prov_group *o;
  size_t i;
  if (pc->m->n_groups >= PROV_MAX_GROUPS) {
    pc->over = 1;
    return 1;
  }
  o = &pc->m->groups[pc->m->n_groups++];
  memcpy(o->gid, g->gid, GROUP_ID_LEN);
  snprintf(o->name, sizeof o->name, "%s", g->name);
  o->epoch = g->epoch;
  for (i = 0; i < g->n && i < GROUP_MAX_MEMBERS; i++) snprintf(o->members[i], sizeof o->members[i], "%s", g->members[i]);
  o->n = i;
  return 0;
}

/* A devices-add in progress on device 1 (sc_devices_add_begin/_step):
 * what it needs once the new device answers. The link secret is wiped by
 * sc_devices_add_free. */
struct sc_add_job {
  uint8_t slot[PROV_SLOT_LEN], secret[PROV_SECRET_LEN];
  struct prov_keys keys;
  uint32_t id;        /* the new device row (0: none yet) */
  int added;          /* the row exists and no list names it yet: removed on failure */
  int64_t deadline;   /* sc_monotonic_ms() */
  int done;           /* finished (success or failure): step does nothing more */
};

/* Removes the job's device row again (best effort: a failure here leaves a
 * row no signed list names, which receives nothing), keeping the error
 * that led here. */
static void add_undo(struct sc_client *c, struct sc_add_job *j) {
  int keep = c->err;
  char why[sizeof c->errdetail];
  if (!j->added) return;
  snprintf(why, sizeof why, "%s", c->errdetail);
  if (c->k.net && sotto_net_device_remove(c->k.net, j->id) == 0) (void)conn_forget_device(c, j->id);
  c->err = keep;
  snprintf(c->errdetail, sizeof c->errdetail, "%s", why);
  j->added = 0;
}

/* sc_devices_add_begin on a connection the caller holds (c->k). */
static int add_begin(struct sc_add_job **job, struct sc_client *c, const char *code, const struct sc_link_peer *peer,
                     int timeout_ms) {
  uint8_t raw[SOTTO_SRV_LINK_MAX_KEYS];
  uint8_t *blob = NULL;
  struct prov_msg *m = NULL;
  struct prov_collect pc;
  struct sc_add_job *j;
  size_t bl = 0, rl = 0;
  int rc;
  *job = NULL;
  if (timeout_ms <= 0) timeout_ms = 120000;
  if ((j = calloc(1, sizeof *j)) == NULL) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  if (c->acct->device_id != 1) {
    rc = sc__fail(c, SC_ERR_FORBIDDEN, "only device 1 (it holds the account key) can add a device; this is device %u",
                  (unsigned)c->acct->device_id);
    goto out;
  }
  if ((rc = peek(c, &c->k, code, j->slot, j->secret, &j->keys)) != 0) goto out;
  if (peer && sodium_memcmp(peer->identity, j->keys.identity, 32) != 0) {
    rc = sc__fail(c, SC_ERR_LINK_FAILED, "the new device's key changed since it was shown: nothing was added");
    goto out;
  }
  if ((m = calloc(1, sizeof *m)) == NULL) {
    rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  /* What the new device gets: the account, contacts, groups. */
  pc.m = m;
  pc.over = 0;
  if ((rc = contact_each(c->st, collect_contact, &pc)) < 0 || (rc = grp_each(c->st, collect_group, &pc)) < 0) {
    rc = sc__store_error(c, rc);
    goto out;
  }
  if (pc.over) {
    rc = sc__fail(c, SC_ERR_TOO_LARGE, "more than %d contacts or %d groups do not fit a provisioning message",
                  PROV_MAX_CONTACTS, PROV_MAX_GROUPS);
    goto out;
  }
  /* A new device row: from here on, any failure removes it again. */
  rc = sotto_net_add_device(c->k.net, &j->id, m->secret);
  if (rc == SOTTO_SRV_E_TOO_MANY_DEVICES) {
    rc = sc__fail(c, SC_ERR_TOO_LARGE, "this account has as many devices as the server allows (max-devices); remove "
                                       "one first ('sotto devices remove ID')");
    goto out;
  }
  if (rc) {
    rc = conn_error(c, &c->k, rc, "adding a device", NULL);
    goto out;
  }
  j->added = 1;
  snprintf(m->username, sizeof m->username, "%s", c->acct->username);
  memcpy(m->account_key, c->acct->id.pub, 32);
  m->device_id = j->id;
  snprintf(m->server, sizeof m->server, "%s", c->acct->server);
  snprintf(m->pin, sizeof m->pin, "%s", c->acct->pin);
  /* The list that will add the device is above the one recorded here
   * (devices_add_member: above the server's too): the new device's floor. */
  {
    struct sotto_devlist *own = calloc(1, sizeof *own);
    int had;
    if (!own) {
      rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
      goto out;
    }
    had = devices_own(c, own);
    m->list_version = had == 1 && own->version < UINT32_MAX ? own->version + 1 : 1;
    free(own);
    if (had < 0) {
      rc = sc__store_error(c, had);
      goto out;
    }
  }
  rc = prov_seal(&blob, &bl, m, &j->keys, j->slot, j->secret);
  if (rc) {
    rc = sc__fail(c, rc == -2 ? SC_ERR_TOO_LARGE : SC_ERR_INTERNAL,
                  rc == -2 ? "the contacts and groups do not fit a provisioning message (64 KiB)"
                           : "cannot seal the provisioning message");
    goto out;
  }
  rc = sotto_net_link_put(c->k.net, j->slot, blob, bl, raw, sizeof raw, &rl);
  if (rc == SOTTO_SRV_E_LINK_CODE) {
    rc = link_code_error(c);
    goto out;
  }
  if (rc) {
    rc = conn_error(c, &c->k, rc, "putting the provisioning message", NULL);
    goto out;
  }
  j->deadline = sc_monotonic_ms() + timeout_ms;
out:
  if (rc) add_undo(c, j);
  if (m) sodium_memzero(m, sizeof *m);
  free(m);
  if (blob) sodium_memzero(blob, bl);
  free(blob);
  if (rc) {
    sodium_memzero(j, sizeof *j);
    free(j);
    return rc;
  }
  *job = j;
  return 0;
}

int sc_devices_add_begin(struct sc_add_job **job, struct sc_client *c, const char *code,
                         const struct sc_link_peer *peer, int timeout_ms) {
  int rc, opened;
  *job = NULL;
  if ((rc = sc__acquire(c, &opened))) return rc;
  rc = add_begin(job, c, code, peer, timeout_ms);
  sc__release(c, opened);
  return rc;
}

/* sc_devices_add_step on a connection the caller holds (c->k). */
static int add_step(struct sc_add_job *j, struct sc_device_added *out, struct sc_client *c) {
  uint8_t reply[SOTTO_SRV_LINK_MAX_REPLY], state = 0;
  struct sotto_devlist_entry e;
  size_t rl = 0;
  int rc;
  memset(&e, 0, sizeof e);
  rc = sotto_net_link_get(c->k.net, j->slot, &state, reply, sizeof reply, &rl);
  if (rc == SOTTO_SRV_E_LINK_CODE) {
    rc = sc__fail(c, SC_ERR_LINK_CODE, "the link slot expired before the new device answered");
    goto out;
  }
  if (rc) {
    rc = conn_error(c, &c->k, rc, "waiting for the new device", NULL);
    goto out;
  }
  if (state != SOTTO_SRV_LINK_REPLIED) {
    if (sc_monotonic_ms() < j->deadline) return 1; /* not yet */
    rc = sc__fail(c, SC_ERR_TIMEOUT, "the new device did not answer in time (is 'sotto link' still waiting?)");
    goto out;
  }
  e.device_id = j->id;
  if (prov_reply_decode(e.member_sig, reply, rl) != 0 ||
      sotto_devlist_member_verify(c->acct->username, c->acct->id.pub, j->id, j->keys.identity, e.member_sig) != 0) {
    rc = sc__fail(c, SC_ERR_LINK_FAILED,
                  "the new device's answer is not its signature for this account: nothing was added");
    goto out;
  }
  memcpy(e.device_key, j->keys.identity, 32);
  if (j->keys.name[0])
    snprintf(e.name, sizeof e.name, "%s", j->keys.name);
  else
    snprintf(e.name, sizeof e.name, "device %u", (unsigned)j->id);
  e.added_at_ms = (uint64_t)sc_now_ms();
  if ((rc = devices_add_member(c, &c->k, &e, &out->version)) != 0) goto out;
  j->added = 0;
  (void)conn_know_device(c, j->id); /* best effort: else the next connection reports it once */
  out->device_id = j->id;
  snprintf(out->name, sizeof out->name, "%s", e.name);
out:
  j->done = 1;
  /* A connection that failed may have a successor before the row goes:
   * removed on this one if it still works (else it receives nothing). */
  if (rc) add_undo(c, j);
  return rc;
}

int sc_devices_add_step(struct sc_add_job *j, struct sc_device_added *out, struct sc_client *c) {
  int rc, opened;
  memset(out, 0, sizeof *out);
  if (j->done) return sc__fail(c, SC_ERR_ARG, "this device addition is over");
  if ((rc = sc__acquire(c, &opened))) {
    /* No server now: the slot may still answer later, until the deadline
     * (the row is removed then, if a connection allows it). */
    if (sc_monotonic_ms() < j->deadline) return 1;
    j->done = 1;
    return rc;
  }
  rc = add_step(j, out, c);
  sc__release(c, opened);
  return rc;
}

uint32_t sc_devices_add_device_id(const struct sc_add_job *j) { return j ? j->id : 0; }

static void add_free(struct sc_add_job *j, struct sc_client *c) {
  if (!j) return;
  if (c) add_undo(c, j); /* a row no list names yet goes again */
  sodium_memzero(j, sizeof *j);
  free(j);
}

void sc_devices_add_free(struct sc_add_job *j, struct sc_client *c) {
  int opened;
  if (j && j->added && c && sc__acquire(c, &opened) == 0) {
    add_undo(c, j);
    sc__release(c, opened);
  }
  add_free(j, NULL);
}

int sc_devices_add(struct sc_device_added *out, struct sc_client *c, const char *code,
                   const struct sc_link_peer *peer, int timeout_ms) {
  struct sc_add_job *j = NULL;
  int rc, opened;
  memset(out, 0, sizeof *out);
  /* One connection for the whole wait. */
  if ((rc = sc__acquire(c, &opened))) return rc;
  if ((rc = add_begin(&j, c, code, peer, timeout_ms)) == 0) {
    while ((rc = add_step(j, out, c)) == 1) nap(LINK_REPLY_POLL_MS);
    add_free(j, c);
  }
  sc__release(c, opened);
  return rc;
}

/* ---- the account's devices ------------------------------------------------------------ */

int sc_devices_info(struct sc_device_info *out, size_t *n, size_t max, uint32_t *version, struct sc_client *c) {
  struct sotto_devlist *l = calloc(1, sizeof *l);
  uint32_t rows[SOTTO_SRV_MAX_DEVICES], seen[SOTTO_SRV_MAX_DEVICES];
  size_t nr = 0, i, k = 0;
  int rc, opened, had = 0, has_seen = 0;
  *n = 0;
  *version = 0;
  if (!l) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  if ((rc = sc__acquire(c, &opened))) {
    free(l);
    return rc;
  }
  rc = sotto_net_devices_seen(c->k.net, c->acct->username, rows, seen, SOTTO_SRV_MAX_DEVICES, &nr, &has_seen);
  if (rc) rc = conn_error(c, &c->k, rc, "listing the devices", NULL);
  sc__release(c, opened);
  /* The list as this device last verified it (the connection above
   * fetched and checked the newest one). */
  if (rc == 0 && (had = devices_own(c, l)) < 0) rc = sc__store_error(c, had);
  if (rc) {
    free(l);
    return rc;
  }
  if (had == 1) *version = l->version;
  /* Every device row, and every listed device, in id order. */
  for (;;) {
    uint32_t next = UINT32_MAX;
    int j;
    for (i = 0; i < nr; i++)
      if (rows[i] < next && (k == 0 || rows[i] > out[k - 1].device_id)) next = rows[i];
    for (i = 0; had == 1 && i < l->n; i++)
      if (l->dev[i].device_id < next && (k == 0 || l->dev[i].device_id > out[k - 1].device_id))
        next = l->dev[i].device_id;
    if (next == UINT32_MAX || k >= max) break;
    memset(&out[k], 0, sizeof out[k]);
    out[k].device_id = next;
    out[k].this_device = next == c->acct->device_id;
    for (i = 0; i < nr; i++)
      if (rows[i] == next) {
        out[k].has_row = 1;
        if (has_seen) out[k].last_seen_day = seen[i];
      }
    if (had == 1 && (j = sotto_devlist_find(l, next)) >= 0) {
      out[k].listed = 1;
      snprintf(out[k].name, sizeof out[k].name, "%s", l->dev[j].name);
      out[k].added_ms = l->dev[j].added_at_ms;
      prov_fingerprint(out[k].fingerprint, l->dev[j].device_key);
    }
    k++;
  }
  *n = k;
  free(l);
  return 0;
}
