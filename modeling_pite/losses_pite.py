"""Loss terms of PiTe, as sums plus counts so that callers control the normalisation.

Returning (sum, count) instead of a mean is what makes gradient accumulation exact: a trainer that knows the number
of supervised items in the whole accumulated batch divides every micro-batch's sum by that one number, so two
micro-batches of one sample give the same gradients as one batch of two.

Hub remote code: imports only torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def shifted_cross_entropy_sum(
    logits: torch.Tensor,
    labels: torch.Tensor | None,
    label_smoothing: float = 0.0,
    shift_labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token cross-entropy, summed over supervised tokens.

    Args:
        logits: (B, L, V) scores; position t predicts token t + 1.
        labels: (B, L) token ids, `-100` where not supervised (unshifted: the label of token t sits at t).
        label_smoothing: as in `torch.nn.functional.cross_entropy`.
        shift_labels: (B, L) labels already shifted (the label of token t + 1 at t), as sequence/context-parallel
            training passes them; used instead of `labels`, against every position's logits.

    Returns:
        (sum of per-token losses, number of supervised tokens), both 0-d tensors.
    """
    if shift_labels is None:
        shift_logits, shift_labels = logits[:, :-1, :].float(), labels[:, 1:]
    else:
        shift_logits = logits.float()
    shift_labels = shift_labels.to(shift_logits.device)
    loss_sum = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.shape[-1]),
        shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        label_smoothing=label_smoothing,
        reduction="sum",
    )
    return loss_sum, (shift_labels != IGNORE_INDEX).sum()


def valid_point_mask(
    targets: torch.Tensor, mask: torch.Tensor | None = None, absent_coordinate: float = -1.0
) -> torch.Tensor:
    """Which points of `targets` (..., C) carry supervision.

    A point is valid unless any of its coordinates equals `absent_coordinate` (the release's `(-1, -1)` for vanished
    objects and tokens without a target) or the optional `mask` excludes it. `mask` has the leading shape of
    `targets` without the coordinate axis, or a prefix of it (e.g. (B, L) for trajectory targets (B, L, P, N, C)),
    and broadcasts over the remaining axes.
    """
    valid = (targets != absent_coordinate).all(dim=-1)
    if mask is not None:
        mask = mask.to(device=valid.device, dtype=torch.bool)
        if mask.shape != valid.shape[: mask.dim()]:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not match the target points of shape {tuple(valid.shape)}: "
                "it must equal their shape or a leading prefix of it"
            )
        valid = valid & mask.reshape(mask.shape + (1,) * (valid.dim() - mask.dim()))
    return valid


def shifted_masked_l1_sum(
    predictions: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor | None = None,
    absent_coordinate: float = -1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """L1 distance between predicted and target points, summed over valid points, with the next-token shift.

    The hidden state at position t regresses the target of token t + 1, exactly like the vocabulary head.
    The L1 distance of one point is `|dx| + |dy|`; absent points and unsupervised tokens never contribute.

    Args:
        predictions: (B, L, *E, C), e.g. (B, L, 2) points or (B, L, P, N, 2) trajectories.
        targets: same shape as `predictions`; the target of token t sits at t.
        mask: optional (B, L) or (B, L, *E) boolean mask of targets to use.
        absent_coordinate: sentinel of absent points.

    Returns:
        (sum of L1 distances, number of valid points), both 0-d tensors.
    """
    targets = targets.to(predictions.device)
    if mask is not None:
        mask = mask[:, 1:]
    valid = valid_point_mask(targets[:, 1:], mask, absent_coordinate)
    distance = (predictions[:, :-1].float() - targets[:, 1:].float()).abs().sum(dim=-1)
    # Multiply instead of indexing so the graph always reaches the head, even for a batch with no target
    # (keeps DDP's "every parameter used" invariant).
    return (distance * valid).sum(), valid.sum()
