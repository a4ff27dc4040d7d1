/* SPDX-License-Identifier: Apache-2.0 */
/* content.c: encoder and strict parser of the content format (content.h). */
#include "content.h"

#include <string.h>

#define MAX_SKDM 256

int content_encode(struct rec_wr *w, const struct content *c) {
  size_t start = w->len, i, pad;
  rec_put_u8(w, CONTENT_VERSION);
  rec_put_u8(w, c->kind);
  rec_put_u64(w, c->ts);
  switch (c->kind) {
    case CONTENT_TEXT:
      rec_put_str16(w, c->text, c->text_len);
      break;
    case CONTENT_GROUP_TEXT:
      rec_put(w, c->gid, GROUP_ID_LEN);
      rec_put_str16(w, c->text, c->text_len);
      break;
    case CONTENT_GROUP_UPDATE:
    case CONTENT_GROUP_STATE:
      if (c->n_members > GROUP_MAX_MEMBERS) return -1;
      if (c->kind == CONTENT_GROUP_STATE && (c->state_flags & ~(GROUP_STATE_LEFT | GROUP_STATE_ACCEPTED))) return -1;
      rec_put(w, c->gid, GROUP_ID_LEN);
      rec_put_str16(w, c->name, strlen(c->name));
      rec_put_u32(w, c->epoch);
      rec_put_u8(w, (uint8_t)c->n_members);
      for (i = 0; i < c->n_members; i++) rec_put_str16(w, c->members[i], strlen(c->members[i]));
      rec_put_str16(w, c->skdm, c->skdm_len);
      if (c->kind == CONTENT_GROUP_STATE) rec_put_u8(w, c->state_flags);
      break;
    case CONTENT_SENDER_KEY:
      rec_put(w, c->gid, GROUP_ID_LEN);
      rec_put_u32(w, c->epoch);
      rec_put_str16(w, c->skdm, c->skdm_len);
      break;
    case CONTENT_RECEIPT:
      if (c->n_receipts == 0 || c->n_receipts > CONTENT_MAX_RECEIPTS ||
          (c->receipt_type != RECEIPT_DELIVERED && c->receipt_type != RECEIPT_READ))
        return -1;
      rec_put_u8(w, c->receipt_type);
      rec_put_u8(w, (uint8_t)c->n_receipts);
      for (i = 0; i < c->n_receipts; i++) rec_put_u64(w, c->receipts[i]);
      break;
    case CONTENT_RETRY:
      rec_put_u64(w, c->retry_server_id);
      rec_put_u64(w, c->retry_server_ts);
      break;
    case CONTENT_SESSION_RESET:
    case CONTENT_DEVICE_HELLO:
      break;
    case CONTENT_TRANSCRIPT:
      if (!sc_username_ok(c->to) || c->inner_len < 2 || c->inner_len > CONTENT_TRANSCRIPT_MAX ||
          c->inner[1] == CONTENT_TRANSCRIPT)
        return -1;
      rec_put_str16(w, c->to, strlen(c->to));
      rec_put_u32(w, (uint32_t)c->inner_len);
      rec_put(w, c->inner, c->inner_len);
      break;
    case CONTENT_CONSENT:
      if (!sc_username_ok(c->to) || c->consent_action < CONSENT_ACT_ACCEPT || c->consent_action > CONSENT_ACT_DELETE)
        return -1;
      rec_put_u8(w, c->consent_action);
      rec_put_str16(w, c->to, strlen(c->to));
      break;
    case CONTENT_TIMER:
    case CONTENT_TEXT_EX:
    case CONTENT_REACTION:
    case CONTENT_EDIT:
    case CONTENT_DELETE:
      if (c->timer_s > CONTENT_TIMER_MAX || strlen(c->emoji) > CONTENT_EMOJI_MAX) return -1;
      rec_put_u8(w, c->in_group ? 1 : 0);
      if (c->in_group) rec_put(w, c->gid, GROUP_ID_LEN);
      rec_put_u32(w, c->timer_s);
      if (c->kind == CONTENT_TEXT_EX || c->kind == CONTENT_REACTION) {
        rec_put_str16(w, c->ref_author, strlen(c->ref_author));
        rec_put_u64(w, c->ref_ts);
      } else if (c->kind != CONTENT_TIMER) {
        rec_put_u64(w, c->ref_ts);
      }
      if (c->kind == CONTENT_TEXT_EX || c->kind == CONTENT_EDIT) rec_put_str16(w, c->text, c->text_len);
      if (c->kind == CONTENT_REACTION) rec_put_str16(w, c->emoji, strlen(c->emoji));
      break;
    case CONTENT_GROUP_ATTACHMENT:
    case CONTENT_ATTACHMENT:
      if (c->kind == CONTENT_GROUP_ATTACHMENT) rec_put(w, c->gid, GROUP_ID_LEN);
      rec_put(w, c->att_id, ATTACH_ID_LEN);
      rec_put(w, c->att_key, ATTACH_KEY_LEN);
      rec_put(w, c->att_digest, ATTACH_DIGEST_LEN);
      rec_put_u64(w, c->att_size);
      rec_put_u32(w, c->att_chunk);
      rec_put_u8(w, c->att_flags);
      rec_put_str16(w, c->att_type, c->att_type_len);
      rec_put_str16(w, c->att_name, c->att_name_len);
      rec_put_str16(w, c->text, c->text_len);
      break;
    default:
      return -1;
  }
  rec_put_u8(w, 0x80);
  pad = (CONTENT_PAD - (w->len - start) % CONTENT_PAD) % CONTENT_PAD;
  for (i = 0; i < pad; i++) rec_put_u8(w, 0);
  return rec_wr_ok(w);
}

static int get_name(struct rec_rd *r, char *out, size_t cap, int user) {
  if (rec_get_cstr(r, out, cap)) return -1;
  if (user && !sc_username_ok(out)) return -1;
  return 0;
}

/* The fields of a conversation kind (content.h). A reply's or a reaction's
 * author is a valid username (or "" for a text that is no reply, whose
 * timestamp is then 0); a text is 1..SC_MAX_TEXT bytes; an emoji at most
 * CONTENT_EMOJI_MAX bytes (convo.c checks it is UTF-8). */
static int convo_decode(struct content *c, struct rec_rd *r) {
  uint8_t scope;
  const uint8_t *e;
  size_t elen;
  if (rec_get_u8(r, &scope) || scope > 1) return -1;
  c->in_group = scope;
  if (scope && rec_get(r, c->gid, GROUP_ID_LEN)) return -1;
  if (rec_get_u32(r, &c->timer_s) || c->timer_s > CONTENT_TIMER_MAX) return -1;
  if (c->kind == CONTENT_TEXT_EX || c->kind == CONTENT_REACTION) {
    if (rec_get_cstr(r, c->ref_author, sizeof c->ref_author) || rec_get_u64(r, &c->ref_ts)) return -1;
    if (c->ref_author[0] ? !sc_username_ok(c->ref_author) || c->ref_ts == 0
                         : c->kind == CONTENT_REACTION || c->ref_ts != 0)
      return -1;
  } else if (c->kind != CONTENT_TIMER) {
    if (rec_get_u64(r, &c->ref_ts) || c->ref_ts == 0) return -1;
  }
  if (c->kind == CONTENT_TEXT_EX || c->kind == CONTENT_EDIT)
    if (rec_get_str16(r, &c->text, &c->text_len, SC_MAX_TEXT) || c->text_len == 0) return -1;
  if (c->kind == CONTENT_REACTION) {
    if (rec_get_str16(r, &e, &elen, CONTENT_EMOJI_MAX)) return -1;
    memcpy(c->emoji, e, elen);
    c->emoji[elen] = 0;
    if (memchr(e, 0, elen)) return -1;
  }
  return 0;
}

int content_decode(struct content *c, const uint8_t *p, size_t len) {
  struct rec_rd r;
  uint8_t ver, n;
  size_t i, end;

  memset(c, 0, sizeof *c);
  /* Strip the padding first: the last non-zero byte must be 0x80. */
  end = len;
  while (end > 0 && p[end - 1] == 0) end--;
  if (end == 0 || p[end - 1] != 0x80) return -1;
  rec_rd_init(&r, p, end - 1);
  if (rec_get_u8(&r, &ver) || ver != CONTENT_VERSION || rec_get_u8(&r, &c->kind) || rec_get_u64(&r, &c->ts))
    return -1;
  switch (c->kind) {
    case CONTENT_TEXT:
      if (rec_get_str16(&r, &c->text, &c->text_len, SC_MAX_TEXT)) return -1;
      break;
    case CONTENT_GROUP_TEXT:
      if (rec_get(&r, c->gid, GROUP_ID_LEN) || rec_get_str16(&r, &c->text, &c->text_len, SC_MAX_TEXT)) return -1;
      break;
    case CONTENT_GROUP_UPDATE:
    case CONTENT_GROUP_STATE:
      if (rec_get(&r, c->gid, GROUP_ID_LEN) || get_name(&r, c->name, sizeof c->name, 0) ||
          rec_get_u32(&r, &c->epoch) || rec_get_u8(&r, &n) || n > GROUP_MAX_MEMBERS)
        return -1;
      c->n_members = n;
      for (i = 0; i < n; i++)
        if (get_name(&r, c->members[i], sizeof c->members[i], 1)) return -1;
      if (rec_get_str16(&r, &c->skdm, &c->skdm_len, MAX_SKDM)) return -1;
      if (c->kind == CONTENT_GROUP_STATE &&
          (rec_get_u8(&r, &c->state_flags) || (c->state_flags & ~(GROUP_STATE_LEFT | GROUP_STATE_ACCEPTED))))
        return -1;
      break;
    case CONTENT_SENDER_KEY:
      if (rec_get(&r, c->gid, GROUP_ID_LEN) || rec_get_u32(&r, &c->epoch) ||
          rec_get_str16(&r, &c->skdm, &c->skdm_len, MAX_SKDM))
        return -1;
      break;
    case CONTENT_RECEIPT:
      if (rec_get_u8(&r, &c->receipt_type) || rec_get_u8(&r, &n) || n == 0 || n > CONTENT_MAX_RECEIPTS ||
          (c->receipt_type != RECEIPT_DELIVERED && c->receipt_type != RECEIPT_READ))
        return -1;
      c->n_receipts = n;
      for (i = 0; i < n; i++)
        if (rec_get_u64(&r, &c->receipts[i])) return -1;
      break;
    case CONTENT_RETRY:
      if (rec_get_u64(&r, &c->retry_server_id) || rec_get_u64(&r, &c->retry_server_ts)) return -1;
      break;
    case CONTENT_SESSION_RESET:
    case CONTENT_DEVICE_HELLO:
      break;
    case CONTENT_TRANSCRIPT: {
      uint32_t il = 0;
      if (get_name(&r, c->to, sizeof c->to, 1) || rec_get_u32(&r, &il) || il == 0 || il > CONTENT_TRANSCRIPT_MAX ||
          rec_get_ptr(&r, &c->inner, il))
        return -1;
      c->inner_len = il;
      /* one level only: the inner content is not itself a transcript */
      if (il < 2 || c->inner[0] != CONTENT_VERSION || c->inner[1] == CONTENT_TRANSCRIPT) return -1;
      break;
    }
    case CONTENT_CONSENT:
      if (rec_get_u8(&r, &c->consent_action) || c->consent_action < CONSENT_ACT_ACCEPT ||
          c->consent_action > CONSENT_ACT_DELETE || get_name(&r, c->to, sizeof c->to, 1))
        return -1;
      break;
    case CONTENT_TIMER:
    case CONTENT_TEXT_EX:
    case CONTENT_REACTION:
    case CONTENT_EDIT:
    case CONTENT_DELETE:
      if (convo_decode(c, &r)) return -1;
      break;
    case CONTENT_GROUP_ATTACHMENT:
    case CONTENT_ATTACHMENT:
      if (c->kind == CONTENT_GROUP_ATTACHMENT && rec_get(&r, c->gid, GROUP_ID_LEN)) return -1;
      if (rec_get_ptr(&r, &c->att_id, ATTACH_ID_LEN) || rec_get_ptr(&r, &c->att_key, ATTACH_KEY_LEN) ||
          rec_get_ptr(&r, &c->att_digest, ATTACH_DIGEST_LEN) || rec_get_u64(&r, &c->att_size) ||
          rec_get_u32(&r, &c->att_chunk) || rec_get_u8(&r, &c->att_flags) ||
          rec_get_str16(&r, &c->att_type, &c->att_type_len, SC_ATTACH_TYPE_MAX) ||
          rec_get_str16(&r, &c->att_name, &c->att_name_len, SC_ATTACH_NAME_MAX) ||
          rec_get_str16(&r, &c->text, &c->text_len, SC_MAX_TEXT))
        return -1;
      if (c->att_size > SC_ATTACH_MAX_SIZE || c->att_chunk != ATTACH_CHUNK || (c->att_flags & ~ATTACH_FLAGS_KNOWN) ||
          c->att_name_len == 0)
        return -1;
      for (i = 0; i < c->att_type_len; i++)
        if (c->att_type[i] < 0x20 || c->att_type[i] > 0x7e) return -1;
      break;
    default:
      return -1;
  }
  return rec_rd_end(&r);
}
