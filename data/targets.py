"""Training conversations: the v1 conversation tokenized with its labels, and per-token point / trajectory targets.

Training-label building lives here, in the package, not in the remote code that travels with a checkpoint
(`processing/`), which holds only what inference needs. The tokenization is the processor's own rule
(`tokenize_around_video`: the text on each side of `<video>` tokenized on its own, as the authors' release does), so
training and inference see the same ids.

A target is attached to a character span of an assistant answer. Every token whose character span overlaps the
target span carries the target (so a phrase split into several tokens supervises each of them); every other token
is -1 ("no target"). Labels are aligned to the token itself: row t is the target of token t (the model shifts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers.utils.chat_template_utils import render_jinja_template

from pite.modeling_pite.losses_pite import ABSENT_COORDINATE, IGNORE_INDEX
from pite.processing.chat_template_pite import (
    V1_CHAT_TEMPLATE,
    VIDEO_TOKEN,
    expand_video_tokens,
    tokenize_around_video,
)


@dataclass
class TokenizedConversation:
    """One conversation tokenized for training, `<video>` already expanded.

    Attributes:
        text: the rendered conversation, each video still one "<video>" placeholder.
        input_ids: (L,) token ids, BOS first, one `<video>` id per frame.
        labels: (L,) copy of input_ids with IGNORE_INDEX (-100) everywhere but the assistant turns
            (answer text and its "</s>"). Not shifted: the model shifts.
        offsets: (L, 2) character span [start, end) of each token in `text` (expanded video tokens share
            their placeholder's span; BOS is (0, 0)).
        assistant_turns: per assistant turn, (start character of its content in `text`, content string).
    """

    text: str
    input_ids: np.ndarray
    labels: np.ndarray
    offsets: np.ndarray
    assistant_turns: list[tuple[int, str]]


def message_text(message: dict[str, Any]) -> str:
    """The text of a message whose content is a string or a list of `{"type": "text"}` items."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(item.get("text", "") for item in content if item.get("type") == "text")


def count_visual_items(messages: Sequence[dict[str, Any]]) -> list[str]:
    """The `"video"`/`"image"` content items of a conversation, in order (one `<video>` placeholder each)."""
    kinds = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            kinds.extend(item["type"] for item in content if item.get("type") in ("video", "image"))
    return kinds


def render_conversation(
    messages: Sequence[dict[str, Any]], chat_template: str = V1_CHAT_TEMPLATE, add_generation_prompt: bool = False
) -> tuple[str, list[tuple[int, int]]]:
    """Render one conversation; returns the text and the [start, end) character spans of the assistant turns."""
    rendered, generation_indices = render_jinja_template(
        conversations=[list(messages)],
        chat_template=chat_template,
        return_assistant_tokens_mask=True,
        add_generation_prompt=add_generation_prompt,
    )
    return rendered[0], [tuple(span) for span in generation_indices[0]]


def tokenize_conversation(
    tokenizer: Any,
    messages: Sequence[dict[str, Any]],
    num_frames: int,
    chat_template: str = V1_CHAT_TEMPLATE,
    video_token: str = VIDEO_TOKEN,
) -> TokenizedConversation:
    """Tokenize a full conversation for training, masking everything but the assistant turns.

    The rendered text is tokenized with `tokenize_around_video`, exactly as the processor tokenizes a prompt at
    inference (and as the release does), and a token is supervised iff its character span overlaps an assistant
    turn's content+"</s>". A token straddling the boundary (e.g. "▁The" whose "▁" is the separator space) is
    supervised: it is the token the model must produce to start the answer.

    Args:
        tokenizer: a fast (tokenizers-backed) Llama tokenizer with `video_token` as a special token.
        messages: `[{"role": "system"|"user"|"assistant", "content": str | [{"type": "text"|"video"|"image", ...}]}]`.
        num_frames: N, the `<video>` tokens per video (an image gets one).
    """
    text, assistant_spans = render_conversation(messages, chat_template)
    token_ids, offsets = tokenize_around_video(tokenizer, text, video_token, return_offsets=True)
    ids = np.asarray(token_ids, dtype=np.int64)
    supervised = np.zeros(len(ids), dtype=bool)
    for start, end in assistant_spans:
        supervised |= (offsets[:, 0] < end) & (offsets[:, 1] > start) & (offsets[:, 1] > offsets[:, 0])
    labels = np.where(supervised, ids, IGNORE_INDEX)

    frames_per_placeholder = [num_frames if kind == "video" else 1 for kind in count_visual_items(messages)]
    video_token_id = tokenizer.convert_tokens_to_ids(video_token)
    expand = expand_video_tokens(ids, video_token_id, frames_per_placeholder, source="the conversation")

    assistant_messages = [message for message in messages if message.get("role") == "assistant"]
    assistant_turns = []
    for (start, _), message in zip(assistant_spans, assistant_messages):
        content = message_text(message)
        if text[start : start + len(content)] != content:  # the template must render answers verbatim
            raise ValueError(f"chat template did not render the assistant answer {content[:40]!r} verbatim")
        assistant_turns.append((start, content))
    return TokenizedConversation(
        text=text,
        input_ids=ids[expand],
        labels=labels[expand],
        offsets=offsets[expand],
        assistant_turns=assistant_turns,
    )


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
        raise ValueError(
            f"{where}: span [{start}, {end}) lies outside the answer text of length {len(text)} or is empty"
        )
    return start, end


def build_span_labels(
    conversation: TokenizedConversation, targets: Sequence[SpanTarget], value_shape: tuple[int, ...]
) -> np.ndarray:
    """Per-token labels (L, *value_shape), float32, -1 where a token has no target.

    Raises ValueError naming the target if its span lies outside its answer, its value has the wrong shape or
    non-finite entries, or two targets claim the same token (nothing is silently overwritten).
    """
    labels = np.full((len(conversation.input_ids), *value_shape), ABSENT_COORDINATE, dtype=np.float32)
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
    record_name = (
        f"Localized Narratives record {record.get('image_id', '?')!r} (annotator {record.get('annotator_id', '?')})"
    )
    for key in ("caption", "timed_caption", "traces"):
        if key not in record:
            raise ValueError(f"{record_name}: missing field {key!r}")
    caption = record["caption"]
    try:
        trace = np.asarray(
            [[point["x"], point["y"], point["t"]] for segment in record["traces"] for point in segment],
            dtype=np.float64,
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


def build_training_features(
    processor: Any,
    messages: Sequence[dict[str, Any]],
    trajectory_targets: Sequence[SpanTarget] | None = None,
    point_targets: Sequence[SpanTarget] | None = None,
    num_points: int = 3,
) -> dict[str, np.ndarray]:
    """Token-level training arrays for one conversation (no pixels: training reads cached features).

    Args:
        processor: the checkpoint's `PiTeProcessor` (its tokenizer, chat template, video token and N).
        messages: the conversation, as for `apply_chat_template`.
        trajectory_targets / point_targets: `SpanTarget`s on character spans of the assistant answer named by
            their `turn`.

    Returns `input_ids`, `labels` (L,) (-100 outside assistant turns), and if targets are given
    `trajectory_labels` (L, P, N, 2) and/or `point_labels` (L, 2), -1 where a token has no target.
    """
    conversation = tokenize_conversation(
        processor.tokenizer, messages, processor.num_frames, processor.chat_template, processor.video_token
    )
    features = {"input_ids": conversation.input_ids, "labels": conversation.labels}
    if trajectory_targets is not None:
        features["trajectory_labels"] = build_trajectory_labels(
            conversation, trajectory_targets, num_points, processor.num_frames
        )
    if point_targets is not None:
        features["point_labels"] = build_point_labels(conversation, point_targets)
    return features
