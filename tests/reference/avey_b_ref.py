#!/usr/bin/env python3
"""Avey-B (the encoder, arXiv 2602.15814) in plain PyTorch: the project's test oracle for it.

Like avey_ref.py beside it, this file is NOT part of the engine and never runs inside it. It
implements docs/model.md section 2 (written from that page, not from the public code), so that
  1. the engine's MLM loss and gradients can be checked against it (stored cases, float64), and
  2. it can itself be checked, on a machine with torch, against the public reference classes
     (`check-reference --ref-src DIR`, DIR holding the reference's avey_b package).

Shapes: B batch, T tokens, S split size, n = ceil(T/S) splits, k retrieved splits,
C = (k+1) S compressed context rows, d width, V vocabulary, L layers.

  1. embed:   X = E[ids], right-padded with zero rows to n S rows           [B, n, S, d]
  2. rank:    split i > 0 keeps its top-min(i, k) earlier splits by MaxSim, in descending score
              order, weighted v / (min v + eps); the context [w X_j ; ... ; X_i] is left-padded
              to C rows, then compressed: H_i = P ctx + X_i (P = ranker.down_proj [S, C])
  3. layers:  static (even l) and dynamic (odd l) layers on each [S, d] split
  4. head:    the splits in order, cut to T rows; logits = out E^T (no final norm)

State-dict names: embed.weight, ranker.down_proj, layers.{l}.norm.weight,
layers.{l}.enricher.{weight,bias}, layers.{l}.fuser.{weight,bias}, layers.{l}.alpha (0-dim),
layers.{l}.spatial_proj (static layers only).

Subcommands (python3 avey_b_ref.py SUB --help):
  info             parameter count of a config                       (no torch needed)
  batch            a random MLM batch as JSON (masking as the reference's loader) (no torch needed)
  init             random weights (float32 safetensors, the init of docs/model.md)
  grads            loss and gradients (optionally all gradients as safetensors)
  generate         the stored parity cases (parity_cases_b/CASE/...)
  check-reference  this oracle against the public reference classes: logits, loss, gradients
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
from dataclasses import asdict, dataclass, fields

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import avey_ref as R  # noqa: E402  (safetensors reading/writing, comparison)

torch, nn, F = R.torch, R.nn, R.F

# The vocabulary of the released model: p50k_base (50,281 ids) plus <|mask|> = 50,281, padded.
MASK_ID = 50281


@dataclass
class AveyBConfig:
    model: str = "avey-b"
    vocab_size: int = 50368
    d_embed: int = 768
    n_layers: int = 30
    chunk_size: int = 256   # S
    k: int = 3              # retrieved splits (the decoder's folder stores k + 1; this one k)
    eps: float = 1e-12

    @property
    def C(self) -> int:
        return (self.k + 1) * self.chunk_size

    def validate(self) -> "AveyBConfig":
        assert self.model == "avey-b", f"model must be 'avey-b', got {self.model!r}"
        assert self.chunk_size >= 1 and self.k >= 0 and self.n_layers >= 0
        return self


PRESETS = {"avey-b-base": dict(), "avey-b-tiny": dict(d_embed=128, n_layers=4, chunk_size=64, k=3)}
BASE_PARAM_COUNT = 163_929_118


def load_config(spec: str) -> AveyBConfig:
    if spec in PRESETS:
        return AveyBConfig(**PRESETS[spec]).validate()
    with open(spec) as f:
        raw = json.load(f)
    known = {f.name for f in fields(AveyBConfig)}
    raw = {k: v for k, v in raw.items() if k in known}  # reference folders carry more keys
    return AveyBConfig(**raw).validate()


def param_count(cfg: AveyBConfig) -> int:
    d, S = cfg.d_embed, cfg.chunk_size
    dynamic = d + (4 * d * d + 4 * d) + (3 * d * d + d) + 1
    static = dynamic + S * S
    n_static = (cfg.n_layers + 1) // 2
    return cfg.vocab_size * d + S * cfg.C + n_static * static + (cfg.n_layers - n_static) * dynamic


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


class Layer(nn.Module):
    """h <- [gt (.) c | byp] W_f^T + b_f + alpha h, c mixing the S rows of each split."""

    def __init__(self, cfg: AveyBConfig, static: bool):
        super().__init__()
        d, S = cfg.d_embed, cfg.chunk_size
        self.static, self.eps, self.d = static, cfg.eps, d
        self.norm = nn.Module()
        self.norm.weight = nn.Parameter(torch.ones(d))
        self.enricher = nn.Linear(d, 4 * d)
        if static:
            self.spatial_proj = nn.Parameter(torch.randn(S, S) * math.sqrt(1.0 / S))  # Xavier-normal
        self.fuser = nn.Linear(3 * d, d)
        self.alpha = nn.Parameter(torch.tensor(1.0))
        for lin in (self.enricher, self.fuser):  # Xavier-normal weights, zero biases
            fan_out, fan_in = lin.weight.shape
            with torch.no_grad():
                lin.weight.normal_(0.0, math.sqrt(2.0 / (fan_in + fan_out)))
                lin.bias.zero_()

    def forward(self, h):  # h [N, S, d]
        d = self.d
        y = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps) * self.norm.weight
        u = F.gelu(self.enricher(y))  # exact erf GELU
        z, gt, byp = u[..., :d], u[..., d:2 * d], u[..., 2 * d:]
        if self.static:
            c = self.spatial_proj @ z
        else:
            zn = z / z.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            a = zn @ zn.transpose(-1, -2)
            a = a / a.abs().sum(-1, keepdim=True).clamp_min(1e-12)
            c = a @ z
        return self.fuser(torch.cat([gt * c, byp], dim=-1)) + self.alpha * h


class AveyB(nn.Module):
    def __init__(self, cfg: AveyBConfig):
        super().__init__()
        self.cfg = cfg
        d, V, S = cfg.d_embed, cfg.vocab_size, cfg.chunk_size
        self.embed = nn.Embedding(V, d)
        with torch.no_grad():
            self.embed.weight.normal_(0.0, math.sqrt(2.0 / (V + d)))
        self.layers = nn.ModuleList([Layer(cfg, static=(l % 2 == 0)) for l in range(cfg.n_layers)])
        self.ranker = nn.Module()
        self.ranker.down_proj = nn.Parameter(torch.randn(S, cfg.C) * math.sqrt(2.0 / (S + cfg.C)))

    def contexts(self, xs):
        """xs [B, n, S, d] -> the compressed contexts H [B, n, S, d]."""
        cfg = self.cfg
        B, n, S, d = xs.shape
        eps = cfg.eps
        xh = xs / (xs.norm(dim=-1, keepdim=True) + eps)  # eps outside the root
        # sims[b, i, j, t, u] = x^_{i,t} . x^_{j,u}; score(i, j) = sum_t max_u
        scores = torch.einsum("bitd,bjud->bijtu", xh, xh).amax(-1).sum(-1)  # [B, n, n]
        out = []
        for i in range(n):
            r = min(i, cfg.k)
            rows = []
            if r > 0:
                v, idx = torch.topk(scores[:, i, :i], r, dim=-1, largest=True, sorted=True)  # descending
                w = v / (v.min(dim=-1, keepdim=True).values + eps)
                sel = torch.stack([xs[b, idx[b]] for b in range(B)])  # [B, r, S, d]
                rows.append((sel * w[:, :, None, None]).reshape(B, r * S, d))
            rows.append(xs[:, i])
            ctx = torch.cat(rows, dim=1)
            pad = cfg.C - ctx.shape[1]
            if pad > 0:
                ctx = torch.cat([ctx.new_zeros(B, pad, d), ctx], dim=1)
            out.append(self.ranker.down_proj @ ctx + xs[:, i])
        return torch.stack(out, dim=1)

    def hidden(self, ids):
        cfg = self.cfg
        B, T = ids.shape
        S = cfg.chunk_size
        n = (T + S - 1) // S
        x = self.embed(ids)
        if n * S != T:
            x = torch.cat([x, x.new_zeros(B, n * S - T, x.shape[-1])], dim=1)
        h = self.contexts(x.view(B, n, S, -1)).reshape(B * n, S, -1)
        for layer in self.layers:
            h = layer(h)
        return h.reshape(B, n * S, -1)[:, :T]

    def forward(self, ids, labels=None):
        logits = self.hidden(ids) @ self.embed.weight.t()
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        return logits, loss


# ---------------------------------------------------------------------------------------------
# Batches, gradients, cases
# ---------------------------------------------------------------------------------------------


def mask_count(B: int, T: int, fraction: float = 0.2) -> int:
    """round(fraction B T) clamped to [1, B T - 1] (Python's round, half to even)."""
    return min(max(int(round(fraction * B * T)), 1), B * T - 1)


def make_mlm_batch(cfg: AveyBConfig, B: int, T: int, seed: int, mask_id: int) -> dict:
    """Random ids (never the mask id); mask_count positions of the flattened block, drawn without
    replacement, become mask_id, their labels the original ids, -100 elsewhere."""
    rng = random.Random(seed)
    ids = [rng.randrange(cfg.vocab_size - 1) for _ in range(B * T)]
    ids = [i + 1 if i >= mask_id else i for i in ids]
    labels = [-100] * (B * T)
    for p in rng.sample(range(B * T), mask_count(B, T)):
        labels[p], ids[p] = ids[p], mask_id
    return {"input_ids": [ids[b * T:(b + 1) * T] for b in range(B)],
            "labels": [labels[b * T:(b + 1) * T] for b in range(B)]}


def compute_grads(cfg: AveyBConfig, weights: str, batch: str, dtype: str = "float64"):
    dt = {"float64": torch.float64, "float32": torch.float32}[dtype]
    model = AveyB(cfg)
    R.load_weights(model, weights)
    model = model.to(dtype=dt)
    ids, labels = R.load_batch(batch)
    _, loss = model(ids, labels)
    loss.backward()
    return loss.item(), {name: p.grad.detach().clone() for name, p in model.named_parameters()}


# Small models: V 97, d 16-32, S 4-8. Every case has T % S != 0 unless it says otherwise, and
# the first splits have fewer than k earlier splits.
BASE = dict(vocab_size=97, d_embed=16, n_layers=3, chunk_size=4, k=2)
CASES = {
    "base":            (dict(), 2, 21),            # static, dynamic, static; padding in the last split
    "t_multiple_of_s": (dict(d_embed=24), 2, 24),  # no right padding
    "k_exceeds_splits": (dict(k=5, n_layers=2), 2, 14),
    "single_split":    (dict(chunk_size=8, n_layers=2), 3, 7),
    "deep":            (dict(d_embed=8, n_layers=6, k=3), 1, 30),
}


def generate(out: str) -> bool:
    ok = True
    for idx, (name, (over, B, T)) in enumerate(CASES.items()):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        cfg_dict = {**asdict(AveyBConfig()), **BASE, **over}
        cfg = AveyBConfig(**cfg_dict).validate()
        paths = {k: os.path.join(d, f) for k, f in [("config", "config.json"), ("weights", "weights.safetensors"),
                 ("batch", "batch.json"), ("grads", "grads.safetensors"), ("expected", "expected.json")]}
        with open(paths["config"], "w") as f:
            json.dump({**cfg_dict, "mask_id": cfg.vocab_size - 1}, f, indent=1)
        torch.manual_seed(3000 + idx)
        model = AveyB(cfg)
        with torch.no_grad():  # alpha and the norms away from their init, so their gradients are exercised
            for l in model.layers:
                l.alpha.fill_(0.8 + 0.1 * torch.rand(()).item())
                l.norm.weight.mul_(1 + 0.1 * torch.randn_like(l.norm.weight))
                l.enricher.bias.normal_(0.0, 0.1)
                l.fuser.bias.normal_(0.0, 0.1)
        R.write_safetensors(paths["weights"], {k: v.float() for k, v in model.state_dict().items()})
        with open(paths["batch"], "w") as f:
            json.dump(make_mlm_batch(cfg, B, T, seed=4000 + idx, mask_id=cfg.vocab_size - 1), f)
        loss, grads = compute_grads(cfg, paths["weights"], paths["batch"], "float64")
        R.write_safetensors(paths["grads"], grads)
        loss32, grads32 = compute_grads(cfg, paths["weights"], paths["batch"], "float32")
        good, f32_err, loss_err = R.write_expectations(paths["expected"], loss, grads, loss32, grads32, batch_size=B,
                                                       seq_len=T, params=param_count(cfg))
        ok &= good
        print(f"{'ok  ' if good else 'WARN'} {name:18s} B{B} T{T:3d} params {param_count(cfg):6d} "
              f"loss {loss:.8f}  f32-vs-f64 grad {f32_err:.1e} loss {loss_err:.1e}")
    return ok


def check_reference(ref_src: str, cases: str) -> bool:
    """This oracle against the public reference's AveyForMaskedLM on every stored case (float64,
    torch.compile off): logits, loss and every gradient, relative error <= 1e-10."""
    os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")  # the reference's layers are @torch.compile'd
    sys.path.insert(0, ref_src)
    from avey_b.configuration_avey import AveyConfig as RefConfig  # noqa: E402
    from avey_b.modeling_avey import AveyForMaskedLM  # noqa: E402
    ok = True
    for name in sorted(os.listdir(cases)):
        d = os.path.join(cases, name)
        if not os.path.isfile(os.path.join(d, "expected.json")):
            continue
        cfg = load_config(os.path.join(d, "config.json"))
        ref = AveyForMaskedLM(RefConfig(vocab_size=cfg.vocab_size, d_embed=cfg.d_embed, n_layers=cfg.n_layers,
                                        chunk_size=cfg.chunk_size, k=cfg.k, eps=cfg.eps)).double()
        mine = AveyB(cfg).double()
        for m in (ref, mine):
            R.load_weights(m, os.path.join(d, "weights.safetensors"))
        ids, labels = R.load_batch(os.path.join(d, "batch.json"))
        out = ref(input_ids=ids, labels=labels)
        logits, loss = mine(ids, labels)
        out.loss.backward()
        loss.backward()
        errs = {"logits": ((logits - out.logits).norm() / out.logits.norm()).item(),
                "loss": abs(loss.item() - out.loss.item()) / abs(out.loss.item())}
        gr = dict(ref.named_parameters())
        for pname, p in mine.named_parameters():
            g = gr[pname].grad
            errs[pname] = ((p.grad - g).norm() / g.norm().clamp_min(1e-300)).item()
        worst = max(errs, key=errs.get)
        good = errs[worst] <= 1e-10
        ok &= good
        print(f"{'ok  ' if good else 'FAIL'} {name:18s} logits {errs['logits']:.1e} loss {errs['loss']:.1e} "
              f"worst {worst} {errs[worst]:.1e}")
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("info")
    p.add_argument("--config", default="avey-b-base")
    p = sub.add_parser("batch")
    p.add_argument("--config", default="avey-b-tiny")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mask-id", type=int, default=MASK_ID)
    p.add_argument("--out", required=True)
    p = sub.add_parser("init")
    p.add_argument("--config", default="avey-b-tiny")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--out", required=True)
    p = sub.add_parser("grads")
    p.add_argument("--config", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--batch", required=True)
    p.add_argument("--dtype", default="float64")
    p.add_argument("--dump")
    p = sub.add_parser("generate")
    p.add_argument("--out", required=True)
    p = sub.add_parser("check-reference")
    p.add_argument("--ref-src", required=True, help="a folder holding the reference's avey_b package")
    p.add_argument("--cases", required=True)
    a = ap.parse_args(argv)
    if a.cmd == "info":
        cfg = load_config(a.config)
        print(json.dumps({"params": param_count(cfg), **asdict(cfg)}))
        return 0
    if a.cmd == "batch":
        cfg = load_config(a.config)
        with open(a.out, "w") as f:
            json.dump(make_mlm_batch(cfg, a.batch_size, a.seq_len, a.seed, a.mask_id), f)
        return 0
    if torch is None:
        raise SystemExit(f"{a.cmd} needs torch")
    if a.cmd == "init":
        torch.manual_seed(a.seed)
        model = AveyB(load_config(a.config))
        R.write_safetensors(a.out, {k: v.float() for k, v in model.state_dict().items()})
        return 0
    if a.cmd == "grads":
        loss, grads = compute_grads(load_config(a.config), a.weights, a.batch, a.dtype)
        if a.dump:
            R.write_safetensors(a.dump, grads)
        print(json.dumps({"loss": loss, "grad_norms": {k: g.norm().item() for k, g in grads.items()}}))
        return 0
    if a.cmd == "generate":
        return 0 if generate(a.out) else 1
    return 0 if check_reference(a.ref_src, a.cases) else 1


if __name__ == "__main__":
    sys.exit(main())
