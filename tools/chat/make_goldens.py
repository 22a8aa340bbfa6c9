#!/usr/bin/env python3
"""Golden chat-template renders from Hugging Face transformers, for tests/unit/chat_template_test.cc.

Run with the reference environment (transformers, jinja2, gguf; not needed by CI):
    /work/venv-ref/bin/python tools/chat/make_goldens.py [--shared ../shared] [--gguf models/...gguf]

Writes tests/data/chat/<template>.json: the template source, bos/eos strings, and for every
conversation the rendered prompt of `tokenizer.apply_chat_template(messages, tokenize=False,
add_generation_prompt=...)`, or the error it raised. Also writes tests/data/chat/jinja_features.json:
small templates rendered by the very Jinja environment apply_chat_template compiles templates with
(transformers.utils.chat_template_utils._compile_jinja_template), to pin the interpreter's semantics
feature by feature. Files record the transformers and jinja2 versions.
"""
import argparse
import json
import os
import sys

import jinja2
import transformers
from transformers import AutoTokenizer
from transformers.utils.chat_template_utils import _compile_jinja_template

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HF_TEMPLATES = {
    # golden name: folder under shared/models
    "llama3": "Meta-Llama-3-8B-Instruct",
    "llama31": "Meta-Llama-3.1-8B-Instruct",
    "llama2": "Llama-2-7b-chat-hf",
    "mixtral": "Mixtral-8x7B-Instruct-v0.1",
    "qwen2": "Qwen2-7B-Instruct",
}


def U(c):
    return {"role": "user", "content": c}


def A(c):
    return {"role": "assistant", "content": c}


def S(c):
    return {"role": "system", "content": c}


LONG = ("The quick brown fox jumps over the lazy dog. " * 60).strip()

# (name, messages, extra template kwargs)
CONVERSATIONS = [
    ("user_only", [U("Hello!")], {}),
    ("system_user", [S("You are a helpful assistant."), U("What is 2+2?")], {}),
    ("system_user_assistant", [S("Be brief."), U("Hi"), A("Hello! How can I help?")], {}),
    ("multi_turn", [U("Hi"), A("Hello."), U("Tell me a joke.")], {}),
    ("multi_turn_system", [S("sys"), U("one"), A("two"), U("three"), A("four"), U("five")], {}),
    ("ends_with_assistant", [U("Question?"), A("Answer.")], {}),
    ("empty_user", [U("")], {}),
    ("empty_system", [S(""), U("hi")], {}),
    ("empty_assistant", [U("hi"), A(""), U("again")], {}),
    ("unicode", [S("Réponds en français 🇫🇷"), U("héllo 世界 🌍 — ñ ü ß Ωμέγα")], {}),
    ("padded_whitespace", [S("  sys with spaces  \n"), U("\n\n  user text \t "), A("  reply  ")], {}),
    ("unicode_whitespace", [U("\u3000wide space\u00a0and nbsp\u2003"), A("\u200bzero width\u200b")], {}),
    ("newlines_inside", [U("line one\nline two\n\nline four"), A("a\nb")], {}),
    ("crlf", [U("windows\r\nline\rbreaks")], {}),
    ("special_token_text", [U("literal <|eot_id|> <|im_end|> </s> [INST] tokens")], {}),
    ("jinja_like_text", [U("{{ not a tag }} {% if x %} {# c #}")], {}),
    ("quotes_backslashes", [U("She said \"hi\" and 'bye' \\ back\\slash \\n")], {}),
    ("long_content", [S("Summarize."), U(LONG)], {}),
    ("two_users", [U("first"), U("second")], {}),
    ("assistant_first", [A("I start."), U("ok")], {}),
    ("system_only", [S("Only a system message.")], {}),
    ("empty_conversation", [], {}),
    ("tool_role", [U("weather?"), {"role": "tool", "content": "sunny"}], {}),
    ("system_in_middle", [U("hi"), S("late system"), U("there")], {}),
    ("extra_keys", [{"role": "user", "content": "named", "name": "bob"}], {}),
    ("none_content", [U("hi"), {"role": "assistant", "content": None}], {}),
    ("content_parts", [{"role": "user", "content": [{"type": "text", "text": "part one"}]}], {}),
    ("tabs_and_controls", [U("tab\there\x01\x7f end")], {}),
]

LLAMA31_EXTRA = [
    ("date_string", [S("sys"), U("What day is it?")], {"date_string": "01 Jan 2025"}),
    ("tools_in_user", [S("sys"), U("Weather in Paris?")], {"tools": [
        {"type": "function", "function": {"name": "get_weather", "description": "Get the weather",
                                          "parameters": {"type": "object", "properties": {
                                              "city": {"type": "string", "description": "City name"}},
                                              "required": ["city"]}}}]}),
    ("tools_in_system", [U("Weather in Paris?")], {"tools_in_user_message": False, "tools": [
        {"name": "f", "parameters": {"x": 1.5, "y": [True, None, "é"]}}]}),
    ("tool_call_roundtrip", [
        U("Weather in Paris?"),
        {"role": "assistant", "tool_calls": [{"type": "function", "function": {
            "name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}}]},
        {"role": "tool", "content": "22 degrees"},
        {"role": "ipython", "content": {"temp": 22}},
    ], {}),
    ("two_tool_calls", [U("x"), {"role": "assistant", "tool_calls": [
        {"function": {"name": "a", "arguments": {}}}, {"function": {"name": "b", "arguments": {}}}]}], {}),
    ("builtin_tools", [S("sys"), U("search it"),
                       {"role": "assistant", "tool_calls": [{"function": {
                           "name": "brave_search", "arguments": {"query": "nanoflow"}}}]}],
     {"builtin_tools": ["brave_search", "code_interpreter", "wolfram_alpha"]}),
    ("tools_no_user", [S("sys")], {"tools": [{"name": "f"}]}),
]


def render_cases(tok, conversations, chat_template=None, special=None):
    cases = []
    for name, messages, extra in conversations:
        for gen in (False, True):
            case = {"name": f"{name}{'+gen' if gen else ''}", "messages": messages,
                    "add_generation_prompt": gen}
            if extra:
                case["extra"] = extra
            kwargs = dict(extra)
            if special:
                kwargs.update(special)
            try:
                out = tok.apply_chat_template(json.loads(json.dumps(messages)), tokenize=False,
                                              add_generation_prompt=gen, chat_template=chat_template,
                                              **kwargs)
                case["expected"] = out
            except Exception as e:  # the expected outcome is an error; ours must error too
                case["error"] = {"type": type(e).__name__, "message": str(e)}
            cases.append(case)
    return cases


def write(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote", path, file=sys.stderr)


def header():
    return {"generator": "tools/chat/make_goldens.py",
            "transformers_version": transformers.__version__,
            "jinja2_version": jinja2.__version__}


def smollm_template(gguf_path):
    from gguf import GGUFReader
    r = GGUFReader(gguf_path)
    src = r.fields["tokenizer.chat_template"].contents()
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    bos = tokens[r.fields["tokenizer.ggml.bos_token_id"].contents()]
    eos = tokens[r.fields["tokenizer.ggml.eos_token_id"].contents()]
    return src, bos, eos


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(ROOT), "shared"))
    ap.add_argument("--gguf", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "chat"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    qwen_tok = None
    for name, folder in HF_TEMPLATES.items():
        tok = AutoTokenizer.from_pretrained(os.path.join(args.shared, "models", folder))
        if name == "qwen2":
            qwen_tok = tok
        convs = CONVERSATIONS + (LLAMA31_EXTRA if name == "llama31" else [])
        obj = header()
        obj.update({"template": name, "source_file": f"shared/models/{folder}/tokenizer_config.json",
                    "chat_template": tok.chat_template, "bos_token": tok.bos_token,
                    "eos_token": tok.eos_token, "cases": render_cases(tok, convs)})
        write(os.path.join(args.out, f"{name}.json"), obj)

    # SmolLM2: the template lives in the GGUF metadata; apply_chat_template with that template and
    # the GGUF's bos/eos strings (special tokens are ordinary kwargs of the render).
    src, bos, eos = smollm_template(args.gguf)
    obj = header()
    obj.update({"template": "smollm2", "source_file": "models/SmolLM2-135M-Instruct.Q4_1.gguf",
                "chat_template": src, "bos_token": bos, "eos_token": eos,
                "cases": render_cases(qwen_tok, CONVERSATIONS, chat_template=src,
                                      special={"bos_token": bos, "eos_token": eos})})
    write(os.path.join(args.out, "smollm2.json"), obj)

    from jinja_features import FEATURES
    from jinja_random import random_templates
    from jinja_random_expr import random_expressions

    def render_features(features, file_name):
        cases = []
        for name, src, ctx in features:
            case = {"name": name, "template": src, "context": ctx}
            try:
                # A fresh copy per render: some Jinja filters mutate their input in place
                # (indent does `s += "\n"`, which extends a list).
                case["expected"] = _compile_jinja_template(src).render(**json.loads(json.dumps(ctx)))
            except Exception as e:
                case["error"] = {"type": type(e).__name__, "message": str(e)}
            cases.append(case)
        obj = header()
        obj.update({"environment": "transformers.utils.chat_template_utils._compile_jinja_template",
                    "cases": cases})
        write(os.path.join(args.out, file_name), obj)
        return cases

    cases = render_features(FEATURES, "jinja_features.json")
    render_features(random_templates(), "jinja_random.json")
    render_features(random_expressions(), "jinja_random_expr.json")

    # Seeds for the fuzz target (fuzz/fuzz_jinja.cc): every template above, one file each.
    corpus = os.path.join(ROOT, "fuzz", "corpus", "jinja")
    os.makedirs(corpus, exist_ok=True)
    seeds = [(f"tpl_{n}", json.load(open(os.path.join(args.out, n + ".json")))["chat_template"])
             for n in list(HF_TEMPLATES) + ["smollm2"]]
    seeds += [(f"feat_{c['name']}", c["template"]) for c in cases]
    for name, src in seeds:
        with open(os.path.join(corpus, name), "w", encoding="utf-8") as f:
            f.write(src)
    print("wrote", len(seeds), "fuzz seeds to", corpus, file=sys.stderr)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
