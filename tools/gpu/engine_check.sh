#!/usr/bin/env bash
# On the GPU machine, in one go (../shared/GPU.md): the GPU engine tests, then `nanoflow bench
# throughput` on preset:llama3-8b against transformers generate (tools/peers/hf_generate.py) on the
# same card in the same run, then further workloads while the time budget lasts. Everything goes
# to OUT/log.txt; each benchmark's JSON to OUT/<name>.json; a table last.
# Usage: tools/gpu/engine_check.sh CARRY_DIR OUT_DIR [budget_seconds] [mode]
#   mode full (default): 1024/512 ours + peer, Splitwise, 512/512, 512/1024 (300-600 requests);
#   mode scale: 1024/512 with 1000 requests and a running set of 1024, at 2048 and 4096 tokens per
#   iteration (the steady state the offline benchmark should measure), and the peer;
#   mode cap: 1024/512 with the running set capped at 680, token budgets 4096 and 2048;
#   mode final: realshape Llama-3-8B, 1024/512 at running sets 680 and 1024, and the peer;
#   mode realshape: tools/peers/hf_real_shape_check.py (ours vs transformers on random weights with
#   the real shapes: Llama-3-8B, Qwen2-7B, Mixtral-8x7B reduced to 4 layers), 64 prompts x 64 tokens;
#   mode overlap: 1024/512 sequential vs the decode-overlap schedule at three SM splits (overlap gain);
#   mode pipeline / pipeline2: 512/1024 sequential vs the interleaved pipeline schedule on
#   decode-only iterations (runs 19-20 of RESULTS.md);
#   mode serving: `nanoflow bench serving` (Poisson arrivals, TTFT/TPOT) on the Splitwise trace;
#   mode power: SM clock and power (nvidia-smi) during 1024/512 sequential and overlapped;
#   mode tune: `nanoflow tune` (sequential vs the pipeline) on a short 512/1024 workload;
#   mode regress: Mixtral greedy agreement and 1024/512 of this tree vs OLD_CARRY's binary;
#   mode exact / exact2: greedy agreement with transformers bf16 in both --numerics modes (tiny
#   goldens, Llama-3-8B, Qwen2-7B / Mixtral 4 layers) and the throughput cost of --numerics transformers.
# (CARRY_DIR from tools/gpu/build_engine.sh.)
set -u
C=$(cd "${1:?carry dir}" && pwd)
OUT=${2:?out dir}
BUDGET=${3:-330}
MODE=${4:-full}
t_start=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - t_start))); }
export NANOFLOW_MODELS_DIR=$C/models
export NF_SOURCE_DIR=${NF_SOURCE_DIR:-$(pwd)}  # goldens under tests/data (run from the repository root)
LOG=$OUT/log.txt
say() { echo "== $* (t=$(($(date +%s) - t_start))s)" | tee -a "$LOG"; }

for f in "$C"/bin/*.xz; do [ -e "$f" ] && xz -dkf "$f"; done
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$LOG"

if [ "$MODE" = smol ]; then
  # SmolLM2-135M GGUF (98 MB) exceeds one call's carry: its parts came in consecutive calls
  # (SMOL_PARTS, a glob), checked against the sha256 made here.
  cat $SMOL_PARTS > /tmp/smol.gguf
  echo "$SMOL_SHA256  /tmp/smol.gguf" | sha256sum -c | tee -a "$LOG"
  say "SmolLM2 greedy on the GPU"
  NF_SMOLLM2_GGUF=/tmp/smol.gguf timeout 120 "$C/bin/gpu_engine_model_test" --gtest_filter='GpuSmolLM2*' >>"$LOG" 2>&1
  echo "smollm2 rc=$?" | tee -a "$LOG"
  grep -E "SmolLM2|PASSED|FAILED|prompt [0-9]" "$LOG" | head -30
  exit 0
fi

say "gpu tests"
for t in ${TESTS:-gpu_engine_model_test gpu_schedule_test gpu_ops_test gpu_attention_test}; do  # TESTS: a subset
  [ -e "$C/bin/$t" ] || continue
  timeout 150 "$C/bin/$t" >>"$LOG" 2>&1
  echo "$t rc=$?" | tee -a "$LOG"
done
grep -E "^\[  (FAILED|PASSED) |rel err|greedy identical|preset|executor:|graph|SmolLM2|schedule " "$LOG" | head -80

ours() {  # name timeout args...
  local name=$1 t=$2
  shift 2
  if [ "$(left)" -lt "$t" ]; then say "skip $name (budget)"; return; fi
  say "ours $name"
  env ${NANOFLOW_OP_PROFILE:+NANOFLOW_OP_PROFILE=$NANOFLOW_OP_PROFILE} timeout "$t" "${NANOFLOW_BIN:-$C/bin/nanoflow}" bench throughput --model preset:llama3-8b --output-json "$OUT/$name.json" "$@" >>"$LOG" 2>&1
  echo "$name rc=$?" | tee -a "$LOG"
}
peer() {  # name timeout args...
  local name=$1 t=$2
  shift 2
  if [ "$(left)" -lt "$t" ]; then say "skip $name (budget)"; return; fi
  say "peer $name"
  PYTHONUNBUFFERED=1 timeout "$t" python3 tools/peers/hf_generate.py --config-dir "$C/models/Meta-Llama-3-8B-Instruct" \
    --output-json "$OUT/$name.json" "$@" >>"$LOG" 2>&1
  echo "$name rc=$?" | tee -a "$LOG"
}

real() {  # name timeout config-folder args...
  local name=$1 t=$2 cfgdir=$3
  shift 3
  if [ "$(left)" -lt "$t" ]; then say "skip $name (budget)"; return; fi
  say "real-shape check $name"
  PYTHONUNBUFFERED=1 timeout "$t" python3 tools/peers/hf_real_shape_check.py --config-dir "$C/models/$cfgdir" \
    --work-dir "/tmp/rs_$name" --nanoflow "$C/bin/nanoflow" --output-json "$OUT/$name.json" "$@" >>"$LOG" 2>&1
  echo "$name rc=$?" | tee -a "$LOG"
  rm -rf "/tmp/rs_$name"
}

sched() {  # gemm_sms attn_sms [kind] [gemm_sm_target] -> prints the path of a 32-layer schedule
  local kind=${3:-decode-overlap} t=${4:-0}
  "$C/bin/nanoflow" schedule --kind "$kind" --layers 32 --gemm-sms "$1" --attn-sms "$2" \
    --gemm-sm-target "$t" -o "/tmp/${kind}_$1_$2_t$t.json" >/dev/null && echo "/tmp/${kind}_$1_$2_t$t.json"
}

psched() {  # gemm_sms attn_sms remainder(none|attn) iterations(mixed|decode|all) -> path of a 32-layer pipeline schedule
  local f="/tmp/pipeline_$1_$2_$3_$4.json"
  "$C/bin/nanoflow" schedule --kind pipeline --layers 32 --gemm-sms "$1" --attn-sms "$2" \
    --remainder "$3" --iterations "$4" -o "$f" >/dev/null && echo "$f"
}

serving() {  # name timeout args... (nanoflow bench serving)
  local name=$1 t=$2
  shift 2
  if [ "$(left)" -lt "$t" ]; then say "skip $name (budget)"; return; fi
  say "serving $name"
  timeout "$t" "$C/bin/nanoflow" bench serving --model preset:llama3-8b --output-json "$OUT/$name.json" "$@" >>"$LOG" 2>&1
  echo "$name rc=$?" | tee -a "$LOG"
  grep -E "^rate " "$LOG" | tail -n 8
}

if [ "$MODE" = regress ]; then
  # OLD_CARRY: another build's carry dir (tools/gpu/build_engine.sh at an earlier commit). Mixtral (MIXTRAL=0: not)
  # (4 layers, 32 prompts: 64 do not fit transformers' eager generate on an 80 GB card), then
  # 1024/512 with this tree's binary and the earlier one back to back on the same card.
  [ "${MIXTRAL:-1}" = 1 ] && real mixtral_4l_std006 170 Mixtral-8x7B-Instruct-v0.1 --num-layers 4 --init-std 0.006 \
    --numerics transformers,fast --num-prompts 32
  W="--input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680 --max-batch-tokens 2048"
  ours new_1024_512 110 $W
  O=$(cd "${OLD_CARRY:?}" && pwd)
  for f in "$O"/bin/nanoflow.xz; do [ -e "$f" ] && xz -dkf "$f"; done
  NANOFLOW_BIN=$O/bin/nanoflow ours old_1024_512 110 $W
  grep -E "^  ours \(|rc=|tok/s" "$LOG"
elif [ "$MODE" = diag ]; then
  # Where ours and transformers part: 1 layer of Llama-3-8B, and transformers against itself (batch 1
  # vs batch 64) at full depth; 1024/512 throughput of the default path; Mixtral (4 layers).
  real l3_1layer 90 Meta-Llama-3-8B-Instruct --num-layers 1 --init-std 0.006 --numerics transformers,fast --num-prompts 16
  ours seq_1024_512 110 --input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680 --max-batch-tokens 2048
  real l3_batch1 260 Meta-Llama-3-8B-Instruct --init-std 0.006 --numerics transformers,fast --hf-batch1 16 --no-f32-reference
  real mixtral_4l_std006 150 Mixtral-8x7B-Instruct-v0.1 --num-layers 4 --init-std 0.006 --numerics transformers,fast \
    --num-prompts 32  # 64 OOM transformers' eager generate on an 80 GB card (run 27)
  grep -E "^  ours \(|transformers batch 1|rc=|tok/s" "$LOG"
elif [ "$MODE" = exact ] || [ "$MODE" = exact2 ]; then
  # Greedy agreement with transformers bf16 (issue 8): both numerics modes of ours on the tiny golden
  # models (transformers bf16 on the same folders) and on the real shapes (initializer_range 0.006);
  # exact2: the throughput cost of --numerics transformers (512/512).
  if [ "$MODE" = exact ]; then
    say "tiny goldens vs transformers bf16"
    PYTHONUNBUFFERED=1 timeout 150 python3 tools/peers/hf_tiny_greedy_check.py --nanoflow "$C/bin/nanoflow" \
      --golden-root tests/data/golden --work-dir /tmp/tiny --numerics fast,transformers --output-json "$OUT/tiny.json" \
      >>"$LOG" 2>&1
    echo "tiny rc=$?" | tee -a "$LOG"
    real llama3_8b_std006 200 Meta-Llama-3-8B-Instruct --init-std 0.006 --numerics transformers,fast
    real qwen2_7b_std006 200 Qwen2-7B-Instruct --init-std 0.006 --numerics transformers,fast
  else
    W="--input-len 512 --output-len 512 --num-prompts 400 --max-running 512"
    ours num_fast_512_512 90 $W
    ours num_transformers_512_512 150 $W --numerics transformers
  fi
  grep -E "^  ours \(|identical to transformers bf16|transformers bf16 vs the f32|rc=" "$LOG"
elif [ "$MODE" = tune ]; then
  # `nanoflow tune` on a short decode-heavy workload: the sequential baseline and the pipeline.
  say "tune"
  timeout 150 "$C/bin/nanoflow" tune --model preset:llama3-8b --input-len 512 --output-len 1024 --num-prompts 120 \
    --max-running 640 --candidate pipeline:88:32:attn:decode -o "$OUT/tuned.json" --output-json "$OUT/tune_report.json" \
    >>"$LOG" 2>&1
  echo "tune rc=$?" | tee -a "$LOG"
  grep -E "^tune: " "$LOG"
elif [ "$MODE" = power ]; then
  # SM clock and board power while the sequential pipeline and the best overlap schedule run
  # (nvidia-smi every 250 ms into OUT/smi.csv): is the card power-limited in the GEMM-heavy phases?
  q=timestamp,clocks.sm,clocks.mem,power.draw,power.limit,temperature.gpu
  nvidia-smi --query-gpu=$q,clocks_event_reasons.active --format=csv -lms 250 >"$OUT/smi.csv" 2>>"$LOG" &
  smi=$!
  sleep 1
  if ! kill -0 $smi 2>/dev/null; then
    nvidia-smi --query-gpu=$q --format=csv -lms 250 >"$OUT/smi.csv" 2>>"$LOG" &
    smi=$!
  fi
  W="--input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680 --max-batch-tokens 2048"
  say "idle 3 s"; sleep 3
  ours seq_b2048 110 $W
  say "idle 3 s"; sleep 3
  ours ov0_b2048 110 $W --schedule "$(sched 0 24)"
  kill $smi
elif [ "$MODE" = serving ]; then
  # Online serving (PERF.md): Poisson arrivals of Splitwise conversation requests at three rates.
  serving serving_splitwise 240 --dataset "$C/datasets/AzureLLMInferenceTrace_conv.csv" --num-prompts ${SERVING_PROMPTS:-300} \
    --max-running 680 --max-batch-tokens 2048 --request-rate ${SERVING_RATES:-8,16,24}
elif [ "$MODE" = final3 ]; then
  # After the executor's empty-nano-batch fallback: 1024/512 sequential (no regression against the
  # earlier calls), and 512/1024 sequential vs the pipeline on decode iterations, unprofiled.
  ours seq_b2048 110 --input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680 --max-batch-tokens 2048
  W="--input-len 512 --output-len 1024 --num-prompts 600 --max-running 640"
  ours seq_d1024 100 $W
  ours pl88a32r_d1024 100 $W --schedule "$(psched 88 32 attn decode)"
elif [ "$MODE" = pipeline2 ]; then
  # Where the time of a sequential decode-only iteration goes at 512/1024 (graphs off, op profile),
  # next to the pipeline on two plain whole-GPU streams (no partitions) and the best split of the
  # first pipeline call again.
  W="--input-len 512 --output-len 1024 --num-prompts 600 --max-running 640"
  ours seq_d1024 100 $W
  NANOFLOW_OP_PROFILE=8 ours seqprof_d1024 100 $W --cuda-graphs off
  ours pl0a0_d1024 100 $W --schedule "$(psched 0 0 none decode)"
  ours pl88a32r_d1024 100 $W --schedule "$(psched 88 32 attn decode)"
elif [ "$MODE" = pipeline ]; then
  # NanoFlow's two-nano-batch interleaving on decode-only iterations, where the decode attention
  # is about half the time (512/1024 runs mostly decode-only iterations), against the sequential
  # forward with CUDA graphs, same call; attention partitions with the 12 remainder SMs; then
  # 1024/512 with the pipeline on every iteration.
  W="--input-len 512 --output-len 1024 --num-prompts 600 --max-running 640"
  ours seq_d1024 100 $W
  # (Run 19 profiled this one under the name pl88a32r_d1024: its gain then includes the profiler's
  # cost; named plprof_ so that the summary's gain lines skip it.)
  NANOFLOW_OP_PROFILE=8 ours plprof88a32r_d1024 100 $W --schedule "$(psched 88 32 attn decode)"
  ours pl88a32r_d1024 100 $W --schedule "$(psched 88 32 attn decode)"
  ours pl80a40r_d1024 100 $W --schedule "$(psched 80 40 attn decode)"
  ours pl0a32r_d1024 100 $W --schedule "$(psched 0 32 attn decode)"
  # (run 19 also measured 96 + remainder SMs for the GEMMs, 24 for attention: 0.865x; GEMM streams
  # no longer take the remainder, DESIGN.md.)
  W="--input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680 --max-batch-tokens 2048"
  ours seq_b2048 110 $W
  ours pl88a32rall_b2048 110 $W --schedule "$(psched 88 32 attn all)"
elif [ "$MODE" = sprofile ]; then
  # Where the time goes inside scheduled iterations (per op and lane, NANOFLOW_OP_PROFILE) next to
  # the sequential forward's op profile, same call.
  W="--input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680 --max-batch-tokens 2048"
  NANOFLOW_OP_PROFILE=8 ours seq_b2048 110 $W
  NANOFLOW_OP_PROFILE=8 ours ovp96_b2048 110 $W --schedule "$(sched 96 24 decode-overlap-phased)"
  NANOFLOW_OP_PROFILE=8 ours ovpt108_b2048 110 $W --schedule "$(sched 0 24 decode-overlap-phased 108)"
  NANOFLOW_OP_PROFILE=8 ours ov96_b2048 110 $W --schedule "$(sched 96 24)"
elif [ "$MODE" = verify ]; then
  # After a kernel change: the tests above, then 1024/512 sequential (against earlier calls' rate).
  W="--input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680 --max-batch-tokens 2048"
  ours seq_b2048 110 $W
  ours seq_b2048_nographs 110 $W --cuda-graphs off
elif [ "$MODE" = target ]; then
  # GEMMs on a whole-GPU stream whose grids target fewer SMs (SM_COUNT_TARGET), leaving the rest to
  # the decode attention's 24-SM green context, without confining the GEMM stream's other kernels.
  W="--input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680 --max-batch-tokens 2048"
  ours seq_b2048 110 $W
  ours ovt108_b2048 110 $W --schedule "$(sched 0 24 decode-overlap 108)"
  ours ovpt108_b2048 110 $W --schedule "$(sched 0 24 decode-overlap-phased 108)"
  ours ovt100_b2048 110 $W --schedule "$(sched 0 24 decode-overlap 100)"
  ours ovpt108_b4096 110 ${W/2048/4096} --schedule "$(sched 0 24 decode-overlap-phased 108)"
  ours seq_b4096 110 ${W/2048/4096}
elif [ "$MODE" = last ]; then
  # Two more overlap variants (plain whole-GPU streams) against sequential, and the real-shape
  # check on a less chaotic init (initializer_range 0.006) with transformers' sdpa as a second peer.
  W="--input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680 --max-batch-tokens 2048"
  ours seq_b2048 110 $W
  ours ov0x0_b2048 110 $W --schedule "$(sched 0 0)"
  ours ovp0_b2048 110 $W --schedule "$(sched 0 24 decode-overlap-phased)"
  real real_llama3_8b_std006 250 Meta-Llama-3-8B-Instruct --init-std 0.006 --peer-sdpa
elif [ "$MODE" = phased ]; then
  # Three-stream phased overlap (`nanoflow schedule`) vs sequential, and the
  # real-shape check with transformers' sdpa attention as a second bf16 peer.
  W="--input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680 --max-batch-tokens 2048"
  ours seq_b2048 110 $W
  ours ovp96_b2048 110 $W --schedule "$(sched 96 24 decode-overlap-phased)"
  ours ovp104_b2048 110 $W --schedule "$(sched 104 16 decode-overlap-phased)"
  real real_llama3_8b_sdpa 290 Meta-Llama-3-8B-Instruct --peer-sdpa
elif [ "$MODE" = overlap ]; then
  # The nano-batch pipeline (decode attention of the decode sequences on its own SM partition,
  # under the prefill nano-batch's GEMMs) against the sequential one, same card, same call: the
  # overlap gain (PERF.md). SM splits 96/24, 104/16, 88/32 (the driver makes 15 equal groups of 8
  # of the 132 SMs); token budgets 2048 and 4096.
  W="--input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680"
  ours seq_b2048 110 $W --max-batch-tokens 2048
  ours ov96_b2048 110 $W --max-batch-tokens 2048 --schedule "$(sched 96 24)"
  ours ov0_b2048 110 $W --max-batch-tokens 2048 --schedule "$(sched 0 24)"  # GEMM lane: whole GPU, no partition
  ours ov104_b2048 110 $W --max-batch-tokens 2048 --schedule "$(sched 104 16)"
  ours seq_b4096 110 $W --max-batch-tokens 4096
  ours ov96_b4096 110 $W --max-batch-tokens 4096 --schedule "$(sched 96 24)"
  ours ov88_b2048 110 $W --max-batch-tokens 2048 --schedule "$(sched 88 32)"
elif [ "$MODE" = final2 ]; then
  # Every workload of issue 8 with the peer in the same call. (Mode steady: 1024/512 with 4000
  # requests, where the decode-only tail — about output-len iterations, whatever the request
  # count — weighs less and the run approaches the steady mixed-iteration rate.)
  ours ours_1024_512 110 --input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680 --max-batch-tokens 2048
  peer hf_1024_512 110 --input-len 1024 --output-len 512 --num-prompts 64 --batch-size 64
  ours ours_splitwise 80 --dataset "$C/datasets/AzureLLMInferenceTrace_conv.csv" --num-prompts 1000 --max-running 680
  ours ours_512_512 70 --input-len 512 --output-len 512 --num-prompts 1000 --max-running 960
  ours ours_512_1024 100 --input-len 512 --output-len 1024 --num-prompts 600 --max-running 640
elif [ "$MODE" = graphs ]; then
  # Decode-only iterations as CUDA graphs vs eager, side by side (the tail of 1024/512; 512/1024
  # is the decode-heaviest workload).
  for g in off on; do
    ours ours_1024_512_graphs_$g 110 --input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680 --max-batch-tokens 2048 --cuda-graphs $g
  done
  for g in off on; do
    ours ours_512_1024_graphs_$g 100 --input-len 512 --output-len 1024 --num-prompts 600 --max-running 640 --cuda-graphs $g
  done
elif [ "$MODE" = steady ]; then
  NANOFLOW_OP_PROFILE=16 ours ours_1024_512_n4000 300 --input-len 1024 --output-len 512 --num-prompts 4000 --max-running 680 --max-batch-tokens 2048
elif [ "$MODE" = profile ]; then
  # Where the GPU time of an iteration goes (NANOFLOW_OP_PROFILE), then the real-shape check with
  # the f32 calibration (ours and transformers' bf16 both against the same weights in f32).
  NANOFLOW_OP_PROFILE=8 ours ours_1024_512 110 --input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680 --max-batch-tokens 2048
  real real_llama3_8b 260 Meta-Llama-3-8B-Instruct
  real real_llama3_8b_8l 90 Meta-Llama-3-8B-Instruct --num-layers 8 --num-prompts 16 --new-tokens 16
  real real_qwen2_7b 200 Qwen2-7B-Instruct
  real real_mixtral_4l 150 Mixtral-8x7B-Instruct-v0.1 --num-layers 4
elif [ "$MODE" = realshape ]; then
  real real_llama3_8b 200 Meta-Llama-3-8B-Instruct
  real real_qwen2_7b 200 Qwen2-7B-Instruct
  real real_mixtral_4l 150 Mixtral-8x7B-Instruct-v0.1 --num-layers 4
elif [ "$MODE" = final ]; then
  # One call for the open points: real-shape correctness, and whether capping the running set
  # (so that the KV pool is not overcommitted into preemptions) lifts 1024/512 past 55% of optimal.
  real real_llama3_8b 200 Meta-Llama-3-8B-Instruct
  ours ours_1024_512 110 --input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680 --max-batch-tokens 4096
  ours ours_1024_512_r1024 110 --input-len 1024 --output-len 512 --num-prompts 1000 --max-running 1024 --max-batch-tokens 4096
  peer hf_1024_512 110 --input-len 1024 --output-len 512 --num-prompts 64 --batch-size 64
elif [ "$MODE" = cap ]; then
  # The running set capped so the KV pool is not overcommitted, at two token budgets.
  ours ours_1024_512 110 --input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680 --max-batch-tokens 4096
  ours ours_1024_512_b2048 110 --input-len 1024 --output-len 512 --num-prompts 1000 --max-running 680 --max-batch-tokens 2048
elif [ "$MODE" = scale ]; then
  ours ours_1024_512_n1000_b2048 110 --input-len 1024 --output-len 512 --num-prompts 1000 --max-running 1024 --max-batch-tokens 2048
  peer hf_1024_512 110 --input-len 1024 --output-len 512 --num-prompts 64 --batch-size 64
  ours ours_1024_512_n700_b4096 75 --input-len 1024 --output-len 512 --num-prompts 700 --max-running 1024 --max-batch-tokens 4096
else
  ours ours_1024_512 150 --input-len 1024 --output-len 512 --num-prompts ${NUM_1024_512:-300}
  peer hf_1024_512 130 --input-len 1024 --output-len 512 --num-prompts 64 --batch-size 64
  ours ours_splitwise 90 --dataset "$C/datasets/AzureLLMInferenceTrace_conv.csv" --num-prompts 600
  ours ours_512_512 70 --input-len 512 --output-len 512 --num-prompts 400
  ours ours_512_1024 80 --input-len 512 --output-len 1024 --num-prompts 300
fi

say "summary"
python3 - "$OUT" <<'PY' | tee -a "$LOG"
import glob, json, os, sys
rows = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    j = json.load(open(f))
    if "logits_rel_err_max" in j:
        print(f"{os.path.basename(f)[:-5]} ({j['num_layers']} layers): ours vs transformers {j['dtype']}: logits rel err "
              f"max {j['logits_rel_err_max']:.4f} median {j['logits_rel_err_median']:.4f}; greedy identical "
              f"{j['greedy_identical']}/{j['num_prompts']}")
        if "ours_vs_f32" in j:
            print(f"    vs f32 reference: ours {j['ours_vs_f32']['max']:.4f}/{j['ours_vs_f32']['median']:.4f}, "
                  f"transformers {j['hf_vs_f32']['max']:.4f}/{j['hf_vs_f32']['median']:.4f} (max/median); greedy "
                  f"identical ours {j['greedy_identical_ours_vs_f32']}, transformers {j['greedy_identical_hf_vs_f32']}; "
                  f"max divergence gap / row std {j['divergence_gap_over_row_std_max']}")
        continue
    rows.append((os.path.basename(f)[:-5], j))
print(f"{'run':16} {'device':28} {'workload':12} {'reqs':>5} {'total tok/s':>12} {'out tok/s':>10} {'%opt':>6} {'busy':>6}")
for n, j in rows:
    wl = j.get("workload", "")
    wl = (os.path.basename(wl) if wl.endswith(".csv") else wl)[:12]
    print(f"{n:16} {j.get('device','')[:28]:28} {wl:12} {j.get('num_requests',0):5} {j.get('total_tokens_per_s',0):12.0f} "
          f"{j.get('output_tokens_per_s',0):10.0f} {j.get('percent_of_optimal',0):6.1f} {j.get('gpu_busy_fraction',0):6.3f}")
d = dict(rows)
for n, j in rows:
    if n.startswith(("ov", "pl")) and not n.startswith("plprof") and "_" in n and "seq_" + n.split("_", 1)[1] in d:
        base = d["seq_" + n.split("_", 1)[1]]
        print("overlap gain %s: %.3fx (%d scheduled iterations; peak %.0f vs %.0f TFLOP/s)" % (
            n, j["total_tokens_per_s"] / base["total_tokens_per_s"], j.get("scheduled_iterations", 0),
            j.get("peak_gemm_tflops", 0), base.get("peak_gemm_tflops", 0)))
for n, j in rows:
    sp = j.get("schedule_profile")
    if sp:
        print(f"{n}: {sp['profiled_iterations']} profiled mixed iterations, span {sp['span_ms_per_iteration']:.2f} ms; lanes busy " +
              ", ".join(f"{l['lane']}({l['sm_count']}/{l['gemm_sm_count']}) {l['busy_ms_per_iteration']:.2f}" for l in sp["lanes"]))
        for o in sp["ops"]:
            rate = f"{o['tflops']:.0f} TFLOP/s" if "tflops" in o else (f"{o['gb_per_s']:.0f} GB/s" if "gb_per_s" in o else "")
            print(f"    {o['op']:10} lane {o['lane']}: {o['ms_per_iteration']:7.2f} ms {rate}")
if "ours_1024_512" in d and "hf_1024_512" in d:
    print("peer ratio 1024/512: %.2fx" % (d["ours_1024_512"]["total_tokens_per_s"] / d["hf_1024_512"]["total_tokens_per_s"]))
PY
