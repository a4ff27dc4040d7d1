/* SPDX-License-Identifier: Apache-2.0 */
/* msglog.h: the local message history and delivery bookkeeping.
 *
 * Records: "msg/SEQ" (one message, in or out), "seen/SERVERID" (the local
 * number of the message a server envelope gave, so a re-delivered envelope
 * is recognised and never shown twice) and "unshown" (messages committed
 * but not yet printed: a crash between commit and print shows them on the
 * next receive). docs/client.md has the formats. */
#ifndef SOTTO_CLIENT_MSGLOG_H
#define SOTTO_CLIENT_MSGLOG_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "content.h"

enum { MSG_IN = 0, MSG_OUT = 1, MSG_EVENT = 2 };
/* What an event is about (MSG_EVENT only). */
enum { NOTICE_NONE = 0, NOTICE_IDENTITY_CHANGED = 1, NOTICE_GROUP = 2, NOTICE_UNREADABLE = 3, NOTICE_HELD = 4 };

struct msg {
  uint64_t seq;
  uint8_t dir;
  uint8_t code; /* NOTICE_* for MSG_EVENT */
  char peer[CLI_USER_MAX + 1];   /* sender (in, event) or recipient (out; empty for a group) */
  char group[GROUP_NAME_MAX + 1]; /* empty for 1:1 */
  uint64_t ts;                    /* sender's timestamp (ms) */
  uint64_t server_id;             /* 0 for outgoing */
  char *text;                     /* malloc'd, NUL-terminated */
  size_t text_len;
};

void msg_clear(struct msg *m);
/* Appends m (m->seq is assigned from the account counter; the caller
 * saves the account in the same transaction). Marks it unshown if
 * unshown is set. */
int msglog_add(struct store *st, struct account *a, struct msg *m, int unshown);
int msglog_get(struct store *st, uint64_t seq, struct msg *m);
/* "seen/ID": 1 and *seq if this server id was already processed, 0 if not. */
int msglog_seen(struct store *st, uint64_t server_id, uint64_t *seq);
int msglog_mark_seen(struct store *st, uint64_t server_id, uint64_t seq);
/* The unshown list (at most MSGLOG_MAX_UNSHOWN entries). */
#define MSGLOG_MAX_UNSHOWN 4096
int msglog_unshown(struct store *st, uint64_t *seqs, size_t max, size_t *n);
int msglog_mark_shown(struct store *st, uint64_t seq);

#endif
