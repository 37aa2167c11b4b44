#!/usr/bin/env bash
# make help lists every target (run by make test; under a second): each .PHONY target of the Makefile and of
# tests/mk/*.mk must start a line of `make help`. Prints one line; exits non-zero naming the missing targets.
set -u
cd "$(dirname "$0")/.."
help=$(make -s --no-print-directory help 2>&1) || { echo "check_help: make help failed: $(echo $help | cut -c1-160)"; exit 1; }
phony=$(make -qp help 2>/dev/null | sed -n 's/^\.PHONY: //p' | tr ' ' '\n' | sed '/^$/d' | sort -u)
[ -n "$phony" ] || { echo "check_help: found no .PHONY targets in make's database"; exit 1; }
missing=()
for t in $phony; do
  grep -qE "^  $t( |$)" <<<"$help" || missing+=("$t")
done
[ ${#missing[@]} -eq 0 ] || { echo "check_help: make help does not list: ${missing[*]}"; exit 1; }
echo "check_help: make help lists all $(echo $phony | wc -w) targets"
