#!/usr/bin/env bash
# Runs every test: the cmocka suites given as arguments, the golden SQL scripts in sql/, and the Python smoke
# test. Prints one closing line "N passed, N failed". VALGRIND=1 runs the suites under valgrind's memcheck.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
failures=()

run_one() { # name, command...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
}

for bin in "$@"; do
  name=$(basename "$bin")
  if [ "${VALGRIND:-0}" = 1 ]; then
    VECSTORE_TEST_UNDER_VALGRIND=1 run_one "$name (valgrind)" valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
      --error-exitcode=99 --suppressions=tests/valgrind.supp "$bin"
  else
    run_one "$name" "$bin"
  fi
done

if [ "${VALGRIND:-0}" != 1 ]; then
  for script in sql/*.sql; do
    [ -e "$script" ] || continue
    expected="${script%.sql}.expected"
    [ -f "$expected" ] || continue
    run_one "golden $(basename "$script")" bash tests/golden.sh "$script" "$expected"
  done
  # Debian's own python3 (its sqlite3 module can load extensions), not another interpreter on the PATH.
  py=/usr/bin/python3
  [ -x "$py" ] || py=$(command -v python3 || true)
  if [ -n "$py" ] && [ -f tests/smoke.py ]; then
    run_one "python smoke" "$py" tests/smoke.py
  fi
  # Further checks (fuzz corpus replay, sanitizer build, crash and concurrency harnesses): each
  # tests/check_*.sh builds what it needs and exits non-zero on failure.
  for check in tests/check_*.sh; do
    [ -e "$check" ] || continue
    name=$(basename "$check" .sh)
    run_one "${name#check_}" bash "$check"
  done
fi

echo
if [ $failed -gt 0 ]; then
  printf 'FAILED: %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
