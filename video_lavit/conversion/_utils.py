"""Helpers the component converters share: reading original weight files lazily and comparing state dicts."""

from __future__ import annotations

import re
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


def rename_by_rules(key: str, rules: list[tuple[re.Pattern, str]]) -> str | None:
    """The name the first rule whose pattern matches all of `key` gives it (`match.expand(template)`), or `None`."""
    for pattern, template in rules:
        match = pattern.fullmatch(key)
        if match:
            return match.expand(template)
    return None


def rename_keys(
    state_dict: dict[str, torch.Tensor], rename: Callable[[str], str | None]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """`(renamed tensors, sorted keys rename maps to None)`; the tensors themselves are not touched. Two keys renamed
    to the same name raise `ValueError` naming both."""
    converted: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    unmapped = []
    for key, tensor in state_dict.items():
        new_key = rename(key)
        if new_key is None:
            unmapped.append(key)
        elif new_key in converted:
            raise ValueError(f"two original keys map to {new_key!r}: {origin[new_key]!r} and {key!r}")
        else:
            converted[new_key], origin[new_key] = tensor, key
    return converted, sorted(unmapped)


def _listed(keys: list[str], limit: int = 20) -> str:
    return f"{keys[:limit]}" + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def check_state_dict(
    converted: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]], source: str = "converted state dict"
) -> None:
    """Every expected tensor present with its shape and nothing extra, else `ValueError` naming `source` and listing
    the missing, unexpected and mis-shaped keys (the first 20 of each, with the count)."""
    missing, unexpected, wrong = state_dict_mismatches(converted, expected)
    problems = []
    if missing:
        problems.append(f"{len(missing)} of our tensors have no source: missing {_listed(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} converted keys are not ours: unexpected {_listed(unexpected)}")
    if wrong:
        shapes = [f"{k}: {given} vs ours {shape}" for k, given, shape in wrong]
        problems.append(f"{len(wrong)} shape mismatches: {_listed(shapes)}")
    if problems:
        raise ValueError(f"{source} does not match the model; " + "; ".join(problems))
