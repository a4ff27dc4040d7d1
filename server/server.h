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
  char listen[256];
  char metrics[256]; /* empty: no metrics endpoint */
  size_t max_frame;  /* authenticated frame body cap */
  size_t max_frame_unauth;
  size_t max_message;
  int64_t max_queue;         /* envelopes per device */
  int64_t max_queue_age_days;
  int64_t max_queue_age_s;   /* if non-zero, overrides max_queue_age_days (tests) */
  int64_t expire_interval_s; /* how often expired envelopes are deleted */
  double send_rate, send_burst;         /* per device: envelopes per second, bucket */
  double register_rate, register_burst; /* per IP: registrations per minute, bucket */
  double auth_fail_rate, auth_fail_burst; /* per IP: failed AUTHs per minute, bucket */
  int max_unauth;       /* connections not yet authenticated */
  int max_connections;  /* all connections */
  int auth_timeout_s;   /* TLS handshake + HELLO + AUTH */
  int max_devices;      /* per account */
  int log_level;        /* 0 error, 1 info, 2 debug */
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

/* Prints the requisition report of USERNAME as JSON. Returns 0, 1 if the
 * account does not exist, 2 on error. */
int sotto_srv_requisition(const char *data_dir, const char *username, FILE *out);

#endif
