/* SPDX-License-Identifier: Apache-2.0 */
/* srv_loop.c: the event loop of sotto-server (srv_internal.h has the map of
 * the core): listeners, accepting, timers, signals, start-up and shutdown. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "srv_internal.h"

int64_t sotto__srv_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sotto__srv_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sotto__srv_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void sotto__srv_stage_add(struct stage_hist *h, int64_t us) {
  static const int64_t le[STAGE_BUCKETS - 1] = {100,   500,   1000,   2500,   5000,   10000,
                                                25000, 50000, 100000, 250000, 500000, 1000000};
  int i = 0;
  if (us < 0) us = 0;
  while (i < STAGE_BUCKETS - 1 && us > le[i]) i++;
  h->b[i]++;
  h->sum_us += (uint64_t)us;
  h->n++;
}

int64_t sotto__srv_today(void) {
  return sotto__srv_now_ms() / 86400000;
}

int sotto__srv_log_level = 1;

void sotto__srv_log(int level, const char *event, const char *fmt, ...) {
  char ts[32], kv[512];
  time_t t = time(NULL);
  struct tm tm;
  va_list ap;
  if (level > sotto__srv_log_level) return;
  gmtime_r(&t, &tm);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  va_start(ap, fmt);
  vsnprintf(kv, sizeof kv, fmt, ap);
  va_end(ap);
  fprintf(stderr, "ts=%s level=%s event=%s%s%s\n", ts,
          level == 0   ? "error"
          : level == 1 ? "info"
                       : "debug",
          event, kv[0] ? " " : "", kv);
}

/* ---- accepting ------------------------------------------------------------------- */

static int listen_on(const char *spec) {
  char host[256];
  const char *colon = strrchr(spec, ':');
  struct addrinfo hints, *ai = NULL, *a;
  int fd = -1, one = 1;
  if (!colon || (size_t)(colon - spec) >= sizeof host) return -1;
  memcpy(host, spec, (size_t)(colon - spec));
  host[colon - spec] = 0;
  if (host[0] == '[') { /* [::1]:port */
    memmove(host, host + 1, strlen(host));
    if (strlen(host) && host[strlen(host) - 1] == ']') host[strlen(host) - 1] = 0;
  }
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai) != 0) return -1;
  for (a = ai; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 4096) == 0) break;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(ai);
  return fd;
}

/* Writes the address a listening socket is bound to as numeric HOST:PORT
 * ([HOST]:PORT for IPv6): with port 0 in --listen, the port the kernel chose.
 * Falls back to the configured spec if the socket cannot be asked. */
static void bound_addr(int fd, const char *spec, char *out, size_t cap) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char host[NI_MAXHOST], port[NI_MAXSERV];
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
      getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, port, sizeof port,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    snprintf(out, cap, "%s", spec);
    return;
  }
  snprintf(out, cap, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* The peer's address (IPv4: 4 bytes; IPv6: 16, with a v4-mapped address
 * taken as IPv4) and its prefix (prefix-v4 / prefix-v6 bits, rest zeroed). */
static void peer_addr(const struct srv *s, const struct sockaddr_storage *ss, uint8_t addr[16],
                      uint8_t pfx[16], uint8_t *alen) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  int bits, i;
  memset(addr, 0, 16);
  if (ss->ss_family == AF_INET6) {
    const uint8_t *a6 = (const uint8_t *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (memcmp(a6, mapped, 12) == 0) {
      memcpy(addr, a6 + 12, 4);
      *alen = 4;
    } else {
      memcpy(addr, a6, 16);
      *alen = 16;
    }
  } else {
    memcpy(addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    *alen = 4;
  }
  bits = *alen == 4 ? s->cfg->prefix_v4 : s->cfg->prefix_v6;
  memcpy(pfx, addr, 16);
  for (i = 0; i < 16; i++) {
    int keep = bits - 8 * i;
    if (keep <= 0)
      pfx[i] = 0;
    else if (keep < 8)
      pfx[i] &= (uint8_t)(0xff << (8 - keep));
  }
}

static void accept_all(struct srv *s, int lfd, int kind) {
  for (;;) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
    struct conn *c;
    uint8_t addr[16], pfx[16], alen = 4;
    uint64_t ka = 0, kp = 0;
    if (fd < 0) return;
    s->m.conns_total++;
    if (s->n_conns >= s->cfg->max_connections || (kind == K_CLIENT && s->n_unauth >= s->cfg->max_unauth)) {
      s->m.conns_rejected++;
      sotto__srv_log(2, "conn_refused", "reason=%s",
                     s->n_conns >= s->cfg->max_connections ? "max_connections" : "max_unauth");
      close(fd);
      continue;
    }
    if (kind == K_CLIENT) {
      /* Each address and each prefix gets a share of the pre-auth slots,
       * so one host (or one network) cannot hold them all. The address
       * is kept in memory until the connection authenticates, for the
       * per-address limits; it is never stored or logged. */
      peer_addr(s, &ss, addr, pfx, &alen);
      ka = sotto__lim_key(&s->lim, SOTTO_LIM_UNAUTH_ADDR, addr, alen);
      kp = sotto__lim_key(&s->lim, SOTTO_LIM_UNAUTH_PREFIX, pfx, alen);
      if (sotto__lim_count(&s->lim, ka) >= s->cfg->max_unauth_per_addr ||
          sotto__lim_count(&s->lim, kp) >= s->cfg->max_unauth_per_prefix) {
        s->m.conns_rejected++;
        sotto__srv_log(2, "conn_refused", "reason=unauth_share peer=%08x", (unsigned)(ka >> 32));
        close(fd);
        continue;
      }
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if ((c = sotto__srv_conn_add(s, fd, kind)) == NULL) {
      close(fd);
      continue;
    }
    if (kind == K_METRICS) {
      c->io.t = &sotto__transport_tcp;
      c->state = S_AUTHED;
      c->deadline_ms = sotto__srv_mono_ms() + 5000;
      sotto__srv_ev_update(s, c);
      continue;
    }
    if (sotto__tls_accept(&c->io, s->ctx, fd) != 0) {
      c->io.t = &sotto__transport_tcp;
      c->state = S_AUTHED;
      sotto__srv_conn_drop(s, c);
      continue;
    }
    memcpy(c->addr, addr, sizeof addr);
    memcpy(c->pfx, pfx, sizeof pfx);
    c->alen = alen;
    c->ukey_addr = ka;
    c->ukey_pfx = kp;
    if (sotto__lim_inc(&s->lim, ka) < 0 || sotto__lim_inc(&s->lim, kp) < 0) {
      /* The table is full: fail closed (counted back by conn_drop). */
      c->ucounted = 1;
      c->state = S_HANDSHAKE;
      s->n_unauth++;
      sotto__srv_conn_drop(s, c);
      continue;
    }
    c->ucounted = 1;
    c->state = S_HANDSHAKE;
    s->n_unauth++;
    c->deadline_ms = sotto__srv_mono_ms() + (int64_t)s->cfg->auth_timeout_s * 1000;
    sotto__srv_on_event(s, c, EPOLLIN);
  }
}

static void check_timeouts(struct srv *s) {
  struct conn *c, *next;
  int64_t t = sotto__srv_mono_ms();
  for (c = s->conns; c; c = next) {
    next = c->next;
    if (!c->dead && c->kind == K_CLIENT && c->state == S_AUTHED && !c->closing &&
        t - c->last_rx_ms > (int64_t)s->cfg->idle_timeout_s * 1000) {
      /* Authenticated but silent (clients PING while they wait): the
       * slot goes back. */
      sotto__srv_log(2, "idle_timeout", "peer=%08x", sotto__srv_peer_tag(c));
      sotto__srv_conn_close_with(s, c, SOTTO_SRV_E_TIMEOUT);
      continue;
    }
    if (c->dead || !c->deadline_ms || t < c->deadline_ms) continue;
    if (c->closing || c->state == S_HANDSHAKE || c->kind == K_METRICS)
      sotto__srv_conn_drop(s, c);
    else if (c->state != S_AUTHED)
      sotto__srv_conn_close_with(s, c, SOTTO_SRV_E_TIMEOUT);
    else
      c->deadline_ms = 0;
  }
}

/* ---- main loop ------------------------------------------------------------------- */

/* Raises the soft open-files limit so that max-connections can be reached
 * (each connection is one descriptor; 64 spare for the listeners, the
 * database and the rest). The hard limit is the operator's (LimitNOFILE). */
static void raise_nofile(const struct sotto_srv_config *cfg) {
  struct rlimit rl;
  rlim_t want = (rlim_t)cfg->max_connections + 64;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want) return;
  rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
  (void)setrlimit(RLIMIT_NOFILE, &rl);
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
    sotto__srv_log(1, "nofile",
                   "limit=%llu max_connections=%d hint=\"raise LimitNOFILE or lower max-connections\"",
                   (unsigned long long)rl.rlim_cur, cfg->max_connections);
}

/* Creates --data (mode 0700) if missing, refuses a data directory that
 * others can write or read, and takes DATA/sotto.lock so that a second
 * server on the same directory stops with a clear message instead of
 * sharing the database. */
static int data_dir_prepare(struct srv *s, const char *dir) {
  struct stat st;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "sotto-server: cannot create the data directory %s: %s\n", dir, strerror(errno));
    return -1;
  }
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "sotto-server: %s is not a directory\n", dir);
    return -1;
  }
  if ((st.st_mode & 077) != 0 && chmod(dir, st.st_mode & 0700) != 0) {
    fprintf(stderr, "sotto-server: cannot make %s private (chmod 0700): %s\n", dir, strerror(errno));
    return -1;
  }
  return sotto__store_lock_dir(dir, &s->lockfd);
}

/* The database and its side files: 0600, whatever the umask was when an
 * older version created them. */
static void data_modes(const char *dir) {
  static const char *const names[] = {"sotto.db", "sotto.db-wal", "sotto.db-shm", "sotto.lock", "tls.key"};
  size_t i;
  for (i = 0; i < sizeof names / sizeof names[0]; i++) {
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    (void)chmod(path, 0600);
  }
}

int sotto_srv_run(const struct sotto_srv_config *cfg) {
  struct srv *s;
  char fp[65], laddr[NI_MAXHOST + NI_MAXSERV + 4], maddr[NI_MAXHOST + NI_MAXSERV + 4] = "off";
  int created = 0, rc = 1, db_existed = 0, sqlite = 1;
  sigset_t mask;
  struct epoll_event e;
  int64_t last_timer = 0;
  int busy = 0;

  sotto__srv_log_level = cfg->log_level;
  if (sodium_init() < 0) return 1;
  if ((s = calloc(1, sizeof *s)) == NULL) return 1;
  s->cfg = cfg;
  s->ops_tail = &s->ops;
  s->lfd = s->mfd = s->sfd = s->ep = s->efd = s->lockfd = s->dblockfd = -1;
  if (sotto__lim_init(&s->lim, LIM_BUCKETS, LIM_MAX) != 0) goto out;
  raise_nofile(cfg);

  /* Everything the server creates is for its own user only. */
  umask(077);
  if (data_dir_prepare(s, cfg->data) != 0 || sotto__srv_blob_init(s) != 0) goto out;
  {
    char url[SOTTO_STORE_URL_MAX + 8], why[512];
    const char *where = NULL;
    const struct sotto_store_backend *b;
    sotto_srv_store_url(cfg, url, sizeof url);
    if ((b = sotto__store_backend(url, &where, why, sizeof why)) == NULL) {
      fprintf(stderr, "sotto-server: --store: %s\n", why);
      goto out;
    }
    sqlite = b == &sotto__store_sqlite_backend;
    if (sqlite && strcmp(where, cfg->data) != 0 && mkdir(where, 0700) != 0 && errno != EEXIST) {
      fprintf(stderr, "sotto-server: cannot create the database directory %s: %s\n", where, strerror(errno));
      goto out;
    }
    /* A SQLite store outside --data has its own single-writer lock. */
    if (sqlite && strcmp(where, cfg->data) != 0 && sotto__store_lock_dir(where, &s->dblockfd) != 0) goto out;
    if (b->check && b->check(where, why, sizeof why) != 0) {
      fprintf(stderr, "sotto-server: %s\n", why);
      goto out;
    }
    if (sqlite) {
      /* A database from before this start (not one created just now) means
       * clients have pinned this server's certificate. */
      char dbpath[1100];
      struct stat dbst;
      snprintf(dbpath, sizeof dbpath, "%s/sotto.db", where);
      db_existed = stat(dbpath, &dbst) == 0 && dbst.st_size > 0;
    }
    /* A node of a cluster opens the store shared (store.h, "Shared mode"). */
    int shared = cfg->cluster[0] ? SOTTO_STORE_OPEN_SHARED : 0;
    if (b->open(&s->store, where, SOTTO_STORE_OPEN_WRITER | shared, why, sizeof why) != 0 ||
        b->open(&s->rstore, where, SOTTO_STORE_OPEN_READER | shared, why, sizeof why) != 0) {
      fprintf(stderr, "sotto-server: %s\n", why);
      goto out;
    }
    if (!(s->store.flags & SOTTO_STORE_SOLE_WRITER) && !s->store.ops->horizon) {
      /* A store shared by several writers must say how far paging may go
       * (store.h, "Single-process assumptions"); none does yet. */
      fprintf(stderr, "sotto-server: the %s store is shared but has no delivery horizon\n", s->store.backend);
      goto out;
    }
    /* No account yet (a database made by 'migrate', or by a start that
     * stopped before its first certificate): nobody has pinned anything. */
    db_existed = sqlite ? db_existed && !s->store.fresh : !s->store.fresh;
    if (sqlite) data_modes(where);
  }
  if (sqlite) {
    /* A full disk must still be able to checkpoint the WAL (deletes need it):
     * the WAL stays below half the reserve that is given back for that. */
    if (cfg->disk_reserve > 0) s->store.ops->journal_limit(s->store.impl, cfg->disk_reserve / 2);
    if (sotto__srv_reserve_make(s) != 0)
      sotto__srv_log(0, "disk_reserve",
                     "bytes=%lld hint=\"cannot allocate the reserve file; is the disk full?\"",
                     (long long)cfg->disk_reserve);
  }
  /* Ids never go back, not even after a restore from a backup (store.h). */
  if (s->store.ops->id_floor &&
      s->store.ops->id_floor(s->store.impl, ((int64_t)time(NULL) + 2) * (INT64_C(1) << 20)) != 0) {
    fprintf(stderr, "sotto-server: cannot write the %s store\n", s->store.backend);
    goto out;
  }
  if (s->rstore.ops->max_msg_id(s->rstore.impl, &s->horizon) != 0) {
    fprintf(stderr, "sotto-server: cannot read the %s store\n", s->rstore.backend);
    goto out;
  }
  if ((s->ctx = sotto__tls_server_ctx(cfg->data, fp, &created, !db_existed)) == NULL) goto out;
  {
    char why[4400];
    if (sotto_srv_load_chain(cfg->data, s->rot, sizeof s->rot, &s->rot_len, why, sizeof why) != 0) {
      fprintf(stderr, "sotto-server: %s\n", why);
      goto out;
    }
    s->rot_checked_ms = -1; /* the first ROTATION records the file's identity */
  }
  if (cfg->kt && sotto__srv_kt_open(s) != 0) goto out;
  if ((s->lfd = listen_on(cfg->listen)) < 0) {
    fprintf(stderr, "sotto-server: cannot listen on %s (address in use, or not HOST:PORT?)\n", cfg->listen);
    goto out;
  }
  if (cfg->metrics[0] && (s->mfd = listen_on(cfg->metrics)) < 0) {
    fprintf(stderr, "sotto-server: cannot listen on %s for metrics\n", cfg->metrics);
    goto out;
  }
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  signal(SIGPIPE, SIG_IGN);
  s->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  s->ep = epoll_create1(EPOLL_CLOEXEC);
  s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s->sfd < 0 || s->ep < 0 || s->efd < 0) goto out;
  /* Started after SIGTERM/SIGINT are blocked, so that the store thread
   * inherits the mask and the signals reach the signalfd. */
  if (pthread_mutex_init(&s->mu, NULL) == 0 && pthread_cond_init(&s->cv, NULL) == 0 &&
      pthread_cond_init(&s->done_cv, NULL) == 0 &&
      pthread_create(&s->worker, NULL, sotto__srv_store_thread, s) == 0)
    s->threaded = 1;
  else
    sotto__srv_log(0, "store_thread", "%s", "cannot start the store thread; committing on the I/O thread");
  if (cfg->cluster[0] && sotto__srv_cluster_open(s) != 0) goto out;
  if (sotto__srv_pool_open(s) != 0) goto out; /* after the signal mask, like the store thread */
  if (sotto__srv_blob_writer_open(s) != 0)
    sotto__srv_log(0, "blob_writer", "%s", "cannot start the blob writer thread; PUTs written on the I/O thread");
  e.events = EPOLLIN;
  e.data.ptr = &s->lfd;
  epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &e);
  e.data.ptr = &s->sfd;
  epoll_ctl(s->ep, EPOLL_CTL_ADD, s->sfd, &e);
  e.data.ptr = &s->efd;
  epoll_ctl(s->ep, EPOLL_CTL_ADD, s->efd, &e);
  if (s->mfd >= 0) {
    e.data.ptr = &s->mfd;
    epoll_ctl(s->ep, EPOLL_CTL_ADD, s->mfd, &e);
  }
  /* Printed on stdout so that scripts and tests can pick it up (format in
   * docs/server.md): the "listening" line comes last and means ready. */
  bound_addr(s->lfd, cfg->listen, laddr, sizeof laddr);
  if (s->mfd >= 0) bound_addr(s->mfd, cfg->metrics, maddr, sizeof maddr);
  printf("fingerprint %s\n", fp);
  if (s->mfd >= 0) printf("metrics %s\n", maddr);
  printf("listening %s\n", laddr);
  fflush(stdout);
  sotto__srv_log(1, "start", "listen=%s metrics=%s cert=%s fingerprint=%s", laddr, maddr,
                 created ? "created" : "loaded", fp);
  s->expire_due = 1;
  s->next_expire_ms = sotto__srv_mono_ms() + cfg->expire_interval_s * 1000;

  while (!s->stopping) {
    struct epoll_event evs[256];
    /* Inline batches have no thread to wake the loop when they are done. */
    int i, n, timeout = busy || (s->b_active && !s->threaded) ? 0 : 1000;
    if (s->scrub_pending && timeout > 0) {
      int64_t left = s->scrub_at_ms - sotto__srv_mono_ms();
      timeout = left <= 0 ? 0 : left < timeout ? (int)left : timeout;
    }
    n = epoll_wait(s->ep, evs, 256, timeout);
    if (n < 0 && errno != EINTR) break;
    for (i = 0; i < n; i++) {
      void *p = evs[i].data.ptr;
      if (p == &s->lfd)
        accept_all(s, s->lfd, K_CLIENT);
      else if (p == &s->mfd)
        accept_all(s, s->mfd, K_METRICS);
      else if (p == &s->sfd) {
        struct signalfd_siginfo si;
        while (read(s->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
          /* The options are fixed for the life of the process (some size
           * tables at start); SIGHUP is logged and ignored rather than
           * killing the server as it used to. */
          if (si.ssi_signo == SIGHUP)
            sotto__srv_log(1, "sighup", "%s", "action=ignored hint=\"restart to apply a new config\"");
          else
            s->stopping = 1;
        }
      } else if (p == &s->efd) {
        uint64_t v;
        if (read(s->efd, &v, sizeof v) != (ssize_t)sizeof v) continue;
      } else if (s->cl && p == (void *)s->cl)
        sotto__srv_cluster_event(s);
      else
        sotto__srv_on_event(s, p, evs[i].events);
    }
    sotto__srv_batch_turn(s);
    sotto__srv_pool_turn(s);
    sotto__srv_blob_writer_turn(s);
    if (s->cl) {
      int64_t t0 = sotto__srv_mono_us();
      if (sotto__srv_cluster_flush(s)) sotto__srv_stage_add(&s->m.stage[STAGE_ANNOUNCE], sotto__srv_mono_us() - t0);
    }
    if (!s->b_active) {
      /* Nothing in flight: dropped connections can go, collected ops go out. */
      sotto__srv_free_zombies(s);
      sotto__srv_batch_start(s);
    }
    if (s->backlog) {
      int64_t t0 = sotto__srv_mono_us();
      busy = sotto__srv_pump_backlog(s);
      sotto__srv_stage_add(&s->m.stage[STAGE_PAGE], sotto__srv_mono_us() - t0);
    } else {
      busy = 0;
    }
    if (sotto__srv_mono_ms() - last_timer >= 1000) {
      last_timer = sotto__srv_mono_ms();
      check_timeouts(s);
      if (s->cl) sotto__srv_cluster_tick(s);
      sotto__lim_sweep(&s->lim, last_timer);
      if (last_timer >= s->next_expire_ms) {
        s->expire_due = 1;
        s->next_expire_ms = last_timer + cfg->expire_interval_s * 1000;
      }
    }
  }

  /* Shutdown: commit what was read, tell everyone, flush briefly, close. */
  sotto__srv_log(1, "stopping", "connections=%d", s->n_conns);
  epoll_ctl(s->ep, EPOLL_CTL_DEL, s->lfd, NULL);
  close(s->lfd);
  s->lfd = -1;
  for (;;) {
    if (s->b_active) {
      sotto__srv_batch_wait(s);
      sotto__srv_batch_turn(s);
      continue;
    }
    sotto__srv_pool_drain(s); /* the read pool's answers (an AUTH it passes on goes to a batch) */
    sotto__srv_blob_writer_drain(s); /* the PUTs being written (a COMMIT after them waits in the batch queue) */
    sotto__srv_free_zombies(s);
    sotto__srv_batch_start(s);
    if (!s->b_active) break;
  }
  {
    struct conn *c, *next;
    int64_t until = sotto__srv_mono_ms() + 1000;
    for (c = s->conns; c; c = next) {
      next = c->next;
      if (c->kind == K_CLIENT && c->state != S_HANDSHAKE)
        sotto__srv_conn_close_with(s, c, SOTTO_SRV_E_SHUTDOWN);
      else
        sotto__srv_conn_drop(s, c);
    }
    while (s->conns && sotto__srv_mono_ms() < until) {
      struct epoll_event evs[64];
      int i, n = epoll_wait(s->ep, evs, 64, 100);
      for (i = 0; i < n; i++) {
        void *p = evs[i].data.ptr;
        if (p != &s->lfd && p != &s->mfd && p != &s->sfd && p != &s->efd && p != (void *)s->cl)
          sotto__srv_do_write(s, p);
      }
      sotto__srv_free_zombies(s);
    }
    while (s->conns) sotto__srv_conn_drop(s, s->conns);
    sotto__srv_free_zombies(s);
  }
  sotto__srv_log(1, "stopped", "%s", "");
  rc = 0;
out:
  if (s->threaded) {
    pthread_mutex_lock(&s->mu);
    s->quit = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->worker, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_mutex_destroy(&s->mu);
  }
  sotto__srv_pool_close(s);
  sotto__srv_blob_writer_close(s);
  if (s->cl) sotto__srv_cluster_close(s);
  sotto__srv_kt_close(s);
  sotto__srv_link_close(s);
  if (s->rstore.ops) s->rstore.ops->close(s->rstore.impl);
  if (s->store.ops) s->store.ops->close(s->store.impl);
  if (s->ctx) SSL_CTX_free(s->ctx);
  if (s->lfd >= 0) close(s->lfd);
  if (s->mfd >= 0) close(s->mfd);
  if (s->sfd >= 0) close(s->sfd);
  if (s->ep >= 0) close(s->ep);
  if (s->efd >= 0) close(s->efd);
  if (s->lockfd >= 0) close(s->lockfd); /* releases the lock */
  if (s->dblockfd >= 0) close(s->dblockfd);
  sotto__lim_free(&s->lim);
  sotto__srv_op_pool_free();
  free(s);
  return rc;
}

void sotto_srv_store_url(const struct sotto_srv_config *c, char *out, size_t cap) {
  if (c->store[0])
    snprintf(out, cap, "%s", c->store);
  else
    snprintf(out, cap, "sqlite:%s", c->data);
}

int sotto_srv_migrate(const struct sotto_srv_config *c, FILE *out) {
  char url[SOTTO_STORE_URL_MAX + 8], why[512];
  sotto_srv_store_url(c, url, sizeof url);
  umask(077);
  if (sotto__store_migrate(url, out, why, sizeof why) != 0) {
    fprintf(stderr, "sotto-server: migrate: %s\n", why);
    return 1;
  }
  return 0;
}

#ifdef SOTTO_HAVE_PQ
/* ---- blob files for import and export ------------------------------------------
 *
 * The store copies carry the blobs' rows; their bytes are files
 * (DATA/blobs/<32 hex>, srv_blob.c), copied here from FROM/blobs into
 * TO/blobs: each into a temporary name, fsynced, renamed, the directory
 * fsynced at the end. Names that are not a blob's are left alone; a file
 * already there with the same size is kept. 0, or -1 with a sentence on
 * stderr (the rows are in already: a rerun of the copy alone is safe). */
static int blob_name_ok(const char *n) {
  size_t i;
  for (i = 0; n[i]; i++)
    if (!((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f'))) return 0;
  return i == 2 * SOTTO_SRV_BLOB_ID_LEN;
}

static int copy_file(const char *from, const char *to, const char *tmp) {
  uint8_t buf[1 << 16];
  int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
  ssize_t n;
  if (in < 0) return -1;
  if ((out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) goto done;
  while ((n = read(in, buf, sizeof buf)) != 0) {
    ssize_t w = 0;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) goto done;
    while (w < n) {
      ssize_t k = write(out, buf + w, (size_t)(n - w));
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) goto done;
      w += k;
    }
  }
  if (fdatasync(out) != 0) goto done;
  if (close(out) != 0) {
    out = -1;
    goto done;
  }
  out = -1;
  rc = rename(tmp, to);
done:
  if (out >= 0) close(out);
  if (rc) (void)unlink(tmp);
  close(in);
  return rc;
}

static int copy_blob_files(const char *what, const char *from_dir, const char *to_dir, FILE *out) {
  char from[1200], to[1200], src[1300], dst[1300], tmp[1320];
  struct dirent *e;
  struct stat a, b;
  long long copied = 0, kept = 0;
  DIR *d;
  int fd;
  snprintf(from, sizeof from, "%s/blobs", from_dir);
  snprintf(to, sizeof to, "%s/blobs", to_dir);
  if (mkdir(to, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "sotto-server: %s: cannot create %s: %s\n", what, to, strerror(errno));
    return -1;
  }
  if ((d = opendir(from)) == NULL) {
    if (errno == ENOENT) {
      fprintf(out, "%s: 0 blob files (no %s)\n", what, from);
      return 0;
    }
    fprintf(stderr, "sotto-server: %s: cannot read %s: %s\n", what, from, strerror(errno));
    return -1;
  }
  while ((e = readdir(d)) != NULL) {
    if (!blob_name_ok(e->d_name)) continue;
    /* (blob_name_ok: the name is 32 bytes) */
    if ((size_t)snprintf(src, sizeof src, "%s/%.32s", from, e->d_name) >= sizeof src ||
        (size_t)snprintf(dst, sizeof dst, "%s/%.32s", to, e->d_name) >= sizeof dst ||
        (size_t)snprintf(tmp, sizeof tmp, "%s/.copy-%.32s", to, e->d_name) >= sizeof tmp)
      continue;
    if (stat(src, &a) != 0 || !S_ISREG(a.st_mode)) continue;
    if (stat(dst, &b) == 0 && b.st_size == a.st_size) {
      kept++;
      continue;
    }
    if (copy_file(src, dst, tmp) != 0) {
      fprintf(stderr, "sotto-server: %s: cannot copy %s to %s: %s\n", what, src, dst, strerror(errno));
      closedir(d);
      return -1;
    }
    copied++;
  }
  closedir(d);
  if ((fd = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  fprintf(out, "%s: %lld blob files copied from %s to %s", what, copied, from, to);
  if (kept) fprintf(out, " (%lld already there)", kept);
  fputc('\n', out);
  return 0;
}

/* 1 when a and b name the same directory. */
static int same_dir(const char *a, const char *b) {
  struct stat x, y;
  return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}
#endif

int sotto_srv_import(const struct sotto_srv_config *c, const char *sqlite_dir, FILE *out) {
  char why[512] = "";
  const char *where = NULL;
  const struct sotto_store_backend *b = sotto__store_backend(c->store, &where, why, sizeof why);
  umask(077);
  if (!b) {
    fprintf(stderr, "sotto-server: import: --store: %s\n", why);
    return 1;
  }
#ifdef SOTTO_HAVE_PQ
  if (b == &sotto__store_pg_backend) {
    if (sotto__store_pg_import_sqlite(sqlite_dir, where, out, why, sizeof why) != 0) {
      fprintf(stderr, "sotto-server: import: %s\n", why);
      return 1;
    }
    /* The blobs' bytes: where the PostgreSQL server will look (its --data);
     * without --data, or with SQLITE_DIR itself, they are there already. */
    if (c->data[0] && !same_dir(c->data, sqlite_dir)) return copy_blob_files("import", sqlite_dir, c->data, out) ? 1 : 0;
    fprintf(out, "import: blob files stay in %s/blobs (start the server with --data %s)\n", sqlite_dir, sqlite_dir);
    return 0;
  }
#endif
  (void)sqlite_dir;
  (void)out;
  fprintf(stderr, "sotto-server: import: the --store must be a PostgreSQL store\n");
  return 1;
}

int sotto_srv_export(const struct sotto_srv_config *c, const char *sqlite_dir, FILE *out) {
  char why[512] = "";
  const char *where = NULL;
  const struct sotto_store_backend *b = sotto__store_backend(c->store, &where, why, sizeof why);
  umask(077);
  if (!b) {
    fprintf(stderr, "sotto-server: export: --store: %s\n", why);
    return 1;
  }
#ifdef SOTTO_HAVE_PQ
  if (b == &sotto__store_pg_backend) {
    if (sotto__store_pg_export_sqlite(where, sqlite_dir, out, why, sizeof why) != 0) {
      fprintf(stderr, "sotto-server: export: %s\n", why);
      return 1;
    }
    /* The blobs' bytes, from the PostgreSQL node's --data. */
    if (c->data[0]) return copy_blob_files("export", c->data, sqlite_dir, out) ? 1 : 0;
    fprintf(out, "export: no --data given: copy the PostgreSQL node's DATA/blobs into %s/blobs yourself\n",
            sqlite_dir);
    return 0;
  }
#endif
  (void)sqlite_dir;
  (void)out;
  fprintf(stderr, "sotto-server: export: the --store must be a PostgreSQL store\n");
  return 1;
}

void sotto__srv_rotation_refresh(struct srv *s) {
  uint8_t buf[SOTTO_ROT_CHAIN_MAX_LEN];
  char path[4200], why[4400];
  struct stat sb;
  size_t len;
  int64_t now = sotto__srv_mono_ms(), mt;
  if (s->rot_checked_ms >= 0 && now - s->rot_checked_ms < 1000) return;
  s->rot_checked_ms = now;
  snprintf(path, sizeof path, "%s/rotation.chain", s->cfg->data);
  if (stat(path, &sb) != 0) return; /* none, or gone: keep what is served */
  mt = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
  if (mt == s->rot_mtime_ns && (int64_t)sb.st_size == s->rot_size && (int64_t)sb.st_ino == s->rot_ino) return;
  if (sotto_srv_load_chain(s->cfg->data, buf, sizeof buf, &len, why, sizeof why) != 0) {
    sotto__srv_log(0, "rotation_chain_unreadable", "why=\"%s\"", why);
    return;
  }
  memcpy(s->rot, buf, len);
  s->rot_len = len;
  s->rot_mtime_ns = mt;
  s->rot_size = (int64_t)sb.st_size;
  s->rot_ino = (int64_t)sb.st_ino;
}
