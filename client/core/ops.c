/* SPDX-License-Identifier: Apache-2.0 */
/* ops.c: what front ends ask of the core besides the link: sending texts,
 * groups (create, send, add, remove), contacts, safety numbers, verify and
 * trust, the history (sotto_client.h). */
#include <sodium.h>
#include <sotto/fingerprint.h>
#include <sotto/group.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "account.h"
#include "record.h"
#include "contact.h"
#include "convo.h"
#include "core.h"
#include "devices.h"
#include "grp.h"
#include "messaging.h"
#include "outbox.h"

/* The public header's limits are the core's own. */
_Static_assert(SC_SAFETY_NUMBER_LEN == SOTTO_SAFETY_NUMBER_LEN, "safety number length");
_Static_assert(SC_SCANNABLE_LEN == SOTTO_FINGERPRINT_SCANNABLE_LEN, "scannable length");
_Static_assert(SC_GROUP_MAX_MEMBERS == GROUP_MAX_MEMBERS, "group size");
_Static_assert(SC_GROUP_NAME_MAX == GROUP_NAME_MAX, "group name length");
_Static_assert(SC_USER_MAX == SOTTO_SRV_USER_MAX, "username length");
_Static_assert(SC_MAX_PASSPHRASE == STORE_MAX_PASSPHRASE, "passphrase length");
_Static_assert(SC_MAX_DEVICES >= SOTTO_SRV_MAX_DEVICES, "an SC_MAX_DEVICES array holds every device");
_Static_assert(sizeof(((struct sc_group *)0)->id) == GROUP_ID_LEN, "group id");

int sc_group_name_ok(const char *s) { return s && grp_name_ok(s); }

/* A failed delivery inside a call that goes on with other recipients: an
 * event carrying the recorded failure. */
static void not_delivered(struct sc_client *c, const char *user) {
  struct sc_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = SC_EV_NOT_DELIVERED;
  ev.reason = SC_R_SEND_FAILED;
  ev.error = c->err;
  ev.peer = user;
  ev.detail = c->errdetail;
  sc__emit(c, &ev);
}

/* A text must be valid UTF-8 without NUL: what the recipient's front ends
 * show and what their --json carries stays exact (docs/client.md, "Safe
 * output"). Returns 0, or the failure with the offset of the first bad byte. */
static int text_ok(struct sc_client *c, const char *t, size_t n) {
  const unsigned char *s = (const unsigned char *)t;
  size_t i = 0, len, k;
#ifdef SOTTO_TEST_HOOKS
  /* test_output.sh: a modified client that sends any bytes. */
  if (getenv("SOTTO_TEST_RAW_TEXT") && *getenv("SOTTO_TEST_RAW_TEXT")) return 0;
#endif
  while (i < n) {
    uint32_t cp, min;
    if (s[i] == 0) return sc__fail(c, SC_ERR_ARG, "the message holds a NUL byte (at byte %zu); nothing was sent", i);
    if (s[i] < 0x80) {
      i++;
      continue;
    }
    if (s[i] >= 0xC2 && s[i] <= 0xDF) len = 2, cp = s[i] & 0x1F, min = 0x80;
    else if (s[i] >= 0xE0 && s[i] <= 0xEF) len = 3, cp = s[i] & 0x0F, min = 0x800;
    else if (s[i] >= 0xF0 && s[i] <= 0xF4) len = 4, cp = s[i] & 0x07, min = 0x10000;
    else len = 0, cp = 0, min = 1;
    for (k = 1; len && k < len; k++) {
      if (i + k >= n || (s[i + k] & 0xC0) != 0x80) {
        len = 0;
        break;
      }
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (len == 0 || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return sc__fail(c, SC_ERR_ARG,
                      "the message is not valid UTF-8 (at byte %zu); nothing was sent: convert it to UTF-8 first "
                      "(e.g. iconv -t UTF-8)",
                      i);
    i += len;
  }
  return 0;
}

/* ---- 1:1 ------------------------------------------------------------------------ */

/* A failure that means the server could not be reached: the text waits
 * in the outbox instead. */
static int unreachable(int rc) {
  return rc == SC_ERR_UNREACHABLE || rc == SC_ERR_TIMEOUT || rc == SC_ERR_CONNECTION_LOST ||
         rc == SC_ERR_SERVER_BUSY || rc == SC_ERR_SHUTDOWN;
}

int sc_send_text(struct sc_sent *out, struct sc_client *c, const char *user, const char *text, size_t len,
                 unsigned flags) {
  struct content ct;
  struct msg *m = NULL;
  char *t = NULL;
  int rc, opened = 0, queued = 0;

  if (out) memset(out, 0, sizeof *out);
  if ((rc = sc__need_open(c))) return rc;
  if (!sc_username_ok(user)) return sc__fail(c, SC_ERR_ARG, "'%s' is not a valid username", user ? user : "");
  if (len > SC_MAX_LONG_TEXT)
    return sc__fail(c, SC_ERR_TOO_LARGE, "the message is longer than %d bytes; split it", SC_MAX_LONG_TEXT);
  if (len == 0 || !text) return sc__fail(c, SC_ERR_EMPTY, "the message is empty; nothing was sent");
  if ((rc = text_ok(c, text, len))) return rc;
  if (c->acct->username[0] && strcmp(user, c->acct->username) == 0)
    return sc__fail(c, SC_ERR_SELF, "you cannot send to yourself ('%s')", user);
  if ((rc = convo_before_send(c, user))) return rc; /* blocked; a request answered is accepted */
  if (len > SC_MAX_TEXT) return attach_send_text(out, c, user, text, len, flags); /* attach.c */
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_TEXT;
  ct.ts = sc_now_ms();
  ct.text = (const uint8_t *)text;
  ct.text_len = len;
  if ((rc = convo_prepare_out(c, user, &ct))) return rc; /* timer, reply: TEXT_EX */
  if ((rc = sc__acquire(c, &opened))) {
    if (!unreachable(rc)) return rc;
    queued = 1; /* kept in the outbox; the next connection sends it */
  } else {
    c->flags = flags;
    rc = deliver_pairwise(c, &c->k, user, &ct);
    c->flags = 0;
    sc__release(c, opened);
    /* The link went away while sending: the ratchet step is committed, the
     * text is kept and sent again (re-encrypted) when the server is back. */
    if (rc && !unreachable(rc)) return rc;
    queued = rc != 0;
  }
  if (!(m = calloc(1, sizeof *m)) || !(t = malloc(len + 1))) {
    free(m);
    return sc__fail(c, SC_ERR_NOMEM,
                    queued ? "out of memory: nothing was queued" : "sent, but out of memory to log it");
  }
  memcpy(t, text, len);
  t[len] = 0;
  m->dir = MSG_OUT;
  snprintf(m->peer, sizeof m->peer, "%s", user);
  m->ts = ct.ts;
  m->text = t;
  m->text_len = len;
  m->reason = queued ? SC_STATE_QUEUED : SC_STATE_SENT;
  convo_out_row(c, m, &ct);
  m->server_id = queued ? 0 : c->sent_id;
  m->server_ts = queued ? 0 : c->sent_ts;
  if ((rc = sc__begin(c)) || (rc = outbox_add(c, m)) || (rc = account_save(c->st, c->acct)) ||
      (rc = store_commit(c->st))) {
    store_rollback(c->st);
    if (rc == SC_ERR_OUTBOX_FULL)
      rc = sc__fail(c, SC_ERR_OUTBOX_FULL,
                    "the server is unreachable and the outbox holds %d messages already: nothing was queued",
                    OUTBOX_MAX);
    else
      rc = sc__store_error(c, rc);
  } else if (out) {
    out->seq = m->seq;
    out->timestamp_ms = ct.ts;
    out->delivered = queued ? 0 : 1;
    out->queued = queued;
  }
  sodium_memzero(t, len + 1);
  free(t);
  free(m);
  return rc;
}

/* ---- groups --------------------------------------------------------------------- */

/* Sends a GROUP_UPDATE describing g to user, with skdm (may be empty). */
static int send_update(struct sc_client *c, const struct grp *g, const char *user, const uint8_t *skdm,
                       size_t skdm_len) {
  struct content *ct = calloc(1, sizeof *ct);
  size_t i;
  int rc;
  if (!ct) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  ct->kind = CONTENT_GROUP_UPDATE;
  ct->ts = sc_now_ms();
  memcpy(ct->gid, g->gid, GROUP_ID_LEN);
  snprintf(ct->name, sizeof ct->name, "%s", g->name);
  ct->epoch = g->epoch;
  ct->n_members = g->n;
  for (i = 0; i < g->n; i++) memcpy(ct->members[i], g->members[i], sizeof ct->members[i]);
  ct->skdm = skdm;
  ct->skdm_len = skdm_len;
  rc = deliver_pairwise(c, &c->k, user, ct);
  free(ct);
  if (rc) not_delivered(c, user);
  return rc;
}

/* Our own sender key of g: loads or creates it, commits, writes the
 * distribution message for its current state into skdm. */
static int own_skdm(struct sc_client *c, const struct grp *g, uint8_t skdm[SOTTO_SKDM_MAX_LEN], size_t *len) {
  struct sotto_sender_key *rec = NULL;
  int rc;
  if ((rc = sc__begin(c))) return sc__store_error(c, rc);
  if ((rc = grp_sk_load(c->st, g, c->acct->username, sc__own_device(c), &rec)) < 0) goto fail;
  if (sotto_sender_key_distribution(rec, skdm, SOTTO_SKDM_MAX_LEN, len) != 0) {
    rc = STORE_E_IO;
    goto fail;
  }
  if ((rc = grp_sk_save(c->st, g, c->acct->username, sc__own_device(c), rec)) || (rc = store_commit(c->st))) goto fail;
  sotto_sender_key_free(rec);
  return 0;
fail:
  store_rollback(c->st);
  sotto_sender_key_free(rec);
  return sc__store_error(c, rc);
}

static int save_group(struct sc_client *c, const struct grp *g) {
  int rc;
  if ((rc = sc__begin(c)) || (rc = grp_save(c->st, g)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  return 0;
}

/* The group's state, with our chain (skdm, may be empty), to our own
 * other listed devices: GROUP_STATE (content kind 19, docs/multi-device.md).
 * 0 when they got it (or there are none), else an SC_ERR_* (said). */
static int own_state(struct sc_client *c, const struct grp *g, const uint8_t *skdm, size_t skdm_len, uint8_t flags) {
  struct content *ct = calloc(1, sizeof *ct);
  size_t i;
  int rc;
  if (!ct) return SC_ERR_NOMEM;
  ct->kind = CONTENT_GROUP_STATE;
  ct->ts = sc_now_ms();
  memcpy(ct->gid, g->gid, GROUP_ID_LEN);
  snprintf(ct->name, sizeof ct->name, "%s", g->name);
  ct->epoch = g->epoch;
  ct->n_members = g->n;
  for (i = 0; i < g->n; i++) memcpy(ct->members[i], g->members[i], sizeof ct->members[i]);
  ct->skdm = skdm;
  ct->skdm_len = skdm_len;
  ct->state_flags = flags;
  rc = deliver_own(c, &c->k, ct, "the group's state");
  free(ct);
  return rc;
}

/* Sends the update to every member but us (with skdm), and the state to
 * our own other devices, and records who now holds our key (our own name:
 * our other devices). Returns the number of members it failed for. */
static int announce(struct sc_client *c, struct grp *g, const uint8_t *skdm, size_t skdm_len) {
  size_t i;
  int failed = 0;
  for (i = 0; i < g->n; i++) {
    if (strcmp(g->members[i], c->acct->username) == 0) continue;
    if (send_update(c, g, g->members[i], skdm, skdm_len) == 0)
      grp_list_add(g->dist, &g->n_dist, g->members[i]);
    else
      failed++;
  }
  if (own_state(c, g, skdm, skdm_len, 0) == 0) grp_list_add(g->dist, &g->n_dist, c->acct->username);
  return failed;
}

static void to_public(struct sc_group *out, const struct grp *g) {
  size_t i;
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%s", g->name);
  memcpy(out->id, g->gid, GROUP_ID_LEN);
  out->epoch = g->epoch;
  out->n_members = g->n;
  for (i = 0; i < g->n; i++) memcpy(out->members[i], g->members[i], sizeof out->members[i]);
}

static void sent_report(struct sc_sent *out, const struct grp *g, int delivered, int failed) {
  (void)g;
  if (!out) return;
  out->timestamp_ms = sc_now_ms();
  out->delivered = (unsigned)delivered;
  out->undelivered = (unsigned)failed;
}

/* Whether each of users has an account on the server (DEVICES: no pre-key
 * is used up). A name nobody registered must not become a member: whoever
 * registers it later would be sent every member's sender key. Needs the
 * link (sc__acquire). */
static int members_exist(struct sc_client *c, const char *const *users, size_t n) {
  uint32_t ids[SOTTO_SRV_MAX_DEVICES];
  size_t i, got;
  int rc;
  for (i = 0; i < n; i++) {
    int tries = 0;
    do /* ERR 44: registered moments ago, not in the server's log yet: asked again (conn.c) */
      rc = sotto_net_devices(c->k.net, users[i], ids, SOTTO_SRV_MAX_DEVICES, &got);
    while (conn_kt_pending_wait(rc, &tries));
    if (rc == SOTTO_SRV_E_NOT_FOUND || (rc == 0 && got == 0))
      return sc__fail(c, SC_ERR_UNKNOWN_USER,
                      "there is no user '%s' on the server (check the spelling): nothing was stored and nobody "
                      "was told",
                      users[i]);
    if (rc) return conn_error(c, &c->k, rc, "looking up the members", users[i]);
  }
  return 0;
}

/* Loads the group and connects (for the calls below). */
static int group_begin(struct sc_client *c, const char *name, struct grp **g, int *opened) {
  int rc;
  *g = NULL;
  *opened = 0;
  if ((rc = sc__need_open(c))) return rc;
  if (!sc_group_name_ok(name))
    return sc__fail(c, SC_ERR_ARG, "'%s' is not a group name: 1-64 of A-Z a-z 0-9 _ . -", name ? name : "");
  if (!c->acct->username[0])
    return sc__fail(c, SC_ERR_NOT_REGISTERED,
                    "this identity is not registered with a server yet: run 'sotto register --server HOST:PORT "
                    "USERNAME'");
  if (!(*g = calloc(1, sizeof **g))) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  return 0;
}

static int group_find(struct sc_client *c, const char *name, struct grp *g) {
  int rc = grp_find(c->st, name, g);
  if (rc < 0) return sc__store_error(c, rc);
  if (rc == 0) return sc__fail(c, SC_ERR_UNKNOWN_GROUP, "you are in no group called '%s' (see 'sotto groups')", name);
  return 0;
}

/* A group to act in: an invitation not accepted yet is refused (convo.c). */
static int group_load(struct sc_client *c, const char *name, struct grp *g) {
  int rc = group_find(c, name, g);
  return rc ? rc : convo_group_usable(c, g->gid, g->name);
}

int sc_group_create(struct sc_sent *out, struct sc_client *c, const char *name, const char *const *members,
                    size_t n_members, unsigned flags) {
  uint8_t skdm[SOTTO_SKDM_MAX_LEN];
  size_t skdm_len, i;
  struct grp *g;
  int rc, failed, opened;

  if (out) memset(out, 0, sizeof *out);
  if ((rc = group_begin(c, name, &g, &opened))) return rc;
  if (n_members == 0 || n_members >= GROUP_MAX_MEMBERS) {
    free(g);
    return n_members ? sc__fail(c, SC_ERR_TOO_LARGE, "a group has at most %d members", GROUP_MAX_MEMBERS)
                     : sc__fail(c, SC_ERR_ARG, "a group needs at least one other member");
  }
  for (i = 0; i < n_members; i++) {
    if (!sc_username_ok(members[i])) {
      free(g);
      return sc__fail(c, SC_ERR_ARG, "'%s' is not a valid username", members[i] ? members[i] : "");
    }
    if (strcmp(members[i], c->acct->username) == 0) {
      free(g);
      return sc__fail(c, SC_ERR_GROUP_MEMBER, "you are in the group anyway; list the other members");
    }
  }
  rc = grp_find(c->st, name, g);
  if (rc != 0) {
    free(g);
    return rc < 0 ? sc__store_error(c, rc)
                  : sc__fail(c, SC_ERR_EXISTS, "you already have a group called '%s'; pick another name", name);
  }
  if ((rc = sc__acquire(c, &opened))) {
    free(g);
    return rc;
  }
  if ((rc = members_exist(c, members, n_members))) goto out;
  memset(g, 0, sizeof *g);
  randombytes_buf(g->gid, GROUP_ID_LEN);
  snprintf(g->name, sizeof g->name, "%s", name);
  g->epoch = 1;
  grp_list_add(g->members, &g->n, c->acct->username);
  for (i = 0; i < n_members; i++) grp_list_add(g->members, &g->n, members[i]);
  c->flags = flags;
  if ((rc = save_group(c, g)) || (rc = own_skdm(c, g, skdm, &skdm_len))) goto out;
  failed = announce(c, g, skdm, skdm_len);
  if ((rc = save_group(c, g))) goto out;
  sent_report(out, g, (int)g->n - 1 - failed, failed);
  if (failed)
    rc = sc__fail(c, SC_ERR_PARTIAL,
                  "%d member(s) did not get the group (see above); run 'sotto group add %s USER' for them later",
                  failed, g->name);
out:
  c->flags = 0;
  sc__release(c, opened);
  free(g);
  return rc;
}

int sc_group_add(struct sc_sent *out, struct sc_client *c, const char *name, const char *user, unsigned flags) {
  uint8_t skdm[SOTTO_SKDM_MAX_LEN];
  size_t skdm_len;
  struct grp *g;
  int rc, failed, opened;

  if (out) memset(out, 0, sizeof *out);
  if ((rc = group_begin(c, name, &g, &opened))) return rc;
  if (!sc_username_ok(user)) {
    free(g);
    return sc__fail(c, SC_ERR_ARG, "'%s' is not a valid username", user ? user : "");
  }
  if ((rc = group_load(c, name, g))) goto out;
  if (grp_has(g->members, g->n, user)) {
    rc = sc__fail(c, SC_ERR_GROUP_MEMBER, "%s is already in %s", user, g->name);
    goto out;
  }
  if (g->n >= GROUP_MAX_MEMBERS) {
    rc = sc__fail(c, SC_ERR_TOO_LARGE, "%s has %d members, the most sotto allows", g->name, GROUP_MAX_MEMBERS);
    goto out;
  }
  if ((rc = sc__acquire(c, &opened)) || (rc = members_exist(c, &user, 1))) goto out;
  c->flags = flags;
  g->epoch++;
  grp_list_add(g->members, &g->n, user);
  if ((rc = save_group(c, g)) || (rc = own_skdm(c, g, skdm, &skdm_len))) goto out;
  failed = announce(c, g, skdm, skdm_len);
  if ((rc = save_group(c, g))) goto out;
  sent_report(out, g, (int)g->n - 1 - failed, failed);
  if (failed)
    rc = sc__fail(c, SC_ERR_PARTIAL, "%d member(s) did not hear of the change; run the command again later", failed);
out:
  c->flags = 0;
  sc__release(c, opened);
  free(g);
  return rc;
}

/* Removal: a new epoch and, before anything else is sent, a fresh sender key
 * of ours that only the remaining members get. Every remaining member
 * retires its own key when it sees the update. */
int sc_group_remove(struct sc_sent *out, struct sc_client *c, const char *name, const char *user, unsigned flags) {
  uint8_t skdm[SOTTO_SKDM_MAX_LEN];
  size_t skdm_len, i;
  struct grp *g, *leaving = NULL;
  char who[SC_USER_MAX + 1];
  int rc, failed = 0, opened, self;

  if (out) memset(out, 0, sizeof *out);
  if ((rc = group_begin(c, name, &g, &opened))) return rc;
  if (!sc_username_ok(user)) {
    free(g);
    return sc__fail(c, SC_ERR_ARG, "'%s' is not a valid username", user ? user : "");
  }
  /* A copy: user may be sc_username(c), which a transaction reloads. */
  snprintf(who, sizeof who, "%s", user);
  user = who;
  self = strcmp(user, c->acct->username) == 0;
  if ((rc = group_load(c, name, g))) goto out;
  if (!grp_has(g->members, g->n, user)) {
    rc = sc__fail(c, SC_ERR_GROUP_MEMBER, "%s is not in %s", user, g->name);
    goto out;
  }
  if (!(leaving = malloc(sizeof *leaving))) {
    rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  if ((rc = sc__acquire(c, &opened))) goto out;
  c->flags = flags;
  *leaving = *g;
  g->epoch++;
  grp_list_del(g->members, &g->n, user);
  g->n_dist = 0;
  if ((rc = sc__begin(c))) {
    rc = sc__store_error(c, rc);
    goto out;
  }
  if ((rc = grp_sk_del(c->st, g, user)) || (rc = grp_sk_del_dev(c->st, g, c->acct->username, sc__own_device(c))) ||
      (rc = (self ? grp_delete(c->st, leaving) : grp_save(c->st, g))) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    rc = sc__store_error(c, rc);
    goto out;
  }
  if (self) {
    /* Leaving: tell the others and our other devices, keep nothing. */
    for (i = 0; i < g->n; i++)
      if (send_update(c, g, g->members[i], NULL, 0) != 0) failed++;
    own_state(c, leaving, NULL, 0, GROUP_STATE_LEFT);
    sent_report(out, g, (int)g->n - failed, failed);
    rc = 0;
    goto out;
  }
  if ((rc = own_skdm(c, g, skdm, &skdm_len))) goto out;
  failed = announce(c, g, skdm, skdm_len);
  if ((rc = save_group(c, g))) goto out;
  /* The removed member learns it is out (no key travels with this). */
  if (send_update(c, g, user, NULL, 0) != 0) failed++;
  sent_report(out, g, (int)g->n - failed, failed);
  rc = 0;
out:
  c->flags = 0;
  sc__release(c, opened);
  free(leaving);
  free(g);
  return rc;
}

/* The server cannot be reached: the group text ct is queued (convo.c)
 * and logged as ours. 0 or a recorded SC_ERR_*. */
static int group_queue_text(struct sc_sent *out, struct sc_client *c, const struct grp *g, const struct content *ct) {
  char conv[GROUP_NAME_MAX + 2];
  struct msg *m;
  char *t;
  int rc;
  snprintf(conv, sizeof conv, "#%s", g->name);
  if ((rc = convo_queue(c, conv, ct))) return rc;
  if (!(m = calloc(1, sizeof *m)) || !(t = malloc(ct->text_len + 1))) {
    free(m);
    return sc__fail(c, SC_ERR_NOMEM, "queued, but out of memory to log it");
  }
  memcpy(t, ct->text, ct->text_len);
  t[ct->text_len] = 0;
  m->dir = MSG_OUT;
  snprintf(m->group, sizeof m->group, "%s", g->name);
  m->ts = ct->ts;
  m->text = t;
  m->text_len = ct->text_len;
  convo_out_row(c, m, ct);
  if ((rc = sc__begin(c)) || (rc = msglog_add(c->st, c->acct, m, 0)) || (rc = account_save(c->st, c->acct)) ||
      (rc = store_commit(c->st))) {
    store_rollback(c->st);
    rc = sc__store_error(c, rc);
  } else if (out) {
    out->seq = m->seq;
    out->timestamp_ms = ct->ts;
    out->queued = 1;
  }
  sodium_memzero(t, ct->text_len + 1);
  free(t);
  free(m);
  return rc;
}

/* Sends ct (GROUP_TEXT, or a conversation kind with scope 1) to every
 * member of the group name inside one SenderKeyMessage. text (len bytes):
 * a text row is logged (GROUP_TEXT, TEXT_EX); NULL: no row (a change).
 * A GROUP_TEXT becomes TEXT_EX when the group's timer is on or it is a
 * reply (convo.c). 0 or a recorded SC_ERR_*. */
int sc__group_send_ct(struct sc_sent *out, struct sc_client *c, const char *name, struct content *ct,
                      const char *text, size_t len, unsigned flags) {
  struct msg *m = NULL;
  struct grp *g;
  char *t = NULL;
  int rc, opened;

  if (out) memset(out, 0, sizeof *out);
  if ((rc = group_begin(c, name, &g, &opened))) return rc;
  if (text) {
    if (len > SC_MAX_TEXT) {
      rc = sc__fail(c, SC_ERR_TOO_LARGE, "the message is longer than %d bytes", SC_MAX_TEXT);
      goto out;
    }
    if (len == 0) {
      rc = sc__fail(c, SC_ERR_EMPTY, "the message is empty; nothing was sent");
      goto out;
    }
    if ((rc = text_ok(c, text, len))) goto out;
  }
  if ((rc = group_load(c, name, g))) goto out;
  memcpy(ct->gid, g->gid, GROUP_ID_LEN);
  if (text && ct->kind == CONTENT_GROUP_TEXT && (rc = convo_prepare_group(c, g->gid, ct))) goto out; /* timer, reply */
  if (text) {
    ct->text = (const uint8_t *)text;
    ct->text_len = len;
  }
  if ((rc = sc__acquire(c, &opened))) {
    /* No server: a text waits in the queue of changes (convo.c) and is
     * logged now; a change is queued by its caller. */
    if (text && unreachable(rc) && !c->flushing) rc = group_queue_text(out, c, g, ct);
    goto out;
  }
  c->flags = flags;
  if (text) {
    if (!(m = calloc(1, sizeof *m)) || !(t = malloc(len + 1))) {
      rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
      goto out;
    }
    memcpy(t, text, len);
    t[len] = 0;
    m->dir = MSG_OUT;
    snprintf(m->group, sizeof m->group, "%s", g->name);
    m->ts = ct->ts;
    m->text = t;
    m->text_len = len;
    convo_out_row(c, m, ct);
  }
  rc = sc__group_send_content(out, c, g, ct, m);
out:
  c->flags = 0;
  sc__release(c, opened);
  if (t) {
    sodium_memzero(t, len + 1);
    free(t);
  }
  free(m);
  free(g);
  return rc;
}

/* Our current key (skdm) pairwise to each member that does not hold it,
 * then to our own other devices with the group's state; g->dist records
 * who got it. What could not be delivered is said as an event. */
static void distribute(struct sc_client *c, struct grp *g, const uint8_t *skdm, size_t skdm_len) {
  size_t i;
  for (i = 0; i < g->n; i++) {
    struct content sk;
    if (strcmp(g->members[i], c->acct->username) == 0 || grp_has(g->dist, g->n_dist, g->members[i])) continue;
    memset(&sk, 0, sizeof sk);
    sk.kind = CONTENT_SENDER_KEY;
    sk.ts = sc_now_ms();
    memcpy(sk.gid, g->gid, GROUP_ID_LEN);
    sk.epoch = g->epoch;
    sk.skdm = skdm;
    sk.skdm_len = skdm_len;
    if (deliver_pairwise(c, &c->k, g->members[i], &sk) == 0)
      grp_list_add(g->dist, &g->n_dist, g->members[i]);
    else
      not_delivered(c, g->members[i]);
  }
  /* ... and our own other devices (the group's state with it). */
  if (!grp_has(g->dist, g->n_dist, c->acct->username) && own_state(c, g, skdm, skdm_len, 0) == 0)
    grp_list_add(g->dist, &g->n_dist, c->acct->username);
}

/* The group's members get our current sender key where they lack it, then
 * ct (a group kind; its gid filled here) in one SenderKeyMessage to every
 * listed device of each member. m (NULL: no row, a change) is logged in the
 * transaction that commits the chain step. For sc__group_send_ct and group
 * attachments (attach.c). 0 or a recorded SC_ERR_*. */
int sc__group_send_content(struct sc_sent *out, struct sc_client *c, struct grp *g, struct content *ct,
                           struct msg *m) {
  uint8_t skdm[SOTTO_SKDM_MAX_LEN], *ctext = NULL;
  struct sotto_sender_key *rec = NULL;
  struct rec_wr pt;
  size_t skdm_len, i, out_len = 0, cap;
  int rc, failed = 0, sent = 0, drc, lost = 0, attempt;

  rec_wr_init(&pt, SC_MAX_TEXT + 4096);
  /* Our own list first, then each member's (each fetched at most once per
   * half-minute and connection): a device added or removed there changes
   * who needs our key, or retires our chain (grp_follow_devices), before
   * this message. */
  if (c->k.net) {
    int saved_err = c->err;
    char saved[sizeof c->errdetail];
    memcpy(saved, c->errdetail, sizeof saved);
    (void)devices_refresh_own(c, &c->k); /* what it finds wrong is said as an event */
    c->err = saved_err;
    memcpy(c->errdetail, saved, sizeof saved);
  }
  for (i = 0; i < g->n && c->k.net; i++) {
    struct contact who;
    if (strcmp(g->members[i], c->acct->username) == 0) continue;
    if (contact_load(c->st, g->members[i], &who) == 1 && who.has_key && !contact_blocked(&who)) {
      int saved_err = c->err;
      char saved[sizeof c->errdetail];
      memcpy(saved, c->errdetail, sizeof saved);
      (void)devices_check_peer(c, &c->k, g->members[i], who.key); /* a failure is the send's to say */
      c->err = saved_err;
      memcpy(c->errdetail, saved, sizeof saved);
    }
  }
  for (attempt = 0;; attempt++) {
    struct grp *now = calloc(1, sizeof *now);
    int retired = 0;
    if (now && grp_load(c->st, g->gid, now) == 1) *g = *now;
    free(now);
    if ((rc = own_skdm(c, g, skdm, &skdm_len))) goto out;
    /* Members that do not hold our current key get it first, pairwise. */
    distribute(c, g, skdm, skdm_len);
    /* A member's list that shrank while our key went out (an ERR(30)
     * carrying it, or a fetch) retired our chain (grp_follow_devices):
     * start again with a new one rather than save over that or encrypt
     * with a chain that is gone. Bounded: lists changing faster than a
     * send are not followed forever. */
    if (attempt < 2) {
      struct sotto_sender_key *chk = NULL;
      int have;
      if ((rc = sc__begin(c))) {
        rc = sc__store_error(c, rc);
        goto out;
      }
      have = grp_sk_load(c->st, g, c->acct->username, sc__own_device(c), &chk);
      store_rollback(c->st);
      sotto_sender_key_free(chk);
      if (have < 0) {
        rc = sc__store_error(c, have);
        goto out;
      }
      retired = have == 0;
    }
    if (!retired) break;
  }
  if ((rc = save_group(c, g))) goto out;
  memcpy(ct->gid, g->gid, GROUP_ID_LEN);
  if (content_encode(&pt, ct)) {
    rc = sc__fail(c, SC_ERR_TOO_LARGE, "the message is too large");
    goto out;
  }
  cap = SOTTO_GROUP_MESSAGE_MAX_LEN(pt.len);
  if (!(ctext = malloc(cap))) {
    rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  /* One ciphertext for everyone; the chain step is committed first. */
  if ((rc = sc__begin(c)) == 0) {
    if ((rc = grp_sk_load(c->st, g, c->acct->username, sc__own_device(c), &rec)) >= 0) {
      rc = sotto_group_encrypt(rec, ctext, cap, &out_len, pt.p, pt.len)
               ? STORE_E_IO
               : grp_sk_save(c->st, g, c->acct->username, sc__own_device(c), rec);
    }
    if (!rc && m) rc = msglog_add(c->st, c->acct, m, 0);
    if (!rc) rc = account_save(c->st, c->acct);
    if (!rc) rc = store_commit(c->st);
    if (rc) store_rollback(c->st);
  }
  if (rc) {
    rc = sc__store_error(c, rc);
    goto out;
  }
  for (i = 0; i < g->n; i++) {
    struct contact who;
    if (strcmp(g->members[i], c->acct->username) == 0) continue;
    /* A verified member whose key changed gets nothing, even if they hold
     * our current chain from before the change (docs/client.md). */
    if ((rc = contact_load(c->st, g->members[i], &who)) < 0 || contact_blocked(&who)) {
      if (rc < 0) {
        sc__store_error(c, rc);
        not_delivered(c, g->members[i]);
      } else {
        sc__event(c, SC_EV_NOT_DELIVERED, SC_R_KEY_VERIFIED, g->members[i], NULL);
      }
      failed++;
      continue;
    }
    if (!grp_has(g->dist, g->n_dist, g->members[i])) {
      sc__event(c, SC_EV_NOT_DELIVERED, SC_R_NO_SENDER_KEY, g->members[i], NULL);
      failed++;
      continue;
    }
    if ((drc = deliver_raw_all(c, &c->k, g->members[i], SOTTO_MSG_SENDERKEY, ctext, out_len)) == 0) {
      sent++;
    } else {
      not_delivered(c, g->members[i]);
      failed++;
      lost = unreachable(drc) ? drc : lost;
    }
  }
  /* The same ciphertext to our own other devices: every device of ours
   * shows the whole group conversation (not counted above). */
  if (grp_has(g->dist, g->n_dist, c->acct->username))
    deliver_raw_own(c, &c->k, SOTTO_MSG_SENDERKEY, ctext, out_len, NULL);
  if (out) {
    out->seq = m ? m->seq : 0;
    out->timestamp_ms = ct->ts;
    out->delivered = (unsigned)sent;
    out->undelivered = (unsigned)failed;
  }
  /* Nobody got it because the link went away: that failure, so that a
   * change is queued (convo.c) and a flush stops there. */
  if (failed && !sent && lost && !m)
    rc = sc__fail(c, lost, "the connection to the server was lost: %s reached nobody", g->name);
  else
    rc = failed && !sent ? sc__fail(c, SC_ERR_UNDELIVERED, "the message to %s reached nobody", g->name) : 0;
out:
  sotto_sender_key_free(rec);
  rec_wr_free(&pt);
  free(ctext);
  return rc;
}

/* The group called name, loaded, accepted and connected (*opened for
 * sc__release; *g freed by the caller), for group attachments (attach.c). */
int sc__group_open(struct sc_client *c, const char *name, struct grp **g, int *opened) {
  int rc;
  if ((rc = group_begin(c, name, g, opened))) return rc;
  if ((rc = group_load(c, name, *g)) || (rc = sc__acquire(c, opened))) {
    free(*g);
    *g = NULL;
  }
  return rc;
}

int sc_group_send(struct sc_sent *out, struct sc_client *c, const char *name, const char *text, size_t len,
                  unsigned flags) {
  struct content ct;
  if (!text) len = 0;
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_GROUP_TEXT;
  ct.ts = sc_now_ms();
  return sc__group_send_ct(out, c, name, &ct, text ? text : "", len, flags);
}

int sc_group_get(struct sc_group *out, struct sc_client *c, const char *name) {
  struct grp *g;
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  if (!(g = calloc(1, sizeof *g))) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  if ((rc = group_find(c, name, g)) == 0) to_public(out, g);
  free(g);
  return rc;
}

struct each_group {
  struct sc_client *c;
  int (*cb)(void *ud, const struct sc_group *g);
  void *ud;
  struct sc_group pub;
};

static int each_group_cb(void *ud, const struct grp *g) {
  struct each_group *x = ud;
  if (convo_group_inviter(x->c, g->gid, NULL) == 1) return 0; /* a pending invitation: in 'requests' */
  to_public(&x->pub, g);
  return x->cb(x->ud, &x->pub);
}

int sc_groups(struct sc_client *c, int (*cb)(void *ud, const struct sc_group *g), void *ud) {
  struct each_group *x;
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  if (!(x = calloc(1, sizeof *x))) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  x->c = c;
  x->cb = cb;
  x->ud = ud;
  rc = grp_each(c->st, each_group_cb, x);
  free(x);
  /* A store error is negative STORE_E_*; the callback's own value passes. */
  return rc < 0 && rc >= STORE_E_ROLLBACK ? sc__store_error(c, rc) : rc;
}

/* ---- contacts -------------------------------------------------------------------- */

static void contact_public(struct sc_contact *out, const struct contact *ct) {
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%s", ct->name);
  out->verified = ct->verified && !contact_blocked(ct);
  out->key_changed_since_verified = contact_blocked(ct);
  out->key_changes = ct->key_changes;
  out->new_key_held = ct->has_pending;
  out->held = ct->n_held;
}

struct each_contact {
  int (*cb)(void *ud, const struct sc_contact *ct);
  void *ud;
};

static int each_contact_cb(void *ud, const struct contact *ct) {
  struct each_contact *x = ud;
  struct sc_contact pub;
  contact_public(&pub, ct);
  return x->cb(x->ud, &pub);
}

int sc_contacts(struct sc_client *c, int (*cb)(void *ud, const struct sc_contact *ct), void *ud) {
  struct each_contact x = {cb, ud};
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  rc = contact_each(c->st, each_contact_cb, &x);
  return rc < 0 && rc >= STORE_E_ROLLBACK ? sc__store_error(c, rc) : rc;
}

int sc_contact_get(struct sc_contact *out, struct sc_client *c, const char *user) {
  struct contact ct;
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  if (!sc_username_ok(user)) return sc__fail(c, SC_ERR_ARG, "'%s' is not a valid username", user ? user : "");
  rc = contact_load(c->st, user, &ct);
  if (rc < 0) return sc__store_error(c, rc);
  if (rc == 0) return sc__fail(c, SC_ERR_UNKNOWN_CONTACT, "no identity key of %s is known yet", user);
  contact_public(out, &ct);
  return 0;
}

/* Loads the contact with a known key and computes number and payload: for
 * the pending key when a new, not yet accepted key is waiting (that is the
 * one the user must compare before accepting it). */
static int compute(struct sc_client *c, const char *user, struct contact *ct, char number[SOTTO_SAFETY_NUMBER_LEN + 1],
                   uint8_t scan[SOTTO_FINGERPRINT_SCANNABLE_LEN]) {
  uint8_t akey[SOTTO_PUBKEY_LEN];
  int rc;
  if (!sc_username_ok(user))
    return sc__fail(c, SC_ERR_ARG, "'%s' is not a valid username (3-32 of a-z 0-9 _ .)", user ? user : "");
  if ((rc = sc__need_open(c))) return rc;
  if (!c->acct->username[0])
    return sc__fail(c, SC_ERR_NOT_REGISTERED, "this identity has no username yet: run 'sotto register' first");
  rc = contact_load(c->st, user, ct);
  if (rc < 0) return sc__store_error(c, rc);
  if (rc == 0 || !ct->has_key)
    return sc__fail(c, SC_ERR_UNKNOWN_CONTACT,
                    "no identity key of %s is known yet: send or receive a message first ('sotto send %s TEXT')",
                    user, user);
  /* Our side is the account key (a linked device's own key is not what
   * contacts pin: docs/multi-device.md). */
  if ((rc = devices_account_key(c, akey)) != 0) return sc__store_error(c, rc);
  if (sotto_fingerprint(number, scan, (const uint8_t *)c->acct->username, strlen(c->acct->username),
                        akey, (const uint8_t *)user, strlen(user),
                        ct->has_pending ? ct->pending_key : ct->key, SOTTO_FINGERPRINT_ITERATIONS) != 0)
    return sc__fail(c, SC_ERR_INTERNAL, "cannot compute the safety number");
  return 0;
}

int sc_safety_number(struct sc_safety *out, struct sc_client *c, const char *user) {
  struct contact ct;
  int rc;
  memset(out, 0, sizeof *out);
  if ((rc = compute(c, user, &ct, out->number, out->scannable))) return rc;
  snprintf(out->me, sizeof out->me, "%s", c->acct->username);
  contact_public(&out->contact, &ct);
  return 0;
}

int sc_verify(unsigned *released, struct sc_client *c, const char *user, const char *given_in) {
  char number[SOTTO_SAFETY_NUMBER_LEN + 1], given[SOTTO_SAFETY_NUMBER_LEN + 1];
  uint8_t scan[SOTTO_FINGERPRINT_SCANNABLE_LEN];
  uint8_t cmp[SOTTO_PUBKEY_LEN];
  char name[SC_USER_MAX + 1];
  struct contact ct;
  size_t n = 0;
  const char *p;
  int rc, had_pending;

  if (released) *released = 0;
  for (p = given_in ? given_in : ""; *p; p++) {
    if (*p == ' ' || *p == '\t' || *p == '-') continue;
    if (*p < '0' || *p > '9' || n == SOTTO_SAFETY_NUMBER_LEN)
      return sc__fail(c, SC_ERR_ARG, "NUMBER must be the 60 digits that 'sotto safety-number %s' shows",
                      user ? user : "USER");
    given[n++] = *p;
  }
  given[n] = 0;
  if (n != SOTTO_SAFETY_NUMBER_LEN) return sc__fail(c, SC_ERR_ARG, "NUMBER has %zu digits, expected 60", n);
  if ((rc = compute(c, user, &ct, number, scan))) return rc;
  if (sodium_memcmp(number, given, SOTTO_SAFETY_NUMBER_LEN) != 0)
    return sc__fail(c, SC_ERR_MISMATCH,
                    "that number does not match your safety number with %s: do not trust this key; compare "
                    "again with 'sotto safety-number %s'",
                    ct.name, ct.name);
  /* Inside the transaction on a fresh record: the key compared is the one
   * accepted (a newer pending key that arrived meanwhile is not). */
  had_pending = ct.has_pending;
  memcpy(cmp, ct.has_pending ? ct.pending_key : ct.key, sizeof cmp);
  snprintf(name, sizeof name, "%s", ct.name);
  if ((rc = store_begin(c->st)) || (rc = contact_load(c->st, name, &ct)) < 0) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  if (sodium_memcmp(had_pending ? ct.pending_key : ct.key, cmp, sizeof cmp) != 0 || had_pending != ct.has_pending) {
    store_rollback(c->st);
    return sc__fail(c, SC_ERR_CONFLICT, "%s's key changed while verifying; run 'sotto safety-number %s' again",
                    ct.name, ct.name);
  }
  if (had_pending) {
    contact_accept_pending(&ct, 1);
  } else {
    ct.verified = 1;
    memcpy(ct.verified_key, ct.key, sizeof ct.key);
    memcpy(ct.sent_key, ct.key, sizeof ct.key);
    ct.has_sent = 1;
  }
  if ((rc = contact_save(c->st, &ct)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  if (had_pending) {
    unsigned r = 0;
    if ((rc = inbox_release_held(c, ct.name, &r))) return rc;
    if (released) *released = r;
  }
  return 0;
}

int sc_trust(unsigned *released, struct sc_client *c, const char *user) {
  struct contact ct;
  unsigned r = 0;
  int rc;
  if (released) *released = 0;
  if (!sc_username_ok(user)) return sc__fail(c, SC_ERR_ARG, "'%s' is not a valid username", user ? user : "");
  if ((rc = sc__need_open(c))) return rc;
  if ((rc = store_begin(c->st)) || (rc = contact_load(c->st, user, &ct)) < 0) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  if (!ct.has_pending) {
    store_rollback(c->st);
    return sc__fail(c, SC_ERR_NOTHING_HELD, "no new identity key of %s is waiting to be accepted", user);
  }
  contact_accept_pending(&ct, 0);
  if ((rc = contact_save(c->st, &ct)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  if ((rc = inbox_release_held(c, user, &r))) return rc;
  if (released) *released = r;
  return 0;
}

/* ---- history ------------------------------------------------------------------------ */

struct seqs {
  uint64_t *v;
  size_t n, cap;
};

static int seq_cb(void *ud, const char *name, const uint8_t *val, size_t len) {
  struct seqs *s = ud;
  char *end;
  unsigned long long q = strtoull(name + 4, &end, 10);
  (void)val;
  (void)len;
  if (*end) return 0;
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 64;
    uint64_t *nv = realloc(s->v, nc * sizeof *nv);
    if (!nv) return STORE_E_IO;
    s->v = nv;
    s->cap = nc;
  }
  s->v[s->n++] = q;
  return 0;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int sc_history(struct sc_client *c, const char *filter, int (*cb)(void *ud, const struct sc_event *ev), void *ud) {
  struct seqs s = {NULL, 0, 0};
  struct msg *m;
  size_t i;
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  if (!(m = calloc(1, sizeof *m))) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  if ((rc = store_scan(c->st, "msg/", seq_cb, &s)) != 0) {
    free(s.v);
    free(m);
    return sc__store_error(c, rc);
  }
  qsort(s.v, s.n, sizeof *s.v, cmp_u64);
  for (i = 0; i < s.n && !rc; i++) {
    if ((rc = msglog_get(c->st, s.v[i], m)) != 0) {
      rc = sc__store_error(c, rc);
      break;
    }
    if (!filter || strcmp(m->peer, filter) == 0 || strcmp(m->group, filter) == 0) {
      struct sc_event ev;
      const char *members[GROUP_MAX_MEMBERS];
      msglog_to_event(m, &ev, members);
      rc = cb(ud, &ev);
    }
    msg_clear(m);
  }
  free(s.v);
  free(m);
  return rc;
}
