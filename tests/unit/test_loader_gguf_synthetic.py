#!/usr/bin/env python3
"""Dequantization of every supported GGUF tensor type against the `gguf` package (the reference).

A GGUF file is written with gguf's GGUFWriter: F32/F16/BF16, and Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 made by
gguf's own quantizer; Q4_K/Q5_K/Q6_K (which gguf cannot quantize) as random blocks with finite f16
scales. `nanoflow dump-tensor` dequantizes each; values must equal gguf.quants.dequantize within 1e-6.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as T
except ImportError:
    print("gguf package missing"); sys.exit(77)

BIN = os.path.join(os.environ.get("NF_BUILD_DIR", "build"), "src", "nanoflow")


def kquant_blocks(rng, t, n_blocks):
    size = gguf.GGML_QUANT_SIZES[t][1]
    b = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    scale_at = {T.Q4_K: (0, 2), T.Q5_K: (0, 2), T.Q6_K: (208,)}[t]
    for off in scale_at:  # finite, varied f16 scales
        d = (rng.standard_normal(n_blocks) * 0.02).astype(np.float16)
        b[:, off:off + 2] = d.view(np.uint8).reshape(n_blocks, 2)
    return b


def main():
    rng = np.random.default_rng(1234)
    x = (rng.standard_normal((6, 512)) * 0.5).astype(np.float32)
    assert x.std() > 0.1  # inputs must vary
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "types.gguf")
        w = gguf.GGUFWriter(path, "llama")
        w.add_tensor("f32", x)
        w.add_tensor("f16", x.astype(np.float16))
        w.add_tensor("bf16", gguf.quants.quantize(x, T.BF16), raw_dtype=T.BF16)
        for t in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0):
            w.add_tensor(t.name.lower(), gguf.quants.quantize(x, t), raw_dtype=t)
        for t in (T.Q4_K, T.Q5_K, T.Q6_K):
            w.add_tensor(t.name.lower(), kquant_blocks(rng, t, 12).reshape(6, -1), raw_dtype=t)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

        reader = gguf.GGUFReader(path)
        out = subprocess.run([BIN, "dump-tensor", path], check=True, capture_output=True).stdout
        off, failures = 0, 0
        for t in reader.tensors:
            ref = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
            ours = np.frombuffer(out, dtype=np.float32, count=ref.size, offset=off)
            off += ref.size * 4
            diff = float(np.max(np.abs(ours - ref)))
            spread = float(ref.std())
            ok = diff <= 1e-6 and spread > 0
            failures += not ok
            print(f"{t.name:6s} {t.tensor_type.name:5s} {ref.size:5d} values  max|diff| {diff:.3g}  std {spread:.3g}  {'ok' if ok else 'FAIL'}")
        if off != len(out):
            print(f"dump has {len(out)} bytes, expected {off}"); failures += 1
        if len(reader.tensors) != 11:
            print("expected 11 tensors"); failures += 1
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
