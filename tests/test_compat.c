/* Files written by earlier releases keep working. tests/fixtures/release-0.1.0.db was made once by vecstore 0.1.0
** (snapshot format 2) with tests/fixtures/make_release_0_1_0.sql: Flat, HNSW, IVF, PQ, SQ, an untrained IVF and a
** hash-embedder table, each with snapshots that hold tombstones and log entries after them. fixture_expected holds
** what 0.1.0 answered, fixture_count how many rows each table had. Every test works on a copy of the file. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE "tests/fixtures/release-0.1.0.db"

static const char *const azTable[] = {"flat_l2", "hnsw_cos", "ivf_ip", "pq_l2", "sq_l2", "ivf_untrained", "hashed"};
#define N_TABLE (int)(sizeof(azTable) / sizeof(azTable[0]))

/* Copies the fixture to tu_path(zName) and returns the copy's path (sqlite3_malloc'd). */
static char *copy_fixture(const char *zName) {
  char *zPath = tu_path(zName);
  tu_copy_file(FIXTURE, zPath);
  return zPath;
}

/* The search 0.1.0 ran for fixture_expected row group zTbl: the table and the condition it searched with. */
static char *search_sql(const char *zTbl) {
  if (strcmp(zTbl, "hashed") == 0) {
    return sqlite3_mprintf("SELECT rowid, distance FROM hashed WHERE hashed MATCH (SELECT text FROM fixture_query "
                           "WHERE query = ?1) AND k = 10");
  }
  if (strcmp(zTbl, "flat_l2 grp=3") == 0) {
    return sqlite3_mprintf("SELECT rowid, distance FROM flat_l2 WHERE embedding MATCH (SELECT v FROM fixture_query "
                           "WHERE query = ?1) AND grp = 3 AND k = 10");
  }
  return sqlite3_mprintf("SELECT rowid, distance FROM \"%w\" WHERE embedding MATCH (SELECT v FROM fixture_query "
                         "WHERE query = ?1) AND k = 10", zTbl);
}

/* Runs zSql with ?1 = iQuery and returns its rows, nearest first (ties by rowid), in a (at most 64). */
static int run_search(sqlite3 *db, const char *zSql, int iQuery, TuHit *a) {
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  sqlite3_bind_int(pStmt, 1, iQuery);
  int n = 0, rc;
  while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW && n < 64) {
    a[n].iRowid = sqlite3_column_int64(pStmt, 0);
    a[n].rDist = sqlite3_column_double(pStmt, 1);
    n++;
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) fail_msg("%s: %s", zSql, sqlite3_errmsg(db));
  sqlite3_finalize(pStmt);
  return tu_hits_nearest(a, n, n);
}

/* Every recorded search answers as 0.1.0 did: the same distances, and the same rows except where rows tie at the
** last distance (which of several equally near rows is tenth is not part of the contract). */
static void expect_recorded_answers(sqlite3 *db) {
  sqlite3_stmt *pGroups = tu_prepare(db, "SELECT DISTINCT tbl, query FROM fixture_expected ORDER BY 1, 2");
  int nGroup = 0;
  while (sqlite3_step(pGroups) == SQLITE_ROW) {
    const char *zTbl = (const char *)sqlite3_column_text(pGroups, 0);
    int iQuery = sqlite3_column_int(pGroups, 1);
    TuHit aWant[64], aGot[64];
    int nWant = 0;
    sqlite3_stmt *pWant = tu_prepare(db, "SELECT rowid_, distance FROM fixture_expected WHERE tbl = ?1 AND query = ?2 "
                                         "ORDER BY rank");
    sqlite3_bind_text(pWant, 1, zTbl, -1, SQLITE_STATIC);
    sqlite3_bind_int(pWant, 2, iQuery);
    while (sqlite3_step(pWant) == SQLITE_ROW && nWant < 64) {
      aWant[nWant].iRowid = sqlite3_column_int64(pWant, 0);
      aWant[nWant].rDist = sqlite3_column_double(pWant, 1);
      nWant++;
    }
    sqlite3_finalize(pWant);
    char *zSql = search_sql(zTbl);
    int nGot = run_search(db, zSql, iQuery, aGot);
    sqlite3_free(zSql);
    if (nGot != nWant) fail_msg("%s query %d: %d rows, 0.1.0 answered %d", zTbl, iQuery, nGot, nWant);
    double rLast = nWant ? aWant[nWant - 1].rDist : 0;
    for (int i = 0; i < nWant; i++) {
      double rTol = 1e-6 * fmax(1.0, fabs(aWant[i].rDist));
      if (fabs(aGot[i].rDist - aWant[i].rDist) > rTol) {
        fail_msg("%s query %d rank %d: distance %.9g, 0.1.0 answered %.9g", zTbl, iQuery, i + 1, aGot[i].rDist,
                 aWant[i].rDist);
      }
      if (fabs(aWant[i].rDist - rLast) > rTol && aGot[i].iRowid != aWant[i].iRowid) {
        fail_msg("%s query %d rank %d: rowid %lld, 0.1.0 answered %lld", zTbl, iQuery, i + 1,
                 (long long)aGot[i].iRowid, (long long)aWant[i].iRowid);
      }
    }
    nGroup++;
  }
  sqlite3_finalize(pGroups);
  assert_int_equal(nGroup, 37); /* 7 vector tables x 5 queries + 2 text queries */
}

/* Row counts as recorded, and every table's integrity-check passes. */
static void expect_counts_and_integrity(sqlite3 *db) {
  for (int i = 0; i < N_TABLE; i++) {
    char *zSql = sqlite3_mprintf("SELECT (SELECT count(*) FROM \"%w\") = (SELECT n FROM fixture_count WHERE tbl = %Q)",
                                 azTable[i], azTable[i]);
    tu_expect_int(db, zSql, 1);
    sqlite3_free(zSql);
    tu_exec_fmt(db, "INSERT INTO \"%w\"(\"%w\") VALUES ('integrity-check')", azTable[i], azTable[i]);
  }
}

/* Opened as it is, the file answers exactly as 0.1.0 did and passes every check. */
static void test_opens_and_answers_as_recorded(void **state) {
  (void)state;
  char *zPath = copy_fixture("compat-open.db");
  sqlite3 *db = tu_open(zPath);
  tu_expect_text(db, "SELECT version || ' ' || snapshot_format FROM fixture_release", "0.1.0 2");
  expect_recorded_answers(db);
  expect_counts_and_integrity(db);
  sqlite3_close(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/* A read-only connection reads the old file as it is. */
static void test_read_only(void **state) {
  (void)state;
  char *zPath = copy_fixture("compat-ro.db");
  sqlite3 *db = 0;
  assert_int_equal(sqlite3_open_v2(zPath, &db, SQLITE_OPEN_READONLY, 0), SQLITE_OK);
  sqlite3_enable_load_extension(db, 1);
  char *zErr = 0;
  if (sqlite3_load_extension(db, "build/vecstore", 0, &zErr) != SQLITE_OK) fail_msg("load: %s", zErr);
  expect_recorded_answers(db);
  sqlite3_close(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/* Flat answers on the old file equal a brute-force search over its stored vectors (SQLite's own arithmetic). */
static void test_flat_exact_against_stored_vectors(void **state) {
  (void)state;
  char *zPath = copy_fixture("compat-exact.db");
  sqlite3 *db = tu_open(zPath);
  for (int iQuery = 1; iQuery <= 5; iQuery++) {
    TuHit aGot[64];
    int nGot = run_search(db, "SELECT rowid, distance FROM flat_l2 WHERE embedding MATCH (SELECT v FROM fixture_query "
                              "WHERE query = ?1) AND k = 10", iQuery, aGot);
    assert_int_equal(nGot, 10);
    char *zSql = sqlite3_mprintf("SELECT count(*) FROM flat_l2 WHERE vecstore_distance(embedding, "
                                 "(SELECT v FROM fixture_query WHERE query = %d)) < %.17g - 1e-6", iQuery,
                                 aGot[9].rDist);
    /* No stored row is nearer than the tenth answer without being among the answers. */
    assert_true(tu_int(db, zSql) <= 9);
    sqlite3_free(zSql);
    for (int i = 0; i < nGot; i++) {
      zSql = sqlite3_mprintf("SELECT vecstore_distance(embedding, (SELECT v FROM fixture_query WHERE query = %d)) "
                             "FROM flat_l2 WHERE rowid = %lld", iQuery, (long long)aGot[i].iRowid);
      assert_true(fabs(tu_double(db, zSql) - aGot[i].rDist) < 1e-5);
      sqlite3_free(zSql);
    }
  }
  sqlite3_close(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

/* Writes to every table of the old file: new rows are found, deleted rows are gone, optimize and rebuild keep it
** whole, and a reopened file still answers. */
static void test_writes_optimize_rebuild(void **state) {
  (void)state;
  char *zPath = copy_fixture("compat-write.db");
  sqlite3 *db = tu_open(zPath);
  const char *zNew = "[0.5,-0.25,0.125,0.75,-0.5,0.25,-0.125,0.0625]";
  for (int i = 0; i < N_TABLE; i++) {
    const char *z = azTable[i];
    if (strcmp(z, "hashed") == 0) {
      tu_exec(db, "INSERT INTO hashed(id, content) VALUES ('new', 'a brand new document about volcanoes')");
      tu_exec(db, "DELETE FROM hashed WHERE rowid = 1");
      tu_expect_text(db, "SELECT id FROM hashed WHERE hashed MATCH 'a brand new document about volcanoes' AND k = 1", "new");
    } else {
      tu_exec_fmt(db, "BEGIN; INSERT INTO \"%w\"(rowid, id, embedding) VALUES (90001, 'new', '%s'); "
                      "DELETE FROM \"%w\" WHERE rowid = 1; UPDATE \"%w\" SET embedding = '%s' WHERE rowid = 3; COMMIT",
                  z, zNew, z, z, zNew);
      char *zSql = sqlite3_mprintf("SELECT count(*) FROM (SELECT rowid FROM \"%w\" WHERE embedding MATCH '%s' AND k = 10)"
                                   " WHERE rowid IN (90001, 3)", z, zNew);
      tu_expect_int(db, zSql, 2);
      sqlite3_free(zSql);
      zSql = sqlite3_mprintf("SELECT count(*) FROM \"%w\" WHERE rowid = 1", z);
      tu_expect_int(db, zSql, 0);
      sqlite3_free(zSql);
    }
    tu_exec_fmt(db, "INSERT INTO \"%w\"(\"%w\") VALUES ('integrity-check')", z, z);
    tu_exec_fmt(db, "INSERT INTO \"%w\"(\"%w\") VALUES ('optimize')", z, z);
    tu_exec_fmt(db, "INSERT INTO \"%w\"(\"%w\") VALUES ('integrity-check')", z, z);
  }
  tu_exec(db, "INSERT INTO flat_l2(flat_l2) VALUES ('rebuild'); INSERT INTO flat_l2(flat_l2) VALUES ('integrity-check')");
  sqlite3_close(db);
  db = tu_open(zPath);
  for (int i = 0; i < N_TABLE; i++) {
    /* One row in (rowid 90001, or 'new'), one out (rowid 1). */
    char *zSql = sqlite3_mprintf("SELECT (SELECT count(*) FROM \"%w\") = (SELECT n FROM fixture_count WHERE tbl = %Q)",
                                 azTable[i], azTable[i]);
    tu_expect_int(db, zSql, 1);
    sqlite3_free(zSql);
    tu_exec_fmt(db, "INSERT INTO \"%w\"(\"%w\") VALUES ('integrity-check')", azTable[i], azTable[i]);
  }
  tu_expect_text(db, "SELECT id FROM flat_l2 WHERE embedding MATCH '[0.5,-0.25,0.125,0.75,-0.5,0.25,-0.125,0.0625]' "
                     "AND rowid != 3 LIMIT 1", "new");
  sqlite3_close(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_opens_and_answers_as_recorded),
      cmocka_unit_test(test_read_only),
      cmocka_unit_test(test_flat_exact_against_stored_vectors),
      cmocka_unit_test(test_writes_optimize_rebuild),
  };
  return cmocka_run_group_tests(tests, 0, 0);
}
