/* SPDX-License-Identifier: Apache-2.0 */
/* gen_corpus.c: writes the seed corpora of every fuzz target
 * (fuzz/corpus/NAME/g-*), deterministically: libsodium's randombytes is
 * replaced by a ChaCha20 stream from a fixed seed before libsotto starts, so
 * every key, nonce and signature, and every mutation below, is the same on
 * each run, and re-running rewrites the same files.
 *
 * For each parser it builds valid encodings of every message variant and
 * field (real sessions and sender keys from libsotto for the protocol
 * targets; the shared codec's encoders for the server and client protocol),
 * at the boundary lengths of each field, then derives from each one:
 * truncations, single-bit flips, boundary bytes and a trailing byte (only
 * the length boundaries for inputs over GEN_BIG bytes). Every
 * target must get at least GEN_MIN inputs or the program fails.
 *
 * Usage: gen_corpus CORPUS_DIR (`make fuzz-corpus` removes the old g-* files
 * and runs it on fuzz/corpus). Other files in the corpus directories (older
 * seeds, crash regressions) are left alone. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sotto/devlist.h>
#include <sotto/group.h>
#include <sotto/keys.h>
#include <sotto/session.h>

#include "frames.h"
#include "party.h"
#include "proto.h"
#include "wire/wire.h"

#define GEN_MIN 100
#define GEN_BIG 8192
#define GEN_SEED "sotto fuzz corpus generator v1.."

static const char *root;

/* ---- deterministic randomness -------------------------------------------- */

static uint8_t rb_key[32];
static uint64_t rb_block;

static void rb_buf(void *const buf, const size_t n) {
  uint8_t nonce[8];
  size_t i;
  for (i = 0; i < 8; i++) nonce[i] = (uint8_t)(rb_block >> (8 * i));
  rb_block++;
  crypto_stream_chacha20(buf, n, nonce, rb_key);
}

static uint32_t rb_random(void) {
  uint32_t v;
  rb_buf(&v, sizeof v);
  return v;
}

static const char *rb_name(void) { return "sotto-gen-corpus"; }

static struct randombytes_implementation rb_impl = {rb_name, rb_random, NULL, NULL, rb_buf, NULL};

/* The mutation RNG is separate from the key stream, so adding a seed does
 * not change the keys of the ones after it. */
static uint64_t mut_state = 0x736f74746f2d6675ull;

static uint64_t mut_next(void) {
  uint64_t z = (mut_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* ---- output ---------------------------------------------------------------- */

_Noreturn static void die(const char *what) {
  fprintf(stderr, "gen_corpus: %s\n", what);
  exit(1);
}

struct target {
  const char *name;
  unsigned n;
};

static struct target targets[] = {
    {"prekey_msg", 0},    {"signal_msg", 0},      {"session_record", 0}, {"skdm", 0},
    {"sender_key_msg", 0}, {"sender_key_record", 0}, {"server_hello", 0},  {"server_register", 0},
    {"server_auth", 0},   {"server_keys", 0},     {"server_bundle_req", 0}, {"server_send", 0},
    {"server_ack", 0},    {"server_push", 0},     {"server_frame", 0},  {"client_net", 0},
    {"server_recover", 0}, {"backup_file", 0},   {"server_kt", 0},
    {"devlist", 0},       {"server_devlist", 0}, {"server_send_multi", 0},
};

static struct target *target(const char *name) {
  size_t i;
  for (i = 0; i < sizeof targets / sizeof targets[0]; i++)
    if (strcmp(targets[i].name, name) == 0) return &targets[i];
  die(name);
}

static void put1(const char *t, const char *desc, const char *var, const uint8_t *p, size_t n) {
  struct target *tg = target(t);
  char path[4096];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", root, t);
  if (mkdir(path, 0755) != 0 && errno != EEXIST) die(path);
  snprintf(path, sizeof path, "%s/%s/g-%04u-%s%s%s", root, t, tg->n, desc, var[0] ? "-" : "", var);
  if ((f = fopen(path, "wb")) == NULL || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) die(path);
  tg->n++;
}

/* Writes p and its derived inputs: the valid encoding, truncations (one
 * byte short, half, the first byte), three single-bit flips, a random byte
 * set to 0x00 / 0xff / 0x80, and one trailing byte. */
static void put(const char *t, const char *desc, const uint8_t *p, size_t n) {
  uint8_t *m = malloc(n + 1);
  size_t i;
  static const uint8_t boundary[3] = {0x00, 0xff, 0x80};
  if (m == NULL) die("nomem");
  put1(t, desc, "", p, n);
  if (n > GEN_BIG) {
    /* Large inputs (caps, long streams) keep the length boundaries only:
     * the repository and libFuzzer's max_len stay small. */
    put1(t, desc, "cut1", p, n - 1);
    memcpy(m, p, n);
    m[n] = (uint8_t)mut_next();
    put1(t, desc, "trail", m, n + 1);
    free(m);
    return;
  }
  if (n > 1) {
    put1(t, desc, "cut1", p, n - 1);
    put1(t, desc, "half", p, n / 2);
    put1(t, desc, "first", p, 1);
  }
  for (i = 0; n > 0 && i < 3; i++) {
    char var[32];
    size_t pos = (size_t)(mut_next() % n);
    unsigned bit = (unsigned)(mut_next() % 8);
    memcpy(m, p, n);
    m[pos] ^= (uint8_t)(1u << bit);
    snprintf(var, sizeof var, "flip%zu.%u", pos, bit);
    put1(t, desc, var, m, n);
  }
  for (i = 0; n > 0 && i < 3; i++) {
    char var[32];
    size_t pos = (size_t)(mut_next() % n);
    memcpy(m, p, n);
    m[pos] = boundary[i];
    snprintf(var, sizeof var, "set%zu.%02x", pos, boundary[i]);
    put1(t, desc, var, m, n);
  }
  memcpy(m, p, n);
  m[n] = (uint8_t)mut_next();
  put1(t, desc, "trail", m, n + 1);
  free(m);
}

/* ---- pairwise sessions: signal_msg, prekey_msg, session_record ----------- */

static void gen_sessions(void) {
  static struct party alice, bob;
  static uint8_t buf[16384], pt[16384], rec[65536];
  static const size_t lens[] = {0, 1, 15, 16, 17, 100, 255, 1000, 4000};
  struct sotto_bundle bundle;
  char desc[64];
  size_t n, pn, rn;
  int type;

  if (party_init(&alice) || party_init(&bob) || party_add_spk(&bob, 1) || party_add_spk(&bob, 0x7fffffff))
    die("party");
  for (uint32_t i = 1; i <= 6; i++)
    if (party_add_opk(&bob, i == 6 ? 0xffffff : i)) die("opk");
  if (party_add_kem(&bob, 9, 0) || party_add_kem(&bob, 10, 1) || party_add_kem(&bob, 11, 0)) die("kem");
  /* Rounds: X3DH with and without a one-time key, PQXDH with a one-time and
   * a last-resort KEM key, with and without an EC one-time key. */
  for (int round = 0; round < 6; round++) {
    struct sotto_session *a, *b;
    int rc;
    switch (round) {
      case 0: rc = party_bundle(&bob, 1, 1, &bundle); break;
      case 1: rc = party_bundle(&bob, 1, 0, &bundle); break;
      case 2: rc = party_bundle_pq(&bob, 1, 2, 9, &bundle); break;
      case 3: rc = party_bundle_pq(&bob, 0x7fffffff, 0, 10, &bundle); break;
      case 4: rc = party_bundle_pq(&bob, 1, 0xffffff, 11, &bundle); break;
      default: rc = party_bundle_pq(&bob, 1, 3, 10, &bundle); break;
    }
    if (rc || sotto_session_new(&a) || sotto_session_new(&b) ||
        sotto_session_init_from_bundle_ex(a, &alice.id, &bundle, SOTTO_INIT_ALLOW_X3DH))
      die("session");
    for (int i = 0; i < 12; i++) {
      /* a, a, b, a, a, b...: prekey messages until b answers, a new
       * ratchet step each time the direction changes. */
      struct sotto_session *from = (i % 3 == 2) ? b : a, *to = from == a ? b : a;
      struct party *rcpt = to == b ? &bob : &alice;
      size_t len = lens[(size_t)(i + round) % (sizeof lens / sizeof lens[0])];
      memset(pt, 'a' + i, len);
      if (sotto_session_encrypt(from, buf, sizeof buf, &n, &type, pt, len)) die("encrypt");
      snprintf(desc, sizeof desc, "r%d-m%d-pt%zu", round, i, len);
      put(type == SOTTO_MSG_PREKEY ? "prekey_msg" : "signal_msg", desc, buf, n);
      if (i == 4 || i == 7) continue; /* leave skipped keys in the record */
      if (sotto_session_decrypt(to, &rcpt->id, &rcpt->store, type, buf, n, pt, sizeof pt, &pn)) die("decrypt");
      if (i % 3 == 0 || i == 11) {
        if (sotto_session_serialize(to, rec, sizeof rec, &rn)) die("serialize");
        snprintf(desc, sizeof desc, "r%d-after%d-%s", round, i, to == a ? "alice" : "bob");
        put("session_record", desc, rec, rn);
      }
    }
    /* A fresh record (no state) and a sender's record before any answer. */
    if (round == 0) {
      struct sotto_session *e, *f;
      if (sotto_session_new(&e) || sotto_session_serialize(e, rec, sizeof rec, &rn)) die("serialize");
      put("session_record", "empty", rec, rn);
      if (sotto_session_new(&f) || sotto_session_init_from_bundle_ex(f, &alice.id, &bundle, SOTTO_INIT_ALLOW_X3DH) ||
          sotto_session_serialize(f, rec, sizeof rec, &rn))
        die("serialize");
      put("session_record", "initiator-unanswered", rec, rn);
      sotto_session_free(e);
      sotto_session_free(f);
    }
    sotto_session_free(a);
    sotto_session_free(b);
  }
  /* Format 2 (SPQR, the default of version 4) after a longer conversation
   * in bursts of three: records whose braids hold objects in flight in
   * several states, whose chains hold more than one epoch and kept keys. */
  {
    struct sotto_session *a, *b;
    if (party_bundle_pq(&bob, 1, 4, 10, &bundle) || sotto_session_new(&a) || sotto_session_new(&b) ||
        sotto_session_init_from_bundle(a, &alice.id, &bundle))
      die("session");
    for (int i = 0; i < 96; i++) {
      struct sotto_session *from = (i / 3) % 2 ? b : a, *to = from == a ? b : a;
      struct party *rcpt = to == b ? &bob : &alice;
      /* Addresses (field 6) as sotto peers write them. */
      struct sotto_addresses ad, back;
      memset(&ad, 0, sizeof ad);
      ad.local.kind = ad.remote.kind = SOTTO_ADDRESS_NAME;
      ad.local.name = from == a ? "alice" : "bob";
      ad.remote.name = from == a ? "bob" : "alice";
      ad.local.device_id = ad.remote.device_id = 1;
      ad.require = 1;
      back = ad;
      back.local = ad.remote;
      back.remote = ad.local;
      memset(pt, 'k', 20);
      if (sotto_session_encrypt_addressed(from, &ad, buf, sizeof buf, &n, &type, pt, 20)) die("encrypt");
      if (i % 24 == 10) {
        snprintf(desc, sizeof desc, "spqr-addressed-m%d", i);
        put(type == SOTTO_MSG_PREKEY ? "prekey_msg" : "signal_msg", desc, buf, n);
      }
      if (i % 7 == 5) continue; /* lost: kept SPQR and Double Ratchet keys */
      if (sotto_session_decrypt_addressed(to, &rcpt->id, &rcpt->store, &back, type, buf, n, pt, sizeof pt, &pn,
                                          NULL))
        die("decrypt");
      if (i % 24 == 23) {
        if (sotto_session_serialize(to, rec, sizeof rec, &rn) || rec[3] != 2) die("serialize");
        snprintf(desc, sizeof desc, "spqr-after%d-%s", i, to == a ? "alice" : "bob");
        put("session_record", desc, rec, rn);
      }
    }
    sotto_session_free(a);
    sotto_session_free(b);
  }
}

/* ---- sender keys: skdm, sender_key_msg, sender_key_record ---------------- */

static struct sotto_sender_key *sk_new(void) {
  struct sotto_sender_key *r;
  if (sotto_sender_key_new(&r) != 0) die("sender_key_new");
  return r;
}

static size_t sk_dist(struct sotto_sender_key *s, uint8_t *d) {
  size_t n;
  if (sotto_sender_key_distribution(s, d, SOTTO_SKDM_MAX_LEN, &n) != 0) die("skdm");
  return n;
}

static size_t sk_enc(struct sotto_sender_key *s, uint8_t *out, size_t cap, size_t len) {
  static uint8_t pt[4096];
  size_t n;
  memset(pt, 'g', sizeof pt);
  if (len > sizeof pt || sotto_group_encrypt(s, out, cap, &n, pt, len) != 0) die("group_encrypt");
  return n;
}

static void put_skmsg(const char *desc, const uint8_t *d, size_t dn, const uint8_t *m, size_t mn) {
  static uint8_t buf[8192];
  if (dn > 255 || 1 + dn + mn > sizeof buf) die("skmsg frame");
  buf[0] = (uint8_t)dn;
  memcpy(buf + 1, d, dn);
  memcpy(buf + 1 + dn, m, mn);
  put("sender_key_msg", desc, buf, 1 + dn + mn);
}

static void put_skrec(const char *desc, const struct sotto_sender_key *r) {
  size_t n = sotto_sender_key_serialized_size(r), got;
  uint8_t *b = malloc(n ? n : 1);
  if (b == NULL || sotto_sender_key_serialize(r, b, n, &got) != 0) die("sk serialize");
  put("sender_key_record", desc, b, got);
  free(b);
}

static void gen_sender_keys(void) {
  static const size_t lens[] = {0, 1, 15, 16, 17, 200, 1000, 4000};
  struct sotto_sender_key *s = sk_new(), *m = sk_new(), *e = sk_new();
  uint8_t d0[SOTTO_SKDM_MAX_LEN], d[SOTTO_SKDM_MAX_LEN + 8], msg[8192], pt[8192], ck[32], pub[32], priv[32];
  struct sotto__wr w;
  char desc[64];
  size_t d0n, dn, mn, pn, i;

  d0n = sk_dist(s, d0);
  put("skdm", "iter0", d0, d0n);
  put_skrec("empty", e);
  put_skrec("own-fresh", s);
  if (sotto_sender_key_process(m, d0, d0n) != 0) die("process");
  put_skrec("member-fresh", m);
  for (i = 0; i < 24; i++) {
    size_t len = lens[i % (sizeof lens / sizeof lens[0])];
    mn = sk_enc(s, msg, sizeof msg, len);
    snprintf(desc, sizeof desc, "it%zu-pt%zu", i, len);
    if (i % 2 == 0) put_skmsg(desc, d0, d0n, msg, mn);
    if (i % 3 == 0 && sotto_group_decrypt(m, pt, sizeof pt, &pn, msg, mn) != 0) die("group_decrypt");
    if (i % 6 == 5) {
      dn = sk_dist(s, d);
      snprintf(desc, sizeof desc, "iter%zu", i + 1);
      put("skdm", desc, d, dn);
      snprintf(desc, sizeof desc, "own-iter%zu", i + 1);
      put_skrec(desc, s);
      snprintf(desc, sizeof desc, "member-iter%zu", i + 1);
      put_skrec(desc, m);
    }
  }
  /* A distribution message from a later iteration with an older message. */
  dn = sk_dist(s, d);
  mn = sk_enc(s, msg, sizeof msg, 33);
  put_skmsg("late-skdm", d, dn, msg, mn);
  /* Several chains in one record, own and member. */
  for (i = 0; i < 5; i++) {
    struct sotto_sender_key *x = sk_new();
    dn = sk_dist(x, d);
    if (sotto_sender_key_process(m, d, dn) != 0 || sotto_sender_key_process(s, d, dn) != 0) die("process");
    mn = sk_enc(x, msg, sizeof msg, 10 + i);
    snprintf(desc, sizeof desc, "chain%zu", i);
    put_skmsg(desc, d, dn, msg, mn);
    sotto_sender_key_free(x);
  }
  put_skrec("member-6-states", m);
  put_skrec("own-and-members", s);
  /* Hand-built extremes: chain id 0 and the last iteration, fields out of
   * order, an unknown field, legacy and future versions. */
  memset(ck, 0x5A, sizeof ck);
  if (sotto_keypair_generate(pub, priv) != 0) die("keypair");
  for (int v = 0; v < 6; v++) {
    sotto__wr_init(&w, d, sizeof d);
    sotto__wr_u8(&w, v == 4 ? 0x23 : v == 5 ? 0x44 : 0x33);
    if (v == 1) {
      sotto__pb_pubkey(&w, 4, pub);
      sotto__pb_bytes(&w, 3, ck, 32);
      sotto__pb_varint(&w, 2, 1);
      sotto__pb_varint(&w, 1, 0x7FFFFFFF);
    } else {
      sotto__pb_varint(&w, 1, v == 2 ? 0xFFFFFFFFu : 0);
      sotto__pb_varint(&w, 2, v == 0 ? 0xFFFFFFFEu : v == 2 ? 0 : 7);
      sotto__pb_bytes(&w, 3, ck, v == 3 ? 31 : 32);
      sotto__pb_pubkey(&w, 4, pub);
      if (v == 3) sotto__pb_varint(&w, 9, 1);
    }
    snprintf(desc, sizeof desc, "hand%d", v);
    put("skdm", desc, d, w.len);
  }
  sotto_sender_key_free(s);
  sotto_sender_key_free(m);
  sotto_sender_key_free(e);
}

/* ---- the server protocol --------------------------------------------------- */

static uint8_t big[SOTTO_SRV_MAX_FRAME + 4096];

/* Usernames at and around every rule: min and max length, one past them,
 * each allowed character class and disallowed bytes. */
static const char *const users[] = {"abc",  "alice", "bob.smith_99", "abcdefghijklmnopqrstuvwxyz012345",
                                    "ab",   "abcdefghijklmnopqrstuvwxyz0123456", "Alice", "al ice",
                                    "a-b",  "...",   "___",  ""};
#define N_USERS (sizeof users / sizeof users[0])

static void fill(uint8_t *p, size_t n, uint8_t seed) {
  size_t i;
  for (i = 0; i < n; i++) p[i] = (uint8_t)(seed + i * 7);
}

static void gen_hello(void) {
  static const uint16_t versions[] = {0, 1, 2, 0x7fff, 0xffff};
  uint8_t b[8];
  char desc[32];
  for (size_t i = 0; i < 5; i++) {
    b[0] = (uint8_t)(versions[i] >> 8);
    b[1] = (uint8_t)versions[i];
    b[2] = 0xAA;
    snprintf(desc, sizeof desc, "v%u", versions[i]);
    put("server_hello", desc, b, 2);
    snprintf(desc, sizeof desc, "v%u-ext", versions[i]);
    put("server_hello", desc, b, 3);
  }
}

static void gen_register(void) {
  static const size_t idl[] = {1, 33, SOTTO_SRV_MAX_IDENTITY, SOTTO_SRV_MAX_IDENTITY + 1, 0};
  uint8_t b[1024];
  struct sotto__wr w;
  char desc[64];
  for (size_t u = 0; u < N_USERS; u++) {
    size_t il = idl[u % 5];
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_str8(&w, users[u], strlen(users[u]));
    fill(big, il, (uint8_t)u);
    if (il) big[0] = 0x05;
    sotto__srv_put_blob16(&w, big, il);
    if (w.err) die("register");
    snprintf(desc, sizeof desc, "u%zu-id%zu", u, il);
    put("server_register", desc, b, w.len);
  }
}

/* Key transparency: each request, each answer with 0, 1 and 3 cosignatures
 * or entries, and the limits (too many, too long, one byte short). */
static void gen_kt(void) {
  uint8_t b[4096], head[SOTTO_SRV_KT_HEAD_LEN], cos[3 * SOTTO_SRV_KT_COSIG_LEN], pk[SOTTO_SRV_KT_PK_LEN];
  struct sotto__wr w;
  char desc[64];
  size_t i, k;
  fill(head, sizeof head, 1);
  fill(cos, sizeof cos, 2);
  fill(pk, sizeof pk, 3);
  for (i = 0; i < 4; i++) {
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_search_req(&w, users[i % N_USERS]);
    snprintf(desc, sizeof desc, "search%zu", i);
    put("server_kt", desc, b, w.len);
  }
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_u64_req(&w, 42);
  put("server_kt", "consistency", b, w.len);
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_kt_updates_req(&w, 0, 1);
  put("server_kt", "updates-req", b, w.len);
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_kt_updates_req(&w, 9, SOTTO_SRV_KT_MAX_UPDATES + 1);
  put("server_kt", "updates-req-many", b, w.len);
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_kt_cosign_req(&w, pk, head, cos);
  put("server_kt", "cosign", b, w.len);
  put("server_kt", "cosign-short", b, w.len - 1);
  for (k = 0; k < 3; k++) {
    static const char *const names[] = {"w1", "witness.example-org_2", "z"};
    struct sotto_srv_kt_config kc;
    memset(&kc, 0, sizeof kc);
    kc.sig_pk = head;
    kc.vrf_pk = head + 32;
    kc.n = k;
    for (i = 0; i < k; i++) {
      kc.w[i].name.p = (const uint8_t *)names[i];
      kc.w[i].name.len = strlen(names[i]);
      kc.w[i].pk = pk;
    }
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_config(&w, &kc);
    if (w.err) die("kt config");
    snprintf(desc, sizeof desc, "config%zu", k);
    put("server_kt", desc, b, w.len);
  }
  for (k = 0; k < 4; k += 3) {
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_head(&w, head, cos, k ? 3 : 0);
    snprintf(desc, sizeof desc, "head%zu", k);
    put("server_kt", desc, b, w.len);
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_proof(&w, head, cos, k * 50);
    snprintf(desc, sizeof desc, "proof%zu", k);
    put("server_kt", desc, b, w.len);
    sotto__wr_init(&w, b, sizeof b);
    sotto__wr_u8(&w, 0);
    sotto__wr_u8(&w, (uint8_t)k);
    for (i = 0; i < k; i++) sotto__srv_put_kt_entry(&w, head, cos, 12 + 64 * i);
    if (w.err) die("kt");
    snprintf(desc, sizeof desc, "updates%zu", k);
    put("server_kt", desc, b, w.len);
  }
}

/* Signed device lists (sotto/devlist.h): 1..16 devices, names from empty to
 * the limit, multi-byte UTF-8; device 1's key is the account key. */
static void gen_devlist(void) {
  static const unsigned ns[] = {1, 2, 3, 4, 5, 6, 8, 11, 15, SOTTO_DEVLIST_MAX_DEVICES};
  uint8_t acc_pub[32], acc_priv[32], dpub[32], dpriv[32], b[SOTTO_DEVLIST_MAX_LEN];
  struct sotto_devlist l;
  size_t i, k, len;
  char desc[32];
  if (sotto_keypair_generate(acc_pub, acc_priv) != 0) die("devlist key");
  for (i = 0; i < sizeof ns / sizeof ns[0]; i++) {
    memset(&l, 0, sizeof l);
    snprintf(l.username, sizeof l.username, "%s", users[i % 4]); /* the valid ones */
    memcpy(l.account_key, acc_pub, 32);
    l.version = (uint32_t)(i + 1);
    l.n = ns[i];
    for (k = 0; k < ns[i]; k++) {
      struct sotto_devlist_entry *e = &l.dev[k];
      e->device_id = (uint32_t)(k == 0 ? 1 : k * 3 + i);
      if (k == 0) {
        memcpy(dpub, acc_pub, 32);
        memcpy(dpriv, acc_priv, 32);
      } else if (sotto_keypair_generate(dpub, dpriv) != 0) {
        die("devlist key");
      }
      memcpy(e->device_key, dpub, 32);
      if (k % 3 == 1) memset(e->name, 'n', SOTTO_DEVLIST_MAX_NAME);
      else if (k % 3 == 2) snprintf(e->name, sizeof e->name, "laptop \xc3\xa9 %zu", k);
      e->added_at_ms = 1764000000000ull + k * 1000;
      if (sotto_devlist_member_sign(e->member_sig, dpriv, l.username, acc_pub, e->device_id) != 0)
        die("devlist member");
    }
    if (sotto_devlist_sign(&l, acc_priv, b, sizeof b, &len) != 0) die("devlist sign");
    snprintf(desc, sizeof desc, "n%u", ns[i]);
    put("devlist", desc, b, len);
    {
      uint8_t f[2 + SOTTO_DEVLIST_MAX_LEN];
      f[0] = (uint8_t)(len >> 8);
      f[1] = (uint8_t)len;
      memcpy(f + 2, b, len);
      put("server_devlist", desc, f, len + 2);
    }
  }
}

/* SEND_MULTI requests (1, 2, 5 and 16 envelopes, bodies of 1 and 300
 * bytes, an id 0, a repeated id, 17 envelopes) and answers. */
static void gen_send_multi(void) {
  static const unsigned ns[] = {1, 2, 5, SOTTO_SRV_MAX_DEVICES};
  static struct sotto_srv_send_multi m;
  uint8_t b[16 * 400 + 64], body[300];
  uint64_t ids[SOTTO_SRV_MAX_DEVICES];
  struct sotto__wr w;
  char desc[32];
  size_t i, k;
  fill(body, sizeof body, 9);
  for (i = 0; i < sizeof ns / sizeof ns[0]; i++) {
    memset(&m, 0, sizeof m);
    m.username.p = (const uint8_t *)users[i % 4];
    m.username.len = strlen(users[i % 4]);
    m.n = (uint8_t)ns[i];
    for (k = 0; k < ns[i]; k++) {
      m.e[k].device_id = (uint32_t)(k * 2 + 1);
      m.e[k].type = (uint8_t)(k % 3 + 1);
      m.e[k].body = body;
      m.e[k].body_len = k % 2 ? 300 : 1;
    }
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_send_multi(&w, &m);
    if (w.err) die("send_multi");
    snprintf(desc, sizeof desc, "req%u", ns[i]);
    put("server_send_multi", desc, b, w.len);
    for (k = 0; k < ns[i]; k++) ids[k] = 1000 + k;
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_sent_multi(&w, 1764000000000ull, ids, ns[i]);
    snprintf(desc, sizeof desc, "ok%u", ns[i]);
    put("server_send_multi", desc, b, w.len);
  }
  m.e[1].device_id = m.e[0].device_id; /* a repeated id */
  m.n = 2;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_send_multi(&w, &m);
  put("server_send_multi", "repeated", b, w.len);
  m.e[0].device_id = 0;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_send_multi(&w, &m);
  put("server_send_multi", "id0", b, w.len);
}

static void gen_recover(void) {
  static const size_t idl[] = {1, 33, SOTTO_SRV_MAX_IDENTITY, SOTTO_SRV_MAX_IDENTITY + 1, 0};
  uint8_t b[1024], code[SOTTO_SRV_RECOVERY_LEN];
  struct sotto__wr w;
  char desc[64];
  for (size_t u = 0; u < N_USERS; u++) {
    size_t il = idl[u % 5];
    fill(code, sizeof code, (uint8_t)(u * 7));
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_str8(&w, users[u], strlen(users[u]));
    sotto__wr_bytes(&w, code, sizeof code);
    fill(big, il, (uint8_t)u);
    if (il) big[0] = 0x05;
    sotto__srv_put_blob16(&w, big, il);
    if (w.err) die("recover");
    snprintf(desc, sizeof desc, "u%zu-id%zu", u, il);
    put("server_recover", desc, b, w.len);
    snprintf(desc, sizeof desc, "code%zu", u);
    put("server_recover", desc, code, sizeof code);
  }
}

/* The backup file (client/core/backup.h): headers (valid, and each field at
 * and past its bounds, with a fake ciphertext), plaintexts of record lists,
 * and recovery key texts (the format is written out here on purpose: the
 * generator does not link the client core). */
static void bk_header(uint8_t *b, uint8_t version, uint8_t kind, uint32_t ops, uint32_t kib) {
  memcpy(b, "SOTTOBAK", 8);
  b[8] = version;
  b[9] = kind;
  b[10] = b[11] = 0;
  for (int i = 0; i < 4; i++) {
    b[12 + i] = (uint8_t)(ops >> (24 - 8 * i));
    b[16 + i] = (uint8_t)(kib >> (24 - 8 * i));
  }
  fill(b + 20, 16 + 24, 0x33);
}

static void gen_backup(void) {
  static const uint32_t ops[] = {1, 3, 16, 17, 0};
  static const uint32_t kib[] = {8192, 262144, 1048576, 1048577, 8191};
  static const char *const names[] = {"account", "contact/bob", "session/alice", "group/0123456789abcdef", "x"};
  static const size_t vlen[] = {0, 1, 100, 300, 40};
  uint8_t b[70000];
  char desc[64];
  for (size_t i = 0; i < 5; i++) {
    for (uint8_t kind = 1; kind <= 3; kind++) {
      bk_header(b, 1, kind, ops[i], kib[i]);
      fill(b + 60, 64, (uint8_t)i);
      snprintf(desc, sizeof desc, "hdr-k%u-ops%u-kib%u", kind, ops[i], kib[i]);
      put("backup_file", desc, b, 60 + 16 + (i % 3) * 24);
    }
  }
  bk_header(b, 2, 1, 3, 262144);
  put("backup_file", "hdr-v2", b, 60 + 16);
  for (size_t n = 0; n <= 5; n++) {
    struct sotto__wr w;
    sotto__wr_init(&w, b, sizeof b);
    sotto__wr_u64be(&w, 1700000000000ull + n);
    sotto__srv_put_blob16(&w, users[n % N_USERS], strlen(users[n % N_USERS]));
    sotto__wr_u32be(&w, (uint32_t)n);
    for (size_t r = 0; r < n; r++) {
      size_t vl = vlen[(r + n) % 5];
      sotto__srv_put_blob16(&w, names[r], strlen(names[r]));
      sotto__wr_u32be(&w, (uint32_t)vl);
      fill(big, vl, (uint8_t)(r + n));
      sotto__wr_bytes(&w, big, vl);
    }
    if (w.err) die("backup records");
    snprintf(desc, sizeof desc, "records%zu", n);
    put("backup_file", desc, b, w.len);
  }
  for (unsigned k = 0; k < 4; k++) {
    static const char hex[] = "0123456789abcdef";
    uint8_t all[32], h[16];
    char text[80];
    size_t o = 0;
    fill(all, 30, (uint8_t)(k * 11));
    crypto_generichash(h, sizeof h, all, 30, (const uint8_t *)"sotto-recovery-key-check", 24);
    memcpy(all + 30, h, 2);
    if (k == 3) all[31] ^= 1; /* a typo */
    for (size_t i = 0; i < sizeof all; i++) {
      if (i > 0 && i % 2 == 0) text[o++] = k == 2 ? ' ' : '-';
      text[o++] = k == 1 ? (char)(hex[all[i] >> 4] & ~0x20 & 0x7f) : hex[all[i] >> 4];
      text[o++] = hex[all[i] & 15];
    }
    snprintf(desc, sizeof desc, "rk%u", k);
    put("backup_file", desc, (const uint8_t *)text, o);
  }
}

static void gen_auth(void) {
  static const uint32_t devs[] = {1, 2, 0, 16, 0xffffffffu};
  uint8_t b[128], secret[SOTTO_SRV_SECRET_LEN];
  struct sotto__wr w;
  char desc[64];
  for (size_t u = 0; u < N_USERS; u++) {
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_str8(&w, users[u], strlen(users[u]));
    sotto__wr_u32be(&w, devs[u % 5]);
    fill(secret, sizeof secret, (uint8_t)(u * 3));
    sotto__wr_bytes(&w, secret, sizeof secret);
    snprintf(desc, sizeof desc, "u%zu-dev%u", u, devs[u % 5]);
    put("server_auth", desc, b, w.len);
  }
}

static void gen_targets(void) {
  static const uint32_t devs[] = {1, 0, 7, 16, 17, 0xffffffffu};
  uint8_t b[64];
  struct sotto__wr w;
  char desc[64];
  for (size_t u = 0; u < N_USERS; u++) {
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_str8(&w, users[u], strlen(users[u]));
    snprintf(desc, sizeof desc, "devices-u%zu", u);
    put("server_bundle_req", desc, b, w.len);
    sotto__wr_u32be(&w, devs[u % 6]);
    snprintf(desc, sizeof desc, "bundle-u%zu-dev%u", u, devs[u % 6]);
    put("server_bundle_req", desc, b, w.len);
  }
}

static void gen_ack(void) {
  static const uint64_t ids[] = {0, 1, 255, 0x100000000ull, 0x7fffffffffffffffull, 0xffffffffffffffffull};
  uint8_t b[16];
  char desc[32];
  for (size_t i = 0; i < 6; i++) {
    for (int k = 0; k < 8; k++) b[k] = (uint8_t)(ids[i] >> (56 - 8 * k));
    snprintf(desc, sizeof desc, "id%zu", i);
    put("server_ack", desc, b, 8);
  }
  memset(b, 0, sizeof b);
  put("server_ack", "empty", b, 0);
  for (size_t n = 1; n <= 9; n++) {
    snprintf(desc, sizeof desc, "len%zu", n);
    fill(b, n, (uint8_t)n);
    put("server_ack", desc, b, n);
  }
}

/* SEND payload: a body of body_len bytes whose declared length is decl. */
static size_t enc_send(uint8_t *out, size_t cap, const char *user, uint32_t dev, uint8_t type, size_t body_len,
                       uint32_t decl) {
  struct sotto__wr w;
  sotto__wr_init(&w, out, cap);
  sotto__srv_put_str8(&w, user, strlen(user));
  sotto__wr_u32be(&w, dev);
  sotto__wr_u8(&w, type);
  sotto__wr_u32be(&w, decl);
  fill(big, body_len, type);
  sotto__wr_bytes(&w, big, body_len);
  if (w.err) die("send");
  return w.len;
}

static void gen_send(void) {
  static const size_t bodies[] = {1, 2, 16, 100, 1000, 65535, 65536};
  static uint8_t b[SOTTO_SRV_MAX_FRAME];
  char desc[64];
  size_t n;
  for (size_t u = 0; u < N_USERS; u++) {
    size_t bl = bodies[u % 7];
    uint8_t type = (uint8_t)(u % 4); /* includes the protocol types 1..3 and 0 */
    n = enc_send(b, sizeof b, users[u], (uint32_t)u, type, bl, (uint32_t)bl);
    snprintf(desc, sizeof desc, "u%zu-t%u-b%zu", u, type, bl);
    put("server_send", desc, b, n);
  }
  n = enc_send(b, sizeof b, "alice", 1, 1, 0, 0);
  put("server_send", "zero-body", b, n);
  n = enc_send(b, sizeof b, "alice", 1, 1, 65537, 65537);
  put("server_send", "over-cap", b, n);
  n = enc_send(b, sizeof b, "alice", 1, 1, 10, 0xffffffffu);
  put("server_send", "huge-decl", b, n);
  n = enc_send(b, sizeof b, "alice", 1, 1, 10, 11);
  put("server_send", "short-body", b, n);
}

/* A KEYS_UPLOAD payload: flags, n_ec / n_kem keys, blob length bl. */
static size_t enc_keys(uint8_t *out, size_t cap, uint8_t flags, uint16_t n_ec, uint16_t n_kem, size_t bl) {
  static struct sotto_srv_keys k;
  struct sotto__wr w;
  uint16_t i;
  memset(&k, 0, sizeof k);
  fill(big, bl ? bl : 1, 0x42);
  k.flags = flags;
  k.signed_prekey = (struct sotto_srv_blob_id){1, big, bl};
  k.last_resort = (struct sotto_srv_blob_id){0xffffffffu, big, bl};
  k.n_ec = n_ec;
  k.n_kem = n_kem;
  for (i = 0; i < SOTTO_SRV_MAX_KEYS_PER_UPLOAD; i++) {
    k.ec[i] = (struct sotto_srv_blob_id){i + 100u, big, bl < 33 ? bl : 33};
    k.kem[i] = (struct sotto_srv_blob_id){i + 1000u, big, bl};
  }
  sotto__wr_init(&w, out, cap);
  sotto__srv_put_keys(&w, &k);
  if (w.err) die("keys");
  return w.len;
}

static void gen_keys(void) {
  static uint8_t b[SOTTO_SRV_MAX_FRAME * 2];
  static const struct {
    uint8_t flags;
    uint16_t ec, kem;
    size_t bl;
  } v[] = {{0, 0, 0, 1},       {1, 0, 0, 96},   {2, 0, 0, 1664},  {3, 1, 1, 1664}, {3, 10, 10, 1664},
           {1, 100, 0, 96},    {0, 0, 100, 1664}, {3, 100, 100, 100}, {4, 0, 0, 1},   {0xff, 1, 1, 33},
           {1, 0, 0, 2048},    {1, 0, 0, 2049}, {0, 101, 0, 33},  {0, 0, 101, 33}, {3, 2, 2, 0}};
  char desc[64];
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    size_t n = enc_keys(b, sizeof b, v[i].flags, v[i].ec, v[i].kem, v[i].bl);
    snprintf(desc, sizeof desc, "f%u-ec%u-kem%u-bl%zu", v[i].flags, v[i].ec, v[i].kem, v[i].bl);
    put("server_keys", desc, b, n);
  }
}

/* MSG push payload. */
static size_t enc_env(uint8_t *out, size_t cap, uint64_t id, const char *sender, uint8_t type, size_t body_len,
                      uint32_t decl) {
  struct sotto__wr w;
  sotto__wr_init(&w, out, cap);
  sotto__wr_u64be(&w, id);
  sotto__srv_put_str8(&w, sender, strlen(sender));
  sotto__wr_u32be(&w, (uint32_t)(id % 17));
  sotto__wr_u32be(&w, 1);
  sotto__wr_u8(&w, type);
  sotto__wr_u64be(&w, 1700000000000ull + id);
  sotto__wr_u32be(&w, decl);
  fill(big, body_len, (uint8_t)id);
  sotto__wr_bytes(&w, big, body_len);
  if (w.err) die("env");
  return w.len;
}

/* BUNDLE answer payload: identity length il, EC one-time key or not, KEM kind. */
static size_t enc_bundle(uint8_t *out, size_t cap, size_t il, int has_ec, uint8_t kem_kind, size_t bl) {
  struct sotto_srv_bundle m;
  struct sotto__wr w;
  fill(big, 4096, 0x33);
  memset(&m, 0, sizeof m);
  m.identity = (struct sotto_srv_str){big, il};
  m.signed_prekey = (struct sotto_srv_blob_id){1, big, bl};
  m.has_ec = has_ec;
  m.ec = (struct sotto_srv_blob_id){2, big, 33};
  m.kem_kind = kem_kind;
  m.kem = (struct sotto_srv_blob_id){3, big, bl};
  sotto__wr_init(&w, out, cap);
  sotto__srv_put_bundle(&w, &m);
  if (w.err) die("bundle");
  return w.len;
}

static size_t enc_err(uint8_t *out, size_t cap, uint16_t code, size_t msg_len) {
  struct sotto__wr w;
  sotto__wr_init(&w, out, cap);
  sotto__wr_u8(&w, (uint8_t)(code >> 8));
  sotto__wr_u8(&w, (uint8_t)code);
  fill(big, msg_len, 'a');
  sotto__srv_put_str8(&w, big, msg_len);
  if (w.err) die("err");
  return w.len;
}

static size_t enc_devices(uint8_t *out, size_t cap, uint16_t n) {
  struct sotto__wr w;
  sotto__wr_init(&w, out, cap);
  sotto__wr_u8(&w, (uint8_t)(n >> 8));
  sotto__wr_u8(&w, (uint8_t)n);
  for (uint16_t i = 0; i < n; i++) sotto__wr_u32be(&w, i + 1u);
  if (w.err) die("devices");
  return w.len;
}

static void gen_push(void) {
  static uint8_t b[SOTTO_SRV_MAX_FRAME + 64];
  static const size_t bodies[] = {0, 1, 100, 65536, SOTTO_SRV_MAX_MESSAGE, SOTTO_SRV_MAX_MESSAGE + 1};
  char desc[64];
  size_t n;
  for (size_t u = 0; u < N_USERS; u++) {
    size_t bl = bodies[u % 6];
    n = enc_env(b, sizeof b, u * 1000003u, users[u], (uint8_t)(u % 4), bl, (uint32_t)bl);
    snprintf(desc, sizeof desc, "env-u%zu-b%zu", u, bl);
    put("server_push", desc, b, n);
  }
  n = enc_env(b, sizeof b, 5, "alice", 1, 10, 0xffffffffu);
  put("server_push", "env-huge-decl", b, n);
  for (size_t il = 0; il < 4; il++) {
    static const size_t ils[] = {1, 33, SOTTO_SRV_MAX_IDENTITY, SOTTO_SRV_MAX_IDENTITY + 1};
    static const size_t bls[] = {1, 32, 1568, SOTTO_SRV_MAX_KEY_BLOB};
    for (uint8_t kk = 0; kk < 4; kk++) {
      n = enc_bundle(b, sizeof b, ils[il], (int)(kk & 1), kk, bls[il]);
      snprintf(desc, sizeof desc, "bundle-id%zu-ec%d-kem%u", ils[il], kk & 1, kk);
      put("server_push", desc, b, n);
    }
  }
  for (uint16_t c = 0; c < 21; c += 4) {
    n = enc_err(b, sizeof b, c, (size_t)c * 12);
    snprintf(desc, sizeof desc, "err%u", c);
    put("server_push", desc, b, n);
  }
  for (uint16_t d = 0; d <= 17; d += 4) {
    n = enc_devices(b, sizeof b, d);
    snprintf(desc, sizeof desc, "devices%u", d);
    put("server_push", desc, b, n);
  }
}

/* ---- frame streams: server_frame (requests) and client_net (answers) ---- */

struct stream {
  uint8_t *p;
  size_t len, cap;
};

static void st_frame(struct stream *s, uint8_t type, uint32_t req_id, const uint8_t *payload, size_t len) {
  uint8_t hdr[9];
  if (s->len + 9 + len > s->cap) die("stream");
  sotto__srv_frame_hdr(hdr, type, req_id, len);
  memcpy(s->p + s->len, hdr, 9);
  if (len) memcpy(s->p + s->len + 9, payload, len);
  s->len += 9 + len;
}

static void gen_server_frame(void) {
  static uint8_t sp[4 * SOTTO_SRV_MAX_FRAME], b[SOTTO_SRV_MAX_FRAME];
  struct stream s = {sp, 0, sizeof sp};
  struct sotto__wr w;
  char desc[64];
  size_t n;
  uint8_t secret[SOTTO_SRV_SECRET_LEN];

  fill(secret, sizeof secret, 9);
  for (int v = 0; v < 12; v++) {
    s.len = 0;
    b[0] = 0;
    b[1] = 1;
    st_frame(&s, SOTTO_SRV_HELLO, 1, b, 2);
    if (v % 3 == 1) {
      sotto__wr_init(&w, b, sizeof b);
      sotto__srv_put_str8(&w, users[v], strlen(users[v]));
      fill(big, 33, 5);
      sotto__srv_put_blob16(&w, big, 33);
      st_frame(&s, SOTTO_SRV_REGISTER, 2, b, w.len);
    }
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_str8(&w, users[v], strlen(users[v]));
    sotto__wr_u32be(&w, (uint32_t)v);
    sotto__wr_bytes(&w, secret, sizeof secret);
    st_frame(&s, SOTTO_SRV_AUTH, 3, b, w.len);
    /* After AUTH the larger cap applies: every request type. */
    n = enc_keys(b, sizeof b, (uint8_t)(v & 3), (uint16_t)(v * 9), (uint16_t)(v % 3 ? 5 : 0), v % 2 ? 1664 : 33);
    st_frame(&s, SOTTO_SRV_KEYS_UPLOAD, 4, b, n);
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_str8(&w, "bob", 3);
    st_frame(&s, SOTTO_SRV_DEVICES, 5, b, w.len);
    sotto__wr_u32be(&w, 1);
    st_frame(&s, SOTTO_SRV_BUNDLE, 6, b, w.len);
    n = enc_send(b, sizeof b, "bob", 1, (uint8_t)(v % 4), (size_t)(v + 1) * 997, (uint32_t)(v + 1) * 997);
    st_frame(&s, SOTTO_SRV_SEND, 7, b, n);
    for (int k = 0; k < 8; k++) b[k] = (uint8_t)(v + k);
    st_frame(&s, SOTTO_SRV_ACK, 8, b, 8);
    st_frame(&s, SOTTO_SRV_PING, 9, NULL, 0);
    st_frame(&s, SOTTO_SRV_ADD_DEVICE, 10, NULL, 0);
    /* Device removal (u32 id, 0 is malformed), secret rotation (empty),
     * the device epoch (u64, above INT64_MAX is malformed). */
    sotto__wr_init(&w, b, sizeof b);
    sotto__wr_u32be(&w, (uint32_t)(v % 4));
    st_frame(&s, SOTTO_SRV_DEVICE_REMOVE, 15, b, w.len);
    st_frame(&s, SOTTO_SRV_ROTATE_SECRET, 16, NULL, 0);
    sotto__wr_init(&w, b, sizeof b);
    sotto__wr_u64be(&w, v == 11 ? UINT64_MAX : (uint64_t)v * 1000003u);
    st_frame(&s, SOTTO_SRV_EPOCH, 17, b, w.len);
    /* Server-to-client types and an unknown one, as a client might send. */
    n = enc_err(b, sizeof b, 2, 5);
    st_frame(&s, (uint8_t)(v % 2 ? SOTTO_SRV_ERR : SOTTO_SRV_CLOSE), 11, b, n);
    n = enc_env(b, sizeof b, 1, "alice", 1, 10, 10);
    st_frame(&s, SOTTO_SRV_MSG, 12, b, n);
    n = enc_bundle(b, sizeof b, 33, 1, 1, 32);
    st_frame(&s, SOTTO_SRV_OK, 13, b, n);
    st_frame(&s, (uint8_t)(0x40 + v), 14, b, 3);
    snprintf(desc, sizeof desc, "session%d", v);
    put("server_frame", desc, s.p, s.len);
  }
  /* Unauthenticated cap: the largest frame allowed before AUTH and one more. */
  for (int v = 0; v < 2; v++) {
    s.len = 0;
    fill(b, SOTTO_SRV_MAX_FRAME_UNAUTH, 1);
    st_frame(&s, SOTTO_SRV_REGISTER, 1, b, SOTTO_SRV_MAX_FRAME_UNAUTH - SOTTO_SRV_BODY_HDR + v);
    put("server_frame", v ? "unauth-over" : "unauth-max", s.p, s.len);
  }
  /* Bare and short length prefixes. */
  {
    static const uint8_t shorts[][4] = {{0, 0, 0, 0}, {0, 0, 0, 4}, {0, 0, 0, 5}, {0xff, 0xff, 0xff, 0xff}, {0, 4, 0, 0}};
    for (size_t i = 0; i < 5; i++) {
      uint8_t f[16];
      memcpy(f, shorts[i], 4);
      memset(f + 4, 0x01, sizeof f - 4);
      snprintf(desc, sizeof desc, "prefix%zu", i);
      put("server_frame", desc, f, sizeof f);
    }
  }
}

/* fuzz_client_net reads one control byte (feeding step, drop mode, message
 * limit) before the stream. */
static void put_client(const char *desc, uint8_t ctrl, const uint8_t *p, size_t n) {
  static uint8_t b[4 * SOTTO_SRV_MAX_FRAME + 1];
  if (n + 1 > sizeof b) die("client stream");
  b[0] = ctrl;
  memcpy(b + 1, p, n);
  put("client_net", desc, b, n + 1);
}

/* One frame of every kind the client reads; v picks the variant. */
#define CLIENT_KINDS 14
static void client_frame(struct stream *s, int kind, int v) {
  static uint8_t b[SOTTO_SRV_MAX_FRAME];
  struct sotto__wr w;
  size_t n;
  sotto__wr_init(&w, b, sizeof b);
  switch (kind) {
    case 0: /* HELLO answer: version, max frame, max message */
      sotto__wr_u8(&w, 0);
      sotto__wr_u8(&w, (uint8_t)(v == 3 ? 2 : 1));
      sotto__wr_u32be(&w, SOTTO_SRV_MAX_FRAME);
      sotto__wr_u32be(&w, v == 5 ? 0xffffffffu : 65536u);
      st_frame(s, SOTTO_SRV_OK, 1, b, w.len);
      break;
    case 1: /* REGISTER / ADD_DEVICE answer: device id and secret */
      sotto__wr_u32be(&w, (uint32_t)v + 1);
      fill(big, SOTTO_SRV_SECRET_LEN, (uint8_t)v);
      sotto__wr_bytes(&w, big, SOTTO_SRV_SECRET_LEN);
      st_frame(s, SOTTO_SRV_OK, 2, b, w.len);
      break;
    case 2: /* AUTH / KEYS_UPLOAD answer: key counts */
      sotto__wr_u32be(&w, (uint32_t)v * 10);
      sotto__wr_u32be(&w, (uint32_t)v);
      st_frame(s, SOTTO_SRV_OK, 3, b, w.len);
      break;
    case 3:
      n = enc_devices(b, sizeof b, (uint16_t)(v + 1));
      st_frame(s, SOTTO_SRV_OK, 4, b, n);
      break;
    case 4:
      n = enc_bundle(b, sizeof b, v == 7 ? SOTTO_SRV_MAX_IDENTITY : 33, v & 1, (uint8_t)(v % 3),
                     v == 8 ? SOTTO_SRV_MAX_KEY_BLOB : 1568);
      st_frame(s, SOTTO_SRV_OK, 5, b, n);
      break;
    case 5: /* SEND answer: server id and timestamp */
      sotto__wr_u64be(&w, (uint64_t)v << 40);
      sotto__wr_u64be(&w, 1700000000000ull);
      st_frame(s, SOTTO_SRV_OK, 6, b, w.len);
      break;
    case 6: /* ACK / PING answer */
      st_frame(s, SOTTO_SRV_OK, 7, NULL, 0);
      break;
    case 7:
      n = enc_err(b, sizeof b, (uint16_t)(v * 2), v == 9 ? 255 : 20);
      st_frame(s, SOTTO_SRV_ERR, 8, b, n);
      break;
    case 8: /* a good envelope */
      n = enc_env(b, sizeof b, (uint64_t)v + 100, "alice", (uint8_t)(v % 4), (size_t)v * 300 + 1,
                  (uint32_t)v * 300 + 1);
      st_frame(s, SOTTO_SRV_MSG, 0, b, n);
      break;
    case 9: /* an envelope from each (also invalid) sender, oversize for v 4 */
      n = enc_env(b, sizeof b, (uint64_t)v + 200, users[v % N_USERS], 1, v == 4 ? SOTTO_SRV_MAX_MESSAGE + 1 : 16,
                  v == 4 ? SOTTO_SRV_MAX_MESSAGE + 1 : 16);
      st_frame(s, SOTTO_SRV_MSG, 0, b, n);
      break;
    case 10:
      st_frame(s, SOTTO_SRV_DRAINED, 0, b, (size_t)(v == 6));
      break;
    case 11:
      sotto__wr_u32be(&w, (uint32_t)v);
      sotto__wr_u32be(&w, 3);
      st_frame(s, SOTTO_SRV_KEYS_LOW_PUSH, 0, b, w.len - (v == 10));
      break;
    case 12: /* unknown types */
      st_frame(s, (uint8_t)(0xA0 + v), 0, b, 4);
      break;
    default:
      n = enc_err(b, sizeof b, (uint16_t)(v == 2 ? 0 : SOTTO_SRV_E_DISPLACED), 10);
      st_frame(s, SOTTO_SRV_CLOSE, 0, b, n);
      break;
  }
  if (w.err) die("client frame");
}

static void gen_client_net(void) {
  static uint8_t sp[4 * SOTTO_SRV_MAX_FRAME];
  struct stream s = {sp, 0, sizeof sp};
  char desc[64];
  size_t n;

  /* Each kind alone, in a few variants. */
  for (int k = 0; k < CLIENT_KINDS; k++)
    for (int v = 0; v < 12; v += 5) {
      s.len = 0;
      client_frame(&s, k, v);
      snprintf(desc, sizeof desc, "kind%d-v%d", k, v);
      put_client(desc, (uint8_t)(k * 16 + v), s.p, s.len);
    }
  /* Whole connections: every answer after the handshake, then pushes. */
  for (int v = 0; v < 12; v++) {
    s.len = 0;
    for (int k = 0; k < CLIENT_KINDS; k++) client_frame(&s, k, v);
    snprintf(desc, sizeof desc, "session%d", v);
    put_client(desc, (uint8_t)(v * 21), s.p, s.len);
  }
  /* A flood of pushes past the queue's bound, fed with and without drop. */
  for (int v = 0; v < 2; v++) {
    s.len = 0;
    for (int i = 0; i < SOTTO_NET_MAX_EVENTS + 8; i++) client_frame(&s, 10, 0);
    client_frame(&s, 6, 0);
    put_client(v ? "flood-drop" : "flood", (uint8_t)(v | 0x18), s.p, s.len);
  }
  /* The largest frame the client accepts, and one byte more. */
  for (int v = 0; v < 2; v++) {
    static uint8_t b[SOTTO_SRV_MAX_FRAME];
    s.len = 0;
    n = enc_env(b, sizeof b, 9, "alice", 1, SOTTO_SRV_MAX_MESSAGE, SOTTO_SRV_MAX_MESSAGE);
    st_frame(&s, SOTTO_SRV_MSG, 0, b, n);
    st_frame(&s, SOTTO_SRV_DRAINED, 0, NULL, 0);
    put_client(v ? "max-env-drained" : "max-env", 0x20, s.p, s.len - (v ? 0 : 9));
  }
}

/* Each generator starts its own streams (keys and mutations) from its name,
 * so that a change in one (SPQR made sessions draw more randomness) leaves
 * the inputs of the others as they were. */
static void streams_for(const char *name) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
  for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
  rb_block = h & 0xFFFFFFFF00000000ull;
  mut_state = h;
}

/* KT_VERSIONS (after every other generator, so that their inputs stay as
 * they were): requests of each kind and at the limits, answers of 1 and 3
 * versions with and without a device list. */
static void gen_kt_versions(void) {
  uint8_t b[4096], head[SOTTO_SRV_KT_HEAD_LEN], proof[300], list[200];
  struct sotto__wr w;
  char desc[64];
  size_t i, k;
  fill(head, sizeof head, 4);
  fill(proof, sizeof proof, 5);
  fill(list, sizeof list, 6);
  for (k = 0; k < 2; k++) {
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_versions_req(&w, (uint8_t)k, (uint32_t)(k * 7), (uint8_t)(k ? SOTTO_SRV_KT_MAX_VERSIONS : 1),
                                   users[k % N_USERS]);
    snprintf(desc, sizeof desc, "versions-req%zu", k);
    put("server_kt", desc, b, w.len);
  }
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_kt_versions_req(&w, 2, 0x80000000u, SOTTO_SRV_KT_MAX_VERSIONS + 1, users[0]);
  put("server_kt", "versions-req-bad", b, w.len);
  for (k = 1; k < 4; k += 2) {
    sotto__wr_init(&w, b, sizeof b);
    sotto__wr_bytes(&w, head, sizeof head);
    sotto__wr_u8(&w, (uint8_t)k);
    for (i = 0; i < k; i++) {
      sotto__wr_u32be(&w, (uint32_t)(100 + 50 * i));
      sotto__wr_bytes(&w, proof, 100 + 50 * i);
      sotto__wr_u32be(&w, i == 1 ? 0 : (uint32_t)sizeof list);
      if (i != 1) sotto__wr_bytes(&w, list, sizeof list);
    }
    if (w.err) die("kt versions");
    snprintf(desc, sizeof desc, "versions%zu", k);
    put("server_kt", desc, b, w.len);
  }
}

int main(int argc, char **argv) {
  int fail = 0;
  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  root = argv[1];
  memcpy(rb_key, GEN_SEED, sizeof rb_key);
  if (randombytes_set_implementation(&rb_impl) != 0 || sotto_init() != 0) die("init");
  streams_for("sessions");
  gen_sessions();
  streams_for("sender_keys");
  gen_sender_keys();
  streams_for("hello");
  gen_hello();
  streams_for("register");
  gen_register();
  streams_for("auth");
  gen_auth();
  streams_for("recover");
  gen_recover();
  streams_for("devlist");
  gen_devlist();
  streams_for("send_multi");
  gen_send_multi();
  streams_for("kt");
  gen_kt();
  streams_for("backup");
  gen_backup();
  streams_for("targets");
  gen_targets();
  streams_for("ack");
  gen_ack();
  streams_for("send");
  gen_send();
  streams_for("keys");
  gen_keys();
  streams_for("push");
  gen_push();
  streams_for("server_frame");
  gen_server_frame();
  streams_for("client_net");
  gen_client_net();
  gen_kt_versions();
  for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
    printf("%-18s %u inputs\n", targets[i].name, targets[i].n);
    if (targets[i].n < GEN_MIN) {
      fprintf(stderr, "gen_corpus: %s has %u inputs, fewer than %d\n", targets[i].name, targets[i].n, GEN_MIN);
      fail = 1;
    }
  }
  return fail;
}
