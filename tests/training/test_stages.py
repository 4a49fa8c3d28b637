"""The three-stage recipe end to end on a tiny model: stage 1 from an untrained checkpoint folder, stage 2 from
stage 1's output folder, stage 3 from stage 2's. Observations are taken at the start and the end of each stage's
training (before the LoRA is merged) by a callback, then checked by the tests below."""

import os

import pytest
import torch
from transformers import TrainerCallback

from pite.modeling_pite import PiTeForConditionalGeneration
from pite.training import ExampleFeaturizer, PiTeDataCollator, build_stage_dataset, read_run_summary, run_stage

STEPS = 8


class Probe(TrainerCallback):
    """Snapshots parameters, their trainability and the outputs on a fixed batch at train begin and end."""

    def __init__(self, batch):
        self.batch = batch
        self.seen = {}

    def _observe(self, model):
        was_training = model.training
        model.eval()
        with torch.no_grad():
            outputs = model(**self.batch)
        model.train(was_training)
        return {
            "params": {name: p.detach().clone() for name, p in model.named_parameters()},
            "trainable": {name for name, p in model.named_parameters() if p.requires_grad},
            "losses": {
                k: float(outputs[k])
                for k in ("loss", "lm_loss", "localization_loss", "trajectory_loss")
                if outputs.get(k) is not None
            },
            "logits": outputs.logits,
        }

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.seen["begin"] = self._observe(model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.seen["end"] = self._observe(model)


@pytest.fixture(scope="module")
def chain(tmp_path_factory, base_checkpoint, processor, stage_data, cpu_overrides):
    root = tmp_path_factory.mktemp("chain")
    collator = PiTeDataCollator(pad_token_id=processor.tokenizer.pad_token_id)
    results, previous = {}, base_checkpoint
    for stage in (1, 2, 3):
        files, media = stage_data[stage]
        dataset, _ = build_stage_dataset(stage, files, [media], ExampleFeaturizer(processor, 3, 256))
        probe = Probe(collator([dataset[i] for i in range(len(dataset))]))
        output = str(root / f"stage{stage}")
        run = run_stage(
            stage, previous, output, files, media, overrides={**cpu_overrides, "max_steps": STEPS}, callbacks=[probe]
        )
        results[stage] = {"run": run, "probe": probe, "output": output, "input": previous}
        previous = output
    return results


@pytest.mark.parametrize("stage, l1", [(1, "localization_loss"), (2, "trajectory_loss"), (3, None)])
def test_each_stage_loss_falls(chain, stage, l1):
    begin, end = (chain[stage]["probe"].seen[k]["losses"] for k in ("begin", "end"))
    assert end["loss"] < begin["loss"] - 0.05, (begin, end)
    if l1:
        assert end[l1] < 0.8 * begin[l1], (begin, end)
    else:
        assert set(end) == {"loss", "lm_loss"}  # stage 3: label-smoothed CE only
    assert chain[stage]["run"].model.config.label_smoothing == (0.1 if stage == 3 else 0.0)


EXPECTED_FULLY_TRAINED = {1: ("video_adapter", "localization_head"), 2: ("trajectory_head",), 3: ()}


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_only_the_stage_modules_train_and_everything_else_is_bit_identical(chain, stage):
    begin, end = (chain[stage]["probe"].seen[k] for k in ("begin", "end"))
    trainable = begin["trainable"]
    assert trainable == end["trainable"]
    for name in trainable:
        is_lora = ".lora_A." in name or ".lora_B." in name
        assert is_lora or any(f"{module}.modules_to_save." in name for module in EXPECTED_FULLY_TRAINED[stage]), name
        if is_lora:
            assert ".language_model." in name, name  # LoRA only on the LLM, never the tower or the heads
    assert any(".lora_B." in name for name in trainable)
    for module in EXPECTED_FULLY_TRAINED[stage]:
        assert any(f"{module}.modules_to_save." in name for name in trainable), module
    frozen = [name for name in begin["params"] if name not in trainable]
    assert any("vision_tower" in n for n in frozen) and any("embed_tokens" in n for n in frozen)
    assert any(n.endswith("lm_head.weight") for n in frozen)
    for name in frozen:
        assert torch.equal(begin["params"][name], end["params"][name]), f"frozen {name} changed"
    moved = [name for name in trainable if not torch.equal(begin["params"][name], end["params"][name])]
    assert any(".lora_B." in name for name in moved)
    for module in EXPECTED_FULLY_TRAINED[stage]:
        assert any(f"{module}.modules_to_save." in name for name in moved), f"{module} did not train"


def test_stage2_trajectory_head_starts_as_the_tiled_localization_head(chain):
    params = chain[2]["probe"].seen["begin"]["params"]
    prefix = "base_model.model."
    trajectory = params[prefix + "trajectory_head.modules_to_save.default.weight"]
    localization = params[prefix + "localization_head.weight"]
    assert torch.equal(trajectory, localization.repeat(3 * 4, 1))
    bias = params[prefix + "trajectory_head.modules_to_save.default.bias"]
    assert torch.equal(bias, params[prefix + "localization_head.bias"].repeat(3 * 4))
    # and the localization head it copied is stage 1's trained one, read back from stage 1's output folder
    stage1 = PiTeForConditionalGeneration.from_pretrained(chain[1]["output"])
    assert torch.equal(localization, stage1.localization_head.weight)
    assert not torch.equal(
        stage1.localization_head.weight,
        PiTeForConditionalGeneration.from_pretrained(chain[1]["input"]).localization_head.weight,
    )


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_merging_the_lora_keeps_the_function_and_the_folder_reloads(chain, stage):
    probe, run = chain[stage]["probe"], chain[stage]["run"]
    unmerged = probe.seen["end"]["logits"]
    merged = run.model.eval()
    with torch.no_grad():
        merged_logits = merged(**probe.batch).logits
        reloaded = PiTeForConditionalGeneration.from_pretrained(chain[stage]["output"]).eval()
        reloaded_logits = reloaded(**probe.batch).logits
    torch.testing.assert_close(merged_logits, unmerged, rtol=0, atol=1e-5)
    torch.testing.assert_close(reloaded_logits, merged_logits, rtol=0, atol=1e-6)
    assert "forward" not in vars(merged)  # TRL's fused-head patch is removed from the returned model


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_output_folder_layout(chain, stage):
    output = chain[stage]["output"]
    for name in (
        "config.json",
        "model.safetensors",
        "configuration_pite.py",
        "modeling_pite.py",
        os.path.join("lora", "adapter_config.json"),
        os.path.join("lora", "adapter_model.safetensors"),
    ):
        assert os.path.isfile(os.path.join(output, name)), name
    assert not [name for name in os.listdir(output) if name.startswith(".tmp")]
    summary = read_run_summary(output)
    assert summary["stage"] == stage and summary["global_step"] == STEPS and summary["records_skipped"] == 0
    assert summary["model_name_or_path"] == chain[stage]["input"]
    assert any("lm_loss" in entry for entry in summary["log_history"])


def test_final_checkpoint_is_standalone_and_carries_every_stage(chain):
    final = PiTeForConditionalGeneration.from_pretrained(chain[3]["output"])
    stage2 = PiTeForConditionalGeneration.from_pretrained(chain[2]["output"])
    stage1 = PiTeForConditionalGeneration.from_pretrained(chain[1]["output"])
    assert torch.equal(final.trajectory_head.weight, stage2.trajectory_head.weight)
    assert torch.equal(final.localization_head.weight, stage1.localization_head.weight)
    assert torch.equal(final.model.video_adapter.weight, stage1.model.video_adapter.weight)
    q_proj = "model.language_model.layers.0.self_attn.q_proj.weight"
    weights = [dict(m.named_parameters())[q_proj] for m in (stage1, stage2, final)]
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])  # each LoRA merged
    assert all(not p.requires_grad for p in final.model.vision_tower.parameters())


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory, chain, processor, stage_data, cpu_overrides):
    """Stage 3 from stage 2's output again, replaying stage 2's data (`rehearsal_data_files`)."""
    (files, media), (stage2_files, _) = stage_data[3], stage_data[2]
    featurizer = ExampleFeaturizer(processor, 3, 256)
    instructions, _ = build_stage_dataset(3, files, [media], featurizer)
    mixed, report = build_stage_dataset(3, files, [media], featurizer, rehearsal_data_files=stage2_files)
    collator = PiTeDataCollator(pad_token_id=processor.tokenizer.pad_token_id)
    probe = Probe(collator([mixed[i] for i in range(len(mixed))]))
    output = str(tmp_path_factory.mktemp("rehearsal") / "stage3")
    run = run_stage(
        3,
        chain[2]["output"],
        output,
        files,
        media,
        callbacks=[probe],
        overrides={**cpu_overrides, "max_steps": STEPS, "rehearsal_data_files": stage2_files},
    )
    return {
        "run": run,
        "probe": probe,
        "output": output,
        "instructions": instructions,
        "mixed": mixed,
        "report": report,
        "collator": collator,
    }


def test_stage3_rehearsal_mixes_stage2_conversations_whose_trajectories_alone_count(rehearsal, stage_data):
    from pite.training.loss_normalization import count_regression_items

    instructions, mixed, collator = rehearsal["instructions"], rehearsal["mixed"], rehearsal["collator"]
    replayed = [mixed[i] for i in range(len(instructions), len(mixed))]
    assert len(replayed) > 0 and rehearsal["report"].kept == len(mixed)
    only_instructions = collator([mixed[i] for i in range(len(instructions))])
    both = collator([mixed[0], *replayed])  # instructions and replayed conversations share a batch
    for mode in ("mask", "regress"):  # instructions count in neither, also where absent targets are regressed
        assert count_regression_items(only_instructions, -1.0, mode)["num_trajectory_items_in_batch"] == 0
        assert (
            count_regression_items(both, -1.0, mode)["num_trajectory_items_in_batch"]
            == count_regression_items(collator(replayed), -1.0, mode)["num_trajectory_items_in_batch"]
            > 0
        )


def test_stage3_rehearsal_trains_the_trajectory_head_on_its_loss(rehearsal, chain):
    begin, end = (rehearsal["probe"].seen[k] for k in ("begin", "end"))
    assert set(end["losses"]) == {"loss", "lm_loss", "trajectory_loss"}
    # what rehearsal is for: after the same steps, the stage-2 trajectories are fitted better than by plain stage 3
    replayed = rehearsal["collator"](
        [rehearsal["mixed"][i] for i in range(len(rehearsal["instructions"]), len(rehearsal["mixed"]))]
    )
    with torch.no_grad():
        plain = chain[3]["run"].model.eval()(**replayed).trajectory_loss
        rehearsed = rehearsal["run"].model.eval()(**replayed).trajectory_loss
    assert rehearsed < 0.9 * plain
    head = "base_model.model.trajectory_head.modules_to_save.default.weight"
    assert head in begin["trainable"]
    assert not torch.equal(begin["params"][head], end["params"][head])
    assert any("trajectory_loss" in entry for entry in read_run_summary(rehearsal["output"])["log_history"])
    final = PiTeForConditionalGeneration.from_pretrained(rehearsal["output"])
    assert torch.equal(final.trajectory_head.weight, end["params"][head])


def test_rehearsal_records_must_be_stage2_records(stage_data, processor):
    from pite.data.stage_dataset import load_stage_examples, with_rehearsal

    files, media = stage_data[3]
    featurizer = ExampleFeaturizer(processor, 3, 256)
    with pytest.raises(ValueError, match=r"valley\.json item 0: missing field\(s\) \['video_id'"):
        build_stage_dataset(3, files, [media], featurizer, rehearsal_data_files=[files[0]])
    instructions, _ = load_stage_examples(3, files, [media], featurizer)
    with pytest.raises(ValueError, match="rehearsal record must carry trajectory targets"):
        with_rehearsal(instructions, instructions[:1])
