"""Trajectory accuracy of a saved PiTe on held-out PiTe-143k-style annotations, teacher-forced.

Each video record (DESIGN.md "Data files", stage 2) becomes exactly the conversation stage-2 training builds from it
(`pite.data.pite143k.pite143k_example`: dense captioning of every event, then one grounding or segment-caption
question per event), tokenized with the trajectory targets on the tokens of every grounded noun phrase
(`pite.data.featurize.ExampleFeaturizer`, i.e. `pite.data.targets.build_training_features`). One forward pass with the
whole conversation as input (teacher forcing) gives every token's predicted trajectory; the prediction at position t
belongs to token t + 1 (DESIGN.md), so predictions `[:, :-1]` are compared with targets `[:, 1:]`, on the tokens that
carry a target, through `pite.eval.trajectory.trajectory_scores` (masked L1, PCK@5% / 10% of the frame diagonal, the
frame size taken from each video). The L1 is therefore the stage-2 trajectory loss on held-out data.

Beside it, the constant-centre baseline: every point predicted at (0.5, 0.5) on the same target points. A model that
has learnt nothing about where objects are scores about the baseline.

`by_phrase_position` splits the same points by the place of their token in its phrase (a run of consecutive tokens
with one target): "first" (predicted before any word of the phrase is read: "the" of "the red circle"), "inner", and
"last" (predicted after every other word: "circle" of "the red circle", from the hidden state of "red"). Each part is
scored for the model, the constant centre, and two static references built from the truth itself: "scene_mean" (every
point at the mean of all the video's target points: where a model that knows where things are but not which one is
named would aim) and "object_mean" (every point at its own object's mean position: the right object, held still).
Under the release's shift a token's trajectory is predicted before the token is read, so the first tokens of a phrase
cannot tell which object it names; the split shows where a model localises and where it cannot yet know. The third
reference, "held_still", holds the L1-best fixed points: on a phrase's first and inner tokens every point at the
coordinate-wise median of the video's target points on such tokens, on its last token every point at the median of
its own object's points. A coordinate-wise median minimises the summed L1 (|dx| + |dy|) to a set of points, so a
prediction that holds one point per video until the object is named and one per object after scores no lower on any
video: below this row a model follows motion, or guesses the object before its name.

Numbers are pooled over all target points of all videos (per-video numbers weighted by their point counts).
Records whose video is missing or unreadable, or that hold no grounded object, are skipped and counted (with the
reason); a malformed record stops the run with the training loader's error naming file, line and field, unless
`skip_bad_records`.

Usage:
    >>> model, processor = load_for_inference("runs/pite-7b")  # doctest: +SKIP
    >>> result = evaluate_trajectories(model, processor, "eval/trajectories.jsonl", "eval/videos")  # doctest: +SKIP
    >>> result.scores["L1"], result.baseline["PCK@0.1"]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from pite.core.loading import check_model_and_processor
from pite.data.collator import PiTeDataCollator
from pite.data.featurize import ExampleFeaturizer
from pite.data.pite143k import pite143k_example
from pite.data.records import BadRecordError, BadRecordPolicy, read_json_records, skip_summary
from pite.eval.model_runner import VIDEO_READ_ERRORS
from pite.eval.trajectory import DEFAULT_THRESHOLDS, trajectory_scores
from pite.modeling_pite.losses_pite import valid_point_mask

CENTRE = 0.5


@dataclass
class TrajectoryEvalResult:
    """Pooled scores of the model and of the constant-centre baseline, per-video scores and the skipped records.

    `scores` / `baseline`: `{"L1", "PCK@0.05", "PCK@0.1", "num_points"}` (None values when no video was scored).
    `per_video`: `{"video_id", "num_tokens", "L1", "PCK@...", "num_points", "baseline_L1", ...}` per scored video.
    `skipped`: "where (video_id)" -> reason.
    `by_phrase_position`: {"first" | "inner" | "last" | "all": {"model" | "constant_centre" | "scene_mean" |
    "object_mean" | "held_still": pooled scores}} (module docstring).
    """

    scores: dict[str, float | int | None]
    baseline: dict[str, float | int | None]
    num_videos: int
    num_tokens: int
    per_video: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    by_phrase_position: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Sample:
    video_id: str
    features: dict[str, Any]
    width: int
    height: int


def pool_scores(per_video: Sequence[dict[str, float]], thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> dict:
    """Scores over the union of the videos' points: each video's L1 / PCK weighted by its `num_points`."""
    keys = ["L1"] + [f"PCK@{threshold:g}" for threshold in thresholds]
    total = sum(scores["num_points"] for scores in per_video)
    if total == 0:
        return {**{key: None for key in keys}, "num_points": 0}
    pooled = {key: sum(scores[key] * scores["num_points"] for scores in per_video) / total for key in keys}
    return {**pooled, "num_points": total}


PHRASE_POSITIONS = ("first", "inner", "last")
REFERENCE_PREDICTORS = ("model", "constant_centre", "scene_mean", "object_mean", "held_still")


def phrase_positions(token_index: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The place of each target token in its phrase: "first", "inner" or "last" (a one-token phrase is "first").

    Args:
        token_index: (K,) increasing sequence positions of the tokens that carry a target.
        targets: (K, P, N, 2) their targets; a phrase is a run of consecutive positions with equal targets.
    """
    count = len(token_index)
    continues = np.zeros(count, dtype=bool)  # token k belongs to the phrase of token k - 1
    if count > 1:
        same = (targets[1:] == targets[:-1]).reshape(count - 1, -1).all(axis=1)
        continues[1:] = (np.diff(token_index) == 1) & same
    followed = np.append(continues[1:], False)
    return np.where(~continues, "first", np.where(followed, "inner", "last"))


def _visible_points(target: np.ndarray) -> np.ndarray:
    """(K, P, N, 2) targets with NaN in place of absent points, for the nan-reductions of the references."""
    visible = valid_point_mask(torch.from_numpy(target)).numpy()  # (K, P, N)
    return np.where(visible[..., None], target, np.nan)


def static_reference_predictions(target: np.ndarray) -> dict[str, np.ndarray]:
    """(K, P, N, 2) targets of one video -> the "scene_mean" and "object_mean" predictions (module docstring)."""
    points = _visible_points(target)
    scene = np.nanmean(points.reshape(-1, 2), axis=0)
    objects = np.nanmean(points.reshape(len(target), -1, 2), axis=1)  # (K, 2); every token has a visible point
    return {
        "scene_mean": np.broadcast_to(scene, target.shape).copy(),
        "object_mean": np.broadcast_to(objects[:, None, None, :], target.shape).copy(),
    }


def held_still_reference(target: np.ndarray, places: np.ndarray) -> np.ndarray:
    """(K, P, N, 2) targets of one video and their tokens' `phrase_positions` -> the "held_still" prediction.

    Tokens before the last of their phrase (it is not yet named) get the coordinate-wise median of the visible points
    of all such tokens of the video; last tokens get the median of their own visible points (module docstring).
    """
    if len(places) != len(target):
        raise ValueError(f"{len(places)} phrase positions for {len(target)} target tokens")
    points = _visible_points(target)
    unnamed = places != "last"
    held = np.empty_like(target)
    if unnamed.any():
        held[unnamed] = np.nanmedian(points[unnamed].reshape(-1, 2), axis=0)
    named = ~unnamed
    if named.any():
        held[named] = np.nanmedian(points[named].reshape(named.sum(), -1, 2), axis=1)[:, None, None, :]
    return held


def _video_missing(record: Any, videos_dir: str) -> str | None:
    """The reason to skip `record` when its video file does not exist (checked before the loader, which would fail)."""
    if isinstance(record, dict) and isinstance(record.get("video"), str) and record["video"].strip():
        path = os.path.join(videos_dir, record["video"])
        if not os.path.isfile(path):
            return f"video not found: {path!r}"
    return None


class _SampleBuilder:
    """Stage-2 conversation -> teacher-forcing inputs of one video, as training builds them."""

    def __init__(self, processor: Any, num_points: int, videos_dir: str) -> None:
        self.processor = processor
        self.videos_dir = videos_dir
        self.num_points = num_points
        self.featurizer = ExampleFeaturizer(processor, num_points=num_points, max_length=None)

    def __call__(self, record: dict, where: str, max_events: int | None) -> _Sample | str:
        """The sample, or the reason to skip the record (BadRecordError for malformed records)."""
        num_frames = self.processor.num_frames
        example = pite143k_example(record, where, self.videos_dir, num_frames, self.num_points, max_events)
        text = self.featurizer.text_features(example)
        if not valid_point_mask(torch.from_numpy(text["trajectory_labels"])).any():
            return "no grounded object with a visible point"
        try:
            visual = self.processor(videos=[example.media_path], return_tensors="pt")
        except VIDEO_READ_ERRORS as error:
            return f"unreadable video {example.media_path!r}: {type(error).__name__}: {error}"
        features = {key: torch.from_numpy(np.asarray(value)) for key, value in text.items() if key != "labels"}
        features["pixel_values_videos"] = visual["pixel_values_videos"][0]
        metadata = visual["video_metadata"][0]
        return _Sample(example.example_id, features, int(metadata["width"]), int(metadata["height"]))


@torch.no_grad()
def _score_batch(model: Any, collator: PiTeDataCollator, samples: list[_Sample]) -> list[dict[str, Any]]:
    """Teacher-forced predictions of a batch scored per video against its targets and against the centre."""
    batch = collator([{"example_id": s.video_id, **s.features} for s in samples])
    device = model.device
    output = model(
        input_ids=batch["input_ids"].to(device),
        attention_mask=batch["attention_mask"].to(device),
        pixel_values_videos=batch["pixel_values_videos"].to(device),
        use_cache=False,
    )
    # Position t predicts token t + 1: (B, L-1, P, N, 2) against the targets of tokens 1..L-1.
    predictions = output.trajectory_predictions[:, :-1].float().cpu()
    targets = batch["trajectory_labels"][:, 1:].float()
    has_target = valid_point_mask(targets).flatten(2).any(dim=-1)  # (B, L-1): tokens carrying a visible point
    rows = []
    for index, sample in enumerate(samples):
        tokens = has_target[index]
        predicted, target = predictions[index, tokens].numpy(), targets[index, tokens].numpy()
        places = phrase_positions(np.flatnonzero(tokens.numpy()), target)
        predictors = {
            "model": predicted,
            "constant_centre": np.full_like(target, CENTRE),
            **static_reference_predictions(target),
            "held_still": held_still_reference(target, places),
        }
        masks = {"all": np.ones(len(places), dtype=bool), **{place: places == place for place in PHRASE_POSITIONS}}
        by_position = {
            place: {
                name: trajectory_scores(guess[mask], target[mask], sample.width, sample.height)
                for name, guess in predictors.items()
            }
            for place, mask in masks.items()
            if mask.any()
        }
        scores, centre = by_position["all"]["model"], by_position["all"]["constant_centre"]
        rows.append(
            {
                "video_id": sample.video_id,
                "num_tokens": int(tokens.sum()),
                **scores,
                **{f"baseline_{key}": value for key, value in centre.items() if key != "num_points"},
                "by_phrase_position": by_position,
            }
        )
    return rows


def evaluate_trajectories(
    model: Any,
    processor: Any,
    data_file: str | Path,
    videos_dir: str | Path,
    batch_size: int = 1,
    max_events: int | None = None,
    skip_bad_records: bool = False,
    progress: bool = True,
) -> TrajectoryEvalResult:
    """Masked L1 and PCK of the model's trajectories (teacher-forced) on a PiTe-143k-style file, with the baseline.

    Args:
        model: a PiTe model in eval mode; its `num_frames` must equal the processor's.
        processor: the model's `PiTeProcessor`.
        data_file: JSONL (or JSON list) of video records in the stage-2 format.
        videos_dir: the folder the records' `video` paths are relative to.
        batch_size: videos per forward pass (right-padded, as in training).
        max_events: keep only the first events of each video (by start time), as training's option does.
        skip_bad_records: count malformed records as skipped instead of stopping at the first.

    Raises:
        BadRecordError for a malformed record (unless `skip_bad_records`); FileNotFoundError for a missing file/folder;
        ValueError if no record could be scored or model and processor disagree.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    data_file, videos_dir = str(data_file), str(videos_dir)
    if not os.path.isfile(data_file):
        raise FileNotFoundError(f"trajectory data file not found: {data_file!r}")
    if not os.path.isdir(videos_dir):
        raise FileNotFoundError(f"videos folder not found: {videos_dir!r}")
    check_model_and_processor(model, processor)  # the trajectory head fixes N
    build = _SampleBuilder(processor, model.config.num_trajectory_points, videos_dir)
    collator = PiTeDataCollator(pad_token_id=processor.tokenizer.pad_token_id or 0, padding_side="right")
    policy = BadRecordPolicy(skip=skip_bad_records)
    skipped: dict[str, str] = {}
    per_video: list[dict[str, Any]] = []
    pending: list[_Sample] = []
    for where, record in tqdm(
        list(read_json_records(data_file)), desc="trajectories", unit="video", disable=not progress
    ):
        name = f"{where} ({record.get('video_id')})" if isinstance(record, dict) else where
        try:
            if isinstance(record, BadRecordError):
                raise record
            reason = _video_missing(record, videos_dir)
            sample = reason if reason is not None else build(record, where, max_events)
        except BadRecordError as error:
            policy.handle(error)
            skipped[name] = error.reason
            continue
        if isinstance(sample, str):
            skipped[name] = sample
            continue
        pending.append(sample)
        if len(pending) == batch_size:
            per_video += _score_batch(model, collator, pending)
            pending = []
    if pending:
        per_video += _score_batch(model, collator, pending)
    if not per_video:
        raise ValueError(f"no record of {data_file} could be scored ({skip_summary(skipped)})")
    baseline_rows = [
        {
            **{key.removeprefix("baseline_"): value for key, value in row.items() if key.startswith("baseline_")},
            "num_points": row["num_points"],
        }
        for row in per_video
    ]
    return TrajectoryEvalResult(
        scores=pool_scores(per_video),
        baseline=pool_scores(baseline_rows),
        num_videos=len(per_video),
        num_tokens=sum(row["num_tokens"] for row in per_video),
        per_video=per_video,
        skipped=skipped,
        by_phrase_position={
            place: {
                name: pool_scores(
                    [row["by_phrase_position"][place][name] for row in per_video if place in row["by_phrase_position"]]
                )
                for name in REFERENCE_PREDICTORS
            }
            for place in ("all", *PHRASE_POSITIONS)
        },
    )
