/* SPDX-License-Identifier: Apache-2.0 */
/* convo.h: conversation features (issue 14; docs/client.md,
 * "Conversations"): disappearing-message timers, replies, reactions, edits,
 * deletes for everyone, manual deletion, message requests and blocking.
 *
 * Records (sealed like everything in the store):
 *   "timer/u/PEER"   u32 seconds: the disappearing timer with PEER (absent: off)
 *   "timer/g/GIDHEX" u32 seconds: the disappearing timer of a group
 *   "cq/SEQ"         a change queued while the server was unreachable:
 *                    str16 conversation (USER or "#GROUP") | the encoded content
 *   "cq"             their index: u32 bytes | n x u64 SEQ, oldest first
 *   "gpend/GIDHEX"   the inviter: an invitation to a group from a non-contact,
 *                    not accepted yet (the group is hidden, nothing is sent to it)
 *   "consent/USER"   u8 1 (a message request from USER) or 2 (USER is blocked);
 *                    absent: a contact (so every contact of an older store
 *                    stays one without any migration)
 * Message rows (msglog.h, version 3) carry the timer a message went with,
 * when it disappears, edited / deleted / request flags, the message a
 * reply quotes and the reactions. */
#ifndef SOTTO_CLIENT_CONVO_H
#define SOTTO_CLIENT_CONVO_H

#include <stddef.h>
#include <stdint.h>

#include "content.h"
#include "core.h"
#include "msglog.h"

/* Inside a transaction, after a pairwise message from sender decrypted:
 * its consent state (SC_CONSENT_*). stranger: we held no key of sender
 * before this message; a stranger without a consent record becomes a
 * request (its messages are marked so). STORE_E_* on failure. */
int convo_consent_in(struct sc_client *c, const char *sender, int stranger);
/* The consent state of user (no transaction needed). */
int convo_consent_get(struct sc_client *c, const char *user);
/* Inside a transaction: a conversation kind (or a TEXT from a request)
 * from sender (group: the group's local name, NULL for 1:1). 0 or STORE_E_*. */
int convo_apply(struct sc_client *c, const char *sender, const char *group, const struct content *ct, uint64_t sid,
                int consent);
/* Inside a transaction: a conversation kind we sent from another device of
 * ours, applied as ours (peer: the 1:1 conversation, from a sent
 * transcript; group: the group's local name, from our own SenderKeyMessage)
 * under the same rules as on that device (our own message, the edit and
 * delete windows); what cannot apply is logged as refused. Texts are the
 * inbox's. 0 or STORE_E_*. */
int convo_apply_own(struct sc_client *c, const char *peer, const char *group, const struct content *ct);
/* Inside a transaction: a request from user accepted here (no-op unless it
 * is one): as answering it would (invitations, held receipts). */
int convo_accept_here(struct sc_client *c, const char *user);
/* Inside a transaction: CONSENT (content kind 9) from another device of
 * ours: the request accepted or deleted, the block or unblock, done here
 * too. 0 or STORE_E_*. */
int convo_apply_consent(struct sc_client *c, const struct content *ct);
/* Before a user's send to user: SC_ERR_BLOCKED (recorded) for a blocked
 * user; a pending request becomes a contact (answering accepts). */
int convo_before_send(struct sc_client *c, const char *user);
/* An outgoing 1:1 text: the conversation's timer and the reply under way
 * (sc_send_reply) go into ct (TEXT_EX when either is set). 0 or a recorded
 * SC_ERR_*. convo_out_row copies them into its history row m (expiry
 * counted from now). */
int convo_prepare_out(struct sc_client *c, const char *user, struct content *ct);
void convo_out_row(struct sc_client *c, struct msg *m, const struct content *ct);
/* The same for an outgoing group text (GROUP_TEXT in ct): the group's
 * timer and the reply under way make it a TEXT_EX of scope 1. */
int convo_prepare_group(struct sc_client *c, const uint8_t gid[GROUP_ID_LEN], struct content *ct);
/* The queue of changes made while the server could not be reached
 * (reactions, edits, deletes, timers; group texts): "cq/SEQ" records and
 * their index "cq", at most CQ_MAX of them and CQ_MAX_BYTES in all. */
#define CQ_MAX 128
#define CQ_MAX_BYTES (2u * 1024 * 1024)
/* Queues ct for conv (a username or "#GROUP"); own transaction. 0 or a
 * recorded SC_ERR_* (SC_ERR_OUTBOX_FULL when the queue is full). */
int convo_queue(struct sc_client *c, const char *conv, const struct content *ct);
/* outbox_flush: sends the queued changes in order (needs the link). A
 * connection failure stops it (the rest waits). 0 or an SC_ERR_*. */
int convo_flush(struct sc_client *c);
/* ops.c: sends ct (GROUP_TEXT, or a conversation kind of scope 1) to the
 * group name in one SenderKeyMessage; text: a text row is logged (NULL: a
 * change, no row). 0 or a recorded SC_ERR_*. */
int sc__group_send_ct(struct sc_sent *out, struct sc_client *c, const char *name, struct content *ct,
                      const char *text, size_t len, unsigned flags);
/* The content of a resent text of ours (outbox): TEXT, or TEXT_EX when the
 * row was a reply or went with a timer. */
void convo_resend_content(struct content *ct, const struct msg *m);
/* Inside a transaction: we were just added to the new group gid by
 * inviter; from someone who is not a contact (a request) the invitation
 * waits for acceptance ("gpend/GIDHEX" = inviter): 1, else 0, or STORE_E_*. */
int convo_group_invited(struct sc_client *c, const uint8_t gid[GROUP_ID_LEN], const char *inviter);
/* Inside a transaction: the invitation to gid was accepted on another
 * device of ours (GROUP_STATE): it no longer waits here. 0 or STORE_E_*. */
int convo_group_accepted(struct sc_client *c, const uint8_t gid[GROUP_ID_LEN]);
/* 1 (and *inviter, may be NULL) while the invitation to gid waits, 0 if not, or STORE_E_*. */
int convo_group_inviter(struct sc_client *c, const uint8_t gid[GROUP_ID_LEN], char inviter[SC_USER_MAX + 1]);
/* 0, or the recorded SC_ERR_GROUP_PENDING while the invitation waits. */
int convo_group_usable(struct sc_client *c, const uint8_t gid[GROUP_ID_LEN], const char *name);
/* sc_link_step: deletes what is due (cheap when nothing is). */
int convo_expire_due(struct sc_client *c);
/* Milliseconds of the monotonic clock when the next message disappears, or -1. */
int64_t convo_next_deadline(const struct sc_client *c);

#endif
