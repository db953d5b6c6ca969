# Thin wrapper over CMake so that the everyday commands are short.
#   make          release build into build/
#   make test     build and run every test (ctest)
#   make run      build and serve www/ on http://127.0.0.1:8080/
#   make asan     build with ASan+UBSan into build-asan/ and run every test there
#   make bench    side-by-side benchmarks against the peers (see bench/README.md)
#   make fuzz     build the libFuzzer targets and run each for FUZZ_SECONDS
#   make valgrind Debug build in build-valgrind/, unit tests and a server cycle under valgrind
#   make lint     cppcheck and clang-tidy (.clang-tidy) over src/ and cli/; fails on any finding
#   make coverage gcc --coverage build in build-coverage/, every test, line coverage of src/
#   make install  PREFIX=/usr/local
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE ?= cmake
FUZZ_SECONDS ?= 60
CTEST_ARGS ?= --output-on-failure -j2

.PHONY: all deps build test run asan bench fuzz valgrind lint coverage install clean

all: build

deps:
	@scripts/install-deps

# Plain `make` needs only the compiler and the libraries: the tests are built along when their
# tools (cmocka, python3) are already there, and `make test` installs and builds them.
BUILD_TESTS ?= $(shell pkg-config --exists cmocka 2>/dev/null && command -v python3 >/dev/null && echo ON || echo OFF)

build: deps
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=Release -DNK_WERROR=ON -DCMAKE_INSTALL_PREFIX=$(PREFIX) -DNK_TESTS=$(BUILD_TESTS) >/dev/null
	@$(CMAKE) --build build -j$(JOBS)

test: deps
	@scripts/install-deps test browser
	@$(MAKE) --no-print-directory build BUILD_TESTS=ON
	cd build && ctest $(CTEST_ARGS)

run: build
	./build/netkit http serve www -l 127.0.0.1:8080

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
