"""Precision defaults by device: bf16 autocast on CPUs with bf16 in hardware, fp32 elsewhere and on request,
and a run that learns the same in both."""

import io
import json

import pytest
import torch
from rich.console import Console
from transformers import Trainer, TrainingArguments

import lmforge.train.precision as precision
from lmforge.config import build_config, load_config
from lmforge.train.precision import compute_dtype, listed_cpu_flags, training_defaults, training_load_dtype
from lmforge.train.runner import run_training, training_kwargs
from tests.conftest import ROOT

CPU_ONLY = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU behaviour")
SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
SKYLAKE_SP = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw avx512vl avx512_vnni\n"
ZEN3 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2 fma\n"
ZEN4 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd sve i8mm bf16 svebf16\nCPU implementer\t: 0x41\n"
GRAVITON2 = "processor\t: 0\nFeatures\t: fp asimd asimddp\nCPU implementer\t: 0x41\n"


def test_cpus_with_bf16_in_hardware_are_told_from_those_without():
    assert listed_cpu_flags(SAPPHIRE_RAPIDS) == ["amx_bf16", "avx512_bf16"]
    assert listed_cpu_flags(ZEN4) == ["avx512_bf16"]
    assert listed_cpu_flags(GRAVITON3) == ["bf16"]  # `svebf16` alone would not count; `bf16` does
    granite_rapids = SAPPHIRE_RAPIDS.replace("amx_int8", "amx_int8 avx512_fp16 amx_fp16")
    assert listed_cpu_flags(granite_rapids, precision.FAST_FP16_FLAGS) == ["amx_fp16", "avx512_fp16"]
    assert listed_cpu_flags(SAPPHIRE_RAPIDS, precision.FAST_FP16_FLAGS) == []
    assert listed_cpu_flags(SKYLAKE_SP) == listed_cpu_flags(ZEN3) == listed_cpu_flags(GRAVITON2) == []


def test_the_cpu_is_described_by_its_name_and_the_instruction_sets_that_decide_its_speed():
    name = "model name\t: AMD EPYC 9R14\n"
    assert precision.cpu_description(name + ZEN4) == "AMD EPYC 9R14 (AVX-512, AVX-512-BF16)"
    assert precision.cpu_description(name + ZEN3) == "AMD EPYC 9R14 (AVX2 only)"
    assert precision.cpu_description(SAPPHIRE_RAPIDS).endswith("(AVX-512, AVX-512-BF16, AMX)")
    assert "(" not in precision.cpu_description(GRAVITON3)  # no x86 sets: the name (or machine) alone
    assert precision.cpu_name("Model\t\t: Raspberry Pi 5 Model B\n" + GRAVITON2) == "Raspberry Pi 5 Model B"


@CPU_ONLY
@pytest.mark.parametrize("finetuning_type", ["lora", "full"])
def test_a_cpu_with_fast_bf16_trains_in_bf16_autocast_on_fp32_weights(monkeypatch, tmp_path, finetuning_type):
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    cfg = build_config({"finetuning_type": finetuning_type, "output_dir": str(tmp_path)})
    assert compute_dtype(cfg) == torch.bfloat16 and training_load_dtype(cfg) == torch.float32
    kwargs = training_kwargs(cfg)
    assert kwargs["bf16"] is True and kwargs["use_cpu"] is True
    trainer = Trainer(model=torch.nn.Linear(2, 2), args=TrainingArguments(**kwargs))
    assert trainer.accelerator.mixed_precision == "bf16"  # transformers autocasts the CPU forward
    # `bf16: false` keeps full precision; `pure_bf16` keeps bf16 weights without autocast
    plain = build_config({"finetuning_type": finetuning_type, "bf16": False, "output_dir": str(tmp_path)})
    assert compute_dtype(plain) == training_load_dtype(plain) == torch.float32
    assert "bf16" not in training_defaults(plain) and training_kwargs(plain)["bf16"] is False
    pure = build_config({"finetuning_type": finetuning_type, "pure_bf16": True})
    assert training_load_dtype(pure) == torch.bfloat16 and "bf16" not in training_defaults(pure)
    deepspeed = build_config({"finetuning_type": finetuning_type, "deepspeed": str(ROOT / "examples" / "deepspeed" /
                                                                                   "ds_z3_config.json")})
    assert compute_dtype(deepspeed) == torch.float32  # its engine's own precision, not verified on a CPU


@CPU_ONLY
def test_a_cpu_without_fast_bf16_keeps_fp32(monkeypatch, tmp_path):
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: False)
    cfg = build_config({"output_dir": str(tmp_path)})
    assert compute_dtype(cfg) == training_load_dtype(cfg) == torch.float32
    assert "bf16" not in training_defaults(cfg) and training_kwargs(cfg)["bf16"] is False
    # asked for (LLaMA-Factory's GPU configs say `bf16: true`): fp32 all the same, as torch would emulate every
    # bf16 product, ~100x slower; `pure_bf16` (bf16 weights, for their memory) stays bf16
    asked = build_config({"bf16": True, "output_dir": str(tmp_path)})
    assert precision.emulated_half_precision(asked) == "bf16"
    assert compute_dtype(asked) == training_load_dtype(asked) == torch.float32
    assert training_kwargs(asked)["bf16"] is False
    monkeypatch.setattr(precision, "cpu_has_fast_fp16", lambda: False)
    assert precision.emulated_half_precision(build_config({"fp16": True})) == "fp16"
    assert compute_dtype(build_config({"fp16": True})) == torch.float32
    deepspeed = ROOT / "examples" / "deepspeed" / "ds_z3_config.json"  # bf16 `enabled: auto`: the Trainer's
    assert precision.emulated_half_precision(build_config({"bf16": True, "deepspeed": str(deepspeed)})) == "bf16"
    said = {"zero_optimization": {"stage": 2}, "bf16": {"enabled": True}}  # DeepSpeed told to itself: kept
    assert precision.emulated_half_precision(build_config({"bf16": True, "deepspeed": said})) is None
    pure = build_config({"pure_bf16": True})
    assert precision.emulated_half_precision(pure) is None and compute_dtype(pure) == torch.bfloat16
    assert precision.emulated_pure_bf16(pure) and not precision.emulated_pure_bf16(asked)  # the run warns
    assert precision.precision_summary(asked).endswith("float32 (`bf16: true` set aside: no bf16 arithmetic on "
                                                       "this CPU)")  # what `lmforge check` says
    assert "pure_bf16); emulated on this CPU" in precision.precision_summary(pure)
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    assert not precision.emulated_pure_bf16(pure)
    assert precision.precision_summary(asked).endswith(": bfloat16 mixed precision (autocast)")


@CPU_ONLY
@pytest.mark.parametrize("options,checkpoints", [
    ({"stage": "sft", "per_device_train_batch_size": 4, "cutoff_len": 512}, False),  # 2,048 tokens
    ({"stage": "sft", "per_device_train_batch_size": 2, "cutoff_len": 2048}, True),
    ({"stage": "sft", "cutoff_len": 512}, True),  # transformers' batch of 8
    ({"stage": "dpo", "per_device_train_batch_size": 1, "cutoff_len": 2048}, True),  # a pair: 2 x 2,048
    ({"stage": "dpo", "per_device_train_batch_size": 1, "cutoff_len": 1024}, False),
    ({"stage": "dpo", "per_device_train_batch_size": 1, "cutoff_len": 2048, "gradient_checkpointing": False}, None),
    ({"stage": "sft", "per_device_train_batch_size": 4, "cutoff_len": 512, "quantization_bit": 4}, True),
    ({"stage": "sft", "quantization_bit": 4, "gradient_checkpointing": False}, None),
], ids=["sft-short", "sft-long", "sft-default-batch", "dpo-long", "dpo-short", "dpo-said-no", "qlora-short",
        "qlora-said-no"])
def test_a_cpu_checkpoints_activations_from_4096_tokens_a_micro_batch_and_for_qlora(options, checkpoints):
    """QLoRA is chosen for memory: its activations are checkpointed at any length unless the config says no."""
    defaults = training_defaults(build_config(options))
    assert defaults.get("activation_checkpointing") is checkpoints
    if checkpoints is None:  # the user's own setting is kept (under the name transformers keeps)
        assert training_kwargs(build_config(options))["activation_checkpointing"] is False


def losses(out):
    lines = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return [line["loss"] for line in lines if "loss" in line]


def quickstart_job(tmp_path, monkeypatch, name, fast_bf16, *overrides):
    """The quickstart's job (the identity data, its batch and schedule) on builtin:tiny-llama, full fine-tuning (LoRA
    on random weights learns too slowly to tell), 20 steps, on a CPU with or without fast bf16 (`fast_bf16`: the
    numbers are the same either way, emulated bf16 only slower); its losses and what the run printed."""
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: fast_bf16)
    out = tmp_path / name
    cfg = load_config(ROOT / "examples" / "quickstart" / "train.yaml", [
        "model_name_or_path=builtin:tiny-llama", "template=chatml", f"dataset_dir={ROOT / 'examples' / 'data'}",
        "max_steps=20", "logging_steps=2", "finetuning_type=full", "learning_rate=3e-3", f"output_dir={out}",
        *overrides])
    printed = io.StringIO()
    summary = run_training(cfg, console=Console(file=printed, width=200))
    return losses(out), summary, printed.getvalue()


@pytest.mark.slow
@pytest.mark.skipif(not (torch.cuda.is_available() or precision.cpu_has_fast_bf16()),
                    reason="this CPU has no bf16 arithmetic, so lmforge never trains in bf16 on it (emulated, the "
                           "bf16 run took 4 minutes)")
def test_the_quickstart_job_learns_alike_in_fp32_and_bf16(tmp_path, monkeypatch):
    """Both learn (the loss falls by a fifth in 20 steps) and every logged loss of bf16 autocast is within 1% of
    fp32's."""
    curves = {}
    for bf16 in ("false", "true"):
        curves[bf16], summary, printed = quickstart_job(tmp_path, monkeypatch, bf16, True, f"bf16={bf16}")
        assert summary["peak_dtype"] == ("bfloat16" if bf16 == "true" else "float32") and 0 < summary["mfu"] < 1
        assert "model FLOP/s" in printed and "MFU" in printed
    fp32, bf16 = curves["false"], curves["true"]
    assert len(fp32) == len(bf16) == 10
    assert fp32[-1] < 0.8 * fp32[0] and bf16[-1] < 0.8 * bf16[0]
    assert fp32 != bf16  # bf16 really computed: its rounding shows in the later steps
    for exact, mixed in zip(fp32, bf16, strict=True):
        assert mixed == pytest.approx(exact, rel=0.01)


@CPU_ONLY
def test_bf16_asked_for_on_a_cpu_without_it_trains_in_fp32_and_says_so(tmp_path, monkeypatch):
    """LLaMA-Factory's GPU configs say `bf16: true`; on an AVX2 CPU torch would emulate every bf16 product (~100x
    slower than fp32): the run is fp32's, step for step, and the note says why."""
    asked, summary, printed = quickstart_job(tmp_path, monkeypatch, "asked", False, "bf16=true", "max_steps=4")
    plain, *_ = quickstart_job(tmp_path, monkeypatch, "plain", False, "bf16=false", "max_steps=4")
    assert asked == plain and summary["peak_dtype"] == "float32"
    assert "note: `bf16: true` asks for bf16 mixed precision, which this CPU has no arithmetic for" in printed
    assert "training in fp32" in " ".join(printed.split())


@CPU_ONLY
@pytest.mark.skipif(not precision.cpu_has_fast_bf16(), reason="pure bf16 on this CPU would be emulated (minutes)")
def test_pure_bf16_on_a_cpu_without_it_is_kept_and_warns(tmp_path, monkeypatch):
    """`pure_bf16` may be asked for its weights' memory, so it stays; the run says what it costs there and how to
    train in fp32 instead (the CPU's lack of bf16 is pretended: the products are real bf16 here)."""
    _, summary, printed = quickstart_job(tmp_path, monkeypatch, "pure", False, "pure_bf16=true", "max_steps=1")
    assert summary["peak_dtype"] == "bfloat16"
    assert "`pure_bf16: true` keeps the weights in bf16, which this CPU has no arithmetic for" in printed
    assert "`pure_bf16: false` trains in fp32" in " ".join(printed.split())


def test_checkpointing_is_dropped_or_refused_on_a_model_class_without_it():
    """Remote code may not support activation checkpointing: lmforge's own default is dropped with a note, the
    user's explicit setting is refused with the fix (not transformers' ValueError from inside the Trainer)."""
    from rich.console import Console
    from transformers import LlamaConfig, LlamaForCausalLM

    from lmforge.errors import ModelError
    from lmforge.train.runner import _checkpointing_the_model_supports

    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2))
    model.supports_gradient_checkpointing = False  # this instance only, as a remote-code class would say
    console = Console(record=True, width=200)
    kwargs = {"activation_checkpointing": True}
    _checkpointing_the_model_supports(build_config({}), model, kwargs, console)
    assert kwargs["activation_checkpointing"] is False and "does not support it" in console.export_text()
    with pytest.raises(ModelError, match="remove `gradient_checkpointing`"):
        _checkpointing_the_model_supports(build_config({"gradient_checkpointing": True}), model,
                                          {"activation_checkpointing": True}, console)
    supported = {"activation_checkpointing": True}
    model.supports_gradient_checkpointing = True
    _checkpointing_the_model_supports(build_config({}), model, supported, console)
    assert supported["activation_checkpointing"] is True


@CPU_ONLY
def test_the_cpu_checkpointing_default_reads_the_datas_longest_example():
    """Rows are padded to the longest of their batch: a DPO pair at cutoff 2048 whose longest example is 600
    tokens is 1,200 tokens a micro-batch, not 4,096; an example over cutoff_len counts as cutoff_len."""
    from lmforge.data.report import DataReport
    from lmforge.train.runner import _longest_example

    cfg = build_config({"stage": "dpo", "per_device_train_batch_size": 1, "cutoff_len": 2048})
    assert training_defaults(cfg, longest=600)["activation_checkpointing"] is False
    assert training_defaults(cfg, longest=9000)["activation_checkpointing"] is True
    assert training_defaults(cfg)["activation_checkpointing"] is True  # unknown lengths: cutoff_len
    assert _longest_example(DataReport(lengths={120: 3, 600: 1})) == 600
    assert _longest_example(DataReport(lengths={120: 3}, packed_rows=2)) is None  # packed rows are cutoff long
    assert _longest_example(DataReport(lengths={120: 3}, multimodal=True)) is None  # media tokens not counted
    assert _longest_example(DataReport()) is None


@CPU_ONLY
@pytest.mark.skipif(not precision.cpu_has_fast_bf16(), reason="the path of CPUs with bf16 arithmetic, which this one "
                    "lacks: lmforge trains in fp32 here (emulated, this test's bf16 runs took 17 minutes)")
def test_a_bf16_checkpoint_trains_from_bf16_linears_as_from_float32_ones(tmp_path, tiny_llama_path):
    """LoRA under bf16 autocast on a checkpoint stored in bf16 loads its linear weights in bf16 (never in float32):
    the same first loss as the same values stored in float32 (loaded in float32 and cast back), and the same curve
    to the rounding of the adapter's initial A, which peft draws in float32 and casts to the base's dtype."""
    from rich.console import Console
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lmforge.model.frozen_linears import stored_float_dtype
    from lmforge.train.runner import run_training

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32).to(torch.bfloat16)
    curves = {}
    for stored in (torch.bfloat16, torch.float32):
        folder = tmp_path / str(stored)
        model.to(stored).save_pretrained(folder)
        AutoTokenizer.from_pretrained(tiny_llama_path).save_pretrained(folder)
        assert stored_float_dtype(folder) == stored
        out = tmp_path / f"out-{stored}"
        cfg = build_config({"model_name_or_path": str(folder), "template": "chatml", "dataset": "identity",
                            "dataset_dir": str(ROOT / "examples" / "data"), "max_samples": 8, "cutoff_len": 64,
                            "max_steps": 3, "logging_steps": 1, "learning_rate": 1e-2, "bf16": True,
                            "per_device_train_batch_size": 4, "report_to": "none", "output_dir": str(out)})
        assert precision.frozen_linears_loaded_in_bf16(cfg)
        run_training(cfg, Console(quiet=True))
        curves[stored] = losses(out)
    loaded_bf16, loaded_float32 = curves[torch.bfloat16], curves[torch.float32]
    assert len(loaded_bf16) == 3 and loaded_bf16[0] == loaded_float32[0]  # B starts at zero: A is not used yet
    assert loaded_bf16 == pytest.approx(loaded_float32, rel=1e-3)
    # resuming the adapter trained on the float32 load: the same curve on either load, bit for bit
    resumed = {}
    for stored in (torch.bfloat16, torch.float32):
        out = tmp_path / f"resumed-{stored}"
        cfg = build_config({"model_name_or_path": str(tmp_path / str(stored)), "template": "chatml",
                            "dataset": "identity", "dataset_dir": str(ROOT / "examples" / "data"), "max_samples": 8,
                            "cutoff_len": 64, "max_steps": 2, "logging_steps": 1, "learning_rate": 1e-2, "bf16": True,
                            "adapter_name_or_path": str(tmp_path / "out-torch.float32"),
                            "per_device_train_batch_size": 4, "report_to": "none", "output_dir": str(out)})
        assert precision.frozen_linears_loaded_in_bf16(cfg)
        run_training(cfg, Console(quiet=True))
        resumed[stored] = losses(out)
    assert resumed[torch.bfloat16] == resumed[torch.float32] and resumed[torch.bfloat16][0] < loaded_float32[-1]


@pytest.mark.parametrize(("keys", "processes", "accumulation"), [
    ({"global_batch_size": 16, "per_device_train_batch_size": 2}, 1, 8),
    ({"global_batch_size": 16, "per_device_train_batch_size": 2}, 4, 2),  # LLaMA-Factory v1 divides by processes
    ({"global_batch_size": 16}, 2, 1),  # transformers' per-device batch of 8
    ({"gradient_accumulation_steps": 3}, 2, 3),
])
def test_global_batch_size_sets_the_accumulation_per_process(monkeypatch, tmp_path, keys, processes, accumulation):
    monkeypatch.setenv("WORLD_SIZE", str(processes))
    kwargs = training_kwargs(build_config({"output_dir": str(tmp_path), **keys}))
    assert kwargs["gradient_accumulation_steps"] == accumulation and "global_batch_size" not in kwargs


def test_global_batch_size_that_does_not_divide_is_refused(monkeypatch, tmp_path):
    from lmforge.errors import ConfigError

    monkeypatch.setenv("WORLD_SIZE", "3")
    cfg = build_config({"output_dir": str(tmp_path), "global_batch_size": 16, "per_device_train_batch_size": 2})
    with pytest.raises(ConfigError, match=r"`global_batch_size: 16` is not a multiple of .* = 2 x 3"):
        training_kwargs(cfg)
    with pytest.raises(ConfigError, match="is not a multiple of `per_device_train_batch_size: 3`"):
        build_config({"global_batch_size": 16, "per_device_train_batch_size": 3})
    with pytest.raises(ConfigError, match="`global_batch_size` and `gradient_accumulation_steps` both set"):
        build_config({"global_batch_size": 16, "gradient_accumulation_steps": 2})


@CPU_ONLY
def test_a_full_fine_tuning_reference_keeps_bf16_linears_and_the_policys_log_probabilities(tmp_path, tiny_llama_path,
                                                                                          monkeypatch):
    """DPO's frozen reference copy under bf16 autocast on a CPU: its linear weights loaded in bf16 from a bf16
    checkpoint (half their memory) and, at step 0, the float32 policy's logits bit for bit (zero rewards)."""
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    from transformers import AutoModelForCausalLM

    from lmforge.train.runner import _reference_model
    from lmforge.train.stages import STAGES

    folder = tmp_path / "bf16"
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    model.to(torch.bfloat16).save_pretrained(folder)
    cfg = build_config({"model_name_or_path": str(folder), "stage": "dpo", "finetuning_type": "full", "bf16": True,
                        "output_dir": str(tmp_path / "out")})
    assert precision.frozen_reference_in_bf16(cfg)
    policy = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    reference = _reference_model(cfg, STAGES.get("dpo"), policy)
    q_proj = reference.model.layers[0].self_attn.q_proj
    assert q_proj.weight.dtype == torch.bfloat16 and reference.lm_head.weight.dtype == torch.float32
    ids = torch.tensor([[1, 5, 9, 14, 3]])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(reference(ids).logits, policy(ids).logits)
    plain = build_config({"model_name_or_path": str(folder), "stage": "dpo", "finetuning_type": "full",
                          "bf16": False})
    assert not precision.frozen_reference_in_bf16(plain)  # float32 products: float32 weights
