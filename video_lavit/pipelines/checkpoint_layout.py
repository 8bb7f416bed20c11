"""Where the parts of a Video-LaVIT folder live, for the `transformers.pipeline` tasks and the console command.

Two layouts exist (see `video_lavit.conversion.convert_video_lavit`):

* a **converted release** folder: the understanding LLM + its processor at the root (`config.json`,
  `processor_config.json`), and the generation pipeline (`model_index.json`, `language_model/`, `processor/`,
  detokenizer subfolders) next to them;
* a **generation pipeline** folder (`VideoLavitPipeline.save_pretrained`, `video_lavit.testing.build_tiny_video_lavit`,
  `--parts generation`): only `model_index.json` and the subfolders, so its `language_model/` (the generation LLM)
  also answers questions.

Text-to-video always uses the pipeline part; understanding uses the root model when there is one.
"""

from __future__ import annotations

from pathlib import Path

PIPELINE_INDEX = "model_index.json"
GENERATION_LLM_SUBFOLDER = "language_model"
PIPELINE_PROCESSOR_SUBFOLDER = "processor"

# keyword arguments `transformers.pipeline` hands every model class that only the Auto classes understand
_PIPELINE_ONLY_KWARGS = ("_from_pipeline", "config", "code_revision", "trust_remote_code", "revision", "token")


def is_pipeline_folder(folder: str | Path) -> bool:
    """True when `folder` holds a `VideoLavitPipeline` (`model_index.json`)."""
    return (Path(folder) / PIPELINE_INDEX).is_file()


def understanding_model_location(folder: str | Path) -> tuple[Path, str | None]:
    """`(folder, subfolder)` of the LLM that answers questions: the root model if the folder has one, else the
    pipeline's `language_model/`. Raises `ValueError` naming the folder when neither exists."""
    folder = Path(folder)
    if (folder / "config.json").is_file():
        return folder, None
    if (folder / GENERATION_LLM_SUBFOLDER / "config.json").is_file():
        return folder, GENERATION_LLM_SUBFOLDER
    raise ValueError(
        f"{folder} holds no Video-LaVIT model: expected config.json (a converted understanding model) or "
        f"{GENERATION_LLM_SUBFOLDER}/config.json (a VideoLavitPipeline folder)"
    )


def processor_location(folder: str | Path, subfolder: str | None = None) -> Path:
    """Folder of the `VideoLavitProcessor` that goes with the model at `folder[/subfolder]`: that folder itself when it
    holds `processor_config.json`, else the pipeline's `processor/`."""
    folder = Path(folder)
    candidates = [folder / subfolder] if subfolder else []
    candidates += [folder, folder / PIPELINE_PROCESSOR_SUBFOLDER]
    for candidate in candidates:
        if (candidate / "processor_config.json").is_file():
            return candidate
    raise ValueError(
        f"no processor_config.json in {[str(c) for c in candidates]}; save the VideoLavitProcessor next to the model"
    )


def model_loading_kwargs(kwargs: dict) -> dict:
    """`from_pretrained` arguments of a concrete model class, from what `transformers.pipeline` passes a model class
    (it also hands over Auto-class-only and pipeline-only arguments)."""
    return {k: v for k, v in kwargs.items() if k not in _PIPELINE_ONLY_KWARGS}


__all__ = [
    "GENERATION_LLM_SUBFOLDER",
    "PIPELINE_INDEX",
    "PIPELINE_PROCESSOR_SUBFOLDER",
    "is_pipeline_folder",
    "model_loading_kwargs",
    "processor_location",
    "understanding_model_location",
]
