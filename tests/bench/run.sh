#!/usr/bin/env bash
# Driver of `make bench`: installs the peers (prebuilt sqlite-vec and sqlite-vss loadable extensions, from the npm
# registry through npm itself) into a cache outside the clone when they are missing, then runs the benchmark
# binary. A peer that cannot be installed is left out; the binary prints a note for each engine it skips.
# Usage: run.sh BENCH_BINARY   (BENCH_SCALE=small|full, PEERS_DIR, BENCH_KEEP=1 keeps the database files)
set -u
cd "$(dirname "$0")/../.."
bin=${1:-build/bench/bench}
peers=${PEERS_DIR:-$HOME/.cache/vecstore/peers}

need=()
[ -f "$peers/node_modules/sqlite-vec-linux-x64/vec0.so" ] || need+=(sqlite-vec-linux-x64@0.1.9)
[ -f "$peers/node_modules/sqlite-vss-linux-x64/lib/vss0.so" ] || need+=(sqlite-vss-linux-x64)
if [ ${#need[@]} -gt 0 ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "bench: installing peers into $peers: ${need[*]}" >&2
    mkdir -p "$peers"
    for pkg in "${need[@]}"; do
      npm install --silent --no-audit --no-fund --prefix "$peers" "$pkg" >&2 \
        || echo "bench: could not install $pkg; it will be skipped" >&2
    done
  else
    echo "bench: npm not found; the peers (${need[*]}) will be skipped" >&2
  fi
fi

mkdir -p build/bench
set -o pipefail
"$bin" --peers "$peers" --ext build/vecstore --data tests/data --dir build/bench --json build/bench.json \
  | tee build/bench.md
