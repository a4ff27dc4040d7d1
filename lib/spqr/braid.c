/* SPDX-License-Identifier: Apache-2.0 */
/* braid.c: the SPQR v1 ML-KEM braid (braid.h). */
#include "spqr/braid.h"

#include <sotto/error.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "pq/keccak.h"
#include "wire/wire.h"

static void enc_start(struct sotto__braid *b, const uint8_t *obj, size_t len) {
  (void)sotto__spqr_enc_init(&b->enc, obj, len); /* sizes are fixed and valid */
  b->enc_idx = 0;
}

static void enc_next(struct sotto__braid *b, uint8_t chunk[32], uint16_t *index) {
  *index = (uint16_t)b->enc_idx;
  sotto__spqr_enc_chunk(&b->enc, (uint16_t)b->enc_idx, chunk);
  /* Chunk indices are 16-bit on the wire: after 65,536 chunks of one object
   * they start again (the receiver has or ignores the repeats). Kept within
   * 16 bits here too, so that the record stays one the loader accepts
   * (fuzz_spqr_braid_record found a record at 0xFFFF that could not be
   * reloaded after one more send). */
  b->enc_idx = (b->enc_idx + 1) & 0xFFFFu;
}

static void dec_start(struct sotto__braid *b, size_t len) {
  (void)sotto__spqr_dec_init(&b->dec, len);
}

int sotto__braid_init(struct sotto__braid *b, const uint8_t auth_key[32], int is_a) {
  int rc;
  if (b == NULL || auth_key == NULL) return SOTTO_ERR_USAGE;
  memset(b, 0, sizeof *b);
  b->epoch = 1;
  if ((rc = sotto__spqr_auth_init(&b->auth, auth_key, 32, 1)) != 0) return rc;
  if (is_a) {
    b->state = BRAID_KEYS_UNSAMPLED;
  } else {
    b->state = BRAID_NO_HEADER_RECEIVED;
    dec_start(b, SOTTO_BRAID_HDR_OBJ);
  }
  return 0;
}

void sotto__braid_clear(struct sotto__braid *b) {
  if (b != NULL) sotto__wipe(b, sizeof *b);
}

int sotto__braid_send(struct sotto__braid *b, struct sotto__spqr_msg *m, uint8_t chunk[32],
                      int *has_secret, uint8_t secret[32], uint64_t *secret_epoch) {
  uint8_t obj[SOTTO_BRAID_HDR_OBJ], pk[SOTTO_MLKEM768_PK_LEN], mm[32], ss[32];
  int rc = 0;

  if (b == NULL || m == NULL || chunk == NULL || has_secret == NULL || secret == NULL ||
      secret_epoch == NULL)
    return SOTTO_ERR_USAGE;
  memset(m, 0, sizeof *m);
  *has_secret = 0;
  m->epoch = b->epoch;
  m->type = SOTTO_SPQR_NONE;
  switch (b->state) {
    case BRAID_KEYS_UNSAMPLED:
      /* Sample the epoch's key pair; stream header || MAC. */
      if ((rc = sotto_mlkem768_keypair(pk, b->dk)) != 0) goto out;
      if ((rc = sotto__mlkem768_header(b->hdr, pk, sizeof pk)) != 0) goto out;
      memcpy(b->ek, pk, sizeof b->ek);
      memcpy(obj, b->hdr, sizeof b->hdr);
      sotto__spqr_auth_mac_hdr(obj + SOTTO_MLKEM768_HDR_LEN, &b->auth, b->epoch, b->hdr,
                               sizeof b->hdr);
      enc_start(b, obj, sizeof obj);
      b->state = BRAID_KEYS_SAMPLED;
      /* fall through */
    case BRAID_KEYS_SAMPLED:
      m->type = SOTTO_SPQR_HDR;
      break;
    case BRAID_HEADER_SENT:
      m->type = SOTTO_SPQR_EK;
      break;
    case BRAID_CT1_RECEIVED:
      m->type = SOTTO_SPQR_EK_CT1_ACK;
      break;
    case BRAID_EK_SENT_CT1_RECEIVED:
      m->type = SOTTO_SPQR_CT1_ACK;
      break;
    case BRAID_NO_HEADER_RECEIVED:
    case BRAID_CT1_ACKNOWLEDGED:
      break;
    case BRAID_HEADER_RECEIVED:
      /* Encapsulate to the header (step 1): the epoch secret is ours now. */
      if ((rc = sotto__random(mm, sizeof mm)) != 0) goto out;
      if ((rc = sotto__mlkem768_encaps1(b->ct1, b->es, ss, b->hdr, mm)) != 0) goto out;
      sotto__spqr_scka_key(secret, ss, b->epoch);
      if ((rc = sotto__spqr_auth_update(&b->auth, b->epoch, secret, 32)) != 0) goto out;
      *has_secret = 1;
      *secret_epoch = b->epoch;
      enc_start(b, b->ct1, sizeof b->ct1);
      b->state = BRAID_CT1_SAMPLED;
      /* fall through */
    case BRAID_CT1_SAMPLED:
    case BRAID_EK_RECEIVED_CT1_SAMPLED:
      m->type = SOTTO_SPQR_CT1;
      break;
    case BRAID_CT2_SAMPLED:
      m->type = SOTTO_SPQR_CT2;
      break;
    default:
      rc = SOTTO_ERR_INTERNAL;
      goto out;
  }
  if (m->type != SOTTO_SPQR_NONE && m->type != SOTTO_SPQR_CT1_ACK) {
    enc_next(b, chunk, &m->chunk_index);
    m->has_chunk = 1;
    m->chunk = chunk;
  }
out:
  sotto__wipe(mm, sizeof mm);
  sotto__wipe(ss, sizeof ss);
  sotto__wipe(pk, sizeof pk);
  return rc;
}

/* B: both ct1 acknowledged and ek known: encapsulate step 2, stream ct2 || MAC. */
static int to_ct2(struct sotto__braid *b) {
  uint8_t obj[SOTTO_BRAID_CT2_OBJ], ct[SOTTO_MLKEM768_CT_LEN];
  int rc;
  if ((rc = sotto__mlkem768_encaps2(obj, b->es, b->hdr, b->ek)) != 0) return rc;
  memcpy(ct, b->ct1, sizeof b->ct1);
  memcpy(ct + sizeof b->ct1, obj, SOTTO_MLKEM768_CT2_LEN);
  sotto__spqr_auth_mac_ct(obj + SOTTO_MLKEM768_CT2_LEN, &b->auth, b->epoch, ct, sizeof ct);
  sotto__wipe(b->es, sizeof b->es);
  enc_start(b, obj, sizeof obj);
  b->state = BRAID_CT2_SAMPLED;
  return 0;
}

static int recv_inner(struct sotto__braid *b, const struct sotto__spqr_msg *m, int *has_secret,
                      uint8_t secret[32], uint64_t *secret_epoch) {
  uint8_t obj[SOTTO_MLKEM768_EK_VEC_LEN], ct[SOTTO_MLKEM768_CT_LEN], ss[32];
  int rc = 0, ack;

  if (m->epoch > b->epoch) {
    /* Only B, having sent ct2, moves on when the peer does. */
    if (b->state == BRAID_CT2_SAMPLED && m->epoch == b->epoch + 1) {
      b->epoch++;
      b->state = BRAID_KEYS_UNSAMPLED;
      return 0;
    }
    return SOTTO_ERR_MALFORMED;
  }
  if (m->epoch < b->epoch) return 0; /* late message of an older epoch */
  switch (b->state) {
    case BRAID_KEYS_SAMPLED:
      if (m->type != SOTTO_SPQR_CT1) break;
      dec_start(b, SOTTO_MLKEM768_CT1_LEN);
      sotto__spqr_dec_add(&b->dec, m->chunk_index, m->chunk);
      enc_start(b, b->ek, sizeof b->ek);
      b->state = BRAID_HEADER_SENT;
      /* A single chunk cannot complete ct1 (30 chunks). */
      break;
    case BRAID_HEADER_SENT:
      if (m->type != SOTTO_SPQR_CT1) break;
      sotto__spqr_dec_add(&b->dec, m->chunk_index, m->chunk);
      if (sotto__spqr_dec_done(&b->dec, b->ct1, sizeof b->ct1)) b->state = BRAID_CT1_RECEIVED;
      break;
    case BRAID_CT1_RECEIVED:
      if (m->type != SOTTO_SPQR_CT2) break;
      dec_start(b, SOTTO_BRAID_CT2_OBJ);
      sotto__spqr_dec_add(&b->dec, m->chunk_index, m->chunk);
      b->state = BRAID_EK_SENT_CT1_RECEIVED;
      break;
    case BRAID_EK_SENT_CT1_RECEIVED:
      if (m->type != SOTTO_SPQR_CT2) break;
      sotto__spqr_dec_add(&b->dec, m->chunk_index, m->chunk);
      if (!sotto__spqr_dec_done(&b->dec, obj, SOTTO_BRAID_CT2_OBJ)) break;
      /* ct2 || MAC complete: decapsulate, derive, check, and swap roles. */
      memcpy(ct, b->ct1, sizeof b->ct1);
      memcpy(ct + sizeof b->ct1, obj, SOTTO_MLKEM768_CT2_LEN);
      if ((rc = sotto_mlkem768_decaps(ss, ct, sizeof ct, b->dk, sizeof b->dk)) != 0) break;
      sotto__spqr_scka_key(secret, ss, b->epoch);
      if ((rc = sotto__spqr_auth_update(&b->auth, b->epoch, secret, 32)) != 0) break;
      if ((rc = sotto__spqr_auth_verify_ct(&b->auth, b->epoch, ct, sizeof ct,
                                           obj + SOTTO_MLKEM768_CT2_LEN)) != 0)
        break;
      *has_secret = 1;
      *secret_epoch = b->epoch;
      sotto__wipe(b->dk, sizeof b->dk);
      b->epoch++;
      b->state = BRAID_NO_HEADER_RECEIVED;
      dec_start(b, SOTTO_BRAID_HDR_OBJ);
      break;
    case BRAID_NO_HEADER_RECEIVED:
      if (m->type != SOTTO_SPQR_HDR) break;
      sotto__spqr_dec_add(&b->dec, m->chunk_index, m->chunk);
      if (!sotto__spqr_dec_done(&b->dec, obj, SOTTO_BRAID_HDR_OBJ)) break;
      if ((rc = sotto__spqr_auth_verify_hdr(&b->auth, b->epoch, obj, SOTTO_MLKEM768_HDR_LEN,
                                            obj + SOTTO_MLKEM768_HDR_LEN)) != 0)
        break;
      memcpy(b->hdr, obj, SOTTO_MLKEM768_HDR_LEN);
      dec_start(b, SOTTO_MLKEM768_EK_VEC_LEN);
      b->state = BRAID_HEADER_RECEIVED;
      break;
    case BRAID_CT1_SAMPLED:
    case BRAID_CT1_ACKNOWLEDGED:
      if (m->type != SOTTO_SPQR_EK && m->type != SOTTO_SPQR_EK_CT1_ACK) break;
      ack = m->type == SOTTO_SPQR_EK_CT1_ACK || b->state == BRAID_CT1_ACKNOWLEDGED;
      sotto__spqr_dec_add(&b->dec, m->chunk_index, m->chunk);
      if (sotto__spqr_dec_done(&b->dec, obj, SOTTO_MLKEM768_EK_VEC_LEN)) {
        if ((rc = sotto__mlkem768_ek_matches(b->hdr, obj)) != 0) break;
        memcpy(b->ek, obj, sizeof b->ek);
        if (ack)
          rc = to_ct2(b);
        else
          b->state = BRAID_EK_RECEIVED_CT1_SAMPLED;
      } else if (ack) {
        b->state = BRAID_CT1_ACKNOWLEDGED;
      }
      break;
    case BRAID_EK_RECEIVED_CT1_SAMPLED:
      if (m->type == SOTTO_SPQR_CT1_ACK || m->type == SOTTO_SPQR_EK_CT1_ACK) rc = to_ct2(b);
      break;
    default: /* KeysUnsampled, HeaderReceived, Ct2Sampled: nothing to take */
      break;
  }
  sotto__wipe(ss, sizeof ss);
  return rc;
}

int sotto__braid_recv(struct sotto__braid *b, const struct sotto__spqr_msg *m, int *has_secret,
                      uint8_t secret[32], uint64_t *secret_epoch) {
  struct sotto__braid tmp; /* about 15 KB: the failure rule is "work on a copy" */
  int rc;
  if (b == NULL || m == NULL || has_secret == NULL || secret == NULL || secret_epoch == NULL)
    return SOTTO_ERR_USAGE;
  if (m->has_chunk && m->chunk == NULL) return SOTTO_ERR_USAGE;
  *has_secret = 0;
  tmp = *b;
  rc = recv_inner(&tmp, m, has_secret, secret, secret_epoch);
  if (rc == 0)
    *b = tmp;
  else {
    *has_secret = 0;
    sotto__wipe(secret, 32);
  }
  sotto__wipe(&tmp, sizeof tmp);
  return rc;
}

/* ---- in place, with an undo record -------------------------------------------- */

void sotto__braid_undo_init(struct sotto__braid_undo *u) {
  memset(u, 0, sizeof *u);
}

static int save_braid(struct sotto__braid_undo *u, const struct sotto__braid *b) {
  if ((u->copy = malloc(sizeof *u->copy)) == NULL) return SOTTO_ERR_NOMEM;
  *u->copy = *b;
  return 0;
}

static void restore_braid(struct sotto__braid *b, struct sotto__braid_undo *u) {
  *b = *u->copy;
  sotto__wipe(u->copy, sizeof *u->copy);
  free(u->copy);
  u->copy = NULL;
}

int sotto__braid_send_u(struct sotto__braid *b, struct sotto__spqr_msg *m, uint8_t chunk[32], int *has_secret,
                        uint8_t secret[32], uint64_t *secret_epoch, struct sotto__braid_undo *u) {
  int rc;
  if (b == NULL || u == NULL || u->copy != NULL) return SOTTO_ERR_USAGE;
  if (b->state == BRAID_KEYS_UNSAMPLED || b->state == BRAID_HEADER_RECEIVED) {
    /* A key pair or an encapsulation: the braid changes throughout. */
    if ((rc = save_braid(u, b)) != 0) return rc;
    if ((rc = sotto__braid_send(b, m, chunk, has_secret, secret, secret_epoch)) != 0) restore_braid(b, u);
    return rc;
  }
  u->has_enc = 1;
  u->enc_idx = b->enc_idx;
  if ((rc = sotto__braid_send(b, m, chunk, has_secret, secret, secret_epoch)) != 0) {
    b->enc_idx = u->enc_idx;
    u->has_enc = 0;
  }
  return rc;
}

/* What recv_inner does with m: 0 nothing, 1 only adds its chunk to the
 * object being received (without finishing it), 2 more. */
static int recv_kind(const struct sotto__braid *b, const struct sotto__spqr_msg *m) {
  int add = 0;
  if (m->epoch > b->epoch) return 2;
  if (m->epoch < b->epoch) return 0;
  switch (b->state) {
    case BRAID_KEYS_SAMPLED:
    case BRAID_CT1_RECEIVED:
      return (m->type == SOTTO_SPQR_CT1 && b->state == BRAID_KEYS_SAMPLED) ||
                     (m->type == SOTTO_SPQR_CT2 && b->state == BRAID_CT1_RECEIVED)
                 ? 2
                 : 0;
    case BRAID_HEADER_SENT:
      add = m->type == SOTTO_SPQR_CT1;
      break;
    case BRAID_EK_SENT_CT1_RECEIVED:
      add = m->type == SOTTO_SPQR_CT2;
      break;
    case BRAID_NO_HEADER_RECEIVED:
      add = m->type == SOTTO_SPQR_HDR;
      break;
    case BRAID_CT1_SAMPLED:
    case BRAID_CT1_ACKNOWLEDGED:
      if (m->type != SOTTO_SPQR_EK && m->type != SOTTO_SPQR_EK_CT1_ACK) return 0;
      if (b->state == BRAID_CT1_SAMPLED && m->type == SOTTO_SPQR_EK_CT1_ACK) return 2;
      add = 1;
      break;
    case BRAID_EK_RECEIVED_CT1_SAMPLED:
      return m->type == SOTTO_SPQR_CT1_ACK || m->type == SOTTO_SPQR_EK_CT1_ACK ? 2 : 0;
    default:
      return 0;
  }
  if (!add) return 0;
  if (!m->has_chunk) return 2; /* msg.c never gives such a message; the general path copes */
  return sotto__spqr_dec_would_complete(&b->dec, m->chunk_index) ? 2 : 1;
}

int sotto__braid_recv_u(struct sotto__braid *b, const struct sotto__spqr_msg *m, int *has_secret,
                        uint8_t secret[32], uint64_t *secret_epoch, struct sotto__braid_undo *u) {
  int rc, kind;
  if (b == NULL || m == NULL || has_secret == NULL || secret == NULL || secret_epoch == NULL || u == NULL ||
      u->copy != NULL || u->has_dec)
    return SOTTO_ERR_USAGE;
  if (m->has_chunk && m->chunk == NULL) return SOTTO_ERR_USAGE;
  *has_secret = 0;
  kind = recv_kind(b, m);
  if (kind == 0) return 0;
  if (kind == 1) {
    u->has_dec = 1;
    u->dec_index = m->chunk_index;
    u->dec_mask = sotto__spqr_dec_add(&b->dec, m->chunk_index, m->chunk);
    return 0;
  }
  if ((rc = save_braid(u, b)) != 0) return rc;
  if ((rc = recv_inner(b, m, has_secret, secret, secret_epoch)) != 0) {
    restore_braid(b, u);
    *has_secret = 0;
    sotto__wipe(secret, 32);
  }
  return rc;
}

void sotto__braid_rollback(struct sotto__braid *b, struct sotto__braid_undo *u) {
  if (b == NULL || u == NULL) return;
  if (u->copy != NULL) {
    restore_braid(b, u);
  } else {
    if (u->has_dec) sotto__spqr_dec_remove(&b->dec, u->dec_index, u->dec_mask);
    if (u->has_enc) b->enc_idx = u->enc_idx;
  }
  sotto__braid_commit(u);
}

void sotto__braid_commit(struct sotto__braid_undo *u) {
  if (u == NULL) return;
  if (u->copy != NULL) {
    sotto__wipe(u->copy, sizeof *u->copy);
    free(u->copy);
  }
  memset(u, 0, sizeof *u);
}

/* ---- record ------------------------------------------------------------------- */

#define REC_MAGIC "SPQB"
#define REC_FORMAT 1
enum { L_DK = 1, L_HDR = 2, L_EK = 4, L_CT1 = 8, L_ES = 16, L_ENC = 32, L_DEC = 64 };

/* What each state holds, and the sizes of its objects in flight. */
struct layout {
  unsigned live;
  uint16_t enc_len, dec_len;
};

static int layout_of(uint8_t state, struct layout *l) {
  static const struct layout t[] = {
      {0, 0, 0},                                                         /* unused */
      {0, 0, 0},                                                         /* KeysUnsampled */
      {L_DK | L_HDR | L_EK | L_ENC, SOTTO_BRAID_HDR_OBJ, 0},             /* KeysSampled */
      {L_DK | L_HDR | L_EK | L_ENC | L_DEC, SOTTO_MLKEM768_EK_VEC_LEN,
       SOTTO_MLKEM768_CT1_LEN},                                          /* HeaderSent */
      {L_DK | L_HDR | L_EK | L_CT1 | L_ENC, SOTTO_MLKEM768_EK_VEC_LEN, 0}, /* Ct1Received */
      {L_DK | L_HDR | L_CT1 | L_DEC, 0, SOTTO_BRAID_CT2_OBJ},           /* EkSentCt1Received */
      {L_DEC, 0, SOTTO_BRAID_HDR_OBJ},                                   /* NoHeaderReceived */
      {L_HDR | L_DEC, 0, SOTTO_MLKEM768_EK_VEC_LEN},                     /* HeaderReceived */
      {L_HDR | L_CT1 | L_ES | L_ENC | L_DEC, SOTTO_MLKEM768_CT1_LEN,
       SOTTO_MLKEM768_EK_VEC_LEN},                                       /* Ct1Sampled */
      {L_HDR | L_EK | L_CT1 | L_ES | L_ENC, SOTTO_MLKEM768_CT1_LEN, 0},  /* EkReceivedCt1Sampled */
      {L_HDR | L_CT1 | L_ES | L_DEC, 0, SOTTO_MLKEM768_EK_VEC_LEN},      /* Ct1Acknowledged */
      {L_ENC, SOTTO_BRAID_CT2_OBJ, 0},                                   /* Ct2Sampled */
  };
  if (state < BRAID_KEYS_UNSAMPLED || state > BRAID_CT2_SAMPLED) return SOTTO_ERR_MALFORMED;
  *l = t[state];
  return 0;
}

static size_t dec_size(const struct sotto__spqr_dec *d) {
  size_t n = 16, i;
  for (i = 0; i < SOTTO_SPQR_POLYS; i++) n += (size_t)d->n[i] * 4;
  return n;
}

size_t sotto__braid_serialized_size(const struct sotto__braid *b) {
  struct layout l;
  size_t n = 4 + 1 + 1 + 8 + 64;
  if (b == NULL || layout_of(b->state, &l) != 0) return 0;
  if (l.live & L_DK) n += SOTTO_MLKEM768_SK_LEN;
  if (l.live & L_HDR) n += SOTTO_MLKEM768_HDR_LEN;
  if (l.live & L_EK) n += SOTTO_MLKEM768_EK_VEC_LEN;
  if (l.live & L_CT1) n += SOTTO_MLKEM768_CT1_LEN;
  if (l.live & L_ES) n += SOTTO_MLKEM768_INC_STATE_LEN;
  if (l.live & L_ENC) n += (size_t)l.enc_len + 4;
  if (l.live & L_DEC) n += dec_size(&b->dec);
  return n;
}

int sotto__braid_serialize(const struct sotto__braid *b, uint8_t *out, size_t cap,
                           size_t *out_len) {
  struct sotto__wr w;
  struct layout l;
  size_t need;
  uint32_t i, j;
  if (out_len != NULL) *out_len = 0;
  if (b == NULL || out_len == NULL || (out == NULL && cap != 0)) return SOTTO_ERR_USAGE;
  if (layout_of(b->state, &l) != 0) return SOTTO_ERR_INTERNAL;
  need = sotto__braid_serialized_size(b);
  if (need > cap) return SOTTO_ERR_BUFFER_TOO_SMALL;
  sotto__wr_init(&w, out, cap);
  sotto__wr_bytes(&w, (const uint8_t *)REC_MAGIC, 4);
  sotto__wr_u8(&w, REC_FORMAT);
  sotto__wr_u8(&w, b->state);
  sotto__wr_u64be(&w, b->epoch);
  sotto__wr_bytes(&w, b->auth.root, 32);
  sotto__wr_bytes(&w, b->auth.mac, 32);
  if (l.live & L_DK) sotto__wr_bytes(&w, b->dk, sizeof b->dk);
  if (l.live & L_HDR) sotto__wr_bytes(&w, b->hdr, sizeof b->hdr);
  if (l.live & L_EK) sotto__wr_bytes(&w, b->ek, sizeof b->ek);
  if (l.live & L_CT1) sotto__wr_bytes(&w, b->ct1, sizeof b->ct1);
  if (l.live & L_ES) sotto__wr_bytes(&w, b->es, sizeof b->es);
  if (l.live & L_ENC) {
    sotto__wr_u32be(&w, b->enc_idx);
    for (i = 0; i < b->enc.n_vals; i++) {
      sotto__wr_u8(&w, (uint8_t)(b->enc.vals[i] >> 8));
      sotto__wr_u8(&w, (uint8_t)b->enc.vals[i]);
    }
  }
  if (l.live & L_DEC) {
    for (i = 0; i < SOTTO_SPQR_POLYS; i++) sotto__wr_u8(&w, b->dec.n[i]);
    for (i = 0; i < SOTTO_SPQR_POLYS; i++) {
      for (j = 0; j < b->dec.n[i]; j++) {
        sotto__wr_u8(&w, (uint8_t)(b->dec.x[i][j] >> 8));
        sotto__wr_u8(&w, (uint8_t)b->dec.x[i][j]);
        sotto__wr_u8(&w, (uint8_t)(b->dec.y[i][j] >> 8));
        sotto__wr_u8(&w, (uint8_t)b->dec.y[i][j]);
      }
    }
  }
  if (w.err != 0 || w.len != need) {
    sotto__wipe(out, cap);
    return w.err != 0 ? w.err : SOTTO_ERR_INTERNAL;
  }
  *out_len = w.len;
  return 0;
}

static int rd_u16(struct sotto__rd *r, uint16_t *v) {
  uint8_t hi, lo;
  int rc;
  if ((rc = sotto__rd_u8(r, &hi)) != 0 || (rc = sotto__rd_u8(r, &lo)) != 0) return rc;
  *v = (uint16_t)(hi << 8 | lo);
  return 0;
}

int sotto__braid_deserialize(struct sotto__braid *b, const uint8_t *in, size_t len) {
  struct sotto__rd r;
  struct layout l;
  const uint8_t *magic;
  uint8_t fmt;
  uint32_t i, j;
  int rc;

  if (b == NULL || (in == NULL && len != 0)) return SOTTO_ERR_USAGE;
  memset(b, 0, sizeof *b);
  sotto__rd_init(&r, in, len);
  if ((rc = sotto__rd_bytes(&r, 4, &magic)) != 0) goto fail;
  rc = SOTTO_ERR_MALFORMED;
  if (memcmp(magic, REC_MAGIC, 4) != 0) goto fail;
  if ((rc = sotto__rd_u8(&r, &fmt)) != 0) goto fail;
  rc = SOTTO_ERR_VERSION;
  if (fmt != REC_FORMAT) goto fail;
  if ((rc = sotto__rd_u8(&r, &b->state)) != 0) goto fail;
  if ((rc = layout_of(b->state, &l)) != 0) goto fail;
  if ((rc = sotto__rd_u64be(&r, &b->epoch)) != 0) goto fail;
  rc = SOTTO_ERR_MALFORMED;
  if (b->epoch == 0 || b->epoch == UINT64_MAX) goto fail;
  if ((rc = sotto__rd_copy(&r, b->auth.root, 32)) != 0 ||
      (rc = sotto__rd_copy(&r, b->auth.mac, 32)) != 0)
    goto fail;
  if ((l.live & L_DK) && (rc = sotto__rd_copy(&r, b->dk, sizeof b->dk)) != 0) goto fail;
  if ((l.live & L_HDR) && (rc = sotto__rd_copy(&r, b->hdr, sizeof b->hdr)) != 0) goto fail;
  if ((l.live & L_EK) && (rc = sotto__rd_copy(&r, b->ek, sizeof b->ek)) != 0) goto fail;
  if ((l.live & L_CT1) && (rc = sotto__rd_copy(&r, b->ct1, sizeof b->ct1)) != 0) goto fail;
  if ((l.live & L_ES) && (rc = sotto__rd_copy(&r, b->es, sizeof b->es)) != 0) goto fail;
  if (l.live & L_ENC) {
    if ((rc = sotto__rd_u32be(&r, &b->enc_idx)) != 0) goto fail;
    rc = SOTTO_ERR_MALFORMED;
    if (b->enc_idx > 0xFFFF) goto fail; /* chunk indices are 16-bit */
    b->enc.n_vals = l.enc_len / 2u;
    for (i = 0; i < b->enc.n_vals; i++)
      if ((rc = rd_u16(&r, &b->enc.vals[i])) != 0) goto fail;
  }
  if (l.live & L_DEC) {
    if ((rc = sotto__spqr_dec_init(&b->dec, l.dec_len)) != 0) goto fail;
    for (i = 0; i < SOTTO_SPQR_POLYS; i++) {
      if ((rc = sotto__rd_u8(&r, &b->dec.n[i])) != 0) goto fail;
      rc = SOTTO_ERR_TOO_LARGE;
      if (b->dec.n[i] > 2 * SOTTO_SPQR_PTS_MAX + 1) goto fail;
    }
    for (i = 0; i < SOTTO_SPQR_POLYS; i++) {
      for (j = 0; j < b->dec.n[i]; j++) {
        if ((rc = rd_u16(&r, &b->dec.x[i][j])) != 0 || (rc = rd_u16(&r, &b->dec.y[i][j])) != 0)
          goto fail;
        rc = SOTTO_ERR_MALFORMED;
        if (j > 0 && b->dec.x[i][j] <= b->dec.x[i][j - 1]) goto fail; /* sorted, distinct */
      }
    }
  }
  rc = SOTTO_ERR_TRAILING;
  if (sotto__rd_left(&r) != 0) goto fail;
  /* Keys that belong together must fit: the vector matches the header, and
   * the decapsulation key holds that key (FIPS 203 layout, hash checked). */
  rc = SOTTO_ERR_INVALID_KEY;
  if ((l.live & L_EK) && sotto__mlkem768_ek_matches(b->hdr, b->ek) != 0) goto fail;
  if (l.live & L_DK) {
    uint8_t h[32];
    const uint8_t *ek = b->dk + SOTTO_MLKEM768_EK_VEC_LEN;
    sotto__sha3_256(h, ek, SOTTO_MLKEM768_PK_LEN);
    if (!sotto__ct_eq(h, b->dk + SOTTO_MLKEM768_EK_VEC_LEN + SOTTO_MLKEM768_PK_LEN, 32) ||
        memcmp(ek + SOTTO_MLKEM768_EK_VEC_LEN, b->hdr, 32) != 0 ||
        memcmp(b->hdr + 32, h, 32) != 0)
      goto fail;
  }
  return 0;
fail:
  sotto__wipe(b, sizeof *b);
  return rc;
}
