"""What a user notices first: `lmforge --help`, the listings and a config error answer without loading torch.

Each command runs in a fresh interpreter (as a user's would), which then reports the heavy libraries it
imported. torch plus transformers take seconds to import, more on a loaded machine.
"""

import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ("torch", "transformers", "peft", "trl", "datasets", "gradio", "fastapi")

# runs `lmforge ARGS...` in this interpreter, then prints the heavy libraries it imported
_PROBE = """
import sys
from lmforge.cli.main import main
sys.argv = ["lmforge", *sys.argv[1:]]
try:
    main()
except SystemExit as done:
    code = done.code
else:
    code = 0
print("exit", code, "heavy", *sorted(set(HEAVY) & set(sys.modules)), file=sys.stderr)
"""


def _run(*args: str) -> tuple[int, list[str], str]:
    """(exit code, heavy libraries imported, output) of `lmforge ARGS...` in a fresh interpreter."""
    result = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{_PROBE}", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    *output, last = result.stderr.rstrip().splitlines()
    words = last.split()
    assert words[0] == "exit", result.stderr
    return int(words[1]), words[3:], result.stdout + "\n".join(output)


@pytest.mark.parametrize(("args", "shown"), [(["--help"], "Usage"), (["template", "list"], "templates; `lmforge"),
                                             (["models", "list"], "model(s) in")])
def test_help_and_listings_import_no_heavy_library(args, shown):
    code, heavy, output = _run(*args)
    assert code == 0, output
    assert shown in output
    assert heavy == []


@pytest.mark.parametrize(("command", "yaml_text", "message"), [
    (["check"], "lora_rnk: 8\n", "unknown key `lora_rnk`; did you mean `lora_rank`"),
    (["check"], "model_name_or_path: [\n", "is not valid YAML"),
    (["check"], "learning_rate: fast\n", "key `learning_rate` = 'fast'"),
    (["train"], "lora_rnk: 8\n", "unknown key `lora_rnk`"),
    (["data", "preview"], "lora_rnk: 8\n", "unknown key `lora_rnk`"),
    (["data", "stats"], "lora_rnk: 8\n", "unknown key `lora_rnk`"),
    (["export"], "lora_rnk: 8\n", "unknown key `lora_rnk`"),
    (["chat"], "lora_rnk: 8\n", "unknown key `lora_rnk`"),
    (["predict"], "lora_rnk: 8\n", "unknown key `lora_rnk`"),
    (["api"], "lora_rnk: 8\n", "unknown key `lora_rnk`"),
    (["webui"], "model_name_or_path: [\n", "is not valid YAML"),
])
def test_a_config_error_comes_before_torch_and_transformers_load(tmp_path, command, yaml_text, message):
    config = tmp_path / "run.yaml"
    config.write_text(yaml_text)
    code, heavy, output = _run(*command, str(config))
    assert code == 1, output
    assert message in " ".join(output.split())
    assert heavy == []


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("template: chatmel\n", "unknown template `chatmel`; did you mean `chatml`"),
    ("model_name_or_path: ./no/such/folder\n", "no such folder"),
])
def test_check_finds_a_wrong_reference_before_the_training_stack_loads(tmp_path, yaml_text, message):
    config = tmp_path / "run.yaml"
    config.write_text("model_name_or_path: builtin:tiny-llama\n" + yaml_text)
    code, heavy, output = _run("check", str(config))
    assert code == 1, output
    assert message in " ".join(output.split())
    assert heavy == []
