/* SPDX-License-Identifier: Apache-2.0 */
/* store.h: the client's local store, one SQLite file (HOME/sotto.db) in which
 * every record is sealed (docs/client.md, "Local store").
 *
 * A passphrase gives, through Argon2id (libsodium crypto_pwhash with the
 * salt and limits kept in the file), a 32-byte master key. From it come a
 * sealing key (XChaCha20-Poly1305 over every record), an index key (rows
 * are found by a keyed BLAKE2b hash of their logical name, so the file does
 * not show which contacts or groups exist) and a key-check value. A wrong
 * passphrase is refused by comparing the key-check value (constant time)
 * before anything is written.
 *
 * Records are (logical name, value) pairs. A value is sealed with the
 * logical name inside the plaintext and the row hash as additional data, so
 * rows cannot be swapped or renamed undetected. A sealed store-wide state
 * (commit counter, device epoch, XOR of keyed hashes of every live row) is
 * checked at open, so an older copy of a row put back, or rows of
 * different times mixed, are refused (STORE_E_ROLLBACK).
 *
 * The master and derived keys live in sodium_malloc memory and are wiped by
 * store_close. Values returned by store_get are malloc'd copies the caller
 * releases with store_free_value (wipes). */
#ifndef SOTTO_CLIENT_STORE_H
#define SOTTO_CLIENT_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Argon2id limits for new stores, and the floor older stores are migrated
 * to (re-sealed) at their next unlock: libsodium's MODERATE profile (3
 * passes, 256 MiB), measured in docs/client.md. */
#define STORE_OPSLIMIT 3ULL
#define STORE_MEMLIMIT (256ULL * 1024 * 1024)
/* The limits in force: STORE_OPSLIMIT / STORE_MEMLIMIT, except in the
 * sotto-test binary (SOTTO_TEST_HOOKS, never installed) when
 * SOTTO_TEST_KDF=fast asks for libsodium's minimum (1 pass, 8 MiB) so that
 * the end-to-end tests, which run the client hundreds of times, do not
 * spend a second of Argon2id on each run. */
unsigned long long store_opslimit(void);
size_t store_memlimit(void);
#define STORE_SALT_LEN 16
#define STORE_FILE "sotto.db"
#define STORE_MAX_NAME 300
#define STORE_MAX_VALUE (8 * 1024 * 1024)
#define STORE_MAX_PASSPHRASE 1024

/* Results besides 0. */
#define STORE_E_IO (-1)       /* SQLite failed (message in store_errmsg) */
#define STORE_E_PASS (-2)     /* wrong passphrase */
#define STORE_E_EXISTS (-3)   /* store_create: there is already a store */
#define STORE_E_MISSING (-4)  /* store_open: no store there */
#define STORE_E_CORRUPT (-5)  /* a record fails to open or parse */
#define STORE_E_BUSY (-6)     /* another sotto process holds the store */
#define STORE_E_ROLLBACK (-7) /* store_open: rows do not match the last commit (an old row put back) */

struct store;

/* Creates HOME/sotto.db (on failure err gets a one-line reason) (HOME must exist) with fresh salt and limits. */
int store_create(struct store **out, const char *home, const char *pass, size_t pass_len, char *err,
                 size_t errlen);
/* The same with given Argon2id limits (tests make an older, weaker store). */
int store_create_limits(struct store **out, const char *home, const char *pass, size_t pass_len,
                        unsigned long long ops, size_t mem, char *err, size_t errlen);
/* Opens an existing store (migrating an older one, see store.c); STORE_E_PASS leaves the file exactly as it was. */
int store_open(struct store **out, const char *home, const char *pass, size_t pass_len, char *err,
               size_t errlen);
/* Re-seals the whole store under a new passphrase (fresh salt, current
 * limits) in one transaction: a crash at any point leaves either the old or
 * the new passphrase working (see store.c). On failure the old one stays. */
int store_rekey(struct store *s, const char *pass, size_t pass_len);
/* Wipes the keys and closes. NULL is a no-op. */
void store_close(struct store *s);
const char *store_errmsg(const struct store *s);
const char *store_path(const struct store *s);

/* Write transactions (BEGIN IMMEDIATE: one writer at a time across
 * processes, waiting up to a few seconds). Reads outside a transaction see
 * the last commit. */
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/* The device epoch kept in the state (docs/client.md, "Rollback"): read
 * inside a transaction (or right after open); set only inside one. */
uint64_t store_epoch(const struct store *s);
int store_set_epoch(struct store *s, uint64_t epoch);

/* 1 with *val and *len (malloc'd) when found, 0 when absent, or a STORE_E_*. */
int store_get(struct store *s, const char *name, uint8_t **val, size_t *len);
int store_put(struct store *s, const char *name, const uint8_t *val, size_t len);
int store_del(struct store *s, const char *name);
void store_free_value(uint8_t *val, size_t len);

/* Calls cb for every record whose logical name starts with prefix (every
 * row is opened to find them; the store is small). cb returns 0 to go on,
 * anything else stops the scan and is returned. */
int store_scan(struct store *s, const char *prefix,
               int (*cb)(void *ud, const char *name, const uint8_t *val, size_t len), void *ud);

#endif
