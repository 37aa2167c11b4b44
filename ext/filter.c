/*
** filter.c: vecstore_filter(metadata, filter) -> 1 or 0, LangChain's FAISS metadata filter language
** (langchain_community.vectorstores.faiss.FAISS._create_filter_func) on JSON text.
**
** The language, for a filter object F and the metadata object M:
**   {"f": v}                      M.f == v (v a scalar, object or null)
**   {"f": [a, b, ...]}            M.f == a or M.f == b ... (membership)
**   {"f": {"$op": v, ...}}        every operator holds; $eq $neq $gt $gte $lt $lte compare M.f with v,
**                                 $in / $nin take an array and test membership; {"f": {}} is true
**   {"$and": [F1, ...]}           every Fi holds (true for []);  {"$or": [F1, ...]} some Fi holds (false for [])
**   {"$not": F1}                  F1 does not hold
**   several keys in one object    all of them hold (so {} matches everything)
** A missing field is null (Python's dict.get). Any other "$..." key is an error mentioning "unsupported operator".
**
** Values follow Python's semantics for the json module's objects:
**   equality ($eq, $neq, shorthand, membership): numbers compare by value (1 == 1.0), booleans are the numbers
**     1 and 0 (true == 1), strings by their bytes, arrays element by element, objects by their key sets and
**     values (key order is irrelevant); values of different kinds are unequal; null equals only null.
**   order ($gt $gte $lt $lte): numbers and booleans by value, strings by code point (the byte order of UTF-8),
**     arrays lexicographically (the first unequal elements decide, else the shorter is smaller). Where Python
**     would raise TypeError (null or a missing field, objects, a string against a number, ...) the comparison is
**     false, so {"f": {"$gt": 1}} never matches a document without f.
** Duplicate keys: the last one wins (as json.loads does), in the metadata and in the filter.
**
** Deviations from LangChain, all for inputs LangChain mishandles: an object holding "$and"/"$or"/"$not" and
** other keys ANDs them all (LangChain silently keeps only the first of $and, $or, $not); unknown "$" keys are
** rejected at every level (LangChain checks only the top level and takes nested ones for field names);
** $in/$nin need an array (LangChain would do a substring test on a string); where LangChain raises TypeError
** (ordering against null or across types, an array or object value tested against a shorthand list of more
** than 10 elements) the result is false or the deep comparison above; integers beyond 64 bits are read as
** doubles.
**
** JSON is parsed strictly (RFC 8259, like json_valid() before JSON5): a parsed document is a preorder array of
** nodes in which every node records the size of its subtree, so children and siblings are found by offset.
** The compiled filter is cached on argument 1 with sqlite3_set_auxdata and owns a scratch document that each
** call reuses for the metadata, so a scan with a constant or bound filter parses only the metadata per row;
** once the filter is reused, membership lists longer than 8 get sorted indexes (binary search per row).
*/
#include "vecstore_int.h"

#include <math.h>
#include <stdarg.h>

#define JSON_MAX_DEPTH 2000

/**************************************************************************************************
** JSON documents.
*/
enum { J_NULL, J_TRUE, J_FALSE, J_INT, J_REAL, J_STRING, J_ARRAY, J_OBJECT };

typedef struct JNode {
  unsigned char eType;
  int n;    /* J_STRING: bytes; J_ARRAY: elements; J_OBJECT: members (each a J_STRING key then a value) */
  int nSub; /* nodes in the subtree below this one */
  union {
    i64 i;         /* J_INT */
    double r;      /* J_REAL */
    const char *z; /* J_STRING: decoded bytes (not terminated) inside JDoc.z */
  } u;
} JNode;

/* A parsed JSON text. Reusable: jdoc_parse() keeps the allocations of the previous parse. */
typedef struct JDoc {
  JNode *a;
  int nNode, nAlloc;
  char *z; /* mutable copy of the text; strings are decoded in place */
  i64 nzAlloc;
  const char *zErr; /* after a failed parse: what was wrong, at byte offset iErr */
  i64 iErr;
} JDoc;

typedef struct JParser {
  JDoc *pDoc;
  const char *z;
  i64 n, i;
} JParser;

static const JNode jNull = {J_NULL, 0, 0, {0}};

static void jdoc_free(JDoc *d) {
  sqlite3_free(d->a);
  sqlite3_free(d->z);
  memset(d, 0, sizeof(*d));
}

/* Appends a node of type eType; returns its index, or -1 when out of memory. */
static int jdoc_add(JDoc *d, int eType) {
  if (d->nNode >= d->nAlloc) {
    int nNew = d->nAlloc ? d->nAlloc * 2 : 32;
    JNode *aNew = sqlite3_realloc64(d->a, (sqlite3_uint64)nNew * sizeof(JNode));
    if (aNew == 0) return -1;
    d->a = aNew;
    d->nAlloc = nNew;
  }
  JNode *p = &d->a[d->nNode];
  memset(p, 0, sizeof(*p));
  p->eType = (unsigned char)eType;
  return d->nNode++;
}

/* Records a parse error (the first one wins); returns SQLITE_ERROR. */
static int jparse_error(JParser *p, const char *zWhat) {
  if (p->pDoc->zErr == 0) {
    p->pDoc->zErr = zWhat;
    p->pDoc->iErr = p->i;
  }
  return SQLITE_ERROR;
}

static void jparse_ws(JParser *p) {
  while (p->i < p->n) {
    char c = p->z[p->i];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->i++;
  }
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Reads the 4 hex digits at z[i..i+4) into *pc; returns 0 if they are not hex digits. */
static int read_hex4(const JParser *p, i64 i, unsigned *pc) {
  if (i + 4 > p->n) return 0;
  unsigned c = 0;
  for (int k = 0; k < 4; k++) {
    int h = hex_value(p->z[i + k]);
    if (h < 0) return 0;
    c = (c << 4) | (unsigned)h;
  }
  *pc = c;
  return 1;
}

/* Writes code point c as UTF-8 at z (a lone surrogate takes the 3-byte form); returns the bytes written. */
static int put_utf8(char *z, unsigned c) {
  if (c < 0x80) {
    z[0] = (char)c;
    return 1;
  }
  if (c < 0x800) {
    z[0] = (char)(0xC0 | (c >> 6));
    z[1] = (char)(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    z[0] = (char)(0xE0 | (c >> 12));
    z[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    z[2] = (char)(0x80 | (c & 0x3F));
    return 3;
  }
  z[0] = (char)(0xF0 | (c >> 18));
  z[1] = (char)(0x80 | ((c >> 12) & 0x3F));
  z[2] = (char)(0x80 | ((c >> 6) & 0x3F));
  z[3] = (char)(0x80 | (c & 0x3F));
  return 4;
}

/* Parses the string whose opening quote is at z[i], decoding escapes in place (the decoded form is never
** longer), into a new J_STRING node. */
static int jparse_string(JParser *p) {
  char *z = p->pDoc->z;
  i64 iStart = ++p->i, w = iStart;
  for (;;) {
    if (p->i >= p->n) return jparse_error(p, "unterminated string");
    unsigned char c = (unsigned char)z[p->i];
    if (c == '"') break;
    if (c < 0x20) return jparse_error(p, "control character in string");
    if (c != '\\') {
      z[w++] = z[p->i++];
      continue;
    }
    if (p->i + 1 >= p->n) return jparse_error(p, "unterminated string");
    char e = z[p->i + 1], cOut;
    switch (e) {
      case '"': cOut = '"'; break;
      case '\\': cOut = '\\'; break;
      case '/': cOut = '/'; break;
      case 'b': cOut = '\b'; break;
      case 'f': cOut = '\f'; break;
      case 'n': cOut = '\n'; break;
      case 'r': cOut = '\r'; break;
      case 't': cOut = '\t'; break;
      case 'u': cOut = 0; break;
      default: return jparse_error(p, "invalid escape in string");
    }
    if (e != 'u') {
      z[w++] = cOut;
      p->i += 2;
      continue;
    }
    unsigned cp, lo;
    if (!read_hex4(p, p->i + 2, &cp)) return jparse_error(p, "invalid \\u escape in string");
    p->i += 6;
    if (cp >= 0xD800 && cp <= 0xDBFF && p->i + 1 < p->n && z[p->i] == '\\' && z[p->i + 1] == 'u' &&
        read_hex4(p, p->i + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      p->i += 6;
    }
    w += put_utf8(z + w, cp);
  }
  p->i++; /* the closing quote */
  int iNode = jdoc_add(p->pDoc, J_STRING);
  if (iNode < 0) return SQLITE_NOMEM;
  p->pDoc->a[iNode].u.z = z + iStart;
  p->pDoc->a[iNode].n = (int)(w - iStart);
  return SQLITE_OK;
}

/* Converts the validated JSON number z[0..n) to a double the way strtod does in the C locale. */
static double number_to_double(const char *z, i64 n) {
  char aBuf[128];
  char *zBuf = vs_number_for_strtod(z, n, aBuf, sizeof(aBuf));
  if (zBuf == 0) return 0.0; /* a number over 128 bytes and no memory for it: treat as 0 */
  double r = strtod(zBuf, 0);
  if (zBuf != aBuf) sqlite3_free(zBuf);
  return r;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Parses a number (RFC 8259 grammar) into a J_INT node when it is an integer literal that fits 64 bits,
** else a J_REAL node. */
static int jparse_number(JParser *p) {
  const char *z = p->z;
  i64 iStart = p->i, i = p->i;
  int bNeg = 0, bInt = 1;
  if (z[i] == '-') {
    bNeg = 1;
    i++;
  }
  if (i < p->n && z[i] == '0') {
    i++;
  } else if (i < p->n && z[i] >= '1' && z[i] <= '9') {
    while (i < p->n && is_digit(z[i])) i++;
  } else {
    p->i = i;
    return jparse_error(p, "invalid number");
  }
  if (i < p->n && z[i] == '.') {
    bInt = 0;
    i++;
    if (i >= p->n || !is_digit(z[i])) {
      p->i = i;
      return jparse_error(p, "invalid number");
    }
    while (i < p->n && is_digit(z[i])) i++;
  }
  if (i < p->n && (z[i] == 'e' || z[i] == 'E')) {
    bInt = 0;
    i++;
    if (i < p->n && (z[i] == '+' || z[i] == '-')) i++;
    if (i >= p->n || !is_digit(z[i])) {
      p->i = i;
      return jparse_error(p, "invalid number");
    }
    while (i < p->n && is_digit(z[i])) i++;
  }
  p->i = i;
  if (bInt) {
    /* Accumulate negatively so that INT64_MIN fits. */
    i64 v = 0;
    int bOverflow = 0;
    for (i64 k = iStart + bNeg; k < i && !bOverflow; k++) {
      int d = z[k] - '0';
      if (v < (INT64_MIN + d) / 10) {
        bOverflow = 1;
      } else {
        v = v * 10 - d;
      }
    }
    if (!bOverflow && (bNeg || v != INT64_MIN)) {
      int iNode = jdoc_add(p->pDoc, J_INT);
      if (iNode < 0) return SQLITE_NOMEM;
      p->pDoc->a[iNode].u.i = bNeg ? v : -v;
      return SQLITE_OK;
    }
  }
  int iNode = jdoc_add(p->pDoc, J_REAL);
  if (iNode < 0) return SQLITE_NOMEM;
  p->pDoc->a[iNode].u.r = number_to_double(z + iStart, i - iStart);
  return SQLITE_OK;
}

/* Matches the literal zWord at the parse position. */
static int jparse_word(JParser *p, const char *zWord, int eType) {
  i64 n = (i64)strlen(zWord);
  if (p->i + n > p->n || memcmp(p->z + p->i, zWord, (size_t)n) != 0) return jparse_error(p, "unexpected character");
  p->i += n;
  return jdoc_add(p->pDoc, eType) < 0 ? SQLITE_NOMEM : SQLITE_OK;
}

/* Parses one value (after whitespace) at nesting depth iDepth, appending its subtree of nodes. */
static int jparse_value(JParser *p, int iDepth) {
  jparse_ws(p);
  if (p->i >= p->n) return jparse_error(p, "unexpected end of text");
  char c = p->z[p->i];
  if (c == '"') return jparse_string(p);
  if (c == '-' || is_digit(c)) return jparse_number(p);
  if (c == 't') return jparse_word(p, "true", J_TRUE);
  if (c == 'f') return jparse_word(p, "false", J_FALSE);
  if (c == 'n') return jparse_word(p, "null", J_NULL);
  if (c != '[' && c != '{') return jparse_error(p, "unexpected character");
  if (iDepth >= JSON_MAX_DEPTH) return jparse_error(p, "nested too deeply");
  int bObject = c == '{';
  int iNode = jdoc_add(p->pDoc, bObject ? J_OBJECT : J_ARRAY);
  if (iNode < 0) return SQLITE_NOMEM;
  char cEnd = bObject ? '}' : ']';
  int nItem = 0;
  p->i++;
  jparse_ws(p);
  if (p->i < p->n && p->z[p->i] == cEnd) {
    p->i++;
  } else {
    for (;;) {
      int rc;
      if (bObject) {
        jparse_ws(p);
        if (p->i >= p->n || p->z[p->i] != '"') return jparse_error(p, "expected a string key");
        rc = jparse_string(p);
        if (rc != SQLITE_OK) return rc;
        jparse_ws(p);
        if (p->i >= p->n || p->z[p->i] != ':') return jparse_error(p, "expected ':'");
        p->i++;
      }
      rc = jparse_value(p, iDepth + 1);
      if (rc != SQLITE_OK) return rc;
      nItem++;
      jparse_ws(p);
      if (p->i < p->n && p->z[p->i] == ',') {
        p->i++;
        continue;
      }
      if (p->i < p->n && p->z[p->i] == cEnd) {
        p->i++;
        break;
      }
      return jparse_error(p, bObject ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
  p->pDoc->a[iNode].n = nItem;
  p->pDoc->a[iNode].nSub = p->pDoc->nNode - iNode - 1;
  return SQLITE_OK;
}

/* Parses the JSON text z[0..n) into d (reusing its memory). On SQLITE_ERROR, d->zErr and d->iErr say why. */
static int jdoc_parse(JDoc *d, const char *z, i64 n) {
  d->nNode = 0;
  d->zErr = 0;
  d->iErr = 0;
  if (n + 1 > d->nzAlloc) {
    char *zNew = sqlite3_realloc64(d->z, (sqlite3_uint64)n + 1);
    if (zNew == 0) return SQLITE_NOMEM;
    d->z = zNew;
    d->nzAlloc = n + 1;
  }
  if (n > 0) memcpy(d->z, z, (size_t)n);
  d->z[n] = 0;
  JParser p = {d, d->z, n, 0};
  int rc = jparse_value(&p, 0);
  if (rc == SQLITE_OK) {
    jparse_ws(&p);
    if (p.i < p.n) rc = jparse_error(&p, "unexpected text after the value");
  }
  return rc;
}

/* The next sibling of node p (the node after its subtree). */
static const JNode *jnext(const JNode *p) { return p + 1 + p->nSub; }

/* The value of the last member named z[0..n) of object pObj (json.loads keeps the last), or 0. */
static const JNode *jobject_get(const JNode *pObj, const char *z, int n) {
  const JNode *pFound = 0, *pKey = pObj + 1;
  for (int i = 0; i < pObj->n; i++) {
    const JNode *pVal = pKey + 1;
    if (pKey->n == n && (n == 0 || memcmp(pKey->u.z, z, (size_t)n) == 0)) pFound = pVal;
    pKey = jnext(pVal);
  }
  return pFound;
}

/* True when member key pKey of pObj is the last member with that name (the one json.loads keeps). */
static int jobject_is_last(const JNode *pObj, const JNode *pKey) {
  return jobject_get(pObj, pKey->u.z, pKey->n) == pKey + 1;
}

/* Describes a JSON value's kind for error messages. */
static const char *jkind(const JNode *p) {
  switch (p->eType) {
    case J_NULL: return "JSON null";
    case J_TRUE: return "JSON true";
    case J_FALSE: return "JSON false";
    case J_INT:
    case J_REAL: return "a JSON number";
    case J_STRING: return "a JSON string";
    case J_ARRAY: return "a JSON array";
    default: return "a JSON object";
  }
}

/**************************************************************************************************
** Comparisons with Python's semantics.
*/
#define CMP_NONE 2 /* the values are not ordered (Python would raise TypeError) */

static int is_number(const JNode *p) {
  return p->eType == J_INT || p->eType == J_REAL || p->eType == J_TRUE || p->eType == J_FALSE;
}

/* Compares the integer i with the double r exactly: -1, 0 or 1 (CMP_NONE for NaN). */
static int cmp_int_real(i64 i, double r) {
  if (isnan(r)) return CMP_NONE;
  if (r >= 9223372036854775808.0) return -1;
  if (r < -9223372036854775808.0) return 1;
  double fl = floor(r);
  i64 t = (i64)fl;
  if (i < t) return -1;
  if (i > t) return 1;
  return r > fl ? -1 : 0;
}

/* Compares two numbers (booleans are 1 and 0): -1, 0, 1, or CMP_NONE for NaN. */
static int cmp_number(const JNode *a, const JNode *b) {
  int aInt = a->eType != J_REAL, bInt = b->eType != J_REAL;
  i64 ia = a->eType == J_INT ? a->u.i : a->eType == J_TRUE;
  i64 ib = b->eType == J_INT ? b->u.i : b->eType == J_TRUE;
  if (aInt && bInt) return ia < ib ? -1 : ia > ib;
  if (aInt) return cmp_int_real(ia, b->u.r);
  if (bInt) {
    int c = cmp_int_real(ib, a->u.r);
    return c == CMP_NONE ? c : -c;
  }
  if (isnan(a->u.r) || isnan(b->u.r)) return CMP_NONE;
  return a->u.r < b->u.r ? -1 : a->u.r > b->u.r;
}

static int cmp_bytes(const char *za, int na, const char *zb, int nb) {
  int n = na < nb ? na : nb;
  int c = n > 0 ? memcmp(za, zb, (size_t)n) : 0;
  if (c != 0) return c < 0 ? -1 : 1;
  return na < nb ? -1 : na > nb;
}

/* Python's a == b for JSON values. */
static int json_equal(const JNode *a, const JNode *b) {
  if (is_number(a) && is_number(b)) return cmp_number(a, b) == 0;
  if (a->eType != b->eType) return 0;
  switch (a->eType) {
    case J_NULL: return 1;
    case J_STRING: return a->n == b->n && (a->n == 0 || memcmp(a->u.z, b->u.z, (size_t)a->n) == 0);
    case J_ARRAY: {
      if (a->n != b->n) return 0;
      const JNode *pa = a + 1, *pb = b + 1;
      for (int i = 0; i < a->n; i++, pa = jnext(pa), pb = jnext(pb)) {
        if (!json_equal(pa, pb)) return 0;
      }
      return 1;
    }
    case J_OBJECT: {
      /* Same distinct keys, equal values under each (the last duplicate counting). */
      int nKeysA = 0, nKeysB = 0;
      const JNode *pKey = b + 1;
      for (int i = 0; i < b->n; i++, pKey = jnext(pKey + 1)) nKeysB += jobject_is_last(b, pKey);
      pKey = a + 1;
      for (int i = 0; i < a->n; i++, pKey = jnext(pKey + 1)) {
        if (!jobject_is_last(a, pKey)) continue;
        nKeysA++;
        const JNode *pOther = jobject_get(b, pKey->u.z, pKey->n);
        if (pOther == 0 || !json_equal(pKey + 1, pOther)) return 0;
      }
      return nKeysA == nKeysB;
    }
    default: return 0;
  }
}

/* Python's ordering of a and b: -1, 0, 1, or CMP_NONE where Python raises TypeError. */
static int json_order(const JNode *a, const JNode *b) {
  if (is_number(a) && is_number(b)) return cmp_number(a, b);
  if (a->eType != b->eType) return CMP_NONE;
  if (a->eType == J_STRING) return cmp_bytes(a->u.z, a->n, b->u.z, b->n);
  if (a->eType != J_ARRAY) return CMP_NONE;
  const JNode *pa = a + 1, *pb = b + 1;
  for (int i = 0; i < a->n && i < b->n; i++, pa = jnext(pa), pb = jnext(pb)) {
    if (!json_equal(pa, pb)) return json_order(pa, pb);
  }
  return a->n < b->n ? -1 : a->n > b->n;
}

/* Python's a in b for a JSON array b. */
static int json_in(const JNode *a, const JNode *pArray) {
  const JNode *p = pArray + 1;
  for (int i = 0; i < pArray->n; i++, p = jnext(p)) {
    if (json_equal(a, p)) return 1;
  }
  return 0;
}

/**************************************************************************************************
** Compiled filters.
*/
enum { F_AND, F_OR, F_NOT, F_EQ, F_NEQ, F_GT, F_GTE, F_LT, F_LTE, F_IN, F_NIN };

static const struct {
  const char *zName;
  int eOp;
} aFieldOp[] = {{"$eq", F_EQ}, {"$neq", F_NEQ}, {"$gt", F_GT},  {"$gte", F_GTE},
                {"$lt", F_LT}, {"$lte", F_LTE}, {"$in", F_IN}, {"$nin", F_NIN}};

/* Membership lists longer than this get a sorted index (Python switches to a frozenset above 10). */
#define IN_INDEX_MIN 8

/* A filter node: F_AND / F_OR (nChild children), F_NOT (1 child), or a leaf comparing field pField
** with the filter value pValue. Nodes are in preorder; nSub counts the nodes below. An F_IN / F_NIN leaf
** with a long list has an index in Filter.apPool: its numbers (booleans included) sorted by value at
** [iNum, iNum + nNum), its strings sorted by bytes at [iStr, iStr + nStr), and its other elements (null,
** arrays, objects, which no number or string equals) at [iOther, iOther + nOther). */
typedef struct FNode {
  int eOp;
  int nChild;
  int nSub;
  const JNode *pField; /* leaf: the J_STRING key naming the field */
  const JNode *pValue; /* leaf: the operand */
  int bIndexed;
  int iNum, nNum, iStr, nStr, iOther, nOther;
} FNode;

typedef struct Filter {
  JDoc spec; /* the parsed filter text (FNodes point into it) */
  FNode *a;
  int nNode, nAlloc;
  const JNode **apPool; /* membership indexes of F_IN / F_NIN leaves */
  int nPool;
  int bIndexesBuilt;
  JDoc meta;    /* scratch document reused for each metadata value */
  char *zError; /* compile error (sqlite3_malloc'd) */
} Filter;

static void filter_free(void *pArg) {
  Filter *p = (Filter *)pArg;
  if (p == 0) return;
  jdoc_free(&p->spec);
  jdoc_free(&p->meta);
  sqlite3_free(p->a);
  sqlite3_free(p->apPool);
  sqlite3_free(p->zError);
  sqlite3_free(p);
}

/* Appends a filter node; returns its index or -1 when out of memory. */
static int filter_add(Filter *p, int eOp, const JNode *pField, const JNode *pValue) {
  if (p->nNode >= p->nAlloc) {
    int nNew = p->nAlloc ? p->nAlloc * 2 : 16;
    FNode *aNew = sqlite3_realloc64(p->a, (sqlite3_uint64)nNew * sizeof(FNode));
    if (aNew == 0) return -1;
    p->a = aNew;
    p->nAlloc = nNew;
  }
  FNode *f = &p->a[p->nNode];
  memset(f, 0, sizeof(*f));
  f->eOp = eOp;
  f->pField = pField;
  f->pValue = pValue;
  return p->nNode++;
}

/* Sets the compile error "vecstore: vecstore_filter: <message>" and returns SQLITE_ERROR. */
static int filter_error(Filter *p, const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  char *zMsg = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  sqlite3_free(p->zError);
  p->zError = zMsg ? sqlite3_mprintf("vecstore: vecstore_filter: %s", zMsg) : 0;
  sqlite3_free(zMsg);
  return p->zError ? SQLITE_ERROR : SQLITE_NOMEM;
}

static int key_is(const JNode *pKey, const char *z) {
  return pKey->n == (int)strlen(z) && memcmp(pKey->u.z, z, (size_t)pKey->n) == 0;
}

static int compile_object(Filter *p, const JNode *pObj);

static int sort_number(const void *a, const void *b) {
  int c = cmp_number(*(const JNode *const *)a, *(const JNode *const *)b);
  return c == CMP_NONE ? 0 : c;
}

static int sort_string(const void *a, const void *b) {
  const JNode *pa = *(const JNode *const *)a, *pb = *(const JNode *const *)b;
  return cmp_bytes(pa->u.z, pa->n, pb->u.z, pb->n);
}

/* Builds the index of membership leaf f (F_IN or F_NIN) over its array f->pValue. */
static int index_membership(Filter *p, FNode *f) {
  const JNode *pList = f->pValue;
  const JNode **aNew = sqlite3_realloc64(p->apPool, (sqlite3_uint64)(p->nPool + pList->n) * sizeof(JNode *));
  if (aNew == 0) return SQLITE_NOMEM;
  p->apPool = aNew;
  f->iNum = p->nPool;
  for (int pass = 0; pass < 3; pass++) {
    int iStart = p->nPool;
    const JNode *pElem = pList + 1;
    for (int i = 0; i < pList->n; i++, pElem = jnext(pElem)) {
      int eKind = is_number(pElem) ? 0 : pElem->eType == J_STRING ? 1 : 2;
      if (eKind == pass) p->apPool[p->nPool++] = pElem;
    }
    if (pass == 0) {
      f->nNum = p->nPool - iStart;
      qsort(p->apPool + iStart, (size_t)f->nNum, sizeof(JNode *), sort_number);
      f->iStr = p->nPool;
    } else if (pass == 1) {
      f->nStr = p->nPool - iStart;
      qsort(p->apPool + iStart, (size_t)f->nStr, sizeof(JNode *), sort_string);
      f->iOther = p->nPool;
    } else {
      f->nOther = p->nPool - iStart;
    }
  }
  f->bIndexed = 1;
  return SQLITE_OK;
}

/* Indexes the long membership lists of a filter that is being reused (a filter evaluated once per statement
** never pays for the sorting). */
static int filter_build_indexes(Filter *p) {
  p->bIndexesBuilt = 1;
  for (int i = 0; i < p->nNode; i++) {
    FNode *f = &p->a[i];
    if ((f->eOp == F_IN || f->eOp == F_NIN) && !f->bIndexed && f->pValue->n > IN_INDEX_MIN) {
      int rc = index_membership(p, f);
      if (rc != SQLITE_OK) return rc;
    }
  }
  return SQLITE_OK;
}

/* Python's a in list for a leaf's list, through its index when it has one. */
static int leaf_in(const Filter *p, const FNode *f, const JNode *a) {
  if (!f->bIndexed) return json_in(a, f->pValue);
  int bNum = is_number(a);
  if (bNum || a->eType == J_STRING) {
    const JNode *const *ap = p->apPool + (bNum ? f->iNum : f->iStr);
    int lo = 0, hi = bNum ? f->nNum : f->nStr;
    while (lo < hi) {
      int mid = lo + (hi - lo) / 2;
      int c = bNum ? cmp_number(a, ap[mid]) : cmp_bytes(a->u.z, a->n, ap[mid]->u.z, ap[mid]->n);
      if (c == 0) return 1;
      if (c == CMP_NONE) return 0;
      if (c < 0) hi = mid;
      else lo = mid + 1;
    }
    return 0;
  }
  for (int i = 0; i < f->nOther; i++) {
    if (json_equal(a, p->apPool[f->iOther + i])) return 1;
  }
  return 0;
}

/* Compiles the condition pCond on field pField: an operator object (an AND of leaves), an array
** (membership) or any other value (equality). */
static int compile_condition(Filter *p, const JNode *pField, const JNode *pCond) {
  if (pCond->eType == J_ARRAY) return filter_add(p, F_IN, pField, pCond) < 0 ? SQLITE_NOMEM : SQLITE_OK;
  if (pCond->eType != J_OBJECT) return filter_add(p, F_EQ, pField, pCond) < 0 ? SQLITE_NOMEM : SQLITE_OK;
  int iAnd = filter_add(p, F_AND, 0, 0);
  if (iAnd < 0) return SQLITE_NOMEM;
  const JNode *pKey = pCond + 1;
  int nChild = 0;
  for (int i = 0; i < pCond->n; i++, pKey = jnext(pKey + 1)) {
    if (!jobject_is_last(pCond, pKey)) continue;
    int eOp = -1;
    for (size_t k = 0; k < sizeof(aFieldOp) / sizeof(aFieldOp[0]); k++) {
      if (key_is(pKey, aFieldOp[k].zName)) eOp = aFieldOp[k].eOp;
    }
    if (eOp < 0) {
      return filter_error(p,
                          "unsupported operator \"%.*s\" in the condition on field \"%.*s\" (expected $eq, $neq, "
                          "$gt, $gte, $lt, $lte, $in or $nin; to match an object value write "
                          "{\"%.*s\": {\"$eq\": {...}}})",
                          pKey->n, pKey->u.z, pField->n, pField->u.z, pField->n, pField->u.z);
    }
    const JNode *pVal = pKey + 1;
    if ((eOp == F_IN || eOp == F_NIN) && pVal->eType != J_ARRAY) {
      return filter_error(p, "%.*s on field \"%.*s\" expects an array of values, received %s", pKey->n, pKey->u.z,
                          pField->n, pField->u.z, jkind(pVal));
    }
    if (filter_add(p, eOp, pField, pVal) < 0) return SQLITE_NOMEM;
    nChild++;
  }
  p->a[iAnd].nChild = nChild;
  p->a[iAnd].nSub = p->nNode - iAnd - 1;
  return SQLITE_OK;
}

/* Compiles the $and / $or member pKey (its value must be an array of filter objects) into an eOp node. */
static int compile_list(Filter *p, const JNode *pKey, int eOp) {
  const JNode *pList = pKey + 1;
  if (pList->eType != J_ARRAY) {
    return filter_error(p, "%.*s expects an array of filter objects, received %s", pKey->n, pKey->u.z,
                        jkind(pList));
  }
  int iNode = filter_add(p, eOp, 0, 0);
  if (iNode < 0) return SQLITE_NOMEM;
  const JNode *pElem = pList + 1;
  for (int i = 0; i < pList->n; i++, pElem = jnext(pElem)) {
    if (pElem->eType != J_OBJECT) {
      return filter_error(p, "%.*s expects an array of filter objects, received an array holding %s", pKey->n,
                          pKey->u.z, jkind(pElem));
    }
    int rc = compile_object(p, pElem);
    if (rc != SQLITE_OK) return rc;
  }
  p->a[iNode].nChild = pList->n;
  p->a[iNode].nSub = p->nNode - iNode - 1;
  return SQLITE_OK;
}

/* Compiles a filter object: the AND of its (distinct) keys' conditions. */
static int compile_object(Filter *p, const JNode *pObj) {
  int iAnd = filter_add(p, F_AND, 0, 0);
  if (iAnd < 0) return SQLITE_NOMEM;
  int nChild = 0, rc = SQLITE_OK;
  const JNode *pKey = pObj + 1;
  for (int i = 0; i < pObj->n && rc == SQLITE_OK; i++, pKey = jnext(pKey + 1)) {
    if (!jobject_is_last(pObj, pKey)) continue;
    const JNode *pVal = pKey + 1;
    nChild++;
    if (key_is(pKey, "$and")) {
      rc = compile_list(p, pKey, F_AND);
    } else if (key_is(pKey, "$or")) {
      rc = compile_list(p, pKey, F_OR);
    } else if (key_is(pKey, "$not")) {
      if (pVal->eType != J_OBJECT) return filter_error(p, "$not expects a filter object, received %s", jkind(pVal));
      int iNot = filter_add(p, F_NOT, 0, 0);
      if (iNot < 0) return SQLITE_NOMEM;
      rc = compile_object(p, pVal);
      p->a[iNot].nChild = 1;
      p->a[iNot].nSub = p->nNode - iNot - 1;
    } else if (pKey->n > 0 && pKey->u.z[0] == '$') {
      int bFieldOp = 0;
      for (size_t k = 0; k < sizeof(aFieldOp) / sizeof(aFieldOp[0]); k++) bFieldOp |= key_is(pKey, aFieldOp[k].zName);
      if (bFieldOp) {
        return filter_error(p,
                            "unsupported operator \"%.*s\" where a field name or $and, $or, $not was expected "
                            "(comparison operators go inside a field's condition: {\"field\": {\"%.*s\": value}})",
                            pKey->n, pKey->u.z, pKey->n, pKey->u.z);
      }
      return filter_error(p, "unsupported operator \"%.*s\" (expected $and, $or, $not or a field name; fields take "
                          "$eq, $neq, $gt, $gte, $lt, $lte, $in, $nin)", pKey->n, pKey->u.z);
    } else {
      rc = compile_condition(p, pKey, pVal);
    }
  }
  p->a[iAnd].nChild = nChild;
  p->a[iAnd].nSub = p->nNode - iAnd - 1;
  return rc;
}

/* Describes a SQL value that is not JSON object text, for "received ..." in error messages. */
static char *describe_value(sqlite3_value *pVal, const JDoc *pDoc, int rcParse) {
  int eType = sqlite3_value_type(pVal); /* before sqlite3_value_text(), which may convert the value */
  const char *zText = (const char *)sqlite3_value_text(pVal);
  switch (eType) {
    case SQLITE_NULL: return sqlite3_mprintf("NULL");
    case SQLITE_BLOB: return sqlite3_mprintf("a blob");
    case SQLITE_INTEGER: return sqlite3_mprintf("the integer %s", zText);
    case SQLITE_FLOAT: return sqlite3_mprintf("the real %s", zText);
    default: break;
  }
  if (rcParse != SQLITE_OK) {
    return sqlite3_mprintf("malformed JSON (%s at offset %lld): %.40s", pDoc->zErr ? pDoc->zErr : "?", pDoc->iErr,
                           zText);
  }
  return sqlite3_mprintf("%s: %.40s", jkind(&pDoc->a[0]), zText);
}

/* Parses value pVal as JSON object text into d. On failure returns an error code and, for a value of the
** wrong kind, *pzErr = "vecstore: vecstore_filter: <zWhat> must be a JSON object ..., received ...". */
static int parse_object_arg(JDoc *d, sqlite3_value *pVal, const char *zWhat, char **pzErr) {
  int eType = sqlite3_value_type(pVal);
  int rc = SQLITE_ERROR;
  if (eType == SQLITE_TEXT) {
    const char *z = (const char *)sqlite3_value_text(pVal);
    i64 n = sqlite3_value_bytes(pVal);
    if (z == 0) return SQLITE_NOMEM;
    rc = jdoc_parse(d, z, n);
    if (rc == SQLITE_NOMEM) return rc;
    if (rc == SQLITE_OK && d->a[0].eType == J_OBJECT) return SQLITE_OK;
  }
  char *zGot = describe_value(pVal, d, rc);
  *pzErr = sqlite3_mprintf("vecstore: vecstore_filter: %s must be a JSON object such as '{\"page\": 1}', "
                           "received %s",
                           zWhat, zGot ? zGot : "?");
  sqlite3_free(zGot);
  return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
}

/* Compiles the filter argument into a new Filter (*ppOut). Errors go to *pzErr. */
static int filter_compile(sqlite3_value *pVal, Filter **ppOut, char **pzErr) {
  Filter *p = sqlite3_malloc(sizeof(*p));
  *ppOut = 0;
  if (p == 0) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  int rc = parse_object_arg(&p->spec, pVal, "filter", pzErr);
  if (rc == SQLITE_OK) rc = compile_object(p, &p->spec.a[0]);
  if (rc != SQLITE_OK) {
    if (p->zError) {
      *pzErr = p->zError;
      p->zError = 0;
    }
    filter_free(p);
    return rc;
  }
  *ppOut = p;
  return SQLITE_OK;
}

/* Evaluates filter node iNode against the metadata object pMeta. */
static int filter_eval(const Filter *p, int iNode, const JNode *pMeta) {
  const FNode *f = &p->a[iNode];
  switch (f->eOp) {
    case F_AND:
    case F_OR: {
      int j = iNode + 1;
      for (int k = 0; k < f->nChild; k++, j += 1 + p->a[j].nSub) {
        int b = filter_eval(p, j, pMeta);
        if (f->eOp == F_AND && !b) return 0;
        if (f->eOp == F_OR && b) return 1;
      }
      return f->eOp == F_AND;
    }
    case F_NOT: return !filter_eval(p, iNode + 1, pMeta);
    default: break;
  }
  const JNode *pDoc = jobject_get(pMeta, f->pField->u.z, f->pField->n);
  if (pDoc == 0) pDoc = &jNull;
  switch (f->eOp) {
    case F_EQ: return json_equal(pDoc, f->pValue);
    case F_NEQ: return !json_equal(pDoc, f->pValue);
    case F_IN: return leaf_in(p, f, pDoc);
    case F_NIN: return !leaf_in(p, f, pDoc);
    default: break;
  }
  int c = json_order(pDoc, f->pValue);
  if (c == CMP_NONE) return 0;
  switch (f->eOp) {
    case F_GT: return c > 0;
    case F_GTE: return c >= 0;
    case F_LT: return c < 0;
    default: return c <= 0; /* F_LTE */
  }
}

static const JNode jEmptyObject = {J_OBJECT, 0, 0, {0}};

/* vecstore_filter(metadata, filter): 1 if the metadata object satisfies the filter, else 0. The compiled
** filter is kept as auxiliary data of argument 1, so a constant or bound filter is compiled once per scan. */
static void filter_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  char *zErr = 0;
  int rc = SQLITE_OK;
  Filter *p = sqlite3_get_auxdata(ctx, 1);
  int bNew = p == 0;
  if (bNew) {
    rc = filter_compile(argv[1], &p, &zErr);
  } else if (!p->bIndexesBuilt) {
    rc = filter_build_indexes(p);
  }
  const JNode *pMeta = &jEmptyObject;
  if (rc == SQLITE_OK && sqlite3_value_type(argv[0]) != SQLITE_NULL) {
    rc = parse_object_arg(&p->meta, argv[0], "metadata", &zErr);
    if (rc == SQLITE_OK) pMeta = &p->meta.a[0];
  }
  if (rc == SQLITE_OK) {
    sqlite3_result_int(ctx, filter_eval(p, 0, pMeta));
  } else if (rc == SQLITE_NOMEM) {
    sqlite3_result_error_nomem(ctx);
  } else {
    sqlite3_result_error(ctx, zErr ? zErr : "vecstore: vecstore_filter failed", -1);
  }
  sqlite3_free(zErr);
  /* Last: SQLite may run the destructor at once when it does not keep the data. */
  if (bNew && p) sqlite3_set_auxdata(ctx, 1, p, filter_free);
}

int vs_filter_register(sqlite3 *db) {
  return sqlite3_create_function(db, "vecstore_filter", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, 0,
                                 filter_func, 0, 0);
}
