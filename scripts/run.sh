#!/usr/bin/env bash
# Sets everything up and runs the main job: the server on the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
NF=build/nanoflow
[[ -x $NF ]] || NF=build/src/nanoflow  # where src/CMakeLists.txt puts the executable
"$NF" inspect "$MODEL"
"$NF" generate --model "$MODEL" --prompt "The capital of France is" --max-tokens 32
# The main job: the OpenAI-compatible server on 127.0.0.1; it prints a curl line that works.
exec "$NF" serve --model "$MODEL" --host 127.0.0.1 --port "${NANOFLOW_PORT:-8000}"
