#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[512];

const char *tu_dir(void) {
  if (g_dir[0] == 0) {
    mkdir("build", 0755);
    mkdir("build/test-tmp", 0755);
    snprintf(g_dir, sizeof(g_dir), "build/test-tmp/run-%d", (int)getpid());
    mkdir(g_dir, 0755);
  }
  return g_dir;
}

char *tu_path(const char *zName) { return sqlite3_mprintf("%s/%s", tu_dir(), zName); }

void tu_remove_db(const char *zPath) {
  const char *aSuffix[] = {"", "-wal", "-shm", "-journal"};
  for (int i = 0; i < 4; i++) {
    char *z = sqlite3_mprintf("%s%s", zPath, aSuffix[i]);
    unlink(z);
    sqlite3_free(z);
  }
}

sqlite3 *tu_open(const char *zPath) {
  sqlite3 *db = 0;
  int rc = sqlite3_open(zPath, &db);
  if (rc != SQLITE_OK) fail_msg("open %s: %s", zPath, sqlite3_errmsg(db));
  sqlite3_enable_load_extension(db, 1);
  char *zErr = 0;
  const char *zExt = getenv("VECSTORE_EXT");
  rc = sqlite3_load_extension(db, zExt ? zExt : "build/vecstore", 0, &zErr);
  if (rc != SQLITE_OK) fail_msg("load extension: %s", zErr ? zErr : "?");
  sqlite3_busy_timeout(db, 5000);
  return db;
}

sqlite3 *tu_open_again(const char *zName) {
  char *zPath = tu_path(zName);
  sqlite3 *db = tu_open(zPath);
  sqlite3_free(zPath);
  return db;
}

sqlite3 *tu_open_fresh(const char *zName) {
  char *zPath = tu_path(zName);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
  return tu_open_again(zName);
}

void tu_close_remove(sqlite3 *db, const char *zName) {
  assert_int_equal(sqlite3_close(db), SQLITE_OK);
  char *zPath = tu_path(zName);
  tu_remove_db(zPath);
  sqlite3_free(zPath);
}

static int hit_cmp(const void *pA, const void *pB) {
  const TuHit *a = pA, *b = pB;
  if (a->rDist != b->rDist) return a->rDist < b->rDist ? -1 : 1;
  return (a->iRowid > b->iRowid) - (a->iRowid < b->iRowid);
}

int tu_hits_nearest(TuHit *a, int n, int k) {
  if (n > 1) qsort(a, (size_t)n, sizeof(TuHit), hit_cmp);
  return n < k ? n : k;
}

void tu_exec_fmt(sqlite3 *db, const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  char *zSql = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  tu_exec(db, zSql);
  sqlite3_free(zSql);
}

void tu_exec(sqlite3 *db, const char *zSql) {
  char *zErr = 0;
  int rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
  if (rc != SQLITE_OK) fail_msg("SQL failed: %s\n  in: %s", zErr ? zErr : sqlite3_errstr(rc), zSql);
}

char *tu_exec_error(sqlite3 *db, const char *zSql) {
  char *zErr = 0;
  int rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
  if (rc == SQLITE_OK) fail_msg("SQL succeeded but an error was expected: %s", zSql);
  if (zErr == 0) zErr = sqlite3_mprintf("%s", sqlite3_errstr(rc));
  return zErr;
}

void tu_expect_error(sqlite3 *db, const char *zSql, ...) {
  char *zErr = tu_exec_error(db, zSql);
  va_list ap;
  va_start(ap, zSql);
  const char *zFrag;
  while ((zFrag = va_arg(ap, const char *)) != 0) {
    if (strstr(zErr, zFrag) == 0) fail_msg("error '%s' lacks '%s'\n  in: %s", zErr, zFrag, zSql);
  }
  va_end(ap);
  sqlite3_free(zErr);
}

sqlite3_stmt *tu_prepare(sqlite3 *db, const char *zSql) {
  sqlite3_stmt *pStmt = 0;
  if (sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0) != SQLITE_OK)
    fail_msg("prepare failed: %s\n  in: %s", sqlite3_errmsg(db), zSql);
  return pStmt;
}

static sqlite3_stmt *first_row(sqlite3 *db, const char *zSql) {
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  int rc = sqlite3_step(pStmt);
  if (rc != SQLITE_ROW) fail_msg("no row (%s): %s\n  in: %s", sqlite3_errstr(rc), sqlite3_errmsg(db), zSql);
  return pStmt;
}

sqlite3_int64 tu_int(sqlite3 *db, const char *zSql) {
  sqlite3_stmt *pStmt = first_row(db, zSql);
  sqlite3_int64 v = sqlite3_column_int64(pStmt, 0);
  sqlite3_finalize(pStmt);
  return v;
}

double tu_double(sqlite3 *db, const char *zSql) {
  sqlite3_stmt *pStmt = first_row(db, zSql);
  double v = sqlite3_column_double(pStmt, 0);
  sqlite3_finalize(pStmt);
  return v;
}

char *tu_text(sqlite3 *db, const char *zSql) {
  sqlite3_stmt *pStmt = first_row(db, zSql);
  const unsigned char *z = sqlite3_column_text(pStmt, 0);
  char *zOut = sqlite3_mprintf("%s", z ? (const char *)z : "NULL");
  sqlite3_finalize(pStmt);
  return zOut;
}

void tu_expect_int(sqlite3 *db, const char *zSql, sqlite3_int64 iWant) {
  sqlite3_int64 i = tu_int(db, zSql);
  if (i != iWant) fail_msg("got %lld, expected %lld\n  in: %s", (long long)i, (long long)iWant, zSql);
}

char *tu_rows(sqlite3 *db, const char *zSql, const char *zRowSep, const char *zRealFmt) {
  sqlite3_stmt *pStmt = tu_prepare(db, zSql);
  sqlite3_str *p = sqlite3_str_new(0);
  int rc, nRow = 0;
  while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    if (nRow++) sqlite3_str_appendall(p, zRowSep);
    for (int i = 0; i < sqlite3_column_count(pStmt); i++) {
      if (i) sqlite3_str_appendchar(p, 1, '|');
      switch (sqlite3_column_type(pStmt, i)) {
        case SQLITE_NULL: sqlite3_str_appendall(p, "NULL"); break;
        case SQLITE_INTEGER: sqlite3_str_appendf(p, "%lld", sqlite3_column_int64(pStmt, i)); break;
        case SQLITE_FLOAT: sqlite3_str_appendf(p, zRealFmt, sqlite3_column_double(pStmt, i)); break;
        default: sqlite3_str_appendall(p, (const char *)sqlite3_column_text(pStmt, i)); break;
      }
    }
  }
  if (rc != SQLITE_DONE) fail_msg("query failed: %s\n  in: %s", sqlite3_errmsg(db), zSql);
  sqlite3_finalize(pStmt);
  char *z = sqlite3_str_finish(p);
  return z ? z : sqlite3_mprintf("");
}

void tu_expect_rows(sqlite3 *db, const char *zSql, const char *zRowSep, const char *zRealFmt, const char *zWant) {
  char *z = tu_rows(db, zSql, zRowSep, zRealFmt);
  if (strcmp(z, zWant) != 0) fail_msg("got '%s', expected '%s'\n  in: %s", z, zWant, zSql);
  sqlite3_free(z);
}

void tu_insert_vectors(sqlite3 *db, const char *zInsert, const float *aVec, int n, int d) {
  tu_exec(db, "BEGIN");
  sqlite3_stmt *pStmt = tu_prepare(db, zInsert);
  for (int i = 0; i < n; i++) {
    sqlite3_bind_int64(pStmt, 1, (sqlite3_int64)i + 1);
    sqlite3_bind_blob(pStmt, 2, aVec + (size_t)i * d, d * 4, SQLITE_STATIC);
    int rc = sqlite3_step(pStmt);
    if (rc != SQLITE_DONE) fail_msg("insert of row %d failed: %s\n  in: %s", i, sqlite3_errmsg(db), zInsert);
    sqlite3_reset(pStmt);
  }
  sqlite3_finalize(pStmt);
  tu_exec(db, "COMMIT");
}

char *tu_vec_json(const float *a, int d) {
  sqlite3_str *p = sqlite3_str_new(0);
  sqlite3_str_appendchar(p, 1, '[');
  for (int i = 0; i < d; i++) sqlite3_str_appendf(p, "%s%.9g", i ? "," : "", (double)a[i]);
  sqlite3_str_appendchar(p, 1, ']');
  return sqlite3_str_finish(p);
}

const char *tu_data_path(const char *zName) {
  static char zBuf[1024];
  snprintf(zBuf, sizeof(zBuf), "tests/data/%s", zName);
  return zBuf;
}

static void *read_vecs(const char *zName, int *pn, int *pd) {
  const char *zPath = tu_data_path(zName);
  FILE *f = fopen(zPath, "rb");
  if (!f) fail_msg("cannot open %s", zPath);
  fseek(f, 0, SEEK_END);
  long nByte = ftell(f);
  fseek(f, 0, SEEK_SET);
  int32_t d = 0;
  if (fread(&d, 4, 1, f) != 1 || d <= 0) fail_msg("bad vecs file %s", zPath);
  long nRow = nByte / (4L * (d + 1));
  char *aOut = malloc((size_t)nRow * d * 4);
  fseek(f, 0, SEEK_SET);
  for (long i = 0; i < nRow; i++) {
    int32_t dd;
    if (fread(&dd, 4, 1, f) != 1 || dd != d) fail_msg("bad row %ld in %s", i, zPath);
    if (fread(aOut + (size_t)i * d * 4, 4, (size_t)d, f) != (size_t)d) fail_msg("short %s", zPath);
  }
  fclose(f);
  *pn = (int)nRow;
  *pd = d;
  return aOut;
}

float *tu_read_fvecs(const char *zName, int *pn, int *pd) { return read_vecs(zName, pn, pd); }
int *tu_read_ivecs(const char *zName, int *pn, int *pd) { return read_vecs(zName, pn, pd); }

uint64_t tu_rand(uint64_t *pState) {
  uint64_t x = *pState ? *pState : 0x9E3779B97F4A7C15ull;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *pState = x;
  return x;
}

double tu_rand_unit(uint64_t *pState) { return (double)(tu_rand(pState) >> 11) / 9007199254740992.0; }

sqlite3 *tu_db;
static char *g_zFixturePath;
static int g_nFixture;

int tu_fixture_open(const char *zPrefix) {
  char *zName = sqlite3_mprintf("%s-%d.db", zPrefix, ++g_nFixture);
  g_zFixturePath = tu_path(zName);
  sqlite3_free(zName);
  tu_remove_db(g_zFixturePath);
  tu_db = tu_open(g_zFixturePath);
  return 0;
}

const char *tu_fixture_path(void) { return g_zFixturePath; }

int tu_fixture_close(void) {
  sqlite3_close(tu_db);
  tu_db = 0;
  tu_remove_db(g_zFixturePath);
  sqlite3_free(g_zFixturePath);
  g_zFixturePath = 0;
  return 0;
}

void tu_expect_text(sqlite3 *db, const char *zSql, const char *zWant) {
  char *z = tu_text(db, zSql);
  if (strcmp(z, zWant) != 0) fail_msg("got '%s', expected '%s'\n  in: %s", z, zWant, zSql);
  sqlite3_free(z);
}

double tu_ref_distance(const float *a, const float *b, int d, int eMetric) {
  double rDot = 0, rL2 = 0, rNa = 0, rNb = 0;
  for (int i = 0; i < d; i++) {
    double x = a[i], y = b[i];
    rDot += x * y;
    rL2 += (x - y) * (x - y);
    rNa += x * x;
    rNb += y * y;
  }
  if (eMetric == TU_L2) return rL2;
  if (eMetric == TU_IP) return -rDot;
  if (rNa == 0 || rNb == 0) return 1.0;
  return 1.0 - rDot / (sqrt(rNa) * sqrt(rNb));
}

double tu_ref_score(double rDist, int eMetric) {
  if (eMetric == TU_L2) return 1.0 - sqrt(rDist) / sqrt(2.0);
  if (eMetric == TU_COSINE) return 1.0 - rDist;
  return -rDist;
}

void tu_topk_add(int *aRow, double *aDist, int *pn, int k, int iRow, double rDist) {
  if (*pn == k && (k <= 0 || rDist >= aDist[k - 1])) return;
  int j = *pn < k ? (*pn)++ : k - 1;
  while (j > 0 && aDist[j - 1] > rDist) {
    aDist[j] = aDist[j - 1];
    aRow[j] = aRow[j - 1];
    j--;
  }
  aDist[j] = rDist;
  aRow[j] = iRow;
}

int tu_brute_force(const float *aBase, int nBase, int d, const float *q, int eMetric, int k, int *aRow,
                   double *aDist) {
  int n = 0;
  for (int i = 0; i < nBase; i++) {
    tu_topk_add(aRow, aDist, &n, k, i, tu_ref_distance(aBase + (size_t)i * d, q, d, eMetric));
  }
  return n;
}

uint64_t tu_chunk_checksum(uint64_t h, const unsigned char *a, size_t n) {
  const uint64_t m = 0x9E3779B97F4A7C15ull;
  size_t i = 0;
  h ^= (uint64_t)n * m;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, a + i, 8);
    h = (h ^ w) * m;
    h ^= h >> 29;
  }
  for (; i < n; i++) {
    h = (h ^ a[i]) * m;
    h ^= h >> 29;
  }
  return h;
}

void tu_copy_file(const char *zFrom, const char *zTo) {
  FILE *in = fopen(zFrom, "rb");
  if (in == 0) fail_msg("cannot open %s", zFrom);
  tu_remove_db(zTo);
  FILE *out = fopen(zTo, "wb");
  if (out == 0) fail_msg("cannot create %s", zTo);
  char aBuf[65536];
  size_t n;
  while ((n = fread(aBuf, 1, sizeof(aBuf), in)) > 0) {
    if (fwrite(aBuf, 1, n, out) != n) fail_msg("short write to %s", zTo);
  }
  fclose(in);
  fclose(out);
}
