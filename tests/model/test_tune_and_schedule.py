"""`nanoflow schedule` and `nanoflow tune` from the command line.

schedule: writes each kind as JSON with the expected node count, stream use and name; refuses bad
specs with a clear error. tune on SmolLM2 (CPU backend, where only the sequential schedule runs):
measures the baseline, writes it as the chosen schedule and a report; refuses nano-batch candidates
on the CPU backend, bad candidate specs and --schedule. (tune's GPU candidates: RESULTS.md.)
Exit 77 (skipped) without the binary; the tune tests skip without the model.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

SRC = os.environ.get("NF_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("NF_BUILD_DIR", os.path.join(SRC, "build"))
MODEL = os.path.join(SRC, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
BINARY = os.path.join(BUILD, "src", "nanoflow")

if not os.path.exists(BINARY):
    print(f"skipped: needs {BINARY}")
    sys.exit(77)

GEMM_OPS = {"qkv", "o_proj", "gate_up", "down", "lm_head"}


def run(*args):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=300)


class Schedule(unittest.TestCase):
    def write(self, *args):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "s.json")
            p = run("schedule", *args, "-o", out)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(out) as f:
                return json.load(f)

    def test_kinds(self):
        seq = self.write("--kind", "sequential", "--layers", "4")
        self.assertEqual(seq["name"], "sequential")
        self.assertEqual(len(seq["nodes"]), 9 * 4 + 3)
        self.assertEqual(seq["streams"], [{"sm_count": 0}])
        pl = self.write("--kind", "pipeline", "--layers", "4", "--gemm-sms", "88", "--attn-sms", "32",
                        "--remainder", "attn", "--iterations", "decode")
        self.assertEqual(pl["name"], "pipeline-88-32-rattn-decode")
        self.assertEqual(pl["iterations"], "decode")
        self.assertEqual(pl["streams"], [{"sm_count": 88}, {"sm_count": 32, "remainder": True}])
        self.assertEqual(len(pl["nodes"]), 2 * (9 * 4 + 3))
        for n in pl["nodes"]:
            self.assertEqual(n["stream"] == 1, n["op"] == "attention", n)
            self.assertTrue(all(d < pl["nodes"].index(n) for d in n["deps"]))
        ph = self.write("--kind", "decode-overlap-phased", "--layers", "2")
        self.assertEqual(ph["split"], "decode")
        self.assertEqual([s["sm_count"] for s in ph["streams"]], [0, 96, 24])
        self.assertFalse(any(n["op"] in GEMM_OPS and n["stream"] == 2 for n in ph["nodes"]))

    def test_bad_specs(self):
        for args, what in ((["--kind", "halves", "--layers", "4"], "schedule kind"),
                           (["--kind", "pipeline", "--layers", "4", "--gemm-sms", "20"], "multiples of 8"),
                           (["--kind", "pipeline", "--layers", "0"], "layers"),
                           (["--kind", "decode-overlap", "--layers", "4", "--iterations", "decode"], "split at decode"),
                           (["--kind", "pipeline", "--layers", "4", "--remainder", "gemm"], "--remainder"),
                           (["--kind", "sequential", "--layers", "4", "--remainder", "attn"], "remainder")):
            p = run("schedule", *args, "-o", os.devnull)
            self.assertNotEqual(p.returncode, 0, args)
            self.assertIn(what, p.stderr, args)
            self.assertNotIn("terminate called", p.stderr, args)


@unittest.skipUnless(os.path.exists(MODEL), f"needs {MODEL}")
class Tune(unittest.TestCase):
    COMMON = ["--model", MODEL, "--backend", "cpu", "--input-len", "16", "--output-len", "4", "--num-prompts", "6",
              "--max-running", "8", "--max-batch-tokens", "128"]

    def test_cpu_tune_measures_and_writes_the_sequential_schedule(self):
        with tempfile.TemporaryDirectory() as d:
            out, rep = os.path.join(d, "tuned.json"), os.path.join(d, "report.json")
            p = run("tune", *self.COMMON, "--candidate", "sequential", "-o", out, "--output-json", rep)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(out) as f:
                tuned = json.load(f)
            with open(rep) as f:
                report = json.load(f)
        self.assertEqual(tuned["name"], "sequential")
        self.assertEqual(len(tuned["nodes"]), 9 * 30 + 3)  # SmolLM2-135M: 30 layers
        self.assertEqual(report["best"], "sequential")
        self.assertEqual(report["num_requests"], 6)
        self.assertEqual(report["tensor_parallel"], 1)
        self.assertEqual(report["max_batch_tokens"], 128)
        [c] = report["candidates"]
        self.assertEqual(c["name"], "sequential")
        self.assertEqual(c["kind"], "sequential")
        self.assertGreater(c["total_tokens_per_s"], 0)
        self.assertEqual(c["gain_vs_sequential"], 1.0)
        self.assertGreater(c["kv_pages_total"], 0)

    def test_refusals(self):
        for args, what in ((["--candidate", "pipeline:88:32"], "sequential schedule"),
                           (["--candidate", "pipeline:8x:32"], "not a number"),
                           (["--candidate", "sequential", "--schedule", "x.json"], "drop --schedule")):
            p = run("tune", *self.COMMON, *args, "-o", os.devnull)
            self.assertNotEqual(p.returncode, 0, args)
            self.assertIn(what, p.stderr, args)
            self.assertNotIn("terminate called", p.stderr, args)
        # An output that cannot be written fails before any candidate runs.
        p = run("tune", *self.COMMON, "--candidate", "sequential", "-o", "/nonexistent-dir/tuned.json")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("cannot write", p.stderr)
        self.assertNotIn("tune: sequential", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
