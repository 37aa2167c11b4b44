/*
** sync.c: the per-connection Faiss index as a cache of the shadow tables.
**
** Reading: before a statement uses the index, SQLITE_FCNTL_DATA_VERSION tells whether the file changed; if
** so the snapshot generation and the last log sequence are read: a new generation reloads the snapshot, new
** log entries are replayed (net effect per rowid). Writing: xUpdate records vector changes in the pending set
** (pending.c); xSync applies them to the index and persists them as log entries, or writes a whole new
** snapshot when the log has outgrown its threshold, when commands asked for it, or when the index was trained
** or compacted. A one-row commit therefore writes O(1) rows; snapshots are amortised over many changes.
*/
#include "vecstore_int.h"

/* A snapshot replaces the log once the log holds more than max(VS_LOG_MIN, live/VS_LOG_FRACTION) entries. */
#define VS_LOG_MIN 1000
#define VS_LOG_FRACTION 32
/* Tombstones are compacted (rebuild) at commit past max(VS_TOMB_MIN, labels/VS_TOMB_FRACTION). */
#define VS_TOMB_MIN 1000
#define VS_TOMB_FRACTION 4
#define VS_ADD_BATCH 65536

typedef struct VecBatch {
  VsTable *pTab;
  i64 n, nAlloc;
  i64 *aRowid;
  float *aVec;
} VecBatch;

static void batch_free(VecBatch *b) {
  sqlite3_free(b->aRowid);
  sqlite3_free(b->aVec);
  memset(b, 0, sizeof(*b));
}

/* Room for nWant vectors in all. SQLITE_OK or SQLITE_NOMEM (the batch as it was). */
static int batch_reserve(VecBatch *b, i64 nWant) {
  if (nWant <= b->nAlloc) return SQLITE_OK;
  int nDim = b->pTab->pCfg->nDim;
  i64 *aR = sqlite3_realloc64(b->aRowid, (sqlite3_uint64)nWant * sizeof(i64));
  if (aR == 0) return SQLITE_NOMEM;
  b->aRowid = aR;
  float *aV = sqlite3_realloc64(b->aVec, (sqlite3_uint64)nWant * nDim * sizeof(float));
  if (aV == 0) return SQLITE_NOMEM;
  b->aVec = aV;
  b->nAlloc = nWant;
  return SQLITE_OK;
}

static int batch_push(VecBatch *b, i64 iRowid, const float *aVec) {
  int nDim = b->pTab->pCfg->nDim;
  if (b->n == b->nAlloc) {
    int rc = batch_reserve(b, b->nAlloc ? b->nAlloc * 2 : 256);
    if (rc != SQLITE_OK) return rc;
  }
  b->aRowid[b->n] = iRowid;
  memcpy(b->aVec + b->n * nDim, aVec, (size_t)nDim * sizeof(float));
  b->n++;
  return SQLITE_OK;
}

/* Adds the batch to the index in slices and empties it. */
static int batch_flush(VecBatch *b, VsIndex *pIdx, char **pzErr) {
  int rc = SQLITE_OK;
  int nDim = b->pTab->pCfg->nDim;
  for (i64 i = 0; rc == SQLITE_OK && i < b->n; i += VS_ADD_BATCH) {
    i64 n = b->n - i < VS_ADD_BATCH ? b->n - i : VS_ADD_BATCH;
    rc = vs_index_add(pIdx, n, b->aRowid + i, b->aVec + i * nDim, pzErr);
  }
  b->n = 0;
  return rc;
}

/* Gives a failure without a message one that names what failed. */
static int failed(VsTable *pTab, int rc, const char *zWhat) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && pTab->base.zErrMsg == 0) {
    vs_error(&pTab->base.zErrMsg, "%s: %s", zWhat, rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(pTab->db));
  }
  return rc;
}

void vs_sync_invalidate(VsTable *pTab) {
  vs_index_free(pTab->pIdx);
  pTab->pIdx = 0;
  pTab->bVersionKnown = 0;
}

/* Re-reads the mutable options (index description, default search parameters). */
static int load_options(VsTable *pTab, char **pzErr) {
  char *zIndex = 0, *zParams = 0;
  int rc = vs_storage_config_get(pTab->pStore, "index", &zIndex, pzErr);
  if (rc == SQLITE_OK) rc = vs_storage_config_get(pTab->pStore, "search_params", &zParams, pzErr);
  /* Without an 'index' row (a damaged _config table: integrity-check reports it, 'rebuild' puts it back) the
  ** description declared in CREATE VIRTUAL TABLE serves. */
  if (rc == SQLITE_OK && zIndex == 0) rc = vs_config_set_string(&zIndex, pTab->pCfg->zIndex);
  if (rc == SQLITE_OK) {
    sqlite3_free(pTab->zIndexDesc);
    pTab->zIndexDesc = zIndex;
    sqlite3_free(pTab->zSearchParams);
    pTab->zSearchParams = zParams;
    return SQLITE_OK;
  }
  sqlite3_free(zIndex);
  sqlite3_free(zParams);
  return rc;
}

static int collect_vector(void *pCtx, i64 iRowid, const float *aVec) {
  return batch_push((VecBatch *)pCtx, iRowid, aVec);
}

/* The stored vectors one rowid at a time, leaving out damaged ones (not a BLOB of the table's size of finite
** floats): the second pass of an index built while loading, so that one damaged row (which integrity-check reports
** and 'rebuild' refuses) neither fails every statement nor blocks the write through the table that repairs it. */
static int collect_lenient(VsTable *pTab, VecBatch *pAll, char **pzErr) {
  sqlite3_stmt *pStmt = 0;
  char *zFirst = 0; /* the first damaged vector's error */
  int rc = vs_storage_prepare(pTab->pStore, "SELECT rowid FROM {vectors} ORDER BY rowid", &pStmt);
  float *aVec = sqlite3_malloc64((sqlite3_uint64)pTab->pCfg->nDim * sizeof(float));
  if (rc == SQLITE_OK && aVec == 0) rc = SQLITE_NOMEM;
  while (rc == SQLITE_OK && sqlite3_step(pStmt) == SQLITE_ROW) {
    i64 iRowid = sqlite3_column_int64(pStmt, 0);
    int rc2 = vs_storage_vector_get(pTab->pStore, iRowid, aVec, pzErr);
    if (rc2 == SQLITE_OK) {
      rc = batch_push(pAll, iRowid, aVec);
    } else if (rc2 == SQLITE_CORRUPT) {
      if (zFirst == 0) zFirst = *pzErr;
      else sqlite3_free(*pzErr);
      *pzErr = 0;
    } else if (rc2 != SQLITE_DONE) {
      rc = rc2;
    }
  }
  int rc2 = sqlite3_finalize(pStmt);
  sqlite3_free(aVec);
  if (rc == SQLITE_OK) rc = rc2;
  /* every vector damaged is no damaged row but a table that does not match its declaration (dim edited) */
  if (rc == SQLITE_OK && zFirst && pAll->n == 0) {
    *pzErr = zFirst;
    return SQLITE_CORRUPT;
  }
  sqlite3_free(zFirst);
  return rc;
}

/* Builds a new index from every stored vector: trained first when it needs training and either bTrain is set
** or the table has reached the automatic threshold. With bLenient, damaged vectors are left out (collect_lenient)
** instead of failing the build. */
static int build_from_vectors(VsTable *pTab, int bTrain, int bLenient, VsIndex **ppIdx, char **pzErr) {
  VsIndex *pIdx = 0;
  VecBatch all = {pTab, 0, 0, 0, 0};
  *ppIdx = 0;
  int rc = vs_index_new(pTab->pCfg->nDim, pTab->pCfg->eMetric, pTab->zIndexDesc, &pIdx, pzErr);
  if (rc == SQLITE_OK) rc = vs_storage_vector_scan(pTab->pStore, collect_vector, &all, pzErr);
  if (rc == SQLITE_CORRUPT && bLenient) {
    sqlite3_free(*pzErr);
    *pzErr = 0;
    all.n = 0;
    rc = collect_lenient(pTab, &all, pzErr);
  }
  if (rc == SQLITE_OK && pIdx->bStandIn) {
    if (bTrain && all.n < vs_index_train_minimum(pIdx)) {
      vs_error(pzErr, "index '%s' needs at least %lld vectors to train, the table has %lld", pIdx->zDesc,
               vs_index_train_minimum(pIdx), all.n);
      rc = SQLITE_ERROR;
    } else if (bTrain || all.n >= vs_index_train_threshold(pIdx)) {
      rc = vs_index_train(pIdx, all.n, all.aVec, pzErr);
    }
  }
  if (rc == SQLITE_OK) rc = vs_index_apply_params(pIdx, pTab->zSearchParams, pzErr);
  if (rc == SQLITE_OK) rc = batch_flush(&all, pIdx, pzErr);
  batch_free(&all);
  if (rc != SQLITE_OK) {
    vs_index_free(pIdx);
    return rc;
  }
  *ppIdx = pIdx;
  return SQLITE_OK;
}

static int read_snapshot_cb(void *pCtx, const VsSnapIn *pIn, i64 nByte, char **pzErr) {
  VsTable *pTab = (VsTable *)pCtx;
  int rc = vs_index_read(pIn, nByte, pTab->pCfg->nDim, pTab->pCfg->eMetric, &pTab->pIdx, pzErr);
  return rc == SQLITE_OK ? SQLITE_OK : SQLITE_CORRUPT; /* unreadable: rebuilt from the stored vectors */
}

static int write_snapshot_cb(void *pCtx, FILE *f, char **pzErr) {
  return vs_index_write(((VsTable *)pCtx)->pIdx, f, pzErr);
}

/* The rowids whose vectors log entries touched; whether a vector was set or deleted is not trusted (the stored
** vectors are the truth). Entries for declared columns alone leave the index as it is. */
static int replay_entry(void *pCtx, i64 iSeq, i64 iRowid, int eOp) {
  (void)iSeq;
  if (eOp == VS_LOG_COLUMNS) return SQLITE_OK;
  return vs_i64map_put((VsI64Map *)pCtx, iRowid, 0);
}

/* Applies log entries after pTab->iLogSeq to pIdx: every rowid they touched gets its stored vector, or none when
** no vector is stored. Reading the vectors rather than trusting each entry's op keeps a hand-edited log (a
** delete of a live row, an unknown op, a rowid that never existed) from making the index disagree with them. */
static int replay_log(VsTable *pTab, char **pzErr) {
  VsI64Map touched;
  VecBatch b = {pTab, 0, 0, 0, 0};
  vs_i64map_init(&touched);
  int rc = vs_storage_log_scan(pTab->pStore, pTab->iLogSeq, replay_entry, &touched);
  float *aVec = sqlite3_malloc64((sqlite3_uint64)pTab->pCfg->nDim * sizeof(float));
  if (rc == SQLITE_OK && aVec == 0) rc = SQLITE_NOMEM;
  for (i64 i = 0; rc == SQLITE_OK && i < touched.nSlot; i++) {
    if (touched.aUsed[i] != 1) continue;
    i64 iRowid = touched.aKey[i];
    vs_index_remove(pTab->pIdx, iRowid);
    int rc2 = vs_storage_vector_get(pTab->pStore, iRowid, aVec, pzErr);
    if (rc2 == SQLITE_OK) {
      rc = batch_push(&b, iRowid, aVec);
    } else if (rc2 == SQLITE_CORRUPT) { /* a damaged vector stays out too (see collect_lenient) */
      sqlite3_free(*pzErr);
      *pzErr = 0;
    } else if (rc2 != SQLITE_DONE) { /* SQLITE_DONE: no vector stored, the row stays out of the index */
      rc = rc2;
    }
  }
  if (rc == SQLITE_OK) rc = batch_flush(&b, pTab->pIdx, pzErr);
  sqlite3_free(aVec);
  batch_free(&b);
  vs_i64map_clear(&touched);
  return rc;
}

/* The log's own bookkeeping: every commit that appends entries records the last sequence number as the _config row
** 'log_seq' (0 after a snapshot empties the log), and sequence numbers run 1..log_seq. Sets *pbDamaged when the
** log does not end at log_seq (entries deleted or added by hand) or, with bCount, does not hold exactly log_seq
** entries (a gap). A table without the row (an older file) is taken as intact. */
static int log_damaged(VsTable *pTab, i64 iLogSeq, int bCount, int *pbDamaged, char **pzErr) {
  char *zSeq = 0;
  *pbDamaged = 0;
  int rc = vs_storage_config_get(pTab->pStore, "log_seq", &zSeq, pzErr);
  if (rc == SQLITE_OK && zSeq) {
    i64 iRecorded = strtoll(zSeq, 0, 10);
    i64 nEntry = iLogSeq;
    if (bCount) rc = vs_storage_log_count(pTab->pStore, &nEntry);
    *pbDamaged = iRecorded != iLogSeq || nEntry != iLogSeq;
  }
  sqlite3_free(zSeq);
  return rc;
}

/* Loads pIdx for generation iGen: the verified snapshot; or, when there is none (a young table whose log holds
** every change, at most a few thousand), it is damaged, or bLogDamaged says the log cannot be replayed on it, an
** index built in memory from the stored vectors (integrity-check reports damage). Building from the vectors
** rather than replaying a snapshot-less log keeps a hand-edited generation (snapshot_gen deleted or zeroed) from
** hiding the rows the snapshot held. */
static int load_index(VsTable *pTab, i64 iGen, i64 iLogSeq, int bLogDamaged, char **pzErr) {
  vs_index_free(pTab->pIdx);
  pTab->pIdx = 0;
  pTab->iLogSeq = 0;
  int rc = bLogDamaged ? SQLITE_CORRUPT : vs_storage_snapshot_read(pTab->pStore, read_snapshot_cb, pTab, pzErr);
  if (rc == SQLITE_DONE || rc == SQLITE_CORRUPT) {
    sqlite3_free(*pzErr);
    *pzErr = 0;
    vs_index_free(pTab->pIdx);
    pTab->pIdx = 0;
    rc = build_from_vectors(pTab, 0, 1, &pTab->pIdx, pzErr);
    pTab->iLogSeq = iLogSeq; /* the vectors already include every logged change */
  }
  if (rc == SQLITE_OK) rc = vs_index_apply_params(pTab->pIdx, pTab->zSearchParams, pzErr);
  if (rc == SQLITE_OK) pTab->iGen = iGen;
  else vs_sync_invalidate(pTab);
  return rc;
}

int vs_sync_read(VsTable *pTab) {
  char **pzErr = &pTab->base.zErrMsg;
  if (pTab->bInWrite && pTab->pIdx) return SQLITE_OK;
  unsigned int dv = vs_storage_data_version(pTab->pStore);
  if (pTab->pIdx && pTab->bVersionKnown && dv == pTab->dataVersion) return SQLITE_OK;

  i64 iGen = 0, iLogSeq = 0;
  char *zOldParams = pTab->zSearchParams ? sqlite3_mprintf("%s", pTab->zSearchParams) : 0;
  int rc = vs_storage_state(pTab->pStore, &iGen, &iLogSeq, pzErr);
  if (rc == SQLITE_OK) rc = load_options(pTab, pzErr);
  int bFull = pTab->pIdx == 0 || iGen != pTab->iGen || iLogSeq < pTab->iLogSeq;
  int bLogDamaged = 0;
  if (rc == SQLITE_OK) rc = log_damaged(pTab, iLogSeq, bFull, &bLogDamaged, pzErr);
  if (rc == SQLITE_OK && bLogDamaged) vs_sync_drop_columns(pTab); /* the columns in memory followed that log too */
  if (rc == SQLITE_OK && (bFull || bLogDamaged)) {
    rc = load_index(pTab, iGen, iLogSeq, bLogDamaged, pzErr);
  } else if (rc == SQLITE_OK && sqlite3_stricmp(zOldParams ? zOldParams : "", pTab->zSearchParams ? pTab->zSearchParams : "")) {
    rc = vs_index_apply_params(pTab->pIdx, pTab->zSearchParams, pzErr);
  }
  sqlite3_free(zOldParams);
  if (rc == SQLITE_OK && iLogSeq > pTab->iLogSeq) {
    rc = replay_log(pTab, pzErr);
    if (rc == SQLITE_OK) pTab->iLogSeq = iLogSeq;
  }
  if (rc != SQLITE_OK) {
    vs_sync_invalidate(pTab);
    return failed(pTab, rc, "loading the index failed");
  }
  pTab->dataVersion = dv;
  pTab->bVersionKnown = 1;
  return SQLITE_OK;
}

int vs_sync_begin(VsTable *pTab) {
  pTab->bInWrite = 0;
  int rc = vs_sync_read(pTab);
  vs_pending_clear(&pTab->pending);
  pTab->bApplied = 0;
  if (rc == SQLITE_OK) pTab->bInWrite = 1;
  return rc;
}

/* Writes the whole index as the new snapshot (clearing the log). */
static int write_snapshot(VsTable *pTab, char **pzErr) {
  i64 iGen = 0;
  int rc = vs_storage_snapshot_write(pTab->pStore, write_snapshot_cb, pTab, &iGen, pzErr);
  if (rc == SQLITE_OK) {
    pTab->iGen = iGen;
    pTab->iLogSeq = 0;
  }
  return rc;
}

int vs_sync_rebuild(VsTable *pTab, int bTrain, char **pzErr) {
  VsIndex *pNew = 0;
  int rc = build_from_vectors(pTab, bTrain, 0, &pNew, pzErr);
  if (rc != SQLITE_OK) return rc;
  vs_index_free(pTab->pIdx);
  pTab->pIdx = pNew;
  return write_snapshot(pTab, pzErr);
}

/* Appends a log entry and moves pTab->iLogSeq to it. */
static int log_entry(VsTable *pTab, i64 iRowid, int eOp) {
  i64 iSeq = 0;
  int rc = vs_storage_log_append(pTab->pStore, iRowid, eOp, &iSeq);
  if (rc == SQLITE_OK) pTab->iLogSeq = iSeq;
  return rc;
}

/* Applies the net pending change of every touched rowid to pIdx and appends their log entries, then one entry
** for each row whose declared columns alone were written, so other connections read those rows again (unless
** a snapshot follows, which makes the entries unnecessary). */
static int apply_pending(VsTable *pTab, int bLog, char **pzErr) {
  VsPending *pP = &pTab->pending;
  VecBatch b = {pTab, 0, 0, 0, 0};
  int rc = SQLITE_OK;
  i64 nLogged = 0, nAdd = 0;
  /* Every array sized once for what this commit adds (a bulk insert would otherwise regrow them ~20 times). */
  for (i64 i = 0; i < pP->last.nSlot; i++) {
    if (pP->last.aUsed[i] == 1 && pP->aOp[pP->last.aVal[i]].aVec) nAdd++;
  }
  if (nAdd > 0) rc = batch_reserve(&b, nAdd);
  if (rc == SQLITE_OK) rc = vs_index_reserve(pTab->pIdx, nAdd);
  for (i64 i = 0; rc == SQLITE_OK && i < pP->last.nSlot; i++) {
    if (pP->last.aUsed[i] != 1) continue;
    const VsPendingOp *pOp = &pP->aOp[pP->last.aVal[i]];
    if (pOp->aVec) {
      rc = batch_push(&b, pOp->iRowid, pOp->aVec);
    } else {
      vs_index_remove(pTab->pIdx, pOp->iRowid);
    }
    if (rc == SQLITE_OK && bLog) rc = log_entry(pTab, pOp->iRowid, pOp->aVec ? VS_LOG_SET : VS_LOG_DELETE), nLogged++;
  }
  for (i64 i = 0; rc == SQLITE_OK && bLog && i < pTab->written.nSlot; i++) {
    if (pTab->written.aUsed[i] != 1 || vs_pending_get(pP, pTab->written.aKey[i])) continue;
    rc = log_entry(pTab, pTab->written.aKey[i], VS_LOG_COLUMNS);
    nLogged++;
  }
  if (rc == SQLITE_OK && nLogged > 0) {
    char zSeq[32];
    snprintf(zSeq, sizeof(zSeq), "%lld", pTab->iLogSeq);
    rc = vs_storage_config_put(pTab->pStore, "log_seq", zSeq, pzErr);
  }
  if (rc == SQLITE_OK) rc = batch_flush(&b, pTab->pIdx, pzErr);
  batch_free(&b);
  return rc;
}

int vs_sync_commit(VsTable *pTab) {
  char **pzErr = &pTab->base.zErrMsg;
  if (!pTab->bInWrite) return SQLITE_OK;
  int eCmd = vs_pending_commands(&pTab->pending);
  if (vs_pending_is_empty(&pTab->pending) && eCmd == 0 && pTab->written.nUsed == 0) return SQLITE_OK;
  sqlite3_int64 iLastRowid = sqlite3_last_insert_rowid(pTab->db);
  int rc = SQLITE_OK;
  pTab->bApplied = 1; /* from here on, a failed commit must drop the cache */
  if (pTab->pIdx == 0) rc = vs_sync_read(pTab);
  if (rc == SQLITE_OK && (eCmd & (VS_CMD_REBUILD | VS_CMD_TRAIN))) {
    rc = vs_sync_rebuild(pTab, (eCmd & VS_CMD_TRAIN) != 0, pzErr);
  } else if (rc == SQLITE_OK) {
    VsIndex *pIdx = pTab->pIdx;
    i64 nNet = pTab->pending.last.nUsed + pTab->written.nUsed;
    i64 nLogLimit = vs_index_count(pIdx) / VS_LOG_FRACTION;
    if (nLogLimit < VS_LOG_MIN) nLogLimit = VS_LOG_MIN;
    /* A log damaged by hand (log_damaged) is replaced by a snapshot of this index, which was built from the
    ** stored vectors, rather than appended to. (A hand-edited log may also end at seq 2^63-1: compared without
    ** overflow, that forces a snapshot too.) */
    int bLogDamaged = 0;
    i64 iGenNow = 0, iLogNow = 0;
    rc = vs_storage_state(pTab->pStore, &iGenNow, &iLogNow, pzErr);
    if (rc == SQLITE_OK) rc = log_damaged(pTab, pTab->iLogSeq, 0, &bLogDamaged, pzErr);
    if (iLogNow != pTab->iLogSeq) bLogDamaged = 1; /* edited during this transaction (a trigger) */
    int bSnapshot = (eCmd & VS_CMD_SNAPSHOT) || bLogDamaged || pTab->iLogSeq > nLogLimit - nNet;
    if (rc == SQLITE_OK) rc = apply_pending(pTab, !bSnapshot, pzErr);
    if (rc == SQLITE_OK) {
      i64 nTombLimit = pIdx->nLabel / VS_TOMB_FRACTION;
      if (nTombLimit < VS_TOMB_MIN) nTombLimit = VS_TOMB_MIN;
      int bTrainNow = pIdx->bStandIn && vs_index_count(pIdx) >= vs_index_train_threshold(pIdx);
      if (bTrainNow || pIdx->nTomb > nTombLimit || ((eCmd & VS_CMD_SNAPSHOT) && pIdx->nTomb > 0)) {
        rc = vs_sync_rebuild(pTab, 0, pzErr);
      } else if (bSnapshot) {
        rc = write_snapshot(pTab, pzErr);
      }
    }
  }
  sqlite3_set_last_insert_rowid(pTab->db, iLastRowid);
  if (rc == SQLITE_OK) {
    /* The changes are in the index now. If the commit itself fails (SQLITE_BUSY) the transaction stays open
    ** and may go on: what follows is pending anew, and a retried commit does not apply or log these again. */
    vs_pending_forget(&pTab->pending);
    vs_i64map_clear(&pTab->written);
  }
  return failed(pTab, rc, "committing the index failed");
}

/* Drops the declared columns in memory if they were read inside the write transaction being undone: they may
** hold what it wrote. */
static void drop_columns_read_in_write(VsTable *pTab) {
  if (!pTab->bColumnsInWrite) return;
  vs_sync_drop_columns(pTab);
  pTab->bColumnsInWrite = 0;
}

void vs_sync_drop_columns(VsTable *pTab) {
  vs_columns_free(pTab->pColumns);
  pTab->pColumns = 0;
  vs_label_bits_unref(pTab->pBits); /* built from that copy */
  pTab->pBits = 0;
}

int vs_sync_written(VsTable *pTab, i64 iRowid) { return vs_i64map_put(&pTab->written, iRowid, 1); }

int vs_sync_columns(VsTable *pTab, VsColumns **pp) {
  *pp = 0;
  int bRead = 0;
  int rc = vs_columns_sync(pTab->pStore, pTab->pCfg->nCol, pTab->iGen, pTab->iLogSeq, &pTab->pColumns, &bRead);
  if (rc != SQLITE_OK) return failed(pTab, rc, "reading the declared columns failed");
  if (pTab->bInWrite && bRead) pTab->bColumnsInWrite = 1;
  *pp = pTab->pColumns;
  return SQLITE_OK;
}

void vs_sync_finish(VsTable *pTab, int bCommitted) {
  if (!bCommitted) drop_columns_read_in_write(pTab);
  pTab->bColumnsInWrite = 0;
  vs_i64map_clear(&pTab->written);
  if (!bCommitted && pTab->bApplied) vs_sync_invalidate(pTab);
  if (!bCommitted) pTab->bVersionKnown = 0; /* options written in the transaction are re-read */
  vs_pending_clear(&pTab->pending);
  pTab->bInWrite = 0;
  pTab->bApplied = 0;
}

int vs_sync_rollback_to(VsTable *pTab, int iLevel) {
  char **pzErr = &pTab->base.zErrMsg;
  vs_pending_rollback_to(&pTab->pending, iLevel);
  drop_columns_read_in_write(pTab);
  /* After a failed commit applied changes to the index, the index is reloaded from the rolled-back tables. */
  if (pTab->bApplied) vs_sync_invalidate(pTab);
  /* SQLite rolled the config rows back; commands such as search_params= changed the in-memory copies. */
  char *zOldParams = pTab->zSearchParams ? sqlite3_mprintf("%s", pTab->zSearchParams) : 0;
  int rc = load_options(pTab, pzErr);
  if (rc == SQLITE_OK && pTab->pIdx && sqlite3_stricmp(pTab->pIdx->zDesc, pTab->zIndexDesc) == 0 &&
      sqlite3_stricmp(zOldParams ? zOldParams : "", pTab->zSearchParams ? pTab->zSearchParams : "") != 0) {
    rc = vs_index_apply_params(pTab->pIdx, pTab->zSearchParams, pzErr);
  }
  sqlite3_free(zOldParams);
  return rc;
}
