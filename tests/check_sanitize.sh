#!/usr/bin/env bash
# Sanitizer check (run by make test): builds the extension and the cmocka suites with clang's AddressSanitizer and
# UndefinedBehaviorSanitizer (tests/mk/sanitize.mk, build/asan/) and runs every suite against the sanitized
# extension, with leak detection. Any failed test or sanitizer report (memory error, undefined behaviour, leak
# not justified in tests/lsan.supp) fails the check. Without clang or its sanitizer runtime it prints a note and
# passes (the gcc build is still tested by the rest of make test). About 1.5 to 3 minutes on 2 cores.
#   SANITIZE_CHECK_ALL=1   also run the golden SQL scripts and the Python smoke test under the sanitizers
#                          (the same as `make sanitize`).
set -u
cd "$(dirname "$0")/.."
cc=${SANITIZE_CC:-clang}
if ! command -v "$cc" >/dev/null 2>&1 || ! command -v "${SANITIZE_CXX:-clang++}" >/dev/null 2>&1; then
  echo "check_sanitize: NOTE: clang not found, sanitizer build not tested (make deps installs it)"
  exit 0
fi
# -print-file-name echoes the bare name back when the file does not exist.
rt=$("$cc" -print-file-name=libclang_rt.asan-x86_64.a)
if [ "${rt#/}" = "$rt" ] || [ ! -f "$rt" ]; then
  echo "check_sanitize: NOTE: clang's sanitizer runtime (libclang-rt-dev) is missing, sanitizer build not tested"
  exit 0
fi
mkdir -p build
log=build/check_sanitize_build.log
if ! make -s sanitize-build >"$log" 2>&1; then
  tail -n 30 "$log"
  echo "check_sanitize: sanitizer build failed (log: $log)"
  exit 1
fi
target=sanitize-unit
[ "${SANITIZE_CHECK_ALL:-0}" = 1 ] && target=sanitize
make -s --no-print-directory "$target"
