"""Sweeps on a Ray cluster: every unit of a sweep (a checkpointed point of
``compare``, ``drift``, ``mutransfer``, ``chaos``, ``learning-curves``,
``random-labels``, ``sharpness`` or ``superposition``) is a Ray task; tasks return their
points to the driver, which writes them into ``OUT/points`` as they arrive (no
shared file system is needed), then builds the report from them exactly as a
single machine would (``widenet ... --resume --from-points``).

A task runs the ``widenet`` binary (found through ``binary=``, ``$WIDENET_BIN``
or ``PATH``; install it on every node with ``cargo install --path .`` from the
repository) as ``widenet COMMAND FLAGS --shard I/N``: shard ``I`` of ``N``
computes the units whose index ``k`` in the sweep's unit list has
``k mod N == I``. Tasks request one GPU when the cluster has GPUs, else one CPU.

    python -m widenet.distributed compare --address auto --out runs/c --quick
    python -m widenet.distributed compare --out runs/c --resume --quick

An interrupted driver resumes with ``resume=True`` (``--resume``) and recomputes
no finished unit. Ray retries a task whose worker died (``max_retries``); a
unit that fails every retry is named, and the points finished are written in
a partial ``report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = ["run", "flags_of", "find_binary", "DistributedError"]


class DistributedError(RuntimeError):
    """A unit failed every retry, or the sweep's command was refused."""


def find_binary(binary: Optional[str] = None) -> str:
    """The ``widenet`` executable: ``binary``, else ``$WIDENET_BIN``, else the
    command ``pip install widenet`` put beside this interpreter, else ``PATH``."""
    beside = os.path.join(os.path.dirname(sys.executable), "widenet")
    b = (
        binary
        or os.environ.get("WIDENET_BIN")
        or (beside if os.access(beside, os.X_OK) else None)
        or shutil.which("widenet")
    )
    if not b:
        raise DistributedError(
            "the widenet command was not found: pip install the widenet package on every "
            "node (it installs the command), or cargo install --path . in the repository, "
            "or set WIDENET_BIN"
        )
    return b


def flags_of(config: Union[None, str, os.PathLike, Mapping[str, Any]]) -> List[str]:
    """Command-line flags from a settings mapping (``{"widths": [64, 256],
    "quick": True}`` gives ``--widths 64,256 --quick``), or ``--config FILE``."""
    if config is None:
        return []
    if isinstance(config, (str, os.PathLike)):
        return ["--config", os.fspath(config)]
    out: List[str] = []
    for k, v in config.items():
        flag = "--" + str(k).replace("_", "-")
        if v is True:
            out.append(flag)
        elif v is False or v is None:
            continue
        elif isinstance(v, (list, tuple)):
            out += [flag, ",".join(str(x) for x in v)]
        else:
            out += [flag, str(v)]
    return out


def _global(device: Optional[str]) -> List[str]:
    return ["--device", device] if device else []


def _run_binary(binary: str, args: Sequence[str]) -> None:
    env = dict(os.environ, WIDENET_NO_AUTOTUNE=os.environ.get("WIDENET_NO_AUTOTUNE", "1"))
    p = subprocess.run([binary, *args], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise DistributedError(
            f"widenet {' '.join(args)} failed (exit code {p.returncode}): {p.stderr.strip()}"
        )


def _shard_task(
    binary: str, argv: Sequence[str], device: Optional[str], index: int, count: int,
    kill_once: Optional[str] = None,
) -> Dict[str, Any]:
    """One task: shard ``index/count`` in a private folder; returns its
    ``shard.json`` and points (the driver writes them)."""
    with tempfile.TemporaryDirectory(prefix="widenet-shard-") as tmp:
        args = [*_global(device), *argv, "--shard", f"{index}/{count}", "--out", tmp]
        if kill_once and index == 0 and not os.path.exists(kill_once):
            # Test hook: this worker process dies in the middle of its first task.
            Path(kill_once).write_text(str(os.getpid()))
            proc = subprocess.Popen([binary, *args], stderr=subprocess.DEVNULL)
            time.sleep(0.2)
            proc.kill()
            os.kill(os.getpid(), signal.SIGKILL)
        _run_binary(binary, args)
        record = json.loads(Path(tmp, "shard.json").read_text())
        pts = Path(tmp, "points")
        points = {u: Path(pts, f"{u}.json").read_text() for u in record["owned"]}
        return {"record": record, "config": Path(pts, "config.json").read_text(), "points": points}


def _remote(fn: Any, address: Optional[str], max_retries: int) -> Any:
    """``fn`` as a Ray task on the cluster at ``address`` (connected to, or a
    local one started, once): one GPU per task where the cluster has GPUs,
    else one CPU; retried ``max_retries`` times."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    gpus = ray.cluster_resources().get("GPU", 0)
    opts = {"num_gpus": 1} if gpus > 0 else {"num_cpus": 1}
    return ray.remote(max_retries=max_retries, **opts)(fn)


def _as_completed(refs: Dict[Any, Any]) -> Iterator[Tuple[Any, Any, Optional[str]]]:
    """Yields ``(key, result, None)`` for each task of ``refs`` (object
    reference -> key) as it finishes, or ``(key, None, message)`` for one that
    failed every retry; empties ``refs``."""
    import ray

    while refs:
        ready, _ = ray.wait(list(refs), num_returns=1)
        key = refs.pop(ready[0])
        try:
            res, err = ray.get(ready[0]), None
        except Exception as e:  # a task that failed every retry
            res, err = None, (str(e).strip().splitlines()[-1] if str(e).strip() else repr(e))
        yield key, res, err


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def run(
    command: str,
    config: Union[None, str, os.PathLike, Mapping[str, Any]] = None,
    address: Optional[str] = None,
    out: Union[str, os.PathLike] = "runs/distributed",
    *,
    resume: bool = False,
    max_retries: int = 3,
    units_per_task: int = 1,
    device: Optional[str] = None,
    binary: Optional[str] = None,
    quiet: bool = False,
    _kill_once: Optional[str] = None,
) -> Dict[str, Any]:
    """Runs sweep ``command`` (``"compare"``, ``"drift"``, ``"mutransfer"``,
    ``"chaos"``, ``"learning-curves"``, ``"random-labels"``, ``"sharpness"``,
    ``"superposition"``)
    with ``config`` (flags as a mapping, or a TOML file) on the Ray cluster at
    ``address`` (``None``: connect to or start a local one; ``"auto"``: the
    running cluster), writing ``out`` as ``widenet COMMAND --out OUT`` would.

    Returns ``{"report": report.json, "computed": [...], "reused": [...]}``
    (the units computed by this call and those found in ``out`` from an earlier,
    interrupted one). Raises :class:`DistributedError` naming the units that
    failed every retry (the finished points and a partial ``report.json`` are
    written first).
    """
    import ray

    b = find_binary(binary)
    argv = [command, *flags_of(config)]
    if "--quiet" not in argv:
        argv.append("--quiet")
    outp = Path(out)
    outp.mkdir(parents=True, exist_ok=True)
    points = outp / "points"

    # The sweep's units, in order (nothing computed).
    with tempfile.TemporaryDirectory(prefix="widenet-units-") as tmp:
        _run_binary(b, [*_global(device), *argv, "--list-units", "--out", tmp])
        listing = json.loads(Path(tmp, "shard.json").read_text())
    units: List[str] = listing["units"]
    state_path = outp / "distributed.json"
    state = {"argv": listing["argv"], "fingerprint": listing["fingerprint"],
             "version": listing["version"], "units": units}
    if resume and state_path.exists():
        old = json.loads(state_path.read_text())
        if old != state:
            raise DistributedError(
                f"{outp} holds a run of another configuration; use another folder or drop resume"
            )
    else:
        if points.exists():
            shutil.rmtree(points)
    points.mkdir(exist_ok=True)
    _write(state_path, json.dumps(state, indent=1))

    count = max(1, -(-len(units) // max(1, units_per_task)))
    owned = {i: [u for k, u in enumerate(units) if k % count == i] for i in range(count)}
    done = {u for u in units if (points / f"{u}.json").exists()}
    todo = [i for i in range(count) if not all(u in done for u in owned[i])]
    reused = sorted(done)

    running: Dict[Any, int] = {}
    if todo:
        task = _remote(_shard_task, address, max_retries)
        running = {task.remote(b, argv, device, i, count, _kill_once): i for i in todo}
    computed: List[str] = []
    failed: Dict[str, str] = {}
    for i, res, err in _as_completed(running):
        if err is not None:
            for u in owned[i]:
                failed[u] = err
            continue
        _write(points / "config.json", res["config"])
        for u, text in res["points"].items():
            _write(points / f"{u}.json", text)
            computed.append(u)
        if not quiet:
            print(f"widenet.distributed: shard {i}/{count} done "
                  f"({len(computed) + len(reused)} of {len(units)} units)", file=sys.stderr)
    if failed:
        have = {u: json.loads((points / f"{u}.json").read_text())
                for u in units if (points / f"{u}.json").exists()}
        _write(outp / "report.json", json.dumps(
            {"partial": True, "argv": listing["argv"], "failed": failed, "points": have}, indent=1))
        raise DistributedError(
            "units failed every retry: " + ", ".join(f"{u} ({m})" for u, m in failed.items())
            + f"; finished points are in {points}, rerun with resume=True"
        )
    _run_binary(b, [*listing["argv"], "--out", str(outp), "--resume", "--from-points"])
    report = json.loads((outp / "report.json").read_text())
    return {"report": report, "computed": sorted(computed), "reused": reused}


def _kernel_block(
    binary: str, flags: Sequence[str], device: Optional[str], x1: Any, x2: Any,
    index: int, count: int, out: Optional[str],
) -> Any:
    """One task of :func:`kernel`: block ``index/count`` of the rows. With
    ``out`` (a path every node sees), ``x1``/``x2`` are paths and the block is
    written into ``out``; else they are arrays, the block is computed in a
    private file and returned as ``(first row, rows)``."""
    def args(p1: str, p2: Optional[str], k: str) -> List[str]:
        extra = ["--x2", p2] if p2 is not None else []
        return [*_global(device), "kernel", "--x1", p1, *extra, *flags,
                "--rows", f"{index}/{count}", "--out", k, "--quiet"]

    if out is not None:
        _run_binary(binary, args(str(x1), None if x2 is None else str(x2), out))
        return None
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="widenet-rows-") as tmp:
        p1 = str(Path(tmp, "x1.npy"))
        np.save(p1, x1)
        p2 = None
        if x2 is not None:
            p2 = str(Path(tmp, "x2.npy"))
            np.save(p2, x2)
        k = str(Path(tmp, "k.npy"))
        _run_binary(binary, args(p1, p2, k))
        n1 = len(x1)
        a, b = index * n1 // count, (index + 1) * n1 // count
        return a, np.array(np.load(k, mmap_mode="r")[a:b])


def kernel(
    x1: Any,
    out: Union[str, os.PathLike],
    *,
    x2: Any = None,
    flags: Union[None, Sequence[str], Mapping[str, Any]] = None,
    blocks: int = 8,
    shared: bool = False,
    address: Optional[str] = None,
    max_retries: int = 3,
    device: Optional[str] = None,
    binary: Optional[str] = None,
) -> Path:
    """A kernel of any size on a Ray cluster: ``widenet kernel`` on ``blocks``
    blocks of the rows of ``x1``, one Ray task each, into the ``.npy`` file
    ``out`` (``[n1, n2]``). ``flags`` are the command's own (``["--arch",
    "...", "--get", "ntk"]``, or a mapping as in :func:`run`).

    Two ways to gather the blocks:

    - ``shared=False`` (the default, no shared file system needed): ``x1`` and
      ``x2`` are arrays (or ``.npy`` paths the driver reads); each task
      computes its block in a private file and returns it, and the driver
      writes it into ``out`` as it arrives.
    - ``shared=True``: ``x1``, ``x2`` and ``out`` are paths that every node
      sees; each task writes its rows into ``out`` itself (``widenet kernel
      --rows I/N``: memory-mapped writes at offsets into one pre-allocated
      file), and the driver checks the result with ``widenet kernel --check``.

    Failed tasks are retried (``max_retries``); a block that fails every retry
    raises :class:`DistributedError` naming it. Returns the path of ``out``.
    """
    import numpy as np
    import ray

    b = find_binary(binary)
    argv = flags_of(flags) if isinstance(flags, Mapping) else list(flags or [])
    outp = Path(out)
    count = max(1, int(blocks))
    task = _remote(_kernel_block, address, max_retries)
    if shared:
        if not isinstance(x1, (str, os.PathLike)) or not (x2 is None or isinstance(x2, (str, os.PathLike))):
            raise DistributedError("kernel(shared=True) takes x1 and x2 as paths every node sees")
        p1, p2 = str(Path(x1).resolve()), None if x2 is None else str(Path(x2).resolve())
        refs = {task.remote(b, argv, device, p1, p2, i, count, str(outp.resolve())): i
                for i in range(count)}
    else:
        a1 = np.load(x1) if isinstance(x1, (str, os.PathLike)) else np.asarray(x1)
        a2 = None if x2 is None else (np.load(x2) if isinstance(x2, (str, os.PathLike)) else np.asarray(x2))
        r1, r2 = ray.put(a1), None if a2 is None else ray.put(a2)
        refs = {task.remote(b, argv, device, r1, r2, i, count, None): i for i in range(count)}
    failed: Dict[int, str] = {}
    target = None
    tmp = outp.with_name(f".{outp.name}.tmp{os.getpid()}")
    n2 = len(a1 if x2 is None else a2) if not shared else 0
    for i, res, err in _as_completed(refs):
        if err is not None:
            failed[i] = err
            continue
        if res is not None:
            first, rows = res
            if target is None:
                target = np.lib.format.open_memmap(tmp, mode="w+", dtype=rows.dtype, shape=(len(a1), n2))
            target[first:first + len(rows)] = rows
    if failed:
        if tmp.exists():
            tmp.unlink()
        raise DistributedError("kernel blocks failed every retry: " + ", ".join(
            f"{i}/{count} ({m})" for i, m in sorted(failed.items())))
    if shared:
        _run_binary(b, ["kernel", "--check", str(outp)])
    elif target is not None:
        target.flush()
        del target
        os.replace(tmp, outp)
    return outp


def main(args: Optional[Sequence[str]] = None) -> int:
    """``python -m widenet.distributed COMMAND --out DIR [--address A] [flags]``:
    every flag it does not know goes to the widenet command."""
    p = argparse.ArgumentParser(prog="python -m widenet.distributed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", help="the sweep: compare, drift, mutransfer, chaos, "
                   "learning-curves, random-labels, sharpness, superposition")
    p.add_argument("--address", default=None, help="Ray cluster (auto: the running one)")
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--max-retries", type=int, default=3)
    p.add_argument("--units-per-task", type=int, default=1)
    p.add_argument("--device", default=None)
    p.add_argument("--binary", default=None)
    p.add_argument("--quiet", action="store_true")
    known, rest = p.parse_known_args(args)
    rest = [a for a in rest if a != "--quiet"]
    try:
        res = _run_with_flags(known, rest)
    except DistributedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not known.quiet:
        print(f"wrote {known.out}: {len(res['computed'])} units computed, "
              f"{len(res['reused'])} reused", file=sys.stderr)
    return 0


def _run_with_flags(known: argparse.Namespace, rest: List[str]) -> Dict[str, Any]:
    cfg: Dict[str, Any] = {}
    i = 0
    while i < len(rest):
        k = rest[i]
        if not k.startswith("--"):
            raise DistributedError(f"unexpected argument '{k}'")
        if i + 1 < len(rest) and not rest[i + 1].startswith("--"):
            cfg[k[2:]] = rest[i + 1]
            i += 2
        else:
            cfg[k[2:]] = True
            i += 1
    return run(known.command, cfg, address=known.address, out=known.out, resume=known.resume,
               max_retries=known.max_retries, units_per_task=known.units_per_task,
               device=known.device, binary=known.binary, quiet=known.quiet)


if __name__ == "__main__":
    sys.exit(main())
