"""Pictures of a decomposed video: keyframes beside colour-coded motion fields, and an animated motion GIF.

Motion is coloured the usual optical-flow way: hue = direction (0 deg = right, red), saturation = magnitude
relative to ``max_magnitude``; no motion is white.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def flow_to_color(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """``[2, H, W]`` (x right, y down) -> uint8 ``[H, W, 3]`` RGB; hue from the angle, saturation from the
    magnitude divided by ``max_magnitude`` (default: the field's own maximum)."""
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"flow must be [2, H, W], got shape {flow.shape}")
    dx, dy = flow[0], flow[1]
    magnitude = np.hypot(dx, dy)
    scale = max_magnitude if max_magnitude is not None else float(magnitude.max())
    saturation = np.clip(magnitude / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(magnitude)
    hue = (np.arctan2(dy, dx) / (2 * np.pi)) % 1.0
    return _hsv_to_rgb(hue, saturation, np.ones_like(hue))


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    i = np.floor(h * 6).astype(np.int64) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    rgb = np.zeros(h.shape + (3,))
    for k, (r, g, b) in enumerate(choices):
        mask = i == k
        rgb[mask] = np.stack([r[mask], g[mask], b[mask]], axis=-1)
    return (rgb * 255).round().astype(np.uint8)


def color_wheel(size: int = 64) -> np.ndarray:
    """Legend: the colour of every direction at full magnitude, as a disc."""
    coords = np.linspace(-1, 1, size)
    x, y = np.meshgrid(coords, coords)
    wheel = flow_to_color(np.stack([x, y]), max_magnitude=1.0)
    wheel[np.hypot(x, y) > 1] = 255
    return wheel


def _upscale(rgb: np.ndarray, height: int, width: int) -> Image.Image:
    return Image.fromarray(rgb).resize((width, height), Image.NEAREST)


def keyframe_motion_sheet(
    keyframes: list[np.ndarray], motions: list[np.ndarray], labels: list[str] | None = None, height: int = 180
) -> Image.Image:
    """One row per clip: the keyframe, then the clip's mean motion field coloured with a shared scale.

    keyframes: uint8 ``[H, W, 3]``; motions: ``[T, 2, h, w]`` displacements per clip.
    """
    if len(keyframes) != len(motions) or not keyframes:
        raise ValueError(f"need one motion per keyframe, got {len(keyframes)} keyframes and {len(motions)} motions")
    means = [np.asarray(m, dtype=np.float64).mean(axis=0) for m in motions]
    scale = max(float(np.hypot(m[0], m[1]).max()) for m in means) or 1.0
    rows = []
    for index, (keyframe, mean) in enumerate(zip(keyframes, means)):
        width = max(1, round(keyframe.shape[1] * height / keyframe.shape[0]))
        left = Image.fromarray(keyframe).resize((width, height), Image.BICUBIC)
        right = _upscale(flow_to_color(mean, scale), height, width)
        row = Image.new("RGB", (2 * width + 8, height + 18), "white")
        row.paste(left, (0, 18))
        row.paste(right, (width + 8, 18))
        text = labels[index] if labels else f"clip {index}"
        ImageDraw.Draw(row).text((2, 2), text, fill="black")
        rows.append(row)
    legend = Image.fromarray(color_wheel(48))
    sheet = Image.new("RGB", (max(r.width for r in rows) + 56, sum(r.height for r in rows)), "white")
    top = 0
    for row in rows:
        sheet.paste(row, (0, top))
        top += row.height
    sheet.paste(legend, (sheet.width - 52, 4))
    return sheet


def save_motion_gif(motions: list[np.ndarray], path: str | Path, height: int = 120, fps: float = 6.0) -> Path:
    """Animated GIF of every frame's motion field of every clip (clip after clip), one shared colour scale."""
    fields = [np.asarray(f, dtype=np.float64) for clip in motions for f in clip]
    if not fields:
        raise ValueError("no motion frames to animate")
    scale = max(float(np.hypot(f[0], f[1]).max()) for f in fields) or 1.0
    width = max(1, round(fields[0].shape[2] * height / fields[0].shape[1]))
    images = [_upscale(flow_to_color(f, scale), height, width).convert("P", palette=Image.ADAPTIVE) for f in fields]
    path = Path(path)
    images[0].save(path, save_all=True, append_images=images[1:], duration=max(20, round(1000 / fps)), loop=0)
    return path


__all__ = ["color_wheel", "flow_to_color", "keyframe_motion_sheet", "save_motion_gif"]
