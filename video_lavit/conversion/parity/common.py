"""Shared pieces of the parity checks: fixture loading and tensor comparison under the fixtures' rules."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file


@dataclass
class Comparison:
    """One compared quantity. ``max_diff`` is the largest absolute difference (0 for exact matches)."""

    name: str
    passed: bool
    max_diff: float = 0.0
    detail: str = ""


@dataclass
class Fixture:
    """A fixture ``<name>.json`` with lazy access to its safetensors files."""

    name: str
    directory: Path
    spec: dict
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, json_path: str | Path) -> "Fixture":
        json_path = Path(json_path)
        with open(json_path, encoding="utf-8") as f:
            spec = json.load(f)
        return cls(name=json_path.stem, directory=json_path.parent, spec=spec)

    def tensors(self, filename: str | None = None) -> dict[str, torch.Tensor]:
        """Tensors of ``filename`` (default ``<name>_io.safetensors``), cached."""
        filename = filename or f"{self.name}_io.safetensors"
        if filename not in self._cache:
            path = self.directory / filename
            if not path.is_file():
                raise FileNotFoundError(f"fixture {self.name}: missing file {path}")
            self._cache[filename] = load_file(str(path))
        return self._cache[filename]

    def weights(self, filename: str | None = None) -> dict[str, torch.Tensor]:
        """Original-format state dict (``<name>.safetensors`` by default), cast to float32."""
        filename = filename or f"{self.name}.safetensors"
        return {k: (v.float() if v.is_floating_point() else v) for k, v in self.tensors(filename).items()}

    def find_media(self, filename: str, media_dir: str | Path | None) -> Path:
        """Look a media file up in ``media_dir``, then next to the fixture JSON."""
        candidates = ([Path(media_dir) / filename] if media_dir else []) + [self.directory / filename]
        for path in candidates:
            if path.is_file():
                return path
        raise FileNotFoundError(
            f"fixture {self.name}: media file {filename!r} not found in " + ", ".join(str(c.parent) for c in candidates)
        )


def compare_tensors(
    name: str,
    ours: torch.Tensor,
    reference: torch.Tensor,
    rule: str = "exact",
    atol: float = 0.0,
    rtol: float = 0.0,
    mask: torch.Tensor | None = None,
) -> Comparison:
    """Compare ``ours`` with ``reference`` under a fixture rule (``exact`` or ``allclose``).

    With ``mask``, only positions where the mask is non-zero are compared (the mask broadcasts against the
    tensors).
    """
    ours = torch.as_tensor(ours).detach().cpu()
    reference = torch.as_tensor(reference).detach().cpu()
    if tuple(ours.shape) != tuple(reference.shape):
        return Comparison(name, False, float("inf"), f"shape {tuple(ours.shape)} != reference {tuple(reference.shape)}")
    if mask is not None:
        keep = torch.as_tensor(mask).detach().cpu().bool().expand_as(reference)
        ours, reference = ours[keep], reference[keep]
    if ours.numel() == 0:
        return Comparison(name, True, 0.0, "empty")
    if rule == "exact":
        equal = torch.equal(ours.to(reference.dtype), reference)
        diff = (ours.double() - reference.double()).abs().max().item() if ours.dtype != torch.bool else float(not equal)
        mismatches = int((ours.to(reference.dtype) != reference).sum().item())
        return Comparison(name, equal, diff, "" if equal else f"{mismatches} of {reference.numel()} elements differ")
    if rule == "allclose":
        o, r = ours.double(), reference.double()
        diff = (o - r).abs()
        passed = bool((diff <= atol + rtol * r.abs()).all().item())
        return Comparison(name, passed, diff.max().item(), f"atol={atol} rtol={rtol}")
    raise ValueError(f"unknown comparison rule {rule!r} for {name}")


def compare_by_spec(name: str, ours: torch.Tensor, reference: torch.Tensor, spec: dict, mask=None) -> Comparison:
    """Compare using a fixture's per-tensor description: ``{"compare": ..., "atol": ..., "rtol": ...}``."""
    return compare_tensors(
        name, ours, reference, spec.get("compare", "exact"), float(spec.get("atol") or 0.0),
        float(spec.get("rtol") or 0.0), mask,
    )


def check_keys_cover(
    name: str, mapped_shapes: dict[str, tuple[int, ...]], our_shapes: dict[str, tuple[int, ...]]
) -> list[Comparison]:
    """Released-key check: every converted key is one of our parameters with the same shape, and every
    parameter of ours is filled."""
    results = []
    unknown = sorted(set(mapped_shapes) - set(our_shapes))
    missing = sorted(set(our_shapes) - set(mapped_shapes))
    wrong = sorted(k for k in set(mapped_shapes) & set(our_shapes) if tuple(mapped_shapes[k]) != tuple(our_shapes[k]))
    results.append(Comparison(f"{name}: keys land on our parameters", not unknown, len(unknown), ", ".join(unknown[:10])))
    results.append(Comparison(f"{name}: every parameter filled", not missing, len(missing), ", ".join(missing[:10])))
    results.append(
        Comparison(
            f"{name}: shapes match", not wrong, len(wrong),
            ", ".join(f"{k}: {mapped_shapes[k]} vs {our_shapes[k]}" for k in wrong[:10]),
        )
    )
    return results
