"""PiTe training: the three-stage recipe on TRL + PEFT.

Python API (see `api.py`): `train_stage(stage, model_or_path, output_dir, data_files, media_dir, ...) -> output_dir`.
Command line: `pite train --stage {1,2,3} [--config FILE] [key=value ...]` and `pite extract-features`.
"""

from .api import StageRun, load_model_and_processor, read_run_summary, run_stage, train_stage
from .collator import PiTeDataCollator
from .config import PiTeTrainingConfig, load_training_config, parse_overrides, recipe_path
from .data import DataReport, build_stage_dataset, examples_to_dataset, load_stage_examples
from .feature_cache import ExtractionReport, FeatureCache, extract_features, feature_fingerprint
from .featurize import ExampleFeaturizer
from .records import BadRecordError, TrainingExample
from .stages import STAGE_TRAINED_MODULES, merge_stage, prepare_model_for_stage, save_stage_output
from .trainer import PiTeSFTTrainer

__all__ = [
    "BadRecordError",
    "DataReport",
    "ExampleFeaturizer",
    "ExtractionReport",
    "FeatureCache",
    "PiTeDataCollator",
    "PiTeSFTTrainer",
    "PiTeTrainingConfig",
    "STAGE_TRAINED_MODULES",
    "StageRun",
    "TrainingExample",
    "build_stage_dataset",
    "examples_to_dataset",
    "extract_features",
    "feature_fingerprint",
    "load_model_and_processor",
    "load_stage_examples",
    "load_training_config",
    "merge_stage",
    "parse_overrides",
    "prepare_model_for_stage",
    "read_run_summary",
    "recipe_path",
    "run_stage",
    "save_stage_output",
    "train_stage",
]
