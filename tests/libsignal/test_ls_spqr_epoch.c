/* SPDX-License-Identifier: Apache-2.0 */
/* test_ls_spqr_epoch: one whole SPQR epoch between two libsignal 0.103
 * parties, observed and recomputed by libsotto. A and B (both libsignal,
 * Node peer) exchange bursts until A's SPQR chain reaches epoch 1. From the
 * pq_ratchet fields of their messages and A's session record (its ML-KEM-768
 * decapsulation key and the PQXDH auth key, which libsignal keeps there) we:
 *   - rebuild the header (rho || H(ek) || MAC), A's encapsulation-key vector
 *     and B's ct1, ct2 || MAC with our erasure decoder;
 *   - check the header MAC and that the vector matches the header
 *     (lib/pq/mlkem768_inc.c's layout);
 *   - decapsulate ct1 || ct2 with plain ML-KEM-768 (PQClean), derive the SCKA
 *     epoch secret, update our authenticator and verify B's ciphertext MAC;
 *   - add the epoch to our chain and compare its next root with A's record.
 * This proves the braid's cryptography against libsignal; the state machine
 * itself is not in libsotto yet (docs/protocol.md, "SPQR"). */
#include <stdlib.h>
#include <string.h>

#include <sotto/mlkem.h>

#include "crypto/crypto.h"
#include "lstest.h"
#include "pq/mlkem768_inc.h"
#include "spqr/auth.h"
#include "spqr/chain.h"
#include "spqr/msg.h"
#include "spqr/poly.h"

static struct lspeer *P;
static const uint8_t ACI_A[16] = {0xa1, 0xa1, 0x01, 0x02, 0x03, 0x04, 0x45, 0x06,
                                  0x87, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x3e};
static const uint8_t ACI_B[16] = {0xb2, 0xb2, 0x01, 0x02, 0x03, 0x04, 0x45, 0x06,
                                  0x87, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x3f};

static struct sotto__spqr_dec d_hdr, d_ek, d_ct1, d_ct2;
static uint8_t dk[SOTTO_MLKEM768_SK_LEN], auth_key[32], a_next_root[32];
static int have_dk, have_auth;
static uint64_t a_epoch;

/* The first field `num` of a nested path, or NULL. */
static const uint8_t *path(const uint8_t *p, size_t n, const uint32_t *nums, int depth,
                           size_t *out_len) {
  int i;
  for (i = 0; i < depth && p != NULL; i++) p = ls_pb_field(p, n, nums[i], &n);
  *out_len = n;
  return p;
}

static uint64_t pb_varint_field(const uint8_t *p, size_t n, uint32_t num) {
  struct sotto__rd r;
  struct sotto__pb_field f;
  sotto__rd_init(&r, p, n);
  while (sotto__pb_next(&r, &f) == 1)
    if (f.num == num && f.wt == SOTTO__PB_VARINT) return f.v;
  return 0;
}

/* Feeds the pq_ratchet field of a (PreKey)SignalMessage to the decoders. */
static void feed(const uint8_t *msg, size_t len, int type, int from_a) {
  const uint8_t *sm = msg, *pqr;
  size_t sn = len, pn = 0;
  struct sotto__spqr_msg q;
  if (type == 3) sm = ls_pb_field(msg + 1, len - 1, 4, &sn);
  if (sm == NULL || sn < 9) return;
  pqr = ls_pb_field(sm + 1, sn - 9, 5, &pn);
  if (pqr == NULL || sotto__spqr_msg_parse(&q, NULL, pqr, pn) != 0 || !q.has_chunk) return;
  if (q.epoch != 1) return;
  if (from_a && q.type == SOTTO_SPQR_HDR) sotto__spqr_dec_add(&d_hdr, q.chunk_index, q.chunk);
  if (from_a && (q.type == SOTTO_SPQR_EK || q.type == SOTTO_SPQR_EK_CT1_ACK))
    sotto__spqr_dec_add(&d_ek, q.chunk_index, q.chunk);
  if (!from_a && q.type == SOTTO_SPQR_CT1) sotto__spqr_dec_add(&d_ct1, q.chunk_index, q.chunk);
  if (!from_a && q.type == SOTTO_SPQR_CT2) sotto__spqr_dec_add(&d_ct2, q.chunk_index, q.chunk);
}

/* Reads A's record: the auth key and dk while present, the chain's epoch. */
static void read_a(void) {
  char *w[LSPEER_MAX_WORDS];
  static uint8_t rec[1 << 17];
  long rl;
  const uint8_t *pq, *x;
  size_t pql, xl;
  static const uint32_t p_pq[] = {1, 15}, p_auth[] = {1}, p_dk[] = {3, 2, 1, 4}, p_chain[] = {2};
  lspeer_begin(P, "session");
  lspeer_arg_str(P, "a");
  lspeer_arg_hex(P, ACI_B, 16);
  lspeer_arg_u(P, 1);
  if (lspeer_send(P, w) != 1 || (rl = lspeer_unhex(rec, sizeof rec, w[0])) <= 0) return;
  if ((pq = path(rec, (size_t)rl, p_pq, 2, &pql)) == NULL) return;
  if (!have_auth && (x = path(pq, pql, p_auth, 1, &xl)) != NULL &&
      (x = ls_pb_field(x, xl, 1, &xl)) != NULL && xl == 32) {
    memcpy(auth_key, x, 32);
    have_auth = 1;
  }
  if (!have_dk && (x = path(pq, pql, p_dk, 4, &xl)) != NULL && xl == sizeof dk) {
    memcpy(dk, x, sizeof dk);
    have_dk = 1;
  }
  if ((x = path(pq, pql, p_chain, 1, &xl)) != NULL) {
    size_t nl = 0;
    const uint8_t *nr = ls_pb_field(x, xl, 4, &nl);
    a_epoch = pb_varint_field(x, xl, 2);
    if (nr != NULL && nl == 32) memcpy(a_next_root, nr, 32);
  }
}

static int xfer(const char *from, const char *to, const uint8_t *to_aci, const uint8_t *from_aci) {
  char *w[LSPEER_MAX_WORDS];
  static uint8_t ct[8192];
  long n;
  int type;
  lspeer_begin(P, "encrypt");
  lspeer_arg_str(P, from);
  lspeer_arg_hex(P, to_aci, 16);
  lspeer_arg_u(P, 1);
  lspeer_arg_hex(P, (const uint8_t *)"braid", 5);
  if (lspeer_send(P, w) != 2) return -1;
  type = atoi(w[0]);
  if ((n = lspeer_unhex(ct, sizeof ct, w[1])) <= 0) return -1;
  feed(ct, (size_t)n, type, from[0] == 'a');
  lspeer_begin(P, "decrypt");
  lspeer_arg_str(P, to);
  lspeer_arg_hex(P, from_aci, 16);
  lspeer_arg_u(P, 1);
  lspeer_arg_u(P, (unsigned long)type);
  lspeer_arg_hex(P, ct, (size_t)n);
  return lspeer_send(P, w) == 1 ? 0 : -1;
}

int main(void) {
  char *w[LSPEER_MAX_WORDS];
  char *bundle[11];
  int i, round, msgs = 0;
  static uint8_t hdr[96], t[SOTTO_MLKEM768_EK_VEC_LEN], ct[SOTTO_MLKEM768_CT_LEN], ct2m[160];
  uint8_t ss[32], secret[32];
  struct sotto__spqr_auth au;
  struct sotto__spqr_chain ch;

  REQUIRE(sotto__spqr_dec_init(&d_hdr, 96) == 0);
  REQUIRE(sotto__spqr_dec_init(&d_ek, SOTTO_MLKEM768_EK_VEC_LEN) == 0);
  REQUIRE(sotto__spqr_dec_init(&d_ct1, SOTTO_MLKEM768_CT1_LEN) == 0);
  REQUIRE(sotto__spqr_dec_init(&d_ct2, 160) == 0);
  P = lspeer_start();
  REQUIRE(P != NULL);
  lspeer_begin(P, "party");
  lspeer_arg_str(P, "a");
  lspeer_arg_hex(P, ACI_A, 16);
  lspeer_arg_u(P, 1);
  REQUIRE(lspeer_send(P, w) == 2);
  lspeer_begin(P, "party");
  lspeer_arg_str(P, "b");
  lspeer_arg_hex(P, ACI_B, 16);
  lspeer_arg_u(P, 1);
  REQUIRE(lspeer_send(P, w) == 2);
  lspeer_begin(P, "bundle");
  lspeer_arg_str(P, "b");
  lspeer_arg_u(P, 0);
  REQUIRE(lspeer_send(P, w) == 11);
  for (i = 0; i < 11; i++) bundle[i] = strdup(w[i]);
  lspeer_begin(P, "process_bundle");
  lspeer_arg_str(P, "a");
  lspeer_arg_hex(P, ACI_B, 16);
  lspeer_arg_u(P, 1);
  lspeer_arg_str(P, bundle[0]);
  for (i = 2; i < 11; i++) lspeer_arg_str(P, bundle[i]);
  for (i = 0; i < 11; i++) free(bundle[i]);
  REQUIRE(lspeer_send(P, w) == 0);

  /* Bursts of 4 both ways until A's chain is in epoch 1 (bounded). */
  for (round = 0; round < 100 && a_epoch < 1; round++) {
    for (i = 0; i < 4; i++, msgs++) REQUIRE(xfer("a", "b", ACI_B, ACI_A) == 0);
    read_a();
    for (i = 0; i < 4; i++, msgs++) REQUIRE(xfer("b", "a", ACI_A, ACI_B) == 0);
    read_a();
  }
  CHECK(a_epoch == 1 && have_dk && have_auth);
  printf("libsignal A<->B: SPQR epoch 1 complete after %d messages\n", msgs);

  CHECK(sotto__spqr_dec_done(&d_hdr, hdr, sizeof hdr) == 1);
  CHECK(sotto__spqr_dec_done(&d_ek, t, sizeof t) == 1);
  CHECK(sotto__spqr_dec_done(&d_ct1, ct, SOTTO_MLKEM768_CT1_LEN) == 1);
  CHECK(sotto__spqr_dec_done(&d_ct2, ct2m, sizeof ct2m) == 1);
  memcpy(ct + SOTTO_MLKEM768_CT1_LEN, ct2m, SOTTO_MLKEM768_CT2_LEN);

  CHECK_RC(sotto__spqr_auth_init(&au, auth_key, 32, 1), 0);
  CHECK_RC(sotto__spqr_auth_verify_hdr(&au, 1, hdr, 64, hdr + 64), 0);
  CHECK_RC(sotto__mlkem768_ek_matches(hdr, t), 0); /* header = rho || H(t || rho) */
  /* A's dk holds the whole key: its ek part is t || rho. */
  CHECK(memcmp(dk + 1152, t, sizeof t) == 0 && memcmp(dk + 1152 + 1152, hdr, 32) == 0);
  CHECK_RC(sotto_mlkem768_decaps(ss, ct, sizeof ct, dk, sizeof dk), 0);
  sotto__spqr_scka_key(secret, ss, 1);
  CHECK_RC(sotto__spqr_auth_update(&au, 1, secret, 32), 0);
  CHECK_RC(sotto__spqr_auth_verify_ct(&au, 1, ct, sizeof ct, ct2m + SOTTO_MLKEM768_CT2_LEN), 0);
  CHECK_RC(sotto__spqr_chain_init(&ch, auth_key, SOTTO_SPQR_A2B, 0, 0), 0);
  CHECK_RC(sotto__spqr_chain_add_epoch(&ch, 1, secret, 32), 0);
  CHECK(memcmp(ch.next_root, a_next_root, 32) == 0);
  if (memcmp(ch.next_root, a_next_root, 32) == 0)
    printf("epoch 1: ML-KEM-768 decapsulation, SCKA key, ciphertext MAC and chain root all "
           "agree with libsignal\n");
  sotto__spqr_chain_clear(&ch);
  lspeer_stop(P);
  return test_done(__FILE__);
}
