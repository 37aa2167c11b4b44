/* LangChain's own FAISS unit tests (langchain_community tests/unit_tests/vectorstores/test_faiss.py) translated to
** SQL, one cmocka test per LangChain test where it applies (the async twins test the same thing and are left out),
** plus the README's "From LangChain FAISS" table rows that those tests do not reach: merge_from, save/load,
** serialize/deserialize, the relevance-score function of each distance strategy, and the State of the Union
** walkthrough.
**
** FakeEmbeddings is the SQL function fake_embed(text), named by `embedder = fake_embed`: like LangChain's
** embed_documents, the i-th text of a batch (one INSERT statement, see from_texts) embeds to [1]*9 + [i]; like
** embed_query, any query text embeds to [1]*9 + [0]. Document i's squared L2 distance from a query is thus i*i.
** Every fixture checks the stored embeddings, so the embedder is known to have been called once per row, in order. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIM 10
#define Q0 "'[1,1,1,1,1,1,1,1,1,0]'" /* FakeEmbeddings().embed_query(...) as SQL text */

/* ------------------------------------------------------------------------------------------------------------- */
/* FakeEmbeddings                                                                                                 */

static struct {
  int bDocs;  /* 1 while from_texts runs a batch: embed_documents; 0: embed_query */
  int iNext;  /* index of the next document of the batch */
  int nCalls; /* calls in all */
} g_fake;

static void fake_embed_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  float a[DIM];
  for (int i = 0; i < DIM - 1; i++) a[i] = 1.0f;
  a[DIM - 1] = g_fake.bDocs ? (float)g_fake.iNext++ : 0.0f;
  g_fake.nCalls++;
  sqlite3_result_blob(ctx, a, (int)sizeof(a), SQLITE_TRANSIENT);
}

static void fake_register(sqlite3 *db) {
  assert_int_equal(sqlite3_create_function(db, "fake_embed", 1, SQLITE_UTF8, 0, fake_embed_func, 0, 0), SQLITE_OK);
}

/* The files open_fresh created, removed at the end of the run. */
static char *g_azFile[128];
static int g_nFile;

/* A fresh database file zFile in the test directory, vecstore loaded, fake_embed registered. */
static sqlite3 *open_fresh(const char *zFile) {
  if (g_nFile < (int)(sizeof(g_azFile) / sizeof(g_azFile[0]))) g_azFile[g_nFile++] = tu_path(zFile);
  sqlite3 *db = tu_open_fresh(zFile);
  fake_register(db);
  g_fake.bDocs = 0;
  return db;
}

/* Opens the existing file zFile again (load_local), with or without fake_embed. */
static sqlite3 *open_again(const char *zFile, int bEmbedder) {
  sqlite3 *db = tu_open_again(zFile);
  if (bEmbedder) fake_register(db);
  return db;
}

static void create_fake_table(sqlite3 *db, const char *zTable) {
  tu_exec_fmt(db, "CREATE VIRTUAL TABLE %s USING vecstore(dim = 10, embedder = fake_embed)", zTable);
}

/* FAISS.from_texts / add_texts: one INSERT statement of n rows (the embedder called for each, in order, as one
** embed_documents batch). azMeta / azId may be 0 (the column is then left out, as LangChain's defaults). Checks that
** row j of the batch got the embedding [1]*9 + [j]. */
static void from_texts(sqlite3 *db, const char *zTable, int n, const char *const *azText, const char *const *azMeta,
                       const char *const *azId) {
  sqlite3_int64 iMaxBefore = 0;
  {
    char *zSql = sqlite3_mprintf("SELECT coalesce(max(rowid), 0) FROM %s", zTable);
    iMaxBefore = tu_int(db, zSql);
    sqlite3_free(zSql);
  }
  sqlite3_str *p = sqlite3_str_new(db);
  sqlite3_str_appendf(p, "INSERT INTO %s(content%s%s) VALUES ", zTable, azMeta ? ", metadata" : "", azId ? ", id" : "");
  for (int i = 0; i < n; i++) {
    sqlite3_str_appendf(p, "%s(%Q", i ? ", " : "", azText[i]);
    if (azMeta) sqlite3_str_appendf(p, ", %Q", azMeta[i]);
    if (azId) sqlite3_str_appendf(p, ", %Q", azId[i]);
    sqlite3_str_appendf(p, ")");
  }
  char *zSql = sqlite3_str_finish(p);
  g_fake.bDocs = 1;
  g_fake.iNext = 0;
  tu_exec(db, zSql);
  g_fake.bDocs = 0;
  sqlite3_free(zSql);
  if (g_fake.iNext != n) fail_msg("the embedder was called %d times for %d texts", g_fake.iNext, n);
  /* The stored embeddings are FakeEmbeddings', in insertion order. */
  zSql = sqlite3_mprintf("SELECT group_concat(v, ',') FROM (SELECT vecstore_to_json(embedding) AS v FROM %s "
                         "WHERE rowid > %lld ORDER BY rowid)",
                         zTable, iMaxBefore);
  char *zGot = tu_text(db, zSql);
  sqlite3_free(zSql);
  sqlite3_str *pWant = sqlite3_str_new(0);
  for (int i = 0; i < n; i++) sqlite3_str_appendf(pWant, "%s[1,1,1,1,1,1,1,1,1,%d]", i ? "," : "", i);
  char *zWant = sqlite3_str_finish(pWant);
  if (strcmp(zGot, zWant) != 0) fail_msg("stored embeddings %s, expected %s", zGot, zWant);
  sqlite3_free(zGot);
  sqlite3_free(zWant);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Result helpers                                                                                                 */

/* Every row of zSql: columns joined by '|', rows by ';'; integers as such, reals with %g, NULL as NULL. */
static char *rows_of(sqlite3 *db, const char *zSql) { return tu_rows(db, zSql, ";", "%g"); }

static void expect_rows(sqlite3 *db, const char *zSql, const char *zWant) {
  tu_expect_rows(db, zSql, ";", "%g", zWant);
}

static void expect_double(sqlite3 *db, const char *zSql, double rWant, double rTol) {
  double r = tu_double(db, zSql);
  if (!(fabs(r - rWant) <= rTol)) fail_msg("got %.9g, expected %.9g (+-%g)\n  in: %s", r, rWant, rTol, zSql);
}

/* Runs zSql (first column an integer: rowid) and returns the rowids in order in a[], their count. */
static int rowids_of(sqlite3 *db, const char *zSql, sqlite3_int64 *a, double *aDist, int nMax) {
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  int n = 0, rc;
  while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    if (n >= nMax) fail_msg("more than %d rows\n  in: %s", nMax, zSql);
    a[n] = sqlite3_column_int64(pStmt, 0);
    if (aDist) aDist[n] = sqlite3_column_double(pStmt, 1);
    n++;
  }
  if (rc != SQLITE_DONE) fail_msg("query failed: %s\n  in: %s", sqlite3_errmsg(db), zSql);
  sqlite3_finalize(pStmt);
  return n;
}

static int is_constraint_error(sqlite3 *db, const char *zSql, const char *zFrag) {
  char *zErr = 0;
  int rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
  if (rc == SQLITE_OK) fail_msg("succeeded, a constraint error was expected: %s", zSql);
  if ((rc & 0xff) != SQLITE_CONSTRAINT) fail_msg("rc %d (%s), expected SQLITE_CONSTRAINT: %s", rc, zErr, zSql);
  if (zFrag && (zErr == 0 || strstr(zErr, zFrag) == 0)) fail_msg("error '%s' lacks '%s'", zErr ? zErr : "", zFrag);
  sqlite3_free(zErr);
  return 1;
}

static const char *const FOO_BAR_BAZ[] = {"foo", "bar", "baz"};
static const char *const PAGES[] = {"{\"page\": 0}", "{\"page\": 1}", "{\"page\": 2}", "{\"page\": 3}",
                                    "{\"page\": 4}", "{\"page\": 5}"};
static const char *const MMR_TEXTS[] = {"foo", "foo", "fou", "foy"};

/* ------------------------------------------------------------------------------------------------------------- */
/* similarity_search and friends                                                                                  */

/* test_faiss: from_texts(["foo", "bar", "baz"]); the docstore holds the three documents under random ids, and
** similarity_search("foo", k=1) returns foo. */
static void test_faiss(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_faiss.db");
  create_fake_table(db, "docs");
  from_texts(db, "docs", 3, FOO_BAR_BAZ, 0, 0);
  /* The docstore: content and default metadata in index order (index_to_docstore_id = rowid order). */
  expect_rows(db, "SELECT rowid, content, metadata FROM docs ORDER BY rowid", "1|foo|{};2|bar|{};3|baz|{}");
  /* Ids default to distinct UUIDs, as LangChain's str(uuid.uuid4()) (version 7 here: time-ordered). */
  tu_expect_int(db,
                "SELECT count(DISTINCT id) FROM docs WHERE length(id) = 36 AND substr(id, 15, 1) = '7' "
                "AND substr(id, 9, 1) = '-' AND substr(id, 14, 1) = '-' AND substr(id, 19, 1) = '-' "
                "AND substr(id, 24, 1) = '-' AND substr(id, 20, 1) IN ('8', '9', 'a', 'b') AND lower(id) = id",
                3);
  /* similarity_search("foo", k=1) */
  expect_rows(db, "SELECT content, metadata FROM docs WHERE docs MATCH 'foo' AND k = 1", "foo|{}");
  /* output[0].id is index_to_docstore_id[0]. */
  tu_expect_int(db, "SELECT (SELECT id FROM docs WHERE docs MATCH 'foo' AND k = 1) = "
                    "(SELECT id FROM docs WHERE rowid = 1)", 1);
  /* Without k: LangChain's default k = 4 is LIMIT 4 here; all three rows, nearest first. */
  expect_rows(db, "SELECT content FROM docs WHERE docs MATCH 'foo' LIMIT 4", "foo;bar;baz");
  sqlite3_close(db);
}

/* test_faiss_vector_sim: similarity_search_by_vector(embed_query("foo"), k=1) returns foo; the query vector as
** JSON text, as a float32 BLOB, and as fake_embed's own output. */
static void test_faiss_vector_sim(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_vector_sim.db");
  create_fake_table(db, "docs");
  from_texts(db, "docs", 3, FOO_BAR_BAZ, 0, 0);
  expect_rows(db, "SELECT content FROM docs WHERE embedding MATCH " Q0 " AND k = 1", "foo");
  expect_rows(db, "SELECT content FROM docs WHERE embedding MATCH fake_embed('foo') AND k = 1", "foo");
  float aQ[DIM] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
  sqlite3_stmt *pStmt = tu_prepare(db, "SELECT content, distance FROM docs WHERE embedding MATCH ?1 AND k = 1");
  sqlite3_bind_blob(pStmt, 1, aQ, (int)sizeof(aQ), SQLITE_STATIC);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(pStmt, 0), "foo");
  assert_true(sqlite3_column_double(pStmt, 1) == 0.0);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_DONE);
  sqlite3_finalize(pStmt);
  /* from_embeddings / add_embeddings: text and vector given, the embedder is not called. */
  int nCalls = g_fake.nCalls;
  tu_exec(db, "INSERT INTO docs(content, embedding) VALUES ('qux', '[1,1,1,1,1,1,1,1,1,0.5]')");
  assert_int_equal(g_fake.nCalls, nCalls);
  expect_rows(db, "SELECT content, distance FROM docs WHERE embedding MATCH " Q0 " AND k = 2", "foo|0;qux|0.25");
  sqlite3_close(db);
}

/* test_faiss_vector_sim_with_score_threshold: similarity_search_by_vector(q, k=2, score_threshold=0.2). For L2,
** LangChain's score_threshold on the raw scores keeps distance <= threshold: only foo. */
static void test_faiss_vector_sim_with_score_threshold(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_vector_sim_thr.db");
  create_fake_table(db, "docs");
  from_texts(db, "docs", 3, FOO_BAR_BAZ, 0, 0);
  expect_rows(db, "SELECT content FROM docs WHERE embedding MATCH " Q0 " AND k = 2 AND distance <= 0.2", "foo");
  /* The radius alone (no k) ends the stream at the first row outside. */
  expect_rows(db, "SELECT content FROM docs WHERE embedding MATCH " Q0 " AND distance <= 1", "foo;bar");
  expect_rows(db, "SELECT content FROM docs WHERE embedding MATCH " Q0 " AND distance < 1", "foo");
  sqlite3_close(db);
}

/* test_similarity_search_with_score_by_vector: one (document, distance) pair, foo at 0. */
static void test_similarity_search_with_score_by_vector(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_score_by_vector.db");
  create_fake_table(db, "docs");
  from_texts(db, "docs", 3, FOO_BAR_BAZ, 0, 0);
  expect_rows(db, "SELECT content, distance FROM docs WHERE embedding MATCH " Q0 " AND k = 1", "foo|0");
  sqlite3_close(db);
}

/* test_similarity_search_with_score_by_vector_with_score_threshold: k=2, score_threshold=0.2 -> one pair, its
** distance below 0.2. */
static void test_similarity_search_with_score_by_vector_with_score_threshold(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_score_by_vector_thr.db");
  create_fake_table(db, "docs");
  from_texts(db, "docs", 3, FOO_BAR_BAZ, 0, 0);
  expect_rows(db, "SELECT content, distance FROM docs WHERE embedding MATCH " Q0 " AND k = 2 AND distance <= 0.2",
              "foo|0");
  tu_expect_int(db, "SELECT count(*) FROM docs WHERE embedding MATCH " Q0 " AND k = 2 AND distance <= 0.2", 1);
  sqlite3_close(db);
}

/* similarity_search_with_score (text) and _by_vector: document i at squared L2 distance i*i, nearest first; a k
** larger than the store returns the whole store (FAISS's -1 labels are skipped). */
static void test_similarity_search_with_score(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_with_score.db");
  create_fake_table(db, "docs");
  static const char *const azText[] = {"t0", "t1", "t2", "t3", "t4"};
  from_texts(db, "docs", 5, azText, 0, 0);
  expect_rows(db, "SELECT content, distance FROM docs WHERE docs MATCH 'anything at all' AND k = 4",
              "t0|0;t1|1;t2|4;t3|9");
  expect_rows(db, "SELECT content, distance FROM docs WHERE embedding MATCH " Q0 " AND k = 10",
              "t0|0;t1|1;t2|4;t3|9;t4|16");
  expect_rows(db, "SELECT content, distance FROM docs WHERE docs MATCH 'x' ORDER BY distance LIMIT 2", "t0|0;t1|1");
  expect_rows(db, "SELECT content FROM docs WHERE docs MATCH 'x' AND k = 0", "");
  sqlite3_close(db);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* MMR                                                                                                            */

/* test_faiss_mmr: texts foo, foo, fou, foy; max_marginal_relevance_search_with_score_by_vector(q, k=10,
** lambda_mult=0.1) returns all four (k larger than the store), foo at 0 first, then not the other foo. LangChain's
** algorithm on these vectors picks indexes 0, 3, 1, 2 (distances 0, 9, 1, 4). */
static void test_faiss_mmr(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_mmr.db");
  create_fake_table(db, "docs");
  from_texts(db, "docs", 4, MMR_TEXTS, 0, 0);
  expect_rows(db, "SELECT rowid, content, distance FROM docs WHERE embedding MATCH " Q0 " AND k = 10 AND lambda_mult = 0.1",
              "1|foo|0;4|foy|9;2|foo|1;3|fou|4");
  /* max_marginal_relevance_search (text), _by_vector, k and fetch_k. */
  expect_rows(db, "SELECT content FROM docs WHERE docs MATCH 'foo' AND k = 2 AND fetch_k = 4 AND lambda_mult = 0.1",
              "foo;foy");
  expect_rows(db, "SELECT rowid FROM docs WHERE embedding MATCH " Q0 " AND k = 3 AND fetch_k = 20 AND lambda_mult = 0.1",
              "1;4;2");
  /* fetch_k = 2: only the two nearest are candidates. */
  expect_rows(db, "SELECT rowid, distance FROM docs WHERE embedding MATCH " Q0 " AND k = 4 AND fetch_k = 2 AND lambda_mult = 0.1",
              "1|0;2|1");
  /* lambda_mult = 1: pure relevance, the distance order. */
  expect_rows(db, "SELECT rowid FROM docs WHERE docs MATCH 'foo' AND k = 4 AND lambda_mult = 1", "1;2;3;4");
  /* Defaults k = 4, fetch_k = 20: two more documents, four rows come back. */
  static const char *const azMore[] = {"a", "b", "c", "d", "e", "f"};
  from_texts(db, "docs", 6, azMore, 0, 0); /* embeddings [1]*9 + [0..5] again */
  tu_expect_int(db, "SELECT count(*) FROM docs WHERE embedding MATCH " Q0 " AND lambda_mult = 0.5", 4);
  /* ORDER BY distance sorts the MMR picks. */
  expect_rows(db, "SELECT distance FROM (SELECT distance FROM docs WHERE docs MATCH 'q' AND k = 3 AND fetch_k = 4 AND "
                  "lambda_mult = 0.1) ORDER BY distance",
              "0;0;1");
  sqlite3_close(db);
}

/* test_faiss_mmr_with_metadatas: the same with metadatas page i: pages 0, 3, 1, 2. */
static void test_faiss_mmr_with_metadatas(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_mmr_meta.db");
  create_fake_table(db, "docs");
  from_texts(db, "docs", 4, MMR_TEXTS, PAGES, 0);
  expect_rows(db,
              "SELECT content, json_extract(metadata, '$.page'), distance FROM docs WHERE embedding MATCH " Q0
              " AND k = 10 AND lambda_mult = 0.1",
              "foo|0|0;foy|3|9;foo|1|1;fou|2|4");
  expect_rows(db, "SELECT json_extract(metadata, '$.page') FROM docs WHERE docs MATCH 'foo' AND k = 10 AND lambda_mult = 0.1",
              "0;3;1;2");
  sqlite3_close(db);
}

/* The MMR filter tests: the texts (with metadata), the filter, and the pages (= FakeEmbeddings indexes) LangChain's
** max_marginal_relevance_search_with_score_by_vector(q, k=10, lambda_mult=0.1, filter=...) returns, in order. -1
** ends a list; zErr: the filter is rejected with that fragment. */
typedef struct MmrCase {
  const char *zName;
  int nText;
  const char *const *azText;
  const char *const *azMeta;
  const char *zFilter;
  int aWant[6];
  const char *zErr;
} MmrCase;

static const char *const FOU_TEXTS[] = {"fou", "fou", "fouu", "fouuu"};
static const char *const NULL_TEXTS[] = {"foo", "bar", "baz", "qux"};
static const char *const NULL_META[] = {"{\"page\": 1}", "{\"page\": null}", "{\"page\": 2}", "{\"page\": null}"};
static const char *const FIVE_TEXTS[] = {"foo", "bar", "baz", "qux", "quux"};
static const char *const NESTED_META[] = {
    "{\"page\": 1, \"chapter\": 1, \"section\": 3}", "{\"page\": 2, \"chapter\": 2, \"section\": 4}",
    "{\"page\": 1, \"chapter\": 3, \"section\": 6}", "{\"page\": 3, \"chapter\": 2, \"section\": 5}",
    "{\"page\": 4, \"chapter\": 1, \"section\": 2}"};
static const char *const MIXED_META[] = {
    "{\"page\": \"1\", \"isActive\": true, \"priority\": 2.5}", "{\"page\": 2, \"isActive\": false, \"priority\": 3.0}",
    "{\"page\": 3, \"isActive\": true, \"priority\": 1.5}", "{\"page\": 1, \"isActive\": true, \"priority\": 4.0}",
    "{\"page\": 4, \"isActive\": false, \"priority\": 2.0}"};

#define MMR4 4, MMR_TEXTS, PAGES
#define FBB3 3, FOO_BAR_BAZ, PAGES
static const MmrCase g_aMmr[] = {
    {"test_faiss_mmr_with_metadatas_and_filter", MMR4, "{\"page\": 1}", {1, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_list_filter", MMR4, "{\"page\": [0, 1, 2]}", {0, 2, 1, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_comparison_operators_filter_eq", MMR4, "{\"page\": {\"$eq\": 1}}", {1, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_comparison_operators_filter_neq", MMR4, "{\"page\": {\"$neq\": 1}}",
     {0, 3, 2, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_comparison_operators_filter_gt", MMR4, "{\"page\": {\"$gt\": 0}}",
     {1, 3, 2, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_comparison_operators_filter_lt", MMR4, "{\"page\": {\"$lt\": 2}}", {0, 1, -1},
     0},
    {"test_faiss_mmr_with_metadatas_and_comparison_operators_filter_gte", MMR4, "{\"page\": {\"$gte\": 1}}",
     {1, 3, 2, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_comparison_operators_filter_lte", 4, FOU_TEXTS, PAGES,
     "{\"page\": {\"$lte\": 0}}", {0, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_comparison_operators_filter_in_1", MMR4, "{\"page\": {\"$in\": [0]}}", {0, -1},
     0},
    {"test_faiss_mmr_with_metadatas_and_comparison_operators_filter_in_2", MMR4, "{\"page\": {\"$in\": [1, 2]}}",
     {1, 2, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_comparison_operators_filter_nin_1", MMR4, "{\"page\": {\"$nin\": [0, 1]}}",
     {2, 3, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_comparison_operators_filter_nin_2", MMR4, "{\"page\": {\"$nin\": [0, 1, 2]}}",
     {3, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_logical_operators_filter_not", MMR4, "{\"$not\": {\"page\": 1}}", {0, 3, 2, -1},
     0},
    {"test_faiss_mmr_with_metadatas_and_logical_operators_filter_or_1", MMR4, "{\"$or\": [{\"page\": 0}]}", {0, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_logical_operators_filter_or_2", MMR4, "{\"$or\": [{\"page\": 0}, {\"page\": 1}]}",
     {0, 1, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_logical_operators_filter_or_3", MMR4,
     "{\"$or\": [{\"page\": 0}, {\"page\": 1}, {\"page\": 2}]}", {0, 2, 1, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_logical_operators_filter_and_1", MMR4, "{\"$and\": [{\"page\": 0}]}", {0, -1},
     0},
    {"test_faiss_mmr_with_metadatas_and_logical_operators_filter_and_2", MMR4,
     "{\"$and\": [{\"page\": 0}, {\"page\": 1}]}", {-1}, 0},
    {"test_faiss_mmr_with_metadatas_and_logical_operators_filter_and_3", MMR4,
     "{\"$and\": [{\"page\": 0}, {\"page\": 1}, {\"page\": 2}]}", {-1}, 0},
    {"test_faiss_mmr_with_metadatas_and_logical_operators_filter_and_4", MMR4,
     "{\"$and\": [{\"page\": 0}, {\"page\": 0}, {\"page\": 0}]}", {0, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_nested_logical_operators_filter_1", MMR4,
     "{\"$and\": [{\"$or\": [{\"page\": 1}, {\"page\": 2}]}, {\"$not\": {\"page\": 1}}]}", {2, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_nested_logical_operators_filter_2", MMR4,
     "{\"$and\": [{\"$or\": [{\"page\": 1}, {\"page\": 2}]}, {\"$or\": [{\"page\": 3}, {\"page\": 2}, {\"page\": 0}]}]}",
     {2, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_nested_logical_operators_filter_3", MMR4,
     "{\"$or\": [{\"$and\": [{\"page\": 1}, {\"page\": 2}]}, {\"$and\": [{\"page\": 0}, {\"page\": 2}]}]}", {-1}, 0},
    {"test_faiss_mmr_with_metadatas_and_logical_comparsion_operators_filter_1", MMR4,
     "{\"$or\": [{\"page\": {\"$lt\": 1}}, {\"page\": {\"$gt\": 2}}]}", {0, 3, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_logical_comparsion_operators_filter_2", MMR4,
     "{\"$not\": {\"page\": {\"$lt\": 1}}}", {1, 3, 2, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_nested_logical_comparsion_ops_filter_1", MMR4,
     "{\"$and\": [{\"$or\": [{\"page\": {\"$lt\": 1}}, {\"page\": {\"$gt\": 2}}]}, "
     "{\"$or\": [{\"page\": {\"$eq\": 0}}, {\"page\": {\"$eq\": 1}}]}]}",
     {0, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_nested_logical_comparsion_ops_filter_2", MMR4,
     "{\"$and\": [{\"$or\": [{\"page\": {\"$lt\": 1}}, {\"page\": {\"$gt\": 2}}]}, "
     "{\"$not\": {\"page\": {\"$in\": [0]}}}, {\"page\": {\"$neq\": 3}}]}",
     {-1}, 0},
    {"test_faiss_mmr_with_metadatas_and_nested_logical_comparsion_ops_filter_3", MMR4,
     "{\"$or\": [{\"$and\": [{\"page\": {\"$lt\": 1}}, {\"page\": {\"$gt\": 2}}]}, "
     "{\"$not\": {\"page\": {\"$nin\": [0]}}}, {\"page\": {\"$eq\": 3}}]}",
     {0, 3, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_empty_conditions", FBB3, "{}", {0, 2, 1, -1}, 0},
    {"test_faiss_mmr_with_metadates_and_empty_and_operator", FBB3, "{\"$and\": []}", {0, 2, 1, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_empty_or_operator", FBB3, "{\"$or\": []}", {-1}, 0},
    {"test_faiss_mmr_with_metadatas_and_nonexistent_field", FBB3, "{\"nonexistent_field\": {\"$eq\": 1}}", {-1}, 0},
    {"test_faiss_mmr_with_metadatas_and_invalid_logical_operator", FBB3, "{\"$unknown\": [{\"page\": 1}]}", {-1},
     "unsupported operator"},
    {"test_faiss_mmr_with_metadatas_and_invalid_comparison_operator", FBB3, "{\"page\": {\"$invalid_operator\": 1}}",
     {-1}, "unsupported operator"},
    {"test_faiss_mmr_with_metadatas_and_valid_invalid_fields", FBB3,
     "{\"$and\": [{\"page\": {\"$eq\": 1}}, {\"invalid_field\": {\"$eq\": 1}}]}", {-1}, 0},
    {"test_faiss_mmr_with_metadatas_and_valid_and_invalid_operators", FBB3,
     "{\"$and\": [{\"page\": {\"$eq\": 1}}, {\"page\": {\"$unknown\": 2}}]}", {-1}, "unsupported operator"},
    {"test_faiss_mmr_with_metadatas_and_multiple_nested_logical_operators", 5, FIVE_TEXTS, NESTED_META,
     "{\"$and\": [{\"$or\": [{\"page\": {\"$eq\": 1}}, {\"chapter\": {\"$gt\": 2}}]}, "
     "{\"$not\": {\"section\": {\"$lte\": 5}}}]}",
     {2, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_mixed_data_types", 5, FIVE_TEXTS, MIXED_META,
     "{\"page\": {\"$eq\": \"1\"}, \"isActive\": {\"$eq\": true}, \"priority\": {\"$gt\": 2.0}}", {0, -1}, 0},
    {"test_faiss_mmr_with_metadatas_and_conflicting_conditions", FBB3,
     "{\"$and\": [{\"page\": {\"$eq\": 1}}, {\"page\": {\"$eq\": 2}}]}", {-1}, 0},
    {"test_faiss_mmr_with_metadatas_and_null_field_values", 4, NULL_TEXTS, NULL_META, "{\"page\": {\"$eq\": null}}",
     {1, 3, -1}, 0},
};
#define N_MMR ((int)(sizeof(g_aMmr) / sizeof(g_aMmr[0])))

/* One LangChain MMR-with-filter test. Two SQL forms:
**  - LangChain's semantics (filter the candidates, then MMR among them): the filter as a pre-filter,
**    `rowid IN (SELECT rowid FROM docs WHERE vecstore_filter(metadata, :f))` ("search only among those rows"):
**    exactly LangChain's documents in LangChain's order, with their exact distances (index i at i*i);
**  - `AND vecstore_filter(metadata, :f)`, a condition SQLite evaluates on the rows the table produces: by SPEC the
**    table picks k of the fetch_k nearest by MMR first, so the rows are the unfiltered MMR order, filtered. */
static void run_mmr_case(void **state) {
  const MmrCase *pCase = (const MmrCase *)*state;
  char *zFile = sqlite3_mprintf("lc_%s.db", pCase->zName + 5);
  sqlite3 *db = open_fresh(zFile);
  sqlite3_free(zFile);
  create_fake_table(db, "docs");
  from_texts(db, "docs", pCase->nText, pCase->azText, pCase->azMeta, 0);

  char *zPre = sqlite3_mprintf("SELECT rowid, distance FROM docs WHERE embedding MATCH " Q0 " AND k = 10 AND "
                               "lambda_mult = 0.1 AND rowid IN (SELECT rowid FROM docs WHERE vecstore_filter(metadata, %Q))",
                               pCase->zFilter);
  char *zPost = sqlite3_mprintf("SELECT rowid, distance FROM docs WHERE embedding MATCH " Q0 " AND k = 10 AND "
                                "lambda_mult = 0.1 AND vecstore_filter(metadata, %Q)",
                                pCase->zFilter);
  if (pCase->zErr) {
    tu_expect_error(db, zPre, "vecstore: ", pCase->zErr, (char *)0);
    tu_expect_error(db, zPost, "vecstore: ", pCase->zErr, (char *)0);
  } else {
    int nWant = 0;
    while (nWant < 6 && pCase->aWant[nWant] >= 0) nWant++;
    sqlite3_int64 aGot[8];
    double aDist[8];
    int nGot = rowids_of(db, zPre, aGot, aDist, 8);
    int bOk = nGot == nWant;
    for (int i = 0; bOk && i < nGot; i++) {
      int iIdx = pCase->aWant[i];
      bOk = aGot[i] == iIdx + 1 && fabs(aDist[i] - (double)iIdx * iIdx) < 1e-4;
    }
    if (!bOk) {
      char *z = rows_of(db, zPre);
      fail_msg("%s: pre-filtered MMR returned '%s' (rowid|distance); LangChain returns indexes %d %d %d %d (-1 ends)",
               pCase->zName, z, pCase->aWant[0], nWant > 1 ? pCase->aWant[1] : -1, nWant > 2 ? pCase->aWant[2] : -1,
               nWant > 3 ? pCase->aWant[3] : -1);
    }
    /* The post-filter form: the unfiltered MMR picks, in MMR order, restricted to the matching rows. */
    sqlite3_int64 aAll[8], aPost[8];
    int nAll = rowids_of(db, "SELECT rowid FROM docs WHERE embedding MATCH " Q0 " AND k = 10 AND lambda_mult = 0.1", aAll,
                         0, 8);
    assert_int_equal(nAll, pCase->nText);
    int nPost = rowids_of(db, zPost, aPost, aDist, 8);
    int nExp = 0;
    bOk = 1;
    for (int i = 0; i < nAll; i++) {
      int bMatch = 0;
      for (int j = 0; j < nWant; j++) bMatch |= aAll[i] == pCase->aWant[j] + 1;
      if (!bMatch) continue;
      if (nExp >= nPost || aPost[nExp] != aAll[i] ||
          fabs(aDist[nExp] - (double)(aAll[i] - 1) * (double)(aAll[i] - 1)) > 1e-4) {
        bOk = 0;
      }
      nExp++;
    }
    if (!bOk || nExp != nPost) {
      char *z = rows_of(db, zPost);
      fail_msg("%s: post-filtered MMR returned '%s'", pCase->zName, z);
    }
  }
  sqlite3_free(zPre);
  sqlite3_free(zPost);
  sqlite3_close(db);
}

/* test_faiss_mmr_with_metadatas_and_filter / _list_filter, the filter as LangChain's callable (a JSON path in SQL),
** and on a declared column, which is a pre-filter inside the search (README): both give LangChain's picks. */
static void test_faiss_mmr_filter_callable_and_declared(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_mmr_declared.db");
  tu_exec(db, "CREATE VIRTUAL TABLE docs USING vecstore(dim = 10, embedder = fake_embed, page INTEGER)");
  g_fake.bDocs = 1;
  g_fake.iNext = 0;
  tu_exec(db, "INSERT INTO docs(content, metadata, page) VALUES ('foo', '{\"page\": 0}', 0), ('foo', '{\"page\": 1}', 1),"
              " ('fou', '{\"page\": 2}', 2), ('foy', '{\"page\": 3}', 3)");
  g_fake.bDocs = 0;
  assert_int_equal(g_fake.iNext, 4);
  /* filter={"page": 1}: the page-1 foo at its true distance 1 (LangChain reports 0.0 here: it pairs the filtered
  ** candidates with the unfiltered scores list). */
  expect_rows(db, "SELECT rowid, distance FROM docs WHERE embedding MATCH " Q0 " AND k = 10 AND lambda_mult = 0.1 AND page = 1",
              "2|1");
  expect_rows(db, "SELECT rowid, distance FROM docs WHERE embedding MATCH " Q0 " AND k = 10 AND lambda_mult = 0.1 AND "
                  "rowid IN (SELECT rowid FROM docs WHERE json_extract(metadata, '$.page') = 1)",
              "2|1");
  /* filter={"page": [0, 1, 2]}: MMR among pages 0, 1, 2 picks 0, 2, 1. */
  expect_rows(db, "SELECT page, distance FROM docs WHERE embedding MATCH " Q0 " AND k = 10 AND lambda_mult = 0.1 AND "
                  "page IN (0, 1, 2)",
              "0|0;2|4;1|1");
  /* k = 1 with filter={"page": 1}: LangChain returns the page-1 document; so does the pre-filter. */
  expect_rows(db, "SELECT rowid FROM docs WHERE embedding MATCH " Q0 " AND k = 1 AND lambda_mult = 0.1 AND page = 1", "2");
  expect_rows(db, "SELECT rowid FROM docs WHERE docs MATCH 'foo' AND k = 1 AND lambda_mult = 0.1 AND "
                  "rowid IN (SELECT rowid FROM docs WHERE vecstore_filter(metadata, '{\"page\": 1}'))",
              "2");
  sqlite3_close(db);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Metadata and filters                                                                                           */

/* test_faiss_with_metadatas: the docstore holds content and metadata; similarity_search("foo", k=1) -> foo, page 0. */
static void test_faiss_with_metadatas(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_with_metadatas.db");
  create_fake_table(db, "docs");
  from_texts(db, "docs", 3, FOO_BAR_BAZ, PAGES, 0);
  expect_rows(db, "SELECT content, json_extract(metadata, '$.page'), json_valid(metadata) FROM docs ORDER BY rowid",
              "foo|0|1;bar|1|1;baz|2|1");
  expect_rows(db, "SELECT content, json_extract(metadata, '$.page') FROM docs WHERE docs MATCH 'foo' AND k = 1", "foo|0");
  sqlite3_close(db);
}

/* test_faiss_with_metadatas_and_filter: similarity_search("foo", k=1, filter={"page": 1}) returns bar (the filter's
** match, not the better text match); the same as the callable filter. With fetch_k (LangChain's default 20), and
** without it; with fetch_k = 1 only the nearest row is a candidate and it fails the filter. */
static void test_faiss_with_metadatas_and_filter(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_with_metadatas_filter.db");
  create_fake_table(db, "docs");
  from_texts(db, "docs", 3, FOO_BAR_BAZ, PAGES, 0);
  expect_rows(db, "SELECT content, json_extract(metadata, '$.page') FROM docs WHERE docs MATCH 'foo' AND fetch_k = 20 "
                  "AND vecstore_filter(metadata, '{\"page\": 1}') LIMIT 1",
              "bar|1");
  expect_rows(db, "SELECT content, distance FROM docs WHERE docs MATCH 'foo' AND vecstore_filter(metadata, '{\"page\": 1}') LIMIT 1",
              "bar|1");
  expect_rows(db, "SELECT content FROM docs WHERE docs MATCH 'foo' AND json_extract(metadata, '$.page') = 1 LIMIT 1", "bar");
  expect_rows(db, "SELECT content FROM docs WHERE embedding MATCH " Q0 " AND fetch_k = 20 AND "
                  "vecstore_filter(metadata, '{\"page\": 1}') LIMIT 1",
              "bar");
  /* fetch_k: LangChain fetches fetch_k rows, then filters. */
  expect_rows(db, "SELECT content FROM docs WHERE docs MATCH 'foo' AND fetch_k = 1 AND vecstore_filter(metadata, '{\"page\": 1}') LIMIT 1",
              "");
  expect_rows(db, "SELECT content FROM docs WHERE docs MATCH 'foo' AND fetch_k = 2 AND vecstore_filter(metadata, '{\"page\": 1}') LIMIT 1",
              "bar");
  expect_rows(db, "SELECT content FROM docs WHERE docs MATCH 'foo' AND fetch_k = 2 AND "
                  "vecstore_filter(metadata, '{\"page\": {\"$gte\": 1}}') LIMIT 4",
              "bar");
  /* k = 4 with a filter and no fetch_k: LIMIT 4 returns 4 rows whenever 4 match, however far they are. 40 more
  ** documents, page i / 10: the ten of page 3 are the farthest. With fetch_k = 20 (LangChain's default) none of
  ** them is a candidate, as in LangChain. */
  tu_exec(db, "CREATE VIRTUAL TABLE many USING vecstore(dim = 10, embedder = fake_embed)");
  g_fake.bDocs = 1;
  g_fake.iNext = 0;
  tu_exec(db, "WITH RECURSIVE c(v) AS (SELECT 0 UNION ALL SELECT v + 1 FROM c WHERE v < 39) "
              "INSERT INTO many(content, metadata) SELECT 'd' || v, json_object('page', v / 10) FROM c");
  g_fake.bDocs = 0;
  assert_int_equal(g_fake.iNext, 40);
  expect_rows(db, "SELECT rowid, distance FROM many WHERE many MATCH 'q' AND vecstore_filter(metadata, '{\"page\": 3}') LIMIT 4",
              "31|900;32|961;33|1024;34|1089");
  expect_rows(db, "SELECT rowid FROM many WHERE many MATCH 'q' AND fetch_k = 20 AND "
                  "vecstore_filter(metadata, '{\"page\": 3}') LIMIT 4",
              "");
  expect_rows(db, "SELECT rowid FROM many WHERE many MATCH 'q' AND fetch_k = 32 AND "
                  "vecstore_filter(metadata, '{\"page\": 3}') LIMIT 4",
              "31;32");
  sqlite3_close(db);
}

/* test_faiss_with_metadatas_and_list_filter: texts foo, bar, baz, foo, qux with pages 0, 1, 2, 3, 3;
** similarity_search("foor", k=1, filter={"page": [0, 1, 2]}) -> foo page 0. */
static void test_faiss_with_metadatas_and_list_filter(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_with_metadatas_list_filter.db");
  create_fake_table(db, "docs");
  static const char *const azText[] = {"foo", "bar", "baz", "foo", "qux"};
  static const char *const azMeta[] = {"{\"page\": 0}", "{\"page\": 1}", "{\"page\": 2}", "{\"page\": 3}",
                                       "{\"page\": 3}"};
  from_texts(db, "docs", 5, azText, azMeta, 0);
  expect_rows(db, "SELECT content, json_extract(metadata, '$.page') FROM docs WHERE docs MATCH 'foor' AND fetch_k = 20 "
                  "AND vecstore_filter(metadata, '{\"page\": [0, 1, 2]}') LIMIT 1",
              "foo|0");
  expect_rows(db, "SELECT content, json_extract(metadata, '$.page') FROM docs WHERE docs MATCH 'foor' AND "
                  "json_extract(metadata, '$.page') IN (0, 1, 2) LIMIT 1",
              "foo|0");
  /* All matches in distance order, the filter excluding pages 3. */
  expect_rows(db, "SELECT rowid FROM docs WHERE docs MATCH 'foor' AND vecstore_filter(metadata, '{\"page\": [0, 1, 2]}') LIMIT 4",
              "1;2;3");
  expect_rows(db, "SELECT rowid FROM docs WHERE docs MATCH 'foor' AND vecstore_filter(metadata, '{\"page\": [3]}') LIMIT 1",
              "4");
  sqlite3_close(db);
}

/* test_faiss_search_not_found: LangChain empties the docstore and expects similarity_search to raise. Here: the
** documents' shadow table emptied by hand while the index still holds the vectors. SPEC: a hand-edited shadow
** table gives an error (or a rebuild), never a crash; a search must not return rows without their documents,
** and integrity-check must report the mismatch. */
static void test_faiss_search_not_found(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_not_found.db");
  create_fake_table(db, "docs");
  from_texts(db, "docs", 3, FOO_BAR_BAZ, 0, 0);
  expect_rows(db, "SELECT content FROM docs WHERE docs MATCH 'foo' AND k = 1", "foo");
  tu_exec(db, "DELETE FROM docs_docs");
  tu_expect_error(db, "INSERT INTO docs(docs) VALUES ('integrity-check')", "vecstore: ", (char *)0);
  tu_expect_int(db, "SELECT count(*) FROM docs", 0);
  char zFail[512] = "";
  sqlite3_stmt *pStmt = tu_prepare(db, "SELECT rowid, id, content FROM docs WHERE docs MATCH 'foo' AND k = 4");
  int rc;
  while (zFail[0] == 0 && (rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    if (sqlite3_column_type(pStmt, 1) == SQLITE_NULL || sqlite3_column_type(pStmt, 2) == SQLITE_NULL) {
      sqlite3_snprintf((int)sizeof(zFail), zFail, "a search returned rowid %lld without its document (id and content NULL) after the "
                              "documents were deleted from docs_docs (a scan counts 0 rows); expected an error or no row",
                              sqlite3_column_int64(pStmt, 0));
    }
  }
  if (zFail[0] == 0 && rc != SQLITE_DONE && strncmp(sqlite3_errmsg(db), "vecstore: ", 10) != 0) {
    sqlite3_snprintf((int)sizeof(zFail), zFail, "error without the vecstore prefix: %s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(pStmt);
  sqlite3_close(db);
  if (zFail[0]) fail_msg("%s", zFail);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Adding, ids, deleting                                                                                          */

/* test_faiss_add_texts: add_texts(["foo"]) to foo, bar, baz; similarity_search("foo", k=2) -> foo, foo. */
static void test_faiss_add_texts(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_add_texts.db");
  create_fake_table(db, "docs");
  from_texts(db, "docs", 3, FOO_BAR_BAZ, 0, 0);
  static const char *const azFoo[] = {"foo"};
  from_texts(db, "docs", 1, azFoo, 0, 0); /* a new batch: embeds to [1]*9 + [0] like the first foo */
  expect_rows(db, "SELECT rowid, content, distance FROM docs WHERE docs MATCH 'foo' AND k = 2", "1|foo|0;4|foo|0");
  tu_expect_int(db, "SELECT count(*) FROM docs", 4);
  tu_exec(db, "INSERT INTO docs(docs) VALUES ('integrity-check')");
  sqlite3_close(db);
}

/* test_faiss_add_texts_not_supported: adding texts to a store that cannot take them raises. Here: a table without
** an embedder cannot embed content; the statement fails and adds nothing. */
static void test_faiss_add_texts_not_supported(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_add_not_supported.db");
  tu_exec(db, "CREATE VIRTUAL TABLE plain USING vecstore(dim = 10)");
  tu_exec(db, "INSERT INTO plain(content, embedding) VALUES ('foo', " Q0 ")");
  tu_expect_error(db, "INSERT INTO plain(content) VALUES ('bar'), ('baz')", "vecstore: ", "no embedder", (char *)0);
  tu_expect_error(db, "SELECT * FROM plain WHERE plain MATCH 'foo'", "vecstore: ", "no embedder", (char *)0);
  expect_rows(db, "SELECT content FROM plain", "foo");
  sqlite3_close(db);
}

/* test_faiss_with_duplicate_ids: from_texts with ids ["id1", "id1", "id2"] raises; add_texts with an id already in
** the store raises too (InMemoryDocstore). Here a constraint error and nothing changed; INSERT OR REPLACE upserts. */
static void test_faiss_with_duplicate_ids(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_duplicate_ids.db");
  create_fake_table(db, "docs");
  g_fake.bDocs = 1;
  g_fake.iNext = 0;
  is_constraint_error(db, "INSERT INTO docs(id, content) VALUES ('id1', 'foo'), ('id1', 'bar'), ('id2', 'baz')", "id1");
  g_fake.bDocs = 0;
  tu_expect_int(db, "SELECT count(*) FROM docs", 0);
  expect_rows(db, "SELECT rowid FROM docs WHERE embedding MATCH " Q0 " AND k = 4", "");
  tu_exec(db, "INSERT INTO docs(docs) VALUES ('integrity-check')");

  static const char *const azId[] = {"id1", "id2", "id3"};
  from_texts(db, "docs", 3, FOO_BAR_BAZ, 0, azId);
  /* add_texts(["qux", "quux"], ids=["id4", "id2"]): the whole statement fails. */
  g_fake.bDocs = 1;
  g_fake.iNext = 0;
  is_constraint_error(db, "INSERT INTO docs(id, content) VALUES ('id4', 'qux'), ('id2', 'quux')", "id2");
  g_fake.bDocs = 0;
  expect_rows(db, "SELECT id, content FROM docs ORDER BY rowid", "id1|foo;id2|bar;id3|baz");
  expect_rows(db, "SELECT id, distance FROM docs WHERE docs MATCH 'q' AND k = 4", "id1|0;id2|1;id3|4");
  /* In an explicit transaction the failed statement alone is undone. */
  tu_exec(db, "BEGIN");
  tu_exec(db, "INSERT INTO docs(id, content, embedding) VALUES ('id5', 'x', '[1,1,1,1,1,1,1,1,1,5]')");
  is_constraint_error(db, "INSERT INTO docs(id, content, embedding) VALUES ('id6', 'y', " Q0 "), ('id1', 'z', " Q0 ")", "id1");
  tu_exec(db, "COMMIT");
  expect_rows(db, "SELECT id, distance FROM docs WHERE docs MATCH 'q' AND k = 10", "id1|0;id2|1;id3|4;id5|25");
  /* INSERT OR REPLACE: the upsert of README's table. */
  tu_exec(db, "INSERT OR REPLACE INTO docs(id, content, embedding) VALUES ('id3', 'new baz', '[1,1,1,1,1,1,1,1,1,0.5]')");
  expect_rows(db, "SELECT id, content, distance FROM docs WHERE docs MATCH 'q' AND k = 2", "id1|foo|0;id3|new baz|0.25");
  tu_expect_int(db, "SELECT count(*) FROM docs", 4);
  tu_exec(db, "INSERT INTO docs(docs) VALUES ('integrity-check')");
  sqlite3_close(db);
}

/* test_faiss_document_ids: from_texts with ids; docstore.search(id) returns the document with that id. */
static void test_faiss_document_ids(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_document_ids.db");
  create_fake_table(db, "docs");
  static const char *const azId[] = {"id1", "id2", "id3"};
  from_texts(db, "docs", 3, FOO_BAR_BAZ, 0, azId);
  for (int i = 0; i < 3; i++) {
    char *zSql = sqlite3_mprintf("SELECT id, content FROM docs WHERE id = %Q", azId[i]);
    char *zWant = sqlite3_mprintf("%s|%s", azId[i], FOO_BAR_BAZ[i]);
    expect_rows(db, zSql, zWant);
    sqlite3_free(zSql);
    sqlite3_free(zWant);
  }
  /* index_to_docstore_id */
  expect_rows(db, "SELECT rowid, id FROM docs ORDER BY rowid", "1|id1;2|id2;3|id3");
  /* Search results carry the ids. */
  expect_rows(db, "SELECT id FROM docs WHERE docs MATCH 'foo' AND k = 3", "id1;id2;id3");
  /* Numeric ids are text (README). */
  tu_exec(db, "INSERT INTO docs(id, content, embedding) VALUES (42, 'n', " Q0 ")");
  expect_rows(db, "SELECT typeof(id), id FROM docs WHERE id = '42'", "text|42");
  sqlite3_close(db);
}

/* test_faiss_get_by_ids: get_by_ids(ids) returns the three documents; each id alone returns its document. Also
** the order of the ids asked for and missing ids (skipped, as LangChain's get_by_ids does). */
static void test_faiss_get_by_ids(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_get_by_ids.db");
  create_fake_table(db, "docs");
  static const char *const azId[] = {"id1", "id2", "id3"};
  from_texts(db, "docs", 3, FOO_BAR_BAZ, 0, azId);
  expect_rows(db, "SELECT id, content FROM docs WHERE id IN ('id1', 'id2', 'id3') ORDER BY id", "id1|foo;id2|bar;id3|baz");
  tu_expect_int(db, "SELECT count(*) FROM docs WHERE id IN ('id1', 'id2', 'id3')", 3);
  expect_rows(db, "SELECT id FROM docs WHERE id IN ('id2')", "id2");
  expect_rows(db, "SELECT * FROM docs WHERE id IN ('missing')", "");
  expect_rows(db, "SELECT id FROM docs WHERE id IN ('id3', 'missing', 'id1') ORDER BY rowid", "id1;id3");
  /* In the order asked for, missing ids skipped. */
  expect_rows(db, "SELECT d.id, d.content FROM json_each('[\"id3\", \"missing\", \"id1\"]') AS j JOIN docs AS d "
                  "ON d.id = j.value ORDER BY j.key",
              "id3|baz;id1|foo");
  /* SELECT * order: id, content, metadata, embedding. */
  expect_rows(db, "SELECT id, content, metadata, vecstore_to_json(embedding) FROM docs WHERE id = 'id2'",
              "id2|bar|{}|[1,1,1,1,1,1,1,1,1,1]");
  sqlite3_stmt *pStmt = tu_prepare(db, "SELECT * FROM docs WHERE id = 'id2'");
  assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
  assert_int_equal(sqlite3_column_count(pStmt), 4);
  assert_string_equal(sqlite3_column_name(pStmt, 0), "id");
  assert_string_equal(sqlite3_column_name(pStmt, 3), "embedding");
  assert_int_equal(sqlite3_column_bytes(pStmt, 3), 40);
  sqlite3_finalize(pStmt);
  sqlite3_close(db);
}

/* test_delete: ids a, b, c; delete(["b"]); similarity_search("bar", k=2) -> {foo, baz}. LangChain renumbers the
** index ({0: "a", 1: "c"}); rowids are stable here (SPEC), so a keeps 1 and c keeps 3. Deleting an id that is not
** there deletes nothing, without error (LangChain raises ValueError). */
static void test_delete(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_delete.db");
  create_fake_table(db, "docs");
  static const char *const azId[] = {"a", "b", "c"};
  from_texts(db, "docs", 3, FOO_BAR_BAZ, 0, azId);
  tu_exec(db, "DELETE FROM docs WHERE id IN ('b')");
  assert_int_equal(sqlite3_changes(db), 1);
  expect_rows(db, "SELECT content FROM docs WHERE docs MATCH 'bar' AND k = 2 ORDER BY content", "baz;foo");
  expect_rows(db, "SELECT content, distance FROM docs WHERE docs MATCH 'bar' AND k = 2", "foo|0;baz|4");
  expect_rows(db, "SELECT rowid, id FROM docs ORDER BY rowid", "1|a;3|c");
  tu_exec(db, "DELETE FROM docs WHERE id IN ('zzz')");
  assert_int_equal(sqlite3_changes(db), 0);
  tu_exec(db, "DELETE FROM docs WHERE id IN ('b', 'c')");
  assert_int_equal(sqlite3_changes(db), 1);
  expect_rows(db, "SELECT id FROM docs WHERE docs MATCH 'bar' AND k = 4", "a");
  tu_exec(db, "INSERT INTO docs(docs) VALUES ('integrity-check')");
  /* The id is free again. */
  tu_exec(db, "INSERT INTO docs(id, content, embedding) VALUES ('b', 'bar again', '[1,1,1,1,1,1,1,1,1,1]')");
  expect_rows(db, "SELECT id, distance FROM docs WHERE docs MATCH 'bar' AND k = 4", "a|0;b|1");
  sqlite3_close(db);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* merge_from, save/load, serialize/deserialize                                                                   */

/* merge_from(other): a second store in another file, merged in one INSERT ... SELECT (embeddings copied, not
** recomputed). An id in both stores aborts the statement: nothing changes (LangChain: ValueError, nothing merged). */
static void test_faiss_merge_from(void **state) {
  (void)state;
  sqlite3 *dbB = open_fresh("lc_merge_b.db");
  create_fake_table(dbB, "b");
  g_fake.bDocs = 1;
  g_fake.iNext = 1; /* b's documents at indexes 1 and 2 */
  tu_exec(dbB, "INSERT INTO b(id, content, metadata) VALUES ('b1', 'bar', '{\"src\": \"b\"}'), ('b2', 'baz', '{\"src\": \"b\"}')");
  g_fake.bDocs = 0;
  sqlite3_close(dbB);

  sqlite3 *db = open_fresh("lc_merge_a.db");
  create_fake_table(db, "a");
  static const char *const azFoo[] = {"foo"};
  static const char *const azIdA[] = {"a1"};
  from_texts(db, "a", 1, azFoo, 0, azIdA);
  char *zPathB = tu_path("lc_merge_b.db");
  char *zAttach = sqlite3_mprintf("ATTACH %Q AS other", zPathB);
  tu_exec(db, zAttach);
  expect_rows(db, "SELECT id, content FROM other.b ORDER BY rowid", "b1|bar;b2|baz");
  int nCalls = g_fake.nCalls;
  tu_exec(db, "INSERT INTO a(id, content, metadata, embedding) SELECT id, content, metadata, embedding FROM other.b");
  assert_int_equal(sqlite3_changes(db), 2);
  assert_int_equal(g_fake.nCalls, nCalls); /* the embeddings were copied */
  expect_rows(db, "SELECT id, content, distance FROM a WHERE a MATCH 'foo' AND k = 4", "a1|foo|0;b1|bar|1;b2|baz|4");
  expect_rows(db, "SELECT id, json_extract(metadata, '$.src') FROM a ORDER BY rowid", "a1|NULL;b1|b;b2|b");
  tu_exec(db, "INSERT INTO a(a) VALUES ('integrity-check')");
  /* The other store is unchanged. */
  expect_rows(db, "SELECT id, distance FROM other.b WHERE b MATCH 'x' AND k = 4", "b1|1;b2|4");

  /* A conflicting merge: other gets b3 (new) and then a1 (already in a): the statement aborts, nothing changes. */
  tu_exec(db, "INSERT INTO other.b(id, content, embedding) VALUES ('b3', 'qux', '[1,1,1,1,1,1,1,1,1,3]'), "
              "('a1', 'dup', '[1,1,1,1,1,1,1,1,1,7]')");
  is_constraint_error(db, "INSERT INTO a(id, content, metadata, embedding) SELECT id, content, metadata, embedding "
                          "FROM other.b WHERE id IN ('b3', 'a1') ORDER BY rowid",
                      "a1");
  tu_expect_int(db, "SELECT count(*) FROM a", 3);
  expect_rows(db, "SELECT id, content, distance FROM a WHERE a MATCH 'foo' AND k = 10", "a1|foo|0;b1|bar|1;b2|baz|4");
  tu_exec(db, "INSERT INTO a(a) VALUES ('integrity-check')");
  /* The same in a transaction: the failed statement alone is undone. */
  tu_exec(db, "BEGIN");
  is_constraint_error(db, "INSERT INTO a(id, content, metadata, embedding) SELECT id, content, metadata, embedding "
                          "FROM other.b WHERE id IN ('b3', 'a1') ORDER BY rowid",
                      "a1");
  expect_rows(db, "SELECT id FROM a WHERE a MATCH 'foo' AND k = 10", "a1;b1;b2");
  tu_exec(db, "COMMIT");
  /* OR IGNORE merges what does not conflict. */
  tu_exec(db, "INSERT OR IGNORE INTO a(id, content, metadata, embedding) SELECT id, content, metadata, embedding FROM other.b");
  expect_rows(db, "SELECT id, content, distance FROM a WHERE a MATCH 'foo' AND k = 10",
              "a1|foo|0;b1|bar|1;b2|baz|4;b3|qux|9");
  tu_exec(db, "DETACH other");
  tu_exec(db, "INSERT INTO a(a) VALUES ('integrity-check')");
  sqlite3_close(db);
  sqlite3_free(zAttach);
  sqlite3_free(zPathB);
}

/* The searches compared before and after a save/load or a serialize/deserialize. */
static const char *const g_azPersistQueries[] = {
    "SELECT id, content, json_extract(metadata, '$.page'), distance FROM docs WHERE docs MATCH 'foo' AND k = 4",
    "SELECT id, distance, score FROM docs WHERE embedding MATCH " Q0 " AND k = 2",
    "SELECT id, distance FROM docs WHERE embedding MATCH " Q0 " AND k = 10 AND lambda_mult = 0.1",
    "SELECT id FROM docs WHERE docs MATCH 'foo' AND vecstore_filter(metadata, '{\"page\": {\"$gt\": 1}}') LIMIT 1",
    "SELECT rowid, id, content, metadata, hex(embedding) FROM docs ORDER BY rowid",
};
#define N_PERSIST ((int)(sizeof(g_azPersistQueries) / sizeof(g_azPersistQueries[0])))

static void persist_fixture(sqlite3 *db) {
  create_fake_table(db, "docs");
  static const char *const azId[] = {"p0", "p1", "p2", "p3"};
  from_texts(db, "docs", 4, MMR_TEXTS, PAGES, azId);
  tu_exec(db, "DELETE FROM docs WHERE id = 'p2'");
  static const char *const azMore[] = {"z0", "z1", "z2", "z3", "z4", "z5"};
  static const char *const azIdMore[] = {"q0", "q1", "q2", "q3", "q4", "q5"};
  from_texts(db, "docs", 6, azMore, PAGES, azIdMore);
}

static void expect_same_answers(sqlite3 *db, char **azBefore) {
  for (int i = 0; i < N_PERSIST; i++) expect_rows(db, g_azPersistQueries[i], azBefore[i]);
}

/* test_faiss_local_save_load: save_local / load_local. The store is the file: close it and open it again, or
** VACUUM INTO a copy and open that; the same answers. Opening without the embedder registered (load_local without
** embeddings) still searches by vector; a text search says which function is missing. */
static void test_faiss_local_save_load(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_save.db");
  persist_fixture(db);
  char *azBefore[N_PERSIST];
  for (int i = 0; i < N_PERSIST; i++) azBefore[i] = rows_of(db, g_azPersistQueries[i]);
  assert_string_equal(azBefore[0], "p0|foo|0|0;q0|z0|0|0;p1|foo|1|1;q1|z1|1|1");
  char *zCopy = tu_path("lc_save_copy.db");
  tu_remove_db(zCopy);
  char *zVacuum = sqlite3_mprintf("VACUUM INTO %Q", zCopy);
  tu_exec(db, zVacuum);
  sqlite3_close(db);

  db = open_again("lc_save.db", 1);
  expect_same_answers(db, azBefore);
  tu_exec(db, "INSERT INTO docs(docs) VALUES ('integrity-check')");
  sqlite3_close(db);

  db = open_again("lc_save_copy.db", 1);
  expect_same_answers(db, azBefore);
  tu_exec(db, "INSERT INTO docs(docs) VALUES ('integrity-check')");
  /* The copy is a store of its own: a write to it leaves the original alone. */
  tu_exec(db, "DELETE FROM docs WHERE id = 'p0'");
  sqlite3_close(db);
  db = open_again("lc_save.db", 1);
  expect_same_answers(db, azBefore);
  sqlite3_close(db);

  db = open_again("lc_save.db", 0);
  expect_rows(db, g_azPersistQueries[1], azBefore[1]);
  tu_expect_error(db, g_azPersistQueries[0], "vecstore: ", "fake_embed", (char *)0);
  sqlite3_close(db);

  for (int i = 0; i < N_PERSIST; i++) sqlite3_free(azBefore[i]);
  sqlite3_free(zVacuum);
  tu_remove_db(zCopy);
  sqlite3_free(zCopy);
}

/* serialize_to_bytes / deserialize_from_bytes: sqlite3_serialize the main database into bytes, sqlite3_deserialize
** them into a fresh connection with vecstore loaded: the same answers, and the copy takes writes of its own. */
static void test_faiss_serialize_deserialize(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_serialize.db");
  persist_fixture(db);
  char *azBefore[N_PERSIST];
  for (int i = 0; i < N_PERSIST; i++) azBefore[i] = rows_of(db, g_azPersistQueries[i]);
  sqlite3_int64 nByte = 0;
  unsigned char *aByte = sqlite3_serialize(db, "main", &nByte, 0);
  assert_non_null(aByte);
  assert_true(nByte > 0);

  sqlite3 *db2 = tu_open(":memory:");
  fake_register(db2);
  assert_int_equal(sqlite3_deserialize(db2, "main", aByte, nByte, nByte,
                                       SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE),
                   SQLITE_OK);
  expect_same_answers(db2, azBefore);
  tu_exec(db2, "INSERT INTO docs(docs) VALUES ('integrity-check')");
  tu_exec(db2, "INSERT INTO docs(id, content, embedding) VALUES ('new', 'n', '[1,1,1,1,1,1,1,1,1,0.5]')");
  expect_rows(db2, "SELECT id, distance FROM docs WHERE docs MATCH 'foo' AND k = 3", "p0|0;q0|0;new|0.25");
  /* A second round trip from the in-memory copy. */
  sqlite3_int64 nByte2 = 0;
  unsigned char *aByte2 = sqlite3_serialize(db2, "main", &nByte2, 0);
  assert_non_null(aByte2);
  sqlite3 *db3 = tu_open(":memory:");
  fake_register(db3);
  assert_int_equal(sqlite3_deserialize(db3, "main", aByte2, nByte2, nByte2,
                                       SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE),
                   SQLITE_OK);
  expect_rows(db3, "SELECT id, distance FROM docs WHERE docs MATCH 'foo' AND k = 3", "p0|0;q0|0;new|0.25");
  sqlite3_close(db3);
  sqlite3_close(db2);
  /* The original is untouched by the copy's write. */
  expect_same_answers(db, azBefore);
  sqlite3_close(db);
  for (int i = 0; i < N_PERSIST; i++) sqlite3_free(azBefore[i]);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* Relevance scores                                                                                               */

/* test_faiss_similarity_search_with_relevance_scores: similarity_search_with_relevance_scores("foo", k=1) -> foo
** with score 1.0. */
static void test_faiss_similarity_search_with_relevance_scores(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_relevance.db");
  create_fake_table(db, "docs");
  from_texts(db, "docs", 3, FOO_BAR_BAZ, 0, 0);
  expect_rows(db, "SELECT content, score FROM docs WHERE docs MATCH 'foo' AND k = 1", "foo|1");
  sqlite3_close(db);
}

/* test_faiss_similarity_search_with_relevance_scores_with_threshold: k=2, score_threshold=0.5 -> only foo (1.0). */
static void test_faiss_similarity_search_with_relevance_scores_with_threshold(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_relevance_thr.db");
  create_fake_table(db, "docs");
  from_texts(db, "docs", 3, FOO_BAR_BAZ, 0, 0);
  expect_rows(db, "SELECT content, score FROM docs WHERE docs MATCH 'foo' AND score >= 0.5 AND k = 2", "foo|1");
  expect_rows(db, "SELECT content FROM docs WHERE docs MATCH 'foo' AND score >= 0.25 AND k = 4", "foo;bar");
  expect_rows(db, "SELECT content FROM docs WHERE docs MATCH 'foo' AND score > 1", "");
  sqlite3_close(db);
}

/* test_missing_normalize_score_fn: an unknown distance strategy is an error (at CREATE here). */
static void test_missing_normalize_score_fn(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_bad_metric.db");
  tu_expect_error(db, "CREATE VIRTUAL TABLE docs USING vecstore(dim = 10, metric = fake, embedder = fake_embed)",
                  "vecstore: ", "metric", "fake", (char *)0);
  tu_expect_int(db, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'docs%'", 0);
  sqlite3_close(db);
}

/* test_ip_score (skipped in LangChain, "old relevance score feature"): MAX_INNER_PRODUCT, one document, the query
** embedding equal to it. SPEC: distance = -inner product = -9, score = -distance = 9. */
static void test_ip_score(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_ip_score.db");
  tu_exec(db, "CREATE VIRTUAL TABLE docs USING vecstore(dim = 10, metric = ip, embedder = fake_embed)");
  static const char *const azText[] = {"sundays coming so i drive my car"};
  from_texts(db, "docs", 1, azText, 0, 0);
  expect_rows(db, "SELECT vecstore_to_json(fake_embed('hi'))", "[1,1,1,1,1,1,1,1,1,0]");
  expect_rows(db, "SELECT count(*), max(distance), max(score) FROM docs WHERE docs MATCH 'sundays' AND k = 1", "1|-9|9");
  sqlite3_close(db);
}

/* test_faiss_cosine_distance_with_index_flat_ip / _l2 (COSINE with normalize_L2): ConsistentFakeEmbeddings gives
** foo [1]*9+[0] and bar [1]*9+[1]; add foo, query bar. metric = cosine: distance = 1 - cos, score = cos (SPEC;
** LangChain's test expects (1 + cos) / 2 for both index types). */
static void test_faiss_cosine_distance(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_cosine.db");
  tu_exec(db, "CREATE VIRTUAL TABLE docs USING vecstore(dim = 10, metric = cosine, embedder = fake_embed)");
  static const char *const azFoo[] = {"foo"};
  from_texts(db, "docs", 1, azFoo, 0, 0);
  double rCos = 9.0 / (3.0 * sqrt(10.0));
  expect_rows(db, "SELECT content FROM docs WHERE embedding MATCH '[1,1,1,1,1,1,1,1,1,1]' AND k = 4", "foo");
  expect_double(db, "SELECT score FROM docs WHERE embedding MATCH '[1,1,1,1,1,1,1,1,1,1]' AND k = 1", rCos, 1e-6);
  expect_double(db, "SELECT distance FROM docs WHERE embedding MATCH '[1,1,1,1,1,1,1,1,1,1]' AND k = 1", 1.0 - rCos, 1e-6);
  /* The vectors are stored as given (README: cosine tables index normalised copies). */
  expect_rows(db, "SELECT vecstore_to_json(embedding) FROM docs", "[1,1,1,1,1,1,1,1,1,0]");
  sqlite3_close(db);
}

/* The relevance-score function of each distance strategy on the FakeEmbeddings store (SPEC "score"):
** l2: 1 - sqrt(d)/sqrt(2); cosine: 1 - d; ip: -d. Also vecstore_distance agrees with the distance column. */
static void test_relevance_score_functions(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_score_fns.db");
  static const char *const azMetric[] = {"l2", "cosine", "ip"};
  static const char *const azText[] = {"t0", "t1", "t2", "t3"};
  for (int m = 0; m < 3; m++) {
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE s_%s USING vecstore(dim = 10, metric = %s, embedder = fake_embed)",
                                 azMetric[m], azMetric[m]);
    tu_exec(db, zSql);
    sqlite3_free(zSql);
    char *zTable = sqlite3_mprintf("s_%s", azMetric[m]);
    from_texts(db, zTable, 4, azText, 0, 0);
    /* The query [1]*9 + [1]: ip grows with i, so every metric has a strict order. */
    zSql = sqlite3_mprintf("SELECT rowid, distance, score, vecstore_distance(embedding, vecstore_vector("
                           "'[1,1,1,1,1,1,1,1,1,1]'), '%s') FROM %s WHERE embedding MATCH '[1,1,1,1,1,1,1,1,1,1]' AND k = 4",
                           azMetric[m], zTable);
    sqlite3_stmt *pStmt = tu_prepare(db, zSql);
    int n = 0;
    double rPrev = -INFINITY;
    while (sqlite3_step(pStmt) == SQLITE_ROW) {
      int i = sqlite3_column_int(pStmt, 0) - 1;
      double d = sqlite3_column_double(pStmt, 1), s = sqlite3_column_double(pStmt, 2);
      double rIp = 9.0 + i, rNorm = sqrt(9.0 + (double)i * i), rCos = rIp / (sqrt(10.0) * rNorm);
      double dWant = m == 0 ? (double)(i - 1) * (i - 1) : m == 1 ? 1.0 - rCos : -rIp;
      double sWant = m == 0 ? 1.0 - sqrt(d) / sqrt(2.0) : m == 1 ? 1.0 - d : -d;
      if (fabs(d - dWant) > 1e-4) fail_msg("%s: rowid %d distance %.9g, expected %.9g", azMetric[m], i + 1, d, dWant);
      if (fabs(s - sWant) > 1e-6) fail_msg("%s: rowid %d score %.9g, expected %.9g", azMetric[m], i + 1, s, sWant);
      if (fabs(sqlite3_column_double(pStmt, 3) - d) > 1e-4) fail_msg("%s: vecstore_distance differs", azMetric[m]);
      if (d < rPrev) fail_msg("%s: distances not increasing", azMetric[m]);
      rPrev = d;
      n++;
    }
    sqlite3_finalize(pStmt);
    sqlite3_free(zSql);
    assert_int_equal(n, 4);
    sqlite3_free(zTable);
  }
  /* The l2 orders: t1 (d 0), then t0 and t2 (d 1), then t3 (d 4); ip: t3 first. */
  expect_rows(db, "SELECT rowid FROM s_ip WHERE embedding MATCH '[1,1,1,1,1,1,1,1,1,1]' AND k = 4", "4;3;2;1");
  expect_rows(db, "SELECT score FROM s_l2 WHERE embedding MATCH '[1,1,1,1,1,1,1,1,1,1]' AND k = 1", "1");
  expect_double(db, "SELECT score FROM s_l2 WHERE rowid = 4 AND embedding MATCH '[1,1,1,1,1,1,1,1,1,1]'",
                1.0 - 2.0 / sqrt(2.0), 1e-6);
  expect_double(db, "SELECT score FROM s_ip WHERE embedding MATCH '[1,1,1,1,1,1,1,1,1,1]' AND k = 1", 12.0, 1e-5);
  /* score thresholds per metric. */
  expect_rows(db, "SELECT rowid FROM s_cosine WHERE embedding MATCH '[1,1,1,1,1,1,1,1,1,1]' AND score >= 0.99", "2");
  expect_rows(db, "SELECT rowid FROM s_ip WHERE embedding MATCH '[1,1,1,1,1,1,1,1,1,1]' AND score >= 10.5", "4;3");
  /* Without MATCH, distance and score are NULL. */
  expect_rows(db, "SELECT distance, score FROM s_l2 WHERE rowid = 1", "NULL|NULL");
  sqlite3_close(db);
}

/* ------------------------------------------------------------------------------------------------------------- */
/* The walkthrough                                                                                                */

/* The LangChain FAISS notebook on the State of the Union: CharacterTextSplitter(chunk_size=1000, chunk_overlap=0)
** gives 42 chunks; with the hash embedder (dim 512) "What did the president say about Ketanji Brown Jackson" finds
** the Ketanji Brown Jackson chunk first. */
static void test_state_of_the_union(void **state) {
  (void)state;
  sqlite3 *db = open_fresh("lc_sotu.db");
  tu_exec(db, "CREATE VIRTUAL TABLE sotu USING vecstore(dim = 512, embedder = hash)");
  /* The walkthrough uses the shell's readfile(); here the file is bound as text. */
  FILE *f = fopen(tu_data_path("state_of_the_union.txt"), "rb");
  if (!f) fail_msg("cannot open %s", tu_data_path("state_of_the_union.txt"));
  fseek(f, 0, SEEK_END);
  long nByte = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *zText = malloc((size_t)nByte + 1);
  assert_int_equal(fread(zText, 1, (size_t)nByte, f), (size_t)nByte);
  zText[nByte] = 0;
  fclose(f);
  sqlite3_stmt *pStmt = tu_prepare(db, "INSERT INTO sotu(id, content, metadata) SELECT 'sotu-' || chunk_index, chunk, "
                                       "json_object('source', 'state_of_the_union.txt', 'chunk', chunk_index) "
                                       "FROM vecstore_split(?1, 1000, 0)");
  sqlite3_bind_text(pStmt, 1, zText, (int)nByte, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_DONE) fail_msg("insert: %s", sqlite3_errmsg(db));
  sqlite3_finalize(pStmt);
  free(zText);
  tu_expect_int(db, "SELECT count(*) FROM sotu", 42);
  tu_expect_int(db, "SELECT count(*) FROM vecstore_split((SELECT group_concat(content, '') FROM sotu), 1000, 0)", 42);
  /* similarity_search(query) (k = 4): the Ketanji Brown Jackson passage ranks first. */
  static const char *zQ = "What did the president say about Ketanji Brown Jackson";
  char *zTop = sqlite3_mprintf("SELECT id, instr(content, 'Ketanji Brown Jackson') > 0 FROM sotu WHERE sotu MATCH %Q AND k = 4",
                               zQ);
  char *zRows = rows_of(db, zTop);
  if (strncmp(zRows, "sotu-", 5) != 0 || strstr(zRows, "|1") == 0 || strchr(zRows, '|')[1] != '1') {
    fail_msg("the first chunk does not contain 'Ketanji Brown Jackson': %s", zRows);
  }
  assert_int_equal((int)tu_int(db, "SELECT count(*) FROM sotu WHERE instr(content, 'Ketanji Brown Jackson') > 0"), 1);
  sqlite3_free(zRows);
  sqlite3_free(zTop);
  /* similarity_search_with_score: increasing distances; relevance scores are the l2 function of them. */
  char *zScores = sqlite3_mprintf("SELECT count(*), sum(abs(score - (1 - sqrt(distance) / sqrt(2))) < 1e-6), "
                                  "min(distance) >= 0, max(distance) <= 4 FROM sotu WHERE sotu MATCH %Q AND k = 4",
                                  zQ);
  expect_rows(db, zScores, "4|4|1|1");
  sqlite3_free(zScores);
  char *zOrder = sqlite3_mprintf("SELECT count(*) FROM (SELECT distance, lag(distance) OVER () AS prev FROM "
                                 "(SELECT distance FROM sotu WHERE sotu MATCH %Q AND k = 10)) WHERE prev > distance",
                                 zQ);
  tu_expect_int(db, zOrder, 0);
  sqlite3_free(zOrder);
  /* The same query as a vector of the built-in embedder. */
  char *zVec = sqlite3_mprintf("SELECT (SELECT group_concat(id) FROM sotu WHERE sotu MATCH %Q AND k = 4) = "
                               "(SELECT group_concat(id) FROM sotu WHERE embedding MATCH vecstore_embed_hash(%Q, 512) AND k = 4)",
                               zQ, zQ);
  tu_expect_int(db, zVec, 1);
  sqlite3_free(zVec);
  /* MMR and a filter on the walkthrough's metadata. */
  char *zMmr = sqlite3_mprintf("SELECT count(DISTINCT id) FROM sotu WHERE sotu MATCH %Q AND k = 4 AND fetch_k = 10 "
                               "AND lambda_mult = 0.25",
                               zQ);
  tu_expect_int(db, zMmr, 4);
  sqlite3_free(zMmr);
  char *zFilter = sqlite3_mprintf("SELECT count(*), min(json_extract(metadata, '$.chunk')) >= 30 FROM (SELECT metadata "
                                  "FROM sotu WHERE sotu MATCH %Q AND vecstore_filter(metadata, "
                                  "'{\"chunk\": {\"$gte\": 30}}') LIMIT 5)",
                                  zQ);
  expect_rows(db, zFilter, "5|1");
  sqlite3_free(zFilter);
  tu_exec(db, "INSERT INTO sotu(sotu) VALUES ('integrity-check')");
  sqlite3_close(db);
}

/* ------------------------------------------------------------------------------------------------------------- */

int main(void) {
  static const struct CMUnitTest aFixed[] = {
      cmocka_unit_test(test_faiss),
      cmocka_unit_test(test_faiss_vector_sim),
      cmocka_unit_test(test_faiss_vector_sim_with_score_threshold),
      cmocka_unit_test(test_similarity_search_with_score_by_vector),
      cmocka_unit_test(test_similarity_search_with_score_by_vector_with_score_threshold),
      cmocka_unit_test(test_similarity_search_with_score),
      cmocka_unit_test(test_faiss_mmr),
      cmocka_unit_test(test_faiss_mmr_with_metadatas),
      cmocka_unit_test(test_faiss_mmr_filter_callable_and_declared),
      cmocka_unit_test(test_faiss_with_metadatas),
      cmocka_unit_test(test_faiss_with_metadatas_and_filter),
      cmocka_unit_test(test_faiss_with_metadatas_and_list_filter),
      cmocka_unit_test(test_faiss_search_not_found),
      cmocka_unit_test(test_faiss_add_texts),
      cmocka_unit_test(test_faiss_add_texts_not_supported),
      cmocka_unit_test(test_faiss_with_duplicate_ids),
      cmocka_unit_test(test_faiss_document_ids),
      cmocka_unit_test(test_faiss_get_by_ids),
      cmocka_unit_test(test_delete),
      cmocka_unit_test(test_faiss_merge_from),
      cmocka_unit_test(test_faiss_local_save_load),
      cmocka_unit_test(test_faiss_serialize_deserialize),
      cmocka_unit_test(test_faiss_similarity_search_with_relevance_scores),
      cmocka_unit_test(test_faiss_similarity_search_with_relevance_scores_with_threshold),
      cmocka_unit_test(test_missing_normalize_score_fn),
      cmocka_unit_test(test_ip_score),
      cmocka_unit_test(test_faiss_cosine_distance),
      cmocka_unit_test(test_relevance_score_functions),
      cmocka_unit_test(test_state_of_the_union),
  };
  enum { N_FIXED = sizeof(aFixed) / sizeof(aFixed[0]) };
  static struct CMUnitTest aTests[N_FIXED + N_MMR];
  for (int i = 0; i < N_FIXED; i++) aTests[i] = aFixed[i];
  for (int i = 0; i < N_MMR; i++) {
    struct CMUnitTest t = {g_aMmr[i].zName, run_mmr_case, 0, 0, (void *)&g_aMmr[i]};
    aTests[N_FIXED + i] = t;
  }
  int rc = cmocka_run_group_tests_name("langchain", aTests, NULL, NULL);
  for (int i = 0; i < g_nFile; i++) {
    tu_remove_db(g_azFile[i]);
    sqlite3_free(g_azFile[i]);
  }
  rmdir(tu_dir()); /* when empty */
  return rc;
}
