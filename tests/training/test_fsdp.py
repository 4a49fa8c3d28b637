"""Stage 2 under FSDP2 (2 CPU processes, gloo, launched with the shipped accelerate config) equals one process, and
resuming its sharded step-2 checkpoint ends where the uninterrupted run ends."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from pite.training import run_stage

from .fsdp_worker import OVERRIDES
from .launching import launch_env

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FSDP_CONFIG = os.path.join(REPOSITORY, "training", "configs", "accelerate", "fsdp.yaml")
# The shipped config is for GPUs in bf16; on CPU only these flags change (use_cpu and gloo come from OVERRIDES).
CPU_FLAGS = ["--num_processes", "2", "--mixed_precision", "no", "--dynamo_backend", "no"]


def _close(one: dict[str, torch.Tensor], two: dict[str, torch.Tensor], what: str) -> None:
    assert one.keys() == two.keys(), what
    for key, value in one.items():
        difference = (value - two[key]).abs().max()
        assert torch.allclose(value, two[key], rtol=0, atol=1e-5), f"{what}: {key} differs by {difference}"


@pytest.mark.slow
def test_two_process_fsdp_stage2_equals_one_process(base_checkpoint, world, tmp_path):
    one = tmp_path / "one_process"
    run_stage(2, base_checkpoint, one, [world["pite"]], world["videos"], overrides={**OVERRIDES, "ddp_backend": None})

    two, resumed = tmp_path / "fsdp", tmp_path / "fsdp_resumed"
    worker = os.path.join(os.path.dirname(__file__), "fsdp_worker.py")
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        FSDP_CONFIG,
        *CPU_FLAGS,
        worker,
        base_checkpoint,
        str(two),
        str(resumed),
        world["pite"],
        world["videos"],
    ]
    result = subprocess.run(command, env=launch_env(), capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    markers = [(folder / f"distributed-rank{rank}.txt").read_text() for folder in (two, resumed) for rank in (0, 1)]
    assert markers == ["DistributedType.FSDP fsdp: True\n"] * 4  # 2 runs x 2 processes

    trained = load_file(str(two / "gathered.safetensors"))
    untrained = load_file(os.path.join(base_checkpoint, "model.safetensors"))
    assert not torch.equal(trained["trajectory_head.weight"], untrained["trajectory_head.weight"])
    _close(
        load_file(str(one / "lora" / "adapter_model.safetensors")),
        load_file(str(two / "lora" / "adapter_model.safetensors")),
        "lora/",
    )
    merged_one = AutoModel.from_pretrained(one, trust_remote_code=True).state_dict()
    merged_two = AutoModel.from_pretrained(two, trust_remote_code=True).state_dict()
    _close(merged_one, merged_two, "merged output")
    assert type(AutoModel.from_pretrained(two, trust_remote_code=True)).__name__ == "PiTeForConditionalGeneration"
    query = "model.language_model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(merged_two[query], untrained[query]), "the LoRA was merged into the output"
    _close({k: v for k, v in trained.items()}, {k: merged_two[k] for k in trained}, "gathered vs written")

    checkpoint = two / "checkpoint-2"  # sharded: one file per process for the model and for the optimizer
    assert json.loads((checkpoint / "trainer_state.json").read_text())["global_step"] == 2
    for folder in ("pytorch_model_fsdp_0", "optimizer_0"):
        assert sorted(os.listdir(checkpoint / folder)) == [".metadata", "__0_0.distcp", "__1_0.distcp"]
    # Step 3 after resuming needs the step-2 weights, AdamW moments and scheduler from the shards.
    assert json.loads((resumed / "pite_training.json").read_text())["global_step"] == 3
    _close(merged_two, AutoModel.from_pretrained(resumed, trust_remote_code=True).state_dict(), "resumed output")
