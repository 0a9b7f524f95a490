#!/usr/bin/env python3
"""PyTorch's CPU training throughput for Avey tiny, the baseline scripts/bench-cpu runs beside
bench_train --device cpu on the same cores (a baseline to beat, never run-time).

The whole step in fp32, as the reference's train.py makes it minus bf16 autocast (a CPU laptop
trains in fp32): forward with the loss, backward, global grad-norm clip 1.0, AdamW (betas 0.9/0.95,
eps 1e-12, weight decay 0.1 on tensors of rank >= 2, lr 1e-3; fused, as train.py asks), on random
token batches (labels: the next token). Eager; --modes eager,compile adds torch.compile.

Two models, each timed for every thread count (torch.set_num_threads):
  reference  the public reference decoder (rimads/avey-dpa, avey/modeling_avey.py) as shipped: its
             per-split Python loop of ranking, then the blocks on whole padded contexts. Its classes
             come from --ref-src DIR (a folder holding its `avey` package), supplied at run time
             and never committed here. Its Hugging Face base classes are replaced by plain
             nn.Module stand-ins (they add loading and generation plumbing, no arithmetic), so
             the script needs no transformers.
  oracle     this repository's tests/reference/avey_ref.py (docs/model.md in PyTorch, batched:
             MaxSim by matrix products, contexts by one gather).

  python3 benchmarks/torch_cpu_bench.py --threads 1,2,4,8,16 --ref-src DIR --json-out F
Prints one JSON line per (model, mode, thread count): ms/step and tok/s of the timed steps.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
import types

import torch
from torch_step import emit, make_step


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def reference_model(ref_src: str):
    """The public reference's Avey (tiny: d 256, 4 blocks, S 64, k = K = 8, V 50,304)."""
    class PretrainedConfig:
        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)

    class PreTrainedModel(torch.nn.Module):
        def __init__(self, config, *args, **kwargs):
            super().__init__()

    @dataclasses.dataclass
    class CausalLMOutput:
        logits: torch.Tensor | None = None
        loss: torch.Tensor | None = None

    tf = types.ModuleType("transformers")
    tf.PretrainedConfig, tf.PreTrainedModel, tf.GenerationMixin = PretrainedConfig, PreTrainedModel, object
    outputs = types.ModuleType("transformers.modeling_outputs")
    outputs.CausalLMOutput = CausalLMOutput
    sys.modules["transformers"], sys.modules["transformers.modeling_outputs"] = tf, outputs
    sys.path.insert(0, ref_src)
    from avey.configuration_avey import AveyConfig
    from avey.modeling_avey import Avey

    cfg = AveyConfig(vocab_size=50304, d_embed=256, n_blocks=4, expansion_factor=4, chunk_size=64, k=8,
                     context_proportion=0.5)
    model = Avey(cfg)
    return model, lambda ids, labels: model(input_ids=ids, labels=labels).loss


def oracle_model():
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "tests", "reference"))
    import avey_ref as R

    model = R.Avey(R.load_config("tiny"))
    return model, lambda ids, labels: model(ids, labels)[1]


def bench(make, mode: str, threads: int, B: int, T: int, steps: int, warmup: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(11)
    model, loss_of = make()
    params = list(model.parameters())
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-12, fused=True)
    step_loss = torch.compile(loss_of) if mode == "compile" else loss_of
    g = torch.Generator().manual_seed(0)
    data = [torch.randint(0, 50304, (B, T + 1), generator=g) for _ in range(4)]
    step = make_step(step_loss, params, opt, [(d[:, :-1], d[:, 1:]) for d in data])

    t0 = time.perf_counter()
    for i in range(warmup):
        step(i)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(steps):
        loss = step(warmup + i)
    ms = (time.perf_counter() - t0) * 1e3 / steps
    return dict(kind="train", engine="torch", precision="fp32", batch=B, seq_len=T, steps=steps,
                warmup_s=round(warm_s, 2), ms_per_step=round(ms, 1), tok_per_s=round(B * T / (ms / 1e3), 1),
                loss=round(loss.item(), 4), threads=threads, device=f"cpu ({cpu_name()})", torch=torch.__version__)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2,4,8,16")
    ap.add_argument("--models", default=None, help="reference,oracle (default: reference with --ref-src, else oracle)")
    ap.add_argument("--ref-src", help="a folder holding the public reference's avey package")
    ap.add_argument("--modes", default="eager")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--json-out", help="append one JSON line per result to this file")
    a = ap.parse_args()
    models = (a.models or ("reference" if a.ref_src else "oracle")).split(",")
    if "reference" in models and not a.ref_src:
        ap.error("the reference model needs --ref-src DIR")
    makers = {"reference": lambda: reference_model(a.ref_src), "oracle": oracle_model}
    for name in models:
        for mode in a.modes.split(","):
            for n in (int(t) for t in a.threads.split(",")):
                row = bench(makers[name], mode, n, a.batch, a.seq_len, a.steps, a.warmup)
                row.update(config="tiny", mode=name if mode == "eager" else f"{name} compile")
                emit(row, a.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
