"""The memory estimate counts the parameters a stage really trains, and its arithmetic."""

import pytest

from pite.training.memory import StageParameters, stage_parameter_counts, training_state_bytes
from pite.training.stages import prepare_model_for_stage


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_counts_match_the_stage_model_built_for_training(make_model, stage):
    from pite.training.config import load_training_config

    model = make_model()
    counts = stage_parameter_counts(model.config, stage, lora_r=4, lora_alpha=8)
    recipe = load_training_config(
        stage,
        overrides=["use_cpu=true", "bf16=false", "output_dir=unused", "lora_r=4", "lora_alpha=8", "lora_dropout=0"],
    )
    peft_model = prepare_model_for_stage(make_model(), stage, recipe)
    trained = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    lora = sum(p.numel() for n, p in peft_model.named_parameters() if ".lora_" in n)
    assert (counts.trained, counts.lora) == (trained, lora)
    assert counts.frozen + counts.trained == sum(p.numel() for p in model.parameters()) + lora


def test_lora_count_of_a_7b_language_model_by_hand():
    from pite.modeling_pite import PiTeConfig

    counts = stage_parameter_counts(PiTeConfig(), 3)  # Vicuna-7B sizes: 32 layers, hidden 4096, MLP 11008
    per_layer = 64 * (4 * (4096 + 4096) + 2 * (4096 + 11008) + (11008 + 4096))
    assert counts.lora == counts.trained == 32 * per_layer == 159_907_840


def test_bytes_per_parameter_and_sharding():
    counts = StageParameters(stage=2, frozen=1000, trained=10, lora=8)
    assert training_state_bytes(counts) == {"frozen_weights": 2000, "trained_states": 160, "total": 2160}
    assert training_state_bytes(counts, num_processes=8) == training_state_bytes(counts)  # DDP replicates
    assert training_state_bytes(counts, num_processes=8, sharded=True)["total"] == 2160 / 8
    assert training_state_bytes(counts, weight_bytes=4)["frozen_weights"] == 4000
