#!/usr/bin/env python3
"""Avey-B's fine-tuning heads in plain PyTorch: the oracle for avey/heads.h (docs/model.md section 2).

Not part of the engine. The encoder is avey_b_ref.AveyB (imported, not copied); on top of it:

  sequence: p = mean over all T rows of out; logits = classifier(dense.4(gelu(dense.2(gelu(dense.0(p))))))
            loss: MSE for one label, cross-entropy for integer labels, BCE with logits for float multi-labels
  token:    logits = classifier(tanh(dense.0(out)));  cross-entropy over labels != -100

State-dict names: the encoder's, then dense.0/2/4 and classifier (sequence) or dense.0 and classifier (token).

Subcommands (python3 avey_b_heads_ref.py SUB --help):
  generate         stored head cases: CASE/{config.json, weights.safetensors, batch.json, grads.safetensors,
                   expected.json}; float64 gradients (tests/test_parity_reference.cpp reads them)
  check-reference  this oracle against the public reference's AveyForSequenceClassification and
                   AveyForTokenClassification (from --ref-src DIR): logits, loss, every gradient to 1e-10 (float64)
  check-folder     a fine-tuned engine folder (avey finetune) loaded by the reference's
                   from_pretrained: its logits against the engine's (avey predict --logits-out), 1e-5
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from dataclasses import asdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import avey_ref as R  # noqa: E402  (safetensors, expectations)
import avey_b_ref as RB  # noqa: E402  (the encoder)
from hf_compat import loadable  # noqa: E402  (the reference's classes under transformers 5)

torch, nn, F = R.torch, R.nn, R.F


class AveyBWithHead(nn.Module):
    """The encoder (avey_b_ref.AveyB) with a sequence or token head; named as the reference."""

    def __init__(self, cfg: RB.AveyBConfig, head: str, num_labels: int):
        super().__init__()
        d = cfg.d_embed
        self.head, self.num_labels = head, num_labels
        self.encoder = RB.AveyB(cfg)
        if head == "sequence":
            self.dense = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, 2 * d), nn.GELU(),
                                       nn.Linear(2 * d, d))
        else:
            self.dense = nn.Sequential(nn.Linear(d, d), nn.Tanh())
        self.classifier = nn.Linear(d, num_labels)

    def state_names(self):
        """The reference's state-dict names (the encoder's without a prefix, then the head's) -> the
        parameters themselves (keep_vars: the same objects as self.parameters())."""
        return {k.removeprefix("encoder."): v for k, v in self.state_dict(keep_vars=True).items()}

    def load(self, path: str):
        tensors = R.read_safetensors_torch(path)
        own = self.state_names()
        if set(own) != set(tensors):
            raise SystemExit(f"{path}: missing {sorted(set(own) - set(tensors))}, unexpected {sorted(set(tensors) - set(own))}")
        with torch.no_grad():
            for k, p in own.items():
                p.copy_(tensors[k])

    def forward(self, ids, labels=None):
        out = self.encoder.hidden(ids)  # [B, T, d]
        if self.head == "sequence":
            logits = self.classifier(self.dense(out.mean(dim=1)))
        else:
            logits = self.classifier(self.dense(out))
        loss = None
        if labels is not None:
            if self.head == "token":
                loss = F.cross_entropy(logits.reshape(-1, self.num_labels), labels.reshape(-1), ignore_index=-100)
            elif self.num_labels == 1:
                loss = F.mse_loss(logits.squeeze(), labels.squeeze())
            elif labels.dtype in (torch.long, torch.int):
                loss = F.cross_entropy(logits, labels)
            else:
                loss = F.binary_cross_entropy_with_logits(logits, labels)
        return logits, loss


def load_head_batch(path: str, dtype):
    """batch.json: input_ids [B][T]; labels [B] (int: classes; float: one-label regression),
    [B][labels] (float multi-labels) or [B][T] (token classes, -100 ignored); label_dtype int|float."""
    with open(path) as f:
        b = json.load(f)
    ids = torch.tensor(b["input_ids"], dtype=torch.long)
    labels = torch.tensor(b["labels"], dtype=torch.long if b["label_dtype"] == "int" else dtype)
    return ids, labels


def grads_of(model, ids, labels):
    model.zero_grad()
    _, loss = model(ids, labels)
    loss.backward()
    names = {id(p): k for k, p in model.state_names().items()}
    return loss.item(), {names[id(p)]: p.grad.detach().clone() for p in model.parameters()}


# Small models (V 97, d 8-16, S 3-4); T % S != 0 unless said.
BASE = dict(vocab_size=97, d_embed=16, n_layers=3, chunk_size=4, k=2)
CASES = {  # name: (config overrides, head, labels, B, T, label kind)
    "sequence_ce":      (dict(), "sequence", 3, 3, 10, "class"),
    "sequence_mse":     (dict(d_embed=8), "sequence", 1, 4, 9, "regression"),
    "sequence_bce":     (dict(n_layers=2), "sequence", 4, 2, 12, "multi"),  # T multiple of S
    "token_ce":         (dict(), "token", 5, 2, 11, "token"),
    "token_one_split":  (dict(chunk_size=8, n_layers=2), "token", 2, 3, 6, "token"),
    "token_deep":       (dict(d_embed=8, n_layers=5, k=3, chunk_size=3), "token", 3, 1, 17, "token"),
}


def make_labels(kind: str, B: int, T: int, L: int, g: torch.Generator):
    if kind == "class":
        return torch.randint(0, L, (B,), generator=g).tolist(), "int"
    if kind == "regression":
        return torch.randn(B, generator=g, dtype=torch.float64).tolist(), "float"
    if kind == "multi":
        return (torch.rand(B, L, generator=g, dtype=torch.float64) < 0.5).double().tolist(), "float"
    lab = torch.randint(0, L, (B, T), generator=g)
    lab[torch.rand(B, T, generator=g) < 0.2] = -100
    lab[0, 0] = 0  # never all ignored
    return lab.tolist(), "int"


def generate(out: str) -> bool:
    ok = True
    for idx, (name, (over, head, L, B, T, kind)) in enumerate(CASES.items()):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        cfg_dict = {**asdict(RB.AveyBConfig()), **BASE, **over}
        cfg = RB.AveyBConfig(**cfg_dict).validate()
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump({**cfg_dict, "mask_id": cfg.vocab_size - 1, "head": head, "num_labels": L}, f, indent=1)
        torch.manual_seed(5000 + idx)
        model = AveyBWithHead(cfg, head, L)
        with torch.no_grad():  # every weight away from its init (biases non-zero, alpha and gains off 1)
            for l in model.encoder.layers:
                l.alpha.fill_(0.8 + 0.1 * torch.rand(()).item())
                l.norm.weight.mul_(1 + 0.1 * torch.randn_like(l.norm.weight))
                l.enricher.bias.normal_(0.0, 0.1)
                l.fuser.bias.normal_(0.0, 0.1)
            for m in list(model.dense) + [model.classifier]:
                if isinstance(m, nn.Linear):
                    m.bias.normal_(0.0, 0.1)
        R.write_safetensors(os.path.join(d, "weights.safetensors"), {k: v.float() for k, v in model.state_names().items()})
        g = torch.Generator().manual_seed(6000 + idx)
        ids = torch.randint(0, cfg.vocab_size - 1, (B, T), generator=g).tolist()
        labels, label_dtype = make_labels(kind, B, T, L, g)
        with open(os.path.join(d, "batch.json"), "w") as f:
            json.dump({"input_ids": ids, "labels": labels, "label_dtype": label_dtype}, f)
        results = {}
        for dtype in (torch.float64, torch.float32):
            m = AveyBWithHead(cfg, head, L).to(dtype)
            m.load(os.path.join(d, "weights.safetensors"))
            results[dtype] = grads_of(m, *load_head_batch(os.path.join(d, "batch.json"), dtype))
        loss, grads = results[torch.float64]
        R.write_safetensors(os.path.join(d, "grads.safetensors"), grads)
        good, f32_err, loss_err = R.write_expectations(os.path.join(d, "expected.json"), loss, grads,
                                                       *results[torch.float32], batch_size=B, seq_len=T, head=head,
                                                       num_labels=L)
        ok &= good
        print(f"{'ok  ' if good else 'WARN'} {name:16s} {head:8s} L{L} B{B} T{T:3d} loss {loss:.8f}  "
              f"f32-vs-f64 grad {f32_err:.1e} loss {loss_err:.1e}")
    return ok


def load_folder(cls, config_class, folder):
    """cls(config_class(**config.json)) with model.safetensors; the missing and unexpected tensor names."""
    from safetensors.torch import load_file
    with open(os.path.join(folder, "config.json")) as f:
        model = cls(config_class(**json.load(f)))
    result = model.load_state_dict(load_file(os.path.join(folder, "model.safetensors")), strict=False)
    return model, {"missing_keys": result.missing_keys, "unexpected_keys": result.unexpected_keys}


class _Output:
    """transformers' ModelOutput as far as the reference's forward uses it: named fields."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def _transformers_stand_in():
    """Without the transformers package: the two base classes the reference's modeling code needs,
    as transformers defines what it reads of them. PretrainedConfig keeps every key as an
    attribute (id2label's keys made ints, num_labels its size); PreTrainedModel.from_pretrained
    builds config_class(**config.json) and the class, then loads model.safetensors strictly."""
    import types

    class PretrainedConfig:
        def __init__(self, num_labels=2, id2label=None, label2id=None, **kwargs):
            self.id2label = {int(k): v for k, v in id2label.items()} if id2label else {i: f"LABEL_{i}" for i in range(num_labels)}
            self.num_labels = len(self.id2label)
            self.label2id = label2id or {v: k for k, v in self.id2label.items()}
            self.__dict__.update(kwargs)

    class PreTrainedModel(nn.Module):
        config_class = PretrainedConfig

        def __init__(self, config):
            super().__init__()
            self.config = config

        @classmethod
        def from_pretrained(cls, folder, output_loading_info=False, **_):
            model, info = load_folder(cls, cls.config_class, folder)
            return (model, info) if output_loading_info else model

    top, outputs = types.ModuleType("transformers"), types.ModuleType("transformers.modeling_outputs")
    top.PretrainedConfig, top.PreTrainedModel, top.__version__ = PretrainedConfig, PreTrainedModel, "absent (stand-in)"
    for name in ("BaseModelOutput", "MaskedLMOutput", "SequenceClassifierOutput", "TokenClassifierOutput"):
        setattr(outputs, name, _Output)
    top.modeling_outputs = outputs
    sys.modules["transformers"], sys.modules["transformers.modeling_outputs"] = top, outputs


def reference_classes(ref_src: str):
    os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")  # the reference's layers are @torch.compile'd
    try:
        import transformers  # noqa: F401
    except ImportError:
        _transformers_stand_in()
    sys.path.insert(0, ref_src)
    from avey_b.configuration_avey import AveyConfig  # noqa: E402
    from avey_b import modeling_avey  # noqa: E402
    print(f"the reference's classes from {ref_src}; transformers {sys.modules['transformers'].__version__}")
    return AveyConfig, modeling_avey


def check_reference(ref_src: str, cases: str) -> bool:
    """This oracle against the reference's head classes on every stored case (float64)."""
    AveyConfig, M = reference_classes(ref_src)
    ok, n = True, 0
    for name in sorted(os.listdir(cases)):
        d = os.path.join(cases, name)
        if not os.path.isfile(os.path.join(d, "expected.json")):
            continue
        with open(os.path.join(d, "config.json")) as f:
            raw = json.load(f)
        cfg = RB.load_config(os.path.join(d, "config.json"))
        head, L = raw["head"], raw["num_labels"]
        cls = M.AveyForSequenceClassification if head == "sequence" else M.AveyForTokenClassification
        ref = cls(AveyConfig(vocab_size=cfg.vocab_size, d_embed=cfg.d_embed, n_layers=cfg.n_layers,
                             chunk_size=cfg.chunk_size, k=cfg.k, eps=cfg.eps, num_labels=L)).double()
        R.load_weights(ref, os.path.join(d, "weights.safetensors"))
        mine = AveyBWithHead(cfg, head, L).double()
        mine.load(os.path.join(d, "weights.safetensors"))
        ids, labels = load_head_batch(os.path.join(d, "batch.json"), torch.float64)
        out = ref(input_ids=ids, labels=labels)
        out.loss.backward()
        logits, loss = mine(ids, labels)
        loss.backward()
        errs = {"logits": ((logits - out.logits).norm() / out.logits.norm()).item(),
                "loss": abs(loss.item() - out.loss.item()) / abs(out.loss.item())}
        gr = dict(ref.named_parameters())
        names = {id(p): k for k, p in mine.state_names().items()}
        for p in mine.parameters():
            g = gr[names[id(p)]].grad
            errs[names[id(p)]] = ((p.grad - g).norm() / g.norm().clamp_min(1e-300)).item()
        worst = max(errs, key=errs.get)
        good = errs[worst] <= 1e-10
        ok &= good
        n += 1
        print(f"{'ok  ' if good else 'FAIL'} {name:16s} logits {errs['logits']:.1e} loss {errs['loss']:.1e} "
              f"worst {worst} {errs[worst]:.1e}")
    if n == 0:
        print(f"no cases in {cases}")
    return ok and n > 0


def check_folder(ref_src: str, folder: str, logits_file: str, tol: float = 1e-5) -> bool:
    """The reference's from_pretrained on an engine's fine-tuned folder: its class (config.json's
    architectures), its labels, and logits equal to the engine's for every example of logits_file
    (relative ||a - b|| / ||b|| <= tol per example; the reference in float64, the engine in float32)."""
    AveyConfig, M = reference_classes(ref_src)
    with open(os.path.join(folder, "config.json")) as f:
        arch = json.load(f)["architectures"][0]
    cls = loadable(getattr(M, arch))  # hf_compat.py: transformers 5 reads one attribute these classes never set
    try:
        model, info = cls.from_pretrained(folder, output_loading_info=True)
    except Exception as e:  # a transformers release the reference's code predates: its own class, loaded strictly
        print(f"{arch}.from_pretrained raised {type(e).__name__}: {e}; loading with {arch}(AveyConfig(**config.json))")
        model, info = load_folder(cls, AveyConfig, folder)
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        print(f"FAIL {arch}.from_pretrained({folder}): {problems}")
        return False
    model = model.double().eval()
    with open(os.path.join(folder, "config.json")) as f:
        labels = {int(k): v for k, v in json.load(f)["id2label"].items()}
    if model.num_labels != len(labels) or dict(model.config.id2label) != labels:
        print(f"FAIL {arch}.from_pretrained({folder}): labels {model.config.id2label}, config.json says {labels}")
        return False
    print(f"{arch}.from_pretrained({folder}): num_labels {model.num_labels}, id2label {model.config.id2label}")
    with open(logits_file) as f:
        examples = json.load(f)["examples"]
    worst, ok = 0.0, True
    single = copy.deepcopy(model).float()  # the reference itself in float32: how far rounding alone moves it
    with torch.no_grad():
        for i, ex in enumerate(examples):
            ids = torch.tensor(ex["input_ids"], dtype=torch.long)
            ref = model(input_ids=ids).logits
            mine = torch.tensor(ex["logits"], dtype=torch.float64).reshape(ref.shape)
            err = ((mine - ref).norm() / ref.norm()).item()
            worst = max(worst, err)
            if err > tol:
                ok = False
                own = ((single(input_ids=ids).logits.double() - ref).norm() / ref.norm()).item()
                print(f"FAIL example {i}: relative error {err:.2e} (the reference's own float32 against its float64: {own:.2e})")
    print(f"{'ok' if ok else 'FAIL'}: {len(examples)} examples, worst relative logit error {worst:.2e} (tolerance {tol:g})")
    return ok and len(examples) > 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("generate")
    p.add_argument("--out", required=True)
    p = sub.add_parser("check-reference")
    p.add_argument("--ref-src", required=True, help="a folder holding the reference's avey_b package")
    p.add_argument("--cases", required=True)
    p = sub.add_parser("check-folder")
    p.add_argument("--ref-src", required=True, help="a folder holding the reference's avey_b package")
    p.add_argument("--folder", required=True, help="a fine-tuned folder written by avey finetune")
    p.add_argument("--logits", required=True, help="avey predict --logits-out FILE")
    a = ap.parse_args(argv)
    if torch is None:
        raise SystemExit(f"{a.cmd} needs torch")
    if a.cmd == "generate":
        return 0 if generate(a.out) else 1
    if a.cmd == "check-reference":
        return 0 if check_reference(a.ref_src, a.cases) else 1
    return 0 if check_folder(a.ref_src, a.folder, a.logits) else 1


if __name__ == "__main__":
    sys.exit(main())
