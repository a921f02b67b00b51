#!/usr/bin/env bash
# The checks and benchmarks to run on a machine with a real GPU, in one call:
# the device table, the self-check of every kernel, the GPU test binaries
# (correctness on a vendor's driver, e.g. 32-lane subgroups, which no
# software driver here has), the autotune and the benchmarks.
#
# It needs, in the repository root of the GPU machine:
# - the release binary `target/release/widenet`, built on an x86-64 machine
#   like the GPU's;
# - the GPU test binaries, built on that machine too, in
#   `target/device-tests.tar.gz`: `scripts/device-check.sh --pack` builds
#   them (`cargo test --release --no-run` lists the executables), strips
#   them and packs them there (about 31 MB), and copies the release binary
#   to `target/release/widenet` if CARGO_TARGET_DIR builds elsewhere. Both
#   paths are git-ignored: hand them to the GPU machine with the working tree
#   (about 50 MB together). The tests read their data files (`tests/data`)
#   from the working directory, so they run in the repository root;
# - where that machine has no Vulkan loader, the Debian packages of the
#   loader and the GL/EGL dispatch libraries in `.gl/` (libvulkan1, libegl1,
#   libglvnd0, libopengl0, libgl1, libglx0, libgles2, fetched with
#   `apt-get download` for amd64), which it unpacks first.
#
# Usage:
#   bash scripts/device-check.sh           everything (on the GPU machine)
#   bash scripts/device-check.sh --tests   the GPU test binaries only (a rerun)
#   bash scripts/device-check.sh --pack    build and pack the test binaries (here)
# Everything it prints also goes to $OUT/device-check.log; the JSON records go
# to $OUT, the test binaries' result lines to $OUT/device-tests.txt. About
# four minutes on an H200 without the tests; each step has its own time limit.
set -uo pipefail
cd "$(dirname "$0")/.."

# The GPU test binaries: the Backend conformance tests, the products and
# kernels, training, golden values, kernel properties, every adapter.
tests=(conformance gpu_kernels gpu_training_ops gpu_f16 gpu_coop golden networks
  kernel_properties every_adapter)

if [ "${1:-}" = "--pack" ]; then
  set -e
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-target}/release/widenet"
  mkdir -p target/release
  [ "$bin" -ef target/release/widenet ] || cp "$bin" target/release/widenet
  args=()
  for t in "${tests[@]}"; do args+=(--test "$t"); done
  listed=$(cargo test --release --no-run "${args[@]}" 2>&1)
  dir=$(mktemp -d)
  for t in "${tests[@]}"; do
    exe=$(echo "$listed" | sed -n "s#.*Executable tests/$t\.rs (\(.*\))#\1#p")
    [ -n "$exe" ] || { echo "device-check --pack: no executable for tests/$t.rs" >&2; exit 1; }
    cp "$exe" "$dir/$t"
    strip "$dir/$t"
  done
  tar -czf target/device-tests.tar.gz -C "$dir" .
  rm -rf "$dir"
  echo "packed ${#tests[@]} test binaries: target/device-tests.tar.gz ($(du -h target/device-tests.tar.gz | cut -f1));"
  echo "carry target/device-tests.tar.gz and target/release/widenet ($(du -h target/release/widenet | cut -f1))"
  exit 0
fi

out="${OUT:-/tmp/device-check}"
mkdir -p "$out"
exec > >(tee -a "$out/device-check.log") 2>&1

for f in .gl/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -e "$icd" ] && export VK_DRIVER_FILES="$icd"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}" WIDENET_CACHE_DIR="$out/cache"
w=./target/release/widenet

step() { # seconds, command...
  local limit=$1
  shift
  echo "== $* (limit ${limit}s)"
  timeout "$limit" "$@" || echo "!! exit $? from: $*"
}

# The test binaries on the best adapter (the GPU): an adapter that cannot be
# opened fails them, as do missing f16 and timestamps (every vendor's Vulkan
# driver has both); skips for other features are listed in the log.
run_tests() {
  if [ ! -e target/device-tests.tar.gz ]; then
    echo "!! no target/device-tests.tar.gz: GPU tests not run (scripts/device-check.sh --pack makes it)"
    return
  fi
  local dir t
  dir=$(mktemp -d)
  tar -xzf target/device-tests.tar.gz -C "$dir"
  for t in "${tests[@]}"; do
    if [ ! -x "$dir/$t" ]; then
      echo "!! test binary $t missing from target/device-tests.tar.gz"
      continue
    fi
    WIDENET_REQUIRE_GPU=1 WIDENET_REQUIRE=f16,timestamp \
      step 150 "$dir/$t" 2>&1 | tee "$out/test-$t.log"
    echo "$t: $(grep -h -e '^test result' -e '!! exit' "$out/test-$t.log" | tr '\n' ' ')" \
      >>"$out/device-tests.txt"
    # Each failure's first lines, where a caller that keeps only standard
    # output (or its tail) sees them.
    grep -h -A4 -e '^---- ' "$out/test-$t.log" >>"$out/device-tests.txt"
  done
  grep -h -e ': GPU tests on: ' -e 'SKIP' "$out"/test-*.log | sort -u >>"$out/device-tests.txt"
  rm -rf "$dir"
}

if [ "${1:-}" = "--tests" ]; then
  run_tests
  exit 0
fi

nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv || true
step 30 $w devices
step 60 $w self-check --device gpu:0
run_tests
step 120 $w tune --device gpu:0
step 60 $w bench matmul --device gpu:0 --sizes 1024,2048,4096,8192 --runs 5 --json
step 60 $w bench matmul --device gpu:0 --sizes 1024,2048,4096,8192 --runs 5 --dtype f16 --json
step 60 $w bench kernel --device gpu:0 --n 20000 --d 64 --depth 3 --runs 3 --json
step 120 $w bench train --device gpu:0 --runs 3 --json
step 120 $w bench all --device all --runs 3 --json
cp "$out/cache/autotune.json" "$out/" 2>/dev/null || true
