/* Transactions and searches: read-your-writes inside BEGIN, ROLLBACK, savepoints, statement atomicity, and a
** seeded differential test of a few thousand random operations against an in-test model, for Flat and HNSW32.
**
** SPEC: "Statements are atomic; BEGIN/COMMIT/ROLLBACK/SAVEPOINT/ROLLBACK TO/RELEASE behave exactly as for an
** ordinary table, including for searches: a search inside a transaction sees that transaction's own changes."
**
** Vectors are small integers or binary fractions, so every l2 distance is exact in float32 and results can be
** compared with the model exactly; ties (equal distances) may come back in any order.
**
** Exploring: VS_TEST_SEED=<n> runs the random tests with another seed, VS_TEST_TRACE=<file> writes every
** statement (replayable in the sqlite3 shell), VS_TEST_VERBOSE=1 prints the random tests' statistics. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIM 8
#define MAX_ROWS 2048
#define MAX_SAVE 16

/**************************************************************************************************
** A trace of the last statements, printed when a check fails (the reproduction of a finding).
*/
#define TRACE_N 40
static char g_aTrace[TRACE_N][320];
static int g_nTrace;

static void trace(const char *zSql) {
  static FILE *pLog; /* VS_TEST_TRACE=<file>: every statement, to replay a finding in the sqlite3 shell */
  if (pLog == 0 && getenv("VS_TEST_TRACE")) pLog = fopen(getenv("VS_TEST_TRACE"), "w");
  if (pLog) {
    fprintf(pLog, "%s;\n", zSql);
    fflush(pLog);
  }
  snprintf(g_aTrace[g_nTrace % TRACE_N], sizeof(g_aTrace[0]), "%s", zSql);
  g_nTrace++;
}

static void trace_reset(void) { g_nTrace = 0; }

static void trace_dump(void) {
  int iFirst = g_nTrace > TRACE_N ? g_nTrace - TRACE_N : 0;
  fprintf(stderr, "---- last %d statements (of %d) ----\n", g_nTrace - iFirst, g_nTrace);
  for (int i = iFirst; i < g_nTrace; i++) fprintf(stderr, "  %s;\n", g_aTrace[i % TRACE_N]);
}

#define FAIL(...)         \
  do {                    \
    trace_dump();         \
    fail_msg(__VA_ARGS__); \
  } while (0)

/**************************************************************************************************
** The model: rowid -> (id number, vector). Copied whole for savepoints.
*/
typedef struct MRow {
  sqlite3_int64 iRowid;
  int iId; /* the document id is 'id<iId>' */
  float v[DIM];
} MRow;

typedef struct Model {
  int n;
  MRow a[MAX_ROWS];
} Model;

static Model *model_new(void) {
  Model *m = calloc(1, sizeof(Model));
  assert_non_null(m);
  return m;
}

static int model_find(const Model *m, sqlite3_int64 iRowid) {
  for (int i = 0; i < m->n; i++)
    if (m->a[i].iRowid == iRowid) return i;
  return -1;
}

static int model_find_id(const Model *m, int iId) {
  for (int i = 0; i < m->n; i++)
    if (m->a[i].iId == iId) return i;
  return -1;
}

static void model_del_at(Model *m, int i) { m->a[i] = m->a[--m->n]; }

static void model_del(Model *m, sqlite3_int64 iRowid) {
  int i = model_find(m, iRowid);
  if (i >= 0) model_del_at(m, i);
}

static void model_put(Model *m, sqlite3_int64 iRowid, int iId, const float *v) {
  int i = model_find(m, iRowid);
  if (i < 0) {
    assert_true(m->n < MAX_ROWS);
    i = m->n++;
  }
  m->a[i].iRowid = iRowid;
  m->a[i].iId = iId;
  memcpy(m->a[i].v, v, sizeof(m->a[i].v));
}

static double l2(const float *a, const float *b) {
  double r = 0;
  for (int i = 0; i < DIM; i++) {
    double d = (double)a[i] - b[i];
    r += d * d;
  }
  return r;
}

/* JSON text of a vector (exact for the integers and binary fractions used here); rotating static buffers. */
static const char *vjson(const float *v) {
  static char aBuf[8][256];
  static int iBuf;
  char *z = aBuf[iBuf++ % 8];
  int n = 0;
  n += snprintf(z + n, 256 - n, "[");
  for (int i = 0; i < DIM; i++) n += snprintf(z + n, 256 - n, "%s%.9g", i ? "," : "", (double)v[i]);
  snprintf(z + n, 256 - n, "]");
  return z;
}

/**************************************************************************************************
** SQL helpers that record what they run.
*/
static void exec_ok(sqlite3 *db, const char *zSql) {
  trace(zSql);
  char *zErr = 0;
  int rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
  if (rc != SQLITE_OK) FAIL("SQL failed: %s\n  in: %s", zErr ? zErr : sqlite3_errstr(rc), zSql);
}

static void execf_ok(sqlite3 *db, const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  char *z = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  exec_ok(db, z);
  sqlite3_free(z);
}

/* zSql must fail with a "vecstore: " message containing zFrag (if given). */
static void exec_fail(sqlite3 *db, const char *zSql, const char *zFrag) {
  trace(zSql);
  char *zErr = 0;
  int rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
  if (rc == SQLITE_OK) FAIL("SQL succeeded but an error was expected: %s", zSql);
  const char *z = zErr ? zErr : sqlite3_errstr(rc);
  if (strstr(z, "vecstore: ") == 0) FAIL("error '%s' lacks 'vecstore: '\n  in: %s", z, zSql);
  if (zFrag && strstr(z, zFrag) == 0) FAIL("error '%s' lacks '%s'\n  in: %s", z, zFrag, zSql);
  sqlite3_free(zErr);
}

static sqlite3_int64 int_of(sqlite3 *db, const char *zSql) {
  trace(zSql);
  sqlite3_stmt *p = 0;
  if (sqlite3_prepare_v2(db, zSql, -1, &p, 0) != SQLITE_OK) FAIL("prepare: %s\n  in: %s", sqlite3_errmsg(db), zSql);
  int rc = sqlite3_step(p);
  if (rc != SQLITE_ROW) FAIL("no row (%s): %s\n  in: %s", sqlite3_errstr(rc), sqlite3_errmsg(db), zSql);
  sqlite3_int64 v = sqlite3_column_int64(p, 0);
  sqlite3_finalize(p);
  return v;
}

typedef struct Hit {
  sqlite3_int64 iRowid;
  double rDist;
  char zId[40];
} Hit;

/* Runs a query whose columns are rowid, distance, id; returns the number of rows (fails beyond nMax). */
static int run_hits(sqlite3 *db, const char *zSql, Hit *a, int nMax) {
  trace(zSql);
  sqlite3_stmt *p = 0;
  if (sqlite3_prepare_v2(db, zSql, -1, &p, 0) != SQLITE_OK) FAIL("prepare: %s\n  in: %s", sqlite3_errmsg(db), zSql);
  int n = 0, rc;
  while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
    if (n >= nMax) FAIL("more than %d rows\n  in: %s", nMax, zSql);
    a[n].iRowid = sqlite3_column_int64(p, 0);
    if (sqlite3_column_type(p, 1) != SQLITE_FLOAT) FAIL("distance is not a real (row %d)\n  in: %s", n, zSql);
    a[n].rDist = sqlite3_column_double(p, 1);
    const char *zId = (const char *)sqlite3_column_text(p, 2);
    snprintf(a[n].zId, sizeof(a[n].zId), "%s", zId ? zId : "NULL");
    n++;
  }
  if (rc != SQLITE_DONE) FAIL("step failed: %s\n  in: %s", sqlite3_errmsg(db), zSql);
  sqlite3_finalize(p);
  return n;
}

static int hit_cmp(const void *pA, const void *pB) {
  const Hit *a = pA, *b = pB;
  if (a->rDist != b->rDist) return a->rDist < b->rDist ? -1 : 1;
  return (a->iRowid > b->iRowid) - (a->iRowid < b->iRowid);
}

/* "rowid:distance ..." of a KNN query (columns rowid, distance, id), for exact comparisons in scripted tests.
** Distances must not decrease; rows at equal distances are listed by rowid (ties come in any order). */
static char *knn_text(sqlite3 *db, const char *zFmt, ...) {
  static Hit aHit[MAX_ROWS];
  va_list ap;
  va_start(ap, zFmt);
  char *zSql = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  int n = run_hits(db, zSql, aHit, MAX_ROWS);
  for (int i = 1; i < n; i++) {
    if (aHit[i].rDist < aHit[i - 1].rDist) FAIL("distance decreases at row %d (%g after %g)\n  in: %s", i, aHit[i].rDist, aHit[i - 1].rDist, zSql);
  }
  qsort(aHit, (size_t)n, sizeof(Hit), hit_cmp);
  char *zOut = sqlite3_mprintf("");
  for (int i = 0; i < n; i++) {
    char *z = sqlite3_mprintf("%s%s%lld:%.9g", zOut, i ? " " : "", aHit[i].iRowid, aHit[i].rDist);
    sqlite3_free(zOut);
    zOut = z;
  }
  sqlite3_free(zSql);
  return zOut;
}

#define EXPECT_KNN(db, zWant, ...)                                                         \
  do {                                                                                     \
    char *zGot_ = knn_text(db, __VA_ARGS__);                                               \
    if (strcmp(zGot_, zWant) != 0) FAIL("got '%s'\n  expected '%s'", zGot_, zWant);        \
    sqlite3_free(zGot_);                                                                   \
  } while (0)

typedef TuHit Ref;

/* A KNN query (k >= 0: at most k rows, by k = N or by ORDER BY distance LIMIT N; k < 0: a full MATCH) must
** return exactly the model's nearest rows: the sorted distances equal the model's first ones, every row has
** its model distance and id, no row twice. With ties at the cut any of the tied rows may come. */
static void check_knn(sqlite3 *db, const Model *m, const float *q, int k, int bLimit, const char *zWhere) {
  static Hit aHit[MAX_ROWS + 1];
  static Ref aRef[MAX_ROWS];
  char *zSql;
  if (k < 0) {
    zSql = sqlite3_mprintf("SELECT rowid, distance, id FROM t WHERE embedding MATCH '%s'", vjson(q));
  } else if (bLimit) {
    zSql = sqlite3_mprintf("SELECT rowid, distance, id FROM t WHERE embedding MATCH '%s' ORDER BY distance LIMIT %d",
                           vjson(q), k);
  } else {
    zSql = sqlite3_mprintf("SELECT rowid, distance, id FROM t WHERE embedding MATCH '%s' AND k = %d", vjson(q), k);
  }
  int n = run_hits(db, zSql, aHit, MAX_ROWS + 1);
  for (int i = 0; i < m->n; i++) {
    aRef[i].rDist = l2(m->a[i].v, q);
    aRef[i].iRowid = m->a[i].iRowid;
  }
  tu_hits_nearest(aRef, m->n, m->n);
  int nWant = (k < 0 || k > m->n) ? m->n : k;
  if (n != nWant && k < 0) {
    for (int i = 0; i < m->n; i++) { /* name the rows a full MATCH left out */
      int bFound = 0;
      for (int j = 0; j < n && !bFound; j++) bFound = aHit[j].iRowid == aRef[i].iRowid;
      if (!bFound) fprintf(stderr, "missing: rowid %lld at distance %g (model rank %d)\n", aRef[i].iRowid, aRef[i].rDist, i);
    }
  }
  if (n != nWant) {
    FAIL("%s: %d rows, the model has %d (of %d rows)\n  in: %s\n  first model row %lld at %g, first hit %lld at %g",
         zWhere, n, nWant, m->n, zSql, m->n ? aRef[0].iRowid : -1LL, m->n ? aRef[0].rDist : -1.0,
         n ? aHit[0].iRowid : -1LL, n ? aHit[0].rDist : -1.0);
  }
  for (int i = 0; i < n; i++) {
    if (fabs(aHit[i].rDist - aRef[i].rDist) > 1e-4) {
      FAIL("%s: row %d is rowid %lld at distance %.9g, the model's row %d is at %.9g (rowid %lld)\n  in: %s", zWhere,
           i, aHit[i].iRowid, aHit[i].rDist, i, aRef[i].rDist, aRef[i].iRowid, zSql);
    }
    int j = model_find(m, aHit[i].iRowid);
    if (j < 0) FAIL("%s: rowid %lld is not in the model (deleted or never committed)\n  in: %s", zWhere, aHit[i].iRowid, zSql);
    double rTrue = l2(m->a[j].v, q);
    if (fabs(rTrue - aHit[i].rDist) > 1e-4) {
      FAIL("%s: rowid %lld reported at %.9g, its vector %s is at %.9g\n  in: %s", zWhere, aHit[i].iRowid,
           aHit[i].rDist, vjson(m->a[j].v), rTrue, zSql);
    }
    char zId[40];
    snprintf(zId, sizeof(zId), "id%d", m->a[j].iId);
    if (strcmp(zId, aHit[i].zId) != 0) FAIL("%s: rowid %lld has id %s, the model %s\n  in: %s", zWhere, aHit[i].iRowid, aHit[i].zId, zId, zSql);
    for (int i2 = 0; i2 < i; i2++)
      if (aHit[i2].iRowid == aHit[i].iRowid) FAIL("%s: rowid %lld returned twice\n  in: %s", zWhere, aHit[i].iRowid, zSql);
  }
  sqlite3_free(zSql);
}

static int row_cmp(const void *pA, const void *pB) {
  const MRow *a = pA, *b = pB;
  return (a->iRowid > b->iRowid) - (a->iRowid < b->iRowid);
}

/* count(*) and a full scan (rowid, id, embedding) equal the model. */
static void check_rows(sqlite3 *db, const Model *m, const char *zWhere) {
  sqlite3_int64 nCount = int_of(db, "SELECT count(*) FROM t");
  if (nCount != m->n) FAIL("%s: count(*) is %lld, the model has %d rows", zWhere, nCount, m->n);
  static MRow aSorted[MAX_ROWS];
  memcpy(aSorted, m->a, sizeof(MRow) * (size_t)m->n);
  qsort(aSorted, (size_t)m->n, sizeof(MRow), row_cmp);
  const char *zSql = "SELECT rowid, id, embedding FROM t ORDER BY rowid";
  trace(zSql);
  sqlite3_stmt *p = 0;
  if (sqlite3_prepare_v2(db, zSql, -1, &p, 0) != SQLITE_OK) FAIL("prepare: %s", sqlite3_errmsg(db));
  int i = 0, rc;
  while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
    if (i >= m->n) FAIL("%s: scan returns more than the model's %d rows (rowid %lld)", zWhere, m->n, sqlite3_column_int64(p, 0));
    const MRow *r = &aSorted[i];
    char zId[40];
    snprintf(zId, sizeof(zId), "id%d", r->iId);
    const char *zGotId = (const char *)sqlite3_column_text(p, 1);
    if (sqlite3_column_int64(p, 0) != r->iRowid) FAIL("%s: scan row %d is rowid %lld, model %lld", zWhere, i, sqlite3_column_int64(p, 0), r->iRowid);
    if (zGotId == 0 || strcmp(zGotId, zId) != 0) FAIL("%s: rowid %lld has id %s, model %s", zWhere, r->iRowid, zGotId ? zGotId : "NULL", zId);
    if (sqlite3_column_bytes(p, 2) != DIM * 4 || memcmp(sqlite3_column_blob(p, 2), r->v, DIM * 4) != 0)
      FAIL("%s: rowid %lld has another embedding than the model's %s", zWhere, r->iRowid, vjson(r->v));
    i++;
  }
  if (rc != SQLITE_DONE) FAIL("%s: scan failed: %s", zWhere, sqlite3_errmsg(db));
  if (i != m->n) FAIL("%s: scan returned %d rows, the model has %d", zWhere, i, m->n);
  sqlite3_finalize(p);
}

/* Rows, and searches from every model vector (and a few fixed points): k = 5, LIMIT 5, full MATCH. */
static void check_all(sqlite3 *db, const Model *m, const char *zWhere) {
  check_rows(db, m, zWhere);
  for (int i = 0; i < m->n && i < 12; i++) {
    check_knn(db, m, m->a[i].v, 5, i & 1, zWhere);
  }
  float q[DIM] = {0};
  check_knn(db, m, q, 5, 0, zWhere);
  check_knn(db, m, q, -1, 0, zWhere);
  q[0] = 25.25f;
  check_knn(db, m, q, 3, 0, zWhere);
  check_knn(db, m, q, -1, 0, zWhere);
}

/**************************************************************************************************
** Scripted tests. The committed base: rows 1..40 on a line, vector (r, 0, ..., 0), id 'id<r>'.
*/
static void line_vec(float *v, double x0, double x1, double x2) {
  memset(v, 0, sizeof(float) * DIM);
  v[0] = (float)x0;
  v[1] = (float)x1;
  v[2] = (float)x2;
}

static sqlite3 *open_table(const char *zName, const char *zIndex, char **pzPath) {
  sqlite3 *db = tu_open_fresh(zName);
  trace_reset();
  if (strcmp(zIndex, "Flat") == 0) {
    exec_ok(db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = 'Flat')");
  } else {
    execf_ok(db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = '%s', search_params = 'efSearch=256')", zIndex);
  }
  *pzPath = tu_path(zName);
  return db;
}

static void insert_row(sqlite3 *db, Model *m, sqlite3_int64 iRowid, int iId, const float *v) {
  execf_ok(db, "INSERT INTO t(rowid, id, embedding) VALUES (%lld, 'id%d', '%s')", iRowid, iId, vjson(v));
  model_put(m, iRowid, iId, v);
}

static void seed_line(sqlite3 *db, Model *m, int n) {
  float v[DIM];
  exec_ok(db, "BEGIN");
  for (int r = 1; r <= n; r++) {
    line_vec(v, r, 0, 0);
    insert_row(db, m, r, r, v);
  }
  exec_ok(db, "COMMIT");
}

/* open_table, then a committed base of rows 1..nSeed on a line (seed_line) in a new model *pm. */
static sqlite3 *open_seeded(const char *zName, const char *zIndex, int nSeed, char **pzPath, Model **pm) {
  sqlite3 *db = open_table(zName, zIndex, pzPath);
  *pm = model_new();
  seed_line(db, *pm, nSeed);
  return db;
}

/* Closes db, removes the database file zPath and frees zPath (sqlite3_malloc'd) and the model m (or 0). */
static void close_table(sqlite3 *db, char *zPath, Model *m) {
  sqlite3_close(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
  free(m);
}

static sqlite3 *reopen(sqlite3 *db, const char *zPath) {
  int rc = sqlite3_close(db);
  if (rc != SQLITE_OK) FAIL("close: %s", sqlite3_errstr(rc));
  trace("-- close and reopen");
  return tu_open(zPath);
}

#define Q_20 "[20.25,0,0,0,0,0,0,0]"
#define Q_30 "[30.25,0,0,0,0,0,0,0]"
/* From Q_20 the committed rows are at 20: 0.0625, 21: 0.5625, 19: 1.5625, 22: 3.0625, 18: 5.0625, ... */
#define COMMITTED_20 "20:0.0625 21:0.5625 19:1.5625 22:3.0625 18:5.0625"
#define COMMITTED_30 "30:0.0625 31:0.5625 29:1.5625 32:3.0625 28:5.0625"

/* The transaction's changes: insert 100 next to Q_20, delete 20 and 21, move 30 next to Q_20, 35 further. */
static void apply_changes(sqlite3 *db, Model *m) {
  float v[DIM];
  line_vec(v, 20.25, 0.125, 0);
  insert_row(db, m, 100, 100, v);
  exec_ok(db, "DELETE FROM t WHERE rowid = 20");
  model_del(m, 20);
  exec_ok(db, "DELETE FROM t WHERE id = 'id21'");
  model_del(m, 21);
  line_vec(v, 20.25, 0, 0.5);
  execf_ok(db, "UPDATE t SET embedding = '%s' WHERE rowid = 30", vjson(v));
  model_put(m, 30, 30, v);
  line_vec(v, 35, 3, 0);
  execf_ok(db, "UPDATE t SET embedding = '%s' WHERE id = 'id35'", vjson(v));
  model_put(m, 35, 35, v);
}

#define CHANGED_20 "100:0.015625 30:0.25 19:1.5625 22:3.0625 18:5.0625"
#define CHANGED_30 "31:0.5625 29:1.5625 32:3.0625 28:5.0625 33:7.5625"

static void expect_changed(sqlite3 *db, const Model *m, const char *zWhere) {
  EXPECT_KNN(db, CHANGED_20, "SELECT rowid, distance, id FROM t WHERE embedding MATCH '" Q_20 "' AND k = 5");
  EXPECT_KNN(db, CHANGED_20, "SELECT rowid, distance, id FROM t WHERE embedding MATCH '" Q_20 "' ORDER BY distance LIMIT 5");
  /* Row 30 is no longer at its old place, and is found once, at its new distance, in a full MATCH. */
  EXPECT_KNN(db, CHANGED_30, "SELECT rowid, distance, id FROM t WHERE embedding MATCH '" Q_30 "' AND k = 5");
  EXPECT_KNN(db, "30:100.25", "SELECT rowid, distance, id FROM (SELECT rowid, distance, id FROM t WHERE embedding MATCH '" Q_30
                              "') WHERE rowid = 30");
  EXPECT_KNN(db, "", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '" Q_20 "' AND rowid IN (20, 21)");
  /* Restricted and radius searches see the same state. */
  EXPECT_KNN(db, "100:0.015625 30:0.25", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '" Q_20
                                         "' AND rowid IN (20, 21, 30, 100)");
  EXPECT_KNN(db, "100:0.015625 30:0.25 19:1.5625", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '" Q_20
                                                   "' AND distance < 2");
  EXPECT_KNN(db, "35:0", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[35,3,0,0,0,0,0,0]' AND k = 1");
  assert_int_equal(int_of(db, "SELECT count(*) FROM t"), 39);
  assert_int_equal(int_of(db, "SELECT count(*) FROM t WHERE rowid IN (20, 21)"), 0);
  check_all(db, m, zWhere);
}

static void expect_committed(sqlite3 *db, const Model *m, const char *zWhere) {
  EXPECT_KNN(db, COMMITTED_20, "SELECT rowid, distance, id FROM t WHERE embedding MATCH '" Q_20 "' AND k = 5");
  EXPECT_KNN(db, COMMITTED_20, "SELECT rowid, distance, id FROM t WHERE embedding MATCH '" Q_20 "' ORDER BY distance LIMIT 5");
  EXPECT_KNN(db, COMMITTED_30, "SELECT rowid, distance, id FROM t WHERE embedding MATCH '" Q_30 "' AND k = 5");
  EXPECT_KNN(db, "35:9", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[35,3,0,0,0,0,0,0]' AND k = 1");
  EXPECT_KNN(db, "", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '" Q_20 "' AND rowid = 100");
  assert_int_equal(int_of(db, "SELECT count(*) FROM t"), 40);
  assert_int_equal(int_of(db, "SELECT count(*) FROM t WHERE rowid = 100"), 0);
  check_all(db, m, zWhere);
}

/* COMMIT, then xCheck (the state m) "after COMMIT", 'integrity-check', and xCheck again "after COMMIT and reopen"
** on a new connection, which is returned. */
static sqlite3 *commit_and_reopen(sqlite3 *db, const char *zPath, const Model *m,
                                  void (*xCheck)(sqlite3 *, const Model *, const char *)) {
  exec_ok(db, "COMMIT");
  xCheck(db, m, "after COMMIT");
  exec_ok(db, "INSERT INTO t(t) VALUES ('integrity-check')");
  db = reopen(db, zPath);
  xCheck(db, m, "after COMMIT and reopen");
  return db;
}

/* Inside BEGIN: inserted rows found at their distances, deleted ones gone, updated ones at their new place;
** ROLLBACK restores exactly the committed state; the same changes committed persist across a reopen. */
static void read_your_writes(void **state) {
  const char *zIndex = *state;
  char *zPath = 0;
  Model *m = 0, *mCommitted = model_new();
  sqlite3 *db = open_seeded("ryw.db", zIndex, 40, &zPath, &m);
  *mCommitted = *m;
  expect_committed(db, m, "committed");

  exec_ok(db, "BEGIN");
  /* A search before any write of the transaction, then one after each kind of change. */
  EXPECT_KNN(db, COMMITTED_20, "SELECT rowid, distance, id FROM t WHERE embedding MATCH '" Q_20 "' AND k = 5");
  float v[DIM];
  line_vec(v, 20.25, 0.125, 0);
  insert_row(db, m, 100, 100, v);
  EXPECT_KNN(db, "100:0.015625 20:0.0625 21:0.5625", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '" Q_20
                                                     "' AND k = 3");
  exec_ok(db, "DELETE FROM t WHERE rowid = 20");
  model_del(m, 20);
  EXPECT_KNN(db, "100:0.015625 21:0.5625 19:1.5625", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '" Q_20
                                                     "' AND k = 3");
  exec_ok(db, "DELETE FROM t WHERE id = 'id21'");
  model_del(m, 21);
  line_vec(v, 20.25, 0, 0.5);
  execf_ok(db, "UPDATE t SET embedding = '%s' WHERE rowid = 30", vjson(v));
  model_put(m, 30, 30, v);
  line_vec(v, 35, 3, 0);
  execf_ok(db, "UPDATE t SET embedding = '%s' WHERE id = 'id35'", vjson(v));
  model_put(m, 35, 35, v);
  expect_changed(db, m, "inside BEGIN");
  /* Changing a row twice and deleting a row inserted in the same transaction. */
  line_vec(v, 50, 0, 0);
  insert_row(db, m, 101, 101, v);
  exec_ok(db, "DELETE FROM t WHERE rowid = 101");
  model_del(m, 101);
  EXPECT_KNN(db, "40:100", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[50,0,0,0,0,0,0,0]' AND k = 1");
  line_vec(v, 1, 0, 0.25);
  execf_ok(db, "UPDATE t SET embedding = '%s' WHERE rowid = 2", vjson(v));
  line_vec(v, 2, 0, 0);
  execf_ok(db, "UPDATE t SET embedding = '%s' WHERE rowid = 2", vjson(v)); /* back where it was */
  EXPECT_KNN(db, "2:0 1:1 3:1", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[2,0,0,0,0,0,0,0]' "
                                "AND rowid IN (1, 2, 3)");
  expect_changed(db, m, "inside BEGIN, after more changes");

  exec_ok(db, "ROLLBACK");
  *m = *mCommitted;
  expect_committed(db, m, "after ROLLBACK");
  db = reopen(db, zPath);
  expect_committed(db, m, "after ROLLBACK and reopen");

  /* The same changes, committed. */
  exec_ok(db, "BEGIN");
  apply_changes(db, m);
  expect_changed(db, m, "second transaction");
  db = commit_and_reopen(db, zPath, m, expect_changed);

  /* Autocommit statements see and keep their own changes; a later transaction over a changed index. */
  exec_ok(db, "BEGIN");
  line_vec(v, 20.25, 0, 0.5);
  insert_row(db, m, 102, 102, v); /* ties with row 30 */
  exec_ok(db, "DELETE FROM t WHERE rowid = 100");
  model_del(m, 100);
  EXPECT_KNN(db, "30:0.25 102:0.25 19:1.5625", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '" Q_20
                                               "' AND k = 3");
  check_all(db, m, "third transaction");
  exec_ok(db, "COMMIT");
  check_all(db, m, "after the third COMMIT");
  exec_ok(db, "INSERT INTO t(t) VALUES ('integrity-check')");

  close_table(db, zPath, m);
  free(mCommitted);
}

/* Many pending changes at once (more than one index batch of rows touched): inserts nearer than every committed
** row, deletes of the committed nearest ones, updates moving rows away; ROLLBACK leaves only the committed rows. */
static void rollback_many(void **state) {
  const char *zIndex = *state;
  char *zPath = 0;
  Model *m = 0, *mCommitted = model_new();
  sqlite3 *db = open_seeded("rollback.db", zIndex, 200, &zPath, &m);
  *mCommitted = *m;
  float v[DIM];
  exec_ok(db, "BEGIN");
  for (int r = 1; r <= 60; r++) {
    line_vec(v, 100, r * 0.25, 0); /* near [100, 0, ...]: at r^2/16 */
    insert_row(db, m, 1000 + r, 1000 + r, v);
  }
  exec_ok(db, "DELETE FROM t WHERE rowid BETWEEN 80 AND 120");
  for (int r = 80; r <= 120; r++) model_del(m, r);
  for (int r = 121; r <= 140; r++) {
    line_vec(v, r, 0, 7);
    execf_ok(db, "UPDATE t SET embedding = '%s' WHERE rowid = %d", vjson(v), r);
    model_put(m, r, r, v);
  }
  EXPECT_KNN(db, "1001:0.0625 1002:0.25 1003:0.5625", "SELECT rowid, distance, id FROM t WHERE embedding MATCH "
                                                      "'[100,0,0,0,0,0,0,0]' AND k = 3");
  EXPECT_KNN(db, "79:441 78:484", "SELECT rowid, distance, id FROM t WHERE embedding MATCH "
                                           "'[100,0,0,0,0,0,0,0]' AND rowid < 1000 AND rowid NOT BETWEEN 121 AND 140 "
                                           "LIMIT 2");
  float q[DIM];
  line_vec(q, 130, 0, 0);
  check_knn(db, m, q, 5, 0, "many pending changes"); /* 79.. and 141.. vs the moved rows at distance 49 */
  check_knn(db, m, q, -1, 0, "many pending changes");
  line_vec(q, 100, 0, 0);
  check_knn(db, m, q, 70, 1, "many pending changes");
  check_all(db, m, "many pending changes");
  assert_int_equal(int_of(db, "SELECT count(*) FROM t"), 200 + 60 - 41);
  exec_ok(db, "ROLLBACK");
  *m = *mCommitted;
  EXPECT_KNN(db, "100:0 99:1 101:1", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[100,0,0,0,0,0,0,0]' "
                                     "AND rowid IN (99, 100, 101, 1001)");
  EXPECT_KNN(db, "130:0", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[130,0,0,0,0,0,0,0]' AND k = 1");
  assert_int_equal(int_of(db, "SELECT count(*) FROM t"), 200);
  assert_int_equal(int_of(db, "SELECT count(*) FROM t WHERE rowid > 1000"), 0);
  check_all(db, m, "after ROLLBACK");
  line_vec(q, 100, 0, 0);
  check_knn(db, m, q, 70, 0, "after ROLLBACK");
  exec_ok(db, "INSERT INTO t(t) VALUES ('integrity-check')");
  db = reopen(db, zPath);
  check_all(db, m, "after ROLLBACK and reopen");
  close_table(db, zPath, m);
  free(mCommitted);
}

/* SAVEPOINT / ROLLBACK TO / RELEASE, nested, outer after inner, changes after ROLLBACK TO then COMMIT. */
static void savepoints(void **state) {
  const char *zIndex = *state;
  char *zPath = 0;
  Model *m = 0, *mA = model_new(), *mB = model_new(), *mC = model_new();
  sqlite3 *db = open_seeded("savepoint.db", zIndex, 20, &zPath, &m);
  float v[DIM];

  /* SAVEPOINT outside BEGIN starts the transaction; RELEASE of it commits. */
  exec_ok(db, "SAVEPOINT a");
  *mA = *m;
  line_vec(v, 5.5, 0, 0);
  insert_row(db, m, 101, 101, v);
  exec_ok(db, "SAVEPOINT b");
  *mB = *m;
  exec_ok(db, "DELETE FROM t WHERE rowid = 5");
  model_del(m, 5);
  line_vec(v, 5.25, 0, 0);
  execf_ok(db, "UPDATE t SET embedding = '%s' WHERE rowid = 6", vjson(v));
  model_put(m, 6, 6, v);
  EXPECT_KNN(db, "101:0 6:0.0625", "SELECT rowid, distance, id FROM t WHERE embedding MATCH "
                                                 "'[5.5,0,0,0,0,0,0,0]' AND k = 2");
  check_all(db, m, "in savepoint b");
  exec_ok(db, "ROLLBACK TO b");
  *m = *mB;
  EXPECT_KNN(db, "101:0 5:0.25 6:0.25", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[5.5,0,0,0,0,0,0,0]' "
                                        "AND k = 3");
  check_all(db, m, "after ROLLBACK TO b");
  /* b is still open: roll back to it again after more changes, then release it. */
  exec_ok(db, "DELETE FROM t WHERE rowid = 101");
  model_del(m, 101);
  exec_ok(db, "ROLLBACK TO b");
  *m = *mB;
  check_all(db, m, "after the second ROLLBACK TO b");
  line_vec(v, 7.5, 0, 0);
  insert_row(db, m, 102, 102, v);
  exec_ok(db, "RELEASE b");
  check_all(db, m, "after RELEASE b");
  exec_ok(db, "ROLLBACK TO a");
  *m = *mA;
  EXPECT_KNN(db, "5:0.25 6:0.25", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[5.5,0,0,0,0,0,0,0]' AND k = 2");
  EXPECT_KNN(db, "", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[5.5,0,0,0,0,0,0,0]' AND rowid IN (101, 102)");
  check_all(db, m, "after ROLLBACK TO a");
  line_vec(v, 9.75, 0, 0);
  insert_row(db, m, 103, 103, v);
  exec_ok(db, "DELETE FROM t WHERE rowid = 10");
  model_del(m, 10);
  assert_int_equal(sqlite3_get_autocommit(db), 0);
  exec_ok(db, "RELEASE a");
  assert_int_equal(sqlite3_get_autocommit(db), 1);
  EXPECT_KNN(db, "103:0.0625 9:0.25", "SELECT rowid, distance, id FROM t WHERE embedding MATCH "
                                                  "'[9.5,0,0,0,0,0,0,0]' AND k = 2");
  check_all(db, m, "after RELEASE a (commit)");
  db = reopen(db, zPath);
  check_all(db, m, "after RELEASE a and reopen");

  /* Nested inside BEGIN; ROLLBACK TO the outer one after inner ones; changes after it; COMMIT. */
  exec_ok(db, "BEGIN");
  line_vec(v, 3, 0, 1);
  insert_row(db, m, 201, 201, v);
  exec_ok(db, "SAVEPOINT s1");
  *mA = *m;
  line_vec(v, 3, 0, 2);
  insert_row(db, m, 202, 202, v);
  exec_ok(db, "SAVEPOINT s2");
  *mB = *m;
  exec_ok(db, "DELETE FROM t WHERE rowid IN (201, 3)");
  model_del(m, 201);
  model_del(m, 3);
  exec_ok(db, "SAVEPOINT s3");
  *mC = *m;
  line_vec(v, 3, 0, 0.5);
  execf_ok(db, "UPDATE t SET embedding = '%s' WHERE rowid = 202", vjson(v));
  model_put(m, 202, 202, v);
  EXPECT_KNN(db, "202:0.25 2:1 4:1", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[3,0,0,0,0,0,0,0]' "
                                     "AND k = 3");
  check_all(db, m, "in s3");
  exec_ok(db, "RELEASE s3"); /* merged into s2 */
  exec_ok(db, "ROLLBACK TO s2");
  *m = *mB;
  EXPECT_KNN(db, "3:0 2:1 201:1 202:4", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[3,0,0,0,0,0,0,0]' "
                                  "AND rowid IN (2, 3, 201, 202)");
  check_all(db, m, "after RELEASE s3, ROLLBACK TO s2");
  exec_ok(db, "SAVEPOINT s3");
  exec_ok(db, "DELETE FROM t WHERE rowid = 202");
  model_del(m, 202);
  check_all(db, m, "in the second s3");
  exec_ok(db, "ROLLBACK TO s1"); /* outer, after inner ones: s2 and s3 are gone */
  *m = *mA;
  EXPECT_KNN(db, "3:0 2:1 201:1", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[3,0,0,0,0,0,0,0]' "
                                  "AND rowid IN (2, 3, 201, 202)");
  check_all(db, m, "after ROLLBACK TO s1");
  char *zErr = tu_exec_error(db, "ROLLBACK TO s2");
  assert_non_null(strstr(zErr, "no such savepoint"));
  sqlite3_free(zErr);
  line_vec(v, 3, 0, 3);
  insert_row(db, m, 203, 203, v);
  exec_ok(db, "DELETE FROM t WHERE rowid = 4");
  model_del(m, 4);
  exec_ok(db, "RELEASE s1");
  check_all(db, m, "after RELEASE s1 (still in BEGIN)");
  assert_int_equal(sqlite3_get_autocommit(db), 0);
  db = commit_and_reopen(db, zPath, m, check_all);

  /* Savepoints opened before the table's first write in the transaction, and one opened after its last. */
  *mA = *m;
  exec_ok(db, "BEGIN; SAVEPOINT x; SAVEPOINT y");
  line_vec(v, 0, 5, 0);
  insert_row(db, m, 301, 301, v);
  *mB = *m;
  exec_ok(db, "SAVEPOINT z");
  exec_ok(db, "ROLLBACK TO z"); /* nothing since z */
  check_all(db, m, "after ROLLBACK TO z");
  exec_ok(db, "ROLLBACK TO y"); /* the table joined inside y */
  *m = *mA;
  check_all(db, m, "after ROLLBACK TO y");
  insert_row(db, m, 302, 302, v);
  exec_ok(db, "RELEASE y");
  line_vec(v, 0, 6, 0);
  insert_row(db, m, 303, 303, v);
  exec_ok(db, "ROLLBACK TO x");
  *m = *mA;
  check_all(db, m, "after ROLLBACK TO x");
  exec_ok(db, "COMMIT");
  check_all(db, m, "after the empty COMMIT");

  /* Two tables in one transaction, joining at different savepoint levels. */
  exec_ok(db, "CREATE VIRTUAL TABLE u USING vecstore(dim = 8)");
  exec_ok(db, "BEGIN");
  line_vec(v, 0, 7, 0);
  insert_row(db, m, 401, 401, v);
  *mA = *m;
  exec_ok(db, "SAVEPOINT p");
  exec_ok(db, "INSERT INTO u(rowid, embedding) VALUES (1, '[1,0,0,0,0,0,0,0]')");
  exec_ok(db, "SAVEPOINT q");
  exec_ok(db, "INSERT INTO u(rowid, embedding) VALUES (2, '[2,0,0,0,0,0,0,0]')");
  exec_ok(db, "DELETE FROM t WHERE rowid = 401");
  model_del(m, 401);
  EXPECT_KNN(db, "2:0 1:1", "SELECT rowid, distance, id FROM u WHERE embedding MATCH '[2,0,0,0,0,0,0,0]'");
  exec_ok(db, "ROLLBACK TO q");
  *m = *mA;
  EXPECT_KNN(db, "1:1", "SELECT rowid, distance, id FROM u WHERE embedding MATCH '[2,0,0,0,0,0,0,0]'");
  check_all(db, m, "two tables, after ROLLBACK TO q");
  exec_ok(db, "ROLLBACK TO p");
  EXPECT_KNN(db, "", "SELECT rowid, distance, id FROM u WHERE embedding MATCH '[2,0,0,0,0,0,0,0]'");
  exec_ok(db, "INSERT INTO u(rowid, embedding) VALUES (3, '[3,0,0,0,0,0,0,0]')");
  exec_ok(db, "COMMIT");
  EXPECT_KNN(db, "3:1", "SELECT rowid, distance, id FROM u WHERE embedding MATCH '[2,0,0,0,0,0,0,0]'");
  check_all(db, m, "two tables, after COMMIT");
  db = reopen(db, zPath);
  EXPECT_KNN(db, "3:1", "SELECT rowid, distance, id FROM u WHERE embedding MATCH '[2,0,0,0,0,0,0,0]'");
  check_all(db, m, "two tables, after reopen");
  exec_ok(db, "INSERT INTO u(u) VALUES ('integrity-check')");
  exec_ok(db, "INSERT INTO t(t) VALUES ('integrity-check')");

  close_table(db, zPath, m);
  free(mA);
  free(mB);
  free(mC);
}

/* A statement failing half-way leaves nothing behind, in autocommit and inside BEGIN and a savepoint; the
** transaction's earlier changes survive. */
static void statement_atomic(void **state) {
  const char *zIndex = *state;
  char *zPath = 0;
  Model *m = 0;
  sqlite3 *db = open_seeded("atomic.db", zIndex, 10, &zPath, &m);
  float v[DIM];
  /* src: rows 1..3 are new (near [50, ...]), row 4 repeats id 'id5', rows 5..6 are new again. */
  exec_ok(db, "CREATE TABLE src(n INTEGER PRIMARY KEY, rid INTEGER, id TEXT, emb TEXT);"
              "INSERT INTO src VALUES (1, 51, 'id51', '[50,1,0,0,0,0,0,0]'), (2, 52, 'id52', '[50,2,0,0,0,0,0,0]'),"
              " (3, 53, 'id53', '[50,3,0,0,0,0,0,0]'), (4, 54, 'id5', '[50,4,0,0,0,0,0,0]'),"
              " (5, 55, 'id55', '[50,5,0,0,0,0,0,0]'), (6, 56, 'id56', '[50,6,0,0,0,0,0,0]')");
  const char *zInsert = "INSERT INTO t(rowid, id, embedding) SELECT rid, id, emb FROM src ORDER BY n";
  const char *zNear50 = "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[50,0,0,0,0,0,0,0]' AND k = 3";

  /* Autocommit: a duplicate id in the 4th row. */
  exec_fail(db, zInsert, "UNIQUE constraint failed");
  exec_fail(db, zInsert, "id5");
  EXPECT_KNN(db, "10:1600 9:1681 8:1764", zNear50);
  check_all(db, m, "after a failed INSERT ... SELECT in autocommit");
  exec_ok(db, "INSERT INTO t(t) VALUES ('integrity-check')");
  /* Autocommit: a duplicate rowid in the 4th row. */
  exec_ok(db, "UPDATE src SET id = 'id54', rid = 7 WHERE n = 4");
  exec_fail(db, zInsert, "UNIQUE constraint failed");
  EXPECT_KNN(db, "10:1600 9:1681 8:1764", zNear50);
  check_all(db, m, "after a failed INSERT ... SELECT (rowid) in autocommit");
  /* Autocommit: INSERT OR REPLACE whose first row replaces a committed row, and whose 3rd row is invalid. */
  exec_fail(db, "INSERT OR REPLACE INTO t(rowid, id, embedding) VALUES (3, 'id3', '[50,0,0,0,0,0,0,0]'),"
                " (60, 'id8', '[50,0,0,0,0,0,0,1]'), (61, 'id61', '[1,2,3]')",
            "dim");
  EXPECT_KNN(db, "10:1600 9:1681 8:1764", zNear50);
  check_all(db, m, "after a failed INSERT OR REPLACE in autocommit");

  /* Inside BEGIN: earlier changes of the transaction survive the failed statement. */
  exec_ok(db, "UPDATE src SET id = 'id5', rid = 54 WHERE n = 4");
  exec_ok(db, "BEGIN");
  line_vec(v, 50, 0.5, 0);
  insert_row(db, m, 50, 50, v);
  exec_ok(db, "DELETE FROM t WHERE rowid = 10");
  model_del(m, 10);
  line_vec(v, 50, 0, 0.25);
  execf_ok(db, "UPDATE t SET embedding = '%s' WHERE rowid = 9", vjson(v));
  model_put(m, 9, 9, v);
  exec_fail(db, zInsert, "UNIQUE constraint failed");
  EXPECT_KNN(db, "9:0.0625 50:0.25 8:1764", zNear50);
  check_all(db, m, "after a failed INSERT ... SELECT inside BEGIN");
  /* A failed multi-row UPDATE (the last row's new id is taken) and a failed INSERT OR REPLACE. */
  exec_fail(db, "UPDATE t SET embedding = '[50,0,0,0,0,0,0,0]', id = CASE rowid WHEN 7 THEN 'id1' ELSE id END "
                "WHERE rowid BETWEEN 4 AND 7",
            "UNIQUE constraint failed");
  exec_fail(db, "INSERT OR REPLACE INTO t(rowid, id, embedding) VALUES (3, 'id3', '[50,0,0,0,0,0,0,0]'),"
                " (60, 'id8', '[50,0,0,0,0,0,0,1]'), (61, 'id61', '[1,2,3]')",
            "dim");
  exec_fail(db, "INSERT INTO t(rowid, id, embedding) VALUES (62, 'id62', '[50,0,0,0,0,0,0,0]'), "
                "(63, 'id63', '[50,0,0,0,0,0,0,0]'), (64, 'id50', '[50,0,0,0,0,0,0,0]')",
            "UNIQUE constraint failed");
  EXPECT_KNN(db, "9:0.0625 50:0.25 8:1764", zNear50);
  check_all(db, m, "after failed statements inside BEGIN");
  /* Inside a savepoint too, then ROLLBACK TO it. */
  exec_ok(db, "SAVEPOINT s");
  Model *mS = model_new();
  *mS = *m;
  exec_ok(db, "DELETE FROM t WHERE rowid = 50");
  model_del(m, 50);
  exec_fail(db, zInsert, "UNIQUE constraint failed");
  EXPECT_KNN(db, "9:0.0625 8:1764 7:1849", zNear50);
  check_all(db, m, "after a failed INSERT ... SELECT inside a savepoint");
  exec_ok(db, "ROLLBACK TO s");
  *m = *mS;
  EXPECT_KNN(db, "9:0.0625 50:0.25 8:1764", zNear50);
  exec_ok(db, "COMMIT");
  EXPECT_KNN(db, "9:0.0625 50:0.25 8:1764", zNear50);
  check_all(db, m, "after COMMIT");
  exec_ok(db, "INSERT INTO t(t) VALUES ('integrity-check')");
  db = reopen(db, zPath);
  EXPECT_KNN(db, "9:0.0625 50:0.25 8:1764", zNear50);
  check_all(db, m, "after COMMIT and reopen");
  /* Once the conflict is gone the same statement inserts every row. */
  exec_ok(db, "UPDATE src SET id = 'id54' WHERE n = 4");
  exec_ok(db, zInsert);
  EXPECT_KNN(db, "9:0.0625 50:0.25 51:1", zNear50);
  assert_int_equal(int_of(db, "SELECT count(*) FROM t"), 16);
  exec_ok(db, "INSERT INTO t(t) VALUES ('integrity-check')");
  close_table(db, zPath, m);
  free(mS);
}

/* k = N with rowid IN (...): the search runs among those rows only (SPEC), so N rows come back when N of them
** exist, committed or pending; inside a transaction and after COMMIT. */
static void test_k_with_rowid_in(void **state) {
  (void)state;
  char *zPath = 0;
  Model *m = 0;
  sqlite3 *db = open_seeded("rowid-in.db", "Flat", 10, &zPath, &m);
  exec_ok(db, "BEGIN");
  exec_ok(db, "INSERT INTO t(rowid, id, embedding) VALUES (201, 'id201', '[3,0,1,0,0,0,0,0]')");
  EXPECT_KNN(db, "3:0 2:1 201:1", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[3,0,0,0,0,0,0,0]' "
                                  "AND rowid IN (2, 3, 201)");
  EXPECT_KNN(db, "3:0 2:1 201:1", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[3,0,0,0,0,0,0,0]' "
                                  "AND k = 3 AND rowid IN (2, 3, 201)");
  exec_ok(db, "COMMIT");
  EXPECT_KNN(db, "3:0 2:1 201:1", "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[3,0,0,0,0,0,0,0]' "
                                  "AND k = 3 AND rowid IN (2, 3, 201)");
  close_table(db, zPath, m);
}

/* A search that Flat rejects (efSearch) and HNSW answers: which index a table really has. */
static const char *zEf16 = "SELECT rowid, distance, id FROM t WHERE embedding MATCH '[3,0,0,0,0,0,0,0]' AND k = 1 "
                           "AND search_params = 'efSearch=16'";

/* The command zCommand on table t inside SAVEPOINT zName, then ROLLBACK TO zName (which stays open). */
static void command_rolled_back(sqlite3 *db, const char *zName, const char *zCommand) {
  execf_ok(db, "SAVEPOINT %s", zName);
  execf_ok(db, "INSERT INTO t(t) VALUES ('%s')", zCommand);
  execf_ok(db, "ROLLBACK TO %s", zName);
}

/* ROLLBACK TO undoes a command like any other write: an index switch rolled back to a savepoint must not take
** effect at COMMIT. Observable through per-query search_params: Flat rejects efSearch, HNSW32 accepts it. */
static void test_rollback_to_undoes_index_switch(void **state) {
  (void)state;
  char *zPath = 0;
  Model *m = 0;
  sqlite3 *db = open_seeded("switch.db", "Flat", 30, &zPath, &m);
  exec_fail(db, zEf16, "efSearch");
  command_rolled_back(db, "a", "index=HNSW32");
  exec_ok(db, "RELEASE a");
  check_all(db, m, "after a rolled-back index switch");
  exec_fail(db, zEf16, "efSearch"); /* still Flat */
  db = reopen(db, zPath);
  exec_fail(db, zEf16, "efSearch");
  /* The other way: an HNSW32 table stays HNSW32. */
  exec_ok(db, "INSERT INTO t(t) VALUES ('index=HNSW32')");
  EXPECT_KNN(db, "3:0", zEf16);
  exec_ok(db, "BEGIN");
  command_rolled_back(db, "b", "index=Flat");
  exec_ok(db, "COMMIT");
  EXPECT_KNN(db, "3:0", zEf16);
  db = reopen(db, zPath);
  EXPECT_KNN(db, "3:0", zEf16);
  check_all(db, m, "after a rolled-back index switch and reopen");
  close_table(db, zPath, m);
}

/* Search parameters for an index type switched to earlier in the same transaction (found by the crash harness):
** 'index=HNSW16' then 'search_params=efSearch=128' must both take effect at COMMIT, also across ROLLBACK TO;
** before the fix the second command failed against the cached (still Flat) index after writing its config row. */
static void test_params_after_index_switch(void **state) {
  (void)state;
  char *zPath = 0;
  Model *m = 0;
  sqlite3 *db = open_seeded("switchparams.db", "Flat", 30, &zPath, &m);
  exec_ok(db, "BEGIN");
  exec_ok(db, "INSERT INTO t(t) VALUES ('index=HNSW16')");
  exec_ok(db, "INSERT INTO t(t) VALUES ('search_params=efSearch=128')");
  command_rolled_back(db, "a", "search_params=efSearch=64");
  exec_ok(db, "COMMIT");
  tu_expect_text(db, "SELECT value FROM t_config WHERE key = 'search_params'", "efSearch=128");
  tu_expect_text(db, "SELECT value FROM t_config WHERE key = 'index'", "HNSW16");
  EXPECT_KNN(db, "3:0", zEf16);
  db = reopen(db, zPath);
  check_all(db, m, "after an index switch with parameters");
  close_table(db, zPath, m);
}

/* A full MATCH returns every row, also on HNSW32 where the graph misses some (many equal vectors); inside a
** transaction too. SPEC: "the table keeps producing rows in distance order for as long as SQLite asks". */
static void test_full_match_hnsw_duplicates(void **state) {
  (void)state;
  char *zPath = 0;
  sqlite3 *db = open_table("dups.db", "HNSW32", &zPath);
  exec_ok(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) "
              "INSERT INTO t(rowid, id, embedding) SELECT x, 'id' || x, CASE WHEN x % 5 = 0 "
              "THEN '[' || (x % 7) || ',10,0,0,0,0,0,0]' ELSE '[0,0,0,0,0,0,0,1]' END FROM c");
  const char *zAll = "SELECT count(*) FROM (SELECT rowid FROM t WHERE embedding MATCH '[0,0,0,0,0,0,0,0]')";
  const char *zNear = "SELECT count(*) FROM (SELECT rowid FROM t WHERE embedding MATCH '[0,0,0,0,0,0,0,0]' "
                      "AND distance < 2)";
  assert_int_equal(int_of(db, "SELECT count(*) FROM t"), 1000);
  sqlite3_int64 n = int_of(db, zAll);
  if (n != 1000) FAIL("a full MATCH returned %lld of 1000 rows", n);
  assert_int_equal(int_of(db, zNear), 800);
  exec_ok(db, "BEGIN");
  exec_ok(db, "INSERT INTO t(rowid, id, embedding) VALUES (2000, 'id2000', '[0,0,0,0,0,0,0,1]')");
  n = int_of(db, zAll);
  if (n != 1001) FAIL("inside BEGIN a full MATCH returned %lld of 1001 rows", n);
  assert_int_equal(int_of(db, zNear), 801);
  exec_ok(db, "ROLLBACK");
  close_table(db, zPath, 0);
}

/**************************************************************************************************
** The randomized differential test.
*/
#define RID_RANGE 700
#define ID_RANGE 1000

typedef struct Sim {
  sqlite3 *db;
  char *zPath;
  uint64_t seed;
  Model *cur, *com;
  Model *aSave[MAX_SAVE];
  char aName[MAX_SAVE];
  int nSave;
  int bTxn, bBySavepoint;
  int iOp;
  /* statistics */
  int nChecks, nFailsExpected, nCommit, nRollback, nRollbackTo, nReopen, maxRows;
} Sim;

static uint64_t rnd(Sim *s, uint64_t n) { return tu_rand(&s->seed) % n; }

static void rand_vec(Sim *s, float *v) {
  for (int i = 0; i < DIM; i++) v[i] = (float)((int)rnd(s, 9) - 4);
}

static sqlite3_int64 pick_rowid(Sim *s) {
  if (s->cur->n > 0 && rnd(s, 10) < 8) return s->cur->a[rnd(s, (uint64_t)s->cur->n)].iRowid;
  return 1 + (sqlite3_int64)rnd(s, RID_RANGE);
}

static int pick_id(Sim *s) {
  if (s->cur->n > 0 && rnd(s, 10) == 0) return s->cur->a[rnd(s, (uint64_t)s->cur->n)].iId;
  return (int)rnd(s, ID_RANGE);
}

static void sim_commit(Sim *s) {
  *s->com = *s->cur;
  s->bTxn = s->bBySavepoint = 0;
  s->nSave = 0;
  s->nCommit++;
}

static void sim_rollback(Sim *s) {
  *s->cur = *s->com;
  s->bTxn = s->bBySavepoint = 0;
  s->nSave = 0;
  s->nRollback++;
}

/* A failed statement: in autocommit nothing changes; inside a transaction the statement alone is undone. */
static void sim_fail(Sim *s, const char *zSql, const char *zFrag) {
  exec_fail(s->db, zSql, zFrag);
  s->nFailsExpected++;
  if (sqlite3_get_autocommit(s->db) != !s->bTxn) FAIL("a failed statement changed the transaction state: %s", zSql);
}

static void sim_check(Sim *s, int bFull) {
  char zWhere[80];
  snprintf(zWhere, sizeof(zWhere), "op %d (seed check)", s->iOp);
  float q[DIM];
  rand_vec(s, q);
  if (s->cur->n > 0 && rnd(s, 2)) memcpy(q, s->cur->a[rnd(s, (uint64_t)s->cur->n)].v, sizeof(q));
  check_knn(s->db, s->cur, q, 5, (int)rnd(s, 2), zWhere);
  check_knn(s->db, s->cur, q, -1, 0, zWhere);
  sqlite3_int64 n = int_of(s->db, "SELECT count(*) FROM t");
  if (n != s->cur->n) FAIL("%s: count(*) is %lld, the model has %d", zWhere, n, s->cur->n);
  if (sqlite3_get_autocommit(s->db) != !s->bTxn) FAIL("%s: autocommit is %d, the model says %d", zWhere, sqlite3_get_autocommit(s->db), !s->bTxn);
  if (bFull) check_rows(s->db, s->cur, zWhere);
  s->nChecks++;
}

static void sim_reopen(Sim *s) {
  s->db = reopen(s->db, s->zPath);
  if (s->bTxn) sim_rollback(s); /* closing with an open transaction rolls it back */
  s->nReopen++;
  sim_check(s, 1);
}

static void sim_insert(Sim *s, int bReplace) {
  float v[DIM];
  rand_vec(s, v);
  sqlite3_int64 iRowid = pick_rowid(s);
  if (!bReplace && rnd(s, 6)) iRowid = 1 + (sqlite3_int64)rnd(s, RID_RANGE);
  int iId = pick_id(s);
  char *zSql = sqlite3_mprintf("INSERT%s INTO t(rowid, id, embedding) VALUES (%lld, 'id%d', '%s')",
                               bReplace ? " OR REPLACE" : "", iRowid, iId, vjson(v));
  int iByRowid = model_find(s->cur, iRowid), iById = model_find_id(s->cur, iId);
  if (!bReplace && (iByRowid >= 0 || iById >= 0)) {
    sim_fail(s, zSql, "UNIQUE constraint failed");
  } else {
    exec_ok(s->db, zSql);
    model_del(s->cur, iRowid);
    int i = model_find_id(s->cur, iId);
    if (i >= 0) model_del_at(s->cur, i);
    model_put(s->cur, iRowid, iId, v);
  }
  sqlite3_free(zSql);
}

static void sim_insert_auto(Sim *s) {
  float v[DIM];
  rand_vec(s, v);
  int iId = pick_id(s);
  char *zSql = sqlite3_mprintf("INSERT INTO t(id, embedding) VALUES ('id%d', '%s')", iId, vjson(v));
  if (model_find_id(s->cur, iId) >= 0) {
    sim_fail(s, zSql, "UNIQUE constraint failed");
  } else {
    exec_ok(s->db, zSql);
    sqlite3_int64 iLast = sqlite3_last_insert_rowid(s->db);
    char *zQ = sqlite3_mprintf("SELECT rowid FROM t WHERE id = 'id%d'", iId);
    sqlite3_int64 iRowid = int_of(s->db, zQ);
    sqlite3_free(zQ);
    if (iRowid != iLast) FAIL("op %d: last_insert_rowid() is %lld, the row got rowid %lld", s->iOp, iLast, iRowid);
    if (model_find(s->cur, iRowid) >= 0) FAIL("op %d: the assigned rowid %lld was taken", s->iOp, iRowid);
    model_put(s->cur, iRowid, iId, v);
  }
  sqlite3_free(zSql);
}

/* Three rows in one statement; if any conflicts (with the table or an earlier row) the statement changes nothing. */
static void sim_insert_multi(Sim *s) {
  MRow aRow[3];
  int bConflict = 0;
  char *zSql = sqlite3_mprintf("INSERT INTO t(rowid, id, embedding) VALUES ");
  for (int i = 0; i < 3; i++) {
    aRow[i].iRowid = 1 + (sqlite3_int64)rnd(s, RID_RANGE);
    aRow[i].iId = (int)rnd(s, ID_RANGE);
    if (i == 2 && rnd(s, 2)) aRow[i].iId = aRow[0].iId; /* a conflict inside the statement */
    rand_vec(s, aRow[i].v);
    if (model_find(s->cur, aRow[i].iRowid) >= 0 || model_find_id(s->cur, aRow[i].iId) >= 0) bConflict = 1;
    for (int j = 0; j < i; j++)
      if (aRow[j].iRowid == aRow[i].iRowid || aRow[j].iId == aRow[i].iId) bConflict = 1;
    char *z = sqlite3_mprintf("%s%s(%lld, 'id%d', '%s')", zSql, i ? ", " : "", aRow[i].iRowid, aRow[i].iId,
                              vjson(aRow[i].v));
    sqlite3_free(zSql);
    zSql = z;
  }
  if (bConflict) {
    sim_fail(s, zSql, "UNIQUE constraint failed");
  } else {
    exec_ok(s->db, zSql);
    for (int i = 0; i < 3; i++) model_put(s->cur, aRow[i].iRowid, aRow[i].iId, aRow[i].v);
  }
  sqlite3_free(zSql);
}

static void sim_delete(Sim *s) {
  if (rnd(s, 8) == 0) {
    sqlite3_int64 a = 1 + (sqlite3_int64)rnd(s, RID_RANGE), b = a + (sqlite3_int64)rnd(s, 12);
    execf_ok(s->db, "DELETE FROM t WHERE rowid BETWEEN %lld AND %lld", a, b);
    for (int i = s->cur->n - 1; i >= 0; i--)
      if (s->cur->a[i].iRowid >= a && s->cur->a[i].iRowid <= b) model_del_at(s->cur, i);
  } else if (rnd(s, 4) == 0) {
    int iId = pick_id(s);
    execf_ok(s->db, "DELETE FROM t WHERE id = 'id%d'", iId);
    int i = model_find_id(s->cur, iId);
    if (i >= 0) model_del_at(s->cur, i);
  } else {
    sqlite3_int64 iRowid = pick_rowid(s);
    execf_ok(s->db, "DELETE FROM t WHERE rowid = %lld", iRowid);
    model_del(s->cur, iRowid);
  }
}

static void sim_update(Sim *s) {
  float v[DIM];
  rand_vec(s, v);
  int eKind = (int)rnd(s, 20);
  sqlite3_int64 iRowid = pick_rowid(s);
  int i = model_find(s->cur, iRowid);
  if (eKind < 14) { /* a new embedding */
    execf_ok(s->db, "UPDATE t SET embedding = '%s' WHERE rowid = %lld", vjson(v), iRowid);
    if (i >= 0) memcpy(s->cur->a[i].v, v, sizeof(v));
  } else if (eKind < 16) { /* several rows get one embedding */
    sqlite3_int64 a = 1 + (sqlite3_int64)rnd(s, RID_RANGE), b = a + (sqlite3_int64)rnd(s, 6);
    execf_ok(s->db, "UPDATE t SET embedding = '%s' WHERE rowid BETWEEN %lld AND %lld", vjson(v), a, b);
    for (int j = 0; j < s->cur->n; j++)
      if (s->cur->a[j].iRowid >= a && s->cur->a[j].iRowid <= b) memcpy(s->cur->a[j].v, v, sizeof(v));
  } else if (eKind < 18) { /* a new rowid */
    sqlite3_int64 iNew = 1 + (sqlite3_int64)rnd(s, RID_RANGE);
    char *zSql = sqlite3_mprintf("UPDATE t SET rowid = %lld WHERE rowid = %lld", iNew, iRowid);
    if (i >= 0 && iNew != iRowid && model_find(s->cur, iNew) >= 0) {
      sim_fail(s, zSql, "UNIQUE constraint failed");
    } else {
      exec_ok(s->db, zSql);
      if (i >= 0) s->cur->a[i].iRowid = iNew;
    }
    sqlite3_free(zSql);
  } else { /* a new id, sometimes with a new embedding */
    int iId = pick_id(s);
    int bVec = (int)rnd(s, 2);
    char *zSql = bVec ? sqlite3_mprintf("UPDATE t SET id = 'id%d', embedding = '%s' WHERE rowid = %lld", iId, vjson(v), iRowid)
                      : sqlite3_mprintf("UPDATE t SET id = 'id%d' WHERE rowid = %lld", iId, iRowid);
    int iOther = model_find_id(s->cur, iId);
    if (i >= 0 && iOther >= 0 && iOther != i) {
      sim_fail(s, zSql, "UNIQUE constraint failed");
    } else {
      exec_ok(s->db, zSql);
      if (i >= 0) {
        s->cur->a[i].iId = iId;
        if (bVec) memcpy(s->cur->a[i].v, v, sizeof(v));
      }
    }
    sqlite3_free(zSql);
  }
}

static int find_save(Sim *s, char cName) {
  for (int i = s->nSave - 1; i >= 0; i--)
    if (s->aName[i] == cName) return i;
  return -1;
}

static void sim_txn(Sim *s) {
  int r = (int)rnd(s, 100);
  if (r < 25) { /* BEGIN / COMMIT */
    if (!s->bTxn) {
      exec_ok(s->db, "BEGIN");
      s->bTxn = 1;
    } else {
      exec_ok(s->db, "COMMIT");
      sim_commit(s);
    }
  } else if (r < 37) { /* ROLLBACK */
    if (s->bTxn) {
      exec_ok(s->db, "ROLLBACK");
      sim_rollback(s);
    }
  } else if (r < 62) { /* SAVEPOINT */
    if (s->nSave >= MAX_SAVE) return;
    char c = (char)('a' + rnd(s, 3));
    execf_ok(s->db, "SAVEPOINT %c", c);
    if (!s->bTxn) s->bTxn = s->bBySavepoint = 1;
    s->aName[s->nSave] = c;
    *s->aSave[s->nSave] = *s->cur;
    s->nSave++;
  } else if (r < 84) { /* ROLLBACK TO */
    if (s->nSave == 0) return;
    char c = s->aName[rnd(s, (uint64_t)s->nSave)];
    int i = find_save(s, c);
    execf_ok(s->db, "ROLLBACK TO %c", c);
    *s->cur = *s->aSave[i];
    s->nSave = i + 1;
    s->nRollbackTo++;
  } else { /* RELEASE */
    if (s->nSave == 0) return;
    char c = s->aName[rnd(s, (uint64_t)s->nSave)];
    int i = find_save(s, c);
    execf_ok(s->db, "RELEASE %c", c);
    s->nSave = i;
    if (s->nSave == 0 && s->bBySavepoint) sim_commit(s);
  }
}

static void random_ops(const char *zIndex, uint64_t seed, int nOps) {
  if (getenv("VS_TEST_SEED")) seed = strtoull(getenv("VS_TEST_SEED"), 0, 10); /* exploring other seeds */
  Sim sim, *s = &sim;
  memset(s, 0, sizeof(*s));
  s->seed = seed;
  char zName[64];
  snprintf(zName, sizeof(zName), "random-%s-%llu.db", zIndex, (unsigned long long)seed);
  s->db = open_table(zName, zIndex, &s->zPath);
  s->cur = model_new();
  s->com = model_new();
  for (int i = 0; i < MAX_SAVE; i++) s->aSave[i] = model_new();

  /* A committed base of 150 rows. */
  exec_ok(s->db, "BEGIN");
  for (int i = 0; i < 150; i++) {
    float v[DIM];
    rand_vec(s, v);
    sqlite3_int64 iRowid = 1 + (sqlite3_int64)rnd(s, RID_RANGE);
    if (model_find(s->cur, iRowid) >= 0) continue;
    insert_row(s->db, s->cur, iRowid, 1000 + i, v); /* ids 'id1000'.. never collide with ID_RANGE */
  }
  exec_ok(s->db, "COMMIT");
  *s->com = *s->cur;
  sim_check(s, 1);

  for (s->iOp = 1; s->iOp <= nOps; s->iOp++) {
    int r = (int)rnd(s, 1000);
    if (r < 260) sim_insert(s, 0);
    else if (r < 300) sim_insert_auto(s);
    else if (r < 380) sim_insert(s, 1);
    else if (r < 420) sim_insert_multi(s);
    else if (r < 560) sim_delete(s);
    else if (r < 700) sim_update(s);
    else if (r < 960) sim_txn(s);
    else if (r < 975) {
      exec_ok(s->db, "INSERT INTO t(t) VALUES ('integrity-check')");
    } else if (r < 990) {
      exec_ok(s->db, "INSERT INTO t(t) VALUES ('optimize')");
    } else if (r < 994) {
      sim_reopen(s);
    } else {
      sim_insert(s, 0);
    }
    if (!s->bTxn) *s->com = *s->cur; /* an autocommit statement commits */
    if (s->cur->n > s->maxRows) s->maxRows = s->cur->n;
    if (s->iOp % 4 == 0) sim_check(s, s->iOp % 100 == 0);
  }
  if (s->bTxn) {
    exec_ok(s->db, "COMMIT");
    sim_commit(s);
  }
  sim_check(s, 1);
  exec_ok(s->db, "INSERT INTO t(t) VALUES ('integrity-check')");
  sim_reopen(s);
  check_all(s->db, s->cur, "final, after reopen");
  exec_ok(s->db, "INSERT INTO t(t) VALUES ('integrity-check')");
  exec_ok(s->db, "INSERT INTO t(t) VALUES ('optimize')");
  sim_reopen(s);
  check_all(s->db, s->cur, "final, after optimize and reopen");
  if (getenv("VS_TEST_VERBOSE")) {
    fprintf(stderr, "%s seed %llu: %d ops, %d checks, %d expected failures, %d commits, %d rollbacks, %d rollback-to, "
            "%d reopens, max %d rows, %d at the end\n", zIndex, (unsigned long long)seed, nOps, s->nChecks,
            s->nFailsExpected, s->nCommit, s->nRollback, s->nRollbackTo, s->nReopen, s->maxRows, s->cur->n);
  }
  assert_true(s->nRollbackTo > 10 && s->nRollback > 10 && s->nCommit > 10 && s->nFailsExpected > 50);

  close_table(s->db, s->zPath, s->cur);
  free(s->com);
  for (int i = 0; i < MAX_SAVE; i++) free(s->aSave[i]);
}

static void test_random_flat(void **state) {
  (void)state;
  random_ops("Flat", 20240601, 3000);
}

static void test_random_hnsw(void **state) {
  (void)state;
  random_ops("HNSW32", 777, 3000);
}

/* The tests <zName>_flat and <zName>_hnsw: f(state) with *state the index, "Flat" or "HNSW32". */
#define FLAT_AND_HNSW(zName, f) \
  {#zName "_flat", f, NULL, NULL, (void *)"Flat"}, {#zName "_hnsw", f, NULL, NULL, (void *)"HNSW32"}

int main(void) {
  const struct CMUnitTest tests[] = {
      FLAT_AND_HNSW(test_read_your_writes, read_your_writes), FLAT_AND_HNSW(test_rollback, rollback_many),
      FLAT_AND_HNSW(test_savepoints, savepoints),             FLAT_AND_HNSW(test_statement_atomic, statement_atomic),
      cmocka_unit_test(test_k_with_rowid_in),
      cmocka_unit_test(test_rollback_to_undoes_index_switch),
      cmocka_unit_test(test_params_after_index_switch),
      cmocka_unit_test(test_full_match_hnsw_duplicates),
      cmocka_unit_test(test_random_flat),           cmocka_unit_test(test_random_hnsw),
  };
  return cmocka_run_group_tests_name("transaction", tests, NULL, NULL);
}
