/* SPDX-License-Identifier: Apache-2.0 */
/* requisition.c: `sotto-server requisition`: everything the store holds about
 * one account, as JSON. It is built only from the store interface, so what it
 * prints is by construction all there is: account creation day, devices
 * (id, created, last seen as a day), public key material, and the number and
 * total size of queued ciphertexts per device. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server.h"
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
};

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
          " \"queued_messages\": %lld, \"queued_bytes\": %lld}",
          (long long)info->ec_count, (long long)info->kem_count, info->has_last_resort ? "true" : "false",
          (long long)d->queue_count, (long long)d->queue_bytes);
  r->first = 0;
  return 0;
}

int sotto_srv_requisition(const char *data_dir, const char *username, FILE *out) {
  struct sotto_store st;
  struct sotto_store_account a;
  struct req_ctx r;
  char day[16];
  int rc;
  if (!sotto__srv_username_ok((const uint8_t *)username, strlen(username))) {
    fprintf(stderr, "sotto-server: '%s' is not a valid username\n", username);
    return 1;
  }
  if (sotto__store_sqlite_open(&st, data_dir) != 0) {
    fprintf(stderr, "sotto-server: cannot open the database in %s\n", data_dir);
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
  r.out = out;
  r.first = 1;
  rc = st.ops->devices_iter(st.impl, a.account_id, dev_cb, &r);
  fprintf(out, "\n  ],\n  \"not_stored\": [\"message contents after acknowledgement\", \"IP addresses\","
               " \"contact lists\", \"delivery history\"]\n}\n");
  st.ops->close(st.impl);
  return rc == 0 ? 0 : 2;
}
