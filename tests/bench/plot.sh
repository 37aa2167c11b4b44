#!/usr/bin/env bash
# `make bench-plot`: recall@10 against median latency for each approximate index and engine of the last run
# (the "curves" of build/bench.json), drawn with gnuplot into a PNG. Installs Debian's gnuplot-nox when missing.
# Usage: plot.sh build/bench.json build/bench.png
set -eu
cd "$(dirname "$0")/../.."
json=${1:-build/bench.json}
png=${2:-build/bench.png}
[ -f "$json" ] || { echo "bench-plot: $json not found; run make bench first" >&2; exit 1; }
if ! command -v gnuplot >/dev/null 2>&1; then
  echo "bench-plot: installing gnuplot-nox (Debian package)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# One data file per (index, engine) curve, and the gnuplot plot clauses that draw them.
python3 - "$json" "$dir" <<'PY'
import json, sys, os
data = json.load(open(sys.argv[1]))
out = sys.argv[2]
curves = {}
for p in data.get("curves", []):
    if p["recall"] is None or p["median_ms"] is None:
        continue
    curves.setdefault((p["index"], p["engine"]), []).append(p)
clauses = []
for i, ((index, engine), pts) in enumerate(sorted(curves.items())):
    f = os.path.join(out, "c%d.dat" % i)
    with open(f, "w") as fh:
        for p in sorted(pts, key=lambda p: p["value"]):
            fh.write("%g %g %s=%d\n" % (p["median_ms"], p["recall"], p["param"], p["value"]))
    title = "%s: %s" % (index, engine)
    clauses.append("'%s' using 1:2 with linespoints title '%s'" % (f, title.replace("'", "")))
    clauses.append("'%s' using 1:2:3 with labels offset 0.6,0.6 font ',7' notitle" % f)
with open(os.path.join(out, "plot.gp"), "w") as fh:
    fh.write("plot " + ", \\\n  ".join(clauses) + "\n" if clauses else "")
m = data.get("machine", {})
with open(os.path.join(out, "title.txt"), "w") as fh:
    fh.write("recall@10 vs latency (%s scale; %s CPUs, %s)" % (data.get("scale"), m.get("nproc"), m.get("cpu", "")))
PY
[ -s "$dir/plot.gp" ] || { echo "bench-plot: no curves in $json" >&2; exit 1; }
gnuplot <<GP
set terminal pngcairo size 1200,800 noenhanced
set output '$png'
set title "$(cat "$dir/title.txt")"
set xlabel 'median single-query latency (ms, one thread, log scale)'
set ylabel 'recall@10'
set logscale x
set grid
set key bottom right
set yrange [*:1.01]
load '$dir/plot.gp'
GP
echo "bench-plot: wrote $png" >&2
