"""Parity checks of the image and video preprocessing (``preprocess_*`` fixtures)."""

from __future__ import annotations

from pathlib import Path

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
