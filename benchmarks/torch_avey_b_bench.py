#!/usr/bin/env python3
"""Training throughput of the public Avey-B reference as shipped (its layers @torch.compile'd),
the PyTorch baseline beside bench_train's avey-b-base: never part of the engine.

The step of the reference's train_mlm.py: bf16 autocast, TF32 "high" for float32 products,
masked LM loss, backward, global grad-norm clip 1.0, AdamW betas (0.95, 0.95), eps 1e-18, weight
decay 0.01 on tensors of rank >= 2 (not fused), lr 7e-4; batches of random ids with 20% of the
flattened block masked (mask id 50281). The reference's classes come from --ref-src (a folder
holding its avey_b package), supplied at run time.

  python3 torch_avey_b_bench.py --ref-src DIR [--batch 8] [--seq-len 2048] [--steps 20] [--json-out F]
"""
import argparse
import sys
import time

import torch
from torch_step import emit, make_step


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref-src", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json-out")
    a = ap.parse_args()
    sys.path.insert(0, a.ref_src)
    from avey_b.configuration_avey import AveyConfig
    from avey_b.modeling_avey import AveyForMaskedLM

    torch.manual_seed(11)
    torch.set_float32_matmul_precision("high")
    cfg = AveyConfig(vocab_size=50368, d_embed=768, n_layers=30, chunk_size=256, k=3, eps=1e-12)
    model = AveyForMaskedLM(cfg).cuda()
    params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                            lr=7e-4, betas=(0.95, 0.95), eps=1e-18, fused=False)
    B, T = a.batch, a.seq_len
    n_mask = min(max(int(round(0.2 * B * T)), 1), B * T - 1)

    def batch():
        y = torch.randint(0, 50281, (B * T,), device="cuda")
        x = y.clone()
        pos = torch.randperm(B * T, device="cuda")[:n_mask]
        labels = torch.full_like(y, -100)
        labels[pos] = y[pos]
        x[pos] = 50281
        return x.view(B, T), labels.view(B, T)

    batches = [batch() for _ in range(4)]

    step = make_step(lambda x, y: model(input_ids=x, labels=y).loss, model.parameters(), opt, batches, "cuda")

    t0 = time.time()
    for i in range(a.warmup):
        step(i)
    torch.cuda.synchronize()
    warm = time.time() - t0
    torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    for i in range(a.steps):
        loss = step(i)
    torch.cuda.synchronize()
    ms = (time.time() - t0) * 1e3 / a.steps
    row = {"kind": "train", "engine": "torch", "mode": "reference", "config": "avey-b-base", "precision": "bf16",
           "batch": B, "seq_len": T, "steps": a.steps, "warmup_s": warm, "ms_per_step": ms,
           "tok_per_s": B * T / (ms / 1e3), "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
           "loss": loss.item(), "params": params, "device": torch.cuda.get_device_name()}
    emit(row, a.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
