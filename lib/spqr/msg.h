/* SPDX-License-Identifier: Apache-2.0 */
/* msg.h (internal): the SPQR v1 message carried in SignalMessage field 5
 * (pq_ratchet). Layout (SparsePostQuantumRatchet v1.5.3,
 * src/v1/chunked/states/serialize.rs; the C is ours):
 *   0x01 (version 1) || epoch (varint, >= 1) || index (varint, u32)
 *   || type (1 byte: 0 none, 1 hdr, 2 ek, 3 ek+ct1-ack, 4 ct1-ack, 5 ct1,
 *      6 ct2) || [chunk index (varint, <= 65535) || 32 data bytes]
 * Types 1, 2, 3, 5 and 6 carry the chunk. Varints are little-endian base
 * 128 of at most 10 bytes. Bytes after the message are allowed (upstream
 * keeps them for later versions) and reported in *used. An empty field is
 * SPQR version 0 (no SPQR), which libsignal 0.103 refuses. */
#ifndef SOTTO_SPQR_MSG_H
#define SOTTO_SPQR_MSG_H

#include <stddef.h>
#include <stdint.h>

#define SOTTO_SPQR_CHUNK_LEN 32
#define SOTTO_SPQR_MSG_MAX_LEN (1 + 10 + 5 + 1 + 3 + SOTTO_SPQR_CHUNK_LEN)

enum sotto__spqr_type {
  SOTTO_SPQR_NONE = 0,
  SOTTO_SPQR_HDR = 1,
  SOTTO_SPQR_EK = 2,
  SOTTO_SPQR_EK_CT1_ACK = 3,
  SOTTO_SPQR_CT1_ACK = 4,
  SOTTO_SPQR_CT1 = 5,
  SOTTO_SPQR_CT2 = 6
};

struct sotto__spqr_msg {
  uint64_t epoch;
  uint32_t index; /* chain key index of this message, 0 = none */
  uint8_t type;
  int has_chunk;
  uint16_t chunk_index;
  const uint8_t *chunk; /* SOTTO_SPQR_CHUNK_LEN bytes into the input */
};

/* 0 or SOTTO_ERR_MALFORMED / SOTTO_ERR_TRUNCATED / SOTTO_ERR_VERSION. */
int sotto__spqr_msg_parse(struct sotto__spqr_msg *m, size_t *used, const uint8_t *in, size_t len);
/* Writes m (chunk copied from m->chunk when the type has one); returns the
 * length, or 0 if cap is too small or m is invalid. */
size_t sotto__spqr_msg_write(uint8_t *out, size_t cap, const struct sotto__spqr_msg *m);

#endif
