"""Python API of the recipe: `train_stage(stage, model, output_dir, ...) -> output_dir`.

    from pite.training import train_stage
    stage1 = train_stage(1, "pite-untrained", "out/stage1", data_files=["ln.jsonl"], media_dir="images")
    stage2 = train_stage(2, stage1, "out/stage2", data_files=["pite143k.jsonl"], media_dir="videos")
    final = train_stage(3, stage2, "out/stage3", data_files=["valley.json", "videoinstruct.json"], media_dir="videos")

Each call writes a merged, standalone checkpoint (plus its LoRA in `lora/`) that the next call and
`PiTeForConditionalGeneration.from_pretrained` read. Launched under torchrun/accelerate, every process runs the
same call (DDP); only the main process writes the output folder.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from pite.core.errors import OutputExistsError
from pite.core.file_writing import write_json
from pite.core.inputs import check_checkpoint_weights
from pite.core.loading import check_model_and_processor, load_model, load_processor
from pite.data.collator import PiTeDataCollator
from pite.data.feature_cache import FeatureCache, feature_fingerprint
from pite.data.featurize import ExampleFeaturizer
from pite.data.stage_dataset import DataReport, build_stage_dataset

from .config import StageConfig, load_training_config
from .sharded_saving import unsharded_peft_model
from .stages import merge_stage, prepare_model_for_stage, save_stage_output
from .trainer import PiTeSFTTrainer

logger = logging.getLogger(__name__)
RUN_SUMMARY_NAME = "pite_training.json"


@dataclass
class StageRun:
    """What `run_stage` built and trained, for callers that inspect more than the output folder (tests, demo)."""

    config: StageConfig
    trainer: PiTeSFTTrainer
    model: Any  # the merged PiTeForConditionalGeneration
    processor: Any
    train_report: DataReport
    eval_report: DataReport | None


def _feature_cache(directory: str | None, fingerprint: str | None) -> FeatureCache | None:
    if not directory:
        return None
    cache = FeatureCache(directory)
    cache.check_compatible(fingerprint)
    return cache


def newest_complete_checkpoint(output_dir: str) -> str | None:
    """The newest `checkpoint-*` of `output_dir` that holds `trainer_state.json` (Trainer writes it last).

    Newer checkpoints without it (a run killed while saving) are skipped with a warning naming them.
    """
    if not os.path.isdir(output_dir):
        return None
    steps = []
    for name in os.listdir(output_dir):
        prefix, _, step = name.partition("-")
        if prefix == PREFIX_CHECKPOINT_DIR and step.isdigit() and os.path.isdir(os.path.join(output_dir, name)):
            steps.append((int(step), os.path.join(output_dir, name)))
    incomplete = []
    for _, path in sorted(steps, reverse=True):
        if os.path.isfile(os.path.join(path, TRAINER_STATE_NAME)):
            if incomplete:
                logger.warning(
                    "skipping incomplete checkpoint(s) without %s: %s; resuming from %s",
                    TRAINER_STATE_NAME,
                    ", ".join(incomplete),
                    path,
                )
            return path
        incomplete.append(path)
    if incomplete:
        logger.warning("skipping incomplete checkpoint(s) without %s: %s", TRAINER_STATE_NAME, ", ".join(incomplete))
    return None


def _resume_checkpoint(resume: bool | str | None, output_dir: str) -> str | None:
    if resume in (None, False):
        return None
    if resume is True or resume == "last":
        last = newest_complete_checkpoint(output_dir)
        if last is None:
            logger.warning("no complete checkpoint in %s to resume from: starting from the beginning", output_dir)
        return last
    path = os.fspath(resume)
    if not os.path.isfile(os.path.join(path, TRAINER_STATE_NAME)):
        raise FileNotFoundError(f"--resume-from {path!r}: not a complete checkpoint (no {TRAINER_STATE_NAME})")
    return path


# What a stage's output folder holds once a run has written into it.
RUN_OUTPUTS = (RUN_SUMMARY_NAME, "config.json", "model.safetensors", "lora")


def refuse_existing_run(output_dir: str, resume: bool | str | None, overwrite: bool) -> None:
    """Raise before any work if `output_dir` holds a finished stage or checkpoints that training would replace."""
    if resume not in (None, False) or overwrite or not os.path.isdir(output_dir):
        return
    entries = os.listdir(output_dir)
    found = [name for name in RUN_OUTPUTS if name in entries]
    found += sorted(name for name in entries if name.startswith(f"{PREFIX_CHECKPOINT_DIR}-"))
    if found:
        raise FileExistsError(
            f"output_dir={output_dir!r} already holds a training run ({', '.join(found[:4])}); pass --resume to "
            "continue it, overwrite_output_dir=true to replace it, or choose another output_dir"
        )


def _check_starting_model(model_path: str | None, output_dir: str) -> None:
    """Before anything loads: the stage never writes over the model it starts from, and that model's weight files
    are complete (a truncated file is named)."""
    if not isinstance(model_path, str) or not os.path.isdir(model_path):
        return
    if os.path.realpath(model_path) == os.path.realpath(output_dir):
        raise OutputExistsError(
            f"output_dir {output_dir} is model_name_or_path: the stage would overwrite the model "
            "it starts from; choose another output_dir",
            path=output_dir,
            field="output_dir",
        )
    check_checkpoint_weights(model_path)


def run_stage(
    stage: int,
    model: Any | str,
    output_dir: str | os.PathLike | None,
    data_files: Sequence[str] | str | None = None,
    media_dir: Sequence[str] | str | None = None,
    processor: Any = None,
    config_file: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    resume_from_checkpoint: bool | str | None = None,
    callbacks: Sequence[Any] | None = None,
) -> StageRun:
    """Train one stage and write its output folder; returns the trainer, merged model and data reports.

    Args:
        stage: 1, 2 or 3.
        model: a `PiTeForConditionalGeneration` or a checkpoint path (an untrained build for stage 1, the previous
            stage's output for stages 2-3). Falls back to `model_name_or_path` of the config when None.
        output_dir: where checkpoints and the stage's merged model go (None: the config's `output_dir`). A folder
            holding a finished run or checkpoints is refused unless resuming or `overwrite_output_dir=true`.
        data_files, media_dir: annotation files and their media folder(s); override the config's values.
        processor: the `PiTeProcessor`; loaded from the model's folder when omitted.
        config_file: a YAML of config fields (default: the shipped recipe of `stage`).
        overrides: config fields, as a mapping or `key=value` strings, applied last.
        resume_from_checkpoint: True/"last" resumes from the newest complete `checkpoint-*` in output_dir (incomplete
            ones, without trainer_state.json, are skipped with a warning), a path from that one.
        callbacks: extra `TrainerCallback`s.
    """
    values: dict[str, Any] = {} if output_dir is None else {"output_dir": os.fspath(output_dir)}
    if data_files is not None:
        values["data_files"] = [data_files] if isinstance(data_files, (str, os.PathLike)) else list(data_files)
    if media_dir is not None:
        values["media_dir"] = [media_dir] if isinstance(media_dir, (str, os.PathLike)) else list(media_dir)
    if isinstance(model, (str, os.PathLike)):
        values["model_name_or_path"] = os.fspath(model)
    if overrides is not None and not isinstance(overrides, Mapping):
        from .config import parse_overrides

        overrides = parse_overrides(list(overrides))
    config = load_training_config(stage, config_file, {**values, **dict(overrides or {})})
    if model is None or isinstance(model, (str, os.PathLike)):
        _check_starting_model(config.model_name_or_path, config.output_dir)
    refuse_existing_run(config.output_dir, resume_from_checkpoint, config.overwrite_output_dir)
    checkpoint = _resume_checkpoint(resume_from_checkpoint, config.output_dir)  # checked before any heavy work
    if model is None or isinstance(model, (str, os.PathLike)):
        if not config.model_name_or_path:
            raise ValueError("no model given: pass a model or set model_name_or_path")
        model = load_model(config.model_name_or_path, field="model_name_or_path")
        processor = processor or load_processor(config.model_name_or_path, field="model_name_or_path")
    if processor is None:
        raise ValueError("a processor is needed when the model is passed as an object (processor=PiTeProcessor(...))")
    check_model_and_processor(model, processor)

    needs_fingerprint = config.feature_cache_dir or config.eval_feature_cache_dir
    fingerprint = feature_fingerprint(model, processor) if needs_fingerprint else None
    max_length = config.max_length
    num_points = model.config.num_trajectory_points
    featurizer = ExampleFeaturizer(
        processor, num_points, max_length, _feature_cache(config.feature_cache_dir, fingerprint)
    )
    train_dataset, train_report = build_stage_dataset(
        stage,
        config.data_files,
        config.media_dir,
        featurizer,
        config.skip_bad_records,
        config.verify_media,
        config.max_events_per_video,
        config.rehearsal_data_files,
        config.rehearsal_media_dir,
    )
    eval_dataset, eval_report = None, None
    if config.eval_data_files:
        eval_cache = _feature_cache(config.eval_feature_cache_dir or config.feature_cache_dir, fingerprint)
        eval_featurizer = ExampleFeaturizer(processor, num_points, max_length, eval_cache)
        eval_dataset, eval_report = build_stage_dataset(
            stage,
            config.eval_data_files,
            config.eval_media_dir or config.media_dir,
            eval_featurizer,
            config.skip_bad_records,
            config.verify_media,
            config.max_events_per_video,
        )

    peft_model = prepare_model_for_stage(model, stage, config)
    trainer = PiTeSFTTrainer(
        model=peft_model,
        args=config.training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=PiTeDataCollator(pad_token_id=processor.tokenizer.pad_token_id, padding_side="right"),
        processing_class=processor,
        callbacks=list(callbacks or []),
    )
    if train_report.skipped:
        logger.warning("stage %d: %s", stage, "; ".join(train_report.per_file.values()))
    trainer.train(resume_from_checkpoint=checkpoint)

    peft_model = unsharded_peft_model(trainer, peft_model)  # FSDP: gathered on the main process, None elsewhere
    if trainer.args.should_save:
        merged = save_stage_output(peft_model, config.output_dir, processor)
        summary = {
            "stage": stage,
            "model_name_or_path": config.model_name_or_path,
            "data_files": config.data_files,
            "records_kept": train_report.kept,
            "records_skipped": len(train_report.skipped),
            "skipped": train_report.skipped[:100],
            "global_step": trainer.state.global_step,
            "log_history": trainer.state.log_history,
        }
        write_json(os.path.join(config.output_dir, RUN_SUMMARY_NAME), summary)
    else:
        merged = merge_stage(peft_model) if peft_model is not None else None
    trainer.accelerator.wait_for_everyone()
    return StageRun(config, trainer, merged, processor, train_report, eval_report)


def train_stage(
    stage: int,
    model: Any | str,
    output_dir: str | os.PathLike | None,
    data_files: Sequence[str] | str | None = None,
    media_dir: Sequence[str] | str | None = None,
    processor: Any = None,
    config_file: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    resume_from_checkpoint: bool | str | None = None,
    callbacks: Sequence[Any] | None = None,
) -> str:
    """Train one stage (see `run_stage` for the arguments); returns the output folder (a merged checkpoint)."""
    run = run_stage(
        stage,
        model,
        output_dir,
        data_files,
        media_dir,
        processor,
        config_file,
        overrides,
        resume_from_checkpoint,
        callbacks,
    )
    return run.config.output_dir


def read_run_summary(output_dir: str) -> dict[str, Any]:
    with open(os.path.join(output_dir, RUN_SUMMARY_NAME), encoding="utf-8") as handle:
        return json.load(handle)
