#!/usr/bin/env bash
# Sets everything up (as scripts/setup.sh) and runs the tests CI runs: CTest labels unit and model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd build
ctest -L 'unit|model' --output-on-failure -j"$(nproc)"
