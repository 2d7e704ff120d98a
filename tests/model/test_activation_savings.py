"""Fewer tensors kept for the backward pass on the CPU (model/gated_mlp.py, model/recast_weights.py,
model/rms_norm.py, model/saved_recipes.py): the same loss and gradients bit for bit, with and without gradient
checkpointing, and less memory; the RMSNorms' written-out backward the same loss and the gradients to float32
rounding; for short micro-batches the frozen weights' copies kept from step to step instead, with the same
numbers."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from lmforge.model.gated_mlp import recompute_gated_activations
from lmforge.model.recast_weights import keep_frozen_weight_copies, recast_weights_in_backward
from lmforge.model.rms_norm import fuse_rms_norms
from lmforge.model.shared_casts import adapter_inputs_as_they_come, share_input_casts


def _model(path, finetuning: str, saving: bool, checkpointing: bool, norms: bool = True):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
    if finetuning == "lora":  # random B as well, so the adapters' gradients are all non-zero
        model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    config = model.config
    share_input_casts(model)  # as the runner has it
    if saving:
        assert recompute_gated_activations(model, remake_products=True) == model.config.num_hidden_layers
        assert recast_weights_in_backward(model) > 0
        if norms:
            assert fuse_rms_norms(model, remake_outputs=True) == 2 * config.num_hidden_layers + 1
        assert adapter_inputs_as_they_come(model) == (7 * config.num_hidden_layers if finetuning == "lora" else 0)
    return model


def _step(model, ids: torch.Tensor, autocast: bool = True):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
    loss.backward()
    return loss.item(), {name: param.grad for name, param in model.named_parameters() if param.grad is not None}


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize("finetuning", ["lora", "full"])
def test_the_same_numbers(tiny_llama_path, finetuning, checkpointing):
    ids = torch.randint(0, 100, (2, 48), generator=torch.Generator().manual_seed(1))
    loss, grads = _step(_model(tiny_llama_path, finetuning, False, checkpointing), ids)
    saved_loss, saved_grads = _step(_model(tiny_llama_path, finetuning, True, checkpointing, norms=False), ids)
    assert saved_loss == loss
    assert grads.keys() == saved_grads.keys() and len(grads) > 0
    for name, grad in grads.items():
        assert torch.equal(saved_grads[name], grad), name
    # the norms' written-out backward as well: the same forward, the gradients to rounding (bf16's, where a float32
    # difference in the residual stream's gradient moves a product's bf16 rounding)
    fused_loss, fused_grads = _step(_model(tiny_llama_path, finetuning, True, checkpointing), ids)
    assert fused_loss == loss
    for name, grad in grads.items():
        assert (fused_grads[name] - grad).norm() <= 1e-2 * grad.norm(), name


def test_without_autocast_or_gradients_the_plain_layers(tiny_llama_path):
    ids = torch.randint(0, 100, (2, 48), generator=torch.Generator().manual_seed(1))
    plain, saved = (_model(tiny_llama_path, "full", saving, False) for saving in (False, True))
    assert _step(saved, ids, autocast=False)[0] == _step(plain, ids, autocast=False)[0]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(saved(input_ids=ids).logits, plain(input_ids=ids).logits)


def _kept(loss: torch.Tensor) -> dict[int, torch.Tensor]:
    """The tensors the backward pass of `loss` holds, by storage: each node's saved tensors read twice while the
    first reads stay alive, so a tensor remade on each read (a recast) shows two storages and is left out."""
    def saved(node) -> list[torch.Tensor]:
        found = list(getattr(node, "saved_tensors", ()) or ()) if "Backward" in type(node).__name__ else []
        for name in dir(node):
            if name.startswith("_saved_"):
                value = getattr(node, name)
                found.extend(v for v in (value if isinstance(value, tuple | list) else [value]) if torch.is_tensor(v))
        return found

    nodes, queue, seen = [], [loss.grad_fn], set()
    while queue:
        node = queue.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        queue.extend(next_node for next_node, _ in node.next_functions)
    first = [tensor for node in nodes for tensor in saved(node)]
    again = {tensor.untyped_storage().data_ptr() for node in nodes for tensor in saved(node)}
    return {t.untyped_storage().data_ptr(): t for t in first if t.untyped_storage().data_ptr() in again}


@pytest.mark.parametrize("finetuning", ["lora", "full"])
def test_neither_weight_copies_nor_the_activation_are_kept(tiny_llama_path, finetuning):
    ids = torch.randint(0, 100, (2, 48), generator=torch.Generator().manual_seed(1))
    kept = {}
    for saving in (False, True):
        model = _model(tiny_llama_path, finetuning, saving, False)
        shapes = {tuple(p.shape) for p in model.parameters() if p.dim() == 2} | {
            tuple(reversed(p.shape)) for p in model.parameters() if p.dim() == 2}
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        tensors = _kept(loss).values()
        copies = sum(t.untyped_storage().nbytes() for t in tensors
                     if t.dtype == torch.bfloat16 and tuple(t.shape) in shapes)
        kept[saving] = (sum(t.untyped_storage().nbytes() for t in tensors), copies)
    config = model.config
    # the activation and the product (down's input), bf16; with trained norms their float32 normalised inputs and
    # the bf16 copies of their outputs that the projections read
    mlp = 2 * 2 * ids.numel() * config.intermediate_size * config.num_hidden_layers
    norm_count = 2 * config.num_hidden_layers + 1
    norms = (4 + 2) * ids.numel() * config.hidden_size * norm_count if finetuning == "full" else 0
    assert kept[True][1] == 0 < kept[False][1]
    assert kept[False][0] - kept[True][0] >= kept[False][1] + mlp + norms


def test_only_the_known_shapes_change():
    class OtherMLP(torch.nn.Module):  # phi3-style: one fused projection, its own expression
        def __init__(self) -> None:
            super().__init__()
            self.gate_proj, self.up_proj, self.down_proj = (torch.nn.Linear(4, 4) for _ in range(3))
            self.act_fn = torch.nn.SiLU()

        def forward(self, x):
            return self.down_proj(self.act_fn(self.gate_proj(x)) + self.up_proj(x))

    class OffsetNorm(torch.nn.Module):  # Gemma-style: scales by 1 + weight
        def __init__(self) -> None:
            super().__init__()
            self.weight, self.variance_epsilon = torch.nn.Parameter(torch.zeros(4)), 1e-6

        def forward(self, x):
            return (1 + self.weight) * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))

    model = torch.nn.Sequential(OtherMLP(), torch.nn.Linear(4, 4).to(torch.bfloat16), OffsetNorm())
    assert recompute_gated_activations(model) == 0
    assert recast_weights_in_backward(model) == 3  # the bf16 layer keeps its weight as it is
    assert fuse_rms_norms(model) == 0


@pytest.mark.parametrize(("checkpointing", "longest", "copies"), [(False, 512, "recast"), (True, 512, None),
                                                                 (False, 100, "kept"), (True, 100, None)])
def test_the_runner_recasts_long_micro_batches_copies_and_keeps_short_ones(tiny_llama_path, checkpointing, longest,
                                                                          copies):
    from lmforge.config import load_config
    from lmforge.model.gated_mlp import _forward as gated_forward
    from lmforge.model.gated_mlp import _forward_remaking_product
    from lmforge.model.recast_weights import _forward as recast_forward
    from lmforge.model.recast_weights import _kept_copy_forward
    from lmforge.model.rms_norm import _forward as norm_forward
    from lmforge.model.rms_norm import _remaking_output_forward
    from lmforge.model.rotary_attention import _forward as rotary_forward
    from lmforge.train.runner import keep_less_for_backward

    cfg = load_config(None, [f"model_name_or_path={tiny_llama_path}", "stage=sft", "finetuning_type=lora",
                             "template=chatml", "dataset=identity", "output_dir=unused", "cutoff_len=1024",
                             "per_device_train_batch_size=4"])
    model = _model(tiny_llama_path, "lora", False, False)
    keep_less_for_backward(cfg, model, {"activation_checkpointing": checkpointing}, longest)
    forwards = {getattr(vars(m).get("forward"), "__func__", None) for m in model.modules()}
    # 4 x 512 tokens: recast; checkpointed layers keep no copy (the recast's hooks, the innermost, would keep what
    # checkpointing drops); 4 x 100 tokens: the casts would cost more time than the memory is worth, and the
    # frozen weights' copies, kept for the backward pass anyway, are kept from step to step
    assert (recast_forward in forwards) is (copies == "recast")
    assert (_kept_copy_forward in forwards) is (copies == "kept")
    # the MLP's product and the copies of the norms' outputs remade in the backward pass along with the weights'
    # copies; the norms' backward written out in every case
    assert (_forward_remaking_product in forwards) is (copies == "recast")
    assert (gated_forward in forwards) is (copies != "recast")
    assert (_remaking_output_forward in forwards) is (copies == "recast")
    assert (norm_forward in forwards) is (copies != "recast")
    assert rotary_forward in forwards  # the attention's rotation in one function in every case
    # transformers kernelizes again on every train/eval switch, which would put the norms' class forward back
    model.eval()
    model.train()
    assert forwards == {getattr(vars(m).get("forward"), "__func__", None) for m in model.modules()}
    assert all(not m.cast_input_dtype_enabled for m in model.modules() if hasattr(m, "cast_input_dtype_enabled"))


def test_kept_copies_give_the_same_numbers_step_after_step_and_follow_a_changed_weight(tiny_llama_path):
    ids = torch.randint(0, 100, (2, 48), generator=torch.Generator().manual_seed(1))
    plain = _model(tiny_llama_path, "lora", False, False)
    kept = _model(tiny_llama_path, "lora", False, False)
    assert keep_frozen_weight_copies(kept) == 7 * kept.config.num_hidden_layers + 1  # the projections and the head
    for _ in range(2):  # the second step reads the copies the first made
        loss, grads = _step(plain, ids)
        kept_loss, kept_grads = _step(kept, ids)
        assert kept_loss == loss
        for name, grad in grads.items():
            assert torch.equal(kept_grads[name], grad), name
    copies = [vars(m)["_lmforge_kept_copy"][1] for m in kept.modules() if "_lmforge_kept_copy" in vars(m)]
    assert len(copies) == 7 * kept.config.num_hidden_layers + 1 and all(c.dtype == torch.bfloat16 for c in copies)
    # a frozen weight changed in place (merging, a user's edit) is cast again; outside autocast the plain layer
    for model in (plain, kept):
        with torch.no_grad():
            model.base_model.model.lm_head.weight.mul_(0.5)
    assert _step(kept, ids)[0] == _step(plain, ids)[0]
    assert _step(kept, ids, autocast=False)[0] == _step(plain, ids, autocast=False)[0]


class _CountedOperators(torch.utils._python_dispatch.TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[func.__name__] = self.counts.get(func.__name__, 0) + 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("remake_products", [False, True])
def test_silu_runs_once_in_the_forward_and_once_in_the_backward(tiny_llama_path, remake_products):
    """The product remade for down's backward (as the runner sets long micro-batches up) lends its activation to the
    gated product's backward, which runs next; without remaking, that backward makes it; SiLU's derivative by the
    kernel autograd would call, so the same numbers."""
    ids = torch.randint(0, 100, (2, 48), generator=torch.Generator().manual_seed(1))
    plain_loss, plain_grads = _step(_model(tiny_llama_path, "lora", False, False), ids)
    model = _model(tiny_llama_path, "lora", remake_products, False, norms=False)
    if not remake_products:
        assert recompute_gated_activations(model) == model.config.num_hidden_layers
    with _CountedOperators() as counted:
        loss, grads = _step(model, ids)
    layers = model.config.num_hidden_layers
    assert counted.counts.get("silu.default") == 2 * layers
    assert counted.counts.get("silu_backward.default") == layers
    assert loss == plain_loss and all(torch.equal(grads[name], grad) for name, grad in plain_grads.items())
