"""Command line interface ``video-lavit``.

Subcommands are registered in ``SUBCOMMANDS`` (name -> builder). A builder receives the argparse
sub-parsers object, adds its parser and sets ``handler=<function(args) -> int>`` as a default::

    def _build_mycommand(subparsers):
        parser = subparsers.add_parser("mycommand", help="...")
        parser.add_argument(...)
        parser.set_defaults(handler=_run_mycommand)

    SUBCOMMANDS["mycommand"] = _build_mycommand
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np


def decompose(video, out_dir: str | Path, max_clips: int = 16, show_progress: bool = True, **processor_kwargs) -> dict:
    """Split ``video`` into keyframes and motion clips and write, into ``out_dir``:

    - ``keyframes_motion.png``: each keyframe beside its clip's mean motion field (colour = direction,
      saturation = speed; legend in the corner),
    - ``motion.gif``: every frame's motion field, clip after clip,
    - ``summary.json``: frame count and types, clips with keyframe index/time and mean motion.

    Returns the summary dict. ``processor_kwargs`` go to :class:`VideoLavitVideoProcessor`.
    """
    from .processing.video_processing_video_lavit import VideoLavitVideoProcessor
    from .processing.visualize import keyframe_motion_sheet, save_motion_gif

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    processor = VideoLavitVideoProcessor(max_clips=max_clips, show_progress=show_progress, **processor_kwargs)
    data = processor.extract(video)
    height, width = data.size
    std = np.asarray(processor.motion_std, dtype=np.float64) / float(processor.motion_rescale_factor)
    to_pixels = (std * np.array([width, height]))[None, :, None, None]
    motions_px = [clip.numpy().astype(np.float64) * to_pixels for clip in data.pooled]

    labels = [f"clip {i}: keyframe {s} at {s / data.fps:.2f} s" for i, s in enumerate(data.clip_starts)]
    keyframe_motion_sheet(data.keyframes, motions_px, labels).save(out_dir / "keyframes_motion.png")
    save_motion_gif(motions_px, out_dir / "motion.gif", fps=data.fps)

    clips = []
    for start, motion in zip(data.clip_starts, motions_px):
        speed = np.hypot(motion[:, 0], motion[:, 1])
        clips.append({
            "keyframe_index": start,
            "keyframe_time_s": round(start / data.fps, 4),
            "frames": int(motion.shape[0]),
            "mean_motion_px_per_frame": [round(float(motion[:, 0].mean()), 5), round(float(motion[:, 1].mean()), 5)],
            "mean_speed_px_per_frame": round(float(speed.mean()), 5),
            "moving_cells_fraction": round(float((speed > 0).mean()), 5),
        })
    summary = {
        "video": str(video) if isinstance(video, (str, Path)) else f"<{type(video).__name__}>",
        "fps": data.fps,
        "frame_size": [height, width],
        "num_frames": len(data.frame_types),
        "frame_types": data.frame_types,
        "num_clips": len(clips),
        "clips": clips,
        "files": ["keyframes_motion.png", "motion.gif", "summary.json"],
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _run_decompose(args) -> int:
    summary = decompose(args.video, args.out, max_clips=args.max_clips, encoder_threads=args.encoder_threads)
    _print_summary(summary, args.out)
    return 0


def _run_demo(args) -> int:
    """The README's main job: decompose a synthetic video into keyframes + motion, then, with the packaged miniature
    model (or ``--model``), answer a question about that video and generate a video from a text prompt."""
    from .cli_model import resolve_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    video = out / "demo_input.mp4"
    video.write_bytes(_demo_video())
    print(f"[1/3] decomposing {video} into keyframes and motion vectors")
    summary = decompose(video, out / "decomposition", max_clips=args.max_clips)
    _print_summary(summary, out / "decomposition")
    try:
        model = str(resolve_model(args.model))
    except ValueError as error:
        print(f"skipping understanding and generation: {error}")
        return 0
    question = "Describe this video."
    print(f"[2/3] understanding with {model}\n  Q: {question}")
    main(["understand", "--model", model, "--video", str(video), "--question", question])
    print(f"[3/3] generating a video for {args.prompt!r}")
    return main(["generate", "--model", model, "--prompt", args.prompt, "--out", str(out / "generated.mp4"),
                 "--seed", str(args.seed)])


def _demo_video() -> bytes:
    """A red circle moving left on a dark background: the miniature model's world, at its clip length."""
    from .mini.data import SceneSpec, encode_scene

    return encode_scene(SceneSpec("red", "circle", "left", x0=0.7, y0=0.5, size=0.3, speed=0.1, fps=6.0,
                                  width=96, height=80, background=20))


def _print_summary(summary: dict, out) -> None:
    print(f"{summary['num_frames']} frames at {summary['fps']:g} fps, {summary['num_clips']} clips:")
    for clip in summary["clips"]:
        dx, dy = clip["mean_motion_px_per_frame"]
        print(f"  keyframe {clip['keyframe_index']:5d} ({clip['keyframe_time_s']:8.2f} s)  mean motion "
              f"({dx:+.3f}, {dy:+.3f}) px/frame")
    print(f"wrote {', '.join(summary['files'])} to {out}")


def _build_decompose(subparsers) -> None:
    parser = subparsers.add_parser("decompose", help="keyframes + motion vectors of a video, as pictures and JSON")
    parser.add_argument("--video", required=True, help="input video file")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--max-clips", type=int, default=16, help="most clips (keyframes) to extract")
    parser.add_argument("--encoder-threads", type=int, default=16, help="mpeg4 encoder slice threads (pinned)")
    parser.set_defaults(handler=_run_decompose)


def _build_demo(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="decompose a synthetic video, answer a question about it and generate a video from text")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--max-clips", type=int, default=16, help="most clips (keyframes) to extract")
    parser.add_argument("--prompt", default="a red circle moves left", help="text for the generated video")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the generation")
    parser.add_argument("--model", default=None, help="Video-LaVIT folder (default: the packaged miniature model)")
    parser.set_defaults(handler=_run_demo)


def _build_convert(subparsers) -> None:
    from .conversion.convert_video_lavit import build_parser as build_convert_parser
    from .conversion.convert_video_lavit import run as run_convert

    parser = subparsers.add_parser("convert", help="convert the released Video-LaVIT folder into one Hugging Face folder")
    build_convert_parser(parser)
    parser.set_defaults(handler=run_convert)


SUBCOMMANDS: dict[str, Callable] = {"decompose": _build_decompose, "demo": _build_demo, "convert": _build_convert}


def _add_model_subcommands() -> None:
    # generate / understand / reconstruct / tokenize live in cli_model.py (one builder each, same contract)
    from .cli_model import MODEL_SUBCOMMANDS

    for name, build in MODEL_SUBCOMMANDS.items():
        SUBCOMMANDS.setdefault(name, build)


_add_model_subcommands()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="video-lavit", description="Video-LaVIT tools")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for build in SUBCOMMANDS.values():
        build(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ValueError as error:
        print(f"video-lavit {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
