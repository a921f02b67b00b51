#!/usr/bin/env bash
# Runs the GPU tests of the matrix products on a lavapipe that has cooperative
# matrices (Mesa 26.1 from Debian trixie-backports: VK_KHR_cooperative_matrix
# with 8x8x8 f16 tiles and f32 sums), so that shaders/matmul_coop.wgsl runs
# for real on a machine without a GPU. That Mesa needs a newer C library than
# Debian 12's, so it lives in a trixie chroot; the test binaries built here
# (they need only libc and the Vulkan loader) run inside it.
#
# Usage (as root, on Debian with its package mirror reachable; the mirror is
# read from this machine's own apt sources):
#   scripts/coop-lavapipe.sh [CHROOT_DIR]     (default /tmp/widenet-trixie)
#   scripts/coop-lavapipe.sh --prepare [CHROOT_DIR]
#                       only make the chroot (CI does it while the build runs);
#                       a later run finds it ready and goes straight to the tests
# Exit status: 0 when the tests pass, 1 when one fails or the chroot cannot be
# made although the mirror answers, 3 when the mirror cannot be reached (no
# network: the tests are not run, and CI says so).
set -uo pipefail
cd "$(dirname "$0")/.."
prepare=0
if [ "${1:-}" = "--prepare" ]; then
  prepare=1
  shift
fi
root="${1:-/tmp/widenet-trixie}"

# The Debian mirror this machine's apt uses (the first "URIs:" of a deb822
# source, or the first "deb" line), without its security suffix.
mirror() {
  local m
  m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' |
    grep -v -- '-security' | head -n 1)
  [ -n "$m" ] || m=$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' \
    /etc/apt/sources.list 2>/dev/null | grep -v -- '-security' | head -n 1)
  echo "$m"
}

# Whether the mirror answers at all (a TCP connection to its host).
reachable() {
  local hostport host port
  hostport=$(echo "$1" | sed -E 's#^[a-z]+://([^/]+).*#\1#')
  host=${hostport%%:*}
  port=80
  case "$1" in https:*) port=443 ;; esac  # a TLS mirror
  [ "$host" != "$hostport" ] && port=${hostport##*:}
  timeout 15 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
}

setup() {
  [ -e "$root/.widenet-ready" ] && return 0
  command -v debootstrap >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null || return 1
  if [ ! -x "$root/usr/bin/apt-get" ]; then
    debootstrap --variant=minbase trixie "$root" "$url" >"$root.log" 2>&1 || return 1
  fi
  echo "deb $url trixie-backports main" >"$root/etc/apt/sources.list.d/backports.list"
  chroot "$root" bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq -t trixie-backports mesa-vulkan-drivers libvulkan1 >/dev/null" ||
    return 1
  touch "$root/.widenet-ready"
}

url=$(mirror)
if [ -z "$url" ]; then
  echo "coop-lavapipe: no Debian mirror in this machine's apt sources; cooperative-matrix tests not run" >&2
  exit 3
fi
if ! reachable "$url"; then
  echo "coop-lavapipe: the package mirror $url cannot be reached (no network); cooperative-matrix tests not run" >&2
  exit 3
fi
if ! setup; then
  echo "coop-lavapipe: the mirror answers but the trixie chroot in $root could not be set up (see $root.log)" >&2
  exit 1
fi
if [ "$prepare" = 1 ]; then
  echo "coop-lavapipe: the trixie chroot in $root is ready"
  exit 0
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
  for t in gpu_coop-* gpu_f16-* autotune-*; do
    echo "== $t"
    ./$t --nocapture
  done
  # Of gpu_kernels, the tests of which kernels this adapter offers and forces:
  # its f32 products are tested on the host lavapipe and on SwiftShader, and
  # here would add three minutes of shader compilation and nothing else.
  echo "== gpu_kernels (the kernels offered)"
  ./gpu_kernels-* each_kernel_is_offered a_kernel_asked_for --nocapture 2>&1 | tee /tmp/kernels.log
  # Both tests ran (a renamed test would leave its filter matching nothing).
  grep -q "test result: ok. 2 passed" /tmp/kernels.log
' || exit 1
echo "coop-lavapipe: every product test passed on $(chroot "$root" dpkg-query -W -f '${Version}' mesa-vulkan-drivers) lavapipe"
