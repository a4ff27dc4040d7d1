/* SPDX-License-Identifier: Apache-2.0 */
/* multidevice_test.c: per-device sessions and fan-out of the client core
 * against the real server (ctest client_multidevice; docs/multi-device.md).
 *
 * Linking (`sotto link`, `sotto devices add`, the provisioning message) is
 * another branch's work; until it is merged, this test makes a second
 * device with what the server offers: device 1 asks ADD_DEVICE for a new
 * device row and secret, the new home keeps its own identity key and
 * publishes it with DEVICE_IDENTITY (so its bundle carries it), the
 * account key is written where provisioning puts it, and device 1
 * signs the next device list with the new device's key and membership
 * signature (DEVLIST_PUT). Everything after that is
 * the core's own code: sessions per (user, device), SEND_MULTI to the
 * verified list, the retry after ERR(30), sent transcripts, refusal of an
 * unlisted device, the hidden device noticing.
 *
 *  - alice on 2 devices, bob on 3: a 1:1 text reaches all of bob's devices,
 *    and alice's laptop shows it as sent by her (a transcript);
 *  - the laptop's text reaches all of bob's devices, from device 2, and
 *    shows on alice's primary as sent by her;
 *  - an offline device catches up when it connects;
 *  - bob removes device 3: alice sees the change and her next texts reach
 *    only devices 1 and 2;
 *  - bob adds device 5 while alice's connection still trusts the older list:
 *    her SEND_MULTI meets ERR(30), she fetches the list and sends again;
 *  - the same with a file: the blob, created for the devices of the older
 *    list, is told the new fan-out's count before the pointer leaves, and
 *    the device added last gets the file;
 *  - a device row the server has but the list does not name (a ghost) that
 *    writes to alice is refused (device_refused);
 *  - a listed device whose bundle key is not its listed key: nothing is sent
 *    (device_key);
 *  - alice's primary leaves device 2 out of its list: the laptop says so. */
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sotto/devlist.h>
#include <sotto/keys.h>

#include "account.h"
#include "core.h"
#include "devices.h"
#include "net.h"
#include "store.h"
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

#define MAXE 64
struct seen {
  int messages, sent, refused, hidden, list_changes;
  char texts[MAXE][64];
  char from[MAXE][SC_USER_MAX + 1];
  uint32_t dev[MAXE];
  char sent_texts[MAXE][64];
  char sent_to[MAXE][SC_USER_MAX + 1];
  uint32_t refused_dev;
  char last_list[512];
};

static void sink(void *ud, const struct sc_event *ev) {
  struct seen *s = ud;
  if (ev->kind == SC_EV_MESSAGE && s->messages < MAXE) {
    snprintf(s->texts[s->messages], sizeof s->texts[0], "%.*s", (int)ev->text_len, ev->text);
    snprintf(s->from[s->messages], sizeof s->from[0], "%s", ev->peer);
    s->dev[s->messages] = ev->device;
    s->messages++;
  }
  if (ev->kind == SC_EV_SENT && s->sent < MAXE) {
    snprintf(s->sent_texts[s->sent], sizeof s->sent_texts[0], "%.*s", (int)ev->text_len, ev->text);
    snprintf(s->sent_to[s->sent], sizeof s->sent_to[0], "%s", ev->peer);
    s->sent++;
  }
  if (ev->kind == SC_EV_DEVICE_REFUSED) {
    s->refused++;
    s->refused_dev = ev->device;
  }
  if (ev->kind == SC_EV_DEVICE_LIST && ev->error == SC_ERR_DEVICE_HIDDEN) s->hidden++;
  if (ev->kind == SC_EV_DEVICE_LIST && !ev->error && ev->peer[0]) {
    s->list_changes++;
    snprintf(s->last_list, sizeof s->last_list, "%s", ev->detail);
  }
}

static void die(const char *what, struct sc_client *c) {
  printf("FAIL %s: %s\n", what, c ? sc_errdetail(c) : "?");
  exit(1);
}

static struct sc_client *user(const char *base, const char *name, const char *server, const char *pin,
                              struct seen *s) {
  struct sc_client *c;
  char home[512];
  snprintf(home, sizeof home, "%s/%s", base, name);
  if (sc_client_new(&c, home) || sc_init(c, NULL, "core test passphrase", 20) ||
      sc_register(NULL, NULL, c, server, name, pin, NULL))
    die("setting up a user", c);
  sc_set_sink(c, sink, s);
  return c;
}

/* The identity of every device made here, for the lists device 1 signs
 * (the test holds what, in real use, each device signs itself). */
static struct {
  char user[SC_USER_MAX + 1];
  uint32_t dev;
  struct sotto_identity id;
} g_keys[16];
static size_t g_nkeys;

static const struct sotto_identity *key_of(const char *user, uint32_t dev) {
  size_t i;
  for (i = 0; i < g_nkeys; i++)
    if (!strcmp(g_keys[i].user, user) && g_keys[i].dev == dev) return &g_keys[i].id;
  return NULL;
}

/* A new device of primary's account: a device row and secret from the
 * server (ADD_DEVICE), a home with its own identity key (made by sc_init),
 * published with DEVICE_IDENTITY, and the account key recorded
 * (devices_linked_save), as provisioning does. */
static struct sc_client *new_device(const char *base, const char *home_name, struct sc_client *primary,
                                    uint32_t *dev, struct seen *s) {
  struct sc_client *d;
  uint8_t secret[SOTTO_SRV_SECRET_LEN];
  char home[512];
  int rc;
  snprintf(home, sizeof home, "%s/%s", base, home_name);
  if (sc_connect(primary, 0)) die("connecting the primary", primary);
  if ((rc = sotto_net_add_device(primary->k.net, dev, secret)) != 0) {
    printf("FAIL ADD_DEVICE: %d\n", rc);
    exit(1);
  }
  sc_disconnect(primary);
  if (sc_client_new(&d, home) || sc_init(d, NULL, "core test passphrase", 20)) die("a device's home", d);
  if (sc__begin(d)) die("a device's store", d);
  memcpy(d->acct->username, primary->acct->username, sizeof d->acct->username);
  memcpy(d->acct->server, primary->acct->server, sizeof d->acct->server);
  memcpy(d->acct->pin, primary->acct->pin, sizeof d->acct->pin);
  memcpy(d->acct->ca, primary->acct->ca, sizeof d->acct->ca);
  d->acct->device_id = *dev;
  memcpy(d->acct->secret, secret, sizeof secret);
  if (account_save(d->st, d->acct) || devices_linked_save(d, primary->acct->id.pub, home_name) ||
      store_commit(d->st))
    die("saving a device's account", d);
  sodium_memzero(secret, sizeof secret);
  sc_set_sink(d, sink, s);
  /* its first connection uploads its pre-keys; then its own identity key */
  if (sc_connect(d, 0)) die("a device's first connection", d);
  {
    uint8_t blob[37];
    uint32_t rid = d->acct->id.registration_id;
    sotto_pubkey_serialize(blob, d->acct->id.pub);
    blob[33] = (uint8_t)(rid >> 24);
    blob[34] = (uint8_t)(rid >> 16);
    blob[35] = (uint8_t)(rid >> 8);
    blob[36] = (uint8_t)rid;
    if ((rc = sotto_net_device_identity(d->k.net, blob, sizeof blob)) != 0) {
      printf("FAIL DEVICE_IDENTITY: %d\n", rc);
      exit(1);
    }
  }
  sc_disconnect(d);
  snprintf(g_keys[g_nkeys].user, sizeof g_keys[0].user, "%s", primary->acct->username);
  g_keys[g_nkeys].dev = *dev;
  memcpy(&g_keys[g_nkeys].id, &d->acct->id, sizeof d->acct->id);
  g_nkeys++;
  return d;
}

/* Device 1 signs and publishes the next list: devices ids[0..n) under
 * their own keys, except `odd` (if not 0), listed under a key its bundle
 * does not carry. */
static int publish(struct sc_client *p, const uint32_t *ids, unsigned n, uint32_t odd) {
  struct sotto_devlist *l = calloc(1, sizeof *l), *cur = calloc(1, sizeof *cur);
  uint8_t *buf = malloc(SOTTO_SRV_MAX_DEVLIST), opriv[SOTTO_PRIVKEY_LEN];
  size_t len = 0;
  unsigned i;
  int rc;
  if (sc_connect(p, 0)) die("connecting to publish", p);
  rc = sotto_net_devlist_get(p->k.net, p->acct->username, buf, SOTTO_SRV_MAX_DEVLIST, &len);
  if (rc || sotto_devlist_parse(cur, buf, len)) die("reading the current list", p);
  snprintf(l->username, sizeof l->username, "%s", p->acct->username);
  memcpy(l->account_key, p->acct->id.pub, 32);
  l->version = cur->version + 1;
  l->n = n;
  for (i = 0; i < n; i++) {
    const struct sotto_identity *k = ids[i] == 1 ? &p->acct->id : key_of(p->acct->username, ids[i]);
    const uint8_t *priv;
    if (!k) die("no key for a listed device", p);
    priv = k->priv;
    l->dev[i].device_id = ids[i];
    memcpy(l->dev[i].device_key, k->pub, 32);
    if (ids[i] == odd) {
      if (sotto_keypair_generate(l->dev[i].device_key, opriv)) die("a key pair", p);
      priv = opriv;
    }
    snprintf(l->dev[i].name, sizeof l->dev[i].name, ids[i] == 1 ? "primary" : "device%u", ids[i]);
    l->dev[i].added_at_ms = (uint64_t)sc_now_ms();
    if (sotto_devlist_member_sign(l->dev[i].member_sig, priv, l->username, l->account_key, ids[i]))
      die("a membership signature", p);
  }
  if (sotto_devlist_sign(l, p->acct->id.priv, buf, SOTTO_SRV_MAX_DEVLIST, &len)) die("signing the list", p);
  rc = sotto_net_devlist_put(p->k.net, buf, len);
  if (rc) printf("     (DEVLIST_PUT: %d)\n", rc);
  sc_disconnect(p);
  free(l);
  free(cur);
  free(buf);
  sodium_memzero(opriv, sizeof opriv);
  return rc;
}

/* Connects, receives until the queue is drained, disconnects. */
static int drain(struct sc_client *c) {
  int64_t end;
  int rc;
  if (sc_connect(c, 0)) return -1;
  end = sc_monotonic_ms() + 10000;
  while (!sc_link_drained(c) && sc_monotonic_ms() < end)
    if (sc_link_step(c, 200) < 0) break;
  rc = sc_link_drained(c) ? 0 : -1;
  sc_disconnect(c);
  return rc;
}

static int write_file(const char *path, const uint8_t *p, size_t n) {
  FILE *f = fopen(path, "wb");
  int ok = f && fwrite(p, 1, n, f) == n;
  if (f && fclose(f) != 0) ok = 0;
  return ok ? 0 : -1;
}

/* base/home/downloads/late.bin holds the n bytes of p. */
static int downloaded(const char *base, const char *home, const uint8_t *p, size_t n) {
  char path[600];
  uint8_t *buf = malloc(n + 1);
  FILE *f;
  size_t got = 0;
  snprintf(path, sizeof path, "%s/%s/downloads/late.bin", base, home);
  if (buf && (f = fopen(path, "rb")) != NULL) {
    got = fread(buf, 1, n + 1, f);
    fclose(f);
  }
  got = got == n && memcmp(buf, p, n) == 0;
  free(buf);
  return (int)got;
}

static int has_text(const struct seen *s, const char *text, const char *from, uint32_t dev) {
  int i;
  for (i = 0; i < s->messages; i++)
    if (!strcmp(s->texts[i], text) && !strcmp(s->from[i], from) && (!dev || s->dev[i] == dev)) return 1;
  return 0;
}

static int has_sent(const struct seen *s, const char *text, const char *to) {
  int i;
  for (i = 0; i < s->sent; i++)
    if (!strcmp(s->sent_texts[i], text) && !strcmp(s->sent_to[i], to)) return 1;
  return 0;
}

int main(void) {
  static const char *const extra[] = {"--register-rate", "600", "--register-burst", "100", "--max-devices", "8",
                                      "--device-change-burst", "100", NULL};
  char base[] = "/tmp/sotto-md-test.XXXXXX", server[64], cmd[128];
  struct srv_proc p;
  static struct seen sa1, sa2, sb1, sb2, sb3, sb4, sb5, sb6, sb7;
  struct sc_client *a1, *a2, *b1, *b2, *b3, *b4, *b5, *b6, *b7;
  uint32_t da2, db2, db3, db4, db5, db6, db7;
  static uint8_t late[150000];
  char path[600];
  unsigned long mism, gets, lists;
  int rc;

  setenv("SOTTO_TEST_KDF", "fast", 1);
  signal(SIGPIPE, SIG_IGN);
  memset(&p, 0, sizeof p);
  if (!mkdtemp(base) || srv_mkdir(&p, "md") || srv_start(&p, extra)) {
    printf("FAIL cannot start the server\n");
    return 1;
  }
  snprintf(server, sizeof server, "127.0.0.1:%s", p.port);
  a1 = user(base, "alice", server, p.fp, &sa1);
  b1 = user(base, "bob", server, p.fp, &sb1);
  /* their first connections publish version 1 (device 1 alone) */
  CHECK(drain(a1) == 0 && drain(b1) == 0, "alice and bob connect (each publishes its list, version 1)");
  a2 = new_device(base, "alice-laptop", a1, &da2, &sa2);
  b2 = new_device(base, "bob-laptop", b1, &db2, &sb2);
  b3 = new_device(base, "bob-phone", b1, &db3, &sb3);
  CHECK(da2 == 2 && db2 == 2 && db3 == 3, "device rows: alice 2, bob 2 and 3");
  {
    uint32_t a[] = {1, 2}, b[] = {1, 2, 3};
    CHECK(publish(a1, a, 2, 0) == 0 && publish(b1, b, 3, 0) == 0, "alice signs {1,2}, bob signs {1,2,3}");
  }
  CHECK(drain(a1) == 0 && drain(a2) == 0, "alice's devices record their list");

  /* 1. a 1:1 text to every device of bob, and alice's laptop sees it as sent */
  rc = sc_send_text(NULL, a1, "bob", "hello all", 9, 0);
  CHECK(rc == 0, "alice sends one text to bob (one SEND_MULTI)");
  if (rc) printf("     %s\n", sc_errdetail(a1));
  CHECK(sa1.list_changes == 1 && strstr(sa1.last_list, "added device 2 'device2'") &&
            strstr(sa1.last_list, "added device 3 'device3'"),
        "... alice is shown bob's devices (added device 2, added device 3)");
  drain(b1);
  drain(b2);
  CHECK(has_text(&sb1, "hello all", "alice", 1), "bob's device 1 gets it");
  CHECK(has_text(&sb2, "hello all", "alice", 1), "bob's device 2 gets it");
  drain(a2);
  CHECK(has_sent(&sa2, "hello all", "bob"), "alice's laptop shows it as sent by her to bob (a transcript)");
  CHECK(sa2.messages == 0, "... not as a message from someone");

  /* 2. the laptop writes: bob's devices get it from device 2, alice's primary shows it as sent */
  rc = sc_send_text(NULL, a2, "bob", "from the laptop", 15, 0);
  CHECK(rc == 0, "alice's laptop sends a text to bob");
  if (rc) printf("     %s\n", sc_errdetail(a2));
  drain(b1);
  drain(b2);
  CHECK(has_text(&sb1, "from the laptop", "alice", 2) && has_text(&sb2, "from the laptop", "alice", 2),
        "bob's devices 1 and 2 get it, from alice's device 2");
  drain(a1);
  CHECK(has_sent(&sa1, "from the laptop", "bob"), "alice's primary shows the laptop's text as sent by her");

  {
    struct sc_safety s1, s2;
    CHECK(sc_safety_number(&s1, a1, "bob") == 0 && sc_safety_number(&s2, a2, "bob") == 0 &&
              !strcmp(s1.number, s2.number),
          "the safety number with bob is the same on alice's laptop (it covers the account key, not the device key)");
  }

  /* 2b. groups: the group update and the sender key reach every device of
   * bob (pairwise fan-out), the group text too (one SEND_MULTI) */
  {
    const char *members[] = {"bob"};
    rc = sc_group_create(NULL, a1, "team", members, 1, 0);
    CHECK(rc == 0, "alice creates the group team with bob");
    rc = sc_group_send(NULL, a1, "team", "to the team", 11, 0);
    CHECK(rc == 0, "alice writes to the group");
    if (rc) printf("     %s\n", sc_errdetail(a1));
    drain(b1);
    drain(b2);
    CHECK(has_text(&sb1, "to the team", "alice", 0) && has_text(&sb2, "to the team", "alice", 0),
          "bob's devices 1 and 2 both read the group text");
  }

  /* 3. the offline device catches up */
  drain(b3);
  CHECK(has_text(&sb3, "hello all", "alice", 1) && has_text(&sb3, "from the laptop", "alice", 2),
        "bob's device 3, offline until now, catches up with both");
  CHECK(has_text(&sb3, "to the team", "alice", 0), "... and the group text");

  /* 4. bob removes device 3 */
  CHECK(sc_device_remove(b1, db3) == 0, "bob removes device 3");
  {
    uint32_t b[] = {1, 2};
    CHECK(publish(b1, b, 2, 0) == 0, "... and signs {1,2}");
  }
  mism = a1->fan_mismatches;
  rc = sc_send_text(NULL, a1, "bob", "after removal", 13, 0);
  CHECK(rc == 0 && strstr(sa1.last_list, "removed device 3 'device3'"),
        "alice's next text goes out, and she is shown 'removed device 3'");
  CHECK(a1->fan_mismatches == mism,
        "... on a new connection the list is fetched afresh (no ERR(30), even within 30 s of the last check)");
  {
    uint8_t *v = NULL;
    size_t vl = 0;
    int had = store_get(a1->st, "dsession/bob/3", &v, &vl);
    if (had == 1) store_free_value(v, vl);
    CHECK(had == 0 && store_get(a1->st, "dsession/bob/2", &v, &vl) == 1, "... her session with bob's device 3 is closed, device 2's stays");
    if (v) store_free_value(v, vl);
  }
  drain(b1);
  drain(b2);
  CHECK(has_text(&sb1, "after removal", "alice", 1) && has_text(&sb2, "after removal", "alice", 1),
        "... devices 1 and 2 get it");
  CHECK(sc_connect(b3, 0) != 0 && !has_text(&sb3, "after removal", "alice", 0), "... the removed device gets nothing");

  /* 5. a stale list meets ERR(30) and is retried once */
  CHECK(sc_connect(a1, 0) == 0 && sc_send_text(NULL, a1, "bob", "warm", 4, 0) == 0,
        "alice stays connected and sends (bob's list is now fresh for 30 s on this link)");
  b4 = new_device(base, "bob-tablet", b1, &db4, &sb4); /* never listed, see 6. */
  b5 = new_device(base, "bob-desk", b1, &db5, &sb5);
  printf("     (new device rows: %u, %u)\n", db4, db5);
  {
    uint32_t b[] = {1, 2, db5};
    CHECK(db4 != db5 && db4 > 2 && db5 > 2 && publish(b1, b, 3, 0) == 0, "bob adds a device and signs {1,2,it}");
  }
  mism = a1->fan_mismatches;
  gets = a1->devlist_gets;
  lists = a1->fan_lists;
  rc = sc_send_text(NULL, a1, "bob", "to five", 7, 0);
  CHECK(rc == 0 && a1->fan_mismatches == mism + 1,
        "alice's send with the stale list {1,2} meets ERR(30) once and goes out");
  if (rc) printf("     %s\n", sc_errdetail(a1));
  CHECK(a1->fan_lists == lists + 1 && a1->devlist_gets == gets,
        "... the ERR(30) carried bob's signed list: no DEVLIST_GET, one extra round trip (the resend)");
  printf("     (DEVLIST_GETs during the send: %lu, lists in ERR(30): %lu)\n", a1->devlist_gets - gets,
         a1->fan_lists - lists);
  {
    struct sotto_devlist *l = calloc(1, sizeof *l);
    CHECK(l && devices_list_of(a1, "bob", l) == 1 && l->n == 3 && sotto_devlist_find(l, db5) >= 0,
          "... and alice's recorded list of bob is the new one {1,2,it}");
    free(l);
  }
  {
    uint32_t b[] = {1, 2};
    CHECK(publish(b1, b, 2, 0) == 0, "bob signs {1,2} (the new device left out)");
  }
  mism = a1->fan_mismatches;
  gets = a1->devlist_gets;
  lists = a1->fan_lists;
  rc = sc_group_send(NULL, a1, "team", "stale team", 10, 0);
  CHECK(rc == 0 && a1->fan_mismatches == mism + 1 && a1->fan_lists == lists + 1 && a1->devlist_gets == gets,
        "alice's group text to the stale set meets ERR(30) carrying bob's list and goes out, no DEVLIST_GET");
  if (rc) printf("     %s\n", sc_errdetail(a1));
  {
    uint32_t b[] = {1, 2, db5};
    CHECK(publish(b1, b, 3, 0) == 0, "bob signs {1,2,it} again");
  }
  sc_disconnect(a1);
  drain(b5);
  drain(b1);
  CHECK(has_text(&sb5, "to five", "alice", 1) && has_text(&sb1, "to five", "alice", 1),
        "... the new device and device 1 get it");
  CHECK(has_text(&sb1, "stale team", "alice", 0) && !has_text(&sb5, "stale team", "alice", 0),
        "... the group text reached device 1, not the device its list had left out");

  /* 5b. a file while bob adds a device: alice's records say {1,2,db5}, so
   * the blob is created for three fetches and one for her laptop (the
   * transcript); her SEND_MULTI meets ERR(30), the list fetched again has a
   * fourth device, and the blob is told five fetches before the pointer
   * leaves: the device added last, fetching last, still gets the file. */
  randombytes_buf(late, sizeof late);
  snprintf(path, sizeof path, "%s/late.bin", base);
  CHECK(write_file(path, late, sizeof late) == 0, "a file to send");
  CHECK(sc_connect(a1, 0) == 0 && sc_send_text(NULL, a1, "bob", "warm again", 10, 0) == 0,
        "alice connects and sends (bob's list fresh on this link)");
  b7 = new_device(base, "bob-late", b1, &db7, &sb7);
  {
    uint32_t b[] = {1, 2, db5, db7};
    CHECK(db7 > db5 && publish(b1, b, 4, 0) == 0, "bob adds another device and signs {1,2,db5,it}");
  }
  mism = a1->fan_mismatches;
  rc = sc_send_file(NULL, a1, "bob", path, "late.bin", NULL, NULL, 0, 0);
  CHECK(rc == 0 && a1->fan_mismatches == mism + 1,
        "alice's file meets ERR(30) once with the stale list, and goes out to the new list");
  if (rc) printf("     %s\n", sc_errdetail(a1));
  sc_disconnect(a1);
  CHECK(drain(b1) == 0 && drain(b2) == 0 && drain(b5) == 0 && drain(a2) == 0,
        "bob's three older devices and alice's laptop receive");
  CHECK(downloaded(base, "bob", late, sizeof late) && downloaded(base, "bob-laptop", late, sizeof late) &&
            downloaded(base, "bob-desk", late, sizeof late) && downloaded(base, "alice-laptop", late, sizeof late),
        "... and each saves the file (same bytes)");
  CHECK(drain(b7) == 0 && downloaded(base, "bob-late", late, sizeof late),
        "the device added after the upload, fetching last, saves it too (the blob waited for five fetches)");

  /* 6. a ghost: device 4 has a row but is in no list; it writes to alice */
  rc = sc_send_text(NULL, b4, "alice", "ghost text", 10, SC_SEND_ACCEPT_KEY_CHANGE);
  drain(a1);
  CHECK(sa1.refused >= 1 && sa1.refused_dev == db4, "a message from bob's unlisted device is refused (device_refused)");
  CHECK(!has_text(&sa1, "ghost text", "bob", 0), "... and not shown");

  /* 7. a listed device whose bundle key is not the listed one */
  b6 = new_device(base, "bob-odd", b1, &db6, &sb6);
  {
    uint32_t b[] = {1, 2, db5, db6};
    CHECK(db6 > db5 && publish(b1, b, 4, db6) == 0, "bob's list names a device under a key its bundle does not carry");
  }
  rc = sc_send_text(NULL, a1, "bob", "never", 5, 0);
  CHECK(rc == SC_ERR_DEVICE_KEY, "alice's send is refused with device_key");
  drain(b1);
  CHECK(!has_text(&sb1, "never", "alice", 0), "... and nothing was sent to any device");

  /* 8. the hidden device notices */
  {
    uint32_t a[] = {1};
    CHECK(publish(a1, a, 1, 0) == 0, "alice's list leaves her laptop out");
  }
  drain(a2);
  CHECK(sa2.hidden >= 1, "the laptop says it is not in its account's current list");

  sc_client_free(a1);
  sc_client_free(a2);
  sc_client_free(b1);
  sc_client_free(b2);
  sc_client_free(b3);
  sc_client_free(b4);
  sc_client_free(b5);
  sc_client_free(b6);
  sc_client_free(b7);
  srv_stop(&p);
  srv_rmdir(&p);
  snprintf(cmd, sizeof cmd, "rm -rf %s", base);
  if (system(cmd)) {
  }
  printf("%d checks, %d failed\n", checks, fails);
  return fails ? 1 : 0;
}
