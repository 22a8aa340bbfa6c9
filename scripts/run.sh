#!/usr/bin/env bash
# Sets everything up and runs the main job: the server on the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
build/nanoflow inspect "$MODEL"
exec build/nanoflow generate --model "$MODEL" --prompt "The capital of France is" --max-tokens 32
