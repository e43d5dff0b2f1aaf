# A thin wrapper over CMake and ctest; see README.md.
BUILD ?= build
ASAN_BUILD ?= build-asan
PORT ?= 8080
REDIS_PORT ?= 6390
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local

.PHONY: all deps test-deps cluster-deps build install run run-cluster test test-asan check bench bench-lua bench-cluster bench-recover bench-memory fuzz format lint clean

all: build

deps:
	.ci/install-deps

test-deps:
	.ci/install-deps --test

cluster-deps:
	.ci/install-deps --cluster

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

# Installs under $(PREFIX) (/usr/local): bin/luahub, share/luahub/ (the
# runtime, the shipped scripts, the chat page, an example config.lua),
# the man page luahub(1), lib/systemd/system/luahub.service, and the docs
# in share/doc/luahub. DESTDIR=/staging is honoured, for packages.
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# Starts the server on port $(PORT) with the shipped scripts and the chat
# page at http://localhost:$(PORT)/
run: build
	./$(BUILD)/luahub --port $(PORT) --scripts scripts --lua lua --static examples/chat

# Two nodes over a local Redis (redis-server on 127.0.0.1:$(REDIS_PORT), no
# persistence, in a temp dir), as `make run` with --redis: the chat page at
# http://localhost:$(PORT)/ and on the next port. Ctrl-C stops all three.
run-cluster: cluster-deps build
	PORT=$(PORT) REDIS_PORT=$(REDIS_PORT) .ci/run-cluster $(BUILD)

# Every test: C unit tests (cmocka), Lua specs (busted), integration tests
# against the real binary (Node.js + ws), the browser test (Chromium).
test: test-deps build
	cd $(BUILD) && ctest -V

# The same suite against a build with AddressSanitizer and UBSan.
test-asan: test-deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLUAHUB_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/.ci/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest -V

check: lint test test-asan

# The standard benchmark set: luahub against the limit server and the
# uWebSockets yardstick (Bun, fetched from npm into build/bun on first use;
# BENCH_UWS=0 leaves it out), pinned (server on CPU 0, load on CPU 1), then
# the Lua handlers against the same handlers in C. Two tables; about 5
# minutes.
bench: build
	tests/bench/run.sh $(BUILD)
	tests/bench/lua_vs_c.sh $(BUILD)
	@if command -v redis-server >/dev/null; then tests/bench/cluster.sh $(BUILD); \
	else echo "bench: the cross-node rows need redis-server (.ci/install-deps --cluster): not run"; fi

# Only the Lua-against-C comparison (about 1 minute).
bench-lua: build
	tests/bench/lua_vs_c.sh $(BUILD)

# Several nodes over one Redis (needs redis-server): a publisher on node A
# and subscribers on node B, against one node and against both on node B,
# with each node's and Redis's CPU (BENCH_REPS=3 for medians; about 1.5
# minutes a rep).
bench-cluster: build
	tests/bench/cluster.sh $(BUILD)

# Recovery: the time from a join_room with since to its ack carrying 1,000
# missed messages, on one node and across two over Redis (needs
# redis-server and the integration tests' npm modules; under a minute).
bench-recover: build
	tests/bench/recover.sh $(BUILD)

# Memory: the server's RSS idle, with 10,000 idle connections (bytes per
# connection), through a burst fanned out to 3,000 clients in one room,
# after they leave, and after 10,000 connect and go (about 40 seconds;
# MEM_PRELOAD=/path/to/libjemalloc.so.2 for another allocator).
bench-memory: build
	tests/bench/memory.sh $(BUILD)

# libFuzzer (clang) on what clients send: frames through the envelope
# check and JSON parser, tokens through auth, request heads through the
# front door's parsers; FUZZ_SECONDS each (60), or FUZZ_RUNS inputs each.
fuzz:
	tests/fuzz/run.sh

# The C sources clang-format keeps (the repo's .clang-format).
C_FILES = $(wildcard core/*.c core/*.h tests/unit/*.c tests/bench/*.c \
            tests/bench/*.h tests/fuzz/*.c tests/support/*.h)

# Rewrites the C sources in the house format.
format:
	clang-format -i $(C_FILES)

# Fails on any formatting difference, cppcheck finding or clang-tidy
# warning (.clang-tidy says which checks and why).
lint: test-deps
	clang-format --dry-run --Werror $(C_FILES)
	cppcheck --enable=warning,performance,portability --std=c11 --quiet \
	  --error-exitcode=1 --inline-suppr -I core core
	cmake -S . -B build-lint -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
	  -DLUAHUB_TESTS=OFF >/dev/null
	clang-tidy -p build-lint --quiet core/*.c

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
