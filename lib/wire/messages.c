/* SPDX-License-Identifier: Apache-2.0 */
/* messages.c: codecs for SignalMessage and PreKeySignalMessage. */
#include "messages.h"

#include <sotto/limits.h>

/* Smallest SignalMessage: version, ratchet key field (35), counter (2),
 * previous counter (2), a 16-byte ciphertext field (18), MAC (8). */
#define SIGNAL_MSG_MIN (1 + 35 + 2 + 2 + 18 + SOTTO_MESSAGE_MAC_LEN)

int sotto__signal_msg_parse(struct sotto__signal_msg *m, const uint8_t *buf, size_t len) {
  struct sotto__rd r;
  struct sotto__pb_field f;
  int rc, have_key = 0, have_ctr = 0, have_ct = 0;
  uint32_t seen = 0;

  memset(m, 0, sizeof *m);
  if (buf == NULL || len < SIGNAL_MSG_MIN) return SOTTO_ERR_TRUNCATED;
  if (len > SOTTO_MAX_MESSAGE_LEN) return SOTTO_ERR_TOO_LARGE;
  m->version = buf[0] >> 4;
  if (m->version <= 1) return SOTTO_ERR_LEGACY;
  if (m->version != SOTTO_VERSION_X3DH && m->version != SOTTO_VERSION_PQXDH) return SOTTO_ERR_VERSION;
  m->mac_input = buf;
  m->mac_input_len = len - SOTTO_MESSAGE_MAC_LEN;
  m->mac = buf + len - SOTTO_MESSAGE_MAC_LEN;

  sotto__rd_init(&r, buf + 1, len - 1 - SOTTO_MESSAGE_MAC_LEN);
  while ((rc = sotto__pb_next(&r, &f)) == 1) {
    if (f.num <= 4 && (rc = sotto__pb_once(&seen, f.num)) != 0) return rc;
    switch (f.num) {
      case 1:
        if ((rc = sotto__pb_get_pubkey(&f, m->ratchet_key)) != 0) return rc;
        have_key = 1;
        break;
      case 2:
        if ((rc = sotto__pb_get_u32(&f, &m->counter)) != 0) return rc;
        have_ctr = 1;
        break;
      case 3:
        if ((rc = sotto__pb_get_u32(&f, &m->previous_counter)) != 0) return rc;
        break;
      case 4:
        if (f.wt != SOTTO__PB_LEN) return SOTTO_ERR_MALFORMED;
        m->ciphertext = f.p;
        m->ciphertext_len = f.len;
        have_ct = 1;
        break;
      case 5:
        /* pq_ratchet: read only by a session that runs SPQR; the last
         * occurrence wins as for any other skipped field before. */
        if (f.wt != SOTTO__PB_LEN) break;
        m->has_pq = 1;
        m->pq = f.p;
        m->pq_len = f.len;
        break;
      case 6:
        /* addresses: checked by a caller that gives its own (the last
         * occurrence wins, as in libsignal's decoder). */
        if (f.wt != SOTTO__PB_LEN) break;
        m->has_addr = 1;
        m->addr = f.p;
        m->addr_len = f.len;
        break;
      default:
        break; /* unknown fields are skipped (proto2); they are covered by the MAC */
    }
  }
  if (rc < 0) return rc;
  if (!have_key || !have_ctr || !have_ct) return SOTTO_ERR_MALFORMED;
  if (m->ciphertext_len == 0 || m->ciphertext_len % 16 != 0) return SOTTO_ERR_MALFORMED;
  return 0;
}

size_t sotto__signal_msg_size(uint32_t counter, uint32_t previous_counter, size_t ct_len) {
  return 1 + 35 + sotto__pb_varint_size(counter) + sotto__pb_varint_size(previous_counter) +
         sotto__pb_bytes_size(ct_len) + SOTTO_MESSAGE_MAC_LEN;
}

void sotto__signal_msg_write(struct sotto__wr *w, uint8_t version_byte, const uint8_t ratchet_key[32],
                             uint32_t counter, uint32_t previous_counter, const uint8_t *ct,
                             size_t ct_len) {
  sotto__wr_u8(w, version_byte);
  sotto__pb_pubkey(w, 1, ratchet_key);
  sotto__pb_varint(w, 2, counter);
  sotto__pb_varint(w, 3, previous_counter);
  sotto__pb_bytes(w, 4, ct, ct_len);
}

int sotto__prekey_msg_parse(struct sotto__prekey_msg *m, const uint8_t *buf, size_t len) {
  struct sotto__rd r;
  struct sotto__pb_field f;
  int rc, have_base = 0, have_id = 0, have_msg = 0, have_spk = 0, have_kid = 0, have_kct = 0;
  uint32_t seen = 0;

  memset(m, 0, sizeof *m);
  if (buf == NULL || len < 1 + 35 + 35 + 2 + 2 + SIGNAL_MSG_MIN) return SOTTO_ERR_TRUNCATED;
  if (len > SOTTO_MAX_MESSAGE_LEN + SOTTO__KEM_CT_MAX + 256) return SOTTO_ERR_TOO_LARGE;
  m->version = buf[0] >> 4;
  if (m->version <= 1) return SOTTO_ERR_LEGACY;
  if (m->version != SOTTO_VERSION_X3DH && m->version != SOTTO_VERSION_PQXDH) return SOTTO_ERR_VERSION;

  sotto__rd_init(&r, buf + 1, len - 1);
  while ((rc = sotto__pb_next(&r, &f)) == 1) {
    if (f.num <= 8 && (rc = sotto__pb_once(&seen, f.num)) != 0) return rc;
    switch (f.num) {
      case 1:
        if ((rc = sotto__pb_get_u32(&f, &m->prekey_id)) != 0) return rc;
        m->has_prekey_id = 1;
        break;
      case 2:
        if ((rc = sotto__pb_get_pubkey(&f, m->base_key)) != 0) return rc;
        have_base = 1;
        break;
      case 3:
        if ((rc = sotto__pb_get_pubkey(&f, m->identity_key)) != 0) return rc;
        have_id = 1;
        break;
      case 4:
        if (f.wt != SOTTO__PB_LEN) return SOTTO_ERR_MALFORMED;
        m->message = f.p;
        m->message_len = f.len;
        have_msg = 1;
        break;
      case 5:
        if ((rc = sotto__pb_get_u32(&f, &m->registration_id)) != 0) return rc;
        break;
      case 6:
        if ((rc = sotto__pb_get_u32(&f, &m->signed_prekey_id)) != 0) return rc;
        have_spk = 1;
        break;
      case 7:
        if ((rc = sotto__pb_get_u32(&f, &m->kem_prekey_id)) != 0) return rc;
        have_kid = 1;
        break;
      case 8:
        if (f.wt != SOTTO__PB_LEN) return SOTTO_ERR_MALFORMED;
        if (f.len > SOTTO__KEM_CT_MAX) return SOTTO_ERR_TOO_LARGE;
        m->kem_ct = f.p;
        m->kem_ct_len = f.len;
        have_kct = 1;
        break;
      default:
        break;
    }
  }
  if (rc < 0) return rc;
  if (!have_base || !have_id || !have_msg || !have_spk) return SOTTO_ERR_MALFORMED;
  /* The KEM fields come both or neither, and only from version 4 on. */
  if (have_kid != have_kct) return SOTTO_ERR_MALFORMED;
  m->has_kem = have_kid;
  if (m->version == SOTTO_VERSION_X3DH && m->has_kem) return SOTTO_ERR_MALFORMED;
  if (m->version == SOTTO_VERSION_PQXDH && !m->has_kem) return SOTTO_ERR_MALFORMED;
  /* The inner message must carry the same version. */
  if (m->message_len < 1 || (m->message[0] >> 4) != m->version) return SOTTO_ERR_VERSION;
  return 0;
}

size_t sotto__prekey_msg_size(const struct sotto__prekey_msg *m) {
  size_t n = 1;
  if (m->has_prekey_id) n += sotto__pb_varint_size(m->prekey_id);
  n += 35 + 35 + sotto__pb_bytes_size(m->message_len) + sotto__pb_varint_size(m->registration_id) +
       sotto__pb_varint_size(m->signed_prekey_id);
  if (m->has_kem) n += sotto__pb_varint_size(m->kem_prekey_id) + sotto__pb_bytes_size(m->kem_ct_len);
  return n;
}

/* Fields in number order, as libsignal-protocol-c writes them. */
void sotto__prekey_msg_write(struct sotto__wr *w, uint8_t version_byte, const struct sotto__prekey_msg *m) {
  sotto__wr_u8(w, version_byte);
  if (m->has_prekey_id) sotto__pb_varint(w, 1, m->prekey_id);
  sotto__pb_pubkey(w, 2, m->base_key);
  sotto__pb_pubkey(w, 3, m->identity_key);
  sotto__pb_bytes(w, 4, m->message, m->message_len);
  sotto__pb_varint(w, 5, m->registration_id);
  sotto__pb_varint(w, 6, m->signed_prekey_id);
  if (m->has_kem) {
    sotto__pb_varint(w, 7, m->kem_prekey_id);
    sotto__pb_bytes(w, 8, m->kem_ct, m->kem_ct_len);
  }
}
