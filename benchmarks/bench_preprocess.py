"""Speed and memory of the video preprocessing, measured against a floor in the same run.

Floor = the libav work the recipe cannot avoid: decode the source, fps filter, mpeg4 re-encode, decode the
re-encode (no motion-vector export, no pooling, no keyframe transform). Ours = the full
``VideoLavitVideoProcessor`` call. Memory: peak RSS and peak traced allocations of a subprocess that processes a
short video and the same video looped ``--loops`` times.

    python benchmarks/bench_preprocess.py [--video PATH] [--repeats 3] [--loops 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
from av.filter import Graph

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VIDEO = ROOT.parent / "shared" / "testdata" / "video7013.mp4"


def floor_pass(path: str, fps: int = 6, threads: int = 16) -> int:
    """Decode -> fps filter -> mpeg4 encode -> decode, nothing else. Returns the number of source frames."""
    count = 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        graph = encoder = decoder = None
        sink_frames = 0

        def drain(frame):
            nonlocal encoder, decoder, sink_frames
            if frame is not None:
                if encoder is None:
                    encoder = av.CodecContext.create("mpeg4", "w")
                    encoder.width, encoder.height, encoder.pix_fmt = frame.width, frame.height, "yuv420p"
                    encoder.bit_rate, encoder.time_base, encoder.framerate = 8_000_000, Fraction(1, fps), fps
                    encoder.thread_type, encoder.thread_count = "SLICE", threads
                    decoder = av.CodecContext.create("mpeg4", "r")
                frame.pts, frame.time_base = sink_frames, encoder.time_base
                sink_frames += 1
            for packet in encoder.encode(frame):
                for _ in decoder.decode(packet):
                    pass
            if frame is None:
                for _ in decoder.decode(None):
                    pass

        for frame in container.decode(stream):
            if graph is None:
                graph = Graph()
                src = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                                       time_base=stream.time_base)
                fps_node, fmt, sink = graph.add("fps", str(fps)), graph.add("format", "yuv420p"), graph.add("buffersink")
                src.link_to(fps_node)
                fps_node.link_to(fmt)
                fmt.link_to(sink)
                graph.configure()
            count += 1
            graph.push(frame)
            while True:
                try:
                    drain(graph.pull())
                except (av.BlockingIOError, av.EOFError):
                    break
        graph.push(None)
        while True:
            try:
                drain(graph.pull())
            except (av.BlockingIOError, av.EOFError):
                break
        drain(None)
    return count


def ours_pass(path: str, processor) -> None:
    processor(path, return_tensors="pt")


def best_time(fn, repeats: int) -> tuple[float, float]:
    """Best wall-clock and best process CPU time (all threads) over ``repeats`` runs. CPU time is the fairer
    figure on a shared, loaded machine."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def report(label: str, frames: int, floor: tuple[float, float], ours: tuple[float, float]) -> None:
    print(f"{label} ({frames} source frames)")
    for name, (wall, cpu) in (("floor (decode+fps+re-encode+decode)", floor), ("ours (VideoLavitVideoProcessor)", ours)):
        print(f"  {name:38s} wall {wall:7.3f} s = {frames / wall:6.0f} frames/s | cpu {cpu:7.3f} s")
    print(f"  ratio ours/floor: wall {ours[0] / floor[0]:.3f}x, cpu {ours[1] / floor[1]:.3f}x")


def make_looped_video(source: str, loops: int, out: str) -> int:
    """Concatenate ``loops`` copies of ``source`` into an H.264 mp4 (PyAV only). Returns the frame count."""
    with av.open(source) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        rate = stream.average_rate or Fraction(30)
    with av.open(out, mode="w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "18"}
        index = 0
        for _ in range(loops):
            for image in frames:
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = index
                index += 1
                container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return index


MEMORY_PROBE = r"""
import json, resource, sys, tracemalloc
from video_lavit.processing.video_processing_video_lavit import VideoLavitVideoProcessor
processor = VideoLavitVideoProcessor()
tracemalloc.start()
out = processor(sys.argv[1], return_tensors="pt")
_, peak = tracemalloc.get_traced_memory()
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "peak_traced_mb": peak / 2**20, "clips": int(out["clips_per_video"][0])}))
"""


def memory_probe(path: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, path], capture_output=True, text=True, env=env,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", default=str(DEFAULT_VIDEO))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loops", type=int, default=10)
    args = parser.parse_args(argv)

    from video_lavit.processing.video_processing_video_lavit import VideoLavitVideoProcessor

    processor = VideoLavitVideoProcessor()
    frames = floor_pass(args.video)
    ours_pass(args.video, processor)  # warm-up (imports, codec init)
    floor_s = best_time(lambda: floor_pass(args.video), args.repeats)
    ours_s = best_time(lambda: ours_pass(args.video, processor), args.repeats)
    report(f"short video {args.video}", frames, floor_s, ours_s)

    with tempfile.TemporaryDirectory() as tmp:
        looped = os.path.join(tmp, "looped.mp4")
        long_frames = make_looped_video(args.video, args.loops, looped)
        long_floor = best_time(lambda: floor_pass(looped), args.repeats)
        long_ours = best_time(lambda: ours_pass(looped, processor), args.repeats)
        report(f"long video (looped x{args.loops})", long_frames, long_floor, long_ours)
        short_mem, long_mem = memory_probe(args.video), memory_probe(looped)
    print(f"peak memory short ({frames} frames): RSS {short_mem['peak_rss_mb']:.0f} MB, "
          f"traced {short_mem['peak_traced_mb']:.1f} MB, {short_mem['clips']} clips")
    print(f"peak memory long  ({long_frames} frames): RSS {long_mem['peak_rss_mb']:.0f} MB, "
          f"traced {long_mem['peak_traced_mb']:.1f} MB, {long_mem['clips']} clips")


if __name__ == "__main__":
    main()
