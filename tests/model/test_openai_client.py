"""The official `openai` Python client against `nanoflow serve` on SmolLM2 (CPU backend) by default.

The model, backend and binary come from NF_TEST_MODEL / NF_TEST_SERVE_ARGS / NF_BIN (see
tools/soak/nf_server.py; tools/gpu/serve_check.sh runs this on the GPU against preset:llama3-8b).

Completions and chat, streaming and not, n=2, logprobs, stop, seed, include_usage; streamed text
equals non-streamed text (greedy); usage.prompt_tokens equals Hugging Face's count (golden made by
tools/soak/make_usage_golden.py with transformers) and our /tokenize; completion_tokens equals
the tokens the client received. Exit 77 (skipped) without the model or the binary.
"""
import json
import os
import sys
import unittest

SRC = os.environ.get("NF_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tools", "soak"))
from nf_server import (ServerProcess, find_binary, served_model_id, test_model, test_serve_args,  # noqa: E402
                       usage_golden_path)

try:
    import openai
except ImportError:  # pragma: no cover
    print("openai not installed: skipped")
    sys.exit(77)

KEY = "sk-test-key"
SERVER = None
MODEL = None


def setUpModule():
    global SERVER, MODEL
    SERVER = ServerProcess(find_binary(), test_model(), ["--max-model-len", "1024", "--max-running", "16",
                                                         *test_serve_args()], api_key=KEY)
    MODEL = SERVER.request("GET", "/v1/models").json()["data"][0]["id"]


def tearDownModule():
    if SERVER:
        code = SERVER.stop()
        SERVER.__exit__(None, None, None)
        assert code == 0, f"serve exited with {code}"


CLIENTS = []  # closed before each "nothing lost" check: their idle keep-alive connections hold server fds


def client(api_key=KEY):
    c = openai.OpenAI(base_url=f"http://127.0.0.1:{SERVER.port}/v1", api_key=api_key, max_retries=0, timeout=300)
    CLIENTS.append(c)
    return c


def golden():
    path = usage_golden_path(served_model_id(test_model()))
    if path is None:
        raise unittest.SkipTest("no usage golden for model %r: make one with tools/soak/make_usage_golden.py"
                                % served_model_id(test_model()))
    with open(path) as f:
        return json.load(f)


class OpenAIClient(unittest.TestCase):
    def tearDown(self):
        while CLIENTS:
            CLIENTS.pop().close()
        self.assertEqual(SERVER.nothing_lost(), "")

    def test_prefix_cache_hits_are_reported_as_cached_tokens(self):
        if "--no-prefix-caching" in test_serve_args():
            self.skipTest("prefix caching is off in this run (NF_TEST_SERVE_ARGS)")
        c = client()
        # A prompt of several full 16-token pages, sent twice: the second request reuses its pages.
        prompt = "Count the stars over the quiet harbour tonight, one by one, slowly. " * 8
        first = c.completions.create(model=MODEL, prompt=prompt, max_tokens=2, temperature=0)
        second = c.completions.create(model=MODEL, prompt=prompt, max_tokens=2, temperature=0)
        n = second.usage.prompt_tokens
        self.assertGreater(n, 48)
        cached = second.usage.prompt_tokens_details.cached_tokens
        self.assertGreaterEqual(cached, 16 * ((n - 1) // 16) - 16, (n, cached))
        self.assertLess(cached, n)  # the last prompt token is always computed
        self.assertEqual(cached % 16, 0)
        # Same text from cached pages: the CPU backend's kernels give every row the same result
        # whatever the batch shape. The GPU's do not promise that (cuBLASLt's algorithm is chosen per
        # power-of-two M bucket, and a one-token remainder goes to the decode kernel), so the
        # recomputed remainder may round differently and flip a near-tie of random weights.
        if "cuda" not in test_serve_args():
            self.assertEqual(first.choices[0].text, second.choices[0].text, (n, cached))

    def test_model_name_is_file_name(self):
        # "SmolLM2-135M-Instruct.Q4_1.gguf" by default; "preset:llama3-8b" for that preset.
        self.assertEqual(MODEL, served_model_id(test_model()))
        self.assertEqual([m.id for m in client().models.list().data], [MODEL])

    def test_completion_stream_equals_non_stream(self):
        c = client()
        for p in golden()["completions"][:2]:
            r = c.completions.create(model=MODEL, prompt=p["prompt"], max_tokens=12, temperature=0)
            self.assertEqual(r.object, "text_completion")
            self.assertTrue(r.id.startswith("cmpl-"))
            self.assertEqual(r.usage.prompt_tokens, p["prompt_tokens"])
            self.assertEqual(r.usage.completion_tokens + r.usage.prompt_tokens, r.usage.total_tokens)
            chunks = list(c.completions.create(model=MODEL, prompt=p["prompt"], max_tokens=12, temperature=0,
                                               stream=True, stream_options={"include_usage": True}))
            text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
            self.assertEqual(text, r.choices[0].text)
            self.assertTrue(len(text) > 0)
            finals = [ch.choices[0].finish_reason for ch in chunks if ch.choices]
            self.assertTrue(all(f is None for f in finals[:-1]))
            self.assertEqual(finals[-1], r.choices[0].finish_reason)
            self.assertEqual(chunks[-1].choices, [])
            self.assertEqual(chunks[-1].usage.prompt_tokens, p["prompt_tokens"])
            self.assertEqual(chunks[-1].usage.completion_tokens, r.usage.completion_tokens)

    def test_usage_prompt_tokens_match_references(self):
        c = client()
        for p in golden()["completions"]:
            ours = SERVER.request("POST", "/tokenize", {"prompt": p["prompt"]}).json()["count"]
            self.assertEqual(ours, p["prompt_tokens"], p["prompt"])
            r = c.completions.create(model=MODEL, prompt=p["prompt"], max_tokens=1, temperature=0)
            self.assertEqual(r.usage.prompt_tokens, p["prompt_tokens"], p["prompt"])
        for g in golden()["chat"]:
            r = c.chat.completions.create(model=MODEL, messages=g["messages"], max_tokens=1, temperature=0)
            self.assertEqual(r.usage.prompt_tokens, g["prompt_tokens"], g["messages"])

    def test_chat_text_parts_equal_the_joined_string(self):
        c = client()
        parts = [{"type": "text", "text": "Name a colour."}, {"type": "text", "text": "One word only."}]
        a = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": parts}],
                                      max_tokens=8, temperature=0)
        b = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Name a colour.\nOne word only."}],
                                      max_tokens=8, temperature=0)
        self.assertEqual(a.usage.prompt_tokens, b.usage.prompt_tokens)
        with self.assertRaises(openai.BadRequestError):
            c.chat.completions.create(model=MODEL, max_tokens=4, messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}])
        # Last: b reuses a's cached prompt pages, so this also needs greedy output that does not
        # depend on how much of the prompt was computed in the step (the GPU's GEMM shapes).
        self.assertEqual(a.choices[0].message.content, b.choices[0].message.content)

    def test_chat_stream_equals_non_stream(self):
        c = client()
        msgs = golden()["chat"][0]["messages"]
        r = c.chat.completions.create(model=MODEL, messages=msgs, max_tokens=16, temperature=0)
        self.assertEqual(r.object, "chat.completion")
        self.assertEqual(r.choices[0].message.role, "assistant")
        self.assertTrue(r.choices[0].message.content)
        chunks = list(c.chat.completions.create(model=MODEL, messages=msgs, max_tokens=16, temperature=0, stream=True,
                                                stream_options={"include_usage": True}))
        self.assertEqual(chunks[0].choices[0].delta.role, "assistant")
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        self.assertEqual(chunks[-1].usage.prompt_tokens, golden()["chat"][0]["prompt_tokens"])
        # Last (as above: a prompt of more than one page is a prefix-cache hit the second time).
        self.assertEqual(text, r.choices[0].message.content)
        self.assertEqual(chunks[-1].usage.completion_tokens, r.usage.completion_tokens)

    def test_n2_seed_and_logprobs(self):
        c = client()
        kw = dict(model=MODEL, prompt="Once upon a time", max_tokens=8, temperature=1.0, n=2, seed=1234, logprobs=2)
        a = c.completions.create(**kw)
        b = c.completions.create(**kw)
        self.assertEqual(sorted(ch.index for ch in a.choices), [0, 1])
        self.assertEqual([ch.text for ch in a.choices], [ch.text for ch in b.choices])  # seeded
        self.assertEqual(a.usage.completion_tokens, sum(len(ch.logprobs.tokens) for ch in a.choices))
        for ch in a.choices:
            self.assertEqual(len(ch.logprobs.tokens), len(ch.logprobs.token_logprobs))
            self.assertTrue(all(lp <= 0 for lp in ch.logprobs.token_logprobs))
            self.assertTrue(all(len(t) >= 1 for t in ch.logprobs.top_logprobs))
            if ch.finish_reason == "length":
                self.assertEqual(len(ch.logprobs.tokens), 8)
        # streamed n=2 with the same seed gives the same two texts
        texts = ["", ""]
        for chunk in c.completions.create(stream=True, **kw):
            for ch in chunk.choices:
                texts[ch.index] += ch.text
        self.assertEqual(texts, [ch.text for ch in a.choices])
        chat = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4,
                                         temperature=0, logprobs=True, top_logprobs=3)
        content = chat.choices[0].logprobs.content
        self.assertEqual(len(content), chat.usage.completion_tokens)
        self.assertEqual(len(content[0].top_logprobs), 3)

    def test_stop(self):
        c = client()
        full = c.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=16, temperature=0)
        text = full.choices[0].text
        words = [w for w in text.split(" ") if len(w) >= 2]
        self.assertTrue(words, text)
        stop = words[min(1, len(words) - 1)]
        cut = text.index(stop)
        r = c.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=16, temperature=0, stop=[stop])
        self.assertEqual(r.choices[0].text, text[:cut])
        self.assertEqual(r.choices[0].finish_reason, "stop")
        s = "".join(ch.choices[0].text for ch in c.completions.create(
            model=MODEL, prompt="The capital of France is", max_tokens=16, temperature=0, stop=[stop], stream=True)
            if ch.choices)
        self.assertEqual(s, text[:cut])

    def test_errors_surface_as_openai_errors(self):
        c = client()
        with self.assertRaises(openai.BadRequestError) as e:
            c.completions.create(model=MODEL, prompt="x", temperature=3)
        self.assertEqual(e.exception.body.get("param"), "temperature")
        with self.assertRaises(openai.NotFoundError):
            c.completions.create(model="gpt-4", prompt="x")
        bad = client(api_key="wrong")
        with self.assertRaises(openai.AuthenticationError):
            bad.models.list()


if __name__ == "__main__":
    if not find_binary() or not test_model():
        print("nanoflow binary or SmolLM2 model missing: skipped")
        sys.exit(77)
    unittest.main()
