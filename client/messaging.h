/* SPDX-License-Identifier: Apache-2.0 */
/* messaging.h: sending contents over pairwise sessions (deliver.c) and
 * processing what arrives (inbox.c), shared by send, receive and group. */
#ifndef SOTTO_CLIENT_MESSAGING_H
#define SOTTO_CLIENT_MESSAGING_H

#include <sotto/session.h>
#include <stdint.h>

#include "cli.h"
#include "conn.h"
#include "content.h"
#include "msglog.h"

/* Encrypts ct for user over the pairwise session (PQXDH from a fetched
 * bundle when there is none yet), commits the session, then sends. Says
 * plainly when user's identity key changed, and refuses (CLI_FAIL, nothing
 * sent) when user was verified and the key changed since. Prints why on
 * failure. */
int deliver_pairwise(struct cli *c, struct conn *k, const char *user, const struct content *ct);
/* The addresses of a pairwise message between us (me, my_device) and peer
 * (peer_device): usernames and device ids that encrypt writes into field 6
 * and decrypt checks, under the MAC (docs/protocol.md, "Addresses"). */
void client_addresses(struct sotto_addresses *a, const char *me, uint32_t my_device, const char *peer,
                      uint32_t peer_device, int require);
/* Sends an already encrypted body (a SenderKeyMessage) to user. */
int deliver_raw(struct cli *c, struct conn *k, const char *user, int type, const uint8_t *body, size_t len);

/* The plain warning that user's identity key changed. */
void key_changed_warning(struct cli *c, const char *user);

/* Prints one message or event (human line, or one JSON object). */
void show_msg(struct cli *c, const struct msg *m);

/* Processes one envelope: decrypts, commits every state change together
 * with the message (deduplicated by server id), then prints it. Returns 0
 * when the envelope may be acked (shown, or dropped as unreadable after
 * saying so), CLI_FAIL when it must stay on the server (local failure). */
int inbox_process(struct cli *c, struct conn *k, uint64_t server_id, const char *sender,
                  uint32_t sender_device, int type, const uint8_t *body, size_t len);
/* Processes the messages of user held in quarantine (after the user accepted
 * the key they came from), in server order, then prints what they gave.
 * *released gets how many were processed. CLI_OK or CLI_FAIL (printed). */
int inbox_release_held(struct cli *c, const char *user, unsigned *released);
/* Prints messages committed earlier but never shown (after a crash). */
int inbox_flush_unshown(struct cli *c);
/* Envelopes that could not be decrypted are shown one by one only for the
 * first few of each sender; this stores and shows one summary line per
 * sender for the rest ("N more messages from X could not be decrypted") and
 * starts counting again. Call it when the queue is drained and at the end. */
int inbox_unreadable_summary(struct cli *c);

#endif
