#!/usr/bin/env python3
"""PyTorch speed baseline for Avey training and inference (a baseline to beat, never run-time).

The model is the oracle itself, tests/reference/avey_ref.py (one implementation: batched MaxSim
by matrix products, contexts by one gather, C x C work by batched products), run on a GPU with
bfloat16 autocast, fused AdamW (betas 0.9/0.95, eps 1e-12, weight decay 0.1 on tensors of rank
>= 2, lr 1e-3) and global grad-norm clipping at 1.0, the recipe of docs/model.md / the paper.

  python3 benchmarks/torch_train_bench.py --configs tiny,small --modes eager,compile --steps 20
  python3 benchmarks/torch_train_bench.py --infer        # time to first token, full-prompt forward

Training: tiny at B16 x T512, small at B8 x T512 (override with --batch/--seq-len). Each run does
--warmup steps (the first compiles in compile mode), then times --steps steps between CUDA events.
Reported: ms/step, tok/s, peak GPU memory of the timed steps (torch.cuda.max_memory_allocated),
MFU. `--compile-scope regional` (default) compiles each block, the ranker and the head/loss
separately (identical blocks share one compiled graph, so compilation takes seconds, not minutes);
`full` compiles the whole model as one graph.

FLOPs per token (for MFU), counting a multiply-add as 2 FLOPs and backward as 2x forward:
  Every token is a row of K = k+1 contexts (its own split's and, as a retrieved split, up to k
  later ones), and every context row costs the same, padding rows included. Per context row and
  layer, forward:
    enricher + fuser     2 * (d*m + (mt/2 + mh)*d)
    contextualizer       2 * C * mt    (Z0^ Z0^T and A Z0 are 2*C*C*(mt/2) FLOPs each per context
                                        of C rows; the full C x C products are counted)
  head (tied, per real token, forward): 2 * d * V
  train FLOPs/token = 6 * (K*L*(d*m + (mt/2+mh)*d) + V*d)  +  6 * K*L*C*mt
  (the ranker's MaxSim, 2*T*d per token forward, is left out: < 0.1% at T = 512.)
  The attention ablation costs the same 2*C*mt per row (Q K^T and P V over all C rows).
  tiny (d256 L4): 0.216 GFLOP/token; small (d768 L26, K8, C512, V50304): 6.37 GFLOP/token.
MFU = FLOPs/token * tok/s / peak dense bf16 FLOP/s of the GPU (table PEAK_BF16 below).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import avey_ref as R  # noqa: E402
from torch_step import emit as emit_row, make_step  # noqa: E402

# Dense bf16 tensor-core peak (no sparsity), matched against torch.cuda.get_device_name().
PEAK_BF16 = [("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989.4e12), ("H200", 989.4e12),
             ("GH200", 989.4e12), ("B200", 2250e12), ("A100", 312e12), ("L40S", 362e12),
             ("RTX 4090", 165e12)]

TRAIN_SHAPES = {"tiny": (16, 512), "small": (8, 512)}


def peak_flops(name: str) -> float | None:
    for key, val in PEAK_BF16:
        if key in name:
            return val
    return None


def train_flops_per_token(cfg: R.AveyConfig) -> float:
    d, m, mt, mh, V, L, C = cfg.d_embed, cfg.m, cfg.mt, cfg.mh, cfg.vocab_size, cfg.n_layers, cfg.C
    K = cfg.top_k + 1
    return 6 * (K * L * (d * m + (mt // 2 + mh) * d) + V * d) + 6 * K * L * C * mt


def make_optimizer(model):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                              {"params": other, "weight_decay": 0.0}],
                             lr=1e-3, betas=(0.9, 0.95), eps=1e-12, fused=True)


def compile_model(model, scope: str):
    if scope == "full":
        return torch.compile(model)
    for blk in model.blocks:            # identical blocks reuse one compiled graph
        blk.compile()
    model.contexts = torch.compile(model.contexts)
    model.head = torch.compile(model.head)
    model.loss = torch.compile(model.loss)
    return model


def bench_train(name: str, mode: str, steps: int, warmup: int, scope: str, B: int, T: int) -> dict:
    cfg = R.load_config(name)
    torch.manual_seed(11)
    model = R.Avey(cfg).cuda()
    opt = make_optimizer(model)
    fwd = compile_model(model, scope) if mode == "compile" else model
    params = list(model.parameters())
    g = torch.Generator(device="cuda").manual_seed(0)
    data = [torch.randint(0, cfg.vocab_size, (B, T + 1), device="cuda", generator=g) for _ in range(4)]
    step = make_step(lambda x, y: fwd(x, y)[1], params, opt, [(d[:, :-1], d[:, 1:]) for d in data], "cuda")

    t0 = time.perf_counter()
    for i in range(warmup):
        step(i)
    torch.cuda.synchronize()
    warm_s = time.perf_counter() - t0
    torch.cuda.reset_peak_memory_stats()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for i in range(steps):
        loss = step(i)
    end.record()
    torch.cuda.synchronize()
    ms = start.elapsed_time(end) / steps
    tok_s = B * T / (ms / 1e3)
    fpt = train_flops_per_token(cfg)
    peak = peak_flops(torch.cuda.get_device_name())
    res = dict(kind="train", config=name, mode=mode, compile_scope=scope if mode == "compile" else None,
               batch=B, seq_len=T, steps=steps, warmup=warmup, warmup_s=round(warm_s, 2),
               ms_per_step=round(ms, 3), tok_per_s=round(tok_s), flops_per_token=fpt,
               mfu=round(fpt * tok_s / peak, 4) if peak else None,
               peak_mem_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2),
               loss=round(loss.item(), 4), params=R.param_count(cfg),
               device=torch.cuda.get_device_name(), torch=torch.__version__)
    del model, opt, fwd, data
    torch._dynamo.reset()
    torch.cuda.empty_cache()
    return res


def time_ms(fn, warmup: int, reps: int) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        out.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(out)


def bench_infer(name: str, prompts, full_len: int) -> list:
    """Generation mode (only the last split ranked and processed), bf16 weights, eager."""
    cfg = R.load_config(name)
    torch.manual_seed(11)
    model = R.Avey(cfg).cuda().to(torch.bfloat16).eval()
    g = torch.Generator(device="cuda").manual_seed(0)
    ids = torch.randint(0, cfg.vocab_size, (1, max(max(prompts), full_len)), device="cuda", generator=g)
    dev, out = torch.cuda.get_device_name(), []
    with torch.inference_mode():
        for P in prompts:
            p = ids[:, :P]
            ms = time_ms(lambda: model.forward_last(p).argmax(-1), warmup=3, reps=10)
            out.append(dict(kind="ttft", config=name, prompt=P, ms=round(ms, 2), device=dev,
                            torch=torch.__version__))
        p = ids[:, :full_len]
        torch.cuda.reset_peak_memory_stats()
        ms = time_ms(lambda: model(p), warmup=1, reps=3)
        out.append(dict(kind="full_forward", config=name, prompt=full_len, ms=round(ms, 1),
                        tok_per_s=round(full_len / (ms / 1e3)),
                        peak_mem_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2),
                        device=dev, torch=torch.__version__))
    del model
    torch.cuda.empty_cache()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="tiny,small")
    ap.add_argument("--modes", default="eager,compile")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--compile-scope", choices=["regional", "full"], default="regional")
    ap.add_argument("--batch", type=int, help="override the batch size of every config")
    ap.add_argument("--seq-len", type=int, help="override the sequence length of every config")
    ap.add_argument("--infer", action="store_true", help="inference timings instead of training")
    ap.add_argument("--infer-config", default="small")
    ap.add_argument("--prompts", default="2048,8192,32768,65536")
    ap.add_argument("--full-len", type=int, default=32768)
    ap.add_argument("--json-out", help="append one JSON line per result to this file")
    a = ap.parse_args()
    assert torch.cuda.is_available(), "needs a CUDA GPU"
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    for knob in ("cache_size_limit", "recompile_limit", "accumulated_cache_size_limit",
                 "accumulated_recompile_limit"):   # regional compile: one graph per block object
        if hasattr(torch._dynamo.config, knob):
            setattr(torch._dynamo.config, knob, max(256, getattr(torch._dynamo.config, knob)))

    def emit(res):
        emit_row(res, a.json_out, "JSON ")

    results = []
    if a.infer:
        for res in bench_infer(a.infer_config, [int(x) for x in a.prompts.split(",")], a.full_len):
            emit(res)
            results.append(res)
        print(f"\n{'what':14s} {'prompt':>7s} {'time':>10s}")
        for r in results:
            t = f"{r['ms']:.2f} ms" if r["kind"] == "ttft" else f"{r['ms'] / 1e3:.3f} s"
            print(f"{r['kind']:14s} {r['prompt']:7d} {t:>10s}")
        return 0
    for name in a.configs.split(","):
        B, T = TRAIN_SHAPES.get(name, (8, 512))
        B, T = a.batch or B, a.seq_len or T
        for mode in a.modes.split(","):
            res = bench_train(name, mode, a.steps, a.warmup, a.compile_scope, B, T)
            emit(res)
            results.append(res)
    print(f"\n{'config':7s} {'mode':8s} {'B x T':>9s} {'ms/step':>9s} {'tok/s':>9s} {'peak GiB':>9s} "
          f"{'MFU':>6s} {'warmup s':>9s}  device")
    for r in results:
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
        print(f"{r['config']:7s} {r['mode']:8s} {r['batch']:>4d}x{r['seq_len']:<4d} {r['ms_per_step']:9.2f} "
              f"{r['tok_per_s']:9d} {r['peak_mem_gib']:9.2f} {mfu:>6s} {r['warmup_s']:9.1f}  {r['device']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
