"""`TrainingExample` -> the model's per-sample inputs, through the processor.

Text: `targets.build_training_features` renders the v1 conversation, masks everything but the answers and puts
the point / trajectory targets on the tokens of their spans. Visual input: the cached frozen-tower features of the
file when a feature cache is given, else its CLIP-normalised pixels (the processor's own frame sampling).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from pite.modeling_pite.losses_pite import IGNORE_INDEX
from pite.processing import VideoInputError, read_image, read_video

from .extraction_pipeline import media_pixels
from .feature_cache import FeatureCache
from .records import BadRecordError, TrainingExample
from .targets import build_training_features

# A record's times and trajectories are relative to its stated duration: more than this far from the file's, they
# describe another cut of the video (or a truncated file). Real annotations round durations, hence the slack.
DURATION_TOLERANCE = (1.0, 0.05)  # seconds, fraction of the duration: the larger applies


def check_duration(example: TrainingExample, file_duration: float) -> None:
    """Raise BadRecordError if the record's duration and its video file's disagree beyond `DURATION_TOLERANCE`."""
    slack = max(DURATION_TOLERANCE[0], DURATION_TOLERANCE[1] * example.duration)
    if abs(example.duration - file_duration) > slack:
        raise BadRecordError(
            example.where,
            f"duration {example.duration:g} s but its video {example.media_path!r} lasts "
            f"{file_duration:.2f} s: the times and trajectories would not match the frames",
        )


class ExampleFeaturizer:
    """Builds model inputs for `TrainingExample`s.

    Args:
        processor: the `PiTeProcessor` of the checkpoint being trained (its `num_frames` must equal the model's).
        num_points: P, trajectory key points per object (`config.num_trajectory_points`).
        max_length: longest token sequence; longer conversations are cut at the end (never inside the video tokens).
        feature_cache: when given, every example's visual input is read from it.
    """

    def __init__(
        self, processor: Any, num_points: int, max_length: int | None, feature_cache: FeatureCache | None = None
    ) -> None:
        self.processor = processor
        self.num_points = num_points
        self.max_length = max_length
        self.feature_cache = feature_cache

    def text_features(self, example: TrainingExample) -> dict[str, np.ndarray]:
        """`input_ids`, `labels` (L,), and `point_labels` (L, 2) / `trajectory_labels` (L, P, N, 2) if the example
        has targets."""
        try:
            features = build_training_features(
                self.processor,
                example.messages,
                trajectory_targets=example.trajectory_targets,
                point_targets=example.point_targets,
                num_points=self.num_points,
            )
        except ValueError as error:
            raise BadRecordError(example.where, str(error)) from error
        length = len(features["input_ids"])
        if self.max_length is not None and length > self.max_length:
            video_positions = np.flatnonzero(features["input_ids"] == self.processor.video_token_id)
            if len(video_positions) and video_positions[-1] >= self.max_length:
                raise BadRecordError(
                    example.where,
                    f"the conversation is {length} tokens and its video tokens reach position {video_positions[-1]}: "
                    f"max_length={self.max_length} would cut the video",
                )
            features = {key: value[: self.max_length] for key, value in features.items()}
        for targets, mask in (("trajectory_labels", "trajectory_mask"), ("point_labels", "point_mask")):
            if targets in features:
                # The answer positions that may count in the L1 term; the model's `absent_targets` decides the rest.
                features[mask] = (features["labels"] != IGNORE_INDEX) & example.supervises_regression
        if not (features["labels"][1:] != IGNORE_INDEX).any():
            raise BadRecordError(
                example.where,
                f"no answer token to learn from (empty answers, or all cut by max_length={self.max_length})",
            )
        return features

    def visual_features(self, example: TrainingExample) -> dict[str, torch.Tensor]:
        """`video_features` (F, D) from the cache, else `pixel_values_videos` (N, 3, H, W) or `pixel_values`
        (3, H, W)."""
        expected_frames = 1 if example.media_kind == "image" else self.processor.num_frames
        if self.feature_cache is not None:
            try:
                features = self.feature_cache.load(example.media_key)
            except KeyError as error:
                raise BadRecordError(
                    example.where, f"{error.args[0]}; run `pite extract-features` over this media folder"
                ) from error
            if features.shape[0] != expected_frames:
                raise BadRecordError(
                    example.where,
                    f"cached features of {example.media_key!r} have {features.shape[0]} frames, "
                    f"expected {expected_frames}",
                )
            return {"video_features": features}
        try:
            pixels = media_pixels(self.processor, example.media_path, example.media_kind)
        except (VideoInputError, OSError, ValueError) as error:
            raise BadRecordError(
                example.where, f"unreadable {example.media_kind} {example.media_path!r}: {error}"
            ) from error
        if example.media_kind == "image":
            return {"pixel_values": pixels[0]}
        return {"pixel_values_videos": pixels}

    def check(self, example: TrainingExample, verify_media: bool) -> None:
        """Raise BadRecordError if `example` cannot be trained on (text, targets, length, media)."""
        self.text_features(example)
        if self.feature_cache is not None:
            if example.media_key not in self.feature_cache:
                reason = self.feature_cache.failed.get(example.media_key)
                raise BadRecordError(
                    example.where,
                    f"{example.media_key!r} is not in the feature cache {self.feature_cache.directory!r}"
                    + (
                        f" (its extraction failed: {reason})"
                        if reason
                        else "; run `pite extract-features` over this media folder"
                    ),
                )
        elif verify_media:
            file_duration = None
            try:
                if example.media_kind == "image":
                    with Image.open(example.media_path) as image:
                        read_image(image.convert("RGB"))
                else:
                    file_duration = read_video(example.media_path, 1).metadata["duration"]
            except (VideoInputError, OSError, ValueError) as error:
                raise BadRecordError(
                    example.where, f"unreadable {example.media_kind} {example.media_path!r}: {error}"
                ) from error
            if example.media_kind == "video" and example.duration is not None and file_duration is not None:
                check_duration(example, file_duration)

    def __call__(self, example: TrainingExample) -> dict[str, Any]:
        features: dict[str, Any] = {"example_id": example.where}
        features.update(
            {key: torch.from_numpy(np.asarray(value)) for key, value in self.text_features(example).items()}
        )
        features.update(self.visual_features(example))
        return features

    def transform(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """A `datasets.Dataset.with_transform` function: rows of `TrainingExample.to_row` -> model features."""
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        featurized = [self(TrainingExample.from_row(row)) for row in rows]
        keys = featurized[0].keys() if featurized else []
        return {key: [item[key] for item in featurized] for key in keys}
