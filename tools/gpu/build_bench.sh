#!/usr/bin/env bash
# Links a benchmark-only `nanoflow` (main + bench group + bench ops/roofline) from a configured
# NANOFLOW_STATIC_DEPS build, for when the full binary does not build at the moment (other layers
# mid-edit). Usage: tools/gpu/build_bench.sh BUILD_DIR OUT_BINARY
set -euo pipefail
build=${1:?build dir}
out=${2:?output binary}
src=$(cd "$(dirname "$0")/../.." && pwd)
cmake --build "$build" --target nf_kernels_cuda -j2
flags="-std=c++20 -O2 -DNANOFLOW_HAVE_CUDA=1 -DNANOFLOW_VERSION=\"0.1.0-bench\" -I$src/src/core/include \
  -I$src/src/runtime/cuda/include -I$src/src/kernels/cuda/include -isystem /usr/local/cuda/include"
objs=()
for f in main cmd_bench cmd_bench_ops cmd_bench_roofline; do
  o="$build/bench_only_$f.o"
  ccache c++ $flags -c "$src/src/cli/$f.cc" -o "$o"
  objs+=("$o")
done
c++ -o "$out" "${objs[@]}" "$build/src/libnf_kernels_cuda.a" "$build/src/libnf_runtime_cuda.a" \
  "$build/src/libnf_core.a" -L/usr/local/cuda/lib64 -lcublasLt -lcudart_static -lcuda -lpthread -ldl -lrt \
  -static-libstdc++ -static-libgcc
echo "built $out"
