"""Make a saved or converted Video-LaVIT folder loadable with `trust_remote_code=True` where `video_lavit` is absent.

`export_for_hub(folder)` edits the folder in place, without re-writing any weight (a 7B checkpoint stays as it is):
for every transformers component it finds (the folder itself and its direct subfolders, e.g. `language_model/` and
`processor/` of a `VideoLavitPipeline` folder) it copies the code files next to the component and writes their
`auto_map` entries (spec 04 §1.4, §2.6), exactly what `save_pretrained` writes after `register_for_auto_class`:

* `config.json` of model_type `video_lavit`: `AutoConfig`, `AutoModel`, `AutoModelForCausalLM`,
  `AutoModelForImageTextToText`, `AutoModelForMultimodalLM`;
* `config.json` of the standalone tokenizers (`video_lavit_visual_tokenizer` / `video_lavit_motion_tokenizer`):
  `AutoConfig`, `AutoModel`;
* `processor_config.json` (top level and the nested image / video processor dicts) and `tokenizer_config.json`:
  `AutoProcessor`, `AutoImageProcessor`, `AutoVideoProcessor`.

The diffusers detokenizers are not covered: `model_index.json` names package modules, so
`VideoLavitPipeline.from_pretrained` keeps needing `import video_lavit`. With the package imported, its registered
classes win over the copied code (transformers' `explicit_local_code`), so exporting changes nothing for them.
"""

from __future__ import annotations

import ast
import json
import shutil
import sys
from pathlib import Path

# model_type -> (module of the model classes, {auto class: model class}, configuration module, config class)
_MODELS = {
    "video_lavit": (
        "modeling_video_lavit",
        {
            "AutoModel": "VideoLavitModel",
            "AutoModelForCausalLM": "VideoLavitForConditionalGeneration",
            "AutoModelForImageTextToText": "VideoLavitForConditionalGeneration",
            "AutoModelForMultimodalLM": "VideoLavitForConditionalGeneration",
        },
        "configuration_video_lavit",
        "VideoLavitConfig",
    ),
    "video_lavit_visual_tokenizer": (
        "modeling_visual_tokenizer",
        {"AutoModel": "VideoLavitVisualTokenizer"},
        "configuration_visual_tokenizer",
        "VideoLavitVisualTokenizerConfig",
    ),
    "video_lavit_motion_tokenizer": (
        "modeling_motion_tokenizer",
        {"AutoModel": "VideoLavitMotionTokenizer"},
        "configuration_motion_tokenizer",
        "VideoLavitMotionTokenizerConfig",
    ),
}
_PROCESSOR = ("processing_video_lavit", "VideoLavitProcessor")
_IMAGE_PROCESSOR = ("image_processing_video_lavit", "VideoLavitImageProcessor")
_VIDEO_PROCESSOR = ("video_processing_video_lavit", "VideoLavitVideoProcessor")


def _package_file(module: str, subpackage: str) -> Path:
    __import__(f"video_lavit.{subpackage}.{module}")
    return Path(sys.modules[f"video_lavit.{subpackage}.{module}"].__file__)


def _copy_code(module: str, subpackage: str, target: Path) -> list[str]:
    """Copy `module` and, recursively, its single-dot sibling imports into `target` (what `custom_object_save` does)."""
    from transformers.dynamic_module_utils import get_relative_import_files

    source = _package_file(module, subpackage)
    files = [source, *map(Path, get_relative_import_files(str(source)))]
    for file in files:
        shutil.copyfile(file, target / file.name)
    return sorted(f.name for f in files)


def _update_json(path: Path, update) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    update(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _merge_auto_map(data: dict, entries: dict) -> None:
    data["auto_map"] = {**(data.get("auto_map") or {}), **entries}


def _export_model(folder: Path, model_type: str) -> list[str]:
    modeling, classes, configuration, config_class = _MODELS[model_type]
    entries = {"AutoConfig": f"{configuration}.{config_class}"}
    entries.update({auto: f"{modeling}.{cls}" for auto, cls in classes.items()})
    files = _copy_code(modeling, "modeling", folder)
    _update_json(folder / "config.json", lambda data: _merge_auto_map(data, entries))
    return files


def _export_processor(folder: Path) -> list[str]:
    processor = f"{_PROCESSOR[0]}.{_PROCESSOR[1]}"

    def update(data: dict) -> None:
        _merge_auto_map(data, {"AutoProcessor": processor})
        for key, (module, cls), auto in (
            ("image_processor", _IMAGE_PROCESSOR, "AutoImageProcessor"),
            ("video_processor", _VIDEO_PROCESSOR, "AutoVideoProcessor"),
        ):
            if isinstance(data.get(key), dict):
                _merge_auto_map(data[key], {"AutoProcessor": processor, auto: f"{module}.{cls}"})

    files = _copy_code(_PROCESSOR[0], "processing", folder)
    _update_json(folder / "processor_config.json", update)
    if (folder / "tokenizer_config.json").is_file():
        _update_json(folder / "tokenizer_config.json", lambda data: _merge_auto_map(data, {"AutoProcessor": processor}))
    return files


def export_for_hub(folder: str | Path) -> dict[str, list[str]]:
    """Add remote code + `auto_map` to every Video-LaVIT transformers component of `folder` and its direct subfolders.

    Returns `{component folder (relative, "." for the root): [code files copied]}`. Raises `ValueError` when the
    folder holds no Video-LaVIT model or processor (a wrong path would otherwise be "exported" silently).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    exported: dict[str, list[str]] = {}
    for component in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
        name = "." if component == folder else component.name
        files: list[str] = []
        config = component / "config.json"
        if config.is_file():
            model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
            if model_type in _MODELS:
                files += _export_model(component, model_type)
        if (component / "processor_config.json").is_file():
            files += _export_processor(component)
        if files:
            exported[name] = sorted(set(files))
    if not exported:
        raise ValueError(
            f"{folder} holds no Video-LaVIT model (config.json with model_type in {sorted(_MODELS)}) or processor "
            "(processor_config.json), neither at the top nor in a direct subfolder"
        )
    return exported


def unresolved_auto_map_entries(folder: str | Path) -> list[str]:
    """Every `auto_map` entry of `folder`'s JSON files whose `module.Class` is not defined by a `.py` file there
    (checked by parsing, nothing is imported). Empty when the folder is complete."""
    folder = Path(folder)
    problems = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        maps = [data.get("auto_map")] + [v.get("auto_map") for v in data.values() if isinstance(v, dict)]
        for auto_map in filter(None, maps):
            for auto, reference in auto_map.items():
                references = reference if isinstance(reference, (list, tuple)) else [reference]
                for ref in filter(None, references):
                    module, _, cls = ref.rpartition(".")
                    source = folder / f"{module}.py"
                    defined = source.is_file() and cls in {
                        node.name for node in ast.parse(source.read_text(encoding="utf-8")).body
                        if isinstance(node, ast.ClassDef)
                    }
                    if not defined:
                        problems.append(f"{path.name}: {auto} -> {ref}")
    return problems


__all__ = ["export_for_hub", "unresolved_auto_map_entries"]
