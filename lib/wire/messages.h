/* SPDX-License-Identifier: Apache-2.0 */
/* messages.h: parsed forms of the pairwise Signal messages (version 3/4).
 * Parsers check sizes before content, cap every length, reject trailing
 * bytes and keep pointers into the input (zero copy). */
#ifndef SOTTO_MESSAGES_H
#define SOTTO_MESSAGES_H

#include "wire.h"

#define SOTTO__KEM_CT_MAX 1600

/* SignalMessage = version || protobuf{1 ratchetKey, 2 counter,
 * 3 previousCounter, 4 ciphertext} || mac[8]. */
struct sotto__signal_msg {
  uint8_t version; /* high nibble of the version byte */
  uint8_t ratchet_key[32];
  uint32_t counter;
  uint32_t previous_counter;
  const uint8_t *ciphertext;
  size_t ciphertext_len;
  const uint8_t *mac_input; /* version byte || protobuf */
  size_t mac_input_len;
  const uint8_t *mac; /* 8 bytes */
  /* field 5, SPQR's pq_ratchet (docs/protocol.md, "SPQR"); has_pq 0 when absent */
  int has_pq;
  const uint8_t *pq;
  size_t pq_len;
  /* field 6, addresses (sender and recipient, libsignal 0.91+); has_addr 0 when absent */
  int has_addr;
  const uint8_t *addr;
  size_t addr_len;
};

int sotto__signal_msg_parse(struct sotto__signal_msg *m, const uint8_t *buf, size_t len);
/* Serialized length for a ciphertext of ct_len bytes. */
size_t sotto__signal_msg_size(uint32_t counter, uint32_t previous_counter, size_t ct_len);
/* Writes everything but the MAC (the caller appends it). */
void sotto__signal_msg_write(struct sotto__wr *w, uint8_t version_byte, const uint8_t ratchet_key[32],
                             uint32_t counter, uint32_t previous_counter, const uint8_t *ct,
                             size_t ct_len);

/* PreKeySignalMessage = version || protobuf{1 preKeyId?, 2 baseKey,
 * 3 identityKey, 4 message, 5 registrationId, 6 signedPreKeyId,
 * 7 kyberPreKeyId?, 8 kyberCiphertext?}. */
struct sotto__prekey_msg {
  uint8_t version;
  int has_prekey_id;
  uint32_t prekey_id;
  uint32_t signed_prekey_id;
  uint8_t base_key[32];
  uint8_t identity_key[32];
  const uint8_t *message;
  size_t message_len;
  uint32_t registration_id;
  int has_kem;
  uint32_t kem_prekey_id;
  const uint8_t *kem_ct;
  size_t kem_ct_len;
};

int sotto__prekey_msg_parse(struct sotto__prekey_msg *m, const uint8_t *buf, size_t len);
size_t sotto__prekey_msg_size(const struct sotto__prekey_msg *m);
void sotto__prekey_msg_write(struct sotto__wr *w, uint8_t version_byte, const struct sotto__prekey_msg *m);

#endif
