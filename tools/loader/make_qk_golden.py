#!/usr/bin/env python3
"""Golden Q/K rows of the default GGUF as Hugging Face transformers loads them (it dequantizes with
the `gguf` package and undoes llama.cpp's Q/K row permutation). Writes per-row fingerprints (sum,
sum of squares, first 4 values) of q_proj/k_proj for a few layers to tests/data/loader/, which
tests/model/loader_weights_gguf.cc compares with WeightStore::read_f32.

Needs transformers + torch (not in CI): /work/venv-ref/bin/python tools/loader/make_qk_golden.py
With --check BINARY it also compares whole tensors with `BINARY dump-tensor --model` (exact).
"""
import argparse, json, os, subprocess, sys
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GGUF = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = os.path.join(ROOT, "tests", "data", "loader", "smollm2_qk_rows.json")
LAYERS = [0, 15, 29]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", help="nanoflow binary to compare full tensors with")
    args = ap.parse_args()
    import torch
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(GGUF), gguf_file=os.path.basename(GGUF),
                                                 dtype=torch.float32)
    sd = model.state_dict()
    golden = {"source": "transformers " + __import__("transformers").__version__ + " gguf_file= loading of "
              + os.path.basename(GGUF), "tensors": {}}
    for layer in LAYERS:
        for proj in ("q_proj", "k_proj"):
            w = sd[f"model.layers.{layer}.self_attn.{proj}.weight"].numpy().astype(np.float64)
            golden["tensors"][f"layers.{layer}.{proj}"] = {
                "shape": list(w.shape),
                "row_sum": w.sum(axis=1).tolist(),
                "row_sumsq": (w * w).sum(axis=1).tolist(),
                "row_head4": w[:, :4].tolist(),
            }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(golden, f)
    print("wrote", OUT)
    if args.check:
        names = [f"layers.{l}.{p}" for l in LAYERS for p in ("q_proj", "k_proj")] + ["layers.3.v_proj", "embed_tokens"]
        hf = {f"layers.{l}.{p}": f"model.layers.{l}.self_attn.{p}.weight" for l in range(30) for p in ("q_proj", "k_proj", "v_proj")}
        hf["embed_tokens"] = "model.embed_tokens.weight"
        raw = subprocess.run([args.check, "dump-tensor", "--model", GGUF] + names, check=True, capture_output=True).stdout
        off = 0
        worst = 0.0
        for n in names:
            ref = sd[hf[n]].numpy()
            ours = np.frombuffer(raw, dtype=np.float32, count=ref.size, offset=off).reshape(ref.shape)
            off += ref.size * 4
            d = float(np.abs(ours - ref).max())
            worst = max(worst, d)
            print(f"{n:20s} {ref.shape} max|diff| {d:.3g}")
        assert off == len(raw)
        print("worst", worst)
        sys.exit(0 if worst <= 1e-6 else 1)


if __name__ == "__main__":
    main()
