/* SPDX-License-Identifier: Apache-2.0 */
/* client.c: struct sc_client, its store and account, registration and
 * devices (sotto_client.h). */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sodium.h>
#include <sotto/keys.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "backup.h"
#include "conn.h"
#include "devices.h"
#include "core.h"
#include "outbox.h"

int sc__fail(struct sc_client *c, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->errdetail, sizeof c->errdetail, fmt, ap);
  va_end(ap);
  c->err = code;
  return code;
}

int sc__store_error(struct sc_client *c, int rc) {
  switch (rc) {
    case 0:
      return 0;
    case STORE_E_BUSY:
      return sc__fail(c, SC_ERR_BUSY, "the local store in %s is busy (another sotto is writing); try again", c->home);
    case STORE_E_CORRUPT:
      return sc__fail(c, SC_ERR_STORE_CORRUPT, "the local store in %s is damaged (%s); nothing was changed", c->home,
                      c->st ? store_errmsg(c->st) : "?");
    default:
      return sc__fail(c, SC_ERR_STORE, "the local store in %s failed: %s", c->home, c->st ? store_errmsg(c->st) : "?");
  }
}

int sc__begin(struct sc_client *c) {
  struct account *fresh;
  int rc = store_begin(c->st);
  if (rc) return rc;
  if ((rc = account_load(c->st, &fresh)) != 0) {
    store_rollback(c->st);
    return rc;
  }
  account_free(c->acct);
  c->acct = fresh;
  return 0;
}

int sc__need_open(struct sc_client *c) {
  if (c->st && c->acct) return 0;
  return sc__fail(c, SC_ERR_NOT_OPEN, "the local store in %s is not open", c->home);
}

uint64_t sc_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t sc_monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t sc__now_s(void) {
#ifdef SOTTO_TEST_HOOKS
  const char *t = getenv("SOTTO_TEST_NOW");
  if (t && *t) {
    char *end;
    unsigned long long v = strtoull(t, &end, 10);
    if (!*end) return v;
  }
#endif
  return (uint64_t)time(NULL);
}

int sc_global_init(void) {
  if (sodium_init() < 0 || sotto_init() != 0) return SC_ERR_INTERNAL;
  return 0;
}

int sc_client_new(struct sc_client **out, const char *home) {
  struct sc_client *c;
  *out = NULL;
  if (!home || !home[0] || strlen(home) >= PATH_MAX - 32) return SC_ERR_ARG;
  if (sc_global_init()) return SC_ERR_INTERNAL;
  if (!(c = calloc(1, sizeof *c))) return SC_ERR_NOMEM;
  snprintf(c->home, sizeof c->home, "%s", home);
  c->keepalive_ms = 30000;
  c->hold_fd = -1;
  c->request_timeout_ms = CONN_REQUEST_TIMEOUT_MS;
  *out = c;
  return 0;
}

void sc_client_free(struct sc_client *c) {
  if (!c) return;
  sc_disconnect(c);
  linkdev_free(c);
  account_free(c->acct);
  store_close(c->st);
  if (c->hold_fd >= 0) close(c->hold_fd); /* releases the lock */
  sodium_memzero(c, sizeof *c);
  free(c);
}

void sc_set_sink(struct sc_client *c, sc_sink_fn fn, void *ud) {
  c->sink = fn;
  c->sink_ud = ud;
}

const char *sc_home(const struct sc_client *c) { return c->home; }
const char *sc_errdetail(const struct sc_client *c) { return c->err ? c->errdetail : ""; }
int sc_last_error(const struct sc_client *c) { return c->err; }

int sc_set_option(struct sc_client *c, int option, int64_t value) {
  switch (option) {
    case SC_OPT_AUTO_RECONNECT: c->auto_reconnect = value != 0; return 0;
    case SC_OPT_DEFER_SHOWN: c->defer_shown = value != 0; return 0;
    case SC_OPT_KEEPALIVE_MS:
      if (value < 1000 || value > 3600000) return sc__fail(c, SC_ERR_ARG, "keep-alive must be 1000..3600000 ms");
      c->keepalive_ms = (int)value;
      return 0;
    case SC_OPT_REQUEST_TIMEOUT_MS:
      if (value < 100 || value > 600000) return sc__fail(c, SC_ERR_ARG, "request timeout must be 100..600000 ms");
      c->request_timeout_ms = (int)value;
      if (c->connected && c->k.net) sotto_net_set_timeout(c->k.net, c->request_timeout_ms);
      return 0;
    default: return sc__fail(c, SC_ERR_ARG, "unknown option %d", option);
  }
}


/* ---- holding the home ------------------------------------------------------------ */

#define HOLDER_FILE "holder.lock"

/* SC_ERR_IN_USE (recorded) if another process holds the home, else 0. */
static int check_holder(struct sc_client *c) {
  char path[PATH_MAX + 16], who[160] = "";
  ssize_t n;
  int fd, rc = 0;
  if (c->hold_fd >= 0) return 0; /* we hold it */
  snprintf(path, sizeof path, "%s/%s", c->home, HOLDER_FILE);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) return 0;
  if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    size_t i;
    n = read(fd, who, sizeof who - 1);
    who[n > 0 ? n : 0] = 0;
    for (i = 0; who[i]; i++)
      if (who[i] == '\n' || (unsigned char)who[i] < 0x20) who[i] = who[i] == '\n' ? 0 : '?';
    rc = sc__fail(c, SC_ERR_IN_USE,
                  "%s is held by %s: stop it first, or talk to it (its socket) instead of opening the store",
                  c->home, who[0] ? who : "another sotto process");
  }
  close(fd);
  return rc;
}

int sc_home_in_use(struct sc_client *c) { return check_holder(c); }

int sc_hold_home(struct sc_client *c, const char *holder) {
  char path[PATH_MAX + 16], line[160];
  int fd, n;
  if (c->hold_fd >= 0) return 0;
  if (sc__make_dirs(c->home) != 0)
    return sc__fail(c, SC_ERR_HOME, "cannot create %s: %s", c->home, strerror(errno));
  snprintf(path, sizeof path, "%s/%s", c->home, HOLDER_FILE);
  if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
    return sc__fail(c, SC_ERR_HOME, "cannot create %s: %s", path, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return check_holder(c) ? c->err : sc__fail(c, SC_ERR_IN_USE, "%s is held by another sotto process", c->home);
  }
  n = snprintf(line, sizeof line, "%.100s (pid %ld)\n", holder && holder[0] ? holder : "a sotto process",
               (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n) {
    close(fd);
    return sc__fail(c, SC_ERR_HOME, "cannot write %s: %s", path, strerror(errno));
  }
  c->hold_fd = fd;
  return 0;
}

/* ---- store -------------------------------------------------------------------- */

int sc_store_exists(const struct sc_client *c) {
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/%s", c->home, STORE_FILE);
  return access(path, F_OK) == 0;
}

/* mkdir -p; what we create is mode 0700. */
int sc__make_dirs(const char *path) {
  char tmp[PATH_MAX];
  size_t i, n = strlen(path);
  if (n == 0 || n >= sizeof tmp) return -1;
  memcpy(tmp, path, n + 1);
  for (i = 1; i <= n; i++) {
    if (tmp[i] == '/' || tmp[i] == 0) {
      char save = tmp[i];
      tmp[i] = 0;
      if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
      tmp[i] = save;
    }
  }
  return 0;
}

static int check_pass(struct sc_client *c, const char *pass, size_t len) {
  if (!pass || len == 0) return sc__fail(c, SC_ERR_PASSPHRASE, "the passphrase is empty; choose a passphrase");
  if (len >= SC_MAX_PASSPHRASE)
    return sc__fail(c, SC_ERR_PASSPHRASE, "the passphrase is too long (at most %d bytes)", SC_MAX_PASSPHRASE - 1);
  return 0;
}

int sc_init(struct sc_client *c, uint32_t *registration_id, const char *pass, size_t pass_len) {
  char err[256] = "";
  int rc;
  if (c->st) return sc__fail(c, SC_ERR_EXISTS, "%s is already open", c->home);
  if ((rc = check_holder(c))) return rc;
  if ((rc = check_pass(c, pass, pass_len))) return rc;
  if ((rc = sc__strong_pass(c, pass, pass_len, "store passphrase"))) return rc;
  if (sc__make_dirs(c->home) != 0)
    return sc__fail(c, SC_ERR_HOME, "cannot create %s: %s; pass --home DIR with a writable directory", c->home,
                    strerror(errno));
  rc = store_create(&c->st, c->home, pass, pass_len, err, sizeof err);
  if (rc == STORE_E_EXISTS)
    return sc__fail(c, SC_ERR_EXISTS, "%s already holds a sotto identity; use --home DIR for another one", c->home);
  if (rc) return sc__fail(c, SC_ERR_STORE, "cannot create the local store in %s: %s", c->home, err);
  if (account_new(&c->acct) != 0) return sc__fail(c, SC_ERR_INTERNAL, "cannot generate the identity key");
  if (store_begin(c->st) || account_save(c->st, c->acct) || store_commit(c->st)) {
    store_rollback(c->st);
    return sc__store_error(c, STORE_E_IO);
  }
  if (registration_id) *registration_id = c->acct->id.registration_id;
  return 0;
}

int sc_open(struct sc_client *c, const char *pass, size_t pass_len) {
  char err[256] = "";
  int rc;
  if (c->st) return 0;
  if (!sc_store_exists(c))
    return sc__fail(c, SC_ERR_NOT_INITIALISED,
                    "no sotto identity in %s: run 'sotto init' first (or pass --home DIR)", c->home);
  if ((rc = check_holder(c))) return rc;
  if ((rc = check_pass(c, pass, pass_len))) return rc;
  rc = store_open(&c->st, c->home, pass, pass_len, err, sizeof err);
  switch (rc) {
    case 0:
      break;
    case STORE_E_PASS:
      return sc__fail(c, SC_ERR_WRONG_PASSPHRASE,
                      "wrong passphrase for the store in %s (nothing was changed); check SOTTO_PASSPHRASE or retype it",
                      c->home);
    case STORE_E_MISSING:
      return sc__fail(c, SC_ERR_NOT_INITIALISED, "no sotto identity in %s: run 'sotto init' first", c->home);
    case STORE_E_BUSY:
      return sc__fail(c, SC_ERR_BUSY, "the local store in %s is busy (another sotto is writing); try again", c->home);
    case STORE_E_ROLLBACK:
      return sc__fail(c, SC_ERR_ROLLBACK,
                      "the local store in %s was tampered with: %s. Someone with access to the file may be trying "
                      "to undo a verification or replay old keys; do not use this copy",
                      c->home, err);
    default:
      return sc__fail(c, SC_ERR_STORE, "cannot open the local store in %s: %s", c->home, err);
  }
  if ((rc = account_load(c->st, &c->acct)) != 0) {
    rc = sc__store_error(c, rc);
    store_close(c->st);
    c->st = NULL;
    return rc;
  }
  /* Disappearing messages that came due while no sotto ran (convo.c); a
   * failure here (a busy store) leaves them for the next run. */
  if (sc_expire(c)) {
    c->err = 0;
    c->errdetail[0] = 0;
  }
  return 0;
}

const char *sc_username(const struct sc_client *c) { return c->acct ? c->acct->username : ""; }
const char *sc_server(const struct sc_client *c) { return c->acct ? c->acct->server : ""; }
const char *sc_pin(const struct sc_client *c) { return c->acct ? c->acct->pin : ""; }
uint32_t sc_device_id(const struct sc_client *c) { return c->acct ? c->acct->device_id : 0; }
uint32_t sc_registration_id(const struct sc_client *c) { return c->acct ? c->acct->id.registration_id : 0; }

int sc_username_ok(const char *s) {
  size_t n, i;
  if (!s) return 0;
  n = strlen(s);
  if (n < SC_USER_MIN || n > SC_USER_MAX) return 0;
  for (i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.')) return 0;
  return 1;
}

/* ---- registration ---------------------------------------------------------------- */

int sc_probe_pin(char pin_hex[SC_PIN_HEX_LEN + 1], struct sc_client *c, const char *server) {
  char host[256], port[16];
  pin_hex[0] = 0;
  if (!server || strlen(server) >= ACCOUNT_MAX_SERVER || !conn_list_count(server))
    return sc__fail(c, SC_ERR_ARG, "--server must be HOST:PORT (or several, comma-separated: the nodes of one "
                                   "cluster), e.g. 127.0.0.1:7443");
  /* The nodes of a cluster share one TLS identity: the first that answers
   * shows it. */
  {
    size_t i, n = conn_list_count(server);
    int rc = SC_ERR_UNREACHABLE;
    for (i = 0; i < n; i++) {
      if (conn_list_nth(server, i, host, sizeof host, port, sizeof port) != 0) break;
      if ((rc = conn_probe_pin(c, host, port, pin_hex)) != SC_ERR_UNREACHABLE && rc != SC_ERR_TIMEOUT) break;
    }
    return rc;
  }
}

/* REGISTER, or RECOVER when code (the recovery code, 32 bytes on the
 * wire) is given. */
static int do_register(unsigned *n_ec, unsigned *n_kem, struct sc_client *c, const char *server, const char *user,
                       const char *pin, const char *ca, const uint8_t *code) {
  char host[256], port[16], capath[PATH_MAX] = "";
  uint8_t idblob[CONN_IDENTITY_BLOB_LEN];
  struct conn *k = &c->k;
  uint32_t ec_left, kem_left;
  int rc;

  if (n_ec) *n_ec = 0;
  if (n_kem) *n_kem = 0;
  if ((rc = sc__need_open(c))) return rc;
  if (!sc_username_ok(user))
    return sc__fail(c, SC_ERR_ARG, "'%s' is not a valid username: 3-32 characters of a-z 0-9 _ .", user ? user : "");
  if (!server || strlen(server) >= ACCOUNT_MAX_SERVER || !conn_list_count(server) ||
      conn_list_nth(server, 0, host, sizeof host, port, sizeof port) != 0)
    return sc__fail(c, SC_ERR_ARG, "--server must be HOST:PORT (or several, comma-separated: the nodes of one "
                                   "cluster), e.g. 127.0.0.1:7443");
  if ((pin && ca) || (!pin && !ca)) return sc__fail(c, SC_ERR_ARG, "give a CA file or a pin, not both");
  if (pin) {
    uint8_t bin[32];
    size_t bl;
    if (strlen(pin) != 64 || sodium_hex2bin(bin, sizeof bin, pin, 64, NULL, &bl, NULL) || bl != 32)
      return sc__fail(c, SC_ERR_ARG, "--pin must be the 64 hex digits 'sotto-server fingerprint' prints");
  }
  if (ca && !realpath(ca, capath)) return sc__fail(c, SC_ERR_CA, "cannot read the CA file %s; check the path", ca);
  if (c->acct->username[0])
    return sc__fail(c, SC_ERR_ALREADY_REGISTERED,
                    "this identity is already registered as '%s' on %s; use another --home", c->acct->username,
                    c->acct->server);
  sc_disconnect(c);
  snprintf(c->acct->server, sizeof c->acct->server, "%s", server);
  snprintf(c->acct->pin, sizeof c->acct->pin, "%s", ca ? "" : pin);
  snprintf(c->acct->ca, sizeof c->acct->ca, "%s", ca ? capath : "");
  memset(k, 0, sizeof *k);
  snprintf(k->host, sizeof k->host, "%s", host);
  snprintf(k->port, sizeof k->port, "%s", port);
  if (!(k->ctx = sotto_net_ctx_new(c->acct->pin[0] ? c->acct->pin : NULL, c->acct->pin[0] ? NULL : c->acct->ca)))
    return sc__fail(c, SC_ERR_TLS, "cannot set up TLS (is the CA file readable?)");
  if ((rc = conn_connect_list(c, k, server, 0)) != 0) goto net_fail;
  sotto_net_set_timeout(k->net, CONN_REQUEST_TIMEOUT_MS);
  conn_identity_blob(c, idblob);
  rc = code ? sotto_net_recover(k->net, user, code, idblob, sizeof idblob, &c->acct->device_id, c->acct->secret)
            : sotto_net_register(k->net, user, idblob, sizeof idblob, &c->acct->device_id, c->acct->secret);
  if (rc == SOTTO_SRV_E_RECOVERY) {
    conn_close(k);
    return sc__fail(c, SC_ERR_AUTH_FAILED,
                    "the server refused to recover '%s': no such account, or the recovery code is not the current "
                    "one (each code works once; an unregistered account cannot be recovered)",
                    user);
  }
  if (rc) goto net_fail;
  /* The credentials exist on the server now: keep them before anything else. */
  snprintf(c->acct->username, sizeof c->acct->username, "%s", user);
  if ((rc = store_begin(c->st)) || (rc = account_save(c->st, c->acct)) || (rc = conn_pinkey_del(c)) ||
      (rc = store_commit(c->st))) {
    store_rollback(c->st);
    conn_close(k);
    return sc__store_error(c, rc);
  }
  /* The pinned certificate's key, to follow a later certificate rotation. */
  if ((rc = conn_pinkey_learn(c, k)) != 0) {
    conn_close(k);
    return rc;
  }
  if ((rc = sotto_net_auth(k->net, user, c->acct->device_id, c->acct->secret, &ec_left, &kem_left)) != 0)
    goto net_fail;
  if ((rc = conn_upload_keys(c, k, 1, CONN_EC_STOCK, CONN_KEM_STOCK))) {
    conn_close(k);
    return rc;
  }
  conn_close(k);
  if (n_ec) *n_ec = CONN_EC_STOCK;
  if (n_kem) *n_kem = CONN_KEM_STOCK + 1;
  return 0;
net_fail:
  rc = conn_error(c, k, rc, code ? "recovering the account" : "registering", user);
  conn_close(k);
  return rc;
}

int sc_register(unsigned *n_ec, unsigned *n_kem, struct sc_client *c, const char *server, const char *user,
                const char *pin, const char *ca) {
  return do_register(n_ec, n_kem, c, server, user, pin, ca, NULL);
}

/* The 32 bytes the server sees of a recovery code: a keyed hash of its 30
 * random bytes. */
static void recovery_wire(uint8_t out[SOTTO_SRV_RECOVERY_LEN], const uint8_t secret[BACKUP_RK_RANDOM]) {
  static const char key[] = "sotto-account-recovery-code";
  crypto_generichash(out, SOTTO_SRV_RECOVERY_LEN, secret, BACKUP_RK_RANDOM, (const uint8_t *)key, sizeof key - 1);
}

int sc_recover(unsigned *n_ec, unsigned *n_kem, struct sc_client *c, const char *server, const char *user,
               const char *pin, const char *ca, const char *code, size_t code_len) {
  uint8_t secret[BACKUP_RK_RANDOM], wire[SOTTO_SRV_RECOVERY_LEN];
  int rc;
  if (!code || (rc = backup_rk_parse(secret, code, code_len)) == -1)
    return sc__fail(c, SC_ERR_ARG, "a recovery code is 64 hex digits (groups of 4 joined by '-')");
  if (rc == -2)
    return sc__fail(c, SC_ERR_ARG,
                    "the recovery code has a typo (its check digits do not match); compare it with the printed one");
  recovery_wire(wire, secret);
  sodium_memzero(secret, sizeof secret);
  rc = do_register(n_ec, n_kem, c, server, user, pin, ca, wire);
  sodium_memzero(wire, sizeof wire);
  return rc;
}

int sc_set_recovery_code(char code[SC_RECOVERY_CODE_LEN + 1], struct sc_client *c) {
  uint8_t secret[BACKUP_RK_RANDOM], wire[SOTTO_SRV_RECOVERY_LEN];
  int rc, opened;
  code[0] = 0;
  if ((rc = sc__acquire(c, &opened))) return rc;
  backup_rk_new(code, secret);
  recovery_wire(wire, secret);
  sodium_memzero(secret, sizeof secret);
  rc = sotto_net_set_recovery(c->k.net, wire);
  sodium_memzero(wire, sizeof wire);
  if (rc == SOTTO_SRV_E_FORBIDDEN)
    rc = sc__fail(c, SC_ERR_FORBIDDEN, "only device 1 can set the recovery code (this is device %u)",
                  (unsigned)c->acct->device_id);
  else if (rc)
    rc = conn_error(c, &c->k, rc, "setting the recovery code", NULL);
  if (rc) sodium_memzero(code, SC_RECOVERY_CODE_LEN + 1);
  sc__release(c, opened);
  return rc;
}

/* The account goes on the server; the home stays (history readable),
 * marked unregistered: no username, no device credentials. */
int sc_unregister(struct sc_client *c) {
  char user[SC_USER_MAX + 1];
  int rc, opened;
  if ((rc = sc__acquire(c, &opened))) return rc;
  snprintf(user, sizeof user, "%s", c->acct->username);
  rc = sotto_net_unregister(c->k.net);
  if (rc == SOTTO_SRV_E_FORBIDDEN)
    rc = sc__fail(c, SC_ERR_FORBIDDEN, "only device 1 can delete the account (this is device %u)",
                  (unsigned)c->acct->device_id);
  else if (rc)
    rc = conn_error(c, &c->k, rc, "deleting the account", NULL);
  sc__release(c, opened);
  sc_disconnect(c);
  if (rc) return rc;
  if ((rc = sc__begin(c)) != 0) return sc__store_error(c, rc);
  c->acct->username[0] = 0;
  c->acct->device_id = 0;
  sodium_memzero(c->acct->secret, sizeof c->acct->secret);
  if ((rc = account_save(c->st, c->acct)) != 0 || (rc = conn_pinkey_del(c)) != 0 ||
      (rc = store_commit(c->st)) != 0) {
    store_rollback(c->st);
    return sc__fail(c, SC_ERR_STORE,
                    "the account '%s' was deleted on the server, but the local store could not record it (%d)",
                    user, rc);
  }
  return 0;
}

/* ---- server move ------------------------------------------------------------------- */

int sc_server_set(struct sc_client *c, const char *server, const char *pin, const char *ca) {
  char host[256], port[16], capath[PATH_MAX] = "", newpin[ACCOUNT_PIN_LEN + 1] = "";
  uint8_t key[32], fp[32], oldkey[32];
  uint64_t serial = 0;
  uint32_t ec_left, kem_left;
  struct conn k;
  int rc, had;

  if ((rc = sc__need_open(c))) return rc;
  if (!c->acct->username[0])
    return sc__fail(c, SC_ERR_NOT_REGISTERED,
                    "this identity is not registered with a server yet: run 'sotto register --server HOST:PORT "
                    "USERNAME'");
  if (!server || strlen(server) >= ACCOUNT_MAX_SERVER || conn_split(server, host, sizeof host, port, sizeof port))
    return sc__fail(c, SC_ERR_ARG, "the server must be HOST:PORT, e.g. 127.0.0.1:7443");
  if (pin && ca) return sc__fail(c, SC_ERR_ARG, "give --pin or --ca, not both");
  if (pin) {
    uint8_t bin[32];
    size_t bl;
    if (strlen(pin) != 64 || sodium_hex2bin(bin, sizeof bin, pin, 64, NULL, &bl, NULL) || bl != 32)
      return sc__fail(c, SC_ERR_ARG, "--pin must be the 64 hex digits 'sotto-server fingerprint' prints");
    for (bl = 0; bl < 64; bl++) newpin[bl] = (char)(pin[bl] >= 'A' && pin[bl] <= 'F' ? pin[bl] + 32 : pin[bl]);
    newpin[64] = 0;
  } else if (ca) {
    if (!realpath(ca, capath)) return sc__fail(c, SC_ERR_CA, "cannot read the CA file %s; check the path", ca);
  } else if (c->acct->pin[0]) {
    snprintf(newpin, sizeof newpin, "%s", c->acct->pin); /* the same certificate at a new address */
  } else {
    snprintf(capath, sizeof capath, "%s", c->acct->ca);
  }
  /* A connection of its own: the link (if any) stays on the old address
   * until this one has proved itself. */
  memset(&k, 0, sizeof k);
  snprintf(k.host, sizeof k.host, "%s", host);
  snprintf(k.port, sizeof k.port, "%s", port);
  if (!(k.ctx = sotto_net_ctx_new(newpin[0] ? newpin : NULL, newpin[0] ? NULL : capath)))
    return sc__fail(c, SC_ERR_CA, "cannot set up TLS for %s (is the CA file %s readable?)", server,
                    capath[0] ? capath : "-");
  if ((rc = sotto_net_connect(k.ctx, host, port, CONN_CONNECT_TIMEOUT_MS, 1, &k.net)) != 0) goto net_fail;
  sotto_net_set_timeout(k.net, c->request_timeout_ms);
  /* The account must be there: a server with another database (or an
   * impostor that only has the certificate) refuses our credentials. */
  if ((rc = sotto_net_auth(k.net, c->acct->username, c->acct->device_id, c->acct->secret, &ec_left, &kem_left)) != 0)
    goto net_fail;
  (void)sotto_net_peer(k.net, fp, key);
  conn_close(&k);
  sc_disconnect(c);
  if ((rc = sc__begin(c)) != 0) return sc__store_error(c, rc);
  if ((had = conn_pinkey_load(c, oldkey, &serial)) < 0) {
    store_rollback(c->st);
    return sc__store_error(c, had);
  }
  /* The same key keeps its place in the rotation chain; a new one starts afresh. */
  if (had != 1 || sodium_memcmp(oldkey, key, 32) != 0) serial = 0;
  snprintf(c->acct->server, sizeof c->acct->server, "%s", server);
  snprintf(c->acct->pin, sizeof c->acct->pin, "%s", newpin);
  snprintf(c->acct->ca, sizeof c->acct->ca, "%s", newpin[0] ? "" : capath);
  if ((rc = account_save(c->st, c->acct)) != 0 || (newpin[0] && (rc = conn_pinkey_save(c, key, serial)) != 0) ||
      (rc = store_commit(c->st)) != 0) {
    store_rollback(c->st);
    rc = sc__store_error(c, rc);
    /* The record in memory goes back to what the store still holds. */
    if (sc__begin(c) == 0) store_rollback(c->st);
    return rc;
  }
  return 0;
net_fail:
  rc = conn_error(c, &k, rc, "checking the new server address", NULL);
  conn_close(&k);
  return rc;
}

/* ---- devices ----------------------------------------------------------------------- */

/* The connection for a one-off request: the link if it is up, else a new
 * one (*opened set: the caller closes it with sc__release). */
int sc__acquire(struct sc_client *c, int *opened) {
  int rc;
  *opened = 0;
  if ((rc = sc__need_open(c))) return rc;
  if (!c->acct->username[0])
    return sc__fail(c, SC_ERR_NOT_REGISTERED,
                    "this identity is not registered with a server yet: run 'sotto register --server HOST:PORT "
                    "USERNAME'");
  if (c->connected || c->flushing) return 0;
  if ((rc = conn_open(c, &c->k))) return rc;
  *opened = 1;
  /* The next command that connects sends what waits first (queued texts,
   * receipts, retry requests); what cannot go waits again. */
  (void)outbox_flush(c);
  c->err = 0;
  c->errdetail[0] = 0;
  return 0;
}

void sc__release(struct sc_client *c, int opened) {
  if (opened) conn_close(&c->k);
}

int sc_devices(uint32_t *ids, size_t *n, size_t max, struct sc_client *c) {
  uint32_t all[SOTTO_SRV_MAX_DEVICES];
  size_t got = 0, i;
  int rc, opened;
  *n = 0;
  if ((rc = sc__acquire(c, &opened))) return rc;
  rc = sotto_net_devices(c->k.net, c->acct->username, all, SOTTO_SRV_MAX_DEVICES, &got);
  if (rc) rc = conn_error(c, &c->k, rc, "listing the devices", NULL);
  sc__release(c, opened);
  if (rc) return rc;
  for (i = 0; i < got && i < max; i++) ids[i] = all[i];
  *n = i;
  return 0;
}

int sc_device_remove(struct sc_client *c, uint32_t id) {
  int rc, opened;
  if ((rc = sc__acquire(c, &opened))) return rc;
  if (id == 1 && c->acct->device_id == 1) {
    sc__release(c, opened);
    return sc__fail(c, SC_ERR_FORBIDDEN, "device 1 cannot be removed: it holds the account key; to end the "
                                         "account, 'sotto unregister'");
  }
  rc = sotto_net_device_remove(c->k.net, id);
  if (rc == SOTTO_SRV_E_FORBIDDEN)
    rc = id == 1 ? sc__fail(c, SC_ERR_FORBIDDEN, "device 1 cannot be removed: it holds the account key; to end "
                                                  "the account, 'sotto unregister' on device 1")
                 : sc__fail(c, SC_ERR_FORBIDDEN, "only device 1 can remove another device (this is device %u)",
                            (unsigned)c->acct->device_id);
  else if (rc == SOTTO_SRV_E_NOT_FOUND)
    rc = sc__fail(c, SC_ERR_NO_SUCH_DEVICE, "this account has no device %u ('sotto device list' shows them)",
                  (unsigned)id);
  else if (rc)
    rc = conn_error(c, &c->k, rc, "removing the device", NULL);
  /* Removed on purpose: not reported as a change at the next connection
   * (best effort: a failure here only means that report comes). */
  if (rc == 0) (void)conn_forget_device(c, id);
  /* Device 1 signs the next list without it at once (devices_publish
   * drops a listed device that has no row any more). */
  if (rc == 0 && c->acct->device_id == 1 && id != 1) rc = devices_publish(c, &c->k);
  sc__release(c, opened);
  return rc;
}

/* The server keeps the old secret valid until the new one is used once (so
 * that an answer lost after its commit does not lock the device out): one
 * login with the new secret, right away, ends that for a copy of this
 * store that still holds the old one. Best effort: if it fails, the next
 * login does the same. */
static void rotate_confirm(struct sc_client *c) {
  struct conn k;
  memset(&k, 0, sizeof k);
  k.ctx = sotto_net_ctx_new(c->acct->pin[0] ? c->acct->pin : NULL, c->acct->pin[0] ? NULL : c->acct->ca);
  if (k.ctx && conn_connect_list(c, &k, c->acct->server, 0) == 0) {
    sotto_net_set_timeout(k.net, c->request_timeout_ms);
    (void)sotto_net_auth(k.net, c->acct->username, c->acct->device_id, c->acct->secret, NULL, NULL);
  }
  conn_close(&k);
}

/* The new secret exists only in the server's answer until it is saved: the
 * store's write transaction is open before the request, so that the save is
 * one commit right after the answer. */
int sc_rotate_secret(struct sc_client *c) {
  uint8_t secret[SOTTO_SRV_SECRET_LEN];
  int rc, opened;
  if ((rc = sc__acquire(c, &opened))) return rc;
  if ((rc = sc__begin(c)) != 0) {
    sc__release(c, opened);
    return sc__store_error(c, rc);
  }
  if ((rc = sotto_net_rotate_secret(c->k.net, secret)) != 0) {
    store_rollback(c->st);
    rc = conn_error(c, &c->k, rc, "rotating the device secret", NULL);
    sc__release(c, opened);
    return rc;
  }
  memcpy(c->acct->secret, secret, sizeof secret);
  sodium_memzero(secret, sizeof secret);
  if ((rc = account_save(c->st, c->acct)) != 0 || (rc = store_commit(c->st)) != 0) {
    store_rollback(c->st);
    sc__release(c, opened);
    return sc__fail(c, SC_ERR_STORE,
                    "the server gave this device a new secret but the local store could not save it (%d): this "
                    "device cannot log in any more; remove it from device 1 ('sotto device remove %u') and add "
                    "a new one",
                    rc, (unsigned)c->acct->device_id);
  }
  sc__release(c, opened);
  /* Only once this command's connection is closed: a login displaces the
   * device's live connection (a front end's link logs in again later). */
  if (opened) rotate_confirm(c);
  return 0;
}

uint32_t sc__own_device(const struct sc_client *c) {
  return c->acct->device_id ? c->acct->device_id : 1;
}

uint32_t sc__env_device(const struct sc_client *c) {
  return c->env_device ? c->env_device : 1;
}
