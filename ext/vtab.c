/*
** vtab.c: the vecstore virtual table module.
**
** Columns, in declaration order: id, content, metadata, embedding, the declared metadata columns, then the hidden
** distance, score, k, fetch_k, lambda_mult, search_params and a column named like the table (commands and text
** queries, as in FTS5). Planning is plan.c (xBestIndex, and xFindFunction for MATCH), reading cursor.c, writing
** write.c; this file creates, connects and drives transactions.
*/
#include "vecstore_int.h"

#include <math.h>

/**************************************************************************************************
** Create, connect, destroy.
*/

static int declare(sqlite3 *db, const VsConfig *pCfg) {
  sqlite3_str *pStr = sqlite3_str_new(0);
  sqlite3_str_appendall(pStr, "CREATE TABLE x(id TEXT, content TEXT, metadata TEXT, embedding BLOB");
  for (int i = 0; i < pCfg->nCol; i++) {
    sqlite3_str_appendf(pStr, ", \"%w\" %s", pCfg->aCol[i].zName, vs_coltype_name(pCfg->aCol[i].eType));
  }
  sqlite3_str_appendf(pStr, ", distance HIDDEN REAL, score HIDDEN REAL, k HIDDEN INTEGER, fetch_k HIDDEN INTEGER, "
                      "lambda_mult HIDDEN REAL, search_params HIDDEN TEXT, \"%w\" HIDDEN)", pCfg->zName);
  char *zSql = sqlite3_str_finish(pStr);
  if (zSql == 0) return SQLITE_NOMEM;
  int rc = sqlite3_declare_vtab(db, zSql);
  sqlite3_free(zSql);
  return rc;
}

static void table_free(VsTable *pTab) {
  if (pTab == 0) return;
  /* SQLite takes a method's error message only after the methods it reports errors of: not after xDestroy (nor
  ** xSavepoint, xRelease, xRollbackTo), whose message stays here until a later method's error replaces it. */
  sqlite3_free(pTab->base.zErrMsg);
  vs_index_free(pTab->pIdx);
  vs_pending_clear(&pTab->pending);
  vs_i64map_clear(&pTab->written);
  vs_sync_drop_columns(pTab);
  sqlite3_free(pTab->zLastKey);
  sqlite3_finalize(pTab->pEmbedStmt);
  vs_storage_close(pTab->pStore);
  vs_config_free(pTab->pCfg);
  sqlite3_free(pTab->zSearchParams);
  sqlite3_free(pTab->zIndexDesc);
  sqlite3_free(pTab);
}

static int connect_common(sqlite3 *db, int argc, const char *const *argv, int bCreate, sqlite3_vtab **ppVtab,
                          char **pzErr) {
  VsConfig *pCfg = 0;
  VsTable *pTab = 0;
  int rc = vs_config_parse(argc, argv, bCreate, &pCfg, pzErr);
  if (rc == SQLITE_OK) rc = declare(db, pCfg);
  if (rc == SQLITE_OK) {
    pTab = sqlite3_malloc(sizeof(*pTab));
    if (pTab == 0) rc = SQLITE_NOMEM;
  }
  if (rc == SQLITE_OK) {
    memset(pTab, 0, sizeof(*pTab));
    pTab->db = db;
    pTab->pCfg = pCfg;
    pCfg = 0;
    vs_pending_init(&pTab->pending, pTab->pCfg->nDim);
    vs_i64map_init(&pTab->written);
    pTab->bTestFilterInMemory = getenv("VECSTORE_TEST_FILTER_IN_MEMORY") != 0;
    rc = vs_storage_open(db, pTab->pCfg, &pTab->pStore);
  }
  if (rc == SQLITE_OK && bCreate) rc = vs_storage_create(db, pTab->pCfg, pzErr);
  if (rc == SQLITE_OK) {
    sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
    *ppVtab = &pTab->base;
    return SQLITE_OK;
  }
  if (pzErr && *pzErr == 0) vs_error(pzErr, "%s", sqlite3_errstr(rc));
  vs_config_free(pCfg);
  table_free(pTab);
  return rc;
}

static int vs_create(sqlite3 *db, void *pAux, int argc, const char *const *argv, sqlite3_vtab **ppVtab,
                     char **pzErr) {
  (void)pAux;
  return connect_common(db, argc, argv, 1, ppVtab, pzErr);
}

static int vs_connect(sqlite3 *db, void *pAux, int argc, const char *const *argv, sqlite3_vtab **ppVtab,
                      char **pzErr) {
  (void)pAux;
  return connect_common(db, argc, argv, 0, ppVtab, pzErr);
}

static int vs_disconnect(sqlite3_vtab *pVtab) {
  table_free((VsTable *)pVtab);
  return SQLITE_OK;
}

static int vs_destroy(sqlite3_vtab *pVtab) {
  VsTable *pTab = (VsTable *)pVtab;
  int rc = vs_storage_drop(pTab->pStore, &pVtab->zErrMsg);
  if (rc == SQLITE_OK) table_free(pTab);
  return rc;
}

static int vs_rename(sqlite3_vtab *pVtab, const char *zNew) {
  VsTable *pTab = (VsTable *)pVtab;
  int rc = vs_storage_rename(pTab->pStore, zNew, &pVtab->zErrMsg);
  if (rc == SQLITE_OK) rc = vs_config_set_string(&pTab->pCfg->zName, zNew);
  return rc;
}

static int vs_shadow_name(const char *zSuffix) {
  for (int i = 0; vs_shadow_suffixes[i]; i++) {
    if (sqlite3_stricmp(zSuffix, vs_shadow_suffixes[i]) == 0) return 1;
  }
  return 0;
}

/**************************************************************************************************
** Transactions.
*/

/* In defensive mode ordinary SQL may not write shadow tables. A trigger on one of them (left in the file by whoever
** wrote it: defensive mode only stops new ones that write shadow tables) would still run ordinary SQL each time
** vecstore writes that table, with every shadow table writable. So with SQLITE_DBCONFIG_DEFENSIVE on, a write
** transaction on a table whose shadow tables carry a trigger is refused, naming the trigger. */
static int check_shadow_triggers(VsTable *pTab) {
  int bDefensive = 0;
  sqlite3_db_config(pTab->db, SQLITE_DBCONFIG_DEFENSIVE, -1, &bDefensive);
  if (!bDefensive) return SQLITE_OK;
  const char *zName = pTab->pCfg->zName;
  char *zSql = sqlite3_mprintf("SELECT name, tbl_name FROM \"%w\".sqlite_schema WHERE type = 'trigger' AND tbl_name "
                               "IN ('%q_config', '%q_docs', '%q_vectors', '%q_log', '%q_snapshot') UNION ALL "
                               "SELECT name, tbl_name FROM temp.sqlite_schema WHERE type = 'trigger' AND tbl_name "
                               "IN ('%q_config', '%q_docs', '%q_vectors', '%q_log', '%q_snapshot') LIMIT 1",
                               pTab->pCfg->zDb, zName, zName, zName, zName, zName, zName, zName, zName, zName, zName);
  sqlite3_stmt *pStmt = 0;
  int rc = zSql ? sqlite3_prepare_v2(pTab->db, zSql, -1, &pStmt, 0) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  if (rc == SQLITE_OK && sqlite3_step(pStmt) == SQLITE_ROW) {
    vs_error(&pTab->base.zErrMsg, "trigger '%s' on shadow table %s: in defensive mode vecstore does not write shadow "
             "tables that carry triggers (drop the trigger with defensive mode off)", sqlite3_column_text(pStmt, 0),
             sqlite3_column_text(pStmt, 1));
    rc = SQLITE_ERROR;
  }
  int rc2 = sqlite3_finalize(pStmt);
  return rc == SQLITE_OK ? rc2 : rc;
}

static int vs_begin(sqlite3_vtab *pVtab) {
  int rc = check_shadow_triggers((VsTable *)pVtab);
  return rc == SQLITE_OK ? vs_sync_begin((VsTable *)pVtab) : rc;
}
static int vs_sync(sqlite3_vtab *pVtab) { return vs_sync_commit((VsTable *)pVtab); }

static int vs_commit(sqlite3_vtab *pVtab) {
  vs_sync_finish((VsTable *)pVtab, 1);
  return SQLITE_OK;
}

static int vs_rollback(sqlite3_vtab *pVtab) {
  vs_sync_finish((VsTable *)pVtab, 0);
  return SQLITE_OK;
}

static int vs_savepoint(sqlite3_vtab *pVtab, int iLevel) {
  return vs_pending_savepoint(&((VsTable *)pVtab)->pending, iLevel);
}

static int vs_release(sqlite3_vtab *pVtab, int iLevel) {
  vs_pending_release(&((VsTable *)pVtab)->pending, iLevel);
  return SQLITE_OK;
}

static int vs_rollback_to(sqlite3_vtab *pVtab, int iLevel) {
  return vs_sync_rollback_to((VsTable *)pVtab, iLevel);
}

static sqlite3_module vs_module = {
    /* iVersion      */ 3,
    /* xCreate       */ vs_create,
    /* xConnect      */ vs_connect,
    /* xBestIndex    */ vs_best_index,
    /* xDisconnect   */ vs_disconnect,
    /* xDestroy      */ vs_destroy,
    /* xOpen         */ vs_cursor_open,
    /* xClose        */ vs_cursor_close,
    /* xFilter       */ vs_cursor_filter,
    /* xNext         */ vs_cursor_next,
    /* xEof          */ vs_cursor_eof,
    /* xColumn       */ vs_cursor_column,
    /* xRowid        */ vs_cursor_rowid,
    /* xUpdate       */ vs_write,
    /* xBegin        */ vs_begin,
    /* xSync         */ vs_sync,
    /* xCommit       */ vs_commit,
    /* xRollback     */ vs_rollback,
    /* xFindFunction */ vs_find_function,
    /* xRename       */ vs_rename,
    /* xSavepoint    */ vs_savepoint,
    /* xRelease      */ vs_release,
    /* xRollbackTo   */ vs_rollback_to,
    /* xShadowName   */ vs_shadow_name,
};

int vs_vtab_register(sqlite3 *db) { return sqlite3_create_module_v2(db, "vecstore", &vs_module, 0, 0); }
