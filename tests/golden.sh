#!/usr/bin/env bash
# Runs one golden SQL script through the sqlite3 shell on a fresh database file and compares its output
# (stdout and stderr) with the .expected file. Scripts run from the repository root.
set -u
script=$1
expected=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
actual="$dir/actual.txt"
sqlite3 -bail "$dir/golden.db" < "$script" > "$actual" 2>&1
if ! diff -u "$expected" "$actual"; then
  echo "golden test $script: output differs from $expected (diff above)"
  exit 1
fi
