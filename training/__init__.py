"""PiTe training: the three-stage recipe on TRL + PEFT, and plain-`transformers.Trainer` finetuning.

Python API (see `api.py`): `train_stage(stage, model_or_path, output_dir, data_files, media_dir, ...) -> output_dir`.
Plain Trainer (see `finetuning.py`): `conversation_inputs`, `PiTeFinetuningCollator`, `PiTeTrainer`.
Command line: `pite train --stage {1,2,3} [--config FILE] [key=value ...]` and `pite extract-features`.

The data names (`PiTeDataCollator`, `build_stage_dataset`, `FeatureCache`, ...) live in `pite.data` and are
re-exported here because the training API documents them. Names are imported on first use, so `pite train --help`
(which imports `pite.training.cli`) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "StageRun": "api",
    "read_run_summary": "api",
    "run_stage": "api",
    "train_stage": "api",
    "PiTeStageArguments": "arguments",
    "PiTeDataCollator": "pite.data.collator",
    "PiTeModelConfig": "config",
    "PiTeSFTConfig": "config",
    "StageConfig": "config",
    "load_training_config": "config",
    "parse_overrides": "config",
    "recipe_path": "config",
    "DataReport": "pite.data.stage_dataset",
    "build_stage_dataset": "pite.data.stage_dataset",
    "examples_to_dataset": "pite.data.stage_dataset",
    "load_stage_examples": "pite.data.stage_dataset",
    "ExtractionReport": "pite.data.feature_cache",
    "FeatureCache": "pite.data.feature_cache",
    "extract_features": "pite.data.feature_cache",
    "feature_fingerprint": "pite.data.feature_cache",
    "ExampleFeaturizer": "pite.data.featurize",
    "PiTeFinetuningCollator": "finetuning",
    "PiTeTrainer": "finetuning",
    "conversation_inputs": "finetuning",
    "RegressionCountsMixin": "loss_normalization",
    "BadRecordError": "pite.data.records",
    "TrainingExample": "pite.data.records",
    "STAGE_TRAINED_MODULES": "stages",
    "merge_stage": "stages",
    "prepare_model_for_stage": "stages",
    "save_stage_output": "stages",
    "PiTeSFTTrainer": "trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pite.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(module if module.startswith("pite.") else f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
