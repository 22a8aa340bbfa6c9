#!/usr/bin/env python3
"""Writes the seed corpora of the loader's fuzz targets (fuzz/corpus/{safetensors,gguf,config_json}/).

Valid seeds come from the real writers (the `safetensors` and `gguf` PyPI packages) and the real
config.json files in ../shared/models; a few malformed variants give the fuzzer a head start on the
refusal paths. Small files only. Run: .venv/bin/python tools/loader/make_fuzz_corpus.py
"""
import json
import os
import struct
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
SHARED = os.path.join(ROOT, "..", "shared", "models")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors_seeds():
    from safetensors.numpy import save
    rng = np.random.default_rng(1)
    a = save({"w": rng.standard_normal((2, 3)).astype(np.float32)})
    write("safetensors", "f32_single.safetensors", a)
    write("safetensors", "mixed.safetensors", save({
        "a": rng.standard_normal((4,)).astype(np.float16),
        "b": np.arange(6, dtype=np.int64).reshape(2, 3),
        "c": np.array([True, False]),
        "d": np.arange(3, dtype=np.uint8),
        "e": rng.standard_normal((2, 2)).astype(np.float64),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }, metadata={"format": "pt"}))
    write("safetensors", "empty.safetensors", save({}))
    # Malformed: truncated data, header length past EOF, overlapping offsets.
    write("safetensors", "truncated.safetensors", a[:-1])
    write("safetensors", "len_past_eof.safetensors", struct.pack("<Q", 1 << 20) + a[8:])
    hdr = b'{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'
    write("safetensors", "overlap.safetensors", struct.pack("<Q", len(hdr)) + hdr + bytes(8))


def gguf_seeds():
    import gguf
    from gguf import GGMLQuantizationType as T
    rng = np.random.default_rng(2)
    with tempfile.TemporaryDirectory() as tmp:
        # A tiny llama: 1 layer, hidden 32, 2 heads, 1 kv head, vocab 8, all value types.
        p = os.path.join(tmp, "tiny.gguf")
        w = gguf.GGUFWriter(p, "llama")
        w.add_block_count(1)
        w.add_context_length(64)
        w.add_embedding_length(32)
        w.add_feed_forward_length(32)
        w.add_head_count(2)
        w.add_head_count_kv(1)
        w.add_layer_norm_rms_eps(1e-5)
        w.add_rope_freq_base(10000.0)
        w.add_vocab_size(8)
        w.add_uint8("t.u8", 7)
        w.add_int8("t.i8", -7)
        w.add_uint16("t.u16", 700)
        w.add_int16("t.i16", -700)
        w.add_int32("t.i32", -70000)
        w.add_uint64("t.u64", 1 << 40)
        w.add_int64("t.i64", -(1 << 40))
        w.add_float64("t.f64", 0.125)
        w.add_bool("t.bool", True)
        w.add_array("t.nested", [[1, 2], [3]])
        w.add_array("t.strs", ["a", "bc"])
        w.add_array("tokenizer.ggml.scores", [0.5, -1.0])
        hidden, kv = 32, 16
        def f32(*shape):
            return rng.standard_normal(shape).astype(np.float32)
        w.add_tensor("token_embd.weight", f32(8, hidden))
        w.add_tensor("output_norm.weight", f32(hidden))
        w.add_tensor("blk.0.attn_norm.weight", f32(hidden))
        w.add_tensor("blk.0.ffn_norm.weight", f32(hidden))
        w.add_tensor("blk.0.attn_q.weight", gguf.quants.quantize(f32(hidden, hidden), T.Q8_0), raw_dtype=T.Q8_0)
        w.add_tensor("blk.0.attn_k.weight", gguf.quants.quantize(f32(kv, hidden), T.Q4_0), raw_dtype=T.Q4_0)
        w.add_tensor("blk.0.attn_v.weight", f32(kv, hidden).astype(np.float16))
        w.add_tensor("blk.0.attn_output.weight", gguf.quants.quantize(f32(hidden, hidden), T.Q4_1), raw_dtype=T.Q4_1)
        w.add_tensor("blk.0.ffn_gate.weight", gguf.quants.quantize(f32(hidden, hidden), T.Q5_0), raw_dtype=T.Q5_0)
        w.add_tensor("blk.0.ffn_up.weight", gguf.quants.quantize(f32(hidden, hidden), T.Q5_1), raw_dtype=T.Q5_1)
        w.add_tensor("blk.0.ffn_down.weight", f32(hidden, hidden))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        data = open(p, "rb").read()
        write("gguf", "tiny_llama.gguf", data)
        # K-quant blocks (random bytes, finite f16 scales): one tensor each.
        p2 = os.path.join(tmp, "kquants.gguf")
        w = gguf.GGUFWriter(p2, "llama")
        for t in (T.Q4_K, T.Q5_K, T.Q6_K):
            nb = gguf.GGML_QUANT_SIZES[t][1]
            blk = rng.integers(0, 256, size=(1, nb), dtype=np.uint8)
            w.add_tensor(t.name.lower(), blk, raw_dtype=t)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        write("gguf", "kquants.gguf", open(p2, "rb").read())
    # Malformed: bad magic, version 1, one byte short, huge tensor count.
    write("gguf", "bad_magic.gguf", b"GGUX" + data[4:64])
    write("gguf", "v1.gguf", data[:4] + struct.pack("<I", 1) + data[8:64])
    write("gguf", "short.gguf", data[:-1])
    write("gguf", "huge_count.gguf", data[:8] + struct.pack("<Q", 1 << 62) + data[16:64])


def config_seeds():
    for name in sorted(os.listdir(SHARED)) if os.path.isdir(SHARED) else []:
        p = os.path.join(SHARED, name, "config.json")
        if os.path.exists(p):
            write("config_json", name + ".json", open(p, "rb").read())
    write("config_json", "index.json", json.dumps({
        "metadata": {"total_size": 16},
        "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                       "lm_head.weight": "model-00002-of-00002.safetensors"}}).encode())
    write("config_json", "smollm2.json", json.dumps({
        "model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
        "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
        "tie_word_embeddings": True, "rope_theta": 100000, "rms_norm_eps": 1e-5,
        "bos_token_id": 1, "eos_token_id": [2, 0], "head_dim": None}).encode())
    write("config_json", "bad_heads.json", b'{"model_type":"llama","vocab_size":8,"hidden_size":10,'
          b'"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":3}')


if __name__ == "__main__":
    safetensors_seeds()
    gguf_seeds()
    config_seeds()
    for t in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, t))
        print(t, len(files), "files", sum(os.path.getsize(os.path.join(CORPUS, t, f)) for f in files), "bytes")
    sys.exit(0)
