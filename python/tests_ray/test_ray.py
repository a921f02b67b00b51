"""The Ray driver on a real local Ray cluster (two worker processes): the
sharded sweep equals the single-process report, a worker killed in the
middle of a task is retried, an interrupted driver resumes without
recomputing finished units. Run by scripts/ray-tests.sh."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# scripts/ray-tests.sh sets WIDENET_REQUIRE_RAY=1: there a missing Ray fails.
if os.environ.get("WIDENET_REQUIRE_RAY") == "1":
    import ray
else:
    ray = pytest.importorskip("ray")

from widenet import distributed  # noqa: E402

# A small compare on the CPU backend (bit-for-bit reproducible): 4 widths.
FLAGS = {"quick": True, "widths": [16, 32, 64, 128], "seeds": 2, "steps": 10}
DEVICE = "cpu"


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    args = ["--device", DEVICE, "compare", *distributed.flags_of(FLAGS), "--out", str(out), "--quiet"]
    subprocess.run([distributed.find_binary(), *args], check=True)
    return json.loads((out / "report.json").read_text())


def test_ray_sweep_equals_the_single_process_report(cluster, single, tmp_path):
    res = distributed.run("compare", FLAGS, out=tmp_path / "r", device=DEVICE, quiet=True)
    assert res["report"] == single
    assert res["computed"] == sorted(f"width-{w}" for w in FLAGS["widths"])
    assert res["reused"] == []


def test_a_killed_worker_is_retried_and_the_report_is_complete(cluster, single, tmp_path):
    marker = tmp_path / "killed"
    res = distributed.run(
        "compare", FLAGS, out=tmp_path / "r", device=DEVICE, quiet=True,
        max_retries=2, _kill_once=str(marker),
    )
    assert marker.exists(), "no worker was killed"
    assert res["report"] == single
    # A unit that fails every retry is named; the finished points remain.
    with pytest.raises(distributed.DistributedError, match="width-16"):
        distributed.run(
            "compare", FLAGS, out=tmp_path / "f", device=DEVICE, quiet=True,
            max_retries=0, _kill_once=str(tmp_path / "killed-again"),
        )
    partial = json.loads((tmp_path / "f" / "report.json").read_text())
    assert partial["partial"] is True and list(partial["failed"]) == ["width-16"]
    assert sorted(partial["points"]) == ["width-128", "width-32", "width-64"]


def test_an_interrupted_driver_resumes_without_recomputing(cluster, single, tmp_path):
    out = tmp_path / "r"
    code = (
        "import sys; from widenet import distributed as d; "
        f"d.run('compare', {FLAGS!r}, address={cluster!r}, out={str(out)!r}, "
        f"device={DEVICE!r}, quiet=True)"
    )
    p = subprocess.Popen([sys.executable, "-c", code])
    pts = out / "points"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(pts.glob("width-*.json"))) < 1:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    before = {f.name: f.stat().st_mtime_ns for f in pts.glob("width-*.json")}
    assert 1 <= len(before) < len(FLAGS["widths"]), before
    res = distributed.run("compare", FLAGS, out=out, device=DEVICE, quiet=True, resume=True)
    assert res["report"] == single
    assert res["reused"] == sorted(n[:-5] for n in before)
    assert sorted(res["computed"] + res["reused"]) == sorted(f"width-{w}" for w in FLAGS["widths"])
    for name, mtime in before.items():
        assert (pts / name).stat().st_mtime_ns == mtime, f"{name} was recomputed"


def test_a_kernel_in_row_blocks_gathered_by_the_driver_or_written_in_place(cluster, tmp_path):
    import numpy as np

    x = np.random.default_rng(3).standard_normal((37, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    flags = ["--arch", "Dense(64, W_std=1.5, b_std=0.1), Relu, Dense(1)", "--get", "ntk"]
    whole = tmp_path / "whole.npy"
    subprocess.run([distributed.find_binary(), "--device", DEVICE, "kernel", "--x1",
                    str(tmp_path / "x.npy"), *flags, "--out", str(whole), "--quiet"], check=True)
    gathered = distributed.kernel(x, tmp_path / "gathered.npy", flags=flags, blocks=3,
                                  device=DEVICE)
    shared = distributed.kernel(tmp_path / "x.npy", tmp_path / "shared.npy", flags=flags,
                                blocks=3, shared=True, device=DEVICE)
    g, s, w = np.load(gathered), np.load(shared), np.load(whole)
    assert g.shape == (37, 37) and g.dtype == np.float32
    # The same blocks by the same commands: identical; against one process, f32 rounding.
    np.testing.assert_array_equal(g, s)
    np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6 * np.abs(w).max())
