"""Peak memory of the conversions: the streamed LLM vs the whole LLM checkpoint at once; the video detokenizer built
on meta from a memory-mapped file vs built materialised.

Builds a fake `language_model_sft/` (a ~100M-parameter Llama in fp32, 4 `.bin` shards, plus the parity fixtures'
keyframe/motion tokenizers under their SFT prefixes), then converts it in two fresh processes:

* `convert_video_lavit --parts understanding` (streamed, `--max-shard-size 50MB`);
* `convert_language_model.convert_checkpoint(..., "understanding")` (the component converter: all shards in memory).

Then a fake `video_detokenizer/` (the released UNet layout at `--unet-width` of its channel widths, bf16 `.bin` with
the motion encoder, a tiny VAE) is converted to bf16 in two fresh processes:

* `convert_video_detokenizer` (UNet built on meta, the memory-mapped tensors assigned);
* `materialised`: the previous way, modules built in fp32 on CPU and the whole file read before loading.

Prints each process's peak resident memory (Linux VmHWM, reset after the imports) above its after-import RSS, as a
multiple of the checkpoint size.

    OMP_NUM_THREADS=1 python benchmarks/bench_convert_video_lavit.py [--layers 8] [--hidden 1024] [--unet-width 0.4]
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

_MEASURE_DETOKENIZER = r"""
import json, sys, torch
from pathlib import Path
from video_lavit.conversion import convert_video_detokenizer as cvd
def status(field):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(field))
open("/proc/self/clear_refs", "w").write("5")
base = status("VmRSS:")
root, out, encoder = Path(sys.argv[2]), Path(sys.argv[3]), json.loads(sys.argv[4])
if sys.argv[1] == "meta":
    cvd.convert_video_detokenizer(root, out, dtype=torch.bfloat16, motion_encoder_config=encoder)
else:
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler
    from video_lavit.pipelines.pipeline_video_lavit_reconstruction import VideoLavitReconstructionPipeline
    unet_dir = root / "video_detokenizer" / "unet"
    config = cvd.unet_config_from_original(json.loads((unet_dir / "config.json").read_text()))
    unet, motion_encoder = cvd.build_detokenizer_modules(config, encoder)
    state = torch.load(unet_dir / "diffusion_pytorch_model.bin", map_location="cpu", weights_only=True)
    cvd.load_converted_weights(unet, motion_encoder, state)
    del state
    vae = AutoencoderKLTemporalDecoder.from_pretrained(root / "video_detokenizer" / "vae")
    pipeline = VideoLavitReconstructionPipeline(vae=vae, unet=unet, motion_encoder=motion_encoder,
                                                scheduler=EulerDiscreteScheduler.from_config(cvd.SVD_SCHEDULER_CONFIG))
    pipeline.to(dtype=torch.bfloat16)
    pipeline.save_pretrained(out, safe_serialization=True)
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


def build_detokenizer_release(root: Path, width: float) -> tuple[dict, int]:
    """Write a fake `video_detokenizer/` (released block layout, channels scaled by `width`, bf16 `.bin` of UNet +
    motion encoder, tiny VAE); returns (motion encoder config, checkpoint bytes)."""
    import torch
    from diffusers import AutoencoderKLTemporalDecoder

    from video_lavit.conversion.convert_video_detokenizer import build_detokenizer_modules

    heads = (5, 10, 20, 20)
    # multiples of 160 stay divisible by the 32 norm groups and by every head count
    channels = tuple(max(160, round(c * width / 160) * 160) for c in (320, 640, 1280, 1280))
    unet_config = {"block_out_channels": channels, "num_attention_heads": heads}
    encoder_config = {}
    torch.manual_seed(0)
    unet, encoder = build_detokenizer_modules(unet_config, encoder_config)
    state = {k: v.to(torch.bfloat16) for k, v in unet.state_dict().items()}
    state.update({"motion_encoder." + k: v.to(torch.bfloat16) for k, v in encoder.state_dict().items()})
    del unet, encoder
    folder = root / "video_detokenizer"
    (folder / "unet").mkdir(parents=True)
    torch.save(state, folder / "unet" / "diffusion_pytorch_model.bin")
    (folder / "unet" / "config.json").write_text(json.dumps(unet_config))
    AutoencoderKLTemporalDecoder(block_out_channels=(32, 32, 32, 32), down_block_types=("DownEncoderBlock2D",) * 4,
                                 layers_per_block=1).save_pretrained(folder / "vae")
    return encoder_config, sum(v.numel() * v.element_size() for v in state.values())


def _peak(script: str, *args: str) -> int:
    out = subprocess.run([sys.executable, "-c", script, *args], check=True, capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--unet-width", type=float, default=0.4, help="fraction of the released UNet channel widths")
    parser.add_argument("--skip-llm", action="store_true", help="only measure the video detokenizer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_llm:
            config, size = build_release(tmp / "release", args.hidden, args.layers)
            print(f"LLM checkpoint: {size / 2**20:.0f} MiB fp32 in 4 shards")
            for mode in ("streamed", "whole"):
                peak = _peak(_MEASURE, mode, str(config), str(tmp / "release"), str(tmp / mode))
                print(f"{mode:>12}: peak RSS above baseline {peak / 2**20:7.0f} MiB = {peak / size:.2f} x checkpoint")
        encoder, size = build_detokenizer_release(tmp / "detok_release", args.unet_width)
        print(f"video detokenizer checkpoint: {size / 2**20:.0f} MiB bf16 (UNet at {args.unet_width} x width)")
        for mode in ("meta", "materialised"):
            peak = _peak(_MEASURE_DETOKENIZER, mode, str(tmp / "detok_release"), str(tmp / f"detok_{mode}"),
                         json.dumps(encoder))
            print(f"{mode:>12}: peak RSS above baseline {peak / 2**20:7.0f} MiB = {peak / size:.2f} x checkpoint")


if __name__ == "__main__":
    main()
