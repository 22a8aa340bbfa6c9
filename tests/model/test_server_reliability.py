"""RELIABILITY.md "API validation", "Cancellation and shutdown" and "Security" against a running
`nanoflow serve` on SmolLM2 (CPU backend by default), over raw HTTP. Every case expects its exact status and
the OpenAI error envelope, then the "nothing lost" check (KV pages at baseline, no live request,
no handler running, threads/fds flat, a follow-up request succeeds). Exit 77 without model/binary.

The model, backend and binary come from NF_TEST_MODEL / NF_TEST_SERVE_ARGS / NF_BIN (see
tools/soak/nf_server.py; tools/gpu/serve_check.sh runs this on the GPU against preset:llama3-8b).
NF_CANCEL_COUNT sets test_random_cancellations' request count (1000).
"""
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import unittest

SRC = os.environ.get("NF_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tools", "soak"))
from nf_server import (ServerProcess, find_binary, served_model_id, test_model, test_serve_args,  # noqa: E402
                       usage_golden_path)

KEY = "sk-Reliability-42"
CTX = 512
S = None  # the shared server (with an API key)


def serve(args, api_key=None):
    """`nanoflow serve` on the test model with `args` + NF_TEST_SERVE_ARGS."""
    return ServerProcess(find_binary(), test_model(), [*args, *test_serve_args()], api_key=api_key)


def vocab_size():
    """The tokenizer's id count: 49152 for SmolLM2; from the model's usage golden otherwise."""
    path = usage_golden_path(served_model_id(test_model()))
    if path is not None:
        with open(path) as f:
            v = json.load(f).get("vocab_size")
        if v:
            return v
    return 49152


def setUpModule():
    global S
    S = serve(["--max-model-len", str(CTX), "--max-running", "16", "--max-queued", "512",
               "--max-body-bytes", "1048576"], api_key=KEY)


def tearDownModule():
    if S:
        S.__exit__(None, None, None)


def finished(m, reason):
    return m.get('nanoflow_engine_finished_total{reason="%s"}' % reason, 0)


def raw_post(srv, path, body_bytes, key=KEY, extra=b""):
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body_bytes)}\r\n").encode()
    if key:
        head += f"Authorization: Bearer {key}\r\n".encode()
    return srv.raw(head + extra + b"\r\n" + body_bytes)


def parse_raw(resp):
    head, _, body = resp.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else -1
    return status, head.decode(errors="replace"), body


class Validation(unittest.TestCase):
    def expect(self, path, body, status, param="*", check_lost=True):
        t0 = time.time()
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        st, head, raw = parse_raw(raw_post(S, path, body))
        self.assertLess(time.time() - t0, 5.0, "refusal was slow")
        self.assertEqual(st, status, f"{path} {body[:120]!r}: {raw[:300]!r}")
        err = json.loads(raw)["error"]
        self.assertIsInstance(err["message"], str)
        self.assertTrue(err["message"])
        self.assertIn("type", err)
        self.assertIn("code", err)
        if param != "*":
            self.assertEqual(err["param"], param, raw[:300])
        if check_lost:
            self.assertEqual(S.nothing_lost(), "")
        return err

    def test_context_length(self):
        n = S.request("POST", "/tokenize", {"prompt": "hello " * 600}).json()["count"]
        self.assertGreaterEqual(n, CTX)
        err = self.expect("/v1/completions", {"prompt": "hello " * 600}, 400, "prompt")
        self.assertIn(str(n), err["message"])
        self.assertIn(str(CTX), err["message"])
        short = "hello " * 100
        k = S.request("POST", "/tokenize", {"prompt": short}).json()["count"]
        self.expect("/v1/completions", {"prompt": short, "max_tokens": CTX - k + 1}, 400, "max_tokens")
        for v in (0, -1, 2 ** 63, 2 ** 31):
            self.expect("/v1/completions", {"prompt": "a", "max_tokens": v}, 400, "max_tokens")
        self.expect("/v1/chat/completions", {"messages": [{"role": "user", "content": short}],
                                             "max_completion_tokens": CTX}, 400, "max_tokens")

    def test_sampling_ranges(self):
        for v in ("-0.1", "2.1", "1e309"):
            self.expect("/v1/completions", '{"prompt": "a", "temperature": %s}' % v, 400, "temperature")
        for v in (0, 1.0001):
            self.expect("/v1/completions", {"prompt": "a", "top_p": v}, 400, "top_p")
        for v in (-2, 1.5):
            self.expect("/v1/completions", {"prompt": "a", "top_k": v}, 400, "top_k")
        for v in (0, 17, 10 ** 12):
            self.expect("/v1/completions", {"prompt": "a", "n": v}, 400, "n")
        self.expect("/v1/completions", {"prompt": "a", "stop": [""]}, 400, "stop")
        self.expect("/v1/completions", {"prompt": "a", "logprobs": 21}, 400, "logprobs")
        self.expect("/v1/chat/completions", {"messages": [{"role": "user", "content": "a"}], "logprobs": True,
                                             "top_logprobs": 21}, 400, "top_logprobs")

    def test_accepted_edges(self):
        for extra in ({"temperature": 0}, {"top_p": 1}, {"top_k": 0}, {"top_k": -1}):
            r = S.request("POST", "/v1/completions", dict(prompt="Hi", max_tokens=2, **extra))
            self.assertEqual(r.status, 200, (extra, r.body[:200]))
        self.assertEqual(S.nothing_lost(), "")

    def test_malformed(self):
        for b in (b"{", b'{"prompt": "a"', b'"s"', b"[1]", b"null", b"", b'{"prompt": "\xff\xfe"}',
                  b'{"prompt": "\\ud800"}', b'{"prompt": "a\\udc00"}'):
            self.expect("/v1/completions", b, 400)
        self.expect("/v1/completions", {"prompt": 5}, 400, "prompt")
        self.expect("/v1/completions", {"prompt": "a", "max_tokens": "3"}, 400, "max_tokens")
        self.expect("/v1/chat/completions", {"messages": "hi"}, 400, "messages")
        self.expect("/v1/completions", {"prompt": "a", "model": "gpt-4"}, 404, "model")
        self.expect("/v1/completions", {"prompt": ""}, 400, "prompt")
        self.expect("/v1/chat/completions", {"messages": []}, 400, "messages")
        vocab = vocab_size()
        self.expect("/v1/completions", {"prompt": [1, -1]}, 400, "prompt")
        self.expect("/v1/completions", {"prompt": [1, vocab]}, 400, "prompt")
        r = S.request("POST", "/v1/completions", {"prompt": [1, vocab - 1], "max_tokens": 1})
        self.assertEqual(r.status, 200, r.body[:200])

    def test_huge_counts_are_fast(self):
        self.expect("/v1/completions", {"prompt": "a", "stop": ["s%d" % i for i in range(10000)]}, 400, "stop")
        self.expect("/v1/completions", {"prompt": "a", "n": 2 ** 62}, 400, "n")
        self.expect("/v1/completions", {"prompt": "a", "max_tokens": 2 ** 63}, 400, "max_tokens")

    def test_oversized_body_413_without_reading(self):
        head = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + KEY.encode() + b"\r\nContent-Length: 100000000\r\n\r\n{")
        t0 = time.time()
        st, _, body = parse_raw(S.raw(head, timeout=10, until=b"}}"))
        self.assertEqual(st, 413, body)
        self.assertLess(time.time() - t0, 3)
        self.assertEqual(json.loads(body)["error"]["code"], "payload_too_large")
        self.assertEqual(S.nothing_lost(), "")


class Security(unittest.TestCase):
    def test_key_needed_everywhere_but_health(self):
        routes = [("GET", "/v1/models"), ("POST", "/v1/completions"), ("POST", "/v1/chat/completions"),
                  ("POST", "/tokenize"), ("POST", "/detokenize"), ("GET", "/ready"), ("GET", "/metrics"),
                  ("GET", "/version"), ("GET", "//v1/models"), ("GET", "/v1/../v1/models"), ("GET", "/v1%2Fmodels"),
                  ("POST", "//v1/completions"), ("POST", "/v1%2Fcompletions"), ("GET", "//health"),
                  ("GET", "/health/../metrics"), ("GET", "/nowhere")]
        keys = [None, "Bearer wrong", "Bearer " + KEY.lower(), "Bearer " + KEY.upper(), KEY, "Bearer " + KEY + "x"]
        for method, path in routes:
            for k in keys:
                h = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                if k:
                    h += f"Authorization: {k}\r\n"
                body = b'{"prompt": "a"}' if method == "POST" else b""
                if method == "POST":
                    h += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                st, head, raw = parse_raw(S.raw(h.encode() + b"\r\n" + body))
                self.assertEqual(st, 401, (method, path, k, raw[:200]))
                self.assertEqual(json.loads(raw)["error"]["type"], "authentication_error")
        self.assertEqual(S.request("GET", "/health", auth=False).status, 200)
        self.assertEqual(S.request("GET", "/v1/models").status, 200)
        self.assertEqual(S.nothing_lost(), "")

    def test_no_cors_headers(self):
        r = S.request("GET", "/v1/models", headers={"Origin": "http://evil.example"})
        self.assertIsNone(r.header("Access-Control-Allow-Origin"))
        r = S.request("OPTIONS", "/v1/completions", headers={"Origin": "http://evil.example",
                                                             "Access-Control-Request-Method": "POST"})
        self.assertIsNone(r.header("Access-Control-Allow-Origin"))

    def test_binds_loopback_only(self):
        try:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            probe.connect(("10.255.255.255", 1))  # no packet is sent; picks the outward address
            ip = probe.getsockname()[0]
            probe.close()
        except OSError:
            self.skipTest("no non-loopback address")
        if ip.startswith("127."):
            self.skipTest("no non-loopback address")
        with self.assertRaises(OSError):
            socket.create_connection((ip, S.port), timeout=2).close()


def stream_body(max_tokens, prompt="Tell me a long story about a dragon."):
    return json.dumps({"prompt": prompt, "max_tokens": max_tokens, "stream": True, "temperature": 0,
                       "ignore_eos": True}).encode()


def open_stream(srv, body, key=KEY):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=60)
    head = (f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n").encode()
    if key:
        head += f"Authorization: Bearer {key}\r\n".encode()
    s.sendall(head + b"\r\n" + body)
    return s


def read_events(sock, n, timeout=60):
    buf = b""
    deadline = time.time() + timeout
    while buf.count(b"data: ") < n and time.time() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


class Cancellation(unittest.TestCase):
    def test_close_after_three_tokens_aborts(self):
        before = S.metrics()
        s = open_stream(S, stream_body(400))
        buf = read_events(s, 3)
        self.assertGreaterEqual(buf.count(b"data: "), 3, buf[:300])
        s.close()
        t0 = time.time()
        while finished(S.metrics(), "abort") == finished(before, "abort") and time.time() - t0 < 5:
            time.sleep(0.01)
        after = S.metrics()
        self.assertEqual(finished(after, "abort"), finished(before, "abort") + 1)
        gen = after["nanoflow_generation_tokens_total"] - before["nanoflow_generation_tokens_total"]
        self.assertLess(gen, 100, "the request kept generating after the client left")
        self.assertEqual(S.nothing_lost(), "")

    def test_random_cancellations(self):
        count = int(os.environ.get("NF_CANCEL_COUNT", "1000"))
        rng = random.Random(7)
        lock = threading.Lock()
        left = [count]

        def worker(seed):
            r = random.Random(seed)
            while True:
                with lock:
                    if left[0] == 0:
                        return
                    left[0] -= 1
                stream = r.random() < 0.8
                body = json.dumps({"prompt": "Count to ten:", "max_tokens": r.randint(1, 24), "stream": stream,
                                   "temperature": 0.7}).encode()
                try:
                    s = open_stream(S, body)
                    s.settimeout(r.uniform(0.0, 0.3))
                    try:
                        s.recv(r.randint(1, 4096))
                    except (socket.timeout, OSError):
                        pass
                    s.close()
                except OSError:
                    pass

        threads = [threading.Thread(target=worker, args=(rng.random(),)) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(S.nothing_lost(timeout=60), "")


class QueueAndShutdown(unittest.TestCase):
    def test_disconnect_while_queued_is_never_scheduled(self):
        with serve(["--max-model-len", str(CTX), "--max-running", "1"]) as srv:
            a = open_stream(srv, stream_body(300), key=None)
            read_events(a, 2)
            m0 = srv.metrics()
            b = open_stream(srv, stream_body(5, prompt="x " * 50), key=None)
            t0 = time.time()
            while srv.metrics()["nanoflow_num_requests_waiting"] < 1 and time.time() - t0 < 10:
                time.sleep(0.01)
            b.close()
            t0 = time.time()
            while finished(srv.metrics(), "abort") < 1 and time.time() - t0 < 10:
                time.sleep(0.02)
            m1 = srv.metrics()
            self.assertEqual(finished(m1, "abort"), 1)
            # b's 50-token prompt was never prefilled: only a's decode tokens moved the counters.
            self.assertEqual(m1["nanoflow_prompt_tokens_total"], m0["nanoflow_prompt_tokens_total"])
            a.close()
            self.assertEqual(srv.nothing_lost(), "")
            self.assertEqual(srv.stop(), 0)

    def test_queue_full_429(self):
        with serve(["--max-model-len", str(CTX), "--max-running", "1",
                                                         "--max-queued", "1"]) as srv:
            a = open_stream(srv, stream_body(300), key=None)
            read_events(a, 2)
            results = []

            def one():
                r = srv.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 2}, auth=False)
                results.append((r.status, r.header("Retry-After")))

            ts = [threading.Thread(target=one) for _ in range(9)]
            for t in ts:
                t.start()
            time.sleep(1.0)
            a.close()  # frees the running slot; the queued one then runs
            for t in ts:
                t.join()
            statuses = sorted(s for s, _ in results)
            self.assertEqual(statuses, [200] + [429] * 8, results)
            self.assertTrue(all(ra == "1" for s, ra in results if s == 429))
            self.assertEqual(srv.nothing_lost(), "")

    def test_sigterm_drains_and_exits_0(self):
        srv = serve(["--max-model-len", str(CTX)])
        try:
            s = open_stream(srv, stream_body(60), key=None)
            read_events(s, 2)
            srv.proc.send_signal(signal.SIGTERM)
            t0 = time.time()
            ready = None
            while time.time() - t0 < 5:
                ready = srv.request("GET", "/ready").status
                if ready == 503:
                    break
                time.sleep(0.02)
            self.assertEqual(ready, 503)
            r = srv.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 2})
            self.assertEqual(r.status, 503)
            self.assertEqual(r.json()["error"]["code"], "service_unavailable")
            rest = b""
            s.settimeout(120)
            while not rest.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n") and b"[DONE]" not in rest:
                chunk = s.recv(65536)
                if not chunk:
                    break
                rest += chunk
            self.assertIn(b"data: [DONE]", rest)
            self.assertIn(b'"finish_reason":"length"', rest)
            s.close()
            self.assertEqual(srv.proc.wait(60), 0)
        finally:
            srv.__exit__(None, None, None)

    def test_second_signal_exits_at_once(self):
        srv = serve(["--max-model-len", str(CTX), "--drain-timeout", "600"])
        try:
            s = open_stream(srv, stream_body(400), key=None)
            read_events(s, 2)
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            self.assertIsNone(srv.proc.poll(), "exited before the in-flight request finished")
            t0 = time.time()
            srv.proc.send_signal(signal.SIGTERM)
            code = srv.proc.wait(10)
            self.assertLess(time.time() - t0, 5)
            self.assertNotEqual(code, 0)
            s.close()
        finally:
            srv.__exit__(None, None, None)


if __name__ == "__main__":
    if not find_binary() or not test_model():
        print("nanoflow binary or SmolLM2 model missing: skipped")
        sys.exit(77)
    unittest.main()
