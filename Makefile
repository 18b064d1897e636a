# Kiln — the commands users of the original pipeline know, on the Rust steps.
# `make help` lists them.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Keep build output outside the clone so repeat runs are incremental.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/kiln-target

CACHE       := $(CURDIR)/.cache
VENV        := $(CACHE)/venv
TOOLS       := $(CACHE)/tools
SPEC        ?= examples/adult/spec.yaml
RUN         ?= kiln-runs/adult
# `make run` builds with this profile: optimised, but cheap to build cold (see Cargo.toml).
RUN_PROFILE ?= fast-release
KILN        := $(CARGO_TARGET_DIR)/$(RUN_PROFILE)/kiln

# Pinned test dependencies.
PYARROW_VERSION := 22.0.0
S3S_FS_VERSION  := 0.14.1

.PHONY: help install build run data prepare data-quality validate train evaluate fairness \
        register test test-deps lint fmt bench version clean distclean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: ## Install the kiln binaries into ~/.cargo/bin
	cargo install --locked --profile $(RUN_PROFILE) --path crates/cli
	cargo install --locked --profile $(RUN_PROFILE) --path crates/prepare

build: ## Build the kiln binaries for `make run`
	cargo build --locked --profile $(RUN_PROFILE) --bins

data: ## Find (or download and checksum) the UCI Adult files
	@scripts/adult-data.sh

run: build ## Run the whole pipeline on the Adult example
	KILN_ADULT_DIR="$$(scripts/adult-data.sh)" $(KILN) run --spec $(SPEC) --run $(RUN)

prepare: build ## Run the prepare step alone on the Adult example
	KILN_ADULT_DIR="$$(scripts/adult-data.sh)" $(KILN) prepare --spec $(SPEC) --run $(RUN)

data-quality validate train evaluate fairness register: ## (steps not built yet: exit 2)
	@echo "make $@: the $@ step is not implemented in this version of Kiln" >&2; exit 2

test-deps: $(VENV)/.installed $(TOOLS)/bin/s3s-fs ## Install what the tests need under .cache/

$(VENV)/.installed:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check pyarrow==$(PYARROW_VERSION)
	touch $@

$(TOOLS)/bin/s3s-fs:
	cargo install --locked --quiet s3s-fs --version $(S3S_FS_VERSION) --features binary \
	  --root $(TOOLS) --target-dir $(CARGO_TARGET_DIR)/tools

test: test-deps ## Run every test (installs and starts what they need)
	cargo build --locked --bins
	KILN_TEST_PYTHON=$(VENV)/bin/python KILN_TEST_S3S_FS=$(TOOLS)/bin/s3s-fs \
	KILN_ADULT_DIR="$$(scripts/adult-data.sh)" \
	  cargo test --locked --workspace --no-fail-fast

lint: ## cargo fmt --check and clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --locked --workspace --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt --all

bench: ## Benchmarks (release build); results go in docs/benchmarks.md by hand
	cargo build --locked --release --bins
	KILN_ADULT_DIR="$$(scripts/adult-data.sh)" benches/prepare.sh

version: ## Print the kiln version
	@cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="kiln-cli"))'

clean: ## Remove pipeline outputs (kiln-runs/)
	rm -rf kiln-runs

distclean: clean ## Also remove .cache/ (venv, tools, downloaded data)
	rm -rf $(CACHE)
