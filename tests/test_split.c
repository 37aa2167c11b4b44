/* vecstore_split(text, chunk_size [, chunk_overlap [, separator]]): LangChain's CharacterTextSplitter through
** real SQL on a real database file. Expected chunks were computed by hand from LangChain's
** TextSplitter._merge_splits / CharacterTextSplitter.split_text (the first six cases are LangChain's own unit
** tests of CharacterTextSplitter). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define g_db tu_db
#define g_zPath tu_fixture_path()

/* Each test gets a fresh database file. */
static int setup(void **state) {
  (void)state;
  return tu_fixture_open("split");
}

static int teardown(void **state) {
  (void)state;
  return tu_fixture_close();
}

/* Characters (code points) of UTF-8 text. */
static int utf8_len(const char *z) {
  int n = 0;
  for (; *z; z++) n += ((unsigned char)*z & 0xC0) != 0x80;
  return n;
}

/* Runs vecstore_split(zText, nSize, nOverlap, zSep) (nOverlap < 0 / zSep == 0: argument left out) and asserts
** the rows are exactly azWant[0..nWant) with chunk_index 0, 1, ... */
static void expect_chunks(const char *zText, int nSize, int nOverlap, const char *zSep, const char *const *azWant,
                          int nWant) {
  const char *zSql = zSep ? "SELECT chunk_index, chunk FROM vecstore_split(?1, ?2, ?3, ?4)"
                     : nOverlap >= 0 ? "SELECT chunk_index, chunk FROM vecstore_split(?1, ?2, ?3)"
                                     : "SELECT chunk_index, chunk FROM vecstore_split(?1, ?2)";
  sqlite3_stmt *pStmt = tu_prepare(g_db, zSql);
  sqlite3_bind_text(pStmt, 1, zText, -1, SQLITE_STATIC);
  sqlite3_bind_int(pStmt, 2, nSize);
  if (nOverlap >= 0 || zSep) sqlite3_bind_int(pStmt, 3, nOverlap >= 0 ? nOverlap : 0);
  if (zSep) sqlite3_bind_text(pStmt, 4, zSep, -1, SQLITE_STATIC);
  int n = 0, rc;
  while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    const char *zGot = (const char *)sqlite3_column_text(pStmt, 1);
    if (n >= nWant) fail_msg("split('%s', %d, %d): extra chunk %d '%s'", zText, nSize, nOverlap, n, zGot);
    assert_int_equal(sqlite3_column_int(pStmt, 0), n);
    if (strcmp(zGot, azWant[n]) != 0) {
      fail_msg("split('%s', %d, %d): chunk %d is '%s', expected '%s'", zText, nSize, nOverlap, n, zGot, azWant[n]);
    }
    n++;
  }
  if (rc != SQLITE_DONE) fail_msg("split('%s', %d, %d): %s", zText, nSize, nOverlap, sqlite3_errmsg(g_db));
  if (n != nWant) fail_msg("split('%s', %d, %d): %d chunks, expected %d", zText, nSize, nOverlap, n, nWant);
  sqlite3_finalize(pStmt);
}

#define CHUNKS(...) (const char *const[]){__VA_ARGS__}, (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))
#define NO_CHUNKS (const char *const *)0, 0

/* LangChain's own unit tests of CharacterTextSplitter (separator " "). */
static void test_langchain_cases(void **state) {
  (void)state;
  expect_chunks("foo bar baz 123", 7, 3, " ", CHUNKS("foo bar", "bar baz", "baz 123"));
  expect_chunks("foo  bar", 2, 0, " ", CHUNKS("foo", "bar"));
  expect_chunks("f b", 2, 0, " ", CHUNKS("f", "b"));
  expect_chunks("foo bar baz a a", 3, 1, " ", CHUNKS("foo", "bar", "baz", "a a"));
  expect_chunks("a a foo bar baz", 3, 1, " ", CHUNKS("a a", "foo", "bar", "baz"));
  expect_chunks("foo bar baz 123", 1, 1, " ", CHUNKS("foo", "bar", "baz", "123"));
}

/* The default separator "\n\n" and default overlap 0; empty pieces between repeated separators vanish and
** the kept pieces are joined with one separator. */
static void test_defaults(void **state) {
  (void)state;
  expect_chunks("a\n\nb\n\nc", 3, -1, 0, CHUNKS("a", "b", "c"));
  expect_chunks("a\n\nb\n\nc", 4, -1, 0, CHUNKS("a\n\nb", "c"));
  expect_chunks("a\n\nb\n\nc", 8, -1, 0, CHUNKS("a\n\nb\n\nc"));
  expect_chunks("\n\na\n\n\n\nb\n\n", 10, -1, 0, CHUNKS("a\n\nb"));
  expect_chunks("single line\nwith a newline", 5, -1, 0, CHUNKS("single line\nwith a newline"));
  /* 2-argument and 3-argument forms written literally, and the hidden columns with defaults applied. */
  assert_int_equal(tu_int(g_db, "SELECT count(*) FROM vecstore_split('a' || char(10,10) || 'b', 1)"), 2);
  assert_int_equal(tu_int(g_db, "SELECT count(*) FROM vecstore_split('a b c', 3, 1)"), 1);
  char *z = tu_text(g_db, "SELECT text || '|' || chunk_size || '|' || chunk_overlap || '|' || hex(separator) "
                          "FROM vecstore_split('x y', 5)");
  assert_string_equal(z, "x y|5|0|0A0A");
  sqlite3_free(z);
  z = tu_text(g_db, "SELECT chunk_overlap || '|' || separator FROM vecstore_split('x y', 5, 2, ' ')");
  assert_string_equal(z, "2| ");
  sqlite3_free(z);
  /* NULL overlap and separator take the defaults. */
  z = tu_text(g_db, "SELECT group_concat(chunk, '|') FROM vecstore_split('a b' || char(10,10) || 'c', 3, NULL, NULL)");
  assert_string_equal(z, "a b|c");
  sqlite3_free(z);
  /* rowid is chunk_index. */
  assert_int_equal(tu_int(g_db, "SELECT sum(rowid = chunk_index) FROM vecstore_split('a b c d', 1, 0, ' ')"), 4);
}

/* The overlap rule of _merge_splits, including an overlap equal to chunk_size. */
static void test_overlap(void **state) {
  (void)state;
  expect_chunks("a b c d e f g h", 5, 2, " ", CHUNKS("a b c", "c d e", "e f g", "g h"));
  expect_chunks("a b c d", 3, 3, " ", CHUNKS("a b", "b c", "c d"));
  expect_chunks("one||two||three||four", 12, 0, "||", CHUNKS("one||two", "three||four"));
  expect_chunks("one||two||three||four", 12, 5, "||", CHUNKS("one||two", "two||three", "three||four"));
  expect_chunks("abcdef", 4, 2, "", CHUNKS("abcd", "cdef"));
}

/* A piece longer than chunk_size becomes a chunk of its own (LangChain only logs a warning), with and
** without overlap. */
static void test_overlong_piece(void **state) {
  (void)state;
  expect_chunks("aa\n\nbbbbbbbbbb\n\ncc", 5, 0, "\n\n", CHUNKS("aa", "bbbbbbbbbb", "cc"));
  expect_chunks("aa\n\nbbbbbbbbbb\n\ncc", 5, 2, "\n\n", CHUNKS("aa", "bbbbbbbbbb", "cc"));
  expect_chunks("a\n\nb\n\ncccccccc\n\nd\n\ne", 6, 3, "\n\n", CHUNKS("a\n\nb", "cccccccc", "d\n\ne"));
  expect_chunks("abcdefghij", 3, 0, " ", CHUNKS("abcdefghij"));
  expect_chunks("a\xc3\xa9" "b\xe6\x97\xa5" "c", 2, 0, "\xc3\xa9", CHUNKS("a", "b\xe6\x97\xa5" "c"));
}

/* Lengths count characters, not bytes: 'é' is 2 bytes, '日' 3, an emoji 4, and separators count too. */
static void test_multibyte(void **state) {
  (void)state;
  /* "é é" is 3 characters (5 bytes): a byte count would give four chunks. */
  expect_chunks("\xc3\xa9 \xc3\xa9 \xc3\xa9 \xc3\xa9", 3, 0, " ", CHUNKS("\xc3\xa9 \xc3\xa9", "\xc3\xa9 \xc3\xa9"));
  /* 日本語 (3) + \n\n (2) + テキスト (4) = 9 characters, 23 bytes. */
  const char *zJa = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\n\n\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88\n\n"
                    "\xe5\x88\x86\xe5\x89\xb2";
  expect_chunks(zJa, 7, 0, "\n\n",
                CHUNKS("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88",
                       "\xe5\x88\x86\xe5\x89\xb2"));
  expect_chunks(zJa, 9, 0, "\n\n",
                CHUNKS("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\n\n\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88",
                       "\xe5\x88\x86\xe5\x89\xb2"));
  /* Emoji (U+1F600): "😀😀 😀😀" is 5 characters, 17 bytes. */
  const char *zEmoji = "\xf0\x9f\x98\x80\xf0\x9f\x98\x80 \xf0\x9f\x98\x80\xf0\x9f\x98\x80 \xf0\x9f\x98\x80\xf0\x9f\x98\x80";
  expect_chunks(zEmoji, 5, 0, " ",
                CHUNKS("\xf0\x9f\x98\x80\xf0\x9f\x98\x80 \xf0\x9f\x98\x80\xf0\x9f\x98\x80",
                       "\xf0\x9f\x98\x80\xf0\x9f\x98\x80"));
  expect_chunks(zEmoji, 5, 2, " ",
                CHUNKS("\xf0\x9f\x98\x80\xf0\x9f\x98\x80 \xf0\x9f\x98\x80\xf0\x9f\x98\x80",
                       "\xf0\x9f\x98\x80\xf0\x9f\x98\x80 \xf0\x9f\x98\x80\xf0\x9f\x98\x80"));
  /* A multi-byte separator "日本" counts 2 characters. */
  expect_chunks("x\xe6\x97\xa5\xe6\x9c\xacy\xe6\x97\xa5\xe6\x9c\xacz", 3, 1, "\xe6\x97\xa5\xe6\x9c\xac",
                CHUNKS("x", "y", "z"));
  assert_int_equal(tu_int(g_db, "SELECT max(length(chunk)) FROM vecstore_split('日本語' || char(10,10) || "
                                "'テキスト' || char(10,10) || '分割', 9)"),
                   9);
}

/* An empty separator splits into characters (code points, never inside a UTF-8 sequence). */
static void test_empty_separator(void **state) {
  (void)state;
  expect_chunks("abcdef", 4, 0, "", CHUNKS("abcd", "ef"));
  expect_chunks("ab  cd", 3, 0, "", CHUNKS("ab", "cd"));
  expect_chunks("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x83\x86\xe3\x82\xad", 2, 1, "",
                CHUNKS("\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x9c\xac\xe8\xaa\x9e", "\xe8\xaa\x9e\xe3\x83\x86",
                       "\xe3\x83\x86\xe3\x82\xad"));
  expect_chunks("\xf0\x9f\x98\x80\xc3\xa9x", 1, 0, "", CHUNKS("\xf0\x9f\x98\x80", "\xc3\xa9", "x"));
}

/* Chunks are stripped of Python whitespace (including U+3000, U+00A0, \r, \t) but not of U+200B, which
** Python does not treat as whitespace; chunks that strip to nothing are dropped. */
static void test_strip(void **state) {
  (void)state;
  expect_chunks("  a  \n\n\xe3\x80\x80" "b\xc2\xa0\n\n \t ", 3, 0, "\n\n", CHUNKS("a", "b"));
  expect_chunks("\xe2\x80\x8bx\n\ny\xe2\x80\x8b", 10, 0, "\n\n", CHUNKS("\xe2\x80\x8bx\n\ny\xe2\x80\x8b"));
  expect_chunks("a\r\n\r\nb\r\n", 3, 0, "\r\n", CHUNKS("a", "b"));
  expect_chunks(" a \xe2\x80\xa8\xe2\x80\x83", 10, 0, "\n\n", CHUNKS("a"));
  expect_chunks("", 5, 0, "\n\n", NO_CHUNKS);
  expect_chunks("\n\n\n\n", 5, 0, "\n\n", NO_CHUNKS);
  expect_chunks("   ", 5, 0, "\n\n", NO_CHUNKS);
  expect_chunks("a b", 1, 0, "", CHUNKS("a", "b"));
}

/* NULL text gives no rows; numbers are split as their text; blobs as UTF-8 text (readfile()). */
static void test_value_types(void **state) {
  (void)state;
  assert_int_equal(tu_int(g_db, "SELECT count(*) FROM vecstore_split(NULL, 5)"), 0);
  char *z = tu_text(g_db, "SELECT group_concat(chunk, '|') FROM vecstore_split(12345, 2, 0, '3')");
  assert_string_equal(z, "12|45");
  sqlite3_free(z);
  z = tu_text(g_db, "SELECT group_concat(chunk, '|') FROM vecstore_split(CAST('a b c' AS BLOB), 1, 0, ' ')");
  assert_string_equal(z, "a|b|c");
  sqlite3_free(z);
  /* Integral reals are accepted as sizes. */
  assert_int_equal(tu_int(g_db, "SELECT count(*) FROM vecstore_split('a b c', 1.0, 0.0, ' ')"), 3);
}

/* Every argument error, with "vecstore: " and what was expected and received. */
static void test_errors(void **state) {
  (void)state;
  tu_expect_error(g_db, "SELECT * FROM vecstore_split('abc', 0)", "vecstore: ", "chunk_size",
                  "positive integer", "received 0", (char *)0);
  tu_expect_error(g_db, "SELECT * FROM vecstore_split('abc', -3)", "vecstore: ", "positive integer", "received -3",
                  (char *)0);
  tu_expect_error(g_db, "SELECT * FROM vecstore_split('abc', 2.5)", "vecstore: ", "positive integer",
                  "received 2.5", (char *)0);
  tu_expect_error(g_db, "SELECT * FROM vecstore_split('abc', '10')", "vecstore: ", "positive integer",
                  "received text '10'", (char *)0);
  tu_expect_error(g_db, "SELECT * FROM vecstore_split('abc', NULL)", "vecstore: ", "chunk_size",
                  "received NULL", (char *)0);
  tu_expect_error(g_db, "SELECT * FROM vecstore_split('abc', x'00')", "vecstore: ", "chunk_size",
                  "received a blob", (char *)0);
  tu_expect_error(g_db, "SELECT * FROM vecstore_split('abc', 5, -1)", "vecstore: ", "chunk_overlap",
                  "non-negative integer", "received -1", (char *)0);
  tu_expect_error(g_db, "SELECT * FROM vecstore_split('abc', 5, 0.5)", "vecstore: ", "chunk_overlap",
                  "received 0.5", (char *)0);
  tu_expect_error(g_db, "SELECT * FROM vecstore_split('abc', 5, 'x')", "vecstore: ", "chunk_overlap",
                  "received text 'x'", (char *)0);
  tu_expect_error(g_db, "SELECT * FROM vecstore_split('abc', 5, 6)", "vecstore: ",
                  "Got a larger chunk overlap (6) than chunk size (5), should be smaller.", (char *)0);
  /* Errors are raised even when the text is NULL. */
  tu_expect_error(g_db, "SELECT * FROM vecstore_split(NULL, 0)", "vecstore: ", "positive integer", (char *)0);
  tu_expect_error(g_db, "SELECT * FROM vecstore_split", "vecstore: ", "vecstore_split(text, chunk_size",
                  "received no text argument", (char *)0);
  tu_expect_error(g_db, "SELECT * FROM vecstore_split('abc')", "vecstore: ", "received no chunk_size argument",
                  (char *)0);
  tu_expect_error(g_db, "SELECT * FROM vecstore_split('a', 1, 0, ' ', 9)", "too many arguments", (char *)0);
  /* Eponymous only: no CREATE VIRTUAL TABLE. */
  char *zErr = tu_exec_error(g_db, "CREATE VIRTUAL TABLE s USING vecstore_split");
  sqlite3_free(zErr);
  assert_int_equal(tu_int(g_db, "SELECT count(*) FROM sqlite_schema WHERE name = 's'"), 0);
}

/* Named hidden-column constraints, joins with a table (arguments from the outer row), and feeding chunks
** into a vecstore table with the built-in embedder. */
static void test_sql_forms(void **state) {
  (void)state;
  char *z = tu_text(g_db, "SELECT group_concat(chunk, '|') FROM vecstore_split "
                          "WHERE text = 'a b c' AND chunk_size = 3 AND separator = ' '");
  assert_string_equal(z, "a b|c");
  sqlite3_free(z);
  tu_exec(g_db, "CREATE TABLE src(id INTEGER PRIMARY KEY, body TEXT);"
                "INSERT INTO src VALUES (1, 'one two three'), (2, NULL), (3, 'x y');");
  z = tu_text(g_db, "SELECT group_concat(id || ':' || chunk_index || ':' || chunk, ',') FROM "
                    "(SELECT s.id, c.chunk_index, c.chunk FROM src s, vecstore_split(s.body, 7, 0, ' ') c "
                    "ORDER BY s.id, c.chunk_index)");
  assert_string_equal(z, "1:0:one two,1:1:three,3:0:x y");
  sqlite3_free(z);
  /* The join also works with the table-valued function written first (SQLite must reorder the loops). */
  assert_int_equal(tu_int(g_db, "SELECT count(*) FROM vecstore_split(src.body, 3, 0, ' ') c JOIN src"), 4);
  tu_exec(g_db, "CREATE VIRTUAL TABLE chunks USING vecstore(dim = 16, embedder = hash);"
                "INSERT INTO chunks(id, content, metadata) SELECT s.id || '-' || c.chunk_index, c.chunk, "
                "json_object('src', s.id, 'chunk', c.chunk_index) FROM src s, vecstore_split(s.body, 7, 0, ' ') c;");
  assert_int_equal(tu_int(g_db, "SELECT count(*) FROM chunks"), 3);
  z = tu_text(g_db, "SELECT content FROM chunks WHERE id = '1-1'");
  assert_string_equal(z, "three");
  sqlite3_free(z);
  tu_exec(g_db, "DROP TABLE chunks; DROP TABLE src;");
  /* Usable from a view with trusted_schema off (the module is innocuous). */
  tu_exec(g_db, "PRAGMA trusted_schema = OFF;"
                "CREATE VIEW v AS SELECT chunk FROM vecstore_split('p q r', 1, 0, ' ');");
  assert_int_equal(tu_int(g_db, "SELECT count(*) FROM v"), 3);
  tu_exec(g_db, "DROP VIEW v; PRAGMA trusted_schema = ON;");
}

/* Reads tests/data/state_of_the_union.txt (malloc'd, NUL-terminated). */
static char *read_sotu(void) {
  const char *zPath = tu_data_path("state_of_the_union.txt");
  FILE *f = fopen(zPath, "rb");
  if (!f) fail_msg("cannot open %s", zPath);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *z = malloc((size_t)n + 1);
  if (fread(z, 1, (size_t)n, f) != (size_t)n) fail_msg("short read %s", zPath);
  z[n] = 0;
  fclose(f);
  return z;
}

/* LangChain's documented result: CharacterTextSplitter(chunk_size=1000, chunk_overlap=0) gives 42 chunks of
** state_of_the_union.txt; their lengths in characters are checked one by one (the file has non-ASCII
** characters, 38540 characters in 39028 bytes, so byte counting would differ). */
static void test_state_of_the_union(void **state) {
  (void)state;
  static const int aLen[42] = {939, 995, 959, 947, 976, 951, 954, 982, 893, 916, 885, 974, 929, 985,
                               926, 988, 873, 842, 855, 936, 904, 946, 913, 954, 967, 895, 913, 984,
                               930, 847, 832, 787, 915, 986, 913, 897, 903, 995, 886, 988, 939, 410};
  char *zText = read_sotu();
  assert_int_equal(utf8_len(zText), 38540);
  sqlite3_stmt *pStmt = tu_prepare(g_db, "SELECT chunk_index, chunk FROM vecstore_split(?1, 1000, 0)");
  sqlite3_bind_text(pStmt, 1, zText, -1, SQLITE_STATIC);
  int n = 0, rc;
  while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    const char *zChunk = (const char *)sqlite3_column_text(pStmt, 1);
    assert_true(n < 42);
    assert_int_equal(sqlite3_column_int(pStmt, 0), n);
    if (utf8_len(zChunk) != aLen[n]) fail_msg("chunk %d has %d characters, expected %d", n, utf8_len(zChunk), aLen[n]);
    if (n == 0) assert_true(strncmp(zChunk, "Madam Speaker, Madam Vice President, our First Lady", 51) == 0);
    if (n == 41) {
      const char *zEnd = "May God bless you all. May God protect our troops.";
      assert_string_equal(zChunk + strlen(zChunk) - strlen(zEnd), zEnd);
    }
    n++;
  }
  assert_int_equal(rc, SQLITE_DONE);
  assert_int_equal(n, 42);
  sqlite3_finalize(pStmt);
  free(zText);
}

/* Other settings on the same text: chunk count and total characters, and the size rule: a chunk longer than
** chunk_size (in characters) is always a single piece (it contains no separator). */
static void test_state_of_the_union_settings(void **state) {
  (void)state;
  static const struct {
    int nSize, nOverlap;
    const char *zSep;
    int nChunk, nTotalChars, nOverlong;
  } aCase[] = {
      {1000, 0, "\n\n", 42, 38409, 0}, {1000, 200, "\n\n", 49, 45426, 0}, {200, 0, "\n\n", 254, 37710, 13},
      {500, 100, "\n", 94, 40815, 0},  {300, 50, " ", 154, 45608, 0},     {100, 20, "", 482, 47938, 0},
      {64, 0, ". ", 446, 36879, 256},
  };
  char *zText = read_sotu();
  sqlite3_stmt *pStmt = tu_prepare(g_db, "SELECT count(*), sum(length(chunk)), "
                                         "sum(length(chunk) > ?2), sum(length(chunk) > ?2 AND instr(chunk, ?4) > 0) "
                                         "FROM vecstore_split(?1, ?2, ?3, ?4)");
  for (size_t i = 0; i < sizeof(aCase) / sizeof(aCase[0]); i++) {
    sqlite3_bind_text(pStmt, 1, zText, -1, SQLITE_STATIC);
    sqlite3_bind_int(pStmt, 2, aCase[i].nSize);
    sqlite3_bind_int(pStmt, 3, aCase[i].nOverlap);
    sqlite3_bind_text(pStmt, 4, aCase[i].zSep, -1, SQLITE_STATIC);
    if (sqlite3_step(pStmt) != SQLITE_ROW) fail_msg("case %d: %s", (int)i, sqlite3_errmsg(g_db));
    int nChunk = sqlite3_column_int(pStmt, 0), nChars = sqlite3_column_int(pStmt, 1);
    int nOver = sqlite3_column_int(pStmt, 2), nOverWithSep = sqlite3_column_int(pStmt, 3);
    if (nChunk != aCase[i].nChunk || nChars != aCase[i].nTotalChars || nOver != aCase[i].nOverlong) {
      fail_msg("split(sotu, %d, %d, '%s'): %d chunks, %d chars, %d over-long; expected %d, %d, %d", aCase[i].nSize,
               aCase[i].nOverlap, aCase[i].zSep, nChunk, nChars, nOver, aCase[i].nChunk, aCase[i].nTotalChars,
               aCase[i].nOverlong);
    }
    /* With an empty separator instr() is 1 everywhere, but no chunk is over-long then. */
    assert_int_equal(nOverWithSep, 0);
    sqlite3_reset(pStmt);
  }
  sqlite3_finalize(pStmt);
  free(zText);
}

/* A large input: 200,000 one-character pieces with the empty separator stream through without trouble. */
static void test_large(void **state) {
  (void)state;
  assert_int_equal(tu_int(g_db, "SELECT count(*) FROM vecstore_split(replace(hex(zeroblob(100000)), '0', 'ab'), "
                                "1000, 100, '')"),
                   (400000 - 100) / 900 + 1);
  assert_int_equal(tu_int(g_db, "SELECT sum(length(chunk) = 1000) FROM vecstore_split("
                                "replace(hex(zeroblob(100000)), '0', 'ab'), 1000, 100, '')"),
                   (400000 - 100) / 900);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_langchain_cases),   cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_overlap),           cmocka_unit_test(test_overlong_piece),
      cmocka_unit_test(test_multibyte),         cmocka_unit_test(test_empty_separator),
      cmocka_unit_test(test_strip),             cmocka_unit_test(test_value_types),
      cmocka_unit_test(test_errors),            cmocka_unit_test(test_sql_forms),
      cmocka_unit_test(test_state_of_the_union), cmocka_unit_test(test_state_of_the_union_settings),
      cmocka_unit_test(test_large),
  };
  return cmocka_run_group_tests_name("split", tests, setup, teardown);
}
