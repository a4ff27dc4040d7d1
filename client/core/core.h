/* SPDX-License-Identifier: Apache-2.0 */
/* core.h: what the files of the client core share (never included by a
 * front end): struct sc_client, failures recorded as an error code and one
 * sentence (sc_errdetail), events to the sink, transactions that reload the
 * account. Nothing here prints. */
#ifndef SOTTO_CLIENT_CORE_H
#define SOTTO_CLIENT_CORE_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "sotto_client.h"
#include "store.h"

#define CORE_UNREADABLE_SENDERS 32

struct account;
struct conn {
  struct sotto_net_ctx *ctx;
  struct sotto_net *net;
  uint64_t gen; /* conn_open_until numbers each connection: a new one is never taken for the one before */
  char host[256];
  char port[16];
};

struct sc_client {
  char home[PATH_MAX];
  struct store *st;      /* open store, after sc_open / sc_init */
  struct account *acct;  /* loaded account (sodium_malloc) */
  unsigned flags;        /* the SC_SEND_* flags of the send call under way */
  int hold_fd;           /* HOME/holder.lock while sc_hold_home holds it, else -1 */
  sc_sink_fn sink;
  void *sink_ud;
  int err;
  char errdetail[1024];
  /* the link (link.c) */
  struct conn k;
  unsigned srv_next; /* the server list's address to try first (conn_connect_list) */
  int connected;
  int auto_reconnect;
  int defer_shown; /* SC_OPT_DEFER_SHOWN: logged events wait in the unshown list */
  int keepalive_ms;
  int request_timeout_ms;
  int64_t retry_at;      /* monotonic ms of the next reconnect (0: none) */
  int64_t last_rx;       /* monotonic ms of the last frame or ping */
  unsigned backoff_s;
  int want_link;         /* sc_connect succeeded once and no sc_disconnect since */
  unsigned acks;         /* ACKs sent whose answer has not come */
  int drained_seen, drained;
  int64_t dheld_at;      /* monotonic ms of the last retry of held device messages on this connection (0: none) */
  int attach_wanted;     /* attachments wait for their download (attach.c) */
  int attach_checked;    /* the pending downloads were looked for once in this process */
  unsigned bad;          /* malformed frames this receive */
  uint32_t env_device;   /* the envelope being processed: sender's device, */
  uint64_t env_server_ts; /* ... and the server's timestamp (0 outside the link) */
  /* unreadable envelopes shown one by one for the first few per sender (inbox.c) */
  struct {
    char sender[SC_USER_MAX + 1];
    unsigned long n;
  } unread[CORE_UNREADABLE_SENDERS];
  size_t unread_senders;
  unsigned long unread_others;
  /* outbox, receipts, retries (outbox.c) */
  uint64_t sent_id, sent_ts; /* the server's id and time of the last envelope deliver_raw sent */
  int flush_wanted;          /* something waits to be sent (receipts, a retry, resends) */
  int flushing;              /* inside outbox_flush */
  uint64_t kt_monitor_at;     /* sc__now_s() when the linked client monitors its own log entry again (kt.c) */
  unsigned retries_run;      /* retry requests made by this client object since retries_since (bounded) */
  uint64_t retries_since;    /* start of the current retry budget window (seconds) */
  /* conversations (convo.c) */
  uint64_t next_expire_ms;   /* wall-clock ms when the next message disappears (0: none known) */
  char reply_author[SC_USER_MAX + 1]; /* sc_send_reply: the message the text under way replies to */
  uint64_t reply_ts;
  int change_queued;         /* the last reaction / edit / delete / timer / group text was queued (convo.c) */
  /* devices.c: contacts whose signed device list was checked on this
   * connection in the last DEVICES_RECHECK_MS (no second fetch). */
  struct {
    const void *net;
    uint64_t gen;
    char user[SC_USER_MAX + 1];
    uint8_t key[32];
    int64_t at_ms;
  } dl_seen[8];
  unsigned dl_next;
  unsigned long fan_mismatches; /* deliver.c: SEND_MULTIs the server refused with ERR(30) (tests read it) */
  /* attach.c: the fetches the blob of the 1:1 file being sent waits for on
   * the server (0: no file's send under way); deliver.c sets them to its
   * final fan-out (attach_fanout_final) before the pointer leaves */
  uint16_t att_fetches;
  unsigned long fan_lists;      /* deliver.c: ... of them whose ERR(30) carried the recipient's list (tests) */
  unsigned long devlist_gets;   /* devices.c: DEVLIST_GET requests made (tests read it) */
  /* linkdev.c: the link slot a new device opened (sc_link_open), or NULL */
  struct link_pending *lp;
};

/* Drops the open link slot's state (wipes its keys); linkdev.c. */
void linkdev_free(struct sc_client *c);

/* Records the failure (code and one sentence) and returns code. */
int sc__fail(struct sc_client *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A STORE_E_* (or a negative SC_ERR_* passed through) as a recorded failure. */
int sc__store_error(struct sc_client *c, int rc);
/* Gives ev to the sink (fills "" for NULL strings). */
void sc__emit(struct sc_client *c, struct sc_event *ev);
/* A warning-like event with only kind, reason, peer and detail. */
void sc__event(struct sc_client *c, int kind, int reason, const char *peer, const char *detail);
/* Starts a write transaction and reloads the account inside it. 0 or STORE_E_*. */
int sc__begin(struct sc_client *c);
/* Our own device id, and the device of the envelope being processed (an
 * envelope without one is from device 1): names of per-device records. */
uint32_t sc__own_device(const struct sc_client *c);
uint32_t sc__env_device(const struct sc_client *c);
/* Key lifetimes' clock, seconds (SOTTO_TEST_NOW in test builds). */
uint64_t sc__now_s(void);
/* The connection for a one-off request: the link when it is up, else a
 * new one (*opened set; sc__release closes it). */
int sc__acquire(struct sc_client *c, int *opened);
void sc__release(struct sc_client *c, int opened);
/* 0 if the store is open, else the recorded SC_ERR_NOT_OPEN. */
int sc__need_open(struct sc_client *c);

/* mkdir -p (mode 0700 for what it creates); 0 or -1 with errno. */
int sc__make_dirs(const char *path);
/* 0 if pass is strong enough (sc_passphrase_strength), else the recorded
 * SC_ERR_WEAK_PASSPHRASE naming what (e.g. "store passphrase") and why. */
int sc__strong_pass(struct sc_client *c, const char *pass, size_t len, const char *what);
/* Inside the caller's transaction: marks every pairwise session for a fresh
 * start and drops our own group sender keys (conn.c). */
int sc__rekey_all(struct sc_client *c);

#endif
