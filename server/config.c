/* SPDX-License-Identifier: Apache-2.0 */
/* config.c: the option table of sotto-server. Command-line options and the
 * config file share one table, so every option exists in both. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "server.h"

enum { T_STR, T_SIZE, T_I64, T_INT, T_DBL };

struct opt {
  const char *name;
  int type;
  size_t off, len;
  double min, max;
  const char *help;
};

#define O(f) offsetof(struct sotto_srv_config, f), sizeof(((struct sotto_srv_config *)0)->f)

static const struct opt opts[] = {
    {"data", T_STR, O(data), 0, 0, "DIR: data directory (database, TLS key); required"},
    {"store", T_STR, O(store), 0, 0,
     "URL: where accounts and queues live: sqlite:DIR, postgresql://... or pg:CONNINFO (default sqlite:DATA)"},
    {"listen", T_STR, O(listen), 0, 0, "HOST:PORT to accept TLS clients on (default 127.0.0.1:7443)"},
    {"metrics", T_STR, O(metrics), 0, 0,
     "HOST:PORT for Prometheus text metrics and /healthz, /readyz (plain HTTP; default off)"},
    {"cluster", T_STR, O(cluster), 0, 0,
     "redis://HOST:PORT: run as one of several nodes on one PostgreSQL store, with Redis for live connections "
     "and pushes (default off: the only node)"},
    {"node-name", T_STR, O(node_name), 0, 0, "NAME: this node in logs and metrics (default HOSTNAME-PID)"},
    {"max-frame", T_SIZE, O(max_frame), 1024, SOTTO_SRV_MAX_FRAME, "bytes: frame cap once authenticated (262144)"},
    {"max-frame-unauth", T_SIZE, O(max_frame_unauth), 64, SOTTO_SRV_MAX_FRAME_UNAUTH,
     "bytes: frame cap before AUTH (1024)"},
    {"max-message", T_SIZE, O(max_message), 16, SOTTO_SRV_MAX_MESSAGE, "bytes: ciphertext cap per envelope (65536)"},
    {"max-queue", T_I64, O(max_queue), 1, 1e9, "envelopes queued per device before SEND is refused (10000)"},
    {"max-queue-age-days", T_I64, O(max_queue_age_days), 1, 36500, "days an envelope may wait (30)"},
    {"max-queue-age-seconds", T_I64, O(max_queue_age_s), 0, 36500.0 * 86400,
     "seconds an envelope may wait; if not 0, replaces max-queue-age-days (0)"},
    {"username-quarantine-days", T_I64, O(quarantine_days), 0, 36500,
     "days an unregistered username stays held before anyone may register it (7)"},
    {"username-quarantine-seconds", T_I64, O(quarantine_s), 0, 36500.0 * 86400,
     "seconds it stays held; if not 0, replaces username-quarantine-days (0)"},
    {"link-ttl-seconds", T_I64, O(link_ttl_s), 1, 86400,
     "seconds a link slot (sotto link) stays open before it expires, used or not (600)"},
    {"expire-interval", T_I64, O(expire_interval_s), 1, 86400, "seconds between expiry runs (60)"},
    {"send-rate", T_DBL, O(send_rate), 0.001, 1e9, "envelopes per second per account, refill rate (200)"},
    {"send-burst", T_DBL, O(send_burst), 1, 1e9, "envelopes per account in a burst (1000)"},
    {"register-rate", T_DBL, O(register_rate), 0.001, 1e9, "registrations per minute per IP address (2)"},
    {"register-burst", T_DBL, O(register_burst), 1, 1e9, "registrations per IP address in a burst (10)"},
    {"register-prefix-rate", T_DBL, O(register_prefix_rate), 0.001, 1e9,
     "registrations per minute per IP prefix (prefix-v4/prefix-v6) (5)"},
    {"register-prefix-burst", T_DBL, O(register_prefix_burst), 1, 1e9, "registrations per IP prefix in a burst (20)"},
    {"register-global-rate", T_DBL, O(register_global_rate), 0.001, 1e9, "registrations per minute, whole server (60)"},
    {"register-global-burst", T_DBL, O(register_global_burst), 1, 1e9, "registrations in a burst, whole server (500)"},
    {"auth-fail-rate", T_DBL, O(auth_fail_rate), 0.001, 1e9,
     "failed logins per minute per (IP address, account), refill (10)"},
    {"auth-fail-burst", T_DBL, O(auth_fail_burst), 1, 1e9, "failed logins per (IP address, account) in a burst (10)"},
    {"auth-fail-prefix-rate", T_DBL, O(auth_fail_prefix_rate), 0.001, 1e9,
     "failed logins per minute per IP prefix (prefix-v4/prefix-v6), all accounts (100)"},
    {"auth-fail-prefix-burst", T_DBL, O(auth_fail_prefix_burst), 1, 1e9,
     "failed logins per IP prefix in a burst, all accounts (100)"},
    {"bundle-rate", T_DBL, O(bundle_rate), 0.001, 1e9, "BUNDLE requests per minute per requesting account (60)"},
    {"bundle-burst", T_DBL, O(bundle_burst), 1, 1e9, "BUNDLE requests per requesting account in a burst (200)"},
    {"bundle-otk-rate", T_DBL, O(bundle_otk_rate), 0.001, 1e9,
     "one-time pre-keys handed out per minute per target device; beyond, bundles come without (1)"},
    {"bundle-otk-burst", T_DBL, O(bundle_otk_burst), 1, 1e9, "one-time pre-keys per target device in a burst (20)"},
    {"device-change-rate", T_DBL, O(device_change_rate), 0.001, 1e9,
     "device additions, removals and secret rotations per minute per account (1)"},
    {"device-change-burst", T_DBL, O(device_change_burst), 1, 1e9,
     "device additions, removals and secret rotations per account in a burst (10)"},
    {"keys-low-interval", T_I64, O(keys_low_interval_s), 0, 86400,
     "seconds between two KEYS_LOW pushes to one device (60)"},
    {"max-queue-per-sender", T_I64, O(max_queue_per_sender), 1, 1e9,
     "envelopes from one account waiting for one device (1000)"},
    {"max-queue-bytes", T_I64, O(max_queue_bytes), 1024, 1e15, "ciphertext bytes waiting for one device (104857600)"},
    {"max-store-bytes", T_I64, O(max_store_bytes), 1024, 1e18,
     "ciphertext bytes waiting in all queues together (10737418240)"},
    {"max-sender-bytes", T_I64, O(max_sender_bytes), 1024, 1e15,
     "ciphertext bytes from one account waiting in all queues together (268435456)"},
    {"blob-max-size", T_I64, O(blob_max_size), 1024, 1099511627776.0,
     "ciphertext bytes of one attachment (4294967296 + 1048576: a 4 GiB file with its overhead) (4296015872)"},
    {"blob-quota-bytes", T_I64, O(blob_quota_bytes), 1024, 1e15,
     "attachment bytes one account may keep on the server at a time (8589934592)"},
    {"blob-quota-count", T_I64, O(blob_quota_count), 1, 1e9, "attachments one account may keep on the server (1000)"},
    {"blob-expiry-days", T_I64, O(blob_expiry_days), 1, 36500,
     "days an attachment is kept at most, fetched or not (30)"},
    {"blob-expiry-seconds", T_I64, O(blob_expiry_s), 0, 36500.0 * 86400,
     "seconds an attachment is kept; if not 0, replaces blob-expiry-days (0)"},
    {"blob-rate", T_DBL, O(blob_rate), 0.001, 1e9,
     "attachment requests (chunks up and down) per second per account, refill rate (2000)"},
    {"blob-burst", T_DBL, O(blob_burst), 1, 1e9, "attachment requests per account in a burst (4000)"},
    {"wal-scrub-interval", T_I64, O(wal_scrub_ms), 0, 60000,
     "ms: the WAL is truncated at most this long after envelopes were deleted; 0: after every such commit, "
     "before the ACKs are answered (costs an fsync each) (1000)"},
    {"kt", T_INT, O(kt), 0, 1,
     "1: keep a key-transparency log of username -> identity key and of each signed device list "
     "(docs/key-transparency.md; both stores; in a "
     "cluster every node needs the same DATA/kt.key) (0)"},
    {"kt-threads", T_INT, O(kt_threads), 0, 3,
     "helper threads that compute the key-transparency log's VRF outputs (--kt 1): a REGISTER's as soon as it "
     "is admitted, the rest of a batch's beside the store thread; 0: a REGISTER's on the I/O thread (1)"},
    {"kt-pending-max", T_INT, O(kt_pending_max), 0, 10000000,
     "--kt 1: a REGISTER is answered once its account and a durable 'to be logged' mark commit; the log takes "
     "such names into an entry within a second or two under load (VRF on idle-priority helpers); nothing of a name is "
     "served before. At most this many names wait; beyond, REGISTER is refused with ERR 9 (retry later); "
     "0: every REGISTER is logged in its own batch, as before (100000)"},
    {"kt-log-delay-ms", T_I64, O(kt_log_delay_ms), 0, 3600000,
     "with kt-pending-max: new names wait this long before the log takes them (fewer, larger entries; "
     "their accounts are not reachable meanwhile) (0: at once)"},
    {"kt-witness", T_STR, O(kt_witness), 0, 0,
     "NAME:PUBKEY: a witness of the key-transparency log (PUBKEY: the 64 hex digits `sotto-witness` prints); "
     "its cosignatures are accepted and served; repeat for each, at most 16 (none)"},
    {"disk-reserve", T_I64, O(disk_reserve), 0, 1e12,
     "bytes kept in DATA/sotto.reserve and given back when the disk is full, so ACKs still work (8388608)"},
    {"max-inflight", T_INT, O(max_inflight), 1, 65536,
     "requests read but not yet answered per connection; reading pauses there (1024)"},
    {"max-inflight-bytes", T_I64, O(max_inflight_bytes), 4096, 1e9,
     "bytes those requests hold (payload, bundle answers) per connection; reading pauses there (1048576)"},
    {"idle-timeout", T_INT, O(idle_timeout_s), 1, 86400 * 30,
     "seconds an authenticated connection may send nothing (PING counts) (300)"},
    {"max-unauth", T_INT, O(max_unauth), 1, 1e7, "connections not yet authenticated (1024)"},
    {"max-unauth-per-addr", T_INT, O(max_unauth_per_addr), 1, 1e7,
     "connections not yet authenticated per IP address (32)"},
    {"max-unauth-per-prefix", T_INT, O(max_unauth_per_prefix), 1, 1e7,
     "connections not yet authenticated per IP prefix (128)"},
    {"prefix-v4", T_INT, O(prefix_v4), 8, 32, "IPv4 prefix length for the per-prefix limits (24)"},
    {"prefix-v6", T_INT, O(prefix_v6), 16, 128, "IPv6 prefix length for the per-prefix limits (64)"},
    {"max-connections", T_INT, O(max_connections), 1, 1e7, "connections in all (20000)"},
    {"auth-timeout", T_INT, O(auth_timeout_s), 1, 3600, "seconds for TLS handshake + HELLO + AUTH (10)"},
    {"max-devices", T_INT, O(max_devices), 1, SOTTO_SRV_MAX_DEVICES, "devices per account (6)"},
    {"log-level", T_INT, O(log_level), 0, 2, "0 errors, 1 info, 2 debug (1)"},
    {"pg-pool", T_INT, O(pg_pool), 0, 64,
     "PostgreSQL store: read-only connections, each with a thread, that answer AUTH, DEVICES, DEVLIST_GET and "
     "BUNDLE without a one-time key outside the commit batch; 0: those run in the batch (2)"},
};

void sotto_srv_config_defaults(struct sotto_srv_config *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->listen, sizeof c->listen, "%s", "127.0.0.1:7443");
  c->max_frame = SOTTO_SRV_MAX_FRAME;
  c->max_frame_unauth = SOTTO_SRV_MAX_FRAME_UNAUTH;
  c->max_message = 64 * 1024;
  c->max_queue = 10000;
  c->max_queue_age_days = 30;
  c->quarantine_days = 7;
  c->expire_interval_s = 60;
  c->send_rate = 200;
  c->send_burst = 1000;
  c->register_rate = 2;
  c->register_burst = 10;
  c->auth_fail_rate = 10;
  c->auth_fail_burst = 10;
  c->auth_fail_prefix_rate = 100;
  c->auth_fail_prefix_burst = 100;
  c->register_prefix_rate = 5;
  c->register_prefix_burst = 20;
  c->register_global_rate = 60;
  c->register_global_burst = 500;
  c->bundle_rate = 60;
  c->bundle_burst = 200;
  c->bundle_otk_rate = 1;
  c->bundle_otk_burst = 20;
  c->device_change_rate = 1;
  c->device_change_burst = 10;
  c->keys_low_interval_s = 60;
  c->max_queue_per_sender = 1000;
  c->max_queue_bytes = 100 * 1024 * 1024;
  c->max_store_bytes = (int64_t)10 * 1024 * 1024 * 1024;
  c->max_inflight = 1024;
  c->blob_max_size = (int64_t)4 * 1024 * 1024 * 1024 + 1024 * 1024;
  c->blob_quota_bytes = (int64_t)8 * 1024 * 1024 * 1024;
  c->blob_quota_count = 1000;
  c->blob_expiry_days = 30;
  c->link_ttl_s = 600;
  c->blob_rate = 2000;
  c->blob_burst = 4000;
  c->disk_reserve = 8 * 1024 * 1024;
  c->wal_scrub_ms = 1000;
  c->max_sender_bytes = 256 * 1024 * 1024;
  c->max_inflight_bytes = 1024 * 1024;
  c->idle_timeout_s = 300;
  c->max_unauth_per_addr = 32;
  c->max_unauth_per_prefix = 128;
  c->prefix_v4 = 24;
  c->prefix_v6 = 64;
  c->max_unauth = 1024;
  c->max_connections = 20000;
  c->auth_timeout_s = 10;
  c->max_devices = 6;
  c->log_level = 1;
  c->pg_pool = 2;
  c->kt_pending_max = 100000;
  c->kt_threads = 1; /* REGISTERs' VRFs off the I/O thread, ahead of their batch (docs/benchmarks.md, kt3) */
}

/* redis://HOST:PORT: a host without '@' or '/', a port 1-65535. */
static int cluster_url_ok(const char *u) {
  const char *hp, *colon;
  long port;
  char *end;
  if (strncmp(u, "redis://", 8) != 0) return 0;
  hp = u + 8;
  if ((colon = strrchr(hp, ':')) == NULL || colon == hp || strpbrk(hp, "@/?#")) return 0;
  errno = 0;
  port = strtol(colon + 1, &end, 10);
  return !errno && end != colon + 1 && !*end && port >= 1 && port <= 65535;
}

/* --kt-witness NAME:HEX, appended to the ';'-separated list (srv_kt.c reads it). */
static int kt_witness_add(struct sotto_srv_config *c, const char *val, char *err, size_t errlen) {
  const char *colon = strchr(val, ':');
  size_t have = strlen(c->kt_witness), n = 0, i;
  for (i = 0; c->kt_witness[i]; i++) n += c->kt_witness[i] == ';';
  if (have) n++;
  if (!colon || !sotto__srv_kt_name_ok((const uint8_t *)val, (size_t)(colon - val)) ||
      strlen(colon + 1) != 2 * SOTTO_SRV_KT_PK_LEN || strspn(colon + 1, "0123456789abcdefABCDEF") != 64) {
    snprintf(err, errlen, "--kt-witness: expected NAME:PUBKEY (NAME of [A-Za-z0-9._-], at most %d; PUBKEY 64 hex digits)",
             SOTTO_SRV_KT_NAME_MAX);
    return -1;
  }
  if (n >= SOTTO_SRV_KT_MAX_WITNESSES || have + strlen(val) + 2 > sizeof c->kt_witness) {
    snprintf(err, errlen, "--kt-witness: at most %d witnesses", SOTTO_SRV_KT_MAX_WITNESSES);
    return -1;
  }
  snprintf(c->kt_witness + have, sizeof c->kt_witness - have, "%s%s", have ? ";" : "", val);
  return 0;
}

int sotto_srv_config_set(struct sotto_srv_config *c, const char *key, const char *val, char *err, size_t errlen) {
  size_t i;
  for (i = 0; i < sizeof opts / sizeof opts[0]; i++) {
    const struct opt *o = &opts[i];
    char *end;
    double d;
    if (strcmp(o->name, key) != 0) continue;
    if (o->type == T_STR) {
      if (strlen(val) >= o->len) {
        snprintf(err, errlen, "--%s: value too long", key);
        return -1;
      }
      if (strcmp(key, "kt-witness") == 0) return kt_witness_add(c, val, err, errlen);
      if (strcmp(key, "cluster") == 0 && val[0] && !cluster_url_ok(val)) {
        snprintf(err, errlen, "--cluster: expected redis://HOST:PORT (no user, password or path)");
        return -1;
      }
      memcpy((char *)c + o->off, val, strlen(val) + 1);
      return 0;
    }
    errno = 0;
    d = strtod(val, &end);
    if (errno || end == val || *end || d < o->min || d > o->max ||
        (o->type != T_DBL && d != (double)(int64_t)d)) {
      snprintf(err, errlen, "--%s: '%s' is not a number in [%g, %g]", key, val, o->min, o->max);
      return -1;
    }
    switch (o->type) {
      case T_SIZE: *(size_t *)((char *)c + o->off) = (size_t)d; break;
      case T_I64: *(int64_t *)((char *)c + o->off) = (int64_t)d; break;
      case T_INT: *(int *)((char *)c + o->off) = (int)d; break;
      default: *(double *)((char *)c + o->off) = d; break;
    }
    return 0;
  }
  snprintf(err, errlen, "unknown option '%s' (see --help)", key);
  return -1;
}

static char *trim(char *s) {
  char *e;
  while (*s == ' ' || *s == '\t') s++;
  e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = 0;
  return s;
}

int sotto_srv_config_file(struct sotto_srv_config *c, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  char line[2048];
  int lineno = 0;
  if (!f) {
    snprintf(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
    return -1;
  }
  while (fgets(line, sizeof line, f)) {
    char *k = trim(line), *eq, *v;
    char sub[1024];
    lineno++;
    if (*k == 0 || *k == '#') continue;
    if ((eq = strchr(k, '=')) == NULL) {
      snprintf(err, errlen, "%s:%d: expected 'key = value'", path, lineno);
      fclose(f);
      return -1;
    }
    *eq = 0;
    v = trim(eq + 1);
    k = trim(k);
    if (strcmp(k, "config") == 0 || sotto_srv_config_set(c, k, v, sub, sizeof sub) != 0) {
      snprintf(err, errlen, "%s:%d: %s", path, lineno, strcmp(k, "config") == 0 ? "nested config" : sub);
      fclose(f);
      return -1;
    }
  }
  fclose(f);
  return 0;
}

void sotto_srv_config_help(FILE *out) {
  size_t i;
  for (i = 0; i < sizeof opts / sizeof opts[0]; i++)
    fprintf(out, "  --%-20s %s\n", opts[i].name, opts[i].help);
}
