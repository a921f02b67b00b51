#!/usr/bin/env bash
# The Ray driver (python/widenet/distributed.py) on a real local Ray cluster
# (two worker processes on 127.0.0.1): a fresh virtual environment with
# `pip install ./python ray pytest`, the `widenet` binary of this checkout's
# release build on WIDENET_BIN, then python/tests_ray. About a minute after
# the installs.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/widenet"
venv="$(mktemp -d)/venv"
python3 -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install -q --upgrade pip
echo "pip install ./python ray pytest"
"$py" -m pip install -q ./python ray pytest
"$py" -c 'import ray, widenet.distributed; print("ray", ray.__version__)'
WIDENET_BIN="$bin" WIDENET_REQUIRE_RAY=1 RAY_AUTH_MODE=disabled "$py" -m pytest -q python/tests_ray
