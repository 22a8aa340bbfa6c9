#!/usr/bin/env python3
"""safetensors files written by the `safetensors` package read back bit-identical through nanoflow.

1. One file with every dtype we support (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL):
   `nanoflow dump-tensor FILE` returns each tensor's bytes exactly.
2. A tiny Llama folder in bf16, sharded into two files + model.safetensors.index.json (and the same
   model as one file): WeightStore (`dump-tensor --model`) returns canonical weights whose bf16 bits
   equal the written ones and whose f32 values equal their exact widening.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

try:
    from safetensors import TensorSpec, serialize
    from safetensors.numpy import save_file
except ImportError:
    print("safetensors package missing"); sys.exit(77)

BIN = os.path.join(os.environ.get("NF_BUILD_DIR", "build"), "src", "nanoflow")
rng = np.random.default_rng(7)


def bf16_bits(a):
    """float32 -> bf16 bit patterns (uint16), round to nearest even, as torch does."""
    u = a.astype(np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def write_bf16_file(path, tensors):
    """`safetensors.serialize` with BF16 specs (numpy has no bf16 dtype; data are uint16 bits)."""
    keep = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    specs = {k: TensorSpec(dtype="bfloat16", shape=list(v.shape), data_ptr=v.ctypes.data, data_len=v.nbytes) for k, v in keep.items()}
    data = serialize(specs)
    with open(path, "wb") as f:
        f.write(data)


def dump(*args):
    return subprocess.run([BIN, "dump-tensor", *args], check=True, capture_output=True).stdout


def check_dtypes(tmp):
    arrays = {
        "f64": rng.standard_normal((3, 5)),
        "f32": rng.standard_normal((4, 7)).astype(np.float32),
        "f16": rng.standard_normal((2, 9)).astype(np.float16),
        "i64": rng.integers(-2**62, 2**62, size=(5,), dtype=np.int64),
        "i32": rng.integers(-2**31, 2**31 - 1, size=(3, 3), dtype=np.int32),
        "i16": rng.integers(-2**15, 2**15 - 1, size=(6,), dtype=np.int16),
        "i8": rng.integers(-128, 127, size=(2, 2, 2), dtype=np.int8),
        "u8": rng.integers(0, 255, size=(11,), dtype=np.uint8),
        "bool": rng.integers(0, 2, size=(4,)).astype(bool),
        "scalar": np.array(3.5, dtype=np.float32),
    }
    path = os.path.join(tmp, "dtypes.safetensors")
    save_file(arrays, path, metadata={"format": "np"})
    bf = bf16_bits(rng.standard_normal((3, 4)).astype(np.float32))
    bf_path = os.path.join(tmp, "bf16.safetensors")
    write_bf16_file(bf_path, {"w": bf})
    fails = 0
    for name, a in arrays.items():
        got = dump(path, name)
        ok = got == a.tobytes()
        fails += not ok
        print(f"{name:6s} {str(a.dtype):8s} {a.shape}: {'bit-identical' if ok else 'DIFFERENT'}")
    listing = dump("--list", path).decode().split("\n")
    ok = any(l.startswith("scalar f32 []") for l in listing) and any(l.startswith("i64 i64 [5]") for l in listing)
    print("listing:", "ok" if ok else listing)
    fails += not ok
    ok = dump(bf_path, "w") == bf.tobytes()
    print(f"bf16   {bf.shape}: {'bit-identical' if ok else 'DIFFERENT'}")
    return fails + (not ok)


TINY = {"model_type": "llama", "vocab_size": 16, "hidden_size": 8, "intermediate_size": 16,
        "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16"}


def tiny_weights():
    h, i, v, kv = 8, 16, 16, 4
    w = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,)}
    for l in range(2):
        p = f"model.layers.{l}."
        w.update({p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
                  p + "self_attn.q_proj.weight": (h, h), p + "self_attn.k_proj.weight": (kv, h),
                  p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, h),
                  p + "mlp.gate_proj.weight": (i, h), p + "mlp.up_proj.weight": (i, h),
                  p + "mlp.down_proj.weight": (h, i)})
    return {k: bf16_bits(rng.standard_normal(s).astype(np.float32)) for k, s in w.items()}


def canonical(hf):
    n = hf.replace("model.layers.", "layers.").replace(".weight", "")
    for a, b in (("self_attn.", ""), ("mlp.", ""), ("input_layernorm", "attn_norm"),
                 ("post_attention_layernorm", "mlp_norm"), ("model.embed_tokens", "embed_tokens"),
                 ("model.norm", "final_norm")):
        n = n.replace(a, b)
    return n


def check_folder(tmp, sharded):
    d = os.path.join(tmp, "sharded" if sharded else "single")
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(TINY, f)
    w = tiny_weights()
    if sharded:
        names = sorted(w)
        parts = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
                 "model-00002-of-00002.safetensors": names[len(names) // 2:]}
        index = {"metadata": {"total_size": sum(a.nbytes for a in w.values())}, "weight_map": {}}
        for shard, ns in parts.items():
            write_bf16_file(os.path.join(d, shard), {n: w[n] for n in ns})
            index["weight_map"].update({n: shard for n in ns})
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump(index, f)
    else:
        write_bf16_file(os.path.join(d, "model.safetensors"), w)
    names = sorted(w)
    canon = [canonical(n) for n in names]
    got_bf16 = dump("--model", "--bf16", d, *canon)
    got_f32 = dump("--model", d, *canon)
    ref_bf16 = b"".join(w[n].tobytes() for n in names)
    ref_f32 = b"".join((w[n].astype(np.uint32) << 16).astype(np.uint32).tobytes() for n in names)
    ok = got_bf16 == ref_bf16 and got_f32 == ref_f32
    print(f"{'sharded' if sharded else 'single'} folder, {len(names)} weights: {'bit-identical' if ok else 'DIFFERENT'}")
    return not ok


def main():
    with tempfile.TemporaryDirectory() as tmp:
        fails = check_dtypes(tmp) + check_folder(tmp, False) + check_folder(tmp, True)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
