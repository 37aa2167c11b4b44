/* Writing to a vecstore table (SPEC "Writing"): INSERT with defaults and every input form, errors that change
** nothing, conflicts (constraint errors, OR REPLACE, OR IGNORE), UPDATE of every column, DELETE, last_insert_rowid,
** sqlite3_changes, and atomic multi-row statements in autocommit mode and inside transactions. */
#include "testutil.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define g_db tu_db
#define g_zPath tu_fixture_path()

/* Each test gets a fresh database file. */
TU_FIXTURES("write")

/* The table of most tests: dim 4, l2, three rows at distinct distances from each other. */
static void make_base(sqlite3 *db) {
  tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 4);"
              "INSERT INTO t(rowid, id, content, metadata, embedding) VALUES"
              " (1, 'alpha', 'first', '{\"g\": 1}', '[1, 0, 0, 0]'),"
              " (2, 'beta', 'second', '{\"g\": 1}', '[0, 2, 0, 0]'),"
              " (3, 'gamma', 'third', '{\"g\": 2}', '[0, 0, 3, 0]');");
}

/* Row counts of the table and of its shadow tables. */
typedef struct Counts {
  sqlite3_int64 nTab, nDocs, nVec, nLog;
} Counts;

static Counts counts(sqlite3 *db) {
  Counts c;
  c.nTab = tu_int(db, "SELECT count(*) FROM t");
  c.nDocs = tu_int(db, "SELECT count(*) FROM t_docs");
  c.nVec = tu_int(db, "SELECT count(*) FROM t_vectors");
  c.nLog = tu_int(db, "SELECT count(*) FROM t_log");
  return c;
}

static void expect_counts(sqlite3 *db, Counts want, const char *zWhere) {
  Counts c = counts(db);
  if (c.nTab != want.nTab || c.nDocs != want.nDocs || c.nVec != want.nVec || c.nLog != want.nLog) {
    fail_msg("%s: counts (table, docs, vectors, log) = (%lld, %lld, %lld, %lld), expected (%lld, %lld, %lld, %lld)",
             zWhere, (long long)c.nTab, (long long)c.nDocs, (long long)c.nVec, (long long)c.nLog,
             (long long)want.nTab, (long long)want.nDocs, (long long)want.nVec, (long long)want.nLog);
  }
}

/* Everything the table holds, in rowid order, as one text. */
static char *fingerprint(sqlite3 *db) {
  return tu_text(db, "SELECT coalesce(group_concat(r, '|'), '') FROM (SELECT rowid || ':' || id || ':' || "
                     "coalesce(content, '~') || ':' || metadata || ':' || hex(embedding) AS r FROM t ORDER BY rowid)");
}

/* The k nearest rows to the JSON vector zVec as "id:distance,...". */
static char *knn(sqlite3 *db, const char *zVec, int k) {
  sqlite3_stmt *pStmt = tu_prepare(db, "SELECT id, distance FROM t WHERE embedding MATCH ?1 AND k = ?2");
  sqlite3_bind_text(pStmt, 1, zVec, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(pStmt, 2, k);
  sqlite3_str *pOut = sqlite3_str_new(0);
  int rc;
  while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    if (sqlite3_str_length(pOut)) sqlite3_str_appendchar(pOut, 1, ',');
    sqlite3_str_appendf(pOut, "%s:%g", (const char *)sqlite3_column_text(pStmt, 0), sqlite3_column_double(pStmt, 1));
  }
  if (rc != SQLITE_DONE) fail_msg("search for %s failed: %s", zVec, sqlite3_errmsg(db));
  sqlite3_finalize(pStmt);
  char *z = sqlite3_str_finish(pOut);
  return z ? z : sqlite3_mprintf("");
}

static void expect_knn(sqlite3 *db, const char *zVec, int k, const char *zWant) {
  char *z = knn(db, zVec, k);
  if (strcmp(z, zWant) != 0) fail_msg("search %s k=%d gave '%s', expected '%s'", zVec, k, z, zWant);
  sqlite3_free(z);
}

/* Asserts that no row of a k = 100 search for zVec has one of the ids in azId (NULL-terminated). */
static void expect_knn_lacks(sqlite3 *db, const char *zVec, const char *const *azId) {
  char *z = knn(db, zVec, 100);
  char *zList = sqlite3_mprintf(",%s,", z);
  for (int i = 0; azId[i]; i++) {
    char *zPat = sqlite3_mprintf(",%s:", azId[i]);
    if (strstr(zList, zPat)) fail_msg("search %s found '%s' (should be gone): %s", zVec, azId[i], z);
    sqlite3_free(zPat);
  }
  sqlite3_free(zList);
  sqlite3_free(z);
}

/* Runs the single statement zSql (with ?1 bound to the nBlob bytes of pBlob if pBlob) which must fail with primary
** result code eCode (0: any) and a message that starts with "vecstore: " (if bPrefix) and contains the fragments
** (NULL: unused). Asserts that nothing changed: row counts of the table and shadow tables, and the rows. */
static void expect_fail(sqlite3 *db, const char *zSql, const void *pBlob, int nBlob, int eCode, int bPrefix,
                        const char *zFrag1, const char *zFrag2, const char *zFrag3) {
  Counts before = counts(db);
  char *zBefore = fingerprint(db);
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  if (pBlob) sqlite3_bind_blob(pStmt, 1, pBlob, nBlob, SQLITE_TRANSIENT);
  int rc = sqlite3_step(pStmt);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) fail_msg("succeeded but an error was expected: %s", zSql);
  int eErr = sqlite3_errcode(db);
  char *zErr = sqlite3_mprintf("%s", sqlite3_errmsg(db));
  sqlite3_finalize(pStmt);
  if (eCode && (eErr & 0xff) != eCode)
    fail_msg("error code %d (%s), expected %d\n  in: %s", eErr, zErr, eCode, zSql);
  if (bPrefix && strncmp(zErr, "vecstore: ", 10) != 0) fail_msg("error '%s' lacks the 'vecstore: ' prefix\n  in: %s", zErr, zSql);
  const char *azFrag[] = {zFrag1, zFrag2, zFrag3};
  for (int i = 0; i < 3; i++) {
    if (azFrag[i] && strstr(zErr, azFrag[i]) == 0) fail_msg("error '%s' lacks '%s'\n  in: %s", zErr, azFrag[i], zSql);
  }
  sqlite3_free(zErr);
  expect_counts(db, before, zSql);
  char *zAfter = fingerprint(db);
  if (strcmp(zBefore, zAfter) != 0) fail_msg("rows changed by a failing statement: %s\n  before: %s\n  after:  %s", zSql,
                                             zBefore, zAfter);
  sqlite3_free(zBefore);
  sqlite3_free(zAfter);
}

/* Executes one statement that must succeed and returns sqlite3_changes() after it. */
static int exec_changes(sqlite3 *db, const char *zSql) {
  tu_exec(db, zSql);
  return sqlite3_changes(db);
}

/* RFC 9562 version 7 UUID text: 8-4-4-4-12 lowercase hex, version nibble 7, variant 8/9/a/b, and its 48-bit
** millisecond time within a day of now. */
static void expect_uuid7(const char *z) {
  if (strlen(z) != 36) fail_msg("id '%s' is not 36 characters", z);
  for (int i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (z[i] != '-') fail_msg("id '%s': expected '-' at %d", z, i);
    } else if (!isxdigit((unsigned char)z[i]) || isupper((unsigned char)z[i])) {
      fail_msg("id '%s': expected a lowercase hex digit at %d", z, i);
    }
  }
  if (z[14] != '7') fail_msg("id '%s' is not a version 7 UUID", z);
  if (strchr("89ab", z[19]) == 0) fail_msg("id '%s' has not the RFC 9562 variant", z);
  char zHex[13];
  memcpy(zHex, z, 8);
  memcpy(zHex + 8, z + 9, 4);
  zHex[12] = 0;
  double rMs = (double)strtoull(zHex, 0, 16);
  double rNow = (double)time(0) * 1000.0;
  if (fabs(rMs - rNow) > 86400e3) fail_msg("id '%s': its time is not today's", z);
}

/* n float32 values as little-endian bytes, whatever the host order. */
static void le_floats(const float *a, int n, unsigned char *aOut) {
  for (int i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &a[i], 4);
    aOut[4 * i] = (unsigned char)u;
    aOut[4 * i + 1] = (unsigned char)(u >> 8);
    aOut[4 * i + 2] = (unsigned char)(u >> 16);
    aOut[4 * i + 3] = (unsigned char)(u >> 24);
  }
}

/**************************************************************************************************/

/* Every column omitted but embedding: UUID id, '{}' metadata, NULL content, assigned rowid. */
static void test_insert_defaults(void **state) {
  (void)state;
  tu_exec(g_db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 4)");
  assert_int_equal(exec_changes(g_db, "INSERT INTO t(embedding) VALUES ('[1, 0, 0, 0]')"), 1);
  sqlite3_int64 iRowid = sqlite3_last_insert_rowid(g_db);
  assert_int_equal(iRowid, 1);
  sqlite3_stmt *pStmt = tu_prepare(g_db, "SELECT rowid, id, content, metadata, typeof(id), typeof(content) FROM t");
  assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int64(pStmt, 0), iRowid);
  char *zId1 = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(pStmt, 1));
  expect_uuid7(zId1);
  assert_int_equal(sqlite3_column_type(pStmt, 2), SQLITE_NULL);
  assert_string_equal((const char *)sqlite3_column_text(pStmt, 3), "{}");
  assert_string_equal((const char *)sqlite3_column_text(pStmt, 4), "text");
  assert_string_equal((const char *)sqlite3_column_text(pStmt, 5), "null");
  assert_int_equal(sqlite3_step(pStmt), SQLITE_DONE);
  sqlite3_finalize(pStmt);
  tu_expect_text(g_db, "SELECT hex(embedding) FROM t", "0000803F000000000000000000000000");

  /* INSERT without a column list: NULLs for id, content, metadata. */
  tu_exec(g_db, "INSERT INTO t VALUES (NULL, NULL, NULL, '[0, 2, 0, 0]')");
  assert_int_equal(sqlite3_last_insert_rowid(g_db), 2);
  char *zId2 = tu_text(g_db, "SELECT id FROM t WHERE rowid = 2");
  expect_uuid7(zId2);
  assert_string_not_equal(zId1, zId2);
  tu_expect_text(g_db, "SELECT metadata FROM t WHERE rowid = 2", "{}");

  /* Many more: ids unique and well-formed, rowids ascending from 3. */
  sqlite3_stmt *pIns = tu_prepare(g_db, "INSERT INTO t(embedding) VALUES (?1)");
  for (int i = 0; i < 200; i++) {
    char zVec[64];
    snprintf(zVec, sizeof(zVec), "[%d, 1, 2, 3]", i);
    sqlite3_bind_text(pIns, 1, zVec, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(pIns) != SQLITE_DONE) fail_msg("insert %d: %s", i, sqlite3_errmsg(g_db));
    assert_int_equal(sqlite3_last_insert_rowid(g_db), 3 + i);
    sqlite3_reset(pIns);
  }
  sqlite3_finalize(pIns);
  tu_expect_int(g_db, "SELECT count(DISTINCT id) FROM t", 202);
  /* Time-ordered: ids made later sort later (they append to the id index). */
  tu_expect_int(g_db, "SELECT count(*) FROM t a JOIN t b ON b.rowid = a.rowid + 1 WHERE b.id > a.id", 201);
  tu_expect_int(g_db, "SELECT count(*) FROM t WHERE length(id) = 36 AND metadata = '{}' AND content IS NULL", 202);
  pStmt = tu_prepare(g_db, "SELECT id FROM t");
  while (sqlite3_step(pStmt) == SQLITE_ROW) expect_uuid7((const char *)sqlite3_column_text(pStmt, 0));
  sqlite3_finalize(pStmt);
  tu_expect_int(g_db, "SELECT min(rowid) = 1 AND max(rowid) = 202 FROM t", 1);
  /* The id is a working key. */
  char *zSql = sqlite3_mprintf("SELECT rowid FROM t WHERE id = %Q", zId1);
  tu_expect_int(g_db, zSql, 1);
  sqlite3_free(zSql);
  char *zWant = sqlite3_mprintf("%s:0", zId2);
  expect_knn(g_db, "[0, 2, 0, 0]", 1, zWant);
  sqlite3_free(zWant);
  sqlite3_free(zId1);
  sqlite3_free(zId2);
}

/* Explicit rowid and id; the embedding as vecstore_vector(), a hand-built float32 LE blob, JSON text. */
static void test_insert_explicit(void **state) {
  (void)state;
  tu_exec(g_db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 4)");
  tu_exec(g_db, "INSERT INTO t(rowid, id, content, metadata, embedding) "
                "VALUES (100, 'doc-1', 'hello', '{ \"page\" : 3, \"tags\": [\"a\", \"b\"] }', '[1, 0, 0, 0]')");
  assert_int_equal(sqlite3_last_insert_rowid(g_db), 100);
  tu_expect_text(g_db, "SELECT id || '|' || content || '|' || metadata FROM t WHERE rowid = 100",
              "doc-1|hello|{ \"page\" : 3, \"tags\": [\"a\", \"b\"] }");
  tu_expect_int(g_db, "SELECT json_extract(metadata, '$.page') FROM t WHERE id = 'doc-1'", 3);
  /* The next assigned rowid follows the largest one, as in an ordinary rowid table. */
  tu_exec(g_db, "INSERT INTO t(id, embedding) VALUES ('doc-2', vecstore_vector('[0, 2, 0, 0]'))");
  assert_int_equal(sqlite3_last_insert_rowid(g_db), 101);
  tu_expect_text(g_db, "SELECT hex(embedding) FROM t WHERE id = 'doc-2'", "00000000000000400000000000000000");

  /* A hand-built float32 little-endian blob is stored bit for bit. */
  const float a[4] = {0.5f, -1.25f, 3.0f, 1e-3f};
  unsigned char aBlob[16];
  le_floats(a, 4, aBlob);
  sqlite3_stmt *pStmt = tu_prepare(g_db, "INSERT INTO t(rowid, id, embedding) VALUES (-5, 'doc-3', ?1)");
  sqlite3_bind_blob(pStmt, 1, aBlob, 16, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_DONE);
  sqlite3_finalize(pStmt);
  assert_int_equal(sqlite3_last_insert_rowid(g_db), -5);
  pStmt = tu_prepare(g_db, "SELECT embedding, typeof(embedding) FROM t WHERE rowid = -5");
  assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
  assert_int_equal(sqlite3_column_bytes(pStmt, 0), 16);
  assert_memory_equal(sqlite3_column_blob(pStmt, 0), aBlob, 16);
  assert_string_equal((const char *)sqlite3_column_text(pStmt, 1), "blob");
  sqlite3_finalize(pStmt);
  tu_expect_text(g_db, "SELECT vecstore_to_json(embedding) FROM t WHERE id = 'doc-3'", "[0.5,-1.25,3,0.001]");

  /* JSON text is stored as the canonical blob. */
  tu_exec(g_db, "INSERT INTO t(id, embedding) VALUES ('doc-4', ' [ 0.5, -1.25, 3, 1e-3 ] ')");
  tu_expect_int(g_db, "SELECT a.embedding = b.embedding FROM t a, t b WHERE a.id = 'doc-3' AND b.id = 'doc-4'", 1);
  tu_expect_text(g_db, "SELECT typeof(embedding) || length(embedding) FROM t WHERE id = 'doc-4'", "blob16");

  /* rowid as text or real with an exact integer value, as for an ordinary table; an integer id becomes text. */
  tu_exec(g_db, "INSERT INTO t(rowid, id, embedding) VALUES ('7', 'doc-5', '[0, 0, 0, 1]')");
  tu_exec(g_db, "INSERT INTO t(rowid, id, embedding) VALUES (8.0, 42, '[0, 0, 0, 2]')");
  tu_expect_text(g_db, "SELECT group_concat(rowid || ':' || id || ':' || typeof(id), ' ') FROM (SELECT rowid, id FROM t "
                    "WHERE rowid IN (7, 8) ORDER BY rowid)",
              "7:doc-5:text 8:42:text");
  tu_expect_int(g_db, "SELECT rowid FROM t WHERE id = '42'", 8);

  /* Every row can be found at its own vector. */
  expect_knn(g_db, "[1, 0, 0, 0]", 1, "doc-1:0");
  expect_knn(g_db, "[0, 2, 0, 0]", 1, "doc-2:0");
  expect_knn(g_db, "[0, 0, 0, 2]", 1, "42:0");
  char *z = knn(g_db, "[0.5, -1.25, 3, 0.001]", 2);
  if (strcmp(z, "doc-3:0,doc-4:0") != 0 && strcmp(z, "doc-4:0,doc-3:0") != 0) fail_msg("got '%s'", z);
  sqlite3_free(z);
  tu_expect_int(g_db, "SELECT count(*) FROM t", 6);
  tu_expect_int(g_db, "SELECT count(*) FROM t_docs", 6);
  tu_expect_int(g_db, "SELECT count(*) FROM t_vectors", 6);
}

/* Bad rows fail with a clear error and change nothing. */
static void test_insert_errors(void **state) {
  (void)state;
  make_base(g_db);
  /* Dimension mismatch names both numbers. */
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES ('x', '[1, 2, 3]')", 0, 0, 0, 1, "embedding", "3", "4");
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES ('x', '[1, 2, 3, 4, 5]')", 0, 0, 0, 1, "embedding", "5", "4");
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES ('x', vecstore_vector('[1, 2, 3]'))", 0, 0, 0, 1, "3", "4", 0);
  const float a3[3] = {1, 2, 3};
  unsigned char aBlob[24];
  le_floats(a3, 3, aBlob);
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES ('x', ?1)", aBlob, 12, 0, 1, "embedding", "3", "4");
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES ('x', ?1)", aBlob, 7, 0, 1, "embedding", "7", 0);
  /* Non-finite values in a blob. */
  const float aNaN[4] = {1, NAN, 0, 0};
  le_floats(aNaN, 4, aBlob);
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES ('x', ?1)", aBlob, 16, 0, 1, "non-finite", "NaN", 0);
  const float aInf[4] = {1, 0, 0, INFINITY};
  le_floats(aInf, 4, aBlob);
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES ('x', ?1)", aBlob, 16, 0, 1, "non-finite", "Inf", 0);
  const float aNegInf[4] = {-INFINITY, 0, 0, 0};
  le_floats(aNegInf, 4, aBlob);
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES ('x', ?1)", aBlob, 16, 0, 1, "non-finite", "Inf", 0);
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES ('x', '[1, NaN, 0, 0]')", 0, 0, 0, 1, "non-finite", 0, 0);
  /* Malformed and empty vectors, other types. */
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES ('x', '[1, 2,, 3, 4]')", 0, 0, 0, 1, "embedding", 0, 0);
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES ('x', '1, 2, 3, 4')", 0, 0, 0, 1, "embedding", "'['", 0);
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES ('x', '[1, 2, 3, \"4\"]')", 0, 0, 0, 1, "embedding", 0, 0);
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES ('x', '[]')", 0, 0, 0, 1, "embedding", "empty", 0);
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES ('x', x'')", 0, 0, 0, 1, "embedding", "empty", 0);
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES ('x', 5)", 0, 0, 0, 1, "embedding", "integer", 0);
  /* Metadata: malformed JSON, JSON that is not an object, other types. */
  expect_fail(g_db, "INSERT INTO t(id, metadata, embedding) VALUES ('x', '{\"a\":', '[1, 1, 1, 1]')", 0, 0, 0, 1,
              "metadata", "JSON object", "malformed");
  expect_fail(g_db, "INSERT INTO t(id, metadata, embedding) VALUES ('x', '[1]', '[1, 1, 1, 1]')", 0, 0, 0, 1,
              "metadata", "JSON object", "array");
  expect_fail(g_db, "INSERT INTO t(id, metadata, embedding) VALUES ('x', '3', '[1, 1, 1, 1]')", 0, 0, 0, 1, "metadata",
              "JSON object", "3");
  expect_fail(g_db, "INSERT INTO t(id, metadata, embedding) VALUES ('x', '\"x\"', '[1, 1, 1, 1]')", 0, 0, 0, 1,
              "metadata", "JSON object", "\"x\"");
  expect_fail(g_db, "INSERT INTO t(id, metadata, embedding) VALUES ('x', 3, '[1, 1, 1, 1]')", 0, 0, 0, 1, "metadata",
              "JSON object", 0);
  expect_fail(g_db, "INSERT INTO t(id, metadata, embedding) VALUES ('x', '', '[1, 1, 1, 1]')", 0, 0, 0, 1, "metadata",
              "JSON object", 0);
  /* Duplicate id and rowid: constraint errors naming them. */
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES ('beta', '[1, 1, 1, 1]')", 0, 0, SQLITE_CONSTRAINT, 1, "id",
              "beta", 0);
  expect_fail(g_db, "INSERT INTO t(rowid, id, embedding) VALUES (2, 'x', '[1, 1, 1, 1]')", 0, 0, SQLITE_CONSTRAINT, 1,
              "rowid", "2", 0);
  expect_fail(g_db, "INSERT INTO t(rowid, id, embedding) VALUES (3, 'alpha', '[1, 1, 1, 1]')", 0, 0, SQLITE_CONSTRAINT,
              1, "UNIQUE", 0, 0);
  /* Non-integer rowids: SQLite itself rejects them before the table sees them ("datatype mismatch"). */
  expect_fail(g_db, "INSERT INTO t(rowid, id, embedding) VALUES ('abc', 'x', '[1, 1, 1, 1]')", 0, 0, SQLITE_MISMATCH,
              0, 0, 0, 0);
  expect_fail(g_db, "INSERT INTO t(rowid, id, embedding) VALUES (1.5, 'x', '[1, 1, 1, 1]')", 0, 0, SQLITE_MISMATCH, 0,
              0, 0, 0);
  expect_fail(g_db, "INSERT INTO t(rowid, id, embedding) VALUES (x'01', 'x', '[1, 1, 1, 1]')", 0, 0, SQLITE_MISMATCH,
              0, 0, 0, 0);
  /* NULL embedding and no embedder. */
  expect_fail(g_db, "INSERT INTO t(id) VALUES ('x')", 0, 0, 0, 1, "embedding", "embedder", 0);
  expect_fail(g_db, "INSERT INTO t(id, content) VALUES ('x', 'some text')", 0, 0, 0, 1, "embedding", "embedder", 0);
  expect_fail(g_db, "INSERT INTO t(id, content, embedding) VALUES ('x', 'some text', NULL)", 0, 0, 0, 1, "embedder", 0,
              0);
  /* A BLOB id. */
  expect_fail(g_db, "INSERT INTO t(id, embedding) VALUES (x'01', '[1, 1, 1, 1]')", 0, 0, 0, 1, "id", 0, 0);
  /* None of the rejected vectors is searchable; the table is intact. */
  expect_knn(g_db, "[1, 1, 1, 1]", 3, "alpha:3,beta:4,gamma:7");
  tu_exec(g_db, "INSERT INTO t(id, embedding) VALUES ('x', '[1, 1, 1, 1]')");
  expect_knn(g_db, "[1, 1, 1, 1]", 2, "x:0,alpha:3");
}

/* The error code of a duplicate id through the C API. */
static void test_duplicate_errcode(void **state) {
  (void)state;
  make_base(g_db);
  sqlite3_stmt *pStmt = tu_prepare(g_db, "INSERT INTO t(id, embedding) VALUES (?1, '[5, 5, 5, 5]')");
  sqlite3_bind_text(pStmt, 1, "gamma", -1, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_CONSTRAINT);
  assert_int_equal(sqlite3_errcode(g_db), SQLITE_CONSTRAINT);
  assert_non_null(strstr(sqlite3_errmsg(g_db), "gamma"));
  sqlite3_reset(pStmt);
  sqlite3_bind_text(pStmt, 1, "delta", -1, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_DONE);
  sqlite3_finalize(pStmt);
  tu_expect_int(g_db, "SELECT count(*) FROM t", 4);
  expect_knn(g_db, "[5, 5, 5, 5]", 1, "delta:0");
}

/* INSERT OR REPLACE: by id, by rowid, both at once; one row left, the new vector searchable, the old one gone. */
static void test_insert_or_replace(void **state) {
  (void)state;
  make_base(g_db);
  /* By id: as in an ordinary table, the old row is deleted and the new one gets a new rowid (4). */
  assert_int_equal(exec_changes(g_db, "INSERT OR REPLACE INTO t(id, content, embedding) VALUES ('alpha', 'new', "
                                      "'[0, 0, 0, 4]')"),
                   1);
  tu_expect_int(g_db, "SELECT count(*) FROM t WHERE id = 'alpha'", 1);
  tu_expect_text(g_db, "SELECT content || metadata FROM t WHERE id = 'alpha'", "new{}");
  expect_knn(g_db, "[0, 0, 0, 4]", 1, "alpha:0");
  expect_knn(g_db, "[1, 0, 0, 0]", 3, "beta:5,gamma:10,alpha:17");
  Counts want = {3, 3, 3, counts(g_db).nLog};
  expect_counts(g_db, want, "after REPLACE by id");
  /* By rowid. */
  tu_exec(g_db, "INSERT OR REPLACE INTO t(rowid, id, embedding) VALUES (2, 'beta2', '[5, 0, 0, 0]')");
  tu_expect_text(g_db, "SELECT id FROM t WHERE rowid = 2", "beta2");
  tu_expect_int(g_db, "SELECT count(*) FROM t WHERE id = 'beta'", 0);
  expect_knn(g_db, "[5, 0, 0, 0]", 1, "beta2:0");
  expect_knn(g_db, "[0, 2, 0, 0]", 3, "gamma:13,alpha:20,beta2:29");
  tu_expect_int(g_db, "SELECT count(*) FROM t", 3);
  tu_expect_int(g_db, "SELECT count(*) FROM t_vectors", 3);
  /* REPLACE INTO, conflicting on rowid 3 (gamma) and id beta2 (rowid 2) at once: both rows replaced by one. */
  tu_exec(g_db, "REPLACE INTO t(rowid, id, embedding) VALUES (3, 'beta2', '[0, 0, 0, 9]')");
  tu_expect_text(g_db, "SELECT group_concat(rowid || ':' || id, ' ') FROM (SELECT rowid, id FROM t ORDER BY rowid)",
              "3:beta2 4:alpha");
  expect_knn(g_db, "[0, 0, 0, 9]", 5, "beta2:0,alpha:25");
  tu_expect_int(g_db, "SELECT count(*) FROM t_docs", 2);
  tu_expect_int(g_db, "SELECT count(*) FROM t_vectors", 2);
  /* Without a conflict it is a plain insert. */
  tu_exec(g_db, "INSERT OR REPLACE INTO t(id, embedding) VALUES ('new', '[7, 7, 7, 7]')");
  tu_expect_int(g_db, "SELECT count(*) FROM t", 3);
  /* The same inside a transaction, searched before and after COMMIT, and from another connection. */
  tu_exec(g_db, "BEGIN; INSERT OR REPLACE INTO t(id, embedding) VALUES ('new', '[6, 0, 0, 0]')");
  expect_knn(g_db, "[6, 0, 0, 0]", 1, "new:0");
  expect_knn(g_db, "[7, 7, 7, 7]", 3, "new:148,beta2:151,alpha:156");
  tu_exec(g_db, "COMMIT");
  expect_knn(g_db, "[7, 7, 7, 7]", 3, "new:148,beta2:151,alpha:156");
  sqlite3 *db2 = tu_open(g_zPath);
  expect_knn(db2, "[7, 7, 7, 7]", 3, "new:148,beta2:151,alpha:156");
  expect_knn(db2, "[6, 0, 0, 0]", 1, "new:0");
  sqlite3_close(db2);
  /* UPDATE OR REPLACE onto a taken id removes the other row. */
  tu_exec(g_db, "UPDATE OR REPLACE t SET id = 'alpha' WHERE id = 'new'");
  tu_expect_text(g_db, "SELECT group_concat(rowid || ':' || id, ' ') FROM (SELECT rowid, id FROM t ORDER BY rowid)",
              "3:beta2 5:alpha");
  expect_knn(g_db, "[0, 0, 0, 4]", 3, "beta2:25,alpha:52");
  tu_expect_int(g_db, "SELECT count(*) FROM t_vectors", 2);
}

/* INSERT OR IGNORE skips conflicting rows and keeps the others. */
static void test_insert_or_ignore(void **state) {
  (void)state;
  make_base(g_db);
  char *zBefore = fingerprint(g_db);
  assert_int_equal(exec_changes(g_db, "INSERT OR IGNORE INTO t(id, content, embedding) VALUES ('alpha', 'x', "
                                      "'[9, 9, 9, 9]')"),
                   0);
  assert_int_equal(exec_changes(g_db, "INSERT OR IGNORE INTO t(rowid, id, content, embedding) VALUES (2, 'zz', 'x', "
                                      "'[9, 9, 9, 9]')"),
                   0);
  char *zAfter = fingerprint(g_db);
  assert_string_equal(zBefore, zAfter);
  sqlite3_free(zBefore);
  sqlite3_free(zAfter);
  expect_knn(g_db, "[9, 9, 9, 9]", 1, "gamma:279");
  assert_int_equal(exec_changes(g_db, "INSERT OR IGNORE INTO t(id, embedding) VALUES ('d1', '[9, 0, 0, 0]'), "
                                      "('alpha', '[9, 9, 9, 9]'), ('d2', '[0, 9, 0, 0]'), ('d1', '[8, 8, 8, 8]')"),
                   2);
  tu_expect_int(g_db, "SELECT count(*) FROM t", 5);
  expect_knn(g_db, "[9, 0, 0, 0]", 1, "d1:0");
  expect_knn(g_db, "[0, 9, 0, 0]", 1, "d2:0");
  expect_knn_lacks(g_db, "[9, 9, 9, 9]", (const char *const[]){"zz", 0});
  tu_expect_text(g_db, "SELECT vecstore_to_json(embedding) FROM t WHERE id = 'd1'", "[9,0,0,0]");
  tu_expect_text(g_db, "SELECT hex(embedding) FROM t WHERE id = 'alpha'", "0000803F000000000000000000000000");
  Counts want = {5, 5, 5, counts(g_db).nLog};
  expect_counts(g_db, want, "after OR IGNORE");
}

/* UPDATE of each column. */
static void test_update(void **state) {
  (void)state;
  make_base(g_db);
  /* content: the vector stays. */
  assert_int_equal(exec_changes(g_db, "UPDATE t SET content = 'C1' WHERE id = 'alpha'"), 1);
  tu_expect_text(g_db, "SELECT content || hex(embedding) FROM t WHERE rowid = 1", "C10000803F000000000000000000000000");
  expect_knn(g_db, "[1, 0, 0, 0]", 1, "alpha:0");
  /* metadata. */
  assert_int_equal(exec_changes(g_db, "UPDATE t SET metadata = '{\"g\": 5}' WHERE rowid = 2"), 1);
  tu_expect_int(g_db, "SELECT json_extract(metadata, '$.g') FROM t WHERE id = 'beta'", 5);
  expect_fail(g_db, "UPDATE t SET metadata = '[1]' WHERE rowid = 2", 0, 0, 0, 1, "metadata", "JSON object", 0);
  expect_fail(g_db, "UPDATE t SET metadata = '{' WHERE rowid = 2", 0, 0, 0, 1, "metadata", 0, 0);
  /* id: to a free id, then to a taken one. */
  assert_int_equal(exec_changes(g_db, "UPDATE t SET id = 'alpha-2' WHERE id = 'alpha'"), 1);
  tu_expect_int(g_db, "SELECT count(*) FROM t WHERE id = 'alpha'", 0);
  tu_expect_int(g_db, "SELECT rowid FROM t WHERE id = 'alpha-2'", 1);
  expect_knn(g_db, "[1, 0, 0, 0]", 1, "alpha-2:0");
  expect_fail(g_db, "UPDATE t SET id = 'beta' WHERE id = 'alpha-2'", 0, 0, SQLITE_CONSTRAINT, 1, "id", "beta", 0);
  expect_fail(g_db, "UPDATE t SET id = NULL WHERE id = 'alpha-2'", 0, 0, 0, 1, "id", 0, 0);
  /* Setting a row's id to its own id is no conflict. */
  assert_int_equal(exec_changes(g_db, "UPDATE t SET id = 'beta', content = 'B' WHERE id = 'beta'"), 1);
  /* embedding: re-indexed. */
  Counts before = counts(g_db);
  assert_int_equal(exec_changes(g_db, "UPDATE t SET embedding = '[0, 0, 0, 7]' WHERE id = 'gamma'"), 1);
  expect_knn(g_db, "[0, 0, 0, 7]", 1, "gamma:0");
  expect_knn(g_db, "[0, 0, 3, 0]", 3, "alpha-2:10,beta:13,gamma:58");
  assert_int_equal(counts(g_db).nVec, before.nVec);
  assert_int_equal(counts(g_db).nDocs, before.nDocs);
  expect_fail(g_db, "UPDATE t SET embedding = '[1, 2]' WHERE id = 'gamma'", 0, 0, 0, 1, "2", "4", 0);
  expect_fail(g_db, "UPDATE t SET embedding = NULL WHERE id = 'gamma'", 0, 0, 0, 1, "embedder", 0, 0);
  expect_fail(g_db, "UPDATE t SET embedding = '[1, 1, NaN, 1]' WHERE id = 'gamma'", 0, 0, 0, 1, "non-finite", 0, 0);
  /* rowid: the row moves and keeps its vector. */
  assert_int_equal(exec_changes(g_db, "UPDATE t SET rowid = 50 WHERE id = 'beta'"), 1);
  tu_expect_int(g_db, "SELECT rowid FROM t WHERE id = 'beta'", 50);
  tu_expect_int(g_db, "SELECT count(*) FROM t WHERE rowid = 2", 0);
  tu_expect_int(g_db, "SELECT count(*) FROM t_vectors WHERE rowid = 2", 0);
  tu_expect_int(g_db, "SELECT count(*) FROM t_vectors WHERE rowid = 50", 1);
  tu_expect_text(g_db, "SELECT content || hex(embedding) FROM t WHERE rowid = 50", "B00000000000000400000000000000000");
  tu_expect_int(g_db, "SELECT rowid FROM t WHERE embedding MATCH '[0, 2, 0, 0]' AND k = 1", 50);
  expect_knn(g_db, "[0, 2, 0, 0]", 1, "beta:0");
  expect_fail(g_db, "UPDATE t SET rowid = 1 WHERE id = 'beta'", 0, 0, SQLITE_CONSTRAINT, 1, "rowid", "1", 0);
  expect_fail(g_db, "UPDATE t SET rowid = 'abc' WHERE id = 'beta'", 0, 0, SQLITE_MISMATCH, 0, 0, 0, 0);
  /* rowid and embedding at once. */
  tu_exec(g_db, "UPDATE t SET rowid = 60, embedding = '[0, 0, 5, 0]' WHERE id = 'gamma'");
  tu_expect_int(g_db, "SELECT rowid FROM t WHERE embedding MATCH '[0, 0, 5, 0]' AND k = 1", 60);
  expect_knn(g_db, "[0, 0, 0, 7]", 3, "alpha-2:50,beta:53,gamma:74");
  /* Several rows: changes() counts them; a statement failing on a later row changes nothing. */
  assert_int_equal(exec_changes(g_db, "UPDATE t SET content = 'all'"), 3);
  assert_int_equal(exec_changes(g_db, "UPDATE t SET content = 'none' WHERE rowid > 1000"), 0);
  expect_fail(g_db, "UPDATE t SET id = 'same'", 0, 0, SQLITE_CONSTRAINT, 1, "same", 0, 0);
  expect_fail(g_db, "UPDATE t SET embedding = CASE WHEN rowid = 60 THEN '[1]' ELSE '[9, 9, 9, 9]' END", 0, 0, 0, 1,
              "1", "4", 0);
  expect_fail(g_db, "UPDATE t SET rowid = rowid + 10", 0, 0, SQLITE_CONSTRAINT, 1, "rowid", 0, 0);
  expect_knn(g_db, "[9, 9, 9, 9]", 3, "gamma:259,beta:292,alpha-2:307");
  /* Committed state, seen by another connection. */
  sqlite3 *db2 = tu_open(g_zPath);
  expect_knn(db2, "[0, 0, 5, 0]", 3, "gamma:0,alpha-2:26,beta:29");
  tu_expect_text(db2, "SELECT group_concat(rowid || ':' || id || ':' || content, ' ') FROM (SELECT rowid, id, content "
                   "FROM t ORDER BY rowid)",
              "1:alpha-2:all 50:beta:all 60:gamma:all");
  sqlite3_close(db2);
  Counts want = {3, 3, 3, counts(g_db).nLog};
  expect_counts(g_db, want, "after the updates");
}

/* DELETE by id, by rowid, by a condition, by a search, and of everything. */
static void test_delete(void **state) {
  (void)state;
  make_base(g_db);
  tu_exec(g_db, "INSERT INTO t(rowid, id, metadata, embedding) VALUES (4, 'delta', '{\"g\": 2}', '[0, 0, 0, 4]'), "
                "(5, 'eps', '{\"g\": 3}', '[5, 5, 5, 5]')");
  assert_int_equal(exec_changes(g_db, "DELETE FROM t WHERE id = 'alpha'"), 1);
  expect_knn_lacks(g_db, "[1, 0, 0, 0]", (const char *const[]){"alpha", 0});
  expect_knn(g_db, "[1, 0, 0, 0]", 1, "beta:5");
  assert_int_equal(exec_changes(g_db, "DELETE FROM t WHERE rowid = 2"), 1);
  assert_int_equal(exec_changes(g_db, "DELETE FROM t WHERE rowid = 999"), 0);
  assert_int_equal(exec_changes(g_db, "DELETE FROM t WHERE id = 'nobody'"), 0);
  tu_expect_int(g_db, "SELECT count(*) FROM t", 3);
  tu_expect_int(g_db, "SELECT count(*) FROM t_docs", 3);
  tu_expect_int(g_db, "SELECT count(*) FROM t_vectors", 3);
  expect_knn(g_db, "[0, 0, 0, 0]", 10, "gamma:9,delta:16,eps:100");
  assert_int_equal(exec_changes(g_db, "DELETE FROM t WHERE json_extract(metadata, '$.g') = 2"), 2);
  expect_knn(g_db, "[0, 0, 0, 0]", 10, "eps:100");
  assert_int_equal(exec_changes(g_db, "DELETE FROM t"), 1);
  Counts want = {0, 0, 0, counts(g_db).nLog};
  expect_counts(g_db, want, "after DELETE FROM t");
  expect_knn(g_db, "[0, 0, 0, 0]", 10, "");
  /* Refill; delete the two nearest of a search; another connection sees the result. */
  tu_exec(g_db, "INSERT INTO t(id, embedding) VALUES ('p', '[1, 0, 0, 0]'), ('q', '[2, 0, 0, 0]'), "
                "('r', '[3, 0, 0, 0]'), ('s', '[4, 0, 0, 0]')");
  assert_int_equal(exec_changes(g_db, "DELETE FROM t WHERE rowid IN (SELECT rowid FROM t WHERE embedding MATCH "
                                      "'[0, 0, 0, 0]' AND k = 2)"),
                   2);
  expect_knn(g_db, "[0, 0, 0, 0]", 10, "r:9,s:16");
  /* Deleted and re-inserted in one transaction. */
  tu_exec(g_db, "BEGIN; DELETE FROM t WHERE id = 'r'; INSERT INTO t(id, embedding) VALUES ('r', '[0, 0, 0, 1]'); COMMIT");
  sqlite3 *db2 = tu_open(g_zPath);
  expect_knn(db2, "[0, 0, 0, 0]", 10, "r:1,s:16");
  tu_expect_int(db2, "SELECT count(*) FROM t_vectors", 2);
  sqlite3_close(db2);
}

/* last_insert_rowid() is the new row's rowid after the statement and after the commit; changes() counts rows. */
static void test_last_insert_rowid_and_changes(void **state) {
  (void)state;
  make_base(g_db);
  /* Make rowids and shadow-table rowids (log sequence numbers etc.) differ. */
  tu_exec(g_db, "DELETE FROM t WHERE rowid = 2; INSERT INTO t(rowid, id, embedding) VALUES (1000, 'k', '[1, 1, 1, 1]')");
  assert_int_equal(sqlite3_last_insert_rowid(g_db), 1000);
  tu_exec(g_db, "INSERT INTO t(id, embedding) VALUES ('l', '[2, 2, 2, 2]')");
  assert_int_equal(sqlite3_last_insert_rowid(g_db), 1001);
  tu_expect_int(g_db, "SELECT last_insert_rowid()", 1001);
  tu_expect_int(g_db, "SELECT rowid FROM t WHERE id = 'l'", 1001);
  tu_exec(g_db, "INSERT INTO t(rowid, id, embedding) VALUES (7, 'm', '[3, 3, 3, 3]')");
  assert_int_equal(sqlite3_last_insert_rowid(g_db), 7);
  tu_exec(g_db, "INSERT INTO t(rowid, id, embedding) VALUES (-42, 'n', '[4, 4, 4, 4]')");
  assert_int_equal(sqlite3_last_insert_rowid(g_db), -42);
  /* Multi-row: the last row's rowid; changes() = rows inserted, even after the implicit commit. */
  assert_int_equal(exec_changes(g_db, "INSERT INTO t(id, embedding) VALUES ('o1', '[5, 0, 0, 0]'), "
                                      "('o2', '[6, 0, 0, 0]'), ('o3', '[7, 0, 0, 0]')"),
                   3);
  assert_int_equal(sqlite3_last_insert_rowid(g_db), 1004);
  tu_expect_int(g_db, "SELECT rowid FROM t WHERE id = 'o3'", 1004);
  /* Inside a transaction: unchanged by COMMIT. */
  tu_exec(g_db, "BEGIN; INSERT INTO t(rowid, id, embedding) VALUES (500, 'p', '[8, 0, 0, 0]')");
  assert_int_equal(sqlite3_last_insert_rowid(g_db), 500);
  tu_exec(g_db, "COMMIT");
  assert_int_equal(sqlite3_last_insert_rowid(g_db), 500);
  /* A skipped row (OR IGNORE) or a failed one leaves it alone. */
  tu_exec(g_db, "INSERT OR IGNORE INTO t(rowid, id, embedding) VALUES (9, 'p', '[8, 0, 0, 0]')");
  assert_int_equal(sqlite3_last_insert_rowid(g_db), 500);
  sqlite3_free(tu_exec_error(g_db, "INSERT INTO t(rowid, id, embedding) VALUES (10, 'p', '[8, 0, 0, 0]')"));
  assert_int_equal(sqlite3_last_insert_rowid(g_db), 500);
  /* A large insert whose commit also rewrites the index snapshot: last_insert_rowid and changes() still right. */
  assert_int_equal(exec_changes(g_db, "INSERT INTO t(embedding) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
                                      "FROM c WHERE x < 1500) SELECT '[' || x || ', 1, 1, 1]' FROM c"),
                   1500);
  assert_int_equal(sqlite3_last_insert_rowid(g_db), 2504);
  tu_expect_int(g_db, "SELECT rowid FROM t WHERE embedding MATCH '[1500, 1, 1, 1]' AND k = 1", 2504);
  assert_int_equal(exec_changes(g_db, "DELETE FROM t WHERE rowid > 1004 AND rowid <= 2504"), 1500);
  assert_int_equal(sqlite3_last_insert_rowid(g_db), 2504);
  /* UPDATE / DELETE counts. */
  assert_int_equal(exec_changes(g_db, "UPDATE t SET content = 'x' WHERE id LIKE 'o%'"), 3);
  assert_int_equal(exec_changes(g_db, "DELETE FROM t WHERE id IN ('o1', 'o2', 'zz')"), 2);
  assert_int_equal(exec_changes(g_db, "DELETE FROM t WHERE id = 'zz'"), 0);
  tu_expect_int(g_db, "SELECT count(*) FROM t", 8);
  expect_knn(g_db, "[7, 0, 0, 0]", 2, "o3:0,p:1");
}

/* The checks after a failed multi-row statement: the table unchanged and none of the rows findable. */
static void expect_nothing_left(sqlite3 *db, Counts want, const char *zBefore, const char *zWhere) {
  expect_counts(db, want, zWhere);
  char *zAfter = fingerprint(db);
  if (strcmp(zBefore, zAfter) != 0) fail_msg("%s: rows changed\n  before: %s\n  after:  %s", zWhere, zBefore, zAfter);
  sqlite3_free(zAfter);
  const char *const azNew[] = {"n1", "n2", "n3", 0};
  expect_knn_lacks(db, "[5, 5, 5, 5]", azNew);
  expect_knn_lacks(db, "[6, 6, 6, 6]", azNew);
  expect_knn_lacks(db, "[8, 8, 8, 8]", azNew);
  tu_expect_int(db, "SELECT count(*) FROM t WHERE id IN ('n1', 'n2', 'n3')", 0);
  tu_expect_int(db, "SELECT count(*) FROM t_log WHERE rowid NOT IN (SELECT rowid FROM t_docs) AND op = 0", 0);
}

/* Multi-row statements whose later row fails leave nothing behind. */
static const char *const azFailing[] = {
    /* INSERT ... SELECT from a CTE; the third row's id is taken. */
    "INSERT INTO t(id, embedding) WITH v(id, e) AS (VALUES ('n1', '[5, 5, 5, 5]'), ('n2', '[6, 6, 6, 6]'), "
    "('beta', '[7, 7, 7, 7]'), ('n3', '[8, 8, 8, 8]')) SELECT id, e FROM v",
    /* VALUES; the third row repeats the first one's id. */
    "INSERT INTO t(id, embedding) VALUES ('n1', '[5, 5, 5, 5]'), ('n2', '[6, 6, 6, 6]'), ('n1', '[8, 8, 8, 8]')",
    /* A later row's rowid is taken. */
    "INSERT INTO t(rowid, id, embedding) VALUES (10, 'n1', '[5, 5, 5, 5]'), (11, 'n2', '[6, 6, 6, 6]'), "
    "(1, 'n3', '[8, 8, 8, 8]')",
    /* A later row has a bad vector. */
    "INSERT INTO t(id, embedding) SELECT 'n' || value, CASE value WHEN 3 THEN '[1, 2]' ELSE "
    "'[' || (value + 4) || ', ' || (value + 4) || ', ' || (value + 4) || ', ' || (value + 4) || ']' END "
    "FROM json_each('[1, 2, 3]')",
    0};

static void test_multirow_atomic_autocommit(void **state) {
  (void)state;
  make_base(g_db);
  Counts want = counts(g_db);
  char *zBefore = fingerprint(g_db);
  for (int i = 0; azFailing[i]; i++) {
    char *zErr = tu_exec_error(g_db, azFailing[i]);
    if (strncmp(zErr, "vecstore: ", 10) != 0) fail_msg("error '%s'\n  in: %s", zErr, azFailing[i]);
    sqlite3_free(zErr);
    expect_nothing_left(g_db, want, zBefore, azFailing[i]);
  }
  /* A large statement (more rows than the log keeps before a snapshot) failing at its last row. */
  sqlite3_int64 nSnap = tu_int(g_db, "SELECT count(*) FROM t_snapshot");
  sqlite3_free(tu_exec_error(g_db, "INSERT INTO t(id, embedding) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT "
                                   "x + 1 FROM c WHERE x < 1500) SELECT CASE x WHEN 1500 THEN 'gamma' ELSE 'big' || x "
                                   "END, '[' || x || ', 5, 5, 5]' FROM c"));
  expect_nothing_left(g_db, want, zBefore, "1500-row INSERT ... SELECT");
  tu_expect_int(g_db, "SELECT count(*) FROM t_snapshot", nSnap);
  expect_knn(g_db, "[2, 5, 5, 5]", 1, "gamma:58");
  /* The duplicate-id case reports a constraint error. */
  sqlite3_stmt *pStmt = tu_prepare(g_db, azFailing[0]);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_CONSTRAINT);
  assert_non_null(strstr(sqlite3_errmsg(g_db), "beta"));
  sqlite3_finalize(pStmt);
  expect_nothing_left(g_db, want, zBefore, "prepared INSERT ... SELECT");
  /* Another connection agrees. */
  sqlite3 *db2 = tu_open(g_zPath);
  expect_nothing_left(db2, want, zBefore, "second connection");
  sqlite3_close(db2);
  /* Reopened, still nothing, and a good multi-row insert then works. */
  sqlite3_close(g_db);
  g_db = tu_open(g_zPath);
  expect_nothing_left(g_db, want, zBefore, "after reopening");
  tu_exec(g_db, "INSERT INTO t(id, embedding) VALUES ('n1', '[5, 5, 5, 5]'), ('n2', '[6, 6, 6, 6]')");
  expect_knn(g_db, "[5, 5, 5, 5]", 2, "n1:0,n2:4");
  tu_expect_int(g_db, "SELECT count(*) FROM t_vectors", 5);
  sqlite3_free(zBefore);
}

static void test_multirow_atomic_in_transaction(void **state) {
  (void)state;
  make_base(g_db);
  tu_exec(g_db, "BEGIN; INSERT INTO t(id, embedding) VALUES ('p1', '[9, 0, 0, 0]')");
  Counts want = counts(g_db);
  char *zBefore = fingerprint(g_db);
  for (int i = 0; azFailing[i]; i++) {
    sqlite3_free(tu_exec_error(g_db, azFailing[i]));
    assert_int_equal(sqlite3_get_autocommit(g_db), 0);
    expect_nothing_left(g_db, want, zBefore, azFailing[i]);
    expect_knn(g_db, "[9, 0, 0, 0]", 1, "p1:0");
  }
  /* A failing UPDATE of several rows, too. */
  sqlite3_free(tu_exec_error(g_db, "UPDATE t SET id = 'n1'"));
  expect_nothing_left(g_db, want, zBefore, "UPDATE t SET id = 'n1'");
  tu_exec(g_db, "INSERT INTO t(id, embedding) VALUES ('p2', '[0, 9, 0, 0]')");
  expect_knn(g_db, "[0, 9, 0, 0]", 1, "p2:0");
  tu_exec(g_db, "COMMIT");
  sqlite3_free(zBefore);

  tu_expect_int(g_db, "SELECT count(*) FROM t", 5);
  tu_expect_int(g_db, "SELECT count(*) FROM t_docs", 5);
  tu_expect_int(g_db, "SELECT count(*) FROM t_vectors", 5);
  tu_expect_int(g_db, "SELECT count(*) FROM t_log WHERE rowid NOT IN (SELECT rowid FROM t_docs) AND op = 0", 0);
  expect_knn(g_db, "[9, 0, 0, 0]", 1, "p1:0");
  expect_knn(g_db, "[0, 9, 0, 0]", 1, "p2:0");
  const char *const azNew[] = {"n1", "n2", "n3", 0};
  expect_knn_lacks(g_db, "[5, 5, 5, 5]", azNew);
  expect_knn_lacks(g_db, "[6, 6, 6, 6]", azNew);
  sqlite3 *db2 = tu_open(g_zPath);
  expect_knn(db2, "[9, 0, 0, 0]", 1, "p1:0");
  expect_knn(db2, "[0, 9, 0, 0]", 1, "p2:0");
  expect_knn_lacks(db2, "[5, 5, 5, 5]", azNew);
  expect_knn_lacks(db2, "[8, 8, 8, 8]", azNew);
  tu_expect_text(db2, "SELECT group_concat(id, ',') FROM (SELECT id FROM t ORDER BY rowid)", "alpha,beta,gamma,p1,p2");
  sqlite3_close(db2);
}

/* The other ON CONFLICT modes, and REPLACE inside statements that fail or replace their own rows. */
static void test_conflict_modes(void **state) {
  (void)state;
  make_base(g_db);
  Counts want = counts(g_db);
  char *zBefore = fingerprint(g_db);
  /* OR REPLACE deletes alpha, then a later row fails: alpha is back, in the table and in searches. */
  expect_fail(g_db, "INSERT OR REPLACE INTO t(id, embedding) VALUES ('alpha', '[0, 0, 0, 1]'), ('n2', '[1, 2]')", 0, 0,
              0, 1, "2", "4", 0);
  expect_nothing_left(g_db, want, zBefore, "OR REPLACE then a bad row");
  expect_knn(g_db, "[1, 0, 0, 0]", 1, "alpha:0");
  expect_knn(g_db, "[0, 0, 0, 1]", 3, "alpha:2,beta:5,gamma:10");
  sqlite3_free(zBefore);
  /* OR REPLACE of a row the same statement inserted: one row, the last vector. */
  tu_exec(g_db, "INSERT OR REPLACE INTO t(id, embedding) VALUES ('d', '[0, 0, 0, 5]'), ('d', '[0, 0, 0, 6]')");
  tu_expect_int(g_db, "SELECT count(*) FROM t WHERE id = 'd'", 1);
  expect_knn(g_db, "[0, 0, 0, 6]", 2, "d:0,alpha:37");
  tu_expect_int(g_db, "SELECT count(*) FROM t_vectors", 4);
  /* OR FAIL keeps the rows before the failing one. */
  sqlite3_free(tu_exec_error(g_db, "INSERT OR FAIL INTO t(id, embedding) VALUES ('f1', '[5, 5, 5, 5]'), "
                                   "('beta', '[6, 6, 6, 6]'), ('f2', '[7, 7, 7, 7]')"));
  tu_expect_int(g_db, "SELECT count(*) FROM t", 5);
  expect_knn(g_db, "[5, 5, 5, 5]", 1, "f1:0");
  expect_knn_lacks(g_db, "[7, 7, 7, 7]", (const char *const[]){"f2", 0});
  tu_expect_text(g_db, "SELECT hex(embedding) FROM t WHERE id = 'beta'", "00000000000000400000000000000000");
  /* OR ROLLBACK ends the transaction: its earlier statements are gone too. */
  want = counts(g_db);
  zBefore = fingerprint(g_db);
  tu_exec(g_db, "BEGIN; INSERT INTO t(id, embedding) VALUES ('r1', '[8, 8, 8, 8]')");
  expect_knn(g_db, "[8, 8, 8, 8]", 1, "r1:0");
  sqlite3_free(tu_exec_error(g_db, "INSERT OR ROLLBACK INTO t(id, embedding) VALUES ('r2', '[9, 9, 9, 9]'), "
                                   "('gamma', '[6, 6, 6, 6]')"));
  assert_int_equal(sqlite3_get_autocommit(g_db), 1);
  expect_counts(g_db, want, "after OR ROLLBACK");
  char *zAfter = fingerprint(g_db);
  assert_string_equal(zBefore, zAfter);
  sqlite3_free(zBefore);
  sqlite3_free(zAfter);
  expect_knn_lacks(g_db, "[8, 8, 8, 8]", (const char *const[]){"r1", "r2", 0});
  expect_knn(g_db, "[8, 8, 8, 8]", 1, "f1:36");
  sqlite3 *db2 = tu_open(g_zPath);
  expect_knn(db2, "[8, 8, 8, 8]", 1, "f1:36");
  tu_expect_int(db2, "SELECT count(*) FROM t", 5);
  sqlite3_close(db2);
}

/* Extreme rowids: the largest works (and SQLite then picks an unused rowid); the smallest, reserved by the
** implementation, fails cleanly. */
static void test_rowid_extremes(void **state) {
  (void)state;
  make_base(g_db);
  tu_exec(g_db, "INSERT INTO t(rowid, id, embedding) VALUES (9223372036854775807, 'max', '[3, 3, 3, 3]')");
  assert_true(sqlite3_last_insert_rowid(g_db) == 9223372036854775807LL);
  tu_exec(g_db, "INSERT INTO t(id, embedding) VALUES ('next', '[4, 4, 4, 4]')");
  sqlite3_int64 iNext = sqlite3_last_insert_rowid(g_db);
  assert_true(iNext > 3 && iNext < 9223372036854775807LL);
  char *zSql = sqlite3_mprintf("SELECT id FROM t WHERE rowid = %lld", (long long)iNext);
  tu_expect_text(g_db, zSql, "next");
  sqlite3_free(zSql);
  tu_expect_int(g_db, "SELECT rowid = last_insert_rowid() FROM t WHERE embedding MATCH '[4, 4, 4, 4]' AND k = 1", 1);
  expect_knn(g_db, "[3, 3, 3, 3]", 1, "max:0");
  tu_expect_int(g_db, "SELECT rowid = 9223372036854775807 FROM t WHERE id = 'max'", 1);
  expect_fail(g_db, "INSERT INTO t(rowid, id, embedding) VALUES (-9223372036854775808, 'min', '[1, 1, 1, 1]')", 0, 0,
              0, 1, "rowid", "-9223372036854775808", 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_insert_defaults, setup, teardown),
      cmocka_unit_test_setup_teardown(test_insert_explicit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_insert_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_duplicate_errcode, setup, teardown),
      cmocka_unit_test_setup_teardown(test_insert_or_replace, setup, teardown),
      cmocka_unit_test_setup_teardown(test_insert_or_ignore, setup, teardown),
      cmocka_unit_test_setup_teardown(test_update, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_last_insert_rowid_and_changes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_multirow_atomic_autocommit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_multirow_atomic_in_transaction, setup, teardown),
      cmocka_unit_test_setup_teardown(test_conflict_modes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rowid_extremes, setup, teardown),
  };
  return cmocka_run_group_tests_name("write", tests, NULL, NULL);
}
