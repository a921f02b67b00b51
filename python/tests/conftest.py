"""Shared fixtures: the neural-tangents golden values and the device the
float32 tests run on (``$WIDENET_TEST_DEVICE``, else auto)."""

import json
import os
import pathlib

import numpy as np
import pytest

DATA = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data"


@pytest.fixture(scope="session")
def golden():
    return json.loads((DATA / "neural_tangents_kernels.json").read_text())


@pytest.fixture(scope="session")
def golden_archs():
    return json.loads((DATA / "neural_tangents_architectures.json").read_text())


@pytest.fixture(scope="session")
def device():
    return os.environ.get("WIDENET_TEST_DEVICE", "auto")


def rel(got, want):
    """Relative Frobenius error."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))
