/* SPDX-License-Identifier: Apache-2.0 */
/* requisition.c: `sotto-server requisition`: everything the store holds about
 * one account, as JSON. It is built only from the store interface, so what it
 * prints is by construction all there is: account creation day, devices
 * (id, created, last seen as a day, epoch), public key material, every
 * queued envelope (sender, sender's device, type, time, size: never its
 * bytes), what this account's own envelopes weigh in others' queues, the
 * history of its signed device list (version, time, device ids), the
 * attachments it uploaded (size and times: never their bytes or ids) and,
 * with key transparency, every version of its name in the public log (the
 * entry and time that logged it). */
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sotto/kt.h>

#include "server.h"
#include "proto.h"
#include "store.h"

static void day_str(char out[16], int64_t day) {
  time_t t = (time_t)(day * 86400);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 16, "%Y-%m-%d", &tm);
}

static void hex(FILE *out, const uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) fprintf(out, "%02x", p[i]);
}

struct req_ctx {
  FILE *out;
  int first;
  struct sotto_store *st;
  int env_first;
  int64_t last_id;
  int64_t listed;
  int rc;
};

/* Usernames are checked by the server on the way in; a tampered database
 * cannot break the JSON either. */
static void json_str(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') fprintf(out, "\\%c", ch);
    else if (ch < 0x20 || ch >= 0x7f) fprintf(out, "\\u%04x", ch);
    else fputc(ch, out);
  }
  fputc('"', out);
}

static void time_str(char out[32], int64_t ms) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int env_cb(void *ctx, const struct sotto_store_env *e) {
  struct req_ctx *r = ctx;
  char t[32];
  time_str(t, e->timestamp_ms);
  fprintf(r->out, "%s\n        {\"id\": %lld, \"sender\": ", r->env_first ? "" : ",", (long long)e->id);
  json_str(r->out, e->sender);
  fprintf(r->out, ", \"sender_device\": %u, \"type\": %u, \"time\": \"%s\", \"bytes\": %zu}", e->sender_device,
          e->type, t, e->body_len);
  r->env_first = 0;
  r->last_id = e->id;
  r->listed++;
  return 0;
}

static int dev_cb(void *ctx, const struct sotto_store_device *d, const struct sotto_store_devinfo *info) {
  struct req_ctx *r = ctx;
  char c[16], l[16];
  day_str(c, d->created_day);
  day_str(l, d->last_seen_day);
  fprintf(r->out, "%s\n    {\"device_id\": %u, \"created\": \"%s\", \"last_seen_day\": \"%s\",", r->first ? "" : ",",
          d->device_id, c, l);
  {
    /* the device's own identity key (DEVICE_IDENTITY), or null: it uses the account's */
    uint8_t ik[SOTTO_STORE_MAX_IDENTITY];
    size_t n = 0;
    int g = r->st->ops->device_identity_get(r->st->impl, d->devkey, ik, sizeof ik, &n);
    if (g == 0) {
      fprintf(r->out, " \"identity_key\": \"");
      hex(r->out, ik, n);
      fprintf(r->out, "\",");
    } else {
      fprintf(r->out, " \"identity_key\": null,");
      if (g < 0) r->rc = 2;
    }
  }
  if (info->spk) {
    fprintf(r->out, " \"signed_prekey\": {\"id\": %u, \"public\": \"", info->spk_id);
    hex(r->out, info->spk, info->spk_len);
    fprintf(r->out, "\"},");
  } else {
    fprintf(r->out, " \"signed_prekey\": null,");
  }
  fprintf(r->out,
          " \"one_time_prekeys\": %lld, \"kem_one_time_prekeys\": %lld, \"kem_last_resort\": %s,"
          " \"epoch\": %lld, \"queued_messages\": %lld, \"queued_bytes\": %lld,\n      \"queued\": [",
          (long long)info->ec_count, (long long)info->kem_count, info->has_last_resort ? "true" : "false",
          (long long)info->epoch, (long long)d->queue_count, (long long)d->queue_bytes);
  /* Every envelope, in pages (the queue is bounded by the server's limits). */
  r->env_first = 1;
  r->last_id = 0;
  for (;;) {
    int64_t before = r->listed;
    if (r->st->ops->msg_fetch(r->st->impl, d->devkey, r->last_id, 1000, env_cb, r) != 0) {
      r->rc = 2;
      break;
    }
    if (r->listed - before < 1000) break;
  }
  fprintf(r->out, "%s]}", r->env_first ? "" : "\n      ");
  r->first = 0;
  return 0;
}

/* ---- key transparency: the versions of the name in the log ---- */

#define KT_REPORT_MAX 1024 /* versions listed at most (the newest are the last) */

struct kt_find {
  uint8_t (*keys)[SOTTO_KT_HASH_LEN]; /* search key of version first + i */
  uint32_t first, n;
  int64_t *entry;   /* the entry that logged it, -1 if not found */
  uint64_t *ms;     /* that entry's time */
};

static int kt_scan(void *ctx, int64_t idx, const uint8_t *head, size_t head_len, const uint8_t *upd, size_t len) {
  struct kt_find *f = ctx;
  struct sotto_kt_head h;
  uint32_t count, i;
  if (sotto_kt_head_decode(&h, head, head_len) != 0 || len < 12) return 0;
  count = (uint32_t)upd[8] << 24 | (uint32_t)upd[9] << 16 | (uint32_t)upd[10] << 8 | upd[11];
  if ((size_t)count > (len - 12) / SOTTO_KT_ENTRY_LEN) return 0;
  for (i = 0; i < f->n; i++) {
    size_t lo = 0, hi = count;
    if (f->entry[i] >= 0) continue;
    while (lo < hi) { /* keys in an update are sorted */
      size_t mid = lo + (hi - lo) / 2;
      int c = memcmp(upd + 12 + mid * SOTTO_KT_ENTRY_LEN, f->keys[i], SOTTO_KT_HASH_LEN);
      if (c == 0) {
        f->entry[i] = idx;
        f->ms[i] = h.timestamp_ms;
        break;
      }
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
  }
  return 0;
}

/* "key_transparency": the name's versions and the entries that logged them
 * (the VRF key in DATA/kt.key gives each version's search key). */
static int kt_report_label(struct sotto_store *st, const char *data, const char *canon, const char *field,
                           FILE *out) {
  char path[4200], when[32];
  uint8_t value[SOTTO_STORE_KT_MAX_VALUE], opening[16], key[64];
  struct kt_find f;
  uint32_t version = 0, i;
  size_t vlen = 0, ll;
  ssize_t got;
  int fd, rc;
  if (!st->ops->kt_value_get || !st->ops->kt_entries_iter) return 0;
  ll = strlen(canon);
  rc = st->ops->kt_value_get(st->impl, canon, &version, value, &vlen, opening);
  sodium_memzero(opening, sizeof opening);
  if (rc < 0) return 2;
  if (rc == 1) return 0; /* never logged: no log on this server */
  snprintf(path, sizeof path, "%s/kt.key", data);
  got = -1;
  if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
    got = read(fd, key, sizeof key);
    close(fd);
  }
  if (got != (ssize_t)sizeof key) { /* the log's keys are elsewhere: the newest version only */
    fprintf(out, "\n  \"%s\": {\"label\": \"%s\", \"newest_version\": %lu, \"newest_value\": \"", field, canon,
            (unsigned long)version);
    hex(out, value, vlen);
    fprintf(out, "\", \"versions\": null},");
    return 0;
  }
  memset(&f, 0, sizeof f);
  f.n = version + 1 > KT_REPORT_MAX ? KT_REPORT_MAX : version + 1;
  f.first = version + 1 - f.n;
  f.keys = malloc(f.n * sizeof *f.keys);
  f.entry = malloc(f.n * sizeof *f.entry);
  f.ms = calloc(f.n, sizeof *f.ms);
  rc = f.keys && f.entry && f.ms ? 0 : 2;
  for (i = 0; rc == 0 && i < f.n; i++) {
    uint8_t alpha[1 + SOTTO_SRV_KT_LIST_LABEL_MAX + 4], beta[SOTTO_KT_VRF_OUTPUT_LEN];
    uint32_t v = f.first + i;
    alpha[0] = (uint8_t)ll;
    memcpy(alpha + 1, canon, ll);
    alpha[1 + ll] = (uint8_t)(v >> 24);
    alpha[2 + ll] = (uint8_t)(v >> 16);
    alpha[3 + ll] = (uint8_t)(v >> 8);
    alpha[4 + ll] = (uint8_t)v;
    if (sotto_kt_vrf_hash(beta, key + 32, alpha, ll + 5) != 0) rc = 2;
    memcpy(f.keys[i], beta, SOTTO_KT_HASH_LEN);
    f.entry[i] = -1;
  }
  sodium_memzero(key, sizeof key);
  if (rc == 0 && st->ops->kt_entries_iter(st->impl, 0, -1, kt_scan, &f) != 0) rc = 2;
  if (rc == 0) {
    fprintf(out, "\n  \"%s\": {\"label\": \"%s\", \"newest_version\": %lu, \"newest_value\": \"", field, canon,
            (unsigned long)version);
    hex(out, value, vlen);
    fprintf(out, "\", \"versions\": [");
    for (i = 0; i < f.n; i++) {
      time_str(when, (int64_t)f.ms[i]);
      fprintf(out, "%s\n      {\"version\": %lu, \"entry\": %lld, \"logged\": \"%s\"}", i ? "," : "",
              (unsigned long)(f.first + i), (long long)f.entry[i], f.entry[i] >= 0 ? when : "");
    }
    fprintf(out, "]},");
  }
  free(f.keys);
  free(f.entry);
  free(f.ms);
  return rc;
}

/* The account key's label ("key_transparency") and the device list's
 * ("key_transparency_devices", "devices:" + name). */
static int kt_report(struct sotto_store *st, const char *data, const char *username, FILE *out) {
  char canon[SOTTO_SRV_USER_MAX + 1], label[SOTTO_SRV_KT_LIST_LABEL_MAX + 1];
  int rc;
  sotto__srv_username_canon((const uint8_t *)username, strlen(username), canon);
  if ((rc = kt_report_label(st, data, canon, "key_transparency", out)) != 0) return rc;
  sotto__srv_kt_list_label(label, username);
  return kt_report_label(st, data, label, "key_transparency_devices", out);
}

static int devlist_cb(void *ctx, uint32_t version, int64_t ms, const uint32_t *ids, size_t n) {
  struct req_ctx *r = ctx;
  char t[32];
  size_t i;
  time_str(t, ms);
  fprintf(r->out, "%s\n    {\"version\": %u, \"time\": \"%s\", \"device_ids\": [", r->first ? "" : ",", version, t);
  for (i = 0; i < n; i++) fprintf(r->out, "%s%u", i ? ", " : "", ids[i]);
  fprintf(r->out, "]}");
  r->first = 0;
  return 0;
}

/* Attachments (srv_blob.c): sizes and times only; the bytes are ciphertext
 * the server cannot read, and the id is left out (it is the capability to
 * fetch them). */
static int blob_cb(void *ctx, const struct sotto_store_blob *b) {
  struct req_ctx *r = ctx;
  char c[32], e[32];
  time_str(c, b->created_ms);
  time_str(e, b->expires_ms);
  fprintf(r->out, "%s\n    {\"bytes\": %lld, \"created\": \"%s\", \"expires\": \"%s\", \"complete\": %s,"
                  " \"fetches_left\": %lld}",
          r->first ? "" : ",", (long long)b->size, c, e, b->committed ? "true" : "false", (long long)b->fetches_left);
  r->first = 0;
  return 0;
}

/* Attachments the account's devices fetched (BLOB_DONE: blob_fetches, kept
 * until the blob goes): which device, the blob's size and time, and who
 * uploaded it (a username, or null for an account deleted since). */
struct fetch_row {
  uint8_t id[SOTTO_STORE_BLOB_ID];
  uint32_t device_id;
};
struct fetch_ctx {
  struct fetch_row *rows;
  size_t n, cap;
  int nomem;
};
struct uploader {
  int64_t account_id;
  char name[SOTTO_STORE_USER_MAX + 1];
};
struct names_ctx {
  struct sotto_store *st;
  struct uploader *u;
  size_t n, left;
};

static int fetch_cb(void *ctx, const uint8_t *id, uint32_t device_id) {
  struct fetch_ctx *f = ctx;
  if (f->n == f->cap) {
    size_t cap = f->cap ? f->cap * 2 : 32;
    struct fetch_row *p = realloc(f->rows, cap * sizeof *p);
    if (!p) {
      f->nomem = 1;
      return 1;
    }
    f->rows = p;
    f->cap = cap;
  }
  memcpy(f->rows[f->n].id, id, SOTTO_STORE_BLOB_ID);
  f->rows[f->n++].device_id = device_id;
  return 0;
}

static int names_cb(void *ctx, const char *user, const uint8_t *ik, size_t ik_len) {
  struct names_ctx *c = ctx;
  struct sotto_store_account a;
  size_t i;
  (void)ik;
  (void)ik_len;
  if (c->st->ops->account_get(c->st->impl, user, &a) != 0) return 0;
  for (i = 0; i < c->n; i++)
    if (c->u[i].account_id == a.account_id && !c->u[i].name[0] && strlen(user) < sizeof c->u[i].name) {
      memcpy(c->u[i].name, user, strlen(user) + 1);
      c->left--;
    }
  return c->left == 0; /* 1: all found, stop */
}

static int fetched_report(struct sotto_store *st, int64_t account_id, FILE *out) {
  struct fetch_ctx f = {NULL, 0, 0, 0};
  struct names_ctx nc = {st, NULL, 0, 0};
  struct sotto_store_blob *b = NULL;
  size_t i, k;
  int rc = 0, first = 1;
  fprintf(out, "\n  \"attachments_fetched\": [");
  if (!st->ops->blob_fetches_iter || st->ops->blob_fetches_iter(st->impl, account_id, fetch_cb, &f) != 0 || f.nomem)
    rc = 2;
  if (rc == 0 && f.n && ((b = calloc(f.n, sizeof *b)) == NULL || (nc.u = calloc(f.n, sizeof *nc.u)) == NULL))
    rc = 2;
  for (i = 0; rc == 0 && i < f.n; i++) {
    int g = st->ops->blob_get(st->impl, f.rows[i].id, &b[i]);
    if (g < 0) rc = 2;
    if (g != 0) continue;
    for (k = 0; k < nc.n && nc.u[k].account_id != b[i].account_id; k++) {
    }
    if (k == nc.n) {
      nc.u[nc.n++].account_id = b[i].account_id;
      nc.left++;
    }
  }
  if (rc == 0 && nc.left && st->ops->accounts_iter && st->ops->accounts_iter(st->impl, names_cb, &nc) < 0) rc = 2;
  for (i = 0; rc == 0 && i < f.n; i++) {
    char c[32];
    if (b[i].size <= 0 && b[i].created_ms == 0) continue; /* its row went meanwhile */
    for (k = 0; k < nc.n && nc.u[k].account_id != b[i].account_id; k++) {
    }
    time_str(c, b[i].created_ms);
    fprintf(out, "%s\n    {\"device_id\": %u, \"uploader\": ", first ? "" : ",", f.rows[i].device_id);
    if (k < nc.n && nc.u[k].name[0])
      json_str(out, nc.u[k].name);
    else
      fprintf(out, "null");
    fprintf(out, ", \"bytes\": %lld, \"created\": \"%s\"}", (long long)b[i].size, c);
    first = 0;
  }
  fprintf(out, "%s],", first ? "" : "\n  ");
  free(f.rows);
  free(b);
  free(nc.u);
  return rc;
}

int sotto_srv_requisition(const char *store_url, const char *data, const char *username, FILE *out) {
  struct sotto_store st;
  struct sotto_store_account a;
  struct req_ctx r;
  char day[16], why[512];
  int rc;
  if (!sotto__srv_username_ok((const uint8_t *)username, strlen(username))) {
    fprintf(stderr, "sotto-server: '%s' is not a valid username\n", username);
    return 1;
  }
  if (sotto__store_open(&st, store_url, SOTTO_STORE_OPEN_READER, why, sizeof why) != 0) {
    fprintf(stderr, "sotto-server: %s\n", why);
    return 2;
  }
  rc = st.ops->account_get(st.impl, username, &a);
  if (rc != 0) {
    st.ops->close(st.impl);
    if (rc == 1) fprintf(stderr, "sotto-server: no account '%s'\n", username);
    return rc == 1 ? 1 : 2;
  }
  day_str(day, a.created_day);
  fprintf(out, "{\n  \"username\": \"%s\",\n  \"created\": \"%s\",\n  \"identity_key\": \"", username, day);
  hex(out, a.identity, a.identity_len);
  fprintf(out, "\",\n  \"devices\": [");
  memset(&r, 0, sizeof r);
  r.out = out;
  r.first = 1;
  r.st = &st;
  rc = st.ops->devices_iter(st.impl, a.account_id, dev_cb, &r);
  {
    int64_t sent = 0;
    if (rc == 0 && st.ops->sender_bytes(st.impl, username, &sent) != 0) rc = 2;
    fprintf(out, "\n  ],\n  \"sent_queued_bytes\": %lld,", (long long)sent);
  }
  /* The signed device list's history (docs/multi-device.md), oldest first. */
  fprintf(out, "\n  \"device_lists\": [");
  r.first = 1;
  if (rc == 0 && st.ops->devlist_iter(st.impl, a.account_id, devlist_cb, &r) != 0) rc = 2;
  fprintf(out, "%s],", r.first ? "" : "\n  ");
  {
    uint8_t h[32];
    int64_t acc = 0;
    int has = 0;
    if (rc == 0 && st.ops->recovery_get(st.impl, username, &acc, h, &has) < 0) rc = 2;
    fprintf(out, "\n  \"recovery_code_sha256\": ");
    if (has) {
      fprintf(out, "\"");
      hex(out, h, sizeof h);
      fprintf(out, "\",");
    } else {
      fprintf(out, "null,");
    }
  }
  if (rc == 0 && data) rc = kt_report(&st, data, username, out);
  fprintf(out, "\n  \"attachments\": [");
  r.first = 1;
  if (rc == 0 && st.ops->blob_iter(st.impl, a.account_id, blob_cb, &r) != 0) rc = 2;
  fprintf(out, "%s],", r.first ? "" : "\n  ");
  if (rc == 0) rc = fetched_report(&st, a.account_id, out);
  fprintf(out, "\n  \"not_stored\": [\"message contents after acknowledgement\", \"IP addresses\","
               " \"contact lists\", \"delivery history\", \"recipients of acknowledged messages\"]\n}\n");
  st.ops->close(st.impl);
  return rc == 0 && r.rc == 0 ? 0 : 2;
}
