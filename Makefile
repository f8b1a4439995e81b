# `make conformance` runs the suite against the chosen targets (TARGETS, default the
# MongooseIM images); `make test` runs the project's own tests and the suite against the
# reference servers. Both set up what they need and can be run again at any time.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TARGETS ?= mongooseim
PYTEST_ARGS ?=
STAMP := .stamps

.PHONY: conformance test unit suites lint setup docker load-images clean

conformance: setup docker
	$(BIN)/pytest suites/ --targets=$(TARGETS) $(PYTEST_ARGS)

test: setup docker lint
	$(BIN)/pytest tests/ suites/ --targets=reference $(PYTEST_ARGS)

unit: setup
	$(BIN)/pytest tests/ -m "not live" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

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
