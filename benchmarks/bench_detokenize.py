"""Video detokenizer benchmark.

1. Seconds per denoising step (one classifier-free-guidance UNet call, batch 2) and peak memory of our
   motion-conditioned UNet vs a stock diffusers SVD UNet of the same size (same weights; SVD's context is one
   token per clip, ours 256 motion tokens per frame plus a per-position temporal context).
2. Peak memory of chunked vs unchunked temporal-VAE decoding.

Every measurement runs in a fresh subprocess so peaks do not leak between them (CPU: peak RSS above the
post-setup level, via /proc/self/clear_refs; CUDA: torch.cuda.max_memory_allocated).

    python benchmarks/bench_detokenize.py [--device cpu|cuda] [--steps 3] [--frames 8] [--size 128]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

MID_UNET = dict(
    sample_size=None,
    block_out_channels=(96, 192, 384, 384),
    num_attention_heads=(3, 6, 12, 12),
    cross_attention_dim=512,
    layers_per_block=2,
    addition_time_embed_dim=64,
    projection_class_embeddings_input_dim=192,
)
MID_VAE = dict(block_out_channels=(64, 128, 256, 256), down_block_types=("DownEncoderBlock2D",) * 4, layers_per_block=2)


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class PeakMemory:
    """Peak memory (MiB) above the level at `__enter__`."""

    def __init__(self, device: str):
        self.device = device

    def __enter__(self):
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            try:  # reset VmHWM so the setup's peak is not counted
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
            except OSError as error:
                # the figure is then an upper bound: say so rather than report it as the forward's working set
                print(f"warning: could not reset the peak-RSS counter ({error}); peaks include setup", file=sys.stderr)
            self.base = _rss_kib("VmRSS:") * 1024
        return self

    def __exit__(self, *exc):
        if self.device == "cuda":
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = _rss_kib("VmHWM:") * 1024
        self.mib = (peak - self.base) / 2**20


def worker_unet(kind: str, args) -> dict:
    from diffusers import UNetSpatioTemporalConditionModel

    from video_lavit.modeling.unet_video_lavit import VideoLavitUNetSpatioTemporalConditionModel

    torch.manual_seed(0)
    dtype = torch.float16 if args.device == "cuda" else torch.float32
    config = dict(MID_UNET, in_channels=10, num_frames=args.frames)
    cls = VideoLavitUNetSpatioTemporalConditionModel if kind == "ours" else UNetSpatioTemporalConditionModel
    unet = cls(**config).to(args.device, dtype).eval()
    latent = args.size // 8
    sample = torch.randn(2, args.frames, 10, latent, latent, device=args.device, dtype=dtype)
    dim = config["cross_attention_dim"]
    context = (
        torch.randn(2, args.frames, 256, dim, device=args.device, dtype=dtype)
        if kind == "ours"
        else torch.randn(2, 1, dim, device=args.device, dtype=dtype)
    )
    time_ids = torch.tensor([[6.0, 127.0, 0.02]] * 2, device=args.device, dtype=dtype)
    timestep = torch.tensor(0.4, device=args.device, dtype=dtype)

    def step():
        with torch.no_grad():
            unet(sample, timestep, context, time_ids)
        if args.device == "cuda":
            torch.cuda.synchronize()

    # The peak covers the warm-up call too: measured from after setup, it is the forward's working set
    # (starting after a warm-up would hide memory the allocator kept from it).
    with PeakMemory(args.device) as memory:
        step()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        seconds = (time.perf_counter() - start) / args.steps
    return {"seconds_per_step": seconds, "peak_mib": memory.mib, "params": sum(p.numel() for p in unet.parameters())}


def worker_vae(chunk: int, args) -> dict:
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler

    from video_lavit.conversion.convert_video_detokenizer import SVD_SCHEDULER_CONFIG
    from video_lavit.modeling.modeling_motion_condition import VideoLavitMotionConditionEncoder
    from video_lavit.modeling.unet_video_lavit import VideoLavitUNetSpatioTemporalConditionModel
    from video_lavit.pipelines.pipeline_video_lavit_reconstruction import VideoLavitReconstructionPipeline

    torch.manual_seed(0)
    dtype = torch.float16 if args.device == "cuda" else torch.float32
    with torch.device("meta"):  # decode_latents does not touch the UNet or the motion encoder
        unet, encoder = VideoLavitUNetSpatioTemporalConditionModel(), VideoLavitMotionConditionEncoder()
    vae = AutoencoderKLTemporalDecoder(**MID_VAE).to(args.device, dtype).eval()
    pipe = VideoLavitReconstructionPipeline(
        vae=vae, unet=unet, scheduler=EulerDiscreteScheduler.from_config(SVD_SCHEDULER_CONFIG), motion_encoder=encoder
    )
    frames = args.vae_frames
    latents = torch.randn(1, frames, 4, args.size // 8, args.size // 8, device=args.device, dtype=dtype)
    with PeakMemory(args.device) as memory, torch.no_grad():
        start = time.perf_counter()
        pipe.decode_latents(latents, frames, decode_chunk_size=chunk)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mib": memory.mib}


def _run_worker(spec: str, argv: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", spec, *argv], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="square video size in pixels (multiple of 64)")
    parser.add_argument("--vae-frames", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads per measurement (1 keeps timings stable on a shared machine)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        kind, _, value = args.worker.partition(":")
        result = worker_unet(value, args) if kind == "unet" else worker_vae(int(value), args)
        print(json.dumps(result))
        return 0

    passthrough = [f"--device={args.device}", f"--steps={args.steps}", f"--frames={args.frames}",
                   f"--size={args.size}", f"--vae-frames={args.vae_frames}", f"--threads={args.threads}"]
    print(f"device={args.device} threads={torch.get_num_threads()} video {args.frames}x{args.size}x{args.size}, "
          f"CFG batch 2, UNet blocks {MID_UNET['block_out_channels']}")
    ours, stock = _run_worker("unet:ours", passthrough), _run_worker("unet:stock", passthrough)
    print(f"{'UNet':<28}{'params':>12}{'s/step':>10}{'peak MiB':>10}")
    for name, r in (("Video-LaVIT (motion ctx)", ours), ("stock SVD (1 token ctx)", stock)):
        print(f"{name:<28}{r['params']:>12,}{r['seconds_per_step']:>10.3f}{r['peak_mib']:>10.0f}")
    print(f"ratio ours/stock: time {ours['seconds_per_step'] / stock['seconds_per_step']:.2f}x, "
          f"peak memory {ours['peak_mib'] / max(stock['peak_mib'], 1e-6):.2f}x")

    print(f"\nTemporal VAE decode, {args.vae_frames} frames at {args.size}x{args.size}, blocks {MID_VAE['block_out_channels']}")
    print(f"{'decode_chunk_size':<20}{'seconds':>10}{'peak MiB':>10}")
    results = {}
    for chunk in sorted({args.vae_frames, 8, 1}, reverse=True):
        results[chunk] = r = _run_worker(f"vae:{chunk}", passthrough)
        print(f"{chunk:<20}{r['seconds']:>10.2f}{r['peak_mib']:>10.0f}")
    full, eight = results[args.vae_frames], results[8]
    print(f"peak memory unchunked/chunk-8: {full['peak_mib'] / max(eight['peak_mib'], 1e-6):.2f}x")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
