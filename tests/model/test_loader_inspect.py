#!/usr/bin/env python3
"""`nanoflow inspect` on the default GGUF and on every config in ../shared/models: the numbers of
issue 2's acceptance (model cards: SmolLM2 135M, Llama-3-8B 8.03B, Mixtral-8x7B 46.7B, Qwen2-72B
72.7B, ...), and a clean refusal (exit != 0, file named) for a broken model path."""
import json
import os
import subprocess
import sys
import tempfile

SRC = os.environ.get("NF_SOURCE_DIR", ".")
SHARED = os.environ.get("NF_SHARED_DIR", os.path.join(SRC, "..", "shared"))
BIN = os.path.join(os.environ.get("NF_BUILD_DIR", "build"), "src", "nanoflow")
GGUF = os.path.join(SRC, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

# folder -> (architecture, parameters as printed)
EXPECTED = {
    "Meta-Llama-3-8B-Instruct": ("llama", "8.03B"),
    "Meta-Llama-3.1-8B-Instruct": ("llama", "8.03B"),
    "Meta-Llama-3-70B-Instruct": ("llama", "70.6B"),
    "Llama-2-7b-chat-hf": ("llama", "6.74B"),
    "Llama-2-70b-hf": ("llama", "69.0B"),
    "Mixtral-8x7B-Instruct-v0.1": ("mixtral", "46.7B"),
    "Qwen2-7B-Instruct": ("qwen2", "7.62B"),
    "Qwen2-72B-Instruct": ("qwen2", "72.7B"),
}


def inspect(path):
    out = subprocess.run([BIN, "inspect", "--json", path], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    fails = 0
    ran = 0
    if os.path.exists(GGUF):
        ran += 1
        j = inspect(GGUF)
        want = {"architecture": "llama", "layers": 30, "heads": 9, "kv_heads": 3, "hidden": 576,
                "vocab": 49152, "parameters_human": "135M", "tied_embeddings": True,
                "dtypes": {"f32": 61, "q4_1": 210, "q8_0": 1}, "kv_bytes_per_token_bf16": 2 * 30 * 192 * 2}
        bad = {k: (j.get(k), v) for k, v in want.items() if j.get(k) != v}
        print("default GGUF:", "ok" if not bad else bad)
        fails += bool(bad)
        # Weight bytes: the tensor data of the file, which is most of its size.
        size = os.path.getsize(GGUF)
        if not (0.9 * size < j["weight_bytes"] < size):
            print("weight bytes", j["weight_bytes"], "vs file", size); fails += 1
        text = subprocess.run([BIN, "inspect", GGUF], check=True, capture_output=True, text=True).stdout
        for needle in ("layers                 30", "kv heads               3", "parameters             135M"):
            if needle not in text:
                print("plain output lacks", repr(needle)); fails += 1
    for folder, (arch, params) in EXPECTED.items():
        path = os.path.join(SHARED, "models", folder)
        if not os.path.exists(os.path.join(path, "config.json")):
            continue
        ran += 1
        j = inspect(path)
        ok = j["architecture"] == arch and j["parameters_human"] == params and j["weights"] is False
        print(f"{folder:28s} {j['architecture']:8s} {j['parameters_human']:7s} {'ok' if ok else 'WRONG, want ' + arch + ' ' + params}")
        fails += not ok
    with tempfile.TemporaryDirectory() as tmp:
        bad = os.path.join(tmp, "broken.gguf")
        with open(bad, "wb") as f:
            f.write(b"GGUF\x03\x00\x00\x00" + b"\xff" * 16)
        r = subprocess.run([BIN, "inspect", bad], capture_output=True, text=True)
        ok = r.returncode != 0 and "broken.gguf" in r.stderr and "error" in r.stderr
        print("broken file refused:", "ok" if ok else (r.returncode, r.stderr))
        fails += not ok
    if ran == 0:
        print("no model files"); sys.exit(77)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
