#!/usr/bin/env python3
"""Checks a folder written by `avey export --to hf` with the reference's own from_pretrained.

The reference's Python package is given at run time with --ref-src and never committed: for the
decoder (model_type "avey") rimads/avey-dpa, the folder holding avey/modeling_avey.py; for the
encoder ("avey-b") rimads/avey-b, the folder holding avey_b/modeling_avey.py. The script loads the
exported folder with the reference's `from_pretrained` (Avey, or AveyForMaskedLM; no missing or
unexpected tensor allowed), runs the batch's input_ids through it in float32 (TF32 off), and
compares the logits with the engine's, elementwise as torch.allclose(rtol, atol), then prints one
line:

  PASS logits [B, T, V]: max abs err 3.1e-07, max rel err 2.2e-06 (rtol 1e-05, atol 1e-05)

and exits 0 (FAIL: exits 1). The engine's logits come from a safetensors file (`avey logits
--checkpoint DIR --batch B.json --out L.safetensors`) or from running the engine itself.

  python3 tests/reference/check_hf_export.py --ref-src /path/to/avey-dpa --folder hf \\
      --batch batch.json (--engine build/bin/avey | --engine-logits L.safetensors) [--device cuda]

A batch: python3 tests/reference/avey_ref.py batch --config C.json --batch 2 --seq-len 200 --out batch.json
(token ids below the exported config's vocab_size; the labels are not read).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_compat import loadable  # noqa: E402


def engine_logits(args) -> "torch.Tensor":
    from safetensors.torch import load_file

    if args.engine_logits:
        return load_file(args.engine_logits)["logits"]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "logits.safetensors")
        subprocess.run([args.engine, "logits", "--checkpoint", args.folder, "--batch", args.batch, "--out", out,
                        "--device", "cpu"], check=True, stdout=subprocess.DEVNULL)
        return load_file(out)["logits"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref-src", required=True, help="folder holding the reference's avey/ (or avey_b/) package")
    ap.add_argument("--folder", required=True, help="the folder avey export --to hf wrote")
    ap.add_argument("--batch", required=True, help='JSON {"input_ids": [[...]], ...}')
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--engine", help="the avey binary: runs avey logits on the folder")
    src.add_argument("--engine-logits", help="safetensors file with the engine's \"logits\" [B, T, V]")
    ap.add_argument("--device", default="cuda", help="where the reference runs (cuda or cpu)")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--atol", type=float, default=1e-5)
    args = ap.parse_args()

    import torch

    sys.path.insert(0, os.path.abspath(args.ref_src))
    with open(os.path.join(args.folder, "config.json")) as f:
        model_type = json.load(f)["model_type"]
    if model_type == "avey":  # the reference's classes, from --ref-src
        from avey.modeling_avey import Avey as Model
    else:
        from avey_b.modeling_avey import AveyForMaskedLM as Model
    Model = loadable(Model)

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = args.device if args.device == "cpu" or torch.cuda.is_available() else "cpu"
    model, info = Model.from_pretrained(args.folder, output_loading_info=True, torch_dtype=torch.float32)
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        print(f"FAIL from_pretrained({args.folder}): {problems}")
        return 1
    model = model.to(device).eval()
    with open(args.batch) as f:
        ids = torch.tensor(json.load(f)["input_ids"], dtype=torch.long, device=device)
    with torch.no_grad():
        ref = model(input_ids=ids).logits.float().cpu()
    eng = engine_logits(args).float()
    if eng.shape != ref.shape:
        print(f"FAIL logits shapes differ: engine {list(eng.shape)}, reference {list(ref.shape)}")
        return 1
    diff = (eng - ref).abs()
    max_abs = diff.max().item()
    max_rel = (diff / ref.abs().clamp_min(1e-30)).max().item()
    ok = bool(torch.allclose(eng, ref, rtol=args.rtol, atol=args.atol))
    print(f"{'PASS' if ok else 'FAIL'} logits {list(ref.shape)} ({device}): max abs err {max_abs:.3g}, "
          f"max rel err {max_rel:.3g} (rtol {args.rtol:g}, atol {args.atol:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
