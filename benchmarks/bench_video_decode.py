"""Video decoding throughput: PyAV (the project's decoder) beside torchcodec, on the same files, in one run.

    python benchmarks/bench_video_decode.py                  # the moving digits and a generated 224 px video
    python benchmarks/bench_video_decode.py --rounds 5

Beside them, ``PyAV, before``: the project's earlier PyAV path (frame threads, and a new RGB converter set up
for every frame by ``frame.to_ndarray(format="rgb24")``), kept here to show what reusing one converter and
the codec's default threading gained. Both PyAV paths must return the same pixels on the first clips before
anything is timed (torchcodec converts colours its own way).

Two workloads, each timed in alternating rounds (decoder A, decoder B, A, B, ...):

- clips of the bundled moving digits (8 frames, 2 apart, of 16-frame 48 px mp4 files), as training reads them;
- 16-frame clips at random starts of one generated 224 px, 300-frame H.264 video (a longer, larger file).

A decoder that cannot be imported or cannot load its libraries (torchcodec needs FFmpeg's shared libraries
on the system) is reported as unavailable with its reason, and the other is timed alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_step import cpu_name  # noqa: E402
from jepa_torch.data.moving_digits import moving_digits_folder  # noqa: E402
from jepa_torch.data.video import clip_indices, frame_count, read_frames, video_folder  # noqa: E402

Decoder = Callable[[str, list[int]], np.ndarray]


def _torchcodec() -> Decoder | str:
    try:
        from torchcodec.decoders import VideoDecoder
    except Exception as exc:  # ImportError, or RuntimeError when FFmpeg's libraries are missing
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"

    def decode(path: str, indices: list[int]) -> np.ndarray:
        frames = VideoDecoder(path).get_frames_at(indices=indices).data  # (T, C, H, W) uint8
        return frames.permute(0, 2, 3, 1).numpy()

    return decode


def _pyav_before(path: str, indices: list[int]) -> np.ndarray:
    import av

    wanted, got = sorted(set(indices)), {}
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                got[i] = frame.to_ndarray(format="rgb24")
            if i >= wanted[-1]:
                break
    return np.stack([got[i] for i in indices])


def _long_video(folder: Path, frames: int = 300, side: int = 224) -> str:
    import av

    path = folder / "long.mp4"
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        for t in range(frames):  # a textured frame panning right, so every frame differs
            frame = np.roll(base, t, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return str(path)


def _time(decode: Decoder, jobs: list[tuple[str, list[int]]]) -> float:
    start = time.perf_counter()
    for path, indices in jobs:
        decode(path, indices)
    return len(jobs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clips", type=int, default=300, help="moving-digits clips per round")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    import av

    print(f"{cpu_name()}, {torch.get_num_threads()} threads; PyAV {av.__version__} "
          f"(FFmpeg in its wheel)")
    decoders: dict[str, Decoder] = {"PyAV": read_frames, "PyAV, before": _pyav_before}
    other = _torchcodec()
    if isinstance(other, str):
        print(f"torchcodec: unavailable ({other})")
    else:
        decoders["torchcodec"] = other
    paths = video_folder(str(moving_digits_folder())).paths
    rng = np.random.default_rng(0)
    digits = [(paths[i], clip_indices(16, 8, 2, int(rng.integers(0, 2)))) for i in rng.choice(len(paths), args.clips)]
    with tempfile.TemporaryDirectory() as scratch:
        long = _long_video(Path(scratch))
        n = frame_count(long)
        starts = rng.integers(0, n - 16, 20)
        long_jobs = [(long, clip_indices(n, 16, 1, int(s))) for s in starts]
        for name, jobs in (("moving digits (the bundled set), 8-frame clips 2 apart", digits),
                           (f"one {n}-frame 224 px video, 16-frame clips at random starts", long_jobs)):
            for key, decode in decoders.items():
                for path, indices in jobs[:3] if key == "PyAV, before" else ():
                    if not np.array_equal(decode(path, indices), read_frames(path, indices)):
                        raise SystemExit(f"{key} decodes {path} frames {indices} differently from read_frames")
            rates: dict[str, list[float]] = {k: [] for k in decoders}
            for r in range(args.rounds):
                order = list(decoders.items())
                for key, decode in order if r % 2 == 0 else order[::-1]:
                    rates[key].append(_time(decode, jobs))
            print(f"\n{name} ({len(jobs)} clips a round, {args.rounds} alternating rounds): clips/s")
            for key, values in rates.items():
                print(f"  {key:14s} median {statistics.median(values):8.1f}   range {min(values):.1f} .. {max(values):.1f}")


if __name__ == "__main__":
    main()
