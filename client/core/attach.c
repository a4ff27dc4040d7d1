/* SPDX-License-Identifier: Apache-2.0 */
/* attach.c: attachments (docs/client.md "Attachments").
 *
 * Sending: a fresh random 32-byte key per file; the file is encrypted in
 * chunks of ATTACH_CHUNK bytes, chunk i sealed under that key with a nonce
 * made of i (a key is never used for two files, so a counter nonce is
 * unique) and associated data that says whether it is the last chunk (a
 * cut-off file fails, reordered chunks fail by their nonce). Format v2
 * (what is sent): AES-256-GCM chunks and a SHA-256 digest; format v1 (still
 * received): XChaCha20-Poly1305 and BLAKE2b-256 ("the two formats" below).
 * The ciphertext (size + 16 bytes a chunk) goes
 * to the server's blob store in PUTs of ATTACH_PUT_CHUNKS chunks, several in
 * flight, and its digest is computed on the way. The pointer (blob id, key,
 * digest, size, type, name, the format flag) and the caption then travel in one end-to-end
 * encrypted message (content kind ATTACHMENT). Every chunk encrypts the same
 * way again, so after a dropped connection the upload goes on from the bytes
 * the server has (BLOB_STAT) without re-reading what came before; and an
 * upload record in the store ("attach.up/...") lets a rerun of the same send
 * after the process died resume the same blob with the same key.
 *
 * Receiving: the pointer is kept in the store ("attach.pending/ID") with the
 * envelope, and fetched once the queue is drained: GETs of whole chunks,
 * each decrypted and checked as it comes and written to a temporary file in
 * the downloads directory; the digest of all the ciphertext is compared at
 * the end; only then is the file renamed to its cleaned name and the event
 * logged. A damaged blob leaves nothing behind. The server is told
 * (BLOB_DONE) so that it deletes the blob once every recipient has it.
 *
 * Memory: a few PUT or GET buffers (ATTACH_WINDOW x ATTACH_PUT_CHUNKS
 * chunks) and, downloading, three 1 MiB plaintext buffers (WRING_N), whatever
 * the file's size. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <sotto/devlist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sotto/devlist.h>

#include "account.h"
#include "attach.h"
#include "conn.h"
#include "contact.h"
#include "content.h"
#include "convo.h"
#include "devices.h"
#include "grp.h"
#include "messaging.h"
#include "msglog.h"
#include "proto.h"

#define ATTACH_TAG 16 /* both formats' tag (Poly1305, GCM) */
_Static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == ATTACH_TAG, "v1's tag");
#define ATTACH_CCHUNK (ATTACH_CHUNK + ATTACH_TAG) /* ciphertext bytes of a whole chunk */
#define ATTACH_PUT_CHUNKS 3                       /* chunks in one PUT or GET */
#define ATTACH_UNIT (ATTACH_PUT_CHUNKS * ATTACH_CCHUNK)
#define ATTACH_WINDOW 8   /* PUTs or GETs in flight */
#define ATTACH_RETRIES 6  /* reconnections for one transfer */
#define ATTACH_WAIT_MS 30000
#define ATTACH_PENDING "attach.pending/"
#define ATTACH_ANY "attach.any" /* present while a pointer may be pending: one look, not a scan */
#define ATTACH_PENDING_MAX 256 /* pointers waiting for their download */
/* "attach.seen/HEX(blob id)" (the time it came, ms): a pointer to a blob
 * seen before is not kept again, so one upload cannot fill our disk with
 * copies (a sender's distinct blobs are bounded by its server quota). Kept
 * ATTACH_SEEN_KEEP_MS, past any blob's expiry on the server. */
#define ATTACH_SEEN "attach.seen/"
#define ATTACH_SEEN_KEEP_MS (40LL * 86400 * 1000)
#define ATTACH_SAFE_MAX 100    /* bytes of a saved file's name */
#define ATTACH_LONG_TEXT_MAX SC_MAX_LONG_TEXT /* a long text that arrives as an attachment */

_Static_assert(ATTACH_UNIT + SOTTO_SRV_BLOB_ID_LEN + 8 <= SOTTO_SRV_BLOB_MAX_CHUNK + SOTTO_SRV_BLOB_ID_LEN + 8,
               "a PUT fits the protocol's chunk");
_Static_assert(ATTACH_UNIT <= SOTTO_SRV_BLOB_MAX_CHUNK, "a GET fits the protocol's chunk");
_Static_assert(ATTACH_SAFE_MAX < MSG_DETAIL_MAX, "a saved name fits an event's detail");

uint64_t attach_cipher_size(uint64_t size) {
  uint64_t n = size == 0 ? 1 : (size + ATTACH_CHUNK - 1) / ATTACH_CHUNK;
  return size + n * ATTACH_TAG;
}

static uint64_t n_chunks(uint64_t size) {
  return size == 0 ? 1 : (size + ATTACH_CHUNK - 1) / ATTACH_CHUNK;
}

/* ---- the two formats: chunk cipher and digest --------------------------------
 *
 * v1 (ATTACH_FLAG_V2 clear; what sotto sent before): chunk i sealed with
 * XChaCha20-Poly1305 (libsodium), nonce = 16 zero bytes || u64 i (BE),
 * associated data one byte (1 last chunk, 0 others); digest BLAKE2b-256 of
 * all the ciphertext. Still decrypted; no longer sent.
 *
 * v2 (ATTACH_FLAG_V2): chunk i sealed with AES-256-GCM (OpenSSL EVP: AES-NI
 * and carry-less multiplication where the CPU has them), nonce (12 bytes) =
 * 4 zero bytes || u64 i (BE), associated data two bytes: 2 (the format)
 * then 1 for the last chunk, 0 for the others; digest SHA-256 of all the
 * ciphertext (a collision-resistant commitment to the exact bytes: GCM alone
 * does not commit to its key). Same sizes as v1: 16 bytes of tag a chunk. */

struct aead {
  int v2;
  const uint8_t *key; /* v1 */
  EVP_CIPHER_CTX *cx; /* v2: the key schedule, set once; one thread at a time */
  int enc;
};

static void aead_free(struct aead *a) {
  if (a->cx) EVP_CIPHER_CTX_free(a->cx); /* wipes the key schedule */
  memset(a, 0, sizeof *a);
}

/* 0, or -1 (out of memory). enc: 1 to seal, 0 to open. */
static int aead_init(struct aead *a, int v2, const uint8_t key[ATTACH_KEY_LEN], int enc) {
  memset(a, 0, sizeof *a);
  a->v2 = v2;
  a->key = key;
  a->enc = enc;
  if (!v2) return 0;
  if ((a->cx = EVP_CIPHER_CTX_new()) == NULL) return -1;
  if ((enc ? EVP_EncryptInit_ex(a->cx, EVP_aes_256_gcm(), NULL, key, NULL)
           : EVP_DecryptInit_ex(a->cx, EVP_aes_256_gcm(), NULL, key, NULL)) != 1) {
    aead_free(a);
    return -1;
  }
  return 0;
}

static void v1_nonce(uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES], uint64_t i) {
  int k;
  memset(nonce, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  for (k = 0; k < 8; k++) nonce[16 + k] = (uint8_t)(i >> (56 - 8 * k));
}

static void v2_nonce(uint8_t nonce[12], uint64_t i) {
  int k;
  memset(nonce, 0, 12);
  for (k = 0; k < 8; k++) nonce[4 + k] = (uint8_t)(i >> (56 - 8 * k));
}

/* Chunk i (last: the file's last) of n <= ATTACH_CHUNK bytes from in into
 * out (n + ATTACH_TAG bytes). 0, or -1 (the library failed). */
static int aead_seal(struct aead *a, uint64_t i, int last, const uint8_t *in, size_t n, uint8_t *out) {
  if (!a->v2) {
    uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES], ad = (uint8_t)last;
    unsigned long long cn = 0;
    v1_nonce(nonce, i);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out, &cn, in, n, &ad, 1, NULL, nonce, a->key);
    return cn == n + ATTACH_TAG ? 0 : -1;
  } else {
    uint8_t nonce[12], ad[2] = {2, (uint8_t)last};
    int l = 0, l2 = 0;
    v2_nonce(nonce, i);
    if (EVP_EncryptInit_ex(a->cx, NULL, NULL, NULL, nonce) != 1 || EVP_EncryptUpdate(a->cx, NULL, &l, ad, 2) != 1 ||
        EVP_EncryptUpdate(a->cx, out, &l, in, (int)n) != 1 || EVP_EncryptFinal_ex(a->cx, out + l, &l2) != 1 ||
        (size_t)(l + l2) != n || EVP_CIPHER_CTX_ctrl(a->cx, EVP_CTRL_AEAD_GET_TAG, ATTACH_TAG, out + n) != 1)
      return -1;
    return 0;
  }
}

/* Chunk i of cn bytes (tag included, cn >= ATTACH_TAG) from in into out
 * (cn - ATTACH_TAG bytes). 0, or -1 (altered, or the library failed). */
static int aead_open(struct aead *a, uint64_t i, int last, const uint8_t *in, size_t cn, uint8_t *out) {
  size_t n = cn - ATTACH_TAG;
  if (!a->v2) {
    uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES], ad = (uint8_t)last;
    unsigned long long pn = 0;
    v1_nonce(nonce, i);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &pn, NULL, in, cn, &ad, 1, nonce, a->key) != 0) return -1;
    return pn == n ? 0 : -1;
  } else {
    uint8_t nonce[12], ad[2] = {2, (uint8_t)last}, tag[ATTACH_TAG];
    int l = 0, l2 = 0;
    v2_nonce(nonce, i);
    memcpy(tag, in + n, ATTACH_TAG);
    if (EVP_DecryptInit_ex(a->cx, NULL, NULL, NULL, nonce) != 1 || EVP_DecryptUpdate(a->cx, NULL, &l, ad, 2) != 1 ||
        EVP_DecryptUpdate(a->cx, out, &l, in, (int)n) != 1 ||
        EVP_CIPHER_CTX_ctrl(a->cx, EVP_CTRL_AEAD_SET_TAG, ATTACH_TAG, tag) != 1 ||
        EVP_DecryptFinal_ex(a->cx, out + l, &l2) != 1 || (size_t)(l + l2) != n)
      return -1;
    return 0;
  }
}

struct digest {
  int v2;
  crypto_generichash_blake2b_state b; /* v1 */
  EVP_MD_CTX *m;                      /* v2 */
};

/* 0, or -1 (out of memory). Again on an initialised one: starts over. */
static int digest_init(struct digest *d, int v2) {
  if (d->m) EVP_MD_CTX_free(d->m);
  memset(d, 0, sizeof *d);
  d->v2 = v2;
  if (!v2) return crypto_generichash_blake2b_init(&d->b, NULL, 0, ATTACH_DIGEST_LEN);
  if ((d->m = EVP_MD_CTX_new()) == NULL) return -1;
  if (EVP_DigestInit_ex(d->m, EVP_sha256(), NULL) != 1) return -1;
  return 0;
}

static void digest_update(struct digest *d, const uint8_t *p, size_t n) {
  if (!d->v2)
    crypto_generichash_blake2b_update(&d->b, p, n);
  else
    (void)EVP_DigestUpdate(d->m, p, n); /* cannot fail once initialised */
}

static int digest_final(struct digest *d, uint8_t out[ATTACH_DIGEST_LEN]) {
  unsigned len = 0;
  if (!d->v2) return crypto_generichash_blake2b_final(&d->b, out, ATTACH_DIGEST_LEN);
  return EVP_DigestFinal_ex(d->m, out, &len) == 1 && len == ATTACH_DIGEST_LEN ? 0 : -1;
}

static void digest_free(struct digest *d) {
  if (d->m) EVP_MD_CTX_free(d->m);
  sodium_memzero(d, sizeof *d);
}

/* ---- file names ----------------------------------------------------------------- */

static int reserved_base(const char *s, size_t n) {
  static const char *const names[] = {"con", "prn", "aux", "nul"};
  size_t i;
  char b[8];
  if (n > 4) return 0;
  for (i = 0; i < n; i++) b[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
  b[n] = 0;
  for (i = 0; i < 4; i++)
    if (strcmp(b, names[i]) == 0) return 1;
  return n == 4 && (strncmp(b, "com", 3) == 0 || strncmp(b, "lpt", 3) == 0) && b[3] >= '0' && b[3] <= '9';
}

/* Length of the UTF-8 sequence at p (1..4) if it is valid and not a control
 * or formatting character (C1 controls, bidirectional overrides and
 * isolates, zero-width characters), else 0. */
static size_t utf8_ok_char(const uint8_t *p, size_t left) {
  uint32_t cp;
  size_t n, i;
  if (p[0] < 0x80) return p[0] >= 0x20 && p[0] != 0x7f ? 1 : 0;
  if ((p[0] & 0xe0) == 0xc0) n = 2, cp = p[0] & 0x1f;
  else if ((p[0] & 0xf0) == 0xe0) n = 3, cp = p[0] & 0x0f;
  else if ((p[0] & 0xf8) == 0xf0) n = 4, cp = p[0] & 0x07;
  else return 0;
  if (n > left) return 0;
  for (i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (p[i] & 0x3f);
  }
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  if (cp >= 0xd800 && cp <= 0xdfff) return 0;
  if (cp < 0xa0 || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
      (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb))
    return 0;
  return n;
}

void attach_safe_name(char out[ATTACH_SAFE_MAX + 1], const uint8_t *raw, size_t len) {
  char buf[4 * SC_ATTACH_NAME_MAX + 8];
  size_t i, n = 0, start = 0, end, dot, ext;
  /* The last path component only, whichever separator. */
  for (i = 0; i < len; i++)
    if (raw[i] == '/' || raw[i] == '\\') start = i + 1;
  for (i = start; i < len && n + 4 < sizeof buf;) {
    size_t k = utf8_ok_char(raw + i, len - i);
    if (k == 0 || (k == 1 && strchr(":*?\"<>|", raw[i]))) {
      buf[n++] = '_';
      i++;
      continue;
    }
    memcpy(buf + n, raw + i, k);
    n += k;
    i += k;
  }
  /* No hidden file, no "." or "..", nothing ending in a dot or a space. */
  start = 0;
  while (start < n && (buf[start] == '.' || buf[start] == ' ')) start++;
  end = n;
  while (end > start && (buf[end - 1] == '.' || buf[end - 1] == ' ')) end--;
  if (end == start) {
    snprintf(out, ATTACH_SAFE_MAX + 1, "file");
    return;
  }
  memmove(buf, buf + start, end - start);
  n = end - start;
  buf[n] = 0;
  /* Too long: the end of the name cut off, the extension (up to 16 bytes) kept. */
  if (n > ATTACH_SAFE_MAX) {
    const char *d = strrchr(buf, '.');
    ext = d && (size_t)(buf + n - d) <= 16 ? (size_t)(buf + n - d) : 0;
    dot = ATTACH_SAFE_MAX - ext;
    while (dot > 0 && ((uint8_t)buf[dot] & 0xc0) == 0x80) dot--; /* at a character's start */
    /* The cut may end the stem in a dot or a space (buf[0] is neither). */
    while (dot > 0 && (buf[dot - 1] == '.' || buf[dot - 1] == ' ')) dot--;
    memmove(buf + dot, buf + n - ext, ext);
    n = dot + ext;
    buf[n] = 0;
  }
  /* Names Windows reserves (a copy to such a disk would fail or worse). */
  dot = strcspn(buf, ".");
  if (reserved_base(buf, dot) && n < ATTACH_SAFE_MAX) {
    memmove(buf + 1, buf, n + 1);
    buf[0] = '_';
  }
  n = strlen(buf);
  if (n > ATTACH_SAFE_MAX) n = ATTACH_SAFE_MAX; /* not reached: cut above */
  memcpy(out, buf, n);
  out[n] = 0;
}

const char *sc_downloads_dir(const struct sc_client *c, char *buf, size_t cap) {
  size_t n = strlen(c->home);
  if (cap < n + 11) {
    if (cap) buf[0] = 0;
    return buf;
  }
  memcpy(buf, c->home, n);
  memcpy(buf + n, "/downloads", 11);
  return buf;
}

/* Renames tmp to DIR/name, or "name (1).ext" ... when taken; *final gets the
 * name used. 0, or an errno. */
static int place(const char *dir, const char *tmp, const char *name, char final[ATTACH_SAFE_MAX + 16]) {
  char path[PATH_MAX + 128], base[ATTACH_SAFE_MAX + 1];
  const char *ext = strrchr(name, '.');
  size_t bl;
  int i;
  if (!ext || ext == name) ext = name + strlen(name);
  bl = (size_t)(ext - name);
  memcpy(base, name, bl);
  base[bl] = 0;
  for (i = 0; i < 10000; i++) {
    if (i == 0)
      snprintf(final, ATTACH_SAFE_MAX + 16, "%s", name);
    else
      snprintf(final, ATTACH_SAFE_MAX + 16, "%.*s (%d)%s", (int)(bl > ATTACH_SAFE_MAX - 12 ? ATTACH_SAFE_MAX - 12 : bl),
               base, i, ext);
    snprintf(path, sizeof path, "%s/%s", dir, final);
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) return 0;
    if (errno == EINVAL || errno == ENOSYS) { /* a file system without it: link() never replaces either */
      if (link(tmp, path) == 0) {
        (void)unlink(tmp);
        return 0;
      }
    }
    if (errno != EEXIST) return errno;
  }
  return EEXIST;
}

/* ---- errors -------------------------------------------------------------------- */

static int blob_error(struct sc_client *c, struct conn *k, int rc, const char *what) {
  switch (rc) {
    case SOTTO_SRV_E_BLOB_QUOTA:
      return sc__fail(c, SC_ERR_ATTACH_QUOTA,
                      "the server refused the file while %s: your attachment quota there is used up (files you "
                      "sent wait until every recipient fetched them or they expire); try again later",
                      what);
    case SOTTO_SRV_E_BLOB_GONE:
      return sc__fail(c, SC_ERR_ATTACH_GONE,
                      "the file is no longer on the server (it expired, or every recipient fetched it already) "
                      "while %s; ask the sender to send it again",
                      what);
    case SOTTO_SRV_E_BLOB_TOO_LARGE:
      return sc__fail(c, SC_ERR_ATTACH_TOO_LARGE, "the server does not take a file this large (while %s)", what);
    case SOTTO_SRV_E_STORAGE_FULL:
      return sc__fail(c, SC_ERR_DISK_FULL, "the server's disk is full while %s; try again later", what);
  }
  return conn_error(c, k, rc, what, NULL);
}

static int transient(int rc) {
  return rc == SOTTO_NET_E_IO || rc == SOTTO_NET_E_TIMEOUT || rc == SOTTO_SRV_E_SHUTDOWN ||
         rc == SOTTO_SRV_E_TIMEOUT || rc == SOTTO_SRV_E_RATE || rc == SOTTO_SRV_E_BUSY;
}

/* A new connection after a dropped one: 0, or the recorded error. */
static int reconnect(struct sc_client *c, struct conn *k, int attempt) {
  struct timespec ts = {0, 200 * 1000 * 1000};
  if (attempt > 1) ts.tv_sec = attempt - 1 > 4 ? 4 : attempt - 1;
  conn_close(k);
  nanosleep(&ts, NULL);
  return conn_open(c, k);
}

/* Test hook (sotto-test only): SOTTO_TEST_ATTACH_CUT=N1,N2,... makes the
 * connection drop (the socket shut down under TLS, as a network failure
 * would) once the transfer passed each offset, each once. */
struct cuts {
  uint64_t at[4];
  int n, next;
  long slow_ms; /* SOTTO_TEST_ATTACH_SLOW=MS: a pause before each PUT (a slow link, for kill tests) */
};

static void cuts_load(struct cuts *x) {
  memset(x, 0, sizeof *x);
#ifdef SOTTO_TEST_HOOKS
  const char *v = getenv("SOTTO_TEST_ATTACH_CUT");
  while (v && *v && x->n < 4) {
    char *end;
    x->at[x->n++] = strtoull(v, &end, 10);
    v = *end == ',' ? end + 1 : end + strlen(end);
  }
  if ((v = getenv("SOTTO_TEST_ATTACH_SLOW")) != NULL) x->slow_ms = strtol(v, NULL, 10);
#endif
}

static void cuts_check(struct cuts *x, struct conn *k, uint64_t done) {
  if (x->next < x->n && done >= x->at[x->next] && k->net) {
    x->next++;
    (void)shutdown(sotto_net_fd(k->net), SHUT_RDWR);
  }
}

/* ---- the source of an upload: a file or bytes in memory ------------------------ */

struct src {
  int fd;
  const uint8_t *mem;
  uint64_t size;
  /* A file's identity (fd >= 0): a rerun resumes only the same file. */
  uint64_t dev, ino, mtime_ns;
};

static int src_read(const struct src *s, uint64_t off, uint8_t *buf, size_t n) {
  size_t done = 0;
  if (s->mem) {
    memcpy(buf, s->mem + off, n);
    return 0;
  }
  while (done < n) {
    ssize_t r = pread(s->fd, buf + done, n - done, (off_t)(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    done += (size_t)r;
  }
  return 0;
}

/* Ciphertext [off, off + len) (off at a chunk's start) into out. 0 or -1 (read). */
static int encrypt_at(const struct src *s, struct aead *a, uint64_t off, size_t len, uint8_t *out, uint8_t *pbuf) {
  uint64_t chunk = off / ATTACH_CCHUNK, last = n_chunks(s->size) - 1;
  size_t done = 0;
  while (done < len) {
    uint64_t p0 = chunk * ATTACH_CHUNK;
    size_t pn = (size_t)(s->size - p0 < ATTACH_CHUNK ? s->size - p0 : ATTACH_CHUNK);
    if (pn && src_read(s, p0, pbuf, pn)) return -1;
    if (aead_seal(a, chunk, chunk == last, pbuf, pn, out + done)) return -1;
    done += pn + ATTACH_TAG;
    chunk++;
  }
  sodium_memzero(pbuf, ATTACH_CHUNK);
  return 0;
}

/* ---- the upload record: a rerun after the process died resumes ----------------
 *
 * "attach.up/TO/DEV:INO" (sealed like every record) holds, while a file's
 * upload to TO is under way and until its message went out: the blob id,
 * the key, the ciphertext size, the file's size and mtime (ns), the blob's
 * expiry and the fetches asked for. Rerunning the same send finds it and,
 * when the file is unchanged (same device, inode, size and mtime), goes on
 * from the bytes the server has (BLOB_STAT): the ciphertext before them is
 * encrypted again locally for the digest (the same key and nonces give the
 * same bytes), not sent. A changed file, an expired or vanished blob start
 * a new upload (the record replaced). */

#define ATTACH_UP "attach.up/"
/* The record's version is the upload's format: 1 (format v1, what records
 * written before format v2 hold: still resumed as v1) or 2. */

struct uprec {
  uint8_t id[ATTACH_ID_LEN];
  uint8_t key[ATTACH_KEY_LEN];
  uint64_t csize, size, mtime_ns, expires_ms;
  uint16_t fetches;
  int v2; /* the upload's format */
};

static void uprec_name(char *out, size_t cap, const char *to, const struct src *s) {
  snprintf(out, cap, ATTACH_UP "%s/%llu:%llu", to, (unsigned long long)s->dev, (unsigned long long)s->ino);
}

/* 1 and *r when a record for this file (unchanged, unexpired) exists, 0
 * when none does (or a stale one), < 0 a store error. */
static int uprec_load(struct sc_client *c, const char *to, const struct src *s, uint16_t fetches, struct uprec *r) {
  char name[STORE_MAX_NAME];
  struct rec_rd rd;
  const uint8_t *p;
  uint8_t *v = NULL, ver = 0;
  size_t len = 0;
  int rc, ok;
  uprec_name(name, sizeof name, to, s);
  if ((rc = store_get(c->st, name, &v, &len)) <= 0) return rc;
  rec_rd_init(&rd, v, len);
  ok = rec_get_u8(&rd, &ver) == 0 && (ver == 1 || ver == 2) && rec_get_ptr(&rd, &p, ATTACH_ID_LEN) == 0;
  r->v2 = ver == 2;
  if (ok) memcpy(r->id, p, ATTACH_ID_LEN);
  ok = ok && rec_get_ptr(&rd, &p, ATTACH_KEY_LEN) == 0;
  if (ok) memcpy(r->key, p, ATTACH_KEY_LEN);
  ok = ok && rec_get_u64(&rd, &r->csize) == 0 && rec_get_u64(&rd, &r->size) == 0 &&
       rec_get_u64(&rd, &r->mtime_ns) == 0 && rec_get_u64(&rd, &r->expires_ms) == 0 &&
       rec_get_u16(&rd, &r->fetches) == 0;
  store_free_value(v, len);
  if (!ok || r->size != s->size || r->mtime_ns != s->mtime_ns || r->csize != attach_cipher_size(s->size) ||
      r->fetches != fetches || r->expires_ms <= sc_now_ms()) {
    sodium_memzero(r, sizeof *r);
    return 0;
  }
  return 1;
}

static int uprec_save(struct sc_client *c, const char *to, const struct src *s, const struct uprec *r) {
  char name[STORE_MAX_NAME];
  struct rec_wr w;
  int rc;
  uprec_name(name, sizeof name, to, s);
  rec_wr_init(&w, 128);
  rec_put_u8(&w, r->v2 ? 2 : 1);
  rec_put(&w, r->id, ATTACH_ID_LEN);
  rec_put(&w, r->key, ATTACH_KEY_LEN);
  rec_put_u64(&w, r->csize);
  rec_put_u64(&w, r->size);
  rec_put_u64(&w, r->mtime_ns);
  rec_put_u64(&w, r->expires_ms);
  rec_put_u16(&w, r->fetches);
  if (w.w.err) {
    rec_wr_free(&w);
    return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  }
  if ((rc = sc__begin(c)) || (rc = store_put(c->st, name, w.p, w.len)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    rc = sc__store_error(c, rc);
  }
  rec_wr_free(&w);
  return rc;
}

static int uprec_drop(struct sc_client *c, const char *to, const struct src *s) {
  char name[STORE_MAX_NAME];
  int rc;
  uprec_name(name, sizeof name, to, s);
  if ((rc = sc__begin(c)) || (rc = store_del(c->st, name)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    rc = sc__store_error(c, rc);
  }
  return rc;
}

/* ---- the second thread: encryption and digest beside the connection -----------
 *
 * The connection's thread (TLS, PUT/GET frames, answers) and the file's
 * work (read + XChaCha20-Poly1305 + BLAKE2b on the way up; XChaCha20-Poly1305
 * + BLAKE2b + write on the way down) overlap: a worker thread fills (up) or
 * drains (down) a ring of PIPE_SLOTS units of ATTACH_UNIT bytes, in order.
 * The wire and the bytes are the same as with one thread; the digest is
 * updated by the worker only, in order, and read after it stopped. Memory:
 * PIPE_SLOTS more units (768 KiB). */
#define PIPE_SLOTS 4

struct slot {
  uint8_t *base; /* SOTTO_NET_PUT_HEADROOM bytes for a PUT's headers, then buf */
  uint8_t *buf;
  uint8_t *owned; /* down: an answer's payload taken over instead of copied into buf (freed after) */
  uint64_t off;
  size_t len;
  int err; /* up: -1 the file could not be read; down: ATTACH_E_* */
};

struct pipe {
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct slot sl[PIPE_SLOTS];
  int head, count, running, stop, err, inited;
  uint64_t off; /* up: the next offset the worker encrypts */
  uint8_t *pbuf; /* the worker's plaintext chunk (sodium_malloc) */
};

/* A mutex and its condition variable, both or neither. 0 or -1. */
static int mu_cv_init(pthread_mutex_t *mu, pthread_cond_t *cv) {
  if (pthread_mutex_init(mu, NULL) != 0) return -1;
  if (pthread_cond_init(cv, NULL) != 0) {
    pthread_mutex_destroy(mu);
    return -1;
  }
  return 0;
}

/* up: with the ring's buffers and the plaintext chunk (a download's ring
 * holds the answers' own payloads). */
static int pipe_init(struct pipe *p, int up) {
  int i;
  memset(p, 0, sizeof *p);
  if (mu_cv_init(&p->mu, &p->cv) != 0) return -1;
  p->inited = 1;
  if (!up) return 0;
  for (i = 0; i < PIPE_SLOTS; i++)
    if ((p->sl[i].base = malloc(SOTTO_NET_PUT_HEADROOM + ATTACH_UNIT)) == NULL) return -1;
    else
      p->sl[i].buf = p->sl[i].base + SOTTO_NET_PUT_HEADROOM;
  if ((p->pbuf = sodium_malloc(ATTACH_CHUNK)) == NULL) return -1;
  return 0;
}

/* After pipe_init (even a failed one, which leaves NULLs), with the worker stopped. */
static void pipe_free(struct pipe *p) {
  int i;
  if (!p->inited) return;
  for (i = 0; i < PIPE_SLOTS; i++) {
    free(p->sl[i].base);
    free(p->sl[i].owned);
  }
  if (p->pbuf) sodium_free(p->pbuf);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  memset(p, 0, sizeof *p);
}

static void pipe_stop(struct pipe *p) {
  if (!p->running) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  pthread_join(p->th, NULL);
  p->running = 0;
  p->stop = 0;
  p->head = p->count = 0;
}

static int pipe_start(struct pipe *p, void *(*fn)(void *), void *arg) {
  p->stop = 0;
  p->head = p->count = 0;
  p->err = 0;
  if (pthread_create(&p->th, NULL, fn, arg) != 0) return -1;
  p->running = 1;
  return 0;
}

/* ---- upload ------------------------------------------------------------------- */

struct inflight {
  uint32_t req_id;
  uint64_t off;
  size_t len;
};

struct up {
  struct sc_client *c;
  struct conn *k;
  const struct src *s;
  struct aead a;
  uint8_t id[ATTACH_ID_LEN];
  uint64_t csize, next, acked, hashed;
  struct digest h;
  struct inflight fl[ATTACH_WINDOW];
  int nfl;
  uint8_t *cbuf, *pbuf;
  struct cuts cuts;
  struct pipe p;
};

/* The upload's worker: encrypts units from p.off on, in order, into the
 * ring, and hashes each ciphertext byte once, in order. */
static void *up_worker(void *arg) {
  struct up *u = arg;
  struct pipe *p = &u->p;
  pthread_mutex_lock(&p->mu);
  while (!p->stop && p->off < u->csize) {
    struct slot *sl;
    uint64_t off = p->off;
    size_t len = (size_t)(u->csize - off < ATTACH_UNIT ? u->csize - off : ATTACH_UNIT);
    int err;
    while (!p->stop && p->count == PIPE_SLOTS) pthread_cond_wait(&p->cv, &p->mu);
    if (p->stop) break;
    sl = &p->sl[(p->head + p->count) % PIPE_SLOTS];
    pthread_mutex_unlock(&p->mu);
    err = encrypt_at(u->s, &u->a, off, len, sl->buf, p->pbuf);
    /* Every ciphertext byte is hashed once, in order (a resent unit is the
     * same bytes again). */
    if (!err && off == u->hashed) {
      digest_update(&u->h, sl->buf, len);
      u->hashed += len;
    }
    pthread_mutex_lock(&p->mu);
    sl->off = off;
    sl->len = len;
    sl->err = err;
    p->count++;
    p->off = off + len;
    pthread_cond_broadcast(&p->cv);
    if (err) break;
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* Writes the next PUT. 0, a net code (> 0) or -1 (the file could not be read). */
static int put_next(struct up *u) {
  size_t len = (size_t)(u->csize - u->next < ATTACH_UNIT ? u->csize - u->next : ATTACH_UNIT);
  struct slot *sl;
  struct pipe *p = &u->p;
  int rc;
  if (u->cuts.slow_ms > 0) {
    struct timespec ts = {u->cuts.slow_ms / 1000, (u->cuts.slow_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  /* The worker's next unit (it started at u->next: units come in order). */
  pthread_mutex_lock(&p->mu);
  while (p->count == 0) pthread_cond_wait(&p->cv, &p->mu);
  sl = &p->sl[p->head];
  pthread_mutex_unlock(&p->mu);
  if (sl->err || sl->off != u->next || sl->len != len) return -1;
  /* Headers written before the bytes, one TLS write, no copy; once written
   * the slot is free again. */
  rc = sotto_net_blob_put_inplace(u->k->net, u->id, u->next, sl->base, len, &u->fl[u->nfl].req_id);
  pthread_mutex_lock(&p->mu);
  p->head = (p->head + 1) % PIPE_SLOTS;
  p->count--;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  if (rc != 0) return rc;
  u->fl[u->nfl].off = u->next;
  u->fl[u->nfl].len = len;
  u->nfl++;
  u->next += len;
  return 0;
}

/* Waits for the oldest PUT's answer. 0, or the code (> 0 server or net, < 0 malformed). */
static int put_wait(struct up *u) {
  struct sotto_net_event ev;
  for (;;) {
    int rc = sotto_net_next_event(u->k->net, ATTACH_WAIT_MS, &ev);
    if (rc == 0) return SOTTO_NET_E_TIMEOUT;
    if (rc != 1) return rc < 0 ? SOTTO_NET_E_IO : rc;
    if (ev.kind == SOTTO_NET_EV_ANSWER && ev.req_id == u->fl[0].req_id) {
      uint64_t stored = 0;
      rc = ev.code ? ev.code : sotto__srv_parse_blob_stored(ev.payload, ev.payload_len, &stored);
      sotto_net_event_clear(&ev);
      if (rc) return rc;
      if (stored > u->acked) u->acked = stored;
      memmove(u->fl, u->fl + 1, (size_t)(u->nfl - 1) * sizeof u->fl[0]);
      u->nfl--;
      return 0;
    }
    /* CLOSE from the server ends the transfer; pushes meanwhile are left
     * for the next receive (the server keeps them until acknowledged). */
    rc = ev.kind == SOTTO_NET_EV_CLOSE ? (ev.code ? ev.code : SOTTO_NET_E_IO) : 0;
    sotto_net_event_clear(&ev);
    if (rc) return rc;
  }
}

/* After a dropped connection or a refused offset: where the server is. */
static int resync(struct up *u) {
  struct sotto_srv_blob_req m;
  struct sotto_srv_blob_stat st;
  struct sotto_net_event ans;
  int rc;
  memset(&m, 0, sizeof m);
  m.id = u->id;
  rc = sotto_net_blob(u->k->net, SOTTO_SRV_BLOB_STAT, &m, &ans);
  if (rc == 0) rc = sotto__srv_parse_blob_stat(ans.payload, ans.payload_len, &st);
  sotto_net_event_clear(&ans);
  if (rc) return rc;
  if (st.size != u->csize || (st.stored % ATTACH_UNIT != 0 && st.stored != u->csize)) return SOTTO_ERR_MALFORMED;
  u->acked = u->next = st.stored;
  if (u->next > u->hashed) return SOTTO_ERR_MALFORMED; /* more than was ever sent */
  u->nfl = 0;
  return 0;
}

/* After a rerun found the upload record: where the server is (BLOB_STAT),
 * and the digest of the ciphertext before it computed again locally. 0, 1
 * when the blob cannot be resumed (gone, or not what the record says: a new
 * upload), or a net code. */
static int resume(struct up *u) {
  struct sotto_srv_blob_req m;
  struct sotto_srv_blob_stat st;
  struct sotto_net_event ans;
  uint64_t off = 0;
  int rc;
  memset(&m, 0, sizeof m);
  m.id = u->id;
  rc = sotto_net_blob(u->k->net, SOTTO_SRV_BLOB_STAT, &m, &ans);
  if (rc == 0) rc = sotto__srv_parse_blob_stat(ans.payload, ans.payload_len, &st);
  sotto_net_event_clear(&ans);
  if (rc == SOTTO_SRV_E_BLOB_GONE || rc == SOTTO_ERR_MALFORMED) return 1;
  if (rc) return rc;
  if (st.size != u->csize || st.stored > u->csize || (st.stored % ATTACH_UNIT != 0 && st.stored != u->csize)) return 1;
  while (off < st.stored) {
    size_t len = (size_t)(st.stored - off < ATTACH_UNIT ? st.stored - off : ATTACH_UNIT);
    if (encrypt_at(u->s, &u->a, off, len, u->cbuf, u->pbuf)) return -1;
    digest_update(&u->h, u->cbuf, len);
    off += len;
  }
  u->hashed = u->acked = u->next = st.stored;
  return 0;
}

/* A transfer's 192 KiB buffers (each GET answer's payload, the connection's
 * read buffer as it grows to a whole frame) come from the heap and go back
 * to it, instead of glibc's default for blocks above 128 KiB: a fresh mmap
 * each, its pages faulted in and zeroed, unmapped when freed (perf of one
 * 256 MiB download: about 80 ms of page faults, zeroing and mmap calls on
 * the connection's thread). At most the window's and the ring's blocks
 * (a few MiB) stay with the process. */
static void heap_for_transfers(void) {
  static int done;
  if (done) return;
  done = 1;
  (void)mallopt(M_MMAP_THRESHOLD, 4 << 20);
  (void)mallopt(M_TRIM_THRESHOLD, 16 << 20);
}

/* Uploads s. With to (a file, not bytes in memory), an upload record is
 * kept so that a rerun resumes (key may then be replaced by the record's). */
static int upload(struct sc_client *c, struct conn *k, const struct src *s, uint8_t key[ATTACH_KEY_LEN],
                  uint16_t fetches, uint8_t id[ATTACH_ID_LEN], uint8_t digest[ATTACH_DIGEST_LEN], const char *to,
                  int *v2) {
  struct up u;
  struct sotto_srv_blob_req m;
  struct sotto_net_event ans;
  struct uprec r;
  uint64_t expires = 0;
  int rc, attempts = 0, have = 0;

  memset(&u, 0, sizeof u);
  u.c = c;
  u.k = k;
  u.s = s;
  u.csize = attach_cipher_size(s->size);
  cuts_load(&u.cuts);
  heap_for_transfers();
  if (sotto_net_max_frame(k->net) < ATTACH_UNIT + SOTTO_SRV_BLOB_ID_LEN + 8 + SOTTO_SRV_BODY_HDR)
    return sc__fail(c, SC_ERR_ATTACH_TOO_LARGE,
                    "the server's frame limit (max-frame %u) is below an attachment chunk (%d bytes): it takes no "
                    "attachments",
                    sotto_net_max_frame(k->net), ATTACH_UNIT + 64);
  if ((u.cbuf = malloc(ATTACH_UNIT)) == NULL || (u.pbuf = sodium_malloc(ATTACH_CHUNK)) == NULL) {
    free(u.cbuf);
    return sc__fail(c, SC_ERR_NOMEM, "out of memory for the upload");
  }
  memset(&r, 0, sizeof r);
  if (to && s->fd >= 0 && (have = uprec_load(c, to, s, fetches, &r)) < 0) {
    rc = sc__store_error(c, have);
    goto out;
  }
  if (have == 1) { /* the recorded upload goes on in its own format */
    memcpy(u.id, r.id, ATTACH_ID_LEN);
    memcpy(key, r.key, ATTACH_KEY_LEN);
    rc = digest_init(&u.h, r.v2) != 0 || aead_init(&u.a, r.v2, key, 1) != 0 ? -2 : resume(&u);
    if (rc == 0) *v2 = r.v2;
    if (rc == 1) { /* not resumable: a new upload */
      aead_free(&u.a);
      randombytes_buf(key, ATTACH_KEY_LEN);
      have = 0;
      rc = 0;
    }
    if (rc == -2) {
      rc = sc__fail(c, SC_ERR_NOMEM, "out of memory for the upload");
      goto out;
    } else if (rc == -1) {
      rc = sc__fail(c, SC_ERR_FILE, "the file changed or could not be read while it was sent: nothing was sent");
      goto out;
    } else if (rc) {
      rc = blob_error(c, k, rc, "resuming the upload");
      goto out;
    }
  }
  if (have != 1) {
    if (digest_init(&u.h, *v2) != 0 || aead_init(&u.a, *v2, key, 1) != 0) {
      rc = sc__fail(c, SC_ERR_NOMEM, "out of memory for the upload");
      goto out;
    }
    memset(&m, 0, sizeof m);
    m.size = u.csize;
    m.fetches = fetches;
    rc = sotto_net_blob(k->net, SOTTO_SRV_BLOB_CREATE, &m, &ans);
    if (rc == 0) rc = sotto__srv_parse_blob_created(ans.payload, ans.payload_len, u.id, &expires);
    sotto_net_event_clear(&ans);
    if (rc) {
      rc = blob_error(c, k, rc, "starting the upload");
      goto out;
    }
    if (to && s->fd >= 0) {
      memcpy(r.id, u.id, ATTACH_ID_LEN);
      memcpy(r.key, key, ATTACH_KEY_LEN);
      r.csize = u.csize;
      r.size = s->size;
      r.mtime_ns = s->mtime_ns;
      r.expires_ms = expires;
      r.fetches = fetches;
      r.v2 = *v2;
      if ((rc = uprec_save(c, to, s, &r)) != 0) goto out;
    }
  }
  if (pipe_init(&u.p, 1) != 0) {
    rc = sc__fail(c, SC_ERR_NOMEM, "out of memory for the upload");
    goto out;
  }
  while (u.acked < u.csize) {
    rc = 0;
    if (!u.p.running && u.next < u.csize) {
      u.p.off = u.next;
      if (pipe_start(&u.p, up_worker, &u) != 0) {
        rc = sc__fail(c, SC_ERR_NOMEM, "cannot start the upload's worker thread");
        goto out;
      }
    }
    while (rc == 0 && u.nfl < ATTACH_WINDOW && u.next < u.csize) rc = put_next(&u);
    if (rc == 0) rc = put_wait(&u);
    if (rc == 0) {
      cuts_check(&u.cuts, k, u.acked);
      continue;
    }
    /* Whatever comes next starts from an offset of its own: the worker stops. */
    pipe_stop(&u.p);
    if (rc == -1) {
      rc = sc__fail(c, SC_ERR_FILE, "the file changed or could not be read while it was sent: nothing was sent");
      goto out;
    }
    if (rc == SOTTO_SRV_E_STATE && attempts < ATTACH_RETRIES) { /* an offset the server did not expect */
      attempts++;
      if ((rc = resync(&u)) == 0) continue;
    }
    if (!transient(rc) || attempts >= ATTACH_RETRIES) {
      rc = blob_error(c, k, rc, "uploading the file");
      goto out;
    }
    /* Dropped: a new connection, and on from what the server has. */
    while (attempts < ATTACH_RETRIES) {
      attempts++;
      if ((rc = reconnect(c, k, attempts)) == 0 && (rc = resync(&u)) == 0) break;
      if (rc < 0 && rc != SOTTO_ERR_MALFORMED) goto out; /* recorded by conn_open */
    }
    if (rc) {
      rc = rc < 0 ? sc__fail(c, SC_ERR_PROTOCOL, "the server's account of the upload does not add up")
                  : blob_error(c, k, rc, "resuming the upload");
      goto out;
    }
  }
  pipe_stop(&u.p);
  memset(&m, 0, sizeof m);
  m.id = u.id;
  for (;;) {
    rc = sotto_net_blob(k->net, SOTTO_SRV_BLOB_COMMIT, &m, &ans);
    sotto_net_event_clear(&ans);
    if (rc == 0) break;
    /* Dropped between the last PUT's answer and the COMMIT: the bytes are
     * on the server, the COMMIT is asked again on a new connection. */
    if (!transient(rc) || attempts >= ATTACH_RETRIES) {
      rc = blob_error(c, k, rc, "finishing the upload");
      goto out;
    }
    attempts++;
    while ((rc = reconnect(c, k, attempts)) > 0 && attempts < ATTACH_RETRIES)
      attempts++;
    if (rc) { /* < 0: recorded by conn_open */
      if (rc > 0) rc = blob_error(c, k, rc, "finishing the upload");
      goto out;
    }
  }
  if (digest_final(&u.h, digest) != 0) {
    rc = sc__fail(c, SC_ERR_NOMEM, "the digest of the file could not be computed");
    goto out;
  }
  memcpy(id, u.id, ATTACH_ID_LEN);
out:
  pipe_stop(&u.p);
  pipe_free(&u.p);
  free(u.cbuf);
  sodium_free(u.pbuf);
  aead_free(&u.a);
  digest_free(&u.h);
  sodium_memzero(&r, sizeof r);
  return rc;
}

/* ---- sending ------------------------------------------------------------------- */

/* The fetches a file to user is created for: one per device its message
 * goes to, as the recipient's last verified device list says (fan-out,
 * deliver.c: a list under the account key we know, else device 1 alone).
 * Our own other devices get a transcript and fetch nothing. */
static uint16_t recipient_devices(struct sc_client *c, const char *user) {
  struct sotto_devlist *l = calloc(1, sizeof *l);
  struct contact who;
  unsigned n = 1;
  if (l && devices_list_of(c, user, l) == 1 && contact_load(c->st, user, &who) >= 0 && who.has_key &&
      sodium_memcmp(l->account_key, who.key, SOTTO_PUBKEY_LEN) == 0 && l->n > 1)
    n = l->n;
  free(l);
  return (uint16_t)(n > SOTTO_SRV_BLOB_MAX_FETCHES ? SOTTO_SRV_BLOB_MAX_FETCHES : n);
}

/* New uploads use format v2. Test hook (sotto-test only):
 * SOTTO_TEST_ATTACH_V1=1 sends format v1, as sotto did before, so that the
 * tests show such files are still received. */
static int send_format_v2(void) {
#ifdef SOTTO_TEST_HOOKS
  const char *v = getenv("SOTTO_TEST_ATTACH_V1");
  if (v && strcmp(v, "1") == 0) return 0;
#endif
  return 1;
}

static const char *guess_type(const char *name) {
  static const char *const map[][2] = {
      {".txt", "text/plain"},       {".md", "text/markdown"},    {".pdf", "application/pdf"},
      {".png", "image/png"},        {".jpg", "image/jpeg"},      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},        {".webp", "image/webp"},     {".mp4", "video/mp4"},
      {".mp3", "audio/mpeg"},       {".ogg", "audio/ogg"},       {".zip", "application/zip"},
      {".json", "application/json"}, {".html", "text/html"},    {".csv", "text/csv"},
  };
  const char *ext = strrchr(name, '.');
  size_t i;
  if (ext)
    for (i = 0; i < sizeof map / sizeof map[0]; i++)
      if (strcasecmp(ext, map[i][0]) == 0) return map[i][1];
  return "application/octet-stream";
}

static int log_sent(struct sc_client *c, const char *user, const char *name, uint64_t size, uint64_t ts,
                    const char *text, size_t len) {
  struct msg *m = calloc(1, sizeof *m);
  int rc;
  if (!m) return sc__fail(c, SC_ERR_NOMEM, "sent, but out of memory to log it");
  m->dir = MSG_EVENT;
  m->kind = SC_EV_ATTACHMENT;
  m->reason = SC_R_BY_US;
  snprintf(m->peer, sizeof m->peer, "%s", user);
  attach_safe_name(m->detail, (const uint8_t *)name, strlen(name));
  m->ts = ts;
  m->count = size;
  m->text = (char *)(text ? text : "");
  m->text_len = text ? len : 0;
  if ((rc = sc__begin(c)) || (rc = msglog_add(c->st, c->acct, m, 0)) || (rc = account_save(c->st, c->acct)) ||
      (rc = store_commit(c->st))) {
    store_rollback(c->st);
    free(m);
    return sc__store_error(c, rc);
  }
  msglog_emit(c, m);
  free(m);
  return 0;
}

/* The devices a 1:1 file's pointer goes to, by the lists recorded (at
 * least 1: the recipient's device 1): the recipient's listed devices and
 * our own other ones. A list that grew since is met by the blob's expiry. */
static uint16_t fetches_for(struct sc_client *c, const char *user) {
  struct sotto_devlist *l = calloc(1, sizeof *l);
  unsigned n = recipient_devices(c, user);
  if (!l) return (uint16_t)n;
  if (devices_list_of(c, c->acct->username, l) == 1)
    for (unsigned i = 0; i < l->n; i++)
      if (l->dev[i].device_id != c->acct->device_id) n++;
  free(l);
  return (uint16_t)(n > SOTTO_SRV_BLOB_MAX_FETCHES ? SOTTO_SRV_BLOB_MAX_FETCHES : n);
}

int attach_fanout_final(struct sc_client *c, struct conn *k, const struct content *ct, unsigned devices) {
  struct sotto_srv_blob_req m;
  struct sotto_net_event ans;
  uint16_t n = (uint16_t)(devices > SOTTO_SRV_BLOB_MAX_FETCHES ? SOTTO_SRV_BLOB_MAX_FETCHES : devices ? devices : 1);
  int rc, attempt;
  if (ct->kind != CONTENT_ATTACHMENT || c->att_fetches == 0 || n == c->att_fetches) return 0;
  memset(&m, 0, sizeof m);
  m.id = ct->att_id;
  m.fetches = n;
  for (attempt = 1;; attempt++) {
    rc = sotto_net_blob(k->net, SOTTO_SRV_BLOB_FETCHES, &m, &ans);
    sotto_net_event_clear(&ans);
    if (rc == 0) {
      c->att_fetches = n;
      return 0;
    }
    /* A server before BLOB_FETCHES closes the connection on it (an
     * unknown request is malformed): a new connection, and the pointer
     * goes as before (its blob counts the fetches declared at CREATE). */
    if (rc == SOTTO_SRV_E_MALFORMED) {
      c->att_fetches = n;
      return reconnect(c, k, 1);
    }
    if (!transient(rc) || attempt >= 3) return blob_error(c, k, rc, "counting the devices the file goes to");
    if ((rc = reconnect(c, k, attempt)) != 0) return rc;
  }
}

/* Test hook (sotto-test only): SOTTO_TEST_ATTACH_REPOINT=N sends a 1:1
 * file's pointer N more times (each a message of its own, the same blob),
 * as a hostile sender would to have one upload saved many times. */
static int repoint_count(void) {
#ifdef SOTTO_TEST_HOOKS
  const char *v = getenv("SOTTO_TEST_ATTACH_REPOINT");
  if (v && *v) {
    long n = strtol(v, NULL, 10);
    return n > 0 && n <= 16 ? (int)n : 0;
  }
#endif
  return 0;
}

/* Test hook (sotto-test only): SOTTO_TEST_ATTACH_HOLD=PATH: once a 1:1
 * file is uploaded, PATH.uploaded is created and the send waits (at most
 * 50 s) until PATH exists: a test links a device in between. */
static void hold_after_upload(void) {
#ifdef SOTTO_TEST_HOOKS
  const char *p = getenv("SOTTO_TEST_ATTACH_HOLD");
  char up[PATH_MAX];
  int i, fd;
  if (!p || !*p || snprintf(up, sizeof up, "%s.uploaded", p) >= (int)sizeof up) return;
  if ((fd = open(up, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) >= 0) close(fd);
  for (i = 0; i < 500 && access(p, F_OK) != 0; i++) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
#endif
}

int attach_send(struct sc_sent *out, struct sc_client *c, const char *user, int fd, const uint8_t *mem,
                uint64_t size, const char *name, const char *type, uint8_t flags, const char *text, size_t len,
                unsigned send_flags) {
  struct content ct;
  struct src s;
  uint8_t key[ATTACH_KEY_LEN], id[ATTACH_ID_LEN], digest[ATTACH_DIGEST_LEN];
  uint16_t fetches;
  int rc, opened = 0, v2 = send_format_v2();

  if (size > SC_ATTACH_MAX_SIZE)
    return sc__fail(c, SC_ERR_ATTACH_TOO_LARGE, "the file is larger than %llu bytes: sotto does not send it",
                    (unsigned long long)SC_ATTACH_MAX_SIZE);
  if (c->acct->username[0] && strcmp(user, c->acct->username) == 0)
    return sc__fail(c, SC_ERR_SELF, "you cannot send to yourself ('%s')", user);
  if ((rc = sc__acquire(c, &opened))) return rc;
  memset(&s, 0, sizeof s);
  s.fd = fd;
  s.mem = mem;
  s.size = size;
  if (fd >= 0) {
    struct stat st;
    if (fstat(fd, &st) != 0) {
      sc__release(c, opened);
      return sc__fail(c, SC_ERR_FILE, "cannot read the file: %s", strerror(errno));
    }
    s.dev = (uint64_t)st.st_dev;
    s.ino = (uint64_t)st.st_ino;
    s.mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec;
  }
  randombytes_buf(key, sizeof key);
  /* One fetch per device that gets the pointer: each device of the
   * recipient's verified list, and our own other devices (the sent
   * transcript). */
  fetches = fetches_for(c, user);
  rc = upload(c, &c->k, &s, key, fetches, id, digest, fd >= 0 ? user : NULL, &v2);
  if (rc == 0) {
    hold_after_upload();
    memset(&ct, 0, sizeof ct);
    ct.kind = CONTENT_ATTACHMENT;
    ct.ts = sc_now_ms();
    ct.att_id = id;
    ct.att_key = key;
    ct.att_digest = digest;
    ct.att_size = size;
    ct.att_chunk = ATTACH_CHUNK;
    ct.att_flags = (uint8_t)(flags | (v2 ? ATTACH_FLAG_V2 : 0));
    ct.att_type = (const uint8_t *)type;
    ct.att_type_len = strlen(type);
    ct.att_name = (const uint8_t *)name;
    ct.att_name_len = strlen(name);
    ct.text = (const uint8_t *)text;
    ct.text_len = text ? len : 0;
    c->flags = send_flags;
    /* The fan-out may find more (or fewer) devices than the lists recorded
     * said: deliver_pairwise sets the blob's fetches to the devices the
     * pointer goes to before it leaves (attach_fanout_final). */
    c->att_fetches = fetches;
    rc = deliver_pairwise(c, &c->k, user, &ct);
    for (int again = repoint_count(); rc == 0 && again > 0; again--) {
      ct.ts = sc_now_ms();
      rc = deliver_pairwise(c, &c->k, user, &ct);
    }
    c->att_fetches = 0;
    c->flags = 0;
    sodium_memzero(&ct, sizeof ct);
    /* Sent: a rerun is a new file. (Not sent: the record stays, and a
     * rerun sends the uploaded blob without uploading it again.) */
    if (rc == 0 && fd >= 0) (void)uprec_drop(c, user, &s);
  }
  sodium_memzero(key, sizeof key);
  sc__release(c, opened);
  if (rc) return rc;
  if (out) {
    memset(out, 0, sizeof *out);
    out->timestamp_ms = sc_now_ms();
    out->delivered = 1;
  }
  if (flags & ATTACH_FLAG_LONG_TEXT) return 0;
  return log_sent(c, user, name, size, out ? out->timestamp_ms : sc_now_ms(), text, len);
}

/* A file to a group: uploaded once (its blob kept until expiry: the server
 * cannot know how many member devices will fetch it, and they do not say
 * BLOB_DONE), its pointer in one SenderKeyMessage (content kind
 * GROUP_ATTACHMENT) to every member. group without its '#'. */
static int attach_send_group(struct sc_sent *out, struct sc_client *c, const char *group, int fd, uint64_t size,
                             const char *name, const char *type, const char *text, size_t len, unsigned send_flags) {
  struct content ct;
  struct src s;
  struct grp *g = NULL;
  struct msg *m = NULL;
  struct stat st;
  char to[GROUP_NAME_MAX + 2];
  uint8_t key[ATTACH_KEY_LEN], id[ATTACH_ID_LEN], digest[ATTACH_DIGEST_LEN];
  int rc, opened = 0, v2 = send_format_v2();

  if (size > SC_ATTACH_MAX_SIZE)
    return sc__fail(c, SC_ERR_ATTACH_TOO_LARGE, "the file is larger than %llu bytes: sotto does not send it",
                    (unsigned long long)SC_ATTACH_MAX_SIZE);
  if (fstat(fd, &st) != 0) return sc__fail(c, SC_ERR_FILE, "cannot read the file: %s", strerror(errno));
  if ((rc = sc__group_open(c, group, &g, &opened))) return rc;
  if (!(m = calloc(1, sizeof *m))) {
    rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  memset(&s, 0, sizeof s);
  s.fd = fd;
  s.size = size;
  s.dev = (uint64_t)st.st_dev;
  s.ino = (uint64_t)st.st_ino;
  s.mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec;
  snprintf(to, sizeof to, "#%s", g->name);
  randombytes_buf(key, sizeof key);
  c->flags = send_flags;
  if ((rc = upload(c, &c->k, &s, key, SOTTO_SRV_BLOB_MAX_FETCHES, id, digest, to, &v2)) != 0) goto out;
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_GROUP_ATTACHMENT;
  ct.ts = sc_now_ms();
  ct.att_id = id;
  ct.att_key = key;
  ct.att_digest = digest;
  ct.att_size = size;
  ct.att_chunk = ATTACH_CHUNK;
  ct.att_flags = v2 ? ATTACH_FLAG_V2 : 0;
  ct.att_type = (const uint8_t *)type;
  ct.att_type_len = strlen(type);
  ct.att_name = (const uint8_t *)name;
  ct.att_name_len = strlen(name);
  ct.text = (const uint8_t *)text;
  ct.text_len = text ? len : 0;
  /* Our history: the file sent to the group. */
  m->dir = MSG_EVENT;
  m->kind = SC_EV_ATTACHMENT;
  m->reason = SC_R_BY_US;
  snprintf(m->group, sizeof m->group, "%s", g->name);
  attach_safe_name(m->detail, (const uint8_t *)name, strlen(name));
  m->ts = ct.ts;
  m->count = size;
  m->text = (char *)(text ? text : "");
  m->text_len = text ? len : 0;
  rc = sc__group_send_content(out, c, g, &ct, m);
  sodium_memzero(&ct, sizeof ct);
  /* Sent (to some at least): a rerun is a new file. */
  if (rc == 0) {
    msglog_emit(c, m);
    (void)uprec_drop(c, to, &s);
  }
out:
  c->flags = 0;
  sodium_memzero(key, sizeof key);
  sc__release(c, opened);
  free(m);
  free(g);
  return rc;
}

/* Logs a long text as consecutive rows of at most SC_MAX_TEXT bytes, each
 * cut at a character's start (inside the caller's transaction). */
static int log_text_parts(struct sc_client *c, int dir, const char *peer, uint64_t ts, uint64_t sid,
                          uint64_t server_ts, const char *t, size_t n) {
  size_t off = 0;
  int rc = 0;
  while (off < n && !rc) {
    struct msg m;
    size_t k = n - off < SC_MAX_TEXT ? n - off : SC_MAX_TEXT;
    char *p;
    while (off + k < n && k > 1 && ((uint8_t)t[off + k] & 0xc0) == 0x80) k--;
    if ((p = malloc(k + 1)) == NULL) return STORE_E_IO;
    memcpy(p, t + off, k);
    p[k] = 0;
    memset(&m, 0, sizeof m);
    m.dir = (uint8_t)dir;
    snprintf(m.peer, sizeof m.peer, "%s", peer);
    m.ts = ts;
    m.server_id = sid;
    m.server_ts = server_ts;
    m.reason = dir == MSG_OUT ? SC_STATE_SENT : 0;
    m.text = p;
    m.text_len = k;
    rc = msglog_add(c->st, c->acct, &m, dir == MSG_IN);
    if (rc == 0 && dir == MSG_OUT) msglog_emit(c, &m);
    free(p);
    off += k;
  }
  return rc;
}

int attach_send_text(struct sc_sent *out, struct sc_client *c, const char *user, const char *text, size_t len,
                     unsigned flags) {
  int rc = attach_send(out, c, user, -1, (const uint8_t *)text, len, "message.txt", "text/plain; charset=utf-8",
                       ATTACH_FLAG_LONG_TEXT, NULL, 0, flags);
  if (rc) return rc;
  if ((rc = sc__begin(c)) ||
      (rc = log_text_parts(c, MSG_OUT, user, out ? out->timestamp_ms : sc_now_ms(), 0, 0, text, len)) ||
      (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  return 0;
}

int sc_send_file(struct sc_sent *out, struct sc_client *c, const char *user, const char *path, const char *name,
                 const char *type, const char *text, size_t len, unsigned flags) {
  struct stat st;
  const char *base;
  char tbuf[SC_ATTACH_TYPE_MAX + 1];
  int fd, rc;
  size_t i;

  if (out) memset(out, 0, sizeof *out);
  if ((rc = sc__need_open(c))) return rc;
  if (user && user[0] == '#') {
    if (!sc_group_name_ok(user + 1))
      return sc__fail(c, SC_ERR_ARG, "'%s' is not a group name: 1-64 of A-Z a-z 0-9 _ . -", user + 1);
  } else if (!sc_username_ok(user)) {
    return sc__fail(c, SC_ERR_ARG, "'%s' is not a valid username", user ? user : "");
  }
  if (!path || !*path) return sc__fail(c, SC_ERR_ARG, "no file given");
  if (text && len > SC_MAX_TEXT)
    return sc__fail(c, SC_ERR_TOO_LARGE, "the caption is longer than %d bytes", SC_MAX_TEXT);
  base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  if (!name) name = base;
  if (!*name || strlen(name) > SC_ATTACH_NAME_MAX)
    return sc__fail(c, SC_ERR_ARG, "the file name must be 1 to %d bytes", SC_ATTACH_NAME_MAX);
  if (!type) type = guess_type(name);
  if (strlen(type) > SC_ATTACH_TYPE_MAX) return sc__fail(c, SC_ERR_ARG, "the content type is too long");
  for (i = 0; type[i]; i++)
    if (type[i] < 0x20 || type[i] > 0x7e) return sc__fail(c, SC_ERR_ARG, "the content type must be printable ASCII");
  snprintf(tbuf, sizeof tbuf, "%s", type);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
    return sc__fail(c, SC_ERR_FILE, "cannot open %s: %s", path, strerror(errno));
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return sc__fail(c, SC_ERR_FILE, "%s is not a regular file", path);
  }
  if (user[0] == '#')
    rc = attach_send_group(out, c, user + 1, fd, (uint64_t)st.st_size, name, tbuf, text, text ? len : 0, flags);
  else
    rc = attach_send(out, c, user, fd, NULL, (uint64_t)st.st_size, name, tbuf, 0, text, text ? len : 0, flags);
  close(fd);
  return rc;
}

/* ---- receiving: the pointer kept until its download ---------------------------- */

/* Inside the inbox's transaction: the decoded pointer and who sent it. */
int attach_arrived(struct sc_client *c, const char *sender, const struct content *ct, uint64_t sid) {
  struct rec_wr w;
  char name[64], seen[64], hex[2 * ATTACH_ID_LEN + 1];
  uint8_t *sv = NULL, when[8];
  size_t svl = 0;
  uint64_t now = sc_now_ms();
  int rc, i, have;
  const uint8_t *id = ct->att_id;
  struct content *inner = NULL;
  /* our own file sent 1:1 from another device: its pointer is in the
   * transcript */
  if (ct->kind == CONTENT_TRANSCRIPT) {
    if ((inner = calloc(1, sizeof *inner)) == NULL) return STORE_E_IO;
    id = content_decode(inner, ct->inner, ct->inner_len) == 0 && CONTENT_IS_ATTACHMENT(inner->kind) ? inner->att_id
                                                                                                 : NULL;
  }
  have = id != NULL;
  if (have) {
    sodium_bin2hex(hex, sizeof hex, id, ATTACH_ID_LEN);
    snprintf(seen, sizeof seen, ATTACH_SEEN "%s", hex);
  }
  if (inner) {
    sodium_memzero(inner, sizeof *inner); /* it held the file's key */
    free(inner);
  }
  if (have && (rc = store_get(c->st, seen, &sv, &svl)) < 0) return rc;
  if (have && rc == 1) { /* this blob's pointer came before: kept (or fetched) once */
    store_free_value(sv, svl);
    return 0;
  }
  for (i = 0; i < 8; i++) when[i] = (uint8_t)(now >> (56 - 8 * i));
  if (have && (rc = store_put(c->st, seen, when, sizeof when)) != 0) return rc;
  rec_wr_init(&w, 2 + SC_USER_MAX + 16 + SC_MAX_TEXT + 1024);
  rec_put_str16(&w, sender, strlen(sender));
  rec_put_u64(&w, sid);
  rec_put_u64(&w, c->env_server_ts);
  if (content_encode(&w, ct) != 0) {
    rec_wr_free(&w);
    return STORE_E_IO;
  }
  snprintf(name, sizeof name, ATTACH_PENDING "%020llu", (unsigned long long)sid);
  rc = store_put(c->st, name, w.p, w.len);
  rec_wr_free(&w);
  if (rc == 0) rc = store_put(c->st, ATTACH_ANY, (const uint8_t *)"\1", 1);
  if (rc == 0) c->attach_wanted = 1;
  return rc;
}

struct pending {
  char names[ATTACH_PENDING_MAX][40];
  size_t n;
};

static int pending_cb(void *ud, const char *name, const uint8_t *v, size_t len) {
  struct pending *p = ud;
  (void)v;
  (void)len;
  if (p->n < ATTACH_PENDING_MAX && strlen(name) < sizeof p->names[0]) snprintf(p->names[p->n++], 40, "%s", name);
  return 0;
}

/* ---- download ------------------------------------------------------------------ */

/* The file's writes on a thread of their own: the worker decrypts into one
 * of WRING_N plaintext buffers of ATTACH_WBUF bytes while the writer writes
 * the full ones. An O_DIRECT write returns when the device has the bytes:
 * in the worker's loop those waits (0.16-0.33 s of wall time per 256 MiB,
 * a third of the worker's) held up the decryption and, through the full
 * ring, the connection (docs/benchmarks.md "Attachments: where the time
 * goes"). Only authenticated plaintext is handed over (aead_open first),
 * in whole buffers; the writer touches nothing else of the download but
 * the file's descriptors. */
#define WRING_N 3

struct wring {
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint8_t *buf[WRING_N]; /* page-aligned (sodium_malloc of whole pages) */
  size_t len[WRING_N];
  uint64_t base[WRING_N];
  int head, count; /* the full buffers, oldest first; the worker fills (head + count) % WRING_N */
  int stop, err, inited, running;
};

struct down {
  struct sc_client *c;
  struct conn *k;
  const struct content *ct;
  uint64_t csize, next, done;
  struct digest h;
  struct aead a;
  struct inflight fl[ATTACH_WINDOW];
  int nfl, fd;
  int dfd;       /* the same file opened with O_DIRECT, or -1 where refused (the writer's) */
  uint8_t *pbuf; /* the worker's: plaintext not yet handed to the writer, wlen bytes for the file's offset wbase */
  size_t wlen;
  uint64_t wbase;
  struct wring w; /* full plaintext buffers on their way to the file */
  struct cuts cuts;
  struct pipe p;
  uint64_t recv; /* bytes answered and handed to the worker (done: the bytes it took) */
  int werrno;    /* the worker's errno with ATTACH_E_DISK */
  pthread_t hth; /* the hasher (down_hasher) */
  int hrunning;
  int wdone, hdone; /* p.mu: ring slots from p.head the worker, the hasher finished */
};

static int get_next(struct down *d) {
  struct sotto_srv_blob_req m;
  size_t len = (size_t)(d->csize - d->next < ATTACH_UNIT ? d->csize - d->next : ATTACH_UNIT);
  int rc;
  memset(&m, 0, sizeof m);
  m.id = d->ct->att_id;
  m.offset = d->next;
  m.max = (uint32_t)len;
  if ((rc = sotto_net_blob_async(d->k->net, SOTTO_SRV_BLOB_GET, &m, &d->fl[d->nfl].req_id)) != 0) return rc;
  d->fl[d->nfl].off = d->next;
  d->fl[d->nfl].len = len;
  d->nfl++;
  d->next += len;
  return 0;
}

/* Checks, decrypts and writes one GET's bytes. 0, ATTACH_E_TAMPERED or
 * ATTACH_E_DISK (errno set). */
enum { ATTACH_E_TAMPERED = -1000, ATTACH_E_DISK = -1001 };

/* The received file is written in units of ATTACH_WBUF from a page-aligned
 * buffer with O_DIRECT where the filesystem allows it: on the measured VM,
 * writing fresh page-cache pages cost several times the direct write of the
 * same bytes, and 64 KiB direct writes were slower than buffered ones
 * (docs/benchmarks.md "Attachments: O_DIRECT writes"). The unaligned end of
 * the file, and everything where O_DIRECT is refused, goes buffered; the
 * fsync at the end covers both. */
#define ATTACH_WBUF (16 * ATTACH_CHUNK)
#define ATTACH_ALIGN 4096u

static int pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off) {
  size_t w = 0;
  while (w < len) {
    ssize_t r = pwrite(fd, p + w, len - w, (off_t)(off + w));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EIO;
      return ATTACH_E_DISK;
    }
    w += (size_t)r;
  }
  return 0;
}

/* Writer thread: len bytes of buf at the file's offset base. */
static int write_plain(struct down *d, const uint8_t *buf, size_t len, uint64_t base) {
  size_t direct = d->dfd >= 0 ? len / ATTACH_ALIGN * ATTACH_ALIGN : 0, w = 0;
  while (w < direct) {
    ssize_t r = pwrite(d->dfd, buf + w, direct - w, (off_t)(base + w));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EINVAL && w == 0) { /* refused: buffered from now on */
      close(d->dfd);
      d->dfd = -1;
      break;
    }
    if (r <= 0) {
      if (r == 0) errno = EIO;
      return ATTACH_E_DISK;
    }
    w += (size_t)r;
    if (w % ATTACH_ALIGN) break; /* short and unaligned: the rest buffered */
  }
  return pwrite_all(d->fd, buf + w, len - w, base + w);
}

static void *writer_main(void *arg) {
  struct down *d = arg;
  struct wring *q = &d->w;
  pthread_mutex_lock(&q->mu);
  for (;;) {
    int i, err;
    while (!q->stop && q->count == 0) pthread_cond_wait(&q->cv, &q->mu);
    if (q->count == 0) break;
    i = q->head;
    err = q->err;
    pthread_mutex_unlock(&q->mu);
    if (!err && write_plain(d, q->buf[i], q->len[i], q->base[i]) != 0) err = errno ? errno : EIO;
    pthread_mutex_lock(&q->mu);
    if (err && !q->err) q->err = err;
    q->head = (q->head + 1) % WRING_N;
    q->count--;
    pthread_cond_broadcast(&q->cv);
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

/* Worker: hands the buffered plaintext to the writer and takes the next
 * free buffer (waits while all are full). 0, or ATTACH_E_DISK with errno. */
static int flush_plain(struct down *d) {
  struct wring *q = &d->w;
  int err;
  pthread_mutex_lock(&q->mu);
  if ((err = q->err) == 0) {
    int i = (q->head + q->count) % WRING_N;
    q->len[i] = d->wlen;
    q->base[i] = d->wbase;
    q->count++;
    pthread_cond_broadcast(&q->cv);
    while (!q->err && q->count == WRING_N) pthread_cond_wait(&q->cv, &q->mu);
    if ((err = q->err) == 0) d->pbuf = q->buf[(q->head + q->count) % WRING_N];
  }
  pthread_mutex_unlock(&q->mu);
  d->wbase += d->wlen;
  d->wlen = 0;
  if (err) {
    errno = err;
    return ATTACH_E_DISK;
  }
  return 0;
}

/* Waits until every full buffer is written; 0 or the writer's errno. */
static int wring_drain(struct wring *q) {
  int err;
  pthread_mutex_lock(&q->mu);
  while (!q->err && q->count > 0) pthread_cond_wait(&q->cv, &q->mu);
  err = q->err;
  pthread_mutex_unlock(&q->mu);
  return err;
}

static int wring_init(struct wring *q) {
  int i;
  memset(q, 0, sizeof *q);
  if (mu_cv_init(&q->mu, &q->cv) != 0) return -1;
  q->inited = 1;
  for (i = 0; i < WRING_N; i++)
    if ((q->buf[i] = sodium_malloc(ATTACH_WBUF)) == NULL) return -1;
  return 0;
}

/* The writer finishes the buffers it has (each a bounded write) and stops. */
static void wring_stop(struct wring *q) {
  if (!q->running) return;
  pthread_mutex_lock(&q->mu);
  q->stop = 1;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
  pthread_join(q->th, NULL);
  q->running = 0;
}

/* After wring_init (even a failed one), with the writer stopped. */
static void wring_free(struct wring *q) {
  int i;
  if (!q->inited) return;
  for (i = 0; i < WRING_N; i++)
    if (q->buf[i]) sodium_free(q->buf[i]);
  pthread_cond_destroy(&q->cv);
  pthread_mutex_destroy(&q->mu);
  memset(q, 0, sizeof *q);
}

/* Worker: checks, decrypts and hands to the writer one GET's bytes (the
 * hasher hashes them beside it). */
static int take(struct down *d, const uint8_t *p, size_t len) {
  uint64_t chunk = d->done / ATTACH_CCHUNK, last = n_chunks(d->ct->att_size) - 1;
  size_t off = 0;
  while (off < len) {
    size_t cn = len - off < ATTACH_CCHUNK ? len - off : ATTACH_CCHUNK, pn = cn - ATTACH_TAG;
    uint64_t want = chunk == last ? d->ct->att_size - chunk * ATTACH_CHUNK : ATTACH_CHUNK;
    if (cn != want + ATTACH_TAG) return ATTACH_E_TAMPERED;
    if (aead_open(&d->a, chunk, chunk == last, p + off, cn, d->pbuf + d->wlen) != 0) return ATTACH_E_TAMPERED;
    d->wlen += pn;
    if (d->wlen + ATTACH_CHUNK > ATTACH_WBUF || chunk == last) {
      int rc = flush_plain(d);
      if (rc) return rc;
    }
    off += cn;
    chunk++;
  }
  d->done += len;
  return 0;
}

/* Two threads drain the ring, each every answer once and in order: the
 * worker (decryption, then the writer) and the hasher (the SHA-256 of the
 * ciphertext, the largest single item: about 170 ms per 256 MiB here, which
 * the worker did before each answer's decryption, 230-250 ms of CPU in one
 * thread; docs/benchmarks.md "att9"). An answer's slot is free again once
 * both are done with it (p.mu held). */
static void ring_release(struct down *d) {
  struct pipe *p = &d->p;
  while (d->wdone > 0 && d->hdone > 0) {
    struct slot *sl = &p->sl[p->head];
    free(sl->owned);
    sl->owned = NULL;
    p->head = (p->head + 1) % PIPE_SLOTS;
    p->count--;
    d->wdone--;
    d->hdone--;
  }
  pthread_cond_broadcast(&p->cv);
}

/* One of the ring's two readers: takes every queued answer in order (its
 * position in *done) until stopped with none left (down_stop drains) and
 * gives it to step, which may fail the download (its errno kept); after a
 * failure the answers are only released. */
static void drain_ring(struct down *d, int *done, int (*step)(struct down *, const struct slot *)) {
  struct pipe *p = &d->p;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    const struct slot *sl;
    int err, e = 0;
    while (!p->stop && *done == p->count) pthread_cond_wait(&p->cv, &p->mu);
    if (*done == p->count) break;
    sl = &p->sl[(p->head + *done) % PIPE_SLOTS];
    err = p->err;
    pthread_mutex_unlock(&p->mu);
    if (!err && (err = step(d, sl)) != 0) e = errno;
    pthread_mutex_lock(&p->mu);
    if (err && !p->err) {
      p->err = err;
      d->werrno = e;
    }
    (*done)++;
    ring_release(d);
  }
  pthread_mutex_unlock(&p->mu);
}

static int worker_step(struct down *d, const struct slot *sl) { return take(d, sl->owned, sl->len); }

/* The answer's bytes into the digest (each once: a resumed download asks
 * from the bytes handed over, d->recv). Never fails. */
static int hasher_step(struct down *d, const struct slot *sl) {
  digest_update(&d->h, sl->owned, sl->len);
  return 0;
}

/* The download's worker (decryption, then the writer). */
static void *down_worker(void *arg) {
  struct down *d = arg;
  drain_ring(d, &d->wdone, worker_step);
  return NULL;
}

/* The hasher: the SHA-256 of every answer's ciphertext, in order. */
static void *down_hasher(void *arg) {
  struct down *d = arg;
  drain_ring(d, &d->hdone, hasher_step);
  return NULL;
}

/* Starts the worker and the hasher over an empty ring. 0 or -1. */
static int down_start(struct down *d) {
  d->wdone = d->hdone = 0;
  if (pipe_start(&d->p, down_worker, d) != 0) return -1;
  if (pthread_create(&d->hth, NULL, down_hasher, d) != 0) {
    pipe_stop(&d->p);
    return -1;
  }
  d->hrunning = 1;
  return 0;
}

/* Both drain the ring and stop. */
static void down_stop(struct down *d) {
  struct pipe *p = &d->p;
  if (!p->running) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  pthread_join(p->th, NULL);
  if (d->hrunning) pthread_join(d->hth, NULL);
  d->hrunning = 0;
  p->running = 0;
  p->stop = 0;
  p->head = p->count = 0;
  d->wdone = d->hdone = 0;
}

/* Hands one answer to the worker (waits for a free slot): the payload
 * (*b, malloc'd by the event) is taken over, not copied (*b is NULL then).
 * 0, or the worker's failure. */
static int hand_over(struct down *d, uint8_t **b, size_t len) {
  struct pipe *p = &d->p;
  struct slot *sl;
  int err;
  pthread_mutex_lock(&p->mu);
  while (!p->err && p->count == PIPE_SLOTS) pthread_cond_wait(&p->cv, &p->mu);
  if ((err = p->err) == 0) {
    sl = &p->sl[(p->head + p->count) % PIPE_SLOTS];
    sl->owned = *b;
    *b = NULL;
    sl->len = len;
    sl->off = d->recv;
    p->count++;
    d->recv += len;
    pthread_cond_broadcast(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
  return err;
}

static int worker_err(struct pipe *p) {
  int err;
  pthread_mutex_lock(&p->mu);
  err = p->err;
  pthread_mutex_unlock(&p->mu);
  return err;
}

static int get_wait(struct down *d) {
  struct sotto_net_event ev;
  for (;;) {
    int rc = sotto_net_next_event(d->k->net, ATTACH_WAIT_MS, &ev);
    if (rc == 0) return SOTTO_NET_E_TIMEOUT;
    if (rc != 1) return rc < 0 ? SOTTO_NET_E_IO : rc;
    if (ev.kind == SOTTO_NET_EV_ANSWER && ev.req_id == d->fl[0].req_id) {
      rc = ev.code;
      /* Exactly the bytes asked for: a server that answers short or long is lying. */
      if (rc == 0) rc = ev.payload_len == d->fl[0].len ? hand_over(d, &ev.payload, ev.payload_len) : ATTACH_E_TAMPERED;
      sotto_net_event_clear(&ev);
      if (rc) return rc;
      memmove(d->fl, d->fl + 1, (size_t)(d->nfl - 1) * sizeof d->fl[0]);
      d->nfl--;
      return 0;
    }
    rc = ev.kind == SOTTO_NET_EV_CLOSE ? (ev.code ? ev.code : SOTTO_NET_E_IO) : 0;
    sotto_net_event_clear(&ev);
    if (rc) return rc;
  }
}

static int simple(struct conn *k, uint8_t type, const uint8_t *id) {
  struct sotto_srv_blob_req m;
  struct sotto_net_event ans;
  int rc;
  memset(&m, 0, sizeof m);
  m.id = id;
  rc = sotto_net_blob(k->net, type, &m, &ans);
  sotto_net_event_clear(&ans);
  return rc;
}

/* Downloads ct into DIR/tmp (made here). 0, or the recorded SC_ERR_*. */
static int download(struct sc_client *c, struct conn *k, const struct content *ct, const char *tmp) {
  struct down d;
  uint8_t digest[ATTACH_DIGEST_LEN];
  int rc = 0, attempts = 0;

  memset(&d, 0, sizeof d);
  d.c = c;
  d.k = k;
  d.ct = ct;
  d.csize = attach_cipher_size(ct->att_size);
  cuts_load(&d.cuts);
  heap_for_transfers();
  if ((d.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
    return sc__fail(c, errno == ENOSPC ? SC_ERR_DISK_FULL : SC_ERR_FILE, "cannot create %s: %s", tmp, strerror(errno));
  d.dfd = open(tmp, O_WRONLY | O_DIRECT | O_CLOEXEC);
  /* The format the sender used (flags checked by content_decode). */
  if (wring_init(&d.w) != 0 || pipe_init(&d.p, 0) != 0 ||
      digest_init(&d.h, (ct->att_flags & ATTACH_FLAG_V2) != 0) != 0 ||
      aead_init(&d.a, (ct->att_flags & ATTACH_FLAG_V2) != 0, ct->att_key, 0) != 0) {
    close(d.fd);
    if (d.dfd >= 0) close(d.dfd);
    wring_free(&d.w);
    pipe_free(&d.p);
    digest_free(&d.h);
    aead_free(&d.a);
    (void)unlink(tmp);
    return sc__fail(c, SC_ERR_NOMEM, "out of memory for the download");
  }
  d.pbuf = d.w.buf[0];
  for (int i = 0; i < WRING_N; i++)
    if (d.dfd >= 0 && (uintptr_t)d.w.buf[i] % ATTACH_ALIGN != 0) { /* sodium_malloc of whole pages is page-aligned */
      close(d.dfd);
      d.dfd = -1;
    }
  if (pthread_create(&d.w.th, NULL, writer_main, &d) != 0) {
    rc = sc__fail(c, SC_ERR_NOMEM, "cannot start the download's writer thread");
    goto out;
  }
  d.w.running = 1;
  if (down_start(&d) != 0) {
    rc = sc__fail(c, SC_ERR_NOMEM, "cannot start the download's worker thread");
    goto out;
  }
  for (;;) {
    rc = 0;
    if (d.recv >= d.csize) {
      int werr;
      down_stop(&d); /* the rest taken */
      if (d.p.err == 0 && (werr = wring_drain(&d.w)) != 0) { /* the rest written */
        d.p.err = ATTACH_E_DISK;
        d.werrno = werr;
      }
      if ((rc = d.p.err) == 0) break;
    }
    while (rc == 0 && d.nfl < ATTACH_WINDOW && d.next < d.csize) rc = get_next(&d);
    if (rc == 0) rc = get_wait(&d);
    if (rc == 0) rc = worker_err(&d.p);
    if (rc == 0) {
      cuts_check(&d.cuts, k, d.recv);
      continue;
    }
    down_stop(&d);
    if (rc == ATTACH_E_TAMPERED || d.p.err == ATTACH_E_TAMPERED) {
      rc = sc__fail(c, SC_ERR_ATTACH_TAMPERED,
                    "the file's bytes on the server do not decrypt as the sender encrypted them (altered): nothing "
                    "was saved");
      goto out;
    }
    if (rc == ATTACH_E_DISK || d.p.err == ATTACH_E_DISK) {
      rc = sc__fail(c, d.werrno == ENOSPC || d.werrno == EDQUOT ? SC_ERR_DISK_FULL : SC_ERR_FILE,
                    "cannot write the file into the downloads directory: %s", strerror(d.werrno));
      goto out;
    }
    if (!transient(rc) || attempts >= ATTACH_RETRIES) {
      rc = blob_error(c, k, rc, "downloading a file");
      goto out;
    }
    /* Dropped: a new connection, and on from the bytes already taken. */
    while (attempts < ATTACH_RETRIES) {
      attempts++;
      if ((rc = reconnect(c, k, attempts)) == 0) break;
    }
    if (rc) goto out;
    d.nfl = 0;
    d.next = d.recv;
    if (down_start(&d) != 0) {
      rc = sc__fail(c, SC_ERR_NOMEM, "cannot start the download's worker thread");
      goto out;
    }
  }
  if (digest_final(&d.h, digest) != 0 || sodium_memcmp(digest, ct->att_digest, ATTACH_DIGEST_LEN) != 0) {
    rc = sc__fail(c, SC_ERR_ATTACH_TAMPERED,
                  "the file's digest does not match the one its sender sent (altered): nothing was saved");
    goto out;
  }
  if (fsync(d.fd) != 0) {
    rc = sc__fail(c, errno == ENOSPC ? SC_ERR_DISK_FULL : SC_ERR_FILE, "cannot write the file: %s", strerror(errno));
    goto out;
  }
out:
  down_stop(&d);
  wring_stop(&d.w);
  pipe_free(&d.p);
  wring_free(&d.w);
  close(d.fd);
  if (d.dfd >= 0) close(d.dfd);
  digest_free(&d.h);
  aead_free(&d.a);
  if (rc) (void)unlink(tmp);
  return rc;
}

/* Logs the attachment's outcome (inside a transaction of its own) and drops
 * its pending record. own: a file we sent from another device of ours
 * (sender is then the 1:1 conversation's peer, or our own name in a group),
 * logged as sent by us. */
static int finish(struct sc_client *c, const char *rec, const char *sender, uint64_t sid, uint64_t server_ts,
                  const struct content *ct, const char *saved, int err, int own) {
  struct msg *m = calloc(1, sizeof *m);
  int rc;
  if (!m) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  m->dir = MSG_EVENT;
  m->kind = SC_EV_ATTACHMENT;
  if (own) {
    m->reason = SC_R_BY_US;
    m->device = c->env_device ? c->env_device : 1; /* shown as from another device of ours */
  }
  snprintf(m->peer, sizeof m->peer, "%s", sender);
  if (ct->kind == CONTENT_GROUP_ATTACHMENT) { /* the group's local name, if we are still in it */
    struct grp *g = calloc(1, sizeof *g);
    if (g && grp_load(c->st, ct->gid, g) == 1) snprintf(m->group, sizeof m->group, "%s", g->name);
    free(g);
  }
  if (saved)
    snprintf(m->detail, sizeof m->detail, "%s", saved);
  else
    attach_safe_name(m->detail, ct->att_name, ct->att_name_len);
  m->ts = ct->ts;
  m->server_id = sid;
  m->server_ts = server_ts;
  m->count = ct->att_size;
  m->total = err ? (uint64_t)-err : 0;
  m->text = (char *)(ct->text_len ? (const char *)ct->text : "");
  m->text_len = ct->text_len;
  if ((rc = sc__begin(c)) || (rc = msglog_add(c->st, c->acct, m, 1)) || (rc = store_del(c->st, rec)) ||
      (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    free(m);
    return sc__store_error(c, rc);
  }
  free(m);
  return 0;
}

/* A long text that came as an attachment (at most ATTACH_LONG_TEXT_MAX
 * bytes, checked before the download): logged as its sender's text, in
 * parts of at most SC_MAX_TEXT. */
static int finish_text(struct sc_client *c, const char *rec, const char *sender, uint64_t sid, uint64_t server_ts,
                       const struct content *ct, const char *path, int own) {
  char *t = NULL;
  size_t n = 0;
  int rc, fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0 && (t = malloc(ATTACH_LONG_TEXT_MAX + 1)) != NULL) {
    ssize_t r;
    while (n < ATTACH_LONG_TEXT_MAX && (r = read(fd, t + n, ATTACH_LONG_TEXT_MAX - n)) > 0) n += (size_t)r;
  }
  if (fd >= 0) close(fd);
  if (!t) return sc__fail(c, SC_ERR_FILE, "cannot read the long text back");
  if ((rc = sc__begin(c)) || (rc = log_text_parts(c, own ? MSG_OUT : MSG_IN, sender, ct->ts, sid, server_ts, t, n)) ||
      (rc = store_del(c->st, rec)) || (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    free(t);
    return sc__store_error(c, rc);
  }
  free(t);
  return 0;
}

static int fetch_one(struct sc_client *c, struct conn *k, const char *rec) {
  struct content ct, tr;
  struct rec_rd r;
  int own = 0;
  const uint8_t *sender_p;
  size_t sender_len;
  uint64_t sid = 0, server_ts = 0;
  uint8_t *v = NULL;
  size_t len = 0;
  char sender[SC_USER_MAX + 1], dir[PATH_MAX], tmp[PATH_MAX + 64], safe[ATTACH_SAFE_MAX + 1],
      final[ATTACH_SAFE_MAX + 16], hex[2 * ATTACH_ID_LEN + 1];
  int rc, err = 0;

  if ((rc = store_get(c->st, rec, &v, &len)) < 0) return sc__store_error(c, rc);
  if (rc == 0) return 0;
  rec_rd_init(&r, v, len);
  /* A file we sent from another device of ours: in a group, its pointer
   * from our own name; 1:1, the sent transcript holding it (to whom). */
  if (rec_get_str16(&r, &sender_p, &sender_len, SC_USER_MAX) == 0 && rec_get_u64(&r, &sid) == 0 &&
      rec_get_u64(&r, &server_ts) == 0 && content_decode(&tr, v + r.r.off, len - r.r.off) == 0 &&
      sender_len == strlen(c->acct->username) && memcmp(sender_p, c->acct->username, sender_len) == 0) {
    if (tr.kind == CONTENT_TRANSCRIPT && content_decode(&ct, tr.inner, tr.inner_len) == 0 &&
        ct.kind == CONTENT_ATTACHMENT) {
      own = 1;
      sender_p = (const uint8_t *)tr.to;
      sender_len = strlen(tr.to);
    } else if (tr.kind == CONTENT_GROUP_ATTACHMENT) {
      own = 1;
      ct = tr;
    }
  }
  if (!own) rec_rd_init(&r, v, len);
  if (!own &&
      (rec_get_str16(&r, &sender_p, &sender_len, SC_USER_MAX) || rec_get_u64(&r, &sid) || rec_get_u64(&r, &server_ts) ||
       content_decode(&ct, v + r.r.off, len - r.r.off) != 0 || !CONTENT_IS_ATTACHMENT(ct.kind))) {
    store_free_value(v, len);
    if ((rc = sc__begin(c)) == 0 && (rc = store_del(c->st, rec)) == 0) rc = store_commit(c->st);
    if (rc) store_rollback(c->st);
    return rc ? sc__store_error(c, rc) : 0;
  }
  memcpy(sender, sender_p, sender_len);
  sender[sender_len] = 0;
  if (!own && ct.kind == CONTENT_ATTACHMENT) {
    /* A sender blocked since the pointer came: its file is not fetched. */
    int cs = convo_consent_get(c, sender);
    if (cs < 0) {
      store_free_value(v, len);
      return sc__store_error(c, cs);
    }
    if (cs == SC_CONSENT_BLOCKED) {
      store_free_value(v, len);
      if ((rc = sc__begin(c)) == 0 && (rc = store_del(c->st, rec)) == 0) rc = store_commit(c->st);
      if (rc) store_rollback(c->st);
      return rc ? sc__store_error(c, rc) : 0;
    }
  }
  /* A long text comes only 1:1 (it is logged as a 1:1 text); in a group
   * such a pointer is saved as the file it is. */
  if (ct.kind == CONTENT_GROUP_ATTACHMENT) ct.att_flags &= (uint8_t)~ATTACH_FLAG_LONG_TEXT;
  sc_downloads_dir(c, dir, sizeof dir);
  if (sc__make_dirs(dir) != 0) {
    store_free_value(v, len);
    return sc__fail(c, SC_ERR_FILE, "cannot create %s: %s", dir, strerror(errno));
  }
  sodium_bin2hex(hex, sizeof hex, ct.att_id, ATTACH_ID_LEN);
  snprintf(tmp, sizeof tmp, "%s/.sotto-part-%s", dir, hex);
  if ((ct.att_flags & ATTACH_FLAG_LONG_TEXT) && ct.att_size > ATTACH_LONG_TEXT_MAX) {
    err = sc__fail(c, SC_ERR_ATTACH_TOO_LARGE, "a long text from %s is larger than %d bytes: not fetched", sender,
                   ATTACH_LONG_TEXT_MAX);
  } else if ((rc = download(c, k, &ct, tmp)) != 0) {
    err = rc;
  }
  /* What may pass with time stays pending for the next receive. */
  if (err == SC_ERR_CONNECTION_LOST || err == SC_ERR_TIMEOUT || err == SC_ERR_UNREACHABLE ||
      err == SC_ERR_DISK_FULL || err == SC_ERR_RATE_LIMITED || err == SC_ERR_SHUTDOWN || err == SC_ERR_NOMEM ||
      err == SC_ERR_SERVER_BUSY) {
    store_free_value(v, len);
    return err;
  }
  if (!err) {
    if (ct.att_flags & ATTACH_FLAG_LONG_TEXT) {
      rc = finish_text(c, rec, sender, sid, server_ts, &ct, tmp, own);
      (void)unlink(tmp);
      if (rc == 0 && ct.kind == CONTENT_ATTACHMENT) (void)simple(k, SOTTO_SRV_BLOB_DONE, ct.att_id);
      store_free_value(v, len);
      return rc;
    }
    attach_safe_name(safe, ct.att_name, ct.att_name_len);
    if ((rc = place(dir, tmp, safe, final)) != 0) {
      (void)unlink(tmp);
      err = sc__fail(c, SC_ERR_FILE, "cannot save the file in %s: %s", dir, strerror(rc));
    } else {
      /* the file's name durable before the server may let the blob go */
      int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
      }
    }
  }
  rc = finish(c, rec, sender, sid, server_ts, &ct, err ? NULL : final, err, own);
  /* Saved and logged: the server may let it go (one fetch less). A group's
   * blob stays until it expires: the server cannot count the members'
   * devices. */
  if (rc == 0 && !err && ct.kind == CONTENT_ATTACHMENT) (void)simple(k, SOTTO_SRV_BLOB_DONE, ct.att_id);
  store_free_value(v, len);
  return rc;
}

/* The seen marks older than ATTACH_SEEN_KEEP_MS go (at most 256 a round). */
struct seen_old {
  char names[256][64];
  size_t n;
  uint64_t before;
};

static int seen_cb(void *ud, const char *name, const uint8_t *v, size_t len) {
  struct seen_old *o = ud;
  uint64_t t = 0;
  size_t i;
  if (len != 8) t = 0;
  else
    for (i = 0; i < 8; i++) t = t << 8 | v[i];
  if (t < o->before && o->n < 256 && strlen(name) < sizeof o->names[0]) snprintf(o->names[o->n++], 64, "%s", name);
  return 0;
}

static int seen_prune(struct sc_client *c) {
  struct seen_old *o = calloc(1, sizeof *o);
  size_t i;
  int rc;
  if (!o) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  o->before = sc_now_ms() - (uint64_t)ATTACH_SEEN_KEEP_MS;
  if ((rc = store_scan(c->st, ATTACH_SEEN, seen_cb, o)) >= 0 && o->n) {
    if ((rc = sc__begin(c)) == 0) {
      for (i = 0; rc == 0 && i < o->n; i++) rc = store_del(c->st, o->names[i]);
      if (rc == 0) rc = store_commit(c->st);
      if (rc) store_rollback(c->st);
    }
  }
  free(o);
  return rc < 0 ? sc__store_error(c, rc) : 0;
}

/* Inside a transaction: the pointers from user still waiting go (a request
 * deleted, a sender blocked). 0 or STORE_E_*. */
struct from_ctx {
  const char *user;
  char names[ATTACH_PENDING_MAX][40];
  size_t n;
};

static int from_cb(void *ud, const char *name, const uint8_t *v, size_t len) {
  struct from_ctx *f = ud;
  struct rec_rd r;
  const uint8_t *u;
  size_t ul;
  rec_rd_init(&r, v, len);
  if (rec_get_str16(&r, &u, &ul, SC_USER_MAX) == 0 && ul == strlen(f->user) && memcmp(u, f->user, ul) == 0 &&
      f->n < ATTACH_PENDING_MAX && strlen(name) < sizeof f->names[0])
    snprintf(f->names[f->n++], 40, "%s", name);
  return 0;
}

int attach_forget_from(struct sc_client *c, const char *user) {
  struct from_ctx *f = calloc(1, sizeof *f);
  size_t i;
  int rc;
  if (!f) return STORE_E_IO;
  f->user = user;
  rc = store_scan(c->st, ATTACH_PENDING, from_cb, f);
  for (i = 0; rc >= 0 && i < f->n; i++) rc = store_del(c->st, f->names[i]);
  free(f);
  return rc < 0 ? rc : 0;
}

int attach_fetch_pending(struct sc_client *c, struct conn *k) {
  struct pending *p = calloc(1, sizeof *p);
  size_t i;
  int rc;
  if (!p) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  c->attach_wanted = 0;
  c->attach_checked = 1; /* downloads left by an earlier process are found once */
  {
    uint8_t *v = NULL;
    size_t len = 0;
    if ((rc = store_get(c->st, ATTACH_ANY, &v, &len)) < 0) {
      free(p);
      return sc__store_error(c, rc);
    }
    if (v) store_free_value(v, len);
    if (rc == 0) { /* nothing pending: no scan of the store */
      free(p);
      return 0;
    }
  }
  if ((rc = store_scan(c->st, ATTACH_PENDING, pending_cb, p)) < 0) {
    free(p);
    return sc__store_error(c, rc);
  }
  for (i = 0; i < p->n; i++) {
    rc = fetch_one(c, k, p->names[i]);
    /* A failure that may pass (connection, disk) stops the round: the rest waits. */
    if (rc) break;
  }
  if (rc == 0) rc = seen_prune(c);
  /* All done (and none arrived meanwhile): the marker goes. */
  if (rc == 0 && p->n < ATTACH_PENDING_MAX) {
    if ((rc = sc__begin(c)) == 0 && (rc = store_del(c->st, ATTACH_ANY)) == 0) rc = store_commit(c->st);
    if (rc) {
      store_rollback(c->st);
      rc = sc__store_error(c, rc);
    }
  }
  free(p);
  return rc;
}

/* ---- listing ------------------------------------------------------------------- */

struct att_ctx {
  int (*cb)(void *ud, const struct sc_event *ev);
  void *ud;
};

static int att_cb(void *ud, const struct sc_event *ev) {
  struct att_ctx *x = ud;
  return ev->kind == SC_EV_ATTACHMENT ? x->cb(x->ud, ev) : 0;
}

int sc_attachments(struct sc_client *c, int (*cb)(void *ud, const struct sc_event *ev), void *ud) {
  struct att_ctx x = {cb, ud};
  return sc_history(c, NULL, att_cb, &x);
}
