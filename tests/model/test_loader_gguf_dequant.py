#!/usr/bin/env python3
"""Every tensor of the default GGUF (SmolLM2-135M-Instruct Q4_1: Q4_1, Q8_0, F32), dequantized by
`nanoflow dump-tensor`, equals the `gguf` package's reader + dequantizer within 1e-6; and its
metadata equals what gguf.GGUFReader reports (compare() of tests/unit/test_loader_gguf_metadata.py)."""
import os
import subprocess
import sys

import numpy as np

try:
    import gguf
except ImportError:
    print("gguf package missing"); sys.exit(77)

SRC = os.environ.get("NF_SOURCE_DIR", ".")
BIN = os.path.join(os.environ.get("NF_BUILD_DIR", "build"), "src", "nanoflow")
MODEL = os.path.join(SRC, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def main():
    if not os.path.exists(MODEL):
        print("no", MODEL); sys.exit(77)
    reader = gguf.GGUFReader(MODEL)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit"))
    from test_loader_gguf_metadata import compare
    meta_fails = compare(MODEL, reader=reader)
    proc = subprocess.Popen([BIN, "dump-tensor", MODEL], stdout=subprocess.PIPE)
    worst = {}
    count = {}
    for t in reader.tensors:  # dump order = file order = reader order
        ref = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        raw = proc.stdout.read(ref.size * 4)
        assert len(raw) == ref.size * 4, f"{t.name}: short dump"
        ours = np.frombuffer(raw, dtype=np.float32)
        d = float(np.max(np.abs(ours - ref)))
        k = t.tensor_type.name
        worst[k] = max(worst.get(k, 0.0), d)
        count[k] = count.get(k, 0) + 1
        assert ref.std() > 0 or t.name.endswith("norm.weight"), f"{t.name}: constant tensor"
    assert proc.stdout.read(1) == b"", "dump longer than the tensors"
    assert proc.wait() == 0
    for k in sorted(worst):
        print(f"{k:5s} {count[k]:4d} tensors  max|diff| {worst[k]:.3g}")
    sys.exit(0 if all(v <= 1e-6 for v in worst.values()) and len(worst) == 3 and not meta_fails else 1)


if __name__ == "__main__":
    main()
