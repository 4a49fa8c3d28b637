"""Training configuration: one dataclass for every stage, recipe values in per-stage YAML files.

`PiTeTrainingConfig` is TRL's `SFTConfig` plus PiTe's own fields (stage, lambda, label smoothing, LoRA, data, feature
cache, bad-record policy). The recipe of each stage lives in `training/configs/stage{1,2,3}.yaml`, shipped with the
package; `load_training_config` reads one of them (or a user's YAML), applies `key=value` overrides and builds the
dataclass, rejecting unknown keys by name.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from importlib import resources
from typing import Any

import yaml
from trl import SFTConfig

STAGES = (1, 2, 3)


@dataclass
class PiTeTrainingConfig(SFTConfig):
    """`SFTConfig` with PiTe's fields. Every field can be set in the YAML file or as `key=value` on the command line."""

    stage: int = field(
        default=1,
        metadata={"help": "Recipe stage: 1 referring-expression localization (Localized Narratives, points), "
                          "2 pixel-temporal alignment (PiTe-143k, trajectories), 3 video QA instruction tuning."},
    )
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Checkpoint to start from: an untrained PiTe (`pite build`) for stage 1, the previous "
                          "stage's output folder for stages 2 and 3."},
    )
    data_files: list[str] = field(
        default_factory=list,
        metadata={"help": "Training annotation files. Stage 1: Localized Narratives JSONL; stage 2: PiTe-143k-style "
                          "JSONL; stage 3: Valley-Instruct and/or VideoInstruct-100K JSON (format detected per file)."},
    )
    media_dir: list[str] = field(
        default_factory=list,
        metadata={"help": "Folder of the images (stage 1) or videos (stages 2-3) the annotation files point into: "
                          "one folder for all files, or one per entry of data_files."},
    )
    eval_data_files: list[str] = field(
        default_factory=list, metadata={"help": "Optional held-out annotation files, same formats as data_files."}
    )
    eval_media_dir: list[str] = field(
        default_factory=list, metadata={"help": "Media folder(s) of eval_data_files (defaults to media_dir)."}
    )
    feature_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Folder written by `pite extract-features` over media_dir. When set, training reads the "
                          "cached frozen-tower features instead of decoding pixels (every record must be cached)."},
    )
    eval_feature_cache_dir: str | None = field(
        default=None, metadata={"help": "Feature cache of eval_media_dir (defaults to feature_cache_dir)."}
    )
    global_batch_size: int | None = field(
        default=None,
        metadata={"help": "Samples per optimizer step over all processes (the paper: 256). When set, "
                          "gradient_accumulation_steps is derived as global / (per_device_train_batch_size * world size)."},
    )
    localization_loss_weight: float = field(
        default=1.0,
        metadata={"help": "lambda, weight of the point (stage 1) and trajectory (stage 2) L1 terms; not reported in "
                          "the paper. 1.0 keeps the L1 of normalised coordinates on the scale of the token CE."},
    )
    label_smoothing: float = field(
        default=0.0,
        metadata={"help": "Label smoothing of the token cross-entropy, applied by the model (the paper smooths stage 3, "
                          "value not reported; the stage-3 recipe uses 0.1). Use this, not label_smoothing_factor."},
    )
    lora_r: int = field(default=64, metadata={"help": "LoRA rank of the stage's new adapter."})
    lora_alpha: int = field(default=128, metadata={"help": "LoRA alpha (scale alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA branch input."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={"help": "Names of the language model's linear layers that get LoRA (e.g. [q_proj, v_proj]); "
                          "null = every linear layer of the LLM (never the vision tower, the adapter or the heads)."},
    )
    skip_bad_records: bool = field(
        default=False,
        metadata={"help": "Skip (and count in the log) records with missing/unreadable media, wrongly shaped "
                          "trajectories, empty conversations or other defects, instead of stopping with an error."},
    )
    verify_media: bool = field(
        default=True,
        metadata={"help": "Open every image/video once while loading the annotations, so an unreadable file is "
                          "reported by record before training starts (skipped for records served from the feature cache)."},
    )
    rehearsal_data_files: list[str] = field(
        default_factory=list,
        metadata={"help": "Stage 3 only: PiTe-143k-style files (stage 2's data) mixed into the instructions and trained "
                          "with their trajectory loss, the trajectory head trained too. The paper's stage 3 trains "
                          "answers only (leave empty); a small model forgets what its trajectory head reads without it."},
    )
    rehearsal_media_dir: list[str] = field(
        default_factory=list,
        metadata={"help": "Video folder(s) of rehearsal_data_files (defaults to media_dir); with a feature cache, "
                          "their videos must be in feature_cache_dir."},
    )
    max_events_per_video: int | None = field(
        default=None,
        metadata={"help": "Stage 2: at most this many events per video enter the conversation (null = all)."},
    )

    # Defaults that differ from SFTConfig: PiTe batches carry targets and videos the model reads (no column pruning),
    # and the collator builds the batches (no TRL dataset preparation).
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Must stay False: the collator reads non-model columns."}
    )

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.remove_unused_columns:
            raise ValueError("remove_unused_columns=True would drop PiTe's target columns; leave it False")
        if self.label_smoothing_factor:
            raise ValueError(
                "label_smoothing_factor makes Trainer smooth logits outside the model and drop the L1 terms; "
                "set label_smoothing instead (the model applies it to its token cross-entropy)"
            )
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.localization_loss_weight < 0:
            raise ValueError(f"localization_loss_weight must be >= 0, got {self.localization_loss_weight}")
        if self.lora_r < 1:
            raise ValueError(f"lora_r must be >= 1, got {self.lora_r}")
        for name in ("data_files", "media_dir", "eval_data_files", "eval_media_dir", "rehearsal_data_files",
                     "rehearsal_media_dir"):
            value = getattr(self, name)
            setattr(self, name, [value] if isinstance(value, (str, os.PathLike)) else [os.fspath(v) for v in value])
        if self.rehearsal_data_files and self.stage != 3:
            raise ValueError(
                f"rehearsal_data_files is for stage 3 (replaying stage 2's trajectories), but stage={self.stage}: "
                "add those files to data_files instead"
            )
        kwargs = json.loads(self.dataset_kwargs) if isinstance(self.dataset_kwargs, str) else dict(self.dataset_kwargs or {})
        kwargs["skip_prepare_dataset"] = True  # the collator tokenizes; TRL must not re-prepare the dataset
        self.dataset_kwargs = kwargs
        super().__post_init__()
        if self.global_batch_size is not None:
            self.gradient_accumulation_steps = self._accumulation_for_global_batch()

    def _accumulation_for_global_batch(self) -> int:
        per_step = self.per_device_train_batch_size * self.world_size
        steps, remainder = divmod(self.global_batch_size, per_step)
        if steps < 1 or remainder:
            raise ValueError(
                f"global_batch_size={self.global_batch_size} is not a multiple of per_device_train_batch_size="
                f"{self.per_device_train_batch_size} x {self.world_size} process(es); change one of them, or set "
                "global_batch_size=null and gradient_accumulation_steps directly"
            )
        if self.gradient_accumulation_steps not in (1, steps):
            raise ValueError(
                f"gradient_accumulation_steps={self.gradient_accumulation_steps} contradicts global_batch_size="
                f"{self.global_batch_size} (which needs {steps}); set global_batch_size=null to choose it directly"
            )
        return steps


def recipe_path(stage: int) -> str:
    """Path of the YAML recipe shipped with the package for `stage`."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    return os.fspath(resources.files("pite.training") / "configs" / f"stage{stage}.yaml")


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`["lora_r=8", "data_files=[a.jsonl, b.jsonl]", "bf16=false"]` -> dict; values are parsed as YAML scalars/lists."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form key=value")
        try:
            parsed[key] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as error:
            raise ValueError(f"override {item!r}: value is not valid YAML ({error})") from error
    return parsed


def config_field_names() -> list[str]:
    return [f.name for f in fields(PiTeTrainingConfig) if f.init]


def load_training_config(
    stage: int, config_file: str | os.PathLike | None = None, overrides: Mapping[str, Any] | Sequence[str] | None = None
) -> PiTeTrainingConfig:
    """Build the configuration of `stage` from a YAML file (default: the shipped recipe) plus overrides.

    Raises ValueError naming the key when the file sets an unknown field or a stage other than `stage`.
    """
    path = os.fspath(config_file) if config_file is not None else recipe_path(stage)
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle) or {}
    except FileNotFoundError as error:
        raise FileNotFoundError(f"training config file not found: {path!r}") from error
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of config fields at the top level, got {type(values).__name__}")
    if "stage" in values and values["stage"] != stage:
        raise ValueError(f"{path} is the recipe of stage {values['stage']}, but stage {stage} was requested")
    if overrides is not None and not isinstance(overrides, Mapping):
        overrides = parse_overrides(list(overrides))
    values.update(dict(overrides or {}))
    if values.get("stage", stage) != stage:
        raise ValueError(f"an override sets stage={values['stage']}, but stage {stage} was requested")
    values["stage"] = stage
    known = set(config_field_names())
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown training config field {key!r} (from {path} or the overrides){hint}")
    return PiTeTrainingConfig(**values)


def pite_field_help() -> list[tuple[str, Any, str]]:
    """(name, default, help) of the fields PiTe adds to SFTConfig, for `pite train --help`."""
    base = {f.name for f in fields(SFTConfig)}
    rows = []
    for item in fields(PiTeTrainingConfig):
        if item.name in base:
            continue
        default = item.default_factory() if callable(item.default_factory) else item.default  # type: ignore[misc]
        rows.append((item.name, default, item.metadata.get("help", "")))
    return rows
