/*
** config.c: the arguments of CREATE VIRTUAL TABLE ... USING vecstore(...).
**
** Each argument is `key = value`; values may be bare or quoted with '', "" or ``. Known keys: dim (required,
** 1..65536), metric (l2 | ip | cosine), index (a Faiss index_factory description, default Flat), embedder
** and search_params. Unknown or repeated keys and bad values are errors that name them. An argument without
** '=' declares a typed metadata column, `name TYPE` with TYPE INTEGER (INT), REAL (FLOAT, DOUBLE), TEXT or BLOB.
** Two mistakes get errors that show what to write: SQLite splits the arguments at commas, so index=HNSW32,Flat
** arrives as index=HNSW32 and a stray Flat (write index='HNSW32,Flat'); and a sqlite-vec column such as
** `embedding float[4]` (write dim = 4: the embedding column is built in).
*/
#include "vecstore_int.h"

#include <ctype.h>
#include <errno.h>

int vs_config_set_string(char **pz, const char *z) {
  char *zNew = 0;
  if (z) {
    zNew = sqlite3_mprintf("%s", z);
    if (zNew == 0) return SQLITE_NOMEM;
  }
  sqlite3_free(*pz);
  *pz = zNew;
  return SQLITE_OK;
}

void vs_config_free(VsConfig *pCfg) {
  if (pCfg == 0) return;
  sqlite3_free(pCfg->zDb);
  sqlite3_free(pCfg->zName);
  sqlite3_free(pCfg->zIndex);
  sqlite3_free(pCfg->zSearchParams);
  sqlite3_free(pCfg->zEmbedder);
  for (int i = 0; i < pCfg->nCol; i++) sqlite3_free(pCfg->aCol[i].zName);
  sqlite3_free(pCfg->aCol);
  sqlite3_free(pCfg);
}

static char *trim_copy(const char *z, int n) {
  while (n > 0 && isspace((unsigned char)z[0])) {
    z++;
    n--;
  }
  while (n > 0 && isspace((unsigned char)z[n - 1])) n--;
  return sqlite3_mprintf("%.*s", n, z);
}

/* Removes one level of SQL quoting ('', "", ``, []) from z in place, undoubling the quote character. */
static void dequote(char *z) {
  char q = z[0];
  if (q == '[') q = ']';
  else if (q != '\'' && q != '"' && q != '`') return;
  int n = (int)strlen(z);
  if (n < 2 || z[n - 1] != q) return;
  int j = 0;
  for (int i = 1; i < n - 1; i++) {
    if (z[i] == q && q != ']' && z[i + 1] == q) i++;
    z[j++] = z[i];
  }
  z[j] = 0;
}

const char *vs_coltype_name(VsColType eType) {
  static const char *const azName[] = {"INTEGER", "REAL", "TEXT", "BLOB"};
  return azName[eType];
}

/* Parses a column declaration `name TYPE` (name may be quoted) and appends it to pCfg. */
static int add_column(VsConfig *pCfg, const char *zArg, char **pzErr) {
  static const char *const azReserved[] = {"id", "content", "metadata", "embedding", "distance", "score", "k",
                                           "fetch_k", "lambda_mult", "search_params", "rowid", "oid", "_rowid_", 0};
  char *zDecl = trim_copy(zArg, (int)strlen(zArg));
  if (zDecl == 0) return SQLITE_NOMEM;
  int rc = SQLITE_OK;
  char *zName = 0;
  const char *zType = 0;
  char q = zDecl[0];
  if (q == '"' || q == '`' || q == '[' || q == '\'') {
    char qEnd = q == '[' ? ']' : q;
    char *zEnd = strchr(zDecl + 1, qEnd);
    while (zEnd && qEnd != ']' && zEnd[1] == qEnd) zEnd = strchr(zEnd + 2, qEnd);
    if (zEnd) {
      zName = sqlite3_mprintf("%.*s", (int)(zEnd - zDecl + 1), zDecl);
      zType = zEnd + 1;
    }
  } else {
    int n = 0;
    while (zDecl[n] && !isspace((unsigned char)zDecl[n])) n++;
    zName = sqlite3_mprintf("%.*s", n, zDecl);
    zType = zDecl + n;
  }
  if (zName) dequote(zName);
  while (zType && isspace((unsigned char)*zType)) zType++;
  VsColType eType = VS_TYPE_TEXT;
  if (zName == 0 || zName[0] == 0 || zType == 0 || zType[0] == 0) {
    vs_error(pzErr, "expected an option key = value or a column declaration such as 'page INTEGER', received '%s'",
             zDecl);
    rc = SQLITE_ERROR;
  } else if (strpbrk(zName, "{}") != 0) {
    vs_error(pzErr, "column name '%s' may not contain { or }", zName);
    rc = SQLITE_ERROR;
  } else if (sqlite3_stricmp(zType, "INTEGER") == 0 || sqlite3_stricmp(zType, "INT") == 0) {
    eType = VS_TYPE_INTEGER;
  } else if (sqlite3_stricmp(zType, "REAL") == 0 || sqlite3_stricmp(zType, "FLOAT") == 0 ||
             sqlite3_stricmp(zType, "DOUBLE") == 0) {
    eType = VS_TYPE_REAL;
  } else if (sqlite3_stricmp(zType, "TEXT") == 0) {
    eType = VS_TYPE_TEXT;
  } else if (sqlite3_stricmp(zType, "BLOB") == 0) {
    eType = VS_TYPE_BLOB;
  } else {
    vs_error(pzErr, "column %s: type must be INTEGER, REAL, TEXT or BLOB, received '%s'", zName, zType);
    rc = SQLITE_ERROR;
  }
  for (int i = 0; rc == SQLITE_OK && azReserved[i]; i++) {
    if (sqlite3_stricmp(zName, azReserved[i]) == 0 || sqlite3_stricmp(zName, pCfg->zName) == 0) {
      vs_error(pzErr, "column name '%s' is taken by vecstore, expected another name", zName);
      rc = SQLITE_ERROR;
    }
  }
  for (int i = 0; rc == SQLITE_OK && i < pCfg->nCol; i++) {
    if (sqlite3_stricmp(zName, pCfg->aCol[i].zName) == 0) {
      vs_error(pzErr, "column '%s' declared more than once", zName);
      rc = SQLITE_ERROR;
    }
  }
  if (rc == SQLITE_OK && pCfg->nCol >= VS_MAX_COLUMNS) {
    vs_error(pzErr, "at most %d metadata columns can be declared, received more", VS_MAX_COLUMNS);
    rc = SQLITE_ERROR;
  }
  if (rc == SQLITE_OK) {
    VsColumn *aNew = sqlite3_realloc64(pCfg->aCol, (sqlite3_uint64)(pCfg->nCol + 1) * sizeof(VsColumn));
    if (aNew == 0) {
      rc = SQLITE_NOMEM;
    } else {
      pCfg->aCol = aNew;
      pCfg->aCol[pCfg->nCol].zName = zName;
      pCfg->aCol[pCfg->nCol].eType = eType;
      pCfg->nCol++;
      zName = 0;
    }
  }
  sqlite3_free(zName);
  sqlite3_free(zDecl);
  return rc;
}

/* Parses one `key = value` argument into a sqlite3_malloc'd key and value. */
static int split_argument(const char *zArg, char **pzKey, char **pzValue, char **pzErr) {
  const char *zEq = strchr(zArg, '=');
  if (zEq == 0) {
    vs_error(pzErr, "expected an option of the form key = value, received '%s'", zArg);
    return SQLITE_ERROR;
  }
  *pzKey = trim_copy(zArg, (int)(zEq - zArg));
  *pzValue = trim_copy(zEq + 1, (int)strlen(zEq + 1));
  if (*pzKey == 0 || *pzValue == 0) return SQLITE_NOMEM;
  dequote(*pzKey);
  dequote(*pzValue);
  for (char *p = *pzKey; *p; p++) *p = (char)tolower((unsigned char)*p);
  return SQLITE_OK;
}

static int parse_dim(const char *zValue, int *pnDim, char **pzErr) {
  char *zEnd = 0;
  errno = 0;
  long v = strtol(zValue, &zEnd, 10);
  if (zValue[0] == 0 || *zEnd != 0 || errno != 0 || v < 1 || v > VS_MAX_DIM) {
    vs_error(pzErr, "dim must be an integer from 1 to %d, received '%s'", VS_MAX_DIM, zValue);
    return SQLITE_ERROR;
  }
  *pnDim = (int)v;
  return SQLITE_OK;
}

static int is_identifier(const char *z) {
  if (!isalpha((unsigned char)z[0]) && z[0] != '_') return 0;
  for (; *z; z++) {
    if (!isalnum((unsigned char)*z) && *z != '_') return 0;
  }
  return 1;
}

/* Applies one option to pCfg. aSeen marks which keys were given, to reject repeats. */
static int apply_option(VsConfig *pCfg, const char *zKey, const char *zValue, int *aSeen, char **pzErr) {
  static const char *const azKey[] = {"dim", "metric", "index", "embedder", "search_params", 0};
  int iKey = 0;
  while (azKey[iKey] && strcmp(azKey[iKey], zKey) != 0) iKey++;
  if (azKey[iKey] == 0) {
    vs_error(pzErr, "unknown option '%s' (expected dim, metric, index, embedder or search_params)", zKey);
    return SQLITE_ERROR;
  }
  if (aSeen[iKey]++) {
    vs_error(pzErr, "option '%s' given more than once", zKey);
    return SQLITE_ERROR;
  }
  switch (iKey) {
    case 0:
      return parse_dim(zValue, &pCfg->nDim, pzErr);
    case 1:
      if (vs_metric_parse(zValue, &pCfg->eMetric) != SQLITE_OK) {
        vs_error(pzErr, "metric must be l2, ip or cosine, received '%s'", zValue);
        return SQLITE_ERROR;
      }
      return SQLITE_OK;
    case 2:
      if (zValue[0] == 0) {
        vs_error(pzErr, "index must be a Faiss index_factory description such as Flat or HNSW32, received ''");
        return SQLITE_ERROR;
      }
      return vs_config_set_string(&pCfg->zIndex, zValue);
    case 3:
      if (!is_identifier(zValue)) {
        vs_error(pzErr, "embedder must be 'hash' or the name of an SQL function, received '%s'", zValue);
        return SQLITE_ERROR;
      }
      return vs_config_set_string(&pCfg->zEmbedder, zValue);
    default:
      return vs_config_set_string(&pCfg->zSearchParams, zValue[0] ? zValue : 0);
  }
}

/* Is the value of the `key = value` argument zArg quoted? */
static int value_is_quoted(const char *zArg) {
  const char *z = strchr(zArg, '=');
  if (z == 0) return 0;
  z++;
  while (isspace((unsigned char)*z)) z++;
  return *z == '\'' || *z == '"' || *z == '`' || *z == '[';
}

/* Could zArg be a piece of a Faiss index description cut off at a comma (Flat, PQ8x4, RFlat, Refine(Flat))? One
** word starting with a capital letter, as the index_factory components do. */
static int is_factory_piece(const char *zArg) {
  while (isspace((unsigned char)*zArg)) zArg++;
  if (!isupper((unsigned char)*zArg)) return 0;
  while (*zArg && !isspace((unsigned char)*zArg)) zArg++;
  while (isspace((unsigned char)*zArg)) zArg++;
  return *zArg == 0;
}

/* Reports argv[iIndex] (an unquoted index = ...) and the factory pieces after it as one index description that
** SQLite split at its commas, with the quoted form to write instead. Always SQLITE_ERROR (or SQLITE_NOMEM). */
static int unquoted_index_error(int argc, const char *const *argv, int iIndex, char **pzErr) {
  char *zKey = 0, *zValue = 0;
  int rc = split_argument(argv[iIndex], &zKey, &zValue, pzErr);
  sqlite3_str *pDesc = sqlite3_str_new(0);
  sqlite3_str *pPieces = sqlite3_str_new(0);
  int nPiece = 0;
  if (rc == SQLITE_OK) {
    sqlite3_str_appendall(pDesc, zValue);
    for (int i = iIndex + 1; i < argc && strchr(argv[i], '=') == 0 && is_factory_piece(argv[i]); i++) {
      char *zPiece = trim_copy(argv[i], (int)strlen(argv[i]));
      if (zPiece == 0) break;
      sqlite3_str_appendf(pDesc, ",%s", zPiece);
      sqlite3_str_appendf(pPieces, "%s'%s'", nPiece++ ? ", " : "", zPiece);
      sqlite3_free(zPiece);
    }
  }
  char *zArg = trim_copy(argv[iIndex], (int)strlen(argv[iIndex]));
  char *zDesc = sqlite3_str_finish(pDesc);
  char *zPieces = sqlite3_str_finish(pPieces);
  if (rc == SQLITE_OK && (zArg == 0 || zDesc == 0 || zPieces == 0)) rc = SQLITE_NOMEM;
  if (rc == SQLITE_OK) {
    vs_error(pzErr, "index description '%s' must be quoted: SQLite splits the arguments of CREATE VIRTUAL TABLE at "
             "commas, so vecstore received %s and %s %s; expected the whole description in one argument, write "
             "index='%s'", zDesc, zArg, nPiece == 1 ? "a separate argument" : "separate arguments", zPieces, zDesc);
    rc = SQLITE_ERROR;
  }
  sqlite3_free(zArg);
  sqlite3_free(zDesc);
  sqlite3_free(zPieces);
  sqlite3_free(zKey);
  sqlite3_free(zValue);
  return rc;
}

/* If zArg is a sqlite-vec vector column (`embedding float[4]`, any name, perhaps with distance_metric=...), reports
** it with the vecstore options to write instead and returns SQLITE_ERROR; else SQLITE_OK. */
static int sqlite_vec_column(const char *zArg, char **pzErr) {
  const char *z = zArg;
  while (isspace((unsigned char)*z)) z++;
  while (*z && !isspace((unsigned char)*z)) z++; /* the name */
  while (isspace((unsigned char)*z)) z++;
  if (sqlite3_strnicmp(z, "float[", 6) != 0 || !isdigit((unsigned char)z[6])) return SQLITE_OK;
  const char *zDim = z + 6;
  int nDim = 0;
  while (isdigit((unsigned char)zDim[nDim])) nDim++;
  if (zDim[nDim] != ']') return SQLITE_OK;
  /* sqlite-vec's distance_metric=l2|cosine is vecstore's metric. */
  char zMetric[16] = {0};
  const char *zOpt = z + 6 + nDim + 1;
  while (*zOpt && sqlite3_strnicmp(zOpt, "distance_metric", 15) != 0) zOpt++;
  if (*zOpt) {
    zOpt += 15;
    while (isspace((unsigned char)*zOpt) || *zOpt == '=') zOpt++;
    int n = 0;
    while (isalnum((unsigned char)zOpt[n]) && n < (int)sizeof(zMetric) - 1) n++;
    memcpy(zMetric, zOpt, (size_t)n);
    VsMetric eMetric;
    if (vs_metric_parse(zMetric, &eMetric) != SQLITE_OK) zMetric[0] = 0;
  }
  char *zDecl = trim_copy(zArg, (int)strlen(zArg));
  if (zDecl == 0) return SQLITE_NOMEM;
  vs_error(pzErr, "'%s' is sqlite-vec syntax: the vector column of vecstore is built in and always named embedding, "
           "and its size is the dim option; expected dim = %.*s%s%s, received '%s'; write vecstore(dim = %.*s%s%s)",
           zDecl, nDim, zDim, zMetric[0] ? ", metric = " : "", zMetric, zDecl, nDim, zDim,
           zMetric[0] ? ", metric = " : "", zMetric);
  sqlite3_free(zDecl);
  return SQLITE_ERROR;
}

int vs_config_parse(int argc, const char *const *argv, int bCreate, VsConfig **ppCfg, char **pzErr) {
  int rc = SQLITE_OK;
  int aSeen[5] = {0, 0, 0, 0, 0};
  VsConfig *pCfg = sqlite3_malloc(sizeof(*pCfg));
  *ppCfg = 0;
  if (pCfg == 0) return SQLITE_NOMEM;
  memset(pCfg, 0, sizeof(*pCfg));
  pCfg->eMetric = VS_METRIC_L2;
  pCfg->zDb = sqlite3_mprintf("%s", argv[1]);
  pCfg->zName = sqlite3_mprintf("%s", argv[2]);
  pCfg->zIndex = sqlite3_mprintf("Flat");
  if (pCfg->zDb == 0 || pCfg->zName == 0 || pCfg->zIndex == 0) rc = SQLITE_NOMEM;

  int iBareIndex = -1; /* the last argument index = <unquoted value> */
  for (int i = 3; rc == SQLITE_OK && i < argc; i++) {
    char *zKey = 0, *zValue = 0;
    rc = sqlite_vec_column(argv[i], pzErr);
    if (rc != SQLITE_OK) break;
    if (strchr(argv[i], '=') == 0) {
      if (iBareIndex == i - 1 && is_factory_piece(argv[i])) {
        rc = unquoted_index_error(argc, argv, iBareIndex, pzErr);
      } else {
        rc = add_column(pCfg, argv[i], pzErr);
      }
      continue;
    }
    rc = split_argument(argv[i], &zKey, &zValue, pzErr);
    if (rc == SQLITE_OK && strcmp(zKey, "index") == 0 && !value_is_quoted(argv[i])) iBareIndex = i;
    if (rc == SQLITE_OK) rc = apply_option(pCfg, zKey, zValue, aSeen, pzErr);
    sqlite3_free(zKey);
    sqlite3_free(zValue);
  }
  if (rc == SQLITE_OK && pCfg->nDim == 0) {
    vs_error(pzErr, "the dim option is required, e.g. vecstore(dim = 384)");
    rc = SQLITE_ERROR;
  }
  if (rc == SQLITE_OK && bCreate) {
    rc = vs_index_validate(pCfg->nDim, pCfg->eMetric, pCfg->zIndex, pCfg->zSearchParams, pzErr);
  }
  if (rc != SQLITE_OK) {
    vs_config_free(pCfg);
    return rc;
  }
  *ppCfg = pCfg;
  return SQLITE_OK;
}
