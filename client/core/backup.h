/* SPDX-License-Identifier: Apache-2.0 */
/* backup.h: the encrypted backup file of a client home (sotto backup /
 * restore; format in docs/client.md, "Backup file").
 *
 * A file is a fixed 60-byte header followed by one XChaCha20-Poly1305
 * ciphertext (the header is its additional data):
 *
 *   magic "SOTTOBAK" (8) | version u8 = 1 | kind u8 (1 passphrase, 2 recovery key)
 *   | reserved u16 = 0 | Argon2id opslimit u32 | memlimit KiB u32 | salt (16) | nonce (24)
 *
 * The key is Argon2id(secret, salt, limits) where secret is the passphrase,
 * or the 30 random bytes of a recovery key. The plaintext is
 *
 *   created_ms u64 | username str16 (0..32) | count u32 (<= BACKUP_MAX_RECORDS)
 *   | count x { name str16 (1..STORE_MAX_NAME, no NUL) | value_len u32 (<= STORE_MAX_VALUE) | value }
 *
 * with no trailing byte: every record of the local store, as (logical
 * name, value). Integers are big-endian. The parsers below are pure (no I/O)
 * and bounded; the fuzz target fuzz_backup_file drives them. */
#ifndef SOTTO_CLIENT_BACKUP_H
#define SOTTO_CLIENT_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define BACKUP_MAGIC "SOTTOBAK"
#define BACKUP_VERSION 1
#define BACKUP_KIND_PASSPHRASE 1
#define BACKUP_KIND_RECOVERY_KEY 2
#define BACKUP_SALT_LEN 16
#define BACKUP_NONCE_LEN 24
#define BACKUP_TAG_LEN 16
#define BACKUP_HDR_LEN 60
#define BACKUP_MAX_FILE (256u * 1024 * 1024) /* a larger file is refused before it is read */
#define BACKUP_MAX_RECORDS 1000000u
#define BACKUP_MAX_OPSLIMIT 16u
#define BACKUP_MIN_MEM_KIB 8u
#define BACKUP_MAX_MEM_KIB (1024u * 1024)
/* Recovery key: 30 random bytes and a 2-byte check, as 64 hex digits in 16
 * groups of 4 joined by '-'. */
#define BACKUP_RK_RANDOM 30
#define BACKUP_RK_CHECK 2
#define BACKUP_RK_TEXT_LEN 79

struct backup_hdr {
  uint8_t kind;
  uint32_t opslimit, mem_kib;
  uint8_t salt[BACKUP_SALT_LEN];
  uint8_t nonce[BACKUP_NONCE_LEN];
};

/* Parses the header of a file of len bytes (the ciphertext that follows
 * must hold at least the tag). 0 or -1 (not a backup, unknown version or
 * kind, limits out of range, reserved bits set, truncated). */
int backup_parse_header(const uint8_t *p, size_t len, struct backup_hdr *h);
void backup_put_header(uint8_t out[BACKUP_HDR_LEN], const struct backup_hdr *h);

/* Walks a plaintext: *username gets the account name (cap bytes, NUL-ended),
 * then cb sees every record (name NUL-terminated; value points into pt).
 * The whole plaintext is checked before the first cb call when cb is NULL;
 * a restore parses once with cb NULL, then again to act. 0, -1 malformed,
 * or what cb returned (non-zero stops). */
int backup_parse_records(const uint8_t *pt, size_t len, uint64_t *created_ms, char *username, size_t cap,
                         int (*cb)(void *ud, const char *name, const uint8_t *val, size_t vlen), void *ud);

/* A new recovery key (text form, NUL-terminated) and its secret bytes. */
void backup_rk_new(char text[BACKUP_RK_TEXT_LEN + 1], uint8_t secret[BACKUP_RK_RANDOM]);
/* Reads a typed recovery key (hex digits; '-' and spaces ignored; either
 * case). 0, -1 if it is not 64 hex digits, -2 if the check fails (a typo). */
int backup_rk_parse(uint8_t secret[BACKUP_RK_RANDOM], const char *text, size_t len);

#endif
