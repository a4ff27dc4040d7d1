/* SPDX-License-Identifier: Apache-2.0 */
/* provision.h: the messages of linking a device (docs/multi-device.md,
 * "Linking"), as pure functions over bytes (no I/O, no store): the link
 * code, the new device's keys, the provisioning message device 1 sends it
 * end to end, and the new device's reply.
 *
 * The link code (what the new device shows and the user types or scans on
 * device 1) is the server's 16-byte slot code followed by a 10-byte link
 * secret the new device made and never sent to the server, in base32 (42
 * characters, in groups of 6 joined by '-'). The secret keeps the server
 * out: it authenticates the new device's keys to device 1 (a tag the server
 * cannot make without it) and goes into the key the provisioning message is
 * encrypted under (a server that opened its own slot or swapped the keys
 * cannot read or forge one).
 *
 * Keys (LINK_OPEN's payload, at most SOTTO_SRV_LINK_MAX_KEYS bytes):
 *   u8 version (1) | identity_pub[32] | ephemeral X25519 pub[32] |
 *   u8 nlen | name (0..64 bytes, UTF-8, no control characters) | tag[16]
 *   tag = BLAKE2b-128 keyed by BLAKE2b-256("sotto link keys v1" || secret)
 *         over everything before it
 *
 * Provisioning message (LINK_PUT's blob, at most SOTTO_SRV_LINK_MAX_BLOB):
 *   u8 version (1) | sender ephemeral X25519 pub[32] | nonce[24] | ciphertext
 *   key = BLAKE2b-256("sotto provisioning v1" || X25519(e, E) || secret ||
 *                     slot code || identity_pub || E || e_pub)
 *   XChaCha20-Poly1305 with AD "sotto provisioning v1" || slot code ||
 *   identity_pub || E, over the payload:
 *     u8 version (2; 1 from a device 1 of before) | str8 username |
 *     account_key[32] | u32 device_id |
 *     secret[32] (the new device's server credential) | str8 server |
 *     str8 pin (0 or 64 hex) | u16 n_contacts, n x (str8 name | key[32] |
 *     u8 flags: bit 0 verified) | u16 n_groups, n x (gid[16] | str8 name |
 *     u32 epoch | u8 n_members, n x str8 member) |
 *     (version 2 only) u32 list_version (>= 1): the lowest version of the
 *     signed device list that adds the new device (device 1 signs it after
 *     the reply, at least this version). The new device keeps it as its
 *     floor: a list of its account older than it is a rollback. (Not a
 *     hash of that list: the list carries the new device's membership
 *     signature, made after this message is opened.)
 *   Every string is bounded (usernames 3..32 of the username rules, group
 *   names by GROUP_NAME_MAX, members by GROUP_MAX_MEMBERS, contacts by
 *   PROV_MAX_CONTACTS, groups by PROV_MAX_GROUPS).
 *
 * Reply (LINK_REPLY's payload): u8 version (1) | member_sig[64], the new
 * device's membership signature (sotto/devlist.h) for (username,
 * account_key, device_id, its identity key). */
#ifndef SOTTO_CLIENT_PROVISION_H
#define SOTTO_CLIENT_PROVISION_H

#include <stddef.h>
#include <stdint.h>

#include <sotto/limits.h>

#include "content.h"
#include "core.h"

#define PROV_VERSION 1         /* keys, sealed message, reply */
#define PROV_PAYLOAD_VERSION 2 /* the provisioning payload (1: without list_version) */
#define PROV_SLOT_LEN 16   /* = SOTTO_SRV_LINK_CODE_LEN */
#define PROV_SECRET_LEN 10 /* the link secret in the code */
#define PROV_CODE_BYTES (PROV_SLOT_LEN + PROV_SECRET_LEN)
#define PROV_CODE_CHARS 42 /* base32 of PROV_CODE_BYTES */
#define PROV_CODE_TEXT_MAX 64
#define PROV_TAG_LEN 16
#define PROV_NAME_MAX 64 /* = SOTTO_DEVLIST_MAX_NAME */
#define PROV_KEYS_MAX (1 + 32 + 32 + 1 + PROV_NAME_MAX + PROV_TAG_LEN)
#define PROV_HDR_LEN (1 + 32 + 24)
#define PROV_MAX_CONTACTS 500
#define PROV_MAX_GROUPS 100
#define PROV_MAX_SERVER 255
#define PROV_MAX_BLOB (64 * 1024) /* = SOTTO_SRV_LINK_MAX_BLOB */
#define PROV_REPLY_LEN (1 + SOTTO_SIGNATURE_LEN)

/* The link code as text: base32 of slot || secret, lowercase, groups of 6
 * joined by '-'. */
void prov_code_format(char out[PROV_CODE_TEXT_MAX], const uint8_t slot[PROV_SLOT_LEN],
                      const uint8_t secret[PROV_SECRET_LEN]);
/* Reads a code typed or pasted: case, spaces and '-' do not matter. 0, or
 * -1 (not 42 base32 characters, or the unused low bits not zero). */
int prov_code_parse(uint8_t slot[PROV_SLOT_LEN], uint8_t secret[PROV_SECRET_LEN], const char *text);

struct prov_keys {
  uint8_t identity[SOTTO_PUBKEY_LEN];
  uint8_t eph[SOTTO_PUBKEY_LEN];
  char name[PROV_NAME_MAX + 1];
};
/* 1 if name is a device name a list can carry (0..64 bytes of UTF-8, no
 * control characters). */
int prov_name_ok(const char *name);
/* Encodes k with its tag under secret into out (cap >= PROV_KEYS_MAX). 0 or -1. */
int prov_keys_encode(uint8_t *out, size_t cap, size_t *len, const struct prov_keys *k,
                     const uint8_t secret[PROV_SECRET_LEN]);
/* Parses and checks the tag (constant time). 0, -1 malformed, -2 the tag
 * does not match (a mistyped code, or keys the new device did not put). *k
 * is zeroed on failure. */
int prov_keys_decode(struct prov_keys *k, const uint8_t *p, size_t len, const uint8_t secret[PROV_SECRET_LEN]);

struct prov_contact {
  char name[SC_USER_MAX + 1];
  uint8_t key[SOTTO_PUBKEY_LEN];
  int verified;
};
struct prov_group {
  uint8_t gid[GROUP_ID_LEN];
  char name[GROUP_NAME_MAX + 1];
  uint32_t epoch;
  size_t n;
  char members[GROUP_MAX_MEMBERS][SC_USER_MAX + 1];
};
/* What device 1 tells the new device (heap: it is large). */
struct prov_msg {
  char username[SC_USER_MAX + 1];
  uint8_t account_key[SOTTO_PUBKEY_LEN];
  uint32_t device_id;
  uint8_t secret[32];
  char server[PROV_MAX_SERVER + 1];
  char pin[65];
  size_t n_contacts;
  struct prov_contact contacts[PROV_MAX_CONTACTS];
  size_t n_groups;
  struct prov_group groups[PROV_MAX_GROUPS];
  uint32_t list_version; /* payload version 2: the list that adds the device is at least this; 0: version 1 */
};
/* The payload alone (plaintext; the fuzz target's unit). encode: malloc'd
 * *out (wiped and freed by the caller) or -1 (a field out of bounds, or more
 * than max bytes: -2). decode: 0 or -1, *m zeroed on failure. */
int prov_payload_encode(uint8_t **out, size_t *len, const struct prov_msg *m, size_t max);
int prov_payload_decode(struct prov_msg *m, const uint8_t *p, size_t len);

/* Seals m for the new device whose keys are k (their tag already checked),
 * bound to the slot code and the link secret: a malloc'd blob of at most
 * PROV_MAX_BLOB bytes. 0, -1 (bad field, no memory), -2 (too large). */
int prov_seal(uint8_t **out, size_t *len, const struct prov_msg *m, const struct prov_keys *k,
              const uint8_t slot[PROV_SLOT_LEN], const uint8_t secret[PROV_SECRET_LEN]);
/* Opens a blob with the new device's ephemeral private key. 0, -1
 * malformed, -2 authentication failed (another slot, another secret, a
 * changed byte, another device's keys); *m zeroed on any failure. */
int prov_open(struct prov_msg *m, const uint8_t *blob, size_t len, const struct prov_keys *k,
              const uint8_t eph_priv[SOTTO_PRIVKEY_LEN], const uint8_t slot[PROV_SLOT_LEN],
              const uint8_t secret[PROV_SECRET_LEN]);

void prov_reply_encode(uint8_t out[PROV_REPLY_LEN], const uint8_t sig[SOTTO_SIGNATURE_LEN]);
int prov_reply_decode(uint8_t sig[SOTTO_SIGNATURE_LEN], const uint8_t *p, size_t len);

/* A key's fingerprint for people: SHA-256 of "sotto device fingerprint v1"
 * || key, as 8 groups of 5 digits (each a big-endian u32 of the hash mod
 * 100000). */
#define PROV_FINGERPRINT_LEN 47
void prov_fingerprint(char out[PROV_FINGERPRINT_LEN + 1], const uint8_t key[SOTTO_PUBKEY_LEN]);

#endif
