#!/usr/bin/env bash
# A widenet sweep as a Slurm job array, one GPU per shard, and a merge job
# that starts when every shard has finished:
#
#   examples/slurm/sweep.sh runs/compare-large compare --large
#
# submits `widenet compare --large --shard I/N --out runs/compare-large/shard-I`
# for I = 0..N-1 (N = $SHARDS, default 8) and then
# `widenet merge runs/compare-large runs/compare-large/shard-*`.
# Needs the `widenet` binary on PATH on every node (cargo install --path .)
# and OUT on a file system every node sees. A shard that failed is rerun
# alone: `sbatch --array=I examples/slurm/shard.sbatch OUT ARGS...`, then the
# merge again; rerunning a shard recomputes only its unfinished units
# (--resume).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 OUT COMMAND [FLAGS...]   (e.g. $0 runs/c compare --large)" >&2
  exit 2
fi
out=$1
shift
shards=${SHARDS:-8}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/logs"
array=$(sbatch --parsable --array=0-$((shards - 1)) --output="$out/logs/shard-%a.log" \
  "$here/shard.sbatch" "$out" "$@")
sbatch --dependency=afterok:"$array" --output="$out/logs/merge.log" \
  "$here/merge.sbatch" "$out" "$shards"
echo "submitted shards $array (0..$((shards - 1))) and their merge into $out"
