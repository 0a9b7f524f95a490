#!/usr/bin/env python3
"""Oracle cases for the C++ engine's Avey loss and gradients (see README.md beside this file).

  generate --out DIR            (needs torch) for each case below writes DIR/CASE/
                                  config.json     the model config
                                  weights.safetensors  float32 initial weights (seeded)
                                  batch.json      {"input_ids": [[..]], "labels": [[..]]}
                                  grads.safetensors    float64 reference gradients
                                  expected.json   {"loss": x, "grad_norms": {...}, "loss_f32": ...,
                                                   "f32_vs_f64": max relative error of a float32 run}
  check --cases DIR [--engine BIN]   (no torch needed) compares the engine's gradients with the
                                oracle: runs `BIN grads --config C --weights W --batch B
                                --dump DIR/CASE/engine_grads.safetensors --json` when --engine is
                                given, else uses engine_grads.safetensors files already there;
                                exits non-zero when any case is over tolerance (loss 1e-5,
                                grads 1e-4, relative).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import avey_ref as R  # noqa: E402

# Small models: V 97, d 16-32, S 4-8, L 2. Every case has T % S != 0 unless it says otherwise,
# and the first splits always have fewer than k earlier splits.
BASE = dict(vocab_size=97, d_embed=32, n_layers=2, split_size=8, top_k=3)
CASES = {
    # name: (config overrides, batch size, sequence length)
    "base_max":         (dict(), 2, 45),
    "base_first":       (dict(ranker_weight_norm="first"), 2, 45),
    "k_exceeds_splits": (dict(d_embed=16, split_size=4, top_k=7), 2, 13),    # n = 4 < k+1
    "t_multiple_of_s":  (dict(d_embed=24, split_size=4, top_k=2), 3, 32),     # no right padding
    "single_split":     (dict(split_size=8), 2, 6),                           # n = 1, no retrieval
    "act_gelu_silu":    (dict(enricher_activation="gelu", contextualizer_activation="silu",
                              expansion_factor=3, tail_proportion=0.3), 2, 37),
    "act_relu_relu2":   (dict(enricher_activation="relu", contextualizer_activation="relu2",
                              tail_proportion=1.0, ranker_weight_norm="first"), 2, 29),
    "no_dynamic_no_weighting": (dict(dynamic=False, split_weighting=False), 2, 45),
    "no_ranker":        (dict(ranker=False, d_embed=16, split_size=4), 2, 27),
    "layernorm":        (dict(norm="layernorm", d_embed=16), 2, 30),
    "attention":        (dict(contextualizer="attention", attention_head_size=16), 2, 45),
}


def generate(out: str) -> bool:
    import torch
    ok = True
    for idx, (name, (over, B, T)) in enumerate(CASES.items()):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        cfg_dict = {**R.asdict(R.AveyConfig()), **BASE, **over}
        cfg = R.AveyConfig(**cfg_dict).validate()
        paths = {k: os.path.join(d, f) for k, f in [("config", "config.json"),
                 ("weights", "weights.safetensors"), ("batch", "batch.json"),
                 ("grads", "grads.safetensors"), ("expected", "expected.json")]}
        with open(paths["config"], "w") as f:
            json.dump(cfg_dict, f, indent=1)
        torch.manual_seed(1000 + idx)
        model = R.Avey(cfg)
        R.write_safetensors(paths["weights"], {k: v.float() for k, v in model.state_dict().items()})
        with open(paths["batch"], "w") as f:
            json.dump(R.make_batch(cfg, B, T, seed=2000 + idx), f)
        loss, grads = R.compute_grads(cfg, paths["weights"], paths["batch"], "float64")
        R.write_safetensors(paths["grads"], grads)
        # a float32 run of the same computation: how close a correct float32 engine can get
        loss32, grads32 = R.compute_grads(cfg, paths["weights"], paths["batch"], "float32")
        good, f32_err, loss_err = R.write_expectations(paths["expected"], loss, grads, loss32, grads32, batch_size=B,
                                                       seq_len=T, params=R.param_count(cfg))
        ok &= good
        print(f"{'ok  ' if good else 'WARN'} {name:26s} B{B} T{T:3d} params {R.param_count(cfg):7d} "
              f"loss {loss:.8f}  f32-vs-f64 grad {f32_err:.1e} loss {loss_err:.1e}")
    return ok


def check(cases: str, engine: str | None) -> bool:
    ok, ran = True, 0
    for name in sorted(os.listdir(cases)):
        d = os.path.join(cases, name)
        if not os.path.isfile(os.path.join(d, "expected.json")):
            continue
        with open(os.path.join(d, "expected.json")) as f:
            exp = json.load(f)
        dump = os.path.join(d, "engine_grads.safetensors")
        loss = None
        if engine:
            cmd = [engine, "grads", "--config", os.path.join(d, "config.json"),
                   "--weights", os.path.join(d, "weights.safetensors"),
                   "--batch", os.path.join(d, "batch.json"), "--dump", dump, "--json"]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                print(f"FAIL {name}: engine exited {res.returncode}\n{res.stderr[-2000:]}")
                ok = False
                continue
            for line in res.stdout.splitlines()[::-1]:     # the last JSON line with a loss
                try:
                    loss = json.loads(line)["loss"]
                    break
                except (ValueError, KeyError, TypeError):
                    pass
        if not os.path.isfile(dump):
            print(f"skip {name}: no {dump}")
            continue
        print(f"case {name}")
        good = R.compare_files(dump, os.path.join(d, "grads.safetensors"), 1e-4,
                               loss, exp["loss"] if loss is not None else None, 1e-5, quiet=True)
        print(f"{'ok  ' if good else 'FAIL'} {name}")
        ok &= good
        ran += 1
    print(f"{ran} cases compared, {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("generate")
    p.add_argument("--out", required=True)
    p = sub.add_parser("check")
    p.add_argument("--cases", required=True)
    p.add_argument("--engine", help="the engine's `avey` binary")
    a = ap.parse_args()
    if a.cmd == "generate":
        return 0 if generate(a.out) else 1
    return 0 if check(a.cases, a.engine) else 1


if __name__ == "__main__":
    sys.exit(main())
