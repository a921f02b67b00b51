"""neural-tangents' ``get`` argument: a name gives an array, a tuple (or
None, for every kernel) a named tuple of arrays."""

from __future__ import annotations

from collections import namedtuple
from typing import Any, Dict, Tuple, Union

Get = Union[None, str, Tuple[str, ...]]

KINDS = ("nngp", "ntk")

#: The kernels of ``kernel_fn(..., get=None)``: ``.nngp`` and ``.ntk``.
Kernel = namedtuple("Kernel", KINDS)
Kernel.__doc__ = "The NNGP and NTK of a pair of input sets (``.nngp``, ``.ntk``)."

_tuples: Dict[Tuple[str, ...], type] = {KINDS: Kernel}


def names(get: Get) -> Tuple[str, ...]:
    """The kernels ``get`` asks for, checked."""
    if get is None:
        return KINDS
    items = (get,) if isinstance(get, str) else tuple(get)
    if not items:
        raise ValueError("get must name at least one kernel (nngp or ntk)")
    for g in items:
        if g not in KINDS:
            raise ValueError(f"get must be 'nngp', 'ntk', a tuple of them or None, got {g!r}")
    if len(set(items)) != len(items):
        raise ValueError(f"get names a kernel twice: {items}")
    return items


def pack(get: Get, values: Dict[str, Any]) -> Any:
    """The result in the form ``get`` asks for."""
    if isinstance(get, str):
        return values[get]
    items = names(get)
    cls = _tuples.get(items)
    if cls is None:
        cls = _tuples[items] = namedtuple("Kernel", items)
    return cls(*(values[g] for g in items))
