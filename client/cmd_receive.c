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

/* One connection's worth of receiving. Returns CLI_OK when the queue was
 * drained (without follow) or a stop was asked, 1 for "reconnect", or
 * CLI_FAIL. *count gets the number of envelopes processed. */
static int session_loop(struct cli *c, struct conn *k, int follow, int timeout_ms, unsigned *count) {
  struct sotto_net_event ev;
  int waited = 0, rc, idle = 0;

  for (;;) {
    if (stop) return CLI_OK;
    memset(&ev, 0, sizeof ev);
    rc = sotto_net_next_event(k->net, follow ? FOLLOW_POLL_MS : 500, &ev);
    if (stop) {
      if (rc == 1) sotto_net_event_clear(&ev); /* not acked: the server keeps it */
      return CLI_OK;
    }
    if (rc == 0) {
      waited += follow ? FOLLOW_POLL_MS : 500;
      idle += FOLLOW_POLL_MS;
      if (!follow && waited >= timeout_ms)
        return cli_error(c, "timeout", "the server did not finish sending the queue within %d s; try again",
                         timeout_ms / 1000);
      if (follow && idle >= FOLLOW_PING_MS) {
        idle = 0;
        if ((rc = sotto_net_ping(k->net)) != 0) {
          if (rc == SOTTO_NET_E_IO || rc == SOTTO_NET_E_TIMEOUT) return 1;
          return conn_error(c, k, rc, "waiting for messages", NULL);
        }
      }
      continue;
    }
    if (rc < 0 || rc > 1) {
      if (follow && (rc == SOTTO_NET_E_IO || rc == SOTTO_NET_E_TIMEOUT)) return 1;
      return conn_error(c, k, rc, "receiving", NULL);
    }
    idle = 0;
    switch (ev.kind) {
      case SOTTO_NET_EV_MSG:
        rc = inbox_process(c, k, ev.id, ev.sender, ev.type, ev.body, ev.body_len);
        if (rc == CLI_OK) {
          (*count)++;
          rc = sotto_net_ack(k->net, ev.id);
          if (rc) {
            sotto_net_event_clear(&ev);
            if (follow && (rc == SOTTO_NET_E_IO || rc == SOTTO_NET_E_TIMEOUT)) return 1;
            return conn_error(c, k, rc, "acknowledging a message", NULL);
          }
        }
        sotto_net_event_clear(&ev);
        if (rc) return CLI_FAIL;
        break;
      case SOTTO_NET_EV_DRAINED:
        sotto_net_event_clear(&ev);
        if (!follow) return CLI_OK;
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
        if (follow && code != SOTTO_SRV_E_AUTH) {
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
  }
}

static int run(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  static const struct option opts[] = {{"follow", no_argument, NULL, 'f'},
                                       {"timeout", required_argument, NULL, 't'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  struct sigaction sa;
  struct conn k;
  unsigned count = 0, backoff = 1;
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
  if (cli_open(c)) return CLI_FAIL;
  /* Whatever a crash left committed but unshown comes first. */
  if (inbox_flush_unshown(c)) return CLI_FAIL;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  for (;;) {
    if (conn_open(c, &k)) {
      if (!follow) return CLI_FAIL;
    } else {
      backoff = 1;
      rc = session_loop(c, &k, follow, timeout_ms, &count);
      conn_close(&k);
      if (rc != 1) {
        if (rc == CLI_OK && !follow && !c->json && count == 0) printf("No new messages.\n");
        return rc;
      }
    }
    /* --follow: wait and reconnect (bounded back-off), until a signal. */
    {
      struct timespec ts = {(time_t)backoff, 0};
      while (!stop && nanosleep(&ts, &ts) != 0) {
      }
    }
    if (stop) return CLI_OK;
    if (backoff < RECONNECT_MAX_S) backoff *= 2;
  }
}

const struct cli_cmd cmd_receive = {
    "receive", "fetch, decrypt and show new messages", "receive [--follow] [--timeout SEC]",
    "Connects to the server, decrypts every queued message and prints it, then\n"
    "acknowledges it so the server deletes it. Each message is committed to the\n"
    "local store before it is shown and acknowledged afterwards, so a crash never\n"
    "loses or repeats one. Identity key changes and group changes are shown as\n"
    "lines starting with '!' and '*'.\n\n"
    "options:\n"
    "  --follow       stay connected and print messages as they arrive (until\n"
    "                 Ctrl-C / SIGTERM); reconnects after a lost connection\n"
    "  --timeout SEC  without --follow: how long to wait for the queue (default 15)\n"
    "  --help         this text\n",
    run};
