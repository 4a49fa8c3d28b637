"""Recipe YAMLs carry the paper's values; overrides, unknown keys and batch arithmetic behave."""

import os

import pytest
import yaml

from pite.training.arguments import PiTeStageArguments
from pite.training.config import PiTeSFTConfig, load_training_config, parse_overrides, recipe_path

CPU = ["use_cpu=true", "bf16=false", "output_dir=unused"]


@pytest.mark.parametrize("stage, epochs, smoothing", [(1, 1, 0.0), (2, 2, 0.0), (3, 2, 0.1)])
def test_shipped_recipes_hold_the_paper_values(stage, epochs, smoothing):
    with open(recipe_path(stage), encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    assert raw["bf16"] is True and raw["max_length"] == 2048 and raw["global_batch_size"] == 256
    config = load_training_config(stage, overrides=CPU)  # bf16 off only so the config builds on this CPU machine
    assert config.stage == stage
    assert config.learning_rate == 1e-4
    assert config.lr_scheduler_type.value == "cosine"
    assert config.warmup_steps == 0.03
    assert config.num_train_epochs == epochs
    assert (config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_target_modules) == (64, 128, 0.05, None)
    assert config.label_smoothing == smoothing
    assert config.localization_loss_weight == 1.0
    assert config.per_device_train_batch_size * config.gradient_accumulation_steps == 256  # one process
    assert config.dataset_kwargs["skip_prepare_dataset"] is True and config.remove_unused_columns is False
    assert config.loss_type == "nll" and raw["loss_type"] == "nll"


def test_overrides_are_parsed_as_yaml_and_win_over_the_file():
    config = load_training_config(
        3,
        overrides=CPU
        + [
            "lora_r=8",
            "data_files=[a.json, b.json]",
            "media_dir=videos",
            "label_smoothing=0.2",
            "lora_target_modules=[q_proj, v_proj]",
        ],
    )
    assert config.lora_r == 8 and config.label_smoothing == 0.2
    assert config.data_files == ["a.json", "b.json"] and config.media_dir == ["videos"]
    assert config.lora_target_modules == ["q_proj", "v_proj"]


def test_unknown_field_is_named_with_a_suggestion():
    with pytest.raises(ValueError, match=r"unknown training config field 'lora_rank'.*lora_r"):
        load_training_config(1, overrides=CPU + ["lora_rank=8"])
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["lora_r"])


def test_stage_mismatch_between_file_and_request(tmp_path):
    with pytest.raises(ValueError, match="recipe of stage 1, but stage 2"):
        load_training_config(2, recipe_path(1), overrides=CPU)
    custom = tmp_path / "mine.yaml"
    custom.write_text("learning_rate: 3.0e-4\nlora_r: 16\n")
    config = load_training_config(2, custom, overrides=CPU)
    assert config.stage == 2 and config.learning_rate == 3e-4 and config.lora_r == 16
    with pytest.raises(FileNotFoundError, match="not found"):
        load_training_config(2, tmp_path / "missing.yaml", overrides=CPU)


def test_global_batch_size_sets_accumulation_or_explains_why_not():
    config = load_training_config(1, overrides=CPU + ["per_device_train_batch_size=16"])
    assert config.gradient_accumulation_steps == 16
    with pytest.raises(ValueError, match="not a multiple"):
        load_training_config(1, overrides=CPU + ["per_device_train_batch_size=24"])
    with pytest.raises(ValueError, match="contradicts global_batch_size"):
        load_training_config(1, overrides=CPU + ["gradient_accumulation_steps=3"])
    config = load_training_config(1, overrides=CPU + ["global_batch_size=null", "gradient_accumulation_steps=3"])
    assert config.gradient_accumulation_steps == 3


def test_trainer_side_label_smoothing_is_refused():
    with pytest.raises(ValueError, match="set label_smoothing instead"):
        PiTeSFTConfig(output_dir="unused", use_cpu=True, bf16=False, label_smoothing_factor=0.1)
    with pytest.raises(ValueError, match="stage must be one of"):
        PiTeStageArguments(stage=4)


def test_accelerate_configs_are_shipped():
    folder = os.path.join(os.path.dirname(recipe_path(1)), "accelerate")
    for name, kind in (("fsdp.yaml", "FSDP"), ("deepspeed_zero3.yaml", "DEEPSPEED")):
        with open(os.path.join(folder, name), encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
        assert config["distributed_type"] == kind
    assert config["deepspeed_config"]["zero_stage"] == 3


def test_rehearsal_is_refused_outside_stage_3():
    with pytest.raises(ValueError, match="rehearsal_data_files is for stage 3"):
        load_training_config(2, overrides=[*CPU, "rehearsal_data_files=[pite.jsonl]"])
    assert load_training_config(3, overrides=[*CPU, "rehearsal_data_files=pite.jsonl"]).rehearsal_data_files == [
        "pite.jsonl"
    ]


def test_values_are_typed_by_their_field_in_overrides_and_files(tmp_path):
    """YAML 1.1 reads `1e-3` as text and `no` as False; both must reach their fields typed by the field."""
    overrides = [
        *CPU,
        "learning_rate=1e-3",
        "save_strategy=no",
        "lora_target_modules=[q_proj, v_proj]",
        "skip_bad_records=true",
        "verify_media=no",
        "lora_dropout=0",
        "report_to=none",
    ]
    config = load_training_config(2, overrides=overrides)
    assert config.learning_rate == 1e-3 and isinstance(config.learning_rate, float)
    assert config.save_strategy.value == "no"
    assert config.lora_target_modules == ["q_proj", "v_proj"]
    assert config.skip_bad_records is True and config.verify_media is False
    assert config.lora_dropout == 0.0 and isinstance(config.lora_dropout, float)
    custom = tmp_path / "mine.yaml"
    custom.write_text(
        "learning_rate: 1e-3\nsave_strategy: no\nlora_target_modules: [q_proj]\nbf16: no\n"
        "skip_bad_records: yes\ndata_files: [a.jsonl, b.jsonl]\nuse_cpu: true\noutput_dir: unused\n"
        "max_events_per_video: 3\nlora_r: 8\n"
    )
    config = load_training_config(2, custom)
    assert config.learning_rate == 1e-3 and config.save_strategy.value == "no" and config.bf16 is False
    assert config.lora_target_modules == ["q_proj"] and config.skip_bad_records is True
    assert config.data_files == ["a.jsonl", "b.jsonl"] and config.max_events_per_video == 3 and config.lora_r == 8
    # Python mappings go through the same typing
    config = load_training_config(
        2,
        overrides={
            "use_cpu": True,
            "bf16": False,
            "output_dir": "unused",
            "learning_rate": 2e-5,
            "global_batch_size": None,
            "gradient_accumulation_steps": 3,
        },
    )
    assert config.learning_rate == 2e-5 and config.gradient_accumulation_steps == 3


@pytest.mark.parametrize(
    "override, named",
    [
        ("lora_r=abc", "lora_r"),
        ("learning_rate=fast", "learning_rate"),
        ("save_strategy=sometimes", "save_strategy"),
        ("bf16=maybe", "bf16"),
        ("lora_r=[1, 2]", "lora_r"),
        ("learning_rate=null", "learning_rate"),
    ],
)
def test_a_value_its_field_rejects_is_one_line_naming_field_and_value(override, named):
    with pytest.raises(ValueError) as caught:
        load_training_config(1, overrides=[*CPU, override])
    message = str(caught.value)
    assert named in message and override.split("=", 1)[1].strip("[]").split(",")[0] in message
    assert "\n" not in message


def test_the_three_dataclasses_each_hold_their_fields():
    config = load_training_config(1, overrides=[*CPU, "lora_r=8", "localization_loss_weight=0.5"])
    assert config.model_args.lora_r == 8 and config.model_args.use_peft is True
    assert config.stage_args.localization_loss_weight == 0.5 and config.stage_args.stage == 1
    assert isinstance(config.training_args, PiTeSFTConfig) and not hasattr(config.training_args, "lora_r")


def test_output_dir_is_required():
    with pytest.raises(ValueError, match="set output_dir=FOLDER"):
        load_training_config(1, overrides=["use_cpu=true", "bf16=false"])


def test_absent_targets_is_a_stage_field_the_model_receives(make_model):
    """Default: the release's regression of (-1, -1); "mask" on request; anything else named with its value."""
    from pite.training.stages import prepare_model_for_stage

    assert load_training_config(2, overrides=CPU).absent_targets == "regress"
    config = load_training_config(2, overrides=[*CPU, "absent_targets=mask", "lora_r=4"])
    model = make_model()
    model.config.absent_targets = "regress"
    prepare_model_for_stage(model, 2, config)
    assert model.config.absent_targets == "mask"
    with pytest.raises(ValueError, match="absent_targets must be 'regress' or 'mask', got 'ignore'"):
        load_training_config(2, overrides=[*CPU, "absent_targets=ignore"])
