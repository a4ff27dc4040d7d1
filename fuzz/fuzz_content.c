/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_content.c: the content inside a decrypted pairwise message
 * (client/core/content.c), above all what a peer can send to make us act:
 * RECEIPT (a batch of timestamps), RETRY (a decryption-error request naming
 * an envelope), SESSION_RESET and ATTACHMENT (a file's pointer: its name is
 * what a hostile sender controls). Whatever parses stays inside the bounds
 * (at most CONTENT_MAX_RECEIPTS timestamps, a known receipt type) and
 * encodes back to bytes that parse to the same content. The conversation
 * kinds (TIMER, TEXT_EX, REACTION, EDIT, DELETE: convo.c) too: a timer
 * within CONTENT_TIMER_MAX, a referred message with a valid author, an
 * emoji within CONTENT_EMOJI_MAX, the same fields after a round trip.
 * TRANSCRIPT (kind 8, from our own other devices): a valid recipient, an
 * inner content within CONTENT_TRANSCRIPT_MAX that is not itself a
 * transcript, the same after a round trip.
 * GROUP_ATTACHMENT (a file's pointer inside a SenderKeyMessage) like
 * ATTACHMENT, its group id kept by the round trip.
 * CONSENT (kind 9, from our own other devices): a known action and a valid
 * username, the same after a round trip.
 * GROUP_STATE (kind 19, from our own other devices): at most
 * GROUP_MAX_MEMBERS valid member names, only the known flags, the same
 * group, epoch, members, key and flags after a round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "content.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct content *a = malloc(sizeof *a), *b = malloc(sizeof *b);
  struct rec_wr w;
  if (!a || !b) abort();
  if (content_decode(a, data, size) == 0) {
    if (a->kind == CONTENT_RECEIPT &&
        (a->n_receipts == 0 || a->n_receipts > CONTENT_MAX_RECEIPTS ||
         (a->receipt_type != RECEIPT_DELIVERED && a->receipt_type != RECEIPT_READ)))
      abort();
    if (a->text_len > SC_MAX_TEXT || a->n_members > GROUP_MAX_MEMBERS) abort();
    if (CONTENT_IS_CONVO(a->kind)) {
      if (a->timer_s > CONTENT_TIMER_MAX || strlen(a->emoji) > CONTENT_EMOJI_MAX || a->in_group > 1) abort();
      if (a->ref_author[0] && !sc_username_ok(a->ref_author)) abort();
      if ((a->kind == CONTENT_EDIT || a->kind == CONTENT_DELETE || a->kind == CONTENT_REACTION) && a->ref_ts == 0)
        abort();
      if ((a->kind == CONTENT_TEXT_EX || a->kind == CONTENT_EDIT) && a->text_len == 0) abort();
    }
    if (CONTENT_IS_ATTACHMENT(a->kind) &&
        (a->att_size > SC_ATTACH_MAX_SIZE || a->att_chunk != ATTACH_CHUNK || a->att_name_len == 0 ||
         a->att_name_len > SC_ATTACH_NAME_MAX || a->att_type_len > SC_ATTACH_TYPE_MAX || !a->att_id || !a->att_key ||
         !a->att_digest))
      abort();
    rec_wr_init(&w, size + CONTENT_PAD + 64);
    if (content_encode(&w, a) != 0) abort();
    if (content_decode(b, w.p, w.len) != 0) abort();
    if (b->kind != a->kind || b->ts != a->ts || b->n_receipts != a->n_receipts ||
        b->receipt_type != a->receipt_type || memcmp(b->receipts, a->receipts, sizeof a->receipts) != 0 ||
        b->retry_server_id != a->retry_server_id || b->retry_server_ts != a->retry_server_ts ||
        b->text_len != a->text_len || (a->text_len && memcmp(a->text, b->text, a->text_len) != 0))
      abort();
    if (b->in_group != a->in_group || b->timer_s != a->timer_s || b->ref_ts != a->ref_ts ||
        strcmp(b->ref_author, a->ref_author) != 0 || strcmp(b->emoji, a->emoji) != 0 ||
        (a->in_group && memcmp(a->gid, b->gid, GROUP_ID_LEN) != 0))
      abort();
    if (CONTENT_IS_ATTACHMENT(a->kind) &&
        (b->att_size != a->att_size || b->att_flags != a->att_flags || b->att_name_len != a->att_name_len ||
         memcmp(b->att_name, a->att_name, a->att_name_len) != 0 || b->att_type_len != a->att_type_len ||
         memcmp(b->att_id, a->att_id, ATTACH_ID_LEN) != 0 || memcmp(b->att_key, a->att_key, ATTACH_KEY_LEN) != 0 ||
         memcmp(b->att_digest, a->att_digest, ATTACH_DIGEST_LEN) != 0))
      abort();
    if (a->kind == CONTENT_GROUP_ATTACHMENT && memcmp(a->gid, b->gid, GROUP_ID_LEN) != 0) abort();
    if (CONTENT_IS_ATTACHMENT(a->kind)) {
      /* The name a file is saved under: one component, no control bytes, bounded. */
      char safe[101];
      size_t i, n;
      attach_safe_name(safe, a->att_name, a->att_name_len);
      n = strlen(safe);
      if (n == 0 || n > 100 || safe[0] == '.' || safe[n - 1] == '.' || safe[n - 1] == ' ') abort();
      for (i = 0; i < n; i++)
        if ((uint8_t)safe[i] < 0x20 || safe[i] == 0x7f || safe[i] == '/' || safe[i] == '\\') abort();
    }
    if (a->kind == CONTENT_TRANSCRIPT &&
        (!sc_username_ok(a->to) || a->inner_len < 2 || a->inner_len > CONTENT_TRANSCRIPT_MAX ||
         a->inner[1] == CONTENT_TRANSCRIPT || strcmp(a->to, b->to) != 0 || a->inner_len != b->inner_len ||
         memcmp(a->inner, b->inner, a->inner_len) != 0))
      abort();
    if (a->kind == CONTENT_CONSENT &&
        (!sc_username_ok(a->to) || a->consent_action < CONSENT_ACT_ACCEPT || a->consent_action > CONSENT_ACT_DELETE ||
         b->consent_action != a->consent_action || strcmp(a->to, b->to) != 0))
      abort();
    if (a->kind == CONTENT_GROUP_STATE) {
      size_t i;
      if ((a->state_flags & ~(GROUP_STATE_LEFT | GROUP_STATE_ACCEPTED)) || b->state_flags != a->state_flags ||
          memcmp(a->gid, b->gid, GROUP_ID_LEN) != 0 || a->epoch != b->epoch || strcmp(a->name, b->name) != 0 ||
          a->n_members != b->n_members || a->skdm_len != b->skdm_len ||
          (a->skdm_len && memcmp(a->skdm, b->skdm, a->skdm_len) != 0))
        abort();
      for (i = 0; i < a->n_members; i++)
        if (!sc_username_ok(a->members[i]) || strcmp(a->members[i], b->members[i]) != 0) abort();
    }
    if (w.len % CONTENT_PAD != 0) abort();
    rec_wr_free(&w);
  }
  free(a);
  free(b);
  return 0;
}
