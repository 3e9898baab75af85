# chatplane: a plain GNU Makefile. `make` builds build/chatplane.
#
# Variants build into their own directories so they never mix objects:
#   build/          the release build (O=build)
#   build/asan/     AddressSanitizer + UndefinedBehaviorSanitizer
#   build/cov/      coverage instrumentation
# Distribution flags given as CFLAGS/LDFLAGS on the command line still apply
# because the project's own flags are added with +=.

O       ?= build
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc

PKGS := libevent libevent_pthreads libcurl jansson sqlite3 libpq

CFLAGS  ?= -O2 -g
override CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
           -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2 \
           -Isrc -I$(O)/gen -MMD -MP
override CFLAGS  += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
override LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

TEST_CFLAGS := $(shell pkg-config --cflags cmocka 2>/dev/null)
TEST_LDLIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

SRC      := $(sort $(wildcard src/lib/*.c src/core/*.c src/app/*.c src/store/*.c src/cli/*.c src/engine/*.c src/net/*.c))
MAIN_SRC := src/main.c
OBJ      := $(SRC:%.c=$(O)/%.o)
MAIN_OBJ := $(MAIN_SRC:%.c=$(O)/%.o)
LIB      := $(O)/libchatplane.a
MIGRATIONS := $(sort $(wildcard migrations/*/*.sql))
WEB_FILES := $(sort $(wildcard web/*.html web/*.css web/*.js web/*.svg))
GEN_OBJ  := $(O)/gen/migrations.o $(O)/gen/web.o
BIN      := $(O)/chatplane

UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRC:%.c=$(O)/%)

SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

# `make test` builds each variant on every CPU; its suites run one after
# the other.
JOBS ?= $(shell nproc 2>/dev/null || echo 1)

# The Node suites that mostly wait (time-outs, pings, restarts, the mock
# model's pacing) run this many test files at once; each file starts its
# own servers on free ports. The browser suite runs one file at a time:
# chromium alone fills two cores.
WAITING_FILES ?= 4

.PHONY: FORCE all run test scenarios integration integration-asan unit unit-asan store-tests store-tests-asan store-tests-postgres bench-store bench-search store-test-bins engine-tests engine-tests-asan engine-test-bins coverage format format-check install clean deps deps-test

all: $(BIN)

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(OBJ) $(GEN_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

# Files compiled into the binary: tools/embed writes them as a C table.
$(O)/tools/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<

# Each table's list of files, rewritten only when it changes: a file
# deleted from migrations/ or web/ rebuilds the table as an added or
# changed one does (its mtime alone cannot tell).
$(O)/gen/migrations.list: FORCE
	@mkdir -p $(dir $@)
	@echo '$(MIGRATIONS)' | cmp -s - $@ || echo '$(MIGRATIONS)' > $@

$(O)/gen/web.list: FORCE
	@mkdir -p $(dir $@)
	@echo '$(WEB_FILES)' | cmp -s - $@ || echo '$(WEB_FILES)' > $@

FORCE:

$(O)/gen/migrations.c: $(MIGRATIONS) $(O)/gen/migrations.list $(O)/tools/embed
	@mkdir -p $(dir $@)
	$(O)/tools/embed migrations_files $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

# The page (web/): net/page.c serves it when no --web-root is given.
$(O)/gen/web.c: $(WEB_FILES) $(O)/gen/web.list $(O)/tools/embed
	@mkdir -p $(dir $@)
	$(O)/tools/embed web_files $(WEB_FILES) > $@.tmp && mv $@.tmp $@

$(O)/gen/%.o: $(O)/gen/%.c
	$(CC) $(CFLAGS) -c $< -o $@

$(BIN): $(MAIN_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(O)/tests/unit/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(TEST_LDLIBS) $(LDLIBS)

unit-bins: $(UNIT_BINS)

# The engine suite: tests/engine/test_*.c on a real event loop against the
# mock model server (tests/mock-llm/server.mjs), which scripts/run-engine
# starts. The other files there are test helpers (a scripted model, a held
# tool, the engine on a temporary database), linked into every engine test.
ENGINE_TEST_BINS    := $(patsubst %.c,$(O)/%,$(sort $(wildcard tests/engine/test_*.c)))
ENGINE_TEST_HELPERS := $(patsubst %.c,$(O)/%.o,$(sort $(filter-out tests/engine/test_%.c,$(wildcard tests/engine/*.c))))

$(ENGINE_TEST_HELPERS): override CFLAGS += $(TEST_CFLAGS)

$(O)/tests/engine/%: tests/engine/%.c $(LIB) $(ENGINE_TEST_HELPERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) $(LDFLAGS) -o $@ $< $(ENGINE_TEST_HELPERS) $(LIB) $(TEST_LDLIBS) $(LDLIBS)

engine-test-bins: $(ENGINE_TEST_BINS)

# The store suite: tests/store/*.c against a real database, and the crash
# test script, which finds kill_writer beside it.
STORE_TEST_BINS := $(patsubst %.c,$(O)/%,$(sort $(wildcard tests/store/*.c))) \
                   $(O)/tests/store/test_eventlog_kill.sh

$(O)/tests/store/%: tests/store/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(TEST_LDLIBS) $(LDLIBS)

$(O)/tests/store/%.sh: tests/store/%.sh
	@mkdir -p $(dir $@)
	cp $< $@

store-test-bins: $(STORE_TEST_BINS)

deps:
	@scripts/install-deps build

deps-test:
	@scripts/install-deps test

run: deps
	$(MAKE) all
	$(BIN) serve --listen 127.0.0.1:8080 --db sqlite:chatplane.db

# `make test` installs what is missing, then runs every suite: unit tests
# plain and under the sanitizers. The layers and the code's format are
# checked first.
test: deps-test
	@rm -f build/results.txt
	@scripts/check-layers
	$(MAKE) format-check
	$(MAKE) -j$(JOBS) all
	$(MAKE) -j$(JOBS) unit
	$(MAKE) -j$(JOBS) unit-asan
	$(MAKE) -j$(JOBS) store-tests
	$(MAKE) -j$(JOBS) store-tests-asan
	$(MAKE) -j$(JOBS) store-tests-postgres
	$(MAKE) -j$(JOBS) engine-tests
	$(MAKE) -j$(JOBS) engine-tests-asan
	$(MAKE) -j$(JOBS) scenarios
	$(MAKE) -j$(JOBS) integration
	$(MAKE) -j$(JOBS) integration-asan
	$(MAKE) -j$(JOBS) protocols
	$(MAKE) -j$(JOBS) fuzz-smoke
	$(MAKE) -j$(JOBS) browser
	$(MAKE) -j$(JOBS) cli-tests
	$(MAKE) -j$(JOBS) multi-tests
	$(MAKE) -j$(JOBS) bench-smoke
	@scripts/summary

# No folder of src/ includes one above it (docs/architecture.md, Layers).
.PHONY: check-layers
check-layers:
	@scripts/check-layers

unit: unit-bins
	@scripts/run-unit $(O)/tests/unit plain

unit-asan:
	$(MAKE) O=build/asan CFLAGS="-O1 -g $(SAN_FLAGS)" LDFLAGS="$(SAN_FLAGS)" unit-bins
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  scripts/run-unit build/asan/tests/unit asan

# The store suite on SQLite, a fresh file per test. CHATPLANE_TEST_DB_URL is
# cleared here; a run against another database sets it on its own target.
store-tests: store-test-bins
	@env -u CHATPLANE_TEST_DB_URL scripts/run-unit $(O)/tests/store store-sqlite

store-tests-asan:
	$(MAKE) O=build/asan CFLAGS="-O1 -g $(SAN_FLAGS)" LDFLAGS="$(SAN_FLAGS)" store-test-bins
	@env -u CHATPLANE_TEST_DB_URL ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1 scripts/run-unit build/asan/tests/store store-asan

# The store suite again on a throwaway PostgreSQL cluster, which is stopped
# however the tests end, then two `chatplane migrate` racing on one database.
store-tests-postgres: store-test-bins $(BIN)
	@scripts/pg-test-cluster run scripts/run-store-postgres $(O)

# `make bench-store`: events committed per second through the event log on
# SQLite and on a throwaway PostgreSQL cluster (see docs/benchmarks.md).
$(O)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

bench-store: $(O)/bench/bench_store
	@PG_TEST_DURABLE=1 PG_TEST_WARM_WAL=1 scripts/pg-test-cluster run $(O)/bench/bench_store

# `make bench-search`: finding sessions by text among 100,000 messages,
# with and without the index, on SQLite and on a throwaway PostgreSQL
# cluster (docs/benchmarks.md, Search). About a minute.
bench-search: $(O)/bench/bench_search
	@scripts/pg-test-cluster run $(O)/bench/bench_search

# `make bench`: chatplane against a direct call to a mock model and against
# nginx relaying that call, side by side, under load, three rounds judged on
# their medians (bench/run-bench, docs/benchmarks.md); about 5 minutes, the
# PostgreSQL rows on a throwaway cluster. `make bench-engine`: the relay
# cost per token and the added time to first token alone.
# `make bench-count`: the event loop's instructions per run, one run at a
# time, under callgrind (bench/count-instructions), about a minute.
# `bench-smoke`, part of make test: everything small, about 10 seconds.
BENCH_BINS := $(O)/bench/loadgen $(O)/bench/mock_upstream $(O)/bench/fill_session \
              $(O)/bench/report

.PHONY: bench bench-engine bench-count bench-smoke bench-bins
bench-bins: $(BIN) $(BENCH_BINS)

bench: bench-bins
	@scripts/install-deps bench
	@PG_TEST_DURABLE=1 PG_TEST_WARM_WAL=1 scripts/pg-test-cluster run bench/run-bench full $(O)

bench-engine: bench-bins
	@scripts/install-deps bench
	@bench/run-bench engine $(O)

bench-count: bench-bins
	@scripts/install-deps bench
	@bench/count-instructions $(O)

bench-smoke: bench-bins
	@bench/run-bench smoke $(O)

engine-tests: engine-test-bins
	@scripts/run-engine $(O)/tests/engine plain

engine-tests-asan:
	$(MAKE) O=build/asan CFLAGS="-O1 -g $(SAN_FLAGS)" LDFLAGS="$(SAN_FLAGS)" engine-test-bins
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  scripts/run-engine build/asan/tests/engine asan

# The engine end to end: `chatplane ask --json` against the mock model.
scenarios: all
	@CHATPLANE_BIN=$(BIN) TEST_FILES_AT_ONCE=$(WAITING_FILES) scripts/run-node-tests scenarios tests/scenarios/

# The HTTP suite: the real `chatplane serve` on a free loopback port, talked
# to with fetch, raw requests and a real EventSource (tests/integration/).
integration: all
	@CHATPLANE_BIN=$(BIN) TEST_FILES_AT_ONCE=$(WAITING_FILES) scripts/run-node-tests integration tests/integration/

# The same suite against a sanitizer build of the server, leak checks on: a
# server that leaks exits non-zero and fails the shutdown tests.
integration-asan:
	$(MAKE) O=build/asan CFLAGS="-O1 -g $(SAN_FLAGS)" LDFLAGS="$(SAN_FLAGS)" build/asan/chatplane
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  CHATPLANE_BIN=build/asan/chatplane TEST_FILES_AT_ONCE=$(WAITING_FILES) scripts/run-node-tests integration-asan tests/integration/

# The agent protocols (docs/protocols.md) judged by their real clients:
# @ag-ui/client's HttpAgent with @ag-ui/core's schemas, and the `ai`
# package's transport, stream reader and chat class. A few seconds.
.PHONY: protocols
protocols: all
	@CHATPLANE_BIN=$(BIN) TEST_FILES_AT_ONCE=$(WAITING_FILES) scripts/run-node-tests protocols tests/protocols/

# The page in a real browser: playwright-core driving Debian's chromium
# against the real server and the mock model server. `make screenshots`
# refreshes the pictures in docs/.
.PHONY: browser screenshots
browser: all
	@CHATPLANE_BIN=$(BIN) scripts/run-node-tests browser tests/browser/

screenshots: all
	@CHATPLANE_BIN=$(BIN) node tests/browser/screenshots.mjs docs

# Several `chatplane serve` processes on one throwaway PostgreSQL cluster
# (tests/multi/): a run watched from every instance, stops and mode changes
# sent to an instance that does not own the run, one active run per session,
# an instance killed mid-run, PostgreSQL restarted under load. About 40 s.
.PHONY: multi-tests
multi-tests: all
	@CHATPLANE_BIN=$(BIN) TEST_FILES_AT_ONCE=$(WAITING_FILES) scripts/run-node-tests multi tests/multi/

# The command line: ask, events and sessions run as a user runs them, plain,
# as JSON and under a pseudo-terminal (util-linux script), against the mock
# model server.
.PHONY: cli-tests
cli-tests: all
	@CHATPLANE_BIN=$(BIN) TEST_FILES_AT_ONCE=$(WAITING_FILES) scripts/run-node-tests cli tests/cli/

# Fuzzing: each tests/fuzz/fuzz_*.c is a libFuzzer target, built by clang
# against the library compiled with the fuzzer's coverage and the
# sanitizers (build/fuzz). `make fuzz` runs each for FUZZ_SECONDS;
# `fuzz-smoke`, part of make test, for FUZZ_SMOKE_SECONDS. Both start from a
# copy of the committed seed corpus (scripts/run-fuzz).
FUZZ_SRC           := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SAN           := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
                      -fno-omit-frame-pointer
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 5

.PHONY: fuzz fuzz-smoke fuzz-bins
$(O)/tests/fuzz/%: tests/fuzz/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

fuzz-bins:
	$(MAKE) O=build/fuzz CC=clang CFLAGS="-O1 -g $(FUZZ_SAN)" LDFLAGS="-fsanitize=address,undefined" \
	  $(FUZZ_SRC:%.c=build/fuzz/%)

fuzz: fuzz-bins
	@scripts/run-fuzz build/fuzz/tests/fuzz $(FUZZ_SECONDS) fuzz

fuzz-smoke: fuzz-bins
	@scripts/run-fuzz build/fuzz/tests/fuzz $(FUZZ_SMOKE_SECONDS) fuzz

coverage: deps-test
	rm -rf build/cov
	$(MAKE) O=build/cov CFLAGS="-O0 -g --coverage" LDFLAGS="--coverage" unit-bins
	@scripts/run-unit build/cov/tests/unit coverage
	@scripts/coverage-report build/cov

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/chatplane

clean:
	rm -rf build

-include $(OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_BINS:=.d) $(ENGINE_TEST_BINS:=.d) \
         $(ENGINE_TEST_HELPERS:.o=.d)
