"""The experiments as functions: reports as dicts, folders only when asked."""

import glob
import json
import os
import tempfile

import numpy as np

import widenet
from widenet import stax

TINY = dict(widths=[16, 64], seeds=2, steps=10, n_train=8, n_test=4, d_in=3, curve_points=3)


def scratch_folders():
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "widenet-compare-*")))


def test_compare_returns_the_report_and_leaves_no_folder():
    before = scratch_folders()
    r = widenet.experiments.compare(**TINY)
    assert scratch_folders() == before
    assert r["experiment"] == "compare" and r["config"]["widths"] == [16, 64]
    assert len(r["widths"]) == 2 and not r["interrupted"]
    assert set(r["slopes"]) >= {"ntk_init_distance", "member_deviation"}
    # Wider networks are closer to their kernel at initialization.
    d = [w["ntk_init_distance"]["mean"] for w in r["widths"]]
    assert d[1] < d[0]


def test_compare_with_out_writes_the_folder_and_resumes(tmp_path):
    arch = stax.serial(stax.Dense(16, W_std=1.5, b_std=0.1), stax.Erf(), stax.Dense(1, W_std=1.5))
    r = widenet.experiments.compare(out=tmp_path, arch=arch, **TINY)
    assert (tmp_path / "report.md").exists() and (tmp_path / "points").is_dir()
    assert json.loads((tmp_path / "report.json").read_text()) == r
    assert r["arch"][1] == ["Erf"]
    again = widenet.experiments.compare(out=tmp_path, arch=arch, resume=True, **TINY)
    assert again["widths"] == r["widths"]


def test_compare_on_given_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 3))
    y = np.tanh(x[:, 0])
    r = widenet.experiments.compare(x=x, y=y, **TINY)
    assert r["data"] == {"n_train": 8, "n_test": 4, "d_in": 3}


def test_deep_linear_learns_modes_in_order():
    r = widenet.experiments.deep_linear(quick=True, layers=[2], seeds=1, width=32)
    assert r["experiment"] == "deep-linear" and len(r["results"]) == 1
    res = r["results"][0]
    assert res["learned_in_order"] is True
    assert res["max_deviation_from_discrete"] < 0.05
