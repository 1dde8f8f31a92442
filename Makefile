# gotuned — a control plane for the Go scheduler. See README.md.
#
#   make run     install what is missing, build, start on 127.0.0.1:8080
#   make test    install what is missing, build, run every suite
#   make asan    the unit and HTTP suites under ASan + UBSan
#   make bench   install what is missing, build, run every benchmark (docs/bench.md)
#   make fuzz    the libFuzzer targets, FUZZ_SECONDS (600) each (docs/fuzz.md)
#   make all     build only (needs the -dev packages; `make deps` installs them)
#
# CFLAGS, CC, PREFIX, DESTDIR and O (the build folder) may be overridden.

PREFIX  ?= /usr/local
DESTDIR ?=
O       ?= build
CFLAGS  ?= -O2 -g
LISTEN  ?= 127.0.0.1:8080
DATA_DIR ?= ./var

PKGS     := libmicrohttpd jansson sqlite3 libcgroup
# gotuned-agent links only what it uses: no libmicrohttpd or SQLite.
AGENT_PKGS := jansson libcgroup libcurl
WARN     := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wconversion
ifeq ($(CI),true)
WARN     += -Werror
endif
ALL_CPPFLAGS = -D_GNU_SOURCE -I. -I$(O) $(CPPFLAGS)
ALL_CFLAGS   = $(WARN) $(CFLAGS) $(shell pkg-config --cflags $(PKGS) libcurl 2>/dev/null)
LIBS         = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
AGENT_LIBS   = $(shell pkg-config --libs $(AGENT_PKGS) 2>/dev/null) -lpthread -lm
TEST_LIBS    = $(shell pkg-config --libs cmocka 2>/dev/null)

# Node's test runner; the suites run one file at a time (each starts its own
# servers). --test-concurrency exists from Node 20 on; Node 18 runs files
# one at a time on a 2-CPU machine anyway.
NODE_TEST = node --test $(shell node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null && echo --test-concurrency=1)

ifneq ($(V),1)
Q  = @
QCC = @printf '  CC      %s\n' $@;
QLD = @printf '  LD      %s\n' $@;
QGEN = @printf '  GEN     %s\n' $@;
endif

LIB_SRC  := $(wildcard tuner/*.c store/*.c api/*.c cgroup/*.c) \
            $(filter-out server/main.c,$(wildcard server/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(O)/%.o) $(O)/web_assets.o
# The agent's modules (all but main.c) also go into the unit tests.
AGENT_SRC := $(filter-out agent/main.c,$(wildcard agent/*.c))
AGENT_OBJ := $(AGENT_SRC:%.c=$(O)/%.o)
AGENT_DEPS := $(patsubst %.c,$(O)/%.o,$(wildcard tuner/*.c cgroup/*.c))
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_OBJ := $(UNIT_SRC:%.c=$(O)/%.o)
WEB_FILES := $(sort $(wildcard web/*))

.PHONY: all agent run test unit gotest http e2e browser asan bench deps install clean \
        fuzz fuzz-smoke fuzz-build fuzz-bins
all: $(O)/gotuned $(O)/gotuned-agent $(O)/unit-tests

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(QCC)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# The dashboard is compiled into the binary: tools/embed turns web/ into C.
$(O)/tools/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(QLD)$(CC) -std=c11 -O1 -o $@ $<
$(O)/web_assets.c: $(O)/tools/embed $(WEB_FILES)
	$(QGEN)$(O)/tools/embed $(WEB_FILES) > $@.tmp && mv $@.tmp $@
$(O)/web_assets.o: $(O)/web_assets.c
	$(QCC)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -Wno-overlength-strings -c -o $@ $<

$(O)/gotuned: $(LIB_OBJ) $(O)/server/main.o
	$(QLD)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

agent: $(O)/gotuned-agent
$(O)/gotuned-agent: $(AGENT_OBJ) $(O)/agent/main.o $(AGENT_DEPS)
	$(QLD)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(AGENT_LIBS)

$(O)/unit-tests: $(LIB_OBJ) $(AGENT_OBJ) $(UNIT_OBJ)
	$(QLD)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) \
	    $(shell pkg-config --libs libcurl 2>/dev/null) $(TEST_LIBS)

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p $(DATA_DIR)
	exec $(O)/gotuned --listen $(LISTEN) --data-dir $(DATA_DIR)

# Every suite; cmocka prints its summary on stderr, hence 2>&1.
test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit gotest http e2e browser
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory fuzz-smoke

unit: $(O)/unit-tests
	$(O)/unit-tests 2>&1

# The Go agent library (agent/go) and the example that the e2e tests run:
# Debian's Go, standard library only, offline, caches under $(O)/go.
GO_ENV := GOFLAGS=-mod=mod GOPROXY=off GOCACHE=$(abspath $(O))/go/cache \
          GOPATH=$(abspath $(O))/go/path
gotest:
	cd agent/go && $(GO_ENV) go vet ./... && $(GO_ENV) go test -race ./... 2>&1
	cd tests/go/libagent && $(GO_ENV) go vet ./...

http: $(O)/gotuned
	GOTUNED_BIN=$(abspath $(O)/gotuned) $(NODE_TEST) tests/http/ 2>&1

e2e: $(O)/gotuned $(O)/gotuned-agent
	GOTUNED_BIN=$(abspath $(O)/gotuned) GOTUNED_AGENT_BIN=$(abspath $(O)/gotuned-agent) \
	    $(NODE_TEST) tests/e2e/ 2>&1

# The dashboard in a real browser: Debian's chromium driven by playwright-core
# (tests/browser/package-lock.json; npm ci only when node_modules is missing or
# older than the lock file; never a browser download). Screenshots go to
# $(O)/screenshots.
tests/browser/node_modules: tests/browser/package-lock.json
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser --no-audit --no-fund
	@touch $@

browser: $(O)/gotuned tests/browser/node_modules
	@rm -rf $(O)/screenshots
	GOTUNED_BIN=$(abspath $(O)/gotuned) GOTUNED_SCREENSHOTS=$(abspath $(O))/screenshots \
	    $(NODE_TEST) tests/browser/ 2>&1

asan:
	@$(MAKE) --no-print-directory O=build-asan \
	    CFLAGS='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined' \
	    LDFLAGS='-fsanitize=address,undefined' agent unit http

# libFuzzer targets (tests/fuzz/, docs/fuzz.md), built with Debian's clang
# into build-fuzz: the library objects get the fuzzer's coverage
# instrumentation (fuzzer-no-link) plus ASan and UBSan, the targets link
# libFuzzer's main. `make fuzz` runs each for FUZZ_SECONDS, two at a time at
# most (FUZZ_JOBS), niced, on a working corpus in build-fuzz/corpus seeded
# from tests/fuzz/corpus (never written to); crash files land in build-fuzz/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 600
FUZZ_JOBS    ?= 1
FUZZ_TARGETS := schedtrace telemetry router jdoc
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(O)/fuzz/fuzz_%)
FUZZ_API_OBJ := $(O)/tests/fuzz/harness.o $(LIB_OBJ)

fuzz-build: deps
	@$(MAKE) --no-print-directory O=build-fuzz CC=$(FUZZ_CC) \
	    CFLAGS='-g -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN)' fuzz-bins

fuzz-bins: $(FUZZ_BINS)
# Kept, so that a relink does not recompile them.
.SECONDARY: $(FUZZ_TARGETS:%=$(O)/tests/fuzz/fuzz_%.o) $(O)/tests/fuzz/harness.o

$(O)/fuzz/fuzz_schedtrace: $(O)/tests/fuzz/fuzz_schedtrace.o $(patsubst %.c,$(O)/%.o,$(wildcard tuner/*.c))
	@mkdir -p $(dir $@)
	$(QLD)$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $^ -lm
# The JSON reader against jansson: nothing else of gotuned.
$(O)/fuzz/fuzz_jdoc: $(O)/tests/fuzz/fuzz_jdoc.o $(O)/api/jdoc.o
	@mkdir -p $(dir $@)
	$(QLD)$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $^ \
	    $(shell pkg-config --libs jansson 2>/dev/null) -lm
$(O)/fuzz/fuzz_%: $(O)/tests/fuzz/fuzz_%.o $(FUZZ_API_OBJ)
	@mkdir -p $(dir $@)
	$(QLD)$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $^ $(LIBS)

fuzz: fuzz-build
	@FUZZ_JOBS=$(FUZZ_JOBS) tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	@FUZZ_JOBS=1 tests/fuzz/run.sh build-fuzz 10 $(FUZZ_TARGETS)

# Benchmarks print figures and never pass or fail on a time, so `make test`
# does not run them. Each script in BENCH_SCRIPTS starts its own server and
# stops it again; a new scenario adds its script (and its client, if it has
# one, to BENCH_BINS). Every script runs even when one fails.
BENCH_BINS    := $(O)/bench/waiters $(O)/bench/fleet
BENCH_SCRIPTS := bench/waiters.sh bench/agent.sh bench/http.sh

# Benchmark clients use nothing beyond libc (glibc 2.34+ holds pthreads).
$(BENCH_BINS): $(O)/bench/%: $(O)/bench/%.o
	$(QLD)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<

# The tuner micro-benchmark is no client and its script starts no server: it
# links the tuner's objects (pure C and libm) and calls them in-process.
# Added after the libc-only rule above, whose target list is read where it
# stands.
BENCH_BINS    += $(O)/bench/tuner
BENCH_SCRIPTS += bench/tuner.sh
$(O)/bench/tuner: $(O)/bench/tuner.o $(patsubst %.c,$(O)/%.o,$(wildcard tuner/*.c))
	$(QLD)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lm

# The request-body parser micro-benchmark: api/jdoc.c against jansson's
# json_loadb, in-process (docs/jdoc.md).
BENCH_BINS    += $(O)/bench/jdoc
BENCH_SCRIPTS += bench/jdoc.sh
$(O)/bench/jdoc: $(O)/bench/jdoc.o $(O)/api/jdoc.o
	$(QLD)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs jansson 2>/dev/null) -lm

# deps.sh --bench adds what only the benchmarks use: wrk and the reference
# servers of bench/http.sh (nginx, the Pushgateway, etcd).
bench:
	@scripts/deps.sh --bench
	@$(MAKE) --no-print-directory $(O)/gotuned $(BENCH_BINS)
	@rm -rf $(O)/bench/results $(O)/bench/waiters.json
	@rc=0; for s in $(BENCH_SCRIPTS); do \
	    O=$(O) GOTUNED_BIN=$(abspath $(O)/gotuned) $$s || rc=1; \
	done; node bench/summary.js $(O) || rc=1; exit $$rc

install: $(O)/gotuned $(O)/gotuned-agent
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(O)/gotuned $(DESTDIR)$(PREFIX)/bin/gotuned
	install -m 0755 $(O)/gotuned-agent $(DESTDIR)$(PREFIX)/bin/gotuned-agent

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(O) -name '*.d' 2>/dev/null)
