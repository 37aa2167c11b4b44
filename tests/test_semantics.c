/* Search semantics (SPEC.md "Searching") in depth, for Flat, HNSW32, IVF64,Flat and HNSW32,SQ8, committed and
** inside a transaction with uncommitted inserts, deletes and updates: streaming under SQL filters the table cannot
** see (LIMIT N returns N rows whenever N match), the whole table without k or LIMIT, k / LIMIT / ORDER BY /
** OFFSET pushdown, fetch_k with LangChain's post-filter meaning, distance and score radii, search among rowid / id
** sets, per-query search_params, maximal marginal relevance, declared metadata columns inside searches and scans,
** and readable EXPLAIN QUERY PLAN output. Every expectation is checked against a brute-force model of the table.
**
** Data: 10,000 rows (plus 300 inserted in a transaction) of a seeded Gaussian mixture, dim 32. Row i has
** rowid i + 1, id 'r<i>', metadata {"g": i % 2, "p": i % 100, "m": i % 1000} and the declared columns
** page = i % 100, source = 'even' / 'odd' (NULL when i % 1000 = 500), price = (i % 1000) / 10. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DIM 32
#define NBASE 10000
#define NNEW 300
#define NTOT (NBASE + NNEW)
#define NUPD 50 /* rows i % 200 == 1 get a new embedding in the transaction */
#define NQ 20
#define NCENTER 64
#define MAXROWS 64

enum { M_L2 = TU_L2, M_IP = TU_IP, M_COSINE = TU_COSINE };

/**************************************************************************************************
** Data and the model of the table.
*/

static float *g_aData; /* NTOT rows, then NUPD replacement vectors */
static float *g_aQ;    /* NQ queries */

static int g_alive[NTOT];
static const float *g_vec[NTOT];
static int g_page[NTOT];
static int g_src[NTOT]; /* 0 'even', 1 'odd', -1 NULL */
static double g_price[NTOT];

static double gauss(uint64_t *pState) {
  double u1 = tu_rand_unit(pState), u2 = tu_rand_unit(pState);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static int group_setup(void **state) {
  (void)state;
  uint64_t s = 0x5eed5eed1234ull;
  float *aCenter = malloc(sizeof(float) * NCENTER * DIM);
  for (int i = 0; i < NCENTER * DIM; i++) aCenter[i] = (float)gauss(&s);
  g_aData = malloc(sizeof(float) * (size_t)(NTOT + NUPD) * DIM);
  g_aQ = malloc(sizeof(float) * NQ * DIM);
  for (int i = 0; i < NTOT + NUPD + NQ; i++) {
    int c = (int)(tu_rand(&s) % NCENTER);
    float *p = i < NTOT + NUPD ? g_aData + (size_t)i * DIM : g_aQ + (size_t)(i - NTOT - NUPD) * DIM;
    for (int j = 0; j < DIM; j++) p[j] = aCenter[c * DIM + j] + (float)(0.5 * gauss(&s));
  }
  free(aCenter);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  free(g_aData);
  free(g_aQ);
  return 0;
}

static void model_reset(void) {
  for (int i = 0; i < NTOT; i++) {
    g_alive[i] = i < NBASE;
    g_vec[i] = g_aData + (size_t)i * DIM;
    g_page[i] = i % 100;
    g_src[i] = i % 1000 == 500 ? -1 : i % 2;
    g_price[i] = (i % 1000) / 10.0;
  }
}


/* Filters: SQL text and the same condition on the model. */
typedef struct Filter {
  const char *zSql;
  int (*xPred)(int i);
  const char *zSel;
} Filter;

static int pj_g1(int i) { return i % 2 == 1; }
static int pj_p3(int i) { return i % 100 == 3; }
static int p_rowid100(int i) { return (i + 1) % 100 == 0; }
static int pj_m7(int i) { return i % 1000 == 7; }

/* Conditions the table cannot see: SQLite checks them on the rows the search streams. */
static const Filter aStream[] = {
    {"json_extract(metadata,'$.g') = 1", pj_g1, "50%"},
    {"json_extract(metadata,'$.p') = 3", pj_p3, "1%"},
    {"rowid % 100 = 0", p_rowid100, "1%"},
    {"json_extract(metadata,'$.m') = 7", pj_m7, "0.1%"},
};

static int pd_src_odd(int i) { return g_src[i] == 1; }
static int pd_src_not_even(int i) { return g_src[i] == 1; } /* != skips NULL */
static int pd_page_lt50(int i) { return g_page[i] < 50; }
static int pd_page_ge50(int i) { return g_page[i] >= 50; }
static int pd_src_notnull(int i) { return g_src[i] >= 0; }
static int pd_page3(int i) { return g_page[i] == 3; }
static int pd_page_in(int i) { return g_page[i] == 41 || g_page[i] == 42; }
static int pd_page_gt98(int i) { return g_page[i] > 98; }
static int pd_page_le0(int i) { return g_page[i] <= 0; }
static int pd_odd_low(int i) { return g_src[i] == 1 && g_page[i] < 2; }
static int pd_price_lt(int i) { return g_price[i] < 0.05; }
static int pd_src_null(int i) { return g_src[i] < 0; }
static int pd_page3_price(int i) { return g_page[i] == 3 && g_price[i] == 0.3; }
static int pd_price_gt(int i) { return g_price[i] > 99.85; }
static int pd_price_ge(int i) { return g_price[i] >= 99.9; }

/* Conditions on declared columns: applied inside the search. */
static const Filter aDeclared[] = {
    {"source = 'odd'", pd_src_odd, "50%"},
    {"source != 'even'", pd_src_not_even, "50%"},
    {"page < 50", pd_page_lt50, "50%"},
    {"page >= 50", pd_page_ge50, "50%"},
    {"source IS NOT NULL", pd_src_notnull, "99.9%"},
    {"page = 3", pd_page3, "1%"},
    {"page IN (41, 42)", pd_page_in, "2%"},
    {"page > 98", pd_page_gt98, "1%"},
    {"page <= 0", pd_page_le0, "1%"},
    {"source IN ('odd') AND page < 2", pd_odd_low, "1%"},
    {"price < 0.05", pd_price_lt, "0.1%"},
    {"source IS NULL", pd_src_null, "0.1%"},
    {"page = 3 AND price = 0.3", pd_page3_price, "0.1%"},
    {"price > 99.85", pd_price_gt, "0.1%"},
    {"price >= 99.9", pd_price_ge, "0.1%"},
};

/**************************************************************************************************
** Helpers.
*/

static void bind_row(sqlite3_stmt *pStmt, int i) {
  char zId[32], zContent[48], zMeta[96];
  snprintf(zId, sizeof(zId), "r%d", i);
  snprintf(zContent, sizeof(zContent), "document number %d", i);
  snprintf(zMeta, sizeof(zMeta), "{\"g\": %d, \"p\": %d, \"m\": %d}", i % 2, i % 100, i % 1000);
  sqlite3_bind_int64(pStmt, 1, (sqlite3_int64)i + 1);
  sqlite3_bind_text(pStmt, 2, zId, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(pStmt, 3, zContent, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(pStmt, 4, zMeta, -1, SQLITE_TRANSIENT);
  sqlite3_bind_blob(pStmt, 5, g_aData + (size_t)i * DIM, DIM * 4, SQLITE_STATIC);
  sqlite3_bind_int(pStmt, 6, i % 100);
  if (i % 1000 == 500) sqlite3_bind_null(pStmt, 7);
  else sqlite3_bind_text(pStmt, 7, i % 2 ? "odd" : "even", -1, SQLITE_STATIC);
  sqlite3_bind_double(pStmt, 8, (i % 1000) / 10.0);
}

/* Inserts data rows iFirst..iLast-1 (no BEGIN/COMMIT here). */
static void insert_rows(sqlite3 *db, int iFirst, int iLast) {
  sqlite3_stmt *pStmt = tu_prepare(db, "INSERT INTO t(rowid, id, content, metadata, embedding, page, source, price) "
                                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  for (int i = iFirst; i < iLast; i++) {
    bind_row(pStmt, i);
    int rc = sqlite3_step(pStmt);
    if (rc != SQLITE_DONE) fail_msg("insert of row %d failed: %s", i, sqlite3_errmsg(db));
    sqlite3_reset(pStmt);
  }
  sqlite3_finalize(pStmt);
}

typedef struct Res {
  int n;
  sqlite3_int64 aRowid[MAXROWS];
  double aDist[MAXROWS];
  double aScore[MAXROWS];
} Res;

/* Runs zSql (columns rowid, distance[, score]) with ?1 the query as a BLOB and ?2 a double if b2. */
static void run_query(sqlite3 *db, const char *zSql, const float *q, int d, int b2, double r2, Res *pRes) {
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  if (q) sqlite3_bind_blob(pStmt, 1, q, d * 4, SQLITE_TRANSIENT);
  if (b2) sqlite3_bind_double(pStmt, 2, r2);
  int rc;
  pRes->n = 0;
  int nCol = sqlite3_column_count(pStmt);
  while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    if (pRes->n >= MAXROWS) fail_msg("more than %d rows\n  in: %s", MAXROWS, zSql);
    pRes->aRowid[pRes->n] = sqlite3_column_int64(pStmt, 0);
    pRes->aDist[pRes->n] = nCol > 1 ? sqlite3_column_double(pStmt, 1) : 0;
    pRes->aScore[pRes->n] = nCol > 2 ? sqlite3_column_double(pStmt, 2) : 0;
    if (nCol > 1 && sqlite3_column_type(pStmt, 1) == SQLITE_NULL) fail_msg("NULL distance\n  in: %s", zSql);
    pRes->n++;
  }
  if (rc != SQLITE_DONE) fail_msg("query failed: %s\n  in: %s", sqlite3_errmsg(db), zSql);
  sqlite3_finalize(pStmt);
}

/* Every row of zSql must be zWant: columns joined by '|', rows by ','; reals with 4 decimals. */
static void expect_rows(sqlite3 *db, const char *zSql, const char *zWant) {
  tu_expect_rows(db, zSql, ",", "%.4f", zWant);
}

/* expect_rows of the SQL sqlite3_mprintf(zFmt, ...). */
static void expect_rows_fmt(sqlite3 *db, const char *zWant, const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  char *zSql = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  expect_rows(db, zSql, zWant);
  sqlite3_free(zSql);
}

/* The EXPLAIN QUERY PLAN details of zSql, joined by "; ". */
static char *plan_of(sqlite3 *db, const char *zSql) {
  char *zEqp = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", zSql);
  sqlite3_stmt *pStmt = tu_prepare(db, zEqp);
  sqlite3_free(zEqp);
  sqlite3_str *p = sqlite3_str_new(0);
  while (sqlite3_step(pStmt) == SQLITE_ROW) sqlite3_str_appendf(p, "%s; ", (const char *)sqlite3_column_text(pStmt, 3));
  sqlite3_finalize(pStmt);
  return sqlite3_str_finish(p);
}

static void expect_plan(sqlite3 *db, const char *zSql, const char *zHas, const char *zHasNot) {
  char *z = plan_of(db, zSql);
  if (zHas && strstr(z, zHas) == 0) fail_msg("plan '%s' lacks '%s'\n  in: %s", z, zHas, zSql);
  if (zHasNot && strstr(z, zHasNot) != 0) fail_msg("plan '%s' has '%s'\n  in: %s", z, zHasNot, zSql);
  sqlite3_free(z);
}

/* SQLite hands LIMIT to a virtual table together with MATCH only from 3.41 on. */
static int limit_with_match(void) { return sqlite3_libversion_number() >= 3041000; }

/* Exact order of the live model rows by l2 distance from each query. */
typedef struct Truth {
  int n;
  int aRow[NTOT];
  double aDist[NTOT];
} Truth;

static Truth *g_aTruth; /* NQ */
static double *g_aSortDist;

static int truth_cmp(const void *pA, const void *pB) {
  int a = *(const int *)pA, b = *(const int *)pB;
  if (g_aSortDist[a] != g_aSortDist[b]) return g_aSortDist[a] < g_aSortDist[b] ? -1 : 1;
  return a - b;
}

static void truth_compute(void) {
  if (g_aTruth == 0) g_aTruth = malloc(sizeof(Truth) * NQ);
  double *aDist = malloc(sizeof(double) * NTOT);
  for (int iQ = 0; iQ < NQ; iQ++) {
    Truth *t = &g_aTruth[iQ];
    t->n = 0;
    for (int i = 0; i < NTOT; i++) {
      if (!g_alive[i]) continue;
      aDist[i] = tu_ref_distance(g_vec[i], g_aQ + (size_t)iQ * DIM, DIM, M_L2);
      t->aRow[t->n++] = i;
    }
    g_aSortDist = aDist;
    qsort(t->aRow, (size_t)t->n, sizeof(int), truth_cmp);
    for (int j = 0; j < t->n; j++) t->aDist[j] = aDist[t->aRow[j]];
  }
  free(aDist);
}

/* The nWant nearest live rows matching xPred for query iQ (rows, distances); returns how many match in all. */
static int truth_filtered(int iQ, int (*xPred)(int), int nWant, int *aRow, double *aDist, int *pnGot) {
  const Truth *t = &g_aTruth[iQ];
  int nMatch = 0, nGot = 0;
  for (int j = 0; j < t->n; j++) {
    if (!xPred(t->aRow[j])) continue;
    if (nGot < nWant) {
      aRow[nGot] = t->aRow[j];
      aDist[nGot] = t->aDist[j];
      nGot++;
    }
    nMatch++;
  }
  *pnGot = nGot;
  return nMatch;
}

/* Runs zSql (?1 = query; columns rowid, distance) for every query and checks it against the nWant nearest live
** matching rows: exactly min(nWant, matches) rows, distinct, live, matching. bExact: the same rows in the same
** order with the true distances, non-decreasing. Returns the mean recall (a row counts when it is in the truth
** or exactly as close as the last truth row). */
static double check_filtered(sqlite3 *db, const char *zSql, int (*xPred)(int), int nWant, int bExact) {
  double rSum = 0;
  int aRow[MAXROWS];
  double aDist[MAXROWS];
  Res res;
  for (int iQ = 0; iQ < NQ; iQ++) {
    const float *q = g_aQ + (size_t)iQ * DIM;
    int nGot = 0;
    int nMatch = truth_filtered(iQ, xPred, nWant, aRow, aDist, &nGot);
    run_query(db, zSql, q, DIM, 0, 0, &res);
    if (res.n != nGot)
      fail_msg("query %d: %d rows, expected %d (%d rows match)\n  in: %s", iQ, res.n, nGot, nMatch, zSql);
    int nFound = 0;
    for (int j = 0; j < res.n; j++) {
      sqlite3_int64 r = res.aRowid[j];
      if (r < 1 || r > NTOT || !g_alive[r - 1]) fail_msg("query %d: rowid %lld is not a live row\n  in: %s", iQ, (long long)r, zSql);
      if (!xPred((int)(r - 1))) fail_msg("query %d: rowid %lld does not match the filter\n  in: %s", iQ, (long long)r, zSql);
      for (int k = 0; k < j; k++) {
        if (res.aRowid[k] == r) fail_msg("query %d: rowid %lld twice\n  in: %s", iQ, (long long)r, zSql);
      }
      double rTrue = tu_ref_distance(g_vec[r - 1], q, DIM, M_L2);
      int bIn = 0;
      for (int k = 0; k < nGot; k++) bIn |= aRow[k] == r - 1;
      if (bIn || (nGot > 0 && rTrue <= aDist[nGot - 1] * (1 + 1e-6))) nFound++;
      if (bExact) {
        if (j > 0 && res.aDist[j] < res.aDist[j - 1])
          fail_msg("query %d: distance %.9g after %.9g\n  in: %s", iQ, res.aDist[j], res.aDist[j - 1], zSql);
        if (fabs(res.aDist[j] - rTrue) > 1e-4 * fmax(1.0, rTrue))
          fail_msg("query %d rowid %lld: distance %.9g, true %.9g\n  in: %s", iQ, (long long)r, res.aDist[j], rTrue, zSql);
        if (aRow[j] != r - 1 && fabs(aDist[j] - rTrue) > 1e-4 * fmax(1.0, rTrue))
          fail_msg("query %d row %d: rowid %lld (distance %.9g), expected rowid %d (distance %.9g)\n  in: %s", iQ, j,
                   (long long)r, rTrue, aRow[j] + 1, aDist[j], zSql);
      }
    }
    rSum += nGot ? (double)nFound / nGot : 1.0;
  }
  return rSum / NQ;
}

/**************************************************************************************************
** The big per-index test.
*/

typedef struct IndexCase {
  const char *zName;
  const char *zFactory;
  const char *zCreateParams; /* search_params at CREATE, or 0 */
  const char *zQueryParams;  /* appended to every search as AND search_params = '...', or 0 */
  int bTrain;
  int bExact;
} IndexCase;

/* Recall shortfalls of an approximate index are collected and reported at the end of the case, so that the
** exact checks (row counts, membership, transactions) still run. */
static sqlite3_str *g_pSoft;

static void recall_check(double r, double rMin, const char *zSql) {
  if (r >= rMin) return;
  if (g_pSoft == 0) g_pSoft = sqlite3_str_new(0);
  sqlite3_str_appendf(g_pSoft, "\n  recall %.4f < %.2f in: %s", r, rMin, zSql);
}

/* Like tu_expect_error, but a missing error is collected with the recall shortfalls. */
static void expect_error_soft(sqlite3 *db, const char *zSql, const char *zFrag) {
  char *zErr = 0;
  int rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
  if (rc != SQLITE_OK && zErr && strstr(zErr, "vecstore: ") && strstr(zErr, zFrag)) {
    sqlite3_free(zErr);
    return;
  }
  if (g_pSoft == 0) g_pSoft = sqlite3_str_new(0);
  sqlite3_str_appendf(g_pSoft, "\n  %s (expected an error with '%s') in: %.150s...", rc == SQLITE_OK ? "no error" : zErr,
                      zFrag, zSql);
  sqlite3_free(zErr);
}

/* "SELECT rowid, distance, score FROM t WHERE embedding MATCH ?1 [AND search_params = ...] AND <zMore>" */
static char *knn_sql(const IndexCase *pCase, const char *zMore) {
  if (pCase->zQueryParams) {
    return sqlite3_mprintf("SELECT rowid, distance, score FROM t WHERE embedding MATCH ?1 AND search_params = '%q' %s",
                           pCase->zQueryParams, zMore);
  }
  return sqlite3_mprintf("SELECT rowid, distance, score FROM t WHERE embedding MATCH ?1 %s", zMore);
}

static void check_streaming(sqlite3 *db, const IndexCase *pCase, const char *zPhase) {
  for (size_t f = 0; f < sizeof(aStream) / sizeof(aStream[0]); f++) {
    char *zMore = sqlite3_mprintf("AND %s LIMIT 10", aStream[f].zSql);
    char *zSql = knn_sql(pCase, zMore);
    double r = check_filtered(db, zSql, aStream[f].xPred, 10, pCase->bExact);
    printf("    %-11s %-6s streaming %-34s (%5s) LIMIT 10: recall@10 = %.4f\n", pCase->zName, zPhase, aStream[f].zSql,
           aStream[f].zSel, r);
    if (pCase->bExact) assert_true(r == 1.0);
    else recall_check(r, 0.95, zSql);
    sqlite3_free(zMore);
    sqlite3_free(zSql);
  }
  /* A LIMIT above the number of matching rows: all of them (the stream goes through the whole table). */
  char *zSql = knn_sql(pCase, "AND json_extract(metadata,'$.m') = 7 LIMIT 40");
  double r = check_filtered(db, zSql, pj_m7, 40, pCase->bExact);
  assert_true(r == 1.0);
  sqlite3_free(zSql);
}

static void check_declared(sqlite3 *db, const IndexCase *pCase, const char *zPhase) {
  for (size_t f = 0; f < sizeof(aDeclared) / sizeof(aDeclared[0]); f++) {
    char *zMore = sqlite3_mprintf("AND k = 10 AND %s", aDeclared[f].zSql);
    char *zSql = knn_sql(pCase, zMore);
    double r = check_filtered(db, zSql, aDeclared[f].xPred, 10, pCase->bExact);
    printf("    %-11s %-6s declared  %-34s (%5s) k = 10:   recall@10 = %.4f\n", pCase->zName, zPhase,
           aDeclared[f].zSql, aDeclared[f].zSel, r);
    if (pCase->bExact) assert_true(r == 1.0);
    else recall_check(r, 0.95, zSql);
    /* The condition is inside the search: the plan names its column and k is still consumed by the table. */
    char *zToken = sqlite3_mprintf(" %.*s:", (int)strcspn(aDeclared[f].zSql, " "), aDeclared[f].zSql);
    expect_plan(db, zSql, "match", 0);
    expect_plan(db, zSql, " k", 0);
    expect_plan(db, zSql, zToken, 0);
    sqlite3_free(zToken);
    sqlite3_free(zMore);
    sqlite3_free(zSql);
  }
  /* LIMIT instead of k, and a k above the number of matches (all of them). */
  char *zSql = knn_sql(pCase, "AND page = 3 LIMIT 10");
  double r = check_filtered(db, zSql, pd_page3, 10, pCase->bExact);
  if (pCase->bExact) assert_true(r == 1.0);
  else recall_check(r, 0.95, zSql);
  sqlite3_free(zSql);
  zSql = knn_sql(pCase, "AND k = 50 AND price > 99.85");
  assert_true(check_filtered(db, zSql, pd_price_gt, 50, pCase->bExact) == 1.0);
  sqlite3_free(zSql);
  /* Plain scans with the same conditions return exactly the matching rows, in rowid order. */
  for (size_t f = 0; f < sizeof(aDeclared) / sizeof(aDeclared[0]); f++) {
    char *zScan = sqlite3_mprintf("SELECT rowid FROM t WHERE %s", aDeclared[f].zSql);
    sqlite3_stmt *pStmt = tu_prepare(db, zScan);
    int i = 0, rc;
    sqlite3_int64 iPrev = 0;
    while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
      sqlite3_int64 r = sqlite3_column_int64(pStmt, 0);
      if (r <= iPrev) fail_msg("scan: rowid %lld after %lld\n  in: %s", (long long)r, (long long)iPrev, zScan);
      while (i < NTOT && i + 1 < r) {
        if (g_alive[i] && aDeclared[f].xPred(i)) fail_msg("scan: rowid %d missing\n  in: %s", i + 1, zScan);
        i++;
      }
      if (r > NTOT || !g_alive[r - 1] || !aDeclared[f].xPred((int)r - 1))
        fail_msg("scan: rowid %lld should not match\n  in: %s", (long long)r, zScan);
      iPrev = r;
      i = (int)r;
    }
    if (rc != SQLITE_DONE) fail_msg("scan failed: %s\n  in: %s", sqlite3_errmsg(db), zScan);
    for (; i < NTOT; i++) {
      if (g_alive[i] && aDeclared[f].xPred(i)) fail_msg("scan: rowid %d missing at the end\n  in: %s", i + 1, zScan);
    }
    sqlite3_finalize(pStmt);
    char *zToken = sqlite3_mprintf("INDEX 0:%.*s:", (int)strcspn(aDeclared[f].zSql, " "), aDeclared[f].zSql);
    expect_plan(db, zScan, zToken, 0);
    sqlite3_free(zToken);
    sqlite3_free(zScan);
  }
}

/* Without k or LIMIT a search returns every row once. */
static void check_whole_table(sqlite3 *db, const IndexCase *pCase) {
  int nAlive = 0;
  for (int i = 0; i < NTOT; i++) nAlive += g_alive[i];
  char *zSql = pCase->zQueryParams
                   ? sqlite3_mprintf("SELECT count(*), count(DISTINCT rowid), min(rowid), max(rowid) FROM t "
                                     "WHERE embedding MATCH ?1 AND search_params = '%q'", pCase->zQueryParams)
                   : sqlite3_mprintf("SELECT count(*), count(DISTINCT rowid), min(rowid), max(rowid) FROM t "
                                     "WHERE embedding MATCH ?1");
  for (int iQ = 0; iQ < 2; iQ++) {
    sqlite3_stmt *pStmt = tu_prepare(db, zSql);
    sqlite3_bind_blob(pStmt, 1, g_aQ + (size_t)iQ * DIM, DIM * 4, SQLITE_STATIC);
    if (sqlite3_step(pStmt) != SQLITE_ROW) fail_msg("%s: %s", zSql, sqlite3_errmsg(db));
    int n = sqlite3_column_int(pStmt, 0), nDistinct = sqlite3_column_int(pStmt, 1);
    if (n != nAlive || nDistinct != nAlive)
      fail_msg("%s: whole-table search gave %d rows (%d distinct), expected %d", pCase->zName, n, nDistinct, nAlive);
    sqlite3_finalize(pStmt);
  }
  sqlite3_free(zSql);
  /* Flat: and in non-decreasing distance. */
  if (pCase->bExact) {
    sqlite3_stmt *pStmt = tu_prepare(db, "SELECT distance FROM t WHERE embedding MATCH ?1");
    sqlite3_bind_blob(pStmt, 1, g_aQ, DIM * 4, SQLITE_STATIC);
    double rPrev = -1;
    int n = 0;
    while (sqlite3_step(pStmt) == SQLITE_ROW) {
      double r = sqlite3_column_double(pStmt, 0);
      if (r < rPrev) fail_msg("row %d: distance %.9g after %.9g", n, r, rPrev);
      rPrev = r;
      n++;
    }
    assert_int_equal(n, nAlive);
    sqlite3_finalize(pStmt);
  }
}

static void expect_same(const Res *a, const Res *b, int iFrom, int n, const char *zWhat) {
  if (b->n != n) fail_msg("%s: %d rows, expected %d", zWhat, b->n, n);
  for (int i = 0; i < n; i++) {
    if (a->aRowid[iFrom + i] != b->aRowid[i] || fabs(a->aDist[iFrom + i] - b->aDist[i]) > 1e-6)
      fail_msg("%s: row %d is rowid %lld (%.6g), expected %lld (%.6g)", zWhat, i, (long long)b->aRowid[i], b->aDist[i],
               (long long)a->aRowid[iFrom + i], a->aDist[iFrom + i]);
  }
}

/* k, LIMIT, ORDER BY distance / score DESC, OFFSET, k = 0. */
static void check_k_limit(sqlite3 *db, const IndexCase *pCase) {
  char *zK = knn_sql(pCase, "AND k = 10");
  char *zLimit = knn_sql(pCase, "LIMIT 10");
  char *zOrd = knn_sql(pCase, "ORDER BY distance LIMIT 10");
  char *zScore = knn_sql(pCase, "ORDER BY score DESC LIMIT 10");
  char *zOffset = knn_sql(pCase, "LIMIT 5 OFFSET 5");
  char *zOrdOffset = knn_sql(pCase, "ORDER BY distance LIMIT 5 OFFSET 5");
  char *zK0 = knn_sql(pCase, "AND k = 0");
  char *zL0 = knn_sql(pCase, "LIMIT 0");
  char *zK5L3 = knn_sql(pCase, "AND k = 5 LIMIT 3");
  char *zK3L5 = knn_sql(pCase, "AND k = 3 LIMIT 5");
  Res a, b;
  for (int iQ = 0; iQ < 5; iQ++) {
    const float *q = g_aQ + (size_t)iQ * DIM;
    run_query(db, zK, q, DIM, 0, 0, &a);
    assert_int_equal(a.n, 10);
    for (int i = 0; i < 10; i++) {
      double rWant = tu_ref_score(a.aDist[i], M_L2);
      if (fabs(a.aScore[i] - rWant) > 1e-6) fail_msg("score %.9g, expected %.9g", a.aScore[i], rWant);
    }
    /* LIMIT 10 equals k = 10 exactly when the table gets the LIMIT or the index is exact; an approximate index
    ** asked for a first batch of another size may legitimately differ a little. */
    Res l;
    run_query(db, zLimit, q, DIM, 0, 0, &l);
    if (pCase->bExact || limit_with_match()) {
      expect_same(&a, &l, 0, 10, zLimit);
    } else {
      assert_int_equal(l.n, 10);
      int nSame = 0;
      for (int i = 0; i < 10; i++) {
        for (int j = 0; j < 10; j++) nSame += l.aRowid[i] == a.aRowid[j];
      }
      if (nSame < 8) fail_msg("LIMIT 10 and k = 10 share only %d rows\n  in: %s", nSame, zLimit);
    }
    run_query(db, zOrd, q, DIM, 0, 0, &b);
    expect_same(&l, &b, 0, 10, zOrd);
    run_query(db, zScore, q, DIM, 0, 0, &b);
    expect_same(&l, &b, 0, 10, zScore);
    run_query(db, zOffset, q, DIM, 0, 0, &b);
    expect_same(&l, &b, 5, 5, zOffset);
    run_query(db, zOrdOffset, q, DIM, 0, 0, &b);
    expect_same(&l, &b, 5, 5, zOrdOffset);
    run_query(db, zK0, q, DIM, 0, 0, &b);
    assert_int_equal(b.n, 0);
    run_query(db, zL0, q, DIM, 0, 0, &b);
    assert_int_equal(b.n, 0);
    run_query(db, zK5L3, q, DIM, 0, 0, &b);
    assert_int_equal(b.n, 3);
    if (pCase->bExact) expect_same(&a, &b, 0, 3, zK5L3);
    run_query(db, zK3L5, q, DIM, 0, 0, &b);
    assert_int_equal(b.n, 3);
    if (pCase->bExact) expect_same(&a, &b, 0, 3, zK3L5);
  }
  /* Nothing is sorted again; the plan hands LIMIT (and OFFSET) to the table where SQLite offers it with MATCH
  ** (3.41 and later; older versions never pass LIMIT together with MATCH, and results are the same). */
  expect_plan(db, zLimit, "match", "B-TREE");
  expect_plan(db, zOrd, "match", "B-TREE");
  expect_plan(db, zScore, "match", "B-TREE");
  expect_plan(db, zK, " k", "B-TREE");
  if (limit_with_match()) {
    expect_plan(db, zLimit, "limit", 0);
    expect_plan(db, zOrd, "limit", 0);
    expect_plan(db, zScore, "limit", 0);
    expect_plan(db, zOffset, "offset", 0);
  }
  sqlite3_free(zK);
  sqlite3_free(zLimit);
  sqlite3_free(zOrd);
  sqlite3_free(zScore);
  sqlite3_free(zOffset);
  sqlite3_free(zOrdOffset);
  sqlite3_free(zK0);
  sqlite3_free(zL0);
  sqlite3_free(zK5L3);
  sqlite3_free(zK3L5);
}

/* rowid / id = and IN with MATCH: exactly the nearest among those rows. */
static void check_among(sqlite3 *db, const IndexCase *pCase, const int *aExtra, int nExtra) {
  uint64_t s = 77;
  for (int iQ = 0; iQ < 5; iQ++) {
    const float *q = g_aQ + (size_t)iQ * DIM;
    int aPick[16], n = 0;
    while (n < 10) {
      int i = (int)(tu_rand(&s) % NBASE);
      int bDup = 0;
      for (int j = 0; j < n; j++) bDup |= aPick[j] == i;
      if (!bDup) aPick[n++] = i;
    }
    for (int j = 0; j < nExtra; j++) { /* e.g. a deleted and an inserted row */
      int bDup = 0;
      for (int k = 0; k < n; k++) bDup |= aPick[k] == aExtra[j];
      if (!bDup) aPick[n++] = aExtra[j];
    }
    /* the 3 nearest live rows of the set, by the model */
    int aBest[16], nBest = 0;
    double aBestDist[16];
    for (int j = 0; j < n; j++) {
      if (!g_alive[aPick[j]]) continue;
      tu_topk_add(aBest, aBestDist, &nBest, 16, aPick[j], tu_ref_distance(g_vec[aPick[j]], q, DIM, M_L2));
    }
    sqlite3_str *pR = sqlite3_str_new(0), *pI = sqlite3_str_new(0);
    for (int j = 0; j < n; j++) {
      sqlite3_str_appendf(pR, "%s%d", j ? ", " : "", aPick[j] + 1);
      sqlite3_str_appendf(pI, "%s'r%d'", j ? ", " : "", aPick[j]);
    }
    char *zR = sqlite3_str_finish(pR), *zI = sqlite3_str_finish(pI);
    const char *azFmt[] = {"AND k = 3 AND rowid IN (%s)", "AND k = 3 AND id IN (%s)",
                           "AND rowid IN (%s) ORDER BY distance LIMIT 3", "AND rowid IN (%s)"};
    for (int v = 0; v < 4; v++) {
      char *zMore = sqlite3_mprintf(azFmt[v], v == 1 ? zI : zR);
      char *zSql = knn_sql(pCase, zMore);
      Res res;
      run_query(db, zSql, q, DIM, 0, 0, &res);
      int nWant = v == 3 ? nBest : 3;
      if (res.n != nWant) fail_msg("%d rows, expected %d\n  in: %s", res.n, nWant, zSql);
      for (int j = 0; j < nWant; j++) {
        if (res.aRowid[j] != aBest[j] + 1 || fabs(res.aDist[j] - aBestDist[j]) > 1e-4 * fmax(1.0, aBestDist[j]))
          fail_msg("row %d: rowid %lld (%.9g), expected %d (%.9g)\n  in: %s", j, (long long)res.aRowid[j],
                   res.aDist[j], aBest[j] + 1, aBestDist[j], zSql);
      }
      if (v == 0) expect_plan(db, zSql, "rowid-in", 0);
      if (v == 1) expect_plan(db, zSql, "id-in", 0);
      sqlite3_free(zMore);
      sqlite3_free(zSql);
    }
    /* rowid = ? and id = ? with MATCH: that one row, with its exact distance; a deleted row gives nothing. */
    for (int v = 0; v < 2; v++) {
      int i = aPick[iQ];
      char *zMore = v ? sqlite3_mprintf("AND id = 'r%d'", i) : sqlite3_mprintf("AND rowid = %d", i + 1);
      char *zSql = knn_sql(pCase, zMore);
      Res res;
      run_query(db, zSql, q, DIM, 0, 0, &res);
      if (!g_alive[i]) {
        assert_int_equal(res.n, 0);
      } else {
        double r = tu_ref_distance(g_vec[i], q, DIM, M_L2);
        if (res.n != 1 || res.aRowid[0] != i + 1 || fabs(res.aDist[0] - r) > 1e-4 * fmax(1.0, r))
          fail_msg("%d rows (first %lld), expected rowid %d at %.9g\n  in: %s", res.n, res.n ? (long long)res.aRowid[0] : 0LL,
                   i + 1, r, zSql);
      }
      expect_plan(db, zSql, v ? "id-eq" : "rowid-eq", 0);
      sqlite3_free(zMore);
      sqlite3_free(zSql);
    }
    sqlite3_free(zR);
    sqlite3_free(zI);
  }
}

/* Radius on an approximate or exact index: only rows within it; on Flat exactly them. */
static void check_radius_big(sqlite3 *db, const IndexCase *pCase) {
  char *zLe = knn_sql(pCase, "AND distance <= ?2");
  char *zGe = knn_sql(pCase, "AND score >= ?2");
  double rSum = 0;
  for (int iQ = 0; iQ < 5; iQ++) {
    const Truth *t = &g_aTruth[iQ];
    double r = t->aDist[29] + 1e-3; /* the 30 nearest are within it */
    int nWant = 0;
    while (nWant < t->n && t->aDist[nWant] <= r) nWant++;
    Res res;
    for (int v = 0; v < 2; v++) {
      run_query(db, v ? zGe : zLe, g_aQ + (size_t)iQ * DIM, DIM, 1, v ? tu_ref_score(r, M_L2) : r, &res);
      int nIn = 0;
      for (int j = 0; j < res.n; j++) {
        double rTrue = tu_ref_distance(g_vec[res.aRowid[j] - 1], g_aQ + (size_t)iQ * DIM, DIM, M_L2);
        /* SQ8 reports (and compares) approximate distances: the reported one must be within the radius */
        double rSeen = pCase->bExact ? rTrue : res.aDist[j];
        if (rSeen > r * (1 + 1e-5)) fail_msg("rowid %lld at %.9g is outside the radius %.9g", (long long)res.aRowid[j], rSeen, r);
        nIn += rTrue <= r;
      }
      if (pCase->bExact && res.n != nWant) fail_msg("%d rows within the radius, expected %d", res.n, nWant);
      rSum += (double)nIn / nWant;
    }
  }
  printf("    %-11s radius distance <= r / score >= t (30 rows within): recall = %.4f\n", pCase->zName, rSum / 10);
  recall_check(rSum / 10, 0.95, zLe);
  sqlite3_free(zLe);
  sqlite3_free(zGe);
}

/* A bad search_params name is an error whatever the plan: among a rowid set, with a declared-column filter
** (exact among few matches, or MMR), not only when the index itself is searched. */
static void check_params_everywhere(sqlite3 *db) {
  char *zQ = tu_vec_json(g_aQ, DIM);
  const char *azMore[] = {"AND k = 5 AND page = 3", "AND k = 3 AND rowid IN (1, 2, 3, 4)", "AND k = 3 AND id = 'r5'",
                          "AND lambda_mult = 0.5 AND page = 3"};
  for (int v = 0; v < 4; v++) {
    char *zSql = sqlite3_mprintf("SELECT rowid FROM t WHERE %s AND search_params = 'bogus=1' AND embedding MATCH '%q'",
                                 azMore[v] + 4, zQ);
    expect_error_soft(db, zSql, "bogus");
    sqlite3_free(zSql);
  }
  sqlite3_free(zQ);
}

/* search_params: a bad name or form is a clear error. */
static void check_params(sqlite3 *db, const IndexCase *pCase) {
  char *zQ = tu_vec_json(g_aQ, DIM);
  const char *azMore[] = {"AND k = 5", "AND k = 5 AND page >= 50", "AND lambda_mult = 0.5",
                          "AND json_extract(metadata,'$.p') = 3 LIMIT 5"};
  for (int v = 0; v < 4; v++) {
    char *zSql = sqlite3_mprintf("SELECT rowid FROM t WHERE embedding MATCH '%q' AND search_params = 'bogus=1' %s", zQ,
                                 azMore[v]);
    tu_expect_error(db, zSql, "vecstore: ", "bogus", NULL);
    sqlite3_free(zSql);
  }
  char *zSql = sqlite3_mprintf("SELECT rowid FROM t WHERE embedding MATCH '%q' AND search_params = 'efSearch' AND k = 5", zQ);
  tu_expect_error(db, zSql, "vecstore: ", "efSearch", NULL);
  sqlite3_free(zSql);
  sqlite3_free(zQ);

  (void)pCase;
}

/* The transaction: inserts, deletes, embedding and metadata updates, all uncommitted. */
static void apply_transaction(sqlite3 *db) {
  insert_rows(db, NBASE, NTOT);
  for (int i = NBASE; i < NTOT; i++) g_alive[i] = 1;
  tu_exec(db, "DELETE FROM t WHERE rowid % 37 = 0");
  for (int i = 0; i < NTOT; i++) {
    if ((i + 1) % 37 == 0) g_alive[i] = 0;
  }
  sqlite3_stmt *pStmt = tu_prepare(db, "UPDATE t SET embedding = ?1 WHERE rowid = ?2");
  for (int u = 0; u < NUPD; u++) {
    int i = u * 200 + 1;
    const float *v = g_aData + (size_t)(NTOT + u) * DIM;
    sqlite3_bind_blob(pStmt, 1, v, DIM * 4, SQLITE_STATIC);
    sqlite3_bind_int64(pStmt, 2, i + 1);
    assert_int_equal(sqlite3_step(pStmt), SQLITE_DONE);
    sqlite3_reset(pStmt);
    g_vec[i] = v;
  }
  sqlite3_finalize(pStmt);
  /* declared columns: page 3 gains 10 rows, 10 sources become NULL, 5 of the price < 0.05 rows go */
  tu_exec(db, "UPDATE t SET page = 3 WHERE rowid % 1000 = 2");
  tu_exec(db, "UPDATE t SET source = NULL WHERE rowid % 1000 = 701");
  tu_exec(db, "DELETE FROM t WHERE price < 0.05 AND rowid <= 5000");
  for (int i = 0; i < NTOT; i++) {
    if (i % 1000 == 1) g_page[i] = 3;
    if (i % 1000 == 700) g_src[i] = -1;
    if (i % 1000 == 0 && i < 5000) g_alive[i] = 0;
  }
  int nAlive = 0;
  for (int i = 0; i < NTOT; i++) nAlive += g_alive[i];
  assert_int_equal(tu_int(db, "SELECT count(*) FROM t"), nAlive);
}

static void run_case(const IndexCase *pCase) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  char zFile[64];
  snprintf(zFile, sizeof(zFile), "sem_%s.db", pCase->zName);
  sqlite3 *db = tu_open_fresh(zFile);
  if (pCase->zCreateParams) {
    tu_exec_fmt(db, "CREATE VIRTUAL TABLE t USING vecstore(dim = %d, index = '%q', search_params = '%q', page INTEGER, "
                    "source TEXT, price REAL)", DIM, pCase->zFactory, pCase->zCreateParams);
  } else {
    tu_exec_fmt(db, "CREATE VIRTUAL TABLE t USING vecstore(dim = %d, index = '%q', page INTEGER, source TEXT, "
                    "price REAL)", DIM, pCase->zFactory);
  }
  model_reset();
  tu_exec(db, "BEGIN");
  insert_rows(db, 0, NBASE);
  tu_exec(db, "COMMIT");
  if (pCase->bTrain) tu_exec(db, "INSERT INTO t(t) VALUES ('train')");
  assert_int_equal(tu_int(db, "SELECT count(*) FROM t"), NBASE);
  truth_compute();

  check_streaming(db, pCase, "commit");
  check_declared(db, pCase, "commit");
  check_whole_table(db, pCase);
  check_k_limit(db, pCase);
  check_among(db, pCase, 0, 0);
  check_radius_big(db, pCase);
  check_params(db, pCase);
  Res before;
  char *zRef = knn_sql(pCase, "AND json_extract(metadata,'$.p') = 3 LIMIT 10");
  run_query(db, zRef, g_aQ, DIM, 0, 0, &before);

  /* The same inside a transaction, before COMMIT. */
  tu_exec(db, "BEGIN");
  apply_transaction(db);
  truth_compute();
  check_streaming(db, pCase, "txn");
  check_declared(db, pCase, "txn");
  check_whole_table(db, pCase);
  check_k_limit(db, pCase);
  int aExtra[] = {36 /* deleted: rowid 37 */, 1 /* new embedding */, NBASE + 7 /* inserted */, 4000 /* deleted by price */};
  check_among(db, pCase, aExtra, 4);
  check_radius_big(db, pCase);
  tu_exec(db, "ROLLBACK");

  model_reset();
  truth_compute();
  assert_int_equal(tu_int(db, "SELECT count(*) FROM t"), NBASE);
  Res after;
  run_query(db, zRef, g_aQ, DIM, 0, 0, &after);
  expect_same(&before, &after, 0, before.n, "after ROLLBACK");
  sqlite3_free(zRef);
  check_declared(db, pCase, "rolled");
  check_params_everywhere(db);
  tu_close_remove(db, zFile);
  if (g_pSoft) {
    static char zMsg[4096];
    char *z = sqlite3_str_finish(g_pSoft);
    g_pSoft = 0;
    snprintf(zMsg, sizeof(zMsg), "%s", z ? z : "");
    sqlite3_free(z);
    printf("    %s: FAILED checks:%s\n", pCase->zName, zMsg);
    fail_msg("%s: recall below the bar or a missing error (listed above)", pCase->zName);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("    %-11s done in %.2f s\n", pCase->zName, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
}

static void test_flat(void **state) {
  (void)state;
  IndexCase c = {"Flat", "Flat", 0, 0, 0, 1};
  run_case(&c);
}

static void test_hnsw(void **state) {
  (void)state;
  IndexCase c = {"HNSW32", "HNSW32", "efSearch=64", 0, 0, 0};
  run_case(&c);
}

static void test_ivf(void **state) {
  (void)state;
  IndexCase c = {"IVF64,Flat", "IVF64,Flat", 0, "nprobe=16", 1, 0};
  run_case(&c);
}

static void test_hnsw_sq8(void **state) {
  (void)state;
  IndexCase c = {"HNSW32,SQ8", "HNSW32,SQ8", "efSearch=64", 0, 1, 0};
  run_case(&c);
}

/**************************************************************************************************
** Small hand-made cases.
*/

static const char *zFakeQuery = "'[1,1,1,1,1,1,1,1,1,0]'";

/* LangChain's fetch_k: only the fetch_k nearest rows are candidates, SQL filters apply to them. */
static void test_fetch_k_postfilter(void **state) {
  (void)state;
  const char *azIndex[] = {"Flat", "HNSW32"};
  sqlite3 *db = tu_open_fresh("fetchk.db");
  for (int x = 0; x < 2; x++) {
    tu_exec_fmt(db, "CREATE VIRTUAL TABLE f USING vecstore(dim = 10, index = '%q')", azIndex[x]);
    tu_exec(db, "INSERT INTO f(rowid, id, content, metadata, embedding) VALUES "
                "(12, 'c', 'text 2', '{\"page\": 2}', '[1,1,1,1,1,1,1,1,1,2]'), "
                "(10, 'a', 'text 0', '{\"page\": 0}', '[1,1,1,1,1,1,1,1,1,0]'), "
                "(11, 'b', 'text 1', '{\"page\": 1}', '[1,1,1,1,1,1,1,1,1,1]')");
    const char *azFilter[] = {"json_extract(metadata,'$.page') = 2", "content = 'text 2'"};
    for (int v = 0; v < 2; v++) {
      const char *zF = azFilter[v];
      expect_rows_fmt(db, "", "SELECT rowid, distance FROM f WHERE embedding MATCH %s AND fetch_k = 2 AND %s",
                      zFakeQuery, zF);
      expect_rows_fmt(db, "12|4.0000", "SELECT rowid, distance FROM f WHERE embedding MATCH %s AND fetch_k = 3 AND %s",
                      zFakeQuery, zF);
      expect_rows_fmt(db, "12|4.0000", "SELECT rowid, distance FROM f WHERE embedding MATCH %s AND %s LIMIT 1",
                      zFakeQuery, zF);
      expect_rows_fmt(db, "12|4.0000",
                      "SELECT rowid, distance FROM f WHERE embedding MATCH %s AND fetch_k = 3 AND %s LIMIT 1",
                      zFakeQuery, zF);
      expect_rows_fmt(db, "", "SELECT rowid, distance FROM f WHERE embedding MATCH %s AND fetch_k = 2 AND %s LIMIT 1",
                      zFakeQuery, zF);
    }
    /* Without a filter: the fetch_k nearest; k and fetch_k together: the smaller. */
    expect_rows_fmt(db, "10|0.0000,11|1.0000",
                    "SELECT rowid, distance FROM f WHERE embedding MATCH %s AND fetch_k = 2", zFakeQuery);
    expect_rows_fmt(db, "10,11", "SELECT rowid FROM f WHERE embedding MATCH %s AND fetch_k = 2 AND k = 5", zFakeQuery);
    expect_rows_fmt(db, "", "SELECT rowid FROM f WHERE embedding MATCH %s AND fetch_k = 0", zFakeQuery);
    /* Inside a transaction an uncommitted nearer row pushes the farthest out of fetch_k = 3. */
    tu_exec(db, "BEGIN");
    tu_exec(db, "INSERT INTO f(rowid, content, metadata, embedding) VALUES (13, 'text 3', '{\"page\": 3}', "
                "'[1,1,1,1,1,1,1,1,1,0.5]')");
    const char *zPage2 = "SELECT rowid FROM f WHERE embedding MATCH %s AND fetch_k = %d AND "
                         "json_extract(metadata,'$.page') = 2";
    expect_rows_fmt(db, "", zPage2, zFakeQuery, 3);
    expect_rows_fmt(db, "12", zPage2, zFakeQuery, 4);
    tu_exec(db, "DELETE FROM f WHERE rowid = 11");
    expect_rows_fmt(db, "12", zPage2, zFakeQuery, 3);
    tu_exec(db, "ROLLBACK");
    /* Errors. */
    char *zSql = sqlite3_mprintf("SELECT rowid FROM f WHERE embedding MATCH %s AND fetch_k = -1", zFakeQuery);
    tu_expect_error(db, zSql, "vecstore: ", "fetch_k", "-1", NULL);
    sqlite3_free(zSql);
    zSql = sqlite3_mprintf("SELECT rowid FROM f WHERE embedding MATCH %s AND k = -2", zFakeQuery);
    tu_expect_error(db, zSql, "vecstore: ", "k must be", "-2", NULL);
    sqlite3_free(zSql);
    tu_expect_error(db, "SELECT rowid FROM f WHERE fetch_k = 2", "vecstore: ", "fetch_k", "MATCH", NULL);
    tu_exec(db, "DROP TABLE f");
  }
  tu_close_remove(db, "fetchk.db");
}

/* distance < r, <= r, score >= t, score > t against brute force, for every metric (Flat). */
static void test_radius(void **state) {
  (void)state;
  const char *azMetric[] = {"l2", "ip", "cosine"};
  enum { N = 2000, D = 16 };
  float *aVec = malloc(sizeof(float) * N * D), aQ[5 * D];
  uint64_t s = 99;
  for (int i = 0; i < N * D; i++) aVec[i] = (float)gauss(&s);
  for (int i = 0; i < 5 * D; i++) aQ[i] = (float)gauss(&s);
  sqlite3 *db = tu_open_fresh("radius.db");
  for (int m = 0; m < 3; m++) {
    tu_exec_fmt(db, "CREATE VIRTUAL TABLE r USING vecstore(dim = %d, metric = %s)", D, azMetric[m]);
    tu_insert_vectors(db, "INSERT INTO r(rowid, embedding) VALUES (?1, ?2)", aVec, N, D);
    for (int iQ = 0; iQ < 5; iQ++) {
      const float *q = aQ + iQ * D;
      /* brute force, sorted */
      int aRow[N];
      double aD[N];
      tu_brute_force(aVec, N, D, q, m, N, aRow, aD);
      Res top;
      run_query(db, "SELECT rowid, distance, score FROM r WHERE embedding MATCH ?1 AND k = 50", q, D, 0, 0, &top);
      assert_int_equal(top.n, 50);
      for (int j = 0; j < 50; j++) {
        if (top.aRowid[j] != aRow[j] + 1 || fabs(top.aDist[j] - aD[j]) > 1e-4 * fmax(1.0, fabs(aD[j])))
          fail_msg("%s: row %d is %lld (%.9g), expected %d (%.9g)", azMetric[m], j, (long long)top.aRowid[j],
                   top.aDist[j], aRow[j] + 1, aD[j]);
        if (fabs(top.aScore[j] - tu_ref_score(top.aDist[j], m)) > 1e-9) fail_msg("%s: score", azMetric[m]);
      }
      /* Radius at the 50th row's own distance (as the table reports it): < excludes it, <= includes it. */
      double r50 = top.aDist[49], s50 = top.aScore[49];
      struct {
        const char *zSql;
        double rArg;
        int nWant;
      } aCase[] = {
          {"SELECT rowid, distance, score FROM r WHERE embedding MATCH ?1 AND distance < ?2", r50, 49},
          {"SELECT rowid, distance, score FROM r WHERE embedding MATCH ?1 AND distance <= ?2", r50, 50},
          {"SELECT rowid, distance, score FROM r WHERE embedding MATCH ?1 AND score >= ?2", s50, 50},
          {"SELECT rowid, distance, score FROM r WHERE embedding MATCH ?1 AND score > ?2", s50, 49},
          {"SELECT rowid, distance, score FROM r WHERE embedding MATCH ?1 AND distance <= ?2 AND k = 10", r50, 10},
          {"SELECT rowid, distance, score FROM r WHERE embedding MATCH ?1 AND score >= ?2 ORDER BY distance LIMIT 20", s50, 20},
          {"SELECT rowid, distance, score FROM r WHERE embedding MATCH ?1 AND distance < ?2 AND rowid % 2 = 0", r50, -1},
      };
      for (size_t c = 0; c < sizeof(aCase) / sizeof(aCase[0]); c++) {
        Res res;
        run_query(db, aCase[c].zSql, q, D, 1, aCase[c].rArg, &res);
        if (aCase[c].nWant < 0) {
          int k = 0;
          for (int j = 0; j < 49; j++) {
            if (top.aRowid[j] % 2 != 0) continue;
            if (k >= res.n || res.aRowid[k] != top.aRowid[j]) fail_msg("%s: even rows within the radius differ", azMetric[m]);
            k++;
          }
          assert_int_equal(res.n, k);
          continue;
        }
        if (res.n != aCase[c].nWant)
          fail_msg("%s query %d: %d rows, expected %d\n  in: %s (?2 = %.17g)", azMetric[m], iQ, res.n, aCase[c].nWant,
                   aCase[c].zSql, aCase[c].rArg);
        for (int j = 0; j < res.n; j++) {
          if (res.aRowid[j] != top.aRowid[j]) fail_msg("%s: radius row %d differs\n  in: %s", azMetric[m], j, aCase[c].zSql);
        }
      }
      /* A wide radius streams beyond the first batch: exactly the brute-force rows (300 of them). */
      double rWide = (aD[299] + aD[300]) / 2;
      sqlite3_stmt *pStmt = tu_prepare(db, "SELECT rowid, distance FROM r WHERE embedding MATCH ?1 AND distance < ?2");
      sqlite3_bind_blob(pStmt, 1, q, D * 4, SQLITE_STATIC);
      sqlite3_bind_double(pStmt, 2, rWide);
      int n = 0;
      while (sqlite3_step(pStmt) == SQLITE_ROW) {
        if (n < 300 && sqlite3_column_int64(pStmt, 0) != aRow[n] + 1)
          fail_msg("%s: wide radius row %d is %lld, expected %d", azMetric[m], n, (long long)sqlite3_column_int64(pStmt, 0),
                   aRow[n] + 1);
        n++;
      }
      assert_int_equal(sqlite3_finalize(pStmt), SQLITE_OK);
      if (n != 300) fail_msg("%s: wide radius gave %d rows, expected 300", azMetric[m], n);
      /* The same with the score threshold. */
      pStmt = tu_prepare(db, "SELECT count(*) FROM r WHERE embedding MATCH ?1 AND score > ?2");
      sqlite3_bind_blob(pStmt, 1, q, D * 4, SQLITE_STATIC);
      sqlite3_bind_double(pStmt, 2, tu_ref_score(rWide, m));
      assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
      assert_int_equal(sqlite3_column_int(pStmt, 0), 300);
      sqlite3_finalize(pStmt);
    }
    tu_exec(db, "DROP TABLE r");
  }
  free(aVec);
  tu_close_remove(db, "radius.db");
}

/* MMR: LangChain's FakeEmbeddings case, defaults, lambda_mult = 1, errors, and a declared-column filter. */
static void test_mmr(void **state) {
  (void)state;
  sqlite3 *db = tu_open_fresh("mmr.db");
  tu_exec(db, "CREATE VIRTUAL TABLE m USING vecstore(dim = 10, page INTEGER)");
  tu_exec(db, "INSERT INTO m(rowid, content, metadata, embedding, page) VALUES "
              "(1, 'foo', '{\"page\": 0}', '[1,1,1,1,1,1,1,1,1,0]', 0), "
              "(2, 'foo', '{\"page\": 1}', '[1,1,1,1,1,1,1,1,1,1]', 1), "
              "(3, 'fou', '{\"page\": 2}', '[1,1,1,1,1,1,1,1,1,2]', 2), "
              "(4, 'foy', '{\"page\": 3}', '[1,1,1,1,1,1,1,1,1,3]', 3)");
  const char *zBase = "SELECT page, json_extract(metadata,'$.page'), distance FROM m WHERE embedding MATCH "
                      "'[1,1,1,1,1,1,1,1,1,0]'";
  expect_rows_fmt(db, "0|0|0.0000,3|3|9.0000,1|1|1.0000,2|2|4.0000", "%s AND k = 10 AND lambda_mult = 0.1", zBase);
  /* Declared-column filter: MMR among the matching rows only. */
  expect_rows_fmt(db, "1|1|1.0000", "%s AND k = 10 AND lambda_mult = 0.1 AND page = 1", zBase);
  expect_rows_fmt(db, "1|1|1.0000,3|3|9.0000,2|2|4.0000", "%s AND k = 10 AND lambda_mult = 0.1 AND page >= 1", zBase);
  expect_rows_fmt(db, "1|1|1.0000,3|3|9.0000", "%s AND k = 2 AND lambda_mult = 0.1 AND page != 0", zBase);
  /* lambda_mult = 1: plain distance order. */
  expect_rows_fmt(db, "0|0|0.0000,1|1|1.0000,2|2|4.0000,3|3|9.0000", "%s AND k = 10 AND lambda_mult = 1", zBase);
  /* Inside a transaction, uncommitted rows take part. */
  tu_exec(db, "BEGIN");
  tu_exec(db, "INSERT INTO m(rowid, content, embedding, page) VALUES (5, 'far', '[1,1,1,1,1,1,1,1,1,4]', 4)");
  tu_exec(db, "DELETE FROM m WHERE rowid = 4");
  expect_rows_fmt(db, "0|0|0.0000,4|NULL|16.0000,1|1|1.0000,2|2|4.0000", "%s AND k = 10 AND lambda_mult = 0.1", zBase);
  tu_exec(db, "ROLLBACK");
  /* Errors: lambda_mult outside 0..1 or not a number. */
  const char *azBad[] = {"1.5", "-0.1", "'abc'"};
  for (int i = 0; i < 3; i++) {
    char *zSql = sqlite3_mprintf("%s AND lambda_mult = %s", zBase, azBad[i]);
    tu_expect_error(db, zSql, "vecstore: ", "lambda_mult", NULL);
    sqlite3_free(zSql);
  }
  tu_expect_error(db, "SELECT * FROM m WHERE lambda_mult = 0.5", "vecstore: ", "lambda_mult", NULL);
  tu_exec(db, "DROP TABLE m");

  /* Defaults k = 4 and fetch_k = 20: 30 unit vectors at angles 3*i degrees from the query. Pure diversity
  ** (lambda_mult = 0) picks the nearest first, then the farthest candidate: row 20 of the 20 nearest (the
  ** farthest of all, row 30, only when fetch_k covers it). */
  tu_exec(db, "CREATE VIRTUAL TABLE a USING vecstore(dim = 10, page INTEGER)");
  tu_exec(db, "BEGIN");
  for (int i = 0; i < 30; i++) {
    double th = i * 3.0 * M_PI / 180.0;
    tu_exec_fmt(db, "INSERT INTO a(rowid, embedding, page) VALUES (%d, '[%.9g,%.9g,0,0,0,0,0,0,0,0]', %d)", i + 1,
                cos(th), sin(th), i % 3);
  }
  tu_exec(db, "COMMIT");
  const char *zA = "SELECT rowid, distance FROM a WHERE embedding MATCH '[1,0,0,0,0,0,0,0,0,0]'";
  Res res;
  char *zSql = sqlite3_mprintf("%s AND lambda_mult = 0", zA);
  run_query(db, zSql, 0, 0, 0, 0, &res);
  sqlite3_free(zSql);
  if (res.n != 4) fail_msg("MMR without k gave %d rows, expected the default 4", res.n);
  if (res.aRowid[0] != 1 || res.aRowid[1] != 20) fail_msg("MMR picks %lld, %lld; expected 1, 20", (long long)res.aRowid[0], (long long)res.aRowid[1]);
  for (int j = 0; j < res.n; j++) {
    if (res.aRowid[j] > 20) fail_msg("MMR picked rowid %lld outside the default fetch_k = 20", (long long)res.aRowid[j]);
    double th = (res.aRowid[j] - 1) * 3.0 * M_PI / 180.0;
    if (fabs(res.aDist[j] - (2 - 2 * cos(th))) > 1e-5) fail_msg("MMR distance %.9g for rowid %lld", res.aDist[j], (long long)res.aRowid[j]);
  }
  zSql = sqlite3_mprintf("%s AND lambda_mult = 0 AND fetch_k = 30", zA);
  run_query(db, zSql, 0, 0, 0, 0, &res);
  sqlite3_free(zSql);
  assert_int_equal(res.n, 4);
  assert_int_equal(res.aRowid[0], 1);
  assert_int_equal(res.aRowid[1], 30);
  zSql = sqlite3_mprintf("%s AND lambda_mult = 0 AND k = 7 AND fetch_k = 10", zA);
  run_query(db, zSql, 0, 0, 0, 0, &res);
  sqlite3_free(zSql);
  assert_int_equal(res.n, 7);
  for (int j = 0; j < res.n; j++) assert_true(res.aRowid[j] <= 10);
  assert_int_equal(res.aRowid[1], 10);
  /* lambda_mult = 1: the k nearest in distance order. */
  expect_rows(db, "SELECT rowid FROM a WHERE embedding MATCH '[1,0,0,0,0,0,0,0,0,0]' AND lambda_mult = 1", "1,2,3,4");
  expect_rows(db, "SELECT rowid FROM a WHERE embedding MATCH '[1,0,0,0,0,0,0,0,0,0]' AND lambda_mult = 1 AND k = 6",
              "1,2,3,4,5,6");
  /* A declared-column filter: only matching rows, from the 20 nearest matching ones. */
  zSql = sqlite3_mprintf("%s AND lambda_mult = 0 AND page = 1", zA);
  run_query(db, zSql, 0, 0, 0, 0, &res);
  sqlite3_free(zSql);
  assert_int_equal(res.n, 4);
  for (int j = 0; j < res.n; j++) {
    if ((res.aRowid[j] - 1) % 3 != 1) fail_msg("MMR with page = 1 picked rowid %lld (page %lld)", (long long)res.aRowid[j],
                                              (long long)((res.aRowid[j] - 1) % 3));
  }
  assert_int_equal(res.aRowid[0], 2);
  assert_int_equal(res.aRowid[1], 29); /* the farthest page-1 row: only 10 rows match, all are candidates */
  tu_close_remove(db, "mmr.db");
}

/* Declared columns on a small table: scans and searches see updates and deletes, also before COMMIT; type errors. */
static void test_declared_small(void **state) {
  (void)state;
  sqlite3 *db = tu_open_fresh("decl.db");
  tu_exec(db, "CREATE VIRTUAL TABLE d USING vecstore(dim = 2, page INTEGER, source TEXT, price REAL)");
  tu_exec(db, "BEGIN");
  for (int i = 1; i <= 20; i++) {
    tu_exec_fmt(db, "INSERT INTO d(rowid, id, embedding, page, source, price) VALUES (%d, 'd%d', '[%d, 0]', %d, %s, "
                    "%g)", i, i, i, i % 4, i % 5 == 0 ? "NULL" : (i % 2 ? "'odd'" : "'even'"), i * 1.5);
  }
  tu_exec(db, "COMMIT");
  expect_rows(db, "SELECT rowid FROM d WHERE page = 3", "3,7,11,15,19");
  expect_rows(db, "SELECT rowid FROM d WHERE page != 3 AND page > 1", "2,6,10,14,18");
  expect_rows(db, "SELECT rowid FROM d WHERE page IN (0, 1) AND price < 10", "1,4,5");
  expect_rows(db, "SELECT rowid FROM d WHERE source IS NULL", "5,10,15,20");
  expect_rows(db, "SELECT rowid FROM d WHERE source IS NOT NULL AND price >= 27", "18,19");
  expect_rows(db, "SELECT rowid FROM d WHERE price <= 3", "1,2");
  expect_rows(db, "SELECT count(*) FROM d WHERE page IS 2", "5");
  expect_plan(db, "SELECT rowid FROM d WHERE page = 3", "page:eq", 0);
  expect_plan(db, "SELECT rowid FROM d WHERE source IS NULL", "source:isnull", 0);
  expect_plan(db, "SELECT rowid FROM d WHERE page IN (0, 1)", "page:in", 0);
  const char *zS = "SELECT rowid, distance FROM d WHERE embedding MATCH '[0, 0]' AND k = 3";
  char *zSql = sqlite3_mprintf("%s AND page = 3", zS);
  expect_rows(db, zSql, "3|9.0000,7|49.0000,11|121.0000");
  /* Updates and deletes, before COMMIT, then after ROLLBACK, then committed. */
  tu_exec(db, "BEGIN");
  tu_exec(db, "UPDATE d SET page = 3 WHERE rowid = 1");
  tu_exec(db, "DELETE FROM d WHERE rowid = 7");
  tu_exec(db, "UPDATE d SET source = NULL WHERE id = 'd2'");
  expect_rows(db, "SELECT rowid FROM d WHERE page = 3", "1,3,11,15,19");
  expect_rows(db, zSql, "1|1.0000,3|9.0000,11|121.0000");
  expect_rows(db, "SELECT rowid FROM d WHERE source IS NULL", "2,5,10,15,20");
  char *zSql2 = sqlite3_mprintf("%s AND source IS NULL", zS);
  expect_rows(db, zSql2, "2|4.0000,5|25.0000,10|100.0000");
  tu_exec(db, "ROLLBACK");
  expect_rows(db, zSql, "3|9.0000,7|49.0000,11|121.0000");
  expect_rows(db, zSql2, "5|25.0000,10|100.0000,15|225.0000");
  tu_exec(db, "UPDATE d SET page = 3 WHERE rowid = 1");
  tu_exec(db, "DELETE FROM d WHERE page = 3 AND rowid > 10");
  expect_rows(db, "SELECT rowid FROM d WHERE page = 3", "1,3,7");
  expect_rows(db, zSql, "1|1.0000,3|9.0000,7|49.0000");
  /* An embedding update moves a row within the filtered search. */
  tu_exec(db, "UPDATE d SET embedding = '[0.5, 0]' WHERE rowid = 7");
  expect_rows(db, zSql, "7|0.2500,1|1.0000,3|9.0000");
  sqlite3_free(zSql);
  sqlite3_free(zSql2);
  /* Type errors. */
  tu_expect_error(db, "INSERT INTO d(embedding, page) VALUES ('[1, 1]', 'abc')", "vecstore: ", "page", "INTEGER", "abc", NULL);
  tu_expect_error(db, "INSERT INTO d(embedding, page) VALUES ('[1, 1]', 2.5)", "vecstore: ", "page", "INTEGER", NULL);
  tu_expect_error(db, "INSERT INTO d(embedding, price) VALUES ('[1, 1]', 'cheap')", "vecstore: ", "price", "REAL", "cheap", NULL);
  tu_expect_error(db, "INSERT INTO d(embedding, source) VALUES ('[1, 1]', x'00ff')", "vecstore: ", "source", "TEXT", NULL);
  tu_expect_error(db, "UPDATE d SET page = 'abc' WHERE rowid = 1", "vecstore: ", "page", "INTEGER", "abc", NULL);
  assert_int_equal(tu_int(db, "SELECT count(*) FROM d"), 17);
  assert_int_equal(tu_int(db, "SELECT page FROM d WHERE rowid = 1"), 3);
  /* Numeric text and integral reals are accepted as INTEGER (as STRICT tables do). */
  tu_exec(db, "INSERT INTO d(rowid, embedding, page, price) VALUES (100, '[1, 1]', '7', 2)");
  expect_rows(db, "SELECT typeof(page), page, typeof(price), price FROM d WHERE rowid = 100", "integer|7|real|2.0000");
  tu_close_remove(db, "decl.db");
}

/* Declared-column filters on a table large enough for the cheap paths to differ: few matches are scored
** exactly, a condition a sample shows most rows meet goes straight to the checked stream, in between the matches
** are counted first. Every path must give the exact filtered answer on Flat, recall >= 0.9 on HNSW, and a full
** filtered stream must return exactly the matching rows in order. */
static void test_declared_paths(void **state) {
  (void)state;
  enum { N = 40000, D = 4, Q = 5 };
  const int aMod[] = {2, 10, 100, 1000}; /* grp = rowid % m = 0 : 50%, 10%, 1%, 0.1% */
  float *aVec = malloc(sizeof(float) * N * D);
  uint64_t s = 99;
  for (int i = 0; i < N * D; i++) aVec[i] = (float)tu_rand_unit(&s);
  sqlite3 *db = tu_open_fresh("paths.db");
  const char *azIndex[] = {"Flat", "HNSW16"};
  for (int x = 0; x < 2; x++) {
    tu_exec_fmt(db, "CREATE VIRTUAL TABLE t USING vecstore(dim = %d, index = '%s', search_params = '%s', m2 INTEGER, "
                    "m10 INTEGER, m100 INTEGER, m1000 INTEGER)", D, azIndex[x], x ? "efSearch=32" : "");
    tu_insert_vectors(db, "INSERT INTO t(rowid, embedding, m2, m10, m100, m1000) VALUES (?1, ?2, ?1 % 2, ?1 % 10, "
                      "?1 % 100, ?1 % 1000)", aVec, N, D);
    for (int iM = 0; iM < 4; iM++) {
      int m = aMod[iM];
      for (int iQ = 0; iQ < Q; iQ++) {
        float q[D];
        for (int j = 0; j < D; j++) q[j] = (float)tu_rand_unit(&s);
        /* The exact filtered top 10. */
        int aTop[10], nTop = 0;
        double aTopD[10];
        for (int i = m; i <= N; i += m) { /* the rows with m<m> = 0 */
          tu_topk_add(aTop, aTopD, &nTop, 10, i, tu_ref_distance(q, aVec + (size_t)(i - 1) * D, D, M_L2));
        }
        char zSql[200];
        snprintf(zSql, sizeof(zSql), "SELECT rowid FROM t WHERE embedding MATCH ?1 AND m%d = 0 AND k = 10", m);
        sqlite3_stmt *pStmt = tu_prepare(db, zSql);
        sqlite3_bind_blob(pStmt, 1, q, D * 4, SQLITE_STATIC);
        int n = 0, nHit = 0, rc;
        while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
          int iRowid = sqlite3_column_int(pStmt, 0);
          if (iRowid % m != 0) fail_msg("%s m%d: row %d does not match", azIndex[x], m, iRowid);
          if (x == 0 && iRowid != aTop[n])
            fail_msg("%s m%d query %d: row %d is %d, expected %d", azIndex[x], m, iQ, n, iRowid, aTop[n]);
          for (int j = 0; j < 10; j++) nHit += aTop[j] == iRowid;
          n++;
        }
        assert_int_equal(rc, SQLITE_DONE);
        sqlite3_finalize(pStmt);
        assert_int_equal(n, 10);
        if (nHit < 9) fail_msg("%s m%d query %d: recall@10 %d/10", azIndex[x], m, iQ, nHit);
      }
      /* The whole filtered stream: every matching row once, in distance order. */
      char zSql[200];
      snprintf(zSql, sizeof(zSql), "SELECT rowid, distance FROM t WHERE embedding MATCH '[0.5, 0.5, 0.5, 0.5]' AND "
               "m%d = 0", m);
      sqlite3_stmt *pStmt = tu_prepare(db, zSql);
      int n = 0, rc;
      double rPrev = -1;
      while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
        int iRowid = sqlite3_column_int(pStmt, 0);
        double r = sqlite3_column_double(pStmt, 1);
        if (iRowid % m != 0) fail_msg("%s m%d stream: row %d does not match", azIndex[x], m, iRowid);
        if (x == 0 && r < rPrev) fail_msg("%s m%d stream: row %d out of order", azIndex[x], m, n);
        rPrev = r;
        n++;
      }
      assert_int_equal(rc, SQLITE_DONE);
      sqlite3_finalize(pStmt);
      assert_int_equal(n, N / m);
    }
    tu_exec(db, "DROP TABLE t");
  }
  free(aVec);
  tu_close_remove(db, "paths.db");
}

/* EXPLAIN QUERY PLAN of searches reads like the query. */
static void test_explain(void **state) {
  (void)state;
  sqlite3 *db = tu_open_fresh("eqp.db");
  tu_exec(db, "CREATE VIRTUAL TABLE e USING vecstore(dim = 2, page INTEGER)");
  tu_exec(db, "INSERT INTO e(rowid, embedding, page) VALUES (1, '[1, 0]', 1), (2, '[0, 1]', 2)");
  expect_plan(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' AND k = 5 AND page = 3", "match", 0);
  expect_plan(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' AND k = 5 AND page = 3", "match k page:eq", 0);
  expect_plan(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' AND json_extract(metadata, '$.p') = 1 LIMIT 5",
              "match", "limit");
  expect_plan(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' ORDER BY distance LIMIT 5", "match", "B-TREE");
  if (limit_with_match()) {
    expect_plan(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' ORDER BY distance LIMIT 5", "match limit", 0);
  }
  expect_plan(db, "SELECT rowid FROM e LIMIT 5", "limit", 0); /* scans get LIMIT on every version with it */
  expect_plan(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' AND fetch_k = 9 AND lambda_mult = 0.5", "fetch_k", 0);
  expect_plan(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' AND fetch_k = 9 AND lambda_mult = 0.5", "lambda", 0);
  expect_plan(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' AND distance < 2", "dist-lt", 0);
  expect_plan(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' AND score >= 0.5", "score-ge", 0);
  expect_plan(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' AND search_params = 'x=1' AND k = 1", "params", 0);
  expect_plan(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' AND rowid IN (1, 2)", "rowid-in", 0);
  expect_plan(db, "SELECT rowid FROM e WHERE page >= 1", "page:ge", 0);
  /* ORDER BY something else is sorted by SQLite, and then it is still correct. */
  expect_plan(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' ORDER BY rowid DESC", "B-TREE", 0);
  expect_rows(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' ORDER BY rowid DESC", "2,1");
  expect_rows(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' ORDER BY distance DESC", "2,1");
  tu_close_remove(db, "eqp.db");
}

/* Per-query search_params take effect (uniform data, where a narrow search visibly loses neighbours) and do not
** stick; CREATE defaults apply otherwise. */
static void test_search_params(void **state) {
  (void)state;
  enum { N = 5000, D = 32, Q = 20 };
  const char *azIndex[] = {"HNSW32", "HNSW32,SQ8", "IVF64,Flat"};
  const char *azLow[] = {"efSearch=10", "efSearch=10", "nprobe=1"};
  const char *azHigh[] = {"efSearch=400", "efSearch=400", "nprobe=64"};
  float *aVec = malloc(sizeof(float) * N * D), *aQ = malloc(sizeof(float) * Q * D);
  uint64_t s = 4242;
  for (int i = 0; i < N * D; i++) aVec[i] = (float)tu_rand_unit(&s);
  for (int i = 0; i < Q * D; i++) aQ[i] = (float)tu_rand_unit(&s);
  int *aTruth = malloc(sizeof(int) * Q * 10);
  double *aTruthDist = malloc(sizeof(double) * Q * 10);
  for (int iQ = 0; iQ < Q; iQ++) {
    tu_brute_force(aVec, N, D, aQ + (size_t)iQ * D, M_L2, 10, aTruth + iQ * 10, aTruthDist + iQ * 10);
  }
  sqlite3 *db = tu_open_fresh("params.db");
  for (int x = 0; x < 3; x++) {
    tu_exec_fmt(db, "CREATE VIRTUAL TABLE p USING vecstore(dim = %d, index = '%q', search_params = '%q')", D,
                azIndex[x], azLow[x]);
    tu_insert_vectors(db, "INSERT INTO p(rowid, embedding) VALUES (?1, ?2)", aVec, N, D);
    if (x > 0) tu_exec(db, "INSERT INTO p(p) VALUES ('train')");
    /* 0: CREATE default (low), 1: per query high, 2: per query low, 3: default again */
    const char *azSql[] = {"SELECT rowid FROM p WHERE embedding MATCH ?1 AND k = 10",
                           "SELECT rowid FROM p WHERE embedding MATCH ?1 AND k = 10 AND search_params = ?2",
                           "SELECT rowid FROM p WHERE embedding MATCH ?1 AND search_params = ?2 AND k = 10",
                           "SELECT rowid FROM p WHERE embedding MATCH ?1 AND k = 10"};
    double aR[4];
    for (int v = 0; v < 4; v++) {
      int nFound = 0;
      for (int iQ = 0; iQ < Q; iQ++) {
        sqlite3_stmt *pStmt = tu_prepare(db, azSql[v]);
        sqlite3_bind_blob(pStmt, 1, aQ + (size_t)iQ * D, D * 4, SQLITE_STATIC);
        if (v == 1 || v == 2) sqlite3_bind_text(pStmt, 2, v == 1 ? azHigh[x] : azLow[x], -1, SQLITE_STATIC);
        int n = 0;
        while (sqlite3_step(pStmt) == SQLITE_ROW) {
          int r = sqlite3_column_int(pStmt, 0) - 1;
          for (int j = 0; j < 10; j++) nFound += aTruth[iQ * 10 + j] == r;
          n++;
        }
        assert_int_equal(sqlite3_finalize(pStmt), SQLITE_OK);
        assert_int_equal(n, 10);
      }
      aR[v] = nFound / (10.0 * Q);
    }
    printf("    %-11s recall@10: default %s %.4f, per-query %s %.4f, per-query %s %.4f, default again %.4f\n",
           azIndex[x], azLow[x], aR[0], azHigh[x], aR[1], azLow[x], aR[2], aR[3]);
    if (!(aR[1] > aR[0])) fail_msg("%s: per-query %s (%.4f) is no better than %s (%.4f)", azIndex[x], azHigh[x], aR[1], azLow[x], aR[0]);
    assert_true(aR[1] >= (x == 1 ? 0.9 : 0.98));
    assert_true(aR[2] == aR[0]);
    assert_true(aR[3] == aR[0]);
    /* An unknown name, a malformed list: clear errors naming them. */
    char *zQ = tu_vec_json(aQ, D);
    char *zSql = sqlite3_mprintf("SELECT rowid FROM p WHERE embedding MATCH '%q' AND k = 3 AND search_params = '%s'", zQ,
                                 x == 2 ? "efSearch=10" : "nprobe=4");
    tu_expect_error(db, zSql, "vecstore: ", x == 2 ? "efSearch" : "nprobe", NULL);
    sqlite3_free(zSql);
    zSql = sqlite3_mprintf("SELECT rowid FROM p WHERE embedding MATCH '%q' AND k = 3 AND search_params = 'efSearch'", zQ);
    tu_expect_error(db, zSql, "vecstore: ", "efSearch", NULL);
    sqlite3_free(zSql);
    sqlite3_free(zQ);
    tu_exec(db, "DROP TABLE p");
  }
  tu_close_remove(db, "params.db");
  free(aVec);
  free(aQ);
  free(aTruth);
  free(aTruthDist);
}

/* LIMIT / OFFSET with an ORDER BY the table does not produce: SQLite sorts, so the table must not stop early. */
static void test_order_by_limit(void **state) {
  (void)state;
  sqlite3 *db = tu_open_fresh("ordlim.db");
  tu_exec(db, "CREATE VIRTUAL TABLE e USING vecstore(dim = 2, page INTEGER)");
  tu_exec(db, "INSERT INTO e(rowid, id, content, embedding, page) VALUES (1, 'a', 'z', '[1, 0]', 1), "
              "(2, 'b', 'y', '[0, 1]', 2), (3, 'c', 'x', '[1, 1]', 3)");
  expect_rows(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' ORDER BY distance DESC LIMIT 1", "2");
  expect_rows(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' ORDER BY score LIMIT 1", "2");
  expect_rows(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' ORDER BY rowid DESC LIMIT 1", "3");
  expect_rows(db, "SELECT rowid FROM e WHERE embedding MATCH '[1, 0]' ORDER BY content LIMIT 1 OFFSET 1", "2");
  expect_rows(db, "SELECT rowid FROM e ORDER BY rowid DESC LIMIT 1", "3");
  expect_rows(db, "SELECT rowid FROM e ORDER BY content LIMIT 2", "3,2");
  expect_rows(db, "SELECT rowid FROM e ORDER BY id DESC LIMIT 1 OFFSET 1", "2");
  expect_rows(db, "SELECT rowid FROM e WHERE page >= 1 ORDER BY page DESC LIMIT 1", "3");
  expect_rows(db, "SELECT rowid FROM e ORDER BY rowid LIMIT 1 OFFSET 2", "3");
  tu_close_remove(db, "ordlim.db");
}

/* A deep filtered stream on HNSW (a low efSearch, a 10% SQL filter) must keep ORDER BY distance: it is consumed,
** not sorted again. Before deeper batches took over at half of the previous one, 3 of 50 such queries came back
** out of order. */
static void test_hnsw_filtered_order(void **state) {
  (void)state;
  sqlite3 *db = tu_open_fresh("hnsworder.db");
  tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 16, index = 'HNSW32')");
  uint64_t seed = 7;
  float v[16], *aVec = malloc(sizeof(float) * 20000 * 16);
  for (int i = 0; i < 20000 * 16; i++) aVec[i] = (float)tu_rand_unit(&seed);
  tu_insert_vectors(db, "INSERT INTO t(rowid, embedding) VALUES (?, ?)", aVec, 20000, 16);
  free(aVec);
  sqlite3_stmt *pQ = tu_prepare(db, "SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND rowid % 10 = 0 "
                                    "AND search_params = 'efSearch=12' ORDER BY distance LIMIT 10");
  int nBad = 0;
  for (int q = 0; q < 50; q++) {
    for (int j = 0; j < 16; j++) v[j] = (float)tu_rand_unit(&seed);
    sqlite3_bind_blob(pQ, 1, v, sizeof(v), SQLITE_STATIC);
    double rPrev = -1;
    int nRow = 0, bBad = 0;
    while (sqlite3_step(pQ) == SQLITE_ROW) {
      double d = sqlite3_column_double(pQ, 1);
      if (d < rPrev) bBad = 1;
      rPrev = d;
      nRow++;
    }
    sqlite3_reset(pQ);
    assert_int_equal(nRow, 10);
    nBad += bBad;
  }
  sqlite3_finalize(pQ);
  printf("    HNSW32 filtered ORDER BY distance LIMIT 10: %d of 50 queries out of order\n", nBad);
  assert_int_equal(nBad, 0);
  tu_close_remove(db, "hnsworder.db");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_explain),
      cmocka_unit_test(test_order_by_limit),
      cmocka_unit_test(test_search_params),
      cmocka_unit_test(test_fetch_k_postfilter),
      cmocka_unit_test(test_radius),
      cmocka_unit_test(test_mmr),
      cmocka_unit_test(test_declared_small),
      cmocka_unit_test(test_declared_paths),
      cmocka_unit_test(test_flat),
      cmocka_unit_test(test_hnsw),
      cmocka_unit_test(test_ivf),
      cmocka_unit_test(test_hnsw_sq8),
      cmocka_unit_test(test_hnsw_filtered_order),
  };
  int rc = cmocka_run_group_tests_name("semantics", tests, group_setup, group_teardown);
  free(g_aTruth);
  return rc;
}
