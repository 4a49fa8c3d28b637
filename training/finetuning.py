"""Finetuning PiTe with a plain `transformers.Trainer`: inputs with labels in one call, a collator, exact accumulation.

    from pite.training import PiTeDataCollator, PiTeTrainer, conversation_inputs

    sample = conversation_inputs(processor, messages, video="clip.mp4",
                                 trajectory_targets=[{"turn": 0, "span": [4, 14], "value": trajectory}])
    trainer = PiTeTrainer(model=model, args=TrainingArguments(...), train_dataset=[sample, ...],
                          data_collator=PiTeDataCollator(pad_token_id=processor.tokenizer.pad_token_id))

`conversation_inputs` returns what the processor returns for one conversation (`input_ids`, `attention_mask`,
`pixel_values_videos` or `pixel_values`, `video_metadata`, leading axis 1) plus `labels` (-100 outside the answers)
and, when targets are given, `point_labels` / `trajectory_labels` on the tokens of their spans. `PiTeDataCollator`
batches such samples as they are.

Why `PiTeTrainer` (= `RegressionCountsMixin` + `Trainer`) and not `Trainer` alone: Trainer divides the token loss of
every micro-batch by the tokens of the whole accumulated step, but knows nothing of PiTe's L1 items, so without the
mixin the model can only scale its L1 terms by the micro-batch's share of the tokens: gradient accumulation is then
not the same as one large batch (tests/training/test_finetuning.py measures the difference). With the mixin the L1
terms are normalised by their whole-step counts and accumulation equals one batch (to float rounding, with
lora_dropout / dropout 0; with dropout, only in expectation, since the masks differ per micro-batch shape).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature, Trainer

from pite.data.targets import SpanTarget, build_training_features

from .loss_normalization import RegressionCountsMixin


class PiTeTrainer(RegressionCountsMixin, Trainer):
    """`transformers.Trainer` with `RegressionCountsMixin`: exact gradient accumulation for PiTe's L1 terms."""


def _span_targets(targets: Sequence[SpanTarget | dict[str, Any]] | None) -> list[SpanTarget] | None:
    if targets is None:
        return None
    out = []
    for index, target in enumerate(targets):
        if isinstance(target, SpanTarget):
            out.append(target)
            continue
        if not isinstance(target, dict) or "span" not in target or "value" not in target:
            raise ValueError(
                f"target {index}: expected a SpanTarget or a dict with 'span' and 'value' "
                f"(and optionally 'turn', 'name'), got {target!r}"
            )
        out.append(
            SpanTarget(
                span=tuple(target["span"]),
                value=target["value"],
                turn=int(target.get("turn", -1)),
                name=str(target.get("name", "")),
            )
        )
    return out


def conversation_inputs(
    processor: Any,
    messages: Sequence[dict[str, Any]],
    video: Any = None,
    image: Any = None,
    point_targets: Sequence[SpanTarget | dict[str, Any]] | None = None,
    trajectory_targets: Sequence[SpanTarget | dict[str, Any]] | None = None,
    num_points: int | None = None,
) -> BatchFeature:
    """One conversation -> model inputs with labels, as tensors with a leading axis of 1.

    Args:
        processor: a `PiTeProcessor`.
        messages: `[{"role": "user"|"assistant", "content": str | [{"type": "video"|"image"|"text", ...}]}]`; the
            first user turn holds the one video/image placeholder.
        video / image: the conversation's video (path, bytes, frames) or image (PIL, uint8 array); exactly one.
        point_targets / trajectory_targets: `SpanTarget`s or dicts `{"turn", "span", "value", "name"}`: a point (2,)
            or a trajectory (P, N, 2) in [0, 1] (-1 where absent) on characters [start, end) of the answer of
            assistant turn `turn`.
        num_points: P of the trajectories (default: read from the first trajectory target).

    Returns:
        `input_ids`, `attention_mask`, `labels` (1, L); `pixel_values_videos` (1, N, 3, H, W) or `pixel_values`
        (1, 3, H, W); `video_metadata` (list of one dict); `point_labels` (1, L, 2) and/or `trajectory_labels`
        (1, L, P, N, 2) when targets are given (-1 on tokens without one).
    """
    if (video is None) == (image is None):
        raise ValueError("give exactly one of video= or image= (the conversation's one <video> placeholder)")
    trajectories = _span_targets(trajectory_targets)
    if num_points is None:
        num_points = int(np.asarray(trajectories[0].value).shape[0]) if trajectories else 1
    features = build_training_features(
        processor,
        messages,
        trajectory_targets=trajectories,
        point_targets=_span_targets(point_targets),
        num_points=num_points,
    )
    if image is not None:
        visual = processor(images=[image], return_tensors="pt")  # one frame: the template's "image" item, one token
    else:
        video = os.fspath(video) if isinstance(video, os.PathLike) else video
        visual = processor(videos=[video], return_tensors="pt")
    data: dict[str, Any] = {key: torch.as_tensor(np.asarray(value))[None] for key, value in features.items()}
    data["attention_mask"] = torch.ones_like(data["input_ids"])
    data.update(visual)
    return BatchFeature(data=data)
