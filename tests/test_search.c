/* Searching (SPEC.md "Searching"): KNN through MATCH with k / LIMIT / ORDER BY distance under every metric,
** distance and score values, point lookups and plain scans, recall on real data (bigann10k, cohere_wiki) with
** Flat, HNSW and trainable (IVF, SQ, PQ) indexes, training, index switches and search parameters. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <valgrind/valgrind.h>

enum { M_L2 = TU_L2, M_IP = TU_IP, M_COSINE = TU_COSINE };
static const char *azMetric[] = {"l2", "ip", "cosine"};

/* bigann10k, loaded once for the whole group */
static float *g_aBase;
static int g_nBase, g_dBase;
static float *g_aQuery;
static int g_nQuery;
static int *g_aGt;
static int g_nGt, g_kGt;

static int group_setup(void **state) {
  (void)state;
  int d = 0;
  g_aBase = tu_read_fvecs("bigann10k_holdout_base9900.fvecs", &g_nBase, &g_dBase);
  g_aQuery = tu_read_fvecs("bigann10k_holdout_query100.fvecs", &g_nQuery, &d);
  g_aGt = tu_read_ivecs("bigann10k_holdout_groundtruth100.ivecs", &g_nGt, &g_kGt);
  if (g_nBase != 9900 || g_dBase != 128 || g_nQuery != 100 || d != 128 || g_nGt != 100 || g_kGt != 100) {
    fprintf(stderr, "unexpected bigann shapes\n");
    return -1;
  }
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  free(g_aBase);
  free(g_aQuery);
  free(g_aGt);
  return 0;
}

/**************************************************************************************************
** Helpers.
*/

/* Inserts base rows iFirst..iFirst+n-1 with rowid = row + 1 and id 'r<row>', in one transaction. */
static void insert_rows(sqlite3 *db, const char *zTab, const float *aVec, int d, int iFirst, int n) {
  tu_exec(db, "BEGIN");
  char *zSql = sqlite3_mprintf("INSERT INTO \"%w\"(rowid, id, content, embedding) VALUES (?1, ?2, ?3, ?4)", zTab);
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  for (int i = iFirst; i < iFirst + n; i++) {
    char zId[32], zContent[48];
    snprintf(zId, sizeof(zId), "r%d", i);
    snprintf(zContent, sizeof(zContent), "document number %d", i);
    sqlite3_bind_int64(pStmt, 1, (sqlite3_int64)i + 1);
    sqlite3_bind_text(pStmt, 2, zId, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(pStmt, 3, zContent, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(pStmt, 4, aVec + (size_t)i * d, d * 4, SQLITE_STATIC);
    int rc = sqlite3_step(pStmt);
    if (rc != SQLITE_DONE) fail_msg("insert of row %d failed: %s", i, sqlite3_errmsg(db));
    sqlite3_reset(pStmt);
  }
  sqlite3_finalize(pStmt);
  sqlite3_free(zSql);
  tu_exec(db, "COMMIT");
}

typedef struct Hit {
  sqlite3_int64 iRowid;
  double rDist;
  double rScore;
  int bNull; /* distance or score was NULL */
} Hit;

/* Runs zSql (columns: rowid, distance, score) with ?1 bound to the query as a float32 BLOB (if q is not NULL)
** and optional text ?2; stores up to nMax rows in aHit and returns the number of rows. Fails on error. */
static int run_hits(sqlite3 *db, const char *zSql, const float *q, int d, const char *zArg2, Hit *aHit, int nMax) {
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  if (q) sqlite3_bind_blob(pStmt, 1, q, d * 4, SQLITE_TRANSIENT);
  if (zArg2) sqlite3_bind_text(pStmt, 2, zArg2, -1, SQLITE_TRANSIENT);
  int n = 0, rc;
  while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    if (n >= nMax) fail_msg("more than %d rows\n  in: %s", nMax, zSql);
    aHit[n].iRowid = sqlite3_column_int64(pStmt, 0);
    aHit[n].bNull = sqlite3_column_type(pStmt, 1) == SQLITE_NULL || sqlite3_column_type(pStmt, 2) == SQLITE_NULL;
    aHit[n].rDist = sqlite3_column_double(pStmt, 1);
    aHit[n].rScore = sqlite3_column_double(pStmt, 2);
    n++;
  }
  if (rc != SQLITE_DONE) fail_msg("query failed: %s\n  in: %s", sqlite3_errmsg(db), zSql);
  sqlite3_finalize(pStmt);
  return n;
}

/* Ground truth for nQ queries over the first nBase rows: nQ * k rows. */
static int *brute_force_all(const float *aBase, int nBase, int d, const float *aQ, int nQ, int eMetric, int k) {
  int *aGt = malloc(sizeof(int) * (size_t)nQ * k);
  double *aDist = malloc(sizeof(double) * k);
  for (int i = 0; i < nQ; i++) {
    tu_brute_force(aBase, nBase, d, aQ + (size_t)i * d, eMetric, k, aGt + (size_t)i * k, aDist);
  }
  free(aDist);
  return aGt;
}

typedef struct RecallSpec {
  const float *aBase; /* rowid r is base row r - 1 */
  int nBase;          /* rows in the table */
  int d;
  int eMetric;
  const float *aQ;
  int nQ;
  const int *aGt; /* 0-based rows, kGt per query, nearest first */
  int kGt;
  int bExactDist; /* check each distance against the reference (exact indexes) */
} RecallSpec;

/* Runs zSql for every query (?1 the query BLOB, ?2 zArg2 if given), expecting exactly 10 rows in non-decreasing
** distance with distinct valid rowids. Returns the mean recall@10 against the first 10 ground-truth rows; a row
** counts when it is in the ground truth or is exactly as close as the 10th ground-truth row (data with ties). */
static double measure_recall(sqlite3 *db, const char *zSql, const char *zArg2, const RecallSpec *p, double *pStrict) {
  Hit aHit[16];
  int nFound = 0, nStrict = 0;
  for (int iQ = 0; iQ < p->nQ; iQ++) {
    const float *q = p->aQ + (size_t)iQ * p->d;
    const int *aTruth = p->aGt + (size_t)iQ * p->kGt;
    int n = run_hits(db, zSql, q, p->d, zArg2, aHit, 16);
    if (n != 10) fail_msg("query %d: %d rows, expected 10\n  in: %s", iQ, n, zSql);
    double rKth = tu_ref_distance(p->aBase + (size_t)aTruth[9] * p->d, q, p->d, p->eMetric);
    for (int i = 0; i < 10; i++) {
      sqlite3_int64 r = aHit[i].iRowid;
      if (r < 1 || r > p->nBase) fail_msg("query %d: rowid %lld out of range", iQ, (long long)r);
      if (aHit[i].bNull) fail_msg("query %d: NULL distance or score", iQ);
      for (int j = 0; j < i; j++) {
        if (aHit[j].iRowid == r) fail_msg("query %d: rowid %lld twice", iQ, (long long)r);
      }
      if (i > 0 && aHit[i].rDist < aHit[i - 1].rDist)
        fail_msg("query %d: distance %.9g after %.9g (not increasing)", iQ, aHit[i].rDist, aHit[i - 1].rDist);
      double rTrue = tu_ref_distance(p->aBase + (size_t)(r - 1) * p->d, q, p->d, p->eMetric);
      if (p->bExactDist && fabs(aHit[i].rDist - rTrue) > 1e-4 * fmax(1.0, fabs(rTrue)))
        fail_msg("query %d rowid %lld: distance %.9g, expected %.9g", iQ, (long long)r, aHit[i].rDist, rTrue);
      int bIn = 0;
      for (int j = 0; j < 10; j++) bIn |= aTruth[j] == r - 1;
      nStrict += bIn;
      nFound += bIn || rTrue <= rKth;
    }
  }
  if (pStrict) *pStrict = nStrict / (10.0 * p->nQ);
  return nFound / (10.0 * p->nQ);
}

/**************************************************************************************************
** KNN on small hand-made data.
*/

/* LangChain's FakeEmbeddings: document i is [1]*9 + [i], the query [1]*9 + [0]; document i's l2 distance is i*i. */
static void create_fake(sqlite3 *db) {
  tu_exec(db, "CREATE VIRTUAL TABLE fake USING vecstore(dim = 10)");
  tu_exec(db, "BEGIN");
  for (int i = 9; i >= 0; i--) { /* inserted in reverse so that rowid order is not distance order */
    char zSql[200];
    snprintf(zSql, sizeof(zSql),
             "INSERT INTO fake(rowid, id, content, embedding) VALUES (%d, 'doc%d', 'text %d', '[1,1,1,1,1,1,1,1,1,%d]')",
             100 - i, i, i, i);
    tu_exec(db, zSql);
  }
  tu_exec(db, "COMMIT");
}

static const float aFakeQuery[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0};

/* Runs zSql (columns rowid, distance, score, id) with ?1 the fake query as a BLOB and checks it returns the
** documents aDoc[0..nWant-1] in that order, with distance i*i and the l2 score. */
static void expect_fake(sqlite3 *db, const char *zSql, int bBind, const int *aDoc, int nWant) {
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  if (bBind) sqlite3_bind_blob(pStmt, 1, aFakeQuery, sizeof(aFakeQuery), SQLITE_STATIC);
  int n = 0, rc;
  while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    if (n >= nWant) fail_msg("more than %d rows\n  in: %s", nWant, zSql);
    int i = aDoc[n];
    char zId[16];
    snprintf(zId, sizeof(zId), "doc%d", i);
    const char *zGot = (const char *)sqlite3_column_text(pStmt, 3);
    if (sqlite3_column_int64(pStmt, 0) != 100 - i || zGot == 0 || strcmp(zGot, zId) != 0)
      fail_msg("row %d: rowid %lld id %s, expected %d %s\n  in: %s", n, (long long)sqlite3_column_int64(pStmt, 0),
               zGot ? zGot : "NULL", 100 - i, zId, zSql);
    if (sqlite3_column_type(pStmt, 1) != SQLITE_FLOAT || sqlite3_column_type(pStmt, 2) != SQLITE_FLOAT)
      fail_msg("row %d: distance/score not REAL\n  in: %s", n, zSql);
    double rDist = sqlite3_column_double(pStmt, 1), rScore = sqlite3_column_double(pStmt, 2);
    if (fabs(rDist - i * i) > 1e-4) fail_msg("row %d: distance %.9g, expected %d\n  in: %s", n, rDist, i * i, zSql);
    double rWant = 1.0 - i / sqrt(2.0);
    if (fabs(rScore - rWant) > 1e-4) fail_msg("row %d: score %.9g, expected %.9g\n  in: %s", n, rScore, rWant, zSql);
    n++;
  }
  if (rc != SQLITE_DONE) fail_msg("query failed: %s\n  in: %s", sqlite3_errmsg(db), zSql);
  if (n != nWant) fail_msg("%d rows, expected %d\n  in: %s", n, nWant, zSql);
  sqlite3_finalize(pStmt);
}

static void test_knn_fake_embeddings(void **state) {
  (void)state;
  sqlite3 *db = tu_open_fresh("fake.db");
  create_fake(db);
  static const int aAsc[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  static const int aDesc[3] = {9, 8, 7};
  static const int aOffset[3] = {2, 3, 4};
  const char *zQ = "'[1,1,1,1,1,1,1,1,1,0]'";
  char zSql[400];
#define SEL "SELECT rowid, distance, score, id FROM fake WHERE embedding MATCH "
  /* k, LIMIT, ORDER BY distance LIMIT, ORDER BY score DESC LIMIT: with JSON text and with a BLOB. */
  for (int bBlob = 0; bBlob < 2; bBlob++) {
    const char *zV = bBlob ? "?1" : zQ;
    snprintf(zSql, sizeof(zSql), SEL "%s AND k = 4", zV);
    expect_fake(db, zSql, bBlob, aAsc, 4);
    snprintf(zSql, sizeof(zSql), SEL "%s LIMIT 4", zV);
    expect_fake(db, zSql, bBlob, aAsc, 4);
    snprintf(zSql, sizeof(zSql), SEL "%s ORDER BY distance LIMIT 4", zV);
    expect_fake(db, zSql, bBlob, aAsc, 4);
    snprintf(zSql, sizeof(zSql), SEL "%s ORDER BY score DESC LIMIT 4", zV);
    expect_fake(db, zSql, bBlob, aAsc, 4);
    snprintf(zSql, sizeof(zSql), SEL "%s AND k = 1", zV);
    expect_fake(db, zSql, bBlob, aAsc, 1);
    /* k = 0 and LIMIT 0: nothing. */
    snprintf(zSql, sizeof(zSql), SEL "%s AND k = 0", zV);
    expect_fake(db, zSql, bBlob, aAsc, 0);
    snprintf(zSql, sizeof(zSql), SEL "%s LIMIT 0", zV);
    expect_fake(db, zSql, bBlob, aAsc, 0);
    /* More asked than there are rows: all of them. */
    snprintf(zSql, sizeof(zSql), SEL "%s AND k = 25", zV);
    expect_fake(db, zSql, bBlob, aAsc, 10);
    snprintf(zSql, sizeof(zSql), SEL "%s ORDER BY distance LIMIT 1000", zV);
    expect_fake(db, zSql, bBlob, aAsc, 10);
    /* Without k or LIMIT: every row, in distance order. */
    snprintf(zSql, sizeof(zSql), SEL "%s", zV);
    expect_fake(db, zSql, bBlob, aAsc, 10);
    snprintf(zSql, sizeof(zSql), SEL "%s ORDER BY distance", zV);
    expect_fake(db, zSql, bBlob, aAsc, 10);
    /* k and LIMIT together: the smaller wins. */
    snprintf(zSql, sizeof(zSql), SEL "%s AND k = 3 LIMIT 5", zV);
    expect_fake(db, zSql, bBlob, aAsc, 3);
    snprintf(zSql, sizeof(zSql), SEL "%s AND k = 5 LIMIT 3", zV);
    expect_fake(db, zSql, bBlob, aAsc, 3);
    /* LIMIT is "always correct regardless": OFFSET, and an order SQLite must sort itself. */
    snprintf(zSql, sizeof(zSql), SEL "%s ORDER BY distance LIMIT 3 OFFSET 2", zV);
    expect_fake(db, zSql, bBlob, aOffset, 3);
    snprintf(zSql, sizeof(zSql), SEL "%s ORDER BY distance DESC LIMIT 3", zV);
    expect_fake(db, zSql, bBlob, aDesc, 3);
    snprintf(zSql, sizeof(zSql), SEL "%s AND k = 10 ORDER BY distance DESC LIMIT 3", zV);
    expect_fake(db, zSql, bBlob, aDesc, 3);
  }
  /* k given as a bound parameter. */
  sqlite3_stmt *pStmt = tu_prepare(db, "SELECT count(*), max(distance) FROM fake WHERE embedding MATCH ?1 AND k = ?2");
  sqlite3_bind_blob(pStmt, 1, aFakeQuery, sizeof(aFakeQuery), SQLITE_STATIC);
  sqlite3_bind_int(pStmt, 2, 6);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(pStmt, 0), 6);
  assert_float_equal(sqlite3_column_double(pStmt, 1), 25.0, 1e-4);
  sqlite3_finalize(pStmt);
  /* The distance column equals vecstore_distance(embedding, query) on every row. */
  assert_int_equal(tu_int(db, "SELECT count(*) FROM fake WHERE embedding MATCH '[1,1,1,1,1,1,1,1,1,0]' "
                              "AND abs(distance - vecstore_distance(embedding, '[1,1,1,1,1,1,1,1,1,0]', 'l2')) < 1e-4"),
                   10);
  /* A query whose nearest documents are in the middle: [1]*9 + [4.4] -> doc4 (0.16), doc5 (0.36), doc3 (1.96). */
  char *z = tu_text(db, "SELECT group_concat(id || ':' || printf('%.2f', distance), ' ') FROM (SELECT id, distance FROM "
                        "fake WHERE embedding MATCH '[1,1,1,1,1,1,1,1,1,4.4]' AND k = 3)");
  assert_string_equal(z, "doc4:0.16 doc5:0.36 doc3:1.96");
  sqlite3_free(z);
#undef SEL
  tu_close_remove(db, "fake.db");
}

/* Hand-made cases for ip and cosine with known answers. */
static void test_knn_ip_cosine_known(void **state) {
  (void)state;
  sqlite3 *db = tu_open_fresh("known.db");
  tu_exec(db, "CREATE VIRTUAL TABLE vip USING vecstore(dim = 2, metric = ip);"
              "INSERT INTO vip(rowid, id, embedding) VALUES (1, 'a', '[1, 0]'), (2, 'b', '[2, 0]'), (3, 'c', '[0, 3]'),"
              " (4, 'd', '[-1, 0]');"
              "CREATE VIRTUAL TABLE vcos USING vecstore(dim = 2, metric = cosine);"
              "INSERT INTO vcos(rowid, id, embedding) VALUES (1, 'a', '[1, 0]'), (2, 'b', '[1, 1]'), (3, 'c', '[0, 5]'),"
              " (4, 'd', '[-3, 0]');");
  /* ip, query [1, 0]: inner products 1, 2, 0, -1 -> distances -1, -2, 0, 1; score = inner product. */
  /* (+ 0.0 turns a -0.0 into 0.0: the sign of a zero is not part of the contract) */
  char *z = tu_text(db, "SELECT group_concat(id || ':' || printf('%.4f', distance + 0.0) || ':' || "
                        "printf('%.4f', score + 0.0), ' ') "
                        "FROM (SELECT id, distance, score FROM vip WHERE embedding MATCH '[1, 0]' AND k = 4)");
  assert_string_equal(z, "b:-2.0000:2.0000 a:-1.0000:1.0000 c:0.0000:0.0000 d:1.0000:-1.0000");
  sqlite3_free(z);
  /* cosine, query [2, 0]: similarities 1, 0.7071, 0, -1 -> distances 0, 0.2929, 1, 2; score = 1 - distance. */
  z = tu_text(db, "SELECT group_concat(id || ':' || printf('%.4f', distance + 0.0) || ':' || "
                  "printf('%.4f', score + 0.0), ' ') FROM (SELECT id, distance, score FROM vcos WHERE embedding MATCH '[2, 0]' ORDER BY distance LIMIT 4)");
  assert_string_equal(z, "a:0.0000:1.0000 b:0.2929:0.7071 c:1.0000:0.0000 d:2.0000:-1.0000");
  sqlite3_free(z);
  /* Cosine does not change the stored embedding. */
  z = tu_text(db, "SELECT vecstore_to_json(embedding) FROM vcos WHERE rowid = 3");
  assert_string_equal(z, "[0,5]");
  sqlite3_free(z);
  tu_close_remove(db, "known.db");
}

/* Random vectors under every metric: the rows are the brute-force nearest, in order, with distances equal to
** vecstore_distance(embedding, query, metric) and the SPEC's score; JSON text and BLOB queries agree. */
static void test_knn_metrics_random(void **state) {
  (void)state;
  enum { N = 300, D = 24, NQ = 8, K = 10 };
  sqlite3 *db = tu_open_fresh("metrics.db");
  uint64_t seed = 2024;
  float *aBase = malloc(sizeof(float) * N * D), aQ[NQ * D];
  for (int i = 0; i < N * D; i++) aBase[i] = (float)(tu_rand_unit(&seed) * 2.0 - 1.0);
  for (int i = 0; i < NQ * D; i++) aQ[i] = (float)(tu_rand_unit(&seed) * 4.0 - 2.0);
  for (int eM = 0; eM < 3; eM++) {
    char zSql[400];
    snprintf(zSql, sizeof(zSql), "CREATE VIRTUAL TABLE t_%s USING vecstore(dim = %d, metric = %s)", azMetric[eM], D,
             azMetric[eM]);
    tu_exec(db, zSql);
    snprintf(zSql, sizeof(zSql), "t_%s", azMetric[eM]);
    insert_rows(db, zSql, aBase, D, 0, N);
    for (int iQ = 0; iQ < NQ; iQ++) {
      const float *q = aQ + iQ * D;
      int aRow[K];
      double aDist[K];
      tu_brute_force(aBase, N, D, q, eM, K, aRow, aDist);
      /* JSON text of the query, printed with enough digits to be the same floats. */
      char *zJson = tu_vec_json(q, D);
      for (int iForm = 0; iForm < 3; iForm++) {
        const char *azForm[] = {
            "SELECT rowid, distance, score, vecstore_distance(embedding, ?1, '%s') FROM t_%s WHERE embedding MATCH ?1 "
            "AND k = 10",
            "SELECT rowid, distance, score, vecstore_distance(embedding, ?1, '%s') FROM t_%s WHERE embedding MATCH ?2 "
            "ORDER BY distance LIMIT 10",
            "SELECT rowid, distance, score, vecstore_distance(embedding, ?1, '%s') FROM t_%s WHERE embedding MATCH ?1 "
            "LIMIT 10"};
        snprintf(zSql, sizeof(zSql), azForm[iForm], azMetric[eM], azMetric[eM]);
        sqlite3_stmt *pStmt = tu_prepare(db, zSql);
        sqlite3_bind_blob(pStmt, 1, q, D * 4, SQLITE_STATIC);
        if (iForm == 1) sqlite3_bind_text(pStmt, 2, zJson, -1, SQLITE_STATIC);
        int n = 0, rc;
        while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
          if (n >= K) fail_msg("%s: more than %d rows", azMetric[eM], K);
          sqlite3_int64 iRowid = sqlite3_column_int64(pStmt, 0);
          double rDist = sqlite3_column_double(pStmt, 1), rScore = sqlite3_column_double(pStmt, 2);
          double rFn = sqlite3_column_double(pStmt, 3);
          if (iRowid != aRow[n] + 1)
            fail_msg("%s query %d form %d row %d: rowid %lld, expected %d (distance %.9g vs %.9g)", azMetric[eM], iQ,
                     iForm, n, (long long)iRowid, aRow[n] + 1, rDist, aDist[n]);
          if (fabs(rDist - rFn) > 1e-4 * fmax(1.0, fabs(rFn)))
            fail_msg("%s: distance %.9g but vecstore_distance %.9g", azMetric[eM], rDist, rFn);
          if (fabs(rDist - aDist[n]) > 1e-4 * fmax(1.0, fabs(aDist[n])))
            fail_msg("%s: distance %.9g, reference %.9g", azMetric[eM], rDist, aDist[n]);
          double rWant = tu_ref_score(rDist, eM);
          if (fabs(rScore - rWant) > 1e-4) fail_msg("%s: score %.9g, expected %.9g", azMetric[eM], rScore, rWant);
          n++;
        }
        if (rc != SQLITE_DONE) fail_msg("%s: %s", azMetric[eM], sqlite3_errmsg(db));
        assert_int_equal(n, K);
        sqlite3_finalize(pStmt);
      }
      sqlite3_free(zJson);
    }
  }
  free(aBase);
  tu_close_remove(db, "metrics.db");
}

/* A query vector of the wrong dimension is an error naming both numbers; so are malformed query vectors. */
static void test_knn_errors(void **state) {
  (void)state;
  sqlite3 *db = tu_open_fresh("knnerr.db");
  create_fake(db);
  tu_expect_error(db, "SELECT rowid FROM fake WHERE embedding MATCH '[1, 2, 3, 4, 5, 6, 7]' AND k = 3", "vecstore: ",
                  "7", "10", "dimension", (char *)0);
  tu_expect_error(db, "SELECT rowid FROM fake WHERE embedding MATCH vecstore_vector('[1,2,3,4,5,6,7,8,9,10,11,12]') "
                      "LIMIT 3",
                  "vecstore: ", "12", "10", "dimension", (char *)0);
  tu_expect_error(db, "SELECT rowid FROM fake WHERE embedding MATCH zeroblob(28)", "vecstore: ", "7", "10", (char *)0);
  tu_expect_error(db, "SELECT rowid FROM fake WHERE embedding MATCH '[1, 2' AND k = 3", "vecstore: ", (char *)0);
  tu_expect_error(db, "SELECT rowid FROM fake WHERE embedding MATCH NULL AND k = 3", "vecstore: ", "NULL", (char *)0);
  tu_expect_error(db, "SELECT rowid FROM fake WHERE embedding MATCH '[1,1,1,1,1,1,1,1,1,0]' AND k = -1", "vecstore: ",
                  "k", "-1", (char *)0);
  /* The table still works afterwards. */
  assert_int_equal(tu_int(db, "SELECT rowid FROM fake WHERE embedding MATCH '[1,1,1,1,1,1,1,1,1,9]' AND k = 1"), 91);
  tu_close_remove(db, "knnerr.db");
}

/**************************************************************************************************
** Point lookups and plain scans.
*/

static void test_point_lookups_and_scan(void **state) {
  (void)state;
  sqlite3 *db = tu_open_fresh("lookup.db");
  tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 2);"
              "INSERT INTO t(rowid, id, content, metadata, embedding) VALUES (5, 'e', 'five', '{\"n\": 5}', '[5, 0]');"
              "INSERT INTO t(rowid, id, content, embedding) VALUES (2, 'b', 'two', '[2, 0]');"
              "INSERT INTO t(rowid, id, content, embedding) VALUES (9, 'i', 'nine', '[9, 0]');");
  /* WHERE rowid = ?, WHERE id = ?, with literals and bound values. */
  char *z = tu_text(db, "SELECT id || ' ' || content FROM t WHERE rowid = 5");
  assert_string_equal(z, "e five");
  sqlite3_free(z);
  assert_int_equal(tu_int(db, "SELECT rowid FROM t WHERE id = 'i'"), 9);
  sqlite3_stmt *pStmt = tu_prepare(db, "SELECT id, distance, score FROM t WHERE rowid = ?1");
  sqlite3_bind_int(pStmt, 1, 2);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(pStmt, 0), "b");
  assert_int_equal(sqlite3_column_type(pStmt, 1), SQLITE_NULL);
  assert_int_equal(sqlite3_column_type(pStmt, 2), SQLITE_NULL);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_DONE);
  sqlite3_finalize(pStmt);
  pStmt = tu_prepare(db, "SELECT rowid, content, vecstore_to_json(embedding) FROM t WHERE id = ?1");
  sqlite3_bind_text(pStmt, 1, "e", -1, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(pStmt, 0), 5);
  assert_string_equal((const char *)sqlite3_column_text(pStmt, 1), "five");
  assert_string_equal((const char *)sqlite3_column_text(pStmt, 2), "[5,0]");
  assert_int_equal(sqlite3_step(pStmt), SQLITE_DONE);
  sqlite3_reset(pStmt);
  sqlite3_bind_text(pStmt, 1, "nope", -1, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(pStmt), SQLITE_DONE);
  sqlite3_finalize(pStmt);
  /* Lookups that find nothing. */
  assert_int_equal(tu_int(db, "SELECT count(*) FROM t WHERE id = 'zz'"), 0);
  assert_int_equal(tu_int(db, "SELECT count(*) FROM t WHERE rowid = 77"), 0);
  assert_int_equal(tu_int(db, "SELECT count(*) FROM t WHERE rowid = 3"), 0);
  assert_int_equal(tu_int(db, "SELECT count(*) FROM t WHERE id = 'e' AND rowid = 2"), 0);
  assert_int_equal(tu_int(db, "SELECT count(*) FROM t WHERE id = NULL"), 0);
  /* A rowid given as text that is an integer still matches (SQLite's rowid affinity). */
  assert_int_equal(tu_int(db, "SELECT count(*) FROM t WHERE rowid = '9'"), 1);
  /* SELECT *: four visible columns, rows in rowid order, distance and score NULL. */
  pStmt = tu_prepare(db, "SELECT * FROM t");
  assert_int_equal(sqlite3_column_count(pStmt), 4);
  assert_string_equal(sqlite3_column_name(pStmt, 0), "id");
  assert_string_equal(sqlite3_column_name(pStmt, 1), "content");
  assert_string_equal(sqlite3_column_name(pStmt, 2), "metadata");
  assert_string_equal(sqlite3_column_name(pStmt, 3), "embedding");
  const char *azWant[] = {"b", "e", "i"};
  const char *azMeta[] = {"{}", "{\"n\": 5}", "{}"};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(pStmt, 0), azWant[i]);
    const char *zMeta = (const char *)sqlite3_column_text(pStmt, 2);
    assert_non_null(zMeta);
    if (i == 1) {
      assert_int_equal(tu_int(db, "SELECT json_extract(metadata, '$.n') FROM t WHERE rowid = 5"), 5);
    } else {
      assert_string_equal(zMeta, azMeta[i]);
    }
    assert_int_equal(sqlite3_column_type(pStmt, 3), SQLITE_BLOB);
    assert_int_equal(sqlite3_column_bytes(pStmt, 3), 8);
  }
  assert_int_equal(sqlite3_step(pStmt), SQLITE_DONE);
  sqlite3_finalize(pStmt);
  Hit aHit[8];
  int n = run_hits(db, "SELECT rowid, distance, score FROM t", 0, 0, 0, aHit, 8);
  assert_int_equal(n, 3);
  assert_int_equal(aHit[0].iRowid, 2);
  assert_int_equal(aHit[1].iRowid, 5);
  assert_int_equal(aHit[2].iRowid, 9);
  for (int i = 0; i < 3; i++) assert_true(aHit[i].bNull);
  z = tu_text(db, "SELECT group_concat(rowid || typeof(distance) || typeof(score), ',') FROM t");
  assert_string_equal(z, "2nullnull,5nullnull,9nullnull");
  sqlite3_free(z);
  /* An ordinary SQL filter over the scan and a KNN over the same table agree with each other. */
  assert_int_equal(tu_int(db, "SELECT rowid FROM t WHERE content = 'nine'"), 9);
  z = tu_text(db, "SELECT group_concat(rowid) FROM (SELECT rowid FROM t WHERE embedding MATCH '[6, 0]')");
  assert_string_equal(z, "5,9,2");
  sqlite3_free(z);
  tu_close_remove(db, "lookup.db");
}

/**************************************************************************************************
** Recall on real data.
*/

static const char *zKnn10 = "SELECT rowid, distance, score FROM t WHERE embedding MATCH ?1 AND k = 10";
static const char *zKnn10P =
    "SELECT rowid, distance, score FROM t WHERE embedding MATCH ?1 AND k = 10 AND search_params = ?2";

/* A fresh database file zName with table t (dim = 128 and the vecstore options zMore, "" for none) holding
** the bigann base rows 0..n-1. */
static sqlite3 *open_bigann(const char *zName, const char *zMore, int n) {
  sqlite3 *db = tu_open_fresh(zName);
  tu_exec_fmt(db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 128%s%s)", zMore[0] ? ", " : "", zMore);
  insert_rows(db, "t", g_aBase, g_dBase, 0, n);
  return db;
}

static RecallSpec bigann_spec(int nBase, const int *aGt, int kGt, int bExact) {
  RecallSpec s = {g_aBase, nBase, g_dBase, M_L2, g_aQuery, g_nQuery, aGt, kGt, bExact};
  return s;
}

static void test_recall_bigann_flat(void **state) {
  (void)state;
  sqlite3 *db = open_bigann("bigflat.db", "index = 'Flat'", g_nBase);
  assert_int_equal(tu_int(db, "SELECT count(*) FROM t"), 9900);
  RecallSpec s = bigann_spec(g_nBase, g_aGt, g_kGt, 1);
  double rStrict, r = measure_recall(db, "SELECT rowid, distance, score FROM t WHERE embedding MATCH ?1 AND k = 10", 0,
                                     &s, &rStrict);
  printf("    bigann Flat k=10: recall@10 = %.4f (strict %.4f)\n", r, rStrict);
  assert_true(r == 1.0);
  r = measure_recall(db, "SELECT rowid, distance, score FROM t WHERE embedding MATCH ?1 ORDER BY distance LIMIT 10", 0,
                     &s, &rStrict);
  printf("    bigann Flat ORDER BY distance LIMIT 10: recall@10 = %.4f (strict %.4f)\n", r, rStrict);
  assert_true(r == 1.0);
  tu_close_remove(db, "bigflat.db");
}

static void test_recall_bigann_hnsw(void **state) {
  (void)state;
  RecallSpec s = bigann_spec(g_nBase, g_aGt, g_kGt, 1);
  double rStrict, r;
  /* Default search parameters given at CREATE. */
  sqlite3 *db = open_bigann("bighnsw.db", "index = 'HNSW32', search_params = 'efSearch=128'", g_nBase);
  r = measure_recall(db, "SELECT rowid, distance, score FROM t WHERE embedding MATCH ?1 AND k = 10", 0, &s, &rStrict);
  printf("    bigann HNSW32 efSearch=128 (CREATE default): recall@10 = %.4f (strict %.4f)\n", r, rStrict);
  assert_true(r >= 0.95);
  /* A per-query efSearch below the default is used for that query: Faiss's own default (16) loses recall. */
  double rLow = measure_recall(db, zKnn10P, "efSearch=16", &s, &rStrict);
  printf("    bigann HNSW32 default 128, per-query efSearch=16: recall@10 = %.4f (strict %.4f)\n", rLow, rStrict);
  assert_true(rLow < r);
  tu_close_remove(db, "bighnsw.db");
  /* No defaults: the per-query hidden column. */
  db = open_bigann("bighnsw2.db", "index = 'HNSW32'", g_nBase);
  r = measure_recall(db, "SELECT rowid, distance, score FROM t WHERE embedding MATCH ?1 AND k = 10", 0, &s, &rStrict);
  printf("    bigann HNSW32 Faiss defaults: recall@10 = %.4f (strict %.4f)\n", r, rStrict);
  double rPer = measure_recall(db,
                               "SELECT rowid, distance, score FROM t WHERE embedding MATCH ?1 AND k = 10 "
                               "AND search_params = 'efSearch=128'",
                               0, &s, &rStrict);
  printf("    bigann HNSW32 per-query efSearch=128: recall@10 = %.4f (strict %.4f)\n", rPer, rStrict);
  assert_true(rPer >= 0.95);
  /* Also as a bound parameter, with LIMIT. */
  rPer = measure_recall(db,
                        "SELECT rowid, distance, score FROM t WHERE embedding MATCH ?1 AND search_params = ?2 "
                        "ORDER BY distance LIMIT 10",
                        "efSearch=128", &s, &rStrict);
  assert_true(rPer >= 0.95);
  /* The per-query value does not stick: the default recall is measured again unchanged. */
  double r2 = measure_recall(db, "SELECT rowid, distance, score FROM t WHERE embedding MATCH ?1 AND k = 10", 0, &s, 0);
  assert_true(r2 == r);
  /* ... and the per-query value must actually be used: a wider search than Faiss's default efSearch=16 finds
  ** more (the CREATE default efSearch=128 reaches about 1.0 on the same data). */
  if (!(rPer > r)) fail_msg("per-query efSearch=128 recall %.4f is not above the efSearch=16 default's %.4f", rPer, r);
  tu_close_remove(db, "bighnsw2.db");
}

/* An HNSW index takes small commits into an exact delta beside its graph and folds it in at 1024 vectors
** (index.c). Through one-row commits across a fold, deletes and updates of rows in the delta, a second connection
** that replays them and a reopened file: every row is found first by its own vector, deleted rows never come
** back, a declared-column search with few matches equals Flat's answer exactly, recall stays at Flat's level, and
** integrity-check passes. */
static void expect_self_first(sqlite3 *db, int iFirst, int n, int iStep) {
  sqlite3_stmt *pStmt = tu_prepare(db, "SELECT rowid FROM h WHERE embedding MATCH ?1 AND k = 1");
  for (int i = iFirst; i < iFirst + n; i += iStep) {
    if (i % 97 == 0) continue; /* deleted below */
    sqlite3_bind_blob(pStmt, 1, g_aBase + (size_t)i * g_dBase, g_dBase * 4, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
    if (sqlite3_column_int64(pStmt, 0) != i + 1) {
      fail_msg("row %d: its own vector finds rowid %lld first", i + 1, (long long)sqlite3_column_int64(pStmt, 0));
    }
    sqlite3_reset(pStmt);
  }
  sqlite3_finalize(pStmt);
}

static void expect_like_flat(sqlite3 *db, int nRows) {
  /* Deleted rows (rowid - 1 divisible by 97, among the one-row commits) are gone from both tables. */
  tu_expect_int(db, "SELECT count(*) FROM h", nRows);
  tu_expect_int(db, "SELECT (SELECT count(*) FROM h) = (SELECT count(*) FROM f)", 1);
  int nSame = 0, nAll = 0;
  for (int q = 0; q < 20; q++) {
    const float *aQ = g_aQuery + (size_t)q * g_dBase;
    Hit aH[10], aF[10];
    int nH = run_hits(db, "SELECT rowid, distance, score FROM h WHERE embedding MATCH ?1 AND k = 10 "
                          "AND search_params = 'efSearch=128'", aQ, g_dBase, 0, aH, 10);
    int nF = run_hits(db, "SELECT rowid, distance, score FROM f WHERE embedding MATCH ?1 AND k = 10", aQ, g_dBase, 0,
                      aF, 10);
    assert_int_equal(nH, 10);
    assert_int_equal(nF, 10);
    for (int i = 0; i < 10; i++) {
      for (int j = 0; j < 10; j++) nSame += aH[i].iRowid == aF[j].iRowid;
    }
    nAll += 10;
    /* A declared column that few rows match: exactly Flat's answer (scored from the graph and the delta). */
    Hit aHg[10], aFg[10];
    nH = run_hits(db, "SELECT rowid, distance, score FROM h WHERE embedding MATCH ?1 AND grp = 7 AND k = 10", aQ,
                  g_dBase, 0, aHg, 10);
    nF = run_hits(db, "SELECT rowid, distance, score FROM f WHERE embedding MATCH ?1 AND grp = 7 AND k = 10", aQ,
                  g_dBase, 0, aFg, 10);
    assert_int_equal(nH, nF);
    for (int i = 0; i < nH; i++) {
      assert_int_equal(aHg[i].iRowid, aFg[i].iRowid);
      assert_true(fabs(aHg[i].rDist - aFg[i].rDist) <= 1e-3 * fmax(1.0, aFg[i].rDist));
    }
  }
  double rRecall = (double)nSame / nAll;
  printf("    HNSW16 with a delta against Flat: recall@10 = %.4f (%d rows)\n", rRecall, nRows);
  assert_true(rRecall >= 0.95);
  tu_exec(db, "INSERT INTO h(h) VALUES ('integrity-check')");
}

static void test_hnsw_exact_delta(void **state) {
  (void)state;
  sqlite3 *db = tu_open_fresh("delta.db");
  sqlite3 *db2 = tu_open_again("delta.db");
  tu_exec(db, "PRAGMA synchronous = OFF");
  tu_exec(db, "CREATE VIRTUAL TABLE h USING vecstore(dim = 128, index = 'HNSW16', grp INTEGER)");
  tu_exec(db, "CREATE VIRTUAL TABLE f USING vecstore(dim = 128, grp INTEGER)");
  sqlite3_stmt *pH = tu_prepare(db, "INSERT INTO h(rowid, embedding, grp) VALUES (?1, ?2, ?3)");
  sqlite3_stmt *pF = tu_prepare(db, "INSERT INTO f(rowid, embedding, grp) VALUES (?1, ?2, ?3)");
  /* 3000 rows in one commit (straight into the graph), then 1500 one-row commits each (a fold at 1024). */
  for (int i = 0; i < 4500; i++) {
    if (i == 0) tu_exec(db, "BEGIN");
    for (int t = 0; t < 2; t++) {
      sqlite3_stmt *p = t ? pF : pH;
      sqlite3_bind_int64(p, 1, i + 1);
      sqlite3_bind_blob(p, 2, g_aBase + (size_t)i * g_dBase, g_dBase * 4, SQLITE_STATIC);
      sqlite3_bind_int(p, 3, i % 50);
      if (sqlite3_step(p) != SQLITE_DONE) fail_msg("insert %d: %s", i, sqlite3_errmsg(db));
      sqlite3_reset(p);
    }
    if (i == 2999) tu_exec(db, "COMMIT");
    if (i == 3600) {
      /* The second connection catches up halfway, then replays the rest below. */
      tu_expect_int(db2, "SELECT count(*) FROM h", 3601);
      expect_self_first(db2, 3000, 601, 7);
    }
  }
  sqlite3_finalize(pH);
  sqlite3_finalize(pF);
  /* Deletes and updates, some in the delta (rows above 4024), some in the graph. */
  tu_exec(db, "DELETE FROM h WHERE (rowid - 1) % 97 = 0 AND rowid > 3000");
  tu_exec(db, "DELETE FROM f WHERE (rowid - 1) % 97 = 0 AND rowid > 3000");
  sqlite3_stmt *pUpd = tu_prepare(db, "UPDATE h SET embedding = ?2 WHERE rowid = ?1");
  sqlite3_stmt *pUpdF = tu_prepare(db, "UPDATE f SET embedding = ?2 WHERE rowid = ?1");
  for (int i = 4400; i < 4410; i++) {
    /* row i + 1 takes the vector of base row 9000 + i - 4400; expect_self_first skips them below */
    for (int t = 0; t < 2; t++) {
      sqlite3_stmt *p = t ? pUpdF : pUpd;
      sqlite3_bind_int64(p, 1, i + 1);
      sqlite3_bind_blob(p, 2, g_aBase + (size_t)(9000 + i - 4400) * g_dBase, g_dBase * 4, SQLITE_STATIC);
      assert_int_equal(sqlite3_step(p), SQLITE_DONE);
      sqlite3_reset(p);
    }
  }
  sqlite3_finalize(pUpd);
  sqlite3_finalize(pUpdF);
  int nDeleted = 0;
  for (int i = 3000; i < 4500; i++) nDeleted += i % 97 == 0;
  int nRows = 4500 - nDeleted;
  tu_expect_int(db, "SELECT rowid FROM h WHERE embedding MATCH (SELECT embedding FROM f WHERE rowid = 4401) AND k = 1",
                4401);
  expect_self_first(db, 3000, 1400, 1);
  expect_like_flat(db, nRows);
  /* The second connection replays the commits it has not seen. */
  expect_self_first(db2, 3000, 1400, 3);
  expect_like_flat(db2, nRows);
  sqlite3_close(db2);
  /* A new connection loads the snapshot and the log. */
  sqlite3_close(db);
  db = tu_open_again("delta.db");
  expect_self_first(db, 3000, 1400, 5);
  expect_like_flat(db, nRows);
  /* optimize writes a snapshot: the delta is folded into it. */
  tu_exec(db, "INSERT INTO h(h) VALUES ('optimize')");
  expect_self_first(db, 3000, 1400, 11);
  expect_like_flat(db, nRows);
  tu_close_remove(db, "delta.db");
}

static void test_recall_cohere_ip(void **state) {
  (void)state;
  int nBase, d, nQ, dQ, nGt, kGt;
  float *aBase = tu_read_fvecs("cohere_wiki_base900.fvecs", &nBase, &d);
  float *aQ = tu_read_fvecs("cohere_wiki_query100.fvecs", &nQ, &dQ);
  int *aGt = tu_read_ivecs("cohere_wiki_groundtruth_ip.ivecs", &nGt, &kGt);
  assert_int_equal(nBase, 900);
  assert_int_equal(d, 1024);
  assert_int_equal(dQ, 1024);
  assert_int_equal(nGt, nQ);
  sqlite3 *db = tu_open_fresh("cohere.db");
  tu_exec(db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 1024, metric = ip, index = 'Flat')");
  insert_rows(db, "t", aBase, d, 0, nBase);
  RecallSpec s = {aBase, nBase, d, M_IP, aQ, nQ, aGt, kGt, 1};
  double rStrict, r = measure_recall(db, "SELECT rowid, distance, score FROM t WHERE embedding MATCH ?1 AND k = 10", 0,
                                     &s, &rStrict);
  printf("    cohere_wiki ip Flat: recall@10 = %.4f (strict %.4f)\n", r, rStrict);
  assert_true(r == 1.0);
  /* Score is the inner product itself (-distance). */
  Hit aHit[4];
  int n = run_hits(db, "SELECT rowid, distance, score FROM t WHERE embedding MATCH ?1 AND k = 3", aQ, d, 0, aHit, 4);
  assert_int_equal(n, 3);
  for (int i = 0; i < 3; i++) {
    double rDot = -tu_ref_distance(aBase + (size_t)(aHit[i].iRowid - 1) * d, aQ, d, M_IP);
    assert_float_equal(aHit[i].rScore, rDot, 1e-4 * fmax(1.0, fabs(rDot)));
    assert_float_equal(aHit[i].rDist, -rDot, 1e-4 * fmax(1.0, fabs(rDot)));
  }
  tu_close_remove(db, "cohere.db");
  free(aBase);
  free(aQ);
  free(aGt);
}

/**************************************************************************************************
** Trainable indexes.
*/


/* IVF64 below the automatic threshold is searched exactly (even with nprobe=1); 'train' trains it. */
static void test_ivf_explicit_train(void **state) {
  (void)state;
  enum { N = 2000 };
  int *aGt = brute_force_all(g_aBase, N, g_dBase, g_aQuery, g_nQuery, M_L2, 10);
  RecallSpec s = bigann_spec(N, aGt, 10, 1);
  sqlite3 *db = open_bigann("ivf.db", "index = 'IVF64,Flat'", N);
  double r = measure_recall(db, zKnn10, 0, &s, 0);
  printf("    IVF64 untrained (%d rows): recall@10 = %.4f\n", N, r);
  assert_true(r == 1.0);
  r = measure_recall(db, zKnn10P, "nprobe=1", &s, 0);
  printf("    IVF64 untrained, nprobe=1: recall@10 = %.4f\n", r);
  assert_true(r == 1.0);
  /* Train explicitly. */
  tu_exec(db, "INSERT INTO t(t) VALUES ('train')");
  s.bExactDist = 1; /* IVF,Flat distances are exact */
  r = measure_recall(db, zKnn10P, "nprobe=64", &s, 0);
  printf("    IVF64 trained, nprobe=64: recall@10 = %.4f\n", r);
  assert_true(r == 1.0);
  double r1 = measure_recall(db, zKnn10P, "nprobe=1", &s, 0);
  printf("    IVF64 trained, nprobe=1: recall@10 = %.4f\n", r1);
  assert_true(r1 < 1.0);
  assert_true(r1 > 0.0);
  double r4 = measure_recall(db, zKnn10P, "nprobe=8", &s, 0);
  printf("    IVF64 trained, nprobe=8: recall@10 = %.4f\n", r4);
  assert_true(r4 >= r1);
  tu_expect_error(db, "SELECT rowid FROM t WHERE embedding MATCH vecstore_vector(zeroblob(512)) AND k = 1 "
                      "AND search_params = 'nprobee=4'",
                  "vecstore: ", "nprobee", (char *)0);
  /* Training survives a reopen. */
  sqlite3_close(db);
  db = tu_open_again("ivf.db");
  assert_true(measure_recall(db, zKnn10P, "nprobe=1", &s, 0) == r1);
  tu_exec(db, "INSERT INTO t(t) VALUES ('integrity-check')");
  tu_close_remove(db, "ivf.db");
  free(aGt);
}

/* Automatic training at commit once the table holds max(1000, 39 * nlist) vectors (IVF64: 2496). */
static void test_ivf_auto_train(void **state) {
  (void)state;
  enum { T = 39 * 64 };
  int *aGtBelow = brute_force_all(g_aBase, T - 1, g_dBase, g_aQuery, g_nQuery, M_L2, 10);
  int *aGtAt = brute_force_all(g_aBase, T, g_dBase, g_aQuery, g_nQuery, M_L2, 10);
  RecallSpec sBelow = bigann_spec(T - 1, aGtBelow, 10, 1);
  RecallSpec sAt = bigann_spec(T, aGtAt, 10, 1);
  /* 2495 rows: still exact whatever nprobe says. */
  sqlite3 *db = open_bigann("ivfauto.db", "index = 'IVF64,Flat'", T - 1);
  double r = measure_recall(db, zKnn10P, "nprobe=1", &sBelow, 0);
  printf("    IVF64 with %d rows, nprobe=1: recall@10 = %.4f\n", T - 1, r);
  assert_true(r == 1.0);
  /* One more row in the next commit crosses the threshold: trained. */
  insert_rows(db, "t", g_aBase, g_dBase, T - 1, 1);
  r = measure_recall(db, zKnn10P, "nprobe=1", &sAt, 0);
  printf("    IVF64 with %d rows (auto-trained), nprobe=1: recall@10 = %.4f\n", T, r);
  assert_true(r < 1.0);
  assert_true(r > 0.0);
  assert_true(measure_recall(db, zKnn10P, "nprobe=64", &sAt, 0) == 1.0);
  tu_close_remove(db, "ivfauto.db");
  /* A fresh table filled past the threshold in one commit. */
  enum { N2 = 2600 };
  int *aGt2 = brute_force_all(g_aBase, N2, g_dBase, g_aQuery, g_nQuery, M_L2, 10);
  RecallSpec s2 = bigann_spec(N2, aGt2, 10, 1);
  db = open_bigann("ivfauto2.db", "index = 'IVF64,Flat'", N2);
  r = measure_recall(db, zKnn10P, "nprobe=1", &s2, 0);
  printf("    IVF64 with %d rows in one commit, nprobe=1: recall@10 = %.4f\n", N2, r);
  assert_true(r < 1.0);
  assert_true(r > 0.0);
  assert_true(measure_recall(db, zKnn10P, "nprobe=64", &s2, 0) == 1.0);
  tu_close_remove(db, "ivfauto2.db");
  free(aGtBelow);
  free(aGtAt);
  free(aGt2);
}

/* Per-query parameters are checked against the table's index type even while a trainable index is not trained
** yet (an exact stand-in answers): a misspelt name must not be accepted only as long as the table is small. */
static void test_params_untrained(void **state) {
  (void)state;
  sqlite3 *db = open_bigann("untrained.db", "index = 'IVF64,Flat'", 50);
  assert_int_equal(tu_int(db, "SELECT count(*) FROM t WHERE embedding MATCH vecstore_vector(zeroblob(512)) AND k = 5 "
                              "AND search_params = 'nprobe=4'"),
                   5);
  tu_expect_error(db, "SELECT rowid FROM t WHERE embedding MATCH vecstore_vector(zeroblob(512)) AND k = 1 "
                      "AND search_params = 'nprobee=4'",
                  "vecstore: ", "nprobee", (char *)0);
  tu_expect_error(db, "SELECT rowid FROM t WHERE embedding MATCH vecstore_vector(zeroblob(512)) AND k = 1 "
                      "AND search_params = 'efSearch=16'",
                  "vecstore: ", "efSearch", (char *)0);
  tu_close_remove(db, "untrained.db");
}

/* 'train' with fewer vectors than the index needs fails at commit, names both counts, and changes nothing. */
static void test_train_too_few(void **state) {
  (void)state;
  enum { N = 100 };
  int *aGt = brute_force_all(g_aBase, N, g_dBase, g_aQuery, 10, M_L2, 10);
  RecallSpec s = bigann_spec(N, aGt, 10, 1);
  s.nQ = 10;
  sqlite3 *db = open_bigann("few.db", "index = 'IVF256,Flat'", N);
  tu_expect_error(db, "INSERT INTO t(t) VALUES ('train')", "vecstore: ", "256", "100", (char *)0);
  assert_int_equal(sqlite3_get_autocommit(db), 1);
  assert_int_equal(tu_int(db, "SELECT count(*) FROM t"), N);
  assert_true(measure_recall(db, zKnn10, 0, &s, 0) == 1.0);
  /* In an explicit transaction the error comes at COMMIT. */
  tu_exec(db, "BEGIN");
  tu_exec(db, "INSERT INTO t(rowid, id, embedding) VALUES (5000, 'extra', vecstore_vector(zeroblob(512)))");
  char *zErr = 0;
  int rc = sqlite3_exec(db, "INSERT INTO t(t) VALUES ('train'); COMMIT", 0, 0, &zErr);
  if (rc == SQLITE_OK) fail_msg("'train' with 101 rows for IVF256 committed");
  if (zErr == 0 || strstr(zErr, "vecstore: ") == 0 || strstr(zErr, "256") == 0 || strstr(zErr, "101") == 0)
    fail_msg("unclear error: %s", zErr ? zErr : "(none)");
  sqlite3_free(zErr);
  if (!sqlite3_get_autocommit(db)) tu_exec(db, "ROLLBACK");
  /* Usable afterwards: the failed transaction left nothing behind, new rows go in and are found. */
  assert_int_equal(tu_int(db, "SELECT count(*) FROM t"), N);
  assert_true(measure_recall(db, zKnn10, 0, &s, 0) == 1.0);
  tu_exec(db, "INSERT INTO t(rowid, id, embedding) VALUES (5001, 'zero', vecstore_vector(zeroblob(512)))");
  assert_int_equal(tu_int(db, "SELECT rowid FROM t WHERE embedding MATCH vecstore_vector(zeroblob(512)) AND k = 1"),
                   5001);
  tu_exec(db, "INSERT INTO t(t) VALUES ('integrity-check')");
  tu_close_remove(db, "few.db");
  free(aGt);
}

/* 'index=HNSW32' switches the index; 'search_params=...' changes the default; bad parameters are clear errors. */
static void test_index_switch_and_params(void **state) {
  (void)state;
  enum { N = 3000 };
  int *aGt = brute_force_all(g_aBase, N, g_dBase, g_aQuery, g_nQuery, M_L2, 10);
  RecallSpec s = bigann_spec(N, aGt, 10, 1);
  sqlite3 *db = open_bigann("switch.db", "", N);
  assert_true(measure_recall(db, zKnn10, 0, &s, 0) == 1.0);
  /* HNSW does not take nprobe: before the switch efSearch is not valid for Flat either. */
  tu_expect_error(db, "SELECT rowid FROM t WHERE embedding MATCH vecstore_vector(zeroblob(512)) AND k = 1 "
                      "AND search_params = 'efSearch=16'",
                  "vecstore: ", "efSearch", (char *)0);
  tu_exec(db, "INSERT INTO t(t) VALUES ('index=HNSW32')");
  tu_exec(db, "INSERT INTO t(t) VALUES ('integrity-check')");
  double r = measure_recall(db, zKnn10, 0, &s, 0);
  printf("    after index=HNSW32 (Faiss default efSearch): recall@10 = %.4f\n", r);
  tu_exec(db, "INSERT INTO t(t) VALUES ('search_params=efSearch=64')");
  r = measure_recall(db, zKnn10, 0, &s, 0);
  printf("    after search_params=efSearch=64: recall@10 = %.4f\n", r);
  assert_true(r >= 0.95);
  r = measure_recall(db, zKnn10P, "efSearch=128", &s, 0);
  assert_true(r >= 0.95);
  /* Invalid parameter names, per query and as a command. */
  tu_expect_error(db, "SELECT rowid FROM t WHERE embedding MATCH vecstore_vector(zeroblob(512)) AND k = 1 "
                      "AND search_params = 'efSearhc=10'",
                  "vecstore: ", "efSearhc", (char *)0);
  tu_expect_error(db, "SELECT rowid FROM t WHERE embedding MATCH vecstore_vector(zeroblob(512)) AND k = 1 "
                      "AND search_params = 'nprobe=4'",
                  "vecstore: ", "nprobe", (char *)0);
  tu_expect_error(db, "SELECT rowid FROM t WHERE embedding MATCH vecstore_vector(zeroblob(512)) AND k = 1 "
                      "AND search_params = 'efSearch'",
                  "vecstore: ", "efSearch", (char *)0);
  tu_expect_error(db, "INSERT INTO t(t) VALUES ('search_params=bogus=1')", "vecstore: ", "bogus", (char *)0);
  /* The failed command left the default in place. */
  assert_true(measure_recall(db, zKnn10, 0, &s, 0) >= 0.95);
  tu_close_remove(db, "switch.db");

  /* An IVF default set by command is used by queries without parameters, and persists. */
  db = open_bigann("switch2.db", "index = 'Flat'", N);
  tu_exec(db, "INSERT INTO t(t) VALUES ('index=IVF32,Flat')");
  tu_exec(db, "INSERT INTO t(t) VALUES ('train')");
  tu_exec(db, "INSERT INTO t(t) VALUES ('search_params=nprobe=32')");
  r = measure_recall(db, zKnn10, 0, &s, 0);
  printf("    IVF32 default nprobe=32: recall@10 = %.4f\n", r);
  assert_true(r == 1.0);
  tu_exec(db, "INSERT INTO t(t) VALUES ('search_params=nprobe=1')");
  double r1 = measure_recall(db, zKnn10, 0, &s, 0);
  printf("    IVF32 default nprobe=1: recall@10 = %.4f\n", r1);
  assert_true(r1 < 1.0 && r1 > 0.0);
  assert_true(measure_recall(db, zKnn10P, "nprobe=32", &s, 0) == 1.0);
  sqlite3_close(db);
  db = tu_open_again("switch2.db");
  assert_true(measure_recall(db, zKnn10, 0, &s, 0) == r1);
  tu_close_remove(db, "switch2.db");
  free(aGt);
}

/* Every index type answers k = 10 with 10 rows in non-decreasing distance once trained. */
static void test_index_types(void **state) {
  (void)state;
  enum { N = 1000, NQ = 20 };
  const char *azIndex[] = {"Flat", "HNSW32", "IVF16,Flat", "HNSW32,SQ8", "IVF16,SQ8", "PQ8"};
  /* Faiss's 'PQ8' also runs polysemous training (simulated annealing inside Faiss, no vecstore code), which
  ** takes most of an hour under valgrind: there 'PQ8np' exercises the same vecstore paths. */
  if (RUNNING_ON_VALGRIND) azIndex[5] = "PQ8np";
  int aExact[] = {1, 1, 1, 0, 0, 0};
  int *aGt = brute_force_all(g_aBase, N, g_dBase, g_aQuery, NQ, M_L2, 10);
  sqlite3 *db = tu_open_fresh("types.db");
  for (size_t i = 0; i < sizeof(azIndex) / sizeof(azIndex[0]); i++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tu_exec_fmt(db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 128, index = '%q')", azIndex[i]);
    insert_rows(db, "t", g_aBase, g_dBase, 0, N);
    tu_exec(db, "INSERT INTO t(t) VALUES ('train')");
    RecallSpec s = bigann_spec(N, aGt, 10, aExact[i]);
    s.nQ = NQ;
    double r = measure_recall(db, zKnn10, 0, &s, 0);
    double rL = measure_recall(db, "SELECT rowid, distance, score FROM t WHERE embedding MATCH ?1 "
                                   "ORDER BY distance LIMIT 10", 0, &s, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("    %-12s trained, %d rows: recall@10 = %.4f (%.2f s)\n", azIndex[i], N, r,
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    assert_true(r == rL);
    assert_true(r > 0.2);
    if (i == 0) assert_true(r == 1.0);
    tu_exec(db, "INSERT INTO t(t) VALUES ('integrity-check')");
    tu_exec(db, "DROP TABLE t");
  }
  tu_close_remove(db, "types.db");
  free(aGt);
}

/* A search among given rows (rowid IN a list) on every kind of index: rows the transaction has not touched are
** scored from the index's own vectors when it keeps them (Flat, HNSW), from the vectors table otherwise (SQ, IVF);
** rows updated or deleted in the open transaction from their new state. Long streams (more than the 256 nearest
** ordered up front) come back complete, in distance order, with the reference distances. */
static void test_among_every_index(void **state) {
  (void)state;
  enum { N = 3000, D = 16 };
  sqlite3 *db = tu_open_fresh("among.db");
  uint64_t seed = 77;
  float *aBase = malloc(sizeof(float) * N * D), q[D];
  for (int i = 0; i < N * D; i++) aBase[i] = (float)(tu_rand_unit(&seed) * 2.0 - 1.0);
  for (int i = 0; i < D; i++) q[i] = (float)(tu_rand_unit(&seed) * 2.0 - 1.0);
  const char *azIndex[] = {"Flat", "HNSW16", "HNSW16,SQ8", "IVF4,Flat"};
  for (int iIdx = 0; iIdx < 4; iIdx++) {
    for (int eM = 0; eM < 3; eM++) {
      char zSql[300];
      snprintf(zSql, sizeof(zSql), "CREATE VIRTUAL TABLE t USING vecstore(dim = %d, metric = %s, index = '%s')", D,
               azMetric[eM], azIndex[iIdx]);
      tu_exec(db, zSql);
      insert_rows(db, "t", aBase, D, 0, N);
      /* In a transaction: rows 1..200 get new vectors (the negated old ones), every 7th row is deleted. */
      float *aNow = malloc(sizeof(float) * N * D);
      memcpy(aNow, aBase, sizeof(float) * N * D);
      int *abGone = calloc(N, sizeof(int));
      tu_exec(db, "BEGIN");
      sqlite3_stmt *pUpd = tu_prepare(db, "UPDATE t SET embedding = ?2 WHERE rowid = ?1");
      for (int i = 0; i < 200; i++) {
        for (int j = 0; j < D; j++) aNow[i * D + j] = -aBase[i * D + j];
        sqlite3_bind_int64(pUpd, 1, i + 1);
        sqlite3_bind_blob(pUpd, 2, aNow + i * D, D * 4, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(pUpd), SQLITE_DONE);
        sqlite3_reset(pUpd);
      }
      sqlite3_finalize(pUpd);
      tu_exec(db, "DELETE FROM t WHERE rowid % 7 = 0");
      for (int i = 0; i < N; i++) abGone[i] = (i + 1) % 7 == 0;
      /* Every even rowid: 1,500 rows asked, those not deleted expected. */
      sqlite3_stmt *pStmt = tu_prepare(db,
          "WITH RECURSIVE s(x) AS (SELECT 2 UNION ALL SELECT x + 2 FROM s WHERE x < 3000) "
          "SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND rowid IN (SELECT x FROM s)");
      sqlite3_bind_blob(pStmt, 1, q, D * 4, SQLITE_STATIC);
      int nWant = 0;
      for (int i = 1; i < N; i += 2) nWant += !abGone[i];
      int n = 0, rc;
      double rPrev = -INFINITY;
      while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
        sqlite3_int64 iRowid = sqlite3_column_int64(pStmt, 0);
        double rDist = sqlite3_column_double(pStmt, 1);
        if (iRowid % 2 != 0 || iRowid < 1 || iRowid > N || abGone[iRowid - 1])
          fail_msg("%s %s: row %lld should not be returned", azIndex[iIdx], azMetric[eM], (long long)iRowid);
        double rRef = tu_ref_distance(q, aNow + (iRowid - 1) * D, D, eM);
        if (fabs(rDist - rRef) > 1e-4 * fmax(1.0, fabs(rRef)))
          fail_msg("%s %s: row %lld distance %.9g, reference %.9g", azIndex[iIdx], azMetric[eM], (long long)iRowid,
                   rDist, rRef);
        if (rDist < rPrev - 1e-6)
          fail_msg("%s %s: row %d out of order (%.9g after %.9g)", azIndex[iIdx], azMetric[eM], n, rDist, rPrev);
        rPrev = rDist;
        n++;
      }
      if (rc != SQLITE_DONE) fail_msg("%s", sqlite3_errmsg(db));
      sqlite3_finalize(pStmt);
      assert_int_equal(n, nWant);
      tu_exec(db, "ROLLBACK");
      tu_exec(db, "DROP TABLE t");
      free(aNow);
      free(abGone);
    }
  }
  free(aBase);
  tu_close_remove(db, "among.db");
}

/* Distances must stay finite in float32 (Faiss's kernels would give inf - inf = NaN and drop rows): a vector whose
** squared norm passes FLT_MAX / 4 is refused, as embedding or query, and vectors just inside the bound are
** searched completely and in order with finite distances, by the index, the exact scan and among given rows. */
static void test_vector_magnitude_bound(void **state) {
  (void)state;
  enum { N = 1500 };
  sqlite3 *db = tu_open_fresh("magnitude.db");
  const double rS = 9.1e18; /* rS^2 = 8.28e37, just under the bound */
  float *aVec = malloc(sizeof(float) * N * 2); /* rowid i at angle 2 pi i / N */
  for (int i = 1; i <= N; i++) {
    double rAngle = 6.283185307179586 * i / N;
    aVec[2 * (i - 1)] = (float)(rS * cos(rAngle));
    aVec[2 * (i - 1) + 1] = (float)(rS * sin(rAngle));
  }
  for (int iCase = 0; iCase < 4; iCase++) {
    char zSql[200];
    snprintf(zSql, sizeof(zSql), "CREATE VIRTUAL TABLE t USING vecstore(dim = 2, metric = %s, index = '%s')",
             iCase % 2 ? "ip" : "l2", iCase / 2 ? "HNSW8" : "Flat");
    tu_exec(db, zSql);
    tu_expect_error(db, "INSERT INTO t(embedding) VALUES ('[3e38, 3e38]')", "vecstore: ", "embedding is too large",
                    "squared norm", NULL);
    tu_expect_error(db, "SELECT rowid FROM t WHERE embedding MATCH '[1e19, 1e19]' AND k = 1", "vecstore: ",
                    "query vector is too large", NULL);
    tu_insert_vectors(db, "INSERT INTO t(rowid, embedding) VALUES (?1, ?2)", aVec, N, 2);
    float q[2] = {(float)-rS, 0.0f};
    const char *azQuery[] = {"SELECT rowid, distance FROM t WHERE embedding MATCH ?1",
                             "SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND k = 20",
                             ("WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 1500) "
                              "SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND rowid IN (SELECT x FROM s)")};
    for (int iQ = 0; iQ < 3; iQ++) {
      sqlite3_stmt *pStmt = tu_prepare(db, azQuery[iQ]);
      sqlite3_bind_blob(pStmt, 1, q, sizeof(q), SQLITE_STATIC);
      char *abSeen = calloc(N + 1, 1);
      int n = 0, rc;
      double rPrev = -INFINITY;
      while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
        sqlite3_int64 iRowid = sqlite3_column_int64(pStmt, 0);
        assert_true(iRowid >= 1 && iRowid <= N);
        if (abSeen[iRowid]) fail_msg("case %d query %d: row %lld returned twice", iCase, iQ, (long long)iRowid);
        abSeen[iRowid] = 1;
        assert_int_equal(sqlite3_column_type(pStmt, 1), SQLITE_FLOAT);
        double rDist = sqlite3_column_double(pStmt, 1);
        if (!isfinite(rDist) || rDist < rPrev - 1e-6 * fabs(rPrev))
          fail_msg("case %d query %d: row %d distance %g after %g", iCase, iQ, n, rDist, rPrev);
        rPrev = rDist;
        n++;
      }
      if (rc != SQLITE_DONE) fail_msg("case %d query %d: %s", iCase, iQ, sqlite3_errmsg(db));
      sqlite3_finalize(pStmt);
      assert_int_equal(n, iQ == 1 ? 20 : N);
      free(abSeen);
    }
    tu_exec(db, "DROP TABLE t");
  }
  free(aVec);
  tu_close_remove(db, "magnitude.db");
}

/* Index types whose Faiss search refuses SearchParameters (LSH, additive quantizers, IVF fast-scan) still search,
** inside a transaction too (where other types get a selector), and per-query nprobe reaches IVF fast-scan. */
static void test_index_types_without_params(void **state) {
  (void)state;
  enum { N = 1200, D = 8 };
  sqlite3 *db = tu_open_fresh("noparams.db");
  uint64_t seed = 5;
  float *aBase = malloc(sizeof(float) * N * D);
  for (int i = 0; i < N * D; i++) aBase[i] = (float)tu_rand_unit(&seed);
  const char *azIndex[] = {"LSH", "ITQ,LSH", "LSQ1x4", "IVF4,PQ2x4fs"};
  for (int x = 0; x < 4; x++) {
    char zSql[200];
    snprintf(zSql, sizeof(zSql), "CREATE VIRTUAL TABLE t USING vecstore(dim = %d, index = '%s')", D, azIndex[x]);
    tu_exec(db, zSql);
    insert_rows(db, "t", aBase, D, 0, N);
    tu_exec(db, "INSERT INTO t(t) VALUES ('train')");
    const char *zQ = "SELECT count(*) FROM (SELECT rowid FROM t WHERE embedding MATCH '[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5]'"
                     " AND k = 5)";
    assert_int_equal(tu_int(db, zQ), 5);
    tu_exec(db, "BEGIN");
    tu_exec(db, "DELETE FROM t WHERE rowid % 3 = 0");
    assert_int_equal(tu_int(db, zQ), 5);
    assert_int_equal(tu_int(db, "SELECT count(*) FROM (SELECT rowid FROM t WHERE embedding MATCH "
                                "'[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5]') WHERE rowid % 3 = 0"), 0);
    tu_exec(db, "COMMIT");
    assert_int_equal(tu_int(db, "SELECT count(*) FROM (SELECT rowid FROM t WHERE embedding MATCH "
                                "'[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5]')"), N - N / 3);
    if (x == 3) {
      assert_int_equal(tu_int(db, "SELECT count(*) FROM (SELECT rowid FROM t WHERE embedding MATCH "
                                  "'[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5]' AND k = 5 AND search_params = 'nprobe=4')"), 5);
    }
    tu_exec(db, "DROP TABLE t");
  }
  free(aBase);
  tu_close_remove(db, "noparams.db");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_knn_fake_embeddings),
      cmocka_unit_test(test_knn_ip_cosine_known),
      cmocka_unit_test(test_knn_metrics_random),
      cmocka_unit_test(test_knn_errors),
      cmocka_unit_test(test_point_lookups_and_scan),
      cmocka_unit_test(test_recall_bigann_flat),
      cmocka_unit_test(test_recall_bigann_hnsw),
      cmocka_unit_test(test_recall_cohere_ip),
      cmocka_unit_test(test_ivf_explicit_train),
      cmocka_unit_test(test_ivf_auto_train),
      cmocka_unit_test(test_params_untrained),
      cmocka_unit_test(test_train_too_few),
      cmocka_unit_test(test_index_switch_and_params),
      cmocka_unit_test(test_index_types),
      cmocka_unit_test(test_among_every_index),
      cmocka_unit_test(test_vector_magnitude_bound),
      cmocka_unit_test(test_index_types_without_params),
      cmocka_unit_test(test_hnsw_exact_delta),
  };
  return cmocka_run_group_tests_name("search", tests, group_setup, group_teardown);
}
