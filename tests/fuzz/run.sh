#!/usr/bin/env bash
# make fuzz: runs each libFuzzer target given as an argument for FUZZ_SECONDS, one after another, on its
# committed corpus (tests/fuzz/corpus/<target>). New inputs go to
# $FUZZ_DIR/scratch/<target>; FUZZ_MERGE=1 then merges the ones that add edge coverage into the committed corpus.
# Crashes are written to $FUZZ_DIR/artifacts/<target>/. Exits non-zero if any target crashed.
set -u
cd "$(dirname "$0")/../.."
FUZZ_DIR=${FUZZ_DIR:-build/fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/lsan.supp}
failed=()
for t in "$@"; do
  bin=$FUZZ_DIR/fuzz_$t
  scratch=$FUZZ_DIR/scratch/$t
  artifacts=$FUZZ_DIR/artifacts/$t
  mkdir -p "$scratch" "$artifacts" "tests/fuzz/corpus/$t"
  dirs=("$scratch" "tests/fuzz/corpus/$t") # (tests/fuzz/regressions are replayed by tests/check_fuzz.sh)
  opts=(-max_total_time="$FUZZ_SECONDS" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/")
  [ -f "tests/fuzz/$t.dict" ] && opts+=(-dict="tests/fuzz/$t.dict")
  echo "fuzz: $t for ${FUZZ_SECONDS}s (log: $FUZZ_DIR/fuzz-$t.log)"
  if "$bin" "${opts[@]}" "${dirs[@]}" >"$FUZZ_DIR/fuzz-$t.log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
      "$FUZZ_DIR/fuzz-$t.log" | tr '\n' ' '
    echo
  else
    echo "fuzz: $t CRASHED; the input is in $artifacts/ and the report at the end of $FUZZ_DIR/fuzz-$t.log:"
    grep -E 'ERROR: |invariant violated|SUMMARY' "$FUZZ_DIR/fuzz-$t.log" | head -5
    failed+=("$t")
  fi
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    # Edge coverage only (-use_counters=0), so that the committed corpus stays small.
    "$bin" -merge=1 -use_counters=0 -timeout=20 -rss_limit_mb=2048 "tests/fuzz/corpus/$t" "$scratch" \
      >"$FUZZ_DIR/merge-$t.log" 2>&1 \
      && echo "fuzz: merged $t: $(ls "tests/fuzz/corpus/$t" | wc -l) corpus files" \
      || echo "fuzz: merging $t failed (see $FUZZ_DIR/merge-$t.log)"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]}"
  exit 1
fi
