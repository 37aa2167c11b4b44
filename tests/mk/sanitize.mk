# ---------------------------------------------------------------------------------------------------------------
# make sanitize: the extension and the cmocka suites built with clang's AddressSanitizer and UndefinedBehavior-
# Sanitizer (build/asan/vecstore.so, build/asan/tests/test_*), then the whole test suite run under them:
#   - the cmocka suites, linked with the sanitizer runtime (leak detection on, tests/lsan.supp);
#   - the golden SQL scripts, in Debian's sqlite3 shell with clang's shared ASan runtime in LD_PRELOAD (leak
#     detection on: the shell frees what it allocates);
#   - the Python smoke test, in Debian's python3 with the same LD_PRELOAD. CPython itself leaves objects allocated
#     at exit by design; those are suppressed by the module name of python3 in tests/lsan.supp, and that run keeps
#     only two frames per allocation stack (malloc_context_size=2: the allocator and its direct caller), so the
#     suppression matches only memory that python3 itself allocated, never memory that vecstore (or SQLite on its
#     behalf) allocated during a python call. Its error reports therefore show short allocation stacks; the
#     suites and the shell run the same code with full stacks;
#   - the crash and soak harnesses (tests/crash, tests/soak), shorter than in make test, same LD_PRELOAD.
# Any sanitizer report fails the run (ASan halts, UBSan does not recover, LSan exits non-zero, and every log is
# also searched for a report). About 3 minutes on 2 cores after the build.
#
# Faiss and OpenBLAS stay the uninstrumented static libraries built by gcc (their allocations are still checked
# through the runtime's malloc/new interceptors). Faiss was built against gcc's libgomp, so the link names
# -lgomp and never clang's -fopenmp (which would pull in LLVM's libomp: two OpenMP runtimes in one process).
# The sanitized shared object leaves the sanitizer runtime's symbols undefined (the executable or LD_PRELOAD
# provides them), so the normal link's -Wl,--no-undefined cannot be used here.
# Limits: SQLite's allocator rounds sqlite3_malloc sizes up to a multiple of 8, so an overrun of a block from
# sqlite3_malloc by fewer bytes than that rounding is invisible to ASan; memory errors inside Faiss itself are
# seen only where they touch memory ASan poisons (Faiss is not instrumented).
#
# tests/check_sanitize.sh (run by make test) uses `make sanitize-build` and `make sanitize-unit`.
# `make -s sanitize-env` prints the environment for running one sanitized suite by hand:
#   export $(make -s sanitize-env); build/asan/tests/test_write
# SANITIZE_CC / SANITIZE_CXX pick another clang.
SANITIZE_CC ?= clang
SANITIZE_CXX ?= clang++
ASAN_DIR := $(BUILD)/asan
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1
ASAN_CFLAGS_EXT := -std=c11 $(SANITIZE_FLAGS) -fPIC -fvisibility=hidden -Wall -Wextra -Werror -D_GNU_SOURCE \
  -isystem $(FAISS_DIR)/include
ASAN_CXXFLAGS_EXT := -std=c++17 $(SANITIZE_FLAGS) -fPIC -fvisibility=hidden -Wall -Wextra -Werror \
  -isystem $(FAISS_DIR)/include
ASAN_EXT_OBJECTS := $(EXT_SOURCES:ext/%.c=$(ASAN_DIR)/obj/%.o) $(EXT_CXX_SOURCES:ext/%.cpp=$(ASAN_DIR)/obj/%.o)
ASAN_TEST_BINS := $(TEST_BINS:$(BUILD)/tests/%=$(ASAN_DIR)/tests/%)

# The runtime options every sanitized run uses.
#   abort_on_error=0 / exitcode: a report ends the process with status 86 (distinguishable from a test failure);
#   detect_leaks=1 with tests/lsan.supp (leaks of libraries outside ext/ only, each one justified there);
#   print_stacktrace=1 and halt_on_error=1: UBSan prints the stack and stops at the first report;
#   allow_user_segv_handler=1: cmocka's handler may report a SIGSEGV as a failed test (still a failure).
SANITIZE_ASAN_OPTIONS := halt_on_error=1:exitcode=86:detect_leaks=1:abort_on_error=0:strict_string_checks=1:$\
detect_stack_use_after_return=1:check_initialization_order=1:allow_user_segv_handler=1
SANITIZE_UBSAN_OPTIONS := halt_on_error=1:print_stacktrace=1:exitcode=86
SANITIZE_LSAN_OPTIONS := suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0:exitcode=86
SANITIZE_ENV := ASAN_OPTIONS=$(SANITIZE_ASAN_OPTIONS) UBSAN_OPTIONS=$(SANITIZE_UBSAN_OPTIONS) \
  LSAN_OPTIONS=$(SANITIZE_LSAN_OPTIONS) VECSTORE_EXT=$(ASAN_DIR)/vecstore

.PHONY: sanitize sanitize-build sanitize-unit sanitize-golden sanitize-smoke sanitize-harness sanitize-env

sanitize-build: $(ASAN_DIR)/vecstore.so $(ASAN_TEST_BINS)

$(ASAN_DIR)/obj/%.o: ext/%.c $(EXT_HEADERS) | deps
	@mkdir -p $(dir $@)
	$(SANITIZE_CC) $(ASAN_CFLAGS_EXT) -c $< -o $@

$(ASAN_DIR)/obj/%.o: ext/%.cpp $(EXT_HEADERS) | deps
	@mkdir -p $(dir $@)
	$(SANITIZE_CXX) $(ASAN_CXXFLAGS_EXT) -c $< -o $@

$(ASAN_DIR)/vecstore.so: $(ASAN_EXT_OBJECTS) | deps
	$(SANITIZE_CXX) -shared -fsanitize=address,undefined -o $@ $(ASAN_EXT_OBJECTS) -Wl,--exclude-libs,ALL \
	  -Wl,-z,nodelete $(FAISS_C_LIB) $(FAISS_CORE_LIB) -lopenblas -llapack -lgomp -lstdc++ -lm

$(ASAN_DIR)/tests/testutil.o: tests/testutil.c tests/testutil.h | deps
	@mkdir -p $(dir $@)
	$(SANITIZE_CC) $(TEST_CFLAGS) $(SANITIZE_FLAGS) -D_GNU_SOURCE -c $< -o $@

# Linked by clang++ so that the executable carries the C++ parts of the runtimes (new/delete checks, UBSan's
# vptr handlers), which the C++ code of the sanitized extension calls.
$(ASAN_DIR)/tests/%: tests/%.c $(ASAN_DIR)/tests/testutil.o tests/testutil.h | deps
	@mkdir -p $(dir $@)
	$(SANITIZE_CC) $(TEST_CFLAGS) $(SANITIZE_FLAGS) -D_GNU_SOURCE -c $< -o $@.o
	$(SANITIZE_CXX) -fsanitize=address,undefined -o $@ $@.o $(ASAN_DIR)/tests/testutil.o -lsqlite3 -lcmocka -lm \
	  -lpthread
	@rm -f $@.o

sanitize-env:
	@echo '$(SANITIZE_ENV)'

# A report in a log fails the run even if the process exited with 0 (a child process, a report in a test that
# expected a failure).
SANITIZE_REPORT_RE := ERROR: (Address|Leak)Sanitizer|runtime error:|WARNING: AddressSanitizer

# The cmocka suites (the unit tests), one after another; every suite runs even when one fails. The fast unwinder
# stops at the first library built without frame pointers (libsqlite3, Faiss), so the allocation stacks of a
# report miss vecstore's frames when the block came from sqlite3_malloc; a failed suite is therefore run again
# with fast_unwind_on_malloc=0 (3 to 4 times slower) and that log is shown.
sanitize-unit: sanitize-build
	@export $(SANITIZE_ENV); fail=0; \
	for t in $(ASAN_TEST_BINS); do \
	  l=$(ASAN_DIR)/$$(basename $$t).log; \
	  if ! $$t > $$l 2>&1 || grep -qE '$(SANITIZE_REPORT_RE)' $$l; then \
	    fail=1; echo "FAILED under sanitizers: $$t (log: $$l)"; \
	    ASAN_OPTIONS=$$ASAN_OPTIONS:fast_unwind_on_malloc=0 $$t > $$l.full 2>&1 \
	      && echo "(passed when run again with full allocation stacks: $$l.full)" || l=$$l.full; \
	    tail -n 60 $$l; fi; \
	done; \
	[ $$fail = 0 ] && echo "sanitize: $(words $(ASAN_TEST_BINS)) cmocka suites passed under ASan+UBSan"

# The runtime as a shared object, for processes that are not linked with it (the sqlite3 shell, python3).
ASAN_RUNTIME_SO = $(shell $(SANITIZE_CC) -print-file-name=libclang_rt.asan-x86_64.so)

# Golden scripts: the same comparison as tests/golden.sh, on a copy of each script that loads build/asan. Only
# the sqlite3 process gets the runtime: golden.sh finds a wrapper first on its PATH (bash, diff and the other
# tools stay uninstrumented, their own leaks are not ours). The scripts are short, so they always run with full
# allocation stacks.
sanitize-golden: $(ASAN_DIR)/vecstore.so
	@mkdir -p $(ASAN_DIR)/sql $(ASAN_DIR)/bin; \
	real=$$(command -v sqlite3) || { echo "sanitize-golden: no sqlite3 shell"; exit 1; }; \
	printf '#!/bin/sh\nLD_PRELOAD=%s exec %s "$$@"\n' '$(ASAN_RUNTIME_SO)' "$$real" > $(ASAN_DIR)/bin/sqlite3; \
	chmod +x $(ASAN_DIR)/bin/sqlite3; \
	export $(SANITIZE_ENV); export ASAN_OPTIONS="$$ASAN_OPTIONS:fast_unwind_on_malloc=0"; fail=0; n=0; \
	for s in sql/*.sql; do \
	  e=$${s%.sql}.expected; [ -f "$$e" ] || continue; n=$$((n + 1)); \
	  sed 's#^\.load \./build/vecstore#.load ./$(ASAN_DIR)/vecstore#' "$$s" > $(ASAN_DIR)/$$s; \
	  if grep -q 'build/vecstore' $(ASAN_DIR)/$$s; then \
	    fail=1; echo "sanitize-golden: $$s loads build/vecstore in a form this target does not rewrite"; continue; fi; \
	  l=$(ASAN_DIR)/golden-$$(basename $$s).log; \
	  if ! PATH=$(CURDIR)/$(ASAN_DIR)/bin:$$PATH bash tests/golden.sh $(ASAN_DIR)/$$s "$$e" > $$l 2>&1 \
	     || grep -qE '$(SANITIZE_REPORT_RE)' $$l; then \
	    fail=1; echo "FAILED under sanitizers: golden $$s (log: $$l)"; tail -n 60 $$l; fi; \
	done; \
	[ $$fail = 0 ] && echo "sanitize: $$n golden SQL scripts passed under ASan+UBSan"

sanitize-smoke: $(ASAN_DIR)/vecstore.so
	@export $(SANITIZE_ENV); export ASAN_OPTIONS="$$ASAN_OPTIONS:malloc_context_size=2"; \
	py=/usr/bin/python3; [ -x $$py ] || py=$$(command -v python3); \
	if LD_PRELOAD=$(ASAN_RUNTIME_SO) $$py tests/smoke.py > $(ASAN_DIR)/smoke.log 2>&1 \
	   && ! grep -qE '$(SANITIZE_REPORT_RE)' $(ASAN_DIR)/smoke.log; then \
	  echo "sanitize: python smoke test passed under ASan+UBSan"; \
	else echo "FAILED under sanitizers: python smoke (log: $(ASAN_DIR)/smoke.log)"; tail -n 60 $(ASAN_DIR)/smoke.log; \
	  exit 1; fi

# The crash and soak harnesses of tests/crash and tests/soak (their own fragments build them), shorter than in
# make test, with the sanitized extension in every process they start (writers, checkers, soak workers). A
# writer that the crash harness kills leaves no leak report, one that dies of a report fails the harness.
#   SANITIZE_CRASH_SECONDS (default 30), SANITIZE_SOAK_SECONDS (default 10; the rollback-journal run gets 2/5 of it)
sanitize-harness: $(ASAN_DIR)/vecstore.so crash-harness soak-bin
	@export $(SANITIZE_ENV) CRASH_SECONDS=$${SANITIZE_CRASH_SECONDS:-30}; \
	s=$${SANITIZE_SOAK_SECONDS:-10}; l=$(ASAN_DIR)/harness.log; : > $$l; fail=0; \
	LD_PRELOAD=$(ASAN_RUNTIME_SO) $(CRASH_BIN) >> $$l 2>&1 || fail=1; \
	LD_PRELOAD=$(ASAN_RUNTIME_SO) $(SOAK_BIN) $$s 2 2 >> $$l 2>&1 || fail=1; \
	SOAK_JOURNAL=DELETE SOAK_BUSY_MS=10 LD_PRELOAD=$(ASAN_RUNTIME_SO) $(SOAK_BIN) $$((s * 2 / 5 + 1)) 2 2 >> $$l 2>&1 \
	  || fail=1; \
	if [ $$fail = 0 ] && ! grep -qE '$(SANITIZE_REPORT_RE)' $$l; then \
	  echo "sanitize: crash and soak harnesses passed under ASan+UBSan"; \
	else echo "FAILED under sanitizers: crash/soak harness (log: $$l)"; tail -n 60 $$l; exit 1; fi

# Every part runs, and the target fails if any did.
sanitize: sanitize-build
	@fail=0; \
	$(MAKE) -s --no-print-directory sanitize-unit || fail=1; \
	$(MAKE) -s --no-print-directory sanitize-golden || fail=1; \
	$(MAKE) -s --no-print-directory sanitize-smoke || fail=1; \
	$(MAKE) -s --no-print-directory sanitize-harness || fail=1; \
	if [ $$fail = 0 ]; then echo "sanitize: all passed"; else echo "sanitize: FAILED"; exit 1; fi
