#!/usr/bin/env bash
# The checks and benchmarks to run on a machine with a real GPU, in one call.
# It needs the release binary (`target/release/widenet`, built on an x86-64
# machine like the GPU's) and, where that machine has no Vulkan loader, the
# Debian packages of the loader and the GL/EGL dispatch libraries in `.gl/`
# (libvulkan1, libegl1, libglvnd0, libopengl0, libgl1, libglx0, libgles2,
# fetched with `apt-get download` for amd64), which it unpacks first. Run
#   bash scripts/device-check.sh
# Everything it prints also goes to $OUT/device-check.log; the JSON records go
# to $OUT. About four minutes on an H200; each step has its own time limit.
set -uo pipefail
out="${OUT:-/tmp/device-check}"
mkdir -p "$out"
exec > >(tee "$out/device-check.log") 2>&1

for f in .gl/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -e "$icd" ] && export VK_DRIVER_FILES="$icd"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}" WIDENET_CACHE_DIR="$out/cache"
w=./target/release/widenet
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv || true

step() { # seconds, command...
  local limit=$1
  shift
  echo "== $* (limit ${limit}s)"
  timeout "$limit" "$@" || echo "!! exit $? from: $*"
}

step 30 $w devices
step 60 $w self-check --device gpu:0
step 120 $w tune --device gpu:0
step 60 $w bench matmul --device gpu:0 --sizes 1024,2048,4096,8192 --runs 5 --json
step 60 $w bench matmul --device gpu:0 --sizes 1024,2048,4096,8192 --runs 5 --dtype f16 --json
step 60 $w bench kernel --device gpu:0 --n 20000 --d 64 --depth 3 --runs 3 --json
step 120 $w bench train --device gpu:0 --runs 3 --json
step 120 $w bench all --device all --runs 3 --json
cp "$out/cache/autotune.json" "$out/" 2>/dev/null || true
