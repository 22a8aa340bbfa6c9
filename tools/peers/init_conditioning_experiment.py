#!/usr/bin/env python3
"""How far apart two correct implementations of a random-weight model drift, by init (issue 8).

For a model built by transformers from a real config.json (real widths, few layers), under two
random inits:
  hf      transformers' own init (normal std initializer_range everywhere);
  scaled  the Megatron-LM / GPT-2 scaled init: after the hf init, every residual-output projection
          (o_proj, down_proj; Mixtral's experts' w2) is multiplied by 1/sqrt(2 * L_real), L_real the
          real config's layer count (so a reduced model is the first layers of the real one);
  std=X   (extra, for comparison) transformers' init with initializer_range X instead of the config's;
it measures, on the same weights: transformers bf16 eager vs the weights upcast to f32 (eager), and
transformers bf16 eager vs transformers bf16 sdpa: relative L2 error of the last position's logits
per prompt (median/max) and how many greedy continuations are identical.  CPU only, one thread.

  /work/venv-ref/bin/python tools/peers/init_conditioning_experiment.py \
      --config-dir ../shared/models/Meta-Llama-3-8B-Instruct --layers 2,4,8 --output-json /tmp/init.json
"""
import argparse
import json
import time

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from hf_real_shape_check import scale_residual_outputs  # same directory


def run(model, ids, new_tokens):
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, do_sample=False, pad_token_id=0,
                             output_logits=True, return_dict_in_generate=True)
    # raw logits of the first generated token = the last prompt position's logits
    return out.logits[0].float().numpy(), out.sequences[:, ids.shape[1]:].tolist()


def rel_err(x, y):
    r = [float(np.linalg.norm(x[i] - y[i]) / np.linalg.norm(y[i])) for i in range(len(x))]
    return {"median": float(np.median(r)), "max": max(r)}


def same(x, y):
    return sum(1 for a, b in zip(x, y) if a == b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config-dir", required=True)
    ap.add_argument("--layers", default="2,4,8")
    ap.add_argument("--inits", default="hf,scaled")
    ap.add_argument("--num-prompts", type=int, default=8)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--output-json", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for nl in [int(x) for x in a.layers.split(",")]:
        for init in a.inits.split(","):
            t0 = time.time()
            cfg = AutoConfig.from_pretrained(a.config_dir)
            real_layers = cfg.num_hidden_layers
            cfg.num_hidden_layers = nl
            if init.startswith("std="):
                cfg.initializer_range = float(init[4:])
            torch.manual_seed(a.seed)  # same hf weights under both inits
            model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation="eager")
            model.eval()
            scaled = scale_residual_outputs(model, real_layers) if init == "scaled" else 0
            g = torch.Generator().manual_seed(a.seed + 1)
            ids = torch.randint(0, min(cfg.vocab_size, 100000), (a.num_prompts, a.prompt_len), generator=g)
            eager_l, eager_g = run(model, ids, a.new_tokens)
            model.set_attn_implementation("sdpa")
            sdpa_l, sdpa_g = run(model, ids, a.new_tokens)
            model.set_attn_implementation("eager")
            model = model.float()
            f32_l, f32_g = run(model, ids, a.new_tokens)
            del model
            row = {
                "layers": nl, "init": init, "initializer_range": cfg.initializer_range, "real_layers": real_layers, "scaled_tensors": scaled,
                "bf16_eager_vs_f32": rel_err(eager_l, f32_l),
                "bf16_sdpa_vs_f32": rel_err(sdpa_l, f32_l),
                "bf16_sdpa_vs_eager": rel_err(sdpa_l, eager_l),
                "greedy_identical_eager_vs_f32": same(eager_g, f32_g),
                "greedy_identical_sdpa_vs_f32": same(sdpa_g, f32_g),
                "greedy_identical_sdpa_vs_eager": same(sdpa_g, eager_g),
                "f32_logits_std_median": float(np.median(f32_l.std(axis=1))),
                "num_prompts": a.num_prompts, "prompt_len": a.prompt_len, "new_tokens": a.new_tokens,
                "s": time.time() - t0,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\nlayers init      eager-vs-f32 med/max     sdpa-vs-eager med/max    greedy eq (eager~f32, sdpa~eager)")
    for r in rows:
        e, s = r["bf16_eager_vs_f32"], r["bf16_sdpa_vs_eager"]
        print(f"{r['layers']:6d} {r['init']:9s} {e['median']:.4f}/{e['max']:.4f}    {s['median']:.4f}/{s['max']:.4f}"
              f"          {r['greedy_identical_eager_vs_f32']}/{r['num_prompts']}, "
              f"{r['greedy_identical_sdpa_vs_eager']}/{r['num_prompts']}")
    if a.output_json:
        with open(a.output_json, "w") as f:
            json.dump({"config_dir": a.config_dir, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
