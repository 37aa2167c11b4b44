# vecstore: a SQLite loadable extension that stores vectors in a Faiss index.
#
#   make          build build/vecstore.so (runs `make deps` first when needed)
#   make deps     install Debian packages and build Faiss 1.7.3 (AVX2, C API) into a cache
#   make test     build and run every test (cmocka suites, golden SQL, Python smoke test)
#   make install  install build/vecstore.so where `.load vecstore` finds it by bare name (PREFIX, LIBDIR, DESTDIR)
#   make dist     self-contained build/dist/vecstore.so (needs only glibc) and a release tarball
#   make help     every target, one line each
#
# FAISS_PREFIX=/path uses an existing Faiss install that has the C API instead of the cache.

SHELL := /bin/bash
.DEFAULT_GOAL := all

FAISS_VERSION := 1.7.3
CACHE_DIR ?= $(HOME)/.cache/vecstore
BUILD := build

DEB_PACKAGES := build-essential dpkg-dev cmake pkg-config libsqlite3-dev sqlite3 \
  libopenblas-dev libopenblas-pthread-dev liblapack-dev libcmocka-dev valgrind python3 clang strace

ifdef FAISS_PREFIX
FAISS_DIR := $(FAISS_PREFIX)
FAISS_READY := $(FAISS_DIR)/include/faiss/c_api/faiss_c.h
FAISS_CORE_LIB := $(firstword $(wildcard $(FAISS_DIR)/lib/libfaiss_avx2.a $(FAISS_DIR)/lib/libfaiss.a) -lfaiss)
else
FAISS_DIR := $(CACHE_DIR)/faiss-$(FAISS_VERSION)-avx2
FAISS_READY := $(FAISS_DIR)/.complete
FAISS_CORE_LIB := $(FAISS_DIR)/lib/libfaiss_avx2.a
endif
FAISS_C_LIB := $(firstword $(wildcard $(FAISS_DIR)/lib/libfaiss_c.a) $(FAISS_DIR)/lib/libfaiss_c.a)
PACKAGES_READY := $(CACHE_DIR)/.packages-$(shell echo $(DEB_PACKAGES) | md5sum | cut -c1-8)

CC ?= cc
CFLAGS_EXT := -std=c11 -O2 -g -fPIC -fvisibility=hidden -fopenmp -Wall -Wextra -Werror \
  -D_GNU_SOURCE -isystem $(FAISS_DIR)/include
CXXFLAGS_EXT := -std=c++17 -O2 -g -fPIC -fvisibility=hidden -fopenmp -Wall -Wextra -Werror -isystem $(FAISS_DIR)/include
LDLIBS_EXT := $(FAISS_C_LIB) $(FAISS_CORE_LIB) -lopenblas -llapack -fopenmp -lstdc++ -lm

EXT_SOURCES := $(wildcard ext/*.c)
EXT_CXX_SOURCES := $(wildcard ext/*.cpp)
EXT_OBJECTS := $(EXT_SOURCES:ext/%.c=$(BUILD)/obj/%.o) $(EXT_CXX_SOURCES:ext/%.cpp=$(BUILD)/obj/%.o)
EXT_HEADERS := $(wildcard ext/*.h)

.PHONY: all deps test clean valgrind demo help install uninstall dist

all: $(BUILD)/vecstore.so

deps: $(PACKAGES_READY) $(FAISS_READY)

# Debian packages: installed once per package list (the stamp lives in the cache, outside the clone).
$(PACKAGES_READY):
	@if ! dpkg -s $(DEB_PACKAGES) >/dev/null 2>&1; then \
	  echo "vecstore: installing Debian packages: $(DEB_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES); \
	fi
	@mkdir -p $(CACHE_DIR) && touch $@

# The Faiss build prints one progress line per 10% of each target (cmake's own percentage, the file it is at and
# the time so far); everything the compiler says goes to FAISS_BUILD_LOG, whose end is shown if the build fails.
FAISS_BUILD_LOG = $(CACHE_DIR)/faiss-$(FAISS_VERSION)-build.log
FAISS_PROGRESS = { next=0; built=" "; while IFS= read -r line; do \
	  if [[ $$line =~ ^\[\ *([0-9]+)%\]\ Building\ [A-Z]+\ object\ .*/CMakeFiles/([^/]+)\.dir/(.*)\.o$$ ]]; then \
	    p=$${BASH_REMATCH[1]}; if [ $$p -ge $$next ]; then next=$$(( (p / 10 + 1) * 10 )); \
	      printf 'vecstore: Faiss [%3d%%] %s: %s (%dm%02ds)\n' $$p "$${BASH_REMATCH[2]}" "$${BASH_REMATCH[3]}" \
	        $$(( (SECONDS - t0) / 60 )) $$(( (SECONDS - t0) % 60 )); fi; \
	  elif [[ $$line =~ Built\ target\ (.*)$$ && $$built != *" $${BASH_REMATCH[1]} "* ]]; then next=0; \
	    built="$$built$${BASH_REMATCH[1]} "; printf 'vecstore: Faiss: built %s (%dm%02ds)\n' "$${BASH_REMATCH[1]}" \
	      $$(( (SECONDS - t0) / 60 )) $$(( (SECONDS - t0) % 60 )); fi; \
	done; }

# Faiss from Debian's own source package, built with AVX2 and the C API, static and PIC.
# The deb-src entry is derived from the machine's own Debian sources (no host is named here).
$(CACHE_DIR)/faiss-$(FAISS_VERSION)-avx2/.complete: | $(PACKAGES_READY)
	@set -e; src=$(CACHE_DIR)/src; prefix=$(CACHE_DIR)/faiss-$(FAISS_VERSION)-avx2; \
	if ! apt-get source --print-uris faiss=$(FAISS_VERSION)-2 >/dev/null 2>&1; then \
	  if [ -f /etc/apt/sources.list.d/debian.sources ]; then \
	    sed 's/^Types: deb$$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
	      > /etc/apt/sources.list.d/vecstore-deb-src.sources; \
	  else \
	    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > /etc/apt/sources.list.d/vecstore-deb-src.list; \
	  fi; \
	  apt-get update -qq; \
	fi; \
	rm -rf $$src && mkdir -p $$src && cd $$src && apt-get source -qq faiss=$(FAISS_VERSION)-2 >/dev/null 2>&1 \
	  || { cd $$src && apt-get source faiss; }; \
	cd $$src/faiss-$(FAISS_VERSION); \
	sed -i 's/target_link_libraries(faiss_c PRIVATE faiss)/target_link_libraries(faiss_c PRIVATE faiss_avx2)/' \
	  c_api/CMakeLists.txt; \
	cmake -S . -B build -G 'Unix Makefiles' -DCMAKE_BUILD_TYPE=Release -DFAISS_OPT_LEVEL=avx2 -DFAISS_ENABLE_C_API=ON \
	  -DFAISS_ENABLE_GPU=OFF -DFAISS_ENABLE_PYTHON=OFF -DBUILD_TESTING=OFF -DBUILD_SHARED_LIBS=OFF \
	  -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DBLA_VENDOR=OpenBLAS >/dev/null; \
	log=$(FAISS_BUILD_LOG); \
	echo "vecstore: building Faiss $(FAISS_VERSION) with AVX2 (5 to 10 minutes on 2 cores; compiler output: $$log)"; \
	set -o pipefail; t0=$$SECONDS; \
	cmake --build build --target faiss_avx2 faiss_c -j$$(nproc) 2>&1 | tee $$log | $(FAISS_PROGRESS) \
	  || { echo "vecstore: the Faiss build failed; the end of $$log:"; tail -n 40 $$log; exit 1; }; \
	rm -rf $$prefix && mkdir -p $$prefix/lib $$prefix/include/faiss/c_api; \
	cp build/faiss/libfaiss_avx2.a build/c_api/libfaiss_c.a $$prefix/lib/; \
	cp LICENSE $$prefix/LICENSE; \
	(cd faiss && find . -name '*.h' -exec cp --parents {} $$prefix/include/faiss/ \;); \
	(cd c_api && find . -name '*.h' -not -path './gpu/*' -exec cp --parents {} $$prefix/include/faiss/c_api/ \;); \
	rm -rf $$src; \
	touch $@

$(BUILD)/obj/%.o: ext/%.c $(EXT_HEADERS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_EXT) -c $< -o $@

$(BUILD)/obj/%.o: ext/%.cpp $(EXT_HEADERS) | deps
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_EXT) -c $< -o $@

# Faiss is linked statically and its symbols are kept out of the export table, so the extension can sit in
# one process beside another Faiss (sqlite-vss, a Python faiss module) without clashes. -z nodelete keeps the
# library mapped after the last connection closes: libgomp's worker threads outlive the connection and would
# otherwise run unmapped code.
$(BUILD)/vecstore.so: $(EXT_OBJECTS) | deps
	$(CXX) -shared -o $@ $(EXT_OBJECTS) -Wl,--exclude-libs,ALL -Wl,--no-undefined -Wl,-z,nodelete $(LDLIBS_EXT)

# The LangChain FAISS walkthrough in SQL, in the sqlite3 shell, with readable output.
demo: $(BUILD)/vecstore.so
	@rm -f $(BUILD)/demo.db $(BUILD)/demo-other.db $(BUILD)/demo-copy.db
	sqlite3 -init /dev/null $(BUILD)/demo.db < sql/walkthrough.sql

clean:
	rm -rf $(BUILD)

# Every target, one line each (tests/check_help.sh fails when a .PHONY target is missing here).
help:
	@echo 'vecstore make targets (variables: CACHE_DIR, FAISS_PREFIX, PREFIX, LIBDIR, DESTDIR; see the Makefile):'
	@echo '  all (default)      build build/vecstore.so (runs deps first when needed)'
	@echo '  deps               install the Debian packages and build Faiss $(FAISS_VERSION) (AVX2, C API) into CACHE_DIR'
	@echo '  demo               build, then run the LangChain FAISS walkthrough (sql/walkthrough.sql) in sqlite3'
	@echo '  test               build and run every test (suites, golden SQL, Python smoke, tests/check_*.sh)'
	@echo '  valgrind           run the cmocka suites under valgrind memcheck'
	@echo '  install            install build/vecstore.so as $$(DESTDIR)$$(LIBDIR)/vecstore.so (default $(LIBDIR))'
	@echo '  uninstall          remove the file that install installed'
	@echo '  dist               build/dist/vecstore.so (static OpenBLAS/LAPACK/libstdc++, needs only glibc) + tarball'
	@echo '  clean              remove build/ (the Faiss cache in CACHE_DIR stays)'
	@echo '  help               this list'
	@echo '  bench              vecstore vs raw Faiss vs sqlite-vec/sqlite-vss (BENCH_SCALE=small: quick run)'
	@echo '  bench-plot         recall/latency curves of the last bench run: build/bench.png'
	@echo '  fuzz               build the libFuzzer targets and fuzz each for FUZZ_SECONDS (FUZZ_TARGETS, FUZZ_MERGE)'
	@echo '  fuzz-build         build the libFuzzer targets (clang) into build/fuzz'
	@echo '  fuzz-replay-build  build the fuzz targets with gcc and a replay main() into build/fuzz/replay'
	@echo '  sanitize           the whole suite under ASan+UBSan: unit, golden, smoke, harness'
	@echo '  sanitize-build     build build/asan/vecstore.so and the sanitized cmocka suites'
	@echo '  sanitize-unit      run the cmocka suites under ASan+UBSan'
	@echo '  sanitize-golden    run the golden SQL scripts in sqlite3 with the sanitized extension'
	@echo '  sanitize-smoke     run the Python smoke test with the sanitized extension'
	@echo '  sanitize-harness   run the crash and soak harnesses with the sanitized extension'
	@echo '  sanitize-env       print the environment for running one sanitized suite by hand'
	@echo '  crash              SIGKILL a writer at random points and check the file (CRASH_SECONDS, CRASH_SERIES)'
	@echo '  crash-harness      build the crash harness only'
	@echo '  soak               multi-process, multi-thread soak test on one WAL file (SOAK_SECONDS, SOAK_JOURNAL)'
	@echo '  soak-bin           build the extension and the soak binary only'
	@echo '  check-readme       run the examples of README.md and compare their output with it (tests/check_readme.sh)'

# ---------------------------------------------------------------------------------------------------------------
# make install / make uninstall: one file, $(DESTDIR)$(LIBDIR)/vecstore.so.
# SQLite's .load and Python's load_extension("vecstore") dlopen() "vecstore", then "vecstore.so", and a name without
# a slash is looked up only in LD_LIBRARY_PATH, the caller's RUNPATH and glibc's built-in default directories
# (/lib/<multiarch>, /usr/lib/<multiarch>, /lib, /usr/lib on Debian). /etc/ld.so.cache does not help: ldconfig only
# lists files named lib*.so*, so /usr/local/lib plus ldconfig does not work. Hence the default LIBDIR is
# /usr/lib/<multiarch>; PREFIX=/usr/local installs to /usr/local/lib/<multiarch>, which needs the full path.
# No ldconfig: the name is not a library soname and the cache is not consulted for it.
MULTIARCH = $(shell $(CC) -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH)
PREFIX ?= /usr
LIBDIR ?= $(PREFIX)/lib/$(MULTIARCH)
LOADER_DIRS = /lib/$(MULTIARCH) /usr/lib/$(MULTIARCH) /lib /usr/lib

# install takes build/vecstore.so as `make` left it (building it only when it is missing): under sudo, HOME and so
# CACHE_DIR are root's, and a dependency on the build would start a second Faiss build there.
install: $(if $(wildcard $(BUILD)/vecstore.so),,$(BUILD)/vecstore.so)
	mkdir -p $(DESTDIR)$(LIBDIR)
	install -m 0644 $(BUILD)/vecstore.so $(DESTDIR)$(LIBDIR)/vecstore.so
	@case " $(LOADER_DIRS) " in *" $(patsubst %/,%,$(LIBDIR)) "*) ;; \
	  *) echo "vecstore: $(LIBDIR) is not searched by the dynamic loader for a bare name;" \
	       "load it as '.load $(LIBDIR)/vecstore' (or set LD_LIBRARY_PATH=$(LIBDIR))";; esac

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/vecstore.so

# ---------------------------------------------------------------------------------------------------------------
# make dist: build/dist/vecstore.so, which needs nothing but glibc (libc, libm, ld-linux) and exports nothing but
# sqlite3_vecstore_init (dist/vecstore.map), and build/dist/vecstore-<version>-linux-x86_64.tar.gz with it, README.md,
# LICENSE and licenses/ (Faiss, OpenBLAS, LAPACK, GCC runtime). Linked in statically: Faiss, OpenBLAS with its LAPACK
# (Debian's pthread variant, built PIC), libstdc++ and libgcc. Not linked: libgomp.a and libgfortran.a, which Debian
# compiles with local-exec TLS (R_X86_64_TPOFF32) that no shared object may contain; dist/runtime.c stands in for
# the parts Faiss and LAPACK call (a serial OpenMP: adding and training use one core in this build).
# Requires glibc >= 2.36 (Debian 12) and an x86-64 CPU with AVX2 and FMA. tests/check_dist.sh checks it.
DIST_DIR := $(BUILD)/dist
VECSTORE_VERSION = $(shell sed -n 's/^\#define VECSTORE_VERSION "\(.*\)"/\1/p' ext/vecstore_int.h)
DIST_NAME = vecstore-$(VECSTORE_VERSION)-linux-x86_64
DIST_OPENBLAS ?= /usr/lib/$(MULTIARCH)/openblas-pthread/libopenblas.a

dist: $(DIST_DIR)/vecstore.so $(DIST_DIR)/$(DIST_NAME).tar.gz

$(DIST_DIR)/runtime.o: dist/runtime.c | deps
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -fPIC -fvisibility=hidden -Wall -Wextra -Werror -D_GNU_SOURCE -c $< -o $@

$(DIST_DIR)/vecstore.so: $(EXT_OBJECTS) $(DIST_DIR)/runtime.o dist/vecstore.map $(DIST_OPENBLAS) Makefile | deps
	$(CXX) -shared -s -o $@ $(EXT_OBJECTS) $(DIST_DIR)/runtime.o -Wl,--exclude-libs,ALL -Wl,--no-undefined \
	  -Wl,-z,nodelete -Wl,--version-script=dist/vecstore.map $(FAISS_C_LIB) $(FAISS_CORE_LIB) $(DIST_OPENBLAS) \
	  -static-libstdc++ -static-libgcc -lm

$(DIST_DIR)/$(DIST_NAME).tar.gz: $(DIST_DIR)/vecstore.so README.md LICENSE dist/licenses.sh Makefile
	@rm -rf $(DIST_DIR)/$(DIST_NAME) && mkdir -p $(DIST_DIR)/$(DIST_NAME)
	cp $(DIST_DIR)/vecstore.so README.md LICENSE $(DIST_DIR)/$(DIST_NAME)/
	bash dist/licenses.sh $(DIST_DIR)/$(DIST_NAME)/licenses $(FAISS_DIR) $(FAISS_VERSION)-2 $(CACHE_DIR)
	tar -C $(DIST_DIR) --sort=name --owner=0 --group=0 --numeric-owner -czf $@ $(DIST_NAME)
	@rm -rf $(DIST_DIR)/$(DIST_NAME)
	@echo "vecstore: $@"

# ---------------------------------------------------------------------------------------------------------------
# Tests: one cmocka suite per subsystem (tests/test_*.c), golden SQL scripts (sql/*.sql with sql/*.expected),
# and the Python smoke test. tests/run.sh runs them all and prints one total line.
TEST_SOURCES := $(wildcard tests/test_*.c)
TEST_BINS := $(TEST_SOURCES:tests/%.c=$(BUILD)/tests/%)
TEST_CFLAGS := -std=c11 -O1 -g -Wall -Wextra -Werror -Itests

$(BUILD)/tests/testutil.o: tests/testutil.c tests/testutil.h | deps
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -c $< -o $@

$(BUILD)/tests/%: tests/%.c $(BUILD)/tests/testutil.o tests/testutil.h | deps
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -D_GNU_SOURCE -o $@ $< $(BUILD)/tests/testutil.o -lsqlite3 -lcmocka -lm -lpthread

test: $(BUILD)/vecstore.so $(TEST_BINS)
	@bash tests/run.sh $(TEST_BINS)

valgrind: $(BUILD)/vecstore.so $(TEST_BINS)
	@VALGRIND=1 bash tests/run.sh $(TEST_BINS)

# ---------------------------------------------------------------------------------------------------------------
# bench (tests/bench): vecstore, raw Faiss and the peers (sqlite-vec, sqlite-vss) side by side in one run.
#   make bench                    full run (1M-row sets; 10 to 20 minutes on 2 cores)
#   BENCH_SCALE=small make bench  quick run (two to four minutes)
#   make bench-plot               recall against latency curves of the last run: build/bench.png
# The peers are prebuilt binaries installed with npm into $(CACHE_DIR)/peers (outside the clone); a peer that
# cannot be installed or loaded is skipped with a note. Output: Markdown on stdout, build/bench.json.
BENCH_BIN := $(BUILD)/bench/bench
BENCH_CFLAGS := -std=c11 -O2 -g -fopenmp -Wall -Wextra -Werror -Wno-format-truncation -D_GNU_SOURCE -isystem $(FAISS_DIR)/include

$(BENCH_BIN): tests/bench/bench.c tests/bench/bench_store.c tests/bench/bench.h | deps
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ $(filter %.c,$^) $(FAISS_C_LIB) $(FAISS_CORE_LIB) -lsqlite3 -lopenblas -llapack -fopenmp \
	  -lstdc++ -lm -ldl -lpthread

.PHONY: bench bench-plot
bench: $(BUILD)/vecstore.so $(BENCH_BIN)
	@PEERS_DIR=$(CACHE_DIR)/peers bash tests/bench/run.sh $(BENCH_BIN)

bench-plot:
	@bash tests/bench/plot.sh $(BUILD)/bench.json $(BUILD)/bench.png
# end of bench section

# Reliability (issue 6): fuzzing, sanitizers, crash and concurrency harnesses; each lives in its own fragment.
-include $(sort $(wildcard tests/mk/*.mk))
