/*
** fuzz_sql: sequences of SQL statements against one vecstore table: writes (also writes fed by a search of the
** same table), searches of every kind, commands, transactions, savepoints and VACUUM, reopening the file, and a
** second connection that stays open, checks what it sees and writes while the first has no transaction open.
**
** The input is decoded, never parsed as SQL: three setup bytes choose the index (Flat, HNSW, IVF, SQ, PQ, LSH,
** ...), dim (1..8), metric, declared columns (page INTEGER, src TEXT), embedder=hash, a default search_params,
** and a database file (WAL or rollback journal, in a per-process directory) or :memory:; then each op is one
** byte plus the bytes of its arguments (rowids 1..24 and a few special ones, ids 'a'..'h', vectors of small
** binary fractions, sometimes NaN or the wrong length, as BLOB or JSON). At most MAX_OPS ops run, so an input
** takes milliseconds.
**
** Findings besides the sanitizers (each prints the last statements and aborts):
**   - any statement failing with SQLITE_CORRUPT, SQLITE_INTERNAL, SQLITE_MISUSE or SQLITE_NOMEM;
**   - 'integrity-check' or PRAGMA quick_check failing (nothing here damages the file);
**   - a search returning more than k rows, a row twice, or a rowid the table does not hold;
**   - a plain k search (or LIMIT/OFFSET) not returning min(k, rows) rows, a declared-column search not
**     returning min(k, matching rows), a search among given rowids returning others;
**   - a search without k not returning exactly the rows a scan returns (read-your-writes, savepoints);
**   - distances that differ from vecstore_distance() of the stored embedding (exact indexes), or are out of
**     order, or are not the brute-force nearest (Flat only);
**   - after closing and reopening the file (uncommitted work rolled back first), a different set of rows,
**     ids, embeddings or metadata; a second connection seeing other than the committed rows.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz_common.h"

#include <dirent.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_OPS 48
#define MAX_ROWS 1024
#define MAX_DIM 8
#define TRACE_N 48

typedef long long i64;

/**************************************************************************************************
** State of one input.
*/
static struct {
  sqlite3 *db;
  int bFile;
  sqlite3 *db2; /* the second connection, while open */
  char zPath[600];
  int nDim;
  int eMetric; /* 0 l2, 1 ip, 2 cosine */
  int nCol;    /* declared columns: page INTEGER, src TEXT */
  int bEmbedder;
  int bExactOnly;  /* every index description ever configured was Flat */
  int bQuantized;  /* some index description ever configured quantises (distances are approximate) */
  char aTrace[TRACE_N][1200];
  int nTrace;
} S;

static char g_zDir[512];

static const char *const azMetric[] = {"l2", "ip", "cosine"};

static void remove_files(void) {
  static const char *const azSuffix[] = {"", "-wal", "-shm", "-journal"};
  if (g_zDir[0] == 0) return;
  for (int i = 0; i < 4; i++) {
    char z[700];
    snprintf(z, sizeof(z), "%s/f.db%s", g_zDir, azSuffix[i]);
    unlink(z);
  }
}

static void remove_dir(void) {
  remove_files();
  if (g_zDir[0]) rmdir(g_zDir);
}

static void trace(const char *zFmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *zFmt, ...) {
  static int bPrint = -1; /* VECSTORE_FUZZ_TRACE=1: print every statement as it runs, with the time since the last */
  static struct timespec tLast;
  if (bPrint < 0) bPrint = getenv("VECSTORE_FUZZ_TRACE") != 0;
  va_list ap;
  va_start(ap, zFmt);
  vsnprintf(S.aTrace[S.nTrace % TRACE_N], sizeof(S.aTrace[0]), zFmt, ap);
  va_end(ap);
  if (bPrint) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    double ms = (double)(t.tv_sec - tLast.tv_sec) * 1e3 + (double)(t.tv_nsec - tLast.tv_nsec) / 1e6;
    fprintf(stderr, "[%8.2f ms] %s\n", tLast.tv_sec ? ms : 0.0, S.aTrace[S.nTrace % TRACE_N]);
    tLast = t;
  }
  S.nTrace++;
}

#define FAIL(...)                                                                                 \
  do {                                                                                            \
    int iFirst_ = S.nTrace > TRACE_N ? S.nTrace - TRACE_N : 0;                                    \
    fprintf(stderr, "---- last %d statements of %d ----\n", S.nTrace - iFirst_, S.nTrace);       \
    for (int i_ = iFirst_; i_ < S.nTrace; i_++) fprintf(stderr, "  %s\n", S.aTrace[i_ % TRACE_N]); \
    fz_fail(__VA_ARGS__);                                                                         \
  } while (0)

/**************************************************************************************************
** Values and statements.
*/
typedef struct Val {
  int eType; /* SQLITE_NULL, SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB; 0: not bound */
  i64 i;
  double r;
  char z[160]; /* text; blob bytes */
  int n;
} Val;

static Val v_null(void) {
  Val v;
  memset(&v, 0, sizeof(v));
  v.eType = SQLITE_NULL;
  return v;
}
static Val v_int(i64 i) {
  Val v = v_null();
  v.eType = SQLITE_INTEGER;
  v.i = i;
  return v;
}
static Val v_real(double r) {
  Val v = v_null();
  v.eType = SQLITE_FLOAT;
  v.r = r;
  return v;
}
static Val v_text(const char *z) {
  Val v = v_null();
  v.eType = SQLITE_TEXT;
  snprintf(v.z, sizeof(v.z), "%s", z);
  v.n = (int)strlen(v.z);
  return v;
}

/* Appends printf-style text to z (size n, holding *pm bytes), truncating at the end of the buffer. */
static void append(char *z, size_t n, size_t *pm, const char *zFmt, ...) __attribute__((format(printf, 4, 5)));
static void append(char *z, size_t n, size_t *pm, const char *zFmt, ...) {
  if (*pm + 1 >= n) return;
  va_list ap;
  va_start(ap, zFmt);
  int k = vsnprintf(z + *pm, n - *pm, zFmt, ap);
  va_end(ap);
  if (k > 0) *pm = *pm + (size_t)k < n ? *pm + (size_t)k : n - 1;
}

/* Appends v as an SQL literal (a BLOB vector as vecstore_vector('[...]')) to z. */
static void v_describe(const Val *v, char *z, size_t n, size_t *pm) {
  switch (v->eType) {
    case SQLITE_INTEGER: append(z, n, pm, "%lld", v->i); break;
    case SQLITE_FLOAT: append(z, n, pm, "%.17g", v->r); break;
    case SQLITE_TEXT: append(z, n, pm, "'%s'", v->z); break;
    case SQLITE_BLOB: {
      append(z, n, pm, "vecstore_vector('[");
      for (int i = 0; i < v->n / 4; i++) {
        float f;
        memcpy(&f, v->z + 4 * i, 4);
        append(z, n, pm, "%s%.9g", i ? "," : "", f);
      }
      if (v->n % 4 != 0) append(z, n, pm, " +%d bytes", v->n % 4);
      append(z, n, pm, "]')");
      break;
    }
    default: append(z, n, pm, "NULL"); break;
  }
}

/* The rows a statement returned: column 0 as rowid, column 1 as distance (or NULL), column 2 as an integer. */
typedef struct Rows {
  i64 aRowid[MAX_ROWS];
  double aDist[MAX_ROWS];
  int aDistNull[MAX_ROWS];
  i64 aCol2[MAX_ROWS];
  int aCol2Null[MAX_ROWS];
  int n;
} Rows;

/* Prepares zSql with the values bound, steps it to the end collecting rows into pRows (may be NULL) and
** returns the result code (SQLITE_OK or the error). A bug code is a finding; so is any message of a failure
** that mentions vecstore without the "vecstore: " prefix. */
static int run_db(sqlite3 *db, const char *zSql, const Val *aVal, int nVal, Rows *pRows) {
  char zDesc[sizeof(S.aTrace[0])];
  size_t m = 0;
  zDesc[0] = 0;
  append(zDesc, sizeof(zDesc), &m, "%s%s", db == S.db ? "" : "[2] ", zSql);
  for (int i = 0; i < nVal; i++) {
    append(zDesc, sizeof(zDesc), &m, "%s", i ? ", " : "  -- ");
    v_describe(&aVal[i], zDesc, sizeof(zDesc), &m);
  }
  trace("%s", zDesc);
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  if (rc != SQLITE_OK) {
    if (fz_is_bug_code(rc)) FAIL("prepare failed with code %d: %s", rc, sqlite3_errmsg(db));
    trace("  -> prepare error %d: %s", rc, sqlite3_errmsg(db));
    return rc;
  }
  for (int i = 0; i < nVal; i++) {
    const Val *v = &aVal[i];
    switch (v->eType) {
      case SQLITE_INTEGER: sqlite3_bind_int64(pStmt, i + 1, v->i); break;
      case SQLITE_FLOAT: sqlite3_bind_double(pStmt, i + 1, v->r); break;
      case SQLITE_TEXT: sqlite3_bind_text(pStmt, i + 1, v->z, v->n, SQLITE_TRANSIENT); break;
      case SQLITE_BLOB: sqlite3_bind_blob(pStmt, i + 1, v->z, v->n, SQLITE_TRANSIENT); break;
      default: sqlite3_bind_null(pStmt, i + 1); break;
    }
  }
  if (pRows) pRows->n = 0;
  while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    if (pRows == 0) continue;
    if (pRows->n >= MAX_ROWS) FAIL("more than %d rows", MAX_ROWS);
    int nCol = sqlite3_column_count(pStmt);
    pRows->aRowid[pRows->n] = sqlite3_column_int64(pStmt, 0);
    pRows->aDistNull[pRows->n] = nCol < 2 || sqlite3_column_type(pStmt, 1) == SQLITE_NULL;
    pRows->aDist[pRows->n] = nCol < 2 ? 0.0 : sqlite3_column_double(pStmt, 1);
    pRows->aCol2Null[pRows->n] = nCol < 3 || sqlite3_column_type(pStmt, 2) == SQLITE_NULL;
    pRows->aCol2[pRows->n] = nCol < 3 ? 0 : sqlite3_column_int64(pStmt, 2);
    pRows->n++;
  }
  rc = sqlite3_finalize(pStmt);
  if (rc != SQLITE_OK) {
    const char *zMsg = sqlite3_errmsg(db);
    trace("  -> error %d: %s", rc, zMsg);
    if (fz_is_bug_code(rc)) FAIL("statement failed with code %d: %s", rc, zMsg);
    const char *zAt = strstr(zMsg, "vecstore");
    if (zAt && strstr(zMsg, "vecstore: ") == 0 && strstr(zMsg, "no such") == 0) {
      FAIL("a vecstore error without the 'vecstore: ' prefix: %s", zMsg);
    }
  } else if (pRows) {
    trace("  -> %d rows", pRows->n);
  }
  return rc;
}

static int run(const char *zSql, const Val *aVal, int nVal, Rows *pRows) { return run_db(S.db, zSql, aVal, nVal, pRows); }

static void must(const char *zSql) {
  int rc = run(zSql, 0, 0, 0);
  if (rc != SQLITE_OK) FAIL("'%s' failed: %s", zSql, sqlite3_errmsg(S.db));
}

static i64 count_rows(const char *zWhere, const Val *aVal, int nVal) {
  char zSql[300];
  snprintf(zSql, sizeof(zSql), "SELECT count(*) FROM t%s", zWhere);
  Rows *pRows = malloc(sizeof(Rows));
  if (pRows == 0) abort();
  int rc = run(zSql, aVal, nVal, pRows);
  if (rc != SQLITE_OK || pRows->n != 1) FAIL("count failed: %s", sqlite3_errmsg(S.db));
  i64 n = pRows->aRowid[0];
  free(pRows);
  return n;
}

/**************************************************************************************************
** Decoding argument bytes.
*/
static Val d_rowid(FzBytes *b) {
  unsigned c = fz_u8(b);
  switch (c) {
    case 255: return v_null();
    case 254: return v_int((i64)(-0x7fffffffffffffffLL - 1)); /* reserved: marks tombstones */
    case 253: return v_int(0x7fffffffffffffffLL);
    case 252: return v_int(0);
    case 251: return v_int(-5);
    case 250: return v_text("7");
    default: return v_int(1 + (i64)(c % 24));
  }
}

static Val d_id(FzBytes *b) {
  unsigned c = fz_u8(b);
  if (c == 255) return v_null();
  if (c == 254) return v_int(5);
  char z[2] = {(char)('a' + c % 8), 0};
  return v_text(z);
}

/* The value k (or fetch_k) = v has when vecstore accepts it: a non-negative integer, also as integral text or
** REAL; -1 when it must be rejected. */
static i64 k_of(const Val *v) {
  if (v->eType == SQLITE_INTEGER) return v->i >= 0 ? v->i : -1;
  if (v->eType == SQLITE_FLOAT) return v->r >= 0 && v->r == floor(v->r) ? (i64)v->r : -1;
  if (v->eType == SQLITE_TEXT && v->n > 0 && strspn(v->z, "0123456789") == (size_t)v->n) return atoll(v->z);
  return -1;
}

/* Does the rowid constraint value v select rowid r (as SQLite compares an INTEGER rowid with it)? */
static int val_is_rowid(const Val *v, i64 r) {
  if (v->eType == SQLITE_INTEGER) return v->i == r;
  if (v->eType == SQLITE_FLOAT) return v->r == (double)r;
  if (v->eType == SQLITE_TEXT) return k_of(v) >= 0 && k_of(v) == r;
  return 0;
}

/* A vector: mostly dim small binary fractions as a BLOB; sometimes JSON, NULL, NaN or the wrong length. */
static Val d_vector(FzBytes *b, int nDim) {
  unsigned eForm = fz_u8(b);
  float a[MAX_DIM + 1];
  for (int i = 0; i <= nDim; i++) a[i] = (float)(int8_t)fz_u8(b) / 4.0f;
  if (eForm == 255) return v_null();
  int n = nDim;
  if (eForm == 254) n = nDim + 1;
  if (eForm == 253 && nDim > 1) n = nDim - 1;
  if (eForm == 252) a[0] = NAN;
  if (eForm == 251) a[nDim - 1] = INFINITY;
  if (eForm == 250) a[0] = 3.0e38f;
  if (eForm == 249) return v_text("[1, 2,");
  if (eForm == 248) return v_int(3);
  Val v = v_null();
  if (eForm % 4 == 1) {
    /* JSON text. */
    size_t m = 0;
    m += (size_t)snprintf(v.z + m, sizeof(v.z) - m, "[");
    for (int i = 0; i < n; i++) m += (size_t)snprintf(v.z + m, sizeof(v.z) - m, "%s%.9g", i ? ", " : "", a[i]);
    snprintf(v.z + m, sizeof(v.z) - m, "]");
    v.eType = SQLITE_TEXT;
    v.n = (int)strlen(v.z);
    return v;
  }
  v.eType = SQLITE_BLOB;
  memcpy(v.z, a, (size_t)n * 4);
  v.n = n * 4;
  return v;
}

static Val d_content(FzBytes *b) {
  static const char *const az[] = {"alpha beta", "gamma delta", "alpha gamma", "the", "epsilon", "beta beta beta"};
  unsigned c = fz_u8(b);
  if (c % 8 >= 6) return c % 8 == 6 ? v_null() : v_int(42);
  return v_text(az[c % 8]);
}

static Val d_metadata(FzBytes *b) {
  static const char *const az[] = {"{}", "{\"p\": 1}", "{\"p\": 2, \"q\": \"x\"}", "{\"p\": [1, 2]}",
                                   "[1]", "not json", "{\"q\": null}"};
  unsigned c = fz_u8(b);
  if (c % 8 == 7) return v_null();
  return v_text(az[c % 8]);
}

static Val d_page(FzBytes *b) {
  unsigned c = fz_u8(b);
  switch (c % 8) {
    case 5: return v_null();
    case 6: return v_text("2");
    case 7: return v_text("abc");
    default: return v_int(c % 8 % 4);
  }
}

static Val d_src(FzBytes *b) {
  static const char *const az[] = {"x", "y", "z"};
  unsigned c = fz_u8(b);
  if (c % 4 == 3) return v_null();
  return v_text(az[c % 4]);
}

static Val d_k(FzBytes *b) {
  unsigned c = fz_u8(b);
  switch (c) {
    case 255: return v_int(0x7fffffffffffffffLL);
    case 254: return v_int(-1);
    case 253: return v_int(1000000000000LL);
    case 252: return v_null();
    case 251: return v_real(2.5);
    case 250: return v_text("3");
    case 249: return v_int(0);
    default: return v_int(1 + (i64)(c % 12));
  }
}

static Val d_params(FzBytes *b) {
  static const char *const az[] = {"efSearch=16", "nprobe=2", "", "efSearch=1", "nprobe=1000000", "bogus=1",
                                    "max_codes=1", "efSearch=0", "nprobe=0", "efSearch=64,nprobe=2", "=", ","};
  unsigned c = fz_u8(b);
  return v_text(az[c % (sizeof(az) / sizeof(az[0]))]);
}

/**************************************************************************************************
** Checks.
*/
typedef struct RowSet { /* the table as a scan sees it */
  i64 aRowid[MAX_ROWS];
  float aVec[MAX_ROWS][MAX_DIM];
  int n;
  uint64_t hash; /* of rowid, id, content, metadata, embedding and declared columns in rowid order */
} RowSet;

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *z = p;
  for (size_t i = 0; i < n; i++) h = (h ^ z[i]) * 1099511628211ULL;
  return h;
}

/* Reads every row through a scan. */
static void read_rowset(sqlite3 *db, RowSet *p, const char *zWho) {
  char zSql[200];
  snprintf(zSql, sizeof(zSql), "SELECT rowid, id, content, metadata, embedding%s FROM t ORDER BY rowid",
           S.nCol == 2 ? ", page, src" : S.nCol == 1 ? ", page" : "");
  trace("%s  [%s]", zSql, zWho);
  sqlite3_stmt *pStmt = 0;
  if (sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0) != SQLITE_OK) FAIL("%s: prepare scan: %s", zWho, sqlite3_errmsg(db));
  p->n = 0;
  p->hash = 14695981039346656037ULL;
  int rc;
  while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    if (p->n >= MAX_ROWS) FAIL("too many rows");
    i64 iRowid = sqlite3_column_int64(pStmt, 0);
    if (p->n > 0 && iRowid <= p->aRowid[p->n - 1]) FAIL("%s: scan not in rowid order or repeats %lld", zWho, iRowid);
    p->aRowid[p->n] = iRowid;
    int nVec = sqlite3_column_bytes(pStmt, 4);
    if (sqlite3_column_type(pStmt, 4) != SQLITE_BLOB || nVec != S.nDim * 4) {
      FAIL("%s: row %lld has an embedding of %d bytes", zWho, iRowid, nVec);
    }
    memcpy(p->aVec[p->n], sqlite3_column_blob(pStmt, 4), (size_t)nVec);
    p->hash = fnv(p->hash, &iRowid, sizeof(iRowid));
    for (int c = 1; c < sqlite3_column_count(pStmt); c++) {
      int eType = sqlite3_column_type(pStmt, c);
      p->hash = fnv(p->hash, &eType, sizeof(eType));
      const void *pV = sqlite3_column_blob(pStmt, c);
      p->hash = fnv(p->hash, pV ? pV : "", (size_t)sqlite3_column_bytes(pStmt, c));
    }
    p->n++;
  }
  rc = sqlite3_finalize(pStmt);
  if (rc != SQLITE_OK) {
    if (fz_is_bug_code(rc) || (rc & 0xff) != SQLITE_BUSY) FAIL("%s: scan failed (%d): %s", zWho, rc, sqlite3_errmsg(db));
    p->n = -1; /* busy: unknown */
  }
}

static int rowset_find(const RowSet *p, i64 iRowid) {
  int lo = 0, hi = p->n;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (p->aRowid[mid] == iRowid) return mid;
    if (p->aRowid[mid] < iRowid) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

/* vecstore's distance of SPEC.md in double precision. */
static double ref_distance(const float *a, const float *q) {
  double dot = 0, na = 0, nq = 0, l2 = 0;
  for (int i = 0; i < S.nDim; i++) {
    dot += (double)a[i] * q[i];
    na += (double)a[i] * a[i];
    nq += (double)q[i] * q[i];
    l2 += ((double)a[i] - q[i]) * ((double)a[i] - q[i]);
  }
  if (S.eMetric == 0) return l2;
  if (S.eMetric == 1) return -dot;
  if (na == 0 || nq == 0) return 1.0;
  double sim = dot / (sqrt(na) * sqrt(nq));
  if (sim > 1) sim = 1;
  if (sim < -1) sim = -1;
  return 1.0 - sim;
}

static int close_enough(double a, double b) { return fabs(a - b) <= 1e-3 * (1.0 + fabs(a) + fabs(b)); }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Common checks of a search result: no repeats, every rowid in the table, at most nMax rows (< 0: no cap),
** distances equal to the stored embeddings' (exact indexes) and in order (bOrdered, Flat only). */
static void check_result(const Rows *pR, const RowSet *pSet, const float *aQuery, i64 nMax, int bOrdered,
                         const char *zWhat) {
  if (nMax >= 0 && pR->n > nMax) FAIL("%s: %d rows, at most %lld expected", zWhat, pR->n, nMax);
  for (int i = 0; i < pR->n; i++) {
    for (int j = 0; j < i; j++) {
      if (pR->aRowid[i] == pR->aRowid[j]) FAIL("%s: rowid %lld returned twice", zWhat, pR->aRowid[i]);
    }
    int iRow = rowset_find(pSet, pR->aRowid[i]);
    if (iRow < 0) FAIL("%s: rowid %lld is not in the table", zWhat, pR->aRowid[i]);
    if (pR->aDistNull[i]) FAIL("%s: NULL distance", zWhat);
    if (isnan(pR->aDist[i])) FAIL("%s: NaN distance", zWhat);
    if (aQuery && !S.bQuantized) {
      double rRef = ref_distance(pSet->aVec[iRow], aQuery);
      if (!close_enough(pR->aDist[i], rRef)) {
        FAIL("%s: rowid %lld distance %.9g, its embedding gives %.9g", zWhat, pR->aRowid[i], pR->aDist[i], rRef);
      }
    }
    if (bOrdered && S.bExactOnly && i > 0 && pR->aDist[i] < pR->aDist[i - 1] - 1e-4 * (1 + fabs(pR->aDist[i]))) {
      FAIL("%s: distances out of order at row %d", zWhat, i);
    }
  }
}

/* Flat only: the distances are the nMin(k, rows) smallest of the table's. */
static void check_brute_force(const Rows *pR, const RowSet *pSet, const float *aQuery, const char *zWhat) {
  if (!S.bExactOnly || S.bQuantized || pSet->n <= 0) return;
  double *aAll = malloc((size_t)pSet->n * sizeof(double));
  if (aAll == 0) abort();
  for (int i = 0; i < pSet->n; i++) aAll[i] = ref_distance(pSet->aVec[i], aQuery);
  qsort(aAll, (size_t)pSet->n, sizeof(double), cmp_double);
  for (int i = 0; i < pR->n && i < pSet->n; i++) {
    if (!close_enough(pR->aDist[i], aAll[i])) {
      double r = aAll[i];
      free(aAll);
      FAIL("%s: result %d has distance %.9g, the %d-th smallest is %.9g", zWhat, i, pR->aDist[i], i, r);
    }
  }
  free(aAll);
}

/* The query vector of a search: a valid vector of the table's dim (decoded from the input). */
static Val d_query(FzBytes *b, float *aQuery) {
  Val v = v_null();
  v.eType = SQLITE_BLOB;
  for (int i = 0; i < S.nDim; i++) aQuery[i] = (float)(int8_t)fz_u8(b) / 4.0f;
  memcpy(v.z, aQuery, (size_t)S.nDim * 4);
  v.n = S.nDim * 4;
  return v;
}

static void integrity_check(void) {
  int rc = run("INSERT INTO t(t) VALUES ('integrity-check')", 0, 0, 0);
  if (rc != SQLITE_OK) FAIL("integrity-check failed: %s", sqlite3_errmsg(S.db));
}

/* The full stream of a search without k returns exactly the rows of a scan, each once. */
static void check_consistency(const char *zWhy) {
  RowSet *pSet = malloc(sizeof(RowSet));
  Rows *pR = malloc(sizeof(Rows));
  if (pSet == 0 || pR == 0) abort();
  read_rowset(S.db, pSet, zWhy);
  float aQuery[MAX_DIM];
  for (int i = 0; i < S.nDim; i++) aQuery[i] = (float)(i % 3) - 0.5f;
  Val q = v_null();
  q.eType = SQLITE_BLOB;
  memcpy(q.z, aQuery, (size_t)S.nDim * 4);
  q.n = S.nDim * 4;
  int rc = run("SELECT rowid, distance FROM t WHERE embedding MATCH ?1", &q, 1, pR);
  if (rc != SQLITE_OK) FAIL("%s: full search failed: %s", zWhy, sqlite3_errmsg(S.db));
  check_result(pR, pSet, aQuery, -1, 0, zWhy);
  if (pR->n != pSet->n) FAIL("%s: the full search returned %d rows, a scan %d", zWhy, pR->n, pSet->n);
  integrity_check();
  Rows *pQuick = malloc(sizeof(Rows));
  if (pQuick == 0) abort();
  if (run("PRAGMA quick_check", 0, 0, pQuick) != SQLITE_OK || pQuick->n != 1) FAIL("%s: PRAGMA quick_check failed", zWhy);
  free(pQuick);
  free(pSet);
  free(pR);
}

/**************************************************************************************************
** Opening.
*/
static void open_db(void) {
  S.db = fz_open(S.bFile ? S.zPath : ":memory:");
  sqlite3_busy_timeout(S.db, 2000);
  sqlite3_exec(S.db, "PRAGMA synchronous = OFF", 0, 0, 0);
  trace("-- open %s", S.bFile ? S.zPath : ":memory:");
}

static void close_db(void) {
  trace("-- close");
  if (sqlite3_close(S.db) != SQLITE_OK) FAIL("sqlite3_close: %s (statements left open?)", sqlite3_errmsg(S.db));
  S.db = 0;
}

/* Reopening: uncommitted work is rolled back; the committed rows must all come back, unchanged. */
static void op_reopen(void) {
  if (!S.bFile) {
    check_consistency("consistency");
    return;
  }
  if (!sqlite3_get_autocommit(S.db)) must("ROLLBACK");
  RowSet *pBefore = malloc(sizeof(RowSet)), *pAfter = malloc(sizeof(RowSet));
  if (pBefore == 0 || pAfter == 0) abort();
  read_rowset(S.db, pBefore, "before reopen");
  close_db();
  open_db();
  read_rowset(S.db, pAfter, "after reopen");
  if (pBefore->n != pAfter->n || pBefore->hash != pAfter->hash) {
    FAIL("reopen: %d rows (hash %016llx) became %d rows (hash %016llx)", pBefore->n,
         (unsigned long long)pBefore->hash, pAfter->n, (unsigned long long)pAfter->hash);
  }
  free(pBefore);
  free(pAfter);
  check_consistency("after reopen");
}

/* The second connection stays open across ops (so its cached index must follow the first connection's
** commits) until an op or the end of the input closes it. */
static void second_open(void) {
  if (S.db2) return;
  trace("-- second connection opens");
  S.db2 = fz_open(S.zPath);
  sqlite3_busy_timeout(S.db2, 100);
  sqlite3_exec(S.db2, "PRAGMA synchronous = OFF", 0, 0, 0);
}

static void second_close(void) {
  if (S.db2 == 0) return;
  trace("-- second connection closes");
  if (sqlite3_close(S.db2) != SQLITE_OK) FAIL("close of the second connection failed: %s", sqlite3_errmsg(S.db2));
  S.db2 = 0;
}

/* The second connection's full search agrees with its scan; with no transaction open on the first
** connection, both see the same rows. */
static void second_check(void) {
  RowSet *p2 = malloc(sizeof(RowSet)), *p1 = malloc(sizeof(RowSet));
  Rows *pR = malloc(sizeof(Rows));
  if (p2 == 0 || p1 == 0 || pR == 0) abort();
  read_rowset(S.db2, p2, "second connection");
  if (p2->n >= 0) {
    float aQuery[MAX_DIM];
    Val q = v_null();
    q.eType = SQLITE_BLOB;
    for (int i = 0; i < S.nDim; i++) aQuery[i] = 1.0f;
    memcpy(q.z, aQuery, (size_t)S.nDim * 4);
    q.n = S.nDim * 4;
    int rc = run_db(S.db2, "SELECT rowid, distance FROM t WHERE embedding MATCH ?1", &q, 1, pR);
    if (rc == SQLITE_OK) {
      check_result(pR, p2, aQuery, -1, 0, "second connection search");
      if (pR->n != p2->n) FAIL("second connection: search returned %d rows, its scan %d", pR->n, p2->n);
    } else if ((rc & 0xff) != SQLITE_BUSY) {
      FAIL("second connection search failed: %s", sqlite3_errmsg(S.db2));
    }
    if (sqlite3_get_autocommit(S.db)) {
      read_rowset(S.db, p1, "first connection");
      if (p1->n != p2->n || p1->hash != p2->hash) FAIL("the two connections see different rows (%d / %d)", p1->n, p2->n);
    }
  }
  free(p1);
  free(p2);
  free(pR);
}

/* Work on the second connection: checks, and writes while the first has no transaction open (they then
** reach the first connection's cache through the log or a new snapshot). */
static void op_second_connection(FzBytes *b) {
  unsigned c = fz_u8(b) % 6;
  if (!S.bFile) return;
  second_open();
  Val a[1];
  int bFree = sqlite3_get_autocommit(S.db);
  switch (c) {
    case 2:
      a[0] = d_vector(b, S.nDim);
      if (bFree) run_db(S.db2, "INSERT INTO t(content, embedding) VALUES ('second', ?1)", a, 1, 0);
      break;
    case 3:
      a[0] = d_rowid(b);
      if (bFree) run_db(S.db2, "DELETE FROM t WHERE rowid = ?1", a, 1, 0);
      break;
    case 4:
      a[0] = v_text(fz_u8(b) & 1 ? "optimize" : "rebuild");
      if (bFree) run_db(S.db2, "INSERT INTO t(t) VALUES (?1)", a, 1, 0);
      break;
    case 5: second_close(); break;
    default: second_check(); break;
  }
}

/**************************************************************************************************
** Operations.
*/
static const char *const azIndex[] = {"Flat", "HNSW8", "IVF2,Flat", "SQ8", "IVF2,SQ8", "PQ1x4", "HNSW4,SQ8",
                                      "LSH", "IDMap,Flat", "IVF1,PQ1x2", "PCA2,Flat", "HNSW8,Flat", "SQfp16",
                                      "IVF2_HNSW4,Flat", "RFlat", "Bogus"};
#define N_INDEX ((unsigned)(sizeof(azIndex) / sizeof(azIndex[0])))

static int is_quantized(const char *z) {
  return strstr(z, "SQ") || strstr(z, "PQ") || strstr(z, "LSH") || strstr(z, "PCA");
}

static void note_index(const char *z) {
  if (strcmp(z, "Flat") != 0) S.bExactOnly = 0;
  if (is_quantized(z)) S.bQuantized = 1;
}

static void op_insert(FzBytes *b) {
  static const char *const azVerb[] = {"INSERT", "INSERT OR REPLACE", "INSERT OR IGNORE", "REPLACE", "INSERT OR ABORT",
                                       "INSERT OR FAIL", "INSERT OR ROLLBACK", "INSERT"};
  unsigned e = fz_u8(b);
  int nRow = 1 + (int)((e >> 3) % 3);
  char zSql[600];
  size_t m = (size_t)snprintf(zSql, sizeof(zSql), "%s INTO t(rowid, id, content, metadata, embedding%s) VALUES ",
                              azVerb[e & 7], S.nCol == 2 ? ", page, src" : S.nCol == 1 ? ", page" : "");
  Val a[3 * 7];
  int nVal = 0;
  for (int r = 0; r < nRow; r++) {
    int nPer = 5 + S.nCol;
    m += (size_t)snprintf(zSql + m, sizeof(zSql) - m, "%s(", r ? ", " : "");
    for (int c = 0; c < nPer; c++) m += (size_t)snprintf(zSql + m, sizeof(zSql) - m, "%s?%d", c ? ", " : "", nVal + c + 1);
    m += (size_t)snprintf(zSql + m, sizeof(zSql) - m, ")");
    a[nVal++] = d_rowid(b);
    a[nVal++] = d_id(b);
    a[nVal++] = d_content(b);
    a[nVal++] = d_metadata(b);
    a[nVal++] = d_vector(b, S.nDim);
    if (S.nCol >= 1) a[nVal++] = d_page(b);
    if (S.nCol >= 2) a[nVal++] = d_src(b);
  }
  run(zSql, a, nVal, 0);
}

/* Writes whose rows come from a search of the same table (the cursor reads while the table changes). */
static void op_write_from_search(FzBytes *b) {
  float aQuery[MAX_DIM];
  Val a[2];
  a[0] = d_query(b, aQuery);
  a[1] = d_k(b);
  switch (fz_u8(b) % 3) {
    case 0:
      run("INSERT INTO t(content, metadata, embedding) SELECT content, metadata, embedding FROM t "
          "WHERE embedding MATCH ?1 AND k = ?2",
          a, 2, 0);
      break;
    case 1:
      run("UPDATE t SET embedding = vecstore_normalize(embedding), metadata = '{\"p\": 9}' WHERE rowid IN "
          "(SELECT rowid FROM t WHERE embedding MATCH ?1 AND k = ?2)",
          a, 2, 0);
      break;
    default:
      run("UPDATE t SET embedding = ?1 WHERE rowid IN (SELECT rowid FROM t WHERE embedding MATCH ?1 AND k = ?2)", a, 2, 0);
      break;
  }
}

static void op_update(FzBytes *b) {
  unsigned e = fz_u8(b) % 7;
  Val a[2];
  a[1] = d_rowid(b);
  const char *zSql;
  switch (e) {
    case 0: zSql = "UPDATE t SET embedding = ?1 WHERE rowid = ?2"; a[0] = d_vector(b, S.nDim); break;
    case 1: zSql = "UPDATE t SET metadata = ?1 WHERE rowid = ?2"; a[0] = d_metadata(b); break;
    case 2: zSql = "UPDATE t SET id = ?1 WHERE rowid = ?2"; a[0] = d_id(b); break;
    case 3: zSql = "UPDATE t SET rowid = ?1 WHERE rowid = ?2"; a[0] = d_rowid(b); break;
    case 4: zSql = "UPDATE t SET content = ?1, embedding = NULL WHERE rowid = ?2"; a[0] = d_content(b); break;
    case 5:
      zSql = S.nCol ? "UPDATE t SET page = ?1 WHERE rowid = ?2" : "UPDATE t SET content = ?1 WHERE rowid = ?2";
      a[0] = S.nCol ? d_page(b) : d_content(b);
      break;
    default: zSql = "UPDATE t SET embedding = ?1 WHERE rowid >= ?2"; a[0] = d_vector(b, S.nDim); break;
  }
  run(zSql, a, 2, 0);
}

static void op_delete(FzBytes *b) {
  unsigned e = fz_u8(b) % 5;
  Val a[1];
  switch (e) {
    case 0: a[0] = d_rowid(b); run("DELETE FROM t WHERE rowid = ?1", a, 1, 0); break;
    case 1: a[0] = d_id(b); run("DELETE FROM t WHERE id = ?1", a, 1, 0); break;
    case 2: a[0] = d_rowid(b); run("DELETE FROM t WHERE rowid > ?1", a, 1, 0); break;
    case 3: {
      float aQuery[MAX_DIM];
      a[0] = d_query(b, aQuery);
      run("DELETE FROM t WHERE rowid IN (SELECT rowid FROM t WHERE embedding MATCH ?1 AND k = 2)", a, 1, 0);
      break;
    }
    default: run("DELETE FROM t", 0, 0, 0); break;
  }
}

/* Searches of several forms, each with its checks. */
static void op_search(FzBytes *b, unsigned eKind) {
  float aQuery[MAX_DIM];
  Val a[4];
  a[0] = d_query(b, aQuery);
  RowSet *pSet = malloc(sizeof(RowSet));
  Rows *pR = malloc(sizeof(Rows));
  if (pSet == 0 || pR == 0) abort();
  read_rowset(S.db, pSet, "rows before a search");
  int rc;
  switch (eKind % 9) {
    case 0: { /* k */
      a[1] = d_k(b);
      rc = run("SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND k = ?2", a, 2, pR);
      i64 k = k_of(&a[1]);
      if (rc == SQLITE_OK) {
        if (k < 0) FAIL("an invalid k was accepted");
        i64 nWant = k < pSet->n ? k : pSet->n;
        check_result(pR, pSet, aQuery, k, 1, "k search");
        if (pR->n != nWant) FAIL("k search: %d rows, expected min(k = %lld, %d rows)", pR->n, k, pSet->n);
        check_brute_force(pR, pSet, aQuery, "k search");
      }
      break;
    }
    case 1: { /* ORDER BY distance LIMIT / OFFSET */
      unsigned c = fz_u8(b);
      a[1] = v_int(c % 8);
      a[2] = v_int((c >> 3) % 4);
      rc = run("SELECT rowid, distance FROM t WHERE embedding MATCH ?1 ORDER BY distance LIMIT ?2 OFFSET ?3", a, 3, pR);
      if (rc != SQLITE_OK) FAIL("LIMIT search failed: %s", sqlite3_errmsg(S.db));
      i64 nWant = pSet->n - a[2].i;
      if (nWant < 0) nWant = 0;
      if (nWant > a[1].i) nWant = a[1].i;
      check_result(pR, pSet, aQuery, a[1].i, 1, "LIMIT search");
      if (pR->n != nWant) FAIL("LIMIT %lld OFFSET %lld search: %d rows of %d", a[1].i, a[2].i, pR->n, pSet->n);
      if (a[2].i == 0) check_brute_force(pR, pSet, aQuery, "LIMIT search");
      break;
    }
    case 2: { /* fetch_k and a filter SQLite evaluates */
      a[1] = d_k(b);
      a[2] = d_metadata(b);
      rc = run("SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND fetch_k = ?2 AND vecstore_filter(metadata, ?3)",
               a, 3, pR);
      if (rc == SQLITE_OK) check_result(pR, pSet, aQuery, k_of(&a[1]), 0, "fetch_k search");
      break;
    }
    case 3: { /* MMR */
      a[1] = d_k(b);
      a[2] = d_k(b);
      unsigned c = fz_u8(b);
      a[3] = c == 255 ? v_real(1.5) : c == 254 ? v_real(-0.1) : v_real((double)(c % 5) / 4.0);
      rc = run("SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND k = ?2 AND fetch_k = ?3 AND lambda_mult = ?4",
               a, 4, pR);
      if (rc == SQLITE_OK) {
        if (a[3].r < 0 || a[3].r > 1) FAIL("lambda_mult %g was accepted", a[3].r);
        check_result(pR, pSet, aQuery, k_of(&a[1]) >= 0 ? k_of(&a[1]) : 4, 0, "MMR search");
      }
      break;
    }
    case 4: { /* radius */
      unsigned c = fz_u8(b);
      a[1] = v_real((double)(c % 64) / 4.0 - 2.0);
      a[2] = d_k(b);
      int bScore = c & 64;
      rc = run(bScore ? "SELECT rowid, distance, 0 FROM t WHERE embedding MATCH ?1 AND score >= ?2 AND k = ?3"
                      : "SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND distance < ?2 AND k = ?3",
               a, 3, pR);
      if (rc == SQLITE_OK) {
        check_result(pR, pSet, aQuery, k_of(&a[2]), 1, "radius search");
        for (int i = 0; i < pR->n && !bScore; i++) {
          if (!(pR->aDist[i] < a[1].r + 1e-4)) FAIL("distance < %g returned %g", a[1].r, pR->aDist[i]);
        }
      }
      break;
    }
    case 5: { /* declared column (pre-filter) */
      if (S.nCol == 0) {
        rc = run("SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND k = 3 AND vecstore_filter(metadata, '{\"p\": 1}')",
                 a, 1, pR);
        if (rc == SQLITE_OK) check_result(pR, pSet, aQuery, 3, 1, "filter search");
        break;
      }
      a[1] = d_page(b);
      a[2] = d_k(b);
      unsigned c = fz_u8(b) % 3;
      const char *zSql = c == 0   ? "SELECT rowid, distance, page FROM t WHERE embedding MATCH ?1 AND page = ?2 AND k = ?3"
                         : c == 1 ? "SELECT rowid, distance, page FROM t WHERE embedding MATCH ?1 AND page IN (?2, 3) AND k = ?3"
                                  : "SELECT rowid, distance, page FROM t WHERE embedding MATCH ?1 AND page >= ?2 AND k = ?3";
      rc = run(zSql, a, 3, pR);
      i64 k = k_of(&a[2]);
      if (rc == SQLITE_OK && k >= 0) {
        check_result(pR, pSet, aQuery, k, 1, "declared-column search");
        static const char *const azWhere[] = {" WHERE page = ?1", " WHERE page IN (?1, 3)", " WHERE page >= ?1"};
        i64 nMatch = count_rows(azWhere[c], &a[1], 1);
        i64 nWant = k < nMatch ? k : nMatch;
        if (pR->n != nWant) FAIL("declared-column search: %d rows, expected min(k = %lld, %lld matching)", pR->n, k, nMatch);
      }
      break;
    }
    case 6: { /* among given rowids */
      a[1] = d_rowid(b);
      a[2] = d_rowid(b);
      a[3] = d_k(b);
      unsigned c = fz_u8(b) % 2;
      rc = run(c ? "SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND rowid IN (?2, ?3) AND k = ?4"
                 : "SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND rowid = ?2 AND k = ?4",
               a, 4, pR);
      i64 k = k_of(&a[3]);
      if (rc == SQLITE_OK && k >= 0) {
        check_result(pR, pSet, aQuery, k, 0, "rowid search");
        i64 nIn = 0;
        for (int i = 0; i < pSet->n; i++) {
          nIn += val_is_rowid(&a[1], pSet->aRowid[i]) || (c && val_is_rowid(&a[2], pSet->aRowid[i]));
        }
        for (int i = 0; i < pR->n; i++) {
          i64 r = pR->aRowid[i];
          if (!val_is_rowid(&a[1], r) && !(c && val_is_rowid(&a[2], r))) {
            FAIL("rowid search returned rowid %lld, which was not asked for", r);
          }
        }
        i64 nWant = k < nIn ? k : nIn;
        if (pR->n != nWant) FAIL("rowid search: %d rows, expected %lld", pR->n, nWant);
      }
      break;
    }
    case 7: { /* per-query search parameters */
      a[1] = d_params(b);
      a[2] = d_k(b);
      rc = run("SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND search_params = ?2 AND k = ?3", a, 3, pR);
      i64 k = k_of(&a[2]);
      if (rc == SQLITE_OK && k >= 0) {
        check_result(pR, pSet, aQuery, k, 1, "search_params search");
        i64 nWant = k < pSet->n ? k : pSet->n;
        if (pR->n != nWant) FAIL("search_params search: %d rows, expected %lld", pR->n, nWant);
      }
      break;
    }
    default: { /* text query through the embedder */
      a[0] = d_content(b);
      a[1] = d_k(b);
      rc = run("SELECT rowid, distance FROM t WHERE t MATCH ?1 AND k = ?2", a, 2, pR);
      if (rc == SQLITE_OK) {
        if (!S.bEmbedder) FAIL("a text query succeeded without an embedder");
        check_result(pR, pSet, 0, k_of(&a[1]), 1, "text search");
      }
      break;
    }
  }
  free(pSet);
  free(pR);
}

static void op_command(FzBytes *b) {
  unsigned c = fz_u8(b);
  Val a[1];
  switch (c % 8) {
    case 0: a[0] = v_text("optimize"); break;
    case 1: a[0] = v_text("rebuild"); break;
    case 2: a[0] = v_text("train"); break;
    case 3: integrity_check(); return;
    case 4: {
      const char *zIdx = azIndex[fz_u8(b) % N_INDEX];
      const char *zAvoid = getenv("VECSTORE_FUZZ_AVOID");
      if (zAvoid && zAvoid[0] && strstr(zIdx, zAvoid)) zIdx = "Flat";
      char z[64];
      snprintf(z, sizeof(z), "index=%s", zIdx);
      note_index(zIdx);
      a[0] = v_text(z);
      break;
    }
    case 5: {
      Val p = d_params(b);
      char z[sizeof(p.z) + 16];
      snprintf(z, sizeof(z), "search_params=%s", p.z);
      a[0] = v_text(z);
      break;
    }
    case 6: a[0] = v_text("bogus"); break;
    default: a[0] = v_null(); break;
  }
  run("INSERT INTO t(t) VALUES (?1)", a, 1, 0);
}

static void op_transaction(FzBytes *b) {
  static const char *const azSql[] = {"BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK", "SAVEPOINT s0", "SAVEPOINT s1",
                                      "RELEASE s0", "RELEASE s1", "ROLLBACK TO s0", "ROLLBACK TO s1", "SAVEPOINT s0",
                                      "END", "VACUUM"};
  run(azSql[fz_u8(b) % (sizeof(azSql) / sizeof(azSql[0]))], 0, 0, 0);
}

static void op_scan(FzBytes *b) {
  Val a[1];
  Rows *pR = malloc(sizeof(Rows));
  if (pR == 0) abort();
  switch (fz_u8(b) % 5) {
    case 0: a[0] = d_rowid(b); run("SELECT rowid, distance FROM t WHERE rowid = ?1", a, 1, pR); break;
    case 1: a[0] = d_id(b); run("SELECT rowid, distance FROM t WHERE id = ?1", a, 1, pR); break;
    case 2:
      a[0] = d_page(b);
      run(S.nCol ? "SELECT rowid, distance FROM t WHERE page > ?1" : "SELECT rowid, score FROM t WHERE content = ?1", a, 1, pR);
      break;
    case 3: a[0] = d_k(b); run("SELECT rowid FROM t WHERE k = ?1", a, 1, pR); break;
    default: run("SELECT rowid, vecstore_to_json(embedding) FROM t WHERE id IN ('a', 'b', 'c')", 0, 0, pR); break;
  }
  free(pR);
}

/**************************************************************************************************
** The target.
*/
static void init_process(void) {
  if (g_zDir[0]) return;
  const char *zTmp = getenv("TMPDIR");
  snprintf(g_zDir, sizeof(g_zDir), "%s/vecstore-fuzz-XXXXXX", zTmp && zTmp[0] ? zTmp : "/tmp");
  if (mkdtemp(g_zDir) == 0) fz_fail("mkdtemp %s", g_zDir);
  atexit(remove_dir);
  fz_register();
}

int LLVMFuzzerTestOneInput(const uint8_t *pData, size_t nData) {
  init_process();
  FzBytes in = {pData, nData};
  memset(&S, 0, sizeof(S));
  unsigned s0 = fz_u8(&in), s1 = fz_u8(&in), s2 = fz_u8(&in);
  static const int aDim[] = {1, 2, 3, 4, 8, 4, 2, 8};
  const char *zIndex = azIndex[s0 % N_INDEX];
  /* VECSTORE_FUZZ_AVOID=<text>: skip index descriptions containing it (to fuzz on past a known finding). */
  const char *zAvoid = getenv("VECSTORE_FUZZ_AVOID");
  if (zAvoid && zAvoid[0] && strstr(zIndex, zAvoid)) return 0;
  S.nDim = aDim[s1 % 8];
  S.eMetric = (int)((s1 >> 3) % 3);
  S.nCol = (int)((s2 & 3) % 3);
  S.bEmbedder = (s2 >> 2) & 1;
  S.bFile = ((s2 >> 3) & 3) != 0;
  int bWal = ((s2 >> 3) & 3) == 2;
  int bParams = (s2 >> 5) & 1;
  S.bExactOnly = 1;
  note_index(zIndex);
  snprintf(S.zPath, sizeof(S.zPath), "%s/f.db", g_zDir);
  remove_files();

  open_db();
  if (bWal) must("PRAGMA journal_mode = WAL");
  char zCreate[400];
  snprintf(zCreate, sizeof(zCreate), "CREATE VIRTUAL TABLE t USING vecstore(dim = %d, metric = %s, index = '%s'%s%s%s%s)",
           S.nDim, azMetric[S.eMetric], zIndex, S.bEmbedder ? ", embedder = hash" : "",
           bParams ? ", search_params = 'efSearch=8'" : "", S.nCol >= 1 ? ", page INTEGER" : "",
           S.nCol >= 2 ? ", src TEXT" : "");
  if (run(zCreate, 0, 0, 0) != SQLITE_OK) {
    close_db();
    return 0;
  }

  for (int iOp = 0; iOp < MAX_OPS && in.n > 0; iOp++) {
    unsigned eOp = fz_u8(&in);
    switch (eOp % 16) {
      case 0:
      case 1:
      case 2: op_insert(&in); break;
      case 3:
        if (eOp & 0x80) op_write_from_search(&in);
        else op_update(&in);
        break;
      case 4: op_delete(&in); break;
      case 5:
      case 6:
      case 7: op_search(&in, eOp >> 4); break;
      case 8: op_command(&in); break;
      case 9:
      case 10: op_transaction(&in); break;
      case 11: check_consistency("consistency"); break;
      case 12: op_reopen(); break;
      case 13: op_second_connection(&in); break;
      case 14: op_scan(&in); break;
      default: op_search(&in, fz_u8(&in)); break;
    }
  }
  check_consistency("at the end");
  if (S.db2) second_check();
  second_close();
  op_reopen();
  close_db();
  return 0;
}
