#!/usr/bin/env python3
"""Wall time of one sweep on one process against the Ray driver on a local
two-worker cluster, and with a worker killed in the middle of its first task
(recovery by Ray's retry), plus the time of each unit alone (`--shard k/N`).
Needs Ray and the widenet Python package (scripts/ray-tests.sh's venv) and
the binary on WIDENET_BIN.

    python scripts/bench-distributed.py [--device cpu] [-- compare flags...]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray

from widenet import distributed


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("flags", nargs="*", help="compare flags (default: compare's defaults)")
    a = p.parse_args()
    b = distributed.find_binary()
    tmp = Path(tempfile.mkdtemp(prefix="widenet-bench-dist-"))
    base = ["--device", a.device, "compare", *a.flags, "--quiet"]

    t = time.perf_counter()
    subprocess.run([b, *base, "--out", str(tmp / "one")], check=True)
    single = time.perf_counter() - t
    ref = json.loads((tmp / "one" / "report.json").read_text())

    subprocess.run([b, *base, "--list-units", "--out", str(tmp / "list")], check=True)
    units = json.loads((tmp / "list" / "shard.json").read_text())["units"]
    per_unit = {}
    for k, u in enumerate(units):
        t = time.perf_counter()
        subprocess.run([b, *base, "--shard", f"{k}/{len(units)}", "--out", str(tmp / f"u{k}")],
                       check=True)
        per_unit[u] = time.perf_counter() - t

    ray.init(num_cpus=a.workers, include_dashboard=False, log_to_driver=False)
    # The compare flags as the driver's settings mapping.
    cfg = {}
    i = 0
    while i < len(a.flags):
        k = a.flags[i][2:]
        if i + 1 < len(a.flags) and not a.flags[i + 1].startswith("--"):
            cfg[k] = a.flags[i + 1]
            i += 2
        else:
            cfg[k] = True
            i += 1
    # A first run starts the worker processes; the timed runs find them warm.
    distributed.run("compare", cfg, out=tmp / "warm", device=a.device, quiet=True)
    t = time.perf_counter()
    r = distributed.run("compare", cfg, out=tmp / "ray", device=a.device, quiet=True)
    on_ray = time.perf_counter() - t
    assert r["report"] == ref, "the Ray report differs from the single-process one"
    t = time.perf_counter()
    r = distributed.run("compare", cfg, out=tmp / "kill", device=a.device, quiet=True,
                        max_retries=2, _kill_once=str(tmp / "killed"))
    killed = time.perf_counter() - t
    assert (tmp / "killed").exists() and r["report"] == ref
    ray.shutdown()
    print(json.dumps({
        "command": " ".join(base), "units": len(units),
        "per_unit_s": {u: round(s, 3) for u, s in per_unit.items()},
        "single_process_s": round(single, 3), "ray_workers": a.workers,
        "ray_s": round(on_ray, 3), "ray_over_single": round(on_ray / single, 3),
        "ray_with_killed_worker_s": round(killed, 3),
        "killed_over_ray": round(killed / on_ray, 3),
    }, indent=1))


if __name__ == "__main__":
    sys.exit(main())
