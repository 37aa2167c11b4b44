# vecstore: a SQLite loadable extension that stores vectors in a Faiss index.
#
#   make          build build/vecstore.so (runs `make deps` first when needed)
#   make deps     install Debian packages and build Faiss 1.7.3 (AVX2, C API) into a cache
#   make test     build and run every test (cmocka suites, golden SQL, Python smoke test)
#
# FAISS_PREFIX=/path uses an existing Faiss install that has the C API instead of the cache.

SHELL := /bin/bash
.DEFAULT_GOAL := all

FAISS_VERSION := 1.7.3
CACHE_DIR ?= $(HOME)/.cache/vecstore
BUILD := build

DEB_PACKAGES := build-essential dpkg-dev cmake pkg-config libsqlite3-dev sqlite3 \
  libopenblas-dev liblapack-dev libcmocka-dev valgrind python3 clang strace

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

.PHONY: all deps test clean valgrind demo

all: $(BUILD)/vecstore.so

deps: $(PACKAGES_READY) $(FAISS_READY)

# Debian packages: installed once per package list (the stamp lives in the cache, outside the clone).
$(PACKAGES_READY):
	@if ! dpkg -s $(DEB_PACKAGES) >/dev/null 2>&1; then \
	  echo "vecstore: installing Debian packages: $(DEB_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES); \
	fi
	@mkdir -p $(CACHE_DIR) && touch $@

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
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DFAISS_OPT_LEVEL=avx2 -DFAISS_ENABLE_C_API=ON \
	  -DFAISS_ENABLE_GPU=OFF -DFAISS_ENABLE_PYTHON=OFF -DBUILD_TESTING=OFF -DBUILD_SHARED_LIBS=OFF \
	  -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DBLA_VENDOR=OpenBLAS >/dev/null; \
	echo "vecstore: building Faiss $(FAISS_VERSION) with AVX2 (several minutes on 2 cores)"; \
	cmake --build build --target faiss_avx2 faiss_c -j$$(nproc) -- -s >/dev/null; \
	rm -rf $$prefix && mkdir -p $$prefix/lib $$prefix/include/faiss/c_api; \
	cp build/faiss/libfaiss_avx2.a build/c_api/libfaiss_c.a $$prefix/lib/; \
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
#   BENCH_SCALE=small make bench  quick run (under two minutes)
#   make bench-plot               recall against latency curves of the last run: build/bench.png
# The peers are prebuilt binaries installed with npm into $(CACHE_DIR)/peers (outside the clone); a peer that
# cannot be installed or loaded is skipped with a note. Output: Markdown on stdout, build/bench.json.
BENCH_BIN := $(BUILD)/bench/bench
BENCH_CFLAGS := -std=c11 -O2 -g -fopenmp -Wall -Wextra -Werror -Wno-format-truncation -D_GNU_SOURCE -isystem $(FAISS_DIR)/include

$(BENCH_BIN): tests/bench/bench.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(FAISS_C_LIB) $(FAISS_CORE_LIB) -lsqlite3 -lopenblas -llapack -fopenmp \
	  -lstdc++ -lm -ldl -lpthread

.PHONY: bench bench-plot
bench: $(BUILD)/vecstore.so $(BENCH_BIN)
	@PEERS_DIR=$(CACHE_DIR)/peers bash tests/bench/run.sh $(BENCH_BIN)

bench-plot:
	@bash tests/bench/plot.sh $(BUILD)/bench.json $(BUILD)/bench.png
# end of bench section

# Reliability (issue 6): fuzzing, sanitizers, crash and concurrency harnesses; each lives in its own fragment.
-include $(sort $(wildcard tests/mk/*.mk))
