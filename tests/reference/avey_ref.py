#!/usr/bin/env python3
"""Avey ("Don't Pay Attention", arXiv 2506.11305) in plain PyTorch: the project's test oracle.

This file is NOT part of the engine and never runs inside it. It exists for two jobs:
  1. the oracle for the C++ engine's loss and gradients (float64 on the CPU by default), and
  2. through benchmarks/torch_train_bench.py, the PyTorch speed baseline.
It implements docs/model.md section 1 exactly; read the two side by side.

Shapes: B batch, T tokens, S split size, n = ceil(T/S) splits, k retrieved splits,
C = (k+1)*S context rows, d width, m = e*d enriched width, mt tail columns (contextualised),
mh = m - mt head columns (bypass), V vocabulary, L layers.

The forward pass, in four steps:
  1. embed:       X = E[ids]                                     [B, T, d], right-padded to n*S rows
  2. rank:        for every split i pick up to k earlier splits by MaxSim and weight them,
                  giving one extended context H_i of C rows per split  [B*n, C, d]
  3. process:     L blocks  h <- h + F(norm(h)),  each context on its own
  4. head:        keep each context's last S rows, reassemble, final norm, logits = h E^T

State-dict names follow the public reference implementation:
  wte.weight [V,d] (tied head), blocks.{i}.rms_norm.weight [d] (+ .bias for layernorm),
  blocks.{i}.ctxt.enricher.weight [m,d], .bias [m], blocks.{i}.ctxt.contextualizer.spatial_proj [C,C],
  blocks.{i}.ctxt.fuser.weight [d, mt/2+mh], .bias [d], ln_f.weight [d] (+ .bias for layernorm).

Subcommands (python3 avey_ref.py SUB --help):
  info     parameter count of a config                              (no torch needed)
  batch    a random batch as JSON {"input_ids": [[..]], "labels": [[..]]}   (no torch needed)
  init     random weights (float32 safetensors)
  grads    loss and every parameter's gradient norm (optionally all gradients as safetensors)
  compare  two gradient dumps, ||a-b||/||b|| per tensor; non-zero exit over tolerance (no torch needed)
  selftest batched ranker vs a naive loop version, generation mode vs full forward, finite differences

Decisions this file makes where the spec leaves room (the C++ side must make the same ones):
  * mt = int(p*m) (truncated), then mt += 1 when odd (the public reference's rule); p = 1 means
    mh = 0.
  * MaxSim arg-max ties: the lowest row u wins (torch.max(dim) returns the first maximum).
  * top-k ties between equal scores: the lower split index j wins (stable descending sort).
  * "max" norm ties: the earliest selected split receives the gradient.
  * attention contextualizer: Q = K = V = Z0 cut into heads of attention_head_size columns;
    mt/2 must be a multiple of the head size. Causal over all C rows (padding rows not masked).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import struct
import sys
from array import array
from dataclasses import asdict, dataclass, fields

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # info, batch and compare work without torch (e.g. on the C++ CI machine)
    torch = None
    F = None

    class nn:  # minimal stand-in so that the class definitions below still load
        Module = object


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

ACTIVATIONS = ("none", "relu", "relu2", "gelu", "silu")


@dataclass
class AveyConfig:
    model: str = "avey"
    vocab_size: int = 50304
    d_embed: int = 256
    n_layers: int = 4
    split_size: int = 64          # S
    top_k: int = 7                # k: retrieved splits; a context holds k+1 splits
    expansion_factor: int = 4     # e: m = e*d
    tail_proportion: float = 0.5  # p: share of the enriched columns that are contextualised
    ranker_weight_norm: str = "max"        # "max" (paper) | "first" (public reference code)
    enricher_activation: str = "relu2"     # none|relu|relu2|gelu|silu
    contextualizer_activation: str = "none"
    dynamic: bool = True          # False: A = tril(V_l) without the cosine factor
    split_weighting: bool = True  # False: w = 1 for every selected split
    ranker: bool = True           # False: sliding window of the k previous splits
    norm: str = "rmsnorm"         # rmsnorm | layernorm
    contextualizer: str = "avey"  # avey | attention
    attention_head_size: int = 64

    # Derived sizes -----------------------------------------------------------------------
    @property
    def m(self) -> int:
        return self.expansion_factor * self.d_embed

    @property
    def mt(self) -> int:
        mt = int(self.tail_proportion * self.m)
        return mt + mt % 2

    @property
    def mh(self) -> int:
        return self.m - self.mt

    @property
    def C(self) -> int:
        return (self.top_k + 1) * self.split_size

    def validate(self) -> "AveyConfig":
        assert self.model == "avey", f"model must be 'avey', got {self.model!r}"
        assert 0.0 < self.tail_proportion <= 1.0, "tail_proportion must be in (0, 1]"
        assert self.mt >= 2, "tail too narrow: mt must be >= 2"
        assert self.mt <= self.m, "tail wider than the enriched width (an odd m at p = 1)"
        assert self.ranker_weight_norm in ("max", "first")
        assert self.enricher_activation in ACTIVATIONS
        assert self.contextualizer_activation in ACTIVATIONS
        assert self.norm in ("rmsnorm", "layernorm")
        assert self.contextualizer in ("avey", "attention")
        assert self.split_size >= 1 and self.top_k >= 0
        if self.contextualizer == "attention":
            assert (self.mt // 2) % self.attention_head_size == 0, (
                f"attention: mt/2 = {self.mt // 2} is not a multiple of the head size "
                f"{self.attention_head_size}")
        return self


PRESETS = {
    "tiny": dict(vocab_size=50304, d_embed=256, n_layers=4),
    "small": dict(vocab_size=50304, d_embed=768, n_layers=26),
    "medium": dict(vocab_size=50304, d_embed=768, n_layers=104),
    "large": dict(vocab_size=50304, d_embed=2048, n_layers=48),
}
SPEC_PARAM_COUNTS = {"tiny": 15_767_808, "small": 152_917_760}


def load_config(spec: str) -> AveyConfig:
    """A preset name (tiny, small, ...) or the path of a JSON file with AveyConfig's keys."""
    if spec in PRESETS:
        return AveyConfig(**PRESETS[spec]).validate()
    with open(spec) as f:
        raw = json.load(f)
    known = {f.name for f in fields(AveyConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SystemExit(f"{spec}: unknown config keys {unknown}")
    return AveyConfig(**raw).validate()


def param_count(cfg: AveyConfig) -> int:
    """Parameter count from the shapes alone (the tied head adds nothing)."""
    d, m, V = cfg.d_embed, cfg.m, cfg.vocab_size
    norm = d if cfg.norm == "rmsnorm" else 2 * d
    block = norm + (m * d + m) + (cfg.mt // 2 + cfg.mh) * d + d
    if cfg.contextualizer == "avey":
        block += cfg.C * cfg.C
    return V * d + cfg.n_layers * block + norm


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------

def activation(name: str, x):
    if name == "none":
        return x
    if name == "relu":
        return F.relu(x)
    if name == "relu2":          # ReLU squared, the paper's default enricher activation
        r = F.relu(x)
        return r * r
    if name == "gelu":           # exact (erf) GELU
        return F.gelu(x)
    if name == "silu":
        return F.silu(x)
    raise ValueError(name)


class RMSNorm(nn.Module):
    """y = x * rsqrt(mean(x^2) + eps) * g   (eps 1e-10, g init 1)."""

    def __init__(self, d: int, eps: float = 1e-10):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def make_norm(cfg: AveyConfig):
    if cfg.norm == "rmsnorm":
        return RMSNorm(cfg.d_embed, eps=1e-10)
    return nn.LayerNorm(cfg.d_embed, eps=1e-5)  # gain 1, bias 0


class Contextualizer(nn.Module):
    """Mixes the C rows of one context:  ctx_act(A Z0)  with
         Z0^ = Z0 / sqrt(rowsum(Z0^2) + 1e-8)        (epsilon inside the root)
         A   = tril(V_l) (.) (Z0^ Z0^T)              (dynamic; else A = tril(V_l))
    or, for the attention ablation, causal softmax attention with Q = K = V = Z0 per head."""

    def __init__(self, cfg: AveyConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.contextualizer == "avey":
            self.spatial_proj = nn.Parameter(torch.empty(cfg.C, cfg.C))   # V_l
            nn.init.xavier_normal_(self.spatial_proj)                     # std sqrt(2/(C+C))

    def forward(self, z0):                                   # z0 [N, C, mt/2]
        cfg = self.cfg
        if cfg.contextualizer == "avey":
            W = torch.tril(self.spatial_proj).to(z0.dtype)   # lower triangle incl. diagonal
            if cfg.dynamic:
                zn = z0 / torch.sqrt((z0 * z0).sum(-1, keepdim=True) + 1e-8)
                A = W * torch.matmul(zn, zn.transpose(-1, -2))            # [N, C, C]
            else:
                A = W                                                     # [C, C], broadcast
            out = torch.matmul(A, z0)
        else:
            N, Cr, h = z0.shape
            hs = cfg.attention_head_size
            q = z0.reshape(N, Cr, h // hs, hs).transpose(1, 2)               # [N, heads, C, hs]
            out = F.scaled_dot_product_attention(q, q, q, is_causal=True, scale=1.0 / math.sqrt(hs))
            out = out.transpose(1, 2).reshape(N, Cr, h)
        return activation(cfg.contextualizer_activation, out)


class NeuralContextualizerLayer(nn.Module):
    """F(Y) = [c | Zh] O^T + b_o  with  Z = act(Y U^T + b),  Z = [Z0 | Z1 | Zh],  c = ctx(Z0) (.) Z1."""

    def __init__(self, cfg: AveyConfig):
        super().__init__()
        self.cfg = cfg
        self.enricher = nn.Linear(cfg.d_embed, cfg.m)                     # U, b
        self.contextualizer = Contextualizer(cfg)
        self.fuser = nn.Linear(cfg.mt // 2 + cfg.mh, cfg.d_embed)         # O, b_o

    def forward(self, y):                                                # y [N, C, d]
        cfg = self.cfg
        z = activation(cfg.enricher_activation, self.enricher(y))        # [N, C, m]
        z0, z1, zh = z.split([cfg.mt // 2, cfg.mt // 2, cfg.mh], dim=-1)  # tail = first mt columns
        c = self.contextualizer(z0) * z1
        return self.fuser(torch.cat([c, zh], dim=-1))


class AveyBlock(nn.Module):
    def __init__(self, cfg: AveyConfig):
        super().__init__()
        self.rms_norm = make_norm(cfg)   # named after the reference even when it is a LayerNorm
        self.ctxt = NeuralContextualizerLayer(cfg)

    def forward(self, h):
        return h + self.ctxt(self.rms_norm(h))


class Avey(nn.Module):
    def __init__(self, cfg: AveyConfig):
        super().__init__()
        self.cfg = cfg.validate()
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_embed)
        nn.init.xavier_normal_(self.wte.weight)                            # std sqrt(2/(V+d))
        self.blocks = nn.ModuleList([AveyBlock(cfg) for _ in range(cfg.n_layers)])
        self.ln_f = make_norm(cfg)
        self.naive_ranker = False   # selftest switch: build contexts with plain Python loops

    # -- step 1: embedding with right padding ---------------------------------------------------
    def embed(self, input_ids):
        S = self.cfg.split_size
        x = self.wte(input_ids)                                            # [B, T, d]
        T = x.shape[1]
        pad = (-T) % S
        if pad:                                     # zero rows (not a token) up to a multiple of S
            x = F.pad(x, (0, 0, 0, pad))
        return x

    # -- step 2: the ranker ------------------------------------------------------------------------
    @staticmethod
    def normalize_rows(x):
        return x / (x.norm(dim=-1, keepdim=True) + 1e-8)                   # epsilon outside the root

    def maxsim_scores(self, qn, cn):
        """score[b, i, j] = sum_t max_u qn_t . cn_u for query split i (rows of qn, S each) and
        candidate split j (rows of cn). qn [B, R*S, d], cn [B, J*S, d] -> [B, R, J].
        Batched as one matrix product per chunk of query splits; the max keeps its arg-max, so
        the gradient flows through the selected row pairs."""
        S = self.cfg.split_size
        B, RS, _ = qn.shape
        R, J = RS // S, cn.shape[1] // S
        acc = torch.promote_types(qn.dtype, torch.float32)
        per_chunk = max(1, (1 << 27) // max(1, S * J * S))   # bound the [rows, J*S] similarity block
        out = []
        for r0 in range(0, R, per_chunk):
            r1 = min(R, r0 + per_chunk)
            sims = torch.matmul(qn[:, r0 * S:r1 * S], cn.transpose(1, 2))  # [B, (r1-r0)*S, J*S]
            best = sims.view(B, (r1 - r0) * S, J, S).max(dim=-1).values    # max over rows u of split j
            out.append(best.to(acc).view(B, r1 - r0, S, J).sum(dim=2))     # sum over rows t of split i
        return torch.cat(out, dim=1) if len(out) > 1 else out[0]

    def select(self, scores, cand):
        """Top-k selection and weights.  scores [B, R, J] (differentiable), cand [R, J] bool
        (j is an earlier split of query split i). Returns sel [B, R, kk] (ascending split index,
        -1 = empty slot, empty slots first) and w [B, R, kk]. The selection is not
        differentiated; w is (through the scores and the norm)."""
        cfg = self.cfg
        B, R, J = scores.shape
        kk = min(cfg.top_k, J)
        masked = scores.detach().masked_fill(~cand, float("-inf"))
        # stable descending sort: equal scores keep ascending j, so ties go to the lower j
        order = torch.sort(masked, dim=-1, descending=True, stable=True).indices[..., :kk]
        valid = torch.gather(cand.expand(B, R, J), -1, order)
        sel = torch.sort(torch.where(valid, order, torch.full_like(order, -1)), dim=-1).values
        valid = sel >= 0                                                   # r = min(i, k) per row
        if not cfg.split_weighting:
            return sel, valid.to(scores.dtype)
        s_sel = torch.gather(scores, -1, sel.clamp(min=0))
        if cfg.ranker_weight_norm == "max":
            norm = s_sel.masked_fill(~valid, float("-inf")).max(dim=-1, keepdim=True).values
        else:  # "first": the score of the earliest selected split (first valid slot)
            first = (kk - valid.sum(-1, keepdim=True)).clamp(max=kk - 1)
            norm = torch.gather(s_sel, -1, first)
        norm = torch.where(valid.any(-1, keepdim=True), norm, torch.ones_like(norm))
        w = torch.where(valid, s_sel / (norm + 1e-8), torch.zeros_like(s_sel))
        return sel, w

    def window(self, rows, B):
        """No-ranker ablation: split i takes splits i-k .. i-1, unweighted (-1 = before the start)."""
        k = self.cfg.top_k
        sel = rows.view(-1, 1) - k + torch.arange(k, device=rows.device).view(1, -1)
        sel = torch.where(sel >= 0, sel, torch.full_like(sel, -1)).expand(B, -1, -1)
        return sel, (sel >= 0).to(torch.float32)

    def gather_contexts(self, Xs, cur, sel, w):
        """H_i = [w_j1 X_j1; ...; w_jr X_jr; X_i], left zero-padded to C rows.
        Xs [B, J, S, d] candidate splits, cur [B, R, S, d] query splits -> [B*R, C, d]."""
        cfg = self.cfg
        B, J, S, d = Xs.shape
        R, kk = cur.shape[1], sel.shape[-1]
        parts = [cur]
        if kk > 0:
            Xz = torch.cat([Xs.new_zeros(B, 1, S, d), Xs], dim=1)          # slot 0 = a zero split
            g = Xz[torch.arange(B, device=Xs.device).view(B, 1, 1), sel + 1]  # [B, R, kk, S, d]
            g = g * w.to(g.dtype)[..., None, None]
            parts = [g.reshape(B, R, kk * S, d), cur]
        ctx = torch.cat(parts, dim=2) if len(parts) > 1 else cur.reshape(B, R, S, d)
        pad = cfg.C - ctx.shape[2]
        if pad:
            ctx = F.pad(ctx, (0, 0, pad, 0))                               # left padding
        return ctx.reshape(B * R, cfg.C, d)

    def contexts(self, x):
        """All n extended contexts of a padded batch x [B, n*S, d] -> [B*n, C, d]."""
        if self.naive_ranker:
            return naive_contexts(self, x)
        S = self.cfg.split_size
        B, Tp, d = x.shape
        n = Tp // S
        Xs = x.view(B, n, S, d)
        rows = torch.arange(n, device=x.device)
        if self.cfg.ranker:
            xn = self.normalize_rows(x)
            scores = self.maxsim_scores(xn, xn)                            # [B, n, n]
            sel, w = self.select(scores, rows.view(n, 1) > rows.view(1, n))
        else:
            sel, w = self.window(rows, B)
        return self.gather_contexts(Xs, Xs, sel, w)

    # -- step 4: head ------------------------------------------------------------------------------
    def head(self, h, B, T):
        """h [B*n, C, d] -> logits [B, T, V]: current split rows, reassembled, padding dropped."""
        S, d = self.cfg.split_size, self.cfg.d_embed
        cur = h[:, -S:, :].reshape(B, -1, d)[:, :T]
        return F.linear(self.ln_f(cur), self.wte.weight)

    def loss(self, logits, labels):
        V = logits.shape[-1]
        return F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)

    def forward(self, input_ids, labels=None):
        B, T = input_ids.shape
        h = self.contexts(self.embed(input_ids))                           # [B*n, C, d]
        for block in self.blocks:                                          # step 3
            h = block(h)
        logits = self.head(h, B, T)
        if labels is None:
            return logits
        return logits, self.loss(logits, labels)

    # -- generation mode ---------------------------------------------------------------------------
    def forward_last(self, input_ids):
        """Logits of the last position only: only the split that holds it is ranked (against all
        earlier splits) and processed. Equals forward(input_ids)[:, -1]."""
        cfg = self.cfg
        S = cfg.split_size
        B, T = input_ids.shape
        x = self.embed(input_ids)
        n = x.shape[1] // S
        Xs = x.view(B, n, S, x.shape[-1])
        cur, J = Xs[:, n - 1:n], n - 1
        rows = torch.tensor([n - 1], device=x.device)
        if J == 0:
            sel = torch.empty(B, 1, 0, dtype=torch.long, device=x.device)
            w = torch.empty(B, 1, 0, dtype=x.dtype, device=x.device)
        elif cfg.ranker:
            xn = self.normalize_rows(x)
            scores = self.maxsim_scores(xn[:, J * S:], xn[:, :J * S])      # [B, 1, J]
            sel, w = self.select(scores, torch.ones(1, J, dtype=torch.bool, device=x.device))
        else:
            sel, w = self.window(rows, B)
        h = self.gather_contexts(Xs[:, :J], cur, sel, w)                   # [B, C, d]
        for block in self.blocks:
            h = block(h)
        pos = cfg.C - S + (T - 1 - J * S)
        return F.linear(self.ln_f(h[:, pos]), self.wte.weight)


def naive_contexts(model: "Avey", x):
    """The ranker written as plainly as possible (Python loops, one pair of splits at a time).
    Used only by `selftest` to check the batched version above."""
    cfg = model.cfg
    S, k, C = cfg.split_size, cfg.top_k, cfg.C
    B, Tp, d = x.shape
    n = Tp // S
    out = []
    for b in range(B):
        split = [x[b, j * S:(j + 1) * S] for j in range(n)]
        for i in range(n):
            if cfg.ranker:
                qn = split[i] / (split[i].norm(dim=1, keepdim=True) + 1e-8)
                score = []
                for j in range(i):
                    cn = split[j] / (split[j].norm(dim=1, keepdim=True) + 1e-8)
                    score.append((qn @ cn.T).max(dim=1).values.sum())
                top = sorted(range(i), key=lambda j: (-score[j].item(), j))[:min(i, k)]
                chosen = sorted(top)
                if chosen and cfg.split_weighting:
                    if cfg.ranker_weight_norm == "max":
                        norm = torch.stack([score[j] for j in chosen]).max()
                    else:
                        norm = score[chosen[0]]
                    parts = [score[j] / (norm + 1e-8) * split[j] for j in chosen]
                else:
                    parts = [split[j] for j in chosen]
            else:
                parts = [split[j] for j in range(max(0, i - k), i)]
            ctx = torch.cat(parts + [split[i]], dim=0)
            out.append(F.pad(ctx, (0, 0, C - ctx.shape[0], 0)))
    return torch.stack(out)


# ---------------------------------------------------------------------------------------------
# Files: safetensors (a tiny pure-Python reader so that `compare` needs no torch) and batches
# ---------------------------------------------------------------------------------------------

_ST_DTYPES = {"F64": ("d", 8), "F32": ("f", 4), "F16": ("e", 2), "BF16": (None, 2),
              "I64": ("q", 8), "I32": ("i", 4)}


def _read_raw(path: str):
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen])
    header.pop("__metadata__", None)
    return header, blob, 8 + hlen


def read_safetensors(path: str) -> dict:
    """name -> (shape, list of floats); little-endian F64/F32/F16/BF16/I64/I32. Pure Python."""
    header, blob, base = _read_raw(path)
    out = {}
    for name, info in header.items():
        code, _ = _ST_DTYPES[info["dtype"]]
        lo, hi = info["data_offsets"]
        raw = blob[base + lo:base + hi]
        if info["dtype"] == "BF16":           # bf16 = the top 16 bits of a float32
            u16 = array("H")
            u16.frombytes(raw)
            if sys.byteorder != "little":
                u16.byteswap()
            vals = list(array("f", array("I", [v << 16 for v in u16]).tobytes()))
        elif code == "e":
            vals = [v[0] for v in struct.iter_unpack("<e", raw)]
        else:
            a = array(code)
            a.frombytes(raw)
            if sys.byteorder != "little":
                a.byteswap()
            vals = list(a)
        out[name] = (list(info["shape"]), vals)
    return out


def read_safetensors_torch(path: str) -> dict:
    """name -> torch tensor (float64 for float data); fast path for large weight files."""
    header, blob, base = _read_raw(path)
    tdt = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32}
    out = {}
    for name, info in header.items():
        lo, hi = info["data_offsets"]
        t = torch.frombuffer(bytearray(blob[base + lo:base + hi]), dtype=tdt[info["dtype"]])
        out[name] = t.reshape(info["shape"])
    return out


def write_safetensors(path: str, tensors: dict) -> None:
    """Write float32/float64 torch tensors (name -> tensor) as safetensors, names sorted."""
    header, chunks, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        code, tag = {torch.float64: ("d", "F64"), torch.float32: ("f", "F32")}[t.dtype]
        try:
            raw = t.numpy().tobytes()             # fast path (numpy present)
        except (RuntimeError, ImportError):
            data = array(code, t.reshape(-1).tolist())
            if sys.byteorder != "little":
                data.byteswap()
            raw = data.tobytes()
        header[name] = {"dtype": tag, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)


def load_weights(model: "Avey", path: str) -> None:
    """Load a safetensors state dict by name; every parameter must be present with its shape."""
    tensors = read_safetensors_torch(path)
    sd = model.state_dict()
    missing = sorted(set(sd) - set(tensors))
    extra = sorted(set(tensors) - set(sd))
    if missing or extra:
        raise SystemExit(f"{path}: missing {missing}, unexpected {extra}")
    with torch.no_grad():
        for name, p in sd.items():
            t = tensors[name]
            if t.shape != p.shape:
                raise SystemExit(f"{path}: {name} has shape {list(t.shape)}, model wants {list(p.shape)}")
            p.copy_(t)


def make_batch(cfg: AveyConfig, B: int, T: int, seed: int, ignore_frac: float = 0.1) -> dict:
    """Random token ids; labels are the next tokens, some set to -100 (ignored)."""
    rng = random.Random(seed)
    ids, labels = [], []
    for _ in range(B):
        seq = [rng.randrange(cfg.vocab_size) for _ in range(T + 1)]
        lab = [t if rng.random() >= ignore_frac else -100 for t in seq[1:]]
        if all(v == -100 for v in lab):
            lab[0] = seq[1]
        ids.append(seq[:T])
        labels.append(lab)
    return {"input_ids": ids, "labels": labels}


def load_batch(path: str, device="cpu"):
    with open(path) as f:
        b = json.load(f)
    ids = torch.tensor(b["input_ids"], dtype=torch.long, device=device)
    labels = torch.tensor(b["labels"], dtype=torch.long, device=device)
    assert ids.shape == labels.shape and ids.dim() == 2, "input_ids and labels must be [B, T]"
    return ids, labels


# ---------------------------------------------------------------------------------------------
# Gradients and comparison
# ---------------------------------------------------------------------------------------------

def compute_grads(cfg: AveyConfig, weights: str, batch: str, dtype: str = "float64", device="cpu"):
    """Loss and gradients (name -> tensor) for one batch, in the given dtype."""
    dt = {"float64": torch.float64, "float32": torch.float32}[dtype]
    model = Avey(cfg)
    load_weights(model, weights)
    model = model.to(device=device, dtype=dt)
    ids, labels = load_batch(batch, device)
    _, loss = model(ids, labels)
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
    return loss.item(), grads


def write_expectations(path: str, loss: float, grads: dict, loss32: float, grads32: dict, **extra):
    """expected.json of a stored case: the float64 loss and gradient norms, and how close a float32
    run of the same computation gets (the bar a correct float32 engine can meet). Returns
    (good, f32 gradient error, f32 loss error)."""
    f32_err = max(((grads32[k].double() - grads[k]).norm() / grads[k].norm().clamp_min(1e-300)).item() for k in grads)
    loss_err = abs(loss32 - loss) / abs(loss)
    with open(path, "w") as f:
        json.dump({"loss": loss, "grad_norms": {k: g.norm().item() for k, g in grads.items()}, "loss_f32": loss32,
                   "f32_vs_f64_grad": f32_err, "f32_vs_f64_loss": loss_err, **extra}, f, indent=1)
    return f32_err <= 1e-4 and loss_err <= 1e-5, f32_err, loss_err


def rel_err(a, b):
    num = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    den = math.sqrt(sum(y * y for y in b))
    return num / den if den > 0 else num


def compare_files(path_a: str, path_b: str, tol: float = 1e-4, loss_a=None, loss_b=None,
                  tol_loss: float = 1e-5, quiet: bool = False) -> bool:
    """Max relative error ||a-b||/||b|| per tensor (b is the reference). True when all pass."""
    A, Bt = read_safetensors(path_a), read_safetensors(path_b)
    ok = True
    for name in sorted(set(A) | set(Bt)):
        if name not in A or name not in Bt:
            print(f"  MISSING {name} in {'a' if name not in A else 'b'}")
            ok = False
            continue
        (sa, va), (sb, vb) = A[name], Bt[name]
        if sa != sb:
            print(f"  SHAPE   {name}: {sa} vs {sb}")
            ok = False
            continue
        e = rel_err(va, vb)
        bad = not (e <= tol)
        ok &= not bad
        if bad or not quiet:
            print(f"  {'FAIL' if bad else 'ok  '}    {name:48s} {e:.3e}")
    if loss_a is not None and loss_b is not None:
        e = abs(loss_a - loss_b) / max(abs(loss_b), 1e-30)
        bad = not (e <= tol_loss)
        ok &= not bad
        print(f"  {'FAIL' if bad else 'ok  '}    {'loss':48s} {e:.3e}  ({loss_a!r} vs {loss_b!r})")
    return ok


# ---------------------------------------------------------------------------------------------
# Self-test (run on a machine with torch): the batched code against plain loops and differences
# ---------------------------------------------------------------------------------------------

SELFTEST_CONFIGS = [
    dict(),
    dict(ranker_weight_norm="first"),
    dict(top_k=7),
    dict(split_weighting=False, dynamic=False),
    dict(ranker=False),
    dict(norm="layernorm", enricher_activation="gelu", contextualizer_activation="silu"),
    dict(contextualizer="attention", attention_head_size=8, tail_proportion=1.0),
    dict(expansion_factor=3, tail_proportion=0.3, enricher_activation="silu",
         contextualizer_activation="relu2"),
]


def selftest() -> bool:
    torch.manual_seed(0)
    ok = True
    base = dict(vocab_size=97, d_embed=16, n_layers=2, split_size=4, top_k=3)
    for i, over in enumerate(SELFTEST_CONFIGS):
        cfg = AveyConfig(**{**base, **over}).validate()
        model = Avey(cfg).double()
        assert sum(p.numel() for p in model.parameters()) == param_count(cfg)
        B, T = 2, 23                                  # T % S != 0; first splits have < k earlier
        ids = torch.randint(0, cfg.vocab_size, (B, T))
        labels = torch.randint(0, cfg.vocab_size, (B, T))
        labels[0, :3] = -100
        results = []
        for naive in (False, True):
            model.zero_grad()
            model.naive_ranker = naive
            logits, loss = model(ids, labels)
            loss.backward()
            results.append((logits.detach(), loss.item(),
                            {n: p.grad.clone() for n, p in model.named_parameters()}))
        model.naive_ranker = False
        (l0, s0, g0), (l1, s1, g1) = results
        e_grad = max(((g0[n] - g1[n]).norm() / g1[n].norm().clamp_min(1e-300)).item() for n in g0)
        e_logit = ((l0 - l1).abs().max()).item()
        # generation mode: last-position logits equal the full forward's, for several lengths
        e_gen = 0.0
        with torch.no_grad():
            for t in (1, 4, 9, 23):
                full = model(ids[:, :t])[:, -1]
                e_gen = max(e_gen, (model.forward_last(ids[:, :t]) - full).abs().max().item())
        # central finite difference along one random direction of all parameters
        params = list(model.parameters())
        v = [torch.randn_like(p) for p in params]
        analytic = sum((g0[n] * vv).sum() for (n, _), vv in zip(model.named_parameters(), v)).item()
        eps = 1e-6
        with torch.no_grad():
            def shifted(sign):
                for p, vv in zip(params, v):
                    p.add_(sign * eps * vv)
                val = model(ids, labels)[1].item()
                for p, vv in zip(params, v):
                    p.sub_(sign * eps * vv)
                return val
            fd = (shifted(1.0) - shifted(-1.0)) / (2 * eps)
        e_fd = abs(fd - analytic) / max(abs(analytic), 1e-12)
        good = e_grad < 1e-10 and e_logit < 1e-10 and e_gen < 1e-9 and e_fd < 1e-5
        ok &= good
        print(f"selftest {i} {'ok  ' if good else 'FAIL'} {json.dumps(over)}: loss {s0:.6f} "
              f"naive d_loss {abs(s0 - s1):.1e} d_logits {e_logit:.1e} d_grad {e_grad:.1e} "
              f"gen {e_gen:.1e} fd {e_fd:.1e}")
    return ok


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def _need_torch():
    if torch is None:
        raise SystemExit("this subcommand needs PyTorch")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("info", help="parameter count")
    p.add_argument("--config", required=True, help="JSON file or preset (tiny, small, medium, large)")
    p = sub.add_parser("init", help="random float32 weights")
    p.add_argument("--config", required=True)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--out", required=True)
    p = sub.add_parser("batch", help="random batch JSON")
    p.add_argument("--config", required=True)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p = sub.add_parser("grads", help="loss and gradient norms")
    p.add_argument("--config", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--batch", required=True)
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.add_argument("--dump", help="write every gradient to this safetensors file")
    p = sub.add_parser("compare", help="compare two gradient dumps (b is the reference)")
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--loss-a", type=float)
    p.add_argument("--loss-b", type=float)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--tol-loss", type=float, default=1e-5)
    sub.add_parser("selftest", help="batched vs naive ranker, generation mode, finite differences")
    a = ap.parse_args(argv)

    if a.cmd == "info":
        cfg = load_config(a.config)
        n = param_count(cfg)
        if torch is not None:
            with torch.device("meta"):
                got = sum(p.numel() for p in Avey(cfg).parameters())
            assert got == n, (got, n)
        print(json.dumps({"params": n, **asdict(cfg), "m": cfg.m, "mt": cfg.mt, "mh": cfg.mh,
                          "C": cfg.C}))
        return 0
    if a.cmd == "batch":
        cfg = load_config(a.config)
        with open(a.out, "w") as f:
            json.dump(make_batch(cfg, a.batch, a.seq_len, a.seed), f)
        return 0
    if a.cmd == "compare":
        ok = compare_files(a.a, a.b, a.tol, a.loss_a, a.loss_b, a.tol_loss)
        print("compare:", "PASS" if ok else "FAIL")
        return 0 if ok else 1
    _need_torch()
    if a.cmd == "init":
        cfg = load_config(a.config)
        torch.manual_seed(a.seed)
        model = Avey(cfg)
        write_safetensors(a.out, {k: v.float() for k, v in model.state_dict().items()})
        print(f"wrote {a.out}: {param_count(cfg):,} parameters")
        return 0
    if a.cmd == "grads":
        cfg = load_config(a.config)
        loss, grads = compute_grads(cfg, a.weights, a.batch, a.dtype, a.device)
        norms = {n: g.norm().item() for n, g in grads.items()}
        if a.dump:
            write_safetensors(a.dump, grads)
        if a.json:
            print(json.dumps({"loss": loss, "grad_norms": norms}))
        else:
            print(f"loss {loss!r}")
            for n, v in norms.items():
                print(f"  {n:48s} {v:.10e}")
        return 0
    if a.cmd == "selftest":
        ok = selftest()
        print("selftest:", "PASS" if ok else "FAIL")
        return 0 if ok else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
