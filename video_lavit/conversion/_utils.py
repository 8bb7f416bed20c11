"""Helpers the component converters share: reading original weight files lazily and comparing state dicts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch


def load_weights_file(path: str | Path, keep: Callable[[str], bool] | None = None) -> dict[str, torch.Tensor]:
    """The tensors of one `.bin` or `.safetensors` file whose key passes `keep` (all when `None`).

    Files are memory-mapped where their format allows (zip `.bin` archives, safetensors), so only the tensors that
    are used later are ever read into memory; a multi-GB shard costs nothing to open. Legacy (non-zip) pickles
    cannot be mapped and are read whole. Never unpickles code (`weights_only=True`).
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as file:
            return {key: file.get_tensor(key) for key in file.keys() if keep is None or keep(key)}
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    return state_dict if keep is None else {k: v for k, v in state_dict.items() if keep(k)}


def state_dict_mismatches(
    converted: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]]
) -> tuple[list[str], list[str], list[tuple[str, tuple[int, ...], tuple[int, ...]]]]:
    """`(missing, unexpected, wrong)`: expected keys absent from `converted`, converted keys not expected, and
    `(key, converted shape, expected shape)` for shared keys whose shapes differ; each sorted by key. Reads only
    shapes, so meta tensors work."""
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    wrong = [
        (k, tuple(converted[k].shape), tuple(expected[k]))
        for k in sorted(set(expected) & set(converted))
        if tuple(converted[k].shape) != tuple(expected[k])
    ]
    return missing, unexpected, wrong
