/*
** bench_store.c: the `make bench` sections that issue 12 ("each vector stored once, the index loaded at memory
** speed, bulk insert ahead of sqlite-vec") asks for, on the big (G.nBig x 128) files that bench.c builds and keeps
** until its one-row commits:
**
**   file size     each index type's file against sqlite-vec's file of the same rows, raw Faiss's write_index
**                 output and the raw vectors (n x d x 4 bytes); SQ8 is built here for its size
**   open          open + first query in a fresh process, median of 3, the file read once before each
**   bulk insert   Flat at G.nMid and G.nBig rows with neither rowid nor id given, against sqlite-vec
**
** Every figure here has its reference measured in the same run. The open is timed in a fresh process of this
** binary (bench.c's --child), so no page of an index is in the process before it opens.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
  logf_("store: all sections %.1f s", (now_ms() - t0) / 1e3);
}
