/* Shared helpers for the cmocka suites: real SQLite connections on real files with vecstore loaded. */
#ifndef VECSTORE_TESTUTIL_H
#define VECSTORE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>

/* A fresh directory under build/test-tmp for this process; tu_path joins a file name to it. */
const char *tu_dir(void);
char *tu_path(const char *zName); /* sqlite3_malloc'd */
void tu_remove_db(const char *zPath);  /* the file and its -wal, -shm, -journal */
/* Copies the file zFrom to zTo (removing zTo and its -wal, -shm, -journal first); fails the test on error. */
void tu_copy_file(const char *zFrom, const char *zTo);

/* Opens zPath (created if needed), loads build/vecstore, fails the test on error. */
sqlite3 *tu_open(const char *zPath);
/* A fresh database file per test: tu_fixture_open(prefix) removes and opens <prefix>-<n>.db as tu_db (use it
** as a cmocka setup), tu_fixture_close() closes and removes it (teardown). */
extern sqlite3 *tu_db;
int tu_fixture_open(const char *zPrefix);
int tu_fixture_close(void);
const char *tu_fixture_path(void);
/* Asserts that the text of zSql's first column is zWant. */
void tu_expect_text(sqlite3 *db, const char *zSql, const char *zWant);

/* TU_FIXTURES(prefix) defines the static cmocka setup and teardown of a suite whose tests each get a fresh tu_db:
** setup is tu_fixture_open(prefix), teardown tu_fixture_close(). */
#define TU_FIXTURES(zPrefix)                                                                                    \
  static int setup(void **state) { (void)state; return tu_fixture_open(zPrefix); }                             \
  static int teardown(void **state) { (void)state; return tu_fixture_close(); }

/* Files named zName in tu_dir(), for suites that open several databases per test:
** tu_open_fresh removes tu_path(zName) (and its -wal, -shm, -journal) and opens it anew with vecstore loaded;
** tu_open_again opens it as it is (a reopen); tu_close_remove asserts that sqlite3_close(db) succeeds (every
** statement finalized) and then removes the file. */
sqlite3 *tu_open_fresh(const char *zName);
sqlite3 *tu_open_again(const char *zName);
void tu_close_remove(sqlite3 *db, const char *zName);

/* Executes SQL that must succeed. */
void tu_exec(sqlite3 *db, const char *zSql);
/* tu_exec of sqlite3_mprintf(zFmt, ...) (so %q, %Q and %w work). */
void tu_exec_fmt(sqlite3 *db, const char *zFmt, ...);
/* Executes SQL that must fail; returns the error message (sqlite3_malloc'd) for checks. */
char *tu_exec_error(sqlite3 *db, const char *zSql);
/* Asserts that zSql fails with a message containing every NULL-terminated fragment given. */
void tu_expect_error(sqlite3 *db, const char *zSql, ...);
/* First column of the first row as integer / double / text (sqlite3_malloc'd) */
sqlite3_int64 tu_int(sqlite3 *db, const char *zSql);
double tu_double(sqlite3 *db, const char *zSql);
char *tu_text(sqlite3 *db, const char *zSql);
sqlite3_stmt *tu_prepare(sqlite3 *db, const char *zSql);
/* Asserts that the integer of zSql's first column is iWant. */
void tu_expect_int(sqlite3 *db, const char *zSql, sqlite3_int64 iWant);
/* Every row of zSql as one text (sqlite3_malloc'd, "" for no row): columns joined by '|', rows by zRowSep;
** integers in decimal, reals printed with zRealFmt (e.g. "%g", "%.4f"), NULL as "NULL", other values as text.
** Fails the test if the query fails. tu_expect_rows asserts that this text is zWant. */
char *tu_rows(sqlite3 *db, const char *zSql, const char *zRowSep, const char *zRealFmt);
void tu_expect_rows(sqlite3 *db, const char *zSql, const char *zRowSep, const char *zRealFmt, const char *zWant);

/* In one transaction (BEGIN ... COMMIT), runs zInsert once per row i of aVec (n rows of d floats) with ?1 bound to
** the rowid i + 1 and ?2 to row i as a float32 BLOB; fails the test on any error. */
void tu_insert_vectors(sqlite3 *db, const char *zInsert, const float *aVec, int n, int d);
/* JSON text of the d floats of a, each printed with %.9g (exact for float32): "[x,y,...]", sqlite3_malloc'd. */
char *tu_vec_json(const float *a, int d);

/* Reads an .fvecs / .ivecs file of tests/data: *pn rows of *pd values, malloc'd. */
float *tu_read_fvecs(const char *zName, int *pn, int *pd);
int *tu_read_ivecs(const char *zName, int *pn, int *pd);
/* The path of a file in tests/data, relative to the repository root where the suites run (static buffer). */
const char *tu_data_path(const char *zName);

/* Reference metric of SPEC.md, in double precision, for checking results: eMetric is TU_L2 (squared Euclidean),
** TU_IP (negated inner product) or TU_COSINE (1 - cosine similarity; a zero vector has similarity 0). */
enum { TU_L2, TU_IP, TU_COSINE };
double tu_ref_distance(const float *a, const float *b, int d, int eMetric);
/* SPEC.md's score of a distance: l2 1 - sqrt(d)/sqrt(2), cosine 1 - d, ip -d. */
double tu_ref_score(double rDist, int eMetric);
/* Brute-force nearest neighbours. tu_topk_add keeps aRow / aDist (*pn entries, at most k) sorted by increasing
** distance, equal distances in the order they were added: (iRow, rDist) goes in when it is among the k nearest
** seen so far. tu_brute_force fills aRow / aDist with the k nearest rows (0-based) of the nBase rows of aBase to q
** under eMetric (tu_ref_distance), ties broken by the lower row, and returns how many it found: min(k, nBase). */
void tu_topk_add(int *aRow, double *aDist, int *pn, int k, int iRow, double rDist);
int tu_brute_force(const float *aBase, int nBase, int d, const float *q, int eMetric, int k, int *aRow,
                   double *aDist);

/* A search result or a reference row: rowid and distance. tu_hits_nearest orders a[0..n) by increasing distance,
** equal distances by rowid, and returns how many of them are the k nearest: min(n, k). */
typedef struct TuHit {
  sqlite3_int64 iRowid;
  double rDist;
} TuHit;
int tu_hits_nearest(TuHit *a, int n, int k);

/* The snapshot chunk checksum of ext/storage.c, re-implemented on purpose: tests forge snapshots that pass it, to
** prove that what Faiss parses is still checked, or keep hand-edited bookkeeping consistent. */
uint64_t tu_chunk_checksum(uint64_t h, const unsigned char *a, size_t n);

/* Deterministic pseudo-random numbers (xorshift). */
uint64_t tu_rand(uint64_t *pState);
double tu_rand_unit(uint64_t *pState);

#endif
