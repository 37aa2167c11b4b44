/*
** fuzz_split: vecstore_split(text, chunk_size [, chunk_overlap [, separator]]) (ext/split.c), the lazy
** CharacterTextSplitter, against an eager reference written from LangChain's algorithm in this file.
**
** Input: byte 0 chooses chunk_size, byte 1 chunk_overlap, byte 2 the separator (its length, or NULL/omitted/
** empty) and whether the text is bound as a BLOB; the separator's bytes follow, then the text. Invariants
** besides the sanitizers:
**   - bad arguments (chunk_size < 1, chunk_overlap < 0 or > chunk_size, non-integers) fail with a "vecstore: "
**     message, good ones succeed;
**   - chunk_index counts 0, 1, 2...; the hidden columns give back the arguments (defaults applied);
**   - for valid UTF-8 text and separator, the chunks are exactly the reference's (Python semantics: lengths in
**     code points, str.split, _merge_splits, str.strip); for other bytes, every chunk is non-empty and no longer
**     than the text.
*/
#include "fuzz_common.h"

static sqlite3 *g_db;
static sqlite3_stmt *g_apStmt[3]; /* 2, 3 and 4 arguments */

static void init(void) {
  if (g_db) return;
  g_db = fz_open(":memory:");
  static const char *const azSql[3] = {
      "SELECT chunk_index, chunk, chunk_size, chunk_overlap, separator FROM vecstore_split(?1, ?2)",
      "SELECT chunk_index, chunk, chunk_size, chunk_overlap, separator FROM vecstore_split(?1, ?2, ?3)",
      "SELECT chunk_index, chunk, chunk_size, chunk_overlap, separator FROM vecstore_split(?1, ?2, ?3, ?4)"};
  for (int i = 0; i < 3; i++) g_apStmt[i] = fz_prepare(g_db, azSql[i]);
}

/**************************************************************************************************
** The reference, on code points.
*/

/* Decodes strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF) into a (malloc'd); -1 if invalid. */
static long decode_strict(const uint8_t *z, size_t n, uint32_t **pa) {
  uint32_t *a = malloc((n + 1) * sizeof(uint32_t));
  if (a == 0) abort();
  long m = 0;
  size_t i = 0;
  while (i < n) {
    uint32_t c = z[i];
    int nCont;
    uint32_t cMin;
    if (c < 0x80) {
      nCont = 0, cMin = 0;
    } else if ((c & 0xE0) == 0xC0) {
      nCont = 1, cMin = 0x80, c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      nCont = 2, cMin = 0x800, c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      nCont = 3, cMin = 0x10000, c &= 0x07;
    } else {
      free(a);
      return -1;
    }
    for (int k = 1; k <= nCont; k++) {
      if (i + (size_t)k >= n || (z[i + k] & 0xC0) != 0x80) {
        free(a);
        return -1;
      }
      c = (c << 6) | (z[i + k] & 0x3F);
    }
    if (c < cMin || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
      free(a);
      return -1;
    }
    a[m++] = c;
    i += (size_t)nCont + 1;
  }
  *pa = a;
  return m;
}

/* Python's str.isspace() for one code point. */
static int py_isspace(uint32_t c) {
  static const uint32_t aSpace[] = {0x09,   0x0A,   0x0B,   0x0C,   0x0D,   0x1C,   0x1D,   0x1E,   0x1F,
                                    0x20,   0x85,   0xA0,   0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
                                    0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F,
                                    0x205F, 0x3000};
  for (size_t i = 0; i < sizeof(aSpace) / sizeof(aSpace[0]); i++) {
    if (aSpace[i] == c) return 1;
  }
  return 0;
}

typedef struct Span { /* a piece: code points [i, i + n) of the text */
  long i, n;
} Span;

typedef struct Chunks { /* the reference's output: chunks as code point arrays */
  uint32_t **aa;
  long *an;
  long n, nAlloc;
} Chunks;

/* _join_docs: the pieces joined with the separator, stripped; appended unless empty. */
static void join_docs(Chunks *pOut, const uint32_t *aText, const Span *aDoc, long nDoc, const uint32_t *aSep,
                      long nSep) {
  long nAll = 0;
  for (long d = 0; d < nDoc; d++) nAll += aDoc[d].n + (d > 0 ? nSep : 0);
  uint32_t *a = malloc((size_t)(nAll + 1) * sizeof(uint32_t));
  if (a == 0) abort();
  long m = 0;
  for (long d = 0; d < nDoc; d++) {
    if (d > 0) {
      memcpy(a + m, aSep, (size_t)nSep * sizeof(uint32_t));
      m += nSep;
    }
    memcpy(a + m, aText + aDoc[d].i, (size_t)aDoc[d].n * sizeof(uint32_t));
    m += aDoc[d].n;
  }
  long iLo = 0, iHi = m;
  while (iLo < iHi && py_isspace(a[iLo])) iLo++;
  while (iHi > iLo && py_isspace(a[iHi - 1])) iHi--;
  if (iHi == iLo) {
    free(a);
    return;
  }
  memmove(a, a + iLo, (size_t)(iHi - iLo) * sizeof(uint32_t));
  if (pOut->n == pOut->nAlloc) {
    pOut->nAlloc = pOut->nAlloc ? pOut->nAlloc * 2 : 16;
    pOut->aa = realloc(pOut->aa, (size_t)pOut->nAlloc * sizeof(*pOut->aa));
    pOut->an = realloc(pOut->an, (size_t)pOut->nAlloc * sizeof(*pOut->an));
    if (pOut->aa == 0 || pOut->an == 0) abort();
  }
  pOut->aa[pOut->n] = a;
  pOut->an[pOut->n] = iHi - iLo;
  pOut->n++;
}

/* CharacterTextSplitter.split_text with the default settings. */
static void reference_split(const uint32_t *aText, long nText, const uint32_t *aSep, long nSep, long long nSize,
                            long long nOverlap, Chunks *pOut) {
  /* str.split(sep) (list(text) for an empty separator), empty pieces dropped. */
  Span *aPiece = malloc((size_t)(nText + 1) * sizeof(Span));
  if (aPiece == 0) abort();
  long nPiece = 0;
  if (nSep == 0) {
    for (long i = 0; i < nText; i++) aPiece[nPiece++] = (Span){i, 1};
  } else {
    long iStart = 0, i = 0;
    while (i + nSep <= nText) {
      if (memcmp(aText + i, aSep, (size_t)nSep * sizeof(uint32_t)) == 0) {
        if (i > iStart) aPiece[nPiece++] = (Span){iStart, i - iStart};
        i += nSep;
        iStart = i;
      } else {
        i++;
      }
    }
    if (nText > iStart) aPiece[nPiece++] = (Span){iStart, nText - iStart};
  }
  /* _merge_splits. */
  Span *aDoc = malloc((size_t)(nPiece + 1) * sizeof(Span));
  if (aDoc == 0) abort();
  long nDoc = 0, iDoc0 = 0; /* current_doc = aDoc[iDoc0 .. nDoc) */
  long long total = 0;
  for (long p = 0; p < nPiece; p++) {
    long long len = aPiece[p].n;
    long nCur = nDoc - iDoc0;
    if (total + len + (nCur > 0 ? nSep : 0) > nSize) {
      if (nCur > 0) {
        join_docs(pOut, aText, aDoc + iDoc0, nCur, aSep, nSep);
        while (total > nOverlap || (total + len + (nDoc - iDoc0 > 0 ? nSep : 0) > nSize && total > 0)) {
          total -= aDoc[iDoc0].n + (nDoc - iDoc0 > 1 ? nSep : 0);
          iDoc0++;
        }
      }
    }
    aDoc[nDoc++] = aPiece[p];
    total += len + (nDoc - iDoc0 > 1 ? nSep : 0);
  }
  join_docs(pOut, aText, aDoc + iDoc0, nDoc - iDoc0, aSep, nSep);
  free(aDoc);
  free(aPiece);
}

static void chunks_free(Chunks *p) {
  for (long i = 0; i < p->n; i++) free(p->aa[i]);
  free(p->aa);
  free(p->an);
}

/**************************************************************************************************
** The target.
*/

int LLVMFuzzerTestOneInput(const uint8_t *pData, size_t nData) {
  init();
  FzBytes in = {pData, nData};
  unsigned eSize = fz_u8(&in), eOverlap = fz_u8(&in), eSep = fz_u8(&in);
  size_t nSepRaw = eSep & 7;
  int bBlob = (eSep >> 3) & 1;
  int nArg = 4;
  const uint8_t *pSep = 0;
  size_t nSep = 0;
  if (nSepRaw <= 4) {
    pSep = fz_take(&in, nSepRaw, &nSep);
  } else if (nSepRaw == 5) {
    pSep = 0; /* NULL: the default */
  } else if (nSepRaw == 6) {
    nArg = 3; /* omitted */
  } else {
    pSep = (const uint8_t *)""; /* empty: characters */
  }
  if (eOverlap == 255 && nArg == 3) nArg = 2;
  const uint8_t *pText = in.p;
  size_t nText = in.n;
  sqlite3_stmt *pStmt = g_apStmt[nArg - 2];

  /* chunk_size: mostly small, sometimes a bad or unusual value. */
  long long nSize = (long long)(eSize % 48) + 1;
  int bSizeOk = 1;
  switch (eSize) {
    case 255: sqlite3_bind_int(pStmt, 2, 0); bSizeOk = 0; break;
    case 254: sqlite3_bind_int(pStmt, 2, -3); bSizeOk = 0; break;
    case 253: sqlite3_bind_double(pStmt, 2, 2.5); bSizeOk = 0; break;
    case 252: sqlite3_bind_null(pStmt, 2); bSizeOk = 0; break;
    case 251: sqlite3_bind_text(pStmt, 2, "10", -1, SQLITE_STATIC); bSizeOk = 0; break;
    case 250: nSize = 4611686018427387904LL; sqlite3_bind_int64(pStmt, 2, nSize); break;
    case 249: nSize = 7; sqlite3_bind_double(pStmt, 2, 7.0); break;
    default: sqlite3_bind_int64(pStmt, 2, nSize); break;
  }
  long long nOverlap = 0;
  int bOverlapOk = 1;
  if (nArg >= 3) {
    if (eOverlap == 255) {
      sqlite3_bind_null(pStmt, 3);
    } else if (eOverlap == 254) {
      sqlite3_bind_int(pStmt, 3, -1);
      bOverlapOk = 0;
    } else {
      nOverlap = eOverlap % 50;
      sqlite3_bind_int64(pStmt, 3, nOverlap);
      if (bSizeOk && nOverlap > nSize) bOverlapOk = 0;
    }
  }
  if (nArg == 4) {
    if (pSep) {
      sqlite3_bind_text64(pStmt, 4, nSep ? (const char *)pSep : "", nSep, SQLITE_TRANSIENT, SQLITE_UTF8);
    } else {
      sqlite3_bind_null(pStmt, 4);
    }
  }
  if (bBlob) {
    sqlite3_bind_blob64(pStmt, 1, nText ? (const void *)pText : "", nText, SQLITE_TRANSIENT);
  } else {
    sqlite3_bind_text64(pStmt, 1, nText ? (const char *)pText : "", nText, SQLITE_TRANSIENT, SQLITE_UTF8);
  }
  if (!pSep) {
    pSep = (const uint8_t *)"\n\n";
    nSep = 2;
  }

  /* The reference, when text and separator are valid UTF-8. */
  uint32_t *aText = 0, *aSep = 0;
  long nTextCp = decode_strict(pText, nText, &aText);
  long nSepCp = nTextCp >= 0 ? decode_strict(pSep, nSep, &aSep) : -1;
  int bRef = nTextCp >= 0 && nSepCp >= 0 && bSizeOk && bOverlapOk;
  Chunks ref = {0, 0, 0, 0};
  if (bRef) reference_split(aText, nTextCp, aSep, nSepCp, nSize, nOverlap, &ref);

  long nRow = 0;
  int rc;
  while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    if (!bSizeOk || !bOverlapOk) fz_fail("vecstore_split accepted bad arguments");
    if (sqlite3_column_int64(pStmt, 0) != nRow) fz_fail("chunk_index %lld at row %ld", sqlite3_column_int64(pStmt, 0), nRow);
    if (sqlite3_column_int64(pStmt, 2) != nSize) fz_fail("chunk_size column differs");
    if (sqlite3_column_int64(pStmt, 3) != nOverlap) fz_fail("chunk_overlap column differs");
    if ((size_t)sqlite3_column_bytes(pStmt, 4) != nSep || (nSep && memcmp(sqlite3_column_blob(pStmt, 4), pSep, nSep))) {
      fz_fail("separator column differs");
    }
    const uint8_t *pChunk = sqlite3_column_blob(pStmt, 1);
    int nChunk = sqlite3_column_bytes(pStmt, 1);
    if (nChunk <= 0 || (size_t)nChunk > nText + nSep * (nText + 1)) fz_fail("chunk %ld has %d bytes", nRow, nChunk);
    if (bRef) {
      uint32_t *aChunk = 0;
      long nCp = decode_strict(pChunk, (size_t)nChunk, &aChunk);
      if (nRow >= ref.n) fz_fail("more chunks than the reference's %ld", ref.n);
      if (nCp != ref.an[nRow] || memcmp(aChunk, ref.aa[nRow], (size_t)nCp * sizeof(uint32_t)) != 0) {
        fz_fail("chunk %ld differs from the reference (%ld vs %ld code points): '%.*s'", nRow, nCp, ref.an[nRow],
                nChunk, (const char *)pChunk);
      }
      free(aChunk);
    }
    nRow++;
  }
  int rcReset = sqlite3_reset(pStmt);
  if (rc != SQLITE_DONE) {
    fz_check_function_error(g_db, rcReset, "vecstore_split");
    if (bSizeOk && bOverlapOk) fz_fail("vecstore_split rejected good arguments: %s", sqlite3_errmsg(g_db));
  } else {
    if (!bSizeOk || !bOverlapOk) fz_fail("vecstore_split accepted bad arguments");
    if (bRef && nRow != ref.n) fz_fail("%ld chunks, the reference has %ld", nRow, ref.n);
  }
  sqlite3_clear_bindings(pStmt);
  chunks_free(&ref);
  free(aText);
  free(aSep);
  return 0;
}
