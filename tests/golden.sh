#!/usr/bin/env bash
# Runs one golden SQL script through the sqlite3 shell on a fresh database file and compares its output with the
# .expected file: standard output, then a "-- stderr --" line, then the error messages. Scripts run from the
# repository root, and read their data from tests/data. -init /dev/null: the user's ~/.sqliterc (a .mode, .headers)
# must not change the output. GOLDEN_UPDATE=1 rewrites the .expected file instead.
set -u
script=$1
expected=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sqlite3 -init /dev/null "$dir/golden.db" < "$script" > "$dir/stdout.txt" 2> "$dir/stderr.txt"
{ cat "$dir/stdout.txt"; echo "-- stderr --"; cat "$dir/stderr.txt"; } > "$dir/actual.txt"
if [ "${GOLDEN_UPDATE:-0}" = 1 ]; then cp "$dir/actual.txt" "$expected"; exit 0; fi
if ! diff -u "$expected" "$dir/actual.txt"; then
  echo "golden test $script: output differs from $expected (diff above)"
  exit 1
fi
