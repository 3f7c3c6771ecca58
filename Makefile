# Gainsight <-> Salesforce sync. `make demo` and `make test` work on a fresh machine with only
# the Rust toolchain, Python 3 and pip: everything Python goes into a project-local .venv.

SHELL       := bash
.SHELLFLAGS := -eu -o pipefail -c

VENV     := .venv
STAMP    := $(VENV)/.installed
CARGO    ?= cargo
STATE    := .devstack

.PHONY: demo test build lint up down venv bench bench-load fuzz soak clean validate-jobs resync backfill package deploy logs

DEPLOY_STAMP := $(VENV)/.deploy-installed
export SAM_CLI_TELEMETRY := 0
FUNCTIONS    := webhook poller mapper pusher resync
# cargo-lambda's target: arm64 (Graviton) as the template declares; ARCH=x86_64 for a machine
# without the aarch64 standard library (then set Architectures to x86_64 in the template too).
ARCH         ?= arm64
CFN_LINT     := $(VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules --

$(STAMP): devstack/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r devstack/requirements.txt
	touch $(STAMP)

## venv: moto (server), aws-sam-translator, cfn-lint and the real Salesforce clients of the contract suite in .venv
venv: $(STAMP)

## demo: start the local stack and run a real Gainsight -> Salesforce sync end to end
demo: $(STAMP)
	$(CARGO) build --quiet -p syncctl -p sync-tests --bin syncctl --bin stack
	SYNCCTL=target/debug/syncctl target/debug/stack demo

## test: every unit, adapter, handler, runtime-API and end-to-end test, cfn-lint (with the
## serverless rules), the template deployed into moto and checked (devstack/test_deployment.py), and
## moto's answers compared with and without the local stack's speed fixes (devstack/test_moto_speedups.py),
## and the DynamoDB write-unit meter's rules (devstack/test_capacity.py)
test: $(STAMP)
	$(CFN_LINT) infra/template.yaml
	$(VENV)/bin/python devstack/test_deployment.py
	$(VENV)/bin/python devstack/test_moto_speedups.py
	$(VENV)/bin/python devstack/test_capacity.py
	@mkdir -p $(STATE)
	$(CARGO) test --workspace 2>&1 | tee $(STATE)/test.log
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "tests: %d passed, %d failed\n", p, f }' $(STATE)/test.log

## fuzz: each parser that faces the network or the admin (webhook JSON and signatures, Outbound
## Messages, job files, CSV imports) fuzzed for FUZZ_SECONDS each (60 by default; make test gives
## them 1 s); prints `fuzz: <target> = <cases> cases in <s> s`; a failing input is kept in
## target/fuzz-crashes/ and FUZZ_SEED=<seed> replays the run
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test --quiet -p webhook --test fuzz -- --nocapture --test-threads 1 2>&1 | grep -oE 'fuzz: .*|FAILED.*|panicked.*|failed on.*|input:.*|saved:.*'
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test --quiet -p shared --features fakes,fuzz --test fuzz_jobs -- --nocapture 2>&1 | grep -oE 'fuzz: .*|FAILED.*|panicked.*|failed on.*|input:.*|saved:.*'
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test --quiet -p syncctl --bin syncctl fuzzed -- --nocapture 2>&1 | grep -oE 'fuzz: .*|FAILED.*|panicked.*|failed on.*|input:.*|saved:.*'

## soak: SOAK_CHANGES (10,000) changes in both systems at SOAK_RATE (100) a second on a fresh
## local stack with every fault switch on (SOAK_FAULTS=0: none), then each change checked against
## both systems and the ledger; the last line is `soak: <N> changes, <L> lost, <D> duplicated,
## <E> error`, and it fails when anything was lost, duplicated or ended in error
soak: $(STAMP)
	$(CARGO) build --quiet --profile perf -p sync-tests --bin soak
	target/perf/soak

## build: debug build of every crate
build:
	$(CARGO) build --workspace

## lint: rustfmt, clippy (warnings are errors) and cfn-lint with the serverless rules
lint: $(STAMP)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CFN_LINT) infra/template.yaml

$(DEPLOY_STAMP): infra/requirements-deploy.txt $(STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-deploy.txt
	touch $(DEPLOY_STAMP)

## backfill: replay a job from a past time through the poller of the stack `make up` started:
## make backfill JOB=company_account SINCE=2026-11-01T00:00:00Z (records seen before are not queued twice)
backfill:
	@[ -f $(STATE)/env ] || { echo "no $(STATE)/env: start the local stack with make up"; exit 2; }
	@[ -n "$(JOB)" ] && [ -n "$(SINCE)" ] || { echo "say what to replay: make backfill JOB=company_account SINCE=<RFC 3339 time>"; exit 2; }
	. $(STATE)/env && $(CARGO) run --quiet -p syncctl -- poll --job $(JOB) --since $(SINCE)

## package: release builds of every function with cargo-lambda (ARCH=arm64 by default), zipped
## where the template's CodeUri points (target/lambda/<function>/bootstrap.zip); prints each size
package: $(DEPLOY_STAMP)
	@if [ "$(ARCH)" = arm64 ]; then rustup target add aarch64-unknown-linux-gnu; fi
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) lambda build --release --$(ARCH) --output-format zip \
	  $(foreach f,$(FUNCTIONS),-p $(f))
	@for f in $(FUNCTIONS); do printf "package: %-8s %s bytes\n" $$f $$(stat -c %s target/lambda/$$f/bootstrap.zip); done

## deploy: package, then `sam deploy` (guided the first time; samconfig.toml remembers the answers)
deploy: package
	@if [ -f samconfig.toml ]; then $(VENV)/bin/sam deploy --template-file infra/template.yaml; \
	else $(VENV)/bin/sam deploy --guided --template-file infra/template.yaml; fi

## logs: tail a deployed function's logs: make logs FN=webhook|poller|mapper|pusher|resync
logs: $(DEPLOY_STAMP)
	@[ -n "$(FN)" ] || { echo "say which function: make logs FN=webhook (or poller, mapper, pusher, resync)"; exit 2; }
	$(VENV)/bin/sam logs --tail --name $$(echo $(FN) | sed 's/.*/\u&/')Function --stack-name $${STACK_NAME:-gs-sf-sync}

## bench: measure DESIGN.md's targets; prints `bench: <name> = <value> <unit>` lines (see BENCHMARKS.md)
bench: $(STAMP)
	$(CARGO) build --quiet --profile perf -p webhook -p resync -p mapper -p pusher -p syncctl -p sync-tests --bins
	@# Every figure is measured even when one fails; the target fails at the end if any did.
	@failed=0; \
	WEBHOOK_BIN=target/perf/webhook target/perf/bench all || failed=1; \
	$(VENV)/bin/python devstack/bench_local_aws.py || failed=1; \
	$(CARGO) bench --quiet -p shared --features fakes --bench mapping -- --warm-up-time 2 --measurement-time 5 --noplot --quiet > /dev/null || failed=1; \
	python3 -c 'import json; e = json.load(open("target/criterion/mapping/records/new/estimates.json")); b = json.load(open("target/criterion/mapping/records/new/benchmark.json")); n = b["throughput"]["Elements"]; print("bench: mapping_records_per_second = %d records/s" % (n / (e["mean"]["point_estimate"] / 1e9)))' || failed=1; \
	if [ $$failed -ne 0 ]; then echo "bench: some figures failed (see the lines above)"; exit 1; fi

## bench-load: a job's first load at N records a side (default 100000) and at 10,000: the dry run,
## the resync binary's planning invocation alone, then the whole load with the resync, mapper and
## pusher binaries under the Runtime API (figures in BENCHMARKS.md)
bench-load: $(STAMP)
	$(CARGO) build --quiet --profile perf -p resync -p mapper -p pusher -p syncctl -p sync-tests --bins
	FIRST_LOAD_N=$(or $(N),100000) target/perf/bench first-load
	FIRST_LOAD_N=$(or $(N),100000) target/perf/bench first-load-plan
	FIRST_LOAD_N=$(or $(N),100000) target/perf/bench first-load-run

## validate-jobs: check infra/jobs (syntax, limits, one job per object); DESCRIBE=1 also checks them
## against the live describes (needs the SALESFORCE_* and GAINSIGHT_* variables, see README)
validate-jobs:
	$(CARGO) run --quiet -p syncctl -- jobs validate infra/jobs $(if $(DESCRIBE),--describe,)

## resync: resync records on the stack `make up` started, through the resync function:
## JOB=... and one of STATUS=error, IDS=a,b, SINCE=<RFC 3339>, ALL=1, or RUN=<run id> alone
resync:
	@[ -f $(STATE)/env ] || { echo "no $(STATE)/env: start the local stack with make up"; exit 2; }
	. $(STATE)/env && $(CARGO) run --quiet -p syncctl -- resync $(if $(JOB),--job $(JOB),) \
	  $(if $(STATUS),--status $(STATUS),) $(if $(IDS),--ids $(IDS),) $(if $(SINCE),--since $(SINCE),) \
	  $(if $(ALL),--all,) $(if $(RUN),--run $(RUN),)

## up: start the local stack in the background (log in .devstack/stack.log); `make down` stops it
up: $(STAMP)
	@mkdir -p $(STATE)
	@if [ -f $(STATE)/stack.pid ] && kill -0 $$(cat $(STATE)/stack.pid) 2>/dev/null; then echo "already up (pid $$(cat $(STATE)/stack.pid))"; exit 0; fi
	$(CARGO) build --quiet -p sync-tests --bin stack
	@nohup target/debug/stack up > $(STATE)/stack.log 2>&1 & echo $$! > $(STATE)/stack.pid
	@for i in $$(seq 1 120); do grep -q "local stack is up" $(STATE)/stack.log && break; \
	  kill -0 $$(cat $(STATE)/stack.pid) 2>/dev/null || { cat $(STATE)/stack.log; exit 1; }; sleep 0.5; done
	@cat $(STATE)/stack.log

## down: stop the local stack started by `make up` and its moto servers; says so only once they
## are gone (after 15 s of SIGTERM it sends SIGKILL)
down:
	@if [ ! -f $(STATE)/stack.pid ]; then echo "not running"; exit 0; fi; \
	pid=$$(cat $(STATE)/stack.pid); children=$$(pgrep -P $$pid | tr "\n" " " || true); \
	kill $$pid 2>/dev/null || true; \
	for i in $$(seq 1 30); do kill -0 $$pid 2>/dev/null || break; sleep 0.5; done; \
	if kill -0 $$pid 2>/dev/null; then echo "stack $$pid still running after 15 s: sending SIGKILL"; kill -9 $$pid 2>/dev/null || true; fi; \
	for c in $$children; do kill $$c 2>/dev/null || true; done; \
	for i in $$(seq 1 20); do alive=""; for p in $$pid $$children; do kill -0 $$p 2>/dev/null && alive="$$alive $$p"; done; [ -z "$$alive" ] && break; sleep 0.5; done; \
	if [ -n "$$alive" ]; then echo "still running:$$alive (kill them by hand)"; exit 1; fi; \
	rm -f $(STATE)/stack.pid; echo "local stack stopped (stack $$pid and moto $$children)"

clean:
	$(CARGO) clean
	rm -rf $(VENV) $(STATE)
