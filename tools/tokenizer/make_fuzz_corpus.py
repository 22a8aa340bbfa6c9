#!/usr/bin/env python3
"""Seeds for fuzz/corpus/tokenizer_json/: the real tokenizer.json files of ../shared/models cut down
to a small vocabulary (first N ids, the merges among them, added tokens renumbered after them) so
each seed keeps its file's exact normalizer / pre_tokenizer / decoder / post_processor, plus a few
hand-made variants (other Split behaviors, Digits, regex Replace).

    python tools/tokenizer/make_fuzz_corpus.py [SHARED_MODELS] [OUT_DIR]"""
import copy
import json
import os
import sys


def shrink(j, n):
    m = j["model"]
    vocab = {t: i for t, i in m["vocab"].items() if i < n}
    merges = []
    for mg in m["merges"]:
        a, b = mg.split(" ") if isinstance(mg, str) else mg
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(f"{a} {b}")
    out = copy.deepcopy({k: v for k, v in j.items() if k != "model"})
    out["model"] = dict(m, vocab=vocab, merges=merges)
    if m.get("unk_token") and m["unk_token"] not in vocab:
        out["model"]["unk_token"] = None
    renum, nxt = {}, n
    added = []
    for a in j.get("added_tokens", [])[:8]:
        a = dict(a)
        if a["content"] in vocab:
            a["id"] = vocab[a["content"]]
        else:
            renum[a["id"]] = nxt
            a["id"] = nxt
            nxt += 1
        added.append(a)
    out["added_tokens"] = added
    text = json.dumps(out, ensure_ascii=False)
    for old, new in renum.items():  # post-processor ids of renumbered special tokens
        text = text.replace(f"[{old}]", f"[{new}]")
    return json.loads(text)


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "models")
    out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "..", "fuzz", "corpus", "tokenizer_json")
    os.makedirs(out_dir, exist_ok=True)
    seeds = {}
    for name, n in [("Meta-Llama-3-8B-Instruct", 400), ("Qwen2-7B-Instruct", 400), ("Llama-2-7b-chat-hf", 400),
                    ("Mixtral-8x7B-Instruct-v0.1", 300)]:
        with open(os.path.join(shared, name, "tokenizer.json"), encoding="utf-8") as f:
            seeds[name] = shrink(json.load(f), n)
    base = seeds["Meta-Llama-3-8B-Instruct"]
    for behavior in ["Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"]:
        v = copy.deepcopy(base)
        v["pre_tokenizer"]["pretokenizers"][0]["behavior"] = behavior
        v["pre_tokenizer"]["pretokenizers"][0]["invert"] = behavior == "Removed"
        seeds["split_" + behavior] = v
    v = copy.deepcopy(base)
    v["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                                                 {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
    seeds["digits_bytelevel"] = v
    v = copy.deepcopy(seeds["Llama-2-7b-chat-hf"])
    v["normalizer"]["normalizers"].append({"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "})
    seeds["spm_regex_replace"] = v
    v = copy.deepcopy(base)
    v["model"]["merges"] = [m.split(" ") for m in v["model"]["merges"]]  # the newer [a, b] merge form
    seeds["merges_pairs"] = v
    for name, j in seeds.items():
        with open(os.path.join(out_dir, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(j, f, ensure_ascii=False)
    print(f"wrote {len(seeds)} seeds to {out_dir}")


if __name__ == "__main__":
    main()
