"""`nanoflow run-batch` on SmolLM2 (CPU backend): a 200-line OpenAI Batch file with 3 bad lines gives
197 results and 3 error entries; killed mid-run and restarted, it resumes without redoing finished
lines. Response bodies are checked against the official `openai` package's types.
Exit 77 (skipped) without the model or the binary.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

SRC = os.environ.get("NF_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("NF_BUILD_DIR", os.path.join(SRC, "build"))
MODEL = os.path.join(SRC, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
BINARY = os.path.join(BUILD, "src", "nanoflow")

try:
    from openai.types import Completion
    from openai.types.chat import ChatCompletion
except ImportError:  # pragma: no cover
    print("openai not installed: skipped")
    sys.exit(77)

if not os.path.exists(MODEL) or not os.path.exists(BINARY):
    print(f"skipped: needs {MODEL} and {BINARY}")
    sys.exit(77)

TOPICS = ["the sea", "a cat", "rain", "jazz", "a bridge", "tea", "stars", "maps", "snow", "chess"]


def make_input(path):
    lines = []
    for i in range(1, 201):
        cid = f"req-{i}"
        if i == 17:
            lines.append("{not json")
            continue
        if i == 88:
            lines.append(json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/embeddings",
                                     "body": {"model": "x", "input": "hi"}}))
            continue
        if i == 150:
            lines.append(json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/completions"}))
            continue
        topic = TOPICS[i % len(TOPICS)]
        if i % 2:
            body = {"model": "m", "prompt": f"A short note about {topic}:", "max_tokens": 3, "temperature": 0}
            url = "/v1/completions"
        else:
            body = {"model": "m", "messages": [{"role": "user", "content": f"One word about {topic}."}],
                    "max_tokens": 3, "temperature": 0}
            url = "/v1/chat/completions"
        lines.append(json.dumps({"custom_id": cid, "method": "POST", "url": url, "body": body}))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def read_entries(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def command(inp, out):
    return [BINARY, "run-batch", "-i", inp, "-o", out, "--model", MODEL, "--max-running", "32",
            "--max-batch-tokens", "512", "--num-kv-pages", "512"]


class RunBatch(unittest.TestCase):
    def test_bad_lines_and_resume_after_kill(self):
        with tempfile.TemporaryDirectory() as d:
            inp, out = os.path.join(d, "in.jsonl"), os.path.join(d, "out.jsonl")
            make_input(inp)
            # First run: killed once some results are on disk.
            p = subprocess.Popen(command(inp, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 300
            while time.time() < deadline and p.poll() is None:
                if os.path.exists(out):
                    with open(out) as f:
                        if sum(1 for _ in f) >= 40:
                            break
                time.sleep(0.05)
            self.assertIsNone(p.poll(), "run-batch finished before it could be killed; make the job longer")
            p.send_signal(signal.SIGKILL)
            p.wait()
            with open(out, "rb") as f:
                before = f.read()
            first = [json.loads(line) for line in before.decode().splitlines() if line.endswith("}")]
            self.assertGreaterEqual(len(first), 40)
            self.assertLess(len(first), 200)

            # Second run: resumes.
            r = subprocess.run(command(inp, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
            self.assertEqual(r.returncode, 0, r.stderr.decode()[-2000:])
            self.assertIn("/200", r.stderr.decode(), "progress bar on stderr")
            entries = read_entries(out)
            # Finished lines of the first run are kept as they were, and not redone.
            with open(out, "rb") as f:
                after = f.read()
            complete_prefix = before[: before.rfind(b"\n") + 1]
            self.assertTrue(after.startswith(complete_prefix))
            self.assertEqual(len(entries), 200)
            ids = [e["custom_id"] for e in entries if e["custom_id"] is not None]
            self.assertEqual(len(ids), len(set(ids)), "a line was done twice")

            errors = [e for e in entries if e["error"] is not None]
            results = [e for e in entries if e["error"] is None]
            self.assertEqual(len(errors), 3)
            self.assertEqual(len(results), 197)
            self.assertEqual(sorted(e["error"]["line"] for e in errors), [17, 88, 150])
            for e in errors:
                self.assertIsNone(e["response"])
                self.assertTrue(e["error"]["message"])
            for e in results:
                self.assertTrue(e["id"].startswith("batch_req_"))
                resp = e["response"]
                self.assertEqual(resp["status_code"], 200, e)
                n = int(e["custom_id"].split("-")[1])
                body = resp["body"]
                if n % 2:
                    c = Completion.model_validate(body)
                    self.assertEqual(c.object, "text_completion")
                    self.assertIsInstance(c.choices[0].text, str)
                else:
                    c = ChatCompletion.model_validate(body)
                    self.assertEqual(c.choices[0].message.role, "assistant")
                self.assertLessEqual(c.usage.completion_tokens, 3)
                self.assertGreater(c.usage.prompt_tokens, 3)
                self.assertIn(c.choices[0].finish_reason, ("stop", "length"))
            # Greedy and identical prompts: identical answers (requests 1 and 11 share a topic).
            by_id = {e["custom_id"]: e for e in results}
            self.assertEqual(by_id["req-1"]["response"]["body"]["choices"][0]["text"],
                             by_id["req-11"]["response"]["body"]["choices"][0]["text"])

            # A third run has nothing left to do and changes nothing.
            r = subprocess.run(command(inp, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
            self.assertEqual(r.returncode, 0)
            with open(out, "rb") as f:
                self.assertEqual(f.read(), after)


if __name__ == "__main__":
    unittest.main()
