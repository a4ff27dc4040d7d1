/* SPDX-License-Identifier: Apache-2.0 */
/* requisition.c: `sotto-server requisition`: everything the store holds about
 * one account, as JSON. It is built only from the store interface, so what it
 * prints is by construction all there is: account creation day, devices
 * (id, created, last seen as a day, epoch), public key material, every
 * queued envelope (sender, sender's device, type, time, size: never its
 * bytes), what this account's own envelopes weigh in others' queues, and
 * the attachments it uploaded (size and times: never their bytes or ids). */
#include <stdio.h>
#include <string.h>
#include <time.h>

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

int sotto_srv_requisition(const char *store_url, const char *username, FILE *out) {
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
  fprintf(out, "\n  \"attachments\": [");
  r.first = 1;
  if (rc == 0 && st.ops->blob_iter(st.impl, a.account_id, blob_cb, &r) != 0) rc = 2;
  fprintf(out, "%s],", r.first ? "" : "\n  ");
  fprintf(out, "\n  \"not_stored\": [\"message contents after acknowledgement\", \"IP addresses\","
               " \"contact lists\", \"delivery history\", \"recipients of acknowledged messages\"]\n}\n");
  st.ops->close(st.impl);
  return rc == 0 && r.rc == 0 ? 0 : 2;
}
