# The two commands a reader needs: `make figures` and `make test`. Everything else is set up here.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
SMOKE := build/smoke

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2
export PYTHONHASHSEED := 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: figures star-seeds timings readme check-figures test book jupyter data data-source bench clean venv

venv: $(STAMP)

# the install's time and size go to build/install.json (`make timings` copies them into the instructors' page).
# pip byte-compiles one file at a time; compileall does it on every core instead (a file that does not compile,
# such as torch's Python-3.12-only test helper, is skipped, as pip skips it).
$(STAMP): requirements.txt pyproject.toml
	start=$$(date +%s); fresh=false; test -x $(PY) || { python3 -m venv $(VENV); fresh=true; }; \
	$(PY) -m pip install -q --no-compile -r requirements.txt; \
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null || true; \
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .; \
	mkdir -p build; printf '{"seconds": %d, "megabytes": %d, "fresh": %s, "date": "%s", "cores": %d}\n' \
	  $$(( $$(date +%s) - start )) $$(du -sm $(VENV) | cut -f1) $$fresh $$(date +%F) $$(nproc) > build/install.json
	touch $@

## figures: run every notebook in the `report` profile; notebooks/ and figures/ updated on success only.
## Trained weights are cached in build/cache; `make figures RETRAIN=1` retrains every model from scratch.
## `make figures PROFILE=lab` (or smoke) writes notebooks, figures and weights under build/lab/ instead,
## never over the published outputs. Each run's times go to build/timings/ (`make timings` records them).
PROFILE ?= report
OUT := build/$(PROFILE)
figures: $(STAMP)
	@case "$(PROFILE)" in report|lab|smoke|full) ;; *) echo "PROFILE must be one of report, lab, smoke, full; got '$(PROFILE)'"; exit 2;; esac
	$(if $(filter report full,$(PROFILE)),$(if $(filter full,$(PROFILE)),DDPM_CACHE_DIR=$(CURDIR)/$(OUT)/cache) \
	  $(MAKE) --no-print-directory star-seeds)
	for nb in $(NOTEBOOKS); do echo "== $$nb ($(PROFILE))"; start=$$(date +%s); \
	  $(if $(filter report,$(PROFILE)),$(PY) -m helpers.notebook $$nb,\
	  DDPM_CACHE_DIR=$(CURDIR)/$(OUT)/cache $(PY) -m helpers.notebook $$nb --output $(OUT)/notebooks/$$(basename $$nb) \
	    --figures $(OUT)/figures -p profile $(PROFILE)) $(if $(RETRAIN),--retrain); \
	  echo "   $$(( $$(date +%s) - start )) s"; done
	$(if $(filter report,$(PROFILE)),$(PY) -m helpers.readme,@echo "executed notebooks and figures: $(OUT)/")

## star-seeds: notebook 03's long runs, into the cache: the star prior for training seeds 1 and 2 with their samples and
## their restart control, the baseline's one-shape control, the prior's centre control and the power simulation of the
## star tests (against the test stars, and real stars and the faults of helpers.startests.WEAK against the large
## reference), in one-thread processes side by side
## (`make figures` runs it first; notebook 03 then loads them, or computes what is missing)
star-seeds: $(STAMP)
	$(PY) -m helpers.starprior --seeds 1 2 --one-shape --centre --power $(if $(RETRAIN),--retrain)

## timings: copy the last run's times of every notebook and profile (build/timings) into figures/data/timings.json,
## then regenerate the README's and the instructors' page's time tables from it
timings: $(STAMP)
	$(PY) -m helpers.readme --record-timings

## readme: rewrite the README's result tables from figures/data (tests/test_readme.py checks they agree)
readme: $(STAMP)
	$(PY) -m helpers.readme

## check-figures: re-run every notebook (`report` profile, cached weights) into build/check; fail, naming
## each file, if the stored notebooks/ or figures/ differ from what the code produces now
check-figures: $(STAMP)
	$(PY) -m helpers.notebook --check $(NOTEBOOKS)

## test: unit tests, then each notebook in the `smoke` profile, then nbval on the executed copies, notebook 01
## in the `lab` profile, then the book (`make book`) and its browser test (headless Chromium opens every page).
## The unit tests, the smoke runs and nbval use JOBS processes (default 2, one per core of the CI machine);
## OMP_WAIT_POLICY=PASSIVE stops the idle threads of one process spinning on the cores the other needs (it changes
## no result: the smoke notebooks come out byte-identical to a run one at a time).
JOBS ?= 2
PARALLEL := OMP_WAIT_POLICY=PASSIVE
test: $(STAMP)
	$(PARALLEL) $(PY) -m pytest -q -n $(JOBS) --dist worksteal tests --ignore=tests/browser
	rm -rf $(SMOKE) && mkdir -p $(SMOKE)/figures
	printf '%s\n' $(NOTEBOOKS) | $(PARALLEL) xargs -P $(JOBS) -I{} sh -c 'echo "== smoke {}"; \
	  $(PY) -m helpers.notebook {} --output $(SMOKE)/$$(basename {}) --figures $(SMOKE)/figures -p profile smoke'
	DDPM_FIGURES_DIR=$(CURDIR)/$(SMOKE)/figures $(PARALLEL) $(PY) -m pytest -q -n $(JOBS) --dist loadfile --nbval \
	  --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg $(SMOKE)/*.ipynb
	echo "== lab notebooks/01_1d_process.ipynb"; rm -rf build/lab-test && \
	  DDPM_CACHE_DIR=$(CURDIR)/build/lab-test/cache $(PY) -m helpers.notebook notebooks/01_1d_process.ipynb \
	  --output build/lab-test/01_1d_process.ipynb --figures build/lab-test/figures -p profile lab
	$(MAKE) --no-print-directory book
	@command -v chromium >/dev/null || echo "!!!!! chromium not found: the browser test of the book is SKIPPED (apt-get install chromium) !!!!!"
	$(PY) -m pytest -q tests/browser

## book: the stored notebooks (never re-executed) and book/*.md as a static site in build/book/html,
## built with warnings as errors, every internal link checked; open build/book/html/index.html
book: $(STAMP)
	$(PY) -m helpers.book

## jupyter: Jupyter Lab on this project's .venv; its own kernel spec comes first, so `python3` runs .venv/bin/python
jupyter: $(STAMP)
	JUPYTER_PATH=$(CURDIR)/$(VENV)/share/jupyter $(PY) -m jupyter lab --ServerApp.root_dir=$(CURDIR) \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

## data: rebuild every dataset in data/ bit for bit (checked by tests/test_data.py)
data: $(STAMP)
	$(PY) -m helpers.data

## data-source: re-download the Datasaurus source and check its sha256
data-source: $(STAMP)
	$(PY) -m helpers.data --fetch-source

## bench: time the hot paths (sampling, training throughput)
bench: $(STAMP)
	$(PY) -m helpers.bench

## clean: build outputs and caches only (never data/ sources or figures/)
clean:
	rm -rf build .pytest_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
