# The one command surface. `make rehearse` and `make test` work on a fresh machine: each installs
# what it needs first (a virtualenv with the pinned requirements).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONPATH := $(CURDIR):$(CURDIR)/lambdas

WORKFLOW ?= restore
# Each workflow's own example input; override with INPUT='{...}'.
ifeq ($(WORKFLOW),restore)
INPUT ?= {"mode": "point-in-time", "restore_time": "latest", "requested_by": "make rehearse"}
else ifeq ($(WORKFLOW),snapshot)
INPUT ?= {"reason": "manual", "requested_by": "make rehearse"}
else
INPUT ?= {"requested_by": "make rehearse"}
endif
ROWS ?= 20000

.PHONY: setup rehearse test test-unit test-workflow test-validation test-infra faults coverage lint typecheck format synth layer bench diagrams clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(BIN)/.installed  ## create the virtualenv with the pinned dependencies

rehearse: setup  ## run WORKFLOW (default: a point-in-time restore) locally on emulated AWS and a real PostgreSQL
	$(BIN)/python -m restorectl rehearse $(WORKFLOW) --rows $(ROWS) --input '$(INPUT)'

# mypy runs beside the tests, niced: on a fresh clone it takes a core-minute and a half with no cache,
# which the tests' idle moments absorb; its report is printed after theirs, and either failing fails the run.
test: setup  ## the whole suite: lint, types, unit, validation, workflow, infra
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@mkdir -p build
	@nice -n 10 $(BIN)/mypy -p restore_runbook -p restorectl > build/mypy.log 2>&1 & types=$$!; \
	$(BIN)/python -m pytest -m "not faults_full" -n auto --durations=15; tests=$$?; \
	wait $$types; typed=$$?; echo "mypy:"; cat build/mypy.log; \
	test $$tests -eq 0 && test $$typed -eq 0

test-unit: setup
	$(BIN)/python -m pytest -m unit
test-workflow: setup
	$(BIN)/python -m pytest -m "workflow and not faults_full"
test-validation: setup
	$(BIN)/python -m pytest -m validation
test-infra: setup
	$(BIN)/python -m pytest -m infra

faults: setup  ## the whole fault matrix: every Task of every workflow crashed, crashed after acting, timed out, and failed once
	$(BIN)/python -m pytest tests/workflow/test_fault_matrix.py -q -n auto --dist loadgroup

coverage: setup  ## run the workflow tests and print the states, Catch edges and Choice branches they executed (VERBOSE=1: and which tests did)
	$(BIN)/python -m pytest -m "workflow and not faults_full" -q $(if $(VERBOSE),--workflow-coverage-verbose)

lint: setup  ## ruff's checks (does not change files)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup  ## mypy --strict on the Lambda code and restorectl
	$(BIN)/mypy -p restore_runbook -p restorectl

format: setup  ## rewrite files in ruff's format
	$(BIN)/ruff format .

layer: setup  ## build the Lambda dependency layer into build/layer, to inspect it (synth builds its own)
	$(BIN)/python -m stacks.layer build/layer

synth: setup  ## synthesize into cdk.out/; pip builds the Lambda layer for python3.12/arm64 (no Docker), reused until requirements.txt changes
	CDK_OUTDIR=cdk.out $(BIN)/python app.py

bench: setup  ## print the benchmarks' side-by-side ratios
	$(BIN)/python bench/run_all.py

diagrams:  ## redraw docs/workflows.md (Mermaid) from statemachines/*.asl.json; standard library only
	$(PYTHON) scripts/asl_diagrams.py

clean:
	rm -rf $(VENV) cdk.out build .pytest_cache .ruff_cache
