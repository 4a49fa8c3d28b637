"""Exact loss normalisation for PiTe under gradient accumulation and multi-process training.

transformers' `Trainer` counts the supervised tokens of all micro-batches of one optimizer step (`num_items_in_batch`)
and hands that count to a model that accepts loss kwargs, so the LM loss of every micro-batch is divided by the same
number. PiTe's L1 terms need the same treatment with their own counts (valid points, valid trajectory entries).
`RegressionCountsMixin` computes those counts over the accumulated micro-batches (and across processes), and stores
them in every micro-batch as `num_point_items_in_batch` / `num_trajectory_items_in_batch`, which
`PiTeForConditionalGeneration.forward` reads.
"""

from __future__ import annotations

from typing import Any

import torch

from pite.modeling_pite.losses_pite import ABSENT_COORDINATE, regression_mask

REGRESSION_TARGETS = (
    ("point_labels", "point_mask", "num_point_items_in_batch"),
    ("trajectory_labels", "trajectory_mask", "num_trajectory_items_in_batch"),
)


def count_regression_items(
    batch: dict[str, Any], absent_coordinate: float = ABSENT_COORDINATE, absent_targets: str = "mask"
) -> dict[str, torch.Tensor]:
    """Regression items that count (shifted) in one micro-batch, per target kind present in `batch`.

    Mirrors `shifted_masked_l1_sum`: targets of token t are regressed from position t - 1, so position 0 never
    counts, and `absent_targets` decides whether absent points at supervised text positions count.
    """
    counts = {}
    labels = batch.get("labels")
    for target_key, mask_key, count_key in REGRESSION_TARGETS:
        targets = batch.get(target_key)
        if targets is None:
            continue
        mask = batch.get(mask_key)
        counts[count_key] = regression_mask(
            targets[:, 1:],
            None if labels is None else labels[:, 1:],
            None if mask is None else mask[:, 1:],
            absent_coordinate,
            absent_targets,
        ).sum()
    return counts


class RegressionCountsMixin:
    """Mix into a `transformers.Trainer` subclass (before it in the bases) training a PiTe model."""

    def get_batch_samples(self, epoch_iterator, num_batches, device):  # noqa: ANN001 - Trainer's signature
        batch_samples, num_items_in_batch = super().get_batch_samples(epoch_iterator, num_batches, device)
        if not batch_samples or not self.model_accepts_loss_kwargs:
            return batch_samples, num_items_in_batch
        config = getattr(self.accelerator.unwrap_model(self.model), "config", None)
        absent = ABSENT_COORDINATE
        absent_targets = getattr(config, "absent_targets", "mask")
        totals: dict[str, torch.Tensor] = {}
        for batch in batch_samples:
            for key, count in count_regression_items(batch, absent, absent_targets).items():
                totals[key] = totals.get(key, 0) + count.to(device)
        for key, total in totals.items():
            total = torch.as_tensor(total, device=device)
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                # Trainer multiplies the loss by the number of processes when it averages token counts across
                # devices; summing our counts over processes keeps the L1 terms consistent with the LM term.
                total = self.accelerator.gather(total.reshape(1)).sum()
            for batch in batch_samples:
                batch[key] = total
        return batch_samples, num_items_in_batch
