"""Peer numbers for prefill attention on the GPU machine: PyTorch scaled_dot_product_attention
(causal, bf16, Llama-3-8B heads: 32 query / 8 KV heads of 128) through each backend PyTorch has
there (FlashAttention-2, cuDNN fused attention, memory-efficient), timed like `nanoflow bench ops`
(CUDA events, median). FLOPs counted the same way: 4 * head_dim * heads * sum over queries of the
keys they attend (causal). Prints one line per (shape, backend) and writes JSON to argv[1].

Run on the GPU machine (torch is installed there, not in CI): python3 tools/gpu/sdpa_peer.py OUT.json
"""
import json
import sys

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

HQ, HKV, D = 32, 8, 128


def time_ms(fn, reps=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def main():
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": []}
    gen = torch.Generator(device="cuda").manual_seed(0)
    for batch, seq in [(1, 2048), (1, 4096), (1, 8192), (4, 2048)]:
        q = torch.randn(batch, HQ, seq, D, device="cuda", dtype=torch.bfloat16, generator=gen)
        k = torch.randn(batch, HKV, seq, D, device="cuda", dtype=torch.bfloat16, generator=gen)
        v = torch.randn(batch, HKV, seq, D, device="cuda", dtype=torch.bfloat16, generator=gen)
        # Backends without GQA support get K/V expanded to every query head (not timed).
        ke = k.repeat_interleave(HQ // HKV, dim=1)
        ve = v.repeat_interleave(HQ // HKV, dim=1)
        flop = 4.0 * D * HQ * batch * seq * (seq + 1) / 2
        for name, backend in [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                              ("efficient", SDPBackend.EFFICIENT_ATTENTION)]:
            try:
                with sdpa_kernel(backend):
                    fn = lambda: torch.nn.functional.scaled_dot_product_attention(q, ke, ve, is_causal=True)
                    ms = time_ms(fn)
            except Exception as e:  # a backend unavailable for this shape/build
                print(f"sdpa {name:9s} {batch}x{seq}: unavailable ({type(e).__name__})")
                continue
            tf = flop / (ms * 1e-3) / 1e12
            print(f"sdpa {name:9s} {batch}x{seq}: {ms:.4f} ms {tf:.1f} TFLOP/s")
            out["rows"].append({"backend": name, "batch": batch, "seq": seq, "ms": ms, "tflops": tf})
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
