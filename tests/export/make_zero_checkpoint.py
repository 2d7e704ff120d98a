"""Run by test_convert.py in a subprocess: one real DeepSpeed ZeRO training step on CPU, then save.

Usage: python make_zero_checkpoint.py MODEL_DIR OUT_DIR STAGE. Writes OUT_DIR/{latest, global_step1/}
(DeepSpeed's own save) plus OUT_DIR/expected.pt, the full trained weights gathered from the engine.
"""

import os
import sys

import torch

os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ.get("MASTER_PORT", "29517"), RANK="0",
                  WORLD_SIZE="1", LOCAL_RANK="0")

import deepspeed
import deepspeed.ops
from transformers import AutoModelForCausalLM

# DeepSpeed would compile a shared-memory collective (a minute of C++) that one process never uses.
deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False

model_dir, out_dir, stage = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.distributed.init_process_group("gloo")
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
config = {"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 1,
          "optimizer": {"type": "AdamW", "params": {"lr": 1e-2, "torch_adam": True}},
          "zero_optimization": {"stage": stage}}
engine, *_ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=config,
                                  dist_init_required=False)
ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12]])
engine.backward(engine(input_ids=ids, labels=ids).loss)
engine.step()
engine.save_checkpoint(out_dir)
with deepspeed.zero.GatheredParameters(list(engine.module.parameters()), enabled=stage == 3):
    torch.save({k: v.detach().clone() for k, v in engine.module.state_dict().items()},
               os.path.join(out_dir, "expected.pt"))
torch.distributed.destroy_process_group()
