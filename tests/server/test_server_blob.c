/* SPDX-License-Identifier: Apache-2.0 */
/* test_server_blob.c: the blob store of sotto-server (attachments) through
 * the real binary over loopback TLS: upload in chunks, resume (STAT), the
 * order rules (appends only, the uploader only, nothing after COMMIT),
 * quota (count and bytes), the size cap, deletion after the declared
 * fetches (each device counted once; BLOB_FETCHES by the uploader only),
 * expiry, requests before AUTH, malformed requests, the
 * requisition report (sizes and times only) and a scan of the data
 * directory. Runs on SQLite, and on PostgreSQL under with_pg.sh. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "srvtest.h"
#include "testutil.h"

struct account {
  const char *name;
  uint32_t dev;
  uint8_t secret[32];
};

static int do_register(struct srv_proc *p, struct sotto_net_ctx **ctx, struct account *a) {
  struct sotto_net *c = srv_connect(p, ctx, 1);
  uint8_t ik[33];
  int rc;
  if (!c) return -1;
  memset(ik, 0x05, sizeof ik);
  ik[1] = (uint8_t)a->name[0];
  rc = sotto_net_register(c, a->name, ik, sizeof ik, &a->dev, a->secret);
  sotto_net_close(c);
  return rc;
}

static struct sotto_net *login(struct srv_proc *p, struct sotto_net_ctx **ctx, struct account *a) {
  struct sotto_net *c = srv_connect(p, ctx, 1);
  if (c && sotto_net_auth(c, a->name, a->dev, a->secret, NULL, NULL) != 0) {
    sotto_net_close(c);
    return NULL;
  }
  return c;
}

static int create(struct sotto_net *c, uint64_t size, uint16_t fetches, uint8_t id[16]) {
  struct sotto_srv_blob_req m;
  struct sotto_net_event ans;
  uint64_t exp = 0;
  int rc;
  memset(&m, 0, sizeof m);
  m.size = size;
  m.fetches = fetches;
  rc = sotto_net_blob(c, SOTTO_SRV_BLOB_CREATE, &m, &ans);
  if (rc == 0) rc = sotto__srv_parse_blob_created(ans.payload, ans.payload_len, id, &exp);
  sotto_net_event_clear(&ans);
  return rc;
}

/* A PUT and its answer (stored bytes). */
static int put(struct sotto_net *c, const uint8_t id[16], uint64_t off, const uint8_t *p, size_t n, uint64_t *stored) {
  struct sotto_srv_blob_req m;
  struct sotto_net_event ev;
  uint32_t rid = 0;
  int rc;
  memset(&m, 0, sizeof m);
  m.id = id;
  m.offset = off;
  m.data = p;
  m.data_len = n;
  if ((rc = sotto_net_blob_async(c, SOTTO_SRV_BLOB_PUT, &m, &rid)) != 0) return rc;
  for (;;) {
    rc = sotto_net_next_event(c, 5000, &ev);
    if (rc != 1) return rc == 0 ? SOTTO_NET_E_TIMEOUT : rc;
    if (ev.kind == SOTTO_NET_EV_ANSWER && ev.req_id == rid) break;
    if (ev.kind == SOTTO_NET_EV_CLOSE) {
      rc = ev.code;
      sotto_net_event_clear(&ev);
      return rc ? rc : SOTTO_NET_E_IO;
    }
    sotto_net_event_clear(&ev);
  }
  rc = ev.code ? ev.code : sotto__srv_parse_blob_stored(ev.payload, ev.payload_len, stored);
  sotto_net_event_clear(&ev);
  return rc;
}

static int simple(struct sotto_net *c, uint8_t type, const uint8_t id[16]) {
  struct sotto_srv_blob_req m;
  struct sotto_net_event ans;
  int rc;
  memset(&m, 0, sizeof m);
  m.id = id;
  rc = sotto_net_blob(c, type, &m, &ans);
  sotto_net_event_clear(&ans);
  return rc;
}

static int stat_of(struct sotto_net *c, const uint8_t id[16], struct sotto_srv_blob_stat *st) {
  struct sotto_srv_blob_req m;
  struct sotto_net_event ans;
  int rc;
  memset(&m, 0, sizeof m);
  m.id = id;
  rc = sotto_net_blob(c, SOTTO_SRV_BLOB_STAT, &m, &ans);
  if (rc == 0) rc = sotto__srv_parse_blob_stat(ans.payload, ans.payload_len, st);
  sotto_net_event_clear(&ans);
  return rc;
}

static int get(struct sotto_net *c, const uint8_t id[16], uint64_t off, uint32_t max, uint8_t *out, size_t *n) {
  struct sotto_srv_blob_req m;
  struct sotto_net_event ans;
  int rc;
  memset(&m, 0, sizeof m);
  m.id = id;
  m.offset = off;
  m.max = max;
  rc = sotto_net_blob(c, SOTTO_SRV_BLOB_GET, &m, &ans);
  if (rc == 0) {
    *n = ans.payload_len;
    if (ans.payload_len) memcpy(out, ans.payload, ans.payload_len);
  }
  sotto_net_event_clear(&ans);
  return rc;
}

/* sotto_blob_io_thread_total: blob requests done outside the batch. */
static unsigned long long blob_io_count(struct srv_proc *p) {
  char *m = srv_metrics(p), *v = m ? strstr(m, "\nsotto_blob_io_thread_total ") : NULL;
  unsigned long long n = v ? strtoull(v + 28, NULL, 10) : 0;
  free(m);
  return n;
}

static int blob_files(const struct srv_proc *p) {
  char cmd[512];
  FILE *f;
  int n = -1;
  snprintf(cmd, sizeof cmd, "ls '%s/blobs' | wc -l", p->dir);
  if ((f = popen(cmd, "r")) != NULL) {
    if (fscanf(f, "%d", &n) != 1) n = -1;
    pclose(f);
  }
  return n;
}

/* The blob files once the deletions answered so far are done: the server
 * removes a deleted blob's file after the batch's answers (srv_blob.c,
 * blob_gone), so right after an answer the file may still be there for a
 * moment. Waits (at most 5 s) for want; the count then. */
static int files_settle(const struct srv_proc *p, int want) {
  int i, n = blob_files(p);
  for (i = 0; i < 250 && n != want; i++) {
    usleep(20 * 1000);
    n = blob_files(p);
  }
  return n;
}

static void test_blobs(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct sotto_net *a = NULL, *b = NULL, *x;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}};
  struct sotto_srv_blob_stat st;
  uint8_t id[16], id2[16], bogus[16], data[1000], got[1000], marker[600];
  uint64_t stored = 0;
  unsigned long long io0;
  size_t n = 0;
  int i;
  const char *const extra[] = {"--blob-quota-count", "3", "--blob-quota-bytes", "400000", "--blob-max-size", "500000",
                               "--blob-expiry-seconds", "20", "--expire-interval", "1", NULL};

  if (srv_mkdir(&p, "blob") != 0 || srv_start(&p, extra) != 0) {
    CHECK(!"server started");
    return;
  }
  CHECK_RC(do_register(&p, &ctx, &alice), 0);
  CHECK_RC(do_register(&p, &ctx, &bob), 0);
  a = login(&p, &ctx, &alice);
  b = login(&p, &ctx, &bob);
  CHECK(a && b);
  if (!a || !b) goto out;
  randombytes_buf(data, sizeof data);
  randombytes_buf(bogus, sizeof bogus);
  /* A known pattern among the bytes: the scan at the end finds it only in the blob file. */
  memset(marker, 'M', sizeof marker);
  memcpy(data, "BLOBMARK-", 9);

  /* Before AUTH: refused. */
  if ((x = srv_connect(&p, &ctx, 1)) != NULL) {
    CHECK_RC(create(x, 100, 1, id), SOTTO_SRV_E_NOT_AUTHED);
    sotto_net_close(x);
  }
  /* No such blob. */
  CHECK_RC(put(a, bogus, 0, data, 10, &stored), SOTTO_SRV_E_BLOB_GONE);
  CHECK_RC(simple(a, SOTTO_SRV_BLOB_COMMIT, bogus), SOTTO_SRV_E_BLOB_GONE);
  CHECK_RC(get(a, bogus, 0, 100, got, &n), SOTTO_SRV_E_BLOB_GONE);
  CHECK_RC(stat_of(a, bogus, &st), SOTTO_SRV_E_BLOB_GONE);
  /* Larger than the server takes. */
  CHECK_RC(create(a, 500001, 1, id), SOTTO_SRV_E_BLOB_TOO_LARGE);

  CHECK_RC(create(a, sizeof data, 1, id), 0);
  CHECK_RC(stat_of(a, id, &st), 0);
  CHECK(st.size == sizeof data && st.stored == 0 && !st.committed);
  /* A hole, another account, past the declared size: refused. */
  CHECK_RC(put(a, id, 10, data, 10, &stored), SOTTO_SRV_E_STATE);
  CHECK_RC(put(b, id, 0, data, 10, &stored), SOTTO_SRV_E_BLOB_GONE);
  CHECK_RC(put(a, id, 0, data, sizeof data, &stored), 0);
  CHECK(stored == sizeof data);
  CHECK_RC(simple(b, SOTTO_SRV_BLOB_COMMIT, id), SOTTO_SRV_E_BLOB_GONE); /* only the uploader commits */
  CHECK_RC(get(b, id, 0, 100, got, &n), SOTTO_SRV_E_BLOB_INCOMPLETE);    /* nothing fetched before COMMIT */
  CHECK_RC(simple(a, SOTTO_SRV_BLOB_COMMIT, id), 0);
  CHECK_RC(put(a, id, sizeof data, data, 1, &stored), SOTTO_SRV_E_STATE); /* committed: no more writes */
  CHECK_RC(put(a, id, 0, data, 1, &stored), SOTTO_SRV_E_STATE);

  /* A second blob: resume after part of it (STAT), a resent chunk answered with what is stored. */
  CHECK_RC(create(a, 600, 2, id2), 0);
  CHECK_RC(put(a, id2, 0, marker, 300, &stored), 0);
  CHECK(stored == 300);
  CHECK_RC(put(a, id2, 0, marker, 300, &stored), 0);
  CHECK(stored == 300);
  CHECK_RC(stat_of(b, id2, &st), 0);
  CHECK(st.size == 600 && st.stored == 300 && !st.committed);
  CHECK_RC(simple(a, SOTTO_SRV_BLOB_COMMIT, id2), SOTTO_SRV_E_BLOB_INCOMPLETE);
  CHECK_RC(put(a, id2, 300, marker, 300, &stored), 0);
  CHECK(stored == 600);
  CHECK_RC(simple(a, SOTTO_SRV_BLOB_COMMIT, id2), 0);

  /* The PUTs after CREATE went to the blob thread (srv_blob.c): the same
   * answers as through the batch, above. */
  io0 = blob_io_count(&p);
  CHECK(io0 >= 2);
  /* Fetch by the recipient, in pieces (unaligned offsets: the blob thread
   * reads whole blocks with O_DIRECT and answers the range); past the end:
   * nothing. */
  CHECK_RC(get(b, id, 0, 600, got, &n), 0);
  CHECK(n == 600 && memcmp(got, data, 600) == 0);
  CHECK_RC(get(b, id, 600, 600, got + 600, &n), 0);
  CHECK(n == 400 && memcmp(got + 600, data + 600, 400) == 0);
  CHECK_RC(get(b, id, 1000, 600, got, &n), 0);
  CHECK(n == 0);
  CHECK_RC(get(b, id, 333, 500, got, &n), 0);
  CHECK(n == 500 && memcmp(got, data + 333, 500) == 0);
  /* The first GET went through the batch (it checked the row); the next
   * three, of the blob this connection already read, to the blob thread. */
  CHECK(blob_io_count(&p) == io0 + 3);

  /* Quota: count (2 kept + 1 = 3 allowed, a 4th refused), bytes. */
  {
    uint8_t id3[16], id4[16];
    CHECK_RC(create(a, 450000, 1, id3), SOTTO_SRV_E_BLOB_QUOTA); /* 1000 + 600 + 450000 > 400000 */
    CHECK_RC(create(a, 398000, 1, id3), 0);                       /* 1000 + 600 + 398000 <= 400000 */
    CHECK_RC(simple(a, SOTTO_SRV_BLOB_DONE, id3), SOTTO_SRV_E_BLOB_INCOMPLETE);
    CHECK_RC(create(a, 100, 1, id4), SOTTO_SRV_E_BLOB_QUOTA); /* a 4th */
    CHECK_RC(create(b, 100, 1, id4), 0); /* per account */
  }

  /* The requisition report: sizes and times, no bytes, no ids. */
  {
    const char *args[] = {"requisition", "--data", p.dir, "alice", NULL};
    int status = -1;
    char *out = srv_run_capture(args, &status), hex[33];
    CHECK(out && status == 0);
    sodium_bin2hex(hex, sizeof hex, id, sizeof id);
    if (out) {
      CHECK(strstr(out, "\"attachments\": [") && strstr(out, "\"bytes\": 1000") && strstr(out, "\"bytes\": 600,"));
      CHECK(strstr(out, "\"fetches_left\": 2") != NULL);
      CHECK(strstr(out, hex) == NULL && strstr(out, "BLOBMARK") == NULL);
      free(out);
    }
  }
  /* The bytes are in the blob files only (the server stores what it is given). */
  CHECK(srv_dir_contains(p.dir, "BLOBMARK-", 9));
  CHECK(blob_files(&p) == 4); /* alice's three, bob's one */

  /* One fetch declared: after DONE the blob is gone, row and file. */
  CHECK_RC(simple(b, SOTTO_SRV_BLOB_DONE, id), 0);
  CHECK_RC(get(b, id, 0, 100, got, &n), SOTTO_SRV_E_BLOB_GONE);
  CHECK(files_settle(&p, 3) == 3);
  CHECK(!srv_dir_contains(p.dir, "BLOBMARK-", 9));
  /* Two declared: it stays after the first. */
  CHECK_RC(simple(b, SOTTO_SRV_BLOB_DONE, id2), 0);
  CHECK_RC(get(b, id2, 0, 100, got, &n), 0);

  /* Malformed requests close the connection. */
  if ((x = login(&p, &ctx, &bob)) != NULL) {
    CHECK_RC(create(x, 0, 1, id), SOTTO_SRV_E_MALFORMED); /* size 0 */
    sotto_net_close(x);
  }
  if ((x = login(&p, &ctx, &bob)) != NULL) {
    uint8_t raw[28] = {0};
    CHECK_RC(sotto_net_write_frame(x, SOTTO_SRV_BLOB_GET, 7, raw, sizeof raw), 0); /* max 0 */
    {
      struct sotto_net_event ev;
      int rc, k, closed = 0;
      for (k = 0; k < 10 && !closed; k++) { /* DRAINED first, then the CLOSE */
        rc = sotto_net_next_event(x, 5000, &ev);
        if (rc == SOTTO_SRV_E_MALFORMED) closed = 1;
        if (rc != 1) break;
        if (ev.kind == SOTTO_NET_EV_CLOSE) closed = ev.code == SOTTO_SRV_E_MALFORMED ? 1 : -1;
        sotto_net_event_clear(&ev);
      }
      CHECK(closed == 1);
    }
    sotto_net_close(x);
  }

  sotto_net_close(b);
  if ((b = login(&p, &ctx, &bob)) == NULL) {
    CHECK(!"bob logs in again");
    goto out;
  }
  /* Expiry: everything goes after blob-expiry-seconds (the expiry run is
   * every second). 20 s: the blobs made first must outlive the checks
   * above, which a loaded sanitizer build (a requisition run, metrics, some
   * 35 round trips) can take several seconds for. */
  for (i = 0; i < 300 && blob_files(&p) != 0; i++) usleep(100 * 1000);
  CHECK(blob_files(&p) == 0);
  CHECK_RC(get(b, id2, 0, 100, got, &n), SOTTO_SRV_E_BLOB_GONE);
  CHECK_RC(create(a, 100, 1, id), 0); /* the quota is free again */
out:
  if (a) sotto_net_close(a);
  if (b) sotto_net_close(b);
  sotto_net_ctx_free(ctx);
  srv_stop(&p);
  srv_rmdir(&p);
}

/* BLOB_FETCHES: the uploader sets the fetches to wait for (FETCHES only). */
static int set_fetches(struct sotto_net *c, const uint8_t id[16], uint16_t fetches) {
  struct sotto_srv_blob_req m;
  struct sotto_net_event ans;
  int rc;
  memset(&m, 0, sizeof m);
  m.id = id;
  m.fetches = fetches;
  rc = sotto_net_blob(c, SOTTO_SRV_BLOB_FETCHES, &m, &ans);
  sotto_net_event_clear(&ans);
  return rc;
}

/* A committed blob of n bytes from c, for fetches fetches. */
static int upload(struct sotto_net *c, const uint8_t *data, size_t n, uint16_t fetches, uint8_t id[16]) {
  uint64_t stored = 0;
  int rc;
  if ((rc = create(c, n, fetches, id)) != 0 || (rc = put(c, id, 0, data, n, &stored)) != 0) return rc;
  return simple(c, SOTTO_SRV_BLOB_COMMIT, id);
}

/* Reads a frame's answer or the CLOSE that follows a malformed request. */
static int closed_with(struct sotto_net *x, int code) {
  struct sotto_net_event ev;
  int rc, k, closed = 0;
  for (k = 0; k < 10 && !closed; k++) {
    rc = sotto_net_next_event(x, 5000, &ev);
    if (rc == code) closed = 1;
    if (rc != 1) break;
    if (ev.kind == SOTTO_NET_EV_CLOSE) closed = ev.code == code ? 1 : -1;
    sotto_net_event_clear(&ev);
  }
  return closed == 1;
}

/* Fetches counted once per device (account, device id of the connection):
 * a recipient's device saying BLOB_DONE again, as often as it likes, does
 * not delete the blob before the other devices fetched it; the uploader
 * (only) sets the fetches once its fan-out is final (a device linked after
 * BLOB_CREATE), and the devices already counted stay counted. */
static void test_fetch_count(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct sotto_net *a = NULL, *b1 = NULL, *b2 = NULL, *b3 = NULL, *cc = NULL, *x;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}}, bob2 = {"bob", 0, {0}}, bob3 = {"bob", 0, {0}},
                 carol = {"carol", 0, {0}};
  uint8_t id[16], id2[16], id3[16], bogus[16], data[3000], got[3000];
  size_t n = 0;
  int i;

  if (srv_mkdir(&p, "blobcount") != 0 || srv_start(&p, NULL) != 0) {
    CHECK(!"server started");
    return;
  }
  CHECK_RC(do_register(&p, &ctx, &alice), 0);
  CHECK_RC(do_register(&p, &ctx, &bob), 0);
  CHECK_RC(do_register(&p, &ctx, &carol), 0);
  a = login(&p, &ctx, &alice);
  b1 = login(&p, &ctx, &bob);
  cc = login(&p, &ctx, &carol);
  CHECK(a && b1 && cc);
  if (!a || !b1 || !cc) goto out;
  CHECK_RC(sotto_net_add_device(b1, &bob2.dev, bob2.secret), 0);
  b2 = login(&p, &ctx, &bob2);
  CHECK(b2 != NULL);
  if (!b2) goto out;
  randombytes_buf(data, sizeof data);
  randombytes_buf(bogus, sizeof bogus);

  /* Two fetches declared (bob's two devices): his first device says DONE
   * three times; the blob stays for the second. */
  CHECK_RC(upload(a, data, sizeof data, 2, id), 0);
  CHECK_RC(get(b1, id, 0, sizeof got, got, &n), 0);
  for (i = 0; i < 3; i++) CHECK_RC(simple(b1, SOTTO_SRV_BLOB_DONE, id), 0);
  CHECK(blob_files(&p) == 1);
  /* Neither a recipient nor anyone else sets the count: only the uploader. */
  CHECK_RC(set_fetches(b1, id, 1), SOTTO_SRV_E_BLOB_NOT_OWNER);
  CHECK_RC(set_fetches(cc, id, 1), SOTTO_SRV_E_BLOB_NOT_OWNER);
  CHECK_RC(get(b2, id, 0, sizeof got, got, &n), 0);
  CHECK(n == sizeof data && memcmp(got, data, n) == 0);
  CHECK_RC(simple(b2, SOTTO_SRV_BLOB_DONE, id), 0);
  CHECK_RC(get(b2, id, 0, 100, got, &n), SOTTO_SRV_E_BLOB_GONE);
  CHECK(files_settle(&p, 0) == 0);
  CHECK_RC(simple(b1, SOTTO_SRV_BLOB_DONE, id), SOTTO_SRV_E_BLOB_GONE);

  /* Created for bob's two devices; bob links a third before alice sends:
   * alice raises the count to three. Each device's DONE counts once. */
  CHECK_RC(upload(a, data, sizeof data, 2, id2), 0);
  CHECK_RC(sotto_net_add_device(b1, &bob3.dev, bob3.secret), 0);
  b3 = login(&p, &ctx, &bob3);
  CHECK(b3 != NULL);
  if (!b3) goto out;
  CHECK_RC(set_fetches(a, id2, 3), 0);
  CHECK_RC(set_fetches(a, id2, 3), 0); /* the same again (a resent send): nothing changes */
  CHECK_RC(simple(b1, SOTTO_SRV_BLOB_DONE, id2), 0);
  CHECK_RC(simple(b1, SOTTO_SRV_BLOB_DONE, id2), 0);
  CHECK_RC(simple(b2, SOTTO_SRV_BLOB_DONE, id2), 0);
  CHECK(blob_files(&p) == 1);
  CHECK_RC(get(b3, id2, 0, sizeof got, got, &n), 0);
  CHECK(n == sizeof data && memcmp(got, data, n) == 0);
  CHECK_RC(simple(b3, SOTTO_SRV_BLOB_DONE, id2), 0);
  CHECK(files_settle(&p, 0) == 0);
  CHECK_RC(set_fetches(a, id2, 5), SOTTO_SRV_E_BLOB_GONE); /* gone is gone */

  /* A count set after a fetch keeps that fetch; lowered to the devices
   * already counted, the blob goes. Before COMMIT too. */
  CHECK_RC(upload(a, data, sizeof data, 3, id3), 0);
  CHECK_RC(simple(b1, SOTTO_SRV_BLOB_DONE, id3), 0);
  CHECK_RC(set_fetches(a, id3, 2), 0);
  CHECK(blob_files(&p) == 1);
  CHECK_RC(simple(b1, SOTTO_SRV_BLOB_DONE, id3), 0); /* still one device */
  CHECK(blob_files(&p) == 1);
  CHECK_RC(set_fetches(a, id3, 1), 0);
  CHECK(files_settle(&p, 0) == 0);
  CHECK_RC(get(b2, id3, 0, 100, got, &n), SOTTO_SRV_E_BLOB_GONE);
  CHECK_RC(create(a, 100, 1, id3), 0);
  CHECK_RC(set_fetches(a, id3, 1024), 0);
  CHECK_RC(set_fetches(a, bogus, 1), SOTTO_SRV_E_BLOB_GONE);

  /* Malformed: fetches 0 or above 1024, a short id: the connection closes. */
  {
    static const uint16_t bad[] = {0, 1025};
    for (i = 0; i < 2; i++)
      if ((x = login(&p, &ctx, &carol)) != NULL) {
        CHECK_RC(set_fetches(x, id3, bad[i]), SOTTO_SRV_E_MALFORMED);
        sotto_net_close(x);
      }
    if ((x = login(&p, &ctx, &carol)) != NULL) {
      uint8_t raw[17] = {0};
      CHECK_RC(sotto_net_write_frame(x, SOTTO_SRV_BLOB_FETCHES, 9, raw, sizeof raw), 0);
      CHECK(closed_with(x, SOTTO_SRV_E_MALFORMED));
      sotto_net_close(x);
    }
  }
  /* Before AUTH: refused. */
  if ((x = srv_connect(&p, &ctx, 1)) != NULL) {
    CHECK_RC(set_fetches(x, id3, 1), SOTTO_SRV_E_NOT_AUTHED);
    sotto_net_close(x);
  }
out:
  if (a) sotto_net_close(a);
  if (b1) sotto_net_close(b1);
  if (b2) sotto_net_close(b2);
  if (b3) sotto_net_close(b3);
  if (cc) sotto_net_close(cc);
  sotto_net_ctx_free(ctx);
  srv_stop(&p);
  srv_rmdir(&p);
}

/* sotto_blob_put_inplace_total: PUTs whose aligned middle went to O_DIRECT
 * from the request's own buffer (no aligned copy). */
static unsigned long long inplace_count(struct srv_proc *p) {
  char *m = srv_metrics(p), *v = m ? strstr(m, "\nsotto_blob_put_inplace_total ") : NULL;
  unsigned long long n = v ? strtoull(v + 30, NULL, 10) : 0;
  free(m);
  return n;
}

/* 1 if the filesystem of dir takes an O_DIRECT write of an aligned block. */
static int direct_ok(const char *dir) {
  char path[600];
  void *blk = NULL;
  int fd, ok = 0;
  snprintf(path, sizeof path, "%s/direct-probe", dir);
  if (posix_memalign(&blk, 4096, 4096) != 0) return 0;
  memset(blk, 0, 4096);
  if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0600)) >= 0) {
    ok = pwrite(fd, blk, 4096, 0) == 4096;
    close(fd);
  }
  unlink(path);
  free(blk);
  return ok;
}

/* A PUT's op is placed so that its bytes at 4096-aligned offsets of the
 * file sit at 4096-aligned addresses (srv_blob.c sotto__srv_blob_put_shift):
 * the blob thread writes them with O_DIRECT where they are. PUTs at offsets
 * of every kind (aligned, a multiple of 8, odd: the copy path) store
 * exactly the bytes sent, and the placed ones went without the copy. */
static void test_put_inplace(void) {
  static uint8_t data[300000], got[300000];
  static const size_t cuts[] = {0, 20000, 40000, 45001, 65001, 65536 + 16, 3 * (65536 + 16) + 4096,
                                sizeof data};
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct sotto_net *a = NULL;
  struct account alice = {"alice", 0, {0}};
  uint8_t id[16];
  uint64_t stored = 0;
  unsigned long long n0, want = 0;
  size_t n = 0, i;
  int direct;

  if (srv_mkdir(&p, "blobinplace") != 0 || srv_start(&p, NULL) != 0) {
    CHECK(!"server started");
    return;
  }
  direct = direct_ok(p.dir);
  CHECK_RC(do_register(&p, &ctx, &alice), 0);
  a = login(&p, &ctx, &alice);
  CHECK(a != NULL);
  if (!a) goto out;
  randombytes_buf(data, sizeof data);
  CHECK_RC(create(a, sizeof data, 1, id), 0);
  n0 = inplace_count(&p);
  for (i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; i++) {
    size_t off = cuts[i], len = cuts[i + 1] - off;
    uint64_t a0 = (off + 4095) / 4096 * 4096, b0 = (off + len) / 4096 * 4096;
    CHECK_RC(put(a, id, off, data + off, len, &stored), 0);
    CHECK(stored == off + len);
    /* Placed: an offset that is a multiple of 8, more than a block of bytes, an aligned block among them. */
    if (off % 8 == 0 && len > 24 + 4096 && b0 > a0) want++;
  }
  CHECK(want == 4);
  if (direct)
    CHECK(inplace_count(&p) - n0 == want);
  else
    printf("# the filesystem refuses O_DIRECT: the in-place count is not checked\n");
  CHECK_RC(simple(a, SOTTO_SRV_BLOB_COMMIT, id), 0);
  for (i = 0; i < sizeof data; i += n) {
    size_t max = sizeof data - i < 200000 ? sizeof data - i : 200000;
    CHECK_RC(get(a, id, i, (uint32_t)max, got + i, &n), 0);
    if (n == 0) break;
  }
  CHECK(i == sizeof data && memcmp(got, data, sizeof data) == 0);
out:
  if (a) sotto_net_close(a);
  sotto_net_ctx_free(ctx);
  srv_stop(&p);
  srv_rmdir(&p);
}

/* The blob file of id (DATA/blobs/<hex id>). */
static void blob_file(const struct srv_proc *p, const uint8_t id[16], char *out, size_t cap) {
  char hex[33];
  sodium_bin2hex(hex, sizeof hex, id, 16);
  snprintf(out, cap, "%s/blobs/%s", p->dir, hex);
}

/* GETs on the blob thread read ahead (srv_blob.c, BLOB_RA_LEN windows): a
 * blob of several windows fetched as a client does (in order, 3 x 64 KiB +
 * 48 a GET, the last short) and out of order, each range across a window's
 * edge, all the same bytes; a blob cut short or removed after its windows
 * were read answers "gone", not the bytes read before. */
static void test_read_ahead(void) {
  enum { UNIT = 3 * (65536 + 16), SIZE = 2 * 1024 * 1024 + 500 * 1000 + 777 };
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct sotto_net *a = NULL, *b = NULL;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}};
  uint8_t *data = malloc(SIZE), *got = malloc(UNIT), id[16], id2[16];
  uint64_t off, stored = 0;
  unsigned long long io0;
  size_t n = 0;
  char path[1200];
  int bad = 0, gets = 0;
  const char *const extra[] = {"--blob-max-size", "4000000", "--blob-quota-bytes", "9000000", NULL};

  if (!data || !got || srv_mkdir(&p, "blobra") != 0 || srv_start(&p, extra) != 0) {
    CHECK(!"server started");
    free(data);
    free(got);
    return;
  }
  CHECK_RC(do_register(&p, &ctx, &alice), 0);
  CHECK_RC(do_register(&p, &ctx, &bob), 0);
  a = login(&p, &ctx, &alice);
  b = login(&p, &ctx, &bob);
  CHECK(a && b);
  if (!a || !b) goto out;
  randombytes_buf(data, SIZE);
  CHECK_RC(create(a, SIZE, 1, id), 0);
  CHECK_RC(create(a, SIZE, 1, id2), 0);
  for (off = 0; off < SIZE; off += UNIT) {
    size_t len = SIZE - off < UNIT ? (size_t)(SIZE - off) : UNIT;
    if (put(a, id, off, data + off, len, &stored) != 0 || put(a, id2, off, data + off, len, &stored) != 0) bad++;
  }
  CHECK(bad == 0 && stored == SIZE);
  CHECK_RC(simple(a, SOTTO_SRV_BLOB_COMMIT, id), 0);
  CHECK_RC(simple(a, SOTTO_SRV_BLOB_COMMIT, id2), 0);

  /* In order, as a download: the first GET through the batch, the rest on
   * the blob thread. */
  io0 = blob_io_count(&p);
  for (off = 0; off < SIZE; off += UNIT, gets++) {
    size_t len = SIZE - off < UNIT ? (size_t)(SIZE - off) : UNIT;
    if (get(b, id, off, UNIT, got, &n) != 0 || n != len || memcmp(got, data + off, len) != 0) bad++;
  }
  CHECK(bad == 0);
  CHECK(blob_io_count(&p) == io0 + (unsigned long long)gets - 1);
  /* Out of order, across the windows' edges (1 MiB, 2 MiB), back to the start, the end. */
  {
    static const uint64_t offs[] = {1048576 - 1000, 5, 2097152 - 70000, 1048576 - 4096, 3, SIZE - 1000, 1048576 + 1};
    size_t i;
    for (i = 0; i < sizeof offs / sizeof offs[0]; i++) {
      size_t len = SIZE - offs[i] < UNIT ? (size_t)(SIZE - offs[i]) : UNIT;
      if (get(b, id, offs[i], UNIT, got, &n) != 0 || n != len || memcmp(got, data + offs[i], len) != 0) bad++;
    }
    CHECK(bad == 0);
  }
  /* Cut short behind the server's back: what was read ahead is not
   * answered as if the file still held it. */
  CHECK_RC(get(b, id, SIZE - 5000, 4000, got, &n), 0);
  blob_file(&p, id, path, sizeof path);
  CHECK(truncate(path, 1000) == 0);
  CHECK_RC(get(b, id, SIZE - 5000, 4000, got, &n), SOTTO_SRV_E_BLOB_GONE);
  /* Removed: gone too (the second blob, read ahead on the blob thread first). */
  CHECK_RC(get(b, id2, 0, 1000, got, &n), 0); /* through the batch */
  CHECK_RC(get(b, id2, 1000, 1000, got, &n), 0);
  CHECK(n == 1000 && memcmp(got, data + 1000, 1000) == 0);
  blob_file(&p, id2, path, sizeof path);
  CHECK(unlink(path) == 0);
  CHECK_RC(get(b, id2, 2000, 1000, got, &n), SOTTO_SRV_E_BLOB_GONE);
out:
  if (a) sotto_net_close(a);
  if (b) sotto_net_close(b);
  sotto_net_ctx_free(ctx);
  srv_stop(&p);
  srv_rmdir(&p);
  free(data);
  free(got);
}

/* UNREGISTER and the account's blobs: its unfinished upload (never
 * committed: no message names it) goes, row and file; its committed blob
 * stays for its recipients; which blobs its devices fetched is forgotten (a
 * later BLOB_FETCHES by the uploader counts the deleted account's fetch no
 * more). */
static void test_unregister_blobs(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct sotto_net *e = NULL, *b = NULL;
  struct account erin = {"erin", 0, {0}}, bob = {"bob", 0, {0}};
  uint8_t unfinished[16], committed[16], bobs[16], data[100], got[100];
  char path[1200];
  uint64_t stored = 0;
  size_t n = 0;
  if (srv_mkdir(&p, "blobunreg") != 0 || srv_start(&p, NULL) != 0) {
    CHECK(!"server started");
    return;
  }
  randombytes_buf(data, sizeof data);
  CHECK_RC(do_register(&p, &ctx, &erin), 0);
  CHECK_RC(do_register(&p, &ctx, &bob), 0);
  e = login(&p, &ctx, &erin);
  b = login(&p, &ctx, &bob);
  CHECK(e && b);
  if (!e || !b) goto out;
  CHECK_RC(create(e, 100, 1, unfinished), 0);
  CHECK_RC(put(e, unfinished, 0, data, 50, &stored), 0);
  CHECK_RC(upload(e, data, 100, 1, committed), 0);
  /* bob's blob for two fetches; erin fetches it once */
  CHECK_RC(upload(b, data, 100, 2, bobs), 0);
  CHECK_RC(get(e, bobs, 0, 100, got, &n), 0);
  CHECK(n == 100 && memcmp(got, data, 100) == 0);
  CHECK_RC(simple(e, SOTTO_SRV_BLOB_DONE, bobs), 0);
  CHECK(files_settle(&p, 3) == 3);
  /* The requisition report says what the server holds of that: erin's
   * device 1 fetched 100 bytes bob uploaded (no blob id: the capability). */
  {
    const char *args[] = {"requisition", "--data", p.dir, "erin", NULL};
    int status = -1;
    char *out = srv_run_capture(args, &status), hex[33];
    CHECK(out && status == 0);
    sodium_bin2hex(hex, sizeof hex, bobs, sizeof bobs);
    if (out) {
      CHECK(strstr(out, "\"attachments_fetched\": [\n    {\"device_id\": 1, \"uploader\": \"bob\", \"bytes\": 100,") !=
            NULL);
      CHECK(strstr(out, "\"device_id\": 1, \"created\"") != NULL);
      CHECK(strstr(out, "\"identity_key\": null,") != NULL); /* no key of its own (DEVICE_IDENTITY) */
      CHECK(strstr(out, hex) == NULL);
      free(out);
    }
  }
  CHECK_RC(sotto_net_unregister(e), 0);
  sotto_net_close(e);
  e = NULL;
  CHECK(files_settle(&p, 2) == 2);
  blob_file(&p, unfinished, path, sizeof path);
  CHECK(access(path, F_OK) != 0); /* the unfinished upload's file is gone */
  blob_file(&p, committed, path, sizeof path);
  CHECK(access(path, F_OK) == 0); /* the committed one stays for its recipient */
  /* bob now says one fetch: erin's is forgotten, so one is still owed and
   * the blob stays (had her row stayed, it would count and delete it) */
  CHECK_RC(set_fetches(b, bobs, 1), 0);
  CHECK(files_settle(&p, 2) == 2);
  blob_file(&p, bobs, path, sizeof path);
  CHECK(access(path, F_OK) == 0);
out:
  if (e) sotto_net_close(e);
  if (b) sotto_net_close(b);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  if (sodium_init() < 0) return 1;
  test_blobs();
  test_fetch_count();
  test_put_inplace();
  test_read_ahead();
  test_unregister_blobs();
  return test_done("test_server_blob");
}
