#!/usr/bin/env python3
"""Pipeline variants vs HF `tokenizers`, without model files: every seed of fuzz/corpus/tokenizer_json/
(the real files' pipelines on a cut vocabulary, plus Split behaviors / invert, Digits, a regex
Replace normalizer, [a, b] merges) is loaded by HF and by `nanoflow tokenize`, and both encode
2,000 generated corpus lines (tools/tokenizer/make_corpus.py, no sweep) to the same ids and decode
them to the same text."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("NF_SOURCE_DIR", os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("NF_BUILD_DIR", os.path.join(SOURCE, "build"))
sys.path.insert(0, os.path.join(SOURCE, "tools", "tokenizer"))

import make_corpus  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402


def main():
    nanoflow = os.path.join(BUILD, "src", "nanoflow")
    seeds_dir = os.path.join(SOURCE, "fuzz", "corpus", "tokenizer_json")
    assert os.path.exists(nanoflow), f"{nanoflow} not built"
    seeds = sorted(f for f in os.listdir(seeds_dir) if f.endswith(".json"))
    assert len(seeds) >= 8, seeds
    lines = make_corpus.make(2000, 7, with_sweep=False)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus.jsonl")
        with open(corpus, "w", encoding="utf-8") as f:
            for s in lines:
                f.write(json.dumps(s, ensure_ascii=False) + "\n")
        for seed in seeds:
            d = os.path.join(tmp, seed[:-5])
            os.makedirs(d)
            shutil.copy(os.path.join(seeds_dir, seed), os.path.join(d, "tokenizer.json"))
            ref = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
            out = subprocess.run([nanoflow, "tokenize", d, "--file", corpus, "--jsonl", "--json"],
                                 check=True, capture_output=True).stdout.decode()
            got = [json.loads(l) for l in out.split("\n") if l]
            encs = ref.encode_batch(lines, add_special_tokens=True)
            bad = 0
            for i, (e, o) in enumerate(zip(encs, got)):
                ok = o.get("ids") == e.ids and o.get("decoded") == ref.decode(e.ids, skip_special_tokens=False)
                if not ok:
                    bad += 1
                    if bad <= 3:
                        print(f"  {seed} line {i} {lines[i][:60]!r}\n    hf   {e.ids[:20]}\n    ours {o.get('ids', o)}")
            print(f"{seed}: {len(lines) - bad}/{len(lines)} identical")
            failures += bad + (len(got) != len(lines))
    print("FAILED" if failures else "OK")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
