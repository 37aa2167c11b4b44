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

/* The snapshot must not only match its checksum but also parse as an index of this table. Only SQLITE_CORRUPT says
** that it does not: running out of memory while reading it is no damage. */
static int parse_snapshot(void *pCtx, const VsSnapIn *pIn, i64 nByte, char **pzErr) {
  VsTable *pTab = (VsTable *)pCtx;
  VsIndex *pIdx = 0;
  int rc = vs_index_read(pIn, nByte, pTab->pCfg->nDim, pTab->pCfg->eMetric, &pIdx, pzErr);
  vs_index_free(pIdx);
  if (rc == SQLITE_CORRUPT) {
    char *zWhy = *pzErr ? sqlite3_mprintf("%s", *pzErr + 10) : 0; /* without "vecstore: " */
    vs_error(pzErr, "integrity-check failed: the index snapshot in %s_snapshot cannot be read (%s); run "
             "INSERT INTO %s(%s) VALUES ('rebuild')", pTab->pCfg->zName, zWhy ? zWhy : "unknown error",
             pTab->pCfg->zName, pTab->pCfg->zName);
    sqlite3_free(zWhy);
  }
  return rc;
}

/* Runs zTemplate (vs_storage_prepare syntax) and returns its first row in *ppStmt (SQLITE_ROW), or SQLITE_DONE with
** *ppStmt finalized and NULL. The caller finalizes a returned statement. */
static int first_row(VsTable *pTab, const char *zTemplate, sqlite3_stmt **ppStmt) {
  int rc = vs_storage_prepare(pTab->pStore, zTemplate, ppStmt);
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_step(*ppStmt);
  if (rc != SQLITE_ROW) {
    int rc2 = sqlite3_finalize(*ppStmt);
    *ppStmt = 0;
    return rc == SQLITE_DONE ? SQLITE_DONE : rc2;
  }
  return SQLITE_ROW;
}

/* The configuration rows: format 1, the declared dim and metric, the index in use (unless a command of this
** transaction changes it), a non-negative integer snapshot generation, and no snapshot rows at generation 0. */
static int check_config(VsTable *pTab) {
  char **pzErr = &pTab->base.zErrMsg;
  const char *zName = pTab->pCfg->zName;
  char *zDim = sqlite3_mprintf("%d", pTab->pCfg->nDim);
  int bIndexPending = (vs_pending_commands(&pTab->pending) & (VS_CMD_REBUILD | VS_CMD_TRAIN)) != 0;
  struct {
    const char *zKey;
    const char *zWant; /* NULL: not compared */
    int eType;         /* SQLITE_INTEGER or SQLITE_TEXT */
  } aRow[] = {
      {"format", "1", SQLITE_INTEGER},
      {"dim", zDim, SQLITE_INTEGER},
      {"metric", vs_metric_name(pTab->pCfg->eMetric), SQLITE_TEXT},
      {"index", bIndexPending ? 0 : pTab->pIdx->zDesc, SQLITE_TEXT},
      {"snapshot_gen", 0, SQLITE_INTEGER},
  };
  int rc = zDim ? SQLITE_OK : SQLITE_NOMEM;
  for (size_t i = 0; rc == SQLITE_OK && i < sizeof(aRow) / sizeof(aRow[0]); i++) {
    sqlite3_stmt *pStmt = 0;
    char *zSql = sqlite3_mprintf("SELECT typeof(value), value, value >= 0 FROM {config} WHERE key = '%q'",
                                 aRow[i].zKey);
    rc = zSql ? first_row(pTab, zSql, &pStmt) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc == SQLITE_DONE) {
      vs_error(pzErr, "integrity-check failed: the %s_config table has no '%s' row", zName, aRow[i].zKey);
      rc = SQLITE_CORRUPT;
    } else if (rc == SQLITE_ROW) {
      const char *zValue = (const char *)sqlite3_column_text(pStmt, 1);
      int bOk = sqlite3_column_type(pStmt, 1) == aRow[i].eType && zValue != 0 &&
                (aRow[i].zWant ? strcmp(zValue, aRow[i].zWant) == 0 : sqlite3_column_int(pStmt, 2) != 0);
      rc = SQLITE_OK;
      if (!bOk) {
        vs_error(pzErr, "integrity-check failed: the %s_config row '%s' is %s '%s', expected %s%s", zName,
                 aRow[i].zKey, (const char *)sqlite3_column_text(pStmt, 0), zValue ? zValue : "",
                 aRow[i].zWant ? aRow[i].zWant : "a non-negative integer",
                 i == 3 ? " (the index in use; 'index=<description>' switches it)" : "");
        rc = SQLITE_CORRUPT;
      } else if (i == 4 && sqlite3_column_int64(pStmt, 1) == 0) {
        sqlite3_stmt *pSnap = 0;
        rc = first_row(pTab, "SELECT count(*) FROM {snapshot} WHERE chunk IS NOT NULL HAVING count(*) > 0", &pSnap);
        if (rc == SQLITE_ROW) {
          vs_error(pzErr, "integrity-check failed: the %s_config row 'snapshot_gen' is 0 but %s_snapshot holds %lld "
                   "chunks", zName, zName, sqlite3_column_int64(pSnap, 0));
          rc = SQLITE_CORRUPT;
        } else if (rc == SQLITE_DONE) {
          rc = SQLITE_OK;
        }
        sqlite3_finalize(pSnap);
      }
    }
    sqlite3_finalize(pStmt);
  }
  sqlite3_free(zDim);
  return rc;
}

/* Documents as writes leave them: id text, metadata a JSON object, declared columns of their type or NULL. */
static int check_docs(VsTable *pTab) {
  static const char *const azAllowed[] = {"'integer'", "'real', 'integer'", "'text'", 0};
  sqlite3_str *pStr = sqlite3_str_new(0);
  sqlite3_str_appendall(pStr,
                        "SELECT rowid, why FROM (SELECT rowid, CASE WHEN typeof(id) != 'text' THEN 'id is ' || "
                        "typeof(id) WHEN typeof(metadata) != 'text' THEN 'metadata is ' || typeof(metadata) WHEN NOT "
                        "json_valid(metadata) THEN 'metadata is not valid JSON' WHEN json_type(metadata) != 'object' "
                        "THEN 'metadata is a JSON ' || json_type(metadata) || ', not an object'");
  for (int i = 0; i < pTab->pCfg->nCol; i++) {
    const VsColumn *pCol = &pTab->pCfg->aCol[i];
    if (azAllowed[pCol->eType] == 0) continue;
    sqlite3_str_appendf(pStr, " WHEN typeof(\"%w\") NOT IN ('null', %s) THEN 'column %q is ' || typeof(\"%w\") || "
                        "', expected %s'", pCol->zName, azAllowed[pCol->eType], pCol->zName, pCol->zName,
                        vs_coltype_name(pCol->eType));
  }
  sqlite3_str_appendall(pStr, " END AS why FROM {docs}) WHERE why IS NOT NULL LIMIT 1");
  char *zSql = sqlite3_str_finish(pStr);
  sqlite3_stmt *pStmt = 0;
  int rc = zSql ? first_row(pTab, zSql, &pStmt) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  if (rc == SQLITE_ROW) {
    vs_error(&pTab->base.zErrMsg, "integrity-check failed: the document of rowid %lld in %s_docs is damaged: %s",
             sqlite3_column_int64(pStmt, 0), pTab->pCfg->zName, (const char *)sqlite3_column_text(pStmt, 1));
    rc = SQLITE_CORRUPT;
  }
  sqlite3_finalize(pStmt);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Log entries: integer rowid and op 0 (set), 1 (deleted) or 2 (declared columns alone changed), and the latest
** set/delete entry of each rowid the transaction has not touched since agrees with the stored vectors (each
** commit logs the net change of a row, and a snapshot clears the log). */
static int check_log(VsTable *pTab) {
  char **pzErr = &pTab->base.zErrMsg;
  const char *zName = pTab->pCfg->zName;
  sqlite3_stmt *pStmt = 0;
  int rc = first_row(pTab, "SELECT seq, quote(rowid), quote(op) FROM {log} WHERE typeof(rowid) != 'integer' OR "
                     "typeof(op) != 'integer' OR op NOT IN (0, 1, 2) LIMIT 1", &pStmt);
  if (rc == SQLITE_ROW) {
    vs_error(pzErr, "integrity-check failed: the %s_log entry %lld is invalid (rowid %s, op %s; expected an integer "
             "rowid and op 0, 1 or 2)", zName, sqlite3_column_int64(pStmt, 0),
             (const char *)sqlite3_column_text(pStmt, 1), (const char *)sqlite3_column_text(pStmt, 2));
    sqlite3_finalize(pStmt);
    return SQLITE_CORRUPT;
  }
  if (rc != SQLITE_DONE) return rc;
  rc = first_row(pTab, "SELECT count(*), coalesce(max(seq), 0), (SELECT value FROM {config} WHERE key = 'log_seq') "
                 "FROM {log} WHERE (SELECT value FROM {config} WHERE key = 'log_seq') IS NOT NULL", &pStmt);
  if (rc == SQLITE_ROW) {
    i64 nEntry = sqlite3_column_int64(pStmt, 0), iMax = sqlite3_column_int64(pStmt, 1);
    i64 iRecorded = sqlite3_column_int64(pStmt, 2);
    rc = sqlite3_finalize(pStmt);
    pStmt = 0;
    if (nEntry != iRecorded || iMax != iRecorded) {
      vs_error(pzErr, "integrity-check failed: the %s_log table holds %lld entries up to %lld, but the last commit "
               "recorded entries 1..%lld (log_seq in %s_config): log entries were deleted or added by hand", zName,
               nEntry, iMax, iRecorded, zName);
      return SQLITE_CORRUPT;
    }
  }
  if (rc != SQLITE_OK && rc != SQLITE_DONE) return rc;
  rc = vs_storage_prepare(pTab->pStore,
                          "SELECT l.seq, l.rowid, l.op FROM {log} l WHERE l.seq IN (SELECT max(seq) FROM {log} "
                          "WHERE op IN (0, 1) GROUP BY rowid) AND (l.op = 0) != EXISTS (SELECT 1 FROM {vectors} v WHERE v.rowid = "
                          "l.rowid) ORDER BY l.seq", &pStmt);
  while (rc == SQLITE_OK && sqlite3_step(pStmt) == SQLITE_ROW) {
    i64 iRowid = sqlite3_column_int64(pStmt, 1);
    if (vs_pending_get(&pTab->pending, iRowid)) continue;
    int bSet = sqlite3_column_int(pStmt, 2) == 0;
    vs_error(pzErr, "integrity-check failed: the %s_log entry %lld says the vector of rowid %lld was %s, but "
             "%s_vectors %s", zName, sqlite3_column_int64(pStmt, 0), iRowid, bSet ? "set" : "deleted", zName,
             bSet ? "has none" : "still holds one");
    rc = SQLITE_CORRUPT;
  }
  int rc2 = pStmt ? sqlite3_finalize(pStmt) : SQLITE_OK;
  return rc == SQLITE_OK ? rc2 : rc;
}

static int integrity_check(VsTable *pTab) {
  char **pzErr = &pTab->base.zErrMsg;
  const char *zName = pTab->pCfg->zName;
  int rc = vs_storage_snapshot_read(pTab->pStore, parse_snapshot, pTab, pzErr);
  if (rc == SQLITE_DONE) rc = SQLITE_OK;
  if (rc != SQLITE_OK) return rc;
  if (pTab->pIdx == 0) rc = vs_sync_read(pTab);
  if (rc == SQLITE_OK) rc = check_config(pTab);
  if (rc == SQLITE_OK) rc = check_docs(pTab);
  if (rc == SQLITE_OK) rc = check_log(pTab);
  if (rc != SQLITE_OK) return rc;

  /* documents without a vector, vectors without a document: how many, and the first rowid of each */
  i64 aOrphan[2][2] = {{0, 0}, {0, 0}};
  static const char *const azOrphan[2] = {
      "SELECT count(*), min(rowid) FROM {docs} d WHERE NOT EXISTS (SELECT 1 FROM {vectors} v WHERE v.rowid = d.rowid)",
      "SELECT count(*), min(rowid) FROM {vectors} v WHERE NOT EXISTS (SELECT 1 FROM {docs} d WHERE d.rowid = v.rowid)",
  };
  for (int i = 0; rc == SQLITE_OK && i < 2; i++) {
    sqlite3_stmt *pStmt = 0;
    rc = first_row(pTab, azOrphan[i], &pStmt);
    if (rc == SQLITE_ROW) {
      aOrphan[i][0] = sqlite3_column_int64(pStmt, 0);
      aOrphan[i][1] = sqlite3_column_int64(pStmt, 1);
      rc = sqlite3_finalize(pStmt);
    }
  }
  if (rc != SQLITE_OK) return rc;
  if (aOrphan[0][0] || aOrphan[1][0]) {
    char *zFirst = aOrphan[0][0] ? sqlite3_mprintf(" (rowid %lld)", aOrphan[0][1]) : 0;
    char *zSecond = aOrphan[1][0] ? sqlite3_mprintf(" (rowid %lld)", aOrphan[1][1]) : 0;
    vs_error(pzErr, "integrity-check failed: %lld documents without a vector%s and %lld vectors without a "
             "document%s in %s_docs / %s_vectors", aOrphan[0][0], zFirst ? zFirst : "", aOrphan[1][0],
             zSecond ? zSecond : "", zName, zName);
    sqlite3_free(zFirst);
    sqlite3_free(zSecond);
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
  /* After 'index=' in this transaction the cached index keeps the old type until the commit rebuilds it (with
  ** these parameters, validated above against the new type), so they are applied only to an index of this type. */
  if (rc == SQLITE_OK && pTab->pIdx && sqlite3_stricmp(pTab->pIdx->zDesc, pTab->zIndexDesc) == 0) {
    rc = vs_index_apply_params(pTab->pIdx, zStored, pzErr);
  }
  return rc;
}

/* 'rebuild' and 'train' also put back the configuration rows that only describe the table (format, dim, metric and
** embedder: the declaration in the schema is what counts), a missing 'index' row (the description in use) and a
** snapshot generation that is not a non-negative integer, so that a rebuild repairs a hand-edited _config table as
** well as the index. */
static int restore_config(VsTable *pTab) {
  static const char *const azSql[] = {
      ("INSERT OR REPLACE INTO {config}(key, value) VALUES ('format', 1), ('dim', ?1), ('metric', ?2), "
       "('embedder', ?3)"),
      "UPDATE {config} SET value = 0 WHERE key = 'snapshot_gen' AND NOT (typeof(value) = 'integer' AND value >= 0)",
      "INSERT OR IGNORE INTO {config}(key, value) VALUES ('snapshot_gen', 0), ('index', ?1)",
  };
  int rc = SQLITE_OK;
  for (size_t i = 0; rc == SQLITE_OK && i < sizeof(azSql) / sizeof(azSql[0]); i++) {
    sqlite3_stmt *pStmt = 0;
    rc = vs_storage_prepare(pTab->pStore, azSql[i], &pStmt);
    if (rc == SQLITE_OK && i == 2) sqlite3_bind_text(pStmt, 1, pTab->zIndexDesc, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && i == 0) {
      sqlite3_bind_int(pStmt, 1, pTab->pCfg->nDim);
      sqlite3_bind_text(pStmt, 2, vs_metric_name(pTab->pCfg->eMetric), -1, SQLITE_STATIC);
      sqlite3_bind_text(pStmt, 3, pTab->pCfg->zEmbedder, -1, SQLITE_STATIC);
    }
    if (rc == SQLITE_OK) sqlite3_step(pStmt);
    int rc2 = sqlite3_finalize(pStmt);
    if (rc == SQLITE_OK) rc = rc2;
  }
  if (rc != SQLITE_OK) {
    vs_error(&pTab->base.zErrMsg, "writing the table configuration failed: %s",
             rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(pTab->db));
  }
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
  if (sqlite3_stricmp(z, "rebuild") == 0 || sqlite3_stricmp(z, "train") == 0) {
    int rc = restore_config(pTab);
    if (rc != SQLITE_OK) return rc;
    return vs_pending_command(&pTab->pending, sqlite3_stricmp(z, "train") == 0 ? VS_CMD_TRAIN : VS_CMD_REBUILD);
  }
  if (sqlite3_stricmp(z, "integrity-check") == 0) {
    int rc = integrity_check(pTab);
    /* a failure without a message of its own (a shadow table dropped by hand...) still names the check */
    if (rc != SQLITE_OK && *pzErr == 0) {
      vs_error(pzErr, "integrity-check failed: %s", rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(pTab->db));
    }
    return rc;
  }
  if (sqlite3_strnicmp(z, "index=", 6) == 0) return set_index(pTab, z + 6);
  if (sqlite3_strnicmp(z, "search_params=", 14) == 0) return set_search_params(pTab, z + 14);
  vs_error(pzErr, "unknown command '%s' (expected optimize, rebuild, train, integrity-check, index=<faiss "
           "description> or search_params=<parameters>)", z);
  return SQLITE_ERROR;
}
