"""PiTe benchmarks: print a table and write JSON.

On CPU every figure that is compared is a ratio measured in this one run (same machine, same moment); absolute
times are printed for reference only. On a GPU, absolute numbers are meaningful and recorded in RESULTS.md.

    OMP_NUM_THREADS=1 python benchmarks/run.py [--rows overhead,generation,peer,video,features] [--json out.json]

Rows:
- overhead:   PiTe forward+backward with cached features vs LlamaForCausalLM of the same size, same length.  target <= 1.10
- generation: PiTe generate with per-token trajectories vs LlamaForCausalLM.generate, same 32 tokens.       target <= 1.10
- peer:       one video question end to end (vision + prefill + 32 tokens): PiTe 100 frames vs
              VideoLlavaForConditionalGeneration at 8 and 100 frames, same LLM and vision sizes.
- video:      sampling 100 frames of a long video with PiTe's reader vs decoding every frame with PyAV.
- features:   CLIP frames/s (batched) and a training step with cached features vs pixels.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROWS = ("overhead", "generation", "peer", "video", "features")


def timed(function: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of `function` in seconds."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed_pair(first: Callable[[], object], second: Callable[[], object], repeats: int = 7) -> tuple[float, float]:
    """Median wall times of two functions measured alternately, so load on a shared machine hits both alike."""
    first(), second()
    times_first, times_second = [], []
    for _ in range(repeats):
        for function, times in ((first, times_first), (second, times_second)):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
    return statistics.median(times_first), statistics.median(times_second)


def bench_text_config(vocab_size: int = 32001) -> dict:
    """A small Llama that still has Vicuna's vocabulary, so the head-to-trunk cost ratio is realistic."""
    return dict(vocab_size=vocab_size, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=8192, pad_token_id=0)


def bench_vision_config(image_size: int = 112) -> dict:
    return dict(hidden_size=128, intermediate_size=512, projection_dim=128, num_hidden_layers=2, num_attention_heads=4,
                image_size=image_size, patch_size=14)


def pite_model(num_frames: int = 100, image_size: int = 112):
    from pite.modeling_pite import PiTeConfig, PiTeForConditionalGeneration

    config = PiTeConfig(vision_config=bench_vision_config(image_size), text_config=bench_text_config(),
                        num_frames=num_frames, video_token_id=32000)
    torch.manual_seed(0)
    return PiTeForConditionalGeneration(config)


def llama_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**bench_text_config()))


def prompt_ids(num_frames: int, text_tokens: int, video_token_id: int = 32000) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    before = torch.randint(3, 32000, (8,), generator=generator)
    after = torch.randint(3, 32000, (text_tokens - 8,), generator=generator)
    return torch.cat([torch.tensor([1]), before, torch.full((num_frames,), video_token_id), after])[None]


def row_overhead() -> dict:
    """Training step cost of PiTe's additions (adapter, placeholder merge, 2 heads, 2 masked L1 terms)."""
    pite, llama = pite_model().train(), llama_model().train()
    ids = prompt_ids(100, 412)  # 521 tokens, 100 of them frames
    length = ids.shape[1]
    features = torch.randn(1, 100, pite.config.vision_feature_dim)
    point_labels = torch.rand(1, length, 2)
    trajectory_labels = torch.rand(1, length, 3, 100, 2)

    def pite_step():
        pite.zero_grad(set_to_none=True)
        pite(input_ids=ids, video_features=features, labels=ids, point_labels=point_labels,
             trajectory_labels=trajectory_labels, use_cache=False).loss.backward()

    llama_ids = ids.clamp(max=31999)

    def llama_step():
        llama.zero_grad(set_to_none=True)
        llama(input_ids=llama_ids, labels=llama_ids, use_cache=False).loss.backward()

    pite_s, llama_s = timed_pair(pite_step, llama_step)
    return dict(row="overhead", pite_s=pite_s, llama_s=llama_s, ratio=pite_s / llama_s, target=1.10,
                detail=f"fwd+bwd, {length} tokens (100 frames), hidden 256, 4 layers, vocab 32001")


def row_generation() -> dict:
    """Decode cost of returning a point and a trajectory with every token."""
    pite, llama = pite_model().eval(), llama_model().eval()
    ids = prompt_ids(100, 20)
    features = torch.randn(1, 100, pite.config.vision_feature_dim)
    common = dict(max_new_tokens=32, min_new_tokens=32, do_sample=False, pad_token_id=0)

    @torch.no_grad()
    def pite_generate():
        out = pite.generate(input_ids=ids, video_features=features, return_dict_in_generate=True, **common)
        assert out.trajectory_predictions.shape[1] == 32

    llama_ids = ids.clamp(max=31999)  # same prompt length; PiTe's frames come from cached features, no vision work

    @torch.no_grad()
    def llama_generate():
        llama.generate(input_ids=llama_ids, attention_mask=torch.ones_like(ids), **common)

    pite_s, llama_s = timed_pair(pite_generate, llama_generate)
    return dict(row="generation", pite_s=pite_s, llama_s=llama_s, ratio=pite_s / llama_s, target=1.10,
                detail=f"prefill {ids.shape[1]} tokens + 32 greedy tokens, trajectories returned")


def row_peer() -> dict:
    """PiTe's one token per frame against Video-LLaVA's patch tokens, same LLM and vision tower sizes."""
    from transformers import VideoLlavaConfig, VideoLlavaForConditionalGeneration

    image_size = 112
    patches = (image_size // 14) ** 2 + 1  # CLS + patches, as Video-LLaVA feeds them
    results = {}
    pite = pite_model(num_frames=100, image_size=image_size).eval()
    pite_ids = prompt_ids(100, 20)
    pite_pixels = torch.randn(1, 100, 3, image_size, image_size)
    common = dict(max_new_tokens=32, min_new_tokens=32, do_sample=False, pad_token_id=0)

    @torch.no_grad()
    def pite_answer():
        pite.generate(input_ids=pite_ids, pixel_values_videos=pite_pixels, return_dict_in_generate=True, **common)

    results["pite_100f_s"] = timed(pite_answer, repeats=3)
    for frames in (8, 100):
        config = VideoLlavaConfig(
            vision_config=dict(bench_vision_config(image_size), model_type="clip_vision_model"),
            text_config=dict(bench_text_config(32002), model_type="llama"),
            video_token_index=32001, image_token_index=32000, vision_feature_select_strategy="full",
            video_seq_length=frames * patches,
        )
        torch.manual_seed(0)
        peer = VideoLlavaForConditionalGeneration(config).eval()
        ids = torch.cat([prompt_ids(0, 20)[:, :9], torch.full((1, frames * patches), 32001), prompt_ids(0, 20)[:, 9:]], 1)
        pixels = torch.randn(1, frames, 3, image_size, image_size)

        @torch.no_grad()
        def peer_answer():
            peer.generate(input_ids=ids, pixel_values_videos=pixels, **common)

        results[f"video_llava_{frames}f_s"] = timed(peer_answer, repeats=3 if frames == 8 else 1)
        results[f"video_llava_{frames}f_tokens"] = ids.shape[1]
    results["pite_tokens"] = pite_ids.shape[1]
    return dict(row="peer", **results,
                ratio=results["video_llava_8f_s"] / results["pite_100f_s"],
                ratio_100f=results["video_llava_100f_s"] / results["pite_100f_s"],
                detail=f"vision {image_size}px, 2-layer ViT, 4-layer LLM, prefill + 32 tokens; ratio = Video-LLaVA time / PiTe time")


def write_long_video(path: Path, seconds: int = 120, fps: int = 30, size: tuple[int, int] = (854, 480)) -> int:
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(fps * 2)}
        frame = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        for index in range(seconds * fps):
            frame[:] = index % 256
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return seconds * fps


def row_video(seconds: int) -> dict:
    """Seek-based sampling of 100 frames vs a full decode (what a naive reader does)."""
    import av
    import numpy as np

    try:
        from pite.processing import read_video
    except ImportError as error:  # the processor is not installed: report, do not guess
        return dict(row="video", error=f"pite.processing.read_video unavailable: {error}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.mp4"
        total = write_long_video(path, seconds=seconds)

        def full_decode():
            # What a naive reader does: decode and convert every frame, keep the sampled ones.
            wanted = set(np.linspace(0, total - 1, 100).round().astype(int).tolist())
            kept = []
            with av.open(str(path)) as container:
                for index, frame in enumerate(container.decode(video=0)):
                    array = frame.to_ndarray(format="rgb24")
                    if index in wanted:
                        kept.append(array)
            return kept

        pite_s = timed(lambda: read_video(str(path), num_frames=100), repeats=3)
        full_s = timed(full_decode, repeats=1, warmup=0)
    return dict(row="video", pite_s=pite_s, full_decode_s=full_s, ratio=full_s / pite_s, frames_sampled=100,
                frames_in_video=total, detail=f"{seconds} s, 30 fps, 854x480 H.264; ratio = full decode / PiTe reader")


def row_features() -> dict:
    """CLIP throughput and what caching the frozen tower's features saves per training step."""
    pite = pite_model(num_frames=100, image_size=112).train()
    pixels = torch.randn(1, 100, 3, 112, 112)
    with torch.no_grad():
        extract_s = timed(lambda: pite.get_video_features(pixels), repeats=3)
        features = pite.get_video_features(pixels)
    ids = prompt_ids(100, 60)

    def step(**visual):
        pite.zero_grad(set_to_none=True)
        pite(input_ids=ids, labels=ids, use_cache=False, **visual).loss.backward()

    cached_s = timed(lambda: step(video_features=features), repeats=3)
    pixel_s = timed(lambda: step(pixel_values_videos=pixels), repeats=3)
    return dict(row="features", clip_frames_per_s=100 / extract_s, cached_step_s=cached_s, pixel_step_s=pixel_s,
                ratio=pixel_s / cached_s, detail="2-layer 112px ViT; ratio = pixel step / cached-feature step")


def format_table(results: list[dict]) -> str:
    lines = ["| row | ratio | target | figures | setting |", "|---|---|---|---|---|"]
    for result in results:
        if "error" in result:
            lines.append(f"| {result['row']} | - | - | {result['error']} | |")
            continue
        figures = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()
                            if k not in ("row", "ratio", "target", "detail"))
        target = result.get("target")
        verdict = "" if target is None else (" (meets)" if result["ratio"] <= target else " (MISSES)")
        lines.append(f"| {result['row']} | {result['ratio']:.3f}{verdict} | {target or '-'} | {figures} | {result['detail']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {ROWS}")
    parser.add_argument("--json", type=Path, default=None, help="write the results here (atomically)")
    parser.add_argument("--video-seconds", type=int, default=120, help="length of the long test video")
    args = parser.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {ROWS}")
    runners = {"overhead": row_overhead, "generation": row_generation, "peer": row_peer,
               "video": lambda: row_video(args.video_seconds), "features": row_features}
    environment = dict(torch=torch.__version__, threads=torch.get_num_threads(),
                       omp_num_threads=os.environ.get("OMP_NUM_THREADS"), device="cpu",
                       date=time.strftime("%Y-%m-%d"))
    import transformers

    environment["transformers"] = transformers.__version__
    results = []
    for row in rows:
        print(f"running {row} ...", file=sys.stderr, flush=True)
        results.append(runners[row]())
    print(f"environment: {environment}")
    print(format_table(results))
    if args.json:
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(dict(environment=environment, results=results), indent=2))
        os.replace(tmp, args.json)
    missed = [r["row"] for r in results if "target" in r and r["ratio"] > r["target"]]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
