# Thin wrapper over CMake so that the everyday commands are short.
#   make          release build into build/
#   make test     build and run every test (ctest)
#   make run      build and serve www/ on http://127.0.0.1:8080/ (PORT=N, DIR=PATH, HOST=ADDR)
#   make asan     build with ASan+UBSan into build-asan/ and run every test there
#   make bench    side-by-side benchmarks against the peers (see bench/README.md)
#   make fuzz     build the libFuzzer targets and run each for FUZZ_SECONDS
#   make valgrind Debug build in build-valgrind/, unit tests and a server cycle under valgrind
#   make lint     cppcheck and clang-tidy (.clang-tidy) over src/ and cli/; fails on any finding
#   make coverage gcc --coverage build in build-coverage/, every test, line coverage of src/
#   make install  PREFIX=/usr/local
#   make abi-check     build-abi/: the shared libraries' ABI against abi/*.abi (abidiff)
#   make abi-baseline  rewrite abi/*.abi from this tree (after a deliberate, logged break)
#   make docs          API reference from the header comments (Doxygen) into build-docs/html
#   make help     this list
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE ?= cmake
FUZZ_SECONDS ?= 60
CTEST_ARGS ?= --output-on-failure -j2
PORT ?= 8080
DIR ?= www
HOST ?= 127.0.0.1

# cmake --build runs make below this one, and every sub-make would announce each directory it
# enters and leaves: keep the output to what is built (V=1 shows the commands as well).
MAKEFLAGS += --no-print-directory
ifeq ($(V),1)
BUILD_VERBOSE = --verbose
endif

.PHONY: all deps build test run asan bench fuzz valgrind lint coverage install clean help

all: build

deps:
	@scripts/install-deps

# Plain `make` needs only the compiler and the libraries: the tests are built along when their
# tools (cmocka, python3) are already there, and `make test` installs and builds them.
BUILD_TESTS ?= $(shell pkg-config --exists cmocka 2>/dev/null && command -v python3 >/dev/null && echo ON || echo OFF)

build: deps
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=Release -DNK_WERROR=ON -DCMAKE_INSTALL_PREFIX=$(PREFIX) -DNK_TESTS=$(BUILD_TESTS) >/dev/null
	@$(CMAKE) --build build -j$(JOBS) $(BUILD_VERBOSE)

test: deps
	@scripts/install-deps test browser
	@$(MAKE) --no-print-directory build BUILD_TESTS=ON
	cd build && ctest $(CTEST_ARGS)

run: build
	./build/netkit http serve $(DIR) -l $(HOST):$(PORT)

asan: deps
	@scripts/install-deps test
	@$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNK_WERROR=ON -DNK_SANITIZE=ON >/dev/null
	@$(CMAKE) --build build-asan -j$(JOBS)
	@rm -rf build-asan/sanitizer-logs && mkdir -p build-asan/sanitizer-logs
	# Every process of the suite (servers started by the integration tests included) writes its
	# sanitizer reports into sanitizer-logs; any report fails the run, even from a process
	# whose exit status no test looked at.
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$(CURDIR)/build-asan/sanitizer-logs/asan \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(CURDIR)/build-asan/sanitizer-logs/ubsan \
		ctest $(CTEST_ARGS)
	@if ls build-asan/sanitizer-logs/* >/dev/null 2>&1; then \
		echo "sanitizer reports:"; head -n 60 build-asan/sanitizer-logs/*; exit 1; fi

bench: build
	@scripts/install-deps bench
	bench/run-all.sh

fuzz: deps
	@scripts/install-deps fuzz
	@$(CMAKE) -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DNK_WERROR=ON -DCMAKE_BUILD_TYPE=Debug -DNK_FUZZ=ON -DNK_TESTS=OFF >/dev/null
	@$(CMAKE) --build build-fuzz -j$(JOBS) --target fuzz_all
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run-all.sh build-fuzz

valgrind: deps
	@scripts/install-deps valgrind
	@$(CMAKE) -S . -B build-valgrind -DCMAKE_BUILD_TYPE=Debug -DNK_WERROR=ON -DNK_SANITIZE=OFF >/dev/null
	@$(CMAKE) --build build-valgrind -j$(JOBS)
	scripts/valgrind.sh build-valgrind

lint: deps
	@scripts/install-deps lint
	scripts/lint.sh

coverage: deps
	@scripts/install-deps coverage
	JOBS=$(JOBS) scripts/coverage.sh build-coverage

install: build
	$(CMAKE) --install build --prefix $(PREFIX)

clean:
	rm -rf build build-asan build-fuzz build-lint build-coverage

help:
	@echo 'usage: make [TARGET] [VAR=VALUE...]'
	@echo '  make build     release build into build/ (the default): netkit, libnetkit, libnetkit-httpd'
	@echo '  make test      build, then every unit and integration test (ctest)'
	@echo '  make run       build and serve DIR on http://HOST:PORT/ (DIR=www, HOST=127.0.0.1, PORT=8080)'
	@echo '  make asan      every test built with ASan+UBSan in build-asan/'
	@echo '  make bench     side-by-side benchmarks against nginx, lighttpd, h2o (bench/README.md)'
	@echo '  make fuzz      libFuzzer targets, each for FUZZ_SECONDS (default 60)'
	@echo '  make valgrind  unit tests and a server cycle under valgrind'
	@echo '  make lint      cppcheck and clang-tidy; fails on any finding'
	@echo '  make coverage  line coverage of src/ from the whole suite'
	@echo '  make install   binary, libraries, headers, pkg-config files, man page (PREFIX=/usr/local)'
	@echo '  make clean     remove the build folders'
	@echo '  make abi-check the shared libraries against the ABI baselines in abi/ (abidiff)'
	@echo '  make abi-baseline  rewrite abi/*.abi after a deliberate break (log it in CHANGELOG.md)'
	@echo '  make man-options  rewrite the option lists of docs/netkit.1 from the commands'"'"' tables'
	@echo '  make docs      API reference from the header comments into build-docs/html (Doxygen)'
	@echo '  make help      this list'
	@echo 'variables: PORT= DIR= HOST= (run), PREFIX= (install), JOBS= (parallel jobs),'
	@echo '  CTEST_ARGS= (test, asan), FUZZ_SECONDS= (fuzz), V=1 (show every command)'

.PHONY: abi-check abi-baseline

# Not part of `make test` (it builds the libraries once more): see scripts/abi.sh.
abi-check: deps
	@scripts/install-deps abi
	JOBS=$(JOBS) scripts/abi.sh check build-abi

abi-baseline: deps
	@scripts/install-deps abi
	JOBS=$(JOBS) scripts/abi.sh baseline build-abi

.PHONY: man-options

# The option lists of docs/netkit.1 from the commands' option tables (cli/opt.h).
man-options: build
	scripts/man-options.py build/netkit docs/netkit.1

.PHONY: docs

# Fails on any Doxygen warning and on a public function without a description.
docs:
	@scripts/install-deps docs
	@rm -rf build-docs && mkdir -p build-docs
	doxygen Doxyfile
	python3 scripts/docs-check.py build-docs include/netkit
