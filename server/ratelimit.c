/* SPDX-License-Identifier: Apache-2.0 */
/* ratelimit.c: see ratelimit.h. */
#include "ratelimit.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct sotto_lim_entry {
  struct sotto_lim_entry *next;
  uint64_t key;
  double tokens, rate, burst; /* buckets */
  int64_t ms;
  long count; /* counters */
  int is_counter;
};

int sotto__lim_init(struct sotto_lim *L, size_t nbuckets, size_t max_entries) {
  size_t n = 1;
  memset(L, 0, sizeof *L);
  while (n < nbuckets) n <<= 1;
  if ((L->tab = calloc(n, sizeof *L->tab)) == NULL) return -1;
  L->nbuckets = n;
  L->max_entries = max_entries;
  randombytes_buf(L->key, sizeof L->key);
  return 0;
}

void sotto__lim_free(struct sotto_lim *L) {
  size_t i;
  if (!L->tab) return;
  for (i = 0; i < L->nbuckets; i++)
    while (L->tab[i]) {
      struct sotto_lim_entry *e = L->tab[i];
      L->tab[i] = e->next;
      free(e);
    }
  free(L->tab);
  sodium_memzero(L, sizeof *L);
}

uint64_t sotto__lim_key(const struct sotto_lim *L, int ns, const void *p, size_t len) {
  uint8_t buf[1 + 96], h[crypto_shorthash_BYTES];
  uint64_t k;
  if (len > sizeof buf - 1) len = sizeof buf - 1; /* callers pass at most 40 bytes */
  buf[0] = (uint8_t)ns;
  if (len) memcpy(buf + 1, p, len);
  crypto_shorthash(h, buf, 1 + len, L->key);
  memcpy(&k, h, sizeof k);
  return k ? k : 1;
}

static struct sotto_lim_entry **slot(const struct sotto_lim *L, uint64_t key) {
  return &L->tab[(key * 0x9E3779B97F4A7C15ull >> 20) & (L->nbuckets - 1)];
}

static struct sotto_lim_entry *find(const struct sotto_lim *L, uint64_t key) {
  struct sotto_lim_entry *e;
  for (e = *slot(L, key); e; e = e->next)
    if (e->key == key) return e;
  return NULL;
}

static struct sotto_lim_entry *add(struct sotto_lim *L, uint64_t key) {
  struct sotto_lim_entry *e, **s;
  if (L->n >= L->max_entries || (e = calloc(1, sizeof *e)) == NULL) return NULL;
  s = slot(L, key);
  e->key = key;
  e->next = *s;
  *s = e;
  L->n++;
  return e;
}

static void del(struct sotto_lim *L, struct sotto_lim_entry *e) {
  struct sotto_lim_entry **pp;
  for (pp = slot(L, e->key); *pp; pp = &(*pp)->next)
    if (*pp == e) {
      *pp = e->next;
      free(e);
      L->n--;
      return;
    }
}

/* The bucket of key with its tokens brought up to now, created full if
 * missing; NULL if the table is full. */
static struct sotto_lim_entry *bucket(struct sotto_lim *L, uint64_t key, double rate, double burst, int64_t now) {
  struct sotto_lim_entry *e = find(L, key);
  if (!e) {
    if ((e = add(L, key)) == NULL) return NULL;
    e->tokens = burst;
    e->ms = now;
  }
  e->rate = rate;
  e->burst = burst;
  if (now > e->ms) e->tokens += (double)(now - e->ms) * rate;
  if (e->tokens > burst) e->tokens = burst;
  e->ms = now;
  return e;
}

int sotto__lim_take(struct sotto_lim *L, uint64_t key, double rate, double burst, int64_t now_ms) {
  struct sotto_lim_entry *e = bucket(L, key, rate, burst, now_ms);
  if (!e || e->tokens < 1.0) return 0;
  e->tokens -= 1.0;
  return 1;
}

int sotto__lim_peek(struct sotto_lim *L, uint64_t key, double rate, double burst, int64_t now_ms) {
  struct sotto_lim_entry *e = bucket(L, key, rate, burst, now_ms);
  return e && e->tokens >= 1.0;
}

void sotto__lim_charge(struct sotto_lim *L, uint64_t key, double rate, double burst, int64_t now_ms) {
  struct sotto_lim_entry *e = bucket(L, key, rate, burst, now_ms);
  if (!e) return;
  e->tokens = e->tokens >= 1.0 ? e->tokens - 1.0 : 0.0;
}

long sotto__lim_count(const struct sotto_lim *L, uint64_t key) {
  const struct sotto_lim_entry *e = find(L, key);
  return e ? e->count : 0;
}

long sotto__lim_inc(struct sotto_lim *L, uint64_t key) {
  struct sotto_lim_entry *e = find(L, key);
  if (!e) {
    if ((e = add(L, key)) == NULL) return -1;
    e->is_counter = 1;
  }
  return ++e->count;
}

void sotto__lim_dec(struct sotto_lim *L, uint64_t key) {
  struct sotto_lim_entry *e = find(L, key);
  if (e && --e->count <= 0) del(L, e);
}

void sotto__lim_sweep(struct sotto_lim *L, int64_t now_ms) {
  size_t i;
  for (i = 0; i < L->nbuckets; i++) {
    struct sotto_lim_entry **pp = &L->tab[i];
    while (*pp) {
      struct sotto_lim_entry *e = *pp;
      if (!e->is_counter && e->tokens + (double)(now_ms - e->ms) * e->rate >= e->burst) {
        *pp = e->next;
        free(e);
        L->n--;
      } else {
        pp = &e->next;
      }
    }
  }
}
