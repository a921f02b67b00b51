#!/usr/bin/env bash
# The Python package as a user gets it: a fresh virtual environment,
# `pip install ./python` (maturin builds the Rust library; with this
# repository's target folder it reuses the release build's dependencies),
# then its pytest suite and the example notebook, headless; then the
# array and golden tests again under numpy 1.26. With WIDENET_VENV set, the
# environment is made there and kept (scripts/ray-tests.sh reuses it instead
# of building the package a second time).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${WIDENET_VENV:-$(mktemp -d)/venv}"
python3 -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install -q --upgrade pip
echo "pip install ./python (builds the native module)"
"$py" -m pip install -q ./python pytest nbclient nbformat ipykernel matplotlib
"$py" -c 'import numpy, widenet; print("widenet", widenet.__version__, "numpy", numpy.__version__)'
# pytest exits 5 when it collects no test: set -e fails CI then too.
WIDENET_REQUIRE_NOTEBOOK=1 "$py" -m pytest -q python/tests
"$py" -m pip install -q "numpy>=1.26,<2"
"$py" -c 'import numpy; print("numpy", numpy.__version__)'
"$py" -m pytest -q python/tests/test_golden.py python/tests/test_arrays.py python/tests/test_errors.py
