"""Markdown tables for docs/perf/RESULTS.md from the JSON that `nanoflow bench ops` / `bench
roofline` / tools/gpu/sdpa_peer.py write. Usage: summarize.py OPS.json [SDPA.json]"""
import json
import sys


def main():
    ops = json.load(open(sys.argv[1]))
    c = ops["ceilings"]
    print(f"Device: {ops['device']} ({ops['sm_count']} SMs). Ceilings measured in the same run: bf16 GEMM 8192^3 "
          f"{c['gemm_tflops']:.0f} TFLOP/s; HBM copy {c['copy_gbs']:.0f} GB/s; streaming read "
          + ", ".join(f"{k.split('_')[-1]} SMs {v:.0f} GB/s" for k, v in c.items() if k.startswith("read_gbs_")) + ".\n")
    s = ops["summary"]
    if "gemm_vs_best_candidate" in s:
        print("| layer GEMM | M | ours TFLOP/s | best cuBLASLt candidate | ours / best |")
        print("|---|---|---|---|---|")
        for r in s["gemm_vs_best_candidate"]:
            print(f"| {r['layer']} | {r['m']} | {r['ours_tflops']:.0f} | {r['best_candidate_tflops']:.0f} | {100*r['ratio']:.0f}% |")
        print()
    if "gemm_112_partition" in s:
        print("| layer GEMM | M | whole GPU | 112-SM partition, default | 112-SM, SM_COUNT_TARGET=112 | % of linear (112/132 x whole) |")
        print("|---|---|---|---|---|---|")
        for r in s["gemm_112_partition"]:
            print(f"| {r['layer']} | {r['m']} | {r['whole_gpu_tflops']:.0f} | {r['p112_default_tflops']:.0f} | "
                  f"{r['p112_target_tflops']:.0f} | {r['pct_of_linear']:.0f}% |")
        print()
    if "decode_attention" in s:
        print("| decode attention | SMs | variant | GB/s | % of HBM copy | % of stream read on same SMs | splits |")
        print("|---|---|---|---|---|---|---|")
        for r in s["decode_attention"]:
            print(f"| {r['seqs']} seqs x {r['ctx']} ctx | {r['sms']} | {r.get('variant', 0)} | {r['gbs']:.0f} | "
                  f"{r['pct_copy']:.0f}% | {r['pct_read_same_sms']:.0f}% | {r['splits']} |")
        print()
    if "prefill_attention" in s:
        print("| prefill attention (ours, paged) | ms | TFLOP/s |")
        print("|---|---|---|")
        for r in s["prefill_attention"]:
            print(f"| {r['seqs']} x {r['len']} (cached prefix {r['cached']}) | {r['ms']:.3f} | {r['tflops']:.0f} |")
        print()
    if len(sys.argv) > 2:
        sd = json.load(open(sys.argv[2]))
        print(f"| PyTorch {sd['torch']} SDPA (dense, not paged) | backend | ms | TFLOP/s |")
        print("|---|---|---|---|")
        for r in sd["rows"]:
            print(f"| {r['batch']} x {r['seq']} | {r['backend']} | {r['ms']:.3f} | {r['tflops']:.0f} |")
        print()
    print("| op | shape | SMs | ms | TFLOP/s or GB/s | % of ceiling |")
    print("|---|---|---|---|---|---|")
    for r in ops["rows"]:
        if r["op"].startswith(("gemm", "decode", "prefill")):
            continue
        val = f"{r['tflops']:.0f} TFLOP/s" if r["tflops"] > 0 else f"{r['gbs']:.0f} GB/s"
        print(f"| {r['op']} | {r['shape']} | {r['sms']} | {r['ms']:.4f} | {val} | {r['pct_of_ceiling']:.0f}% of {r['ceiling']} |")


if __name__ == "__main__":
    main()
