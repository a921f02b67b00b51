#!/usr/bin/env bash
# The Ray driver (python/widenet/distributed.py) on a real local Ray cluster
# (two worker processes on 127.0.0.1): a fresh virtual environment with
# `pip install ./python ray pytest`, which also installs the `widenet`
# command the tasks run (nothing else on the PATH, no WIDENET_BIN: the
# driver finds it beside the interpreter), then python/tests_ray. About a
# minute after the installs. With WIDENET_VENV naming an environment where
# scripts/python-tests.sh installed the package, only Ray is added there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${WIDENET_VENV:-}" ] && [ -x "$WIDENET_VENV/bin/widenet" ]; then
  venv="$WIDENET_VENV"
  py="$venv/bin/python"
  echo "pip install ray (into $venv, which has the package)"
  "$py" -m pip install -q ray pytest
else
  venv="$(mktemp -d)/venv"
  python3 -m venv "$venv"
  py="$venv/bin/python"
  "$py" -m pip install -q --upgrade pip
  echo "pip install ./python ray pytest"
  "$py" -m pip install -q ./python ray pytest
fi
"$py" -c 'import ray, widenet.distributed; print("ray", ray.__version__)'
test -x "$venv/bin/widenet"
env -u WIDENET_BIN WIDENET_REQUIRE_RAY=1 RAY_AUTH_MODE=disabled "$py" -m pytest -q python/tests_ray
