/*
** vecstore: vector values and the vector SQL functions.
**
** A vector is a float32 array of 1..VS_MAX_DIM finite values. Its SQL forms are a BLOB of 4*dim bytes
** (float32 little-endian, the sqlite-vec format) and JSON array text such as '[1, 2.5, -3e2]'. Where the dimension
** is known, a BLOB of 8*dim bytes is refused as probably float64 (numpy's default), saying how to convert it.
**
** vecstore_to_json() prints each value with the fewest significant digits (1 to 9) that read back as the
** same float32, never with a trailing ".0": 1.0f prints as 1, 0.1f as 0.1, -3e2f as -300, 1e20f as 1e+20
** (see format_float). The array is compact like SQLite's json(): "[1,2.5,-300]". Number conversions are
** locale-independent.
*/
#include "vecstore_int.h"

#include <ctype.h>
#include <locale.h>
#include <math.h>

/* Longest text of a value shown in an error message. */
#define VS_SNIPPET 24

/**************************************************************************************************
** Byte order. Vectors live in memory as host floats and in BLOBs as little-endian float32.
*/

/* Decodes n little-endian float32 values from p. */
static void vec_from_le(const unsigned char *p, float *a, int n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy(a, p, (size_t)n * 4);
#else
  for (int i = 0; i < n; i++) {
    uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                 (uint32_t)p[4 * i + 3] << 24;
    memcpy(&a[i], &u, 4);
  }
#endif
}

/* Rewrites a[0..n) in place as little-endian float32 bytes (a no-op on little-endian hosts). */
static void vec_to_le(float *a, int n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  (void)a;
  (void)n;
#else
  for (int i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &a[i], 4);
    unsigned char b[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                          (unsigned char)(u >> 24)};
    memcpy(&a[i], b, 4);
  }
#endif
}

/**************************************************************************************************
** Locale-independent number conversion.
*/

/* Converts the JSON number z[0..n) (already validated) to the nearest float, as strtof would in the C
** locale (overflow gives +-HUGE_VALF). Returns SQLITE_NOMEM if a long number cannot be copied. */
char *vs_number_for_strtod(const char *z, i64 n, char *aBuf, size_t nBuf) {
  const char *zDot = localeconv()->decimal_point;
  int bSwap = zDot != 0 && zDot[0] != 0 && strcmp(zDot, ".") != 0; /* e.g. "," in a German locale */
  size_t nDot = bSwap ? strlen(zDot) : 1;
  size_t nNeed = (size_t)n + nDot + 1; /* a JSON number has at most one '.' */
  char *zBuf = nNeed <= nBuf ? aBuf : sqlite3_malloc64(nNeed);
  if (zBuf == 0) return 0;
  size_t j = 0;
  for (i64 i = 0; i < n; i++) {
    if (z[i] == '.' && bSwap) {
      memcpy(&zBuf[j], zDot, nDot);
      j += nDot;
    } else {
      zBuf[j++] = z[i];
    }
  }
  zBuf[j] = 0;
  return zBuf;
}

static int number_to_float(const char *z, int n, float *pr) {
  char aBuf[64];
  char *zBuf = vs_number_for_strtod(z, n, aBuf, sizeof(aBuf));
  if (zBuf == 0) return SQLITE_NOMEM;
  *pr = strtof(zBuf, 0);
  if (zBuf != aBuf) sqlite3_free(zBuf);
  return SQLITE_OK;
}

/* Length of the JSON number (RFC 8259 grammar) at the start of z[0..n), or 0 if z[0..n) as a whole
** is not exactly one JSON number. */
static int json_number_len(const char *z, int n) {
  int i = 0;
  if (i < n && z[i] == '-') i++;
  if (i < n && z[i] == '0') {
    i++;
  } else if (i < n && z[i] >= '1' && z[i] <= '9') {
    while (i < n && isdigit((unsigned char)z[i])) i++;
  } else {
    return 0;
  }
  if (i < n && z[i] == '.') {
    i++;
    if (i >= n || !isdigit((unsigned char)z[i])) return 0;
    while (i < n && isdigit((unsigned char)z[i])) i++;
  }
  if (i < n && (z[i] == 'e' || z[i] == 'E')) {
    i++;
    if (i < n && (z[i] == '+' || z[i] == '-')) i++;
    if (i >= n || !isdigit((unsigned char)z[i])) return 0;
    while (i < n && isdigit((unsigned char)z[i])) i++;
  }
  return i == n ? n : 0;
}

/**************************************************************************************************
** Parsing.
*/

/* Describes what starts at z[0..n) for an error message: "end of text" or the first few characters
** quoted. sqlite3_malloc'd (NULL on OOM). */
static char *describe_at(const char *z, int n) {
  if (n <= 0) return sqlite3_mprintf("end of text");
  int m = n < VS_SNIPPET ? n : VS_SNIPPET;
  while (m < n && m > 0 && ((unsigned char)z[m] & 0xC0) == 0x80) m--; /* keep UTF-8 characters whole */
  return sqlite3_mprintf("'%.*s%s'", m, z, m < n ? "..." : "");
}

static int is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int is_word_char(char c) { return isalnum((unsigned char)c) || c == '.' || c == '+' || c == '-'; }

/* Reports a JSON error at offset i of z[0..n):
** "<zWhat> is not a valid JSON array of numbers: <zProblem> at offset i, received <what is there>". */
static int json_error(char **pzErr, const char *zWhat, const char *zProblem, const char *z, int n, int i) {
  char *zGot = describe_at(z + i, n - i);
  vs_error(pzErr, "%s is not a valid JSON array of numbers: %s at offset %d, received %s", zWhat, zProblem, i,
           zGot ? zGot : "?");
  sqlite3_free(zGot);
  return SQLITE_ERROR;
}

/* Parses JSON array text z[0..n) of numbers into a new sqlite3_malloc'd array. Errors as
** vs_vector_parse. */
static int parse_json(const char *z, int n, const char *zWhat, float **paVec, int *pnDim, char **pzErr) {
  float *a = 0;
  int nDim = 0, nAlloc = 0;
  int i = 0;
  while (i < n && is_json_space(z[i])) i++;
  if (i >= n || z[i] != '[') return json_error(pzErr, zWhat, "expected '['", z, n, i);
  i++;
  while (i < n && is_json_space(z[i])) i++;
  if (i < n && z[i] == ']') {
    vs_error(pzErr, "%s is empty (expected at least 1 dimension, received [])", zWhat);
    return SQLITE_ERROR;
  }
  for (;;) {
    /* One element, then ',' or ']'. */
    while (i < n && is_json_space(z[i])) i++;
    int nTok = 0;
    while (i + nTok < n && is_word_char(z[i + nTok])) nTok++;
    const char *zTok = z + i;
    if (nTok == 0) {
      const char *zProblem = "expected a number";
      if (i < n && z[i] == '[') zProblem = "expected a number, not a nested array,";
      if (i < n && z[i] == '{') zProblem = "expected a number, not an object,";
      if (i < n && z[i] == '"') zProblem = "expected a number, not a string,";
      sqlite3_free(a);
      return json_error(pzErr, zWhat, zProblem, z, n, i);
    }
    if (json_number_len(zTok, nTok) == 0) {
      int bNonFinite = 0;
      static const char *const azNonFinite[] = {"nan", "-nan", "+nan", "inf", "-inf", "+inf",
                                                "infinity", "-infinity", "+infinity"};
      for (size_t k = 0; k < sizeof(azNonFinite) / sizeof(azNonFinite[0]); k++) {
        if ((int)strlen(azNonFinite[k]) == nTok && sqlite3_strnicmp(zTok, azNonFinite[k], nTok) == 0) {
          bNonFinite = 1;
        }
      }
      sqlite3_free(a);
      if (bNonFinite) {
        vs_error(pzErr, "%s has a non-finite value at index %d (expected finite numbers, received %.*s)", zWhat,
                 nDim, nTok, zTok);
        return SQLITE_ERROR;
      }
      return json_error(pzErr, zWhat, "expected a number", z, n, i);
    }
    if (nDim >= VS_MAX_DIM) {
      sqlite3_free(a);
      vs_error(pzErr, "%s has more than %d dimensions (expected at most %d)", zWhat, VS_MAX_DIM, VS_MAX_DIM);
      return SQLITE_ERROR;
    }
    if (nDim >= nAlloc) {
      int nNew = nAlloc ? nAlloc * 2 : 16;
      if (nNew > VS_MAX_DIM) nNew = VS_MAX_DIM;
      float *aNew = sqlite3_realloc64(a, (sqlite3_uint64)nNew * sizeof(float));
      if (aNew == 0) {
        sqlite3_free(a);
        vs_error(pzErr, "out of memory parsing %s", zWhat);
        return SQLITE_NOMEM;
      }
      a = aNew;
      nAlloc = nNew;
    }
    float r;
    if (number_to_float(zTok, nTok, &r) != SQLITE_OK) {
      sqlite3_free(a);
      vs_error(pzErr, "out of memory parsing %s", zWhat);
      return SQLITE_NOMEM;
    }
    if (!isfinite(r)) {
      sqlite3_free(a);
      vs_error(pzErr,
               "%s has a value out of float32 range at index %d (expected finite float32 numbers, received %.*s)",
               zWhat, nDim, nTok > VS_SNIPPET ? VS_SNIPPET : nTok, zTok);
      return SQLITE_ERROR;
    }
    a[nDim++] = r;
    i += nTok;
    while (i < n && is_json_space(z[i])) i++;
    if (i < n && z[i] == ',') {
      i++;
      continue;
    }
    if (i < n && z[i] == ']') {
      i++;
      break;
    }
    sqlite3_free(a);
    return json_error(pzErr, zWhat, "expected ',' or ']'", z, n, i);
  }
  while (i < n && is_json_space(z[i])) i++;
  if (i < n) {
    sqlite3_free(a);
    return json_error(pzErr, zWhat, "unexpected characters after the closing ']'", z, n, i);
  }
  *paVec = a;
  *pnDim = nDim;
  return SQLITE_OK;
}

/* Explains a BLOB of 8 bytes per expected dimension: "<zWhat> BLOB has 32 bytes, which looks like 4 float64 values
** (8 bytes each): expected float32 little-endian, ...". zDimOf, if not NULL, says whose dimension nDim is. The text
** is sqlite3_malloc'd, without the "vecstore: " prefix (NULL on OOM). */
static char *float64_text(const char *zWhat, int nDim, const char *zDimOf) {
  return sqlite3_mprintf("%s BLOB has %lld bytes, which looks like %d float64 value%s (8 bytes each): expected float32 "
                         "little-endian, 4 bytes per value (%lld bytes for dim %d%s%s); convert with numpy's "
                         "v.astype(np.float32).tobytes(), or pass JSON text such as '[0.1, 0.2, 0.3]'",
                         zWhat, (i64)nDim * 8, nDim, nDim == 1 ? "" : "s", (i64)nDim * 4, nDim, zDimOf ? ", " : "",
                         zDimOf ? zDimOf : "");
}

/* Parses a float32 little-endian BLOB of nByte bytes; nExpect > 0 is the dimension it must have. Errors as
** vs_vector_parse; a BLOB of 8 * nExpect bytes is reported as probably float64 before its bytes are read as float32
** (where they may well make a NaN). */
static int parse_blob(const unsigned char *p, int nByte, int nExpect, const char *zWhat, float **paVec, int *pnDim,
                      char **pzErr) {
  if (nByte == 0) {
    vs_error(pzErr, "%s is empty (expected at least 1 dimension, received an empty BLOB)", zWhat);
    return SQLITE_ERROR;
  }
  if (nExpect > 0 && (i64)nByte == (i64)nExpect * 8) {
    char *zText = float64_text(zWhat, nExpect, 0);
    if (zText == 0) return SQLITE_NOMEM;
    vs_error(pzErr, "%s", zText);
    sqlite3_free(zText);
    return SQLITE_ERROR;
  }
  if (nByte % 4 != 0) {
    vs_error(pzErr, "%s BLOB has %d bytes (expected a multiple of 4: float32 little-endian values)", zWhat, nByte);
    return SQLITE_ERROR;
  }
  int nDim = nByte / 4;
  if (nDim > VS_MAX_DIM) {
    vs_error(pzErr, "%s has %d dimensions (expected at most %d)", zWhat, nDim, VS_MAX_DIM);
    return SQLITE_ERROR;
  }
  float *a = sqlite3_malloc64((sqlite3_uint64)nDim * sizeof(float));
  if (a == 0) {
    vs_error(pzErr, "out of memory parsing %s", zWhat);
    return SQLITE_NOMEM;
  }
  vec_from_le(p, a, nDim);
  for (int i = 0; i < nDim; i++) {
    if (!isfinite(a[i])) {
      vs_error(pzErr, "%s has a non-finite value at index %d (expected finite numbers, received %s)", zWhat, i,
               isnan(a[i]) ? "NaN" : (a[i] > 0 ? "Infinity" : "-Infinity"));
      sqlite3_free(a);
      return SQLITE_ERROR;
    }
  }
  *paVec = a;
  *pnDim = nDim;
  return SQLITE_OK;
}

int vs_vector_check_magnitude(const float *a, int nDim, const char *zWhat, char **pzErr) {
  double rSq = 0.0;
  for (int i = 0; i < nDim; i++) rSq += (double)a[i] * a[i];
  if (rSq <= VS_MAX_SQUARED_NORM) return SQLITE_OK;
  vs_error(pzErr, "%s is too large: its squared norm is %.3g, expected at most %.3g so that distances stay finite "
           "in float32", zWhat, rSq, VS_MAX_SQUARED_NORM);
  return SQLITE_ERROR;
}

/* See vecstore_int.h. On error *paVec is NULL, *pnDim 0 and *pzErr says what was expected and received;
** the result is SQLITE_ERROR (bad value) or SQLITE_NOMEM. */
int vs_vector_parse(sqlite3_value *pVal, int nExpect, const char *zWhat, float **paVec, int *pnDim,
                    char **pzErr) {
  float *a = 0;
  int nDim = 0;
  int rc;
  *paVec = 0;
  *pnDim = 0;
  if (zWhat == 0) zWhat = "vector";
  switch (sqlite3_value_type(pVal)) {
    case SQLITE_BLOB: {
      const unsigned char *p = sqlite3_value_blob(pVal);
      int nByte = sqlite3_value_bytes(pVal);
      if (p == 0 && nByte > 0) {
        vs_error(pzErr, "out of memory reading %s", zWhat);
        return SQLITE_NOMEM;
      }
      rc = parse_blob(p, nByte, nExpect, zWhat, &a, &nDim, pzErr);
      break;
    }
    case SQLITE_TEXT: {
      const char *z = (const char *)sqlite3_value_text(pVal);
      int n = sqlite3_value_bytes(pVal);
      if (z == 0) {
        vs_error(pzErr, "out of memory reading %s", zWhat);
        return SQLITE_NOMEM;
      }
      rc = parse_json(z, n, zWhat, &a, &nDim, pzErr);
      break;
    }
    default: {
      int eType = sqlite3_value_type(pVal);
      vs_error(pzErr,
               "%s must be a float32 BLOB or JSON array text like '[1, 2.5, -3]' (expected BLOB or TEXT, "
               "received %s)",
               zWhat, eType == SQLITE_NULL ? "NULL" : eType == SQLITE_INTEGER ? "an integer" : "a real");
      return SQLITE_ERROR;
    }
  }
  if (rc != SQLITE_OK) return rc;
  if (nExpect > 0 && nDim != nExpect) {
    sqlite3_free(a);
    vs_error(pzErr, "%s has %d dimension%s, expected %d", zWhat, nDim, nDim == 1 ? "" : "s", nExpect);
    return SQLITE_ERROR;
  }
  *paVec = a;
  *pnDim = nDim;
  return SQLITE_OK;
}

/**************************************************************************************************
** Metrics.
*/

/* See vecstore_int.h. Sums in double; cosine clamps the similarity to [-1, 1] and treats a zero vector
** as similarity 0 (distance 1). */
float vs_distance(const float *a, const float *b, int nDim, VsMetric eMetric) {
  switch (eMetric) {
    case VS_METRIC_IP: {
      double dot = 0.0;
      for (int i = 0; i < nDim; i++) dot += (double)a[i] * b[i];
      return (float)-dot;
    }
    case VS_METRIC_COSINE: {
      double dot = 0.0, na = 0.0, nb = 0.0;
      for (int i = 0; i < nDim; i++) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
      }
      double sim = 0.0;
      if (na > 0.0 && nb > 0.0) {
        sim = dot / (sqrt(na) * sqrt(nb));
        if (sim > 1.0) sim = 1.0;
        if (sim < -1.0) sim = -1.0;
      }
      return (float)(1.0 - sim);
    }
    case VS_METRIC_L2:
    default: {
      double sum = 0.0;
      for (int i = 0; i < nDim; i++) {
        double d = (double)a[i] - b[i];
        sum += d * d;
      }
      return (float)sum;
    }
  }
}

/* See vecstore_int.h. A (rounding-)negative l2 distance counts as 0. */
double vs_score(double rDistance, VsMetric eMetric) {
  switch (eMetric) {
    case VS_METRIC_IP:
      return -rDistance;
    case VS_METRIC_COSINE:
      return 1.0 - rDistance;
    case VS_METRIC_L2:
    default:
      return 1.0 - sqrt(rDistance > 0.0 ? rDistance : 0.0) / sqrt(2.0);
  }
}

void vs_normalize(float *a, int nDim) {
  double sum = 0.0;
  for (int i = 0; i < nDim; i++) sum += (double)a[i] * a[i];
  if (sum <= 0.0) return;
  double norm = sqrt(sum);
  for (int i = 0; i < nDim; i++) a[i] = (float)(a[i] / norm);
}

/* 'l2', 'ip' or 'cosine' in any case -> SQLITE_OK; anything else (NULL too) -> SQLITE_ERROR. */
int vs_metric_parse(const char *z, VsMetric *peMetric) {
  if (z == 0) return SQLITE_ERROR;
  if (sqlite3_stricmp(z, "l2") == 0) {
    *peMetric = VS_METRIC_L2;
  } else if (sqlite3_stricmp(z, "ip") == 0) {
    *peMetric = VS_METRIC_IP;
  } else if (sqlite3_stricmp(z, "cosine") == 0) {
    *peMetric = VS_METRIC_COSINE;
  } else {
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

const char *vs_metric_name(VsMetric eMetric) {
  switch (eMetric) {
    case VS_METRIC_L2:
      return "l2";
    case VS_METRIC_IP:
      return "ip";
    case VS_METRIC_COSINE:
      return "cosine";
  }
  return "?";
}

/**************************************************************************************************
** SQL functions.
*/

/* Reports *pzErr (or OOM) as the function's error and frees it. */
static void result_error(sqlite3_context *ctx, int rc, char *zErr) {
  if (rc == SQLITE_NOMEM || zErr == 0) {
    sqlite3_result_error_nomem(ctx);
  } else {
    sqlite3_result_error(ctx, zErr, -1);
  }
  sqlite3_free(zErr);
}

/* Returns a (sqlite3_malloc'd, taken over) as the canonical float32 little-endian BLOB. */
static void result_vector(sqlite3_context *ctx, float *a, int nDim) {
  vec_to_le(a, nDim);
  sqlite3_result_blob64(ctx, a, (sqlite3_uint64)nDim * 4, sqlite3_free);
}

/* vecstore_vector(x): x as the canonical BLOB. */
static void vector_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  float *a;
  int nDim;
  char *zErr = 0;
  int rc = vs_vector_parse(argv[0], 0, "vecstore_vector(): vector", &a, &nDim, &zErr);
  if (rc != SQLITE_OK) {
    result_error(ctx, rc, zErr);
    return;
  }
  result_vector(ctx, a, nDim);
}

/* vecstore_normalize(v): v scaled to unit L2 norm, as a BLOB (a zero vector stays zero). */
static void normalize_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  float *a;
  int nDim;
  char *zErr = 0;
  int rc = vs_vector_parse(argv[0], 0, "vecstore_normalize(): vector", &a, &nDim, &zErr);
  if (rc != SQLITE_OK) {
    result_error(ctx, rc, zErr);
    return;
  }
  vs_normalize(a, nDim);
  result_vector(ctx, a, nDim);
}

/* Formats finite r into zBuf (nBuf >= 40) as a JSON number with the fewest significant digits (1..9) that
** read back as r: fixed notation for decimal exponents -4..15 ("-300", "0.001", "2.5"), else "1e+20" style
** (the rule of Python's repr, without its ".0"). -0 prints as "-0". */
static void format_float(float r, char *zBuf, int nBuf) {
  char zE[40];
  if (r == 0.0f) {
    sqlite3_snprintf(nBuf, zBuf, "%s", signbit(r) ? "-0" : "0");
    return;
  }
  /* Shortest "%.*e" form that round-trips; 9 significant digits always identify a float32. */
  for (int nDigit = 1; nDigit <= 9; nDigit++) {
    sqlite3_snprintf((int)sizeof(zE), zE, "%.*e", nDigit - 1, (double)r);
    float rBack;
    if (number_to_float(zE, (int)strlen(zE), &rBack) == SQLITE_OK && rBack == r) break;
  }
  /* Split zE ("-d.ddde+XX") into sign, digits and exponent. */
  const char *z = zE;
  int bNeg = 0;
  if (*z == '-') {
    bNeg = 1;
    z++;
  }
  char zDigit[16];
  int nD = 0;
  for (; *z && *z != 'e' && *z != 'E'; z++) {
    if (isdigit((unsigned char)*z) && nD < (int)sizeof(zDigit) - 1) zDigit[nD++] = *z;
  }
  while (nD > 1 && zDigit[nD - 1] == '0') nD--;
  zDigit[nD] = 0;
  int iExp = (*z) ? atoi(z + 1) : 0;
  if (iExp < -4 || iExp >= 16) {
    sqlite3_snprintf(nBuf, zBuf, "%s%c%s%se%c%02d", bNeg ? "-" : "", zDigit[0], nD > 1 ? "." : "", zDigit + 1,
                     iExp < 0 ? '-' : '+', iExp < 0 ? -iExp : iExp);
    return;
  }
  int n = 0;
  if (bNeg) zBuf[n++] = '-';
  if (iExp < 0) {
    zBuf[n++] = '0';
    zBuf[n++] = '.';
    for (int i = 0; i < -iExp - 1; i++) zBuf[n++] = '0';
    for (int i = 0; i < nD; i++) zBuf[n++] = zDigit[i];
  } else {
    for (int i = 0; i <= iExp || i < nD; i++) {
      if (i == iExp + 1) zBuf[n++] = '.';
      zBuf[n++] = i < nD ? zDigit[i] : '0';
    }
  }
  zBuf[n] = 0;
}

/* vecstore_to_json(v): v as JSON array text, e.g. "[1,2.5,-300]" (see the top of this file). */
static void to_json_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  float *a;
  int nDim;
  char *zErr = 0;
  int rc = vs_vector_parse(argv[0], 0, "vecstore_to_json(): vector", &a, &nDim, &zErr);
  if (rc != SQLITE_OK) {
    result_error(ctx, rc, zErr);
    return;
  }
  /* At most 17 characters per value (fixed notation up to exponent 15: "-1000000000000000"; "-1.23456789e-38"
  ** is 15) plus a separator. */
  char *zOut = sqlite3_malloc64((sqlite3_uint64)nDim * 18 + 3);
  if (zOut == 0) {
    sqlite3_free(a);
    sqlite3_result_error_nomem(ctx);
    return;
  }
  i64 n = 0;
  zOut[n++] = '[';
  for (int i = 0; i < nDim; i++) {
    char zNum[48];
    if (i > 0) zOut[n++] = ',';
    format_float(a[i], zNum, (int)sizeof(zNum));
    size_t m = strlen(zNum);
    memcpy(&zOut[n], zNum, m);
    n += (i64)m;
  }
  zOut[n++] = ']';
  zOut[n] = 0;
  sqlite3_free(a);
  sqlite3_result_text64(ctx, zOut, (sqlite3_uint64)n, sqlite3_free, SQLITE_UTF8);
}

/* After an error of vecstore_distance(): when the first vector is a BLOB of 8 bytes per dimension of the second, it
** is probably float64, and *pzErr says so: instead of an error of the first vector (its float64 bytes read as
** float32 may make a NaN), or after a dimension mismatch as the other explanation. Returns SQLITE_NOMEM on OOM,
** else rc. */
static int explain_float64_first(sqlite3_value **argv, int bFirstFailed, int rc, char **pzErr) {
  if (rc != SQLITE_ERROR || sqlite3_value_type(argv[0]) != SQLITE_BLOB) return rc;
  float *b = 0;
  int nB = 0;
  if (vs_vector_parse(argv[1], 0, 0, &b, &nB, 0) != SQLITE_OK) return rc;
  sqlite3_free(b);
  if ((i64)sqlite3_value_bytes(argv[0]) != (i64)nB * 8) return rc;
  if (bFirstFailed || *pzErr == 0) {
    char *zText = float64_text("vecstore_distance(): first vector", nB, "the second vector's");
    if (zText == 0) return SQLITE_NOMEM;
    vs_error(pzErr, "%s", zText);
    sqlite3_free(zText);
  } else { /* *pzErr says "vecstore: vecstore_distance(): second vector has N dimensions, expected 2N" */
    char *zText = float64_text("its", nB, "the second vector's");
    char *zBoth = zText ? sqlite3_mprintf("%s; or the first vector is float64: %s", *pzErr, zText) : 0;
    sqlite3_free(zText);
    if (zBoth == 0) return SQLITE_NOMEM;
    sqlite3_free(*pzErr);
    *pzErr = zBoth;
  }
  return rc;
}

/* vecstore_distance(a, b [, metric]): the SPEC distance of a and b ('l2' by default). */
static void distance_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  VsMetric eMetric = VS_METRIC_L2;
  if (argc >= 3) {
    const char *zMetric = (const char *)sqlite3_value_text(argv[2]);
    if (sqlite3_value_type(argv[2]) == SQLITE_NULL) {
      sqlite3_result_error(ctx, "vecstore: vecstore_distance(): unknown metric (expected 'l2', 'ip' or 'cosine', "
                           "received NULL)", -1);
      return;
    }
    if (zMetric == 0) {
      sqlite3_result_error_nomem(ctx);
      return;
    }
    if (vs_metric_parse(zMetric, &eMetric) != SQLITE_OK) {
      char *zErr = 0;
      vs_error(&zErr, "vecstore_distance(): unknown metric '%s' (expected 'l2', 'ip' or 'cosine')", zMetric);
      result_error(ctx, SQLITE_ERROR, zErr);
      return;
    }
  }
  float *a = 0, *b = 0;
  int nA = 0, nB = 0;
  char *zErr = 0;
  int rc = vs_vector_parse(argv[0], 0, "vecstore_distance(): first vector", &a, &nA, &zErr);
  int bFirstFailed = rc != SQLITE_OK;
  if (rc == SQLITE_OK) rc = vs_vector_parse(argv[1], nA, "vecstore_distance(): second vector", &b, &nB, &zErr);
  if (rc != SQLITE_OK) {
    rc = explain_float64_first(argv, bFirstFailed, rc, &zErr);
    sqlite3_free(a);
    result_error(ctx, rc, zErr);
    return;
  }
  float r = vs_distance(a, b, nA, eMetric);
  sqlite3_free(a);
  sqlite3_free(b);
  sqlite3_result_double(ctx, (double)r);
}

/* Registers vecstore_vector, vecstore_to_json, vecstore_distance (2 and 3 arguments) and
** vecstore_normalize on db. */
int vs_vector_register(sqlite3 *db) {
  static const struct {
    const char *zName;
    int nArg;
    void (*xFunc)(sqlite3_context *, int, sqlite3_value **);
  } aFunc[] = {
      {"vecstore_vector", 1, vector_func},     {"vecstore_to_json", 1, to_json_func},
      {"vecstore_distance", 2, distance_func}, {"vecstore_distance", 3, distance_func},
      {"vecstore_normalize", 1, normalize_func},
  };
  const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
  for (size_t i = 0; i < sizeof(aFunc) / sizeof(aFunc[0]); i++) {
    int rc = sqlite3_create_function(db, aFunc[i].zName, aFunc[i].nArg, flags, 0, aFunc[i].xFunc, 0, 0);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}
