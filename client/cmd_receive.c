/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_receive.c: sotto receive [--follow] -- fetch, decrypt, show, ack. */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "messaging.h"

#define RECEIVE_WAIT_MS 15000  /* without --follow: how long to wait for the queue */
#define FOLLOW_POLL_MS 1000
#define FOLLOW_PING_MS 30000
#define RECONNECT_MAX_S 30

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

/* Malformed frames from the server shown one by one per receive; the rest
 * are counted and summed up at the end. */
#define BAD_SHOWN 3

struct recv_state {
  int follow;
  int64_t deadline;   /* without --follow: when to give up (--timeout) */
  unsigned count;     /* envelopes processed */
  unsigned bad;       /* malformed frames skipped */
  unsigned acks;      /* ACKs sent whose answer has not come yet */
};

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A frame the client could not parse (a bad sender name, a body over the
 * cap, garbage): reported, acknowledged when its id could be read (else the
 * server would push it again on every connection) and skipped. */
static int skip_bad(struct cli *c, struct conn *k, struct recv_state *st, const struct sotto_net_event *ev) {
  uint32_t rid;
  int rc;
  if (++st->bad <= BAD_SHOWN) {
    if (ev->has_id)
      cli_warn(c, "bad_envelope", "the server sent a malformed envelope (id %llu: %s); skipped and acknowledged",
               (unsigned long long)ev->id, sotto_strerror(ev->error));
    else
      cli_warn(c, "bad_frame", "the server sent a malformed frame (type 0x%02x: %s); skipped", ev->frame_type,
               sotto_strerror(ev->error));
  }
  if (!ev->has_id) return 0;
  if ((rc = sotto_net_ack_async(k->net, ev->id, &rid)) != 0) return rc;
  st->acks++;
  return 0;
}

/* Sums up what a receive counted but did not show one by one: messages that
 * could not be decrypted (inbox_unreadable_summary) and malformed frames. */
static int sum_up(struct cli *c, struct recv_state *st) {
  int rc = inbox_unreadable_summary(c);
  if (st->bad > BAD_SHOWN)
    cli_warn(c, "bad_envelope", "%u more malformed frames from the server were skipped", st->bad - BAD_SHOWN);
  st->bad = 0;
  return rc;
}

/* One connection's worth of receiving. Returns CLI_OK when the queue was
 * drained (without follow) or a stop was asked, 1 for "reconnect", or
 * CLI_FAIL. ACKs are pipelined: their answers come back as events, and the
 * queue counts as drained once every ACK is answered. */
static int session_loop(struct cli *c, struct conn *k, struct recv_state *st) {
  struct sotto_net_event ev;
  int rc, idle = 0, drained = 0;
  uint32_t rid;

  for (;;) {
    int wait = st->follow ? FOLLOW_POLL_MS : 500;
    if (stop) return CLI_OK;
    if (!st->follow) {
      int64_t left = st->deadline - mono_ms();
      if (left <= 0)
        return cli_error(c, "timeout",
                         "the server did not finish sending the queue within the timeout (%u messages received and "
                         "acknowledged); run 'sotto receive' again for the rest",
                         st->count);
      if (left < wait) wait = (int)left;
      /* Requests made from here (ACKs, a pre-key top-up) end by then too. */
      sotto_net_set_timeout(k->net, left < CONN_REQUEST_TIMEOUT_MS ? (int)left : CONN_REQUEST_TIMEOUT_MS);
    }
    memset(&ev, 0, sizeof ev);
    rc = sotto_net_next_event(k->net, wait, &ev);
    if (stop) {
      if (rc == 1) sotto_net_event_clear(&ev); /* not acked: the server keeps it */
      return CLI_OK;
    }
    if (rc == 0) {
      /* --follow: a quiet moment sums up what could not be decrypted. */
      if (st->follow && inbox_unreadable_summary(c)) return CLI_FAIL;
      idle += FOLLOW_POLL_MS;
      if (st->follow && idle >= FOLLOW_PING_MS) {
        idle = 0;
        if ((rc = sotto_net_ping(k->net)) != 0) {
          if (rc == SOTTO_NET_E_IO || rc == SOTTO_NET_E_TIMEOUT) return 1;
          return conn_error(c, k, rc, "waiting for messages", NULL);
        }
      }
      continue;
    }
    if (rc < 0 || rc > 1) {
      if (st->follow && (rc == SOTTO_NET_E_IO || rc == SOTTO_NET_E_TIMEOUT)) return 1;
      return conn_error(c, k, rc, "receiving", NULL);
    }
    idle = 0;
    switch (ev.kind) {
      case SOTTO_NET_EV_MSG: {
        uint64_t id = ev.id;
        rc = inbox_process(c, k, ev.id, ev.sender, ev.sender_device, ev.type, ev.body, ev.body_len);
        sotto_net_event_clear(&ev);
        if (rc) return CLI_FAIL;
        st->count++;
        if ((rc = sotto_net_ack_async(k->net, id, &rid)) != 0) {
          if (st->follow && (rc == SOTTO_NET_E_IO || rc == SOTTO_NET_E_TIMEOUT)) return 1;
          return conn_error(c, k, rc, "acknowledging a message", NULL);
        }
        st->acks++;
        break;
      }
      case SOTTO_NET_EV_BAD:
        rc = skip_bad(c, k, st, &ev);
        sotto_net_event_clear(&ev);
        if (rc) {
          if (st->follow && (rc == SOTTO_NET_E_IO || rc == SOTTO_NET_E_TIMEOUT)) return 1;
          return conn_error(c, k, rc, "acknowledging a malformed envelope", NULL);
        }
        break;
      case SOTTO_NET_EV_ANSWER: {
        int code = ev.code;
        sotto_net_event_clear(&ev);
        if (st->acks) st->acks--;
        if (code) return conn_error(c, k, code, "acknowledging a message", NULL);
        break;
      }
      case SOTTO_NET_EV_DRAINED:
        sotto_net_event_clear(&ev);
        drained = 1;
        /* Summed up now unless envelopes were dropped meanwhile: then a
         * reconnect fetches them and the count goes on (one summary per
         * receive). */
        if (!sotto_net_dropped(k->net) && inbox_unreadable_summary(c)) return CLI_FAIL;
        break;
      case SOTTO_NET_EV_KEYS_LOW: {
        uint32_t e = ev.ec_left, m = ev.kem_left;
        sotto_net_event_clear(&ev);
        if (conn_top_up(c, k, e, m)) return CLI_FAIL;
        break;
      }
      case SOTTO_NET_EV_CLOSE: {
        int code = ev.code;
        sotto_net_event_clear(&ev);
        if (st->follow && code != SOTTO_SRV_E_AUTH) {
          if (code == SOTTO_SRV_E_DISPLACED)
            cli_warn(c, "displaced", "another sotto of this identity connected; reconnecting when it is done");
          return 1;
        }
        return conn_error(c, k, code, "receiving", NULL);
      }
      default:
        sotto_net_event_clear(&ev);
        break;
    }
    /* Drained and every ACK answered. Envelopes dropped while the client's
     * queue was full are still on the server: fetch them on a new
     * connection. */
    if (drained && st->acks == 0) {
      drained = 0;
      if (sotto_net_dropped(k->net)) return 1;
      if (!st->follow) return CLI_OK;
    }
  }
}

static int run(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  static const struct option opts[] = {{"follow", no_argument, NULL, 'f'},
                                       {"timeout", required_argument, NULL, 't'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  struct sigaction sa;
  struct conn k;
  struct recv_state st;
  unsigned backoff = 1;
  int ch, follow = 0, rc, timeout_ms = RECEIVE_WAIT_MS;

  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "+hf", opts, NULL)) != -1) {
    switch (ch) {
      case 'f': follow = 1; break;
      case 't': {
        char *end;
        long v = strtol(optarg, &end, 10);
        if (*end || v < 1 || v > 3600) return cli_usage(c, cmd, "--timeout takes 1..3600 seconds");
        timeout_ms = (int)v * 1000;
        break;
      }
      case 'h': return cli_help(cmd);
      default: return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc) return cli_usage(c, cmd, "unexpected argument '%s'", argv[optind]);
  memset(&st, 0, sizeof st);
  st.follow = follow;
  if (cli_open(c)) return CLI_FAIL;
  /* Whatever a crash left committed but unshown comes first. */
  if (inbox_flush_unshown(c)) return CLI_FAIL;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  st.deadline = mono_ms() + timeout_ms;
  for (;;) {
    if (conn_open_until(c, &k, follow ? 0 : st.deadline)) {
      if (!follow) {
        (void)sum_up(c, &st);
        return CLI_FAIL;
      }
    } else {
      backoff = 1;
      st.acks = 0;
      rc = session_loop(c, &k, &st);
      conn_close(&k);
      /* What was counted but not summed up yet (a stop, an error) is
       * summed up at the end of the receive (a reconnect to fetch what was
       * dropped meanwhile goes on counting), and at each connection's end
       * with --follow. */
      if ((rc != 1 || follow) && sum_up(c, &st) && rc != CLI_FAIL) rc = CLI_FAIL;
      if (rc != 1) {
        if (rc == CLI_OK && !follow && !c->json && st.count == 0) printf("No new messages.\n");
        return rc;
      }
    }
    /* --follow: wait and reconnect (bounded back-off), until a signal. */
    {
      struct timespec ts = {(time_t)backoff, 0};
      while (!stop && nanosleep(&ts, &ts) != 0) {
      }
    }
    if (stop) return sum_up(c, &st);
    if (backoff < RECONNECT_MAX_S) backoff *= 2;
  }
}

const struct cli_cmd cmd_receive = {
    "receive", "fetch, decrypt and show new messages", "receive [--follow] [--timeout SEC]",
    "Connects to the server, decrypts every queued message and prints it, then\n"
    "acknowledges it so the server deletes it. Each message is committed to the\n"
    "local store before it is shown and acknowledged afterwards, so a crash never\n"
    "loses or repeats one. Identity key changes and group changes are shown as\n"
    "lines starting with '!' and '*'. When many messages from one sender cannot be\n"
    "decrypted, the first few are shown and the rest summed up in one line. A\n"
    "malformed envelope from the server is reported, acknowledged and skipped.\n\n"
    "options:\n"
    "  --follow       stay connected and print messages as they arrive (until\n"
    "                 Ctrl-C / SIGTERM); reconnects after a lost connection\n"
    "  --timeout SEC  without --follow: the longest the whole receive may take\n"
    "                 (default 15); what the server has not sent by then stays\n"
    "                 queued there for the next receive\n"
    "  --help         this text\n",
    run};
