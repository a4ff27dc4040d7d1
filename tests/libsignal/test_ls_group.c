/* SPDX-License-Identifier: Apache-2.0 */
/* test_ls_group: Sender Keys with libsignal 0.103 (Node peer) in today's
 * layout (distribution uuid as field 1), both directions: distribution
 * messages processed by the other side, group messages in order, out of
 * order and with gaps, every bit flip of a message refused by the receiver
 * with its state unchanged, and the v3 layout (libsignal-protocol-c's) shown
 * to be what libsignal 0.103 refuses. */
#include <stdlib.h>
#include <string.h>

#include <sotto/group.h>
#include <sotto/keys.h>

#include "lstest.h"

static struct lspeer *P;
static const uint8_t ACI_S[16] = {0x5a, 0x77, 0x01, 0x02, 0x03, 0x04, 0x45, 0x06,
                                  0x87, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x10};
static const uint8_t ACI_L[16] = {0x1b, 0x51, 0x01, 0x02, 0x03, 0x04, 0x45, 0x06,
                                  0x87, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x11};
static const uint8_t DIST[16] = {0xd1, 0x57, 0x1b, 0x07, 0xaa, 0x01, 0x4c, 0x02,
                                 0x80, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};

#define N_MSG 60

static int ls_group_decrypt(const uint8_t *msg, size_t len, uint8_t *pt, size_t cap, long *pt_len) {
  char *w[LSPEER_MAX_WORDS];
  lspeer_begin(P, "group_decrypt");
  lspeer_arg_str(P, "lrecv");
  lspeer_arg_hex(P, ACI_S, 16);
  lspeer_arg_u(P, 1);
  lspeer_arg_hex(P, msg, len);
  if (lspeer_send(P, w) != 1) return -1;
  *pt_len = lspeer_unhex(pt, cap, w[0]);
  return *pt_len < 0 ? -1 : 0;
}

/* sotto sends, libsignal receives. */
static void sotto_to_libsignal(void) {
  char *w[LSPEER_MAX_WORDS];
  struct sotto_sender_key *rec = NULL;
  uint8_t skdm[SOTTO_SKDM_MAX_LEN], uuid[32], pt[200], got[256];
  static uint8_t msgs[N_MSG][SOTTO_GROUP_MESSAGE_MAX_LEN(200)];
  size_t mlen[N_MSG], n = 0;
  long gl = 0;
  int i, ok = 0;

  CHECK_RC(sotto_sender_key_new(&rec), 0);
  CHECK_RC(sotto_sender_key_distribution_uuid(rec, skdm, sizeof skdm, &n, DIST), 0);
  lspeer_begin(P, "party");
  lspeer_arg_str(P, "lrecv");
  lspeer_arg_hex(P, ACI_L, 16);
  lspeer_arg_u(P, 1);
  LS_REQUIRE(P, lspeer_send(P, w) == 2);
  lspeer_begin(P, "skdm_process");
  lspeer_arg_str(P, "lrecv");
  lspeer_arg_hex(P, ACI_S, 16);
  lspeer_arg_u(P, 1);
  lspeer_arg_hex(P, skdm, n);
  LS_REQUIRE(P, lspeer_send(P, w) == 1);
  CHECK(lspeer_unhex(uuid, sizeof uuid, w[0]) == 16 && memcmp(uuid, DIST, 16) == 0);

  for (i = 0; i < N_MSG; i++) {
    size_t len = (size_t)(i * 3) % sizeof pt;
    memset(pt, 'a' + i % 26, len);
    CHECK_RC(sotto_group_encrypt(rec, msgs[i], sizeof msgs[i], &mlen[i], pt, len), 0);
  }
  /* In order for the first 20, then 20..39 in reverse (out of order), then
   * 40..59 with every third one dropped. */
  for (i = 0; i < N_MSG; i++) {
    int k = i < 20 ? i : i < 40 ? 59 - i : i;
    size_t len = (size_t)(k * 3) % sizeof pt;
    if (i >= 40 && i % 3 == 0) continue;
    memset(pt, 'a' + k % 26, len);
    if (ls_group_decrypt(msgs[k], mlen[k], got, sizeof got, &gl) == 0 && gl == (long)len &&
        memcmp(got, pt, len) == 0)
      ok++;
    else
      fprintf(stderr, "message %d: %s\n", k, lspeer_error(P));
  }
  CHECK(ok == N_MSG - 6);
  printf("sotto -> libsignal group: %d/%d messages decrypted (in order, reversed, with drops)\n", ok,
         N_MSG - 6);
  /* A replay is refused. */
  CHECK(ls_group_decrypt(msgs[0], mlen[0], got, sizeof got, &gl) != 0);
  /* Every bit flip of one (fresh) message is refused by libsignal. */
  {
    uint8_t m[SOTTO_GROUP_MESSAGE_MAX_LEN(200)], t[sizeof m];
    size_t ml = 0, b, accepted = 0;
    CHECK_RC(sotto_group_encrypt(rec, m, sizeof m, &ml, (const uint8_t *)"flip me", 7), 0);
    for (b = 0; b < ml * 8; b++) {
      memcpy(t, m, ml);
      t[b / 8] ^= (uint8_t)(1u << (b % 8));
      if (ls_group_decrypt(t, ml, got, sizeof got, &gl) == 0) accepted++;
    }
    CHECK(accepted == 0);
    CHECK(ls_group_decrypt(m, ml, got, sizeof got, &gl) == 0 && gl == 7 &&
          memcmp(got, "flip me", 7) == 0);
    printf("sotto -> libsignal group: %zu bit flips, %zu accepted\n", ml * 8, accepted);
  }
  sotto_sender_key_free(rec);

  /* The v3 layout (no uuid) is what libsignal 0.103 cannot parse. */
  CHECK_RC(sotto_sender_key_new(&rec), 0);
  CHECK_RC(sotto_sender_key_distribution(rec, skdm, sizeof skdm, &n), 0);
  lspeer_begin(P, "skdm_process");
  lspeer_arg_str(P, "lrecv");
  lspeer_arg_hex(P, ACI_S, 16);
  lspeer_arg_u(P, 2);
  lspeer_arg_hex(P, skdm, n);
  CHECK(lspeer_send(P, w) == -1);
  printf("v3-layout distribution message: libsignal says \"%s\"\n", lspeer_error(P));
  sotto_sender_key_free(rec);
}

/* libsignal sends, sotto receives. */
static void libsignal_to_sotto(void) {
  char *w[LSPEER_MAX_WORDS];
  struct sotto_sender_key *rec = NULL;
  uint8_t skdm[256], uuid[16], pt[256];
  static uint8_t msgs[N_MSG][512];
  long mlen[N_MSG], sl;
  int i, ok = 0, has = 0;
  uint32_t cid = 0;

  lspeer_begin(P, "party");
  lspeer_arg_str(P, "lsend");
  lspeer_arg_hex(P, ACI_L, 16);
  lspeer_arg_u(P, 1);
  LS_REQUIRE(P, lspeer_send(P, w) == 2);
  lspeer_begin(P, "skdm_create");
  lspeer_arg_str(P, "lsend");
  lspeer_arg_hex(P, DIST, 16);
  LS_REQUIRE(P, lspeer_send(P, w) == 1);
  sl = lspeer_unhex(skdm, sizeof skdm, w[0]);
  CHECK(sl > 0 && sl <= SOTTO_SKDM_MAX_LEN);
  CHECK_RC(sotto_sender_key_new(&rec), 0);
  CHECK_RC(sotto_sender_key_process(rec, skdm, (size_t)sl), 0);

  for (i = 0; i < N_MSG; i++) {
    char txt[64];
    snprintf(txt, sizeof txt, "libsignal group message %d", i);
    lspeer_begin(P, "group_encrypt");
    lspeer_arg_str(P, "lsend");
    lspeer_arg_hex(P, DIST, 16);
    lspeer_arg_hex(P, (const uint8_t *)txt, strlen(txt));
    LS_REQUIRE(P, lspeer_send(P, w) == 1);
    mlen[i] = lspeer_unhex(msgs[i], sizeof msgs[i], w[0]);
    CHECK(mlen[i] > 0);
  }
  CHECK_RC(sotto_group_message_distribution_uuid(msgs[0], (size_t)mlen[0], uuid, &has), 0);
  CHECK(has == 1 && memcmp(uuid, DIST, 16) == 0);
  CHECK_RC(sotto_group_message_chain_id(msgs[0], (size_t)mlen[0], &cid), 0);

  /* Every bit flip of message 0 is refused and leaves the record as it was. */
  {
    uint8_t t[512], *before, *after;
    size_t bl = 0, al = 0, b, accepted = 0;
    before = malloc(sotto_sender_key_serialized_size(rec));
    CHECK(before != NULL);
    if (before != NULL) {
      CHECK_RC(sotto_sender_key_serialize(rec, before, sotto_sender_key_serialized_size(rec), &bl), 0);
      for (b = 0; b < (size_t)mlen[0] * 8; b++) {
        size_t pn = 0;
        memcpy(t, msgs[0], (size_t)mlen[0]);
        t[b / 8] ^= (uint8_t)(1u << (b % 8));
        if (sotto_group_decrypt(rec, pt, sizeof pt, &pn, t, (size_t)mlen[0]) == 0) accepted++;
      }
      CHECK(accepted == 0);
      after = malloc(sotto_sender_key_serialized_size(rec));
      if (after != NULL) {
        CHECK_RC(sotto_sender_key_serialize(rec, after, sotto_sender_key_serialized_size(rec), &al), 0);
        CHECK(al == bl && memcmp(before, after, bl) == 0);
      }
      free(after);
      printf("libsignal -> sotto group: %zu bit flips, %zu accepted, record unchanged\n",
             (size_t)mlen[0] * 8, accepted);
    }
    free(before);
  }

  /* In order, reversed, with drops; then a serialized record continues. */
  for (i = 0; i < N_MSG; i++) {
    int k = i < 20 ? i : i < 40 ? 59 - i : i;
    char txt[64];
    size_t pn = 0;
    if (i >= 40 && i % 3 == 0) continue;
    if (i == 30) {
      struct sotto_sender_key *copy = NULL;
      uint8_t *b = malloc(sotto_sender_key_serialized_size(rec));
      size_t bl = 0;
      CHECK(b != NULL);
      if (b == NULL) break;
      CHECK_RC(sotto_sender_key_serialize(rec, b, sotto_sender_key_serialized_size(rec), &bl), 0);
      CHECK_RC(sotto_sender_key_deserialize(&copy, b, bl), 0);
      free(b);
      if (copy != NULL) {
        sotto_sender_key_free(rec);
        rec = copy;
      }
    }
    snprintf(txt, sizeof txt, "libsignal group message %d", k);
    if (sotto_group_decrypt(rec, pt, sizeof pt, &pn, msgs[k], (size_t)mlen[k]) == 0 &&
        pn == strlen(txt) && memcmp(pt, txt, pn) == 0)
      ok++;
    else
      fprintf(stderr, "message %d refused\n", k);
  }
  CHECK(ok == N_MSG - 6);
  printf("libsignal -> sotto group: %d/%d messages decrypted (in order, reversed, drops, restart)\n",
         ok, N_MSG - 6);
  {
    size_t pn = 0;
    CHECK_RC(sotto_group_decrypt(rec, pt, sizeof pt, &pn, msgs[5], (size_t)mlen[5]),
             SOTTO_ERR_DUPLICATE);
  }
  sotto_sender_key_free(rec);
}

int main(void) {
  REQUIRE(sotto_init() == 0);
  P = lspeer_start();
  REQUIRE(P != NULL);
  sotto_to_libsignal();
  libsignal_to_sotto();
  lspeer_stop(P);
  return test_done(__FILE__);
}
