#!/usr/bin/env bash
# Fuzz regression check (run by make test): builds the fuzz targets of tests/fuzz/ (libFuzzer + ASan/UBSan with
# clang; without a working libFuzzer, gcc + tests/fuzz/replay_main.c, with gcc's sanitizers when it has them)
# and runs every file of tests/fuzz/corpus/<target>/ and tests/fuzz/regressions/<target>/ through its target
# once. Any crash, sanitizer report, leak or violated invariant fails the check; every failing input is named.
# About 15 s on 2 cores once built (the first libFuzzer build takes about 20-60 s more).
#   FUZZ_CHECK_SECONDS=N   also fuzz each target for N seconds (libFuzzer builds; new inputs go to build/fuzz/scratch)
#   FUZZ_CHECK_MODE=replay force the gcc replay build
set -u
cd "$(dirname "$0")/.."
mkdir -p build/fuzz
targets=(vector filter create split sql)
mode=${FUZZ_CHECK_MODE:-}
if [ -z "$mode" ]; then
  mode=replay
  if command -v clang >/dev/null 2>&1 &&
     printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' |
       clang -fsanitize=fuzzer,address,undefined -x c - -o /dev/null 2>/dev/null; then
    mode=libfuzzer
  fi
fi
if [ "$mode" = libfuzzer ]; then
  bindir=build/fuzz
  make -s fuzz-build >build/check_fuzz_build.log 2>&1 || { tail -20 build/check_fuzz_build.log; echo "check_fuzz: build failed"; exit 1; }
else
  bindir=build/fuzz/replay
  make -s fuzz-replay-build >build/check_fuzz_build.log 2>&1 || { tail -20 build/check_fuzz_build.log; echo "check_fuzz: replay build failed"; exit 1; }
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:max_allocation_size_mb=2048}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/lsan.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
total=0
failed=()
for t in "${targets[@]}"; do
  files=()
  for d in "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t"; do
    [ -d "$d" ] || continue
    for f in "$d"/*; do [ -f "$f" ] && files+=("$f"); done
  done
  [ ${#files[@]} -gt 0 ] || continue
  total=$((total + ${#files[@]}))
  log=build/fuzz/check-$t.log
  : >"$log"
  # One process for all the inputs; after a failing input, a new process goes on with the ones after it.
  bad=0
  while [ ${#files[@]} -gt 0 ]; do
    { timeout 600 "$bindir/fuzz_$t" "${files[@]}" >build/fuzz/check-run.log 2>&1; } 2>/dev/null && rc=0 || rc=$?
    cat build/fuzz/check-run.log >>"$log"
    [ $rc -eq 0 ] && break
    bad=1
    last=$(grep -aE '^(Running|replay): ' build/fuzz/check-run.log | tail -1 | sed -E 's/^(Running|replay): //; s/ \([0-9]+ bytes\)$//')
    echo "check_fuzz: fuzz_$t failed on $last"
    grep -aE 'invariant violated|ERROR: |runtime error' build/fuzz/check-run.log | head -2 | cut -c1-200 | sed 's/^/    /'
    rest=()
    seen=0
    for f in "${files[@]}"; do
      [ $seen = 1 ] && rest+=("$f")
      [ "$f" = "$last" ] && seen=1
    done
    [ $seen = 1 ] || break # the failure came before any input ran
    files=(${rest[@]+"${rest[@]}"})
  done
  if [ $bad = 1 ]; then
    failed+=("$t")
    continue
  fi
  if [ "$mode" = libfuzzer ] && [ "${FUZZ_CHECK_SECONDS:-0}" -gt 0 ]; then
    mkdir -p "build/fuzz/scratch/$t" "build/fuzz/artifacts/$t"
    if ! "$bindir/fuzz_$t" -max_total_time="$FUZZ_CHECK_SECONDS" -timeout=20 -rss_limit_mb=2048 \
         -artifact_prefix="build/fuzz/artifacts/$t/" "build/fuzz/scratch/$t" "tests/fuzz/corpus/$t" >>"$log" 2>&1; then
      failed+=("$t (fuzzing)")
      echo "check_fuzz: fuzzing fuzz_$t found a crash (see build/fuzz/artifacts/$t/ and $log)"
    fi
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "check_fuzz: FAILED (${failed[*]}; $mode build; logs build/fuzz/check-<target>.log)"
  exit 1
fi
echo "check_fuzz: $total corpus and regression inputs replayed through ${#targets[@]} targets ($mode build)"
