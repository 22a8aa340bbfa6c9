#!/usr/bin/env bash
# On the GPU machine, from the repo root: the server's HTTP tests (tests/model/test_openai_client.py
# with the official openai client, tests/model/test_server_reliability.py over raw HTTP) against
# `nanoflow serve --model preset:llama3-8b --backend cuda` (issue 8: the GPU answers the same HTTP
# tests as the CPU), then against CARRY_DIR/gguf/SmolLM2-135M-Instruct.Q4_1.gguf on cuda when that
# file was carried. CARRY_DIR comes from tools/gpu/build_serve.sh.
# Writes OUT_DIR/log.txt (setup, ldd, pip, nvidia-smi), OUT_DIR/<run>.log (each test file's
# unittest -v output) and OUT_DIR/serve_logs.txt (every server's own log); prints a table last.
# Usage: tools/gpu/serve_check.sh CARRY_DIR OUT_DIR [budget_seconds (345)]
# Env: NF_SERVE_CHECK_ARGS (serve args for the cuda runs; default below), NF_CANCEL_COUNT (1000).
set -u
C=$(cd "${1:?carry dir}" && pwd)
mkdir -p "${2:?out dir}"
OUT=$(cd "$2" && pwd)
BUDGET=${3:-345}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
t_start=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - t_start))); }
LOG=$OUT/log.txt
: >"$LOG"
say() { echo "== $* (t=$(($(date +%s) - t_start))s)" | tee -a "$LOG"; }
W=$(mktemp -d /tmp/nf_serve_check.XXXXXX)

say "unpack"
mkdir -p "$W/bin" "$W/lib"
xz -dc "$C/bin/nanoflow.xz" >"$W/bin/nanoflow" && chmod +x "$W/bin/nanoflow"
for f in "$C"/lib/*.xz; do [ -e "$f" ] && xz -dc "$f" >"$W/lib/$(basename "${f%.xz}")"; done
tar -C "$W" -xJf "$C/models.tar.xz"
export NANOFLOW_MODELS_DIR=$W/models
# cuBLASLt: the machine's own; look in the usual places if the loader does not find it.
libpath=$W/lib
if LD_LIBRARY_PATH=$libpath ldd "$W/bin/nanoflow" | grep -q "libcublasLt.*not found"; then
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib $(python3 -c "import nvidia, os; \
      [print(os.path.join(p, s)) for p in nvidia.__path__ for s in ('cu13/lib', 'cublas/lib')]" 2>/dev/null); do
    [ -e "$d/libcublasLt.so.13" ] && libpath=$libpath:$d && break
  done
fi
# The carried libraries are for nanoflow alone: Python keeps the machine's own (ssl, zlib).
cat >"$W/bin/nanoflow-wrapped" <<EOF
#!/bin/sh
LD_LIBRARY_PATH=$libpath\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH} exec "$W/bin/nanoflow" "\$@"
EOF
chmod +x "$W/bin/nanoflow-wrapped"
{ LD_LIBRARY_PATH=$libpath ldd "$W/bin/nanoflow"; "$W/bin/nanoflow-wrapped" --version; } >>"$LOG" 2>&1
if LD_LIBRARY_PATH=$libpath ldd "$W/bin/nanoflow" | grep -q "not found"; then
  say "ldd: libraries not found (see log.txt)"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee -a "$LOG"

say "openai client from the carried wheels"
if ! python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$W/site" "$C"/wheels/*.whl \
  >>"$LOG" 2>&1; then
  say "pip install failed: unzipping the wheels instead"
  python3 -c "import glob, sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]" \
    "$W/site" "$C"/wheels/*.whl >>"$LOG" 2>&1
fi
export PYTHONPATH=$W/site${PYTHONPATH:+:$PYTHONPATH}
python3 -c "import openai, sys; print('python', sys.version.split()[0], 'openai', openai.__version__)" 2>&1 | tee -a "$LOG"

# KV pool capped: the reliability file runs two servers at once (its shared one + one per
# queue/shutdown test), and by default the cuda engine takes all free memory for KV pages.
CUDA_ARGS=${NF_SERVE_CHECK_ARGS:---backend cuda --num-kv-pages 2048}
SERVE_LOGS=$OUT/serve_logs.txt
: >"$SERVE_LOGS"
rows=()
run() {  # name seconds model test-file [extra serve args] [test names...]
  local name=$1 t=$2 model=$3 file=$4 extra=${5:-}
  shift 4
  [ $# -gt 0 ] && shift
  local l
  l=$(left)
  if [ "$l" -lt 30 ]; then
    say "skip $name (budget)"
    rows+=("$(printf '%-28s %-6s %s' "$name" SKIP "time budget spent")")
    return
  fi
  [ "$t" -gt "$l" ] && t=$l
  say "$name: $model $CUDA_ARGS $extra $* (limit ${t}s)"
  local t0
  t0=$(date +%s)
  NF_BIN=$W/bin/nanoflow-wrapped NF_TEST_MODEL=$model NF_TEST_SERVE_ARGS="$CUDA_ARGS $extra" NF_SOURCE_DIR=$SRC \
    NF_SERVE_LOG_APPEND=$SERVE_LOGS NF_CANCEL_COUNT=${NF_CANCEL_COUNT:-1000} PYTHONUNBUFFERED=1 \
    timeout -k 10 "$t" python3 "$SRC/$file" -v "$@" >"$OUT/$name.log" 2>&1
  local rc=$? secs=$(($(date +%s) - t0))
  local ran res bad
  ran=$(grep -Eo '^Ran [0-9]+ tests?' "$OUT/$name.log" | tail -1)
  res=$(grep -E '^(OK|FAILED)' "$OUT/$name.log" | tail -1)
  bad=$(grep -Eo '^(FAIL|ERROR): [a-zA-Z0-9_]+' "$OUT/$name.log" | sed 's/^[A-Z]*: //' | tr '\n' ' ')
  local verdict=FAIL
  [ "$rc" = 0 ] && verdict=PASS
  [ "$rc" = 77 ] && verdict=SKIP
  [ "$rc" = 124 ] && verdict=TIMEOUT
  echo "$name rc=$rc ${secs}s ${ran:-no summary} ${res:-}" | tee -a "$LOG"
  rows+=("$(printf '%-28s %-7s %4ss  %-12s %s %s' "$name" "$verdict" "$secs" "${ran#Ran }" "${res:-rc=$rc}" "$bad")")
}

# Two identical greedy requests give the same text on the GPU when both are computed whole; a
# prefix-cache hit recomputes only the remainder, with other GEMM shapes (test_openai_client.py).
# So the client file runs without prefix caching, and the cached-tokens test alone with it.
run openai_llama3 120 preset:llama3-8b tests/model/test_openai_client.py --no-prefix-caching
run openai_llama3_cache 60 preset:llama3-8b tests/model/test_openai_client.py "" \
  OpenAIClient.test_prefix_cache_hits_are_reported_as_cached_tokens
run reliability_llama3 220 preset:llama3-8b tests/model/test_server_reliability.py
gguf=$C/gguf/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -e "$gguf" ]; then
  run openai_smollm2 90 "$gguf" tests/model/test_openai_client.py
  run reliability_smollm2 150 "$gguf" tests/model/test_server_reliability.py
else
  say "no $gguf carried: SmolLM2 on cuda not run"
fi
rm -rf "$W"

say "done"
{
  echo "---- serve HTTP tests on the GPU ($(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)) ----"
  printf '%-28s %-7s %5s  %-12s %s\n' run result time tests "summary / failing tests"
  printf '%s\n' "${rows[@]}"
  echo "CUDA model start-ups (s): $(grep -Eo "CUDA model .*start-up [0-9.]+ s" "$SERVE_LOGS" |
    sed -E 's/.*start-up ([0-9.]+) s/\1/' | tr '\n' ' ')"
} | tee -a "$LOG"
