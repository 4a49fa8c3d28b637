"""`PiTeSFTTrainer`: TRL's SFTTrainer training PiTe's own loss (CE + lambda * L1), with each term logged.

TRL 1.16 computes the LM loss itself from a fused LM head and would drop the L1 terms the model adds, so
`compute_loss` calls the model's plain forward through `transformers.Trainer.compute_loss` (which passes the
gradient-accumulation token count and scales for multi-process averaging). `RegressionCountsMixin` adds the matching
counts of valid points / trajectory entries, so every term is normalised over the whole accumulated, all-process batch.

Logged per term (`lm_loss`, `localization_loss`, `trajectory_loss`; `eval_` prefixed in evaluation): the mean per
supervised item over all micro-batches and processes since the last log (sums and counts are reduced across processes
at logging time), whatever the accumulation and the number of processes.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from transformers import Trainer
from trl import SFTTrainer

from pite.processing import IGNORE_INDEX

from .loss_normalization import RegressionCountsMixin, count_regression_items

# (model output term, its target in the batch, the batch's whole-step count of its items); the token count of the
# LM term is Trainer's own `num_items_in_batch`.
LOSS_TERMS = (
    ("lm_loss", "labels", None),
    ("localization_loss", "point_labels", "num_point_items_in_batch"),
    ("trajectory_loss", "trajectory_labels", "num_trajectory_items_in_batch"),
)


class PiTeSFTTrainer(RegressionCountsMixin, SFTTrainer):
    """SFTTrainer for one stage of the PiTe recipe (the stage is set up on the model by `prepare_model_for_stage`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # per mode: term -> [sum of per-item losses, number of items] of this process since the last log
        self._loss_sums: dict[str, dict[str, list[torch.Tensor]]] = {"train": defaultdict(list), "eval": defaultdict(list)}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
        inputs = {**inputs, "use_cache": False}
        if num_items_in_batch is not None:
            for _, target_key, count_key in LOSS_TERMS:
                if count_key is not None and target_key in inputs and count_key not in inputs:
                    raise RuntimeError(f"{count_key} missing from a batch with {target_key}: the L1 term would be mis-scaled")
        loss, outputs = Trainer.compute_loss(self, model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        self._record_loss_terms(inputs, outputs, num_items_in_batch)
        return (loss, outputs) if return_outputs else loss

    @torch.no_grad()
    def _record_loss_terms(self, inputs: dict[str, Any], outputs: Any, num_items_in_batch: Any) -> None:
        mode = "train" if self.model.training else "eval"
        config = self.accelerator.unwrap_model(self.model).config
        local_counts = {"lm_loss": (inputs["labels"][:, 1:] != IGNORE_INDEX).sum()} if "labels" in inputs else {}
        regression = count_regression_items(
            inputs, getattr(config, "absent_coordinate", -1.0), getattr(config, "absent_targets", "mask")
        )
        for term, _, count_key in LOSS_TERMS:
            value = outputs.get(term) if hasattr(outputs, "get") else None
            if value is None:
                continue
            count = local_counts.get(term) if count_key is None else regression.get(count_key)
            if count is None:
                continue
            # The model divided this micro-batch's sum by the whole step's count when it was given, else by its own.
            denominator = num_items_in_batch if count_key is None else inputs.get(count_key)
            if denominator is None:
                denominator = count.clamp(min=1)
            total = value.detach().float() * torch.as_tensor(denominator, device=value.device).float()
            sums = self._loss_sums[mode][term]
            if not sums:
                sums += [torch.zeros((), device=value.device), torch.zeros((), device=value.device)]
            sums[0] += total
            sums[1] += count.to(value.device).float()

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        prefix = "eval_" if mode == "eval" else ""
        sums = self._loss_sums[mode]
        if sums:
            terms = sorted(sums)
            stacked = torch.stack([torch.stack(sums[term]) for term in terms])  # (terms, 2): sum, count
            stacked = self.accelerator.reduce(stacked, reduction="sum") if self.accelerator.num_processes > 1 else stacked
            for term, (total, count) in zip(terms, stacked.tolist()):
                if count > 0:
                    logs[f"{prefix}{term}"] = total / count
            sums.clear()
        super().log(logs, start_time)

