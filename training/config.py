"""Training configuration: three dataclasses parsed by TRL's `TrlParser`, recipe values in per-stage YAML files.

- `PiTeStageArguments` (`arguments.py`): the stage, its data, lambda, label smoothing, the bad-record policy;
- `PiTeSFTConfig`: TRL's `SFTConfig` (optimizer, schedule, batches, saving) with PiTe's defaults (`loss_type="nll"`,
  no column pruning, the collator builds the batches);
- `PiTeModelConfig`: `trl.ModelConfig` (checkpoint, LoRA fields; `get_peft_config` builds the `LoraConfig`) with the
  paper's LoRA (r=64, alpha=128, dropout 0.05) as defaults.

`load_training_config` reads the stage's recipe (`training/configs/stage{1,2,3}.yaml`) or a user's YAML, applies
`key=value` overrides and parses the result once with `TrlParser`, so every value, from the file or an override, is
typed by its field (`learning_rate: 1e-3` is a float, `save_strategy: no` the string "no", `bf16=false` a bool,
`data_files=[a, b]` a list). An unknown key, a value of the wrong type or a stage mismatch is one `ValueError` naming
the field and the value.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from importlib import resources
from typing import Any

import yaml
from trl import ModelConfig, SFTConfig, TrlParser

from .arguments import STAGES, PiTeStageArguments

# YAML's spellings of null (read as text by the typed parsing below; "none" stays text: report_to=none is a value).
NULL_SPELLINGS = ("null", "Null", "NULL", "~", "")


@dataclass
class PiTeSFTConfig(SFTConfig):
    """`SFTConfig` with PiTe's defaults: TRL's own NLL loss, no column pruning, batches built by PiTe's collator."""

    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Must stay False: the collator reads non-model columns."}
    )

    def __post_init__(self) -> None:
        if self.remove_unused_columns:
            raise ValueError("remove_unused_columns=True would drop PiTe's target columns; leave it False")
        if self.label_smoothing_factor:
            raise ValueError(
                "label_smoothing_factor makes Trainer smooth logits outside the model and drop the L1 terms; "
                "set label_smoothing instead (the model applies it to its token cross-entropy)"
            )
        if self.loss_type != "nll":
            raise ValueError(f"loss_type={self.loss_type!r}: PiTe trains TRL's 'nll' loss (plus its L1 terms) only")
        kwargs = (
            json.loads(self.dataset_kwargs)
            if isinstance(self.dataset_kwargs, str)
            else dict(self.dataset_kwargs or {})
        )
        # PiTe's records are conversations with media and span targets that `ExampleFeaturizer` turns into
        # tokens and labels; TRL's text/message preparation does not know them.
        kwargs["skip_prepare_dataset"] = True
        self.dataset_kwargs = kwargs
        super().__post_init__()


@dataclass
class PiTeModelConfig(ModelConfig):
    """`trl.ModelConfig` with the paper's LoRA as defaults (r=64, alpha=128, dropout 0.05, every LLM linear layer)."""

    use_peft: bool = field(default=True, metadata={"help": "PiTe trains a new LoRA in every stage; must stay true."})
    lora_r: int = field(default=64, metadata={"help": "LoRA rank of the stage's new adapter."})
    lora_alpha: int = field(default=128, metadata={"help": "LoRA alpha (scale alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA branch input."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": "Names of the language model's linear layers that get LoRA (e.g. [q_proj, v_proj]); "
            "null = every linear layer of the LLM (never the vision tower, the adapter or the heads)."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.use_peft:
            raise ValueError("use_peft=false: every PiTe stage trains a LoRA (the recipe has no full finetuning)")
        if self.lora_r < 1:
            raise ValueError(f"lora_r must be >= 1, got {self.lora_r}")
        if isinstance(self.lora_target_modules, str):  # ModelConfig turns a one-name list into the bare name
            self.lora_target_modules = [self.lora_target_modules]


@dataclass
class StageConfig:
    """The parsed configuration of one stage: PiTe's fields, the trainer's arguments and the model/LoRA fields.

    Reading `config.NAME` finds the field in whichever of the three defines it (`config.lora_r`, `config.stage`,
    `config.output_dir`); `training_args` is what the trainer gets.
    """

    stage_args: PiTeStageArguments
    training_args: PiTeSFTConfig
    model_args: PiTeModelConfig

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("stage_args", "training_args", "model_args"):
            raise AttributeError(name)
        for part in (self.stage_args, self.model_args, self.training_args):
            if name in {f.name for f in fields(part)} or hasattr(type(part), name):
                return getattr(part, name)
        raise AttributeError(f"no training config field {name!r}")


DATACLASSES = (PiTeStageArguments, PiTeSFTConfig, PiTeModelConfig)


def recipe_path(stage: int) -> str:
    """Path of the YAML recipe shipped with the package for `stage`."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    return os.fspath(resources.files("pite.training") / "configs" / f"stage{stage}.yaml")


class _Parser(TrlParser):
    """`TrlParser` whose errors are exceptions naming the field, not a usage message and `SystemExit`."""

    def error(self, message: str):  # noqa: ANN201 - argparse's signature
        # "argument --lora_r/--lora-r: invalid int value: 'abc'" -> "training config field lora_r: invalid int ..."
        message = re.sub(r"^argument --([\w]+)(/--[\w-]+)?: ", r"field \1: ", message)
        raise ValueError(f"training config {message}")


def config_fields() -> dict[str, dataclasses.Field]:
    """Every init field of the three dataclasses by name."""
    return {f.name: f for cls in DATACLASSES for f in fields(cls) if f.init}


def config_field_names() -> list[str]:
    return sorted(config_fields())


def _as_text(value: Any) -> Any:
    """A Python value (from a mapping override) -> the text form the typed parser reads; lists stay lists."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_as_text(item) for item in value]
    if isinstance(value, Mapping):
        return json.dumps(dict(value))
    return str(value)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`["lora_r=8", "data_files=[a.jsonl, b.jsonl]", "bf16=false"]` -> {key: text or list of texts}.

    Values stay text here (YAML flow lists become lists of texts); `load_training_config` types them by their field.
    """
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form key=value")
        value = value.strip()
        if value.startswith(("[", "{")):
            try:
                loaded = yaml.load(value, Loader=yaml.BaseLoader)
            except yaml.YAMLError as error:
                raise ValueError(f"override {item!r}: value is not a valid YAML list ({error})") from error
            parsed[key] = json.dumps(loaded) if isinstance(loaded, dict) else loaded
        else:
            parsed[key] = value
    return parsed


def _read_yaml(path: str) -> dict[str, Any]:
    """A YAML file of config fields, every scalar kept as text (so the dataclass field, not YAML, decides its type)."""
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.load(handle, Loader=yaml.BaseLoader) or {}
    except FileNotFoundError as error:
        raise FileNotFoundError(f"training config file not found: {path!r}") from error
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of config fields at the top level, got {type(values).__name__}")
    return {key: json.dumps(value) if isinstance(value, dict) else value for key, value in values.items()}


def _argv(values: Mapping[str, Any], parser: TrlParser) -> list[str]:
    """Arguments for `parser` from {field: text | list of texts}; a null keeps a None (or empty) default."""
    actions = {action.dest: action for action in parser._actions}
    argv: list[str] = []
    for key, value in values.items():
        action = actions[key]
        takes_list = action.nargs in ("+", "*")
        if isinstance(value, str) and value in NULL_SPELLINGS or value == []:
            if action.default not in (None, []) and not (value == [] and action.default == "none"):  # report_to=[]
                raise ValueError(
                    f"training config field {key}={value!r}: {key} needs a value (default {action.default!r})"
                )
            continue
        if isinstance(value, list):
            if not takes_list:
                raise ValueError(f"training config field {key}={value!r}: {key} takes one value, not a list")
            argv += [f"--{key}", *value]
        else:
            argv += [f"--{key}", value]
    return argv


def load_training_config(
    stage: int,
    config_file: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    require_output_dir: bool = True,
) -> StageConfig:
    """Parse the configuration of `stage` from a YAML file (default: the shipped recipe) plus overrides.

    Args:
        overrides: fields as a mapping (Python values) or `key=value` strings (`key=[a, b]` for lists), applied last.
        require_output_dir: refuse a configuration that sets no output_dir.

    Raises ValueError naming the key (and value) for an unknown field, a value its field's type rejects, or a file /
    override that sets a stage other than `stage`.
    """
    path = os.fspath(config_file) if config_file is not None else recipe_path(stage)
    values = _read_yaml(path)
    if "stage" in values and values["stage"] != str(stage):
        raise ValueError(f"{path} is the recipe of stage {values['stage']}, but stage {stage} was requested")
    if overrides is not None:
        updates = (
            parse_overrides(list(overrides))
            if not isinstance(overrides, Mapping)
            else {key: _as_text(value) for key, value in overrides.items()}
        )
        values.update(updates)
    if values.get("stage", str(stage)) != str(stage):
        raise ValueError(f"an override sets stage={values['stage']}, but stage {stage} was requested")
    values["stage"] = str(stage)
    known = config_fields()
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown training config field {key!r} (from {path} or the overrides){hint}")
    if require_output_dir and values.get("output_dir") in (None, *NULL_SPELLINGS):
        raise ValueError("set output_dir=FOLDER (where checkpoints and the stage's merged model go)")
    parser = _Parser(DATACLASSES)
    stage_args, training_args, model_args = parser.parse_args_and_config(args=_argv(values, parser))
    config = StageConfig(stage_args, training_args, model_args)
    if stage_args.global_batch_size is not None:
        training_args.gradient_accumulation_steps = _accumulation_for_global_batch(config)
    return config


def _accumulation_for_global_batch(config: StageConfig) -> int:
    args = config.training_args
    per_step = args.per_device_train_batch_size * args.world_size
    global_batch = config.stage_args.global_batch_size
    steps, remainder = divmod(global_batch, per_step)
    if steps < 1 or remainder:
        raise ValueError(
            f"global_batch_size={global_batch} is not a multiple of per_device_train_batch_size="
            f"{args.per_device_train_batch_size} x {args.world_size} process(es); change one of them, or set "
            "global_batch_size=null and gradient_accumulation_steps directly"
        )
    if args.gradient_accumulation_steps not in (1, steps):
        raise ValueError(
            f"gradient_accumulation_steps={args.gradient_accumulation_steps} contradicts global_batch_size="
            f"{global_batch} (which needs {steps}); set global_batch_size=null to choose it directly"
        )
    return steps
