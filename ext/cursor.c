/*
** cursor.c: reading a vecstore table (xOpen, xFilter, xNext, xEof, xColumn, xRowid, xClose).
**
** Scans and point lookups step a statement on the docs table. Searches (MATCH) step a VsSearch stream
** (search.c) and fetch each row's document by rowid when a column is read. Conditions on declared metadata
** columns are SQL on the docs table: a scan runs them as its WHERE clause; a search counts the matching rows
** and, when they are few (at most max(256, 8 sqrt(k * rows)), 4 sqrt(k * rows) when the vectors must be read
** from the vectors table, at least 1/16 of the rows for Flat), scores exactly those rows, else the index search
** itself skips the rows they rule out, tested on the declared columns held in memory (columns.c); either way k
** rows come back whenever k rows match.
** With lambda_mult the first fetch_k candidates are re-ranked by maximal marginal relevance (mmr.c).
*/
#include "vecstore_int.h"

#include <math.h>

#define VS_DEFAULT_BATCH 16
#define VS_MMR_DEFAULT_K 4
#define VS_MMR_DEFAULT_FETCH_K 20

enum { RADIUS_NONE, RADIUS_DIST_LT, RADIUS_DIST_LE, RADIUS_SCORE_GE, RADIUS_SCORE_GT };

typedef struct VsCursor {
  sqlite3_vtab_cursor base;
  int ePlan;
  int bEof;
  i64 iRowid;
  /* documents: the scan/point statement, or a by-rowid fetch for search rows */
  sqlite3_stmt *pDoc;
  VsCursorStmt eDoc;
  int bDocOwned; /* pDoc was prepared for this query (a filtered scan), not taken from the pool */
  int bDocOnRow; /* pDoc is positioned on iRowid */
  sqlite3_stmt *pVec;
  /* search */
  VsSearch *pSearch;
  double rDist;
  i64 nCap; /* rows the table may still produce, -1 for no cap */
  i64 nK;   /* k as given, -1 if none */
  i64 nFetchK;
  double rLambda;
  int bLambda;
  char *zParams;
  int eRadius;
  double rRadius;
  /* declared-column conditions: SQL and the values bound to ?2, ?3, ... */
  sqlite3_str *pWhere;
  sqlite3_value **apBind;
  int nBind;
  sqlite3_stmt *pCheck; /* SELECT 1 FROM docs WHERE rowid = ?1 AND (...), for candidate checks */
  VsCondList *pCond;    /* the same conditions, for the declared columns in memory */
  int bInMemory;        /* the stream's candidates are checked in memory (pTab->pColumns) where they can be */
  int bCheckSql;        /* the stream's candidates are checked with SQL (pCheck) */
} VsCursor;

static VsTable *cursor_table(VsCursor *pCur) { return (VsTable *)pCur->base.pVtab; }

int vs_cursor_open(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCursor) {
  (void)pVtab;
  VsCursor *pCur = sqlite3_malloc(sizeof(*pCur));
  if (pCur == 0) return SQLITE_NOMEM;
  memset(pCur, 0, sizeof(*pCur));
  pCur->bEof = 1;
  *ppCursor = &pCur->base;
  return SQLITE_OK;
}

static void cursor_reset(VsCursor *pCur) {
  VsStorage *pStore = cursor_table(pCur)->pStore;
  if (pCur->bDocOwned) {
    sqlite3_finalize(pCur->pDoc);
  } else {
    vs_storage_cursor_stmt_release(pStore, pCur->eDoc, pCur->pDoc);
  }
  vs_storage_cursor_stmt_release(pStore, VS_CSTMT_VECTOR, pCur->pVec);
  sqlite3_finalize(pCur->pCheck);
  vs_cond_free(pCur->pCond);
  vs_search_free(pCur->pSearch);
  sqlite3_free(pCur->zParams);
  sqlite3_free(sqlite3_str_finish(pCur->pWhere));
  for (int i = 0; i < pCur->nBind; i++) sqlite3_value_free(pCur->apBind[i]);
  sqlite3_free(pCur->apBind);
  sqlite3_vtab_cursor base = pCur->base;
  memset(pCur, 0, sizeof(*pCur));
  pCur->base = base;
  pCur->bEof = 1;
  pCur->nCap = pCur->nK = pCur->nFetchK = -1;
}

int vs_cursor_close(sqlite3_vtab_cursor *pCursor) {
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

/**************************************************************************************************
** Arguments.
*/

/* k, fetch_k, LIMIT, OFFSET: a non-negative integer (an integral real or numeric text will do). */
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

static int lambda_arg(VsCursor *pCur, sqlite3_value *pVal) {
  int eType = sqlite3_value_numeric_type(pVal);
  double r = sqlite3_value_double(pVal);
  if ((eType != SQLITE_INTEGER && eType != SQLITE_FLOAT) || !(r >= 0.0 && r <= 1.0)) {
    const char *zText = (const char *)sqlite3_value_text(pVal);
    vs_error(&cursor_table(pCur)->base.zErrMsg, "lambda_mult must be a number from 0 to 1, received '%s'",
             zText ? zText : "NULL");
    return SQLITE_ERROR;
  }
  pCur->rLambda = r;
  pCur->bLambda = 1;
  return SQLITE_OK;
}

/* Keeps a copy of pVal to bind later as the next ?N of the declared-column SQL; appends "?N" to the SQL. */
static int bind_later(VsCursor *pCur, sqlite3_value *pVal) {
  sqlite3_value **aNew = sqlite3_realloc64(pCur->apBind, (sqlite3_uint64)(pCur->nBind + 1) * sizeof(*aNew));
  if (aNew == 0) return SQLITE_NOMEM;
  pCur->apBind = aNew;
  pCur->apBind[pCur->nBind] = sqlite3_value_dup(pVal);
  if (pCur->apBind[pCur->nBind] == 0) return SQLITE_NOMEM;
  pCur->nBind++;
  sqlite3_str_appendf(pCur->pWhere, "?%d", pCur->nBind + 1);
  return SQLITE_OK;
}

/* Records one declared-column condition for the columns in memory: the value, none, or an IN list's values. */
static int add_memory_condition(VsCursor *pCur, int iCol, VsCondOp eOp, sqlite3_value *pVal) {
  VsColType eType = cursor_table(pCur)->pCfg->aCol[iCol].eType;
  if (eOp == VS_COND_ISNULL || eOp == VS_COND_NOTNULL) return vs_cond_add(&pCur->pCond, eType, iCol, eOp, 0, 0);
  if (eOp != VS_COND_IN) return vs_cond_add(&pCur->pCond, eType, iCol, eOp, &pVal, 1);
  sqlite3_value **apList = 0, *pItem = 0;
  int nList = 0, rc = SQLITE_OK;
  for (int rcIn = sqlite3_vtab_in_first(pVal, &pItem); rc == SQLITE_OK && rcIn == SQLITE_OK && pItem;
       rcIn = sqlite3_vtab_in_next(pVal, &pItem)) {
    sqlite3_value **aNew = sqlite3_realloc64(apList, (sqlite3_uint64)(nList + 1) * sizeof(*aNew));
    sqlite3_value *pCopy = aNew ? sqlite3_value_dup(pItem) : 0; /* an item lasts only until the next is read */
    if (aNew) apList = aNew;
    if (pCopy == 0) rc = SQLITE_NOMEM;
    else apList[nList++] = pCopy;
  }
  if (rc == SQLITE_OK) rc = vs_cond_add(&pCur->pCond, eType, iCol, eOp, apList, nList);
  for (int i = 0; i < nList; i++) sqlite3_value_free(apList[i]);
  sqlite3_free(apList);
  return rc;
}

/* Appends the SQL of one condition on declared column iCol (operator token zOp, value pVal) to the WHERE clause,
** and records it for the columns in memory. The operator tokens are in VsCondOp order. */
static int add_column_condition(VsCursor *pCur, int iCol, const char *zOp, sqlite3_value *pVal) {
  static const struct {
    const char *zOp;
    const char *zSql;
  } aOp[] = {{"eq", "="},  {"ne", "!="}, {"lt", "<"},     {"le", "<="},        {"gt", ">"},
             {"ge", ">="}, {"is", "IS"}, {"isnot", "IS NOT"}, {"isnull", "IS NULL"}, {"notnull", "IS NOT NULL"},
             {"in", "IN"}};
  VsTable *pTab = cursor_table(pCur);
  if (iCol < 0 || iCol >= pTab->pCfg->nCol) return SQLITE_INTERNAL;
  int iOp = 0;
  while (iOp < (int)(sizeof(aOp) / sizeof(aOp[0])) && strcmp(aOp[iOp].zOp, zOp) != 0) iOp++;
  if (iOp == (int)(sizeof(aOp) / sizeof(aOp[0]))) return SQLITE_INTERNAL;
  int rc = add_memory_condition(pCur, iCol, (VsCondOp)iOp, pVal);
  if (rc != SQLITE_OK) return rc;
  if (pCur->pWhere == 0) pCur->pWhere = sqlite3_str_new(0);
  else sqlite3_str_appendall(pCur->pWhere, " AND ");
  sqlite3_str_appendf(pCur->pWhere, "\"%w\" %s", pTab->pCfg->aCol[iCol].zName, aOp[iOp].zSql);
  if (strcmp(zOp, "isnull") == 0 || strcmp(zOp, "notnull") == 0) return SQLITE_OK;
  sqlite3_str_appendall(pCur->pWhere, " ");
  if (strcmp(zOp, "in") != 0) return bind_later(pCur, pVal);
  /* IN (...): every value of the list, bound one by one. */
  sqlite3_str_appendall(pCur->pWhere, "(");
  int nValue = 0;
  sqlite3_value *pItem = 0;
  for (int rcIn = sqlite3_vtab_in_first(pVal, &pItem); rc == SQLITE_OK && rcIn == SQLITE_OK && pItem;
       rcIn = sqlite3_vtab_in_next(pVal, &pItem)) {
    if (nValue++) sqlite3_str_appendall(pCur->pWhere, ", ");
    rc = bind_later(pCur, pItem);
  }
  if (nValue == 0) sqlite3_str_appendall(pCur->pWhere, "NULL"); /* x IN (NULL) matches nothing */
  sqlite3_str_appendall(pCur->pWhere, ")");
  return rc;
}

/* Prepares zTemplate with "{where}" replaced by the declared-column conditions and binds their values. */
static int prepare_filtered(VsCursor *pCur, const char *zBefore, const char *zAfter, sqlite3_stmt **pp) {
  VsTable *pTab = cursor_table(pCur);
  char *zSql = sqlite3_mprintf("%s(%s)%s", zBefore, sqlite3_str_value(pCur->pWhere), zAfter);
  if (zSql == 0) return SQLITE_NOMEM;
  int rc = vs_storage_prepare(pTab->pStore, zSql, pp);
  sqlite3_free(zSql);
  for (int i = 0; rc == SQLITE_OK && i < pCur->nBind; i++) rc = sqlite3_bind_value(*pp, i + 2, pCur->apBind[i]);
  return rc;
}

/**************************************************************************************************
** Searching.
*/

/* Adds the rowid that pVal names (a rowid for rowid-*, an id for id-*) to pSet, if there is such a row. */
static int among_add(VsTable *pTab, sqlite3_value *pVal, int bById, VsI64Map *pSet) {
  i64 iRowid = 0;
  if (!bById) {
    if (sqlite3_value_numeric_type(pVal) != SQLITE_INTEGER) return SQLITE_OK; /* no row has such a rowid */
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

static int set_to_array(const VsI64Map *pSet, i64 **paRowid, i64 *pn) {
  i64 *a = sqlite3_malloc64((sqlite3_uint64)(pSet->nUsed + 1) * sizeof(i64));
  if (a == 0) return SQLITE_NOMEM;
  i64 n = 0;
  for (i64 i = 0; i < pSet->nSlot; i++) {
    if (pSet->aUsed[i] == 1) a[n++] = pSet->aKey[i];
  }
  *paRowid = a;
  *pn = n;
  return SQLITE_OK;
}

/* Starts an exact search among the rows named by an IN list or a single value (token rowid-in etc.). */
static int search_among(VsTable *pTab, const float *aQuery, sqlite3_value *pArg, const char *zToken, VsSearch **pp) {
  int bById = zToken[0] == 'i';
  int bList = strcmp(zToken + strlen(zToken) - 2, "in") == 0;
  VsI64Map set;
  vs_i64map_init(&set);
  int rc = SQLITE_OK;
  if (bList) {
    sqlite3_value *pVal = 0;
    for (int rcIn = sqlite3_vtab_in_first(pArg, &pVal); rc == SQLITE_OK && rcIn == SQLITE_OK && pVal;
         rcIn = sqlite3_vtab_in_next(pArg, &pVal)) {
      rc = among_add(pTab, pVal, bById, &set);
    }
  } else {
    rc = among_add(pTab, pArg, bById, &set);
  }
  i64 *aRowid = 0, n = 0;
  if (rc == SQLITE_OK) rc = set_to_array(&set, &aRowid, &n);
  if (rc == SQLITE_OK) rc = vs_search_start_among(pTab, aQuery, aRowid, n, pp);
  sqlite3_free(aRowid);
  vs_i64map_clear(&set);
  return rc;
}

/* Does the row iRowid meet the declared-column conditions, checked with SQL (pCur->pCheck, prepared on first
** use)? 1, 0, or a negative SQLite error. */
static int row_passes(VsCursor *pCur, i64 iRowid) {
  if (pCur->pCheck == 0) {
    int rc = prepare_filtered(pCur, "SELECT 1 FROM {docs} WHERE rowid = ?1 AND ", "", &pCur->pCheck);
    if (rc != SQLITE_OK) return -rc;
  }
  sqlite3_bind_int64(pCur->pCheck, 1, iRowid);
  int rc = sqlite3_step(pCur->pCheck);
  sqlite3_reset(pCur->pCheck);
  if (rc == SQLITE_ROW) return 1;
  return rc == SQLITE_DONE ? 0 : -rc;
}

/* Can the row iRowid be checked in the declared columns in memory? Not when there are none (dropped by a rollback
** while this cursor was open), nor for a row the open transaction wrote (the copy holds the committed state). */
static int row_in_memory(VsCursor *pCur, i64 iRowid) {
  VsTable *pTab = cursor_table(pCur);
  i64 iDummy;
  if (pTab->pColumns == 0 || pCur->pCond == 0) return 0;
  return pTab->written.nUsed == 0 || !vs_i64map_get(&pTab->written, iRowid, &iDummy);
}

/* Does the row iRowid meet the declared-column conditions? In memory when it can be, else with SQL. 1, 0, or a
** negative SQLite error. */
static int row_matches(VsCursor *pCur, i64 iRowid) {
  if (row_in_memory(pCur, iRowid)) return vs_columns_test(cursor_table(pCur)->pColumns, pCur->pCond, iRowid);
  return row_passes(pCur, iRowid);
}

/* Selector inside the index search: the rows the columns in memory rule out. Rows it cannot judge are kept, for
** next_candidate to check with SQL. */
static int keep_in_memory(void *pCtx, i64 iRowid) {
  VsCursor *pCur = (VsCursor *)pCtx;
  return !row_in_memory(pCur, iRowid) || vs_columns_test(cursor_table(pCur)->pColumns, pCur->pCond, iRowid);
}

/* How many of VS_SAMPLE rows of the index, at fixed pseudo-random labels (the same ones for the same index, so
** a query takes the same path each time; not a stride, which periodic conditions could alias), meet the
** conditions: *pnHit of *pnLive live ones. */
#define VS_SAMPLE 128
static int sample_matches(VsCursor *pCur, i64 *pnHit, i64 *pnLive) {
  const VsIndex *pIdx = cursor_table(pCur)->pIdx;
  *pnHit = *pnLive = 0;
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < VS_SAMPLE && pIdx->nLabel > 0; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    i64 iRowid = pIdx->aRowid[x % (uint64_t)pIdx->nLabel];
    if (iRowid == VS_TOMBSTONE) continue;
    int r = row_matches(pCur, iRowid);
    if (r < 0) return -r;
    (*pnLive)++;
    *pnHit += r;
  }
  return SQLITE_OK;
}

/* The label bits of the cursor's conditions for the current index, when they can stand in for the conditions:
** the table's cached ones when they match, else built when the same conditions are searched a second time in a
** row (one test per label then, instead of one per candidate of every search). *pp NULL when there are none, or
** when the transaction has changes (the bits describe committed rows only). */
static int label_bits_for(VsCursor *pCur, VsLabelBits **pp) {
  VsTable *pTab = cursor_table(pCur);
  const VsIndex *pIdx = pTab->pIdx;
  *pp = 0;
  if (pTab->pColumns == 0 || pCur->pCond == 0 || !vs_pending_is_empty(&pTab->pending) || pTab->written.nUsed > 0) {
    return SQLITE_OK;
  }
  char *zKey = vs_cond_key(pCur->pCond);
  if (zKey == 0) return SQLITE_NOMEM;
  i64 iGen = 0, iLogSeq = 0;
  vs_columns_state(pTab->pColumns, &iGen, &iLogSeq);
  VsLabelBits *pOld = pTab->pBits;
  if (pOld && strcmp(pOld->zKey, zKey) == 0 && pOld->iStamp == pIdx->iStamp && pOld->iGen == iGen &&
      pOld->iLogSeq == iLogSeq && pOld->nLabel == pIdx->nLabel) {
    sqlite3_free(zKey);
    *pp = pOld;
    return SQLITE_OK;
  }
  if (pTab->zLastKey == 0 || strcmp(pTab->zLastKey, zKey) != 0) { /* first time: remember, do not build */
    sqlite3_free(pTab->zLastKey);
    pTab->zLastKey = zKey;
    return SQLITE_OK;
  }
  VsLabelBits *pNew = 0;
  int rc = vs_label_bits_build(pTab->pColumns, pCur->pCond, pIdx->aRowid, pIdx->nLabel, zKey, &pNew);
  if (rc != SQLITE_OK) return rc;
  pNew->iStamp = pIdx->iStamp;
  vs_label_bits_unref(pTab->pBits);
  pTab->pBits = pNew;
  *pp = pNew;
  return SQLITE_OK;
}

/* The rowids of the rows meeting the declared-column conditions, at most nLimit of them (through the columns'
** indexes): *paRowid (sqlite3_malloc'd) and *pnMatch. */
static int read_matches(VsCursor *pCur, i64 nLimit, i64 **paRowid, i64 *pnMatch) {
  sqlite3_stmt *pStmt = 0;
  i64 *aRowid = 0, nMatch = 0, nAlloc = 0;
  char *zAfter = sqlite3_mprintf(" LIMIT %lld", nLimit);
  int rc = zAfter ? prepare_filtered(pCur, "SELECT rowid FROM {docs} WHERE ", zAfter, &pStmt) : SQLITE_NOMEM;
  sqlite3_free(zAfter);
  while (rc == SQLITE_OK && sqlite3_step(pStmt) == SQLITE_ROW) {
    if (nMatch == nAlloc) {
      nAlloc = nAlloc ? nAlloc * 2 : 1024;
      i64 *aNew = sqlite3_realloc64(aRowid, (sqlite3_uint64)nAlloc * sizeof(i64));
      if (aNew == 0) {
        rc = SQLITE_NOMEM;
        break;
      }
      aRowid = aNew;
    }
    aRowid[nMatch++] = sqlite3_column_int64(pStmt, 0);
  }
  int rc2 = pStmt ? sqlite3_finalize(pStmt) : SQLITE_OK;
  if (rc == SQLITE_OK) rc = rc2;
  if (rc != SQLITE_OK) {
    sqlite3_free(aRowid);
    aRowid = 0;
  }
  *paRowid = aRowid;
  *pnMatch = nMatch;
  return rc;
}

/* Starts a search whose candidates are checked on the declared columns in memory, for conditions many rows meet
** (nHit of nLive sample rows, nHit 0 without a sample). The k-th match lies about as deep as the
** (k / selectivity)-th row of an unfiltered search, so the first batch is asked as deep as the sample predicts
** (16 k without a sample), twice that for HNSW. An approximate index checks inside its search (HNSW then searches
** with ef = that depth; IVF probes more lists until it finds that many matches); an exhaustive one checks its
** candidates after the scan (testing every row would cost a cache miss each), unless label bits make the test
** cheap. */
static int search_in_memory(VsCursor *pCur, const float *aQuery, i64 nWant, i64 nHit, i64 nLive) {
  VsTable *pTab = cursor_table(pCur);
  int rc = vs_sync_columns(pTab, &(VsColumns *){0});
  if (rc != SQLITE_OK) return rc;
  pCur->bInMemory = 1;
  if (nWant < 1) nWant = 1;
  i64 nProbe = 0, nList = 0;
  int bIvf = !pTab->pIdx->bStandIn && vs_faiss_ivf_probe(pTab->pIdx->pFaiss, pCur->zParams, &nProbe, &nList);
  int nDepth = bIvf ? 1 : 2;
  i64 nBatch = nWant > INT64_MAX / 16 ? INT64_MAX : nWant * 16;
  if (nHit > 0 && nWant < INT64_MAX / (2 * VS_SAMPLE)) {
    i64 nExpected = nDepth * nWant * nLive / nHit;
    if (nExpected < nBatch) nBatch = nExpected > 2 * nWant ? nExpected : 2 * nWant;
  }
  VsLabelBits *pBits = 0;
  rc = label_bits_for(pCur, &pBits);
  if (rc != SQLITE_OK) return rc;
  int bInside = !pTab->pIdx->bExact;
  return vs_search_start(pTab, aQuery, nBatch, pCur->zParams, bInside ? keep_in_memory : 0, pCur, pBits,
                         &pCur->pSearch);
}

/* Starts the search of a query with declared-column conditions: exactly among the matching rows when they are
** few, else the index search with the conditions checked on the declared columns in memory. */
static int search_filtered(VsCursor *pCur, const float *aQuery, i64 nFirst) {
  VsTable *pTab = cursor_table(pCur);
  int rc = vs_sync_read(pTab);
  if (rc != SQLITE_OK) return rc;
  double rRows = (double)vs_index_count(pTab->pIdx) + (double)pTab->pending.last.nUsed;
  i64 nWant = pCur->bLambda ? (pCur->nFetchK >= 0 ? pCur->nFetchK : VS_MMR_DEFAULT_FETCH_K) : nFirst;
  /* Scoring m matching rows exactly costs m index reads (about 0.2-0.4 us each with the SQL that finds them)
  ** when the index keeps full-precision vectors, else m reads from the vectors table (about 3 us each); an index
  ** search with the conditions inside costs about what an unfiltered one does while they keep a good share of
  ** the rows, but needs the columns in memory (read once per connection, then kept up to date from the log).
  ** Measured on 1M x 128 (k = 10): exact scoring wins up to a few times sqrt(k * rows) matches on an approximate
  ** index, and up to about 1/16 of the table on Flat. */
  double rRoot = sqrt((nWant < 1 ? 1.0 : (double)nWant) * rRows);
  i64 nExactMax = (i64)((vs_index_keeps_vectors(pTab->pIdx) ? 8 : 4) * rRoot);
  if (pTab->pIdx->bExact && nExactMax < (i64)(rRows / 16)) nExactMax = (i64)(rRows / 16);
  if (nExactMax < 256) nExactMax = 256;
  /* The columns in memory, when this connection already has them (kept up to date cheaply), serve the sample. */
  if (pTab->pColumns) rc = vs_sync_columns(pTab, &(VsColumns *){0});
  /* A condition that a sample shows most rows meet goes straight to the in-memory search (at 10% of 1M rows,
  ** reading the first nExactMax matches would cost more than the search): at least 6 hits in 128, and an estimate
  ** past twice the threshold. Otherwise the matches themselves decide. */
  i64 nHit = 0, nLive = 0;
  if (rc == SQLITE_OK && nExactMax * 4 < (i64)rRows && !pTab->bTestFilterInMemory) rc = sample_matches(pCur, &nHit, &nLive);
  if (rc != SQLITE_OK) return rc;
  int bBroad = pTab->bTestFilterInMemory || (nHit >= 6 && (double)nHit / (double)nLive * rRows > 2.0 * (double)nExactMax);
  if (!bBroad) {
    i64 *aRowid = 0, nMatch = 0;
    rc = read_matches(pCur, nExactMax + 1, &aRowid, &nMatch);
    if (rc == SQLITE_OK && nMatch <= nExactMax) rc = vs_search_start_among(pTab, aQuery, aRowid, nMatch, &pCur->pSearch);
    sqlite3_free(aRowid);
    if (rc != SQLITE_OK || nMatch <= nExactMax) return rc; /* every row of an among search matches */
  }
  return search_in_memory(pCur, aQuery, nWant, nHit, nLive);
}

/* The next row of the search stream that meets the declared-column conditions (checked again here: rows the
** index search could not judge, and the transaction's own rows, are checked with SQL). */
static int next_candidate(VsCursor *pCur, i64 *piRowid, double *prDist, int *pbEof) {
  for (;;) {
    int rc = vs_search_next(pCur->pSearch, piRowid, prDist, pbEof);
    if (rc != SQLITE_OK || *pbEof) return rc;
    int r = pCur->bInMemory ? row_matches(pCur, *piRowid) : pCur->bCheckSql ? row_passes(pCur, *piRowid) : 1;
    if (r != 0) return r > 0 ? SQLITE_OK : -r;
  }
}

/* Replaces the search stream by its first fetch_k rows re-ranked by maximal marginal relevance; each row's
** distance is recomputed exactly from its stored vector. */
static int rerank_mmr(VsCursor *pCur, const float *aQuery) {
  VsTable *pTab = cursor_table(pCur);
  int nDim = pTab->pCfg->nDim;
  i64 nFetch = pCur->nFetchK >= 0 ? pCur->nFetchK : VS_MMR_DEFAULT_FETCH_K;
  i64 nPick = pCur->nK >= 0 ? pCur->nK : VS_MMR_DEFAULT_K;
  if (nFetch > 100000) nFetch = 100000;
  i64 *aRowid = sqlite3_malloc64((sqlite3_uint64)(nFetch + 1) * sizeof(i64));
  float *aVec = sqlite3_malloc64((sqlite3_uint64)(nFetch + 1) * nDim * sizeof(float));
  int *aPick = sqlite3_malloc64((sqlite3_uint64)(nFetch + 1) * sizeof(int));
  i64 *aPickRowid = sqlite3_malloc64((sqlite3_uint64)(nFetch + 1) * sizeof(i64));
  double *aPickDist = sqlite3_malloc64((sqlite3_uint64)(nFetch + 1) * sizeof(double));
  int rc = (aRowid && aVec && aPick && aPickRowid && aPickDist) ? SQLITE_OK : SQLITE_NOMEM;
  i64 n = 0;
  while (rc == SQLITE_OK && n < nFetch) {
    int bEof = 0;
    double rDist;
    rc = next_candidate(pCur, &aRowid[n], &rDist, &bEof);
    if (rc != SQLITE_OK || bEof) break;
    rc = vs_storage_vector_get(pTab->pStore, aRowid[n], aVec + n * nDim, &pTab->base.zErrMsg);
    if (rc == SQLITE_OK) n++;
    else if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  int nPicked = 0;
  if (rc == SQLITE_OK) rc = vs_mmr_select(aQuery, aVec, (int)n, nDim, (int)(nPick < n ? nPick : n), pCur->rLambda, aPick, &nPicked);
  for (int i = 0; rc == SQLITE_OK && i < nPicked; i++) {
    aPickRowid[i] = aRowid[aPick[i]];
    aPickDist[i] = vs_distance(aQuery, aVec + (i64)aPick[i] * nDim, nDim, pTab->pCfg->eMetric);
  }
  if (rc == SQLITE_OK) {
    vs_search_free(pCur->pSearch);
    pCur->pSearch = 0;
    pCur->bInMemory = pCur->bCheckSql = 0; /* the picks were checked as candidates */
    rc = vs_search_from_list(pTab, aPickRowid, aPickDist, nPicked, &pCur->pSearch);
  }
  sqlite3_free(aRowid);
  sqlite3_free(aVec);
  sqlite3_free(aPick);
  sqlite3_free(aPickRowid);
  sqlite3_free(aPickDist);
  return rc;
}

/* Does a row at distance rDist lie within the radius of the query? */
static int within_radius(const VsCursor *pCur, double rDist) {
  VsMetric eMetric = cursor_table((VsCursor *)pCur)->pCfg->eMetric;
  switch (pCur->eRadius) {
    case RADIUS_DIST_LT: return rDist < pCur->rRadius;
    case RADIUS_DIST_LE: return rDist <= pCur->rRadius;
    case RADIUS_SCORE_GE: return vs_score(rDist, eMetric) >= pCur->rRadius;
    case RADIUS_SCORE_GT: return vs_score(rDist, eMetric) > pCur->rRadius;
    default: return 1;
  }
}

/* Moves a search cursor to its next row, honouring the cap from k / LIMIT / fetch_k and the radius. */
static int knn_step(VsCursor *pCur) {
  for (;;) {
    if (pCur->nCap == 0) {
      pCur->bEof = 1;
      return SQLITE_OK;
    }
    int bEof = 0;
    int rc = next_candidate(pCur, &pCur->iRowid, &pCur->rDist, &bEof);
    if (rc != SQLITE_OK) return cursor_error(pCur, rc);
    pCur->bEof = bEof;
    pCur->bDocOnRow = 0;
    if (bEof) return SQLITE_OK;
    if (!within_radius(pCur, pCur->rDist)) {
      if (pCur->bLambda) continue; /* MMR order is not distance order: a filter, not a stop */
      pCur->bEof = 1;
      return SQLITE_OK;
    }
    if (pCur->nCap > 0) pCur->nCap--;
    return SQLITE_OK;
  }
}

/* Steps the scan/point statement to its next row. */
static int doc_step(VsCursor *pCur) {
  if (pCur->nCap == 0) {
    pCur->bEof = 1;
    return SQLITE_OK;
  }
  int rc = sqlite3_step(pCur->pDoc);
  if (rc == SQLITE_ROW) {
    pCur->iRowid = sqlite3_column_int64(pCur->pDoc, 0);
    pCur->bDocOnRow = 1;
    pCur->bEof = 0;
    if (pCur->nCap > 0) pCur->nCap--;
    return SQLITE_OK;
  }
  pCur->bEof = 1;
  return rc == SQLITE_DONE ? SQLITE_OK : cursor_error(pCur, rc);
}

/* Moves *pz to the next token of an idxStr (plan.c) and sets *pzTok and *pnTok to it. A token runs to the next
** space outside double quotes (a quoted part, with "" for a quote character, may hold spaces). Returns 0 at the
** end of the string. */
static int next_token(const char **pz, const char **pzTok, int *pnTok) {
  const char *z = *pz;
  while (*z == ' ') z++;
  if (*z == 0) return 0;
  const char *zStart = z;
  int bQuoted = 0;
  for (; *z && (bQuoted || *z != ' '); z++) {
    if (*z == '"') bQuoted = !bQuoted; /* "" inside quotes closes and reopens at once */
  }
  *pzTok = zStart;
  *pnTok = (int)(z - zStart);
  *pz = z;
  return 1;
}

/* The column named by the first token of idxStr that is a search-only condition (k, fetch_k, lambda, params,
** distance, score), or 0 if there is none; *pzHint gets what to write instead, if anything ("" if not). Plans
** without MATCH take such conditions only so that xFilter can report them. */
static const char *search_only_column(const char *idxStr, const char **pzHint) {
  static const struct {
    const char *zToken;
    const char *zColumn;
    const char *zHint;
  } aSearchOnly[] = {{"k", "k", "; to cap a plain scan, write LIMIT instead of k"},
                     {"fetch_k", "fetch_k", ""},
                     {"lambda", "lambda_mult", ""},
                     {"params", "search_params", ""},
                     {"distance", "distance", "; distance and score exist only in a search (NULL in a scan)"},
                     {"score", "score", "; distance and score exist only in a search (NULL in a scan)"}};
  const char *z = idxStr ? idxStr : "";
  const char *zTok;
  int nTok;
  while (next_token(&z, &zTok, &nTok)) {
    for (size_t i = 0; i < sizeof(aSearchOnly) / sizeof(aSearchOnly[0]); i++) {
      if ((int)strlen(aSearchOnly[i].zToken) == nTok && memcmp(zTok, aSearchOnly[i].zToken, (size_t)nTok) == 0) {
        *pzHint = aSearchOnly[i].zHint;
        return aSearchOnly[i].zColumn;
      }
    }
  }
  return 0;
}

/* The declared column of a <name>:<op> token zTok[0..nTok) (plan.c): the name before the last ':', bare or
** double-quoted with "" for a quote. Sets *piCol (-1 if no column has that name) and copies the op (at most
** nOp - 1 bytes) to zOp. SQLITE_OK or SQLITE_NOMEM. */
static int column_token(const VsTable *pTab, const char *zTok, int nTok, int *piCol, char *zOp, int nOp) {
  int iColon = nTok - 1;
  while (iColon > 0 && zTok[iColon] != ':') iColon--;
  sqlite3_snprintf(nOp, zOp, "%.*s", nTok - iColon - 1, zTok + iColon + 1);
  char *zName = sqlite3_mprintf("%.*s", iColon, zTok);
  if (zName == 0) return SQLITE_NOMEM;
  int n = iColon;
  if (n >= 2 && zName[0] == '"' && zName[n - 1] == '"') { /* undo the quoting: drop the quotes, undouble "" */
    int j = 0;
    for (int i = 1; i < n - 1; i++) {
      zName[j++] = zName[i];
      if (zName[i] == '"' && zName[i + 1] == '"') i++;
    }
    zName[j] = 0;
  }
  *piCol = -1;
  for (int i = 0; i < pTab->pCfg->nCol && *piCol < 0; i++) {
    if (strcmp(pTab->pCfg->aCol[i].zName, zName) == 0) *piCol = i;
  }
  sqlite3_free(zName);
  return SQLITE_OK;
}

/* Decodes the argv values as the idxStr tokens name them (plan.c). */
static int read_arguments(VsCursor *pCur, const char *idxStr, int argc, sqlite3_value **argv, sqlite3_value **ppQuery,
                          int *pbText, sqlite3_value **ppKey, sqlite3_value **ppAmong, char *zAmong, i64 *pnLimit,
                          i64 *pnOffset) {
  VsTable *pTab = cursor_table(pCur);
  int rc = SQLITE_OK;
  const char *z = idxStr ? idxStr : "";
  const char *zTok = 0;
  int nTok = 0;
  for (int i = 0; rc == SQLITE_OK && i < argc && next_token(&z, &zTok, &nTok); i++) {
    sqlite3_value *pVal = argv[i];
    if (memchr(zTok, ':', (size_t)nTok)) { /* a declared column: <name>:<op> */
      char zOp[16];
      int iCol = -1;
      rc = column_token(pTab, zTok, nTok, &iCol, zOp, (int)sizeof(zOp));
      if (rc == SQLITE_OK) rc = add_column_condition(pCur, iCol, zOp, pVal);
      continue;
    }
    char zToken[32];
    sqlite3_snprintf(sizeof(zToken), zToken, "%.*s", nTok, zTok);
    if (strcmp(zToken, "match") == 0 || strcmp(zToken, "text") == 0) {
      *ppQuery = pVal;
      *pbText = zToken[0] == 't';
    } else if (strcmp(zToken, "rowid") == 0 || strcmp(zToken, "id") == 0) {
      *ppKey = pVal;
    } else if (strncmp(zToken, "rowid-", 6) == 0 || strncmp(zToken, "id-", 3) == 0) {
      *ppAmong = pVal;
      sqlite3_snprintf(16, zAmong, "%s", zToken);
    } else if (strcmp(zToken, "k") == 0) {
      rc = integer_arg(pTab, pVal, "k", &pCur->nK);
    } else if (strcmp(zToken, "fetch_k") == 0) {
      rc = integer_arg(pTab, pVal, "fetch_k", &pCur->nFetchK);
    } else if (strcmp(zToken, "limit") == 0) {
      rc = integer_arg(pTab, pVal, "LIMIT", pnLimit);
    } else if (strcmp(zToken, "offset") == 0) {
      rc = integer_arg(pTab, pVal, "OFFSET", pnOffset);
    } else if (strcmp(zToken, "lambda") == 0) {
      rc = lambda_arg(pCur, pVal);
    } else if (strcmp(zToken, "params") == 0) {
      if (sqlite3_value_type(pVal) != SQLITE_NULL) {
        pCur->zParams = sqlite3_mprintf("%s", (const char *)sqlite3_value_text(pVal));
        if (pCur->zParams == 0) rc = SQLITE_NOMEM;
      }
    } else if (strncmp(zToken, "dist-", 5) == 0 || strncmp(zToken, "score-", 6) == 0) {
      if (sqlite3_value_type(pVal) == SQLITE_NULL) pCur->nCap = 0; /* a comparison with NULL is never true */
      pCur->rRadius = sqlite3_value_double(pVal);
      pCur->eRadius = strcmp(zToken, "dist-lt") == 0   ? RADIUS_DIST_LT
                      : strcmp(zToken, "dist-le") == 0 ? RADIUS_DIST_LE
                      : strcmp(zToken, "score-ge") == 0 ? RADIUS_SCORE_GE
                                                        : RADIUS_SCORE_GT;
    } else {
      rc = SQLITE_INTERNAL;
    }
  }
  return rc;
}

int vs_cursor_filter(sqlite3_vtab_cursor *pCursor, int idxNum, const char *idxStr, int argc, sqlite3_value **argv) {
  VsCursor *pCur = (VsCursor *)pCursor;
  VsTable *pTab = cursor_table(pCur);
  VsStorage *pStore = pTab->pStore;
  cursor_reset(pCur);
  pCur->ePlan = idxNum;
  sqlite3_value *pQuery = 0, *pKey = 0, *pAmong = 0;
  char zAmong[16] = {0};
  int bText = 0;
  i64 nLimit = -1, nOffset = 0;
  int bZeroCap = 0;
  if (idxNum != VS_PLAN_KNN) {
    const char *zHint = "";
    const char *zCol = search_only_column(idxStr, &zHint);
    if (zCol) {
      vs_error(&pTab->base.zErrMsg, "%s needs a search: expected embedding MATCH <vector> or %s MATCH <text> ANDed "
               "with it at the top level of WHERE, received no MATCH%s", zCol, pTab->pCfg->zName, zHint);
      return SQLITE_ERROR;
    }
  }
  int rc = read_arguments(pCur, idxStr, argc, argv, &pQuery, &bText, &pKey, &pAmong, zAmong, &nLimit, &nOffset);
  if (rc != SQLITE_OK) return cursor_error(pCur, rc);
  bZeroCap = pCur->nCap == 0;
  pCur->nCap = -1;
  if (nLimit >= 0) pCur->nCap = nLimit + nOffset;
  if (pCur->nK >= 0 && (pCur->nCap < 0 || pCur->nK < pCur->nCap)) pCur->nCap = pCur->nK;
  if (bZeroCap) pCur->nCap = 0;

  if (idxNum != VS_PLAN_KNN) {
    if (pCur->pWhere) {
      pCur->bDocOwned = 1;
      rc = prepare_filtered(pCur, "SELECT rowid, id, content, metadata{cols} FROM {docs} WHERE ", " ORDER BY rowid",
                            &pCur->pDoc);
    } else {
      pCur->eDoc = idxNum == VS_PLAN_ROWID ? VS_CSTMT_ROWID : idxNum == VS_PLAN_ID ? VS_CSTMT_ID : VS_CSTMT_SCAN;
      rc = vs_storage_cursor_stmt(pStore, pCur->eDoc, &pCur->pDoc);
      if (rc == SQLITE_OK && pKey) sqlite3_bind_value(pCur->pDoc, 1, pKey);
    }
    if (rc != SQLITE_OK) return cursor_error(pCur, rc);
    return doc_step(pCur);
  }

  /* A search. Per-query parameters are checked whatever path the search takes. */
  if (pCur->zParams) {
    rc = vs_sync_read(pTab);
    if (rc == SQLITE_OK) rc = vs_index_check_params(pTab->pIdx, pCur->zParams, &pTab->base.zErrMsg);
    if (rc != SQLITE_OK) return cursor_error(pCur, rc);
  }
  float *aQuery = 0;
  int nDim = 0;
  if (bText) {
    rc = vs_embed_text(pTab, pQuery, &aQuery, &pTab->base.zErrMsg);
  } else {
    rc = vs_vector_parse(pQuery, pTab->pCfg->nDim, "query vector", &aQuery, &nDim, &pTab->base.zErrMsg);
  }
  if (rc == SQLITE_OK) rc = vs_vector_check_magnitude(aQuery, pTab->pCfg->nDim, "query vector", &pTab->base.zErrMsg);
  if (!pCur->bLambda && pCur->nFetchK >= 0 && (pCur->nCap < 0 || pCur->nFetchK < pCur->nCap)) {
    pCur->nCap = pCur->nFetchK; /* LangChain's fetch_k: only the fetch_k nearest rows are candidates */
  }
  i64 nFirst = pCur->nCap >= 0 ? pCur->nCap : VS_DEFAULT_BATCH;
  if (nFirst < 1) nFirst = 1;
  if (rc == SQLITE_OK) {
    if (pAmong) {
      rc = search_among(pTab, aQuery, pAmong, zAmong, &pCur->pSearch);
      pCur->bCheckSql = pCur->pWhere != 0;
    } else if (pCur->pWhere) {
      rc = search_filtered(pCur, aQuery, nFirst);
    } else {
      i64 nAsk = pCur->bLambda ? (pCur->nFetchK >= 0 ? pCur->nFetchK : VS_MMR_DEFAULT_FETCH_K) : nFirst;
      rc = vs_search_start(pTab, aQuery, nAsk > 0 ? nAsk : 1, pCur->zParams, 0, 0, 0, &pCur->pSearch);
    }
  }
  if (rc == SQLITE_OK && pCur->bLambda) rc = rerank_mmr(pCur, aQuery);
  sqlite3_free(aQuery);
  if (rc != SQLITE_OK) return cursor_error(pCur, rc);
  pCur->eDoc = VS_CSTMT_ROWID;
  return knn_step(pCur);
}

int vs_cursor_next(sqlite3_vtab_cursor *pCursor) {
  VsCursor *pCur = (VsCursor *)pCursor;
  return pCur->ePlan == VS_PLAN_KNN ? knn_step(pCur) : doc_step(pCur);
}

int vs_cursor_eof(sqlite3_vtab_cursor *pCursor) { return ((VsCursor *)pCursor)->bEof; }

int vs_cursor_rowid(sqlite3_vtab_cursor *pCursor, sqlite_int64 *pRowid) {
  *pRowid = ((VsCursor *)pCursor)->iRowid;
  return SQLITE_OK;
}

/**************************************************************************************************
** Columns.
*/

/* Positions pDoc on the current row of a search cursor: SQLITE_ROW, or SQLITE_DONE if it vanished. */
static int search_fetch_doc(VsCursor *pCur) {
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

int vs_cursor_column(sqlite3_vtab_cursor *pCursor, sqlite3_context *ctx, int iCol) {
  VsCursor *pCur = (VsCursor *)pCursor;
  VsTable *pTab = cursor_table(pCur);
  int bSearch = pCur->ePlan == VS_PLAN_KNN;
  int iDecl = 0;
  int eKind = vs_col_kind(pTab, iCol, &iDecl);
  switch (eKind) {
    case VS_KIND_ID:
    case VS_KIND_CONTENT:
    case VS_KIND_METADATA:
    case VS_KIND_DECLARED: {
      int iStmtCol = eKind == VS_KIND_DECLARED ? 4 + iDecl : 1 + eKind - VS_KIND_ID;
      int rc = bSearch ? search_fetch_doc(pCur) : SQLITE_ROW;
      if (rc == SQLITE_ROW) {
        sqlite3_result_value(ctx, sqlite3_column_value(pCur->pDoc, iStmtCol));
        return SQLITE_OK;
      }
      if (rc == SQLITE_DONE) { /* the index and the docs table disagree: never present a half row as right */
        vs_error(&pTab->base.zErrMsg, "rowid %lld is in the index but not in %s_docs: the table is damaged "
                 "(expected every indexed row to have a document); run INSERT INTO %s(%s) VALUES ('integrity-check')",
                 pCur->iRowid, pTab->pCfg->zName, pTab->pCfg->zName, pTab->pCfg->zName);
        return SQLITE_CORRUPT;
      }
      return cursor_error(pCur, rc);
    }
    case VS_KIND_EMBEDDING:
      if (sqlite3_vtab_nochange(ctx)) return SQLITE_OK;
      return cursor_error(pCur, column_embedding(pCur, ctx));
    case VS_KIND_DISTANCE:
      if (bSearch) sqlite3_result_double(ctx, pCur->rDist);
      return SQLITE_OK;
    case VS_KIND_SCORE:
      if (bSearch) sqlite3_result_double(ctx, vs_score(pCur->rDist, pTab->pCfg->eMetric));
      return SQLITE_OK;
    case VS_KIND_K:
      if (pCur->nK >= 0) sqlite3_result_int64(ctx, pCur->nK);
      return SQLITE_OK;
    case VS_KIND_FETCH_K:
      if (pCur->nFetchK >= 0) sqlite3_result_int64(ctx, pCur->nFetchK);
      return SQLITE_OK;
    case VS_KIND_LAMBDA:
      if (pCur->bLambda) sqlite3_result_double(ctx, pCur->rLambda);
      return SQLITE_OK;
    case VS_KIND_PARAMS:
      if (pCur->zParams) sqlite3_result_text(ctx, pCur->zParams, -1, SQLITE_TRANSIENT);
      return SQLITE_OK;
    default:
      return SQLITE_OK;
  }
}
