/*
** soak.c: concurrency soak test (issue 6). Several processes, several threads in each, one connection per
** thread, all on one WAL database file with a busy timeout, for a bounded time.
**
**   soak [seconds] [processes] [threads]      (defaults: $SOAK_SECONDS or 30, 3, 3)
**
** Environment: VECSTORE_EXT (default build/vecstore), SOAK_DIR (where the database goes; default
** build/test-tmp; kept on failure), SOAK_SEED, SOAK_JOURNAL (journal mode, default WAL; DELETE makes readers
** hold locks that make COMMIT itself return SQLITE_BUSY), SOAK_BUSY_MS (busy timeout, default 5000).
**
** The file holds three vecstore tables and two ordinary ones:
**   vf  Flat (exact), dim 16, declared column grp INTEGER
**   vh  HNSW16 with efSearch=128, dim 16, declared column grp INTEGER
**   va  Flat, dim 16, written only by single autocommit statements
**   truth(tbl, rid, id, vgen, dgen)  one row per live row of vf and vh, written in the same transaction
**   ledger(tbl, n, sum_rid, chk, txn)  per table: row count and checksum of the committed state; row 'all'
**                                      holds the number of the last committed writer transaction
** Every row of vf/vh is derived from (rowid, vgen, dgen): embedding vec_of(rowid, vgen), content
** "r<rowid> v<vgen> d<dgen>", metadata {"d": dgen}, grp = dgen % 5. A va row with rowid r holds content
** "v<vgen>" and embedding vec_of(r + VA_SEED, vgen).
**
** Writers (BEGIN IMMEDIATE ... COMMIT) insert (given or assigned rowid), update vectors, documents and rowids,
** delete by rowid, id or condition, INSERT OR REPLACE, make statements fail on constraints (single and
** multi-row), use nested savepoints with ROLLBACK TO and RELEASE, roll whole transactions back, run
** ('optimize'), ('rebuild'), ('index=...') and ('search_params=...'), check read-your-writes searches inside
** the transaction, and update truth and ledger in the same transaction; now and then one creates or drops a
** scratch vecstore table (a schema change every connection must survive). Readers open one read transaction
** (BEGIN ... COMMIT) and check that everything the vecstore tables return agrees with truth and ledger of that
** snapshot: scans, counts, full search streams (every row, correct distances, Flat in order), k searches of a
** row's own vector (that row first at distance 0; Flat: the exact top k distances), pre-filtered searches on
** grp, rowid and id lookups, ORDER BY distance LIMIT, MMR; the ledger read again at the end must not have
** moved (snapshot isolation); some read transactions stay open for a few hundred milliseconds of repeated
** checks, some begin with a vecstore statement. A reader's next transaction must see every writer commit that
** returned before it began (a shared-memory counter), whatever process made it. Single-statement (autocommit)
** checks compare a vecstore count with the ledger inside one statement. At the end the parent checks the file
** from a fresh connection: PRAGMA integrity_check, ('integrity-check') of every table, and the full reader
** check, before and after ('optimize'). The parent loads the extension only after the last fork.
**
** SQLITE_BUSY is accepted only where SQLite can return it after the busy timeout (BEGIN IMMEDIATE, COMMIT,
** the statement that starts a read transaction, autocommit statements, prepare) and is then retried; after a
** busy COMMIT the writer sometimes goes on writing in the same transaction, sometimes rolls back. Any other
** error, and BUSY anywhere else, is a failure, printed with the SQL. A worker killed by a signal, or still
** running a minute after the deadline (a deadlock), is a failure. Exit status 0 only when nothing failed.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DIM 16
#define VA_SEED 1000000
#define VA_ROWS 400
#define MIN_ROWS 150
#define MAX_ROWS 600
#define MAX_FAIL_PRINTS 12
#define BUSY_TIMEOUT_MS 5000
#define NCACHE 192

typedef sqlite3_int64 i64;

/* Counters shared by every process (an anonymous shared mapping made before fork). */
typedef struct Shared {
  atomic_int stop;
  atomic_int nFail;
  atomic_llong committedTxn; /* highest ledger txn whose COMMIT has returned */
  atomic_llong nWriteTxn, nRollbackTxn, nWriteStmt, nAutoWrite, nReadTxn, nReadQuery, nAutoRead;
  atomic_llong nBusyBegin, nBusyCommit, nBusyRead, nBusyAuto, nCommand, nSavepoint, nLongRead;
  atomic_llong nCommitGoOn, nCommitGiveUp, nBusyPrepare, nDdl;
} Shared;
static Shared *g;

typedef struct Row {
  i64 rid;
  char zId[48];
  i64 vgen, dgen;
} Row;

typedef struct Cached {
  char *zSql;
  sqlite3_stmt *pStmt;
} Cached;

typedef struct Ctx {
  int iProc, iThread;
  const char *zRole;
  sqlite3 *db;
  uint64_t rng;
  i64 nIdSeq;
  Cached aCache[NCACHE];
  int nCache;
  Row *aRow; /* truth rows of the table being checked, by rowid */
  int nRow, nRowAlloc;
  int bFailed;
  int bScratch; /* this thread's scratch table exists */
} Ctx;

static const char *zDbPath;
static const char *zExtPath;
static double rDeadline;

/**************************************************************************************************
** Utilities.
*/

static double now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static int rnd(Ctx *c, int n) { return n <= 1 ? 0 : (int)(splitmix(&c->rng) % (uint64_t)n); }

/* The vector of a row: 16 values in [-1, 1) with 24-bit mantissas, a pure function of (key, gen). */
static void vec_of(i64 key, i64 gen, float *a) {
  uint64_t s = (uint64_t)key * 0x100000001B3ull ^ ((uint64_t)gen << 32) ^ 0x5EED;
  for (int i = 0; i < DIM; i++) a[i] = (float)((double)(splitmix(&s) >> 40) / 8388608.0 - 1.0);
}

static double l2(const float *a, const float *b) {
  double r = 0;
  for (int i = 0; i < DIM; i++) r += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  return r;
}

static int near(double a, double b) { return fabs(a - b) <= 1e-4 * (1 + fabs(b)); }

static void failf(Ctx *c, const char *zFmt, ...) {
  c->bFailed = 1;
  int n = atomic_fetch_add(&g->nFail, 1);
  atomic_store(&g->stop, 1);
  if (n >= MAX_FAIL_PRINTS) return;
  char zBuf[2048];
  va_list ap;
  va_start(ap, zFmt);
  vsnprintf(zBuf, sizeof(zBuf), zFmt, ap);
  va_end(ap);
  fprintf(stderr, "soak: FAIL (process %d pid %d, thread %d, %s): %s\n", c->iProc, (int)getpid(), c->iThread,
          c->zRole, zBuf);
}

static int stopping(void) { return atomic_load(&g->stop) || now_sec() >= rDeadline; }

/* SQLITE_BUSY (any extended code); SQLITE_LOCKED cannot arise between connections without shared cache. */
static int is_busy(int rc) { return (rc & 0xff) == SQLITE_BUSY; }

/* Prepared statement for the SQL made from zFmt (printf style), cached per connection. NULL after a failure. */
static sqlite3_stmt *P(Ctx *c, const char *zFmt, ...) {
  char zSql[1024];
  va_list ap;
  va_start(ap, zFmt);
  vsnprintf(zSql, sizeof(zSql), zFmt, ap);
  va_end(ap);
  for (int i = 0; i < c->nCache; i++) {
    if (strcmp(c->aCache[i].zSql, zSql) == 0) {
      sqlite3_reset(c->aCache[i].pStmt);
      sqlite3_clear_bindings(c->aCache[i].pStmt);
      return c->aCache[i].pStmt;
    }
  }
  sqlite3_stmt *pStmt = 0;
  int rc;
  /* preparing reads the schema, which can be busy past the timeout (a rollback-journal writer committing) */
  for (int i = 0; is_busy(rc = sqlite3_prepare_v3(c->db, zSql, -1, SQLITE_PREPARE_PERSISTENT, &pStmt, 0)) && i < 1000;
       i++) {
    atomic_fetch_add(&g->nBusyPrepare, 1);
    usleep(1000);
  }
  if (rc != SQLITE_OK) {
    failf(c, "prepare (%s): %s\n  in: %s", sqlite3_errstr(rc), sqlite3_errmsg(c->db), zSql);
    return 0;
  }
  if (c->nCache == NCACHE) {
    failf(c, "the statement cache of the test is full");
    sqlite3_finalize(pStmt);
    return 0;
  }
  c->aCache[c->nCache].zSql = strdup(zSql);
  c->aCache[c->nCache].pStmt = pStmt;
  c->nCache++;
  return pStmt;
}

/* Binds values by a type string: i int64, t text, v vector (float *), n NULL. */
static void bindv(sqlite3_stmt *pStmt, const char *zTypes, va_list ap) {
  for (int i = 0; zTypes[i]; i++) {
    switch (zTypes[i]) {
      case 'i':
        sqlite3_bind_int64(pStmt, i + 1, va_arg(ap, i64));
        break;
      case 't':
        sqlite3_bind_text(pStmt, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        break;
      case 'v':
        sqlite3_bind_blob(pStmt, i + 1, va_arg(ap, const float *), DIM * 4, SQLITE_TRANSIENT);
        break;
      default:
        sqlite3_bind_null(pStmt, i + 1);
        break;
    }
  }
}

static void bind(sqlite3_stmt *pStmt, const char *zTypes, ...) {
  va_list ap;
  va_start(ap, zTypes);
  bindv(pStmt, zTypes, ap);
  va_end(ap);
}

static void fail_stmt(Ctx *c, sqlite3_stmt *pStmt, int rc, const char *zWhat) {
  char *zSql = sqlite3_expanded_sql(pStmt);
  failf(c, "%s: %s (%d): %s\n  in: %.600s", zWhat, sqlite3_errstr(rc), sqlite3_extended_errcode(c->db),
        sqlite3_errmsg(c->db), zSql ? zSql : sqlite3_sql(pStmt));
  sqlite3_free(zSql);
}

/* Steps pStmt to the end (after binding), resets it; returns the result code. An error is a failure unless
** bAllowBusy and it is SQLITE_BUSY (returned, not reported) or eAllowed (returned, not reported). */
static int run_ex(Ctx *c, sqlite3_stmt *pStmt, int bAllowBusy, int eAllowed) {
  if (pStmt == 0) return SQLITE_ERROR;
  int rc;
  while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
  }
  if (rc == SQLITE_DONE) rc = SQLITE_OK;
  if (rc != SQLITE_OK) rc = sqlite3_extended_errcode(c->db);
  if (rc != SQLITE_OK && !(bAllowBusy && is_busy(rc)) && (rc & 0xff) != eAllowed) {
    fail_stmt(c, pStmt, rc, "statement failed");
  }
  sqlite3_reset(pStmt);
  return rc;
}

static int run(Ctx *c, sqlite3_stmt *pStmt, const char *zTypes, ...) {
  if (pStmt == 0) return SQLITE_ERROR;
  va_list ap;
  va_start(ap, zTypes);
  bindv(pStmt, zTypes, ap);
  va_end(ap);
  return run_ex(c, pStmt, 0, -1);
}

/* The first row's integer columns of a query (after binding): returns SQLITE_ROW, SQLITE_DONE (no row) or an
** error (reported). */
static int ints(Ctx *c, sqlite3_stmt *pStmt, int nOut, i64 *aOut, int bAllowBusy) {
  if (pStmt == 0) return SQLITE_ERROR;
  int rc = sqlite3_step(pStmt);
  if (rc == SQLITE_ROW) {
    for (int i = 0; i < nOut; i++) aOut[i] = sqlite3_column_int64(pStmt, i);
  } else if (rc != SQLITE_DONE) {
    rc = sqlite3_extended_errcode(c->db);
    if (!(bAllowBusy && is_busy(rc))) fail_stmt(c, pStmt, rc, "query failed");
  }
  sqlite3_reset(pStmt);
  return rc;
}

static int exec_sql(Ctx *c, const char *zSql, int bAllowBusy) {
  char *zErr = 0;
  int rc = sqlite3_exec(c->db, zSql, 0, 0, &zErr);
  if (rc != SQLITE_OK) rc = sqlite3_extended_errcode(c->db);
  if (rc != SQLITE_OK && !(bAllowBusy && is_busy(rc))) {
    failf(c, "%s: %s (%d)\n  in: %s", zSql, zErr ? zErr : sqlite3_errstr(rc), rc, zSql);
  }
  sqlite3_free(zErr);
  return rc;
}

static void rollback(Ctx *c) {
  if (!sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "ROLLBACK", 0, 0, 0);
}

static void pause_ms(Ctx *c, int nMax) {
  int n = rnd(c, nMax * 1000 + 1);
  if (n) usleep((useconds_t)n);
}

static sqlite3 *open_db(void) {
  sqlite3 *db = 0;
  if (sqlite3_open_v2(zDbPath, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, 0)) {
    fprintf(stderr, "soak: FAIL open %s: %s\n", zDbPath, sqlite3_errmsg(db));
    exit(1);
  }
  sqlite3_enable_load_extension(db, 1);
  char *zErr = 0;
  if (sqlite3_load_extension(db, zExtPath, 0, &zErr) != SQLITE_OK) {
    fprintf(stderr, "soak: FAIL load extension %s: %s\n", zExtPath, zErr ? zErr : "?");
    exit(1);
  }
  sqlite3_busy_timeout(db, getenv("SOAK_BUSY_MS") ? atoi(getenv("SOAK_BUSY_MS")) : BUSY_TIMEOUT_MS);
  return db;
}

static void ctx_close(Ctx *c) {
  for (int i = 0; i < c->nCache; i++) {
    sqlite3_finalize(c->aCache[i].pStmt);
    free(c->aCache[i].zSql);
  }
  c->nCache = 0;
  if (sqlite3_close(c->db) != SQLITE_OK) failf(c, "sqlite3_close: %s", sqlite3_errmsg(c->db));
  c->db = 0;
  free(c->aRow);
  c->aRow = 0;
  c->nRow = c->nRowAlloc = 0;
}

/**************************************************************************************************
** Writers.
*/

static void content_of(char *z, size_t n, i64 rid, i64 vgen, i64 dgen) {
  snprintf(z, n, "r%lld v%lld d%lld", (long long)rid, (long long)vgen, (long long)dgen);
}

static void meta_of(char *z, size_t n, i64 dgen) { snprintf(z, n, "{\"d\": %lld}", (long long)dgen); }

static void new_id(Ctx *c, char *z, size_t n) {
  snprintf(z, n, "p%d-t%d-%lld", (int)getpid(), c->iThread, (long long)++c->nIdSeq);
}

/* A random live row of table t from truth; SQLITE_ROW, SQLITE_DONE when empty, or an error. */
static int pick_row(Ctx *c, const char *t, Row *r) {
  sqlite3_stmt *s = P(c, "SELECT count(*) FROM truth WHERE tbl = ?1");
  if (s == 0) return SQLITE_ERROR;
  bind(s, "t", t);
  i64 n = 0;
  int rc = ints(c, s, 1, &n, 0);
  if (rc != SQLITE_ROW) return rc;
  if (n == 0) return SQLITE_DONE;
  s = P(c, "SELECT rid, id, vgen, dgen FROM truth WHERE tbl = ?1 ORDER BY rid LIMIT 1 OFFSET ?2");
  if (s == 0) return SQLITE_ERROR;
  bind(s, "ti", t, (i64)rnd(c, (int)n));
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    r->rid = sqlite3_column_int64(s, 0);
    snprintf(r->zId, sizeof(r->zId), "%s", (const char *)sqlite3_column_text(s, 1));
    r->vgen = sqlite3_column_int64(s, 2);
    r->dgen = sqlite3_column_int64(s, 3);
  } else {
    fail_stmt(c, s, rc, "pick_row");
    rc = SQLITE_ERROR;
  }
  sqlite3_reset(s);
  return rc;
}

static int rid_in_truth(Ctx *c, const char *t, i64 rid) {
  sqlite3_stmt *s = P(c, "SELECT count(*) FROM truth WHERE tbl = ?1 AND rid = ?2");
  if (s == 0) return -1;
  bind(s, "ti", t, rid);
  i64 n = 0;
  return ints(c, s, 1, &n, 0) == SQLITE_ROW ? (int)n : -1;
}

/* A rowid free in t: above the largest, or (half of the time) a hole left by a delete (rowid reuse). */
static i64 free_rid(Ctx *c, const char *t) {
  sqlite3_stmt *s = P(c, "SELECT coalesce(max(rid), 0) FROM truth WHERE tbl = ?1");
  if (s == 0) return -1;
  bind(s, "t", t);
  i64 nMax = 0;
  if (ints(c, s, 1, &nMax, 0) != SQLITE_ROW) return -1;
  if (nMax > 10 && rnd(c, 2)) {
    for (int i = 0; i < 8; i++) {
      i64 r = 1 + rnd(c, (int)nMax);
      int b = rid_in_truth(c, t, r);
      if (b < 0) return -1;
      if (b == 0) return r;
    }
  }
  return nMax + 1 + rnd(c, 3);
}

static int truth_put(Ctx *c, const char *t, i64 rid, const char *zId, i64 vgen, i64 dgen) {
  sqlite3_stmt *s = P(c, "INSERT OR REPLACE INTO truth(tbl, rid, id, vgen, dgen) VALUES (?1, ?2, ?3, ?4, ?5)");
  return run(c, s, "titii", t, rid, zId, vgen, dgen) == SQLITE_OK ? SQLITE_OK : SQLITE_ERROR;
}

/* Read-your-writes inside the writer's transaction: a search for the row's own vector finds it first at 0,
** or, with bGone, does not find it. */
static int check_own(Ctx *c, const char *t, i64 rid, const float *aVec, int bGone) {
  sqlite3_stmt *s = P(c, "SELECT rowid, distance FROM %s WHERE embedding MATCH ?1 AND k = 1", t);
  if (s == 0) return SQLITE_ERROR;
  bind(s, "v", aVec);
  int rc = sqlite3_step(s);
  i64 got = -1;
  double d = -1;
  if (rc == SQLITE_ROW) {
    got = sqlite3_column_int64(s, 0);
    d = sqlite3_column_double(s, 1);
  } else if (rc != SQLITE_DONE) {
    fail_stmt(c, s, rc, "read-your-writes search");
    sqlite3_reset(s);
    return SQLITE_ERROR;
  }
  sqlite3_reset(s);
  if (!bGone && (got != rid || fabs(d) > 1e-6)) {
    failf(c, "inside the write transaction, %s: the search for rowid %lld's new vector returned rowid %lld at "
          "distance %g", t, (long long)rid, (long long)got, d);
    return SQLITE_ERROR;
  }
  if (bGone && got == rid) {
    failf(c, "inside the write transaction, %s: deleted rowid %lld is still found by a search for its vector", t,
          (long long)rid);
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/* One write of table t (with truth kept in step). Returns SQLITE_OK or an error (reported). */
static int write_op(Ctx *c, const char *t) {
  i64 n = -1;
  sqlite3_stmt *s = P(c, "SELECT count(*) FROM truth WHERE tbl = ?1");
  if (s == 0) return SQLITE_ERROR;
  bind(s, "t", t);
  if (ints(c, s, 1, &n, 0) != SQLITE_ROW) return SQLITE_ERROR;
  int pInsert = n < MIN_ROWS ? 70 : n > MAX_ROWS ? 10 : 35;
  int roll = rnd(c, 100);
  float aVec[DIM];
  char zContent[96], zMeta[64], zId[48];
  Row r;
  atomic_fetch_add(&g->nWriteStmt, 1);

  if (roll < pInsert || n == 0) {
    i64 vgen = 1 + rnd(c, 1000), dgen = rnd(c, 1000);
    new_id(c, zId, sizeof(zId));
    meta_of(zMeta, sizeof(zMeta), dgen);
    if (rnd(c, 3) == 0) {
      /* rowid assigned by the table: insert, learn the rowid, then give the row its final values */
      float aTmp[DIM];
      vec_of(-1, (i64)splitmix(&c->rng) >> 1, aTmp);
      if (run(c, P(c, "INSERT INTO %s(id, content, metadata, embedding, grp) VALUES (?1, 'tmp', ?2, ?3, ?4)", t),
              "ttvi", zId, zMeta, aTmp, dgen % 5)) return SQLITE_ERROR;
      i64 rid = sqlite3_last_insert_rowid(c->db);
      i64 byId = -1;
      s = P(c, "SELECT rowid FROM %s WHERE id = ?1", t);
      if (s == 0) return SQLITE_ERROR;
      bind(s, "t", zId);
      if (ints(c, s, 1, &byId, 0) != SQLITE_ROW || byId != rid) {
        if (!c->bFailed) failf(c, "%s: last_insert_rowid %lld after an INSERT, but id %s has rowid %lld", t,
                               (long long)rid, zId, (long long)byId);
        return SQLITE_ERROR;
      }
      vec_of(rid, vgen, aVec);
      content_of(zContent, sizeof(zContent), rid, vgen, dgen);
      if (run(c, P(c, "UPDATE %s SET embedding = ?1, content = ?2 WHERE rowid = ?3", t), "vti", aVec, zContent, rid))
        return SQLITE_ERROR;
      if (truth_put(c, t, rid, zId, vgen, dgen)) return SQLITE_ERROR;
      return check_own(c, t, rid, aVec, 0);
    }
    i64 rid = free_rid(c, t);
    if (rid < 0) return SQLITE_ERROR;
    vec_of(rid, vgen, aVec);
    content_of(zContent, sizeof(zContent), rid, vgen, dgen);
    if (run(c, P(c, "INSERT INTO %s(rowid, id, content, metadata, embedding, grp) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                 t), "itttvi", rid, zId, zContent, zMeta, aVec, dgen % 5)) {
      return SQLITE_ERROR;
    }
    if (truth_put(c, t, rid, zId, vgen, dgen)) return SQLITE_ERROR;
    return rnd(c, 2) ? check_own(c, t, rid, aVec, 0) : SQLITE_OK;
  }

  int rc = pick_row(c, t, &r);
  if (rc != SQLITE_ROW) return rc == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
  roll = rnd(c, 100);
  if (roll < 22) { /* new vector (and document) */
    i64 vgen = r.vgen + 1, dgen = r.dgen + 1;
    vec_of(r.rid, vgen, aVec);
    content_of(zContent, sizeof(zContent), r.rid, vgen, dgen);
    meta_of(zMeta, sizeof(zMeta), dgen);
    if (run(c, P(c, "UPDATE %s SET embedding = ?1, content = ?2, metadata = ?3, grp = ?4 WHERE rowid = ?5", t),
            "vttii", aVec, zContent, zMeta, dgen % 5, r.rid)) return SQLITE_ERROR;
    if (truth_put(c, t, r.rid, r.zId, vgen, dgen)) return SQLITE_ERROR;
    return rnd(c, 2) ? check_own(c, t, r.rid, aVec, 0) : SQLITE_OK;
  }
  if (roll < 40) { /* document only, by id */
    i64 dgen = r.dgen + 1;
    content_of(zContent, sizeof(zContent), r.rid, r.vgen, dgen);
    meta_of(zMeta, sizeof(zMeta), dgen);
    if (run(c, P(c, "UPDATE %s SET content = ?1, metadata = ?2, grp = ?3 WHERE id = ?4", t), "ttit", zContent, zMeta,
            dgen % 5, r.zId)) return SQLITE_ERROR;
    return truth_put(c, t, r.rid, r.zId, r.vgen, dgen);
  }
  if (roll < 48) { /* move the row to a free rowid (its vector is a function of the rowid, so it changes) */
    i64 rid = free_rid(c, t);
    if (rid < 0) return SQLITE_ERROR;
    vec_of(rid, r.vgen, aVec);
    content_of(zContent, sizeof(zContent), rid, r.vgen, r.dgen);
    if (run(c, P(c, "UPDATE %s SET rowid = ?1, embedding = ?2, content = ?3 WHERE rowid = ?4", t), "ivti", rid, aVec,
            zContent, r.rid)) return SQLITE_ERROR;
    if (run(c, P(c, "UPDATE truth SET rid = ?1 WHERE tbl = ?2 AND rid = ?3"), "iti", rid, t, r.rid)) {
      return SQLITE_ERROR;
    }
    return check_own(c, t, rid, aVec, 0);
  }
  if (roll < 62) { /* delete by rowid or by id */
    if (rnd(c, 2)) {
      if (run(c, P(c, "DELETE FROM %s WHERE rowid = ?1", t), "i", r.rid)) return SQLITE_ERROR;
    } else {
      if (run(c, P(c, "DELETE FROM %s WHERE id = ?1", t), "t", r.zId)) return SQLITE_ERROR;
    }
    if (sqlite3_changes(c->db) != 1) {
      failf(c, "%s: DELETE of rowid %lld (id %s) changed %d rows, expected 1", t, (long long)r.rid, r.zId,
            sqlite3_changes(c->db));
      return SQLITE_ERROR;
    }
    if (run(c, P(c, "DELETE FROM truth WHERE tbl = ?1 AND rid = ?2"), "ti", t, r.rid)) return SQLITE_ERROR;
    vec_of(r.rid, r.vgen, aVec);
    return rnd(c, 2) ? check_own(c, t, r.rid, aVec, 1) : SQLITE_OK;
  }
  if (roll < 68) { /* delete several rows by a condition the table cannot see */
    int gsel = rnd(c, 5), m = rnd(c, 23);
    if (run(c, P(c, "DELETE FROM %s WHERE grp = ?1 AND rowid %% 23 = ?2", t), "ii", (i64)gsel, (i64)m))
      return SQLITE_ERROR;
    int nVt = sqlite3_changes(c->db);
    if (run(c, P(c, "DELETE FROM truth WHERE tbl = ?1 AND dgen %% 5 = ?2 AND rid %% 23 = ?3"), "tii", t, (i64)gsel,
            (i64)m)) return SQLITE_ERROR;
    if (sqlite3_changes(c->db) != nVt) {
      failf(c, "%s: DELETE WHERE grp = %d AND rowid %% 23 = %d removed %d rows, truth says %d", t, gsel, m, nVt,
            sqlite3_changes(c->db));
      return SQLITE_ERROR;
    }
    return SQLITE_OK;
  }
  if (roll < 76) { /* INSERT OR REPLACE: an existing id at a new rowid, or an existing rowid with a new id */
    i64 vgen = r.vgen + 1, dgen = r.dgen + 1, rid = r.rid;
    const char *zNewId = r.zId;
    if (rnd(c, 2)) {
      rid = free_rid(c, t);
      if (rid < 0) return SQLITE_ERROR;
    } else {
      new_id(c, zId, sizeof(zId));
      zNewId = zId;
    }
    vec_of(rid, vgen, aVec);
    content_of(zContent, sizeof(zContent), rid, vgen, dgen);
    meta_of(zMeta, sizeof(zMeta), dgen);
    if (run(c, P(c, "INSERT OR REPLACE INTO %s(rowid, id, content, metadata, embedding, grp) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", t), "itttvi", rid, zNewId, zContent, zMeta, aVec, dgen % 5))
      return SQLITE_ERROR;
    if (run(c, P(c, "DELETE FROM truth WHERE tbl = ?1 AND rid = ?2"), "ti", t, r.rid)) return SQLITE_ERROR;
    if (truth_put(c, t, rid, zNewId, vgen, dgen)) return SQLITE_ERROR;
    return check_own(c, t, rid, aVec, 0);
  }
  if (roll < 84) { /* constraint failures change nothing: a duplicate id; two rows of which the second clashes */
    i64 rid = free_rid(c, t);
    if (rid < 0) return SQLITE_ERROR;
    vec_of(rid, 999999, aVec);
    new_id(c, zId, sizeof(zId));
    if (rnd(c, 2)) {
      s = P(c, "INSERT INTO %s(rowid, id, content, embedding) VALUES (?1, ?2, 'dup', ?3)", t);
      if (s == 0) return SQLITE_ERROR;
      bind(s, "itv", rid, r.zId, aVec);
      rc = run_ex(c, s, 0, SQLITE_CONSTRAINT);
    } else {
      float aVec2[DIM];
      vec_of(rid + 1, 999999, aVec2);
      s = P(c, "INSERT INTO %s(rowid, id, content, embedding) VALUES (?1, ?2, 'ok', ?3), (?4, ?5, 'dup', ?6)", t);
      if (s == 0) return SQLITE_ERROR;
      bind(s, "itvitv", rid, zId, aVec, rid + 1000000, r.zId, aVec2);
      rc = run_ex(c, s, 0, SQLITE_CONSTRAINT);
    }
    if ((rc & 0xff) != SQLITE_CONSTRAINT) {
      if (!c->bFailed) failf(c, "%s: an INSERT with the duplicate id %s succeeded (rc %d)", t, r.zId, rc);
      return SQLITE_ERROR;
    }
    i64 cnt = -1;
    s = P(c, "SELECT count(*) FROM %s WHERE rowid = ?1 OR id = ?2", t);
    if (s == 0) return SQLITE_ERROR;
    bind(s, "it", rid, zId);
    if (ints(c, s, 1, &cnt, 0) != SQLITE_ROW) return SQLITE_ERROR;
    i64 byId = -1;
    s = P(c, "SELECT rowid FROM %s WHERE id = ?1", t);
    if (s == 0) return SQLITE_ERROR;
    bind(s, "t", r.zId);
    if (ints(c, s, 1, &byId, 0) != SQLITE_ROW) return SQLITE_ERROR;
    if (cnt != 0 || byId != r.rid) {
      failf(c, "%s: a failed INSERT left %lld rows at rowid %lld, and id %s now has rowid %lld (expected %lld)", t,
            (long long)cnt, (long long)rid, r.zId, (long long)byId, (long long)r.rid);
      return SQLITE_ERROR;
    }
    return check_own(c, t, rid, aVec, 1);
  }
  /* a point check inside the transaction: the row as truth has it */
  s = P(c, "SELECT id, content FROM %s WHERE rowid = ?1", t);
  if (s == 0) return SQLITE_ERROR;
  bind(s, "i", r.rid);
  rc = sqlite3_step(s);
  content_of(zContent, sizeof(zContent), r.rid, r.vgen, r.dgen);
  if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(s, 0), r.zId) ||
      strcmp((const char *)sqlite3_column_text(s, 1), zContent)) {
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
      failf(c, "%s: inside the write transaction rowid %lld is %s, truth says (%s, %s)", t, (long long)r.rid,
            rc == SQLITE_DONE ? "missing" : (const char *)sqlite3_column_text(s, 1), r.zId, zContent);
    } else {
      fail_stmt(c, s, rc, "lookup");
    }
    sqlite3_reset(s);
    return SQLITE_ERROR;
  }
  sqlite3_reset(s);
  return SQLITE_OK;
}

/* A savepoint around a few writes, released or rolled back (maybe one nested level). */
static int savepoint_block(Ctx *c, const char *t, int nDepth) {
  char zName[16], zSql[64];
  snprintf(zName, sizeof(zName), "sp%d", nDepth);
  snprintf(zSql, sizeof(zSql), "SAVEPOINT %s", zName);
  if (exec_sql(c, zSql, 0)) return SQLITE_ERROR;
  atomic_fetch_add(&g->nSavepoint, 1);
  int nOp = 1 + rnd(c, 3);
  for (int i = 0; i < nOp; i++) {
    int rc = (nDepth < 2 && rnd(c, 4) == 0) ? savepoint_block(c, t, nDepth + 1) : write_op(c, t);
    if (rc) return rc;
  }
  if (rnd(c, 2)) {
    snprintf(zSql, sizeof(zSql), "ROLLBACK TO %s", zName);
    if (exec_sql(c, zSql, 0)) return SQLITE_ERROR;
  }
  snprintf(zSql, sizeof(zSql), "RELEASE %s", zName);
  return exec_sql(c, zSql, 0) ? SQLITE_ERROR : SQLITE_OK;
}

static int command(Ctx *c, const char *t, const char *zCmd) {
  atomic_fetch_add(&g->nCommand, 1);
  return run(c, P(c, "INSERT INTO %s(%s) VALUES (?1)", t, t), "t", zCmd) ? SQLITE_ERROR : SQLITE_OK;
}

/* BEGIN IMMEDIATE, retried on SQLITE_BUSY. 0 when the transaction is open, else 1 (stopping or failed). */
static int begin_immediate(Ctx *c) {
  while (!stopping()) {
    int rc = exec_sql(c, "BEGIN IMMEDIATE", 1);
    if (rc == SQLITE_OK) return 0;
    if (!is_busy(rc)) return 1;
    atomic_fetch_add(&g->nBusyBegin, 1);
  }
  return 1;
}

static int update_ledger(Ctx *c, const char *t) {
  return run(c, P(c, "UPDATE ledger SET (n, sum_rid, chk) = (SELECT count(*), coalesce(sum(rid), 0), "
                 "coalesce(sum((rid * 31 + vgen * 7 + dgen) %% 1000000007), 0) FROM truth WHERE tbl = ?1) "
                 "WHERE tbl = ?1"), "t", t);
}

/* COMMIT, retried on SQLITE_BUSY (a rollback-journal file whose readers hold their locks past the busy
** timeout). A busy COMMIT leaves the transaction open, and its index changes already applied by xSync: then
** the transaction sometimes goes on with another write of table t before the retry, and sometimes is rolled
** back. Returns 0 committed, 1 failed, 2 rolled back. */
static int commit(Ctx *c, const char *t) {
  for (int i = 0; i < 2000 && !c->bFailed; i++) {
    int rc = exec_sql(c, "COMMIT", 1);
    if (rc == SQLITE_OK) return 0;
    if (!is_busy(rc)) return 1;
    atomic_fetch_add(&g->nBusyCommit, 1);
    int roll = rnd(c, 5);
    if (roll == 0) {
      atomic_fetch_add(&g->nCommitGiveUp, 1);
      return exec_sql(c, "ROLLBACK", 0) ? 1 : 2;
    }
    if (roll == 1) {
      atomic_fetch_add(&g->nCommitGoOn, 1);
      if (write_op(c, t) || update_ledger(c, t)) return 1;
    }
    usleep((useconds_t)(500 + rnd(c, 2000)));
  }
  if (!c->bFailed) failf(c, "COMMIT stayed busy through 2000 retries");
  return 1;
}

/* One writer transaction on vf, vh or both. */
static void writer_txn(Ctx *c) {
  if (begin_immediate(c)) return;
  i64 txn = 0;
  if (ints(c, P(c, "SELECT txn FROM ledger WHERE tbl = 'all'"), 1, &txn, 0) != SQLITE_ROW) goto fail;
  txn++;
  int mask = rnd(c, 10) == 0 ? 3 : 1 + rnd(c, 2);
  const char *t = "vf";
  for (int ti = 0; ti < 2; ti++) {
    if (!(mask & (1 << ti))) continue;
    t = ti ? "vh" : "vf";
    int nOp = 1 + rnd(c, 6);
    for (int i = 0; i < nOp; i++) {
      int rc = rnd(c, 10) == 0 ? savepoint_block(c, t, 0) : write_op(c, t);
      if (rc) goto fail;
    }
    int roll = rnd(c, 1000);
    if (roll < 25 && command(c, t, "optimize")) goto fail;
    if (roll >= 25 && roll < 30 && command(c, t, "rebuild")) goto fail;
    if (ti == 1 && roll >= 30 && roll < 33 && command(c, t, rnd(c, 2) ? "index=HNSW16" : "index=HNSW32")) goto fail;
    if (ti == 1 && roll >= 33 && roll < 38 &&
        command(c, t, rnd(c, 2) ? "search_params=efSearch=128" : "search_params=efSearch=160")) goto fail;
    if (roll >= 38 && roll < 60) { /* the table as the transaction sees it matches truth */
      i64 a[2] = {-1, -1};
      sqlite3_stmt *s = P(c, "SELECT (SELECT count(*) FROM %s), (SELECT count(*) FROM truth WHERE tbl = ?1)", t);
      if (s == 0) goto fail;
      bind(s, "t", t);
      if (ints(c, s, 2, a, 0) != SQLITE_ROW) goto fail;
      if (a[0] != a[1]) {
        failf(c, "%s: inside the write transaction the table has %lld rows, truth %lld", t, (long long)a[0],
              (long long)a[1]);
        goto fail;
      }
    }
    if (update_ledger(c, t)) goto fail;
  }
  if (run(c, P(c, "UPDATE ledger SET txn = ?1 WHERE tbl = 'all'"), "i", txn)) goto fail;
  if (rnd(c, 40) == 0) {
    if (exec_sql(c, "ROLLBACK", 0)) goto fail;
    atomic_fetch_add(&g->nRollbackTxn, 1);
    return;
  }
  int rc = commit(c, t);
  if (rc == 2) {
    atomic_fetch_add(&g->nRollbackTxn, 1);
    return;
  }
  if (rc) goto fail;
  atomic_fetch_add(&g->nWriteTxn, 1);
  i64 cur = atomic_load(&g->committedTxn);
  while (cur < txn && !atomic_compare_exchange_weak(&g->committedTxn, &cur, txn)) {
  }
  return;
fail:
  rollback(c);
}

/* A schema change under load: a scratch vecstore table of this thread is created (and written), or dropped,
** in a transaction of its own. Every other connection then re-reads the schema and reconnects its tables. */
static void ddl_txn(Ctx *c) {
  char zSql[512];
  if (begin_immediate(c)) return;
  if (!c->bScratch) {
    snprintf(zSql, sizeof(zSql),
             "CREATE VIRTUAL TABLE scratch_%d_%d USING vecstore(dim = 4);"
             "INSERT INTO scratch_%d_%d(id, embedding) VALUES ('a', '[1, 2, 3, 4]'), ('b', '[4, 3, 2, 1]');",
             (int)getpid(), c->iThread, (int)getpid(), c->iThread);
  } else {
    snprintf(zSql, sizeof(zSql), "DROP TABLE scratch_%d_%d", (int)getpid(), c->iThread);
  }
  if (exec_sql(c, zSql, 0)) {
    rollback(c);
    return;
  }
  if (!c->bScratch) {
    /* statements are prepared anew for each scratch table: the cache must not keep them */
    snprintf(zSql, sizeof(zSql), "SELECT id FROM scratch_%d_%d WHERE embedding MATCH '[1, 2, 3, 4]' AND k = 1",
             (int)getpid(), c->iThread);
    sqlite3_stmt *s = 0;
    int rc = sqlite3_prepare_v2(c->db, zSql, -1, &s, 0);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(s, 0), "a")) {
      failf(c, "a search in a new scratch table gave %s: %s", rc == SQLITE_ROW ? "the wrong row" : sqlite3_errstr(rc),
            sqlite3_errmsg(c->db));
    }
    sqlite3_finalize(s);
    if (c->bFailed) {
      rollback(c);
      return;
    }
  }
  int rc = commit(c, "vf");
  if (rc == 0) {
    c->bScratch = !c->bScratch;
    atomic_fetch_add(&g->nDdl, 1);
  }
  if (rc == 1) rollback(c);
}

/* One autocommit statement on va (BUSY after the timeout is retried). */
static void auto_write(Ctx *c) {
  i64 rid = 1 + rnd(c, VA_ROWS), vgen = 1 + rnd(c, 100000);
  float aVec[DIM];
  char zContent[32];
  vec_of(rid + VA_SEED, vgen, aVec);
  snprintf(zContent, sizeof(zContent), "v%lld", (long long)vgen);
  int roll = rnd(c, 10);
  sqlite3_stmt *s;
  if (roll < 5) {
    s = P(c, "INSERT OR REPLACE INTO va(rowid, content, embedding) VALUES (?1, ?2, ?3)");
    if (s) bind(s, "itv", rid, zContent, aVec);
  } else if (roll < 8) {
    s = P(c, "UPDATE va SET content = ?2, embedding = ?3 WHERE rowid = ?1");
    if (s) bind(s, "itv", rid, zContent, aVec);
  } else {
    s = P(c, "DELETE FROM va WHERE rowid = ?1");
    if (s) bind(s, "i", rid);
  }
  for (int i = 0; s && i < 100 && !c->bFailed; i++) {
    int rc = run_ex(c, s, 1, -1);
    if (rc == SQLITE_OK) {
      atomic_fetch_add(&g->nAutoWrite, 1);
      return;
    }
    if (!is_busy(rc)) return;
    atomic_fetch_add(&g->nBusyAuto, 1);
  }
}

/**************************************************************************************************
** Readers.
*/

static int row_cmp(const void *a, const void *b) {
  i64 x = ((const Row *)a)->rid, y = ((const Row *)b)->rid;
  return x < y ? -1 : x > y;
}

static Row *find_row(Ctx *c, i64 rid) {
  Row key;
  key.rid = rid;
  return bsearch(&key, c->aRow, (size_t)c->nRow, sizeof(Row), row_cmp);
}

/* Loads truth rows of t (sorted by rowid) into c->aRow. */
static int load_truth(Ctx *c, const char *t) {
  sqlite3_stmt *s = P(c, "SELECT rid, id, vgen, dgen FROM truth WHERE tbl = ?1 ORDER BY rid");
  if (s == 0) return SQLITE_ERROR;
  bind(s, "t", t);
  c->nRow = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (c->nRow == c->nRowAlloc) {
      c->nRowAlloc = c->nRowAlloc ? c->nRowAlloc * 2 : 1024;
      c->aRow = realloc(c->aRow, (size_t)c->nRowAlloc * sizeof(Row));
      if (c->aRow == 0) abort();
    }
    Row *r = &c->aRow[c->nRow++];
    r->rid = sqlite3_column_int64(s, 0);
    snprintf(r->zId, sizeof(r->zId), "%s", (const char *)sqlite3_column_text(s, 1));
    r->vgen = sqlite3_column_int64(s, 2);
    r->dgen = sqlite3_column_int64(s, 3);
  }
  if (rc != SQLITE_DONE) {
    fail_stmt(c, s, rc, "loading truth");
    sqlite3_reset(s);
    return SQLITE_ERROR;
  }
  sqlite3_reset(s);
  return SQLITE_OK;
}

/* Full scan of t: every row exactly as truth has it; count and checksum as the ledger says. */
static int check_scan(Ctx *c, const char *t, const i64 *aLedger) {
  sqlite3_stmt *s = P(c, "SELECT rowid, id, content, json_extract(metadata, '$.d'), embedding, grp FROM %s", t);
  if (s == 0) return SQLITE_ERROR;
  int rc, nSeen = 0;
  i64 sumRid = 0, chk = 0;
  float aVec[DIM];
  char zWant[96];
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    i64 rid = sqlite3_column_int64(s, 0);
    Row *r = find_row(c, rid);
    const char *zId = (const char *)sqlite3_column_text(s, 1);
    const char *zContent = (const char *)sqlite3_column_text(s, 2);
    if (r == 0) {
      failf(c, "%s: scan returned rowid %lld (%s) which truth does not have", t, (long long)rid,
            zContent ? zContent : "NULL");
      break;
    }
    nSeen++;
    vec_of(rid, r->vgen, aVec);
    content_of(zWant, sizeof(zWant), rid, r->vgen, r->dgen);
    const void *pEmb = sqlite3_column_blob(s, 4);
    int nEmb = sqlite3_column_bytes(s, 4);
    if (!zId || strcmp(zId, r->zId) || !zContent || strcmp(zContent, zWant) || sqlite3_column_int64(s, 3) != r->dgen ||
        sqlite3_column_int64(s, 5) != r->dgen % 5 || nEmb != DIM * 4 || memcmp(pEmb, aVec, DIM * 4)) {
      failf(c, "%s: scan row %lld is (%s, %s, d=%lld, grp=%lld, %d-byte embedding%s), truth (%s, %s, d=%lld)", t,
            (long long)rid, zId ? zId : "NULL", zContent ? zContent : "NULL", (long long)sqlite3_column_int64(s, 3),
            (long long)sqlite3_column_int64(s, 5), nEmb,
            nEmb == DIM * 4 && memcmp(pEmb, aVec, DIM * 4) ? " that differs" : "", r->zId, zWant, (long long)r->dgen);
      break;
    }
    sumRid += rid;
    chk += (rid * 31 + r->vgen * 7 + r->dgen) % 1000000007;
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) fail_stmt(c, s, rc, "scan");
  sqlite3_reset(s);
  if (c->bFailed) return SQLITE_ERROR;
  if (nSeen != c->nRow || nSeen != aLedger[0] || sumRid != aLedger[1] || chk != aLedger[2]) {
    failf(c, "%s: scan saw %d rows (sum of rowids %lld, checksum %lld); truth has %d rows, the ledger says %lld "
          "(%lld, %lld)", t, nSeen, (long long)sumRid, (long long)chk, c->nRow, (long long)aLedger[0],
          (long long)aLedger[1], (long long)aLedger[2]);
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/* A search stream without k from a random query: every live row once, distances right, Flat in order. */
static int check_stream(Ctx *c, const char *t, int bFlat) {
  float q[DIM], aVec[DIM];
  vec_of(-7, (i64)(splitmix(&c->rng) >> 1), q);
  sqlite3_stmt *s = P(c, "SELECT rowid, distance FROM %s WHERE embedding MATCH ?1", t);
  if (s == 0) return SQLITE_ERROR;
  bind(s, "v", q);
  char *aSeen = calloc((size_t)c->nRow + 1, 1);
  int rc, nSeen = 0;
  double rPrev = -1;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    i64 rid = sqlite3_column_int64(s, 0);
    double d = sqlite3_column_double(s, 1);
    Row *r = find_row(c, rid);
    if (r == 0 || aSeen[r - c->aRow]) {
      failf(c, "%s: the search stream returned rowid %lld %s", t, (long long)rid,
            r ? "twice" : "which truth does not have");
      break;
    }
    aSeen[r - c->aRow] = 1;
    nSeen++;
    vec_of(rid, r->vgen, aVec);
    if (!near(d, l2(q, aVec))) {
      failf(c, "%s: the search stream gave rowid %lld distance %.9g, its vector is at %.9g", t, (long long)rid, d,
            l2(q, aVec));
      break;
    }
    if (bFlat && d < rPrev - 1e-6) {
      failf(c, "%s: the Flat search stream is out of order: %.9g after %.9g (rowid %lld)", t, d, rPrev,
            (long long)rid);
      break;
    }
    rPrev = d;
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) fail_stmt(c, s, rc, "search stream");
  sqlite3_reset(s);
  if (!c->bFailed && nSeen != c->nRow) {
    int iMiss = 0;
    while (iMiss < c->nRow && aSeen[iMiss]) iMiss++;
    failf(c, "%s: the search stream returned %d rows, truth has %d (missing e.g. rowid %lld)", t, nSeen, c->nRow,
          iMiss < c->nRow ? (long long)c->aRow[iMiss].rid : -1LL);
  }
  free(aSeen);
  return c->bFailed ? SQLITE_ERROR : SQLITE_OK;
}

static int dbl_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* k = 5 search for a live row's own vector: that row first at distance 0, k rows, all live; Flat: the exact
** k smallest distances. With bOrder the query is written ORDER BY distance LIMIT instead of k. */
static int check_knn(Ctx *c, const char *t, int bFlat, int bOrder) {
  if (c->nRow == 0) return SQLITE_OK;
  Row *r = &c->aRow[rnd(c, c->nRow)];
  float q[DIM], aVec[DIM];
  vec_of(r->rid, r->vgen, q);
  const int K = 5;
  sqlite3_stmt *s = bOrder
      ? P(c, "SELECT rowid, distance FROM %s WHERE embedding MATCH ?1 ORDER BY distance LIMIT 5", t)
      : P(c, "SELECT rowid, distance FROM %s WHERE embedding MATCH ?1 AND k = 5", t);
  if (s == 0) return SQLITE_ERROR;
  bind(s, "v", q);
  double aGot[8];
  int rc, n = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < 8) {
    i64 rid = sqlite3_column_int64(s, 0);
    double d = sqlite3_column_double(s, 1);
    Row *p = find_row(c, rid);
    if (n == 0 && (rid != r->rid || fabs(d) > 1e-6)) {
      failf(c, "%s: k search for rowid %lld's own vector returned rowid %lld first at distance %.9g", t,
            (long long)r->rid, (long long)rid, d);
      break;
    }
    if (p == 0) {
      failf(c, "%s: k search returned rowid %lld which truth does not have", t, (long long)rid);
      break;
    }
    vec_of(rid, p->vgen, aVec);
    if (!near(d, l2(q, aVec))) {
      failf(c, "%s: k search gave rowid %lld distance %.9g, its vector is at %.9g", t, (long long)rid, d, l2(q, aVec));
      break;
    }
    aGot[n++] = d;
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) fail_stmt(c, s, rc, "k search");
  sqlite3_reset(s);
  if (c->bFailed) return SQLITE_ERROR;
  int nWant = c->nRow < K ? c->nRow : K;
  if (n != nWant) {
    failf(c, "%s: k = 5 search returned %d rows, the table has %d", t, n, c->nRow);
    return SQLITE_ERROR;
  }
  if (bFlat) {
    double *aAll = malloc(sizeof(double) * (size_t)c->nRow);
    for (int i = 0; i < c->nRow; i++) {
      vec_of(c->aRow[i].rid, c->aRow[i].vgen, aVec);
      aAll[i] = l2(q, aVec);
    }
    qsort(aAll, (size_t)c->nRow, sizeof(double), dbl_cmp);
    for (int i = 0; i < n; i++) {
      if (!near(aGot[i], aAll[i])) {
        failf(c, "%s: Flat k search result %d is at distance %.9g, the exact answer %.9g", t, i, aGot[i], aAll[i]);
        break;
      }
    }
    free(aAll);
  }
  return c->bFailed ? SQLITE_ERROR : SQLITE_OK;
}

/* Pre-filtered search on the declared column: only rows of that group, min(k, matching) of them. */
static int check_filtered(Ctx *c, const char *t) {
  int gsel = rnd(c, 5), nMatch = 0;
  for (int i = 0; i < c->nRow; i++) nMatch += c->aRow[i].dgen % 5 == gsel;
  float q[DIM];
  vec_of(-9, (i64)(splitmix(&c->rng) >> 1), q);
  sqlite3_stmt *s = P(c, "SELECT rowid, grp FROM %s WHERE embedding MATCH ?1 AND grp = ?2 AND k = 7", t);
  if (s == 0) return SQLITE_ERROR;
  bind(s, "vi", q, (i64)gsel);
  int rc, n = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    Row *p = find_row(c, sqlite3_column_int64(s, 0));
    if (p == 0 || p->dgen % 5 != gsel || sqlite3_column_int(s, 1) != gsel) {
      failf(c, "%s: search with grp = %d returned rowid %lld (grp %d), truth: %s", t, gsel,
            (long long)sqlite3_column_int64(s, 0), sqlite3_column_int(s, 1), p ? "another group" : "no such row");
      break;
    }
    n++;
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) fail_stmt(c, s, rc, "filtered search");
  sqlite3_reset(s);
  if (!c->bFailed && n != (nMatch < 7 ? nMatch : 7)) {
    failf(c, "%s: search with grp = %d AND k = 7 returned %d rows, %d rows match", t, gsel, n, nMatch);
  }
  return c->bFailed ? SQLITE_ERROR : SQLITE_OK;
}

/* Point lookups by rowid and id, a rowid truth does not have, and an MMR query that must run cleanly. */
static int check_lookups(Ctx *c, const char *t) {
  if (c->nRow == 0) return SQLITE_OK;
  Row *r = &c->aRow[rnd(c, c->nRow)];
  char zWant[96];
  content_of(zWant, sizeof(zWant), r->rid, r->vgen, r->dgen);
  sqlite3_stmt *s = P(c, "SELECT id, content FROM %s WHERE rowid = ?1", t);
  if (s == 0) return SQLITE_ERROR;
  bind(s, "i", r->rid);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(s, 0), r->zId) ||
      strcmp((const char *)sqlite3_column_text(s, 1), zWant)) {
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
      failf(c, "%s: rowid %lld lookup gave %s, truth (%s, %s)", t, (long long)r->rid,
            rc == SQLITE_DONE ? "no row" : (const char *)sqlite3_column_text(s, 1), r->zId, zWant);
    } else {
      fail_stmt(c, s, rc, "rowid lookup");
    }
  }
  sqlite3_reset(s);
  if (c->bFailed) return SQLITE_ERROR;
  s = P(c, "SELECT rowid FROM %s WHERE id = ?1", t);
  if (s == 0) return SQLITE_ERROR;
  bind(s, "t", r->zId);
  i64 rid = -1;
  rc = ints(c, s, 1, &rid, 0);
  if (rc == SQLITE_ERROR || c->bFailed) return SQLITE_ERROR;
  if (rc != SQLITE_ROW || rid != r->rid) {
    failf(c, "%s: id %s lookup gave rowid %lld, truth %lld", t, r->zId, rc == SQLITE_ROW ? (long long)rid : -1LL,
          (long long)r->rid);
    return SQLITE_ERROR;
  }
  i64 absent = c->aRow[c->nRow - 1].rid + 1 + rnd(c, 5);
  if (rnd(c, 2)) { /* a hole, if one is found */
    i64 x = 1 + rnd(c, (int)absent);
    if (find_row(c, x) == 0) absent = x;
  }
  i64 cnt = -1;
  s = P(c, "SELECT count(*) FROM %s WHERE rowid = ?1", t);
  if (s == 0) return SQLITE_ERROR;
  bind(s, "i", absent);
  if (ints(c, s, 1, &cnt, 0) != SQLITE_ROW) return SQLITE_ERROR;
  if (cnt != 0) {
    failf(c, "%s: rowid %lld, which truth does not have, was found", t, (long long)absent);
    return SQLITE_ERROR;
  }
  float q[DIM];
  vec_of(r->rid, r->vgen, q);
  s = P(c, "SELECT rowid FROM %s WHERE embedding MATCH ?1 AND k = 3 AND fetch_k = 12 AND lambda_mult = 0.5", t);
  if (s == 0) return SQLITE_ERROR;
  bind(s, "v", q);
  int n = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (find_row(c, sqlite3_column_int64(s, 0)) == 0) {
      failf(c, "%s: MMR search returned rowid %lld which truth does not have", t,
            (long long)sqlite3_column_int64(s, 0));
      break;
    }
    n++;
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) fail_stmt(c, s, rc, "MMR search");
  sqlite3_reset(s);
  if (!c->bFailed && n != (c->nRow < 3 ? c->nRow : 3)) failf(c, "%s: MMR k = 3 returned %d rows", t, n);
  return c->bFailed ? SQLITE_ERROR : SQLITE_OK;
}

/* Every check of table t against truth and ledger, inside the caller's read transaction. bAll runs all of
** them, else a random subset with short pauses between (so that other processes commit meanwhile). */
static int check_table(Ctx *c, const char *t, int bFlat, int bAll) {
  i64 aLedger[3] = {0, 0, 0}, aAgain[3] = {0, 0, 0};
  sqlite3_stmt *s = P(c, "SELECT n, sum_rid, chk FROM ledger WHERE tbl = ?1");
  if (s == 0) return SQLITE_ERROR;
  bind(s, "t", t);
  if (ints(c, s, 3, aLedger, 0) != SQLITE_ROW) {
    if (!c->bFailed) failf(c, "no ledger row for %s", t);
    return SQLITE_ERROR;
  }
  if (load_truth(c, t)) return SQLITE_ERROR;
  if (c->nRow != aLedger[0]) {
    failf(c, "%s: truth has %d rows, the ledger %lld (ordinary tables disagree)", t, c->nRow, (long long)aLedger[0]);
    return SQLITE_ERROR;
  }
  for (int i = 0; i < 7; i++) {
    if (!bAll && rnd(c, 7) >= 3) continue;
    int rc = SQLITE_OK;
    atomic_fetch_add(&g->nReadQuery, 1);
    switch (i) {
      case 0:
        rc = check_scan(c, t, aLedger);
        break;
      case 1: {
        i64 n = -1;
        s = P(c, "SELECT count(*) FROM %s", t);
        if (s == 0 || ints(c, s, 1, &n, 0) != SQLITE_ROW) return SQLITE_ERROR;
        if (n != aLedger[0]) {
          failf(c, "%s: count(*) is %lld, the ledger says %lld", t, (long long)n, (long long)aLedger[0]);
          return SQLITE_ERROR;
        }
        break;
      }
      case 2:
        rc = check_stream(c, t, bFlat);
        break;
      case 3:
        rc = check_knn(c, t, bFlat, 0);
        break;
      case 4:
        rc = check_knn(c, t, bFlat, 1);
        break;
      case 5:
        rc = check_filtered(c, t);
        break;
      default:
        rc = check_lookups(c, t);
        break;
    }
    if (rc) return rc;
    if (!bAll) pause_ms(c, 2);
  }
  s = P(c, "SELECT n, sum_rid, chk FROM ledger WHERE tbl = ?1");
  if (s == 0) return SQLITE_ERROR;
  bind(s, "t", t);
  if (ints(c, s, 3, aAgain, 0) != SQLITE_ROW) return SQLITE_ERROR;
  if (memcmp(aLedger, aAgain, sizeof(aLedger))) {
    failf(c, "%s: the ledger moved inside one read transaction", t);
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/* va (autocommit writes): each row's vector is the one its content names; scan, count, search stream agree. */
static int check_auto_table(Ctx *c) {
  sqlite3_stmt *s = P(c, "SELECT rowid, content, embedding FROM va");
  if (s == 0) return SQLITE_ERROR;
  int rc, nScan = 0;
  i64 aPick[2] = {0, 0};
  float aVec[DIM];
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    i64 rid = sqlite3_column_int64(s, 0);
    const char *z = (const char *)sqlite3_column_text(s, 1);
    i64 vgen = z && z[0] == 'v' ? atoll(z + 1) : -1;
    vec_of(rid + VA_SEED, vgen, aVec);
    if (sqlite3_column_bytes(s, 2) != DIM * 4 || memcmp(sqlite3_column_blob(s, 2), aVec, DIM * 4)) {
      failf(c, "va: rowid %lld has content %s but not the matching embedding (a torn autocommit write)",
            (long long)rid, z ? z : "NULL");
      break;
    }
    if (rnd(c, ++nScan) == 0) {
      aPick[0] = rid;
      aPick[1] = vgen;
    }
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) fail_stmt(c, s, rc, "va scan");
  sqlite3_reset(s);
  if (c->bFailed) return SQLITE_ERROR;
  float q[DIM];
  vec_of(-3, (i64)(splitmix(&c->rng) >> 1), q);
  i64 a[2] = {-1, -1};
  s = P(c, "SELECT count(*), (SELECT count(*) FROM va WHERE embedding MATCH ?1) FROM va");
  if (s == 0) return SQLITE_ERROR;
  bind(s, "v", q);
  if (ints(c, s, 2, a, 0) != SQLITE_ROW) return SQLITE_ERROR;
  if (a[0] != nScan || a[1] != nScan) {
    failf(c, "va: scan saw %d rows, count(*) %lld, the search stream %lld", nScan, (long long)a[0], (long long)a[1]);
    return SQLITE_ERROR;
  }
  if (nScan > 0) {
    vec_of(aPick[0] + VA_SEED, aPick[1], q);
    s = P(c, "SELECT rowid, distance FROM va WHERE embedding MATCH ?1 AND k = 1");
    if (s == 0) return SQLITE_ERROR;
    bind(s, "v", q);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW || sqlite3_column_int64(s, 0) != aPick[0] || fabs(sqlite3_column_double(s, 1)) > 1e-6) {
      if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        failf(c, "va: the search for rowid %lld's vector returned %s %lld", (long long)aPick[0],
              rc == SQLITE_ROW ? "rowid" : "nothing", rc == SQLITE_ROW ? (long long)sqlite3_column_int64(s, 0) : 0LL);
      } else {
        fail_stmt(c, s, rc, "va k search");
      }
    }
    sqlite3_reset(s);
  }
  return c->bFailed ? SQLITE_ERROR : SQLITE_OK;
}

/* One read transaction: visibility of earlier commits, then the checks of one or more tables. bLong keeps
** the transaction open for a while (repeated checks with pauses of tens of milliseconds). */
static void reader_txn(Ctx *c, int bLong) {
  i64 nBefore = atomic_load(&g->committedTxn);
  if (exec_sql(c, "BEGIN", 0)) return;
  i64 txn = -1, nFirst = -1;
  sqlite3_stmt *s;
  int rc, iFirst = rnd(c, 3);
  const char *zFirst = iFirst == 1 ? "vf" : "vh";
  if (iFirst) {
    /* the read transaction starts with a vecstore statement (the index cache refreshes before any other read) */
    s = P(c, "SELECT count(*) FROM %s", zFirst);
    rc = ints(c, s, 1, &nFirst, 1);
    if (rc != SQLITE_ROW) {
      if (is_busy(rc)) atomic_fetch_add(&g->nBusyRead, 1);
      rollback(c);
      return;
    }
  }
  s = P(c, "SELECT txn FROM ledger WHERE tbl = 'all'");
  rc = ints(c, s, 1, &txn, !iFirst);
  if (rc != SQLITE_ROW) { /* SQLITE_BUSY while starting the read transaction: try again later */
    if (is_busy(rc) && !iFirst) atomic_fetch_add(&g->nBusyRead, 1);
    else if (!c->bFailed) failf(c, "the ledger has no 'all' row");
    rollback(c);
    return;
  }
  if (iFirst) {
    i64 n = -1;
    s = P(c, "SELECT n FROM ledger WHERE tbl = ?1");
    if (s) bind(s, "t", zFirst);
    if (ints(c, s, 1, &n, 0) != SQLITE_ROW) {
      rollback(c);
      return;
    }
    if (n != nFirst) {
      failf(c, "%s: count(*) as the first statement of a read transaction gave %lld, the ledger read after it %lld",
            zFirst, (long long)nFirst, (long long)n);
      rollback(c);
      return;
    }
  }
  if (txn < nBefore) {
    failf(c, "stale read: writer transaction %lld had committed before this read transaction began, but the ledger "
          "shows %lld", (long long)nBefore, (long long)txn);
    rollback(c);
    return;
  }
  for (int iRound = 0; iRound < (bLong ? 4 : 1); iRound++) {
    if (iRound) usleep((useconds_t)(20000 + rnd(c, 60000)));
    int roll = rnd(c, 8);
    if (roll < 3) rc = check_table(c, "vf", 1, 0);
    else if (roll < 6) rc = check_table(c, "vh", 0, 0);
    else if (roll < 7) rc = check_auto_table(c);
    else {
      rc = check_table(c, "vf", 1, 0);
      if (rc == SQLITE_OK) rc = check_table(c, "vh", 0, 0);
    }
    if (rc) {
      rollback(c);
      return;
    }
  }
  if (bLong) {
    i64 txnAgain = -1;
    if (ints(c, P(c, "SELECT txn FROM ledger WHERE tbl = 'all'"), 1, &txnAgain, 0) != SQLITE_ROW) {
      rollback(c);
      return;
    }
    if (txnAgain != txn) {
      failf(c, "a long read transaction saw the ledger move from %lld to %lld", (long long)txn, (long long)txnAgain);
      rollback(c);
      return;
    }
    atomic_fetch_add(&g->nLongRead, 1);
  }
  if (exec_sql(c, "COMMIT", 0)) return;
  atomic_fetch_add(&g->nReadTxn, 1);
}

/* Autocommit single statements: a vecstore count and the ledger in one statement see one snapshot. */
static void reader_autocommit(Ctx *c) {
  const char *t = rnd(c, 2) ? "vf" : "vh";
  float q[DIM];
  vec_of(-5, (i64)(splitmix(&c->rng) >> 1), q);
  int roll = rnd(c, 3);
  sqlite3_stmt *s = roll == 0
      ? P(c, "SELECT (SELECT count(*) FROM %s), (SELECT n FROM ledger WHERE tbl = '%s'), (SELECT txn FROM ledger "
          "WHERE tbl = 'all')", t, t)
      : roll == 1 ? P(c, "SELECT (SELECT n FROM ledger WHERE tbl = '%s'), (SELECT count(*) FROM %s), "
                      "(SELECT txn FROM ledger WHERE tbl = 'all')", t, t)
      : P(c, "SELECT (SELECT count(*) FROM %s WHERE embedding MATCH ?1), (SELECT n FROM ledger WHERE tbl = '%s'), "
          "(SELECT txn FROM ledger WHERE tbl = 'all')", t, t);
  if (s == 0) return;
  if (roll == 2) bind(s, "v", q);
  i64 a[3] = {-1, -1, -1};
  i64 nBefore = atomic_load(&g->committedTxn);
  int rc = ints(c, s, 3, a, 1);
  if (is_busy(rc)) {
    atomic_fetch_add(&g->nBusyRead, 1);
    return;
  }
  if (rc != SQLITE_ROW) return;
  if (a[0] != a[1]) failf(c, "%s: one autocommit statement saw the ledger count %lld and %lld rows", t, (long long)a[1],
                          (long long)a[0]);
  if (a[2] < nBefore) failf(c, "stale autocommit read: transaction %lld had committed, the statement saw %lld",
                            (long long)nBefore, (long long)a[2]);
  atomic_fetch_add(&g->nAutoRead, 1);
}

/**************************************************************************************************
** Threads, processes, setup and the final check.
*/

typedef struct ThreadArg {
  int iProc, iThread;
  uint64_t seed;
} ThreadArg;

static void *thread_main(void *pArg) {
  ThreadArg *a = (ThreadArg *)pArg;
  Ctx c;
  memset(&c, 0, sizeof(c));
  c.iProc = a->iProc;
  c.iThread = a->iThread;
  c.rng = a->seed;
  /* thread 0 writes, thread 1 reads, others mix */
  c.zRole = a->iThread == 0 ? "writer" : a->iThread == 1 ? "reader" : "mixed";
  c.db = open_db();
  while (!stopping() && !c.bFailed) {
    int roll = rnd(&c, 100);
    if (a->iThread == 0) {
      if (roll == 0) ddl_txn(&c);
      else if (roll < 85) writer_txn(&c);
      else auto_write(&c);
    } else if (a->iThread == 1) {
      if (roll < 85) reader_txn(&c, 0);
      else reader_autocommit(&c);
    } else {
      if (roll < 25) writer_txn(&c);
      else if (roll < 35) auto_write(&c);
      else if (roll < 80) reader_txn(&c, 0);
      else if (roll < 85) reader_txn(&c, 1);
      else reader_autocommit(&c);
    }
  }
  rollback(&c);
  ctx_close(&c);
  return 0;
}

static int process_main(int iProc, int nThread, uint64_t seed) {
  pthread_t aTid[16];
  ThreadArg aArg[16];
  for (int i = 0; i < nThread; i++) {
    aArg[i].iProc = iProc;
    aArg[i].iThread = i;
    aArg[i].seed = seed ^ ((uint64_t)(iProc * 16 + i + 1) * 0xD1B54A32D192ED03ull);
    if (pthread_create(&aTid[i], 0, thread_main, &aArg[i])) {
      fprintf(stderr, "soak: FAIL pthread_create\n");
      return 1;
    }
  }
  for (int i = 0; i < nThread; i++) pthread_join(aTid[i], 0);
  return atomic_load(&g->nFail) ? 1 : 0;
}

static void setup(uint64_t seed) {
  Ctx c;
  memset(&c, 0, sizeof(c));
  c.zRole = "setup";
  c.iProc = -1;
  c.rng = seed;
  c.db = open_db();
  char zMode[64];
  snprintf(zMode, sizeof(zMode), "PRAGMA journal_mode = %s", getenv("SOAK_JOURNAL") ? getenv("SOAK_JOURNAL") : "WAL");
  exec_sql(&c, zMode, 0);
  exec_sql(&c,
           "CREATE VIRTUAL TABLE vf USING vecstore(dim = 16, grp INTEGER);"
           "CREATE VIRTUAL TABLE vh USING vecstore(dim = 16, index = 'HNSW16', search_params = 'efSearch=128', "
           "grp INTEGER);"
           "CREATE VIRTUAL TABLE va USING vecstore(dim = 16);"
           "CREATE TABLE truth(tbl TEXT, rid INTEGER, id TEXT, vgen INTEGER, dgen INTEGER, PRIMARY KEY(tbl, rid));"
           "CREATE TABLE ledger(tbl TEXT PRIMARY KEY, n INTEGER, sum_rid INTEGER, chk INTEGER, txn INTEGER);"
           "INSERT INTO ledger VALUES ('vf', 0, 0, 0, 0), ('vh', 0, 0, 0, 0), ('all', 0, 0, 0, 0);",
           0);
  /* a first population, so that readers start on non-trivial tables */
  for (int i = 0; i < 12 && !c.bFailed; i++) writer_txn(&c);
  int bFailed = c.bFailed;
  ctx_close(&c);
  exit(bFailed ? 1 : 0);
}

/* After every worker has exited: a fresh connection (cold index load) checks everything. */
static int final_check(void) {
  Ctx c;
  memset(&c, 0, sizeof(c));
  c.zRole = "final";
  c.iProc = -1;
  c.rng = 12345;
  c.db = open_db();
  sqlite3_stmt *s = P(&c, "PRAGMA integrity_check");
  if (s && sqlite3_step(s) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(s, 0), "ok")) {
    failf(&c, "PRAGMA integrity_check: %s", sqlite3_column_text(s, 0));
  }
  if (s) sqlite3_reset(s);
  const char *az[] = {"vf", "vh", "va"};
  for (int i = 0; i < 3 && !c.bFailed; i++) {
    char zSql[128];
    snprintf(zSql, sizeof(zSql), "INSERT INTO %s(%s) VALUES ('integrity-check')", az[i], az[i]);
    exec_sql(&c, zSql, 0);
  }
  for (int pass = 0; pass < 2 && !c.bFailed; pass++) {
    if (exec_sql(&c, "BEGIN", 0)) break;
    if (check_table(&c, "vf", 1, 1) == SQLITE_OK && check_table(&c, "vh", 0, 1) == SQLITE_OK) check_auto_table(&c);
    rollback(&c);
    /* second pass after optimize on a fresh connection: snapshot written and loaded again */
    if (pass == 0 && !c.bFailed) {
      exec_sql(&c, "INSERT INTO vf(vf) VALUES ('optimize'); INSERT INTO vh(vh) VALUES ('optimize');", 0);
      ctx_close(&c);
      c.db = open_db();
    }
  }
  i64 nRow[3] = {0, 0, 0};
  sqlite3_stmt *pCount = c.bFailed ? 0 : P(&c, "SELECT (SELECT n FROM ledger WHERE tbl = 'vf'), "
                                             "(SELECT n FROM ledger WHERE tbl = 'vh'), (SELECT count(*) FROM va)");
  if (pCount && ints(&c, pCount, 3, nRow, 0) == SQLITE_ROW) {
    printf("soak: final check passed (fresh connection, integrity-check, every table against truth): vf %lld rows, "
           "vh %lld rows, va %lld rows\n", (long long)nRow[0], (long long)nRow[1], (long long)nRow[2]);
  }
  int bFailed = c.bFailed;
  ctx_close(&c);
  return bFailed;
}

static void remove_db(const char *z) {
  const char *aSuf[] = {"", "-wal", "-shm", "-journal"};
  char zBuf[1024];
  for (int i = 0; i < 4; i++) {
    snprintf(zBuf, sizeof(zBuf), "%s%s", z, aSuf[i]);
    unlink(zBuf);
  }
}

int main(int argc, char **argv) {
  const char *zSec = getenv("SOAK_SECONDS");
  double rSeconds = argc > 1 ? atof(argv[1]) : zSec ? atof(zSec) : 30;
  int nProc = argc > 2 ? atoi(argv[2]) : 3;
  int nThread = argc > 3 ? atoi(argv[3]) : 3;
  if (rSeconds <= 0 || nProc < 1 || nProc > 16 || nThread < 1 || nThread > 16) {
    fprintf(stderr, "usage: soak [seconds] [processes 1..16] [threads 1..16]\n");
    return 2;
  }
  zExtPath = getenv("VECSTORE_EXT") ? getenv("VECSTORE_EXT") : "build/vecstore";
  const char *zSeed = getenv("SOAK_SEED");
  uint64_t seed = zSeed ? strtoull(zSeed, 0, 0) : (uint64_t)time(0) ^ ((uint64_t)getpid() << 20);
  static char zPath[512];
  const char *zDir = getenv("SOAK_DIR");
  if (zDir == 0) {
    mkdir("build", 0755);
    mkdir("build/test-tmp", 0755);
    zDir = "build/test-tmp";
  }
  snprintf(zPath, sizeof(zPath), "%s/soak-%d.db", zDir, (int)getpid());
  zDbPath = zPath;
  remove_db(zDbPath);

  g = mmap(0, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (g == MAP_FAILED) return 2;
  memset(g, 0, sizeof(*g));

  /* The parent never loads the extension before the last fork (OpenMP and Faiss state are not fork-safe):
  ** setup runs in a child of its own. */
  rDeadline = now_sec() + 3600;
  pid_t pid = fork();
  if (pid == 0) setup(seed);
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "soak: FAIL setup (status %d), database %s\n", st, zDbPath);
    return 1;
  }

  double t0 = now_sec();
  rDeadline = t0 + rSeconds;
  pid_t aPid[16];
  for (int i = 0; i < nProc; i++) {
    aPid[i] = fork();
    if (aPid[i] == 0) _exit(process_main(i, nThread, seed + (uint64_t)i * 7919));
  }
  /* A watchdog: a process still running long after the deadline is hung (a deadlock, a lost wakeup). */
  int nLeft = nProc, bHung = 0;
  double rKill = rDeadline + 60 + rSeconds / 2;
  while (nLeft > 0) {
    pid_t p = waitpid(-1, &st, WNOHANG);
    if (p > 0) {
      nLeft--;
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (WIFSIGNALED(st)) fprintf(stderr, "soak: FAIL a worker process died of signal %d\n", WTERMSIG(st));
        atomic_fetch_add(&g->nFail, 1);
      }
      continue;
    }
    if (p < 0 && errno != EINTR) break;
    if (now_sec() > rKill && !bHung) {
      fprintf(stderr, "soak: FAIL worker processes still running %.0f s after the deadline: killed\n",
              now_sec() - rDeadline);
      for (int i = 0; i < nProc; i++) kill(aPid[i], SIGKILL);
      bHung = 1;
      atomic_fetch_add(&g->nFail, 1);
    }
    usleep(20000);
  }
  double rElapsed = now_sec() - t0;
  int nFail = atomic_load(&g->nFail);
  rDeadline = now_sec() + 3600;
  atomic_store(&g->stop, 0);
  if (nFail == 0) nFail += final_check();

  printf("soak: %.0f s, %d processes x %d threads, seed %llu: %lld write txns (%.0f/s, %lld rolled back on "
         "purpose), %lld write statements (%.0f/s), %lld autocommit writes, %lld read txns (%.0f/s), %lld reader "
         "checks (%.0f/s), %lld long read txns, %lld autocommit reads, %lld savepoints, %lld commands, %lld schema "
         "changes; SQLITE_BUSY "
         "retried: %lld BEGIN IMMEDIATE, %lld COMMIT (%lld went on writing, %lld rolled back), %lld read starts, %lld "
         "autocommit writes, %lld prepares\n",
         rElapsed, nProc, nThread, (unsigned long long)seed, (long long)g->nWriteTxn, g->nWriteTxn / rElapsed,
         (long long)g->nRollbackTxn, (long long)g->nWriteStmt, g->nWriteStmt / rElapsed, (long long)g->nAutoWrite,
         (long long)g->nReadTxn, g->nReadTxn / rElapsed, (long long)g->nReadQuery, g->nReadQuery / rElapsed,
         (long long)g->nLongRead, (long long)g->nAutoRead, (long long)g->nSavepoint, (long long)g->nCommand,
         (long long)g->nDdl, (long long)g->nBusyBegin, (long long)g->nBusyCommit, (long long)g->nCommitGoOn,
         (long long)g->nCommitGiveUp, (long long)g->nBusyRead, (long long)g->nBusyAuto, (long long)g->nBusyPrepare);
  if (nFail) {
    fprintf(stderr, "soak: FAILED (%d failures); the database is kept: %s\n", nFail, zDbPath);
    return 1;
  }
  if (g->nWriteTxn == 0 || g->nReadTxn == 0) {
    fprintf(stderr, "soak: FAIL no progress (write txns %lld, read txns %lld)\n", (long long)g->nWriteTxn,
            (long long)g->nReadTxn);
    return 1;
  }
  remove_db(zDbPath);
  return 0;
}
