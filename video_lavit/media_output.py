"""Writing generated videos for the console command: the file type follows the extension, plus a contact sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
from PIL import ImageDraw

from .pipelines.video_export import export_to_gif, export_to_mp4, frames_to_uint8

VIDEO_EXTENSIONS = (".mp4", ".gif", ".png")


def export_to_apng(frames, path: str | Path, fps: float = 6, loop: int = 0) -> str:
    """Write `frames` as an animated PNG (lossless; a one-frame video is a plain PNG). Returns the path."""
    images = [PIL.Image.fromarray(f) for f in frames_to_uint8(frames)]
    path = str(path)
    if len(images) == 1:
        images[0].save(path)
    else:
        images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / float(fps)), loop=loop)
    return path


def check_video_path(path: str | Path) -> Path:
    """`ValueError` unless `path` ends in one of `VIDEO_EXTENSIONS`; creates its folder."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise ValueError(f"--out must end in one of {', '.join(VIDEO_EXTENSIONS)}, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_video(frames, path: str | Path, fps: float = 6) -> str:
    """`frames` (`[T, H, W, 3]` array / `[T, 3, H, W]` tensor / PIL list) -> `.mp4` (H.264), `.gif` or animated `.png`."""
    path = check_video_path(path)
    writer = {".mp4": export_to_mp4, ".gif": export_to_gif, ".png": export_to_apng}[path.suffix.lower()]
    return writer(frames, path, fps=fps)


def contact_sheet(
    frames, clip_starts: list[int], keyframes=None, columns: int = 6, max_cell: int = 256
) -> PIL.Image.Image:
    """One row per clip: the clip's keyframe (when given) then `columns` evenly spaced frames of the clip, each
    labelled with its frame index. `clip_starts` are the first frame index of every clip in `frames`, ascending."""
    video = frames_to_uint8(frames)
    starts = [int(s) for s in clip_starts]
    if not starts or starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])) or starts[-1] >= len(video):
        raise ValueError(f"clip_starts must ascend from 0 and stay below {len(video)} frames, got {clip_starts}")
    height, width = video.shape[1:3]
    scale = min(1.0, max_cell / max(height, width))
    cell = (max(1, round(width * scale)), max(1, round(height * scale)))
    key_images = None if keyframes is None else [PIL.Image.fromarray(k) for k in frames_to_uint8(keyframes)]
    if key_images is not None and len(key_images) != len(starts):
        raise ValueError(f"{len(key_images)} keyframes for {len(starts)} clips")
    label_h = 12
    n_cols = columns + (key_images is not None)
    sheet = PIL.Image.new("RGB", (n_cols * cell[0], len(starts) * (cell[1] + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, start in enumerate(starts):
        stop = starts[row + 1] if row + 1 < len(starts) else len(video)
        picks = np.unique(np.linspace(start, stop - 1, columns).round().astype(int))
        cells = [(f"clip {row} key", key_images[row])] if key_images is not None else []
        cells += [(f"frame {i}", PIL.Image.fromarray(video[i])) for i in picks]
        top = row * (cell[1] + label_h)
        for col, (label, image) in enumerate(cells):
            sheet.paste(image.convert("RGB").resize(cell, PIL.Image.BICUBIC), (col * cell[0], top + label_h))
            draw.text((col * cell[0] + 2, top), label, fill="black")
    return sheet


def sheet_path(video_path: str | Path) -> Path:
    """`out.mp4` -> `out_sheet.png`."""
    video_path = Path(video_path)
    return video_path.with_name(video_path.stem + "_sheet.png")


__all__ = ["VIDEO_EXTENSIONS", "check_video_path", "contact_sheet", "export_to_apng", "sheet_path", "write_video"]
