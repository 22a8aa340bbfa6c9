#!/usr/bin/env python3
"""Our forward against Hugging Face transformers on a random-weight model with a real shape
(acceptance of issue 8: logits relative error <= 2e-2; greedy continuations identical for >= 95% of
prompts, divergences at near-ties).

Steps (all on one machine, one process at a time on the GPU):
  1. transformers builds the model from the real config.json (bf16, eager attention, its own
     random init, seeded; optionally fewer layers) and saves it as safetensors in WORK/model;
  2. it computes, for P random prompts of equal length L, the logits after each prompt and the
     greedy continuation of T tokens (one batch, no padding);
  3. `nanoflow dump-logits` loads WORK/model and does the same (tools: src/cli/cmd_dump_logits.cc);
  4. relative L2 error of the logits per prompt, identical continuations, and for each divergence
     the gap between the reference's token and ours in the reference's own logits at that point
     (a near-tie when it is small against the row's spread).
  The same weights upcast to f32 give the exact reference: ours and transformers' bf16 are both
  measured against it, so the bf16 drift of the model itself (large for random weights, growing
  with depth) is known next to ours.

  Options:
  --init hf|scaled  hf (default): transformers' own init, normal std initializer_range (0.02)
     everywhere, which makes a deep random model chaotic (bf16 rounding alone moves the logits by
     several percent at 32 layers). scaled: the Megatron-LM / GPT-2 scaled init, every
     residual-output projection (o_proj, down_proj, Mixtral's experts' w2) multiplied after the hf
     init by 1/sqrt(2 * L), L the real config's layer count even when --num-layers builds fewer (a
     reduced model is then the real one's first layers); applied before saving, so ours loads the
     same weights. Measured (init_conditioning_experiment.py, Llama-3-8B widths, CPU): it does NOT
     reduce the bf16 drift (transformers bf16 vs f32 median 0.017/0.023/0.034 at 2/4/8 layers, the
     same as hf to 2 digits): in a pre-norm model every branch sees only RMS-normalized input, so
     scaling all residual outputs by c equals scaling the embedding by 1/c (up to the norm's eps);
     the drift comes from the q/k/gate/up gains, which it leaves alone.
  --peer-sdpa  also runs transformers in --dtype with attn_implementation="sdpa" on the same
     weights: how far two correct implementations of the same dtype are apart (sdpa vs eager
     relative error, identical greedy continuations; sdpa vs f32).
  --skip-nanoflow  transformers' runs only (no binary needed; the ours fields are null).

  python tools/peers/hf_real_shape_check.py --config-dir Meta-Llama-3-8B-Instruct --work-dir /tmp/l3 \
      --nanoflow .gpuengine/bin/nanoflow --init scaled --peer-sdpa --output-json l3.json
Local plumbing check (CPU, f32, tiny config): --device cpu --dtype float32 --backend cpu.
See also init_conditioning_experiment.py (bf16 vs f32 and sdpa vs eager by init and depth, CPU).
"""
import argparse
import json
import math
import os
import subprocess
import time

import numpy as np
import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM


def scale_residual_outputs(model, real_layers):
    """Scaled init: multiplies every residual-output projection's weight (o_proj, down_proj, experts'
    w2, or transformers 5's fused experts.down_proj [E, hidden, intermediate]; never biases or norms)
    by 1/sqrt(2 * real_layers). Returns how many tensors were scaled."""
    s = 1.0 / math.sqrt(2 * real_layers)
    n = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = name[:-len(".weight")] if name.endswith(".weight") else name
            if base.rsplit(".", 1)[-1] in ("o_proj", "down_proj", "w2") and not name.endswith(".bias"):
                p.mul_(s)
                n += 1
    return n


def set_attn(model, impl):
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(impl)
    else:  # older transformers
        model.config._attn_implementation = impl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config-dir", required=True)
    ap.add_argument("--work-dir", required=True)
    ap.add_argument("--nanoflow", default="", help="the nanoflow binary")
    ap.add_argument("--backend", default="cuda")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--num-layers", type=int, default=0)
    ap.add_argument("--num-prompts", type=int, default=64)
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output-json", default="")
    ap.add_argument("--no-f32-reference", action="store_true", help="skip the f32 calibration run")
    ap.add_argument("--init", default="hf", choices=["hf", "scaled"],
                    help="hf: transformers' init; scaled: residual-output projections x 1/sqrt(2*L_real)")
    ap.add_argument("--peer-sdpa", action="store_true",
                    help="also run transformers with sdpa attention on the same weights")
    ap.add_argument("--skip-nanoflow", action="store_true", help="transformers' runs only")
    ap.add_argument("--hf-batch1", type=int, default=0,
                    help="> 0: also run transformers (--dtype) on the first N prompts one at a time (batch 1) and "
                         "compare with its batched run: how far transformers is from itself when only the batch "
                         "(hence the GEMM algorithms and summation order) changes")
    ap.add_argument("--numerics", default="fast",
                    help="comma-separated `nanoflow dump-logits --numerics` values to run (fast, transformers); "
                         "the first is the headline, every one is reported")
    ap.add_argument("--init-std", type=float, default=0.0,
                    help="> 0: initializer_range for transformers' init (default: the config's, 0.02); "
                         "0.006 makes the random model far less chaotic (init_conditioning_experiment.py)")
    a = ap.parse_args()
    if not a.skip_nanoflow and not a.nanoflow:
        ap.error("--nanoflow is required unless --skip-nanoflow")
    dtype = getattr(torch, a.dtype)
    os.makedirs(a.work_dir, exist_ok=True)
    model_dir = os.path.join(a.work_dir, "model")
    t0 = time.time()

    torch.manual_seed(a.seed)
    cfg = AutoConfig.from_pretrained(a.config_dir)
    real_layers = cfg.num_hidden_layers
    if a.init_std > 0:
        cfg.initializer_range = a.init_std
    if a.num_layers > 0:
        cfg.num_hidden_layers = a.num_layers
    with torch.device(a.device):
        model = AutoModelForCausalLM.from_config(cfg, torch_dtype=dtype, attn_implementation="eager")
    model.eval()
    scaled_tensors = scale_residual_outputs(model, real_layers) if a.init == "scaled" else 0
    model.save_pretrained(model_dir, safe_serialization=True)

    vocab = cfg.vocab_size
    g = torch.Generator().manual_seed(a.seed + 1)
    ids = torch.randint(0, min(vocab, 100000), (a.num_prompts, a.prompt_len), generator=g)
    with open(os.path.join(a.work_dir, "prompts.json"), "w") as f:
        json.dump({"prompts": ids.tolist()}, f)
    torch.backends.cuda.matmul.allow_tf32 = False  # the f32 reference is plain f32
    torch.backends.cudnn.allow_tf32 = False
    # bf16 GEMMs with f32 split-K reductions only (torch allows bf16 partial sums by default): every
    # output one f32 sum rounded once, the reference's best accuracy.
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False

    def run_hf(m, keep_steps=False):
        """Prompt-end logits, greedy continuations and (keep_steps) the generate run's own logits
        at every step, [steps][prompts, vocab] f32 on the CPU: divergences are judged in the very
        logits the reference chose from (a recompute at batch 1 differs, see --hf-batch1)."""
        with torch.no_grad():
            dev_ids = ids.to(a.device)
            logits = m(dev_ids).logits[:, -1, :].float().cpu().numpy()
            # No end-of-sequence token: generation runs the full length without suppressing any
            # logit (min_new_tokens would mask EOS, which nanoflow's greedy loop does not).
            m.generation_config.eos_token_id = None
            out = m.generate(dev_ids, attention_mask=torch.ones_like(dev_ids), max_new_tokens=a.new_tokens,
                             do_sample=False, pad_token_id=0, output_logits=keep_steps,
                             return_dict_in_generate=True)
            steps = [x.float().cpu() for x in out.logits] if keep_steps else None
        return logits, out.sequences[:, a.prompt_len:].cpu().tolist(), steps

    # transformers in the chosen dtype (what users run), then the same weights upcast to f32: the
    # f32 run is the exact reference, and the bf16 run's own distance from it calibrates what
    # bf16 arithmetic alone costs on this model (random weights drift chaotically with depth).
    hf_logits, hf_greedy, hf_steps = run_hf(model, keep_steps=True)
    sdpa_logits, sdpa_greedy = None, None
    if a.peer_sdpa:  # a second correct implementation in the same dtype, same weights
        set_attn(model, "sdpa")
        sdpa_logits, sdpa_greedy, _ = run_hf(model)
        set_attn(model, "eager")
    b1 = None
    if a.hf_batch1 > 0:  # transformers against itself, batch 1 vs the batch of all prompts
        nb = min(a.hf_batch1, a.num_prompts)
        b1_logits, b1_greedy = [], []
        for i in range(nb):
            with torch.no_grad():
                one = ids[i:i + 1].to(a.device)
                b1_logits.append(model(one).logits[0, -1, :].float().cpu().numpy())
                model.generation_config.eos_token_id = None
                out = model.generate(one, attention_mask=torch.ones_like(one), max_new_tokens=a.new_tokens,
                                     do_sample=False, pad_token_id=0)
                b1_greedy.append(out[0, a.prompt_len:].cpu().tolist())
        r = [float(np.linalg.norm(b1_logits[i] - hf_logits[i]) / np.linalg.norm(hf_logits[i])) for i in range(nb)]
        b1 = {"prompts": nb, "logits_rel_err_max": max(r), "logits_rel_err_median": float(np.median(r)),
              "greedy_identical": sum(1 for i in range(nb) if b1_greedy[i] == hf_greedy[i])}
        print(f"transformers batch 1 vs batch {a.num_prompts}: {b1}")
    ref_logits, ref_greedy, ref_steps = (hf_logits, hf_greedy, hf_steps)
    if a.dtype != "float32" and not a.no_f32_reference:
        model = model.float()
        ref_logits, ref_greedy, ref_steps = run_hf(model, keep_steps=True)
    t_hf = time.time() - t0

    # Free the GPU for our process (divergences are judged in the generate runs' own step logits).
    del model
    if a.device == "cuda":
        torch.cuda.empty_cache()
    t1 = time.time()
    ours_logits, ours_greedy, t_ours = None, None, None
    numerics = [n for n in a.numerics.split(",") if n]
    if not numerics and not a.skip_nanoflow:
        ap.error("--numerics needs at least one mode")
    ours_runs = {}
    if not a.skip_nanoflow:
        for num in numerics:
            ours_bin = os.path.join(a.work_dir, f"ours_{num}.bin")
            ours_json = os.path.join(a.work_dir, f"ours_{num}.json")
            tn = time.time()
            cmd = [a.nanoflow, "dump-logits", "--model", model_dir, "--backend", a.backend, "--prompts",
                   os.path.join(a.work_dir, "prompts.json"), "--new-tokens", str(a.new_tokens),
                   "--out-logits", ours_bin, "--out-json", ours_json]
            if a.backend == "cuda":
                cmd += ["--numerics", num]
            subprocess.run(cmd, check=True)
            ours_runs[num] = (np.fromfile(ours_bin, dtype=np.float32).reshape(a.num_prompts, vocab),
                              json.load(open(ours_json))["greedy"], time.time() - tn)
        ours_logits, ours_greedy, t_ours = ours_runs[numerics[0]]

    def rel_err(x, y):
        if x is None or y is None:
            return None
        r = [float(np.linalg.norm(x[i] - y[i]) / np.linalg.norm(y[i])) for i in range(a.num_prompts)]
        return {"max": max(r), "median": float(np.median(r))}

    def same(x, y):
        if x is None or y is None:
            return None
        return sum(1 for i in range(a.num_prompts) if x[i] == y[i])

    rel = rel_err(ours_logits, hf_logits) or {"max": None, "median": None}
    identical = same(ours_greedy, hf_greedy)
    divergences = []
    diverging = [] if ours_greedy is None else [i for i in range(a.num_prompts) if ours_greedy[i] != ref_greedy[i]]
    # Near-ties are judged in the exact (f32) reference's own logits at the divergence point, the
    # row its generate run chose from.
    for i in diverging:
        d = next(k for k in range(a.new_tokens) if ours_greedy[i][k] != ref_greedy[i][k])
        row = ref_steps[d][i].numpy()
        top2 = np.sort(row)[-2:]
        divergences.append({
            "prompt": i, "at": d,
            "ref_token": ref_greedy[i][d], "our_token": ours_greedy[i][d],
            "gap_in_ref_logits": float(row[ref_greedy[i][d]] - row[ours_greedy[i][d]]),
            "ref_top2_gap": float(top2[1] - top2[0]),
            "row_std": float(row.std()),
        })
    gaps = [d["gap_in_ref_logits"] / d["row_std"] for d in divergences if d["row_std"] > 0]

    # Every numerics mode against transformers in --dtype: identical continuations, and at each
    # divergence transformers' own (bf16) logits there, the row its generate run chose from: gap 0
    # is an exact tie in its bf16 logits (torch.argmax takes the lower id), a small gap a near-tie.
    per_numerics = {}
    for num, (lg, gr, tn) in ours_runs.items():
        divs = []
        for i in [i for i in range(a.num_prompts) if gr[i] != hf_greedy[i]]:
            d = next(k for k in range(a.new_tokens) if gr[i][k] != hf_greedy[i][k])
            row = hf_steps[d][i].numpy()
            divs.append({"prompt": i, "at": d, "hf_token": hf_greedy[i][d], "our_token": gr[i][d],
                         "gap_in_hf_logits": float(row[hf_greedy[i][d]] - row[gr[i][d]]),
                         "row_std": float(row.std())})
        per_numerics[num] = {"logits_vs_hf": rel_err(lg, hf_logits), "logits_vs_f32": rel_err(lg, ref_logits),
                             "greedy_identical_vs_hf": same(gr, hf_greedy),
                             "greedy_identical_vs_f32": same(gr, ref_greedy),
                             "divergences_vs_hf": divs, "seconds": tn}
    res = {
        "check": "nanoflow vs transformers, random weights, real shape",
        "transformers": transformers.__version__, "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu",
        "config_dir": a.config_dir, "num_layers": cfg.num_hidden_layers, "dtype": a.dtype,
        "allow_bf16_reduced_precision_reduction": False,
        "init": a.init, "initializer_range": cfg.initializer_range, "real_num_layers": real_layers, "scaled_tensors": scaled_tensors,
        "residual_output_scale": 1.0 / math.sqrt(2 * real_layers) if a.init == "scaled" else 1.0,
        "backend": a.backend, "num_prompts": a.num_prompts, "prompt_len": a.prompt_len, "new_tokens": a.new_tokens,
        # ours vs transformers in --dtype (the acceptance comparison)
        "logits_rel_err_max": rel["max"], "logits_rel_err_median": rel["median"],
        "greedy_identical": identical,
        "greedy_identical_fraction": identical / a.num_prompts if identical is not None else None,
        # calibration against the f32 reference (same weights upcast)
        "ours_vs_f32": rel_err(ours_logits, ref_logits),
        "hf_vs_f32": rel_err(hf_logits, ref_logits),
        "greedy_identical_ours_vs_f32": same(ours_greedy, ref_greedy),
        "greedy_identical_hf_vs_f32": same(hf_greedy, ref_greedy),
        "divergences_vs_f32": divergences,
        # --peer-sdpa: transformers sdpa vs transformers eager, same dtype and weights
        "peer_sdpa": a.peer_sdpa,
        "sdpa_vs_eager": rel_err(sdpa_logits, hf_logits),
        "greedy_identical_sdpa_vs_eager": same(sdpa_greedy, hf_greedy),
        "sdpa_vs_f32": rel_err(sdpa_logits, ref_logits),
        "greedy_identical_sdpa_vs_f32": same(sdpa_greedy, ref_greedy),
        "divergence_gap_over_row_std_max": max(gaps) if gaps else None,
        "hf_s": t_hf, "ours_s": t_ours,
        "numerics": numerics, "per_numerics": per_numerics, "hf_batch1_vs_batched": b1,
    }
    print(json.dumps(res, indent=2))

    def fmt(r):
        return "n/a" if r is None else f"median {r['median']:.4g} max {r['max']:.4g}"

    def cnt(k):
        return "n/a" if k is None else f"{k}/{a.num_prompts}"
    print(f"\nsummary ({cfg.num_hidden_layers} layers, {a.dtype}, init {a.init}; logits rel err, greedy identical "
          f"over {a.new_tokens} tokens):")
    print(f"  ours vs hf eager   {fmt(rel_err(ours_logits, hf_logits))}  {cnt(identical)}")
    print(f"  ours vs f32        {fmt(res['ours_vs_f32'])}  {cnt(res['greedy_identical_ours_vs_f32'])}")
    print(f"  hf eager vs f32    {fmt(res['hf_vs_f32'])}  {cnt(res['greedy_identical_hf_vs_f32'])}")
    if a.peer_sdpa:
        print(f"  hf sdpa vs eager   {fmt(res['sdpa_vs_eager'])}  {cnt(res['greedy_identical_sdpa_vs_eager'])}")
        print(f"  hf sdpa vs f32     {fmt(res['sdpa_vs_f32'])}  {cnt(res['greedy_identical_sdpa_vs_f32'])}")
    for num, r in per_numerics.items():
        print(f"  ours ({num}) vs hf {a.dtype}: {fmt(r['logits_vs_hf'])}  {cnt(r['greedy_identical_vs_hf'])}; "
              f"vs f32 {cnt(r['greedy_identical_vs_f32'])}; divergences at hf-logit gaps "
              f"{[round(d['gap_in_hf_logits'] / max(d['row_std'], 1e-30), 4) for d in r['divergences_vs_hf']]} row std")
    if a.output_json:
        with open(a.output_json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
