/* Reliability (issue 6): shadow tables damaged or edited by hand, resource limits, defensive mode and untrusted
** schemas. test_storage.c already covers checksum-damaged and consistently forged snapshots of a Flat table and a
** few damaged rows; this suite covers every kind of hand edit for Flat and HNSW (and a two-chunk snapshot, and a
** table with declared columns).
**
** Each damage case runs on a fresh copy of one base file. It is done through a plain connection without vecstore,
** then checked three ways: a fresh connection's searches either fail with a "vecstore: " error or equal a brute
** force over the rows as now stored (a vector row that is a float32 BLOB of the table's size, with a document); a
** connection that had the index loaded before the damage may also still answer from it (the committed state); and
** INSERT INTO t(t) VALUES ('integrity-check') fails naming the problem. Then 'rebuild' either repairs the table,
** fails naming the problem, or runs and leaves the problem (rows only a write through the table can repair), and
** the repair named by the case leaves a table that passes integrity-check and searches exactly, also reopened.
**
** Resource limits, forged HNSW snapshots and huge Faiss parameters run in a child process (this binary re-executed)
** under RLIMIT_AS, so that an allocation proportional to k, fetch_k or a parameter fails instead of succeeding
** lazily, and a crash fails one test instead of the suite. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

typedef sqlite3_int64 i64;

#define DIM 8
#define BDIM 64 /* table b: 4500 x 64 floats, a snapshot of two 1 MiB chunks */
#define KK 10
#define NQ 4
#define CHILD_ENV "VECSTORE_TEST_RELIABILITY_CHILD"

static char *g_zBase; /* the base file every damage case copies */

/**************************************************************************************************
** Helpers.
*/

static void rand_vec(uint64_t *pSeed, float *a, int n) {
  for (int i = 0; i < n; i++) a[i] = (float)(tu_rand_unit(pSeed) * 2.0 - 1.0);
}

static i64 qint(sqlite3 *db, const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  char *zSql = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  i64 v = tu_int(db, zSql);
  sqlite3_free(zSql);
  return v;
}

/* Runs SQL; returns NULL on success or the error message (sqlite3_malloc'd). */
static char *try_exec(sqlite3 *db, const char *zSql) {
  char *zErr = 0;
  int rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
  if (rc == SQLITE_OK) return 0;
  return zErr ? zErr : sqlite3_mprintf("%s", sqlite3_errstr(rc));
}

/* zTemplate with every "{t}" replaced by zTab (sqlite3_malloc'd). */
static char *expand(const char *zTemplate, const char *zTab) {
  sqlite3_str *p = sqlite3_str_new(0);
  for (const char *z = zTemplate; *z; z++) {
    if (z[0] == '{' && z[1] == 't' && z[2] == '}') {
      sqlite3_str_appendall(p, zTab);
      z += 2;
    } else {
      sqlite3_str_appendchar(p, 1, *z);
    }
  }
  return sqlite3_str_finish(p);
}


/* A connection without vecstore, for editing shadow tables and reading them as the truth. */
static sqlite3 *open_plain(const char *zPath) {
  sqlite3 *db = 0;
  if (sqlite3_open(zPath, &db) != SQLITE_OK) fail_msg("open %s: %s", zPath, sqlite3_errmsg(db));
  sqlite3_busy_timeout(db, 5000);
  tu_exec(db, "PRAGMA synchronous = OFF");
  return db;
}

/* A connection with vecstore; durability does not matter here, so commits do not sync. */
static sqlite3 *open_db(const char *zPath) {
  sqlite3 *db = tu_open(zPath);
  tu_exec(db, "PRAGMA synchronous = OFF");
  return db;
}

static void close_db(sqlite3 *db) {
  int rc = sqlite3_close(db);
  if (rc != SQLITE_OK) fail_msg("sqlite3_close: %s (an unfinalized statement?)", sqlite3_errstr(rc));
}

/* Appends printf-style text to the failure report *pz (sqlite3_malloc'd). */
static void note(char **pz, const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  char *zMsg = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  char *zNew = sqlite3_mprintf("%s\n  %s", *pz ? *pz : "", zMsg);
  sqlite3_free(zMsg);
  sqlite3_free(*pz);
  *pz = zNew;
}

/* Fails the test with the collected failures (printed in full first: cmocka shortens long messages). */
static void report(char *zFail) {
  if (zFail == 0) return;
  int n = 0;
  for (const char *z = zFail; (z = strstr(z, "\n  ")) != 0; z++) n++;
  fprintf(stderr, "%s\n", zFail);
  sqlite3_free(zFail);
  fail_msg("%d failure(s), listed above", n);
}

/**************************************************************************************************
** Rows as stored, and exact search over them.
*/

typedef struct Rows {
  int nDim;
  int n;
  i64 *aRowid;
  float *aVec;
} Rows;

static void rows_free(Rows *p) {
  if (p == 0) return;
  free(p->aRowid);
  free(p->aVec);
  free(p);
}

/* The rows of zTab as stored: a vector row that is a finite float32 BLOB of nDim values and has a document.
** NULL when the shadow tables cannot be read (one was dropped). */
static Rows *rows_load(sqlite3 *db, const char *zTab, int nDim) {
  char *zSql = sqlite3_mprintf("SELECT v.rowid, v.embedding FROM \"%w_vectors\" v WHERE EXISTS (SELECT 1 FROM "
                               "\"%w_docs\" d WHERE d.rowid = v.rowid) ORDER BY v.rowid", zTab, zTab);
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  sqlite3_free(zSql);
  if (rc != SQLITE_OK) return 0;
  Rows *p = calloc(1, sizeof(*p));
  p->nDim = nDim;
  int nAlloc = 0;
  while (sqlite3_step(pStmt) == SQLITE_ROW) {
    if (sqlite3_column_type(pStmt, 1) != SQLITE_BLOB || sqlite3_column_bytes(pStmt, 1) != nDim * 4) continue;
    float a[BDIM];
    memcpy(a, sqlite3_column_blob(pStmt, 1), (size_t)nDim * 4);
    int bFinite = 1;
    for (int i = 0; i < nDim; i++) bFinite = bFinite && isfinite(a[i]);
    if (!bFinite) continue;
    if (p->n == nAlloc) {
      nAlloc = nAlloc ? nAlloc * 2 : 512;
      p->aRowid = realloc(p->aRowid, sizeof(i64) * (size_t)nAlloc);
      p->aVec = realloc(p->aVec, sizeof(float) * (size_t)nAlloc * nDim);
    }
    p->aRowid[p->n] = sqlite3_column_int64(pStmt, 0);
    memcpy(p->aVec + (size_t)p->n * nDim, a, (size_t)nDim * 4);
    p->n++;
  }
  sqlite3_finalize(pStmt);
  return p;
}

static const float *rows_vec(const Rows *p, i64 iRowid) {
  for (int i = 0; i < p->n; i++) {
    if (p->aRowid[i] == iRowid) return p->aVec + (size_t)i * p->nDim;
  }
  return 0;
}

typedef TuHit Hit;

/* The k nearest rows of p to q (squared L2); returns how many. aOut holds max(k, p->n) entries. */
static int exact_knn(const Rows *p, const float *q, int k, Hit *aOut) {
  Hit *a = malloc(sizeof(Hit) * ((size_t)p->n + 1));
  for (int i = 0; i < p->n; i++) {
    a[i].iRowid = p->aRowid[i];
    a[i].rDist = tu_ref_distance(q, p->aVec + (size_t)i * p->nDim, p->nDim, TU_L2);
  }
  int n = tu_hits_nearest(a, p->n, k);
  memcpy(aOut, a, sizeof(Hit) * (size_t)n);
  free(a);
  return n;
}

static int same_dist(double a, double b) { return fabs(a - b) <= 1e-4 * (fabs(b) > 1.0 ? fabs(b) : 1.0); }

static int same_hits(const Hit *a, int na, const Hit *b, int nb) {
  if (na != nb) return 0;
  for (int i = 0; i < na; i++) {
    if (a[i].iRowid != b[i].iRowid || !same_dist(a[i].rDist, b[i].rDist)) return 0;
  }
  return 1;
}

static char *format_hits(const Hit *a, int n) {
  sqlite3_str *p = sqlite3_str_new(0);
  for (int i = 0; i < n && i < 6; i++) sqlite3_str_appendf(p, "%s%lld:%.4g", i ? " " : "", a[i].iRowid, a[i].rDist);
  if (n > 6) sqlite3_str_appendf(p, " ... (%d rows)", n);
  return sqlite3_str_finish(p);
}

/* Runs zSql, which selects (rowid, id, distance) with the query vector as ?1, reading every column: the number
** of rows (the first nOut go to aOut), or -1 with *pzErr. */
static int sql_hits(sqlite3 *db, const char *zSql, const float *q, int nDim, Hit *aOut, int nOut, char **pzErr) {
  sqlite3_stmt *pStmt = 0;
  *pzErr = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  if (rc != SQLITE_OK) {
    *pzErr = sqlite3_mprintf("%s", sqlite3_errmsg(db));
    return -1;
  }
  sqlite3_bind_blob(pStmt, 1, q, nDim * 4, SQLITE_TRANSIENT);
  int n = 0;
  while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    (void)sqlite3_column_text(pStmt, 1);
    if (n < nOut) {
      aOut[n].iRowid = sqlite3_column_int64(pStmt, 0);
      aOut[n].rDist = sqlite3_column_double(pStmt, 2);
    }
    n++;
  }
  if (rc != SQLITE_DONE) {
    *pzErr = sqlite3_mprintf("%s", sqlite3_errmsg(db));
    n = -1;
  }
  sqlite3_finalize(pStmt);
  return n;
}

/* A KNN search that also reads each row's document (id): the number of rows, or -1 with *pzErr. */
static int sql_knn(sqlite3 *db, const char *zTab, const float *q, int nDim, i64 k, Hit *aOut, int nOut,
                   char **pzErr) {
  char *zSql = sqlite3_mprintf("SELECT rowid, id, distance FROM \"%w\" WHERE embedding MATCH ?1 AND k = %lld", zTab,
                               k);
  int n = sql_hits(db, zSql, q, nDim, aOut, nOut, pzErr);
  sqlite3_free(zSql);
  return n;
}

/**************************************************************************************************
** The base file: t (Flat), h (HNSW), b (Flat, two-chunk snapshot), c (Flat with declared columns). Each holds
** rows in a snapshot plus changes in the log: inserts, deletes and updates after the snapshot.
*/

typedef struct TabInfo {
  const char *zName;
  int nDim;
  Rows *pBase;      /* the rows of the base file */
  float aQ[NQ * BDIM];
} TabInfo;

static TabInfo g_aTab[] = {{"t", DIM, 0, {0}}, {"h", DIM, 0, {0}}, {"b", BDIM, 0, {0}}, {"c", DIM, 0, {0}}};

static TabInfo *tab_info(const char *zTab) {
  for (size_t i = 0; i < sizeof(g_aTab) / sizeof(g_aTab[0]); i++) {
    if (strcmp(g_aTab[i].zName, zTab) == 0) return &g_aTab[i];
  }
  fail_msg("no table %s", zTab);
  return 0;
}

/* Inserts rowids iFirst..iLast with random vectors. */
static void insert_random(sqlite3 *db, const char *zTab, int nDim, i64 iFirst, i64 iLast, uint64_t *pSeed) {
  char *zSql = sqlite3_mprintf("INSERT INTO \"%w\"(rowid, id, content, metadata, embedding) VALUES (?1, 'doc-' || ?1, "
                               "'text ' || ?1, json_object('n', ?1), ?2)", zTab);
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  sqlite3_free(zSql);
  float a[BDIM];
  for (i64 r = iFirst; r <= iLast; r++) {
    rand_vec(pSeed, a, nDim);
    sqlite3_bind_int64(pStmt, 1, r);
    sqlite3_bind_blob(pStmt, 2, a, nDim * 4, SQLITE_TRANSIENT);
    if (sqlite3_step(pStmt) != SQLITE_DONE) fail_msg("insert into %s: %s", zTab, sqlite3_errmsg(db));
    sqlite3_reset(pStmt);
  }
  sqlite3_finalize(pStmt);
}

static void update_random(sqlite3 *db, const char *zTab, int nDim, i64 iRowid, uint64_t *pSeed) {
  float a[BDIM];
  rand_vec(pSeed, a, nDim);
  char *zSql = sqlite3_mprintf("UPDATE \"%w\" SET embedding = ?1 WHERE rowid = %lld", zTab, iRowid);
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  sqlite3_free(zSql);
  sqlite3_bind_blob(pStmt, 1, a, nDim * 4, SQLITE_TRANSIENT);
  if (sqlite3_step(pStmt) != SQLITE_DONE) fail_msg("update %s: %s", zTab, sqlite3_errmsg(db));
  sqlite3_finalize(pStmt);
}

/* rows 1..nSnap in the snapshot; then, in the log: inserts nSnap+1..nSnap+30, deletes of 2 and 3, updates of 9
** and 10 (in separate commits, so the log holds several entries per kind). */
static void fill(sqlite3 *db, const char *zTab, int nDim, int nSnap, uint64_t seed) {
  tu_exec(db, "BEGIN");
  insert_random(db, zTab, nDim, 1, nSnap, &seed);
  tu_exec(db, "COMMIT");
  tu_exec_fmt(db, "INSERT INTO \"%w\"(\"%w\") VALUES ('optimize')", zTab, zTab);
  insert_random(db, zTab, nDim, nSnap + 1, nSnap + 20, &seed);
  tu_exec_fmt(db, "DELETE FROM \"%w\" WHERE rowid IN (2, 3)", zTab);
  update_random(db, zTab, nDim, 9, &seed);
  update_random(db, zTab, nDim, 10, &seed);
  insert_random(db, zTab, nDim, nSnap + 21, nSnap + 30, &seed);
}

static void make_base(void) {
  g_zBase = tu_path("reliability-base.db");
  tu_remove_db(g_zBase);
  sqlite3 *db = open_db(g_zBase);
  tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim=8)");
  tu_exec(db, "CREATE VIRTUAL TABLE h USING vecstore(dim=8, index='HNSW16', search_params='efSearch=512')");
  tu_exec(db, "CREATE VIRTUAL TABLE b USING vecstore(dim=64)");
  tu_exec(db, "CREATE VIRTUAL TABLE c USING vecstore(dim=8, page INTEGER, weight REAL, src TEXT, raw BLOB)");
  fill(db, "t", DIM, 300, 11);
  fill(db, "h", DIM, 300, 11);
  fill(db, "b", BDIM, 4500, 22);
  fill(db, "c", DIM, 300, 33);
  tu_exec(db, "UPDATE c SET page = rowid % 7, weight = rowid / 4.0, src = 'src' || (rowid % 3), raw = x'0102'");
  /* the layout the cases rely on */
  assert_int_equal(qint(db, "SELECT count(*) FROM b_snapshot"), 2);
  for (size_t i = 0; i < sizeof(g_aTab) / sizeof(g_aTab[0]); i++) {
    TabInfo *p = &g_aTab[i];
    assert_true(qint(db, "SELECT count(*) FROM \"%w_log\"", p->zName) >= 30);
    assert_true(qint(db, "SELECT value FROM \"%w_config\" WHERE key = 'snapshot_gen'", p->zName) >= 1);
    tu_exec_fmt(db, "INSERT INTO \"%w\"(\"%w\") VALUES ('integrity-check')", p->zName, p->zName);
    uint64_t seed = 1000 + i;
    rand_vec(&seed, p->aQ, NQ * p->nDim);
  }
  close_db(db);
  sqlite3 *plain = open_plain(g_zBase);
  for (size_t i = 0; i < sizeof(g_aTab) / sizeof(g_aTab[0]); i++) {
    g_aTab[i].pBase = rows_load(plain, g_aTab[i].zName, g_aTab[i].nDim);
    assert_non_null(g_aTab[i].pBase);
  }
  close_db(plain);
}

/**************************************************************************************************
** Damage cases.
*/

enum { A_EXACT = 1, A_ERROR = 2, A_STALE = 4 };
enum { R_REPAIRS, R_FAILS, R_LEAVES };

typedef struct Case {
  const char *zName;
  const char *zTabs;        /* the tables it runs on: letters of t, h, b, c */
  const char *zDamage;      /* SQL on a plain connection, {t} = the table; or NULL and xDamage */
  void (*xDamage)(sqlite3 *, const char *zTab);
  int eAllow;               /* search outcomes allowed on a fresh connection */
  const char *zSearchErr;   /* a search error must contain this ({t} expanded), when not NULL */
  const char *zCheck;       /* integrity-check fails with an error containing this ({t} expanded) */
  int eRebuild;             /* what 'rebuild' does */
  const char *zRebuildErr;  /* R_FAILS: its error contains this */
  const char *zRepair;      /* R_FAILS, R_LEAVES: SQL through the table that repairs, or NULL */
  const char *zRepairPlain; /* or a repair by hand on a plain connection */
  i64 aFocus[2];            /* rowids whose base vectors are also queries (0: none) */
} Case;

/* Flips one byte in the middle of the first snapshot chunk. */
static void flip_snapshot(sqlite3 *db, const char *zTab) {
  char *zSql = sqlite3_mprintf("SELECT data FROM \"%w_snapshot\" WHERE chunk = 0", zTab);
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  sqlite3_free(zSql);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
  int n = sqlite3_column_bytes(pStmt, 0);
  unsigned char *a = malloc((size_t)n);
  memcpy(a, sqlite3_column_blob(pStmt, 0), (size_t)n);
  sqlite3_finalize(pStmt);
  a[n / 2 + 1] ^= 0x10;
  zSql = sqlite3_mprintf("UPDATE \"%w_snapshot\" SET data = ?1 WHERE chunk = 0", zTab);
  pStmt = tu_prepare(db, zSql);
  sqlite3_free(zSql);
  sqlite3_bind_blob(pStmt, 1, a, n, SQLITE_TRANSIENT);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_DONE);
  sqlite3_finalize(pStmt);
  free(a);
}

/* Sets float iIndex of the stored vector of iRowid to r. */
static void poke_float(sqlite3 *db, const char *zTab, i64 iRowid, int iIndex, float r) {
  char *zSql = sqlite3_mprintf("SELECT embedding FROM \"%w_vectors\" WHERE rowid = %lld", zTab, iRowid);
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  sqlite3_free(zSql);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
  int n = sqlite3_column_bytes(pStmt, 0);
  float a[BDIM];
  assert_true(n <= (int)sizeof(a));
  memcpy(a, sqlite3_column_blob(pStmt, 0), (size_t)n);
  sqlite3_finalize(pStmt);
  a[iIndex] = r;
  zSql = sqlite3_mprintf("UPDATE \"%w_vectors\" SET embedding = ?1 WHERE rowid = %lld", zTab, iRowid);
  pStmt = tu_prepare(db, zSql);
  sqlite3_free(zSql);
  sqlite3_bind_blob(pStmt, 1, a, n, SQLITE_TRANSIENT);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_DONE);
  sqlite3_finalize(pStmt);
}

static void nan_in_12(sqlite3 *db, const char *zTab) { poke_float(db, zTab, 12, 3, NAN); }
static void inf_in_307(sqlite3 *db, const char *zTab) { poke_float(db, zTab, 307, 0, INFINITY); }

#define V8 "'[0.25,-0.5,0.125,0.75,-0.25,0.5,-0.125,0.0625]'"

static const Case aCase[] = {
    /* snapshot chunks and their bookkeeping: the index is rebuilt in memory from the stored vectors */
    {"snapshot chunk truncated", "thb",
     "UPDATE {t}_snapshot SET data = substr(data, 1, length(data) / 2) WHERE chunk = 0", 0, A_EXACT | A_ERROR,
     "snapshot", "{t}_snapshot is damaged", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"snapshot chunk bit-flipped", "thb", 0, flip_snapshot, A_EXACT | A_ERROR, "snapshot", "{t}_snapshot is damaged",
     R_REPAIRS, 0, 0, 0, {7, 305}},
    {"first of two snapshot chunks missing", "b", "DELETE FROM {t}_snapshot WHERE chunk = 0", 0, A_EXACT | A_ERROR,
     "snapshot", "{t}_snapshot is damaged", R_REPAIRS, 0, 0, 0, {7, 4505}},
    {"last of two snapshot chunks missing", "b", "DELETE FROM {t}_snapshot WHERE chunk = 1", 0, A_EXACT | A_ERROR,
     "snapshot", "{t}_snapshot is damaged", R_REPAIRS, 0, 0, 0, {4400, 4505}},
    {"extra snapshot chunk", "thb",
     "INSERT INTO {t}_snapshot(chunk, data) SELECT max(chunk) + 1, x'00112233' FROM {t}_snapshot", 0,
     A_EXACT | A_ERROR, "snapshot", "{t}_snapshot is damaged", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"snapshot chunk as text", "th", "UPDATE {t}_snapshot SET data = 'not a snapshot' WHERE chunk = 0", 0,
     A_EXACT | A_ERROR, "snapshot", "{t}_snapshot is damaged", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"snapshot size, chunk count and checksum rows missing", "th",
     "DELETE FROM {t}_config WHERE key IN ('snapshot_bytes', 'snapshot_chunks', 'snapshot_checksum')", 0,
     A_EXACT | A_ERROR, "snapshot", "{t}_snapshot is damaged", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"snapshot_gen row missing", "th", "DELETE FROM {t}_config WHERE key = 'snapshot_gen'", 0, A_EXACT, 0,
     "no 'snapshot_gen' row", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"snapshot_gen zeroed", "th", "UPDATE {t}_config SET value = 0 WHERE key = 'snapshot_gen'", 0, A_EXACT, 0,
     "'snapshot_gen' is 0 but {t}_snapshot holds", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"snapshot_gen as text", "th", "UPDATE {t}_config SET value = 'one' WHERE key = 'snapshot_gen'", 0, A_EXACT, 0,
     "row 'snapshot_gen' is text 'one'", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"snapshot_gen negative", "th", "UPDATE {t}_config SET value = -3 WHERE key = 'snapshot_gen'", 0, A_EXACT, 0,
     "row 'snapshot_gen' is integer '-3'", R_REPAIRS, 0, 0, 0, {7, 305}},

    /* vector rows: a row the snapshot holds is served from the index until a rebuild (A_STALE); a logged row is
    ** read back from the table, so its damage is an error */
    {"vector row of a snapshot row missing", "th", "DELETE FROM {t}_vectors WHERE rowid = 7", 0,
     A_EXACT | A_ERROR | A_STALE, 0, "without a vector (rowid 7)", R_LEAVES, 0, "DELETE FROM {t} WHERE rowid = 7", 0,
     {7, 0}},
    {"vector row of a logged row missing", "th", "DELETE FROM {t}_vectors WHERE rowid = 305", 0, A_EXACT | A_ERROR, 0,
     "rowid 305", R_LEAVES, 0, "DELETE FROM {t} WHERE rowid = 305", 0, {305, 0}},
    {"vector of a snapshot row as text of the right length", "th",
     "UPDATE {t}_vectors SET embedding = substr(hex(embedding), 1, length(embedding)) WHERE rowid = 7", 0,
     A_EXACT | A_ERROR | A_STALE, "rowid 7", "stored vector of rowid 7 is text", R_FAILS, "rowid 7 is text",
     "UPDATE {t} SET embedding = " V8 " WHERE rowid = 7", 0, {7, 0}},
    {"vector of a logged row as text of the right length", "th",
     "UPDATE {t}_vectors SET embedding = substr(hex(embedding), 1, length(embedding)) WHERE rowid = 305", 0,
     A_EXACT | A_ERROR, "rowid 305", "stored vector of rowid 305 is text", R_FAILS, "rowid 305 is text",
     "UPDATE {t} SET embedding = " V8 " WHERE rowid = 305", 0, {305, 0}},
    {"vector of an updated row as an integer", "th", "UPDATE {t}_vectors SET embedding = 12345 WHERE rowid = 9", 0,
     A_EXACT | A_ERROR, "rowid 9", "stored vector of rowid 9 is an integer", R_FAILS, "rowid 9",
     "UPDATE {t} SET embedding = " V8 " WHERE rowid = 9", 0, {9, 0}},
    {"vector of a snapshot row as a real", "th", "UPDATE {t}_vectors SET embedding = 1.5 WHERE rowid = 8", 0,
     A_EXACT | A_ERROR | A_STALE, "rowid 8", "stored vector of rowid 8 is a real", R_FAILS, "rowid 8",
     "UPDATE {t} SET embedding = " V8 " WHERE rowid = 8", 0, {8, 0}},
    {"vector blob of a snapshot row too long", "th",
     "UPDATE {t}_vectors SET embedding = zeroblob(length(embedding) + 4) WHERE rowid = 11", 0,
     A_EXACT | A_ERROR | A_STALE, "rowid 11", "stored vector of rowid 11 has 36 bytes", R_FAILS, "rowid 11",
     "DELETE FROM {t} WHERE rowid = 11", 0, {11, 0}},
    {"vector blob of a logged row too short", "th",
     "UPDATE {t}_vectors SET embedding = substr(embedding, 1, 12) WHERE rowid = 306", 0, A_EXACT | A_ERROR,
     "rowid 306", "stored vector of rowid 306 has 12 bytes", R_FAILS, "rowid 306",
     "UPDATE {t} SET embedding = " V8 " WHERE rowid = 306", 0, {306, 0}},
    {"NaN in the vector of a snapshot row", "th", 0, nan_in_12, A_EXACT | A_ERROR | A_STALE, "rowid 12",
     "stored vector of rowid 12 holds a non-finite value", R_FAILS, "rowid 12",
     "UPDATE {t} SET embedding = " V8 " WHERE rowid = 12", 0, {12, 0}},
    {"infinity in the vector of a logged row", "th", 0, inf_in_307, A_EXACT | A_ERROR, "rowid 307",
     "stored vector of rowid 307 holds a non-finite value", R_FAILS, "rowid 307", "DELETE FROM {t} WHERE rowid = 307",
     0, {307, 0}},
    {"vector row without a document", "th",
     "INSERT INTO {t}_vectors(rowid, embedding) SELECT 9999, embedding FROM {t}_vectors WHERE rowid = 7", 0,
     A_EXACT, 0, "without a document (rowid 9999)", R_LEAVES, 0,
     "INSERT INTO {t}(rowid, id, embedding) VALUES (9999, 'adopted', " V8 ")", 0, {7, 0}},

    /* document rows */
    {"document row of a snapshot row missing", "th", "DELETE FROM {t}_docs WHERE rowid = 12", 0, A_EXACT | A_ERROR,
     "not in {t}_docs", "without a document (rowid 12)", R_LEAVES, 0,
     "INSERT INTO {t}(rowid, id, embedding) VALUES (12, 'doc-12', " V8 ")", 0, {12, 0}},
    {"document row of a logged row missing", "th", "DELETE FROM {t}_docs WHERE rowid = 308", 0, A_EXACT | A_ERROR,
     "not in {t}_docs", "rowid 308", R_LEAVES, 0,
     "INSERT INTO {t}(rowid, id, embedding) VALUES (308, 'doc-308', " V8 ")", 0, {308, 0}},
    {"document id as a blob", "thc", "UPDATE {t}_docs SET id = x'00ff' WHERE rowid = 13", 0, A_EXACT, 0,
     "document of rowid 13 in {t}_docs is damaged: id is blob", R_LEAVES, 0,
     "UPDATE {t} SET id = 'doc-13' WHERE rowid = 13", 0, {13, 0}},
    {"metadata not JSON", "th", "UPDATE {t}_docs SET metadata = 'not json {' WHERE rowid = 14", 0, A_EXACT, 0,
     "rowid 14 in {t}_docs is damaged: metadata is not valid JSON", R_LEAVES, 0,
     "UPDATE {t} SET metadata = '{\"n\": 14}' WHERE rowid = 14", 0, {14, 0}},
    {"metadata a JSON array", "th", "UPDATE {t}_docs SET metadata = '[1, 2]' WHERE rowid = 14", 0, A_EXACT, 0,
     "rowid 14 in {t}_docs is damaged: metadata is a JSON array", R_LEAVES, 0,
     "UPDATE {t} SET metadata = '{}' WHERE rowid = 14", 0, {14, 0}},
    {"metadata a blob", "th", "UPDATE {t}_docs SET metadata = x'7b7d' WHERE rowid = 14", 0, A_EXACT, 0,
     "rowid 14 in {t}_docs is damaged: metadata is blob", R_LEAVES, 0,
     "UPDATE {t} SET metadata = '{}' WHERE rowid = 14", 0, {14, 0}},
    {"declared INTEGER column holding text", "c", "UPDATE c_docs SET page = 'seven' WHERE rowid = 15", 0, A_EXACT, 0,
     "rowid 15 in c_docs is damaged: column page is text", R_LEAVES, 0, "UPDATE c SET page = 1 WHERE rowid = 15", 0,
     {15, 0}},
    {"declared REAL column holding text", "c", "UPDATE c_docs SET weight = 'heavy' WHERE rowid = 15", 0, A_EXACT, 0,
     "rowid 15 in c_docs is damaged: column weight is text", R_LEAVES, 0, "UPDATE c SET weight = 2 WHERE rowid = 15",
     0, {15, 0}},
    {"declared TEXT column holding a blob", "c", "UPDATE c_docs SET src = x'00' WHERE rowid = 15", 0, A_EXACT, 0,
     "rowid 15 in c_docs is damaged: column src is blob", R_LEAVES, 0, "UPDATE c SET src = 'x' WHERE rowid = 15", 0,
     {15, 0}},

    /* the log: the entries' rowids are re-read from the vector table, never trusted */
    {"log entry for a rowid that has no vector", "th", "INSERT INTO {t}_log(rowid, op) VALUES (123456, 0)", 0, A_EXACT,
     0, "{t}_log", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"log entry deleting a live row", "th", "INSERT INTO {t}_log(rowid, op) VALUES (7, 1)", 0, A_EXACT, 0, "{t}_log",
     R_REPAIRS, 0, 0, 0, {7, 305}},
    {"log entry setting a deleted row", "th", "INSERT INTO {t}_log(rowid, op) VALUES (2, 0)", 0, A_EXACT, 0, "{t}_log",
     R_REPAIRS, 0, 0, 0, {7, 305}},
    {"log entry with an unknown op", "th", "INSERT INTO {t}_log(rowid, op) VALUES (7, 9)", 0, A_EXACT, 0,
     "{t}_log entry", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"log entry with a text rowid", "th", "INSERT INTO {t}_log(rowid, op) VALUES ('seven', 0)", 0, A_EXACT, 0,
     "{t}_log entry", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"log entry with a blob op", "th", "INSERT INTO {t}_log(rowid, op) VALUES (7, x'01')", 0, A_EXACT, 0,
     "{t}_log entry", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"log entry at seq 2^63-1", "th", "INSERT INTO {t}_log(seq, rowid, op) VALUES (9223372036854775807, 305, 1)", 0,
     A_EXACT, 0, "{t}_log", R_REPAIRS, 0, 0, 0, {305, 7}},
    {"log entry at a negative seq", "th", "INSERT INTO {t}_log(seq, rowid, op) VALUES (-5, 7, 1)", 0, A_EXACT, 0,
     "{t}_log", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"last log entries deleted", "th", "DELETE FROM {t}_log WHERE seq > (SELECT max(seq) - 5 FROM {t}_log)", 0,
     A_EXACT | A_ERROR, 0, "{t}_log", R_REPAIRS, 0, 0, 0, {330, 326}},
    {"first log entries deleted", "th", "DELETE FROM {t}_log WHERE seq <= 5", 0, A_EXACT | A_ERROR, 0, "{t}_log",
     R_REPAIRS, 0, 0, 0, {301, 305}},
    {"log emptied", "thb", "DELETE FROM {t}_log", 0, A_EXACT | A_ERROR, 0, "{t}_log", R_REPAIRS, 0, 0, 0, {305, 9}},
    {"log_seq row wrong", "th", "UPDATE {t}_config SET value = value + 3 WHERE key = 'log_seq'", 0, A_EXACT | A_ERROR,
     0, "{t}_log", R_REPAIRS, 0, 0, 0, {305, 9}},

    /* configuration rows */
    {"config dim wrong", "th", "UPDATE {t}_config SET value = 9 WHERE key = 'dim'", 0, A_EXACT, 0,
     "{t}_config row 'dim' is integer '9', expected 8", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"config dim as text", "th", "UPDATE {t}_config SET value = 'eight' WHERE key = 'dim'", 0, A_EXACT, 0,
     "{t}_config row 'dim' is text 'eight'", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"config dim missing", "th", "DELETE FROM {t}_config WHERE key = 'dim'", 0, A_EXACT, 0,
     "{t}_config table has no 'dim' row", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"config metric wrong", "th", "UPDATE {t}_config SET value = 'cosine' WHERE key = 'metric'", 0, A_EXACT, 0,
     "row 'metric' is text 'cosine', expected l2", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"config format unknown", "th", "UPDATE {t}_config SET value = 2 WHERE key = 'format'", 0, A_EXACT | A_ERROR,
     "format", "row 'format' is integer '2', expected 1", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"config index unknown", "th", "UPDATE {t}_config SET value = 'Bogus99' WHERE key = 'index'", 0,
     A_EXACT | A_ERROR, "Bogus99", "row 'index' is text 'Bogus99'", R_FAILS, "invalid index 'Bogus99'",
     "INSERT INTO {t}({t}) VALUES ('index=' || CASE '{t}' WHEN 'h' THEN 'HNSW16' ELSE 'Flat' END)", 0, {7, 305}},
    {"config index of another type", "th",
     "UPDATE {t}_config SET value = CASE WHEN value = 'Flat' THEN 'IVF4,Flat' ELSE 'HNSW8' END WHERE key = 'index'", 0,
     A_EXACT, 0, "row 'index' is text", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"config index missing", "th", "DELETE FROM {t}_config WHERE key = 'index'", 0, A_EXACT | A_ERROR, "index",
     "{t}_config table has no 'index' row", R_REPAIRS, 0, 0, 0, {7, 305}},
    {"config search_params invalid", "h", "UPDATE {t}_config SET value = 'efSearch=abc' WHERE key = 'search_params'",
     0, A_ERROR, "efSearch=abc", "efSearch=abc", R_FAILS, "efSearch=abc", 0,
     "UPDATE {t}_config SET value = 'efSearch=512' WHERE key = 'search_params'", {7, 305}},
};

/* The queries for zTab: NQ random vectors plus the base vectors of the focus rows; returns how many. */
static int case_queries(const TabInfo *pT, const i64 *aFocus, float *aOut) {
  int n = 0;
  for (int i = 0; i < NQ; i++) memcpy(aOut + (size_t)n++ * pT->nDim, pT->aQ + (size_t)i * pT->nDim, pT->nDim * 4);
  for (int i = 0; i < 2; i++) {
    const float *v = aFocus[i] ? rows_vec(pT->pBase, aFocus[i]) : 0;
    if (v) memcpy(aOut + (size_t)n++ * pT->nDim, v, (size_t)pT->nDim * 4);
  }
  return n;
}

/* Searches on db: each query's outcome must be one of eAllow (A_EXACT: equal to the brute force over pStored,
** A_STALE: over the base rows, A_ERROR: a vecstore error containing zErrFrag when given). */
static void check_searches(sqlite3 *db, const TabInfo *pT, const Rows *pStored, const float *aQ, int nQ, int eAllow,
                           const char *zErrFrag, const char *zWhat, char **pzFail) {
  for (int i = 0; i < nQ; i++) {
    const float *q = aQ + (size_t)i * pT->nDim;
    Hit aGot[KK], aWant[KK], aBase[KK];
    char *zErr = 0;
    int n = sql_knn(db, pT->zName, q, pT->nDim, KK, aGot, KK, &zErr);
    if (n < 0) {
      if (!(eAllow & A_ERROR)) {
        note(pzFail, "%s, query %d: search failed: %s", zWhat, i, zErr);
      } else if (strncmp(zErr, "vecstore: ", 10) != 0 || (zErrFrag && strstr(zErr, zErrFrag) == 0)) {
        note(pzFail, "%s, query %d: unclear error (expected 'vecstore: ...%s...'): %s", zWhat, i,
             zErrFrag ? zErrFrag : "", zErr);
      }
      sqlite3_free(zErr);
      continue;
    }
    int nWant = pStored ? exact_knn(pStored, q, KK, aWant) : -1;
    int nBase = exact_knn(pT->pBase, q, KK, aBase);
    int bOk = ((eAllow & A_EXACT) && pStored && same_hits(aGot, n, aWant, nWant)) ||
              ((eAllow & A_STALE) && same_hits(aGot, n, aBase, nBase));
    if (!bOk) {
      char *zGot = format_hits(aGot, n), *zWant = pStored ? format_hits(aWant, nWant) : 0;
      char *zBase = format_hits(aBase, nBase);
      note(pzFail, "%s, query %d: wrong answer\n      got        %s\n      stored     %s\n      committed  %s%s",
           zWhat, i, zGot, zWant ? zWant : "(unreadable)", zBase,
           (eAllow & A_STALE) ? "" : "  (only 'stored' is right here)");
      sqlite3_free(zGot);
      sqlite3_free(zWant);
      sqlite3_free(zBase);
    }
  }
}

/* integrity-check on db fails with a vecstore error containing zFrag (bFail) or passes (!bFail). */
static void check_integrity(sqlite3 *db, const char *zTab, int bFail, const char *zFrag, const char *zWhat,
                            char **pzFail) {
  char *zSql = sqlite3_mprintf("INSERT INTO \"%w\"(\"%w\") VALUES ('integrity-check')", zTab, zTab);
  char *zErr = try_exec(db, zSql);
  sqlite3_free(zSql);
  if (!bFail && zErr) note(pzFail, "%s: integrity-check failed: %s", zWhat, zErr);
  if (bFail && zErr == 0) note(pzFail, "%s: integrity-check passed, expected an error naming '%s'", zWhat, zFrag);
  if (bFail && zErr && (strncmp(zErr, "vecstore: ", 10) != 0 || strstr(zErr, zFrag) == 0)) {
    note(pzFail, "%s: integrity-check error does not name '%s': %s", zWhat, zFrag, zErr);
  }
  sqlite3_free(zErr);
}

/* Runs one case on one table; failures go to *pzFail. */
static void run_case(const Case *pCase, const char *zTab, char **pzFail) {
  TabInfo *pT = tab_info(zTab);
  char *zPath = tu_path("case.db");
  tu_copy_file(g_zBase, zPath);
  char zWhat[200];
  float aQ[(NQ + 2) * BDIM];
  int nQ = case_queries(pT, pCase->aFocus, aQ);
  char *zCheck = expand(pCase->zCheck, zTab);
  char *zSearchErr = pCase->zSearchErr ? expand(pCase->zSearchErr, zTab) : 0;

  /* a connection that holds the index from before the damage */
  sqlite3 *pCached = open_db(zPath);
  snprintf(zWhat, sizeof(zWhat), "[%s on %s] before the damage", pCase->zName, zTab);
  check_searches(pCached, pT, pT->pBase, aQ, nQ, A_EXACT, 0, zWhat, pzFail);

  sqlite3 *plain = open_plain(zPath);
  if (pCase->zDamage) {
    char *zSql = expand(pCase->zDamage, zTab);
    tu_exec(plain, zSql);
    sqlite3_free(zSql);
  } else {
    pCase->xDamage(plain, zTab);
  }
  Rows *pStored = rows_load(plain, zTab, pT->nDim);

  sqlite3 *db = open_db(zPath);
  snprintf(zWhat, sizeof(zWhat), "[%s on %s] fresh connection", pCase->zName, zTab);
  check_searches(db, pT, pStored, aQ, nQ, pCase->eAllow, zSearchErr, zWhat, pzFail);
  check_integrity(db, zTab, 1, zCheck, zWhat, pzFail);
  snprintf(zWhat, sizeof(zWhat), "[%s on %s] connection loaded before the damage", pCase->zName, zTab);
  check_searches(pCached, pT, pStored, aQ, nQ, A_EXACT | A_ERROR | A_STALE, zSearchErr, zWhat, pzFail);
  check_integrity(pCached, zTab, 1, zCheck, zWhat, pzFail);
  close_db(pCached);

  /* 'rebuild', then the repair */
  snprintf(zWhat, sizeof(zWhat), "[%s on %s] 'rebuild'", pCase->zName, zTab);
  char *zSql = sqlite3_mprintf("INSERT INTO \"%w\"(\"%w\") VALUES ('rebuild')", zTab, zTab);
  char *zErr = try_exec(db, zSql);
  sqlite3_free(zSql);
  if (pCase->eRebuild == R_FAILS) {
    if (zErr == 0) {
      note(pzFail, "%s succeeded, expected an error naming '%s'", zWhat, pCase->zRebuildErr);
    } else if (strncmp(zErr, "vecstore: ", 10) != 0 || strstr(zErr, pCase->zRebuildErr) == 0) {
      note(pzFail, "%s: error does not name '%s': %s", zWhat, pCase->zRebuildErr, zErr);
    }
  } else if (zErr) {
    note(pzFail, "%s failed: %s", zWhat, zErr);
  } else {
    snprintf(zWhat, sizeof(zWhat), "[%s on %s] after 'rebuild'", pCase->zName, zTab);
    /* the index now comes from the stored vectors; a row without a document is still an error to read */
    check_searches(db, pT, pStored, aQ, nQ, pCase->eRebuild == R_REPAIRS ? A_EXACT : A_EXACT | A_ERROR, 0, zWhat,
                   pzFail);
    check_integrity(db, zTab, pCase->eRebuild == R_LEAVES, zCheck, zWhat, pzFail);
  }
  sqlite3_free(zErr);
  if (pCase->eRebuild != R_REPAIRS) {
    snprintf(zWhat, sizeof(zWhat), "[%s on %s] repair", pCase->zName, zTab);
    if (pCase->zRepair) {
      char *zRepair = expand(pCase->zRepair, zTab);
      zErr = try_exec(db, zRepair);
      if (zErr) note(pzFail, "%s '%s' failed: %s", zWhat, zRepair, zErr);
      sqlite3_free(zErr);
      sqlite3_free(zRepair);
    } else {
      char *zRepair = expand(pCase->zRepairPlain, zTab);
      tu_exec(plain, zRepair);
      sqlite3_free(zRepair);
    }
    rows_free(pStored);
    pStored = rows_load(plain, zTab, pT->nDim);
    check_searches(db, pT, pStored, aQ, nQ, A_EXACT, 0, zWhat, pzFail);
    check_integrity(db, zTab, 0, 0, zWhat, pzFail);
  }
  close_db(db);

  /* the repaired table, reopened */
  db = open_db(zPath);
  snprintf(zWhat, sizeof(zWhat), "[%s on %s] repaired, reopened", pCase->zName, zTab);
  check_searches(db, pT, pStored, aQ, nQ, A_EXACT, 0, zWhat, pzFail);
  check_integrity(db, zTab, 0, 0, zWhat, pzFail);
  close_db(db);
  close_db(plain);

  rows_free(pStored);
  sqlite3_free(zCheck);
  sqlite3_free(zSearchErr);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/* Every case of aCase whose name starts with zPrefix (all when NULL). */
static void run_cases(const char *zPrefix) {
  char *zFail = 0;
  int nRun = 0;
  for (size_t i = 0; i < sizeof(aCase) / sizeof(aCase[0]); i++) {
    if (zPrefix && strncmp(aCase[i].zName, zPrefix, strlen(zPrefix)) != 0) continue;
    for (const char *z = aCase[i].zTabs; *z; z++) {
      char zTab[2] = {*z, 0};
      run_case(&aCase[i], zTab, &zFail);
      nRun++;
    }
  }
  assert_true(nRun > 0);
  report(zFail);
}

static void test_damaged_snapshot(void **state) {
  (void)state;
  run_cases("snapshot");
  run_cases("first of two");
  run_cases("last of two");
  run_cases("extra snapshot");
}
static void test_damaged_vectors(void **state) {
  (void)state;
  run_cases("vector");
  run_cases("NaN");
  run_cases("infinity");
}
static void test_damaged_documents(void **state) {
  (void)state;
  run_cases("document");
  run_cases("metadata");
  run_cases("declared");
}
static void test_damaged_log(void **state) {
  (void)state;
  run_cases("log");
  run_cases("last log");
  run_cases("first log");
}
static void test_damaged_config(void **state) {
  (void)state;
  run_cases("config");
}

/* A shadow table dropped by hand: every search and integrity-check fails naming it, and DROP TABLE still removes
** the table and what is left of its shadow tables, so that it can be created again. */
static void test_dropped_shadow_table(void **state) {
  (void)state;
  static const char *const azSuffix[] = {"config", "docs", "vectors", "log", "snapshot"};
  char *zFail = 0;
  char *zPath = tu_path("dropped.db");
  for (int iTab = 0; iTab < 2; iTab++) {
    TabInfo *pT = &g_aTab[iTab];
    for (int i = 0; i < 5; i++) {
      tu_copy_file(g_zBase, zPath);
      sqlite3 *plain = open_plain(zPath);
      tu_exec_fmt(plain, "DROP TABLE \"%w_%w\"", pT->zName, azSuffix[i]);
      close_db(plain);
      char zWhat[100], zShadow[40];
      snprintf(zWhat, sizeof(zWhat), "[%s_%s dropped]", pT->zName, azSuffix[i]);
      snprintf(zShadow, sizeof(zShadow), "%s_%s", pT->zName, azSuffix[i]);
      sqlite3 *db = open_db(zPath);
      float aQ[(NQ + 2) * BDIM];
      i64 aFocus[2] = {7, 305};
      int nQ = case_queries(pT, aFocus, aQ);
      check_searches(db, pT, 0, aQ, nQ, A_ERROR, zShadow, zWhat, &zFail);
      check_integrity(db, pT->zName, 1, zShadow, zWhat, &zFail);
      char zDrop[40];
      char *zErr = try_exec(db, sqlite3_snprintf(sizeof(zDrop), zDrop, "DROP TABLE %s", pT->zName));
      if (zErr) note(&zFail, "[%s dropped] DROP TABLE %s failed: %s", zShadow, pT->zName, zErr);
      sqlite3_free(zErr);
      i64 nLeft = qint(db, "SELECT count(*) FROM sqlite_master WHERE name LIKE '%q\\_%%' ESCAPE '\\'", pT->zName);
      if (nLeft) note(&zFail, "[%s dropped] DROP TABLE left %lld shadow objects", zShadow, nLeft);
      tu_exec_fmt(db, "CREATE VIRTUAL TABLE \"%w\" USING vecstore(dim=8)", pT->zName);
      tu_exec_fmt(db, "INSERT INTO \"%w\"(rowid, embedding) VALUES (1, " V8 ")", pT->zName);
      assert_int_equal(qint(db, "SELECT rowid FROM \"%w\" WHERE embedding MATCH " V8 " AND k = 1", pT->zName), 1);
      close_db(db);
    }
  }
  tu_remove_db(zPath);
  sqlite3_free(zPath);
  report(zFail);
}

/* The table's declaration in sqlite_master edited (writable_schema) to another dim: clear errors, then the
** original declaration works again. */
static void test_declaration_edited(void **state) {
  (void)state;
  char *zPath = tu_path("declaration.db");
  tu_copy_file(g_zBase, zPath);
  sqlite3 *plain = open_plain(zPath);
  tu_exec(plain, "PRAGMA writable_schema = ON");
  tu_exec(plain, "UPDATE sqlite_master SET sql = replace(sql, 'dim=8', 'dim=9') WHERE name IN ('t', 'h')");
  close_db(plain);
  for (int iTab = 0; iTab < 2; iTab++) {
    sqlite3 *db = open_db(zPath);
    const char *zTab = g_aTab[iTab].zName;
    float q[9] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f};
    char *zErr = 0;
    Hit aHit[KK];
    int n = sql_knn(db, zTab, q, 9, KK, aHit, KK, &zErr);
    if (n >= 0) fail_msg("%s declared dim=9 over dim-8 vectors: the search returned %d rows", zTab, n);
    if (strncmp(zErr, "vecstore: ", 10) != 0 || strstr(zErr, "expected 36 (dim=9)") == 0) {
      fail_msg("%s declared dim=9 over dim-8 vectors: unclear error: %s", zTab, zErr);
    }
    sqlite3_free(zErr);
    char *zSql = sqlite3_mprintf("INSERT INTO %s(%s) VALUES ('integrity-check')", zTab, zTab);
    tu_expect_error(db, zSql, "vecstore: ", "dim", NULL);
    sqlite3_free(zSql);
    close_db(db);
  }
  plain = open_plain(zPath);
  tu_exec(plain, "PRAGMA writable_schema = ON");
  tu_exec(plain, "UPDATE sqlite_master SET sql = replace(sql, 'dim=9', 'dim=8') WHERE name IN ('t', 'h')");
  close_db(plain);
  sqlite3 *db = open_db(zPath);
  char *zFail = 0;
  for (int iTab = 0; iTab < 2; iTab++) {
    TabInfo *pT = &g_aTab[iTab];
    float aQ[(NQ + 2) * BDIM];
    i64 aFocus[2] = {7, 305};
    int nQ = case_queries(pT, aFocus, aQ);
    check_searches(db, pT, pT->pBase, aQ, nQ, A_EXACT, 0, "declaration restored", &zFail);
    check_integrity(db, pT->zName, 0, 0, "declaration restored", &zFail);
  }
  close_db(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
  report(zFail);
}

/* A log entry at seq 2^63-1 (the next entries would get random sequence numbers, below it): a writer's commit
** replaces the log by a snapshot, so that a connection that had replayed the log, and a fresh one, see the new
** row; and a log emptied by hand is not laundered by the next commit appending to it. */
static void test_log_edited_then_written(void **state) {
  (void)state;
  static const char *const azDamage[] = {
      "INSERT INTO {t}_log(seq, rowid, op) VALUES (9223372036854775807, 305, 0)",
      "DELETE FROM {t}_log",
      "DELETE FROM {t}_log WHERE seq > (SELECT max(seq) - 3 FROM {t}_log)",
  };
  char *zFail = 0;
  char *zPath = tu_path("logwrite.db");
  for (int iTab = 0; iTab < 2; iTab++) {
    TabInfo *pT = &g_aTab[iTab];
    for (size_t iDamage = 0; iDamage < sizeof(azDamage) / sizeof(azDamage[0]); iDamage++) {
      tu_copy_file(g_zBase, zPath);
      char zWhat[200];
      snprintf(zWhat, sizeof(zWhat), "[%s on %s]", azDamage[iDamage], pT->zName);
      float aQ[(NQ + 2) * BDIM];
      i64 aFocus[2] = {305, 330};
      int nQ = case_queries(pT, aFocus, aQ);
      sqlite3 *pReader = open_db(zPath);
      check_searches(pReader, pT, pT->pBase, aQ, nQ, A_EXACT, 0, zWhat, &zFail);
      sqlite3 *plain = open_plain(zPath);
      char *zSql = expand(azDamage[iDamage], pT->zName);
      tu_exec(plain, zSql);
      sqlite3_free(zSql);
      /* the reader replays or reloads; then a writer commits one row */
      check_searches(pReader, pT, pT->pBase, aQ, nQ, A_EXACT, 0, zWhat, &zFail);
      sqlite3 *pWriter = open_db(zPath);
      float aNew[DIM] = {0.9f, 0.9f, 0.9f, 0.9f, 0.9f, 0.9f, 0.9f, 0.9f};
      tu_exec_fmt(pWriter,
            "INSERT INTO \"%w\"(rowid, id, embedding) VALUES (7777, 'new', '[0.9,0.9,0.9,0.9,0.9,0.9,0.9,0.9]')",
            pT->zName);
      Rows *pStored = rows_load(plain, pT->zName, pT->nDim);
      memcpy(aQ + (size_t)nQ * pT->nDim, aNew, sizeof(aNew));
      nQ++;
      char zWho[260];
      snprintf(zWho, sizeof(zWho), "%s reader after a write", zWhat);
      check_searches(pReader, pT, pStored, aQ, nQ, A_EXACT, 0, zWho, &zFail);
      snprintf(zWho, sizeof(zWho), "%s writer", zWhat);
      check_searches(pWriter, pT, pStored, aQ, nQ, A_EXACT, 0, zWho, &zFail);
      sqlite3 *pFresh = open_db(zPath);
      snprintf(zWho, sizeof(zWho), "%s fresh connection after a write", zWhat);
      check_searches(pFresh, pT, pStored, aQ, nQ, A_EXACT, 0, zWho, &zFail);
      check_integrity(pFresh, pT->zName, 0, 0, zWho, &zFail);
      close_db(pFresh);
      close_db(pWriter);
      close_db(pReader);
      close_db(plain);
      rows_free(pStored);
    }
  }
  tu_remove_db(zPath);
  sqlite3_free(zPath);
  report(zFail);
}

/**************************************************************************************************
** Child processes: this binary re-executed with CHILD_ENV=<job>, the base file in CHILD_BASE_ENV. A child prints
** what went wrong on stderr and exits 1; a crash or a hang (alarm) is a signal.
*/

#define CHILD_BASE_ENV "VECSTORE_TEST_RELIABILITY_BASE"

/* Runs job in a child process; returns NULL when it exited 0, else a description with its output. */
static char *run_child(const char *zJob) {
  char zExe[4096];
  ssize_t nExe = readlink("/proc/self/exe", zExe, sizeof(zExe) - 1);
  assert_true(nExe > 0);
  zExe[nExe] = 0;
  int aPipe[2];
  assert_int_equal(pipe(aPipe), 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(aPipe[0]);
    dup2(aPipe[1], 2);
    setenv(CHILD_ENV, zJob, 1);
    setenv(CHILD_BASE_ENV, g_zBase, 1);
    execl(zExe, "test_reliability", (char *)0);
    _exit(127);
  }
  close(aPipe[1]);
  sqlite3_str *pOut = sqlite3_str_new(0);
  char aBuf[4096];
  ssize_t n;
  while ((n = read(aPipe[0], aBuf, sizeof(aBuf))) > 0) {
    if (sqlite3_str_length(pOut) < 20000) sqlite3_str_append(pOut, aBuf, (int)n);
  }
  close(aPipe[0]);
  char *zOut = sqlite3_str_finish(pOut);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  char *zRet = 0;
  if (WIFSIGNALED(status)) {
    zRet = sqlite3_mprintf("child job '%s' was killed by signal %d (%s)%s\n%s", zJob, WTERMSIG(status),
                           strsignal(WTERMSIG(status)), WTERMSIG(status) == SIGALRM ? ": it hung" : "",
                           zOut ? zOut : "");
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    zRet = sqlite3_mprintf("child job '%s' failed (exit %d):\n%s", zJob, WEXITSTATUS(status), zOut ? zOut : "");
  }
  sqlite3_free(zOut);
  return zRet;
}

/* In a child: limits the address space to what the process maps now plus nExtra bytes, so that an allocation
** proportional to a huge k or parameter fails instead of being granted lazily. */
static void limit_address_space(i64 nExtra) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long nPages = 0;
  if (f == 0 || fscanf(f, "%lu", &nPages) != 1) {
    fprintf(stderr, "cannot read /proc/self/statm\n");
    exit(1);
  }
  fclose(f);
  struct rlimit lim;
  lim.rlim_cur = lim.rlim_max = (rlim_t)nPages * (rlim_t)sysconf(_SC_PAGESIZE) + (rlim_t)nExtra;
  if (setrlimit(RLIMIT_AS, &lim) != 0) {
    fprintf(stderr, "setrlimit failed\n");
    exit(1);
  }
}

/* The base rows and queries, as the parent has them. */
static void child_load_base(void) {
  g_zBase = sqlite3_mprintf("%s", getenv(CHILD_BASE_ENV));
  sqlite3 *plain = open_plain(g_zBase);
  for (size_t i = 0; i < 2; i++) { /* t and h */
    g_aTab[i].pBase = rows_load(plain, g_aTab[i].zName, g_aTab[i].nDim);
    uint64_t seed = 1000 + i;
    rand_vec(&seed, g_aTab[i].aQ, NQ * g_aTab[i].nDim);
  }
  close_db(plain);
}


/* Offsets of the fields of a serialised IndexHNSWFlat inside a vecstore snapshot of version 2: index.c's header,
** label map and description; faiss_shim.cpp's section (flags, then levels, offsets, neighbors and the storage's
** codes, each a uint64 count and its elements); then Faiss's write_index of the rest: fourcc, index header, the
** HNSW vectors (the three stored above empty) and scalars. */
typedef struct HnswLayout {
  size_t iCum, nCum;          /* cum_nneighbor_per_level: int32 */
  size_t iLevels, nLevels;    /* levels: int32 */
  size_t iOffsets, nOffsets;  /* offsets: size_t */
  size_t iNeighbors, nNeighbors; /* neighbors: int32 */
  size_t iCodes, nCodes;      /* the storage's codes: bytes */
  size_t iFlags;              /* the section's flags: uint32 */
  size_t aCount[4];           /* offsets of the section's four counts: levels, offsets, neighbors, codes */
  size_t iEntry, iMaxLevel;   /* int32 */
} HnswLayout;

/* Reads a uint64 count at a[*pi] and steps over it and its n elements of nSize bytes; 0 past the end. */
static int layout_array(const unsigned char *a, size_t n, size_t *pi, size_t nSize, size_t *piStart,
                        size_t *pnCount) {
  uint64_t c;
  if (*pi + 8 > n) return 0;
  memcpy(&c, a + *pi, 8);
  if (c > (n - *pi - 8) / nSize) return 0;
  *piStart = *pi + 8;
  *pnCount = (size_t)c;
  *pi += 8 + (size_t)c * nSize;
  return 1;
}

static int hnsw_layout(const unsigned char *a, size_t n, HnswLayout *p) {
  int32_t nDesc;
  int64_t nLabel;
  uint32_t version, flags;
  memcpy(&version, a + 4, 4);
  memcpy(&nDesc, a + 20, 4);
  memcpy(&nLabel, a + 24, 8);
  size_t i = 40 + (size_t)nLabel * 8 + (size_t)nDesc;
  if (version != 2 || i + 4 > n) return 0;
  p->iFlags = i;
  memcpy(&flags, a + i, 4);
  if (flags != 3) return 0; /* the HNSW graph and the flat codes */
  i += 4;
  size_t aSect[] = {4, 8, 4, 1}; /* levels, offsets, neighbors, codes */
  size_t aStart[5], aCount[5];
  for (int k = 0; k < 4; k++) {
    p->aCount[k] = i;
    if (!layout_array(a, n, &i, aSect[k], &aStart[k], &aCount[k])) return 0;
  }
  p->iLevels = aStart[0], p->nLevels = aCount[0];
  p->iOffsets = aStart[1], p->nOffsets = aCount[1];
  p->iNeighbors = aStart[2], p->nNeighbors = aCount[2];
  p->iCodes = aStart[3], p->nCodes = aCount[3];
  if (i + 4 > n || memcmp(a + i, "IHNf", 4) != 0) return 0;
  i += 4 + 4 + 8 + 8 + 8 + 1; /* fourcc, d, ntotal, two dummies, is_trained */
  int32_t metric;
  if (i + 4 > n) return 0;
  memcpy(&metric, a + i, 4);
  i += 4 + (metric > 1 ? 4 : 0);
  size_t aSize[] = {8, 4, 4, 8, 4}; /* assign_probas, cum, levels, offsets, neighbors (the last three empty) */
  for (int k = 0; k < 5; k++) {
    if (!layout_array(a, n, &i, aSize[k], &aStart[k], &aCount[k])) return 0;
    if (k >= 2 && aCount[k] != 0) return 0;
  }
  p->iCum = aStart[1], p->nCum = aCount[1];
  p->iEntry = i;
  p->iMaxLevel = i + 4;
  return i + 8 <= n;
}

static void put32(unsigned char *a, size_t i, int32_t v) { memcpy(a + i, &v, 4); }
static void put64(unsigned char *a, size_t i, int64_t v) { memcpy(a + i, &v, 8); }

/* Child job: HNSW snapshots whose graph was edited and whose checksum, size and chunk count were recomputed, as a
** stranger's file can do: a search and integrity-check must not crash or hang, and fail cleanly if they fail. */
static const char *const azForgedEdit[] = {"entry point 10^9", "entry point -7", "max level 10^6",
                                            "neighbors 10^9", "neighbor counts per level 2^30", "levels 1000",
                                            "section flags 1 (graph only)", "section flags 7 (unknown bit)",
                                            "section: levels count 2^40", "section: codes count 2^40",
                                            "section: offsets 2^40", "section: codes count 3 (not whole vectors)"};
#define N_FORGED_EDIT ((int)(sizeof(azForgedEdit) / sizeof(azForgedEdit[0])))

static int child_forged(int iEdit) {
  child_load_base();
  const char *const *azEdit = azForgedEdit;
  char *zPath = tu_path("forged.db");
  int nBad = 0;
  {
    tu_copy_file(g_zBase, zPath);
    sqlite3 *plain = open_plain(zPath);
    sqlite3_stmt *pStmt = tu_prepare(plain, "SELECT data FROM h_snapshot WHERE chunk = 0");
    assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
    size_t n = (size_t)sqlite3_column_bytes(pStmt, 0);
    unsigned char *a = malloc(n);
    memcpy(a, sqlite3_column_blob(pStmt, 0), n);
    sqlite3_finalize(pStmt);
    HnswLayout L;
    if (qint(plain, "SELECT count(*) FROM h_snapshot") != 1 || !hnsw_layout(a, n, &L)) {
      fprintf(stderr, "the HNSW snapshot layout is not the expected one\n");
      return 1;
    }
    switch (iEdit) {
      case 0: put32(a, L.iEntry, 1000000000); break;
      case 1: put32(a, L.iEntry, -7); break;
      case 2: put32(a, L.iMaxLevel, 1000000); break;
      case 3:
        for (size_t k = 0; k < L.nNeighbors; k += 3) put32(a, L.iNeighbors + 4 * k, 1000000000 + (int32_t)k);
        break;
      case 4:
        for (size_t k = 1; k < L.nCum; k++) put32(a, L.iCum + 4 * k, 1 << 30);
        break;
      case 5:
        for (size_t k = 0; k < L.nLevels; k++) put32(a, L.iLevels + 4 * k, 1000);
        break;
      case 6: put32(a, L.iFlags, 1); break;
      case 7: put32(a, L.iFlags, 7); break;
      case 8: put64(a, L.aCount[0], (int64_t)1 << 40); break;
      case 9: put64(a, L.aCount[3], (int64_t)1 << 40); break;
      case 10:
        for (size_t k = 1; k < L.nOffsets; k++) put64(a, L.iOffsets + 8 * k, (int64_t)1 << 40);
        break;
      default: /* 3 codes, then the rest of the codes read as Faiss's part */
        put64(a, L.aCount[3], 3);
        break;
    }
    pStmt = tu_prepare(plain, "UPDATE h_snapshot SET data = ?1 WHERE chunk = 0");
    sqlite3_bind_blob(pStmt, 1, a, (int)n, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(pStmt), SQLITE_DONE);
    sqlite3_finalize(pStmt);
    tu_exec_fmt(plain, "UPDATE h_config SET value = %lld WHERE key = 'snapshot_checksum'",
          (long long)tu_chunk_checksum(0, a, n));
    free(a);
    close_db(plain);

    fprintf(stderr, "forged HNSW snapshot: %s\n", azEdit[iEdit]);
    alarm(10);
    sqlite3 *db = open_db(zPath);
    TabInfo *pT = tab_info("h");
    for (int i = 0; i < NQ; i++) {
      Hit aHit[KK];
      char *zErr = 0;
      int nHit = sql_knn(db, "h", pT->aQ + (size_t)i * DIM, DIM, KK, aHit, KK, &zErr);
      if (nHit < 0 && strncmp(zErr, "vecstore: ", 10) != 0) {
        fprintf(stderr, "  search: error without the vecstore prefix: %s\n", zErr);
        nBad++;
      }
      for (int k = 0; k < nHit && k < KK; k++) {
        if (!rows_vec(pT->pBase, aHit[k].iRowid)) {
          fprintf(stderr, "  search returned rowid %lld, which the table does not hold\n", aHit[k].iRowid);
          nBad++;
        }
      }
      sqlite3_free(zErr);
    }
    char *zErr = try_exec(db, "INSERT INTO h(h) VALUES ('integrity-check')");
    if (zErr && strncmp(zErr, "vecstore: ", 10) != 0) {
      fprintf(stderr, "  integrity-check: error without the vecstore prefix: %s\n", zErr);
      nBad++;
    }
    sqlite3_free(zErr);
    /* 'rebuild' from the stored vectors repairs whatever the graph held */
    zErr = try_exec(db, "INSERT INTO h(h) VALUES ('rebuild')");
    if (zErr) {
      fprintf(stderr, "  'rebuild' failed: %s\n", zErr);
      nBad++;
    }
    sqlite3_free(zErr);
    char *zFail = 0;
    check_searches(db, pT, pT->pBase, pT->aQ, NQ, A_EXACT, 0, "after 'rebuild'", &zFail);
    if (zFail) {
      fprintf(stderr, "%s\n", zFail);
      nBad++;
    }
    close_db(db);
    alarm(0);
  }
  tu_remove_db(zPath);
  sqlite3_free(zPath);
  return nBad ? 1 : 0;
}

static void test_forged_hnsw_snapshot(void **state) {
  (void)state;
  char *zFail = 0;
  for (int i = 0; i < N_FORGED_EDIT; i++) {
    char zJob[32];
    snprintf(zJob, sizeof(zJob), "forged %d", i);
    char *zErr = run_child(zJob);
    if (zErr) note(&zFail, "%s", zErr);
    sqlite3_free(zErr);
  }
  report(zFail);
}

/**************************************************************************************************
** Resource limits.
*/

/* Child job: huge k, fetch_k and LIMIT, alone and with filters and MMR, under an address-space limit of 1 GiB more
** than the process maps after a first search: each search returns the exact rows, so no allocation grows with k. */
static int child_limits(void) {
  child_load_base();
  char *zPath = tu_path("limits.db");
  tu_copy_file(g_zBase, zPath);
  sqlite3 *db = open_db(zPath);
  static const i64 aK[] = {1000000000LL, 4611686018427387904LL, 9223372036854775807LL};
  int nBad = 0;
  for (int iTab = 0; iTab < 2; iTab++) {
    TabInfo *pT = &g_aTab[iTab];
    Hit aHit[KK];
    char *zErr = 0;
    if (sql_knn(db, pT->zName, pT->aQ, DIM, KK, aHit, KK, &zErr) != KK) {
      fprintf(stderr, "warm-up search on %s failed: %s\n", pT->zName, zErr ? zErr : "wrong count");
      return 1;
    }
  }
  limit_address_space((i64)1 << 30);
  for (int iTab = 0; iTab < 2; iTab++) {
    TabInfo *pT = &g_aTab[iTab];
    const Rows *pB = pT->pBase;
    Hit *aWant = malloc(sizeof(Hit) * ((size_t)pB->n + 1));
    Hit *aGot = malloc(sizeof(Hit) * ((size_t)pB->n + 8));
    for (int iK = 0; iK < 3; iK++) {
      i64 k = aK[iK];
      for (int iQ = 0; iQ < NQ; iQ++) {
        const float *q = pT->aQ + (size_t)iQ * DIM;
        int nAll = exact_knn(pB, q, pB->n, aWant);
        struct {
          const char *zWhat;
          char *zSql;
          int nWant; /* -1: the MMR check (all rows, each once) */
          const Hit *aWant;
        } aRun[6];
        int nRun = 0;
        aRun[nRun].zWhat = "k";
        aRun[nRun].zSql = sqlite3_mprintf("SELECT rowid, id, distance FROM %s WHERE embedding MATCH ?1 AND k = %lld",
                                          pT->zName, k);
        aRun[nRun].nWant = nAll;
        aRun[nRun++].aWant = aWant;
        aRun[nRun].zWhat = "LIMIT";
        aRun[nRun].zSql = sqlite3_mprintf("SELECT rowid, id, distance FROM %s WHERE embedding MATCH ?1 ORDER BY "
                                          "distance LIMIT %lld", pT->zName, k);
        aRun[nRun].nWant = nAll;
        aRun[nRun++].aWant = aWant;
        aRun[nRun].zWhat = "fetch_k with k = 5";
        aRun[nRun].zSql = sqlite3_mprintf("SELECT rowid, id, distance FROM %s WHERE embedding MATCH ?1 AND k = 5 AND "
                                          "fetch_k = %lld", pT->zName, k);
        aRun[nRun].nWant = 5;
        aRun[nRun++].aWant = aWant;
        aRun[nRun].zWhat = "k with distance < the median";
        aRun[nRun].zSql = sqlite3_mprintf("SELECT rowid, id, distance FROM %s WHERE embedding MATCH ?1 AND k = %lld "
                                          "AND distance < %.17g", pT->zName, k,
                                          (aWant[nAll / 2 - 1].rDist + aWant[nAll / 2].rDist) / 2);
        aRun[nRun].nWant = nAll / 2;
        aRun[nRun++].aWant = aWant;
        aRun[nRun].zWhat = "MMR with k = fetch_k";
        aRun[nRun].zSql = sqlite3_mprintf("SELECT rowid, id, distance FROM %s WHERE embedding MATCH ?1 AND k = %lld "
                                          "AND fetch_k = %lld AND lambda_mult = 0.5", pT->zName, k, k);
        aRun[nRun].nWant = -1;
        aRun[nRun++].aWant = 0;
        for (int iRun = 0; iRun < nRun; iRun++) {
          char *zErr = 0;
          int n = sql_hits(db, aRun[iRun].zSql, q, DIM, aGot, pB->n + 8, &zErr);
          int bOk;
          if (aRun[iRun].nWant >= 0) {
            bOk = n >= 0 && same_hits(aGot, n, aRun[iRun].aWant, aRun[iRun].nWant);
          } else {
            bOk = n == pB->n;
            for (int a = 0; bOk && a < n; a++) {
              bOk = rows_vec(pB, aGot[a].iRowid) != 0;
              for (int b = 0; bOk && b < a; b++) bOk = aGot[a].iRowid != aGot[b].iRowid;
            }
          }
          if (!bOk) {
            fprintf(stderr, "%s, %s = %lld, query %d: %s (%d rows, expected %d)\n", pT->zName, aRun[iRun].zWhat, k,
                    iQ, zErr ? zErr : "wrong rows", n, aRun[iRun].nWant < 0 ? pB->n : aRun[iRun].nWant);
            nBad++;
          }
          sqlite3_free(zErr);
          sqlite3_free(aRun[iRun].zSql);
        }
      }
    }
    free(aWant);
    free(aGot);
  }
  close_db(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
  return nBad ? 1 : 0;
}

static void test_huge_k(void **state) {
  (void)state;
  char *zErr = run_child("limits");
  report(zErr);
  /* k, fetch_k and lambda_mult out of range are errors that name them */
  sqlite3 *db = open_db(g_zBase);
  static const struct {
    const char *zCond;
    const char *zFrag;
  } aBad[] = {{"k = -1", "k must be"},
              {"k = -9223372036854775808", "k must be"},
              {"k = 1e300", "k must be"},
              {"k = 2.5", "k must be"},
              {"k = 'many'", "k must be"},
              {"fetch_k = -1", "fetch_k must be"},
              {"fetch_k = 1e300", "fetch_k must be"},
              {"k = 3 AND lambda_mult = 2", "lambda_mult"},
              {"k = 3 AND lambda_mult = -0.5", "lambda_mult"}};
  for (int iTab = 0; iTab < 2; iTab++) {
    for (size_t i = 0; i < sizeof(aBad) / sizeof(aBad[0]); i++) {
      char *zSql = sqlite3_mprintf("SELECT count(*) FROM %s WHERE embedding MATCH " V8 " AND %s", g_aTab[iTab].zName,
                                   aBad[i].zCond);
      tu_expect_error(db, zSql, "vecstore: ", aBad[i].zFrag, NULL);
      sqlite3_free(zSql);
    }
  }
  close_db(db);
}

/* Faiss parameters that size allocations: search parameters (per query, then as the table's default) and
** index_factory numbers. */
static const struct {
  const char *zTab;
  const char *zParams;
} aHugeParam[] = {{"h", "efSearch=1000000000"}, {"h", "efSearch=4000000000"}, {"h", "efSearch=1e300"},
                  {"v", "nprobe=1000000000"},   {"v", "nprobe=1e300"},        {"v", "max_codes=1e300"}};
static const char *const azHugeIndex[] = {"IVF1000000000,Flat", "IVF100000000,Flat", "HNSW1000000000", "NSG32",
                                          "NSG1000000000", "PQ2x32", "PQ4x64", "IVF4,PQ2x32", "PCA1000000000,Flat",
                                          "RR1000000000,Flat", "HNSW0", "HNSW1", "IVF0,Flat", "PQ0x4", "PQ3",
                                          "OPQ3,IVF4,PQ4", "NSG0"};
#define N_HUGE_PARAM ((int)(sizeof(aHugeParam) / sizeof(aHugeParam[0])))
#define N_HUGE_INDEX ((int)(sizeof(azHugeIndex) / sizeof(azHugeIndex[0])))

/* An error that says what went wrong (not just that Faiss threw). */
static int clear_error(const char *zErr) {
  return strncmp(zErr, "vecstore: ", 10) == 0 && strstr(zErr, "std::exception") == 0 && strstr(zErr, "bad_alloc") == 0;
}

/* Child job "param N" / "index N": one of the cases above, under an address-space limit of 1 GiB more than the
** process maps after warming up: an error that says what is wrong, or a correct answer; never a crash, an abort
** or an error that only says std::exception. */
static int child_params(int bIndex, int iCase) {
  child_load_base();
  char *zPath = tu_path("params.db");
  tu_copy_file(g_zBase, zPath);
  sqlite3 *db = open_db(zPath);
  int nBad = 0;
  TabInfo *pH = tab_info("h");
  int bIvf = !bIndex && strcmp(aHugeParam[iCase / 2].zTab, "v") == 0;
  if (bIvf) {
    /* nprobe = nlist: a refused default leaves searches exact, so every answer can be checked against brute force */
    tu_exec(db, "CREATE VIRTUAL TABLE v USING vecstore(dim=8, index='IVF4,Flat', search_params='nprobe=4')");
    tu_exec(db, "INSERT INTO v(rowid, embedding) SELECT rowid, embedding FROM h_vectors");
    tu_exec(db, "INSERT INTO v(v) VALUES ('train')");
  }
  Hit aHit[KK];
  char *zErr = 0;
  if (sql_knn(db, "h", pH->aQ, DIM, KK, aHit, KK, &zErr) != KK ||
      (bIvf && sql_knn(db, "v", pH->aQ, DIM, KK, aHit, KK, &zErr) != KK)) {
    fprintf(stderr, "warm-up failed: %s\n", zErr ? zErr : "?");
    return 1;
  }
  limit_address_space((i64)1 << 30);
  if (!bIndex) {
    const char *zTab = aHugeParam[iCase / 2].zTab, *zParams = aHugeParam[iCase / 2].zParams;
    int bDefault = iCase % 2;
    fprintf(stderr, "%s with %s%s:\n", zTab, zParams, bDefault ? " as the default" : " for the query");
    char *zSql;
    if (bDefault) {
      zSql = sqlite3_mprintf("INSERT INTO %s(%s) VALUES ('search_params=%s')", zTab, zTab, zParams);
      zErr = try_exec(db, zSql);
      sqlite3_free(zSql);
      if (zErr && !clear_error(zErr)) {
        fprintf(stderr, "  the command failed with an unclear error: %s\n", zErr);
        nBad++;
      }
      sqlite3_free(zErr);
      zSql = sqlite3_mprintf("SELECT rowid, id, distance FROM %s WHERE embedding MATCH ?1 AND k = 10", zTab);
    } else {
      zSql = sqlite3_mprintf("SELECT rowid, id, distance FROM %s WHERE embedding MATCH ?1 AND k = 10 AND "
                             "search_params = '%s'", zTab, zParams);
    }
    for (int iQ = 0; iQ < NQ; iQ++) {
      Hit aWant[KK];
      const float *q = pH->aQ + (size_t)iQ * DIM;
      zErr = 0;
      int n = sql_hits(db, zSql, q, DIM, aHit, KK, &zErr);
      int nWant = exact_knn(pH->pBase, q, KK, aWant);
      if (n < 0 && !clear_error(zErr)) {
        fprintf(stderr, "  unclear error: %s\n", zErr);
        nBad++;
      } else if (n >= 0 && !same_hits(aHit, n, aWant, nWant)) {
        fprintf(stderr, "  wrong answer for query %d\n", iQ);
        nBad++;
      }
      sqlite3_free(zErr);
    }
    sqlite3_free(zSql);
  } else {
    const char *zIndex = azHugeIndex[iCase];
    fprintf(stderr, "index '%s':\n", zIndex);
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE x USING vecstore(dim=8, index='%s')", zIndex);
    zErr = try_exec(db, zSql);
    sqlite3_free(zSql);
    if (zErr) {
      if (!clear_error(zErr) || strstr(zErr, zIndex) == 0) {
        fprintf(stderr, "  CREATE: unclear error: %s\n", zErr);
        nBad++;
      }
      sqlite3_free(zErr);
    } else {
      static const char *const azStep[] = {
          "INSERT INTO x(rowid, embedding) SELECT rowid, embedding FROM h_vectors WHERE rowid <= 3",
          "INSERT INTO x(rowid, embedding) SELECT rowid, embedding FROM h_vectors WHERE rowid > 3",
          "INSERT INTO x(x) VALUES ('train')",
          "INSERT INTO x(x) VALUES ('integrity-check')",
      };
      for (size_t iStep = 0; iStep < sizeof(azStep) / sizeof(azStep[0]); iStep++) {
        zErr = try_exec(db, azStep[iStep]);
        if (zErr && !clear_error(zErr)) {
          fprintf(stderr, "  %s: unclear error: %s\n", azStep[iStep], zErr);
          nBad++;
        }
        sqlite3_free(zErr);
        zErr = 0;
        int n = sql_knn(db, "x", pH->aQ, DIM, KK, aHit, KK, &zErr);
        if (n < 0 && !clear_error(zErr)) {
          fprintf(stderr, "  search after '%s': unclear error: %s\n", azStep[iStep], zErr);
          nBad++;
        }
        sqlite3_free(zErr);
      }
    }
  }
  close_db(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
  return nBad ? 1 : 0;
}

static void test_huge_faiss_parameters(void **state) {
  (void)state;
  char *zFail = 0;
  for (int bIndex = 0; bIndex < 2; bIndex++) {
    for (int i = 0; i < (bIndex ? N_HUGE_INDEX : 2 * N_HUGE_PARAM); i++) {
      char zJob[32];
      snprintf(zJob, sizeof(zJob), "%s %d", bIndex ? "index" : "param", i);
      char *zErr = run_child(zJob);
      if (zErr) note(&zFail, "%s", zErr);
      sqlite3_free(zErr);
    }
  }
  report(zFail);
}

/* dim: 1..65536 at CREATE; vectors of more dimensions than the table, up to 100k, are errors; a dim-65536 table
** works. */
static void test_huge_dim(void **state) {
  (void)state;
  sqlite3 *db = open_db(":memory:");
  static const char *const azDim[] = {"1000000000", "1099511627776", "4294967304", "65537", "100000", "0", "-1",
                                      "1e3", "0x10", "9223372036854775808"};
  for (size_t i = 0; i < sizeof(azDim) / sizeof(azDim[0]); i++) {
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE d USING vecstore(dim=%s)", azDim[i]);
    tu_expect_error(db, zSql, "vecstore: dim must be an integer from 1 to 65536", azDim[i], NULL);
    sqlite3_free(zSql);
  }
  tu_exec(db, "CREATE VIRTUAL TABLE d USING vecstore(dim=65536, index='HNSW16')");
  tu_exec(db, "CREATE VIRTUAL TABLE s USING vecstore(dim=8)");
  const int nBig = 100000;
  float *aBig = malloc(sizeof(float) * (size_t)nBig);
  for (int i = 0; i < nBig; i++) aBig[i] = (float)((i % 7) - 3) / 4.0f;
  sqlite3_str *pJson = sqlite3_str_new(0);
  sqlite3_str_appendchar(pJson, 1, '[');
  for (int i = 0; i < nBig; i++) sqlite3_str_appendf(pJson, "%s%g", i ? "," : "", (double)aBig[i]);
  sqlite3_str_appendchar(pJson, 1, ']');
  char *zJson = sqlite3_str_finish(pJson);
  /* the first 65536 values as JSON, and as a blob */
  char *zJson64k = sqlite3_mprintf("%s", zJson);
  {
    char *z = zJson64k;
    int nComma = 0;
    while (*z && nComma < 65536) nComma += *z++ == ',';
    z[-1] = ']';
    *z = 0;
  }
  sqlite3_stmt *pStmt = tu_prepare(db, "INSERT INTO d(rowid, embedding) VALUES (1, ?1), (2, ?2)");
  sqlite3_bind_text(pStmt, 1, zJson64k, -1, SQLITE_STATIC);
  aBig[0] = 5.0f;
  sqlite3_bind_blob(pStmt, 2, aBig, 65536 * 4, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_DONE);
  sqlite3_finalize(pStmt);
  aBig[0] = -0.75f;
  pStmt = tu_prepare(db, "SELECT rowid FROM d WHERE embedding MATCH ?1 AND k = 2");
  sqlite3_bind_blob(pStmt, 1, aBig, 65536 * 4, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int64(pStmt, 0), 1);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int64(pStmt, 0), 2);
  sqlite3_finalize(pStmt);
  tu_exec(db, "INSERT INTO d(d) VALUES ('integrity-check')");
  /* 100k values: into the dim-65536 table, into a dim-8 table, as a query, to the vector functions */
  struct {
    const char *zSql;
    int bBlob;
    const char *zFrag;
  } aBad[] = {
      {"INSERT INTO d(embedding) VALUES (?1)", 0, "65536"},
      {"INSERT INTO d(embedding) VALUES (?1)", 1, "65536"},
      {"INSERT INTO s(embedding) VALUES (?1)", 0, "dimensions"},
      {"INSERT INTO s(embedding) VALUES (?1)", 1, "dimensions"},
      {"SELECT count(*) FROM d WHERE embedding MATCH ?1", 0, "65536"},
      {"SELECT count(*) FROM s WHERE embedding MATCH ?1", 1, "dimensions"},
      {"SELECT vecstore_vector(?1)", 0, "65536"},
      {"SELECT vecstore_normalize(?1)", 1, "65536"},
      {"SELECT vecstore_distance(?1, ?1)", 0, "65536"},
  };
  for (size_t i = 0; i < sizeof(aBad) / sizeof(aBad[0]); i++) {
    pStmt = tu_prepare(db, aBad[i].zSql);
    if (aBad[i].bBlob) sqlite3_bind_blob(pStmt, 1, aBig, nBig * 4, SQLITE_STATIC);
    else sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
    int rc = sqlite3_step(pStmt);
    const char *zErr = sqlite3_errmsg(db);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE || strncmp(zErr, "vecstore: ", 10) != 0 ||
        strstr(zErr, aBad[i].zFrag) == 0) {
      fail_msg("%s with a 100000-element %s: expected a vecstore error naming '%s', got %s: %s", aBad[i].zSql,
               aBad[i].bBlob ? "blob" : "JSON array", aBad[i].zFrag, sqlite3_errstr(rc), zErr);
    }
    sqlite3_finalize(pStmt);
  }
  assert_int_equal(tu_int(db, "SELECT count(*) FROM d"), 2);
  sqlite3_free(zJson);
  sqlite3_free(zJson64k);
  free(aBig);
  close_db(db);
}

/* Deep JSON nesting (100k levels) in vectors, metadata and filters: errors, found without deep recursion; a filter
** nested 500 deep still evaluates. */
static void test_deep_json(void **state) {
  (void)state;
  sqlite3 *db = open_db(":memory:");
  tu_exec(db, "CREATE VIRTUAL TABLE s USING vecstore(dim=2)");
  tu_exec(db, "INSERT INTO s(rowid, metadata, embedding) VALUES (1, '{\"a\": 1}', '[1, 2]')");
  const int nDeep = 100000;
  sqlite3_str *p = sqlite3_str_new(0);
  sqlite3_str_appendchar(p, nDeep, '[');
  sqlite3_str_appendchar(p, nDeep, ']');
  char *zArrays = sqlite3_str_finish(p);
  p = sqlite3_str_new(0);
  for (int i = 0; i < nDeep; i++) sqlite3_str_appendall(p, "{\"a\":");
  sqlite3_str_appendall(p, "1");
  sqlite3_str_appendchar(p, nDeep, '}');
  char *zObjects = sqlite3_str_finish(p);
  p = sqlite3_str_new(0);
  for (int i = 0; i < nDeep; i++) sqlite3_str_appendall(p, "{\"$not\":");
  sqlite3_str_appendall(p, "{}");
  sqlite3_str_appendchar(p, nDeep, '}');
  char *zNots = sqlite3_str_finish(p);
  p = sqlite3_str_new(0);
  for (int i = 0; i < nDeep; i++) sqlite3_str_appendall(p, "{\"$and\":[");
  sqlite3_str_appendall(p, "{}");
  for (int i = 0; i < nDeep; i++) sqlite3_str_appendall(p, "]}");
  char *zAnds = sqlite3_str_finish(p);
  p = sqlite3_str_new(0);
  sqlite3_str_appendall(p, "{\"a\":");
  sqlite3_str_appendall(p, zArrays);
  sqlite3_str_appendall(p, "}");
  char *zMetaDeep = sqlite3_str_finish(p);
  struct {
    const char *zSql;
    const char *zArg;
    const char *zFrag;
  } aCaseJson[] = {
      {"INSERT INTO s(embedding) VALUES (?1)", zArrays, "embedding"},
      {"SELECT count(*) FROM s WHERE embedding MATCH ?1", zArrays, "query vector"},
      {"SELECT vecstore_vector(?1)", zArrays, "vecstore_vector"},
      {"SELECT vecstore_to_json(?1)", zArrays, "vecstore_to_json"},
      {"SELECT vecstore_distance(?1, '[1]')", zArrays, "vecstore_distance"},
      {"INSERT INTO s(metadata, embedding) VALUES (?1, '[1, 2]')", zObjects, "metadata"},
      {"INSERT INTO s(metadata, embedding) VALUES (?1, '[1, 2]')", zArrays, "metadata"},
      {"SELECT vecstore_filter('{}', ?1)", zObjects, "filter"},
      {"SELECT vecstore_filter('{}', ?1)", zNots, "filter"},
      {"SELECT vecstore_filter('{}', ?1)", zAnds, "filter"},
      {"SELECT vecstore_filter('{}', ?1)", zArrays, "filter"},
      {"SELECT vecstore_filter(?1, '{\"a\": 1}')", zMetaDeep, "metadata"},
      {"SELECT vecstore_filter(?1, '{\"a\": 1}')", zObjects, "metadata"},
      {"SELECT count(*) FROM s WHERE embedding MATCH '[1, 2]' AND vecstore_filter(metadata, ?1)", zNots, "filter"},
  };
  for (size_t i = 0; i < sizeof(aCaseJson) / sizeof(aCaseJson[0]); i++) {
    sqlite3_stmt *pStmt = tu_prepare(db, aCaseJson[i].zSql);
    sqlite3_bind_text(pStmt, 1, aCaseJson[i].zArg, -1, SQLITE_STATIC);
    int rc = sqlite3_step(pStmt);
    const char *zErr = sqlite3_errmsg(db);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE || strncmp(zErr, "vecstore: ", 10) != 0 ||
        strstr(zErr, aCaseJson[i].zFrag) == 0) {
      fail_msg("%s with 100000 levels of nesting: expected a vecstore error naming '%s', got %s: %.200s",
               aCaseJson[i].zSql, aCaseJson[i].zFrag, sqlite3_errstr(rc), zErr);
    }
    sqlite3_finalize(pStmt);
  }
  assert_int_equal(tu_int(db, "SELECT count(*) FROM s"), 1);
  /* 500 levels evaluate: an even number of $not keeps the match, an odd one inverts it */
  for (int nNot = 499; nNot <= 500; nNot++) {
    p = sqlite3_str_new(0);
    for (int i = 0; i < nNot; i++) sqlite3_str_appendall(p, "{\"$not\":");
    sqlite3_str_appendall(p, "{\"a\": 1}");
    sqlite3_str_appendchar(p, nNot, '}');
    char *zFilter = sqlite3_str_finish(p);
    sqlite3_stmt *pStmt = tu_prepare(db, "SELECT vecstore_filter('{\"a\": 1}', ?1)");
    sqlite3_bind_text(pStmt, 1, zFilter, -1, SQLITE_STATIC);
    if (sqlite3_step(pStmt) != SQLITE_ROW) fail_msg("a filter of %d nested $not failed: %s", nNot, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_column_int(pStmt, 0), nNot % 2 == 0);
    sqlite3_finalize(pStmt);
    sqlite3_free(zFilter);
  }
  sqlite3_free(zArrays);
  sqlite3_free(zObjects);
  sqlite3_free(zNots);
  sqlite3_free(zAnds);
  sqlite3_free(zMetaDeep);
  close_db(db);
}

/**************************************************************************************************
** Defensive mode and untrusted schemas.
*/

/* A digest of every row of table zName (all columns, types included). */
static uint64_t table_digest(sqlite3 *db, const char *zName) {
  char *zSql = sqlite3_mprintf("SELECT * FROM \"%w\" ORDER BY 1", zName);
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  sqlite3_free(zSql);
  uint64_t h = 0;
  while (sqlite3_step(pStmt) == SQLITE_ROW) {
    for (int i = 0; i < sqlite3_column_count(pStmt); i++) {
      unsigned char eType = (unsigned char)sqlite3_column_type(pStmt, i);
      h = tu_chunk_checksum(h, &eType, 1);
      const void *p = sqlite3_column_blob(pStmt, i);
      h = tu_chunk_checksum(h, p, (size_t)sqlite3_column_bytes(pStmt, i));
    }
  }
  sqlite3_finalize(pStmt);
  return h;
}

/* SQLITE_DBCONFIG_DEFENSIVE: every way ordinary SQL could write, drop or alter a shadow table fails and changes
** nothing (Flat, HNSW and a table with declared columns), while the table itself keeps working; and a trigger on a
** shadow table, left in the file from before, cannot make vecstore's own writes run ordinary SQL on them. */
static void test_defensive_shadow_tables(void **state) {
  (void)state;
  static const char *const azSuffix[] = {"config", "docs", "vectors", "log", "snapshot"};
  static const char *const azWrite[] = {
      /* config */
      "INSERT INTO {t}_config(key, value) VALUES ('x', 1)", "INSERT OR REPLACE INTO {t}_config VALUES ('dim', 9)",
      "UPDATE {t}_config SET value = 9 WHERE key = 'dim'", "DELETE FROM {t}_config WHERE key = 'index'",
      "INSERT INTO {t}_config VALUES ('dim', 9) ON CONFLICT(key) DO UPDATE SET value = 9",
      /* docs */
      "INSERT INTO {t}_docs(rowid, id) VALUES (99999, 'x')", "UPDATE {t}_docs SET content = 'x' WHERE rowid = 7",
      "DELETE FROM {t}_docs WHERE rowid = 7", "REPLACE INTO {t}_docs(rowid, id) VALUES (7, 'x')",
      /* vectors */
      "INSERT INTO {t}_vectors(rowid, embedding) VALUES (99999, zeroblob(32))",
      "UPDATE {t}_vectors SET embedding = zeroblob(32) WHERE rowid = 7", "DELETE FROM {t}_vectors WHERE rowid = 7",
      "WITH r(x) AS (SELECT 7) DELETE FROM {t}_vectors WHERE rowid IN r",
      /* log */
      "INSERT INTO {t}_log(rowid, op) VALUES (7, 1)", "UPDATE {t}_log SET op = 1", "DELETE FROM {t}_log",
      /* snapshot */
      "INSERT INTO {t}_snapshot(chunk, data) VALUES (99, x'00')", "UPDATE {t}_snapshot SET data = x'00'",
      "DELETE FROM {t}_snapshot",
  };
  char *zPath = tu_path("defensive.db");
  tu_copy_file(g_zBase, zPath);
  sqlite3 *db = open_db(zPath);
  int bOn = 0;
  assert_int_equal(sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &bOn), SQLITE_OK);
  assert_int_equal(bOn, 1);
  tu_exec(db, "CREATE TABLE plain_src(x)");
  const char *azTab[] = {"t", "h", "c"};
  for (int iTab = 0; iTab < 3; iTab++) {
    const char *zTab = azTab[iTab];
    uint64_t aBefore[5];
    for (int i = 0; i < 5; i++) {
      char zName[32];
      snprintf(zName, sizeof(zName), "%s_%s", zTab, azSuffix[i]);
      aBefore[i] = table_digest(db, zName);
    }
    for (size_t i = 0; i < sizeof(azWrite) / sizeof(azWrite[0]); i++) {
      char *zSql = expand(azWrite[i], zTab);
      tu_expect_error(db, zSql, "may not be modified", NULL);
      sqlite3_free(zSql);
    }
    for (int i = 0; i < 5; i++) {
      struct {
        const char *zFmt;
        const char *zFrag;
      } aDdl[] = {
          {"DROP TABLE %s_%s", "may not be dropped"},
          {"ALTER TABLE %s_%s RENAME TO renamed", "may not be altered"},
          {"ALTER TABLE %s_%s ADD COLUMN extra", "may not be altered"},
          {"CREATE TRIGGER tw AFTER INSERT ON plain_src BEGIN DELETE FROM %s_%s; END", "may not write to shadow table"},
      };
      for (size_t j = 0; j < sizeof(aDdl) / sizeof(aDdl[0]); j++) {
        char *zSql = sqlite3_mprintf(aDdl[j].zFmt, zTab, azSuffix[i]);
        tu_expect_error(db, zSql, aDdl[j].zFrag, NULL);
        sqlite3_free(zSql);
      }
    }
    for (int i = 0; i < 5; i++) {
      char zName[32];
      snprintf(zName, sizeof(zName), "%s_%s", zTab, azSuffix[i]);
      if (table_digest(db, zName) != aBefore[i]) fail_msg("%s changed although every write was refused", zName);
    }
    tu_exec_fmt(db, "INSERT INTO \"%w\"(\"%w\") VALUES ('integrity-check')", zTab, zTab);
  }

  /* the tables work in defensive mode: writes, savepoints, commands, searches */
  for (int iTab = 0; iTab < 3; iTab++) {
    const char *zTab = azTab[iTab];
    uint64_t seed = 77 + iTab;
    tu_exec(db, "BEGIN");
    insert_random(db, zTab, DIM, 2001, 2050, &seed);
    tu_exec(db, "SAVEPOINT s1");
    insert_random(db, zTab, DIM, 2051, 2060, &seed);
    tu_exec_fmt(db, "DELETE FROM \"%w\" WHERE rowid BETWEEN 100 AND 120", zTab);
    tu_exec(db, "ROLLBACK TO s1");
    tu_exec(db, "RELEASE s1");
    update_random(db, zTab, DIM, 50, &seed);
    tu_exec_fmt(db, "DELETE FROM \"%w\" WHERE rowid BETWEEN 60 AND 64", zTab);
    tu_exec(db, "COMMIT");
    tu_exec_fmt(db, "INSERT INTO \"%w\"(\"%w\") VALUES ('optimize')", zTab, zTab);
    insert_random(db, zTab, DIM, 2061, 2062, &seed);
    tu_exec_fmt(db, "INSERT INTO \"%w\"(\"%w\") VALUES ('rebuild')", zTab, zTab);
    tu_exec_fmt(db, "INSERT INTO \"%w\"(\"%w\") VALUES ('integrity-check')", zTab, zTab);
    sqlite3 *plain = open_plain(zPath);
    Rows *pStored = rows_load(plain, zTab, DIM);
    close_db(plain);
    assert_int_equal(pStored->n, qint(db, "SELECT count(*) FROM \"%w\"", zTab));
    assert_int_equal(qint(db, "SELECT count(*) FROM \"%w\" WHERE rowid BETWEEN 2051 AND 2060", zTab), 0);
    char *zFail = 0;
    check_searches(db, tab_info(zTab), pStored, tab_info(zTab)->aQ, NQ, A_EXACT, 0, "defensive mode", &zFail);
    rows_free(pStored);
    report(zFail);
  }

  /* a trigger on a shadow table, created before defensive mode was turned on */
  assert_int_equal(sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 0, &bOn), SQLITE_OK);
  tu_exec(db, "CREATE TRIGGER sneaky AFTER INSERT ON h_vectors BEGIN DELETE FROM h_log; DELETE FROM h_docs WHERE "
              "rowid = 7; END");
  assert_int_equal(sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &bOn), SQLITE_OK);
  uint64_t aBefore[5];
  for (int i = 0; i < 5; i++) {
    char zName[32];
    snprintf(zName, sizeof(zName), "h_%s", azSuffix[i]);
    aBefore[i] = table_digest(db, zName);
  }
  tu_expect_error(db, "INSERT INTO h(rowid, embedding) VALUES (3001, " V8 ")", "vecstore: ", "trigger 'sneaky'",
                  "h_vectors", NULL);
  tu_expect_error(db, "DELETE FROM h WHERE rowid = 8", "vecstore: ", "trigger 'sneaky'", NULL);
  for (int i = 0; i < 5; i++) {
    char zName[32];
    snprintf(zName, sizeof(zName), "h_%s", azSuffix[i]);
    if (table_digest(db, zName) != aBefore[i]) fail_msg("%s changed through a trigger in defensive mode", zName);
  }
  /* reading still works, and the other tables write */
  assert_int_equal(qint(db, "SELECT count(*) FROM (SELECT rowid FROM h WHERE embedding MATCH " V8 " AND k = 5)"), 5);
  tu_exec(db, "INSERT INTO t(rowid, embedding) VALUES (3001, " V8 ")");
  /* with defensive mode off the trigger is the user's business; dropping it is the way back */
  assert_int_equal(sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 0, &bOn), SQLITE_OK);
  tu_exec(db, "DROP TRIGGER sneaky");
  assert_int_equal(sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &bOn), SQLITE_OK);
  tu_exec(db, "INSERT INTO h(rowid, embedding) VALUES (3001, " V8 ")");
  tu_exec(db, "INSERT INTO h(h) VALUES ('integrity-check')");
  close_db(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

static int g_nEmbedCalls;

/* An embedder for the tests: [length of the text, 1], counting its calls (a side effect). */
static void count_embed(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  g_nEmbedCalls++;
  float a[2] = {(float)sqlite3_value_bytes(argv[0]), 1.0f};
  sqlite3_result_blob(ctx, a, sizeof(a), SQLITE_TRANSIENT);
}

/* Untrusted schemas (trusted_schema off): vecstore's SQL functions are pure and SQLITE_INNOCUOUS, so views and
** generated columns may use them; vecstore_split is an innocuous table-valued function; a vecstore table, which
** writes and calls the embedder its definition names, is not innocuous, so views and triggers may not use it
** (SQLite's "unsafe use of virtual table"); and the embedder named by a table's definition is held to the rules
** for functions a schema calls: never a SQLITE_DIRECTONLY one, and only a SQLITE_INNOCUOUS one when the schema is
** untrusted. */
static void test_untrusted_schema(void **state) {
  (void)state;
  char *zPath = tu_path("untrusted.db");
  tu_remove_db(zPath);
  sqlite3 *db = open_db(zPath);

  /* the flags of every vecstore function */
  static const char *const azPure[] = {"vecstore_version", "vecstore_vector", "vecstore_to_json", "vecstore_distance",
                                       "vecstore_normalize", "vecstore_embed_hash", "vecstore_filter", 0};
  sqlite3_stmt *pStmt = tu_prepare(db, "SELECT name, flags FROM pragma_function_list WHERE name LIKE 'vecstore%'");
  int nFunc = 0;
  while (sqlite3_step(pStmt) == SQLITE_ROW) {
    const char *zName = (const char *)sqlite3_column_text(pStmt, 0);
    int flags = sqlite3_column_int(pStmt, 1);
    int bKnown = 0;
    for (int i = 0; azPure[i]; i++) bKnown = bKnown || strcmp(azPure[i], zName) == 0;
    if (!bKnown) fail_msg("new SQL function %s: decide whether it is pure (SQLITE_INNOCUOUS) or has side effects "
                          "(SQLITE_DIRECTONLY) and add it to this test", zName);
    if (!(flags & SQLITE_INNOCUOUS) || !(flags & SQLITE_DETERMINISTIC) || (flags & SQLITE_DIRECTONLY)) {
      fail_msg("%s: flags 0x%x, expected SQLITE_INNOCUOUS | SQLITE_DETERMINISTIC for a pure function", zName, flags);
    }
    nFunc++;
  }
  sqlite3_finalize(pStmt);
  assert_true(nFunc >= 7);

#define VF_EXPR                                                                                            \
  "vecstore_version() || ' ' || vecstore_to_json(vecstore_vector('[1, 2]')) || ' ' || "                     \
  "vecstore_distance('[1, 0]', '[0, 1]') || ' ' || vecstore_distance('[1, 0]', '[0, 1]', 'cosine') || ' ' "  \
  "|| vecstore_to_json(vecstore_normalize('[3, 4]')) || ' ' || length(vecstore_embed_hash('hello world', 8)) " \
  "|| ' ' || vecstore_filter('{\"a\": 1}', '{\"a\": 1}')"
  tu_exec(db, "CREATE VIEW vf AS SELECT " VF_EXPR " AS x");
  char *zDirect = tu_text(db, "SELECT " VF_EXPR);
  tu_exec(db, "CREATE VIEW vsplit AS SELECT count(*) AS n FROM vecstore_split('a b c d e f', 3, 0, ' ')");
  tu_exec(db, "CREATE TABLE g(v TEXT, d AS (vecstore_distance(v, '[0, 0]')), CHECK (vecstore_distance(v, v) = 0))");
  tu_exec(db, "CREATE VIRTUAL TABLE vt USING vecstore(dim=2)");
  tu_exec(db, "CREATE VIEW vtv AS SELECT count(*) AS n FROM vt");
  tu_exec(db, "CREATE TABLE src(x)");
  tu_exec(db, "CREATE TRIGGER src_ins AFTER INSERT ON src BEGIN INSERT INTO vt(embedding) VALUES (vecstore_vector('[' "
              "|| new.x || ', 1]')); END");
  sqlite3_create_function(db, "emb_plain", 1, SQLITE_UTF8, 0, count_embed, 0, 0);
  sqlite3_create_function(db, "emb_innocuous", 1, SQLITE_UTF8 | SQLITE_INNOCUOUS, 0, count_embed, 0, 0);
  sqlite3_create_function(db, "emb_direct", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, 0, count_embed, 0, 0);
  tu_exec(db, "CREATE VIRTUAL TABLE ep USING vecstore(dim=2, embedder=emb_plain)");
  tu_exec(db, "CREATE VIRTUAL TABLE ei USING vecstore(dim=2, embedder=emb_innocuous)");
  tu_exec(db, "CREATE VIRTUAL TABLE ed USING vecstore(dim=2, embedder=emb_direct)");
  tu_exec(db, "CREATE VIRTUAL TABLE el USING vecstore(dim=2, embedder=load_extension)");

  for (int bTrusted = 1; bTrusted >= 0; bTrusted--) {
    int bNow = -1;
    assert_int_equal(sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, bTrusted, &bNow), SQLITE_OK);
    assert_int_equal(bNow, bTrusted);
    /* innocuous functions and vecstore_split serve views and generated columns either way */
    tu_expect_text(db, "SELECT x FROM vf", zDirect);
    assert_int_equal(tu_int(db, "SELECT n FROM vsplit"),
                     tu_int(db, "SELECT count(*) FROM vecstore_split('a b c d e f', 3, 0, ' ')"));
    assert_true(tu_int(db, "SELECT n FROM vsplit") >= 2);
    tu_exec_fmt(db, "INSERT INTO g(v) VALUES ('[3, 4]')");
    assert_int_equal(tu_int(db, "SELECT d FROM g ORDER BY rowid DESC LIMIT 1"), 25);
    /* the vecstore table itself: directly always; from a view or a trigger only in a trusted schema */
    i64 nBefore = tu_int(db, "SELECT count(*) FROM vt");
    if (bTrusted) {
      assert_int_equal(tu_int(db, "SELECT n FROM vtv"), nBefore);
      tu_exec(db, "INSERT INTO src VALUES (5)");
      assert_int_equal(tu_int(db, "SELECT count(*) FROM vt"), nBefore + 1);
    } else {
      tu_expect_error(db, "SELECT n FROM vtv", "unsafe use of virtual table", NULL);
      tu_expect_error(db, "INSERT INTO src VALUES (6)", "unsafe use of virtual table", NULL);
      assert_int_equal(tu_int(db, "SELECT count(*) FROM vt"), nBefore);
      tu_exec(db, "INSERT INTO vt(embedding) VALUES ('[6, 1]')");
    }
    /* embedders */
    int nCalls = g_nEmbedCalls;
    tu_exec(db, "INSERT INTO ei(content) VALUES ('innocuous')");
    assert_int_equal(tu_int(db, "SELECT count(*) FROM (SELECT rowid FROM ei WHERE ei MATCH 'abc' AND k = 1)"), 1);
    assert_int_equal(g_nEmbedCalls, nCalls + 2);
    nCalls = g_nEmbedCalls;
    if (bTrusted) {
      tu_exec(db, "INSERT INTO ep(content) VALUES ('plain')");
      assert_int_equal(g_nEmbedCalls, nCalls + 1);
    } else {
      tu_expect_error(db, "INSERT INTO ep(content) VALUES ('plain')", "vecstore: ", "emb_plain",
                      "not marked SQLITE_INNOCUOUS", NULL);
      tu_expect_error(db, "SELECT count(*) FROM ep WHERE ep MATCH 'abc'", "vecstore: ", "not marked SQLITE_INNOCUOUS",
                      NULL);
      assert_int_equal(g_nEmbedCalls, nCalls);
    }
    nCalls = g_nEmbedCalls;
    tu_expect_error(db, "INSERT INTO ed(content) VALUES ('direct')", "vecstore: ", "emb_direct", "SQLITE_DIRECTONLY",
                    NULL);
    tu_expect_error(db, "SELECT count(*) FROM ed WHERE ed MATCH 'abc'", "vecstore: ", "SQLITE_DIRECTONLY", NULL);
    assert_int_equal(g_nEmbedCalls, nCalls);
    /* a built-in direct-only function named by a table definition is refused before it runs */
    tu_expect_error(db, "INSERT INTO el(content) VALUES ('/nonexistent/library')", "vecstore: ", "load_extension",
                    "SQLITE_DIRECTONLY", NULL);
  }
  assert_int_equal(tu_int(db, "SELECT count(*) FROM ed"), 0);
  assert_int_equal(tu_int(db, "SELECT count(*) FROM el"), 0);
  assert_int_equal(tu_int(db, "SELECT count(*) FROM ep"), 1);
  sqlite3_free(zDirect);
  close_db(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/**************************************************************************************************
** main
*/

sqlite3 *g_reliability_keeper; /* keeps vecstore.so loaded between tests (see test_storage.c) */

static int group_setup(void **state) {
  (void)state;
  g_reliability_keeper = open_db(":memory:");
  make_base();
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(g_aTab) / sizeof(g_aTab[0]); i++) rows_free(g_aTab[i].pBase);
  tu_remove_db(g_zBase);
  sqlite3_free(g_zBase);
  sqlite3_close(g_reliability_keeper);
  rmdir(tu_dir());
  return 0;
}

int main(void) {
  const char *zJob = getenv(CHILD_ENV);
  if (zJob) {
    int rc = 2;
    if (strncmp(zJob, "forged ", 7) == 0) rc = child_forged(atoi(zJob + 7));
    if (strcmp(zJob, "limits") == 0) rc = child_limits();
    if (strncmp(zJob, "param ", 6) == 0) rc = child_params(0, atoi(zJob + 6));
    if (strncmp(zJob, "index ", 6) == 0) rc = child_params(1, atoi(zJob + 6));
    for (size_t i = 0; i < sizeof(g_aTab) / sizeof(g_aTab[0]); i++) rows_free(g_aTab[i].pBase);
    sqlite3_free(g_zBase);
    rmdir(tu_dir());
    return rc;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_damaged_snapshot),
      cmocka_unit_test(test_damaged_vectors),
      cmocka_unit_test(test_damaged_documents),
      cmocka_unit_test(test_damaged_log),
      cmocka_unit_test(test_damaged_config),
      cmocka_unit_test(test_dropped_shadow_table),
      cmocka_unit_test(test_declaration_edited),
      cmocka_unit_test(test_log_edited_then_written),
      cmocka_unit_test(test_forged_hnsw_snapshot),
      cmocka_unit_test(test_huge_k),
      cmocka_unit_test(test_huge_faiss_parameters),
      cmocka_unit_test(test_huge_dim),
      cmocka_unit_test(test_deep_json),
      cmocka_unit_test(test_defensive_shadow_tables),
      cmocka_unit_test(test_untrusted_schema),
  };
  return cmocka_run_group_tests_name("reliability", tests, group_setup, group_teardown);
}
