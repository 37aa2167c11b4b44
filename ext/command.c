/*
** command.c: INSERT INTO t(t) VALUES ('<command>').
**
**   optimize          compact tombstones and persist a fresh snapshot (at commit)
**   rebuild           rebuild the index from the stored vectors (at commit)
**   train             train a trainable index on the stored vectors (at commit)
**   index=<desc>      switch the Faiss index description, rebuilding (at commit)
**   search_params=..  change the default search parameters (now)
**   integrity-check   error unless the index, the snapshot and the stored rows agree exactly (now)
**
** Work that rebuilds the index runs in xSync, so it sees every change of the transaction and vanishes with it
** on ROLLBACK; the configuration rows it changes are ordinary writes of the transaction.
*/
#include "vecstore_int.h"

typedef struct CheckCtx {
  VsTable *pTab;
  i64 nVector;
  i64 iBadRowid;
  int bBad;
} CheckCtx;

/* Is the vector of iRowid live where searches look: the pending set first, then the committed index? */
static int is_searchable(VsTable *pTab, i64 iRowid) {
  const VsPendingOp *pOp = vs_pending_get(&pTab->pending, iRowid);
  i64 iLabel;
  if (pOp) return pOp->aVec != 0;
  return vs_i64map_get(&pTab->pIdx->live, iRowid, &iLabel);
}

static int check_vector(void *pArg, i64 iRowid, const float *aVec) {
  (void)aVec;
  CheckCtx *p = (CheckCtx *)pArg;
  p->nVector++;
  if (!p->bBad && !is_searchable(p->pTab, iRowid)) {
    p->bBad = 1;
    p->iBadRowid = iRowid;
  }
  return SQLITE_OK;
}

/* The snapshot must not only match its checksum but also parse as an index of this table. */
static int parse_snapshot(void *pCtx, FILE *f, i64 nByte, char **pzErr) {
  VsTable *pTab = (VsTable *)pCtx;
  VsIndex *pIdx = 0;
  int rc = vs_index_read(f, nByte, pTab->pCfg->nDim, pTab->pCfg->eMetric, &pIdx, pzErr);
  vs_index_free(pIdx);
  if (rc != SQLITE_OK) {
    char *zWhy = *pzErr ? sqlite3_mprintf("%s", *pzErr + 10) : 0; /* without "vecstore: " */
    vs_error(pzErr, "integrity-check failed: the index snapshot in %s_snapshot cannot be read (%s); run "
             "INSERT INTO %s(%s) VALUES ('rebuild')", pTab->pCfg->zName, zWhy ? zWhy : "unknown error",
             pTab->pCfg->zName, pTab->pCfg->zName);
    sqlite3_free(zWhy);
    return SQLITE_CORRUPT;
  }
  return SQLITE_OK;
}

/* Counts rows of a query on the table's shadow tables (zSql uses %w for the table name). */
static int count_query(VsTable *pTab, const char *zFmt, i64 *pn) {
  char *zSql = sqlite3_mprintf(zFmt, pTab->pCfg->zDb, pTab->pCfg->zName, pTab->pCfg->zDb, pTab->pCfg->zName);
  sqlite3_stmt *pStmt = 0;
  int rc = zSql ? sqlite3_prepare_v2(pTab->db, zSql, -1, &pStmt, 0) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  *pn = 0;
  if (rc == SQLITE_OK && sqlite3_step(pStmt) == SQLITE_ROW) *pn = sqlite3_column_int64(pStmt, 0);
  if (rc == SQLITE_OK) rc = sqlite3_finalize(pStmt);
  return rc;
}

static int integrity_check(VsTable *pTab) {
  char **pzErr = &pTab->base.zErrMsg;
  const char *zName = pTab->pCfg->zName;
  int rc = vs_storage_snapshot_read(pTab->pStore, parse_snapshot, pTab, pzErr);
  if (rc == SQLITE_DONE) rc = SQLITE_OK;
  if (rc != SQLITE_OK) return rc;
  if (pTab->pIdx == 0) rc = vs_sync_read(pTab);
  if (rc != SQLITE_OK) return rc;

  i64 nOrphanDocs = 0, nOrphanVectors = 0;
  rc = count_query(pTab, "SELECT count(*) FROM \"%w\".\"%w_docs\" d WHERE NOT EXISTS "
                   "(SELECT 1 FROM \"%w\".\"%w_vectors\" v WHERE v.rowid = d.rowid)", &nOrphanDocs);
  if (rc == SQLITE_OK) {
    rc = count_query(pTab, "SELECT count(*) FROM \"%w\".\"%w_vectors\" v WHERE NOT EXISTS "
                     "(SELECT 1 FROM \"%w\".\"%w_docs\" d WHERE d.rowid = v.rowid)", &nOrphanVectors);
  }
  if (rc != SQLITE_OK) return rc;
  if (nOrphanDocs || nOrphanVectors) {
    vs_error(pzErr, "integrity-check failed: %lld documents without a vector and %lld vectors without a document "
             "in %s_docs / %s_vectors", nOrphanDocs, nOrphanVectors, zName, zName);
    return SQLITE_CORRUPT;
  }

  CheckCtx ctx = {pTab, 0, 0, 0};
  rc = vs_storage_vector_scan(pTab->pStore, check_vector, &ctx, pzErr);
  if (rc != SQLITE_OK) return rc;
  if (ctx.bBad) {
    vs_error(pzErr, "integrity-check failed: the vector of rowid %lld is stored but not in the index",
             ctx.iBadRowid);
    return SQLITE_CORRUPT;
  }
  /* Every stored vector is searchable; now the index must hold nothing else. */
  i64 nSearchable = 0;
  const VsI64Map *pLive = &pTab->pIdx->live;
  for (i64 i = 0; i < pLive->nSlot; i++) {
    if (pLive->aUsed[i] == 1 && vs_pending_get(&pTab->pending, pLive->aKey[i]) == 0) nSearchable++;
  }
  const VsPending *pP = &pTab->pending;
  for (i64 i = 0; i < pP->last.nSlot; i++) {
    if (pP->last.aUsed[i] == 1 && pP->aOp[pP->last.aVal[i]].aVec) nSearchable++;
  }
  if (nSearchable != ctx.nVector) {
    vs_error(pzErr, "integrity-check failed: the index holds %lld vectors, the %s_vectors table %lld", nSearchable,
             zName, ctx.nVector);
    return SQLITE_CORRUPT;
  }
  return SQLITE_OK;
}

/* 'index=<desc>': validated against the table's dim and metric, stored, rebuilt at commit. */
static int set_index(VsTable *pTab, const char *zDesc) {
  char **pzErr = &pTab->base.zErrMsg;
  while (*zDesc == ' ') zDesc++;
  int rc = vs_index_validate(pTab->pCfg->nDim, pTab->pCfg->eMetric, zDesc, pTab->zSearchParams, pzErr);
  if (rc == SQLITE_OK) rc = vs_storage_config_put(pTab->pStore, "index", zDesc, pzErr);
  if (rc == SQLITE_OK) rc = vs_config_set_string(&pTab->zIndexDesc, zDesc);
  if (rc == SQLITE_OK) rc = vs_pending_command(&pTab->pending, VS_CMD_REBUILD);
  return rc;
}

/* 'search_params=...': validated against the index description, stored, applied to the cached index. */
static int set_search_params(VsTable *pTab, const char *zParams) {
  char **pzErr = &pTab->base.zErrMsg;
  while (*zParams == ' ') zParams++;
  const char *zStored = zParams[0] ? zParams : 0;
  int rc = vs_index_validate(pTab->pCfg->nDim, pTab->pCfg->eMetric, pTab->zIndexDesc, zStored, pzErr);
  if (rc == SQLITE_OK) rc = vs_storage_config_put(pTab->pStore, "search_params", zStored, pzErr);
  if (rc == SQLITE_OK) rc = vs_config_set_string(&pTab->zSearchParams, zStored);
  if (rc == SQLITE_OK && pTab->pIdx) rc = vs_index_apply_params(pTab->pIdx, zStored, pzErr);
  return rc;
}

int vs_command(VsTable *pTab, sqlite3_value *pCommand) {
  char **pzErr = &pTab->base.zErrMsg;
  const char *z = (const char *)sqlite3_value_text(pCommand);
  if (z == 0) z = "";
  if (pTab->zIndexDesc == 0) {
    int rc = vs_sync_read(pTab);
    if (rc != SQLITE_OK) return rc;
  }
  if (sqlite3_stricmp(z, "optimize") == 0) return vs_pending_command(&pTab->pending, VS_CMD_SNAPSHOT);
  if (sqlite3_stricmp(z, "rebuild") == 0) return vs_pending_command(&pTab->pending, VS_CMD_REBUILD);
  if (sqlite3_stricmp(z, "train") == 0) return vs_pending_command(&pTab->pending, VS_CMD_TRAIN);
  if (sqlite3_stricmp(z, "integrity-check") == 0) return integrity_check(pTab);
  if (sqlite3_strnicmp(z, "index=", 6) == 0) return set_index(pTab, z + 6);
  if (sqlite3_strnicmp(z, "search_params=", 14) == 0) return set_search_params(pTab, z + 14);
  vs_error(pzErr, "unknown command '%s' (expected optimize, rebuild, train, integrity-check, index=<faiss "
           "description> or search_params=<parameters>)", z);
  return SQLITE_ERROR;
}
