/* SPDX-License-Identifier: Apache-2.0 */
/* server.h: configuration and entry point of the sotto-server core
 * (library sotto_server_core; main.c is only option parsing). */
#ifndef SOTTO_SRV_SERVER_H
#define SOTTO_SRV_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct sotto_srv_config {
  char data[1024];
  char store[1024]; /* store URL (store.h); empty: sqlite:DATA */
  char listen[256];
  char metrics[256]; /* empty: no metrics endpoint */
  char cluster[256]; /* redis://HOST:PORT: a node of a cluster (srv_cluster.c); empty: the only node */
  char node_name[64]; /* empty: HOSTNAME-PID */
  size_t max_frame;  /* authenticated frame body cap */
  size_t max_frame_unauth;
  size_t max_message;
  int64_t max_queue;         /* envelopes per device */
  int64_t max_queue_age_days;
  int64_t max_queue_age_s;   /* if non-zero, overrides max_queue_age_days (tests) */
  int64_t quarantine_days;   /* an unregistered username is held this long */
  int64_t quarantine_s;      /* if non-zero, overrides quarantine_days (tests) */
  int64_t expire_interval_s; /* how often expired envelopes are deleted */
  double send_rate, send_burst;         /* per device: envelopes per second, bucket */
  double register_rate, register_burst; /* per IP: registrations per minute, bucket */
  double auth_fail_rate, auth_fail_burst; /* per (IP, account): failed AUTHs per minute, bucket */
  double auth_fail_prefix_rate, auth_fail_prefix_burst; /* per IP prefix: failed AUTHs per minute, bucket */
  double register_prefix_rate, register_prefix_burst; /* per IP prefix: registrations per minute */
  double register_global_rate, register_global_burst; /* whole server: registrations per minute */
  double bundle_rate, bundle_burst;         /* per requesting account: BUNDLEs per minute, bucket */
  double bundle_otk_rate, bundle_otk_burst; /* per target device: one-time keys handed out per minute */
  double device_change_rate, device_change_burst; /* per account: ADD_DEVICE/DEVICE_REMOVE/ROTATE_SECRET per minute */
  int64_t keys_low_interval_s; /* at most one KEYS_LOW push per device per this many seconds */
  int64_t max_queue_per_sender; /* envelopes from one account waiting for one device */
  int64_t max_queue_bytes;      /* ciphertext bytes waiting for one device */
  int64_t max_store_bytes;      /* ciphertext bytes waiting in all queues */
  /* attachments (srv_blob.c) */
  int64_t blob_max_size;        /* ciphertext bytes of one blob */
  int64_t blob_quota_bytes;     /* declared bytes of one account's blobs on the server */
  int64_t blob_quota_count;     /* blobs of one account on the server */
  int64_t blob_expiry_days;     /* a blob is deleted this long after its creation */
  int64_t blob_expiry_s;        /* if non-zero, overrides blob_expiry_days (tests) */
  int64_t link_ttl_s;           /* a link slot expires this long after LINK_OPEN (srv_link.c) */
  double blob_rate, blob_burst; /* per account: blob requests per second, bucket */
  int64_t max_sender_bytes;     /* ciphertext bytes from one account waiting in all queues */
  int kt;                       /* keep the key-transparency log (srv_kt.c) */
  int kt_pending_max;           /* --kt: new names logged asynchronously, at most this many waiting (0: synchronously) */
  int64_t kt_log_delay_ms;      /* async logging: a name waits at least this long before a job takes it */
  int kt_threads;               /* VRF helper threads of the log (0: none); -1: online cores - 1, at most 3 */
  char kt_witness[1600];        /* NAME:HEX;NAME:HEX...: the log's witnesses (--kt-witness, repeatable) */
  int64_t disk_reserve;         /* bytes of DATA/sotto.reserve, given back when the disk is full */
  int64_t wal_scrub_ms;         /* truncate the WAL at most this long after envelopes were deleted */
  int max_inflight;             /* requests read but not answered, per connection */
  int64_t max_inflight_bytes;   /* their payload bytes, per connection */
  int idle_timeout_s;           /* authenticated connection without a request */
  int max_unauth_per_addr;      /* pre-auth connections per IP address */
  int max_unauth_per_prefix;    /* pre-auth connections per IP prefix */
  int prefix_v4, prefix_v6;     /* prefix lengths for the per-prefix limits */
  int max_unauth;       /* connections not yet authenticated */
  int max_connections;  /* all connections */
  int auth_timeout_s;   /* TLS handshake + HELLO + AUTH */
  int max_devices;      /* per account */
  int log_level;        /* 0 error, 1 info, 2 debug */
  int pg_pool;          /* PostgreSQL: read-only connections (and threads) for AUTH, DEVICES, DEVLIST_GET, BUNDLE */
};

void sotto_srv_config_defaults(struct sotto_srv_config *c);
/* Sets one option by its long name (without "--"). Returns 0, or -1 with a
 * message in err. */
int sotto_srv_config_set(struct sotto_srv_config *c, const char *key, const char *val, char *err, size_t errlen);
/* Reads "key = value" lines ('#' comments, blank lines). Returns 0 or -1. */
int sotto_srv_config_file(struct sotto_srv_config *c, const char *path, char *err, size_t errlen);
/* Writes the option table for --help. */
void sotto_srv_config_help(FILE *out);

/* Runs the server in the foreground until SIGTERM or SIGINT. Returns the
 * process exit status. */
int sotto_srv_run(const struct sotto_srv_config *c);

/* The store URL of c: c->store, or sqlite:DATA if empty. */
void sotto_srv_store_url(const struct sotto_srv_config *c, char *out, size_t cap);
/* `sotto-server migrate`: brings the store's schema to this binary's
 * version. 0 or 1 (printed why). */
int sotto_srv_migrate(const struct sotto_srv_config *c, FILE *out);
/* `sotto-server import`: the SQLite store in sqlite_dir into the
 * PostgreSQL store c->store. 0 or 1 (printed why). */
int sotto_srv_import(const struct sotto_srv_config *c, const char *sqlite_dir, FILE *out);
/* `sotto-server export`: the PostgreSQL store (--store) into a new SQLite
 * store in sqlite_dir. 0 or 1 (said on stderr). */
int sotto_srv_export(const struct sotto_srv_config *c, const char *sqlite_dir, FILE *out);

/* Prints the requisition report of USERNAME as JSON. Returns 0, 1 if the
 * account does not exist, 2 on error. */
int sotto_srv_requisition(const char *store_url, const char *data, const char *username, FILE *out);
/* `sotto-server backup`: copies the SQLite database of db_dir (online, one
 * consistent snapshot) and data_dir's tls.key and tls.crt into the new
 * directory dest. 0 or 1 (printed why). */
int sotto_srv_backup(const char *data_dir, const char *db_dir, const char *dest, FILE *out);
/* `sotto-server new-certificate`: a new TLS key and certificate for a data
 * directory that has none (the old key is lost). 0 or 1 (printed why). */
int sotto_srv_new_certificate(const char *data_dir, FILE *out);
/* `sotto-server rotate-certificate` (rotate.c): prepare makes next.key and
 * next.crt and appends a statement signed by tls.key, valid valid_days, to
 * DIR/rotation.chain (the server may run); switch (server stopped) moves
 * next.* over tls.*. 0, 1 (printed why) or 2 (usage). */
int sotto_srv_rotate_prepare(const char *dir, int64_t valid_days, FILE *out);
int sotto_srv_rotate_switch(const char *dir, FILE *out);
/* Reads DIR/rotation.chain (an empty chain if there is none) into out, the
 * ROTATION answer payload, checked. 0, or -1 with a sentence in why. */
int sotto_srv_load_chain(const char *dir, uint8_t *out, size_t cap, size_t *len, char *why, size_t why_len);

#endif
