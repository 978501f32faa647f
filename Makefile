# The two commands of README.md. Both create the environment from the project's own files.
#   make demo   the whole pipeline on the embedded synthetic dataset (teacher, student, QAT, exports, bench); rerun = resume
#   make test   run the whole test suite (what .ci/run calls)

VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= runs/demo

.PHONY: demo test env clean-demo

env: $(STAMP)

# torch/torchvision pins live in constraints.txt (see ../shared/STACK.md for why these versions)
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -c constraints.txt -e ".[dev,tflite,camera]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edge-fgic pipeline --out $(DEMO)

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean-demo:
	rm -rf $(DEMO) datasets/synthetic_fg
