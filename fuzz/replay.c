/* SPDX-License-Identifier: Apache-2.0 */
/* replay.c: runs a libFuzzer target over every file of a corpus directory
 * without libFuzzer, so the committed corpora are replayed by the ordinary
 * (gcc, sanitizer) test runs. Exits non-zero if the directory is empty or
 * unreadable, so a lost corpus cannot pass silently. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT (4u << 20)

int main(int argc, char **argv) {
  DIR *d;
  struct dirent *e;
  unsigned n = 0;
  uint8_t *buf;

  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  if ((d = opendir(argv[1])) == NULL) {
    perror(argv[1]);
    return 1;
  }
  if ((buf = malloc(REPLAY_MAX_INPUT)) == NULL) return 1;
  while ((e = readdir(d)) != NULL) {
    char path[4096];
    struct stat st;
    FILE *f;
    size_t len;
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if ((f = fopen(path, "rb")) == NULL) {
      perror(path);
      return 1;
    }
    len = fread(buf, 1, REPLAY_MAX_INPUT, f);
    fclose(f);
    /* Copy into an exact-size allocation so ASan sees overreads. */
    {
      uint8_t *in = malloc(len ? len : 1);
      if (!in) return 1;
      memcpy(in, buf, len);
      LLVMFuzzerTestOneInput(in, len);
      free(in);
    }
    n++;
  }
  closedir(d);
  free(buf);
  if (n == 0) {
    fprintf(stderr, "%s: empty corpus\n", argv[1]);
    return 1;
  }
  printf("replayed %u inputs from %s\n", n, argv[1]);
  return 0;
}
