/* SPDX-License-Identifier: Apache-2.0 */
/* srvtest.h: starts and stops the real sotto-server binary for the
 * integration tests (loopback, free port, real TLS). Every wait is bounded. */
#ifndef SOTTO_SRVTEST_H
#define SOTTO_SRVTEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net.h"

struct srv_proc {
  pid_t pid;
  char dir[256];      /* data directory */
  char port[16];
  char mport[16];     /* metrics port */
  char fp[65];        /* certificate fingerprint printed by the server */
  char log[300];
  char store[512];    /* --store URL when the tests run on PostgreSQL, else empty */
};

/* 1 when the suite runs against PostgreSQL: SOTTO_TEST_PG holds a libpq
 * conninfo without dbname (tests/server/with_pg.sh sets it). Then every
 * srv_mkdir also creates an empty database, migrated with `sotto-server
 * migrate`, that srv_start passes as --store (and srv_run_capture adds
 * --store to a command that names the directory with --data). */
int srv_pg(void);
/* Runs one SQL command (no result rows) on database db of the test
 * PostgreSQL. 0 or -1. */
int srv_pg_exec(const char *db, const char *sql);
/* The process ids of the PostgreSQL backends serving p's sotto-server
 * (application_name 'sotto-server' on p's database): how many (<= max), or -1. */
int srv_pg_backends(const struct srv_proc *p, int *pids, int max);

/* Makes a fresh temporary data directory (and on PostgreSQL a fresh
 * database). */
int srv_mkdir(struct srv_proc *p, const char *tag);
/* Starts the server on a free port with extra "--key value" arguments
 * (NULL-terminated) and waits (<= 10 s) for its "listening" line. */
int srv_start(struct srv_proc *p, const char *const *extra);
/* SIGTERM and wait (<= 10 s, then SIGKILL). Returns the exit status. */
int srv_stop(struct srv_proc *p);
/* SIGKILL and reap. */
void srv_kill(struct srv_proc *p);
/* Connects with the printed fingerprint pinned; NULL on failure. */
struct sotto_net *srv_connect(struct srv_proc *p, struct sotto_net_ctx **ctx, int hello);
/* Runs the binary with args and captures stdout (malloc'd). */
char *srv_run_capture(const char *const *args, int *status);
/* 1 if needle occurs in any regular file under dir (recursively). */
int srv_dir_contains(const char *dir, const void *needle, size_t len);
/* Removes the data directory. */
void srv_rmdir(struct srv_proc *p);
/* Plain HTTP GET of the metrics endpoint (malloc'd body) or NULL. */
char *srv_metrics(struct srv_proc *p);
/* A signed device list of account `name` (account key acc_pub, signed by
 * signer_priv) naming devices ids[0..n) (device 1's key: signer_priv's; the
 * others' keys: dpriv[id], may be NULL when ids is {1}), version `version`,
 * into out (SOTTO_DEVLIST_MAX_LEN bytes). Its length, or 0. */
size_t srv_sign_devlist(uint8_t *out, const char *name, const uint8_t acc_pub[32], const uint8_t signer_priv[32],
                        uint32_t version, const uint32_t *ids, size_t n, uint8_t dpriv[][32]);

#endif
