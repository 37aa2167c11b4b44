/* CREATE VIRTUAL TABLE ... USING vecstore(...): options, their errors, the _config shadow table, the columns,
** vecstore_version() and the refusal to load on a CPU without AVX2. Real connections on real files. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define g_db tu_db
#define g_zPath tu_fixture_path()

/* Each test gets a fresh database file. */
TU_FIXTURES("config")

/* The value of key zKey in <zTab>_config as text ("NULL" for NULL). */
static void expect_config(sqlite3 *db, const char *zTab, const char *zKey, const char *zWant) {
  char *zSql = sqlite3_mprintf("SELECT coalesce((SELECT value FROM \"%w_config\" WHERE key = %Q), 'NULL')", zTab, zKey);
  tu_expect_text(db, zSql, zWant);
  sqlite3_free(zSql);
}

/* The option rows of <zTab>_config: dim, metric, index, search_params and embedder (each as expect_config). */
static void expect_options(sqlite3 *db, const char *zTab, const char *zDim, const char *zMetric, const char *zIndex,
                           const char *zSearchParams, const char *zEmbedder) {
  expect_config(db, zTab, "dim", zDim);
  expect_config(db, zTab, "metric", zMetric);
  expect_config(db, zTab, "index", zIndex);
  expect_config(db, zTab, "search_params", zSearchParams);
  expect_config(db, zTab, "embedder", zEmbedder);
}

/* Number of schema objects named zTab or zTab_<anything>. */
static sqlite3_int64 schema_objects(sqlite3 *db, const char *zTab) {
  char *zSql = sqlite3_mprintf("SELECT count(*) FROM sqlite_master WHERE name = %Q OR name LIKE '%q\\_%%' ESCAPE '\\'"
                               " OR tbl_name LIKE '%q\\_%%' ESCAPE '\\'",
                               zTab, zTab, zTab);
  sqlite3_int64 n = tu_int(db, zSql);
  sqlite3_free(zSql);
  return n;
}

/* zSql (a CREATE of table zTab) must fail with a "vecstore: " message containing the fragments (NULL = unused),
** and leave no table and no shadow table behind. */
static void expect_create_error(sqlite3 *db, const char *zTab, const char *zSql, const char *zFrag1,
                                const char *zFrag2, const char *zFrag3) {
  char *zErr = tu_exec_error(db, zSql);
  const char *azFrag[] = {"vecstore: ", zFrag1, zFrag2, zFrag3};
  if (strncmp(zErr, "vecstore: ", 10) != 0) fail_msg("error '%s' does not start with 'vecstore: '\n  in: %s", zErr, zSql);
  for (int i = 0; i < 4; i++) {
    if (azFrag[i] && strstr(zErr, azFrag[i]) == 0) fail_msg("error '%s' lacks '%s'\n  in: %s", zErr, azFrag[i], zSql);
  }
  sqlite3_free(zErr);
  sqlite3_int64 n = schema_objects(db, zTab);
  if (n != 0) fail_msg("failed CREATE left %lld schema objects for %s behind\n  in: %s", (long long)n, zTab, zSql);
}

/* Creates, inserts three vectors of dimension nDim, checks that the nearest row to the second one is itself at
** distance 0, and drops the table (leaving no shadow table behind). */
static void check_usable(sqlite3 *db, const char *zTab, int nDim) {
  float *a = malloc(sizeof(float) * nDim * 3);
  for (int r = 0; r < 3; r++) {
    for (int i = 0; i < nDim; i++) a[r * nDim + i] = (float)((i % 7) + 3 * r) * (i % 2 ? 1.0f : -0.5f);
  }
  char *zSql = sqlite3_mprintf("INSERT INTO \"%w\"(rowid, embedding) VALUES (?1, ?2)", zTab);
  sqlite3_stmt *pIns = tu_prepare(db, zSql);
  sqlite3_free(zSql);
  for (int r = 0; r < 3; r++) {
    sqlite3_bind_int(pIns, 1, 10 + r);
    sqlite3_bind_blob(pIns, 2, a + r * nDim, nDim * 4, SQLITE_TRANSIENT);
    if (sqlite3_step(pIns) != SQLITE_DONE) fail_msg("insert into %s: %s", zTab, sqlite3_errmsg(db));
    sqlite3_reset(pIns);
  }
  sqlite3_finalize(pIns);
  zSql = sqlite3_mprintf("SELECT rowid, distance FROM \"%w\" WHERE embedding MATCH ?1 AND k = 1", zTab);
  sqlite3_stmt *pQ = tu_prepare(db, zSql);
  sqlite3_free(zSql);
  sqlite3_bind_blob(pQ, 1, a + nDim, nDim * 4, SQLITE_TRANSIENT);
  if (sqlite3_step(pQ) != SQLITE_ROW) fail_msg("search in %s: no row: %s", zTab, sqlite3_errmsg(db));
  assert_int_equal(sqlite3_column_int64(pQ, 0), 11);
  assert_float_equal(sqlite3_column_double(pQ, 1), 0.0, 1e-4);
  assert_int_equal(sqlite3_step(pQ), SQLITE_DONE);
  sqlite3_finalize(pQ);
  free(a);
  zSql = sqlite3_mprintf("DROP TABLE \"%w\"", zTab);
  tu_exec(db, zSql);
  sqlite3_free(zSql);
  assert_int_equal(schema_objects(db, zTab), 0);
}

static void test_version(void **state) {
  (void)state;
  tu_expect_text(g_db, "SELECT vecstore_version()", "0.1.0");
  tu_expect_text(g_db, "SELECT typeof(vecstore_version())", "text");
}

/* Defaults land in t_config; every option given lands there too and survives reopening the file. */
static void test_config_table(void **state) {
  (void)state;
  tu_exec(g_db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 4)");
  expect_options(g_db, "t", "4", "l2", "Flat", "NULL", "NULL");
  /* The shadow tables the SPEC's storage section describes. */
  const char *azSuffix[] = {"config", "docs", "vectors", "log", "snapshot"};
  for (int i = 0; i < 5; i++) {
    char *zSql = sqlite3_mprintf("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 't_%s'", azSuffix[i]);
    if (tu_int(g_db, zSql) != 1) fail_msg("shadow table t_%s missing", azSuffix[i]);
    sqlite3_free(zSql);
  }
  tu_exec(g_db, "CREATE VIRTUAL TABLE u USING vecstore(dim = 16, metric = cosine, index = 'HNSW32', "
                "embedder = hash, search_params = 'efSearch=64')");
  expect_options(g_db, "u", "16", "cosine", "HNSW32", "efSearch=64", "hash");
  tu_exec(g_db, "INSERT INTO u(rowid, embedding) VALUES (1, vecstore_vector('[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]')),"
                " (2, '[0,3,0,0,0,0,0,0,0,0,0,0,0,0,0,0]')");
  /* Reopen: the table reconnects with the stored options (cosine: distance 1 - cos). */
  sqlite3_close(g_db);
  g_db = tu_open(g_zPath);
  expect_config(g_db, "u", "metric", "cosine");
  assert_float_equal(tu_double(g_db, "SELECT distance FROM u WHERE embedding MATCH "
                                     "'[0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0]' AND k = 1"),
                     0.0, 1e-5);
  assert_float_equal(tu_double(g_db, "SELECT distance FROM u WHERE embedding MATCH "
                                     "'[1,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0]' AND rowid = 2"),
                     1.0 - sqrt(0.5), 1e-5);
  tu_exec(g_db, "DROP TABLE t; DROP TABLE u");
  assert_int_equal(schema_objects(g_db, "t"), 0);
  assert_int_equal(schema_objects(g_db, "u"), 0);
}

/* The SPEC's CREATE statement up to its search_params option (no comma after it), comments included. */
#define SPEC_CREATE_HEAD                                                                                             \
  "CREATE VIRTUAL TABLE docs USING vecstore(\n"                                                                      \
  "  dim = 384,              -- required, 1..65536\n"                                                                \
  "  metric = l2,            -- l2 (default) | ip | cosine\n"                                                        \
  "  index = 'HNSW32',       -- any Faiss index_factory description; default 'Flat'\n"                               \
  "  embedder = hash,        -- optional: 'hash' (built-in) or the name of an SQL function text -> vector\n"         \
  "  search_params = 'efSearch=64'"

/* The CREATE statement of the SPEC, comments included (the declared columns are tested separately). */
static void test_spec_example(void **state) {
  (void)state;
  tu_exec(g_db, SPEC_CREATE_HEAD "  -- optional default Faiss search parameters (ParameterSpace syntax)\n"
                ");");
  expect_options(g_db, "docs", "384", "l2", "HNSW32", "efSearch=64", "hash");
  check_usable(g_db, "docs", 384);
}

/* dim: required, an integer 1..65536; errors name dim and the value received. */
static void test_dim(void **state) {
  (void)state;
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(metric = ip)", "dim", "required", 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore()", "dim", "required", 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore", "dim", "required", 0);
  struct {
    const char *zArg;
    const char *zGot;
  } aBad[] = {{"dim = 0", "'0'"},         {"dim = 65537", "'65537'"}, {"dim = -1", "'-1'"},
              {"dim = 'abc'", "'abc'"},   {"dim = abc", "'abc'"},     {"dim = 3.5", "'3.5'"},
              {"dim = ''", "''"},         {"dim = '4x'", "'4x'"},       {"dim = 99999999999999999999", "99999999999999999999"}};
  for (size_t i = 0; i < sizeof(aBad) / sizeof(aBad[0]); i++) {
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE t USING vecstore(%s)", aBad[i].zArg);
    expect_create_error(g_db, "t", zSql, "dim", aBad[i].zGot, "65536");
    sqlite3_free(zSql);
  }
  /* The bounds themselves are fine and usable. */
  tu_exec(g_db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 1)");
  expect_config(g_db, "t", "dim", "1");
  check_usable(g_db, "t", 1);
  tu_exec(g_db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 65536)");
  expect_config(g_db, "t", "dim", "65536");
  check_usable(g_db, "t", 65536);
}

/* metric: l2 (default), ip, cosine; distances follow the metric; anything else is named in the error. */
static void test_metric(void **state) {
  (void)state;
  const char *azMetric[] = {"l2", "ip", "cosine"};
  /* [1,2] vs [3,4]: l2 = 4 + 4 = 8; ip = -(3 + 8) = -11; cosine = 1 - 11 / (sqrt(5) * 5). */
  const double aWant[] = {8.0, -11.0, 1.0 - 11.0 / (sqrt(5.0) * 5.0)};
  for (int i = 0; i < 3; i++) {
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE t USING vecstore(dim = 2, metric = %s)", azMetric[i]);
    tu_exec(g_db, zSql);
    sqlite3_free(zSql);
    expect_config(g_db, "t", "metric", azMetric[i]);
    tu_exec(g_db, "INSERT INTO t(rowid, embedding) VALUES (1, '[3, 4]')");
    assert_float_equal(tu_double(g_db, "SELECT distance FROM t WHERE embedding MATCH '[1, 2]' AND k = 1"), aWant[i],
                       1e-5);
    tu_exec(g_db, "DROP TABLE t");
  }
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, metric = euclid)", "metric",
                      "'euclid'", 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, metric = '')", "metric", "''", 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, metric = 'l2 norm')", "metric",
                      "'l2 norm'", 0);
}

/* index: Faiss index_factory descriptions; each accepted one lands in t_config and the table works. */
static void test_index(void **state) {
  (void)state;
  struct {
    const char *zArg;
    const char *zDesc;
    int nDim;
  } aGood[] = {{"index = Flat", "Flat", 8},
               {"index = 'HNSW32'", "HNSW32", 8},
               {"index = HNSW32", "HNSW32", 8},
               {"index = 'IVF256,Flat'", "IVF256,Flat", 8},
               {"index = \"IVF256,Flat\"", "IVF256,Flat", 8},
               {"index = 'IVF256,SQ8'", "IVF256,SQ8", 8},
               {"index = 'HNSW32,SQ8'", "HNSW32,SQ8", 8},
               {"index = 'PQ16'", "PQ16", 32},
               {"index = 'IVF16,PQ8'", "IVF16,PQ8", 32}};
  for (size_t i = 0; i < sizeof(aGood) / sizeof(aGood[0]); i++) {
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE t USING vecstore(dim = %d, %s)", aGood[i].nDim, aGood[i].zArg);
    tu_exec(g_db, zSql);
    sqlite3_free(zSql);
    expect_config(g_db, "t", "index", aGood[i].zDesc);
    check_usable(g_db, "t", aGood[i].nDim);
  }
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = 'Bogus12')", "index",
                      "Bogus12", 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = 'IVF256,Bogus')", "index",
                      "IVF256,Bogus", 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = 'PQ16')", "PQ16", "8", 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = 'IDMap,Flat')", "index",
                      "IDMap,Flat", 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = 'IDMap2,Flat')", "index",
                      "IDMap2,Flat", 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = '')", "index", "''", 0);
  /* An IVF or IMI stage followed by PQ with 9 to 16 bits per code: Faiss 1.7.3's IVFPQ constructor throws
  ** ('nbits_per_idx <= 8') after index_factory built the coarse quantizer, which then leaked (seen in the
  ** sanitizer build and under make valgrind); vecstore now refuses these descriptions before calling Faiss. */
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = 'IVF4,PQ2x9')", "IVF4,PQ2x9",
                      0, 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = 'IMI2x4,PQ4x12')",
                      "IMI2x4,PQ4x12", 0, 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = 'OPQ2_8,IVF4,PQ2x16')",
                      "OPQ2_8,IVF4,PQ2x16", 0, 0);
  /* Unquoted, the comma splits the argument: the stray part is named. */
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = IVF256,Flat)", "Flat", 0, 0);
}

/* search_params: valid Faiss ParameterSpace settings for the index type; invalid names fail CREATE. */
static void test_search_params(void **state) {
  (void)state;
  tu_exec(g_db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = 'HNSW32', search_params = 'efSearch=64')");
  expect_config(g_db, "t", "search_params", "efSearch=64");
  /* A per-query override works on the same table. */
  tu_exec(g_db, "INSERT INTO t(rowid, embedding) VALUES (1, '[1,1,1,1,1,1,1,1]'), (2, '[2,2,2,2,2,2,2,2]')");
  assert_int_equal(tu_int(g_db, "SELECT rowid FROM t WHERE embedding MATCH '[2,2,2,2,2,2,2,2]' AND k = 1 "
                                "AND search_params = 'efSearch=16'"),
                   2);
  tu_exec(g_db, "DROP TABLE t");
  tu_exec(g_db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = 'IVF256,Flat', search_params = 'nprobe=8')");
  expect_config(g_db, "t", "search_params", "nprobe=8");
  check_usable(g_db, "t", 8);
  expect_create_error(g_db, "t",
                      "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = 'HNSW32', search_params = 'bogus=4')",
                      "search_params", "bogus", 0);
  expect_create_error(g_db, "t",
                      "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = 'HNSW32', search_params = 'nprobe=8')",
                      "search_params", "nprobe", 0);
  expect_create_error(g_db, "t",
                      "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = 'IVF256,Flat', search_params = 'efSearch=64')",
                      "search_params", "efSearch", 0);
  expect_create_error(g_db, "t",
                      "CREATE VIRTUAL TABLE t USING vecstore(dim = 8, index = 'HNSW32', search_params = 'efSearch')",
                      "efSearch", 0, 0);
}

/* Unknown options, repeated options and arguments that are not key = value are named in the error. */
static void test_unknown_and_duplicate(void **state) {
  (void)state;
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, foo = 1)", "unknown option", "foo", 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dimension = 4)", "dimension", 0, 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, ef_search = 64)", "ef_search", 0, 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, dim = 4)", "dim", "more than once", 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, dim = 8)", "dim", "more than once", 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, metric = ip, metric = l2)", "metric",
                      "more than once", 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, index = Flat, index = HNSW32)",
                      "index", "more than once", 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, embedder = hash, embedder = hash)",
                      "embedder", "more than once", 0);
  expect_create_error(g_db, "t",
                      "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, index = HNSW32, search_params = 'efSearch=8',"
                      " search_params = 'efSearch=9')",
                      "search_params", "more than once", 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, Flat)", "Flat", 0, 0);
  /* A failed CREATE inside a transaction leaves nothing behind either, and the transaction goes on. */
  tu_exec(g_db, "BEGIN; CREATE TABLE plain(x)");
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, foo = 1)", "foo", 0, 0);
  tu_exec(g_db, "CREATE VIRTUAL TABLE t2 USING vecstore(dim = 2); COMMIT");
  assert_int_equal(schema_objects(g_db, "t"), 0);
  assert_int_equal(tu_int(g_db, "SELECT count(*) FROM sqlite_master WHERE name IN ('plain', 't2', 't2_config')"), 3);
  tu_exec(g_db, "DROP TABLE plain; DROP TABLE t2");
}

/* Embedding function for the embedder option: [length(text), 1, 0, 0] as JSON. */
static void len_embed(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  char zBuf[64];
  snprintf(zBuf, sizeof(zBuf), "[%d, 1, 0, 0]", sqlite3_value_bytes(argv[0]));
  sqlite3_result_text(ctx, zBuf, -1, SQLITE_TRANSIENT);
}

/* embedder: 'hash' or the name of an SQL function; the chosen embedder is the one used. */
static void test_embedder(void **state) {
  (void)state;
  assert_int_equal(sqlite3_create_function(g_db, "len_embed", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, 0, len_embed, 0, 0),
                   SQLITE_OK);
  tu_exec(g_db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, embedder = len_embed)");
  expect_config(g_db, "t", "embedder", "len_embed");
  tu_exec(g_db, "INSERT INTO t(rowid, content) VALUES (1, 'abcde')");
  tu_expect_text(g_db, "SELECT vecstore_to_json(embedding) FROM t WHERE rowid = 1", "[5,1,0,0]");
  tu_exec(g_db, "DROP TABLE t");
  tu_exec(g_db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, embedder = 'len_embed')");
  expect_config(g_db, "t", "embedder", "len_embed");
  tu_exec(g_db, "DROP TABLE t");

  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, embedder = 'not valid!')", "embedder",
                      "not valid!", 0);
  expect_create_error(g_db, "t", "CREATE VIRTUAL TABLE t USING vecstore(dim = 4, embedder = '')", "embedder", "''", 0);
  /* The built-in embedder (SPEC: vecstore_embed_hash). */
  tu_exec(g_db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 32, embedder = hash)");
  expect_config(g_db, "t", "embedder", "hash");
  tu_exec(g_db, "INSERT INTO t(rowid, content) VALUES (1, 'The quick brown fox')");
  assert_int_equal(tu_int(g_db, "SELECT embedding = vecstore_embed_hash('The quick brown fox', 32) FROM t WHERE rowid = 1"),
                   1);
  tu_exec(g_db, "DROP TABLE t");
}

/* SELECT * gives id, content, metadata, embedding; the hidden columns are there and hidden. */
static void test_columns(void **state) {
  (void)state;
  const char *azTab[] = {"t", "my docs"};
  for (int iTab = 0; iTab < 2; iTab++) {
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE \"%w\" USING vecstore(dim = 2);"
                                 "INSERT INTO \"%w\"(id, content, metadata, embedding) VALUES ('a', 'x', '{\"p\":1}', '[1, 2]')",
                                 azTab[iTab], azTab[iTab]);
    tu_exec(g_db, zSql);
    sqlite3_free(zSql);
    zSql = sqlite3_mprintf("SELECT * FROM \"%w\"", azTab[iTab]);
    sqlite3_stmt *pStmt = tu_prepare(g_db, zSql);
    sqlite3_free(zSql);
    const char *azCol[] = {"id", "content", "metadata", "embedding"};
    const int aType[] = {SQLITE_TEXT, SQLITE_TEXT, SQLITE_TEXT, SQLITE_BLOB};
    assert_int_equal(sqlite3_column_count(pStmt), 4);
    assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
    for (int i = 0; i < 4; i++) {
      assert_string_equal(sqlite3_column_name(pStmt, i), azCol[i]);
      assert_int_equal(sqlite3_column_type(pStmt, i), aType[i]);
    }
    assert_string_equal((const char *)sqlite3_column_text(pStmt, 0), "a");
    assert_string_equal((const char *)sqlite3_column_text(pStmt, 2), "{\"p\":1}");
    assert_int_equal(sqlite3_column_bytes(pStmt, 3), 8);
    sqlite3_finalize(pStmt);

    zSql = sqlite3_mprintf("SELECT name, hidden FROM pragma_table_xinfo(%Q) ORDER BY cid", azTab[iTab]);
    pStmt = tu_prepare(g_db, zSql);
    sqlite3_free(zSql);
    const char *azAll[] = {"id", "content", "metadata", "embedding", "distance", "score", "k", "fetch_k",
                           "lambda_mult", "search_params", azTab[iTab]};
    int n = 0;
    while (sqlite3_step(pStmt) == SQLITE_ROW) {
      if (n >= 11) fail_msg("more than 11 columns in %s", azTab[iTab]);
      assert_string_equal((const char *)sqlite3_column_text(pStmt, 0), azAll[n]);
      if ((sqlite3_column_int(pStmt, 1) != 0) != (n >= 4))
        fail_msg("column %s of %s: hidden = %d", azAll[n], azTab[iTab], sqlite3_column_int(pStmt, 1));
      n++;
    }
    sqlite3_finalize(pStmt);
    assert_int_equal(n, 11);
    /* Hidden columns can be named; without a search distance and score are NULL. */
    zSql = sqlite3_mprintf("SELECT typeof(distance) || typeof(score) FROM \"%w\"", azTab[iTab]);
    tu_expect_text(g_db, zSql, "nullnull");
    sqlite3_free(zSql);
    zSql = sqlite3_mprintf("SELECT count(*) FROM sqlite_master WHERE name = '%q_config'", azTab[iTab]);
    assert_int_equal(tu_int(g_db, zSql), 1);
    sqlite3_free(zSql);
    zSql = sqlite3_mprintf("DROP TABLE \"%w\"", azTab[iTab]);
    tu_exec(g_db, zSql);
    sqlite3_free(zSql);
    assert_int_equal(schema_objects(g_db, azTab[iTab]), 0);
  }
}

/* Declared metadata columns (SPEC: "page INTEGER, source TEXT -- optional typed metadata columns") come after
** embedding in SELECT *, are not hidden, and can be written and read. */
static void test_declared_columns(void **state) {
  (void)state;
  tu_exec(g_db, SPEC_CREATE_HEAD ",  -- optional default Faiss search parameters (ParameterSpace syntax)\n"
                "  page INTEGER, source TEXT       -- optional typed metadata columns (filterable, indexed)\n"
                ");");
  sqlite3_stmt *pStmt = tu_prepare(g_db, "SELECT * FROM docs");
  const char *azCol[] = {"id", "content", "metadata", "embedding", "page", "source"};
  assert_int_equal(sqlite3_column_count(pStmt), 6);
  for (int i = 0; i < 6; i++) assert_string_equal(sqlite3_column_name(pStmt, i), azCol[i]);
  sqlite3_finalize(pStmt);
  tu_exec(g_db, "INSERT INTO docs(id, embedding, page, source) VALUES ('a', zeroblob(4 * 384), 3, 'wiki')");
  tu_expect_text(g_db, "SELECT id || ':' || page || ':' || source || ':' || typeof(page) FROM docs", "a:3:wiki:integer");
  tu_exec(g_db, "DROP TABLE docs");
  assert_int_equal(schema_objects(g_db, "docs"), 0);
}

/* VECSTORE_TEST_NO_AVX2=1 simulates a CPU without AVX2: loading fails cleanly, registers nothing. */
static void test_avx2_refusal(void **state) {
  (void)state;
  char *zPath = tu_path("noavx2.db");
  tu_remove_db(zPath);
  sqlite3 *db = 0;
  assert_int_equal(sqlite3_open(zPath, &db), SQLITE_OK);
  sqlite3_enable_load_extension(db, 1);
  const char *zExt = getenv("VECSTORE_EXT") ? getenv("VECSTORE_EXT") : "build/vecstore";
  setenv("VECSTORE_TEST_NO_AVX2", "1", 1);
  char *zErr = 0;
  int rc = sqlite3_load_extension(db, zExt, 0, &zErr);
  unsetenv("VECSTORE_TEST_NO_AVX2");
  assert_int_not_equal(rc, SQLITE_OK);
  assert_non_null(zErr);
  /* sqlite3_load_extension itself prefixes the init function's message with "error during initialization: ". */
  const char *zMsgStart = zErr;
  if (strncmp(zMsgStart, "error during initialization: ", 29) == 0) zMsgStart += 29;
  if (strncmp(zMsgStart, "vecstore: ", 10) != 0 || strstr(zErr, "AVX2") == 0) fail_msg("unexpected load error '%s'", zErr);
  sqlite3_free(zErr);
  /* Nothing was registered. */
  char *zMsg = tu_exec_error(db, "SELECT vecstore_version()");
  assert_non_null(strstr(zMsg, "no such function"));
  sqlite3_free(zMsg);
  zMsg = tu_exec_error(db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 4)");
  assert_non_null(strstr(zMsg, "no such module"));
  sqlite3_free(zMsg);
  /* With the variable gone the same connection loads it. */
  zErr = 0;
  rc = sqlite3_load_extension(db, zExt, 0, &zErr);
  if (rc != SQLITE_OK) fail_msg("load after unsetenv: %s", zErr ? zErr : "?");
  tu_expect_text(db, "SELECT vecstore_version()", "0.1.0");
  sqlite3_close(db);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_version, setup, teardown),
      cmocka_unit_test_setup_teardown(test_config_table, setup, teardown),
      cmocka_unit_test_setup_teardown(test_spec_example, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dim, setup, teardown),
      cmocka_unit_test_setup_teardown(test_metric, setup, teardown),
      cmocka_unit_test_setup_teardown(test_index, setup, teardown),
      cmocka_unit_test_setup_teardown(test_search_params, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_and_duplicate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_embedder, setup, teardown),
      cmocka_unit_test_setup_teardown(test_columns, setup, teardown),
      cmocka_unit_test_setup_teardown(test_declared_columns, setup, teardown),
      cmocka_unit_test_setup_teardown(test_avx2_refusal, setup, teardown),
  };
  return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
