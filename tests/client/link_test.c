/* SPDX-License-Identifier: Apache-2.0 */
/* link_test.c: the client core's pollable link against the real server
 * (ctest client_core_link): what the daemon and the chat UI build on.
 *
 *  - after sc_connect, sc_link_fd is a socket to poll and
 *    sc_link_next_deadline a time in the future (keep-alive);
 *  - messages pushed by the server come out of sc_link_step through the
 *    sink, in order, once each, and are acknowledged (a second receive on a
 *    new connection gets nothing again);
 *  - a send issued while subscribed goes over the same connection, and the
 *    pushes that arrived while it waited for its answer are handed out by
 *    the next step (sc_link_pending says so before any poll);
 *  - an idle link is pinged at its deadline;
 *  - with SC_OPT_AUTO_RECONNECT, a server that goes away gives a LINK_DOWN
 *    event, a reconnect deadline, and the link comes back by itself once the
 *    server is there again; without it, the step fails with the error. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sotto_client.h"
#include "srvtest.h"

static int fails, checks;

#define CHECK(cond, what)                                    \
  do {                                                       \
    checks++;                                                \
    if (cond) {                                              \
      printf("ok   %s\n", what);                             \
    } else {                                                 \
      fails++;                                               \
      printf("FAIL %s (%s:%d)\n", what, __FILE__, __LINE__); \
    }                                                        \
  } while (0)

struct seen {
  int messages, link_up, link_down, drained, with_envelope;
  char texts[64][64];
  char from[64][SC_USER_MAX + 1];
};

static void sink(void *ud, const struct sc_event *ev) {
  struct seen *s = ud;
  if (ev->kind == SC_EV_MESSAGE && s->messages < 64) {
    snprintf(s->texts[s->messages], sizeof s->texts[0], "%.*s", (int)ev->text_len, ev->text);
    snprintf(s->from[s->messages], sizeof s->from[0], "%s", ev->peer);
    s->messages++;
    if (ev->device == 1 && ev->server_timestamp_ms > 1600000000000ull && ev->server_id && ev->seq) s->with_envelope++;
  }
  if (ev->kind == SC_EV_LINK_UP) s->link_up++;
  if (ev->kind == SC_EV_LINK_DOWN) s->link_down++;
  if (ev->kind == SC_EV_DRAINED) s->drained++;
}

/* One turn of a front end's loop: poll the link's fd until readable or its
 * deadline (at most max_ms), then one step. Returns the step's result. */
static int turn(struct sc_client *c, int max_ms) {
  int64_t d = sc_link_next_deadline(c), now = sc_monotonic_ms();
  int wait = max_ms, fd = sc_link_fd(c);
  if (d >= 0 && d - now < wait) wait = d - now < 0 ? 0 : (int)(d - now);
  if (sc_link_pending(c)) wait = 0;
  if (fd >= 0) {
    struct pollfd p = {fd, POLLIN, 0};
    (void)poll(&p, 1, wait);
  } else if (wait > 0) {
    (void)poll(NULL, 0, wait);
  }
  return sc_link_step(c, 0);
}

static int until_messages(struct sc_client *c, struct seen *s, int want, int ms) {
  int64_t end = sc_monotonic_ms() + ms;
  while (s->messages < want && sc_monotonic_ms() < end)
    if (turn(c, 200) < 0) return -1;
  return s->messages >= want ? 0 : -1;
}

static struct sc_client *user(const char *base, const char *name, const char *server, const char *pin,
                              struct seen *s) {
  struct sc_client *c;
  char home[512];
  snprintf(home, sizeof home, "%s/%s", base, name);
  if (sc_client_new(&c, home) || sc_init(c, NULL, "core test passphrase", 20) ||
      sc_register(NULL, NULL, c, server, name, pin, NULL)) {
    printf("FAIL setting up %s: %s\n", name, c ? sc_errdetail(c) : "?");
    exit(1);
  }
  sc_set_sink(c, sink, s);
  return c;
}

int main(void) {
  static const char *const extra[] = {"--register-rate", "600", "--register-burst", "100", NULL};
  char base[] = "/tmp/sotto-link-test.XXXXXX", server[64], cmd[128];
  struct srv_proc p;
  struct seen sa, sb;
  struct sc_client *alice, *bob;
  int i, rc, ok;

  setenv("SOTTO_TEST_KDF", "fast", 1);
  signal(SIGPIPE, SIG_IGN); /* what a front end does (sotto_client.h) */
  memset(&p, 0, sizeof p);
  memset(&sa, 0, sizeof sa);
  memset(&sb, 0, sizeof sb);
  if (!mkdtemp(base) || srv_mkdir(&p, "link") || srv_start(&p, extra)) {
    printf("FAIL cannot start the server\n");
    return 1;
  }
  snprintf(server, sizeof server, "127.0.0.1:%s", p.port);
  alice = user(base, "alice", server, p.fp, &sa);
  bob = user(base, "bob", server, p.fp, &sb);

  CHECK(sc_link_fd(bob) == -1 && sc_link_next_deadline(bob) == -1, "before sc_connect: no fd, no deadline");
  CHECK(sc_link_step(bob, 0) == SC_ERR_NOT_CONNECTED, "before sc_connect: a step says not connected");
  CHECK(sc_connect(bob, 0) == 0 && sb.link_up == 1, "bob connects (LINK_UP)");
  CHECK(sc_link_fd(bob) >= 0, "the link has an fd to poll");
  CHECK(sc_link_next_deadline(bob) > sc_monotonic_ms(), "... and a keep-alive deadline ahead");
  (void)sc_set_option(bob, SC_OPT_KEEPALIVE_MS, 1000);

  /* Pushes come out of steps, in order. */
  ok = 1;
  for (i = 0; i < 3; i++) {
    char t[32];
    snprintf(t, sizeof t, "push %d", i);
    if (sc_send_text(NULL, alice, "bob", t, strlen(t), 0)) ok = 0;
  }
  CHECK(ok, "alice sends three messages (connecting for each call)");
  CHECK(until_messages(bob, &sb, 3, 10000) == 0, "bob's polled link delivers the three");
  CHECK(!strcmp(sb.texts[0], "push 0") && !strcmp(sb.texts[2], "push 2") && !strcmp(sb.from[1], "alice"),
        "... in order, from alice");
  CHECK(sb.with_envelope == 3, "... each with the sender's device, the server's timestamp and id, and its log number");

  /* A send while subscribed, on the same connection; pushes meanwhile queue. */
  for (i = 0; i < 5; i++) {
    char t[32];
    snprintf(t, sizeof t, "burst %d", i);
    (void)sc_send_text(NULL, alice, "bob", t, strlen(t), 0);
  }
  (void)poll(NULL, 0, 300); /* let the pushes reach bob's socket */
  CHECK(sc_send_text(NULL, bob, "alice", "reply", 5, 0) == 0 && sc_connected(bob),
        "bob replies while subscribed, over the same link");
  CHECK(sc_link_pending(bob), "... the pushes that came meanwhile are pending (no poll needed)");
  CHECK(until_messages(bob, &sb, 8, 10000) == 0 && !strcmp(sb.texts[3], "burst 0") && !strcmp(sb.texts[7], "burst 4"),
        "... and handed out by the next steps, all five, in order");
  CHECK(sc_connect(alice, 0) == 0 && until_messages(alice, &sa, 1, 10000) == 0 && !strcmp(sa.texts[0], "reply"),
        "alice gets the reply");
  sc_disconnect(alice);

  /* Keep-alive: an idle link passes its deadline and is pinged. */
  {
    int64_t d0 = sc_link_next_deadline(bob);
    int64_t end = sc_monotonic_ms() + 3000;
    while (sc_monotonic_ms() < end && sc_link_next_deadline(bob) == d0) (void)turn(bob, 500);
    CHECK(sc_link_next_deadline(bob) > d0 && sc_connected(bob), "an idle link is pinged at its deadline and stays up");
  }

  /* Acked: a new connection gets nothing again. */
  sc_disconnect(bob);
  sb.drained = 0;
  CHECK(sc_connect(bob, 0) == 0, "bob reconnects");
  {
    int64_t end = sc_monotonic_ms() + 5000;
    while (!sc_link_drained(bob) && sc_monotonic_ms() < end)
      if (turn(bob, 200) < 0) break;
  }
  CHECK(sc_link_drained(bob) && sb.drained >= 1 && sb.messages == 8, "... the queue is drained with nothing again");

  /* Auto-reconnect: the server goes away and comes back on its port. */
  (void)sc_set_option(bob, SC_OPT_AUTO_RECONNECT, 1);
  srv_kill(&p);
  {
    int64_t end = sc_monotonic_ms() + 10000;
    while (sc_connected(bob) && sc_monotonic_ms() < end) rc = turn(bob, 500);
  }
  CHECK(!sc_connected(bob) && sb.link_down >= 1, "a lost server gives LINK_DOWN");
  CHECK(sc_link_fd(bob) == -1 && sc_link_next_deadline(bob) > 0, "... no fd, and a reconnect deadline");
  {
    static char listen[40];
    const char *again[] = {"--register-rate", "600", "--register-burst", "100", "--listen", listen, NULL};
    char port[16];
    snprintf(port, sizeof port, "%s", p.port);
    snprintf(listen, sizeof listen, "127.0.0.1:%s", port);
    rc = srv_start(&p, again);
    CHECK(rc == 0 && strcmp(p.port, port) == 0, "the server restarts on the same port");
  }
  {
    int64_t end = sc_monotonic_ms() + 20000;
    int ups = sb.link_up;
    while (sb.link_up == ups && sc_monotonic_ms() < end) (void)turn(bob, 500);
    CHECK(sc_connected(bob) && sb.link_up > ups, "... and the link comes back by itself (LINK_UP)");
  }
  CHECK(sc_send_text(NULL, alice, "bob", "after", 5, 0) == 0 && until_messages(bob, &sb, 9, 10000) == 0 &&
            !strcmp(sb.texts[8], "after"),
        "... and carries messages again");

  /* Without auto-reconnect a lost link is the step's error. */
  (void)sc_set_option(bob, SC_OPT_AUTO_RECONNECT, 0);
  srv_kill(&p);
  {
    int64_t end = sc_monotonic_ms() + 10000;
    rc = 0;
    while (rc >= 0 && sc_monotonic_ms() < end) rc = turn(bob, 500);
    CHECK(rc < 0 && !sc_connected(bob) && sc_errdetail(bob)[0], "without auto-reconnect the step fails, with a sentence");
    printf("     (%s: %s)\n", sc_error_name(rc), sc_errdetail(bob));
  }
  sc_client_free(alice);
  sc_client_free(bob);
  srv_rmdir(&p);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
  if (system(cmd) != 0) printf("(could not remove %s)\n", base);
  printf("%d checks, %d failed\n", checks, fails);
  return fails ? 1 : 0;
}
