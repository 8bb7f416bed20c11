"""Write generated frames to mp4 (PyAV) or gif (PIL), without imageio/OpenCV/ffmpeg CLI.

Frames may be a list of PIL images, a numpy array `[T, H, W, 3]` (uint8, or float in [0, 1]) or a torch tensor
`[T, 3, H, W]` (the pipelines' `output_type="pt"` layout) or `[T, H, W, 3]`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import PIL.Image

# Preferred encoders in order; the PyAV wheel bundles libx264, a minimal FFmpeg build may only have mpeg4.
MP4_CODECS = ("libx264", "mpeg4")


def frames_to_uint8(frames) -> np.ndarray:
    """Any supported frame container -> `uint8` array `[T, H, W, 3]`."""
    if isinstance(frames, (list, tuple)):
        if not frames:
            raise ValueError("no frames to write")
        if all(isinstance(f, PIL.Image.Image) for f in frames):
            sizes = {f.size for f in frames}
            if len(sizes) != 1:
                raise ValueError(f"all frames must have the same size, got {sorted(sizes)}")
            return np.stack([np.asarray(f.convert("RGB")) for f in frames])
        frames = np.stack([np.asarray(f) for f in frames])
    if hasattr(frames, "detach"):  # torch tensor, without importing torch here
        array = frames.detach().cpu()
        if array.ndim == 4 and array.shape[1] == 3 and array.shape[-1] != 3:
            array = array.permute(0, 2, 3, 1)
        frames = array.float().numpy() if array.is_floating_point() else array.numpy()
    if not isinstance(frames, np.ndarray):
        raise TypeError(f"frames must be a list of PIL images, a numpy array or a torch tensor, got {type(frames).__name__}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape [T, H, W, 3] (one video; pass e.g. output.frames[0]), got {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError("no frames to write")
    if frames.dtype == np.uint8:
        return frames
    if np.issubdtype(frames.dtype, np.floating):
        low, high = float(frames.min()), float(frames.max())
        if low < -1e-3 or high > 1 + 1e-3:
            raise ValueError(f"float frames must lie in [0, 1], got values in [{low:.4g}, {high:.4g}]")
        return (np.clip(frames, 0.0, 1.0) * 255).round().astype(np.uint8)
    raise TypeError(f"frames must be uint8 or float, got {frames.dtype}")


def _pad_to_even(frames: np.ndarray) -> np.ndarray:
    """yuv420p needs even sizes: repeat the last row/column instead of cropping content away."""
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frames


def _check_fps(fps) -> Fraction:
    if not isinstance(fps, (int, float, Fraction)) or isinstance(fps, bool) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    return Fraction(fps).limit_denominator(1001)


def export_to_mp4(frames, path: str | Path, fps: float = 6, codec: str | None = None, crf: int = 18) -> str:
    """Encode `frames` as an mp4 (H.264 through PyAV's bundled libx264 when available, else MPEG-4 Part 2).

    Odd heights/widths are padded by one edge pixel (yuv420p needs even sizes). Returns the path.
    """
    import av

    rate = _check_fps(fps)
    frames = _pad_to_even(frames_to_uint8(frames))
    if codec is None:
        codec = next((c for c in MP4_CODECS if c in av.codecs_available), None)
        if codec is None:
            raise RuntimeError(f"PyAV has none of the encoders {MP4_CODECS}")
    path = str(path)
    with av.open(path, mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf)}
        else:
            stream.bit_rate = 8_000_000
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def export_to_gif(frames, path: str | Path, fps: float = 6, loop: int = 0) -> str:
    """Write `frames` as an animated gif (PIL; gif timing has 10 ms resolution). Returns the path."""
    rate = _check_fps(fps)
    images = [PIL.Image.fromarray(f) for f in frames_to_uint8(frames)]
    path = str(path)
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=round(1000 / float(rate)), loop=loop, optimize=False
    )
    return path


__all__ = ["export_to_gif", "export_to_mp4", "frames_to_uint8"]
