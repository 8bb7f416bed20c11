"""Peak memory of the streamed whole-release conversion vs loading the whole LLM checkpoint at once.

Builds a fake `language_model_sft/` (a ~100M-parameter Llama in fp32, 4 `.bin` shards, plus the parity fixtures'
keyframe/motion tokenizers under their SFT prefixes), then converts it in two fresh processes:

* `convert_video_lavit --parts understanding` (streamed, `--max-shard-size 50MB`);
* `convert_language_model.convert_checkpoint(..., "understanding")` (the component converter: all shards in memory).

Prints each process's peak resident memory (Linux VmHWM, reset after the imports) above its after-import RSS, as a multiple of the checkpoint size.

    OMP_NUM_THREADS=1 python benchmarks/bench_convert_video_lavit.py [--layers 8] [--hidden 1024]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "parity" / "fixtures"

_MEASURE = r"""
import sys, torch
import video_lavit
from video_lavit.conversion import convert_language_model, convert_video_lavit
from video_lavit.modeling.configuration_video_lavit import VideoLavitConfig
def status(field):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(field))
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
base = status("VmRSS:")
config = VideoLavitConfig.from_json_file(sys.argv[2])
if sys.argv[1] == "streamed":
    convert_video_lavit.convert_video_lavit(sys.argv[3], sys.argv[4], torch.float32, "50MB", ("understanding",), config)
else:
    convert_language_model.convert_checkpoint(sys.argv[3], sys.argv[4], "understanding", torch.float32, config=config)
print(status("VmHWM:") - base)
"""


def build_release(root: Path, hidden: int, layers: int) -> tuple[Path, int]:
    """Write the fake SFT folder; returns (config path, checkpoint bytes)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from video_lavit.conversion.parity import motion_tokenizer as motion_parity
    from video_lavit.conversion.parity import visual_tokenizer as visual_parity
    from video_lavit.conversion.parity.common import Fixture
    from video_lavit.modeling.configuration_video_lavit import VideoLavitConfig
    from video_lavit.processing.tokenizer_utils import build_tiny_llama_tokenizer

    visual_fixture = Fixture.load(FIXTURES / "visual_tokenizer.json")
    visual = {k: v.float() for k, v in visual_fixture.weights().items()}
    visual["vit_proj.weight"] = torch.randn(hidden, visual["vit_proj.weight"].shape[1])
    visual["vit_proj.bias"] = torch.zeros(hidden)
    visual_config = visual_parity.config_from_fixture(visual_fixture.spec, visual)
    motion_fixture = Fixture.load(FIXTURES / "motion_tokenizer.json")
    motion_config = motion_parity.build_from_fixture(motion_fixture).config
    tokenizer = build_tiny_llama_tokenizer()
    vocab = len(tokenizer) + 2 + visual_config.codebook_size + 2 + motion_config.codebook_size
    text = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=int(hidden * 2.75), num_hidden_layers=layers,
                num_attention_heads=hidden // 64, num_key_value_heads=hidden // 64, max_position_embeddings=4096)
    state = dict(LlamaForCausalLM(LlamaConfig(**text)).state_dict())
    state.update({"model.visual_tokenizer." + k: v for k, v in visual.items()})
    state.update({"model.motion_tokenizer." + k: v.float() for k, v in motion_fixture.weights().items()})

    folder = root / "language_model_sft"
    folder.mkdir(parents=True)
    # shards of about equal bytes, as transformers writes them
    total, shards, weight_map = sum(v.numel() * v.element_size() for v in state.values()), 4, {}
    parts, size = [[]], 0
    for key, value in state.items():
        if size >= total / shards * len(parts) and len(parts) < shards:
            parts.append([])
        parts[-1].append(key)
        size += value.numel() * value.element_size()
    for i, part in enumerate(parts):
        name = f"pytorch_model-{i + 1:05d}-of-{len(parts):05d}.bin"
        torch.save({k: state[k] for k in part}, folder / name)
        weight_map.update(dict.fromkeys(part, name))
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", **text}))
    tokenizer.save_pretrained(folder)
    config = VideoLavitConfig(text_config=text, visual_tokenizer_config=visual_config,
                              motion_tokenizer_config=motion_config, text_vocab_size=len(tokenizer))
    config.to_json_file(str(root / "video_lavit_config.json"))
    return root / "video_lavit_config.json", sum(v.numel() * v.element_size() for v in state.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config, size = build_release(tmp / "release", args.hidden, args.layers)
        print(f"checkpoint: {size / 2**20:.0f} MiB fp32 in 4 shards")
        for mode in ("streamed", "whole"):
            out = subprocess.run([sys.executable, "-c", _MEASURE, mode, str(config), str(tmp / "release"), str(tmp / mode)],
                                 check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            peak = int(out)
            print(f"{mode:>8}: peak RSS above baseline {peak / 2**20:7.0f} MiB = {peak / size:.2f} x checkpoint")


if __name__ == "__main__":
    main()
