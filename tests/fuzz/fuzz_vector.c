/*
** fuzz_vector: vector parsing (JSON array text and float32 BLOBs) through the SQL vector functions
** vecstore_vector, vecstore_to_json, vecstore_normalize and vecstore_distance.
**
** Input: byte 0 chooses the form and the functions, byte 1 where a second operand starts (for distance), the
** rest is the value. Invariants checked besides the sanitizers:
**   - errors are SQLITE_ERROR-class with a "vecstore: " message (never CORRUPT/MISUSE/INTERNAL/NOMEM);
**   - an accepted vector is a non-empty BLOB of 4*dim bytes of finite floats, dim <= 65536;
**   - vecstore_to_json round-trips bit for bit: vecstore_vector(vecstore_to_json(v)) = v;
**   - accepted JSON text is valid JSON (SQLite's json_valid) with dim elements;
**   - vecstore_normalize keeps the dimension and gives norm 1 (or the zero vector);
**   - vecstore_distance(a, a): 0 for l2, -|a|^2 for ip (as a float32, so -Infinity beyond its range), about 0
**     for cosine (1 for the zero vector); cosine distances lie in [0, 2], l2 distances are >= 0.
*/
#include "fuzz_common.h"

#include <math.h>

static sqlite3 *g_db;
static sqlite3_stmt *g_pVector, *g_pToJson, *g_pNormalize, *g_pDist2, *g_pDist3, *g_pJsonCheck;

static void init(void) {
  if (g_db) return;
  g_db = fz_open(":memory:");
  g_pVector = fz_prepare(g_db, "SELECT vecstore_vector(?1)");
  g_pToJson = fz_prepare(g_db, "SELECT vecstore_to_json(?1)");
  g_pNormalize = fz_prepare(g_db, "SELECT vecstore_normalize(?1)");
  g_pDist2 = fz_prepare(g_db, "SELECT vecstore_distance(?1, ?2)");
  g_pDist3 = fz_prepare(g_db, "SELECT vecstore_distance(?1, ?2, ?3)");
  g_pJsonCheck = fz_prepare(g_db, "SELECT json_valid(?1), CASE WHEN json_valid(?1) THEN json_array_length(?1) END");
}

static void bind_value(sqlite3_stmt *pStmt, int i, const uint8_t *p, size_t n, int bBlob) {
  if (bBlob) {
    sqlite3_bind_blob64(pStmt, i, n ? p : (const void *)"", n, SQLITE_TRANSIENT);
  } else {
    sqlite3_bind_text64(pStmt, i, n ? (const char *)p : "", n, SQLITE_TRANSIENT, SQLITE_UTF8);
  }
}

/* Runs a one-value statement; on success copies the BLOB result into *pa (malloc'd) and returns 1. */
static int run_blob(sqlite3_stmt *pStmt, const char *zWhat, float **pa, int *pnDim) {
  int rc = sqlite3_step(pStmt);
  *pa = 0;
  *pnDim = 0;
  if (rc != SQLITE_ROW) {
    fz_check_function_error(g_db, sqlite3_reset(pStmt), zWhat);
    sqlite3_clear_bindings(pStmt);
    return 0;
  }
  if (sqlite3_column_type(pStmt, 0) != SQLITE_BLOB) fz_fail("%s: result is not a BLOB", zWhat);
  int nByte = sqlite3_column_bytes(pStmt, 0);
  if (nByte <= 0 || nByte % 4 != 0 || nByte / 4 > 65536) fz_fail("%s: result BLOB of %d bytes", zWhat, nByte);
  float *a = malloc((size_t)nByte);
  if (a == 0) abort();
  memcpy(a, sqlite3_column_blob(pStmt, 0), (size_t)nByte);
  for (int i = 0; i < nByte / 4; i++) {
    if (!isfinite(a[i])) fz_fail("%s: non-finite value at index %d", zWhat, i);
  }
  sqlite3_reset(pStmt);
  sqlite3_clear_bindings(pStmt);
  *pa = a;
  *pnDim = nByte / 4;
  return 1;
}

/* vecstore_to_json(a) then vecstore_vector() of that text must give a back bit for bit. */
static void check_round_trip(const float *a, int nDim) {
  sqlite3_bind_blob64(g_pToJson, 1, a, (sqlite3_uint64)nDim * 4, SQLITE_STATIC);
  if (sqlite3_step(g_pToJson) != SQLITE_ROW) fz_fail("vecstore_to_json of a valid vector failed: %s", sqlite3_errmsg(g_db));
  const char *zJson = (const char *)sqlite3_column_text(g_pToJson, 0);
  int nJson = sqlite3_column_bytes(g_pToJson, 0);
  if (zJson == 0 || nJson < 3 || zJson[0] != '[' || zJson[nJson - 1] != ']') fz_fail("vecstore_to_json: bad text");
  sqlite3_bind_text64(g_pVector, 1, zJson, (sqlite3_uint64)nJson, SQLITE_TRANSIENT, SQLITE_UTF8);
  sqlite3_reset(g_pToJson);
  sqlite3_clear_bindings(g_pToJson);
  float *b;
  int nB;
  if (!run_blob(g_pVector, "vecstore_vector(vecstore_to_json(v))", &b, &nB)) fz_fail("to_json output rejected");
  if (nB != nDim || memcmp(a, b, (size_t)nDim * 4) != 0) fz_fail("vecstore_to_json does not round-trip");
  free(b);
}

/* Accepted JSON text must be valid JSON with nDim elements. */
static void check_json_agrees(const uint8_t *p, size_t n, int nDim) {
  sqlite3_bind_text64(g_pJsonCheck, 1, (const char *)p, n, SQLITE_TRANSIENT, SQLITE_UTF8);
  if (sqlite3_step(g_pJsonCheck) != SQLITE_ROW) fz_fail("json_valid failed: %s", sqlite3_errmsg(g_db));
  int bValid = sqlite3_column_int(g_pJsonCheck, 0);
  int nLen = sqlite3_column_int(g_pJsonCheck, 1);
  sqlite3_reset(g_pJsonCheck);
  sqlite3_clear_bindings(g_pJsonCheck);
  if (!bValid) fz_fail("vecstore_vector accepted text that json_valid() rejects");
  if (nLen != nDim) fz_fail("vecstore_vector read %d values, json_array_length() says %d", nDim, nLen);
}

static void check_normalize(const uint8_t *p, size_t n, int bBlob, const float *a, int nDim) {
  bind_value(g_pNormalize, 1, p, n, bBlob);
  float *b;
  int nB;
  if (!run_blob(g_pNormalize, "vecstore_normalize", &b, &nB)) fz_fail("vecstore_normalize rejected a valid vector");
  if (nB != nDim) fz_fail("vecstore_normalize changed the dimension %d -> %d", nDim, nB);
  double rIn = 0.0, rOut = 0.0;
  for (int i = 0; i < nDim; i++) {
    rIn += (double)a[i] * a[i];
    rOut += (double)b[i] * b[i];
  }
  if (rIn == 0.0 ? rOut != 0.0 : fabs(rOut - 1.0) > 1e-4) fz_fail("vecstore_normalize: squared norm %g", rOut);
  free(b);
}

/* Returns the distance, or NAN when the call failed (an error that was checked). */
static double run_distance(const uint8_t *pA, size_t nA, const uint8_t *pB, size_t nB, int bBlob, int eMetric) {
  static const char *const azMetric[] = {0, "l2", "ip", "cosine"};
  sqlite3_stmt *pStmt = eMetric ? g_pDist3 : g_pDist2;
  bind_value(pStmt, 1, pA, nA, bBlob);
  bind_value(pStmt, 2, pB, nB, bBlob);
  if (eMetric) sqlite3_bind_text(pStmt, 3, azMetric[eMetric], -1, SQLITE_STATIC);
  double r = NAN;
  if (sqlite3_step(pStmt) == SQLITE_ROW) {
    if (sqlite3_column_type(pStmt, 0) != SQLITE_FLOAT) fz_fail("vecstore_distance: not a REAL");
    r = sqlite3_column_double(pStmt, 0);
    if (isnan(r)) fz_fail("vecstore_distance returned NaN");
    sqlite3_reset(pStmt);
  } else {
    fz_check_function_error(g_db, sqlite3_reset(pStmt), "vecstore_distance");
  }
  sqlite3_clear_bindings(pStmt);
  return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *pData, size_t nData) {
  init();
  if (nData < 2) return 0;
  unsigned eMode = pData[0], iSplit = pData[1];
  int bBlob = eMode & 1;
  int eMetric = (eMode >> 1) & 3; /* 0: the 2-argument form (l2) */
  const uint8_t *p = pData + 2;
  size_t n = nData - 2;

  bind_value(g_pVector, 1, p, n, bBlob);
  float *a;
  int nDim;
  if (run_blob(g_pVector, "vecstore_vector", &a, &nDim)) {
    if (bBlob && (size_t)nDim * 4 != n) fz_fail("BLOB of %zu bytes gave %d dimensions", n, nDim);
    check_round_trip(a, nDim);
    if (!bBlob) check_json_agrees(p, n, nDim);
    if (eMode & 8) check_normalize(p, n, bBlob, a, nDim);
    /* The distance of a vector to itself. */
    double r = run_distance(p, n, p, n, bBlob, eMetric);
    if (isnan(r)) fz_fail("vecstore_distance(a, a) failed for a valid vector");
    double rNorm2 = 0.0;
    for (int i = 0; i < nDim; i++) rNorm2 += (double)a[i] * a[i];
    if (eMetric <= 1 && r != 0.0) fz_fail("l2 distance of a vector to itself is %g", r);
    /* ip: -|a|^2 as a float (so -Infinity beyond float range). */
    double rWant = (double)(float)-rNorm2;
    if (eMetric == 2 && !(r == rWant || fabs(r - rWant) <= 1e-6 * (1.0 + fabs(rWant)))) {
      fz_fail("ip distance to itself %g, -|a|^2 %g", r, rWant);
    }
    if (eMetric == 3 && (rNorm2 == 0.0 ? r != 1.0 : (r < 0.0 || r > 1e-5))) fz_fail("cosine distance to itself %g", r);
    free(a);
  }
  /* Two different operands: a prefix and the rest (cut at a multiple of 4 bytes for BLOBs). */
  if (eMode & 16) {
    size_t nA = n * iSplit / 256;
    if (bBlob) nA -= nA % 4;
    double r = run_distance(p, nA, p + nA, n - nA, bBlob, eMetric);
    if (eMetric == 3 && !isnan(r) && (r < 0.0 || r > 2.0)) fz_fail("cosine distance %g outside [0, 2]", r);
    if (eMetric <= 1 && !isnan(r) && r < 0.0) fz_fail("negative l2 distance %g", r);
  }
  return 0;
}
