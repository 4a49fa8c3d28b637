"""The core rows: PiTe's overhead over plain Llama (training and generation), the Video-LLaVA peer, features."""

from __future__ import annotations

from typing import Any

import torch

from .measure import result, seconds_ratio, timed, timed_alternating
from .models import (
    BenchSizes,
    as_plain_text,
    greedy_kwargs,
    llama_model,
    pite_model,
    prompt_ids,
    text_config,
    vision_config,
)

OVERHEAD_TARGET = 1.10


def row_overhead(sizes: BenchSizes) -> dict[str, Any]:
    """Training-step cost of PiTe's additions (adapter, placeholder merge, 2 heads, 2 masked L1 terms).

    From cached features.
    """
    pite, llama = pite_model(sizes).train(), llama_model(sizes).train()
    ids = prompt_ids(sizes, sizes.num_frames, sizes.train_text_tokens)
    length = ids.shape[1]
    features = torch.randn(1, sizes.num_frames, pite.config.vision_feature_dim)
    point_labels = torch.rand(1, length, 2)
    trajectory_labels = torch.rand(1, length, pite.config.num_trajectory_points, sizes.num_frames, 2)
    llama_ids = as_plain_text(ids, sizes)

    def pite_step() -> None:
        pite.zero_grad(set_to_none=True)
        pite(
            input_ids=ids,
            video_features=features,
            labels=ids,
            point_labels=point_labels,
            trajectory_labels=trajectory_labels,
            use_cache=False,
        ).loss.backward()

    def llama_step() -> None:
        llama.zero_grad(set_to_none=True)
        llama(input_ids=llama_ids, labels=llama_ids, use_cache=False).loss.backward()

    times = timed_alternating({"pite": pite_step, "llama": llama_step}, repeats=sizes.repeats)
    return seconds_ratio(
        "overhead",
        times,
        "pite",
        "llama",
        "PiTe step / Llama step",
        f"fwd+bwd, {length} tokens ({sizes.num_frames} frames, cached features), hidden {sizes.hidden_size}, "
        f"{sizes.num_layers} layers, vocab {sizes.vocab_size}, both L1 terms",
        tokens=length,
        target=OVERHEAD_TARGET,
    )


def row_generation(sizes: BenchSizes) -> dict[str, Any]:
    """Decode cost of returning a point and a trajectory with every token, against plain Llama on the same tokens.

    The library's decode step keeps `<video>` out with `bad_words_ids` (a mask built once, not `suppress_tokens`'
    per-step `isin` over the vocabulary) and carries its forward signature (transformers inspects it every step)."""
    pite, llama = pite_model(sizes).eval(), llama_model(sizes).eval()
    ids = prompt_ids(sizes, sizes.num_frames, sizes.prompt_text_tokens)
    features = torch.randn(1, sizes.num_frames, pite.config.vision_feature_dim)
    llama_ids = as_plain_text(ids, sizes)  # same length; PiTe's frames come from cached features, no vision work
    common = greedy_kwargs(sizes)

    @torch.no_grad()
    def pite_generate() -> None:
        out = pite.generate(input_ids=ids, video_features=features, return_dict_in_generate=True, **common)
        if out.trajectory_predictions.shape[1] != sizes.new_tokens:
            raise RuntimeError(f"expected {sizes.new_tokens} trajectories, got {out.trajectory_predictions.shape[1]}")

    @torch.no_grad()
    def llama_generate() -> None:
        llama.generate(input_ids=llama_ids, attention_mask=torch.ones_like(ids), **common)

    # Decoding is quick: twice the repeats, for a tighter median on the targeted ratio.
    times = timed_alternating({"pite": pite_generate, "llama": llama_generate}, repeats=2 * sizes.repeats + 1)
    return seconds_ratio(
        "generation",
        times,
        "pite",
        "llama",
        "PiTe generate / Llama generate",
        f"prefill {ids.shape[1]} tokens + {sizes.new_tokens} greedy tokens, per-token points and trajectories "
        "returned",
        target=OVERHEAD_TARGET,
    )


def row_peer(sizes: BenchSizes) -> list[dict[str, Any]]:
    """One video question end to end (vision + prefill + new tokens): PiTe's one token per frame against
    Video-LLaVA's CLS + patch tokens per frame, same LLM and vision tower sizes, at 8 and at `num_frames` frames."""
    from transformers import VideoLlavaConfig, VideoLlavaForConditionalGeneration

    patches = (sizes.image_size // 14) ** 2 + 1  # CLS + patches, as Video-LLaVA feeds them
    common = greedy_kwargs(sizes)
    pite = pite_model(sizes).eval()
    pite_ids = prompt_ids(sizes, sizes.num_frames, sizes.prompt_text_tokens)
    pite_pixels = torch.randn(1, sizes.num_frames, 3, sizes.image_size, sizes.image_size)

    @torch.no_grad()
    def pite_answer() -> None:
        pite.generate(input_ids=pite_ids, pixel_values_videos=pite_pixels, return_dict_in_generate=True, **common)

    records = []
    # Video-LLaVA's vocabulary: ours plus one row; <image> is our <video> id, <video> the new last id.
    image_token, video_token = sizes.vocab_size - 1, sizes.vocab_size
    text = prompt_ids(sizes, 0, sizes.prompt_text_tokens)
    for frames in sorted({8, sizes.num_frames}):
        config = VideoLlavaConfig(
            vision_config=dict(vision_config(sizes), model_type="clip_vision_model"),
            text_config=dict(text_config(sizes, sizes.vocab_size + 1), model_type="llama"),
            video_token_index=video_token,
            image_token_index=image_token,
            vision_feature_select_strategy="full",
            video_seq_length=frames * patches,
        )
        torch.manual_seed(0)
        peer = VideoLlavaForConditionalGeneration(config).eval()
        ids = torch.cat([text[:, :9], torch.full((1, frames * patches), video_token), text[:, 9:]], 1)
        pixels = torch.randn(1, frames, 3, sizes.image_size, sizes.image_size)

        @torch.no_grad()
        def peer_answer(peer: VideoLlavaForConditionalGeneration = peer) -> None:  # this iteration's model, bound
            peer.generate(input_ids=ids, pixel_values_videos=pixels, **common)

        # Long peer runs take seconds each: fewer repeats, still alternated with PiTe.
        repeats = max(1, sizes.repeats // (2 if frames <= 8 else 4))
        times = timed_alternating({"pite": pite_answer, "peer": peer_answer}, repeats=repeats)
        records.append(
            result(
                f"peer ({frames} frames)",
                times["peer"] / times["pite"],
                "Video-LLaVA time / PiTe time",
                dict(
                    pite_s=times["pite"],
                    pite_frames=sizes.num_frames,
                    pite_tokens=pite_ids.shape[1],
                    video_llava_s=times["peer"],
                    video_llava_frames=frames,
                    video_llava_tokens=ids.shape[1],
                ),
                f"{sizes.image_size} px frames, {sizes.vision_layers}-layer ViT, {sizes.num_layers}-layer LLM, "
                f"prefill + {sizes.new_tokens} tokens; PiTe encodes {sizes.num_frames} frames through the ViT",
            )
        )
        del peer, peer_answer  # free this size's model before the next is built
    return records


def row_features(sizes: BenchSizes) -> dict[str, Any]:
    """Frame-feature throughput of the (frozen) vision tower, batched, and the training step with cached features
    against the step that runs the tower on pixels."""
    pite = pite_model(sizes).train()
    pixels = torch.randn(1, sizes.num_frames, 3, sizes.image_size, sizes.image_size)
    with torch.no_grad():
        extract_s = timed(lambda: pite.get_video_features(pixels), repeats=max(1, sizes.repeats // 2))
        features = pite.get_video_features(pixels).pooler_output
    ids = prompt_ids(sizes, sizes.num_frames, 60)

    def step(**visual: torch.Tensor) -> None:
        pite.zero_grad(set_to_none=True)
        pite(input_ids=ids, labels=ids, use_cache=False, **visual).loss.backward()

    times = timed_alternating(
        {"cached": lambda: step(video_features=features), "pixels": lambda: step(pixel_values_videos=pixels)},
        repeats=sizes.repeats,
    )
    return result(
        "features",
        times["pixels"] / times["cached"],
        "pixel step / cached-feature step",
        dict(
            cached_step_s=times["cached"],
            pixel_step_s=times["pixels"],
            vision_frames_per_s=sizes.num_frames / extract_s,
        ),
        f"{sizes.vision_layers}-layer {sizes.image_size} px ViT, {sizes.num_frames} frames batched, "
        f"{ids.shape[1]} tokens",
    )
