# Kiln — the commands a user types. `make help` lists them by group.
#
# Everything these targets install (Python venvs, Debian packages, cargo tools, npm) is
# pinned in scripts/deps/ and installed under .cache/ by scripts/deps/install.sh; the
# project's own automation is `cargo xtask` (xtask/); the benchmarks run through
# benches/run.sh. This file only names them.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Keep build output outside the clone so repeat runs are incremental.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/kiln-target

SPEC        ?= examples/adult/spec.yaml
RUN         ?= kiln-runs/adult
# `make run` builds with this profile: optimised, but cheap to build cold (see Cargo.toml).
RUN_PROFILE ?= fast-release
# `make images` packs binaries of this profile (stripped) into the images.
IMAGE_PROFILE ?= fast-release
KILN        := $(CARGO_TARGET_DIR)/$(RUN_PROFILE)/kiln
DEV_KILN    := $(CARGO_TARGET_DIR)/debug/kiln
DEPS        := scripts/deps/install.sh
ADULT       := KILN_ADULT_DIR="$$(scripts/adult-data.sh)"
MODEL_REF   ?= adult-income@staging
SLO_SPEC    := monitoring/slos.yaml
PROMETHEUS_URL ?= http://127.0.0.1:9090
# `make slo-check PROBE=URL`: the throughput probe, POSTing PROBE_BODY (one Adult row, V1).
PROBE       ?=
PROBE_BODY  ?= examples/adult/request.json
# The offline schemas the tests and linters check against (default ../shared/schemas).
ifdef SCHEMAS
export KILN_SCHEMAS_DIR := $(abspath $(SCHEMAS))
endif

.PHONY: help install build data test test-deps docs lint fmt version clean distclean images publish pin-images \
        run prepare validate data-quality train tune evaluate fairness register compat-ge \
        infra-init infra-plan infra-apply infra-destroy \
        serve deploy-dev deploy-dev-stop canary-demo rollback deploy-staging deploy-prod \
        metrics logs slo-rules slo-check \
        lint-manifests chaos check-cuda bench bench-prepare bench-train bench-audit bench-validate \
        bench-validate-memory bench-tune bench-tune-parallel bench-serve bench-slo-probe bench-tables \
        bench-tracking

##@ Setup

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^##@ / {printf "\n%s\n", substr($$0, 5)} \
	  /^[a-z][a-z-]*:.*## / {printf "  make %-22s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build the kiln binaries for `make run`
	cargo build --locked --profile $(RUN_PROFILE) --bins

install: ## Install every kiln* binary of the workspace into ~/.cargo/bin (from cargo metadata)
	cargo xtask install --profile $(RUN_PROFILE)

data: ## Find (or download and checksum) the UCI Adult files
	@scripts/adult-data.sh

test: test-deps ## Run every test (installs and starts what they need), fmt and clippy, the manual's link check, compat-ge, check-cuda
	$(MAKE) --no-print-directory lint
	cargo build --locked --bins
	MLFLOW_TRACKING_URI= $(ADULT) cargo test --locked --workspace --no-fail-fast
	$(MAKE) --no-print-directory lint-manifests
	$(MAKE) --no-print-directory compat-ge
	$(MAKE) --no-print-directory check-cuda

test-deps: ## Install what the tests need under .cache/ (pins in scripts/deps/)
	$(DEPS) test

docs: ## Build the manual (docs/, mdBook) into .cache/book and check its links
	$(DEPS) docs
	cargo xtask docs --out $(CURDIR)/.cache/book
	@echo "the manual: .cache/book/index.html"

lint: ## cargo fmt --check and clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --locked --workspace --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt --all

version: ## Print the kiln version
	@cargo xtask version

clean: ## Remove pipeline outputs (kiln-runs/)
	rm -rf kiln-runs

distclean: clean ## Also remove .cache/ (installed tools, downloaded data, the built manual, podman's image storage)
	scripts/images.sh reset
	rm -rf .cache

##@ ML operations (each step target runs the steps before it first: a cache hit when nothing changed)

run: build ## Run the whole pipeline on the Adult example
	$(ADULT) $(KILN) run --spec $(SPEC) --run $(RUN)

prepare: build ## Run prepare on the Adult example
	$(ADULT) $(KILN) prepare --spec $(SPEC) --run $(RUN)

validate: prepare ## Run prepare and validate (expectations and drift) on the Adult example
	$(ADULT) $(KILN) validate --spec $(SPEC) --run $(RUN)

data-quality: validate ## The original pipeline's name for `make validate`

train: validate ## Run the steps up to train on the Adult example
	$(ADULT) $(KILN) train --spec $(SPEC) --run $(RUN)

tune: build ## The whole pipeline on Adult with hyperparameter search (examples/adult/tune.yaml), into kiln-runs/adult-tuned
	$(ADULT) $(KILN) run --spec $(SPEC) --run kiln-runs/adult-tuned --set "tune=$$(cat examples/adult/tune.yaml)"

evaluate: train ## Run the steps up to evaluate on the Adult example
	$(ADULT) $(KILN) evaluate --spec $(SPEC) --run $(RUN)

fairness: evaluate ## Run the steps up to fairness on the Adult example
	$(ADULT) $(KILN) fairness --spec $(SPEC) --run $(RUN)

register: fairness ## Run every step up to register (the gates, then the local registry or MLflow)
	$(ADULT) $(KILN) register --spec $(SPEC) --run $(RUN)

compat-ge: ## Validate Adult with every supported expectation type in GE and in Kiln; compare every result
	$(DEPS) compat-ge
	cargo build --locked --bins
	$(ADULT) KILN=$(DEV_KILN) tests/compat/compat-ge.sh

##@ Images (podman; settings under .cache/containers, scripts/images.sh)

images: ## Build every image with podman from the host's binaries (PROFILE=fast-release) on a base assembled from Debian packages
	$(DEPS) images
	scripts/images.sh build --profile $(IMAGE_PROFILE)

publish: ## Push every built image to REGISTRY=host:port/prefix, signed by SIGN_BY=<GPG fingerprint>; writes images.lock
	@test -n "$(REGISTRY)" -a -n "$(SIGN_BY)" || { echo "usage: make publish REGISTRY=host:port/prefix SIGN_BY=<GPG fingerprint>" >&2; exit 2; }
	scripts/images.sh publish $(REGISTRY) $(SIGN_BY)

pin-images: ## Set every Kiln image reference in argo/ and infra/k8s/ to its digest in images.lock
	cargo xtask pin-images

##@ Infrastructure (terraform in infra/terraform)

infra-init: ## terraform init (TF_STATE_BUCKET: the state bucket)
	scripts/infra.sh init

infra-plan: ## terraform plan (TF_VARS_FILE, default infra/terraform/kiln.tfvars)
	scripts/infra.sh plan

infra-apply: ## terraform apply (the plan from infra-plan when there is one)
	scripts/infra.sh apply

infra-destroy: ## terraform destroy
	scripts/infra.sh destroy

##@ Deployment

serve: build ## Serve the registered model (MODEL_REF, default adult-income@staging) on 127.0.0.1:8080 (HTTP) and :8081 (gRPC)
	$(KILN) serve --model $(MODEL_REF) --registry kiln-runs/registry

deploy-dev: build ## Serve the `staging` model on a laptop behind HAProxy, with Prometheus scraping it; prints the URLs
	$(DEPS) deploy-dev
	@test -f kiln-runs/registry/adult-income/aliases.json || $(MAKE) --no-print-directory run
	KILN=$(KILN) scripts/deploy-dev.sh start

deploy-dev-stop: ## Stop what `make deploy-dev` started
	KILN=$(KILN) scripts/deploy-dev.sh stop

canary-demo: build ## Under `make deploy-dev`: train a second version (or VERSION=N), canary it at 10 % with load, let `kiln rollout` decide
	$(DEPS) canary
	@if [ -z "$(VERSION)" ]; then \
	  $(ADULT) $(KILN) run --spec $(SPEC) --run kiln-runs/adult-canary --set train.seed=$(or $(SEED),7) -q; fi
	KILN=$(KILN) scripts/deploy-dev.sh canary \
	  $(or $(VERSION),$$(ls kiln-runs/registry/adult-income/versions | sort -n | tail -1))

rollback: build ## The previous version back: HAProxy's weights and the alias under `make deploy-dev`, the InferenceService with KILN_CLUSTER=1, else the alias alone
	KILN=$(KILN) scripts/rollback.sh

deploy-staging: ## Render infra/k8s/serving/overlays/staging and apply it to the current kubectl context (DRY_RUN=1: server-side dry run)
	KILN=$(KILN) scripts/deploy-k8s.sh staging

deploy-prod: ## Render infra/k8s/serving/overlays/prod and apply it to the current kubectl context (DRY_RUN=1: server-side dry run)
	KILN=$(KILN) scripts/deploy-k8s.sh prod

##@ Monitoring

metrics: ## A local Prometheus + Alertmanager on the SLO rules, scraping `make serve` (KILN_CLUSTER=1: the cluster's port-forwards)
	$(DEPS) metrics
	scripts/metrics.sh

logs: ## The model server's logs in the cluster (WORKFLOW=<name>: a workflow's)
	scripts/logs.sh

slo-rules: build ## Regenerate the SLO rules, dashboards and their Kubernetes copies from monitoring/slos.yaml
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

##@ Tools (checks and benchmarks; results in docs/benchmarks.md)

lint-manifests: ## Check Argo, Kubernetes, Dockerfiles, Terraform and the CI workflow offline, and that every image is pinned to images.lock
	$(DEPS) lint
	KILN_LINT_STRICT=1 tests/manifests/lint.sh all
	cargo xtask pin-images --check

chaos: test-deps ## The fault battery: slow clients, SIGTERM under load, S3/MLflow/Prometheus down, a full disk, kill -9 (scripts/chaos.sh)
	MLFLOW_TRACKING_URI= $(ADULT) scripts/chaos.sh

check-cuda: ## Check that the CUDA training build compiles (no GPU or CUDA toolkit needed)
	cargo build --locked -p kiln-train --features cuda

bench: bench-prepare bench-train ## The prepare and train benchmarks

bench-prepare: ## prepare on Adult x1, x10, x100 (benches/prepare.sh)
	benches/run.sh prepare

bench-train: ## kiln-train beside scikit-learn's MLPClassifier (benches/train.sh)
	benches/run.sh train

bench-audit: ## The standalone evaluate and fairness audits on generated predictions (benches/audit.sh)
	benches/run.sh audit

bench-validate: ## validate beside Great Expectations on Adult x1, x10, x100 (benches/validate.sh)
	benches/run.sh validate

bench-validate-memory: ## validate's peak memory on unique values up to 100 M rows, beside GE (benches/validate_memory.sh)
	benches/run.sh validate-memory

bench-tune: ## kiln tune beside Optuna on scikit-learn and LightGBM (benches/tune.sh)
	benches/run.sh tune

bench-tune-parallel: ## Parallel trials: parallelism 1 against 2 (benches/tune_parallel.sh)
	benches/run.sh tune-parallel

bench-tracking: ## kiln run on Adult with MLflow tracking against without, 5 pairs (benches/tracking.sh)
	benches/run.sh tracking

bench-serve: ## kiln-serve beside KServe's Python server and MLServer (benches/serve.sh)
	benches/run.sh serve

bench-slo-probe: ## The throughput probe beside oha on one kiln-serve (benches/slo-probe.sh)
	benches/run.sh slo-probe

bench-tables: ## prepare's data.query on 100M events beside DuckDB and Polars (benches/tables.sh)
	benches/run.sh tables
