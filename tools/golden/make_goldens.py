#!/usr/bin/env python3
"""Golden data for the CPU model forward, made with Hugging Face transformers (the reference).

Run with a Python that has torch + transformers + gguf (NOT in CI; the outputs are committed):
    /work/venv-ref/bin/python tools/golden/make_goldens.py [--only ARCH ...] [--skip-smollm2]

Writes, per tiny random-weight architecture, tests/data/golden/<arch>/:
    config.json, model.safetensors   HF folder in the original checkpoint format (reloaded with
                                     from_pretrained and re-checked, so the names are what HF reads)
    golden.json                      prompts (token ids), greedy continuations, versions, tolerances,
                                     and where each logits tensor lives in logits.bin
    logits.bin                       little-endian f32: per prompt, logits of every prompt position
                                     [prompt_len, vocab]
and for the real default model (SmolLM2-135M-Instruct GGUF, loaded by transformers' GGUF support)
tests/data/golden/smollm2_gguf/golden.json + logits.bin (first-step logits of a few prompts).

Greedy continuations use a plain loop (model forward with KV cache + argmax, no logits processors,
EOS not special) so nothing but the model decides the tokens. The smallest top-1/top-2 logit gap
seen along each continuation is recorded: a gap below our tolerance would make a test fragile.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import transformers
from safetensors.torch import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "data", "golden")
GGUF_DIR = os.path.join(ROOT, "models")
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

VOCAB = 320
# Fixed prompts (token ids) for the tiny models: lengths cross page boundaries (16) and differ.
TINY_PROMPTS = [
    [1, 17, 42, 99, 7],
    [1] + [(i * 37 + 11) % VOCAB for i in range(20)],
    [1] + [(i * 101 + 3) % VOCAB for i in range(37)],
]
TINY_NEW_TOKENS = 24


def versions():
    import gguf  # noqa: F401  (recorded for the GGUF golden)
    return {"transformers": transformers.__version__, "torch": torch.__version__,
            "gguf": getattr(sys.modules["gguf"], "__version__", "unknown"), "numpy": np.__version__}


def tiny_configs():
    common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5,
                  bos_token_id=1, eos_token_id=2, hidden_act="silu")
    L = transformers
    return {
        "llama2": (L.LlamaConfig(num_hidden_layers=2, rope_theta=10000.0, tie_word_embeddings=False, **common),
                   "f32"),
        "llama31": (L.LlamaConfig(num_hidden_layers=3, tie_word_embeddings=False,
                                  rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                                   "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                   "original_max_position_embeddings": 64},
                                  **{**common, "head_dim": 16}), "f32"),
        "qwen2": (L.Qwen2Config(num_hidden_layers=2, rope_theta=1000000.0, tie_word_embeddings=False,
                                use_sliding_window=False, **{**common, "rms_norm_eps": 1e-6}), "f32"),
        "mixtral": (L.MixtralConfig(num_hidden_layers=2, num_local_experts=4, num_experts_per_tok=2,
                                    rope_theta=1000000.0, tie_word_embeddings=False, **common), "bf16"),
        "smollm2_tiny": (L.LlamaConfig(num_hidden_layers=4, rope_theta=100000.0, tie_word_embeddings=True,
                                       **{**common, "num_attention_heads": 4, "num_key_value_heads": 1}), "f32"),
    }


def randomize(model, seed, bf16):
    """Weights with real spread (HF's 0.02 init gives near-uniform logits and fragile argmax)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                v = 1.0 + 0.3 * torch.randn(p.shape, generator=g)
            elif "bias" in name:
                v = 0.5 * torch.randn(p.shape, generator=g)
            elif "embed_tokens" in name or "lm_head" in name:
                # unit-variance rows: logits spread by several units, so greedy argmax gaps are
                # far above float noise (tied models use the embedding as the head)
                v = torch.randn(p.shape, generator=g) * (1.0 if "embed" in name else 4.0 / p.shape[-1] ** 0.5)
            else:
                fan_in = p.shape[-1]
                v = torch.randn(p.shape, generator=g) * (1.5 / fan_in ** 0.5)
            if bf16:  # values exactly representable in bf16, so the bf16 file holds the model exactly
                v = v.to(torch.bfloat16).to(torch.float32)
            p.copy_(v)


def checkpoint_state_dict(model, arch, dtype):
    """State dict in the original HF checkpoint layout (what real model folders contain)."""
    sd = {}
    for k, v in model.state_dict().items():
        if arch == "mixtral" and ".mlp.experts." in k:
            pre = k.split(".mlp.experts.")[0] + ".block_sparse_moe.experts."
            inter = v.shape[1] // 2 if k.endswith("gate_up_proj") else None
            for e in range(v.shape[0]):
                if k.endswith("gate_up_proj"):
                    sd[f"{pre}{e}.w1.weight"] = v[e, :inter].clone()  # gate
                    sd[f"{pre}{e}.w3.weight"] = v[e, inter:].clone()  # up
                else:
                    sd[f"{pre}{e}.w2.weight"] = v[e].clone()  # down
            continue
        if arch == "mixtral" and ".mlp.gate." in k:
            k = k.replace(".mlp.gate.", ".block_sparse_moe.gate.")
        if k == "lm_head.weight" and model.config.tie_word_embeddings:
            continue
        sd[k] = v.clone()
    t = torch.bfloat16 if dtype == "bf16" else torch.float32
    return {k: v.to(t).contiguous() for k, v in sd.items()}


@torch.no_grad()
def prefill_logits(model, ids):
    out = model(torch.tensor([ids]), use_cache=False)
    return out.logits[0].float().numpy()


@torch.no_grad()
def greedy(model, ids, n):
    """Plain greedy loop: argmax of the model's logits, KV cache, no processors."""
    out = model(torch.tensor([ids]), use_cache=True)
    past = out.past_key_values
    logits = out.logits[0, -1].float()
    tokens, min_gap = [], float("inf")
    for _ in range(n):
        top = torch.topk(logits, 2)
        min_gap = min(min_gap, float(top.values[0] - top.values[1]))
        t = int(top.indices[0])
        tokens.append(t)
        out = model(torch.tensor([[t]]), past_key_values=past, use_cache=True)
        past = out.past_key_values
        logits = out.logits[0, -1].float()
    return tokens, min_gap


def write_golden(folder, meta, arrays):
    """arrays: list of (key, np.float32 array); offsets (in floats) recorded in meta['logits']."""
    offset, index = 0, []
    with open(os.path.join(folder, "logits.bin"), "wb") as f:
        for key, a in arrays:
            a = np.ascontiguousarray(a, dtype="<f4")
            f.write(a.tobytes())
            index.append({"key": key, "offset": offset, "shape": list(a.shape)})
            offset += a.size
    meta["logits"] = index
    with open(os.path.join(folder, "golden.json"), "w") as f:
        json.dump(meta, f, indent=1)


def make_tiny(arch, cfg, dtype, seed):
    folder = os.path.join(OUT, arch)
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(seed)
    cls = transformers.AutoModelForCausalLM
    model = cls.from_config(cfg, attn_implementation="eager", dtype=torch.float32).eval()
    randomize(model, seed, dtype == "bf16")
    before = prefill_logits(model, TINY_PROMPTS[1])
    cfg.dtype = "bfloat16" if dtype == "bf16" else "float32"
    cfg.save_pretrained(folder)
    save_file(checkpoint_state_dict(model, arch, dtype), os.path.join(folder, "model.safetensors"),
              metadata={"format": "pt"})
    # Re-load the folder the way users would, in f32: the goldens come from what HF reads back.
    model = cls.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval()
    after = prefill_logits(model, TINY_PROMPTS[1])
    assert np.abs(before - after).max() < 1e-5, f"{arch}: saved folder does not reload to the same model"
    meta = {"arch": arch, "source": "tools/golden/make_goldens.py", "versions": versions(),
            "weights_dtype": dtype, "compute_dtype": "float32", "attn_implementation": "eager",
            "tolerance_abs": 1e-3, "prompts": [], "greedy": [], "greedy_min_gap": []}
    arrays = []
    for i, ids in enumerate(TINY_PROMPTS):
        arrays.append((f"prompt{i}", prefill_logits(model, ids)))
        toks, gap = greedy(model, ids, TINY_NEW_TOKENS)
        meta["prompts"].append(ids)
        meta["greedy"].append(toks)
        meta["greedy_min_gap"].append(gap)
    write_golden(folder, meta, arrays)
    print(f"{arch}: params={sum(p.numel() for p in model.parameters())} min gap={min(meta['greedy_min_gap']):.4f}")


SMOL_PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    "def fibonacci(n):\n",
    "Water boils at a temperature of",
    "The three primary colors are",
    "Translate to French: Good morning, how are you?",
    "List of prime numbers: 2, 3, 5, 7,",
    "In 1969, the first humans to walk on the moon were",
]
SMOL_NEW_TOKENS = 32
SMOL_LOGIT_PROMPTS = 3  # first-step logits kept for the first few prompts (49152 floats each)


def make_smollm2():
    folder = os.path.join(OUT, "smollm2_gguf")
    os.makedirs(folder, exist_ok=True)
    tok = transformers.AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_FILE)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        GGUF_DIR, gguf_file=GGUF_FILE, dtype=torch.float32, attn_implementation="eager").eval()
    meta = {"model_file": "models/" + GGUF_FILE, "source": "tools/golden/make_goldens.py", "versions": versions(),
            "compute_dtype": "float32", "attn_implementation": "eager", "tolerance_abs": 1e-3,
            "note": "prompt ids from transformers' tokenizer for the GGUF, add_special_tokens=True",
            "texts": SMOL_PROMPTS, "prompts": [], "greedy": [], "greedy_min_gap": []}
    arrays = []
    for i, text in enumerate(SMOL_PROMPTS):
        ids = tok(text, add_special_tokens=True)["input_ids"]
        toks, gap = greedy(model, ids, SMOL_NEW_TOKENS)
        if i < SMOL_LOGIT_PROMPTS:
            arrays.append((f"prompt{i}_last", prefill_logits(model, ids)[-1:]))
        meta["prompts"].append(ids)
        meta["greedy"].append(toks)
        meta["greedy_min_gap"].append(gap)
        print(f"smollm2 prompt {i}: {len(ids)} ids, gap {gap:.4f}: {tok.decode(toks)!r}")
    write_golden(folder, meta, arrays)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--skip-smollm2", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    for i, (arch, (cfg, dtype)) in enumerate(tiny_configs().items()):
        if args.only and arch not in args.only:
            continue
        make_tiny(arch, cfg, dtype, seed=1234 + i)
    if not args.skip_smollm2 and (not args.only or "smollm2_gguf" in args.only):
        make_smollm2()


if __name__ == "__main__":
    main()
