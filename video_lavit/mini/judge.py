# Copyright 2026 The Video-LaVIT reimplementation authors. Apache-2.0.
"""Read colour, shape and direction of motion of the moving blob from generated pixels.

The background is the median colour of the frame border; blob pixels differ from it by more than a threshold.
Colour: nearest palette colour to the blob's mean colour. Direction: the dominant axis and sign of the blob
centroid's displacement over the clip. Shape: how much of its bounding box the blob fills (square ~1, circle
~0.79, triangle ~0.5), the median over frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import COLOURS

BLOB_THRESHOLD = 60.0
SQUARE_FILL = 0.89
TRIANGLE_FILL = 0.64


@dataclass
class BlobReading:
    colour: str | None
    shape: str | None
    direction: str | None
    displacement: tuple[float, float]

    @property
    def description(self) -> str:
        """e.g. "red circle left" ("none" for what could not be read)."""
        return " ".join(str(v) if v else "none" for v in (self.colour, self.shape, self.direction))


def _blob_masks(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frames = frames.astype(np.float32)
    border = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]], axis=1)
    background = np.median(border.reshape(-1, 3), axis=0)
    distance = np.abs(frames - background).max(axis=-1)
    return distance > BLOB_THRESHOLD, background


def read_blob(frames: np.ndarray) -> BlobReading:
    """``frames`` ``[T, H, W, 3]`` uint8 (or float in [0, 1]) -> what the blob looks like and where it goes."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape [T, H, W, 3], got {frames.shape}")
    if np.issubdtype(frames.dtype, np.floating):
        frames = np.clip(frames * 255.0 + 0.5, 0, 255).astype(np.uint8)
    masks, _ = _blob_masks(frames)
    present = masks.reshape(len(masks), -1).sum(axis=1) >= 4
    if present.sum() < 2:
        return BlobReading(None, None, None, (0.0, 0.0))
    pixels = frames[masks].astype(np.float32)
    mean = pixels.mean(axis=0)
    names = list(COLOURS)
    palette = np.array([COLOURS[n] for n in names], dtype=np.float32)
    colour = names[int(np.argmin(((palette - mean) ** 2).sum(axis=1)))]

    centroids, fills = [], []
    for mask in masks[present]:
        ys, xs = np.nonzero(mask)
        centroids.append((xs.mean(), ys.mean()))
        box = (xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)
        fills.append(mask.sum() / box)
    centroids = np.array(centroids)
    half = max(1, len(centroids) // 4)
    dx, dy = centroids[-half:].mean(axis=0) - centroids[:half].mean(axis=0)
    if max(abs(dx), abs(dy)) < 0.5:
        direction = None
    elif abs(dx) >= abs(dy):
        direction = "right" if dx > 0 else "left"
    else:
        direction = "down" if dy > 0 else "up"
    fill = float(np.median(fills))
    shape = "square" if fill >= SQUARE_FILL else "triangle" if fill < TRIANGLE_FILL else "circle"
    return BlobReading(colour, shape, direction, (float(dx), float(dy)))


__all__ = ["BlobReading", "read_blob"]
