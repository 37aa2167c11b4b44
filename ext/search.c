/*
** search.c: rows in increasing distance from a query, for as long as the caller asks.
**
** Three sources are merged: (1) the committed Faiss index, asked for a batch of k rows that skips tombstones,
** rows the open transaction touched, and rows already returned; when a batch is used up the index is asked
** again for twice as many; (2) the transaction's pending vectors, scored exactly up front; (3) once an
** approximate index would be asked for more than half its labels, an exact scan of the stored vectors returns
** everything not returned yet. Rows come in non-decreasing distance: a row a deeper approximate batch finds
** nearer than one already returned is left to the exact stage, which returns it after farther rows if the stream
** gets that far (so a full stream still returns every row once). Deeper HNSW batches search with ef = k, deeper
** IVF batches probe twice as many lists, and a deeper batch takes over at half of the previous one, so such rows
** are rare. A search among given rows (rowid/id IN) scores just those, exactly.
*/
#include "vecstore_int.h"

#include <math.h>

typedef struct Candidate {
  double rDist;
  i64 iRowid;
} Candidate;

typedef struct CandidateList {
  Candidate *a;
  i64 n, nAlloc, iNext;
  i64 nSorted; /* a[0..nSorted) is in order and holds the nSorted nearest */
} CandidateList;

struct VsSearch {
  VsTable *pTab;
  float *aQuery;
  char *zParams;
  CandidateList pending; /* the transaction's own vectors, sorted */
  CandidateList batch;   /* the current index batch */
  i64 nBatchAsked;       /* k of the current index batch (0: none yet) */
  i64 nBatchFound;       /* rows the index returned for it */
  i64 nFirstAsked;       /* k of the first batch */
  double rLast;          /* distance of the last row returned */
  int bAny;              /* a row was returned */
  i64 nProbe;            /* IVF: nprobe of the current batch (widened with each batch), 0 otherwise */
  i64 nList;
  int eStage;            /* STAGE_INDEX, STAGE_EXACT, STAGE_DONE for the committed rows */
  VsI64Map emitted;      /* committed rowids already returned */
  int (*xFilter)(void *, i64); /* the caller's condition on committed rows, or NULL */
  void *pFilterCtx;
  VsLabelBits *pBits;    /* the same condition as label bits, or NULL */
  int bBitsUsed;         /* the index search in progress has the bits: keep_committed skips xFilter */
};

enum { STAGE_INDEX = 0, STAGE_EXACT = 1, STAGE_DONE = 2 };

static int candidate_push(CandidateList *p, i64 iRowid, double rDist) {
  if (p->n == p->nAlloc) {
    i64 nNew = p->nAlloc ? p->nAlloc * 2 : 64;
    Candidate *aNew = sqlite3_realloc64(p->a, (sqlite3_uint64)nNew * sizeof(Candidate));
    if (aNew == 0) return SQLITE_NOMEM;
    p->a = aNew;
    p->nAlloc = nNew;
  }
  p->a[p->n].iRowid = iRowid;
  p->a[p->n].rDist = rDist;
  p->n++;
  return SQLITE_OK;
}

/* Nearest first, ties by rowid; a NaN distance (from overflowing vectors) sorts after every number, so the
** order is total. */
static int candidate_cmp(const void *pA, const void *pB) {
  const Candidate *a = pA, *b = pB;
  if (a->rDist < b->rDist) return -1;
  if (a->rDist > b->rDist) return 1;
  int bNanA = isnan(a->rDist), bNanB = isnan(b->rDist);
  if (bNanA != bNanB) return bNanA - bNanB;
  return (a->iRowid > b->iRowid) - (a->iRowid < b->iRowid);
}

/* Reorders a[0..n) so that its nHead nearest candidates come first, in no particular order (Wirth's select). */
static void candidate_select(Candidate *a, i64 n, i64 nHead) {
  i64 lo = 0, hi = n - 1, k = nHead - 1;
  while (lo < hi) {
    Candidate pivot = a[k];
    i64 i = lo, j = hi;
    do {
      while (candidate_cmp(&a[i], &pivot) < 0) i++;
      while (candidate_cmp(&pivot, &a[j]) < 0) j--;
      if (i <= j) {
        Candidate t = a[i];
        a[i++] = a[j];
        a[j--] = t;
      }
    } while (i <= j);
    if (j < k) lo = i;
    if (k < i) hi = j;
  }
}

/* Orders the list for reading from the start. Long lists (an exact stage, a broad among search) are ordered
** lazily: the nearest few now, the rest only if the stream gets that far (candidate_next). */
static void candidate_sort(CandidateList *p) {
  enum { HEAD = 256 };
  p->iNext = 0;
  p->nSorted = p->n;
  if (p->n > 4 * HEAD) {
    candidate_select(p->a, p->n, HEAD);
    p->nSorted = HEAD;
  }
  if (p->nSorted > 1) qsort(p->a, (size_t)p->nSorted, sizeof(Candidate), candidate_cmp);
}

/* The list's next candidate (NULL at its end), ordering the rest of a lazily ordered list when reached. */
static Candidate *candidate_next(CandidateList *p) {
  if (p->iNext >= p->n) return 0;
  if (p->iNext == p->nSorted) {
    qsort(p->a + p->nSorted, (size_t)(p->n - p->nSorted), sizeof(Candidate), candidate_cmp);
    p->nSorted = p->n;
  }
  return &p->a[p->iNext];
}

static void candidate_reset(CandidateList *p) { p->n = p->iNext = p->nSorted = 0; }

void vs_search_free(VsSearch *p) {
  if (p == 0) return;
  sqlite3_free(p->aQuery);
  sqlite3_free(p->zParams);
  sqlite3_free(p->pending.a);
  sqlite3_free(p->batch.a);
  vs_i64map_clear(&p->emitted);
  vs_label_bits_unref(p->pBits);
  sqlite3_free(p);
}

/* Index selector: committed rows the transaction has not touched, that the caller's filter keeps, and that
** the stream has not returned yet. */
static int keep_committed(void *pCtx, i64 iRowid) {
  VsSearch *p = (VsSearch *)pCtx;
  i64 iDummy;
  if (vs_pending_get(&p->pTab->pending, iRowid) != 0) return 0;
  if (p->xFilter && !p->bBitsUsed && !p->xFilter(p->pFilterCtx, iRowid)) return 0;
  return p->emitted.nUsed == 0 || !vs_i64map_get(&p->emitted, iRowid, &iDummy);
}

/* Index selector for approximate indexes: rows the transaction touched and rows the caller's filter drops are
** excluded. Excluding rows already returned as well would starve graph searches (HNSW stops once its queue
** holds only excluded nodes), so those are skipped after each batch instead. */
static int keep_untouched(void *pCtx, i64 iRowid) {
  VsSearch *p = (VsSearch *)pCtx;
  if (p->xFilter && !p->xFilter(p->pFilterCtx, iRowid)) return 0;
  return vs_pending_get(&p->pTab->pending, iRowid) == 0;
}

/* Scores every live pending vector exactly. */
static int score_pending(VsSearch *p) {
  const VsPending *pP = &p->pTab->pending;
  int rc = SQLITE_OK;
  for (i64 i = 0; rc == SQLITE_OK && i < pP->last.nSlot; i++) {
    if (pP->last.aUsed[i] != 1) continue;
    const VsPendingOp *pOp = &pP->aOp[pP->last.aVal[i]];
    if (pOp->aVec == 0) continue;
    rc = candidate_push(&p->pending, pOp->iRowid,
                        vs_distance(p->aQuery, pOp->aVec, p->pTab->pCfg->nDim, p->pTab->pCfg->eMetric));
  }
  candidate_sort(&p->pending);
  return rc;
}

/* Asks the index for the next batch of nAsk rows. */
static int fetch_batch(VsSearch *p, i64 nAsk) {
  if (p->pTab->pIdx == 0) { /* dropped by a failed commit while this cursor was open */
    int rc = vs_sync_read(p->pTab);
    if (rc != SQLITE_OK) return rc;
  }
  VsIndex *pIdx = p->pTab->pIdx;
  candidate_reset(&p->batch);
  p->nBatchAsked = nAsk;
  if (nAsk > pIdx->nLabel) nAsk = pIdx->nLabel;
  if (nAsk <= 0) return SQLITE_OK;
  float *aDist = sqlite3_malloc64((sqlite3_uint64)nAsk * sizeof(float));
  i64 *aRowid = sqlite3_malloc64((sqlite3_uint64)nAsk * sizeof(i64));
  i64 n = 0;
  int rc = (aDist && aRowid) ? SQLITE_OK : SQLITE_NOMEM;
  char *zBatchParams = 0;
  if (rc == SQLITE_OK && p->nProbe > 0) { /* IVF: each deeper batch probes twice as many lists */
    zBatchParams = sqlite3_mprintf("%s%snprobe=%lld", p->zParams ? p->zParams : "", p->zParams ? "," : "", p->nProbe);
    if (zBatchParams == 0) rc = SQLITE_NOMEM;
  }
  if (rc == SQLITE_OK) {
    /* A selector costs a call per candidate in exhaustive scans: pass one only when something is excluded. */
    int (*xKeep)(void *, i64) = 0;
    int bPending = !vs_pending_is_empty(&p->pTab->pending);
    /* Label bits stand for the filter while they describe this index and the transaction changed nothing. */
    const uint64_t *aBit = 0;
    if (p->pBits && p->pBits->iStamp == pIdx->iStamp && !bPending && p->pTab->written.nUsed == 0) aBit = p->pBits->aBit;
    int bFilter = p->xFilter && aBit == 0;
    if (pIdx->bExact && (bPending || p->emitted.nUsed > 0 || bFilter)) xKeep = keep_committed;
    if (!pIdx->bExact && (bPending || bFilter)) xKeep = keep_untouched;
    p->bBitsUsed = aBit != 0;
    rc = vs_index_search(pIdx, p->aQuery, nAsk, zBatchParams ? zBatchParams : p->zParams, xKeep, p, aBit, aDist,
                         aRowid, &n, &p->pTab->base.zErrMsg);
    p->bBitsUsed = 0;
  }
  sqlite3_free(zBatchParams);
  p->nBatchFound = n;
  for (i64 i = 0; rc == SQLITE_OK && i < n; i++) {
    if (keep_committed(p, aRowid[i])) rc = candidate_push(&p->batch, aRowid[i], aDist[i]);
  }
  sqlite3_free(aDist);
  sqlite3_free(aRowid);
  candidate_sort(&p->batch); /* ties in rowid order, as in the pending list */
  return rc;
}

static int exact_row(void *pCtx, i64 iRowid, const float *aVec) {
  VsSearch *p = (VsSearch *)pCtx;
  if (!keep_committed(p, iRowid)) return SQLITE_OK;
  return candidate_push(&p->batch, iRowid, vs_distance(p->aQuery, aVec, p->pTab->pCfg->nDim, p->pTab->pCfg->eMetric));
}

/* The final stage for approximate indexes: every stored vector not returned yet, exactly. Stored vectors
** include the transaction's own changes, which keep_committed leaves to the pending list. */
static int fetch_exact(VsSearch *p) {
  candidate_reset(&p->batch);
  int rc = vs_storage_vector_scan(p->pTab->pStore, exact_row, p, &p->pTab->base.zErrMsg);
  candidate_sort(&p->batch);
  return rc;
}

int vs_search_start(VsTable *pTab, const float *aQuery, i64 nFirstBatch, const char *zParams,
                    int (*xFilter)(void *, i64), void *pFilterCtx, VsLabelBits *pBits, VsSearch **pp) {
  *pp = 0;
  int rc = vs_sync_read(pTab);
  if (rc != SQLITE_OK) return rc;
  VsSearch *p = sqlite3_malloc(sizeof(*p));
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->pTab = pTab;
  p->xFilter = xFilter;
  p->pFilterCtx = pFilterCtx;
  if (pBits) pBits->nRef++;
  p->pBits = pBits;
  vs_i64map_init(&p->emitted);
  size_t nByte = (size_t)pTab->pCfg->nDim * sizeof(float);
  p->aQuery = sqlite3_malloc64(nByte);
  if (p->aQuery == 0) rc = SQLITE_NOMEM;
  else memcpy(p->aQuery, aQuery, nByte);
  if (rc == SQLITE_OK && zParams && zParams[0]) {
    p->zParams = sqlite3_mprintf("%s", zParams);
    if (p->zParams == 0) rc = SQLITE_NOMEM;
  }
  if (rc == SQLITE_OK && p->zParams) rc = vs_index_check_params(pTab->pIdx, p->zParams, &pTab->base.zErrMsg);
  if (rc == SQLITE_OK && !pTab->pIdx->bStandIn && vs_faiss_ivf_probe(pTab->pIdx->pFaiss, p->zParams, &p->nProbe, &p->nList)) {
    if (p->nProbe < 1) p->nProbe = 1;
  } else {
    p->nProbe = 0;
  }
  if (rc == SQLITE_OK) rc = score_pending(p);
  p->nFirstAsked = nFirstBatch > 0 ? nFirstBatch : 16;
  if (rc == SQLITE_OK) rc = fetch_batch(p, p->nFirstAsked);
  /* IVF with the caller's filter inside: lists probed for the first batch may hold too few matching rows, and
  ** those few need not be the nearest matches. Before anything is returned, more lists are probed until the batch
  ** is full (or every list is). */
  while (rc == SQLITE_OK && p->xFilter && p->nProbe > 0 && p->nProbe < p->nList &&
         p->nBatchFound < p->nFirstAsked && p->nBatchFound < vs_index_count(pTab->pIdx)) {
    p->nProbe = p->nProbe * 2 < p->nList ? p->nProbe * 2 : p->nList;
    rc = fetch_batch(p, p->nFirstAsked);
  }
  if (rc != SQLITE_OK) {
    vs_search_free(p);
    return rc;
  }
  *pp = p;
  return SQLITE_OK;
}

/* A search whose committed rows are all in p->batch up front (the exact stage only). */
static VsSearch *new_list_search(VsTable *pTab) {
  VsSearch *p = sqlite3_malloc(sizeof(*p));
  if (p == 0) return 0;
  memset(p, 0, sizeof(*p));
  p->pTab = pTab;
  p->eStage = STAGE_EXACT;
  vs_i64map_init(&p->emitted);
  return p;
}

/* Hands a finished list search to the caller, or frees it on error. */
static int finish_list_search(VsSearch *p, int rc, VsSearch **pp) {
  if (rc != SQLITE_OK) {
    vs_search_free(p);
    return rc;
  }
  *pp = p;
  return SQLITE_OK;
}

int vs_search_start_among(VsTable *pTab, const float *aQuery, const i64 *aRowid, i64 nRowid, VsSearch **pp) {
  *pp = 0;
  int rc = vs_sync_read(pTab);
  if (rc != SQLITE_OK) return rc;
  VsSearch *p = new_list_search(pTab);
  if (p == 0) return SQLITE_NOMEM;
  int nDim = pTab->pCfg->nDim;
  float *aVec = sqlite3_malloc64((sqlite3_uint64)nDim * sizeof(float));
  float *aMem = sqlite3_malloc64((sqlite3_uint64)(nRowid > 0 ? nRowid : 1) * sizeof(float));
  if (aVec == 0 || aMem == 0) rc = SQLITE_NOMEM;
  /* Committed rows the transaction has not touched are scored from the index's own full-precision vectors
  ** when it keeps them (Flat, HNSW); the shadow tables, which hold the transaction's changes too, are the truth
  ** for everything else. */
  int bMem = rc == SQLITE_OK && vs_index_exact_distances(pTab->pIdx, aQuery, nRowid, aRowid, aMem) == SQLITE_OK;
  for (i64 i = 0; rc == SQLITE_OK && i < nRowid; i++) {
    if (bMem && !isnan(aMem[i]) && vs_pending_get(&pTab->pending, aRowid[i]) == 0) {
      rc = candidate_push(&p->batch, aRowid[i], aMem[i]);
      continue;
    }
    rc = vs_storage_vector_get(pTab->pStore, aRowid[i], aVec, &pTab->base.zErrMsg);
    if (rc == SQLITE_OK) rc = candidate_push(&p->batch, aRowid[i], vs_distance(aQuery, aVec, nDim, pTab->pCfg->eMetric));
    else if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  sqlite3_free(aVec);
  sqlite3_free(aMem);
  candidate_sort(&p->batch);
  return finish_list_search(p, rc, pp);
}

int vs_search_from_list(VsTable *pTab, const i64 *aRowid, const double *aDist, i64 n, VsSearch **pp) {
  *pp = 0;
  VsSearch *p = new_list_search(pTab);
  if (p == 0) return SQLITE_NOMEM;
  int rc = SQLITE_OK;
  for (i64 i = 0; rc == SQLITE_OK && i < n; i++) rc = candidate_push(&p->batch, aRowid[i], aDist[i]);
  p->batch.nSorted = p->batch.n; /* the caller's order (MMR picks), not distance order */
  return finish_list_search(p, rc, pp);
}

/* Is the current batch done with? An approximate batch is least reliable at its tail, so once the stream goes
** deeper than the first batch, half of a full batch is used before a twice larger one takes over: rows that
** one finds nearer than rows already returned (which would come out of order) become rarer. */
static int batch_used_up(const VsSearch *p) {
  if (p->batch.iNext >= p->batch.n) return 1;
  const VsIndex *pIdx = p->pTab->pIdx;
  return p->eStage == STAGE_INDEX && pIdx && !pIdx->bExact && p->nBatchAsked > p->nFirstAsked &&
         p->nBatchFound >= p->nBatchAsked && p->nBatchAsked < pIdx->nLabel && p->batch.iNext * 2 >= p->batch.n;
}

/* Makes p->batch hold a committed candidate if any remain, moving through the stages. */
static int refill(VsSearch *p) {
  while (p->eStage != STAGE_DONE && batch_used_up(p)) {
    int rc;
    if (p->eStage == STAGE_EXACT) {
      p->eStage = STAGE_DONE;
      break;
    }
    VsIndex *pIdx = p->pTab->pIdx;
    if (pIdx == 0) {
      rc = vs_sync_read(p->pTab);
      if (rc != SQLITE_OK) return rc;
      pIdx = p->pTab->pIdx;
    }
    i64 nFound = p->batch.n;
    int bAllAsked = p->nBatchAsked >= pIdx->nLabel;
    if (pIdx->bExact && (nFound < p->nBatchAsked || bAllAsked)) {
      p->eStage = STAGE_DONE; /* an exhaustive index returned all it had */
    } else if (!pIdx->bExact && (p->nBatchAsked > pIdx->nLabel / 4 ||
                                 (p->nBatchFound < p->nBatchAsked && !(p->nProbe > 0 && p->nProbe < p->nList)))) {
      /* Asked for much of the index, or it came back short with no wider probe left: score the rest exactly. */
      p->eStage = STAGE_EXACT;
      rc = fetch_exact(p);
      if (rc != SQLITE_OK) return rc;
    } else {
      if (p->nProbe > 0) p->nProbe = p->nProbe * 2 < p->nList ? p->nProbe * 2 : p->nList;
      rc = fetch_batch(p, p->nBatchAsked > pIdx->nLabel ? p->nBatchAsked : p->nBatchAsked * 2);
      if (rc != SQLITE_OK) return rc;
    }
  }
  return SQLITE_OK;
}

int vs_search_next(VsSearch *p, i64 *piRowid, double *prDist, int *pbEof) {
  for (;;) {
    int rc = refill(p);
    if (rc != SQLITE_OK) return rc;
    Candidate *pC = candidate_next(&p->batch);
    Candidate *pP = candidate_next(&p->pending);
    if (pC == 0 && pP == 0) {
      *pbEof = 1;
      return SQLITE_OK;
    }
    Candidate next;
    if (pP && (pC == 0 || candidate_cmp(pP, pC) <= 0)) {
      next = *pP;
      p->pending.iNext++;
    } else {
      next = *pC;
      p->batch.iNext++;
      i64 iDummy;
      if (vs_i64map_get(&p->emitted, next.iRowid, &iDummy)) continue;
      /* Found late by a deeper approximate batch: returning it now would break the distance order, so it is
      ** left for the exact stage (which ends every stream that gets that far). */
      if (p->eStage == STAGE_INDEX && p->bAny && next.rDist < p->rLast) continue;
      rc = vs_i64map_put(&p->emitted, next.iRowid, 1);
      if (rc != SQLITE_OK) return rc;
    }
    if (!p->bAny || next.rDist > p->rLast) p->rLast = next.rDist;
    p->bAny = 1;
    *piRowid = next.iRowid;
    *prDist = next.rDist;
    *pbEof = 0;
    return SQLITE_OK;
  }
}
