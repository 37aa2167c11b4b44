/*
** vtab.c: the vecstore virtual table module.
**
** Columns, in declaration order: id, content, metadata, embedding, the declared metadata columns, then the hidden
** distance, score, k, fetch_k, lambda_mult, search_params and a column named like the table (commands and text
** queries, as in FTS5). The COL_* values below are column kinds; col_kind() maps a column number to its kind.
*/
#include "vecstore_int.h"

#include <math.h>

enum {
  COL_ID,
  COL_CONTENT,
  COL_METADATA,
  COL_EMBEDDING,
  COL_DISTANCE,
  COL_SCORE,
  COL_K,
  COL_FETCH_K,
  COL_LAMBDA,
  COL_PARAMS,
  COL_TABLE,
  COL_COUNT,
  COL_DECLARED = COL_COUNT /* a declared metadata column */
};

/* The kind of column iCol (-1: rowid); *piDecl is the declared column's index for COL_DECLARED. */
static int col_kind(const VsTable *pTab, int iCol, int *piDecl) {
  int nCol = pTab->pCfg->nCol;
  if (iCol < COL_DISTANCE) return iCol;
  if (iCol < COL_DISTANCE + nCol) {
    if (piDecl) *piDecl = iCol - COL_DISTANCE;
    return COL_DECLARED;
  }
  return iCol - nCol;
}

/*
** Query plans. idxNum is the plan; idxStr has one character per argv value xFilter receives, saying what it is:
**
**   idxNum  VS_PLAN_SCAN   every row in rowid order (distance and score NULL)
**           VS_PLAN_ROWID  the row whose rowid = argv 'r'
**           VS_PLAN_ID     the row whose id = argv 'i'
**           VS_PLAN_KNN    rows in increasing distance from argv 'M' (a vector) or 'T' (text to embed)
**
**   idxStr  'M' embedding MATCH vector     'T' <table> MATCH text      'k' k = N
**           'L' LIMIT N                    'O' OFFSET N                'f' fetch_k = N
**           'l' lambda_mult = x            'p' search_params = '...'   'r' rowid =    'i' id =
**           with MATCH, the rows to search among (exactly): 'R' rowid IN (...) 'S' rowid = ?
**                                                            'I' id IN (...)    'J' id = ?
**
** k, fetch_k, lambda_mult and search_params are consumed whatever the plan so that SQLite never compares
** them with the hidden columns. LIMIT/OFFSET are taken only when every other constraint is consumed, so the
** row cap they imply can never cut a result SQLite still filters.
*/
#define VS_PLAN_SCAN 0
#define VS_PLAN_ROWID 1
#define VS_PLAN_ID 2
#define VS_PLAN_KNN 3

#define VS_DEFAULT_BATCH 16

typedef struct VsCursor {
  sqlite3_vtab_cursor base;
  int ePlan;
  int bEof;
  i64 iRowid;
  /* document rows: the scan/point statement, or a by-rowid fetch for KNN rows */
  sqlite3_stmt *pDoc;
  VsCursorStmt eDoc;
  int bDocOnRow; /* pDoc is positioned on iRowid */
  sqlite3_stmt *pVec;
  /* KNN */
  VsSearch *pSearch;
  double rDist;
  i64 nCap;     /* rows the table may still produce, -1 for no cap */
  i64 nK;       /* k as given, -1 if none */
  i64 nFetchK;  /* -1 if none */
  double rLambda;
  int bLambda;
  char *zParams;
} VsCursor;

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
  vs_index_free(pTab->pIdx);
  vs_pending_clear(&pTab->pending);
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
** Planning.
*/

static int vs_best_index(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo) {
  VsTable *pTab = (VsTable *)pVtab;
  char azPlan[16];
  int nArg = 0;
  int iMatch = -1, iRowidEq = -1, iIdEq = -1, iLimit = -1, iOffset = -1;
  int bMatchUnusable = 0, bOtherUnconsumed = 0, bTextMatch = 0;
  int aHidden[COL_COUNT];
  for (int i = 0; i < COL_COUNT; i++) aHidden[i] = -1;

  for (int i = 0; i < pInfo->nConstraint; i++) {
    const struct sqlite3_index_constraint *pC = &pInfo->aConstraint[i];
    int eKind = pC->iColumn < 0 ? -1 : col_kind(pTab, pC->iColumn, 0);
    int bMatch = pC->op == SQLITE_INDEX_CONSTRAINT_MATCH && (eKind == COL_EMBEDDING || eKind == COL_TABLE);
    if (!pC->usable) {
      if (bMatch) bMatchUnusable = 1;
      continue;
    }
    if (bMatch) {
      if (iMatch < 0) {
        iMatch = i;
        bTextMatch = eKind == COL_TABLE;
      }
      continue;
    }
    if (pC->op == SQLITE_INDEX_CONSTRAINT_LIMIT) {
      iLimit = i;
      continue;
    }
    if (pC->op == SQLITE_INDEX_CONSTRAINT_OFFSET) {
      iOffset = i;
      continue;
    }
    if (pC->op == SQLITE_INDEX_CONSTRAINT_EQ) {
      if (eKind >= COL_K && eKind <= COL_PARAMS) {
        if (aHidden[eKind] < 0) aHidden[eKind] = i;
        continue;
      }
      if (eKind == -1 && iRowidEq < 0) {
        iRowidEq = i;
        continue;
      }
      if (eKind == COL_ID && iIdEq < 0) {
        iIdEq = i;
        continue;
      }
    }
    bOtherUnconsumed = 1;
  }
  if (iMatch < 0 && bMatchUnusable) return SQLITE_CONSTRAINT; /* wait for a plan where MATCH is usable */

  int ePlan = VS_PLAN_SCAN;
  double rCost = 1e6;
  i64 nRows = 1000000;
  if (iMatch >= 0) {
    ePlan = VS_PLAN_KNN;
    azPlan[nArg] = bTextMatch ? 'T' : 'M';
    pInfo->aConstraintUsage[iMatch].argvIndex = ++nArg;
    pInfo->aConstraintUsage[iMatch].omit = 1;
    rCost = 10;
    nRows = 10;
    /* rowid / id equality or IN: search only among those rows. IN lists come whole (sqlite3_vtab_in). */
    int iAmong = iRowidEq >= 0 ? iRowidEq : iIdEq;
    if (iAmong >= 0) {
      int bIn = sqlite3_vtab_in(pInfo, iAmong, -1);
      if (bIn) sqlite3_vtab_in(pInfo, iAmong, 1);
      azPlan[nArg] = iAmong == iRowidEq ? (bIn ? 'R' : 'S') : (bIn ? 'I' : 'J');
      pInfo->aConstraintUsage[iAmong].argvIndex = ++nArg;
      pInfo->aConstraintUsage[iAmong].omit = 1;
      rCost = 5;
    }
    if (iRowidEq >= 0 && iIdEq >= 0) bOtherUnconsumed = 1; /* id left to SQLite */
  } else if (iRowidEq >= 0) {
    ePlan = VS_PLAN_ROWID;
    azPlan[nArg] = 'r';
    pInfo->aConstraintUsage[iRowidEq].argvIndex = ++nArg;
    pInfo->aConstraintUsage[iRowidEq].omit = 1;
    pInfo->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
    rCost = 1;
    nRows = 1;
    if (iIdEq >= 0) bOtherUnconsumed = 1;
  } else if (iIdEq >= 0) {
    ePlan = VS_PLAN_ID;
    azPlan[nArg] = 'i';
    pInfo->aConstraintUsage[iIdEq].argvIndex = ++nArg;
    pInfo->aConstraintUsage[iIdEq].omit = 1;
    pInfo->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
    rCost = 2;
    nRows = 1;
  }
  static const char acHidden[COL_COUNT] = {[COL_K] = 'k', [COL_FETCH_K] = 'f', [COL_LAMBDA] = 'l', [COL_PARAMS] = 'p'};
  for (int c = COL_K; c <= COL_PARAMS; c++) {
    if (aHidden[c] < 0) continue;
    azPlan[nArg] = acHidden[c];
    pInfo->aConstraintUsage[aHidden[c]].argvIndex = ++nArg;
    pInfo->aConstraintUsage[aHidden[c]].omit = 1;
  }
  if (iLimit >= 0 && !bOtherUnconsumed) {
    azPlan[nArg] = 'L';
    pInfo->aConstraintUsage[iLimit].argvIndex = ++nArg;
    if (iOffset >= 0) {
      azPlan[nArg] = 'O';
      pInfo->aConstraintUsage[iOffset].argvIndex = ++nArg;
    }
  }
  azPlan[nArg] = 0;

  /* Ordering: KNN rows come by distance (score descending is the same order), scans by rowid. */
  if (pInfo->nOrderBy == 1) {
    const struct sqlite3_index_orderby *pO = &pInfo->aOrderBy[0];
    int eKind = pO->iColumn < 0 ? -1 : col_kind(pTab, pO->iColumn, 0);
    if (ePlan == VS_PLAN_KNN && ((eKind == COL_DISTANCE && !pO->desc) || (eKind == COL_SCORE && pO->desc))) {
      pInfo->orderByConsumed = 1;
    }
    if (ePlan != VS_PLAN_KNN && pO->iColumn == -1 && !pO->desc) pInfo->orderByConsumed = 1;
  }
  pInfo->idxNum = ePlan;
  pInfo->idxStr = sqlite3_mprintf("%s", azPlan);
  pInfo->needToFreeIdxStr = 1;
  pInfo->estimatedCost = rCost;
  pInfo->estimatedRows = nRows;
  return pInfo->idxStr ? SQLITE_OK : SQLITE_NOMEM;
}

/**************************************************************************************************
** Cursors.
*/

static int vs_open(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCursor) {
  (void)pVtab;
  VsCursor *pCur = sqlite3_malloc(sizeof(*pCur));
  if (pCur == 0) return SQLITE_NOMEM;
  memset(pCur, 0, sizeof(*pCur));
  *ppCursor = &pCur->base;
  return SQLITE_OK;
}

static VsTable *cursor_table(VsCursor *pCur) { return (VsTable *)pCur->base.pVtab; }

static void cursor_reset(VsCursor *pCur) {
  VsStorage *pStore = cursor_table(pCur)->pStore;
  vs_storage_cursor_stmt_release(pStore, pCur->eDoc, pCur->pDoc);
  vs_storage_cursor_stmt_release(pStore, VS_CSTMT_VECTOR, pCur->pVec);
  pCur->pDoc = 0;
  pCur->pVec = 0;
  vs_search_free(pCur->pSearch);
  pCur->pSearch = 0;
  sqlite3_free(pCur->zParams);
  pCur->zParams = 0;
  pCur->bEof = 1;
  pCur->bDocOnRow = 0;
  pCur->nCap = -1;
  pCur->nK = -1;
  pCur->nFetchK = -1;
  pCur->bLambda = 0;
}

static int vs_close(sqlite3_vtab_cursor *pCursor) {
  VsCursor *pCur = (VsCursor *)pCursor;
  cursor_reset(pCur);
  sqlite3_free(pCur);
  return SQLITE_OK;
}

static int cursor_error(VsCursor *pCur, int rc) {
  VsTable *pTab = cursor_table(pCur);
  if (rc != SQLITE_OK && pTab->base.zErrMsg == 0) {
    vs_error(&pTab->base.zErrMsg, "%s", rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(pTab->db));
  }
  return rc;
}

/* Steps the scan/point statement to its next row. */
static int doc_step(VsCursor *pCur) {
  int rc = sqlite3_step(pCur->pDoc);
  if (rc == SQLITE_ROW) {
    pCur->iRowid = sqlite3_column_int64(pCur->pDoc, 0);
    pCur->bDocOnRow = 1;
    pCur->bEof = 0;
    return SQLITE_OK;
  }
  pCur->bEof = 1;
  return rc == SQLITE_DONE ? SQLITE_OK : cursor_error(pCur, rc);
}

/* Moves a KNN cursor to its next row, honouring the cap from k / LIMIT. */
static int knn_step(VsCursor *pCur) {
  if (pCur->nCap == 0) {
    pCur->bEof = 1;
    return SQLITE_OK;
  }
  int bEof = 0;
  int rc = vs_search_next(pCur->pSearch, &pCur->iRowid, &pCur->rDist, &bEof);
  if (rc != SQLITE_OK) return cursor_error(pCur, rc);
  pCur->bEof = bEof;
  pCur->bDocOnRow = 0;
  if (!bEof && pCur->nCap > 0) pCur->nCap--;
  return SQLITE_OK;
}

/* An integer argument of a hidden column (k, fetch_k) or LIMIT: a non-negative integer. */
static int integer_arg(VsTable *pTab, sqlite3_value *pVal, const char *zName, i64 *piOut) {
  int eType = sqlite3_value_numeric_type(pVal);
  double r = sqlite3_value_double(pVal);
  if (eType == SQLITE_INTEGER || (eType == SQLITE_FLOAT && r == floor(r) && fabs(r) < 9e18)) {
    i64 v = sqlite3_value_int64(pVal);
    if (v >= 0) {
      *piOut = v;
      return SQLITE_OK;
    }
  }
  const char *zText = (const char *)sqlite3_value_text(pVal);
  vs_error(&pTab->base.zErrMsg, "%s must be a non-negative integer, received '%s'", zName, zText ? zText : "NULL");
  return SQLITE_ERROR;
}

/* Adds the rowid that the value pVal names (a rowid for 'R'/'S', an id for 'I'/'J') to pSet, if any. */
static int among_add(VsTable *pTab, sqlite3_value *pVal, char cKind, VsI64Map *pSet) {
  i64 iRowid = 0;
  if (cKind == 'R' || cKind == 'S') {
    int eType = sqlite3_value_numeric_type(pVal);
    if (eType != SQLITE_INTEGER) return SQLITE_OK; /* no row has a non-integer rowid */
    iRowid = sqlite3_value_int64(pVal);
  } else {
    int bFound = 0;
    const char *zId = (const char *)sqlite3_value_text(pVal);
    if (zId == 0) return SQLITE_OK;
    int rc = vs_storage_doc_rowid_of_id(pTab->pStore, zId, &iRowid, &bFound);
    if (rc != SQLITE_OK || !bFound) return rc;
  }
  return vs_i64map_put(pSet, iRowid, 1);
}

/* Starts an exact search among the rows named by an IN list or a single value. */
static int search_among(VsTable *pTab, const float *aQuery, sqlite3_value *pArg, char cKind, VsSearch **pp) {
  VsI64Map set;
  vs_i64map_init(&set);
  int rc = SQLITE_OK;
  if (cKind == 'R' || cKind == 'I') {
    sqlite3_value *pVal = 0;
    int rcIn;
    for (rcIn = sqlite3_vtab_in_first(pArg, &pVal); rc == SQLITE_OK && rcIn == SQLITE_OK && pVal;
         rcIn = sqlite3_vtab_in_next(pArg, &pVal)) {
      rc = among_add(pTab, pVal, cKind, &set);
    }
    if (rc == SQLITE_OK && rcIn != SQLITE_OK && rcIn != SQLITE_DONE) rc = rcIn;
  } else {
    rc = among_add(pTab, pArg, cKind, &set);
  }
  i64 *aRowid = rc == SQLITE_OK ? sqlite3_malloc64((sqlite3_uint64)(set.nUsed + 1) * sizeof(i64)) : 0;
  if (rc == SQLITE_OK && aRowid == 0) rc = SQLITE_NOMEM;
  i64 n = 0;
  for (i64 i = 0; rc == SQLITE_OK && i < set.nSlot; i++) {
    if (set.aUsed[i] == 1) aRowid[n++] = set.aKey[i];
  }
  if (rc == SQLITE_OK) rc = vs_search_start_among(pTab, aQuery, aRowid, n, pp);
  sqlite3_free(aRowid);
  vs_i64map_clear(&set);
  return rc;
}

static int vs_filter(sqlite3_vtab_cursor *pCursor, int idxNum, const char *idxStr, int argc, sqlite3_value **argv) {
  VsCursor *pCur = (VsCursor *)pCursor;
  VsTable *pTab = cursor_table(pCur);
  VsStorage *pStore = pTab->pStore;
  cursor_reset(pCur);
  pCur->ePlan = idxNum;
  sqlite3_value *pQuery = 0;
  sqlite3_value *pKey = 0;
  sqlite3_value *pAmong = 0;
  char cAmong = 0;
  int bText = 0;
  i64 nLimit = -1, nOffset = 0;
  int rc = SQLITE_OK;

  for (int i = 0; rc == SQLITE_OK && i < argc && idxStr[i]; i++) {
    switch (idxStr[i]) {
      case 'M':
      case 'T':
        pQuery = argv[i];
        bText = idxStr[i] == 'T';
        break;
      case 'r':
      case 'i':
        pKey = argv[i];
        break;
      case 'R':
      case 'S':
      case 'I':
      case 'J':
        pAmong = argv[i];
        cAmong = idxStr[i];
        break;
      case 'k':
        rc = integer_arg(pTab, argv[i], "k", &pCur->nK);
        break;
      case 'f':
        rc = integer_arg(pTab, argv[i], "fetch_k", &pCur->nFetchK);
        break;
      case 'L':
        rc = integer_arg(pTab, argv[i], "LIMIT", &nLimit);
        break;
      case 'O':
        rc = integer_arg(pTab, argv[i], "OFFSET", &nOffset);
        break;
      case 'l':
        pCur->rLambda = sqlite3_value_double(argv[i]);
        pCur->bLambda = 1;
        break;
      case 'p':
        if (sqlite3_value_type(argv[i]) != SQLITE_NULL) {
          pCur->zParams = sqlite3_mprintf("%s", (const char *)sqlite3_value_text(argv[i]));
          if (pCur->zParams == 0) rc = SQLITE_NOMEM;
        }
        break;
    }
  }
  if (rc != SQLITE_OK) return rc;
  if (nLimit >= 0) pCur->nCap = nLimit + nOffset;
  if (pCur->nK >= 0 && (pCur->nCap < 0 || pCur->nK < pCur->nCap)) pCur->nCap = pCur->nK;

  if (idxNum != VS_PLAN_KNN) {
    if (pCur->nFetchK >= 0 || pCur->bLambda || pCur->zParams) {
      vs_error(&pTab->base.zErrMsg, "fetch_k, lambda_mult and search_params need a search: expected "
               "WHERE embedding MATCH <vector>, received none");
      return SQLITE_ERROR;
    }
    pCur->eDoc = idxNum == VS_PLAN_ROWID ? VS_CSTMT_ROWID : idxNum == VS_PLAN_ID ? VS_CSTMT_ID : VS_CSTMT_SCAN;
    rc = vs_storage_cursor_stmt(pStore, pCur->eDoc, &pCur->pDoc);
    if (rc != SQLITE_OK) return cursor_error(pCur, rc);
    if (pKey) sqlite3_bind_value(pCur->pDoc, 1, pKey);
    if (pCur->nCap == 0) return SQLITE_OK;
    rc = doc_step(pCur);
    if (rc == SQLITE_OK && !pCur->bEof && pCur->nCap > 0) pCur->nCap--;
    return rc;
  }

  /* KNN */
  float *aQuery = 0;
  int nDim = 0;
  if (bText) {
    rc = vs_embed_text(pTab, pQuery, &aQuery, &pTab->base.zErrMsg);
  } else {
    rc = vs_vector_parse(pQuery, pTab->pCfg->nDim, "query vector", &aQuery, &nDim, &pTab->base.zErrMsg);
  }
  if (rc == SQLITE_OK) {
    i64 nFirst = pCur->nCap >= 0 ? pCur->nCap : VS_DEFAULT_BATCH;
    if (nFirst < 1) nFirst = 1;
    if (pAmong) {
      rc = search_among(pTab, aQuery, pAmong, cAmong, &pCur->pSearch);
    } else {
      rc = vs_search_start(pTab, aQuery, nFirst, pCur->zParams, &pCur->pSearch);
    }
  }
  sqlite3_free(aQuery);
  if (rc != SQLITE_OK) return cursor_error(pCur, rc);
  pCur->eDoc = VS_CSTMT_ROWID;
  return knn_step(pCur);
}

static int vs_next(sqlite3_vtab_cursor *pCursor) {
  VsCursor *pCur = (VsCursor *)pCursor;
  if (pCur->ePlan == VS_PLAN_KNN) return knn_step(pCur);
  if (pCur->nCap == 0) {
    pCur->bEof = 1;
    return SQLITE_OK;
  }
  int rc = doc_step(pCur);
  if (rc == SQLITE_OK && !pCur->bEof && pCur->nCap > 0) pCur->nCap--;
  return rc;
}

static int vs_eof(sqlite3_vtab_cursor *pCursor) { return ((VsCursor *)pCursor)->bEof; }

static int vs_rowid(sqlite3_vtab_cursor *pCursor, sqlite_int64 *pRowid) {
  *pRowid = ((VsCursor *)pCursor)->iRowid;
  return SQLITE_OK;
}

/* Positions pDoc on the current row of a KNN cursor. Returns SQLITE_ROW, or SQLITE_DONE if it vanished. */
static int knn_fetch_doc(VsCursor *pCur) {
  if (pCur->bDocOnRow) return SQLITE_ROW;
  VsStorage *pStore = cursor_table(pCur)->pStore;
  if (pCur->pDoc == 0) {
    int rc = vs_storage_cursor_stmt(pStore, VS_CSTMT_ROWID, &pCur->pDoc);
    if (rc != SQLITE_OK) return rc;
  }
  sqlite3_reset(pCur->pDoc);
  sqlite3_bind_int64(pCur->pDoc, 1, pCur->iRowid);
  int rc = sqlite3_step(pCur->pDoc);
  if (rc == SQLITE_ROW) pCur->bDocOnRow = 1;
  return rc;
}

static int column_embedding(VsCursor *pCur, sqlite3_context *ctx) {
  VsStorage *pStore = cursor_table(pCur)->pStore;
  if (pCur->pVec == 0) {
    int rc = vs_storage_cursor_stmt(pStore, VS_CSTMT_VECTOR, &pCur->pVec);
    if (rc != SQLITE_OK) return rc;
  }
  sqlite3_reset(pCur->pVec);
  sqlite3_bind_int64(pCur->pVec, 1, pCur->iRowid);
  int rc = sqlite3_step(pCur->pVec);
  if (rc == SQLITE_ROW) {
    sqlite3_result_value(ctx, sqlite3_column_value(pCur->pVec, 0));
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_OK;
  }
  sqlite3_reset(pCur->pVec);
  return rc;
}

static int vs_column(sqlite3_vtab_cursor *pCursor, sqlite3_context *ctx, int iCol) {
  VsCursor *pCur = (VsCursor *)pCursor;
  VsTable *pTab = cursor_table(pCur);
  int bKnn = pCur->ePlan == VS_PLAN_KNN;
  int iDecl = 0;
  int eKind = col_kind(pTab, iCol, &iDecl);
  switch (eKind) {
    case COL_ID:
    case COL_CONTENT:
    case COL_METADATA:
    case COL_DECLARED: {
      int iStmtCol = eKind == COL_DECLARED ? 4 + iDecl : 1 + eKind - COL_ID;
      int rc = bKnn ? knn_fetch_doc(pCur) : SQLITE_ROW;
      if (rc == SQLITE_ROW) sqlite3_result_value(ctx, sqlite3_column_value(pCur->pDoc, iStmtCol));
      return (rc == SQLITE_ROW || rc == SQLITE_DONE) ? SQLITE_OK : cursor_error(pCur, rc);
    }
    case COL_EMBEDDING:
      if (sqlite3_vtab_nochange(ctx)) return SQLITE_OK;
      return cursor_error(pCur, column_embedding(pCur, ctx));
    case COL_DISTANCE:
      if (bKnn) sqlite3_result_double(ctx, pCur->rDist);
      return SQLITE_OK;
    case COL_SCORE:
      if (bKnn) sqlite3_result_double(ctx, vs_score(pCur->rDist, pTab->pCfg->eMetric));
      return SQLITE_OK;
    case COL_K:
      if (pCur->nK >= 0) sqlite3_result_int64(ctx, pCur->nK);
      return SQLITE_OK;
    case COL_FETCH_K:
      if (pCur->nFetchK >= 0) sqlite3_result_int64(ctx, pCur->nFetchK);
      return SQLITE_OK;
    case COL_LAMBDA:
      if (pCur->bLambda) sqlite3_result_double(ctx, pCur->rLambda);
      return SQLITE_OK;
    case COL_PARAMS:
      if (pCur->zParams) sqlite3_result_text(ctx, pCur->zParams, -1, SQLITE_TRANSIENT);
      return SQLITE_OK;
    default:
      return SQLITE_OK;
  }
}

/**************************************************************************************************
** Transactions.
*/

static int vs_begin(sqlite3_vtab *pVtab) { return vs_sync_begin((VsTable *)pVtab); }
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
    /* xOpen         */ vs_open,
    /* xClose        */ vs_close,
    /* xFilter       */ vs_filter,
    /* xNext         */ vs_next,
    /* xEof          */ vs_eof,
    /* xColumn       */ vs_column,
    /* xRowid        */ vs_rowid,
    /* xUpdate       */ vs_write,
    /* xBegin        */ vs_begin,
    /* xSync         */ vs_sync,
    /* xCommit       */ vs_commit,
    /* xRollback     */ vs_rollback,
    /* xFindFunction */ 0,
    /* xRename       */ vs_rename,
    /* xSavepoint    */ vs_savepoint,
    /* xRelease      */ vs_release,
    /* xRollbackTo   */ vs_rollback_to,
    /* xShadowName   */ vs_shadow_name,
};

int vs_vtab_register(sqlite3 *db) { return sqlite3_create_module_v2(db, "vecstore", &vs_module, 0, 0); }
