# Fuzzing (issue 6): libFuzzer targets in tests/fuzz/, with ASan and UBSan, the extension linked statically.
#
#   make fuzz                   build every target, then fuzz each for FUZZ_SECONDS (default 60) in turn
#   make fuzz FUZZ_TARGETS=sql FUZZ_SECONDS=600
#   make fuzz FUZZ_MERGE=1      also merge new coverage into the committed corpus (tests/fuzz/corpus/<target>)
#   make fuzz-build             build the libFuzzer targets ($(BUILD)/fuzz/fuzz_<target>), clang needed
#   make fuzz-replay-build      build the targets with gcc and a replay main() ($(BUILD)/fuzz/replay/fuzz_<target>)
#
# Inputs found while fuzzing go to $(BUILD)/fuzz/scratch/<target>, crashes to $(BUILD)/fuzz/artifacts/<target>.
# tests/check_fuzz.sh (run by make test) replays tests/fuzz/corpus and tests/fuzz/regressions through every
# target. Faiss is linked as built (gcc, libgomp), so the targets link -lgomp rather than clang's -fopenmp.

FUZZ_TARGETS ?= vector filter create split sql
FUZZ_SECONDS ?= 60
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_CC ?= clang
FUZZ_CXX ?= clang++
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_WARN := -Wall -Wextra -Werror
FUZZ_CFLAGS := -std=c11 -O1 -g $(FUZZ_WARN) -D_GNU_SOURCE -isystem $(FAISS_DIR)/include
FUZZ_CXXFLAGS := -std=c++17 -O1 -g $(FUZZ_WARN) -isystem $(FAISS_DIR)/include
FUZZ_LIBS := $(FAISS_C_LIB) $(FAISS_CORE_LIB) -lsqlite3 -lgomp -lopenblas -llapack -lstdc++ -lm -lpthread -ldl
FUZZ_SOURCES := $(FUZZ_TARGETS:%=tests/fuzz/fuzz_%.c)
FUZZ_HEADERS := tests/fuzz/fuzz_common.h

# libFuzzer build: ext objects with coverage instrumentation and sanitizers.
FUZZ_EXT_OBJ := $(EXT_SOURCES:ext/%.c=$(FUZZ_DIR)/obj/%.o) $(EXT_CXX_SOURCES:ext/%.cpp=$(FUZZ_DIR)/obj/%.o)
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

$(FUZZ_DIR)/obj/%.o: ext/%.c $(EXT_HEADERS) | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/obj/%.o: ext/%.cpp $(EXT_HEADERS) | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_HEADERS) $(FUZZ_EXT_OBJ) | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -c $< -o $@.o
	$(FUZZ_CXX) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $@.o $(FUZZ_EXT_OBJ) $(FUZZ_LIBS)

# Replay build: gcc, sanitizers when gcc has them, and tests/fuzz/replay_main.c instead of libFuzzer.
FUZZ_GCC ?= gcc
FUZZ_GXX ?= g++
# Probed once, and only when a replay rule needs it.
FUZZ_GCC_SAN = $(eval FUZZ_GCC_SAN := $(shell echo 'int main(void){return 0;}' | $(FUZZ_GCC) \
  -fsanitize=address,undefined -x c - -o /dev/null 2>/dev/null && \
  echo '-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer'))$(FUZZ_GCC_SAN)
FUZZ_REPLAY_OBJ := $(EXT_SOURCES:ext/%.c=$(FUZZ_DIR)/replay-obj/%.o) $(EXT_CXX_SOURCES:ext/%.cpp=$(FUZZ_DIR)/replay-obj/%.o)
FUZZ_REPLAY_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/replay/fuzz_%)

$(FUZZ_DIR)/replay-obj/%.o: ext/%.c $(EXT_HEADERS) | deps
	@mkdir -p $(dir $@)
	$(FUZZ_GCC) $(FUZZ_CFLAGS) $(FUZZ_GCC_SAN) -c $< -o $@

$(FUZZ_DIR)/replay-obj/%.o: ext/%.cpp $(EXT_HEADERS) | deps
	@mkdir -p $(dir $@)
	$(FUZZ_GXX) $(FUZZ_CXXFLAGS) $(FUZZ_GCC_SAN) -fopenmp -c $< -o $@

$(FUZZ_DIR)/replay-obj/replay_main.o: tests/fuzz/replay_main.c | deps
	@mkdir -p $(dir $@)
	$(FUZZ_GCC) $(FUZZ_CFLAGS) $(FUZZ_GCC_SAN) -c $< -o $@

$(FUZZ_DIR)/replay/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_HEADERS) $(FUZZ_REPLAY_OBJ) $(FUZZ_DIR)/replay-obj/replay_main.o | deps
	@mkdir -p $(dir $@)
	$(FUZZ_GCC) $(FUZZ_CFLAGS) $(FUZZ_GCC_SAN) -c $< -o $@.o
	$(FUZZ_GXX) $(FUZZ_GCC_SAN) -o $@ $@.o $(FUZZ_DIR)/replay-obj/replay_main.o $(FUZZ_REPLAY_OBJ) $(FUZZ_LIBS)

.SECONDARY: $(FUZZ_EXT_OBJ) $(FUZZ_REPLAY_OBJ) $(FUZZ_DIR)/replay-obj/replay_main.o
.PHONY: fuzz fuzz-build fuzz-replay-build
fuzz-build: $(FUZZ_BINS)
fuzz-replay-build: $(FUZZ_REPLAY_BINS)

fuzz: $(FUZZ_BINS)
	@FUZZ_DIR=$(FUZZ_DIR) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_MERGE=$(FUZZ_MERGE) bash tests/fuzz/run.sh $(FUZZ_TARGETS)
