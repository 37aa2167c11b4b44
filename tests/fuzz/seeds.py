#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the fuzz targets into tests/fuzz/corpus/<target>/seed-<name>.

Each seed is a meaningful input in the target's encoding (documented at the top of tests/fuzz/fuzz_<target>.c):
valid and invalid vectors, filters, CREATE arguments, split arguments and SQL operation sequences with their
edge cases. Running it again rewrites the same files; inputs libFuzzer added (hash names) are left alone.
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def f32(*vals):
    return b"".join(struct.pack("<f", v) for v in vals)


# ---------------------------------------------------------------------------------------------------------------
# fuzz_vector: byte 0 mode (bit 0 BLOB, bits 1-2 metric, bit 3 normalize, bit 4 two operands), byte 1 split.
TEXT, BLOB, IP, COS, L2 = 0, 1, 4, 6, 2
NORM, TWO = 8, 16


def vector(name, mode, payload, split=128):
    write("vector", name, bytes([mode, split]) + (payload.encode() if isinstance(payload, str) else payload))


vector("json-basic", TEXT | NORM, "[1, 2.5, -3e2]")
vector("json-spaces", TEXT | COS | NORM, " \t\n[ 1 ,2 ,\r\n3 ] \n")
vector("json-zero", TEXT | COS | NORM, "[0, -0, 0.0]")
vector("json-exponents", TEXT | IP, "[1E5, 1e-5, -2.5E+3, 0.000001e6]")
vector("json-float-max", TEXT | L2, "[3.4028235e38, -3.4028235e38, 1.17549435e-38, 1e-45]")
vector("json-overflow", TEXT, "[3.5e38]")
vector("json-underflow", TEXT, "[1e-50]")
vector("json-long-number", TEXT, "[0." + "0" * 60 + "1234567890123456789012345678901234567890]")
vector("json-many-digits", TEXT | NORM, "[3.14159265358979323846264338327950288419716939937510582097494459]")
vector("json-nan", TEXT, "[1, NaN]")
vector("json-inf", TEXT, "[-Infinity]")
vector("json-empty", TEXT, "[]")
vector("json-nested", TEXT, "[[1, 2]]")
vector("json-object", TEXT, '[{"a": 1}]')
vector("json-string", TEXT, '["1"]')
vector("json-bool", TEXT, "[true]")
vector("json-trailing-comma", TEXT, "[1,]")
vector("json-leading-zero", TEXT, "[01]")
vector("json-bare-dot", TEXT, "[1.]")
vector("json-dot-first", TEXT, "[.5]")
vector("json-bad-exponent", TEXT, "[1e]")
vector("json-plus", TEXT, "[+1]")
vector("json-unclosed", TEXT, "[1, 2")
vector("json-after", TEXT, "[1] x")
vector("json-not-array", TEXT, "{}")
vector("json-nothing", TEXT, "")
vector("json-nul-inside", TEXT, "[1,\x002]")
vector("json-utf8", TEXT, "[1, \u00e9]")
vector("json-deep", TEXT, "[" * 300 + "]" * 300)
vector("json-distance", TEXT | TWO | COS, "[1, 2][3, 4]", split=6 * 256 // 12 + 1)
vector("json-distance-l2", TEXT | TWO | L2, "[1, 0][0, 1]", split=128)
vector("json-distance-ip", TEXT | TWO | IP, "[1, 0, 2][0, 1]", split=150)
vector("json-distance-2arg", TEXT | TWO, "[5][7]", split=128)
vector("json-1000-dims", TEXT | NORM, "[" + ",".join(str(i % 7 - 3) for i in range(1000)) + "]")
vector("blob-basic", BLOB | NORM, f32(1.0, 2.5, -300.0))
vector("blob-one", BLOB | COS, f32(0.5))
vector("blob-zero", BLOB | COS | NORM, f32(0.0, -0.0))
vector("blob-denormal", BLOB | NORM | IP, f32(1e-45, -1e-40))
vector("blob-max", BLOB | L2 | NORM, f32(3.4028235e38, -3.4028235e38))
vector("blob-nan", BLOB, b"\x00\x00\xc0\x7f" + f32(1.0))
vector("blob-inf", BLOB, f32(1.0) + b"\x00\x00\x80\xff")
vector("blob-odd", BLOB, b"\x00\x00\x80\x3f\x01")
vector("blob-empty", BLOB, b"")
vector("blob-distance", BLOB | TWO | COS, f32(1.0, 0.0, 0.0, 1.0), split=128)
vector("blob-distance-mismatch", BLOB | TWO | L2, f32(1.0, 2.0, 3.0), split=90)
vector("blob-512", BLOB | NORM | IP, f32(*[float(i % 13) - 6.0 for i in range(512)]))

# ---------------------------------------------------------------------------------------------------------------
# fuzz_filter: the filter, then NUL-separated metadata texts.


def filt(name, f, *docs):
    write("filter", name, "\0".join((f,) + docs))


filt("eq", '{"page": 1}', '{"page": 1}', '{"page": 1.0}', '{"page": true}', '{"page": "1"}', "{}")
filt("ops", '{"page": {"$gt": 1, "$lte": 3}}', '{"page": 2}', '{"page": 3.5}', '{"page": "x"}', '{"page": null}')
filt("neq", '{"a": {"$neq": null}}', '{"a": null}', "{}", '{"a": 0}')
filt("logic", '{"$and": [{"a": 1}, {"$or": [{"b": 2}, {"$not": {"c": 3}}]}]}', '{"a":1,"b":2}', '{"a":1,"c":3}',
     '{"a": 1}')
filt("and-empty", '{"$and": [], "$or": []}', "{}", '{"a": 1}')
filt("shorthand-list", '{"x": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, "a", "b", null, [1], {"k": 1}, true]}',
     '{"x": 1.0}', '{"x": true}', '{"x": "b"}', '{"x": [1]}', '{"x": {"k": 1}}', '{"x": 11}', '{"x": false}', "{}")
filt("in-long", '{"x": {"$in": [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, -1, 1e300, -0.0, "z", "a", "m", ""]}}',
     '{"x": 0}', '{"x": -0}', '{"x": 1e300}', '{"x": ""}', '{"x": "m"}', '{"x": 10}', '{"x": null}')
filt("nin-long", '{"x": {"$nin": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}}', '{"x": 5}', '{"x": 5.5}', '{"y": 1}')
filt("in-short", '{"x": {"$in": ["a", 2]}, "y": {"$nin": []}}', '{"x": "a"}', '{"x": 2.0, "y": 1}')
filt("object-eq", '{"f": {"$eq": {"a": [1, 2], "b": {"c": null}}}}', '{"f": {"b": {"c": null}, "a": [1, 2.0]}}',
     '{"f": {"a": [1, 2]}}', '{"f": {"a": [1, 2], "b": {"c": null}, "d": 1}}')
filt("object-shorthand", '{"f": {}}', '{"f": 1}', "{}")
filt("unicode", '{"na\\u00efve": "\\ud83d\\ude00", "\\u0000": "\\n\\t\\"\\\\\\/"}',
     '{"na\u00efve": "\U0001F600", "\\u0000": "\\n\\t\\"\\\\/"}', '{"na\u00efve": "\\ud83d"}')
filt("lone-surrogate", '{"s": "\\udc00\\ud800"}', '{"s": "\\udc00\\ud800"}')
filt("duplicates", '{"a": 1, "a": 2}', '{"a": 2}', '{"a": 1, "a": 2}', '{"a": 2, "a": 1}')
filt("big-ints", '{"a": 9223372036854775807}', '{"a": 9223372036854775807}', '{"a": 9223372036854775808}',
     '{"a": 9.223372036854775807e18}', '{"a": 9223372036854775806}')
filt("min-int", '{"a": {"$gt": -9223372036854775808}}', '{"a": -9223372036854775809}', '{"a": -9223372036854775808}',
     '{"a": -9.3e18}')
filt("huge-number", '{"a": {"$lt": 1e400}}', '{"a": 1e308}', '{"a": -1e400}', '{"a": 123456789012345678901234567890}')
filt("array-order", '{"a": {"$lt": [1, 2]}}', '{"a": [1]}', '{"a": [1, 2, 3]}', '{"a": [0, "x"]}', '{"a": [1, "x"]}')
filt("string-order", '{"a": {"$gte": "\u00e9"}}', '{"a": "z"}', '{"a": "\u00eb"}', '{"a": "\U0001F600"}')
filt("type-mix", '{"a": {"$gt": "1"}}', '{"a": 2}', '{"a": "2"}', '{"a": [2]}', '{"a": {"b": 1}}')
filt("empty", "{}", "{}", '{"a": [1, {"b": null}]}')
filt("whitespace", ' \t\n{ "a" : 1 }\r\n', '\n{"a":1} ', '{"a" :1,"b":[ ]}')
filt("not-not", '{"$not": {"$not": {"a": {"$in": [1, 2]}}}}', '{"a": 2}', '{"a": 3}')
filt("bad-operator", '{"$foo": 1}', "{}")
filt("bad-field-operator", '{"a": {"$regex": "x"}}', "{}")
filt("bad-top-comparison", '{"$gt": 1}', "{}")
filt("bad-in", '{"f": {"$in": 1}}', "{}")
filt("bad-and", '{"$and": {"a": 1}}', "{}")
filt("bad-or-element", '{"$or": [1]}', "{}")
filt("bad-not", '{"$not": [1]}', "{}")
filt("bad-array", "[1]", "{}")
filt("bad-unclosed", '{"a": 1', "{}")
filt("bad-after", '{"a": 1}} ', "{}")
filt("bad-control", '{"a": "x\ty"}', "{}")
filt("bad-escape", '{"a": "\\x"}', "{}")
filt("bad-u-escape", '{"a": "\\u12"}', "{}")
filt("bad-number", '{"a": 01}', "{}")
filt("bad-number2", '{"a": -}', "{}")
filt("bad-number3", '{"a": 1.e5}', "{}")
filt("bad-literal", '{"a": tru}', "{}")
filt("bad-metadata", '{"a": 1}', "[1]", '"x"', "1", "nul", '{"a": 1,}', '{"a": 1}')
filt("deep-filter", '{"a": ' + "[" * 1998 + "]" * 1998 + "}", '{"a": 1}')
filt("too-deep", '{"a": ' + "[" * 2001 + "]" * 2001 + "}", "{}")
filt("deep-not", '{"$not": ' * 300 + "{}" + "}" * 300, "{}")
filt("deep-metadata", '{"a": 1}', '{"b": ' + "[" * 1500 + "]" * 1500 + "}")

# ---------------------------------------------------------------------------------------------------------------
# fuzz_create: the table name line, then the arguments.


def create(name, text):
    write("create", name, text)


create("minimal", "t\ndim=4")
create("full", "t\ndim = 4, metric = cosine, index = 'HNSW32', search_params = 'efSearch=64', embedder = hash, "
       "page INTEGER, source TEXT")
create("ivf", "t\ndim=8, index='IVF4,Flat', search_params='nprobe=2'")
create("pq", 't\ndim=8, index="PQ2x4"')
create("sq", "t\ndim=3, metric=ip, index=`SQ8`")
create("ivf-pq", "t\ndim=16, index='IVF2,PQ4x4'")
create("opq", "t\ndim=16, index='OPQ4,IVF4,PQ4'")
create("pca", "t\ndim=16, index='PCA4,Flat'")
create("lsh", "t\ndim=4, index='LSH'")
create("zero-params", "t\ndim=8, index='IVF0,PQ0x4'")
create("hnsw-m1", "t\ndim=8, index='HNSW1'")
create("idmap", "t\ndim=4, index='IDMap,Flat'")
create("hnsw-sq", "t\ndim=4, index='HNSW8,SQ8', metric=l2")
create("refine", "t\ndim=4, index='IVF2,SQ8,RFlat'")
create("bad-index", "t\ndim=4, index='Bogus17'")
create("empty-index", "t\ndim=4, index=''")
create("params-mismatch", "t\ndim=4, search_params='nprobe=4'")
create("params-bogus", "t\ndim=4, index='HNSW8', search_params='bogus=1'")
create("params-empty", "t\ndim=4, search_params=''")
create("dim-0", "t\ndim=0")
create("dim-max", "t\ndim=65536")
create("dim-over", "t\ndim=65537")
create("dim-neg", "t\ndim=-1")
create("dim-text", "t\ndim=four")
create("dim-huge", "t\ndim=99999999999999999999")
create("dim-twice", "t\ndim=4, dim=4")
create("no-dim", "t\nmetric=l2")
create("nothing", "t\n")
create("unknown", "t\ndim=4, bogus=1")
create("metric-case", "t\ndim= 4 , METRIC = L2, Index = `Flat`")
create("metric-bad", "t\ndim=4, metric=manhattan")
create("embedder-bad", 't\ndim=4, embedder="my func"')
create("embedder-fn", "t\ndim=4, embedder=lower")
create("columns-quoted", 't\ndim=4, "we""ird" TEXT, [br acket] BLOB, `tick` REAL, \'q\' INT, c5 DOUBLE, c6 FLOAT')
create("column-reserved", "t\ndim=4, id TEXT")
create("column-table-name", "t\ndim=4, t TEXT")
create("column-dup", "t\ndim=4, a INT, A TEXT")
create("column-notype", "t\ndim=4, page")
create("column-badtype", "t\ndim=4, page VARCHAR(10)")
create("column-braces", 't\ndim=4, "a{b}" TEXT')
create("columns-65", "t\ndim=1, " + ", ".join("c%d INT" % i for i in range(65)))
create("name-quote", 'we"ird name\ndim=2')
create("name-percent", "%s%n%w\ndim=2, page INTEGER")
create("name-shadow-like", "t_docs\ndim=2")
create("name-unicode", "t\u00e9\u4e2d\ndim=2, \u00e9 TEXT")
create("temp", "~tmp\ndim=3")
create("attached", "^aux\ndim=3, index='HNSW8'")
create("trailing-comma", "t\ndim=4,")
create("equals-only", "t\n=")
create("quoted-key", "t\n'dim'=4, \"metric\"='ip'")
create("unbalanced", "t\ndim=4, index='Flat")
create("parens", "t\ndim=(4), index=(Flat)")

# ---------------------------------------------------------------------------------------------------------------
# fuzz_split: byte 0 chunk_size (n % 48 + 1, 249..255 special), byte 1 overlap (% 50; 254 -1, 255 NULL/omitted),
# byte 2 separator (bits 0-2: 0..4 its length, 5 NULL, 6 omitted, 7 empty; bit 3 text as BLOB).


def split(name, size, overlap, sepcode, sep, text):
    if isinstance(sep, str):
        sep = sep.encode()
    if isinstance(text, str):
        text = text.encode()
    write("split", name, bytes([size, overlap, sepcode]) + sep + text)


sotu = ("Madam Speaker, Madam Vice President, our First Lady and Second Gentleman.\n\n"
        "Members of Congress and the Cabinet. Justices of the Supreme Court.\n\n"
        "My fellow Americans.\n\n\n\nLast year COVID-19 kept us apart. This year we are finally together again.\n\n"
        "  Tonight, we meet as Democrats Republicans and Independents.  \n\n")
split("default-sep", 79, 10, 5, b"", sotu)
split("default-omitted", 29, 0, 6, b"", sotu)
split("two-args", 29, 255, 6, b"", sotu)
split("space", 4, 2, 1, " ", "a b c d e f g h i j k")
split("chars", 2, 1, 7, b"", "h\u00e9llo w\u00f6rld \U0001F600!")
split("chars-blob", 2, 1, 7 | 8, b"", "h\u00e9llo w\u00f6rld")
split("multibyte-sep", 6, 3, 2, "\u00a7", "one\u00a7two\u00a7\u00a7three\u00a7four five six\u00a7")
split("long-sep", 9, 4, 4, "<br>", "<br>a<br><br>bb<br>ccc<br>dddd<br>")
split("unicode-space", 5, 0, 1, "\n", "\u3000 a \u2028\n b \u00a0\n\u0085c\u1680\n \u200a ")
split("all-space", 3, 0, 1, ",", " , \t,\n\n,\u3000")
split("invalid-utf8", 3, 1, 1, " ", b"\xff\xfe a\x80b \xc3 \xe2\x82 z\xf0\x9f\x98")
split("sep-invalid", 3, 0, 1, b"\x80", b"a\x80b\x80\x80c")
split("nul-bytes", 3, 0, 1, b"\x00", b"a\x00bc\x00\x00d")
split("piece-too-long", 2, 1, 1, " ", "short averyveryverylongword x y")
split("overlap-max", 4, 4, 1, " ", "a b c d e f g")
split("size-zero", 255, 0, 5, b"", "abc")
split("size-negative", 254, 0, 5, b"", "abc")
split("size-real", 253, 0, 5, b"", "abc")
split("size-null", 252, 0, 5, b"", "abc")
split("size-text", 251, 0, 5, b"", "abc")
split("size-huge", 250, 3, 5, b"", sotu)
split("size-integral-real", 249, 2, 1, " ", "a b c d e f g h")
split("overlap-negative", 9, 254, 5, b"", "abc")
split("overlap-too-big", 2, 10, 5, b"", "abc")
split("empty-text", 9, 0, 5, b"", "")
split("size-one", 0, 0, 7, b"", "abc def")

# ---------------------------------------------------------------------------------------------------------------
# fuzz_sql: setup bytes s0 (index), s1 (dim index | metric << 3), s2 (columns | embedder << 2 | storage << 3 |
# params << 5), then ops. Index and dim tables as in fuzz_sql.c.
INDEX = ["Flat", "HNSW8", "IVF2,Flat", "SQ8", "IVF2,SQ8", "PQ1x4", "HNSW4,SQ8", "LSH", "IDMap,Flat", "IVF1,PQ1x2",
         "PCA2,Flat", "HNSW8,Flat", "SQfp16", "IVF2_HNSW4,Flat", "RFlat", "Bogus"]
DIMS = [1, 2, 3, 4, 8]
MEM, FILE, WAL = 0, 1, 2


class Sql:
    def __init__(self, index="Flat", dim=4, metric=0, cols=0, embedder=0, storage=FILE, params=0):
        self.dim = dim
        self.cols = cols
        self.b = bytearray([INDEX.index(index), DIMS.index(dim) | metric << 3,
                            cols | embedder << 2 | storage << 3 | params << 5])

    def vec(self, vals, form=0):
        vals = list(vals) + [0] * (self.dim + 1 - len(vals))
        return bytes([form]) + bytes(int(v * 4) & 0xFF for v in vals[: self.dim + 1])

    def insert(self, *rows, verb=0):
        """rows: (rowid byte, id byte, content byte, metadata byte, vector values, page byte, src byte)."""
        self.b += bytes([0, verb | (len(rows) - 1) << 3])
        for r in rows:
            rowid, ident, content, meta, vals = r[:5]
            form = r[7] if len(r) > 7 else 0
            self.b += bytes([rowid, ident, content, meta]) + self.vec(vals, form)
            if self.cols >= 1:
                self.b += bytes([r[5] if len(r) > 5 else 0])
            if self.cols >= 2:
                self.b += bytes([r[6] if len(r) > 6 else 0])
        return self

    def rows(self, n, start=0, verb=0):
        for i in range(start, start + n, 3):
            # rowids 1..24 and ids 'a'..'h' first, then automatic rowids and UUIDs (255: NULL)
            chunk = [(i + j if i + j < 24 else 255, i + j if i + j < 8 else 255, (i + j) % 6, (i + j) % 4,
                      [((i + j) * 7 + d * 3) % 9 - 4 for d in range(self.dim)], i + j, i + j)
                     for j in range(min(3, start + n - i))]
            self.insert(*chunk, verb=verb)
        return self

    def update(self, kind, rowid, *arg):
        self.b += bytes([3, kind, rowid]) + bytes(arg)
        return self

    def update_vec(self, rowid, vals, form=0, kind=0):
        self.b += bytes([3, kind, rowid]) + self.vec(vals, form)
        return self

    def delete(self, kind, *arg):
        self.b += bytes([4, kind]) + bytes(arg)
        return self

    def search(self, kind, q, *arg):
        self.b += bytes([5 | kind << 4]) + bytes(int(v * 4) & 0xFF for v in (list(q) + [0] * self.dim)[: self.dim])
        self.b += bytes(arg)
        return self

    def command(self, c, *arg):
        self.b += bytes([8, c]) + bytes(arg)
        return self

    def tx(self, i):
        self.b += bytes([9, i])
        return self

    def op(self, code, *arg):
        self.b += bytes([code]) + bytes(arg)
        return self


# k byte: 1 + n % 12 for n < 249; 249 -> 0, 250 -> '3', 251 -> 2.5, 252 -> NULL, 253 -> 1e12, 254 -> -1, 255 -> max.
K = lambda k: k - 1
BEGIN, BEGIN_IMM, COMMIT, ROLLBACK, SP0, SP1, REL0, REL1, RBTO0, RBTO1 = range(10)
OPTIMIZE, REBUILD, TRAIN, CHECK, INDEX_CMD, PARAMS_CMD, BOGUS_CMD, NULL_CMD = range(8)
CONSISTENCY, REOPEN, SECOND, SCAN = 11, 12, 13, 14

for index in ["Flat", "HNSW8", "IVF2,Flat", "SQ8", "PQ1x4", "LSH", "IDMap,Flat", "PCA2,Flat", "IVF2_HNSW4,Flat"]:
    tag = index.replace(",", "-").lower()
    s = Sql(index, dim=4, storage=FILE)
    s.rows(6).search(0, [1, 0, 0, 0], K(3)).tx(BEGIN).rows(3, start=6).tx(SP0).delete(0, 2).search(0, [0, 1, 0, 0], K(12))
    s.tx(RBTO0).op(CONSISTENCY).tx(COMMIT).op(REOPEN).op(SECOND, 0).command(CHECK)
    write("sql", "basic-" + tag, bytes(s.b))
    s = Sql(index, dim=2, metric=1, storage=WAL)
    s.rows(18).command(TRAIN).op(CONSISTENCY).search(1, [1, 1], 5).command(OPTIMIZE).op(REOPEN).search(0, [0, 1], K(4))
    write("sql", "train-" + tag, bytes(s.b))

s = Sql("Flat", dim=3, metric=2, cols=2, embedder=1, storage=WAL)
s.rows(9).search(5, [1, 1, 0], 1, K(3), 0).search(5, [1, 0, 1], 2, K(5), 1).search(5, [0, 0, 1], 0, K(9), 2)
s.search(8, [0, 0, 0], 0, K(2)).search(3, [1, 2, 3], K(3), K(8), 2).search(4, [1, 0, 0], 20, K(5))
s.search(4, [1, 0, 0], 64 | 50, K(5)).search(6, [0, 1, 0], 1, 3, K(4), 1).search(6, [0, 1, 0], 250, 3, K(4), 0)
s.search(7, [1, 1, 1], 0, K(3)).search(2, [1, 0, 1], K(4), 1).op(SECOND, 0).op(REOPEN)
write("sql", "search-kinds-flat", bytes(s.b))

s = Sql("HNSW8", dim=8, metric=0, cols=1, embedder=1, storage=MEM, params=1)
s.rows(20).search(5, [1] * 8, 2, K(6), 0).search(3, [0, 1] * 4, K(4), K(10), 1).search(7, [2] * 8, 1, 255)
s.search(7, [2] * 8, 5, K(3)).search(8, [0] * 8, 2, 253).search(1, [1] * 8, 7 | 3 << 3).op(CONSISTENCY)
write("sql", "search-kinds-hnsw", bytes(s.b))

s = Sql("Flat", dim=2, storage=FILE)
s.rows(4).tx(BEGIN).rows(3, start=4).tx(SP0).update_vec(1, [3, 3]).update(2, 2, 7).tx(SP1).delete(2, 2)
s.op(CONSISTENCY).tx(RBTO1).op(CONSISTENCY).tx(REL1).update(3, 4, 20).tx(RBTO0).op(CONSISTENCY).tx(REL0)
s.op(SECOND, 0).tx(COMMIT).op(REOPEN).tx(BEGIN).delete(4).op(CONSISTENCY).tx(ROLLBACK).op(CONSISTENCY)
write("sql", "savepoints", bytes(s.b))

s = Sql("Flat", dim=2, storage=WAL)
s.insert((1, 0, 0, 0, [1, 1]), (1, 1, 1, 1, [2, 2]))  # rowid conflict inside a multi-row insert
s.insert((2, 0, 0, 0, [1, 1]), (3, 0, 1, 1, [2, 2]))  # id conflict
s.insert((1, 2, 0, 0, [1, 1]), verb=1).insert((5, 0, 0, 0, [1, 1]), verb=2).insert((1, 5, 0, 0, [0, 0]), verb=3)
s.insert((254, 0, 0, 0, [1, 1])).insert((253, 6, 0, 0, [1, 1])).insert((255, 255, 6, 255, [1, 1]))
s.insert((6, 7, 0, 4, [1, 1])).insert((7, 7, 0, 5, [1, 1])).insert((8, 254, 0, 0, [1, 1], 0, 0, 252))
s.insert((9, 3, 0, 0, [1, 1], 0, 0, 254)).insert((10, 4, 0, 0, [1, 1], 0, 0, 249)).insert((11, 4, 0, 0, [0.5, -2], 0, 0, 1))
s.op(CONSISTENCY).op(REOPEN)
write("sql", "conflicts", bytes(s.b))

s = Sql("Flat", dim=2, embedder=1, storage=FILE)
s.rows(5).tx(BEGIN).command(INDEX_CMD, 1).rows(2, start=5).search(0, [1, 0], K(7)).command(PARAMS_CMD, 0)
s.tx(ROLLBACK).op(CONSISTENCY).command(INDEX_CMD, 2).command(TRAIN).op(CONSISTENCY).command(INDEX_CMD, 15)
s.command(PARAMS_CMD, 5).command(BOGUS_CMD).command(NULL_CMD).command(REBUILD).update(4, 1, 0).op(REOPEN)
write("sql", "commands", bytes(s.b))

s = Sql("IVF2,Flat", dim=1, storage=FILE)
s.rows(9).search(0, [1], 255).search(0, [1], 253).search(0, [1], 254).search(0, [1], 252).search(0, [1], 251)
s.search(0, [1], 250).search(0, [1], 249).search(3, [1], 255, 253, 255).search(2, [0], 253, 0).op(SCAN, 3, 255)
s.op(SCAN, 0, 254).op(SCAN, 1, 3).op(SCAN, 4).op(SCAN, 2, 6).command(TRAIN).search(0, [2], 255)
write("sql", "limits", bytes(s.b))

s = Sql("HNSW8", dim=3, metric=2, storage=WAL)
s.rows(30).delete(0, 3).delete(1, 4).delete(3, 4, 4, 4).update_vec(10, [1, 1, 1], kind=6).update(3, 12, 13)
s.command(OPTIMIZE).op(SECOND, 0).delete(2, 20).op(REOPEN).delete(4).op(CONSISTENCY).rows(3, start=40)
write("sql", "deletes-hnsw", bytes(s.b))

# The second connection writes while the first keeps a cached index; both check each other.
for storage, tag in [(FILE, "journal"), (WAL, "wal")]:
    s = Sql("HNSW8" if storage == WAL else "Flat", dim=2, storage=storage)
    s.rows(5).search(0, [1, 1], K(5)).op(SECOND, 2, 0, 4, 4, 0).op(CONSISTENCY).op(SECOND, 3, 1).search(0, [0, 1], K(9))
    s.op(SECOND, 4, 1).op(CONSISTENCY).tx(BEGIN).op(SECOND, 0).rows(2, start=10).op(SECOND, 0).op(SECOND, 2, 0, 1, 1, 0)
    s.tx(COMMIT).op(SECOND, 0).op(SECOND, 4, 0).search(0, [1, 0], K(12)).op(SECOND, 5).op(CONSISTENCY).op(SECOND, 1)
    write("sql", "second-writer-" + tag, bytes(s.b))

print("seeds written under", ROOT)
