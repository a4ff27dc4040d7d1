/* SPDX-License-Identifier: Apache-2.0 */
/* contact.h: what we know about other people: their identity key (trusted
 * on first use), whether the user verified it, and the pairwise session.
 *
 * Records: "contact/NAME" and "session/NAME" (docs/client.md). */
#ifndef SOTTO_CLIENT_CONTACT_H
#define SOTTO_CLIENT_CONTACT_H

#include <sotto/session.h>
#include <stdint.h>

#include "cli.h"

struct contact {
  char name[CLI_USER_MAX + 1];
  int has_key;
  uint8_t key[SOTTO_PUBKEY_LEN];          /* current identity key */
  int verified;                           /* the user ran 'sotto verify' */
  uint8_t verified_key[SOTTO_PUBKEY_LEN]; /* ... for this key */
  int key_changes;                        /* times the key changed */
};

/* 1 found, 0 absent (c is then a fresh contact named name), <0 STORE_E_*. */
int contact_load(struct store *st, const char *name, struct contact *c);
int contact_save(struct store *st, const struct contact *c);

enum { KEY_SAME = 0, KEY_NEW = 1, KEY_CHANGED = 2 };
/* Records key as the contact's current key; returns KEY_SAME, KEY_NEW (first
 * key) or KEY_CHANGED. A verified contact stays "verified for the old key",
 * which contact_blocked then reports. */
int contact_observe(struct contact *c, const uint8_t key[SOTTO_PUBKEY_LEN]);
/* 1 if the contact was verified and its key changed since. */
int contact_blocked(const struct contact *c);

/* Session record of a contact: 1 and *out, 0 if none (a new empty record in
 * *out), <0 on a store or parse failure. */
int session_load(struct store *st, const char *name, struct sotto_session **out);
int session_save(struct store *st, const char *name, const struct sotto_session *s);

/* Visits every contact (cb returns non-zero to stop). */
int contact_each(struct store *st, int (*cb)(void *ud, const struct contact *c), void *ud);

#endif
