/* SPDX-License-Identifier: Apache-2.0 */
/* contact.h: what we know about other people: their identity key (trusted
 * on first use), whether the user verified it, and the pairwise session.
 *
 * Records: "contact/NAME" and "session/NAME" (docs/client.md). */
#ifndef SOTTO_CLIENT_CONTACT_H
#define SOTTO_CLIENT_CONTACT_H

#include <sotto/session.h>
#include <stdint.h>

#include "core.h"

struct contact {
  char name[SC_USER_MAX + 1];
  int has_key;
  uint8_t key[SOTTO_PUBKEY_LEN];          /* current identity key */
  int verified;                           /* the user ran 'sotto verify' */
  uint8_t verified_key[SOTTO_PUBKEY_LEN]; /* ... for this key */
  int key_changes;                        /* times the key changed */
  /* A different identity key seen under this name and not accepted yet: its
   * messages wait in "held/NAME/SERVERID" until 'sotto trust' or 'sotto
   * verify' accepts it (client_identity_check). */
  int has_pending;
  uint8_t pending_key[SOTTO_PUBKEY_LEN];
  uint32_t n_held; /* held messages of this contact (bounded) */
  /* The identity key our last message to them was encrypted to: sending to
   * another key asks first (deliver.c). */
  int has_sent;
  uint8_t sent_key[SOTTO_PUBKEY_LEN];
};

/* At most this many messages of one contact wait in quarantine; later ones
 * are dropped with a notice (a server cannot make us store without end). */
#define CONTACT_MAX_HELD 50

/* 1 found, 0 absent (c is then a fresh contact named name), <0 STORE_E_*. */
int contact_load(struct store *st, const char *name, struct contact *c);
int contact_save(struct store *st, const struct contact *c);

enum { KEY_SAME = 0, KEY_NEW = 1, KEY_CHANGED = 2 };
/* Records key as the contact's current key; returns KEY_SAME, KEY_NEW (first
 * key) or KEY_CHANGED. A verified contact stays "verified for the old key",
 * which contact_blocked then reports. */
int contact_observe(struct contact *c, const uint8_t key[SOTTO_PUBKEY_LEN]);
/* 1 if the contact was verified and its key changed since, or a new key of
 * theirs is held: nothing is sent to them (1:1 or group) until the user
 * verifies again or accepts the new key. */
int contact_blocked(const struct contact *c);

/* The one place that decides whether an identity key may act under the
 * contact's name (create a session state, speak with the contact's group
 * authority, install a sender key): IDENTITY_TRUSTED for the key we hold
 * (or the first key of a new contact: trust on first use), IDENTITY_HOLD
 * for any other key, verified contact or not. Compares in constant time
 * and changes nothing. Shaped like the library's is_trusted_identity
 * callback (inbox.c passes it as that), so it can move there unchanged. */
enum { IDENTITY_HOLD = 0, IDENTITY_TRUSTED = 1 };
int client_identity_check(const struct contact *c, const uint8_t key[SOTTO_PUBKEY_LEN]);
/* Makes the pending key the contact's key (the user accepted it); verified
 * says whether it was verified (sotto verify) or only trusted (sotto trust). */
void contact_accept_pending(struct contact *c, int verified);

/* Session record of a contact: 1 and *out, 0 if none (a new empty record in
 * *out), <0 on a store or parse failure. */
int session_load(struct store *st, const char *name, struct sotto_session **out);
int session_save(struct store *st, const char *name, const struct sotto_session *s);
/* The same for one device of an account (docs/multi-device.md): device 1
 * keeps "session/NAME" (stores of before per-device sessions need no
 * migration), device D >= 2 is "dsession/NAME/D". */
void session_rec_name(char *out, size_t cap, const char *name, uint32_t device);
int session_load_dev(struct store *st, const char *name, uint32_t device, struct sotto_session **out);
int session_save_dev(struct store *st, const char *name, uint32_t device, const struct sotto_session *s);

/* Visits every contact (cb returns non-zero to stop). */
int contact_each(struct store *st, int (*cb)(void *ud, const struct contact *c), void *ud);

#endif
