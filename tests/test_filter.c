/* vecstore_filter(metadata, filter): LangChain's FAISS metadata filter language through real SQL on a real
** database file: every operator, nesting, missing fields, type mixes (with Python's semantics), every error,
** the per-statement cache of the compiled filter, and use inside a vector search. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define g_db tu_db
#define g_zPath tu_fixture_path()

/* Each test gets a fresh database file. */
static int setup(void **state) {
  (void)state;
  return tu_fixture_open("filter");
}

static int teardown(void **state) {
  (void)state;
  return tu_fixture_close();
}

typedef struct Case {
  const char *zMeta; /* 0: SQL NULL */
  const char *zFilter;
  int bWant;
} Case;

/* Evaluates every case with both arguments bound as text and asserts the result (1 or 0, an integer). */
static void run_cases(const Case *a, int n) {
  sqlite3_stmt *pStmt = tu_prepare(g_db, "SELECT vecstore_filter(?1, ?2), typeof(vecstore_filter(?1, ?2))");
  for (int i = 0; i < n; i++) {
    if (a[i].zMeta) sqlite3_bind_text(pStmt, 1, a[i].zMeta, -1, SQLITE_STATIC);
    else sqlite3_bind_null(pStmt, 1);
    sqlite3_bind_text(pStmt, 2, a[i].zFilter, -1, SQLITE_STATIC);
    if (sqlite3_step(pStmt) != SQLITE_ROW) {
      fail_msg("vecstore_filter('%s', '%s') failed: %s", a[i].zMeta ? a[i].zMeta : "NULL", a[i].zFilter,
               sqlite3_errmsg(g_db));
    }
    int bGot = sqlite3_column_int(pStmt, 0);
    assert_string_equal((const char *)sqlite3_column_text(pStmt, 1), "integer");
    if (bGot != a[i].bWant) {
      fail_msg("vecstore_filter('%s', '%s') = %d, expected %d", a[i].zMeta ? a[i].zMeta : "NULL", a[i].zFilter, bGot,
               a[i].bWant);
    }
    sqlite3_reset(pStmt);
  }
  sqlite3_finalize(pStmt);
}

#define RUN(aCase) run_cases(aCase, (int)(sizeof(aCase) / sizeof(aCase[0])))

/* {"f": v}: Python ==, so 1 == 1.0 == true, "1" != 1, objects ignore key order, a missing field is null. */
static void test_equality(void **state) {
  (void)state;
  static const Case a[] = {
      {"{\"page\": 1}", "{\"page\": 1}", 1},
      {"{\"page\": 2}", "{\"page\": 1}", 0},
      {"{\"page\": 1.0}", "{\"page\": 1}", 1},
      {"{\"page\": 1}", "{\"page\": 1.0}", 1},
      {"{\"page\": 1e0}", "{\"page\": 1}", 1},
      {"{\"page\": -0.0}", "{\"page\": 0}", 1},
      {"{\"page\": true}", "{\"page\": 1}", 1},
      {"{\"page\": false}", "{\"page\": 0}", 1},
      {"{\"page\": true}", "{\"page\": true}", 1},
      {"{\"page\": true}", "{\"page\": false}", 0},
      {"{\"page\": 2}", "{\"page\": true}", 0},
      {"{\"page\": 1}", "{\"page\": \"1\"}", 0},
      {"{\"page\": \"1\"}", "{\"page\": 1}", 0},
      {"{\"s\": \"abc\"}", "{\"s\": \"abc\"}", 1},
      {"{\"s\": \"abc\"}", "{\"s\": \"ABC\"}", 0},
      {"{\"s\": \"abc\"}", "{\"s\": \"ab\"}", 0},
      {"{\"s\": \"\"}", "{\"s\": \"\"}", 1},
      {"{\"s\": \"\xc3\xa9t\xc3\xa9\"}", "{\"s\": \"\\u00e9t\\u00E9\"}", 1},
      {"{\"s\": \"\\ud83d\\ude00\"}", "{\"s\": \"\xf0\x9f\x98\x80\"}", 1},
      {"{\"s\": \"a\\\"b\\\\c\\n\"}", "{\"s\": \"a\\u0022b\\u005cc\\u000a\"}", 1},
      {"{\"s\": \"a/b\"}", "{\"s\": \"a\\/b\"}", 1},
      {"{}", "{\"page\": null}", 1},
      {"{\"page\": null}", "{\"page\": null}", 1},
      {"{\"page\": 0}", "{\"page\": null}", 0},
      {"{\"page\": \"\"}", "{\"page\": null}", 0},
      {"{}", "{\"page\": 0}", 0},
      {"{\"tags\": [\"a\", \"b\"]}", "{\"tags\": {\"$eq\": [\"a\", \"b\"]}}", 1},
      {"{\"tags\": [\"a\", \"b\"]}", "{\"tags\": {\"$eq\": [\"b\", \"a\"]}}", 0},
      {"{\"tags\": [1, [2, true]]}", "{\"tags\": {\"$eq\": [1.0, [2, 1]]}}", 1},
      {"{\"tags\": []}", "{\"tags\": {\"$eq\": []}}", 1},
      {"{\"o\": {\"x\": 1, \"y\": [1, 2]}}", "{\"o\": {\"$eq\": {\"y\": [1, 2.0], \"x\": true}}}", 1},
      {"{\"o\": {\"x\": 1}}", "{\"o\": {\"$eq\": {\"x\": 1, \"y\": 2}}}", 0},
      {"{\"o\": {\"x\": 1, \"y\": 2}}", "{\"o\": {\"$eq\": {\"x\": 1}}}", 0},
      {"{\"o\": {\"x\": 1, \"x\": 2}}", "{\"o\": {\"$eq\": {\"x\": 2}}}", 1},
      {"{\"o\": {}}", "{\"o\": {\"$eq\": {}}}", 1},
      {"{\"o\": {}}", "{\"o\": {\"$eq\": []}}", 0},
      /* Duplicate keys: the last one wins, as with json.loads. */
      {"{\"a\": 1, \"a\": 2}", "{\"a\": 2}", 1},
      {"{\"a\": 1, \"a\": 2}", "{\"a\": 1}", 0},
      {"{\"a\": 2}", "{\"a\": 1, \"a\": 2}", 1},
      /* Integers are exact against doubles (2^53 + 1 is not 2^53). */
      {"{\"n\": 9007199254740993}", "{\"n\": 9007199254740992.0}", 0},
      {"{\"n\": 9007199254740992}", "{\"n\": 9007199254740992.0}", 1},
      {"{\"n\": 9223372036854775807}", "{\"n\": 9223372036854775807}", 1},
      {"{\"n\": -9223372036854775808}", "{\"n\": -9223372036854775808}", 1},
      {"{\"n\": 9223372036854775807}", "{\"n\": 9223372036854775806}", 0},
      /* Field names are literal keys of the top level: no paths. */
      {"{\"a.b\": 1}", "{\"a.b\": 1}", 1},
      {"{\"a\": {\"b\": 1}}", "{\"a.b\": 1}", 0},
      {"{\"\": 1}", "{\"\": 1}", 1},
      {"{\"$weird\": 1}", "{\"x\": null}", 1},
      {"  {\n\t\"page\" :  1 \r\n}  ", " { \"page\" : 1 } ", 1},
  };
  RUN(a);
}

/* {"f": [a, b]}: Python's `in` (equality with any element). */
static void test_membership(void **state) {
  (void)state;
  static const Case a[] = {
      {"{\"page\": 2}", "{\"page\": [1, 2, 3]}", 1},
      {"{\"page\": 4}", "{\"page\": [1, 2, 3]}", 0},
      {"{\"page\": 2.0}", "{\"page\": [1, 2]}", 1},
      {"{\"page\": true}", "{\"page\": [1]}", 1},
      {"{\"page\": \"2\"}", "{\"page\": [1, 2]}", 0},
      {"{\"page\": 1}", "{\"page\": []}", 0},
      {"{}", "{\"page\": [1, null]}", 1},
      {"{}", "{\"page\": [1, 2]}", 0},
      {"{\"page\": null}", "{\"page\": [null]}", 1},
      {"{\"tags\": [\"a\"]}", "{\"tags\": [[\"a\"], [\"b\"]]}", 1},
      {"{\"tags\": [\"a\"]}", "{\"tags\": [\"a\", \"b\"]}", 0},
      {"{\"o\": {\"k\": 1}}", "{\"o\": [{\"k\": 1.0}]}", 1},
      {"{\"page\": 11}", "{\"page\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}", 1},
      {"{\"page\": 13}", "{\"page\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}", 0},
      {"{\"s\": \"b\"}", "{\"s\": [\"a\", \"b\"]}", 1},
      {"{\"s\": \"ab\"}", "{\"s\": [\"a\", \"b\"]}", 0},
  };
  RUN(a);
}

/* Long membership lists (indexed once a statement reuses its compiled filter) keep Python's semantics across
** types: 1 == 1.0 == true, null for a missing field, arrays and objects compared deeply. */
static void test_long_lists(void **state) {
  (void)state;
  tu_exec(g_db, "CREATE TABLE mm(id INTEGER PRIMARY KEY, meta TEXT);"
                "INSERT INTO mm VALUES (1, '{\"v\": 1}'), (2, '{\"v\": true}'), (3, '{\"v\": \"a\"}'),"
                " (4, '{\"v\": \"b\"}'), (5, '{}'), (6, '{\"v\": [1]}'), (7, '{\"v\": {\"k\": 1}}'),"
                " (8, '{\"v\": {\"k\": 2}}'), (9, '{\"v\": 2.5}'), (10, '{\"v\": 3}'), (11, '{\"v\": false}'),"
                " (12, '{\"v\": \"\xc3\xa9\"}'), (13, '{\"v\": -5.0}'), (14, '{\"v\": \"c \"}');");
  static const char *zList = "[1.0, \"a\", null, [1.0], {\"k\": true}, 2.5, \"\xc3\xa9\", \"z\", 100, -5, \"c\", 7]";
  static const struct {
    const char *zFmt;
    const char *zWant;
  } a[] = {
      {"{\"v\": %s}", "1,2,3,5,6,7,9,12,13"},
      {"{\"v\": {\"$in\": %s}}", "1,2,3,5,6,7,9,12,13"},
      {"{\"v\": {\"$nin\": %s}}", "4,8,10,11,14"},
      {"{\"$not\": {\"v\": %s}}", "4,8,10,11,14"},
  };
  for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
    char *zFilter = sqlite3_mprintf(a[i].zFmt, zList);
    char *zSql = sqlite3_mprintf("SELECT group_concat(id) FROM (SELECT id FROM mm WHERE vecstore_filter(meta, %Q) "
                                 "ORDER BY id)", zFilter);
    char *z = tu_text(g_db, zSql);
    if (strcmp(z, a[i].zWant) != 0) fail_msg("%s: got %s, expected %s", zFilter, z, a[i].zWant);
    sqlite3_free(z);
    sqlite3_free(zSql);
    sqlite3_free(zFilter);
  }
  tu_exec(g_db, "DROP TABLE mm;");
}

/* $eq $neq $gt $gte $lt $lte $in $nin; several operators on one field are ANDed. */
static void test_operators(void **state) {
  (void)state;
  static const Case a[] = {
      {"{\"page\": 1}", "{\"page\": {\"$eq\": 1}}", 1},
      {"{\"page\": 1}", "{\"page\": {\"$eq\": 2}}", 0},
      {"{\"page\": 1}", "{\"page\": {\"$neq\": 1}}", 0},
      {"{\"page\": 2}", "{\"page\": {\"$neq\": 1}}", 1},
      {"{\"page\": \"1\"}", "{\"page\": {\"$neq\": 1}}", 1},
      {"{}", "{\"page\": {\"$neq\": 1}}", 1},
      {"{}", "{\"page\": {\"$neq\": null}}", 0},
      {"{}", "{\"page\": {\"$eq\": null}}", 1},
      {"{\"page\": 2}", "{\"page\": {\"$gt\": 1}}", 1},
      {"{\"page\": 1}", "{\"page\": {\"$gt\": 1}}", 0},
      {"{\"page\": 1}", "{\"page\": {\"$gte\": 1}}", 1},
      {"{\"page\": 0}", "{\"page\": {\"$gte\": 1}}", 0},
      {"{\"page\": 1}", "{\"page\": {\"$lt\": 2}}", 1},
      {"{\"page\": 1}", "{\"page\": {\"$lt\": 1}}", 0},
      {"{\"page\": 1}", "{\"page\": {\"$lte\": 1}}", 1},
      {"{\"page\": 2}", "{\"page\": {\"$lte\": 1}}", 0},
      {"{\"page\": 1.5}", "{\"page\": {\"$gt\": 1}}", 1},
      {"{\"page\": 1.5}", "{\"page\": {\"$lt\": 2}}", 1},
      {"{\"page\": -1e3}", "{\"page\": {\"$lt\": -999.5}}", 1},
      {"{\"page\": 9007199254740993}", "{\"page\": {\"$gt\": 9007199254740992.0}}", 1},
      {"{\"page\": 1e400}", "{\"page\": {\"$gt\": 9223372036854775807}}", 1},
      {"{\"page\": true}", "{\"page\": {\"$gt\": 0}}", 1},
      {"{\"page\": false}", "{\"page\": {\"$lt\": true}}", 1},
      {"{\"page\": 5}", "{\"page\": {\"$gte\": 3, \"$lt\": 6}}", 1},
      {"{\"page\": 6}", "{\"page\": {\"$gte\": 3, \"$lt\": 6}}", 0},
      {"{\"page\": 2}", "{\"page\": {\"$gte\": 3, \"$lt\": 6}}", 0},
      {"{\"page\": 2}", "{\"page\": {\"$in\": [1, 2]}}", 1},
      {"{\"page\": 3}", "{\"page\": {\"$in\": [1, 2]}}", 0},
      {"{\"page\": 2}", "{\"page\": {\"$nin\": [1, 2]}}", 0},
      {"{\"page\": 3}", "{\"page\": {\"$nin\": [1, 2]}}", 1},
      {"{}", "{\"page\": {\"$nin\": [1, 2]}}", 1},
      {"{}", "{\"page\": {\"$in\": [null]}}", 1},
      {"{}", "{\"page\": {\"$in\": []}}", 0},
      {"{\"page\": 1}", "{\"page\": {\"$nin\": []}}", 1},
      {"{\"page\": 2}", "{\"page\": {\"$in\": [1, 2, 3], \"$neq\": 2}}", 0},
      /* An empty operator object holds for every document, even without the field. */
      {"{}", "{\"page\": {}}", 1},
      {"{\"page\": 7}", "{\"page\": {}}", 1},
  };
  RUN(a);
}

/* Ordering as in Python: strings by code point, arrays lexicographically; where Python raises TypeError
** (null, a missing field, a string against a number, objects) every ordering operator is false. */
static void test_ordering_types(void **state) {
  (void)state;
  static const Case a[] = {
      {"{\"s\": \"b\"}", "{\"s\": {\"$gt\": \"a\"}}", 1},
      {"{\"s\": \"B\"}", "{\"s\": {\"$gt\": \"a\"}}", 0},
      {"{\"s\": \"ab\"}", "{\"s\": {\"$gt\": \"a\"}}", 1},
      {"{\"s\": \"a\"}", "{\"s\": {\"$gte\": \"a\"}}", 1},
      {"{\"s\": \"\xc3\xa9\"}", "{\"s\": {\"$gt\": \"z\"}}", 1},
      {"{\"s\": \"\xf0\x9f\x98\x80\"}", "{\"s\": {\"$gt\": \"\\uffff\"}}", 1},
      {"{\"s\": \"10\"}", "{\"s\": {\"$lt\": \"9\"}}", 1},
      {"{\"s\": \"5\"}", "{\"s\": {\"$gt\": 1}}", 0},
      {"{\"s\": \"5\"}", "{\"s\": {\"$lte\": 1}}", 0},
      {"{\"n\": 5}", "{\"n\": {\"$gt\": \"1\"}}", 0},
      {"{\"n\": 5}", "{\"n\": {\"$lt\": \"1\"}}", 0},
      {"{}", "{\"page\": {\"$gt\": 0}}", 0},
      {"{}", "{\"page\": {\"$lt\": 0}}", 0},
      {"{}", "{\"page\": {\"$gte\": null}}", 0},
      {"{\"page\": null}", "{\"page\": {\"$lte\": null}}", 0},
      {"{\"page\": null}", "{\"page\": {\"$gt\": 0}}", 0},
      {"{\"page\": 1}", "{\"page\": {\"$gt\": null}}", 0},
      {"{\"v\": [1, 2]}", "{\"v\": {\"$lt\": [1, 3]}}", 1},
      {"{\"v\": [1, 2]}", "{\"v\": {\"$gt\": [1]}}", 1},
      {"{\"v\": [1, 2]}", "{\"v\": {\"$gte\": [1, 2.0]}}", 1},
      {"{\"v\": [1, \"a\"]}", "{\"v\": {\"$gt\": [1, 2]}}", 0},
      {"{\"v\": [1, \"a\"]}", "{\"v\": {\"$lt\": [1, 2]}}", 0},
      {"{\"v\": [null, 2]}", "{\"v\": {\"$lt\": [null, 3]}}", 1},
      {"{\"v\": [2]}", "{\"v\": {\"$gt\": 1}}", 0},
      {"{\"o\": {\"a\": 1}}", "{\"o\": {\"$gt\": {\"a\": 0}}}", 0},
      {"{\"o\": {\"a\": 1}}", "{\"o\": {\"$gte\": {\"a\": 1}}}", 0},
      {"{\"b\": true}", "{\"b\": {\"$gt\": \"a\"}}", 0},
  };
  RUN(a);
}

/* $and, $or, $not, nesting, several keys, {} and NULL metadata. */
static void test_logic(void **state) {
  (void)state;
  static const char *zNested = "{\"$or\": [{\"$and\": [{\"a\": 1}, {\"b\": {\"$gt\": 5}}]}, "
                               "{\"$not\": {\"c\": {\"$in\": [\"x\", \"y\"]}}}]}";
  const Case a[] = {
      {"{\"page\": 1, \"s\": \"a\"}", "{\"$and\": [{\"page\": 1}, {\"s\": \"a\"}]}", 1},
      {"{\"page\": 1, \"s\": \"b\"}", "{\"$and\": [{\"page\": 1}, {\"s\": \"a\"}]}", 0},
      {"{\"page\": 2}", "{\"$or\": [{\"page\": 1}, {\"page\": 2}]}", 1},
      {"{\"page\": 3}", "{\"$or\": [{\"page\": 1}, {\"page\": 2}]}", 0},
      {"{\"page\": 3}", "{\"$and\": []}", 1},
      {"{\"page\": 3}", "{\"$or\": []}", 0},
      {"{\"page\": 3}", "{\"$and\": [{}]}", 1},
      {"{\"page\": 3}", "{\"$or\": [{}]}", 1},
      {"{\"page\": 1}", "{\"$not\": {\"page\": 1}}", 0},
      {"{\"page\": 2}", "{\"$not\": {\"page\": 1}}", 1},
      {"{}", "{\"$not\": {\"page\": 1}}", 1},
      {"{\"page\": 1}", "{\"$not\": {}}", 0},
      {"{\"page\": 1}", "{\"$not\": {\"$not\": {\"page\": 1}}}", 1},
      {"{\"a\": 1, \"b\": 6, \"c\": \"x\"}", zNested, 1},
      {"{\"a\": 1, \"b\": 5, \"c\": \"x\"}", zNested, 0},
      {"{\"a\": 2, \"c\": \"z\"}", zNested, 1},
      {"{\"a\": 2, \"c\": \"y\"}", zNested, 0},
      {"{\"a\": 1, \"b\": \"6\", \"c\": \"y\"}", zNested, 0},
      /* Several keys in one object are ANDed, $and/$or/$not included. */
      {"{\"page\": 1, \"s\": \"a\"}", "{\"page\": 1, \"s\": \"a\"}", 1},
      {"{\"page\": 1}", "{\"page\": 1, \"s\": \"a\"}", 0},
      {"{\"page\": 1, \"s\": \"a\"}", "{\"$or\": [{\"page\": 1}], \"s\": \"a\"}", 1},
      {"{\"page\": 1, \"s\": \"b\"}", "{\"$or\": [{\"page\": 1}], \"s\": \"a\"}", 0},
      {"{\"page\": 1, \"s\": \"a\"}", "{\"$and\": [{\"page\": 1}], \"$not\": {\"s\": \"a\"}}", 0},
      /* {} matches everything; NULL metadata is {}. */
      {"{}", "{}", 1},
      {"{\"page\": 1}", "{}", 1},
      {0, "{}", 1},
      {0, "{\"page\": null}", 1},
      {0, "{\"page\": 1}", 0},
      {0, "{\"page\": {\"$nin\": [1]}}", 1},
  };
  RUN(a);
}

/* Deep nesting parses (the limit is 2000 levels, SQLite's json_valid() limit is higher than Python's). */
static void test_deep_nesting(void **state) {
  (void)state;
  char *zMeta = sqlite3_mprintf("{\"v\": 1}");
  char *zFilter = 0;
  /* 500 nested $not: an even count is the identity. */
  sqlite3_str *pStr = sqlite3_str_new(0);
  for (int i = 0; i < 500; i++) sqlite3_str_appendall(pStr, "{\"$not\": ");
  sqlite3_str_appendall(pStr, "{\"v\": 1}");
  for (int i = 0; i < 500; i++) sqlite3_str_appendall(pStr, "}");
  zFilter = sqlite3_str_finish(pStr);
  Case a[] = {{zMeta, zFilter, 1}, {"{\"v\": 2}", zFilter, 0}};
  RUN(a);
  sqlite3_free(zFilter);
  sqlite3_free(zMeta);
  /* Nested arrays in metadata compared deeply. */
  pStr = sqlite3_str_new(0);
  sqlite3_str_appendall(pStr, "{\"v\": ");
  for (int i = 0; i < 300; i++) sqlite3_str_appendall(pStr, "[");
  for (int i = 0; i < 300; i++) sqlite3_str_appendall(pStr, "]");
  sqlite3_str_appendall(pStr, "}");
  zMeta = sqlite3_str_finish(pStr);
  pStr = sqlite3_str_new(0);
  sqlite3_str_appendall(pStr, "{\"v\": {\"$eq\": ");
  for (int i = 0; i < 300; i++) sqlite3_str_appendall(pStr, "[");
  for (int i = 0; i < 300; i++) sqlite3_str_appendall(pStr, "]");
  sqlite3_str_appendall(pStr, "}}");
  zFilter = sqlite3_str_finish(pStr);
  Case b[] = {{zMeta, zFilter, 1}, {"{\"v\": [[]]}", zFilter, 0}};
  RUN(b);
  sqlite3_free(zFilter);
  sqlite3_free(zMeta);
  /* Beyond the limit: an error, not a crash. */
  pStr = sqlite3_str_new(0);
  for (int i = 0; i < 3000; i++) sqlite3_str_appendall(pStr, "[");
  for (int i = 0; i < 3000; i++) sqlite3_str_appendall(pStr, "]");
  char *zDeep = sqlite3_str_finish(pStr);
  char *zSql = sqlite3_mprintf("SELECT vecstore_filter('{\"v\": %s}', '{}')", zDeep);
  tu_expect_error(g_db, zSql, "vecstore: ", "metadata must be a JSON object", "nested too deeply", (char *)0);
  sqlite3_free(zSql);
  sqlite3_free(zDeep);
}

/* Every error: unsupported operators anywhere, wrong operand kinds, non-object or malformed arguments. */
static void test_errors(void **state) {
  (void)state;
  static const struct {
    const char *zSql;
    const char *zFrag1, *zFrag2;
  } a[] = {
      {"SELECT vecstore_filter('{}', '{\"$foo\": 1}')", "unsupported operator", "$foo"},
      {"SELECT vecstore_filter('{}', '{\"$and\": [{\"$bar\": 1}]}')", "unsupported operator", "$bar"},
      {"SELECT vecstore_filter('{}', '{\"$not\": {\"$or\": [{\"$baz\": 1}]}}')", "unsupported operator", "$baz"},
      {"SELECT vecstore_filter('{}', '{\"$eq\": 1}')", "unsupported operator", "$eq"},
      {"SELECT vecstore_filter('{}', '{\"$in\": [1]}')", "unsupported operator", "$in"},
      {"SELECT vecstore_filter('{}', '{\"page\": {\"$like\": \"a\"}}')", "unsupported operator", "$like"},
      {"SELECT vecstore_filter('{}', '{\"page\": {\"$ne\": 1}}')", "unsupported operator", "$ne"},
      {"SELECT vecstore_filter('{}', '{\"page\": {\"x\": 1}}')", "unsupported operator", "\"x\""},
      {"SELECT vecstore_filter('{}', '{\"page\": {\"$and\": [{\"a\": 1}]}}')", "unsupported operator", "$and"},
      {"SELECT vecstore_filter('{}', '{\"page\": {\"$eq\": 1, \"$regex\": \"a\"}}')", "unsupported operator",
       "$regex"},
      {"SELECT vecstore_filter('{}', '{\"$and\": {\"a\": 1}}')", "$and expects an array of filter objects",
       "received a JSON object"},
      {"SELECT vecstore_filter('{}', '{\"$or\": [1]}')", "$or expects an array of filter objects",
       "holding a JSON number"},
      {"SELECT vecstore_filter('{}', '{\"$or\": [[{\"a\": 1}]]}')", "$or expects an array", "holding a JSON array"},
      {"SELECT vecstore_filter('{}', '{\"$and\": null}')", "$and expects an array", "received JSON null"},
      {"SELECT vecstore_filter('{}', '{\"$not\": [{\"a\": 1}]}')", "$not expects a filter object",
       "received a JSON array"},
      {"SELECT vecstore_filter('{}', '{\"$not\": true}')", "$not expects a filter object", "received JSON true"},
      {"SELECT vecstore_filter('{}', '{\"page\": {\"$in\": \"abc\"}}')", "$in on field \"page\" expects an array",
       "received a JSON string"},
      {"SELECT vecstore_filter('{}', '{\"page\": {\"$nin\": 3}}')", "$nin on field \"page\" expects an array",
       "received a JSON number"},
      {"SELECT vecstore_filter('{}', NULL)", "filter must be a JSON object", "received NULL"},
      {"SELECT vecstore_filter('{}', '[1]')", "filter must be a JSON object", "received a JSON array: [1]"},
      {"SELECT vecstore_filter('{}', '\"x\"')", "filter must be a JSON object", "received a JSON string"},
      {"SELECT vecstore_filter('{}', 'null')", "filter must be a JSON object", "received JSON null"},
      {"SELECT vecstore_filter('{}', 5)", "filter must be a JSON object", "received the integer 5"},
      {"SELECT vecstore_filter('{}', 2.5)", "filter must be a JSON object", "received the real 2.5"},
      {"SELECT vecstore_filter('{}', x'7b7d')", "filter must be a JSON object", "received a blob"},
      {"SELECT vecstore_filter('{}', 'not json')", "filter must be a JSON object", "malformed JSON"},
      {"SELECT vecstore_filter('{}', '{\"a\": 1,}')", "filter must be a JSON object", "malformed JSON"},
      {"SELECT vecstore_filter('{}', '')", "filter must be a JSON object", "unexpected end of text"},
      {"SELECT vecstore_filter('[1, 2]', '{}')", "metadata must be a JSON object", "received a JSON array: [1, 2]"},
      {"SELECT vecstore_filter('3', '{}')", "metadata must be a JSON object", "received a JSON number: 3"},
      {"SELECT vecstore_filter('nope', '{}')", "metadata must be a JSON object", "malformed JSON"},
      {"SELECT vecstore_filter(3.5, '{}')", "metadata must be a JSON object", "received the real 3.5"},
      {"SELECT vecstore_filter(7, '{}')", "metadata must be a JSON object", "received the integer 7"},
      {"SELECT vecstore_filter(x'7b7d', '{}')", "metadata must be a JSON object", "received a blob"},
      {"SELECT vecstore_filter('{\"a\": 01}', '{}')", "metadata must be a JSON object", "malformed JSON (expected"},
      {"SELECT vecstore_filter('{\"a\": 1.}', '{}')", "metadata must be a JSON object", "invalid number"},
      {"SELECT vecstore_filter('{\"a\": 1} x', '{}')", "metadata must be a JSON object", "after the value"},
      {"SELECT vecstore_filter('{\"a\": \"\\x\"}', '{}')", "metadata must be a JSON object", "invalid escape"},
      {"SELECT vecstore_filter('{\"a\": \"' || char(9) || '\"}', '{}')", "metadata must be a JSON object",
       "control character"},
      {"SELECT vecstore_filter('{\"a\": tru}', '{}')", "metadata must be a JSON object", "malformed JSON"},
      {"SELECT vecstore_filter('{a: 1}', '{}')", "metadata must be a JSON object", "expected a string key"},
      {"SELECT vecstore_filter('{\"a\": 1', '{}')", "metadata must be a JSON object", "expected ',' or '}'"},
  };
  for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
    tu_expect_error(g_db, a[i].zSql, "vecstore: vecstore_filter: ", a[i].zFrag1, a[i].zFrag2, (char *)0);
  }
  /* The wrong number of arguments is SQLite's own error. */
  tu_expect_error(g_db, "SELECT vecstore_filter('{}')", "wrong number of arguments", (char *)0);
  /* A metadata error surfaces even when the filter is {} (metadata is always validated). */
  tu_exec(g_db, "CREATE TABLE bad(m TEXT); INSERT INTO bad VALUES ('{}'), ('[]');");
  tu_expect_error(g_db, "SELECT count(*) FROM bad WHERE vecstore_filter(m, '{}')", "metadata must be a JSON object",
                  (char *)0);
  tu_exec(g_db, "DROP TABLE bad;");
}

/* The compiled filter is cached per statement (argument 1): re-binding a different filter must take effect,
** and a filter that varies per row (a column) must be evaluated per row. */
static void test_cache_and_rows(void **state) {
  (void)state;
  tu_exec(g_db, "CREATE TABLE m(id INTEGER PRIMARY KEY, meta TEXT);"
                "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 1999) "
                "INSERT INTO m SELECT i, json_object('page', i % 10, 'even', json(CASE WHEN i % 2 = 0 THEN 'true' "
                "ELSE 'false' END), 's', printf('s%04d', i)) FROM c;");
  sqlite3_stmt *pStmt = tu_prepare(g_db, "SELECT count(*) FROM m WHERE vecstore_filter(meta, ?1)");
  static const struct {
    const char *zFilter;
    int nWant;
  } a[] = {
      {"{\"page\": 3}", 200},
      {"{\"page\": {\"$in\": [1, 2]}}", 400},
      {"{\"even\": true, \"page\": {\"$gte\": 5}}", 400},
      {"{\"$or\": [{\"page\": 0}, {\"s\": {\"$lt\": \"s0010\"}}]}", 209},
      {"{\"$not\": {\"even\": false}}", 1000},
      {"{}", 2000},
      {"{\"missing\": {\"$gt\": 0}}", 0},
      {"{\"page\": 3}", 200},
  };
  for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
    sqlite3_bind_text(pStmt, 1, a[i].zFilter, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(pStmt), SQLITE_ROW);
    if (sqlite3_column_int(pStmt, 0) != a[i].nWant) {
      fail_msg("filter %s: %d rows, expected %d", a[i].zFilter, sqlite3_column_int(pStmt, 0), a[i].nWant);
    }
    sqlite3_reset(pStmt);
  }
  sqlite3_finalize(pStmt);
  /* The filter from a column: every row of f against every row of m. */
  tu_exec(g_db, "CREATE TABLE f(id INTEGER PRIMARY KEY, flt TEXT);"
                "INSERT INTO f VALUES (1, '{\"page\": 3}'), (2, '{\"page\": {\"$lt\": 2}}'), (3, '{\"even\": true}');");
  char *z = tu_text(g_db, "SELECT group_concat(n) FROM (SELECT f.id, count(m.id) AS n FROM f LEFT JOIN m "
                          "ON vecstore_filter(m.meta, f.flt) GROUP BY f.id ORDER BY f.id)");
  assert_string_equal(z, "200,400,1000");
  sqlite3_free(z);
  /* A bad filter in one row of a column fails the statement. */
  tu_exec(g_db, "INSERT INTO f VALUES (4, '{\"$nope\": 1}');");
  tu_expect_error(g_db, "SELECT count(*) FROM f, m WHERE vecstore_filter(m.meta, f.flt)", "unsupported operator",
                  (char *)0);
  tu_exec(g_db, "DROP TABLE f;");
  /* Deterministic: usable in an index on an expression and in a partial index. Innocuous: usable from a view
  ** with trusted_schema off. */
  tu_exec(g_db, "CREATE INDEX m_page3 ON m(vecstore_filter(meta, '{\"page\": 3}'));"
                "CREATE INDEX m_even ON m(id) WHERE vecstore_filter(meta, '{\"even\": true}');");
  assert_int_equal(tu_int(g_db, "SELECT count(*) FROM m WHERE vecstore_filter(meta, '{\"page\": 3}') = 1"), 200);
  assert_int_equal(tu_int(g_db, "SELECT count(*) FROM m WHERE vecstore_filter(meta, '{\"even\": true}') AND id < 10"),
                   5);
  tu_exec(g_db, "PRAGMA trusted_schema = OFF;"
                "CREATE VIEW mv AS SELECT id FROM m WHERE vecstore_filter(meta, '{\"page\": {\"$gt\": 7}}');");
  assert_int_equal(tu_int(g_db, "SELECT count(*) FROM mv"), 400);
  tu_exec(g_db, "DROP VIEW mv; PRAGMA trusted_schema = ON; DROP TABLE m;");
}

/* Inside a search: WHERE embedding MATCH ? AND vecstore_filter(metadata, ...) LIMIT 2 gives the 2 nearest rows
** that match, in distance order, even when the matching rows are the farthest ones. */
static void test_search(void **state) {
  (void)state;
  tu_exec(g_db, "CREATE VIRTUAL TABLE t USING vecstore(dim = 2);"
                "INSERT INTO t(id, content, metadata, embedding) VALUES"
                " ('a', 'A', '{\"page\": 2}', '[0.1, 0]'),"
                " ('b', 'B', '{\"page\": 1}', '[0.2, 0]'),"
                " ('c', 'C', '{\"page\": 2}', '[0.3, 0]'),"
                " ('d', 'D', '{\"page\": 1.0}', '[0.4, 0]'),"
                " ('e', 'E', '{\"page\": 1}', '[0.5, 0]'),"
                " ('f', 'F', NULL, '[0.05, 0]');");
  sqlite3_stmt *pStmt =
      tu_prepare(g_db, "SELECT id FROM t WHERE embedding MATCH ? AND vecstore_filter(metadata, '{\"page\": 1}') LIMIT 2");
  static const float aQuery[2] = {0.0f, 0.0f};
  sqlite3_bind_blob(pStmt, 1, aQuery, sizeof(aQuery), SQLITE_STATIC);
  const char *azWant[] = {"b", "d"};
  int n = 0;
  while (sqlite3_step(pStmt) == SQLITE_ROW) {
    assert_true(n < 2);
    assert_string_equal((const char *)sqlite3_column_text(pStmt, 0), azWant[n]);
    n++;
  }
  assert_int_equal(n, 2);
  sqlite3_finalize(pStmt);
  char *z = tu_text(g_db, "SELECT group_concat(id) FROM (SELECT id FROM t WHERE embedding MATCH '[0, 0]' "
                          "AND vecstore_filter(metadata, '{\"$or\": [{\"page\": 2}, {\"page\": null}]}') LIMIT 3)");
  assert_string_equal(z, "f,a,c");
  sqlite3_free(z);
  /* LangChain's similarity_search(filter=..., fetch_k=3): only the 3 nearest rows (f, a, b) are candidates. */
  z = tu_text(g_db, "SELECT group_concat(id) FROM (SELECT id FROM t WHERE embedding MATCH '[0, 0]' AND fetch_k = 3 "
                    "AND vecstore_filter(metadata, '{\"page\": 1}') LIMIT 4)");
  assert_string_equal(z, "b");
  sqlite3_free(z);
  tu_exec(g_db, "DROP TABLE t;");

  /* 600 random 8-dimensional rows; page 1 only on every 50th row: the filtered search must equal a brute-force
  ** ranking of the matching rows. */
  enum { N = 600, D = 8 };
  static float aVec[N][D];
  uint64_t seed = 20240611;
  tu_exec(g_db, "CREATE VIRTUAL TABLE r USING vecstore(dim = 8);");
  sqlite3_stmt *pIns = tu_prepare(g_db, "INSERT INTO r(rowid, id, metadata, embedding) VALUES (?1, ?2, ?3, ?4)");
  tu_exec(g_db, "BEGIN");
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < D; j++) aVec[i][j] = (float)(tu_rand_unit(&seed) * 2.0 - 1.0);
    char zId[16], zMeta[64];
    snprintf(zId, sizeof(zId), "r%d", i);
    snprintf(zMeta, sizeof(zMeta), "{\"page\": %d, \"tag\": \"%s\"}", i % 50 == 7 ? 1 : 2, i % 3 ? "x" : "y");
    sqlite3_bind_int(pIns, 1, i + 1);
    sqlite3_bind_text(pIns, 2, zId, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(pIns, 3, zMeta, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(pIns, 4, aVec[i], sizeof(aVec[i]), SQLITE_STATIC);
    if (sqlite3_step(pIns) != SQLITE_DONE) fail_msg("insert %d: %s", i, sqlite3_errmsg(g_db));
    sqlite3_reset(pIns);
  }
  sqlite3_finalize(pIns);
  tu_exec(g_db, "COMMIT");
  sqlite3_stmt *pSearch = tu_prepare(g_db, "SELECT rowid FROM r WHERE embedding MATCH ?1 AND "
                                           "vecstore_filter(metadata, ?2) LIMIT ?3");
  static const char *azFilter[] = {"{\"page\": 1}", "{\"page\": 1, \"tag\": \"y\"}", "{\"tag\": {\"$in\": [\"y\"]}}"};
  for (int q = 0; q < 5; q++) {
    float aQ[D];
    for (int j = 0; j < D; j++) aQ[j] = (float)(tu_rand_unit(&seed) * 2.0 - 1.0);
    for (int iF = 0; iF < 3; iF++) {
      /* Brute force: matching rows by increasing squared L2 distance (ties by rowid). */
      int aIdx[N], nMatch = 0;
      double aDist[N];
      for (int i = 0; i < N; i++) {
        int bPage1 = i % 50 == 7, bTagY = i % 3 == 0;
        int bMatch = iF == 0 ? bPage1 : iF == 1 ? (bPage1 && bTagY) : bTagY;
        if (!bMatch) continue;
        double d = 0;
        for (int j = 0; j < D; j++) d += ((double)aVec[i][j] - aQ[j]) * ((double)aVec[i][j] - aQ[j]);
        int k = nMatch++;
        while (k > 0 && (aDist[k - 1] > d)) {
          aDist[k] = aDist[k - 1];
          aIdx[k] = aIdx[k - 1];
          k--;
        }
        aDist[k] = d;
        aIdx[k] = i;
      }
      int nLimit = iF == 2 ? 10 : 2;
      assert_true(nMatch >= nLimit);
      sqlite3_bind_blob(pSearch, 1, aQ, sizeof(aQ), SQLITE_STATIC);
      sqlite3_bind_text(pSearch, 2, azFilter[iF], -1, SQLITE_STATIC);
      sqlite3_bind_int(pSearch, 3, nLimit);
      int nGot = 0;
      while (sqlite3_step(pSearch) == SQLITE_ROW) {
        int iRow = sqlite3_column_int(pSearch, 0) - 1;
        assert_true(nGot < nLimit);
        if (iRow != aIdx[nGot]) {
          fail_msg("query %d filter %s: row %d is r%d, expected r%d", q, azFilter[iF], nGot, iRow, aIdx[nGot]);
        }
        nGot++;
      }
      assert_int_equal(nGot, nLimit);
      sqlite3_reset(pSearch);
    }
  }
  sqlite3_finalize(pSearch);
  tu_exec(g_db, "DROP TABLE r;");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_equality),       cmocka_unit_test(test_membership),
      cmocka_unit_test(test_long_lists),
      cmocka_unit_test(test_operators),      cmocka_unit_test(test_ordering_types),
      cmocka_unit_test(test_logic),          cmocka_unit_test(test_deep_nesting),
      cmocka_unit_test(test_errors),         cmocka_unit_test(test_cache_and_rows),
      cmocka_unit_test(test_search),
  };
  return cmocka_run_group_tests_name("filter", tests, setup, teardown);
}
