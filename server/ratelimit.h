/* SPDX-License-Identifier: Apache-2.0 */
/* ratelimit.h: keyed token buckets and counters of sotto-server, for limits
 * that must outlive a connection (send and bundle rates live with the
 * account, failed logins with the (address, account) pair, registrations
 * with the address, its prefix and the server) and for the per-address share
 * of the pre-authentication slots.
 *
 * Keys are 64-bit keyed hashes (SipHash, key random per process) of a
 * namespace byte and the identity (an account id, a device, an address
 * prefix, a username): two identities share a bucket only on a 64-bit
 * collision, never because they fell into the same slot of a small table.
 * Entries live in a chained hash table; a bucket that has refilled holds
 * nothing worth keeping and is freed by the periodic sweep, and a counter is
 * freed when it drops to 0. The table never holds more than max_entries
 * entries: when it is full, a new key is refused (fail closed), which only
 * happens if more than max_entries identities are being limited at once.
 * Used only from the I/O thread. */
#ifndef SOTTO_SRV_RATELIMIT_H
#define SOTTO_SRV_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct sotto_lim_entry;

struct sotto_lim {
  struct sotto_lim_entry **tab;
  size_t nbuckets, n, max_entries;
  uint8_t key[16];
};

/* Namespaces of keys (one byte hashed in front of the identity). */
enum {
  SOTTO_LIM_SEND = 1,       /* account id: SENDs */
  SOTTO_LIM_BUNDLE,         /* account id: BUNDLE requests made */
  SOTTO_LIM_OTK,            /* target username + device id: one-time keys handed out */
  SOTTO_LIM_KEYS_LOW,       /* device key: KEYS_LOW pushes */
  SOTTO_LIM_AUTH_ADDR,      /* address: failed AUTHs */
  SOTTO_LIM_AUTH_ADDR_USER, /* address + username: failed AUTHs */
  SOTTO_LIM_REG_ADDR,       /* address: registrations */
  SOTTO_LIM_REG_PREFIX,     /* address prefix: registrations */
  SOTTO_LIM_REG_GLOBAL,     /* the server: registrations */
  SOTTO_LIM_UNAUTH_ADDR,    /* address: pre-auth connections (counter) */
  SOTTO_LIM_UNAUTH_PREFIX,  /* address prefix: pre-auth connections (counter) */
  SOTTO_LIM_DEVICE_CHANGE,  /* account id: device additions, removals, secret rotations */
  SOTTO_LIM_KT_ADDR,        /* address: key-transparency requests (KT_*) */
  SOTTO_LIM_BLOB            /* account id: blob requests (BLOB_*) */
};

/* 0 or -1 (no memory). nbuckets is rounded up to a power of two. */
int sotto__lim_init(struct sotto_lim *L, size_t nbuckets, size_t max_entries);
void sotto__lim_free(struct sotto_lim *L);
/* The key of (namespace, bytes). */
uint64_t sotto__lim_key(const struct sotto_lim *L, int ns, const void *p, size_t len);

/* Token buckets: rate in tokens per millisecond, burst the bucket size (a new
 * key starts full). take: 1 and one token less if at least one is there,
 * else 0. peek: 1 if at least one token is there, nothing taken. charge:
 * one token less now, never below 0 (for costs known only afterwards, such as
 * a failed login). */
int sotto__lim_take(struct sotto_lim *L, uint64_t key, double rate, double burst, int64_t now_ms);
int sotto__lim_peek(struct sotto_lim *L, uint64_t key, double rate, double burst, int64_t now_ms);
void sotto__lim_charge(struct sotto_lim *L, uint64_t key, double rate, double burst, int64_t now_ms);

/* Counters (pre-auth slots): value, +1 (returns the new value or -1 if the
 * table is full), -1 (freed at 0). */
long sotto__lim_count(const struct sotto_lim *L, uint64_t key);
long sotto__lim_inc(struct sotto_lim *L, uint64_t key);
void sotto__lim_dec(struct sotto_lim *L, uint64_t key);

/* Frees buckets that have refilled completely. Cost: one pass over the
 * entries; call it about once a second. */
void sotto__lim_sweep(struct sotto_lim *L, int64_t now_ms);

#endif
