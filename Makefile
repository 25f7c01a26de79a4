# The two commands a new user needs (see README.md):
#   make example   set up, then run the main example
#   make test      set up, then run the test suite
#   make test-fast the suite without the tests marked slow (for the edit loop)
# Setup installs torch only when none is importable (the CPU wheel TORCH names), so an
# existing torch is never replaced and no multi-GB CUDA build is pulled in.
PYTHON ?= python3
TORCH ?= torch==2.13.0

.PHONY: example test test-fast torch

torch:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install "$(TORCH)"

example: torch
	$(PYTHON) -m pip install -q -e . numpy  # numpy only keeps torch's import quiet
	$(PYTHON) examples/keras_article.py

test: torch
	$(PYTHON) -m pip install -q -e ".[test]"
	KERAS_BACKEND=torch $(PYTHON) -m pytest

test-fast: torch
	$(PYTHON) -m pip install -q -e ".[test]"
	KERAS_BACKEND=torch $(PYTHON) -m pytest -m "not slow"
