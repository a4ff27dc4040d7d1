/* SPDX-License-Identifier: Apache-2.0 */
/* content.h: what travels INSIDE an encrypted message (docs/client.md,
 * "Content format"). The server only ever sees the ciphertext of this.
 *
 *   u8 version (1) | u8 kind | u64 timestamp (ms) | kind fields | padding
 *
 *   TEXT          str16 text                                  (1:1)
 *   GROUP_TEXT    gid[16] | str16 text                        (inside a SenderKeyMessage)
 *   GROUP_UPDATE  gid[16] | str16 name | u32 epoch | u8 n | n x str16 member
 *                 | str16 skdm (may be empty)                 (pairwise)
 *   SENDER_KEY    gid[16] | u32 epoch | str16 skdm            (pairwise)
 *   RECEIPT       u8 type (1 delivered, 2 read) | u8 n (1..64)
 *                 | n x u64 timestamp                         (pairwise)
 *   RETRY         u64 server id | u64 server timestamp        (pairwise)
 *   SESSION_RESET (no fields)                                 (pairwise)
 *   DEVICE_HELLO  (no fields): a newly linked device says it is there
 *                 (pairwise, only between the devices of one account;
 *                 docs/multi-device.md, "A new device says hello")
 *   TRANSCRIPT    str16 recipient | u32 n | n bytes: the content we sent
 *                 them (its own encoding, padding included; not itself a
 *                 TRANSCRIPT; n <= CONTENT_TRANSCRIPT_MAX)  (pairwise, only
 *                 between the devices of one account)
 *   ATTACHMENT    blob id[16] | key[32] | digest[32] | u64 size | u32 chunk
 *                 | u8 flags (bit 0 long text, bit 1 format v2) | str16 type
 *                 | str16 name | str16 text                  (pairwise)
 *   GROUP_ATTACHMENT gid[16] | the fields of ATTACHMENT    (inside a SenderKeyMessage)
 *   CONSENT       u8 action (1 accept, 2 block, 3 unblock, 4 delete: a
 *                 message request from user was accepted, user blocked,
 *                 unblocked, or the request deleted) | str16 user
 *                                               (pairwise, only between the
 *                                               devices of one account)
 *   GROUP_STATE   the fields of GROUP_UPDATE | u8 flags (bit 0: this
 *                 device's account left the group; bit 1: accepted; no
 *                 other bit)                    (pairwise, only between the
 *                 devices of one account)
 *
 * Conversation kinds (issue 14; client/core/convo.c applies them). Each
 * starts with the conversation and its disappearing-message timer as the
 * sender knows it:
 *   u8 scope (0 direct, pairwise | 1 group, inside a SenderKeyMessage)
 *   | gid[16] (scope 1 only) | u32 timer seconds (0 off, <= CONTENT_TIMER_MAX)
 *   TIMER         (no more fields: the timer is the new setting)
 *   TEXT_EX       str16 ref author ("" = not a reply) | u64 ref ts | str16 text
 *   REACTION      str16 ref author | u64 ref ts | str16 emoji (0..32 bytes; "" removes)
 *   EDIT          u64 ref ts | str16 text      (the ref author is the sender)
 *   DELETE        u64 ref ts                   (the ref author is the sender)
 * A message is named by (author, content timestamp). TEXT_EX is sent only
 * when a text is a reply or the timer is on; a plain text stays TEXT.
 *
 * RECEIPT names the sender's content timestamps of the texts it confirms;
 * RETRY names the envelope that could not be decrypted by the id and time
 * the server gave it (the sender got both back from SEND); SESSION_RESET
 * travels in a fresh session and says the sender started it on purpose.
 *
 * Padding: 0x80 then zero bytes up to a multiple of CONTENT_PAD, so the
 * ciphertext length says little about the text length. */
#ifndef SOTTO_CLIENT_CONTENT_H
#define SOTTO_CLIENT_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"
#include "core.h"

#define CONTENT_VERSION 1
#define CONTENT_PAD 160
#define GROUP_ID_LEN 16
#define GROUP_NAME_MAX 64
#define GROUP_MAX_MEMBERS 64

enum {
  CONTENT_TEXT = 1,
  CONTENT_GROUP_TEXT = 2,
  CONTENT_GROUP_UPDATE = 3,
  CONTENT_SENDER_KEY = 4,
  CONTENT_RECEIPT = 5,
  CONTENT_RETRY = 6,
  CONTENT_SESSION_RESET = 7,
  CONTENT_TRANSCRIPT = 8, /* a sent transcript to our own other devices (docs/multi-device.md) */
  CONTENT_CONSENT = 9,    /* a request accepted, a block, ... to our own other devices (docs/multi-device.md) */
  /* 11-17: conversation kinds (11-15 used) */
  CONTENT_ATTACHMENT = 10, /* attach.c: a file's pointer (docs/client.md "Attachments") */
  CONTENT_TIMER = 11,
  CONTENT_TEXT_EX = 12,
  CONTENT_REACTION = 13,
  CONTENT_EDIT = 14,
  CONTENT_DELETE = 15,
  CONTENT_DEVICE_HELLO = 18, /* a newly linked device to our own other devices (docs/multi-device.md) */
  CONTENT_GROUP_STATE = 19, /* a group's state to our own other devices (docs/multi-device.md) */
  CONTENT_GROUP_ATTACHMENT = 20 /* attach.c: a file's pointer for a group */
};
/* 1 for a file's pointer, 1:1 or group. */
#define CONTENT_IS_ATTACHMENT(k) ((k) == CONTENT_ATTACHMENT || (k) == CONTENT_GROUP_ATTACHMENT)
#define CONTENT_TIMER_MAX (365u * 24 * 3600)
#define CONTENT_EMOJI_MAX 32
/* 1 for the conversation kinds (TIMER..DELETE). */
#define CONTENT_IS_CONVO(k) ((k) >= CONTENT_TIMER && (k) <= CONTENT_DELETE)
#define ATTACH_ID_LEN 16
#define ATTACH_KEY_LEN 32
#define ATTACH_DIGEST_LEN 32
#define ATTACH_CHUNK (64 * 1024) /* plaintext bytes per encrypted chunk (the only value accepted) */
#define ATTACH_FLAG_LONG_TEXT 0x01 /* the file is a text too long for one message: shown as text */
/* Format v2 (docs/client.md "Attachments"): AES-256-GCM chunks and a SHA-256
 * digest of the ciphertext. Without it, format v1: XChaCha20-Poly1305 chunks
 * and a BLAKE2b-256 digest. */
#define ATTACH_FLAG_V2 0x02
#define ATTACH_FLAGS_KNOWN (ATTACH_FLAG_LONG_TEXT | ATTACH_FLAG_V2)
enum { RECEIPT_DELIVERED = 1, RECEIPT_READ = 2 };
#define CONTENT_MAX_RECEIPTS 64
#define GROUP_STATE_LEFT 0x01
#define GROUP_STATE_ACCEPTED 0x02
#define CONTENT_TRANSCRIPT_MAX (SC_MAX_TEXT + 8192)
enum { CONSENT_ACT_ACCEPT = 1, CONSENT_ACT_BLOCK = 2, CONSENT_ACT_UNBLOCK = 3, CONSENT_ACT_DELETE = 4 };

/* Parsed content; pointers point into the decoded plaintext. */
struct content {
  uint8_t kind;
  uint64_t ts;
  const uint8_t *text;
  size_t text_len;
  uint8_t gid[GROUP_ID_LEN];
  char name[GROUP_NAME_MAX + 1];
  uint32_t epoch;
  size_t n_members;
  char members[GROUP_MAX_MEMBERS][SC_USER_MAX + 1];
  const uint8_t *skdm;
  size_t skdm_len;
  uint8_t state_flags;                   /* GROUP_STATE: GROUP_STATE_* */
  uint8_t receipt_type;                  /* RECEIPT */
  size_t n_receipts;
  uint64_t receipts[CONTENT_MAX_RECEIPTS];
  uint64_t retry_server_id, retry_server_ts; /* RETRY */
  /* conversation kinds: scope group (gid set), timer, the message referred to, emoji */
  uint8_t in_group;
  uint32_t timer_s;
  char ref_author[SC_USER_MAX + 1];
  uint64_t ref_ts;
  char emoji[CONTENT_EMOJI_MAX + 1];
  /* ATTACHMENT (text, text_len: the caption) */
  const uint8_t *att_id, *att_key, *att_digest;
  uint64_t att_size; /* plaintext bytes, <= SC_ATTACH_MAX_SIZE */
  uint32_t att_chunk;
  uint8_t att_flags;
  const uint8_t *att_type; /* printable ASCII, <= SC_ATTACH_TYPE_MAX */
  size_t att_type_len;
  const uint8_t *att_name; /* 1..SC_ATTACH_NAME_MAX raw bytes: cleaned before any use (attach.c) */
  size_t att_name_len;
  uint8_t consent_action; /* CONSENT: CONSENT_*, about the user in to */
  /* TRANSCRIPT: to whom, and the inner content's bytes (decode them with content_decode) */
  char to[SC_USER_MAX + 1];
  const uint8_t *inner;
  size_t inner_len;
};

/* Appends the encoding of c (with padding) to w. 0 or -1. */
int content_encode(struct rec_wr *w, const struct content *c);
/* Parses p (padding included) into c. 0, or -1 for anything malformed:
 * unknown version or kind, bad lengths, invalid member names, trailing
 * bytes, bad padding. */
int content_decode(struct content *c, const uint8_t *p, size_t len);

#endif
