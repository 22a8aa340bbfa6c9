#!/usr/bin/env python3
"""Peer for `nanoflow bench throughput`: Hugging Face transformers `generate` (eager attention,
bf16, random weights with the real config's shapes) on the same lengths, on the same GPU.

Throughput is counted as PERF.md defines it: (prompt + generated tokens) / wall time. Requests run
in batches of --batch-size (transformers has no continuous batching), greedy, with
min_new_tokens = max_new_tokens (the ignore_eos equivalent). Weights come from the model's
default initializer (normal, std = initializer_range) made directly on the GPU.

  python tools/peers/hf_generate.py --config-dir <folder with config.json> \
      --input-len 1024 --output-len 512 --num-prompts 64 --batch-size 64 --output-json hf.json
"""
import argparse
import json
import time

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config-dir", required=True)
    ap.add_argument("--input-len", type=int, default=1024)
    ap.add_argument("--output-len", type=int, default=512)
    ap.add_argument("--num-prompts", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--num-layers", type=int, default=0, help="> 0: first N layers (quick checks)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output-json", default="")
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    cfg = AutoConfig.from_pretrained(a.config_dir)
    if a.num_layers > 0:
        cfg.num_hidden_layers = a.num_layers
    t0 = time.time()
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16, attn_implementation="eager")
    model.eval()
    torch.cuda.synchronize()
    load_s = time.time() - t0
    vocab = min(cfg.vocab_size, 100000)
    gen = torch.Generator(device="cuda").manual_seed(a.seed)

    def batch_ids(n):
        return torch.randint(0, vocab, (n, a.input_len), device="cuda", generator=gen)

    # Warm-up (kernels, allocator) on a short generation; not timed.
    with torch.no_grad():
        model.generate(batch_ids(2), attention_mask=None, max_new_tokens=4, min_new_tokens=4, do_sample=False,
                       pad_token_id=0)
    torch.cuda.synchronize()

    prompt_tokens = out_tokens = 0
    t0 = time.time()
    done = 0
    with torch.no_grad():
        while done < a.num_prompts:
            n = min(a.batch_size, a.num_prompts - done)
            ids = batch_ids(n)
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=a.output_len,
                                 min_new_tokens=a.output_len, do_sample=False, pad_token_id=0)
            prompt_tokens += ids.numel()
            out_tokens += (out.shape[1] - ids.shape[1]) * n
            done += n
    torch.cuda.synchronize()
    wall = time.time() - t0
    res = {
        "peer": "transformers.generate (eager, bf16, random weights)",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0),
        "config_dir": a.config_dir,
        "num_layers": cfg.num_hidden_layers,
        "workload": f"{a.input_len}/{a.output_len}",
        "num_requests": a.num_prompts,
        "batch_size": a.batch_size,
        "prompt_tokens": prompt_tokens,
        "output_tokens": out_tokens,
        "wall_s": wall,
        "load_s": load_s,
        "total_tokens_per_s": (prompt_tokens + out_tokens) / wall,
        "output_tokens_per_s": out_tokens / wall,
        "requests_per_s": a.num_prompts / wall,
        "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
    }
    print(json.dumps(res, indent=2))
    if a.output_json:
        with open(a.output_json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
