/*
** test_columns.c: declared-column conditions checked on the columns held in memory (ext/columns.c).
**
** Most tests connect with VECSTORE_TEST_FILTER_IN_MEMORY set, so every search with a declared-column condition
** takes the in-memory path whatever the table's size, and compare each answer with the same condition run by
** SQLite itself on a plain table holding the same rows (same column types, same values): the in-memory copy must
** follow SQLite's comparison rules (affinity, NULL, numbers against text, integers against reals, BLOBs) and stay
** current across commits of other connections, snapshots, transactions, savepoints and rollbacks.
*/
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIM 4
#define K 12

/* Creates a vecstore table t (index zIndex) and a plain table p with the same declared columns. */
static void create_tables(sqlite3 *db, const char *zIndex) {
  tu_exec_fmt(db,
              "CREATE VIRTUAL TABLE t USING vecstore(dim=4, index='%s', ni INTEGER, nr REAL, nt TEXT, nb BLOB);"
              "CREATE TABLE p(rowid INTEGER PRIMARY KEY, emb BLOB, ni INTEGER, nr REAL, nt TEXT, nb BLOB);",
              zIndex);
}

/* The switch is read when a connection first uses the table, so it stays set while such a connection is open. */
static sqlite3 *open_in_memory_path(const char *zPath) {
  setenv("VECSTORE_TEST_FILTER_IN_MEMORY", "1", 1);
  return tu_open(zPath);
}

/* A value of the pools below, bound as the text says: i:<int>, r:<real>, t:<text>, b:<hex blob>, n (NULL). */
static void bind_spec(sqlite3_stmt *pStmt, int i, const char *zSpec) {
  switch (zSpec[0]) {
    case 'i': sqlite3_bind_int64(pStmt, i, strtoll(zSpec + 2, 0, 10)); break;
    case 'r': sqlite3_bind_double(pStmt, i, strtod(zSpec + 2, 0)); break;
    case 't': sqlite3_bind_text(pStmt, i, zSpec + 2, -1, SQLITE_TRANSIENT); break;
    case 'b': {
      unsigned char a[16];
      int n = 0;
      for (const char *z = zSpec + 2; z[0] && z[1] && n < 16; z += 2) {
        unsigned v = 0;
        sscanf(z, "%2x", &v);
        a[n++] = (unsigned char)v;
      }
      sqlite3_bind_blob(pStmt, i, a, n, SQLITE_TRANSIENT);
      break;
    }
    default: sqlite3_bind_null(pStmt, i); break;
  }
}

/* Stored values per column (what INSERT binds; the declared type's affinity converts them alike in t and p). */
static const char *const azNi[] = {"n", "i:-3", "i:-1", "i:0", "i:1", "r:2.0", "i:3", "i:4611686018427387904",
                                   "i:4611686018427387905", "t:7"};
static const char *const azNr[] = {"n", "r:-2.5", "r:-0.5", "r:0.0", "r:0.5", "r:2.0", "r:2.5", "i:3", "r:1e300", "t:1.5"};
static const char *const azNt[] = {"n", "t:a", "t:ab", "t:b", "t:B", "t:10", "t:9", "t:", "i:10", "r:2.5"};
static const char *const azNb[] = {"n", "b:00", "b:0001", "b:ff", "t:a", "i:5", "r:2.5", "b:", "t:10", "i:-1"};
/* Values conditions compare with: every type, numbers as text, text that looks like numbers. */
static const char *const azQ[] = {"n",      "i:0",   "i:2",   "i:3",  "i:10",  "i:-1",  "i:4611686018427387904",
                                  "r:2.0",  "r:2.5", "r:4611686018427387904", "r:0.5", "r:-0.5", "r:1e19", "r:9.2e18", "t:2",
                                  "t: 2 ",  "t:2.5", "t:a",   "t:ab", "t:10",  "t:9",   "t:",
                                  "t:1e300", "b:00", "b:0001", "b:",  "t:B",   "i:5",   "t:x"};
#define NQ ((int)(sizeof(azQ) / sizeof(azQ[0])))

static const char *const azCol[] = {"ni", "nr", "nt", "nb"};
static const char *const *const aaPool[] = {azNi, azNr, azNt, azNb};

static void random_vector(uint64_t *pState, float *a) {
  for (int j = 0; j < DIM; j++) a[j] = (float)(tu_rand_unit(pState) * 2.0 - 1.0);
}

/* Inserts row iRowid with random values into t and p (through db, which has both). */
static void insert_row(sqlite3 *db, uint64_t *pState, sqlite3_int64 iRowid) {
  float v[DIM];
  random_vector(pState, v);
  const char *azSpec[4];
  for (int c = 0; c < 4; c++) azSpec[c] = aaPool[c][tu_rand(pState) % 10];
  const char *azSql[] = {"INSERT INTO t(rowid, embedding, ni, nr, nt, nb) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                         "INSERT INTO p(rowid, emb, ni, nr, nt, nb) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"};
  for (int t = 0; t < 2; t++) {
    sqlite3_stmt *pStmt = tu_prepare(db, azSql[t]);
    sqlite3_bind_int64(pStmt, 1, iRowid);
    sqlite3_bind_blob(pStmt, 2, v, sizeof(v), SQLITE_TRANSIENT);
    for (int c = 0; c < 4; c++) bind_spec(pStmt, 3 + c, azSpec[c]);
    assert_int_equal(sqlite3_step(pStmt), SQLITE_DONE);
    sqlite3_finalize(pStmt);
  }
}

/* create_tables, then rows 1..nRow with random values in t and p, in one transaction. */
static void create_and_fill(sqlite3 *db, const char *zIndex, int nRow, uint64_t *pState) {
  create_tables(db, zIndex);
  tu_exec(db, "BEGIN");
  for (int i = 1; i <= nRow; i++) insert_row(db, pState, i);
  tu_exec(db, "COMMIT");
}

/* Sets column c of row iRowid to a random pool value in t and p (an UPDATE of declared columns alone). */
static void update_column(sqlite3 *db, uint64_t *pState, sqlite3_int64 iRowid, int c) {
  const char *zSpec = aaPool[c][tu_rand(pState) % 10];
  for (int t = 0; t < 2; t++) {
    char *zSql = sqlite3_mprintf("UPDATE %s SET %s = ?1 WHERE rowid = ?2", t ? "p" : "t", azCol[c]);
    sqlite3_stmt *pStmt = tu_prepare(db, zSql);
    sqlite3_free(zSql);
    bind_spec(pStmt, 1, zSpec);
    sqlite3_bind_int64(pStmt, 2, iRowid);
    assert_int_equal(sqlite3_step(pStmt), SQLITE_DONE);
    sqlite3_finalize(pStmt);
  }
}

static void delete_row(sqlite3 *db, sqlite3_int64 iRowid) {
  char *zSql = sqlite3_mprintf("DELETE FROM t WHERE rowid = %lld; DELETE FROM p WHERE rowid = %lld", iRowid, iRowid);
  tu_exec(db, zSql);
  sqlite3_free(zSql);
}

/* A random condition on one column: its SQL with ?N placeholders from *piParam on, and the specs to bind. */
typedef struct Condition {
  char zSql[160];
  const char *azBind[4];
  int nBind;
} Condition;

/* A random query value. Under valgrind, whose x87 emulation has no 80-bit long double, SQLite's own comparison
** of 2^62 + 1 with the real 2^62 rounds (it compares as long double), so the reference would be wrong for that one
** value: tests/run.sh says when valgrind runs. */
static const char *random_query_value(uint64_t *pState) {
  for (;;) {
    const char *z = azQ[tu_rand(pState) % NQ];
    if (strcmp(z, "r:4611686018427387904") != 0 || getenv("VECSTORE_TEST_UNDER_VALGRIND") == 0) return z;
  }
}

static void random_condition(uint64_t *pState, Condition *pC, int *piParam) {
  static const char *const azOp[] = {"=", "!=", "<", "<=", ">", ">=", "IS", "IS NOT", "IS NULL", "IS NOT NULL", "IN"};
  const char *zCol = azCol[tu_rand(pState) % 4];
  int iOp = (int)(tu_rand(pState) % 11);
  pC->nBind = 0;
  if (iOp == 8 || iOp == 9) {
    snprintf(pC->zSql, sizeof(pC->zSql), "%s %s", zCol, azOp[iOp]);
  } else if (iOp == 10) {
    int n = 1 + (int)(tu_rand(pState) % 3);
    int nUsed = snprintf(pC->zSql, sizeof(pC->zSql), "%s IN (", zCol);
    for (int i = 0; i < n; i++) {
      nUsed += snprintf(pC->zSql + nUsed, sizeof(pC->zSql) - (size_t)nUsed, "%s?%d", i ? ", " : "", (*piParam)++);
      pC->azBind[pC->nBind++] = random_query_value(pState);
    }
    snprintf(pC->zSql + nUsed, sizeof(pC->zSql) - (size_t)nUsed, ")");
  } else {
    snprintf(pC->zSql, sizeof(pC->zSql), "%s %s ?%d", zCol, azOp[iOp], (*piParam)++);
    pC->azBind[pC->nBind++] = random_query_value(pState);
  }
}

/* Runs a search on t twice (the second time the same conditions searched again in a row are tested through label
** bits) and the same condition on p (ordered by the same distance): the rowid lists must agree. */
static void compare_search(sqlite3 *db, const float *q, const Condition *aC, int nC, int k) {
  char zWhere[512] = "";
  int n = 0;
  for (int i = 0; i < nC; i++) n += snprintf(zWhere + n, sizeof(zWhere) - (size_t)n, " AND %s", aC[i].zSql);
  char *zT = sqlite3_mprintf("SELECT rowid FROM t WHERE embedding MATCH ?1%s AND k = %d", zWhere, k);
  char *zP = sqlite3_mprintf("SELECT rowid FROM p WHERE 1%s ORDER BY vecstore_distance(emb, ?1), rowid LIMIT %d",
                             zWhere, k);
  static sqlite3_int64 aRow[3][1024];
  int nRow[3] = {0, 0, 0};
  for (int t = 0; t < 3; t++) {
    sqlite3_stmt *pStmt = tu_prepare(db, t == 1 ? zP : zT);
    sqlite3_bind_blob(pStmt, 1, q, DIM * (int)sizeof(float), SQLITE_TRANSIENT);
    int iParam = 2;
    for (int i = 0; i < nC; i++) {
      for (int j = 0; j < aC[i].nBind; j++) bind_spec(pStmt, iParam++, aC[i].azBind[j]);
    }
    int rc;
    while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW && nRow[t] < 1024) aRow[t][nRow[t]++] = sqlite3_column_int64(pStmt, 0);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) fail_msg("%s: %s", t == 1 ? zP : zT, sqlite3_errmsg(db));
    sqlite3_finalize(pStmt);
  }
  int bSame = nRow[0] == nRow[1] && nRow[2] == nRow[1];
  for (int i = 0; bSame && i < nRow[0]; i++) bSame = aRow[0][i] == aRow[1][i] && aRow[2][i] == aRow[1][i];
  if (!bSame) {
    fprintf(stderr, "mismatch for%s (binds:", zWhere);
    for (int i = 0; i < nC; i++) {
      for (int j = 0; j < aC[i].nBind; j++) fprintf(stderr, " %s", aC[i].azBind[j]);
    }
    fprintf(stderr, ")\n  vecstore %d rows:", nRow[0]);
    for (int i = 0; i < nRow[0]; i++) fprintf(stderr, " %lld", aRow[0][i]);
    fprintf(stderr, "\n  sqlite   %d rows:", nRow[1]);
    for (int i = 0; i < nRow[1]; i++) fprintf(stderr, " %lld", aRow[1][i]);
    fprintf(stderr, "\n  again    %d rows:", nRow[2]);
    for (int i = 0; i < nRow[2]; i++) fprintf(stderr, " %lld", aRow[2][i]);
    fprintf(stderr, "\n");
  }
  sqlite3_free(zT);
  sqlite3_free(zP);
  assert_true(bSame);
}

/* nTrial random searches with one or two random conditions. */
static void compare_random(sqlite3 *db, uint64_t *pState, int nTrial) {
  for (int trial = 0; trial < nTrial; trial++) {
    float q[DIM];
    random_vector(pState, q);
    Condition aC[2];
    int iParam = 2;
    int nC = 1 + (int)(tu_rand(pState) % 2);
    for (int i = 0; i < nC; i++) random_condition(pState, &aC[i], &iParam);
    compare_search(db, q, aC, nC, 1 + (int)(tu_rand(pState) % K));
  }
}

/* Declared columns store each value as a plain column of the same type does: a BLOB column once stored the text
** '10' as the integer 10 (the write's type check converted the value in place). */
static void test_stored_like_plain_table(void **state) {
  (void)state;
  char *zPath = tu_path("stored.db");
  tu_remove_db(zPath);
  unsetenv("VECSTORE_TEST_FILTER_IN_MEMORY");
  sqlite3 *db = tu_open(zPath);
  create_tables(db, "Flat");
  float v[DIM] = {1, 2, 3, 4};
  for (int c = 0; c < 4; c++) {
    for (int i = 0; i < 10; i++) {
      sqlite3_int64 iRowid = 1 + c * 10 + i;
      for (int t = 0; t < 2; t++) {
        char *zSql = sqlite3_mprintf("INSERT INTO %s(rowid, %s, %s) VALUES (?1, ?2, ?3)", t ? "p" : "t",
                                     t ? "emb" : "embedding", azCol[c]);
        sqlite3_stmt *pStmt = tu_prepare(db, zSql);
        sqlite3_free(zSql);
        sqlite3_bind_int64(pStmt, 1, iRowid);
        sqlite3_bind_blob(pStmt, 2, v, sizeof(v), SQLITE_TRANSIENT);
        bind_spec(pStmt, 3, aaPool[c][i]);
        assert_int_equal(sqlite3_step(pStmt), SQLITE_DONE);
        sqlite3_finalize(pStmt);
      }
    }
  }
  tu_expect_text(db, "SELECT count(*) FROM t_docs d JOIN p USING (rowid) WHERE quote(d.ni) IS quote(p.ni) AND "
                 "quote(d.nr) IS quote(p.nr) AND quote(d.nt) IS quote(p.nt) AND quote(d.nb) IS quote(p.nb)", "40");
  tu_expect_text(db, "SELECT typeof(nb) || ':' || nb FROM t WHERE rowid = 39", "text:10");
  sqlite3_close(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/* Every row's every column, compared whole: each column IS each value of its pool (k large enough for all). */
static void compare_all(sqlite3 *db) {
  float q[DIM] = {0.3f, -0.1f, 0.7f, 0.2f};
  for (int c = 0; c < 4; c++) {
    for (int i = 0; i < 10; i++) {
      Condition cond;
      snprintf(cond.zSql, sizeof(cond.zSql), "%s IS ?2", azCol[c]);
      cond.azBind[0] = aaPool[c][i];
      cond.nBind = 1;
      compare_search(db, q, &cond, 1, 1000);
    }
  }
}

/* Every operator, column type and value type against SQLite's own evaluation. */
static void test_rules_match_sqlite(void **state) {
  (void)state;
  char *zPath = tu_path("rules.db");
  tu_remove_db(zPath);
  sqlite3 *db = open_in_memory_path(zPath);
  uint64_t s = 42;
  create_and_fill(db, "Flat", 600, &s);
  compare_random(db, &s, 3000);
  /* A few fixed cases worth naming. */
  float q[DIM] = {0.1f, 0.2f, 0.3f, 0.4f};
  Condition c = {"ni = ?2", {"t:2"}, 1}; /* text that looks like a number, against INTEGER */
  compare_search(db, q, &c, 1, K);
  Condition c2 = {"nt = ?2", {"i:10"}, 1}; /* a number against TEXT: compared as its text */
  compare_search(db, q, &c2, 1, K);
  Condition c3 = {"ni < ?2", {"r:9.2e18"}, 1}; /* a huge integer against a real, exactly */
  compare_search(db, q, &c3, 1, K);
  Condition c4 = {"nb >= ?2", {"t:a"}, 1}; /* mixed types in a BLOB column: numbers < text < BLOBs */
  compare_search(db, q, &c4, 1, K);
  Condition c5 = {"nr IN (?2, ?3)", {"n", "r:2.5"}, 2}; /* NULL in an IN list matches nothing */
  compare_search(db, q, &c5, 1, K);
  sqlite3_close(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/* The copy of one connection follows what another commits: column-only updates, inserts, deletes, and a new
** snapshot generation (enough changes to replace the log). */
static void test_follows_other_connection(void **state) {
  (void)state;
  char *zPath = tu_path("follow.db");
  tu_remove_db(zPath);
  sqlite3 *dbA = open_in_memory_path(zPath);
  sqlite3 *dbB = open_in_memory_path(zPath);
  uint64_t s = 7;
  create_and_fill(dbA, "Flat", 300, &s);
  compare_random(dbA, &s, 100); /* A holds the columns in memory from here on */
  for (int round = 0; round < 6; round++) {
    int nChange = round == 4 ? 300 : 20;
    sqlite3_int64 iGen = tu_int(dbB, "SELECT value FROM t_config WHERE key = 'snapshot_gen'");
    tu_exec(dbB, "BEGIN");
    if (round == 4) tu_exec(dbB, "INSERT INTO t(t) VALUES ('optimize')"); /* a new snapshot generation */
    for (int i = 0; i < nChange; i++) {
      sqlite3_int64 iRowid = 1 + (sqlite3_int64)(tu_rand(&s) % 300);
      if (round == 4 || i % 4 != 3) {
        update_column(dbB, &s, iRowid, (int)(tu_rand(&s) % 4));
      } else if (tu_int(dbB, "SELECT count(*) FROM p") > 200 && i % 8 == 3) {
        char *zSql = sqlite3_mprintf("SELECT count(*) FROM p WHERE rowid = %lld", iRowid);
        if (tu_int(dbB, zSql)) delete_row(dbB, iRowid);
        sqlite3_free(zSql);
      } else {
        insert_row(dbB, &s, 1000 + round * 100 + i);
      }
    }
    tu_exec(dbB, "COMMIT");
    assert_true((tu_int(dbB, "SELECT value FROM t_config WHERE key = 'snapshot_gen'") != iGen) == (round == 4));
    compare_random(dbA, &s, 150);
    compare_all(dbA);
  }
  /* A column-only update is one log entry of op 2, which integrity-check accepts. */
  sqlite3_int64 nBefore = tu_int(dbA, "SELECT count(*) FROM t_log WHERE op = 2 AND rowid = 5");
  tu_exec(dbB, "UPDATE t SET ni = 99 WHERE rowid = 5; UPDATE p SET ni = 99 WHERE rowid = 5");
  assert_int_equal(tu_int(dbA, "SELECT count(*) FROM t_log WHERE op = 2 AND rowid = 5"), nBefore + 1);
  float q[DIM] = {0.5f, -0.5f, 0.25f, 0.0f};
  Condition c = {"ni = ?2", {"i:99"}, 1};
  compare_search(dbA, q, &c, 1, K);
  tu_exec(dbA, "INSERT INTO t(t) VALUES ('integrity-check')");
  sqlite3_close(dbA);
  sqlite3_close(dbB);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/* Inside a transaction a search sees the transaction's own column changes; ROLLBACK TO and ROLLBACK bring the
** committed values back, including when the columns were first read inside the transaction. */
static void test_transaction_and_rollback(void **state) {
  (void)state;
  char *zPath = tu_path("txn.db");
  tu_remove_db(zPath);
  sqlite3 *db = open_in_memory_path(zPath);
  uint64_t s = 99;
  create_and_fill(db, "Flat", 300, &s);
  for (int round = 0; round < 8; round++) {
    /* Rounds alternate: the columns already in memory, or first read inside the transaction. */
    if (round % 2 == 1) {
      sqlite3_close(db);
      db = open_in_memory_path(zPath);
    } else {
      compare_random(db, &s, 20);
    }
    tu_exec(db, "BEGIN");
    for (int i = 0; i < 10; i++) update_column(db, &s, 1 + (sqlite3_int64)(tu_rand(&s) % 300), (int)(tu_rand(&s) % 4));
    compare_random(db, &s, 60);
    tu_exec(db, "SAVEPOINT sp");
    for (int i = 0; i < 10; i++) update_column(db, &s, 1 + (sqlite3_int64)(tu_rand(&s) % 300), (int)(tu_rand(&s) % 4));
    insert_row(db, &s, 5000 + round);
    compare_random(db, &s, 60);
    compare_all(db);
    tu_exec(db, "ROLLBACK TO sp; RELEASE sp");
    compare_random(db, &s, 60);
    compare_all(db);
    tu_exec(db, round % 4 < 2 ? "ROLLBACK" : "COMMIT");
    compare_random(db, &s, 60);
    compare_all(db);
  }
  sqlite3_close(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/* Without the test switch, a condition most rows meet on a table large enough takes the in-memory path by
** itself: the answers are still SQLite's, and other connections' column updates still show. */
static void test_broad_condition_natural_path(void **state) {
  (void)state;
  char *zPath = tu_path("broad.db");
  tu_remove_db(zPath);
  unsetenv("VECSTORE_TEST_FILTER_IN_MEMORY");
  sqlite3 *dbA = tu_open(zPath);
  sqlite3 *dbB = tu_open(zPath);
  uint64_t s = 5;
  create_and_fill(dbA, "Flat", 6000, &s);
  for (int round = 0; round < 3; round++) {
    for (int trial = 0; trial < 40; trial++) {
      float q[DIM];
      random_vector(&s, q);
      Condition c = {"ni IS NOT ?2", {"i:0"}, 1}; /* about 90% of the rows */
      compare_search(dbA, q, &c, 1, 1 + trial % 3);
      Condition c2 = {"nt != ?2", {"t:a"}, 1};
      compare_search(dbA, q, &c2, 1, 2);
    }
    tu_exec(dbB, "BEGIN");
    for (int i = 0; i < 200; i++) update_column(dbB, &s, 1 + (sqlite3_int64)(tu_rand(&s) % 6000), i % 4);
    tu_exec(dbB, "COMMIT");
  }
  sqlite3_close(dbA);
  sqlite3_close(dbB);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/* IVF with a broad condition checked inside the list scan: the first lists probed may hold only a few matches, and
** those need not be the nearest; more lists are probed before anything is returned (recall was 0.76 before). */
static void test_ivf_broad_filter_recall(void **state) {
  (void)state;
  char *zPath = tu_path("ivf.db");
  tu_remove_db(zPath);
  unsetenv("VECSTORE_TEST_FILTER_IN_MEMORY");
  sqlite3 *db = tu_open(zPath);
  enum { D = 16, NCLUSTER = 300, NROW = 12000 };
  tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim=16, index='IVF256,Flat', search_params='nprobe=1', grp INTEGER)");
  uint64_t s = 11;
  static float aCenter[NCLUSTER][D];
  for (int c = 0; c < NCLUSTER; c++) {
    for (int j = 0; j < D; j++) aCenter[c][j] = (float)(tu_rand_unit(&s) * 2.0 - 1.0);
  }
  sqlite3_stmt *pIns = tu_prepare(db, "INSERT INTO t(rowid, embedding, grp) VALUES (?1, ?2, ?3)");
  tu_exec(db, "BEGIN");
  for (int i = 1; i <= NROW; i++) {
    float v[D];
    int c = (int)(tu_rand(&s) % NCLUSTER);
    for (int j = 0; j < D; j++) v[j] = aCenter[c][j] + (float)((tu_rand_unit(&s) - 0.5) * 0.2);
    sqlite3_bind_int64(pIns, 1, i);
    sqlite3_bind_blob(pIns, 2, v, sizeof(v), SQLITE_TRANSIENT);
    sqlite3_bind_int(pIns, 3, i % 4 == 0);
    assert_int_equal(sqlite3_step(pIns), SQLITE_DONE);
    sqlite3_reset(pIns);
  }
  sqlite3_finalize(pIns);
  tu_exec(db, "COMMIT");
  sqlite3_stmt *pAnn = tu_prepare(db, "SELECT rowid FROM t WHERE embedding MATCH ?1 AND grp = 1 AND k = 10");
  sqlite3_stmt *pExact = tu_prepare(db, "SELECT rowid FROM t WHERE embedding MATCH ?1 AND grp = 1 AND k = 10 AND "
                                        "search_params = 'nprobe=256'");
  int nHit = 0, nAll = 0;
  for (int qn = 0; qn < 40; qn++) {
    float q[D];
    int c = (int)(tu_rand(&s) % NCLUSTER);
    for (int j = 0; j < D; j++) q[j] = aCenter[c][j] + (float)((tu_rand_unit(&s) - 0.5) * 0.2);
    sqlite3_int64 aWant[10];
    int nWant = 0;
    sqlite3_bind_blob(pExact, 1, q, sizeof(q), SQLITE_TRANSIENT);
    while (sqlite3_step(pExact) == SQLITE_ROW) aWant[nWant++] = sqlite3_column_int64(pExact, 0);
    sqlite3_reset(pExact);
    assert_int_equal(nWant, 10);
    sqlite3_bind_blob(pAnn, 1, q, sizeof(q), SQLITE_TRANSIENT);
    int nGot = 0;
    while (sqlite3_step(pAnn) == SQLITE_ROW) {
      sqlite3_int64 iRowid = sqlite3_column_int64(pAnn, 0);
      for (int i = 0; i < nWant; i++) nHit += aWant[i] == iRowid;
      nGot++;
    }
    sqlite3_reset(pAnn);
    assert_int_equal(nGot, 10);
    nAll += nWant;
  }
  sqlite3_finalize(pAnn);
  sqlite3_finalize(pExact);
  printf("    IVF256 nprobe=1, grp = 1 (25%%): recall@10 %.3f\n", (double)nHit / nAll);
  assert_true(nHit >= 0.9 * nAll);
  sqlite3_close(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/* Checks a selective declared-column search on IVF-Flat (scored exactly, from the index's own lists through its
** label lookup) against distances computed from the stored vectors. */
static void check_ivf_exact(sqlite3 *db, uint64_t *pState) {
  sqlite3_stmt *pSearch = tu_prepare(db, "SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND grp = 1 AND k = 1000");
  sqlite3_stmt *pRef = tu_prepare(db, "SELECT d.rowid, vecstore_distance(v.embedding, ?1) AS dist FROM t_docs d JOIN "
                                      "t_vectors v USING (rowid) WHERE d.grp = 1 ORDER BY dist, d.rowid");
  for (int qn = 0; qn < 5; qn++) {
    float q[8];
    for (int j = 0; j < 8; j++) q[j] = (float)(tu_rand_unit(pState) * 2.0 - 1.0);
    sqlite3_bind_blob(pSearch, 1, q, sizeof(q), SQLITE_TRANSIENT);
    sqlite3_bind_blob(pRef, 1, q, sizeof(q), SQLITE_TRANSIENT);
    int n = 0;
    while (sqlite3_step(pRef) == SQLITE_ROW) {
      assert_int_equal(sqlite3_step(pSearch), SQLITE_ROW);
      double rWant = sqlite3_column_double(pRef, 1), rGot = sqlite3_column_double(pSearch, 1);
      if (sqlite3_column_int64(pSearch, 0) != sqlite3_column_int64(pRef, 0)) {
        /* only a tie in distance may swap two rows */
        assert_true(fabs(rGot - rWant) <= 1e-5 * (1.0 + fabs(rWant)));
      }
      assert_true(fabs(rGot - rWant) <= 1e-5 * (1.0 + fabs(rWant)));
      n++;
    }
    assert_int_equal(sqlite3_step(pSearch), SQLITE_DONE);
    assert_true(n > 0);
    sqlite3_reset(pSearch);
    sqlite3_reset(pRef);
  }
  sqlite3_finalize(pSearch);
  sqlite3_finalize(pRef);
}

/* IVF-Flat keeps a label lookup (rebuilt from its lists on every load) so that few matching rows are scored from
** its lists: exact after training, reopening, adds, vector updates, deletes and a compacting optimize. */
static void test_ivf_exact_among_from_lists(void **state) {
  (void)state;
  char *zPath = tu_path("ivflookup.db");
  tu_remove_db(zPath);
  unsetenv("VECSTORE_TEST_FILTER_IN_MEMORY");
  sqlite3 *db = tu_open(zPath);
  tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim=8, index='IVF16,Flat', grp INTEGER)");
  uint64_t s = 21;
  sqlite3_stmt *pIns = tu_prepare(db, "INSERT OR REPLACE INTO t(rowid, embedding, grp) VALUES (?1, ?2, ?3)");
  for (int round = 0; round < 5; round++) {
    tu_exec(db, "BEGIN");
    for (int i = 0; i < (round == 0 ? 3000 : 200); i++) {
      float v[8];
      for (int j = 0; j < 8; j++) v[j] = (float)(tu_rand_unit(&s) * 2.0 - 1.0);
      sqlite3_int64 iRowid = round == 0 ? i + 1 : 1 + (sqlite3_int64)(tu_rand(&s) % 3400); /* new rows and updates */
      sqlite3_bind_int64(pIns, 1, iRowid);
      sqlite3_bind_blob(pIns, 2, v, sizeof(v), SQLITE_TRANSIENT);
      sqlite3_bind_int(pIns, 3, tu_rand(&s) % 50 == 0);
      assert_int_equal(sqlite3_step(pIns), SQLITE_DONE);
      sqlite3_reset(pIns);
    }
    if (round == 2) tu_exec(db, "DELETE FROM t WHERE rowid % 7 = 0");
    if (round == 3) tu_exec(db, "INSERT INTO t(t) VALUES ('optimize')");
    tu_exec(db, "COMMIT");
    check_ivf_exact(db, &s);
    sqlite3_finalize(pIns);
    sqlite3_close(db);
    db = tu_open(zPath); /* the lookup is rebuilt from the lists of the snapshot + log */
    check_ivf_exact(db, &s);
    pIns = tu_prepare(db, "INSERT OR REPLACE INTO t(rowid, embedding, grp) VALUES (?1, ?2, ?3)");
  }
  sqlite3_finalize(pIns);
  sqlite3_close(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/* The label bits of a condition searched again describe one state of the index and the columns: after another
** connection's column-only update, a vector update, an insert, a delete or a transaction's own change, the same
** condition searched once more must not answer from stale bits. */
static void test_label_bits_follow_changes(void **state) {
  (void)state;
  char *zPath = tu_path("bits.db");
  tu_remove_db(zPath);
  for (int bHnsw = 0; bHnsw < 2; bHnsw++) {
    setenv("VECSTORE_TEST_FILTER_IN_MEMORY", "1", 1);
    sqlite3 *dbA = tu_open(zPath);
    sqlite3 *dbB = tu_open(zPath);
    uint64_t s = 77;
    create_and_fill(dbA, bHnsw ? "HNSW16" : "Flat", 400, &s);
    float q[DIM] = {0.2f, 0.1f, -0.3f, 0.4f};
    Condition c = {"ni = ?2", {"i:1"}, 1};
    const char *const azChange[] = {
        /* B: column-only updates that move rows into and out of the condition */
        "UPDATE t SET ni = 1 WHERE rowid % 9 = 0; UPDATE p SET ni = 1 WHERE rowid % 9 = 0",
        "UPDATE t SET ni = 2 WHERE ni = 1 AND rowid % 2 = 0; UPDATE p SET ni = 2 WHERE ni = 1 AND rowid % 2 = 0",
        /* B: vector updates, inserts and deletes */
        "UPDATE t SET embedding = vecstore_vector('[0.2, 0.1, -0.3, 0.4]') WHERE rowid IN (5, 6, 7); "
        "UPDATE p SET emb = vecstore_vector('[0.2, 0.1, -0.3, 0.4]') WHERE rowid IN (5, 6, 7)",
        "INSERT INTO t(rowid, embedding, ni) VALUES (1000, vecstore_vector('[0.2, 0.1, -0.3, 0.41]'), 1); "
        "INSERT INTO p(rowid, emb, ni) VALUES (1000, vecstore_vector('[0.2, 0.1, -0.3, 0.41]'), 1)",
        "DELETE FROM t WHERE ni = 1 AND rowid % 3 = 0; DELETE FROM p WHERE ni = 1 AND rowid % 3 = 0",
        "INSERT INTO t(t) VALUES ('optimize')",
    };
    for (size_t i = 0; i < sizeof(azChange) / sizeof(azChange[0]); i++) {
      compare_search(dbA, q, &c, 1, 30); /* searched twice: the second time through label bits */
      tu_exec(dbB, azChange[i]);
      compare_search(dbA, q, &c, 1, 30);
    }
    /* A's own transaction: its changes are checked with SQL, never through bits built before them */
    compare_search(dbA, q, &c, 1, 30);
    tu_exec(dbA, "BEGIN; UPDATE t SET ni = 1 WHERE rowid = 11; UPDATE p SET ni = 1 WHERE rowid = 11");
    compare_search(dbA, q, &c, 1, 30);
    tu_exec(dbA, "ROLLBACK");
    compare_search(dbA, q, &c, 1, 30);
    sqlite3_close(dbA);
    sqlite3_close(dbB);
    tu_remove_db(zPath);
  }
  sqlite3_free(zPath);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stored_like_plain_table),
      cmocka_unit_test(test_rules_match_sqlite),
      cmocka_unit_test(test_follows_other_connection),
      cmocka_unit_test(test_transaction_and_rollback),
      cmocka_unit_test(test_broad_condition_natural_path),
      cmocka_unit_test(test_ivf_broad_filter_recall),
      cmocka_unit_test(test_ivf_exact_among_from_lists),
      cmocka_unit_test(test_label_bits_follow_changes),
  };
  return cmocka_run_group_tests(tests, 0, 0);
}
