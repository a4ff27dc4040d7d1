/* SPDX-License-Identifier: Apache-2.0 */
/* skipped.c: see skipped.h. */
#include "skipped.h"

#include <sotto/limits.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

#define CAP SOTTO_MAX_SKIPPED_KEYS
_Static_assert(CAP < 32767, "indices are int16");

static size_t table_size(void) { return sizeof(struct sotto__skipped) + CAP * sizeof(struct sotto__skent); }

static uint32_t hash(const uint8_t chain[32], uint32_t counter) {
  uint32_t h;
  memcpy(&h, chain + 4, 4);
  h ^= counter * 0x9E3779B1u;
  h ^= h >> 15;
  return h & (SOTTO__SKIPPED_BUCKETS - 1);
}

struct sotto__skipped *sotto__skipped_new(void) {
  struct sotto__skipped *t = calloc(1, table_size());
  if (t == NULL) return NULL;
  for (size_t i = 0; i < SOTTO__SKIPPED_BUCKETS; i++) t->buckets[i] = -1;
  return t;
}

void sotto__skipped_free(struct sotto__skipped *t) {
  if (t == NULL) return;
  sotto__wipe(t, table_size());
  free(t);
}

struct sotto__skipped *sotto__skipped_dup(const struct sotto__skipped *t) {
  struct sotto__skipped *c = malloc(table_size());
  if (c != NULL) memcpy(c, t, table_size());
  return c;
}

int sotto__skipped_find(const struct sotto__skipped *t, const uint8_t chain[32], uint32_t counter) {
  int i;
  if (t == NULL) return -1;
  for (i = t->buckets[hash(chain, counter)]; i >= 0; i = t->ents[i].next) {
    const struct sotto__skent *e = &t->ents[i];
    if (e->alive && e->counter == counter && memcmp(e->chain, chain, 32) == 0) return i;
  }
  return -1;
}

void sotto__skipped_remove(struct sotto__skipped *t, int idx) {
  struct sotto__skent *e = &t->ents[idx];
  int16_t *link = &t->buckets[hash(e->chain, e->counter)];

  while (*link >= 0 && *link != idx) link = &t->ents[*link].next;
  if (*link == idx) *link = e->next;
  sotto__wipe(e->seed, sizeof e->seed);
  e->alive = 0;
  e->next = -1;
  t->live--;
}

void sotto__skipped_remove_chain(struct sotto__skipped *t, const uint8_t chain[32]) {
  if (t == NULL) return;
  for (uint32_t i = 0; i < t->used && t->live > 0; i++) {
    struct sotto__skent *e = &t->ents[i];
    if (e->alive && memcmp(e->chain, chain, 32) == 0) sotto__skipped_remove(t, (int)i);
  }
}

void sotto__skipped_insert(struct sotto__skipped *t, const uint8_t chain[32], uint32_t counter,
                           const uint8_t seed[32]) {
  int idx = (int)t->head;
  struct sotto__skent *e = &t->ents[idx];
  uint32_t b;

  if (t->used == CAP && e->alive) sotto__skipped_remove(t, idx); /* evict the oldest */
  memcpy(e->chain, chain, 32);
  memcpy(e->seed, seed, 32);
  e->counter = counter;
  e->alive = 1;
  b = hash(chain, counter);
  e->next = t->buckets[b];
  t->buckets[b] = (int16_t)idx;
  t->live++;
  t->head = (t->head + 1) % CAP;
  if (t->used < CAP) t->used++;
}

void sotto__skipped_each(const struct sotto__skipped *t,
                         void (*fn)(void *ud, const struct sotto__skent *e), void *ud) {
  uint32_t start, i;
  if (t == NULL) return;
  start = (t->head + CAP - t->used) % CAP;
  for (i = 0; i < t->used; i++) {
    const struct sotto__skent *e = &t->ents[(start + i) % CAP];
    if (e->alive) fn(ud, e);
  }
}
