"""The suite's other steps: environment, models and data, the training invariants, generation, pytest -m gpu."""

import json
import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree
from importlib import metadata
from typing import Any

from bench.gpu.models import PUBLISHED_PARAMS, model_config, parameter_count, tokenized, write_dataset, write_model
from bench.gpu.plan import ROOT_DIR, TRAINING_RUNS, Context, qlora_export_config, train_config
from bench.gpu.rl_steps import grpo_config

PACKAGES = ("torch", "transformers", "huggingface-hub", "tokenizers", "accelerate", "peft", "trl", "datasets",
            "pydantic", "pyarrow", "fsspec", "regex", "bitsandbytes", "deepspeed", "liger-kernel", "triton", "vllm",
            "flash-attn")


ENV_IMPORTS = ("torch", "transformers", "lmforge.train.runner", "lmforge.infer.engine", "lmforge.export.pipeline")


def _timed_imports() -> dict[str, float]:
    """Import what lmforge needs, one module at a time, printing each one's seconds as it ends: on a cold
    machine (no bytecode yet, first CUDA load) the log then shows where a slow start spent its box."""
    import importlib

    seconds = {}
    for name in ENV_IMPORTS:  # the imports are the check: every wheel lmforge needs is there
        began = time.perf_counter()
        importlib.import_module(name)
        seconds[name] = round(time.perf_counter() - began, 2)
        print(f"import {name}: {seconds[name]:.1f} s", flush=True)
    return seconds


def step_env(ctx: Context) -> dict[str, Any]:
    import_s = _timed_imports()
    import torch

    began = time.perf_counter()
    cuda = torch.cuda.is_available() and torch.zeros(1, device="cuda").is_cuda
    import_s["cuda init"] = round(time.perf_counter() - began, 2)
    print(f"cuda init: {import_s['cuda init']:.1f} s", flush=True)
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    result: dict[str, Any] = {"status": "ok", "python": sys.version.split()[0], "versions": versions,
                              "cuda": cuda, "import_s": import_s}
    if cuda:
        result.update(device=torch.cuda.get_device_name(), capability=list(torch.cuda.get_device_capability()),
                      torch_cuda=torch.version.cuda, bf16=torch.cuda.is_bf16_supported(),
                      memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    elif not ctx.dry_run:
        return {**result, "status": "failed", "why": "no CUDA device visible to torch"}
    return result


def validate_gpu_configs(ctx: Context) -> list[str]:
    """Every training config the GPU run will use, validated by lmforge (keys, types, rules, model fit)
    against config-only folders of the real shapes: the dry run's guard against a renamed key."""
    from lmforge.config import build_config
    from lmforge.model.fit import check_model_fit

    gpu = Context(ctx.work, dry_run=False)
    for size in ("0.5b", "1.5b"):
        write_model(gpu.model_name(size), gpu.model_dir(size), weights=False)
    checked = []
    for step, run in TRAINING_RUNS.items():
        cfg = build_config(train_config(gpu, run.size, run.method, gpu.runs / run.folder, **dict(run.extra)),
                           source=step)
        if cfg.model.quantization_bit is None:  # QLoRA's check needs CUDA and bitsandbytes
            check_model_fit(cfg.model, cfg.finetuning, None, "train")
        checked.append(step)
    build_config(qlora_export_config(gpu, gpu.runs / "qlora", gpu.runs / "export"), source="qlora export")
    for step, use_vllm in (("grpo", False), ("grpo-vllm", True)):
        build_config(grpo_config(gpu, gpu.runs / step, use_vllm), source=step)
    return [*checked, "qlora export", "grpo", "grpo-vllm"]


def step_models(ctx: Context) -> dict[str, Any]:
    from transformers import AutoTokenizer

    result: dict[str, Any] = {"status": "ok", "parameters": {}}
    sizes = ["0.5b"] if ctx.dry_run else ["0.5b", "1.5b"]
    started = time.perf_counter()
    for size in sizes:
        folder = write_model(ctx.model_name(size), ctx.model_dir(size))
        tokenizer = AutoTokenizer.from_pretrained(folder)
        result["parameters"][ctx.model_name(size)] = parameter_count(model_config(ctx.model_name(size), tokenizer))
    result["build_s"] = round(time.perf_counter() - started, 1)
    if ctx.dry_run:
        result["validated_configs"] = validate_gpu_configs(ctx)
    for name, published in PUBLISHED_PARAMS.items():  # the shapes are the real models' (meta device, no memory)
        counted = parameter_count(model_config(name, AutoTokenizer.from_pretrained(ctx.model_dir("0.5b"))))
        if counted != published:
            return {"status": "failed", "why": f"{name}: {counted:,} parameters, Qwen publishes {published:,}"}
        result["parameters"][name] = counted
    write_dataset(ctx.data, rows=48 if ctx.dry_run else 500, scale=0.1 if ctx.dry_run else 1.0)
    columns = tokenized(ctx.data, AutoTokenizer.from_pretrained(ctx.model_dir("0.5b")), ctx.cutoff)
    lengths = [len(ids) for ids in columns["input_ids"]]
    (ctx.data / "lengths.json").write_text(json.dumps(lengths))
    result.update(examples=len(lengths), mean_tokens=round(sum(lengths) / len(lengths), 1))
    return result


def _loss_and_grads(model: Any, batch: dict[str, Any], **extra: Any) -> tuple[float, list[Any]]:
    model.zero_grad(set_to_none=True)
    inputs = {key: value for key, value in batch.items() if not key.startswith("num_")}
    loss = model(**inputs, **extra, use_cache=False).loss
    loss.backward()
    return loss.item(), [p.grad for p in model.parameters() if p.grad is not None]


def _gradient_gap(grads: list[Any], reference: list[Any]) -> float:
    """The largest difference of a parameter's gradient relative to its norm, floored at 1e-4 of the whole
    gradient's: a key projection's bias gets a gradient of pure rounding noise (softmax ignores a shift
    shared by a query's scores), whose relative difference between kernels means nothing."""
    import torch

    floor = 1e-4 * float(torch.stack([r.norm() for r in reference]).norm())
    return max(float((g - r).norm()) / (float(r.norm()) + floor) for g, r in zip(grads, reference, strict=True))


def step_invariants(ctx: Context) -> dict[str, Any]:
    """fp32 on the device: the unpacked padded batch is the reference; the packed rows with the masked
    whole-row attention, with attention within each sequence (lmforge's varlen SDPA), and the latter with
    gradient checkpointing must give its loss and gradients."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lmforge.data.collator import SftCollator
    from lmforge.data.packing import pack_examples
    from lmforge.model.packed_attention import packed_sequence_kwargs, use_packed_attention

    device = "cuda" if torch.cuda.is_available() else "cpu"
    folder = ctx.model_dir("0.5b")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa")
    use_packed_attention(model)  # as the trainer selects it
    model.to(device).train()
    lengths = json.loads((ctx.data / "lengths.json").read_text())
    count = next(i for i in range(1, len(lengths) + 1) if sum(lengths[:i]) >= 3 * ctx.cutoff)  # ~3 packed rows
    columns = tokenized(ctx.data, tokenizer, ctx.cutoff, limit=count)
    packed_columns, report = pack_examples(columns, capacity=ctx.cutoff)
    collate = SftCollator(pad_token_id=tokenizer.pad_token_id)

    def batch(cols: dict[str, list[Any]]) -> dict[str, Any]:
        rows = [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]
        return {key: value.to(device) for key, value in collate(rows).items() if hasattr(value, "to")}

    if report.rows >= count:
        return {"status": "failed", "why": "every packed row holds one sequence: the check would prove nothing"}
    unpacked, packed = batch(columns), batch(packed_columns)
    bounds = packed_sequence_kwargs(packed["position_ids"])
    loss, reference = _loss_and_grads(model, unpacked)
    reference = [g.clone() for g in reference]
    checks = {}
    for name, extra, checkpointing in [("packed, masked rows", {}, False), ("packed, per sequence", bounds, False),
                                       ("packed, per sequence, checkpointing", bounds, True)]:
        if checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        value, grads = _loss_and_grads(model, packed, **extra)
        checks[name] = {"loss_gap": abs(value - loss) / abs(loss), "gradient_gap": _gradient_gap(grads, reference)}
    model.activation_checkpointing_disable()
    # fp32 kernels differ in summation order only: 1e-5 on the loss, 1e-3 on a gradient's norm
    passed = all(c["loss_gap"] <= 1e-5 and c["gradient_gap"] <= 1e-3 for c in checks.values())
    return {"status": "ok" if passed else "failed", "why": "" if passed else "a gap over 1e-5 (loss) / 1e-3 (grad)",
            "device": device, "examples": count, "packed_rows": report.rows, "sequences_per_row":
            round(count / report.rows, 2), "loss": loss, "checks": checks}


def step_generation(ctx: Context) -> dict[str, Any]:
    """32 prompts sent at once from threads, as an API server's clients would: the engine batches them."""
    from lmforge.config import build_config
    from lmforge.data.templates.template import Message
    from lmforge.infer.factory import create_engine
    from lmforge.infer.vllm_backend import vllm_usable

    prompts, new_tokens = (4, 8) if ctx.dry_run else (32, 128)
    cfg = build_config({"model_name_or_path": str(ctx.model_dir("0.5b")), "template": "chatml", "do_sample": False,
                        "max_new_tokens": new_tokens, "infer_batch_size": prompts})
    engine = create_engine(cfg)
    conversations = [[Message("user", f"Write about item {i}: " + "the sea and the moon " * (1 + i % 5))]
                     for i in range(prompts)]
    answers: list[Any] = [None] * prompts

    def ask(i: int) -> None:
        answers[i] = engine.candidates(conversations[i])[0]

    ask(0)  # warm-up: first kernels, cuBLAS handles
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(prompts)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    tokens = sum(len(answer.token_ids) for answer in answers)
    batches = list(engine.worker.batch_sizes[1:])
    engine.close()
    return {"status": "ok", "backend": engine.backend, "vllm_usable": vllm_usable(), "prompts": prompts,
            "max_new_tokens": new_tokens, "tokens": tokens, "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds, 1), "batch_sizes": batches}


def step_pytest(ctx: Context) -> dict[str, Any]:
    report = ctx.work / "pytest-gpu.xml"
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "tests/gpu", "-q", "-p", "no:cacheprovider",
               f"--junitxml={report}"]
    code = subprocess.run(command, cwd=ROOT_DIR, check=False).returncode
    if not report.is_file():
        return {"status": "failed", "why": f"pytest exited {code} without a report"}
    suite = ElementTree.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    failed = [case.get("name") for case in suite.iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None]
    return {"status": "ok" if code == 0 else "failed", "why": f"failed: {', '.join(failed)}" if failed else "",
            **counts}


def step_hub_kernels(ctx: Context) -> dict[str, Any]:
    """What a user's run meets offline with transformers' default, which the other steps turn off: from_pretrained
    kernelizes the model with Hub kernels (USE_HUB_KERNELS on) that an offline machine cannot fetch."""
    import torch
    from transformers import AutoModelForCausalLM

    os.environ["USE_HUB_KERNELS"] = "1"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        model = AutoModelForCausalLM.from_pretrained(ctx.model_dir("0.5b"), dtype=torch.bfloat16).to(device).train()
        input_ids = torch.arange(3, 67, device=device).unsqueeze(0)
        model(input_ids=input_ids, labels=input_ids).loss.backward()
        finding = "loads, runs forward and backward"
    except Exception as err:  # the error is the finding, not the step's failure
        finding = f"{type(err).__name__}: {str(err)[:300]}"
    return {"status": "ok", "why": f"offline with Hub kernels on: {finding}", "hub_kernels_offline": finding}
