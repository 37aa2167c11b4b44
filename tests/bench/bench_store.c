/*
** bench_store.c: the `make bench` sections that issues 12 ("each vector stored once, the index loaded at memory
** speed, bulk insert ahead of sqlite-vec") and 13 ("one index per process") ask for, on the big (G.nBig x 128)
** files that bench.c builds and keeps until its one-row commits:
**
**   file size     each index type's file against sqlite-vec's file of the same rows, raw Faiss's write_index
**                 output and the raw vectors (n x d x 4 bytes); SQ8 is built here for its size
**   open          open + first query in a fresh process, median of 3, the file read once before each
**   bulk insert   Flat at G.nMid and G.nBig rows with neither rowid nor id given, against sqlite-vec
**   connections   peak RSS of one process with 1, 2 and 8 connections (8 threads), against one read_index;
**                 a second connection's open + first query while the first is open
**
** Every figure here has its reference measured in the same run. The child modes (--conns, --second) run in a
** fresh process of this binary, so no page of an index is in the process before it opens.
*/
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <faiss/c_api/index_io_c.h>

#include "bench.h"

/* ------------------------------------------------------------------------------------------------------------ */
/* The big files, as bench.c registers them                                                                      */

typedef struct StoreSet {
  char zIndex[32];
  char zWhat[160];          /* the label of the set's rows in the other sections */
  char azPath[E_N][600];    /* "" when the engine has no file for this index type */
  char azParams[E_N][64];   /* search parameters of the operating point ("" for Flat) */
} StoreSet;
static StoreSet aSet[8];
static int nSet;

void store_file(const char *zIndex, const char *zWhat, int e, const char *zPath, const char *zParams) {
  StoreSet *p = 0;
  for (int i = 0; i < nSet; i++)
    if (strcmp(aSet[i].zIndex, zIndex) == 0) p = &aSet[i];
  if (!p) {
    if (nSet == (int)(sizeof(aSet) / sizeof(aSet[0]))) die("store_file: too many index types");
    p = &aSet[nSet++];
    memset(p, 0, sizeof(*p));
    snprintf(p->zIndex, sizeof(p->zIndex), "%s", zIndex);
    snprintf(p->zWhat, sizeof(p->zWhat), "%s", zWhat);
  }
  snprintf(p->azPath[e], sizeof(p->azPath[e]), "%s", zPath);
  snprintf(p->azParams[e], sizeof(p->azParams[e]), "%s", zParams ? zParams : "");
}

static const StoreSet *store_set(const char *zIndex) {
  for (int i = 0; i < nSet; i++)
    if (strcmp(aSet[i].zIndex, zIndex) == 0) return &aSet[i];
  return 0;
}

/* Reads the whole file once, so that it is in the page cache when a child opens it. */
static void warm_file(const char *zPath) {
  FILE *f = fopen(zPath, "rb");
  if (!f) return;
  size_t nBuf = 4 << 20;
  char *a = xmalloc(nBuf);
  while (fread(a, 1, nBuf, f) == nBuf) {
  }
  free(a);
  fclose(f);
}

static double median3(double *a) {
  qsort(a, 3, sizeof(double), cmp_double);
  return a[1];
}

/* ------------------------------------------------------------------------------------------------------------ */
/* File size                                                                                                     */

/* Bytes of a stored file: page_count x page_size for a SQLite file (read without any extension loaded), the
** file's length for a Faiss index. -1 when it cannot be read. */
static double file_bytes(int e, const char *zPath) {
  if (e == E_FAISS) {
    struct stat st;
    return stat(zPath, &st) ? -1 : (double)st.st_size;
  }
  sqlite3 *db = 0;
  double v = -1;
  if (sqlite3_open_v2(zPath, &db, SQLITE_OPEN_READONLY, 0) == SQLITE_OK) {
    sqlite3_stmt *p = 0;
    if (sqlite3_prepare_v2(db, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()", -1, &p,
                           0) == SQLITE_OK &&
        sqlite3_step(p) == SQLITE_ROW)
      v = sqlite3_column_double(p, 0);
    sqlite3_finalize(p);
  }
  sqlite3_close(db);
  return v;
}

static char *raw_label(const char *zWhat, int64_t n, int d) {
  return fmt("%s: file / raw vectors (n x d x 4 = %.1f MB)", zWhat, (double)n * d * 4 / (1024.0 * 1024.0));
}

void record_size(const char *zWhat, int e, const char *zPath, int64_t n, int d) {
  double nByte = file_bytes(e, zPath);
  if (nByte < 0) {
    fail(S_SIZE, LOWER, zWhat, e, fmt("cannot read the size of %s", zPath));
    return;
  }
  put(S_SIZE, LOWER, zWhat, e, nByte / (1024.0 * 1024.0));
  put(S_SIZE, PLAIN, raw_label(zWhat, n, d), e, nByte / ((double)n * d * 4));
}

/* sqlite-vec has no approximate index: beside another index type of the big set stands its Flat vec0 file of the
** same rows. */
static void size_vec_beside(const char *zWhat, int d) {
  const StoreSet *pFlat = store_set("Flat");
  if (!pFlat || !pFlat->azPath[E_VEC][0]) return;
  double mb = got(S_SIZE, pFlat->zWhat, E_VEC);
  if (isnan(mb)) return;
  put(S_SIZE, LOWER, zWhat, E_VEC, mb);
  put(S_SIZE, PLAIN, raw_label(zWhat, G.nBig, d), E_VEC, got(S_SIZE, raw_label(pFlat->zWhat, G.nBig, d), E_VEC));
}

/* SQ8 on the big set (with the grp column, like the other big vecstore tables), for its file size against Faiss's
** and the raw vectors; its bulk insert goes to the insert section. The files are removed. PQ is left out: training
** PQ16 took about a minute in each engine at 50k rows in a trial (PQ16np: 40 s in vecstore, more in Faiss; PQ16
** with Faiss's polysemous training, over two minutes), too long for this run. */
static void bench_size_lossy(const Dataset *ds) {
  static const char *aIndex[] = {"SQ8"};
  int64_t n = G.nBig;
  for (int ix = 0; ix < (int)(sizeof(aIndex) / sizeof(aIndex[0])); ix++) {
    char *zWhat = fmt("%s %s x %d", aIndex[ix], size_label(n), ds->d);
    char *zInsert = fmt("%s (+grp column)", zWhat);
    logf_("%s: file size", zWhat);
    double ms;
    char *zP = path_in_dir(fmt("lossy_%s.faiss", aIndex[ix]));
    FaissIndex *idx = faiss_build(aIndex[ix], ds->d, ds->x, n, zP, &ms);
    faiss_Index_free(idx);
    put(S_INSERT, HIGHER, zInsert, E_FAISS, n / (ms / 1e3));
    record_size(zWhat, E_FAISS, zP, n, ds->d);
    unlink(zP);
    Table t = {.e = E_VS, .d = ds->d, .bGrp = 1};
    snprintf(t.zPath, sizeof(t.zPath), "%s", path_in_dir(fmt("lossy_%s_vecstore.db", aIndex[ix])));
    ms = sql_build(&t, aIndex[ix], ds->x, n, 0);
    sql_close(&t);
    if (ms < 0) {
      fail(S_INSERT, HIGHER, zInsert, E_VS, t.zErr);
    } else {
      put(S_INSERT, HIGHER, zInsert, E_VS, n / (ms / 1e3));
      record_size(zWhat, E_VS, t.zPath, n, ds->d);
      logf_("  vecstore: insert + commit %.1f s, %.1f MB", ms / 1e3, got(S_SIZE, zWhat, E_VS));
    }
    remove_db(t.zPath);
    size_vec_beside(zWhat, ds->d);
  }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Bulk insert with neither rowid nor id given                                                                   */

static void bench_bulk_plain(const Dataset *ds) {
  int64_t aN[2] = {G.nMid, G.nBig};
  static const int aEngine[2] = {E_VS, E_VEC};
  for (int in = 0; in < 2; in++) {
    char *zLabel = fmt("Flat %s x %d, neither rowid nor id given", size_label(aN[in]), ds->d);
    logf_("bulk insert: %s", zLabel);
    for (int ie = 0; ie < 2; ie++) {
      int e = aEngine[ie];
      if (!engine_usable(e)) continue;
      Table t = {.e = e, .d = ds->d, .bNoRowid = 1};
      snprintf(t.zPath, sizeof(t.zPath), "%s", path_in_dir(fmt("plain_%s_%s.db", size_label(aN[in]), ENGINE[e])));
      double ms = sql_build(&t, "Flat", ds->x, aN[in], 0);
      sql_close(&t);
      if (ms < 0) fail(S_INSERT, HIGHER, zLabel, e, t.zErr);
      else {
        put(S_INSERT, HIGHER, zLabel, e, aN[in] / (ms / 1e3));
        logf_("  %s: %.0f rows/s", ENGINE[e], aN[in] / (ms / 1e3));
      }
      remove_db(t.zPath);
    }
  }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Open + first query in a fresh process, median of 3                                                           */

static void bench_open_fresh(const Dataset *ds) {
  enum { RUNS = 3 };
  static const int aEngine[3] = {E_VS, E_FAISS, E_VEC};
  double aMs[8][3][RUNS];
  int aBad[8][3];
  memset(aBad, 0, sizeof(aBad));
  /* rounds outermost, so that a slow spell of the machine falls on one run of each figure, not on one figure */
  for (int r = 0; r < RUNS; r++)
    for (int i = 0; i < nSet; i++)
      for (int ie = 0; ie < 3; ie++) {
        const StoreSet *s = &aSet[i];
        int e = aEngine[ie];
        if (!s->azPath[e][0] || aBad[i][ie]) continue;
        char zErr[300];
        double mb;
        warm_file(s->azPath[e]);
        if (run_child(e, s->azPath[e], ds->zQFile, 1, s->azParams[e], &aMs[i][ie][r], &mb, zErr, sizeof(zErr))) {
          aBad[i][ie] = 1;
          fail(S_OPEN, LOWER, s->zWhat, e, zErr);
          continue;
        }
        logf_("  open + first query, run %d: %s %s %.1f ms", r + 1, ENGINE[e], s->zWhat, aMs[i][ie][r]);
      }
  const StoreSet *pFlat = store_set("Flat");
  double vecMs = NAN;
  for (int i = 0; i < nSet; i++)
    for (int ie = 0; ie < 3; ie++) {
      if (!aSet[i].azPath[aEngine[ie]][0] || aBad[i][ie]) continue;
      double m = median3(aMs[i][ie]);
      put(S_OPEN, LOWER, aSet[i].zWhat, aEngine[ie], m);
      if (&aSet[i] == pFlat && aEngine[ie] == E_VEC) vecMs = m;
    }
  for (int i = 0; i < nSet; i++)
    if (&aSet[i] != pFlat && !isnan(vecMs) && aSet[i].azPath[E_VS][0]) put(S_OPEN, LOWER, aSet[i].zWhat, E_VEC, vecMs);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Connections of one process                                                                                    */

/* Runs `--conns ENGINE PATH QFILE NCONN PARAMS` (or --second without NCONN) and parses nVal numbers. */
static int run_store_child(const char *zMode, int e, const char *zPath, const char *zQFile, int nConn,
                           const char *zParams, double *aVal, int nVal) {
  char zN[16], zOut[512];
  snprintf(zN, sizeof(zN), "%d", nConn);
  char *azArg[6] = {(char *)zMode, (char *)ENGINE[e], (char *)zPath, (char *)zQFile};
  int nArg = 4;
  if (strcmp(zMode, "--conns") == 0) azArg[nArg++] = zN;
  azArg[nArg++] = (char *)(zParams ? zParams : "");
  warm_file(zPath);
  if (run_self(azArg, nArg, zOut, sizeof(zOut))) return 1;
  char *z = zOut;
  for (int i = 0; i < nVal; i++) {
    char *zEnd;
    aVal[i] = strtod(z, &zEnd);
    if (zEnd == z) return 1;
    z = zEnd;
  }
  return 0;
}

static void bench_connections(const Dataset *ds) {
  static const int aConn[3] = {1, 2, 8};
  const StoreSet *pFlat = store_set("Flat");
  if (pFlat) {
    const char *zW = pFlat->zWhat;
    char *azMem[3];
    for (int ic = 0; ic < 3; ic++)
      azMem[ic] = aConn[ic] == 1 ? fmt("%s: peak RSS, 1 connection (MB)", zW)
                                 : fmt("%s: peak RSS, %d connections in %d threads (MB)", zW, aConn[ic], aConn[ic]);
    char *zRatio = fmt("%s: peak RSS, 8 connections / 1 connection", zW);
    char *zAll = fmt("%s: 8 connections in 8 threads, open + first query until all have answered (ms)", zW);
    double aV[3];
    if (pFlat->azPath[E_FAISS][0]) {
      if (run_store_child("--conns", E_FAISS, pFlat->azPath[E_FAISS], ds->zQFile, 1, "", aV, 2)) {
        fail(S_CONN, LOWER, azMem[0], E_FAISS, "the --conns child failed");
      } else {
        for (int ic = 0; ic < 3; ic++) put(S_CONN, LOWER, azMem[ic], E_FAISS, aV[0] / 1024.0);
        logf_("  faiss %s: read_index + one search, peak RSS +%.1f MB", zW, aV[0] / 1024.0);
      }
    }
    double aAll[E_N] = {NAN, NAN, NAN, NAN};
    for (int e = E_VS; e <= E_VEC; e++) {
      if (e == E_FAISS || !pFlat->azPath[e][0]) continue;
      double aMb[3] = {NAN, NAN, NAN};
      for (int ic = 0; ic < 3; ic++) {
        if (run_store_child("--conns", e, pFlat->azPath[e], ds->zQFile, aConn[ic], pFlat->azParams[e], aV, 2)) {
          fail(S_CONN, LOWER, azMem[ic], e, "the --conns child failed");
          continue;
        }
        aMb[ic] = aV[0] / 1024.0;
        put(S_CONN, LOWER, azMem[ic], e, aMb[ic]);
        if (aConn[ic] == 8) aAll[e] = aV[1];
        logf_("  %s %s: %d connection(s), peak RSS +%.1f MB, all answered after %.0f ms", ENGINE[e], zW, aConn[ic],
              aMb[ic], aV[1]);
      }
      if (aMb[0] > 0 && !isnan(aMb[2])) put(S_CONN, PLAIN, zRatio, e, aMb[2] / aMb[0]);
    }
    for (int e = 0; e < E_N; e++)
      if (!isnan(aAll[e])) put(S_CONN, LOWER, zAll, e, aAll[e]);
  }
  /* a second connection, per index type; sqlite-vec: its Flat file, beside every index type */
  double aVec[2] = {NAN, NAN};
  for (int i = 0; i < nSet; i++) {
    const StoreSet *s = &aSet[i];
    if (!s->azPath[E_VS][0]) continue;
    char *zFirst = fmt("%s: first connection's open + first query (ms, same process as the next line)", s->zWhat);
    char *zSecond = fmt("%s: second connection's open + first query, the first still open (ms, median of 3)",
                        s->zWhat);
    for (int e = E_VS; e <= E_VEC; e++) {
      if (e == E_FAISS) continue;
      if (!s->azPath[e][0]) {
        if (e == E_VEC && !isnan(aVec[0])) {
          put(S_CONN, LOWER, zFirst, e, aVec[0]);
          put(S_CONN, LOWER, zSecond, e, aVec[1]);
        }
        continue;
      }
      double aV[4];
      if (run_store_child("--second", e, s->azPath[e], ds->zQFile, 0, s->azParams[e], aV, 4)) {
        fail(S_CONN, LOWER, zSecond, e, "the --second child failed");
        continue;
      }
      double m = median3(aV + 1);
      put(S_CONN, LOWER, zFirst, e, aV[0]);
      put(S_CONN, LOWER, zSecond, e, m);
      if (e == E_VEC) aVec[0] = aV[0], aVec[1] = m;
      logf_("  %s %s: first connection %.1f ms, second %.1f ms (median of 3)", ENGINE[e], s->zWhat, aV[0], m);
    }
  }
}

void bench_store(const Dataset *ds) {
  double t0 = now_ms(), t;
  for (int i = 0; i < nSet; i++)
    if (strcmp(aSet[i].zIndex, "Flat") != 0) size_vec_beside(aSet[i].zWhat, ds->d);
  bench_size_lossy(ds);
  logf_("store: file sizes (SQ8 built) %.1f s", ((t = now_ms()) - t0) / 1e3);
  bench_bulk_plain(ds);
  logf_("store: bulk insert without rowid or id %.1f s", (now_ms() - t) / 1e3);
  t = now_ms();
  bench_open_fresh(ds);
  logf_("store: open + first query in fresh processes %.1f s", (now_ms() - t) / 1e3);
  t = now_ms();
  bench_connections(ds);
  logf_("store: connections of one process %.1f s", (now_ms() - t) / 1e3);
  logf_("store: all sections %.1f s", (now_ms() - t0) / 1e3);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Child modes                                                                                                   */

/* Opens zPath for engine e and runs one k-NN query to its last row. 0 on failure (message in zErr). */
static sqlite3 *open_and_query(int e, const char *zPath, const float *q, int d, const char *zParams, char *zErr,
                               size_t nErr) {
  sqlite3 *db = sql_open(e, zPath, zErr, nErr);
  if (!db) return 0;
  char zSql[300];
  int bParams = e == E_VS && zParams && *zParams;
  knn_sql(e, K, bParams ? " AND search_params = ?2" : "", zSql, sizeof(zSql));
  sqlite3_stmt *p = 0;
  unsigned char *aBuf = xmalloc((size_t)d * 4 + 2);
  int nb, rc = sqlite3_prepare_v2(db, zSql, -1, &p, 0);
  if (rc == SQLITE_OK) {
    const void *pBlob = vec_blob(e, q, d, &nb, aBuf);
    sqlite3_bind_blob(p, 1, pBlob, nb, SQLITE_STATIC);
    if (bParams) sqlite3_bind_text(p, 2, zParams, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
    }
  }
  if (rc != SQLITE_DONE) snprintf(zErr, nErr, "%s: %s", zSql, sqlite3_errmsg(db));
  sqlite3_finalize(p);
  free(aBuf);
  if (rc != SQLITE_DONE) {
    sqlite3_close(db);
    return 0;
  }
  return db;
}

typedef struct ConnThread {
  int e, d;
  const char *zPath, *zParams;
  const float *q;
  double t0, msDone;
  pthread_barrier_t *pBarrier;
  int bFail;
  char zErr[400];
} ConnThread;

static void *conn_thread(void *pArg) {
  ConnThread *c = pArg;
  sqlite3 *db = open_and_query(c->e, c->zPath, c->q, c->d, c->zParams, c->zErr, sizeof(c->zErr));
  c->msDone = now_ms() - c->t0;
  c->bFail = db == 0;
  pthread_barrier_wait(c->pBarrier); /* every connection is open (and has answered) at once */
  sqlite3_close(db);
  return 0;
}

/* --conns ENGINE PATH QFILE NCONN [PARAMS]: NCONN connections, each opened in its own thread, each answering one
** query; prints "peak_rss_delta_kb ms_until_all_answered". For faiss: one read_index + one search. */
static int conns_child(int argc, char **argv) {
  if (argc < 4) die("--conns ENGINE PATH QFILE NCONN [PARAMS]");
  int e = -1;
  for (int i = 0; i < E_N; i++)
    if (strcmp(argv[0], ENGINE[i]) == 0) e = i;
  if (e < 0) die("unknown engine %s", argv[0]);
  const char *zPath = argv[1], *zParams = argc > 4 ? argv[4] : "";
  int64_t nq;
  int d, nConn = atoi(argv[3]);
  float *q = read_fvecs(argv[2], &nq, &d);
  if (!q || nConn < 1 || nConn > nq) die("--conns: cannot read %s, or NCONN %d out of range", argv[2], nConn);
  if (e != E_FAISS && !sqlite3_threadsafe()) die("--conns: this SQLite is built without threads");
  reset_peak_rss();
  long base = proc_status_kb("VmRSS");
  double t0 = now_ms(), msAll = 0;
  if (e == E_FAISS) {
    FaissIndex *idx = 0;
    faiss_check(faiss_read_index_fname(zPath, 0, &idx), "read_index");
    faiss_params(idx, zParams);
    omp_set_num_threads(1);
    float D[K];
    int64_t I[K];
    faiss_check(faiss_Index_search(idx, 1, q, K, D, I), "search");
    msAll = now_ms() - t0;
    printf("%ld %.3f\n", proc_status_kb("VmHWM") - base, msAll);
    return 0;
  }
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, 0, (unsigned)nConn);
  ConnThread *aC = calloc((size_t)nConn, sizeof(ConnThread));
  pthread_t *aT = calloc((size_t)nConn, sizeof(pthread_t));
  if (!aC || !aT) die("out of memory");
  for (int i = 0; i < nConn; i++) {
    aC[i] = (ConnThread){.e = e, .d = d, .zPath = zPath, .zParams = zParams, .q = q + (int64_t)i * d, .t0 = t0,
                         .pBarrier = &barrier};
    if (pthread_create(&aT[i], 0, conn_thread, &aC[i])) die("pthread_create");
  }
  for (int i = 0; i < nConn; i++) pthread_join(aT[i], 0);
  long hwm = proc_status_kb("VmHWM") - base;
  for (int i = 0; i < nConn; i++) {
    if (aC[i].bFail) die("connection %d: %s", i, aC[i].zErr);
    if (aC[i].msDone > msAll) msAll = aC[i].msDone;
  }
  printf("%ld %.3f\n", hwm, msAll);
  pthread_barrier_destroy(&barrier);
  return 0;
}

/* --second ENGINE PATH QFILE [PARAMS]: a first connection opens and answers a query; then, three times, a second
** connection opens, answers a query and closes while the first stays open. Prints "first_ms second_ms x 3". */
static int second_child(int argc, char **argv) {
  if (argc < 3) die("--second ENGINE PATH QFILE [PARAMS]");
  int e = -1;
  for (int i = 0; i < E_N; i++)
    if (strcmp(argv[0], ENGINE[i]) == 0 && i != E_FAISS) e = i;
  if (e < 0) die("--second: engine %s has no connections", argv[0]);
  const char *zPath = argv[1], *zParams = argc > 3 ? argv[3] : "";
  int64_t nq;
  int d;
  float *q = read_fvecs(argv[2], &nq, &d);
  if (!q || nq < 4) die("--second: cannot read 4 queries from %s", argv[2]);
  char zErr[400];
  double t0 = now_ms();
  sqlite3 *db1 = open_and_query(e, zPath, q, d, zParams, zErr, sizeof(zErr));
  if (!db1) die("first connection: %s", zErr);
  printf("%.3f", now_ms() - t0);
  for (int r = 1; r <= 3; r++) {
    t0 = now_ms();
    sqlite3 *db2 = open_and_query(e, zPath, q + (int64_t)r * d, d, zParams, zErr, sizeof(zErr));
    if (!db2) die("second connection: %s", zErr);
    printf(" %.3f", now_ms() - t0);
    sqlite3_close(db2);
  }
  printf("\n");
  sqlite3_close(db1);
  return 0;
}

int store_child_main(const char *zMode, int argc, char **argv) {
  if (strcmp(zMode, "--conns") == 0) return conns_child(argc, argv);
  if (strcmp(zMode, "--second") == 0) return second_child(argc, argv);
  die("unknown child mode %s", zMode);
  return 1;
}
