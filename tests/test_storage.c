/* Storage (SPEC "Storage", DESIGN "The database is the truth"): the shadow tables <name>_config, _docs,
** _vectors, _log and _snapshot; persistence across close/reopen, file copy, VACUUM INTO, the backup API,
** serialize/deserialize and ATTACH; DROP and RENAME; read-only shadow tables in defensive mode; two
** connections on one file (WAL and rollback journal); the O(1) one-row commit and the chunked snapshot;
** HNSW deletes and updates; damaged shadow tables.
**
** Searches are checked against an exact brute force over a mirror of the table kept in C: same rowids in
** the same order, distances within 1e-4 (relative). HNSW tables are created with efSearch=256, which is exact
** at these sizes; results at a low efSearch are compared only between copies of one serialised graph. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

typedef sqlite3_int64 i64;

#define DIM 16
#define NQ 6
#define KK 10

/**************************************************************************************************
** A mirror of a table's live vectors (rowids 1..nMax) and an exact search over it.
*/

typedef struct Mirror {
  int nDim;
  int nMax;
  float *aVec;          /* (nMax + 1) * nDim */
  unsigned char *aLive; /* nMax + 1 */
} Mirror;

static Mirror *mirror_new(int nMax, int nDim) {
  Mirror *m = calloc(1, sizeof(*m));
  m->nDim = nDim;
  m->nMax = nMax;
  m->aVec = calloc((size_t)(nMax + 1) * nDim, sizeof(float));
  m->aLive = calloc((size_t)nMax + 1, 1);
  return m;
}

static Mirror *mirror_clone(const Mirror *p) {
  Mirror *m = mirror_new(p->nMax, p->nDim);
  memcpy(m->aVec, p->aVec, (size_t)(p->nMax + 1) * p->nDim * sizeof(float));
  memcpy(m->aLive, p->aLive, (size_t)p->nMax + 1);
  return m;
}

static void mirror_free(Mirror *m) {
  if (m == 0) return;
  free(m->aVec);
  free(m->aLive);
  free(m);
}

static float *mvec(const Mirror *m, i64 iRowid) { return m->aVec + (size_t)iRowid * m->nDim; }

static int mirror_count(const Mirror *m) {
  int n = 0;
  for (int i = 1; i <= m->nMax; i++) n += m->aLive[i];
  return n;
}

static void rand_vec(uint64_t *pSeed, float *a, int n) {
  for (int i = 0; i < n; i++) a[i] = (float)(tu_rand_unit(pSeed) * 2.0 - 1.0);
}

static double l2sq(const float *a, const float *b, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) {
    double d = (double)a[i] - (double)b[i];
    s += d * d;
  }
  return s;
}

typedef TuHit Hit;

/* The k nearest live rows of m to q; returns how many. */
static int exact_knn(const Mirror *m, const float *q, int k, Hit *aOut) {
  Hit *a = malloc(sizeof(Hit) * ((size_t)m->nMax + 1));
  int n = 0;
  for (int i = 1; i <= m->nMax; i++) {
    if (!m->aLive[i]) continue;
    a[n].iRowid = i;
    a[n].rDist = l2sq(q, mvec(m, i), m->nDim);
    n++;
  }
  n = tu_hits_nearest(a, n, k);
  memcpy(aOut, a, sizeof(Hit) * (size_t)n);
  free(a);
  return n;
}

/**************************************************************************************************
** SQL helpers.
*/

/* tu_int with printf-style SQL. */
static i64 qint(sqlite3 *db, const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  char *zSql = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  i64 v = tu_int(db, zSql);
  sqlite3_free(zSql);
  return v;
}

/* An integer value of <zTab>_config (zTab may be schema-qualified as "aux"."t"). */
static i64 cfg_int(sqlite3 *db, const char *zTab, const char *zKey) {
  return qint(db, "SELECT value FROM %s_config WHERE key = '%q'", zTab, zKey);
}

/* Runs a KNN search; returns the number of rows, or -1 with *pzErr set (sqlite3_malloc'd) on error. */
static int sql_knn_try(sqlite3 *db, const char *zTab, const float *q, int nDim, int k, const char *zExtra,
                       Hit *aOut, char **pzErr) {
  char *zSql = sqlite3_mprintf("SELECT rowid, distance FROM %s WHERE embedding MATCH ?1 AND k = %d%s", zTab, k,
                               zExtra ? zExtra : "");
  sqlite3_stmt *pStmt = 0;
  *pzErr = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  sqlite3_free(zSql);
  if (rc != SQLITE_OK) {
    *pzErr = sqlite3_mprintf("%s", sqlite3_errmsg(db));
    return -1;
  }
  sqlite3_bind_blob(pStmt, 1, q, nDim * 4, SQLITE_TRANSIENT);
  int n = 0;
  while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    if (n < k) {
      aOut[n].iRowid = sqlite3_column_int64(pStmt, 0);
      aOut[n].rDist = sqlite3_column_double(pStmt, 1);
    }
    n++;
  }
  if (rc != SQLITE_DONE) {
    *pzErr = sqlite3_mprintf("%s", sqlite3_errmsg(db));
    sqlite3_finalize(pStmt);
    return -1;
  }
  sqlite3_finalize(pStmt);
  return n;
}

static int sql_knn(sqlite3 *db, const char *zTab, const float *q, int nDim, int k, const char *zExtra, Hit *aOut) {
  char *zErr = 0;
  int n = sql_knn_try(db, zTab, q, nDim, k, zExtra, aOut, &zErr);
  if (n < 0) fail_msg("KNN search on %s failed: %s", zTab, zErr);
  return n;
}

static int same_dist(double a, double b) { return fabs(a - b) <= 1e-4 * (fabs(b) > 1.0 ? fabs(b) : 1.0); }

/* Asserts that the search result aGot (nGot rows) equals the exact one. */
static void expect_hits(const char *zWhat, const Hit *aGot, int nGot, const Hit *aWant, int nWant) {
  int bOk = nGot == nWant;
  for (int i = 0; bOk && i < nWant; i++) {
    bOk = aGot[i].iRowid == aWant[i].iRowid && same_dist(aGot[i].rDist, aWant[i].rDist);
  }
  if (bOk) return;
  char zBuf[4096];
  int n = snprintf(zBuf, sizeof(zBuf), "%s: got %d rows, expected %d\n", zWhat, nGot, nWant);
  for (int i = 0; i < (nGot > nWant ? nGot : nWant) && i < 12 && n < (int)sizeof(zBuf) - 100; i++) {
    n += snprintf(zBuf + n, sizeof(zBuf) - (size_t)n, "  #%d got %lld %.6g  want %lld %.6g\n", i,
                  i < nGot ? aGot[i].iRowid : -1LL, i < nGot ? aGot[i].rDist : -1.0,
                  i < nWant ? aWant[i].iRowid : -1LL, i < nWant ? aWant[i].rDist : -1.0);
  }
  fail_msg("%s", zBuf);
}

/* The search for q on zTab equals the exact search over m. */
static void expect_knn(sqlite3 *db, const char *zTab, const Mirror *m, const float *q, int k, const char *zWhat) {
  Hit aGot[64], aWant[64];
  int nGot = sql_knn(db, zTab, q, m->nDim, k, 0, aGot);
  int nWant = exact_knn(m, q, k, aWant);
  expect_hits(zWhat, aGot, nGot, aWant, nWant);
}

/* Every query of aQ (nq x nDim) plus the vectors of a few live rows as queries. */
static void expect_all(sqlite3 *db, const char *zTab, const Mirror *m, const float *aQ, int nq, const char *zWhat) {
  char zBuf[200];
  for (int i = 0; i < nq; i++) {
    snprintf(zBuf, sizeof(zBuf), "%s, query %d", zWhat, i);
    expect_knn(db, zTab, m, aQ + (size_t)i * m->nDim, KK, zBuf);
  }
  /* a stored vector finds its own row first, at distance 0 */
  int nDone = 0;
  for (int r = 1; r <= m->nMax && nDone < 3; r += 1 + m->nMax / 4) {
    while (r <= m->nMax && !m->aLive[r]) r++;
    if (r > m->nMax) break;
    snprintf(zBuf, sizeof(zBuf), "%s, own vector of rowid %d", zWhat, r);
    expect_knn(db, zTab, m, mvec(m, r), 3, zBuf);
    nDone++;
  }
  i64 nCount = qint(db, "SELECT count(*) FROM %s", zTab);
  if (nCount != mirror_count(m)) fail_msg("%s: count(*) = %lld, expected %d", zWhat, nCount, mirror_count(m));
}

static void make_queries(uint64_t seed, float *aQ, int nq, int nDim) {
  for (int i = 0; i < nq; i++) rand_vec(&seed, aQ + (size_t)i * nDim, nDim);
}

static sqlite3_stmt *prepare_fmt(sqlite3 *db, const char *zFmt, const char *zTab) {
  char *zSql = sqlite3_mprintf(zFmt, zTab);
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  sqlite3_free(zSql);
  return pStmt;
}

static void step_done(sqlite3 *db, sqlite3_stmt *pStmt) {
  int rc = sqlite3_step(pStmt);
  if (rc != SQLITE_DONE) fail_msg("step failed (%s): %s\n  in: %s", sqlite3_errstr(rc), sqlite3_errmsg(db),
                                  sqlite3_sql(pStmt));
  sqlite3_reset(pStmt);
}

/* Inserts rowids iFirst..iLast with random vectors (recorded in m); the caller chooses the transaction. */
static void insert_rows(sqlite3 *db, const char *zTab, Mirror *m, i64 iFirst, i64 iLast, uint64_t *pSeed) {
  sqlite3_stmt *pStmt = prepare_fmt(db,
                                    "INSERT INTO %s(rowid, id, content, metadata, embedding) VALUES "
                                    "(?1, 'doc-' || ?1, 'text of ' || ?1, json_object('n', ?1), ?2)",
                                    zTab);
  for (i64 r = iFirst; r <= iLast; r++) {
    rand_vec(pSeed, mvec(m, r), m->nDim);
    sqlite3_bind_int64(pStmt, 1, r);
    sqlite3_bind_blob(pStmt, 2, mvec(m, r), m->nDim * 4, SQLITE_STATIC);
    step_done(db, pStmt);
    m->aLive[r] = 1;
  }
  sqlite3_finalize(pStmt);
}

/* Inserts one row whose vector is a (copied into m). */
static void insert_vec(sqlite3 *db, const char *zTab, Mirror *m, i64 iRowid, const float *a) {
  memcpy(mvec(m, iRowid), a, sizeof(float) * (size_t)m->nDim);
  sqlite3_stmt *pStmt = prepare_fmt(db,
                                    "INSERT INTO %s(rowid, id, content, metadata, embedding) VALUES "
                                    "(?1, 'doc-' || ?1, 'text of ' || ?1, json_object('n', ?1), ?2)",
                                    zTab);
  sqlite3_bind_int64(pStmt, 1, iRowid);
  sqlite3_bind_blob(pStmt, 2, a, m->nDim * 4, SQLITE_STATIC);
  step_done(db, pStmt);
  sqlite3_finalize(pStmt);
  m->aLive[iRowid] = 1;
}

static void delete_row(sqlite3 *db, const char *zTab, Mirror *m, i64 iRowid) {
  sqlite3_stmt *pStmt = prepare_fmt(db, "DELETE FROM %s WHERE rowid = ?1", zTab);
  sqlite3_bind_int64(pStmt, 1, iRowid);
  step_done(db, pStmt);
  sqlite3_finalize(pStmt);
  assert_int_equal(sqlite3_changes(db), 1);
  m->aLive[iRowid] = 0;
}

/* Sets the embedding of iRowid to a (copied into m). */
static void update_vec(sqlite3 *db, const char *zTab, Mirror *m, i64 iRowid, const float *a) {
  memmove(mvec(m, iRowid), a, sizeof(float) * (size_t)m->nDim);
  sqlite3_stmt *pStmt = prepare_fmt(db, "UPDATE %s SET embedding = ?2 WHERE rowid = ?1", zTab);
  sqlite3_bind_int64(pStmt, 1, iRowid);
  sqlite3_bind_blob(pStmt, 2, mvec(m, iRowid), m->nDim * 4, SQLITE_STATIC);
  step_done(db, pStmt);
  sqlite3_finalize(pStmt);
  assert_int_equal(sqlite3_changes(db), 1);
}

/* The document columns of a few rows and their stored embeddings match m bit for bit. */
static void expect_documents(sqlite3 *db, const char *zTab, const Mirror *m) {
  sqlite3_stmt *pStmt = prepare_fmt(db,
                                    "SELECT id, content, json_extract(metadata, '$.n'), embedding FROM %s "
                                    "WHERE rowid = ?1",
                                    zTab);
  int nDone = 0;
  for (int r = 1; r <= m->nMax && nDone < 5; r += 1 + m->nMax / 6) {
    if (!m->aLive[r]) continue;
    sqlite3_bind_int(pStmt, 1, r);
    if (sqlite3_step(pStmt) != SQLITE_ROW) fail_msg("row %d of %s missing: %s", r, zTab, sqlite3_errmsg(db));
    char zId[32], zContent[32];
    snprintf(zId, sizeof(zId), "doc-%d", r);
    snprintf(zContent, sizeof(zContent), "text of %d", r);
    assert_string_equal((const char *)sqlite3_column_text(pStmt, 0), zId);
    assert_string_equal((const char *)sqlite3_column_text(pStmt, 1), zContent);
    assert_int_equal(sqlite3_column_int(pStmt, 2), r);
    assert_int_equal(sqlite3_column_bytes(pStmt, 3), m->nDim * 4);
    assert_memory_equal(sqlite3_column_blob(pStmt, 3), mvec(m, r), (size_t)m->nDim * 4);
    sqlite3_reset(pStmt);
    nDone++;
  }
  sqlite3_finalize(pStmt);
}

/* INSERT INTO <schema>.<tab>(<tab>) VALUES ('integrity-check') succeeds. */
static void integrity_ok(sqlite3 *db, const char *zSchema, const char *zTab) {
  tu_exec_fmt(db, "INSERT INTO \"%w\".\"%w\"(\"%w\") VALUES ('integrity-check')", zSchema, zTab, zTab);
}

static void command(sqlite3 *db, const char *zTab, const char *zCmd) {
  tu_exec_fmt(db, "INSERT INTO \"%w\"(\"%w\") VALUES ('%q')", zTab, zTab, zCmd);
}

/* Search results of NQ queries, for exact comparison between copies of one store. */
typedef struct Results {
  int n[NQ];
  Hit a[NQ][KK];
} Results;

static void capture(sqlite3 *db, const char *zTab, const float *aQ, int nDim, const char *zExtra, Results *p) {
  for (int i = 0; i < NQ; i++) p->n[i] = sql_knn(db, zTab, aQ + (size_t)i * nDim, nDim, KK, zExtra, p->a[i]);
}

static void expect_same(sqlite3 *db, const char *zTab, const float *aQ, int nDim, const char *zExtra,
                        const Results *pWant, const char *zWhat) {
  Results got;
  capture(db, zTab, aQ, nDim, zExtra, &got);
  char zBuf[200];
  for (int i = 0; i < NQ; i++) {
    snprintf(zBuf, sizeof(zBuf), "%s (same results as the original%s%s), query %d", zWhat, zExtra ? " with" : "",
             zExtra ? zExtra : "", i);
    expect_hits(zBuf, got.a[i], got.n[i], pWant->a[i], pWant->n[i]);
  }
}


static void close_db(sqlite3 *db) {
  int rc = sqlite3_close(db);
  if (rc != SQLITE_OK) fail_msg("sqlite3_close: %s (an unfinalized statement?)", sqlite3_errstr(rc));
}

/**************************************************************************************************
** Shadow tables.
*/

static void expect_shadow_tables(sqlite3 *db, const char *zSchema, const char *zTab, int bPresent) {
  static const char *azSuffix[] = {"config", "docs", "vectors", "log", "snapshot"};
  for (int i = 0; i < 5; i++) {
    i64 n = qint(db, "SELECT count(*) FROM \"%w\".sqlite_master WHERE type = 'table' AND name = '%q_%q'", zSchema,
                 zTab, azSuffix[i]);
    if (n != bPresent) fail_msg("%s.%s_%s: %s", zSchema, zTab, azSuffix[i], bPresent ? "missing" : "still there");
  }
  /* nothing else named like the table's shadow tables */
  i64 nOther = qint(db,
                    "SELECT count(*) FROM \"%w\".sqlite_master WHERE name LIKE '%q\\_%%' ESCAPE '\\' AND name NOT IN "
                    "('%q_config', '%q_docs', '%q_vectors', '%q_log', '%q_snapshot') AND type = 'table'",
                    zSchema, zTab, zTab, zTab, zTab, zTab, zTab);
  assert_int_equal(nOther, 0);
}

/* CREATE makes exactly the five shadow tables, reported as shadow tables, with the configuration rows. */
static void test_shadow_tables(void **state) {
  (void)state;
  char *zPath = tu_path("shadow.db");
  tu_remove_db(zPath);
  sqlite3 *db = tu_open(zPath);
  tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim=16, metric=cosine, index='HNSW32')");
  expect_shadow_tables(db, "main", "t", 1);
  /* xShadowName: PRAGMA table_list reports them as shadow tables */
  assert_int_equal(qint(db, "SELECT count(*) FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow' AND "
                            "name IN ('t_config', 't_docs', 't_vectors', 't_log', 't_snapshot')"),
                   5);
  assert_int_equal(qint(db, "SELECT count(*) FROM pragma_table_list WHERE type = 'shadow'"), 5);
  assert_int_equal(cfg_int(db, "t", "dim"), 16);
  char *z = tu_text(db, "SELECT value FROM t_config WHERE key = 'metric'");
  assert_string_equal(z, "cosine");
  sqlite3_free(z);
  z = tu_text(db, "SELECT value FROM t_config WHERE key = 'index'");
  assert_string_equal(z, "HNSW32");
  sqlite3_free(z);
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), 0);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_vectors"), 0);
  /* one row: a document row, a vector row of 4*dim bytes, one log entry (no snapshot for one row) */
  tu_exec(db, "INSERT INTO t(rowid, id, content, metadata, embedding) VALUES "
              "(7, 'a', 'hello', '{\"p\": 1}', '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]')");
  assert_int_equal(qint(db, "SELECT count(*) FROM t_docs WHERE rowid = 7 AND id = 'a' AND content = 'hello'"), 1);
  assert_int_equal(qint(db, "SELECT length(embedding) FROM t_vectors WHERE rowid = 7"), 64);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 1);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_snapshot"), 0);
  /* a non-vecstore table with a similar name is not a shadow table */
  tu_exec(db, "CREATE TABLE t_other(x)");
  assert_int_equal(qint(db, "SELECT count(*) FROM pragma_table_list WHERE name = 't_other' AND type = 'table'"), 1);
  close_db(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/**************************************************************************************************
** Persistence.
*/

typedef struct Store {
  Mirror *m;
  float aQ[NQ * DIM];
  const char *zLowEf; /* a per-query search_params clause at which the index is approximate, or 0 */
  Results low;        /* results at zLowEf (or default) on the original, after 'optimize' */
  int bHaveLow;
} Store;

/* Checks a copy of the store opened as <zSchema>.t on db. */
static void verify_store(sqlite3 *db, const char *zSchema, Store *s, const char *zWhat) {
  char zTab[64];
  snprintf(zTab, sizeof(zTab), "\"%s\".t", zSchema);
  expect_all(db, zTab, s->m, s->aQ, NQ, zWhat);
  expect_documents(db, zTab, s->m);
  if (s->bHaveLow) expect_same(db, zTab, s->aQ, DIM, s->zLowEf, &s->low, zWhat);
  integrity_ok(db, zSchema, "t");
}

/* Every way of moving the file: reopen, file copy, VACUUM INTO, backup API, serialize/deserialize, ATTACH. */
static void verify_all_copies(const char *zName, const char *zPath, Store *s, int iRound) {
  char zWhat[128];
  /* reopen */
  sqlite3 *db = tu_open(zPath);
  snprintf(zWhat, sizeof(zWhat), "%s round %d: reopened", zName, iRound);
  verify_store(db, "main", s, zWhat);
  close_db(db);

  /* a byte copy of the closed file */
  char *zCopy = sqlite3_mprintf("%s-copy%d.db", zPath, iRound);
  tu_copy_file(zPath, zCopy);
  db = tu_open(zCopy);
  snprintf(zWhat, sizeof(zWhat), "%s round %d: file copy", zName, iRound);
  verify_store(db, "main", s, zWhat);
  close_db(db);

  /* VACUUM INTO and the backup API, from a connection that has already searched */
  char *zVacuum = sqlite3_mprintf("%s-vacuum%d.db", zPath, iRound);
  char *zBackup = sqlite3_mprintf("%s-backup%d.db", zPath, iRound);
  tu_remove_db(zVacuum);
  tu_remove_db(zBackup);
  db = tu_open(zPath);
  expect_knn(db, "t", s->m, s->aQ, KK, "before VACUUM INTO");
  tu_exec_fmt(db, "VACUUM INTO '%q'", zVacuum);
  sqlite3 *dbBackup = 0;
  assert_int_equal(sqlite3_open(zBackup, &dbBackup), SQLITE_OK);
  sqlite3_backup *pBackup = sqlite3_backup_init(dbBackup, "main", db, "main");
  assert_non_null(pBackup);
  assert_int_equal(sqlite3_backup_step(pBackup, -1), SQLITE_DONE);
  assert_int_equal(sqlite3_backup_finish(pBackup), SQLITE_OK);
  close_db(dbBackup);

  /* sqlite3_serialize into a fresh :memory: connection */
  sqlite3_int64 nByte = 0;
  unsigned char *aImage = sqlite3_serialize(db, "main", &nByte, 0);
  assert_non_null(aImage);
  sqlite3 *dbMem = tu_open(":memory:");
  assert_int_equal(sqlite3_deserialize(dbMem, "main", aImage, nByte, nByte,
                                       SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE),
                   SQLITE_OK);
  snprintf(zWhat, sizeof(zWhat), "%s round %d: deserialized", zName, iRound);
  verify_store(dbMem, "main", s, zWhat);
  /* the deserialized store is writable and independent of the file */
  {
    Mirror *m2 = mirror_clone(s->m);
    float a[DIM];
    for (int i = 0; i < DIM; i++) a[i] = s->aQ[i] + 0.001f;
    insert_vec(dbMem, "t", m2, m2->nMax, a);
    expect_knn(dbMem, "t", m2, s->aQ, KK, "deserialized, after an insert");
    expect_knn(db, "t", s->m, s->aQ, KK, "file, after an insert into the deserialized copy");
    mirror_free(m2);
  }
  close_db(dbMem);

  /* ATTACH the vacuumed copy beside the original: aux.t is its own store */
  tu_exec_fmt(db, "ATTACH '%q' AS aux", zVacuum);
  snprintf(zWhat, sizeof(zWhat), "%s round %d: VACUUM INTO copy attached as aux", zName, iRound);
  verify_store(db, "aux", s, zWhat);
  {
    Mirror *m2 = mirror_clone(s->m);
    int r = 1;
    while (!m2->aLive[r]) r++;
    delete_row(db, "aux.t", m2, r);
    expect_knn(db, "aux.t", m2, mvec(s->m, r), KK, "aux.t after a delete there");
    expect_knn(db, "main.t", s->m, mvec(s->m, r), KK, "main.t after a delete in aux.t");
    expect_knn(db, "t", s->m, mvec(s->m, r), KK, "unqualified t after a delete in aux.t");
    integrity_ok(db, "aux", "t");
    integrity_ok(db, "main", "t");
    /* undo, so the vacuumed file can be verified below */
    insert_vec(db, "aux.t", m2, r, mvec(s->m, r));
    mirror_free(m2);
  }
  tu_exec(db, "DETACH aux");
  close_db(db);

  db = tu_open(zVacuum);
  snprintf(zWhat, sizeof(zWhat), "%s round %d: VACUUM INTO copy", zName, iRound);
  expect_all(db, "t", s->m, s->aQ, NQ, zWhat);
  expect_documents(db, "t", s->m);
  integrity_ok(db, "main", "t");
  close_db(db);

  db = tu_open(zBackup);
  snprintf(zWhat, sizeof(zWhat), "%s round %d: backup API copy", zName, iRound);
  verify_store(db, "main", s, zWhat);
  close_db(db);

  /* the copy attached to a :memory: connection (the table only exists in aux) */
  db = tu_open(":memory:");
  tu_exec_fmt(db, "ATTACH '%q' AS aux", zCopy);
  snprintf(zWhat, sizeof(zWhat), "%s round %d: file copy attached to :memory:", zName, iRound);
  verify_store(db, "aux", s, zWhat);
  expect_knn(db, "t", s->m, s->aQ, KK, "unqualified t resolving to aux.t");
  close_db(db);

  tu_remove_db(zCopy);
  tu_remove_db(zVacuum);
  tu_remove_db(zBackup);
  sqlite3_free(zCopy);
  sqlite3_free(zVacuum);
  sqlite3_free(zBackup);
}

static void persistence(const char *zName, const char *zOptions, const char *zLowEf) {
  char *zPath = tu_path(zName);
  tu_remove_db(zPath);
  Store s;
  memset(&s, 0, sizeof(s));
  s.m = mirror_new(2000, DIM);
  s.zLowEf = zLowEf;
  make_queries(99, s.aQ, NQ, DIM);
  uint64_t seed = 1234;

  sqlite3 *db = tu_open(zPath);
  tu_exec_fmt(db, "CREATE VIRTUAL TABLE t USING vecstore(%s)", zOptions);
  tu_exec(db, "BEGIN");
  insert_rows(db, "t", s.m, 1, 1500, &seed);
  tu_exec(db, "COMMIT");
  /* a second transaction that goes to the log: inserts, deletes, new embeddings */
  tu_exec(db, "BEGIN");
  insert_rows(db, "t", s.m, 1501, 1600, &seed);
  for (int r = 10; r <= 500; r += 10) delete_row(db, "t", s.m, r);
  for (int r = 601; r <= 630; r++) {
    float a[DIM];
    rand_vec(&seed, a, DIM);
    update_vec(db, "t", s.m, r, a);
  }
  tu_exec(db, "COMMIT");
  assert_true(cfg_int(db, "t", "snapshot_gen") >= 1);
  assert_true(qint(db, "SELECT count(*) FROM t_log") > 0);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_vectors"), mirror_count(s.m));
  assert_int_equal(qint(db, "SELECT count(*) FROM t_docs"), mirror_count(s.m));
  expect_all(db, "t", s.m, s.aQ, NQ, "original connection");
  integrity_ok(db, "main", "t");
  /* an uncommitted transaction does not survive closing */
  tu_exec(db, "BEGIN");
  float aNear[DIM];
  for (int i = 0; i < DIM; i++) aNear[i] = s.aQ[i];
  tu_exec(db, "DELETE FROM t WHERE rowid = 1");
  Mirror *pTmp = mirror_clone(s.m);
  insert_vec(db, "t", pTmp, 1999, aNear);
  mirror_free(pTmp);
  close_db(db);

  verify_all_copies(zName, zPath, &s, 1);

  /* after 'optimize' the snapshot alone is the store: even approximate results are reproduced exactly */
  db = tu_open(zPath);
  i64 iGen = cfg_int(db, "t", "snapshot_gen");
  command(db, "t", "optimize");
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), iGen + 1);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 0);
  expect_all(db, "t", s.m, s.aQ, NQ, "after optimize");
  capture(db, "t", s.aQ, DIM, s.zLowEf, &s.low);
  s.bHaveLow = 1;
  close_db(db);
  verify_all_copies(zName, zPath, &s, 2);

  mirror_free(s.m);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

static void test_persist_flat(void **state) {
  (void)state;
  persistence("persist_flat.db", "dim=16", 0);
}

static void test_persist_hnsw(void **state) {
  (void)state;
  persistence("persist_hnsw.db", "dim=16, index='HNSW32', search_params='efSearch=256'",
              " AND search_params = 'efSearch=8'");
}

/* CREATE VIRTUAL TABLE aux.t2 in an attached database: the shadow tables go there, and the file alone holds
** the store; DROP TABLE aux.t2 removes them. */
static void test_attached_create(void **state) {
  (void)state;
  char *zMain = tu_path("attach_main.db");
  char *zAux = tu_path("attach_aux.db");
  tu_remove_db(zMain);
  tu_remove_db(zAux);
  Mirror *m = mirror_new(400, DIM);
  float aQ[NQ * DIM];
  make_queries(7, aQ, NQ, DIM);
  uint64_t seed = 77;

  sqlite3 *db = tu_open(zMain);
  tu_exec_fmt(db, "ATTACH '%q' AS aux", zAux);
  tu_exec(db, "CREATE VIRTUAL TABLE aux.t2 USING vecstore(dim=16, index='HNSW32', search_params='efSearch=256')");
  expect_shadow_tables(db, "aux", "t2", 1);
  expect_shadow_tables(db, "main", "t2", 0);
  assert_int_equal(qint(db, "SELECT count(*) FROM main.sqlite_master"), 0);
  tu_exec(db, "BEGIN");
  insert_rows(db, "aux.t2", m, 1, 300, &seed);
  tu_exec(db, "COMMIT");
  insert_rows(db, "aux.t2", m, 301, 320, &seed);
  delete_row(db, "aux.t2", m, 5);
  expect_all(db, "aux.t2", m, aQ, NQ, "aux.t2");
  expect_all(db, "t2", m, aQ, NQ, "t2 (resolved to aux)");
  integrity_ok(db, "aux", "t2");
  /* a table of the same name in main is a different store */
  tu_exec(db, "CREATE VIRTUAL TABLE main.t2 USING vecstore(dim=16)");
  assert_int_equal(qint(db, "SELECT count(*) FROM main.t2"), 0);
  expect_all(db, "aux.t2", m, aQ, NQ, "aux.t2 beside main.t2");
  tu_exec(db, "INSERT INTO main.t2(rowid, embedding) SELECT rowid, embedding FROM aux.t2 WHERE rowid <= 10");
  assert_int_equal(qint(db, "SELECT count(*) FROM main.t2"), 9);
  expect_all(db, "aux.t2", m, aQ, NQ, "aux.t2 after writes to main.t2");
  close_db(db);

  /* the attached file on its own */
  db = tu_open(zAux);
  expect_all(db, "t2", m, aQ, NQ, "attached file opened as main");
  expect_documents(db, "t2", m);
  integrity_ok(db, "main", "t2");
  close_db(db);

  /* DROP TABLE in the attached schema removes its shadow tables only */
  db = tu_open(zMain);
  tu_exec_fmt(db, "ATTACH '%q' AS aux", zAux);
  tu_exec(db, "DROP TABLE aux.t2");
  expect_shadow_tables(db, "aux", "t2", 0);
  expect_shadow_tables(db, "main", "t2", 1);
  assert_int_equal(qint(db, "SELECT count(*) FROM aux.sqlite_master"), 0);
  assert_int_equal(qint(db, "SELECT count(*) FROM main.t2"), 9);
  close_db(db);

  mirror_free(m);
  tu_remove_db(zMain);
  tu_remove_db(zAux);
  sqlite3_free(zMain);
  sqlite3_free(zAux);
}

/**************************************************************************************************
** DROP, RENAME, defensive mode.
*/

/* ALTER TABLE RENAME of a table with declared columns (it failed with "database table is locked": the old
** columns' indexes were dropped while SQLite ran the ALTER TABLE), then a new table under the old name, whose
** index names the renamed table still holds; filters on both, integrity-check, DROP of either. */
static void test_rename_declared_columns(void **state) {
  (void)state;
  sqlite3 *db = tu_open_fresh("rename_cols.db");
  tu_exec(db, "CREATE VIRTUAL TABLE a USING vecstore(dim = 2, page INTEGER, source TEXT)");
  tu_exec(db, "INSERT INTO a(rowid, embedding, page, source) VALUES (1, '[1, 0]', 1, 'x'), (2, '[0, 1]', 2, 'y'), "
              "(3, '[1, 1]', 1, 'y')");
  tu_exec(db, "ALTER TABLE a RENAME TO b");
  tu_expect_rows(db, "SELECT rowid FROM b WHERE embedding MATCH '[1, 0]' AND page = 1 AND k = 5", ",", "%g", "1,3");
  tu_expect_rows(db, "SELECT rowid FROM b WHERE source = 'y'", ",", "%g", "2,3");
  tu_exec(db, "INSERT INTO b(b) VALUES ('integrity-check')");
  tu_exec(db, "CREATE VIRTUAL TABLE a USING vecstore(dim = 2, page INTEGER, source TEXT)");
  tu_exec(db, "INSERT INTO a(rowid, embedding, page, source) VALUES (7, '[1, 0]', 1, 'z')");
  tu_expect_rows(db, "SELECT rowid FROM a WHERE embedding MATCH '[1, 0]' AND page = 1 AND k = 5", ",", "%g", "7");
  tu_expect_rows(db, "SELECT rowid FROM b WHERE embedding MATCH '[1, 0]' AND page = 1 AND k = 5", ",", "%g", "1,3");
  /* Each declared column of each table has an index on that table. */
  tu_expect_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'a_docs' AND sql LIKE "
                    "'%(\"page\")'", 1);
  tu_expect_int(db, "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'b_docs' AND sql "
                    "LIKE '%(\"source\")'", 1);
  tu_exec(db, "INSERT INTO a(a) VALUES ('integrity-check'); INSERT INTO b(b) VALUES ('integrity-check')");
  tu_exec(db, "ALTER TABLE b RENAME TO c");
  tu_expect_rows(db, "SELECT rowid FROM c WHERE source = 'y'", ",", "%g", "2,3");
  tu_exec(db, "DROP TABLE c");
  tu_expect_int(db, "SELECT count(*) FROM sqlite_schema WHERE tbl_name NOT LIKE 'a%'", 0);
  tu_expect_rows(db, "SELECT rowid FROM a WHERE source = 'z'", ",", "%g", "7");
  tu_close_remove(db, "rename_cols.db");
}

static void test_drop_and_rename(void **state) {
  (void)state;
  char *zPath = tu_path("rename.db");
  tu_remove_db(zPath);
  Mirror *m = mirror_new(400, DIM);
  float aQ[NQ * DIM];
  make_queries(5, aQ, NQ, DIM);
  uint64_t seed = 55;

  sqlite3 *db = tu_open(zPath);
  sqlite3 *dbB = tu_open(zPath);
  tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim=16)");
  tu_exec(db, "BEGIN");
  insert_rows(db, "t", m, 1, 200, &seed);
  tu_exec(db, "COMMIT");
  insert_rows(db, "t", m, 201, 210, &seed); /* in the log */
  expect_all(db, "t", m, aQ, NQ, "before rename");
  expect_all(dbB, "t", m, aQ, NQ, "before rename, second connection");

  tu_exec(db, "ALTER TABLE t RENAME TO u");
  expect_shadow_tables(db, "main", "u", 1);
  expect_shadow_tables(db, "main", "t", 0);
  assert_int_equal(qint(db, "SELECT count(*) FROM pragma_table_list WHERE type = 'shadow' AND name LIKE 'u\\_%%' "
                            "ESCAPE '\\'"),
                   5);
  tu_expect_error(db, "SELECT count(*) FROM t", "no such table", NULL);
  expect_all(db, "u", m, aQ, NQ, "after rename");
  insert_rows(db, "u", m, 211, 220, &seed);
  delete_row(db, "u", m, 3);
  expect_all(db, "u", m, aQ, NQ, "after rename and writes");
  integrity_ok(db, "main", "u");
  /* the other connection sees the new name */
  expect_all(dbB, "u", m, aQ, NQ, "second connection after rename");
  tu_expect_error(dbB, "SELECT count(*) FROM t", "no such table", NULL);
  command(db, "u", "optimize");
  assert_int_equal(qint(db, "SELECT count(*) FROM u_log"), 0);
  assert_true(qint(db, "SELECT count(*) FROM u_snapshot") >= 1);
  insert_rows(db, "u", m, 221, 225, &seed);
  close_db(dbB);
  close_db(db);

  db = tu_open(zPath);
  expect_all(db, "u", m, aQ, NQ, "renamed table reopened");
  expect_documents(db, "u", m);
  integrity_ok(db, "main", "u");
  /* the old name is free for a new table */
  tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim=4)");
  assert_int_equal(qint(db, "SELECT count(*) FROM t"), 0);
  tu_exec(db, "DROP TABLE t");
  expect_shadow_tables(db, "main", "t", 0);

  /* DROP rolled back leaves a working table; DROP committed removes every shadow table */
  tu_exec(db, "BEGIN");
  tu_exec(db, "DROP TABLE u");
  expect_shadow_tables(db, "main", "u", 0);
  tu_exec(db, "ROLLBACK");
  expect_shadow_tables(db, "main", "u", 1);
  expect_all(db, "u", m, aQ, NQ, "after a rolled back DROP");
  integrity_ok(db, "main", "u");
  tu_exec(db, "DROP TABLE u");
  expect_shadow_tables(db, "main", "u", 0);
  assert_int_equal(qint(db, "SELECT count(*) FROM sqlite_master"), 0);
  close_db(db);
  db = tu_open(zPath);
  assert_int_equal(qint(db, "SELECT count(*) FROM sqlite_master"), 0);
  /* the same name again is a fresh, empty table */
  tu_exec(db, "CREATE VIRTUAL TABLE u USING vecstore(dim=16)");
  assert_int_equal(qint(db, "SELECT count(*) FROM u"), 0);
  assert_int_equal(qint(db, "SELECT count(*) FROM u_vectors"), 0);
  assert_int_equal(cfg_int(db, "u", "snapshot_gen"), 0);
  close_db(db);

  mirror_free(m);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/* SQLITE_DBCONFIG_DEFENSIVE: the shadow tables are read-only to ordinary SQL, the table itself works. */
static void test_defensive(void **state) {
  (void)state;
  char *zPath = tu_path("defensive.db");
  tu_remove_db(zPath);
  Mirror *m = mirror_new(300, DIM);
  float aQ[NQ * DIM];
  make_queries(11, aQ, NQ, DIM);
  uint64_t seed = 111;

  sqlite3 *db = tu_open(zPath);
  int bOn = 0;
  assert_int_equal(sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &bOn), SQLITE_OK);
  assert_int_equal(bOn, 1);
  /* everything through the virtual table works in defensive mode */
  tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim=16)");
  tu_exec(db, "BEGIN");
  insert_rows(db, "t", m, 1, 100, &seed);
  tu_exec(db, "COMMIT");
  insert_rows(db, "t", m, 101, 110, &seed);
  delete_row(db, "t", m, 2);
  float a[DIM];
  rand_vec(&seed, a, DIM);
  update_vec(db, "t", m, 3, a);
  command(db, "t", "optimize");
  command(db, "t", "rebuild");
  expect_all(db, "t", m, aQ, NQ, "defensive mode");
  integrity_ok(db, "main", "t");

  static const char *azWrite[] = {
      "UPDATE t_vectors SET embedding = zeroblob(64) WHERE rowid = 1",
      "INSERT INTO t_vectors(rowid, embedding) VALUES (999, zeroblob(64))",
      "DELETE FROM t_vectors WHERE rowid = 1",
      "UPDATE t_docs SET content = 'x' WHERE rowid = 1",
      "INSERT INTO t_docs(rowid, id, content, metadata) VALUES (999, 'x', 'x', '{}')",
      "UPDATE t_config SET value = 99 WHERE key = 'dim'",
      "DELETE FROM t_snapshot",
      "UPDATE t_snapshot SET data = x'00'",
      "INSERT INTO t_log(rowid, op) VALUES (1, 1)",
      "DELETE FROM t_log",
  };
  for (size_t i = 0; i < sizeof(azWrite) / sizeof(azWrite[0]); i++) {
    tu_expect_error(db, azWrite[i], "may not be modified", NULL);
  }
  tu_expect_error(db, "UPDATE t_vectors SET embedding = zeroblob(64) WHERE rowid = 1", "t_vectors", NULL);
  tu_expect_error(db, "DROP TABLE t_vectors", "may not be dropped", NULL);
  /* also inside a transaction with the table's own writes */
  tu_exec(db, "BEGIN");
  insert_rows(db, "t", m, 111, 111, &seed);
  tu_expect_error(db, "DELETE FROM t_vectors WHERE rowid = 111", "may not be modified", NULL);
  tu_exec(db, "COMMIT");
  /* reading is allowed, and nothing changed */
  assert_int_equal(qint(db, "SELECT count(*) FROM t_vectors"), mirror_count(m));
  assert_int_equal(qint(db, "SELECT count(*) FROM t_docs WHERE content = 'x'"), 0);
  assert_int_equal(cfg_int(db, "t", "dim"), 16);
  expect_all(db, "t", m, aQ, NQ, "after refused shadow writes");
  expect_documents(db, "t", m);
  integrity_ok(db, "main", "t");
  /* DROP and RENAME of the virtual table work in defensive mode */
  tu_exec(db, "ALTER TABLE t RENAME TO u");
  expect_shadow_tables(db, "main", "u", 1);
  expect_all(db, "u", m, aQ, NQ, "renamed in defensive mode");
  tu_exec(db, "DROP TABLE u");
  expect_shadow_tables(db, "main", "u", 0);
  close_db(db);

  mirror_free(m);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/**************************************************************************************************
** Two connections on one file.
*/

static void two_connections(int bWal) {
  char *zPath = tu_path(bWal ? "two_wal.db" : "two_journal.db");
  tu_remove_db(zPath);
  Mirror *m = mirror_new(4000, DIM);
  float aQ[NQ * DIM];
  make_queries(21, aQ, NQ, DIM);
  uint64_t seed = 2121;
  const char *zMode = bWal ? "WAL" : "rollback journal";
  char zWhat[128];

  sqlite3 *A = tu_open(zPath);
  if (bWal) {
    char *z = tu_text(A, "PRAGMA journal_mode=WAL");
    assert_string_equal(z, "wal");
    sqlite3_free(z);
  }
  sqlite3 *B = tu_open(zPath);
  tu_exec(A, "CREATE VIRTUAL TABLE t USING vecstore(dim=16)");
  tu_exec(A, "BEGIN");
  insert_rows(A, "t", m, 1, 400, &seed);
  tu_exec(A, "COMMIT");
  snprintf(zWhat, sizeof(zWhat), "%s: B after A's first commit", zMode);
  expect_all(B, "t", m, aQ, NQ, zWhat);

  /* A inserts a row next to query 0: B's next search finds it first */
  float a[DIM];
  for (int i = 0; i < DIM; i++) a[i] = aQ[i] + 0.0001f;
  insert_vec(A, "t", m, 401, a);
  Hit h[KK];
  assert_int_equal(sql_knn(B, "t", aQ, DIM, 1, 0, h), 1);
  assert_int_equal(h[0].iRowid, 401);
  assert_int_equal(qint(B, "SELECT count(*) FROM t"), 401);
  /* A moves row 7 onto query 1 */
  update_vec(A, "t", m, 7, aQ + DIM);
  assert_int_equal(sql_knn(B, "t", aQ + DIM, DIM, 1, 0, h), 1);
  assert_int_equal(h[0].iRowid, 7);
  assert_true(h[0].rDist < 1e-9);
  /* A deletes 401 */
  delete_row(A, "t", m, 401);
  snprintf(zWhat, sizeof(zWhat), "%s: B after A's insert, update and delete", zMode);
  expect_all(B, "t", m, aQ, NQ, zWhat);
  /* B writes, A sees it */
  for (int i = 0; i < DIM; i++) a[i] = aQ[2 * DIM + i] - 0.0001f;
  insert_vec(B, "t", m, 402, a);
  delete_row(B, "t", m, 8);
  update_vec(B, "t", m, 9, aQ + 3 * DIM);
  snprintf(zWhat, sizeof(zWhat), "%s: A after B's writes", zMode);
  expect_all(A, "t", m, aQ, NQ, zWhat);
  assert_int_equal(sql_knn(A, "t", aQ + 2 * DIM, DIM, 1, 0, h), 1);
  assert_int_equal(h[0].iRowid, 402);
  /* a transaction of several statements on A, committed at once */
  tu_exec(A, "BEGIN");
  insert_rows(A, "t", m, 403, 420, &seed);
  delete_row(A, "t", m, 10);
  tu_exec(A, "COMMIT");
  snprintf(zWhat, sizeof(zWhat), "%s: B after A's multi-statement transaction", zMode);
  expect_all(B, "t", m, aQ, NQ, zWhat);

  if (bWal) {
    /* B's open read transaction keeps its snapshot while A commits */
    Mirror *pOld = mirror_clone(m);
    tu_exec(B, "BEGIN");
    assert_int_equal(qint(B, "SELECT count(*) FROM t"), mirror_count(m));
    for (int i = 0; i < DIM; i++) a[i] = aQ[4 * DIM + i] + 0.0001f;
    insert_vec(A, "t", m, 421, a);
    delete_row(A, "t", m, 11);
    update_vec(A, "t", m, 12, aQ + 5 * DIM);
    expect_all(B, "t", pOld, aQ, NQ, "WAL: B inside its read transaction after A's commits");
    assert_int_equal(qint(B, "SELECT count(*) FROM t WHERE rowid = 11"), 1);
    expect_all(A, "t", m, aQ, NQ, "WAL: A while B reads");
    tu_exec(B, "COMMIT");
    expect_all(B, "t", m, aQ, NQ, "WAL: B after ending its read transaction");
    assert_int_equal(sql_knn(B, "t", aQ + 4 * DIM, DIM, 1, 0, h), 1);
    assert_int_equal(h[0].iRowid, 421);

    /* the same while A writes a new snapshot */
    mirror_free(pOld);
    pOld = mirror_clone(m);
    tu_exec(B, "BEGIN");
    expect_knn(B, "t", m, aQ, KK, "WAL: B starting a read transaction");
    i64 iGen = cfg_int(A, "t", "snapshot_gen");
    tu_exec(A, "BEGIN");
    insert_rows(A, "t", m, 1001, 2500, &seed);
    tu_exec(A, "COMMIT");
    assert_true(cfg_int(A, "t", "snapshot_gen") > iGen);
    assert_int_equal(cfg_int(B, "t", "snapshot_gen"), iGen);
    expect_all(B, "t", pOld, aQ, NQ, "WAL: B inside its read transaction after A's new snapshot");
    tu_exec(B, "COMMIT");
    expect_all(B, "t", m, aQ, NQ, "WAL: B after A's new snapshot");
    mirror_free(pOld);
  }

  /* A writes 3000 rows in one transaction: a new snapshot, the log cleared; B reloads */
  i64 iGen = cfg_int(A, "t", "snapshot_gen");
  tu_exec(A, "BEGIN");
  if (!bWal) insert_rows(A, "t", m, 1001, 2500, &seed);
  insert_rows(A, "t", m, 2501, 3000, &seed);
  insert_rows(A, "t", m, 421 + bWal, 999, &seed);
  insert_rows(A, "t", m, 3001, 3999, &seed);
  tu_exec(A, "COMMIT");
  assert_true(cfg_int(A, "t", "snapshot_gen") > iGen);
  assert_int_equal(qint(A, "SELECT count(*) FROM t_log"), 0);
  snprintf(zWhat, sizeof(zWhat), "%s: B after A's bulk commit (new snapshot)", zMode);
  expect_all(B, "t", m, aQ, NQ, zWhat);
  /* then a few log entries on top of that snapshot */
  for (int r = 20; r < 25; r++) delete_row(A, "t", m, r);
  rand_vec(&seed, a, DIM);
  update_vec(A, "t", m, 30, a);
  snprintf(zWhat, sizeof(zWhat), "%s: B after log entries on top of the new snapshot", zMode);
  expect_all(B, "t", m, aQ, NQ, zWhat);
  /* A runs 'optimize' */
  iGen = cfg_int(A, "t", "snapshot_gen");
  command(A, "t", "optimize");
  assert_int_equal(cfg_int(B, "t", "snapshot_gen"), iGen + 1);
  snprintf(zWhat, sizeof(zWhat), "%s: B after A's optimize", zMode);
  expect_all(B, "t", m, aQ, NQ, zWhat);
  /* B rebuilds, A follows; then B writes on top, A follows */
  command(B, "t", "rebuild");
  snprintf(zWhat, sizeof(zWhat), "%s: A after B's rebuild", zMode);
  expect_all(A, "t", m, aQ, NQ, zWhat);
  delete_row(B, "t", m, 31);
  insert_rows(B, "t", m, 4000, 4000, &seed);
  snprintf(zWhat, sizeof(zWhat), "%s: A after B's writes on a rebuilt snapshot", zMode);
  expect_all(A, "t", m, aQ, NQ, zWhat);
  integrity_ok(A, "main", "t");
  integrity_ok(B, "main", "t");
  /* a rolled back transaction on A is never seen by B */
  tu_exec(A, "BEGIN");
  Mirror *pTmp = mirror_clone(m);
  insert_vec(A, "t", pTmp, 1000, aQ);
  tu_exec(A, "ROLLBACK");
  mirror_free(pTmp);
  expect_all(B, "t", m, aQ, NQ, "B after A's rollback");
  expect_all(A, "t", m, aQ, NQ, "A after its rollback");
  close_db(A);
  close_db(B);

  mirror_free(m);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

static void test_two_connections_wal(void **state) {
  (void)state;
  two_connections(1);
}

static void test_two_connections_journal(void **state) {
  (void)state;
  two_connections(0);
}

/**************************************************************************************************
** Commit cost, the log threshold and the chunked snapshot.
*/

#define BIGDIM 128

static void expect_snapshot_layout(sqlite3 *db, i64 nMinChunks) {
  i64 nChunk = qint(db, "SELECT count(*) FROM t_snapshot");
  assert_true(nChunk >= nMinChunks);
  assert_int_equal(qint(db, "SELECT min(chunk) FROM t_snapshot"), 0);
  assert_int_equal(qint(db, "SELECT max(chunk) FROM t_snapshot"), nChunk - 1);
  /* every chunk but the last is exactly 1 MiB */
  assert_int_equal(qint(db, "SELECT count(*) FROM t_snapshot WHERE length(data) = 1048576"), nChunk - 1);
  assert_true(qint(db, "SELECT length(data) FROM t_snapshot WHERE chunk = %lld", nChunk - 1) <= 1048576);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_snapshot WHERE typeof(data) <> 'blob'"), 0);
}

static void test_commit_cost_and_chunks(void **state) {
  (void)state;
  char *zPath = tu_path("commit_cost.db");
  tu_remove_db(zPath);
  Mirror *m = mirror_new(7000, BIGDIM);
  float aQ[3 * BIGDIM];
  uint64_t qseed = 31;
  for (int i = 0; i < 3; i++) rand_vec(&qseed, aQ + i * BIGDIM, BIGDIM);
  uint64_t seed = 3131;

  sqlite3 *db = tu_open(zPath);
  tu_exec(db, "PRAGMA synchronous=OFF");
  tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim=128)");
  tu_exec(db, "BEGIN");
  insert_rows(db, "t", m, 1, 5000, &seed);
  tu_exec(db, "COMMIT");
  command(db, "t", "optimize");
  i64 iGen = cfg_int(db, "t", "snapshot_gen");
  assert_true(iGen >= 1);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 0);
  /* 5000 x 128 floats = 2.56 MB: at least 3 chunks of 1 MiB */
  assert_true(qint(db, "SELECT sum(length(data)) FROM t_snapshot") >= 5000 * BIGDIM * 4);
  expect_snapshot_layout(db, 3);
  i64 nChunk = qint(db, "SELECT count(*) FROM t_snapshot");
  char *zDigest = tu_text(db, "SELECT group_concat(chunk || ':' || length(data) || ':' || hex(substr(data, 1, 64)) "
                              "|| hex(substr(data, -64)), ',') FROM t_snapshot");
  for (int i = 0; i < 3; i++) expect_knn(db, "t", m, aQ + i * BIGDIM, KK, "5000 rows after optimize");

  /* one-row commits append one log entry each and leave the snapshot alone */
  insert_rows(db, "t", m, 5001, 5001, &seed);
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), iGen);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 1);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_snapshot"), nChunk);
  char *zDigest2 = tu_text(db, "SELECT group_concat(chunk || ':' || length(data) || ':' || hex(substr(data, 1, 64)) "
                               "|| hex(substr(data, -64)), ',') FROM t_snapshot");
  assert_string_equal(zDigest, zDigest2);
  sqlite3_free(zDigest2);
  delete_row(db, "t", m, 17);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 2);
  float a[BIGDIM];
  memcpy(a, aQ, sizeof(a));
  update_vec(db, "t", m, 18, a);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 3);
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), iGen);
  for (int i = 0; i < 3; i++) expect_knn(db, "t", m, aQ + i * BIGDIM, KK, "after one-row commits");
  Hit h[KK];
  assert_int_equal(sql_knn(db, "t", aQ, BIGDIM, 1, 0, h), 1);
  assert_int_equal(h[0].iRowid, 18);

  /* 996 more rows in one transaction: the log holds 999 entries, below max(1000, 5000/32) */
  tu_exec(db, "BEGIN");
  insert_rows(db, "t", m, 5002, 5997, &seed);
  tu_exec(db, "COMMIT");
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 999);
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), iGen);
  insert_rows(db, "t", m, 5998, 5998, &seed);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 1000);
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), iGen);
  char *zDigest3 = tu_text(db, "SELECT group_concat(chunk || ':' || length(data) || ':' || hex(substr(data, 1, 64)) "
                               "|| hex(substr(data, -64)), ',') FROM t_snapshot");
  assert_string_equal(zDigest, zDigest3);
  sqlite3_free(zDigest3);
  /* the commit that takes the log past 1000 writes a new snapshot instead and empties the log */
  insert_rows(db, "t", m, 5999, 5999, &seed);
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), iGen + 1);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 0);
  expect_snapshot_layout(db, 3);
  for (int i = 0; i < 3; i++) expect_knn(db, "t", m, aQ + i * BIGDIM, KK, "after the log threshold");
  /* and the next one-row commit is back to the log */
  insert_rows(db, "t", m, 6000, 6000, &seed);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 1);
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), iGen + 1);
  close_db(db);

  /* the multi-chunk snapshot plus the log reload exactly */
  db = tu_open(zPath);
  for (int i = 0; i < 3; i++) expect_knn(db, "t", m, aQ + i * BIGDIM, KK, "multi-chunk snapshot reopened");
  assert_int_equal(sql_knn(db, "t", aQ, BIGDIM, 1, 0, h), 1);
  assert_int_equal(h[0].iRowid, 18);
  assert_true(h[0].rDist < 1e-6);
  for (int r = 1; r <= 6000; r += 997) {
    if (!m->aLive[r]) continue;
    assert_int_equal(sql_knn(db, "t", mvec(m, r), BIGDIM, 1, 0, h), 1);
    assert_int_equal(h[0].iRowid, r);
  }
  assert_int_equal(qint(db, "SELECT count(*) FROM t"), mirror_count(m));
  integrity_ok(db, "main", "t");
  close_db(db);

  sqlite3_free(zDigest);
  mirror_free(m);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/* The threshold grows with the table: max(1000, live/32). */
static void test_log_threshold_scales(void **state) {
  (void)state;
  char *zPath = tu_path("threshold.db");
  tu_remove_db(zPath);
  sqlite3 *db = tu_open(zPath);
  tu_exec(db, "PRAGMA synchronous=OFF");
  tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim=4)");
  /* 64000 rows: live/32 = 2000 */
  tu_exec(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 64000) "
              "INSERT INTO t(rowid, id, embedding) SELECT x, 'r' || x, "
              "vecstore_vector(json_array(x % 97, x % 89, x % 83, x / 1000.0)) FROM c");
  i64 iGen = cfg_int(db, "t", "snapshot_gen");
  assert_true(iGen >= 1);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 0);
  /* 1500 changes: more than 1000 but not more than 2000, so they are logged */
  tu_exec(db, "WITH RECURSIVE c(x) AS (SELECT 64001 UNION ALL SELECT x + 1 FROM c WHERE x < 65500) "
              "INSERT INTO t(rowid, id, embedding) SELECT x, 'r' || x, "
              "vecstore_vector(json_array(x % 97, x % 89, x % 83, x / 1000.0)) FROM c");
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 1500);
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), iGen);
  /* 600 more: past 65500/32 = 2046, a new snapshot */
  tu_exec(db, "DELETE FROM t WHERE rowid <= 600");
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), iGen + 1);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 0);
  assert_int_equal(qint(db, "SELECT count(*) FROM t"), 64900);
  assert_int_equal(qint(db, "SELECT rowid FROM t WHERE embedding MATCH vecstore_vector(json_array(601 %% 97, "
                            "601 %% 89, 601 %% 83, 0.601)) AND k = 1"),
                   601);
  close_db(db);
  db = tu_open(zPath);
  assert_int_equal(qint(db, "SELECT rowid FROM t WHERE embedding MATCH vecstore_vector(json_array(65432 %% 97, "
                            "65432 %% 89, 65432 %% 83, 65.432)) AND k = 1"),
                   65432);
  assert_int_equal(qint(db, "SELECT count(*) FROM t WHERE embedding MATCH vecstore_vector(json_array(5 %% 97, "
                            "5 %% 89, 5 %% 83, 0.005)) AND k = 50 AND rowid <= 600"),
                   0);
  integrity_ok(db, "main", "t");
  close_db(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/* A snapshot replaces the log after 'train', after a compaction (tombstones past max(1000, labels/4)) and
** after 'rebuild'; before any snapshot, the log alone rebuilds the index. */
static void test_snapshot_after_train_and_compaction(void **state) {
  (void)state;
  char *zPath = tu_path("train.db");
  tu_remove_db(zPath);
  Mirror *m = mirror_new(2000, DIM);
  float aQ[NQ * DIM];
  make_queries(51, aQ, NQ, DIM);
  uint64_t seed = 5151;
  sqlite3 *db = tu_open(zPath);
  tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim=16, index='IVF4,Flat', search_params='nprobe=4')");
  tu_exec(db, "BEGIN");
  insert_rows(db, "t", m, 1, 300, &seed);
  tu_exec(db, "COMMIT");
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), 0);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 300);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_snapshot"), 0);
  close_db(db);
  db = tu_open(zPath);
  expect_all(db, "t", m, aQ, NQ, "log only, no snapshot yet, reopened");
  integrity_ok(db, "main", "t");

  command(db, "t", "train");
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), 1);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 0);
  assert_true(qint(db, "SELECT count(*) FROM t_snapshot") >= 1);
  expect_all(db, "t", m, aQ, NQ, "after train");
  close_db(db);
  db = tu_open(zPath);
  expect_all(db, "t", m, aQ, NQ, "trained, reopened");
  integrity_ok(db, "main", "t");

  tu_exec(db, "BEGIN");
  insert_rows(db, "t", m, 301, 1800, &seed);
  tu_exec(db, "COMMIT");
  i64 iGen = cfg_int(db, "t", "snapshot_gen");
  i64 nBytesFull = qint(db, "SELECT sum(length(data)) FROM t_snapshot");
  /* 1100 deletes: past max(1000, 1800/4) tombstones, compacted into a smaller snapshot */
  tu_exec(db, "BEGIN");
  for (int r = 1; r <= 1100; r++) delete_row(db, "t", m, r);
  tu_exec(db, "COMMIT");
  assert_true(cfg_int(db, "t", "snapshot_gen") > iGen);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 0);
  i64 nBytesCompact = qint(db, "SELECT sum(length(data)) FROM t_snapshot");
  if (!(nBytesCompact < nBytesFull / 2)) {
    fail_msg("snapshot after compaction has %lld bytes, before %lld (700 of 1800 rows live)", nBytesCompact,
             nBytesFull);
  }
  expect_all(db, "t", m, aQ, NQ, "after compaction");
  close_db(db);
  db = tu_open(zPath);
  expect_all(db, "t", m, aQ, NQ, "compacted, reopened");
  integrity_ok(db, "main", "t");
  /* 'rebuild' */
  insert_rows(db, "t", m, 1, 5, &seed);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 5);
  iGen = cfg_int(db, "t", "snapshot_gen");
  command(db, "t", "rebuild");
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), iGen + 1);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 0);
  expect_all(db, "t", m, aQ, NQ, "after rebuild");
  close_db(db);
  db = tu_open(zPath);
  expect_all(db, "t", m, aQ, NQ, "rebuilt, reopened");
  integrity_ok(db, "main", "t");
  close_db(db);
  mirror_free(m);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/**************************************************************************************************
** HNSW deletes and updates.
*/

static void test_hnsw_deletes_updates(void **state) {
  (void)state;
  char *zPath = tu_path("hnsw_del.db");
  tu_remove_db(zPath);
  Mirror *m = mirror_new(2000, DIM);
  float aQ[NQ * DIM];
  make_queries(41, aQ, NQ, DIM);
  uint64_t seed = 4141;
  Hit h[KK];

  sqlite3 *db = tu_open(zPath);
  tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim=16, index='HNSW32', search_params='efSearch=256')");
  tu_exec(db, "BEGIN");
  insert_rows(db, "t", m, 1, 2000, &seed);
  tu_exec(db, "COMMIT");
  expect_all(db, "t", m, aQ, NQ, "HNSW 2000 rows");
  integrity_ok(db, "main", "t");
  Mirror *pAll = mirror_clone(m);

  /* delete half the rows, in two transactions (log entries over an HNSW snapshot) */
  tu_exec(db, "BEGIN");
  for (int r = 2; r <= 1000; r += 2) delete_row(db, "t", m, r);
  tu_exec(db, "COMMIT");
  expect_all(db, "t", m, aQ, NQ, "HNSW after deleting 500");
  integrity_ok(db, "main", "t");
  close_db(db);
  db = tu_open(zPath);
  expect_all(db, "t", m, aQ, NQ, "HNSW after deleting 500, reopened");
  tu_exec(db, "BEGIN");
  for (int r = 1002; r <= 2000; r += 2) delete_row(db, "t", m, r);
  tu_exec(db, "COMMIT");
  expect_all(db, "t", m, aQ, NQ, "HNSW after deleting 1000");
  /* a deleted row's own vector never finds it */
  for (int r = 2; r <= 2000; r += 98) {
    int n = sql_knn(db, "t", mvec(pAll, r), DIM, KK, 0, h);
    assert_int_equal(n, KK);
    for (int i = 0; i < n; i++) {
      if (h[i].iRowid % 2 == 0) fail_msg("deleted rowid %lld returned for the vector of %d", h[i].iRowid, r);
    }
  }
  integrity_ok(db, "main", "t");

  /* new embeddings for 100 odd rows: found at the new place, not at the old */
  tu_exec(db, "BEGIN");
  for (int r = 1; r <= 199; r += 2) {
    float a[DIM];
    rand_vec(&seed, a, DIM);
    update_vec(db, "t", m, r, a);
  }
  tu_exec(db, "COMMIT");
  for (int r = 1; r <= 199; r += 22) {
    assert_int_equal(sql_knn(db, "t", mvec(m, r), DIM, 1, 0, h), 1);
    assert_int_equal(h[0].iRowid, r);
    assert_true(h[0].rDist < 1e-9);
    char zWhat[64];
    snprintf(zWhat, sizeof(zWhat), "old vector of updated rowid %d", r);
    expect_knn(db, "t", m, mvec(pAll, r), KK, zWhat);
  }
  expect_all(db, "t", m, aQ, NQ, "HNSW after updates");
  integrity_ok(db, "main", "t");
  close_db(db);
  db = tu_open(zPath);
  expect_all(db, "t", m, aQ, NQ, "HNSW after updates, reopened");
  integrity_ok(db, "main", "t");

  /* 'optimize' compacts: same results, a new snapshot, an empty log */
  i64 iGen = cfg_int(db, "t", "snapshot_gen");
  command(db, "t", "optimize");
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), iGen + 1);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 0);
  expect_all(db, "t", m, aQ, NQ, "HNSW after optimize");
  integrity_ok(db, "main", "t");
  Results low;
  capture(db, "t", aQ, DIM, " AND search_params = 'efSearch=8'", &low);
  close_db(db);
  db = tu_open(zPath);
  expect_same(db, "t", aQ, DIM, " AND search_params = 'efSearch=8'", &low, "HNSW optimized, reopened");
  expect_all(db, "t", m, aQ, NQ, "HNSW optimized, reopened");

  /* 'rebuild' gives the same results */
  command(db, "t", "rebuild");
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), iGen + 2);
  expect_all(db, "t", m, aQ, NQ, "HNSW after rebuild");
  integrity_ok(db, "main", "t");
  capture(db, "t", aQ, DIM, " AND search_params = 'efSearch=8'", &low);
  /* more changes after the rebuild, then reopen */
  for (int r = 201; r <= 260; r += 2) delete_row(db, "t", m, r);
  for (int r = 2; r <= 40; r += 2) insert_rows(db, "t", m, r, r, &seed); /* rowids of deleted rows, reused */
  close_db(db);
  db = tu_open(zPath);
  expect_all(db, "t", m, aQ, NQ, "HNSW after rebuild and more changes, reopened");
  integrity_ok(db, "main", "t");
  close_db(db);

  mirror_free(pAll);
  mirror_free(m);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/**************************************************************************************************
** Damaged shadow tables.
*/

/* The search either gives the exact result or fails with a vecstore error; never anything else. */
static void expect_correct_or_error(sqlite3 *db, const Mirror *m, const float *aQ, const char *zWhat) {
  for (int i = 0; i < NQ; i++) {
    Hit aGot[KK], aWant[KK];
    char *zErr = 0;
    int n = sql_knn_try(db, "t", aQ + (size_t)i * m->nDim, m->nDim, KK, 0, aGot, &zErr);
    if (n < 0) {
      if (strncmp(zErr, "vecstore: ", 10) != 0) fail_msg("%s: error without the vecstore prefix: %s", zWhat, zErr);
      sqlite3_free(zErr);
      continue;
    }
    int nWant = exact_knn(m, aQ + (size_t)i * m->nDim, KK, aWant);
    expect_hits(zWhat, aGot, n, aWant, nWant);
  }
}

/* Replaces chunk iChunk's data with a copy whose byte iByte is flipped (defensive mode off). */
static void flip_byte(sqlite3 *db, int iChunk, int iByte) {
  sqlite3_stmt *pStmt = tu_prepare(db, "SELECT data FROM t_snapshot WHERE chunk = ?1");
  sqlite3_bind_int(pStmt, 1, iChunk);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
  int n = sqlite3_column_bytes(pStmt, 0);
  assert_true(iByte < n);
  unsigned char *a = malloc((size_t)n);
  memcpy(a, sqlite3_column_blob(pStmt, 0), (size_t)n);
  sqlite3_finalize(pStmt);
  a[iByte] ^= 0x5a;
  pStmt = tu_prepare(db, "UPDATE t_snapshot SET data = ?2 WHERE chunk = ?1");
  sqlite3_bind_int(pStmt, 1, iChunk);
  sqlite3_bind_blob(pStmt, 2, a, n, SQLITE_TRANSIENT);
  step_done(db, pStmt);
  sqlite3_finalize(pStmt);
  assert_int_equal(sqlite3_changes(db), 1);
  free(a);
}

/* Builds the corruption test table: 300 rows in the snapshot, 12 changes in the log. */
static sqlite3 *corrupt_setup(const char *zPath, Mirror *m, uint64_t *pSeed) {
  tu_remove_db(zPath);
  sqlite3 *db = tu_open(zPath);
  tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim=16)");
  tu_exec(db, "BEGIN");
  insert_rows(db, "t", m, 1, 300, pSeed);
  tu_exec(db, "COMMIT");
  command(db, "t", "optimize");
  insert_rows(db, "t", m, 301, 310, pSeed);
  delete_row(db, "t", m, 4);
  float a[DIM];
  rand_vec(pSeed, a, DIM);
  update_vec(db, "t", m, 5, a);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 12);
  return db;
}

/* After the damage zDamage (SQL with defensive mode off, on a freshly opened connection): searches are exact
** or fail cleanly, integrity-check reports the damaged snapshot, 'rebuild' repairs it. */
static void check_damage(const char *zPath, Mirror *m, const float *aQ, const char *zDamage, int iFlip) {
  sqlite3 *db = tu_open(zPath);
  assert_int_equal(sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 0, (int *)0), SQLITE_OK);
  if (zDamage) tu_exec(db, zDamage);
  else flip_byte(db, 0, iFlip);
  char zWhat[300];
  snprintf(zWhat, sizeof(zWhat), "damage '%s' (flip %d), same connection", zDamage ? zDamage : "byte flip", iFlip);
  expect_correct_or_error(db, m, aQ, zWhat);
  char *zErr = tu_exec_error(db, "INSERT INTO t(t) VALUES ('integrity-check')");
  if (strncmp(zErr, "vecstore: ", 10) != 0 || strstr(zErr, "snapshot") == 0 || strstr(zErr, "damaged") == 0) {
    fail_msg("%s: integrity-check error does not name the damaged snapshot: %s", zWhat, zErr);
  }
  sqlite3_free(zErr);
  close_db(db);

  /* a fresh connection loads the damaged snapshot */
  db = tu_open(zPath);
  snprintf(zWhat, sizeof(zWhat), "damage '%s' (flip %d), reopened", zDamage ? zDamage : "byte flip", iFlip);
  expect_correct_or_error(db, m, aQ, zWhat);
  expect_correct_or_error(db, m, aQ, zWhat); /* twice: the first attempt leaves no broken state behind */
  tu_expect_error(db, "INSERT INTO t(t) VALUES ('integrity-check')", "vecstore: ", "snapshot", "damaged", NULL);
  /* a write on top of the damage: either refused cleanly or correct */
  char *zWriteErr = 0;
  float a[DIM];
  for (int i = 0; i < DIM; i++) a[i] = aQ[i] + 0.0002f;
  sqlite3_stmt *pStmt = tu_prepare(db, "INSERT INTO t(rowid, id, embedding) VALUES (2000, 'new', ?1)");
  sqlite3_bind_blob(pStmt, 1, a, DIM * 4, SQLITE_STATIC);
  int rc = sqlite3_step(pStmt);
  if (rc != SQLITE_DONE) zWriteErr = sqlite3_mprintf("%s", sqlite3_errmsg(db));
  sqlite3_finalize(pStmt);
  if (zWriteErr) {
    if (strncmp(zWriteErr, "vecstore: ", 10) != 0) fail_msg("%s: write failed without a vecstore error: %s", zWhat,
                                                             zWriteErr);
    sqlite3_free(zWriteErr);
  } else {
    memcpy(mvec(m, 2000), a, sizeof(a));
    m->aLive[2000] = 1;
    expect_correct_or_error(db, m, aQ, "after a write on top of the damage");
  }
  /* 'rebuild' repairs it */
  i64 iGen = cfg_int(db, "t", "snapshot_gen");
  command(db, "t", "rebuild");
  assert_true(cfg_int(db, "t", "snapshot_gen") > iGen);
  integrity_ok(db, "main", "t");
  expect_all(db, "t", m, aQ, NQ, "after rebuild of the damaged snapshot");
  close_db(db);
  db = tu_open(zPath);
  expect_all(db, "t", m, aQ, NQ, "after rebuild, reopened");
  integrity_ok(db, "main", "t");
  /* back to the starting state: row 2000 gone, a few log entries on top of the snapshot */
  if (m->aLive[2000]) delete_row(db, "t", m, 2000);
  uint64_t seed = (uint64_t)iFlip * 31 + 7;
  rand_vec(&seed, a, DIM);
  update_vec(db, "t", m, 6, a);
  insert_rows(db, "t", m, 1500, 1500, &seed);
  delete_row(db, "t", m, 1500);
  assert_true(qint(db, "SELECT count(*) FROM t_log") >= 2);
  close_db(db);
}

static void test_corrupt_snapshot(void **state) {
  (void)state;
  char *zPath = tu_path("corrupt.db");
  Mirror *m = mirror_new(2000, DIM);
  float aQ[NQ * DIM];
  make_queries(61, aQ, NQ, DIM);
  uint64_t seed = 6161;
  sqlite3 *db = corrupt_setup(zPath, m, &seed);
  expect_all(db, "t", m, aQ, NQ, "before damage");
  i64 nBytes = qint(db, "SELECT length(data) FROM t_snapshot WHERE chunk = 0");
  assert_true(nBytes > 300 * DIM * 4);
  close_db(db);

  /* a flipped byte: in the header, in the rowid map, in the Faiss data, the last byte */
  check_damage(zPath, m, aQ, 0, 3);
  check_damage(zPath, m, aQ, 0, 60);
  check_damage(zPath, m, aQ, 0, (int)nBytes / 2);
  check_damage(zPath, m, aQ, 0, (int)nBytes - 1);
  /* other damage to the snapshot rows and their bookkeeping */
  check_damage(zPath, m, aQ, "UPDATE t_snapshot SET data = substr(data, 1, length(data) - 100)", 0);
  check_damage(zPath, m, aQ, "DELETE FROM t_snapshot", 0);
  check_damage(zPath, m, aQ, "INSERT INTO t_snapshot(chunk, data) VALUES (1, x'00112233')", 0);
  check_damage(zPath, m, aQ, "UPDATE t_snapshot SET chunk = 5", 0);
  check_damage(zPath, m, aQ, "UPDATE t_snapshot SET data = 'not a blob'", 0);
  check_damage(zPath, m, aQ, "UPDATE t_snapshot SET data = zeroblob(length(data))", 0);
  check_damage(zPath, m, aQ, "UPDATE t_config SET value = value + 1 WHERE key = 'snapshot_checksum'", 0);
  check_damage(zPath, m, aQ, "UPDATE t_config SET value = 1000000000000 WHERE key = 'snapshot_chunks'", 0);
  check_damage(zPath, m, aQ, "UPDATE t_config SET value = -5 WHERE key = 'snapshot_bytes'", 0);

  mirror_free(m);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/* Damaged document and vector rows, and a log entry edited by hand: errors or correct results, never a crash;
** integrity-check names the problem. */
static void test_corrupt_rows(void **state) {
  (void)state;
  char *zPath = tu_path("corrupt_rows.db");
  Mirror *m = mirror_new(2000, DIM);
  float aQ[NQ * DIM];
  make_queries(71, aQ, NQ, DIM);
  uint64_t seed = 7171;
  sqlite3 *db = corrupt_setup(zPath, m, &seed);
  close_db(db);

  /* a vector of the wrong length */
  db = tu_open(zPath);
  tu_exec(db, "UPDATE t_vectors SET embedding = x'0102' WHERE rowid = 7");
  expect_correct_or_error(db, m, aQ, "short vector, same connection");
  tu_expect_error(db, "INSERT INTO t(t) VALUES ('integrity-check')", "vecstore: ", "rowid 7", "t_vectors", NULL);
  tu_expect_error(db, "INSERT INTO t(t) VALUES ('rebuild')", "vecstore: ", "rowid 7", NULL);
  {
    char *zErr = 0;
    Hit h[4];
    int n = sql_knn_try(db, "t", aQ, DIM, 3, " AND rowid IN (6, 7, 8)", h, &zErr);
    if (n < 0) {
      assert_true(strncmp(zErr, "vecstore: ", 10) == 0);
      sqlite3_free(zErr);
    }
  }
  /* repaired through the table */
  update_vec(db, "t", m, 7, mvec(m, 7));
  integrity_ok(db, "main", "t");
  expect_all(db, "t", m, aQ, NQ, "vector repaired");
  close_db(db);

  /* a document row deleted by hand: its vector has no document */
  db = tu_open(zPath);
  tu_exec(db, "DELETE FROM t_docs WHERE rowid = 9");
  {
    for (int i = 0; i < 2; i++) {
      char *zErr = 0;
      Hit h[KK];
      int n = sql_knn_try(db, "t", mvec(m, 9), DIM, KK, 0, h, &zErr);
      if (n < 0) {
        if (strncmp(zErr, "vecstore: ", 10) != 0) fail_msg("orphan vector: error without prefix: %s", zErr);
        sqlite3_free(zErr);
      }
    }
    sqlite3_stmt *pStmt = tu_prepare(db, "SELECT id, content FROM t WHERE embedding MATCH ?1 AND k = 5");
    sqlite3_bind_blob(pStmt, 1, mvec(m, 9), DIM * 4, SQLITE_STATIC);
    while (sqlite3_step(pStmt) == SQLITE_ROW) {
    }
    sqlite3_finalize(pStmt);
  }
  tu_expect_error(db, "INSERT INTO t(t) VALUES ('integrity-check')", "vecstore: ", "without a document", NULL);
  close_db(db);
  db = tu_open(zPath);
  tu_expect_error(db, "INSERT INTO t(t) VALUES ('integrity-check')", "vecstore: ", "without a document", NULL);
  /* the row is not in the table (no document), so the repair is by hand, then 'rebuild' */
  tu_exec(db, "DELETE FROM t_vectors WHERE rowid = 9");
  m->aLive[9] = 0;
  command(db, "t", "rebuild");
  integrity_ok(db, "main", "t");
  expect_all(db, "t", m, aQ, NQ, "orphan vector deleted");
  close_db(db);

  /* a vector row deleted by hand: the index still has it */
  db = tu_open(zPath);
  tu_exec(db, "DELETE FROM t_vectors WHERE rowid = 11");
  close_db(db);
  db = tu_open(zPath);
  {
    char *zErr = 0;
    Hit h[KK];
    int n = sql_knn_try(db, "t", mvec(m, 11), DIM, KK, 0, h, &zErr);
    if (n < 0) {
      if (strncmp(zErr, "vecstore: ", 10) != 0) fail_msg("missing vector: error without prefix: %s", zErr);
      sqlite3_free(zErr);
    }
  }
  tu_expect_error(db, "INSERT INTO t(t) VALUES ('integrity-check')", "vecstore: ", "without a vector", NULL);
  tu_exec(db, "DELETE FROM t WHERE rowid = 11");
  m->aLive[11] = 0;
  command(db, "t", "rebuild");
  integrity_ok(db, "main", "t");
  expect_all(db, "t", m, aQ, NQ, "missing vector repaired");
  close_db(db);

  /* log entries added by hand that agree with the stored vectors: a set entry for a rowid that does not exist,
  ** a repeated set entry; harmless */
  db = tu_open(zPath);
  tu_exec(db, "INSERT INTO t_log(rowid, op) VALUES (123456, 0), (1, 0)");
  close_db(db);
  db = tu_open(zPath);
  expect_all(db, "t", m, aQ, NQ, "harmless log entries added by hand");
  /* answers stay right, but entries added by hand are damage that integrity-check reports and rebuild repairs */
  tu_expect_error(db, "INSERT INTO t(t) VALUES ('integrity-check')", "vecstore: ", "t_log", NULL);
  tu_exec(db, "INSERT INTO t(t) VALUES ('rebuild')");
  integrity_ok(db, "main", "t");
  close_db(db);
  /* log entries that contradict the stored vectors (a delete of a live row, an unknown op): integrity-check
  ** reports the disagreement, 'rebuild' repairs it */
  db = tu_open(zPath);
  tu_exec(db, "INSERT INTO t_log(rowid, op) VALUES (2, 1), (3, 7)");
  close_db(db);
  db = tu_open(zPath);
  expect_correct_or_error(db, m, aQ, "log edited by hand");
  tu_expect_error(db, "INSERT INTO t(t) VALUES ('integrity-check')", "vecstore: ", "integrity-check failed", NULL);
  command(db, "t", "rebuild");
  integrity_ok(db, "main", "t");
  expect_all(db, "t", m, aQ, NQ, "after rebuild of an edited log");
  close_db(db);

  mirror_free(m);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}


/* Writes a (n bytes) as the one-chunk snapshot with matching size, chunk count and checksum. */
static void write_consistent_snapshot(sqlite3 *db, const unsigned char *a, int n) {
  tu_exec(db, "DELETE FROM t_snapshot");
  sqlite3_stmt *pStmt = tu_prepare(db, "INSERT INTO t_snapshot(chunk, data) VALUES (0, ?1)");
  sqlite3_bind_blob(pStmt, 1, a, n, SQLITE_STATIC);
  step_done(db, pStmt);
  sqlite3_finalize(pStmt);
  tu_exec_fmt(db, "UPDATE t_config SET value = %d WHERE key = 'snapshot_bytes'", n);
  tu_exec_fmt(db, "UPDATE t_config SET value = 1 WHERE key = 'snapshot_chunks'");
  tu_exec_fmt(db, "UPDATE t_config SET value = %lld WHERE key = 'snapshot_checksum'",
        (long long)tu_chunk_checksum(0, a, (size_t)n));
}

/* Where the section of a version 2 snapshot that holds the flat codes starts (index.c's header, the label map and
** the description come before it), and the codes' byte count; asserts the layout of a Flat table's snapshot:
** flags 2 (codes only), then a uint64 count and the codes, then Faiss's part. */
static size_t codes_section(const unsigned char *a, size_t n, size_t *pnCodes) {
  uint32_t version, flags;
  int32_t nDesc;
  int64_t nLabel;
  uint64_t nCodes;
  memcpy(&version, a + 4, 4);
  memcpy(&nDesc, a + 20, 4);
  memcpy(&nLabel, a + 24, 8);
  size_t i = 40 + (size_t)nLabel * 8 + (size_t)nDesc;
  assert_int_equal(version, 2);
  assert_true(i + 12 <= n);
  memcpy(&flags, a + i, 4);
  memcpy(&nCodes, a + i + 4, 8);
  assert_int_equal(flags, 2);
  assert_true(i + 12 + nCodes <= n);
  *pnCodes = (size_t)nCodes;
  return i;
}

/* A hand-edited snapshot whose checksum, size and chunk count were recomputed, so that the bytes reach the
** Faiss reader: for each case in aCase, searches are exact or fail cleanly (never a crash), integrity-check
** reports the unusable snapshot (naming what is wrong, for the edits of the codes section), and 'rebuild'
** repairs the table. */
static void hand_edited(const int *aCase, int nCase) {
  char *zPath = tu_path("edited.db");
  Mirror *m = mirror_new(2000, DIM);
  float aQ[NQ * DIM];
  make_queries(81, aQ, NQ, DIM);
  uint64_t seed = 8181;
  sqlite3 *db = corrupt_setup(zPath, m, &seed);
  /* the bookkeeping matches what the test computes, so the edits below are consistent */
  i64 nByte = qint(db, "SELECT length(data) FROM t_snapshot WHERE chunk = 0");
  assert_int_equal(qint(db, "SELECT count(*) FROM t_snapshot"), 1);
  unsigned char *aOrig = malloc((size_t)nByte);
  {
    sqlite3_stmt *pStmt = tu_prepare(db, "SELECT data FROM t_snapshot WHERE chunk = 0");
    assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
    memcpy(aOrig, sqlite3_column_blob(pStmt, 0), (size_t)nByte);
    sqlite3_finalize(pStmt);
  }
  assert_int_equal(cfg_int(db, "t", "snapshot_checksum"), (i64)tu_chunk_checksum(0, aOrig, (size_t)nByte));
  close_db(db);

  /* every case runs; the failures are reported together at the end */
  char zFail[8192] = "";
  int nFail = 0;
  size_t nCodes = 0;
  const size_t iSect = codes_section(aOrig, (size_t)nByte, &nCodes);
  const size_t iCodes = iSect + 12, iFaiss = iCodes + nCodes; /* the codes; Faiss's part (IndexFlat, ntotal 0) */
  assert_int_equal(nCodes, 300 * DIM * 4);
  assert_true(memcmp(aOrig + iFaiss, "IxF2", 4) == 0);
  unsigned char *a = malloc(2 * (size_t)nByte);
  for (int iCase = 0; iCase < nCase; iCase++) {
    int n = (int)nByte;
    memcpy(a, aOrig, (size_t)nByte);
    const char *zCase = "", *zExpect = "snapshot";
    uint64_t v64;
    uint32_t v32;
    switch (aCase[iCase]) {
      case 0: zCase = "truncated to half"; n = (int)nByte / 2; break;
      case 1: zCase = "truncated after the header"; n = 40; break;
      case 2: zCase = "Faiss part 0xff"; memset(a + nByte - 300 * DIM * 4 - 40, 0xff, 300 * DIM * 4 + 40); break;
      case 3: { /* the header's label count (offset 24) says 2^40 rows */
        zCase = "label count 2^40";
        int64_t v = (int64_t)1 << 40;
        memcpy(a + 24, &v, 8);
        break;
      }
      case 4: zCase = "two labels mapped to one rowid"; memcpy(a + 40 + 8, a + 40, 8); break;
      /* the codes section of version 2 */
      case 5:
        zCase = "codes count 2^40", zExpect = "codes claim 1099511627776 elements, more than it holds";
        v64 = (uint64_t)1 << 40;
        memcpy(a + iSect + 4, &v64, 8);
        break;
      case 6: /* the count and the bytes agree, but are not whole vectors */
        zCase = "codes a float short", zExpect = "not a whole number of vectors";
        v64 = nCodes - 4;
        memcpy(a + iSect + 4, &v64, 8);
        memmove(a + iFaiss - 4, aOrig + iFaiss, (size_t)nByte - iFaiss);
        n -= 4;
        break;
      case 7:
        zCase = "codes a vector short", zExpect = "holds 299 vectors of dim 16, expected 300";
        v64 = nCodes - DIM * 4;
        memcpy(a + iSect + 4, &v64, 8);
        memmove(a + iFaiss - DIM * 4, aOrig + iFaiss, (size_t)nByte - iFaiss);
        n -= DIM * 4;
        break;
      case 8: /* Faiss's reader starts at the codes count */
        zCase = "flags 0", zExpect = "reading the Faiss index from the snapshot failed";
        v32 = 0;
        memcpy(a + iSect, &v32, 4);
        break;
      case 9: /* no section at all, and Faiss's part intact: a Flat index read without its codes */
        zCase = "flags 0 and no codes", zExpect = "stored arrays do not match its index type";
        v32 = 0;
        memcpy(a + iSect, &v32, 4);
        memmove(a + iSect + 4, aOrig + iFaiss, (size_t)nByte - iFaiss);
        n -= (int)(iFaiss - iSect - 4);
        break;
      case 10: /* the codes count is read as the HNSW levels count */
        zCase = "flags 3 on a Flat index", zExpect = "HNSW levels claim";
        v32 = 3;
        memcpy(a + iSect, &v32, 4);
        break;
      case 11: zCase = "flags 10", zExpect = "unknown flags 10"; v32 = 10; memcpy(a + iSect, &v32, 4); break;
      case 12: zCase = "truncated in the codes", zExpect = "more than it holds"; n = (int)(iCodes + nCodes / 2); break;
      case 13: { /* Faiss's part holds the 300 vectors too (ntotal at offset 8 of it, codes count at its end) */
        zCase = "codes also in Faiss's part", zExpect = "stores the codes twice";
        size_t nFaiss = (size_t)nByte - iFaiss;
        int64_t nTotal = 300;
        memcpy(a + iFaiss + 8, &nTotal, 8);
        v64 = nCodes / 4; /* Faiss counts floats */
        memcpy(a + iFaiss + nFaiss - 8, &v64, 8);
        memcpy(a + nByte, aOrig + iCodes, nCodes);
        n += (int)nCodes;
        break;
      }
    }
    db = tu_open(zPath);
    write_consistent_snapshot(db, a, n);
    close_db(db);
    db = tu_open(zPath);
    char zWhat[100];
    snprintf(zWhat, sizeof(zWhat), "hand-edited snapshot (%s)", zCase);
    expect_correct_or_error(db, m, aQ, zWhat);
    char *zErr = 0;
    int rc = sqlite3_exec(db, "INSERT INTO t(t) VALUES ('integrity-check')", 0, 0, &zErr);
    if (rc == SQLITE_OK || zErr == 0 || strncmp(zErr, "vecstore: ", 10) != 0 || strstr(zErr, "snapshot") == 0 ||
        strstr(zErr, zExpect) == 0) {
      nFail++;
      size_t k = strlen(zFail);
      snprintf(zFail + k, sizeof(zFail) - k, "\n  %s: integrity-check %s'%s'%s%s", zWhat,
               rc == SQLITE_OK ? "passed" : "error does not name the snapshot and ", zExpect,
               rc == SQLITE_OK ? "" : ": ", rc == SQLITE_OK ? "" : zErr);
    }
    sqlite3_free(zErr);
    zErr = 0;
    rc = sqlite3_exec(db, "INSERT INTO t(t) VALUES ('rebuild')", 0, 0, &zErr);
    if (rc != SQLITE_OK) {
      nFail++;
      size_t k = strlen(zFail);
      snprintf(zFail + k, sizeof(zFail) - k, "\n  %s: 'rebuild' failed: %s", zWhat, zErr ? zErr : "?");
    } else {
      integrity_ok(db, "main", "t");
      expect_all(db, "t", m, aQ, NQ, zWhat);
    }
    sqlite3_free(zErr);
    close_db(db);
    /* restore the original snapshot for the next case */
    db = tu_open(zPath);
    write_consistent_snapshot(db, aOrig, (int)nByte);
    close_db(db);
  }
  free(a);
  free(aOrig);
  mirror_free(m);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
  if (nFail) fail_msg("%d failure(s):%s", nFail, zFail);
}

static void test_hand_edited_snapshot(void **state) {
  (void)state;
  static const int aCase[] = {0, 1, 2, 4};
  hand_edited(aCase, 4);
}

/* The codes section of a version 2 snapshot (the flat codes, read by vecstore rather than by Faiss) edited by
** hand: counts claiming more than the snapshot holds, codes that are not whole vectors or one vector short,
** flags that do not match the index type, truncation inside the codes, the codes stored twice. */
static void test_hand_edited_codes_section(void **state) {
  (void)state;
  static const int aCase[] = {5, 6, 7, 8, 9, 10, 11, 12, 13};
  hand_edited(aCase, (int)(sizeof(aCase) / sizeof(aCase[0])));
}

/* A header that claims 2^40 rows: the allocation fails; that must read as a damaged snapshot, not block the
** repair. */
static void test_hand_edited_snapshot_count(void **state) {
  (void)state;
  static const int aCase[] = {3};
  hand_edited(aCase, 1);
}

/**************************************************************************************************
** Snapshot format version 2: the largest Faiss arrays (a flat index's codes, an HNSW graph's per-node arrays and
** its storage's codes) are written by vecstore in its own section ahead of Faiss's part and read back into arrays
** with room to grow, so that neither the open nor the first commit after it copies them.
*/

/* The whole snapshot of zTab (all chunks, in order), malloc'd; its size in *pn. */
static unsigned char *snapshot_bytes(sqlite3 *db, const char *zTab, size_t *pn) {
  size_t n = (size_t)qint(db, "SELECT sum(length(data)) FROM \"%w_snapshot\"", zTab);
  unsigned char *a = malloc(n + 1);
  char *zSql = sqlite3_mprintf("SELECT data FROM \"%w_snapshot\" ORDER BY chunk", zTab);
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  sqlite3_free(zSql);
  size_t i = 0;
  while (sqlite3_step(pStmt) == SQLITE_ROW) {
    size_t k = (size_t)sqlite3_column_bytes(pStmt, 0);
    assert_true(i + k <= n);
    memcpy(a + i, sqlite3_column_blob(pStmt, 0), k);
    i += k;
  }
  sqlite3_finalize(pStmt);
  assert_int_equal(i, n);
  *pn = n;
  return a;
}

/* The version of zTab's snapshot, and in *pFlags the flags of its section (version 2). */
static uint32_t snapshot_version(sqlite3 *db, const char *zTab, uint32_t *pFlags) {
  size_t n;
  unsigned char *a = snapshot_bytes(db, zTab, &n);
  uint32_t version = 0;
  int32_t nDesc;
  int64_t nLabel;
  assert_true(n >= 40);
  memcpy(&version, a + 4, 4);
  memcpy(&nDesc, a + 20, 4);
  memcpy(&nLabel, a + 24, 8);
  size_t i = 40 + (size_t)nLabel * 8 + (size_t)nDesc;
  *pFlags = 0xffffffffu;
  if (version == 2 && i + 4 <= n) memcpy(pFlags, a + i, 4);
  free(a);
  return version;
}

/* The first hit of a k=1 search for q is iRowid (at distance 0 when bZero). */
static void expect_first(sqlite3 *db, const char *zTab, const float *q, int nDim, i64 iRowid, int bZero,
                         const char *zWhat) {
  Hit h[1];
  int n = sql_knn(db, zTab, q, nDim, 1, 0, h);
  if (n != 1 || h[0].iRowid != iRowid || (bZero && h[0].rDist > 1e-6)) {
    fail_msg("%s: the search for rowid %lld's vector returned %s%lld at distance %g", zWhat, iRowid,
             n == 1 ? "rowid " : "no row ", n == 1 ? h[0].iRowid : 0LL, n == 1 ? h[0].rDist : 0.0);
  }
}

typedef struct FormatCase {
  const char *zOptions;
  uint32_t flags; /* of the section: 1 the HNSW graph, 2 the flat codes, 4 an IVF index's lists */
  int bExact;     /* searches equal a brute force (else: equal across a reopen, own vectors found first) */
} FormatCase;

/* One index type through the snapshot: a bulk commit (trained, snapshot of version 2 with the expected
** section), reopened; one-row commits (the log) on the reopened table, reopened; a bulk commit there (a new
** snapshot), reopened. Exact types equal a brute force throughout; the others give the same results after every
** reopen and find each new row's own vector first. */
static void format_round_trip(const FormatCase *pC) {
  char *zPath = tu_path("format.db");
  tu_remove_db(zPath);
  Mirror *m = mirror_new(2400, DIM);
  float aQ[NQ * DIM];
  make_queries(123, aQ, NQ, DIM);
  uint64_t seed = 4321;
  Results r;
  char zWhat[200];
  uint32_t flags;

  sqlite3 *db = tu_open(zPath);
  tu_exec_fmt(db, "CREATE VIRTUAL TABLE t USING vecstore(%s)", pC->zOptions);
  tu_exec(db, "BEGIN");
  insert_rows(db, "t", m, 1, 1200, &seed);
  tu_exec(db, "COMMIT");
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), 1);
  assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 0);
  if (snapshot_version(db, "t", &flags) != 2 || flags != pC->flags) {
    fail_msg("%s: snapshot version %u, section flags %u; expected version 2, flags %u", pC->zOptions,
             snapshot_version(db, "t", &flags), flags, pC->flags);
  }
  capture(db, "t", aQ, DIM, 0, &r);
  close_db(db);

  for (int iStep = 0; iStep < 3; iStep++) {
    db = tu_open(zPath);
    snprintf(zWhat, sizeof(zWhat), "%s, reopened after step %d", pC->zOptions, iStep);
    expect_same(db, "t", aQ, DIM, 0, &r, zWhat);
    if (pC->bExact) expect_all(db, "t", m, aQ, NQ, zWhat);
    integrity_ok(db, "main", "t");
    if (iStep == 0) {
      /* one-row commits on the table as loaded: three inserts, a delete, an update */
      i64 iGen = cfg_int(db, "t", "snapshot_gen");
      insert_rows(db, "t", m, 1201, 1203, &seed);
      delete_row(db, "t", m, 7);
      float a[DIM];
      rand_vec(&seed, a, DIM);
      update_vec(db, "t", m, 8, a);
      assert_int_equal(cfg_int(db, "t", "snapshot_gen"), iGen);
      assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 5);
    } else if (iStep == 1) {
      /* a bulk commit: a new snapshot, written from the index as loaded and grown */
      tu_exec(db, "BEGIN");
      insert_rows(db, "t", m, 1204, 2300, &seed);
      tu_exec(db, "COMMIT");
      assert_int_equal(qint(db, "SELECT count(*) FROM t_log"), 0);
      if (snapshot_version(db, "t", &flags) != 2 || flags != pC->flags) {
        fail_msg("%s: the second snapshot has section flags %u", pC->zOptions, flags);
      }
    }
    snprintf(zWhat, sizeof(zWhat), "%s, after the writes of step %d", pC->zOptions, iStep);
    if (pC->bExact) expect_all(db, "t", m, aQ, NQ, zWhat);
    for (i64 iRow = iStep == 0 ? 1201 : 2298; iStep < 2 && iRow <= (iStep == 0 ? 1203 : 2300); iRow++) {
      expect_first(db, "t", mvec(m, iRow), DIM, iRow, pC->bExact, zWhat);
    }
    if (iStep < 2) expect_first(db, "t", mvec(m, 8), DIM, 8, pC->bExact, zWhat);
    capture(db, "t", aQ, DIM, 0, &r);
    close_db(db);
  }
  mirror_free(m);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

static void test_snapshot_format_round_trip(void **state) {
  (void)state;
  static const FormatCase aCase[] = {
      {"dim=16", 2, 1},
      {"dim=16, index='HNSW16', search_params='efSearch=256'", 3, 1},
      {"dim=16, index='SQ8'", 2, 0},
      {"dim=16, index='HNSW16_SQ8', search_params='efSearch=256'", 3, 0},
      {"dim=16, index='PCA8,HNSW16', search_params='efSearch=256'", 3, 0},
      {"dim=16, index='IVF8,Flat'", 4, 0},
  };
  for (size_t i = 0; i < sizeof(aCase) / sizeof(aCase[0]); i++) format_round_trip(&aCase[i]);
}

/* A snapshot of version 1 (Faiss's write_index of the whole index after the label map and description) is still
** read, not rebuilt: made here from a version 2 one with one vector changed in it, which the searches must see;
** the next snapshot written is of version 2. */
static void test_snapshot_version1_read(void **state) {
  (void)state;
  char *zPath = tu_path("version1.db");
  Mirror *m = mirror_new(3100, DIM);
  float aQ[NQ * DIM];
  make_queries(17, aQ, NQ, DIM);
  uint64_t seed = 1717;
  sqlite3 *db = corrupt_setup(zPath, m, &seed); /* 300 rows in the snapshot, 12 changes in the log */
  size_t n, nCodes;
  unsigned char *a = snapshot_bytes(db, "t", &n);
  size_t iSect = codes_section(a, n, &nCodes);
  size_t iCodes = iSect + 12, iFaiss = iCodes + nCodes, nFaiss = n - iFaiss;
  assert_true(nFaiss == 45 && memcmp(a + iFaiss, "IxF2", 4) == 0); /* fourcc, header, an empty codes vector */
  /* rowid 100's vector, in the snapshot only */
  int64_t nLabel;
  memcpy(&nLabel, a + 24, 8);
  int64_t iLabel = -1;
  for (int64_t i = 0; i < nLabel; i++) {
    int64_t r;
    memcpy(&r, a + 40 + 8 * i, 8);
    if (r == 100) iLabel = i;
  }
  assert_true(iLabel >= 0);
  float aX[DIM];
  for (int i = 0; i < DIM; i++) aX[i] = 0.9f - 0.1f * (float)i;
  memcpy(a + iCodes + (size_t)iLabel * DIM * 4, aX, sizeof(aX));
  /* version 1: header, label map, description, then the IndexFlat with ntotal 300 and its codes inline */
  unsigned char *b = malloc(n);
  uint32_t v1 = 1;
  memcpy(b, a, iSect);
  memcpy(b + 4, &v1, 4);
  memcpy(b + iSect, a + iFaiss, nFaiss - 8);
  memcpy(b + iSect + 8, &nLabel, 8); /* the Faiss header's ntotal */
  uint64_t nFloat = nCodes / 4;
  memcpy(b + iSect + nFaiss - 8, &nFloat, 8);
  memcpy(b + iSect + nFaiss, a + iCodes, nCodes);
  size_t nV1 = iSect + nFaiss + nCodes;
  assert_true(nV1 == n - 12); /* without the flags and the codes count */
  write_consistent_snapshot(db, b, (int)nV1);
  close_db(db);
  free(a);
  free(b);

  db = tu_open(zPath);
  uint32_t flags;
  assert_int_equal(snapshot_version(db, "t", &flags), 1);
  expect_first(db, "t", aX, DIM, 100, 1, "version 1 snapshot read (its vector for rowid 100)");
  /* one-row commits on it, then a bulk commit past the log's limit: a snapshot of version 2 written from the
  ** index as read ('optimize' would rebuild it from the stored vectors) */
  insert_rows(db, "t", m, 1001, 1003, &seed);
  expect_first(db, "t", mvec(m, 1002), DIM, 1002, 1, "insert after reading a version 1 snapshot");
  i64 iGen = cfg_int(db, "t", "snapshot_gen");
  tu_exec(db, "BEGIN");
  insert_rows(db, "t", m, 2001, 3100, &seed);
  tu_exec(db, "COMMIT");
  assert_int_equal(cfg_int(db, "t", "snapshot_gen"), iGen + 1);
  assert_int_equal(snapshot_version(db, "t", &flags), 2);
  assert_int_equal(flags, 2);
  close_db(db);
  db = tu_open(zPath);
  expect_first(db, "t", aX, DIM, 100, 1, "version 2 snapshot written after reading a version 1 one");
  expect_first(db, "t", mvec(m, 1003), DIM, 1003, 1, "version 2 snapshot written after reading a version 1 one");
  /* the stored vectors are the truth: 'rebuild' brings rowid 100's back */
  command(db, "t", "rebuild");
  expect_all(db, "t", m, aQ, NQ, "rebuilt after the version 1 snapshot");
  integrity_ok(db, "main", "t");
  close_db(db);
  mirror_free(m);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/* Opening a large Flat table and committing one row into it, in a fresh process whose address space is limited
** to what it maps after a warm-up plus 1.25 times the table's codes and 48 MiB: reading the codes again into a
** larger array at the open, or growing the exactly-sized array Faiss's reader makes at the first commit, needs
** twice the codes at once and fails there. */
#define GROWTH_ENV "VECSTORE_TEST_STORAGE_GROWTH_CHILD"
#define GROWTH_DIM 1024
#define GROWTH_ROWS 16384 /* 64 MiB of codes */

static float *growth_vec(int iRow, float *a) {
  uint64_t seed = 0x5eed0000u + (uint64_t)iRow;
  rand_vec(&seed, a, GROWTH_DIM);
  return a;
}

static int growth_fail(const char *zWhat, sqlite3 *db) {
  fprintf(stderr, "growth child: %s: %s\n", zWhat, db ? sqlite3_errmsg(db) : "");
  return 1;
}

static int growth_child(const char *zPath) {
  static float a[GROWTH_DIM];
  /* warm-up: the extension, Faiss and SQLite initialised, a search and a commit run */
  sqlite3 *pWarm = tu_open(":memory:");
  tu_exec_fmt(pWarm, "CREATE VIRTUAL TABLE w USING vecstore(dim=%d)", GROWTH_DIM);
  sqlite3_stmt *pIns = prepare_fmt(pWarm, "INSERT INTO %s(rowid, embedding) VALUES (?1, ?2)", "w");
  for (int i = 1; i <= 3; i++) {
    sqlite3_bind_int(pIns, 1, i);
    sqlite3_bind_blob(pIns, 2, growth_vec(i, a), sizeof(a), SQLITE_STATIC);
    if (sqlite3_step(pIns) != SQLITE_DONE) return growth_fail("warm-up insert", pWarm);
    sqlite3_reset(pIns);
  }
  sqlite3_finalize(pIns);
  Hit h[2];
  char *zErr = 0;
  if (sql_knn_try(pWarm, "w", growth_vec(2, a), GROWTH_DIM, 1, 0, h, &zErr) != 1 || h[0].iRowid != 2) {
    fprintf(stderr, "growth child: warm-up search: %s\n", zErr ? zErr : "wrong row");
    return 1;
  }
  /* pWarm stays open: closing the last connection would unload vecstore.so */

  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long nPages = 0;
  if (f == 0 || fscanf(f, "%lu", &nPages) != 1) return growth_fail("cannot read /proc/self/statm", 0);
  fclose(f);
  rlim_t nCodes = (rlim_t)GROWTH_ROWS * GROWTH_DIM * 4;
  struct rlimit lim;
  lim.rlim_cur = lim.rlim_max = (rlim_t)nPages * (rlim_t)sysconf(_SC_PAGESIZE) + nCodes + nCodes / 4 + (48 << 20);
  if (setrlimit(RLIMIT_AS, &lim) != 0) return growth_fail("setrlimit", 0);

  sqlite3 *db = 0;
  if (sqlite3_open(zPath, &db) != SQLITE_OK) return growth_fail("open", db);
  sqlite3_enable_load_extension(db, 1);
  const char *zExt = getenv("VECSTORE_EXT");
  if (sqlite3_load_extension(db, zExt ? zExt : "build/vecstore", 0, &zErr) != SQLITE_OK) {
    fprintf(stderr, "growth child: load: %s\n", zErr);
    return 1;
  }
  /* the open, then searches for stored rows: each finds itself */
  for (int i = 1; i <= GROWTH_ROWS; i += GROWTH_ROWS / 4) {
    char *zSearchErr = 0;
    int n = sql_knn_try(db, "g", growth_vec(i, a), GROWTH_DIM, 1, 0, h, &zSearchErr);
    if (n != 1 || h[0].iRowid != i) {
      fprintf(stderr, "growth child: search for row %d after the open: %s\n", i, zSearchErr ? zSearchErr : "wrong row");
      return 1;
    }
  }
  /* one-row commits, each found */
  for (int i = GROWTH_ROWS + 1; i <= GROWTH_ROWS + 3; i++) {
    sqlite3_stmt *pStmt = 0;
    if (sqlite3_prepare_v2(db, "INSERT INTO g(rowid, embedding) VALUES (?1, ?2)", -1, &pStmt, 0) != SQLITE_OK) {
      return growth_fail("prepare", db);
    }
    sqlite3_bind_int(pStmt, 1, i);
    sqlite3_bind_blob(pStmt, 2, growth_vec(i, a), sizeof(a), SQLITE_STATIC);
    if (sqlite3_step(pStmt) != SQLITE_DONE) {
      fprintf(stderr, "growth child: one-row commit of row %d after the open: %s\n", i, sqlite3_errmsg(db));
      sqlite3_finalize(pStmt);
      return 1;
    }
    sqlite3_finalize(pStmt);
    if (sql_knn_try(db, "g", a, GROWTH_DIM, 1, 0, h, &zErr) != 1 || h[0].iRowid != i) {
      fprintf(stderr, "growth child: search for the new row %d: %s\n", i, zErr ? zErr : "wrong row");
      return 1;
    }
  }
  if (sqlite3_close(db) != SQLITE_OK) return growth_fail("close", db);
  sqlite3_close(pWarm);
  return 0;
}

static void test_open_and_commit_without_copy(void **state) {
  (void)state;
  char *zPath = tu_path("growth.db");
  tu_remove_db(zPath);
  sqlite3 *db = tu_open(zPath);
  tu_exec_fmt(db, "CREATE VIRTUAL TABLE g USING vecstore(dim=%d)", GROWTH_DIM);
  tu_exec(db, "BEGIN");
  sqlite3_stmt *pStmt = tu_prepare(db, "INSERT INTO g(rowid, embedding) VALUES (?1, ?2)");
  static float a[GROWTH_DIM];
  for (int i = 1; i <= GROWTH_ROWS; i++) {
    sqlite3_bind_int(pStmt, 1, i);
    sqlite3_bind_blob(pStmt, 2, growth_vec(i, a), sizeof(a), SQLITE_STATIC);
    step_done(db, pStmt);
  }
  sqlite3_finalize(pStmt);
  tu_exec(db, "COMMIT");
  assert_int_equal(cfg_int(db, "g", "snapshot_gen"), 1);
  uint32_t flags;
  assert_int_equal(snapshot_version(db, "g", &flags), 2);
  close_db(db);

  char zExe[4096];
  ssize_t nExe = readlink("/proc/self/exe", zExe, sizeof(zExe) - 1);
  assert_true(nExe > 0);
  zExe[nExe] = 0;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* one malloc arena and no OpenBLAS threads: a thread's first malloc reserves a 64 MiB arena, and OpenBLAS's
    ** threads allocate buffers whenever they start, both at times the limit cannot foresee */
    setenv("MALLOC_ARENA_MAX", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    setenv(GROWTH_ENV, zPath, 1);
    execl(zExe, "test_storage", (char *)0);
    _exit(127);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fail_msg("opening a %d x %d Flat table and committing one row, with the address space limited to 1.25 times "
             "its codes more than after a warm-up, failed (%s %d; its output is above): the open or the first "
             "commit copies the codes",
             GROWTH_ROWS, GROWTH_DIM, WIFSIGNALED(status) ? "signal" : "exit status",
             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  }
}

/**************************************************************************************************
** A COMMIT that fails with SQLITE_BUSY (rollback journal, another connection reading) and is retried, or
** rolled back: xSync has run once already.
*/

static void test_commit_busy_retry(void **state) {
  (void)state;
  char *zPath = tu_path("busy.db");
  tu_remove_db(zPath);
  Mirror *m = mirror_new(4000, DIM);
  float aQ[NQ * DIM];
  make_queries(91, aQ, NQ, DIM);
  uint64_t seed = 9191;
  sqlite3 *A = tu_open(zPath);
  sqlite3 *B = tu_open(zPath);
  tu_exec(A, "CREATE VIRTUAL TABLE t USING vecstore(dim=16)");
  tu_exec(A, "BEGIN");
  insert_rows(A, "t", m, 1, 100, &seed);
  tu_exec(A, "COMMIT");
  expect_all(B, "t", m, aQ, NQ, "B before the busy commit");
  sqlite3_busy_timeout(A, 0);
  i64 nLogged = -1;

  for (int iRound = 0; iRound < 3; iRound++) {
    /* round 0: a few log entries; round 1: enough rows for a new snapshot; round 2: the same, rolled back */
    Mirror *pBefore = mirror_clone(m);
    i64 nLogBefore = qint(A, "SELECT count(*) FROM t_log");
    tu_exec(B, "BEGIN");
    assert_int_equal(qint(B, "SELECT count(*) FROM t"), mirror_count(m));
    tu_exec(A, "BEGIN");
    if (iRound == 0) {
      insert_rows(A, "t", m, 101, 110, &seed);
      delete_row(A, "t", m, 5);
      float a[DIM];
      rand_vec(&seed, a, DIM);
      update_vec(A, "t", m, 6, a);
    } else {
      insert_rows(A, "t", m, 1300 * iRound - 299, 1300 * iRound + 900, &seed); /* 1200 rows: a snapshot */
      delete_row(A, "t", m, 7 + iRound);
    }
    char *zErr = 0;
    int rc = sqlite3_exec(A, "COMMIT", 0, 0, &zErr);
    if (rc != SQLITE_BUSY) fail_msg("round %d: COMMIT while B reads: expected SQLITE_BUSY, got %s (%s)", iRound,
                                    sqlite3_errstr(rc), zErr ? zErr : "");
    sqlite3_free(zErr);
    assert_int_equal(sqlite3_get_autocommit(A), 0); /* the transaction is still open */
    expect_all(A, "t", m, aQ, NQ, "A inside its transaction after the busy COMMIT");
    expect_all(B, "t", pBefore, aQ, NQ, "B while A's COMMIT is busy");
    tu_exec(B, "COMMIT");
    if (iRound < 2) {
      tu_exec(A, "COMMIT");
      if (iRound == 0) {
        i64 nLog = qint(A, "SELECT count(*) FROM t_log");
        nLogged = nLog - nLogBefore; /* checked at the end, after the correctness checks */
      }
    } else {
      tu_exec(A, "ROLLBACK");
      mirror_free(m);
      m = mirror_clone(pBefore);
    }
    mirror_free(pBefore);
    char zWhat[80];
    snprintf(zWhat, sizeof(zWhat), "A after the busy round %d", iRound);
    expect_all(A, "t", m, aQ, NQ, zWhat);
    snprintf(zWhat, sizeof(zWhat), "B after the busy round %d", iRound);
    expect_all(B, "t", m, aQ, NQ, zWhat);
    integrity_ok(A, "main", "t");
    integrity_ok(B, "main", "t");
  }
  close_db(A);
  close_db(B);
  A = tu_open(zPath);
  expect_all(A, "t", m, aQ, NQ, "reopened after the busy rounds");
  integrity_ok(A, "main", "t");
  close_db(A);
  mirror_free(m);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
  /* a retried COMMIT appends each change to the log once (xSync ran twice: the log must not double) */
  if (nLogged != 12) fail_msg("the retried COMMIT logged %lld entries for 12 changed rows", nLogged);
}

/**************************************************************************************************
** Closing the last connection unloads the extension (SQLite dlcloses it): that must be safe.
*/

#define DLCLOSE_ENV "VECSTORE_TEST_STORAGE_DLCLOSE_CHILD"

/* In a fresh process: HNSW inserts (Faiss runs them on an OpenMP thread pool), then the only connection
** closes, which unloads vecstore.so; repeated, then the process goes on. */
static int dlclose_child(void) {
  for (int iRound = 0; iRound < 12; iRound++) {
    sqlite3 *db = tu_open(":memory:");
    tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim=4, index='HNSW32');"
                "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 2000) "
                "INSERT INTO t(embedding) SELECT json_array(x % 7, x % 11, x % 13, x) FROM s;");
    if (sqlite3_close(db) != SQLITE_OK) return 2;
  }
  usleep(300 * 1000);
  return 0;
}

/* Runs dlclose_child in a new process (this binary re-executed), so that a crash there fails this test only. */
static void test_unload_after_last_close(void **state) {
  (void)state;
  char zExe[4096];
  ssize_t nExe = readlink("/proc/self/exe", zExe, sizeof(zExe) - 1); /* the client path, also under valgrind */
  assert_true(nExe > 0);
  zExe[nExe] = 0;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    setenv(DLCLOSE_ENV, "1", 1);
    execl(zExe, "test_storage", (char *)0);
    _exit(127);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (WIFSIGNALED(status)) {
    fail_msg("a process that closed its last vecstore connection (after HNSW inserts) was killed by signal %d: "
             "the extension is unloaded while Faiss's OpenMP worker threads still run its code",
             WTERMSIG(status));
  }
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

/* The other tests keep one connection open for the whole run, so that vecstore.so is never unloaded between
** them (see test_unload_after_last_close). */
sqlite3 *g_storage_keeper; /* not static: the store must not be optimised away */

static int group_setup(void **state) {
  (void)state;
  g_storage_keeper = tu_open(":memory:");
  return 0;
}

int main(void) {
  if (getenv(DLCLOSE_ENV)) return dlclose_child();
  if (getenv(GROWTH_ENV)) { /* _exit: OpenBLAS's exit handlers allocate, and would retry forever under the limit */
    int rc = growth_child(getenv(GROWTH_ENV));
    fflush(stdout);
    fflush(stderr);
    _exit(rc);
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unload_after_last_close),
      cmocka_unit_test(test_shadow_tables),
      cmocka_unit_test(test_persist_flat),
      cmocka_unit_test(test_persist_hnsw),
      cmocka_unit_test(test_attached_create),
      cmocka_unit_test(test_drop_and_rename),
      cmocka_unit_test(test_rename_declared_columns),
      cmocka_unit_test(test_defensive),
      cmocka_unit_test(test_two_connections_wal),
      cmocka_unit_test(test_two_connections_journal),
      cmocka_unit_test(test_commit_cost_and_chunks),
      cmocka_unit_test(test_log_threshold_scales),
      cmocka_unit_test(test_snapshot_after_train_and_compaction),
      cmocka_unit_test(test_hnsw_deletes_updates),
      cmocka_unit_test(test_corrupt_snapshot),
      cmocka_unit_test(test_corrupt_rows),
      cmocka_unit_test(test_hand_edited_snapshot),
      cmocka_unit_test(test_hand_edited_snapshot_count),
      cmocka_unit_test(test_hand_edited_codes_section),
      cmocka_unit_test(test_snapshot_format_round_trip),
      cmocka_unit_test(test_snapshot_version1_read),
      cmocka_unit_test(test_open_and_commit_without_copy),
      cmocka_unit_test(test_commit_busy_retry),
  };
  return cmocka_run_group_tests_name("storage", tests, group_setup, NULL);
}
