# `make conformance` runs the suite against the chosen targets (TARGETS, default the
# MongooseIM images); `make test` runs the project's own tests and the suite against the
# reference servers. Both set up what they need and can be run again at any time.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TARGETS ?= mongooseim
PYTEST_ARGS ?=
# pytest-xdist workers. The suites run their waiting checks side by side in batches
# (suites/batch.py), so few workers are needed; with 8 for the harness's own tests and the
# suites together, registrations on the servers timed out while the cores were busy
# (README, Performance).
CONFORMANCE_WORKERS ?= 4
WORKERS ?= 4
SENSITIVITY_WORKERS ?= 4
# pytest caches the modules it rewrites as bytecode; with this set, every worker of every
# run compiles them again.
unexport PYTHONDONTWRITEBYTECODE
STAMP := .stamps

.PHONY: conformance test unit suites lint setup docker load-images clean sensitivity
.PHONY: actionlint report report-build report-check report-tools

# Each run starts from empty Allure results; the report keeps the trend in
# reports/allure-history.jsonl. The report is built also when tests failed, and the make
# target then fails with pytest's exit status. The workers share one set of servers.
conformance: setup docker report-tools
	$(BIN)/pytest suites/ --targets=$(TARGETS) -n $(CONFORMANCE_WORKERS) --clean-alluredir \
	  $(PYTEST_ARGS); \
	status=$$?; bash scripts/report.sh build || status=$$((status ? status : 1)); exit $$status

# WORKERS=0 (CONFORMANCE_WORKERS=0) runs everything in one process (README, Performance).
# `make test` ends with the sensitivity self-test.
test: setup docker lint actionlint report-tools
	$(BIN)/pytest tests/ suites/ --targets=reference -n $(WORKERS) --clean-alluredir \
	  $(PYTEST_ARGS); \
	status=$$?; { bash scripts/report.sh build && bash scripts/report.sh check; } \
	  || status=$$((status ? status : 1)); \
	$(MAKE) --no-print-directory sensitivity SENSITIVITY_ARGS=--reference-junit=reports/junit.xml \
	  || status=$$((status ? status : 1)); exit $$status

# The suite against servers broken on purpose (the `faulty` targets) and the broken peer
# (tests/peer_faults.toml): each fault must fail a test, the correct servers none. The
# last line is the score; the table is in reports/sensitivity.md. `make test` passes the
# JUnit file of its own run, whose reference results then count for the false alarms.
SENSITIVITY_ARGS ?=
sensitivity: setup docker
	$(BIN)/python -m harness.sensitivity --workers $(SENSITIVITY_WORKERS) $(SENSITIVITY_ARGS)

unit: setup
	$(BIN)/pytest tests/ -m "not live" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

actionlint: setup
	$(BIN)/actionlint .github/workflows/*.yml

# The HTML report of the last run (Allure 3, offline), served on 127.0.0.1:$(REPORT_PORT).
REPORT_PORT ?= 8765
report: setup report-tools
	REPORT_PORT=$(REPORT_PORT) bash scripts/report.sh serve

report-build: setup report-tools
	bash scripts/report.sh build

# Opens the built report in headless Chromium; saves reports/report-screenshot.png.
report-check: setup report-tools
	bash scripts/report.sh check

report-tools:
	bash scripts/report.sh tools

setup: $(STAMP)/venv

$(STAMP)/venv: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > $(VENV)/requirements.txt
	$(BIN)/python -m pip install -q -r $(VENV)/requirements.txt
	mkdir -p $(STAMP) && touch $@

docker:
	bash scripts/ensure-docker.sh

# Air-gapped machines: `make load-images IMAGES=dir` loads every .tar in dir with docker load.
load-images: docker
	@test -n "$(IMAGES)" || { echo "usage: make load-images IMAGES=<dir of .tar files>"; exit 2; }
	for f in $(IMAGES)/*.tar; do docker load -i "$$f"; done

clean:
	rm -rf reports/allure-results $(STAMP)
