#!/usr/bin/env bash
# Builds what tools/gpu/serve_check.sh needs on the GPU machine (the HTTP tests against
# `nanoflow serve --model preset:llama3-8b --backend cuda`), into CARRY_DIR (an ignored folder
# named in the device tool's `carry`; .gpuserve/ is in .git/info/exclude):
#   CARRY_DIR/bin/nanoflow.xz     the full CLI (serve included) from a NANOFLOW_STATIC_DEPS build:
#                                 pcre2, OpenBLAS and libstdc++ static, cuBLASLt from the machine
#   CARRY_DIR/lib/*.so*.xz        the shared libraries it needs beyond glibc, libgcc_s, libstdc++ and
#                                 cuBLASLt (httplib, xxhash, ssl/crypto, zlib, brotli), copied from
#                                 this Debian 12 machine; serve_check.sh puts them on the binary's
#                                 LD_LIBRARY_PATH only (a wrapper), never on Python's
#   CARRY_DIR/models.tar.xz       models/Meta-Llama-3-8B-Instruct/{config,tokenizer,tokenizer_config,
#                                 generation_config}.json: the preset's shapes, tokenizer, chat template
#   CARRY_DIR/wheels/*.whl        the `openai` client and all its dependencies for CPython 3.12 x86_64
#                                 (the GPU machine's python3 has no openai and no network)
# Optional: NF_SERVE_CARRY_GGUF=1 also carries models/SmolLM2-135M-Instruct.Q4_1.gguf (~94 MiB: over
# the 64 MiB a device call carries, so only for a machine that gets it another way).
# Usage: tools/gpu/build_serve.sh BUILD_DIR CARRY_DIR   (BUILD_DIR: e.g. build-gpuengine)
set -euo pipefail
build=${1:?build dir}
carry=${2:?carry dir}
src=$(cd "$(dirname "$0")/../.." && pwd)
shared=${NF_SHARED_DIR:-$src/../shared}
py=${NF_VENV_PYTHON:-$src/.venv/bin/python}
grep -q NANOFLOW_STATIC_DEPS:BOOL=ON "$build/CMakeCache.txt" ||
  echo "warning: $build is not a -DNANOFLOW_STATIC_DEPS=ON build; the binary may need more libraries" >&2

cmake --build "$build" --target nanoflow -j2
rm -rf "${carry:?}/bin" "${carry:?}/lib" "${carry:?}/wheels" "${carry:?}/models.tar.xz"
mkdir -p "$carry/bin" "$carry/lib" "$carry/wheels"
cp "$build/src/nanoflow" "$carry/bin/nanoflow"
strip "$carry/bin/nanoflow"

# Shared libraries: everything ldd resolves except what every Linux with a CUDA driver has.
system='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+|libcublasLt|libcuda|libcudart)\.so'
missing=$(ldd "$carry/bin/nanoflow" | awk '/not found/ {print $1}' | grep -Ev "$system" || true)
[ -z "$missing" ] || { echo "ldd: not found here: $missing" >&2; exit 1; }
ldd "$carry/bin/nanoflow" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
  if echo "$name" | grep -Eq "$system"; then continue; fi
  cp -L "$path" "$carry/lib/$name"
done
xz -T2 -6 -f "$carry/bin/nanoflow" "$carry/lib/"*

# The preset's files (src/model/presets.cc finds them under $NANOFLOW_MODELS_DIR/<folder>/).
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
m=Meta-Llama-3-8B-Instruct
mkdir -p "$stage/models/$m"
for f in config.json tokenizer.json tokenizer_config.json generation_config.json; do
  cp "$shared/models/$m/$f" "$stage/models/$m/"
done
tar -C "$stage" -cJf "$carry/models.tar.xz" models
if [ "${NF_SERVE_CARRY_GGUF:-0}" = 1 ]; then
  mkdir -p "$carry/gguf"
  cp "$src/models/SmolLM2-135M-Instruct.Q4_1.gguf" "$carry/gguf/"
fi

# The openai client's wheels (pure Python but pydantic-core and jiter, built for cp312 manylinux);
# the version the project's .venv tests with unless NF_OPENAI_VERSION says otherwise.
ver=${NF_OPENAI_VERSION:-$("$py" -c "import openai; print(openai.__version__)" 2>/dev/null || true)}
"$py" -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d "$carry/wheels" "openai${ver:+==$ver}"

ls -la "$carry/bin" "$carry/lib" "$carry/wheels" "$carry/models.tar.xz"
du -sh "$carry"
echo "built $carry"
