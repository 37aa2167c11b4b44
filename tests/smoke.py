"""Python smoke test: Debian's python3 and its standard sqlite3 module load vecstore and use it."""
import os
import sqlite3
import struct
import sys
import tempfile

EXT = os.path.abspath(os.environ.get("VECSTORE_EXT", "build/vecstore"))


def connect(path):
    conn = sqlite3.connect(path)
    conn.enable_load_extension(True)
    conn.load_extension(EXT)
    conn.enable_load_extension(False)
    return conn


def blob(values):
    return struct.pack("<%df" % len(values), *values)


def main():
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)
            print("FAIL:", what)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "smoke.db")
        conn = connect(path)
        check(conn.execute("select vecstore_version()").fetchone()[0] == "0.1.0", "version")
        conn.execute("create virtual table docs using vecstore(dim = 10, metric = l2)")
        # LangChain's FakeEmbeddings: document i is [1]*9 + [i]; its squared L2 distance to [1]*9+[0] is i*i.
        with conn:
            for i in range(6):
                conn.execute(
                    "insert into docs(id, content, metadata, embedding) values (?, ?, json_object('page', ?), ?)",
                    (f"doc{i}", f"text {i}", i, blob([1.0] * 9 + [float(i)])),
                )
        query = blob([1.0] * 9 + [0.0])
        rows = conn.execute(
            "select id, distance, json_extract(metadata, '$.page') from docs where embedding match ? and k = 3",
            (query,),
        ).fetchall()
        check([r[0] for r in rows] == ["doc0", "doc1", "doc2"], f"knn ids {rows}")
        check([r[1] for r in rows] == [0.0, 1.0, 4.0], f"knn distances {rows}")
        cur = conn.execute("insert into docs(id, embedding) values ('extra', ?)", (blob([0.0] * 10),))
        check(cur.lastrowid == conn.execute("select rowid from docs where id = 'extra'").fetchone()[0], "lastrowid")
        conn.commit()
        try:
            conn.execute("insert into docs(id, embedding) values ('bad', '[1, 2]')")
            check(False, "dimension mismatch accepted")
        except sqlite3.Error as e:
            check(str(e).startswith("vecstore: ") and "10" in str(e) and "2" in str(e), f"error text {e}")
        conn.rollback()

        # A Python function as the embedder: register it, name it in embedder=.
        def toy_embed(text):
            v = [0.0] * 4
            for ch in text:
                v[ord(ch) % 4] += 1.0
            return blob(v)

        conn.create_function("toy_embed", 1, toy_embed)
        conn.execute("create virtual table notes using vecstore(dim = 4, embedder = toy_embed)")
        with conn:
            conn.executemany("insert into notes(id, content) values (?, ?)", [("a", "aaaa"), ("b", "bbbb"), ("c", "abcd")])
        best = conn.execute("select id from notes where notes match 'aaab' and k = 1").fetchone()
        check(best == ("a",), f"text search {best}")
        conn.close()

        conn = connect(path)
        rows = conn.execute("select id from docs where embedding match ? and k = 2", (query,)).fetchall()
        check(rows == [("doc0",), ("doc1",)], f"after reopen {rows}")
        conn.close()

    print("python smoke:", "ok" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
