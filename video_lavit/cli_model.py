"""The model-using subcommands of ``video-lavit``: generate, understand, reconstruct, tokenize, export-for-hub.

Each builder below is added to ``video_lavit.cli.SUBCOMMANDS``. ``--model`` is a Video-LaVIT folder (a converted
release or a ``VideoLavitPipeline`` folder, see ``video_lavit.pipelines.checkpoint_layout``); it defaults to
``video_lavit.MINI_MODEL_PATH`` when the installed package ships the miniature model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

DTYPES = ("float32", "bfloat16", "float16")


# ------------------------------------------------------------------------------------------------ shared options
def resolve_model(model: str | None) -> Path:
    """The `--model` folder, or the package's miniature model; `ValueError` saying what to pass when neither exists."""
    if model is None:
        import video_lavit

        mini = getattr(video_lavit, "MINI_MODEL_PATH", None)
        if mini is None or not Path(mini).is_dir():
            where = "" if mini is None else f" (nothing at {mini}; `python -m video_lavit.mini.train` builds it)"
            raise ValueError(
                f"no --model given and this video_lavit install ships no miniature model{where}; pass --model FOLDER "
                "(a converted Video-LaVIT folder, see `video-lavit convert --help`)"
            )
        model = mini
    folder = Path(model)
    if not folder.is_dir():
        raise ValueError(f"--model {str(folder)!r} is not a folder")
    return folder


CALL_DEFAULTS_FILE = "pipeline_call_defaults.json"


def pipeline_call_defaults(folder) -> dict:
    """`VideoLavitPipeline.__call__` arguments a model folder asks for instead of the released defaults.

    A folder may ship ``pipeline_call_defaults.json`` (the miniature model does: its keyframe decoder takes 16 codes,
    fewer than the released ``min_new_tokens=20``). JSON lists become tuples, the ``(keyframe, motion)`` pairs the
    pipeline takes. Missing file: ``{}``.
    """
    path = Path(folder) / CALL_DEFAULTS_FILE
    if not path.is_file():
        return {}
    values = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a JSON object of VideoLavitPipeline.__call__ arguments")
    return {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}


def _device_and_dtype(args):
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device), getattr(torch, args.dtype)


def _add_model_options(parser) -> None:
    parser.add_argument("--model", default=None, help="Video-LaVIT folder (default: the packaged miniature model)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="weights dtype")


def _load_video_pipeline(args):
    from .pipelines import VideoLavitPipeline
    from .pipelines.checkpoint_layout import is_pipeline_folder

    folder = resolve_model(args.model)
    if not is_pipeline_folder(folder):
        raise ValueError(f"{folder} has no model_index.json: {args.command} needs a VideoLavitPipeline folder")
    device, dtype = _device_and_dtype(args)
    return VideoLavitPipeline.from_pretrained(folder, dtype=dtype).to(device)


def _existing_file(path: str | None, flag: str) -> str | None:
    if path is not None and not Path(path).is_file():
        raise ValueError(f"{flag} {path!r} is not a file")
    return path


def _generator(seed: int):
    import torch

    return torch.Generator().manual_seed(seed)


def _write_outputs(frames, keyframes, clip_starts, out, fps) -> tuple[str, Path]:
    from .media_output import contact_sheet, sheet_path, write_video

    video = write_video(frames, out, fps=fps)
    sheet = sheet_path(out)
    contact_sheet(frames, clip_starts, keyframes=keyframes).save(sheet)
    return video, sheet


# ------------------------------------------------------------------------------------------------ generate
def _run_generate(args) -> int:
    import PIL.Image

    from .media_output import check_video_path

    check_video_path(args.out)
    _existing_file(args.image, "--image")
    pipe = _load_video_pipeline(args)
    steps = {} if args.steps is None else {"num_inference_steps": args.steps, "keyframe_num_inference_steps": args.steps}
    image = None if args.image is None else PIL.Image.open(args.image).convert("RGB")
    # the folder's own defaults first; explicit command-line values win
    call = {**pipeline_call_defaults(resolve_model(args.model)), **steps,
            **_token_limits(args.max_keyframe_tokens, args.max_motion_tokens)}
    out = pipe(prompt=args.prompt, image=image, num_clips=args.clips, generator=_generator(args.seed), output_type="pt",
               **call)
    frames = out.frames[0]  # [T, 3, H, W]
    frames_per_clip = pipe.motion_detokenizer.config.num_frames
    # clip 0 keeps all its frames, every later clip drops its first (the stitching of VideoLavitPipeline)
    starts = [0] + [frames_per_clip + i * (frames_per_clip - 1) for i in range(args.clips - 1)]
    video, sheet = _write_outputs(frames, out.keyframes[0], starts, args.out, args.fps)
    print(f"{frames.shape[0]} frames ({args.clips} clip{'s' * (args.clips > 1)}, {frames.shape[2]}x{frames.shape[3]}) "
          f"-> {video}; contact sheet -> {sheet}")
    return 0


def _token_limits(max_keyframe: int | None, max_motion: int | None) -> dict:
    """`max_new_tokens` / `min_new_tokens` (keyframe, motion) pairs for the given limits; the pipeline's defaults for
    the rest, minimums lowered to fit under a smaller maximum."""
    if max_keyframe is None and max_motion is None:
        return {}
    import inspect

    from .pipelines import VideoLavitPipeline

    defaults = inspect.signature(VideoLavitPipeline.__call__).parameters
    default_max, default_min = defaults["max_new_tokens"].default, defaults["min_new_tokens"].default
    maxima = tuple(default_max if m is None else m for m in (max_keyframe, max_motion))
    return {"max_new_tokens": maxima, "min_new_tokens": tuple(min(default_min, m) for m in maxima)}


def _build_generate(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="text (+ image) -> video with the full model")
    parser.add_argument("--prompt", required=True, help="description of the video")
    parser.add_argument("--image", default=None, help="first keyframe (image-to-video)")
    parser.add_argument("--clips", type=int, default=1, help="24-frame clips to generate (long video)")
    parser.add_argument("--out", required=True, help="output video: .mp4, .gif or .png (animated)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (the whole run is reproducible)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps of both detokenizers")
    parser.add_argument("--fps", type=float, default=6, help="frame rate of the written video")
    parser.add_argument("--max-keyframe-tokens", type=int, default=None,
                        help="most LLM tokens per keyframe (default: the pipeline's 500)")
    parser.add_argument("--max-motion-tokens", type=int, default=None,
                        help="most LLM tokens per clip's motion (default: 500; a clip uses 135)")
    _add_model_options(parser)
    parser.set_defaults(handler=_run_generate)


# ------------------------------------------------------------------------------------------------ understand
def answer_question(model_folder, question: str, video=None, image=None, max_new_tokens: int | None = None,
                    max_clips: int | None = None, device=None, dtype=None) -> str:
    """The `understand` subcommand as a function: the answer of the folder's understanding model."""
    from .pipelines.pipeline_video_text_to_text import (
        VideoLavitUnderstandingModelLoader,
        VideoLavitVideoTextToTextPipeline,
    )

    if (video is None) == (image is None):
        raise ValueError("give exactly one of a video and an image")
    loading = {} if dtype is None else {"dtype": dtype}
    model = VideoLavitUnderstandingModelLoader.from_pretrained(model_folder, **loading)
    pipe = VideoLavitVideoTextToTextPipeline(model=model, device=device)
    kwargs = {} if max_new_tokens is None else {"max_new_tokens": max_new_tokens}
    if video is not None:
        if max_clips is not None:
            kwargs["max_clips"] = max_clips
        inputs = {"video": str(video)}
    else:
        inputs = {"image": str(image)}
    return pipe(inputs, question=question, **kwargs)["generated_text"]


def _run_understand(args) -> int:
    device, dtype = _device_and_dtype(args)
    answer = answer_question(
        resolve_model(args.model), args.question, video=_existing_file(args.video, "--video"),
        image=_existing_file(args.image, "--image"),
        max_new_tokens=args.max_new_tokens, max_clips=args.max_clips, device=device, dtype=dtype,
    )
    print(answer)
    return 0


def _build_understand(subparsers) -> None:
    parser = subparsers.add_parser("understand", help="answer a question about a video or an image")
    media = parser.add_mutually_exclusive_group(required=True)
    media.add_argument("--video", help="input video file")
    media.add_argument("--image", help="input image file")
    parser.add_argument("--question", required=True, help="the question")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="longest answer (default: the model's 512)")
    parser.add_argument("--max-clips", type=int, default=None, help="most clips read from the video")
    _add_model_options(parser)
    parser.set_defaults(handler=_run_understand)


# ------------------------------------------------------------------------------------------------ tokenize
def tokenize_video(model, processor, video, max_clips: int | None = None, generator=None) -> dict:
    """Keyframe and motion tokens of every clip of `video`, with the LLM's own tokenizers.

    Returns a JSON-ready dict: per clip `keyframe_index` / `keyframe_time_s`, `keyframe_ids` (visual codebook
    indices), `motion_ids` (motion codebook indices, `num_motion_tokens` per clip) and `llm_ids` (the clip as the LLM
    reads it: `[IMG] visual ids [/IMG] [MOV] motion ids [/MOV]`).
    """
    import torch

    options = {} if max_clips is None else {"max_clips": max_clips}
    features = processor.video_processor([video], return_tensors="pt", **options)
    pixel_values = features["pixel_values"].to(model.device, model.visual_tokenizer.dtype)
    motion_vectors = features["motion_vectors"].to(model.device, model.motion_tokenizer.dtype)
    with torch.no_grad():
        keyframe_codes = model.visual_tokenizer.tokenize(pixel_values, generator=generator).token_ids
        motion_codes = model.motion_tokenizer.encode(motion_vectors).cpu()
    layout = model.token_layout
    clips = []
    for i, (codes, motion) in enumerate(zip(keyframe_codes, motion_codes)):
        codes = codes.cpu()
        llm_ids = torch.cat([layout.wrap_image_codes(codes), layout.motion_codes_to_ids(motion)])
        clips.append({
            "keyframe_index": int(features["keyframe_indices"][i]),
            "keyframe_time_s": round(float(features["keyframe_timestamps"][i]), 4),
            "keyframe_ids": codes.tolist(),
            "motion_ids": motion.tolist(),
            "llm_ids": llm_ids.tolist(),
        })
    return {
        "video": str(video),
        "num_clips": len(clips),
        "visual_codebook_size": int(model.config.visual_vocab_size),
        "motion_codebook_size": int(model.config.motion_vocab_size),
        "motion_tokens_per_clip": int(model.config.num_motion_tokens),
        "clips": clips,
    }


def _load_understanding(args):
    from .pipelines.checkpoint_layout import processor_location
    from .pipelines.pipeline_video_text_to_text import VideoLavitUnderstandingModelLoader
    from .processing.processing_video_lavit import VideoLavitProcessor

    folder = resolve_model(args.model)
    device, dtype = _device_and_dtype(args)
    model = VideoLavitUnderstandingModelLoader.from_pretrained(folder, dtype=dtype).to(device)
    return model, VideoLavitProcessor.from_pretrained(processor_location(model.name_or_path))


def _run_tokenize(args) -> int:
    _existing_file(args.video, "--video")
    model, processor = _load_understanding(args)
    result = tokenize_video(model, processor, args.video, max_clips=args.max_clips, generator=_generator(args.seed))
    text = json.dumps(result) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"{result['num_clips']} clips -> {args.out}")
    return 0


def _build_tokenize(subparsers) -> None:
    parser = subparsers.add_parser("tokenize", help="video -> keyframe and motion token ids (JSON)")
    parser.add_argument("--video", required=True, help="input video file")
    parser.add_argument("--out", default=None, help="JSON file (default: stdout)")
    parser.add_argument("--max-clips", type=int, default=None, help="most clips (default: the processor's 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the keyframe token selection")
    _add_model_options(parser)
    parser.set_defaults(handler=_run_tokenize)


# ------------------------------------------------------------------------------------------------ reconstruct
def reconstruct_video(pipe, video, max_clips: int | None = None, steps: int | None = None, keyframe: str = "tokens",
                      generator=None):
    """Video -> keyframe + motion tokens -> detokenized clips, with a `VideoLavitPipeline`'s components.

    `keyframe="tokens"` redraws each keyframe from its visual tokens with the keyframe detokenizer (the full token
    round trip); `"original"` feeds the decoded source keyframe instead, isolating the motion path. Returns
    `(frames [T, 3, H, W] in [0, 1], keyframes [N, 3, h, w], tokens dict as tokenize_video)`.
    """
    import numpy as np
    import PIL.Image
    import torch
    from tqdm.auto import tqdm

    if keyframe not in ("tokens", "original"):
        raise ValueError(f"keyframe must be 'tokens' or 'original', got {keyframe!r}")
    model = pipe.language_model
    tokens = tokenize_video(model, pipe.processor, video, max_clips=max_clips, generator=generator)
    height, width = pipe.config.video_height, pipe.config.video_width
    motion_codes = torch.tensor([[c["motion_ids"] for c in tokens["clips"]]])
    motion = pipe.decode_motion(motion_codes, height, width)  # [1, N, 2, F, h, w]
    originals = None
    if keyframe == "original":
        data = pipe.processor.video_processor.extract(video, **({} if max_clips is None else {"max_clips": max_clips}))
        originals = [PIL.Image.fromarray(k) for k in data.keyframes]
    steps_kw = {} if steps is None else {"num_inference_steps": steps}
    keyframe_pipe, video_pipe = pipe.keyframe_pipeline, pipe.video_pipeline
    frames, keyframes = [], []
    for i, clip in enumerate(tqdm(tokens["clips"], desc="reconstructing clips")):
        if originals is None:
            image = keyframe_pipe(
                codes=[torch.tensor(clip["keyframe_ids"])], height=pipe.config.keyframe_height,
                width=pipe.config.keyframe_width, generator=generator, output_type="pil", **steps_kw,
            ).images[0]
        else:
            image = originals[i]
        keyframes.append(torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1))
        clip_frames = video_pipe(
            image.convert("RGB").resize((width, height), PIL.Image.BICUBIC), motion=motion[:, i], height=height,
            width=width, generator=generator, output_type="pt", **steps_kw,
        ).frames[0]
        frames.append(clip_frames.float().cpu())
    return torch.cat(frames), keyframes, tokens


def _run_reconstruct(args) -> int:
    from .media_output import check_video_path

    check_video_path(args.out)
    _existing_file(args.video, "--video")
    pipe = _load_video_pipeline(args)
    frames, keyframes, tokens = reconstruct_video(
        pipe, args.video, max_clips=args.max_clips, steps=args.steps, keyframe=args.keyframe,
        generator=_generator(args.seed),
    )
    import torch

    per_clip = frames.shape[0] // tokens["num_clips"]
    starts = list(range(0, frames.shape[0], per_clip))
    # every keyframe of one run has one size (the keyframe detokenizer's, or the source video's)
    video, sheet = _write_outputs(frames, torch.stack(keyframes), starts, args.out, args.fps)
    clips = tokens["num_clips"]
    print(f"{clips} clip{'s' * (clips != 1)} -> {frames.shape[0]} frames -> {video}; contact sheet -> {sheet}")
    return 0


def _build_reconstruct(subparsers) -> None:
    parser = subparsers.add_parser("reconstruct", help="video -> tokens -> detokenized video")
    parser.add_argument("--video", required=True, help="input video file")
    parser.add_argument("--out", required=True, help="output video: .mp4, .gif or .png (animated)")
    parser.add_argument("--max-clips", type=int, default=None, help="most clips (default: the processor's 16)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps of both detokenizers")
    parser.add_argument("--keyframe", choices=("tokens", "original"), default="tokens",
                        help="tokens: redraw keyframes from visual tokens; original: use the source keyframes")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--fps", type=float, default=6, help="frame rate of the written video")
    _add_model_options(parser)
    parser.set_defaults(handler=_run_reconstruct)


# ------------------------------------------------------------------------------------------------ export-for-hub
def _run_export_for_hub(args) -> int:
    from .hub_export import export_for_hub

    for component, files in export_for_hub(args.folder).items():
        print(f"{component}: {len(files)} code files, auto_map written")
    return 0


def _build_export_for_hub(subparsers) -> None:
    parser = subparsers.add_parser(
        "export-for-hub", help="add remote code + auto_map so the folder loads with trust_remote_code=True"
    )
    parser.add_argument("folder", help="a saved or converted Video-LaVIT folder (edited in place, weights untouched)")
    parser.set_defaults(handler=_run_export_for_hub)


MODEL_SUBCOMMANDS: dict[str, Callable] = {
    "generate": _build_generate,
    "understand": _build_understand,
    "reconstruct": _build_reconstruct,
    "tokenize": _build_tokenize,
    "export-for-hub": _build_export_for_hub,
}

__all__ = ["MODEL_SUBCOMMANDS", "answer_question", "reconstruct_video", "resolve_model", "tokenize_video"]
