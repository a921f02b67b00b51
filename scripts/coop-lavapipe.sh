#!/usr/bin/env bash
# Runs the GPU tests of the matrix products on a lavapipe that has cooperative
# matrices (Mesa 26.1 from Debian trixie-backports: VK_KHR_cooperative_matrix
# with 8x8x8 f16 tiles and f32 sums), so that shaders/matmul_coop.wgsl runs
# for real on a machine without a GPU. That Mesa needs a newer C library than
# Debian 12's, so it lives in a trixie chroot; the test binaries built here
# (they need only libc and the Vulkan loader) run inside it.
#
# Usage (as root, Debian or Ubuntu with network access to deb.debian.org):
#   scripts/coop-lavapipe.sh [CHROOT_DIR]     (default /tmp/widenet-trixie)
# Exit status: 0 when the tests pass, 1 when one fails, 3 when the chroot
# could not be set up (no network, no debootstrap, no root).
set -uo pipefail
cd "$(dirname "$0")/.."
root="${1:-/tmp/widenet-trixie}"

setup() {
  command -v debootstrap >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null || return 1
  if [ ! -x "$root/usr/bin/apt-get" ]; then
    debootstrap --variant=minbase trixie "$root" http://deb.debian.org/debian >"$root.log" 2>&1 ||
      return 1
  fi
  echo "deb http://deb.debian.org/debian trixie-backports main" >"$root/etc/apt/sources.list.d/backports.list"
  chroot "$root" bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq -t trixie-backports mesa-vulkan-drivers libvulkan1 >/dev/null" ||
    return 1
}

if ! setup; then
  echo "coop-lavapipe: could not set up the trixie chroot in $root; cooperative-matrix tests not run" >&2
  exit 3
fi

# The test binaries of the products, built here.
bins=$(cargo test --release --no-run 2>&1 |
  sed -n 's/.*Executable tests\/\(gpu_coop\|gpu_f16\|gpu_kernels\|autotune\)\.rs (\(.*\))/\2/p')
[ -n "$bins" ] || { echo "coop-lavapipe: no test binaries" >&2; exit 1; }
cargo build --release --quiet || exit 1
rm -rf "$root/w" && mkdir -p "$root/w"
cp $bins target/release/widenet "$root/w/"

if ! chroot "$root" bash -c 'cd /w && XDG_RUNTIME_DIR=/tmp ./widenet devices --json' | grep -q '"side"'; then
  echo "coop-lavapipe: the lavapipe in $root reports no cooperative matrices; tests not run" >&2
  exit 3
fi
chroot "$root" bash -c '
  set -e
  cd /w
  export XDG_RUNTIME_DIR=/tmp WIDENET_REQUIRE_GPU=1 WIDENET_CACHE_DIR=/tmp/widenet-cache
  ./widenet devices
  ./widenet self-check --device gpu:0
  for t in gpu_coop-* gpu_f16-* gpu_kernels-* autotune-*; do
    echo "== $t"
    ./$t --nocapture
  done
' || exit 1
echo "coop-lavapipe: every product test passed on $(chroot "$root" dpkg-query -W -f '${Version}' mesa-vulkan-drivers) lavapipe"
