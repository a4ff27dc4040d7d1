/* SPDX-License-Identifier: Apache-2.0 */
/* tests/mlkem/mlkem_test.h: small helpers shared by the ML-KEM tests.
 *
 * Checks print one line per failure ("FAIL <where>: <what>") and count it;
 * each test's main returns mt_finish(), which is non-zero if anything failed.
 * Vector files are read with a hard size cap, JSON through cJSON, gzip through
 * zlib. Every helper that returns memory says who frees it. */
#ifndef SOTTO_TESTS_MLKEM_TEST_H
#define SOTTO_TESTS_MLKEM_TEST_H

#include <cjson/cJSON.h>
#include <sotto/mlkem.h>
#include <stddef.h>
#include <stdint.h>

/* One ML-KEM parameter set as the tests see it: the name used by the vector
 * files, the sizes and the public entry points. */
struct mt_kem {
  const char *name; /* "ML-KEM-768" / "ML-KEM-1024" */
  size_t k;
  size_t pk_len, sk_len, ct_len;
  int (*keypair)(uint8_t *pk, uint8_t *sk);
  int (*keypair_derand)(uint8_t *pk, uint8_t *sk, const uint8_t *coins);
  int (*keypair_from_seed)(uint8_t *pk, uint8_t *sk, const uint8_t *seed, size_t seed_len);
  int (*check_pk)(const uint8_t *pk, size_t pk_len);
  int (*encaps)(uint8_t *ct, uint8_t *ss, const uint8_t *pk, size_t pk_len);
  int (*encaps_derand)(uint8_t *ct, uint8_t *ss, const uint8_t *pk, size_t pk_len, const uint8_t *m);
  int (*decaps)(uint8_t *ss, const uint8_t *ct, size_t ct_len, const uint8_t *sk, size_t sk_len);
};
#define MT_NKEMS 2
extern const struct mt_kem mt_kems[MT_NKEMS];

/* Largest object any vector holds: an ML-KEM-1024 dk plus one stray byte. */
#define MT_MAX_BLOB 4096
/* Largest vector file we accept (the Wycheproof subset is about 400 KB). */
#define MT_MAX_FILE (4 * 1024 * 1024)

extern unsigned long mt_checks;
extern unsigned long mt_failures;

/* Records one check; prints the formatted message when ok is 0. */
void mt_check(int ok, const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define MT_CHECK(ok, ...) mt_check((ok) != 0, __FILE__, __LINE__, __VA_ARGS__)

/* Compares two byte strings; on mismatch prints what and the first difference. */
void mt_check_bytes(const uint8_t *got, const uint8_t *want, size_t len, const char *file, int line,
                    const char *what);
#define MT_CHECK_BYTES(got, want, len, what) mt_check_bytes((got), (want), (len), __FILE__, __LINE__, (what))

/* 1 if all len bytes are zero. */
int mt_all_zero(const uint8_t *p, size_t len);

/* Prints a summary line and returns the process exit status. */
int mt_finish(const char *test_name);

/* Reads dir/name (at most MT_MAX_FILE bytes). Returns a malloc'd buffer with a
 * terminating NUL the caller frees, or NULL after printing why. */
char *mt_read_file(const char *dir, const char *name, size_t *len);

/* Reads and parses a JSON vector file; the caller owns the result
 * (cJSON_Delete). NULL after printing why. */
cJSON *mt_load_json(const char *dir, const char *name);

/* Decodes the hex string obj[key] into out (capacity cap). Returns the number
 * of bytes, or -1 (after printing why) if the key is missing, is not a string,
 * is not valid hex or does not fit. */
long mt_hex_field(const cJSON *obj, const char *key, uint8_t *out, size_t cap);

/* Decodes a hex string of exactly 2*len digits into out. 0 or -1. */
int mt_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t cap, size_t *len);

/* obj[key] as a string, or "" if absent. */
const char *mt_str_field(const cJSON *obj, const char *key);

/* obj[key] as an int, or -1 if absent or not a number. */
int mt_int_field(const cJSON *obj, const char *key);

/* 1 if obj["flags"] is an array containing the string flag. */
int mt_has_flag(const cJSON *obj, const char *flag);

#endif
