/* braid.c: the SPQR v1 ML-KEM braid (braid.h). */
#include <string.h>

#include <sotto/error.h>

#include "crypto/crypto.h"
#include "spqr/braid.h"

static void enc_start(struct sotto__braid *b, const uint8_t *obj, size_t len) {
  (void)sotto__spqr_enc_init(&b->enc, obj, len); /* sizes are fixed and valid */
  b->enc_idx = 0;
}

static void enc_next(struct sotto__braid *b, uint8_t chunk[32], uint16_t *index) {
  *index = (uint16_t)b->enc_idx;
  sotto__spqr_enc_chunk(&b->enc, (uint16_t)b->enc_idx, chunk);
  b->enc_idx++;
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
