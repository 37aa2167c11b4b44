/*
** index.c: one Faiss index with a dense label -> rowid map.
**
** Faiss labels are positions 0..nLabel-1 in the order vectors were added; aRowid maps them to rowids. Deleting
** or replacing a vector turns its label into a tombstone (VS_TOMBSTONE) that searches skip, which works the same for every
** index type, HNSW included. Compaction is a rebuild (sync.c). While a trainable index (IVF, PQ, SQ) has not been
** trained, an exact flat index of the same metric stands in for it, so early vectors are searched exactly.
**
** The exact delta of a graph. Adding one vector to Faiss 1.7.3's HNSW costs a lock per node of the whole graph
** (hnsw_add_vertices initialises and destroys one for every existing vertex) plus the insertion itself: ~5 ms per
** one-row commit at 1M rows. An HNSW index over Flat therefore takes small adds into pDelta, an exact flat index of
** the labels nMain..nLabel-1 searched beside the graph (its results merged by distance), and adds the whole delta
** to the graph at once when it reaches VS_DELTA_MAX vectors or before a snapshot is written (vs_index_fold): the
** labels keep their numbers, since the graph takes them in label order. Tombstoned delta labels are folded too
** (their rowid stays VS_TOMBSTONE), so that numbering holds.
*/
#include "vecstore_int.h"

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <ctype.h>
#include <math.h>

#define VS_DELTA_MAX 1024 /* vectors an HNSW index keeps in its exact delta before folding them in */
#define VS_SNAPSHOT_MAGIC 0x58495356u /* "VSIX" */
#define VS_SNAPSHOT_VERSION 2u /* 2: the flat codes and HNSW graph arrays in vecstore's own section */

/* A process-wide counter: each VsIndex state (creation, every add and remove) gets a value never used before, so
** that something derived from the label map (a label bitmap) can tell whether it still describes it. */
static uint64_t next_stamp(void) {
  static uint64_t iCounter = 0;
  return __atomic_add_fetch(&iCounter, 1, __ATOMIC_RELAXED);
}

static FaissMetricType faiss_metric(VsMetric eMetric) {
  return eMetric == VS_METRIC_L2 ? METRIC_L2 : METRIC_INNER_PRODUCT;
}

static FaissIndex *as_faiss(VsFaissIndex *p) { return (FaissIndex *)p; }

/* Copies Faiss's last error into *pzErr, keeping only the message after "file:line: ". */
static void faiss_error(char **pzErr, const char *zWhat) {
  const char *zMsg = faiss_get_last_error();
  const char *zShort = zMsg ? strstr(zMsg, " at ") : 0;
  if (zShort) zShort = strstr(zShort, ": ");
  vs_error(pzErr, "%s: %s", zWhat, zShort ? zShort + 2 : (zMsg ? zMsg : "unknown Faiss error"));
}

/* The number that starts at z (at most 2^20 + 1: larger ones only need to be known as too large). */
static i64 number_at(const char *z, int n) {
  i64 v = 0;
  for (int i = 0; i < n && isdigit((unsigned char)z[i]); i++) {
    if (v <= (1 << 20)) v = v * 10 + (z[i] - '0');
  }
  return v;
}

/* Does token zTok (nTok bytes) start with zPrefix followed by a digit? */
static int prefix_number(const char *zTok, int nTok, const char *zPrefix) {
  int n = (int)strlen(zPrefix);
  return nTok > n && sqlite3_strnicmp(zTok, zPrefix, n) == 0 && isdigit((unsigned char)zTok[n]);
}

/* Refuses descriptions Faiss would turn into a crash, a leak or an unbounded allocation: NSG (built once from
** all vectors; Faiss divides by zero adding a few), a zero or a number above 2^20 (lists, links, output
** dimensions), codes of more than 16 bits ("PQ2x32": Faiss computes 1 << nbits in an int; 8 after IVF, whose
** IVFPQ constructor throws and leaks the quantizer), HNSW with fewer than
** 2 or more than 512 links, and PQ / OPQ sub-quantizers that do not divide the dimension they get (Faiss throws
** from inside its factory, leaking what it built). */
static int check_description(const char *zDesc, int nDim, char **pzErr) {
  const char *z = zDesc;
  i64 nCur = nDim; /* the dimension the next stage of the description receives */
  int bInverted = 0; /* an IVF or IMI stage came before */
  while (*z) {
    const char *zTok = z;
    while (*z && *z != ',') z++;
    int nTok = (int)(z - zTok);
    if (*z == ',') z++;
    if (nTok >= 3 && sqlite3_strnicmp(zTok, "NSG", 3) == 0) {
      vs_error(pzErr, "index '%s': NSG indexes cannot grow a row at a time (Faiss builds them once); expected "
               "Flat, HNSW, IVF, SQ or PQ", zDesc);
      return SQLITE_ERROR;
    }
    for (int i = 0; i < nTok; i++) {
      if (!isdigit((unsigned char)zTok[i]) || (i > 0 && isdigit((unsigned char)zTok[i - 1]))) continue;
      int j = i;
      while (j < nTok && isdigit((unsigned char)zTok[j])) j++;
      i64 v = number_at(zTok + i, j - i), nMin = 1, nMax = 1 << 20;
      const char *zWhat = "";
      if (i > 0 && (zTok[i - 1] == 'x' || zTok[i - 1] == 'X')) {
        zWhat = " bits per code";
        nMax = bInverted && prefix_number(zTok, nTok, "PQ") ? 8 : 16; /* Faiss's IVFPQ takes at most 8 */
      }
      else if (i == 4 && sqlite3_strnicmp(zTok, "HNSW", 4) == 0) zWhat = " links per node", nMin = 2, nMax = 512;
      if (v < nMin || v > nMax) {
        vs_error(pzErr, "index '%s': %.*s%s is out of range (expected %lld to %lld)", zDesc, j - i, zTok + i, zWhat,
                 nMin, nMax);
        return SQLITE_ERROR;
      }
    }
    if (prefix_number(zTok, nTok, "IVF") || prefix_number(zTok, nTok, "IMI")) bInverted = 1;
    /* Track the dimension through transforms, and check that sub-quantizers divide it. */
    i64 nSub = 0;
    if (prefix_number(zTok, nTok, "OPQ")) {
      nSub = number_at(zTok + 3, nTok - 3);
      const char *zUnder = memchr(zTok, '_', (size_t)nTok);
      if (zUnder && zUnder + 1 < zTok + nTok && isdigit((unsigned char)zUnder[1])) {
        nCur = number_at(zUnder + 1, (int)(zTok + nTok - zUnder - 1));
      }
    } else if (prefix_number(zTok, nTok, "PQ")) {
      nSub = number_at(zTok + 2, nTok - 2);
    } else if (prefix_number(zTok, nTok, "PCAWR") || prefix_number(zTok, nTok, "PCAR") ||
               prefix_number(zTok, nTok, "PCAW") || prefix_number(zTok, nTok, "PCA") ||
               prefix_number(zTok, nTok, "RR")) {
      const char *zNum = zTok;
      while (!isdigit((unsigned char)*zNum)) zNum++;
      nCur = number_at(zNum, (int)(zTok + nTok - zNum));
    }
    if (nSub > 0 && nCur % nSub != 0) {
      vs_error(pzErr, "index '%s': %.*s needs a dimension divisible by %lld, it receives %lld", zDesc, nTok, zTok,
               nSub, nCur);
      return SQLITE_ERROR;
    }
  }
  return SQLITE_OK;
}

static int factory(int nDim, VsMetric eMetric, const char *zDesc, FaissIndex **ppOut, char **pzErr) {
  *ppOut = 0;
  if (check_description(zDesc, nDim, pzErr) != SQLITE_OK) return SQLITE_ERROR;
  if (sqlite3_strnicmp(zDesc, "IDMap", 5) == 0) {
    vs_error(pzErr, "index '%s': vecstore maps rowids itself, expected a description without IDMap", zDesc);
    return SQLITE_ERROR;
  }
  if (faiss_index_factory(ppOut, nDim, zDesc, faiss_metric(eMetric)) != 0 || *ppOut == 0) {
    char *zWhat = sqlite3_mprintf("invalid index '%s' for dim=%d (expected a Faiss index_factory description "
                                  "such as Flat, HNSW32, IVF256,Flat, IVF256,SQ8 or PQ16)", zDesc, nDim);
    faiss_error(pzErr, zWhat ? zWhat : "invalid index");
    sqlite3_free(zWhat);
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

int vs_index_validate(int nDim, VsMetric eMetric, const char *zDesc, const char *zParams, char **pzErr) {
  FaissIndex *pReal = 0;
  int rc = factory(nDim, eMetric, zDesc, &pReal, pzErr);
  if (rc == SQLITE_OK) rc = vs_faiss_apply_params((VsFaissIndex *)pReal, zParams, pzErr);
  if (pReal) faiss_Index_free(pReal);
  return rc;
}

int vs_index_new(int nDim, VsMetric eMetric, const char *zDesc, VsIndex **ppIdx, char **pzErr) {
  FaissIndex *pReal = 0;
  *ppIdx = 0;
  int rc = factory(nDim, eMetric, zDesc, &pReal, pzErr);
  if (rc != SQLITE_OK) return rc;
  VsIndex *p = sqlite3_malloc(sizeof(*p));
  if (p == 0) {
    faiss_Index_free(pReal);
    return SQLITE_NOMEM;
  }
  memset(p, 0, sizeof(*p));
  p->iStamp = next_stamp();
  p->nDim = nDim;
  p->eMetric = eMetric;
  p->zDesc = sqlite3_mprintf("%s", zDesc);
  vs_i64map_init(&p->live);
  if (faiss_Index_is_trained(pReal)) {
    p->pFaiss = (VsFaissIndex *)pReal;
    p->bExact = faiss_IndexFlat_cast(pReal) != 0;
  } else {
    p->nTrainMin = vs_faiss_train_minimum((VsFaissIndex *)pReal);
    p->pShape = (VsFaissIndex *)pReal;
    FaissIndex *pFlat = 0;
    rc = factory(nDim, eMetric, "Flat", &pFlat, pzErr);
    p->pFaiss = (VsFaissIndex *)pFlat;
    p->bStandIn = 1;
    p->bExact = 1;
  }
  if (rc == SQLITE_OK && p->zDesc == 0) rc = SQLITE_NOMEM;
  if (rc != SQLITE_OK) {
    vs_index_free(p);
    return rc;
  }
  *ppIdx = p;
  return SQLITE_OK;
}

void vs_index_free(VsIndex *p) {
  if (p == 0) return;
  if (p->pFaiss) faiss_Index_free(as_faiss(p->pFaiss));
  if (p->pShape) faiss_Index_free(as_faiss(p->pShape));
  if (p->pDelta) faiss_Index_free(as_faiss(p->pDelta));
  sqlite3_free(p->zDesc);
  sqlite3_free(p->aRowid);
  vs_i64map_clear(&p->live);
  sqlite3_free(p);
}

i64 vs_index_count(const VsIndex *p) { return p->nLabel - p->nTomb; }

void vs_index_remove(VsIndex *p, i64 iRowid) {
  i64 iLabel;
  if (vs_i64map_get(&p->live, iRowid, &iLabel)) {
    p->aRowid[iLabel] = VS_TOMBSTONE;
    p->nTomb++;
    p->iStamp = next_stamp();
    vs_i64map_remove(&p->live, iRowid);
  }
}

/* Vectors as the Faiss index wants them: a normalised copy for cosine, else aVec itself. */
static const float *index_input(const VsIndex *p, i64 n, const float *aVec, float **paCopy) {
  *paCopy = 0;
  if (p->eMetric != VS_METRIC_COSINE) return aVec;
  float *aCopy = sqlite3_malloc64((sqlite3_uint64)n * p->nDim * sizeof(float));
  if (aCopy == 0) return 0;
  memcpy(aCopy, aVec, (size_t)n * p->nDim * sizeof(float));
  for (i64 i = 0; i < n; i++) vs_normalize(aCopy + i * p->nDim, p->nDim);
  *paCopy = aCopy;
  return aCopy;
}

int vs_index_reserve(VsIndex *p, i64 nMore) {
  if (nMore <= 0) return SQLITE_OK;
  if (p->nLabel + nMore > p->nAlloc) {
    i64 *aNew = sqlite3_realloc64(p->aRowid, (sqlite3_uint64)(p->nLabel + nMore) * sizeof(i64));
    if (aNew == 0) return SQLITE_NOMEM;
    p->aRowid = aNew;
    p->nAlloc = p->nLabel + nMore;
  }
  int rc = vs_i64map_reserve(&p->live, p->live.nUsed + nMore);
  if (rc == SQLITE_OK) vs_faiss_reserve(p->pFaiss, nMore);
  return rc;
}

int vs_index_add(VsIndex *p, i64 n, const i64 *aRowid, const float *aVec, char **pzErr) {
  if (n <= 0) return SQLITE_OK;
  if (p->nLabel + n > p->nAlloc) {
    i64 nNew = p->nAlloc ? p->nAlloc * 2 : 1024;
    while (nNew < p->nLabel + n) nNew *= 2;
    i64 *aNew = sqlite3_realloc64(p->aRowid, (sqlite3_uint64)nNew * sizeof(i64));
    if (aNew == 0) return SQLITE_NOMEM;
    p->aRowid = aNew;
    p->nAlloc = nNew;
  }
  float *aCopy = 0;
  const float *aIn = index_input(p, n, aVec, &aCopy);
  if (aIn == 0) return SQLITE_NOMEM;
  /* Few vectors on a graph go to its exact delta (see the top of this file); many, with an empty delta, straight
  ** into the graph, which takes a batch for about the price of one. */
  i64 nDelta = p->nLabel - p->nMain;
  int bDelta = !p->bStandIn && (nDelta > 0 || n < VS_DELTA_MAX) && vs_faiss_is_graph_over_flat(p->pFaiss);
  int rc = SQLITE_OK;
  if (bDelta && p->pDelta == 0) {
    FaissIndexFlat *pFlat = 0;
    if (faiss_IndexFlat_new_with(&pFlat, p->nDim, faiss_metric(p->eMetric)) != 0 || pFlat == 0) rc = SQLITE_NOMEM;
    p->pDelta = (VsFaissIndex *)pFlat;
  }
  if (rc == SQLITE_OK) {
    vs_faiss_threads(bDelta ? 1 : 0);
    if (faiss_Index_add(as_faiss(bDelta ? p->pDelta : p->pFaiss), n, aIn) != 0) {
      faiss_error(pzErr, "adding vectors to the Faiss index failed");
      rc = SQLITE_ERROR;
    }
  }
  sqlite3_free(aCopy);
  if (rc != SQLITE_OK) return rc;
  if (!bDelta) p->nMain += n;
  for (i64 i = 0; i < n; i++) {
    vs_index_remove(p, aRowid[i]);
    p->aRowid[p->nLabel] = aRowid[i];
    if (vs_i64map_put(&p->live, aRowid[i], p->nLabel) != SQLITE_OK) return SQLITE_NOMEM;
    p->nLabel++;
  }
  p->iStamp = next_stamp();
  if (p->nLabel - p->nMain >= VS_DELTA_MAX) return vs_index_fold(p, pzErr);
  return SQLITE_OK;
}

int vs_index_fold(VsIndex *p, char **pzErr) {
  i64 nDelta = p->nLabel - p->nMain;
  if (nDelta <= 0 || p->pDelta == 0) return SQLITE_OK;
  float *aXb = 0;
  size_t nXb = 0;
  faiss_IndexFlat_xb((FaissIndexFlat *)p->pDelta, &aXb, &nXb);
  if (aXb == 0 || nXb != (size_t)nDelta * (size_t)p->nDim) {
    vs_error(pzErr, "the exact delta of the index holds %lld floats, expected %lld", (long long)nXb,
             (long long)nDelta * p->nDim);
    return SQLITE_ERROR;
  }
  vs_faiss_threads(0);
  /* The vectors are already the index's input (normalised for cosine). */
  if (faiss_Index_add(as_faiss(p->pFaiss), nDelta, aXb) != 0) {
    faiss_error(pzErr, "adding vectors to the Faiss index failed");
    return SQLITE_ERROR;
  }
  faiss_Index_reset(as_faiss(p->pDelta));
  p->nMain = p->nLabel;
  return SQLITE_OK;
}

int vs_index_train(VsIndex *p, i64 n, const float *aVec, char **pzErr) {
  if (!p->bStandIn || p->nLabel != 0) {
    vs_error(pzErr, "internal: training needs an empty untrained index");
    return SQLITE_ERROR;
  }
  FaissIndex *pReal = 0;
  int rc = factory(p->nDim, p->eMetric, p->zDesc, &pReal, pzErr);
  if (rc != SQLITE_OK) return rc;
  i64 nMin = vs_faiss_train_minimum((VsFaissIndex *)pReal);
  if (n < nMin) {
    vs_error(pzErr, "index '%s' needs at least %lld vectors to train, the table has %lld", p->zDesc, nMin, n);
    faiss_Index_free(pReal);
    return SQLITE_ERROR;
  }
  float *aCopy = 0;
  const float *aIn = index_input(p, n, aVec, &aCopy);
  if (aIn == 0) {
    faiss_Index_free(pReal);
    return SQLITE_NOMEM;
  }
  vs_faiss_threads(0);
  if (faiss_Index_train(pReal, n, aIn) != 0) {
    faiss_error(pzErr, "training the Faiss index failed");
    rc = SQLITE_ERROR;
  }
  sqlite3_free(aCopy);
  if (rc != SQLITE_OK) {
    faiss_Index_free(pReal);
    return rc;
  }
  faiss_Index_free(as_faiss(p->pFaiss));
  if (p->pShape) faiss_Index_free(as_faiss(p->pShape));
  p->pShape = 0;
  p->pFaiss = (VsFaissIndex *)pReal;
  p->bStandIn = 0;
  p->bExact = faiss_IndexFlat_cast(pReal) != 0;
  vs_faiss_enable_lookup(p->pFaiss);
  return SQLITE_OK;
}

i64 vs_index_train_minimum(const VsIndex *p) { return p->bStandIn ? p->nTrainMin : 0; }


/* Automatic training at commit: Faiss's k-means wants about 39 points per centroid, so a trainable index is
** trained once the table holds max(1000, 39 * minimum) vectors (IVF256: 9,984; PQ with 8 bits: 9,984). */
i64 vs_index_train_threshold(const VsIndex *p) {
  i64 nMin = vs_index_train_minimum(p);
  if (nMin == 0) return 0;
  return nMin * 39 > 1000 ? nMin * 39 : 1000;
}

int vs_index_check_params(VsIndex *p, const char *zParams, char **pzErr) {
  VsFaissIndex *pReal = p->bStandIn ? p->pShape : p->pFaiss;
  return pReal ? vs_faiss_check_params(pReal, zParams, pzErr) : SQLITE_OK;
}

int vs_index_apply_params(VsIndex *p, const char *zParams, char **pzErr) {
  if (p->bStandIn) return SQLITE_OK;
  return vs_faiss_apply_params(p->pFaiss, zParams, pzErr);
}

typedef struct KeepCtx {
  const VsIndex *p;
  int (*xKeep)(void *, i64);
  void *pCtx;
  const uint64_t *aBit; /* labels that may be candidates, or NULL */
  i64 iBase;            /* the label of the searched Faiss index's position 0 (nMain for the delta) */
} KeepCtx;

/* Selector callback: a label is a candidate when its bit is set (when there are bits: they leave tombstones out),
** it is live and the caller's filter keeps its rowid. */
static int keep_label(void *pArg, i64 iPos) {
  KeepCtx *pK = (KeepCtx *)pArg;
  if (iPos < 0) return 0;
  i64 iLabel = iPos + pK->iBase;
  if (iLabel >= pK->p->nLabel) return 0;
  if (pK->aBit) {
    if (!((pK->aBit[iLabel >> 6] >> (iLabel & 63)) & 1)) return 0;
    if (pK->xKeep == 0) return 1;
  }
  i64 iRowid = pK->p->aRowid[iLabel];
  if (iRowid == VS_TOMBSTONE) return 0;
  return pK->xKeep == 0 || pK->xKeep(pK->pCtx, iRowid);
}

static float spec_distance(VsMetric eMetric, float rFaiss) {
  switch (eMetric) {
    case VS_METRIC_L2:
      return rFaiss;
    case VS_METRIC_IP:
      return -rFaiss;
    default:
      return 1.0f - rFaiss;
  }
}

/* Searches one Faiss index (the graph or the delta) for the k nearest of its positions the selector keeps,
** appending (SPEC distance, label) to aDist / aLabel from *pn on. */
static int search_one(VsIndex *p, VsFaissIndex *pIndex, const float *aIn, i64 k, const char *zParams,
                      KeepCtx *pKeep, int bSelect, float *aRawDist, i64 *aPos, float *aDist, i64 *aLabel, i64 *pn,
                      char **pzErr) {
  VsFaissSearch req = {aIn, k, zParams, bSelect ? keep_label : 0, pKeep, aRawDist, aPos};
  int rc = vs_faiss_search(pIndex, &req, pzErr);
  for (i64 i = 0; rc == SQLITE_OK && i < k; i++) {
    if (aPos[i] < 0 || !keep_label(pKeep, aPos[i])) continue;
    aDist[*pn] = spec_distance(p->eMetric, aRawDist[i]);
    aLabel[*pn] = aPos[i] + pKeep->iBase;
    (*pn)++;
  }
  return rc;
}

int vs_index_search(VsIndex *p, const float *aQuery, i64 k, const char *zParams, int (*xKeep)(void *, i64),
                    void *pCtx, const uint64_t *aBit, float *aDist, i64 *aRowid, i64 *pnOut, char **pzErr) {
  *pnOut = 0;
  if (k > p->nLabel) k = p->nLabel;
  if (k <= 0 || vs_index_count(p) == 0) return SQLITE_OK;
  i64 nDelta = p->nLabel - p->nMain;
  i64 kMain = k < p->nMain ? k : p->nMain;
  i64 kDelta = k < nDelta ? k : nDelta;
  float *aCopy = 0;
  const float *aIn = index_input(p, 1, aQuery, &aCopy);
  if (aIn == 0) return SQLITE_NOMEM;
  float *aRawDist = sqlite3_malloc64((sqlite3_uint64)k * sizeof(float));
  i64 *aPos = sqlite3_malloc64((sqlite3_uint64)k * sizeof(i64));
  float *aHitDist = sqlite3_malloc64((sqlite3_uint64)(kMain + kDelta) * sizeof(float));
  i64 *aHitLabel = sqlite3_malloc64((sqlite3_uint64)(kMain + kDelta) * sizeof(i64));
  int rc = (aRawDist && aPos && aHitDist && aHitLabel) ? SQLITE_OK : SQLITE_NOMEM;
  /* The exact stand-in takes no parameters, but they must still be valid for the index it stands in for. */
  if (rc == SQLITE_OK && p->bStandIn && p->pShape && zParams) rc = vs_faiss_check_params(p->pShape, zParams, pzErr);
  /* Parameters are checked on the graph even when all its vectors wait in the delta. */
  if (rc == SQLITE_OK && !p->bStandIn && kMain == 0 && zParams) rc = vs_faiss_check_params(p->pFaiss, zParams, pzErr);
  int bSelect = xKeep != 0 || p->nTomb > 0 || aBit != 0;
  i64 nMainHit = 0, nHit = 0;
  vs_faiss_threads(1);
  if (rc == SQLITE_OK && kMain > 0) {
    KeepCtx keep = {p, xKeep, pCtx, aBit, 0};
    rc = search_one(p, p->pFaiss, aIn, kMain, p->bStandIn ? 0 : zParams, &keep, bSelect, aRawDist, aPos, aHitDist,
                    aHitLabel, &nHit, pzErr);
    nMainHit = nHit;
  }
  if (rc == SQLITE_OK && kDelta > 0) {
    KeepCtx keep = {p, xKeep, pCtx, aBit, p->nMain};
    rc = search_one(p, p->pDelta, aIn, kDelta, 0, &keep, bSelect, aRawDist, aPos, aHitDist, aHitLabel, &nHit, pzErr);
  }
  if (rc == SQLITE_OK) {
    /* Both lists come nearest first: merge them, the k nearest. */
    i64 i = 0, j = nMainHit, n = 0;
    while (n < k && (i < nMainHit || j < nHit)) {
      int bMain = j >= nHit || (i < nMainHit && aHitDist[i] <= aHitDist[j]);
      i64 iHit = bMain ? i++ : j++;
      aDist[n] = aHitDist[iHit];
      aRowid[n] = p->aRowid[aHitLabel[iHit]];
      n++;
    }
    *pnOut = n;
  }
  sqlite3_free(aCopy);
  sqlite3_free(aRawDist);
  sqlite3_free(aPos);
  sqlite3_free(aHitDist);
  sqlite3_free(aHitLabel);
  return rc;
}

int vs_index_keeps_vectors(VsIndex *p) { return vs_faiss_flat_distances(p->pFaiss, 0, 0, 0, 0); }

int vs_index_exact_distances(VsIndex *p, const float *aQuery, i64 n, const i64 *aRowid, float *aDist) {
  if (n <= 0) return SQLITE_OK;
  float *aCopy = 0;
  const float *aIn = index_input(p, 1, aQuery, &aCopy);
  i64 *aLabel = sqlite3_malloc64((sqlite3_uint64)n * sizeof(i64));
  float *aRaw = sqlite3_malloc64((sqlite3_uint64)n * sizeof(float));
  int rc = (aIn && aLabel && aRaw) ? SQLITE_OK : SQLITE_NOMEM;
  i64 nLive = 0;
  for (i64 i = 0; rc == SQLITE_OK && i < n; i++) {
    if (i + 8 < n) vs_i64map_prefetch(&p->live, aRowid[i + 8]);
    if (vs_i64map_get(&p->live, aRowid[i], &aLabel[nLive])) {
      aDist[i] = 0.0f; /* filled below, in order */
      nLive++;
    } else {
      aDist[i] = NAN;
    }
  }
  /* Labels in the delta are read from it (at their positions there), the rest from the index, in one call each
  ** on the labels sorted by where they live: the graph's first, then the delta's, order kept within each. */
  i64 nInMain = 0;
  for (i64 i = 0; i < nLive; i++) nInMain += aLabel[i] < p->nMain;
  if (rc == SQLITE_OK && nInMain < nLive) {
    i64 *aSorted = sqlite3_malloc64((sqlite3_uint64)nLive * sizeof(i64));
    if (aSorted == 0) rc = SQLITE_NOMEM;
    for (i64 i = 0, a = 0, b = nInMain; rc == SQLITE_OK && i < nLive; i++) {
      if (aLabel[i] < p->nMain) aSorted[a++] = aLabel[i];
      else aSorted[b++] = aLabel[i] - p->nMain;
    }
    if (rc == SQLITE_OK) {
      float *aRawSorted = sqlite3_malloc64((sqlite3_uint64)nLive * sizeof(float));
      if (aRawSorted == 0) rc = SQLITE_NOMEM;
      if (rc == SQLITE_OK && ((nInMain > 0 && !vs_faiss_flat_distances(p->pFaiss, aIn, aSorted, nInMain, aRawSorted)) ||
                              !vs_faiss_flat_distances(p->pDelta, aIn, aSorted + nInMain, nLive - nInMain,
                                                       aRawSorted + nInMain))) {
        rc = SQLITE_NOTFOUND;
      }
      for (i64 i = 0, a = 0, b = nInMain; rc == SQLITE_OK && i < nLive; i++) {
        aRaw[i] = aLabel[i] < p->nMain ? aRawSorted[a++] : aRawSorted[b++];
      }
      sqlite3_free(aRawSorted);
    }
    sqlite3_free(aSorted);
  } else if (rc == SQLITE_OK && !vs_faiss_flat_distances(p->pFaiss, aIn, aLabel, nLive, aRaw)) {
    rc = SQLITE_NOTFOUND;
  }
  for (i64 i = 0, j = 0; rc == SQLITE_OK && i < n; i++) {
    if (!isnan(aDist[i])) aDist[i] = spec_distance(p->eMetric, aRaw[j++]);
  }
  sqlite3_free(aCopy);
  sqlite3_free(aLabel);
  sqlite3_free(aRaw);
  return rc;
}

/* Snapshot header, followed by nLabel int64 rowids, the description bytes, then the Faiss part: in version 2,
** vs_faiss_snapshot_write's section and Faiss's write_index of the rest; in version 1 (still read), Faiss's
** write_index of the whole index. */
typedef struct SnapshotHeader {
  uint32_t magic;
  uint32_t version;
  int32_t nDim;
  int32_t eMetric;
  int32_t bStandIn;
  int32_t nDesc;
  int64_t nLabel;
  int64_t nTomb;
} SnapshotHeader;

int vs_index_write(VsIndex *p, FILE *f, char **pzErr) {
  int rc = vs_index_fold(p, pzErr); /* a snapshot holds the graph only */
  if (rc != SQLITE_OK) return rc;
  SnapshotHeader h = {VS_SNAPSHOT_MAGIC, VS_SNAPSHOT_VERSION, p->nDim, (int32_t)p->eMetric, p->bStandIn,
                      (int32_t)strlen(p->zDesc), p->nLabel, p->nTomb};
  if (fwrite(&h, sizeof(h), 1, f) != 1 ||
      (p->nLabel > 0 && fwrite(p->aRowid, sizeof(i64), (size_t)p->nLabel, f) != (size_t)p->nLabel) ||
      fwrite(p->zDesc, 1, (size_t)h.nDesc, f) != (size_t)h.nDesc) {
    vs_error(pzErr, "writing the index snapshot failed");
    return SQLITE_ERROR;
  }
  return vs_faiss_snapshot_write(p->pFaiss, f, pzErr);
}

int vs_index_read(const VsSnapIn *pIn, i64 nByte, int nDim, VsMetric eMetric, VsIndex **ppIdx, char **pzErr) {
  SnapshotHeader h;
  *ppIdx = 0;
  if (pIn->xRead(pIn->pCtx, &h, sizeof(h)) != sizeof(h) || h.magic != VS_SNAPSHOT_MAGIC ||
      (h.version != VS_SNAPSHOT_VERSION && h.version != 1) || h.nDim != nDim || h.eMetric != (int32_t)eMetric ||
      h.nLabel < 0 || h.nTomb < 0 || h.nTomb > h.nLabel || h.nDesc <= 0 || h.nDesc > 4096 ||
      h.nLabel > (nByte - (i64)sizeof(h) - h.nDesc) / (i64)sizeof(i64)) {
    vs_error(pzErr, "the index snapshot header does not match the table (expected dim=%d metric=%s)", nDim,
             vs_metric_name(eMetric));
    return SQLITE_CORRUPT;
  }
  VsIndex *p = sqlite3_malloc(sizeof(*p));
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->iStamp = next_stamp();
  vs_i64map_init(&p->live);
  p->nDim = nDim;
  p->eMetric = eMetric;
  p->bStandIn = h.bStandIn != 0;
  p->nLabel = h.nLabel;
  p->nMain = h.nLabel;
  p->nTomb = 0;
  p->nAlloc = h.nLabel > 0 ? h.nLabel : 1;
  p->aRowid = sqlite3_malloc64((sqlite3_uint64)p->nAlloc * sizeof(i64));
  p->zDesc = sqlite3_malloc(h.nDesc + 1);
  int rc = (p->aRowid && p->zDesc) ? SQLITE_OK : SQLITE_NOMEM;
  size_t nRowidByte = (size_t)h.nLabel * sizeof(i64);
  if (rc == SQLITE_OK && (pIn->xRead(pIn->pCtx, p->aRowid, nRowidByte) != nRowidByte ||
                          pIn->xRead(pIn->pCtx, p->zDesc, (size_t)h.nDesc) != (size_t)h.nDesc)) {
    vs_error(pzErr, "the index snapshot is truncated");
    rc = SQLITE_CORRUPT;
  }
  if (rc == SQLITE_OK) {
    p->zDesc[h.nDesc] = 0;
    FaissIndex *pFaiss = 0;
    if (h.version == 1) {
      /* Faiss reads all of a version 1 snapshot's index: the whole snapshot is verified first. */
      VsFaissIndex *pRead = 0;
      rc = pIn->xSeal(pIn->pCtx, pzErr);
      if (rc == SQLITE_OK) rc = vs_faiss_read_index(pIn, &pRead, pzErr);
      pFaiss = (FaissIndex *)pRead;
    } else {
      VsFaissIndex *pRead = 0;
      i64 nAvail = nByte - (i64)sizeof(h) - h.nLabel * (i64)sizeof(i64) - h.nDesc;
      rc = vs_faiss_snapshot_read(pIn, nAvail, h.nLabel, &pRead, pzErr);
      pFaiss = (FaissIndex *)pRead;
    }
    if (rc == SQLITE_OK) {
      p->pFaiss = (VsFaissIndex *)pFaiss;
      p->bExact = faiss_IndexFlat_cast(pFaiss) != 0;
      if (faiss_Index_d(pFaiss) != nDim || faiss_Index_ntotal(pFaiss) != h.nLabel) {
        vs_error(pzErr, "the index snapshot holds %lld vectors of dim %d, expected %lld of dim %d",
                 (long long)faiss_Index_ntotal(pFaiss), faiss_Index_d(pFaiss), (long long)h.nLabel, nDim);
        rc = SQLITE_CORRUPT;
      }
      if (rc == SQLITE_OK) rc = vs_faiss_check_structure(p->pFaiss, pzErr);
      if (rc == SQLITE_OK) vs_faiss_enable_lookup(p->pFaiss);
    }
  }
  if (rc == SQLITE_OK) rc = vs_i64map_reserve(&p->live, h.nLabel - h.nTomb);
  for (i64 i = 0; rc == SQLITE_OK && i < p->nLabel; i++) {
    if (i + 8 < p->nLabel) vs_i64map_prefetch(&p->live, p->aRowid[i + 8]);
    if (p->aRowid[i] == VS_TOMBSTONE) {
      p->nTomb++;
    } else {
      i64 iOld;
      if (vs_i64map_get(&p->live, p->aRowid[i], &iOld)) {
        vs_error(pzErr, "the index snapshot maps rowid %lld twice", p->aRowid[i]);
        rc = SQLITE_CORRUPT;
      } else {
        rc = vs_i64map_put(&p->live, p->aRowid[i], i);
      }
    }
  }
  if (rc == SQLITE_OK && p->bStandIn) {
    char *zIgnored = 0;
    FaissIndex *pShape = 0;
    if (factory(nDim, eMetric, p->zDesc, &pShape, &zIgnored) == SQLITE_OK) {
      p->pShape = (VsFaissIndex *)pShape;
      p->nTrainMin = vs_faiss_train_minimum(p->pShape);
    }
    sqlite3_free(zIgnored);
  }
  if (rc == SQLITE_OK && p->nTomb != h.nTomb) {
    vs_error(pzErr, "the index snapshot counts %lld tombstones but holds %lld", (long long)h.nTomb, p->nTomb);
    rc = SQLITE_CORRUPT;
  }
  if (rc != SQLITE_OK) {
    vs_index_free(p);
    return rc;
  }
  /* Faiss's reader sizes a version 1 snapshot's arrays exactly: leave room to grow (this copies them once). */
  if (h.version == 1) vs_faiss_reserve(p->pFaiss, p->nLabel / 8 + 1024);
  *ppIdx = p;
  return SQLITE_OK;
}
