# Sluice: the two commands are `make run` and `make test`. Both install what is missing.
BUILD ?= build
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
FUZZ_SECONDS ?= 60
LISTEN ?= 127.0.0.1:8080
DATA_DIR ?= ./sluice-data

.PHONY: all deps build run run-postgres test unit fuzz bench bench-smoke bench-seed bench-ramp \
	bench-dashboard clean format

all: build

deps:
	@scripts/install-deps.sh build
	@scripts/fetch-duckdb.sh
	@scripts/build-web.sh deps

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DSLUICE_WERROR=ON >/dev/null
	@ninja -C $(BUILD) -j$(JOBS)

# Starts the embedded default (disk buffer, no outside services) on $(LISTEN).
run: build
	$(BUILD)/sluice serve --listen $(LISTEN) --data-dir $(DATA_DIR)

# The same with the PostgreSQL hot store: a local primary and streaming replica (kept in
# ./sluice-pg), exports and engine=postgres queries on the replica. Development only.
run-postgres: build
	@scripts/install-deps.sh test
	@scripts/run-postgres.sh $(BUILD) $(LISTEN) $(DATA_DIR)-pg

# Installs test peers, builds, runs every test (unit, integration, a short fuzz run).
test:
	@scripts/install-deps.sh test
	@$(MAKE) --no-print-directory build
	@scripts/test.sh $(BUILD)

# Unit tests only (fast).
unit: build
	@cd $(BUILD) && ctest -L unit --output-on-failure -j$(JOBS)

# libFuzzer on the event parser, for FUZZ_SECONDS, with ASan+UBSan (clang from Debian).
fuzz: deps
	@scripts/install-deps.sh test
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DSLUICE_FUZZ=ON >/dev/null
	@ninja -C build-fuzz -j$(JOBS) parser_fuzz
	@mkdir -p build-fuzz/corpus && cp -n src/event/fuzz_corpus/* build-fuzz/corpus/ 2>/dev/null || true
	build-fuzz/src/event/parser_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	  -rss_limit_mb=2048 -print_final_stats=1 build-fuzz/corpus

# The seed workload (issue 7), 2-minute smoke run of both stacks (embedded; Redis buffer +
# PostgreSQL primary/replica), failing on any lost or duplicated acknowledged event. CI runs it.
bench-smoke:
	@scripts/install-deps.sh test
	@$(MAKE) --no-print-directory build
	@SMOKE=1 bench/seed.sh $(BUILD)

# The full seed run (15 minutes per stack, plus the limits); the report block is in
# $(BUILD)/bench-seed/report.md.
bench-seed:
	@scripts/install-deps.sh test
	@$(MAKE) --no-print-directory build
	@bench/seed.sh $(BUILD)

# The highest rate each stack sustains for 5 minutes (p99 <= 50 ms, flat backlog, exactly
# once); the report block is in $(BUILD)/bench-ramp/ramp.md.
bench-ramp:
	@scripts/install-deps.sh test
	@$(MAKE) --no-print-directory build
	@bench/seed_ramp.sh $(BUILD)

# The dashboard's cost (bench/dashboard.sh): page load time, and the browser's CPU while the
# live view is open and the server takes 12,000 events/s; the report is in
# $(BUILD)/bench-dashboard/report.md.
bench-dashboard:
	@scripts/install-deps.sh test
	@$(MAKE) --no-print-directory build
	@npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error >/dev/null
	@bench/dashboard.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-fuzz web/dist

format:
	@find src tests -name '*.cc' -o -name '*.h' | xargs clang-format -i
