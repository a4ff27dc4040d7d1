/* SPDX-License-Identifier: Apache-2.0 */
/* daemon_int.h: what daemon.c (loop, clients) and methods.c (the JSON-RPC
 * methods) share. */
#ifndef SOTTO_DAEMON_INT_H
#define SOTTO_DAEMON_INT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "daemon.h"
#include "jsonrpc.h"
#include "lineio.h"

struct daemon;

struct dclient {
  struct daemon *d;
  unsigned id;
  int fd_in, fd_out;
  struct line_in in;
  struct line_out out;
  char *stash; /* bytes read but not yet parsed while the client was paused */
  size_t stash_len;
  int64_t subscription; /* subscribeReceive: its id, 0 when not subscribed */
  int eof, dead;
};

/* devicesAdd in progress (docs/client.md, the daemon's methods): the
 * request was answered with the job id; the loop looks at the link slot
 * every DAEMON_ADD_POLL_MS and tells the client that asked (or, if it left,
 * every client) deviceAdded / deviceAddFailed. */
#define DAEMON_MAX_ADD_JOBS 4
#define DAEMON_ADD_POLL_MS 200
struct daemon_add_job {
  struct sc_add_job *job; /* NULL: free slot */
  unsigned id;
  struct dclient *cl; /* who asked; NULL once it left */
  int64_t next_at;    /* sc_monotonic_ms() of the next look */
  char fingerprint[SC_FINGERPRINT_LEN + 1];
};

struct daemon {
  struct sc_client *sc;
  struct daemon_add_job jobs[DAEMON_MAX_ADD_JOBS];
  unsigned next_job;
  int socket_mode;
  char socket_path[256];
  int listen_fd;
  int link_slot;
  int stdio_done;
  struct dclient *clients[DAEMON_MAX_CLIENTS];
  size_t n_clients;
  unsigned next_client_id;
  int64_t next_subscription;
  int deferring; /* SC_OPT_DEFER_SHOWN is set: nobody listens, or a listener is behind */
  int reconnect_ms;
  int64_t reconnect_at;
  struct dclient *current; /* the client whose request runs */
  uint64_t requests, received;
};

extern const struct rpc_method daemon_methods[];
extern const size_t daemon_n_methods;

void daemon_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void daemon_push(struct dclient *cl, cJSON *v);
void daemon_notify(struct daemon *d, const char *method, cJSON *params);
/* devicesAdd jobs (daemon.c): one step of each that is due; the earliest
 * next step (-1: none); 1 if cl asked for one still running; forget cl;
 * end them all (unfinished ones add nothing). */
void daemon_jobs_step(struct daemon *d);
int64_t daemon_jobs_deadline(const struct daemon *d);
int daemon_jobs_of(const struct daemon *d, const struct dclient *cl);
void daemon_jobs_forget(struct daemon *d, const struct dclient *cl);
void daemon_jobs_end(struct daemon *d);
/* The "receive" notification's params for a message event (signal-cli's
 * envelope shape), or NULL (no memory). */
cJSON *daemon_envelope(struct daemon *d, const struct sc_event *ev);
/* The "event" notification's params for any other event. */
cJSON *daemon_event_json(const struct sc_event *ev);

#endif
