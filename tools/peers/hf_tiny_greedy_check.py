#!/usr/bin/env python3
"""Greedy continuations of the tiny golden models (tests/data/golden/<arch>/, loadable HF folders)
by transformers in bf16 (eager attention, on the GPU) against `nanoflow dump-logits` on the same
folder, per `--numerics` mode: how many continuations are identical token for token, and where the
others first diverge (with transformers' own bf16 logit gap there; 0 = an exact tie of its bf16
logits, which torch.argmax breaks toward the lower id).

The committed goldens are transformers in f32; a bf16 engine can only match those up to near-ties.
This compares like with like: the same bf16 weights, transformers' bf16 forward.

  python tools/peers/hf_tiny_greedy_check.py --nanoflow .gpuengine/bin/nanoflow \\
      --golden-root tests/data/golden --work-dir /tmp/tiny --numerics fast,transformers --output-json t.json
"""
import argparse
import json
import os
import subprocess

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

ARCHS = ["llama2", "llama31", "qwen2", "mixtral", "smollm2_tiny"]


def hf_greedy(model, prompt, n, device):
    """Greedy generation with the KV cache (no logits processors, no end-of-sequence stop): the
    tokens and the logits row each step chose from."""
    model.generation_config.eos_token_id = None
    ids = torch.tensor([prompt], device=device)
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                             pad_token_id=0, output_logits=True, return_dict_in_generate=True)
    return out.sequences[0, len(prompt):].tolist(), [x[0].float().cpu().numpy() for x in out.logits]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nanoflow", required=True)
    ap.add_argument("--golden-root", required=True)
    ap.add_argument("--work-dir", required=True)
    ap.add_argument("--archs", default=",".join(ARCHS))
    ap.add_argument("--numerics", default="fast,transformers")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--backend", default="cuda", help="ours: cuda, or cpu (f32; plumbing check, --numerics fast)")
    ap.add_argument("--output-json", default="")
    a = ap.parse_args()
    os.makedirs(a.work_dir, exist_ok=True)
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False  # f32 split-K sums only
    numerics = [n for n in a.numerics.split(",") if n]
    result = {"transformers": transformers.__version__, "torch": torch.__version__,
              "device": torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu", "archs": {}}
    for arch in [x for x in a.archs.split(",") if x]:
        folder = os.path.join(a.golden_root, arch)
        g = json.load(open(os.path.join(folder, "golden.json")))
        prompts = g["prompts"]
        n = len(g["greedy"][0])
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16,
                                                     attn_implementation="eager").to(a.device).eval()
        runs = [hf_greedy(model, p, n, a.device) for p in prompts]
        ref = [r[0] for r in runs]
        pj = os.path.join(a.work_dir, f"{arch}_prompts.json")
        json.dump({"prompts": prompts}, open(pj, "w"))
        entry = {"prompts": len(prompts), "new_tokens": n,
                 "hf_bf16_vs_f32_golden": sum(1 for i in range(len(prompts)) if ref[i] == g["greedy"][i])}
        for num in numerics:
            oj = os.path.join(a.work_dir, f"{arch}_{num}.json")
            subprocess.run([a.nanoflow, "dump-logits", "--model", folder, "--prompts", pj, "--new-tokens", str(n),
                            "--backend", a.backend, "--numerics", num, "--out-json", oj], check=True)
            ours = json.load(open(oj))["greedy"]
            divs = []
            for i in range(len(prompts)):
                if ours[i] == ref[i]:
                    continue
                d = next(k for k in range(n) if ours[i][k] != ref[i][k])
                row = runs[i][1][d]
                divs.append({"prompt": i, "at": d, "gap_in_hf_bf16_logits": float(row[ref[i][d]] - row[ours[i][d]]),
                             "row_std": float(np.std(row))})
            entry[num] = {"identical": len(prompts) - len(divs), "divergences": divs}
            print(f"{arch} ({num}): {len(prompts) - len(divs)} of {len(prompts)} greedy continuations identical "
                  f"to transformers bf16; divergences {divs}")
        print(f"{arch}: transformers bf16 vs the f32 goldens: {entry['hf_bf16_vs_f32_golden']} of {len(prompts)}")
        result["archs"][arch] = entry
        del model
    if a.output_json:
        with open(a.output_json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
