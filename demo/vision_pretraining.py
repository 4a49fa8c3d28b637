"""A briefly pretrained tiny frame encoder for the demo, standing in for CLIP.

PiTe keeps CLIP frozen and reads one pooled feature per frame. A *randomly initialised* frozen ViT pools away most
of where things are in a frame, so the adapter and LLM above it would have almost nothing to localise from and the
demo would measure the tower, not the method. Real CLIP was pretrained on 400M image-text pairs; here we pretrain
the tiny tower for a few hundred steps to predict, from its pooled projected feature, which colours are in the frame,
where, and in which shape (presence, centre x, centre y, shape per colour), then freeze it as the paper does. This
choice is stated in the demo report. Only training-split frames are used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection


def colour_position_targets(
    labels: np.ndarray,
    object_colours: Sequence[str],
    object_shapes: Sequence[str],
    colours: Sequence[str],
    shapes: Sequence[str],
) -> np.ndarray:
    """Per frame and colour: (present, centre x, centre y, one-hot shape), 0 for absent colours.

    Args:
        labels: (T, H, W) int, the object index drawn at each pixel, -1 for background.
        object_colours, object_shapes: colour and shape name of each object index.
        colours, shapes: the vocabularies, which fix the target layout.

    Returns:
        (T, len(colours) * (3 + len(shapes))) float32.
    """
    frames, height, width = labels.shape
    ys, xs = np.mgrid[0:height, 0:width]
    xs = (xs + 0.5) / width
    ys = (ys + 0.5) / height
    targets = np.zeros((frames, len(colours), 3 + len(shapes)), dtype=np.float32)
    for index, (colour, shape) in enumerate(zip(object_colours, object_shapes)):
        slot = list(colours).index(colour)
        mask = labels == index
        area = mask.sum(axis=(1, 2))
        present = area > 0
        safe = np.maximum(area, 1)
        targets[present, slot, 0] = 1.0
        targets[present, slot, 1] = (mask * xs).sum(axis=(1, 2))[present] / safe[present]
        targets[present, slot, 2] = (mask * ys).sum(axis=(1, 2))[present] / safe[present]
        targets[present, slot, 3 + list(shapes).index(shape)] = 1.0
    return targets.reshape(frames, -1)


def pretrain_frame_encoder(
    vision_config: CLIPVisionConfig,
    pixel_values: torch.Tensor,
    targets: torch.Tensor,
    num_shapes: int,
    steps: int = 300,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    seed: int = 0,
    progress=None,
) -> tuple[CLIPVisionModelWithProjection, dict[str, float]]:
    """Train a CLIP vision tower so that its projected pooled feature (`image_embeds`) encodes colours, positions and
    shapes.

    Args:
        vision_config: the tower's config.
        pixel_values: (M, 3, H, W) CLIP-normalised frames (as the processor produces them).
        targets: (M, C * (3 + S)) from `colour_position_targets`; S = `num_shapes`.
        progress: optional callable(step, loss) for progress reporting.

    Returns:
        The trained tower (in eval mode, gradients off) and {"initial_loss", "final_loss"} on the training frames.
    """
    if pixel_values.shape[0] != targets.shape[0]:
        raise ValueError(f"{pixel_values.shape[0]} frames but {targets.shape[0]} target rows")
    if num_shapes < 1 or targets.shape[1] % (3 + num_shapes):
        raise ValueError(f"targets of width {targets.shape[1]} do not hold (3 + {num_shapes}) values per colour")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    tower = CLIPVisionModelWithProjection(vision_config)
    probe = nn.Linear(vision_config.projection_dim, targets.shape[1])
    optimizer = torch.optim.AdamW([*tower.parameters(), *probe.parameters()], lr=learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=steps, pct_start=0.1)

    def loss_of(batch_pixels: torch.Tensor, batch_targets: torch.Tensor) -> torch.Tensor:
        predicted = probe(tower(pixel_values=batch_pixels).image_embeds).unflatten(-1, (-1, 3 + num_shapes))
        wanted = batch_targets.unflatten(-1, (-1, 3 + num_shapes))
        present = wanted[..., 0]
        loss = nn.functional.binary_cross_entropy_with_logits(predicted[..., 0], present)
        # Position and shape only count for colours that are in the frame.
        visible = present > 0
        if visible.any():
            loss = loss + 4.0 * (predicted[..., 1:3] - wanted[..., 1:3]).abs()[visible].mean()
            loss = loss + nn.functional.cross_entropy(predicted[..., 3:][visible], wanted[..., 3:][visible].argmax(-1))
        return loss

    tower.train()
    with torch.no_grad():
        probe_rows = torch.randperm(pixel_values.shape[0], generator=generator)[:256]
        initial = float(loss_of(pixel_values[probe_rows], targets[probe_rows]))
    for step in range(steps):
        rows = torch.randint(0, pixel_values.shape[0], (batch_size,), generator=generator)
        loss = loss_of(pixel_values[rows], targets[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if progress is not None:
            progress(step, loss.item())
    tower.eval()
    with torch.no_grad():
        final = float(loss_of(pixel_values[probe_rows], targets[probe_rows]))
    tower.requires_grad_(False)
    return tower, {"initial_loss": initial, "final_loss": final}


def fit_colour_readout(
    features: np.ndarray, targets: np.ndarray, num_shapes: int, ridge: float = 1e-2
) -> Callable[[np.ndarray], np.ndarray]:
    """One ridge regression per colour from a frame's feature to the colour's centre (x, y), fitted on the frames
    where the colour is visible. Returns `read(features (M, D)) -> (M, C, 2)`; a colour never seen reads (0.5, 0.5).

    Args:
        features: (M, D) frame features.
        targets: (M, C * (3 + S)) from `colour_position_targets`.
        num_shapes: S.
    """
    if features.shape[0] != targets.shape[0]:
        raise ValueError("features and targets must have one row per frame")
    wanted = targets.reshape(len(targets), -1, 3 + num_shapes)
    design = np.concatenate([features, np.ones((len(features), 1))], axis=1).astype(np.float64)
    weights = np.zeros((wanted.shape[1], design.shape[1], 2))
    weights[:, -1] = 0.5
    for colour in range(wanted.shape[1]):
        rows = wanted[:, colour, 0] > 0
        if rows.any():
            x = design[rows]
            weights[colour] = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ wanted[rows, colour, 1:3])

    def read(frames: np.ndarray) -> np.ndarray:
        return np.einsum("md,cdk->mck", np.concatenate([frames, np.ones((len(frames), 1))], axis=1), weights)

    return read


def per_colour_readout(
    read: Callable[[np.ndarray], np.ndarray],
    eval_features: np.ndarray,
    eval_targets: np.ndarray,
    eval_videos: np.ndarray,
    num_shapes: int,
) -> dict[str, float | int]:
    """How well a `fit_colour_readout` read-out places each colour's centre on frames it was not fitted on.

    Scored on the evaluation frames where the colour is visible, with the L1 (x + y) of the trajectory figures. On the
    same points: "object_mean_L1" puts every centre at the object's own mean position over its video (the right
    object, held still: what a per-frame read-out has to beat to show motion) and "constant_centre_L1" at (0.5, 0.5).

    Args:
        read: the fitted read-out, (M', D) -> (M', C, 2).
        eval_features: (M', D) frame features.
        eval_targets: (M', C * (3 + S)) from `colour_position_targets`.
        eval_videos: (M',) which video each evaluation frame belongs to (any hashable ids).
        num_shapes: S.

    Returns:
        {"readout_L1", "object_mean_L1", "constant_centre_L1", "num_points"}.
    """
    if eval_features.shape[0] != eval_targets.shape[0]:
        raise ValueError("features and targets must have one row per frame")
    if len(eval_videos) != len(eval_features):
        raise ValueError(f"{len(eval_videos)} video ids for {len(eval_features)} evaluation frames")
    wanted = eval_targets.reshape(len(eval_targets), -1, 3 + num_shapes)
    visible, truth = wanted[..., 0] > 0, wanted[..., 1:3].astype(np.float64)
    if not visible.any():
        raise ValueError("no colour is visible in any evaluation frame")
    held_still = np.full(truth.shape, 0.5)
    for colour in range(wanted.shape[1]):
        for video in np.unique(eval_videos):
            frames = (eval_videos == video) & visible[:, colour]
            if frames.any():
                held_still[frames, colour] = truth[frames, colour].mean(axis=0)

    def l1(predicted: np.ndarray) -> float:
        return float(np.abs(predicted - truth).sum(-1)[visible].mean())

    return {
        "readout_L1": l1(read(eval_features)),
        "object_mean_L1": l1(held_still),
        "constant_centre_L1": l1(np.full(truth.shape, 0.5)),
        "num_points": int(visible.sum()),
    }
