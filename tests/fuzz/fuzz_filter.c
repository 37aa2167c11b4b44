/*
** fuzz_filter: the metadata filter language, vecstore_filter(metadata, filter) (ext/filter.c): the strict JSON
** parser, the filter compiler, Python-style comparisons and the sorted membership indexes.
**
** Input: NUL-separated segments; the first is the filter, the next (up to 8) are metadata texts. Each metadata
** text is evaluated (a) alone, in a one-row statement (the filter compiled for that call, membership lists
** scanned linearly), and (b) in a scan over all of them after a leading NULL row (the filter compiled once and
** reused, long membership lists indexed and binary-searched). Invariants besides the sanitizers:
**   - results are 0 or 1, errors carry a "vecstore: " message and are never CORRUPT/MISUSE/INTERNAL/NOMEM;
**   - (a) and (b) agree for every metadata text, in value or in failing;
**   - {"$not": F} gives the opposite of F and {"$or": [F, {"$not": F}]} gives 1 (unless wrapping F nests
**     too deeply for the parser);
**   - a filter that compiles is valid JSON for SQLite's json_valid().
*/
#include "fuzz_common.h"

#define MAX_DOCS 8

static sqlite3 *g_db;
static sqlite3_stmt *g_pOne, *g_pScan, *g_pInsert, *g_pClear, *g_pNot, *g_pTaut, *g_pValid;

static void init(void) {
  if (g_db) return;
  g_db = fz_open(":memory:");
  char *zErr = 0;
  if (sqlite3_exec(g_db, "CREATE TABLE m(i INTEGER PRIMARY KEY, x)", 0, 0, &zErr) != SQLITE_OK) fz_fail("%s", zErr);
  g_pOne = fz_prepare(g_db, "SELECT vecstore_filter(?1, ?2)");
  g_pScan = fz_prepare(g_db, "SELECT i, vecstore_filter(x, ?1) FROM m ORDER BY i");
  g_pInsert = fz_prepare(g_db, "INSERT INTO m(i, x) VALUES (?1, ?2)");
  g_pClear = fz_prepare(g_db, "DELETE FROM m");
  g_pNot = fz_prepare(g_db, "SELECT vecstore_filter(?1, '{\"$not\": ' || ?2 || '}')");
  g_pTaut = fz_prepare(g_db, "SELECT vecstore_filter(?1, '{\"$or\": [' || ?2 || ', {\"$not\": ' || ?2 || '}]}')");
  g_pValid = fz_prepare(g_db, "SELECT json_valid(?1)");
}

static void bind_text(sqlite3_stmt *pStmt, int i, const uint8_t *p, size_t n) {
  if (p == 0) {
    sqlite3_bind_null(pStmt, i);
  } else {
    sqlite3_bind_text64(pStmt, i, n ? (const char *)p : "", n, SQLITE_TRANSIENT, SQLITE_UTF8);
  }
}

/* Runs a one-row vecstore_filter statement: 0 or 1, or -1 after an error (checked; its message in zErr). */
static int run_one(sqlite3_stmt *pStmt, const char *zWhat, char *zErr, size_t nErr) {
  int r = -1;
  if (sqlite3_step(pStmt) == SQLITE_ROW) {
    if (sqlite3_column_type(pStmt, 0) != SQLITE_INTEGER) fz_fail("%s: result is not an integer", zWhat);
    r = sqlite3_column_int(pStmt, 0);
    if (r != 0 && r != 1) fz_fail("%s: result %d", zWhat, r);
    sqlite3_reset(pStmt);
  } else {
    int rc = sqlite3_reset(pStmt);
    fz_check_function_error(g_db, rc, zWhat);
    snprintf(zErr, nErr, "%s", sqlite3_errmsg(g_db));
  }
  sqlite3_clear_bindings(pStmt);
  return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *pData, size_t nData) {
  init();
  /* Segments. */
  const uint8_t *apSeg[1 + MAX_DOCS];
  size_t anSeg[1 + MAX_DOCS];
  int nSeg = 0;
  size_t iStart = 0;
  for (size_t i = 0; i <= nData && nSeg < 1 + MAX_DOCS; i++) {
    if (i == nData || pData[i] == 0) {
      apSeg[nSeg] = pData + iStart;
      anSeg[nSeg] = i - iStart;
      nSeg++;
      iStart = i + 1;
    }
  }
  const uint8_t *pF = apSeg[0];
  size_t nF = anSeg[0];
  char zErr[512];
  int aOne[MAX_DOCS + 1];

  /* (a) one statement per metadata text; a NULL metadata (document 0) first. */
  for (int d = 0; d < nSeg; d++) {
    bind_text(g_pOne, 1, d ? apSeg[d] : 0, d ? anSeg[d] : 0);
    bind_text(g_pOne, 2, pF, nF);
    aOne[d] = run_one(g_pOne, "vecstore_filter", zErr, sizeof(zErr));
    if (aOne[d] < 0 && d == 0) {
      /* The filter itself does not compile: every call must fail the same way. */
      for (int e = 1; e < nSeg; e++) {
        char zErr2[512];
        bind_text(g_pOne, 1, apSeg[e], anSeg[e]);
        bind_text(g_pOne, 2, pF, nF);
        if (run_one(g_pOne, "vecstore_filter", zErr2, sizeof(zErr2)) >= 0) fz_fail("a bad filter was accepted");
        if (strcmp(zErr, zErr2) != 0) fz_fail("filter errors differ: '%s' / '%s'", zErr, zErr2);
      }
      return 0;
    }
  }

  /* The filter compiled: it is JSON. */
  bind_text(g_pValid, 1, pF, nF);
  if (sqlite3_step(g_pValid) != SQLITE_ROW) fz_fail("json_valid: %s", sqlite3_errmsg(g_db));
  if (sqlite3_column_int(g_pValid, 0) != 1) fz_fail("vecstore_filter compiled a filter that json_valid() rejects");
  sqlite3_reset(g_pValid);

  /* (b) one scan over all of them, the compiled filter reused from the second row on. */
  sqlite3_step(g_pClear);
  sqlite3_reset(g_pClear);
  for (int d = 0; d < nSeg; d++) {
    sqlite3_bind_int(g_pInsert, 1, d);
    bind_text(g_pInsert, 2, d ? apSeg[d] : 0, d ? anSeg[d] : 0);
    if (sqlite3_step(g_pInsert) != SQLITE_DONE) fz_fail("insert: %s", sqlite3_errmsg(g_db));
    sqlite3_reset(g_pInsert);
  }
  /* Twice over the rows, so every row is also evaluated with the indexes built. */
  for (int iPass = 0; iPass < 2; iPass++) {
    bind_text(g_pScan, 1, pF, nF);
    int d = 0, rc;
    while ((rc = sqlite3_step(g_pScan)) == SQLITE_ROW) {
      d = sqlite3_column_int(g_pScan, 0);
      int r = sqlite3_column_int(g_pScan, 1);
      if (d < 0 || d >= nSeg || aOne[d] != r) {
        fz_fail("document %d: scan gives %d, a single call %d", d, r, d >= 0 && d < nSeg ? aOne[d] : -9);
      }
      d++;
    }
    if (rc != SQLITE_DONE) {
      /* Only a document that failed alone may fail the scan, and at that document. */
      fz_check_function_error(g_db, sqlite3_reset(g_pScan), "vecstore_filter scan");
      if (d >= nSeg || aOne[d] != -1) fz_fail("the scan failed at document %d, which passes alone", d);
    }
    sqlite3_reset(g_pScan);
    sqlite3_clear_bindings(g_pScan);
  }

  /* Negation and the tautology. */
  for (int d = 0; d < nSeg; d++) {
    if (aOne[d] < 0) continue;
    bind_text(g_pNot, 1, d ? apSeg[d] : 0, d ? anSeg[d] : 0);
    bind_text(g_pNot, 2, pF, nF);
    int r = run_one(g_pNot, "vecstore_filter $not", zErr, sizeof(zErr));
    if (r < 0 && strstr(zErr, "nested too deeply") == 0) fz_fail("$not of a valid filter failed: %s", zErr);
    if (r >= 0 && r != !aOne[d]) fz_fail("document %d: F gives %d, {\"$not\": F} %d", d, aOne[d], r);
    bind_text(g_pTaut, 1, d ? apSeg[d] : 0, d ? anSeg[d] : 0);
    bind_text(g_pTaut, 2, pF, nF);
    r = run_one(g_pTaut, "vecstore_filter $or", zErr, sizeof(zErr));
    if (r < 0 && strstr(zErr, "nested too deeply") == 0) fz_fail("$or of a valid filter failed: %s", zErr);
    if (r == 0) fz_fail("document %d: F or not F is false", d);
  }
  return 0;
}
