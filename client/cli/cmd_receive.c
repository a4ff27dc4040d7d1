/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_receive.c: sotto receive [--follow] -- fetch, decrypt, show, ack. */
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define RECEIVE_WAIT_MS 15000 /* without --follow: how long to wait for the queue */
#define FOLLOW_POLL_MS 1000

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

/* Counts what the sink shows, for "No new messages." */
struct counting {
  struct cli *c;
  unsigned shown;
};

static void count_sink(void *ud, const struct sc_event *ev) {
  struct counting *k = ud;
  if (ev->seq && ev->kind != SC_EV_DELIVERY) k->shown++; /* a receipt is no new message */
  cli_sink(k->c, ev);
}

/* 1 when nobody can read stdout any more: the reading end of a pipe was
 * closed ('sotto receive --follow | head -1' after its line). A --follow
 * with nothing new to print would otherwise never find out. */
static int stdout_gone(void) {
  struct pollfd p = {STDOUT_FILENO, 0, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0;
}

/* Without --follow: until the server's queue is drained (and every ACK
 * answered) or the deadline. With --follow: until a signal; the core
 * reconnects with back-off after a lost connection. Every failure is the
 * core's recorded error: a local one (a busy store) ends the receive at
 * once with it, it is never taken for a lost connection. */
static int loop(struct cli *c, int follow, int64_t deadline, unsigned *count) {
  int rc;
  for (;;) {
    int wait = FOLLOW_POLL_MS;
    if (stop) return CLI_OK;
    /* Nobody reads any more ('sotto receive | head -1'): stop; what was not
     * shown waits in the unshown list for the next receive. */
    if (c->out_closed || (follow && stdout_gone())) return CLI_OUTPUT;
    if (!follow) {
      int64_t left = deadline - sc_monotonic_ms();
      if (left <= 0)
        return cli_error(c, "timeout",
                         "the server did not finish sending the queue within the timeout (%u messages received and "
                         "acknowledged); run 'sotto receive' again for the rest",
                         *count);
      if (left < wait) wait = (int)left;
      /* Requests made from here (ACKs, a pre-key top-up) end by then too. */
      (void)sc_set_option(c->core, SC_OPT_REQUEST_TIMEOUT_MS, left < 100 ? 100 : left < 15000 ? left : 15000);
    }
    rc = sc_link_step(c->core, wait);
    if (rc < 0) return c->out_closed ? CLI_OUTPUT : cli_fail(c);
    *count += (unsigned)rc;
    if (!follow && sc_link_drained(c->core)) return CLI_OK;
    /* --follow: a quiet moment sums up what could not be decrypted. */
    if (follow && rc == 0 && sc_summarise(c->core)) return cli_fail(c);
  }
}

static int run(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  static const struct option opts[] = {{"follow", no_argument, NULL, 'f'},
                                       {"timeout", required_argument, NULL, 't'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  struct sigaction sa;
  struct counting k;
  unsigned frames = 0;
  int64_t deadline;
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
  k.c = c;
  k.shown = 0;
  sc_set_sink(c->core, count_sink, &k);
  /* Whatever a crash left committed but unshown comes first. */
  if (sc_flush_unshown(c->core)) return cli_fail(c);
  if (c->out_closed) return CLI_OUTPUT;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  deadline = sc_monotonic_ms() + timeout_ms;
  if (follow) {
    (void)sc_set_option(c->core, SC_OPT_AUTO_RECONNECT, 1);
    /* The first connection too is retried with back-off until a signal. */
    while (!stop && sc_connect(c->core, 0) != 0) {
      int64_t wait;
      (void)cli_fail(c);
      for (wait = 0; wait < 2000 && !stop; wait += 100) (void)poll(NULL, 0, 100);
    }
    if (stop) return sc_summarise(c->core) ? cli_fail(c) : CLI_OK;
  } else if (sc_connect(c->core, timeout_ms) != 0) {
    rc = cli_fail(c);
    (void)sc_summarise(c->core);
    return rc;
  }
  rc = loop(c, follow, deadline, &frames);
  /* What was counted but not summed up yet is summed up at the end. */
  if (sc_summarise(c->core) && rc == CLI_OK) rc = cli_fail(c);
  if (c->out_closed && rc == CLI_OK) rc = CLI_OUTPUT;
  sc_disconnect(c->core);
  if (rc == CLI_OK && !follow && !c->json && k.shown == 0) printf("No new messages.\n");
  return rc;
}

const struct cli_cmd cmd_receive = {
    "receive", "fetch, decrypt and show new messages", "receive [--follow] [--timeout SEC]",
    "Connects to the server, decrypts every queued message and prints it, then\n"
    "acknowledges it so the server deletes it. Each message is committed to the\n"
    "local store before it is shown and acknowledged afterwards, so a crash never\n"
    "loses or repeats one. Identity key changes and group changes are shown as\n"
    "lines marked '!' and '*'. Every message and notice starts with a header line\n"
    "'[LOCAL TIME] ...' (the sender's time; the server's too when they differ by\n"
    "more than 5 minutes); its further lines are indented by four spaces, and\n"
    "control characters are shown as U+FFFD, so no text can pass for another\n"
    "line. When many messages from one sender cannot be\n"
    "decrypted, the first few are shown and the rest summed up in one line. A\n"
    "malformed envelope from the server is reported, acknowledged and skipped.\n"
    "A first message from a contact's linked device whose signed device list\n"
    "cannot be checked yet (no answer, key-transparency proof not ready) is\n"
    "held unread ('held: cannot check bob's device 2 yet') and checked again\n"
    "at the next receive; it is shown once the check passes, refused if it\n"
    "fails, and given up after 7 days.\n\n"
    "options:\n"
    "  --follow       stay connected and print messages as they arrive (until\n"
    "                 Ctrl-C / SIGTERM); reconnects after a lost connection\n"
    "  --timeout SEC  without --follow: the longest the whole receive may take\n"
    "                 (default 15); what the server has not sent by then stays\n"
    "                 queued there for the next receive\n"
    "  --help         this text\n\n"
    "exit status: 0 done, 1 failure, 2 usage error, 3 standard output was closed\n"
    "(e.g. 'sotto receive | head -1'; --follow notices it within a second): the\n"
    "rest is kept and shown by the next receive.\n",
    run};
