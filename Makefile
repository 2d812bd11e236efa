# Two commands do everything: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= demo-output

# torch and torchvision must come as a matching pair: the CPU-only torch 2.13.0 wheel on
# some machines breaks PyPI's torchvision ("operator torchvision::nms does not exist").
ARCH := $(shell uname -m)
ifeq ($(ARCH),aarch64)
TORCH_PAIR := torch==2.9.1 torchvision==0.24.1
else
TORCH_PAIR := torch==2.14.1 torchvision==0.29.1
endif

.PHONY: install test demo clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_PAIR)
	$(PY) -m pip install --quiet -e '.[test]' $(TORCH_PAIR)
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile

demo: $(STAMP)
	$(VENV)/bin/cgc demo --out $(DEMO)

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
