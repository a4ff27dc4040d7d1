/* SPDX-License-Identifier: Apache-2.0 */
/* test_spqr_chain: the SPQR v1 chain (lib/spqr/chain.c) and message codec
 * (lib/spqr/msg.c): both directions agree across epochs, first index 1,
 * out-of-order keys given once, the jump and out-of-order limits, epoch
 * bookkeeping, the record (round trip and every rejection), the codec's
 * layout and rejections. libsignal agreement: tests/libsignal/
 * test_ls_spqr_chain.c. With a second argument, writes the fuzz seeds of
 * fuzz/corpus/spqr_chain_record into that directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sotto/error.h>

#include "spqr/auth.h"
#include "spqr/chain.h"
#include "spqr/msg.h"
#include "spqr/poly.h"
#include "testutil.h"

static const uint8_t AUTH[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static uint8_t *ser(const struct sotto__spqr_chain *c, size_t *n) {
  size_t cap = sotto__spqr_chain_serialized_size(c);
  uint8_t *b = malloc(cap);
  if (b == NULL || sotto__spqr_chain_serialize(c, b, cap, n) != 0 || *n != cap) exit(2);
  return b;
}

static void test_directions(void) {
  struct sotto__spqr_chain a, b;
  uint8_t ka[32], kb[32], s1[3] = {9, 9, 9};
  uint32_t idx = 0, i;

  CHECK_RC(sotto__spqr_chain_init(&a, AUTH, SOTTO_SPQR_A2B, 0, 0), 0);
  CHECK_RC(sotto__spqr_chain_init(&b, AUTH, SOTTO_SPQR_B2A, 0, 0), 0);
  CHECK(a.max_jump == 25000 && a.max_ooo == 2000);
  CHECK(memcmp(a.next_root, b.next_root, 32) == 0);
  /* A's sending chain is B's receiving one, and the reverse. */
  CHECK_RC(sotto__spqr_chain_send_key(&a, 0, &idx, ka), 0);
  CHECK(idx == 1);
  CHECK_RC(sotto__spqr_chain_recv_key(&b, 0, 1, kb), 0);
  CHECK(memcmp(ka, kb, 32) == 0);
  CHECK_RC(sotto__spqr_chain_send_key(&b, 0, &idx, kb), 0);
  CHECK(idx == 1 && memcmp(ka, kb, 32) != 0); /* the other direction: another key */
  CHECK_RC(sotto__spqr_chain_recv_key(&a, 0, 1, ka), 0);
  CHECK(memcmp(ka, kb, 32) == 0);
  /* A new epoch on both sides. */
  CHECK_RC(sotto__spqr_chain_add_epoch(&a, 2, s1, 3), SOTTO_ERR_USAGE);
  CHECK_RC(sotto__spqr_chain_add_epoch(&a, 1, s1, 3), 0);
  CHECK_RC(sotto__spqr_chain_add_epoch(&b, 1, s1, 3), 0);
  for (i = 1; i <= 10; i++) CHECK_RC(sotto__spqr_chain_send_key(&a, 1, &idx, ka), 0);
  CHECK(idx == 10);
  CHECK_RC(sotto__spqr_chain_recv_key(&b, 1, 10, kb), 0);
  CHECK(memcmp(ka, kb, 32) == 0);
  /* Keys 1..9 of epoch 1 are kept for B, given once, in any order. */
  for (i = 9; i >= 1; i--) CHECK_RC(sotto__spqr_chain_recv_key(&b, 1, i, kb), 0);
  CHECK_RC(sotto__spqr_chain_recv_key(&b, 1, 5, kb), SOTTO_ERR_DUPLICATE);
  CHECK_RC(sotto__spqr_chain_recv_key(&b, 1, 10, kb), SOTTO_ERR_DUPLICATE);
  /* Epoch 0 is still held for late messages. */
  CHECK_RC(sotto__spqr_chain_send_key(&a, 0, &idx, ka), SOTTO_ERR_USAGE); /* sending went on */
  CHECK_RC(sotto__spqr_chain_recv_key(&b, 0, 2, kb), 0);
  CHECK_RC(sotto__spqr_chain_recv_key(&b, 2, 1, kb), SOTTO_ERR_NO_SESSION);
  /* Different epoch secrets give different keys. */
  {
    struct sotto__spqr_chain c;
    uint8_t s2[3] = {9, 9, 8};
    CHECK_RC(sotto__spqr_chain_init(&c, AUTH, SOTTO_SPQR_B2A, 0, 0), 0);
    CHECK_RC(sotto__spqr_chain_add_epoch(&c, 1, s2, 3), 0);
    CHECK_RC(sotto__spqr_chain_recv_key(&c, 1, 10, kb), 0);
    CHECK_RC(sotto__spqr_chain_send_key(&a, 1, &idx, ka), 0);
    CHECK(memcmp(ka, kb, 32) != 0);
    sotto__spqr_chain_clear(&c);
  }
  sotto__spqr_chain_clear(&a);
  sotto__spqr_chain_clear(&b);
}

static void test_limits(void) {
  struct sotto__spqr_chain a, b, b2;
  uint8_t k[32], ka[32];
  uint32_t idx, i;

  /* max_jump 10, max_ooo 5 (trim size 6). */
  CHECK_RC(sotto__spqr_chain_init(&a, AUTH, SOTTO_SPQR_A2B, 10, 5), 0);
  CHECK_RC(sotto__spqr_chain_init(&b, AUTH, SOTTO_SPQR_B2A, 10, 5), 0);
  CHECK_RC(sotto__spqr_chain_recv_key(&b, 0, 11, k), SOTTO_ERR_TOO_FAR_AHEAD);
  CHECK_RC(sotto__spqr_chain_recv_key(&b, 0, 10, k), 0); /* exactly max_jump ahead */
  /* Keys within max_ooo of 10 are kept: 5..9; 1..4 were never stored. */
  CHECK(b.links[0].recv.n_prev == 5);
  CHECK_RC(sotto__spqr_chain_recv_key(&b, 0, 4, k), SOTTO_ERR_DUPLICATE);
  CHECK_RC(sotto__spqr_chain_recv_key(&b, 0, 7, k), 0);
  for (i = 1; i <= 7; i++) CHECK_RC(sotto__spqr_chain_send_key(&a, 0, &idx, ka), 0);
  CHECK(memcmp(ka, k, 32) == 0);
  /* A failed request changes nothing. */
  CHECK_RC(sotto__spqr_chain_copy(&b2, &b), 0);
  CHECK_RC(sotto__spqr_chain_recv_key(&b, 0, 21, k), SOTTO_ERR_TOO_FAR_AHEAD);
  {
    size_t n1, n2;
    uint8_t *x = ser(&b, &n1), *y = ser(&b2, &n2);
    CHECK(n1 == n2 && memcmp(x, y, n1) == 0);
    free(x);
    free(y);
  }
  /* A jump past the window drops the old keys. */
  CHECK_RC(sotto__spqr_chain_recv_key(&b, 0, 20, k), 0);
  CHECK(b.links[0].recv.n_prev == 5); /* 15..19 */
  CHECK_RC(sotto__spqr_chain_recv_key(&b, 0, 9, k), SOTTO_ERR_DUPLICATE);
  CHECK_RC(sotto__spqr_chain_recv_key(&b2, 0, 9, k), 0); /* the copy is independent */
  /* Stepping one at a time never grows the list past the trim size. */
  for (i = 21; i < 200; i += 2) CHECK_RC(sotto__spqr_chain_recv_key(&b, 0, i + 1, k), 0);
  CHECK(b.links[0].recv.n_prev < 7);
  sotto__spqr_chain_clear(&a);
  sotto__spqr_chain_clear(&b);
  sotto__spqr_chain_clear(&b2);

  /* Epoch bookkeeping: add epochs 1..3; sending in 3 keeps 2 and 3 only. */
  CHECK_RC(sotto__spqr_chain_init(&a, AUTH, SOTTO_SPQR_A2B, 0, 0), 0);
  for (i = 1; i <= 3; i++) CHECK_RC(sotto__spqr_chain_add_epoch(&a, i, k, 32), 0);
  CHECK(a.n_links == 4);
  CHECK_RC(sotto__spqr_chain_send_key(&a, 3, &idx, k), 0);
  CHECK(a.n_links == 2 && a.send_epoch == 3 && !a.links[0].send.has_next);
  CHECK_RC(sotto__spqr_chain_recv_key(&a, 1, 1, k), SOTTO_ERR_NO_SESSION);
  CHECK_RC(sotto__spqr_chain_recv_key(&a, 2, 1, k), 0);
  for (i = 4; i < 3 + SOTTO_SPQR_MAX_LINKS - 1; i++) CHECK_RC(sotto__spqr_chain_add_epoch(&a, i, k, 32), 0);
  CHECK(a.n_links == SOTTO_SPQR_MAX_LINKS);
  CHECK_RC(sotto__spqr_chain_add_epoch(&a, a.current_epoch + 1, k, 32), SOTTO_ERR_TOO_LARGE);
  sotto__spqr_chain_clear(&a);
  CHECK_RC(sotto__spqr_chain_init(&a, AUTH, 2, 0, 0), SOTTO_ERR_USAGE);
}

static void test_record(const char *corpus) {
  struct sotto__spqr_chain a, x;
  uint8_t k[32], *b, *t;
  size_t n, n2, i;
  uint32_t idx;

  CHECK_RC(sotto__spqr_chain_init(&a, AUTH, SOTTO_SPQR_B2A, 0, 0), 0);
  b = ser(&a, &n);
  if (corpus != NULL) {
    char p[4096];
    FILE *f;
    snprintf(p, sizeof p, "%s/fresh_b2a", corpus);
    if ((f = fopen(p, "wb")) != NULL) {
      fwrite(b, 1, n, f);
      fclose(f);
    }
  }
  free(b);
  CHECK_RC(sotto__spqr_chain_recv_key(&a, 0, 5, k), 0);
  CHECK_RC(sotto__spqr_chain_add_epoch(&a, 1, AUTH, 32), 0);
  CHECK_RC(sotto__spqr_chain_send_key(&a, 1, &idx, k), 0);
  CHECK_RC(sotto__spqr_chain_recv_key(&a, 1, 3, k), 0);
  b = ser(&a, &n);
  if (corpus != NULL) {
    char p[4096];
    FILE *f;
    snprintf(p, sizeof p, "%s/two_epochs_keys", corpus);
    if ((f = fopen(p, "wb")) != NULL) {
      fwrite(b, 1, n, f);
      fclose(f);
    }
  }
  CHECK_RC(sotto__spqr_chain_deserialize(&x, b, n), 0);
  t = ser(&x, &n2);
  CHECK(n2 == n && memcmp(t, b, n) == 0);
  free(t);
  /* The loaded chain continues exactly like the original. */
  {
    uint8_t k1[32], k2[32];
    CHECK_RC(sotto__spqr_chain_recv_key(&a, 0, 2, k1), 0);
    CHECK_RC(sotto__spqr_chain_recv_key(&x, 0, 2, k2), 0);
    CHECK(memcmp(k1, k2, 32) == 0);
  }
  /* Every truncation fails; a trailing byte fails. */
  for (i = 0; i < n; i++) {
    struct sotto__spqr_chain y;
    int rc = sotto__spqr_chain_deserialize(&y, b, i);
    CHECK(rc != 0);
    if (rc == 0) sotto__spqr_chain_clear(&y);
  }
  t = malloc(n + 1);
  if (t == NULL) exit(2);
  memcpy(t, b, n);
#define REJECT(mut, want)                                      \
  do {                                                         \
    struct sotto__spqr_chain y;                                \
    memcpy(t, b, n);                                           \
    mut;                                                       \
    CHECK_RC(sotto__spqr_chain_deserialize(&y, t, n), (want)); \
  } while (0)
  REJECT(t[0] = 'X', SOTTO_ERR_MALFORMED);
  REJECT(t[4] = 2, SOTTO_ERR_VERSION);
  REJECT(t[5] = 2, SOTTO_ERR_MALFORMED);                       /* direction */
  REJECT(t[13] = 0, SOTTO_ERR_MALFORMED);                      /* current epoch 0 with 2 links */
  REJECT(t[21] = 2, SOTTO_ERR_MALFORMED);                      /* send epoch past the current one */
  REJECT((t[54] = 0, t[55] = 0, t[56] = 0, t[57] = 0), SOTTO_ERR_MALFORMED); /* max_jump 0 */
  REJECT(t[62] = 0, SOTTO_ERR_TOO_LARGE);                      /* no links */
  /* Link 0: send half at 63 (cleared: ctr 0, no next, no keys), receive
   * half at 70 (ctr 5, next, 4 keys: indices 1..4 at 109, 145, ...). */
  CHECK(t[67] == 0 && t[74] == 1 && t[73] == 5 && t[108] == 4 && t[112] == 1 && t[148] == 2);
  REJECT(t[67] = 2, SOTTO_ERR_MALFORMED);  /* has_next must be 0 or 1 */
  REJECT(t[112] = 5, SOTTO_ERR_MALFORMED); /* a kept key at the counter */
  REJECT(t[112] = 0, SOTTO_ERR_MALFORMED); /* index 0 does not exist */
  REJECT(t[148] = 1, SOTTO_ERR_MALFORMED); /* the same index twice */
  REJECT((t[107] = 0x08, t[108] = 0x9A), SOTTO_ERR_TOO_LARGE); /* 2202 keys: past the trim size */
  REJECT(t[62] = SOTTO_SPQR_MAX_LINKS + 1, SOTTO_ERR_TOO_LARGE);
  {
    struct sotto__spqr_chain y;
    memcpy(t, b, n);
    t[n] = 0;
    CHECK_RC(sotto__spqr_chain_deserialize(&y, t, n + 1), SOTTO_ERR_TRAILING);
  }
  free(t);
  free(b);
  sotto__spqr_chain_clear(&a);
  sotto__spqr_chain_clear(&x);
}

static void test_msg(void) {
  static const uint8_t hdr[37] = {1, 1, 1, 1, 0, 0xAA};
  uint8_t out[SOTTO_SPQR_MSG_MAX_LEN], big[64];
  struct sotto__spqr_msg m, m2;
  size_t used = 0, n;

  CHECK_RC(sotto__spqr_msg_parse(&m, &used, hdr, sizeof hdr), 0);
  CHECK(m.epoch == 1 && m.index == 1 && m.type == SOTTO_SPQR_HDR && m.has_chunk &&
        m.chunk_index == 0 && m.chunk == hdr + 5 && used == 37);
  n = sotto__spqr_msg_write(out, sizeof out, &m);
  CHECK(n == 37 && memcmp(out, hdr, 37) == 0);
  CHECK_RC(sotto__spqr_msg_parse(&m, &used, hdr, 36), SOTTO_ERR_TRUNCATED);
  CHECK_RC(sotto__spqr_msg_parse(&m, &used, hdr, 0), SOTTO_ERR_TRUNCATED);
  /* Trailing bytes are allowed and not consumed. */
  memset(big, 0, sizeof big);
  memcpy(big, hdr, 37);
  CHECK_RC(sotto__spqr_msg_parse(&m, &used, big, sizeof big), 0);
  CHECK(used == 37);
  /* Types without a chunk; a big epoch and index round trip. */
  m.epoch = 300;
  m.index = 4000000000u;
  m.type = SOTTO_SPQR_CT1_ACK;
  m.chunk = NULL;
  n = sotto__spqr_msg_write(out, sizeof out, &m);
  CHECK(n == 1 + 2 + 5 + 1);
  CHECK_RC(sotto__spqr_msg_parse(&m2, &used, out, n), 0);
  CHECK(m2.epoch == 300 && m2.index == 4000000000u && !m2.has_chunk && used == n);
  CHECK(sotto__spqr_msg_write(out, 3, &m) == 0);
  {
    static const uint8_t v0[] = {0}, e0[] = {1, 0, 1, 0}, t7[] = {1, 1, 1, 7},
                         i33[] = {1, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 0},
                         v11[] = {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 1, 0},
                         ci[] = {1, 1, 1, 2, 0x80, 0x80, 0x04};
    CHECK_RC(sotto__spqr_msg_parse(&m, &used, v0, sizeof v0), SOTTO_ERR_VERSION);
    CHECK_RC(sotto__spqr_msg_parse(&m, &used, e0, sizeof e0), SOTTO_ERR_MALFORMED);
    CHECK_RC(sotto__spqr_msg_parse(&m, &used, t7, sizeof t7), SOTTO_ERR_MALFORMED);
    CHECK_RC(sotto__spqr_msg_parse(&m, &used, i33, sizeof i33), SOTTO_ERR_MALFORMED);
    CHECK_RC(sotto__spqr_msg_parse(&m, &used, v11, sizeof v11), SOTTO_ERR_MALFORMED);
    CHECK_RC(sotto__spqr_msg_parse(&m, &used, ci, sizeof ci), SOTTO_ERR_MALFORMED); /* chunk index > 65535 */
  }
}

static uint32_t rnd_state = 12345;
static uint32_t rnd(void) {
  rnd_state = rnd_state * 1103515245u + 12345u;
  return rnd_state >> 8;
}

/* GF(2^16) and the erasure code: any ceil(L/32) distinct chunks rebuild an
 * object; fewer do not; duplicates are ignored; bad lengths are refused. */
static void test_poly(void) {
  static const size_t lens[] = {0, 2, 30, 32, 34, 96, 960, 1152, 1184, SOTTO_SPQR_OBJECT_MAX};
  uint32_t a, bad = 0;
  size_t t;

  for (a = 1; a < 65536; a++)
    if (sotto__gf16_mul((uint16_t)a, sotto__gf16_inv((uint16_t)a)) != 1) bad++;
  CHECK(bad == 0);
  CHECK(sotto__gf16_mul(0x8000, 2) == (0x1100B & 0xFFFF)); /* x^15 * x = x^16 = x^12+x^3+x+1 */
  CHECK(sotto__gf16_mul(0x1234, 0) == 0 && sotto__gf16_mul(0x1234, 1) == 0x1234);
  for (t = 0; t < 1000; t++) {
    uint16_t x = (uint16_t)rnd(), y = (uint16_t)rnd(), z = (uint16_t)rnd();
    if (sotto__gf16_mul(x, (uint16_t)(y ^ z)) != (sotto__gf16_mul(x, y) ^ sotto__gf16_mul(x, z))) bad++;
    if (sotto__gf16_mul(x, y) != sotto__gf16_mul(y, x)) bad++;
  }
  CHECK(bad == 0);

  for (t = 0; t < sizeof lens / sizeof lens[0]; t++) {
    static uint8_t obj[SOTTO_SPQR_OBJECT_MAX], out[SOTTO_SPQR_OBJECT_MAX];
    static struct sotto__spqr_enc e;
    static struct sotto__spqr_dec d;
    size_t len = lens[t], i, need = (len + 31) / 32, trial;
    uint8_t c[32];
    for (i = 0; i < len; i++) obj[i] = (uint8_t)rnd();
    CHECK_RC(sotto__spqr_enc_init(&e, obj, len), 0);
    for (trial = 0; trial < 3; trial++) {
      uint16_t base = (uint16_t)(trial == 0 ? 0 : 1 + rnd() % 200);
      CHECK_RC(sotto__spqr_dec_init(&d, len), 0);
      /* need distinct chunks from `base` on, every third one, and a repeat */
      for (i = 0; i < need; i++) {
        uint16_t idx = (uint16_t)(base + 3 * i);
        if (i + 1 == need) CHECK(len == 0 || !sotto__spqr_dec_done(&d, out, sizeof out));
        sotto__spqr_enc_chunk(&e, idx, c);
        sotto__spqr_dec_add(&d, idx, c);
        sotto__spqr_dec_add(&d, idx, c);
      }
      CHECK(sotto__spqr_dec_done(&d, out, sizeof out) == 1);
      CHECK(memcmp(out, obj, len) == 0);
      if (len > 0) CHECK(sotto__spqr_dec_done(&d, out, len - 1) == 0);
    }
    if (len >= 32) {
      /* The first chunks are the object itself. */
      sotto__spqr_enc_chunk(&e, 0, c);
      CHECK(memcmp(c, obj, 32) == 0);
    }
  }
  {
    struct sotto__spqr_enc e;
    static struct sotto__spqr_dec d;
    uint8_t one[3] = {1, 2, 3};
    CHECK_RC(sotto__spqr_enc_init(&e, one, 3), SOTTO_ERR_MALFORMED);
    CHECK_RC(sotto__spqr_enc_init(&e, NULL, SOTTO_SPQR_OBJECT_MAX + 2), SOTTO_ERR_USAGE);
    CHECK_RC(sotto__spqr_dec_init(&d, 97), SOTTO_ERR_MALFORMED);
    CHECK_RC(sotto__spqr_dec_init(&d, SOTTO_SPQR_OBJECT_MAX + 2), SOTTO_ERR_TOO_LARGE);
  }
}

/* Authenticator: MACs bound to epoch, data and key; updates change the key. */
static void test_auth(void) {
  struct sotto__spqr_auth a, b;
  uint8_t big[65] = {0}, ct[100], mac[32], k1[32], k2[32], ss[32] = {7};
  memset(ct, 0x5a, sizeof ct);
  CHECK_RC(sotto__spqr_auth_init(&a, big, sizeof big, 1), SOTTO_ERR_USAGE);
  CHECK_RC(sotto__spqr_auth_init(&a, AUTH, 32, 1), 0);
  CHECK_RC(sotto__spqr_auth_init(&b, AUTH, 32, 1), 0);
  sotto__spqr_auth_mac_ct(mac, &a, 1, ct, sizeof ct);
  CHECK_RC(sotto__spqr_auth_verify_ct(&b, 1, ct, sizeof ct, mac), 0);
  CHECK_RC(sotto__spqr_auth_verify_ct(&b, 2, ct, sizeof ct, mac), SOTTO_ERR_AUTH);
  CHECK_RC(sotto__spqr_auth_verify_ct(&b, 1, ct, sizeof ct - 1, mac), SOTTO_ERR_AUTH);
  /* Header and ciphertext MACs are domain-separated. */
  CHECK_RC(sotto__spqr_auth_verify_hdr(&b, 1, ct, sizeof ct, mac), SOTTO_ERR_AUTH);
  sotto__spqr_scka_key(k1, ss, 1);
  sotto__spqr_scka_key(k2, ss, 2);
  CHECK(memcmp(k1, k2, 32) != 0);
  CHECK_RC(sotto__spqr_auth_update(&b, 1, k1, 32), 0);
  CHECK_RC(sotto__spqr_auth_verify_ct(&b, 1, ct, sizeof ct, mac), SOTTO_ERR_AUTH);
  CHECK_RC(sotto__spqr_auth_update(&a, 1, k1, 32), 0);
  sotto__spqr_auth_mac_ct(mac, &a, 1, ct, sizeof ct);
  CHECK_RC(sotto__spqr_auth_verify_ct(&b, 1, ct, sizeof ct, mac), 0);
}

int main(int argc, char **argv) {
  test_directions();
  test_limits();
  test_record(argc > 2 ? argv[2] : NULL);
  test_msg();
  test_poly();
  test_auth();
  return test_done(__FILE__);
}
