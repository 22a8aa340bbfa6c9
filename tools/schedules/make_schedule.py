#!/usr/bin/env python3
"""Writes nano-batch pipeline schedules as JSON (engine/pipeline_schedule.h; DESIGN.md §4
"Pipeline schedule as data") for `nanoflow bench throughput --schedule` and `nanoflow serve
--schedule`. No schedule is written by hand in C++; this generator is the stand-in for the tuner.

Kinds:
  sequential   one nano-batch on one whole-GPU stream (what the engine runs without --schedule).
  decode-overlap
               two nano-batches split at the decode sequences (JSON "split": "decode"): nano-batch 0
               is the decode sequences, 1 the prefill chunks. Two SM partitions (green contexts):
               stream 0 (--gemm-sms) runs every GEMM and elementwise op and the prefill attention;
               stream 1 (--attn-sms) runs nano-batch 0's decode attention. An SM count of 0 makes
               that stream a plain whole-GPU stream (its kernels share SMs with the other's). Per layer, stream 0 does
               nano-batch 0's norm + QKV + RoPE, then all of nano-batch 1's layer (while stream 1
               runs nano-batch 0's decode attention), then nano-batch 0's O projection and MLP.
               So the memory-bound decode attention hides under the prefill GEMMs, as in NanoFlow.
  decode-overlap-phased
               the same two nano-batches on three streams, in two alternating phases per layer:
               stream 0 (whole GPU, no partition) runs nano-batch 0's O projection, MLP and the next
               layer's norm + QKV + RoPE alone; then stream 1 (--gemm-sms) runs nano-batch 1's layer
               while stream 2 (--attn-sms) runs nano-batch 0's decode attention. Extra dependencies
               keep the phases apart, so the decode tokens' GEMMs get every SM and the prefill
               GEMMs never wait for attention CTAs.
  pipeline     NanoFlow's interleaving of two nano-batches split by tokens (--share: nano-batch 0's
               share in 1/1024ths, moved to the nearest sequence boundary): stream 0 (--gemm-sms)
               runs every GEMM and elementwise op, stream 1 (--attn-sms) every attention. Per layer,
               stream 1 runs nano-batch 0's attention while stream 0 runs nano-batch 1's O projection
               and MLP of the previous layer and its norm + QKV + RoPE of this one; then the roles
               swap. Meant for decode-heavy iterations (--iterations decode), where the decode
               attention is half the time and both nano-batches carry decode sequences.

Every kind takes --iterations (which iterations the schedule runs: mixed (default), decode or
all; the others run the sequential forward) and --remainder attn (the attention stream's partition
also takes the SMs left over from the driver's equal groups of 8; GEMM streams never do: DESIGN.md,
and GEMMs on 96 SMs + the remainder measured slower than on 96 alone, RESULTS run 19).

  python3 tools/schedules/make_schedule.py --kind decode-overlap --layers 32 \
      --gemm-sms 96 --attn-sms 24 -o /tmp/overlap.json

H100 and H200 (132 SMs) split into 15 equal groups of 8 and 12 over, so the SM counts add up to
at most 120 (plus the 12 with --remainder).
"""
import argparse
import json

LAYER_OPS = ["attn_norm", "qkv", "rope_kv", "attention", "o_proj", "mlp_norm", "gate_up", "act", "down"]


class Builder:
    def __init__(self):
        self.nodes = []
        self.last = {}  # nano-batch -> index of its latest node (data-flow producer of the next)

    def add(self, op, layer, nb, stream, extra_deps=()):
        deps = [self.last[nb]] if nb in self.last else []
        deps += [d for d in extra_deps if d not in deps]
        self.nodes.append({"op": op, "layer": layer, "nano_batch": nb, "stream": stream, "deps": deps})
        self.last[nb] = len(self.nodes) - 1
        return self.last[nb]


def sequential(layers):
    b = Builder()
    b.add("embed", -1, 0, 0)
    for l in range(layers):
        for op in LAYER_OPS:
            b.add(op, l, 0, 0)
    b.add("lm_head", -1, 0, 0)
    b.add("sample", -1, 0, 0)
    return {"name": "sequential", "nano_batches": [[0, 1024]], "split": "tokens",
            "streams": [{"sm_count": 0}], "nodes": b.nodes}


def gemm_stream(sms, target):
    s = {"sm_count": sms}
    if target:
        s["gemm_sm_count"] = target
    return s


def decode_overlap(layers, gemm_sms, attn_sms, target=0):
    G, A = 0, 1
    b = Builder()
    b.add("embed", -1, 0, G)
    b.add("embed", -1, 1, G)
    for l in range(layers):
        for op in ["attn_norm", "qkv", "rope_kv"]:
            b.add(op, l, 0, G)
        b.add("attention", l, 0, A)
        for op in LAYER_OPS:
            b.add(op, l, 1, G)
        for op in ["o_proj", "mlp_norm", "gate_up", "act", "down"]:
            b.add(op, l, 0, G)
    for nb in (0, 1):
        b.add("lm_head", -1, nb, G)
    for nb in (0, 1):
        b.add("sample", -1, nb, G)
    return {"name": f"decode-overlap-{gemm_sms}-{attn_sms}", "nano_batches": [[0, 341], [341, 1024]],
            "split": "decode", "streams": [gemm_stream(gemm_sms, target), {"sm_count": attn_sms}], "nodes": b.nodes}


def decode_overlap_phased(layers, gemm_sms, attn_sms, target=0):
    F, G, A = 0, 1, 2
    b = Builder()
    b.add("embed", -1, 0, F)
    b.add("embed", -1, 1, G)
    for l in range(layers):
        if l == 0:
            for op in ["attn_norm", "qkv", "rope_kv"]:
                b.add(op, l, 0, F)
        prelude = b.last[0]
        b.add("attention", l, 0, A)
        for i, op in enumerate(LAYER_OPS):
            b.add(op, l, 1, G, extra_deps=[prelude] if i == 0 else ())
        b.add("o_proj", l, 0, F, extra_deps=[b.last[1]])  # after nano-batch 1's whole layer
        for op in ["mlp_norm", "gate_up", "act", "down"]:
            b.add(op, l, 0, F)
        if l + 1 < layers:
            for op in ["attn_norm", "qkv", "rope_kv"]:
                b.add(op, l + 1, 0, F)
    b.add("lm_head", -1, 0, F)
    b.add("lm_head", -1, 1, G)
    b.add("sample", -1, 0, F)
    b.add("sample", -1, 1, G)
    return {"name": f"decode-overlap-phased-{gemm_sms}-{attn_sms}", "nano_batches": [[0, 341], [341, 1024]],
            "split": "decode", "streams": [{"sm_count": 0}, gemm_stream(gemm_sms, target), {"sm_count": attn_sms}],
            "nodes": b.nodes}


def pipeline(layers, gemm_sms, attn_sms, share=512, target=0):
    G, A = 0, 1
    pre = ["attn_norm", "qkv", "rope_kv"]
    post = ["o_proj", "mlp_norm", "gate_up", "act", "down"]
    b = Builder()
    b.add("embed", -1, 0, G)
    b.add("embed", -1, 1, G)
    for op in pre:
        b.add(op, 0, 0, G)
    for l in range(layers):
        b.add("attention", l, 0, A)
        if l > 0:  # under nano-batch 0's attention: nano-batch 1 finishes layer l-1, starts layer l
            for op in post:
                b.add(op, l - 1, 1, G)
        for op in pre:
            b.add(op, l, 1, G)
        b.add("attention", l, 1, A)
        for op in post:  # under nano-batch 1's attention: nano-batch 0 finishes l, starts l+1
            b.add(op, l, 0, G)
        if l + 1 < layers:
            for op in pre:
                b.add(op, l + 1, 0, G)
    for op in post:
        b.add(op, layers - 1, 1, G)
    for nb in (0, 1):
        b.add("lm_head", -1, nb, G)
    for nb in (0, 1):
        b.add("sample", -1, nb, G)
    return {"name": f"pipeline-{gemm_sms}-{attn_sms}", "nano_batches": [[0, share], [share, 1024]],
            "split": "tokens", "streams": [gemm_stream(gemm_sms, target), {"sm_count": attn_sms}], "nodes": b.nodes}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["sequential", "decode-overlap", "decode-overlap-phased", "pipeline"], required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--gemm-sms", type=int, default=96)
    ap.add_argument("--attn-sms", type=int, default=24)
    ap.add_argument("--gemm-sm-target", type=int, default=0,
                    help="> 0: the prefill GEMM stream's GEMMs target this many SMs (SM_COUNT_TARGET), e.g. "
                         "a whole-GPU stream (--gemm-sms 0) whose GEMM grids leave SMs to the attention stream")
    ap.add_argument("--share", type=int, default=512, help="pipeline: nano-batch 0's share of the tokens, in 1/1024ths")
    ap.add_argument("--iterations", choices=["mixed", "decode", "all"], default="mixed",
                    help="the iterations the schedule runs (the others run the sequential forward)")
    ap.add_argument("--remainder", choices=["none", "attn"], default="none",
                    help="attn: the attention stream's partition also takes the SMs left over from the equal groups")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    for v in (a.gemm_sms, a.attn_sms):
        if v < 0 or v % 8:
            ap.error(f"SM counts are 0 (the whole GPU, no partition) or multiples of 8 (green contexts), got {v}")
    if a.share != 512 and a.kind != "pipeline":
        ap.error("--share is for --kind pipeline (the other kinds fix their nano-batches)")
    if not 0 < a.share < 1024:
        ap.error(f"--share is nano-batch 0's share in 1/1024ths, 1..1023, got {a.share}")
    if a.kind == "sequential":
        s = sequential(a.layers)
    elif a.kind == "decode-overlap":
        s = decode_overlap(a.layers, a.gemm_sms, a.attn_sms, a.gemm_sm_target)
    elif a.kind == "pipeline":
        s = pipeline(a.layers, a.gemm_sms, a.attn_sms, a.share, a.gemm_sm_target)
        if a.share != 512:
            s["name"] += f"-s{a.share}"
    else:
        s = decode_overlap_phased(a.layers, a.gemm_sms, a.attn_sms, a.gemm_sm_target)
    if a.gemm_sm_target:
        s["name"] += f"-t{a.gemm_sm_target}"
    if a.remainder != "none":
        if a.kind == "sequential":
            ap.error("--remainder attn: the sequential schedule has no attention stream")
        i = len(s["streams"]) - 1  # the attention stream is the last of every overlapping kind
        if s["streams"][i]["sm_count"] == 0:
            ap.error(f"--remainder {a.remainder}: that stream is the whole GPU, not a partition")
        s["streams"][i]["remainder"] = True
        s["name"] += f"-r{a.remainder}"
    if a.iterations != "mixed" and s["split"] == "decode":
        ap.error("a split at the decode sequences runs mixed iterations only (--iterations mixed)")
    s["iterations"] = a.iterations
    if a.iterations != "mixed":
        s["name"] += f"-{a.iterations}"
    with open(a.output, "w") as f:
        json.dump(s, f, separators=(",", ":"))
        f.write("\n")
    print(f"{a.output}: {s['name']}, {len(s['nodes'])} nodes")


if __name__ == "__main__":
    main()
