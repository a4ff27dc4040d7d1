/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_send.c: sotto send USERNAME TEXT -- one end-to-end encrypted message. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "utf8.h"

int cli_read_text(struct cli *c, int argc, char **argv, char **out, size_t *len) {
  size_t n = 0, cap = SC_MAX_LONG_TEXT + 2;
  char *t = malloc(cap);
  int i;
  if (!t) return cli_error(c, "nomem", "out of memory");
  if (argc == 1 && strcmp(argv[0], "-") == 0) {
    ssize_t r;
    while ((r = read(0, t + n, cap - 1 - n)) > 0) {
      n += (size_t)r;
      if (n == cap - 1) break;
    }
    if (n > 0 && t[n - 1] == '\n') n--;
  } else {
    for (i = 0; i < argc; i++) {
      size_t l = strlen(argv[i]);
      if (n + l + 1 >= cap) {
        n = cap;
        break;
      }
      if (i) t[n++] = ' ';
      memcpy(t + n, argv[i], l);
      n += l;
    }
  }
  if (n > SC_MAX_LONG_TEXT) {
    free(t);
    return cli_error(c, "too_large", "the message is longer than %d bytes; split it or send it as a file (--file)",
                     SC_MAX_LONG_TEXT);
  }
  if (n == 0) {
    free(t);
    return cli_error(c, "empty", "the message is empty; nothing was sent");
  }
  if (cli_text_ok(c, t, n)) {
    free(t);
    return CLI_FAIL;
  }
  t[n] = 0;
  *out = t;
  *len = n;
  return CLI_OK;
}

int cli_text_ok(struct cli *c, const char *t, size_t n) {
  size_t i;
  if (utf8_valid(t, n)) return CLI_OK;
#ifdef SOTTO_TEST_HOOKS
  /* test_output.sh: a modified client that sends any bytes. */
  if (getenv("SOTTO_TEST_RAW_TEXT") && *getenv("SOTTO_TEST_RAW_TEXT")) return CLI_OK;
#endif
  for (i = 0; i < n && t[i]; i++) {
  }
  if (i < n) return cli_error(c, "invalid_text", "the message holds a NUL byte (at byte %zu); nothing was sent", i);
  return cli_error(c, "invalid_text",
                   "the message is not valid UTF-8; nothing was sent: convert it first (e.g. iconv -t UTF-8)");
}

/* A changed key is asked about on a terminal (not with --json or without
 * one); 1 to send anyway. */
int cli_ask_key_change(struct cli *c) {
  if (sc_last_error(c->core) != SC_ERR_KEY_CHANGED_UNCONFIRMED) return 0;
  return cli_confirm(c, "Send to the new key anyway?");
}

/* --file PATH [--name NAME] [--type TYPE]: the file goes as an attachment,
 * TEXT (optional then) as its caption. */
static int send_file(struct cli *c, const char *user, const char *path, const char *name, const char *type,
                     char *text, size_t len) {
  struct sc_sent sent;
  int rc = sc_send_file(&sent, c->core, user, path, name, type, text, len, c->yes ? SC_SEND_ACCEPT_KEY_CHANGE : 0);
  if (rc && cli_ask_key_change(c)) {
    snprintf(c->key_warned, sizeof c->key_warned, "%s", user);
    rc = sc_send_file(&sent, c->core, user, path, name, type, text, len, SC_SEND_ACCEPT_KEY_CHANGE);
    c->key_warned[0] = 0;
  }
  free(text);
  if (rc) return cli_fail(c);
  if (!c->json) printf("Sent %s to %s.\n", path, user);
  return CLI_OK;
}

static int run(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  static const struct option opts[] = {{"yes", no_argument, NULL, 'y'},        {"help", no_argument, NULL, 'h'},
                                       {"reply-to", required_argument, NULL, 'r'}, {"file", required_argument, NULL, 'f'},
                                       {"name", required_argument, NULL, 'n'},   {"type", required_argument, NULL, 't'},
                                       {NULL, 0, NULL, 0}};
  struct sc_sent sent;
  const char *user, *file = NULL, *name = NULL, *type = NULL;
  char *text = NULL, *end;
  size_t len = 0;
  uint64_t reply = 0;
  unsigned flags;
  int rc, ch;

  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "+hy", opts, NULL)) != -1) {
    switch (ch) {
      case 'y': c->yes = 1; break;
      case 'r':
        reply = strtoull(optarg, &end, 10);
        if (*end || reply == 0 || *optarg < '0' || *optarg > '9')
          return cli_usage(c, cmd, "--reply-to takes a message id ('sotto history --ids USERNAME')");
        break;
      case 'f': file = optarg; break;
      case 'n': name = optarg; break;
      case 't': type = optarg; break;
      case 'h': return cli_help(cmd);
      default: return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
    }
  }
  if (argc - optind < 1) return cli_usage(c, cmd, "expected USERNAME and TEXT");
  user = argv[optind++];
  /* The file options may also follow USERNAME (sotto send bob --file x);
   * what comes after them is TEXT, whatever it looks like. */
  while (optind + 1 < argc) {
    const char *o = argv[optind];
    if (strcmp(o, "--file") == 0) file = argv[optind + 1];
    else if (strcmp(o, "--name") == 0) name = argv[optind + 1];
    else if (strcmp(o, "--type") == 0) type = argv[optind + 1];
    else break;
    optind += 2;
  }
  if ((name || type) && !file) return cli_usage(c, cmd, "--name and --type go with --file");
  if (file && reply) return cli_usage(c, cmd, "--reply-to does not go with --file");
  if (!file && argc - optind < 1) return cli_usage(c, cmd, "expected USERNAME and TEXT");
  if (user[0] == '#' ? !sc_group_name_ok(user + 1) : !cli_username_ok(user))
    return cli_usage(c, cmd, "'%s' is not a valid username or '#GROUP'", user);
  if (argc - optind > 0 && cli_read_text(c, argc - optind, argv + optind, &text, &len)) return CLI_FAIL;
  if (cli_open(c) || (strcmp(user, sc_username(c->core)) == 0 &&
                      cli_error(c, "usage", "you cannot send to yourself ('%s')", user))) {
    free(text);
    return CLI_FAIL;
  }
  if (file) return send_file(c, user, file, name, type, text, len);
  flags = c->yes ? SC_SEND_ACCEPT_KEY_CHANGE : 0;
  rc = sc_send_reply(&sent, c->core, user, reply, text, len, flags);
  if (rc && cli_ask_key_change(c)) {
    snprintf(c->key_warned, sizeof c->key_warned, "%s", user);
    rc = sc_send_reply(&sent, c->core, user, reply, text, len, SC_SEND_ACCEPT_KEY_CHANGE);
    c->key_warned[0] = 0;
  }
  if (rc) {
    free(text);
    return cli_fail(c);
  }
  if (c->json) {
    cJSON *o = cli_event("sent");
    cJSON_AddStringToObject(o, "to", user);
    cJSON_AddStringToObject(o, "text", text);
    cJSON_AddNumberToObject(o, "timestamp", (double)sent.timestamp_ms);
    cJSON_AddStringToObject(o, "state", sent.queued ? "queued" : "sent");
    if (reply) cJSON_AddNumberToObject(o, "reply_to", (double)reply);
    cli_emit(c, o);
  } else if (sent.queued) {
    /* Exit status 0: the text is kept (sealed) and goes out by itself. */
    printf("Queued for %s (server unreachable); will be sent when the server is back.\n", user);
  } else {
    printf("Sent to %s.\n", user);
  }
  free(text);
  return CLI_OK;
}

const struct cli_cmd cmd_send = {
    "send", "send an end-to-end encrypted message or file",
    "send [--yes] [--reply-to ID] USERNAME|#GROUP TEXT...\n       sotto send [--yes] USERNAME|#GROUP --file PATH [--name NAME] [--type TYPE] [TEXT...]",
    "Encrypts TEXT for USERNAME and hands it to the server, which queues it until\n"
    "they receive it. Several TEXT arguments are joined by spaces; TEXT '-' reads\n"
    "the message from standard input. The first message to someone starts a\n"
    "post-quantum (PQXDH) session from their pre-keys on the server.\n\n"
    "If USERNAME's identity key is not the one your last message to them went\n"
    "to, sotto says what changed and asks before sending (on a terminal; without\n"
    "one it refuses unless --yes). If you had verified them, nothing is sent\n"
    "until you verify the new safety number.\n\n"
    "Every message is kept in the outbox (sealed in the store) until the\n"
    "recipient's delivery receipt comes: 'sotto history' shows its state\n"
    "(queued, sent, delivered, read, failed). If the server cannot be reached,\n"
    "the message is queued and sent by the next command that connects\n"
    "('sotto receive', '--follow', another send, the daemon); the exit status\n"
    "is then 0 too, and --json says \"state\":\"queued\".\n\n"
    "A TEXT longer than one message (61440 bytes, up to 1 MiB) goes as an\n"
    "attachment and shows as text on the other side.\n\n"
    "With --file, PATH goes as an attachment (up to 4 GiB) and TEXT, if any, as\n"
    "its caption: encrypted under a fresh key, uploaded in chunks to the\n"
    "server's blob store (a dropped connection resumes where the server is),\n"
    "and the key and digest sent in the message. The recipient's 'sotto\n"
    "receive' downloads it, checks it and saves it under HOME/downloads ('sotto\n"
    "attachments' lists them). Files are sent now or not at all (no outbox).\n"
    "If the sending process dies, running the same command again resumes the\n"
    "upload where the server is (unless the file changed).\n\n"
    "'#GROUP' (quoted in the shell) sends to the group GROUP like 'sotto group\n"
    "send', with --reply-to a reply to a message of the group. A file to\n"
    "'#GROUP' goes to every member (one upload; its pointer in one group\n"
    "message); the server keeps it until it expires.\n\n"
    "options:\n"
    "  --yes          send even if their identity key changed since your last message\n"
    "                 (for scripts; compare safety numbers first)\n"
    "  --reply-to ID  a reply quoting message ID of the conversation (ids:\n"
    "                 'sotto history --ids USERNAME|GROUP')\n"
    "  --file PATH    send the file at PATH\n"
    "  --name NAME    the file name the recipient sees (default: PATH's last part)\n"
    "  --type TYPE    its content type (default: guessed from the name)\n"
    "  --help         this text\n",
    run};
