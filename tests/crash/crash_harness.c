/*
** crash_harness.c: crash safety of vecstore under SIGKILL (issue 6).
**
** The parent process runs series, one per (journal mode, index type): WAL with synchronous=NORMAL and the
** rollback journal (journal_mode=DELETE) with synchronous=FULL, each on Flat, HNSW16, IVF16,Flat and a "mixed"
** table whose index type is switched by 'index=' commands. For each series it creates one database file and
** then repeats: spawn a writer (this program, exec'd with --writer, so no OpenMP or SQLite state crosses a
** fork), let it run transactions, SIGKILL it, open the file on a fresh connection and check it.
**
** Transactions are a pure function of (seed, transaction number, model state): gen_txn() both drives the
** writer's SQL and, in the parent, replays a transaction into the in-memory model without SQL. Each transaction
** also sets progress.txn (an ordinary table) to its number, so after a kill the file itself says which
** transaction was the last to commit. The writer reports on a pipe: "B i kind" (transaction i begins),
** "C i kind" (COMMIT is about to be called), "D i ..." (COMMIT returned OK). After a kill the parent requires
** progress.txn to be the last D, or the in-flight C (all-or-nothing), and the table to equal the model exactly:
** every row (id, rowid when it was given, content, metadata, embedding bytes), no other row, the row count,
** PRAGMA integrity_check, INSERT INTO t(t) VALUES ('integrity-check'), each live row found first at distance 0
** by a search with its own vector, and searches with vectors that must not be in the index (deleted rows,
** rolled-back and uncommitted inserts and updates, old versions) returning only rows at their true distance.
** A second connection, kept open across kills, must agree (its cached index follows the crashed writer).
**
** Kills land: after a random delay; shortly after the writer announces the COMMIT of a heavy transaction (a
** big insert, delete or update that writes a snapshot or compacts, optimize, rebuild, train, an index switch),
** or during one; or, through a VFS shim in the writer, exactly before (or right after) its K-th file write,
** sync, truncate or delete after a chosen point (the writer kills itself with SIGKILL), which places kills
** between any two I/O steps of a commit, a cache spill (a third of the writers run with a 16-page cache) or a
** WAL checkpoint; or just after COMMIT returned, before the writer could report it. The first connection to
** read after a kill (which recovers the hot journal or the WAL) is the fresh one, or the kept one.
**
** Why these synchronous settings: SIGKILL leaves the OS page cache intact, so the synchronous level cannot
** change the outcome of a process crash (it matters for power loss, which this harness does not simulate).
** NORMAL is the usual production setting in WAL mode and FULL the default for rollback journals.
**
** Environment: CRASH_SECONDS (default 48, spread over the series), CRASH_ITERATIONS (kills per series; with it
** alone there is no time limit), CRASH_SEED, CRASH_SERIES (comma-separated names, e.g. wal-hnsw), CRASH_DIR
** (default build/crash/run-<pid>, removed on success unless CRASH_KEEP=1), CRASH_VERBOSE=1, VECSTORE_EXT.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef int64_t i64;
typedef uint64_t u64;
typedef uint32_t u32;

#define DIM 16
#define ROWID_BASE ((i64)1 << 40)   /* explicit rowids: ROWID_BASE + num * ROWID_STRIDE + move count */
#define ROWID_STRIDE ((i64)1 << 20)
#define SENTINEL_ROWID ((i64)1 << 62) /* row d0, never deleted: automatic rowids are above it */
#define LIVE_MAX 4000                 /* above this, inserts turn into deletes */
#define LIVE_BIG_MIN 1500             /* big deletes and updates need this many rows */
#define MSG_FD 3

/**************************************************************************************************
** Deterministic values.
*/

static u64 splitmix(u64 x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static u64 mix3(u64 a, u64 b, u64 c) { return splitmix(splitmix(splitmix(a) ^ b) ^ c); }

/* The vector of document num at version vv: 24-bit values in [-1, 1), exact in float32. */
static void make_vector(i64 num, u32 vv, float *a) {
  for (int k = 0; k < DIM; k++) {
    u64 h = mix3((u64)num, vv, 1000 + (u64)k);
    a[k] = (float)((double)(h >> 40) / (double)(1 << 24) * 2.0 - 1.0);
  }
}

static const char *const azWord[] = {"vector", "store", "sqlite", "faiss", "crash", "commit", "journal",
                                     "snapshot", "ünïcödé", "quote's", "\"dq\"", "ταυ", "数据", "tab\there",
                                     "line\nbreak", "%s%d", "NULL", "", "optimize", "🙂"};
#define N_WORD ((int)(sizeof(azWord) / sizeof(azWord[0])))

/* Content of document num at version vc into buf; returns its length, or -1 for NULL content. */
static int make_content(i64 num, u32 vc, char *buf, int nBuf) {
  u64 h = mix3((u64)num, vc, 7);
  if (h % 19 == 0) return -1;
  int n = snprintf(buf, (size_t)nBuf, "doc %lld v%u:", (long long)num, vc);
  int nWord = (int)((h >> 8) % 40);
  for (int i = 0; i < nWord && n < nBuf - 32; i++) {
    n += snprintf(buf + n, (size_t)(nBuf - n), " %s", azWord[mix3((u64)num, vc, 100 + (u64)i) % N_WORD]);
  }
  return n;
}

static int make_metadata(i64 num, u32 vm, char *buf, int nBuf) {
  u64 h = mix3((u64)num, vm, 9);
  return snprintf(buf, (size_t)nBuf, "{\"num\":%lld,\"v\":%u,\"tag\":\"t%u\",\"list\":[%u,%u]}", (long long)num, vm,
                  (u32)(h % 97), (u32)(h >> 20) % 5, (u32)(h >> 40) % 11);
}

static double l2(const float *a, const float *b) {
  double s = 0;
  for (int k = 0; k < DIM; k++) s += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
  return s;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/**************************************************************************************************
** The model: what the table must hold after the transactions committed so far.
*/

enum { DOC_NEVER = 0, DOC_ALIVE = 1, DOC_DELETED = 2 };

typedef struct Doc {
  i64 rowid;    /* when hasRowid */
  i64 lastTxn;  /* the transaction that last changed it (diagnostics) */
  u32 vc, vm, vv, mv; /* versions of content, metadata, vector; moves */
  uint8_t state, hasRowid;
} Doc;

typedef struct Undo {
  i64 num;
  Doc old;
} Undo;

typedef struct Model {
  i64 nextNum;      /* documents d0 .. d(nextNum-1) have been used */
  i64 nAlloc;
  Doc *aDoc;
  i64 *aPos;        /* position in aLive, or -1 */
  i64 nLive, *aLive;
  Undo *aUndo;      /* changes of the open transaction, for ROLLBACK and ROLLBACK TO */
  i64 nUndo, nUndoAlloc;
  int iIndex;       /* mixed series: current entry of aMixed */
  i64 iTxn;         /* the transaction being generated */
} Model;

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (q == 0) {
    fprintf(stderr, "crash: out of memory\n");
    exit(2);
  }
  return q;
}

static void model_reserve(Model *m, i64 n) {
  if (n <= m->nAlloc) return;
  i64 nNew = m->nAlloc ? m->nAlloc : 1024;
  while (nNew < n) nNew *= 2;
  m->aDoc = xrealloc(m->aDoc, (size_t)nNew * sizeof(Doc));
  m->aPos = xrealloc(m->aPos, (size_t)nNew * sizeof(i64));
  m->aLive = xrealloc(m->aLive, (size_t)nNew * sizeof(i64));
  memset(m->aDoc + m->nAlloc, 0, (size_t)(nNew - m->nAlloc) * sizeof(Doc));
  for (i64 i = m->nAlloc; i < nNew; i++) m->aPos[i] = -1;
  m->nAlloc = nNew;
}

static void model_free(Model *m) {
  free(m->aDoc);
  free(m->aPos);
  free(m->aLive);
  free(m->aUndo);
  memset(m, 0, sizeof(*m));
}

/* Sets document num without recording undo, keeping aLive in step with the state. */
static void doc_set_raw(Model *m, i64 num, const Doc *pNew) {
  Doc *pCur = &m->aDoc[num];
  if (pCur->state == DOC_ALIVE && pNew->state != DOC_ALIVE) {
    i64 iPos = m->aPos[num];
    i64 iLast = m->aLive[--m->nLive];
    m->aLive[iPos] = iLast;
    m->aPos[iLast] = iPos;
    m->aPos[num] = -1;
  } else if (pCur->state != DOC_ALIVE && pNew->state == DOC_ALIVE) {
    m->aPos[num] = m->nLive;
    m->aLive[m->nLive++] = num;
  }
  *pCur = *pNew;
}

static void doc_set(Model *m, i64 num, Doc d) {
  if (m->nUndo == m->nUndoAlloc) {
    m->nUndoAlloc = m->nUndoAlloc ? m->nUndoAlloc * 2 : 256;
    m->aUndo = xrealloc(m->aUndo, (size_t)m->nUndoAlloc * sizeof(Undo));
  }
  m->aUndo[m->nUndo].num = num;
  m->aUndo[m->nUndo].old = m->aDoc[num];
  m->nUndo++;
  d.lastTxn = m->iTxn;
  doc_set_raw(m, num, &d);
}

static void undo_to(Model *m, i64 iMark) {
  while (m->nUndo > iMark) {
    Undo *u = &m->aUndo[--m->nUndo];
    doc_set_raw(m, u->num, &u->old);
  }
}

static i64 m_insert(Model *m, int bExplicit) {
  i64 num = m->nextNum++;
  model_reserve(m, m->nextNum);
  Doc d = {bExplicit ? ROWID_BASE + num * ROWID_STRIDE : 0, 0, 1, 1, 1, 0, DOC_ALIVE, (uint8_t)bExplicit};
  doc_set(m, num, d);
  return num;
}

/* A number used by a row that never commits (a failing statement). */
static i64 m_ghost(Model *m) {
  i64 num = m->nextNum++;
  model_reserve(m, m->nextNum);
  return num;
}

static void m_update(Model *m, i64 num, int mask) {
  Doc d = m->aDoc[num];
  if (mask & 1) d.vc++;
  if (mask & 2) d.vm++;
  if (mask & 4) d.vv++;
  doc_set(m, num, d);
}

static void m_move(Model *m, i64 num) {
  Doc d = m->aDoc[num];
  d.mv++;
  d.hasRowid = 1;
  d.rowid = ROWID_BASE + num * ROWID_STRIDE + d.mv;
  doc_set(m, num, d);
}

static void m_delete(Model *m, i64 num) {
  Doc d = m->aDoc[num];
  d.state = DOC_DELETED;
  doc_set(m, num, d);
}

static void m_replace(Model *m, i64 num, int bExplicit, i64 iRowid) {
  Doc d = m->aDoc[num];
  d.vc++;
  d.vm++;
  d.vv++;
  d.mv++;
  d.hasRowid = (uint8_t)(bExplicit || iRowid);
  d.rowid = iRowid ? iRowid : bExplicit ? ROWID_BASE + num * ROWID_STRIDE + d.mv : 0;
  doc_set(m, num, d);
}

/* The model file handed to a writer: nextNum, iIndex, then the live documents in aLive order. */
static int model_write(const Model *m, const char *zPath) {
  FILE *f = fopen(zPath, "wb");
  if (f == 0) return 1;
  i64 aHead[3] = {m->nextNum, m->iIndex, m->nLive};
  fwrite(aHead, sizeof(aHead), 1, f);
  for (i64 i = 0; i < m->nLive; i++) {
    fwrite(&m->aLive[i], sizeof(i64), 1, f);
    fwrite(&m->aDoc[m->aLive[i]], sizeof(Doc), 1, f);
  }
  return fclose(f) != 0;
}

static int model_read(Model *m, const char *zPath) {
  FILE *f = fopen(zPath, "rb");
  i64 aHead[3];
  memset(m, 0, sizeof(*m));
  if (f == 0 || fread(aHead, sizeof(aHead), 1, f) != 1) return 1;
  model_reserve(m, aHead[0] + 1);
  m->nextNum = aHead[0];
  m->iIndex = (int)aHead[1];
  for (i64 i = 0; i < aHead[2]; i++) {
    i64 num;
    Doc d;
    if (fread(&num, sizeof(num), 1, f) != 1 || fread(&d, sizeof(d), 1, f) != 1) return 1;
    doc_set_raw(m, num, &d);
  }
  fclose(f);
  return 0;
}

/**************************************************************************************************
** Series.
*/

typedef struct IndexKind {
  const char *zIndex;
  const char *zParams;
} IndexKind;

static const IndexKind aMixed[] = {{"Flat", ""}, {"HNSW16", "efSearch=128"}, {"IVF16,Flat", "nprobe=16"}};

typedef struct Series {
  const char *zName;
  int bWal;
  int iIndex;  /* into aMixed: the index type at creation */
  int bMixed;  /* switch index types with 'index=' */
} Series;

static const Series aSeries[] = {
    {"wal-flat", 1, 0, 0},      {"wal-hnsw", 1, 1, 0},      {"wal-ivf", 1, 2, 0},      {"wal-mixed", 1, 0, 1},
    {"rollback-flat", 0, 0, 0}, {"rollback-hnsw", 0, 1, 0}, {"rollback-ivf", 0, 2, 0}, {"rollback-mixed", 0, 0, 1},
};
#define N_SERIES ((int)(sizeof(aSeries) / sizeof(aSeries[0])))

enum { K_SMALL, K_MEDIUM, K_BIGINS, K_BIGDEL, K_BIGUPD, K_OPTIMIZE, K_REBUILD, K_TRAIN, K_ROLLBACK, K_SWITCH,
       K_CHECK, K_COUNT };
static const char *const azKind[K_COUNT] = {"small",   "medium",  "big-insert", "big-delete", "big-update", "optimize",
                                            "rebuild", "train",   "rollback",   "index-switch", "check"};
static int is_heavy(int k) { return k >= K_BIGINS && k <= K_SWITCH && k != K_ROLLBACK; }

/**************************************************************************************************
** The writer side: a VFS shim that can SIGKILL the process before its K-th I/O step, SQL helpers, messages.
*/

typedef struct ShimFile {
  sqlite3_file base;
  sqlite3_file *pReal;
} ShimFile;

static sqlite3_vfs *g_pRealVfs;
static sqlite3_vfs g_shimVfs;
static i64 g_nIo;            /* writes, syncs, truncates and deletes so far */
static i64 g_ioKillAt = -1;  /* SIGKILL before (or with g_ioAfter, right after) I/O step number g_ioKillAt */
static int g_ioAfter;

static void io_tick(void) {
  g_nIo++;
  if (!g_ioAfter && g_ioKillAt >= 0 && g_nIo >= g_ioKillAt) raise(SIGKILL);
}
static int io_done(int rc) {
  if (g_ioAfter && g_ioKillAt >= 0 && g_nIo >= g_ioKillAt) raise(SIGKILL);
  return rc;
}

#define REAL(f) (((ShimFile *)(f))->pReal)
static int shClose(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int shRead(sqlite3_file *f, void *a, int n, sqlite3_int64 o) { return REAL(f)->pMethods->xRead(REAL(f), a, n, o); }
static int shWrite(sqlite3_file *f, const void *a, int n, sqlite3_int64 o) {
  io_tick();
  return io_done(REAL(f)->pMethods->xWrite(REAL(f), a, n, o));
}
static int shTruncate(sqlite3_file *f, sqlite3_int64 n) {
  io_tick();
  return io_done(REAL(f)->pMethods->xTruncate(REAL(f), n));
}
static int shSync(sqlite3_file *f, int fl) {
  io_tick();
  return io_done(REAL(f)->pMethods->xSync(REAL(f), fl));
}
static int shFileSize(sqlite3_file *f, sqlite3_int64 *p) { return REAL(f)->pMethods->xFileSize(REAL(f), p); }
static int shLock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int shUnlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int shReserved(sqlite3_file *f, int *p) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), p); }
static int shFcntl(sqlite3_file *f, int op, void *a) { return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int shSector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int shDevChar(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int shShmMap(sqlite3_file *f, int i, int n, int b, void volatile **pp) {
  return REAL(f)->pMethods->xShmMap(REAL(f), i, n, b, pp);
}
static int shShmLock(sqlite3_file *f, int o, int n, int fl) { return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl); }
static void shShmBarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int shShmUnmap(sqlite3_file *f, int d) { return REAL(f)->pMethods->xShmUnmap(REAL(f), d); }
static int shFetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp) { return REAL(f)->pMethods->xFetch(REAL(f), o, n, pp); }
static int shUnfetch(sqlite3_file *f, sqlite3_int64 o, void *p) { return REAL(f)->pMethods->xUnfetch(REAL(f), o, p); }

static const sqlite3_io_methods g_shimIo = {3, shClose, shRead, shWrite, shTruncate, shSync, shFileSize, shLock,
                                            shUnlock, shReserved, shFcntl, shSector, shDevChar, shShmMap,
                                            shShmLock, shShmBarrier, shShmUnmap, shFetch, shUnfetch};

static int vOpen(sqlite3_vfs *v, const char *z, sqlite3_file *f, int fl, int *po) {
  (void)v;
  ShimFile *p = (ShimFile *)f;
  p->pReal = (sqlite3_file *)&p[1];
  int rc = g_pRealVfs->xOpen(g_pRealVfs, z, p->pReal, fl, po);
  p->base.pMethods = p->pReal->pMethods ? &g_shimIo : 0;
  return rc;
}
static int vDelete(sqlite3_vfs *v, const char *z, int d) {
  (void)v;
  io_tick();
  return io_done(g_pRealVfs->xDelete(g_pRealVfs, z, d));
}
static int vAccess(sqlite3_vfs *v, const char *z, int fl, int *p) { (void)v; return g_pRealVfs->xAccess(g_pRealVfs, z, fl, p); }
static int vFull(sqlite3_vfs *v, const char *z, int n, char *o) { (void)v; return g_pRealVfs->xFullPathname(g_pRealVfs, z, n, o); }
static void *vDlOpen(sqlite3_vfs *v, const char *z) { (void)v; return g_pRealVfs->xDlOpen(g_pRealVfs, z); }
static void vDlError(sqlite3_vfs *v, int n, char *z) { (void)v; g_pRealVfs->xDlError(g_pRealVfs, n, z); }
static void (*vDlSym(sqlite3_vfs *v, void *h, const char *z))(void) { (void)v; return g_pRealVfs->xDlSym(g_pRealVfs, h, z); }
static void vDlClose(sqlite3_vfs *v, void *h) { (void)v; g_pRealVfs->xDlClose(g_pRealVfs, h); }
static int vRandom(sqlite3_vfs *v, int n, char *z) { (void)v; return g_pRealVfs->xRandomness(g_pRealVfs, n, z); }
static int vSleep(sqlite3_vfs *v, int n) { (void)v; return g_pRealVfs->xSleep(g_pRealVfs, n); }
static int vTime(sqlite3_vfs *v, double *p) { (void)v; return g_pRealVfs->xCurrentTime(g_pRealVfs, p); }
static int vLastErr(sqlite3_vfs *v, int n, char *z) { (void)v; return g_pRealVfs->xGetLastError(g_pRealVfs, n, z); }
static int vTime64(sqlite3_vfs *v, sqlite3_int64 *p) { (void)v; return g_pRealVfs->xCurrentTimeInt64(g_pRealVfs, p); }

/* Makes the shim the default VFS (writer only). */
static void shim_register(void) {
  g_pRealVfs = sqlite3_vfs_find(0);
  sqlite3_vfs v = {2, (int)(sizeof(ShimFile) + (size_t)g_pRealVfs->szOsFile), g_pRealVfs->mxPathname, 0,
                   "crash-shim", 0, vOpen, vDelete, vAccess, vFull, vDlOpen, vDlError, vDlSym, vDlClose, vRandom,
                   vSleep, vTime, vLastErr, vTime64, 0, 0, 0};
  g_shimVfs = v;
  sqlite3_vfs_register(&g_shimVfs, 1);
}

typedef struct StmtCache {
  char *zSql;
  sqlite3_stmt *p;
} StmtCache;

typedef struct Writer {
  sqlite3 *db;
  StmtCache aCache[64];
  int nCache;
  i64 iStartTxn;
  int armMode;   /* 0 none, 1 the first heavy transaction from armFrom, 2 transaction armFrom */
  int armAt;     /* 0 at BEGIN, 1 at COMMIT, 2 after COMMIT returned (before "D" is sent) */
  i64 armFrom, armK;
  int bArmDone, bArmedNow;
  i64 ioAtB, ioAtC;
} Writer;

typedef struct Gen {
  Model *m;
  Writer *w;      /* 0 in the parent: the model alone */
  const Series *s;
  u64 seed, rng;
  int nSp, spDepth;
} Gen;

static void msg(const char *zFmt, ...) {
  char buf[600];
  va_list ap;
  va_start(ap, zFmt);
  int n = vsnprintf(buf, sizeof(buf) - 1, zFmt, ap);
  va_end(ap);
  if (n > (int)sizeof(buf) - 2) n = (int)sizeof(buf) - 2;
  buf[n++] = '\n';
  if (write(MSG_FD, buf, (size_t)n) < 0) _exit(3);
}

static i64 g_curTxn = -1;

static void w_fail(Writer *w, const char *zFmt, ...) {
  char buf[500];
  va_list ap;
  va_start(ap, zFmt);
  vsnprintf(buf, sizeof(buf), zFmt, ap);
  va_end(ap);
  fprintf(stderr, "crash writer, txn %lld: %s (%s)\n", (long long)g_curTxn, buf, w && w->db ? sqlite3_errmsg(w->db) : "");
  for (char *p = buf; *p; p++) if (*p == '\n') *p = ' ';
  msg("E txn %lld: %s", (long long)g_curTxn, buf);
  _exit(2);
}

static sqlite3_stmt *w_prep(Writer *w, const char *zSql) {
  for (int i = 0; i < w->nCache; i++) {
    if (strcmp(w->aCache[i].zSql, zSql) == 0) return w->aCache[i].p;
  }
  sqlite3_stmt *p = 0;
  if (sqlite3_prepare_v2(w->db, zSql, -1, &p, 0) != SQLITE_OK) w_fail(w, "prepare %s", zSql);
  if (w->nCache == (int)(sizeof(w->aCache) / sizeof(w->aCache[0]))) {
    sqlite3_finalize(w->aCache[--w->nCache].p);
    free(w->aCache[w->nCache].zSql);
  }
  w->aCache[w->nCache].zSql = strdup(zSql);
  w->aCache[w->nCache].p = p;
  w->nCache++;
  return p;
}

static void w_exec(Writer *w, const char *zSql) {
  char *zErr = 0;
  if (sqlite3_exec(w->db, zSql, 0, 0, &zErr) != SQLITE_OK) w_fail(w, "%s: %s", zSql, zErr ? zErr : "?");
}

static void w_done(Writer *w, sqlite3_stmt *p, const char *zWhat) {
  int rc = sqlite3_step(p);
  if (rc != SQLITE_DONE) w_fail(w, "%s failed (%d): %s", zWhat, rc, sqlite3_errmsg(w->db));
  sqlite3_reset(p);
  sqlite3_clear_bindings(p);
}

/* A statement that must fail with (extended) error class eWant, changing nothing. */
static void w_must_fail(Writer *w, sqlite3_stmt *p, int eWant, const char *zWhat) {
  int rc = sqlite3_step(p);
  sqlite3_reset(p);
  sqlite3_clear_bindings(p);
  if ((rc & 0xff) != eWant) w_fail(w, "%s: expected error %d, got %d", zWhat, eWant, rc);
  if (sqlite3_get_autocommit(w->db)) w_fail(w, "%s: the failing statement ended the transaction", zWhat);
}

static void bind_vector(sqlite3_stmt *p, int i, i64 num, u32 vv) {
  float a[DIM];
  make_vector(num, vv, a);
  sqlite3_bind_blob(p, i, a, (int)sizeof(a), SQLITE_TRANSIENT);
}

/* Binds (rowid, id, content, metadata, embedding) at i .. i+4. */
static void bind_row(sqlite3_stmt *p, int i, int bRowid, i64 iRowid, i64 num, u32 vc, u32 vm, u32 vv) {
  char buf[2048];
  if (bRowid) sqlite3_bind_int64(p, i, iRowid);
  else sqlite3_bind_null(p, i);
  snprintf(buf, sizeof(buf), "d%lld", (long long)num);
  sqlite3_bind_text(p, i + 1, buf, -1, SQLITE_TRANSIENT);
  int n = make_content(num, vc, buf, sizeof(buf));
  if (n < 0) sqlite3_bind_null(p, i + 2);
  else sqlite3_bind_text(p, i + 2, buf, n, SQLITE_TRANSIENT);
  n = make_metadata(num, vm, buf, sizeof(buf));
  sqlite3_bind_text(p, i + 3, buf, n, SQLITE_TRANSIENT);
  bind_vector(p, i + 4, num, vv);
}

static void bind_doc(sqlite3_stmt *p, int i, i64 num, const Doc *d) {
  bind_row(p, i, d->hasRowid, d->rowid, num, d->vc, d->vm, d->vv);
}

static void bind_id(sqlite3_stmt *p, int i, i64 num) {
  char buf[32];
  snprintf(buf, sizeof(buf), "d%lld", (long long)num);
  sqlite3_bind_text(p, i, buf, -1, SQLITE_TRANSIENT);
}

/* "INSERT [OR REPLACE] INTO t(rowid, id, content, metadata, embedding) VALUES (?,?,?,?,?), ..." for n rows. */
static const char *insert_sql(int n, int bReplace) {
  static char buf[1024];
  int k = snprintf(buf, sizeof(buf), "INSERT%s INTO t(rowid, id, content, metadata, embedding) VALUES ",
                   bReplace ? " OR REPLACE" : "");
  for (int i = 0; i < n; i++) k += snprintf(buf + k, sizeof(buf) - (size_t)k, "%s(?,?,?,?,?)", i ? ", " : "");
  return buf;
}

static void w_changes(Writer *w, int nWant, const char *zWhat) {
  int n = sqlite3_changes(w->db);
  if (n != nWant) w_fail(w, "%s changed %d rows, expected %d", zWhat, n, nWant);
}

/* The search of the writer's own transaction must see its changes (read-your-writes). */
static void w_search_self(Writer *w, i64 num, u32 vv) {
  sqlite3_stmt *p = w_prep(w, "SELECT id, distance FROM t WHERE embedding MATCH ?1 AND k = 1");
  bind_vector(p, 1, num, vv);
  char zWant[32];
  snprintf(zWant, sizeof(zWant), "d%lld", (long long)num);
  int rc = sqlite3_step(p);
  if (rc != SQLITE_ROW) w_fail(w, "search for %s inside the transaction returned no row (%d)", zWant, rc);
  const char *zId = (const char *)sqlite3_column_text(p, 0);
  double rDist = sqlite3_column_double(p, 1);
  if (zId == 0 || strcmp(zId, zWant) != 0 || rDist > 1e-6) {
    w_fail(w, "search inside the transaction with the vector of %s returned %s at %g", zWant, zId ? zId : "NULL",
           rDist);
  }
  sqlite3_reset(p);
  sqlite3_clear_bindings(p);
}

/**************************************************************************************************
** Transactions: gen_txn() draws every decision from the transaction's own random stream and the model, updates
** the model, and (in the writer) runs the SQL.
*/

static u64 rnd(Gen *g) {
  g->rng += 0x9E3779B97F4A7C15ull;
  return splitmix(g->rng);
}
static int rndn(Gen *g, int n) { return (int)(rnd(g) % (u64)n); }

/* A random live document other than the sentinel d0, or -1. */
static i64 pick(Gen *g) {
  Model *m = g->m;
  if (m->nLive <= 1) return -1;
  for (;;) {
    i64 num = m->aLive[rnd(g) % (u64)m->nLive];
    if (num != 0) return num;
  }
}

static i64 pick_explicit(Gen *g, i64 notNum) {
  for (int i = 0; i < 8; i++) {
    i64 num = pick(g);
    if (num > 0 && num != notNum && g->m->aDoc[num].hasRowid) return num;
  }
  return -1;
}

static void cmd(Gen *g, const char *zCmd) {
  if (g->w == 0) return;
  sqlite3_stmt *p = w_prep(g->w, "INSERT INTO t(t) VALUES (?1)");
  sqlite3_bind_text(p, 1, zCmd, -1, SQLITE_TRANSIENT);
  w_done(g->w, p, zCmd);
}

static void op_insert(Gen *g, int n) {
  i64 aNum[8];
  for (int i = 0; i < n; i++) aNum[i] = m_insert(g->m, rndn(g, 2));
  if (g->w == 0) return;
  sqlite3_stmt *p = w_prep(g->w, insert_sql(n, 0));
  for (int i = 0; i < n; i++) bind_doc(p, 5 * i + 1, aNum[i], &g->m->aDoc[aNum[i]]);
  w_done(g->w, p, "insert");
}

static void big_insert(Gen *g, int n) {
  sqlite3_stmt *p = g->w ? w_prep(g->w, insert_sql(1, 0)) : 0;
  for (int i = 0; i < n; i++) {
    i64 num = m_insert(g->m, rndn(g, 2));
    if (p) {
      bind_doc(p, 1, num, &g->m->aDoc[num]);
      w_done(g->w, p, "big insert");
    }
  }
}

static void op_update(Gen *g) {
  i64 num = pick(g);
  if (num < 0) {
    op_insert(g, 1);
    return;
  }
  int mask = 1 + rndn(g, 7);
  int bByRowid = g->m->aDoc[num].hasRowid && rndn(g, 2);
  m_update(g->m, num, mask);
  if (g->w == 0) return;
  char zSql[200];
  snprintf(zSql, sizeof(zSql), "UPDATE t SET %s%s%s%s%s WHERE %s", mask & 1 ? "content = ?1" : "",
           (mask & 1) && (mask & 6) ? ", " : "", mask & 2 ? "metadata = ?2" : "", (mask & 2) && (mask & 4) ? ", " : "",
           mask & 4 ? "embedding = ?3" : "", bByRowid ? "rowid = ?5" : "id = ?4");
  sqlite3_stmt *p = w_prep(g->w, zSql);
  const Doc *d = &g->m->aDoc[num];
  char buf[2048];
  int n = make_content(num, d->vc, buf, sizeof(buf));
  if (mask & 1) {
    if (n < 0) sqlite3_bind_null(p, 1);
    else sqlite3_bind_text(p, 1, buf, n, SQLITE_TRANSIENT);
  }
  if (mask & 2) {
    n = make_metadata(num, d->vm, buf, sizeof(buf));
    sqlite3_bind_text(p, 2, buf, n, SQLITE_TRANSIENT);
  }
  if (mask & 4) bind_vector(p, 3, num, d->vv);
  if (bByRowid) sqlite3_bind_int64(p, 5, d->rowid);
  else bind_id(p, 4, num);
  w_done(g->w, p, "update");
  w_changes(g->w, 1, "update");
}

static void op_move(Gen *g) {
  i64 num = pick(g);
  if (num < 0) return;
  m_move(g->m, num);
  if (g->w == 0) return;
  sqlite3_stmt *p = w_prep(g->w, "UPDATE t SET rowid = ?1 WHERE id = ?2");
  sqlite3_bind_int64(p, 1, g->m->aDoc[num].rowid);
  bind_id(p, 2, num);
  w_done(g->w, p, "move");
  w_changes(g->w, 1, "move");
}

static void op_delete(Gen *g, int n) {
  if (n == 1) {
    i64 num = pick(g);
    if (num < 0) return;
    int bByRowid = g->m->aDoc[num].hasRowid && rndn(g, 2);
    i64 iRowid = g->m->aDoc[num].rowid;
    m_delete(g->m, num);
    if (g->w == 0) return;
    sqlite3_stmt *p = w_prep(g->w, bByRowid ? "DELETE FROM t WHERE rowid = ?1" : "DELETE FROM t WHERE id = ?1");
    if (bByRowid) sqlite3_bind_int64(p, 1, iRowid);
    else bind_id(p, 1, num);
    w_done(g->w, p, "delete");
    w_changes(g->w, 1, "delete");
    return;
  }
  /* Several at once, through a JSON list of ids. */
  size_t nAlloc = (size_t)n * 24 + 16, k = 0;
  char *zList = malloc(nAlloc);
  int nDone = 0;
  k += (size_t)snprintf(zList, nAlloc, "[");
  for (int i = 0; i < n; i++) {
    i64 num = pick(g);
    if (num < 0) break;
    m_delete(g->m, num);
    k += (size_t)snprintf(zList + k, nAlloc - k, "%s\"d%lld\"", nDone ? "," : "", (long long)num);
    nDone++;
  }
  snprintf(zList + k, nAlloc - k, "]");
  if (g->w && nDone) {
    sqlite3_stmt *p = w_prep(g->w, "DELETE FROM t WHERE id IN (SELECT value FROM json_each(?1))");
    sqlite3_bind_text(p, 1, zList, -1, SQLITE_TRANSIENT);
    w_done(g->w, p, "delete list");
    w_changes(g->w, nDone, "delete list");
  }
  free(zList);
}

/* INSERT OR REPLACE of an existing id; with bOther, also taking the explicit rowid of another document. */
static void op_replace(Gen *g, int bOther) {
  i64 num = pick(g);
  if (num < 0) {
    op_insert(g, 1);
    return;
  }
  i64 other = bOther ? pick_explicit(g, num) : -1;
  i64 iRowid = 0;
  if (other > 0) {
    iRowid = g->m->aDoc[other].rowid;
    m_delete(g->m, other);
  }
  m_replace(g->m, num, rndn(g, 2), iRowid);
  if (g->w == 0) return;
  sqlite3_stmt *p = w_prep(g->w, insert_sql(1, 1));
  bind_doc(p, 1, num, &g->m->aDoc[num]);
  w_done(g->w, p, "insert or replace");
}

/* A statement that fails part-way: nothing of it may stay, the transaction goes on. */
static void op_fail(Gen *g) {
  Model *m = g->m;
  Writer *w = g->w;
  int eKind = rndn(g, 4);
  i64 a = pick(g);
  if (a < 0) return;
  const Doc *da = &m->aDoc[a];
  if (eKind == 0) { /* new rows, then (or first) a duplicate id */
    int n = 1 + rndn(g, 3), iDup = rndn(g, n + 1);
    i64 aNum[4];
    for (int i = 0; i < n; i++) aNum[i] = m_ghost(m);
    if (w == 0) return;
    sqlite3_stmt *p = w_prep(w, insert_sql(n + 1, 0));
    for (int i = 0, j = 0; i <= n; i++) {
      if (i == iDup) bind_row(p, 5 * i + 1, 0, 0, a, da->vc + 1, da->vm + 1, da->vv + 1);
      else bind_row(p, 5 * i + 1, (int)(aNum[j] & 1), ROWID_BASE + aNum[j] * ROWID_STRIDE, aNum[j], 1, 1, 1), j++;
    }
    w_must_fail(w, p, SQLITE_CONSTRAINT, "insert with a duplicate id");
  } else if (eKind == 1) { /* a new row on the explicit rowid of another */
    i64 b = pick_explicit(g, -1);
    i64 num = m_ghost(m);
    if (w == 0 || b < 0) return;
    sqlite3_stmt *p = w_prep(w, insert_sql(2, 0));
    bind_row(p, 1, 0, 0, num + 0, 1, 1, 1);
    bind_row(p, 6, 1, m->aDoc[b].rowid, num + 0, 1, 1, 1);
    sqlite3_bind_text(p, 2, "fail-tmp", -1, SQLITE_STATIC); /* first row: another id, same vector */
    w_must_fail(w, p, SQLITE_CONSTRAINT, "insert with a duplicate rowid");
  } else if (eKind == 2) { /* an UPDATE of two rows, one with a vector of the wrong size */
    i64 b = pick(g);
    if (w == 0 || b == a) return;
    sqlite3_stmt *p = w_prep(w, "UPDATE t SET embedding = CASE WHEN id = ?1 THEN ?2 ELSE x'000000' END "
                                "WHERE id IN (?1, ?3)");
    bind_id(p, 1, a);
    bind_vector(p, 2, a, da->vv + 1);
    bind_id(p, 3, b);
    w_must_fail(w, p, SQLITE_ERROR, "update with a bad vector");
  } else { /* new rows, the last one with a non-finite vector */
    int n = 1 + rndn(g, 3);
    i64 aNum[4];
    for (int i = 0; i < n; i++) aNum[i] = m_ghost(m);
    if (w == 0) return;
    sqlite3_stmt *p = w_prep(w, insert_sql(n, 0));
    for (int i = 0; i < n; i++) bind_row(p, 5 * i + 1, 0, 0, aNum[i], 1, 1, 1);
    float aBad[DIM];
    make_vector(aNum[n - 1], 1, aBad);
    aBad[DIM / 2] = NAN;
    sqlite3_bind_blob(p, 5 * (n - 1) + 5, aBad, (int)sizeof(aBad), SQLITE_TRANSIENT);
    w_must_fail(w, p, SQLITE_ERROR, "insert with a NaN");
  }
}

static void small_op(Gen *g);

/* SAVEPOINT, some changes, then mostly ROLLBACK TO (the model forgets them), else RELEASE. */
static void sp_section(Gen *g) {
  Model *m = g->m;
  char zSql[64];
  int iSp = g->nSp++;
  i64 iMark = m->nUndo;
  g->spDepth++;
  if (g->w) {
    snprintf(zSql, sizeof(zSql), "SAVEPOINT sp%d", iSp);
    w_exec(g->w, zSql);
  }
  int n = 1 + rndn(g, 8);
  for (int i = 0; i < n; i++) small_op(g);
  if (g->spDepth == 1 && rndn(g, 15) == 0 && m->nLive < LIVE_MAX) big_insert(g, 1000 + rndn(g, 200));
  if (rndn(g, 10) < 7) {
    undo_to(m, iMark);
    if (g->w) {
      snprintf(zSql, sizeof(zSql), "ROLLBACK TO sp%d; RELEASE sp%d", iSp, iSp);
      w_exec(g->w, zSql);
    }
  } else if (g->w) {
    snprintf(zSql, sizeof(zSql), "RELEASE sp%d", iSp);
    w_exec(g->w, zSql);
  }
  g->spDepth--;
}

static void small_op(Gen *g) {
  int r = rndn(g, 100);
  int bGrow = g->m->nLive < LIVE_MAX;
  if (g->m->nLive < 50 && r >= 50 && r < 80) r = 0;
  if (r < 28) {
    if (bGrow) op_insert(g, 1);
    else op_delete(g, 1);
  } else if (r < 36) {
    if (bGrow) op_insert(g, 2 + rndn(g, 7));
    else op_delete(g, 3);
  } else if (r < 52) {
    op_update(g);
  } else if (r < 58) {
    op_move(g);
  } else if (r < 72) {
    op_delete(g, 1);
  } else if (r < 77) {
    op_delete(g, 2 + rndn(g, 4));
  } else if (r < 84) {
    op_replace(g, 0);
  } else if (r < 88) {
    op_replace(g, 1);
  } else if (r < 92) {
    op_fail(g);
  } else if (r < 96) {
    i64 num = pick(g);
    if (num >= 0 && g->w) w_search_self(g->w, num, g->m->aDoc[num].vv);
  } else if (g->spDepth < 2) {
    sp_section(g);
  }
}

static int is_ivf(const Gen *g) { return g->m->iIndex == 2; }

static int choose_kind(Gen *g) {
  Model *m = g->m;
  int r = rndn(g, 100);
  if (r < 48) return K_SMALL;
  if (r < 62) return K_MEDIUM;
  if (r < 68) return m->nLive < LIVE_MAX - 1500 ? K_BIGINS : K_BIGDEL;
  if (r < 72) return m->nLive > LIVE_BIG_MIN ? K_BIGDEL : K_BIGINS;
  if (r < 75) return m->nLive > LIVE_BIG_MIN ? K_BIGUPD : K_BIGINS;
  if (r < 81) return K_OPTIMIZE;
  if (r < 85) return K_REBUILD;
  if (r < 88) return is_ivf(g) && m->nLive >= 40 ? K_TRAIN : K_OPTIMIZE;
  if (r < 93) return K_ROLLBACK;
  if (r < 96) return g->s->bMixed ? K_SWITCH : K_SMALL;
  return K_CHECK;
}

static void w_arm(Writer *w, i64 iTxn) {
  w->bArmedNow = 1;
  g_ioKillAt = g_nIo + (w->armK > 0 ? w->armK : -w->armK); /* armK < 0: right after step -armK */
  g_ioAfter = w->armK < 0;
  msg("A %lld", (long long)iTxn);
}

static void gen_txn(Gen *g, i64 iTxn) {
  Model *m = g->m;
  Writer *w = g->w;
  g->rng = mix3(g->seed, (u64)iTxn, 0x7478);
  g->nSp = 0;
  g->spDepth = 0;
  m->iTxn = iTxn;
  m->nUndo = 0;
  int kind = choose_kind(g);
  int bImmediate = rndn(g, 3) == 0;
  if (w) {
    g_curTxn = iTxn;
    msg("B %lld %d", (long long)iTxn, kind);
    w->ioAtB = g_nIo;
    if (w->armMode && !w->bArmDone && iTxn >= w->iStartTxn + w->armFrom && (w->armMode == 2 || is_heavy(kind))) {
      w->bArmDone = 1;
      if (w->armAt == 0) w_arm(w, iTxn);
      else w->bArmedNow = 1 + w->armAt; /* at COMMIT, or after it */
    }
    w_exec(w, bImmediate ? "BEGIN IMMEDIATE" : "BEGIN");
  }
  int n;
  switch (kind) {
    case K_SMALL:
    case K_CHECK:
    case K_MEDIUM:
      n = kind == K_MEDIUM ? 10 + rndn(g, 51) : 1 + rndn(g, 6);
      for (int i = 0; i < n; i++) small_op(g);
      if (kind == K_CHECK) cmd(g, "integrity-check");
      break;
    case K_BIGINS:
      big_insert(g, 1000 + rndn(g, 501));
      break;
    case K_BIGDEL:
      op_delete(g, 1050 + rndn(g, 251));
      break;
    case K_BIGUPD: {
      n = 1050 + rndn(g, 101);
      sqlite3_stmt *p = w ? w_prep(w, "UPDATE t SET embedding = ?1 WHERE id = ?2") : 0;
      for (int i = 0; i < n; i++) {
        i64 num = pick(g);
        m_update(m, num, 4);
        if (p) {
          bind_vector(p, 1, num, m->aDoc[num].vv);
          bind_id(p, 2, num);
          w_done(w, p, "big update");
        }
      }
      break;
    }
    case K_OPTIMIZE:
    case K_REBUILD:
    case K_TRAIN:
      n = rndn(g, 4);
      for (int i = 0; i < n; i++) small_op(g);
      cmd(g, kind == K_OPTIMIZE ? "optimize" : kind == K_REBUILD ? "rebuild" : "train");
      n = rndn(g, 3);
      for (int i = 0; i < n && kind != K_TRAIN; i++) small_op(g);
      break;
    case K_ROLLBACK:
      n = 1 + rndn(g, 20);
      for (int i = 0; i < n; i++) small_op(g);
      if (rndn(g, 4) == 0 && m->nLive < LIVE_MAX) big_insert(g, 1000 + rndn(g, 300));
      if (rndn(g, 3) == 0) cmd(g, rndn(g, 2) ? "optimize" : "rebuild");
      undo_to(m, 0);
      if (w) w_exec(w, "ROLLBACK; BEGIN");
      n = 1 + rndn(g, 3);
      for (int i = 0; i < n; i++) small_op(g);
      break;
    case K_SWITCH: {
      m->iIndex = (m->iIndex + 1) % 3;
      char zCmd[64];
      cmd(g, "search_params=");
      snprintf(zCmd, sizeof(zCmd), "index=%s", aMixed[m->iIndex].zIndex);
      cmd(g, zCmd);
      snprintf(zCmd, sizeof(zCmd), "search_params=%s", aMixed[m->iIndex].zParams);
      cmd(g, zCmd);
      break;
    }
  }
  if (w) {
    sqlite3_stmt *p = w_prep(w, "UPDATE progress SET txn = ?1");
    sqlite3_bind_int64(p, 1, iTxn);
    w_done(w, p, "progress");
    msg("C %lld %d", (long long)iTxn, kind);
    w->ioAtC = g_nIo;
    if (w->bArmedNow == 2) w_arm(w, iTxn);
    w_exec(w, "COMMIT");
    if (w->bArmedNow == 3) raise(SIGKILL); /* committed, but the parent was not told */
    msg("D %lld %lld %lld", (long long)iTxn, (long long)(g_nIo - w->ioAtC), (long long)(g_nIo - w->ioAtB));
    if (w->bArmedNow) {
      g_ioKillAt = -1;
      w->bArmedNow = 0;
      msg("X %lld", (long long)iTxn);
    }
  }
  m->nUndo = 0;
}

static const char *ext_path(void) {
  const char *z = getenv("VECSTORE_EXT");
  return z ? z : "build/vecstore";
}

static int load_ext(sqlite3 *db, char **pzErr) {
  sqlite3_enable_load_extension(db, 1);
  return sqlite3_load_extension(db, ext_path(), 0, pzErr);
}

/* --writer db model seed startTxn series armMode armFrom armAt armK smallCache */
static int writer_main(int argc, char **argv) {
  if (argc != 12) {
    fprintf(stderr, "crash writer: bad arguments\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 3;
  Writer w;
  memset(&w, 0, sizeof(w));
  Model m;
  Gen g;
  memset(&g, 0, sizeof(g));
  const char *zDb = argv[2];
  if (model_read(&m, argv[3])) w_fail(0, "cannot read the model file %s", argv[3]);
  g.seed = strtoull(argv[4], 0, 16);
  w.iStartTxn = strtoll(argv[5], 0, 10);
  g.s = &aSeries[atoi(argv[6])];
  w.armMode = atoi(argv[7]);
  w.armFrom = strtoll(argv[8], 0, 10);
  w.armAt = atoi(argv[9]);
  w.armK = strtoll(argv[10], 0, 10);
  int bSmallCache = atoi(argv[11]);
  g.m = &m;
  g.w = &w;

  shim_register();
  char *zErr = 0;
  if (sqlite3_open_v2(zDb, &w.db, SQLITE_OPEN_READWRITE, 0) != SQLITE_OK) w_fail(&w, "open %s", zDb);
  if (load_ext(w.db, &zErr) != SQLITE_OK) w_fail(&w, "load extension: %s", zErr ? zErr : "?");
  sqlite3_busy_timeout(w.db, 10000);
  w_exec(&w, g.s->bWal ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL");
  if (bSmallCache) w_exec(&w, "PRAGMA cache_size = 16"); /* dirty pages spill to the file mid-transaction */
  sqlite3_stmt *p = w_prep(&w, "SELECT txn FROM progress");
  if (sqlite3_step(p) != SQLITE_ROW || sqlite3_column_int64(p, 0) != w.iStartTxn - 1) {
    w_fail(&w, "progress.txn is not %lld", (long long)(w.iStartTxn - 1));
  }
  sqlite3_reset(p);
  msg("R");
  for (i64 i = w.iStartTxn; i < w.iStartTxn + 1000000; i++) gen_txn(&g, i);
  return 0;
}

/**************************************************************************************************
** The parent: spawning, killing and checking.
*/

typedef struct Stats {
  int nKill, nRandom, nTargetCommit, nTargetTxn, nIo, nIoFired;
  int nMidTxn, nMidCommit, nMidCommitHeavy, nBetween;
  int nInflightPresent, nInflightAbsent;
  i64 nTxn, nSearch;
  i64 nLiveMax;
  double tCheck;
} Stats;

static Stats g_total;

typedef struct Run {
  const Series *s;
  int iSeries;
  char zDir[512], zDb[600], zModel[600], zErr[600];
  u64 seed;
  u64 prng;          /* kill timing */
  Model m;
  i64 nCommitted;    /* transactions 0 .. nCommitted-1 are in the file */
  sqlite3 *pKeep;    /* the connection kept open across kills */
  double estCommit[K_COUNT], estTxn[K_COUNT];
  i64 ioCommit[K_COUNT], ioTxn[K_COUNT];
  Stats st;
  int bVerbose;
} Run;

static u64 prand(Run *r) {
  r->prng += 0x9E3779B97F4A7C15ull;
  return splitmix(r->prng);
}
static double prand_unit(Run *r) { return (double)(prand(r) >> 11) / 9007199254740992.0; }

static int fail_run(Run *r, const char *zFmt, ...) {
  va_list ap;
  fprintf(stderr, "crash %s FAILED (seed %llx, kill %d, committed txns %lld): ", r->s->zName,
          (unsigned long long)r->seed, r->st.nKill, (long long)r->nCommitted);
  va_start(ap, zFmt);
  vfprintf(stderr, zFmt, ap);
  va_end(ap);
  fprintf(stderr, "\n  files kept in %s (last-kill/ holds the database as the kill left it)\n", r->zDir);
  return 1;
}

static sqlite3 *open_db(Run *r, const char *zWho, int *pbFail) {
  sqlite3 *db = 0;
  char *zErr = 0;
  *pbFail = 0;
  if (sqlite3_open_v2(r->zDb, &db, SQLITE_OPEN_READWRITE, 0) != SQLITE_OK) {
    *pbFail = fail_run(r, "%s: the file does not open: %s", zWho, sqlite3_errmsg(db));
  } else if (load_ext(db, &zErr) != SQLITE_OK) {
    *pbFail = fail_run(r, "%s: load extension: %s", zWho, zErr ? zErr : "?");
  }
  sqlite3_free(zErr);
  if (*pbFail) {
    sqlite3_close(db);
    return 0;
  }
  sqlite3_busy_timeout(db, 10000);
  return db;
}

static int exec_ok(Run *r, sqlite3 *db, const char *zWho, const char *zSql) {
  char *zErr = 0;
  if (sqlite3_exec(db, zSql, 0, 0, &zErr) != SQLITE_OK) {
    int rc = fail_run(r, "%s: %s: %s", zWho, zSql, zErr ? zErr : sqlite3_errmsg(db));
    sqlite3_free(zErr);
    return rc;
  }
  return 0;
}

static int query_i64(sqlite3 *db, const char *zSql, i64 *pv) {
  sqlite3_stmt *p = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &p, 0);
  if (rc == SQLITE_OK) rc = sqlite3_step(p) == SQLITE_ROW ? SQLITE_OK : SQLITE_ERROR;
  if (rc == SQLITE_OK) *pv = sqlite3_column_int64(p, 0);
  sqlite3_finalize(p);
  return rc;
}

static const char *state_name(int s) { return s == DOC_ALIVE ? "live" : s == DOC_DELETED ? "deleted" : "never committed"; }

/* The table's rows equal the model's live documents exactly. */
static int check_rows(Run *r, sqlite3 *db, const char *zWho) {
  Model *m = &r->m;
  sqlite3_stmt *p = 0;
  if (sqlite3_prepare_v2(db, "SELECT rowid, id, content, metadata, embedding FROM t", -1, &p, 0) != SQLITE_OK) {
    return fail_run(r, "%s: prepare scan: %s", zWho, sqlite3_errmsg(db));
  }
  unsigned char *aSeen = calloc((size_t)m->nextNum + 1, 1);
  char buf[2048];
  i64 nRow = 0;
  int rc, bFail = 0;
  while (!bFail && (rc = sqlite3_step(p)) == SQLITE_ROW) {
    nRow++;
    i64 iRowid = sqlite3_column_int64(p, 0);
    const char *zId = (const char *)sqlite3_column_text(p, 1);
    char *zEnd = 0;
    long long num = zId && zId[0] == 'd' ? strtoll(zId + 1, &zEnd, 10) : -1;
    if (num < 0 || *zEnd != 0 || num >= m->nextNum) {
      bFail = fail_run(r, "%s: row '%s' (rowid %lld) is not from a committed transaction", zWho, zId ? zId : "NULL",
                       (long long)iRowid);
      break;
    }
    const Doc *d = &m->aDoc[num];
    if (d->state != DOC_ALIVE) {
      bFail = fail_run(r, "%s: row %s is present but should be %s (last changed by txn %lld)", zWho, zId,
                       state_name(d->state), (long long)d->lastTxn);
      break;
    }
    if (aSeen[num]++) {
      bFail = fail_run(r, "%s: row %s appears twice", zWho, zId);
      break;
    }
    if (d->hasRowid ? iRowid != d->rowid : iRowid <= SENTINEL_ROWID) {
      bFail = fail_run(r, "%s: row %s has rowid %lld, expected %lld%s", zWho, zId, (long long)iRowid,
                       (long long)d->rowid, d->hasRowid ? "" : " (automatic: above the sentinel)");
      break;
    }
    int n = make_content(num, d->vc, buf, sizeof(buf));
    const char *zC = (const char *)sqlite3_column_text(p, 2);
    if (n < 0 ? sqlite3_column_type(p, 2) != SQLITE_NULL
              : (zC == 0 || sqlite3_column_bytes(p, 2) != n || memcmp(zC, buf, (size_t)n) != 0)) {
      bFail = fail_run(r, "%s: row %s: content differs from version %u (last changed by txn %lld)", zWho, zId,
                       d->vc, (long long)d->lastTxn);
      break;
    }
    n = make_metadata(num, d->vm, buf, sizeof(buf));
    const char *zM = (const char *)sqlite3_column_text(p, 3);
    if (zM == 0 || strcmp(zM, buf) != 0) {
      bFail = fail_run(r, "%s: row %s: metadata %s, expected %s (txn %lld)", zWho, zId, zM ? zM : "NULL", buf,
                       (long long)d->lastTxn);
      break;
    }
    float a[DIM];
    make_vector(num, d->vv, a);
    if (sqlite3_column_bytes(p, 4) != (int)sizeof(a) || memcmp(sqlite3_column_blob(p, 4), a, sizeof(a)) != 0) {
      bFail = fail_run(r, "%s: row %s: embedding differs from version %u (txn %lld)", zWho, zId, d->vv,
                       (long long)d->lastTxn);
      break;
    }
  }
  if (!bFail && rc != SQLITE_DONE) bFail = fail_run(r, "%s: scan failed: %s", zWho, sqlite3_errmsg(db));
  sqlite3_finalize(p);
  for (i64 i = 0; !bFail && i < m->nLive; i++) {
    i64 num = m->aLive[i];
    if (!aSeen[num]) {
      bFail = fail_run(r, "%s: committed row d%lld (last changed by txn %lld) is missing", zWho, (long long)num,
                       (long long)m->aDoc[num].lastTxn);
    }
  }
  free(aSeen);
  i64 nCount = -1;
  if (!bFail && (query_i64(db, "SELECT count(*) FROM t", &nCount) != SQLITE_OK || nCount != m->nLive)) {
    bFail = fail_run(r, "%s: count(*) is %lld, expected %lld (scan saw %lld)", zWho, (long long)nCount,
                     (long long)m->nLive, (long long)nRow);
  }
  return bFail;
}

/* A search with vector (num, vv): with bSelf the first row must be d<num> at distance 0; otherwise the first row
** must be a live row reported at its true distance, which is not 0. */
static int search_one(Run *r, sqlite3 *db, sqlite3_stmt *p, const char *zWho, i64 num, u32 vv, int bSelf,
                      const char *zWhat) {
  float q[DIM], v[DIM];
  make_vector(num, vv, q);
  sqlite3_bind_blob(p, 1, q, (int)sizeof(q), SQLITE_STATIC);
  int rc = sqlite3_step(p);
  r->st.nSearch++;
  int bFail = 0;
  if (rc != SQLITE_ROW) {
    bFail = fail_run(r, "%s: search with the vector of %s d%lld v%u returned no row (%s)", zWho, zWhat,
                     (long long)num, vv, rc == SQLITE_DONE ? "empty" : sqlite3_errmsg(db));
  } else {
    const char *zId = (const char *)sqlite3_column_text(p, 0);
    double rDist = sqlite3_column_double(p, 1);
    long long got = zId && zId[0] == 'd' ? strtoll(zId + 1, 0, 10) : -1;
    if (got < 0 || got >= r->m.nextNum || r->m.aDoc[got].state != DOC_ALIVE) {
      bFail = fail_run(r, "%s: search with the vector of %s d%lld v%u returned row %s, which should not exist", zWho,
                       zWhat, (long long)num, vv, zId ? zId : "NULL");
    } else {
      make_vector(got, r->m.aDoc[got].vv, v);
      double rRef = l2(q, v);
      if (bSelf && (got != num || rDist > 1e-6)) {
        bFail = fail_run(r, "%s: search with the vector of %s d%lld (txn %lld) returned %s at %g first", zWho, zWhat,
                         (long long)num, (long long)r->m.aDoc[num].lastTxn, zId, rDist);
      } else if (fabs(rDist - rRef) > 1e-4 * (1 + rRef) || (!bSelf && rRef <= 0)) {
        bFail = fail_run(r, "%s: search with the vector of %s d%lld v%u returned %s at distance %g, but its stored "
                         "vector is at %g: the index holds a vector that is not committed", zWho, zWhat,
                         (long long)num, vv, zId, rDist, rRef);
      }
    }
  }
  sqlite3_reset(p);
  return bFail;
}

/* Searches: live rows (all, or nSample of them) find themselves; vectors that must not be indexed do not. */
static int check_search(Run *r, sqlite3 *db, const char *zWho, i64 nSample) {
  Model *m = &r->m;
  sqlite3_stmt *p = 0;
  if (sqlite3_prepare_v2(db, "SELECT id, distance FROM t WHERE embedding MATCH ?1 AND k = 1", -1, &p, 0)) {
    return fail_run(r, "%s: prepare search: %s", zWho, sqlite3_errmsg(db));
  }
  int bFail = 0;
  int bAll = nSample <= 0 || nSample >= m->nLive;
  i64 n = bAll ? m->nLive : nSample;
  for (i64 i = 0; !bFail && i < n; i++) {
    i64 num = bAll ? m->aLive[i] : m->aLive[prand(r) % (u64)m->nLive];
    bFail = search_one(r, db, p, zWho, num, m->aDoc[num].vv, 1, "committed row");
  }
  if (m->nLive > 0) {
    /* Rows of an uncommitted in-flight transaction would use the next numbers. */
    for (i64 num = m->nextNum; !bFail && num < m->nextNum + 16; num++) {
      bFail = search_one(r, db, p, zWho, num, 1, 0, "uncommitted row");
    }
    for (int i = 0; !bFail && i < 150 && m->nextNum > 1; i++) {
      i64 num = 1 + (i64)(prand(r) % (u64)(m->nextNum - 1));
      const Doc *d = &m->aDoc[num];
      if (d->state == DOC_ALIVE) {
        /* A rolled-back or uncommitted update would have used version vv+1; older versions are replaced. */
        bFail = search_one(r, db, p, zWho, num, d->vv + 1, 0, "uncommitted version of");
        if (!bFail && d->vv > 1) bFail = search_one(r, db, p, zWho, num, d->vv - 1, 0, "old version of");
      } else {
        bFail = search_one(r, db, p, zWho, num, d->vv ? d->vv : 1, 0, state_name(d->state));
      }
    }
  }
  sqlite3_finalize(p);
  return bFail;
}

/* Full check of one connection: SQLite's own integrity check, vecstore's, rows and searches. */
static int check_db(Run *r, sqlite3 *db, const char *zWho, i64 nSample) {
  sqlite3_stmt *p = 0;
  int bFail = 0;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &p, 0) != SQLITE_OK || sqlite3_step(p) != SQLITE_ROW ||
      strcmp((const char *)sqlite3_column_text(p, 0), "ok") != 0) {
    bFail = fail_run(r, "%s: PRAGMA integrity_check: %s", zWho,
                     p && sqlite3_column_text(p, 0) ? (const char *)sqlite3_column_text(p, 0) : sqlite3_errmsg(db));
  }
  sqlite3_finalize(p);
  if (!bFail) bFail = exec_ok(r, db, zWho, "INSERT INTO t(t) VALUES ('integrity-check')");
  if (!bFail) bFail = check_rows(r, db, zWho);
  if (!bFail) bFail = check_search(r, db, zWho, nSample);
  return bFail;
}

static int copy_file(const char *zFrom, const char *zTo) {
  int fi = open(zFrom, O_RDONLY);
  if (fi < 0) return errno == ENOENT ? 0 : 1;
  int fo = open(zTo, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  char buf[1 << 16];
  ssize_t n;
  int rc = fo < 0;
  while (!rc && (n = read(fi, buf, sizeof(buf))) > 0) {
    if (write(fo, buf, (size_t)n) != n) rc = 1;
  }
  close(fi);
  if (fo >= 0) close(fo);
  return rc;
}

/* Keeps the files as the kill left them, for diagnosis. */
static void snapshot_files(Run *r) {
  static const char *const azSuffix[] = {"", "-wal", "-journal"};
  char zDir[700], zFrom[700], zTo[800];
  snprintf(zDir, sizeof(zDir), "%s/last-kill", r->zDir);
  mkdir(zDir, 0755);
  for (int i = 0; i < 3; i++) {
    snprintf(zTo, sizeof(zTo), "%s/t.db%s", zDir, azSuffix[i]);
    unlink(zTo);
    snprintf(zFrom, sizeof(zFrom), "%s%s", r->zDb, azSuffix[i]);
    copy_file(zFrom, zTo);
  }
}

typedef struct Msgs {
  i64 lastB, lastC, lastD;
  int kindB, kindC;
  double tB, tC;
  int bReady, bArmed, bDisarmed;
  char zErr[600];
  char buf[8192];
  int nBuf;
} Msgs;

enum { S_RANDOM, S_TARGET_COMMIT, S_TARGET_TXN, S_IO };

static void on_line(Run *r, Msgs *ms, const char *z, double t) {
  long long i = 0, a = 0, b = 0;
  int k = 0;
  if (sscanf(z, "B %lld %d", &i, &k) == 2) {
    ms->lastB = i, ms->kindB = k, ms->tB = t;
  } else if (sscanf(z, "C %lld %d", &i, &k) == 2) {
    ms->lastC = i, ms->kindC = k, ms->tC = t;
  } else if (sscanf(z, "D %lld %lld %lld", &i, &a, &b) == 3) {
    ms->lastD = i;
    r->st.nTxn++;
    if (ms->lastC == i) {
      int kd = ms->kindC;
      r->estCommit[kd] = 0.7 * r->estCommit[kd] + 0.3 * (t - ms->tC);
      if (a > r->ioCommit[kd]) r->ioCommit[kd] = a;
      if (ms->lastB == i) {
        r->estTxn[kd] = 0.7 * r->estTxn[kd] + 0.3 * (t - ms->tB);
        if (b > r->ioTxn[kd]) r->ioTxn[kd] = b;
      }
    }
  } else if (z[0] == 'A') {
    ms->bArmed = 1;
  } else if (z[0] == 'X') {
    ms->bDisarmed = 1;
  } else if (z[0] == 'R') {
    ms->bReady = 1;
  } else if (z[0] == 'E') {
    snprintf(ms->zErr, sizeof(ms->zErr), "%s", z + 2);
  }
}

/* Reads what the writer sent, waiting up to timeoutMs; returns 1 at end of file. */
static int pump(Run *r, Msgs *ms, int fd, int timeoutMs) {
  struct pollfd pfd = {fd, POLLIN, 0};
  if (poll(&pfd, 1, timeoutMs) <= 0) return 0;
  for (;;) {
    ssize_t n = read(fd, ms->buf + ms->nBuf, sizeof(ms->buf) - 1 - (size_t)ms->nBuf);
    if (n == 0) return 1;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
    ms->nBuf += (int)n;
    ms->buf[ms->nBuf] = 0;
    char *zLine = ms->buf, *zNl;
    double t = now_s();
    while ((zNl = strchr(zLine, '\n')) != 0) {
      *zNl = 0;
      on_line(r, ms, zLine, t);
      zLine = zNl + 1;
    }
    ms->nBuf = (int)(ms->buf + ms->nBuf - zLine);
    memmove(ms->buf, zLine, (size_t)ms->nBuf);
    if (ms->nBuf >= (int)sizeof(ms->buf) - 1) ms->nBuf = 0;
  }
}

static void print_file_tail(const char *zPath) {
  FILE *f = fopen(zPath, "r");
  if (f == 0) return;
  char buf[4096];
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, n > 3000 ? n - 3000 : 0, SEEK_SET);
  size_t k = fread(buf, 1, sizeof(buf) - 1, f);
  buf[k] = 0;
  fclose(f);
  if (k) fprintf(stderr, "  writer stderr: %s\n", buf);
}

static void sleep_until(double t) {
  double d = t - now_s();
  if (d <= 0) return;
  struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
  nanosleep(&ts, 0);
}

/* One kill: spawn a writer from the committed state, kill it, check the file. Returns 1 on failure. */
static int one_kill(Run *r) {
  Model *m = &r->m;
  if (model_write(m, r->zModel)) return fail_run(r, "cannot write %s", r->zModel);
  int eStrategy, armMode = 0, armAt = 0;
  i64 armFrom = 0, armK = 0;
  u64 x = prand(r) % 100;
  eStrategy = x < 30 ? S_RANDOM : x < 50 ? S_TARGET_COMMIT : x < 62 ? S_TARGET_TXN : S_IO;
  if (eStrategy == S_IO) {
    armMode = prand(r) % 2 ? 1 : 2;
    armFrom = (i64)(prand(r) % 6);
    u64 y = prand(r) % 10;
    armAt = y < 3 ? 0 : y < 9 ? 1 : 2;
    /* Spread K over the I/O steps seen for such commits (heavy ones from their BEGIN on); a quarter of the
    ** time near the end, where the commit point is, killing right after the step. */
    i64 nMax = 8;
    for (int k = 0; k < K_COUNT; k++) {
      if (armMode == 1 && !is_heavy(k)) continue;
      i64 v = armAt ? r->ioCommit[k] : r->ioTxn[k];
      if (v > nMax) nMax = v;
    }
    if (armMode == 2 && prand(r) % 2) nMax = nMax < 24 ? nMax : 24; /* most plain commits are short */
    armK = 1 + (i64)(prand(r) % (u64)nMax);
    if (prand(r) % 4 == 0) armK = -(nMax - (i64)(prand(r) % (u64)(nMax < 8 ? nMax : 8)));
  }
  int bSmallCache = prand(r) % 3 == 0;
  char aArg[10][64];
  snprintf(aArg[0], 64, "%llx", (unsigned long long)r->seed);
  snprintf(aArg[1], 64, "%lld", (long long)r->nCommitted);
  snprintf(aArg[2], 64, "%d", r->iSeries);
  snprintf(aArg[3], 64, "%d", armMode);
  snprintf(aArg[4], 64, "%lld", (long long)armFrom);
  snprintf(aArg[5], 64, "%d", armAt);
  snprintf(aArg[6], 64, "%lld", (long long)armK);
  snprintf(aArg[7], 64, "%d", bSmallCache);
  char *azArgv[] = {"crash_harness", "--writer", r->zDb, r->zModel, aArg[0], aArg[1], aArg[2], aArg[3], aArg[4],
                    aArg[5],        aArg[6],    aArg[7], 0};

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return fail_run(r, "pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) return fail_run(r, "fork: %s", strerror(errno));
  if (pid == 0) {
    if (fds[1] == MSG_FD) fcntl(MSG_FD, F_SETFD, 0);
    else dup2(fds[1], MSG_FD);
    int fe = open(r->zErr, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fe >= 0) dup2(fe, 2);
    execv("/proc/self/exe", azArgv);
    _exit(127);
  }
  close(fds[1]);
  int fd = fds[0];
  fcntl(fd, F_SETFL, O_NONBLOCK);

  Msgs ms;
  memset(&ms, 0, sizeof(ms));
  ms.lastB = ms.lastC = ms.lastD = r->nCommitted - 1;
  double t0 = now_s(), tKill = -1;
  if (eStrategy == S_RANDOM) {
    /* Log-uniform between 0.5 ms and 600 ms after the writer is ready. */
    tKill = -2;
  }
  int status = 0, bExited = 0, bEof = 0;
  i64 seenB = -1, seenC = -1;
  while (!bExited) {
    double t = now_s();
    if (tKill >= 0 && t >= tKill) break;
    if (t - t0 > 12) break; /* a writer that got stuck: kill it anyway */
    int wait = 20;
    if (tKill >= 0) {
      double d = tKill - t;
      if (d < 0.002) {
        sleep_until(tKill);
        break;
      }
      if (d * 1000 < wait) wait = (int)(d * 1000) - 1;
    }
    if (!bEof) bEof = pump(r, &ms, fd, wait);
    else usleep(1000);
    t = now_s();
    if (tKill == -2 && ms.bReady) tKill = t + 0.0005 * exp(prand_unit(r) * log(1200.0));
    if (eStrategy == S_TARGET_COMMIT && tKill < 0 && ms.lastC > ms.lastD && ms.lastC != seenC) {
      seenC = ms.lastC;
      if (is_heavy(ms.kindC)) tKill = ms.tC + prand_unit(r) * 1.3 * r->estCommit[ms.kindC];
    }
    if (eStrategy == S_TARGET_TXN && tKill < 0 && ms.lastB > ms.lastD && ms.lastB != seenB) {
      seenB = ms.lastB;
      if (is_heavy(ms.kindB)) tKill = ms.tB + prand_unit(r) * 1.2 * r->estTxn[ms.kindB];
    }
    if (eStrategy == S_IO && tKill < 0 && ms.bDisarmed) tKill = t + prand_unit(r) * 0.02;
    if ((eStrategy == S_TARGET_COMMIT || eStrategy == S_TARGET_TXN) && tKill < 0 && t - t0 > 6) tKill = t;
    if (waitpid(pid, &status, WNOHANG) == pid) bExited = 1;
  }
  int bKilledByUs = 0;
  if (!bExited) {
    kill(pid, SIGKILL);
    bKilledByUs = 1;
    waitpid(pid, &status, 0);
  }
  while (!bEof) bEof = pump(r, &ms, fd, 1000);
  close(fd);

  if (WIFEXITED(status) || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
    int bFail = fail_run(r, "the writer %s %d%s%s", WIFEXITED(status) ? "exited with status" : "died of signal",
                         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), ms.zErr[0] ? ": " : "",
                         ms.zErr);
    print_file_tail(r->zErr);
    return bFail;
  }
  r->st.nKill++;
  if (!bKilledByUs) r->st.nIoFired++;
  if (eStrategy == S_RANDOM) r->st.nRandom++;
  else if (eStrategy == S_TARGET_COMMIT) r->st.nTargetCommit++;
  else if (eStrategy == S_TARGET_TXN) r->st.nTargetTxn++;
  else r->st.nIo++;
  i64 lo = ms.lastD, hi = ms.lastC > ms.lastD ? ms.lastC : ms.lastD;
  const char *zWhere;
  if (ms.lastC > ms.lastD) {
    r->st.nMidCommit++;
    if (is_heavy(ms.kindC)) r->st.nMidCommitHeavy++;
    zWhere = "mid-commit";
  } else if (ms.lastB > ms.lastD) {
    r->st.nMidTxn++;
    zWhere = "mid-transaction";
  } else {
    r->st.nBetween++;
    zWhere = "between transactions";
  }
  snapshot_files(r);

  /* The first reader (recovering a hot journal or the WAL) is the fresh connection, or a third of the time the
  ** one kept open with its cached index; it reads which transaction is the last one in the file. */
  double tc = now_s();
  int bFail = 0;
  int bKeptFirst = prand(r) % 3 == 0;
  sqlite3 *db = open_db(r, "fresh connection", &bFail);
  if (bFail) return 1;
  i64 t = -2;
  if (query_i64(bKeptFirst ? r->pKeep : db, "SELECT txn FROM progress", &t) != SQLITE_OK) {
    bFail = fail_run(r, "%s connection: cannot read progress: %s", bKeptFirst ? "kept" : "fresh",
                     sqlite3_errmsg(bKeptFirst ? r->pKeep : db));
    sqlite3_close(db);
    return bFail;
  }
  if (t < lo || t > hi) {
    sqlite3_close(db);
    return fail_run(r, "killed %s (%s): the file ends at transaction %lld, but %s", zWhere,
                    eStrategy == S_IO ? "by I/O count" : "by timer", (long long)t,
                    t < lo ? "a later one had committed (COMMIT returned): a committed transaction was lost"
                           : "it was never committed: an uncommitted transaction is visible");
  }
  if (hi > lo) {
    if (t == hi) r->st.nInflightPresent++;
    else r->st.nInflightAbsent++;
  }
  for (i64 i = r->nCommitted; i <= t; i++) {
    Gen g;
    memset(&g, 0, sizeof(g));
    g.m = m;
    g.s = r->s;
    g.seed = r->seed;
    gen_txn(&g, i);
  }
  r->nCommitted = t + 1;
  if (m->nLive > r->st.nLiveMax) r->st.nLiveMax = m->nLive;
  char zWho[200];
  snprintf(zWho, sizeof(zWho), "fresh connection after a kill %s of txn %lld (%s)", zWhere,
           (long long)(ms.lastC > ms.lastD ? ms.lastC : ms.lastB), azKind[ms.lastC > ms.lastD ? ms.kindC : ms.kindB]);
  char zWhoKept[200];
  snprintf(zWhoKept, sizeof(zWhoKept), "connection kept open%s, after a kill %s", bKeptFirst ? " (first reader)" : "",
           zWhere);
  if (bKeptFirst) bFail = check_db(r, r->pKeep, zWhoKept, 300);
  if (!bFail) bFail = check_db(r, db, zWho, 0);
  sqlite3_close(db);
  if (!bFail && !bKeptFirst) bFail = check_db(r, r->pKeep, zWhoKept, 300);
  r->st.tCheck += now_s() - tc;
  if (r->bVerbose) {
    fprintf(stderr, "  %s kill %d: %s%s, %s, txn %lld..%lld -> %lld, rows %lld\n", r->s->zName, r->st.nKill,
            eStrategy == S_IO ? "io" : eStrategy == S_RANDOM ? "random" : "targeted", aArg[6], zWhere, (long long)lo,
            (long long)hi, (long long)t, (long long)m->nLive);
  }
  return bFail;
}

static void remove_tree(const char *zDir) {
  DIR *d = opendir(zDir);
  if (d == 0) return;
  struct dirent *e;
  char z[1024];
  while ((e = readdir(d)) != 0) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(z, sizeof(z), "%s/%s", zDir, e->d_name);
    struct stat st;
    if (lstat(z, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(z);
    else unlink(z);
  }
  closedir(d);
  rmdir(zDir);
}

/* Creates the series' file: the table (with the sentinel row d0) and the progress table. */
static int create_db(Run *r) {
  int bFail = 0;
  char zSql[400];
  sqlite3 *db = 0;
  if (sqlite3_open(r->zDb, &db) != SQLITE_OK) return fail_run(r, "create %s: %s", r->zDb, sqlite3_errmsg(db));
  char *zErr = 0;
  if (load_ext(db, &zErr) != SQLITE_OK) {
    bFail = fail_run(r, "load extension %s: %s", ext_path(), zErr ? zErr : "?");
    sqlite3_close(db);
    return bFail;
  }
  const IndexKind *ik = &aMixed[r->s->iIndex];
  snprintf(zSql, sizeof(zSql),
           "PRAGMA journal_mode = %s; CREATE VIRTUAL TABLE t USING vecstore(dim = %d, index = '%s'%s%s%s); "
           "CREATE TABLE progress(txn INTEGER NOT NULL); INSERT INTO progress VALUES (-1);",
           r->s->bWal ? "WAL" : "DELETE", DIM, ik->zIndex, ik->zParams[0] ? ", search_params = '" : "", ik->zParams,
           ik->zParams[0] ? "'" : "");
  bFail = exec_ok(r, db, "create", zSql);
  Model *m = &r->m;
  m->iIndex = r->s->iIndex;
  m->iTxn = -1;
  i64 num = m_insert(m, 1);
  Doc d = m->aDoc[num];
  d.rowid = SENTINEL_ROWID;
  doc_set(m, num, d);
  m->nUndo = 0;
  sqlite3_stmt *p = 0;
  if (!bFail && sqlite3_prepare_v2(db, insert_sql(1, 0), -1, &p, 0) == SQLITE_OK) {
    bind_doc(p, 1, num, &m->aDoc[num]);
    if (sqlite3_step(p) != SQLITE_DONE) bFail = fail_run(r, "insert d0: %s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(p);
  sqlite3_close(db);
  return bFail;
}

/* Regression (found by the mixed series): 'search_params=' for the new type right after 'index=' in the same
** transaction, and ROLLBACK TO across it, failed with "could not set parameter efSearch": the parameters were
** applied to the cached index, which keeps the old type until the commit rebuilds it. The failed statement had
** already written its configuration row, so it was committed anyway. */
static int regression_checks(const char *zDir) {
  static const char *const azStep[] = {
      "CREATE VIRTUAL TABLE r USING vecstore(dim = 4)",
      "INSERT INTO r(id, embedding) VALUES ('a', '[1,2,3,4]'), ('b', '[0,0,0,1]')",
      "BEGIN",
      "INSERT INTO r(r) VALUES ('index=HNSW16')",
      "INSERT INTO r(r) VALUES ('search_params=efSearch=128')",
      "SAVEPOINT s",
      "INSERT INTO r(r) VALUES ('search_params=efSearch=64')",
      "ROLLBACK TO s",
      "INSERT INTO r(r) VALUES ('search_params=')",
      "INSERT INTO r(r) VALUES ('index=IVF1,Flat')",
      "INSERT INTO r(r) VALUES ('search_params=nprobe=1')",
      "COMMIT",
      "INSERT INTO r(r) VALUES ('integrity-check')",
      0};
  char zDb[600];
  snprintf(zDb, sizeof(zDb), "%s/regression.db", zDir);
  unlink(zDb);
  sqlite3 *db = 0;
  char *zErr = 0;
  int bFail = sqlite3_open(zDb, &db) != SQLITE_OK || load_ext(db, &zErr) != SQLITE_OK;
  for (int i = 0; !bFail && azStep[i]; i++) {
    if (sqlite3_exec(db, azStep[i], 0, 0, &zErr) != SQLITE_OK) {
      fprintf(stderr, "crash regression FAILED: %s: %s\n", azStep[i], zErr ? zErr : sqlite3_errmsg(db));
      bFail = 1;
    }
  }
  i64 nOk = 0;
  if (!bFail && (query_i64(db, "SELECT count(*) FROM r_config WHERE (key = 'index' AND value = 'IVF1,Flat') "
                               "OR (key = 'search_params' AND value = 'nprobe=1')", &nOk) != SQLITE_OK || nOk != 2)) {
    fprintf(stderr, "crash regression FAILED: r_config does not hold index=IVF1,Flat, search_params=nprobe=1\n");
    bFail = 1;
  }
  sqlite3_free(zErr);
  sqlite3_close(db);
  if (!bFail) unlink(zDb);
  return bFail;
}

static int run_series(Run *r, double tBudget, int nIterations) {
  double t0 = now_s();
  if (create_db(r)) return 1;
  for (int k = 0; k < K_COUNT; k++) {
    r->estCommit[k] = 0.02;
    r->estTxn[k] = 0.05;
    r->ioCommit[k] = 8;
    r->ioTxn[k] = 16;
  }
  int bFail = 0;
  r->pKeep = open_db(r, "kept connection", &bFail);
  if (bFail) return 1;
  if (exec_ok(r, r->pKeep, "kept connection", "INSERT INTO t(t) VALUES ('integrity-check')")) return 1;
  while (!bFail) {
    double t = now_s() - t0;
    if (nIterations > 0 && r->st.nKill >= nIterations) break;
    if (tBudget > 0 && t >= tBudget && r->st.nKill >= 4) break;
    bFail = one_kill(r);
  }
  sqlite3_close(r->pKeep);
  r->pKeep = 0;
  i64 nGen = 0, nLog = 0;
  if (!bFail) {
    sqlite3 *db = open_db(r, "final", &bFail);
    if (db) {
      query_i64(db, "SELECT value FROM t_config WHERE key = 'snapshot_gen'", &nGen);
      query_i64(db, "SELECT count(*) FROM t_log", &nLog);
      sqlite3_close(db);
    }
  }
  Stats *s = &r->st;
  printf("crash %-14s %s: %d kills (%d mid-commit, %d of them heavy; %d mid-txn; %d between; %d placed by I/O "
         "count), in-flight txn kept %d / rolled back %d, %lld txns, snapshot gen %lld, <= %lld rows, %.1f s\n",
         r->s->zName, bFail ? "FAILED" : "ok", s->nKill, s->nMidCommit, s->nMidCommitHeavy, s->nMidTxn, s->nBetween,
         s->nIoFired, s->nInflightPresent, s->nInflightAbsent, (long long)r->nCommitted, (long long)nGen,
         (long long)s->nLiveMax, now_s() - t0);
  if (r->bVerbose) {
    printf("  strategies: %d random delay, %d at heavy commits, %d in heavy txns, %d armed by I/O count; %lld "
           "searches; checks %.1f s; log rows at the end %lld\n", s->nRandom, s->nTargetCommit, s->nTargetTxn,
           s->nIo, (long long)s->nSearch, s->tCheck, (long long)nLog);
  }
  g_total.nKill += s->nKill;
  g_total.nMidCommit += s->nMidCommit;
  g_total.nMidCommitHeavy += s->nMidCommitHeavy;
  g_total.nMidTxn += s->nMidTxn;
  g_total.nIoFired += s->nIoFired;
  g_total.nInflightPresent += s->nInflightPresent;
  g_total.nInflightAbsent += s->nInflightAbsent;
  g_total.nTxn += r->nCommitted;
  fflush(stdout);
  return bFail;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--writer") == 0) return writer_main(argc, argv);
  const char *z;
  double tTotal = (z = getenv("CRASH_SECONDS")) ? atof(z) : 0;
  int nIterations = (z = getenv("CRASH_ITERATIONS")) ? atoi(z) : 0;
  if (tTotal <= 0 && nIterations <= 0) tTotal = 48;
  u64 seed = (z = getenv("CRASH_SEED")) ? strtoull(z, 0, 16) : (u64)time(0) ^ ((u64)getpid() << 20);
  const char *zOnly = getenv("CRASH_SERIES");
  int bKeep = (z = getenv("CRASH_KEEP")) && atoi(z);
  int bVerbose = (z = getenv("CRASH_VERBOSE")) && atoi(z);
  char zRoot[400];
  if ((z = getenv("CRASH_DIR")) != 0) {
    snprintf(zRoot, sizeof(zRoot), "%s", z);
  } else {
    mkdir("build", 0755);
    mkdir("build/crash", 0755);
    snprintf(zRoot, sizeof(zRoot), "build/crash/run-%d", (int)getpid());
  }
  mkdir(zRoot, 0755);
  int nSeries = 0;
  for (int i = 0; i < N_SERIES; i++) {
    if (zOnly == 0 || strstr(zOnly, aSeries[i].zName)) nSeries++;
  }
  if (nSeries == 0) {
    fprintf(stderr, "crash: CRASH_SERIES matches no series\n");
    return 2;
  }
  printf("crash: seed %llx, %s, %d series, files in %s\n", (unsigned long long)seed,
         nIterations > 0 ? "fixed kill count" : "time budget", nSeries, zRoot);
  fflush(stdout);
  double tStart = now_s();
  int nFail = regression_checks(zRoot);
  for (int i = 0; i < N_SERIES; i++) {
    if (zOnly && strstr(zOnly, aSeries[i].zName) == 0) continue;
    Run *r = calloc(1, sizeof(Run));
    r->s = &aSeries[i];
    r->iSeries = i;
    r->seed = mix3(seed, (u64)i, 0x5e7);
    r->prng = mix3(seed, (u64)i, 0x4b1);
    r->bVerbose = bVerbose;
    snprintf(r->zDir, sizeof(r->zDir), "%s/%s", zRoot, r->s->zName);
    mkdir(r->zDir, 0755);
    snprintf(r->zDb, sizeof(r->zDb), "%s/t.db", r->zDir);
    snprintf(r->zModel, sizeof(r->zModel), "%s/model.bin", r->zDir);
    snprintf(r->zErr, sizeof(r->zErr), "%s/writer.err", r->zDir);
    int bFail = run_series(r, tTotal > 0 ? tTotal / nSeries : 0, nIterations);
    nFail += bFail;
    if (!bFail && !bKeep) remove_tree(r->zDir);
    model_free(&r->m);
    free(r);
  }
  if (nFail == 0 && !bKeep) rmdir(zRoot);
  printf("crash: %s: %d kills (%d mid-commit, %d of them heavy; %d mid-txn; %d placed by I/O count), in-flight "
         "kept %d / rolled back %d, %lld txns checked, %.0f s\n", nFail ? "FAILED" : "ok", g_total.nKill,
         g_total.nMidCommit, g_total.nMidCommitHeavy, g_total.nMidTxn, g_total.nIoFired, g_total.nInflightPresent,
         g_total.nInflightAbsent, (long long)g_total.nTxn, now_s() - tStart);
  return nFail ? 1 : 0;
}
