/* SPDX-License-Identifier: Apache-2.0 */
/* outbox.h: what we sent and wait to hear about, what we owe others, and
 * how a broken session heals (docs/client.md, "Outbox, receipts and session
 * healing").
 *
 * Records (all in the sealed store):
 *   "outbox"           the texts waiting for a receipt: n x (u64 seq | u32
 *                      text length | u8 flags | u64 timestamp), oldest first, at most
 *                      OUTBOX_MAX entries and OUTBOX_MAX_BYTES of text. The
 *                      text and its state live in the message row msg/SEQ
 *                      (a MSG_OUT row: reason = SC_STATE_*, server_id and
 *                      server_ts = what the server's SEND answer said).
 *   "ots/PEER/TS"      u64 seq of our text to PEER with content timestamp TS
 *                      (receipts name texts by that timestamp).
 *   "in/PEER/TS/H"     empty: a text from PEER with timestamp TS and text
 *                      hash H (8 bytes of BLAKE2b, hex) was shown (a resent
 *                      copy is not shown twice).
 *   "rcpt/PEER"        receipts we owe PEER: n x (u64 ts | u8 type).
 *   "owed"             n x str16 PEER: the peers with receipts owed or a retry
 *                      request waiting (a flush reads this, never scans).
 *   "retry/PEER"       decryption-retry bookkeeping with PEER (retry_rec).
 *   "gap/PEER"         u32: messages from PEER found missing, not arrived.
 *   "cfg/read_receipts" u8 1 when read receipts are sent.
 *
 * Every function taking "inside a transaction" writes only in the caller's
 * open transaction and never sends; outbox_flush does the sending. */
#ifndef SOTTO_CLIENT_OUTBOX_H
#define SOTTO_CLIENT_OUTBOX_H

#include <stdint.h>

#include "content.h"
#include "core.h"
#include "msglog.h"

#define OUTBOX_MAX 256
#define OUTBOX_MAX_BYTES (4u * 1024 * 1024)
#define OUTBOX_MAX_AGE_S (7u * 24 * 3600) /* no receipt after a week: given up (SC_STATE_FAILED) */
#define RCPT_MAX_PENDING 256              /* receipts owed to one peer; the oldest are dropped */
#define RETRY_WINDOW_S 300      /* one retry request to a peer, and one acted on from it, per window */
#define RETRY_MAX_RESEND 16     /* texts resent for one retry request */
#define RETRY_MAX_RESENDS_PER_TEXT 2 /* times one text is resent in its life */
#define RETRY_QUIET_MAX 16      /* failures inside a window covered by its request, unshown */
#define RETRY_MAX_PER_WINDOW 64 /* retry requests one client object makes per RETRY_WINDOW_S */

/* Inside a transaction: m (a MSG_OUT row with its state set) is logged
 * (m->seq assigned) and, unless its state is final, added to the outbox. A
 * full outbox gives up its oldest sent text (an event); SC_ERR_OUTBOX_FULL
 * when every entry is still queued. 0, STORE_E_* or SC_ERR_OUTBOX_FULL. */
int outbox_add(struct sc_client *c, struct msg *m);
/* Inside a transaction: a sent transcript from another device of ours
 * (docs/multi-device.md): the text ct we sent to peer is logged as ours
 * ("sent", shown by the next flush) and its receipts will find it. It does
 * not enter the outbox (the sending device resends it if asked). 0 or
 * STORE_E_*. */
int outbox_transcript(struct sc_client *c, const char *peer, const struct content *ct);
/* Inside a transaction: our text m (a MSG_OUT row being deleted: it
 * disappeared, or was deleted) leaves the outbox and its "ots" record goes
 * (a late receipt for it is then ignored). 0 or STORE_E_*. */
int outbox_forget(struct sc_client *c, const struct msg *m);
/* Inside a transaction: a received 1:1 text m is being deleted: its dedup
 * mark "in/PEER/TS/H" goes too (the hash would confirm a guess of the
 * text). 0 or STORE_E_*. */
int outbox_forget_in(struct sc_client *c, const struct msg *m);
/* Inside a transaction: a RECEIPT from peer. 0 or STORE_E_*. */
int outbox_receipt(struct sc_client *c, const char *peer, const struct content *ct);
/* Inside a transaction: a RETRY from peer (it arrived in a session that
 * decrypted, so it is authentic): marks our texts from the named envelope on
 * for resending (at most RETRY_MAX_RESEND, once per window). 0 or STORE_E_*. */
int outbox_retry(struct sc_client *c, const char *peer, const struct content *ct);
/* Inside a transaction: the 1:1 text ct arrived from peer. *dup = 1 if it
 * was shown before (a resent copy: same timestamp and text). Owes peer a
 * delivery receipt either way. 0 or STORE_E_*. */
int outbox_arrived(struct sc_client *c, const char *peer, const struct content *ct, int *dup);
/* The same without the receipt (a message request's text: no receipt goes
 * to a stranger). */
int outbox_seen_text(struct sc_client *c, const char *peer, const struct content *ct, int *dup);
/* Inside a transaction: a message request from peer was accepted: the
 * receipt held back for its text ts is owed now (read if it was shown and
 * the user allows read receipts, else delivered). 0 or STORE_E_*. */
int outbox_owe_held(struct sc_client *c, const char *peer, uint64_t ts, int shown);
/* Inside a transaction: the 1:1 text (peer, ts) was shown to the user: a
 * read receipt is owed if they allow them. 0 or STORE_E_*. */
int outbox_shown(struct sc_client *c, const char *peer, uint64_t ts);
/* Own transaction: an envelope sid from peer could not be decrypted (reason
 * / detail as for SC_EV_UNREADABLE). If peer is a contact with a pinned key
 * and a session, asks it to resend it (at most once per RETRY_WINDOW_S, and
 * RETRY_MAX_PER_WINDOW requests in all per window; later failures inside
 * the window are covered by that request). Otherwise, or past the bounds,
 * returns 1: the caller drops it as unreadable like before. held: a
 * released held message (its held record name is held_rec). 0 or STORE_E_*. */
int heal_failed(struct sc_client *c, const char *peer, uint64_t sid, int reason, const char *detail,
                const char *held_rec);
/* Inside a transaction: after a pairwise message from peer decrypted, with
 * before/after the skipped message keys of the session: notes a missing
 * message (SC_EV_GAP) or a late one (SC_EV_GAP_FILLED). 0 or STORE_E_*. */
int heal_gap(struct sc_client *c, const char *peer, int type, size_t before, size_t after);
/* Inside a transaction: the server dropped our envelope server_id to peer
 * unread (an EXPIRED_SENT notice): its text becomes "expired" and leaves the
 * outbox (no resend). peer NULL: any peer. 0, 1 if no such text waits, or
 * STORE_E_*. */
int outbox_expired(struct sc_client *c, const char *peer, uint64_t server_id);
/* Sends what waits (needs c->k connected): queued and to-be-resent texts,
 * retry requests, receipts; gives up texts past the age limit. A
 * connection failure stops it (the rest waits). 0 or an SC_ERR_*. */
int outbox_flush(struct sc_client *c);
/* 1 for a failure that stops a flush (the link, the server's limits on us,
 * the local store): what waits is kept for the next connection. */
int outbox_conn_failure(int rc);

#endif
