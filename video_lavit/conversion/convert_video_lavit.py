"""Convert a whole released Video-LaVIT folder (`rain1011/Video-LaVIT-v1` layout) into one Hugging Face folder.

Input (original layout; see spec 02 §1.3, 01 "checkpoint files", 03 §4.1)::

    language_model_sft/    understanding LLM: config.json, pytorch_model-*.bin (+ index), tokenizer files;
                           holds the keyframe tokenizer (`model.visual_tokenizer.*`) and the motion tokenizer
    language_model/        generation LLM (plain Llama shards), config.json, tokenizer files
    visual_tokenizer/      eva_vitg_psz14.bin, tokenizer_encoder.bin, highres_tokenizer_decoder.bin
    motion_tokenizer.bin
    image_detokenizer/     unet/, vae/, scheduler/ (diffusers folders, .bin weights)
    video_detokenizer/     unet/ (config.json + diffusion_pytorch_model.bin = 3D UNet + motion encoder), vae/,
                           scheduler/ (optional: SVD's EDM settings otherwise)
    video_3d_unet.bin      used instead of video_detokenizer/unet/diffusion_pytorch_model.bin when that is absent

Output (one folder, three entry points)::

    config.json, model-0000i-of-0000n.safetensors, model.safetensors.index.json, generation_config.json
        -> AutoModelForCausalLM / AutoModelForImageTextToText / AutoModel.from_pretrained(OUT): the
           understanding model (weights of language_model_sft/, both tokenizers inside)
    processor_config.json, tokenizer.json, tokenizer_config.json, chat_template.jinja
        -> AutoProcessor.from_pretrained(OUT) (tokenizer of language_model_sft/, v1 chat template)
    model_index.json + language_model/ processor/ keyframe_decoder/ keyframe_unet/ keyframe_vae/
    keyframe_scheduler/ video_unet/ motion_encoder/ video_vae/ video_scheduler/
        -> VideoLavitPipeline.from_pretrained(OUT): text/image-to-video with the generation LLM (weights of
           language_model/, keyframe tokenizer from visual_tokenizer/, motion tokenizer from motion_tokenizer.bin);
           AutoModelForCausalLM.from_pretrained(OUT, subfolder="language_model") loads that LLM alone.

The understanding and generation LLMs are different fine-tunes, so both are kept. `--parts` converts only one side.

The per-component key mappings live in the component converters (`convert_language_model`,
`convert_visual_tokenizer`, `convert_motion_tokenizer`, `convert_keyframe_decoder`, `convert_video_detokenizer`);
this module only drives them. The LLMs are streamed: one source shard at a time (memory-mapped when the `.bin` is a
zip archive), written into safetensors shards of at most `--max-shard-size`, so at most one source shard plus one
output shard are in memory. Every source file is read once to check the key mapping before anything is written;
unknown, duplicated, missing or mis-shaped weights raise `ValueError` naming the file and the keys, missing files
raise `FileNotFoundError` listing all of them. The result is assembled in `OUT.partial` and renamed to `OUT` only
when complete.

Usage::

    python -m video_lavit.conversion.convert_video_lavit --original Video-LaVIT-v1 --out video-lavit-hf
        [--dtype bf16|fp16|fp32] [--max-shard-size 5GB] [--parts understanding generation] [--remote-code]
"""

from __future__ import annotations

import argparse
import inspect
import json
import shutil
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from . import convert_language_model as llm_conversion
from ._utils import load_weights_file
from .convert_language_model import MOTION_PREFIX, VISUAL_PREFIX, convert_language_model_state_dict
from .convert_keyframe_decoder import convert_keyframe_pipeline
from .convert_motion_tokenizer import convert_motion_tokenizer_state_dict
from .convert_video_detokenizer import convert_video_detokenizer

PARTS = ("understanding", "generation")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
UNDERSTANDING_DIR = "language_model_sft"
GENERATION_DIR = "language_model"
VIDEO_UNET_WEIGHTS = ("video_detokenizer/unet/diffusion_pytorch_model.bin", "video_3d_unet.bin")
# component-converter subfolder -> subfolder of the VideoLavitPipeline
KEYFRAME_RENAMES = {"keyframe_decoder": "keyframe_decoder", "unet": "keyframe_unet", "vae": "keyframe_vae",
                    "scheduler": "keyframe_scheduler"}
VIDEO_RENAMES = {"unet": "video_unet", "motion_encoder": "motion_encoder", "vae": "video_vae",
                 "scheduler": "video_scheduler"}
_DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.bin", "diffusion_pytorch_model.safetensors")
_TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json")


# ------------------------------------------------------------------------------------------------ folder checks
def _llm_files_missing(folder: Path) -> list[str]:
    missing = [str(folder / "config.json")] if not (folder / "config.json").is_file() else []
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        missing.append(f"{folder}/tokenizer.model (or tokenizer.json)")
    try:
        llm_shard_files(folder)
    except FileNotFoundError as error:
        missing.append(str(error))
    return missing


def _diffusers_folder_missing(folder: Path, weights: bool = True) -> list[str]:
    config = "scheduler_config.json" if folder.name == "scheduler" else "config.json"
    missing = [str(folder / config)] if not (folder / config).is_file() else []
    if weights and not any((folder / name).is_file() for name in _DIFFUSERS_WEIGHTS):
        missing.append(f"{folder}/diffusion_pytorch_model.bin (or .safetensors)")
    return missing


def video_unet_weights(root: str | Path) -> Path | None:
    """The 3D UNet + motion encoder file of the release: `video_detokenizer/unet/diffusion_pytorch_model.bin`,
    else `video_3d_unet.bin` (the same tensors); `None` when neither exists."""
    for name in VIDEO_UNET_WEIGHTS:
        if (Path(root) / name).is_file():
            return Path(root) / name
    return None


def check_release_folder(root: str | Path, parts: tuple[str, ...] = PARTS) -> None:
    """Raise `FileNotFoundError` listing every file the conversion of `parts` needs and `root` lacks."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"the released checkpoint folder {root} does not exist")
    missing = []
    # vit_proj of the generation LLM comes from the SFT shards, so both parts read language_model_sft/
    missing += _llm_files_missing(root / UNDERSTANDING_DIR)
    if "generation" in parts:
        missing += _llm_files_missing(root / GENERATION_DIR)
        for name in ("visual_tokenizer/eva_vitg_psz14.bin", "visual_tokenizer/tokenizer_encoder.bin",
                     "visual_tokenizer/highres_tokenizer_decoder.bin", "motion_tokenizer.bin"):
            if not (root / name).is_file():
                missing.append(str(root / name))
        for name in ("unet", "vae", "scheduler"):
            missing += _diffusers_folder_missing(root / "image_detokenizer" / name, weights=name != "scheduler")
        missing += _diffusers_folder_missing(root / "video_detokenizer" / "vae")
        if video_unet_weights(root) is None:
            missing.append(" or ".join(str(root / name) for name in VIDEO_UNET_WEIGHTS))
    if missing:
        raise FileNotFoundError(f"{root} is not a complete Video-LaVIT release; missing:\n  " + "\n  ".join(missing))


# ------------------------------------------------------------------------------------------------ reading weights
def llm_shard_files(folder: str | Path) -> list[Path]:
    """The weight files of a transformers checkpoint folder, sorted; every file its index names must exist."""
    folder = Path(folder)
    for index_name in ("pytorch_model.bin.index.json", "model.safetensors.index.json"):
        index = folder / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            absent = [s for s in shards if not (folder / s).is_file()]
            if absent:
                raise FileNotFoundError(f"{index} names shard(s) that are not in {folder}: {absent}")
            return [folder / s for s in shards]
    files = sorted(folder.glob("pytorch_model*.bin")) or sorted(folder.glob("model*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}/pytorch_model*.bin (or model*.safetensors) shards")
    return files


def _converted(label: str, convert: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Run a component converter, prefixing its error with the file it read."""
    try:
        return convert()
    except ValueError as error:
        raise ValueError(f"{label}: {error}") from error


def iter_language_model(root: str | Path, variant: str) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
    """(source label, tensors with our `VideoLavitForConditionalGeneration` names), one source file at a time.

    `understanding`: every `language_model_sft/` shard (Llama and keyframe-tokenizer keys per shard; the motion
    tokenizer, whose converter needs all its keys at once, after the last shard). `generation`: every
    `language_model/` shard (Llama keys only), then the keyframe tokenizer of `visual_tokenizer/` (+ `vit_proj`)
    and `motion_tokenizer.bin`.
    """
    root = Path(root)
    if variant == "understanding":
        motion = {}
        for shard in llm_shard_files(root / UNDERSTANDING_DIR):
            state_dict = load_weights_file(shard)
            for key in [k for k in state_dict if k.startswith(MOTION_PREFIX)]:
                # a copy, so that the shard's memory map is released once its other tensors are written
                motion[key] = state_dict.pop(key).clone()
            yield str(shard), _converted(str(shard), lambda: convert_language_model_state_dict(state_dict))
            del state_dict  # unmap this shard before the next is mapped
        label = f"{root / UNDERSTANDING_DIR} ({MOTION_PREFIX}*)"
        converted = _converted(label, lambda: convert_motion_tokenizer_state_dict(motion, prefix=MOTION_PREFIX))
        yield label, {MOTION_PREFIX + k: v for k, v in converted.items()}
    elif variant == "generation":
        from .convert_visual_tokenizer import convert_checkpoint as convert_visual_checkpoint

        for shard in llm_shard_files(root / GENERATION_DIR):
            state_dict = load_weights_file(shard)
            foreign = sorted(k for k in state_dict if k.startswith((VISUAL_PREFIX, MOTION_PREFIX)))
            if foreign:
                raise ValueError(f"{shard}: the generation LLM should hold Llama weights only; got {foreign[:20]}")
            yield str(shard), _converted(str(shard), lambda: convert_language_model_state_dict(state_dict))
            del state_dict
        label = f"{root / 'visual_tokenizer'} (eva_vitg_psz14.bin, tokenizer_encoder.bin, vit_proj)"
        visual = _converted(label, lambda: convert_visual_checkpoint(root, merger_source="tokenizer_encoder"))
        yield label, {VISUAL_PREFIX + k: v for k, v in visual.items()}
        label = str(root / "motion_tokenizer.bin")
        motion = _converted(label, lambda: convert_motion_tokenizer_state_dict(load_weights_file(label)))
        yield label, {MOTION_PREFIX + k: v for k, v in motion.items()}
    else:
        raise ValueError(f"variant must be one of {PARTS}, got {variant!r}")


def language_model_config(root: str | Path, variant: str, config=None):
    """`config` (a `VideoLavitConfig`, e.g. for tiny checkpoints) or the released sizes with the text config read
    from the source folder's `config.json`."""
    if config is not None:
        return config
    return llm_conversion.config_from_original(_llm_dir(root, variant))


def _llm_dir(root: str | Path, variant: str) -> Path:
    return Path(root) / (UNDERSTANDING_DIR if variant == "understanding" else GENERATION_DIR)


def meta_language_model(config):
    """`VideoLavitForConditionalGeneration(config)` on the meta device (no memory): the target of the conversion."""
    from ..modeling.modeling_video_lavit import VideoLavitForConditionalGeneration

    with torch.device("meta"):
        return VideoLavitForConditionalGeneration(config)


def check_language_model(root: str | Path, variant: str, model) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    """Read every source file once (headers only where memory-mapped) and check that the converted keys are exactly
    those of `model` (a `meta_language_model`), with its shapes; returns `(our key, shape, source dtype)` in the
    order `iter_language_model` yields them (the write plan)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    seen: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for label, converted in iter_language_model(root, variant):
        clashes = sorted(k for k in converted if k in origin)
        if clashes:
            raise ValueError(
                "tensors given by two source files: "
                + ", ".join(f"{k} ({origin[k]} and {label})" for k in clashes[:20])
            )
        for key, tensor in converted.items():
            seen[key] = torch.empty(tensor.shape, dtype=tensor.dtype, device="meta")
            origin[key] = label
        del converted
    # keys that have a source file are reported with it; missing keys can only name the folder
    foreign = sorted(f"{k} (from {origin[k]})" for k in set(seen) - set(expected))
    wrong = sorted(
        f"{k}: {tuple(seen[k].shape)} in {origin[k]} vs ours {expected[k]}"
        for k in set(seen) & set(expected) if tuple(seen[k].shape) != expected[k]
    )
    if foreign or wrong:
        problems = [f"{len(foreign)} converted keys are not ours: {foreign[:20]}"] if foreign else []
        problems += [f"{len(wrong)} shape mismatches: {wrong[:20]}"] if wrong else []
        raise ValueError(
            f"the {variant} language model does not match VideoLavitForConditionalGeneration; " + "; ".join(problems)
        )
    source = str(_llm_dir(root, variant))
    if variant == "generation":
        source += " + visual_tokenizer/ + motion_tokenizer.bin"
    llm_conversion.check_complete(seen, expected, source)
    return [(k, tuple(v.shape), v.dtype) for k, v in seen.items()]


# ------------------------------------------------------------------------------------------------ writing
_SAFETENSORS_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
    torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}


def output_dtype(tensor_dtype: torch.dtype, dtype: torch.dtype) -> torch.dtype:
    """Floating-point tensors are written in `dtype`, the others (ids, masks) unchanged."""
    return dtype if tensor_dtype.is_floating_point else tensor_dtype


class SafetensorsShardWriter:
    """Write a planned sequence of tensors straight into safetensors files, one tensor at a time.

    `entries` lists `(key, shape, dtype)` in the order the tensors will arrive; they are grouped into files of at most
    `max_shard_bytes` (a tensor larger than that gets a file of its own) named as transformers names them
    (`model.safetensors`, or `model-0000i-of-0000n.safetensors` + `model.safetensors.index.json`). Because every
    header is known in advance, no shard is ever assembled in memory: `write` casts one tensor and appends its bytes.
    """

    def __init__(
        self, folder: str | Path, entries: list[tuple[str, tuple[int, ...], torch.dtype]], max_shard_bytes: int
    ):
        self.folder = Path(folder)
        groups: list[list[tuple[str, tuple[int, ...], torch.dtype]]] = []
        size = 0
        for key, shape, dtype in entries:
            if dtype not in _SAFETENSORS_DTYPES:
                raise ValueError(f"{key}: dtype {dtype} cannot be written to safetensors")
            nbytes = _nbytes(shape, dtype)
            if not groups or (groups[-1] and size + nbytes > max_shard_bytes):
                groups.append([])
                size = 0
            groups[-1].append((key, tuple(shape), dtype))
            size += nbytes
        count = len(groups)
        self.names = (
            ["model.safetensors"] if count == 1
            else [f"model-{i + 1:05d}-of-{count:05d}.safetensors" for i in range(count)]
        )
        self.groups = groups
        self._order = [(key, shape, dtype, i) for i, group in enumerate(groups) for key, shape, dtype in group]
        self._position = 0
        self._file = None

    def _open(self, index: int) -> None:
        header, offset = {}, 0
        for key, shape, dtype in self.groups[index]:
            nbytes = _nbytes(shape, dtype)
            header[key] = {
                "dtype": _SAFETENSORS_DTYPES[dtype], "shape": list(shape), "data_offsets": [offset, offset + nbytes]
            }
            offset += nbytes
        header["__metadata__"] = {"format": "pt"}
        raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
        raw += b" " * (-len(raw) % 8)  # the data section starts 8-byte aligned, as safetensors writes it
        self._file = open(self.folder / self.names[index], "wb")
        self._file.write(struct.pack("<Q", len(raw)))
        self._file.write(raw)

    def write(self, key: str, tensor: torch.Tensor) -> None:
        """Append the next planned tensor (cast to its planned dtype); any other key or shape is an error."""
        if self._position >= len(self._order):
            raise ValueError(f"{key}: every planned tensor was already written")
        expected_key, shape, dtype, index = self._order[self._position]
        if key != expected_key or tuple(tensor.shape) != shape:
            raise ValueError(
                f"expected {expected_key} {shape} next, got {key} {tuple(tensor.shape)}: the sources changed"
            )
        if self._file is None:
            self._open(index)
        data = tensor.to(dtype).contiguous().reshape(-1).view(torch.uint8)
        self._file.write(memoryview(data.numpy()))
        self._position += 1
        if self._position == len(self._order) or self._order[self._position][3] != index:
            self._file.close()
            self._file = None

    def close(self) -> list[str]:
        """Check that everything was written, write the index; returns the file names."""
        if self._file is not None:
            self._file.close()
        if self._position != len(self._order):
            missing = [key for key, *_ in self._order[self._position :]]
            raise ValueError(f"{len(missing)} planned tensors were never written: {missing[:20]}")
        if len(self.names) > 1:
            index = {
                "metadata": {
                    "total_parameters": sum(_numel(shape) for _, shape, _, _ in self._order),
                    "total_size": sum(_nbytes(shape, dtype) for _, shape, dtype, _ in self._order),
                },
                "weight_map": {key: self.names[i] for key, _, _, i in self._order},
            }
            text = json.dumps(index, indent=2, sort_keys=True) + "\n"
            (self.folder / "model.safetensors.index.json").write_text(text)
        return self.names


def _numel(shape) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def _nbytes(shape, dtype: torch.dtype) -> int:
    return _numel(shape) * (1 if dtype == torch.bool else torch.empty((), dtype=dtype).element_size())


def write_language_model(
    root: str | Path, variant: str, output_dir: str | Path, model, plan: list[tuple[str, tuple[int, ...], torch.dtype]],
    dtype: torch.dtype, max_shard_bytes: int, remote_code: bool = False,
) -> list[str]:
    """Stream the converted LLM of `variant` into `output_dir` (safetensors shards, config.json,
    generation_config.json). `model` is the `meta_language_model` and `plan` the key order `check_language_model`
    returned; a source that no longer yields exactly that raises `ValueError`. `remote_code` also writes the model
    sources and the config's `auto_map` (`convert_language_model.add_remote_code`)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    entries = [(k, shape, output_dtype(d, dtype)) for k, shape, d in plan]
    writer = SafetensorsShardWriter(output_dir, entries, max_shard_bytes)
    for _, converted in iter_language_model(root, variant):
        for key in list(converted):
            writer.write(key, converted.pop(key))
    names = writer.close()

    model.config.dtype = dtype
    model.config.architectures = [type(model).__name__]
    if remote_code:
        llm_conversion.add_remote_code(model.config, output_dir)
    try:
        model.config.save_pretrained(output_dir)
    finally:
        if remote_code:
            del model.config.auto_map  # the meta model may serve another part, which may be written plain
    if model.can_generate() and model.generation_config is not None:
        model.generation_config.save_pretrained(output_dir)
    return names


def build_processor(tokenizer_dir: str | Path, config):
    """A `VideoLavitProcessor` from the release's Llama tokenizer files, sized for `config`'s visual tokenizer."""
    from transformers import AutoTokenizer

    from ..processing.image_processing_video_lavit import VideoLavitImageProcessor
    from ..processing.processing_video_lavit import VideoLavitProcessor
    from ..processing.video_processing_video_lavit import VideoLavitVideoProcessor

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    if len(tokenizer) > config.text_vocab_size:
        raise ValueError(
            f"{tokenizer_dir}: the tokenizer has {len(tokenizer)} pieces but the model only "
            f"{config.text_vocab_size} text ids"
        )
    image_size = config.visual_tokenizer_config.image_size
    size = {"height": image_size, "width": image_size}
    return VideoLavitProcessor(
        image_processor=VideoLavitImageProcessor(size=size, crop_size=size),
        video_processor=VideoLavitVideoProcessor(size=size),
        tokenizer=tokenizer,
    )


def _library_entry(cls: type) -> list[str]:
    """`model_index.json` entry of a class, by diffusers' rule: the library name for diffusers/transformers classes,
    the full module path otherwise."""
    library = cls.__module__.split(".")[0]
    return [library if library in ("diffusers", "transformers") else cls.__module__, cls.__name__]


def pipeline_model_index(keyframe_index: dict, video_index: dict, **sizes) -> dict:
    """`model_index.json` of `VideoLavitPipeline`, from those the two detokenizer converters wrote."""
    import diffusers

    from ..modeling.modeling_video_lavit import VideoLavitForConditionalGeneration
    from ..pipelines.pipeline_video_lavit import VideoLavitPipeline
    from ..processing.processing_video_lavit import VideoLavitProcessor

    signature = inspect.signature(VideoLavitPipeline.__init__).parameters
    names = ("keyframe_height", "keyframe_width", "video_height", "video_width")
    defaults = {name: signature[name].default for name in names}
    unknown = set(sizes) - set(defaults)
    if unknown:
        raise ValueError(f"unknown pipeline sizes {sorted(unknown)}; expected some of {sorted(defaults)}")
    index = {
        "_class_name": VideoLavitPipeline.__name__,
        "_diffusers_version": diffusers.__version__,
        "language_model": _library_entry(VideoLavitForConditionalGeneration),
        "processor": _library_entry(VideoLavitProcessor),
        "motion_tokenizer": [None, None],
    }
    index.update({ours: keyframe_index[theirs] for theirs, ours in KEYFRAME_RENAMES.items()})
    index.update({ours: video_index[theirs] for theirs, ours in VIDEO_RENAMES.items()})
    index.update({k: (sizes[k] if sizes.get(k) is not None else v) for k, v in defaults.items()})
    return index


def _move_components(source: Path, target: Path, renames: dict[str, str]) -> dict:
    index = json.loads((source / "model_index.json").read_text())
    for theirs, ours in renames.items():
        (source / theirs).rename(target / ours)
    shutil.rmtree(source)
    return index


# ------------------------------------------------------------------------------------------------ driver
def convert_video_lavit(
    original: str | Path,
    out: str | Path,
    dtype: torch.dtype = torch.bfloat16,
    max_shard_size: int | str = "5GB",
    parts: tuple[str, ...] = PARTS,
    config=None,
    keyframe_decoder_heads: int = 16,
    motion_encoder_config: dict | None = None,
    keyframe_height: int | None = None,
    keyframe_width: int | None = None,
    video_height: int | None = None,
    video_width: int | None = None,
    remote_code: bool = False,
    keyframe_pooler_heads: int | None = None,
) -> Path:
    """Convert the released folder `original` into the Hugging Face folder `out` (layout in the module docstring).

    Args:
        original: folder in the `rain1011/Video-LaVIT-v1` layout.
        out: output folder; must not exist or be empty.
        dtype: dtype of every floating-point weight written.
        max_shard_size: largest LLM safetensors file (bytes or a string such as `"5GB"`).
        parts: `"understanding"` (root model + processor) and/or `"generation"` (`VideoLavitPipeline` folders).
        config: a `VideoLavitConfig` for both LLMs (non-released sizes); default: released tokenizer sizes, text
            config from each LLM's `config.json`.
        keyframe_decoder_heads: attention heads of `highres_tokenizer_decoder.bin` (not inferable from shapes).
        motion_encoder_config: the video detokenizer's motion encoder config (the release ships none).
        keyframe_height, keyframe_width, video_height, video_width: default pipeline sizes (released: 576 x 1024 and
            512 x 896).
        remote_code: also write the model sources + `auto_map` into each LLM folder (the root and
            `language_model/`), so they load with `trust_remote_code=True` without this package.
        keyframe_pooler_heads: heads of the keyframe decoder's attention pooler (default: `keyframe_decoder_heads`).

    Returns the output folder.
    """
    from transformers.utils.hub import convert_file_size_to_int

    original, out = Path(original), Path(out)
    parts = tuple(parts)
    if not parts or set(parts) - set(PARTS):
        raise ValueError(f"parts must be a non-empty subset of {PARTS}, got {parts}")
    if dtype not in DTYPES.values():
        raise ValueError(f"dtype must be one of {list(DTYPES.values())}, got {dtype}")
    max_shard_bytes = convert_file_size_to_int(max_shard_size)
    if max_shard_bytes <= 0:
        raise ValueError(f"max_shard_size must be positive, got {max_shard_size!r}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"the output folder {out} exists and is not empty; remove it or choose another")
    check_release_folder(original, parts)
    configs = {part: language_model_config(original, part, config) for part in parts}
    models = {}
    for part in parts:
        # with one given config both sides share the (slow to build) meta model
        shared = [models[p] for p in models if configs[p] is configs[part]]
        models[part] = shared[0] if shared else meta_language_model(configs[part])
    # every source key is checked before anything is written
    plans = {part: check_language_model(original, part, models[part]) for part in parts}

    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        if "generation" in parts:
            # the detokenizer converters load, check and save their own components; their folders are then renamed
            label = f"{original / 'visual_tokenizer/highres_tokenizer_decoder.bin'} + {original / 'image_detokenizer'}"
            _converted(label, lambda: convert_keyframe_pipeline(
                original, partial / "_keyframe", dtype, num_attention_heads=keyframe_decoder_heads,
                pooler_num_heads=keyframe_pooler_heads,
            ))
            keyframe_index = _move_components(partial / "_keyframe", partial, KEYFRAME_RENAMES)
            weights = video_unet_weights(original)
            _converted(str(weights), lambda: convert_video_detokenizer(
                original, partial / "_video", weights=weights, dtype=dtype, motion_encoder_config=motion_encoder_config
            ))
            video_index = _move_components(partial / "_video", partial, VIDEO_RENAMES)
            write_language_model(original, "generation", partial / "language_model", models["generation"],
                                 plans["generation"], dtype, max_shard_bytes, remote_code)
            build_processor(original / GENERATION_DIR, configs["generation"]).save_pretrained(partial / "processor")
            index = pipeline_model_index(
                keyframe_index, video_index, keyframe_height=keyframe_height, keyframe_width=keyframe_width,
                video_height=video_height, video_width=video_width,
            )
            (partial / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        if "understanding" in parts:
            write_language_model(original, "understanding", partial, models["understanding"], plans["understanding"],
                                 dtype, max_shard_bytes, remote_code)
            build_processor(original / UNDERSTANDING_DIR, configs["understanding"]).save_pretrained(partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out.exists():
        out.rmdir()
    partial.rename(out)
    return out


def _json_file(path: str | None) -> dict | None:
    return None if path is None else json.loads(Path(path).read_text())


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="python -m video_lavit.conversion.convert_video_lavit",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--original", required=True, type=Path, help="released folder (rain1011/Video-LaVIT-v1 layout)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (must not exist or be empty)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16", help="dtype of the written weights")
    parser.add_argument("--max-shard-size", default="5GB", help="largest LLM safetensors file, e.g. 5GB or 500MB")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="understanding: root model + processor; generation: VideoLavitPipeline subfolders")
    parser.add_argument("--config", help="VideoLavitConfig JSON for non-released sizes (default: the release)")
    parser.add_argument("--keyframe-decoder-heads", type=int, default=16, help="heads of highres_tokenizer_decoder")
    parser.add_argument("--keyframe-pooler-heads", type=int, default=None,
                        help="heads of its attention pooler (default: --keyframe-decoder-heads)")
    parser.add_argument("--motion-encoder-config", help="motion condition encoder config JSON (default: the release)")
    for name in ("keyframe-height", "keyframe-width", "video-height", "video-width"):
        parser.add_argument(f"--{name}", type=int, default=None, help="default pipeline size (default: the release)")
    parser.add_argument("--remote-code", action="store_true",
                        help="also write the model sources + auto_map into each LLM folder (trust_remote_code loading)")
    return parser


def run(args: argparse.Namespace) -> int:
    config = None
    if args.config is not None:
        from ..modeling.configuration_video_lavit import VideoLavitConfig

        config = VideoLavitConfig.from_json_file(args.config)
    out = convert_video_lavit(
        args.original, args.out, DTYPES[args.dtype], args.max_shard_size, tuple(args.parts), config,
        args.keyframe_decoder_heads, _json_file(args.motion_encoder_config), args.keyframe_height,
        args.keyframe_width, args.video_height, args.video_width, args.remote_code, args.keyframe_pooler_heads,
    )
    print(f"wrote {out} ({', '.join(args.parts)}; {args.dtype})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
