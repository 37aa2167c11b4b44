/*
** storage.c: the shadow tables, the only durable state of a vecstore table.
**
**   <name>_config(key PRIMARY KEY, value)      options, format version, snapshot generation and checksum
**   <name>_docs(rowid, id UNIQUE, content, metadata, <declared columns>)  each declared column indexed
**   <name>_vectors(rowid, embedding)           float32 BLOBs, the truth the index is built from
**   <name>_log(seq, rowid, op)                 since the snapshot: vectors set (op 0) or deleted (op 1), rows
**                                              whose declared columns alone changed (op 2)
**   <name>_snapshot(chunk, data)               the serialised index in 1 MiB chunks (no BLOB size ceiling)
**
** The snapshot is streamed through a stdio cookie: written chunk by chunk as Faiss serialises, and read back
** only after a first pass has checked its chunk count, size and checksum, so Faiss never parses bytes that
** were damaged or edited.
*/
#include "vecstore_int.h"

#include <math.h>

#define VS_CHUNK_SIZE (1 << 20)
#define VS_FORMAT_VERSION 1

const char *const vs_shadow_suffixes[] = {"config", "docs", "vectors", "log", "snapshot", 0};

typedef enum StmtId {
  CONFIG_GET,
  CONFIG_PUT,
  DOC_INSERT,
  DOC_INSERT_AUTO,
  DOC_EXISTS,
  DOC_BY_ID,
  DOC_DELETE,
  DOC_UPDATE,
  VEC_PUT,
  VEC_DELETE,
  VEC_GET,
  VEC_COUNT,
  VEC_SCAN,
  LOG_MAX,
  LOG_APPEND,
  LOG_COUNT,
  LOG_SCAN,
  LOG_CLEAR,
  SNAP_CLEAR,
  SNAP_PUT,
  SNAP_SCAN,
  SNAP_READ,
  SNAP_INFO,
  JSON_TYPE,
  STMT_COUNT
} StmtId;

static const char *const azStmtSql[STMT_COUNT] = {
    [CONFIG_GET] = "SELECT value FROM {config} WHERE key = ?",
    [CONFIG_PUT] = "INSERT OR REPLACE INTO {config}(key, value) VALUES (?, ?)",
    [DOC_INSERT] = "INSERT INTO {docs}(rowid, id, content, metadata{cols}) VALUES (?1, ?2, ?3, ?4{colvals})",
    [DOC_INSERT_AUTO] = "INSERT INTO {docs}(id, content, metadata{cols}) VALUES (?2, ?3, ?4{colvals})",
    [DOC_EXISTS] = "SELECT 1 FROM {docs} WHERE rowid = ?",
    [DOC_BY_ID] = "SELECT rowid FROM {docs} WHERE id = ?",
    [DOC_DELETE] = "DELETE FROM {docs} WHERE rowid = ?",
    [DOC_UPDATE] = "UPDATE {docs} SET id = ?2, content = ?3, metadata = ?4{colset} WHERE rowid = ?1",
    [VEC_PUT] = "INSERT OR REPLACE INTO {vectors}(rowid, embedding) VALUES (?, ?)",
    [VEC_DELETE] = "DELETE FROM {vectors} WHERE rowid = ?",
    [VEC_GET] = "SELECT embedding FROM {vectors} WHERE rowid = ?",
    [VEC_COUNT] = "SELECT count(*) FROM {vectors}",
    [VEC_SCAN] = "SELECT rowid, embedding FROM {vectors} ORDER BY rowid",
    [LOG_MAX] = "SELECT seq FROM {log} ORDER BY seq DESC LIMIT 1",
    [LOG_APPEND] = "INSERT INTO {log}(rowid, op) VALUES (?, ?)",
    [LOG_COUNT] = "SELECT count(*) FROM {log}",
    [LOG_SCAN] = "SELECT seq, rowid, op FROM {log} WHERE seq > ? ORDER BY seq",
    [LOG_CLEAR] = "DELETE FROM {log}",
    [SNAP_CLEAR] = "DELETE FROM {snapshot}",
    [SNAP_PUT] = "INSERT INTO {snapshot}(chunk, data) VALUES (?, ?)",
    [SNAP_SCAN] = "SELECT chunk, data FROM {snapshot} ORDER BY chunk",
    [SNAP_READ] = "SELECT chunk, data FROM {snapshot} ORDER BY chunk", /* the reader's, beside SNAP_SCAN's pass */
    [SNAP_INFO] = "SELECT count(*), coalesce(sum(length(data)), 0) FROM {snapshot}",
    [JSON_TYPE] = "SELECT CASE WHEN json_valid(?1) THEN json_type(?1) END",
};

struct VsStorage {
  sqlite3 *db;
  char *zDb;
  char *zName;
  int nDim;
  int nCol;              /* declared metadata columns (the array belongs to the table's VsConfig) */
  const VsColumn *aCol;
  sqlite3_stmt *aStmt[STMT_COUNT];
  sqlite3_stmt *aIdle[VS_CSTMT_COUNT];
};

sqlite3 *vs_storage_db(VsStorage *p) { return p->db; }

/* Appends the declared-column fragment named by zToken ("cols", "colvals", "colset", "coldefs"), or returns 0
** when zToken names none. Bound values of declared columns are ?5, ?6, ... */
static int append_columns(sqlite3_str *pStr, const char *zToken, int nToken, int nCol, const VsColumn *aCol) {
  static const char *const azToken[] = {"cols", "colvals", "colset", "coldefs", 0};
  int iToken = 0;
  while (azToken[iToken] && !((int)strlen(azToken[iToken]) == nToken && memcmp(azToken[iToken], zToken, nToken) == 0)) {
    iToken++;
  }
  if (azToken[iToken] == 0) return 0;
  for (int i = 0; i < nCol; i++) {
    switch (iToken) {
      case 0: sqlite3_str_appendf(pStr, ", \"%w\"", aCol[i].zName); break;
      case 1: sqlite3_str_appendf(pStr, ", ?%d", i + 5); break;
      case 2: sqlite3_str_appendf(pStr, ", \"%w\" = ?%d", aCol[i].zName, i + 5); break;
      default: sqlite3_str_appendf(pStr, ", \"%w\" %s", aCol[i].zName, vs_coltype_name(aCol[i].eType)); break;
    }
  }
  return 1;
}

/* Expands {suffix} in zTemplate to "db"."name_suffix", and the declared-column tokens (append_columns). */
static char *expand_sql_cols(const char *zDb, const char *zName, int nCol, const VsColumn *aCol, const char *zTemplate) {
  sqlite3_str *pStr = sqlite3_str_new(0);
  for (const char *z = zTemplate; *z; z++) {
    if (*z == '{') {
      const char *zEnd = strchr(z, '}');
      if (!append_columns(pStr, z + 1, (int)(zEnd - z - 1), nCol, aCol)) {
        sqlite3_str_appendf(pStr, "\"%w\".\"%w_%.*w\"", zDb, zName, (int)(zEnd - z - 1), z + 1);
      }
      z = zEnd;
    } else {
      sqlite3_str_appendchar(pStr, 1, *z);
    }
  }
  return sqlite3_str_finish(pStr);
}

static char *expand_sql(const VsStorage *p, const char *zTemplate) {
  return expand_sql_cols(p->zDb, p->zName, p->nCol, p->aCol, zTemplate);
}

/* The cached statement id, prepared on first use and reset. */
static int stmt(VsStorage *p, StmtId e, sqlite3_stmt **pp) {
  if (p->aStmt[e] == 0) {
    char *zSql = expand_sql(p, azStmtSql[e]);
    if (zSql == 0) return SQLITE_NOMEM;
    int rc = sqlite3_prepare_v3(p->db, zSql, -1, SQLITE_PREPARE_PERSISTENT, &p->aStmt[e], 0);
    sqlite3_free(zSql);
    if (rc != SQLITE_OK) return rc;
  }
  *pp = p->aStmt[e];
  return SQLITE_OK;
}

/* Steps a write statement to completion and resets it. */
static int run(sqlite3_stmt *pStmt) {
  int rc = sqlite3_step(pStmt);
  int rc2 = sqlite3_reset(pStmt);
  return rc == SQLITE_DONE ? SQLITE_OK : (rc2 != SQLITE_OK ? rc2 : rc);
}

static int exec_template(sqlite3 *db, const VsConfig *pCfg, const char *zTemplate) {
  char *zSql = expand_sql_cols(pCfg->zDb, pCfg->zName, pCfg->nCol, pCfg->aCol, zTemplate);
  if (zSql == 0) return SQLITE_NOMEM;
  int rc = sqlite3_exec(db, zSql, 0, 0, 0);
  sqlite3_free(zSql);
  return rc;
}

/* Names a failure in *pzErr (unless it holds a message): "<zWhat>: <SQLite's message>", or "out of memory" for
** SQLITE_NOMEM, which may be vecstore's own allocation (SQLite's message would then be "not an error"). */
static int db_error(sqlite3 *db, int rc, char **pzErr, const char *zWhat) {
  if (rc != SQLITE_OK && pzErr && *pzErr == 0) {
    vs_error(pzErr, "%s: %s", zWhat, rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(db));
  }
  return rc;
}

/* One index per declared column, named <table>_docs_<column>, so pre-filters are index lookups; nothing depends on
** the name. ALTER TABLE RENAME cannot rename an index, and SQLite refuses to drop one while it runs the ALTER TABLE
** or a CREATE VIRTUAL TABLE, so a rename creates the indexes under the new name and leaves the old ones to the
** renamed table (a second index on each column, dropped with it); a table created later under the old name whose
** index name is taken by such a leftover uses <table>_docs_<column>_2 (or _3, ...). */
static int create_column_indexes(sqlite3 *db, const char *zDb, const char *zName, int nCol, const VsColumn *aCol) {
  int rc = SQLITE_OK;
  for (int i = 0; rc == SQLITE_OK && i < nCol; i++) {
    char *zIndex = sqlite3_mprintf("%s_docs_%s", zName, aCol[i].zName);
    for (int iTry = 2; rc == SQLITE_OK && zIndex; iTry++) {
      char *zSql = sqlite3_mprintf("SELECT 1 FROM \"%w\".sqlite_schema WHERE name = %Q", zDb, zIndex);
      sqlite3_stmt *pStmt = 0;
      rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0) : SQLITE_NOMEM;
      sqlite3_free(zSql);
      int bTaken = rc == SQLITE_OK && sqlite3_step(pStmt) == SQLITE_ROW;
      if (rc == SQLITE_OK) rc = sqlite3_finalize(pStmt);
      if (rc != SQLITE_OK || !bTaken) break;
      sqlite3_free(zIndex);
      zIndex = sqlite3_mprintf("%s_docs_%s_%d", zName, aCol[i].zName, iTry);
    }
    if (rc == SQLITE_OK && zIndex == 0) rc = SQLITE_NOMEM;
    char *zSql = rc == SQLITE_OK ? sqlite3_mprintf("CREATE INDEX \"%w\".\"%w\" ON \"%w_docs\"(\"%w\")", zDb,
                                                   zIndex, zName, aCol[i].zName)
                                 : 0;
    if (rc == SQLITE_OK) rc = zSql ? sqlite3_exec(db, zSql, 0, 0, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    sqlite3_free(zIndex);
  }
  return rc;
}

int vs_storage_create(sqlite3 *db, const VsConfig *pCfg, char **pzErr) {
  static const char *const azCreate[] = {
      "CREATE TABLE {config}(key TEXT PRIMARY KEY, value) WITHOUT ROWID",
      "CREATE TABLE {docs}(rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, content, metadata TEXT{coldefs})",
      "CREATE TABLE {vectors}(rowid INTEGER PRIMARY KEY, embedding BLOB NOT NULL)",
      "CREATE TABLE {log}(seq INTEGER PRIMARY KEY, rowid INTEGER NOT NULL, op INTEGER NOT NULL)",
      "CREATE TABLE {snapshot}(chunk INTEGER PRIMARY KEY, data BLOB NOT NULL)",
      0};
  int rc = SQLITE_OK;
  for (int i = 0; rc == SQLITE_OK && azCreate[i]; i++) rc = exec_template(db, pCfg, azCreate[i]);
  if (rc == SQLITE_OK) rc = create_column_indexes(db, pCfg->zDb, pCfg->zName, pCfg->nCol, pCfg->aCol);
  if (rc != SQLITE_OK) return db_error(db, rc, pzErr, "creating the shadow tables failed");

  char *zSql = expand_sql_cols(pCfg->zDb, pCfg->zName, pCfg->nCol, pCfg->aCol,
                          "INSERT INTO {config}(key, value) VALUES ('format', ?1), ('dim', ?2), ('metric', ?3), "
                          "('index', ?4), ('search_params', ?5), ('embedder', ?6), ('snapshot_gen', 0)");
  sqlite3_stmt *pStmt = 0;
  rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int(pStmt, 1, VS_FORMAT_VERSION);
    sqlite3_bind_int(pStmt, 2, pCfg->nDim);
    sqlite3_bind_text(pStmt, 3, vs_metric_name(pCfg->eMetric), -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 4, pCfg->zIndex, -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 5, pCfg->zSearchParams, -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 6, pCfg->zEmbedder, -1, SQLITE_STATIC);
    sqlite3_step(pStmt);
    rc = sqlite3_finalize(pStmt);
  }
  return db_error(db, rc, pzErr, "writing the table configuration failed");
}

int vs_storage_open(sqlite3 *db, const VsConfig *pCfg, VsStorage **pp) {
  VsStorage *p = sqlite3_malloc(sizeof(*p));
  *pp = 0;
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->db = db;
  p->nDim = pCfg->nDim;
  p->nCol = pCfg->nCol;
  p->aCol = pCfg->aCol;
  p->zDb = sqlite3_mprintf("%s", pCfg->zDb);
  p->zName = sqlite3_mprintf("%s", pCfg->zName);
  if (p->zDb == 0 || p->zName == 0) {
    vs_storage_close(p);
    return SQLITE_NOMEM;
  }
  *pp = p;
  return SQLITE_OK;
}

static void finalize_all(VsStorage *p) {
  for (int i = 0; i < STMT_COUNT; i++) {
    sqlite3_finalize(p->aStmt[i]);
    p->aStmt[i] = 0;
  }
  for (int i = 0; i < VS_CSTMT_COUNT; i++) {
    sqlite3_finalize(p->aIdle[i]);
    p->aIdle[i] = 0;
  }
}

void vs_storage_close(VsStorage *p) {
  if (p == 0) return;
  finalize_all(p);
  sqlite3_free(p->zDb);
  sqlite3_free(p->zName);
  sqlite3_free(p);
}

int vs_storage_drop(VsStorage *p, char **pzErr) {
  int rc = SQLITE_OK;
  finalize_all(p);
  for (int i = 0; rc == SQLITE_OK && vs_shadow_suffixes[i]; i++) {
    char *zSql = sqlite3_mprintf("DROP TABLE IF EXISTS \"%w\".\"%w_%w\"", p->zDb, p->zName, vs_shadow_suffixes[i]);
    rc = zSql ? sqlite3_exec(p->db, zSql, 0, 0, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
  }
  return db_error(p->db, rc, pzErr, "dropping the shadow tables failed");
}

int vs_storage_rename(VsStorage *p, const char *zNew, char **pzErr) {
  int rc = SQLITE_OK;
  finalize_all(p);
  for (int i = 0; rc == SQLITE_OK && vs_shadow_suffixes[i]; i++) {
    char *zSql = sqlite3_mprintf("ALTER TABLE \"%w\".\"%w_%w\" RENAME TO \"%w_%w\"", p->zDb, p->zName,
                                 vs_shadow_suffixes[i], zNew, vs_shadow_suffixes[i]);
    rc = zSql ? sqlite3_exec(p->db, zSql, 0, 0, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
  }
  /* The old indexes stay (SQLite refuses DROP INDEX during ALTER TABLE): see create_column_indexes. */
  if (rc == SQLITE_OK) rc = create_column_indexes(p->db, p->zDb, zNew, p->nCol, p->aCol);
  if (rc == SQLITE_OK) rc = vs_config_set_string(&p->zName, zNew);
  return db_error(p->db, rc, pzErr, "renaming the shadow tables failed");
}

int vs_storage_config_get(VsStorage *p, const char *zKey, char **pz, char **pzErr) {
  sqlite3_stmt *pStmt;
  *pz = 0;
  int rc = stmt(p, CONFIG_GET, &pStmt);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
    if (sqlite3_step(pStmt) == SQLITE_ROW && sqlite3_column_type(pStmt, 0) != SQLITE_NULL) {
      *pz = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(pStmt, 0));
      if (*pz == 0) rc = SQLITE_NOMEM;
    }
    int rc2 = sqlite3_reset(pStmt);
    if (rc == SQLITE_OK) rc = rc2;
  }
  return db_error(p->db, rc, pzErr, "reading the table configuration failed");
}

int vs_storage_config_put(VsStorage *p, const char *zKey, const char *zValue, char **pzErr) {
  sqlite3_stmt *pStmt;
  int rc = stmt(p, CONFIG_PUT, &pStmt);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 2, zValue, -1, SQLITE_STATIC);
    rc = run(pStmt);
  }
  return db_error(p->db, rc, pzErr, "writing the table configuration failed");
}

static int config_put_int(VsStorage *p, const char *zKey, i64 iValue) {
  sqlite3_stmt *pStmt;
  int rc = stmt(p, CONFIG_PUT, &pStmt);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
    sqlite3_bind_int64(pStmt, 2, iValue);
    rc = run(pStmt);
  }
  return rc;
}

static int config_get_int(VsStorage *p, const char *zKey, i64 *piValue) {
  sqlite3_stmt *pStmt;
  *piValue = 0;
  int rc = stmt(p, CONFIG_GET, &pStmt);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
    if (sqlite3_step(pStmt) == SQLITE_ROW) *piValue = sqlite3_column_int64(pStmt, 0);
    rc = sqlite3_reset(pStmt);
  }
  return rc;
}

/* Turns a constraint failure of the docs table into the message SPEC.md promises. */
static int doc_write_error(VsStorage *p, int rc, i64 iRowid, const char *zId, char **pzErr) {
  if ((rc & 0xff) == SQLITE_CONSTRAINT) {
    const char *zMsg = sqlite3_errmsg(p->db);
    if (strstr(zMsg, ".id") != 0) {
      vs_error(pzErr, "UNIQUE constraint failed: %s.id: a document with id '%s' already exists", p->zName, zId);
    } else {
      vs_error(pzErr, "UNIQUE constraint failed: %s.rowid: rowid %lld already exists", p->zName, iRowid);
    }
    return SQLITE_CONSTRAINT;
  }
  return db_error(p->db, rc, pzErr, "writing the document failed");
}

static void bind_columns(VsStorage *p, sqlite3_stmt *pStmt, sqlite3_value **apCol) {
  for (int i = 0; i < p->nCol; i++) sqlite3_bind_value(pStmt, 5 + i, apCol ? apCol[i] : 0);
}

int vs_storage_doc_insert(VsStorage *p, i64 *piRowid, int bRowidGiven, const char *zId, sqlite3_value *pContent,
                          const char *zMeta, sqlite3_value **apCol, char **pzErr) {
  sqlite3_stmt *pStmt;
  int rc = stmt(p, bRowidGiven ? DOC_INSERT : DOC_INSERT_AUTO, &pStmt);
  if (rc == SQLITE_OK) {
    if (bRowidGiven) sqlite3_bind_int64(pStmt, 1, *piRowid);
    sqlite3_bind_text(pStmt, 2, zId, -1, SQLITE_STATIC);
    sqlite3_bind_value(pStmt, 3, pContent);
    sqlite3_bind_text(pStmt, 4, zMeta, -1, SQLITE_STATIC);
    bind_columns(p, pStmt, apCol);
    rc = run(pStmt);
    if (rc == SQLITE_OK && !bRowidGiven) *piRowid = sqlite3_last_insert_rowid(p->db);
  }
  return doc_write_error(p, rc, *piRowid, zId, pzErr);
}

int vs_storage_json_type(VsStorage *p, const char *z, char **pzType) {
  sqlite3_stmt *pStmt;
  *pzType = 0;
  int rc = stmt(p, JSON_TYPE, &pStmt);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(pStmt, 1, z, -1, SQLITE_STATIC);
    if (sqlite3_step(pStmt) == SQLITE_ROW && sqlite3_column_type(pStmt, 0) != SQLITE_NULL) {
      *pzType = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(pStmt, 0));
      if (*pzType == 0) rc = SQLITE_NOMEM;
    }
    int rc2 = sqlite3_reset(pStmt);
    if (rc == SQLITE_OK) rc = rc2;
  }
  return rc;
}

int vs_storage_doc_exists(VsStorage *p, i64 iRowid, int *pbExists) {
  sqlite3_stmt *pStmt;
  *pbExists = 0;
  int rc = stmt(p, DOC_EXISTS, &pStmt);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(pStmt, 1, iRowid);
    *pbExists = sqlite3_step(pStmt) == SQLITE_ROW;
    rc = sqlite3_reset(pStmt);
  }
  return rc;
}

int vs_storage_doc_rowid_of_id(VsStorage *p, const char *zId, i64 *piRowid, int *pbFound) {
  sqlite3_stmt *pStmt;
  *pbFound = 0;
  int rc = stmt(p, DOC_BY_ID, &pStmt);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(pStmt, 1, zId, -1, SQLITE_STATIC);
    if (sqlite3_step(pStmt) == SQLITE_ROW) {
      *pbFound = 1;
      *piRowid = sqlite3_column_int64(pStmt, 0);
    }
    rc = sqlite3_reset(pStmt);
  }
  return rc;
}

static int run_with_rowid(VsStorage *p, StmtId e, i64 iRowid) {
  sqlite3_stmt *pStmt;
  int rc = stmt(p, e, &pStmt);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(pStmt, 1, iRowid);
    rc = run(pStmt);
  }
  return rc;
}

int vs_storage_doc_delete(VsStorage *p, i64 iRowid) { return run_with_rowid(p, DOC_DELETE, iRowid); }

int vs_storage_doc_update(VsStorage *p, i64 iRowid, const char *zId, sqlite3_value *pContent, const char *zMeta,
                          sqlite3_value **apCol, char **pzErr) {
  sqlite3_stmt *pStmt;
  int rc = stmt(p, DOC_UPDATE, &pStmt);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(pStmt, 1, iRowid);
    sqlite3_bind_text(pStmt, 2, zId, -1, SQLITE_STATIC);
    sqlite3_bind_value(pStmt, 3, pContent);
    sqlite3_bind_text(pStmt, 4, zMeta, -1, SQLITE_STATIC);
    bind_columns(p, pStmt, apCol);
    rc = run(pStmt);
  }
  return doc_write_error(p, rc, iRowid, zId, pzErr);
}

static const char *const azCursorSql[VS_CSTMT_COUNT] = {
    [VS_CSTMT_SCAN] = "SELECT rowid, id, content, metadata{cols} FROM {docs} ORDER BY rowid",
    [VS_CSTMT_ROWID] = "SELECT rowid, id, content, metadata{cols} FROM {docs} WHERE rowid = ?1",
    [VS_CSTMT_ID] = "SELECT rowid, id, content, metadata{cols} FROM {docs} WHERE id = ?1",
    [VS_CSTMT_VECTOR] = "SELECT embedding FROM {vectors} WHERE rowid = ?1",
};

int vs_storage_prepare(VsStorage *p, const char *zTemplate, sqlite3_stmt **pp) {
  char *zSql = expand_sql(p, zTemplate);
  *pp = 0;
  if (zSql == 0) return SQLITE_NOMEM;
  int rc = sqlite3_prepare_v2(p->db, zSql, -1, pp, 0);
  sqlite3_free(zSql);
  return rc;
}

int vs_storage_cursor_stmt(VsStorage *p, VsCursorStmt e, sqlite3_stmt **pp) {
  if (p->aIdle[e]) {
    *pp = p->aIdle[e];
    p->aIdle[e] = 0;
    return SQLITE_OK;
  }
  char *zSql = expand_sql(p, azCursorSql[e]);
  if (zSql == 0) return SQLITE_NOMEM;
  int rc = sqlite3_prepare_v3(p->db, zSql, -1, SQLITE_PREPARE_PERSISTENT, pp, 0);
  sqlite3_free(zSql);
  return rc;
}

void vs_storage_cursor_stmt_release(VsStorage *p, VsCursorStmt e, sqlite3_stmt *pStmt) {
  if (pStmt == 0) return;
  sqlite3_reset(pStmt);
  sqlite3_clear_bindings(pStmt);
  if (p->aIdle[e] == 0) {
    p->aIdle[e] = pStmt;
  } else {
    sqlite3_finalize(pStmt);
  }
}

int vs_storage_vector_put(VsStorage *p, i64 iRowid, const float *aVec, int nDim) {
  sqlite3_stmt *pStmt;
  int rc = stmt(p, VEC_PUT, &pStmt);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(pStmt, 1, iRowid);
    sqlite3_bind_blob(pStmt, 2, aVec, nDim * (int)sizeof(float), SQLITE_STATIC);
    rc = run(pStmt);
  }
  return rc;
}

int vs_storage_vector_delete(VsStorage *p, i64 iRowid) { return run_with_rowid(p, VEC_DELETE, iRowid); }

/* Copies the stored embedding in column iCol of pStmt (the row of iRowid) into aOut, after checking that it is a
** BLOB of the table's size holding finite floats: anything else means the _vectors table was edited or damaged,
** and is reported (SQLITE_CORRUPT) instead of reaching the index. */
static int read_vector(VsStorage *p, sqlite3_stmt *pStmt, int iCol, i64 iRowid, float *aOut, char **pzErr) {
  int eType = sqlite3_column_type(pStmt, iCol);
  const void *pBlob = sqlite3_column_blob(pStmt, iCol);
  int nByte = sqlite3_column_bytes(pStmt, iCol);
  int nWant = p->nDim * (int)sizeof(float);
  if (eType != SQLITE_BLOB) {
    static const char *const azType[] = {"", "an integer", "a real", "text", "a blob", "NULL"};
    vs_error(pzErr, "the stored vector of rowid %lld is %s, expected a BLOB of %d bytes (dim=%d): the %s_vectors "
             "table is damaged", iRowid, azType[eType], nWant, p->nDim, p->zName);
    return SQLITE_CORRUPT;
  }
  if (nByte != nWant) {
    vs_error(pzErr, "the stored vector of rowid %lld has %d bytes, expected %d (dim=%d): the %s_vectors table is "
             "damaged", iRowid, nByte, nWant, p->nDim, p->zName);
    return SQLITE_CORRUPT;
  }
  memcpy(aOut, pBlob, (size_t)nWant);
  for (int i = 0; i < p->nDim; i++) {
    if (!isfinite(aOut[i])) {
      vs_error(pzErr, "the stored vector of rowid %lld holds a non-finite value at index %d: the %s_vectors table "
               "is damaged", iRowid, i, p->zName);
      return SQLITE_CORRUPT;
    }
  }
  return SQLITE_OK;
}

int vs_storage_vector_get(VsStorage *p, i64 iRowid, float *aOut, char **pzErr) {
  sqlite3_stmt *pStmt;
  int rc = stmt(p, VEC_GET, &pStmt);
  if (rc != SQLITE_OK) return db_error(p->db, rc, pzErr, "reading a vector failed");
  sqlite3_bind_int64(pStmt, 1, iRowid);
  rc = sqlite3_step(pStmt);
  if (rc == SQLITE_ROW) rc = read_vector(p, pStmt, 0, iRowid, aOut, pzErr);
  int rc2 = sqlite3_reset(pStmt);
  if (rc == SQLITE_DONE || rc == SQLITE_CORRUPT) return rc;
  return db_error(p->db, rc == SQLITE_OK ? rc2 : rc, pzErr, "reading a vector failed");
}

int vs_storage_vector_scan(VsStorage *p, int (*xRow)(void *, i64, const float *), void *pCtx, char **pzErr) {
  sqlite3_stmt *pStmt = 0;
  char *zSql = expand_sql(p, azStmtSql[VEC_SCAN]);
  int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &pStmt, 0) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  float *aVec = sqlite3_malloc64((sqlite3_uint64)p->nDim * sizeof(float));
  if (rc == SQLITE_OK && aVec == 0) rc = SQLITE_NOMEM;
  while (rc == SQLITE_OK && sqlite3_step(pStmt) == SQLITE_ROW) {
    i64 iRowid = sqlite3_column_int64(pStmt, 0);
    rc = read_vector(p, pStmt, 1, iRowid, aVec, pzErr);
    if (rc == SQLITE_OK) rc = xRow(pCtx, iRowid, aVec);
  }
  int rc2 = pStmt ? sqlite3_finalize(pStmt) : SQLITE_OK;
  sqlite3_free(aVec);
  if (rc == SQLITE_OK) rc = rc2;
  return db_error(p->db, rc, pzErr, "reading the stored vectors failed");
}

static int count_rows(VsStorage *p, StmtId e, i64 *pn) {
  sqlite3_stmt *pStmt;
  *pn = 0;
  int rc = stmt(p, e, &pStmt);
  if (rc == SQLITE_OK) {
    if (sqlite3_step(pStmt) == SQLITE_ROW) *pn = sqlite3_column_int64(pStmt, 0);
    rc = sqlite3_reset(pStmt);
  }
  return rc;
}

int vs_storage_vector_count(VsStorage *p, i64 *pn) { return count_rows(p, VEC_COUNT, pn); }
int vs_storage_log_count(VsStorage *p, i64 *pn) { return count_rows(p, LOG_COUNT, pn); }

int vs_storage_state(VsStorage *p, i64 *piGen, i64 *piLogSeq, char **pzErr) {
  int rc = config_get_int(p, "snapshot_gen", piGen);
  if (rc == SQLITE_OK) rc = count_rows(p, LOG_MAX, piLogSeq);
  return db_error(p->db, rc, pzErr, "reading the table state failed");
}

int vs_storage_log_append(VsStorage *p, i64 iRowid, int eOp, i64 *piSeq) {
  sqlite3_stmt *pStmt;
  int rc = stmt(p, LOG_APPEND, &pStmt);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(pStmt, 1, iRowid);
    sqlite3_bind_int(pStmt, 2, eOp);
    rc = run(pStmt);
    if (rc == SQLITE_OK) *piSeq = sqlite3_last_insert_rowid(p->db);
  }
  return rc;
}

int vs_storage_log_scan(VsStorage *p, i64 iAfter, int (*xEntry)(void *, i64, i64, int), void *pCtx) {
  sqlite3_stmt *pStmt;
  int rc = stmt(p, LOG_SCAN, &pStmt);
  if (rc != SQLITE_OK) return rc;
  sqlite3_bind_int64(pStmt, 1, iAfter);
  while (rc == SQLITE_OK && sqlite3_step(pStmt) == SQLITE_ROW) {
    rc = xEntry(pCtx, sqlite3_column_int64(pStmt, 0), sqlite3_column_int64(pStmt, 1),
                sqlite3_column_int(pStmt, 2));
  }
  int rc2 = sqlite3_reset(pStmt);
  return rc == SQLITE_OK ? rc2 : rc;
}

/* A 64-bit checksum of one chunk, chained through h: word-wise multiply-xorshift, tail byte-wise. */
static uint64_t chunk_checksum(uint64_t h, const unsigned char *a, size_t n) {
  const uint64_t m = 0x9E3779B97F4A7C15ull;
  size_t i = 0;
  h ^= (uint64_t)n * m;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, a + i, 8);
    h = (h ^ w) * m;
    h ^= h >> 29;
  }
  for (; i < n; i++) {
    h = (h ^ a[i]) * m;
    h ^= h >> 29;
  }
  return h;
}

typedef struct SnapWriter {
  VsStorage *p;
  unsigned char *aBuf;
  size_t nBuf;
  i64 iChunk;
  i64 nTotal;
  uint64_t hash;
  int rc;
} SnapWriter;

static int snap_flush(SnapWriter *w) {
  if (w->nBuf == 0 || w->rc != SQLITE_OK) return w->rc;
  sqlite3_stmt *pStmt;
  w->rc = stmt(w->p, SNAP_PUT, &pStmt);
  if (w->rc == SQLITE_OK) {
    sqlite3_bind_int64(pStmt, 1, w->iChunk);
    sqlite3_bind_blob(pStmt, 2, w->aBuf, (int)w->nBuf, SQLITE_STATIC);
    w->rc = run(pStmt);
  }
  w->hash = chunk_checksum(w->hash, w->aBuf, w->nBuf);
  w->nTotal += (i64)w->nBuf;
  w->iChunk++;
  w->nBuf = 0;
  return w->rc;
}

static ssize_t snap_cookie_write(void *pCookie, const char *a, size_t n) {
  SnapWriter *w = (SnapWriter *)pCookie;
  size_t nDone = 0;
  while (nDone < n && w->rc == SQLITE_OK) {
    size_t nCopy = VS_CHUNK_SIZE - w->nBuf;
    if (nCopy > n - nDone) nCopy = n - nDone;
    memcpy(w->aBuf + w->nBuf, a + nDone, nCopy);
    w->nBuf += nCopy;
    nDone += nCopy;
    if (w->nBuf == VS_CHUNK_SIZE) snap_flush(w);
  }
  return w->rc == SQLITE_OK ? (ssize_t)n : -1;
}

int vs_storage_snapshot_write(VsStorage *p, int (*xWrite)(void *, FILE *, char **), void *pCtx, i64 *piGen,
                              char **pzErr) {
  SnapWriter w = {p, 0, 0, 0, 0, 0, SQLITE_OK};
  sqlite3_stmt *pStmt;
  int rc = stmt(p, SNAP_CLEAR, &pStmt);
  if (rc == SQLITE_OK) rc = run(pStmt);
  if (rc == SQLITE_OK) rc = stmt(p, LOG_CLEAR, &pStmt);
  if (rc == SQLITE_OK) rc = run(pStmt);
  if (rc != SQLITE_OK) return db_error(p->db, rc, pzErr, "clearing the old snapshot failed");

  w.aBuf = sqlite3_malloc(VS_CHUNK_SIZE);
  if (w.aBuf == 0) return SQLITE_NOMEM;
  cookie_io_functions_t io = {0, snap_cookie_write, 0, 0};
  FILE *f = fopencookie(&w, "w", io);
  if (f == 0) {
    sqlite3_free(w.aBuf);
    return SQLITE_NOMEM;
  }
  setvbuf(f, 0, _IONBF, 0); /* glibc hands large fwrites straight to snap_cookie_write: one copy, not two */
  rc = xWrite(pCtx, f, pzErr);
  if (fclose(f) != 0 && rc == SQLITE_OK) rc = SQLITE_IOERR;
  if (rc == SQLITE_OK) rc = snap_flush(&w);
  if (rc == SQLITE_OK) rc = w.rc;
  sqlite3_free(w.aBuf);
  i64 iGen = 0;
  if (rc == SQLITE_OK) rc = config_get_int(p, "snapshot_gen", &iGen);
  if (rc == SQLITE_OK) rc = config_put_int(p, "snapshot_gen", iGen + 1);
  if (rc == SQLITE_OK) rc = config_put_int(p, "snapshot_bytes", w.nTotal);
  if (rc == SQLITE_OK) rc = config_put_int(p, "snapshot_chunks", w.iChunk);
  if (rc == SQLITE_OK) rc = config_put_int(p, "snapshot_checksum", (i64)w.hash);
  if (rc == SQLITE_OK) rc = config_put_int(p, "log_seq", 0); /* the log is empty again (sync.c) */
  if (rc == SQLITE_OK) *piGen = iGen + 1;
  return db_error(p->db, rc, pzErr, "writing the index snapshot failed");
}

/* The largest rest of a snapshot that the seal reads into memory to verify it (Flat and HNSW snapshots: what
** Faiss's reader parses after vecstore's own arrays, a few KiB); a larger rest is verified in a first pass. */
#define VS_SEAL_MEMORY_MAX ((i64)16 << 20)

/* A snapshot stream (VsSnapIn): chunks in order, each checksummed when the stream steps into it. */
typedef struct SnapReader {
  VsStorage *p;
  sqlite3_stmt *pStmt;  /* on the current chunk, or finished */
  const unsigned char *a;
  size_t n;
  size_t iPos;
  int bEof;
  int rcStep;           /* what the last sqlite3_step returned */
  int bOutOfOrder;      /* a chunk not numbered 0, 1, 2... or not a BLOB */
  i64 iChunk;           /* chunks stepped into */
  i64 nTotal;           /* their bytes */
  i64 nConsumed;        /* bytes handed to the reader */
  uint64_t hash;        /* their checksum, chained */
  i64 nChunk, nByte;    /* what the commit recorded */
  uint64_t expect;
  int bVerified;        /* the whole snapshot matched (seal or first pass) */
  unsigned char *aRest; /* the rest, read into memory by the seal: reads come from here once it is set */
  size_t nRest, iRest;
} SnapReader;

/* Steps into the next chunk: 1, or 0 at the end (or at a chunk out of order, which ends the stream). */
static int snap_next_chunk(SnapReader *r) {
  if (r->bEof) return 0;
  r->rcStep = sqlite3_step(r->pStmt);
  if (r->rcStep != SQLITE_ROW) {
    r->bEof = 1;
    return 0;
  }
  if (sqlite3_column_int64(r->pStmt, 0) != r->iChunk || sqlite3_column_type(r->pStmt, 1) != SQLITE_BLOB) {
    r->bOutOfOrder = 1;
    r->bEof = 1;
    return 0;
  }
  r->a = sqlite3_column_blob(r->pStmt, 1);
  r->n = (size_t)sqlite3_column_bytes(r->pStmt, 1);
  r->iPos = 0;
  r->hash = chunk_checksum(r->hash, r->a, r->n);
  r->nTotal += (i64)r->n;
  r->iChunk++;
  return 1;
}

/* Copies the next n bytes of the chunks into aOut: how many there were (fewer only at the end). */
static size_t snap_read_chunks(SnapReader *r, unsigned char *aOut, size_t n) {
  size_t nDone = 0;
  while (nDone < n) {
    if (r->iPos == r->n) {
      if (!snap_next_chunk(r)) break;
      continue;
    }
    size_t nCopy = r->n - r->iPos;
    if (nCopy > n - nDone) nCopy = n - nDone;
    memcpy(aOut + nDone, r->a + r->iPos, nCopy);
    r->iPos += nCopy;
    nDone += nCopy;
  }
  r->nConsumed += (i64)nDone;
  return nDone;
}

/* VsSnapIn.xRead: from the chunks, or from the rest the seal read into memory. */
static size_t snap_read(void *pCtx, void *aOut, size_t n) {
  SnapReader *r = (SnapReader *)pCtx;
  if (r->aRest == 0) return snap_read_chunks(r, aOut, n);
  size_t nCopy = r->nRest - r->iRest < n ? r->nRest - r->iRest : n;
  memcpy(aOut, r->aRest + r->iRest, nCopy);
  r->iRest += nCopy;
  return nCopy;
}

/* Did a step fail (out of memory, an I/O error)? That is the error to report, not a damaged snapshot: the failed
** statement may have rolled the transaction back, which the caller must not go on as if nothing happened. */
static int snap_failed(const SnapReader *r) {
  return r->rcStep != SQLITE_OK && r->rcStep != SQLITE_ROW && r->rcStep != SQLITE_DONE;
}

/* After the stream has stepped through every chunk: do they match what the commit recorded? */
static int snap_matches(const SnapReader *r) {
  return r->bEof && r->rcStep == SQLITE_DONE && !r->bOutOfOrder && r->iChunk == r->nChunk &&
         r->nTotal == r->nByte && r->hash == r->expect;
}

static int snap_damaged(VsStorage *p, i64 nChunk, i64 nByte, char **pzErr) {
  vs_error(pzErr, "the index snapshot in %s_snapshot is damaged (expected %lld chunks, %lld bytes and a matching "
           "checksum); run INSERT INTO %s(%s) VALUES ('rebuild')", p->zName, nChunk, nByte, p->zName, p->zName);
  return SQLITE_CORRUPT;
}

/* A first pass: the chunks are numbered 0..n-1 and their sizes and checksum match what the commit recorded. */
static int snapshot_verify(VsStorage *p, i64 nChunk, i64 nByte, uint64_t expect, char **pzErr) {
  SnapReader v;
  memset(&v, 0, sizeof(v));
  v.nChunk = nChunk;
  v.nByte = nByte;
  v.expect = expect;
  int rc = stmt(p, SNAP_SCAN, &v.pStmt);
  if (rc != SQLITE_OK) return db_error(p->db, rc, pzErr, "reading the index snapshot failed");
  while (snap_next_chunk(&v)) {
  }
  int bOk = snap_matches(&v);
  rc = sqlite3_reset(v.pStmt);
  if (rc != SQLITE_OK) return db_error(p->db, rc, pzErr, "reading the index snapshot failed");
  return bOk ? SQLITE_OK : snap_damaged(p, nChunk, nByte, pzErr);
}

/* VsSnapIn.xSeal: a small rest is read into memory, stepping (and so checksumming) through every remaining chunk,
** and the whole is compared with what the commit recorded; a large one is verified by a first pass, and the
** stream goes on. */
static int snap_seal(void *pCtx, char **pzErr) {
  SnapReader *r = (SnapReader *)pCtx;
  if (r->bVerified) return SQLITE_OK;
  i64 nRest = r->nByte - r->nConsumed;
  if (nRest <= 0 || nRest > VS_SEAL_MEMORY_MAX) {
    int rc = snapshot_verify(r->p, r->nChunk, r->nByte, r->expect, pzErr);
    if (rc == SQLITE_OK) r->bVerified = 1;
    return rc;
  }
  unsigned char *aRest = sqlite3_malloc64((sqlite3_uint64)nRest + 1);
  if (aRest == 0) return SQLITE_NOMEM;
  size_t nGot = snap_read_chunks(r, aRest, (size_t)nRest + 1); /* one byte more: it must find the end */
  if ((i64)nGot != nRest || !snap_matches(r)) {
    sqlite3_free(aRest);
    if (snap_failed(r)) return db_error(r->p->db, r->rcStep, pzErr, "reading the index snapshot failed");
    return snap_damaged(r->p, r->nChunk, r->nByte, pzErr);
  }
  r->aRest = aRest;
  r->nRest = nGot;
  r->iRest = 0;
  r->bVerified = 1;
  return SQLITE_OK;
}

int vs_storage_snapshot_read(VsStorage *p, int (*xRead)(void *, const VsSnapIn *, i64, char **), void *pCtx,
                             char **pzErr) {
  i64 iGen = 0, nByte = 0, nChunk = 0, iSum = 0;
  int rc = config_get_int(p, "snapshot_gen", &iGen);
  if (rc == SQLITE_OK && iGen == 0) return SQLITE_DONE;
  if (rc == SQLITE_OK) rc = config_get_int(p, "snapshot_bytes", &nByte);
  if (rc == SQLITE_OK) rc = config_get_int(p, "snapshot_chunks", &nChunk);
  if (rc == SQLITE_OK) rc = config_get_int(p, "snapshot_checksum", &iSum);
  if (rc != SQLITE_OK) return db_error(p->db, rc, pzErr, "reading the table state failed");

  SnapReader r;
  memset(&r, 0, sizeof(r));
  r.p = p;
  r.nChunk = nChunk;
  r.nByte = nByte;
  r.expect = (uint64_t)iSum;
  rc = stmt(p, SNAP_READ, &r.pStmt);
  if (rc != SQLITE_OK) return db_error(p->db, rc, pzErr, "reading the index snapshot failed");
  VsSnapIn in = {snap_read, snap_seal, &r};
  rc = xRead(pCtx, &in, nByte, pzErr);
  if (!r.bVerified) {
    /* A reader that stopped early or never sealed: step through the rest and compare. The snapshot's verdict
    ** wins over the reader's, as when every chunk was checked first. */
    while (snap_next_chunk(&r)) {
    }
    if (!snap_matches(&r) && !snap_failed(&r)) {
      sqlite3_free(*pzErr);
      *pzErr = 0;
      rc = snap_damaged(p, nChunk, nByte, pzErr);
    }
  }
  if (snap_failed(&r)) {
    sqlite3_free(*pzErr);
    *pzErr = 0;
    rc = db_error(p->db, r.rcStep, pzErr, "reading the index snapshot failed");
  }
  int rcReset = sqlite3_reset(r.pStmt);
  sqlite3_free(r.aRest);
  if (rc == SQLITE_OK && rcReset != SQLITE_OK) rc = db_error(p->db, rcReset, pzErr, "reading the index snapshot failed");
  return rc;
}

int vs_storage_snapshot_info(VsStorage *p, i64 *pnByte, i64 *pnChunk) {
  sqlite3_stmt *pStmt;
  int rc = stmt(p, SNAP_INFO, &pStmt);
  if (rc == SQLITE_OK) {
    if (sqlite3_step(pStmt) == SQLITE_ROW) {
      *pnChunk = sqlite3_column_int64(pStmt, 0);
      *pnByte = sqlite3_column_int64(pStmt, 1);
    }
    rc = sqlite3_reset(pStmt);
  }
  return rc;
}

unsigned int vs_storage_data_version(VsStorage *p) {
  unsigned int v = 0;
  sqlite3_file_control(p->db, p->zDb, SQLITE_FCNTL_DATA_VERSION, &v);
  return v;
}
