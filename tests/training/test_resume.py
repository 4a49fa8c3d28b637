"""A run interrupted after k steps and resumed from its last checkpoint ends with the weights of an uninterrupted
run."""

import logging
import os
import shutil

import torch
from transformers import TrainerCallback

from pite.cli.main import main as pite_main
from pite.modeling_pite import PiTeForConditionalGeneration
from pite.training import run_stage


class StopAfter(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
        return control


def test_interrupted_and_resumed_equals_uninterrupted(base_checkpoint, stage_data, tmp_path, cpu_overrides, caplog):
    files, media = stage_data[1]
    overrides = {**cpu_overrides, "max_steps": 4, "save_strategy": "steps", "save_steps": 2}
    straight = run_stage(1, base_checkpoint, str(tmp_path / "straight"), files, media, overrides=overrides).model

    interrupted_dir = str(tmp_path / "interrupted")
    first = run_stage(1, base_checkpoint, interrupted_dir, files, media, overrides=overrides, callbacks=[StopAfter(2)])
    assert first.trainer.state.global_step == 2 and os.path.isdir(os.path.join(interrupted_dir, "checkpoint-2"))
    # A newer checkpoint left incomplete by a kill while saving (no trainer_state.json) is skipped, with a warning.
    incomplete = os.path.join(interrupted_dir, "checkpoint-3")
    shutil.copytree(os.path.join(interrupted_dir, "checkpoint-2"), incomplete)
    os.remove(os.path.join(incomplete, "trainer_state.json"))
    with caplog.at_level(logging.WARNING, logger="pite.training.api"):
        resumed = run_stage(
            1, base_checkpoint, interrupted_dir, files, media, overrides=overrides, resume_from_checkpoint=True
        )
    assert "checkpoint-3" in caplog.text and "incomplete" in caplog.text
    assert resumed.trainer.state.global_step == 4

    expected = straight.state_dict()
    for key, value in resumed.model.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=1e-6, msg=key)
    untrained = PiTeForConditionalGeneration.from_pretrained(base_checkpoint).state_dict()
    for key in ("localization_head.weight", "model.language_model.layers.1.mlp.down_proj.weight"):
        assert not torch.equal(expected[key], untrained[key]), f"{key} did not train: the comparison would be vacuous"


def test_cli_train_writes_the_stage_and_resumes(base_checkpoint, stage_data, tmp_path, cpu_overrides, capsys):
    files, media = stage_data[3]
    output = tmp_path / "cli"
    overrides = {**cpu_overrides, "max_steps": 2, "save_strategy": "steps", "save_steps": 2}
    args = [
        "train",
        "--stage",
        "3",
        f"model_name_or_path={base_checkpoint}",
        f"data_files=[{files[0]}, {files[1]}]",
        f"media_dir={media}",
        f"output_dir={output}",
    ] + [f"{k}={'null' if v is None else v}" for k, v in overrides.items()]
    assert pite_main(args) == 0
    assert f"stage 3 written to {output}" in capsys.readouterr().out
    reloaded = PiTeForConditionalGeneration.from_pretrained(output)
    assert reloaded.config.label_smoothing == 0.1  # the stage-3 recipe's value reached the model
    # training again into the finished run is refused (nothing changes); --resume (anywhere among the overrides)
    # trains no further step and rewrites the same model
    weights = (output / "model.safetensors").read_bytes()
    assert pite_main(args) == 2
    assert "already holds a training run" in capsys.readouterr().err
    assert (output / "model.safetensors").read_bytes() == weights
    assert pite_main(args[:5] + ["--resume"] + args[5:]) == 0
    again = PiTeForConditionalGeneration.from_pretrained(output)
    for key, value in reloaded.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value, rtol=0, atol=1e-6, msg=key)
    assert pite_main(["train", "--stage", "3", "lora_rank=3", f"output_dir={output}"]) == 2
    assert "unknown training config field 'lora_rank'" in capsys.readouterr().err


def test_newest_complete_checkpoint_skips_incomplete_ones(tmp_path, caplog):
    from pite.training.api import newest_complete_checkpoint

    for step, complete in ((2, True), (4, True), (6, False), (10, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    with caplog.at_level(logging.WARNING, logger="pite.training.api"):
        assert newest_complete_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-4")
    assert "checkpoint-10" in caplog.text and "checkpoint-6" in caplog.text
    caplog.clear()
    (tmp_path / "checkpoint-2" / "trainer_state.json").unlink()
    (tmp_path / "checkpoint-4" / "trainer_state.json").unlink()
    with caplog.at_level(logging.WARNING, logger="pite.training.api"):
        assert newest_complete_checkpoint(str(tmp_path)) is None
    assert "checkpoint-2" in caplog.text
