/* SPDX-License-Identifier: Apache-2.0 */
/* gen_corpus.c: writes the seed corpora of the Sender Keys fuzz targets from
 * real messages and records made by libsotto:
 *   CORPUS/skdm/             SenderKeyDistributionMessages
 *   CORPUS/sender_key_msg/   [1 byte n][n-byte SKDM][SenderKeyMessage]
 *                            (the framing fuzz/fuzz_sender_key_msg.c reads)
 *   CORPUS/sender_key_record/ serialized records (our format)
 * Usage: group_gen_corpus FUZZ_CORPUS_DIR   (e.g. fuzz/corpus). Keys are
 * random, so every run writes different bytes; run it only to refresh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sotto/group.h>
#include <sotto/keys.h>

#include "wire/wire.h"

static const char *root;

static void die(const char *what) {
  fprintf(stderr, "gen_corpus: %s\n", what);
  exit(1);
}

static void put(const char *dir, const char *name, const uint8_t *p, size_t n) {
  char path[4096];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", root, dir);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/%s/%s", root, dir, name);
  if ((f = fopen(path, "wb")) == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) die(path);
}

static struct sotto_sender_key *rec(void) {
  struct sotto_sender_key *r;
  if (sotto_sender_key_new(&r) != 0) die("new");
  return r;
}

static size_t skdm(struct sotto_sender_key *s, uint8_t *d) {
  size_t n;
  if (sotto_sender_key_distribution(s, d, SOTTO_SKDM_MAX_LEN, &n) != 0) die("skdm");
  return n;
}

static size_t enc(struct sotto_sender_key *s, uint8_t *out, size_t cap, size_t pt_len) {
  uint8_t pt[1024];
  size_t n;
  memset(pt, 'p', sizeof pt);
  if (pt_len > sizeof pt || sotto_group_encrypt(s, out, cap, &n, pt, pt_len) != 0) die("encrypt");
  return n;
}

/* [n][skdm][msg] */
static void put_msg(const char *name, const uint8_t *d, size_t dn, const uint8_t *m, size_t mn) {
  uint8_t buf[2048];
  if (1 + dn + mn > sizeof buf) die("frame");
  buf[0] = (uint8_t)dn;
  memcpy(buf + 1, d, dn);
  memcpy(buf + 1 + dn, m, mn);
  put("sender_key_msg", name, buf, 1 + dn + mn);
}

static void put_rec(const char *name, const struct sotto_sender_key *r) {
  size_t n = sotto_sender_key_serialized_size(r), got;
  uint8_t *b = malloc(n);
  if (b == NULL || sotto_sender_key_serialize(r, b, n, &got) != 0) die("serialize");
  put("sender_key_record", name, b, got);
  free(b);
}

static void gen_skdm(void) {
  struct sotto_sender_key *s = rec();
  uint8_t d[SOTTO_SKDM_MAX_LEN + 8], m[512], ck[32], pub[32], priv[32];
  struct sotto__wr w;
  size_t n;
  unsigned i;

  n = skdm(s, d);
  put("skdm", "iter0", d, n);
  for (i = 0; i < 5; i++) (void)enc(s, m, sizeof m, 10);
  n = skdm(s, d);
  put("skdm", "iter5", d, n);
  d[n] = 0x48; /* unknown field 9 */
  d[n + 1] = 0x01;
  put("skdm", "unknown_field", d, n + 2);
  put("skdm", "truncated", d, n - 7);
  d[n - 33] = 0x06;
  put("skdm", "bad_key_type", d, n);
  d[0] = 0x23;
  put("skdm", "legacy_version", d, 20);
  sotto_sender_key_free(s);

  /* Extremes built by hand: id 0, the last iterations. */
  memset(ck, 0x5A, sizeof ck);
  if (sotto_keypair_generate(pub, priv) != 0) die("keypair");
  sotto__wr_init(&w, d, sizeof d);
  sotto__wr_u8(&w, 0x33);
  sotto__pb_varint(&w, 1, 0);
  sotto__pb_varint(&w, 2, 0xFFFFFFFEu);
  sotto__pb_bytes(&w, 3, ck, 32);
  sotto__pb_pubkey(&w, 4, pub);
  put("skdm", "id0_last_iteration", d, w.len);
  sotto__wr_init(&w, d, sizeof d);
  sotto__wr_u8(&w, 0x33);
  sotto__pb_pubkey(&w, 4, pub);
  sotto__pb_bytes(&w, 3, ck, 32);
  sotto__pb_varint(&w, 2, 1);
  sotto__pb_varint(&w, 1, 0x7FFFFFFF);
  put("skdm", "reversed_fields", d, w.len);
}

static void gen_msg(void) {
  struct sotto_sender_key *s = rec(), *o = rec();
  uint8_t d0[SOTTO_SKDM_MAX_LEN], d2[SOTTO_SKDM_MAX_LEN], od[SOTTO_SKDM_MAX_LEN];
  uint8_t m[2048];
  size_t n0, n2, on, mn;

  n0 = skdm(s, d0);
  on = skdm(o, od);
  mn = enc(s, m, sizeof m, 100); /* iteration 0 */
  put_msg("in_order_100", d0, n0, m, mn);
  m[mn - 5] ^= 0x10;
  put_msg("bad_signature", d0, n0, m, mn);
  put_msg("other_chain", od, on, m, mn);
  put_msg("truncated", d0, n0, m, mn - 70);
  mn = enc(s, m, sizeof m, 0); /* 1 */
  put_msg("empty_pt", d0, n0, m, mn);
  mn = enc(s, m, sizeof m, 16); /* 2 */
  put_msg("block_pt", d0, n0, m, mn);
  n2 = skdm(s, d2); /* at iteration 3 */
  put_msg("old_iteration", d2, n2, m, mn);
  mn = enc(s, m, sizeof m, 1000); /* 3 */
  put_msg("pt_1000", d2, n2, m, mn);
  mn = enc(s, m, sizeof m, 33); /* 4 */
  mn = enc(s, m, sizeof m, 33); /* 5 */
  put_msg("skip_5", d0, n0, m, mn);
  m[0] = 0x43;
  put_msg("version4", d0, n0, m, mn);
  sotto_sender_key_free(s);
  sotto_sender_key_free(o);
}

static void gen_rec(void) {
  struct sotto_sender_key *s = rec(), *r = rec(), *e = rec();
  uint8_t d[SOTTO_SKDM_MAX_LEN], m[512], pt[4096];
  size_t dn, mn, pn;
  unsigned i;

  put_rec("empty", e);
  dn = skdm(s, d);
  put_rec("own_fresh", s);
  if (sotto_sender_key_process(r, d, dn) != 0) die("process");
  put_rec("member_fresh", r);
  for (i = 0; i < 12; i++) {
    mn = enc(s, m, sizeof m, 8);
    if (i == 11 && sotto_group_decrypt(r, pt, sizeof pt, &pn, m, mn) != 0) die("decrypt");
    if (i == 3 && sotto_group_decrypt(r, pt, sizeof pt, &pn, m, mn) != 0) die("decrypt");
  }
  put_rec("own_iter12", s);
  put_rec("member_10_skipped", r); /* keys 0..10 minus 3 */
  for (i = 0; i < 4; i++) {
    struct sotto_sender_key *x = rec();
    dn = skdm(x, d);
    if (sotto_sender_key_process(r, d, dn) != 0) die("process");
    sotto_sender_key_free(x);
  }
  put_rec("member_5_states", r);
  if (sotto_sender_key_process(s, d, dn) != 0) die("process");
  put_rec("own_and_member", s);
  sotto_sender_key_free(s);
  sotto_sender_key_free(r);
  sotto_sender_key_free(e);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s FUZZ_CORPUS_DIR\n", argv[0]);
    return 2;
  }
  root = argv[1];
  if (sotto_init() != 0) die("init");
  gen_skdm();
  gen_msg();
  gen_rec();
  return 0;
}
