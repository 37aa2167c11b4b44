#!/usr/bin/env bash
# Runs one golden SQL script through the sqlite3 shell on a fresh database file and compares its output with the
# .expected file: standard output, then a "-- stderr --" line, then the error messages. Scripts run from the
# repository root. GOLDEN_UPDATE=1 rewrites the .expected file instead.
set -u
script=$1
expected=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Scripts name the shared data as ../shared/data (true beside the clone); VECSTORE_DATA points elsewhere.
sed "s#'\.\./shared/data/#'${VECSTORE_DATA:-../shared/data}/#g" "$script" |
  sqlite3 "$dir/golden.db" > "$dir/stdout.txt" 2> "$dir/stderr.txt"
{ cat "$dir/stdout.txt"; echo "-- stderr --"; cat "$dir/stderr.txt"; } > "$dir/actual.txt"
if [ "${GOLDEN_UPDATE:-0}" = 1 ]; then cp "$dir/actual.txt" "$expected"; exit 0; fi
if ! diff -u "$expected" "$dir/actual.txt"; then
  echo "golden test $script: output differs from $expected (diff above)"
  exit 1
fi
