"""Bounded soak of `nanoflow serve` on 127.0.0.1 (RELIABILITY.md "Load").

N concurrent streaming clients for a fixed time; a share of them hang up early (random
cancellations) and a share send invalid requests. Passes when no valid request fails, the KV
pages return to their baseline, and RSS / thread / fd counts stay flat. Prints a JSON summary
(requests, tokens/s, TTFT percentiles, memory) for docs/perf/RESULTS.md.

    .venv/bin/python tools/soak/soak.py --clients 200 --duration 120            # starts the server
    .venv/bin/python tools/soak/soak.py --url-port 8000 --api-key K ...         # an existing one
"""
import argparse
import http.client
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nf_server import ServerProcess, find_binary, find_model  # noqa: E402

PROMPTS = [
    "Write a short poem about the sea.",
    "Explain why the sky is blue.",
    "List five fruits and their colors.",
    "The history of Rome in three sentences:",
    "def quicksort(arr):",
    "Translate 'good morning' into French, Spanish and German.",
]
INVALID = [
    {"prompt": "x", "temperature": 5},
    {"prompt": "", "max_tokens": 4},
    {"prompt": "x", "n": 0},
    {"prompt": "x", "max_tokens": -3},
    {"prompt": "x", "stop": [""]},
    {"prompt": "x", "model": "no-such-model"},
]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.cancelled = 0
        self.invalid_ok = 0
        self.failures = []
        self.ttft = []
        self.tokens = 0
        self.statuses = {}

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                if k == "failure":
                    self.failures.append(v)
                elif k == "ttft":
                    self.ttft.append(v)
                elif k == "status":
                    self.statuses[v] = self.statuses.get(v, 0) + 1
                else:
                    setattr(self, k, getattr(self, k) + v)


def one_stream(port, headers, body, cancel_after, stats):
    t0 = time.time()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request("POST", "/v1/completions", body=json.dumps(body), headers=headers)
        r = conn.getresponse()
        stats.add(status=r.status)
        if r.status != 200:
            stats.add(failure=f"status {r.status}: {r.read()[:200]!r}")
            return
        events, first, done, finish, tokens = 0, None, False, None, 0
        while True:
            line = r.readline()
            if not line:
                break
            if not line.startswith(b"data: "):
                continue
            data = line[6:].strip()
            if data == b"[DONE]":
                done = True
                break
            chunk = json.loads(data)
            if "error" in chunk:
                stats.add(failure=f"error event: {chunk['error']}")
                return
            for ch in chunk["choices"]:
                if ch.get("text"):
                    tokens += 1
                    if first is None:
                        first = time.time() - t0
                if ch.get("finish_reason"):
                    finish = ch["finish_reason"]
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            events += 1
            if cancel_after is not None and events >= cancel_after:
                stats.add(cancelled=1)
                return  # hang up mid-stream
        if cancel_after is not None and not done:
            stats.add(cancelled=1)
            return
        if not done or finish not in ("stop", "length"):
            stats.add(failure=f"stream ended without [DONE]/finish (done={done}, finish={finish})")
            return
        stats.add(ok=1, tokens=tokens)
        if first is not None:
            stats.add(ttft=first)
    except Exception as e:  # noqa: BLE001 - every failure of a valid request is counted
        if cancel_after is None:
            stats.add(failure=f"{type(e).__name__}: {e}")
        else:
            stats.add(cancelled=1)
    finally:
        conn.close()


def one_invalid(port, headers, body, stats):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/v1/completions", body=json.dumps(body), headers=headers)
        r = conn.getresponse()
        payload = r.read()
        expected = 404 if "model" in body else 400
        if r.status == expected and "error" in json.loads(payload):
            stats.add(invalid_ok=1)
        else:
            stats.add(failure=f"invalid request got {r.status}: {payload[:200]!r}")
    finally:
        conn.close()


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--duration", type=float, default=120)
    ap.add_argument("--cancel", type=float, default=0.10)
    ap.add_argument("--invalid", type=float, default=0.01)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--url-port", type=int, help="use a server already running on 127.0.0.1:PORT")
    ap.add_argument("--api-key", default="soak-key")
    ap.add_argument("--server-args", default="--max-running 64 --max-queued 512 --max-model-len 1024",
                    help="extra arguments for nanoflow serve when this script starts it")
    a = ap.parse_args()

    srv = None
    if a.url_port:
        port = a.url_port
    else:
        srv = ServerProcess(find_binary(), find_model(), a.server_args.split(), api_key=a.api_key)
        port = srv.port
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {a.api_key}"}
    stats = Stats()
    samples = []
    deadline = time.time() + a.duration
    stop_sampling = threading.Event()

    def sampler():
        while not stop_sampling.is_set():
            if srv:
                m = srv.metrics()
                samples.append({k: m.get(k) for k in ("process_resident_memory_bytes", "process_threads",
                                                      "process_open_fds", "nanoflow_kv_pages_used",
                                                      "nanoflow_num_requests_running", "nanoflow_num_requests_waiting")})
            stop_sampling.wait(5)

    def client(seed):
        rng = random.Random(seed)
        while time.time() < deadline:
            if rng.random() < a.invalid:
                one_invalid(port, headers, rng.choice(INVALID), stats)
                continue
            body = {"prompt": rng.choice(PROMPTS), "max_tokens": rng.randint(4, a.max_tokens), "stream": True,
                    "temperature": rng.choice([0, 0.7, 1.0]), "stream_options": {"include_usage": True}}
            cancel = rng.randint(1, 6) if rng.random() < a.cancel else None
            one_stream(port, headers, body, cancel, stats)

    start_metrics = srv.metrics() if srv else {}
    st = threading.Thread(target=sampler, daemon=True)
    st.start()
    t0 = time.time()
    threads = [threading.Thread(target=client, args=(a.seed * 100003 + i,)) for i in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    stop_sampling.set()
    lost = srv.nothing_lost(timeout=120) if srv else "not checked (external server)"
    end_metrics = srv.metrics() if srv else {}
    gen = end_metrics.get("nanoflow_generation_tokens_total", 0) - start_metrics.get("nanoflow_generation_tokens_total", 0)
    rss = [s["process_resident_memory_bytes"] for s in samples if s.get("process_resident_memory_bytes")]
    thr = [s["process_threads"] for s in samples if s.get("process_threads")]
    summary = {
        "clients": a.clients, "duration_s": round(elapsed, 1), "cancel_share": a.cancel, "invalid_share": a.invalid,
        "completed_ok": stats.ok, "cancelled": stats.cancelled, "invalid_refused_ok": stats.invalid_ok,
        "failures": len(stats.failures), "failure_examples": stats.failures[:5], "http_statuses": stats.statuses,
        "client_tokens": stats.tokens, "engine_generated_tokens": gen,
        "generated_tokens_per_s": round(gen / elapsed, 1) if elapsed else None,
        "ttft_p50_s": pct(stats.ttft, 0.5), "ttft_p99_s": pct(stats.ttft, 0.99),
        # RSS at start (idle), after the first quarter (warm: pools and caches filled), at the end.
        "rss_mb_start_warm_end_max": [round(x / 2 ** 20, 1) for x in (rss[0], rss[len(rss) // 4], rss[-1], max(rss))]
        if rss else None,
        "threads_start_end_max": [thr[0], thr[-1], max(thr)] if thr else None,
        "fds_start_end": [samples[0].get("process_open_fds"), samples[-1].get("process_open_fds")] if samples else None,
        "baseline_check": lost or "ok",
    }
    code = None
    if srv:
        code = srv.stop()  # SIGTERM: drain, then exit 0
        summary["exit_code_after_sigterm"] = code
        srv.__exit__(None, None, None)
    print(json.dumps(summary, indent=1))
    ok = not stats.failures and not lost and code in (0, None)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
