/* Errors that teach (issue 11): every user error starts with "vecstore: " and says what was expected, what was
** received and what to write instead. MATCH on the wrong column or in the wrong place, search-only constraints
** without a MATCH, float64 vectors, CREATE arguments in sqlite-vec or unquoted-comma form; and EXPLAIN QUERY PLAN
** naming declared columns by name. Real connections on real files. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TU_FIXTURES("errors")

/* Checks that zErr starts with "vecstore: " and contains every fragment of the NULL-terminated list ap. */
static void check_message(const char *zErr, const char *zSql, va_list ap) {
  if (strncmp(zErr, "vecstore: ", 10) != 0) fail_msg("error '%s' does not start with 'vecstore: '\n  in: %s", zErr, zSql);
  const char *zFrag;
  while ((zFrag = va_arg(ap, const char *)) != 0) {
    if (strstr(zErr, zFrag) == 0) fail_msg("error '%s' lacks '%s'\n  in: %s", zErr, zFrag, zSql);
  }
}

/* zSql must fail (at prepare or while stepping) with a "vecstore: " message containing the fragments. */
static void expect_error(sqlite3 *db, const char *zSql, ...) {
  char *zErr = tu_exec_error(db, zSql);
  va_list ap;
  va_start(ap, zSql);
  check_message(zErr, zSql, ap);
  va_end(ap);
  sqlite3_free(zErr);
}

/* zSql with ?1 bound to the nByte bytes of pBlob must fail with a "vecstore: " message containing the fragments. */
static void expect_blob_error(sqlite3 *db, const char *zSql, const void *pBlob, int nByte, ...) {
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  if (rc == SQLITE_OK) {
    sqlite3_bind_blob(pStmt, 1, pBlob, nByte, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    }
    if (rc == SQLITE_DONE) fail_msg("SQL succeeded but an error was expected: %s", zSql);
  }
  char *zErr = sqlite3_mprintf("%s", sqlite3_errmsg(db));
  sqlite3_finalize(pStmt);
  va_list ap;
  va_start(ap, nByte);
  check_message(zErr, zSql, ap);
  va_end(ap);
  sqlite3_free(zErr);
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

static void expect_plan(sqlite3 *db, const char *zSql, const char *zHas) {
  char *z = plan_of(db, zSql);
  if (strstr(z, zHas) == 0) fail_msg("plan '%s' lacks '%s'\n  in: %s", z, zHas, zSql);
  sqlite3_free(z);
}

/* docs(dim 2, page INTEGER, source TEXT) with four rows: rowid i at [i, 0], page i % 2, source 'a' or 'b'. */
static void create_docs(sqlite3 *db) {
  tu_exec(db, "CREATE VIRTUAL TABLE docs USING vecstore(dim = 2, page INTEGER, source TEXT)");
  tu_exec(db, "INSERT INTO docs(rowid, id, content, embedding, page, source) VALUES "
              "(1, 'a', 'one', '[1, 0]', 1, 'a'), (2, 'b', 'two', '[2, 0]', 0, 'b'), "
              "(3, 'c', 'three', '[3, 0]', 1, 'a'), (4, 'd', 'four', '[4, 0]', 0, 'b')");
}

/**************************************************************************************************
** 1. MATCH on a column that does not take it, or where the table cannot use it.
*/

/* MATCH on any column but embedding and the table's own column names the two that take MATCH; the error comes at
** prepare time, so an empty table gets it too. */
static void test_match_other_column(void **state) {
  (void)state;
  tu_exec(tu_db, "CREATE VIRTUAL TABLE empty USING vecstore(dim = 2, page INTEGER)");
  expect_error(tu_db, "SELECT rowid FROM empty WHERE content MATCH 'x'", "MATCH on column content",
               "embedding MATCH", "empty MATCH", NULL);
  create_docs(tu_db);
  static const char *const azCol[] = {"content", "metadata", "id", "page", "source", "distance", "score", "k",
                                      "search_params", "rowid"};
  for (size_t i = 0; i < sizeof(azCol) / sizeof(azCol[0]); i++) {
    char *zSql = sqlite3_mprintf("SELECT rowid FROM docs WHERE %s MATCH 'apples'", azCol[i]);
    char *zCol = sqlite3_mprintf("MATCH on column %s", azCol[i]);
    expect_error(tu_db, zSql, zCol, "embedding MATCH <vector>", "docs MATCH <text>", "WHERE docs MATCH", NULL);
    sqlite3_free(zCol);
    sqlite3_free(zSql);
  }
  /* Also beside a good MATCH, and in a join where the MATCH value comes from another table. */
  expect_error(tu_db, "SELECT rowid FROM docs WHERE embedding MATCH '[1, 0]' AND content MATCH 'x'",
               "MATCH on column content", NULL);
  tu_exec(tu_db, "CREATE TABLE q(v TEXT, t TEXT)");
  tu_exec(tu_db, "INSERT INTO q VALUES ('[1, 0]', 'one')");
  expect_error(tu_db, "SELECT docs.rowid FROM q, docs WHERE docs.content MATCH q.t", "MATCH on column content", NULL);
  /* The columns that take MATCH still do, in a join too. */
  tu_expect_rows(tu_db, "SELECT rowid FROM docs WHERE embedding MATCH '[1, 0]' AND k = 2", ",", "%g", "1,2");
  tu_expect_rows(tu_db, "SELECT docs.rowid FROM q, docs WHERE docs.embedding MATCH q.v AND docs.k = 1", ",", "%g", "1");
}

/* A MATCH on embedding or on the table's column that SQLite would have to test row by row (inside OR or NOT, in
** an expression) is an error explaining that MATCH goes at the top level of WHERE, ANDed. */
static void test_match_not_at_top_level(void **state) {
  (void)state;
  create_docs(tu_db);
  const char *azSql[] = {
      "SELECT rowid FROM docs WHERE embedding MATCH '[1, 0]' OR length(id) = 1",
      "SELECT rowid FROM docs WHERE NOT (embedding MATCH '[1, 0]')",
      "SELECT rowid FROM docs WHERE (embedding MATCH '[1, 0]') = 1",
      "SELECT rowid, embedding MATCH '[1, 0]' FROM docs",
      "SELECT rowid FROM docs WHERE docs MATCH 'one' OR length(id) = 1",
      "SELECT rowid FROM docs WHERE CASE WHEN page = 1 THEN embedding MATCH '[1, 0]' ELSE 1 END",
  };
  for (size_t i = 0; i < sizeof(azSql) / sizeof(azSql[0]); i++) {
    expect_error(tu_db, azSql[i], "MATCH", "top level", "ANDed", "embedding MATCH <vector>", "docs MATCH <text>",
                 NULL);
  }
  /* The same conditions ANDed with the MATCH are fine. */
  tu_expect_rows(tu_db, "SELECT rowid FROM docs WHERE embedding MATCH '[4, 0]' AND (page = 1 OR id = 'd') AND k = 10",
                 ",", "%g", "4,3,1");
  tu_expect_rows(tu_db, "SELECT rowid FROM docs WHERE embedding MATCH '[1, 0]' AND NOT (page = 1) LIMIT 5", ",", "%g",
                 "2,4");
}

/**************************************************************************************************
** 2. Search-only constraints without a MATCH.
*/

static void test_search_only_without_match(void **state) {
  (void)state;
  create_docs(tu_db);
  static const struct {
    const char *zWhere;
    const char *zCol;
  } aCase[] = {
      {"k = 1", "k"},
      {"k > 1", "k"},
      {"fetch_k = 2", "fetch_k"},
      {"lambda_mult = 0.5", "lambda_mult"},
      {"search_params = 'efSearch=8'", "search_params"},
      {"distance < 1", "distance"},
      {"distance <= 1", "distance"},
      {"distance > 1", "distance"},
      {"score >= 0.5", "score"},
      {"score > 0.5", "score"},
      {"distance IS NULL", "distance"},
      {"page = 1 AND k = 1", "k"},
      {"rowid = 1 AND k = 1", "k"},
      {"id = 'a' AND distance < 5", "distance"},
      {"rowid IN (1, 2) AND score > 0", "score"},
  };
  for (size_t i = 0; i < sizeof(aCase) / sizeof(aCase[0]); i++) {
    char *zSql = sqlite3_mprintf("SELECT rowid FROM docs WHERE %s", aCase[i].zWhere);
    char *zWhat = sqlite3_mprintf("%s needs a search", aCase[i].zCol);
    expect_error(tu_db, zSql, zWhat, "received no MATCH", "embedding MATCH <vector>", "docs MATCH <text>", NULL);
    sqlite3_free(zWhat);
    sqlite3_free(zSql);
  }
  /* k without a MATCH says that a scan takes LIMIT. */
  expect_error(tu_db, "SELECT rowid FROM docs WHERE k = 2", "LIMIT", NULL);
  /* With the MATCH the same constraints work, also inside an OR beside it. */
  tu_expect_rows(tu_db, "SELECT rowid FROM docs WHERE embedding MATCH '[1, 0]' AND k = 1", ",", "%g", "1");
  tu_expect_rows(tu_db, "SELECT rowid FROM docs WHERE embedding MATCH '[1, 0]' AND distance < 2", ",", "%g", "1,2");
  tu_expect_rows(tu_db, "SELECT rowid FROM docs WHERE embedding MATCH '[1, 0]' AND (distance < 0.5 OR page = 0)", ",",
                 "%g", "1,2,4");
  /* Plain scans and point lookups are unchanged. */
  tu_expect_rows(tu_db, "SELECT rowid FROM docs WHERE page = 1", ",", "%g", "1,3");
  tu_expect_rows(tu_db, "SELECT rowid, distance IS NULL FROM docs WHERE id = 'b'", ",", "%g", "2|1");
  tu_expect_rows(tu_db, "SELECT rowid FROM docs LIMIT 2", ",", "%g", "1,2");
}

/**************************************************************************************************
** 3. float64 vectors.
*/

static void test_float64_blob(void **state) {
  (void)state;
  tu_exec(tu_db, "CREATE VIRTUAL TABLE v USING vecstore(dim = 4)");
  const double a64[4] = {0.1, 0.2, 0.3, 0.4};
  const float a32[4] = {0.1f, 0.2f, 0.3f, 0.4f};
  /* Stored vectors: INSERT and UPDATE. */
  expect_blob_error(tu_db, "INSERT INTO v(rowid, embedding) VALUES (1, ?1)", a64, (int)sizeof(a64), "embedding",
                    "32 bytes", "float64", "float32 little-endian", "16 bytes for dim 4", ".astype(np.float32).tobytes()",
                    "JSON", NULL);
  tu_exec(tu_db, "INSERT INTO v(rowid, embedding) VALUES (1, '[0.1, 0.2, 0.3, 0.4]')");
  expect_blob_error(tu_db, "UPDATE v SET embedding = ?1 WHERE rowid = 1", a64, (int)sizeof(a64), "float64",
                    ".astype(np.float32).tobytes()", NULL);
  /* Query vectors. */
  expect_blob_error(tu_db, "SELECT rowid FROM v WHERE embedding MATCH ?1 AND k = 1", a64, (int)sizeof(a64),
                    "query vector", "float64", "float32 little-endian", ".astype(np.float32).tobytes()", NULL);
  /* Values whose float64 bytes read as float32 hold a NaN: still named as float64, not as a non-finite value. */
  const double aNan[4] = {1.0000000000000002, 1.0000000000000004, 0.1, -0.7};
  unsigned char aBytes[32];
  memcpy(aBytes, aNan, 32);
  aBytes[3] = 0x7f; /* the first float32 of the bytes is a NaN */
  aBytes[2] = 0xc0;
  expect_blob_error(tu_db, "SELECT rowid FROM v WHERE embedding MATCH ?1 AND k = 1", aBytes, 32, "float64", NULL);
  /* The vector functions: vecstore_distance knows the dimension from the other vector. */
  expect_blob_error(tu_db, "SELECT vecstore_distance('[0.1, 0.2, 0.3, 0.4]', ?1)", a64, (int)sizeof(a64),
                    "second vector", "float64", ".astype(np.float32).tobytes()", NULL);
  expect_blob_error(tu_db, "SELECT vecstore_distance(?1, '[0.1, 0.2, 0.3, 0.4]')", a64, (int)sizeof(a64),
                    "second vector has 4 dimensions, expected 8", "or the first vector is float64", "32 bytes",
                    ".astype(np.float32).tobytes()", NULL);
  expect_blob_error(tu_db, "SELECT vecstore_distance(?1, '[1, 2, 3, 4]')", aBytes, 32,
                    "vecstore_distance(): first vector BLOB has 32 bytes", "float64", NULL);
  expect_blob_error(tu_db, "SELECT vecstore_distance(vecstore_vector('[1, 2, 3, 4]'), ?1, 'cosine')", a64,
                    (int)sizeof(a64), "second vector", "float64", NULL);
  /* float32 BLOBs of the right size still work. */
  sqlite3_stmt *pStmt = tu_prepare(tu_db, "SELECT rowid FROM v WHERE embedding MATCH ?1 AND k = 1");
  sqlite3_bind_blob(pStmt, 1, a32, (int)sizeof(a32), SQLITE_STATIC);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int64(pStmt, 0), 1);
  sqlite3_finalize(pStmt);
  /* Other wrong sizes keep their dimension message. */
  expect_error(tu_db, "INSERT INTO v(embedding) VALUES (zeroblob(12))", "embedding has 3 dimensions, expected 4", NULL);
}

/* An embedder function that returns float64 bytes gets the same explanation. */
static void embed64(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  static const double a[4] = {0.5, 0.25, 0.125, 1.0};
  sqlite3_result_blob(ctx, a, (int)sizeof(a), SQLITE_STATIC);
}

static void test_float64_embedder(void **state) {
  (void)state;
  assert_int_equal(sqlite3_create_function(tu_db, "embed64", 1, SQLITE_UTF8 | SQLITE_INNOCUOUS, 0, embed64, 0, 0),
                   SQLITE_OK);
  tu_exec(tu_db, "CREATE VIRTUAL TABLE e USING vecstore(dim = 4, embedder = embed64)");
  expect_error(tu_db, "INSERT INTO e(content) VALUES ('hello')", "float64", "float32", NULL);
}

/**************************************************************************************************
** 4. CREATE arguments that suggest the right syntax.
*/

static void test_create_unquoted_index(void **state) {
  (void)state;
  expect_error(tu_db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, index=HNSW32,Flat)", "quote",
               "index='HNSW32,Flat'", "commas", NULL);
  expect_error(tu_db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = IVF16,PQ4x4, metric = ip)",
               "index='IVF16,PQ4x4'", NULL);
  expect_error(tu_db, "CREATE VIRTUAL TABLE t USING vecstore(index=OPQ4_8,IVF16,PQ4x4,RFlat, dim = 8)",
               "index='OPQ4_8,IVF16,PQ4x4,RFlat'", NULL);
  /* Nothing was created; the quoted form works. */
  tu_expect_int(tu_db, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 't%'", 0);
  tu_exec(tu_db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, index='HNSW32,Flat')");
  tu_exec(tu_db, "INSERT INTO t(rowid, embedding) VALUES (1, '[1, 0, 0, 0]')");
  tu_expect_int(tu_db, "SELECT rowid FROM t WHERE embedding MATCH '[1, 0, 0, 0]' AND k = 1", 1);
  /* A stray word elsewhere keeps the general message. */
  expect_error(tu_db, "CREATE VIRTUAL TABLE u USING vecstore(dim = 4, Flat)", "column declaration", "'Flat'", NULL);
}

static void test_create_sqlite_vec_column(void **state) {
  (void)state;
  expect_error(tu_db, "CREATE VIRTUAL TABLE t USING vecstore(embedding float[4])", "sqlite-vec", "dim = 4",
               "embedding", "built in", "received 'embedding float[4]'", NULL);
  expect_error(tu_db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, vec FLOAT[8])", "dim = 8", "embedding",
               "built in", NULL);
  expect_error(tu_db, "CREATE VIRTUAL TABLE t USING vecstore(embedding float[384] distance_metric=cosine)",
               "dim = 384", "metric = cosine", NULL);
  tu_expect_int(tu_db, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 't%'", 0);
}

/**************************************************************************************************
** 5. EXPLAIN QUERY PLAN names declared columns.
*/

static void test_explain_column_names(void **state) {
  (void)state;
  create_docs(tu_db);
  expect_plan(tu_db, "SELECT rowid FROM docs WHERE embedding MATCH '[1, 0]' AND k = 3 AND page = 1 AND source IN ('a', 'b')",
              "INDEX 3:match k page:eq source:in");
  expect_plan(tu_db, "SELECT rowid FROM docs WHERE page >= 1 AND source IS NOT NULL", "INDEX 0:page:ge source:notnull");
  /* Names that are not plain identifiers are quoted like SQL identifiers; names with ':' and ' ' decode. */
  tu_exec(tu_db, "CREATE VIRTUAL TABLE odd USING vecstore(dim = 2, \"my col\" INTEGER, \"a:b\" TEXT, "
                 "\"say \"\"hi\"\"\" REAL, \"x:eq\" INTEGER, `match` INTEGER)");
  tu_exec(tu_db, "INSERT INTO odd(rowid, embedding, \"my col\", \"a:b\", \"say \"\"hi\"\"\", \"x:eq\", \"match\") VALUES "
                 "(1, '[1, 0]', 1, 'p', 0.5, 7, 0), (2, '[2, 0]', 2, 'q', 1.5, 8, 1), (3, '[3, 0]', 1, 'q', 2.5, 9, 1)");
  const char *zSql = "SELECT rowid FROM odd WHERE embedding MATCH '[3, 0]' AND \"my col\" = 1 AND \"a:b\" = 'q' "
                     "AND \"say \"\"hi\"\"\" > 1 AND \"x:eq\" < 10 AND \"match\" = 1";
  expect_plan(tu_db, zSql, "match \"my col\":eq \"a:b\":eq \"say \"\"hi\"\"\":gt \"x:eq\":lt match:eq");
  tu_expect_rows(tu_db, zSql, ",", "%g", "3");
  tu_expect_rows(tu_db, "SELECT rowid FROM odd WHERE \"a:b\" = 'q' AND \"x:eq\" IN (7, 8)", ",", "%g", "2");
  tu_expect_rows(tu_db, "SELECT rowid FROM odd WHERE \"match\" = 0 OR \"my col\" = 2", ",", "%g", "1,2");
  /* Another connection reads the table from the file, as it would one written by an earlier release. */
  sqlite3 *db2 = tu_open(tu_fixture_path());
  tu_expect_rows(db2, zSql, ",", "%g", "3");
  tu_expect_rows(db2, "SELECT rowid FROM odd WHERE \"say \"\"hi\"\"\" <= 1.5 AND \"a:b\" IS NOT NULL", ",", "%g", "1,2");
  assert_int_equal(sqlite3_close(db2), SQLITE_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_match_other_column, setup, teardown),
      cmocka_unit_test_setup_teardown(test_match_not_at_top_level, setup, teardown),
      cmocka_unit_test_setup_teardown(test_search_only_without_match, setup, teardown),
      cmocka_unit_test_setup_teardown(test_float64_blob, setup, teardown),
      cmocka_unit_test_setup_teardown(test_float64_embedder, setup, teardown),
      cmocka_unit_test_setup_teardown(test_create_unquoted_index, setup, teardown),
      cmocka_unit_test_setup_teardown(test_create_sqlite_vec_column, setup, teardown),
      cmocka_unit_test_setup_teardown(test_explain_column_names, setup, teardown),
  };
  return cmocka_run_group_tests_name("errors", tests, NULL, NULL);
}
