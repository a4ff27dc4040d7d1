# SPDX-License-Identifier: Apache-2.0
# sotto: the commands people type. CMake does the work underneath.
#
#   make          build everything into build/ (executables in build/bin/)
#   make check    install what is missing, build with -Werror, run every test,
#                 run every benchmark in smoke mode (bench-smoke: every row
#                 must be produced), then rebuild and rerun the whole suite under ASan+UBSan,
#                 then build the libFuzzer targets with clang and run them
#                 over their committed corpora
#   make demo     install what is missing, build, and run the end-to-end demo:
#                 a local server, alice, bob and carol talking (scripts/demo.sh)
#   make bench    run the benchmark programs (tables, not tests)
#   make tsan     build with ThreadSanitizer into build-tsan/ and run the
#                 threaded tests (TSAN_TESTS); a race report from any process
#                 fails its test (scripts/tsan.sh). Not part of make check
#   make deps     install Debian packages and fetch the pinned npm sources
#                 (PQClean; the libsignal 0.103 Node test peer)
#   make fuzz     build the libFuzzer targets (clang) into build-fuzz/
#   make fuzz-corpus  regenerate the seed corpora (fuzz/gen_corpus.c, fuzz/gen_kt_corpus.c)
#   make install  build and install into $(DESTDIR)$(PREFIX) (default /usr/local):
#                 sotto, sotto-server, libsotto (.so, .a, headers, sotto.pc),
#                 man pages, the systemd unit; `make uninstall` removes them
#   make deb      the Debian packages (sotto, sotto-server, libsotto0,
#                 libsotto-dev) into build-deb/, built from a copy of the tree
#   make install-check   what CI runs after the tests: install into a scratch
#                 DESTDIR, build and run examples/demo.c against it with
#                 pkg-config only, render the man pages, build the .debs and
#                 check them (dpkg-deb --contents, lintian, dpkg --root)
#   make clean    remove the build trees

JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
BUILD  ?= build
ASAN   ?= build-asan
TSAN   ?= build-tsan
# The tests that run our threads: the server's I/O, store, blob and
# key-transparency threads (SQLite and PostgreSQL), its read pool (the _pg
# suites), a cluster of three, the attacker's load; the client's attachment
# workers. ~3 min of tests at -j2 here (docs: README.md, make targets).
TSAN_TESTS ?= ^(server|server_crash|server_attack|server_blob|server_kt|server_link|server_pg|server_devlist_pg|server_blob_pg|server_kt_pg|server_cluster|client_attach|client_attach_nodirect|client_group_attach|client_kt_pending|client_core_link)$$
FUZZB  ?= build-fuzz
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 6
PREFIX ?= /usr/local
DESTDIR ?=
DEBB   ?= build-deb

.PHONY: all build deps check test asan tsan fuzz fuzz-run fuzz-corpus bench bench-smoke demo clean install uninstall install-check deb

all: build

# Cheap when everything is present: deps.sh checks dpkg, fetch-pqclean.sh a stamp.
deps:
	@bash scripts/deps.sh
	@bash scripts/fetch-pqclean.sh
	@bash scripts/fetch-libsignal-node.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOTTO_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)

asan: deps
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DSOTTO_WERROR=ON -DSOTTO_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(ASAN) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN) --output-on-failure -j$(JOBS)

# ThreadSanitizer: a build of its own and the threaded tests (TSAN_TESTS, a
# ctest -R regex); a report from any process a test starts fails it
# (scripts/tsan.sh). Not part of `make check`.
tsan: deps
	cmake -S . -B $(TSAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOTTO_WERROR=ON -DSOTTO_TSAN=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(TSAN) -j$(JOBS)
	bash scripts/tsan.sh $(TSAN) $(JOBS) '$(TSAN_TESTS)'

fuzz: deps
	CC=clang cmake -S . -B $(FUZZB) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOTTO_FUZZ=ON -DSOTTO_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(FUZZB) -j$(JOBS)

# Each libFuzzer target replays its corpus, then fuzzes for FUZZ_SECONDS on a
# scratch copy (new finds are not written into the repository), JOBS at once
# (scripts/fuzz-run.sh).
fuzz-run: fuzz
	bash scripts/fuzz-run.sh $(FUZZB) $(FUZZ_SECONDS) $(JOBS)

# Rewrites the generated seed corpora (fuzz/corpus/*/g-*, deterministic:
# the same files on every run) with fuzz/gen_corpus.c; other files there
# (older seeds, crash regressions) are kept.
fuzz-corpus: build
	cmake --build $(BUILD) --target gen_corpus -j$(JOBS)
	rm -f fuzz/corpus/*/g-*
	$(BUILD)/bin/gen_corpus fuzz/corpus
	cmake --build $(BUILD) --target gen_kt_corpus -j$(JOBS)
	$(BUILD)/bin/gen_kt_corpus fuzz/corpus

# Every benchmark in smoke mode: each row for a fraction of a second, no
# figure judged, but a row that is missing or measured nothing fails.
bench-smoke: build
	bench/run protocol --smoke
	bench/run server --smoke
	bench/run cluster --smoke
	bench/run client --smoke
	bench/run fanout --smoke
	bench/run attach-crypto --smoke
	bench/run kt --smoke
	bench/run link --smoke

check: test bench-smoke asan fuzz-run install-check

# The prefix is a configure-time setting (the unit, sotto.pc and the man
# pages name installed paths), so install reconfigures $(BUILD) with it.
install: deps
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) -DSOTTO_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

uninstall:
	bash packaging/uninstall.sh $(BUILD) "$(PREFIX)" "$(DESTDIR)"

deb: deps
	bash packaging/build-deb.sh $(DEBB)

install-check: build
	bash packaging/ci-install-check.sh $(BUILD) $(DEBB)

# The README's demo: a local sotto-server and three clients (scripts/demo.sh).
demo: build
	bash scripts/demo.sh $(BUILD)

bench: build
	bench/run protocol

clean:
	rm -rf $(BUILD) $(ASAN) $(TSAN) $(FUZZB) $(DEBB)
