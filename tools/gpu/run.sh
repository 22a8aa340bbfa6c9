#!/usr/bin/env bash
# One-shot GPU check (../shared/GPU.md): runs the GPU tests and the benchmarks from binaries built
# on the developer machine, keeps full logs, prints a short table last.
#
# Usage (on the GPU machine, from the repository root):
#   tools/gpu/run.sh BIN_DIR OUT_DIR [quick]
# BIN_DIR holds `nanoflow` and gpu_*_test executables, or gpu_bin.tar.xz with them (see
# tools/gpu/pack.sh). OUT_DIR gets tests.log, bench.log, roofline.json, ops.json, summary.txt.
set -uo pipefail
bin=${1:?bin dir}
out=${2:?out dir}
mode=${3:-full}
mkdir -p "$out"
if [[ -f "$bin/gpu_bin.tar.xz" ]]; then
  mkdir -p /tmp/nf_gpu_bin && tar -xJf "$bin/gpu_bin.tar.xz" -C /tmp/nf_gpu_bin && bin=/tmp/nf_gpu_bin
fi
export NANOFLOW_LOG=warn
summary="$out/summary.txt"
: > "$summary"
{
  echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader 2>/dev/null)"
  ldd "$bin/nanoflow" | grep -E "not found" && echo "MISSING LIBRARIES"
} | tee -a "$summary"

# --- tests -----------------------------------------------------------------------------------
for t in "$bin"/gpu_*_test; do
  name=$(basename "$t")
  start=$(date +%s)
  timeout 300 "$t" --gtest_color=no > "$out/$name.tmp" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  cat "$out/$name.tmp" >> "$out/tests.log"
  rm -f "$out/$name.tmp"
  printf "test %-22s rc=%d %4ds  %s\n" "$name" "$rc" "$secs" \
    "$(grep -E '^\[  (PASSED|FAILED)  \]' "$out/tests.log" | tail -1)" | tee -a "$summary"
done
grep -E "^\[  FAILED  \]|Failure|error" "$out/tests.log" | head -40 | tee -a "$summary"

# --- benchmarks -----------------------------------------------------------------------------------
if [[ "$mode" != "tests" ]]; then
  timeout 200 "$bin/nanoflow" bench roofline --json "$out/roofline.json" >> "$out/bench.log" 2>&1
  echo "roofline rc=$?" | tee -a "$summary"
  extra=()
  [[ "$mode" == "quick" ]] && extra=(--quick)
  timeout 400 "$bin/nanoflow" bench ops --json "$out/ops.json" "${extra[@]}" >> "$out/bench.log" 2>&1
  echo "bench ops rc=$?" | tee -a "$summary"
fi

# --- short table last ------------------------------------------------------------------------------
{
  echo "== roofline"
  grep -E "^(gemm|hbm|stream read)" "$out/bench.log" | head -20
  echo "== acceptance rows"
  grep -E "^ceilings|best-candidate|linear scaling|^decode_attn|^prefill_attn" "$out/bench.log" | \
    awk '{$1=$1; print}' | cut -c1-150 | head -90
} | tee -a "$summary"
