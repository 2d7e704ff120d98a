"""What a user notices first: `lmforge --help`, the listings and a config error answer without loading torch;
a wrong reference, dataset or stage rule in `check` or `train` without loading the training stack.

Each command runs in a fresh interpreter (as a user's would), which then reports the heavy libraries it
imported. torch plus transformers take seconds to import, more on a loaded machine.
"""

import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ("torch", "transformers", "peft", "trl", "datasets", "gradio", "fastapi")
TRAINING_STACK = {"torch", "peft", "trl", "datasets", "gradio", "fastapi"}  # transformers' top level is light
DATA = ROOT / "examples" / "data"

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
                                             (["models", "list"], "model(s) in"), (["version"], "lmforge 0.")])
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
    (["eval"], "lora_rnk: 8\n", "unknown key `lora_rnk`"),
    (["eval"], "task: mmlu_test\ntask_dir: /no/such/folder\n", "`task_dir: /no/such/folder` is not a folder"),
    (["api"], "lora_rnk: 8\n", "unknown key `lora_rnk`"),
    (["webui"], "model_name_or_path: [\n", "is not valid YAML"),
    (["webchat"], "lora_rnk: 8\n", "unknown key `lora_rnk`"),
])
def test_a_config_error_comes_before_torch_and_transformers_load(tmp_path, command, yaml_text, message):
    config = tmp_path / "run.yaml"
    config.write_text(yaml_text)
    code, heavy, output = _run(*command, str(config))
    assert code == 1, output
    assert message in " ".join(output.split())
    assert heavy == []


def _config(tmp_path, yaml_text: str) -> str:
    """A config that trains builtin:tiny-llama on the identity data with sft, changed by `yaml_text`."""
    config = tmp_path / "run.yaml"
    config.write_text(f"model_name_or_path: builtin:tiny-llama\ntemplate: chatml\ndataset: identity\n"
                      f"dataset_dir: {DATA}\noutput_dir: {tmp_path / 'out'}\nstage: sft\n{yaml_text}")
    return str(config)


@pytest.mark.parametrize("command", ["check", "train"])
@pytest.mark.parametrize(("yaml_text", "message"), [
    ("template: chatmel\n", "unknown template `chatmel`; did you mean `chatml`"),
    ("model_name_or_path: ./no/such/folder\n", "no such folder"),
])
def test_a_wrong_reference_is_found_before_torch_and_transformers_load(tmp_path, command, yaml_text, message):
    code, heavy, output = _run(command, _config(tmp_path, yaml_text))
    assert code == 1, output
    assert message in " ".join(output.split())
    assert heavy == []


@pytest.mark.parametrize("command", ["check", "train"])
@pytest.mark.parametrize(("yaml_text", "message"), [
    ("dataset: identiti\n", "did you mean `identity`"),
    ("stage: ppo\n", "`stage: ppo` scores completions with a reward model"),
    ("stage: kto\nper_device_train_batch_size: 1\n", "`stage: kto` needs `per_device_train_batch_size` of 2"),
    ("stage: dpo\nlora_target: q_proj,lm_head\n", "`stage: dpo` cannot put LoRA on `lm_head`"),
])
def test_a_dataset_or_stage_rule_error_comes_before_the_training_stack_loads(tmp_path, command, yaml_text,
                                                                               message):
    """The stage registry and the dataset registrations load transformers' top level (the data records name its
    tokenizer class), not torch, trl, peft or datasets: each stage imports its trainer only to build it."""
    code, heavy, output = _run(command, _config(tmp_path, yaml_text))
    assert code == 1, output
    assert message in " ".join(output.split())
    assert not TRAINING_STACK & set(heavy), heavy


def test_check_of_a_valid_config_loads_no_trainer(tmp_path):
    """The model-skeleton check needs torch, transformers' config classes and peft's configs; no trainer library."""
    code, heavy, output = _run("check", _config(tmp_path, ""))
    assert code == 0, output
    assert "valid" in output
    assert not {"trl", "datasets", "gradio", "fastapi"} & set(heavy), heavy


def test_python_m_lmforge_runs_the_lmforge_command(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("lora_rnk: 8\n")
    help_run = subprocess.run([sys.executable, "-m", "lmforge", "--help"], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)
    assert help_run.returncode == 0, help_run.stderr
    assert "check" in help_run.stdout and "train" in help_run.stdout
    error = subprocess.run([sys.executable, "-m", "lmforge", "check", str(config)], cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert error.returncode == 1
    assert "unknown key `lora_rnk`" in " ".join((error.stdout + error.stderr).split())


def test_chat_with_a_base_model_loads_no_adapter_or_data_library(tmp_path):
    """A base model's `lmforge chat` (or `api`) answers without peft or datasets (2.5 s of a 9.3 s answer on
    2 CPU cores): peft loads only for an adapter, datasets only for a dataset."""
    config = tmp_path / "chat.yaml"
    config.write_text("model_name_or_path: builtin:tiny-llama\ntemplate: chatml\nmax_new_tokens: 4\n")
    code, heavy, output = _run("chat", str(config), "--prompt", "Hi")
    assert code == 0, output
    assert {"torch", "transformers"} <= set(heavy) and not {"peft", "trl", "datasets", "gradio"} & set(heavy), heavy


_WORKER_PROBE = """
import sys
import psutil
from lmforge.cli.main import main
sys.argv = ["lmforge", *sys.argv[1:]]
try:
    main()
except SystemExit as done:
    assert not done.code, done.code
compile_pools = sys.modules.get("torch._inductor.async_compile")
pools = compile_pools.AsyncCompile.process_pool.cache_info().currsize if compile_pools else 0
print("inductor", compile_pools is not None, "pools", pools, "children", len(psutil.Process().children(True)),
      file=sys.stderr)
"""


def test_lora_training_starts_no_compile_workers(tmp_path):
    """bitsandbytes' import (from peft's LoRA layers) runs torch.compile's set-up, which in torch before 2.8 starts
    inductor's compile-worker processes (a sidecar and one per core) though nothing is compiled."""
    pytest.importorskip("bitsandbytes", reason="without bitsandbytes nothing imports inductor in a LoRA run")
    config = _config(tmp_path, "finetuning_type: lora\nmax_steps: 1\nreport_to: none\n")
    result = subprocess.run([sys.executable, "-c", _WORKER_PROBE, "train", config], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    last = result.stderr.rstrip().splitlines()[-1]
    assert result.returncode == 0 and last.startswith("inductor"), result.stderr[-3000:]
    assert last.split()[2:] == ["pools", "0", "children", "0"], last
