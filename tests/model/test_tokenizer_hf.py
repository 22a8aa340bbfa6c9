#!/usr/bin/env python3
"""Our tokenizers vs Hugging Face `tokenizers` (the reference) on a generated corpus of >10,000 lines
(tools/tokenizer/make_corpus.py: English, code, CJK, emoji, combining marks, whitespace runs,
digits, special-token strings, random valid UTF-8, a sweep over Unicode planes 0-3 and 14), plus
llama.cpp's tokenizer expectation files (../shared/models/tokenizer-tests).

For every tokenizer present: `nanoflow tokenize MODEL --file corpus.jsonl --jsonl --json` must give
the same ids as the reference with add_special_tokens=False (and =True on a slice), and the same
decode(ids) (skip_special_tokens=False), and the same text again when streamed id by id through
IncrementalDetokenizer with every chunk valid UTF-8 -- so decode(encode(x)) == x wherever HF's round-trips.
Exit 77 (skip) when ../shared or the model files are absent."""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("NF_SOURCE_DIR", os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("NF_BUILD_DIR", os.path.join(SOURCE, "build"))
SHARED = os.environ.get("NF_SHARED_DIR", os.path.join(SOURCE, "..", "shared"))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SOURCE, "tools", "tokenizer"))

import make_corpus  # noqa: E402
import tokenizer_reference  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

MODELS = os.path.join(SHARED, "models")
SMOL_GGUF = os.path.join(SOURCE, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
SPM_GGUF = os.path.join(MODELS, "tokenizer-tests", "ggml-vocab-llama-spm.gguf")
LLAMA2 = os.path.join(MODELS, "Llama-2-7b-chat-hf")

# (our model path, reference loader)
CASES = [(os.path.join(MODELS, m), None) for m in
         ["Meta-Llama-3-8B-Instruct", "Meta-Llama-3.1-8B-Instruct", "Qwen2-7B-Instruct", "Llama-2-7b-chat-hf",
          "Mixtral-8x7B-Instruct-v0.1"]]
CASES += [(SMOL_GGUF, None), (SPM_GGUF, LLAMA2)]
# llama.cpp expectation files: (.inp/.out prefix, our model path)
LLAMACPP = [("ggml-vocab-llama-spm.gguf", SPM_GGUF), ("ggml-vocab-llama-spm.gguf", LLAMA2),
            ("ggml-vocab-llama-bpe.gguf", os.path.join(MODELS, "Meta-Llama-3-8B-Instruct")),
            ("ggml-vocab-qwen2.gguf", os.path.join(MODELS, "Qwen2-7B-Instruct"))]


def present(path):
    return os.path.exists(os.path.join(path, "tokenizer.json")) if not path.endswith(".gguf") else os.path.exists(path)


def ours(nanoflow, model, corpus, add_special):
    cmd = [nanoflow, "tokenize", model, "--file", corpus, "--jsonl", "--json", "--stream"] + ([] if add_special else ["--no-special"])
    out = subprocess.run(cmd, check=True, capture_output=True).stdout.decode("utf-8")
    return [json.loads(l) for l in out.split("\n") if l]


def write_jsonl(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        for s in lines:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")


def compare(name, ref, got, lines, add_special):
    bad = 0
    encs = ref.encode_batch(lines, add_special_tokens=add_special)
    roundtrip = 0
    for i, (text, e, o) in enumerate(zip(lines, encs, got)):
        if "error" in o or o["ids"] != e.ids:
            bad += 1
            if bad <= 5:
                print(f"  {name}: line {i} {text[:80]!r}\n    hf   {e.ids[:30]}\n    ours {o.get('ids', o.get('error'))[:30]}")
            continue
        d = ref.decode(e.ids, skip_special_tokens=False)
        if d != o["decoded"]:
            bad += 1
            if bad <= 5:
                print(f"  {name}: decode of line {i}: hf {d[:60]!r} ours {o['decoded'][:60]!r}")
        elif o["streamed"] != d or not o["chunks_valid_utf8"]:
            bad += 1
            if bad <= 5:
                print(f"  {name}: streaming of line {i}: {o['streamed'][:60]!r} vs {d[:60]!r} valid={o['chunks_valid_utf8']}")
        roundtrip += d == text
    assert len(got) == len(lines), f"{name}: {len(got)} outputs for {len(lines)} lines"
    print(f"{name} (add_special_tokens={add_special}): {len(lines) - bad}/{len(lines)} identical; "
          f"decode(encode(x)) == x on {roundtrip} lines")
    return bad


def main():
    nanoflow = os.path.join(BUILD, "src", "nanoflow")
    if not os.path.isdir(MODELS):
        print("skip: no ../shared/models")
        return 77
    cases = [(m, r) for m, r in CASES if present(m) and (r is None or present(r))]
    if not cases:
        print("skip: no tokenizer files")
        return 77
    assert os.path.exists(nanoflow), f"{nanoflow} not built"
    lines = make_corpus.make(10000, 20261127)
    assert len(lines) >= 10000
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus.jsonl")
        write_jsonl(corpus, lines)
        sl = lines[:500]
        small = os.path.join(tmp, "small.jsonl")
        write_jsonl(small, sl)
        for model, ref_path in cases:
            name = os.path.basename(model)
            ref = tokenizer_reference.load(ref_path or model)
            if ref_path and model.endswith(".gguf"):
                # The SPM GGUF must hold exactly the reference's vocabulary for the comparison to mean anything.
                from gguf import GGUFReader
                toks = tokenizer_reference.gguf_field(GGUFReader(model), "tokenizer.ggml.tokens")
                assert toks == [ref.id_to_token(i) for i in range(len(toks))], "GGUF vocab differs from reference"
            failures += compare(name, ref, ours(nanoflow, model, corpus, False), lines, False)
            failures += compare(name, ref, ours(nanoflow, model, small, True), sl, True)
        tests_dir = os.path.join(MODELS, "tokenizer-tests")
        for prefix, model in LLAMACPP:
            inp = os.path.join(tests_dir, prefix + ".inp")
            if not (os.path.exists(inp) and present(model)):
                continue
            with open(inp, encoding="utf-8") as f:
                texts = f.read().split("\n__ggml_vocab_test__\n")[:-1]
            with open(os.path.join(tests_dir, prefix + ".out"), encoding="utf-8") as f:
                want = [[int(x) for x in l.split()] for l in f.read().split("\n")[:len(texts)]]
            p = os.path.join(tmp, "llamacpp.jsonl")
            write_jsonl(p, texts)
            got = ours(nanoflow, model, p, False)
            bad = [i for i, (g, w) in enumerate(zip(got, want)) if g.get("ids") != w]
            print(f"llama.cpp {prefix} with {os.path.basename(model)}: {len(texts) - len(bad)}/{len(texts)} identical")
            for i in bad[:5]:
                print(f"  {texts[i]!r}: want {want[i]} got {got[i]}")
            failures += len(bad)
    print("FAILED" if failures else "OK")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
