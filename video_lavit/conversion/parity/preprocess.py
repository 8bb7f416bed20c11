"""Parity checks of the image and video preprocessing (``preprocess_*`` fixtures)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from .common import Comparison, Fixture, compare_by_spec


def check_preprocess_image(fixture: Fixture, media_dir: Path | None) -> list[Comparison]:
    from ...processing.image_processing_video_lavit import VideoLavitImageProcessor

    io = fixture.tensors()
    spec = fixture.spec["io"]["output.pixel_values"]
    size = {"height": int(spec["shape"][-2]), "width": int(spec["shape"][-1])}
    processor = VideoLavitImageProcessor(size=size)
    ours = processor(io["input.image_rgb"].numpy(), return_tensors="pt")["pixel_values"][0]
    return [compare_by_spec("pixel_values", ours, io["output.pixel_values"], spec)]


def _video_processor(fixture: Fixture, mode: str):
    from ...processing.video_processing_video_lavit import VideoLavitVideoProcessor

    spec = fixture.spec
    threads = int(spec["reencode"]["encoder_threads_pinned"])
    return VideoLavitVideoProcessor(mode=mode, encoder_threads=threads)


def _frame_type_codes(frame_types: str) -> torch.Tensor:
    return torch.tensor([ord(c) for c in frame_types], dtype=torch.uint8)


def _mv_table(video: Path, fps: float, threads: int) -> torch.Tensor:
    import numpy as np

    from ...processing.motion_vectors import ReencodeSettings, motion_vector_table, reencode_video

    rows = []
    for item in reencode_video(video, ReencodeSettings(fps=fps, encoder_threads=threads)):
        table = motion_vector_table(item.motion_vectors)
        rows.append(np.concatenate([np.full((len(table), 1), item.index, dtype=np.int32), table], axis=1))
    return torch.from_numpy(np.concatenate(rows).astype(np.int64))


def _reencode_fps(spec: dict) -> float:
    command = spec.get("reencode", {}).get("original_command")
    if command:
        return _parse_number(command, "fps=")
    return _parse_number(" ".join(spec["original"]["functions"]), "fps=")


def _compare_present(results: list, io_spec: dict, key: str, name: str, ours, reference) -> None:
    """Compare when the fixture records ``key`` (fixture sets may omit intermediates)."""
    if key in io_spec:
        results.append(compare_by_spec(name, ours() if callable(ours) else ours, reference(), io_spec[key]))


def check_preprocess_video(fixture: Fixture, media_dir: Path | None) -> list[Comparison]:
    """Understanding path: frame types, keyframes, pooled motion, both resize variants, keyframe pixels, MVs."""
    spec, io_spec = fixture.spec, fixture.spec["io"]
    video = fixture.find_media(spec["input"]["video"], media_dir)
    io = fixture.tensors()
    functions = " ".join(spec["original"]["functions"])
    fps = _reencode_fps(spec)
    max_clips = int(_parse_number(functions, "max_clips=", default=16))
    _, _, frames_per_clip, motion_h, motion_w = io_spec["output.motion_tv_antialias_false"]["shape"]
    image_size = int(io_spec["output.visual"]["shape"][-1])
    options = dict(
        target_fps=fps, max_clips=max_clips, frames_per_clip=frames_per_clip,
        motion_size={"height": motion_h, "width": motion_w}, size={"height": image_size, "width": image_size},
    )
    if "normalisation" in spec:  # the fixture records the std after the division by 10
        options["motion_std"] = [s * 10 for s in spec["normalisation"]["mv_std_used"]]
    processor = _video_processor(fixture, "understanding")
    results = []
    data = processor.extract(video, **options)
    results.append(compare_by_spec("frame_types", _frame_type_codes(data.frame_types), io["output.frame_types"],
                                   io_spec["output.frame_types"]))
    results.append(compare_by_spec("keyframe_indices", torch.tensor(data.clip_starts), io["output.keyframe_indices"],
                                   io_spec["output.keyframe_indices"]))
    if len(data.clip_starts) != len(io["output.keyframe_indices"]):
        return results
    batch = None
    _compare_present(results, io_spec, "output.keyframes_rgb", "keyframes_rgb",
                     torch.from_numpy(np.stack(data.keyframes)), lambda: io["output.keyframes_rgb"])
    _compare_present(results, io_spec, "intermediate.motion_pooled", "motion_pooled", torch.stack(data.pooled),
                     lambda: io["intermediate.motion_pooled"])
    for antialias in (False, True):
        key = f"output.motion_tv_antialias_{str(antialias).lower()}"
        if key not in io_spec:
            continue
        batch = processor(str(video), return_tensors="pt", motion_antialias=antialias, **options)
        results.append(compare_by_spec(key, batch["motion_vectors"], io[key], io_spec[key]))
        results.append(compare_by_spec(f"clips_per_video ({key})", batch["clips_per_video"],
                                       torch.tensor([len(io["output.keyframe_indices"])]), {"compare": "exact"}))
    visual_file = spec.get("files", {}).get("visual")
    if batch is None:
        batch = processor(str(video), return_tensors="pt", **options)
    _compare_present(results, io_spec, "output.visual", "visual", batch["pixel_values"],
                     lambda: fixture.tensors(visual_file)["output.visual"] if visual_file else io["output.visual"])
    mvs_file = spec.get("files", {}).get("mvs")
    threads = int(spec["reencode"]["encoder_threads_pinned"])
    _compare_present(
        results, io_spec, "intermediate.mv_table", "mv_table", lambda: _mv_table(video, fps, threads),
        lambda: (fixture.tensors(mvs_file) if mvs_file else io)["intermediate.mv_table"].long(),
    )
    return results


def check_preprocess_video_recon(fixture: Fixture, media_dir: Path | None) -> list[Comparison]:
    """Reconstruction path: fps 12, plain std, grid H/8 x W/8, seeded clip start, keyframe resize."""
    spec, io_spec = fixture.spec, fixture.spec["io"]
    video = fixture.find_media(spec["input"]["video"], media_dir)
    io = fixture.tensors()
    fps = _reencode_fps(spec)
    _, frames_per_clip, motion_h, motion_w = io_spec["output.motion_tv_antialias_false"]["shape"]
    key_h, key_w = io_spec["output.keyframe_resized_rgb"]["shape"][:2]
    downsample = key_w // motion_w
    if (key_h // downsample, key_w // downsample) != (motion_h, motion_w):
        raise ValueError(f"motion grid {motion_h}x{motion_w} is not the keyframe size {key_h}x{key_w} / {downsample}")
    processor = _video_processor(fixture, "reconstruction")
    options = dict(
        reconstruction_fps=fps, frames_per_clip=frames_per_clip, reconstruction_motion_downsample=downsample,
        reconstruction_size={"height": key_h, "width": key_w},
    )
    seed = spec.get("selection", {}).get("seed")
    # with a recorded seed the start is drawn as the notebook does; otherwise the recorded start is imposed
    choice = {"seed": int(seed)} if seed is not None else {"clip_start": int(io["output.clip_start"])}
    results = []
    batch = processor(str(video), return_tensors="pt", **choice, **options)
    data = processor.extract(video, **choice, **options)
    results.append(compare_by_spec("frame_types", _frame_type_codes(data.frame_types), io["output.frame_types"],
                                   io_spec["output.frame_types"]))
    results.append(compare_by_spec("clip_start", torch.tensor(data.clip_starts[0]), io["output.clip_start"],
                                   io_spec["output.clip_start"]))
    for antialias in (False, True):
        key = f"output.motion_tv_antialias_{str(antialias).lower()}"
        if key not in io_spec:
            continue
        batch = processor(str(video), return_tensors="pt", motion_antialias=antialias, **choice, **options)
        results.append(compare_by_spec(key, batch["motion_vectors"][0], io[key], io_spec[key]))
    keyframe = ((batch["pixel_values"][0] + 1) / 2 * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0)
    results.append(compare_by_spec("keyframe_resized_rgb", keyframe, io["output.keyframe_resized_rgb"],
                                   io_spec["output.keyframe_resized_rgb"]))
    return results


def _parse_number(text: str, key: str, default: float | None = None) -> float:
    """First number after ``key`` in the fixture's description of the original call."""
    match = re.search(re.escape(key) + r"\s*([0-9.]+)", text)
    if match is None:
        if default is not None:
            return default
        raise ValueError(f"the fixture does not state {key!r}: {text}")
    return float(match.group(1))
