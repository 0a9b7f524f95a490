#!/usr/bin/env bash
# Parity of the C++ model with the PyTorch reference (tests/reference/avey_ref.py, needs torch):
# for several ablation configs, random float32 weights and a batch with T % S != 0 and ignored
# labels, `avey grads --dtype f64` and the reference's float64 gradients must agree to 1e-9
# (every tensor, ||a-b||/||b||) and the losses to 1e-12. Usage: scripts/parity_avey.sh [build dir]
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
avey=$(cd "${1:-$root/build}" && pwd)/bin/avey
ref=$root/tests/reference/avey_ref.py
work=$(mktemp -d)
cd "$work"
python3 -c "import torch" || { echo "parity: PyTorch is not installed"; exit 3; }
base='"vocab_size": 97, "d_embed": 16, "n_layers": 2, "split_size": 4, "top_k": 3'
status=0 i=0
for over in '' ', "ranker_weight_norm": "first"' ', "top_k": 7' ', "split_weighting": false, "dynamic": false' \
            ', "ranker": false' ', "norm": "layernorm", "enricher_activation": "gelu", "contextualizer_activation": "silu"' \
            ', "contextualizer": "attention", "attention_head_size": 8, "tail_proportion": 1.0' \
            ', "expansion_factor": 3, "tail_proportion": 0.3, "enricher_activation": "silu", "contextualizer_activation": "relu2"'; do
  echo "{${base}${over}}" > c$i.json
  python3 "$ref" init --config c$i.json --seed $i --out w$i.safetensors > /dev/null
  python3 "$ref" batch --config c$i.json --batch 2 --seq-len 23 --seed $i --out b$i.json
  loss() { python3 -c "import json,sys; print(repr(json.load(sys.stdin)['loss']))"; }
  lr=$(python3 "$ref" grads --config c$i.json --weights w$i.safetensors --batch b$i.json --dump r$i.safetensors --json | loss)
  lc=$("$avey" grads --config c$i.json --weights w$i.safetensors --batch b$i.json --dtype f64 --dump m$i.safetensors --json | loss)
  echo "== config $i {${over#, }}: loss reference $lr, avey $lc"
  python3 "$ref" compare --a m$i.safetensors --b r$i.safetensors --loss-a "$lc" --loss-b "$lr" --tol 1e-9 --tol-loss 1e-12 \
    | grep -E "FAIL|MISSING|SHAPE|compare" || true
  python3 "$ref" compare --a m$i.safetensors --b r$i.safetensors --loss-a "$lc" --loss-b "$lr" --tol 1e-9 --tol-loss 1e-12 \
    > /dev/null || status=1
  i=$((i+1))
done
rm -rf "$work"
exit $status
