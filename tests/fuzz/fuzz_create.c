/*
** fuzz_create: the arguments of CREATE VIRTUAL TABLE ... USING vecstore(...) (ext/config.c), the table name
** and declared column names as they reach the shadow tables' SQL, and the life of the table created.
**
** Input: the first line is the table name (empty: t; a leading '~' puts the table in the temp schema, a leading
** '^' in an attached in-memory schema aux); the rest is put verbatim between the parentheses of
** CREATE VIRTUAL TABLE "<name>" USING vecstore(<rest>). When CREATE succeeds, the table is exercised and these
** invariants checked besides the sanitizers:
**   - the dim in <name>_config is 1..65536 and vectors of that dim can be inserted (dim <= 4096 is tried);
**   - a search with k = 2 over 3 rows returns 2 rows; integrity-check passes;
**   - a copy of the database (sqlite3_serialize/deserialize, so the table is connected from its stored
**     arguments) gives the same search result count;
**   - ALTER TABLE ... RENAME keeps it searchable, and DROP TABLE leaves no table or index behind.
** CREATE errors must carry a "vecstore: " message or be SQLite's own (syntax, name clashes).
** VECSTORE_FUZZ_AVOID=<text> skips inputs whose arguments contain <text>, to fuzz on past a known finding.
*/
#include "fuzz_common.h"

#define MAX_NAME 200

static void exec_ok(sqlite3 *db, const char *zSql) {
  char *zErr = 0;
  if (sqlite3_exec(db, zSql, 0, 0, &zErr) != SQLITE_OK) fz_fail("%s: %s", zSql, zErr ? zErr : "?");
}

/* The first column of the first row as an integer; aborts unless the statement succeeds. */
static sqlite3_int64 int_query(sqlite3 *db, const char *zSql) {
  sqlite3_stmt *pStmt = 0;
  if (sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0) != SQLITE_OK) fz_fail("prepare %s: %s", zSql, sqlite3_errmsg(db));
  sqlite3_int64 v = -1;
  if (sqlite3_step(pStmt) == SQLITE_ROW) v = sqlite3_column_int64(pStmt, 0);
  if (sqlite3_finalize(pStmt) != SQLITE_OK) fz_fail("%s: %s", zSql, sqlite3_errmsg(db));
  return v;
}

/* Rows of a k = 2 search of "schema"."name" for dim-dimensional vectors. */
static sqlite3_int64 search_count(sqlite3 *db, const char *zSchema, const char *zName, int nDim) {
  char *zSql = sqlite3_mprintf("SELECT count(*) FROM \"%w\".\"%w\" WHERE embedding MATCH "
                               "vecstore_embed_hash('alpha gamma', %d) AND k = 2",
                               zSchema, zName, nDim);
  sqlite3_int64 n = int_query(db, zSql);
  sqlite3_free(zSql);
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *pData, size_t nData) {
  size_t iNl = 0;
  while (iNl < nData && pData[iNl] != '\n') iNl++;
  if (iNl > MAX_NAME) return 0;
  char zName[MAX_NAME + 3];
  memcpy(zName, pData, iNl);
  zName[iNl] = 0;
  if (memchr(pData, 0, iNl) != 0) return 0; /* a name is C text */
  const char *zSchema = "main";
  char *zTable = zName;
  if (zTable[0] == '~') {
    zSchema = "temp";
    zTable++;
  } else if (zTable[0] == '^') {
    zSchema = "aux";
    zTable++;
  }
  if (zTable[0] == 0) zTable = "t";
  const char *zArgs = iNl < nData ? (const char *)pData + iNl + 1 : "";
  int nArgs = iNl < nData ? (int)(nData - iNl - 1) : 0;

  /* VECSTORE_FUZZ_AVOID=<text>: skip arguments containing it (to fuzz on past a known finding). */
  const char *zAvoid = getenv("VECSTORE_FUZZ_AVOID");
  if (zAvoid && zAvoid[0] && memmem(zArgs, (size_t)nArgs, zAvoid, strlen(zAvoid))) return 0;

  sqlite3 *db = fz_open(":memory:");
  exec_ok(db, "ATTACH ':memory:' AS aux");
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE \"%w\".\"%w\" USING vecstore(%.*s)", zSchema, zTable, nArgs, zArgs);
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  sqlite3_free(zSql);
  if (rc == SQLITE_OK && pStmt) {
    rc = sqlite3_step(pStmt);
    rc = sqlite3_finalize(pStmt);
    if (rc != SQLITE_OK) {
      const char *zMsg = sqlite3_errmsg(db);
      if (fz_is_bug_code(rc)) fz_fail("CREATE failed with code %d: %s", rc, zMsg);
      /* vecstore's errors, or SQLite's own about the statement or a clash of names. */
      if (strncmp(zMsg, "vecstore: ", 10) != 0 && strstr(zMsg, "vecstore: ") == 0 && strstr(zMsg, "already exists") == 0 &&
          strstr(zMsg, "syntax error") == 0 && strstr(zMsg, "reserved for internal use") == 0 &&
          strstr(zMsg, "unrecognized token") == 0) {
        fz_fail("CREATE failed without a vecstore message: %s", zMsg);
      }
      sqlite3_close(db);
      return 0;
    }
  } else {
    sqlite3_finalize(pStmt);
    sqlite3_close(db);
    return 0;
  }

  /* The table exists. */
  zSql = sqlite3_mprintf("SELECT value FROM \"%w\".\"%w_config\" WHERE key = 'dim'", zSchema, zTable);
  sqlite3_int64 nDim = int_query(db, zSql);
  sqlite3_free(zSql);
  if (nDim < 1 || nDim > 65536) fz_fail("the stored dim is %lld", (long long)nDim);

  if (nDim <= 4096) {
    zSql = sqlite3_mprintf("INSERT INTO \"%w\".\"%w\"(content, embedding) SELECT value, vecstore_embed_hash(value, %d) "
                           "FROM json_each('[\"alpha beta\", \"gamma delta\", \"epsilon zeta\"]')",
                           zSchema, zTable, (int)nDim);
    exec_ok(db, zSql);
    sqlite3_free(zSql);
    if (search_count(db, zSchema, zTable, (int)nDim) != 2) fz_fail("a k = 2 search of 3 rows did not return 2");
    zSql = sqlite3_mprintf("INSERT INTO \"%w\".\"%w\"(\"%w\") VALUES ('integrity-check')", zSchema, zTable, zTable);
    exec_ok(db, zSql);
    sqlite3_free(zSql);

    /* A copy of the database: the table is connected again from its stored arguments. */
    if (strcmp(zSchema, "main") == 0) {
      sqlite3_int64 nByte = 0;
      unsigned char *pImage = sqlite3_serialize(db, "main", &nByte, 0);
      if (pImage == 0) fz_fail("sqlite3_serialize failed");
      sqlite3 *db2 = fz_open(":memory:");
      rc = sqlite3_deserialize(db2, "main", pImage, nByte, nByte, SQLITE_DESERIALIZE_FREEONCLOSE |
                               SQLITE_DESERIALIZE_RESIZEABLE);
      if (rc != SQLITE_OK) fz_fail("sqlite3_deserialize failed: %d", rc);
      if (search_count(db2, "main", zTable, (int)nDim) != 2) fz_fail("the copy's k = 2 search did not return 2");
      zSql = sqlite3_mprintf("INSERT INTO \"%w\"(\"%w\") VALUES ('integrity-check')", zTable, zTable);
      exec_ok(db2, zSql);
      sqlite3_free(zSql);
      sqlite3_close(db2);
    }
  }

  /* Rename (when the new names are free), then drop: nothing may remain. */
  char zNew[MAX_NAME + 8];
  snprintf(zNew, sizeof(zNew), "%s_r", zTable);
  zSql = sqlite3_mprintf("ALTER TABLE \"%w\".\"%w\" RENAME TO \"%w\"", zSchema, zTable, zNew);
  char *zErr = 0;
  rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
  sqlite3_free(zSql);
  if (rc != SQLITE_OK) {
    if (fz_is_bug_code(rc)) fz_fail("ALTER TABLE RENAME failed with code %d: %s", rc, zErr ? zErr : "?");
    sqlite3_free(zErr);
  } else {
    zTable = zNew;
    if (nDim <= 4096 && search_count(db, zSchema, zTable, (int)nDim) != 2) fz_fail("after RENAME the search changed");
  }
  zSql = sqlite3_mprintf("DROP TABLE \"%w\".\"%w\"", zSchema, zTable);
  exec_ok(db, zSql);
  sqlite3_free(zSql);
  zSql = sqlite3_mprintf("SELECT count(*) FROM \"%w\".sqlite_schema", zSchema);
  sqlite3_int64 nLeft = int_query(db, zSql);
  sqlite3_free(zSql);
  if (nLeft != 0) fz_fail("DROP TABLE left %lld schema entries behind", (long long)nLeft);
  if (sqlite3_close(db) != SQLITE_OK) fz_fail("sqlite3_close: %s", sqlite3_errmsg(db));
  return 0;
}
