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

#include "core.h"
#include "content.h"

enum { MSG_IN = 0, MSG_OUT = 1, MSG_EVENT = 2 };
/* Version 1 rows (before the core) kept an English sentence for MSG_EVENT
 * with one of these codes; they are read as SC_EV_NOTICE with the code in
 * reason and the sentence in text (docs/client.md, "Message log"). */
enum { NOTICE_NONE = 0, NOTICE_IDENTITY_CHANGED = 1, NOTICE_GROUP = 2, NOTICE_UNREADABLE = 3, NOTICE_HELD = 4 };
#define MSG_DETAIL_MAX 127
/* Conversation state of a row (version 3, issue 14; convo.c). */
#define MSG_MAX_REACTIONS 65 /* one per person: a full group and us */
enum { MSGF_EDITED = 1, MSGF_DELETED = 2, MSGF_REQUEST = 4 };

/* One row of the log: a message in or out, or an event (structured: kind,
 * reason and the fields the kind uses; sc_event_describe makes a sentence
 * of it when it is shown). */
struct msg {
  uint64_t seq;
  uint8_t dir;
  uint8_t kind;                    /* SC_EV_* for MSG_EVENT */
  uint8_t reason;                  /* SC_R_* (NOTICE_* for a version 1 SC_EV_NOTICE); MSG_OUT: SC_STATE_* */
  char peer[SC_USER_MAX + 1];      /* sender (in, event) or recipient (out; empty for a group) */
  char group[GROUP_NAME_MAX + 1];  /* empty for 1:1 */
  char subject[SC_USER_MAX + 1];   /* the member added or removed */
  char detail[MSG_DETAIL_MAX + 1]; /* the library's reason of a failed decryption */
  uint64_t ts;                     /* sender's timestamp (ms), or when the event was logged */
  uint64_t server_id;              /* outgoing: the id the server's SEND answer gave (0: none yet) */
  uint64_t count, total;
  uint32_t device;                 /* sender's device (in; 0 when unknown) */
  uint64_t server_ts;              /* the server's timestamp of the envelope (in; 0 when unknown) */
  size_t n_members;                /* SC_EV_GROUP_JOINED */
  char members[GROUP_MAX_MEMBERS][SC_USER_MAX + 1];
  char *text;                      /* malloc'd, NUL-terminated */
  size_t text_len;
  /* version 3: disappearing timer, edits, deletes, replies, reactions */
  uint32_t timer_s;                /* the timer the message went with (0: none) */
  uint64_t expire_at;              /* wall-clock ms when it is deleted (0: never) */
  uint8_t mflags;                  /* MSGF_* */
  char ref_author[SC_USER_MAX + 1];/* a reply: the quoted message's author ... */
  uint64_t ref_ts;                 /* ... and timestamp; SC_EV_EDITED etc.: the target */
  size_t n_reactions;
  struct sc_reaction reactions[MSG_MAX_REACTIONS];
};

/* Encodes m as a version 2 row into w (msglog_add uses it; tests too). */
struct rec_wr;
int msglog_encode(struct rec_wr *w, const struct msg *m);
/* Decodes a row of version 1 or 2 (m->text malloc'd; msg_clear frees). 0 or
 * STORE_E_CORRUPT. */
int msglog_decode(struct msg *m, const uint8_t *v, size_t n);
/* The event a row stands for (pointers into m). */
void msglog_to_event(const struct msg *m, struct sc_event *ev, const char **members);
/* Gives the row to the sink as an event. */
void msglog_emit(struct sc_client *c, const struct msg *m);

void msg_clear(struct msg *m);
/* Appends m (m->seq is assigned from the account counter; the caller
 * saves the account in the same transaction). Marks it unshown if
 * unshown is set. */
int msglog_add(struct store *st, struct account *a, struct msg *m, int unshown);
int msglog_get(struct store *st, uint64_t seq, struct msg *m);
/* Rewrites the row m->seq (an outgoing text's state changed). */
int msglog_update(struct store *st, const struct msg *m);
/* "seen/ID": 1 and *seq if this server id was already processed, 0 if not. */
int msglog_seen(struct store *st, uint64_t server_id, uint64_t *seq);
int msglog_mark_seen(struct store *st, uint64_t server_id, uint64_t seq);
/* The unshown list (at most MSGLOG_MAX_UNSHOWN entries). */
#define MSGLOG_MAX_UNSHOWN 4096
int msglog_unshown(struct store *st, uint64_t *seqs, size_t max, size_t *n);
int msglog_mark_shown(struct store *st, uint64_t seq);

#endif
