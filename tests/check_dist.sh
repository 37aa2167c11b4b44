#!/usr/bin/env bash
# make dist (run by make test). About 3 s when build/dist is up to date, 10 to 30 s when it relinks.
#  - `ldd build/dist/vecstore.so` lists glibc's own libraries only (libc, libm, libpthread, libdl, librt,
#    ld-linux, linux-vdso);
#  - its only defined dynamic symbol is sqlite3_vecstore_init (what it imports from glibc is not exported);
#  - copied alone into an empty temporary directory, it loads in the sqlite3 shell (LD_LIBRARY_PATH unset) and
#    answers a small vector search (Flat, then after switching to HNSW32), reports a Faiss error as an SQL error
#    (C++ exceptions inside the static libstdc++), and loads in /usr/bin/python3;
#  - the tarball holds exactly vecstore.so (the same bytes), README.md, LICENSE and licenses/.
# VECSTORE_DIST_SO=path checks another shared object instead (make dist still runs); e.g. build/vecstore.so,
# which links OpenBLAS and libgomp dynamically, fails the first check.
# Prints one line; exits non-zero with a one-line reason on failure.
set -u
cd "$(dirname "$0")/.."
fail() { echo "check_dist: $*"; exit 1; }
start=$SECONDS
mkdir -p build
log=build/check_dist.log
make -s dist >"$log" 2>&1 || fail "make dist failed: $(grep -v '^vecstore:' "$log" | tail -n 1 | cut -c1-200) (see $log)"
version=$(sed -n 's/^#define VECSTORE_VERSION "\(.*\)"/\1/p' ext/vecstore_int.h)
name=vecstore-$version-linux-x86_64
tarball=build/dist/$name.tar.gz
so=${VECSTORE_DIST_SO:-build/dist/vecstore.so}
[ -f "$so" ] || fail "$so is missing after make dist"

# 1. Only glibc's libraries.
ldd_out=$(ldd "$so" 2>&1) || fail "ldd $so failed: $(echo $ldd_out | cut -c1-160)"
others=$(echo "$ldd_out" | awk '{print $1}' | grep -vxE 'linux-vdso\.so\.1|(/lib64/|/lib/x86_64-linux-gnu/)?ld-linux-x86-64\.so\.2|lib(c|m|pthread|dl|rt)\.so\.[0-9]+' | sort -u)
[ -z "$others" ] || fail "ldd $so lists libraries other than glibc's: $(echo $others)"

# 2. Exports.
exports=$(nm -D --defined-only "$so" | awk 'NF >= 3 {print $3}' | sort -u)
[ "$exports" = sqlite3_vecstore_init ] || fail "$so exports more than sqlite3_vecstore_init: $(echo $exports | cut -c1-200)"
glibc=$(objdump -T "$so" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -n 1)

# 3. Load and search from an empty directory.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$so" "$tmp/vecstore.so"
expected="$version
a|0.0
c|0.25
a|0.0
c|0.25"
out=$(cd "$tmp" && env -u LD_LIBRARY_PATH sqlite3 :memory: '.load ./vecstore' 'select vecstore_version()' \
  'CREATE VIRTUAL TABLE t USING vecstore(dim=2)' \
  "INSERT INTO t(id, embedding) VALUES ('a', '[1,0]'), ('b', '[0,1]'), ('c', '[0.5,0]')" \
  "SELECT id, distance FROM t WHERE embedding MATCH '[1,0]' AND k = 2" \
  "INSERT INTO t(t) VALUES ('index=HNSW32')" \
  "SELECT id, distance FROM t WHERE embedding MATCH '[1,0]' AND k = 2" 2>&1)
[ "$out" = "$expected" ] || fail "load and search in sqlite3 gave: $(echo $out | cut -c1-200)"
out=$(cd "$tmp" && env -u LD_LIBRARY_PATH sqlite3 :memory: '.load ./vecstore' 'CREATE VIRTUAL TABLE t USING vecstore(dim=2)' \
  "INSERT INTO t(t) VALUES ('index=Bogus,Flat')" 2>&1)
case $out in
  *"could not parse index string"*) ;;
  *) fail "a Faiss exception did not come back as an SQL error: $(echo $out | cut -c1-200)" ;;
esac
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3) || fail "no python3"
out=$(cd "$tmp" && env -u LD_LIBRARY_PATH "$py" -c '
import sqlite3
c = sqlite3.connect(":memory:")
c.enable_load_extension(True)
c.load_extension("./vecstore")
print(c.execute("select vecstore_version()").fetchone()[0])' 2>&1)
[ "$out" = "$version" ] || fail "python3 load_extension(\"./vecstore\") gave: $(echo $out | tail -c 160)"

# 4. The tarball.
[ -f "$tarball" ] || fail "$tarball is missing after make dist"
listing=$(tar -tzf "$tarball" | sed 's#/$##' | sort)
want=$(printf '%s\n' "$name" "$name/LICENSE" "$name/README.md" "$name/vecstore.so" "$name/licenses" \
  "$name/licenses/README" "$name/licenses/Faiss-LICENSE" "$name/licenses/OpenBLAS-copyright" \
  "$name/licenses/LAPACK-copyright" "$name/licenses/GCC-runtime-copyright" "$name/licenses/GPL-3" | sort)
missing=$(comm -23 <(echo "$want") <(echo "$listing"))
extra=$(comm -13 <(echo "$want") <(echo "$listing"))
[ -z "$missing" ] || fail "$tarball lacks: $(echo $missing)"
[ -z "$extra" ] || fail "$tarball holds unexpected files: $(echo $extra | cut -c1-200)"
tar -xzOf "$tarball" "$name/vecstore.so" | cmp -s - "$so" || fail "the vecstore.so in $tarball is not $so"
for f in licenses/Faiss-LICENSE licenses/GCC-runtime-copyright; do
  [ -n "$(tar -xzOf "$tarball" "$name/$f")" ] || fail "$name/$f is empty"
done
tar -xzOf "$tarball" "$name/licenses/GCC-runtime-copyright" | grep -q 'GCC RUNTIME LIBRARY EXCEPTION' \
  || fail "$name/licenses/GCC-runtime-copyright lacks the GCC Runtime Library Exception"

size=$(( $(stat -c %s "$so") / 1048576 ))
echo "check_dist: $so (${size} MB) needs glibc only (up to $glibc), exports sqlite3_vecstore_init only, loads and searches from an empty directory; $tarball complete ($((SECONDS - start)) s)"
