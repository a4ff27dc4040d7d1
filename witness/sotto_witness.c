/* SPDX-License-Identifier: Apache-2.0 */
/* sotto-witness: an independent witness of a sotto-server's key-transparency
 * log (docs/key-transparency.md). One run connects to the server (its TLS
 * certificate pinned by fingerprint), fetches the log entries after the
 * ones it has accepted, checks each with sotto_kt_witness_apply (which
 * refuses anything that does not extend what it accepted: a fork, an older
 * time, a re-logged key, a bad signature), keeps them on disk, and prints
 * its cosignature of the newest head.
 *
 * State directory (mode 0700, files 0600):
 *   witness.key  the witness's Ed25519 seed (32 bytes), made on first run;
 *   log.id       the log's public keys, sig_pk || vrf_pk (64 bytes), from
 *                --log-key on first run, then fixed;
 *   entries      the accepted entries: u32 length || head(112) || update,
 *                appended and fsynced one by one; a torn last record (a
 *                crash while appending) is cut off at the next start. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sotto/kt.h>

#include "net.h"
#include "proto.h"
#include "wire.h"

#define TIMEOUT_MS 10000

static const char USAGE[] =
    "usage: sotto-witness --server HOST:PORT --fingerprint HEX --state DIR [--log-key HEX] [--no-push]\n"
    "       sotto-witness --state DIR --key\n"
    "  --server HOST:PORT   the sotto-server to witness\n"
    "  --fingerprint HEX    SHA-256 of its TLS certificate (`sotto-server fingerprint`)\n"
    "  --state DIR          the witness's state directory (created 0700)\n"
    "  --log-key HEX        first run only: the log's sig_pk and vrf_pk (128 hex digits,\n"
    "                       the server's kt_open log line)\n"
    "  --no-push            do not send the cosignature to the server (KT_COSIGN)\n"
    "  --key                print this witness's public key (hex; made on first use) and exit\n"
    "  --help               print this and exit\n"
    "Fetches the log's new entries, refuses any that do not extend what it accepted,\n"
    "prints its cosignature of the newest head (hex) and sends it to the server,\n"
    "which serves it to clients. Exit 0 ok, 1 error, 2 refused.\n";

static int read_exact(const char *path, uint8_t *out, size_t len) {
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  ssize_t n;
  if (fd < 0) return errno == ENOENT ? 1 : -1;
  if (fstat(fd, &st) != 0 || st.st_size != (off_t)len || (st.st_mode & 077)) {
    close(fd);
    fprintf(stderr, "sotto-witness: %s must be %zu bytes, mode 0600\n", path, len);
    return -1;
  }
  n = read(fd, out, len);
  close(fd);
  return n == (ssize_t)len ? 0 : -1;
}

/* Atomic: a temporary file, fsync, rename, fsync of the directory. */
static int write_atomic(const char *dir, const char *name, const uint8_t *p, size_t len) {
  char tmp[4200], path[4200];
  int fd, ok;
  snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  (void)unlink(tmp);
  if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) return -1;
  ok = write(fd, p, len) == (ssize_t)len && fsync(fd) == 0;
  if (close(fd) != 0) ok = 0;
  if (!ok || rename(tmp, path) != 0) {
    (void)unlink(tmp);
    return -1;
  }
  if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  return 0;
}

static const char *why(int rc) {
  switch (rc) {
    case SOTTO_ERR_KT_FORK:
      return "it does not extend the log this witness accepted (another history: wrong size, older time, "
             "a re-logged key or another root): the server shows a forked log";
    case SOTTO_ERR_AUTH:
      return "the head's signature is not the log's key";
    default:
      return sotto_errname(rc);
  }
}

/* Replays DIR/entries into w; cuts a torn last record off. *n: entries. */
static int replay(const char *dir, struct sotto_kt_witness *w, uint64_t *n, uint8_t last[SOTTO_KT_HEAD_LEN]) {
  char path[4200];
  uint8_t hdr[4 + SOTTO_KT_HEAD_LEN], *upd = NULL;
  struct sotto_kt_head h;
  off_t good = 0;
  FILE *f;
  int rc = 0;
  *n = 0;
  snprintf(path, sizeof path, "%s/entries", dir);
  if ((f = fopen(path, "rb")) == NULL) return errno == ENOENT ? 0 : -1;
  for (;;) {
    uint32_t len;
    if (fread(hdr, 1, sizeof hdr, f) != sizeof hdr) break;
    len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    if (len > SOTTO_KT_MAX_UPDATE_LEN) break;
    free(upd);
    if ((upd = malloc(len ? len : 1)) == NULL || fread(upd, 1, len, f) != len) break;
    if ((rc = sotto_kt_head_decode(&h, hdr + 4, SOTTO_KT_HEAD_LEN)) != 0 ||
        (rc = sotto_kt_witness_apply(w, upd, len, &h)) != 0) {
      fprintf(stderr, "sotto-witness: %s: stored entry %llu does not replay: %s\n", path,
              (unsigned long long)*n, why(rc));
      break;
    }
    memcpy(last, hdr + 4, SOTTO_KT_HEAD_LEN);
    good += (off_t)(sizeof hdr + len);
    (*n)++;
  }
  free(upd);
  fclose(f);
  if (rc) return -1;
  return truncate(path, good) == 0 ? 0 : -1;
}

static int append(const char *dir, const uint8_t head[SOTTO_KT_HEAD_LEN], const uint8_t *upd, size_t len) {
  char path[4200];
  uint8_t l[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
  int fd, ok;
  snprintf(path, sizeof path, "%s/entries", dir);
  if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) return -1;
  ok = write(fd, l, 4) == 4 && write(fd, head, SOTTO_KT_HEAD_LEN) == SOTTO_KT_HEAD_LEN &&
       write(fd, upd, len) == (ssize_t)len && fsync(fd) == 0;
  if (close(fd) != 0) ok = 0;
  return ok ? 0 : -1;
}

static int request(struct sotto_net *c, uint8_t type, const uint8_t *p, size_t len, struct sotto_net_event *ev) {
  static uint32_t id = 1000;
  uint32_t want = ++id;
  int i;
  if (sotto_net_write_frame(c, type, want, p, len) != 0) return -1;
  for (i = 0; i < 1000; i++) {
    if (sotto_net_next_event(c, TIMEOUT_MS, ev) != 1) return -1;
    if (ev->kind == SOTTO_NET_EV_ANSWER && ev->req_id == want) return ev->code;
    sotto_net_event_clear(ev);
  }
  return -1;
}

int main(int argc, char **argv) {
  const char *server = NULL, *fp = NULL, *dir = NULL, *logkey = NULL;
  char host[256], path[4200], hex[2 * SOTTO_KT_COSIG_LEN + 1];
  const char *port = NULL;
  uint8_t seed[SOTTO_KT_SIGN_SEED_LEN], idb[64], last[SOTTO_KT_HEAD_LEN], cos[SOTTO_KT_COSIG_LEN];
  struct sotto_kt_log_id id;
  struct sotto_kt_witness *w = NULL;
  struct sotto_net_ctx *ctx = NULL;
  struct sotto_net *c = NULL;
  struct sotto_kt_head h;
  uint64_t n = 0, fetched = 0;
  int i, rc, ret = 1, push = 1, show_key = 0;
  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(USAGE, stdout);
      return 0;
    }
    if (!strcmp(argv[i], "--no-push")) {
      push = 0;
      continue;
    }
    if (!strcmp(argv[i], "--key")) {
      show_key = 1;
      continue;
    }
    if (i + 1 >= argc) break;
    if (!strcmp(argv[i], "--server")) server = argv[++i];
    else if (!strcmp(argv[i], "--fingerprint")) fp = argv[++i];
    else if (!strcmp(argv[i], "--state")) dir = argv[++i];
    else if (!strcmp(argv[i], "--log-key")) logkey = argv[++i];
    else break;
  }
  if (i != argc || !dir || (!show_key && (!server || !fp))) {
    fputs(USAGE, stderr);
    return 1;
  }
  if (sodium_init() < 0) return 1;
  if (!show_key) {
    const char *colon = strrchr(server, ':');
    if (!colon || (size_t)(colon - server) >= sizeof host || !colon[1]) {
      fprintf(stderr, "sotto-witness: --server must be HOST:PORT\n");
      return 1;
    }
    memcpy(host, server, (size_t)(colon - server));
    host[colon - server] = 0;
    port = colon + 1;
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "sotto-witness: cannot create %s: %s\n", dir, strerror(errno));
    return 1;
  }
  /* The witness key. */
  snprintf(path, sizeof path, "%s/witness.key", dir);
  if ((rc = read_exact(path, seed, sizeof seed)) == 1) {
    randombytes_buf(seed, sizeof seed);
    rc = write_atomic(dir, "witness.key", seed, sizeof seed);
  }
  if (rc != 0) {
    fprintf(stderr, "sotto-witness: cannot read or create %s\n", path);
    goto out;
  }
  if (show_key) {
    uint8_t pk[SOTTO_KT_SIGN_PK_LEN], sk[64];
    char pkhex[2 * SOTTO_KT_SIGN_PK_LEN + 1];
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(sk, sizeof sk);
    sodium_bin2hex(pkhex, sizeof pkhex, pk, sizeof pk);
    printf("%s\n", pkhex);
    ret = 0;
    goto out;
  }
  /* The log's identity: fixed at the first run. */
  snprintf(path, sizeof path, "%s/log.id", dir);
  if ((rc = read_exact(path, idb, sizeof idb)) == 1) {
    size_t bl = 0;
    if (!logkey || sodium_hex2bin(idb, sizeof idb, logkey, strlen(logkey), NULL, &bl, NULL) != 0 ||
        bl != sizeof idb) {
      fprintf(stderr, "sotto-witness: first run: --log-key must be the log's sig_pk and vrf_pk (128 hex digits)\n");
      goto out;
    }
    rc = write_atomic(dir, "log.id", idb, sizeof idb);
  } else if (rc == 0 && logkey) {
    uint8_t given[64];
    size_t bl = 0;
    if (sodium_hex2bin(given, sizeof given, logkey, strlen(logkey), NULL, &bl, NULL) != 0 || bl != sizeof given ||
        sodium_memcmp(given, idb, sizeof idb) != 0) {
      fprintf(stderr, "sotto-witness: --log-key differs from the log this state witnesses (%s)\n", path);
      goto out;
    }
  }
  if (rc != 0) {
    fprintf(stderr, "sotto-witness: cannot read or write %s\n", path);
    goto out;
  }
  memcpy(id.sig_pk, idb, 32);
  memcpy(id.vrf_pk, idb + 32, 32);
  if (sotto_kt_witness_new(&w, &id) != 0 || replay(dir, w, &n, last) != 0) {
    fprintf(stderr, "sotto-witness: cannot load the state in %s\n", dir);
    goto out;
  }
  if ((ctx = sotto_net_ctx_new(fp, NULL)) == NULL ||
      sotto_net_connect(ctx, host, port, TIMEOUT_MS, 1, &c) != 0) {
    fprintf(stderr, "sotto-witness: cannot connect to %s with the pinned fingerprint\n", server);
    goto out;
  }
  for (;;) {
    struct sotto_net_event ev;
    struct sotto_srv_kt_entry e[SOTTO_SRV_KT_MAX_UPDATES];
    uint8_t b[16];
    struct sotto__wr wr;
    size_t k = 0, j;
    memset(&ev, 0, sizeof ev);
    sotto__wr_init(&wr, b, sizeof b);
    sotto__srv_put_kt_updates_req(&wr, n, SOTTO_SRV_KT_MAX_UPDATES);
    rc = request(c, SOTTO_SRV_KT_UPDATES, b, wr.len, &ev);
    if (rc == SOTTO_SRV_E_NOT_FOUND) {
      sotto_net_event_clear(&ev);
      break; /* nothing after entry n */
    }
    if (rc != 0 ||
        sotto__srv_parse_kt_updates(ev.payload, ev.payload_len, e, SOTTO_SRV_KT_MAX_UPDATES,
                                    SOTTO_KT_MAX_UPDATE_LEN, &k) != 0 ||
        k == 0) {
      fprintf(stderr, "sotto-witness: KT_UPDATES from %llu failed (%s)\n", (unsigned long long)n,
              rc > 0 ? sotto__srv_code_str((unsigned)rc) : "bad answer");
      sotto_net_event_clear(&ev);
      goto out;
    }
    for (j = 0; j < k; j++) {
      if ((rc = sotto_kt_head_decode(&h, e[j].head, SOTTO_KT_HEAD_LEN)) == 0)
        rc = sotto_kt_witness_apply(w, e[j].update, e[j].update_len, &h);
      if (rc != 0) {
        fprintf(stderr, "sotto-witness: REFUSED entry %llu of %s: %s\n", (unsigned long long)n, server, why(rc));
        sotto_net_event_clear(&ev);
        ret = 2;
        goto out;
      }
      if (append(dir, e[j].head, e[j].update, e[j].update_len) != 0) {
        fprintf(stderr, "sotto-witness: cannot write %s/entries\n", dir);
        sotto_net_event_clear(&ev);
        goto out;
      }
      memcpy(last, e[j].head, sizeof last);
      n++;
      fetched++;
    }
    sotto_net_event_clear(&ev);
  }
  if (n == 0) {
    printf("log empty: nothing to cosign\n");
    ret = 0;
    goto out;
  }
  /* The server's current head: the same size as what was accepted must be
   * the same head (else two histories share a size: a fork), and the log
   * never shrinks. */
  {
    struct sotto_net_event ev;
    struct sotto_srv_kt_head kh;
    struct sotto_kt_head cur;
    memset(&ev, 0, sizeof ev);
    rc = request(c, SOTTO_SRV_KT_HEAD, NULL, 0, &ev);
    if (rc != 0 || sotto__srv_parse_kt_head(ev.payload, ev.payload_len, &kh) != 0 ||
        sotto_kt_head_decode(&cur, kh.head, SOTTO_KT_HEAD_LEN) != 0) {
      fprintf(stderr, "sotto-witness: KT_HEAD failed\n");
      sotto_net_event_clear(&ev);
      goto out;
    }
    if (cur.tree_size < n || (cur.tree_size == n && sodium_memcmp(kh.head, last, SOTTO_KT_HEAD_LEN) != 0)) {
      fprintf(stderr, "sotto-witness: REFUSED the head of %s (size %llu): %s\n", server,
              (unsigned long long)cur.tree_size,
              cur.tree_size < n ? "the log shrank below what this witness accepted: the server shows a forked log"
                                : why(SOTTO_ERR_KT_FORK));
      sotto_net_event_clear(&ev);
      ret = 2;
      goto out;
    }
    sotto_net_event_clear(&ev);
  }
  if (sotto_kt_head_decode(&h, last, sizeof last) != 0 ||
      sotto_kt_witness_cosign(cos, w, seed, (uint64_t)time(NULL), &h) != 0) {
    fprintf(stderr, "sotto-witness: cannot cosign the newest head\n");
    goto out;
  }
  sodium_bin2hex(hex, sizeof hex, cos, sizeof cos);
  printf("accepted %llu new entries; log size %llu; cosignature %s\n", (unsigned long long)fetched,
         (unsigned long long)n, hex);
  ret = 0;
  if (push) {
    /* KT_COSIGN: the server checks it against the witnesses it is
     * configured with and serves it with KT_HEAD. */
    struct sotto_net_event ev;
    uint8_t pk[SOTTO_KT_SIGN_PK_LEN], sk[64], b[SOTTO_KT_SIGN_PK_LEN + SOTTO_KT_HEAD_LEN + SOTTO_KT_COSIG_LEN];
    struct sotto__wr wr;
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(sk, sizeof sk);
    sotto__wr_init(&wr, b, sizeof b);
    sotto__srv_put_kt_cosign_req(&wr, pk, last, cos);
    memset(&ev, 0, sizeof ev);
    rc = request(c, SOTTO_SRV_KT_COSIGN, b, wr.len, &ev);
    sotto_net_event_clear(&ev);
    if (rc == 0) {
      printf("the server took the cosignature\n");
    } else {
      fprintf(stderr, "sotto-witness: the server did not take the cosignature: %s\n",
              rc > 0 ? sotto__srv_code_str((unsigned)rc) : "no answer");
      ret = 1;
    }
  }
out:
  sodium_memzero(seed, sizeof seed);
  if (c) sotto_net_close(c);
  if (ctx) sotto_net_ctx_free(ctx);
  sotto_kt_witness_free(w);
  return ret;
}
