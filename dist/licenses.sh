#!/usr/bin/env bash
# Collects the licence texts of what build/dist/vecstore.so links statically into OUTDIR (make dist).
#   dist/licenses.sh OUTDIR FAISS_DIR FAISS_DEB_VERSION CACHE_DIR
# Faiss: the LICENSE of its source package (saved beside the Faiss build since the progress-printing build rule; for
# an older cache it is read once from the Debian source package and kept in CACHE_DIR). OpenBLAS, LAPACK and the GCC
# runtime libraries: the copyright files of the Debian packages the static archives come from, and GPL-3.
# Fails naming the missing text: a tarball without one of them must not be produced.
set -euo pipefail
out=$1 faiss_dir=$2 faiss_deb=$3 cache=$4
mkdir -p "$out"
need() { # source file, destination name
  [ -s "$1" ] || { echo "dist/licenses.sh: missing licence text $1" >&2; exit 1; }
  cp "$1" "$out/$2"
}

faiss_license=
for f in "$faiss_dir/LICENSE" "$cache/faiss-${faiss_deb%-*}-LICENSE"; do
  if [ -s "$f" ]; then faiss_license=$f; break; fi
done
if [ -z "$faiss_license" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if (cd "$tmp" && apt-get source --download-only -qq "faiss=$faiss_deb" >/dev/null 2>&1); then
    orig=$(ls "$tmp"/faiss_*.orig.tar.* 2>/dev/null | head -n 1)
    [ -n "$orig" ] && tar -xOf "$orig" --wildcards 'faiss-*/LICENSE' > "$tmp/LICENSE" 2>/dev/null || true
  fi
  [ -s "$tmp/LICENSE" ] || { echo "dist/licenses.sh: cannot find the Faiss LICENSE (not in $faiss_dir, and apt-get source faiss=$faiss_deb failed)" >&2; exit 1; }
  mkdir -p "$cache" && cp "$tmp/LICENSE" "$cache/faiss-${faiss_deb%-*}-LICENSE"
  faiss_license=$tmp/LICENSE
fi
need "$faiss_license" Faiss-LICENSE
need /usr/share/doc/libopenblas0-pthread/copyright OpenBLAS-copyright
need /usr/share/doc/liblapack3/copyright LAPACK-copyright
need /usr/share/doc/libstdc++6/copyright GCC-runtime-copyright
need /usr/share/common-licenses/GPL-3 GPL-3

version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
cat > "$out/README" <<TXT
vecstore.so contains, linked statically, the following third-party code; each file here is its licence.

  Faiss-LICENSE          Faiss ${faiss_deb%-*} (MIT), from its source package (Debian faiss $faiss_deb)
  OpenBLAS-copyright     OpenBLAS, Debian's pthread build $(version libopenblas-pthread-dev) (BSD-3-clause);
                         Debian's copyright file
  LAPACK-copyright       LAPACK $(version liblapack3), built into Debian's OpenBLAS (BSD-3-clause); Debian's
                         copyright file
  GCC-runtime-copyright  libstdc++ and libgcc of GCC $(version libstdc++6) (GPL-3 with the GCC Runtime Library
                         Exception, whose text is in that file); Debian's copyright file of GCC
  GPL-3                  the GNU General Public License version 3 that the file above refers to

libgomp and libgfortran are not linked: vecstore's own dist/runtime.c (MIT, like vecstore) provides the few
OpenMP and Fortran runtime entry points that Faiss and LAPACK call.
TXT
