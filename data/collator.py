"""Batching PiTe training samples: pad text, labels, point/trajectory targets and their masks; stack visual inputs.

Samples come from `ExampleFeaturizer` (the recipe) or from `conversation_inputs` / the processor itself (plain
`transformers.Trainer` finetuning): the processor's outputs for one conversation, with their leading batch axis of 1,
`attention_mask` and `video_metadata`, are accepted as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pite.modeling_pite.losses_pite import ABSENT_COORDINATE, IGNORE_INDEX

# per-token key -> padding value; every one of them is (L, ...) per sample
PADDED_KEYS = {
    "input_ids": None,  # the tokenizer's pad id
    "labels": IGNORE_INDEX,
    "point_labels": ABSENT_COORDINATE,
    "trajectory_labels": ABSENT_COORDINATE,
    "point_mask": False,
    "trajectory_mask": False,
    "attention_mask": 0,  # built from the lengths when samples carry none
}
VISUAL_KEYS = ("video_features", "pixel_values_videos", "pixel_values")


@dataclass
class PiTeDataCollator:
    """Pads a list of per-sample features (from `ExampleFeaturizer`) into a batch.

    Per sample: `input_ids`, `labels` (L,), optionally `attention_mask` (L,) (all ones: one unpadded conversation),
    `point_labels` (L, 2), `trajectory_labels` (L, P, N, 2), `point_mask` / `trajectory_mask` (L, ...),
    `video_metadata` (the processor's dict, or its list of one), and exactly one visual input: `video_features`
    (F, D), `pixel_values_videos` (N, 3, H, W) or `pixel_values` (3, H, W). A leading axis of 1 on every tensor (the
    processor's output for one conversation) is accepted. `example_id` only names samples in errors.

    Returns `input_ids`, `attention_mask`, `labels` (B, L), the padded targets (B, L, ...), the stacked visual input
    (B, ...) and `video_metadata` (list of B dicts) when the samples carry it. Padding: `pad_token_id` / 0 / -100 / -1
    / False on the `padding_side` ("right" for training).
    """

    pad_token_id: int
    padding_side: str = "right"
    pad_to_multiple_of: int | None = None

    def __post_init__(self) -> None:
        if self.padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {self.padding_side!r}")

    def __call__(self, samples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not samples:
            raise ValueError("cannot collate an empty list of samples")
        names = [str(sample.get("example_id", f"sample {i}")) for i, sample in enumerate(samples)]
        samples = [self._unbatched(sample, name) for sample, name in zip(samples, names)]
        keys = set(samples[0]) - {"example_id"}
        for name, sample in zip(names, samples):
            if set(sample) - {"example_id"} != keys:
                raise ValueError(
                    f"samples of one batch must carry the same inputs: {names[0]} has {sorted(keys)}, "
                    f"{name} has {sorted(set(sample) - {'example_id'})}"
                )
        visual = [key for key in VISUAL_KEYS if key in keys]
        if len(visual) != 1:
            raise ValueError(f"each sample needs exactly one visual input of {VISUAL_KEYS}, got {visual} ({names[0]})")
        lengths = [len(sample["input_ids"]) for sample in samples]
        width = max(lengths)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch: dict[str, torch.Tensor] = {}
        for key in [k for k in PADDED_KEYS if k in keys]:
            fill = self.pad_token_id if key == "input_ids" else PADDED_KEYS[key]
            batch[key] = self._pad(
                [torch.as_tensor(sample[key]) for sample in samples], width, fill, key, names, lengths
            )
        if "attention_mask" not in batch:
            batch["attention_mask"] = self._pad(
                [torch.ones(length, dtype=torch.long) for length in lengths],
                width,
                0,
                "attention_mask",
                names,
                lengths,
            )
        tensors = [torch.as_tensor(sample[visual[0]]) for sample in samples]
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) > 1:
            detail = ", ".join(f"{n}: {tuple(t.shape)}" for n, t in zip(names, tensors))
            raise ValueError(f"{visual[0]} differ in shape within a batch ({detail}); all must share frames and size")
        batch[visual[0]] = torch.stack(tensors)
        if "video_metadata" in keys:
            batch["video_metadata"] = [sample["video_metadata"] for sample in samples]
        extra = keys - set(PADDED_KEYS) - set(VISUAL_KEYS) - {"video_metadata"}
        if extra:
            raise ValueError(f"unexpected sample inputs {sorted(extra)} ({names[0]})")
        return batch

    @staticmethod
    def _unbatched(sample: dict[str, Any], name: str) -> dict[str, Any]:
        """One conversation as the processor returns it ((1, L) ids, (1, ...) visual input, [metadata]) -> a sample."""
        ids = torch.as_tensor(sample["input_ids"])
        metadata = sample.get("video_metadata")
        if isinstance(metadata, (list, tuple)):
            if len(metadata) != 1:
                raise ValueError(
                    f"{name}: video_metadata holds {len(metadata)} entries; a sample is one conversation "
                    "with one video or image"
                )
            sample = {**sample, "video_metadata": metadata[0]}
        if ids.dim() == 1:
            out = dict(sample)
        elif ids.dim() == 2 and ids.shape[0] == 1:
            out = {
                key: (torch.as_tensor(value)[0] if key not in ("example_id", "video_metadata") else value)
                for key, value in sample.items()
            }
        else:
            raise ValueError(
                f"{name}: input_ids has shape {tuple(ids.shape)}; a sample is one conversation, (L,) or (1, L)"
            )
        if "attention_mask" in out:
            mask = torch.as_tensor(out["attention_mask"])
            if mask.shape != out["input_ids"].shape or not bool(mask.all()):
                raise ValueError(f"{name}: attention_mask must be all ones over input_ids (one unpadded conversation)")
            out["attention_mask"] = mask.long()
        return out

    def _pad(
        self, rows: list[torch.Tensor], width: int, fill: Any, key: str, names: list[str], lengths: list[int]
    ) -> torch.Tensor:
        trailing = {tuple(row.shape[1:]) for row in rows}
        if len(trailing) > 1:
            raise ValueError(f"{key} entries differ in shape within a batch: {sorted(trailing)} ({', '.join(names)})")
        for name, row, length in zip(names, rows, lengths):
            if row.shape[0] != length:
                raise ValueError(f"{name}: {key} has {row.shape[0]} positions but input_ids has {length}")
        out = torch.full((len(rows), width, *rows[0].shape[1:]), fill, dtype=rows[0].dtype)
        for index, row in enumerate(rows):
            if self.padding_side == "right":
                out[index, : len(row)] = row
            else:
                out[index, width - len(row) :] = row
        return out
