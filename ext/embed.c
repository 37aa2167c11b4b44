/*
** embed.c: the built-in lexical embedder, vecstore_embed_hash(text, dim).
**
** Words are maximal runs of ASCII letters and digits and of non-ASCII bytes (so UTF-8 words stay whole), with
** ASCII letters lower-cased; common English stop words are dropped. The features are the remaining words and
** each pair of neighbouring remaining words ("w1 w2"). Each feature is hashed with 64-bit FNV-1a; bit 0 of the
** hash gives its sign, (hash >> 1) mod dim its bucket, and it adds sign * (1 + ln tf) once, tf being its count
** in the text. The vector is then scaled to unit L2 norm (a text without features gives the zero vector).
** Everything is integer or IEEE float arithmetic on bytes, so the result is the same on every platform.
*/
#include "vecstore_int.h"

#include <math.h>

static const char *const azStopWords[] = {
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do",
    "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he",
    "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its",
    "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once",
    "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some",
    "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they",
    "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when",
    "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself",
    "yourselves", 0};

static int is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static int is_stop_word(const char *z, int n) {
  for (int i = 0; azStopWords[i]; i++) {
    if ((int)strlen(azStopWords[i]) == n && memcmp(azStopWords[i], z, (size_t)n) == 0) return 1;
  }
  return 0;
}

static uint64_t fnv1a(uint64_t h, const char *z, int n) {
  for (int i = 0; i < n; i++) {
    h ^= (unsigned char)z[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

#define FNV_OFFSET 0xcbf29ce484222325ull

/* Counts each feature of the lower-cased text z into pTf (hash -> count). */
static int count_features(char *z, int n, VsI64Map *pTf) {
  const char *zPrev = 0;
  int nPrev = 0;
  int rc = SQLITE_OK;
  for (int i = 0; i < n; i++) {
    if (z[i] >= 'A' && z[i] <= 'Z') z[i] = (char)(z[i] - 'A' + 'a');
  }
  for (int i = 0; rc == SQLITE_OK && i < n;) {
    if (!is_word_byte((unsigned char)z[i])) {
      i++;
      continue;
    }
    int iStart = i;
    while (i < n && is_word_byte((unsigned char)z[i])) i++;
    const char *zWord = z + iStart;
    int nWord = i - iStart;
    if (is_stop_word(zWord, nWord)) continue;
    uint64_t aHash[2];
    int nHash = 0;
    aHash[nHash++] = fnv1a(FNV_OFFSET, zWord, nWord);
    if (zPrev) {
      uint64_t h = fnv1a(FNV_OFFSET, zPrev, nPrev);
      h = fnv1a(h, " ", 1);
      aHash[nHash++] = fnv1a(h, zWord, nWord);
    }
    for (int j = 0; rc == SQLITE_OK && j < nHash; j++) {
      i64 nOld = 0;
      vs_i64map_get(pTf, (i64)aHash[j], &nOld);
      rc = vs_i64map_put(pTf, (i64)aHash[j], nOld + 1);
    }
    zPrev = zWord;
    nPrev = nWord;
  }
  return rc;
}

int vs_embed_hash(const char *zText, int nText, int nDim, float *aOut) {
  VsI64Map tf;
  vs_i64map_init(&tf);
  memset(aOut, 0, (size_t)nDim * sizeof(float));
  char *z = sqlite3_malloc(nText + 1);
  if (z == 0) return SQLITE_NOMEM;
  memcpy(z, zText, (size_t)nText);
  int rc = count_features(z, nText, &tf);
  double *aSum = rc == SQLITE_OK ? sqlite3_malloc64((sqlite3_uint64)nDim * sizeof(double)) : 0;
  if (rc == SQLITE_OK && aSum == 0) rc = SQLITE_NOMEM;
  if (rc == SQLITE_OK) {
    memset(aSum, 0, (size_t)nDim * sizeof(double));
    for (i64 i = 0; i < tf.nSlot; i++) {
      if (tf.aUsed[i] != 1) continue;
      uint64_t h = (uint64_t)tf.aKey[i];
      double w = 1.0 + log((double)tf.aVal[i]);
      aSum[(h >> 1) % (uint64_t)nDim] += (h & 1) ? -w : w;
    }
    double rNorm = 0;
    for (int i = 0; i < nDim; i++) rNorm += aSum[i] * aSum[i];
    rNorm = sqrt(rNorm);
    for (int i = 0; i < nDim; i++) aOut[i] = rNorm > 0 ? (float)(aSum[i] / rNorm) : 0.0f;
  }
  sqlite3_free(aSum);
  sqlite3_free(z);
  vs_i64map_clear(&tf);
  return rc;
}

static void embed_hash_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return;
  int eType = sqlite3_value_numeric_type(argv[1]);
  i64 nDim = sqlite3_value_int64(argv[1]);
  if (eType != SQLITE_INTEGER || nDim < 1 || nDim > VS_MAX_DIM) {
    const char *z = (const char *)sqlite3_value_text(argv[1]);
    char *zErr = sqlite3_mprintf("vecstore: vecstore_embed_hash() dim must be an integer from 1 to %d, received %s",
                                 VS_MAX_DIM, z ? z : "NULL");
    sqlite3_result_error(ctx, zErr, -1);
    sqlite3_free(zErr);
    return;
  }
  const char *zText = (const char *)sqlite3_value_text(argv[0]);
  int nText = sqlite3_value_bytes(argv[0]);
  float *aOut = sqlite3_malloc64((sqlite3_uint64)nDim * sizeof(float));
  if (aOut == 0 || vs_embed_hash(zText ? zText : "", nText, (int)nDim, aOut) != SQLITE_OK) {
    sqlite3_free(aOut);
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_blob(ctx, aOut, (int)nDim * (int)sizeof(float), sqlite3_free);
}

int vs_embed_register(sqlite3 *db) {
  return sqlite3_create_function(db, "vecstore_embed_hash", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
                                 0, embed_hash_func, 0, 0);
}

#define VS_EMBED_INNOCUOUS " -- innocuous"

/* The embedder is named by the table's definition, that is by the database file, so it is held to SQLite's rules
** for functions a schema calls (views, triggers, generated columns): a SQLITE_DIRECTONLY function is refused, and
** with trusted_schema off so is one not marked SQLITE_INNOCUOUS. The function's flags come from
** pragma_function_list when the embedder statement is prepared (a build without that pragma is trusted only with
** trusted_schema on); an innocuous embedder's statement carries the marker VS_EMBED_INNOCUOUS. */
static int prepare_embedder(VsTable *pTab, const char *zFn, char **pzErr) {
  sqlite3_stmt *pFlags = 0;
  int bDirectOnly = 0, bInnocuous = 0;
  int rc = SQLITE_OK;
  if (sqlite3_prepare_v2(pTab->db, "SELECT flags FROM pragma_function_list WHERE name = ?1 COLLATE NOCASE AND "
                         "narg IN (1, -1)", -1, &pFlags, 0) == SQLITE_OK) {
    sqlite3_bind_text(pFlags, 1, zFn, -1, SQLITE_STATIC);
    int bAll = 1; /* innocuous only when every registration of the name is */
    while ((rc = sqlite3_step(pFlags)) == SQLITE_ROW) {
      int flags = sqlite3_column_int(pFlags, 0);
      if (flags & SQLITE_DIRECTONLY) bDirectOnly = 1;
      bAll = bAll && (flags & SQLITE_INNOCUOUS);
      bInnocuous = bAll;
    }
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  sqlite3_finalize(pFlags);
  /* A statement that failed (out of memory, an I/O error) may have rolled the transaction back: never go on. */
  if (rc != SQLITE_OK) return rc;
  if (bDirectOnly) {
    vs_error(pzErr, "embedder '%s' is a direct-only SQL function (SQLITE_DIRECTONLY): the table definition may not "
             "call it", zFn);
    return SQLITE_ERROR;
  }
  char *zSql = sqlite3_mprintf("SELECT \"%w\"(?1)%s", zFn, bInnocuous ? VS_EMBED_INNOCUOUS : "");
  rc = zSql ? sqlite3_prepare_v3(pTab->db, zSql, -1, SQLITE_PREPARE_PERSISTENT, &pTab->pEmbedStmt, 0)
            : SQLITE_NOMEM;
  sqlite3_free(zSql);
  return rc;
}

/* Calls the application's embedder function zFn (a cached statement "SELECT zFn(?1)") on pText. */
static int embed_with_function(VsTable *pTab, const char *zFn, sqlite3_value *pText, float **paVec, char **pzErr) {
  int rc = SQLITE_OK;
  if (pTab->pEmbedStmt == 0) rc = prepare_embedder(pTab, zFn, pzErr);
  if (rc == SQLITE_OK) {
    int bTrusted = 1;
    sqlite3_db_config(pTab->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, -1, &bTrusted);
    const char *zSql = sqlite3_sql(pTab->pEmbedStmt);
    size_t nSql = strlen(zSql), nMark = strlen(VS_EMBED_INNOCUOUS);
    if (!bTrusted && (nSql < nMark || strcmp(zSql + nSql - nMark, VS_EMBED_INNOCUOUS) != 0)) {
      vs_error(pzErr, "embedder '%s' is not marked SQLITE_INNOCUOUS and trusted_schema is off: the table definition "
               "may not call it (register it with SQLITE_INNOCUOUS, or turn trusted_schema on)", zFn);
      return SQLITE_ERROR;
    }
  }
  sqlite3_stmt *pStmt = pTab->pEmbedStmt;
  if (rc == SQLITE_OK) {
    sqlite3_bind_value(pStmt, 1, pText);
    rc = sqlite3_step(pStmt);
    if (rc == SQLITE_ROW) {
      int nDim = 0;
      char *zWhat = sqlite3_mprintf("the output of embedder '%s'", zFn);
      rc = vs_vector_parse(sqlite3_column_value(pStmt, 0), pTab->pCfg->nDim, zWhat ? zWhat : "embedder output",
                           paVec, &nDim, pzErr);
      sqlite3_free(zWhat);
    } else {
      rc = SQLITE_ERROR;
    }
  }
  if (rc != SQLITE_OK && *pzErr == 0) {
    vs_error(pzErr, "embedder '%s' failed: %s", zFn, rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(pTab->db));
  }
  if (pStmt) {
    sqlite3_reset(pStmt);
    sqlite3_clear_bindings(pStmt);
  }
  return rc;
}

int vs_embed_text(VsTable *pTab, sqlite3_value *pText, float **paVec, char **pzErr) {
  const char *zFn = pTab->pCfg->zEmbedder;
  int nDim = pTab->pCfg->nDim;
  *paVec = 0;
  if (zFn == 0) {
    vs_error(pzErr, "table %s has no embedder: expected an embedding vector of dim %d, or a table created with "
             "embedder=hash or embedder=<sql function>", pTab->pCfg->zName, nDim);
    return SQLITE_ERROR;
  }
  if (sqlite3_stricmp(zFn, "hash") != 0) return embed_with_function(pTab, zFn, pText, paVec, pzErr);
  if (sqlite3_value_type(pText) == SQLITE_BLOB) {
    vs_error(pzErr, "embedder 'hash' expects text, received a blob");
    return SQLITE_MISMATCH;
  }
  const char *zText = (const char *)sqlite3_value_text(pText);
  float *aVec = sqlite3_malloc64((sqlite3_uint64)nDim * sizeof(float));
  int rc = aVec ? vs_embed_hash(zText ? zText : "", sqlite3_value_bytes(pText), nDim, aVec) : SQLITE_NOMEM;
  if (rc != SQLITE_OK) {
    sqlite3_free(aVec);
    return rc;
  }
  *paVec = aVec;
  return SQLITE_OK;
}
