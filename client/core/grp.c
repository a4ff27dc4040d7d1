/* SPDX-License-Identifier: Apache-2.0 */
/* grp.c: group records and sender key records (grp.h). */
#include "grp.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

#include <sotto/devlist.h>

#define GRP_VERSION 1

int grp_name_ok(const char *s) {
  size_t n = strlen(s), i;
  if (n == 0 || n > GROUP_NAME_MAX) return 0;
  for (i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '_' || s[i] == '.' || s[i] == '-'))
      return 0;
  return 1;
}

static void gid_hex(char out[2 * GROUP_ID_LEN + 1], const uint8_t gid[GROUP_ID_LEN]) {
  sodium_bin2hex(out, 2 * GROUP_ID_LEN + 1, gid, GROUP_ID_LEN);
}

static int parse(struct grp *g, const uint8_t *v, size_t n) {
  struct rec_rd r;
  uint8_t ver = 0, nm = 0, nd = 0;
  size_t i;
  memset(g, 0, sizeof *g);
  rec_rd_init(&r, v, n);
  rec_get_u8(&r, &ver);
  rec_get(&r, g->gid, GROUP_ID_LEN);
  rec_get_cstr(&r, g->name, sizeof g->name);
  rec_get_u32(&r, &g->epoch);
  rec_get_u8(&r, &nm);
  if (nm > GROUP_MAX_MEMBERS) return STORE_E_CORRUPT;
  for (i = 0; i < nm; i++) rec_get_cstr(&r, g->members[i], sizeof g->members[i]);
  rec_get_u8(&r, &nd);
  if (nd > GROUP_MAX_MEMBERS) return STORE_E_CORRUPT;
  for (i = 0; i < nd; i++) rec_get_cstr(&r, g->dist[i], sizeof g->dist[i]);
  g->n = nm;
  g->n_dist = nd;
  return (rec_rd_end(&r) || ver != GRP_VERSION) ? STORE_E_CORRUPT : 0;
}

int grp_load(struct store *st, const uint8_t gid[GROUP_ID_LEN], struct grp *g) {
  char rn[80], hex[2 * GROUP_ID_LEN + 1];
  uint8_t *v;
  size_t n;
  int rc;
  gid_hex(hex, gid);
  snprintf(rn, sizeof rn, "group/%s", hex);
  rc = store_get(st, rn, &v, &n);
  if (rc <= 0) return rc;
  rc = parse(g, v, n);
  store_free_value(v, n);
  return rc ? rc : 1;
}

int grp_save(struct store *st, const struct grp *g) {
  struct rec_wr w;
  char rn[80], hex[2 * GROUP_ID_LEN + 1];
  size_t i;
  int rc;
  rec_wr_init(&w, 16384);
  rec_put_u8(&w, GRP_VERSION);
  rec_put(&w, g->gid, GROUP_ID_LEN);
  rec_put_str16(&w, g->name, strlen(g->name));
  rec_put_u32(&w, g->epoch);
  rec_put_u8(&w, (uint8_t)g->n);
  for (i = 0; i < g->n; i++) rec_put_str16(&w, g->members[i], strlen(g->members[i]));
  rec_put_u8(&w, (uint8_t)g->n_dist);
  for (i = 0; i < g->n_dist; i++) rec_put_str16(&w, g->dist[i], strlen(g->dist[i]));
  gid_hex(hex, g->gid);
  snprintf(rn, sizeof rn, "group/%s", hex);
  rc = rec_wr_ok(&w) ? STORE_E_IO : store_put(st, rn, w.p, w.len);
  rec_wr_free(&w);
  return rc;
}

struct each_ctx {
  int (*cb)(void *ud, const struct grp *g);
  void *ud;
};

static int each_cb(void *ud, const char *name, const uint8_t *v, size_t n) {
  struct each_ctx *e = ud;
  struct grp *g = malloc(sizeof *g);
  int rc;
  (void)name;
  if (!g) return STORE_E_IO;
  rc = parse(g, v, n);
  if (!rc) rc = e->cb(e->ud, g);
  free(g);
  return rc;
}

int grp_each(struct store *st, int (*cb)(void *ud, const struct grp *g), void *ud) {
  struct each_ctx e = {cb, ud};
  return store_scan(st, "group/", each_cb, &e);
}

struct find_ctx {
  const char *name;
  struct grp *out;
};

static int find_cb(void *ud, const struct grp *g) {
  struct find_ctx *f = ud;
  if (strcmp(g->name, f->name) != 0) return 0;
  *f->out = *g;
  return 1;
}

int grp_find(struct store *st, const char *name, struct grp *g) {
  struct find_ctx f = {name, g};
  return grp_each(st, find_cb, &f);
}

int grp_has(const char list[][SC_USER_MAX + 1], size_t n, const char *user) {
  size_t i;
  for (i = 0; i < n; i++)
    if (strcmp(list[i], user) == 0) return 1;
  return 0;
}

void grp_list_add(char list[][SC_USER_MAX + 1], size_t *n, const char *user) {
  if (grp_has(list, *n, user) || *n >= GROUP_MAX_MEMBERS) return;
  snprintf(list[*n], SC_USER_MAX + 1, "%s", user);
  (*n)++;
}

void grp_list_del(char list[][SC_USER_MAX + 1], size_t *n, const char *user) {
  size_t i, j = 0;
  for (i = 0; i < *n; i++)
    if (strcmp(list[i], user) != 0) {
      if (i != j) memcpy(list[j], list[i], SC_USER_MAX + 1);
      j++;
    }
  *n = j;
}

/* "gsk/GID/MEMBER/DEV": the chain of one device of a member; dev 0 names
 * the record of before per-device chains ("gsk/GID/MEMBER"), still read. */
void grp_sk_name(char *rn, size_t cap, const struct grp *g, const char *member, uint32_t dev) {
  char hex[2 * GROUP_ID_LEN + 1];
  gid_hex(hex, g->gid);
  if (dev == 0) snprintf(rn, cap, "gsk/%s/%s", hex, member);
  else snprintf(rn, cap, "gsk/%s/%s/%u", hex, member, (unsigned)dev);
}

int grp_sk_load(struct store *st, const struct grp *g, const char *member, uint32_t dev,
                struct sotto_sender_key **out) {
  char rn[GRP_SK_NAME_MAX];
  uint8_t *v;
  size_t n;
  int rc;
  *out = NULL;
  if (dev == 0) return STORE_E_IO;
  grp_sk_name(rn, sizeof rn, g, member, dev);
  rc = store_get(st, rn, &v, &n);
  if (rc == 0) {
    /* Not yet per device: the member's record from before, if any. */
    grp_sk_name(rn, sizeof rn, g, member, 0);
    rc = store_get(st, rn, &v, &n);
  }
  if (rc < 0) return rc;
  if (rc == 0) return sotto_sender_key_new(out) ? STORE_E_IO : 0;
  rc = sotto_sender_key_deserialize(out, v, n) ? STORE_E_CORRUPT : 1;
  store_free_value(v, n);
  return rc;
}

int grp_sk_save(struct store *st, const struct grp *g, const char *member, uint32_t dev,
                const struct sotto_sender_key *rec) {
  char rn[GRP_SK_NAME_MAX];
  size_t cap = sotto_sender_key_serialized_size(rec), n;
  uint8_t *b;
  int rc;
  if (dev == 0) return STORE_E_IO;
  if (cap == 0 || cap > SOTTO_MAX_SENDER_KEY_RECORD_LEN || !(b = malloc(cap))) return STORE_E_IO;
  grp_sk_name(rn, sizeof rn, g, member, dev);
  rc = sotto_sender_key_serialize(rec, b, cap, &n) ? STORE_E_IO : store_put(st, rn, b, n);
  sodium_memzero(b, cap);
  free(b);
  return rc;
}

int grp_sk_del_dev(struct store *st, const struct grp *g, const char *member, uint32_t dev) {
  char rn[GRP_SK_NAME_MAX];
  int rc;
  grp_sk_name(rn, sizeof rn, g, member, dev);
  if ((rc = store_del(st, rn)) < 0) return rc;
  /* the record from before per-device chains may hold this device's chain */
  grp_sk_name(rn, sizeof rn, g, member, 0);
  rc = store_del(st, rn);
  return rc < 0 ? rc : 0;
}

#define SK_DEL_BATCH 16
struct sk_names {
  char n[SK_DEL_BATCH][GRP_SK_NAME_MAX];
  size_t k;
};

static int sk_names_cb(void *ud, const char *name, const uint8_t *v, size_t len) {
  struct sk_names *s = ud;
  (void)v;
  (void)len;
  if (strlen(name) >= GRP_SK_NAME_MAX) return 0;
  snprintf(s->n[s->k++], GRP_SK_NAME_MAX, "%s", name);
  return s->k == SK_DEL_BATCH ? 1 : 0;
}

/* Deletes every record whose name starts with prefix: found in batches (one
 * scan of the store each; a batch is deleted after its scan). */
static int del_prefixed(struct store *st, const char *prefix) {
  struct sk_names *s = malloc(sizeof *s);
  size_t i;
  int rc;
  if (!s) return STORE_E_IO;
  for (;;) {
    s->k = 0;
    if ((rc = store_scan(st, prefix, sk_names_cb, s)) < 0) goto out;
    for (i = 0; i < s->k; i++)
      if ((rc = store_del(st, s->n[i])) < 0) goto out;
    if (s->k < SK_DEL_BATCH) break;
  }
  rc = 0;
out:
  free(s);
  return rc;
}

int grp_sk_del(struct store *st, const struct grp *g, const char *member) {
  char rn[GRP_SK_NAME_MAX], prefix[GRP_SK_NAME_MAX + 2];
  int rc;
  grp_sk_name(rn, sizeof rn, g, member, 0);
  if ((rc = store_del(st, rn)) < 0) return rc;
  snprintf(prefix, sizeof prefix, "%s/", rn); /* every device's chain */
  return del_prefixed(st, prefix);
}

int grp_delete(struct store *st, const struct grp *g) {
  char rn[80], hex[2 * GROUP_ID_LEN + 1];
  int rc;
  gid_hex(hex, g->gid);
  /* every chain of the group, of members and of those who left (one scan) */
  snprintf(rn, sizeof rn, "gsk/%s/", hex);
  if ((rc = del_prefixed(st, rn)) != 0) return rc;
  snprintf(rn, sizeof rn, "group/%s", hex);
  return store_del(st, rn);
}

int grp_unique_name(struct store *st, const char *want, const uint8_t gid[GROUP_ID_LEN], char out[GROUP_NAME_MAX + 1]) {
  struct grp *g = malloc(sizeof *g);
  int i, rc;
  if (!g) return STORE_E_IO;
  for (i = 1; i < 1000; i++) {
    if (i == 1)
      snprintf(out, GROUP_NAME_MAX + 1, "%s", want);
    else
      snprintf(out, GROUP_NAME_MAX + 1, "%.*s-%d", GROUP_NAME_MAX - 4, want, i);
    rc = grp_find(st, out, g);
    if (rc < 0) break;
    if (rc == 0 || memcmp(g->gid, gid, GROUP_ID_LEN) == 0) {
      rc = 0;
      break;
    }
  }
  free(g);
  return rc < 0 ? rc : 0;
}

/* ---- device lists and sender keys (docs/groups.md) ------------------------------ */

#define FOLLOW_MAX_GROUPS 4096

struct follow_ctx {
  uint8_t (*gids)[GROUP_ID_LEN];
  size_t n;
  const char *user;
};

static int follow_cb(void *ud, const struct grp *g) {
  struct follow_ctx *f = ud;
  if (f->n < FOLLOW_MAX_GROUPS && grp_has(g->members, g->n, f->user)) memcpy(f->gids[f->n++], g->gid, GROUP_ID_LEN);
  return 0;
}

/* Whether device i of a is in b under the same key. */
static int dev_kept(const struct sotto_devlist *a, unsigned i, const struct sotto_devlist *b) {
  int j = b ? sotto_devlist_find(b, a->dev[i].device_id) : -1;
  return j >= 0 && sodium_memcmp(b->dev[j].device_key, a->dev[i].device_key, SOTTO_PUBKEY_LEN) == 0;
}

int grp_follow_devices(struct store *st, const char *user, const char *me, uint32_t own_dev,
                       const struct sotto_devlist *old, const struct sotto_devlist *now) {
  struct follow_ctx f;
  struct grp *g = NULL;
  int added = 0, removed = 0, rc = 0;
  unsigned i;
  size_t k;
  for (i = 0; i < now->n; i++)
    if (!dev_kept(now, i, old) && !(old == NULL && now->dev[i].device_id == 1)) added = 1;
  for (i = 0; old && i < old->n; i++)
    if (!dev_kept(old, i, now)) removed = 1;
  if (!added && !removed) return 0;
  memset(&f, 0, sizeof f);
  f.user = user;
  if (!(f.gids = malloc(FOLLOW_MAX_GROUPS * sizeof *f.gids)) || !(g = malloc(sizeof *g))) {
    rc = STORE_E_IO;
    goto out;
  }
  if ((rc = grp_each(st, follow_cb, &f)) < 0) goto out;
  for (k = 0; k < f.n; k++) {
    if ((rc = grp_load(st, f.gids[k], g)) < 0) goto out;
    if (rc == 0) continue;
    /* A new device gets our current key before our next group message
     * (the member, or our own name for our other devices, is sent it
     * again: a device that has it already keeps its chain as it is). */
    if (added) grp_list_del(g->dist, &g->n_dist, user);
    if (removed) {
      /* A removed device must not read what comes next: its chain is
       * forgotten, and ours is replaced before the next group send. */
      for (i = 0; i < old->n; i++)
        if (!dev_kept(old, i, now) && old->dev[i].device_id != (strcmp(user, me) == 0 ? own_dev : 0) &&
            (rc = grp_sk_del_dev(st, g, user, old->dev[i].device_id)) < 0)
          goto out;
      if ((rc = grp_sk_del_dev(st, g, me, own_dev)) < 0) goto out;
      g->n_dist = 0;
    }
    if ((rc = grp_save(st, g)) < 0) goto out;
  }
  rc = 0;
out:
  free(f.gids);
  free(g);
  return rc;
}
