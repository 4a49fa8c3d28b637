"""PiTe's own training fields: the stage, its data, lambda, label smoothing and the bad-record policy.

A plain dataclass with no import beyond the standard library, so `pite train --help` lists these fields without
loading torch, transformers or TRL. `pite train` parses it with TRL's `TrlParser` next to `SFTConfig` (optimizer,
schedule, batches, saving) and `trl.ModelConfig` (checkpoint, LoRA fields): see `config.py`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

STAGES = (1, 2, 3)
LIST_FIELDS = (
    "data_files",
    "media_dir",
    "eval_data_files",
    "eval_media_dir",
    "rehearsal_data_files",
    "rehearsal_media_dir",
)


@dataclass
class PiTeStageArguments:
    """Fields of one stage of the PiTe recipe besides `SFTConfig`'s and `ModelConfig`'s."""

    stage: int = field(
        default=1,
        metadata={
            "help": "Recipe stage: 1 referring-expression localization (Localized Narratives, points), "
            "2 pixel-temporal alignment (PiTe-143k, trajectories), 3 video QA instruction tuning."
        },
    )
    data_files: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Training annotation files. Stage 1: Localized Narratives JSONL; stage 2: PiTe-143k-style "
            "JSONL; stage 3: Valley-Instruct and/or VideoInstruct-100K JSON (format detected per "
            "file)."
        },
    )
    media_dir: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Folder of the images (stage 1) or videos (stages 2-3) the annotation files point into: "
            "one folder for all files, or one per entry of data_files."
        },
    )
    eval_data_files: list[str] = field(
        default_factory=list, metadata={"help": "Optional held-out annotation files, same formats as data_files."}
    )
    eval_media_dir: list[str] = field(
        default_factory=list, metadata={"help": "Media folder(s) of eval_data_files (defaults to media_dir)."}
    )
    feature_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "Folder written by `pite extract-features` over media_dir. When set, training reads the "
            "cached frozen-tower features instead of decoding pixels (every record must be cached)."
        },
    )
    eval_feature_cache_dir: str | None = field(
        default=None, metadata={"help": "Feature cache of eval_media_dir (defaults to feature_cache_dir)."}
    )
    global_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Samples per optimizer step over all processes (the paper: 256). When set, "
            "gradient_accumulation_steps is derived as global / (per_device_train_batch_size * "
            "world size)."
        },
    )
    localization_loss_weight: float = field(
        default=1.0,
        metadata={
            "help": "lambda, weight of the point (stage 1) and trajectory (stage 2) L1 terms; not reported in "
            "the paper. 1.0 keeps the L1 of normalised coordinates on the scale of the token CE."
        },
    )
    label_smoothing: float = field(
        default=0.0,
        metadata={
            "help": "Label smoothing of the token cross-entropy, applied by the model (the paper smooths stage "
            "3, value not reported; the stage-3 recipe uses 0.1). Use this, not "
            "label_smoothing_factor."
        },
    )
    absent_targets: str = field(
        default="regress",
        metadata={
            "help": "What the L1 terms do where a token has no target or the object is absent: 'regress' "
            "(the authors' release: predict (-1, -1) there, so the model learns which words name no "
            "object) or 'mask' (only present targets count)."
        },
    )
    skip_bad_records: bool = field(
        default=False,
        metadata={
            "help": "Skip (and count in the log) records with missing/unreadable media, wrongly shaped "
            "trajectories, empty conversations or other defects, instead of stopping with an error."
        },
    )
    verify_media: bool = field(
        default=True,
        metadata={
            "help": "Open every image/video once while loading the annotations, so an unreadable file is "
            "reported by record before training starts (skipped for records served from the feature "
            "cache)."
        },
    )
    rehearsal_data_files: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Stage 3 only: PiTe-143k-style files (stage 2's data) mixed into the instructions and "
            "trained with their trajectory loss, the trajectory head trained too. The paper's stage 3 "
            "trains answers only (leave empty); a small model forgets what its trajectory head reads "
            "without it."
        },
    )
    rehearsal_media_dir: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Video folder(s) of rehearsal_data_files (defaults to media_dir); with a feature cache, "
            "their videos must be in feature_cache_dir."
        },
    )
    max_events_per_video: int | None = field(
        default=None,
        metadata={"help": "Stage 2: at most this many events per video enter the conversation (null = all)."},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Train into an output_dir that already holds a finished stage (its merged model, lora/ "
            "and pite_training.json are replaced). Without it such a folder is refused before any "
            "work starts; --resume is always allowed."
        },
    )

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.absent_targets not in ("regress", "mask"):
            raise ValueError(f"absent_targets must be 'regress' or 'mask', got {self.absent_targets!r}")
        if self.localization_loss_weight < 0:
            raise ValueError(f"localization_loss_weight must be >= 0, got {self.localization_loss_weight}")
        if self.global_batch_size is not None and self.global_batch_size < 1:
            raise ValueError(f"global_batch_size must be >= 1 or null, got {self.global_batch_size}")
        for name in LIST_FIELDS:
            value = getattr(self, name)
            setattr(
                self,
                name,
                [os.fspath(value)] if isinstance(value, (str, os.PathLike)) else [os.fspath(v) for v in value],
            )
        if self.rehearsal_data_files and self.stage != 3:
            raise ValueError(
                f"rehearsal_data_files is for stage 3 (replaying stage 2's trajectories), but stage={self.stage}: "
                "add those files to data_files instead"
            )


def stage_field_help() -> list[tuple[str, Any, str]]:
    """(name, default, help) of PiTe's own fields, for `pite train --help`."""
    rows = []
    for item in fields(PiTeStageArguments):
        default = item.default_factory() if callable(item.default_factory) else item.default  # type: ignore[misc]
        rows.append((item.name, default, item.metadata.get("help", "")))
    return rows
