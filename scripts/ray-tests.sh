#!/usr/bin/env bash
# The Ray driver (python/widenet/distributed.py) on a real local Ray cluster
# (two worker processes on 127.0.0.1): a fresh virtual environment with
# `pip install ./python ray pytest`, which also installs the `widenet`
# command the tasks run (nothing else on the PATH, no WIDENET_BIN: the
# driver finds it beside the interpreter), then python/tests_ray. About a
# minute after the installs.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="$(mktemp -d)/venv"
python3 -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install -q --upgrade pip
echo "pip install ./python ray pytest"
"$py" -m pip install -q ./python ray pytest
"$py" -c 'import ray, widenet.distributed; print("ray", ray.__version__)'
test -x "$venv/bin/widenet"
env -u WIDENET_BIN WIDENET_REQUIRE_RAY=1 RAY_AUTH_MODE=disabled "$py" -m pytest -q python/tests_ray
