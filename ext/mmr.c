/*
** mmr.c: maximal marginal relevance, LangChain's algorithm (langchain_core.vectorstores.utils
** maximal_marginal_relevance): similarities are cosine similarities (a zero vector's is 0); the first pick is the
** candidate most similar to the query; each next pick maximises
**     lambda * sim(query, c) - (1 - lambda) * max over picked p of sim(c, p)
** with ties going to the earlier candidate. The similarity products are cblas_sgemv calls.
*/
#include "vecstore_int.h"

#include <cblas.h>
#include <math.h>

/* Copies n rows of nDim floats into a new array with each row scaled to unit norm (zero rows stay zero). */
static float *normalized_rows(const float *a, int n, int nDim) {
  float *aOut = sqlite3_malloc64((sqlite3_uint64)n * nDim * sizeof(float));
  if (aOut == 0) return 0;
  memcpy(aOut, a, (size_t)n * nDim * sizeof(float));
  for (int i = 0; i < n; i++) vs_normalize(aOut + (size_t)i * nDim, nDim);
  return aOut;
}

int vs_mmr_select(const float *aQuery, const float *aVec, int n, int nDim, int k, double rLambda, int *aPick,
                  int *pnPick) {
  *pnPick = 0;
  if (k > n) k = n;
  if (k <= 0) return SQLITE_OK;
  float *aUnit = normalized_rows(aVec, n, nDim);
  float *aQueryUnit = normalized_rows(aQuery, 1, nDim);
  float *aSimQuery = sqlite3_malloc64((sqlite3_uint64)n * sizeof(float));
  float *aSimPick = sqlite3_malloc64((sqlite3_uint64)n * sizeof(float));
  float *aMaxSim = sqlite3_malloc64((sqlite3_uint64)n * sizeof(float));
  unsigned char *aTaken = sqlite3_malloc64((sqlite3_uint64)n);
  int rc = (aUnit && aQueryUnit && aSimQuery && aSimPick && aMaxSim && aTaken) ? SQLITE_OK : SQLITE_NOMEM;
  if (rc == SQLITE_OK) {
    memset(aTaken, 0, (size_t)n);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, n, nDim, 1.0f, aUnit, nDim, aQueryUnit, 1, 0.0f, aSimQuery, 1);
    int iBest = 0;
    for (int i = 1; i < n; i++) {
      if (aSimQuery[i] > aSimQuery[iBest]) iBest = i;
    }
    for (int i = 0; i < n; i++) aMaxSim[i] = -INFINITY;
    for (;;) {
      aPick[(*pnPick)++] = iBest;
      aTaken[iBest] = 1;
      if (*pnPick >= k) break;
      cblas_sgemv(CblasRowMajor, CblasNoTrans, n, nDim, 1.0f, aUnit, nDim, aUnit + (size_t)iBest * nDim, 1, 0.0f,
                  aSimPick, 1);
      double rBestScore = -INFINITY;
      iBest = -1;
      for (int i = 0; i < n; i++) {
        if (aSimPick[i] > aMaxSim[i]) aMaxSim[i] = aSimPick[i];
        if (aTaken[i]) continue;
        double rScore = rLambda * aSimQuery[i] - (1.0 - rLambda) * aMaxSim[i];
        if (iBest < 0 || rScore > rBestScore) {
          rBestScore = rScore;
          iBest = i;
        }
      }
    }
  }
  sqlite3_free(aUnit);
  sqlite3_free(aQueryUnit);
  sqlite3_free(aSimQuery);
  sqlite3_free(aSimPick);
  sqlite3_free(aMaxSim);
  sqlite3_free(aTaken);
  return rc;
}
