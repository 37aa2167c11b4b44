/*
** bench.h: what bench.c (the workload, the report) shares with bench_store.c (the sections of issues 12 and 13:
** file size, fresh-process open, connections of one process). One binary; see bench.c for the usage.
*/
#ifndef VECSTORE_BENCH_H
#define VECSTORE_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include <faiss/c_api/Index_c.h>

enum { E_VS = 0, E_FAISS, E_VEC, E_VSS, E_N };
extern const char *const ENGINE[E_N];

#define K 10

typedef struct BenchGlobals {
  int bSmall;
  const char *zExt, *zPeers, *zData, *zDir, *zJson;
  int nProc;
  /* sizes */
  int nClusters;
  int64_t nMid, nBig, nCommitSmall;
  int nq, nqFilter, nCommits, nCommitsFaissBig;
  int bHave[E_N];
  char zSkip[E_N][300];
  char zVersion[E_N][64];
} BenchGlobals;
extern BenchGlobals G;

double now_ms(void);
void logf_(const char *zFmt, ...);
void die(const char *zFmt, ...);
void *xmalloc(size_t n);
char *fmt(const char *zFmt, ...);
void note(const char *zFmt, ...);

/* Report rows: (section, figure) with one value per engine. */
enum { LOWER = 0, HIGHER = 1, PLAIN = 2 };
enum { S_INSERT, S_COMMIT, S_OPEN, S_FLAT, S_ANN, S_FILTER, S_MMR, S_MEM, S_CONN, S_SIZE, S_REAL };
void put(int iSec, int eDir, const char *zLabel, int e, double v);
void put_text(int iSec, int eDir, const char *zLabel, int e, const char *z);
void fail(int iSec, int eDir, const char *zLabel, int e, const char *zErr);
/* The value already recorded in a cell (NaN when none). */
double got(int iSec, const char *zLabel, int e);

typedef struct Dataset {
  const char *zName; /* "128", "768" */
  int d;
  int64_t n;         /* rows available in x */
  float *x;
  float *q;
  int nq;
  char *zQFile;
} Dataset;

typedef struct Table {
  int e;
  char zPath[600];
  int d;
  int bGrp;
  int bNoRowid; /* sql_build inserts the vector alone: neither rowid nor id given */
  sqlite3 *db;
  int bOk;
  char zErr[400];
} Table;

int grp_of(int64_t rowid);
float *read_fvecs(const char *zPath, int64_t *pn, int *pd);
void faiss_check(int rc, const char *zWhat);
FaissIndex *faiss_build(const char *zDesc, int d, const float *x, int64_t n, const char *zPath, double *pMs);
void faiss_params(FaissIndex *idx, const char *zParams);
sqlite3 *sql_open(int e, const char *zPath, char *zErr, size_t nErr);
const void *vec_blob(int e, const float *v, int d, int *pn, unsigned char *aBuf);
const char *knn_sql(int e, int k, const char *zExtra, char *z, size_t n);
void remove_db(const char *zPath);
double sql_build(Table *t, const char *zIndex, const float *x, int64_t n, int64_t nFrom);
void sql_close(Table *t);
long proc_status_kb(const char *zKey);
void reset_peak_rss(void);
/* Runs this binary again (with --ext and --peers) with the given arguments; its stdout goes to zOut. 0 when it
** exited with status 0, else its wait status. */
int run_self(char *const *azArg, int nArg, char *zOut, size_t nOut);
int run_child(int e, const char *zPath, const char *zQFile, int nq, const char *zParams, double *pOpenMs,
              double *pMb, char *zErr, size_t nErr);
char *path_in_dir(const char *zName);
const char *size_label(int64_t n);
int engine_usable(int e);
int cmp_double(const void *a, const void *b);

/* bench_store.c */
/* Records a file of the big (G.nBig x 128) sets for the sections below; zIndex "Flat", "HNSW32", ...; zWhat the
** label of the set's rows; zParams the operating point's search parameters ("" for Flat). */
void store_file(const char *zIndex, const char *zWhat, int e, const char *zPath, const char *zParams);
/* Database file size row of zWhat for engine e, and its line against the raw vectors (n x d x 4 bytes). */
void record_size(const char *zWhat, int e, const char *zPath, int64_t n, int d);
/* The sections of issues 12 and 13 that run after the big tables are built (and before their one-row commits). */
void bench_store(const Dataset *ds);
/* Child modes: --conns ENGINE PATH QFILE NCONN [PARAMS], --second ENGINE PATH QFILE [PARAMS]. */
int store_child_main(const char *zMode, int argc, char **argv);

#endif
