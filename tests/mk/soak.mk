# Concurrency soak test (issue 6): several processes x several threads, one connection each, on one WAL file.
#   make soak                       build and run it on a WAL file (SOAK_SECONDS, default 30; e.g. SOAK_SECONDS=300)
#   SOAK_PROCS / SOAK_THREADS       processes and threads per process (default 3 and 3)
#   SOAK_JOURNAL=DELETE SOAK_BUSY_MS=10 make soak   the same on a rollback-journal file (COMMIT gets SQLITE_BUSY)
# tests/check_soak.sh (run by make test) runs both: 30 s WAL, 12 s rollback journal.
SOAK_BIN := $(BUILD)/soak/soak

$(SOAK_BIN): tests/soak/soak.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -o $@ $< -lsqlite3 -lm

.PHONY: soak soak-bin
soak-bin: $(BUILD)/vecstore.so $(SOAK_BIN)

soak: soak-bin
	@$(SOAK_BIN) $${SOAK_SECONDS:-30} $${SOAK_PROCS:-3} $${SOAK_THREADS:-3}
