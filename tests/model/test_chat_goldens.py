#!/usr/bin/env python3
"""The chat-template goldens (tests/data/chat/*.json, rendered by transformers through
tools/chat/make_goldens.py) must hold the very templates and bos/eos strings of the real model
files: ../shared/models/*/tokenizer_config.json and the default SmolLM2 GGUF's
tokenizer.chat_template. Guards against a golden going stale when a model file is replaced.
The renders themselves are checked byte for byte by tests/unit/chat_template_test.cc.
Exit 77 (skip) when none of the model files is present."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("NF_SOURCE_DIR", os.path.join(HERE, "..", ".."))
SHARED = os.environ.get("NF_SHARED_DIR", os.path.join(SOURCE, "..", "shared"))
DATA = os.path.join(SOURCE, "tests", "data", "chat")
SMOL_GGUF = os.path.join(SOURCE, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def token_str(t):
    # tokenizer_config.json may hold an AddedToken object instead of a string
    if isinstance(t, dict):
        return t.get("content")
    return t


def main():
    checked = 0
    failures = []
    for name in ("llama3", "llama31", "llama2", "mixtral", "qwen2", "smollm2"):
        with open(os.path.join(DATA, name + ".json"), encoding="utf-8") as f:
            golden = json.load(f)
        if len(golden["cases"]) < 40:
            failures.append(f"{name}: only {len(golden['cases'])} cases")
        if name == "smollm2":
            if not os.path.exists(SMOL_GGUF):
                continue
            from gguf import GGUFReader
            r = GGUFReader(SMOL_GGUF)
            src = r.fields["tokenizer.chat_template"].contents()
            tokens = r.fields["tokenizer.ggml.tokens"].contents()
            bos = tokens[r.fields["tokenizer.ggml.bos_token_id"].contents()]
            eos = tokens[r.fields["tokenizer.ggml.eos_token_id"].contents()]
        else:
            path = os.path.join(SHARED, golden["source_file"].removeprefix("shared/"))
            if not os.path.exists(path):
                continue
            with open(path, encoding="utf-8") as f:
                cfg = json.load(f)
            src, bos, eos = cfg["chat_template"], token_str(cfg.get("bos_token")), token_str(cfg.get("eos_token"))
        if src != golden["chat_template"]:
            failures.append(f"{name}: chat_template differs from {golden['source_file']}; rerun tools/chat/make_goldens.py")
        if bos != golden["bos_token"] or eos != golden["eos_token"]:
            failures.append(f"{name}: bos/eos {bos!r}/{eos!r} vs golden {golden['bos_token']!r}/{golden['eos_token']!r}")
        checked += 1
        print(f"{name}: template and special tokens match {golden['source_file']} ({len(golden['cases'])} cases, "
              f"transformers {golden['transformers_version']})")
    if failures:
        print("\n".join(failures))
        return 1
    if checked == 0:
        print("no model files present: skipped")
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
