/*
** Shared helpers of the libFuzzer targets in tests/fuzz/ (header-only: each target is one translation unit).
**
** The extension is linked statically and registered with sqlite3_auto_extension, so every connection a target
** opens has vecstore. A target reports a finding by calling fz_fail(), which prints what was violated and
** aborts: libFuzzer (or the replay driver, replay_main.c) then records the input as a crash. SQL errors are
** not findings by themselves; the targets check what can be checked cheaply instead (vecstore's error
** messages start with "vecstore: ", results keep their documented invariants).
*/
#ifndef VECSTORE_FUZZ_COMMON_H
#define VECSTORE_FUZZ_COMMON_H

#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sqlite3_vecstore_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi);

/* Prints the violated invariant and aborts (the input becomes a crash for libFuzzer). */
static inline void fz_fail(const char *zFmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static inline void fz_fail(const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  fprintf(stderr, "\n==vecstore-fuzz== invariant violated: ");
  vfprintf(stderr, zFmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  fflush(stderr);
  abort();
}

/* Registers vecstore for every connection opened from now on (idempotent). */
static inline void fz_register(void) {
  static int bDone = 0;
  if (bDone) return;
  bDone = 1;
  if (sqlite3_auto_extension((void (*)(void))sqlite3_vecstore_init) != SQLITE_OK) fz_fail("sqlite3_auto_extension");
}

/* Opens zPath (":memory:" allowed) with vecstore registered; aborts when that fails. */
static inline sqlite3 *fz_open(const char *zPath) {
  sqlite3 *db = 0;
  fz_register();
  if (sqlite3_open(zPath, &db) != SQLITE_OK) fz_fail("cannot open %s: %s", zPath, db ? sqlite3_errmsg(db) : "?");
  return db;
}

static inline sqlite3_stmt *fz_prepare(sqlite3 *db, const char *zSql) {
  sqlite3_stmt *pStmt = 0;
  if (sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0) != SQLITE_OK) {
    fz_fail("cannot prepare %s: %s", zSql, sqlite3_errmsg(db));
  }
  return pStmt;
}

/* Error codes that no input may provoke from an intact database: they mean a bug, not a bad input. */
static inline int fz_is_bug_code(int rc) {
  int e = rc & 0xff;
  return e == SQLITE_CORRUPT || e == SQLITE_INTERNAL || e == SQLITE_MISUSE || e == SQLITE_NOMEM;
}

/* Checks the error of a failed statement of a vecstore SQL function: it names vecstore and is not a bug code. */
static inline void fz_check_function_error(sqlite3 *db, int rc, const char *zWhat) {
  const char *zMsg = sqlite3_errmsg(db);
  if (fz_is_bug_code(rc)) fz_fail("%s failed with code %d: %s", zWhat, rc, zMsg);
  if (strncmp(zMsg, "vecstore: ", 10) != 0) fz_fail("%s: error without the 'vecstore: ' prefix: %s", zWhat, zMsg);
}

/* A reader of the fuzzer's bytes that yields zeros once they are used up. */
typedef struct FzBytes {
  const uint8_t *p;
  size_t n;
} FzBytes;

static inline unsigned fz_u8(FzBytes *b) {
  if (b->n == 0) return 0;
  b->n--;
  return *b->p++;
}

static inline unsigned fz_u16(FzBytes *b) {
  unsigned lo = fz_u8(b);
  return lo | (fz_u8(b) << 8);
}

/* The next n bytes (fewer when the input ends): *pn gets their count. */
static inline const uint8_t *fz_take(FzBytes *b, size_t n, size_t *pn) {
  if (n > b->n) n = b->n;
  const uint8_t *p = b->p;
  b->p += n;
  b->n -= n;
  *pn = n;
  return p;
}

#endif
