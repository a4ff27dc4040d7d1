/* SPDX-License-Identifier: Apache-2.0 */
/* methods.c: the daemon's JSON-RPC methods, after signal-cli's where one
 * exists (docs/client.md, "The daemon", lists them with their parameters
 * and results). Each method checks its parameters fully (rpc_only: a
 * misspelt name is an error), then makes one or a few core calls; a core
 * error becomes an application error (core_fail) carrying the core's
 * sentence and its error name in data.core. */
#include <inttypes.h>
#include <sotto/version.h>
#include <stdint.h>
#include <stdio.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon_int.h"
#include "utf8.h"

#define D(ud) ((struct daemon *)(ud))

/* The application code for a core error. */
static int map_core(int rc) {
  switch (rc) {
    case SC_ERR_UNKNOWN_USER:
    case SC_ERR_UNKNOWN_CONTACT:
    case SC_ERR_UNKNOWN_GROUP:
    case SC_ERR_NO_SUCH_DEVICE:
    case SC_ERR_NOTHING_HELD:
      return RPC_APP_NOT_FOUND;
    case SC_ERR_IDENTITY_CHANGED:
    case SC_ERR_KEY_CHANGED_UNCONFIRMED:
      return RPC_APP_UNTRUSTED;
    case SC_ERR_NOT_CONNECTED:
    case SC_ERR_UNREACHABLE:
    case SC_ERR_TIMEOUT:
    case SC_ERR_TLS:
    case SC_ERR_CONNECTION_LOST:
    case SC_ERR_DISPLACED:
    case SC_ERR_SHUTDOWN:
    case SC_ERR_SERVER_BUSY:
      return RPC_APP_NETWORK;
    case SC_ERR_PROTOCOL:
    case SC_ERR_SERVER:
    case SC_ERR_AUTH_FAILED:
    case SC_ERR_AUTH_RATE_LIMITED:
    case SC_ERR_RATE_LIMITED:
    case SC_ERR_QUEUE_FULL:
    case SC_ERR_NO_KEYS:
    case SC_ERR_BAD_BUNDLE:
    case SC_ERR_FORBIDDEN:
    case SC_ERR_UNDELIVERED:
    case SC_ERR_DEVLIST_INVALID:
    case SC_ERR_DEVLIST_ROLLBACK:
    case SC_ERR_DEVICE_KEY:
    case SC_ERR_DEVICE_MISMATCH:
    case SC_ERR_DEVICE_HIDDEN:
    case SC_ERR_KT_PENDING:
    case SC_ERR_LINK_CODE:
    case SC_ERR_LINK_FAILED:
      return RPC_APP_REFUSED;
    case SC_ERR_BUSY:
    case SC_ERR_STORE:
    case SC_ERR_STORE_CORRUPT:
    case SC_ERR_ROLLBACK:
    case SC_ERR_CONFLICT:
      return RPC_APP_STORE;
    case SC_ERR_MISMATCH:
      return RPC_APP_MISMATCH;
    case SC_ERR_TOO_LARGE:
      return RPC_APP_TOO_LARGE;
    case SC_ERR_GROUP_MEMBER:
      return RPC_APP_MEMBERSHIP;
    case SC_ERR_NOT_REGISTERED:
      return RPC_APP_NOT_REGISTERED;
    case SC_ERR_NOMEM:
      return RPC_APP_NOMEM;
    case SC_ERR_EXISTS:
      return RPC_APP_EXISTS;
    case SC_ERR_ARG:
    case SC_ERR_EMPTY:
    case SC_ERR_SELF:
    case SC_ERR_BAD_USERNAME:
    case SC_ERR_WEAK_PASSPHRASE:
      return RPC_E_PARAMS;
    default:
      return RPC_APP_FAILED;
  }
}

static int core_fail(struct daemon *d, int rc, struct rpc_error *err) {
  const char *detail = sc_errdetail(d->sc);
  rpc_fail(err, map_core(rc), "%s", detail && detail[0] ? detail : sc_error_message(rc));
  snprintf(err->core, sizeof err->core, "%s", sc_error_name(rc));
  return err->code;
}

static int need_user(const char *u, const char *name, struct rpc_error *err) {
  if (!sc_username_ok(u))
    return rpc_fail(err, RPC_E_PARAMS, "invalid params: '%s' is not a valid username (3-32 of a-z 0-9 _ .)",
                    name);
  return 0;
}

static int need_group(const char *g, struct rpc_error *err) {
  if (!sc_group_name_ok(g))
    return rpc_fail(err, RPC_E_PARAMS,
                    "invalid params: 'group' is not a valid group name (1-64 of A-Z a-z 0-9 _ . -)");
  return 0;
}

static void hex(char *out, const uint8_t *b, size_t n) {
  static const char h[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = h[b[i] >> 4];
    out[2 * i + 1] = h[b[i] & 15];
  }
  out[2 * n] = 0;
}

/* A contact's text as a JSON string: cJSON copies bytes as they are, so
 * invalid UTF-8 (and a NUL, which would end the C string) becomes U+FFFD
 * first; every line the daemon writes is then valid JSON in valid UTF-8.
 * Control characters stay (cJSON escapes them). */
static cJSON *add_text(cJSON *o, const char *name, const char *t, size_t len) {
  char *s;
  size_t i = 0, k = 0;
  cJSON *r;
  if (len > SIZE_MAX / 3 - 1 || !(s = malloc(3 * len + 1))) return NULL;
  while (i < len) {
    uint32_t cp;
    size_t n = utf8_decode(t + i, len - i, &cp);
    if (n == 0 || cp == 0) {
      memcpy(s + k, "\xef\xbf\xbd", 3); /* U+FFFD */
      k += 3;
      i += n ? n : 1;
    } else {
      memcpy(s + k, t + i, n);
      k += n;
      i += n;
    }
  }
  s[k] = 0;
  r = cJSON_AddStringToObject(o, name, s);
  free(s);
  return r;
}

/* The bytes cJSON writes for string s: quotes, two for \" \\ and the short
 * escapes, six for the other control characters. */
static size_t json_string_len(const char *s) {
  size_t n = 2;
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\' || ch == '\b' || ch == '\f' || ch == '\n' || ch == '\r' || ch == '\t') n += 2;
    else if (ch < 0x20) n += 6;
    else n += 1;
  }
  return n;
}

/* ---- version ---- */

static int m_version(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {NULL};
  (void)session;
  if (rpc_only(params, allowed, err)) return err->code;
  *result = cJSON_CreateObject();
  cJSON_AddStringToObject(*result, "version", SOTTO_VERSION_STRING);
  cJSON_AddStringToObject(*result, "account", sc_username(D(ud)->sc));
  cJSON_AddBoolToObject(*result, "connected", sc_connected(D(ud)->sc));
  return 0;
}

/* ---- send ---- */

static cJSON *sent_json(const struct sc_sent *s) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "timestamp", (double)s->timestamp_ms);
  cJSON_AddNumberToObject(o, "delivered", s->delivered);
  cJSON_AddNumberToObject(o, "undelivered", s->undelivered);
  if (s->seq) cJSON_AddStringToObject(o, "state", s->queued ? "queued" : "sent");
  return o;
}

static int m_send(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {"recipient", "group", "message", "acceptKeyChange", "quoteTimestamp", NULL};
  struct daemon *d = ud;
  const char **rcpt = NULL, *group, *msg;
  size_t n = 0, i;
  int64_t quote = 0;
  int accept, rc;
  unsigned flags;
  struct sc_sent s;
  (void)session;
  if (rpc_only(params, allowed, err) || rpc_strs(params, "recipient", 0, SC_GROUP_NAME_MAX + 1, &rcpt, &n, err) ||
      rpc_str(params, "group", 0, SC_GROUP_NAME_MAX, &group, err) ||
      rpc_str(params, "message", 1, SC_MAX_TEXT, &msg, err) ||
      rpc_bool(params, "acceptKeyChange", 0, &accept, err) ||
      rpc_int(params, "quoteTimestamp", 0, 0, INT64_C(1) << 53, 0, &quote, err))
    goto fail;
  if (quote && n != 1 && !(n == 0 && group)) {
    rpc_fail(err, RPC_E_PARAMS, "invalid params: 'quoteTimestamp' needs one 'recipient' or a 'group'");
    goto fail;
  }
  if ((n == 0) == (group == NULL)) {
    rpc_fail(err, RPC_E_PARAMS, "invalid params: give either 'recipient' or 'group'");
    goto fail;
  }
  if (n == 1 && rcpt[0][0] == '#') { /* "#GROUP" as the recipient: the group */
    group = rcpt[0] + 1;
    n = 0;
  }
  if (!msg[0]) {
    rpc_fail(err, RPC_E_PARAMS, "invalid params: 'message' is empty");
    goto fail;
  }
  for (i = 0; i < n; i++)
    if (need_user(rcpt[i], "recipient", err)) goto fail;
  if (group && need_group(group, err)) goto fail;
  flags = accept ? SC_SEND_ACCEPT_KEY_CHANGE : 0;
  memset(&s, 0, sizeof s);
  if (group) {
    char conv[SC_GROUP_NAME_MAX + 2];
    snprintf(conv, sizeof conv, "#%s", group); /* a reply in the group when quoteTimestamp is given */
    if ((rc = sc_send_reply(&s, d->sc, conv, (uint64_t)quote, msg, strlen(msg), flags)) != 0 && rc != SC_ERR_PARTIAL) {
      core_fail(d, rc, err);
      goto fail;
    }
    *result = sent_json(&s);
  } else if (n == 1) {
    if ((rc = sc_send_reply(&s, d->sc, rcpt[0], (uint64_t)quote, msg, strlen(msg), flags)) != 0) {
      core_fail(d, rc, err);
      goto fail;
    }
    *result = sent_json(&s);
  } else {
    /* Several recipients: one result each, as signal-cli does. */
    cJSON *results;
    uint64_t ts = 0;
    *result = cJSON_CreateObject();
    results = cJSON_AddArrayToObject(*result, "results");
    for (i = 0; i < n; i++) {
      cJSON *r = cJSON_CreateObject();
      memset(&s, 0, sizeof s);
      rc = sc_send_text(&s, d->sc, rcpt[i], msg, strlen(msg), flags);
      cJSON_AddStringToObject(r, "recipient", rcpt[i]);
      cJSON_AddStringToObject(r, "type", rc ? "FAILURE" : "SUCCESS");
      if (rc) {
        cJSON_AddStringToObject(r, "error", sc_error_name(rc));
        cJSON_AddStringToObject(r, "message",
                                sc_errdetail(d->sc)[0] ? sc_errdetail(d->sc) : sc_error_message(rc));
      } else if (!ts) {
        ts = s.timestamp_ms;
      }
      cJSON_AddItemToArray(results, r);
    }
    cJSON_AddNumberToObject(*result, "timestamp", (double)ts);
  }
  free(rcpt);
  return 0;
fail:
  free(rcpt);
  return err->code;
}

/* ---- contacts and groups ---- */

static int contact_cb(void *ud, const struct sc_contact *ct) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "username", ct->name);
  cJSON_AddBoolToObject(o, "verified", ct->verified);
  cJSON_AddBoolToObject(o, "keyChangedSinceVerified", ct->key_changed_since_verified);
  cJSON_AddNumberToObject(o, "keyChanges", ct->key_changes);
  cJSON_AddBoolToObject(o, "newKeyHeld", ct->new_key_held);
  cJSON_AddNumberToObject(o, "held", ct->held);
  cJSON_AddItemToArray(ud, o);
  return 0;
}

static int m_list_contacts(void *ud, void *session, const cJSON *params, cJSON **result,
                           struct rpc_error *err) {
  static const char *const allowed[] = {NULL};
  int rc;
  (void)session;
  if (rpc_only(params, allowed, err)) return err->code;
  *result = cJSON_CreateArray();
  if ((rc = sc_contacts(D(ud)->sc, contact_cb, *result)) != 0) {
    cJSON_Delete(*result);
    *result = NULL;
    return core_fail(D(ud), rc, err);
  }
  return 0;
}

static cJSON *group_json(const struct sc_group *g) {
  cJSON *o = cJSON_CreateObject(), *m;
  char id[33];
  size_t i;
  hex(id, g->id, sizeof g->id);
  cJSON_AddStringToObject(o, "name", g->name);
  cJSON_AddStringToObject(o, "id", id);
  cJSON_AddNumberToObject(o, "epoch", g->epoch);
  m = cJSON_AddArrayToObject(o, "members");
  for (i = 0; i < g->n_members; i++) cJSON_AddItemToArray(m, cJSON_CreateString(g->members[i]));
  return o;
}

static int group_cb(void *ud, const struct sc_group *g) {
  cJSON_AddItemToArray(ud, group_json(g));
  return 0;
}

static int m_list_groups(void *ud, void *session, const cJSON *params, cJSON **result,
                         struct rpc_error *err) {
  static const char *const allowed[] = {NULL};
  int rc;
  (void)session;
  if (rpc_only(params, allowed, err)) return err->code;
  *result = cJSON_CreateArray();
  if ((rc = sc_groups(D(ud)->sc, group_cb, *result)) != 0) {
    cJSON_Delete(*result);
    *result = NULL;
    return core_fail(D(ud), rc, err);
  }
  return 0;
}

static int m_create_group(void *ud, void *session, const cJSON *params, cJSON **result,
                          struct rpc_error *err) {
  static const char *const allowed[] = {"name", "members", NULL};
  struct daemon *d = ud;
  const char *name, **members = NULL;
  size_t n = 0, i;
  struct sc_sent s;
  struct sc_group g;
  int rc;
  (void)session;
  if (rpc_only(params, allowed, err) || rpc_str(params, "name", 1, SC_GROUP_NAME_MAX, &name, err) ||
      rpc_strs(params, "members", 1, SC_USER_MAX, &members, &n, err))
    goto fail;
  if (need_group(name, err)) goto fail;
  if (n == 0 || n > SC_GROUP_MAX_MEMBERS - 1) {
    rpc_fail(err, RPC_E_PARAMS, "invalid params: 'members' takes 1 to %d usernames",
             SC_GROUP_MAX_MEMBERS - 1);
    goto fail;
  }
  for (i = 0; i < n; i++)
    if (need_user(members[i], "members", err)) goto fail;
  memset(&s, 0, sizeof s);
  rc = sc_group_create(&s, d->sc, name, members, n, 0);
  if (rc != 0 && rc != SC_ERR_PARTIAL) {
    core_fail(d, rc, err);
    goto fail;
  }
  if (sc_group_get(&g, d->sc, name) != 0) {
    rpc_fail(err, RPC_E_INTERNAL, "the group was created but cannot be read back");
    goto fail;
  }
  *result = group_json(&g);
  cJSON_AddNumberToObject(*result, "timestamp", (double)s.timestamp_ms);
  cJSON_AddNumberToObject(*result, "undelivered", s.undelivered);
  free(members);
  return 0;
fail:
  free(members);
  return err->code;
}

static int m_update_group(void *ud, void *session, const cJSON *params, cJSON **result,
                          struct rpc_error *err) {
  static const char *const allowed[] = {"group", "addMembers", "removeMembers", NULL};
  struct daemon *d = ud;
  const char *name, **add = NULL, **del = NULL;
  size_t na = 0, nd = 0, i;
  struct sc_sent s;
  struct sc_group g;
  unsigned undelivered = 0;
  int rc;
  (void)session;
  if (rpc_only(params, allowed, err) || rpc_str(params, "group", 1, SC_GROUP_NAME_MAX, &name, err) ||
      rpc_strs(params, "addMembers", 0, SC_USER_MAX, &add, &na, err) ||
      rpc_strs(params, "removeMembers", 0, SC_USER_MAX, &del, &nd, err))
    goto fail;
  if (need_group(name, err)) goto fail;
  if (na + nd == 0) {
    rpc_fail(err, RPC_E_PARAMS, "invalid params: give 'addMembers' or 'removeMembers'");
    goto fail;
  }
  for (i = 0; i < na; i++)
    if (need_user(add[i], "addMembers", err)) goto fail;
  for (i = 0; i < nd; i++)
    if (need_user(del[i], "removeMembers", err)) goto fail;
  /* One change at a time, each its own group update to every member; a
   * failure stops there (the ones before are done: the answer says so). */
  for (i = 0; i < na + nd; i++) {
    const char *u = i < na ? add[i] : del[i - na];
    memset(&s, 0, sizeof s);
    rc = i < na ? sc_group_add(&s, d->sc, name, u, 0) : sc_group_remove(&s, d->sc, name, u, 0);
    if (rc != 0 && rc != SC_ERR_PARTIAL) {
      core_fail(d, rc, err);
      if (i > 0) {
        size_t l = strlen(err->message);
        snprintf(err->message + l, sizeof err->message - l, " (the %zu change%s before it were made)", i,
                 i == 1 ? "" : "s");
      }
      goto fail;
    }
    undelivered += s.undelivered;
  }
  if (sc_group_get(&g, d->sc, name) == 0) {
    *result = group_json(&g);
  } else {
    *result = cJSON_CreateObject(); /* we removed ourselves: the group is gone */
    cJSON_AddStringToObject(*result, "name", name);
    cJSON_AddBoolToObject(*result, "left", 1);
  }
  cJSON_AddNumberToObject(*result, "undelivered", undelivered);
  free(add);
  free(del);
  return 0;
fail:
  free(add);
  free(del);
  return err->code;
}

/* ---- safety numbers ---- */

static int m_get_safety(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {"recipient", NULL};
  struct daemon *d = ud;
  struct sc_safety sf;
  const char *u;
  char fmt[SC_SAFETY_NUMBER_LEN + SC_SAFETY_NUMBER_LEN / 5 + 1], scan[SC_SCANNABLE_LEN * 2 + 1];
  size_t i, w = 0;
  int rc;
  (void)session;
  if (rpc_only(params, allowed, err) || rpc_str(params, "recipient", 1, SC_USER_MAX, &u, err) ||
      need_user(u, "recipient", err))
    return err->code;
  if ((rc = sc_safety_number(&sf, d->sc, u)) != 0) return core_fail(d, rc, err);
  for (i = 0; i < SC_SAFETY_NUMBER_LEN; i++) {
    if (i && i % 5 == 0) fmt[w++] = ' ';
    fmt[w++] = sf.number[i];
  }
  fmt[w] = 0;
  hex(scan, sf.scannable, SC_SCANNABLE_LEN);
  *result = cJSON_CreateObject();
  cJSON_AddStringToObject(*result, "recipient", u);
  cJSON_AddStringToObject(*result, "safetyNumber", sf.number);
  cJSON_AddStringToObject(*result, "formatted", fmt);
  cJSON_AddStringToObject(*result, "scannable", scan);
  cJSON_AddBoolToObject(*result, "verified", sf.contact.verified);
  cJSON_AddBoolToObject(*result, "newKeyHeld", sf.contact.new_key_held);
  return 0;
}

static int m_verify(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {"recipient", "safetyNumber", NULL};
  struct daemon *d = ud;
  const char *u, *num;
  unsigned released = 0;
  int rc;
  (void)session;
  if (rpc_only(params, allowed, err) || rpc_str(params, "recipient", 1, SC_USER_MAX, &u, err) ||
      rpc_str(params, "safetyNumber", 1, 200, &num, err) || need_user(u, "recipient", err))
    return err->code;
  if ((rc = sc_verify(&released, d->sc, u, num)) != 0) return core_fail(d, rc, err);
  *result = cJSON_CreateObject();
  cJSON_AddStringToObject(*result, "recipient", u);
  cJSON_AddBoolToObject(*result, "verified", 1);
  cJSON_AddNumberToObject(*result, "released", released);
  return 0;
}

static int m_trust(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {"recipient", NULL};
  struct daemon *d = ud;
  const char *u;
  unsigned released = 0;
  int rc;
  (void)session;
  if (rpc_only(params, allowed, err) || rpc_str(params, "recipient", 1, SC_USER_MAX, &u, err) ||
      need_user(u, "recipient", err))
    return err->code;
  if ((rc = sc_trust(&released, d->sc, u)) != 0) return core_fail(d, rc, err);
  *result = cJSON_CreateObject();
  cJSON_AddStringToObject(*result, "recipient", u);
  cJSON_AddNumberToObject(*result, "released", released);
  return 0;
}

static int m_session_reset(void *ud, void *session, const cJSON *params, cJSON **result,
                           struct rpc_error *err) {
  static const char *const allowed[] = {"recipient", "acceptKeyChange", NULL};
  struct daemon *d = ud;
  const char *u;
  int rc, accept;
  (void)session;
  if (rpc_only(params, allowed, err) || rpc_str(params, "recipient", 1, SC_USER_MAX, &u, err) ||
      rpc_bool(params, "acceptKeyChange", 0, &accept, err) || need_user(u, "recipient", err))
    return err->code;
  if ((rc = sc_session_reset(d->sc, u, accept ? SC_SEND_ACCEPT_KEY_CHANGE : 0)) != 0)
    return core_fail(d, rc, err);
  *result = cJSON_CreateObject();
  cJSON_AddStringToObject(*result, "recipient", u);
  return 0;
}

/* ---- history ---- */

/* Entries as JSON, kept in a ring of the newest `limit`. */
struct hist {
  cJSON **ring;
  size_t limit, n, head;
};

/* Conversation fields (issue 14) of a message or of an event about one. */
static void add_convo(cJSON *o, const struct sc_event *ev) {
  size_t i;
  if (ev->kind != SC_EV_MESSAGE && ev->kind != SC_EV_SENT) {
    if (ev->ref_ts) {
      if (ev->ref_author && ev->ref_author[0]) cJSON_AddStringToObject(o, "targetAuthor", ev->ref_author);
      cJSON_AddNumberToObject(o, "targetTimestamp", (double)ev->ref_ts);
    }
    if (ev->kind == SC_EV_TIMER_SET) cJSON_AddNumberToObject(o, "expiration", (double)ev->count);
    if (ev->kind == SC_EV_REACTION) cJSON_AddStringToObject(o, "emoji", ev->detail ? ev->detail : "");
    if (ev->reason == SC_R_BY_US) cJSON_AddBoolToObject(o, "fromMe", 1); /* done on another device of ours */
    return;
  }
  if (ev->ref_author && ev->ref_author[0]) {
    cJSON *q = cJSON_AddObjectToObject(o, "quote");
    cJSON_AddStringToObject(q, "author", ev->ref_author);
    cJSON_AddNumberToObject(q, "id", (double)ev->ref_ts);
  }
  if (ev->timer_s) cJSON_AddNumberToObject(o, "expiresInSeconds", ev->timer_s);
  if (ev->edited) cJSON_AddBoolToObject(o, "edited", 1);
  if (ev->deleted) cJSON_AddBoolToObject(o, "remoteDeleted", 1);
  if (ev->request) cJSON_AddBoolToObject(o, "request", 1);
  if (ev->n_reactions) {
    cJSON *a = cJSON_AddArrayToObject(o, "reactions");
    for (i = 0; a && i < ev->n_reactions; i++) {
      cJSON *r = cJSON_CreateObject();
      cJSON_AddStringToObject(r, "author", ev->reactions[i].user);
      cJSON_AddStringToObject(r, "emoji", ev->reactions[i].emoji);
      cJSON_AddItemToArray(a, r);
    }
  }
}

cJSON *daemon_event_json(const struct sc_event *ev) {
  cJSON *o = cJSON_CreateObject();
  char line[512];
  if (!o) return NULL;
  cJSON_AddStringToObject(o, "event", sc_event_type(ev));
  if (ev->peer && ev->peer[0]) cJSON_AddStringToObject(o, "peer", ev->peer);
  if (ev->group && ev->group[0]) cJSON_AddStringToObject(o, "group", ev->group);
  if (ev->subject && ev->subject[0]) cJSON_AddStringToObject(o, "subject", ev->subject);
  if (ev->timestamp_ms) cJSON_AddNumberToObject(o, "timestamp", (double)ev->timestamp_ms);
  if (ev->seq) cJSON_AddNumberToObject(o, "seq", (double)ev->seq);
  if (ev->error) cJSON_AddStringToObject(o, "error", sc_error_name(ev->error));
  if ((ev->kind == SC_EV_SENT && !(ev->group && ev->group[0])) || ev->kind == SC_EV_DELIVERY)
    cJSON_AddStringToObject(o, "state", sc_state_name(ev->state));
  if (ev->server_id && ev->kind != SC_EV_MESSAGE)
    cJSON_AddNumberToObject(o, "serverId", (double)ev->server_id);
  if (ev->kind == SC_EV_MESSAGE || ev->kind == SC_EV_SENT) {
    add_text(o, "message", ev->text ? ev->text : "", ev->text ? ev->text_len : 0);
  } else {
    /* The sentence may quote a contact's text, cut at the buffer's end. */
    size_t n = sc_event_describe(line, sizeof line, ev);
    add_text(o, "message", line, n < sizeof line ? n : strlen(line));
  }
  add_convo(o, ev);
  return o;
}

static int hist_cb(void *ud, const struct sc_event *ev) {
  struct hist *h = ud;
  cJSON *o = daemon_event_json(ev);
  if (!o) return SC_ERR_NOMEM;
  if (ev->kind == SC_EV_MESSAGE || ev->kind == SC_EV_SENT) {
    cJSON_DeleteItemFromObject(o, "event");
    cJSON_AddStringToObject(o, "direction", ev->kind == SC_EV_MESSAGE ? "in" : "out");
  } else {
    cJSON_AddStringToObject(o, "direction", "event");
  }
  if (h->n == h->limit) {
    cJSON_Delete(h->ring[h->head]);
    h->ring[h->head] = o;
    h->head = (h->head + 1) % h->limit;
  } else {
    h->ring[(h->head + h->n++) % h->limit] = o;
  }
  return 0;
}

static int m_history(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {"recipient", "group", "limit", NULL};
  struct daemon *d = ud;
  const char *u, *g;
  int64_t limit;
  struct hist h;
  size_t i, bytes = 0;
  int rc;
  (void)session;
  if (rpc_only(params, allowed, err) || rpc_str(params, "recipient", 0, SC_USER_MAX, &u, err) ||
      rpc_str(params, "group", 0, SC_GROUP_NAME_MAX, &g, err) ||
      rpc_int(params, "limit", 0, 1, DAEMON_HISTORY_MAX, 100, &limit, err))
    return err->code;
  if (u && g) return rpc_fail(err, RPC_E_PARAMS, "invalid params: give 'recipient' or 'group', not both");
  if ((u && need_user(u, "recipient", err)) || (g && need_group(g, err))) return err->code;
  memset(&h, 0, sizeof h);
  h.limit = (size_t)limit;
  if (!(h.ring = calloc(h.limit, sizeof *h.ring))) return rpc_fail(err, RPC_APP_NOMEM, "out of memory");
  rc = sc_history(d->sc, u ? u : g, hist_cb, &h);
  if (rc != 0) {
    for (i = 0; i < h.n; i++) cJSON_Delete(h.ring[(h.head + i) % h.limit]);
    free(h.ring);
    return rc == SC_ERR_NOMEM ? rpc_fail(err, RPC_APP_NOMEM, "out of memory") : core_fail(d, rc, err);
  }
  /* Newest entries win when the texts are too many bytes for one answer. */
  {
    size_t first = 0;
    for (i = h.n; i-- > 0;) {
      const cJSON *m = cJSON_GetObjectItemCaseSensitive(h.ring[(h.head + i) % h.limit], "message");
      bytes += m && cJSON_IsString(m) ? json_string_len(m->valuestring) + 100 : 100;
      if (bytes > DAEMON_HISTORY_BYTES) {
        first = i + 1;
        break;
      }
    }
    *result = cJSON_CreateArray();
    for (i = 0; i < h.n; i++) {
      cJSON *e = h.ring[(h.head + i) % h.limit];
      if (i < first)
        cJSON_Delete(e);
      else
        cJSON_AddItemToArray(*result, e);
    }
  }
  free(h.ring);
  return 0;
}

/* ---- subscriptions ---- */

static int m_subscribe(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {NULL};
  struct daemon *d = ud;
  struct dclient *cl = session;
  if (rpc_only(params, allowed, err)) return err->code;
  if (!cl->subscription) cl->subscription = ++d->next_subscription;
  *result = cJSON_CreateNumber((double)cl->subscription);
  return 0;
}

static int m_unsubscribe(void *ud, void *session, const cJSON *params, cJSON **result,
                         struct rpc_error *err) {
  static const char *const allowed[] = {"subscription", NULL};
  struct dclient *cl = session;
  int64_t id;
  (void)ud;
  if (rpc_only(params, allowed, err) || rpc_int(params, "subscription", 0, 0, INT64_C(1) << 53, 0, &id, err))
    return err->code;
  if (!cl->subscription || (id && id != cl->subscription))
    return rpc_fail(err, RPC_APP_NOT_FOUND, "no such subscription on this connection");
  cl->subscription = 0;
  *result = cJSON_CreateTrue();
  return 0;
}

/* ---- the "receive" envelope ---- */

cJSON *daemon_envelope(struct daemon *d, const struct sc_event *ev) {
  cJSON *p = cJSON_CreateObject(), *env, *dm;
  if (!p) return NULL;
  cJSON_AddStringToObject(p, "account", sc_username(d->sc));
  env = cJSON_AddObjectToObject(p, "envelope");
  cJSON_AddStringToObject(env, "source", ev->peer);
  cJSON_AddNumberToObject(env, "sourceDevice", ev->device);
  cJSON_AddNumberToObject(env, "timestamp", (double)ev->timestamp_ms);
  /* timestamp: the sender's; serverTimestamp: when the server took the
   * envelope; serverDeliveredTimestamp: when it reached this daemon. */
  cJSON_AddNumberToObject(env, "serverTimestamp", (double)ev->server_timestamp_ms);
  cJSON_AddNumberToObject(env, "serverDeliveredTimestamp", (double)sc_now_ms());
  cJSON_AddNumberToObject(env, "serverId", (double)ev->server_id);
  dm = cJSON_AddObjectToObject(env, "dataMessage");
  cJSON_AddNumberToObject(dm, "timestamp", (double)ev->timestamp_ms);
  add_text(dm, "message", ev->text ? ev->text : "", ev->text ? ev->text_len : 0);
  add_convo(dm, ev);
  if (ev->group && ev->group[0]) {
    cJSON *gi = cJSON_AddObjectToObject(dm, "groupInfo");
    struct sc_group g;
    cJSON_AddStringToObject(gi, "groupName", ev->group);
    if (sc_group_get(&g, d->sc, ev->group) == 0) {
      char id[33];
      hex(id, g.id, sizeof g.id);
      cJSON_AddStringToObject(gi, "groupId", id);
    }
    cJSON_AddStringToObject(gi, "type", "DELIVER");
  }
  return p;
}

/* ---- backup ---- */

/* The store the daemon holds, written to an encrypted backup file (the CLI's
 * 'sotto backup' cannot open a home a daemon holds). Argon2id runs here, so
 * the daemon answers nothing else for about a second. */
static int m_backup(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {"file", "passphrase", "recoveryKey", NULL};
  struct daemon *d = ud;
  const char *file, *pass = NULL;
  char key[SC_RECOVERY_KEY_LEN + 1];
  int rk = 0, rc;
  (void)session;
  if (rpc_only(params, allowed, err) || rpc_str(params, "file", 1, 4000, &file, err) ||
      rpc_str(params, "passphrase", 0, SC_MAX_PASSPHRASE - 1, &pass, err) ||
      rpc_bool(params, "recoveryKey", 0, &rk, err))
    return err->code;
  if (file[0] != '/') return rpc_fail(err, RPC_E_PARAMS, "invalid params: 'file' must be an absolute path");
  if (!rk == !pass)
    return rpc_fail(err, RPC_E_PARAMS, "invalid params: give 'passphrase' or \"recoveryKey\": true, not both");
  if (rk) {
    sc_recovery_key_new(key);
    rc = sc_backup(d->sc, file, key, strlen(key), 1);
  } else {
    rc = sc_backup(d->sc, file, pass, strlen(pass), 0);
  }
  if (rc != 0) {
    sodium_memzero(key, sizeof key);
    return core_fail(d, rc, err);
  }
  *result = cJSON_CreateObject();
  cJSON_AddStringToObject(*result, "file", file);
  if (rk) cJSON_AddStringToObject(*result, "recoveryKey", key);
  sodium_memzero(key, sizeof key);
  return 0;
}

/* ---- conversations (issue 14; docs/client.md "Conversations") ---- */

/* The conversation of setExpiration, sendReaction, editMessage,
 * remoteDelete: either 'recipient' or 'group' (the core's "#GROUP"). */
struct conv_arg {
  const char *u, *g;
  char conv[SC_GROUP_NAME_MAX + 2];
};

static int conv_params(const cJSON *params, struct conv_arg *a, struct rpc_error *err) {
  if (rpc_str(params, "recipient", 0, SC_USER_MAX, &a->u, err) ||
      rpc_str(params, "group", 0, SC_GROUP_NAME_MAX, &a->g, err))
    return err->code;
  if (!a->u == !a->g) return rpc_fail(err, RPC_E_PARAMS, "invalid params: give either 'recipient' or 'group'");
  if (a->u ? need_user(a->u, "recipient", err) : need_group(a->g, err)) return err->code;
  snprintf(a->conv, sizeof a->conv, "%s%s", a->g ? "#" : "", a->u ? a->u : a->g);
  return 0;
}

static void conv_result(cJSON *o, const struct conv_arg *a, const struct daemon *d) {
  cJSON_AddStringToObject(o, a->u ? "recipient" : "group", a->u ? a->u : a->g);
  if (sc_change_queued(d->sc)) cJSON_AddBoolToObject(o, "queued", 1);
}

static int m_set_timer(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {"recipient", "group", "expiration", NULL};
  struct daemon *d = ud;
  struct conv_arg a;
  int64_t secs;
  int rc;
  (void)session;
  memset(&a, 0, sizeof a);
  if (rpc_only(params, allowed, err) || conv_params(params, &a, err) ||
      rpc_int(params, "expiration", 1, 0, SC_TIMER_MAX_S, 0, &secs, err))
    return err->code;
  if ((rc = sc_set_timer(d->sc, a.conv, (uint32_t)secs, 0)) != 0) return core_fail(d, rc, err);
  *result = cJSON_CreateObject();
  conv_result(*result, &a, d);
  cJSON_AddNumberToObject(*result, "expiration", (double)secs);
  return 0;
}

/* sendReaction, editMessage, remoteDelete: recipient or group, and targetTimestamp. */
static int target_params(const cJSON *params, const char *const *allowed, struct conv_arg *a, int64_t *ts,
                         struct rpc_error *err) {
  memset(a, 0, sizeof *a);
  if (rpc_only(params, allowed, err) || conv_params(params, a, err) ||
      rpc_int(params, "targetTimestamp", 1, 1, INT64_C(1) << 53, 0, ts, err))
    return err->code;
  return 0;
}

static cJSON *target_result(const struct conv_arg *a, int64_t ts, const struct daemon *d) {
  cJSON *o = cJSON_CreateObject();
  conv_result(o, a, d);
  cJSON_AddNumberToObject(o, "targetTimestamp", (double)ts);
  return o;
}

static int m_react(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {"recipient", "group", "targetTimestamp", "emoji", "remove", NULL};
  struct daemon *d = ud;
  struct conv_arg a;
  const char *emoji;
  int64_t ts;
  int rc, remove;
  (void)session;
  if (target_params(params, allowed, &a, &ts, err) || rpc_str(params, "emoji", 0, 32, &emoji, err) ||
      rpc_bool(params, "remove", 0, &remove, err))
    return err->code;
  if (!remove && (!emoji || !emoji[0]))
    return rpc_fail(err, RPC_E_PARAMS, "invalid params: give 'emoji' or \"remove\": true");
  if ((rc = sc_react(d->sc, a.conv, (uint64_t)ts, remove ? "" : emoji, 0)) != 0) return core_fail(d, rc, err);
  *result = target_result(&a, ts, d);
  return 0;
}

static int m_edit(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {"recipient", "group", "targetTimestamp", "message", NULL};
  struct daemon *d = ud;
  struct conv_arg a;
  const char *msg;
  int64_t ts;
  int rc;
  (void)session;
  if (target_params(params, allowed, &a, &ts, err) || rpc_str(params, "message", 1, SC_MAX_TEXT, &msg, err))
    return err->code;
  if ((rc = sc_edit(d->sc, a.conv, (uint64_t)ts, msg, strlen(msg), 0)) != 0) return core_fail(d, rc, err);
  *result = target_result(&a, ts, d);
  return 0;
}

static int m_remote_delete(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {"recipient", "group", "targetTimestamp", NULL};
  struct daemon *d = ud;
  struct conv_arg a;
  int64_t ts;
  int rc;
  (void)session;
  if (target_params(params, allowed, &a, &ts, err)) return err->code;
  if ((rc = sc_delete_for_all(d->sc, a.conv, (uint64_t)ts, 0)) != 0) return core_fail(d, rc, err);
  *result = target_result(&a, ts, d);
  return 0;
}

static int m_delete_history(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {"recipient", "group", "timestamp", NULL};
  struct daemon *d = ud;
  const char *u, *g;
  int64_t ts;
  unsigned n = 0;
  int rc;
  (void)session;
  if (rpc_only(params, allowed, err) || rpc_str(params, "recipient", 0, SC_USER_MAX, &u, err) ||
      rpc_str(params, "group", 0, SC_GROUP_NAME_MAX, &g, err) ||
      rpc_int(params, "timestamp", 0, 0, INT64_C(1) << 53, 0, &ts, err))
    return err->code;
  if (!u == !g) return rpc_fail(err, RPC_E_PARAMS, "invalid params: give either 'recipient' or 'group'");
  if ((rc = sc_history_delete(&n, d->sc, u ? u : g, (uint64_t)ts)) != 0) return core_fail(d, rc, err);
  *result = cJSON_CreateObject();
  cJSON_AddNumberToObject(*result, "deleted", n);
  return 0;
}

static int request_cb(void *ud, const char *user, unsigned n) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "username", user);
  cJSON_AddNumberToObject(o, "messages", n);
  cJSON_AddItemToArray(ud, o);
  return 0;
}

static int m_list_requests(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {NULL};
  struct daemon *d = ud;
  int rc;
  (void)session;
  if (rpc_only(params, allowed, err)) return err->code;
  *result = cJSON_CreateArray();
  if ((rc = sc_requests(d->sc, request_cb, *result)) != 0) {
    cJSON_Delete(*result);
    *result = NULL;
    return core_fail(d, rc, err);
  }
  return 0;
}

/* acceptRequest, deleteRequest, block, unblock: one recipient. */
static int consent_call(void *ud, const cJSON *params, cJSON **result, struct rpc_error *err, int what) {
  static const char *const allowed[] = {"recipient", NULL};
  struct daemon *d = ud;
  const char *u;
  int rc;
  if (rpc_only(params, allowed, err) || rpc_str(params, "recipient", 1, SC_USER_MAX, &u, err) ||
      need_user(u, "recipient", err))
    return err->code;
  rc = what == 0 ? sc_request_accept(d->sc, u) : what == 1 ? sc_request_delete(d->sc, u) : sc_block(d->sc, u, what == 2);
  if (rc != 0) return core_fail(d, rc, err);
  *result = cJSON_CreateObject();
  cJSON_AddStringToObject(*result, "recipient", u);
  return 0;
}

static int m_accept_request(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  (void)session;
  return consent_call(ud, params, result, err, 0);
}
static int m_delete_request(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  (void)session;
  return consent_call(ud, params, result, err, 1);
}
static int m_block(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  (void)session;
  return consent_call(ud, params, result, err, 2);
}
static int m_unblock(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  (void)session;
  return consent_call(ud, params, result, err, 3);
}

/* sendAttachment: one file to one user, or to a group ('group', or a
 * 'recipient' of the form "#GROUP"; attach.c), the message its caption. */
static int m_send_attachment(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {"recipient", "group", "path", "name", "type", "message", "acceptKeyChange",
                                        NULL};
  struct daemon *d = ud;
  const char *rcpt, *group, *path, *name, *type, *msg;
  char conv[SC_GROUP_NAME_MAX + 2];
  int accept, rc;
  struct sc_sent s;
  (void)session;
  if (rpc_only(params, allowed, err) || rpc_str(params, "recipient", 0, SC_GROUP_NAME_MAX + 1, &rcpt, err) ||
      rpc_str(params, "group", 0, SC_GROUP_NAME_MAX, &group, err) ||
      rpc_str(params, "path", 1, 4095, &path, err) || rpc_str(params, "name", 0, SC_ATTACH_NAME_MAX, &name, err) ||
      rpc_str(params, "type", 0, SC_ATTACH_TYPE_MAX, &type, err) ||
      rpc_str(params, "message", 0, SC_MAX_TEXT, &msg, err) || rpc_bool(params, "acceptKeyChange", 0, &accept, err))
    return err->code;
  if ((rcpt == NULL) == (group == NULL))
    return rpc_fail(err, RPC_E_PARAMS, "invalid params: give either 'recipient' or 'group'");
  if (rcpt && rcpt[0] == '#') group = rcpt + 1;
  if (group) {
    if (need_group(group, err)) return err->code;
    snprintf(conv, sizeof conv, "#%s", group);
    rcpt = conv;
  } else if (need_user(rcpt, "recipient", err)) {
    return err->code;
  }
  memset(&s, 0, sizeof s);
  rc = sc_send_file(&s, d->sc, rcpt, path, name, type, msg, msg ? strlen(msg) : 0,
                    accept ? SC_SEND_ACCEPT_KEY_CHANGE : 0);
  /* A group: sent to some members is a result (sent_json says how many). */
  if (rc != 0 && !(group && rc == SC_ERR_PARTIAL)) return core_fail(d, rc, err);
  *result = sent_json(&s);
  return 0;
}

/* ---- devices (docs/multi-device.md) ---- */

static int m_devices(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {NULL};
  struct sc_device_info dv[SC_MAX_DEVICES];
  uint32_t version = 0;
  size_t n = 0, i;
  int rc;
  (void)session;
  if (rpc_only(params, allowed, err)) return err->code;
  if ((rc = sc_devices_info(dv, &n, SC_MAX_DEVICES, &version, D(ud)->sc)) != 0) return core_fail(D(ud), rc, err);
  *result = cJSON_CreateArray();
  for (i = 0; i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "deviceId", dv[i].device_id);
    cJSON_AddBoolToObject(o, "thisDevice", dv[i].this_device);
    cJSON_AddBoolToObject(o, "listed", dv[i].listed);
    cJSON_AddBoolToObject(o, "onServer", dv[i].has_row);
    if (dv[i].listed) {
      cJSON_AddStringToObject(o, "name", dv[i].name);
      cJSON_AddNumberToObject(o, "addedMs", (double)dv[i].added_ms);
      cJSON_AddStringToObject(o, "fingerprint", dv[i].fingerprint);
      cJSON_AddNumberToObject(o, "listVersion", version);
    }
    if (dv[i].last_seen_day) {
      char seen[16];
      time_t t = (time_t)dv[i].last_seen_day * 86400;
      struct tm tm;
      if (gmtime_r(&t, &tm) && strftime(seen, sizeof seen, "%Y-%m-%d", &tm))
        cJSON_AddStringToObject(o, "lastSeen", seen);
    }
    cJSON_AddItemToArray(*result, o);
  }
  return 0;
}

/* devicesAdd: a script has no terminal to confirm on; it may pass the
 * fingerprint the new device showed, and then nothing is added unless it
 * matches. Answers at once with a job id once the provisioning message is
 * in the slot; the daemon keeps serving requests while the new device
 * answers (at most timeout seconds, default 120) and then sends the
 * client deviceAdded or deviceAddFailed (daemon_jobs_step). */
static int m_devices_add(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {"code", "fingerprint", "timeout", NULL};
  struct daemon *d = ud;
  struct sc_link_peer peer;
  struct daemon_add_job *j = NULL;
  const char *code, *fp = NULL;
  size_t i;
  int64_t timeout = 120;
  int rc;
  (void)session;
  if (rpc_only(params, allowed, err) || rpc_str(params, "code", 1, SC_LINK_CODE_MAX, &code, err) ||
      rpc_str(params, "fingerprint", 0, SC_FINGERPRINT_LEN + 8, &fp, err) ||
      rpc_int(params, "timeout", 0, 1, 600, 120, &timeout, err))
    return err->code;
  if ((rc = sc_devices_peek(&peer, d->sc, code)) != 0) return core_fail(d, rc, err);
  if (fp && strcmp(fp, peer.fingerprint) != 0)
    return rpc_fail(err, RPC_APP_REFUSED, "the new device's fingerprint is %s, not the one given: nothing was added",
                    peer.fingerprint);
  for (i = 0; i < DAEMON_MAX_ADD_JOBS && !j; i++)
    if (!d->jobs[i].job) j = &d->jobs[i];
  if (!j)
    return rpc_fail(err, RPC_APP_REFUSED, "%d device additions are waiting already: wait for their deviceAdded or "
                                          "deviceAddFailed",
                    DAEMON_MAX_ADD_JOBS);
  if ((rc = sc_devices_add_begin(&j->job, d->sc, code, &peer, (int)timeout * 1000)) != 0)
    return core_fail(d, rc, err);
  j->id = ++d->next_job;
  j->cl = d->current;
  j->next_at = sc_monotonic_ms() + DAEMON_ADD_POLL_MS;
  snprintf(j->fingerprint, sizeof j->fingerprint, "%s", peer.fingerprint);
  *result = cJSON_CreateObject();
  cJSON_AddNumberToObject(*result, "jobId", j->id);
  cJSON_AddNumberToObject(*result, "deviceId", sc_devices_add_device_id(j->job));
  cJSON_AddStringToObject(*result, "name", peer.name);
  cJSON_AddStringToObject(*result, "fingerprint", peer.fingerprint);
  cJSON_AddBoolToObject(*result, "pending", 1);
  return 0;
}

static int m_devices_remove(void *ud, void *session, const cJSON *params, cJSON **result,
                            struct rpc_error *err) {
  static const char *const allowed[] = {"deviceId", NULL};
  int64_t id = 0;
  int rc;
  (void)session;
  if (rpc_only(params, allowed, err) || rpc_int(params, "deviceId", 1, 1, 0x7FFFFFFF, 0, &id, err))
    return err->code;
  if ((rc = sc_device_remove(D(ud)->sc, (uint32_t)id)) != 0) return core_fail(D(ud), rc, err);
  *result = cJSON_CreateObject();
  cJSON_AddNumberToObject(*result, "deviceId", (double)id);
  return 0;
}

static const char *kt_mon_name(int m) {
  return m == 1 ? "ok" : m == 2 ? "alert" : m == 3 ? "failed" : "none";
}

/* ktStatus: what `sotto kt status --json` shows; refresh (default false)
 * checks the head and monitors this account first (the daemon also
 * monitors at every connect and daily). */
static int m_kt_status(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {"refresh", NULL};
  struct sc_kt_status st;
  cJSON *ws;
  int refresh = 0, rc;
  size_t i;
  (void)session;
  if (rpc_only(params, allowed, err) || rpc_bool(params, "refresh", 0, &refresh, err)) return err->code;
  if ((rc = sc_kt_status(&st, D(ud)->sc, refresh)) != 0) return core_fail(D(ud), rc, err);
  *result = cJSON_CreateObject();
  cJSON_AddStringToObject(*result, "state", st.off && !st.pinned ? "off" : st.pinned ? "on" : "unknown");
  cJSON_AddBoolToObject(*result, "required", st.required);
  cJSON_AddNumberToObject(*result, "k", st.k);
  cJSON_AddBoolToObject(*result, "checkedNow", st.refreshed);
  if (st.has_head) {
    cJSON_AddNumberToObject(*result, "size", (double)st.size);
    cJSON_AddNumberToObject(*result, "timestampMs", (double)st.timestamp_ms);
    cJSON_AddStringToObject(*result, "root", st.root_hex);
  }
  if (st.pinned) cJSON_AddStringToObject(*result, "logKey", st.log_hex);
  ws = cJSON_AddArrayToObject(*result, "witnesses");
  for (i = 0; ws && i < st.n_wit; i++) {
    cJSON *w = cJSON_CreateObject();
    cJSON_AddStringToObject(w, "name", st.wit[i].name);
    cJSON_AddStringToObject(w, "key", st.wit[i].pk_hex);
    cJSON_AddStringToObject(w, "source", st.wit[i].added ? "added" : "server");
    cJSON_AddNumberToObject(w, "lastCosignedSize", (double)st.wit[i].last_size);
    cJSON_AddItemToArray(ws, w);
  }
  cJSON_AddStringToObject(*result, "monitor", kt_mon_name(st.monitor));
  cJSON_AddNumberToObject(*result, "monitorTime", (double)st.monitor_time);
  cJSON_AddStringToObject(*result, "monitorDetail", st.monitor_detail);
  cJSON_AddBoolToObject(*result, "monitorAcknowledged", st.monitor_acked);
  cJSON_AddStringToObject(*result, "deviceListMonitor", kt_mon_name(st.list_monitor));
  cJSON_AddStringToObject(*result, "deviceListDetail", st.list_detail);
  cJSON_AddBoolToObject(*result, "deviceListAcknowledged", st.list_acked);
  return 0;
}

/* ktAck: `sotto kt ack`; {"acknowledged": 1-2}, or an error when no alert
 * is pending. */
static int m_kt_ack(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {NULL};
  int rc;
  (void)session;
  if (rpc_only(params, allowed, err)) return err->code;
  if ((rc = sc_kt_ack(D(ud)->sc)) < 0) return core_fail(D(ud), rc, err);
  *result = cJSON_CreateObject();
  cJSON_AddNumberToObject(*result, "acknowledged", rc);
  return 0;
}

const struct rpc_method daemon_methods[] = {
    {"version", m_version},
    {"send", m_send},
    {"sendAttachment", m_send_attachment},
    {"listContacts", m_list_contacts},
    {"listGroups", m_list_groups},
    {"createGroup", m_create_group},
    {"updateGroup", m_update_group},
    {"getSafetyNumber", m_get_safety},
    {"verify", m_verify},
    {"trust", m_trust},
    {"sessionReset", m_session_reset},
    {"history", m_history},
    {"subscribeReceive", m_subscribe},
    {"unsubscribeReceive", m_unsubscribe},
    {"backup", m_backup},
    /* conversations (issue 14) */
    {"setExpirationTimer", m_set_timer},
    {"sendReaction", m_react},
    {"editMessage", m_edit},
    {"remoteDelete", m_remote_delete},
    {"deleteHistory", m_delete_history},
    {"listRequests", m_list_requests},
    {"acceptRequest", m_accept_request},
    {"deleteRequest", m_delete_request},
    {"block", m_block},
    {"unblock", m_unblock},
    /* devices (issue 11) */
    {"devices", m_devices},
    {"devicesAdd", m_devices_add},
    {"devicesRemove", m_devices_remove},
    /* key transparency (issue 12) */
    {"ktStatus", m_kt_status},
    {"ktAck", m_kt_ack},
};
const size_t daemon_n_methods = sizeof daemon_methods / sizeof daemon_methods[0];
