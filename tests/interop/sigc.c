/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sigc.c: drives libsignal-protocol-c 2.3.3 behind the plain-bytes API of
 * sigc.h. TEST-ONLY, links GPLv3 code; see the note at the top of sigc.h.
 *
 * Layout of this file:
 *   1. crypto provider (OpenSSL 3 EVP + libsodium randomness), shared by all
 *      contexts and fetched once
 *   2. in-memory stores (one small linked list per store and user)
 *   3. users: context, recursive lock, store callbacks, identity
 *   4. pre-keys and bundles, pairwise sessions, groups
 *   5. stateless primitives on one shared internal context
 *
 * Reference counting rule used throughout: every object we create or receive
 * as "freshly allocated" from libsignal-c is released with SIGNAL_UNREF at the
 * single out: label of the function that obtained it; getters
 * (..._get_public, ciphertext_message_get_serialized, ...) return borrowed
 * pointers that are never released. SIGNAL_UNREF(NULL) is a no-op.
 */
#include "sigc.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <sodium.h>

#include <curve.h>
#include <fingerprint.h>
#include <group_cipher.h>
#include <group_session_builder.h>
#include <key_helper.h>
#include <protocol.h>
#include <ratchet.h>
#include <session_builder.h>
#include <session_cipher.h>
#include <session_pre_key.h>
#include <signal_protocol.h>

_Static_assert(SIGC_CIPHER_AES_CTR == SG_CIPHER_AES_CTR_NOPADDING, "cipher ids");
_Static_assert(SIGC_CIPHER_AES_CBC == SG_CIPHER_AES_CBC_PKCS5, "cipher ids");

#define AES_BLOCK 16
#define HMAC_SHA256_LEN 32
#define SHA512_LEN 64
#define FINGERPRINT_ITERATIONS 5200
#define FINGERPRINT_SCANNABLE_VERSION 1

/* ======================================================================== */
/* 1. Crypto provider                                                        */
/* ======================================================================== */

/*
 * OpenSSL 3 objects fetched once. Fetching EVP_MAC/EVP_MD/EVP_CIPHER on each
 * call costs more than the HMAC itself, and libsignal-c makes ~14 HMAC calls
 * per message, so the provider duplicates a template HMAC context that already
 * has its digest set. Read-only after initialisation, hence shareable between
 * threads and contexts.
 */
struct provider {
  EVP_MAC *mac;
  EVP_MAC_CTX *hmac_tmpl;
  EVP_MD *sha512;
  EVP_CIPHER *cbc[3]; /* AES-128/192/256-CBC (PKCS#7 padding) */
  EVP_CIPHER *ctr[3]; /* AES-128/192/256-CTR */
};

static struct provider g_prov;
static signal_crypto_provider g_sigprov;
static int g_init_ok;
static int g_debug;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Shared context for the stateless primitives (sign, verify, agree, fingerprint). */
static signal_context *g_ctx;
static pthread_mutex_t g_ctx_lock;

static int cipher_index(size_t key_len) {
  switch (key_len) {
  case 16:
    return 0;
  case 24:
    return 1;
  case 32:
    return 2;
  default:
    return -1;
  }
}

static const EVP_CIPHER *pick_cipher(const struct provider *p, int cipher, size_t key_len) {
  int i = cipher_index(key_len);
  if (i < 0) {
    return NULL;
  }
  if (cipher == SG_CIPHER_AES_CBC_PKCS5) {
    return p->cbc[i];
  }
  if (cipher == SG_CIPHER_AES_CTR_NOPADDING) {
    return p->ctr[i];
  }
  return NULL;
}

static int prov_random(uint8_t *data, size_t len, void *ud) {
  (void)ud;
  randombytes_buf(data, len);
  return 0;
}

/* HMAC-SHA256 context = a duplicate of the template, keyed here. */
static int prov_hmac_init(void **hctx, const uint8_t *key, size_t key_len, void *ud) {
  static const uint8_t zero_key[1] = {0};
  const struct provider *p = ud;
  EVP_MAC_CTX *c = EVP_MAC_CTX_dup(p->hmac_tmpl);

  if (c == NULL) {
    return SG_ERR_NOMEM;
  }
  /* OpenSSL reads a NULL key as "keep the previous key", which a fresh
   * context does not have. HMAC pads short keys with zeros, so one zero byte
   * is the same key as the empty one, whatever pointer came with length 0. */
  if (key_len == 0) {
    key = zero_key;
    key_len = sizeof(zero_key);
  }
  if (EVP_MAC_init(c, key, key_len, NULL) != 1) {
    EVP_MAC_CTX_free(c);
    return SIGC_ERR_CRYPTO;
  }
  *hctx = c;
  return 0;
}

static int prov_hmac_update(void *hctx, const uint8_t *data, size_t len, void *ud) {
  (void)ud;
  if (len == 0) {
    return 0;
  }
  return EVP_MAC_update(hctx, data, len) == 1 ? 0 : SIGC_ERR_CRYPTO;
}

/* The library owns *out (signal_buffer_free). */
static int prov_hmac_final(void *hctx, signal_buffer **out, void *ud) {
  uint8_t md[HMAC_SHA256_LEN];
  size_t n = 0;
  (void)ud;

  if (EVP_MAC_final(hctx, md, &n, sizeof(md)) != 1 || n != sizeof(md)) {
    return SIGC_ERR_CRYPTO;
  }
  *out = signal_buffer_create(md, n);
  sodium_memzero(md, sizeof(md));
  return *out ? 0 : SG_ERR_NOMEM;
}

static void prov_hmac_cleanup(void *hctx, void *ud) {
  (void)ud;
  EVP_MAC_CTX_free(hctx);
}

static int prov_sha512_init(void **dctx, void *ud) {
  const struct provider *p = ud;
  EVP_MD_CTX *c = EVP_MD_CTX_new();

  if (c == NULL) {
    return SG_ERR_NOMEM;
  }
  if (EVP_DigestInit_ex2(c, p->sha512, NULL) != 1) {
    EVP_MD_CTX_free(c);
    return SIGC_ERR_CRYPTO;
  }
  *dctx = c;
  return 0;
}

static int prov_sha512_update(void *dctx, const uint8_t *data, size_t len, void *ud) {
  (void)ud;
  if (len == 0) {
    return 0;
  }
  return EVP_DigestUpdate(dctx, data, len) == 1 ? 0 : SIGC_ERR_CRYPTO;
}

/* Finalises and re-initialises the context: the fingerprint code hashes
 * 5200 times on one context (header contract: "prepare the context for reuse"). */
static int prov_sha512_final(void *dctx, signal_buffer **out, void *ud) {
  const struct provider *p = ud;
  uint8_t md[SHA512_LEN];
  unsigned int n = 0;

  if (EVP_DigestFinal_ex(dctx, md, &n) != 1 || n != sizeof(md)) {
    return SIGC_ERR_CRYPTO;
  }
  if (EVP_DigestInit_ex2(dctx, p->sha512, NULL) != 1) {
    return SIGC_ERR_CRYPTO;
  }
  *out = signal_buffer_create(md, n);
  return *out ? 0 : SG_ERR_NOMEM;
}

static void prov_sha512_cleanup(void *dctx, void *ud) {
  (void)ud;
  EVP_MD_CTX_free(dctx);
}

/*
 * AES-CBC/PKCS#7 or AES-CTR encryption. The output length is known in advance
 * (CBC: next multiple of 16 strictly above pt_len; CTR: pt_len), so the
 * library-owned buffer is allocated at its final size.
 */
static int prov_encrypt(signal_buffer **out, int cipher, const uint8_t *key, size_t key_len,
                        const uint8_t *iv, size_t iv_len, const uint8_t *pt, size_t pt_len,
                        void *ud) {
  const EVP_CIPHER *c = pick_cipher(ud, cipher, key_len);
  EVP_CIPHER_CTX *x = NULL;
  signal_buffer *b = NULL;
  size_t want;
  int l1 = 0, l2 = 0, r = SIGC_ERR_CRYPTO;

  if (c == NULL || iv_len != AES_BLOCK || pt_len > (size_t)INT_MAX - 2 * AES_BLOCK) {
    return SG_ERR_INVAL;
  }
  want = cipher == SG_CIPHER_AES_CBC_PKCS5 ? (pt_len / AES_BLOCK + 1) * AES_BLOCK : pt_len;
  b = signal_buffer_alloc(want);
  x = EVP_CIPHER_CTX_new();
  if (b == NULL || x == NULL) {
    r = SG_ERR_NOMEM;
    goto out;
  }
  if (EVP_EncryptInit_ex2(x, c, key, iv, NULL) != 1) {
    goto out;
  }
  if (pt_len > 0 && EVP_EncryptUpdate(x, signal_buffer_data(b), &l1, pt, (int)pt_len) != 1) {
    goto out;
  }
  if (EVP_EncryptFinal_ex(x, signal_buffer_data(b) + l1, &l2) != 1) {
    goto out;
  }
  if ((size_t)l1 + (size_t)l2 != want) {
    goto out;
  }
  *out = b;
  b = NULL;
  r = 0;
out:
  EVP_CIPHER_CTX_free(x);
  signal_buffer_free(b);
  return r;
}

/*
 * Inverse of prov_encrypt. CBC ciphertexts must be a non-empty multiple of 16
 * bytes and end in valid PKCS#7 padding, else SIGC_ERR_CRYPTO. The plaintext
 * length is only known after the padding check, so it is decrypted into a
 * scratch buffer (wiped) and copied into the library-owned buffer.
 */
static int prov_decrypt(signal_buffer **out, int cipher, const uint8_t *key, size_t key_len,
                        const uint8_t *iv, size_t iv_len, const uint8_t *ct, size_t ct_len,
                        void *ud) {
  const EVP_CIPHER *c = pick_cipher(ud, cipher, key_len);
  EVP_CIPHER_CTX *x = NULL;
  uint8_t *tmp = NULL;
  size_t cap = ct_len + AES_BLOCK;
  int l1 = 0, l2 = 0, r = SIGC_ERR_CRYPTO;

  if (c == NULL || iv_len != AES_BLOCK || ct_len > (size_t)INT_MAX - 2 * AES_BLOCK) {
    return SG_ERR_INVAL;
  }
  if (cipher == SG_CIPHER_AES_CBC_PKCS5 && (ct_len == 0 || ct_len % AES_BLOCK != 0)) {
    return SIGC_ERR_CRYPTO;
  }
  tmp = malloc(cap);
  x = EVP_CIPHER_CTX_new();
  if (tmp == NULL || x == NULL) {
    r = SG_ERR_NOMEM;
    goto out;
  }
  if (EVP_DecryptInit_ex2(x, c, key, iv, NULL) != 1) {
    goto out;
  }
  if (ct_len > 0 && EVP_DecryptUpdate(x, tmp, &l1, ct, (int)ct_len) != 1) {
    goto out;
  }
  if (EVP_DecryptFinal_ex(x, tmp + l1, &l2) != 1) { /* bad padding */
    goto out;
  }
  *out = signal_buffer_create(tmp, (size_t)l1 + (size_t)l2);
  r = *out ? 0 : SG_ERR_NOMEM;
out:
  EVP_CIPHER_CTX_free(x);
  if (tmp != NULL) {
    sodium_memzero(tmp, cap);
    free(tmp);
  }
  return r;
}

static void lock_fn(void *ud) { pthread_mutex_lock(ud); }
static void unlock_fn(void *ud) { pthread_mutex_unlock(ud); }

static void log_fn(int level, const char *msg, size_t len, void *ud) {
  (void)ud;
  if (g_debug) {
    fprintf(stderr, "sigc: libsignal-c log %d: %.*s\n", level, (int)len, msg);
  }
}

static int init_recursive_mutex(pthread_mutex_t *m) {
  pthread_mutexattr_t at;
  int r;

  if (pthread_mutexattr_init(&at) != 0) {
    return -1;
  }
  r = pthread_mutexattr_settype(&at, PTHREAD_MUTEX_RECURSIVE);
  if (r == 0) {
    r = pthread_mutex_init(m, &at);
  }
  pthread_mutexattr_destroy(&at);
  return r == 0 ? 0 : -1;
}

/* Sets up provider, recursive lock and log function on a fresh context. */
static int setup_context(signal_context *ctx) {
  if (signal_context_set_crypto_provider(ctx, &g_sigprov) < 0) {
    return SIGC_ERR_CRYPTO;
  }
  if (signal_context_set_locking_functions(ctx, lock_fn, unlock_fn) < 0) {
    return SIGC_ERR_USAGE;
  }
  return signal_context_set_log_function(ctx, log_fn) < 0 ? SIGC_ERR_USAGE : 0;
}

/*
 * Runs once per process. The fetched objects and the shared context stay
 * reachable from these statics until exit (not a leak for LeakSanitizer);
 * tearing them down from atexit would race with OpenSSL's own atexit cleanup.
 */
static void init_once(void) {
  static const char *const cbc[3] = {"AES-128-CBC", "AES-192-CBC", "AES-256-CBC"};
  static const char *const ctr[3] = {"AES-128-CTR", "AES-192-CTR", "AES-256-CTR"};
  char digest[] = "SHA256";
  OSSL_PARAM params[2];
  int i;

  g_debug = getenv("SIGC_DEBUG") != NULL;
  if (sodium_init() < 0) {
    return;
  }
  g_prov.mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  g_prov.sha512 = EVP_MD_fetch(NULL, "SHA512", NULL);
  if (g_prov.mac == NULL || g_prov.sha512 == NULL) {
    return;
  }
  for (i = 0; i < 3; i++) {
    g_prov.cbc[i] = EVP_CIPHER_fetch(NULL, cbc[i], NULL);
    g_prov.ctr[i] = EVP_CIPHER_fetch(NULL, ctr[i], NULL);
    if (g_prov.cbc[i] == NULL || g_prov.ctr[i] == NULL) {
      return;
    }
  }
  g_prov.hmac_tmpl = EVP_MAC_CTX_new(g_prov.mac);
  if (g_prov.hmac_tmpl == NULL) {
    return;
  }
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
  params[1] = OSSL_PARAM_construct_end();
  if (EVP_MAC_CTX_set_params(g_prov.hmac_tmpl, params) != 1) {
    return;
  }

  g_sigprov.random_func = prov_random;
  g_sigprov.hmac_sha256_init_func = prov_hmac_init;
  g_sigprov.hmac_sha256_update_func = prov_hmac_update;
  g_sigprov.hmac_sha256_final_func = prov_hmac_final;
  g_sigprov.hmac_sha256_cleanup_func = prov_hmac_cleanup;
  g_sigprov.sha512_digest_init_func = prov_sha512_init;
  g_sigprov.sha512_digest_update_func = prov_sha512_update;
  g_sigprov.sha512_digest_final_func = prov_sha512_final;
  g_sigprov.sha512_digest_cleanup_func = prov_sha512_cleanup;
  g_sigprov.encrypt_func = prov_encrypt;
  g_sigprov.decrypt_func = prov_decrypt;
  g_sigprov.user_data = &g_prov;

  if (init_recursive_mutex(&g_ctx_lock) < 0) {
    return;
  }
  if (signal_context_create(&g_ctx, &g_ctx_lock) < 0) {
    g_ctx = NULL;
    return;
  }
  if (setup_context(g_ctx) < 0) {
    return;
  }
  g_init_ok = 1;
}

static int global_init(void) {
  if (pthread_once(&g_once, init_once) != 0 || !g_init_ok) {
    return SIGC_ERR_CRYPTO;
  }
  return 0;
}

/* ======================================================================== */
/* 2. In-memory stores                                                       */
/* ======================================================================== */

/*
 * One row of any store. The key is (group bytes, name bytes, num); unused
 * parts are empty/0: sessions and identities use (name, device), pre-keys
 * (num = id), sender keys (group, sender name, device). Names are byte
 * strings with a length, because libsignal-c passes them unterminated. The
 * store owns key copies and value; values may hold private keys and are wiped.
 * Lists stay short (a handful of peers per user), so a linear scan is fine.
 */
struct kv {
  struct kv *next;
  uint8_t *group;
  size_t group_len;
  uint8_t *name;
  size_t name_len;
  int64_t num;
  uint8_t *val;
  size_t val_len;
};

static int bytes_eq(const void *a, size_t a_len, const void *b, size_t b_len) {
  return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

static uint8_t *dup_bytes(const void *p, size_t len) {
  uint8_t *d = malloc(len ? len : 1);
  if (d != NULL && len > 0) {
    memcpy(d, p, len);
  }
  return d;
}

/* Returns the link that points at the matching row, or NULL. */
static struct kv **kv_find(struct kv **head, const void *group, size_t group_len,
                           const void *name, size_t name_len, int64_t num) {
  struct kv **pp;
  for (pp = head; *pp != NULL; pp = &(*pp)->next) {
    struct kv *e = *pp;
    if (e->num == num && bytes_eq(e->name, e->name_len, name, name_len) &&
        bytes_eq(e->group, e->group_len, group, group_len)) {
      return pp;
    }
  }
  return NULL;
}

static struct kv *kv_get(struct kv **head, const void *group, size_t group_len, const void *name,
                         size_t name_len, int64_t num) {
  struct kv **pp = kv_find(head, group, group_len, name, name_len, num);
  return pp ? *pp : NULL;
}

static void kv_free(struct kv *e) {
  if (e == NULL) {
    return;
  }
  if (e->val != NULL) {
    sodium_memzero(e->val, e->val_len);
  }
  free(e->val);
  free(e->group);
  free(e->name);
  free(e);
}

static void kv_free_all(struct kv **head) {
  while (*head != NULL) {
    struct kv *e = *head;
    *head = e->next;
    kv_free(e);
  }
}

/* Inserts or replaces; copies key and value. 0 or SG_ERR_NOMEM (store unchanged). */
static int kv_put(struct kv **head, const void *group, size_t group_len, const void *name,
                  size_t name_len, int64_t num, const uint8_t *val, size_t val_len) {
  struct kv *e = kv_get(head, group, group_len, name, name_len, num);
  uint8_t *v = dup_bytes(val, val_len);

  if (v == NULL) {
    return SG_ERR_NOMEM;
  }
  if (e != NULL) {
    sodium_memzero(e->val, e->val_len);
    free(e->val);
    e->val = v;
    e->val_len = val_len;
    return 0;
  }
  e = calloc(1, sizeof(*e));
  if (e == NULL) {
    free(v);
    return SG_ERR_NOMEM;
  }
  e->val = v;
  e->val_len = val_len;
  e->num = num;
  e->group = dup_bytes(group, group_len);
  e->group_len = group_len;
  e->name = dup_bytes(name, name_len);
  e->name_len = name_len;
  if (e->group == NULL || e->name == NULL) {
    kv_free(e);
    return SG_ERR_NOMEM;
  }
  e->next = *head;
  *head = e;
  return 0;
}

/* 1 if a row was removed, 0 if there was none. */
static int kv_del(struct kv **head, const void *group, size_t group_len, const void *name,
                  size_t name_len, int64_t num) {
  struct kv **pp = kv_find(head, group, group_len, name, name_len, num);
  struct kv *e;

  if (pp == NULL) {
    return 0;
  }
  e = *pp;
  *pp = e->next;
  kv_free(e);
  return 1;
}

/* Copies a value into a library-owned signal_buffer. */
static int to_signal_buffer(const struct kv *e, signal_buffer **out) {
  *out = signal_buffer_create(e->val, e->val_len);
  return *out ? 0 : SG_ERR_NOMEM;
}

/* Copies bytes into a caller-owned malloc'd buffer (at least 1 byte allocated). */
static int copy_out(const uint8_t *p, size_t len, uint8_t **out, size_t *out_len) {
  uint8_t *d = dup_bytes(p, len);
  if (d == NULL) {
    return SIGC_ERR_NOMEM;
  }
  *out = d;
  *out_len = len;
  return 0;
}

/* ======================================================================== */
/* 3. Users                                                                  */
/* ======================================================================== */

struct sigc_user {
  char *name;
  size_t name_len;
  uint32_t device_id;
  uint32_t registration_id;
  uint8_t id_pub[SIGC_PUB_LEN];
  uint8_t id_priv[SIGC_PRIV_LEN];
  pthread_mutex_t lock; /* recursive; the signal_context lock and ours */
  int lock_ready;
  signal_context *ctx;
  signal_protocol_store_context *store;
  ratchet_identity_key_pair *idkp; /* for signing pre-keys */
  struct kv *sessions;             /* (peer name, device) -> RecordStructure */
  struct kv *pre_keys;             /* id -> PreKeyRecordStructure */
  struct kv *signed_pre_keys;      /* id -> SignedPreKeyRecordStructure */
  struct kv *identities;           /* (peer name, device) -> 33-byte key */
  struct kv *sender_keys;          /* (group, sender, device) -> SenderKeyRecordStructure */
  struct kv *opk_archive;          /* id -> PreKeyRecordStructure, for sigc_restore_opk */
};

static signal_protocol_address make_addr(const char *peer, uint32_t device) {
  signal_protocol_address a;
  a.name = peer;
  a.name_len = strlen(peer);
  a.device_id = (int32_t)device;
  return a;
}

static signal_protocol_sender_key_name make_skn(const char *group, const char *sender,
                                                uint32_t device) {
  signal_protocol_sender_key_name n;
  n.group_id = group;
  n.group_id_len = strlen(group);
  n.sender = make_addr(sender, device);
  return n;
}

/* --- session store callbacks (user_data = struct sigc_user *) --- */

static int ss_load(signal_buffer **rec, signal_buffer **user_rec, const signal_protocol_address *a,
                   void *ud) {
  struct sigc_user *u = ud;
  struct kv *e = kv_get(&u->sessions, NULL, 0, a->name, a->name_len, a->device_id);
  (void)user_rec; /* we never store application data next to records */
  if (e == NULL) {
    return 0;
  }
  return to_signal_buffer(e, rec) < 0 ? SG_ERR_NOMEM : 1;
}

static int ss_sub_devices(signal_int_list **out, const char *name, size_t name_len, void *ud) {
  struct sigc_user *u = ud;
  signal_int_list *l = signal_int_list_alloc();
  struct kv *e;
  int n = 0;

  if (l == NULL) {
    return SG_ERR_NOMEM;
  }
  for (e = u->sessions; e != NULL; e = e->next) {
    if (bytes_eq(e->name, e->name_len, name, name_len)) {
      if (signal_int_list_push_back(l, (int)e->num) < 0) {
        signal_int_list_free(l);
        return SG_ERR_NOMEM;
      }
      n++;
    }
  }
  *out = l;
  return n;
}

static int ss_store(const signal_protocol_address *a, uint8_t *rec, size_t len, uint8_t *user_rec,
                    size_t user_len, void *ud) {
  struct sigc_user *u = ud;
  (void)user_rec;
  (void)user_len;
  return kv_put(&u->sessions, NULL, 0, a->name, a->name_len, a->device_id, rec, len);
}

static int ss_contains(const signal_protocol_address *a, void *ud) {
  struct sigc_user *u = ud;
  return kv_get(&u->sessions, NULL, 0, a->name, a->name_len, a->device_id) != NULL;
}

static int ss_delete(const signal_protocol_address *a, void *ud) {
  struct sigc_user *u = ud;
  return kv_del(&u->sessions, NULL, 0, a->name, a->name_len, a->device_id);
}

static int ss_delete_all(const char *name, size_t name_len, void *ud) {
  struct sigc_user *u = ud;
  struct kv **pp = &u->sessions;
  int n = 0;

  while (*pp != NULL) {
    struct kv *e = *pp;
    if (bytes_eq(e->name, e->name_len, name, name_len)) {
      *pp = e->next;
      kv_free(e);
      n++;
    } else {
      pp = &e->next;
    }
  }
  return n;
}

/* --- pre-key and signed pre-key store callbacks --- */

static int pk_load_from(struct kv **head, signal_buffer **rec, uint32_t id) {
  struct kv *e = kv_get(head, NULL, 0, NULL, 0, id);
  if (e == NULL) {
    return SG_ERR_INVALID_KEY_ID;
  }
  return to_signal_buffer(e, rec);
}

static int pk_load(signal_buffer **rec, uint32_t id, void *ud) {
  return pk_load_from(&((struct sigc_user *)ud)->pre_keys, rec, id);
}

static int pk_store(uint32_t id, uint8_t *rec, size_t len, void *ud) {
  return kv_put(&((struct sigc_user *)ud)->pre_keys, NULL, 0, NULL, 0, id, rec, len);
}

static int pk_contains(uint32_t id, void *ud) {
  return kv_get(&((struct sigc_user *)ud)->pre_keys, NULL, 0, NULL, 0, id) != NULL;
}

static int pk_remove(uint32_t id, void *ud) {
  kv_del(&((struct sigc_user *)ud)->pre_keys, NULL, 0, NULL, 0, id);
  return 0;
}

static int spk_load(signal_buffer **rec, uint32_t id, void *ud) {
  return pk_load_from(&((struct sigc_user *)ud)->signed_pre_keys, rec, id);
}

static int spk_store(uint32_t id, uint8_t *rec, size_t len, void *ud) {
  return kv_put(&((struct sigc_user *)ud)->signed_pre_keys, NULL, 0, NULL, 0, id, rec, len);
}

static int spk_contains(uint32_t id, void *ud) {
  return kv_get(&((struct sigc_user *)ud)->signed_pre_keys, NULL, 0, NULL, 0, id) != NULL;
}

static int spk_remove(uint32_t id, void *ud) {
  kv_del(&((struct sigc_user *)ud)->signed_pre_keys, NULL, 0, NULL, 0, id);
  return 0;
}

/* --- identity store callbacks --- */

static int id_get_pair(signal_buffer **pub, signal_buffer **priv, void *ud) {
  struct sigc_user *u = ud;
  *pub = signal_buffer_create(u->id_pub, sizeof(u->id_pub));
  *priv = signal_buffer_create(u->id_priv, sizeof(u->id_priv));
  if (*pub == NULL || *priv == NULL) {
    signal_buffer_free(*pub);
    signal_buffer_bzero_free(*priv);
    *pub = NULL;
    *priv = NULL;
    return SG_ERR_NOMEM;
  }
  return 0;
}

/* Note the argument order: user_data first, unlike every other callback. */
static int id_get_reg_id(void *ud, uint32_t *id) {
  *id = ((struct sigc_user *)ud)->registration_id;
  return 0;
}

static int id_save(const signal_protocol_address *a, uint8_t *key, size_t key_len, void *ud) {
  struct sigc_user *u = ud;
  if (key == NULL) {
    kv_del(&u->identities, NULL, 0, a->name, a->name_len, a->device_id);
    return 0;
  }
  return kv_put(&u->identities, NULL, 0, a->name, a->name_len, a->device_id, key, key_len);
}

/* Trust on first use: unknown address -> trusted; same key -> trusted; else not. */
static int id_is_trusted(const signal_protocol_address *a, uint8_t *key, size_t key_len,
                         void *ud) {
  struct sigc_user *u = ud;
  struct kv *e = kv_get(&u->identities, NULL, 0, a->name, a->name_len, a->device_id);
  if (e == NULL) {
    return 1;
  }
  return bytes_eq(e->val, e->val_len, key, key_len);
}

/* --- sender key store callbacks --- */

static int sk_store(const signal_protocol_sender_key_name *n, uint8_t *rec, size_t len,
                    uint8_t *user_rec, size_t user_len, void *ud) {
  struct sigc_user *u = ud;
  (void)user_rec;
  (void)user_len;
  return kv_put(&u->sender_keys, n->group_id, n->group_id_len, n->sender.name,
                n->sender.name_len, n->sender.device_id, rec, len);
}

static int sk_load(signal_buffer **rec, signal_buffer **user_rec,
                   const signal_protocol_sender_key_name *n, void *ud) {
  struct sigc_user *u = ud;
  struct kv *e = kv_get(&u->sender_keys, n->group_id, n->group_id_len, n->sender.name,
                        n->sender.name_len, n->sender.device_id);
  (void)user_rec;
  if (e == NULL) {
    return 0;
  }
  return to_signal_buffer(e, rec) < 0 ? SG_ERR_NOMEM : 1;
}

/* Allocates a user with context, lock and empty stores; identity not yet set. */
static struct sigc_user *user_alloc(const char *name, uint32_t device_id) {
  signal_protocol_session_store ss;
  signal_protocol_pre_key_store pks;
  signal_protocol_signed_pre_key_store spks;
  signal_protocol_identity_key_store ids;
  signal_protocol_sender_key_store sks;
  struct sigc_user *u;

  if (name == NULL || global_init() < 0) {
    return NULL;
  }
  u = calloc(1, sizeof(*u));
  if (u == NULL) {
    return NULL;
  }
  u->name_len = strlen(name);
  u->name = (char *)dup_bytes(name, u->name_len + 1);
  u->device_id = device_id;
  if (u->name == NULL || init_recursive_mutex(&u->lock) < 0) {
    goto fail;
  }
  u->lock_ready = 1;
  if (signal_context_create(&u->ctx, &u->lock) < 0) {
    u->ctx = NULL;
    goto fail;
  }
  if (setup_context(u->ctx) < 0) {
    goto fail;
  }
  if (signal_protocol_store_context_create(&u->store, u->ctx) < 0) {
    u->store = NULL;
    goto fail;
  }

  memset(&ss, 0, sizeof(ss));
  ss.load_session_func = ss_load;
  ss.get_sub_device_sessions_func = ss_sub_devices;
  ss.store_session_func = ss_store;
  ss.contains_session_func = ss_contains;
  ss.delete_session_func = ss_delete;
  ss.delete_all_sessions_func = ss_delete_all;
  ss.user_data = u;

  memset(&pks, 0, sizeof(pks));
  pks.load_pre_key = pk_load;
  pks.store_pre_key = pk_store;
  pks.contains_pre_key = pk_contains;
  pks.remove_pre_key = pk_remove;
  pks.user_data = u;

  memset(&spks, 0, sizeof(spks));
  spks.load_signed_pre_key = spk_load;
  spks.store_signed_pre_key = spk_store;
  spks.contains_signed_pre_key = spk_contains;
  spks.remove_signed_pre_key = spk_remove;
  spks.user_data = u;

  memset(&ids, 0, sizeof(ids));
  ids.get_identity_key_pair = id_get_pair;
  ids.get_local_registration_id = id_get_reg_id;
  ids.save_identity = id_save;
  ids.is_trusted_identity = id_is_trusted;
  ids.user_data = u;

  memset(&sks, 0, sizeof(sks));
  sks.store_sender_key = sk_store;
  sks.load_sender_key = sk_load;
  sks.user_data = u;

  /* destroy_func stays NULL: sigc_user_free releases the lists itself. */
  if (signal_protocol_store_context_set_session_store(u->store, &ss) < 0 ||
      signal_protocol_store_context_set_pre_key_store(u->store, &pks) < 0 ||
      signal_protocol_store_context_set_signed_pre_key_store(u->store, &spks) < 0 ||
      signal_protocol_store_context_set_identity_key_store(u->store, &ids) < 0 ||
      signal_protocol_store_context_set_sender_key_store(u->store, &sks) < 0) {
    goto fail;
  }
  return u;
fail:
  sigc_user_free(u);
  return NULL;
}

/* Serializes a public key to 33 bytes. */
static int pub_out(const ec_public_key *k, uint8_t out[SIGC_PUB_LEN]) {
  signal_buffer *b = NULL;
  int r = ec_public_key_serialize(&b, k);
  if (r < 0) {
    return r;
  }
  if (signal_buffer_len(b) != SIGC_PUB_LEN) {
    r = SG_ERR_INVALID_KEY;
  } else {
    memcpy(out, signal_buffer_data(b), SIGC_PUB_LEN);
  }
  signal_buffer_free(b);
  return r;
}

/* Serializes a private key to 32 raw bytes. */
static int priv_out(const ec_private_key *k, uint8_t out[SIGC_PRIV_LEN]) {
  signal_buffer *b = NULL;
  int r = ec_private_key_serialize(&b, k);
  if (r < 0) {
    return r;
  }
  if (signal_buffer_len(b) != SIGC_PRIV_LEN) {
    r = SG_ERR_INVALID_KEY;
  } else {
    memcpy(out, signal_buffer_data(b), SIGC_PRIV_LEN);
  }
  signal_buffer_bzero_free(b);
  return r;
}

struct sigc_user *sigc_user_new(const char *name, uint32_t device_id) {
  struct sigc_user *u = user_alloc(name, device_id);

  if (u == NULL) {
    return NULL;
  }
  if (signal_protocol_key_helper_generate_identity_key_pair(&u->idkp, u->ctx) < 0) {
    u->idkp = NULL;
    goto fail;
  }
  if (pub_out(ratchet_identity_key_pair_get_public(u->idkp), u->id_pub) < 0 ||
      priv_out(ratchet_identity_key_pair_get_private(u->idkp), u->id_priv) < 0) {
    goto fail;
  }
  if (signal_protocol_key_helper_generate_registration_id(&u->registration_id, 0, u->ctx) < 0) {
    goto fail;
  }
  return u;
fail:
  sigc_user_free(u);
  return NULL;
}

/*
 * The given public key must be the one derived from priv32 (checked with
 * libsignal-c's own scalar multiplication), so a mismatched pair cannot make
 * the harness sign with one key and advertise another.
 */
struct sigc_user *sigc_user_new_with_identity(const char *name, uint32_t device_id,
                                              const uint8_t pub33[33], const uint8_t priv32[32],
                                              uint32_t registration_id) {
  struct sigc_user *u = NULL;
  ec_public_key *pub = NULL, *derived = NULL;
  ec_private_key *priv = NULL;
  uint8_t derived33[SIGC_PUB_LEN];

  if (pub33 == NULL || priv32 == NULL) {
    return NULL;
  }
  u = user_alloc(name, device_id);
  if (u == NULL) {
    return NULL;
  }
  if (curve_decode_point(&pub, pub33, SIGC_PUB_LEN, u->ctx) < 0 ||
      curve_decode_private_point(&priv, priv32, SIGC_PRIV_LEN, u->ctx) < 0 ||
      curve_generate_public_key(&derived, priv) < 0 || pub_out(derived, derived33) < 0 ||
      memcmp(derived33, pub33, SIGC_PUB_LEN) != 0) {
    goto fail;
  }
  if (ratchet_identity_key_pair_create(&u->idkp, pub, priv) < 0) {
    u->idkp = NULL;
    goto fail;
  }
  memcpy(u->id_pub, pub33, SIGC_PUB_LEN);
  memcpy(u->id_priv, priv32, SIGC_PRIV_LEN);
  u->registration_id = registration_id;
  goto out;
fail:
  sigc_user_free(u);
  u = NULL;
out:
  SIGNAL_UNREF(pub);
  SIGNAL_UNREF(priv);
  SIGNAL_UNREF(derived);
  return u;
}

void sigc_user_free(struct sigc_user *u) {
  if (u == NULL) {
    return;
  }
  signal_protocol_store_context_destroy(u->store);
  SIGNAL_UNREF(u->idkp);
  signal_context_destroy(u->ctx);
  kv_free_all(&u->sessions);
  kv_free_all(&u->pre_keys);
  kv_free_all(&u->signed_pre_keys);
  kv_free_all(&u->identities);
  kv_free_all(&u->sender_keys);
  kv_free_all(&u->opk_archive);
  if (u->lock_ready) {
    pthread_mutex_destroy(&u->lock);
  }
  free(u->name);
  sodium_memzero(u, sizeof(*u));
  free(u);
}

void sigc_identity(const struct sigc_user *u, uint8_t pub33[33], uint8_t priv32[32]) {
  if (pub33 != NULL) {
    memcpy(pub33, u->id_pub, SIGC_PUB_LEN);
  }
  if (priv32 != NULL) {
    memcpy(priv32, u->id_priv, SIGC_PRIV_LEN);
  }
}

uint32_t sigc_registration_id(const struct sigc_user *u) { return u->registration_id; }
const char *sigc_user_name(const struct sigc_user *u) { return u->name; }
uint32_t sigc_device_id(const struct sigc_user *u) { return u->device_id; }

/* ======================================================================== */
/* 4. Pre-keys, sessions, groups                                             */
/* ======================================================================== */

/*
 * Signed pre-key via key_helper (signature by the identity key over the
 * 33-byte serialized SPK); one-time pre-key made directly so that its id is
 * exactly opk_id (key_helper_generate_pre_keys would remap ids). Both go to the
 * stores through libsignal-c's serializers; the OPK record is also archived
 * for sigc_restore_opk.
 */
int sigc_make_bundle(struct sigc_user *u, uint32_t spk_id, uint32_t opk_id,
                     struct sigc_bundle *out) {
  session_signed_pre_key *spk = NULL;
  session_pre_key *opk = NULL;
  ec_key_pair *opk_pair = NULL;
  signal_buffer *rec = NULL;
  uint64_t ts_ms;
  int r;

  if (u == NULL || out == NULL) {
    return SIGC_ERR_USAGE;
  }
  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&u->lock);
  ts_ms = (uint64_t)time(NULL) * 1000u;
  r = signal_protocol_key_helper_generate_signed_pre_key(&spk, u->idkp, spk_id, ts_ms, u->ctx);
  if (r < 0) {
    spk = NULL;
    goto out;
  }
  r = signal_protocol_signed_pre_key_store_key(u->store, spk);
  if (r < 0) {
    goto out;
  }
  r = pub_out(ec_key_pair_get_public(session_signed_pre_key_get_key_pair(spk)), out->spk);
  if (r < 0) {
    goto out;
  }
  if (session_signed_pre_key_get_signature_len(spk) != SIGC_SIG_LEN) {
    r = SG_ERR_UNKNOWN;
    goto out;
  }
  memcpy(out->spk_sig, session_signed_pre_key_get_signature(spk), SIGC_SIG_LEN);

  if (opk_id != 0) {
    r = curve_generate_key_pair(u->ctx, &opk_pair);
    if (r < 0) {
      opk_pair = NULL;
      goto out;
    }
    r = session_pre_key_create(&opk, opk_id, opk_pair);
    if (r < 0) {
      opk = NULL;
      goto out;
    }
    r = session_pre_key_serialize(&rec, opk);
    if (r < 0) {
      rec = NULL;
      goto out;
    }
    r = kv_put(&u->opk_archive, NULL, 0, NULL, 0, opk_id, signal_buffer_data(rec),
               signal_buffer_len(rec));
    if (r < 0) {
      goto out;
    }
    r = signal_protocol_pre_key_store_key(u->store, opk);
    if (r < 0) {
      goto out;
    }
    r = pub_out(ec_key_pair_get_public(opk_pair), out->opk);
    if (r < 0) {
      goto out;
    }
    out->has_opk = 1;
    out->opk_id = opk_id;
  }
  out->registration_id = u->registration_id;
  out->device_id = u->device_id;
  memcpy(out->identity, u->id_pub, SIGC_PUB_LEN);
  out->spk_id = spk_id;
  r = 0;
out:
  if (rec != NULL) {
    signal_buffer_bzero_free(rec);
  }
  SIGNAL_UNREF(opk);
  SIGNAL_UNREF(opk_pair);
  SIGNAL_UNREF(spk);
  pthread_mutex_unlock(&u->lock);
  if (r < 0) {
    memset(out, 0, sizeof(*out));
  }
  return r;
}

int sigc_restore_opk(struct sigc_user *u, uint32_t opk_id) {
  struct kv *e;
  int r;

  if (u == NULL) {
    return SIGC_ERR_USAGE;
  }
  pthread_mutex_lock(&u->lock);
  e = kv_get(&u->opk_archive, NULL, 0, NULL, 0, opk_id);
  r = e ? kv_put(&u->pre_keys, NULL, 0, NULL, 0, opk_id, e->val, e->val_len) : SIGC_ERR_NOT_FOUND;
  pthread_mutex_unlock(&u->lock);
  return r;
}

int sigc_has_opk(struct sigc_user *u, uint32_t opk_id) {
  int r;
  if (u == NULL) {
    return 0;
  }
  pthread_mutex_lock(&u->lock);
  r = kv_get(&u->pre_keys, NULL, 0, NULL, 0, opk_id) != NULL;
  pthread_mutex_unlock(&u->lock);
  return r;
}

/* Decodes the bundle's keys, builds a session_pre_key_bundle and processes it. */
int sigc_process_bundle(struct sigc_user *u, const char *peer, uint32_t peer_device,
                        const struct sigc_bundle *b) {
  ec_public_key *ik = NULL, *spk = NULL, *opk = NULL;
  session_pre_key_bundle *bundle = NULL;
  session_builder *builder = NULL;
  signal_protocol_address addr;
  int r;

  if (u == NULL || peer == NULL || b == NULL) {
    return SIGC_ERR_USAGE;
  }
  addr = make_addr(peer, peer_device);
  r = curve_decode_point(&ik, b->identity, SIGC_PUB_LEN, u->ctx);
  if (r < 0) {
    ik = NULL;
    goto out;
  }
  r = curve_decode_point(&spk, b->spk, SIGC_PUB_LEN, u->ctx);
  if (r < 0) {
    spk = NULL;
    goto out;
  }
  if (b->has_opk) {
    r = curve_decode_point(&opk, b->opk, SIGC_PUB_LEN, u->ctx);
    if (r < 0) {
      opk = NULL;
      goto out;
    }
  }
  r = session_pre_key_bundle_create(&bundle, b->registration_id, (int)b->device_id,
                                    b->has_opk ? b->opk_id : 0, opk, b->spk_id, spk, b->spk_sig,
                                    SIGC_SIG_LEN, ik);
  if (r < 0) {
    bundle = NULL;
    goto out;
  }
  /* The builder keeps a pointer to addr: it must (and does) outlive it. */
  r = session_builder_create(&builder, u->store, &addr, u->ctx);
  if (r < 0) {
    builder = NULL;
    goto out;
  }
  r = session_builder_process_pre_key_bundle(builder, bundle);
out:
  session_builder_free(builder);
  SIGNAL_UNREF(bundle);
  SIGNAL_UNREF(opk);
  SIGNAL_UNREF(spk);
  SIGNAL_UNREF(ik);
  return r < 0 ? r : 0;
}

/*
 * Holds the user lock across the session check and the encryption so that
 * the "no session" answer and the encrypt see the same store state.
 */
int sigc_encrypt(struct sigc_user *u, const char *peer, uint32_t peer_device, const uint8_t *pt,
                 size_t pt_len, int *type, uint8_t **out, size_t *out_len) {
  session_cipher *cipher = NULL;
  ciphertext_message *msg = NULL;
  signal_buffer *ser;
  signal_protocol_address addr;
  int r;

  if (u == NULL || peer == NULL || (pt == NULL && pt_len > 0) || type == NULL || out == NULL ||
      out_len == NULL) {
    return SIGC_ERR_USAGE;
  }
  *out = NULL;
  *out_len = 0;
  addr = make_addr(peer, peer_device);
  pthread_mutex_lock(&u->lock);
  if (!ss_contains(&addr, u)) {
    r = SG_ERR_NO_SESSION;
    goto out;
  }
  r = session_cipher_create(&cipher, u->store, &addr, u->ctx);
  if (r < 0) {
    cipher = NULL;
    goto out;
  }
  r = session_cipher_encrypt(cipher, pt, pt_len, &msg);
  if (r < 0) {
    msg = NULL;
    goto out;
  }
  ser = ciphertext_message_get_serialized(msg); /* borrowed */
  if (ser == NULL) {
    r = SG_ERR_UNKNOWN;
    goto out;
  }
  r = copy_out(signal_buffer_data(ser), signal_buffer_len(ser), out, out_len);
  if (r < 0) {
    goto out;
  }
  *type = ciphertext_message_get_type(msg);
out:
  SIGNAL_UNREF(msg);
  session_cipher_free(cipher);
  pthread_mutex_unlock(&u->lock);
  return r < 0 ? r : 0;
}

/* Hands a libsignal-owned plaintext buffer over to the caller, wiping the original. */
static int take_plaintext(signal_buffer *buf, uint8_t **pt, size_t *pt_len) {
  int r = copy_out(signal_buffer_data(buf), signal_buffer_len(buf), pt, pt_len);
  signal_buffer_bzero_free(buf);
  return r;
}

int sigc_decrypt(struct sigc_user *u, const char *peer, uint32_t peer_device, int type,
                 const uint8_t *msg, size_t msg_len, uint8_t **pt, size_t *pt_len) {
  session_cipher *cipher = NULL;
  pre_key_signal_message *pkm = NULL;
  signal_message *sm = NULL;
  signal_buffer *buf = NULL;
  signal_protocol_address addr;
  int r;

  if (u == NULL || peer == NULL || msg == NULL || pt == NULL || pt_len == NULL ||
      (type != SIGC_TYPE_SIGNAL && type != SIGC_TYPE_PREKEY)) {
    return SIGC_ERR_USAGE;
  }
  *pt = NULL;
  *pt_len = 0;
  addr = make_addr(peer, peer_device);
  pthread_mutex_lock(&u->lock);
  r = session_cipher_create(&cipher, u->store, &addr, u->ctx);
  if (r < 0) {
    cipher = NULL;
    goto out;
  }
  if (type == SIGC_TYPE_PREKEY) {
    r = pre_key_signal_message_deserialize(&pkm, msg, msg_len, u->ctx);
    if (r < 0) {
      pkm = NULL;
      goto out;
    }
    r = session_cipher_decrypt_pre_key_signal_message(cipher, pkm, NULL, &buf);
  } else {
    r = signal_message_deserialize(&sm, msg, msg_len, u->ctx);
    if (r < 0) {
      sm = NULL;
      goto out;
    }
    r = session_cipher_decrypt_signal_message(cipher, sm, NULL, &buf);
  }
  if (r < 0) {
    buf = NULL;
    goto out;
  }
  r = take_plaintext(buf, pt, pt_len);
out:
  SIGNAL_UNREF(pkm);
  SIGNAL_UNREF(sm);
  session_cipher_free(cipher);
  pthread_mutex_unlock(&u->lock);
  return r < 0 ? r : 0;
}

int sigc_has_session(struct sigc_user *u, const char *peer, uint32_t peer_device) {
  signal_protocol_address addr;
  int r;

  if (u == NULL || peer == NULL) {
    return 0;
  }
  addr = make_addr(peer, peer_device);
  pthread_mutex_lock(&u->lock);
  r = ss_contains(&addr, u);
  pthread_mutex_unlock(&u->lock);
  return r;
}

int sigc_delete_session(struct sigc_user *u, const char *peer, uint32_t peer_device) {
  signal_protocol_address addr;
  int r;

  if (u == NULL || peer == NULL) {
    return SIGC_ERR_USAGE;
  }
  addr = make_addr(peer, peer_device);
  pthread_mutex_lock(&u->lock);
  r = ss_delete(&addr, u);
  pthread_mutex_unlock(&u->lock);
  return r;
}

size_t sigc_session_record_size(struct sigc_user *u, const char *peer, uint32_t peer_device) {
  struct kv *e;
  size_t n;

  if (u == NULL || peer == NULL) {
    return 0;
  }
  pthread_mutex_lock(&u->lock);
  e = kv_get(&u->sessions, NULL, 0, peer, strlen(peer), (int32_t)peer_device);
  n = e ? e->val_len : 0;
  pthread_mutex_unlock(&u->lock);
  return n;
}

int sigc_session_snapshot(struct sigc_user *u, const char *peer, uint32_t peer_device,
                          uint8_t **rec, size_t *len) {
  struct kv *e;
  int r;

  if (u == NULL || peer == NULL || rec == NULL || len == NULL) {
    return SIGC_ERR_USAGE;
  }
  *rec = NULL;
  *len = 0;
  pthread_mutex_lock(&u->lock);
  e = kv_get(&u->sessions, NULL, 0, peer, strlen(peer), (int32_t)peer_device);
  r = e ? copy_out(e->val, e->val_len, rec, len) : SIGC_ERR_NOT_FOUND;
  pthread_mutex_unlock(&u->lock);
  return r;
}

int sigc_session_restore(struct sigc_user *u, const char *peer, uint32_t peer_device,
                         const uint8_t *rec, size_t len) {
  size_t name_len;
  int r;

  if (u == NULL || peer == NULL) {
    return SIGC_ERR_USAGE;
  }
  name_len = strlen(peer);
  pthread_mutex_lock(&u->lock);
  if (rec == NULL || len == 0) {
    kv_del(&u->sessions, NULL, 0, peer, name_len, (int32_t)peer_device);
    r = 0;
  } else {
    r = kv_put(&u->sessions, NULL, 0, peer, name_len, (int32_t)peer_device, rec, len);
  }
  pthread_mutex_unlock(&u->lock);
  return r;
}

int sigc_remote_identity(struct sigc_user *u, const char *peer, uint32_t peer_device,
                         uint8_t pub33[33]) {
  struct kv *e;
  int r = SIGC_ERR_NOT_FOUND;

  if (u == NULL || peer == NULL || pub33 == NULL) {
    return SIGC_ERR_USAGE;
  }
  pthread_mutex_lock(&u->lock);
  e = kv_get(&u->identities, NULL, 0, peer, strlen(peer), (int32_t)peer_device);
  if (e != NULL && e->val_len == SIGC_PUB_LEN) {
    memcpy(pub33, e->val, SIGC_PUB_LEN);
    r = 0;
  }
  pthread_mutex_unlock(&u->lock);
  return r;
}

int sigc_forget_identity(struct sigc_user *u, const char *peer, uint32_t peer_device) {
  int r;

  if (u == NULL || peer == NULL) {
    return SIGC_ERR_USAGE;
  }
  pthread_mutex_lock(&u->lock);
  r = kv_del(&u->identities, NULL, 0, peer, strlen(peer), (int32_t)peer_device);
  pthread_mutex_unlock(&u->lock);
  return r;
}

/* --- groups --- */

int sigc_group_create(struct sigc_user *u, const char *group, uint8_t **skdm, size_t *skdm_len) {
  group_session_builder *gb = NULL;
  sender_key_distribution_message *m = NULL;
  signal_protocol_sender_key_name skn;
  signal_buffer *ser;
  int r;

  if (u == NULL || group == NULL || skdm == NULL || skdm_len == NULL) {
    return SIGC_ERR_USAGE;
  }
  *skdm = NULL;
  *skdm_len = 0;
  skn = make_skn(group, u->name, u->device_id);
  r = group_session_builder_create(&gb, u->store, u->ctx);
  if (r < 0) {
    gb = NULL;
    goto out;
  }
  r = group_session_builder_create_session(gb, &m, &skn);
  if (r < 0) {
    m = NULL;
    goto out;
  }
  /* An SKDM is a ciphertext_message underneath (libsignal-c issue #77). */
  ser = ciphertext_message_get_serialized((ciphertext_message *)m);
  if (ser == NULL) {
    r = SG_ERR_UNKNOWN;
    goto out;
  }
  r = copy_out(signal_buffer_data(ser), signal_buffer_len(ser), skdm, skdm_len);
out:
  SIGNAL_UNREF(m);
  group_session_builder_free(gb);
  return r < 0 ? r : 0;
}

int sigc_group_process(struct sigc_user *u, const char *group, const char *sender,
                       uint32_t sender_device, const uint8_t *skdm, size_t skdm_len) {
  group_session_builder *gb = NULL;
  sender_key_distribution_message *m = NULL;
  signal_protocol_sender_key_name skn;
  int r;

  if (u == NULL || group == NULL || sender == NULL || skdm == NULL) {
    return SIGC_ERR_USAGE;
  }
  skn = make_skn(group, sender, sender_device);
  r = sender_key_distribution_message_deserialize(&m, skdm, skdm_len, u->ctx);
  if (r < 0) {
    m = NULL;
    goto out;
  }
  r = group_session_builder_create(&gb, u->store, u->ctx);
  if (r < 0) {
    gb = NULL;
    goto out;
  }
  r = group_session_builder_process_session(gb, &skn, m);
out:
  group_session_builder_free(gb);
  SIGNAL_UNREF(m);
  return r < 0 ? r : 0;
}

int sigc_group_encrypt(struct sigc_user *u, const char *group, const uint8_t *pt, size_t pt_len,
                       uint8_t **out, size_t *out_len) {
  group_cipher *gc = NULL;
  ciphertext_message *msg = NULL;
  signal_protocol_sender_key_name skn;
  signal_buffer *ser;
  int r;

  if (u == NULL || group == NULL || (pt == NULL && pt_len > 0) || out == NULL ||
      out_len == NULL) {
    return SIGC_ERR_USAGE;
  }
  *out = NULL;
  *out_len = 0;
  skn = make_skn(group, u->name, u->device_id);
  /* The cipher keeps a pointer to skn, which outlives it. */
  r = group_cipher_create(&gc, u->store, &skn, u->ctx);
  if (r < 0) {
    gc = NULL;
    goto out;
  }
  r = group_cipher_encrypt(gc, pt, pt_len, &msg);
  if (r < 0) {
    msg = NULL;
    goto out;
  }
  ser = ciphertext_message_get_serialized(msg);
  if (ser == NULL) {
    r = SG_ERR_UNKNOWN;
    goto out;
  }
  r = copy_out(signal_buffer_data(ser), signal_buffer_len(ser), out, out_len);
out:
  SIGNAL_UNREF(msg);
  group_cipher_free(gc);
  return r < 0 ? r : 0;
}

int sigc_group_decrypt(struct sigc_user *u, const char *group, const char *sender,
                       uint32_t sender_device, const uint8_t *msg, size_t msg_len, uint8_t **pt,
                       size_t *pt_len) {
  group_cipher *gc = NULL;
  sender_key_message *m = NULL;
  signal_buffer *buf = NULL;
  signal_protocol_sender_key_name skn;
  int r;

  if (u == NULL || group == NULL || sender == NULL || msg == NULL || pt == NULL ||
      pt_len == NULL) {
    return SIGC_ERR_USAGE;
  }
  *pt = NULL;
  *pt_len = 0;
  skn = make_skn(group, sender, sender_device);
  r = sender_key_message_deserialize(&m, msg, msg_len, u->ctx);
  if (r < 0) {
    m = NULL;
    goto out;
  }
  r = group_cipher_create(&gc, u->store, &skn, u->ctx);
  if (r < 0) {
    gc = NULL;
    goto out;
  }
  r = group_cipher_decrypt(gc, m, NULL, &buf);
  if (r < 0) {
    buf = NULL;
    goto out;
  }
  r = take_plaintext(buf, pt, pt_len);
out:
  group_cipher_free(gc);
  SIGNAL_UNREF(m);
  return r < 0 ? r : 0;
}

size_t sigc_group_record_size(struct sigc_user *u, const char *group, const char *sender,
                              uint32_t sender_device) {
  struct kv *e;
  size_t n;

  if (u == NULL || group == NULL || sender == NULL) {
    return 0;
  }
  pthread_mutex_lock(&u->lock);
  e = kv_get(&u->sender_keys, group, strlen(group), sender, strlen(sender),
             (int32_t)sender_device);
  n = e ? e->val_len : 0;
  pthread_mutex_unlock(&u->lock);
  return n;
}

/* ======================================================================== */
/* 5. Stateless primitives                                                   */
/* ======================================================================== */

int sigc_safety_number(const char *local_id, const uint8_t local_key[33], const char *remote_id,
                       const uint8_t remote_key[33], char out60[61], uint8_t **scannable,
                       size_t *scannable_len) {
  fingerprint_generator *gen = NULL;
  fingerprint *fp = NULL;
  ec_public_key *lk = NULL, *rk = NULL;
  signal_buffer *sc = NULL;
  const char *text;
  int r;

  if (local_id == NULL || local_key == NULL || remote_id == NULL || remote_key == NULL ||
      out60 == NULL || (scannable != NULL && scannable_len == NULL)) {
    return SIGC_ERR_USAGE;
  }
  out60[0] = '\0';
  if (scannable != NULL) {
    *scannable = NULL;
    *scannable_len = 0;
  }
  r = global_init();
  if (r < 0) {
    return r;
  }
  r = curve_decode_point(&lk, local_key, SIGC_PUB_LEN, g_ctx);
  if (r < 0) {
    lk = NULL;
    goto out;
  }
  r = curve_decode_point(&rk, remote_key, SIGC_PUB_LEN, g_ctx);
  if (r < 0) {
    rk = NULL;
    goto out;
  }
  r = fingerprint_generator_create(&gen, FINGERPRINT_ITERATIONS, FINGERPRINT_SCANNABLE_VERSION,
                                   g_ctx);
  if (r < 0) {
    gen = NULL;
    goto out;
  }
  r = fingerprint_generator_create_for(gen, local_id, lk, remote_id, rk, &fp);
  if (r < 0) {
    fp = NULL;
    goto out;
  }
  text = displayable_fingerprint_text(fingerprint_get_displayable(fp));
  if (text == NULL || strlen(text) != SIGC_SAFETY_DIGITS) {
    r = SG_ERR_UNKNOWN;
    goto out;
  }
  memcpy(out60, text, SIGC_SAFETY_DIGITS + 1);
  if (scannable != NULL) {
    r = scannable_fingerprint_serialize(&sc, fingerprint_get_scannable(fp));
    if (r < 0) {
      sc = NULL;
      goto out;
    }
    r = copy_out(signal_buffer_data(sc), signal_buffer_len(sc), scannable, scannable_len);
  }
out:
  signal_buffer_free(sc);
  SIGNAL_UNREF(fp);
  fingerprint_generator_free(gen);
  SIGNAL_UNREF(lk);
  SIGNAL_UNREF(rk);
  if (r < 0) {
    out60[0] = '\0';
  }
  return r < 0 ? r : 0;
}

int sigc_sign(const uint8_t priv32[32], const uint8_t *msg, size_t len, uint8_t sig[64]) {
  static const uint8_t empty[1] = {0};
  ec_private_key *k = NULL;
  signal_buffer *s = NULL;
  int r;

  if (priv32 == NULL || (msg == NULL && len > 0) || sig == NULL) {
    return SIGC_ERR_USAGE;
  }
  r = global_init();
  if (r < 0) {
    return r;
  }
  r = curve_decode_private_point(&k, priv32, SIGC_PRIV_LEN, g_ctx);
  if (r < 0) {
    k = NULL;
    goto out;
  }
  r = curve_calculate_signature(g_ctx, &s, k, msg ? msg : empty, len);
  if (r < 0) {
    s = NULL;
    goto out;
  }
  if (signal_buffer_len(s) != SIGC_SIG_LEN) {
    r = SG_ERR_UNKNOWN;
    goto out;
  }
  memcpy(sig, signal_buffer_data(s), SIGC_SIG_LEN);
out:
  signal_buffer_free(s);
  SIGNAL_UNREF(k);
  return r < 0 ? r : 0;
}

int sigc_verify(const uint8_t pub33[33], const uint8_t *msg, size_t len, const uint8_t sig[64]) {
  static const uint8_t empty[1] = {0};
  ec_public_key *k = NULL;
  int r;

  if (pub33 == NULL || (msg == NULL && len > 0) || sig == NULL) {
    return SIGC_ERR_USAGE;
  }
  r = global_init();
  if (r < 0) {
    return r;
  }
  r = curve_decode_point(&k, pub33, SIGC_PUB_LEN, g_ctx);
  if (r < 0) {
    return r;
  }
  /* curve_verify_signature: 1 = valid, 0 = invalid, <0 = bad length. */
  r = curve_verify_signature(k, msg ? msg : empty, len, sig, SIGC_SIG_LEN);
  SIGNAL_UNREF(k);
  if (r == 1) {
    return 0;
  }
  return r < 0 ? r : SIGC_ERR_BAD_SIGNATURE;
}

int sigc_agree(const uint8_t pub33[33], const uint8_t priv32[32], uint8_t out[32]) {
  ec_public_key *pub = NULL;
  ec_private_key *priv = NULL;
  uint8_t *shared = NULL;
  int r;

  if (pub33 == NULL || priv32 == NULL || out == NULL) {
    return SIGC_ERR_USAGE;
  }
  r = global_init();
  if (r < 0) {
    return r;
  }
  r = curve_decode_point(&pub, pub33, SIGC_PUB_LEN, g_ctx);
  if (r < 0) {
    pub = NULL;
    goto out;
  }
  r = curve_decode_private_point(&priv, priv32, SIGC_PRIV_LEN, g_ctx);
  if (r < 0) {
    priv = NULL;
    goto out;
  }
  /* Returns the shared secret length (32) and a malloc'd secret. */
  r = curve_calculate_agreement(&shared, pub, priv);
  if (r < 0) {
    shared = NULL;
    goto out;
  }
  if (r != 32) {
    r = SG_ERR_UNKNOWN;
    goto out;
  }
  memcpy(out, shared, 32);
  r = 0;
out:
  if (shared != NULL) {
    sodium_memzero(shared, 32);
    free(shared);
  }
  SIGNAL_UNREF(priv);
  SIGNAL_UNREF(pub);
  return r;
}

int sigc_keypair(uint8_t pub33[33], uint8_t priv32[32]) {
  ec_key_pair *kp = NULL;
  int r;

  if (pub33 == NULL || priv32 == NULL) {
    return SIGC_ERR_USAGE;
  }
  r = global_init();
  if (r < 0) {
    return r;
  }
  r = curve_generate_key_pair(g_ctx, &kp);
  if (r < 0) {
    return r;
  }
  r = pub_out(ec_key_pair_get_public(kp), pub33);
  if (r == 0) {
    r = priv_out(ec_key_pair_get_private(kp), priv32);
  }
  SIGNAL_UNREF(kp);
  return r;
}

int sigc_provider_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                              uint8_t out[32]) {
  void *h = NULL;
  signal_buffer *b = NULL;
  int r;

  if ((key == NULL && key_len > 0) || (msg == NULL && len > 0) || out == NULL) {
    return SIGC_ERR_USAGE;
  }
  r = global_init();
  if (r < 0) {
    return r;
  }
  r = g_sigprov.hmac_sha256_init_func(&h, key, key_len, g_sigprov.user_data);
  if (r < 0) {
    return r;
  }
  r = g_sigprov.hmac_sha256_update_func(h, msg, len, g_sigprov.user_data);
  if (r == 0) {
    r = g_sigprov.hmac_sha256_final_func(h, &b, g_sigprov.user_data);
  }
  if (r == 0) {
    memcpy(out, signal_buffer_data(b), HMAC_SHA256_LEN);
  }
  signal_buffer_free(b);
  g_sigprov.hmac_sha256_cleanup_func(h, g_sigprov.user_data);
  return r;
}

int sigc_provider_sha512(const uint8_t *msg, size_t len, uint8_t out[64]) {
  void *d = NULL;
  signal_buffer *b1 = NULL, *b2 = NULL;
  int r;

  if ((msg == NULL && len > 0) || out == NULL) {
    return SIGC_ERR_USAGE;
  }
  r = global_init();
  if (r < 0) {
    return r;
  }
  r = g_sigprov.sha512_digest_init_func(&d, g_sigprov.user_data);
  if (r < 0) {
    return r;
  }
  r = g_sigprov.sha512_digest_update_func(d, msg, len, g_sigprov.user_data);
  if (r == 0) {
    r = g_sigprov.sha512_digest_final_func(d, &b1, g_sigprov.user_data);
  }
  if (r == 0) {
    r = g_sigprov.sha512_digest_update_func(d, msg, len, g_sigprov.user_data);
  }
  if (r == 0) {
    r = g_sigprov.sha512_digest_final_func(d, &b2, g_sigprov.user_data);
  }
  if (r == 0) {
    r = memcmp(signal_buffer_data(b1), signal_buffer_data(b2), SHA512_LEN) == 0 ? 0
                                                                                : SIGC_ERR_CRYPTO;
  }
  if (r == 0) {
    memcpy(out, signal_buffer_data(b1), SHA512_LEN);
  }
  signal_buffer_free(b1);
  signal_buffer_free(b2);
  g_sigprov.sha512_digest_cleanup_func(d, g_sigprov.user_data);
  return r;
}

static int provider_cipher(int enc, int cipher, const uint8_t *key, size_t key_len,
                           const uint8_t iv[16], const uint8_t *in, size_t in_len, uint8_t **out,
                           size_t *out_len) {
  signal_buffer *b = NULL;
  int r;

  if (key == NULL || iv == NULL || (in == NULL && in_len > 0) || out == NULL || out_len == NULL) {
    return SIGC_ERR_USAGE;
  }
  *out = NULL;
  *out_len = 0;
  r = global_init();
  if (r < 0) {
    return r;
  }
  r = enc ? g_sigprov.encrypt_func(&b, cipher, key, key_len, iv, AES_BLOCK, in, in_len,
                                   g_sigprov.user_data)
          : g_sigprov.decrypt_func(&b, cipher, key, key_len, iv, AES_BLOCK, in, in_len,
                                   g_sigprov.user_data);
  if (r < 0) {
    return r;
  }
  r = copy_out(signal_buffer_data(b), signal_buffer_len(b), out, out_len);
  signal_buffer_bzero_free(b);
  return r;
}

int sigc_provider_encrypt(int cipher, const uint8_t *key, size_t key_len, const uint8_t iv[16],
                          const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len) {
  return provider_cipher(1, cipher, key, key_len, iv, in, in_len, out, out_len);
}

int sigc_provider_decrypt(int cipher, const uint8_t *key, size_t key_len, const uint8_t iv[16],
                          const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len) {
  return provider_cipher(0, cipher, key, key_len, iv, in, in_len, out, out_len);
}

const char *sigc_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
  case SG_ERR_NOMEM:
    return "SG_ERR_NOMEM: out of memory";
  case SG_ERR_INVAL:
    return "SG_ERR_INVAL: invalid argument";
  case SG_ERR_UNKNOWN:
    return "SG_ERR_UNKNOWN";
  case SG_ERR_DUPLICATE_MESSAGE:
    return "SG_ERR_DUPLICATE_MESSAGE";
  case SG_ERR_INVALID_KEY:
    return "SG_ERR_INVALID_KEY";
  case SG_ERR_INVALID_KEY_ID:
    return "SG_ERR_INVALID_KEY_ID";
  case SG_ERR_INVALID_MAC:
    return "SG_ERR_INVALID_MAC";
  case SG_ERR_INVALID_MESSAGE:
    return "SG_ERR_INVALID_MESSAGE";
  case SG_ERR_INVALID_VERSION:
    return "SG_ERR_INVALID_VERSION";
  case SG_ERR_LEGACY_MESSAGE:
    return "SG_ERR_LEGACY_MESSAGE";
  case SG_ERR_NO_SESSION:
    return "SG_ERR_NO_SESSION";
  case SG_ERR_STALE_KEY_EXCHANGE:
    return "SG_ERR_STALE_KEY_EXCHANGE";
  case SG_ERR_UNTRUSTED_IDENTITY:
    return "SG_ERR_UNTRUSTED_IDENTITY";
  case SG_ERR_VRF_SIG_VERIF_FAILED:
    return "SG_ERR_VRF_SIG_VERIF_FAILED";
  case SG_ERR_INVALID_PROTO_BUF:
    return "SG_ERR_INVALID_PROTO_BUF";
  case SG_ERR_FP_VERSION_MISMATCH:
    return "SG_ERR_FP_VERSION_MISMATCH";
  case SG_ERR_FP_IDENT_MISMATCH:
    return "SG_ERR_FP_IDENT_MISMATCH";
  case SIGC_ERR_USAGE:
    return "SIGC_ERR_USAGE: bad argument";
  case SIGC_ERR_NOT_FOUND:
    return "SIGC_ERR_NOT_FOUND";
  case SIGC_ERR_BAD_SIGNATURE:
    return "SIGC_ERR_BAD_SIGNATURE";
  case SIGC_ERR_CRYPTO:
    return "SIGC_ERR_CRYPTO: crypto provider failure";
  case SIGC_ERR_NOMEM:
    return "SIGC_ERR_NOMEM";
  default:
    return "unknown error";
  }
}
