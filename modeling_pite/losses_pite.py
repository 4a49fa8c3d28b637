"""Loss terms of PiTe, as sums plus counts so that callers control the normalisation.

Returning (sum, count) instead of a mean is what makes gradient accumulation exact: a trainer that knows the number
of supervised items in the whole accumulated batch divides every micro-batch's sum by that one number, so two
micro-batches of one sample give the same gradients as one batch of two.

Hub remote code: imports only torch and its sibling `configuration_pite`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .configuration_pite import ABSENT_TARGET_MODES

# `labels` value of a position the token loss skips (PyTorch's cross-entropy default `ignore_index`).
IGNORE_INDEX = -100
# A coordinate of an absent point, or of a token without target: the release's (-1, -1), which the data files
# (PiTe-143k trajectories, Localized Narratives) use too, so it is a constant of the format, not a setting.
ABSENT_COORDINATE = -1.0


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
    targets: torch.Tensor, mask: torch.Tensor | None = None, absent_coordinate: float | None = ABSENT_COORDINATE
) -> torch.Tensor:
    """Which points of `targets` (..., C) carry supervision.

    A point is valid unless any of its coordinates equals `absent_coordinate` (the release's `(-1, -1)` for vanished
    objects and tokens without a target; None: no point is absent) or the optional `mask` excludes it. `mask` has
    the leading shape of `targets` without the coordinate axis, or a prefix of it (e.g. (B, L) for trajectory
    targets (B, L, P, N, C)), and broadcasts over the remaining axes.
    """
    if absent_coordinate is None:
        valid = torch.ones(targets.shape[:-1], dtype=torch.bool, device=targets.device)
    else:
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


def regression_mask(
    targets: torch.Tensor,
    labels: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    absent_coordinate: float = ABSENT_COORDINATE,
    absent_targets: str = "regress",
) -> torch.Tensor:
    """Which target points (B, L, *E) an L1 term counts; all arguments already aligned position by position.

    - `absent_targets="regress"` (the authors' release): every point of every supervised text position counts,
      those equal to `absent_coordinate` too, so the model learns to answer "(-1, -1): nothing here" for words that
      name no object and for frames where an object is absent. The release's L1 ran over every position of the
      sequence; prompt, video and padding positions (`labels == -100`) are left out here. Needs `labels`, or
      else `mask` names the positions to regress.
    - `absent_targets="mask"`: only points that are not `absent_coordinate` count; the model never learns absence.
    In both modes the optional `mask` ((B, L) or the points' full shape) further restricts what counts, e.g. to
    leave out samples that carry no targets of this kind.
    """
    if absent_targets not in ABSENT_TARGET_MODES:
        raise ValueError(f"absent_targets must be one of {ABSENT_TARGET_MODES}, got {absent_targets!r}")
    if absent_targets == "mask":
        return valid_point_mask(targets, mask, absent_coordinate)
    if labels is None and mask is None:
        raise ValueError(
            "absent_targets='regress' regresses the absent coordinate at supervised text positions: pass `labels` "
            "(-100 where a position is not supervised) or a mask of the positions to regress"
        )
    # valid_point_mask(..., absent_coordinate=None) broadcasts a (B, L) or full-shape mask over the points.
    entries = valid_point_mask(targets, mask, None) if mask is not None else None
    if labels is None:
        return entries
    labels = labels.to(targets.device)
    if labels.shape != targets.shape[:2]:
        raise ValueError(f"labels of shape {tuple(labels.shape)} do not match targets of shape {tuple(targets.shape)}")
    text = valid_point_mask(targets, labels != IGNORE_INDEX, None)
    return text if entries is None else text & entries


def shifted_masked_l1_sum(
    predictions: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor | None = None,
    absent_coordinate: float = ABSENT_COORDINATE,
    labels: torch.Tensor | None = None,
    absent_targets: str = "mask",
) -> tuple[torch.Tensor, torch.Tensor]:
    """L1 distance between predicted and target points, summed over the points that count, with the next-token shift.

    The hidden state at position t regresses the target of token t + 1, exactly like the vocabulary head.
    The L1 distance of one point is `|dx| + |dy|`; which points count is `regression_mask`'s rule.

    Args:
        predictions: (B, L, *E, C), e.g. (B, L, 2) points or (B, L, P, N, 2) trajectories.
        targets: same shape as `predictions`; the target of token t sits at t.
        mask: optional (B, L) or (B, L, *E) boolean mask of targets to use.
        absent_coordinate: sentinel of absent points.
        labels: (B, L) token labels (`-100` where not supervised), unshifted; needed for `absent_targets="regress"`.
        absent_targets: "regress" or "mask" (see `regression_mask`).

    Returns:
        (sum of L1 distances, number of points that count), both 0-d tensors.
    """
    targets = targets.to(predictions.device)
    valid = regression_mask(
        targets[:, 1:],
        None if labels is None else labels[:, 1:],
        None if mask is None else mask[:, 1:],
        absent_coordinate,
        absent_targets,
    )
    distance = (predictions[:, :-1].float() - targets[:, 1:].float()).abs().sum(dim=-1)
    # Multiply instead of indexing so the graph always reaches the head, even for a batch with no target
    # (keeps DDP's "every parameter used" invariant).
    return (distance * valid).sum(), valid.sum()
