# Crash safety (issue 6): tests/crash/crash_harness.c SIGKILLs a vecstore writer at random points, in WAL and
# rollback-journal modes, on Flat, HNSW and IVF tables, and checks the file after every kill.
#   make crash                         run it (CRASH_SECONDS=48 spread over the series by default)
#   CRASH_SECONDS=1200 make crash      run longer; CRASH_ITERATIONS=N: N kills per series
#   CRASH_SERIES=wal-hnsw,rollback-ivf make crash; CRASH_SEED=<hex>; CRASH_VERBOSE=1; CRASH_KEEP=1
CRASH_BIN := $(BUILD)/crash/crash_harness

$(CRASH_BIN): tests/crash/crash_harness.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -o $@ $< -lsqlite3 -lm

.PHONY: crash crash-harness
crash-harness: $(CRASH_BIN)

crash: $(BUILD)/vecstore.so $(CRASH_BIN)
	@$(CRASH_BIN)
