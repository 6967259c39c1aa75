# svd_mm: `make demo` and `make test` each set up .venv when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.svd_mm-installed
PYTEST_ARGS ?=
# two workers (one test file each at a time): the suite fits the 2-core CI
PYTEST_WORKERS ?= 2

.PHONY: install demo test clean-venv

$(STAMP): setup.py requirements.txt requirements/*.txt tools/install_deps.sh tools/install_mmcv.sh
	bash tools/install_deps.sh $(VENV)
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py

test: $(STAMP)
	$(PY) -m pytest tests -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
