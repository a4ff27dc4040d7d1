/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE /* accept4, pipe2 */
/* daemon.c: the daemon's event loop, clients and sockets (daemon.h). The
 * methods are in methods.c; both share struct daemon (daemon_int.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon_int.h"

#define RECONNECT_MIN_MS 1000
#define RECONNECT_MAX_MS 30000

static int wake_pipe[2] = {-1, -1};
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
  int e = errno;
  stop_signal = sig;
  if (wake_pipe[1] >= 0) (void)!write(wake_pipe[1], "x", 1);
  errno = e;
}

/* One line on stderr. What it names may come from others (a device's name,
 * an error's detail that quotes a server): control bytes (an escape
 * sequence, a forged line) are written as '?', and the line is cut at 1 KiB. */
void daemon_log(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  size_t i;
  va_start(ap, fmt);
  if (vsnprintf(line, sizeof line, fmt, ap) < 0) line[0] = 0;
  va_end(ap);
  for (i = 0; line[i]; i++)
    if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) line[i] = '?';
  fprintf(stderr, "sotto daemon: %s\n", line);
}

static int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* ---- clients ---- */

static struct dclient *client_new(struct daemon *d, int fd_in, int fd_out) {
  struct dclient *cl = calloc(1, sizeof *cl);
  if (!cl) return NULL;
  cl->fd_in = fd_in;
  cl->fd_out = fd_out;
  cl->id = ++d->next_client_id;
  d->clients[d->n_clients++] = cl;
  return cl;
}

static void client_free(struct daemon *d, struct dclient *cl) {
  daemon_jobs_forget(d, cl);
  if (d->socket_mode) close(cl->fd_in);
  line_in_free(&cl->in);
  line_out_free(&cl->out);
  free(cl->stash);
  free(cl);
}

/* Queues one JSON value as a line for cl; a client over its cap is marked
 * dead (it does not read what it asked for). Takes v. */
void daemon_push(struct dclient *cl, cJSON *v) {
  char *s;
  if (!v) return;
  if (cl->dead) {
    cJSON_Delete(v);
    return;
  }
  s = cJSON_PrintUnformatted(v);
  cJSON_Delete(v);
  if (!s || line_out_push(&cl->out, s, strlen(s)) != 0) {
    if (!cl->dead)
      daemon_log("client %u: not reading its answers (over %u bytes queued); disconnected", cl->id,
                 LINEIO_OUT_MAX);
    cl->dead = 1;
  }
  free(s);
}

/* Sends a notification to every subscribed client. Takes params. */
void daemon_notify(struct daemon *d, const char *method, cJSON *params) {
  size_t i;
  for (i = 0; i < d->n_clients; i++) {
    struct dclient *cl = d->clients[i];
    cJSON *p, *n;
    if (!cl->subscription || cl->dead) continue;
    if (!(p = cJSON_Duplicate(params, 1))) continue;
    cJSON_AddNumberToObject(p, "subscription", cl->subscription);
    n = rpc_notification(method, p);
    daemon_push(cl, n);
  }
  cJSON_Delete(params);
}

/* ---- devicesAdd jobs ---- */

/* To the client that asked, or to every client when it left (someone
 * should learn that a device was added). Takes params. */
static void job_tell(struct daemon *d, struct daemon_add_job *j, const char *method, cJSON *params) {
  size_t i;
  if (!params) return;
  if (j->cl && !j->cl->dead) {
    daemon_push(j->cl, rpc_notification(method, params));
    return;
  }
  for (i = 0; i < d->n_clients; i++)
    if (!d->clients[i]->dead) daemon_push(d->clients[i], rpc_notification(method, cJSON_Duplicate(params, 1)));
  cJSON_Delete(params);
}

void daemon_jobs_step(struct daemon *d) {
  size_t i;
  for (i = 0; i < DAEMON_MAX_ADD_JOBS; i++) {
    struct daemon_add_job *j = &d->jobs[i];
    struct sc_device_added added;
    cJSON *p;
    int rc;
    if (!j->job || sc_monotonic_ms() < j->next_at) continue;
    rc = sc_devices_add_step(j->job, &added, d->sc);
    if (rc == 1) {
      j->next_at = sc_monotonic_ms() + DAEMON_ADD_POLL_MS;
      continue;
    }
    p = cJSON_CreateObject();
    if (p) {
      cJSON_AddNumberToObject(p, "jobId", j->id);
      cJSON_AddNumberToObject(p, "deviceId", rc == 0 ? added.device_id : sc_devices_add_device_id(j->job));
      cJSON_AddStringToObject(p, "fingerprint", j->fingerprint);
    }
    if (rc == 0) {
      if (p) {
        cJSON_AddStringToObject(p, "name", added.name);
        cJSON_AddNumberToObject(p, "listVersion", added.version);
      }
      daemon_log("devicesAdd job %u: device %u '%s' added, list version %u", j->id, (unsigned)added.device_id,
                 added.name, (unsigned)added.version);
      job_tell(d, j, "deviceAdded", p);
    } else {
      const char *why = sc_errdetail(d->sc)[0] ? sc_errdetail(d->sc) : sc_error_message(rc);
      if (p) {
        cJSON_AddStringToObject(p, "error", sc_error_name(rc));
        cJSON_AddStringToObject(p, "message", why);
      }
      daemon_log("devicesAdd job %u failed: %s", j->id, why);
      job_tell(d, j, "deviceAddFailed", p);
    }
    sc_devices_add_free(j->job, d->sc);
    memset(j, 0, sizeof *j);
  }
}

int64_t daemon_jobs_deadline(const struct daemon *d) {
  int64_t at = -1;
  size_t i;
  for (i = 0; i < DAEMON_MAX_ADD_JOBS; i++)
    if (d->jobs[i].job && (at < 0 || d->jobs[i].next_at < at)) at = d->jobs[i].next_at;
  return at;
}

int daemon_jobs_of(const struct daemon *d, const struct dclient *cl) {
  size_t i;
  for (i = 0; i < DAEMON_MAX_ADD_JOBS; i++)
    if (d->jobs[i].job && d->jobs[i].cl == cl) return 1;
  return 0;
}

void daemon_jobs_forget(struct daemon *d, const struct dclient *cl) {
  size_t i;
  for (i = 0; i < DAEMON_MAX_ADD_JOBS; i++)
    if (d->jobs[i].cl == cl) d->jobs[i].cl = NULL;
}

void daemon_jobs_end(struct daemon *d) {
  size_t i;
  for (i = 0; i < DAEMON_MAX_ADD_JOBS; i++) {
    if (!d->jobs[i].job) continue;
    daemon_log("devicesAdd job %u abandoned (the daemon stops): nothing was added", d->jobs[i].id);
    sc_devices_add_free(d->jobs[i].job, d->sc);
    memset(&d->jobs[i], 0, sizeof d->jobs[i]);
  }
}

/* Whether received messages and notices must wait in the store (the core's
 * unshown list) instead of being sent now: no subscriber is keeping up
 * (none has subscribed, or every one has more than DAEMON_HIGH_WATER bytes
 * it has not read yet). A message the server handed over is acknowledged
 * only once it is in the store; it is given to subscribers from there, so a
 * bot that starts after the daemon, restarts, or reads slowly loses
 * nothing. A subscriber that stops reading while another keeps up does not
 * hold the other back: its notifications pile up to LINEIO_OUT_MAX and it
 * is disconnected. */
static int must_defer(const struct daemon *d) {
  size_t i;
  for (i = 0; i < d->n_clients; i++) {
    const struct dclient *cl = d->clients[i];
    if (cl->subscription && !cl->dead && line_out_pending(&cl->out) <= DAEMON_HIGH_WATER) return 0;
  }
  return 1;
}

/* Sets or clears the deferral to match must_defer; when it ends, what
 * waited is given to the subscribers (until one of them falls behind). */
static void defer_update(struct daemon *d) {
  int want = must_defer(d);
  if (want == d->deferring) return;
  d->deferring = want;
  (void)sc_set_option(d->sc, SC_OPT_DEFER_SHOWN, want);
  if (!want) {
    int rc = sc_flush_unshown(d->sc);
    if (rc < 0) daemon_log("cannot give the waiting messages: %s", sc_errdetail(d->sc));
  }
}

/* One request line of cl (line == NULL: an overlong one). Returns 1 to
 * pause reading cl (its answers pile up), else 0. */
static int on_line(void *ud, const char *line, size_t len) {
  struct dclient *cl = ud;
  struct daemon *d = cl->d;
  cJSON *resp;
  int nomem = 0;
  if (!line) {
    daemon_push(cl,
                rpc_error_response(NULL, RPC_E_INVALID, "request line too long (the limit is 262144 bytes)"));
  } else if (len == 0) {
    return 0; /* blank lines between requests are tolerated */
  } else {
    struct rpc_table t = {daemon_methods, daemon_n_methods, d};
    d->current = cl;
    resp = rpc_handle(&t, cl, line, len, &nomem);
    d->current = NULL;
    if (nomem) daemon_push(cl, rpc_error_response(NULL, RPC_E_INTERNAL, "out of memory"));
    daemon_push(cl, resp);
  }
  d->requests++;
  return line_out_pending(&cl->out) > DAEMON_HIGH_WATER ? 1 : 0;
}

/* Feeds bytes to cl's line reader; what a pause left unread is kept in the
 * stash (at most one read's worth). */
static void client_feed(struct dclient *cl, const char *buf, size_t n) {
  size_t used = 0;
  int rc = line_in_feed(&cl->in, buf, n, &used, on_line, cl);
  if (rc < 0) {
    cl->dead = 1;
    return;
  }
  if (used < n) {
    char *s = malloc(n - used);
    if (!s) {
      cl->dead = 1;
      return;
    }
    memcpy(s, buf + used, n - used);
    free(cl->stash);
    cl->stash = s;
    cl->stash_len = n - used;
  }
}

static void client_read(struct dclient *cl) {
  char buf[DAEMON_READ_CHUNK];
  ssize_t r = read(cl->fd_in, buf, sizeof buf);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    cl->dead = 1;
    return;
  }
  if (r == 0) {
    cl->eof = 1; /* answers still queued are written before it is closed */
    return;
  }
  client_feed(cl, buf, (size_t)r);
}

static void client_unstash(struct dclient *cl) {
  char *s = cl->stash;
  size_t n = cl->stash_len;
  cl->stash = NULL;
  cl->stash_len = 0;
  client_feed(cl, s, n);
  free(s);
}

/* ---- the event sink: what the core reports becomes notifications ---- */

static void sink(void *ud, const struct sc_event *ev) {
  struct daemon *d = ud;
  cJSON *p;
  switch (ev->kind) {
    case SC_EV_LINK_UP:
      daemon_log("connected to %s as %s", sc_server(d->sc), sc_username(d->sc));
      d->reconnect_ms = RECONNECT_MIN_MS;
      break;
    case SC_EV_LINK_DOWN:
      daemon_log("connection lost (%s); reconnecting", ev->error ? sc_error_message(ev->error) : "closed");
      break;
    case SC_EV_DRAINED:
    case SC_EV_SENT:
    case SC_EV_KEYS_TOPPED_UP:
      return;
    default:
      break;
  }
  if (ev->kind == SC_EV_MESSAGE) {
    d->received++;
    if ((p = daemon_envelope(d, ev))) daemon_notify(d, "receive", p);
  } else if ((p = daemon_event_json(ev))) {
    /* Everything else that concerns a person goes out as an "event"
     * notification (key changes, held messages, group changes...). */
    daemon_notify(d, "event", p);
  }
  /* A subscriber that falls behind: the rest waits in the store (the core
   * stops the flush in progress after this event). */
  if (!d->deferring && must_defer(d)) {
    d->deferring = 1;
    (void)sc_set_option(d->sc, SC_OPT_DEFER_SHOWN, 1);
  }
}

/* ---- sockets ---- */

int daemon_socket_check(const char *path, char *err, size_t cap) {
  struct sockaddr_un sa;
  struct stat st;
  int fd;
  if (strlen(path) >= sizeof sa.sun_path) {
    snprintf(err, cap, "the socket path is longer than %zu bytes: %s", sizeof sa.sun_path - 1, path);
    return -1;
  }
  if (lstat(path, &st) != 0) return 0;
  if (!S_ISSOCK(st.st_mode)) {
    snprintf(err, cap, "%s exists and is not a socket; remove it or pick another --socket", path);
    return -1;
  }
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) return 0;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
    close(fd);
    snprintf(err, cap, "a daemon already listens on %s; stop it or pick another --socket", path);
    return -1;
  }
  close(fd);
  return 0;
}

/* Binds first and looks at what is there only when the path is taken: a
 * live daemon is refused (daemon_socket_check), a socket nobody listens on
 * (what a crashed daemon left) is removed and the bind tried once more. So a
 * daemon that starts at the same moment is never unlinked from under. */
static int bind_socket(int fd, const struct sockaddr_un *sa) {
  mode_t old = umask(0177); /* the socket is created 0600: only its owner may talk to the daemon */
  int rc = bind(fd, (const struct sockaddr *)sa, sizeof *sa);
  umask(old);
  return rc;
}

static int listen_on(const char *path) {
  struct sockaddr_un sa;
  struct stat st;
  int fd, rc;
  char err[512];
  if (strlen(path) >= sizeof sa.sun_path) {
    daemon_log("the socket path is longer than %zu bytes: %s", sizeof sa.sun_path - 1, path);
    return -1;
  }
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
    daemon_log("cannot create a socket: %s", strerror(errno));
    return -1;
  }
  rc = bind_socket(fd, &sa);
  if (rc != 0 && errno == EADDRINUSE) {
    if (daemon_socket_check(path, err, sizeof err)) {
      daemon_log("%s", err);
      close(fd);
      return -1;
    }
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) (void)unlink(path);
    rc = bind_socket(fd, &sa);
  }
  if (rc != 0 || chmod(path, 0600) != 0 || listen(fd, 128) != 0 || set_nonblock(fd) != 0) {
    daemon_log("cannot listen on %s: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

static void accept_clients(struct daemon *d) {
  for (;;) {
    int fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (d->n_clients >= DAEMON_MAX_CLIENTS) {
      static const char full[] =
          "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32000,\"message\":\"too many clients (64); "
          "try "
          "again later\",\"data\":{\"error\":\"failed\",\"hint\":\"close another client\"}}}\n";
      (void)!write(fd, full, sizeof full - 1);
      close(fd);
      daemon_log("refused a client: %d already connected", DAEMON_MAX_CLIENTS);
      continue;
    }
    if (!client_new(d, fd, fd)) {
      close(fd);
      return;
    }
    d->clients[d->n_clients - 1]->d = d;
  }
}

/* ---- the link ---- */

static void try_connect(struct daemon *d) {
  int64_t now = sc_monotonic_ms();
  int rc;
  if (sc_connected(d->sc) || now < d->reconnect_at) return;
  rc = sc_connect(d->sc, 10000);
  if (rc == 0) {
    d->reconnect_ms = RECONNECT_MIN_MS;
    d->reconnect_at = 0;
    return;
  }
  daemon_log("cannot connect: %s; next try in %d s",
             sc_errdetail(d->sc)[0] ? sc_errdetail(d->sc) : sc_error_message(rc), d->reconnect_ms / 1000);
  d->reconnect_at = now + d->reconnect_ms;
  if (d->reconnect_ms < RECONNECT_MAX_MS) d->reconnect_ms *= 2;
  if (d->reconnect_ms > RECONNECT_MAX_MS) d->reconnect_ms = RECONNECT_MAX_MS;
}

static void link_step(struct daemon *d) {
  int rc = sc_link_step(d->sc, 0);
  if (rc < 0 && !sc_connected(d->sc)) {
    daemon_log("link: %s", sc_errdetail(d->sc)[0] ? sc_errdetail(d->sc) : sc_error_message(rc));
    if (!d->reconnect_at) d->reconnect_at = sc_monotonic_ms() + d->reconnect_ms;
  } else if (rc < 0) {
    daemon_log("link: %s", sc_errdetail(d->sc)[0] ? sc_errdetail(d->sc) : sc_error_message(rc));
  }
}

/* ---- the loop ---- */

int daemon_run(struct sc_client *c, const struct daemon_opts *o) {
  struct daemon d;
  struct pollfd pfd[DAEMON_MAX_CLIENTS * 2 + 4];
  struct dclient *owner[DAEMON_MAX_CLIENTS * 2 + 4];
  struct sigaction sa;
  int rc = 0;
  size_t i;

  memset(&d, 0, sizeof d);
  d.sc = c;
  d.listen_fd = -1;
  d.socket_mode = o->socket != NULL;
  d.reconnect_ms = RECONNECT_MIN_MS;
  if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    daemon_log("cannot create a pipe: %s", strerror(errno));
    return -1;
  }
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  stop_signal = 0;

  if (d.socket_mode) {
    if ((d.listen_fd = listen_on(o->socket)) < 0) {
      rc = -1;
      goto out;
    }
    snprintf(d.socket_path, sizeof d.socket_path, "%s", o->socket);
  } else {
    struct dclient *cl;
    if (set_nonblock(0) != 0 || set_nonblock(1) != 0 || !(cl = client_new(&d, 0, 1))) {
      daemon_log("cannot use standard input and output: %s", strerror(errno));
      rc = -1;
      goto out;
    }
    cl->d = &d;
  }
  sc_set_sink(c, sink, &d);
  (void)sc_set_option(c, SC_OPT_AUTO_RECONNECT, 1);
  /* Until a client subscribes, what arrives waits in the store. */
  d.deferring = 1;
  (void)sc_set_option(c, SC_OPT_DEFER_SHOWN, 1);
  try_connect(&d);
  if (d.socket_mode)
    daemon_log("listening on %s (account %s)", o->socket, sc_username(c));
  else
    daemon_log("reading JSON-RPC requests on standard input (account %s)", sc_username(c));

  while (!stop_signal) {
    size_t np = 0;
    int timeout = 1000, pr;
    int64_t now, dl;

    /* Subscribers that appeared, left or caught up since the last round. */
    defer_update(&d);
    /* Bytes the core already holds are handled before sleeping. */
    for (i = 0; i < 64 && sc_connected(c) && sc_link_pending(c); i++) link_step(&d);

    pfd[np] = (struct pollfd){wake_pipe[0], POLLIN, 0};
    owner[np++] = NULL;
    if (d.listen_fd >= 0) {
      pfd[np] = (struct pollfd){d.listen_fd, POLLIN, 0};
      owner[np++] = NULL;
    }
    d.link_slot = -1;
    if (sc_connected(c) && sc_link_fd(c) >= 0) {
      d.link_slot = (int)np;
      pfd[np] = (struct pollfd){sc_link_fd(c), POLLIN, 0};
      owner[np++] = NULL;
    }
    for (i = 0; i < d.n_clients; i++) {
      struct dclient *cl = d.clients[i];
      int paused = line_out_pending(&cl->out) > DAEMON_HIGH_WATER || cl->stash;
      if (cl->fd_in == cl->fd_out) {
        short ev = (short)((!paused && !cl->eof ? POLLIN : 0) | (line_out_pending(&cl->out) ? POLLOUT : 0));
        pfd[np] = (struct pollfd){cl->fd_in, ev, 0};
        owner[np++] = cl;
      } else {
        pfd[np] = (struct pollfd){cl->fd_in, (short)(!paused && !cl->eof ? POLLIN : 0), 0};
        owner[np++] = cl;
        pfd[np] = (struct pollfd){cl->fd_out, (short)(line_out_pending(&cl->out) ? POLLOUT : 0), 0};
        owner[np++] = cl;
      }
      if (cl->stash && line_out_pending(&cl->out) <= DAEMON_HIGH_WATER) timeout = 0;
    }
    now = sc_monotonic_ms();
    dl = sc_connected(c) ? sc_link_next_deadline(c) : d.reconnect_at;
    if (dl >= 0) {
      int64_t left = dl - now;
      if (left < 0) left = 0;
      if (left < timeout) timeout = (int)left;
    }
    if ((dl = daemon_jobs_deadline(&d)) >= 0) {
      int64_t left = dl - now;
      if (left < 0) left = 0;
      if (left < timeout) timeout = (int)left;
    }
    pr = poll(pfd, np, timeout);
    if (pr < 0 && errno != EINTR) {
      daemon_log("poll: %s", strerror(errno));
      rc = -1;
      break;
    }
    if (stop_signal) break;
    if (pr > 0 && (pfd[0].revents & POLLIN)) {
      char b[64];
      while (read(wake_pipe[0], b, sizeof b) > 0) {
      }
    }
    /* The link: readable, or a deadline (keep-alive, back-off) passed. */
    if (sc_connected(c)) {
      if ((d.link_slot >= 0 && pfd[d.link_slot].revents) ||
          (sc_link_next_deadline(c) >= 0 && sc_monotonic_ms() >= sc_link_next_deadline(c)))
        link_step(&d);
    } else {
      try_connect(&d);
    }
    /* devicesAdd jobs that are due: one look at their slots each. */
    daemon_jobs_step(&d);
    if (d.listen_fd >= 0 && pr > 0 && (pfd[1].revents & POLLIN)) accept_clients(&d);
    /* Clients: write first (frees room), then read. */
    for (i = 0; i < np && pr > 0; i++) {
      struct dclient *cl = owner[i];
      if (!cl || cl->dead || !pfd[i].revents) continue;
      if (pfd[i].revents & POLLOUT) {
        if (line_out_flush(&cl->out, cl->fd_out) < 0) cl->dead = 1;
      }
      if (pfd[i].fd == cl->fd_in && (pfd[i].events & POLLIN) &&
          (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
        client_read(cl);
    }
    for (i = 0; i < d.n_clients; i++) {
      struct dclient *cl = d.clients[i];
      if (!cl->dead && cl->stash && line_out_pending(&cl->out) <= DAEMON_HIGH_WATER) client_unstash(cl);
      if (!cl->dead && line_out_pending(&cl->out) && line_out_flush(&cl->out, cl->fd_out) < 0) cl->dead = 1;
    }
    /* Drop the dead and the finished (end of input, everything written). */
    for (i = 0; i < d.n_clients;) {
      struct dclient *cl = d.clients[i];
      /* (stdio: a devicesAdd it asked for keeps it until it is told the end) */
      if (cl->dead || (cl->eof && !cl->stash && line_out_pending(&cl->out) == 0 && !daemon_jobs_of(&d, cl))) {
        if (!d.socket_mode) {
          d.stdio_done = 1;
        }
        client_free(&d, cl);
        d.clients[i] = d.clients[--d.n_clients];
      } else {
        i++;
      }
    }
    if (!d.socket_mode && d.stdio_done) break;
  }
  if (stop_signal) daemon_log("stopping (signal %d)", (int)stop_signal);
out:
  daemon_jobs_end(&d);
  for (i = 0; i < d.n_clients; i++) {
    (void)line_out_flush(&d.clients[i]->out, d.clients[i]->fd_out);
    client_free(&d, d.clients[i]);
  }
  d.n_clients = 0;
  if (d.listen_fd >= 0) {
    close(d.listen_fd);
    (void)unlink(d.socket_path);
  }
  sc_set_sink(c, NULL, NULL);
  sc_disconnect(c);
  close(wake_pipe[0]);
  close(wake_pipe[1]);
  wake_pipe[0] = wake_pipe[1] = -1;
  (void)o->lock_fd;
  return rc;
}
