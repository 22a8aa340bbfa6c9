"""Golden prompt-token counts for the server's usage tests, from Hugging Face transformers.

Run with /work/venv-ref/bin/python (has transformers; CI does not):
    python tools/soak/make_usage_golden.py models/SmolLM2-135M-Instruct.Q4_1.gguf tests/data/server/usage_golden.json
    python tools/soak/make_usage_golden.py ../shared/models/Meta-Llama-3-8B-Instruct \
        tests/data/server/usage_golden.preset_llama3-8b.json
The first argument is a .gguf file or an HF folder (tokenizer.json + tokenizer_config.json); the
tests pick the golden by the served model id (tools/soak/nf_server.py usage_golden_path()).
Completions prompts are tokenized as tokenizer(prompt) (add_special_tokens=True); chat prompts as
apply_chat_template(messages, add_generation_prompt=True, tokenize=True), which is what the OpenAI
usage.prompt_tokens of a server that follows transformers must equal.
"""
import json
import os
import sys

import transformers
from transformers import AutoTokenizer

COMPLETIONS = [
    "The capital of France is",
    "Once upon a time, in a land far away,",
    "def fibonacci(n):",
    "Zürich, Köln und Straße — naïve café 東京 🙂",
]
CHATS = [
    [{"role": "user", "content": "What is 2 + 2?"}],
    [{"role": "system", "content": "You are a terse assistant."},
     {"role": "user", "content": "Name three colors."}],
    [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Tell me a joke about cats."}],
]


def main():
    gguf, out = sys.argv[1], sys.argv[2]
    if os.path.isdir(gguf):
        tok = AutoTokenizer.from_pretrained(os.path.abspath(gguf))
    else:
        tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(gguf)), gguf_file=os.path.basename(gguf))
    golden = {
        "source": f"transformers {transformers.__version__}, tokenizer from {os.path.basename(gguf.rstrip('/'))}",
        "vocab_size": len(tok),
        "completions": [{"prompt": p, "prompt_tokens": len(tok(p)["input_ids"])} for p in COMPLETIONS],
        "chat": [],
    }
    for m in CHATS:
        ids = tok.apply_chat_template(m, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        golden["chat"].append({"messages": m, "prompt_tokens": len(ids)})
    with open(out, "w") as f:
        json.dump(golden, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
