"""`PiTeSFTTrainer`: TRL's SFTTrainer, on its own loss path, plus PiTe's L1 terms.

SFTTrainer patches the model's forward with a fused LM head (`fused_lm_head=True` returns per-token
log-probabilities, entropy and top-1 hits instead of logits) and computes the token NLL itself (`loss_type="nll"`),
with its token accuracy and entropy metrics. The L1 terms of PiTe's localization / trajectory heads read the same last
hidden states, so this trainer extends that patched forward to compute them in the same pass (no second forward) and
adds them to SFTTrainer's loss. Nothing else of SFTTrainer changes.
"""

from __future__ import annotations

import functools
import types
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from peft import PeftModel
from transformers import Trainer
from trl import SFTTrainer
from trl.trainer.utils import FusedCausalLMOutput

from pite.modeling_pite.losses_pite import ABSENT_COORDINATE, IGNORE_INDEX

from .loss_normalization import RegressionCountsMixin, count_regression_items

# (logged term, its target in the batch, its optional mask, the batch's whole-step count of its items); the token
# count of the LM term is Trainer's own `num_items_in_batch`.
REGRESSION_TERMS = (
    ("localization_loss", "point_labels", "point_mask", "num_point_items_in_batch"),
    ("trajectory_loss", "trajectory_labels", "trajectory_mask", "num_trajectory_items_in_batch"),
)
REGRESSION_INPUTS = tuple(key for term in REGRESSION_TERMS for key in term[1:])


@dataclass
class PiTeFusedOutput(FusedCausalLMOutput):
    """TRL's fused-head output plus the L1 terms of this micro-batch (normalised like the model's own)."""

    localization_loss: torch.Tensor | None = None
    trajectory_loss: torch.Tensor | None = None


def regression_terms(
    model: Any, hidden_states: torch.Tensor, targets: dict[str, Any], labels: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """L1 terms of `PiTeForConditionalGeneration` from its last hidden states (B, L, H), computed by the model's own
    `regression_loss_terms` (normalised by the whole-step counts in `targets` when given, else by this batch's)."""
    points, trajectories = model._regression_predictions(hidden_states)
    return model.regression_loss_terms(
        points,
        trajectories,
        labels,
        targets.get("point_labels"),
        targets.get("trajectory_labels"),
        targets.get("point_mask"),
        targets.get("trajectory_mask"),
        targets.get("num_point_items_in_batch"),
        targets.get("num_trajectory_items_in_batch"),
    )


def add_regression_to_fused_forward(model: Any, on_output: Callable[[PiTeFusedOutput], None] | None = None) -> None:
    """Extend TRL's fused-LM-head forward patch of `model` (a `PiTeForConditionalGeneration`) with the L1 terms.

    With `fused_lm_head=True` the patched forward returns a `PiTeFusedOutput`: TRL's per-token fields and the L1 terms
    of the point / trajectory targets passed in (computed inside the forward, so DDP/FSDP see the heads used), and
    hands it to `on_output` (SFTTrainer keeps only the token loss of the outputs it asks for).
    """
    fused_forward = model.forward  # TRL's bound patch

    @functools.wraps(type(model).forward)
    def forward(self, *args: Any, fused_lm_head: bool = False, **kwargs: Any) -> Any:
        if not fused_lm_head:
            return fused_forward(*args, **kwargs)
        targets = {key: kwargs.pop(key) for key in REGRESSION_INPUTS if key in kwargs}
        captured: list[torch.Tensor] = []
        handle = self.model.register_forward_hook(
            lambda module, inputs, output: captured.append(output.last_hidden_state)
        )
        try:
            outputs = fused_forward(*args, fused_lm_head=True, **kwargs)
        finally:
            handle.remove()
        terms = regression_terms(self, captured[-1], targets, kwargs.get("labels")) if targets else {}
        result = PiTeFusedOutput(**dict(outputs.items()), **terms)
        if on_output is not None:
            on_output(result)
        return result

    model.forward = types.MethodType(forward, model)


class PiTeSFTTrainer(RegressionCountsMixin, SFTTrainer):
    """SFTTrainer for one stage of the PiTe recipe (the stage is set up on the model by `prepare_model_for_stage`).

    What it adds to `trl.SFTTrainer`, exactly:
    1. The L1 terms: TRL's fused-LM-head forward also runs the model's localization / trajectory heads on the same
       last hidden states (`add_regression_to_fused_forward`), and `compute_loss` returns SFTTrainer's own loss
       (`super().compute_loss`, `loss_type="nll"`) + `localization_loss_weight` x the L1 terms, scaled for
       multi-process averaging as TRL scales its NLL.
    2. Whole-step counts of the L1 items (`RegressionCountsMixin`), so accumulation and processes leave the update
       unchanged, as `num_items_in_batch` does for the tokens.
    3. Per-term logs (`lm_loss`, `localization_loss`, `trajectory_loss`; `eval_`-prefixed in evaluation): the mean per
       supervised item over all micro-batches and processes since the last log, next to TRL's own metrics
       (`mean_token_accuracy`, `entropy`, `num_tokens`).
    4. Label smoothing (`model.config.label_smoothing > 0`, the stage-3 recipe): TRL's fused head yields the plain NLL
       only, so the loss is then the model's own forward (smoothed CE + L1 terms) through `Trainer.compute_loss`, and
       TRL's token accuracy / entropy are not logged for those steps.
    Datasets: PiTe's records are featurized by `ExampleFeaturizer` (`skip_prepare_dataset`), batched by
    `PiTeDataCollator`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fused_outputs: list[PiTeFusedOutput] = []  # of the current compute_loss call
        add_regression_to_fused_forward(self._pite_model(), self._fused_outputs.append)
        # per mode: term -> [sum of per-item losses, number of items] of this process since the last log
        self._loss_sums: dict[str, dict[str, list[torch.Tensor]]] = {
            "train": defaultdict(list),
            "eval": defaultdict(list),
        }

    def _pite_model(self) -> Any:
        model = self.accelerator.unwrap_model(self.model)
        return model.get_base_model() if isinstance(model, PeftModel) else model

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
        if num_items_in_batch is not None:
            for _, target_key, _, count_key in REGRESSION_TERMS:
                if target_key in inputs and count_key not in inputs:
                    raise RuntimeError(
                        f"{count_key} missing from a batch with {target_key}: the L1 term would be mis-scaled"
                    )
        pite_model = self._pite_model()
        if pite_model.config.label_smoothing > 0:
            return self._smoothed_loss(model, inputs, return_outputs, num_items_in_batch)
        self._fused_outputs.clear()
        lm_loss = super().compute_loss(
            model, dict(inputs), return_outputs=False, num_items_in_batch=num_items_in_batch
        )
        captured = self._fused_outputs[-1:]
        self._fused_outputs.clear()
        # TRL's NLL of the tokens; TRL multiplies it by the process count when it averages token counts across
        # processes (DDP then averages gradients): the L1 terms, normalised by all-process counts, get the same factor.
        scale = 1
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            scale = self.accelerator.num_processes // self.get_tp_size()
        weight = pite_model.config.localization_loss_weight
        terms = {"lm_loss": lm_loss / scale}
        loss = lm_loss
        for term, *_ in REGRESSION_TERMS:
            value = getattr(captured[-1], term, None) if captured else None
            if value is not None:
                terms[term] = value
                loss = loss + weight * value * scale
        self._record_loss_terms(inputs, terms, num_items_in_batch)
        if return_outputs:
            with torch.no_grad():  # SFTTrainer's fused outputs hold no logits; evaluation asking for them gets them
                outputs = model(**{key: value for key, value in inputs.items() if key != "labels"}, use_cache=False)
            return loss, outputs
        return loss

    def _smoothed_loss(self, model, inputs, return_outputs, num_items_in_batch):  # noqa: ANN001, ANN202
        inputs = {**inputs, "use_cache": False}
        loss, outputs = Trainer.compute_loss(
            self, model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
        )
        self._record_loss_terms(
            inputs,
            {term: outputs.get(term) for term in ("lm_loss", "localization_loss", "trajectory_loss")},
            num_items_in_batch,
        )
        return (loss, outputs) if return_outputs else loss

    @torch.no_grad()
    def _record_loss_terms(self, inputs: dict[str, Any], values: dict[str, Any], num_items_in_batch: Any) -> None:
        mode = "train" if self.model.training else "eval"
        config = self._pite_model().config
        counts = count_regression_items(inputs, ABSENT_COORDINATE, getattr(config, "absent_targets", "mask"))
        if "labels" in inputs:
            counts["lm_loss"] = (inputs["labels"][:, 1:] != IGNORE_INDEX).sum()
        for term, _, _, count_key in (("lm_loss", "labels", None, None), *REGRESSION_TERMS):
            value = values.get(term)
            count = counts.get(term if count_key is None else count_key)
            if value is None or count is None:
                continue
            # The term is this micro-batch's sum divided by the whole step's count when it was given, else by its own.
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
            stacked = (
                self.accelerator.reduce(stacked, reduction="sum") if self.accelerator.num_processes > 1 else stacked
            )
            for term, (total, count) in zip(terms, stacked.tolist()):
                if count > 0:
                    logs[f"{prefix}{term}"] = total / count
            sums.clear()
        super().log(logs, start_time)
