"""Per-token grounding targets: trajectories of object phrases (stage 2) and Localized Narratives points (stage 1).

A target is attached to a character span of an assistant answer. Every token whose character span overlaps the
target span carries the target (so a phrase split into several tokens supervises each of them); every other token
is -1 ("no target"). Labels are aligned to the token itself: row t is the target of token t (the model shifts).

This file is Hub remote code: it imports only numpy and its sibling `chat_template_pite`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .chat_template_pite import TokenizedConversation

ABSENT = -1.0


@dataclass
class SpanTarget:
    """A regression target attached to characters [start, end) of one assistant answer.

    Attributes:
        span: (start, end) character offsets into the answer text (not the rendered conversation).
        value: the target: a point (2,) or a trajectory (P, N, 2), normalised (x, y), -1 where absent.
        turn: which assistant turn of the conversation the span refers to (python index; -1 = the last).
        name: what to call this target in error messages (e.g. the phrase).
    """

    span: tuple[int, int]
    value: Any
    turn: int = -1
    name: str = ""


def _check_span(span: Sequence[int], text: str, where: str) -> tuple[int, int]:
    if len(span) != 2:
        raise ValueError(f"{where}: span must be (start, end), got {span!r}")
    start, end = int(span[0]), int(span[1])
    if not 0 <= start < end <= len(text):
        raise ValueError(f"{where}: span [{start}, {end}) lies outside the answer text of length {len(text)} or is empty")
    return start, end


def build_span_labels(
    conversation: TokenizedConversation, targets: Sequence[SpanTarget], value_shape: tuple[int, ...]
) -> np.ndarray:
    """Per-token labels (L, *value_shape), float32, -1 where a token has no target.

    Raises ValueError naming the target if its span lies outside its answer, its value has the wrong shape or
    non-finite entries, or two targets claim the same token (nothing is silently overwritten).
    """
    labels = np.full((len(conversation.input_ids), *value_shape), ABSENT, dtype=np.float32)
    owner = np.full(len(conversation.input_ids), -1, dtype=np.int64)
    starts, ends = conversation.offsets[:, 0], conversation.offsets[:, 1]
    turns = conversation.assistant_turns
    for index, target in enumerate(targets):
        where = f"target {index}" + (f" ({target.name!r})" if target.name else "")
        if not -len(turns) <= target.turn < len(turns):
            raise ValueError(f"{where}: assistant turn {target.turn} does not exist (conversation has {len(turns)})")
        turn_start, answer = turns[target.turn]
        start, end = _check_span(target.span, answer, where)
        value = np.asarray(target.value, dtype=np.float32)
        if value.shape != tuple(value_shape):
            raise ValueError(f"{where}: expected shape {tuple(value_shape)}, got {value.shape}")
        if not np.isfinite(value).all():
            raise ValueError(f"{where}: holds NaN or infinite coordinates")
        covered = (starts < turn_start + end) & (ends > turn_start + start) & (ends > starts)
        clash = covered & (owner >= 0)
        if clash.any():
            other = int(owner[np.flatnonzero(clash)[0]])
            raise ValueError(f"{where} and target {other} overlap the same token; spans must not share tokens")
        if not covered.any():
            raise ValueError(f"{where}: span [{start}, {end}) covers no token")
        labels[covered] = value
        owner[covered] = index
    return labels


def build_trajectory_labels(
    conversation: TokenizedConversation, phrases: Sequence[SpanTarget], num_points: int, num_frames: int
) -> np.ndarray:
    """`trajectory_labels` (L, P, N, 2) for object phrases with trajectories (P, N, 2) each."""
    return build_span_labels(conversation, phrases, (num_points, num_frames, 2))


def build_point_labels(conversation: TokenizedConversation, points: Sequence[SpanTarget]) -> np.ndarray:
    """`point_labels` (L, 2) for spans with one point (2,) each (stage 1)."""
    return build_span_labels(conversation, points, (2,))


def localized_narrative_targets(record: dict[str, Any], turn: int = -1) -> list[SpanTarget]:
    """Point targets of a Localized Narratives record, as spans of its `caption`.

    Each utterance of `timed_caption` is located in `caption` (in order, after the previous one) and gets the
    mean (x, y) of the trace points whose time `t` lies in [start_time, end_time]. Utterances without any trace
    point in their span get no target (their tokens stay -1). Trace coordinates are kept as recorded: they may
    stray slightly outside [0, 1] (the mouse left the image), which is not clipped.

    Use with an assistant answer equal to `record["caption"]` (`turn` says which assistant turn).
    Raises ValueError naming the record and utterance when the record is malformed.
    """
    record_name = f"Localized Narratives record {record.get('image_id', '?')!r} (annotator {record.get('annotator_id', '?')})"
    for key in ("caption", "timed_caption", "traces"):
        if key not in record:
            raise ValueError(f"{record_name}: missing field {key!r}")
    caption = record["caption"]
    try:
        trace = np.asarray(
            [[point["x"], point["y"], point["t"]] for segment in record["traces"] for point in segment], dtype=np.float64
        ).reshape(-1, 3)
    except (KeyError, TypeError) as error:
        raise ValueError(f"{record_name}: traces must be lists of {{x, y, t}} points ({error!r})") from error
    targets = []
    cursor = 0
    for index, utterance in enumerate(record["timed_caption"]):
        words = str(utterance.get("utterance", "")).strip()
        if not words:
            continue
        start = caption.find(words, cursor)
        if start < 0:
            raise ValueError(
                f"{record_name}: utterance {index} {words!r} not found in the caption after character {cursor}"
            )
        cursor = start + len(words)
        begin, finish = float(utterance["start_time"]), float(utterance["end_time"])
        inside = (trace[:, 2] >= begin) & (trace[:, 2] <= finish)
        if inside.any():
            targets.append(
                SpanTarget(span=(start, cursor), value=trace[inside, :2].mean(axis=0), turn=turn, name=words)
            )
    return targets
