/* SPDX-License-Identifier: Apache-2.0 */
/* test_ls_session: whole 1:1 sessions between libsotto (PQXDH + SPQR, the
 * default of version 4) and @signalapp/libsignal-client 0.103.0 (which
 * runs SPQR on every message), started from either side:
 *
 *  - 1,000 messages in bursts of 1..8, alternating or not, some bursts
 *    delivered reversed, about 1 in 12 messages dropped for good and 1 in 20
 *    held back and delivered one burst later; every other message must
 *    decrypt to its plaintext on the other side;
 *  - both sides restart from their serialized records every 150 messages
 *    (sotto_session_serialize / _deserialize; libsignal's SessionRecord
 *    through serialize / deserialize);
 *  - several SPQR epochs complete (the epoch in pq_ratchet keeps rising);
 *  - mid-conversation, every single bit flip of one message in each
 *    direction is refused and changes nothing (our record stays byte for
 *    byte the same; libsignal then still takes the original message);
 *  - addresses (field 6): we write sender and recipient service ids on
 *    every message, libsignal on its PreKeySignalMessages (its
 *    message_encrypt passes the local address only there); both check them
 *    when present: libsignal's first message is refused by us (record
 *    unchanged, no pre-key used) whenever the addresses we expect differ in
 *    any part, and libsignal refuses one of ours naming the wrong sender
 *    with the error of a failed MAC;
 *  - a message lost in the middle of a chunk sequence (an SPQR header, key
 *    or ciphertext being streamed) in each direction: the object completes
 *    from later chunks and the epochs move past it.
 */
#include <stdlib.h>
#include <string.h>

#include <sotto/keys.h>
#include <sotto/session.h>

#include "lstest.h"
#include "spqr/msg.h"
#include "wire/messages.h"

#define N_MSGS 1000
#define MAX_MSG 4096

static struct lspeer *P;
static const uint8_t ACI_L[16] = {0xc3, 0xc3, 0x01, 0x02, 0x03, 0x04, 0x45, 0x06,
                                  0x87, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x10};
static const uint8_t ACI_S[16] = {0xd4, 0xd4, 0x01, 0x02, 0x03, 0x04, 0x45, 0x06,
                                  0x87, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x11};

/* Field 6 as we expect it, both ways: we are ACI_S device 1, libsignal's
 * party ACI_L device 1. */
static struct sotto_addresses AD;

static void set_addr(struct sotto_address *a, const uint8_t aci[16], uint32_t dev) {
  memset(a, 0, sizeof *a);
  a->kind = SOTTO_ADDRESS_SERVICE_ID;
  a->service_id[0] = 0; /* ACI */
  memcpy(a->service_id + 1, aci, 16);
  a->device_id = dev;
}

/* Our side: identity, signed pre-key 1, one-time pre-key 7, Kyber pre-key 30. */
static struct sotto_identity me;
static uint8_t spk_pub[32], spk_priv[32], spk_sig[64], opk_pub[32], opk_priv[32];
static uint8_t kem_pub[SOTTO_KEM_PUBKEY_LEN], kem_sk[SOTTO_KEM_SECRETKEY_LEN], kem_sig[64];

static int load_spk(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]) {
  (void)ud;
  if (id != 1) return SOTTO_ERR_UNKNOWN_PREKEY;
  memcpy(pub, spk_pub, 32);
  memcpy(priv, spk_priv, 32);
  return 0;
}

static int load_opk(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]) {
  (void)ud;
  if (id != 7) return SOTTO_ERR_UNKNOWN_PREKEY;
  memcpy(pub, opk_pub, 32);
  memcpy(priv, opk_priv, 32);
  return 0;
}

static int load_kem(void *ud, uint32_t id, uint8_t sk[SOTTO_KEM_SECRETKEY_LEN]) {
  (void)ud;
  if (id != 30) return SOTTO_ERR_UNKNOWN_PREKEY;
  memcpy(sk, kem_sk, sizeof kem_sk);
  return 0;
}

static const struct sotto_prekey_store store = {NULL, load_spk, load_opk, NULL, NULL, load_kem, NULL};

static uint64_t rng_state;
static uint32_t rnd(uint32_t n) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state % n);
}

struct msg {
  int from_sotto;
  int type;
  int id;
  size_t len;
  uint8_t b[MAX_MSG];
};

static struct sotto_session *S; /* our record */
static uint64_t max_epoch;
static unsigned delivered, dropped, held, restarts;

static void plaintext(char out[64], int id) { snprintf(out, 64, "message %d of the conversation", id); }

/* The SPQR epoch named by a message's pq_ratchet field (0 if none). */
static uint64_t pq_epoch(const struct msg *m) {
  struct sotto__prekey_msg pm;
  struct sotto__signal_msg sm;
  struct sotto__spqr_msg q;
  const uint8_t *p = m->b;
  size_t n = m->len;
  if (m->type == SOTTO_MSG_PREKEY) {
    if (sotto__prekey_msg_parse(&pm, m->b, m->len) != 0) return 0;
    p = pm.message;
    n = pm.message_len;
  }
  if (sotto__signal_msg_parse(&sm, p, n) != 0 || !sm.has_pq) return 0;
  if (sotto__spqr_msg_parse(&q, NULL, sm.pq, sm.pq_len) != 0) return 0;
  return q.epoch;
}

/* The SignalMessage inside m (0) or -1. */
static int signal_of(const struct msg *m, struct sotto__signal_msg *sm) {
  struct sotto__prekey_msg pm;
  const uint8_t *p = m->b;
  size_t n = m->len;
  if (m->type == SOTTO_MSG_PREKEY) {
    if (sotto__prekey_msg_parse(&pm, m->b, m->len) != 0) return -1;
    p = pm.message;
    n = pm.message_len;
  }
  return sotto__signal_msg_parse(sm, p, n) == 0 ? 0 : -1;
}

/* The SPQR message in m's pq_ratchet field (-1 if none). */
static int pq_msg(const struct msg *m, struct sotto__spqr_msg *q) {
  struct sotto__signal_msg sm;
  if (signal_of(m, &sm) != 0 || !sm.has_pq) return -1;
  return sotto__spqr_msg_parse(q, NULL, sm.pq, sm.pq_len) == 0 ? 0 : -1;
}

static int ls_encrypt(struct msg *m, int id) {
  char *w[LSPEER_MAX_WORDS], pt[64];
  long n;
  plaintext(pt, id);
  lspeer_begin(P, "encrypt");
  lspeer_arg_str(P, "lib");
  lspeer_arg_hex(P, ACI_S, 16);
  lspeer_arg_u(P, 1);
  lspeer_arg_hex(P, (const uint8_t *)pt, strlen(pt));
  if (lspeer_send(P, w) != 2) return -1;
  m->from_sotto = 0;
  m->type = atoi(w[0]);
  m->id = id;
  n = lspeer_unhex(m->b, sizeof m->b, w[1]);
  if (n <= 0) return -1;
  m->len = (size_t)n;
  return 0;
}

static int so_encrypt(struct msg *m, int id) {
  char pt[64];
  plaintext(pt, id);
  m->from_sotto = 1;
  m->id = id;
  return sotto_session_encrypt_addressed(S, &AD, m->b, sizeof m->b, &m->len, &m->type, (const uint8_t *)pt,
                                         strlen(pt));
}

/* Delivers m to the other side: 0 when it decrypted to its plaintext. */
static int ls_decrypt(const struct msg *m) {
  char *w[LSPEER_MAX_WORDS], pt[64];
  uint8_t got[128];
  long n;
  plaintext(pt, m->id);
  lspeer_begin(P, "decrypt");
  lspeer_arg_str(P, "lib");
  lspeer_arg_hex(P, ACI_S, 16);
  lspeer_arg_u(P, 1);
  lspeer_arg_u(P, (unsigned long)m->type);
  lspeer_arg_hex(P, m->b, m->len);
  if (lspeer_send(P, w) != 1) return -1;
  n = lspeer_unhex(got, sizeof got, w[0]);
  return n == (long)strlen(pt) && memcmp(got, pt, (size_t)n) == 0 ? 0 : -2;
}

static int so_decrypt(const struct msg *m) {
  char pt[64];
  uint8_t got[MAX_MSG];
  size_t n = 0;
  int rc;
  plaintext(pt, m->id);
  rc = sotto_session_decrypt_addressed(S, &me, &store, &AD, m->type, m->b, m->len, got, sizeof got, &n, NULL);
  if (rc != 0) return rc;
  return n == strlen(pt) && memcmp(got, pt, n) == 0 ? 0 : -1000;
}

static void deliver(const struct msg *m) {
  int rc = m->from_sotto ? ls_decrypt(m) : so_decrypt(m);
  uint64_t e = pq_epoch(m);
  if (e > max_epoch) max_epoch = e;
  CHECK(rc == 0);
  if (rc != 0)
    fprintf(stderr, "message %d (%s -> %s, type %d) failed: %s\n", m->id, m->from_sotto ? "sotto" : "libsignal",
            m->from_sotto ? "libsignal" : "sotto", m->type, m->from_sotto ? lspeer_error(P) : tu_errname(rc));
  delivered++;
}

/* Both sides restart from their serialized records. */
static void restart(void) {
  char *w[LSPEER_MAX_WORDS];
  uint8_t *rec;
  size_t n = sotto_session_serialized_size(S), got = 0;
  struct sotto_session *s2 = NULL;
  char *lrec;

  rec = malloc(n);
  LS_REQUIRE(P, rec != NULL);
  CHECK_RC(sotto_session_serialize(S, rec, n, &got), 0);
  CHECK(got == n && n > 6 && rec[3] == 2); /* format 2: the state runs SPQR */
  CHECK_RC(sotto_session_deserialize(&s2, rec, got), 0);
  free(rec);
  if (s2 != NULL) {
    sotto_session_free(S);
    S = s2;
  }
  lspeer_begin(P, "session");
  lspeer_arg_str(P, "lib");
  lspeer_arg_hex(P, ACI_S, 16);
  lspeer_arg_u(P, 1);
  LS_REQUIRE(P, lspeer_send(P, w) == 1 && strcmp(w[0], "-") != 0);
  lrec = strdup(w[0]);
  LS_REQUIRE(P, lrec != NULL);
  lspeer_begin(P, "set_session");
  lspeer_arg_str(P, "lib");
  lspeer_arg_hex(P, ACI_S, 16);
  lspeer_arg_u(P, 1);
  lspeer_arg_str(P, lrec);
  free(lrec);
  LS_REQUIRE(P, lspeer_send(P, w) == 0);
  restarts++;
}

/* Every bit flip of m is refused by its receiver and changes nothing; then
 * the original message is delivered. */
static void bit_flips(struct msg *m) {
  struct msg *f = malloc(sizeof *f);
  uint8_t *before = NULL, *after = NULL;
  size_t nb = 0, na = 0, cap = 0;
  unsigned refused = 0, bits = (unsigned)m->len * 8, codes[64] = {0};
  int rc;

  LS_REQUIRE(P, f != NULL);
  if (!m->from_sotto) {
    cap = sotto_session_serialized_size(S);
    before = malloc(cap);
    after = malloc(cap);
    if (before == NULL || after == NULL || sotto_session_serialize(S, before, cap, &nb) != 0) goto out;
  }
  for (unsigned i = 0; i < bits; i++) {
    *f = *m;
    f->b[i / 8] ^= (uint8_t)(1u << (i % 8));
    if (m->from_sotto) {
      rc = ls_decrypt(f);
      if (rc == -1) refused++;
    } else {
      rc = so_decrypt(f);
      if (rc < 0 && rc > -64) {
        refused++;
        codes[-rc]++;
      }
      if (sotto_session_serialize(S, after, cap, &na) != 0 || na != nb || memcmp(before, after, nb) != 0) {
        CHECK(!"a refused bit flip changed our record");
        break;
      }
    }
  }
  CHECK(refused == bits);
  printf("%s -> %s: all %u of %u bit flips refused", m->from_sotto ? "sotto" : "libsignal",
         m->from_sotto ? "libsignal" : "sotto", refused, bits);
  if (!m->from_sotto) {
    printf(" (");
    for (int c = 1; c < 64; c++)
      if (codes[c]) printf(" %s x%u", tu_errname(-c), codes[c]);
    printf(" ), record unchanged");
  }
  printf("\n");
  deliver(m); /* the original still opens */
out:
  free(before);
  free(after);
  free(f);
}

/* m (libsignal's first message, a PreKeySignalMessage, not yet delivered)
 * carries field 6 as libsignal writes it, and we refuse it, record
 * unchanged and no pre-key used, whenever the addresses we expect differ in
 * any part; the caller then delivers it with the right ones. */
static unsigned addr_refused, addr_seen[2];
static void addresses_from_libsignal(const struct msg *m) {
  struct sotto__signal_msg sm;
  struct sotto_addresses bad;
  uint8_t *before = NULL, *after = NULL, got[MAX_MSG];
  size_t cap = sotto_session_serialized_size(S), nb = 0, na = 0, n = 0;

  if (signal_of(m, &sm) != 0) {
    CHECK(!"libsignal's message does not parse");
    return;
  }
  /* sender ACI_L device 1, recipient ACI_S device 1: 36 bytes */
  CHECK(sm.has_addr && sm.addr_len == 36 && sm.addr[0] == 0 && memcmp(sm.addr + 1, ACI_L, 16) == 0 &&
        sm.addr[17] == 1 && sm.addr[18] == 0 && memcmp(sm.addr + 19, ACI_S, 16) == 0 && sm.addr[35] == 1);
  before = malloc(cap);
  after = malloc(cap);
  if (before == NULL || after == NULL || sotto_session_serialize(S, before, cap, &nb) != 0) goto out;
  for (int v = 0; v < 6; v++) {
    int rc;
    bad = AD;
    switch (v) {
      case 0:
        bad.remote.device_id = 2;
        break; /* another device of the sender */
      case 1:
        bad.remote.service_id[16] ^= 1;
        break; /* another sender */
      case 2:
        bad.local.service_id[5] ^= 0x80;
        break; /* another recipient */
      case 3:
        bad.local.device_id = 3;
        break; /* another device of ours */
      case 4:
        bad.remote.service_id[0] = 1;
        break; /* the sender's PNI */
      default: /* sotto usernames instead of service ids */
        bad.remote.kind = bad.local.kind = SOTTO_ADDRESS_NAME;
        bad.remote.name = "lib";
        bad.local.name = "sotto";
        break;
    }
    rc = sotto_session_decrypt_addressed(S, &me, &store, &bad, m->type, m->b, m->len, got, sizeof got, &n,
                                         NULL);
    CHECK_RC(rc, SOTTO_ERR_AUTH);
    if (rc == SOTTO_ERR_AUTH) addr_refused++;
    if (sotto_session_serialize(S, after, cap, &na) != 0 || na != nb || memcmp(before, after, nb) != 0)
      CHECK(!"a refused address changed our record");
  }
out:
  free(before);
  free(after);
}

/* One message of ours naming another sender (our device 2): libsignal
 * refuses it with the error of a failed MAC. Our chain moved on, as for a
 * lost message. */
static void addresses_to_libsignal(void) {
  struct sotto_addresses bad = AD;
  struct msg *m = malloc(sizeof *m);
  char pt[64];
  int rc;
  LS_REQUIRE(P, m != NULL);
  bad.local.device_id = 2;
  plaintext(pt, 99999);
  m->from_sotto = 1;
  m->id = 99999;
  CHECK_RC(sotto_session_encrypt_addressed(S, &bad, m->b, sizeof m->b, &m->len, &m->type, (const uint8_t *)pt,
                                           strlen(pt)),
           0);
  rc = ls_decrypt(m);
  CHECK(rc == -1 && strstr(lspeer_error(P), "decryption failed") != NULL);
  printf("sotto -> libsignal naming the wrong sender device: refused (\"%s\")\n", lspeer_error(P));
  free(m);
}

static void make_libsignal_party(void) {
  char *w[LSPEER_MAX_WORDS];
  lspeer_begin(P, "party");
  lspeer_arg_str(P, "lib");
  lspeer_arg_hex(P, ACI_L, 16);
  lspeer_arg_u(P, 1);
  LS_REQUIRE(P, lspeer_send(P, w) == 2);
}

/* sotto initiates from libsignal's bundle with the defaults (version 4
 * runs SPQR). */
static int start_sotto(void) {
  char *w[LSPEER_MAX_WORDS];
  struct sotto_bundle b;
  uint8_t tmp[SOTTO_KEM_PUBKEY_LEN + 8];
  int ok = 1;

  lspeer_begin(P, "bundle");
  lspeer_arg_str(P, "lib");
  lspeer_arg_u(P, 1);
  if (lspeer_send(P, w) != 11) return -1;
  memset(&b, 0, sizeof b);
  b.registration_id = (uint32_t)strtoul(w[0], NULL, 10);
  b.device_id = (uint32_t)strtoul(w[1], NULL, 10);
  b.has_one_time_prekey = 1;
  b.one_time_prekey_id = (uint32_t)strtoul(w[2], NULL, 10);
  ok &= lspeer_unhex(tmp, sizeof tmp, w[3]) == 33 && sotto_pubkey_parse(b.one_time_prekey, tmp, 33) == 0;
  b.signed_prekey_id = (uint32_t)strtoul(w[4], NULL, 10);
  ok &= lspeer_unhex(tmp, sizeof tmp, w[5]) == 33 && sotto_pubkey_parse(b.signed_prekey, tmp, 33) == 0;
  ok &= lspeer_unhex(b.signed_prekey_sig, 64, w[6]) == 64;
  ok &= lspeer_unhex(tmp, sizeof tmp, w[7]) == 33 && sotto_pubkey_parse(b.identity_key, tmp, 33) == 0;
  b.has_kem_prekey = 1;
  b.kem_prekey_id = (uint32_t)strtoul(w[8], NULL, 10);
  ok &= lspeer_unhex(b.kem_prekey, sizeof b.kem_prekey, w[9]) == SOTTO_KEM_PUBKEY_LEN;
  ok &= lspeer_unhex(b.kem_prekey_sig, 64, w[10]) == 64;
  if (!ok) return -1;
  {
    /* SPQR needs PQXDH: no silent fallback for a bundle without a KEM key. */
    struct sotto_bundle nb = b;
    nb.has_kem_prekey = 0;
    CHECK_RC(sotto_session_init_from_bundle_ex(S, &me, &nb, SOTTO_INIT_SPQR | SOTTO_INIT_ALLOW_X3DH),
             SOTTO_ERR_DOWNGRADE);
  }
  return sotto_session_init_from_bundle(S, &me, &b);
}

/* libsignal initiates from our bundle (Kyber-1024 pre-key). */
static int start_libsignal(void) {
  char *w[LSPEER_MAX_WORDS];
  uint8_t ik33[33], spk33[33], opk33[33];
  sotto_pubkey_serialize(ik33, me.pub);
  sotto_pubkey_serialize(spk33, spk_pub);
  sotto_pubkey_serialize(opk33, opk_pub);
  lspeer_begin(P, "process_bundle");
  lspeer_arg_str(P, "lib");
  lspeer_arg_hex(P, ACI_S, 16);
  lspeer_arg_u(P, 1);
  lspeer_arg_u(P, me.registration_id);
  lspeer_arg_u(P, 7);
  lspeer_arg_hex(P, opk33, 33);
  lspeer_arg_u(P, 1);
  lspeer_arg_hex(P, spk33, 33);
  lspeer_arg_hex(P, spk_sig, 64);
  lspeer_arg_hex(P, ik33, 33);
  lspeer_arg_u(P, 30);
  lspeer_arg_hex(P, kem_pub, sizeof kem_pub);
  lspeer_arg_hex(P, kem_sig, 64);
  return lspeer_send(P, w) == 0 ? 0 : -1;
}

static void conversation(int sotto_first) {
  static struct msg burst[8], late[8];
  unsigned n_late = 0, late_from = 0;
  int id = 0, from_sotto = sotto_first, flipped[2] = {0, 0}, addr_done[2] = {0, 0};
  /* mid-chunk loss per direction (index from_sotto): the epoch then */
  uint64_t lost_epoch[2] = {0, 0};
  int lost_type[2] = {0, 0}, lost_chunk[2] = {0, 0};

  max_epoch = 0;
  delivered = dropped = held = restarts = addr_refused = 0;
  addr_seen[0] = addr_seen[1] = 0;
  CHECK_RC(sotto_session_new(&S), 0);
  make_libsignal_party();
  if (sotto_first) {
    CHECK_RC(start_sotto(), 0);
  } else {
    LS_REQUIRE(P, start_libsignal() == 0);
  }
  while (id < N_MSGS) {
    unsigned n = 1 + rnd(8), order[8];
    int rev;
    if (n > (unsigned)(N_MSGS - id)) n = (unsigned)(N_MSGS - id);
    if (from_sotto && !addr_done[1] && id > 450) {
      addr_done[1] = 1;
      addresses_to_libsignal();
    }
    for (unsigned i = 0; i < n; i++) {
      int rc = from_sotto ? so_encrypt(&burst[i], id) : ls_encrypt(&burst[i], id);
      if (rc != 0) {
        fprintf(stderr, "encrypt of message %d by %s failed: %s\n", id, from_sotto ? "sotto" : "libsignal",
                from_sotto ? tu_errname(rc) : lspeer_error(P));
        CHECK(rc == 0);
        goto out;
      }
      id++;
    }
    /* Messages held back from the other side's last burst arrive now, one
     * burst late: after their receiver has answered. */
    if (n_late > 0 && late_from != (unsigned)from_sotto) {
      for (unsigned i = 0; i < n_late; i++) deliver(&late[i]);
      n_late = 0;
    }
    rev = id > 16 && rnd(4) == 0;
    for (unsigned i = 0; i < n; i++) order[i] = rev ? n - 1 - i : i;
    for (unsigned i = 0; i < n; i++) {
      struct msg *m = &burst[order[i]];
      /* The first 17 messages all arrive (the responder needs a
       * PreKeySignalMessage); later ones may be dropped or held back. */
      if (!flipped[m->from_sotto] && m->id > 300 + 200 * m->from_sotto &&
          m->type == SOTTO_MSG_SIGNAL) {
        flipped[m->from_sotto] = 1;
        bit_flips(m);
        continue;
      }
      if (!m->from_sotto) {
        /* libsignal writes field 6 on PreKeySignalMessages only */
        struct sotto__signal_msg sm;
        if (signal_of(m, &sm) == 0) addr_seen[m->type == SOTTO_MSG_PREKEY] += sm.has_addr != 0;
      }
      if (!m->from_sotto && !addr_done[0] && m->type == SOTTO_MSG_PREKEY) {
        addr_done[0] = 1;
        addresses_from_libsignal(m);
        deliver(m);
        continue;
      }
      {
        /* The named scenario: a chunk after the first of an object (an
         * SPQR header, key or ciphertext in flight) after message 40 is
         * lost for good, once in each direction. */
        struct sotto__spqr_msg q;
        int d = m->from_sotto;
        if (lost_epoch[d] == 0 && m->id > 40 && pq_msg(m, &q) == 0 && q.has_chunk && q.chunk_index >= 1 &&
            q.chunk_index <= 3) {
          lost_epoch[d] = q.epoch;
          lost_type[d] = q.type;
          lost_chunk[d] = q.chunk_index;
          dropped++;
          continue;
        }
      }
      if (m->id > 16 && rnd(12) == 0) {
        dropped++;
        continue;
      }
      if (m->id > 16 && n_late < 8 && (n_late == 0 || late_from == (unsigned)from_sotto) && rnd(20) == 0) {
        late[n_late++] = *m;
        late_from = (unsigned)from_sotto;
        held++;
        continue;
      }
      deliver(m);
    }
    if (id / 150 != (id - (int)n) / 150) restart();
    /* Alternate mostly; sometimes the same side sends again. */
    if (rnd(5) != 0) from_sotto = !from_sotto;
  }
  for (unsigned i = 0; i < n_late; i++) deliver(&late[i]);
  CHECK(flipped[0] && flipped[1]);
  CHECK(addr_done[1] && addr_done[0] == !sotto_first && addr_refused == (sotto_first ? 0u : 6u));
  CHECK(addr_seen[0] == 0 && (sotto_first ? addr_seen[1] == 0 : addr_seen[1] >= 1));
  for (int d = 0; d < 2; d++) {
    /* The object that lost a chunk still completed: epochs moved past it. */
    CHECK(lost_epoch[d] != 0 && max_epoch > lost_epoch[d]);
    printf("mid-chunk loss %s: chunk %d of an SPQR object (type %d) lost in epoch %llu; epoch %llu reached\n",
           d ? "sotto -> libsignal" : "libsignal -> sotto", lost_chunk[d], lost_type[d],
           (unsigned long long)lost_epoch[d], (unsigned long long)max_epoch);
  }
  if (!sotto_first)
    printf(
        "addresses: libsignal's PreKeySignalMessage carries field 6; 6 of 6 wrong expectations refused, "
        "record unchanged\n");
  CHECK(max_epoch >= 5); /* several SPQR epochs completed */
  printf("%s initiates: %d messages, %u delivered, %u dropped, %u held back, %u restarts, SPQR epoch %llu\n",
         sotto_first ? "sotto" : "libsignal", id, delivered, dropped, held, restarts,
         (unsigned long long)max_epoch);
out:
  sotto_session_free(S);
  S = NULL;
}

int main(void) {
  const char *seed = getenv("SOTTO_TEST_SEED");
  REQUIRE(sotto_init() == 0);
  set_addr(&AD.local, ACI_S, 1);
  set_addr(&AD.remote, ACI_L, 1);
  AD.require = 0; /* libsignal writes field 6 on PreKeySignalMessages only */
  rng_state = seed ? strtoull(seed, NULL, 0) : 0x5eed5a11d0c0ffeeull;
  if (rng_state == 0) rng_state = 1;
  printf("seed 0x%llx\n", (unsigned long long)rng_state);
  REQUIRE(sotto_keypair_generate(me.pub, me.priv) == 0);
  me.registration_id = 4243;
  REQUIRE(sotto_keypair_generate(spk_pub, spk_priv) == 0);
  REQUIRE(sotto_signed_prekey_sign(spk_sig, me.priv, spk_pub) == 0);
  REQUIRE(sotto_keypair_generate(opk_pub, opk_priv) == 0);
  REQUIRE(sotto_kem_keypair_generate_type(kem_pub, kem_sk, SOTTO_KEM_TYPE_KYBER1024) == 0);
  REQUIRE(sotto_kem_prekey_sign(kem_sig, me.priv, kem_pub) == 0);
  P = lspeer_start();
  REQUIRE(P != NULL);
  conversation(1);
  lspeer_stop(P);
  /* A fresh libsignal process: new parties, new identities for it. */
  P = lspeer_start();
  REQUIRE(P != NULL);
  conversation(0);
  lspeer_stop(P);
  return test_done(__FILE__);
}
