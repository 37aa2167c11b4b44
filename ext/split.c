/*
** split.c: vecstore_split(text, chunk_size [, chunk_overlap [, separator]]), a table-valued function (an
** eponymous-only virtual table, like json_each) that yields the chunks of LangChain's CharacterTextSplitter
** with its default settings (literal separator, keep_separator=False, strip_whitespace=True, length = len()):
**
**   1. the text is split on every occurrence of the separator (left to right, non-overlapping); an empty
**      separator splits it into characters; empty pieces are dropped;
**   2. pieces are merged greedily (TextSplitter._merge_splits): a piece is added to the current chunk while
**      total + separator + piece <= chunk_size; when it would not fit, the current chunk is emitted and pieces
**      are dropped from its front while total > chunk_overlap, or while the new piece still would not fit
**      (and something is left); a single piece longer than chunk_size becomes a chunk of its own;
**   3. each chunk is its pieces joined with the separator, stripped of leading and trailing whitespace as
**      Python's str.strip() defines it; chunks that strip to nothing are dropped.
**
** Lengths are counted in characters (Unicode code points of the UTF-8 text, as Python's len()), never bytes.
** Rows: chunk_index (0, 1, ... over the chunks produced) and chunk; rowid = chunk_index. The hidden columns
** text, chunk_size, chunk_overlap and separator hold the arguments (the last two with defaults applied).
** NULL text yields no rows; NULL chunk_overlap or separator take the defaults (0 and "\n\n"); numbers are split as
** their text and blobs as UTF-8 text (so vecstore_split(readfile('a.txt'), 1000) works). chunk_size must be a
** positive integer and chunk_overlap an integer in 0..chunk_size (integral reals are accepted).
**
** The chunks are produced lazily: the cursor keeps the current chunk as a window of consecutive pieces (the
** position of its first piece, their count and total length) and re-reads pieces from the text, so memory
** stays at the text plus one chunk whatever the number of pieces.
*/
#include "vecstore_int.h"

/* Column numbers of the declared schema below. */
#define SPLIT_COL_INDEX 0
#define SPLIT_COL_CHUNK 1
#define SPLIT_COL_TEXT 2
#define SPLIT_COL_SIZE 3
#define SPLIT_COL_OVERLAP 4
#define SPLIT_COL_SEP 5
#define SPLIT_NARG 4 /* hidden argument columns, SPLIT_COL_TEXT .. SPLIT_COL_SEP */

static const char zDefaultSep[] = "\n\n";

typedef struct SplitCursor {
  sqlite3_vtab_cursor base;
  char *zText; /* copy of the text argument (sqlite3_malloc'd), 0 when NULL */
  i64 nText;
  char *zSep; /* copy of the separator (sqlite3_malloc'd, never 0) */
  i64 nSep;
  i64 nSepChars;
  i64 nSize, nOverlap;
  /* The merge state of _merge_splits: the window of pieces forming the current chunk. */
  i64 iFront; /* piece-iterator position of the window's first piece */
  i64 nDoc;   /* pieces in the window */
  i64 nTotal; /* their characters plus separators between them */
  i64 iNext;  /* piece-iterator position of the next unread piece */
  int bInputDone;
  /* The current row. */
  int bEof;
  i64 iChunk;  /* chunk_index of the current row */
  char *zBuf;  /* join buffer (sqlite3_malloc'd); the current chunk is zBuf[iChunkOff .. +nChunk) */
  i64 nBufAlloc;
  i64 iChunkOff, nChunk;
} SplitCursor;

/* Position value meaning "no pieces left" for the piece iterator. */
#define SPLIT_DONE ((i64)-1)

static int is_utf8_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

/* Characters in z[0..n): bytes that do not continue a UTF-8 sequence, as SQLite's length() counts them. */
static i64 utf8_chars(const char *z, i64 n) {
  i64 nChar = 0;
  for (i64 i = 0; i < n; i++) nChar += !is_utf8_cont((unsigned char)z[i]);
  return nChar;
}

/* Byte length of the character starting at z[i] (i < n): its lead byte plus any continuation bytes. */
static i64 utf8_char_len(const char *z, i64 i, i64 n) {
  i64 j = i + 1;
  while (j < n && is_utf8_cont((unsigned char)z[j])) j++;
  return j - i;
}

/* Decodes the (possibly invalid) UTF-8 sequence z[0..n) to a code point; invalid input gives 0xFFFD. */
static unsigned decode_utf8(const unsigned char *z, i64 n) {
  if (n == 1) return z[0] < 0x80 ? z[0] : 0xFFFD;
  if (n == 2 && (z[0] & 0xE0) == 0xC0) return ((unsigned)(z[0] & 0x1F) << 6) | (z[1] & 0x3F);
  if (n == 3 && (z[0] & 0xF0) == 0xE0) {
    return ((unsigned)(z[0] & 0x0F) << 12) | ((unsigned)(z[1] & 0x3F) << 6) | (z[2] & 0x3F);
  }
  if (n == 4 && (z[0] & 0xF8) == 0xF0) {
    return ((unsigned)(z[0] & 0x07) << 18) | ((unsigned)(z[1] & 0x3F) << 12) | ((unsigned)(z[2] & 0x3F) << 6) |
           (z[3] & 0x3F);
  }
  return 0xFFFD;
}

/* True for the code points Python's str.isspace() (and so str.strip()) treats as whitespace. */
static int is_py_space(unsigned c) {
  if (c <= 0x20) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  switch (c) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return 1;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

/* Strips Python whitespace from both ends of z[*piOff .. *piOff + *pn), updating the range. */
static void py_strip(const char *z, i64 *piOff, i64 *pn) {
  i64 i = *piOff, e = *piOff + *pn;
  while (i < e) {
    i64 n = utf8_char_len(z, i, e);
    if (!is_py_space(decode_utf8((const unsigned char *)z + i, n))) break;
    i += n;
  }
  while (e > i) {
    i64 s = e - 1;
    while (s > i && is_utf8_cont((unsigned char)z[s]) && e - s < 4) s--;
    if (!is_py_space(decode_utf8((const unsigned char *)z + s, e - s))) break;
    e = s;
  }
  *piOff = i;
  *pn = e - i;
}

/* The piece iterator: from position *piPos (SPLIT_DONE when exhausted) finds the next non-empty piece of the
** text, sets *piStart and *pnByte to its bytes and advances *piPos past it (and past the separator that ends
** it). Returns 0 when no piece is left. */
static int next_piece(const SplitCursor *p, i64 *piPos, i64 *piStart, i64 *pnByte) {
  while (*piPos != SPLIT_DONE) {
    i64 iPos = *piPos;
    if (p->nSep == 0) {
      if (iPos >= p->nText) break;
      *piStart = iPos;
      *pnByte = utf8_char_len(p->zText, iPos, p->nText);
      *piPos = iPos + *pnByte;
      return 1;
    }
    const char *zHit = memmem(p->zText + iPos, (size_t)(p->nText - iPos), p->zSep, (size_t)p->nSep);
    i64 iEnd = zHit ? (i64)(zHit - p->zText) : p->nText;
    *piPos = zHit ? iEnd + p->nSep : SPLIT_DONE;
    if (iEnd > iPos) {
      *piStart = iPos;
      *pnByte = iEnd - iPos;
      return 1;
    }
  }
  *piPos = SPLIT_DONE;
  return 0;
}

/* Ensures the join buffer holds at least n bytes. */
static int buf_reserve(SplitCursor *p, i64 n) {
  if (n <= p->nBufAlloc) return SQLITE_OK;
  i64 nNew = p->nBufAlloc ? p->nBufAlloc : 256;
  while (nNew < n) nNew *= 2;
  char *zNew = sqlite3_realloc64(p->zBuf, (sqlite3_uint64)nNew);
  if (zNew == 0) return SQLITE_NOMEM;
  p->zBuf = zNew;
  p->nBufAlloc = nNew;
  return SQLITE_OK;
}

/* Joins the window's pieces with the separator into the buffer and strips it (LangChain's _join_docs).
** Sets *pbChunk when the result is not empty, making it the current row's chunk. */
static int build_chunk(SplitCursor *p, int *pbChunk) {
  i64 iPos = p->iFront, iStart = 0, nByte = 0, nOut = 0;
  *pbChunk = 0;
  for (i64 i = 0; i < p->nDoc; i++) {
    if (!next_piece(p, &iPos, &iStart, &nByte)) break; /* cannot happen: the window holds nDoc pieces */
    int rc = buf_reserve(p, nOut + p->nSep + nByte);
    if (rc != SQLITE_OK) return rc;
    if (i > 0) {
      memcpy(p->zBuf + nOut, p->zSep, (size_t)p->nSep);
      nOut += p->nSep;
    }
    memcpy(p->zBuf + nOut, p->zText + iStart, (size_t)nByte);
    nOut += nByte;
  }
  p->iChunkOff = 0;
  p->nChunk = nOut;
  py_strip(p->zBuf, &p->iChunkOff, &p->nChunk);
  *pbChunk = p->nChunk > 0;
  return SQLITE_OK;
}

/* Runs _merge_splits until the next chunk is ready (the current row) or the input is exhausted (bEof). */
static int advance(SplitCursor *p) {
  for (;;) {
    i64 iBefore = p->iNext, iStart = 0, nByte = 0;
    int bChunk = 0, rc;
    if (p->zText == 0 || !next_piece(p, &p->iNext, &iStart, &nByte)) {
      /* The last chunk: whatever the window holds. */
      if (!p->bInputDone) {
        p->bInputDone = 1;
        if (p->nDoc > 0) {
          rc = build_chunk(p, &bChunk);
          if (rc != SQLITE_OK) return rc;
          p->nDoc = 0;
          p->nTotal = 0;
          if (bChunk) return SQLITE_OK;
        }
      }
      p->bEof = 1;
      return SQLITE_OK;
    }
    i64 nLen = utf8_chars(p->zText + iStart, nByte);
    if (p->nDoc > 0 && p->nTotal + nLen + p->nSepChars > p->nSize) {
      rc = build_chunk(p, &bChunk);
      if (rc != SQLITE_OK) return rc;
      /* Drop pieces from the front of the window (the overlap rule of _merge_splits). */
      while (p->nTotal > p->nOverlap ||
             (p->nTotal + nLen + (p->nDoc > 0 ? p->nSepChars : 0) > p->nSize && p->nTotal > 0)) {
        i64 iFrontStart = 0, nFrontByte = 0;
        if (!next_piece(p, &p->iFront, &iFrontStart, &nFrontByte)) break; /* cannot happen */
        p->nTotal -= utf8_chars(p->zText + iFrontStart, nFrontByte) + (p->nDoc > 1 ? p->nSepChars : 0);
        p->nDoc--;
      }
    }
    if (p->nDoc == 0) p->iFront = iBefore;
    p->nDoc++;
    p->nTotal += nLen + (p->nDoc > 1 ? p->nSepChars : 0);
    if (bChunk) return SQLITE_OK;
  }
}

static int split_connect(sqlite3 *db, void *pAux, int argc, const char *const *argv, sqlite3_vtab **ppVtab,
                         char **pzErr) {
  (void)pAux;
  (void)argc;
  (void)argv;
  (void)pzErr;
  int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(chunk_index INTEGER, chunk TEXT, text HIDDEN, "
                                    "chunk_size HIDDEN, chunk_overlap HIDDEN, separator HIDDEN)");
  if (rc != SQLITE_OK) return rc;
  sqlite3_vtab *pVtab = sqlite3_malloc(sizeof(*pVtab));
  if (pVtab == 0) return SQLITE_NOMEM;
  memset(pVtab, 0, sizeof(*pVtab));
  sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
  *ppVtab = pVtab;
  return SQLITE_OK;
}

static int split_disconnect(sqlite3_vtab *pVtab) {
  sqlite3_free(pVtab);
  return SQLITE_OK;
}

/* Plans a scan: the argument columns must be constrained by usable equalities (text and chunk_size are
** required, chunk_overlap and separator optional). idxNum has bit i set when argument i is passed, in
** argument order, to xFilter. A usable-later argument makes the plan SQLITE_CONSTRAINT (SQLite tries another
** join order); a missing required argument is an error. */
static int split_best_index(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo) {
  int aiCons[SPLIT_NARG] = {-1, -1, -1, -1};
  int bUnusable[SPLIT_NARG] = {0, 0, 0, 0};
  for (int i = 0; i < pInfo->nConstraint; i++) {
    const struct sqlite3_index_constraint *pCons = &pInfo->aConstraint[i];
    int iArg = pCons->iColumn - SPLIT_COL_TEXT;
    if (iArg < 0 || iArg >= SPLIT_NARG || pCons->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
    if (!pCons->usable) {
      bUnusable[iArg] = 1;
    } else if (aiCons[iArg] < 0) {
      aiCons[iArg] = i;
    }
  }
  for (int iArg = 0; iArg < SPLIT_NARG; iArg++) {
    if (aiCons[iArg] < 0 && bUnusable[iArg]) return SQLITE_CONSTRAINT;
  }
  if (aiCons[0] < 0 || aiCons[1] < 0) {
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = sqlite3_mprintf("vecstore: vecstore_split(text, chunk_size [, chunk_overlap "
                                     "[, separator]]) expects text and chunk_size, received no %s argument",
                                     aiCons[0] < 0 ? "text" : "chunk_size");
    return SQLITE_ERROR;
  }
  int nArg = 0, idxNum = 0;
  for (int iArg = 0; iArg < SPLIT_NARG; iArg++) {
    if (aiCons[iArg] < 0) continue;
    pInfo->aConstraintUsage[aiCons[iArg]].argvIndex = ++nArg;
    pInfo->aConstraintUsage[aiCons[iArg]].omit = 1;
    idxNum |= 1 << iArg;
  }
  pInfo->idxNum = idxNum;
  pInfo->estimatedCost = 100.0;
  pInfo->estimatedRows = 100;
  return SQLITE_OK;
}

static int split_open(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCursor) {
  (void)pVtab;
  SplitCursor *p = sqlite3_malloc(sizeof(*p));
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->bEof = 1;
  *ppCursor = &p->base;
  return SQLITE_OK;
}

/* Frees the arguments of the previous scan (the join buffer stays for reuse). */
static void split_reset(SplitCursor *p) {
  sqlite3_free(p->zText);
  sqlite3_free(p->zSep);
  p->zText = 0;
  p->zSep = 0;
  p->nText = p->nSep = p->nSepChars = 0;
  p->iFront = p->iNext = 0;
  p->nDoc = p->nTotal = 0;
  p->bInputDone = 0;
  p->bEof = 1;
  p->iChunk = 0;
  p->iChunkOff = p->nChunk = 0;
}

static int split_close(sqlite3_vtab_cursor *pCursor) {
  SplitCursor *p = (SplitCursor *)pCursor;
  split_reset(p);
  sqlite3_free(p->zBuf);
  sqlite3_free(p);
  return SQLITE_OK;
}

/* Describes an SQL value for error messages ("NULL", "a blob", "text 'abc'", "2.5", "-3"). */
static char *describe_value(sqlite3_value *pVal) {
  switch (sqlite3_value_type(pVal)) {
    case SQLITE_NULL: return sqlite3_mprintf("NULL");
    case SQLITE_BLOB: return sqlite3_mprintf("a blob");
    case SQLITE_TEXT: return sqlite3_mprintf("text '%.40s'", (const char *)sqlite3_value_text(pVal));
    case SQLITE_FLOAT: return sqlite3_mprintf("%!.15g", sqlite3_value_double(pVal));
    default: return sqlite3_mprintf("%lld", sqlite3_value_int64(pVal));
  }
}

/* Reads an integer argument: an INTEGER, or a REAL with an exact integer value. Returns 0 otherwise. */
static int integer_arg(sqlite3_value *pVal, i64 *piOut) {
  int eType = sqlite3_value_type(pVal);
  if (eType == SQLITE_INTEGER) {
    *piOut = sqlite3_value_int64(pVal);
    return 1;
  }
  if (eType == SQLITE_FLOAT) {
    double r = sqlite3_value_double(pVal);
    if (r >= -9.0e18 && r <= 9.0e18 && r == (double)(i64)r) {
      *piOut = (i64)r;
      return 1;
    }
  }
  return 0;
}

/* Sets a "vecstore: vecstore_split <zWhat> ..., received <value>" error on the cursor's table. */
static int arg_error(SplitCursor *p, const char *zWhat, sqlite3_value *pVal) {
  char *zGot = describe_value(pVal);
  sqlite3_vtab *pVtab = p->base.pVtab;
  sqlite3_free(pVtab->zErrMsg);
  pVtab->zErrMsg = sqlite3_mprintf("vecstore: vecstore_split %s, received %s", zWhat, zGot ? zGot : "?");
  sqlite3_free(zGot);
  return SQLITE_ERROR;
}

/* Copies an argument's text into *pz / *pn (numbers as their text; a blob's bytes are taken as UTF-8 text,
** as SQLite's string functions do, so that vecstore_split(readfile('f.txt'), ...) works). */
static int text_arg(sqlite3_value *pVal, char **pz, i64 *pn) {
  const unsigned char *z = sqlite3_value_text(pVal);
  i64 n = sqlite3_value_bytes(pVal);
  if (z == 0 && n > 0) return SQLITE_NOMEM;
  *pz = sqlite3_malloc64((sqlite3_uint64)n + 1);
  if (*pz == 0) return SQLITE_NOMEM;
  if (n > 0) memcpy(*pz, z, (size_t)n);
  (*pz)[n] = 0;
  *pn = n;
  return SQLITE_OK;
}

/* Starts a scan: validates and copies the arguments, then computes the first chunk. */
static int split_filter(sqlite3_vtab_cursor *pCursor, int idxNum, const char *idxStr, int argc,
                        sqlite3_value **argv) {
  (void)idxStr;
  SplitCursor *p = (SplitCursor *)pCursor;
  sqlite3_value *apArg[SPLIT_NARG] = {0, 0, 0, 0};
  split_reset(p);
  for (int iArg = 0, j = 0; iArg < SPLIT_NARG; iArg++) {
    if ((idxNum & (1 << iArg)) && j < argc) apArg[iArg] = argv[j++];
  }
  if (apArg[0] == 0 || apArg[1] == 0) return SQLITE_ERROR; /* xBestIndex guarantees both */

  if (!integer_arg(apArg[1], &p->nSize) || p->nSize <= 0) {
    return arg_error(p, "expects chunk_size to be a positive integer", apArg[1]);
  }
  p->nOverlap = 0;
  if (apArg[2] && sqlite3_value_type(apArg[2]) != SQLITE_NULL) {
    if (!integer_arg(apArg[2], &p->nOverlap) || p->nOverlap < 0) {
      return arg_error(p, "expects chunk_overlap to be a non-negative integer", apArg[2]);
    }
    if (p->nOverlap > p->nSize) {
      sqlite3_vtab *pVtab = p->base.pVtab;
      sqlite3_free(pVtab->zErrMsg);
      pVtab->zErrMsg = sqlite3_mprintf("vecstore: vecstore_split expects chunk_overlap <= chunk_size: Got a "
                                       "larger chunk overlap (%lld) than chunk size (%lld), should be smaller.",
                                       p->nOverlap, p->nSize);
      return SQLITE_ERROR;
    }
  }
  int rc = SQLITE_OK;
  if (apArg[3] && sqlite3_value_type(apArg[3]) != SQLITE_NULL) {
    rc = text_arg(apArg[3], &p->zSep, &p->nSep);
  } else {
    p->zSep = sqlite3_mprintf("%s", zDefaultSep);
    p->nSep = (i64)strlen(zDefaultSep);
    if (p->zSep == 0) rc = SQLITE_NOMEM;
  }
  if (rc != SQLITE_OK) return rc;
  p->nSepChars = utf8_chars(p->zSep, p->nSep);
  if (sqlite3_value_type(apArg[0]) != SQLITE_NULL) {
    rc = text_arg(apArg[0], &p->zText, &p->nText);
    if (rc != SQLITE_OK) return rc;
  }
  p->bEof = 0;
  p->iChunk = 0;
  return advance(p);
}

static int split_next(sqlite3_vtab_cursor *pCursor) {
  SplitCursor *p = (SplitCursor *)pCursor;
  p->iChunk++;
  return advance(p);
}

static int split_eof(sqlite3_vtab_cursor *pCursor) { return ((SplitCursor *)pCursor)->bEof; }

static int split_column(sqlite3_vtab_cursor *pCursor, sqlite3_context *ctx, int iCol) {
  SplitCursor *p = (SplitCursor *)pCursor;
  switch (iCol) {
    case SPLIT_COL_INDEX: sqlite3_result_int64(ctx, p->iChunk); break;
    case SPLIT_COL_CHUNK:
      sqlite3_result_text64(ctx, p->zBuf + p->iChunkOff, (sqlite3_uint64)p->nChunk, SQLITE_TRANSIENT, SQLITE_UTF8);
      break;
    case SPLIT_COL_TEXT:
      if (p->zText) sqlite3_result_text64(ctx, p->zText, (sqlite3_uint64)p->nText, SQLITE_TRANSIENT, SQLITE_UTF8);
      break;
    case SPLIT_COL_SIZE: sqlite3_result_int64(ctx, p->nSize); break;
    case SPLIT_COL_OVERLAP: sqlite3_result_int64(ctx, p->nOverlap); break;
    case SPLIT_COL_SEP:
      sqlite3_result_text64(ctx, p->zSep, (sqlite3_uint64)p->nSep, SQLITE_TRANSIENT, SQLITE_UTF8);
      break;
    default: break;
  }
  return SQLITE_OK;
}

static int split_rowid(sqlite3_vtab_cursor *pCursor, sqlite_int64 *pRowid) {
  *pRowid = ((SplitCursor *)pCursor)->iChunk;
  return SQLITE_OK;
}

static sqlite3_module split_module = {
    /* iVersion      */ 0,
    /* xCreate       */ 0, /* eponymous-only */
    /* xConnect      */ split_connect,
    /* xBestIndex    */ split_best_index,
    /* xDisconnect   */ split_disconnect,
    /* xDestroy      */ 0,
    /* xOpen         */ split_open,
    /* xClose        */ split_close,
    /* xFilter       */ split_filter,
    /* xNext         */ split_next,
    /* xEof          */ split_eof,
    /* xColumn       */ split_column,
    /* xRowid        */ split_rowid,
    /* xUpdate       */ 0,
    /* xBegin        */ 0,
    /* xSync         */ 0,
    /* xCommit       */ 0,
    /* xRollback     */ 0,
    /* xFindFunction */ 0,
    /* xRename       */ 0,
    /* xSavepoint    */ 0,
    /* xRelease      */ 0,
    /* xRollbackTo   */ 0,
    /* xShadowName   */ 0,
};

int vs_split_register(sqlite3 *db) { return sqlite3_create_module(db, "vecstore_split", &split_module, 0); }
