# pocketctl - one non-recursive Makefile.
#
#   make            build ./pocketctl (release flags)
#   make run        install missing Debian packages, build, start the server
#                   on its defaults with manifests/ applied
#   make check      install test dependencies, build with ASan + UBSan, run
#                   every test (unit, end-to-end, app compatibility,
#                   the status page in Chromium)
#   make bench      run the benchmarks in tests/bench/ and print figures
#   make fuzz       build the libFuzzer drivers (clang)
#   make install    the binary, man page, bash and zsh completion, systemd
#                   unit and env file under DESTDIR + PREFIX (/usr/local)
#
# SANITIZE=address,undefined builds into build/san instead of build/rel.

CC       ?= cc
PKGS     := sqlite3 libcurl jansson yaml-0.1 libcrypto icu-uc icu-i18n libsystemd
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
UI_ASSETS := $(wildcard controller/server/ui/*)

.PHONY: FORCE all run check test test-containers bench fuzz deps test-deps clean \
        install uninstall

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
$(BUILD)/controller/server/ui_assets.o: $(UI_ASSETS)

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
	PCTL=$(abspath $(BIN)) tests/ui/run.sh

# libFuzzer drivers (clang): `make fuzz` builds them and replays the
# committed corpora; `build/fuzz/fuzz_yaml -max_total_time=60
# tests/fuzz/corpus/yaml` explores further.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
FUZZ_LIB := $(CONTROLLER_SRC) $(RECONCILER_SRC)

build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB) $(EMBEDDED) $(UI_ASSETS)
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
	  tests/engine/podman.sh ensure; \
	  PCTL=$(abspath $(BIN)) UI_ROOT=$${PODMAN_CI_ROOT:-$${PODMAN_CI_DIR:-/tmp/podman-ci}/root} \
	    UI_DOCKER_HOST=$$(tests/engine/podman.sh env | cut -d= -f2-) \
	    tests/ui/run.sh ./containers.test.mjs || rc=1; \
	  tests/engine/podman.sh stop; exit $$rc

bench: $(BIN)
	scripts/install-deps.sh bench
	PCTL=$(abspath $(BIN)) tests/bench/run.sh

# make install [DESTDIR=/stage] [PREFIX=/usr/local]: the unit and the env
# file get BINDIR and SYSCONFDIR written into them; the completion scripts
# are printed by the binary itself from its command table (`pocketctl
# completion bash|zsh`); an existing env file is never overwritten.
# INSTALL_BIN installs another build (the tests install build/san's).
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
INSTALL_BIN ?= $(BIN)
SUBST := sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'

# The man page, from its scdoc source.
pocketctl.1: docs/pocketctl.1.scd
	scdoc < $< > $@.tmp && mv $@.tmp $@

install: $(INSTALL_BIN) pocketctl.1
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/pocketctl
	install -m 0755 $(INSTALL_BIN) $(DESTDIR)$(BINDIR)/pocketctl
	install -m 0644 pocketctl.1 $(DESTDIR)$(MANDIR)/man1/pocketctl.1
	$(abspath $(INSTALL_BIN)) completion bash > $(DESTDIR)$(BASHCOMPDIR)/pocketctl.tmp
	mv $(DESTDIR)$(BASHCOMPDIR)/pocketctl.tmp $(DESTDIR)$(BASHCOMPDIR)/pocketctl
	$(abspath $(INSTALL_BIN)) completion zsh > $(DESTDIR)$(ZSHCOMPDIR)/_pocketctl.tmp
	mv $(DESTDIR)$(ZSHCOMPDIR)/_pocketctl.tmp $(DESTDIR)$(ZSHCOMPDIR)/_pocketctl
	$(SUBST) packaging/pocketctl.service > $(DESTDIR)$(UNITDIR)/pocketctl.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/pocketctl.service
	test -e $(DESTDIR)$(SYSCONFDIR)/pocketctl/pocketctl.env || \
	  { $(SUBST) packaging/pocketctl.env > $(DESTDIR)$(SYSCONFDIR)/pocketctl/pocketctl.env.tmp && \
	    chmod 0600 $(DESTDIR)$(SYSCONFDIR)/pocketctl/pocketctl.env.tmp && \
	    mv $(DESTDIR)$(SYSCONFDIR)/pocketctl/pocketctl.env.tmp $(DESTDIR)$(SYSCONFDIR)/pocketctl/pocketctl.env; }

# Everything install put in place but the env file (it holds settings).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/pocketctl $(DESTDIR)$(MANDIR)/man1/pocketctl.1 \
	  $(DESTDIR)$(BASHCOMPDIR)/pocketctl $(DESTDIR)$(ZSHCOMPDIR)/_pocketctl \
	  $(DESTDIR)$(UNITDIR)/pocketctl.service

clean:
	rm -rf build pocketctl pocketctl.1

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_OBJ:.o=.d)
