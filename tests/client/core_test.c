/* SPDX-License-Identifier: Apache-2.0 */
/* core_test.c: unit tests of the client core (ctest client_core_unit),
 * in-process, without a server: envelopes are made with libsotto from
 * senders' identities and a bundle of the recipient's stored pre-keys, and
 * handed to the inbox as the link would.
 *
 *  - the error table: every code has a name, a message and a hint; names
 *    are unique and map back to their code;
 *  - the message log: a version 2 event row round-trips every field; a
 *    version 1 row (an English sentence) still reads, as SC_EV_NOTICE;
 *    malformed rows are refused;
 *  - inbox transitions: a new session (trust on first use), a duplicate
 *    (same server id, and the same ciphertext again), a message from another
 *    identity key under a known name (held in quarantine, nothing applied),
 *    released by sc_trust, unreadable envelopes (garbage, a bad sender name,
 *    an unknown type) dropped with an event;
 *  - group rules: joining needs the sender and us in the member list, only
 *    members change a group, only forwards (epochs), being removed deletes
 *    the group. */
#define _GNU_SOURCE /* memmem */
#include <sodium.h>
#include <sotto/devlist.h>
#include <sotto/keys.h>
#include <sotto/session.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "account.h"
#include "backup.h"
#include "devices.h"
#include "record.h"
#include "contact.h"
#include "outbox.h"
#include "content.h"
#include "core.h"
#include "grp.h"
#include "kt.h"
#include "messaging.h"
#include "msglog.h"
#include "provision.h"

static int fails, checks;

#define CHECK(cond, what)                                   \
  do {                                                      \
    checks++;                                               \
    if (cond) {                                             \
      printf("ok   %s\n", what);                            \
    } else {                                                \
      fails++;                                              \
      printf("FAIL %s (%s:%d)\n", what, __FILE__, __LINE__); \
    }                                                       \
  } while (0)

/* ---- events seen by the sink ------------------------------------------------- */

#define MAX_SEEN 64
struct seen {
  int n;
  int kind[MAX_SEEN], reason[MAX_SEEN];
  char peer[MAX_SEEN][SC_USER_MAX + 1], group[MAX_SEEN][SC_GROUP_NAME_MAX + 1], text[MAX_SEEN][256];
  char line[MAX_SEEN][512];
  uint64_t count[MAX_SEEN];
};

static void sink(void *ud, const struct sc_event *ev) {
  struct seen *s = ud;
  if (s->n == MAX_SEEN) return;
  s->kind[s->n] = ev->kind;
  s->reason[s->n] = ev->reason;
  s->count[s->n] = ev->count;
  snprintf(s->peer[s->n], sizeof s->peer[0], "%s", ev->peer);
  snprintf(s->group[s->n], sizeof s->group[0], "%s", ev->group);
  snprintf(s->text[s->n], sizeof s->text[0], "%.*s", (int)(ev->text_len < 255 ? ev->text_len : 255), ev->text);
  sc_event_describe(s->line[s->n], sizeof s->line[0], ev);
  s->n++;
}

/* A passphrase that passes the strength rule (sc_passphrase_strength). */
#define TPASS "core test passphrase", 20

/* ---- error table --------------------------------------------------------------- */

static void test_errors(void) {
  int e, f, all = 1, unique = 1, back = 1;
  for (e = SC_ERR_FIRST; e >= SC_ERR_LAST; e--) {
    const char *n = sc_error_name(e), *m = sc_error_message(e), *h = sc_error_hint(e);
    /* -54 and -55 are not used. */
    if (e < SC_ERR_IN_USE && e > SC_ERR_WEAK_PASSPHRASE && strcmp(n, "unknown") == 0) continue;
    /* -64..-76: other features' codes (not in this branch). */
    if (e < SC_ERR_QUARANTINED && e > SC_ERR_NOT_YOURS && strcmp(n, "unknown") == 0) continue;
    /* -91..-95: other features' codes (not in this branch). */
    if (e < SC_ERR_DEVICE_HIDDEN && e > SC_ERR_KT_LIST_HIDDEN && strcmp(n, "unknown") == 0) continue;
    if (!n || !m || !h || !n[0] || !m[0] || !h[0] || strcmp(n, "unknown") == 0) {
      printf("     code %d lacks a name, message or hint\n", e);
      all = 0;
    }
    if (sc_error_from_name(n) != e) back = 0;
    for (f = e - 1; f >= SC_ERR_LAST; f--)
      if (strcmp(n, sc_error_name(f)) == 0 && strcmp(n, "unknown") != 0) {
        printf("     codes %d and %d share the name %s\n", e, f, n);
        unique = 0;
      }
  }
  CHECK(strcmp(sc_error_name(SC_ERR_NOT_TLS), "not_tls") == 0 && strcmp(sc_error_name(SC_ERR_NOT_SOTTO), "not_sotto") == 0 &&
            strcmp(sc_error_name(SC_ERR_PIN_MISMATCH), "pin_mismatch") == 0 &&
            strcmp(sc_error_name(SC_ERR_CERT_UNTRUSTED), "cert_untrusted") == 0,
        "errors: the first-contact codes have their names");
  CHECK(all, "errors: every code has a name, a message and a hint");
  CHECK(unique, "errors: names are unique");
  CHECK(back, "errors: sc_error_from_name maps each name back to its code");
  CHECK(strcmp(sc_error_name(0), "ok") == 0 && sc_error_from_name("ok") == 0, "errors: 0 is \"ok\"");
  CHECK(strcmp(sc_error_name(SC_ERR_LAST - 1), "unknown") == 0 && strcmp(sc_error_name(5), "unknown") == 0,
        "errors: codes outside the table are \"unknown\"");
  CHECK(sc_error_from_name("no such name") == SC_ERR_INTERNAL && sc_error_from_name(NULL) == SC_ERR_INTERNAL,
        "errors: an unknown name gives SC_ERR_INTERNAL");
  CHECK(strcmp(sc_error_name(SC_ERR_BUSY), "busy") == 0 && strcmp(sc_error_name(SC_ERR_IDENTITY_CHANGED),
                                                                  "identity_changed") == 0,
        "errors: the names the CLI's JSON always used stay (busy, identity_changed)");
}

/* ---- events ------------------------------------------------------------------------ */

static void test_events(void) {
  struct sc_event ev;
  char line[512];
  int k, named = 1, said = 1;
  memset(&ev, 0, sizeof ev);
  ev.peer = "alice";
  ev.group = "team";
  ev.subject = "carol";
  ev.detail = "why";
  ev.text = "hello";
  ev.text_len = 5;
  for (k = SC_EV_MESSAGE; k <= SC_EV_DEVICE_HELD; k++) {
    ev.kind = k;
    if (strcmp(sc_event_name(k), "unknown") == 0) named = 0;
    if (sc_event_describe(line, sizeof line, &ev) == 0 || strncmp(line, "unknown event", 13) == 0) said = 0;
  }
  CHECK(named, "events: every kind has a name");
  CHECK(said, "events: every kind has a sentence");
  ev.kind = SC_EV_DEVICE_HELD + 1;
  CHECK(strcmp(sc_event_name(ev.kind), "unknown") == 0, "events: a kind outside the list is unknown");
  /* The JSON names the CLI always printed for logged notices. */
  ev.kind = SC_EV_GROUP_REMOVED;
  CHECK(strcmp(sc_event_type(&ev), "group") == 0, "events: group changes are \"group\"");
  ev.kind = SC_EV_UNREADABLE_SUMMARY;
  CHECK(strcmp(sc_event_type(&ev), "unreadable") == 0, "events: unreadable summaries are \"unreadable\"");
  ev.kind = SC_EV_HELD_DROPPED;
  CHECK(strcmp(sc_event_type(&ev), "held") == 0, "events: held messages are \"held\"");
  /* The sentence is cut to the buffer and the needed length returned. */
  ev.kind = SC_EV_GROUP_ADDED;
  {
    char small[8];
    size_t need = sc_event_describe(small, sizeof small, &ev);
    CHECK(need == strlen("alice added carol to the group team") && strlen(small) == 7,
          "events: a short buffer gets a cut sentence and the length needed");
  }
}

/* ---- message log format -------------------------------------------------------- */

static void test_msglog(void) {
  struct msg *m = calloc(1, sizeof *m), *r = calloc(1, sizeof *r);
  struct rec_wr w;
  struct sc_event ev;
  const char *members[GROUP_MAX_MEMBERS];
  char line[512];
  int rc;

  m->dir = MSG_EVENT;
  m->kind = SC_EV_GROUP_JOINED;
  m->reason = SC_R_NONE;
  snprintf(m->peer, sizeof m->peer, "alice");
  snprintf(m->group, sizeof m->group, "team");
  snprintf(m->subject, sizeof m->subject, "carol");
  snprintf(m->detail, sizeof m->detail, "why not");
  m->ts = 1700000000123ull;
  m->server_id = 77;
  m->count = 5;
  m->total = 9;
  m->device = 3;
  m->server_ts = 1700000000999ull;
  m->n_members = 3;
  snprintf(m->members[0], sizeof m->members[0], "alice");
  snprintf(m->members[1], sizeof m->members[1], "bob");
  snprintf(m->members[2], sizeof m->members[2], "carol");
  m->text = (char *)"";
  rec_wr_init(&w, 1 << 16);
  CHECK(msglog_encode(&w, m) == 0, "msglog: an event row encodes");
  rc = msglog_decode(r, w.p, w.len);
  CHECK(rc == 0 && r->dir == MSG_EVENT && r->kind == SC_EV_GROUP_JOINED && r->reason == SC_R_NONE &&
            !strcmp(r->peer, "alice") && !strcmp(r->group, "team") && !strcmp(r->subject, "carol") &&
            !strcmp(r->detail, "why not") && r->ts == m->ts && r->server_id == 77 && r->count == 5 &&
            r->total == 9 && r->device == 3 && r->server_ts == 1700000000999ull && r->n_members == 3 && !strcmp(r->members[2], "carol") && r->text_len == 0,
        "msglog: a version 2 event row round-trips every field");
  msglog_to_event(r, &ev, members);
  sc_event_describe(line, sizeof line, &ev);
  CHECK(strcmp(line, "alice added you to the group team (members: alice, bob, carol)") == 0,
        "msglog: the event's sentence is made when shown");
  CHECK(strcmp(sc_event_type(&ev), "group") == 0 && sc_event_is_group_notice(ev.kind), "msglog: ... a group notice");
  CHECK(memmem(w.p, w.len, "added you", 9) == NULL, "msglog: the stored row holds no English sentence");
  msg_clear(r);
  /* Every prefix of the row is refused (bounded reader, nothing left over). */
  {
    size_t i;
    int all = 1;
    for (i = 0; i < w.len; i++)
      if (msglog_decode(r, w.p, i) == 0) all = 0;
    CHECK(all, "msglog: every truncation of a row is refused");
  }
  rec_wr_free(&w);

  /* A text message, version 2. */
  memset(m, 0, sizeof *m);
  m->dir = MSG_IN;
  snprintf(m->peer, sizeof m->peer, "bob");
  m->ts = 42;
  m->server_id = 9;
  m->text = (char *)"hello there";
  m->text_len = 11;
  rec_wr_init(&w, 1 << 16);
  rc = msglog_encode(&w, m) || msglog_decode(r, w.p, w.len);
  msglog_to_event(r, &ev, members);
  CHECK(rc == 0 && ev.kind == SC_EV_MESSAGE && ev.text_len == 11 && !memcmp(ev.text, "hello there", 11) &&
            ev.server_id == 9,
        "msglog: a message row round-trips as SC_EV_MESSAGE");
  msg_clear(r);
  rec_wr_free(&w);

  /* Version 1 (before the core): u8 1 | dir | code | peer | group | ts | sid | text. */
  rec_wr_init(&w, 1 << 16);
  rec_put_u8(&w, 1);
  rec_put_u8(&w, MSG_EVENT);
  rec_put_u8(&w, NOTICE_GROUP);
  rec_put_str16(&w, "alice", 5);
  rec_put_str16(&w, "team", 4);
  rec_put_u64(&w, 1234);
  rec_put_u64(&w, 0);
  rec_put_str16(&w, "alice removed carol from the group team", 39);
  rc = msglog_decode(r, w.p, w.len);
  msglog_to_event(r, &ev, members);
  sc_event_describe(line, sizeof line, &ev);
  CHECK(rc == 0 && ev.kind == SC_EV_NOTICE && ev.reason == NOTICE_GROUP && !strcmp(ev.peer, "alice") &&
            !strcmp(ev.group, "team") && ev.timestamp_ms == 1234,
        "msglog: a version 1 event row (an English sentence) still reads, as SC_EV_NOTICE");
  CHECK(strcmp(line, "alice removed carol from the group team") == 0 && strcmp(sc_event_type(&ev), "group") == 0,
        "msglog: ... and shows its sentence as stored, under its old name");
  msg_clear(r);
  rec_wr_free(&w);
  rec_wr_init(&w, 1 << 16);
  rec_put_u8(&w, 1);
  rec_put_u8(&w, MSG_IN);
  rec_put_u8(&w, 0);
  rec_put_str16(&w, "bob", 3);
  rec_put_str16(&w, "", 0);
  rec_put_u64(&w, 5);
  rec_put_u64(&w, 6);
  rec_put_str16(&w, "old text", 8);
  rc = msglog_decode(r, w.p, w.len);
  msglog_to_event(r, &ev, members);
  CHECK(rc == 0 && ev.kind == SC_EV_MESSAGE && ev.text_len == 8 && ev.server_id == 6,
        "msglog: a version 1 message row reads as SC_EV_MESSAGE");
  msg_clear(r);
  rec_wr_free(&w);

  /* Malformed: unknown version, a direction out of range, too many members. */
  {
    uint8_t bad3[] = {9, 0, 0};
    uint8_t dir9[] = {1, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK(msglog_decode(r, bad3, sizeof bad3) == STORE_E_CORRUPT, "msglog: an unknown version is refused");
    CHECK(msglog_decode(r, dir9, sizeof dir9) == STORE_E_CORRUPT, "msglog: a direction out of range is refused");
  }
  rec_wr_init(&w, 1 << 16);
  rec_put_u8(&w, 2);
  rec_put_u8(&w, MSG_EVENT);
  rec_put_u8(&w, SC_EV_GROUP_JOINED);
  rec_put_u8(&w, 0);
  rec_put_str16(&w, "a", 1);
  rec_put_str16(&w, "g", 1);
  rec_put_str16(&w, "", 0);
  rec_put_str16(&w, "", 0);
  rec_put_u64(&w, 0);
  rec_put_u64(&w, 0);
  rec_put_u64(&w, 0);
  rec_put_u64(&w, 0);
  rec_put_u32(&w, 0);
  rec_put_u64(&w, 0);
  rec_put_u8(&w, GROUP_MAX_MEMBERS + 1);
  CHECK(msglog_decode(r, w.p, w.len) == STORE_E_CORRUPT, "msglog: more members than a group holds are refused");
  rec_wr_free(&w);
  free(m);
  free(r);
}

/* ---- a recipient and its senders ---------------------------------------------------- */

struct peer {
  struct account *acct; /* identity only */
  struct sotto_session *s;
  const char *name; /* the username its messages' addresses name (device 1) */
};

static char tmpl[] = "/tmp/sotto-core-test.XXXXXX";

/* bob: a real store, an account with username "bob", pre-keys. */
static struct sc_client *make_bob(const char *dir, struct seen *seen, struct sotto_bundle *b) {
  struct sc_client *c;
  struct prekey_pub opk;
  struct kem_pub kem;
  char home[PATH_MAX];
  int rc;
  snprintf(home, sizeof home, "%s/%s", tmpl, dir);
  if (sc_client_new(&c, home) || sc_init(c, NULL, TPASS)) {
    printf("FAIL cannot create bob's store: %s\n", sc_errdetail(c));
    exit(1);
  }
  sc_set_sink(c, sink, seen);
  snprintf(c->acct->username, sizeof c->acct->username, "bob");
  c->acct->device_id = 1;
  c->env_device = 1; /* inbox_process is called directly: every envelope comes from device 1 */
  memset(b, 0, sizeof *b);
  rc = store_begin(c->st) || account_new_signed_prekey(c->st, c->acct, b->signed_prekey, b->signed_prekey_sig) ||
       account_new_one_time_prekeys(c->st, c->acct, &opk, 1) ||
       account_new_kem_prekeys(c->st, c->acct, &kem, 1, 1) || account_save(c->st, c->acct) || store_commit(c->st);
  if (rc) {
    printf("FAIL cannot make bob's pre-keys\n");
    exit(1);
  }
  memcpy(b->identity_key, c->acct->id.pub, SOTTO_PUBKEY_LEN);
  b->registration_id = c->acct->id.registration_id;
  b->device_id = 1;
  b->signed_prekey_id = c->acct->spk_id;
  b->has_one_time_prekey = 1;
  b->one_time_prekey_id = opk.id;
  memcpy(b->one_time_prekey, opk.pub, sizeof opk.pub);
  b->has_kem_prekey = 1;
  b->kem_prekey_id = kem.id;
  memcpy(b->kem_prekey, kem.pub, sizeof kem.pub);
  memcpy(b->kem_prekey_sig, kem.sig, sizeof kem.sig);
  return c;
}

static void make_peer(struct peer *p, const struct sotto_bundle *b, const char *name) {
  p->name = name;
  if (account_new(&p->acct) || sotto_session_new(&p->s) || sotto_session_init_from_bundle(p->s, &p->acct->id, b)) {
    printf("FAIL cannot make a sender\n");
    exit(1);
  }
}

/* Encrypts content ct from p into out, addressed from p->name (device 1)
 * to bob (device 1), as a sotto client does; returns the type. */
static int seal(struct peer *p, const struct content *ct, uint8_t *out, size_t cap, size_t *len) {
  struct rec_wr w;
  struct sotto_addresses ad;
  int type = 0;
  client_addresses(&ad, p->name, 1, "bob", 1, 1);
  rec_wr_init(&w, SC_MAX_TEXT + 8192);
  if (content_encode(&w, ct) || sotto_session_encrypt_addressed(p->s, &ad, out, cap, len, &type, w.p, w.len))
    type = -1;
  rec_wr_free(&w);
  return type;
}

static int seal_text(struct peer *p, const char *text, uint8_t *out, size_t cap, size_t *len) {
  struct content ct;
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_TEXT;
  ct.ts = 1000;
  ct.text = (const uint8_t *)text;
  ct.text_len = strlen(text);
  return seal(p, &ct, out, cap, len);
}

static int history_cb(void *ud, const struct sc_event *ev) {
  sink(ud, ev);
  return 0;
}

static int last_kind(const struct seen *s) { return s->n ? s->kind[s->n - 1] : 0; }

static void test_inbox(void) {
  struct seen seen;
  struct sotto_bundle b;
  struct sc_client *bob;
  struct peer alice, mallory, carol;
  struct sc_contact ct;
  uint8_t env[4096], env2[4096];
  size_t len = 0, len2 = 0;
  unsigned released = 0;
  int type, type2, n;

  memset(&seen, 0, sizeof seen);
  bob = make_bob("bob", &seen, &b);
  make_peer(&alice, &b, "alice");
  b.has_one_time_prekey = 0; /* used by alice's first message */
  make_peer(&mallory, &b, "alice"); /* a new key claiming to be alice */
  make_peer(&carol, &b, "carol");

  /* New session: trust on first use. */
  type = seal_text(&alice, "hi bob", env, sizeof env, &len);
  CHECK(type == SOTTO_MSG_PREKEY, "inbox: alice's first message is a PreKey message");
  n = seen.n;
  CHECK(inbox_process(bob, NULL, 100, "alice", type, env, len) == 0, "inbox: new session: processed");
  CHECK(seen.n == n + 1 && last_kind(&seen) == SC_EV_MESSAGE && !strcmp(seen.peer[n], "alice") &&
            !strcmp(seen.text[n], "hi bob"),
        "inbox: new session: the text is given to the sink as a message from alice");
  CHECK(sc_contact_get(&ct, bob, "alice") == 0 && !ct.new_key_held && !ct.verified, "inbox: alice is a contact now");

  /* Duplicate: the same server id again, then the same ciphertext under a new id. */
  n = seen.n;
  CHECK(inbox_process(bob, NULL, 100, "alice", type, env, len) == 0 && seen.n == n,
        "inbox: duplicate: a re-delivered envelope (same server id) is acked and not shown again");
  CHECK(inbox_process(bob, NULL, 101, "alice", type, env, len) == 0 && seen.n == n,
        "inbox: duplicate: the same ciphertext under another id is dropped silently");

  /* A second message on the session (SignalMessage after bob answers? no:
   * still PreKey until bob replies; it decrypts all the same). */
  type = seal_text(&alice, "second", env, sizeof env, &len);
  n = seen.n;
  CHECK(inbox_process(bob, NULL, 102, "alice", type, env, len) == 0 && seen.n == n + 1 &&
            !strcmp(seen.text[n], "second"),
        "inbox: the session goes on");

  /* Quarantine: another identity key under the name alice. */
  type2 = seal_text(&mallory, "it's alice, new phone", env2, sizeof env2, &len2);
  n = seen.n;
  CHECK(inbox_process(bob, NULL, 103, "alice", type2, env2, len2) == 0, "inbox: held: processed (acked)");
  CHECK(seen.n == n + 1 && last_kind(&seen) == SC_EV_HELD && seen.reason[n] == SC_R_HELD_TEXT &&
            !strcmp(seen.text[n], "it's alice, new phone"),
        "inbox: held: an event says a text from a new, unverified key is held");
  CHECK(strstr(seen.line[n], "from a new, unverified key claiming to be alice (held;") != NULL,
        "inbox: held: ... in a plain sentence");
  CHECK(sc_contact_get(&ct, bob, "alice") == 0 && ct.new_key_held && ct.held == 1,
        "inbox: held: the contact has a new key waiting and one held message");
  /* alice's real session still works while mallory's key waits. */
  type = seal_text(&alice, "still me", env, sizeof env, &len);
  n = seen.n;
  CHECK(inbox_process(bob, NULL, 104, "alice", type, env, len) == 0 && last_kind(&seen) == SC_EV_MESSAGE &&
            !strcmp(seen.text[n], "still me"),
        "inbox: held: messages from the accepted key still arrive");

  /* Released: the user accepts the new key. */
  n = seen.n;
  CHECK(sc_trust(&released, bob, "alice") == 0 && released == 1, "inbox: released: sc_trust releases one message");
  CHECK(seen.n == n + 1 && last_kind(&seen) == SC_EV_MESSAGE && !strcmp(seen.text[n], "it's alice, new phone"),
        "inbox: released: the held text is shown as a message now");
  CHECK(sc_contact_get(&ct, bob, "alice") == 0 && !ct.new_key_held && ct.held == 0 && ct.key_changes == 1,
        "inbox: released: the new key is alice's key (one key change)");
  CHECK(sc_trust(&released, bob, "alice") == SC_ERR_NOTHING_HELD, "inbox: released: nothing is held any more");

  /* Unreadable: garbage from a stranger, garbage on a session, a bad sender name, an unknown type. */
  memset(env, 0x41, 200);
  n = seen.n;
  CHECK(inbox_process(bob, NULL, 98, "dave", SOTTO_MSG_SIGNAL, env, 200) == 0 && seen.n == n + 1 &&
            last_kind(&seen) == SC_EV_UNREADABLE,
        "inbox: unreadable: garbage from a stranger (no pinned key, no session) is reported, no retry request");
  type = seal_text(&carol, "hi from carol", env2, sizeof env2, &len2);
  CHECK(inbox_process(bob, NULL, 99, "carol", type, env2, len2) == 0 && last_kind(&seen) == SC_EV_MESSAGE,
        "inbox: carol's first message: a session and a pinned key");
  n = seen.n;
  CHECK(inbox_process(bob, NULL, 105, "carol", SOTTO_MSG_SIGNAL, env, 200) == 0 && seen.n == n + 1 &&
            last_kind(&seen) == SC_EV_RETRY_REQUESTED,
        "inbox: unreadable: garbage is dropped with one event: asked again for it (session healing)");
  CHECK(inbox_process(bob, NULL, 106, "Not A Name", SOTTO_MSG_SIGNAL, env, 200) == 0 &&
            last_kind(&seen) == SC_EV_UNREADABLE && seen.reason[seen.n - 1] == SC_R_BAD_SENDER,
        "inbox: unreadable: an invalid sender name");
  CHECK(inbox_process(bob, NULL, 107, "carol", 99, env, 200) == 0 && last_kind(&seen) == SC_EV_UNREADABLE &&
            seen.reason[seen.n - 1] == SC_R_UNKNOWN_TYPE,
        "inbox: unreadable: an unknown envelope type");
  /* Past the first few per sender they are counted, then summed up. */
  {
    int i, before;
    before = seen.n;
    /* The retry request covers the next RETRY_QUIET_MAX (unshown); past
     * them they are unreadable again: 3 shown, the rest summed up. */
    for (i = 0; i < RETRY_QUIET_MAX; i++)
      inbox_process(bob, NULL, 300 + (uint64_t)i, "carol", SOTTO_MSG_SIGNAL, env, 200);
    CHECK(seen.n == before,
          "inbox: unreadable: failures covered by the retry request are not shown one by one");
    for (i = 0; i < 5; i++) inbox_process(bob, NULL, 200 + (uint64_t)i, "carol", SOTTO_MSG_SIGNAL, env, 200);
    before = seen.n;
    CHECK(sc_summarise(bob) == 0 && seen.n == before + 1 && last_kind(&seen) == SC_EV_UNREADABLE_SUMMARY,
          "inbox: unreadable: the rest of carol's are summed up in one event");
    CHECK(strstr(seen.line[seen.n - 1], "more messages from carol could not be decrypted") != NULL,
          "inbox: unreadable: ... with its sentence");
  }
  /* Everything shown about alice is in the history, as events, in order. */
  {
    struct seen h;
    memset(&h, 0, sizeof h);
    CHECK(sc_history(bob, "alice", history_cb, &h) == 0 && h.n == 5 && h.kind[0] == SC_EV_MESSAGE &&
              !strcmp(h.text[0], "hi bob") && h.kind[2] == SC_EV_HELD && !strcmp(h.text[4], "it's alice, new phone"),
          "history: alice's messages and the held notice, oldest first");
  }
  sotto_session_free(alice.s);
  sotto_session_free(mallory.s);
  sotto_session_free(carol.s);
  account_free(alice.acct);
  account_free(mallory.acct);
  account_free(carol.acct);
  sc_client_free(bob);
}

/* ---- outbox, receipts, retry requests (outbox.c) ------------------------------------ */

static int seal_kind(struct peer *p, int kind, uint64_t a, uint64_t b2, uint8_t *out, size_t cap,
                     size_t *len) {
  struct content ct;
  memset(&ct, 0, sizeof ct);
  ct.kind = (uint8_t)kind;
  ct.ts = 2000;
  if (kind == CONTENT_RECEIPT) {
    ct.receipt_type = (uint8_t)b2;
    ct.n_receipts = 1;
    ct.receipts[0] = a;
  } else {
    ct.retry_server_id = a;
    ct.retry_server_ts = b2;
  }
  return seal(p, &ct, out, cap, len);
}

static int count_kind(const struct seen *s, int from, int kind) {
  int i, n = 0;
  for (i = from; i < s->n; i++) n += s->kind[i] == kind;
  return n;
}

static void test_outbox(void) {
  struct seen seen;
  struct sotto_bundle b;
  struct sc_client *bob;
  struct peer alice, mallory;
  uint8_t env[4096];
  size_t len = 0;
  unsigned released = 0;
  int type, n, i, rc = 0;

  memset(&seen, 0, sizeof seen);
  bob = make_bob("bob_outbox", &seen, &b);
  make_peer(&alice, &b, "alice");
  b.has_one_time_prekey = 0;
  make_peer(&mallory, &b, "alice"); /* a new key under alice's name */

  /* Three texts of bob's to alice, sent (server ids 10, 20, 30). */
  rc = store_begin(bob->st);
  for (i = 0; i < 3 && !rc; i++) {
    struct msg m;
    memset(&m, 0, sizeof m);
    m.dir = MSG_OUT;
    snprintf(m.peer, sizeof m.peer, "alice");
    m.ts = sc_now_ms() + (uint64_t)i;
    m.text = (char *)"to alice";
    m.text_len = 8;
    m.reason = SC_STATE_SENT;
    m.server_id = 10 * (uint64_t)(i + 1);
    rc = outbox_add(bob, &m);
  }
  if (!rc) rc = account_save(bob->st, bob->acct) || store_commit(bob->st);
  CHECK(rc == 0, "outbox: three sent texts kept");

  type = seal_text(&alice, "hi bob", env, sizeof env, &len);
  CHECK(inbox_process(bob, NULL, 500, "alice", type, env, len) == 0, "outbox: alice's first message");
  /* A receipt for the first text (timestamp of the first row). */
  {
    struct msg m;
    uint64_t ts1 = 0;
    if (msglog_get(bob->st, 1, &m) == 0) {
      ts1 = m.ts;
      msg_clear(&m);
    }
    n = seen.n;
    type = seal_kind(&alice, CONTENT_RECEIPT, ts1, RECEIPT_DELIVERED, env, sizeof env, &len);
    CHECK(inbox_process(bob, NULL, 501, "alice", type, env, len) == 0 &&
              count_kind(&seen, n, SC_EV_DELIVERY) == 1 && seen.n == n + 1,
          "outbox: a delivery receipt from alice: one delivery event, nothing shown as a message");
    n = seen.n;
    type = seal_kind(&alice, CONTENT_RECEIPT, ts1 + 999999, RECEIPT_READ, env, sizeof env, &len);
    CHECK(inbox_process(bob, NULL, 502, "alice", type, env, len) == 0 && seen.n == n,
          "outbox: a receipt for a text we never sent changes nothing");
  }
  /* A retry request from a NEW key under alice's name is held, not acted on. */
  n = seen.n;
  type = seal_kind(&mallory, CONTENT_RETRY, 0, 0, env, sizeof env, &len);
  CHECK(inbox_process(bob, NULL, 503, "alice", type, env, len) == 0 &&
            count_kind(&seen, n, SC_EV_HELD) == 1 && count_kind(&seen, n, SC_EV_RESENT) == 0 && seen.reason[seen.n - 1] == SC_R_HELD_OTHER,
        "outbox: a retry request from a new key is held in quarantine, nothing resent");
  n = seen.n;
  CHECK(sc_trust(&released, bob, "alice") == 0 && released == 1 && count_kind(&seen, n, SC_EV_RESENT) == 1 &&
            seen.count[seen.n - 1] == 2,
        "outbox: accepted with trust, the request is acted on: the two texts without a receipt are marked for "
        "resending");
  /* A second request inside the window: nothing more. */
  n = seen.n;
  type = seal_kind(&mallory, CONTENT_RETRY, 0, 0, env, sizeof env, &len);
  CHECK(inbox_process(bob, NULL, 504, "alice", type, env, len) == 0 &&
            count_kind(&seen, n, SC_EV_RESENT) == 0,
        "outbox: a second retry request inside the window resends nothing");
  /* Later windows (the retry record forgotten), the resends gone out (their
   * marks cleared in the outbox record: flags are byte 12 of each 21-byte
   * entry): each text is resent at most RETRY_MAX_RESENDS_PER_TEXT times. */
  for (i = 1; i <= RETRY_MAX_RESENDS_PER_TEXT; i++) {
    uint8_t *v = NULL;
    size_t vn = 0, k;
    rc = store_begin(bob->st);
    if (!rc && store_get(bob->st, "outbox", &v, &vn) == 1) {
      for (k = 0; k + 21 <= vn; k += 21) v[k + 12] &= (uint8_t)~1u;
      rc = store_put(bob->st, "outbox", v, vn);
      store_free_value(v, vn);
    }
    if (!rc) rc = store_del(bob->st, "retry/alice") || store_commit(bob->st);
    n = seen.n;
    type = seal_kind(&mallory, CONTENT_RETRY, 0, 0, env, sizeof env, &len);
    CHECK(rc == 0 && inbox_process(bob, NULL, 600 + (uint64_t)i, "alice", type, env, len) == 0 &&
              count_kind(&seen, n, SC_EV_RESENT) == 1 &&
              seen.count[seen.n - 1] == (i < RETRY_MAX_RESENDS_PER_TEXT ? 2 : 0),
          i < RETRY_MAX_RESENDS_PER_TEXT ? "outbox: a retry request in a later window resends the texts again"
                                         : "outbox: past two resends in its life a text is not resent again");
  }
  /* The server's expiry notice for the text it took as id 20. */
  n = seen.n;
  CHECK(sc_outbox_expired(bob, 20) == 0 && count_kind(&seen, n, SC_EV_DELIVERY) == 1,
        "outbox: sc_outbox_expired marks the text with that server id expired (an event)");
  CHECK(sc_outbox_expired(bob, 20) == SC_ERR_NO_SUCH_MESSAGE &&
            sc_outbox_expired(bob, 999) == SC_ERR_NO_SUCH_MESSAGE,
        "outbox: ... once; an unknown id is SC_ERR_NO_SUCH_MESSAGE");
  /* The bound: one sent text (30) is left; queued ones fill the outbox,
   * pushing it out (it is given up), then are refused. */
  {
    struct msg m;
    int full = 0, added = 0;
    memset(&m, 0, sizeof m);
    m.dir = MSG_OUT;
    snprintf(m.peer, sizeof m.peer, "alice");
    m.text = (char *)"queued";
    m.text_len = 6;
    n = seen.n;
    rc = store_begin(bob->st);
    for (i = 0; i < OUTBOX_MAX + 1 && !rc; i++) {
      m.ts = sc_now_ms() + 100 + (uint64_t)i;
      m.reason = SC_STATE_QUEUED;
      m.server_id = 0;
      rc = outbox_add(bob, &m);
      if (rc == 0) added++;
      if (rc == SC_ERR_OUTBOX_FULL) full = 1;
    }
    CHECK(added == OUTBOX_MAX && full,
          "outbox: at most 256 texts; a queued one past that is refused (outbox_full)");
    CHECK(count_kind(&seen, n, SC_EV_DELIVERY) == 1 && seen.reason[n] == SC_R_OUTBOX_FULL,
          "outbox: ... the sent text was pushed out first, given up with an event (queued ones are never "
          "pushed out)");
    n = seen.n;
    m.ts = sc_now_ms() + 5000;
    m.reason = SC_STATE_SENT;
    m.server_id = 40;
    rc = outbox_add(bob, &m);
    CHECK(rc == 0 && seen.n == n,
          "outbox: a text the server took while only queued ones fill it is logged, untracked");
    if (!rc) rc = account_save(bob->st, bob->acct) || store_commit(bob->st);
    else store_rollback(bob->st);
  }
  sotto_session_free(alice.s);
  sotto_session_free(mallory.s);
  account_free(alice.acct);
  account_free(mallory.acct);
  sc_client_free(bob);
}

/* ---- group rules ------------------------------------------------------------------- */

static int update(struct sc_client *bob, struct peer *p, const char *sender, uint64_t sid, const uint8_t gid[16],
                  uint32_t epoch, const char *const *members, size_t n) {
  struct content *ct = calloc(1, sizeof *ct);
  uint8_t env[8192];
  size_t len = 0, i;
  int type, rc;
  ct->kind = CONTENT_GROUP_UPDATE;
  ct->ts = 1;
  memcpy(ct->gid, gid, 16);
  snprintf(ct->name, sizeof ct->name, "team");
  ct->epoch = epoch;
  ct->n_members = n;
  for (i = 0; i < n; i++) snprintf(ct->members[i], sizeof ct->members[i], "%s", members[i]);
  type = seal(p, ct, env, sizeof env, &len);
  free(ct);
  if (type < 0) return -100;
  rc = inbox_process(bob, NULL, sid, sender, type, env, len);
  return rc;
}

static int group_members(void *ud, const struct sc_group *g) {
  *(size_t *)ud = g->n_members;
  return 0;
}

static void test_groups(void) {
  struct seen seen;
  struct sotto_bundle b;
  struct sc_client *bob;
  struct peer alice, carol, dave;
  struct sc_group g;
  uint8_t gid[16], gid2[16];
  const char *abc[] = {"alice", "bob", "carol"}, *ac[] = {"alice", "carol"}, *abcd[] = {"alice", "bob", "carol", "dave"},
             *ab[] = {"alice", "bob"};
  size_t members = 0;
  int n;

  memset(&seen, 0, sizeof seen);
  bob = make_bob("bob-groups", &seen, &b); /* a fresh store */
  make_peer(&alice, &b, "alice");
  /* carol and dave: sessions from the same bundle; the one-time pre-key
   * goes to the first, the rest use the signed and last-resort keys. */
  b.has_one_time_prekey = 0;
  make_peer(&carol, &b, "carol");
  make_peer(&dave, &b, "dave");
  randombytes_buf(gid, sizeof gid);
  randombytes_buf(gid2, sizeof gid2);

  /* Joining: the sender must be in the list, and so must we. */
  n = seen.n;
  CHECK(update(bob, &alice, "alice", 1, gid2, 1, ac, 2) == 0 && seen.n == n &&
            sc_group_get(&g, bob, "team") == SC_ERR_UNKNOWN_GROUP,
        "groups: a new group without us in it is ignored");
  n = seen.n;
  CHECK(update(bob, &alice, "alice", 2, gid, 1, abc, 3) == 0 && seen.n == n + 1 &&
            last_kind(&seen) == SC_EV_GROUP_JOINED,
        "groups: alice adds us: joined");
  CHECK(strcmp(seen.line[n], "alice added you to the group team (members: alice, bob, carol)") == 0,
        "groups: ... with the member list in its sentence");
  CHECK(sc_group_get(&g, bob, "team") == 0 && g.n_members == 3 && g.epoch == 1, "groups: the group is stored");
  /* A member may change it, forwards only. */
  n = seen.n;
  CHECK(update(bob, &carol, "carol", 3, gid, 2, abcd, 4) == 0 && seen.n == n + 1 &&
            last_kind(&seen) == SC_EV_GROUP_ADDED && !strcmp(seen.line[n], "carol added dave to the group team"),
        "groups: carol (a member) adds dave");
  n = seen.n;
  CHECK(update(bob, &alice, "alice", 4, gid, 2, abc, 3) == 0 && seen.n == n && sc_group_get(&g, bob, "team") == 0 &&
            g.n_members == 4,
        "groups: an update at the same epoch changes nothing (only forwards)");
  CHECK(update(bob, &alice, "alice", 5, gid, 1, ab, 2) == 0 && sc_group_get(&g, bob, "team") == 0 &&
            g.n_members == 4,
        "groups: an older epoch changes nothing");
  /* dave is a member now; a stranger is not. */
  {
    struct peer eve;
    make_peer(&eve, &b, "eve");
    n = seen.n;
    CHECK(update(bob, &eve, "eve", 6, gid, 9, ab, 2) == 0 && seen.n == n + 1 &&
              last_kind(&seen) == SC_EV_GROUP_NOT_MEMBER && sc_group_get(&g, bob, "team") == 0 && g.n_members == 4,
          "groups: a change from a non-member is ignored with a notice");
    sotto_session_free(eve.s);
    account_free(eve.acct);
  }
  n = seen.n;
  CHECK(update(bob, &dave, "dave", 7, gid, 3, abc, 3) == 0 && seen.n == n + 1 &&
            last_kind(&seen) == SC_EV_GROUP_REMOVED && !strcmp(seen.line[n], "dave left the group team"),
        "groups: dave leaves (removes himself)");
  /* Removed: the group is gone. */
  n = seen.n;
  CHECK(update(bob, &alice, "alice", 8, gid, 4, ac, 2) == 0 && seen.n == n + 1 &&
            last_kind(&seen) == SC_EV_GROUP_LEFT_US && sc_group_get(&g, bob, "team") == SC_ERR_UNKNOWN_GROUP,
        "groups: alice removes us: the group is deleted");
  CHECK(sc_groups(bob, group_members, &members) == 0 && members == 0, "groups: no group is left");
  CHECK(sc_group_name_ok("team-1.x") && !sc_group_name_ok("") && !sc_group_name_ok("a b"),
        "groups: group names are checked");
  /* GROUP_STATE (kind 19) is only for our own devices: from a contact it is refused */
  {
    struct content *ct = calloc(1, sizeof *ct);
    uint8_t env[8192], gid3[16];
    size_t len = 0;
    int type;
    randombytes_buf(gid3, sizeof gid3);
    ct->kind = CONTENT_GROUP_STATE;
    ct->ts = 2;
    memcpy(ct->gid, gid3, 16);
    snprintf(ct->name, sizeof ct->name, "sneaky");
    ct->epoch = 1;
    ct->n_members = 2;
    snprintf(ct->members[0], sizeof ct->members[0], "alice");
    snprintf(ct->members[1], sizeof ct->members[1], "bob");
    type = seal(&alice, ct, env, sizeof env, &len);
    free(ct);
    n = seen.n;
    CHECK(type >= 0 && inbox_process(bob, NULL, 90, "alice", type, env, len) == 0 && seen.n == n + 1 &&
              last_kind(&seen) == SC_EV_UNREADABLE && sc_group_get(&g, bob, "sneaky") == SC_ERR_UNKNOWN_GROUP,
          "groups: a GROUP_STATE from a contact is refused; no group is made");
  }
  {
    struct content a, b2;
    struct rec_wr w;
    uint8_t gid4[16];
    memset(&a, 0, sizeof a);
    randombytes_buf(gid4, sizeof gid4);
    a.kind = CONTENT_GROUP_STATE;
    a.ts = 3;
    memcpy(a.gid, gid4, 16);
    snprintf(a.name, sizeof a.name, "t");
    a.epoch = 7;
    a.n_members = 1;
    snprintf(a.members[0], sizeof a.members[0], "bob");
    a.state_flags = GROUP_STATE_LEFT | GROUP_STATE_ACCEPTED;
    rec_wr_init(&w, 4096);
    CHECK(content_encode(&w, &a) == 0 && content_decode(&b2, w.p, w.len) == 0 && b2.kind == CONTENT_GROUP_STATE &&
              b2.state_flags == a.state_flags && b2.epoch == 7 && b2.n_members == 1 && !memcmp(b2.gid, gid4, 16),
          "groups: GROUP_STATE encodes and decodes");
    rec_wr_free(&w);
    a.state_flags = 4;
    rec_wr_init(&w, 4096);
    CHECK(content_encode(&w, &a) != 0, "groups: GROUP_STATE with an unknown flag is not written");
    rec_wr_free(&w);
  }
  sotto_session_free(alice.s);
  sotto_session_free(carol.s);
  sotto_session_free(dave.s);
  account_free(alice.acct);
  account_free(carol.acct);
  account_free(dave.acct);
  sc_client_free(bob);
}

/* ---- sender keys per (member, device) (docs/groups.md) ----------------------------- */

/* A new record with an own chain; its chain id in *id. */
static struct sotto_sender_key *sk_with_chain(uint32_t *id) {
  struct sotto_sender_key *r = NULL;
  uint8_t skdm[SOTTO_SKDM_MAX_LEN];
  size_t n;
  if (sotto_sender_key_new(&r) || sotto_sender_key_distribution(r, skdm, sizeof skdm, &n) ||
      sotto_sender_key_own_chain_id(r, id)) {
    sotto_sender_key_free(r);
    return NULL;
  }
  return r;
}

/* The chain id held by (member, dev): 1 and *id, 0 for a new empty record. */
static int sk_chain_of(struct sc_client *c, const struct grp *g, const char *member, uint32_t dev, uint32_t *id) {
  struct sotto_sender_key *r = NULL;
  int rc = grp_sk_load(c->st, g, member, dev, &r);
  if (rc == 1 && sotto_sender_key_own_chain_id(r, id)) rc = -1;
  sotto_sender_key_free(r);
  return rc;
}

static void test_group_sk_records(void) {
  struct seen seen;
  struct sotto_bundle b;
  struct sc_client *bob;
  struct grp *g = calloc(1, sizeof *g);
  struct sotto_sender_key *r1, *r2, *rl, *rx, *rz = NULL;
  uint32_t id1 = 0, id2 = 0, idl = 0, idx = 0, got = 0;
  char rn[GRP_SK_NAME_MAX], hex[33], want[GRP_SK_NAME_MAX];
  uint8_t *v = NULL;
  size_t vn = 0;
  int rc;

  memset(&seen, 0, sizeof seen);
  bob = make_bob("bob-gsk", &seen, &b);
  CHECK(g != NULL, "gsk: memory");
  if (!g) return;
  randombytes_buf(g->gid, sizeof g->gid);
  sodium_bin2hex(hex, sizeof hex, g->gid, sizeof g->gid);
  grp_sk_name(rn, sizeof rn, g, "alice", 2);
  snprintf(want, sizeof want, "gsk/%s/alice/2", hex);
  CHECK(strcmp(rn, want) == 0, "gsk: the record of device 2 of alice is gsk/GID/alice/2");
  grp_sk_name(rn, sizeof rn, g, "alice", 0);
  snprintf(want, sizeof want, "gsk/%s/alice", hex);
  CHECK(strcmp(rn, want) == 0, "gsk: the per-member record of before is gsk/GID/alice");

  r1 = sk_with_chain(&id1);
  r2 = sk_with_chain(&id2);
  rl = sk_with_chain(&idl);
  rx = sk_with_chain(&idx);
  CHECK(r1 && r2 && rl && rx && id1 != id2, "gsk: four chains made");
  rc = store_begin(bob->st);
  /* an old store: one record for alice, made before chains were per device */
  if (!rc && rl) {
    size_t cap = sotto_sender_key_serialized_size(rl), n = 0;
    uint8_t *buf = malloc(cap);
    rc = !buf || sotto_sender_key_serialize(rl, buf, cap, &n) || store_put(bob->st, rn, buf, n);
    free(buf);
  }
  if (!rc) rc = grp_sk_save(bob->st, g, "alice2", 1, rx);
  if (!rc) rc = store_commit(bob->st);
  CHECK(rc == 0, "gsk: an old per-member record written");
  CHECK(sk_chain_of(bob, g, "alice", 1, &got) == 1 && got == idl && sk_chain_of(bob, g, "alice", 7, &got) == 1 &&
            got == idl,
        "gsk: a device without its own record reads the old per-member one (nothing lost on upgrade)");
  CHECK(grp_sk_save(bob->st, g, "alice", 0, r1) != 0 && grp_sk_load(bob->st, g, "alice", 0, &rz) != 0 && rz == NULL,
        "gsk: device 0 is no device: refused");
  rc = store_begin(bob->st);
  if (!rc) rc = grp_sk_save(bob->st, g, "alice", 1, r1);
  if (!rc) rc = grp_sk_save(bob->st, g, "alice", 2, r2);
  if (!rc) rc = store_commit(bob->st);
  CHECK(rc == 0 && sk_chain_of(bob, g, "alice", 1, &got) == 1 && got == id1 && sk_chain_of(bob, g, "alice", 2, &got) == 1 &&
            got == id2,
        "gsk: two devices of alice keep two chains; neither replaces the other");
  grp_sk_name(rn, sizeof rn, g, "alice", 2);
  CHECK(store_get(bob->st, rn, &v, &vn) == 1, "gsk: device 2's chain is under its own name");
  if (v) store_free_value(v, vn);
  rc = store_begin(bob->st);
  if (!rc) rc = grp_sk_del_dev(bob->st, g, "alice", 2);
  if (!rc) rc = store_commit(bob->st);
  CHECK(rc == 0 && sk_chain_of(bob, g, "alice", 2, &got) == 0 && sk_chain_of(bob, g, "alice", 1, &got) == 1 && got == id1,
        "gsk: a removed device's chain is forgotten (and the old per-member record with it); the other stays");
  rc = store_begin(bob->st);
  if (!rc) rc = grp_sk_save(bob->st, g, "alice", 2, r2);
  if (!rc) rc = grp_sk_del(bob->st, g, "alice");
  if (!rc) rc = store_commit(bob->st);
  CHECK(rc == 0 && sk_chain_of(bob, g, "alice", 1, &got) == 0 && sk_chain_of(bob, g, "alice", 2, &got) == 0,
        "gsk: a member removed: every chain of theirs is gone");
  CHECK(sk_chain_of(bob, g, "alice2", 1, &got) == 1 && got == idx, "gsk: ... and not alice2's (a name prefix)");

  /* device lists change: keys follow (grp_follow_devices) */
  {
    struct sotto_devlist *l12 = calloc(1, sizeof *l12), *l123 = calloc(1, sizeof *l123), *l13 = calloc(1, sizeof *l13);
    struct grp *h = calloc(1, sizeof *h);
    unsigned i;
    CHECK(l12 && l123 && l13 && h, "gsk: memory for lists");
    if (l12 && l123 && l13 && h) {
      for (i = 0; i < 3; i++) {
        l123->dev[i].device_id = i + 1;
        memset(l123->dev[i].device_key, (int)(i + 1), SOTTO_PUBKEY_LEN);
      }
      l123->n = 3;
      *l12 = *l123;
      l12->n = 2;
      *l13 = *l123;
      l13->dev[1] = l123->dev[2];
      l13->n = 2;
      memcpy(h->gid, g->gid, sizeof h->gid);
      snprintf(h->name, sizeof h->name, "follow");
      h->epoch = 1;
      grp_list_add(h->members, &h->n, "alice");
      grp_list_add(h->members, &h->n, "bob");
      grp_list_add(h->dist, &h->n_dist, "alice");
      grp_list_add(h->dist, &h->n_dist, "bob");
      rc = store_begin(bob->st);
      if (!rc) rc = grp_save(bob->st, h);
      if (!rc) rc = grp_sk_save(bob->st, h, "alice", 1, r1);
      if (!rc) rc = grp_sk_save(bob->st, h, "alice", 2, r2);
      if (!rc) rc = grp_sk_save(bob->st, h, "bob", 1, rl); /* ours */
      if (!rc) rc = grp_follow_devices(bob->st, "carol", "bob", 1, l12, l123); /* not a member */
      if (!rc) rc = store_commit(bob->st);
      CHECK(rc == 0 && grp_load(bob->st, h->gid, h) == 1 && h->n_dist == 2,
            "gsk: a non-member's new device changes nothing");
      rc = store_begin(bob->st);
      if (!rc) rc = grp_follow_devices(bob->st, "alice", "bob", 1, l12, l12);
      if (!rc) rc = store_commit(bob->st);
      CHECK(rc == 0 && grp_load(bob->st, h->gid, h) == 1 && h->n_dist == 2, "gsk: an unchanged list changes nothing");
      rc = store_begin(bob->st);
      if (!rc) rc = grp_follow_devices(bob->st, "alice", "bob", 1, l12, l123);
      if (!rc) rc = store_commit(bob->st);
      CHECK(rc == 0 && grp_load(bob->st, h->gid, h) == 1 && !grp_has(h->dist, h->n_dist, "alice") &&
                grp_has(h->dist, h->n_dist, "bob") && sk_chain_of(bob, h, "bob", 1, &got) == 1 && got == idl &&
                sk_chain_of(bob, h, "alice", 2, &got) == 1 && got == id2,
            "gsk: alice adds device 3: she is sent our key again; no chain changes");
      rc = store_begin(bob->st);
      if (!rc) rc = grp_follow_devices(bob->st, "alice", "bob", 1, l123, l13);
      if (!rc) rc = store_commit(bob->st);
      CHECK(rc == 0 && grp_load(bob->st, h->gid, h) == 1 && h->n_dist == 0 &&
                sk_chain_of(bob, h, "bob", 1, &got) == 0 && sk_chain_of(bob, h, "alice", 2, &got) == 0 &&
                sk_chain_of(bob, h, "alice", 1, &got) == 1 && got == id1,
            "gsk: alice removes device 2: its chain is forgotten, ours retired (rotated at the next send), "
            "device 1's kept");
      rc = store_begin(bob->st);
      if (!rc) rc = grp_sk_save(bob->st, h, "bob", 1, rl);
      if (!rc) rc = grp_sk_save(bob->st, h, "bob", 2, r2);
      if (!rc) rc = grp_follow_devices(bob->st, "bob", "bob", 1, l12, l13);
      if (!rc) rc = store_commit(bob->st);
      CHECK(rc == 0 && sk_chain_of(bob, h, "bob", 1, &got) == 0 && sk_chain_of(bob, h, "bob", 2, &got) == 0,
            "gsk: our own device 2 removed: its chain and ours are gone");
      CHECK(sk_chain_of(bob, h, "alice", 1, &got) == 1 && sk_chain_of(bob, h, "alice2", 1, &got) == 1,
            "gsk: (before the group is deleted, two members' chains are there)");
      rc = store_begin(bob->st);
      if (!rc) rc = grp_delete(bob->st, h);
      if (!rc) rc = store_commit(bob->st);
      CHECK(rc == 0 && grp_load(bob->st, g->gid, h) == 0 && sk_chain_of(bob, g, "alice", 1, &got) == 0 &&
                sk_chain_of(bob, g, "alice2", 1, &got) == 0,
            "gsk: a group deleted: every chain in it is gone, a former member's too");
    }
    free(l12);
    free(l123);
    free(l13);
    free(h);
  }
  sotto_sender_key_free(r1);
  sotto_sender_key_free(r2);
  sotto_sender_key_free(rl);
  sotto_sender_key_free(rx);
  free(g);
  sc_client_free(bob);
}

/* ---- a home held by a daemon ------------------------------------------------------ */

static void test_hold(void) {
  struct sc_client *a, *b;
  char home[PATH_MAX];
  snprintf(home, sizeof home, "%s/held", tmpl);
  if (sc_client_new(&a, home) || sc_client_new(&b, home) || sc_init(a, NULL, TPASS)) {
    printf("FAIL setup of the held home\n");
    exit(1);
  }
  sc_client_free(a);
  if (sc_client_new(&a, home)) exit(1);
  CHECK(sc_home_in_use(b) == 0, "hold: a home nobody holds is not in use");
  CHECK(sc_hold_home(a, "sotto daemon") == 0 && sc_open(a, TPASS) == 0, "hold: the holder holds and opens it");
  CHECK(sc_home_in_use(b) == SC_ERR_IN_USE && strstr(sc_errdetail(b), "held by sotto daemon (pid ") != NULL,
        "hold: another client is told who holds it");
  CHECK(sc_open(b, TPASS) == SC_ERR_IN_USE && sc_open(b, NULL, 0) == SC_ERR_IN_USE,
        "hold: ... and cannot open it (checked before the passphrase)");
  {
    struct sc_client *x;
    CHECK(sc_client_new(&x, home) == 0 && sc_hold_home(x, "another daemon") == SC_ERR_IN_USE,
          "hold: a second holder is refused");
    sc_client_free(x);
  }
  sc_client_free(a);
  CHECK(sc_home_in_use(b) == 0 && sc_open(b, TPASS) == 0, "hold: released when the holder is freed");
  sc_client_free(b);
}

/* ---- backup file format (backup.h) ----------------------------------------------- */

static int count_cb(void *ud, const char *name, const uint8_t *val, size_t len) {
  (void)name;
  (void)val;
  (void)len;
  (*(int *)ud)++;
  return 0;
}

static void test_backup_format(void) {
  struct backup_hdr h, g;
  struct rec_wr w;
  uint8_t hdr[BACKUP_HDR_LEN + BACKUP_TAG_LEN], secret[BACKUP_RK_RANDOM], back[BACKUP_RK_RANDOM];
  char key[BACKUP_RK_TEXT_LEN + 1], user[SC_USER_MAX + 1], why[160];
  uint64_t created;
  size_t i;
  int n = 0, ok = 1;

  memset(&h, 0, sizeof h);
  h.kind = BACKUP_KIND_PASSPHRASE;
  h.opslimit = 3;
  h.mem_kib = 262144;
  randombytes_buf(h.salt, sizeof h.salt);
  randombytes_buf(h.nonce, sizeof h.nonce);
  memset(hdr, 0, sizeof hdr);
  backup_put_header(hdr, &h);
  CHECK(backup_parse_header(hdr, sizeof hdr, &g) == 0 && g.opslimit == 3 && g.mem_kib == 262144 &&
            memcmp(g.salt, h.salt, sizeof g.salt) == 0 && memcmp(g.nonce, h.nonce, sizeof g.nonce) == 0,
        "backup: a header reads back");
  CHECK(backup_parse_header(hdr, sizeof hdr - 1, &g) != 0, "backup: a file shorter than header + tag is refused");
  /* Bytes 0..16: magic, version, kind, reserved, opslimit and the high
   * byte of the memory limit (lower bits of it may stay in range: the
   * header is the AEAD's additional data, so any change fails there). */
  for (i = 0; i < 17; i++) {
    uint8_t bad[sizeof hdr];
    memcpy(bad, hdr, sizeof hdr);
    bad[i] ^= 0x80; /* magic, version, kind, reserved, limits: each refused */
    if (backup_parse_header(bad, sizeof bad, &g) == 0) ok = 0;
  }
  CHECK(ok, "backup: a flipped magic, version, kind, reserved or limit byte is refused");
  h.opslimit = BACKUP_MAX_OPSLIMIT + 1;
  backup_put_header(hdr, &h);
  CHECK(backup_parse_header(hdr, sizeof hdr, &g) != 0, "backup: opslimit above the cap is refused");

  rec_wr_init(&w, 4096);
  rec_put_u64(&w, 1);
  rec_put_str16(&w, "alice", 5);
  rec_put_u32(&w, 2);
  rec_put_str16(&w, "account", 7);
  rec_put_u32(&w, 3);
  rec_put(&w, "abc", 3);
  rec_put_str16(&w, "contact/bob", 11);
  rec_put_u32(&w, 0);
  CHECK(rec_wr_ok(&w) == 0 &&
            backup_parse_records(w.p, w.len, &created, user, sizeof user, count_cb, &n) == 0 && n == 2 &&
            strcmp(user, "alice") == 0,
        "backup: a record list reads back");
  ok = 1;
  for (i = 0; i < w.len; i++)
    if (backup_parse_records(w.p, i, &created, user, sizeof user, NULL, NULL) == 0) ok = 0;
  CHECK(ok, "backup: every truncation of a record list is refused");
  w.p[w.len] = 0;
  CHECK(backup_parse_records(w.p, w.len + 1, &created, user, sizeof user, NULL, NULL) != 0,
        "backup: a trailing byte is refused");
  w.p[8 + 2 + 5 + 3] = 3; /* count 3 with two records */
  CHECK(backup_parse_records(w.p, w.len, &created, user, sizeof user, NULL, NULL) != 0,
        "backup: a count above the records is refused");
  w.p[8 + 2 + 5] = 0xff; /* count far above BACKUP_MAX_RECORDS */
  CHECK(backup_parse_records(w.p, w.len, &created, user, sizeof user, NULL, NULL) != 0,
        "backup: a count above the cap is refused");
  rec_wr_free(&w);
  rec_wr_init(&w, 4096);
  rec_put_u64(&w, 1);
  rec_put_str16(&w, "", 0);
  rec_put_u32(&w, 1);
  rec_put_str16(&w, "", 0); /* an empty name */
  rec_put_u32(&w, 0);
  CHECK(backup_parse_records(w.p, w.len, &created, user, sizeof user, NULL, NULL) != 0,
        "backup: an empty record name is refused");
  rec_wr_free(&w);

  backup_rk_new(key, secret);
  CHECK(strlen(key) == BACKUP_RK_TEXT_LEN && backup_rk_parse(back, key, strlen(key)) == 0 &&
            memcmp(back, secret, sizeof back) == 0,
        "backup: a recovery key reads back");
  for (i = 0; key[i]; i++) key[i] = (char)(key[i] >= 'a' && key[i] <= 'f' ? key[i] - 32 : key[i]);
  CHECK(backup_rk_parse(back, key, strlen(key)) == 0, "backup: ... in capitals too");
  key[0] = key[0] == '0' ? '1' : '0';
  CHECK(backup_rk_parse(back, key, strlen(key)) == -2, "backup: a typo in a recovery key is caught by its check");
  CHECK(backup_rk_parse(back, key, 10) == -1 && backup_rk_parse(back, "zz", 2) == -1,
        "backup: a short or non-hex recovery key is refused");

  CHECK(sc_passphrase_strength(why, sizeof why, "correct horse battery staple", 28) == 0,
        "passphrase: four words pass");
  CHECK(sc_passphrase_strength(why, sizeof why, "short", 5) == SC_ERR_WEAK_PASSPHRASE && strstr(why, "12"),
        "passphrase: 5 characters are refused, saying the minimum");
  CHECK(sc_passphrase_strength(why, sizeof why, "Password1234!", 13) == SC_ERR_WEAK_PASSPHRASE,
        "passphrase: a common password with digits is refused");
  CHECK(sc_passphrase_strength(why, sizeof why, "abababababababab", 16) == SC_ERR_WEAK_PASSPHRASE,
        "passphrase: two characters repeated are refused");
  CHECK(sc_passphrase_strength(why, sizeof why, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 12) ==
            SC_ERR_WEAK_PASSPHRASE,
        "passphrase: characters are counted, not bytes");
}

/* ---- conversations (convo.c) ---------------------------------------------------------- */

static int convo_round_trip(const struct content *in, struct content *out, struct rec_wr *w) {
  rec_wr_init(w, SC_MAX_TEXT + 1024);
  return content_encode(w, in) || content_decode(out, w->p, w->len);
}

/* The last event's fields of a convo content from p sealed and processed by bob. */
static int feed(struct sc_client *bob, struct peer *p, const struct content *ct, uint64_t sid) {
  uint8_t env[4096];
  size_t len = 0;
  int type = seal(p, ct, env, sizeof env, &len);
  return type < 0 ? -1 : inbox_process(bob, NULL, sid, p->name, type, env, len);
}

struct hist {
  int n, edited, deleted, request, reactions;
  uint64_t expire;
  char text[256];
};

static int hist_cb(void *ud, const struct sc_event *ev) {
  struct hist *h = ud;
  if (ev->kind != SC_EV_MESSAGE) return 0;
  h->n++;
  h->edited = ev->edited;
  h->deleted = ev->deleted;
  h->request = ev->request;
  h->reactions = (int)ev->n_reactions;
  h->expire = ev->expire_at_ms;
  snprintf(h->text, sizeof h->text, "%.*s", (int)(ev->text_len < 255 ? ev->text_len : 255), ev->text);
  return 0;
}

static void test_convo(void) {
  struct seen seen;
  struct sotto_bundle b;
  struct sc_client *bob;
  struct peer alice;
  struct content ct, back;
  struct rec_wr w;
  struct hist h;
  uint8_t *v;
  size_t vn;
  int st, i;
  const uint64_t T = 1733150000000ull;

  /* The parser: every kind round-trips; malformed ones are refused. */
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_REACTION;
  ct.ts = T;
  ct.in_group = 1;
  memset(ct.gid, 7, GROUP_ID_LEN);
  ct.timer_s = 60;
  snprintf(ct.ref_author, sizeof ct.ref_author, "alice");
  ct.ref_ts = T - 5;
  snprintf(ct.emoji, sizeof ct.emoji, "\xf0\x9f\x91\x8d");
  CHECK(convo_round_trip(&ct, &back, &w) == 0 && back.kind == CONTENT_REACTION && back.in_group == 1 &&
            back.timer_s == 60 && !strcmp(back.ref_author, "alice") && back.ref_ts == T - 5 &&
            !strcmp(back.emoji, ct.emoji) && back.gid[3] == 7,
        "convo: a group reaction round-trips");
  rec_wr_free(&w);
  ct.timer_s = CONTENT_TIMER_MAX + 1;
  rec_wr_init(&w, 1024);
  CHECK(content_encode(&w, &ct) != 0, "convo: a timer above a year is not encoded");
  rec_wr_free(&w);
  {
    /* Hand-made malformed contents: decode must refuse each. */
    static const struct {
      uint8_t kind;
      const char *what;
      uint8_t body[40];
      size_t n;
    } bad[] = {
        {CONTENT_TIMER, "scope 2", {2, 0, 0, 0, 10}, 5},
        {CONTENT_TIMER, "a timer above a year", {0, 0x01, 0xe1, 0x33, 0x81}, 5},
        {CONTENT_TIMER, "trailing bytes", {0, 0, 0, 0, 10, 1}, 6},
        {CONTENT_EDIT, "an edit of message 0", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'x'}, 16},
        {CONTENT_EDIT, "an empty edit", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0}, 15},
        {CONTENT_DELETE, "a short delete", {0, 0, 0, 0, 0, 0, 0, 5}, 8},
        {CONTENT_REACTION, "a reaction to nobody", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 1, 'x'}, 18},
        {CONTENT_REACTION, "a bad author", {0, 0, 0, 0, 0, 0, 2, 'A', '/', 0, 0, 0, 0, 0, 0, 0, 5, 0, 1, 'x'}, 20},
        {CONTENT_TEXT_EX, "a reply timestamp without author", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 1, 'x'}, 18},
        {CONTENT_TEXT_EX, "an empty text", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 17},
    };
    size_t k;
    int all = 1;
    for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
      rec_wr_init(&w, 256);
      rec_put_u8(&w, CONTENT_VERSION);
      rec_put_u8(&w, bad[k].kind);
      rec_put_u64(&w, T);
      rec_put(&w, bad[k].body, bad[k].n);
      rec_put_u8(&w, 0x80);
      if (content_decode(&back, w.p, w.len) == 0) {
        printf("     accepted: %s\n", bad[k].what);
        all = 0;
      }
      rec_wr_free(&w);
    }
    CHECK(all, "convo: malformed conversation contents are refused");
  }

  memset(&seen, 0, sizeof seen);
  bob = make_bob("convo", &seen, &b);
  make_peer(&alice, &b, "alice");

  /* A stranger's first text: a request, no receipt owed. */
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_TEXT;
  ct.ts = T;
  ct.text = (const uint8_t *)"hello stranger";
  ct.text_len = 14;
  CHECK(feed(bob, &alice, &ct, 500) == 0 && sc_consent(&st, bob, "alice") == 0 && st == SC_CONSENT_REQUEST,
        "convo: a stranger's first message makes a request");
  CHECK(store_get(bob->st, "rcpt/alice", &v, &vn) == 0, "convo: no receipt is owed to a request");
  memset(&h, 0, sizeof h);
  sc_history(bob, "alice", hist_cb, &h);
  CHECK(h.n == 1 && h.request, "convo: the message is marked as a request");
  CHECK(sc_request_accept(bob, "alice") == 0 && sc_consent(&st, bob, "alice") == 0 && st == SC_CONSENT_CONTACT,
        "convo: accepted, a contact");
  CHECK(sc_request_accept(bob, "alice") == SC_ERR_NO_REQUEST, "convo: accepting again: no request");
  {
    int got = store_get(bob->st, "rcpt/alice", &v, &vn) == 1, one = 0;
    if (got) {
      uint64_t t = 0;
      for (i = 0; i < 8 && vn == 9; i++) t = t << 8 | v[i];
      one = vn == 9 && t == T && v[8] == RECEIPT_DELIVERED;
      store_free_value(v, vn);
    }
    CHECK(one, "convo: accepting owes the held delivery receipt of the request's text");
  }
  memset(&h, 0, sizeof h);
  sc_history(bob, "alice", hist_cb, &h);
  CHECK(h.n == 1 && !h.request, "convo: the accepted message is no longer marked a request");

  /* Edit in and out of the window, an unknown message, a bad emoji, a delete. */
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_EDIT;
  ct.ts = T + 1000;
  ct.ref_ts = T;
  ct.text = (const uint8_t *)"hello friend";
  ct.text_len = 12;
  CHECK(feed(bob, &alice, &ct, 501) == 0 && last_kind(&seen) == SC_EV_EDITED, "convo: an edit in its window");
  memset(&h, 0, sizeof h);
  sc_history(bob, "alice", hist_cb, &h);
  CHECK(h.n == 1 && h.edited && !strcmp(h.text, "hello friend"), "convo: the row has the new text, edited");
  ct.ts = T + (uint64_t)SC_EDIT_WINDOW_S * 1000 + 1;
  ct.text = (const uint8_t *)"late";
  ct.text_len = 4;
  CHECK(feed(bob, &alice, &ct, 502) == 0 && last_kind(&seen) == SC_EV_CONVO_REFUSED &&
            seen.reason[seen.n - 1] == SC_R_OUT_OF_WINDOW,
        "convo: an edit past 24 hours is refused");
  ct.ts = T + 2000;
  ct.ref_ts = T + 1;
  CHECK(feed(bob, &alice, &ct, 503) == 0 && last_kind(&seen) == SC_EV_CONVO_REFUSED &&
            seen.reason[seen.n - 1] == SC_R_UNKNOWN_MESSAGE,
        "convo: an edit of an unknown message is refused");
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_REACTION;
  ct.ts = T + 3000;
  snprintf(ct.ref_author, sizeof ct.ref_author, "alice");
  ct.ref_ts = T;
  snprintf(ct.emoji, sizeof ct.emoji, "a\x1b");
  CHECK(feed(bob, &alice, &ct, 504) == 0 && last_kind(&seen) == SC_EV_CONVO_REFUSED &&
            seen.reason[seen.n - 1] == SC_R_BAD_EMOJI,
        "convo: a reaction with a control character is refused");
  snprintf(ct.emoji, sizeof ct.emoji, "\xe2\x9d\xa4");
  CHECK(feed(bob, &alice, &ct, 505) == 0 && last_kind(&seen) == SC_EV_REACTION, "convo: a reaction");
  snprintf(ct.emoji, sizeof ct.emoji, "\xf0\x9f\x91\x8d");
  ct.ts++;
  feed(bob, &alice, &ct, 506);
  memset(&h, 0, sizeof h);
  sc_history(bob, "alice", hist_cb, &h);
  CHECK(h.reactions == 1, "convo: one reaction per person (replaced)");
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_DELETE;
  ct.ts = T + 5000;
  ct.ref_ts = T;
  CHECK(feed(bob, &alice, &ct, 507) == 0 && last_kind(&seen) == SC_EV_DELETED, "convo: a delete");
  memset(&h, 0, sizeof h);
  sc_history(bob, "alice", hist_cb, &h);
  CHECK(h.n == 1 && h.deleted && h.text[0] == 0 && h.reactions == 0, "convo: a tombstone without text or reactions");

  /* A disappearing text: deleted when its time comes. */
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_TEXT_EX;
  ct.ts = T + 6000;
  ct.timer_s = 1;
  ct.text = (const uint8_t *)"short lived";
  ct.text_len = 11;
  CHECK(feed(bob, &alice, &ct, 508) == 0, "convo: a disappearing text arrives");
  memset(&h, 0, sizeof h);
  sc_history(bob, "alice", hist_cb, &h);
  CHECK(h.n == 2 && h.expire > 0, "convo: it has its expiry");
  for (i = 0; i < 40 && h.n == 2; i++) {
    usleep(100000);
    sc_expire(bob);
    memset(&h, 0, sizeof h);
    sc_history(bob, "alice", hist_cb, &h);
  }
  CHECK(h.n == 1, "convo: sc_expire deleted it when due");

  /* Blocked: dropped. */
  CHECK(sc_block(bob, "alice", 1) == 0, "convo: block");
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_TEXT;
  ct.ts = T + 7000;
  ct.text = (const uint8_t *)"you blocked me";
  ct.text_len = 14;
  i = seen.n;
  CHECK(feed(bob, &alice, &ct, 509) == 0 && seen.n == i, "convo: a blocked user's message is not shown");
  memset(&h, 0, sizeof h);
  sc_history(bob, "alice", hist_cb, &h);
  CHECK(h.n == 1, "convo: ... nor stored");
  sotto_session_free(alice.s);
  account_free(alice.acct);
  sc_client_free(bob);
}

/* ---- the key-transparency record (kt.c) -------------------------------------- */

static void test_kt_record(void) {
  struct store *st = NULL;
  struct kt_state a, b;
  char dir[600], err[256];
  uint8_t junk[8] = {1, 1, 0, 0, 0, 0, 0, 0};
  snprintf(dir, sizeof dir, "%s/kt-record", tmpl);
  CHECK(mkdir(dir, 0700) == 0 && store_create(&st, dir, TPASS, err, sizeof err) == 0, "kt: a store");
  if (!st) return;
  CHECK(kt_load(st, &a) == 0 && !a.pinned && !a.has_head && kt_required(&a) == 0, "kt: absent record = defaults");
  memset(&a, 0, sizeof a);
  a.pinned = 1;
  memset(a.sig_pk, 7, sizeof a.sig_pk);
  a.n_wit = 2;
  snprintf(a.wit[0].name, sizeof a.wit[0].name, "w1");
  snprintf(a.wit[1].name, sizeof a.wit[1].name, "witness.example-2");
  a.wit[1].added = 1;
  a.wit[1].last_size = 42;
  a.has_head = 1;
  memset(a.head, 9, sizeof a.head);
  a.has_own = 1;
  a.own_version = 3;
  a.mon_result = KT_MON_ALERT;
  a.mon_time = 1234;
  snprintf(a.mon_detail, sizeof a.mon_detail, "alert");
  CHECK(store_begin(st) == 0 && kt_save(st, &a) == 0 && store_commit(st) == 0, "kt: record saved");
  CHECK(kt_load(st, &b) == 0 && memcmp(&a, &b, sizeof a) == 0, "kt: record read back as saved");
  CHECK(kt_required(&b) == 1, "kt: by default one witness is required when any is known");
  b.k_set = 1;
  b.k = 0;
  CHECK(kt_required(&b) == 0, "kt: k chosen by the user");
  CHECK(store_begin(st) == 0 && store_put(st, "kt", junk, sizeof junk) == 0 && store_commit(st) == 0 &&
            kt_load(st, &b) == STORE_E_CORRUPT && !b.pinned,
        "kt: a malformed record is refused, the state cleared");
  junk[0] = 2;
  CHECK(store_begin(st) == 0 && store_put(st, "kt", junk, 1) == 0 && store_commit(st) == 0 &&
            kt_load(st, &b) == STORE_E_CORRUPT,
        "kt: an unknown record version is refused");
  store_close(st);
}


/* ---- multi-device: record names, transcripts, refusals ------------------------- */

static int seal_from(struct peer *p, uint32_t from_dev, const char *to, const struct content *ct, uint8_t *out,
                     size_t cap, size_t *len) {
  struct rec_wr w;
  struct sotto_addresses ad;
  int type = 0;
  client_addresses(&ad, p->name, from_dev, to, 1, 1);
  rec_wr_init(&w, SC_MAX_TEXT + 16384);
  if (content_encode(&w, ct) || sotto_session_encrypt_addressed(p->s, &ad, out, cap, len, &type, w.p, w.len))
    type = -1;
  rec_wr_free(&w);
  return type;
}

/* Records "devlist/NAME" as devices.c does: account key acct (device 1) and
 * device 2 under dev2 (its private key dev2_priv signs its membership). */
static int put_list(struct sc_client *c, const char *name, const struct sotto_identity *acct,
                    const struct sotto_identity *dev2) {
  struct sotto_devlist *l = calloc(1, sizeof *l);
  uint8_t *buf = malloc(SOTTO_DEVLIST_MAX_LEN);
  struct rec_wr w;
  char rn[64];
  size_t len = 0;
  int rc = -1;
  if (!l || !buf) goto out;
  snprintf(l->username, sizeof l->username, "%s", name);
  memcpy(l->account_key, acct->pub, 32);
  l->version = 2;
  l->n = 2;
  l->dev[0].device_id = 1;
  memcpy(l->dev[0].device_key, acct->pub, 32);
  l->dev[1].device_id = 2;
  memcpy(l->dev[1].device_key, dev2->pub, 32);
  snprintf(l->dev[1].name, sizeof l->dev[1].name, "laptop");
  if (sotto_devlist_member_sign(l->dev[0].member_sig, acct->priv, name, acct->pub, 1) ||
      sotto_devlist_member_sign(l->dev[1].member_sig, dev2->priv, name, acct->pub, 2) ||
      sotto_devlist_sign(l, acct->priv, buf, SOTTO_DEVLIST_MAX_LEN, &len))
    goto out;
  rec_wr_init(&w, len + 8);
  rec_put_u8(&w, 1);
  rec_put_str16(&w, buf, len);
  snprintf(rn, sizeof rn, "devlist/%s", name);
  rc = rec_wr_ok(&w) || store_begin(c->st) || store_put(c->st, rn, w.p, w.len) || store_commit(c->st) ? -1 : 0;
  rec_wr_free(&w);
out:
  free(l);
  free(buf);
  return rc;
}

static int has_seen(const struct seen *s, int from, int kind, const char *peer, const char *text) {
  int i;
  for (i = from; i < s->n; i++)
    if (s->kind[i] == kind && (!peer || !strcmp(s->peer[i], peer)) && (!text || !strcmp(s->text[i], text))) return 1;
  return 0;
}

static void test_multidevice(void) {
  struct seen seen;
  struct sotto_bundle b;
  struct sc_client *bob;
  struct peer alice, laptop, alice2;
  struct content ct, in, out;
  struct rec_wr w, iw;
  struct sotto_session *s = NULL;
  struct sotto_devlist *l = calloc(1, sizeof *l);
  uint8_t env[8192], key[32], tr[400];
  char rn[64];
  size_t len = 0;
  int type, n;

  /* record names: device 1 keeps the name of before */
  session_rec_name(rn, sizeof rn, "alice", 1);
  CHECK(!strcmp(rn, "session/alice"), "multidevice: device 1's session keeps the record name session/NAME");
  session_rec_name(rn, sizeof rn, "alice", 7);
  CHECK(!strcmp(rn, "dsession/alice/7"), "multidevice: device 7's session is dsession/NAME/7");
  session_rec_name(rn, sizeof rn, "alice", 0);
  CHECK(!strcmp(rn, "session/alice"), "multidevice: device 0 (unknown) is device 1");

  /* transcript content: round trip, and what is refused */
  memset(&in, 0, sizeof in);
  in.kind = CONTENT_TEXT;
  in.ts = 42;
  in.text = (const uint8_t *)"sent elsewhere";
  in.text_len = 14;
  rec_wr_init(&iw, SC_MAX_TEXT + 8192);
  rec_wr_init(&w, SC_MAX_TEXT + 16384);
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_TRANSCRIPT;
  ct.ts = 42;
  snprintf(ct.to, sizeof ct.to, "carol");
  CHECK(content_encode(&iw, &in) == 0, "multidevice: an inner text encodes");
  ct.inner = iw.p;
  ct.inner_len = iw.len;
  CHECK(content_encode(&w, &ct) == 0 && content_decode(&out, w.p, w.len) == 0 && out.kind == CONTENT_TRANSCRIPT &&
            !strcmp(out.to, "carol") && out.inner_len == iw.len && !memcmp(out.inner, iw.p, iw.len),
        "multidevice: a transcript (kind 8) round-trips: recipient and inner content");
  CHECK(content_decode(&in, out.inner, out.inner_len) == 0 && in.kind == CONTENT_TEXT && in.text_len == 14,
        "multidevice: ... and its inner content decodes");
  if (w.len <= sizeof tr) memcpy(tr, w.p, w.len);
  rec_wr_free(&w);
  rec_wr_init(&w, SC_MAX_TEXT + 16384);
  snprintf(ct.to, sizeof ct.to, "Not A Name");
  CHECK(content_encode(&w, &ct) != 0, "multidevice: a transcript to an invalid username is not encoded");
  snprintf(ct.to, sizeof ct.to, "carol");
  {
    /* a transcript inside a transcript: refused both ways */
    uint8_t nested[2] = {CONTENT_VERSION, CONTENT_TRANSCRIPT};
    ct.inner = nested;
    ct.inner_len = 2;
    rec_wr_free(&w);
    rec_wr_init(&w, SC_MAX_TEXT + 16384);
    CHECK(content_encode(&w, &ct) != 0, "multidevice: a transcript of a transcript is not encoded");
    /* the same bytes made by hand: version | 8 | ts | str16 "carol" | u32 2 | 01 08 | 0x80 */
    {
      uint8_t raw[32];
      size_t k = 0;
      raw[k++] = CONTENT_VERSION;
      raw[k++] = CONTENT_TRANSCRIPT;
      memset(raw + k, 0, 8);
      k += 8;
      raw[k++] = 0;
      raw[k++] = 5;
      memcpy(raw + k, "carol", 5);
      k += 5;
      raw[k++] = 0;
      raw[k++] = 0;
      raw[k++] = 0;
      raw[k++] = 2;
      raw[k++] = CONTENT_VERSION;
      raw[k++] = CONTENT_TRANSCRIPT;
      raw[k++] = 0x80;
      CHECK(content_decode(&out, raw, k) != 0, "multidevice: a transcript of a transcript does not decode");
      raw[k - 2] = CONTENT_TEXT;
      CHECK(content_decode(&out, raw, k) == 0, "multidevice: ... the same bytes with an inner text do");
      raw[k - 4] = 9; /* inner length past the end */
      CHECK(content_decode(&out, raw, k) != 0, "multidevice: an inner length past the end does not decode");
    }
  }
  rec_wr_free(&w);
  rec_wr_free(&iw);

  memset(&seen, 0, sizeof seen);
  bob = make_bob("bob-md", &seen, &b);
  make_peer(&alice, &b, "alice");
  b.has_one_time_prekey = 0;
  make_peer(&laptop, &b, "bob"); /* bob's own device 2, with its own device key */
  make_peer(&alice2, &b, "alice");

  /* per-device session records are apart */
  CHECK(store_begin(bob->st) == 0 && session_save_dev(bob->st, "alice", 2, laptop.s) == 0 && store_commit(bob->st) == 0,
        "multidevice: a device 2 session saved");
  CHECK(session_load_dev(bob->st, "alice", 1, &s) == 0, "multidevice: ... device 1 of the same user has none");
  sotto_session_free(s);
  CHECK(session_load_dev(bob->st, "alice", 2, &s) == 1, "multidevice: ... device 2's is found");
  sotto_session_free(s);
  CHECK(store_begin(bob->st) == 0 && store_del(bob->st, "dsession/alice/2") == 0 && store_commit(bob->st) == 0,
        "multidevice: (removed again)");

  /* alice writes from device 1: a contact now */
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_TEXT;
  ct.ts = 1000;
  ct.text = (const uint8_t *)"hi";
  ct.text_len = 2;
  type = seal_from(&alice, 1, "bob", &ct, env, sizeof env, &len);
  bob->env_device = 1;
  CHECK(inbox_process(bob, NULL, 500, "alice", type, env, len) == 0 && has_seen(&seen, 0, SC_EV_MESSAGE, "alice", "hi"),
        "multidevice: alice's device 1 is heard (no list: an account of before lists)");

  /* a device of alice that no list names: refused */
  type = seal_from(&alice2, 2, "bob", &ct, env, sizeof env, &len);
  n = seen.n;
  bob->env_device = 2;
  CHECK(inbox_process(bob, NULL, 501, "alice", type, env, len) == 0 && has_seen(&seen, n, SC_EV_DEVICE_REFUSED, "alice", NULL) &&
            !has_seen(&seen, n, SC_EV_MESSAGE, NULL, NULL),
        "multidevice: a message from alice's device 2, in no list of hers: device_refused, not shown");
  CHECK(seen.n > n && seen.count[seen.n - 1] == 2, "multidevice: ... the event names device 2");
  n = seen.n;
  CHECK(inbox_process(bob, NULL, 501, "alice", type, env, len) == 0 && seen.n == n,
        "multidevice: ... and it was acknowledged once (seen)");

  /* a linked device of a stranger, with no connection to fetch their list:
   * held, not refused and not decrypted (docs/multi-device.md, "Held, not
   * dropped") */
  n = seen.n;
  CHECK(inbox_process(bob, NULL, 502, "dave", type, env, len) == 0 && has_seen(&seen, n, SC_EV_DEVICE_HELD, "dave", NULL) &&
            !has_seen(&seen, n, SC_EV_DEVICE_REFUSED, NULL, NULL) && !has_seen(&seen, n, SC_EV_MESSAGE, NULL, NULL),
        "multidevice: a first message from a stranger's device 2 that cannot be checked now is held");
  {
    uint8_t *hv = NULL;
    size_t hvn = 0;
    CHECK(store_get(bob->st, "dheld/dave/00000000000000000502", &hv, &hvn) == 1 && hvn == 18 + len &&
              memcmp(hv + 18, env, len) == 0,
          "multidevice: ... kept as it came (dheld/dave/SID)");
    store_free_value(hv, hvn);
    CHECK(session_load_dev(bob->st, "dave", 2, &s) == 0, "multidevice: ... no session made with dave's device 2");
    sotto_session_free(s);
    n = seen.n;
    CHECK(inbox_process(bob, NULL, 502, "dave", type, env, len) == 0 && seen.n == n,
          "multidevice: ... acknowledged once (seen)");
    CHECK(inbox_retry_device_held(bob, 1) == 0 && seen.n == n,
          "multidevice: ... not connected: the retry leaves it held");
  }

  /* alice's list names device 2 under alice2's key: heard */
  CHECK(put_list(bob, "alice", &alice.acct->id, &alice2.acct->id) == 0, "multidevice: alice's list {1, 2} recorded");
  CHECK(devices_list_of(bob, "alice", l) == 1 && inbox_device_listed(l, alice.acct->id.pub, 2, key) == 1 &&
            !memcmp(key, alice2.acct->id.pub, 32),
        "multidevice: device 2 is listed, under its own key");
  CHECK(inbox_device_listed(l, alice.acct->id.pub, 3, key) == 0, "multidevice: device 3 is not");
  CHECK(inbox_device_listed(l, alice2.acct->id.pub, 2, key) == 0, "multidevice: a list under another account key counts for nothing");
  ct.ts = 1001;
  ct.text = (const uint8_t *)"from laptop";
  ct.text_len = 11;
  type = seal_from(&alice2, 2, "bob", &ct, env, sizeof env, &len);
  n = seen.n;
  CHECK(inbox_process(bob, NULL, 503, "alice", type, env, len) == 0 && has_seen(&seen, n, SC_EV_MESSAGE, "alice", "from laptop"),
        "multidevice: a message from alice's listed device 2 is shown");

  /* a group message (SenderKeyMessage) from an unlisted device: refused before it is parsed */
  n = seen.n;
  bob->env_device = 3;
  CHECK(inbox_process(bob, NULL, 510, "alice", SOTTO_MSG_SENDERKEY, env, len) == 0 &&
            has_seen(&seen, n, SC_EV_DEVICE_REFUSED, "alice", NULL) && seen.count[seen.n - 1] == 3,
        "multidevice: a group message from alice's unlisted device 3 is refused");
  bob->env_device = 2;

  /* a listed device whose session key is not its listed key: refused */
  n = seen.n;
  {
    struct peer other;
    make_peer(&other, &b, "alice");
    type = seal_from(&other, 2, "bob", &ct, env, sizeof env, &len);
    CHECK(inbox_process(bob, NULL, 504, "alice", type, env, len) == 0 &&
              has_seen(&seen, n, SC_EV_DEVICE_REFUSED, "alice", NULL) && !has_seen(&seen, n, SC_EV_MESSAGE, NULL, NULL),
          "multidevice: device 2 of alice under another key than the listed one is refused");
    sotto_session_free(other.s);
    account_free(other.acct);
  }

  /* transcripts: only from our own listed devices */
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_TRANSCRIPT;
  ct.ts = 42;
  snprintf(ct.to, sizeof ct.to, "carol");
  rec_wr_init(&iw, SC_MAX_TEXT + 8192);
  memset(&in, 0, sizeof in);
  in.kind = CONTENT_TEXT;
  in.ts = 42;
  in.text = (const uint8_t *)"sent elsewhere";
  in.text_len = 14;
  if (content_encode(&iw, &in)) printf("FAIL encode\n");
  ct.inner = iw.p;
  ct.inner_len = iw.len;
  type = seal_from(&laptop, 2, "bob", &ct, env, sizeof env, &len);
  n = seen.n;
  bob->env_device = 2;
  CHECK(inbox_process(bob, NULL, 600, "bob", type, env, len) == 0 && has_seen(&seen, n, SC_EV_DEVICE_REFUSED, "bob", NULL) &&
            !has_seen(&seen, n, SC_EV_SENT, NULL, NULL),
        "multidevice: a transcript from our device 2 while our list does not name it: refused");
  CHECK(put_list(bob, "bob", &bob->acct->id, &laptop.acct->id) == 0, "multidevice: our own list {1, 2} recorded");
  type = seal_from(&laptop, 2, "bob", &ct, env, sizeof env, &len);
  n = seen.n;
  CHECK(inbox_process(bob, NULL, 601, "bob", type, env, len) == 0 && has_seen(&seen, n, SC_EV_SENT, "carol", "sent elsewhere"),
        "multidevice: a transcript from our listed device 2 shows the text as sent by us to carol");
  /* a transcript from a contact: not ours to take */
  type = seal_from(&alice, 1, "bob", &ct, env, sizeof env, &len);
  bob->env_device = 1;
  n = seen.n;
  CHECK(inbox_process(bob, NULL, 602, "alice", type, env, len) == 0 && !has_seen(&seen, n, SC_EV_SENT, NULL, NULL) &&
            has_seen(&seen, n, SC_EV_UNREADABLE, "alice", NULL),
        "multidevice: a transcript from a contact is refused (unreadable: unexpected kind)");
  /* something other than a transcript from our own device */
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_TEXT;
  ct.ts = 77;
  ct.text = (const uint8_t *)"odd";
  ct.text_len = 3;
  type = seal_from(&laptop, 2, "bob", &ct, env, sizeof env, &len);
  bob->env_device = 2;
  n = seen.n;
  CHECK(inbox_process(bob, NULL, 603, "bob", type, env, len) == 0 && has_seen(&seen, n, SC_EV_UNREADABLE, "bob", NULL) &&
            !has_seen(&seen, n, SC_EV_MESSAGE, NULL, NULL),
        "multidevice: a plain text from our own device is not taken as a message");
  /* CONSENT (kind 9): a decision of our own other device, from a contact refused */
  {
    struct content cs, back;
    struct rec_wr cw;
    int st = -1;
    memset(&cs, 0, sizeof cs);
    cs.kind = CONTENT_CONSENT;
    cs.ts = 78;
    cs.consent_action = CONSENT_ACT_BLOCK;
    snprintf(cs.to, sizeof cs.to, "mallory");
    rec_wr_init(&cw, 512);
    CHECK(content_encode(&cw, &cs) == 0 && content_decode(&back, cw.p, cw.len) == 0 && back.kind == CONTENT_CONSENT &&
              back.consent_action == CONSENT_ACT_BLOCK && strcmp(back.to, "mallory") == 0,
          "multidevice: CONSENT (kind 9) round-trips: action and user");
    rec_wr_free(&cw);
    rec_wr_init(&cw, 512);
    cs.consent_action = 5;
    CHECK(content_encode(&cw, &cs) != 0, "multidevice: CONSENT with an unknown action is not encoded");
    rec_wr_free(&cw);
    cs.consent_action = CONSENT_ACT_BLOCK;
    type = seal_from(&alice, 1, "bob", &cs, env, sizeof env, &len);
    bob->env_device = 1;
    n = seen.n;
    CHECK(inbox_process(bob, NULL, 605, "alice", type, env, len) == 0 && has_seen(&seen, n, SC_EV_UNREADABLE, "alice", NULL) &&
              sc_consent(&st, bob, "mallory") == 0 && st == 0,
          "multidevice: a CONSENT from a contact is refused; nobody is blocked");
    type = seal_from(&laptop, 2, "bob", &cs, env, sizeof env, &len);
    bob->env_device = 2;
    n = seen.n;
    CHECK(inbox_process(bob, NULL, 606, "bob", type, env, len) == 0 && !has_seen(&seen, n, SC_EV_UNREADABLE, NULL, NULL) &&
              sc_consent(&st, bob, "mallory") == 0 && st == SC_CONSENT_BLOCKED,
          "multidevice: a CONSENT from our listed device 2 blocks mallory here too");
    cs.consent_action = CONSENT_ACT_UNBLOCK;
    type = seal_from(&laptop, 2, "bob", &cs, env, sizeof env, &len);
    CHECK(inbox_process(bob, NULL, 607, "bob", type, env, len) == 0 && sc_consent(&st, bob, "mallory") == 0 && st == 0,
          "multidevice: ... and its unblock unblocks");
  }
  /* a transcript of an edit of a message that is not ours: refused, nothing changed */
  {
    struct content e;
    memset(&e, 0, sizeof e);
    e.kind = CONTENT_EDIT;
    e.ts = 1002;
    e.ref_ts = 1001; /* alice's "from laptop" above: not ours */
    e.text = (const uint8_t *)"hijacked";
    e.text_len = 8;
    rec_wr_free(&iw);
    rec_wr_init(&iw, SC_MAX_TEXT + 8192);
    if (content_encode(&iw, &e)) printf("FAIL encode\n");
    memset(&ct, 0, sizeof ct);
    ct.kind = CONTENT_TRANSCRIPT;
    ct.ts = 1002;
    snprintf(ct.to, sizeof ct.to, "alice");
    ct.inner = iw.p;
    ct.inner_len = iw.len;
    type = seal_from(&laptop, 2, "bob", &ct, env, sizeof env, &len);
    bob->env_device = 2;
    n = seen.n;
    CHECK(inbox_process(bob, NULL, 608, "bob", type, env, len) == 0 && has_seen(&seen, n, SC_EV_CONVO_REFUSED, "bob", NULL) &&
              !has_seen(&seen, n, SC_EV_EDITED, NULL, NULL),
          "multidevice: our other device's edit of alice's message is refused here (not ours)");
  }
  /* an envelope naming this very device as its sender */
  bob->env_device = 1;
  n = seen.n;
  CHECK(inbox_process(bob, NULL, 604, "bob", type, env, len) == 0 && !has_seen(&seen, n, SC_EV_MESSAGE, NULL, NULL) &&
            !has_seen(&seen, n, SC_EV_SENT, NULL, NULL),
        "multidevice: an envelope from our own device id is dropped");
  rec_wr_free(&iw);
  sotto_session_free(alice.s);
  sotto_session_free(laptop.s);
  sotto_session_free(alice2.s);
  account_free(alice.acct);
  account_free(laptop.acct);
  account_free(alice2.acct);
  sc_client_free(bob);
  free(l);
}

/* ---- linking: the provisioning messages (provision.c) ----------------------------------- */

/* The link code round-trips and refuses what is not one; the new device's
 * keys carry a tag only the code's secret makes; a provisioning message
 * opens only with the right ephemeral key, slot, secret and device keys,
 * and not after any byte changed; the reply is one signature. */
static void test_provision(void) {
  uint8_t slot[PROV_SLOT_LEN], secret[PROV_SECRET_LEN], slot2[PROV_SLOT_LEN], secret2[PROV_SECRET_LEN];
  uint8_t eph_priv[32], other_priv[32], other_pub[32], kb[PROV_KEYS_MAX], *blob = NULL, sig[64], rep[PROV_REPLY_LEN];
  char code[PROV_CODE_TEXT_MAX], fp[PROV_FINGERPRINT_LEN + 1], upper[PROV_CODE_TEXT_MAX];
  struct prov_keys k, k2;
  struct prov_msg *m = calloc(1, sizeof *m), *o = calloc(1, sizeof *o);
  size_t kl = 0, bl = 0, i;
  if (!m || !o) {
    CHECK(0, "provision: memory");
    return;
  }
  randombytes_buf(slot, sizeof slot);
  randombytes_buf(secret, sizeof secret);
  prov_code_format(code, slot, secret);
  CHECK(strlen(code) == PROV_CODE_CHARS + 6, "provision: a code is 42 characters in 7 groups");
  CHECK(prov_code_parse(slot2, secret2, code) == 0 && memcmp(slot, slot2, sizeof slot) == 0 &&
            memcmp(secret, secret2, sizeof secret) == 0,
        "provision: the code round-trips");
  for (i = 0; code[i]; i++) upper[i] = (char)(code[i] >= 'a' && code[i] <= 'z' ? code[i] - 32 : code[i] == '-' ? ' ' : code[i]);
  upper[i] = 0;
  CHECK(prov_code_parse(slot2, secret2, upper) == 0 && memcmp(slot, slot2, sizeof slot) == 0,
        "provision: upper case and spaces are the same code");
  CHECK(prov_code_parse(slot2, secret2, "abc") == -1, "provision: a short code is refused");
  {
    char longer[PROV_CODE_TEXT_MAX + 2];
    snprintf(longer, sizeof longer, "%sa", code);
    CHECK(prov_code_parse(slot2, secret2, longer) == -1, "provision: a longer code is refused");
    snprintf(longer, sizeof longer, "%s", code);
    longer[3] = '1'; /* not base32 */
    CHECK(prov_code_parse(slot2, secret2, longer) == -1, "provision: a non-base32 character is refused");
    snprintf(longer, sizeof longer, "%s", code);
    longer[strlen(longer) - 1] = longer[strlen(longer) - 1] == 'b' ? 'c' : 'b'; /* low bits not zero */
    CHECK(prov_code_parse(slot2, secret2, longer) == -1, "provision: unused low bits set are refused");
  }

  /* keys and their tag */
  memset(&k, 0, sizeof k);
  crypto_box_keypair(k.eph, eph_priv);
  randombytes_buf(k.identity, 32);
  snprintf(k.name, sizeof k.name, "laptop");
  CHECK(prov_keys_encode(kb, sizeof kb, &kl, &k, secret) == 0, "provision: keys encode");
  CHECK(prov_keys_decode(&k2, kb, kl, secret) == 0 && memcmp(&k, &k2, sizeof k) == 0, "provision: keys decode");
  secret2[0] = (uint8_t)(secret[0] ^ 1);
  memcpy(secret2 + 1, secret + 1, sizeof secret - 1);
  CHECK(prov_keys_decode(&k2, kb, kl, secret2) == -2, "provision: keys under another secret: the tag fails");
  kb[10] ^= 0x40;
  CHECK(prov_keys_decode(&k2, kb, kl, secret) == -2, "provision: swapped key bytes: the tag fails");
  kb[10] ^= 0x40;
  CHECK(prov_keys_decode(&k2, kb, kl - 1, secret) == -1, "provision: cut keys are malformed");
  snprintf(k2.name, sizeof k2.name, "bad\nname");
  memcpy(k2.identity, k.identity, 32);
  CHECK(prov_keys_encode(kb, sizeof kb, &kl, &k2, secret) == -1, "provision: a control character in a name is refused");

  /* the provisioning message */
  snprintf(m->username, sizeof m->username, "alice");
  randombytes_buf(m->account_key, 32);
  m->device_id = 2;
  randombytes_buf(m->secret, 32);
  snprintf(m->server, sizeof m->server, "127.0.0.1:7443");
  memset(m->pin, 'a', 64);
  m->n_contacts = 2;
  snprintf(m->contacts[0].name, sizeof m->contacts[0].name, "bob");
  randombytes_buf(m->contacts[0].key, 32);
  m->contacts[0].verified = 1;
  snprintf(m->contacts[1].name, sizeof m->contacts[1].name, "carol");
  m->n_groups = 1;
  snprintf(m->groups[0].name, sizeof m->groups[0].name, "team");
  m->groups[0].epoch = 3;
  m->groups[0].n = 2;
  snprintf(m->groups[0].members[0], sizeof m->groups[0].members[0], "alice");
  snprintf(m->groups[0].members[1], sizeof m->groups[0].members[1], "bob");
  m->list_version = 7;
  {
    /* the payload alone: version 2 carries the list floor; version 1 (a
     * device 1 of before) has none; version 2 with a floor of 0, or cut
     * inside it, is malformed */
    uint8_t *pl = NULL;
    size_t pn = 0;
    CHECK(prov_payload_encode(&pl, &pn, m, PROV_MAX_BLOB) == 0 && pl[0] == PROV_PAYLOAD_VERSION &&
              prov_payload_decode(o, pl, pn) == 0 && o->list_version == 7,
          "provision: the payload carries the list version device 1 signs (version 2)");
    CHECK(prov_payload_decode(o, pl, pn - 1) == -1 && o->username[0] == 0,
          "provision: a payload cut inside the list version is malformed");
    pl[pn - 1] = 0;
    pl[pn - 2] = 0;
    pl[pn - 3] = 0;
    pl[pn - 4] = 0;
    CHECK(prov_payload_decode(o, pl, pn) == -1, "provision: list version 0 in a version 2 payload is malformed");
    pl[0] = 1;
    CHECK(prov_payload_decode(o, pl, pn) == -1, "provision: a version 1 payload with a list version is malformed");
    CHECK(prov_payload_decode(o, pl, pn - 4) == 0 && o->list_version == 0,
          "provision: a version 1 payload (device 1 of before) decodes without a floor");
    sodium_memzero(pl, pn);
    free(pl);
  }
  CHECK(prov_seal(&blob, &bl, m, &k, slot, secret) == 0 && blob && bl > PROV_HDR_LEN, "provision: seal");
  CHECK(prov_open(o, blob, bl, &k, eph_priv, slot, secret) == 0, "provision: the new device opens it");
  CHECK(strcmp(o->username, "alice") == 0 && o->device_id == 2 && memcmp(o->secret, m->secret, 32) == 0 &&
            o->n_contacts == 2 && o->contacts[0].verified == 1 && o->contacts[1].verified == 0 &&
            o->n_groups == 1 && o->groups[0].n == 2 && strcmp(o->groups[0].members[1], "bob") == 0 &&
            o->groups[0].epoch == 3 && strcmp(o->pin, m->pin) == 0 && o->list_version == 7,
        "provision: every field comes through");
  crypto_box_keypair(other_pub, other_priv);
  CHECK(prov_open(o, blob, bl, &k, other_priv, slot, secret) == -2 && o->username[0] == 0,
        "provision: the wrong ephemeral key fails (output zeroed)");
  slot2[0] = (uint8_t)(slot[0] ^ 1);
  memcpy(slot2 + 1, slot + 1, sizeof slot - 1);
  CHECK(prov_open(o, blob, bl, &k, eph_priv, slot2, secret) == -2, "provision: another slot fails");
  CHECK(prov_open(o, blob, bl, &k, eph_priv, slot, secret2) == -2, "provision: another link secret fails");
  k2 = k;
  k2.identity[0] ^= 1;
  CHECK(prov_open(o, blob, bl, &k2, eph_priv, slot, secret) == -2,
        "provision: another device's identity key fails");
  {
    int all = 1;
    size_t at[] = {1, 20, 40, 60, bl / 2, bl - 1};
    for (i = 0; i < sizeof at / sizeof at[0]; i++) {
      blob[at[i]] ^= 0x01;
      if (prov_open(o, blob, bl, &k, eph_priv, slot, secret) != -2) all = 0;
      blob[at[i]] ^= 0x01;
    }
    CHECK(all, "provision: a flipped byte anywhere fails");
    blob[0] = 9;
    CHECK(prov_open(o, blob, bl, &k, eph_priv, slot, secret) == -1, "provision: another version is malformed");
    blob[0] = PROV_VERSION;
    CHECK(prov_open(o, blob, PROV_HDR_LEN + 3, &k, eph_priv, slot, secret) == -1, "provision: a cut blob is malformed");
  }
  /* fields out of bounds are not sealed */
  m->device_id = 1;
  {
    uint8_t *b2 = NULL;
    size_t l2 = 0;
    CHECK(prov_seal(&b2, &l2, m, &k, slot, secret) == -1 && !b2, "provision: device 1 cannot be provisioned");
    m->device_id = 2;
    snprintf(m->contacts[1].name, sizeof m->contacts[1].name, "Carol");
    CHECK(prov_seal(&b2, &l2, m, &k, slot, secret) == -1, "provision: a bad contact name is not sealed");
    free(b2);
  }
  /* the reply */
  randombytes_buf(sig, sizeof sig);
  prov_reply_encode(rep, sig);
  CHECK(prov_reply_decode(sig, rep, sizeof rep) == 0, "provision: reply round-trips");
  CHECK(prov_reply_decode(sig, rep, sizeof rep - 1) == -1, "provision: a short reply is refused");
  prov_fingerprint(fp, k.identity);
  CHECK(strlen(fp) == PROV_FINGERPRINT_LEN, "provision: a fingerprint is 8 groups of 5 digits");
  sodium_memzero(blob, bl);
  free(blob);
  free(m);
  free(o);
}

int main(void) {
  char cmd[64];
  setenv("SOTTO_TEST_KDF", "fast", 1);
  if (sc_global_init() != 0 || !mkdtemp(tmpl)) {
    printf("FAIL setup\n");
    return 1;
  }
  test_errors();
  test_events();
  test_convo();
  test_msglog();
  test_inbox();
  test_outbox();
  test_groups();
  test_group_sk_records();
  test_hold();
  test_backup_format();
  test_kt_record();
  test_multidevice();
  test_provision();
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
  if (system(cmd) != 0) printf("(could not remove %s)\n", tmpl);
  printf("%d checks, %d failed\n", checks, fails);
  return fails ? 1 : 0;
}
