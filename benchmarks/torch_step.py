"""What the PyTorch baselines (torch_train_bench.py, torch_avey_b_bench.py, torch_cpu_bench.py)
share: train.py's training step, and a result as one JSON line."""
from __future__ import annotations

import contextlib
import json

import torch


def make_step(loss_of, params, opt, batches, autocast: str | None = None):
    """step(i): train.py's step on batches[i % len(batches)], a pair (input ids, labels): the loss
    (under bf16 autocast on the device type `autocast` when given), backward, the global
    grad-norm clip 1.0, the optimizer's step, the gradients dropped. Returns the loss."""
    params = list(params)

    def step(i):
        x, y = batches[i % len(batches)]
        with torch.autocast(autocast, dtype=torch.bfloat16) if autocast else contextlib.nullcontext():
            loss = loss_of(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    return step


def emit(row: dict, json_out: str | None, prefix: str = "") -> None:
    """Prints the row as one JSON line (after prefix) and appends it to json_out when given."""
    line = json.dumps(row)
    print(prefix + line, flush=True)
    if json_out:
        with open(json_out, "a") as f:
            f.write(line + "\n")
