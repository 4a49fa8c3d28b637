"""Gradient accumulation must not change the loss scale.

Two micro-batches of one sample (gradient_accumulation_steps=2) must give the same update as one batch of two,
through transformers.Trainer's num_items_in_batch path, for the LM term and both L1 terms.
"""

import torch
from torch.utils.data import Dataset
from transformers import Trainer, TrainingArguments

from pite.modeling_pite import PiTeForConditionalGeneration
from pite.training.loss_normalization import RegressionCountsMixin, count_regression_items


class CountingTrainer(RegressionCountsMixin, Trainer):
    pass


def _samples(make_video_prompt):
    generator = torch.Generator().manual_seed(0)
    samples = []
    for prefix, supervised, points, trajectory_tokens in (((1, 5), 2, 1, 1), ((1, 5, 6, 9, 10), 6, 3, 2)):
        ids = make_video_prompt(4, prefix=prefix)
        L = len(ids)
        labels = ids.clone()
        labels[: L - supervised] = -100
        point_labels = torch.full((L, 2), -1.0)
        point_labels[L - points :] = torch.rand(points, 2, generator=generator)
        trajectory_labels = torch.full((L, 3, 4, 2), -1.0)
        trajectory_labels[L - trajectory_tokens :] = torch.rand(trajectory_tokens, 3, 4, 2, generator=generator)
        trajectory_labels[L - 1, 0, :2] = -1.0  # absent points
        samples.append(
            dict(
                input_ids=ids,
                labels=labels,
                point_labels=point_labels,
                trajectory_labels=trajectory_labels,
                video_features=torch.randn(4, 24, generator=generator),
            )
        )
    return samples


class ListDataset(Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def right_pad_collate(batch):
    width = max(len(s["input_ids"]) for s in batch)
    out = {}
    for key, fill in (("input_ids", 0), ("labels", -100), ("point_labels", -1.0), ("trajectory_labels", -1.0)):
        rows = []
        for s in batch:
            pad = width - len(s[key])
            rows.append(torch.cat([s[key], torch.full((pad, *s[key].shape[1:]), fill, dtype=s[key].dtype)]))
        out[key] = torch.stack(rows)
    out["attention_mask"] = torch.stack(
        [torch.cat([torch.ones(len(s["input_ids"])), torch.zeros(width - len(s["input_ids"]))]).long() for s in batch]
    )
    out["video_features"] = torch.stack([s["video_features"] for s in batch])
    return out


def _train_one_step(tmp_path, config, samples, batch_size, accumulation):
    torch.manual_seed(0)
    model = PiTeForConditionalGeneration(config)
    args = TrainingArguments(
        output_dir=str(tmp_path / f"run_{batch_size}_{accumulation}"),
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        max_steps=1,
        learning_rate=1.0,
        optim="sgd",
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=0.0,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        seed=0,
        data_seed=0,
    )
    trainer = CountingTrainer(
        model=model, args=args, train_dataset=ListDataset(samples), data_collator=right_pad_collate
    )
    trainer.train_dataloader_shuffle = False
    trainer._get_train_sampler = lambda *a, **k: torch.utils.data.SequentialSampler(trainer.train_dataset)
    assert trainer.model_accepts_loss_kwargs
    trainer.train()
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def test_two_micro_batches_of_one_equal_one_batch_of_two(tmp_path, make_tiny_config, make_video_prompt):
    config = make_tiny_config(localization_loss_weight=2.0)
    samples = _samples(make_video_prompt)
    torch.manual_seed(0)
    initial = {n: p.detach().clone() for n, p in PiTeForConditionalGeneration(config).named_parameters()}
    accumulated = _train_one_step(tmp_path, config, samples, batch_size=1, accumulation=2)
    batched = _train_one_step(tmp_path, config, samples, batch_size=2, accumulation=1)
    for name in ("localization_head.weight", "trajectory_head.weight", "lm_head.weight", "model.video_adapter.weight"):
        assert not torch.equal(accumulated[name], initial[name]), f"{name} was not updated"
        torch.testing.assert_close(accumulated[name], batched[name], rtol=1e-5, atol=1e-6, msg=name)


def test_counts_follow_the_shifted_valid_entries(make_video_prompt):
    samples = _samples(make_video_prompt)
    batch = right_pad_collate(samples)
    counts = count_regression_items(batch)
    # points: 1 + 3 supervised tokens; trajectories: (1 + 2 tokens) * 12 entries - 2 absent in each sample's last token
    assert counts["num_point_items_in_batch"].item() == 4
    assert counts["num_trajectory_items_in_batch"].item() == 3 * 12 - 2 * 2
