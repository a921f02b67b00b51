"""The example notebook runs headless from start to end (its last cell checks
that the finite ensemble follows the infinite-width prediction)."""

import os
import pathlib

import pytest

NOTEBOOK = pathlib.Path(__file__).resolve().parents[2] / "examples" / "python_quickstart.ipynb"


def test_notebook_runs(tmp_path):
    if not os.environ.get("WIDENET_REQUIRE_NOTEBOOK"):
        pytest.importorskip("nbclient")
        pytest.importorskip("matplotlib")
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert (tmp_path / "python_quickstart.png").stat().st_size > 10_000
