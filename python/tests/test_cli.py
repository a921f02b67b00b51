"""The ``widenet`` command that ``pip install`` puts beside the interpreter:
the Rust command line run in-process by the native module."""

import os
import subprocess
import sys

import numpy as np

WIDENET = os.path.join(os.path.dirname(sys.executable), "widenet")


def run(*args, cwd=None):
    return subprocess.run([WIDENET, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_the_command_is_installed_and_prints_its_version():
    assert os.access(WIDENET, os.X_OK), f"pip install did not put {WIDENET} in place"
    r = run("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("widenet ")


def test_the_command_computes_a_kernel_equal_to_the_library(tmp_path):
    import widenet

    x = np.random.default_rng(0).standard_normal((6, 3))
    np.save(tmp_path / "x.npy", x)
    arch = ("Dense(512, W_std=1.4, b_std=0.1), Relu, Dense(512, W_std=1.4, b_std=0.1), Relu, "
            "Dense(1, W_std=1.4, b_std=0.1)")
    r = run("--device", "cpu", "kernel", "--x1", "x.npy", "--arch", arch, "--get", "ntk",
            "--out", "k.npy", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = np.load(tmp_path / "k.npy")
    # The same architecture through the Python API, in f64.
    _, _, kernel_fn = widenet.stax.serial(
        widenet.stax.Dense(512, W_std=1.4, b_std=0.1), widenet.stax.Relu(),
        widenet.stax.Dense(512, W_std=1.4, b_std=0.1), widenet.stax.Relu(),
        widenet.stax.Dense(1, W_std=1.4, b_std=0.1))
    want = np.asarray(kernel_fn(x, None, "ntk"))
    assert got.shape == (6, 6)
    # The command computes in f32.
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())


def test_bad_input_exits_with_status_2_and_a_message(tmp_path):
    r = run("kernel", "--x1", "missing.npy", "--out", "k.npy", cwd=tmp_path)
    assert r.returncode == 2
    assert "missing.npy" in r.stderr
    assert not (tmp_path / "k.npy").exists()


def test_the_ray_driver_finds_the_installed_command(monkeypatch):
    # The lookup itself needs no Ray (the module imports it where it runs tasks).
    from widenet.distributed import find_binary

    monkeypatch.delenv("WIDENET_BIN", raising=False)
    assert find_binary() == WIDENET
