/*
** write.c: INSERT, UPDATE and DELETE on a vecstore table.
**
** Every change is validated in full before anything is written, so a bad row changes nothing. Documents and
** vectors go to the shadow tables (part of the SQL transaction, rolled back by SQLite itself); the vector change
** is also recorded in the pending set, which searches in the same transaction see and xSync applies to the
** index. Conflicts on id or rowid follow the statement's ON CONFLICT mode (SQLITE_VTAB_CONSTRAINT_SUPPORT):
** REPLACE deletes the conflicting rows first, IGNORE skips the row, anything else is a constraint error.
*/
#include "vecstore_int.h"

#include <math.h>
#include <time.h>

typedef struct RowValues {
  i64 iRowid;
  int bRowidGiven;
  char *zId;
  sqlite3_value *pContent;
  char *zMeta;
  float *aVec; /* NULL: keep the stored vector (UPDATE without a new embedding) */
  sqlite3_value **apCol; /* the declared columns' values (argv entries) */
} RowValues;

static void row_values_free(RowValues *p) {
  sqlite3_free(p->zId);
  sqlite3_free(p->zMeta);
  sqlite3_free(p->aVec);
}

static const char *type_name(int eType) {
  switch (eType) {
    case SQLITE_INTEGER:
      return "an integer";
    case SQLITE_FLOAT:
      return "a real";
    case SQLITE_TEXT:
      return "text";
    case SQLITE_BLOB:
      return "a blob";
    default:
      return "NULL";
  }
}

/* A rowid value: an integer, or a real or text with an exact integer value. */
static int parse_rowid(sqlite3_value *pVal, i64 *piRowid, char **pzErr) {
  int eType = sqlite3_value_numeric_type(pVal);
  double r = sqlite3_value_double(pVal);
  if (eType == SQLITE_INTEGER || (eType == SQLITE_FLOAT && r == floor(r) && fabs(r) < 9.2e18)) {
    *piRowid = sqlite3_value_int64(pVal);
    if (*piRowid != VS_TOMBSTONE) return SQLITE_OK;
    vs_error(pzErr, "rowid %lld is reserved, expected any other integer", *piRowid);
    return SQLITE_MISMATCH;
  }
  const char *zText = (const char *)sqlite3_value_text(pVal);
  vs_error(pzErr, "rowid must be an integer, received %s '%s'", type_name(sqlite3_value_type(pVal)), zText ? zText : "");
  return SQLITE_MISMATCH;
}

/* A new RFC 9562 version 7 UUID in lowercase text: 48 bits of Unix time in milliseconds, a 12-bit sequence in
** rand_a (RFC 9562 section 6.2, method 1), 62 random bits. Within the process every id is greater than the one
** before (the sequence counts up within a millisecond and carries into the time field; a clock that steps back
** does not make ids go back), so ids that are not given append to the end of the id index instead of landing at
** random places in it: a bulk insert writes fewer index pages. */
static char *new_uuid(void) {
  static uint64_t iLast = 0; /* (milliseconds << 12) | sequence of the last id made in this process */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t iNow = ((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u) << 12;
  uint64_t iPrev = __atomic_load_n(&iLast, __ATOMIC_RELAXED), iNext;
  do {
    iNext = iNow > iPrev ? iNow : iPrev + 1;
  } while (!__atomic_compare_exchange_n(&iLast, &iPrev, iNext, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  uint64_t iMs = iNext >> 12;
  unsigned iSeq = (unsigned)(iNext & 0xfff);
  unsigned char a[16];
  sqlite3_randomness(8, a + 8);
  for (int i = 0; i < 6; i++) a[i] = (unsigned char)(iMs >> (40 - 8 * i));
  a[6] = (unsigned char)(0x70 | (iSeq >> 8));
  a[7] = (unsigned char)(iSeq & 0xff);
  a[8] = (unsigned char)((a[8] & 0x3f) | 0x80);
  return sqlite3_mprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", a[0], a[1], a[2],
                         a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]);
}

static int parse_id(sqlite3_value *pVal, int bInsert, char **pzId, char **pzErr) {
  int eType = sqlite3_value_type(pVal);
  if (eType == SQLITE_NULL && bInsert) {
    *pzId = new_uuid();
    return *pzId ? SQLITE_OK : SQLITE_NOMEM;
  }
  if (eType == SQLITE_NULL || eType == SQLITE_BLOB) {
    vs_error(pzErr, "id must be text, received %s", type_name(eType));
    return SQLITE_MISMATCH;
  }
  *pzId = sqlite3_mprintf("%s", (const char *)sqlite3_value_text(pVal));
  return *pzId ? SQLITE_OK : SQLITE_NOMEM;
}

/* metadata: NULL becomes '{}'; otherwise JSON text whose top level is an object. */
static int parse_metadata(VsTable *pTab, sqlite3_value *pVal, char **pzMeta, char **pzErr) {
  int eType = sqlite3_value_type(pVal);
  if (eType == SQLITE_NULL) {
    *pzMeta = sqlite3_mprintf("{}");
    return *pzMeta ? SQLITE_OK : SQLITE_NOMEM;
  }
  const char *zText = (const char *)sqlite3_value_text(pVal);
  char *zKind = 0;
  int rc = eType == SQLITE_TEXT ? vs_storage_json_type(pTab->pStore, zText, &zKind) : SQLITE_OK;
  if (rc != SQLITE_OK) return rc;
  if (eType != SQLITE_TEXT || zKind == 0 || strcmp(zKind, "object") != 0) {
    const char *zGot = eType != SQLITE_TEXT ? type_name(eType) : zKind == 0 ? "malformed JSON" : zKind;
    vs_error(pzErr, "metadata must be a JSON object such as '{\"page\": 1}', received %s: %.40s", zGot,
             zText ? zText : "");
    sqlite3_free(zKind);
    return SQLITE_MISMATCH;
  }
  sqlite3_free(zKind);
  *pzMeta = sqlite3_mprintf("%s", zText);
  return *pzMeta ? SQLITE_OK : SQLITE_NOMEM;
}

/* A declared column's value must fit its type the way a STRICT table's would: INTEGER takes integers (and
** reals or text with an exact integer value), REAL takes numbers (and numeric text), TEXT takes text (numbers
** are stored as text), BLOB takes anything; NULL fits every type. */
static int check_column(const VsColumn *pCol, sqlite3_value *pVal, char **pzErr) {
  int eType = sqlite3_value_type(pVal);
  /* sqlite3_value_numeric_type() converts the value in place: only for the numeric columns, whose affinity
  ** converts it the same way (a BLOB column keeps the text '10' as text). */
  int bNumeric = pCol->eType == VS_TYPE_INTEGER || pCol->eType == VS_TYPE_REAL;
  int eNum = eType == SQLITE_BLOB || eType == SQLITE_NULL || !bNumeric ? eType : sqlite3_value_numeric_type(pVal);
  int bOk = 1;
  switch (pCol->eType) {
    case VS_TYPE_INTEGER:
      if (eNum == SQLITE_FLOAT) {
        double r = sqlite3_value_double(pVal);
        bOk = r == floor(r) && fabs(r) < 9.2e18;
      } else {
        bOk = eNum == SQLITE_INTEGER || eNum == SQLITE_NULL;
      }
      break;
    case VS_TYPE_REAL:
      bOk = eNum == SQLITE_INTEGER || eNum == SQLITE_FLOAT || eNum == SQLITE_NULL;
      break;
    case VS_TYPE_TEXT:
      bOk = eType != SQLITE_BLOB;
      break;
    default:
      break;
  }
  if (!bOk) {
    const char *zText = eType == SQLITE_BLOB ? "" : (const char *)sqlite3_value_text(pVal);
    vs_error(pzErr, "column %s is %s, received %s '%.40s'", pCol->zName, vs_coltype_name(pCol->eType),
             type_name(eType), zText ? zText : "");
    return SQLITE_MISMATCH;
  }
  return SQLITE_OK;
}

/* Reads and validates the new column values of an INSERT or UPDATE (argv as xUpdate receives it). */
static int read_row(VsTable *pTab, sqlite3_value **argv, int bInsert, RowValues *pRow) {
  char **pzErr = &pTab->base.zErrMsg;
  memset(pRow, 0, sizeof(*pRow));
  int rc = SQLITE_OK;
  if (sqlite3_value_type(argv[1]) != SQLITE_NULL) {
    rc = parse_rowid(argv[1], &pRow->iRowid, pzErr);
    pRow->bRowidGiven = 1;
  }
  if (rc == SQLITE_OK) rc = parse_id(argv[2 + VS_COL_ID], bInsert, &pRow->zId, pzErr);
  pRow->pContent = argv[2 + VS_COL_CONTENT];
  if (rc == SQLITE_OK) rc = parse_metadata(pTab, argv[2 + VS_COL_METADATA], &pRow->zMeta, pzErr);
  pRow->apCol = pTab->pCfg->nCol ? &argv[2 + VS_COL_EMBEDDING + 1] : 0;
  for (int i = 0; rc == SQLITE_OK && i < pTab->pCfg->nCol; i++) rc = check_column(&pTab->pCfg->aCol[i], pRow->apCol[i], pzErr);
  sqlite3_value *pEmb = argv[2 + VS_COL_EMBEDDING];
  if (rc == SQLITE_OK && !(bInsert == 0 && sqlite3_value_nochange(pEmb))) {
    if (sqlite3_value_type(pEmb) == SQLITE_NULL) {
      if (pTab->pCfg->zEmbedder == 0) {
        vs_error(pzErr, "embedding is NULL and table %s has no embedder: expected a vector of dim %d (a float32 "
                 "BLOB or JSON array), or a table created with embedder=...", pTab->pCfg->zName, pTab->pCfg->nDim);
        rc = SQLITE_CONSTRAINT_NOTNULL;
      } else if (sqlite3_value_type(pRow->pContent) == SQLITE_NULL) {
        vs_error(pzErr, "embedding and content are both NULL: expected a vector, or content for embedder '%s'",
                 pTab->pCfg->zEmbedder);
        rc = SQLITE_CONSTRAINT_NOTNULL;
      } else {
        rc = vs_embed_text(pTab, pRow->pContent, &pRow->aVec, pzErr);
      }
    } else {
      int nDim = 0;
      rc = vs_vector_parse(pEmb, pTab->pCfg->nDim, "embedding", &pRow->aVec, &nDim, pzErr);
    }
    if (rc == SQLITE_OK) rc = vs_vector_check_magnitude(pRow->aVec, pTab->pCfg->nDim, "embedding", pzErr);
  }
  if (rc != SQLITE_OK) row_values_free(pRow);
  return rc;
}

/* Deletes document and vector of iRowid and records the vector deletion. */
static int delete_rowid(VsTable *pTab, i64 iRowid) {
  int rc = vs_storage_doc_delete(pTab->pStore, iRowid);
  if (rc == SQLITE_OK) rc = vs_storage_vector_delete(pTab->pStore, iRowid);
  if (rc == SQLITE_OK) rc = vs_pending_put(&pTab->pending, iRowid, 0);
  if (rc == SQLITE_OK && pTab->pCfg->nCol > 0) rc = vs_sync_written(pTab, iRowid);
  return rc;
}

/* Writes document and vector of a validated row. */
static int write_row(VsTable *pTab, RowValues *pRow, int bNewDoc) {
  char **pzErr = &pTab->base.zErrMsg;
  int rc;
  if (bNewDoc) {
    rc = vs_storage_doc_insert(pTab->pStore, &pRow->iRowid, pRow->bRowidGiven, pRow->zId, pRow->pContent,
                               pRow->zMeta, pRow->apCol, pzErr);
  } else {
    rc = vs_storage_doc_update(pTab->pStore, pRow->iRowid, pRow->zId, pRow->pContent, pRow->zMeta, pRow->apCol,
                               pzErr);
  }
  if (rc == SQLITE_OK && pRow->iRowid == VS_TOMBSTONE) {
    vs_error(pzErr, "rowid %lld is reserved", pRow->iRowid);
    rc = SQLITE_MISMATCH;
  }
  if (rc == SQLITE_OK && pRow->aVec) {
    rc = vs_storage_vector_put(pTab->pStore, pRow->iRowid, pRow->aVec, pTab->pCfg->nDim);
    if (rc == SQLITE_OK) rc = vs_pending_put(&pTab->pending, pRow->iRowid, pRow->aVec);
  }
  /* searches check the rows a transaction wrote with SQL, and its commit logs them for the columns in memory */
  if (rc == SQLITE_OK && pTab->pCfg->nCol > 0) rc = vs_sync_written(pTab, pRow->iRowid);
  return rc;
}

/* Resolves conflicts of a row about to take rowid iRowid (if bCheckRowid) and id zId: under REPLACE the
** conflicting rows are deleted; *pbSkip is set under IGNORE; other modes leave it to the docs table's
** constraints. iSelf is the rowid of the row being updated (its own id is no conflict). */
static int resolve_conflicts(VsTable *pTab, RowValues *pRow, int bCheckRowid, i64 iSelf, int bHasSelf, int *pbSkip) {
  int eMode = sqlite3_vtab_on_conflict(pTab->db);
  int bRowidTaken = 0, bIdTaken = 0;
  i64 iIdRowid = 0;
  int rc = SQLITE_OK;
  *pbSkip = 0;
  /* An INSERT under ABORT, FAIL or ROLLBACK leaves the conflict to the docs table's own constraints (its first
  ** write fails, so nothing changes; storage.c words the error), sparing two lookups per row on bulk inserts.
  ** An UPDATE that moves a row deletes before it inserts, and SQLite opens no statement savepoint for a
  ** single-row write, so it must find the conflict before changing anything. */
  if (!bHasSelf && eMode != SQLITE_REPLACE && eMode != SQLITE_IGNORE) return SQLITE_OK;
  if (bCheckRowid) rc = vs_storage_doc_exists(pTab->pStore, pRow->iRowid, &bRowidTaken);
  if (rc == SQLITE_OK) rc = vs_storage_doc_rowid_of_id(pTab->pStore, pRow->zId, &iIdRowid, &bIdTaken);
  if (rc != SQLITE_OK) return rc;
  if (bIdTaken && bHasSelf && iIdRowid == iSelf) bIdTaken = 0;
  if (!bRowidTaken && !bIdTaken) return SQLITE_OK;
  if (eMode == SQLITE_REPLACE) {
    if (bRowidTaken) rc = delete_rowid(pTab, pRow->iRowid);
    if (rc == SQLITE_OK && bIdTaken && !(bRowidTaken && iIdRowid == pRow->iRowid)) rc = delete_rowid(pTab, iIdRowid);
    return rc;
  }
  if (eMode == SQLITE_IGNORE) {
    *pbSkip = 1;
    return SQLITE_OK;
  }
  if (bIdTaken) {
    vs_error(&pTab->base.zErrMsg, "UNIQUE constraint failed: %s.id: a document with id '%s' already exists",
             pTab->pCfg->zName, pRow->zId);
  } else {
    vs_error(&pTab->base.zErrMsg, "UNIQUE constraint failed: %s.rowid: rowid %lld already exists",
             pTab->pCfg->zName, pRow->iRowid);
  }
  return SQLITE_CONSTRAINT;
}

static int insert_row(VsTable *pTab, sqlite3_value **argv, sqlite_int64 *pRowid) {
  RowValues row;
  int bSkip = 0;
  int rc = read_row(pTab, argv, 1, &row);
  if (rc != SQLITE_OK) return rc;
  rc = resolve_conflicts(pTab, &row, row.bRowidGiven, 0, 0, &bSkip);
  if (rc == SQLITE_OK && bSkip) rc = SQLITE_CONSTRAINT; /* with ON CONFLICT IGNORE SQLite skips the row */
  if (rc == SQLITE_OK) rc = write_row(pTab, &row, 1);
  if (rc == SQLITE_OK) *pRowid = row.iRowid;
  row_values_free(&row);
  return rc;
}

static int update_row(VsTable *pTab, sqlite3_value **argv) {
  char **pzErr = &pTab->base.zErrMsg;
  i64 iOld = 0;
  RowValues row;
  int bSkip = 0;
  int rc = parse_rowid(argv[0], &iOld, pzErr);
  if (rc == SQLITE_OK) rc = read_row(pTab, argv, 0, &row);
  if (rc != SQLITE_OK) return rc;
  if (!row.bRowidGiven) {
    vs_error(pzErr, "rowid cannot be set to NULL, expected an integer");
    row_values_free(&row);
    return SQLITE_MISMATCH;
  }
  int bMove = row.iRowid != iOld;
  rc = resolve_conflicts(pTab, &row, bMove, iOld, 1, &bSkip);
  if (rc == SQLITE_OK && bSkip) rc = SQLITE_CONSTRAINT;
  if (rc == SQLITE_OK && bMove) {
    if (row.aVec == 0) {
      row.aVec = sqlite3_malloc64((sqlite3_uint64)pTab->pCfg->nDim * sizeof(float));
      rc = row.aVec ? vs_storage_vector_get(pTab->pStore, iOld, row.aVec, pzErr) : SQLITE_NOMEM;
      if (rc == SQLITE_ROW) rc = SQLITE_OK;
      if (rc == SQLITE_DONE) {
        sqlite3_free(row.aVec);
        row.aVec = 0;
        rc = SQLITE_OK;
      }
    }
    if (rc == SQLITE_OK) rc = delete_rowid(pTab, iOld);
  }
  if (rc == SQLITE_OK) rc = write_row(pTab, &row, bMove);
  row_values_free(&row);
  return rc;
}

int vs_write(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv, sqlite_int64 *pRowid) {
  VsTable *pTab = (VsTable *)pVtab;
  int rc;
  if (argc == 1) {
    i64 iRowid = 0;
    int bExists = 0;
    rc = parse_rowid(argv[0], &iRowid, &pVtab->zErrMsg);
    if (rc == SQLITE_OK) rc = vs_storage_doc_exists(pTab->pStore, iRowid, &bExists);
    if (rc == SQLITE_OK && bExists) rc = delete_rowid(pTab, iRowid);
  } else if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
    sqlite3_value *pCommand = argv[2 + VS_COL_TABLE + pTab->pCfg->nCol];
    rc = sqlite3_value_type(pCommand) != SQLITE_NULL ? vs_command(pTab, pCommand) : insert_row(pTab, argv, pRowid);
  } else {
    rc = update_row(pTab, argv);
  }
  if (rc != SQLITE_OK && pVtab->zErrMsg == 0) {
    vs_error(&pVtab->zErrMsg, "%s", rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(pTab->db));
  }
  return rc;
}
