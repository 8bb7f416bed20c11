"""MODEL_CARD.md: its front matter parses with the Hub's keys, and its code runs as written.

Every ```python block is executed verbatim, in document order and in one namespace (like a notebook), from a working
folder that holds what the card assumes: `video-lavit-hf/` (the converted layout, here the random-weight miniature
`video_lavit.testing.build_tiny_converted_video_lavit`), `clip.mp4` and
`first_frame.png`. Blocks preceded by `<!-- test: slow -->` (generation at the pipeline's full defaults) run only in
the slow test. Shell commands of the card are checked against the argument parsers of the scripts they call.
"""

import importlib
import importlib.util
import re
import shlex
import sys
from pathlib import Path

import av
import numpy as np
import PIL.Image
import pytest
import torch
import yaml

import video_lavit
from video_lavit.testing import TINY_VIDEO_SIZE, build_tiny_converted_video_lavit, write_sliding_texture_video

REPO = Path(__file__).resolve().parent.parent
CARD = REPO / "MODEL_CARD.md"
SLOW_MARK = "<!-- test: slow -->"


def split_card(text: str) -> tuple[dict, str]:
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", text, flags=re.S)
    if match is None:
        raise ValueError("MODEL_CARD.md does not start with a --- YAML front matter block ---")
    return yaml.safe_load(match.group(1)), match.group(2)


def code_blocks(body: str, language: str) -> list[tuple[str, bool]]:
    """`(code, slow)` of every fenced block in `language`, in order."""
    blocks = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```\s*$", body, flags=re.S | re.M):
        if match.group(1) != language:
            continue
        before = body[: match.start()].rstrip().splitlines()
        blocks.append((match.group(2), bool(before) and before[-1].strip() == SLOW_MARK))
    return blocks


@pytest.fixture(scope="module")
def card():
    return split_card(CARD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """What the card's snippets expect in the current folder, with the converted release's layout."""
    root = tmp_path_factory.mktemp("card")
    build_tiny_converted_video_lavit(root / "video-lavit-hf", seed=0)
    write_sliding_texture_video(root / "clip.mp4")
    PIL.Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(
        root / "first_frame.png"
    )
    return root


def run_blocks(blocks, workdir, monkeypatch) -> dict:
    monkeypatch.chdir(workdir)
    namespace = {"__name__": "__model_card__"}
    for index, code in enumerate(blocks):
        try:
            exec(compile(code, f"MODEL_CARD.md python block {index}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"python block {index} of MODEL_CARD.md failed:\n{code}") from error
    return namespace


def test_front_matter_has_the_hub_keys(card):
    meta, body = card
    assert meta["library_name"] == "transformers"
    assert meta["pipeline_tag"] == "text-to-video"
    # the weights keep the original licence: an "other" licence must be named and linked
    assert meta["license"] == "other"
    assert meta["license_name"] == "lavit-community-license"
    assert meta["license_link"] == "https://github.com/jy0205/LaVIT/blob/main/LICENSE"
    assert meta["base_model"] == "rain1011/Video-LaVIT-v1"
    assert "WebVid-10M" in meta["datasets"] and "video-lavit" in meta["tags"]
    assert all(isinstance(v, str) for v in meta["tags"] + meta["datasets"])
    # the Hub's own parser reads the same metadata
    from huggingface_hub import ModelCard

    hub = ModelCard.load(CARD).data.to_dict()
    assert {k: hub[k] for k in ("library_name", "pipeline_tag", "license", "license_name")} == {
        k: meta[k] for k in ("library_name", "pipeline_tag", "license", "license_name")
    }
    # the card's task is one `import video_lavit` actually provides
    from transformers.pipelines import PIPELINE_REGISTRY

    assert meta["pipeline_tag"] in PIPELINE_REGISTRY.supported_tasks
    for heading in ("## Limitations", "## Intended use", "## Citation", "## Miniature model (this repository)"):
        assert heading in body
    assert "@inproceedings{" in body and "2402.03161" in body


def test_paper_numbers_and_version_caveat(card):
    _, body = card
    # exact values of arXiv v3 Tables 2, 4 and 10 (spec 02 section 5)
    assert "| 73.2 | 3.9 | 59.3 | 3.3 | 50.1 | 3.3 |" in body
    assert "| 0.3012 | 188.36 | 11.27 | 44.26 | 280.57 |" in body
    assert "CLIPSIM 0.3010, FVD 169.51, FID 11.80, IS 37.96, UCF-101 FVD 274.96" in body
    assert "v3" in body and "Table 10" in body


def test_card_has_default_and_slow_python_blocks(card):
    _, body = card
    blocks = code_blocks(body, "python")
    assert sum(not slow for _, slow in blocks) == 3
    assert sum(slow for _, slow in blocks) == 2
    # the snippets read the folder the conversion command writes; the test provides exactly that name
    assert 'model_path = "video-lavit-hf"' in blocks[0][0]


def test_understanding_snippets_run(card, workdir, monkeypatch):
    _, body = card
    ns = run_blocks([code for code, slow in code_blocks(body, "python") if not slow], workdir, monkeypatch)
    model, processor, inputs = ns["model"], ns["processor"], ns["inputs"]
    assert type(model).__name__ == "VideoLavitForConditionalGeneration"
    assert type(processor).__name__ == "VideoLavitProcessor"
    clips = int(inputs["clips_per_video"].sum())
    assert clips >= 1 and inputs["motion_vectors"].shape == (clips, 2, 24, 20, 36)
    prompt_length = inputs["input_ids"].shape[1]
    assert torch.equal(ns["output_ids"][:, :prompt_length], inputs["input_ids"])
    assert prompt_length < ns["output_ids"].shape[1] <= prompt_length + 64
    assert isinstance(ns["answer"], str) and isinstance(ns["qa_answer"], str)
    # the card says the generator makes the answer reproducible
    again = model.generate(**inputs, max_new_tokens=64, tokenizer=processor.tokenizer,
                           generator=torch.Generator("cpu").manual_seed(0))
    assert processor.decode_answers(again, prompt_length=prompt_length)[0] == ns["answer"]
    motion = ns["motion_codes"]
    assert motion.shape == (clips, 135) and motion.dtype == torch.long
    assert 0 <= int(motion.min()) and int(motion.max()) < model.config.motion_tokenizer_config.codebook_size
    keyframes = ns["keyframe_codes"]
    assert len(keyframes) == clips
    codebook = model.config.visual_tokenizer_config.codebook_size
    assert all(k.dim() == 1 and k.numel() > 0 and int(k.max()) < codebook for k in keyframes)


@pytest.mark.slow
def test_all_snippets_run_with_generation(card, workdir, monkeypatch):
    _, body = card
    ns = run_blocks([code for code, _ in code_blocks(body, "python")], workdir, monkeypatch)
    height, width = TINY_VIDEO_SIZE
    assert len(ns["video"]) == 24 and ns["video"][0].size == (width, height)
    with av.open(str(workdir / "sailboat.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
    assert ns["t2v_out"]["frames"].shape == (24, height, width, 3)
    assert Path(ns["t2v_out"]["video_path"]).is_file()
    assert len(ns["animated"].frames[0]) == 24
    assert len(ns["long_video"]) == 24 + 23


def load_example(relative_path: str):
    """Import an example script by path (registered in sys.modules: its dataclasses need their module)."""
    name = "video_lavit_example_" + Path(relative_path).stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / relative_path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _parser_for(command: list[str]):
    if command[:2] == ["python", "-m"]:
        return importlib.import_module(command[2]).build_parser(), command[3:]
    if command[0] == "python" and command[1].startswith("examples/"):
        module = load_example(command[1])
        return module.build_parser(), command[2:]
    return None, None


def test_shell_commands_match_the_scripts(card):
    _, body = card
    commands = [shlex.split(line) for code, _ in code_blocks(body, "bash") for line in code.splitlines()]
    checked = []
    for command in commands:
        parser, arguments = _parser_for(command)
        if parser is None:
            continue
        args = parser.parse_args(arguments)  # SystemExit on an unknown or missing option
        checked.append((command[2] if command[1] == "-m" else command[1], args))
    scripts = [name for name, _ in checked]
    assert scripts == ["video_lavit.conversion.convert_video_lavit", "examples/finetune_lora.py",
                       "examples/evaluate_video_qa.py"]
    conversion, finetune, evaluation = (args for _, args in checked)
    assert str(conversion.out) == "video-lavit-hf" and conversion.dtype == "bf16"
    # the fine-tuned adapter is what the evaluation loads
    assert evaluation.adapter == finetune.output_dir and finetune.model == evaluation.model == "video-lavit-hf"
