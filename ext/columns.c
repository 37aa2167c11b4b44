/*
** columns.c: a connection's in-memory copy of the declared metadata columns, and search conditions tested on it.
**
** A search whose declared-column condition most rows meet hands Faiss a selector; checking each candidate with
** SQL costs microseconds, and a graph search visits thousands. This copy answers in nanoseconds: one row of
** tagged values per rowid, held in a dense array while rowids are dense (rowid - base indexes it) and in a hash
** map beside it for the others. Text and BLOB bytes live in one arena.
**
** It follows the committed state as the index does (sync.c): a new snapshot generation reloads it whole; log
** entries after its position name the rowids whose rows are read again (every op: a vector set or deleted with
** its document, or declared columns alone changed, VS_LOG_COLUMNS). Rows the open transaction has written are
** not its business: the caller checks those with SQL.
**
** Conditions follow SQLite's own comparison rules for a column of the declared type compared with a bound value:
** the column's affinity applies to the value (NUMERIC for INTEGER and REAL, TEXT for TEXT, none for BLOB);
** NULL < numbers < text < BLOBs; numbers compare exactly (integers against reals too); text and BLOBs with
** memcmp (BINARY collation); NULL on either side of =, <, ... is never true.
*/
#include "vecstore_int.h"

/* One value: its SQLite type (0 for "no such row" in the first column of a row), the payload, and for text and
** BLOBs the arena offset and length. */
typedef struct ColVal {
  union {
    i64 i;
    double r;
    i64 iOff;
  } u;
  int32_t n;
  int32_t eType;
} ColVal;

typedef struct Region {
  ColVal *a; /* nRow x nCol, row-major */
  i64 nRow, nAlloc;
} Region;

struct VsColumns {
  int nCol;
  i64 iGen, iLogSeq;   /* the committed state held */
  i64 iBase;           /* rowid of dense row 0 */
  Region dense;        /* rowids iBase .. iBase + dense.nRow - 1 */
  Region extra;        /* rowids outside the dense range, by the map */
  VsI64Map extraRow;   /* rowid -> row of extra */
  i64 nLive;           /* rows present */
  char *aByte;         /* text and BLOB bytes */
  i64 nByte, nByteAlloc, nByteDead;
};

typedef struct CondValue {
  ColVal v;
  char *z; /* text and BLOB bytes (owned) */
} CondValue;

typedef struct Cond {
  int iCol;
  VsCondOp eOp;
  CondValue *aVal;
  int nVal;
} Cond;

struct VsCondList {
  Cond *a;
  int n;
};

void vs_columns_free(VsColumns *p) {
  if (p == 0) return;
  sqlite3_free(p->dense.a);
  sqlite3_free(p->extra.a);
  vs_i64map_clear(&p->extraRow);
  sqlite3_free(p->aByte);
  sqlite3_free(p);
}

/* The row of iRowid (nCol values) or NULL when the copy has no place for it. */
static ColVal *row_of(const VsColumns *p, i64 iRowid) {
  uint64_t iDense = (uint64_t)iRowid - (uint64_t)p->iBase;
  if (iDense < (uint64_t)p->dense.nRow) return p->dense.a + (i64)iDense * p->nCol;
  i64 iRow;
  if (p->extraRow.nUsed > 0 && vs_i64map_get(&p->extraRow, iRowid, &iRow)) return p->extra.a + iRow * p->nCol;
  return 0;
}

/* Grows a region to nRow rows; new rows are "no such row" (eType 0). */
static int region_grow(Region *pR, int nCol, i64 nRow) {
  if (nRow > pR->nAlloc) {
    i64 nNew = pR->nAlloc ? pR->nAlloc : 1024;
    while (nNew < nRow) nNew *= 2;
    ColVal *aNew = sqlite3_realloc64(pR->a, (sqlite3_uint64)nNew * (sqlite3_uint64)nCol * sizeof(ColVal));
    if (aNew == 0) return SQLITE_NOMEM;
    pR->a = aNew;
    pR->nAlloc = nNew;
  }
  if (nRow > pR->nRow) {
    memset(pR->a + pR->nRow * nCol, 0, (size_t)(nRow - pR->nRow) * (size_t)nCol * sizeof(ColVal));
    pR->nRow = nRow;
  }
  return SQLITE_OK;
}

/* The row to write iRowid's values into, making a place for it: the dense range grows up to rowids a little
** past twice the live rows, farther rowids go to the map. */
static int place_of(VsColumns *p, i64 iRowid, ColVal **ppRow) {
  ColVal *pRow = row_of(p, iRowid);
  int rc = SQLITE_OK;
  if (pRow == 0) {
    if (p->dense.nRow == 0 && p->nLive == 0) p->iBase = iRowid;
    uint64_t iDense = (uint64_t)iRowid - (uint64_t)p->iBase;
    if (iRowid >= p->iBase && iDense < (uint64_t)(2 * p->nLive + 4096)) {
      rc = region_grow(&p->dense, p->nCol, (i64)iDense + 1);
      if (rc == SQLITE_OK) pRow = p->dense.a + (i64)iDense * p->nCol;
    } else {
      i64 iRow = p->extra.nRow;
      rc = region_grow(&p->extra, p->nCol, iRow + 1);
      if (rc == SQLITE_OK) rc = vs_i64map_put(&p->extraRow, iRowid, iRow);
      if (rc == SQLITE_OK) pRow = p->extra.a + iRow * p->nCol;
    }
  }
  *ppRow = pRow;
  return rc;
}

/* Copies n bytes into the arena; *piOff gets their offset. */
static int arena_add(VsColumns *p, const void *z, int n, i64 *piOff) {
  if (p->nByte + n > p->nByteAlloc) {
    i64 nNew = p->nByteAlloc ? p->nByteAlloc : 65536;
    while (nNew < p->nByte + n) nNew *= 2;
    char *aNew = sqlite3_realloc64(p->aByte, (sqlite3_uint64)nNew);
    if (aNew == 0) return SQLITE_NOMEM;
    p->aByte = aNew;
    p->nByteAlloc = nNew;
  }
  if (n > 0) memcpy(p->aByte + p->nByte, z, (size_t)n);
  *piOff = p->nByte;
  p->nByte += n;
  return SQLITE_OK;
}

/* Sets iRowid's row from the statement's columns 1..nCol (pStmt NULL: the row no longer exists). */
static int set_row(VsColumns *p, i64 iRowid, sqlite3_stmt *pStmt) {
  ColVal *pRow = 0;
  if (pStmt == 0) {
    pRow = row_of(p, iRowid);
    if (pRow == 0 || pRow[0].eType == 0) return SQLITE_OK;
  } else {
    int rc = place_of(p, iRowid, &pRow);
    if (rc != SQLITE_OK) return rc;
  }
  int bWasLive = pRow[0].eType != 0;
  for (int i = 0; i < p->nCol; i++) {
    ColVal *pV = &pRow[i];
    if (bWasLive && (pV->eType == SQLITE_TEXT || pV->eType == SQLITE_BLOB)) p->nByteDead += pV->n;
    memset(pV, 0, sizeof(*pV));
    if (pStmt == 0) continue;
    pV->eType = sqlite3_column_type(pStmt, i + 1);
    switch (pV->eType) {
      case SQLITE_INTEGER: pV->u.i = sqlite3_column_int64(pStmt, i + 1); break;
      case SQLITE_FLOAT: pV->u.r = sqlite3_column_double(pStmt, i + 1); break;
      case SQLITE_TEXT:
      case SQLITE_BLOB: {
        const void *z = pV->eType == SQLITE_TEXT ? (const void *)sqlite3_column_text(pStmt, i + 1)
                                                 : sqlite3_column_blob(pStmt, i + 1);
        pV->n = sqlite3_column_bytes(pStmt, i + 1);
        if (z == 0 && pV->n > 0) return SQLITE_NOMEM;
        int rc = arena_add(p, z, pV->n, &pV->u.iOff);
        if (rc != SQLITE_OK) return rc;
        break;
      }
      default: pV->eType = SQLITE_NULL; break;
    }
  }
  p->nLive += (pStmt != 0) - bWasLive;
  return SQLITE_OK;
}

/* Reads every document's declared columns. */
static int load_all(VsColumns *p, VsStorage *pStore) {
  sqlite3_stmt *pStmt = 0;
  int rc = vs_storage_prepare(pStore, "SELECT rowid{cols} FROM {docs} ORDER BY rowid", &pStmt);
  while (rc == SQLITE_OK && sqlite3_step(pStmt) == SQLITE_ROW) rc = set_row(p, sqlite3_column_int64(pStmt, 0), pStmt);
  int rc2 = sqlite3_finalize(pStmt);
  return rc == SQLITE_OK ? rc2 : rc;
}

static int collect_rowid(void *pCtx, i64 iSeq, i64 iRowid, int eOp) {
  (void)iSeq;
  (void)eOp;
  return vs_i64map_put((VsI64Map *)pCtx, iRowid, 0);
}

/* Reads again the rows of the log entries after p->iLogSeq. */
static int replay(VsColumns *p, VsStorage *pStore) {
  VsI64Map touched;
  sqlite3_stmt *pStmt = 0;
  vs_i64map_init(&touched);
  int rc = vs_storage_log_scan(pStore, p->iLogSeq, collect_rowid, &touched);
  if (rc == SQLITE_OK && touched.nUsed > 0) rc = vs_storage_prepare(pStore, "SELECT rowid{cols} FROM {docs} WHERE rowid = ?1", &pStmt);
  for (i64 i = 0; rc == SQLITE_OK && i < touched.nSlot; i++) {
    if (touched.aUsed[i] != 1) continue;
    sqlite3_bind_int64(pStmt, 1, touched.aKey[i]);
    int rcStep = sqlite3_step(pStmt);
    if (rcStep == SQLITE_ROW) rc = set_row(p, touched.aKey[i], pStmt);
    else if (rcStep == SQLITE_DONE) rc = set_row(p, touched.aKey[i], 0);
    else rc = rcStep;
    sqlite3_reset(pStmt);
  }
  sqlite3_finalize(pStmt);
  vs_i64map_clear(&touched);
  return rc;
}

int vs_columns_sync(VsStorage *pStore, int nCol, i64 iGen, i64 iLogSeq, VsColumns **pp, int *pbRead) {
  VsColumns *p = *pp;
  *pbRead = 0;
  if (p && p->iGen == iGen && p->iLogSeq == iLogSeq) return SQLITE_OK;
  *pbRead = 1;
  int bWhole = p == 0 || p->iGen != iGen || iLogSeq < p->iLogSeq || p->nByteDead > p->nByte / 2 + (1 << 20);
  int rc = SQLITE_OK;
  if (bWhole) {
    vs_columns_free(p);
    *pp = p = sqlite3_malloc(sizeof(*p));
    if (p == 0) return SQLITE_NOMEM;
    memset(p, 0, sizeof(*p));
    p->nCol = nCol;
    vs_i64map_init(&p->extraRow);
    rc = load_all(p, pStore);
  } else {
    rc = replay(p, pStore);
  }
  if (rc != SQLITE_OK) {
    vs_columns_free(p);
    *pp = 0;
    return rc;
  }
  p->iGen = iGen;
  p->iLogSeq = iLogSeq;
  return SQLITE_OK;
}

i64 vs_columns_count(const VsColumns *p) { return p ? p->nLive : 0; }

/**************************************************************************************************
** Conditions.
*/

void vs_cond_free(VsCondList *p) {
  if (p == 0) return;
  for (int i = 0; i < p->n; i++) {
    for (int j = 0; j < p->a[i].nVal; j++) sqlite3_free(p->a[i].aVal[j].z);
    sqlite3_free(p->a[i].aVal);
  }
  sqlite3_free(p->a);
  sqlite3_free(p);
}

/* The value pVal as the comparison with a column of type eType sees it (that column's affinity applied). */
static int cond_value(VsColType eType, sqlite3_value *pVal, CondValue *pOut) {
  memset(pOut, 0, sizeof(*pOut));
  sqlite3_value *pCopy = sqlite3_value_dup(pVal);
  if (pCopy == 0) return SQLITE_NOMEM;
  int e = sqlite3_value_type(pCopy);
  if ((eType == VS_TYPE_INTEGER || eType == VS_TYPE_REAL) && e == SQLITE_TEXT) {
    e = sqlite3_value_numeric_type(pCopy); /* text that looks like a number becomes one, as in the comparison */
  } else if (eType == VS_TYPE_TEXT && (e == SQLITE_INTEGER || e == SQLITE_FLOAT)) {
    e = SQLITE_TEXT; /* a number compared with a TEXT column is compared as its text */
  }
  int rc = SQLITE_OK;
  pOut->v.eType = e;
  switch (e) {
    case SQLITE_INTEGER: pOut->v.u.i = sqlite3_value_int64(pCopy); break;
    case SQLITE_FLOAT: pOut->v.u.r = sqlite3_value_double(pCopy); break;
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
      const void *z = e == SQLITE_TEXT ? (const void *)sqlite3_value_text(pCopy) : sqlite3_value_blob(pCopy);
      pOut->v.n = sqlite3_value_bytes(pCopy);
      pOut->z = sqlite3_malloc(pOut->v.n + 1);
      if (pOut->z == 0 || (z == 0 && pOut->v.n > 0)) rc = SQLITE_NOMEM;
      else if (pOut->v.n > 0) memcpy(pOut->z, z, (size_t)pOut->v.n);
      break;
    }
    default: pOut->v.eType = SQLITE_NULL; break;
  }
  sqlite3_value_free(pCopy);
  return rc;
}

int vs_cond_add(VsCondList **pp, VsColType eType, int iCol, VsCondOp eOp, sqlite3_value **apVal, int nVal) {
  VsCondList *p = *pp;
  if (p == 0) {
    *pp = p = sqlite3_malloc(sizeof(*p));
    if (p == 0) return SQLITE_NOMEM;
    memset(p, 0, sizeof(*p));
  }
  Cond *aNew = sqlite3_realloc64(p->a, (sqlite3_uint64)(p->n + 1) * sizeof(Cond));
  if (aNew == 0) return SQLITE_NOMEM;
  p->a = aNew;
  Cond *pC = &p->a[p->n++];
  memset(pC, 0, sizeof(*pC));
  pC->iCol = iCol;
  pC->eOp = eOp;
  if (nVal == 0) return SQLITE_OK;
  pC->aVal = sqlite3_malloc64((sqlite3_uint64)nVal * sizeof(CondValue));
  if (pC->aVal == 0) return SQLITE_NOMEM;
  int rc = SQLITE_OK;
  for (int i = 0; rc == SQLITE_OK && i < nVal; i++) {
    rc = cond_value(eType, apVal[i], &pC->aVal[i]);
    pC->nVal++;
  }
  return rc;
}

/* SQLite's order of a number class: NULL, numbers, text, BLOBs. */
static int type_class(int eType) {
  switch (eType) {
    case SQLITE_INTEGER:
    case SQLITE_FLOAT: return 1;
    case SQLITE_TEXT: return 2;
    case SQLITE_BLOB: return 3;
    default: return 0;
  }
}

/* <0, 0, >0 as the integer i sorts before, with or after the real r, without rounding either (as SQLite does: the
** integer part first, then the fraction). */
static int compare_int_real(i64 i, double r) {
  if (r < -9223372036854775808.0) return 1;
  if (r >= 9223372036854775808.0) return -1;
  i64 y = (i64)r; /* r truncated: exact, as |r| < 2^63 */
  if (i != y) return i < y ? -1 : 1;
  double s = (double)i; /* i == y: only r's fraction is left (none once |r| >= 2^53, where s == r) */
  return (s > r) - (s < r);
}

/* Exact comparison of two numbers. */
static int compare_numbers(const ColVal *a, const ColVal *b) {
  int bIntA = a->eType == SQLITE_INTEGER, bIntB = b->eType == SQLITE_INTEGER;
  if (bIntA && bIntB) return (a->u.i > b->u.i) - (a->u.i < b->u.i);
  if (bIntA) return compare_int_real(a->u.i, b->u.r);
  if (bIntB) return -compare_int_real(b->u.i, a->u.r);
  return (a->u.r > b->u.r) - (a->u.r < b->u.r);
}

/* <0, 0, >0 as the row's value (bytes in zRow) sorts before, with or after the condition's value; neither NULL. */
static int compare_values(const ColVal *pRow, const char *zRow, const CondValue *pC) {
  int cA = type_class(pRow->eType), cB = type_class(pC->v.eType);
  if (cA != cB) return cA - cB;
  if (cA == 1) return compare_numbers(pRow, &pC->v);
  int n = pRow->n < pC->v.n ? pRow->n : pC->v.n;
  int c = n > 0 ? memcmp(zRow, pC->z, (size_t)n) : 0;
  return c != 0 ? c : pRow->n - pC->v.n;
}

static int cond_holds(const Cond *pC, const ColVal *pV, const char *aByte) {
  const char *z = (pV->eType == SQLITE_TEXT || pV->eType == SQLITE_BLOB) ? aByte + pV->u.iOff : 0;
  int bNull = pV->eType == SQLITE_NULL;
  switch (pC->eOp) {
    case VS_COND_ISNULL: return bNull;
    case VS_COND_NOTNULL: return !bNull;
    case VS_COND_IS:
    case VS_COND_ISNOT: {
      int bValNull = pC->aVal[0].v.eType == SQLITE_NULL;
      int bSame = (bNull || bValNull) ? bNull == bValNull : compare_values(pV, z, &pC->aVal[0]) == 0;
      return pC->eOp == VS_COND_IS ? bSame : !bSame;
    }
    case VS_COND_IN:
      if (bNull) return 0;
      for (int i = 0; i < pC->nVal; i++) {
        if (pC->aVal[i].v.eType != SQLITE_NULL && compare_values(pV, z, &pC->aVal[i]) == 0) return 1;
      }
      return 0;
    default: {
      if (bNull || pC->aVal[0].v.eType == SQLITE_NULL) return 0;
      int c = compare_values(pV, z, &pC->aVal[0]);
      switch (pC->eOp) {
        case VS_COND_EQ: return c == 0;
        case VS_COND_NE: return c != 0;
        case VS_COND_LT: return c < 0;
        case VS_COND_LE: return c <= 0;
        case VS_COND_GT: return c > 0;
        default: return c >= 0;
      }
    }
  }
}

int vs_columns_test(const VsColumns *p, const VsCondList *pList, i64 iRowid) {
  const ColVal *pRow = row_of(p, iRowid);
  if (pRow == 0 || pRow[0].eType == 0) return 0;
  for (int i = 0; i < pList->n; i++) {
    if (!cond_holds(&pList->a[i], &pRow[pList->a[i].iCol], p->aByte)) return 0;
  }
  return 1;
}

/**************************************************************************************************
** Label bits: a condition searched again on an unchanged index is tested once per label, not once per candidate.
*/

void vs_columns_state(const VsColumns *p, i64 *piGen, i64 *piLogSeq) {
  *piGen = p->iGen;
  *piLogSeq = p->iLogSeq;
}

char *vs_cond_key(const VsCondList *pList) {
  sqlite3_str *pStr = sqlite3_str_new(0);
  for (int i = 0; i < pList->n; i++) {
    const Cond *pC = &pList->a[i];
    sqlite3_str_appendf(pStr, "%d:%d:%d(", pC->iCol, (int)pC->eOp, pC->nVal);
    for (int j = 0; j < pC->nVal; j++) {
      const CondValue *pV = &pC->aVal[j];
      switch (pV->v.eType) {
        case SQLITE_INTEGER: sqlite3_str_appendf(pStr, "i%lld,", pV->v.u.i); break;
        case SQLITE_FLOAT: sqlite3_str_appendf(pStr, "r%!.17g,", pV->v.u.r); break;
        case SQLITE_TEXT:
        case SQLITE_BLOB:
          sqlite3_str_appendf(pStr, "%c%d:", pV->v.eType == SQLITE_TEXT ? 't' : 'b', pV->v.n);
          for (int k = 0; k < pV->v.n; k++) sqlite3_str_appendf(pStr, "%02x", (unsigned char)pV->z[k]);
          sqlite3_str_appendchar(pStr, 1, ',');
          break;
        default: sqlite3_str_appendall(pStr, "n,"); break;
      }
    }
    sqlite3_str_appendall(pStr, ")");
  }
  return sqlite3_str_finish(pStr);
}

int vs_label_bits_build(const VsColumns *pCols, const VsCondList *pList, const i64 *aRowid, i64 nLabel, char *zKey,
                        VsLabelBits **pp) {
  *pp = 0;
  i64 nWord = (nLabel + 63) / 64;
  VsLabelBits *p = sqlite3_malloc64(sizeof(*p) + (sqlite3_uint64)(nWord > 0 ? nWord : 1) * sizeof(uint64_t));
  if (p == 0) {
    sqlite3_free(zKey);
    return SQLITE_NOMEM;
  }
  memset(p, 0, sizeof(*p));
  p->nRef = 1;
  p->zKey = zKey;
  p->nLabel = nLabel;
  p->iGen = pCols->iGen;
  p->iLogSeq = pCols->iLogSeq;
  for (i64 w = 0; w < nWord; w++) {
    uint64_t x = 0;
    for (i64 b = 0; b < 64 && w * 64 + b < nLabel; b++) {
      i64 iRowid = aRowid[w * 64 + b];
      if (iRowid != VS_TOMBSTONE && vs_columns_test(pCols, pList, iRowid)) x |= (uint64_t)1 << b;
    }
    p->aBit[w] = x;
  }
  *pp = p;
  return SQLITE_OK;
}

void vs_label_bits_unref(VsLabelBits *p) {
  if (p == 0 || --p->nRef > 0) return;
  sqlite3_free(p->zKey);
  sqlite3_free(p);
}
