/*
** plan.c: xBestIndex, and the plan encoding xFilter decodes.
**
** idxNum is the plan:
**   VS_PLAN_SCAN   documents in rowid order (declared-column conditions become SQL on the docs table)
**   VS_PLAN_ROWID  the row with rowid = ?          VS_PLAN_ID  the row with id = ?
**   VS_PLAN_KNN    rows in increasing distance from a query (MATCH)
** idxStr is a space-separated list of tokens, one per argv value xFilter receives, in argv order, so that
** EXPLAIN QUERY PLAN reads like the query (e.g. "match k page:eq source:in limit"):
**   match        embedding MATCH <vector>          text      <table> MATCH <text>
**   k fetch_k lambda params                        the hidden columns k, fetch_k, lambda_mult, search_params
**   limit offset                                   LIMIT / OFFSET (taken only when every other condition is)
**   rowid id                                       point lookups (no MATCH)
**   rowid-in rowid-eq id-in id-eq                  with MATCH: search only among these rows
**   dist-lt dist-le score-ge score-gt              with MATCH: the radius
**   distance score (and k fetch_k lambda params)   without MATCH: any condition on these search-only columns,
**                                                  taken only so that xFilter fails saying it needs a MATCH
**   <name>:<op>                                    a declared column; op: eq ne lt le gt ge in is isnot
**                                                  isnull notnull (applied inside the search, or as SQL)
** A declared column's name is written bare when it is a plain identifier (page:eq), else double-quoted like an SQL
** identifier, "" for a quote ("my col":eq, "a:b":lt), so that no token has a space outside quotes. Only these
** tokens contain ':' (outside quotes or not), and the op is what follows the last one: the decoder
** (cursor.c, read_arguments) tells them from the fixed tokens by the ':' and maps the name back to its column.
** k, fetch_k, lambda_mult and search_params are consumed by every plan so that SQLite never compares them with
** the hidden columns. A plan without MATCH takes every condition on them, distance and score (a scan has no
** distance, and k would silently act as LIMIT), and xFilter rejects it naming the columns that take MATCH. Only
** the plan SQLite runs fails: xBestIndex also sees plans for the branches of an OR ("embedding MATCH ? AND
** (distance < 1 OR page = 2)"), which are costlier than the search and never chosen.
** A MATCH on any other column fails the statement in xBestIndex; a MATCH on embedding or the table's column that
** SQLite evaluates itself (inside NOT or an OR it cannot split) calls misplaced_match (xFindFunction).
*/
#include "vecstore_int.h"

int vs_col_kind(const VsTable *pTab, int iCol, int *piDecl) {
  int nCol = pTab->pCfg->nCol;
  if (iCol < 0) return VS_KIND_ROWID;
  if (iCol < VS_KIND_DISTANCE) return iCol;
  if (iCol < VS_KIND_DISTANCE + nCol) {
    if (piDecl) *piDecl = iCol - VS_KIND_DISTANCE;
    return VS_KIND_DECLARED;
  }
  return iCol - nCol;
}

/* The name of column iCol (-1 for the rowid), for error messages. */
static const char *column_name(const VsTable *pTab, int iCol) {
  static const char *const azName[VS_KIND_COUNT] = {
      [VS_KIND_ID] = "id",         [VS_KIND_CONTENT] = "content", [VS_KIND_METADATA] = "metadata",
      [VS_KIND_EMBEDDING] = "embedding", [VS_KIND_DISTANCE] = "distance", [VS_KIND_SCORE] = "score",
      [VS_KIND_K] = "k",           [VS_KIND_FETCH_K] = "fetch_k", [VS_KIND_LAMBDA] = "lambda_mult",
      [VS_KIND_PARAMS] = "search_params"};
  int iDecl = 0;
  int eKind = vs_col_kind(pTab, iCol, &iDecl);
  if (eKind == VS_KIND_ROWID) return "rowid";
  if (eKind == VS_KIND_DECLARED) return pTab->pCfg->aCol[iDecl].zName;
  if (eKind == VS_KIND_TABLE) return pTab->pCfg->zName;
  return azName[eKind];
}

/* Fails the plan because of a MATCH on column iCol, which takes none: the error names the columns that do. */
static int match_elsewhere(VsTable *pTab, int iCol) {
  const char *zTab = pTab->pCfg->zName;
  const char *zCol = column_name(pTab, iCol);
  vs_error(&pTab->base.zErrMsg, "MATCH on column %s: only embedding and %s take MATCH: expected embedding MATCH "
           "<vector> (a float32 BLOB or JSON array text) or %s MATCH <text> (the table's own column, a text query), "
           "received %s MATCH; write WHERE embedding MATCH :vector or WHERE %s MATCH 'some text'",
           zCol, zTab, zTab, zCol, zTab);
  return SQLITE_ERROR;
}

/* The token of a declared-column operator, or 0 when the operator is not pushed down. */
static const char *column_op_token(unsigned char op, int bIn) {
  switch (op) {
    case SQLITE_INDEX_CONSTRAINT_EQ: return bIn ? "in" : "eq";
    case SQLITE_INDEX_CONSTRAINT_NE: return "ne";
    case SQLITE_INDEX_CONSTRAINT_LT: return "lt";
    case SQLITE_INDEX_CONSTRAINT_LE: return "le";
    case SQLITE_INDEX_CONSTRAINT_GT: return "gt";
    case SQLITE_INDEX_CONSTRAINT_GE: return "ge";
    case SQLITE_INDEX_CONSTRAINT_IS: return "is";
    case SQLITE_INDEX_CONSTRAINT_ISNOT: return "isnot";
    case SQLITE_INDEX_CONSTRAINT_ISNULL: return "isnull";
    case SQLITE_INDEX_CONSTRAINT_ISNOTNULL: return "notnull";
    default: return 0;
  }
}

typedef struct PlanBuilder {
  sqlite3_index_info *pInfo;
  sqlite3_str *pStr;
  int nArg;
} PlanBuilder;

/* Hands constraint i to xFilter as the next argv value, named zToken (omitted from SQLite's own checks). */
static void take(PlanBuilder *b, int i, const char *zToken) {
  b->pInfo->aConstraintUsage[i].argvIndex = ++b->nArg;
  b->pInfo->aConstraintUsage[i].omit = 1;
  sqlite3_str_appendf(b->pStr, "%s%s", b->nArg > 1 ? " " : "", zToken);
}

/* Is zName a plain identifier (letters, digits and '_', not starting with a digit), written bare in idxStr? */
static int is_plain_name(const char *zName) {
  if (!((zName[0] >= 'A' && zName[0] <= 'Z') || (zName[0] >= 'a' && zName[0] <= 'z') || zName[0] == '_')) return 0;
  for (const char *z = zName; *z; z++) {
    if (!((*z >= 'A' && *z <= 'Z') || (*z >= 'a' && *z <= 'z') || (*z >= '0' && *z <= '9') || *z == '_')) return 0;
  }
  return 1;
}

/* Hands constraint i, on the declared column named zName, to xFilter as the token <name>:<op>. */
static void take_column(PlanBuilder *b, int i, const char *zName, const char *zOp) {
  take(b, i, "");
  if (is_plain_name(zName)) sqlite3_str_appendf(b->pStr, "%s:%s", zName, zOp);
  else sqlite3_str_appendf(b->pStr, "\"%w\":%s", zName, zOp);
}

int vs_best_index(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo) {
  VsTable *pTab = (VsTable *)pVtab;
  int iMatch = -1, iRowidEq = -1, iIdEq = -1, iLimit = -1, iOffset = -1;
  int bMatchUnusable = 0, bTextMatch = 0, nUnconsumed = 0;
  int aHidden[VS_KIND_COUNT];
  for (int i = 0; i < VS_KIND_COUNT; i++) aHidden[i] = -1;

  /* First pass: find what each usable constraint is. */
  for (int i = 0; i < pInfo->nConstraint; i++) {
    const struct sqlite3_index_constraint *pC = &pInfo->aConstraint[i];
    int eKind = vs_col_kind(pTab, pC->iColumn, 0);
    int bMatch = pC->op == SQLITE_INDEX_CONSTRAINT_MATCH && (eKind == VS_KIND_EMBEDDING || eKind == VS_KIND_TABLE);
    /* MATCH on any other column is wrong in every plan, usable or not. */
    if (pC->op == SQLITE_INDEX_CONSTRAINT_MATCH && !bMatch) return match_elsewhere(pTab, pC->iColumn);
    if (!pC->usable) {
      if (bMatch) bMatchUnusable = 1;
      continue;
    }
    if (bMatch && iMatch < 0) {
      iMatch = i;
      bTextMatch = eKind == VS_KIND_TABLE;
    } else if (pC->op == SQLITE_INDEX_CONSTRAINT_LIMIT) {
      iLimit = i;
    } else if (pC->op == SQLITE_INDEX_CONSTRAINT_OFFSET) {
      iOffset = i;
    } else if (pC->op == SQLITE_INDEX_CONSTRAINT_EQ && eKind >= VS_KIND_K && eKind <= VS_KIND_PARAMS) {
      if (aHidden[eKind] < 0) aHidden[eKind] = i;
    } else if (pC->op == SQLITE_INDEX_CONSTRAINT_EQ && eKind == VS_KIND_ROWID && iRowidEq < 0) {
      iRowidEq = i;
    } else if (pC->op == SQLITE_INDEX_CONSTRAINT_EQ && eKind == VS_KIND_ID && iIdEq < 0) {
      iIdEq = i;
    }
  }
  if (iMatch < 0 && bMatchUnusable) return SQLITE_CONSTRAINT; /* wait for a plan where MATCH is usable */

  PlanBuilder b = {pInfo, sqlite3_str_new(0), 0};
  int ePlan = VS_PLAN_SCAN;
  double rCost = 1e6;
  i64 nRows = 1000000;
  int iKeyUsed = -1, iKeyUsed2 = -1;
  if (iMatch >= 0) {
    ePlan = VS_PLAN_KNN;
    take(&b, iMatch, bTextMatch ? "text" : "match");
    rCost = 10;
    nRows = 10;
    /* rowid / id equality or IN: search only among those rows. IN lists come whole (sqlite3_vtab_in). */
    int iAmong = iRowidEq >= 0 ? iRowidEq : iIdEq;
    if (iAmong >= 0) {
      int bIn = sqlite3_vtab_in(pInfo, iAmong, -1);
      if (bIn) sqlite3_vtab_in(pInfo, iAmong, 1);
      take(&b, iAmong, iAmong == iRowidEq ? (bIn ? "rowid-in" : "rowid-eq") : (bIn ? "id-in" : "id-eq"));
      iKeyUsed = iAmong;
      rCost = 5;
    }
  } else if (iRowidEq >= 0) {
    ePlan = VS_PLAN_ROWID;
    take(&b, iRowidEq, "rowid");
    iKeyUsed = iRowidEq;
    pInfo->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
    rCost = 1;
    nRows = 1;
  } else if (iIdEq >= 0) {
    ePlan = VS_PLAN_ID;
    take(&b, iIdEq, "id");
    iKeyUsed = iIdEq;
    pInfo->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
    rCost = 2;
    nRows = 1;
  }
  (void)iKeyUsed2;

  /* Second pass: hidden columns, radius and declared-column conditions; anything else stays with SQLite. */
  static const char *const azHidden[VS_KIND_COUNT] = {
      [VS_KIND_K] = "k", [VS_KIND_FETCH_K] = "fetch_k", [VS_KIND_LAMBDA] = "lambda", [VS_KIND_PARAMS] = "params"};
  for (int i = 0; i < pInfo->nConstraint; i++) {
    const struct sqlite3_index_constraint *pC = &pInfo->aConstraint[i];
    if (!pC->usable || i == iMatch || i == iKeyUsed || i == iLimit || i == iOffset) continue;
    int iDecl = 0;
    int eKind = vs_col_kind(pTab, pC->iColumn, &iDecl);
    if (eKind >= VS_KIND_K && eKind <= VS_KIND_PARAMS && aHidden[eKind] == i) {
      take(&b, i, azHidden[eKind]);
      continue;
    }
    /* Without MATCH every condition on a search-only column is taken, for xFilter to report (cursor.c). */
    if (ePlan != VS_PLAN_KNN && eKind >= VS_KIND_DISTANCE && eKind <= VS_KIND_PARAMS) {
      take(&b, i, eKind == VS_KIND_DISTANCE ? "distance" : eKind == VS_KIND_SCORE ? "score" : azHidden[eKind]);
      continue;
    }
    if (ePlan == VS_PLAN_KNN && eKind == VS_KIND_DISTANCE &&
        (pC->op == SQLITE_INDEX_CONSTRAINT_LT || pC->op == SQLITE_INDEX_CONSTRAINT_LE)) {
      take(&b, i, pC->op == SQLITE_INDEX_CONSTRAINT_LT ? "dist-lt" : "dist-le");
      continue;
    }
    if (ePlan == VS_PLAN_KNN && eKind == VS_KIND_SCORE &&
        (pC->op == SQLITE_INDEX_CONSTRAINT_GE || pC->op == SQLITE_INDEX_CONSTRAINT_GT)) {
      take(&b, i, pC->op == SQLITE_INDEX_CONSTRAINT_GE ? "score-ge" : "score-gt");
      continue;
    }
    if (eKind == VS_KIND_DECLARED && ePlan != VS_PLAN_ROWID && ePlan != VS_PLAN_ID) {
      int bIn = pC->op == SQLITE_INDEX_CONSTRAINT_EQ && sqlite3_vtab_in(pInfo, i, -1);
      const char *zOp = column_op_token(pC->op, bIn);
      if (zOp) {
        if (bIn) sqlite3_vtab_in(pInfo, i, 1);
        take_column(&b, i, pTab->pCfg->aCol[iDecl].zName, zOp);
        rCost = rCost > 10 ? rCost / 10 : rCost;
        if (ePlan == VS_PLAN_SCAN) nRows = nRows > 10 ? nRows / 10 : nRows;
        continue;
      }
    }
    nUnconsumed++;
  }
  /* Ordering: KNN rows come by distance (score descending is the same order) unless MMR reorders them; scans
  ** come by rowid. */
  if (pInfo->nOrderBy == 1) {
    const struct sqlite3_index_orderby *pO = &pInfo->aOrderBy[0];
    int eKind = vs_col_kind(pTab, pO->iColumn, 0);
    if (ePlan == VS_PLAN_KNN && aHidden[VS_KIND_LAMBDA] < 0 &&
        ((eKind == VS_KIND_DISTANCE && !pO->desc) || (eKind == VS_KIND_SCORE && pO->desc))) {
      pInfo->orderByConsumed = 1;
    }
    if (ePlan != VS_PLAN_KNN && eKind == VS_KIND_ROWID && !pO->desc) pInfo->orderByConsumed = 1;
  }
  /* LIMIT caps what the table produces: only right when SQLite neither filters nor re-sorts the rows. */
  if (iLimit >= 0 && nUnconsumed == 0 && (pInfo->nOrderBy == 0 || pInfo->orderByConsumed)) {
    take(&b, iLimit, "limit");
    pInfo->aConstraintUsage[iLimit].omit = 0;
    if (iOffset >= 0) {
      take(&b, iOffset, "offset");
      pInfo->aConstraintUsage[iOffset].omit = 0;
    }
  }

  pInfo->idxNum = ePlan;
  pInfo->idxStr = sqlite3_str_finish(b.pStr);
  pInfo->needToFreeIdxStr = 1;
  pInfo->estimatedCost = rCost;
  pInfo->estimatedRows = nRows;
  return pInfo->idxStr || b.nArg == 0 ? SQLITE_OK : SQLITE_NOMEM;
}

/* The MATCH operator SQLite evaluates itself: the one on embedding or on the table's column that xBestIndex did not
** consume (inside OR, NOT, CASE or another expression, a second MATCH, or in the result columns). It never holds a
** meaning of its own, so it fails with an error that says where MATCH goes. The user data is the VsTable, which
** outlives every statement that reads the table. */
static void misplaced_match(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  const char *zTab = ((VsTable *)sqlite3_user_data(ctx))->pCfg->zName;
  char *zErr = 0;
  vs_error(&zErr, "a MATCH on table %s that SQLite would have to test row by row: expected one embedding MATCH "
           "<vector> or %s MATCH <text>, ANDed with the other conditions at the top level of WHERE, received a MATCH "
           "inside OR, NOT, CASE or another expression (or a second MATCH); write WHERE embedding MATCH :vector AND "
           "(a OR b), not WHERE embedding MATCH :vector OR a", zTab, zTab);
  if (zErr) sqlite3_result_error(ctx, zErr, -1);
  else sqlite3_result_error_nomem(ctx);
  sqlite3_free(zErr);
}

int vs_find_function(sqlite3_vtab *pVtab, int nArg, const char *zName,
                     void (**pxFunc)(sqlite3_context *, int, sqlite3_value **), void **ppArg) {
  if (nArg != 2 || sqlite3_stricmp(zName, "match") != 0) return 0;
  *pxFunc = misplaced_match;
  *ppArg = pVtab;
  return 1;
}
