"""Start and talk to a `nanoflow serve` process (used by the server's model tests and the soak).

Standard library only, so it runs in the project's .venv and anywhere else. Traffic goes to
127.0.0.1 only.
"""
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import time

DEFAULT_MODEL = "models/SmolLM2-135M-Instruct.Q4_1.gguf"


def find_binary():
    if os.environ.get("NF_BIN"):  # an explicit binary (e.g. the one carried to the GPU machine)
        b = os.environ["NF_BIN"]
        return os.path.abspath(b) if os.path.exists(b) else None
    build = os.environ.get("NF_BUILD_DIR")
    src = os.environ.get("NF_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    dirs = ([build] if build else []) + [os.path.join(src, "build"), os.path.join(src, "build-server")]
    for cand in [os.path.join(d, sub, "nanoflow") for d in dirs for sub in ("src", "")]:
        if os.path.exists(cand):
            return os.path.abspath(cand)
    return None


def find_model():
    src = os.environ.get("NF_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    path = os.path.join(src, DEFAULT_MODEL)
    return os.path.abspath(path) if os.path.exists(path) else None


# The server's model tests run against the default GGUF on the CPU unless the environment says
# otherwise (tools/gpu/serve_check.sh runs them on the GPU against preset:llama3-8b):
#   NF_TEST_MODEL       --model for `nanoflow serve`: a path or preset:<name> (default: find_model())
#   NF_TEST_SERVE_ARGS  extra serve arguments, shell-split (e.g. "--backend cuda --num-kv-pages 2048")
#   NF_TEST_GOLDEN      the usage golden (default: picked by the served model id, usage_golden_path())
#   NF_BIN              the nanoflow binary (default: find_binary()'s build folders)
#   NF_SERVE_LOG_APPEND a file each server's log (its last 256 KiB) is appended to when it ends
def test_model():
    return os.environ.get("NF_TEST_MODEL") or find_model()


def test_serve_args():
    return shlex.split(os.environ.get("NF_TEST_SERVE_ARGS", ""))


def test_backend():
    args = test_serve_args()
    for i, a in enumerate(args):
        if a == "--backend" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--backend="):
            return a.split("=", 1)[1]
    return "cpu"


def served_model_id(model):
    """The id `serve` reports without --served-model-name (src/cli/cmd_serve.cc default_model_name):
    the file or folder name, or the whole string for a preset ("preset:llama3-8b")."""
    p = model
    while len(p) > 1 and p.endswith("/"):
        p = p[:-1]
    return os.path.basename(p) or p


def usage_golden_path(model_id):
    """tests/data/server/usage_golden.json for the default SmolLM2 GGUF, usage_golden.<id>.json
    (':' and '/' as '_') for another model (made by tools/soak/make_usage_golden.py); None if absent."""
    if os.environ.get("NF_TEST_GOLDEN"):
        return os.environ["NF_TEST_GOLDEN"]
    src = os.environ.get("NF_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    d = os.path.join(src, "tests", "data", "server")
    if model_id == os.path.basename(DEFAULT_MODEL):
        return os.path.join(d, "usage_golden.json")
    path = os.path.join(d, "usage_golden.%s.json" % re.sub(r"[:/\\]", "_", model_id))
    return path if os.path.exists(path) else None


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


class ServerProcess:
    """`nanoflow serve` on a free loopback port; stdout/stderr go to a log file."""

    def __init__(self, binary, model, args=(), api_key=None, start_timeout=300):
        self.api_key = api_key
        self.log = tempfile.NamedTemporaryFile(prefix="nf-serve-", suffix=".log", delete=False)
        cmd = [binary, "serve", "--model", model, "--host", "127.0.0.1", "--port", "0", *args]
        if api_key:
            cmd += ["--api-key", api_key]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.port = None
        deadline = time.time() + start_timeout
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"nanoflow serve exited with {self.proc.returncode}: {self.log_text()[-3000:]}")
                continue
            m = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.kill()
            raise RuntimeError("nanoflow serve did not start: " + self.log_text()[-3000:])
        # Drain stdout in the background so the pipe never fills.
        import threading
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        while time.time() < deadline:
            try:
                if self.request("GET", "/health", auth=False).status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        self.baseline = self.metrics()

    def log_text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def auth_headers(self):
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def request(self, method, path, body=None, headers=None, auth=True, timeout=300):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = dict(self.auth_headers() if auth else {})
        h.update(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def raw(self, data, timeout=30, until=None):
        """Sends raw bytes; returns what came back until the peer closed, `until`, or timeout."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall(data)
            out = b""
            deadline = time.time() + timeout
            while time.time() < deadline:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                out += chunk
                if until and until in out:
                    break
            return out
        finally:
            s.close()

    def metrics(self):
        r = self.request("GET", "/metrics")
        if r.status != 200:
            raise RuntimeError(f"/metrics: {r.status}")
        out = {}
        for line in r.body.decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
        return out

    def nothing_lost(self, timeout=10.0):
        """RELIABILITY.md's check: pages back to baseline, no live request, no handler running,
        threads and fds flat, and a follow-up request succeeds. Returns "" or what is wrong."""
        deadline = time.time() + timeout
        m = {}
        while time.time() < deadline:
            m = self.metrics()
            if (m.get("nanoflow_live_requests") == 0 and m.get("nanoflow_http_in_flight") == 0
                    and m.get("nanoflow_kv_pages_used") == self.baseline.get("nanoflow_kv_pages_used")
                    and m.get("nanoflow_kv_pages_free") == self.baseline.get("nanoflow_kv_pages_free")):
                break
            time.sleep(0.05)
        else:
            return ("not at baseline: live=%s in_flight=%s pages used=%s (baseline %s) free=%s (baseline %s)" % (
                m.get("nanoflow_live_requests"), m.get("nanoflow_http_in_flight"), m.get("nanoflow_kv_pages_used"),
                self.baseline.get("nanoflow_kv_pages_used"), m.get("nanoflow_kv_pages_free"),
                self.baseline.get("nanoflow_kv_pages_free")))
        # The HTTP pool's threads exist from the start; the count must not grow with requests.
        if m.get("process_threads", 0) > self.baseline.get("process_threads", 0):
            return "threads grew: %s -> %s" % (self.baseline.get("process_threads"), m.get("process_threads"))
        if m.get("process_open_fds", 0) > self.baseline.get("process_open_fds", 0) + 4:
            return "fds grew: %s -> %s" % (self.baseline.get("process_open_fds"), m.get("process_open_fds"))
        r = self.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 2, "temperature": 0})
        if r.status != 200:
            return f"follow-up request failed: {r.status} {r.body[:200]!r}"
        return ""

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        sink = os.environ.get("NF_SERVE_LOG_APPEND")
        if sink:
            try:
                text = self.log_text()
                with open(sink, "a") as f:
                    f.write("==== %s (exit %s)\n%s\n" % (" ".join(self.cmd), self.proc.returncode, text[-262144:]))
            except OSError:
                pass
        for f in (self.proc.stdout, self.log):
            try:
                f.close()
            except Exception:  # noqa: BLE001 - the reader thread may hold it
                pass
        try:
            os.unlink(self.log.name)
        except OSError:
            pass
