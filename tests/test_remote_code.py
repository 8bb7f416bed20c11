"""`video_lavit.export_for_hub`: remote code + auto_map so a folder loads with trust_remote_code without the package."""

import ast
import hashlib
import json
import os
import subprocess
import sys

import PIL.Image
import pytest
import torch
from transformers import AutoModel, AutoModelForCausalLM

import video_lavit
from video_lavit.cli import main
from video_lavit.hub_export import unresolved_auto_map_entries
from video_lavit.modeling.modeling_motion_tokenizer import VideoLavitMotionTokenizer
from video_lavit.modeling.modeling_video_lavit import VideoLavitForConditionalGeneration
from video_lavit.processing.processing_video_lavit import VideoLavitProcessor
from video_lavit.testing import build_tiny_language_model, build_tiny_processor

CAUSAL_LM = "modeling_video_lavit.VideoLavitForConditionalGeneration"


@pytest.fixture()
def folder(tmp_path):
    """Converted-release layout in miniature: understanding model + processor at the root, a generation LLM in
    language_model/, its processor in processor/, a standalone motion tokenizer in motion_tokenizer/."""
    torch.manual_seed(0)
    processor = build_tiny_processor()
    model = build_tiny_language_model(len(processor.tokenizer))
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    model.save_pretrained(tmp_path / "language_model")
    processor.save_pretrained(tmp_path / "processor")
    model.motion_tokenizer.save_pretrained(tmp_path / "motion_tokenizer")
    return tmp_path


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_writes_resolvable_auto_maps_and_keeps_weights(folder, capsys):
    weights = {p: _digest(p) for p in folder.rglob("*.safetensors")}
    exported = video_lavit.export_for_hub(folder)
    assert set(exported) == {".", "language_model", "processor", "motion_tokenizer"}
    assert {"modeling_video_lavit.py", "generation_video_lavit.py", "configuration_visual_tokenizer.py",
            "processing_video_lavit.py", "video_processing_video_lavit.py", "motion_vectors.py"} <= set(exported["."])
    assert exported["motion_tokenizer"] == ["auto_map_utils.py", "configuration_motion_tokenizer.py",
                                            "modeling_motion_tokenizer.py"]
    assert {p: _digest(p) for p in folder.rglob("*.safetensors")} == weights  # no weight is re-written

    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_video_lavit.VideoLavitConfig",
        "AutoModel": "modeling_video_lavit.VideoLavitModel",
        "AutoModelForCausalLM": CAUSAL_LM,
        "AutoModelForImageTextToText": CAUSAL_LM,
        "AutoModelForMultimodalLM": CAUSAL_LM,
    }
    processor_config = json.loads((folder / "processor" / "processor_config.json").read_text())
    assert processor_config["auto_map"] == {"AutoProcessor": "processing_video_lavit.VideoLavitProcessor"}
    assert processor_config["video_processor"]["auto_map"]["AutoVideoProcessor"] == (
        "video_processing_video_lavit.VideoLavitVideoProcessor"
    )
    tokenizer_config = json.loads((folder / "processor" / "tokenizer_config.json").read_text())
    assert tokenizer_config["auto_map"] == {"AutoProcessor": "processing_video_lavit.VideoLavitProcessor"}
    motion_config = json.loads((folder / "motion_tokenizer" / "config.json").read_text())
    assert motion_config["auto_map"]["AutoModel"] == "modeling_motion_tokenizer.VideoLavitMotionTokenizer"

    for component in (folder, folder / "language_model", folder / "processor", folder / "motion_tokenizer"):
        assert unresolved_auto_map_entries(component) == []
    # the copied code is self-contained: only single-dot sibling imports, never the package
    for source in folder.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level in (0, 1) and not (node.module or "").startswith("video_lavit"), source.name
            if isinstance(node, ast.Import):
                assert not any(alias.name.startswith("video_lavit") for alias in node.names), source.name

    again = json.loads((folder / "config.json").read_text())
    assert main(["export-for-hub", str(folder)]) == 0  # the console command; exporting again changes nothing
    assert json.loads((folder / "config.json").read_text()) == again
    assert "motion_tokenizer: 3 code files, auto_map written" in capsys.readouterr().out


def test_package_classes_still_win_after_export(folder):
    video_lavit.export_for_hub(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)
    assert type(model) is VideoLavitForConditionalGeneration  # registered local classes take precedence
    tokenizer = AutoModel.from_pretrained(folder / "motion_tokenizer", trust_remote_code=True)
    assert type(tokenizer) is VideoLavitMotionTokenizer


def test_unresolved_entries_are_reported_and_empty_folders_refused(folder, tmp_path_factory):
    video_lavit.export_for_hub(folder)
    (folder / "language_model" / "generation_video_lavit.py").unlink()  # still resolvable: only imported
    (folder / "language_model" / "modeling_video_lavit.py").unlink()
    missing = unresolved_auto_map_entries(folder / "language_model")
    assert "config.json: AutoModelForCausalLM -> " + CAUSAL_LM in missing and len(missing) == 4
    empty = tmp_path_factory.mktemp("empty")
    (empty / "notes").mkdir()
    with pytest.raises(ValueError, match="holds no Video-LaVIT model"):
        video_lavit.export_for_hub(empty)
    with pytest.raises(ValueError, match="is not a folder"):
        video_lavit.export_for_hub(empty / "missing")


_REMOTE_LOAD = """
import sys
class Block:  # the package must not be importable: every class comes from the exported folder
    def find_spec(self, name, path=None, target=None):
        if name == "video_lavit" or name.startswith("video_lavit."):
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Block())
import PIL.Image, torch
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor
folder, image_path = sys.argv[1], sys.argv[2]
model = AutoModelForImageTextToText.from_pretrained(folder, trust_remote_code=True).eval()
loaded = [model, AutoModelForCausalLM.from_pretrained(folder, subfolder="language_model", trust_remote_code=True),
          AutoModel.from_pretrained(folder, trust_remote_code=True),
          AutoModel.from_pretrained(folder + "/motion_tokenizer", trust_remote_code=True),
          AutoProcessor.from_pretrained(folder + "/processor", trust_remote_code=True)]
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
print(" ".join(type(o).__module__.split(".")[0] + ":" + type(o).__name__ for o in loaded + [processor]))
chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What?"}]}]
inputs = processor(text=processor.apply_chat_template(chat, add_generation_prompt=True),
                   images=[PIL.Image.open(image_path).convert("RGB")], return_tensors="pt")
out = model.generate(**inputs, max_new_tokens=5, min_new_tokens=5, generator=torch.Generator().manual_seed(0))
print(out[0, inputs["input_ids"].shape[1]:].tolist())
"""


@pytest.mark.slow  # a fresh interpreter importing torch + transformers: ~35 s on the shared CPU
def test_exported_folder_loads_without_the_package(folder, testdata_dir):
    video_lavit.export_for_hub(folder)
    image = testdata_dir / "dog.jpg"
    result = subprocess.run(
        [sys.executable, "-c", _REMOTE_LOAD, str(folder), str(image)], capture_output=True, text=True, timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "HF_MODULES_CACHE": str(folder / "modules")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    classes, ids = result.stdout.strip().splitlines()[-2:]
    assert classes.split() == [
        "transformers_modules:VideoLavitForConditionalGeneration", "transformers_modules:VideoLavitForConditionalGeneration",
        "transformers_modules:VideoLavitModel", "transformers_modules:VideoLavitMotionTokenizer",
        "transformers_modules:VideoLavitProcessor", "transformers_modules:VideoLavitProcessor",
    ]
    model = VideoLavitForConditionalGeneration.from_pretrained(folder).eval()
    processor = VideoLavitProcessor.from_pretrained(folder)
    chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What?"}]}]
    inputs = processor(text=processor.apply_chat_template(chat, add_generation_prompt=True),
                       images=[PIL.Image.open(image).convert("RGB")], return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=5, min_new_tokens=5, generator=torch.Generator().manual_seed(0))
    assert ids == str(out[0, inputs["input_ids"].shape[1]:].tolist())
