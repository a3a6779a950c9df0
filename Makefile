# The two set-up commands of the README, on a fresh Debian 12 machine as root:
#   make serve   installs what is missing, builds (release), runs the embedded default
#   make test    installs what is missing, builds, runs every test
SHELL := /bin/bash
.DEFAULT_GOAL := help

APT_PACKAGES := pkg-config libmicrohttpd-dev libjansson-dev libnghttp2-dev \
                protobuf-compiler libprotobuf-dev zlib1g-dev nghttp2-client wrk curl
VENV := .venv
PYTHON := $(VENV)/bin/python
REQUIREMENTS := Tests/interop/requirements.txt
DEBUG_BIN := .build/debug/outliers
RELEASE_BIN := .build/release/outliers
SERVE_ARGS ?=
# libFuzzer targets (Fuzz/, a package of its own): seconds per target.
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 5

.PHONY: help deps apt venv build release serve test test-swift test-interop check-generated bench generate clean \
        fuzz-build fuzz fuzz-smoke

help:
	@echo "make serve   install what is missing, build release, run the embedded default"
	@echo "make test    install what is missing, build, run every test"
	@echo "make deps | build | release | bench | generate | clean"
	@echo "make fuzz    every libFuzzer target for FUZZ_SECONDS (300) each; make fuzz-smoke: a few seconds each"

deps: apt venv

# apt packages, installed only when one is missing (apt-get update runs once then).
apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

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

# One build flow: `swift build --build-tests` makes the binary the interop tests run
# and the test bundle, and `swift test --skip-build` runs the latter without a rebuild.
test: deps check-generated
	swift build --build-tests
	swift test --skip-build
	$(MAKE) --no-print-directory test-interop
	$(MAKE) --no-print-directory fuzz-smoke

test-interop: venv
	OUTLIERS_BIN=$(CURDIR)/$(DEBUG_BIN) $(PYTHON) -m pytest -q Tests/interop

check-generated: apt
	scripts/generate-protos --check

generate: apt
	scripts/generate-protos

# `-Xswiftc -sanitize=fuzzer,address` instruments every module (ours and
# swift-protobuf); SwiftPM's `--sanitize=fuzzer --sanitize=address` pair would link
# libFuzzer but lose the coverage instrumentation. -parse-as-library: the targets
# have no main, libFuzzer's is used.
fuzz-build: apt
	swift build -c debug --package-path Fuzz --sanitize=fuzzer \
	  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library

# One target at a time, niced: the machine is shared.
fuzz: fuzz-build
	scripts/fuzz $(FUZZ_SECONDS)

# Every committed input of every target once, then FUZZ_SMOKE_SECONDS of fuzzing each.
fuzz-smoke: fuzz-build
	scripts/fuzz --smoke $(FUZZ_SMOKE_SECONDS)

bench: deps release
	$(RELEASE_BIN) bench

clean:
	rm -rf .build Fuzz/.build .build-fuzz
