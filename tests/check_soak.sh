#!/usr/bin/env bash
# Concurrency soak test (tests/soak/soak.c): 3 processes x 3 threads, one connection each, on one WAL file for
# SOAK_SECONDS (default 30); then a shorter run (SOAK_SECONDS * 2/5) on a rollback-journal file with a 10 ms
# busy timeout, where COMMIT itself returns SQLITE_BUSY. Every read is checked against the committed ledger,
# and the file from a fresh connection at the end. Fails on any error other than a retried SQLITE_BUSY, an
# inconsistent read, a crash or a hang.
set -u
cd "$(dirname "$0")/.."
make -s soak-bin >/dev/null || { echo "soak: build failed"; exit 1; }
secs=${SOAK_SECONDS:-30}
build/soak/soak "$secs" "${SOAK_PROCS:-3}" "${SOAK_THREADS:-3}" || exit 1
SOAK_JOURNAL=DELETE SOAK_BUSY_MS=10 build/soak/soak "$(awk -v s="$secs" 'BEGIN { print s * 2 / 5 }')" \
  "${SOAK_PROCS:-3}" "${SOAK_THREADS:-3}"
