#!/usr/bin/env bash
# Packs the GPU test executables and a `nanoflow` binary into BIN_DIR/gpu_bin.tar.xz for
# tools/gpu/run.sh (the device tool carries at most 64 MiB; xz shares the OpenBLAS code the
# test binaries have in common). Usage: tools/gpu/pack.sh BUILD_DIR NANOFLOW_BINARY BIN_DIR
set -euo pipefail
build=${1:?build dir}
nf=${2:?nanoflow binary}
dest=${3:?bin dir}
stage=$(mktemp -d)
cp "$build"/tests/gpu_*_test "$stage/"
cp "$nf" "$stage/nanoflow"
strip "$stage"/*
for f in "$stage"/*; do
  if ldd "$f" | grep -q "not found" && ! ldd "$f" | grep "not found" | grep -q libcuda.so; then
    echo "$f: missing libraries"; ldd "$f"; exit 1
  fi
done
mkdir -p "$dest"
rm -f "$dest/gpu_bin.tar.xz"
XZ_OPT=-6 tar -cJf "$dest/gpu_bin.tar.xz" -C "$stage" .
rm -rf "$stage"
ls -la "$dest/gpu_bin.tar.xz"
