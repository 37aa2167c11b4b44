/*
** A main() for the fuzz targets where libFuzzer is not available (gcc builds): feeds every file named on the
** command line, or found in a directory named there (not recursively, in name order), to
** LLVMFuzzerTestOneInput once. A crash or sanitizer report ends the process as it would end libFuzzer's.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *pData, size_t nData);

static int g_nRun;

/* Runs one file; returns 0, or 1 when it cannot be read. */
static int run_file(const char *zPath) {
  FILE *f = fopen(zPath, "rb");
  if (f == 0) {
    fprintf(stderr, "replay: cannot open %s\n", zPath);
    return 1;
  }
  size_t nAlloc = 4096, n = 0;
  uint8_t *p = malloc(nAlloc);
  for (;;) {
    if (p == 0) abort();
    n += fread(p + n, 1, nAlloc - n, f);
    if (n < nAlloc) break;
    nAlloc *= 2;
    p = realloc(p, nAlloc);
  }
  fclose(f);
  fprintf(stderr, "replay: %s (%zu bytes)\n", zPath, n);
  /* An exact-size copy, so that reading past the input is caught like under libFuzzer. */
  uint8_t *pExact = malloc(n ? n : 1);
  if (pExact == 0) abort();
  memcpy(pExact, p, n);
  free(p);
  LLVMFuzzerTestOneInput(pExact, n);
  free(pExact);
  g_nRun++;
  return 0;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int run_dir(const char *zDir) {
  DIR *d = opendir(zDir);
  if (d == 0) return 1;
  char **az = 0;
  size_t n = 0, nAlloc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != 0) {
    if (e->d_name[0] == '.') continue;
    if (n == nAlloc) {
      nAlloc = nAlloc ? 2 * nAlloc : 64;
      az = realloc(az, nAlloc * sizeof(char *));
      if (az == 0) abort();
    }
    size_t m = strlen(zDir) + strlen(e->d_name) + 2;
    az[n] = malloc(m);
    if (az[n] == 0) abort();
    snprintf(az[n], m, "%s/%s", zDir, e->d_name);
    n++;
  }
  closedir(d);
  qsort(az, n, sizeof(char *), cmp_name);
  int nErr = 0;
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    if (stat(az[i], &st) == 0 && S_ISREG(st.st_mode)) nErr += run_file(az[i]);
    free(az[i]);
  }
  free(az);
  return nErr;
}

int main(int argc, char **argv) {
  int nErr = 0;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-') continue; /* libFuzzer-style flags are ignored */
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: no such file %s\n", argv[i]);
      nErr++;
    } else if (S_ISDIR(st.st_mode)) {
      nErr += run_dir(argv[i]);
    } else {
      nErr += run_file(argv[i]);
    }
  }
  fprintf(stderr, "replay: %d inputs run\n", g_nRun);
  return nErr ? 1 : 0;
}
