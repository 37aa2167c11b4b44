#!/usr/bin/env bash
# README examples (run by make test): every sqlite3 transcript, Python and Node.js example in README.md is run
# against build/vecstore.so and must print exactly what the README shows (tests/readme_examples.py says which
# blocks count and how). The first run installs better-sqlite3 12 with npm into build/node/ (about 2 min on 2 cores
# where npm compiles it from source); a failed install fails the check; without node or npm the Node.js examples
# are skipped with a NOTE. About 2 s once better-sqlite3 is installed.
set -u
cd "$(dirname "$0")/.."
make -s build/vecstore.so >/dev/null || { echo "readme: build failed"; exit 1; }
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3) || { echo "readme: python3 is missing"; exit 1; }
"$py" tests/readme_examples.py README.md
