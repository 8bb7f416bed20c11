"""Speed and memory of the video preprocessing, measured against a floor in the same run.

Floor = the libav work the recipe cannot avoid: decode the source, fps filter, mpeg4 re-encode, decode the
re-encode (no motion-vector export, no pooling, no keyframe transform). Ours = the full
``VideoLavitVideoProcessor`` call. Memory: peak RSS and peak traced allocations of a subprocess that processes a
short video and the same video looped ``--loops`` times.

    python benchmarks/bench_preprocess.py [--video PATH] [--repeats 7] [--loops 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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


def floor_pass(path: str, fps: int = 6, threads: int = 16, gop: int = 12) -> int:
    """Decode -> fps filter -> mpeg4 encode -> decode, nothing else. Returns the number of source frames.

    Same codec settings as the processor (source decoder threads, GOP, encoder slice threads, one decoder
    thread), so that the only differences are motion-vector export and what is done with the frames."""
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
                    encoder.gop_size = gop
                    encoder.thread_type, encoder.thread_count = "SLICE", threads
                    decoder = av.CodecContext.create("mpeg4", "r")
                    decoder.thread_count = 1
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


def timed(fn) -> tuple[float, float]:
    """Wall-clock and process CPU time (all threads) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def interleaved(floor, ours, repeats: int) -> tuple[list, list]:
    """Alternate floor and ours ``repeats`` times, so that load changes on a shared machine hit both alike."""
    floors, ourss = [], []
    for _ in range(repeats):
        floors.append(timed(floor))
        ourss.append(timed(ours))
    return floors, ourss


def report(label: str, frames: int, floors: list, ourss: list) -> None:
    """Median times and the median of the per-repetition ratios (CPU time of all threads is the fairer figure
    on a shared, loaded machine)."""
    print(f"{label} ({frames} source frames, {len(floors)} interleaved repetitions)")
    for name, runs in (("floor (decode+fps+re-encode+decode)", floors), ("ours (VideoLavitVideoProcessor)", ourss)):
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        print(f"  {name:38s} median wall {wall:7.3f} s = {frames / wall:6.0f} frames/s | cpu {cpu:7.3f} s")
    for axis, name in ((1, "cpu"), (0, "wall")):
        ratios = sorted(o[axis] / f[axis] for f, o in zip(floors, ourss))
        print(f"  ratio ours/floor ({name}): median {statistics.median(ratios):.3f}x "
              f"(range {ratios[0]:.3f}-{ratios[-1]:.3f})")


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
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--loops", type=int, default=10)
    args = parser.parse_args(argv)

    from video_lavit.processing.video_processing_video_lavit import VideoLavitVideoProcessor

    processor = VideoLavitVideoProcessor()
    frames = floor_pass(args.video)
    ours_pass(args.video, processor)  # warm-up (imports, codec init)
    report(f"short video {args.video}", frames,
           *interleaved(lambda: floor_pass(args.video), lambda: ours_pass(args.video, processor), args.repeats))

    with tempfile.TemporaryDirectory() as tmp:
        looped = os.path.join(tmp, "looped.mp4")
        long_frames = make_looped_video(args.video, args.loops, looped)
        report(f"long video (looped x{args.loops})", long_frames,
               *interleaved(lambda: floor_pass(looped), lambda: ours_pass(looped, processor), args.repeats))
        short_mem, long_mem = memory_probe(args.video), memory_probe(looped)
    print(f"peak memory short ({frames} frames): RSS {short_mem['peak_rss_mb']:.0f} MB, "
          f"traced {short_mem['peak_traced_mb']:.1f} MB, {short_mem['clips']} clips")
    print(f"peak memory long  ({long_frames} frames): RSS {long_mem['peak_rss_mb']:.0f} MB, "
          f"traced {long_mem['peak_traced_mb']:.1f} MB, {long_mem['clips']} clips")


if __name__ == "__main__":
    main()
