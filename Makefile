# pocketctl - one non-recursive Makefile.
#
#   make            build ./pocketctl (release flags)
#   make run        install missing Debian packages, build, start the server
#                   on its defaults with manifests/ applied
#   make check      install test dependencies, build with ASan + UBSan, run
#                   every test (unit, end-to-end, app compatibility)
#   make bench      run the benchmarks in tests/bench/ and print figures
#   make fuzz       build the libFuzzer drivers (clang)
#
# SANITIZE=address,undefined builds into build/san instead of build/rel.

CC       ?= cc
PKGS     := sqlite3 libcurl jansson yaml-0.1 libcrypto icu-uc icu-i18n
SANITIZE ?=

WARN := -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
        -Wvla -Wwrite-strings -Wformat=2 -fno-common
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -g $(WARN) -MMD -MP \
               -Icontroller -Ireconcilers \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcivetweb -lcrypt \
        -lpthread -lm

ifneq ($(SANITIZE),)
BUILD  := build/san
OPT    := -O1 -fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
          -fno-sanitize-recover=undefined
BIN    := $(BUILD)/pocketctl
else
BUILD  := build/rel
OPT    := -O2
BIN    := pocketctl
# jemalloc: the records API allocates many small JSON nodes per request;
# glibc's allocator spent a quarter of a list request consolidating them
# (list req/s +25 %, see the README's figures). Sanitizer builds keep
# their own allocator.
ALLOC_LIBS := $(shell pkg-config --libs jemalloc 2>/dev/null || echo -ljemalloc)
endif

CFLAGS  += $(BASE_CFLAGS) $(OPT)

LDFLAGS += $(OPT)

CONTROLLER_SRC := $(filter-out controller/cli/main.c,\
                    $(wildcard controller/*.c controller/*/*.c))
RECONCILER_SRC := $(wildcard reconcilers/*.c)
LIB_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(CONTROLLER_SRC) $(RECONCILER_SRC))
MAIN_OBJ := $(BUILD)/controller/cli/main.o
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(UNIT_SRC))
UNIT_BIN := $(BUILD)/unit-tests
EMBEDDED := schema/collections.json $(wildcard schema/migrations/*.sql)

.PHONY: FORCE all run check test test-containers bench fuzz deps test-deps clean

all: $(BIN)

# The version `pocketctl --version` prints: git describe when this is a
# checkout, else the fixed fallback in controller/cli/commands.c. The stamp
# rebuilds commands.o when it changes.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
VERSION_OBJ := $(BUILD)/controller/cli/commands.o
ifneq ($(VERSION),)
$(VERSION_OBJ): CFLAGS += -DPOCKETCTL_VERSION='"$(VERSION)"'
endif
$(VERSION_OBJ): $(BUILD)/version.stamp
$(BUILD)/version.stamp: FORCE
	@mkdir -p $(@D)
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@
FORCE:

$(BIN): $(LIB_OBJ) $(MAIN_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(ALLOC_LIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/controller/store/embedded.o: $(EMBEDDED)

$(UNIT_BIN): $(LIB_OBJ) $(UNIT_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lcriterion

deps:
	scripts/install-deps.sh run

test-deps:
	scripts/install-deps.sh test

run: deps
	$(MAKE) all
	scripts/run.sh

# make check: everything under ASan + UBSan, the container tests against a
# real engine included.
check: test-deps
	tests/layers/check.py
	$(MAKE) SANITIZE=address,undefined test test-containers
	$(MAKE) fuzz

test: $(BIN) $(UNIT_BIN)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(UNIT_BIN) --jobs=2
	PCTL=$(abspath $(BIN)) bats $(filter-out tests/e2e/containers.bats,$(wildcard tests/e2e/*.bats))
	PCTL=$(abspath $(BIN)) tests/compat/run.sh

# libFuzzer drivers (clang): `make fuzz` builds them and replays the
# committed corpora; `build/fuzz/fuzz_yaml -max_total_time=60
# tests/fuzz/corpus/yaml` explores further.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
FUZZ_LIB := $(CONTROLLER_SRC) $(RECONCILER_SRC)

build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB) $(EMBEDDED)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	  -Icontroller -Ireconcilers $(shell pkg-config --cflags $(PKGS)) \
	  -o $@ $< $(FUZZ_LIB) $(LIBS)

fuzz: $(FUZZ_BIN)
	for f in $(FUZZ_BIN); do \
	  $$f -runs=0 tests/fuzz/corpus/$${f#build/fuzz/fuzz_} || exit 1; done

# The container tests need a real engine: tests/engine/podman.sh starts a
# private Podman (installing it from Debian when missing) and stops it and
# cleans up afterwards, pass or fail.
test-containers: $(BIN)
	tests/engine/podman.sh start
	PCTL=$(abspath $(BIN)) bats tests/e2e/containers.bats; rc=$$?; \
	  tests/engine/podman.sh stop; exit $$rc

bench: $(BIN)
	scripts/install-deps.sh bench
	PCTL=$(abspath $(BIN)) tests/bench/run.sh

clean:
	rm -rf build pocketctl

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_OBJ:.o=.d)
