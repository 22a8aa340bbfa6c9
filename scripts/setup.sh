#!/usr/bin/env bash
# Installs everything nanoflow needs on a fresh Debian 12 machine (apt + a project-local Python
# virtualenv), builds it, and fetches the default model. Idempotent; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT_PACKAGES=(build-essential cmake ninja-build pkg-config ccache unzip python3 python3-venv
  libpcre2-dev libopenblas-dev nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libxxhash-dev
  libgtest-dev libgmock-dev libbenchmark-dev libssl-dev zlib1g-dev libbrotli-dev libicu-dev
  clang libclang-rt-14-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python tools (references for tests, the OpenAI client): a project-local virtualenv.
if [ ! -x .venv/bin/python ]; then
  echo "== python: creating .venv"
  python3 -m venv .venv
fi
if ! cmp -s tools/requirements.txt .venv/.requirements 2>/dev/null; then
  echo "== python: installing tools/requirements.txt"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r tools/requirements.txt
  cp tools/requirements.txt .venv/.requirements
fi

scripts/fetch_model.sh
scripts/build.sh
