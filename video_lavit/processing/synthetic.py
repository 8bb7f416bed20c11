"""Synthetic test/demo videos made with PyAV: a textured square moving at a known velocity.

The repository bundles no third-party video; these clips have motion whose direction and size are known, which
makes them the best check of the motion-vector path.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np


def moving_square_frames(
    num_frames: int = 48,
    width: int = 320,
    height: int = 240,
    velocity: tuple[float, float] = (4.0, 2.0),
    square: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """``[T, H, W, 3]`` uint8 frames: a random-textured square moving ``velocity`` = (dx, dy) pixels per frame
    (+x right, +y down) over a smooth static background."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, size=(square, square, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack(
        [80 + 40 * np.sin(xx / 23.0), 90 + 30 * np.cos(yy / 17.0), 100 + 20 * np.sin((xx + yy) / 31.0)], axis=-1
    ).astype(np.uint8)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    x0, y0 = width // 4 - square // 2, height // 4 - square // 2
    for t in range(num_frames):
        frame = background.copy()
        x = int(round(x0 + velocity[0] * t)) % max(1, width - square)
        y = int(round(y0 + velocity[1] * t)) % max(1, height - square)
        frame[y : y + square, x : x + square] = texture[: height - y, : width - x]
        frames[t] = frame
    return frames


def encode_video(
    frames: np.ndarray,
    fps: float = 6.0,
    codec: str = "libx264",
    container_format: str = "mp4",
    rotation: float | None = None,
    timestamps: list[float] | None = None,
    audio_seconds: float | None = None,
) -> bytes:
    """Encode ``[T, H, W, 3]`` uint8 frames to an in-memory file and return its bytes.

    ``timestamps`` (seconds, increasing) makes a variable-frame-rate stream; ``rotation`` sets the display matrix;
    ``audio_seconds`` adds a sine audio track of that length.
    """
    buffer = io.BytesIO()
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        time_base = Fraction(1, 1000) if timestamps is not None else 1 / rate
        stream.time_base = time_base
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        audio = None
        if audio_seconds is not None:
            audio = container.add_stream("aac", rate=16000)
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = int(round(timestamps[index] * 1000)) if timestamps is not None else index
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio is not None:
            _write_sine(container, audio, audio_seconds)
    return buffer.getvalue()


def encode_audio_only(seconds: float = 1.0) -> bytes:
    """An audio-only file (AAC in MP4)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        _write_sine(container, container.add_stream("aac", rate=16000), seconds)
    return buffer.getvalue()


def _write_sine(container, stream, seconds: float) -> None:
    rate, chunk = 16000, 1024
    total = int(rate * seconds)
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        samples = (0.2 * np.sin(2 * np.pi * 440 * np.arange(start, start + n) / rate)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(samples[None], format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


__all__ = ["encode_audio_only", "encode_video", "moving_square_frames"]
