#!/usr/bin/env python3
"""bf16 goldens for the tiny models: transformers' own bf16 forward (eager attention, CPU) of each
tests/data/golden/<arch>/ folder, next to the f32 goldens make_goldens.py wrote there:
  golden_bf16.json  prompts (the f32 goldens'), greedy (argmax loop over the bf16 logits with the
                    KV cache, no processors; torch.argmax breaks ties toward the lower id),
                    greedy_min_gap, logits (index into logits_bf16.bin), versions
  logits_bf16.bin   per prompt the bf16 logits of every prompt position [len, vocab], as f32
                    (smollm2_gguf: the real GGUF; the last position of its first 3 prompts, as its
                    f32 golden)
A bf16 engine is compared with these like for like (tests/gpu/engine_model_test.cc): the f32
goldens can only be matched up to bf16 noise and near-ties.

  python tools/golden/make_bf16_goldens.py [--only llama2 qwen2]   (torch + transformers)
"""
import argparse
import json
import os

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "golden")
ARCHS = ["llama2", "llama31", "qwen2", "mixtral", "smollm2_tiny", "smollm2_gguf"]
GGUF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


@torch.no_grad()
def greedy(model, ids, n):
    out = model(torch.tensor([ids]), use_cache=True)
    past, logits = out.past_key_values, out.logits[0, -1].float()
    tokens, min_gap = [], float("inf")
    for _ in range(n):
        top = torch.topk(logits, 2).values
        min_gap = min(min_gap, float(top[0] - top[1]))
        t = int(torch.argmax(logits))  # the lowest id among equal maxima
        tokens.append(t)
        out = model(torch.tensor([[t]]), past_key_values=past, use_cache=True)
        past, logits = out.past_key_values, out.logits[0, -1].float()
    return tokens, min_gap


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(2)
    for arch in ARCHS:
        if args.only and arch not in args.only:
            continue
        folder = os.path.join(ROOT, arch)
        f32 = json.load(open(os.path.join(folder, "golden.json")))
        if arch == "smollm2_gguf":  # the real GGUF, dequantized by transformers, in bf16
            if not os.path.exists(GGUF):
                print(f"{arch}: {GGUF} absent (scripts/fetch_model.sh), skipped")
                continue
            model = AutoModelForCausalLM.from_pretrained(os.path.dirname(GGUF), gguf_file=os.path.basename(GGUF),
                                                         dtype=torch.bfloat16, attn_implementation="eager").eval()
        else:
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16,
                                                         attn_implementation="eager").eval()
        meta = {"arch": arch, "source": "tools/golden/make_bf16_goldens.py",
                "versions": {"transformers": transformers.__version__, "torch": torch.__version__},
                "weights_dtype": "bf16", "compute_dtype": "bfloat16", "attn_implementation": "eager",
                "device": "cpu", "prompts": f32["prompts"], "greedy": [], "greedy_min_gap": [], "logits": []}
        offset = 0
        with open(os.path.join(folder, "logits_bf16.bin"), "wb") as f:
            for i, ids in enumerate(f32["prompts"]):
                with torch.no_grad():
                    a = model(torch.tensor([ids]), use_cache=False).logits[0].float().numpy()
                key = f"prompt{i}"
                if arch == "smollm2_gguf":  # as its f32 golden: the last position of the first 3 prompts
                    a, key = a[-1:], f"prompt{i}_last"
                if arch != "smollm2_gguf" or i < 3:
                    a = np.ascontiguousarray(a, dtype="<f4")
                    f.write(a.tobytes())
                    meta["logits"].append({"key": key, "offset": offset, "shape": list(a.shape)})
                    offset += a.size
                toks, gap = greedy(model, ids, len(f32["greedy"][i]))
                meta["greedy"].append(toks)
                meta["greedy_min_gap"].append(gap)
        with open(os.path.join(folder, "golden_bf16.json"), "w") as f:
            json.dump(meta, f, indent=1)
        same = sum(1 for i in range(len(meta["greedy"])) if meta["greedy"][i] == f32["greedy"][i])
        print(f"{arch}: bf16 greedy equals the f32 goldens' for {same} of {len(meta['greedy'])}; "
              f"min gap {min(meta['greedy_min_gap']):.4f}")


if __name__ == "__main__":
    main()
