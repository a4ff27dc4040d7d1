/* SPDX-License-Identifier: Apache-2.0 */
/* messaging.h: sending contents over pairwise sessions (deliver.c) and
 * processing what arrives (inbox.c), shared by send, receive and group. */
#ifndef SOTTO_CLIENT_MESSAGING_H
#define SOTTO_CLIENT_MESSAGING_H

#include <sotto/session.h>
#include <stdint.h>

#include "core.h"
#include "conn.h"
#include "content.h"
#include "msglog.h"

/* Encrypts ct for user over the pairwise session (PQXDH from a fetched
 * bundle when there is none yet), commits the session, then sends. A
 * changed identity key is an event, and refused (nothing sent) unless
 * c->flags has SC_SEND_ACCEPT_KEY_CHANGE (SC_ERR_KEY_CHANGED_UNCONFIRMED), or
 * always when user was verified and the key changed since
 * (SC_ERR_IDENTITY_CHANGED). 0 or a recorded SC_ERR_*. */
int deliver_pairwise(struct sc_client *c, struct conn *k, const char *user, const struct content *ct);
/* In c->flags, for what the client sends by itself (receipts, retry
 * requests, resends): a key change is neither said nor accepted; the
 * message is just not sent (SC_ERR_KEY_CHANGED_UNCONFIRMED or
 * SC_ERR_IDENTITY_CHANGED, recorded quietly). */
#define DELIVER_CONTROL 0x10000u
/* The addresses of a pairwise message between us (me, my_device) and peer
 * (peer_device): usernames and device ids that encrypt writes into field 6
 * and decrypt checks, under the MAC (docs/protocol.md, "Addresses"). */
void client_addresses(struct sotto_addresses *a, const char *me, uint32_t my_device, const char *peer,
                      uint32_t peer_device, int require);
/* Fan-out to the devices of an account besides one (deliver.c;
 * docs/multi-device.md): a set of (device, listed key, session to start or
 * continue, ciphertext). deliver_pairwise uses it for every device of the
 * recipient's verified list other than device 1, and for our own other
 * devices (sent transcripts); the bench measures it. */
struct fanout;
struct sotto_devlist;
struct fanout *fanout_new(void);
void fanout_free(struct fanout *f);
void fanout_clear(struct fanout *f);
size_t fanout_count(const struct fanout *f);
/* The devices of list l (NULL: none) except device skip, in increasing
 * order; what was prepared for a device whose key is unchanged is kept. */
void fanout_targets(struct fanout *f, const char *user, const struct sotto_devlist *l, uint32_t skip);
/* Inside the caller's transaction: encrypts pt for every device that has no
 * ciphertext yet (its session must exist, or its bundle be prepared) and
 * saves its session. 0 or a recorded SC_ERR_*. */
int fanout_encrypt(struct sc_client *c, struct fanout *f, const uint8_t *pt, size_t pt_len);
/* inbox.c: whether device dev is in list l (signed by account key acct
 * when acct is not NULL): 1 and its listed key, else 0. */
int inbox_device_listed(const struct sotto_devlist *l, const uint8_t *acct, uint32_t dev, uint8_t key[32]);
/* Groups (ops.c): the group called name, loaded, accepted, connected
 * (*opened for sc__release; *g freed by the caller). */
struct grp;
int sc__group_open(struct sc_client *c, const char *name, struct grp **g, int *opened);
/* Sends ct (a group kind; its gid filled in) to every member of g in one
 * SenderKeyMessage, handing our sender key first to those who lack it; m
 * (may be NULL) is logged with the chain step. 0 or a recorded SC_ERR_*. */
int sc__group_send_content(struct sc_sent *out, struct sc_client *c, struct grp *g, struct content *ct,
                           struct msg *m);
/* Sends an already encrypted body (a SenderKeyMessage) to user. */
int deliver_raw(struct sc_client *c, struct conn *k, const char *user, int type, const uint8_t *body, size_t len);
/* Content ct pairwise to each of our own other listed devices (none: 0).
 * A failure is said as an event ("your other devices did not get WHAT")
 * and returned as an SC_ERR_*; it undoes nothing. */
int deliver_own(struct sc_client *c, struct conn *k, const struct content *ct, const char *what);
/* A group message (body of type) to each of our own other listed devices;
 * *n_sent of them took it. 0 or an SC_ERR_* (said as an event). */
int deliver_raw_own(struct sc_client *c, struct conn *k, int type, const uint8_t *body, size_t len, unsigned *n_sent);
/* The same to every device of user's recorded verified list (one
 * SEND_MULTI, one retry after ERR(30)); device 1 alone when there is none. */
int deliver_raw_all(struct sc_client *c, struct conn *k, const char *user, int type, const uint8_t *body,
                    size_t len);

/* Processes one envelope: decrypts, commits every state change together
 * with the message (deduplicated by server id), then gives it to the sink.
 * Returns 0 when the envelope may be acked (shown, or dropped as
 * unreadable after saying so), a negative SC_ERR_* when it must stay on the
 * server (local failure: the store is busy, ...). */
int inbox_process(struct sc_client *c, struct conn *k, uint64_t server_id, const char *sender, int type,
                  const uint8_t *body, size_t len);
/* Processes the messages of user held in quarantine (after the user accepted
 * the key they came from), in server order, then shows what they gave.
 * *released gets how many were processed. 0 or an SC_ERR_*. */
int inbox_release_held(struct sc_client *c, const char *user, unsigned *released);
/* Messages from a contact's linked device that could not be checked yet
 * (SC_EV_DEVICE_HELD, docs/multi-device.md "Held, not dropped"): each is
 * checked again in server order, delivered once when the check passes,
 * refused for good when it fails, kept when it still cannot be made, given
 * up past SC_DEVICE_HOLD_DAYS. Runs when the queue is drained, at most once
 * a minute per connection (force: now). 0 or an SC_ERR_*. */
int inbox_retry_device_held(struct sc_client *c, int force);
/* Shows messages committed earlier but never shown (after a crash). */
int inbox_flush_unshown(struct sc_client *c);
/* A NOTICE of the server (proto.h; never a contact's message): envelopes
 * that expired unread. Logged once (seen by its id, like an envelope) as
 * SC_EV_EXPIRED_SENT or SC_EV_EXPIRED_RECEIVED and shown. */
int inbox_notice(struct sc_client *c, uint64_t notice_id, uint64_t timestamp_ms, const uint8_t *body, size_t len);
/* Envelopes that could not be decrypted are shown one by one only for the
 * first few of each sender; this logs and shows one summary event per
 * sender for the rest and starts counting again. Call it when the queue is
 * drained and at the end. */
int inbox_unreadable_summary(struct sc_client *c);

#endif
