# The two set-up commands of the README, on a fresh Debian 12 machine as root:
#   make serve   installs what is missing, builds (release), runs the embedded default
#   make test    installs what is missing, builds, runs every test
SHELL := /bin/bash
.DEFAULT_GOAL := help

APT_PACKAGES := pkg-config libmicrohttpd-dev libjansson-dev libnghttp2-dev \
                protobuf-compiler libprotobuf-dev zlib1g-dev nghttp2-client wrk curl \
                libssl-dev libgnutls28-dev openssl
# The web page's browser tests (Tests/interop/test_web_page.py): `make test` only.
BROWSER_PACKAGES := chromium chromium-driver
VENV := .venv
PYTHON := $(VENV)/bin/python
REQUIREMENTS := Tests/interop/requirements.txt
DEBUG_BIN := .build/debug/outliers
RELEASE_BIN := .build/release/outliers
SERVE_ARGS ?=
# libFuzzer targets (Fuzz/, a package of its own): seconds per target.
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 5

.PHONY: install help deps apt browser venv build release serve test test-swift test-interop test-sanitize check-generated bench bench-peers soak \
        generate clean fuzz-build fuzz fuzz-smoke

help:
	@echo "make serve   install what is missing, build release, run the embedded default"
	@echo "make test    install what is missing, build, run every test"
	@echo "make test-sanitize   the Swift tests under ThreadSanitizer, then AddressSanitizer"
	@echo "make fuzz    every libFuzzer target for FUZZ_SECONDS (300) each; make fuzz-smoke: a few seconds each"
	@echo "make bench-peers   ours and the Go and Python peers side by side (benchmarks/README.md)"
	@echo "make install [PREFIX=/usr/local]   the binaries, a man page per program, bash/zsh/fish completions"
	@echo "make deps | build | release | bench | soak | generate | clean"

deps: apt venv

# The browser the web page's tests drive, installed only when missing.
browser:
	$(call install_missing,$(BROWSER_PACKAGES))

# Installs those of the apt packages $(1) that are missing (apt-get update runs once then).
install_missing = @missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

apt:
	$(call install_missing,$(APT_PACKAGES))

# The Python venv for the interop tests; rebuilt when the pins change.
venv: $(VENV)/.installed
$(VENV)/.installed: $(REQUIREMENTS)
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --disable-pip-version-check -r $(REQUIREMENTS)
	@touch $@

build: apt
	swift build

release: apt
	swift build -c release

serve: deps release
	$(RELEASE_BIN) serve $(SERVE_ARGS)

# The release binaries into $(DESTDIR)$(PREFIX)/bin, man pages written by
# swift-argument-parser's generate-manual plugin, and its completion scripts.
PREFIX ?= /usr/local
MAN_BUILD := .build/manual
install: deps release
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	  $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 755 .build/release/outliers .build/release/outliers-bench $(DESTDIR)$(PREFIX)/bin/
	rm -rf $(MAN_BUILD) && mkdir -p $(MAN_BUILD)
	swift package --allow-writing-to-directory $(MAN_BUILD) generate-manual --output-directory $(MAN_BUILD) >/dev/null
	install -m 644 $(MAN_BUILD)/outliers.1 $(DESTDIR)$(PREFIX)/share/man/man1/outliers.1
	install -m 644 "$(MAN_BUILD)/outliers bench.1" $(DESTDIR)$(PREFIX)/share/man/man1/outliers-bench.1
	$(RELEASE_BIN) --generate-completion-script bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/outliers
	$(RELEASE_BIN) --generate-completion-script zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_outliers
	$(RELEASE_BIN) --generate-completion-script fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/outliers.fish
	@echo "installed outliers in $(DESTDIR)$(PREFIX): bin/outliers, bin/outliers-bench, man 1 outliers, completions"

# One build flow: `swift build --build-tests` makes the binary the interop tests run
# and the test bundle, and `swift test --skip-build` runs the latter without a rebuild.
# Last, the release build `make serve` runs (in .build/release, apart from the debug
# one): it can fail where the debug build passes (a C declaration visible in debug
# only broke it once).
test: deps browser check-generated
	swift build --build-tests
	swift test --skip-build
	$(MAKE) --no-print-directory test-interop
	$(MAKE) --no-print-directory fuzz-smoke
	swift build -c release

# The Swift tests under ThreadSanitizer, then AddressSanitizer; not part of `make test`
# (two full sanitized builds: minutes of CI). Each has its own build folder, so neither
# replaces .build. Any report fails: TSan stops at the first (halt_on_error=1), ASan always
# does, and the output is searched for reports besides. Leaks are not checked
# (detect_leaks=0): LeakSanitizer reports what the Swift runtime keeps for the process's life.
test-sanitize: apt
	@mkdir -p .build-tsan .build-asan
	set -o pipefail; TSAN_OPTIONS=halt_on_error=1 swift test --sanitize=thread --scratch-path .build-tsan 2>&1 \
	  | tee .build-tsan/test.log
	@! grep -q "WARNING: ThreadSanitizer" .build-tsan/test.log || { echo "ThreadSanitizer reports in .build-tsan/test.log"; exit 1; }
	set -o pipefail; ASAN_OPTIONS=detect_leaks=0 swift test --sanitize=address --scratch-path .build-asan 2>&1 \
	  | tee .build-asan/test.log
	@! grep -q "ERROR: AddressSanitizer" .build-asan/test.log || { echo "AddressSanitizer reports in .build-asan/test.log"; exit 1; }

test-interop: venv browser
	OUTLIERS_BIN=$(CURDIR)/$(DEBUG_BIN) $(PYTHON) -m pytest -q Tests/interop

check-generated: apt
	scripts/generate-protos --check

generate: apt
	scripts/generate-protos

# `-Xswiftc -sanitize=fuzzer,address` instruments every module (ours and
# swift-protobuf); SwiftPM's `--sanitize=fuzzer --sanitize=address` pair would link
# libFuzzer but lose the coverage instrumentation. -parse-as-library: the targets
# have no main, libFuzzer's is used. SwiftPM keeps the path dependency's old file
# list in Fuzz/.build, so after a source file of the main package is renamed the
# build fails with "missing inputs": then it is built once more from clean.
FUZZ_BUILD := swift build -c debug --package-path Fuzz --sanitize=fuzzer \
	  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
fuzz-build: apt
	$(FUZZ_BUILD) || { echo "fuzz-build: building Fuzz/ again from clean"; rm -rf Fuzz/.build; $(FUZZ_BUILD); }

# One target at a time, niced: the machine is shared.
fuzz: fuzz-build
	scripts/fuzz $(FUZZ_SECONDS)

# Every committed input of every target once, then FUZZ_SMOKE_SECONDS of fuzzing each.
fuzz-smoke: fuzz-build
	scripts/fuzz --smoke $(FUZZ_SMOKE_SECONDS)

bench: deps release
	$(RELEASE_BIN) bench

# Ours against grpc-go, grpc-gateway v1.6.4, a Go encoding/json proxy and the article's
# Python server, in one run (benchmarks/README.md; about 10 minutes with R=3).
bench-peers: deps release
	benchmarks/peers/setup.sh
	benchmarks/side-by-side.sh

# 1,000,000 requests (SOAK_REQUESTS) through `outliers serve` with wrk: fails on a wrong
# answer, 10 MiB of resident memory growth, or descriptors left open. `make test` runs
# a bounded 100,000 (Tests/interop/test_soak.py).
soak: apt release
	SOAK_BIN=$(RELEASE_BIN) scripts/soak

clean:
	rm -rf .build Fuzz/.build .build-fuzz
