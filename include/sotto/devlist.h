/* SPDX-License-Identifier: Apache-2.0 */
/* sotto/devlist.h: the signed device list of an account (docs/multi-device.md).
 *
 * A device list names every device of one account that may receive its
 * messages. It is signed twice over: each entry carries the device's own
 * membership signature (by the device identity key, over the account it
 * joins), and the whole list carries the account key's signature. So
 * neither the account key's holder alone (it cannot make a device's
 * signature) nor the server (it has neither key) can invent a device.
 * Signatures are XEdDSA, like the rest of libsotto. Byte layout (integers
 * big-endian):
 *
 *   u8  format (1)
 *   u8  ulen (1..32), username[ulen]   bytes of [a-z0-9_.]
 *   u8  account_key[32]                raw Curve25519 public key
 *   u32 version                        >= 1; a newer list has a higher one
 *   u8  n (1..SOTTO_DEVLIST_MAX_DEVICES)
 *   n x entry, device ids strictly increasing:
 *     u32 device_id (>= 1)
 *     u8  device_key[32]
 *     u8  nlen (0..SOTTO_DEVLIST_MAX_NAME), name[nlen]   UTF-8, no control characters
 *     u64 added_at_ms
 *     u8  member_sig[64]   Sign(device_key, SOTTO_DEVLIST_MEMBER_CONTEXT || ulen || username
 *                                            || account_key || u32 device_id || device_key)
 *   u8  sig[64]             Sign(account_key, SOTTO_DEVLIST_CONTEXT || every byte above)
 *
 * Nothing else may follow. No I/O; every function is pure. */
#ifndef SOTTO_DEVLIST_H
#define SOTTO_DEVLIST_H

#include <stddef.h>
#include <stdint.h>

#include <sotto/error.h>
#include <sotto/limits.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_DEVLIST_FORMAT 1
#define SOTTO_DEVLIST_MAX_DEVICES 16 /* = the server's SOTTO_SRV_MAX_DEVICES */
#define SOTTO_DEVLIST_MAX_NAME 64
#define SOTTO_DEVLIST_MAX_USERNAME 32
#define SOTTO_DEVLIST_CONTEXT "sotto device list v1"
#define SOTTO_DEVLIST_MEMBER_CONTEXT "sotto device membership v1"
/* Encoded size of one entry with an nlen-byte name, and of a whole list. */
#define SOTTO_DEVLIST_ENTRY_LEN(nlen) (4 + 32 + 1 + (nlen) + 8 + 64)
#define SOTTO_DEVLIST_MAX_LEN                                                        \
  (1 + 1 + SOTTO_DEVLIST_MAX_USERNAME + 32 + 4 + 1 +                                 \
   SOTTO_DEVLIST_MAX_DEVICES * SOTTO_DEVLIST_ENTRY_LEN(SOTTO_DEVLIST_MAX_NAME) + 64)

struct sotto_devlist_entry {
  uint32_t device_id;
  uint8_t device_key[SOTTO_PUBKEY_LEN];
  char name[SOTTO_DEVLIST_MAX_NAME + 1]; /* NUL-terminated */
  uint64_t added_at_ms;
  uint8_t member_sig[SOTTO_SIGNATURE_LEN];
};

struct sotto_devlist {
  char username[SOTTO_DEVLIST_MAX_USERNAME + 1]; /* NUL-terminated */
  uint8_t account_key[SOTTO_PUBKEY_LEN];
  uint32_t version;
  unsigned n;
  struct sotto_devlist_entry dev[SOTTO_DEVLIST_MAX_DEVICES];
  uint8_t sig[SOTTO_SIGNATURE_LEN];
};

/* The membership signature of the device whose private identity key is
 * device_priv, joining (username, account_key) as device_id. Returns 0 or
 * SOTTO_ERR_USAGE (bad username, device id 0). */
SOTTO_WUR int sotto_devlist_member_sign(uint8_t sig[SOTTO_SIGNATURE_LEN],
                                        const uint8_t device_priv[SOTTO_PRIVKEY_LEN], const char *username,
                                        const uint8_t account_key[SOTTO_PUBKEY_LEN], uint32_t device_id);
/* Verifies a membership signature; 0 or SOTTO_ERR_AUTH (SOTTO_ERR_USAGE for
 * a bad username or device id 0). */
SOTTO_WUR int sotto_devlist_member_verify(const char *username, const uint8_t account_key[SOTTO_PUBKEY_LEN],
                                          uint32_t device_id, const uint8_t device_key[SOTTO_PUBKEY_LEN],
                                          const uint8_t sig[SOTTO_SIGNATURE_LEN]);

/* Checks the list's structure (username, 1..MAX entries, ids strictly
 * increasing and not 0, names), signs it with the account key (whose
 * public half must be l->account_key) into l->sig and writes the encoding
 * into out. The membership signatures are not made here (each device makes
 * its own) but are checked: a list with a bad one is not signed
 * (SOTTO_ERR_AUTH). Errors: SOTTO_ERR_USAGE, SOTTO_ERR_TOO_LARGE,
 * SOTTO_ERR_MALFORMED (structure), SOTTO_ERR_AUTH, SOTTO_ERR_BUFFER_TOO_SMALL. */
SOTTO_WUR int sotto_devlist_sign(struct sotto_devlist *l, const uint8_t account_priv[SOTTO_PRIVKEY_LEN],
                                 uint8_t *out, size_t cap, size_t *out_len);

/* Parses and verifies a list: structure, every membership signature and the
 * account key's signature. On any failure *l is zeroed and the error says
 * why: SOTTO_ERR_TRUNCATED, SOTTO_ERR_TRAILING, SOTTO_ERR_TOO_LARGE (too
 * many entries, name too long), SOTTO_ERR_MALFORMED (format, username, id 0,
 * ids not increasing or repeated, bad name), SOTTO_ERR_AUTH (a signature).
 * The list verifies against its own account_key: the caller still compares
 * that key and the username with the ones it trusts, and the version with
 * the last one it saw. */
SOTTO_WUR int sotto_devlist_parse(struct sotto_devlist *l, const uint8_t *in, size_t in_len);

/* Index of device_id in the list, or -1. */
int sotto_devlist_find(const struct sotto_devlist *l, uint32_t device_id);

#ifdef __cplusplus
}
#endif
#endif
