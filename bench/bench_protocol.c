/* SPDX-License-Identifier: Apache-2.0 */
/* bench_protocol.c: libsotto against libsignal-protocol-c 2.3.3 in one run.
 *
 *   bench_protocol [--json] [--seconds S] [--smoke]
 *
 * --smoke (what `make check` runs): every row of g_rows for a fraction of a
 * second, no figure judged; the program fails if a row measured nothing (a
 * rate that is not a positive finite number on any side the row has).
 *
 * Rows (docs/benchmarks.md says exactly what one operation is in each):
 * setup, chain, pingpong, group, skipped2000, the ML-KEM-1024 primitives,
 * pqxdh_setup, and forged_msg (the receiver's cost of a forged message);
 * then spqr_setup, spqr_chain, spqr_pingpong and spqr_overhead against
 * today's libsignal (@signalapp/libsignal-client 0.103.0, AGPL-3.0, a
 * benchmark peer only) in a Node process over a pipe (tests/libsignal/
 * lspeer.c): one request is one whole libsignal operation, and the pipe's
 * cost per request (an empty call, `ping`) is measured and printed beside. Each row is measured in ROUNDS
 * rounds; in every round each library runs for S/ROUNDS seconds, in SLICES
 * turns alternating with the other library's, so that load from other
 * processes lands on both. A row reports each library's median round rate.
 *
 * The "floor" of the chain row is the same primitives one chain message
 * uses (lib/crypto), called back to back without any protocol around them.
 *
 * Every message is checked: each decrypt must succeed and return the exact
 * plaintext; otherwise the program stops with an error. A benchmark that
 * quietly timed failures would be worse than none.
 *
 * libsignal-protocol-c is GPLv3 and reached only through the test harness
 * tests/interop/sigc.c; this program is never installed. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sotto/group.h>
#include <sotto/keys.h>
#include <sotto/mlkem.h>
#include <sotto/session.h>

#include "crypto/crypto.h"
#include "lspeer.h"
#include "party.h"
#include "sigc.h"
#include "wire/messages.h"

#define PT_LEN 100     /* plaintext of every message */
#define ROUNDS 5       /* rounds per row; the median is reported */
#define SLICES 8       /* turns per round: each side's round time comes in this many slices */
#define BATCH 4        /* operations between two clock reads */
#define DEFAULT_SECONDS 2.0
#define SMOKE_SECONDS 0.1 /* --smoke: per library per row */
#define MAX_SECONDS 3600.0
#define MSG_CAP SOTTO_SESSION_ENCRYPTED_MAX(PT_LEN)
#define GAP SOTTO_MAX_FORWARD_JUMP /* skipped2000: the largest gap both accept */

#define SPK_ID 1
#define OPK_ID 2

/* ---- failure reporting --------------------------------------------------- */

static const char *g_row = "init"; /* the row being prepared or measured */

static void die(const char *what, const char *why) {
  fprintf(stderr, "bench_protocol: row %s: %s: %s; aborting (no figures are printed)\n", g_row,
          what, why);
  exit(1);
}

static void check_sotto(int rc, const char *what) {
  if (rc != 0) die(what, sotto_strerror(rc));
}

static void check_sigc(int rc, const char *what) {
  if (rc != 0) die(what, sigc_strerror(rc));
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of this process: what an operation costs without the time spent
 * waiting for a CPU on a shared machine (reported next to forged_msg). */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- plaintexts ---------------------------------------------------------- */

/* Each message carries a fresh counter in its first bytes, so that a decrypt
 * returning a stale or foreign plaintext cannot pass the comparison. */
static uint8_t g_pt[PT_LEN];
static uint32_t g_stamp;

static const uint8_t *next_plaintext(void) {
  g_stamp++;
  memcpy(g_pt, &g_stamp, sizeof g_stamp);
  return g_pt;
}

static void check_plaintext(const uint8_t *pt, size_t len, const uint8_t *want, const char *what) {
  if (len != PT_LEN || memcmp(pt, want, PT_LEN) != 0) die(what, "decrypted plaintext differs");
}

/* ---- libsotto side -------------------------------------------------------- */

struct smsg {
  int type;
  size_t len;
  uint8_t pt[PT_LEN]; /* what was encrypted */
  uint8_t b[MSG_CAP];
};

/* Two libsotto users with a session each way. */
struct spair {
  struct party a, b;
  struct sotto_session *sa, *sb;
};

static struct smsg g_smsg;

static void s_send(struct sotto_session *from, struct smsg *m, int want_type) {
  memcpy(m->pt, next_plaintext(), PT_LEN);
  check_sotto(sotto_session_encrypt(from, m->b, sizeof m->b, &m->len, &m->type, m->pt, PT_LEN),
              "libsotto encrypt");
  if (want_type != 0 && m->type != want_type) die("libsotto encrypt", "unexpected message type");
}

static void s_recv(struct sotto_session *to, const struct party *p, const struct smsg *m) {
  uint8_t pt[MSG_CAP];
  size_t n = 0;
  check_sotto(sotto_session_decrypt(to, &p->id, &p->store, m->type, m->b, m->len, pt, sizeof pt, &n),
              "libsotto decrypt");
  check_plaintext(pt, n, m->pt, "libsotto decrypt");
}

/* Sets up a session from b's bundle (with a one-time pre-key) and makes one
 * round trip, so that both sides are past the PreKey phase. Every libsotto
 * session here is version 3 (X3DH, SOTTO_INIT_ALLOW_X3DH): the protocol
 * libsignal-protocol-c speaks, so both sides do the same work. */
static void spair_open(struct spair *p) {
  struct sotto_bundle bundle;
  memset(p, 0, sizeof *p);
  check_sotto(party_init(&p->a), "party_init");
  check_sotto(party_init(&p->b), "party_init");
  check_sotto(party_add_spk(&p->b, SPK_ID), "party_add_spk");
  check_sotto(party_add_opk(&p->b, OPK_ID), "party_add_opk");
  check_sotto(party_bundle(&p->b, SPK_ID, OPK_ID, &bundle), "party_bundle");
  check_sotto(sotto_session_new(&p->sa), "sotto_session_new");
  check_sotto(sotto_session_new(&p->sb), "sotto_session_new");
  check_sotto(sotto_session_init_from_bundle_ex(p->sa, &p->a.id, &bundle, SOTTO_INIT_ALLOW_X3DH),
              "init_from_bundle");
  s_send(p->sa, &g_smsg, SOTTO_MSG_PREKEY);
  s_recv(p->sb, &p->b, &g_smsg);
  s_send(p->sb, &g_smsg, SOTTO_MSG_SIGNAL);
  s_recv(p->sa, &p->a, &g_smsg);
}

static void spair_close(struct spair *p) {
  sotto_session_free(p->sa);
  sotto_session_free(p->sb);
  sotto_wipe(p, sizeof *p);
}

/* ---- libsignal-c side ------------------------------------------------------ */

/* A message as sigc hands it over (malloc'd by the harness). */
struct lmsg {
  int type;
  uint8_t *b;
  size_t len;
  uint8_t pt[PT_LEN];
};

struct lpair {
  struct sigc_user *a, *b; /* named "alice" and "bob" */
};

static struct lmsg g_lmsg;

static void l_send(struct sigc_user *from, const char *peer, struct lmsg *m, int want_type) {
  memcpy(m->pt, next_plaintext(), PT_LEN);
  check_sigc(sigc_encrypt(from, peer, 1, m->pt, PT_LEN, &m->type, &m->b, &m->len),
             "libsignal-c encrypt");
  if (want_type != 0 && m->type != want_type) die("libsignal-c encrypt", "unexpected message type");
}

/* Decrypts and releases the message. */
static void l_recv(struct sigc_user *to, const char *peer, struct lmsg *m) {
  uint8_t *pt = NULL;
  size_t n = 0;
  int rc = sigc_decrypt(to, peer, 1, m->type, m->b, m->len, &pt, &n);
  free(m->b);
  m->b = NULL;
  check_sigc(rc, "libsignal-c decrypt");
  check_plaintext(pt, n, m->pt, "libsignal-c decrypt");
  free(pt);
}

static void lpair_open(struct lpair *p) {
  struct sigc_bundle bundle;
  p->a = sigc_user_new("alice", 1);
  p->b = sigc_user_new("bob", 1);
  if (p->a == NULL || p->b == NULL) die("sigc_user_new", "failed");
  check_sigc(sigc_make_bundle(p->b, SPK_ID, OPK_ID, &bundle), "sigc_make_bundle");
  check_sigc(sigc_process_bundle(p->a, "bob", 1, &bundle), "sigc_process_bundle");
  l_send(p->a, "bob", &g_lmsg, SIGC_TYPE_PREKEY);
  l_recv(p->b, "alice", &g_lmsg);
  l_send(p->b, "alice", &g_lmsg, SIGC_TYPE_SIGNAL);
  l_recv(p->a, "bob", &g_lmsg);
}

static void lpair_close(struct lpair *p) {
  sigc_user_free(p->a);
  sigc_user_free(p->b);
  p->a = p->b = NULL;
}

/* ---- sizes reported in the second table ------------------------------------ */

struct sizes {
  size_t prekey_msg[2], signal_msg[2], senderkey_msg[2], skdm[2]; /* [0] sotto, [1] libsignal-c */
  size_t prekey_msg_v4;                                            /* sotto only */
  size_t chain_sender[2], chain_receiver[2], pingpong[2], skipped[2];
};
static struct sizes g_size;

/* ---- row: setup ------------------------------------------------------------ */

/* Alice processes Bob's bundle (with a one-time pre-key), encrypts the first
 * message, Bob decrypts it. Then both sessions are dropped and Bob's
 * one-time pre-key is put back, so the next iteration does the same work.
 * Bob's keys are made once, outside the timing. */
static struct {
  struct party a, b;
  struct sotto_bundle bundle;
  uint8_t opk_pub[32], opk_priv[32];
  struct sigc_user *la, *lb;
  struct sigc_bundle lbundle;
} g_setup;

static void setup_prepare(void) {
  int i, found = 0;
  check_sotto(party_init(&g_setup.a), "party_init");
  check_sotto(party_init(&g_setup.b), "party_init");
  check_sotto(party_add_spk(&g_setup.b, SPK_ID), "party_add_spk");
  check_sotto(party_add_opk(&g_setup.b, OPK_ID), "party_add_opk");
  check_sotto(party_bundle(&g_setup.b, SPK_ID, OPK_ID, &g_setup.bundle), "party_bundle");
  for (i = 0; i < PARTY_MAX_KEYS; i++) {
    if (g_setup.b.opk[i].used && g_setup.b.opk[i].id == OPK_ID) {
      memcpy(g_setup.opk_pub, g_setup.b.opk[i].pub, 32);
      memcpy(g_setup.opk_priv, g_setup.b.opk[i].priv, 32);
      found = 1;
    }
  }
  if (!found) die("party_add_opk", "one-time pre-key not in the store");

  g_setup.la = sigc_user_new("alice", 1);
  g_setup.lb = sigc_user_new("bob", 1);
  if (g_setup.la == NULL || g_setup.lb == NULL) die("sigc_user_new", "failed");
  check_sigc(sigc_make_bundle(g_setup.lb, SPK_ID, OPK_ID, &g_setup.lbundle), "sigc_make_bundle");
}

static void setup_sotto(void) {
  struct sotto_session *sa = NULL, *sb = NULL;
  unsigned removed = g_setup.b.opk_removed;
  check_sotto(sotto_session_new(&sa), "sotto_session_new");
  check_sotto(sotto_session_new(&sb), "sotto_session_new");
  check_sotto(sotto_session_init_from_bundle_ex(sa, &g_setup.a.id, &g_setup.bundle, SOTTO_INIT_ALLOW_X3DH),
              "init_from_bundle");
  s_send(sa, &g_smsg, SOTTO_MSG_PREKEY);
  s_recv(sb, &g_setup.b, &g_smsg);
  if (g_setup.b.opk_removed != removed + 1) die("libsotto decrypt", "one-time pre-key not consumed");
  if (g_size.prekey_msg[0] == 0) g_size.prekey_msg[0] = g_smsg.len;
  sotto_session_free(sa);
  sotto_session_free(sb);
  party_restore_opk(&g_setup.b, OPK_ID, g_setup.opk_pub, g_setup.opk_priv);
}

static void setup_lib(void) {
  check_sigc(sigc_process_bundle(g_setup.la, "bob", 1, &g_setup.lbundle), "sigc_process_bundle");
  l_send(g_setup.la, "bob", &g_lmsg, SIGC_TYPE_PREKEY);
  if (g_size.prekey_msg[1] == 0) g_size.prekey_msg[1] = g_lmsg.len;
  l_recv(g_setup.lb, "alice", &g_lmsg);
  if (sigc_has_opk(g_setup.lb, OPK_ID)) die("libsignal-c decrypt", "one-time pre-key not consumed");
  if (sigc_delete_session(g_setup.la, "bob", 1) != 1 || sigc_delete_session(g_setup.lb, "alice", 1) != 1)
    die("sigc_delete_session", "no session to delete");
  check_sigc(sigc_restore_opk(g_setup.lb, OPK_ID), "sigc_restore_opk");
}

static void setup_finish(void) {
  sigc_user_free(g_setup.la);
  sigc_user_free(g_setup.lb);
  sotto_wipe(&g_setup, sizeof g_setup);
}

/* ---- row: pqxdh_setup ------------------------------------------------------------ */

/* As setup, version 4: the bundle also carries a signed ML-KEM-1024 pre-key,
 * so the initiator verifies two signatures and encapsulates, the responder
 * decapsulates. The KEM key is a last-resort one (kept after use), so no
 * store repair is needed between iterations; the work is the same as with a
 * one-time KEM key. Compared with libsignal-c's X3DH setup (it has no PQXDH)
 * and with our own X3DH setup in the same rounds. */
static struct sotto_bundle g_pq_bundle;

static void pqxdh_prepare(void) {
  setup_prepare();
  check_sotto(party_add_kem(&g_setup.b, 40, 1), "party_add_kem");
  check_sotto(party_bundle_pq(&g_setup.b, SPK_ID, OPK_ID, 40, &g_pq_bundle), "party_bundle_pq");
}

static void pqxdh_sotto(void) {
  struct sotto_session *sa = NULL, *sb = NULL;
  unsigned removed = g_setup.b.opk_removed;
  check_sotto(sotto_session_new(&sa), "sotto_session_new");
  check_sotto(sotto_session_new(&sb), "sotto_session_new");
  check_sotto(sotto_session_init_from_bundle(sa, &g_setup.a.id, &g_pq_bundle), "init_from_bundle (v4)");
  if (sotto_session_version(sa) != 4) die("init_from_bundle", "not a version 4 session");
  s_send(sa, &g_smsg, SOTTO_MSG_PREKEY);
  if (g_size.prekey_msg_v4 == 0) g_size.prekey_msg_v4 = g_smsg.len;
  s_recv(sb, &g_setup.b, &g_smsg);
  if (g_setup.b.opk_removed != removed + 1) die("libsotto decrypt", "one-time pre-key not consumed");
  sotto_session_free(sa);
  sotto_session_free(sb);
  party_restore_opk(&g_setup.b, OPK_ID, g_setup.opk_pub, g_setup.opk_priv);
}

/* ---- rows: ML-KEM-1024 primitives (libsotto only; libsignal-c has no KEM) ---- */

static struct {
  uint8_t pk[SOTTO_MLKEM1024_PK_LEN], sk[SOTTO_MLKEM1024_SK_LEN], ct[SOTTO_MLKEM1024_CT_LEN], ss[32], ss2[32];
} g_kem;

static void kem_prepare(void) {
  check_sotto(sotto_mlkem1024_keypair(g_kem.pk, g_kem.sk), "mlkem keypair");
  check_sotto(sotto_mlkem1024_encaps(g_kem.ct, g_kem.ss, g_kem.pk, sizeof g_kem.pk), "mlkem encaps");
}

static void kem_keygen(void) { check_sotto(sotto_mlkem1024_keypair(g_kem.pk, g_kem.sk), "mlkem keypair"); }

static void kem_encaps(void) {
  check_sotto(sotto_mlkem1024_encaps(g_kem.ct, g_kem.ss, g_kem.pk, sizeof g_kem.pk), "mlkem encaps");
}

static void kem_decaps(void) {
  check_sotto(sotto_mlkem1024_decaps(g_kem.ss2, g_kem.ct, sizeof g_kem.ct, g_kem.sk, sizeof g_kem.sk),
              "mlkem decaps");
  if (memcmp(g_kem.ss, g_kem.ss2, 32) != 0) die("mlkem decaps", "shared secrets differ");
}

static void kem_finish(void) { sotto_wipe(&g_kem, sizeof g_kem); }

/* ---- row: chain -------------------------------------------------------------- */

/* One message Alice -> Bob (encrypt + decrypt) on a long one-way chain. */
static struct spair g_chain_s;
static struct lpair g_chain_l;

static void chain_prepare(void) {
  spair_open(&g_chain_s);
  lpair_open(&g_chain_l);
}

static void chain_sotto(void) {
  s_send(g_chain_s.sa, &g_smsg, SOTTO_MSG_SIGNAL);
  s_recv(g_chain_s.sb, &g_chain_s.b, &g_smsg);
  if (g_size.signal_msg[0] == 0) g_size.signal_msg[0] = g_smsg.len;
}

static void chain_lib(void) {
  l_send(g_chain_l.a, "bob", &g_lmsg, SIGC_TYPE_SIGNAL);
  if (g_size.signal_msg[1] == 0) g_size.signal_msg[1] = g_lmsg.len;
  l_recv(g_chain_l.b, "alice", &g_lmsg);
}

/* The floor: per message, each side steps its chain (the two one-byte MACs
 * under the chain key, on the compression function as lib does), derives
 * the 80 bytes of message keys (HKDF with the zero salt), MACs the ~220
 * bytes a v3 MAC covers (two identity keys, version byte, SignalMessage
 * protobuf) under a prepared key, and runs AES-256-CBC over the 100-byte
 * plaintext. The receiver compares the MAC and the plaintext, so
 * nothing can be optimised away and the floor checks itself. */
#define FLOOR_MAC_INPUT 220
#define FLOOR_CT_OFF (FLOOR_MAC_INPUT - SOTTO_CIPHERTEXT_LEN(PT_LEN))

static struct {
  uint8_t send_ck[32], recv_ck[32];
  uint8_t wire[FLOOR_MAC_INPUT + 32];
} g_floor;

static const uint8_t FLOOR_INFO[] = "WhisperMessageKeys";

static void floor_keys(uint8_t ck[32], uint8_t keys[80]) {
  uint8_t seed[32];
  sotto__hmac32_12(seed, ck, ck);
  check_sotto(sotto__hkdf_zero_salt32(keys, 80, seed, FLOOR_INFO, sizeof FLOOR_INFO - 1), "hkdf");
}

static void chain_floor(void) {
  struct sotto__hmac_key hk;
  uint8_t ks[80], kr[80], mac[32], pt[SOTTO_CIPHERTEXT_LEN(PT_LEN)];
  const uint8_t *want = next_plaintext();
  size_t n = 0;

  /* sender */
  floor_keys(g_floor.send_ck, ks);
  if (sotto__aes256cbc_encrypt(g_floor.wire + FLOOR_CT_OFF, &n, ks, ks + 64, want, PT_LEN) != 0 ||
      n != SOTTO_CIPHERTEXT_LEN(PT_LEN))
    die("floor", "AES-256-CBC encrypt failed");
  sotto__hmac_key_init(&hk, ks + 32, 32);
  sotto__hmac(g_floor.wire + FLOOR_MAC_INPUT, &hk, g_floor.wire, FLOOR_MAC_INPUT);

  /* receiver */
  floor_keys(g_floor.recv_ck, kr);
  sotto__hmac_key_init(&hk, kr + 32, 32);
  sotto__hmac(mac, &hk, g_floor.wire, FLOOR_MAC_INPUT);
  if (!sotto__ct_eq(mac, g_floor.wire + FLOOR_MAC_INPUT, SOTTO_MESSAGE_MAC_LEN))
    die("floor", "MAC mismatch");
  if (sotto__aes256cbc_decrypt(pt, &n, kr, kr + 64, g_floor.wire + FLOOR_CT_OFF,
                               SOTTO_CIPHERTEXT_LEN(PT_LEN)) != 0)
    die("floor", "AES-256-CBC decrypt failed");
  check_plaintext(pt, n, want, "floor");
}

static void chain_finish(void) {
  g_size.chain_sender[0] = sotto_session_serialized_size(g_chain_s.sa);
  g_size.chain_receiver[0] = sotto_session_serialized_size(g_chain_s.sb);
  g_size.chain_sender[1] = sigc_session_record_size(g_chain_l.a, "bob", 1);
  g_size.chain_receiver[1] = sigc_session_record_size(g_chain_l.b, "alice", 1);
  spair_close(&g_chain_s);
  lpair_close(&g_chain_l);
}

/* ---- row: pingpong ----------------------------------------------------------- */

/* Strictly alternating directions: every message carries a new ratchet key
 * and makes the receiver do a DH ratchet step. One op = one message. */
static struct spair g_pp_s;
static struct lpair g_pp_l;
static int g_pp_dir_s, g_pp_dir_l;

static void pingpong_prepare(void) {
  spair_open(&g_pp_s);
  lpair_open(&g_pp_l);
}

static void pingpong_sotto(void) {
  if (g_pp_dir_s == 0) {
    s_send(g_pp_s.sa, &g_smsg, SOTTO_MSG_SIGNAL);
    s_recv(g_pp_s.sb, &g_pp_s.b, &g_smsg);
  } else {
    s_send(g_pp_s.sb, &g_smsg, SOTTO_MSG_SIGNAL);
    s_recv(g_pp_s.sa, &g_pp_s.a, &g_smsg);
  }
  g_pp_dir_s ^= 1;
}

static void pingpong_lib(void) {
  if (g_pp_dir_l == 0) {
    l_send(g_pp_l.a, "bob", &g_lmsg, SIGC_TYPE_SIGNAL);
    l_recv(g_pp_l.b, "alice", &g_lmsg);
  } else {
    l_send(g_pp_l.b, "alice", &g_lmsg, SIGC_TYPE_SIGNAL);
    l_recv(g_pp_l.a, "bob", &g_lmsg);
  }
  g_pp_dir_l ^= 1;
}

static void pingpong_finish(void) {
  g_size.pingpong[0] = sotto_session_serialized_size(g_pp_s.sa);
  g_size.pingpong[1] = sigc_session_record_size(g_pp_l.a, "bob", 1);
  spair_close(&g_pp_s);
  lpair_close(&g_pp_l);
}

/* ---- row: group ---------------------------------------------------------------- */

/* Sender Keys: the sender encrypts (and signs), one member decrypts (and
 * verifies). The distribution message is made and processed once. */
static struct {
  struct sotto_sender_key *sender, *member;
  struct sigc_user *ls, *lm;
  uint8_t msg[SOTTO_GROUP_MESSAGE_MAX_LEN(PT_LEN)];
} g_group;

static void group_prepare(void) {
  uint8_t skdm[SOTTO_SKDM_MAX_LEN], *lskdm = NULL;
  size_t n = 0;
  check_sotto(sotto_sender_key_new(&g_group.sender), "sotto_sender_key_new");
  check_sotto(sotto_sender_key_new(&g_group.member), "sotto_sender_key_new");
  check_sotto(sotto_sender_key_distribution(g_group.sender, skdm, sizeof skdm, &n),
              "sotto_sender_key_distribution");
  g_size.skdm[0] = n;
  check_sotto(sotto_sender_key_process(g_group.member, skdm, n), "sotto_sender_key_process");

  g_group.ls = sigc_user_new("gsender", 1);
  g_group.lm = sigc_user_new("gmember", 1);
  if (g_group.ls == NULL || g_group.lm == NULL) die("sigc_user_new", "failed");
  check_sigc(sigc_group_create(g_group.ls, "bench-group", &lskdm, &n), "sigc_group_create");
  g_size.skdm[1] = n;
  check_sigc(sigc_group_process(g_group.lm, "bench-group", "gsender", 1, lskdm, n), "sigc_group_process");
  free(lskdm);
}

static void group_sotto(void) {
  uint8_t pt[sizeof g_group.msg];
  const uint8_t *want = next_plaintext();
  size_t len = 0, n = 0;
  check_sotto(sotto_group_encrypt(g_group.sender, g_group.msg, sizeof g_group.msg, &len, want, PT_LEN),
              "libsotto group encrypt");
  if (g_size.senderkey_msg[0] == 0) g_size.senderkey_msg[0] = len;
  check_sotto(sotto_group_decrypt(g_group.member, pt, sizeof pt, &n, g_group.msg, len),
              "libsotto group decrypt");
  check_plaintext(pt, n, want, "libsotto group decrypt");
}

static void group_lib(void) {
  const uint8_t *want = next_plaintext();
  uint8_t *msg = NULL, *pt = NULL;
  size_t len = 0, n = 0;
  int rc;
  check_sigc(sigc_group_encrypt(g_group.ls, "bench-group", want, PT_LEN, &msg, &len),
             "libsignal-c group encrypt");
  if (g_size.senderkey_msg[1] == 0) g_size.senderkey_msg[1] = len;
  rc = sigc_group_decrypt(g_group.lm, "bench-group", "gsender", 1, msg, len, &pt, &n);
  free(msg);
  check_sigc(rc, "libsignal-c group decrypt");
  check_plaintext(pt, n, want, "libsignal-c group decrypt");
  free(pt);
}

static void group_finish(void) {
  sotto_sender_key_free(g_group.sender);
  sotto_sender_key_free(g_group.member);
  sigc_user_free(g_group.ls);
  sigc_user_free(g_group.lm);
  memset(&g_group, 0, sizeof g_group);
}

/* ---- row: skipped2000 ------------------------------------------------------------ */

/* Alice sends GAP messages that never arrive, then one more that Bob opens:
 * Bob now holds GAP skipped keys. The op is then the chain op (in order, on
 * the same chain); the skipped keys stay held throughout. The target compares
 * libsotto with its own chain rate, so a plain chain (g_sk_ref, no skipped
 * keys) is measured in the same rounds as the reference. */
static struct spair g_sk_s, g_sk_ref;
static struct lpair g_sk_l;

/* The receivers must hold the skipped keys for the row to mean anything.
 * libsignal-c has no counter for them: its record, which stores each key as
 * index, cipher key, MAC key and IV, must be at least GAP * 64 bytes. */
static void skipped_check(void) {
  if (sotto_session_skipped_keys(g_sk_s.sb) != GAP)
    die("libsotto", "receiver does not hold 2000 skipped keys");
  if (sigc_session_record_size(g_sk_l.b, "alice", 1) < (size_t)GAP * 64)
    die("libsignal-c", "receiver's record is too small to hold 2000 skipped keys");
}

static void skipped_prepare(void) {
  int i;
  spair_open(&g_sk_s);
  for (i = 0; i < GAP; i++) s_send(g_sk_s.sa, &g_smsg, SOTTO_MSG_SIGNAL);
  s_send(g_sk_s.sa, &g_smsg, SOTTO_MSG_SIGNAL);
  s_recv(g_sk_s.sb, &g_sk_s.b, &g_smsg);
  spair_open(&g_sk_ref);

  lpair_open(&g_sk_l);
  for (i = 0; i < GAP; i++) {
    l_send(g_sk_l.a, "bob", &g_lmsg, SIGC_TYPE_SIGNAL);
    free(g_lmsg.b);
    g_lmsg.b = NULL;
  }
  l_send(g_sk_l.a, "bob", &g_lmsg, SIGC_TYPE_SIGNAL);
  l_recv(g_sk_l.b, "alice", &g_lmsg);
  skipped_check();
}

static void skipped_sotto(void) {
  s_send(g_sk_s.sa, &g_smsg, SOTTO_MSG_SIGNAL);
  s_recv(g_sk_s.sb, &g_sk_s.b, &g_smsg);
}

static void skipped_ref(void) {
  s_send(g_sk_ref.sa, &g_smsg, SOTTO_MSG_SIGNAL);
  s_recv(g_sk_ref.sb, &g_sk_ref.b, &g_smsg);
}

static void skipped_lib(void) {
  l_send(g_sk_l.a, "bob", &g_lmsg, SIGC_TYPE_SIGNAL);
  l_recv(g_sk_l.b, "alice", &g_lmsg);
}

static void skipped_finish(void) {
  skipped_check();
  g_size.skipped[0] = sotto_session_serialized_size(g_sk_s.sb);
  g_size.skipped[1] = sigc_session_record_size(g_sk_l.b, "alice", 1);
  spair_close(&g_sk_s);
  spair_close(&g_sk_ref);
  lpair_close(&g_sk_l);
}

/* ---- row: forged_msg ------------------------------------------------------------- */

/* The receiver's cost of a forged SignalMessage (docs/protocol.md, "Work per
 * message"). Bob's record for Alice is full: a current state and
 * SOTTO_MAX_ARCHIVED_STATES archived ones, each made by a PreKeySignalMessage
 * from a new session of Alice's (version 4, as the client makes them) that
 * Bob answered, so that every state could take a new ratchet key. A forged
 * message is well formed, names the right version and carries a random MAC;
 * the forger picks what costs Bob most, so prepare tries several kinds and
 * the row measures the most expensive: a new ratchet key with counters
 * 2000, 666 (the chain-step budget shared by the most DH steps) and 0,
 * and the ratchet key of the current or of the oldest state's receiving
 * chain 2000 ahead of it. Each op is one decrypt that must
 * be refused (SOTTO_ERR_AUTH, or SOTTO_ERR_TOO_FAR_AHEAD) and leave the
 * record unchanged (checked at the end). The reference is one valid message on the same record: Alice
 * encrypts, Bob decrypts (the chain row's op). */
#define FORGED_KINDS 5
#define FORGED_PROBES 16  /* decrypts per kind when picking the worst */
#define FORGED_CPU_OPS 64 /* ops timed in CPU time at the end */

static struct {
  struct party a, b;
  struct sotto_session *bob;   /* Bob's record for Alice */
  struct sotto_session *alice; /* Alice's newest session */
  uint8_t msg[FORGED_KINDS][MSG_CAP];
  size_t len[FORGED_KINDS];
  const char *what[FORGED_KINDS];
  double probe_us[FORGED_KINDS]; /* microseconds per decrypt while picking */
  double cpu_us, cpu_valid_us;   /* CPU microseconds: worst kind, valid message */
  int worst;
  uint8_t cur_key[32]; /* the current receiving chain's ratchet key */
  uint32_t cur_next;   /* its next index (the valid op moves it on) */
  uint32_t cur_forged; /* the index kind 3 was forged against */
  uint32_t saved_next; /* its next index in the saved record */
  size_t record_len;
  uint8_t *record; /* Bob's record before the row, to prove it unchanged */
} g_forged;

/* A SignalMessage of Alice's version under ratchet_key with the given
 * counter, a random 112-byte ciphertext and a random MAC. */
static void forge(int kind, const uint8_t ratchet_key[32], uint32_t counter, const char *what) {
  uint8_t ct[SOTTO_CIPHERTEXT_LEN(PT_LEN)];
  struct sotto__wr w;
  check_sotto(sotto__random(ct, sizeof ct), "random");
  sotto__wr_init(&w, g_forged.msg[kind], sizeof g_forged.msg[kind]);
  sotto__signal_msg_write(&w, 0x44, ratchet_key, counter, 0, ct, sizeof ct);
  if (w.err || w.len + SOTTO_MESSAGE_MAC_LEN > sizeof g_forged.msg[kind])
    die("forge", "message does not fit");
  check_sotto(sotto__random(g_forged.msg[kind] + w.len, SOTTO_MESSAGE_MAC_LEN), "random");
  g_forged.len[kind] = w.len + SOTTO_MESSAGE_MAC_LEN;
  g_forged.what[kind] = what;
}

static void forged_try(int kind) {
  uint8_t pt[MSG_CAP];
  size_t n = 0;
  int rc = sotto_session_decrypt(g_forged.bob, &g_forged.b.id, &g_forged.b.store, SOTTO_MSG_SIGNAL,
                                 g_forged.msg[kind], g_forged.len[kind], pt, sizeof pt, &n);
  /* Refused as forged, or (for a key some state knows, with a counter
   * beyond another state's reach) as too far ahead: either way, refused. */
  if (rc != SOTTO_ERR_AUTH && rc != SOTTO_ERR_TOO_FAR_AHEAD)
    die("forged message", rc == 0 ? "decrypted" : sotto_strerror(rc));
}

static void forged_prepare(void) {
  struct sotto__signal_msg sm;
  struct sotto__prekey_msg pm;
  struct sotto_bundle bundle;
  uint8_t oldest_key[32], fresh[32], priv[32];
  uint32_t oldest_counter = 0;
  static char share[64];
  double best = -1;
  int i, k;

  memset(&g_forged, 0, sizeof g_forged);
  check_sotto(party_init(&g_forged.a), "party_init");
  check_sotto(party_init(&g_forged.b), "party_init");
  check_sotto(party_add_spk(&g_forged.b, SPK_ID), "party_add_spk");
  check_sotto(party_add_kem(&g_forged.b, 40, 1), "party_add_kem");
  check_sotto(party_bundle_pq(&g_forged.b, SPK_ID, 0, 40, &bundle), "party_bundle_pq");
  check_sotto(sotto_session_new(&g_forged.bob), "sotto_session_new");
  for (i = 0; i <= SOTTO_MAX_ARCHIVED_STATES; i++) {
    struct smsg reply;
    sotto_session_free(g_forged.alice);
    g_forged.alice = NULL;
    check_sotto(sotto_session_new(&g_forged.alice), "sotto_session_new");
    check_sotto(sotto_session_init_from_bundle(g_forged.alice, &g_forged.a.id, &bundle), "init_from_bundle");
    s_send(g_forged.alice, &g_smsg, SOTTO_MSG_PREKEY);
    if (i == 0) {
      /* The oldest state's receiving chain: Alice's first ratchet key. */
      check_sotto(sotto__prekey_msg_parse(&pm, g_smsg.b, g_smsg.len), "parse PreKeySignalMessage");
      check_sotto(sotto__signal_msg_parse(&sm, pm.message, pm.message_len), "parse SignalMessage");
      memcpy(oldest_key, sm.ratchet_key, 32);
      oldest_counter = sm.counter + 1;
    }
    s_recv(g_forged.bob, &g_forged.b, &g_smsg);
    s_send(g_forged.bob, &reply, SOTTO_MSG_SIGNAL); /* Bob answers on every state */
    if (i == SOTTO_MAX_ARCHIVED_STATES) s_recv(g_forged.alice, &g_forged.a, &reply);
  }
  /* Alice's newest session is past the PreKey phase: one more message gives
   * the current receiving chain's key and counter. */
  s_send(g_forged.alice, &g_smsg, SOTTO_MSG_SIGNAL);
  s_recv(g_forged.bob, &g_forged.b, &g_smsg);
  check_sotto(sotto__signal_msg_parse(&sm, g_smsg.b, g_smsg.len), "parse SignalMessage");

  check_sotto(sotto_keypair_generate(fresh, priv), "keypair");
  sotto_wipe(priv, sizeof priv);
  forge(0, fresh, SOTTO_MAX_FORWARD_JUMP, "new ratchet key, counter 2000");
  /* The budget's worst: as many DH steps as allowed, each with its share
   * of the chain steps. */
  snprintf(share, sizeof share, "new ratchet key, counter %d",
           SOTTO_MAX_DECRYPT_CHAIN_STEPS / SOTTO_MAX_DECRYPT_DH_STEPS);
  forge(1, fresh, SOTTO_MAX_DECRYPT_CHAIN_STEPS / SOTTO_MAX_DECRYPT_DH_STEPS, share);
  forge(2, fresh, 0, "new ratchet key, counter 0");
  memcpy(g_forged.cur_key, sm.ratchet_key, 32);
  g_forged.cur_next = g_forged.cur_forged = g_forged.saved_next = sm.counter + 1;
  forge(3, sm.ratchet_key, g_forged.cur_next + SOTTO_MAX_FORWARD_JUMP, "current chain's key, 2000 ahead");
  forge(4, oldest_key, oldest_counter + SOTTO_MAX_FORWARD_JUMP, "oldest state's chain key, 2000 ahead");

  g_forged.record_len = sotto_session_serialized_size(g_forged.bob);
  if ((g_forged.record = malloc(g_forged.record_len)) == NULL) die("malloc", "out of memory");
  check_sotto(
      sotto_session_serialize(g_forged.bob, g_forged.record, g_forged.record_len, &g_forged.record_len),
      "serialize");
  for (k = 0; k < FORGED_KINDS; k++) {
    double t0 = now(), t;
    for (i = 0; i < FORGED_PROBES; i++) forged_try(k);
    t = now() - t0;
    g_forged.probe_us[k] = t * 1e6 / FORGED_PROBES;
    if (t > best) {
      best = t;
      g_forged.worst = k;
    }
  }
}

/* Kind 3 stays 2000 ahead of the current chain, which the valid op moves. */
static void forge_current(uint32_t next) {
  if (g_forged.cur_forged == next) return;
  forge(3, g_forged.cur_key, next + SOTTO_MAX_FORWARD_JUMP, g_forged.what[3]);
  g_forged.cur_forged = next;
}

static void forged_sotto(void) {
  if (g_forged.worst == 3) forge_current(g_forged.cur_next);
  forged_try(g_forged.worst);
}

static void forged_valid(void) {
  s_send(g_forged.alice, &g_smsg, SOTTO_MSG_SIGNAL);
  s_recv(g_forged.bob, &g_forged.b, &g_smsg);
  g_forged.cur_next++;
}

static void forged_finish(void) {
  /* The forged messages changed nothing: the record is what it was before
   * the row, apart from the valid messages on the current chain. Decrypting
   * every kind once more on the saved record must still fail the same way. */
  struct sotto_session *saved = NULL;
  uint8_t *now_rec;
  size_t n;
  int k;
  double t0;
  /* CPU time on the live record first: the worst kind, then valid messages. */
  forge_current(g_forged.cur_next);
  t0 = cpu_now();
  for (k = 0; k < FORGED_CPU_OPS; k++) forged_try(g_forged.worst);
  g_forged.cpu_us = (cpu_now() - t0) * 1e6 / FORGED_CPU_OPS;
  t0 = cpu_now();
  for (k = 0; k < FORGED_CPU_OPS; k++) forged_valid();
  g_forged.cpu_valid_us = (cpu_now() - t0) * 1e6 / FORGED_CPU_OPS;
  check_sotto(sotto_session_deserialize(&saved, g_forged.record, g_forged.record_len), "deserialize");
  sotto_session_free(g_forged.bob);
  g_forged.bob = saved;
  forge_current(g_forged.saved_next);
  for (k = 0; k < FORGED_KINDS; k++) forged_try(k);
  n = sotto_session_serialized_size(g_forged.bob);
  if (n != g_forged.record_len || (now_rec = malloc(n)) == NULL) die("forged message", "record changed size");
  check_sotto(sotto_session_serialize(g_forged.bob, now_rec, n, &n), "serialize");
  if (memcmp(now_rec, g_forged.record, n) != 0) die("forged message", "record changed");
  free(now_rec);
  sotto_wipe(g_forged.record, g_forged.record_len);
  free(g_forged.record);
  sotto_session_free(g_forged.bob);
  sotto_session_free(g_forged.alice);
  g_forged.bob = g_forged.alice = NULL;
}

/* ---- rows: SPQR, against libsignal 0.103 through Node ------------------------------ */

/* libsotto: PQXDH (ML-KEM-1024) + SPQR sessions (SOTTO_INIT_SPQR); the
 * reference for spqr_chain is a pair without SPQR in the same rounds: since
 * SPQR is the default of version 4 (a responder refuses a version 4 start
 * without it), that is a version 3 pair, whose Double Ratchet does per
 * message exactly what version 4's does.
 * libsignal: both parties in the Node driver (lsb_* requests), always with
 * SPQR. Field 5 bytes are summed over every SignalMessage of spqr_chain and
 * spqr_pingpong for spqr_overhead. */
static struct lspeer *g_ls;
static struct spair g_q, g_q_ref, g_qp;
static int g_qp_dir, g_lp_dir;
static double g_ping_us; /* one empty request to the Node driver */
static struct {
  int row;                     /* 0 spqr_chain, 1 spqr_pingpong */
  double bytes[2][2], msgs[2][2]; /* [row][0 sotto, 1 libsignal] */
} g_over;
static char g_pt_hex[2 * PT_LEN + 1];

static void ls_need(void) {
  char *w[LSPEER_MAX_WORDS];
  double t0;
  int i;
  if (g_ls != NULL) return;
  if ((g_ls = lspeer_start()) == NULL) die("lspeer_start", "the Node driver does not run (make deps)");
  for (i = 0; i < 2 * PT_LEN; i++) g_pt_hex[i] = "0123456789abcdef"[(i % 2) ? 0xb : 0xa];
  g_pt_hex[2 * PT_LEN] = '\0';
  for (i = 0; i < 50; i++) { /* warm-up */
    lspeer_begin(g_ls, "ping");
    if (lspeer_send(g_ls, w) != 0) die("node ping", lspeer_error(g_ls));
  }
  t0 = now();
  for (i = 0; i < 500; i++) {
    lspeer_begin(g_ls, "ping");
    if (lspeer_send(g_ls, w) != 0) die("node ping", lspeer_error(g_ls));
  }
  g_ping_us = (now() - t0) / 500 * 1e6;
}

/* One lsb_* request; returns the message length, adds field 5 bytes. */
static long ls_op(const char *cmd, const char *tag, const char *dir) {
  char *w[LSPEER_MAX_WORDS];
  lspeer_begin(g_ls, cmd);
  if (tag != NULL) lspeer_arg_str(g_ls, tag);
  if (dir != NULL) lspeer_arg_str(g_ls, dir);
  if (strcmp(cmd, "lsb_pair") != 0) lspeer_arg_str(g_ls, g_pt_hex);
  if (lspeer_send(g_ls, w) != (strcmp(cmd, "lsb_pair") == 0 ? 0 : 3)) die(cmd, lspeer_error(g_ls));
  if (strcmp(cmd, "lsb_pair") == 0) return 0;
  if (strcmp(w[0], "2") == 0) {
    g_over.bytes[g_over.row][1] += strtod(w[2], NULL);
    g_over.msgs[g_over.row][1] += 1;
  }
  return strtol(w[1], NULL, 10);
}

/* Field 5 bytes of one of our SignalMessages. */
static void s_over(const struct smsg *m) {
  struct sotto__signal_msg sm;
  if (m->type != SOTTO_MSG_SIGNAL) return;
  if (sotto__signal_msg_parse(&sm, m->b, m->len) != 0 || !sm.has_pq) die("spqr overhead", "no pq_ratchet field");
  g_over.bytes[g_over.row][0] += (double)(1 + (sm.pq_len >= 128 ? 2 : 1) + sm.pq_len);
  g_over.msgs[g_over.row][0] += 1;
}

/* As spair_open, version 4 from a last-resort ML-KEM pre-key, with SPQR
 * when spqr is set. */
static void qpair_open(struct spair *p, int spqr) {
  struct sotto_bundle bundle;
  memset(p, 0, sizeof *p);
  check_sotto(party_init(&p->a), "party_init");
  check_sotto(party_init(&p->b), "party_init");
  check_sotto(party_add_spk(&p->b, SPK_ID), "party_add_spk");
  check_sotto(party_add_opk(&p->b, OPK_ID), "party_add_opk");
  check_sotto(party_add_kem(&p->b, 40, 1), "party_add_kem");
  check_sotto(party_bundle_pq(&p->b, SPK_ID, OPK_ID, 40, &bundle), "party_bundle_pq");
  check_sotto(sotto_session_new(&p->sa), "sotto_session_new");
  check_sotto(sotto_session_new(&p->sb), "sotto_session_new");
  check_sotto(sotto_session_init_from_bundle_ex(p->sa, &p->a.id, &bundle,
                                                spqr ? SOTTO_INIT_SPQR : SOTTO_INIT_NO_SPQR),
              "init_from_bundle");
  s_send(p->sa, &g_smsg, SOTTO_MSG_PREKEY);
  s_recv(p->sb, &p->b, &g_smsg);
  s_send(p->sb, &g_smsg, SOTTO_MSG_SIGNAL);
  s_recv(p->sa, &p->a, &g_smsg);
}

static void spqr_setup_prepare(void) {
  ls_need();
  pqxdh_prepare();
}

/* As pqxdh_sotto, with SPQR: the braid and chain are made on both sides. */
static void spqr_setup_sotto(void) {
  struct sotto_session *sa = NULL, *sb = NULL;
  check_sotto(sotto_session_new(&sa), "sotto_session_new");
  check_sotto(sotto_session_new(&sb), "sotto_session_new");
  check_sotto(sotto_session_init_from_bundle_ex(sa, &g_setup.a.id, &g_pq_bundle, SOTTO_INIT_SPQR),
              "init_from_bundle (SPQR)");
  s_send(sa, &g_smsg, SOTTO_MSG_PREKEY);
  s_recv(sb, &g_setup.b, &g_smsg);
  sotto_session_free(sa);
  sotto_session_free(sb);
  party_restore_opk(&g_setup.b, OPK_ID, g_setup.opk_pub, g_setup.opk_priv);
}

static void spqr_setup_lib(void) { (void)ls_op("lsb_setup", NULL, NULL); }

static void spqr_chain_prepare(void) {
  ls_need();
  qpair_open(&g_q, 1);
  spair_open(&g_q_ref);
  (void)ls_op("lsb_pair", "q", NULL);
}

static void spqr_chain_sotto(void) {
  s_send(g_q.sa, &g_smsg, SOTTO_MSG_SIGNAL);
  s_over(&g_smsg);
  s_recv(g_q.sb, &g_q.b, &g_smsg);
}

static void spqr_chain_ref(void) {
  s_send(g_q_ref.sa, &g_smsg, SOTTO_MSG_SIGNAL);
  s_recv(g_q_ref.sb, &g_q_ref.b, &g_smsg);
}

static void spqr_chain_lib(void) { (void)ls_op("lsb_msg", "q", "0"); }

static void spqr_chain_finish(void) {
  spair_close(&g_q);
  spair_close(&g_q_ref);
}

static void spqr_pp_prepare(void) {
  ls_need();
  g_over.row = 1;
  qpair_open(&g_qp, 1);
  (void)ls_op("lsb_pair", "p", NULL);
}

static void spqr_pp_sotto(void) {
  if (g_qp_dir == 0) {
    s_send(g_qp.sa, &g_smsg, SOTTO_MSG_SIGNAL);
    s_over(&g_smsg);
    s_recv(g_qp.sb, &g_qp.b, &g_smsg);
  } else {
    s_send(g_qp.sb, &g_smsg, SOTTO_MSG_SIGNAL);
    s_over(&g_smsg);
    s_recv(g_qp.sa, &g_qp.a, &g_smsg);
  }
  g_qp_dir ^= 1;
}

static void spqr_pp_lib(void) {
  (void)ls_op("lsb_msg", "p", g_lp_dir ? "1" : "0");
  g_lp_dir ^= 1;
}

static void spqr_pp_finish(void) { spair_close(&g_qp); }

static void nothing(void) {}

/* spqr_overhead: the same conversation on both sides (fresh sessions, so
 * that the chain indices in pq_ratchet have the same varint sizes): 200
 * messages one way, then 200 alternating; field 5 bytes per SignalMessage. */
#define OVER_MSGS 200
static void spqr_overhead_measure(double *sotto, double *lib) {
  struct spair p;
  int i;
  ls_need();
  memset(&g_over, 0, sizeof g_over);
  qpair_open(&p, 1);
  (void)ls_op("lsb_pair", "o", NULL);
  for (i = 0; i < 2 * OVER_MSGS; i++) {
    int back = i >= OVER_MSGS && (i % 2) == 1;
    s_send(back ? p.sb : p.sa, &g_smsg, SOTTO_MSG_SIGNAL);
    s_over(&g_smsg);
    if (back)
      s_recv(p.sa, &p.a, &g_smsg);
    else
      s_recv(p.sb, &p.b, &g_smsg);
    (void)ls_op("lsb_msg", "o", back ? "1" : "0");
  }
  spair_close(&p);
  *sotto = g_over.msgs[0][0] > 0 ? g_over.bytes[0][0] / g_over.msgs[0][0] : 0;
  *lib = g_over.msgs[0][1] > 0 ? g_over.bytes[0][1] / g_over.msgs[0][1] : 0;
}

/* ---- measurement ---------------------------------------------------------------- */

/* fanout_crypto_N (docs/multi-device.md): one 100-byte message to N devices, as
 * the client's fan-out encrypts it: one PQXDH + SPQR session per device, the
 * sender's N encryptions, and each device's decryption of its copy (so the
 * sessions stay as in a conversation). Not measured here: the store and the
 * network round trip (one SEND_MULTI per message once the core fans out), and
 * the check of the recipient's signed device list (once per contact and
 * 30 s on a connection, not per message). fanout_crypto_4's target: a
 * message to 4 devices costs at most 4.5 times one to 1 device (reference:
 * the same sessions, one device). The rows fanout_1.._8, the send
 * path end to end through the server, are bench_fanout --protocol, which
 * bench/run protocol runs after this program. */
#define FANOUT_MAX 8
static struct spair g_fan[FANOUT_MAX];
static int g_fan_n;

static void fanout_open(int n) {
  int i;
  g_fan_n = n;
  for (i = 0; i < n; i++) qpair_open(&g_fan[i], 1);
}
static void fanout1_prepare(void) { fanout_open(1); }
static void fanout2_prepare(void) { fanout_open(2); }
static void fanout4_prepare(void) { fanout_open(4); }
static void fanout8_prepare(void) { fanout_open(8); }

static void fanout_op(int n) {
  int i;
  for (i = 0; i < n; i++) {
    s_send(g_fan[i].sa, &g_smsg, SOTTO_MSG_SIGNAL);
    s_recv(g_fan[i].sb, &g_fan[i].b, &g_smsg);
  }
}
static void fanout_sotto(void) { fanout_op(g_fan_n); }
/* the reference of fanout_crypto_4: the same sessions, one device */
static void fanout_ref(void) { fanout_op(1); }

static void fanout_finish(void) {
  int i;
  for (i = 0; i < g_fan_n; i++) spair_close(&g_fan[i]);
  g_fan_n = 0;
}

struct row {
  const char *name;
  void (*prepare)(void);
  void (*op_sotto)(void);
  void (*op_lib)(void);
  void (*op_floor)(void); /* NULL: no floor */
  void (*op_ref)(void);   /* libsotto reference for need_ref (NULL: none) */
  void (*finish)(void);
  const char *target;     /* as printed */
  double need_ratio;      /* sotto / libsignal-c at least this (0: no such target) */
  double need_floor;      /* sotto / floor at least this (0: none) */
  double need_ref;        /* sotto / reference at least this (0: none) */
  double max_us;          /* microseconds per sotto op at most this (0: none) */
  int node;               /* op_lib is libsignal 0.103 through Node, not libsignal-c */
  int overhead;           /* not measured: bytes of field 5 per message, from the rows before */
  double r_sotto[ROUNDS], r_lib[ROUNDS], r_floor[ROUNDS], r_ref[ROUNDS];
  double sotto, lib, floor, ref; /* medians; floor, ref < 0 when there is none */
};

static struct row g_rows[] = {
    {.name = "setup", .prepare = setup_prepare, .op_sotto = setup_sotto, .op_lib = setup_lib,
     .finish = setup_finish, .target = ">=4x", .need_ratio = 4.0},
    {.name = "chain", .prepare = chain_prepare, .op_sotto = chain_sotto, .op_lib = chain_lib,
     .op_floor = chain_floor, .finish = chain_finish, .target = ">=1.5x, >=0.7 floor",
     .need_ratio = 1.5, .need_floor = 0.7},
    {.name = "pingpong", .prepare = pingpong_prepare, .op_sotto = pingpong_sotto,
     .op_lib = pingpong_lib, .finish = pingpong_finish, .target = ">=3x", .need_ratio = 3.0},
    {.name = "group", .prepare = group_prepare, .op_sotto = group_sotto, .op_lib = group_lib,
     .finish = group_finish, .target = ">=2.5x", .need_ratio = 2.5},
    {.name = "skipped2000", .prepare = skipped_prepare, .op_sotto = skipped_sotto,
     .op_lib = skipped_lib, .op_ref = skipped_ref, .finish = skipped_finish,
     .target = ">=0.8 of chain", .need_ref = 0.8},
    {.name = "mlkem1024_keygen", .prepare = kem_prepare, .op_sotto = kem_keygen, .finish = kem_finish,
     .target = "report"},
    {.name = "mlkem1024_encaps", .prepare = kem_prepare, .op_sotto = kem_encaps, .finish = kem_finish,
     .target = "report"},
    {.name = "mlkem1024_decaps", .prepare = kem_prepare, .op_sotto = kem_decaps, .finish = kem_finish,
     .target = "report"},
    {.name = "pqxdh_setup", .prepare = pqxdh_prepare, .op_sotto = pqxdh_sotto, .op_lib = setup_lib,
     .op_ref = setup_sotto, .finish = setup_finish, .target = ">=2x, >=0.5 own setup", .need_ratio = 2.0,
     .need_ref = 0.5},
    {.name = "forged_msg", .prepare = forged_prepare, .op_sotto = forged_sotto, .op_ref = forged_valid,
     .finish = forged_finish, .target = "<=1000 us per msg", .max_us = 1000.0},
    {.name = "spqr_setup", .prepare = spqr_setup_prepare, .op_sotto = spqr_setup_sotto, .op_lib = spqr_setup_lib,
     .finish = setup_finish, .target = ">=2x", .need_ratio = 2.0, .node = 1},
    {.name = "spqr_chain", .prepare = spqr_chain_prepare, .op_sotto = spqr_chain_sotto, .op_lib = spqr_chain_lib,
     .op_ref = spqr_chain_ref, .finish = spqr_chain_finish, .target = ">=0.5 own chain", .need_ref = 0.5,
     .node = 1},
    {.name = "spqr_pingpong", .prepare = spqr_pp_prepare, .op_sotto = spqr_pp_sotto, .op_lib = spqr_pp_lib,
     .finish = spqr_pp_finish, .target = "report", .node = 1},
    {.name = "spqr_overhead", .prepare = nothing, .op_sotto = nothing, .finish = nothing,
     .target = "<= libsignal", .node = 1, .overhead = 1},
    {.name = "fanout_crypto_1", .prepare = fanout1_prepare, .op_sotto = fanout_sotto, .finish = fanout_finish,
     .target = "report"},
    {.name = "fanout_crypto_2", .prepare = fanout2_prepare, .op_sotto = fanout_sotto, .finish = fanout_finish,
     .target = "report"},
    {.name = "fanout_crypto_4", .prepare = fanout4_prepare, .op_sotto = fanout_sotto, .op_ref = fanout_ref,
     .finish = fanout_finish, .target = ">=0.22 of 1 device", .need_ref = 1.0 / 4.5},
    {.name = "fanout_crypto_8", .prepare = fanout8_prepare, .op_sotto = fanout_sotto, .finish = fanout_finish,
     .target = "report"},
};
#define N_ROWS (sizeof g_rows / sizeof g_rows[0])
#define CHAIN_ROW 1
#define SKIPPED_ROW 4
#define PQXDH_ROW 8
#define FORGED_ROW 9

/* Operations done and seconds spent by one side in one round. */
struct acc {
  double ops, secs;
};

/* Runs op for at least secs seconds (whole batches) and adds to a. */
static void measure(void (*op)(void), double secs, struct acc *a) {
  double t0 = now(), t;
  uint64_t n = 0;
  do {
    for (int i = 0; i < BATCH; i++) op();
    n += BATCH;
    t = now();
  } while (t - t0 < secs);
  a->ops += (double)n;
  a->secs += t - t0;
}

static double rate(const struct acc *a) { return a->secs > 0 ? a->ops / a->secs : 0; }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(const double *v) {
  double s[ROUNDS];
  memcpy(s, v, sizeof s);
  qsort(s, ROUNDS, sizeof s[0], cmp_double);
  return ROUNDS % 2 ? s[ROUNDS / 2] : (s[ROUNDS / 2 - 1] + s[ROUNDS / 2]) / 2;
}

/* Measures one row: a short warm-up of each side, then ROUNDS rounds. In a
 * round each side gets round_secs in SLICES turns; the two libraries take
 * turns, the one that goes first alternating, with the floor or reference
 * (if any) between them. Fine-grained turns make a burst of load from other
 * processes land on both sides alike. */
static void run_row(struct row *r, double round_secs, int progress) {
  double warm = round_secs / 8 < 0.05 ? round_secs / 8 : 0.05;
  double slice = round_secs / SLICES;
  struct acc w = {0, 0};
  g_row = r->name;
  if (progress) fprintf(stderr, "bench_protocol: %s...\n", r->name);
  if (r->overhead) {
    /* Bytes, not a rate: one fixed conversation on each side. */
    spqr_overhead_measure(&r->sotto, &r->lib);
    r->floor = r->ref = -1;
    return;
  }
  r->prepare();
  measure(r->op_sotto, warm, &w);
  if (r->op_lib) measure(r->op_lib, warm, &w);
  if (r->op_floor) measure(r->op_floor, warm, &w);
  if (r->op_ref) measure(r->op_ref, warm, &w);
  for (int k = 0; k < ROUNDS; k++) {
    struct acc as = {0, 0}, al = {0, 0}, af = {0, 0}, ar = {0, 0};
    for (int j = 0; j < SLICES; j++) {
      int sotto_first = (k * SLICES + j) % 2 == 0;
      if (sotto_first) measure(r->op_sotto, slice, &as);
      else if (r->op_lib) measure(r->op_lib, slice, &al);
      if (r->op_floor) measure(r->op_floor, slice, &af);
      if (r->op_ref) measure(r->op_ref, slice, &ar);
      if (sotto_first) {
        if (r->op_lib) measure(r->op_lib, slice, &al);
      } else {
        measure(r->op_sotto, slice, &as);
      }
    }
    r->r_sotto[k] = rate(&as);
    r->r_lib[k] = rate(&al);
    r->r_floor[k] = rate(&af);
    r->r_ref[k] = rate(&ar);
  }
  r->finish();
  r->sotto = median(r->r_sotto);
  r->lib = r->op_lib ? median(r->r_lib) : -1;
  r->floor = r->op_floor ? median(r->r_floor) : -1;
  r->ref = r->op_ref ? median(r->r_ref) : -1;
}

static int row_ok(const struct row *r) {
  if (r->overhead) return r->sotto > 0 && r->sotto <= r->lib;
  if (r->need_ratio > 0 && r->sotto < r->need_ratio * r->lib) return 0;
  if (r->need_floor > 0 && r->sotto < r->need_floor * r->floor) return 0;
  if (r->need_ref > 0 && r->sotto < r->need_ref * r->ref) return 0;
  if (r->max_us > 0 && !(r->sotto > 0 && 1e6 / r->sotto <= r->max_us)) return 0;
  return 1;
}

/* ---- output ------------------------------------------------------------------- */

/* Formats a rate with thousands separators ("54,481"). */
static const char *fmt_rate(char buf[32], double v) {
  char digits[32];
  int n, i, o = 0;
  if (v < 0) return "-";
  n = snprintf(digits, sizeof digits, "%.0f", v);
  if (n <= 0 || n >= (int)sizeof digits) return "?";
  for (i = 0; i < n; i++) {
    if (i > 0 && (n - i) % 3 == 0) buf[o++] = ',';
    buf[o++] = digits[i];
  }
  buf[o] = '\0';
  return buf;
}

/* Lowest and highest per-round ratio sotto / libsignal-c of a row. */
static void ratio_range(const struct row *r, double *lo, double *hi) {
  if (!r->op_lib) {
    *lo = *hi = 0;
    return;
  }
  *lo = *hi = r->r_sotto[0] / r->r_lib[0];
  for (int k = 1; k < ROUNDS; k++) {
    double q = r->r_sotto[k] / r->r_lib[k];
    if (q < *lo) *lo = q;
    if (q > *hi) *hi = q;
  }
}

static void print_table(double round_secs) {
  char a[32], b[32], c[32];
  size_t i;
  printf("libsotto vs libsignal-protocol-c 2.3.3: %d-byte plaintexts, median of %d rounds, "
         "%.2f s per library per round\n\n",
         PT_LEN, ROUNDS, round_secs);
  printf("%-17s %12s %17s %8s %12s %12s  %-22s %s\n", "row", "sotto ops/s", "libsignal-c ops/s",
         "ratio", "floor ops/s", "sotto/floor", "target", "verdict");
  for (i = 0; i < N_ROWS; i++) {
    const struct row *r = &g_rows[i];
    char sf[16];
    if (r->node) continue;
    if (r->floor > 0)
      snprintf(sf, sizeof sf, "%.2f", r->sotto / r->floor);
    else
      snprintf(sf, sizeof sf, "-");
    char ratio[16];
    if (r->lib > 0)
      snprintf(ratio, sizeof ratio, "%.2fx", r->sotto / r->lib);
    else
      snprintf(ratio, sizeof ratio, "-");
    printf("%-17s %12s %17s %8s %12s %12s  %-22s %s\n", r->name, fmt_rate(a, r->sotto), fmt_rate(b, r->lib),
           ratio, fmt_rate(c, r->floor), sf, r->target, row_ok(r) ? "OK" : "BELOW");
  }
  printf("\nskipped2000 vs chain: libsotto at %.2f of a plain chain measured in the same rounds (%s ops/s);\n"
         "                      libsignal-c at %.3f of its chain row\n",
         g_rows[SKIPPED_ROW].sotto / g_rows[SKIPPED_ROW].ref, fmt_rate(a, g_rows[SKIPPED_ROW].ref),
         g_rows[SKIPPED_ROW].lib / g_rows[CHAIN_ROW].lib);
  printf("pqxdh_setup vs setup: libsotto version 4 at %.2f of its own X3DH setup measured in the same rounds"
         " (%s ops/s)\n",
         g_rows[PQXDH_ROW].sotto / g_rows[PQXDH_ROW].ref, fmt_rate(a, g_rows[PQXDH_ROW].ref));
  printf("forged_msg: %.0f us per forged SignalMessage (%s) against a record with %d archived states;\n"
         "            a valid message on the same record %.1f us (encrypt + decrypt): "
         "a forgery costs %.0f of them\n",
         1e6 / g_rows[FORGED_ROW].sotto, g_forged.what[g_forged.worst], SOTTO_MAX_ARCHIVED_STATES,
         1e6 / g_rows[FORGED_ROW].ref, g_rows[FORGED_ROW].ref / g_rows[FORGED_ROW].sotto);
  printf("            CPU time of this process (without waiting for a CPU): %.0f us per forged message,"
         " %.1f us per valid one\n",
         g_forged.cpu_us, g_forged.cpu_valid_us);
  printf("            the kinds tried (us, %d decrypts each):", FORGED_PROBES);
  for (i = 0; i < FORGED_KINDS; i++)
    printf("%s %s %.0f", i ? ";" : "", g_forged.what[i], g_forged.probe_us[i]);
  printf("\n");
  printf("\nlibsotto vs libsignal 0.103 (@signalapp/libsignal-client through Node: every libsignal op\n"
         "includes one request over the pipe, %.1f us as measured with an empty request)\n\n", g_ping_us);
  printf("%-17s %12s %17s %8s %12s %12s  %-22s %s\n", "row", "sotto ops/s", "libsignal ops/s", "ratio",
         "ref ops/s", "sotto/ref", "target", "verdict");
  for (i = 0; i < N_ROWS; i++) {
    const struct row *r = &g_rows[i];
    char ratio[16], sr[16];
    if (!r->node) continue;
    if (r->overhead) {
      printf("%-17s %9.1f B %14.1f B %8s %12s %12s  %-22s %s\n", r->name, r->sotto, r->lib, "-", "-", "-",
             r->target, row_ok(r) ? "OK" : "BELOW");
      continue;
    }
    snprintf(ratio, sizeof ratio, "%.2fx", r->sotto / r->lib);
    if (r->ref > 0)
      snprintf(sr, sizeof sr, "%.2f", r->sotto / r->ref);
    else
      snprintf(sr, sizeof sr, "-");
    printf("%-17s %12s %17s %8s %12s %12s  %-22s %s\n", r->name, fmt_rate(a, r->sotto), fmt_rate(b, r->lib),
           ratio, fmt_rate(c, r->ref), sr, r->target, row_ok(r) ? "OK" : "BELOW");
  }
  printf("(spqr_overhead: bytes of the pq_ratchet field per SignalMessage over the same conversation on each side,\n"
         " %d messages one way then %d alternating, on fresh sessions;\n", OVER_MSGS, OVER_MSGS);
  printf(
      " spqr_chain's ref is libsotto's chain without SPQR (version 3; the same Double Ratchet) in the same "
      "rounds)\n\n");
  printf("ratio per round, lowest-highest:");
  for (i = 0; i < N_ROWS; i++) {
    double lo, hi;
    if (!g_rows[i].op_lib) continue;
    ratio_range(&g_rows[i], &lo, &hi);
    printf(" %s %.2f-%.2f", g_rows[i].name, lo, hi);
  }
  printf("\n");

  printf("\n%-52s %8s %12s\n", "size in bytes", "sotto", "libsignal-c");
#define SIZE_LINE(label, f) printf("%-52s %8zu %12zu\n", label, g_size.f[0], g_size.f[1])
  SIZE_LINE("session record after chain, sender", chain_sender);
  SIZE_LINE("session record after chain, receiver", chain_receiver);
  SIZE_LINE("session record after pingpong (initiator)", pingpong);
  SIZE_LINE("session record holding 2000 skipped keys", skipped);
  SIZE_LINE("PreKeySignalMessage (first message, 100 B)", prekey_msg);
  SIZE_LINE("SignalMessage (100 B)", signal_msg);
  SIZE_LINE("SenderKeyMessage (100 B)", senderkey_msg);
  SIZE_LINE("SenderKeyDistributionMessage", skdm);
#undef SIZE_LINE
  printf("%-52s %8zu %12s\n", "PreKeySignalMessage v4 (PQXDH, first message, 100 B)", g_size.prekey_msg_v4, "-");
  printf("%-52s %8d %12s\n", "pre-key bundle v4 keys+signatures (IK,SPK,sig,OPK,KEM,sig)",
         33 + 33 + 64 + 33 + SOTTO_KEM_PUBKEY_LEN + 64, "-");
  printf("\n(sotto records are in libsotto's own serialization, libsignal-c's are its RecordStructure)\n");
}

static void print_json(void) {
  size_t i;
  for (i = 0; i < N_ROWS; i++) {
    const struct row *r = &g_rows[i];
    if (r->overhead) {
      printf("{\"bench\":\"%s\",\"unit\":\"bytes\",\"sotto\":%.1f,\"libsignal\":%.1f}\n", r->name, r->sotto,
             r->lib);
      continue;
    }
    if (r->node) {
      printf("{\"bench\":\"%s\",\"unit\":\"ops/s\",\"sotto\":%.1f,\"libsignal\":%.1f,\"ref\":", r->name,
             r->sotto, r->lib);
      if (r->ref > 0)
        printf("%.1f,\"node_call_us\":%.1f}\n", r->ref, g_ping_us);
      else
        printf("null,\"node_call_us\":%.1f}\n", g_ping_us);
      continue;
    }
    if (r->max_us > 0) {
      /* A cost row: microseconds per op, the valid-message reference next to it. */
      printf("{\"bench\":\"%s\",\"unit\":\"us\",\"sotto\":%.1f,\"libsignal_c\":null,\"floor\":null,"
             "\"valid_sotto\":%.1f,\"cpu_sotto\":%.1f,\"cpu_valid_sotto\":%.1f}\n",
             r->name, 1e6 / r->sotto, 1e6 / r->ref, g_forged.cpu_us, g_forged.cpu_valid_us);
      continue;
    }
    printf("{\"bench\":\"%s\",\"unit\":\"ops/s\",\"sotto\":%.1f,\"libsignal_c\":", r->name, r->sotto);
    if (r->lib > 0)
      printf("%.1f,\"floor\":", r->lib);
    else
      printf("null,\"floor\":");
    if (r->floor > 0)
      printf("%.1f}\n", r->floor);
    else
      printf("null}\n");
  }
#define SIZE_JSON(name, f)                                                                       \
  printf("{\"bench\":\"%s\",\"unit\":\"bytes\",\"sotto\":%zu,\"libsignal_c\":%zu,\"floor\":null}\n", \
         name, g_size.f[0], g_size.f[1])
  SIZE_JSON("size_session_chain_sender", chain_sender);
  SIZE_JSON("size_session_chain_receiver", chain_receiver);
  SIZE_JSON("size_session_pingpong", pingpong);
  SIZE_JSON("size_session_skipped2000", skipped);
  SIZE_JSON("size_prekey_message", prekey_msg);
  SIZE_JSON("size_signal_message", signal_msg);
  SIZE_JSON("size_senderkey_message", senderkey_msg);
  SIZE_JSON("size_skdm", skdm);
#undef SIZE_JSON
  printf("{\"bench\":\"size_prekey_message_v4\",\"unit\":\"bytes\",\"sotto\":%zu,\"libsignal_c\":null,\"floor\":null}\n",
         g_size.prekey_msg_v4);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: bench_protocol [--json] [--seconds S] [--smoke]\n"
          "  --json       one JSON object per line, nothing else on stdout\n"
          "  --seconds S  measuring time per library per row (default %.0f), split into %d rounds\n"
          "  --smoke      every row for %.1f s per library (CI): no figure is judged, but the program\n"
          "               fails if a row measured nothing\n",
          DEFAULT_SECONDS, ROUNDS, SMOKE_SECONDS);
}

static int rate_ok(double v) { return isfinite(v) && v > 0; }

/* --smoke: every row of g_rows measured something on each side it has.
 * Returns the exit status. */
static int smoke_check(void) {
  size_t i;
  int bad = 0;
  for (i = 0; i < N_ROWS; i++) {
    const struct row *r = &g_rows[i];
    if (!rate_ok(r->sotto) || (r->op_lib && !rate_ok(r->lib)) || (r->op_floor && !rate_ok(r->floor)) ||
        (r->op_ref && !rate_ok(r->ref)) || (r->overhead && !rate_ok(r->lib))) {
      fprintf(stderr, "bench_protocol --smoke: row %s measured nothing (sotto %g, libsignal-c %g, floor %g, ref %g)\n",
              r->name, r->sotto, r->lib, r->floor, r->ref);
      bad = 1;
    }
  }
  if (bad) return 1;
  fprintf(stderr, "bench_protocol --smoke: all %zu rows produced (figures not judged)\n", N_ROWS);
  return 0;
}

int main(int argc, char **argv) {
  double secs = DEFAULT_SECONDS;
  int json = 0, smoke = 0, i, progress;
  size_t k;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if (strcmp(argv[i], "--seconds") == 0) {
      char *end = NULL;
      if (i + 1 == argc) {
        fprintf(stderr, "bench_protocol: --seconds needs a value\n");
        return 2;
      }
      secs = strtod(argv[++i], &end);
      if (end == argv[i] || *end != '\0' || !(secs > 0 && secs <= MAX_SECONDS)) {
        fprintf(stderr, "bench_protocol: --seconds wants a number in (0, %.0f], got '%s'\n", MAX_SECONDS,
                argv[i]);
        return 2;
      }
    } else if (strcmp(argv[i], "--smoke") == 0) {
      smoke = 1;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "bench_protocol: unknown argument '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  check_sotto(sotto_init(), "sotto_init");
  memset(g_pt, 'x', sizeof g_pt);
  memset(g_floor.send_ck, 0x42, 32);
  memset(g_floor.recv_ck, 0x42, 32);
  memset(g_floor.wire, 0x5a, sizeof g_floor.wire);

  if (smoke) secs = SMOKE_SECONDS;
  progress = isatty(STDERR_FILENO);
  for (k = 0; k < N_ROWS; k++) run_row(&g_rows[k], secs / ROUNDS, progress);

  if (json || smoke)
    print_json();
  else
    print_table(secs / ROUNDS);
  if (g_ls != NULL) lspeer_stop(g_ls);
  if (fflush(stdout) != 0) return 1;
  return smoke ? smoke_check() : 0;
}
