"""Video input beyond the reader's speed: memory of reading + preprocessing a 4K video, and feature extraction's
throughput with DataLoader workers against without.

`row_video_memory` runs each case in a fresh interpreter: the peak resident memory above that interpreter's own
baseline (after its imports) is what one question about the video costs, free of what earlier rows allocated.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .measure import result, skipped, timed_alternating
from .models import BenchSizes, pite_model
from .video import write_test_video

MEMORY_TARGET_MB = 400
UHD = (3840, 2160)

# One case of the memory row, in a fresh interpreter: prints {"baseline_mb", "peak_above_mb", "seconds", "sha256"}.
_MEMORY_CASE = """
import hashlib, json, sys, time
from pite.processing import PiTeVideoProcessor, read_video
from pite.processing.video_reading_pite import torchcodec_available
torchcodec_available()  # imports torchcodec where it loads, before the baseline
path, mode, backend, num_frames = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
processor = PiTeVideoProcessor(num_frames=num_frames, video_backend=backend)

def status(field):
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) for line in lines if line.startswith(field + ":")) / 1024

with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")
baseline = status("VmRSS")
start = time.perf_counter()
if mode == "before":  # every sampled frame decoded at full resolution, then resized
    frames = read_video(path, num_frames, backend=backend).frames
    pixels = processor(frames, return_tensors="pt")["pixel_values_videos"]
else:  # each frame resized as soon as it is decoded
    pixels = processor(path, return_tensors="pt")["pixel_values_videos"]
seconds = time.perf_counter() - start
print(json.dumps(dict(baseline_mb=baseline, peak_above_mb=status("VmHWM") - baseline, seconds=seconds,
                      sha256=hashlib.sha256(pixels.numpy().tobytes()).hexdigest(), shape=list(pixels.shape))))
"""


def _memory_case(path: Path, mode: str, backend: str, num_frames: int) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-c", _MEMORY_CASE, str(path), mode, backend, str(num_frames)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if run.returncode != 0:
        raise RuntimeError(f"memory case {mode}/{backend} failed: {run.stderr.strip()[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def row_video_memory(sizes: BenchSizes) -> list[dict[str, Any]]:
    """Peak memory above the interpreter's baseline and time of reading + preprocessing (CLIP 224 px) all
    `uhd_frames` frames of a 4K H.264 clip: today's path (every frame kept at full resolution, then resized) against
    resizing each frame as it is decoded, per backend; the pixels of the two must be identical."""
    if not os.path.exists("/proc/self/clear_refs"):
        return [skipped("video_memory", "needs Linux's /proc/self/clear_refs to reset the peak resident memory")]
    from pite.processing.video_reading_pite import torchcodec_available

    backends = ["pyav"] + (["torchcodec"] if torchcodec_available() else [])
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "uhd.mp4"
        write_test_video(path, sizes.uhd_frames, 25, *UHD, gop=250)
        for backend in backends:
            before, after = (_memory_case(path, mode, backend, sizes.uhd_frames) for mode in ("before", "after"))
            if before["sha256"] != after["sha256"]:
                raise RuntimeError(f"{backend}: resizing while decoding changed the pixels")
            records.append(
                result(
                    f"video_memory ({backend})",
                    after["peak_above_mb"],
                    "MB above the interpreter's baseline, resizing while decoding",
                    dict(
                        before_peak_above_mb=round(before["peak_above_mb"]),
                        after_peak_above_mb=round(after["peak_above_mb"]),
                        before_s=before["seconds"],
                        after_s=after["seconds"],
                        baseline_mb=round(after["baseline_mb"]),
                        same_pixels=True,
                        pixels_shape=after["shape"],
                    ),
                    f"{sizes.uhd_frames} of {sizes.uhd_frames} frames of a {UHD[0]}x{UHD[1]} H.264 clip, CLIP "
                    "resize + crop to 224 px, read + preprocess in a fresh interpreter, 1 thread",
                    target=MEMORY_TARGET_MB,
                )
            )
    return records


class VideoOnlyProcessor:
    """What `extract_features` needs of a `PiTeProcessor` for videos (`__call__(videos=...)`, `image_processor`,
    `num_frames`), without a tokenizer."""

    def __init__(self, image_processor: Any, num_frames: int) -> None:
        from pite.processing import PiTeVideoProcessor

        self.image_processor, self.num_frames = image_processor, num_frames
        self.video_processor = PiTeVideoProcessor.from_image_processor(image_processor, num_frames=num_frames)

    def __call__(self, videos: Any = None, return_tensors: str | None = None) -> Any:
        return self.video_processor(videos, return_tensors=return_tensors)


def row_extraction(sizes: BenchSizes) -> dict[str, Any]:
    """`extract_features` over `extraction_videos` videos (N frames each, the benchmark's tiny CLIP tower): wall time
    and frames/s with 0, 1 and 2 DataLoader workers, features compared, and the time split of one file: decode
    (`read_video`), preprocess (the processor minus decoding) and the tower. Ratio: throughput with the best worker
    count / without workers."""
    import torch
    from transformers import CLIPImageProcessorPil

    from pite.processing import read_video
    from pite.training import FeatureCache, extract_features

    model = pite_model(sizes).eval()
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": sizes.image_size}, crop_size={"height": sizes.image_size, "width": sizes.image_size}
    )
    processor = VideoOnlyProcessor(image_processor, sizes.num_frames)
    counter = itertools.count()
    with tempfile.TemporaryDirectory() as tmp:
        media = Path(tmp) / "media"
        media.mkdir()
        seconds = 10
        for index in range(sizes.extraction_videos):
            write_test_video(
                media / f"v{index}.mp4",
                seconds * sizes.video_fps,
                sizes.video_fps,
                sizes.video_width,
                sizes.video_height,
                gop=60,
            )
        caches: dict[int, str] = {}

        def extract(workers: int) -> None:
            caches[workers] = os.path.join(tmp, f"cache{next(counter)}")
            extract_features(
                model, processor, str(media), caches[workers], batch_size=4, progress=False, num_workers=workers
            )

        times = timed_alternating(
            {workers: (lambda w=workers: extract(w)) for workers in (0, 1, 2)},
            repeats=max(1, sizes.repeats // 3),
            warmup=0,
        )
        reference = FeatureCache(caches[0])
        same = all(
            torch.equal(FeatureCache(caches[workers]).load(key), reference.load(key))
            for workers in (1, 2)
            for key in reference.index["entries"]
        )
        one = str(media / "v0.mp4")
        split = timed_alternating(
            {
                "decode": lambda: read_video(one, sizes.num_frames),
                "decode_preprocess": lambda: processor(videos=[one], return_tensors="pt"),
            },
            repeats=max(1, sizes.repeats // 2),
        )
        pixels = processor(videos=[one], return_tensors="pt")["pixel_values_videos"]
        with torch.no_grad():
            tower = timed_alternating(
                {"tower": lambda: model.get_video_features(pixels)}, repeats=max(1, sizes.repeats // 2)
            )["tower"]
    frames = sizes.extraction_videos * sizes.num_frames
    best = min((1, 2), key=times.get)
    return result(
        "extraction",
        times[0] / times[best],
        f"frames/s with {best} worker(s) / without",
        dict(
            wall_s_0_workers=times[0],
            wall_s_1_worker=times[1],
            wall_s_2_workers=times[2],
            frames_per_s_0_workers=frames / times[0],
            frames_per_s_1_worker=frames / times[1],
            frames_per_s_2_workers=frames / times[2],
            same_features=same,
            per_file_decode_s=split["decode"],
            per_file_preprocess_s=split["decode_preprocess"] - split["decode"],
            per_file_tower_s=tower,
        ),
        f"{sizes.extraction_videos} videos of {seconds} s ({sizes.video_width}x{sizes.video_height} H.264, key frame "
        f"every 60), {sizes.num_frames} frames each to {sizes.image_size} px, batches of 4 files, "
        f"{sizes.vision_layers}-layer CLIP tower; {os.cpu_count()} cores, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS')}",
    )
