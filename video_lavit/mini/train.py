# Copyright 2026 The Video-LaVIT reimplementation authors. Apache-2.0.
"""Train the miniature Video-LaVIT on synthetic videos, on the CPU, with fixed seeds.

    python -m video_lavit.mini.train --out DIR [--scale 1.0] [--jobs 2]

Stages (each trained with `transformers.Trainer`; results are cached under ``DIR/stages`` so a rerun resumes):

0. data: synthetic train videos (h264 and MPEG-4 sources) -> the processor's keyframes (32 px) and motion tensors
   of every clip, 64-px targets rendered from the scenes whose one clip starts at frame 0 (keyframe and 24 frames at
   the clip's 6 fps);
1. keyframe-encoder pre-training on freshly rendered stills (stand-in for CLIP: colour / shape / per-patch
   coverage);
2. motion tokenizer (MSE + EMA codebook with dead-code restarts);
3. keyframe tokenizer (token merger + VQ reconstructing the standardised encoder features);
4. language model on joint sequences, both directions (caption -> keyframe + motion tokens; video + question ->
   answer), plus text -> video pairs from extra videos rendered while the second process trains stage 6; the ViT
   and merger stay frozen, `feature_projection` (vit_proj) trains with the LLM;
5. keyframe detokenizer (AutoencoderKL, then keyframe decoder + UNet2DConditionModel with the DDPM loss, on the
   training keyframes plus freshly rendered scenes);
6. video detokenizer (temporal-decoder VAE, then motion encoder + spatio-temporal UNet with the EDM loss).

With ``--jobs 2`` (the default) stage 6 runs in a second process, beside stages 4-5.
``DIR/model`` is the Hugging Face folder (`VideoLavitPipeline` layout + understanding model at its root);
``DIR/train_log.json`` records the losses and the time of every stage. `--scale` multiplies every step count.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np
import torch

from .data import COLOURS, SHAPES, TRAIN_CODECS, SceneSpec, build_dataset, question_answer, render_frames
from .modeling import (
    IMAGE_SIZE,
    KEYFRAME_SIZE,
    PATCH_SIZE,
    VIDEO_SIZE,
    build_keyframe_components,
    build_language_model,
    build_processor,
    build_video_components,
    keep_all_patches,
)
from .stages import (
    LanguageModelTraining,
    MotionTokenizerTraining,
    TensorRows,
    VisualEncoderPretraining,
    VisualQuantizerTraining,
    run_trainer,
    stack_collate,
)

SEED = 0
TRAIN_VIDEOS = 1600
TRAIN_DATA_SEED = 1
QUESTIONS_PER_VIDEO = 2
TEXT_TO_VIDEO_REPEATS = 3
LANGUAGE_MODEL_STEPS = 3600
STAGES = ("language_model", "keyframe", "video")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def understanding_prompt(question: str) -> str:
    from ..processing.chat_template import DEFAULT_SYSTEM_PROMPT

    return f"{DEFAULT_SYSTEM_PROMPT} USER: <video>\n{question} ASSISTANT:"


def answer_text(answer: str) -> str:
    """The answer as the SFT conversation writes it (terminated by the literal backslash-n separator)."""
    return f"{answer} \\n"


def coverage(frames: np.ndarray, background: int, patch: int) -> np.ndarray:
    """Per-patch fraction of pixels covered by the shape, `[N]` in raster order."""
    mask = (np.abs(frames.astype(np.int16) - background).max(axis=-1) > 25).astype(np.float32)
    h, w = mask.shape
    return mask.reshape(h // patch, patch, w // patch, patch).mean(axis=(1, 3)).reshape(-1)


# ------------------------------------------------------------------------------------------------ stage 0
def prepare_data(processor, cache: Path, num_videos: int) -> dict:
    """Run the processor over the training videos (cached in ``cache/data.pt``).

    Returns ``pixel_values`` ``[C, 3, 32, 32]`` and ``motion_vectors`` ``[C, 2, 24, 8, 8]`` for every clip the
    processor cuts (``clips`` ``[N]`` per video, in order), the token ids of the prompts / answers / captions, and,
    for the ``F`` videos whose single clip starts at frame 0 (``full`` ``[N]`` bool; the others' clips run past
    the video's end), the 64-px targets rendered from the scene: ``keyframe`` ``[F, 64, 64, 3]`` and ``clip``
    ``[F, 24, 64, 64, 3]`` (the clip's 24 frames at 6 fps)."""
    path = cache / "data.pt"
    if path.is_file():
        return torch.load(path, weights_only=False)
    from tqdm.auto import tqdm

    dataset = build_dataset(num_videos, seed=TRAIN_DATA_SEED, codec=TRAIN_CODECS)
    keys = ("pixel_values", "motion_vectors", "clips", "full", "prompt_ids", "answer_ids", "caption_ids", "keyframe",
            "clip")
    data = {k: [] for k in keys}
    tokenizer = processor.tokenizer
    for index, row in enumerate(tqdm(dataset, desc="preparing videos")):
        spec = SceneSpec(**row["scene"])
        out = processor.video_processor([row["video"]], return_tensors="pt")
        data["pixel_values"].append(out["pixel_values"])
        data["motion_vectors"].append(out["motion_vectors"])
        data["clips"].append(len(out["motion_vectors"]))
        full = one_clip_from_frame_zero(out)
        data["full"].append(full)
        for q in range(QUESTIONS_PER_VIDEO):
            question, answer = question_answer(spec, index + 3 * q)
            data["prompt_ids"].append(_prompt_ids(processor, understanding_prompt(question)))
            answer_ids = tokenizer(answer_text(answer), add_special_tokens=False)["input_ids"]
            data["answer_ids"].append(torch.tensor(answer_ids))
        data["caption_ids"].append(torch.tensor(tokenizer(row["caption"], add_special_tokens=False)["input_ids"]))
        if full:
            clip = render_frames(spec, np.arange(24) / 6.0, VIDEO_SIZE, VIDEO_SIZE)
            data["clip"].append(torch.from_numpy(clip))
            data["keyframe"].append(torch.from_numpy(render_frames(spec, [0.0], KEYFRAME_SIZE, KEYFRAME_SIZE)[0]))
    data = {k: (torch.cat(v) if k in ("pixel_values", "motion_vectors") else torch.stack(v) if k in ("clip", "keyframe")
                else torch.tensor(v) if k in ("clips", "full") else v) for k, v in data.items()}
    torch.save(data, path)
    return data


TEXT_TO_VIDEO_VIDEOS = 3000
TEXT_TO_VIDEO_DATA_SEED = 4


def prepare_text_to_video_data(processor, cache: Path, num_videos: int) -> dict:
    """More text -> video pairs for the LLM (cached in ``cache/text_to_video.pt``): h264 videos of fresh scenes,
    the ones whose single clip starts at frame 0, as ``pixel_values`` ``[N, 3, 32, 32]``, ``motion_vectors``
    ``[N, 2, 24, 8, 8]`` and ``caption_ids``. The 940 such clips of the main set are too few for the LLM to learn
    where the motion belongs given the keyframe."""
    path = cache / "text_to_video.pt"
    if path.is_file():
        return torch.load(path, weights_only=False)
    from tqdm.auto import tqdm

    data = {"pixel_values": [], "motion_vectors": [], "caption_ids": []}
    dataset = build_dataset(num_videos, seed=TEXT_TO_VIDEO_DATA_SEED, codec="libx264")
    for row in tqdm(dataset, desc="preparing text -> video pairs"):
        out = processor.video_processor([row["video"]], return_tensors="pt")
        if not one_clip_from_frame_zero(out):
            continue
        data["pixel_values"].append(out["pixel_values"])
        data["motion_vectors"].append(out["motion_vectors"])
        caption = processor.tokenizer(row["caption"], add_special_tokens=False)["input_ids"]
        data["caption_ids"].append(torch.tensor(caption))
    data = {k: torch.cat(v) if k != "caption_ids" else v for k, v in data.items()}
    torch.save(data, path)
    return data


def one_clip_from_frame_zero(processed: dict) -> bool:
    """Whether the video processor cut the video into a single clip starting at frame 0 (the videos whose clip the
    scene can re-render as a target, and whose caption describes exactly that clip)."""
    return len(processed["motion_vectors"]) == 1 and int(processed["keyframe_indices"][0]) == 0


def first_clip_rows(data: dict) -> torch.Tensor:
    """Row of each video's first clip in ``data["pixel_values"]`` / ``data["motion_vectors"]``, ``[N]``."""
    return torch.cumsum(data["clips"], 0) - data["clips"]


def _prompt_ids(processor, prompt: str) -> torch.Tensor:
    """Prompt ids with the video placeholder, without running the video processor (the same split-and-tokenise
    rule the processor applies: chunks tokenised alone, BOS only on the first)."""
    tokenizer = processor.tokenizer
    before, after = prompt.split(processor.video_token)
    first = tokenizer(before, add_special_tokens=True)["input_ids"]
    second = tokenizer(after, add_special_tokens=False)["input_ids"]
    return torch.tensor(first + [processor.video_placeholder_id] + second)


# ------------------------------------------------------------------------------------------------ stages 1-4
PRETRAIN_KEYFRAMES = 8000
PRETRAIN_DATA_SEED = 2


def render_pretraining_keyframes(processor, num: int, seed: int) -> dict:
    """Still frames of fresh random scenes (at a random time, at the scene's own resolution) through the image
    processor, with their colour / shape labels and per-patch coverage: the stand-in for CLIP's image-text data,
    far more scenes than the video set (360 keyframes are too few for shape to generalise)."""
    from PIL import Image

    from .data import random_scene

    rng = np.random.default_rng(seed)
    images, colour, shape, cover = [], [], [], []
    for _ in range(num):
        spec = random_scene(rng)
        t = float(rng.uniform(0.0, spec.seconds))
        images.append(Image.fromarray(render_frames(spec, [t])[0]))
        colour.append(list(COLOURS).index(spec.colour))
        shape.append(SHAPES.index(spec.shape))
        small = render_frames(spec, [t], IMAGE_SIZE, IMAGE_SIZE)[0]
        cover.append(torch.from_numpy(coverage(small, spec.background, PATCH_SIZE)))
    pixel_values = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    return {"pixel_values": pixel_values, "colour": torch.tensor(colour), "shape": torch.tensor(shape),
            "cover": torch.stack(cover)}


DETOKENIZER_KEYFRAMES = 6000
DETOKENIZER_DATA_SEED = 3


def render_keyframe_pairs(processor, model, num: int, seed: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """First frames of fresh random scenes as keyframe-detokenizer training pairs: their visual codes (the scene at
    its own resolution through the image processor and the trained keyframe tokenizer), ``num`` tensors ``[16]``,
    and the 64-px target ``[num, 64, 64, 3]`` uint8."""
    from PIL import Image

    from .data import random_scene

    rng = np.random.default_rng(seed)
    specs = [random_scene(rng) for _ in range(num)]
    images = [Image.fromarray(render_frames(spec, [0.0])[0]) for spec in specs]
    pixel_values = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    targets = np.stack([render_frames(spec, [0.0], KEYFRAME_SIZE, KEYFRAME_SIZE)[0] for spec in specs])
    return tokenize_keyframes(model, pixel_values), torch.from_numpy(targets)


def train_visual_encoder(model, processor, work: Path, scale: float, log: dict) -> None:
    tok = model.model.visual_tokenizer
    module = VisualEncoderPretraining(tok.vision_model, tok.config.hidden_size, len(COLOURS), len(SHAPES))
    tok.vision_model.requires_grad_(True)
    rows = TensorRows(render_pretraining_keyframes(processor, PRETRAIN_KEYFRAMES, PRETRAIN_DATA_SEED))
    log["visual_encoder"] = run_trainer(module, rows, stack_collate, steps=int(4000 * scale), batch_size=64,
                                        learning_rate=1e-3, seed=SEED, output_dir=str(work / "visual_encoder"),
                                        warmup_steps=300)
    tok.vision_model.requires_grad_(False)


def train_motion_tokenizer(model, data, work: Path, scale: float, log: dict) -> None:
    tok = model.model.motion_tokenizer
    tok.train()
    rows = TensorRows({"motion_vectors": data["motion_vectors"]})
    log["motion_tokenizer"] = run_trainer(MotionTokenizerTraining(tok), rows, stack_collate, steps=int(400 * scale),
                                          batch_size=32, learning_rate=2e-3, seed=SEED,
                                          output_dir=str(work / "motion_tokenizer"))
    tok.eval()


def train_visual_quantizer(model, data, work: Path, scale: float, log: dict) -> None:
    tok = model.model.visual_tokenizer
    with torch.no_grad():
        feats = tok.get_encoder_features(data["pixel_values"][:256])
    module = VisualQuantizerTraining(tok, feats.mean(dim=(0, 1)), feats.std(dim=(0, 1)) + 1e-4)
    # start the codebook on projected features of real keyframes, so no code starts dead
    with torch.no_grad():
        merged = tok.merge_tokens(feats, torch.ones(feats.shape[:2]))
        query = torch.nn.functional.normalize(tok.code_projection(merged), dim=-1).reshape(-1, tok.config.code_dim)
        pick = torch.randperm(query.shape[0], generator=torch.Generator().manual_seed(SEED))[: tok.config.codebook_size]
        tok.quantizer.codebook.weight.copy_(query[pick] + 0.01 * torch.randn_like(query[pick]))
    rows = TensorRows({"pixel_values": data["pixel_values"]})
    log["visual_quantizer"] = run_trainer(module, rows, stack_collate, steps=int(800 * scale), batch_size=32,
                                          learning_rate=2e-3, seed=SEED, output_dir=str(work / "visual_quantizer"))
    keep_all_patches(tok)


@torch.no_grad()
def tokenize_keyframes(model, pixel_values: torch.Tensor) -> list[torch.Tensor]:
    tok = model.model.visual_tokenizer.eval()
    codes = []
    for start in range(0, len(pixel_values), 64):
        codes += tok.tokenize(pixel_values[start : start + 64], deterministic=True).token_ids
    return codes


@torch.no_grad()
def tokenize_motion(model, motion_vectors: torch.Tensor) -> torch.Tensor:
    tok = model.model.motion_tokenizer.eval()
    return torch.cat([tok.encode(motion_vectors[s : s + 64]) for s in range(0, len(motion_vectors), 64)])


def train_language_model(model, data, keyframe_codes, motion_codes, work: Path, scale: float, log: dict,
                         extra: dict | None = None) -> None:
    """``extra``: more text -> video pairs (`prepare_text_to_video_data`), with their ``keyframe_codes`` /
    ``motion_codes``, each given once (and every fourth also without text)."""
    from ..training import VideoLavitDataCollator

    features = []

    def add_text_to_video(index: int, caption, keyframe, motion, copies: int) -> None:
        """`copies` samples caption -> keyframe + motion; every fourth pair (by `index`) also without text, the
        CFG's unconditional branch."""
        texts = [caption] * copies + ([torch.zeros(0, dtype=torch.long)] if index % 4 == 0 else [])
        for text in texts:
            features.append({"text_ids": text, "keyframe_codes": [keyframe], "motion_codes": motion})

    if extra is not None:
        for i, caption in enumerate(extra["caption_ids"]):
            add_text_to_video(i, caption, extra["keyframe_codes"][i], extra["motion_codes"][i : i + 1], copies=1)
    firsts = first_clip_rows(data)
    for i, (first, count) in enumerate(zip(firsts.tolist(), data["clips"].tolist())):
        clips = slice(first, first + count)
        for q in range(QUESTIONS_PER_VIDEO):
            j = i * QUESTIONS_PER_VIDEO + q
            features.append({
                "prompt_ids": data["prompt_ids"][j], "answer_ids": data["answer_ids"][j],
                "pixel_values": data["pixel_values"][clips], "motion_token_ids": motion_codes[clips],
                "clips_per_video": torch.tensor([count]),
            })
        if not data["full"][i]:
            continue
        # text -> video (one clip from frame 0), repeated: a video gives one such sample but two questions, and
        # with a single copy the generated motion went the captioned way less often
        add_text_to_video(i, data["caption_ids"][i], keyframe_codes[first], motion_codes[first : first + 1],
                          copies=TEXT_TO_VIDEO_REPEATS)

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(features)

        def __getitem__(self, index):
            return features[index]

    collator = VideoLavitDataCollator(model.config, append_eos_to_answer=True)
    tok = model.model.visual_tokenizer
    tok.requires_grad_(False)
    tok.feature_projection.requires_grad_(True)
    model.model.motion_tokenizer.requires_grad_(False)
    model.train()
    log["language_model"] = run_trainer(LanguageModelTraining(model), Rows(), collator,
                                        steps=int(LANGUAGE_MODEL_STEPS * scale), batch_size=16, learning_rate=3e-3,
                                        weight_decay=0.01, seed=SEED, output_dir=str(work / "language_model"),
                                        warmup_steps=50)
    model.eval()


# ------------------------------------------------------------------------------------------------ assembly
def assemble(model, processor, keyframe: dict, video: dict, out: Path) -> Path:
    """Write the Hugging Face folder: the `VideoLavitPipeline` layout, plus the understanding model and the
    processor at the root (what `AutoModel*` / `AutoProcessor.from_pretrained(folder)` read)."""
    from ..pipelines.pipeline_video_lavit import VideoLavitPipeline

    pipe = VideoLavitPipeline(
        language_model=model, processor=processor, **keyframe, **video,
        keyframe_height=KEYFRAME_SIZE, keyframe_width=KEYFRAME_SIZE, video_height=VIDEO_SIZE, video_width=VIDEO_SIZE,
    )
    pipe.save_pretrained(out)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    write_call_defaults(out)
    return out


def write_call_defaults(out: Path) -> Path:
    """`pipeline_call_defaults.json`: the miniature's token counts and schedules, which `video-lavit generate` and the
    demo use instead of the released defaults (its keyframe decoder takes 16 codes, fewer than min_new_tokens=20)."""
    import json

    from ..cli_model import CALL_DEFAULTS_FILE
    from .evaluate import GENERATION_KWARGS

    path = Path(out) / CALL_DEFAULTS_FILE
    path.write_text(json.dumps(GENERATION_KWARGS, indent=2) + "\n", encoding="utf-8")
    return path


def _cached_components(folder: Path, build) -> dict:
    """Components of a detokenizer: loaded from `folder` when a previous run trained them, else fresh."""
    components = build()
    if not folder.is_dir():
        return components
    loaded = {}
    for name, component in components.items():
        loaded[name] = type(component).from_pretrained(folder / name)
    return {k: (v.eval() if hasattr(v, "eval") else v) for k, v in loaded.items()}


def _save_components(components: dict, folder: Path) -> None:
    for name, component in components.items():
        component.save_pretrained(folder / name)


VIDEO_JOB_LOG = "train_log.video.json"


def _start_video_job(args, out: Path):
    """The video detokenizer stage in a second process (one thread): it only needs the trained motion tokenizer,
    so it runs beside the language model and keyframe stages. Seeded like the sequential run."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "video_lavit.mini.train", "--out", str(out), "--stages", "video",
               "--scale", str(args.scale), "--videos", str(args.videos), "--jobs", "1", "--log-file", VIDEO_JOB_LOG,
               "--no-assemble"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    print("[mini] video detokenizer: training in a second process", flush=True)
    return subprocess.Popen(command, env=env)


def _finish_video_job(job, out: Path, log: dict) -> None:
    code = job.wait()
    if code != 0:
        raise RuntimeError(f"the video detokenizer process failed with exit code {code} (its output is above)")
    child = json.loads((out / VIDEO_JOB_LOG).read_text())
    for key in ("video_vae", "video_unet"):
        log[key] = child[key]
    log["times"]["video_detokenizer"] = child["times"]["video_detokenizer"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (DIR/model is the trained model)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every stage's step count")
    parser.add_argument("--videos", type=int, default=TRAIN_VIDEOS, help="number of synthetic training videos")
    parser.add_argument("--text-to-video-videos", type=int, default=TEXT_TO_VIDEO_VIDEOS, help="videos rendered "
                        "for extra text -> video pairs of the language model (0: none)")
    parser.add_argument("--stages", default="all", help=f"comma list of stages to train, from {STAGES}; stages "
                        "already trained under DIR/stages are loaded instead")
    parser.add_argument("--jobs", type=int, default=2, help="with 2, the video detokenizer trains in a second "
                        "process (one thread each) while this one trains the language model and the keyframe "
                        "detokenizer; 1 trains everything here, one stage after the other")
    parser.add_argument("--log-file", default="train_log.json", help=argparse.SUPPRESS)
    # the second process of --jobs 2 trains its stage only; the first one writes the model folder
    parser.add_argument("--no-assemble", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.jobs not in (1, 2):
        raise ValueError(f"--jobs must be 1 or 2, got {args.jobs}")

    out = Path(args.out)
    work = out / "stages"
    work.mkdir(parents=True, exist_ok=True)
    # two threads (the 2-core budget) unless OMP_NUM_THREADS says otherwise; the --jobs 2 child runs with one
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    seed_everything(SEED)
    log_path = out / args.log_file
    # a resumed run adds its stages to the earlier run's record
    log: dict = json.loads(log_path.read_text()) if log_path.is_file() else {"times": {}}
    clock = start = time.perf_counter()

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        log["times"][name] = round(now - clock, 1)
        clock = now
        print(f"[mini] {name}: {log['times'][name]:.1f} s", flush=True)

    processor = build_processor()
    data = prepare_data(processor, work, args.videos)
    lap("data")
    stages = STAGES if args.stages == "all" else tuple(args.stages.split(","))
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}; choose from {STAGES}")

    from ..modeling.modeling_video_lavit import VideoLavitForConditionalGeneration

    tokenizers_dir, llm_dir = work / "tokenizers_trained", work / "language_model_trained"
    if llm_dir.is_dir():
        model = VideoLavitForConditionalGeneration.from_pretrained(llm_dir).eval()
    elif tokenizers_dir.is_dir():
        model = VideoLavitForConditionalGeneration.from_pretrained(tokenizers_dir).eval()
    else:
        seed_everything(SEED)
        model = build_language_model(len(processor.tokenizer))
        train_visual_encoder(model, processor, work, args.scale, log)
        lap("visual_encoder")
        train_motion_tokenizer(model, data, work, args.scale, log)
        lap("motion_tokenizer")
        train_visual_quantizer(model, data, work, args.scale, log)
        lap("visual_quantizer")
        model.eval().save_pretrained(tokenizers_dir)
    keyframe_codes = tokenize_keyframes(model, data["pixel_values"])
    motion_codes = tokenize_motion(model, data["motion_vectors"])
    log["visual_codes_used"] = int(torch.cat(keyframe_codes).unique().numel())
    log["motion_codes_used"] = int(motion_codes.unique().numel())
    # the detokenizers learn from the videos whose one clip starts at frame 0 (their targets are rendered)
    firsts = first_clip_rows(data)[data["full"]]
    generation_keyframe_codes = [keyframe_codes[k] for k in firsts.tolist()]
    generation_motion_codes = motion_codes[firsts]
    video_job = None
    if args.jobs == 2 and "video" in stages and not (work / "video_trained").is_dir():
        video_job = _start_video_job(args, out)
        torch.set_num_threads(1)
    if "language_model" in stages and not llm_dir.is_dir():
        extra = None
        if args.text_to_video_videos:
            extra = prepare_text_to_video_data(processor, work, args.text_to_video_videos)
            extra["keyframe_codes"] = tokenize_keyframes(model, extra["pixel_values"])
            extra["motion_codes"] = tokenize_motion(model, extra["motion_vectors"])
            lap("text_to_video_data")
        train_language_model(model, data, keyframe_codes, motion_codes, work, args.scale, log, extra)
        model.eval().save_pretrained(llm_dir)
        lap("language_model")

    def detokenizer(stage: str, build, train, inputs) -> dict:
        """The stage's components: loaded when a previous run trained them, else built and, if asked, trained on
        `inputs()` (`(data, codes)`, only computed when the stage trains)."""
        folder = work / f"{stage}_trained"
        # seeded before building, so a resumed run initialises the components as an uninterrupted one
        seed_everything(SEED)
        components = _cached_components(folder, build)
        if stage in stages and not folder.is_dir():
            stage_data, codes = inputs()
            seed_everything(SEED)
            train(components, model, stage_data, codes, work, args.scale, log, SEED)
            _save_components(components, folder)
            lap(f"{stage}_detokenizer")
        return components

    from .detokenizers import train_keyframe_detokenizer, train_video_detokenizer

    def keyframe_inputs():
        # the training videos' keyframes plus fresh rendered scenes: the UNet needs far more than a few hundred
        # (code, image) pairs to learn the shape's colour and look from the codes (where the shape is comes from
        # the code map: modeling.build_keyframe_components)
        codes, frames = render_keyframe_pairs(processor, model, DETOKENIZER_KEYFRAMES, DETOKENIZER_DATA_SEED)
        return {"keyframe": torch.cat([data["keyframe"], frames])}, generation_keyframe_codes + codes

    keyframe = detokenizer("keyframe", build_keyframe_components, train_keyframe_detokenizer, keyframe_inputs)
    if video_job is not None:
        _finish_video_job(video_job, out, log)
        clock = time.perf_counter()  # the wait is not a stage of its own (wall_seconds has it)
    video = detokenizer("video", build_video_components, train_video_detokenizer,
                        lambda: (data, generation_motion_codes))
    if args.no_assemble or not llm_dir.is_dir():
        log_path.write_text(json.dumps(log, indent=1))
        if not llm_dir.is_dir():
            print("[mini] the language model is not trained yet: no model folder written", flush=True)
        return log

    assemble(model.eval(), processor, keyframe, video, out / "model")
    lap("save")
    log["total_seconds"] = round(sum(log["times"].values()), 1)
    log["wall_seconds"] = round(time.perf_counter() - start, 1)
    log_path.write_text(json.dumps(log, indent=1))
    print(f"[mini] stages {log['total_seconds']:.0f} s, wall clock {log['wall_seconds']:.0f} s; model in "
          f"{out / 'model'}", flush=True)
    return log


if __name__ == "__main__":
    main()
