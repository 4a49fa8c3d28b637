"""Plain `transformers.Trainer` finetuning: one call turns a conversation into inputs with labels, the collator takes
the processor's outputs as they are, and with `PiTeTrainer` (RegressionCountsMixin) gradient accumulation equals one
batch; `Trainer` alone does not (the difference is printed)."""

import os

import pytest
import torch
from transformers import Trainer, TrainingArguments

from pite.training import PiTeDataCollator, PiTeTrainer, conversation_inputs


def _samples(processor, world, make_trajectory):
    samples = []
    for index, (colour, shape, direction, start) in enumerate((("red", "square", 1, 0), ("blue", "circle", -1, 2))):
        phrase = f"the {colour} {shape}"
        answer = f"{phrase} moves to the {'right' if direction > 0 else 'left'}"
        messages = [
            {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What is happening?"}]},
            {"role": "assistant", "content": answer},
        ]
        samples.append(
            conversation_inputs(
                processor,
                messages,
                video=os.path.join(world["videos"], f"vid{index}.mp4"),
                trajectory_targets=[{"turn": 0, "span": [0, len(phrase)], "value": make_trajectory(direction, start)}],
            )
        )
    return samples


def test_conversation_inputs_is_the_processors_output_plus_labels(processor, world, make_trajectory, dims):
    sample = _samples(processor, world, make_trajectory)[0]
    assert {
        "input_ids",
        "attention_mask",
        "labels",
        "pixel_values_videos",
        "video_metadata",
        "trajectory_labels",
    } == set(sample)
    length = sample["input_ids"].shape[1]
    assert sample["labels"].shape == (1, length) and bool(sample["attention_mask"].all())
    assert sample["pixel_values_videos"].shape[:2] == (1, dims.frames)
    assert sample["trajectory_labels"].shape == (1, length, dims.points, dims.frames, 2)
    supervised = sample["labels"][0] != -100
    with_target = (sample["trajectory_labels"][0] != -1).any(-1).any(-1).any(-1)
    assert with_target.any() and bool((supervised | ~with_target).all())  # targets only on answer tokens
    question = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What is happening?"}]}]
    prompt = processor.apply_chat_template(question, add_generation_prompt=True)
    direct = processor(text=prompt, videos=[os.path.join(world["videos"], "vid0.mp4")], return_tensors="pt")
    prefix = direct["input_ids"].shape[1]
    assert torch.equal(sample["input_ids"][:, :prefix], direct["input_ids"])  # same tokens as the processor's prompt
    assert torch.equal(sample["pixel_values_videos"], direct["pixel_values_videos"])


def test_collator_takes_the_processor_outputs_as_they_are(processor, world, make_trajectory, make_model):
    samples = _samples(processor, world, make_trajectory)
    batch = PiTeDataCollator(pad_token_id=processor.tokenizer.pad_token_id)(samples)
    assert batch["input_ids"].shape[0] == 2 and len(batch["video_metadata"]) == 2
    lengths = [sample["input_ids"].shape[1] for sample in samples]
    assert batch["attention_mask"].sum(1).tolist() == lengths
    outputs = make_model()(**batch)
    assert torch.isfinite(outputs.loss) and outputs.trajectory_loss is not None


def _finetune(trainer_class, model, samples, collator, tmp_path, batch_size, accumulation):
    args = TrainingArguments(
        output_dir=str(tmp_path / f"{trainer_class.__name__}-{batch_size}x{accumulation}"),
        use_cpu=True,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        max_steps=1,
        optim="sgd",
        learning_rate=1.0,
        lr_scheduler_type="constant",
        report_to="none",
        save_strategy="no",
        remove_unused_columns=False,
        disable_tqdm=True,
        seed=0,
        dataloader_num_workers=0,
    )
    trainer = trainer_class(model=model, args=args, train_dataset=samples, data_collator=collator)
    trainer.train()
    return {name: value.detach().clone() for name, value in model.named_parameters()}


def test_plain_trainer_finetunes_and_the_mixin_makes_accumulation_exact(
    processor, world, make_trajectory, make_model, tmp_path
):
    samples = _samples(processor, world, make_trajectory)
    collator = PiTeDataCollator(pad_token_id=processor.tokenizer.pad_token_id)
    initial = {name: value.detach().clone() for name, value in make_model(seed=3).named_parameters()}
    differences = {}

    def model_with(absent_targets):
        model = make_model(seed=3)
        model.config.absent_targets = absent_targets
        return model

    for absent_targets in ("mask", "regress"):
        for trainer_class in (PiTeTrainer, Trainer):
            one_batch = _finetune(trainer_class, model_with(absent_targets), samples, collator, tmp_path, 2, 1)
            accumulated = _finetune(trainer_class, model_with(absent_targets), samples, collator, tmp_path, 1, 2)
            assert not torch.equal(one_batch["trajectory_head.weight"], initial["trajectory_head.weight"])
            differences[f"{trainer_class.__name__}, {absent_targets}"] = max(
                float((one_batch[n] - accumulated[n]).abs().max()) for n in one_batch
            )
    print(f"\nmax |weights(batch 2) - weights(2 x batch 1)| after one SGD step (lr 1): {differences}")
    assert differences["PiTeTrainer, mask"] <= 1e-6 and differences["PiTeTrainer, regress"] <= 1e-6
    # Masked targets: the L1 items per micro-batch are not proportional to its tokens, so Trainer's scaling is off.
    assert differences["Trainer, mask"] > 100 * max(differences["PiTeTrainer, mask"], 1e-7)


def test_collator_names_what_it_cannot_take(processor, world, make_trajectory):
    sample = dict(_samples(processor, world, make_trajectory)[0])
    collator = PiTeDataCollator(pad_token_id=processor.tokenizer.pad_token_id)
    padded = {**sample, "attention_mask": torch.cat([sample["attention_mask"][:, :-1], torch.zeros(1, 1).long()], 1)}
    with pytest.raises(ValueError, match="attention_mask must be all ones"):
        collator([padded])
    two = {
        key: torch.cat([value, value]) if isinstance(value, torch.Tensor) else value * 2
        for key, value in sample.items()
    }
    with pytest.raises(ValueError, match="one conversation"):
        collator([two])
