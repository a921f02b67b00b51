#!/usr/bin/env bash
# The CPU backend against its peers, in one run on this machine: f32 matrix
# products against numpy's OpenBLAS sgemm, the training step of issue 12 (16
# members, width 1024, depth 3, 512 points, d 64, ReLU, NTK parameterization)
# against JAX on the CPU and against widenet on the software Vulkan adapter,
# and the NTK (n 4000, d 64, depth 3, ReLU, f32, end to end) against that
# adapter. Each pair runs back to back, ROUNDS times, so that a busy phase of
# a shared machine slows both alike; compare ratios within one run only.
#
# JAX and numpy are installed into a virtual environment for the benchmark
# only ($WIDENET_BENCH_VENV, default target/bench-venv). Every record goes
# to $OUT (default target/bench-cpu.jsonl), one JSON object per line; a
# summary of the ratios ends the output.
#
#   scripts/bench-cpu.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-2}"
VENV="${WIDENET_BENCH_VENV:-target/bench-venv}"
OUT="${OUT:-target/bench-cpu.jsonl}"
ADAPTER="${WIDENET_BENCH_ADAPTER:-llvmpipe}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "jax[cpu]" numpy
fi
PY="$VENV/bin/python"
PEERS=scripts/bench-cpu-peers.py

cargo build --release --quiet
W="${CARGO_TARGET_DIR:-target}/release/widenet"
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
lscpu | grep -E 'Model name|^CPU\(s\)|Flags' | sed 's/^/# /; s/\(Flags:\).*\(avx512[a-z_]*\).*/\1 has \2/; s/\(Flags:\).*avx2.*/\1 AVX2 (no AVX-512)/' >&2

widenet_json() { # widenet_json DEVICE ARGS...: one line {"device": ..., ...}
  local dev="$1"; shift
  "$W" --device "$dev" "$@" --json | "$PY" -c 'import json,sys; v=json.load(sys.stdin); v["device"]=sys.argv[1]; v["command"]=sys.argv[2]; print(json.dumps(v))' "$dev" "widenet --device $dev $*"
}

for round in $(seq "$ROUNDS"); do
  echo "== round $round: f32 products" >&2
  "$PY" "$PEERS" sgemm 1024,2048 5 >> "$OUT"
  widenet_json cpu bench matmul --sizes 1024,2048 --runs 5 >> "$OUT"
  echo "== round $round: training step" >&2
  "$PY" "$PEERS" train 16 1024 3 512 64 3 >> "$OUT"
  widenet_json cpu bench train --solo-members 0 --run-steps 0 --runs 3 >> "$OUT"
  widenet_json "$ADAPTER" bench train --solo-members 0 --run-steps 0 --runs 3 >> "$OUT"
  echo "== round $round: NTK" >&2
  widenet_json cpu bench kernel --n 4000 --d 64 --depth 3 --runs 3 >> "$OUT"
  widenet_json "$ADAPTER" bench kernel --n 4000 --d 64 --depth 3 --runs 3 >> "$OUT"
done

"$PY" - "$OUT" <<'PYEOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def rows(pred): return [r for r in recs if pred(r)]
print("f32 matmul, GFLOP/s per round (CPU backend / numpy OpenBLAS sgemm = ratio):")
for size in (1024, 2048):
    np_ = [r["gflops"] for r in recs if r.get("peer") == "numpy sgemm" and r["m"] == size]
    cpu = [x["gflops"] for r in recs if r.get("device") == "cpu" and "matmul" in r["command"]
           for x in r["results"] if x["m"] == size]
    print(f"  {size}: " + ", ".join(f"{c:.1f} / {n:.1f} = {c / n:.2f}" for c, n in zip(cpu, np_)))
jax = [r["step_seconds"] for r in recs if r.get("peer") == "jax train step"]
def step(dev): return [x["step_seconds"] for r in recs if r.get("device") == dev and "train" in r["command"] for x in r["results"]]
other = [r["device"] for r in recs if r.get("device") not in (None, "cpu")][0]
cpu, sw = step("cpu"), step(other)
print("training step, seconds per round (JAX / CPU backend / software adapter):")
for j, c, s in zip(jax, cpu, sw):
    print(f"  {j:.3f} / {c:.3f} / {s:.3f}: CPU backend {j / c:.2f}x JAX's speed, {s / c:.2f}x the adapter's")
def ntk(dev): return [x["entries_per_second"] for r in recs if r.get("device") == dev and "kernel" in r["command"] for x in r["results"]]
print("NTK n 4000, M entries/s per round (CPU backend / software adapter):")
for c, s in zip(ntk("cpu"), ntk(other)):
    print(f"  {c / 1e6:.1f} / {s / 1e6:.1f} = {c / s:.2f}")
PYEOF
