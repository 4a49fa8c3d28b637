"""A 2-process CPU DDP run (torchrun, gloo) trains, and both ranks end with identical weights."""

import json
import os
import subprocess

import pytest
import torch
from safetensors.torch import load_file

from pite.modeling_pite import PiTeForConditionalGeneration

from .launching import TORCHRUN_TWO_PROCESSES, launch_env


@pytest.mark.slow
def test_two_process_gloo_ddp_trains_identically_on_both_ranks(base_checkpoint, world, tmp_path):
    output = tmp_path / "ddp"
    worker = os.path.join(os.path.dirname(__file__), "ddp_worker.py")
    command = [
        *TORCHRUN_TWO_PROCESSES,
        worker,
        base_checkpoint,
        str(output),
        world["narratives"],
        world["images"],
    ]
    result = subprocess.run(command, env=launch_env(), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    logs = [json.loads((output / f"rank{rank}_log.json").read_text()) for rank in (0, 1)]
    assert [entry for entry in logs[0] if "lm_loss" in entry and "localization_loss" in entry]
    assert logs[0] == logs[1]  # each term is reduced over both processes before it is logged
    rank0, rank1 = (load_file(str(output / f"rank{rank}.safetensors")) for rank in (0, 1))
    assert rank0.keys() == rank1.keys()
    for key, value in rank0.items():
        assert torch.equal(value, rank1[key]), f"{key} differs between ranks"
    untrained = PiTeForConditionalGeneration.from_pretrained(base_checkpoint).state_dict()
    for key in (
        "localization_head.weight",
        "model.video_adapter.weight",
        "model.language_model.layers.0.self_attn.q_proj.weight",
    ):
        assert not torch.equal(rank0[key], untrained[key]), f"{key} did not train"
    saved = PiTeForConditionalGeneration.from_pretrained(output).state_dict()  # written once, by rank 0
    for key, value in rank0.items():
        assert torch.equal(saved[key], value), key
