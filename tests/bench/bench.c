/*
** bench.c: `make bench`. The same workload through vecstore (build/vecstore.so loaded into a real sqlite3
** connection on a real file, default SQLite settings), raw Faiss through its C API (same index description, same
** process, one thread for searches) and the peers sqlite-vec and sqlite-vss (prebuilt loadable extensions),
** side by side in one run. Prints a Markdown report on stdout, progress on stderr, and writes a JSON file.
**
**   bench [--scale small|full] [--ext build/vecstore] [--peers DIR] [--data tests/data]
**         [--dir build/bench] [--json build/bench.json]
**   bench --child ENGINE PATH QFILE NQ PARAMS      (internal: open + first query + peak RSS in a fresh process)
**   bench --conns ENGINE PATH QFILE NCONN [PARAMS] (internal: NCONN connections in NCONN threads; bench_store.c)
**   bench --second ENGINE PATH QFILE [PARAMS]      (internal: a second connection's open; bench_store.c)
**
** Data: a seeded Gaussian mixture (a few thousand clusters) at 128 and 768 dimensions, and the real bigann10k set
** of tests/data with its ground truth. Rowids are 1-based row numbers everywhere (Faiss labels are row - 1).
** Times are wall-clock, CLOCK_MONOTONIC; nothing here is asserted. bench_store.c holds the sections on storage
** and connections (file size against the raw vectors, fresh-process open, memory with several connections).
*/
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include "bench.h"

/* ------------------------------------------------------------------------------------------------------------ */
/* Settings                                                                                                      */

const char *const ENGINE[E_N] = {"vecstore", "faiss", "sqlite-vec", "sqlite-vss"};

/* sqlite-vss's bulk insert is super-linear in the rows of the transaction (measured here: 10k x 128 rows in 0.7 s,
** 50k in 52 s; 10k x 768 in 10 s), and it keeps its whole index in one BLOB rewritten at every commit, so it only
** gets the tables up to this size. */
#define VSS_MAX_ROWS 20000

BenchGlobals G;

double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void logf_(const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  fprintf(stderr, "[bench] ");
  vfprintf(stderr, zFmt, ap);
  fprintf(stderr, "\n");
  fflush(stderr);
  va_end(ap);
}

void die(const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  fprintf(stderr, "bench: ");
  vfprintf(stderr, zFmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) die("out of memory (%zu bytes)", n);
  return p;
}

char *fmt(const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  char *z = 0;
  if (vasprintf(&z, zFmt, ap) < 0) die("out of memory");
  va_end(ap);
  return z;
}

/* Notes printed under the report (skips, errors, caveats). */
static char *aNote[256];
static int nNote;
void note(const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  char *z = 0;
  if (vasprintf(&z, zFmt, ap) < 0) die("out of memory");
  va_end(ap);
  if (nNote < 256) aNote[nNote++] = z;
  logf_("note: %s", z);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Results: rows of (section, figure) with one value per engine; curves of recall against latency.             */

typedef struct Row {
  int iSec;
  char zLabel[160];
  int eDir;              /* LOWER / HIGHER is better, or PLAIN: no ratio */
  const char *zBetter;   /* "faster", "smaller" */
  const char *zWorse;
  double a[E_N];
  char azCell[E_N][64];  /* text instead of a value */
} Row;
static Row aRow[512];
static int nRow;

static const char *const SECTION[] = {
  "Bulk insert through SQL, one transaction (rows/s; the rowid given unless the row says otherwise, vecstore's text "
  "id never given; faiss: train + add + write_index)",
  "One-row commit latency, autocommit INSERT, default SQLite settings (median of all commits, p99, and the first "
  "commit after opening; ms; faiss: add + write_index of the whole index)",
  "Open + first query in a fresh process, k=10 (ms, median of 3 processes; the file read once before each, so it is "
  "in the page cache; from sqlite3_open, the extension's load included, or faiss read_index, to the first query's "
  "last row; sqlite-vec: its vec0 table of the same rows, exact search, in every row)",
  "Single-query latency, exact (Flat), k=10, one thread (ms)",
  "Approximate indexes: smallest setting with recall@10 >= 0.95 (one thread)",
  "Filtered queries, k=10 (rows returned: mean per query; recall@10 against the exact filtered answer)",
  "MMR, k=4, fetch_k=20, lambda_mult=0.5 (faiss column: Faiss search + LangChain's MMR in C)",
  "Peak RSS of one connection: open + 20 queries (MB, VmHWM delta in a fresh process)",
  "Connections of one process on one table (fresh process per figure; peak RSS: MB, VmHWM minus the RSS before "
  "the first open, each connection in its own thread, all open at the peak; open + first query: ms; faiss: one "
  "read_index + one search, the same figure in each memory row; sqlite-vec: its vec0 table of the same rows)",
  "Database file size after the bulk load commits (MB; SQLite files: page_count x page_size; faiss: write_index "
  "file; sqlite-vec beside an approximate index: its vec0 table of the same rows; each 'file / raw vectors' line "
  "divides by n x d x 4 bytes)",
  "Real data: bigann10k (9,900 x 128 SIFT, 100 queries, ground truth from tests/data)",
};
#define N_SECTION (int)(sizeof(SECTION) / sizeof(SECTION[0]))
_Static_assert(sizeof(SECTION) / sizeof(SECTION[0]) == S_REAL + 1, "one title per section of bench.h");

static Row *row(int iSec, int eDir, const char *zLabel) {
  for (int i = 0; i < nRow; i++)
    if (aRow[i].iSec == iSec && strcmp(aRow[i].zLabel, zLabel) == 0) return &aRow[i];
  if (nRow == (int)(sizeof(aRow) / sizeof(aRow[0]))) die("too many rows");
  Row *p = &aRow[nRow++];
  memset(p, 0, sizeof(*p));
  p->iSec = iSec;
  p->eDir = eDir;
  snprintf(p->zLabel, sizeof(p->zLabel), "%s", zLabel);
  for (int e = 0; e < E_N; e++) p->a[e] = NAN;
  p->zBetter = "faster";
  p->zWorse = "slower";
  if (iSec == S_MEM || iSec == S_SIZE || (iSec == S_CONN && strstr(zLabel, "MB")))
    p->zBetter = "smaller", p->zWorse = "larger";
  return p;
}
void put(int iSec, int eDir, const char *zLabel, int e, double v) { row(iSec, eDir, zLabel)->a[e] = v; }
void put_text(int iSec, int eDir, const char *zLabel, int e, const char *z) {
  snprintf(row(iSec, eDir, zLabel)->azCell[e], 64, "%s", z);
}
double got(int iSec, const char *zLabel, int e) {
  for (int i = 0; i < nRow; i++)
    if (aRow[i].iSec == iSec && strcmp(aRow[i].zLabel, zLabel) == 0) return aRow[i].a[e];
  return NAN;
}

typedef struct Point {
  char zIndex[160];
  int e;
  char zParam[16];
  int iParam;
  double rRecall, rMed, rP99;
} Point;
static Point aPoint[256];
static int nPoint;

/* ------------------------------------------------------------------------------------------------------------ */
/* Data                                                                                                          */

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) { return (rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }
static void rng_gauss(uint64_t *s, float *out, int64_t n) {
  for (int64_t i = 0; i < n; i += 2) {
    double u = rng_unit(s), v = rng_unit(s);
    if (u < 1e-300) u = 1e-300;
    double r = sqrt(-2.0 * log(u)), t = 2.0 * M_PI * v;
    out[i] = (float)(r * cos(t));
    if (i + 1 < n) out[i + 1] = (float)(r * sin(t));
  }
}

/* A Gaussian mixture: nClusters centres ~ N(0, 1)^d with weights ~ U(0.2, 1.8); a point is its centre plus
** N(0, 0.6^2)^d noise. Base points and queries come from independent streams of the same mixture. */
typedef struct Mixture {
  int d, nc;
  float *aCenter;
  double *aCum;
} Mixture;

static Mixture mixture_new(int d, int nc, uint64_t seed) {
  Mixture m = {d, nc, xmalloc((size_t)d * nc * sizeof(float)), xmalloc((size_t)nc * sizeof(double))};
  uint64_t s = seed;
  rng_gauss(&s, m.aCenter, (int64_t)d * nc);
  double sum = 0;
  for (int c = 0; c < nc; c++) m.aCum[c] = (sum += 0.2 + 1.6 * rng_unit(&s));
  for (int c = 0; c < nc; c++) m.aCum[c] /= sum;
  return m;
}

static float *mixture_sample(const Mixture *m, int64_t n, uint64_t seed) {
  float *x = xmalloc((size_t)n * m->d * sizeof(float));
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < (n + 4095) / 4096; blk++) {
    uint64_t s = seed ^ (0x5851F42D4C957F2Dull * (uint64_t)(blk + 1));
    for (int64_t i = blk * 4096; i < n && i < (blk + 1) * 4096; i++) {
      double u = rng_unit(&s);
      int lo = 0, hi = m->nc - 1;
      while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (m->aCum[mid] < u) lo = mid + 1; else hi = mid;
      }
      float *p = x + i * m->d;
      rng_gauss(&s, p, m->d);
      for (int j = 0; j < m->d; j++) p[j] = m->aCenter[(int64_t)lo * m->d + j] + 0.6f * p[j];
    }
  }
  return x;
}

float *read_fvecs(const char *zPath, int64_t *pn, int *pd) {
  FILE *f = fopen(zPath, "rb");
  if (!f) return 0;
  fseek(f, 0, SEEK_END);
  long nByte = ftell(f);
  fseek(f, 0, SEEK_SET);
  int d = 0;
  if (fread(&d, 4, 1, f) != 1 || d <= 0) die("%s: bad fvecs", zPath);
  int64_t n = nByte / (4 + 4 * (int64_t)d);
  float *x = xmalloc((size_t)n * d * 4);
  fseek(f, 0, SEEK_SET);
  for (int64_t i = 0; i < n; i++) {
    int dd;
    if (fread(&dd, 4, 1, f) != 1 || dd != d || fread(x + i * d, 4, (size_t)d, f) != (size_t)d) die("%s: bad row", zPath);
  }
  fclose(f);
  *pn = n;
  *pd = d;
  return x;
}

static void write_fvecs(const char *zPath, const float *x, int64_t n, int d) {
  FILE *f = fopen(zPath, "wb");
  if (!f) die("cannot write %s", zPath);
  for (int64_t i = 0; i < n; i++) {
    fwrite(&d, 4, 1, f);
    fwrite(x + i * d, 4, (size_t)d, f);
  }
  fclose(f);
}

/* The 1-based rowid -> declared column grp: 1 for 10% of the rows, 2 for 1%, 3 for 0.1%, else 0. */
int grp_of(int64_t rowid) {
  int m = (int)(rowid % 1000);
  return m < 100 ? 1 : m < 110 ? 2 : m == 110 ? 3 : 0;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Faiss                                                                                                         */

void faiss_check(int rc, const char *zWhat) {
  if (rc) die("faiss %s: %s", zWhat, faiss_get_last_error());
}

/* Exact top-K rowids (label + 1) of each query among x (all threads); aRowid maps positions when non-null. */
static int64_t *exact_topk(const float *x, int64_t n, int d, const int64_t *aRowid, const float *q, int nq) {
  FaissIndexFlatL2 *idx = 0;
  faiss_check(faiss_IndexFlatL2_new_with(&idx, d), "IndexFlatL2");
  omp_set_num_threads(G.nProc);
  faiss_check(faiss_Index_add((FaissIndex *)idx, n, x), "add");
  float *D = xmalloc((size_t)nq * K * 4);
  int64_t *I = xmalloc((size_t)nq * K * 8);
  faiss_check(faiss_Index_search((FaissIndex *)idx, nq, q, K, D, I), "search");
  for (int64_t i = 0; i < (int64_t)nq * K; i++) I[i] = I[i] < 0 ? -1 : aRowid ? aRowid[I[i]] : I[i] + 1;
  faiss_Index_free((FaissIndex *)idx);
  free(D);
  return I;
}

/* Exact top-K among the rows whose rowid satisfies keep(rowid, arg). */
static int64_t *exact_topk_where(const float *x, int64_t n, int d, int (*keep)(int64_t, int), int arg, const float *q,
                                 int nq) {
  int64_t m = 0;
  for (int64_t i = 0; i < n; i++) m += keep(i + 1, arg);
  float *y = xmalloc((size_t)(m ? m : 1) * d * 4);
  int64_t *aRowid = xmalloc((size_t)(m ? m : 1) * 8);
  m = 0;
  for (int64_t i = 0; i < n; i++)
    if (keep(i + 1, arg)) {
      memcpy(y + m * d, x + i * d, (size_t)d * 4);
      aRowid[m++] = i + 1;
    }
  int64_t *I = exact_topk(y, m, d, aRowid, q, nq);
  free(y);
  free(aRowid);
  return I;
}
static int keep_mod(int64_t rowid, int m) { return rowid % m == 0; }
static int keep_grp(int64_t rowid, int g) { return grp_of(rowid) == g; }

typedef struct Stats {
  int nq;
  double rMed, rP99, rMean, rRecall, rRows;
  int bErr;
  char zErr[300];
} Stats;

int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static void stats_finish(Stats *st, double *aLat, int nq, double nHit, double nRows) {
  qsort(aLat, (size_t)nq, sizeof(double), cmp_double);
  double sum = 0;
  for (int i = 0; i < nq; i++) sum += aLat[i];
  st->nq = nq;
  st->rMed = nq % 2 ? aLat[nq / 2] : 0.5 * (aLat[nq / 2 - 1] + aLat[nq / 2]);
  int i99 = (int)ceil(0.99 * nq) - 1;
  st->rP99 = aLat[i99 < 0 ? 0 : i99];
  st->rMean = sum / nq;
  st->rRecall = nHit / ((double)nq * K);
  st->rRows = nRows / nq;
}

static int hits(const int64_t *aGot, int nGot, const int64_t *aTruth) {
  int h = 0;
  for (int i = 0; i < nGot && i < K; i++)
    for (int j = 0; j < K; j++)
      if (aGot[i] == aTruth[j]) {
        h++;
        break;
      }
  return h;
}

/* Builds a Faiss index (train when needed, add, write it to zPath); returns the seconds spent in total. */
FaissIndex *faiss_build(const char *zDesc, int d, const float *x, int64_t n, const char *zPath, double *pMs) {
  FaissIndex *idx = 0;
  omp_set_num_threads(G.nProc);
  double t0 = now_ms();
  faiss_check(faiss_index_factory(&idx, d, zDesc, METRIC_L2), "index_factory");
  if (!faiss_Index_is_trained(idx)) faiss_check(faiss_Index_train(idx, n, x), "train");
  faiss_check(faiss_Index_add(idx, n, x), "add");
  if (zPath) faiss_check(faiss_write_index_fname(idx, zPath), "write_index");
  *pMs = now_ms() - t0;
  return idx;
}

void faiss_params(FaissIndex *idx, const char *zParams) {
  if (!zParams || !*zParams) return;
  FaissParameterSpace *ps = 0;
  faiss_check(faiss_ParameterSpace_new(&ps), "ParameterSpace");
  faiss_check(faiss_ParameterSpace_set_index_parameters(ps, idx, zParams), "set_index_parameters");
  faiss_ParameterSpace_free(ps);
}

static void faiss_queries(FaissIndex *idx, const char *zParams, const float *q, int nq, int d, const int64_t *aTruth,
                          Stats *st) {
  memset(st, 0, sizeof(*st));
  faiss_params(idx, zParams);
  omp_set_num_threads(1);
  float D[K];
  int64_t I[K];
  double *aLat = xmalloc((size_t)nq * sizeof(double)), nHit = 0, nRows = 0;
  for (int i = 0; i < 3 && i < nq; i++) faiss_Index_search(idx, 1, q + (int64_t)i * d, K, D, I);
  for (int i = 0; i < nq; i++) {
    double t0 = now_ms();
    faiss_check(faiss_Index_search(idx, 1, q + (int64_t)i * d, K, D, I), "search");
    aLat[i] = now_ms() - t0;
    int64_t aGot[K];
    int nGot = 0;
    for (int j = 0; j < K; j++)
      if (I[j] >= 0) aGot[nGot++] = I[j] + 1;
    nRows += nGot;
    if (aTruth) nHit += hits(aGot, nGot, aTruth + (int64_t)i * K);
  }
  stats_finish(st, aLat, nq, nHit, nRows);
  free(aLat);
}

/* LangChain's maximal_marginal_relevance (cosine similarities, greedy), on nCand candidate vectors. */
static int mmr_select(const float *q, const float *aCand, int nCand, int d, int k, double lambda, int *aPick) {
  double *aSimQ = xmalloc((size_t)nCand * sizeof(double)), *aNorm = xmalloc((size_t)nCand * sizeof(double));
  double nq2 = 0;
  for (int j = 0; j < d; j++) nq2 += (double)q[j] * q[j];
  for (int i = 0; i < nCand; i++) {
    double dot = 0, n2 = 0;
    for (int j = 0; j < d; j++) dot += (double)q[j] * aCand[i * d + j], n2 += (double)aCand[i * d + j] * aCand[i * d + j];
    aNorm[i] = sqrt(n2);
    aSimQ[i] = dot / (sqrt(nq2) * aNorm[i] + 1e-30);
  }
  int nPick = 0, best = 0;
  for (int i = 1; i < nCand; i++)
    if (aSimQ[i] > aSimQ[best]) best = i;
  if (nCand > 0) aPick[nPick++] = best;
  while (nPick < k && nPick < nCand) {
    double bestScore = -INFINITY;
    int iAdd = -1;
    for (int i = 0; i < nCand; i++) {
      int bTaken = 0;
      for (int p = 0; p < nPick; p++) bTaken |= aPick[p] == i;
      if (bTaken) continue;
      double red = -INFINITY;
      for (int p = 0; p < nPick; p++) {
        double dot = 0;
        const float *a = aCand + (int64_t)i * d, *b = aCand + (int64_t)aPick[p] * d;
        for (int j = 0; j < d; j++) dot += (double)a[j] * b[j];
        double s = dot / (aNorm[i] * aNorm[aPick[p]] + 1e-30);
        if (s > red) red = s;
      }
      double score = lambda * aSimQ[i] - (1 - lambda) * red;
      if (score > bestScore) bestScore = score, iAdd = i;
    }
    aPick[nPick++] = iAdd;
  }
  free(aSimQ);
  free(aNorm);
  return nPick;
}

/* Faiss search(fetch_k) + reconstruct + MMR; aOut receives nq * 4 rowids for the agreement check. */
static void faiss_mmr(FaissIndex *idx, const float *q, int nq, int d, int64_t *aOut, Stats *st) {
  memset(st, 0, sizeof(*st));
  omp_set_num_threads(1);
  enum { FETCH = 20, KM = 4 };
  float D[FETCH], *aCand = xmalloc((size_t)FETCH * d * 4);
  int64_t I[FETCH];
  int aPick[KM];
  double *aLat = xmalloc((size_t)nq * sizeof(double));
  for (int i = 0; i < nq; i++) {
    double t0 = now_ms();
    faiss_check(faiss_Index_search(idx, 1, q + (int64_t)i * d, FETCH, D, I), "search");
    int n = 0;
    for (int j = 0; j < FETCH; j++)
      if (I[j] >= 0) faiss_check(faiss_Index_reconstruct(idx, I[j], aCand + (int64_t)(n++) * d), "reconstruct");
    int nPick = mmr_select(q + (int64_t)i * d, aCand, n, d, KM, 0.5, aPick);
    aLat[i] = now_ms() - t0;
    for (int j = 0; j < KM; j++) aOut[i * KM + j] = j < nPick ? I[aPick[j]] + 1 : -1;
  }
  stats_finish(st, aLat, nq, 0, 0);
  free(aLat);
  free(aCand);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* SQL engines                                                                                                   */

static char zPeerVec[600], zPeerVector[600], zPeerVss[600];

static int load(sqlite3 *db, const char *zPath, char *zErr, size_t nErr) {
  char *zMsg = 0;
  if (sqlite3_load_extension(db, zPath, 0, &zMsg) != SQLITE_OK) {
    snprintf(zErr, nErr, "cannot load %s: %s", zPath, zMsg ? zMsg : "?");
    sqlite3_free(zMsg);
    return 1;
  }
  return 0;
}

/* Opens zPath with engine e's extension(s) loaded; 0 and a message on failure. */
sqlite3 *sql_open(int e, const char *zPath, char *zErr, size_t nErr) {
  sqlite3 *db = 0;
  if (sqlite3_open_v2(zPath, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 0) != SQLITE_OK) {
    snprintf(zErr, nErr, "cannot open %s: %s", zPath, sqlite3_errmsg(db));
    sqlite3_close(db);
    return 0;
  }
  sqlite3_enable_load_extension(db, 1);
  int rc = 0;
  if (e == E_VS) rc = load(db, G.zExt, zErr, nErr);
  if (e == E_VEC) rc = load(db, zPeerVec, zErr, nErr);
  if (e == E_VSS) rc = load(db, zPeerVector, zErr, nErr) || load(db, zPeerVss, zErr, nErr);
  if (rc) {
    sqlite3_close(db);
    return 0;
  }
  return db;
}

static int sql_exec(sqlite3 *db, const char *zSql, char *zErr, size_t nErr) {
  char *zMsg = 0;
  if (sqlite3_exec(db, zSql, 0, 0, &zMsg) != SQLITE_OK) {
    snprintf(zErr, nErr, "%s: %s", zSql, zMsg ? zMsg : sqlite3_errmsg(db));
    sqlite3_free(zMsg);
    return 1;
  }
  return 0;
}

static char *sql_text(sqlite3 *db, const char *zSql) {
  sqlite3_stmt *p = 0;
  char *z = 0;
  if (sqlite3_prepare_v2(db, zSql, -1, &p, 0) == SQLITE_OK && sqlite3_step(p) == SQLITE_ROW && sqlite3_column_text(p, 0))
    z = strdup((const char *)sqlite3_column_text(p, 0));
  sqlite3_finalize(p);
  return z;
}

/* The vector as engine e takes it: float32 LE; sqlite-vss gets vector0's 'v',1 header, because a raw blob whose
** first two bytes happen to be 'v',1 would be read as a headed vector of the wrong length. */
const void *vec_blob(int e, const float *v, int d, int *pn, unsigned char *aBuf) {
  if (e != E_VSS) {
    *pn = 4 * d;
    return v;
  }
  aBuf[0] = 'v';
  aBuf[1] = 1;
  memcpy(aBuf + 2, v, (size_t)d * 4);
  *pn = 4 * d + 2;
  return aBuf;
}

static const char *create_sql(int e, int d, const char *zIndex, int bGrp, char *z, size_t n) {
  if (e == E_VS) snprintf(z, n, "CREATE VIRTUAL TABLE t USING vecstore(dim=%d, index='%s'%s)", d, zIndex, bGrp ? ", grp INTEGER" : "");
  if (e == E_VEC) snprintf(z, n, "CREATE VIRTUAL TABLE t USING vec0(embedding float[%d]%s)", d, bGrp ? ", grp integer" : "");
  if (e == E_VSS) snprintf(z, n, "CREATE VIRTUAL TABLE t USING vss0(embedding(%d) factory=\"%s,IDMap2\")", d, zIndex);
  return z;
}

const char *knn_sql(int e, int k, const char *zExtra, char *z, size_t n) {
  if (e == E_VSS)
    snprintf(z, n, "SELECT rowid, distance FROM t WHERE vss_search(embedding, vss_search_params(?1, %d))%s", k, zExtra);
  else
    snprintf(z, n, "SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND k = %d%s", k, zExtra);
  return z;
}

void remove_db(const char *zPath) {
  const char *aSuf[] = {"", "-journal", "-wal", "-shm"};
  for (int i = 0; i < 4; i++) {
    char z[700];
    snprintf(z, sizeof(z), "%s%s", zPath, aSuf[i]);
    unlink(z);
  }
}

/* Creates table t in a fresh file and inserts n rows in one transaction; returns the milliseconds, or -1. */
double sql_build(Table *t, const char *zIndex, const float *x, int64_t n, int64_t nFrom) {
  char zSql[300];
  remove_db(t->zPath);
  t->db = sql_open(t->e, t->zPath, t->zErr, sizeof(t->zErr));
  if (!t->db) return -1;
  double t0 = now_ms();
  if (sql_exec(t->db, create_sql(t->e, t->d, zIndex, t->bGrp, zSql, sizeof(zSql)), t->zErr, sizeof(t->zErr))) return -1;
  if (sql_exec(t->db, "BEGIN", t->zErr, sizeof(t->zErr))) return -1;
  if (t->bNoRowid && t->bGrp) die("sql_build: the grp column needs the rowid");
  if (t->bNoRowid)
    snprintf(zSql, sizeof(zSql), "INSERT INTO t(embedding) VALUES (?2)");
  else
    snprintf(zSql, sizeof(zSql), "INSERT INTO t(rowid, embedding%s) VALUES (?1, ?2%s)", t->bGrp ? ", grp" : "",
             t->bGrp ? ", ?3" : "");
  sqlite3_stmt *p = 0;
  if (sqlite3_prepare_v2(t->db, zSql, -1, &p, 0) != SQLITE_OK) {
    snprintf(t->zErr, sizeof(t->zErr), "%s: %s", zSql, sqlite3_errmsg(t->db));
    return -1;
  }
  unsigned char *aBuf = xmalloc((size_t)t->d * 4 + 2);
  for (int64_t i = nFrom; i < n; i++) {
    int nb;
    const void *pBlob = vec_blob(t->e, x + i * t->d, t->d, &nb, aBuf);
    if (!t->bNoRowid) sqlite3_bind_int64(p, 1, i + 1);
    sqlite3_bind_blob(p, 2, pBlob, nb, SQLITE_TRANSIENT);
    if (t->bGrp) sqlite3_bind_int(p, 3, grp_of(i + 1));
    if (sqlite3_step(p) != SQLITE_DONE) {
      snprintf(t->zErr, sizeof(t->zErr), "insert of row %lld: %s", (long long)i + 1, sqlite3_errmsg(t->db));
      sqlite3_finalize(p);
      free(aBuf);
      return -1;
    }
    sqlite3_reset(p);
  }
  sqlite3_finalize(p);
  free(aBuf);
  if (sql_exec(t->db, "COMMIT", t->zErr, sizeof(t->zErr))) return -1;
  t->bOk = 1;
  return now_ms() - t0;
}

void sql_close(Table *t) {
  if (t->db) sqlite3_close(t->db);
  t->db = 0;
}

/* Runs zSql (?1 = the query vector, ?2 = zParam text when given) for each query; recall against aTruth. */
static int sql_queries(sqlite3 *db, int e, const char *zSql, const char *zParam, const float *q, int nq, int d,
                       const int64_t *aTruth, int64_t *aOut, int nOut, Stats *st) {
  memset(st, 0, sizeof(*st));
  sqlite3_stmt *p = 0;
  if (sqlite3_prepare_v2(db, zSql, -1, &p, 0) != SQLITE_OK) {
    st->bErr = 1;
    snprintf(st->zErr, sizeof(st->zErr), "%s", sqlite3_errmsg(db));
    return 1;
  }
  unsigned char *aBuf = xmalloc((size_t)d * 4 + 2);
  double *aLat = xmalloc((size_t)nq * sizeof(double)), nHit = 0, nRows = 0;
  int nWarm = nq < 3 ? nq : 3, nDisorder = 0;
  for (int it = -nWarm; it < nq; it++) {
    int i = it < 0 ? it + nWarm : it;
    int nb;
    const void *pBlob = vec_blob(e, q + (int64_t)i * d, d, &nb, aBuf);
    double t0 = now_ms();
    sqlite3_bind_blob(p, 1, pBlob, nb, SQLITE_STATIC);
    if (zParam) sqlite3_bind_text(p, 2, zParam, -1, SQLITE_STATIC);
    int64_t aGot[64];
    double aDist[64];
    int nGot = 0, rc;
    while ((rc = sqlite3_step(p)) == SQLITE_ROW)
      if (nGot < 64) aDist[nGot] = sqlite3_column_double(p, 1), aGot[nGot++] = sqlite3_column_int64(p, 0);
    double t1 = now_ms();
    for (int j = 1; j < nGot && it >= 0; j++)
      if (aDist[j] < aDist[j - 1] - 1e-5 * fabs(aDist[j - 1])) {
        nDisorder++;
        break;
      }
    if (rc != SQLITE_DONE) {
      st->bErr = 1;
      snprintf(st->zErr, sizeof(st->zErr), "%s", sqlite3_errmsg(db));
      sqlite3_finalize(p);
      free(aBuf);
      free(aLat);
      return 1;
    }
    sqlite3_reset(p);
    if (it < 0) continue;
    aLat[i] = t1 - t0;
    nRows += nGot;
    if (aTruth) nHit += hits(aGot, nGot, aTruth + (int64_t)i * K);
    if (aOut)
      for (int j = 0; j < nOut; j++) aOut[(int64_t)i * nOut + j] = j < nGot ? aGot[j] : -1;
  }
  sqlite3_finalize(p);
  stats_finish(st, aLat, nq, nHit, nRows);
  free(aBuf);
  free(aLat);
  if (nDisorder && !strstr(zSql, "lambda_mult"))
    note("%s: %d of %d queries returned rows out of distance order (%s%s%s)", ENGINE[e], nDisorder, nq, zSql,
         zParam ? "; ?2 = " : "", zParam ? zParam : "");
  return 0;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Child processes: open + first query + peak RSS                                                               */

long proc_status_kb(const char *zKey) {
  FILE *f = fopen("/proc/self/status", "r");
  char zLine[256];
  long v = -1;
  size_t n = strlen(zKey);
  while (f && fgets(zLine, sizeof(zLine), f))
    if (strncmp(zLine, zKey, n) == 0 && zLine[n] == ':') v = atol(zLine + n + 1);
  if (f) fclose(f);
  return v;
}

/* Sets the peak RSS (VmHWM) to the current RSS, so that VmHWM minus VmRSS read now is what comes after. */
void reset_peak_rss(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w"); /* "5" resets the peak RSS to the current RSS */
  if (f) {
    fputs("5", f);
    fclose(f);
  }
}

/* In the child: prints "open_first_ms hwm_delta_kb nq_done". */
static int child_main(int argc, char **argv) {
  if (argc < 5) die("--child ENGINE PATH QFILE NQ [PARAMS]");
  int e = -1;
  for (int i = 0; i < E_N; i++)
    if (strcmp(argv[0], ENGINE[i]) == 0) e = i;
  if (e < 0) die("unknown engine %s", argv[0]);
  const char *zPath = argv[1], *zParams = argc > 4 ? argv[4] : "";
  int64_t nq;
  int d;
  float *q = read_fvecs(argv[2], &nq, &d);
  if (!q) die("cannot read %s", argv[2]);
  int nRun = atoi(argv[3]);
  if (nRun > nq) nRun = (int)nq;
  reset_peak_rss();
  long base = proc_status_kb("VmRSS");
  double t0 = now_ms(), tFirst = 0;
  if (e == E_FAISS) {
    FaissIndex *idx = 0;
    faiss_check(faiss_read_index_fname(zPath, 0, &idx), "read_index");
    faiss_params(idx, zParams);
    omp_set_num_threads(1);
    float D[K];
    int64_t I[K];
    for (int i = 0; i < nRun; i++) {
      faiss_check(faiss_Index_search(idx, 1, q + (int64_t)i * d, K, D, I), "search");
      if (i == 0) tFirst = now_ms() - t0;
    }
    printf("%.3f %ld %d\n", tFirst, proc_status_kb("VmHWM") - base, nRun);
    return 0;
  }
  char zErr[400], zSql[300];
  sqlite3 *db = sql_open(e, zPath, zErr, sizeof(zErr));
  if (!db) die("%s", zErr);
  knn_sql(e, K, (e == E_VS && *zParams) ? " AND search_params = ?2" : "", zSql, sizeof(zSql));
  sqlite3_stmt *p = 0;
  if (sqlite3_prepare_v2(db, zSql, -1, &p, 0) != SQLITE_OK) die("%s: %s", zSql, sqlite3_errmsg(db));
  unsigned char *aBuf = xmalloc((size_t)d * 4 + 2);
  for (int i = 0; i < nRun; i++) {
    int nb;
    const void *pBlob = vec_blob(e, q + (int64_t)i * d, d, &nb, aBuf);
    sqlite3_bind_blob(p, 1, pBlob, nb, SQLITE_STATIC);
    if (e == E_VS && *zParams) sqlite3_bind_text(p, 2, zParams, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) die("query: %s", sqlite3_errmsg(db));
    sqlite3_reset(p);
    if (i == 0) tFirst = now_ms() - t0;
  }
  printf("%.3f %ld %d\n", tFirst, proc_status_kb("VmHWM") - base, nRun);
  sqlite3_finalize(p);
  sqlite3_close(db);
  return 0;
}

int run_self(char *const *azArg, int nArg, char *zOut, size_t nOut) {
  int fd[2];
  if (pipe(fd)) die("pipe");
  char zSelf[600];
  ssize_t n = readlink("/proc/self/exe", zSelf, sizeof(zSelf) - 1);
  if (n <= 0) die("readlink /proc/self/exe");
  zSelf[n] = 0;
  char **argv = xmalloc(((size_t)nArg + 6) * sizeof(char *));
  argv[0] = zSelf;
  argv[1] = "--ext";
  argv[2] = (char *)G.zExt;
  argv[3] = "--peers";
  argv[4] = (char *)G.zPeers;
  for (int i = 0; i < nArg; i++) argv[5 + i] = azArg[i];
  argv[5 + nArg] = 0;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    execv(zSelf, argv);
    _exit(127);
  }
  free(argv);
  close(fd[1]);
  memset(zOut, 0, nOut);
  size_t nGot = 0;
  ssize_t r;
  while (nGot < nOut - 1 && (r = read(fd[0], zOut + nGot, nOut - 1 - nGot)) > 0) nGot += (size_t)r;
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : status ? status : -1;
}

/* Runs a child; returns 0 and fills *pOpenMs, *pMb, or 1 (message in zErr). */
int run_child(int e, const char *zPath, const char *zQFile, int nq, const char *zParams, double *pOpenMs,
              double *pMb, char *zErr, size_t nErr) {
  char zNq[32], zOut[256];
  snprintf(zNq, sizeof(zNq), "%d", nq);
  char *azArg[] = {"--child", (char *)ENGINE[e], (char *)zPath, (char *)zQFile, zNq, (char *)(zParams ? zParams : "")};
  long kb = 0;
  int nDone = 0, status = run_self(azArg, 6, zOut, sizeof(zOut));
  if (status || sscanf(zOut, "%lf %ld %d", pOpenMs, &kb, &nDone) != 3) {
    snprintf(zErr, nErr, "child for %s on %s failed (status %d)", ENGINE[e], zPath, status);
    return 1;
  }
  *pMb = kb / 1024.0;
  return 0;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* The workload                                                                                                  */

char *path_in_dir(const char *zName) { return fmt("%s/%s", G.zDir, zName); }

const char *size_label(int64_t n) {
  static char z[8][32];
  static int i;
  char *p = z[i++ % 8];
  if (n >= 1000000 && n % 1000000 == 0) snprintf(p, 32, "%lldM", (long long)(n / 1000000));
  else if (n >= 1000 && n % 1000 == 0) snprintf(p, 32, "%lldk", (long long)(n / 1000));
  else snprintf(p, 32, "%lld", (long long)n);
  return p;
}

int engine_usable(int e) { return e == E_FAISS || G.bHave[e]; }

/* Reports a failed step of engine e: the cell shows "error" and the message goes to the notes. */
void fail(int iSec, int eDir, const char *zLabel, int e, const char *zErr) {
  put_text(iSec, eDir, zLabel, e, "error");
  note("%s, %s: %s", ENGINE[e], zLabel, zErr);
}

static void record_query(int iSec, const char *zWhat, int e, const Stats *st, int bRecall) {
  char z[200];
  if (st->bErr) {
    snprintf(z, sizeof(z), "%s median", zWhat);
    fail(iSec, LOWER, z, e, st->zErr);
    return;
  }
  snprintf(z, sizeof(z), "%s median", zWhat);
  put(iSec, LOWER, z, e, st->rMed);
  snprintf(z, sizeof(z), "%s p99", zWhat);
  put(iSec, LOWER, z, e, st->rP99);
  if (bRecall) {
    snprintf(z, sizeof(z), "%s recall@10", zWhat);
    put(iSec, PLAIN, z, e, st->rRecall);
  }
}

/* Memory of one stored file (open + 20 queries), in a child process; bench_store.c times the open itself. */
static void child_figures(int e, const char *zPath, const char *zQFile, const char *zParams, const char *zWhat) {
  double ms, mb;
  char zErr[300], zLabel[200];
  snprintf(zLabel, sizeof(zLabel), "%s", zWhat);
  if (run_child(e, zPath, zQFile, G.nq < 20 ? G.nq : 20, zParams, &ms, &mb, zErr, sizeof(zErr))) {
    fail(S_MEM, LOWER, zLabel, e, zErr);
    return;
  }
  put(S_MEM, LOWER, zLabel, e, mb);
  logf_("  %s %s: open+first %.1f ms, peak RSS +%.1f MB", ENGINE[e], zWhat, ms, mb);
}

/* ---- bigann10k ---------------------------------------------------------------------------------------------- */

static void bench_real(void) {
  char *zBase = fmt("%s/bigann10k_holdout_base9900.fvecs", G.zData);
  char *zQ = fmt("%s/bigann10k_holdout_query100.fvecs", G.zData);
  char *zGt = fmt("%s/bigann10k_holdout_groundtruth100.ivecs", G.zData);
  int64_t n, nq;
  int d, dq;
  float *x = read_fvecs(zBase, &n, &d), *q = read_fvecs(zQ, &nq, &dq);
  FILE *f = fopen(zGt, "rb");
  if (!x || !q || !f || d != dq) {
    note("bigann10k: data not found under %s; real-data section skipped", G.zData);
    if (f) fclose(f);
    return;
  }
  int64_t *aTruth = xmalloc((size_t)nq * K * 8);
  for (int64_t i = 0; i < nq; i++) {
    int kk;
    if (fread(&kk, 4, 1, f) != 1 || kk < K) die("%s: bad ivecs", zGt);
    int32_t *a = xmalloc((size_t)kk * 4);
    if (fread(a, 4, (size_t)kk, f) != (size_t)kk) die("%s: short", zGt);
    for (int j = 0; j < K; j++) aTruth[i * K + j] = a[j] + 1;
    free(a);
  }
  fclose(f);
  logf_("bigann10k: %lld x %d, %lld queries", (long long)n, d, (long long)nq);

  const char *aIndex[] = {"Flat", "HNSW32"};
  for (int ix = 0; ix < 2; ix++) {
    for (int e = 0; e < E_N; e++) {
      if (!engine_usable(e) || (e == E_VEC && ix == 1)) continue;
      char zLabel[160], zSql[300];
      snprintf(zLabel, sizeof(zLabel), "%s insert (rows/s)", aIndex[ix]);
      Stats st;
      if (e == E_FAISS) {
        double ms;
        FaissIndex *idx = faiss_build(aIndex[ix], d, x, n, 0, &ms);
        put(S_REAL, HIGHER, zLabel, e, n / (ms / 1e3));
        for (int ef = 16; ef <= 64; ef *= 4) {
          char zP[32], zW[64];
          snprintf(zP, sizeof(zP), "efSearch=%d", ef);
          if (ix) snprintf(zW, sizeof(zW), "HNSW32 efSearch=%d", ef);
          else snprintf(zW, sizeof(zW), "Flat");
          faiss_queries(idx, ix ? zP : 0, q, (int)nq, d, aTruth, &st);
          record_query(S_REAL, zW, e, &st, 1);
          if (!ix) break;
        }
        faiss_Index_free(idx);
        continue;
      }
      Table t = {.e = e, .d = d};
      char *zP = path_in_dir(fmt("real_%s_%s.db", aIndex[ix], ENGINE[e]));
      snprintf(t.zPath, sizeof(t.zPath), "%s", zP);
      double ms = sql_build(&t, aIndex[ix], x, n, 0);
      if (ms < 0) {
        fail(S_REAL, HIGHER, zLabel, e, t.zErr);
        sql_close(&t);
        continue;
      }
      put(S_REAL, HIGHER, zLabel, e, n / (ms / 1e3));
      for (int ef = 16; ef <= 64; ef *= 4) {
        char zW[64], zPar[32];
        if (ix) snprintf(zW, sizeof(zW), "HNSW32 efSearch=%d", ef);
        else snprintf(zW, sizeof(zW), "Flat");
        snprintf(zPar, sizeof(zPar), "efSearch=%d", ef);
        if (e == E_VSS && ix && ef != 16) {
          put_text(S_REAL, LOWER, fmt("%s median", zW), e, "n/a (fixed 16)");
          continue;
        }
        knn_sql(e, K, (e == E_VS && ix) ? " AND search_params = ?2" : "", zSql, sizeof(zSql));
        sql_queries(t.db, e, zSql, (e == E_VS && ix) ? zPar : 0, q, (int)nq, d, aTruth, 0, 0, &st);
        record_query(S_REAL, zW, e, &st, 1);
        if (!ix) break;
      }
      sql_close(&t);
      remove_db(t.zPath);
    }
  }
  free(x);
  free(q);
  free(aTruth);
}

/* ---- exact (Flat) tables ------------------------------------------------------------------------------------ */

/* MMR on an open vecstore table against Faiss + C MMR on the same rows; agreement of the picked rowids. */
static void bench_mmr(sqlite3 *db, FaissIndex *idx, const Dataset *ds, const char *zWhat, const char *zParams) {
  char zLabel[200];
  int nq = G.nq;
  int64_t *aVs = xmalloc((size_t)nq * 4 * 8), *aFa = xmalloc((size_t)nq * 4 * 8);
  Stats sv, sf;
  snprintf(zLabel, sizeof(zLabel), "%s median (ms)", zWhat);
  faiss_params(idx, zParams);
  faiss_mmr(idx, ds->q, nq, ds->d, aFa, &sf);
  put(S_MMR, LOWER, zLabel, E_FAISS, sf.rMed);
  if (db) {
    if (sql_queries(db, E_VS,
                    zParams ? "SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND k = 4 AND fetch_k = 20 AND "
                              "lambda_mult = 0.5 AND search_params = ?2"
                            : "SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND k = 4 AND fetch_k = 20 AND "
                              "lambda_mult = 0.5",
                    zParams, ds->q, nq, ds->d, 0, aVs, 4, &sv)) {
      fail(S_MMR, LOWER, zLabel, E_VS, sv.zErr);
    } else {
      put(S_MMR, LOWER, zLabel, E_VS, sv.rMed);
      int nSame = 0;
      for (int i = 0; i < nq * 4; i++) nSame += aVs[i] == aFa[i];
      snprintf(zLabel, sizeof(zLabel), "%s: rowids equal to LangChain's MMR order (%%)", zWhat);
      put(S_MMR, PLAIN, zLabel, E_VS, 100.0 * nSame / (nq * 4));
    }
  }
  free(aVs);
  free(aFa);
}

/* Flat on n rows of ds: insert, latency, MMR (128 only), memory, size. */
static void bench_flat(Dataset *ds, int64_t n, int bGrp, const int64_t *aTruth, Table *aKeep) {
  char zWhat[160], zLabel[200], zSql[300];
  snprintf(zWhat, sizeof(zWhat), "Flat %s x %d%s", size_label(n), ds->d, bGrp ? " (+grp column)" : "");
  logf_("%s", zWhat);
  int bBig = n == G.nBig && ds->d == 128 && aKeep; /* the files kept for bench_store */
  FaissIndex *idxFaiss = 0;
  static const int aOrder[E_N] = {E_FAISS, E_VS, E_VEC, E_VSS}; /* Faiss first: vecstore's MMR check uses it */
  for (int io = 0; io < E_N; io++) {
    int e = aOrder[io];
    if (!engine_usable(e)) continue;
    snprintf(zLabel, sizeof(zLabel), "%s", zWhat);
    if (e == E_VSS && n > VSS_MAX_ROWS) {
      put_text(S_INSERT, HIGHER, zLabel, e, "skipped");
      continue;
    }
    if (e == E_FAISS) {
      double ms;
      char *zP = path_in_dir(fmt("flat_%s_%d.faiss", size_label(n), ds->d));
      idxFaiss = faiss_build("Flat", ds->d, ds->x, n, zP, &ms);
      put(S_INSERT, HIGHER, zLabel, e, n / (ms / 1e3));
      record_size(zWhat, e, zP, n, ds->d);
      if (bBig) store_file("Flat", zWhat, e, zP, "");
      Stats st;
      faiss_queries(idxFaiss, 0, ds->q, ds->nq, ds->d, aTruth, &st);
      record_query(S_FLAT, zWhat, e, &st, 0);
      logf_("  faiss: build %.0f ms, median %.3f ms, recall %.3f", ms, st.rMed, st.rRecall);
      child_figures(e, zP, ds->zQFile, 0, zWhat);
      continue;
    }
    Table t = {.e = e, .d = ds->d, .bGrp = bGrp && e != E_VSS};
    char *zP = path_in_dir(fmt("flat_%s_%d_%s.db", size_label(n), ds->d, ENGINE[e]));
    snprintf(t.zPath, sizeof(t.zPath), "%s", zP);
    double ms = sql_build(&t, "Flat", ds->x, n, 0);
    if (ms < 0) {
      fail(S_INSERT, HIGHER, zLabel, e, t.zErr);
      sql_close(&t);
      continue;
    }
    put(S_INSERT, HIGHER, zLabel, e, n / (ms / 1e3));
    Stats st;
    sql_queries(t.db, e, knn_sql(e, K, "", zSql, sizeof(zSql)), 0, ds->q, ds->nq, ds->d, aTruth, 0, 0, &st);
    record_query(S_FLAT, zWhat, e, &st, 0);
    if (!st.bErr && st.rRecall < 0.999) note("%s, %s: exact search recall@10 is %.4f, not 1", ENGINE[e], zWhat, st.rRecall);
    logf_("  %s: insert %.0f ms (%.0f rows/s), median %.3f ms, recall %.3f", ENGINE[e], ms, n / (ms / 1e3), st.rMed,
          st.rRecall);
    if (e == E_VS && ds->d == 128 && idxFaiss == 0) die("faiss must run before vecstore");
    if (e == E_VS && ds->d == 128 && !bGrp) bench_mmr(t.db, idxFaiss, ds, zWhat, 0);
    sql_close(&t);
    record_size(zWhat, e, t.zPath, n, ds->d);
    if (bBig) store_file("Flat", zWhat, e, t.zPath, "");
    child_figures(e, t.zPath, ds->zQFile, 0, zWhat);
    if (aKeep) aKeep[e] = t;
    else remove_db(t.zPath);
  }
  if (idxFaiss) faiss_Index_free(idxFaiss);
}

/* ---- one-row commits ---------------------------------------------------------------------------------------- */

static void commit_sql(Table *t, const float *xNew, int nCommit, int64_t iFirstRowid, const char *zWhat) {
  char zErr[400];
  sync(); /* the files written before would otherwise be flushed by the first fsyncs measured here */
  sqlite3 *db = sql_open(t->e, t->zPath, zErr, sizeof(zErr));
  if (!db) {
    fail(S_COMMIT, LOWER, zWhat, t->e, zErr);
    return;
  }
  /* a first query loads the index, as a running application would have */
  char zSql[300];
  Stats st;
  sql_queries(db, t->e, knn_sql(t->e, K, "", zSql, sizeof(zSql)), 0, xNew, 1, t->d, 0, 0, 0, &st);
  snprintf(zSql, sizeof(zSql), "INSERT INTO t(rowid, embedding%s) VALUES (?1, ?2%s)", t->bGrp ? ", grp" : "",
           t->bGrp ? ", ?3" : "");
  sqlite3_stmt *p = 0;
  if (sqlite3_prepare_v2(db, zSql, -1, &p, 0) != SQLITE_OK) {
    fail(S_COMMIT, LOWER, zWhat, t->e, sqlite3_errmsg(db));
    sqlite3_close(db);
    return;
  }
  double *aLat = xmalloc((size_t)nCommit * sizeof(double));
  unsigned char *aBuf = xmalloc((size_t)t->d * 4 + 2);
  for (int i = 0; i < nCommit; i++) {
    int nb;
    const void *pBlob = vec_blob(t->e, xNew + (int64_t)i * t->d, t->d, &nb, aBuf);
    double t0 = now_ms();
    sqlite3_bind_int64(p, 1, iFirstRowid + i);
    sqlite3_bind_blob(p, 2, pBlob, nb, SQLITE_STATIC);
    if (t->bGrp) sqlite3_bind_int(p, 3, grp_of(iFirstRowid + i));
    if (sqlite3_step(p) != SQLITE_DONE) {
      fail(S_COMMIT, LOWER, zWhat, t->e, sqlite3_errmsg(db));
      sqlite3_finalize(p);
      sqlite3_close(db);
      free(aLat);
      free(aBuf);
      return;
    }
    sqlite3_reset(p);
    aLat[i] = now_ms() - t0;
  }
  Stats s = {0};
  put(S_COMMIT, LOWER, fmt("%s, first commit after open", zWhat), t->e, aLat[0]);
  stats_finish(&s, aLat, nCommit, 0, 0);
  put(S_COMMIT, LOWER, zWhat, t->e, s.rMed);
  put(S_COMMIT, LOWER, fmt("%s, p99", zWhat), t->e, s.rP99);
  logf_("  %s %s: one-row commit median %.2f ms (p99 %.2f)", ENGINE[t->e], zWhat, s.rMed, s.rP99);
  sqlite3_finalize(p);
  sqlite3_close(db);
  free(aLat);
  free(aBuf);
}

static void commit_faiss(const char *zIndexPath, const float *xNew, int nCommit, int d, const char *zWhat) {
  FaissIndex *idx = 0;
  if (faiss_read_index_fname(zIndexPath, 0, &idx)) {
    fail(S_COMMIT, LOWER, zWhat, E_FAISS, faiss_get_last_error());
    return;
  }
  omp_set_num_threads(1);
  sync();
  char *zTmp = fmt("%s.commit", zIndexPath);
  double *aLat = xmalloc((size_t)nCommit * sizeof(double));
  for (int i = 0; i < nCommit; i++) {
    double t0 = now_ms();
    faiss_check(faiss_Index_add(idx, 1, xNew + (int64_t)i * d), "add");
    faiss_check(faiss_write_index_fname(idx, zTmp), "write_index");
    aLat[i] = now_ms() - t0;
  }
  Stats s = {0};
  put(S_COMMIT, LOWER, fmt("%s, first commit after open", zWhat), E_FAISS, aLat[0]);
  stats_finish(&s, aLat, nCommit, 0, 0);
  put(S_COMMIT, LOWER, zWhat, E_FAISS, s.rMed);
  put(S_COMMIT, LOWER, fmt("%s, p99", zWhat), E_FAISS, s.rP99);
  logf_("  faiss %s: add + write_index median %.2f ms", zWhat, s.rMed);
  unlink(zTmp);
  faiss_Index_free(idx);
  free(aLat);
}

/* ---- approximate indexes at 1M ------------------------------------------------------------------------------ */

typedef struct Sweep {
  const char *zIndex, *zParam;
  const int *aVal;
  int nVal;
} Sweep;

/* Sweeps the parameter for engine e (Faiss index or vecstore connection); records curve points and returns the
** chosen point (smallest value with recall >= 0.95, else the best recall). */
static int sweep(int e, FaissIndex *idx, sqlite3 *db, const Sweep *sw, const Dataset *ds, const int64_t *aTruth,
                 const char *zWhat, Stats *pBest, int *piBest) {
  int iBest = -1;
  Stats best = {0};
  for (int i = 0; i < sw->nVal; i++) {
    char zP[64], zSql[300];
    snprintf(zP, sizeof(zP), "%s=%d", sw->zParam, sw->aVal[i]);
    Stats st;
    if (e == E_FAISS) faiss_queries(idx, zP, ds->q, ds->nq, ds->d, aTruth, &st);
    else if (sql_queries(db, e, knn_sql(e, K, " AND search_params = ?2", zSql, sizeof(zSql)), zP, ds->q, ds->nq, ds->d,
                         aTruth, 0, 0, &st)) {
      *pBest = st;
      return 1;
    }
    if (nPoint < 256) {
      Point *pt = &aPoint[nPoint++];
      snprintf(pt->zIndex, sizeof(pt->zIndex), "%s", zWhat);
      pt->e = e;
      snprintf(pt->zParam, sizeof(pt->zParam), "%s", sw->zParam);
      pt->iParam = sw->aVal[i];
      pt->rRecall = st.rRecall;
      pt->rMed = st.rMed;
      pt->rP99 = st.rP99;
    }
    logf_("  %s %s: recall %.3f, median %.3f ms, p99 %.3f ms", ENGINE[e], zP, st.rRecall, st.rMed, st.rP99);
    /* the first setting that reaches 0.95 is the operating point; until then the best recall so far */
    if (iBest < 0 || (best.rRecall < 0.95 && st.rRecall > best.rRecall)) {
      iBest = i;
      best = st;
    }
    if (st.rRecall >= 0.999) break; /* the rest of the curve is flat */
  }
  *pBest = best;
  *piBest = iBest;
  return 0;
}

static void record_ann(const char *zWhat, int e, const Sweep *sw, const Stats *st, int iBest) {
  char z[200];
  snprintf(z, sizeof(z), "%s: %s chosen", zWhat, sw->zParam);
  char zV[64];
  snprintf(zV, sizeof(zV), "%d%s", sw->aVal[iBest], st->rRecall < 0.95 ? " (max; recall < 0.95)" : "");
  put_text(S_ANN, PLAIN, z, e, zV);
  snprintf(z, sizeof(z), "%s: recall@10", zWhat);
  put(S_ANN, PLAIN, z, e, st->rRecall);
  snprintf(z, sizeof(z), "%s: median ms", zWhat);
  put(S_ANN, LOWER, z, e, st->rMed);
  snprintf(z, sizeof(z), "%s: p99 ms", zWhat);
  put(S_ANN, LOWER, z, e, st->rP99);
}

/* Filtered queries on an open table: SQL post-filter (rowid % m = 0) and declared-column pre-filter (grp = g). */
static void bench_filters(Table *t, const Dataset *ds, int64_t n, const char *zWhat, const char *zParams,
                          int64_t **aaTruthMod, int64_t **aaTruthGrp) {
  static const int aMod[3] = {10, 100, 1000}, aGrp[3] = {1, 2, 3};
  static const char *aSel[3] = {"10%", "1%", "0.1%"};
  int nq = G.nqFilter;
  (void)n;
  for (int s = 0; s < 3; s++) {
    char zSql[400], zExtra[200], zLabel[200];
    Stats st;
    /* post-filter: vecstore streams with LIMIT; the peers need k (SQLite < 3.41 does not hand them LIMIT) */
    if (t->e == E_VS)
      snprintf(zSql, sizeof(zSql), "SELECT rowid, distance FROM t WHERE embedding MATCH ?1 AND rowid %% %d = 0%s LIMIT %d",
               aMod[s], zParams ? " AND search_params = ?2" : "", K);
    else {
      snprintf(zExtra, sizeof(zExtra), " AND rowid %% %d = 0 LIMIT %d", aMod[s], K);
      knn_sql(t->e, K, zExtra, zSql, sizeof(zSql));
    }
    snprintf(zLabel, sizeof(zLabel), "%s, post-filter rowid %% %d = 0 (%s)", zWhat, aMod[s], aSel[s]);
    if (sql_queries(t->db, t->e, zSql, zParams, ds->q, nq, ds->d, aaTruthMod[s], 0, 0, &st)) {
      fail(S_FILTER, LOWER, fmt("%s: median ms", zLabel), t->e, st.zErr);
    } else {
      put(S_FILTER, PLAIN, fmt("%s: rows", zLabel), t->e, st.rRows);
      put(S_FILTER, PLAIN, fmt("%s: recall@10", zLabel), t->e, st.rRecall);
      put(S_FILTER, LOWER, fmt("%s: median ms", zLabel), t->e, st.rMed);
      logf_("  %s %s: rows %.1f recall %.3f median %.2f ms", ENGINE[t->e], zLabel, st.rRows, st.rRecall, st.rMed);
    }
    if (!t->bGrp) continue;
    snprintf(zExtra, sizeof(zExtra), " AND grp = %d%s", aGrp[s], (t->e == E_VS && zParams) ? " AND search_params = ?2" : "");
    knn_sql(t->e, K, zExtra, zSql, sizeof(zSql));
    snprintf(zLabel, sizeof(zLabel), "%s, pre-filter grp = %d (%s)", zWhat, aGrp[s], aSel[s]);
    if (sql_queries(t->db, t->e, zSql, t->e == E_VS ? zParams : 0, ds->q, nq, ds->d, aaTruthGrp[s], 0, 0, &st)) {
      fail(S_FILTER, LOWER, fmt("%s: median ms", zLabel), t->e, st.zErr);
    } else {
      put(S_FILTER, PLAIN, fmt("%s: rows", zLabel), t->e, st.rRows);
      put(S_FILTER, PLAIN, fmt("%s: recall@10", zLabel), t->e, st.rRecall);
      put(S_FILTER, LOWER, fmt("%s: median ms", zLabel), t->e, st.rMed);
      logf_("  %s %s: rows %.1f recall %.3f median %.2f ms", ENGINE[t->e], zLabel, st.rRows, st.rRecall, st.rMed);
    }
  }
}

/* An approximate index on nBig rows: build through vecstore (with grp), Faiss and (small sizes) sqlite-vss;
** recall/latency sweep; filters, MMR, memory, size. Leaves the vecstore file for the commit test. */
static void bench_ann(Dataset *ds, const Sweep *sw, const int64_t *aTruth, int64_t **aaTruthMod,
                      int64_t **aaTruthGrp, Table *pKeep) {
  int64_t n = G.nBig;
  char zWhat[160];
  snprintf(zWhat, sizeof(zWhat), "%s %s x %d", sw->zIndex, size_label(n), ds->d);
  logf_("%s", zWhat);
  char zInsert[200];
  snprintf(zInsert, sizeof(zInsert), "%s (+grp column)", zWhat);
  /* Faiss */
  double ms;
  char *zFaissPath = path_in_dir(fmt("ann_%s.faiss", sw->zIndex));
  FaissIndex *idx = faiss_build(sw->zIndex, ds->d, ds->x, n, zFaissPath, &ms);
  logf_("  faiss: build %.1f s", ms / 1e3);
  put(S_INSERT, HIGHER, zInsert, E_FAISS, n / (ms / 1e3));
  record_size(zWhat, E_FAISS, zFaissPath, n, ds->d);
  Stats stF, stV;
  int iF = -1, iV = -1;
  sweep(E_FAISS, idx, 0, sw, ds, aTruth, zWhat, &stF, &iF);
  record_ann(zWhat, E_FAISS, sw, &stF, iF);
  char zParF[64];
  snprintf(zParF, sizeof(zParF), "%s=%d", sw->zParam, sw->aVal[iF]);
  store_file(sw->zIndex, zWhat, E_FAISS, zFaissPath, zParF);
  child_figures(E_FAISS, zFaissPath, ds->zQFile, zParF, zWhat);

  /* vecstore */
  Table t = {.e = E_VS, .d = ds->d, .bGrp = 1};
  snprintf(t.zPath, sizeof(t.zPath), "%s", path_in_dir(fmt("ann_%s_vecstore.db", sw->zIndex)));
  ms = sql_build(&t, sw->zIndex, ds->x, n, 0);
  if (ms < 0) {
    fail(S_INSERT, HIGHER, zInsert, E_VS, t.zErr);
  } else {
    logf_("  vecstore: insert + commit %.1f s", ms / 1e3);
    put(S_INSERT, HIGHER, zInsert, E_VS, n / (ms / 1e3));
    if (sweep(E_VS, 0, t.db, sw, ds, aTruth, zWhat, &stV, &iV)) {
      fail(S_ANN, LOWER, fmt("%s: median ms", zWhat), E_VS, stV.zErr);
    } else {
      record_ann(zWhat, E_VS, sw, &stV, iV);
      char zPar[64];
      snprintf(zPar, sizeof(zPar), "%s=%d", sw->zParam, sw->aVal[iV]);
      bench_filters(&t, ds, n, zWhat, zPar, aaTruthMod, aaTruthGrp);
      if (strncmp(sw->zIndex, "HNSW", 4) == 0) bench_mmr(t.db, idx, ds, fmt("%s, %s", zWhat, zPar), zPar);
      sql_close(&t);
      record_size(zWhat, E_VS, t.zPath, n, ds->d);
      store_file(sw->zIndex, zWhat, E_VS, t.zPath, zPar);
      child_figures(E_VS, t.zPath, ds->zQFile, zPar, zWhat);
    }
  }
  sql_close(&t);
  faiss_Index_free(idx);
  *pKeep = t;

  /* sqlite-vss: HNSW only (IVF needs its own training protocol), small sizes only, efSearch not settable */
  if (G.bHave[E_VSS] && strncmp(sw->zIndex, "HNSW", 4) == 0) {
    if (n > VSS_MAX_ROWS) {
      put_text(S_INSERT, HIGHER, zInsert, E_VSS, "skipped");
    } else {
      Table s = {.e = E_VSS, .d = ds->d};
      snprintf(s.zPath, sizeof(s.zPath), "%s", path_in_dir(fmt("ann_%s_vss.db", sw->zIndex)));
      ms = sql_build(&s, sw->zIndex, ds->x, n, 0);
      if (ms < 0) {
        fail(S_INSERT, HIGHER, zInsert, E_VSS, s.zErr);
      } else {
        put(S_INSERT, HIGHER, zInsert, E_VSS, n / (ms / 1e3));
        char zSql[300];
        Stats st;
        if (sql_queries(s.db, E_VSS, knn_sql(E_VSS, K, "", zSql, sizeof(zSql)), 0, ds->q, ds->nq, ds->d, aTruth, 0, 0,
                        &st)) {
          fail(S_ANN, LOWER, fmt("%s: median ms", zWhat), E_VSS, st.zErr);
        } else {
          put_text(S_ANN, PLAIN, fmt("%s: %s chosen", zWhat, sw->zParam), E_VSS, "16 (fixed)");
          put(S_ANN, PLAIN, fmt("%s: recall@10", zWhat), E_VSS, st.rRecall);
          put(S_ANN, LOWER, fmt("%s: median ms", zWhat), E_VSS, st.rMed);
          put(S_ANN, LOWER, fmt("%s: p99 ms", zWhat), E_VSS, st.rP99);
          if (nPoint < 256) {
            Point *pt = &aPoint[nPoint++];
            snprintf(pt->zIndex, sizeof(pt->zIndex), "%s", zWhat);
            pt->e = E_VSS;
            snprintf(pt->zParam, sizeof(pt->zParam), "efSearch");
            pt->iParam = 16;
            pt->rRecall = st.rRecall;
            pt->rMed = st.rMed;
            pt->rP99 = st.rP99;
          }
          bench_filters(&s, ds, n, zWhat, 0, aaTruthMod, aaTruthGrp);
        }
        sql_close(&s);
        record_size(zWhat, E_VSS, s.zPath, n, ds->d);
        child_figures(E_VSS, s.zPath, ds->zQFile, 0, zWhat);
      }
      sql_close(&s);
      remove_db(s.zPath);
    }
  }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Report                                                                                                        */

static void cell(char *z, size_t n, const Row *r, int e) {
  if (r->azCell[e][0]) {
    snprintf(z, n, "%s", r->azCell[e]);
    return;
  }
  double v = r->a[e];
  if (isnan(v)) snprintf(z, n, "-");
  else if (strstr(r->zLabel, "recall")) snprintf(z, n, "%.3f", v);
  else if (fabs(v) >= 10000) snprintf(z, n, "%.0f", v);
  else if (fabs(v) >= 100) snprintf(z, n, "%.0f", v);
  else if (fabs(v) >= 10) snprintf(z, n, "%.1f", v);
  else if (fabs(v) >= 1) snprintf(z, n, "%.2f", v);
  else snprintf(z, n, "%.3f", v);
}

static void ratio(char *z, size_t n, const Row *r, int e) {
  double a = r->a[E_VS], b = r->a[e];
  if (r->eDir == PLAIN || isnan(a) || isnan(b) || a <= 0 || b <= 0 || r->azCell[E_VS][0] || r->azCell[e][0]) {
    snprintf(z, n, " ");
    return;
  }
  double x = r->eDir == LOWER ? b / a : a / b; /* > 1: vecstore better */
  if (x >= 1) snprintf(z, n, "%.1fx %s", x, r->zBetter);
  else snprintf(z, n, "%.1fx %s", 1 / x, r->zWorse);
}

static void print_markdown(FILE *f, const char *zMachine) {
  fprintf(f, "# vecstore benchmark (%s scale)\n\n%s\n", G.bSmall ? "small" : "full", zMachine);
  fprintf(f, "\nVersions: vecstore %s; faiss 1.7.3 (C API, AVX2 build, same process); sqlite-vec %s; sqlite-vss %s; "
             "SQLite %s. Data: Gaussian mixture, %d clusters, seeded; %d queries (%d for filters).\n"
             "Ratios read \"vecstore is N x faster/slower (smaller/larger) than the peer\".\n",
          G.zVersion[E_VS], G.bHave[E_VEC] ? G.zVersion[E_VEC] : "(skipped)",
          G.bHave[E_VSS] ? G.zVersion[E_VSS] : "(skipped)", sqlite3_libversion(), G.nClusters, G.nq, G.nqFilter);
  for (int s = 0; s < N_SECTION; s++) {
    int bAny = 0;
    for (int i = 0; i < nRow; i++) bAny |= aRow[i].iSec == s;
    if (!bAny) continue;
    fprintf(f, "\n## %s\n\n| figure | vecstore | faiss | sqlite-vec | sqlite-vss | vs faiss | vs sqlite-vec | vs sqlite-vss |\n"
               "|---|---:|---:|---:|---:|---|---|---|\n", SECTION[s]);
    for (int i = 0; i < nRow; i++) {
      if (aRow[i].iSec != s) continue;
      char c[E_N][64], rr[E_N][64];
      for (int e = 0; e < E_N; e++) cell(c[e], 64, &aRow[i], e), ratio(rr[e], 64, &aRow[i], e);
      fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", aRow[i].zLabel, c[0], c[1], c[2], c[3], rr[1], rr[2],
              rr[3]);
    }
  }
  if (nPoint) {
    fprintf(f, "\n## Recall against latency (all settings tried)\n\n| index | engine | setting | recall@10 | median ms | p99 ms |\n"
               "|---|---|---|---:|---:|---:|\n");
    for (int i = 0; i < nPoint; i++)
      fprintf(f, "| %s | %s | %s=%d | %.3f | %.3f | %.3f |\n", aPoint[i].zIndex, ENGINE[aPoint[i].e], aPoint[i].zParam,
              aPoint[i].iParam, aPoint[i].rRecall, aPoint[i].rMed, aPoint[i].rP99);
  }
  if (nNote) {
    fprintf(f, "\n## Notes\n\n");
    for (int i = 0; i < nNote; i++) fprintf(f, "- %s\n", aNote[i]);
  }
}

static void json_str(FILE *f, const char *z) {
  fputc('"', f);
  for (; *z; z++) {
    if (*z == '"' || *z == '\\') fprintf(f, "\\%c", *z);
    else if ((unsigned char)*z < 0x20) fprintf(f, "\\u%04x", *z);
    else fputc(*z, f);
  }
  fputc('"', f);
}
static void json_num(FILE *f, double v) {
  if (isnan(v) || isinf(v)) fprintf(f, "null");
  else fprintf(f, "%.6g", v);
}

static void write_json(const char *zPath, const char *zCpu, long memKb, double rTotalS) {
  FILE *f = fopen(zPath, "w");
  if (!f) {
    note("cannot write %s", zPath);
    return;
  }
  fprintf(f, "{\n  \"scale\": \"%s\",\n  \"machine\": {\"nproc\": %d, \"cpu\": ", G.bSmall ? "small" : "full", G.nProc);
  json_str(f, zCpu);
  fprintf(f, ", \"mem_kb\": %ld},\n  \"total_seconds\": %.1f,\n  \"versions\": {", memKb, rTotalS);
  for (int e = 0; e < E_N; e++) {
    fprintf(f, "%s", e ? ", " : "");
    json_str(f, ENGINE[e]);
    fprintf(f, ": ");
    json_str(f, engine_usable(e) ? G.zVersion[e] : "skipped");
  }
  fprintf(f, ", \"sqlite\": \"%s\"},\n  \"settings\": {\"clusters\": %d, \"n_mid\": %lld, \"n_big\": %lld, "
             "\"queries\": %d, \"filter_queries\": %d, \"commits\": %d},\n  \"rows\": [\n",
          sqlite3_libversion(), G.nClusters, (long long)G.nMid, (long long)G.nBig, G.nq, G.nqFilter, G.nCommits);
  for (int i = 0; i < nRow; i++) {
    fprintf(f, "    {\"section\": ");
    json_str(f, SECTION[aRow[i].iSec]);
    fprintf(f, ", \"figure\": ");
    json_str(f, aRow[i].zLabel);
    fprintf(f, ", \"better\": \"%s\"", aRow[i].eDir == LOWER ? "lower" : aRow[i].eDir == HIGHER ? "higher" : "none");
    for (int e = 0; e < E_N; e++) {
      fprintf(f, ", ");
      json_str(f, ENGINE[e]);
      fprintf(f, ": ");
      if (aRow[i].azCell[e][0]) json_str(f, aRow[i].azCell[e]);
      else json_num(f, aRow[i].a[e]);
    }
    fprintf(f, "}%s\n", i + 1 < nRow ? "," : "");
  }
  fprintf(f, "  ],\n  \"curves\": [\n");
  for (int i = 0; i < nPoint; i++) {
    fprintf(f, "    {\"index\": ");
    json_str(f, aPoint[i].zIndex);
    fprintf(f, ", \"engine\": \"%s\", \"param\": \"%s\", \"value\": %d, \"recall\": ", ENGINE[aPoint[i].e],
            aPoint[i].zParam, aPoint[i].iParam);
    json_num(f, aPoint[i].rRecall);
    fprintf(f, ", \"median_ms\": ");
    json_num(f, aPoint[i].rMed);
    fprintf(f, ", \"p99_ms\": ");
    json_num(f, aPoint[i].rP99);
    fprintf(f, "}%s\n", i + 1 < nPoint ? "," : "");
  }
  fprintf(f, "  ],\n  \"notes\": [");
  for (int i = 0; i < nNote; i++) {
    fprintf(f, "%s\n    ", i ? "," : "");
    json_str(f, aNote[i]);
  }
  fprintf(f, "]\n}\n");
  fclose(f);
}

/* ------------------------------------------------------------------------------------------------------------ */

static void probe_engines(void) {
  G.bHave[E_FAISS] = 1;
  snprintf(G.zVersion[E_FAISS], 64, "1.7.3");
  snprintf(zPeerVec, sizeof(zPeerVec), "%s/node_modules/sqlite-vec-linux-x64/vec0", G.zPeers);
  snprintf(zPeerVector, sizeof(zPeerVector), "%s/node_modules/sqlite-vss-linux-x64/lib/vector0", G.zPeers);
  snprintf(zPeerVss, sizeof(zPeerVss), "%s/node_modules/sqlite-vss-linux-x64/lib/vss0", G.zPeers);
  const char *aVer[E_N] = {"SELECT vecstore_version()", 0, "SELECT vec_version()", "SELECT vss_version()"};
  for (int e = 0; e < E_N; e++) {
    if (e == E_FAISS) continue;
    char zErr[300] = {0};
    sqlite3 *db = sql_open(e, ":memory:", zErr, sizeof(zErr));
    if (!db) {
      if (e == E_VS) die("%s", zErr);
      note("%s skipped: %s", ENGINE[e], zErr);
      continue;
    }
    char *z = sql_text(db, aVer[e]);
    snprintf(G.zVersion[e], 64, "%s", z ? z : "?");
    free(z);
    sqlite3_close(db);
    G.bHave[e] = 1;
  }
}

static void machine(char *z, size_t n, char *zCpu, size_t nCpu, long *pMemKb) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  char zLine[512];
  snprintf(zCpu, nCpu, "unknown");
  while (f && fgets(zLine, sizeof(zLine), f))
    if (strncmp(zLine, "model name", 10) == 0) {
      char *p = strchr(zLine, ':');
      if (p) {
        p += 2;
        p[strcspn(p, "\n")] = 0;
        snprintf(zCpu, nCpu, "%s", p);
      }
      break;
    }
  if (f) fclose(f);
  *pMemKb = 0;
  f = fopen("/proc/meminfo", "r");
  while (f && fgets(zLine, sizeof(zLine), f))
    if (strncmp(zLine, "MemTotal:", 9) == 0) *pMemKb = atol(zLine + 9);
  if (f) fclose(f);
  snprintf(z, n, "Machine: %d CPUs (nproc), %s, %.1f GiB RAM.", G.nProc, zCpu, *pMemKb / 1048576.0);
}

int main(int argc, char **argv) {
  G.zExt = "build/vecstore";
  G.zData = "tests/data";
  G.zDir = "build/bench";
  G.zJson = "build/bench.json";
  const char *zHome = getenv("HOME");
  G.zPeers = fmt("%s/.cache/vecstore/peers", zHome ? zHome : ".");
  const char *zScale = getenv("BENCH_SCALE");
  int iChild = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--child") == 0 || strcmp(argv[i], "--conns") == 0 || strcmp(argv[i], "--second") == 0) {
      iChild = i + 1;
      break;
    }
    if (i + 1 >= argc) die("option %s needs a value", argv[i]);
    if (strcmp(argv[i], "--scale") == 0) zScale = argv[++i];
    else if (strcmp(argv[i], "--ext") == 0) G.zExt = argv[++i];
    else if (strcmp(argv[i], "--peers") == 0) G.zPeers = argv[++i];
    else if (strcmp(argv[i], "--data") == 0) G.zData = argv[++i];
    else if (strcmp(argv[i], "--dir") == 0) G.zDir = argv[++i];
    else if (strcmp(argv[i], "--json") == 0) G.zJson = argv[++i];
    else die("unknown option %s", argv[i]);
  }
  G.nProc = omp_get_num_procs();
  snprintf(zPeerVec, sizeof(zPeerVec), "%s/node_modules/sqlite-vec-linux-x64/vec0", G.zPeers);
  snprintf(zPeerVector, sizeof(zPeerVector), "%s/node_modules/sqlite-vss-linux-x64/lib/vector0", G.zPeers);
  snprintf(zPeerVss, sizeof(zPeerVss), "%s/node_modules/sqlite-vss-linux-x64/lib/vss0", G.zPeers);
  if (iChild && strcmp(argv[iChild - 1], "--child") == 0) return child_main(argc - iChild, argv + iChild);
  if (iChild) return store_child_main(argv[iChild - 1], argc - iChild, argv + iChild);

  G.bSmall = zScale && strcmp(zScale, "small") == 0;
  if (zScale && !G.bSmall && strcmp(zScale, "full") != 0) die("BENCH_SCALE must be small or full, got '%s'", zScale);
  G.nClusters = G.bSmall ? 1000 : 3000;
  G.nMid = G.bSmall ? 10000 : 100000;
  G.nBig = G.bSmall ? 50000 : 1000000;
  G.nCommitSmall = 10000;
  G.nq = G.bSmall ? 100 : 200;
  G.nqFilter = G.bSmall ? 30 : 50;
  G.nCommits = G.bSmall ? 50 : 200;
  G.nCommitsFaissBig = G.bSmall ? 5 : 5;
  mkdir(G.zDir, 0755);
  double tStart = now_ms();

  char zMachine[600], zCpu[300];
  long memKb;
  machine(zMachine, sizeof(zMachine), zCpu, sizeof(zCpu), &memKb);
  logf_("%s", zMachine);
  probe_engines();
  if (G.bHave[E_VSS])
    note("sqlite-vss runs only on tables of at most %d rows: its bulk insert is super-linear (10k x 128 rows: 0.7 s, "
         "50k: 52 s in a trial run) and it rewrites its whole index BLOB at every commit", VSS_MAX_ROWS);
  if (G.bHave[E_VEC] || G.bHave[E_VSS])
    note("post-filter queries give the peers k = 10 and then the SQL condition: SQLite %s does not hand LIMIT to a "
         "virtual table (3.41+ does), and neither peer keeps producing rows past k", sqlite3_libversion());
  logf_("engines: vecstore %s, sqlite-vec %s, sqlite-vss %s", G.zVersion[E_VS], G.bHave[E_VEC] ? G.zVersion[E_VEC] : "skipped",
        G.bHave[E_VSS] ? G.zVersion[E_VSS] : "skipped");

  /* ---- data ---- */
  double t0 = now_ms();
  Mixture m128 = mixture_new(128, G.nClusters, 0x1234), m768 = mixture_new(768, G.nClusters, 0x5678);
  omp_set_num_threads(G.nProc);
  Dataset d128 = {"128", 128, G.nBig, mixture_sample(&m128, G.nBig, 11), mixture_sample(&m128, G.nq, 12), G.nq, 0};
  Dataset d768 = {"768", 768, G.nMid, mixture_sample(&m768, G.nMid, 21), mixture_sample(&m768, G.nq, 22), G.nq, 0};
  d128.zQFile = path_in_dir("queries128.fvecs");
  d768.zQFile = path_in_dir("queries768.fvecs");
  write_fvecs(d128.zQFile, d128.q, d128.nq, 128);
  write_fvecs(d768.zQFile, d768.q, d768.nq, 768);
  float *xNew = mixture_sample(&m128, G.nCommits, 13); /* rows for the commit test */
  int64_t *gtMid128 = exact_topk(d128.x, G.nMid, 128, 0, d128.q, G.nq);
  int64_t *gtBig128 = exact_topk(d128.x, G.nBig, 128, 0, d128.q, G.nq);
  int64_t *gtMid768 = exact_topk(d768.x, G.nMid, 768, 0, d768.q, G.nq);
  int64_t *aaMod[3], *aaGrp[3];
  for (int s = 0; s < 3; s++) {
    aaMod[s] = exact_topk_where(d128.x, G.nBig, 128, keep_mod, s == 0 ? 10 : s == 1 ? 100 : 1000, d128.q, G.nqFilter);
    aaGrp[s] = exact_topk_where(d128.x, G.nBig, 128, keep_grp, s + 1, d128.q, G.nqFilter);
  }
  logf_("data and ground truth: %.1f s", (now_ms() - t0) / 1e3);

  /* ---- real data ---- */
  bench_real();

  /* ---- exact search, mid sizes ---- */
  bench_flat(&d128, G.nMid, 0, gtMid128, 0);
  bench_flat(&d768, G.nMid, 0, gtMid768, 0);
  free(d768.x);
  d768.x = 0;

  /* ---- one-row commits at 10k ---- */
  {
    char zWhat[64];
    snprintf(zWhat, sizeof(zWhat), "Flat, %s rows x 128", size_label(G.nCommitSmall));
    logf_("commits: %s", zWhat);
    for (int e = 0; e < E_N; e++) {
      if (!engine_usable(e)) continue;
      if (e == E_FAISS) {
        double ms;
        char *zP = path_in_dir("commit_small.faiss");
        FaissIndex *idx = faiss_build("Flat", 128, d128.x, G.nCommitSmall, zP, &ms);
        faiss_Index_free(idx);
        commit_faiss(zP, xNew, G.nCommits, 128, zWhat);
        unlink(zP);
        continue;
      }
      Table t = {.e = e, .d = 128};
      snprintf(t.zPath, sizeof(t.zPath), "%s", path_in_dir(fmt("commit_small_%s.db", ENGINE[e])));
      if (sql_build(&t, "Flat", d128.x, G.nCommitSmall, 0) < 0) {
        fail(S_COMMIT, LOWER, zWhat, e, t.zErr);
        sql_close(&t);
        continue;
      }
      sql_close(&t);
      commit_sql(&t, xNew, G.nCommits, G.nBig + 1, zWhat);
      remove_db(t.zPath);
    }
  }

  /* ---- exact search, big ---- */
  Table aFlatBig[E_N];
  memset(aFlatBig, 0, sizeof(aFlatBig));
  bench_flat(&d128, G.nBig, 1, gtBig128, aFlatBig);
  for (int e = 0; e < E_N; e++) {
    if (!aFlatBig[e].bOk) continue;
    aFlatBig[e].db = sql_open(e, aFlatBig[e].zPath, aFlatBig[e].zErr, sizeof(aFlatBig[e].zErr));
    if (aFlatBig[e].db) {
      char zWhat[100];
      snprintf(zWhat, sizeof(zWhat), "Flat %s x 128", size_label(G.nBig));
      logf_("filters: %s %s", ENGINE[e], zWhat);
      bench_filters(&aFlatBig[e], &d128, G.nBig, zWhat, 0, aaMod, aaGrp);
    }
    sql_close(&aFlatBig[e]);
  }

  /* ---- approximate indexes, big ---- */
  static const int aEf[] = {8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512};
  static const int aProbe[] = {1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256};
  Sweep swH = {"HNSW32", "efSearch", aEf, (int)(sizeof(aEf) / sizeof(aEf[0]))};
  Sweep swI = {"IVF1024,Flat", "nprobe", aProbe, (int)(sizeof(aProbe) / sizeof(aProbe[0]))};
  Table tHnsw = {0}, tIvf = {0};
  bench_ann(&d128, &swH, gtBig128, aaMod, aaGrp, &tHnsw);
  bench_ann(&d128, &swI, gtBig128, aaMod, aaGrp, &tIvf);

  /* ---- storage and connections (bench_store.c): on the files above, before the commits below change them ---- */
  bench_store(&d128);

  /* ---- one-row commits on the big files ---- */
  {
    char zWhat[100];
    snprintf(zWhat, sizeof(zWhat), "Flat, %s rows x 128 (+grp column)", size_label(G.nBig));
    logf_("commits: %s", zWhat);
    for (int e = 0; e < E_N; e++)
      if (aFlatBig[e].bOk) commit_sql(&aFlatBig[e], xNew, G.nCommits, G.nBig + 1, zWhat);
    commit_faiss(path_in_dir(fmt("flat_%s_128.faiss", size_label(G.nBig))), xNew, G.nCommitsFaissBig, 128, zWhat);
    snprintf(zWhat, sizeof(zWhat), "HNSW32, %s rows x 128 (+grp column)", size_label(G.nBig));
    logf_("commits: %s", zWhat);
    if (tHnsw.bOk) commit_sql(&tHnsw, xNew, G.nCommits, G.nBig + 1, zWhat);
    commit_faiss(path_in_dir("ann_HNSW32.faiss"), xNew, G.nCommitsFaissBig, 128, zWhat);
    snprintf(zWhat, sizeof(zWhat), "IVF1024,Flat, %s rows x 128 (+grp column)", size_label(G.nBig));
    logf_("commits: %s", zWhat);
    if (tIvf.bOk) commit_sql(&tIvf, xNew, G.nCommits, G.nBig + 1, zWhat);
    commit_faiss(path_in_dir("ann_IVF1024,Flat.faiss"), xNew, G.nCommitsFaissBig, 128, zWhat);
  }

  double rTotal = (now_ms() - tStart) / 1e3;
  if (!getenv("BENCH_KEEP")) {
    DIR *dir = opendir(G.zDir);
    struct dirent *de;
    while (dir && (de = readdir(dir)))
      if (strstr(de->d_name, ".db") || strstr(de->d_name, ".faiss")) unlink(fmt("%s/%s", G.zDir, de->d_name));
    if (dir) closedir(dir);
  }
  note("total run time %.0f s; %d faiss add + write_index commits on the big files (it rewrites the whole index)",
       rTotal, G.nCommitsFaissBig);
  print_markdown(stdout, zMachine);
  write_json(G.zJson, zCpu, memKb, rTotal);
  logf_("wrote %s (%.0f s)", G.zJson, rTotal);
  return 0;
}
