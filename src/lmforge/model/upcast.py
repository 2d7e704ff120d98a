"""float32 islands in a half-precision model (`upcast_layernorm`, `upcast_lmhead_output`), on one model instance.

Normalisation weights are few and sensitive to rounding; logits in half precision lose the small differences
the loss is made of.
"""

from typing import Any

import torch

NORM_NAME_PARTS = ("norm", "ln")  # the 1-D weights of LayerNorm/RMSNorm layers (`input_layernorm`, `ln_f`, ...)


def _input_dtype_output(module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> Any:
    """A float32 norm's output back in its input's dtype, as autocast would hand it to the next half-precision
    layer (without autocast, a float32 activation would meet half-precision weights)."""
    if args and torch.is_tensor(args[0]) and torch.is_tensor(output):
        return output.to(args[0].dtype)
    return output


def upcast_layer_norms(model: torch.nn.Module) -> int:
    """Cast the 1-D normalisation weights held in half precision to float32 (their outputs keep the input's
    dtype); returns how many weights were cast."""
    cast = 0
    for module_name, module in model.named_modules():
        own = list(module.named_parameters(recurse=False))
        norms = [param for name, param in own if param.ndim == 1 and param.dtype != torch.float32
                 and any(part in f"{module_name}.{name}" for part in NORM_NAME_PARTS)]
        for param in norms:
            param.data = param.data.float()
        if norms:
            module.register_forward_hook(_input_dtype_output)
            cast += len(norms)
    return cast


def _float32_output(module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
    return output.float()


def upcast_head_output(model: Any) -> bool:
    """Logits in float32 when the output head is a half-precision linear layer (a hook on this model's head);
    returns whether one was added."""
    head = model.get_output_embeddings()
    if not isinstance(head, torch.nn.Linear) or head.weight.dtype == torch.float32:
        return False
    head.register_forward_hook(_float32_output)
    return True
