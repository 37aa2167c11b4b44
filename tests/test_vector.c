/* The vector SQL functions: vecstore_version, vecstore_vector, vecstore_to_json, vecstore_distance,
** vecstore_normalize, through real SQL on a real database file. */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define g_db tu_db
#define g_zPath tu_fixture_path()

/* Each test gets a fresh database file. */
static int setup(void **state) {
  (void)state;
  return tu_fixture_open("vector");
}

static int teardown(void **state) {
  (void)state;
  return tu_fixture_close();
}

/* Asserts that zSql's first column is a number within rTol of rWant. */
static void expect_double(sqlite3 *db, const char *zSql, double rWant, double rTol) {
  double r = tu_double(db, zSql);
  if (!(fabs(r - rWant) <= rTol)) fail_msg("got %.17g, expected %.17g (+-%g)\n  in: %s", r, rWant, rTol, zSql);
}

/* Runs zSql with ?1 bound to the n floats of a as a float32 BLOB; returns the statement on its first row. */
static sqlite3_stmt *step_with_vector(sqlite3 *db, const char *zSql, const float *a, int n) {
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  assert_int_equal(sqlite3_bind_blob(pStmt, 1, a, n * 4, SQLITE_TRANSIENT), SQLITE_OK);
  int rc = sqlite3_step(pStmt);
  if (rc != SQLITE_ROW) fail_msg("no row: %s\n  in: %s", sqlite3_errmsg(db), zSql);
  return pStmt;
}

static void random_vector(uint64_t *pState, float *a, int n, double rScale) {
  for (int i = 0; i < n; i++) a[i] = (float)((tu_rand_unit(pState) * 2.0 - 1.0) * rScale);
}

static void test_version(void **state) {
  (void)state;
  tu_expect_text(g_db, "SELECT vecstore_version()", "0.1.0");
}

/* BLOB and JSON give the same canonical BLOB, whatever the whitespace; vectors survive a file round trip. */
static void test_vector_forms(void **state) {
  (void)state;
  /* 1.0f = 0x3F800000, 2.5f = 0x40200000, -300.0f = 0xC3960000, little-endian. */
  tu_expect_text(g_db, "SELECT hex(vecstore_vector('[1, 2.5, -3e2]'))", "0000803F00002040000096C3");
  tu_expect_text(g_db, "SELECT hex(vecstore_vector(x'0000803F00002040000096C3'))", "0000803F00002040000096C3");
  tu_expect_text(g_db, "SELECT typeof(vecstore_vector('[1, 2.5, -3e2]'))", "blob");
  assert_int_equal(tu_int(g_db, "SELECT length(vecstore_vector('[1, 2.5, -3e2]'))"), 12);
  assert_int_equal(tu_int(g_db, "SELECT vecstore_vector(' \t\n[ 1 ,\r\n2.5,\t-300.0E0 ]\n ')"
                                " = x'0000803F00002040000096C3'"),
                   1);
  assert_int_equal(tu_int(g_db, "SELECT vecstore_vector('[1,2.5,-3e+2]') = vecstore_vector(x'0000803F00002040000096C3')"),
                   1);
  /* JSON numbers in every grammar form; json() output (TEXT with the JSON subtype) is accepted too. */
  tu_expect_text(g_db, "SELECT vecstore_to_json('[0, -0, 0.5, -1.25e1, 2E-1, 1e+2, 12345]')", "[0,-0,0.5,-12.5,0.2,100,12345]");
  tu_expect_text(g_db, "SELECT vecstore_to_json(json('[1, 2, 3]'))", "[1,2,3]");
  /* A single dimension and the maximum dimension count are fine. */
  assert_int_equal(tu_int(g_db, "SELECT length(vecstore_vector('[7]'))"), 4);
  assert_int_equal(tu_int(g_db, "SELECT length(vecstore_vector(zeroblob(4 * 65536)))"), 4 * 65536);
  assert_int_equal(tu_int(g_db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 65536) "
                                "SELECT length(vecstore_vector('[' || group_concat('0.5', ',') || ']')) FROM c"),
                   4 * 65536);
  /* Stored in a table, read back after reopening the file. */
  tu_exec(g_db, "CREATE TABLE vecs(id INTEGER PRIMARY KEY, v BLOB);"
                "INSERT INTO vecs VALUES (1, vecstore_vector('[1, 2, 3]')), (2, vecstore_vector('[4, 6, 8]'));");
  sqlite3_close(g_db);
  g_db = tu_open(g_zPath);
  tu_expect_text(g_db, "SELECT group_concat(vecstore_to_json(v), ' ') FROM (SELECT v FROM vecs ORDER BY id)",
              "[1,2,3] [4,6,8]");
  expect_double(g_db, "SELECT vecstore_distance(a.v, b.v) FROM vecs a, vecs b WHERE a.id = 1 AND b.id = 2", 50.0, 0);
  tu_exec(g_db, "DROP TABLE vecs");
}

/* vecstore_to_json: shortest round-trippable numbers, integers without ".0", exponents outside 1e-4..1e16. */
static void test_to_json(void **state) {
  (void)state;
  tu_expect_text(g_db, "SELECT vecstore_to_json('[1, 2.5, -3e2]')", "[1,2.5,-300]");
  tu_expect_text(g_db, "SELECT vecstore_to_json(x'0000803F00002040000096C3')", "[1,2.5,-300]");
  tu_expect_text(g_db, "SELECT vecstore_to_json('[1.0, 0.1, 0.3, -0.0001, 0.00001, 1e15, 1e16, 1e20, 123456789]')",
              "[1,0.1,0.3,-0.0001,1e-05,1000000000000000,1e+16,1e+20,123456790]");
  tu_expect_text(g_db, "SELECT vecstore_to_json('[3.4028235e38, -3.4028235e38, 1e-45, 1.17549435e-38]')",
              "[3.4028235e+38,-3.4028235e+38,1e-45,1.1754944e-38]");
  /* Denormals and numbers too small for float32 read as the nearest float (0 or the smallest). */
  tu_expect_text(g_db, "SELECT vecstore_to_json('[1e-50, -1e-50]')", "[0,-0]");
  /* Round trips: JSON -> BLOB -> JSON is stable, BLOB -> JSON -> BLOB is bit-exact. */
  tu_expect_text(g_db, "SELECT vecstore_to_json(vecstore_vector(vecstore_to_json('[0.1, 0.2, 0.7, -1e-7]')))",
              "[0.1,0.2,0.7,-1e-07]");
  uint64_t seed = 42;
  float a[257];
  for (int iRound = 0; iRound < 40; iRound++) {
    double rScale = pow(10.0, (iRound % 20) - 10);
    random_vector(&seed, a, 257, rScale);
    a[0] = FLT_MAX;
    a[1] = -FLT_MIN;
    a[2] = 1e-45f;
    a[3] = -0.0f;
    sqlite3_stmt *pStmt =
        step_with_vector(g_db, "SELECT vecstore_vector(vecstore_to_json(?1)) = ?1, vecstore_to_json(?1)", a, 257);
    if (sqlite3_column_int(pStmt, 0) != 1) fail_msg("round trip changed %s", sqlite3_column_text(pStmt, 1));
    const char *zJson = (const char *)sqlite3_column_text(pStmt, 1);
    assert_true(strncmp(zJson, "[3.4028235e+38,-1.1754944e-38,1e-45,-0,", 39) == 0);
    assert_null(strstr(zJson, ".0,"));
    assert_null(strstr(zJson, " "));
    sqlite3_finalize(pStmt);
  }
}

/* vecstore_distance: known values under each metric, default metric, mixed argument forms. */
static void test_distance(void **state) {
  (void)state;
  /* [1,2,3] vs [4,6,8]: differences 3,4,5 -> 9+16+25 = 50; dot 4+12+24 = 40; norms sqrt(14), sqrt(116). */
  expect_double(g_db, "SELECT vecstore_distance('[1,2,3]', '[4,6,8]', 'l2')", 50.0, 0);
  expect_double(g_db, "SELECT vecstore_distance('[1,2,3]', '[4,6,8]')", 50.0, 0);
  expect_double(g_db, "SELECT vecstore_distance('[1,2,3]', '[4,6,8]', 'ip')", -40.0, 0);
  double rCos = 1.0 - 40.0 / (sqrt(14.0) * sqrt(116.0)); /* 0.0074166... */
  expect_double(g_db, "SELECT vecstore_distance('[1,2,3]', '[4,6,8]', 'cosine')", rCos, 1e-6);
  tu_expect_text(g_db, "SELECT typeof(vecstore_distance('[1,2,3]', '[4,6,8]', 'cosine'))", "real");
  /* Metric names in any case; BLOB and JSON arguments mixed. */
  expect_double(g_db, "SELECT vecstore_distance(vecstore_vector('[1,2,3]'), '[4,6,8]', 'L2')", 50.0, 0);
  expect_double(g_db, "SELECT vecstore_distance('[1,2,3]', vecstore_vector('[4,6,8]'), 'IP')", -40.0, 0);
  expect_double(g_db, "SELECT vecstore_distance('[1,2,3]', '[4,6,8]', 'Cosine')", rCos, 1e-6);
  /* Symmetry, identity, opposite and orthogonal vectors, zero vector (cosine similarity 0). */
  expect_double(g_db, "SELECT vecstore_distance('[4,6,8]', '[1,2,3]', 'l2')", 50.0, 0);
  expect_double(g_db, "SELECT vecstore_distance('[1,2,3]', '[1,2,3]', 'l2')", 0.0, 0);
  expect_double(g_db, "SELECT vecstore_distance('[1,2,3]', '[2,4,6]', 'cosine')", 0.0, 1e-7);
  expect_double(g_db, "SELECT vecstore_distance('[1,2,3]', '[-1,-2,-3]', 'cosine')", 2.0, 1e-7);
  expect_double(g_db, "SELECT vecstore_distance('[1,0]', '[0,5]', 'cosine')", 1.0, 1e-7);
  expect_double(g_db, "SELECT vecstore_distance('[0,0,0]', '[1,2,3]', 'cosine')", 1.0, 0);
  expect_double(g_db, "SELECT vecstore_distance('[0,0,0]', '[0,0,0]', 'cosine')", 1.0, 0);
  expect_double(g_db, "SELECT vecstore_distance('[1,2,3]', '[0,0,0]', 'ip')", 0.0, 0);
  expect_double(g_db, "SELECT vecstore_distance('[0.5]', '[-1.5]', 'l2')", 4.0, 0);
  /* A larger random pair against a double-precision reference. */
  uint64_t seed = 7;
  float a[768];
  random_vector(&seed, a, 768, 1.0);
  double rRef = 0.0;
  for (int i = 0; i < 384; i++) {
    double d = (double)a[i] - a[384 + i];
    rRef += d * d;
  }
  sqlite3_stmt *pStmt = step_with_vector(
      g_db, "SELECT vecstore_distance(substr(?1, 1, 1536), substr(?1, 1537, 1536), 'l2')", a, 768);
  assert_float_equal(sqlite3_column_double(pStmt, 0), rRef, rRef * 1e-6);
  sqlite3_finalize(pStmt);
}

/* vecstore_normalize: unit L2 norm, direction kept, zero vector unchanged. */
static void test_normalize(void **state) {
  (void)state;
  tu_expect_text(g_db, "SELECT vecstore_to_json(vecstore_normalize('[3, 4]'))", "[0.6,0.8]");
  tu_expect_text(g_db, "SELECT typeof(vecstore_normalize('[3, 4]'))", "blob");
  tu_expect_text(g_db, "SELECT vecstore_to_json(vecstore_normalize('[0, 0, 0]'))", "[0,0,0]");
  tu_expect_text(g_db, "SELECT vecstore_to_json(vecstore_normalize('[-2]'))", "[-1]");
  /* |n|^2 = -ip(n, n) = 1; same direction as the input; idempotent. */
  expect_double(g_db, "SELECT vecstore_distance(vecstore_normalize('[1,2,3]'), vecstore_normalize('[1,2,3]'), 'ip')",
                -1.0, 1e-6);
  expect_double(g_db, "SELECT vecstore_distance(vecstore_normalize('[1,2,3]'), '[1,2,3]', 'cosine')", 0.0, 1e-6);
  expect_double(g_db, "SELECT vecstore_distance(vecstore_normalize(x'0000803F00002040000096C3'), "
                      "vecstore_normalize(vecstore_normalize('[1, 2.5, -300]')), 'l2')",
                0.0, 1e-12);
  uint64_t seed = 99;
  float a[1000];
  for (int iRound = 0; iRound < 5; iRound++) {
    random_vector(&seed, a, 1000, pow(10.0, 3 * iRound - 6));
    sqlite3_stmt *pStmt = step_with_vector(g_db, "SELECT vecstore_normalize(?1)", a, 1000);
    assert_int_equal(sqlite3_column_bytes(pStmt, 0), 4000);
    const float *n = sqlite3_column_blob(pStmt, 0);
    double rNorm = 0.0;
    for (int i = 0; i < 1000; i++) rNorm += (double)n[i] * n[i];
    assert_float_equal(rNorm, 1.0, 1e-5);
    for (int i = 0; i < 1000; i++) assert_true((n[i] > 0) == (a[i] > 0));
    sqlite3_finalize(pStmt);
  }
}

/* NULL, numbers and empty values are rejected by every function with what was expected and received. */
static void test_errors_type(void **state) {
  (void)state;
  const char *azFunc[] = {"vecstore_vector(%s)", "vecstore_to_json(%s)", "vecstore_normalize(%s)",
                          "vecstore_distance(%s, '[1]')", "vecstore_distance('[1]', %s)"};
  for (size_t i = 0; i < sizeof(azFunc) / sizeof(azFunc[0]); i++) {
    char zExpr[128], zSql[160];
    struct {
      const char *zArg;
      const char *zFrag;
    } aCase[] = {{"NULL", "received NULL"},
                 {"42", "received an integer"},
                 {"4.5", "received a real"},
                 {"x''", "empty"},
                 {"''", "expected '['"},
                 {"'[]'", "empty"}};
    for (size_t j = 0; j < sizeof(aCase) / sizeof(aCase[0]); j++) {
      snprintf(zExpr, sizeof(zExpr), azFunc[i], aCase[j].zArg);
      snprintf(zSql, sizeof(zSql), "SELECT %s", zExpr);
      char zName[32];
      snprintf(zName, sizeof(zName), "%.*s", (int)(strchr(azFunc[i], '(') - azFunc[i]), azFunc[i]);
      tu_expect_error(g_db, zSql, "vecstore: ", zName, aCase[j].zFrag, (char *)0);
    }
  }
  tu_expect_error(g_db, "SELECT vecstore_vector(NULL)", "vecstore: ", "float32 BLOB or JSON array", "NULL", (char *)0);
  tu_expect_error(g_db, "SELECT vecstore_vector(x'')", "vecstore: ", "expected at least 1 dimension",
                  "received an empty BLOB", (char *)0);
  tu_expect_error(g_db, "SELECT vecstore_vector('[ ]')", "vecstore: ", "expected at least 1 dimension", "received []",
                  (char *)0);
}

/* BLOBs: length not a multiple of 4, NaN / Inf values, too many dimensions. */
static void test_errors_blob(void **state) {
  (void)state;
  tu_expect_error(g_db, "SELECT vecstore_vector(x'000000')", "vecstore: ", "3 bytes", "multiple of 4", (char *)0);
  tu_expect_error(g_db, "SELECT vecstore_vector(x'0000803F00')", "vecstore: ", "5 bytes", "multiple of 4", (char *)0);
  tu_expect_error(g_db, "SELECT vecstore_vector(x'0000803F0000C07F')", "vecstore: ", "non-finite", "index 1", "NaN",
                  (char *)0);
  tu_expect_error(g_db, "SELECT vecstore_vector(x'0000807F')", "vecstore: ", "non-finite", "index 0", "Infinity",
                  (char *)0);
  tu_expect_error(g_db, "SELECT vecstore_to_json(x'000080FF')", "vecstore: ", "non-finite", "-Infinity", (char *)0);
  tu_expect_error(g_db, "SELECT vecstore_distance(x'0000803F', x'FFFFFFFF')", "vecstore: ", "second vector",
                  "non-finite", "NaN", (char *)0);
  tu_expect_error(g_db, "SELECT vecstore_normalize(zeroblob(4 * 65537))", "vecstore: ", "65537 dimensions",
                  "at most 65536", (char *)0);
}

/* JSON text: syntax errors name the offset and what was there; non-finite and out-of-range numbers. */
static void test_errors_json(void **state) {
  (void)state;
  struct {
    const char *zSql;
    const char *zFrag1;
    const char *zFrag2;
  } aCase[] = {
      {"SELECT vecstore_vector('[1, 2] x')", "after the closing ']'", "received 'x'"},
      {"SELECT vecstore_vector('[1, 2],')", "after the closing ']'", "received ','"},
      {"SELECT vecstore_vector('[[1, 2]]')", "not a nested array", "offset 1"},
      {"SELECT vecstore_vector('[1, [2]]')", "not a nested array", "offset 4"},
      {"SELECT vecstore_vector('[\"1\", 2]')", "not a string", "received '\"1\", 2]'"},
      {"SELECT vecstore_vector('[{\"a\": 1}]')", "not an object", "offset 1"},
      {"SELECT vecstore_vector('[1 2]')", "expected ',' or ']'", "received '2]'"},
      {"SELECT vecstore_vector('[1,,2]')", "expected a number", "offset 3"},
      {"SELECT vecstore_vector('[1, 2,]')", "expected a number", "received ']'"},
      {"SELECT vecstore_vector('[1, 2')", "expected ',' or ']'", "received end of text"},
      {"SELECT vecstore_vector('[')", "expected a number", "received end of text"},
      {"SELECT vecstore_vector('1, 2')", "expected '['", "received '1, 2'"},
      {"SELECT vecstore_vector('{\"v\": [1]}')", "expected '['", "offset 0"},
      {"SELECT vecstore_vector('')", "expected '['", "received end of text"},
      {"SELECT vecstore_vector('[true]')", "expected a number", "received 'true]'"},
      {"SELECT vecstore_vector('[null]')", "expected a number", "received 'null]'"},
      {"SELECT vecstore_vector('[01]')", "expected a number", "'01]'"},
      {"SELECT vecstore_vector('[.5]')", "expected a number", "'.5]'"},
      {"SELECT vecstore_vector('[1.]')", "expected a number", "'1.]'"},
      {"SELECT vecstore_vector('[+1]')", "expected a number", "'+1]'"},
      {"SELECT vecstore_vector('[1e]')", "expected a number", "'1e]'"},
      {"SELECT vecstore_vector('[0x10]')", "expected a number", "'0x10]'"},
      {"SELECT vecstore_vector('[1-2]')", "expected a number", "'1-2]'"},
      {"SELECT vecstore_vector('[NaN]')", "non-finite value at index 0", "received NaN"},
      {"SELECT vecstore_vector('[1, Infinity]')", "non-finite value at index 1", "received Infinity"},
      {"SELECT vecstore_vector('[-inf]')", "non-finite", "received -inf"},
      {"SELECT vecstore_vector('[1e39]')", "out of float32 range at index 0", "received 1e39"},
      {"SELECT vecstore_vector('[1, -1e39]')", "out of float32 range at index 1", "received -1e39"},
      {"SELECT vecstore_vector('[1e400]')", "out of float32 range", "received 1e400"},
      {"SELECT vecstore_to_json('[1, 2] x')", "vecstore_to_json()", "after the closing ']'"},
      {"SELECT vecstore_normalize('[1, NaN]')", "vecstore_normalize()", "non-finite"},
      {"SELECT vecstore_distance('[1, 2]', '[1, x]')", "vecstore_distance(): second vector", "received 'x]'"},
      {"SELECT vecstore_distance('[1 2]', '[1, 2]')", "vecstore_distance(): first vector", "expected ',' or ']'"},
  };
  for (size_t i = 0; i < sizeof(aCase) / sizeof(aCase[0]); i++) {
    tu_expect_error(g_db, aCase[i].zSql, "vecstore: ", aCase[i].zFrag1, aCase[i].zFrag2,
                    (char *)0);
  }
  /* A very long garbage tail is quoted only in part. */
  char *zErr = tu_exec_error(g_db, "SELECT vecstore_vector('[1]' || printf('%.500c', 'x'))");
  assert_non_null(strstr(zErr, "vecstore: "));
  assert_non_null(strstr(zErr, "...'"));
  assert_true(strlen(zErr) < 250);
  sqlite3_free(zErr);
  /* More than 65536 numbers. */
  tu_expect_error(g_db,
                  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 65537) "
                  "SELECT vecstore_vector('[' || group_concat('1', ',') || ']') FROM c",
                  "vecstore: ", "more than 65536 dimensions", "at most 65536", (char *)0);
}

/* vecstore_distance: dimension mismatch names both counts, unknown metric names itself and the valid ones. */
static void test_errors_distance(void **state) {
  (void)state;
  tu_expect_error(g_db, "SELECT vecstore_distance('[1,2,3]', '[1,2,3,4]')", "vecstore: ",
                  "second vector has 4 dimensions, expected 3", (char *)0);
  tu_expect_error(g_db, "SELECT vecstore_distance(x'0000803F0000803F', '[1]', 'ip')", "vecstore: ",
                  "second vector has 1 dimension, expected 2", (char *)0);
  tu_expect_error(g_db, "SELECT vecstore_distance('[1]', '[1]', 'manhattan')", "vecstore: ", "unknown metric",
                  "'manhattan'", "'l2'", "'ip'", "'cosine'", (char *)0);
  tu_expect_error(g_db, "SELECT vecstore_distance('[1]', '[1]', '')", "vecstore: ", "unknown metric ''", (char *)0);
  tu_expect_error(g_db, "SELECT vecstore_distance('[1]', '[1]', 'l2 ')", "vecstore: ", "unknown metric 'l2 '",
                  (char *)0);
  tu_expect_error(g_db, "SELECT vecstore_distance('[1]', '[1]', NULL)", "vecstore: ", "metric", "received NULL",
                  "'l2'", (char *)0);
  tu_expect_error(g_db, "SELECT vecstore_distance('[1]', '[1]', 2)", "vecstore: ", "unknown metric '2'", (char *)0);
}

/* The functions are deterministic (usable in index expressions) and innocuous (usable from the schema with
** trusted_schema off). */
static void test_function_flags(void **state) {
  (void)state;
  tu_exec(g_db, "CREATE TABLE docs(id INTEGER PRIMARY KEY, v TEXT);"
                "CREATE INDEX docs_dist ON docs(vecstore_distance(v, '[0, 0]'));"
                "INSERT INTO docs(v) VALUES ('[3, 4]'), ('[1, 0]'), ('[0, 2]');");
  tu_expect_text(g_db, "SELECT group_concat(id) FROM (SELECT id FROM docs ORDER BY vecstore_distance(v, '[0, 0]'))",
              "2,3,1");
  tu_exec(g_db, "PRAGMA trusted_schema = OFF;"
                "CREATE VIEW docs_view AS SELECT id, vecstore_to_json(vecstore_normalize(vecstore_vector(v))) AS j,"
                " vecstore_distance(v, '[0, 0]', 'l2') AS d FROM docs;");
  tu_expect_text(g_db, "SELECT j || ' ' || d FROM docs_view WHERE id = 1", "[0.6,0.8] 25.0");
  tu_exec(g_db, "PRAGMA trusted_schema = ON; DROP VIEW docs_view; DROP TABLE docs;");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version),         cmocka_unit_test(test_vector_forms),
      cmocka_unit_test(test_to_json),         cmocka_unit_test(test_distance),
      cmocka_unit_test(test_normalize),       cmocka_unit_test(test_errors_type),
      cmocka_unit_test(test_errors_blob),     cmocka_unit_test(test_errors_json),
      cmocka_unit_test(test_errors_distance), cmocka_unit_test(test_function_flags),
  };
  return cmocka_run_group_tests_name("vector", tests, setup, teardown);
}
