#!/usr/bin/env bash
# Builds what tools/gpu/engine_check.sh runs on the GPU machine, from a NANOFLOW_STATIC_DEPS build
# (../shared/GPU.md: build here, carry binaries), into CARRY_DIR (an ignored folder named in the
# device tool's `carry`):
#   CARRY_DIR/bin/nanoflow.xz              main + bench throughput + dump-logits (linked here directly, so a
#                                          half-edited command of another layer cannot block it;
#                                          xxhash static, no httplib: no serve on the GPU yet)
#   CARRY_DIR/bin/gpu_engine_model_test.xz tests/gpu/engine_model_test.cc (and gpu_schedule_test,
#                                          gpu_ops_test, gpu_attention_test: tests/gpu/*.cc)
#   CARRY_DIR/models/<folder>/             config.json (+ tokenizer.json) of the presets used
# Usage: tools/gpu/build_engine.sh BUILD_DIR CARRY_DIR
set -euo pipefail
build=${1:?build dir}
carry=${2:?carry dir}
src=$(cd "$(dirname "$0")/../.." && pwd)
shared=${NF_SHARED_DIR:-$src/../shared}
mkdir -p "$carry/bin" "$carry/models"
[ -n "${NF_NO_CMAKE:-}" ] || cmake --build "$build" --target gpu_engine_model_test gpu_schedule_test gpu_ops_test gpu_attention_test nf_engine -j2  # NF_NO_CMAKE=1: link what is built
tests=(gpu_engine_model_test gpu_schedule_test gpu_ops_test gpu_attention_test)
for t in "${tests[@]}"; do cp "$build/tests/$t" "$carry/bin/"; done
inc=""
for d in core loader tokenizer kvcache model engine kernels/cpu kernels/cuda runtime/cpu runtime/cuda comm; do
  inc="$inc -I$src/src/$d/include"
done
flags="-std=c++20 -O2 -DNANOFLOW_HAVE_CUDA=1 -DNANOFLOW_VERSION=\"0.1.0-engine\" -I$src/include $inc -isystem /usr/local/cuda/include"
objs=()
for f in main cmd_bench bench_workload cmd_bench_throughput cmd_bench_serving cmd_dump_logits cmd_schedule cmd_tune; do
  o="$build/engine_only_$f.o"
  ccache c++ $flags -c "$src/src/cli/$f.cc" -o "$o"
  objs+=("$o")
done
L="$build/src"
c++ -o "$carry/bin/nanoflow" "${objs[@]}" "$L/libnf_engine.a" "$L/libnf_model.a" "$L/libnf_kernels_cpu.a" \
  "$L/libnf_runtime_cpu.a" /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.a \
  "$(c++ -print-file-name=libgfortran.a)" "$(c++ -print-file-name=libquadmath.a)" "$L/libnf_comm.a" \
  "$L/libnf_loader.a" "$L/libnf_kernels_cuda.a" "$L/libnf_runtime_cuda.a" "$L/libnf_kvcache.a" \
  /usr/lib/x86_64-linux-gnu/libxxhash.a "$L/libnf_tokenizer.a" "$L/libnf_core.a" /usr/lib/x86_64-linux-gnu/libpcre2-8.a \
  -L/usr/local/cuda/lib64 -lcublasLt -lcudart_static -lcuda -lm -lpthread -ldl -lrt -static-libstdc++ -static-libgcc
strip "$carry/bin/nanoflow" "${tests[@]/#/$carry/bin/}"
# Static OpenBLAS makes each binary ~30 MB; xz brings them to ~3 MB (the carry limit is 64 MiB).
xz -T2 -6 -f "$carry/bin/nanoflow" "${tests[@]/#/$carry/bin/}"
for m in Meta-Llama-3-8B-Instruct Qwen2-7B-Instruct Mixtral-8x7B-Instruct-v0.1; do
  mkdir -p "$carry/models/$m"
  cp "$shared/models/$m/config.json" "$carry/models/$m/"
done
cp "$shared/models/Meta-Llama-3-8B-Instruct/tokenizer.json" "$carry/models/Meta-Llama-3-8B-Instruct/"
mkdir -p "$carry/datasets"
cp "$shared/datasets/AzureLLMInferenceTrace_conv.csv" "$carry/datasets/"
du -sh "$carry"
echo "built $carry"
