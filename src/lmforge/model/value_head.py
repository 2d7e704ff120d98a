"""PPO's value head: a scalar per token read off the policy's last hidden state, trained with the policy (its
adapter with LoRA) on the same backbone, as LLaMA-Factory's PPO does (trl's `ValueHead`: dropout 0.1, then a
linear layer with a bias, in float32).

The head is a submodule of the policy instance (`v_head`), so every optimizer lmforge builds from the model's
parameters trains it and distributed training keeps it in sync. It is saved beside the model as
LLaMA-Factory saves it: `value_head.safetensors` with `v_head.summary.weight` / `v_head.summary.bias`.
"""

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

VALUE_HEAD_FILE = "value_head.safetensors"
HEAD_NAME = "v_head"
DROPOUT = 0.1


class ValueHead(torch.nn.Module):
    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.dropout = torch.nn.Dropout(DROPOUT)
        self.summary = torch.nn.Linear(hidden_size, 1, dtype=torch.float32)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(batch, positions, hidden) -> (batch, positions) values."""
        return self.summary(self.dropout(hidden.to(self.summary.weight.dtype))).squeeze(-1)


def attach_value_head(model: Any) -> ValueHead:
    """A fresh value head on `model` (on the device of its parameters); returns it."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    head = ValueHead(config.hidden_size).to(next(model.parameters()).device)
    model.add_module(HEAD_NAME, head)
    return head


def value_head_of(model: Any) -> ValueHead:
    return getattr(model, HEAD_NAME)


def save_value_head(head: ValueHead, folder: Path) -> None:
    state = {f"{HEAD_NAME}.{name}": tensor.detach().cpu().contiguous() for name, tensor in head.state_dict().items()}
    save_file(state, str(folder / VALUE_HEAD_FILE), metadata={"format": "pt"})


def load_value_head(head: ValueHead, folder: Path) -> bool:
    """Load the head saved in `folder` (a checkpoint being resumed); False when there is none."""
    path = folder / VALUE_HEAD_FILE
    if not path.is_file():
        return False
    state = load_file(str(path))
    head.load_state_dict({name.removeprefix(f"{HEAD_NAME}."): tensor for name, tensor in state.items()})
    return True
