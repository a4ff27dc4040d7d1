/* SPDX-License-Identifier: Apache-2.0 */
/* srv_cluster.c: cluster mode of sotto-server (--cluster redis://HOST:PORT).
 *
 * Several identical nodes share one PostgreSQL store (opened in shared mode,
 * store.h: ids in commit order per device, so paging never skips). What must
 * last is only in PostgreSQL; Redis holds what may be lost:
 *
 *  - who is where: key sotto:dev:DEVKEY = "NODE GEN" for the device's live
 *    connection (GEN numbers this node's connections). A node that
 *    authenticates a device swaps the key (SET ... GET); if another node
 *    held it, that node is told on its channel ("k DEVKEY GEN") and closes
 *    that connection as displaced: one live connection per device across
 *    the cluster. The key expires after KEY_TTL_S unless refreshed (every
 *    connection is registered again every KEY_REFRESH_MS, and after Redis
 *    comes back).
 *  - pushes: after a commit, a SEND for a device that is not connected here
 *    is announced to the node holding it (PUBLISH sotto:node:NODE "m
 *    DEVKEY"); that node pages the device's queue from PostgreSQL. The
 *    announcement carries no message: the envelope is read from the store,
 *    in id order. Local deliveries go the same
 *    way (paging), so a device never receives a higher id before a lower
 *    one committed earlier by another node. A device removed on another
 *    node (DEVICE_REMOVE, or every device of an account unregistered or
 *    recovered there) is closed the same way ("r DEVKEY").
 *
 * Losing Redis loses no message: every envelope is in PostgreSQL before its
 * SEND is answered. While Redis is unreachable the node polls the queue of
 * every device connected to it once a second (POLL_MS) and says so (log
 * event cluster_degraded, metric sotto_cluster_redis_up 0, /readyz); it
 * tries Redis again every second and, once back, registers its connections
 * again and polls once. Displacement across nodes needs Redis: while it is
 * down a device may hold one connection on each of two nodes (both page
 * the same queue; the client drops an id it has seen).
 *
 * Every Redis call is made on the I/O thread with a short timeout
 * (REDIS_TIMEOUT_MS); commands of one batch are pipelined. The subscriber
 * connection's socket is in the server's epoll set. */
#define _GNU_SOURCE
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sodium.h>
#include <unistd.h>

#include "cluster_msg.h"
#include "link_reply.h"
#include "srv_internal.h"

#define REDIS_TIMEOUT_MS 250
#define RETRY_MS 1000
#define POLL_MS 1000
#define KEY_TTL_S 3600
#define KEY_REFRESH_MS (20 * 60 * 1000)
#define PEND_MAX 4096

struct pend {
  int64_t devkey;
  char kind; /* 'm' message, 'r' device removed */
};

struct srv_cluster {
  redisContext *cmd, *sub;
  char host[200];
  int port;
  char node[64];
  char chan[96];
  uint64_t gen;
  int up;
  int64_t retry_at, poll_at, refresh_at, down_since;
  char why[96];
  struct pend pend[PEND_MAX];
  size_t n_pend;
  /* metrics */
  uint64_t announces, announced_in, kicks_out, kicks_in, degraded, polls, redis_cmds, lim_redis, lim_local;
  /* link-slot requests served from Redis, from memory, refused for a bad reply */
  uint64_t link_redis, link_local, link_bad;
};

/* ---- Redis connections ------------------------------------------------------------ */

static void down(struct srv *s, const char *why_in) {
  struct srv_cluster *k = s->cl;
  char why[96];
  /* why_in may be a context's errstr, freed just below. */
  snprintf(why, sizeof why, "%s", why_in);
  if (k->sub) {
    epoll_ctl(s->ep, EPOLL_CTL_DEL, k->sub->fd, NULL);
    redisFree(k->sub);
    k->sub = NULL;
  }
  if (k->cmd) {
    redisFree(k->cmd);
    k->cmd = NULL;
  }
  k->n_pend = 0;
  k->retry_at = sotto__srv_mono_ms() + RETRY_MS;
  if (!k->up) return;
  k->up = 0;
  k->degraded++;
  k->down_since = sotto__srv_mono_ms();
  snprintf(k->why, sizeof k->why, "%s", why);
  /* Said once per outage: what was lost (Redis) and what delivery does now. */
  sotto__srv_log(0, "cluster_degraded",
                 "node=%s redis=down reason=\"%s\" fallback=poll limits=per-node link_slots=per-node "
                 "interval_ms=%d hint=\"no message is lost: live devices get their queue by polling PostgreSQL "
                 "until Redis is back\"",
                 k->node, why, POLL_MS);
}

static redisContext *dial(struct srv_cluster *k) {
  struct timeval tv = {0, REDIS_TIMEOUT_MS * 1000};
  redisContext *c = redisConnectWithTimeout(k->host, k->port, tv);
  if (!c) return NULL;
  if (c->err || redisSetTimeout(c, tv) != REDIS_OK || redisEnableKeepAlive(c) != REDIS_OK ||
      sotto__redis_reader_bound(c->reader) != 0) {
    redisFree(c);
    return NULL;
  }
  return c;
}

/* One command, answered at once: the reply (freeReplyObject) or NULL, and
 * Redis is marked down. */
static redisReply *cmd(struct srv *s, const char *fmt, ...) {
  struct srv_cluster *k = s->cl;
  redisReply *r;
  va_list ap;
  if (!k->up || !k->cmd) return NULL;
  va_start(ap, fmt);
  r = redisvCommand(k->cmd, fmt, ap);
  va_end(ap);
  k->redis_cmds++;
  if (!r) {
    down(s, k->cmd->errstr[0] ? k->cmd->errstr : "no answer");
    return NULL;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    /* Redis's error text names the command, never a message or a secret. */
    sotto__srv_log(0, "cluster_redis_error", "node=%s error=\"%.80s\"", k->node,
                   strchr(r->str, '"') ? "(quoted)" : r->str);
    freeReplyObject(r);
    return NULL;
  }
  return r;
}

/* Reads n pipelined replies (each freed); 0, or -1 with Redis down. */
static int drain_replies(struct srv *s, size_t n, redisReply **keep, size_t nkeep) {
  struct srv_cluster *k = s->cl;
  size_t i;
  for (i = 0; i < n; i++) {
    void *r = NULL;
    if (redisGetReply(k->cmd, &r) != REDIS_OK || !r) {
      for (size_t j = 0; j < i && j < nkeep; j++) {
        freeReplyObject(keep[j]);
        keep[j] = NULL;
      }
      down(s, k->cmd->errstr[0] ? k->cmd->errstr : "no answer");
      return -1;
    }
    if (i < nkeep)
      keep[i] = r;
    else
      freeReplyObject(r);
  }
  return 0;
}

/* Registers every authenticated connection of this node again (after Redis
 * came back, and to refresh the keys' lifetime). Pipelined. */
static void register_all(struct srv *s) {
  struct srv_cluster *k = s->cl;
  struct conn *c;
  size_t n = 0;
  for (c = s->conns; c && k->up; c = c->next) {
    if (c->kind != K_CLIENT || c->state != S_AUTHED || c->dead || c->closing) continue;
    char val[96];
    if (c->kind != K_CLIENT) continue;
    snprintf(val, sizeof val, "%s %llu", k->node, (unsigned long long)c->cl_gen);
    if (redisAppendCommand(k->cmd, "SET sotto:dev:%lld %s EX %d", (long long)c->devkey, val, KEY_TTL_S) !=
        REDIS_OK) {
      down(s, "cannot queue a command");
      return;
    }
    k->redis_cmds++;
    if (++n == 1024) {
      if (drain_replies(s, n, NULL, 0) != 0) return;
      n = 0;
    }
  }
  if (n && k->up) (void)drain_replies(s, n, NULL, 0);
}

/* Every authenticated connection pages its queue (from the cluster
 * horizon), without a DRAINED at the end if it was live. */
static void poll_all(struct srv *s) {
  struct conn *c;
  s->cl->polls++;
  for (c = s->conns; c; c = c->next)
    if (c->kind == K_CLIENT && c->state == S_AUTHED && !c->dead && !c->closing) {
      if (!c->backlog) c->cl_quiet = 1;
      sotto__srv_backlog_add(s, c);
    }
}

static int connect_up(struct srv *s) {
  struct srv_cluster *k = s->cl;
  redisReply *r;
  struct epoll_event e;
  if ((k->cmd = dial(k)) == NULL || (k->sub = dial(k)) == NULL) goto fail;
  r = redisCommand(k->sub, "SUBSCRIBE %s", k->chan);
  if (!r || r->type != REDIS_REPLY_ARRAY) {
    if (r) freeReplyObject(r);
    goto fail;
  }
  freeReplyObject(r);
  e.events = EPOLLIN;
  e.data.ptr = s->cl;
  if (epoll_ctl(s->ep, EPOLL_CTL_ADD, k->sub->fd, &e) != 0) goto fail;
  k->up = 1;
  return 0;
fail:
  if (k->sub) redisFree(k->sub);
  if (k->cmd) redisFree(k->cmd);
  k->sub = k->cmd = NULL;
  k->retry_at = sotto__srv_mono_ms() + RETRY_MS;
  return -1;
}

/* ---- hooks of srv_loop.c ------------------------------------------------------------ */

int sotto__srv_cluster_open(struct srv *s) {
  struct srv_cluster *k;
  const char *u = s->cfg->cluster, *hp, *colon;
  char host[40] = "";
  size_t hl;
  long port;
  if ((k = calloc(1, sizeof *k)) == NULL) return -1;
  s->cl = k;
  if (strncmp(u, "redis://", 8) != 0) {
    fprintf(stderr, "sotto-server: --cluster: expected redis://HOST:PORT\n");
    return -1;
  }
  hp = u + 8;
  if ((colon = strrchr(hp, ':')) == NULL || colon == hp || (hl = (size_t)(colon - hp)) >= sizeof k->host ||
      memchr(hp, '@', hl) || memchr(hp, '/', hl)) {
    fprintf(stderr, "sotto-server: --cluster: expected redis://HOST:PORT (no user, password or path)\n");
    return -1;
  }
  memcpy(k->host, hp, hl);
  k->host[hl] = 0;
  errno = 0;
  port = strtol(colon + 1, NULL, 10);
  if (errno || port < 1 || port > 65535 || strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
    fprintf(stderr, "sotto-server: --cluster: bad port\n");
    return -1;
  }
  k->port = (int)port;
  if (s->cfg->node_name[0]) {
    if (strspn(s->cfg->node_name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
        strlen(s->cfg->node_name)) {
      fprintf(stderr, "sotto-server: --node-name: letters, digits, '-', '_' and '.' only\n");
      return -1;
    }
    snprintf(k->node, sizeof k->node, "%s", s->cfg->node_name);
  } else {
    if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "node");
    host[strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")] = 0;
    snprintf(k->node, sizeof k->node, "%s-%ld", host[0] ? host : "node", (long)getpid());
  }
  snprintf(k->chan, sizeof k->chan, "sotto:node:%s", k->node);
  /* A node starts even without Redis (degraded, polling): what matters is
   * PostgreSQL, which the caller opened already. */
  k->up = 1; /* so that down() says it */
  if (connect_up(s) != 0) {
    k->up = 1;
    down(s, "unreachable at start");
  }
  k->refresh_at = sotto__srv_mono_ms() + KEY_REFRESH_MS;
  sotto__srv_log(1, "cluster", "node=%s redis=%s", k->node, k->up ? "up" : "down");
  return 0;
}

void sotto__srv_cluster_close(struct srv *s) {
  struct srv_cluster *k = s->cl;
  if (!k) return;
  if (k->sub) redisFree(k->sub);
  if (k->cmd) redisFree(k->cmd);
  free(k);
  s->cl = NULL;
}

/* Closes c as the connection's own request would (no further pushes). */
static void close_conn(struct srv *s, struct conn *c, int code) {
  sotto__srv_devmap_del(s, c);
  c->state = S_UNAUTH; /* not in the map; conn_drop counts it back */
  s->n_unauth++;
  sotto__srv_conn_close_with(s, c, code);
}

static void on_message(struct srv *s, const char *m, size_t len) {
  struct srv_cluster *k = s->cl;
  struct sotto_cluster_msg a;
  struct conn *c;
  /* Strictly parsed (cluster_msg.h, fuzz/fuzz_cluster_msg.c); anything else is ignored. */
  if (sotto__cluster_msg_parse(m, len, &a) != 0) return;
  /* A device removed on another node: noted even when no connection of it
   * is here yet (an AUTH of it in flight here read the row before that
   * commit: refused at its answer, srv_handlers.c). */
  if (a.kind == 'r') sotto__srv_note_removed(s, a.devkey);
  if ((c = sotto__srv_devmap_get(s, a.devkey)) == NULL || c->dead || c->state != S_AUTHED) return;
  if (a.kind == 'm') {
    k->announced_in++;
    if (!c->cl_notified_us) c->cl_notified_us = sotto__srv_mono_us();
    if (!c->backlog) c->cl_quiet = 1;
    sotto__srv_backlog_add(s, c);
  } else if (a.kind == 'k' && c->cl_gen == a.gen) {
    k->kicks_in++;
    close_conn(s, c, SOTTO_SRV_E_DISPLACED);
  } else if (a.kind == 'r') {
    close_conn(s, c, SOTTO_SRV_E_DEVICE_REMOVED);
  }
}

void sotto__srv_cluster_event(struct srv *s) {
  struct srv_cluster *k = s->cl;
  void *r;
  if (!k->sub) return;
  if (redisBufferRead(k->sub) != REDIS_OK) {
    down(s, k->sub->errstr[0] ? k->sub->errstr : "subscriber closed");
    return;
  }
  for (;;) {
    redisReply *rep;
    r = NULL;
    if (redisGetReplyFromReader(k->sub, &r) != REDIS_OK) {
      down(s, "bad reply");
      return;
    }
    if (!r) break;
    rep = r;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 && rep->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(rep->element[0]->str, "message") == 0 && rep->element[2]->type == REDIS_REPLY_STRING)
      on_message(s, rep->element[2]->str, rep->element[2]->len);
    freeReplyObject(r);
  }
}

void sotto__srv_cluster_tick(struct srv *s) {
  struct srv_cluster *k = s->cl;
  int64_t now = sotto__srv_mono_ms();
  if (!k) return;
  if (!k->up && now >= k->retry_at) {
    if (connect_up(s) == 0) {
      sotto__srv_log(0, "cluster_restored", "node=%s redis=up down_ms=%lld action=\"registered again, polled once\"",
                     k->node, (long long)(now - k->down_since));
      register_all(s);
      poll_all(s);
      return;
    }
  }
  if (!k->up) {
    if (now >= k->poll_at) {
      k->poll_at = now + POLL_MS;
      poll_all(s);
    }
    return;
  }
  if (now >= k->refresh_at) {
    k->refresh_at = now + KEY_REFRESH_MS;
    register_all(s);
  }
  /* A live Redis connection that went away between commands. */
  {
    redisReply *r = cmd(s, "PING");
    if (r) freeReplyObject(r);
  }
}

/* ---- hooks of srv_conn.c and srv_handlers.c ---------------------------------------------- */

void sotto__srv_cluster_claim(struct srv *s, struct conn *c) {
  struct srv_cluster *k = s->cl;
  redisReply *r;
  char node[SOTTO_CLUSTER_NODE_MAX + 1];
  uint64_t gen;
  char val[96];
  if (!k) return;
  c->cl_gen = ++k->gen;
  snprintf(val, sizeof val, "%s %llu", k->node, (unsigned long long)c->cl_gen);
  if ((r = cmd(s, "SET sotto:dev:%lld %s EX %d GET", (long long)c->devkey, val, KEY_TTL_S)) == NULL) return;
  if (r->type == REDIS_REPLY_STRING && sotto__cluster_reg_parse(r->str, r->len, node, &gen) == 0 &&
      strcmp(node, k->node) != 0) {
    /* The device's older connection is on another node: it goes there. */
    char msg[64];
    redisReply *p;
    snprintf(msg, sizeof msg, "k %lld %llu", (long long)c->devkey, (unsigned long long)gen);
    p = cmd(s, "PUBLISH sotto:node:%s %s", node, msg);
    if (p) freeReplyObject(p);
    k->kicks_out++;
  }
  freeReplyObject(r);
}

void sotto__srv_cluster_release(struct srv *s, struct conn *c) {
  struct srv_cluster *k = s->cl;
  redisReply *r;
  if (!k || !k->up || !c->cl_gen) return;
  /* Only if the key is still this connection's (a newer one elsewhere keeps it). */
  char val[96];
  if (!k || !k->up || !c->cl_gen) return;
  snprintf(val, sizeof val, "%s %llu", k->node, (unsigned long long)c->cl_gen);
  r = cmd(s, "EVAL %s 1 sotto:dev:%lld %s",
          "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
          (long long)c->devkey, val);
  c->cl_gen = 0;
  if (r) freeReplyObject(r);
}

static void pend_add(struct srv *s, int64_t devkey, char kind) {
  struct srv_cluster *k = s->cl;
  size_t i;
  for (i = k->n_pend; i > 0 && i + 64 > k->n_pend; i--)
    if (k->pend[i - 1].devkey == devkey && k->pend[i - 1].kind == kind) return;
  if (k->n_pend == PEND_MAX) sotto__srv_cluster_flush(s);
  if (k->n_pend == PEND_MAX) return;
  k->pend[k->n_pend].devkey = devkey;
  k->pend[k->n_pend++].kind = kind;
}

int sotto__srv_cluster_fanout(struct srv *s, struct op *o, struct conn *r) {
  struct srv_cluster *k = s->cl;
  if (o->type == SOTTO_SRV_SEND) {
    if (r) {
      /* Paged from the store like a remote push: id order holds. */
      if (!r->backlog) r->cl_quiet = 1;
      sotto__srv_backlog_add(s, r);
    } else if (k->up) {
      pend_add(s, o->target_devkey, 'm');
    }
    return 1;
  }
  if (o->type == SOTTO_SRV_DEVICE_REMOVE && !r) {
    if (k->up) pend_add(s, o->target_devkey, 'r');
    return 1;
  }
  return 0;
}

void sotto__srv_cluster_gone(struct srv *s, int64_t devkey) {
  if (s->cl && s->cl->up) pend_add(s, devkey, 'r');
}

/* After a batch was answered: where each announced device is (one pipelined
 * round trip of GETs), then one of PUBLISHes. */
int sotto__srv_cluster_flush(struct srv *s) {
  struct srv_cluster *k = s->cl;
  redisReply **reps;
  size_t i, n, np = 0;
  if (!k || !k->n_pend) return 0;
  n = k->n_pend;
  k->n_pend = 0;
  if (!k->up) return 1;
  if ((reps = calloc(n, sizeof *reps)) == NULL) return 1; /* the receiver finds it at its next fetch */
  for (i = 0; i < n; i++)
    if (redisAppendCommand(k->cmd, "GET sotto:dev:%lld", (long long)k->pend[i].devkey) != REDIS_OK) {
      down(s, "cannot queue a command");
      free(reps);
      return 1;
    }
  k->redis_cmds += n;
  if (drain_replies(s, n, reps, n) != 0) {
    free(reps);
    return 1;
  }
  for (i = 0; i < n; i++) {
    char node[SOTTO_CLUSTER_NODE_MAX + 1];
    uint64_t gen;
    redisReply *r = reps[i];
    if (r->type == REDIS_REPLY_STRING && sotto__cluster_reg_parse(r->str, r->len, node, &gen) == 0 &&
        strcmp(node, k->node) != 0) {
      char msg[32];
      snprintf(msg, sizeof msg, "%c %lld", k->pend[i].kind, (long long)k->pend[i].devkey);
      if (redisAppendCommand(k->cmd, "PUBLISH sotto:node:%s %s", node, msg) != REDIS_OK) {
        down(s, "cannot queue a command");
        break;
      }
      np++;
      k->announces++;
    }
  }
  for (i = 0; i < n; i++) freeReplyObject(reps[i]);
  free(reps);
  k->redis_cmds += np;
  if (np && k->up) (void)drain_replies(s, np, NULL, 0);
  return 1;
}

/* ---- cluster-wide limits ---------------------------------------------------------------- */

/* Token buckets in Redis, one hash per key (t tokens, s last update in ms of
 * Redis's clock, so that the nodes' clocks do not matter), expiring once
 * full again. All buckets of one check are read and paid in one script, so
 * a check is atomic across the cluster and costs one round trip. */
static const char LIMIT_LUA[] =
    "local now=redis.call('TIME') now=tonumber(now[1])*1000+math.floor(tonumber(now[2])/1000) "
    "local tok={} local ok=1 "
    "for i=1,#KEYS do local r=tonumber(ARGV[2*i]) local b=tonumber(ARGV[2*i+1]) "
    "local v=redis.call('HMGET',KEYS[i],'t','s') local x=tonumber(v[1]) or b local ts=tonumber(v[2]) or now "
    "if now>ts then x=math.min(b,x+(now-ts)*r) end tok[i]=x if x<1 then ok=0 end end "
    "if ARGV[1]=='p' or (ARGV[1]=='t' and ok==0) then return ok end "
    "for i=1,#KEYS do local r=tonumber(ARGV[2*i]) local b=tonumber(ARGV[2*i+1]) local x=tok[i]-1 "
    "if x<0 then x=0 end redis.call('HSET',KEYS[i],'t',tostring(x),'s',tostring(now)) "
    "redis.call('PEXPIRE',KEYS[i],math.ceil((b-x)/r)+1000) end return ok";

#define CLIMIT_MAX 4

int sotto__srv_cluster_limit(struct srv *s, char mode, const struct srv_climit *b, size_t n) {
  struct srv_cluster *k = s->cl;
  char keys[CLIMIT_MAX][48], nums[2 * CLIMIT_MAX][32], nk[8], md[2] = {mode, 0};
  const char *argv[4 + 3 * CLIMIT_MAX];
  size_t i, argc = 0;
  redisReply *r;
  int ok;
  if (!k || n == 0 || n > CLIMIT_MAX) return -1;
  if (!k->up || !k->cmd) {
    k->lim_local++;
    return -1;
  }
  argv[argc++] = "EVAL";
  argv[argc++] = LIMIT_LUA;
  snprintf(nk, sizeof nk, "%zu", n);
  argv[argc++] = nk;
  for (i = 0; i < n; i++) {
    /* The identity (an address, a username, an account id) is hashed: Redis
     * never holds it in clear, and every node derives the same key. */
    uint8_t h[16], in[1 + 16 + SOTTO_SRV_USER_MAX + 8];
    char hex[33];
    if (b[i].len > sizeof in - 1) return -1;
    in[0] = (uint8_t)b[i].ns;
    if (b[i].len) memcpy(in + 1, b[i].p, b[i].len);
    crypto_generichash(h, sizeof h, in, 1 + b[i].len, NULL, 0);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    snprintf(keys[i], sizeof keys[i], "sotto:lim:%s", hex);
    argv[argc++] = keys[i];
  }
  argv[argc++] = md;
  for (i = 0; i < n; i++) {
    snprintf(nums[2 * i], sizeof nums[0], "%.9g", b[i].rate);
    snprintf(nums[2 * i + 1], sizeof nums[0], "%.9g", b[i].burst);
    argv[argc++] = nums[2 * i];
    argv[argc++] = nums[2 * i + 1];
  }
  r = redisCommandArgv(k->cmd, (int)argc, argv, NULL);
  k->redis_cmds++;
  if (!r) {
    down(s, k->cmd->errstr[0] ? k->cmd->errstr : "no answer");
    k->lim_local++;
    return -1;
  }
  if (r->type != REDIS_REPLY_INTEGER) {
    sotto__srv_log(0, "cluster_redis_error", "node=%s error=\"rate-limit script failed\" fallback=per-node",
                   k->node);
    freeReplyObject(r);
    k->lim_local++;
    return -1;
  }
  ok = r->integer == 1;
  freeReplyObject(r);
  k->lim_redis++;
  return ok;
}

/* ---- link slots across the cluster (srv_link.c) ------------------------------------ *
 *
 * With Redis up, a link slot is the hash sotto:{link:H}, H the hex of a
 * hash of the code (Redis never holds a code), with the fields s (state
 * '0' waiting, '1' provisioned, '2' replied), k (the new device's keys),
 * b (the provisioning blob), a (the account that put it), r (the reply) and
 * z (the opener's address hash A, 32 hex digits: data, never used by a
 * script as a key name). It expires link-ttl-seconds after LINK_OPEN
 * (PEXPIRE at open; later writes keep that expiry). Open slots are counted
 * in two sorted sets of members H scored by expiry: sotto:{linkaddr:A} per
 * source address and sotto:{linkall} for the whole cluster; the limits are
 * those of one node (SLOTS_PER_ADDR, SLOTS_MAX), now cluster-wide.
 *
 * Redis Cluster: every script touches exactly the keys it is given in
 * KEYS, and they share one hash tag ({link:H}, {linkaddr:A} or {linkall}),
 * so each runs on one shard. A step on the slot is one script, atomic
 * across the nodes: a code is put or answered once, whatever node the
 * second try reaches. The counting sets are separate scripts: LINK_OPEN
 * takes a place in the address's set, then in the global one (giving the
 * first back when the second is full), then makes the slot (giving both
 * back on a code collision); the LINK_GET that consumes a slot gives its
 * places back (ZREM on each set, A from the slot's reply). A place a failed
 * step leaves behind (Redis gone between two calls) is dropped when its
 * score passes, as every place is: the limits can only be too strict for
 * at most link-ttl-seconds, never too loose. Every reply goes through
 * sotto__link_reply_parse (link_reply.h, fuzz target redis_link). */
static const char LINK_RESERVE_LUA[] =
    "local t=redis.call('TIME') local now=tonumber(t[1])*1000+math.floor(tonumber(t[2])/1000) "
    "redis.call('ZREMRANGEBYSCORE',KEYS[1],'-inf',now) "
    "if redis.call('ZCARD',KEYS[1])>=tonumber(ARGV[3]) then return -1 end "
    "local ttl=tonumber(ARGV[2]) redis.call('ZADD',KEYS[1],now+ttl,ARGV[1]) "
    "redis.call('PEXPIRE',KEYS[1],ttl+1000) return 1";
static const char LINK_OPEN_LUA[] =
    "if redis.call('EXISTS',KEYS[1])==1 then return 0 end "
    "redis.call('HSET',KEYS[1],'s','0','k',ARGV[1],'z',ARGV[3]) redis.call('PEXPIRE',KEYS[1],tonumber(ARGV[2])) "
    "return 1";
static const char LINK_PUT_LUA[] =
    "local v=redis.call('HMGET',KEYS[1],'s','k') if v[1]~='0' then return false end "
    "if #ARGV[1]>0 then redis.call('HSET',KEYS[1],'s','1','b',ARGV[1],'a',ARGV[2]) end return v[2]";
static const char LINK_GET_LUA[] =
    "local v=redis.call('HMGET',KEYS[1],'s','b','a','r','z') if not v[1] then return false end "
    "if v[1]=='1' then return {v[1],v[2] or ''} end "
    "if v[1]=='2' and ARGV[1]~='0' and v[3]==ARGV[1] then redis.call('DEL',KEYS[1]) "
    "return {v[1],v[4] or '','1',v[5] or ''} end return {v[1],''}";
static const char LINK_REPLY_LUA[] =
    "if redis.call('HGET',KEYS[1],'s')~='1' then return 0 end "
    "redis.call('HSET',KEYS[1],'s','2','r',ARGV[1]) redis.call('HDEL',KEYS[1],'b') return 1";

/* The hex of a keyed hash of (ns, p): H of a code, A of an address. */
static void link_hash(int ns, const void *p, size_t len, char hex[SOTTO_LINK_ADDR_HEX + 1]) {
  uint8_t h[16], in[1 + 64];
  if (len > sizeof in - 1) len = sizeof in - 1;
  in[0] = (uint8_t)ns;
  if (len) memcpy(in + 1, p, len);
  crypto_generichash(h, sizeof h, in, 1 + len, NULL, 0);
  sodium_bin2hex(hex, SOTTO_LINK_ADDR_HEX + 1, h, sizeof h);
  sodium_memzero(in, sizeof in);
}

/* One command (argv[0] "EVAL" with a script, or a plain one) whose reply
 * parses for step: 0 with *out and *rr (the reply, which *out borrows from;
 * the caller frees it), -1 Redis down or the script refused (logged), -2 a
 * reply that does not fit the step (logged). */
static int link_call(struct srv *s, int step, const char *lua, int nkeys, const char *const *keys, int nargs,
                     const char *const *args, const size_t *arglen, redisReply **rr, struct sotto_link_reply *out) {
  struct srv_cluster *k = s->cl;
  const char *argv[12];
  size_t lens[12];
  char nk[12];
  int argc = 0, i;
  redisReply *r;
  *rr = NULL;
  if (nkeys < 0 || nargs < 0 || 3 + nkeys + nargs > 12) return -1;
  if (lua) {
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[argc] = "EVAL", lens[argc++] = 4;
    argv[argc] = lua, lens[argc++] = strlen(lua);
    argv[argc] = nk, lens[argc++] = strlen(nk);
  } else {
    argv[argc] = "ZREM", lens[argc++] = 4; /* SOTTO_LINK_RELEASE */
  }
  for (i = 0; i < nkeys; i++) argv[argc] = keys[i], lens[argc++] = strlen(keys[i]);
  for (i = 0; i < nargs; i++) argv[argc] = args[i], lens[argc++] = arglen[i];
  r = redisCommandArgv(k->cmd, argc, argv, lens);
  k->redis_cmds++;
  if (!r) {
    down(s, k->cmd->errstr[0] ? k->cmd->errstr : "no answer");
    return -1;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    sotto__srv_log(0, "cluster_redis_error", "node=%s error=\"link-slot script failed\" fallback=per-node",
                   k->node);
    freeReplyObject(r);
    return -1;
  }
  if (sotto__link_reply_parse(step, r, out) != 0) {
    freeReplyObject(r);
    return -2;
  }
  *rr = r;
  return 0;
}

/* Gives a slot's place in one counting set back (best effort: a place not
 * given back drops out when its score passes). */
static void link_release(struct srv *s, const char *set, const char *member) {
  struct sotto_link_reply lr;
  redisReply *r = NULL;
  const char *keys[1] = {set}, *args[1] = {member};
  size_t lens[1] = {strlen(member)};
  if (s->cl->up && s->cl->cmd) (void)link_call(s, SOTTO_LINK_RELEASE, NULL, 1, keys, 1, args, lens, &r, &lr);
  if (r) freeReplyObject(r);
}

int sotto__srv_cluster_link(struct srv *s, struct conn *c, const struct sotto_srv_frame *f,
                            const struct sotto_srv_link *m, int per_addr, int slots_max) {
  struct srv_cluster *k = s->cl;
  char h[SOTTO_LINK_ADDR_HEX + 1], a[SOTTO_LINK_ADDR_HEX + 1], slot[64], addr[64], acct[24], ttl[24], pa[16],
      sm[16];
  static const char all[] = "sotto:{linkall}";
  uint8_t code[SOTTO_SRV_LINK_CODE_LEN];
  struct sotto_link_reply lr;
  struct sotto__wr w;
  redisReply *r = NULL;
  int ok = 0, rc;
  if (!k) return 0;
  if (!k->up || !k->cmd) {
    k->link_local++;
    return 0;
  }
  snprintf(acct, sizeof acct, "%lld", c->state == S_AUTHED ? (long long)c->account_id : 0LL);
  if (f->type == SOTTO_SRV_LINK_OPEN) {
    int tries, full = 0;
    link_hash('L', c->addr, c->alen, a);
    snprintf(addr, sizeof addr, "sotto:{linkaddr:%s}", a);
    snprintf(ttl, sizeof ttl, "%lld", (long long)s->cfg->link_ttl_s * 1000);
    snprintf(pa, sizeof pa, "%d", per_addr);
    snprintf(sm, sizeof sm, "%d", slots_max);
    for (tries = 0; tries < 4; tries++) {
      const char *ka[1] = {addr}, *kg[1] = {all}, *ks[1] = {slot};
      const char *ra[3] = {h, ttl, pa}, *rg[3] = {h, ttl, sm}, *os[3] = {(const char *)m->data, ttl, a};
      size_t la[3], lg[3], ls[3];
      randombytes_buf(code, sizeof code);
      link_hash('C', code, sizeof code, h);
      snprintf(slot, sizeof slot, "sotto:{link:%s}", h);
      la[0] = lg[0] = strlen(h), la[1] = lg[1] = ls[1] = strlen(ttl), la[2] = strlen(pa), lg[2] = strlen(sm);
      ls[0] = m->data_len, ls[2] = strlen(a);
      /* a place in the address's set, then in the cluster's */
      if ((rc = link_call(s, SOTTO_LINK_RESERVE, LINK_RESERVE_LUA, 1, ka, 3, ra, la, &r, &lr)) != 0) goto fail;
      freeReplyObject(r);
      r = NULL;
      if (lr.result < 0) {
        full = 1;
        break;
      }
      if ((rc = link_call(s, SOTTO_LINK_RESERVE, LINK_RESERVE_LUA, 1, kg, 3, rg, lg, &r, &lr)) != 0) {
        link_release(s, addr, h);
        goto fail;
      }
      freeReplyObject(r);
      r = NULL;
      if (lr.result < 0) {
        link_release(s, addr, h);
        full = 1;
        break;
      }
      /* the slot itself; a code whose hash exists already (not in this
       * life of the universe, but cheap to handle) gives its places back */
      if ((rc = link_call(s, SOTTO_LINK_OPEN, LINK_OPEN_LUA, 1, ks, 3, os, ls, &r, &lr)) != 0) {
        link_release(s, addr, h);
        link_release(s, all, h);
        goto fail;
      }
      freeReplyObject(r);
      r = NULL;
      if (lr.result == 1) break;
      link_release(s, addr, h);
      link_release(s, all, h);
    }
    if (!full && tries == 4) {
      rc = -2;
      goto fail;
    }
    if (full) {
      s->m.rate_limited++;
      sotto__srv_send_err(s, c, f->req_id, SOTTO_SRV_E_RATE);
    } else {
      s->m.link_opened++;
      if (sotto__srv_frame_begin(c, &w, SOTTO_SRV_LINK_CODE_LEN + 4) == 0) {
        sotto__srv_put_link_opened(&w, code, (uint32_t)s->cfg->link_ttl_s);
        sotto__srv_frame_end(c, &w, SOTTO_SRV_OK, f->req_id);
      }
    }
    ok = 1;
    goto out;
  }
  link_hash('C', m->code, SOTTO_SRV_LINK_CODE_LEN, h);
  snprintf(slot, sizeof slot, "sotto:{link:%s}", h);
  if (f->type == SOTTO_SRV_LINK_PUT) {
    const char *keys[1] = {slot}, *args[2] = {m->data_len ? (const char *)m->data : "", acct};
    size_t lens[2] = {m->data_len, strlen(acct)};
    if ((rc = link_call(s, SOTTO_LINK_PUT, LINK_PUT_LUA, 1, keys, 2, args, lens, &r, &lr)) != 0) goto fail;
    if (!lr.result) {
      ok = 2;
    } else {
      if (m->data_len) s->m.link_provisioned++;
      if (sotto__srv_frame_begin(c, &w, 2 + lr.len) == 0) {
        sotto__srv_put_blob16(&w, (const uint8_t *)lr.data, lr.len);
        sotto__srv_frame_end(c, &w, SOTTO_SRV_OK, f->req_id);
      }
      ok = 1;
    }
  } else if (f->type == SOTTO_SRV_LINK_GET) {
    const char *keys[1] = {slot}, *args[1] = {acct};
    size_t lens[1] = {strlen(acct)};
    if ((rc = link_call(s, SOTTO_LINK_GET, LINK_GET_LUA, 1, keys, 1, args, lens, &r, &lr)) != 0) goto fail;
    if (!lr.result) {
      ok = 2;
    } else {
      if (sotto__srv_frame_begin(c, &w, 5 + lr.len) == 0) {
        sotto__srv_put_link_state(&w, lr.state, (const uint8_t *)lr.data, lr.len);
        sotto__srv_frame_end(c, &w, SOTTO_SRV_OK, f->req_id);
      }
      if (lr.done) {
        /* the slot is gone: its places in the counting sets too */
        s->m.link_done++;
        snprintf(addr, sizeof addr, "sotto:{linkaddr:%s}", lr.addr);
        link_release(s, addr, h);
        link_release(s, all, h);
      }
      ok = 1;
    }
  } else {
    const char *keys[1] = {slot}, *args[1] = {(const char *)m->data};
    size_t lens[1] = {m->data_len};
    if ((rc = link_call(s, SOTTO_LINK_REPLY, LINK_REPLY_LUA, 1, keys, 1, args, lens, &r, &lr)) != 0) goto fail;
    if (lr.result == 1)
      sotto__srv_send_simple(c, SOTTO_SRV_OK, f->req_id, NULL, 0);
    else
      ok = 2;
    if (ok == 0) ok = 1;
  }
  goto out;
fail:
  if (rc == -1) goto local;
  sotto__srv_log(0, "cluster_redis_error", "node=%s error=\"unexpected link-slot reply\"", k->node);
  k->link_bad++;
  sotto__srv_send_err(s, c, f->req_id, SOTTO_SRV_E_INTERNAL);
  ok = 1;
  goto out_counted;
local:
  /* Redis went down (said by down()) or refused the script: this node's
   * memory serves the request. */
  k->link_local++;
  ok = 0;
  goto out_counted;
out:
  k->link_redis++;
  if (ok == 2) {
    s->m.link_refused++;
    sotto__srv_send_err(s, c, f->req_id, SOTTO_SRV_E_LINK_CODE);
    ok = 1;
  }
out_counted:
  if (r) freeReplyObject(r);
  sodium_memzero(code, sizeof code);
  return ok;
}

/* ---- metrics and readiness ---------------------------------------------------------- */

size_t sotto__srv_cluster_metrics(struct srv *s, char *out, size_t cap) {
  struct srv_cluster *k = s->cl;
  size_t n = 0;
  if (!k) return 0;
#define P(...) n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, __VA_ARGS__)
  P("# TYPE sotto_cluster_redis_up gauge\nsotto_cluster_redis_up{node=\"%s\"} %d\n", k->node, k->up);
  P("# TYPE sotto_cluster_degraded_total counter\nsotto_cluster_degraded_total{node=\"%s\"} %llu\n", k->node,
    (unsigned long long)k->degraded);
  P("# TYPE sotto_cluster_announces_total counter\nsotto_cluster_announces_total{node=\"%s\",dir=\"out\"} "
    "%llu\nsotto_cluster_announces_total{node=\"%s\",dir=\"in\"} %llu\n",
    k->node, (unsigned long long)k->announces, k->node, (unsigned long long)k->announced_in);
  P("# TYPE sotto_cluster_displaced_total counter\nsotto_cluster_displaced_total{node=\"%s\",dir=\"out\"} "
    "%llu\nsotto_cluster_displaced_total{node=\"%s\",dir=\"in\"} %llu\n",
    k->node, (unsigned long long)k->kicks_out, k->node, (unsigned long long)k->kicks_in);
  P("# TYPE sotto_cluster_polls_total counter\nsotto_cluster_polls_total{node=\"%s\"} %llu\n", k->node,
    (unsigned long long)k->polls);
  P("# TYPE sotto_cluster_redis_commands_total counter\nsotto_cluster_redis_commands_total{node=\"%s\"} %llu\n",
    k->node, (unsigned long long)k->redis_cmds);
  P("# TYPE sotto_cluster_limit_checks_total counter\nsotto_cluster_limit_checks_total{node=\"%s\",where=\"redis\"} "
    "%llu\nsotto_cluster_limit_checks_total{node=\"%s\",where=\"local\"} %llu\n",
    k->node, (unsigned long long)k->lim_redis, k->node, (unsigned long long)k->lim_local);
  P("# TYPE sotto_cluster_link_ops_total counter\nsotto_cluster_link_ops_total{node=\"%s\",result=\"redis\"} "
    "%llu\nsotto_cluster_link_ops_total{node=\"%s\",result=\"local\"} %llu\n"
    "sotto_cluster_link_ops_total{node=\"%s\",result=\"bad_reply\"} %llu\n",
    k->node, (unsigned long long)k->link_redis, k->node, (unsigned long long)k->link_local, k->node,
    (unsigned long long)k->link_bad);
#undef P
  return n < cap ? n : cap ? cap - 1 : 0;
}

int sotto__srv_cluster_ready(struct srv *s, char *why, size_t cap) {
  struct srv_cluster *k = s->cl;
  if (!k || k->up) return 1;
  snprintf(why, cap, "node %s: redis down (%s): degraded to polling PostgreSQL every %d ms, pushes resume when "
           "Redis is back", k->node, k->why, POLL_MS);
  return 0;
}
