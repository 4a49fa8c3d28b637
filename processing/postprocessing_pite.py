"""Turning `generate()` output into text, grounded phrases with pixel trajectories, and time spans in seconds.

How phrases are found in generated text (the model itself marks no phrase boundaries):

- with `phrases=[...]` (e.g. noun phrases of the question, or from a parser): every case-insensitive, whole-word
  occurrence of each phrase in the generated text is reported;
- without: the text is split into words (`\\w+` runs, apostrophes kept inside) and a word is reported when its
  aggregated prediction places at least one point inside the image. A model trained as the authors' release trains
  (`absent_targets="regress"`, the default) predicts (-1, -1) for words that name no object, so those words drop
  out; a model trained with `absent_targets="mask"` never learned "no object", so most words pass: then pass
  `phrases`.

A unit's prediction is the mean over the generated tokens whose characters overlap it. Predictions of generated
token i are `point_predictions[:, i]` / `trajectory_predictions[:, i]`, aligned with `sequences[:, prompt_length + i]`.
A predicted point is *visible* when it lies inside the image, both coordinates in [0, 1], and *absent* otherwise
(the release trains absence as (-1, -1)): this decides both which words are grounded and in which frames an object
is shown. Absent points come back as NaN in pixel coordinates; visible ones are scaled to pixels of the original
video (x * width, y * height).

This file is Hub remote code: it imports only numpy, torch and its sibling `time_pite`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .time_pite import MAX_TEXT_FRAMES, parse_frame_index_spans, parse_time_spans

WORD_PATTERN = re.compile(r"\w+(?:['’]\w+)*")


def _to_numpy(array: Any) -> np.ndarray | None:
    if array is None:
        return None
    if isinstance(array, torch.Tensor):
        return (
            array.detach().to("cpu", torch.float32).numpy()
            if array.is_floating_point()
            else array.detach().cpu().numpy()
        )
    return np.asarray(array)


def token_character_spans(tokenizer: Any, token_ids: Sequence[int]) -> tuple[str, np.ndarray]:
    """Decode `token_ids` (special tokens skipped) and give each token its [start, end) characters in the text.

    Token i ends where the decoded prefix `ids[: i + 1]` stops agreeing with the full text; this stays exact
    for Metaspace/byte-fallback tokenizers, where a token's text depends on its neighbours (a leading "▁" is
    dropped at the start; several byte tokens make one character). Returns (text, spans (T, 2) int64).
    """
    ids = [int(i) for i in token_ids]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    spans = np.zeros((len(ids), 2), dtype=np.int64)
    previous_end = 0
    for i in range(len(ids)):
        prefix = tokenizer.decode(ids[: i + 1], skip_special_tokens=True)
        agree = 0
        limit = min(len(prefix), len(text))
        while agree < limit and prefix[agree] == text[agree]:
            agree += 1
        end = max(agree, previous_end)
        spans[i] = (previous_end, end)
        previous_end = end
    return text, spans


def _find_units(text: str, phrases: Sequence[str] | None) -> list[tuple[int, int]]:
    if phrases is None:
        return [match.span() for match in WORD_PATTERN.finditer(text)]
    units = []
    for phrase in phrases:
        if not phrase.strip():
            raise ValueError("phrases must be non-empty strings")
        pattern = re.compile(r"(?<!\w)" + re.escape(phrase.strip()) + r"(?!\w)", re.IGNORECASE)
        units.extend(match.span() for match in pattern.finditer(text))
    return sorted(units)


def _to_pixels(points: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised points (..., 2) -> (pixel points (..., 2) with NaN where absent, visible mask (...)).

    Visible means inside the image: both coordinates in [0, 1]."""
    visible = ((points >= 0) & (points <= 1)).all(axis=-1)
    pixels = points * np.asarray([width, height], dtype=np.float64)
    pixels[~visible] = np.nan
    return pixels, visible


def _eos_cut(generated: np.ndarray, eos_token_ids: set[int]) -> int:
    """Length of the answer: up to (not including) the first end-of-sequence token."""
    for i, token in enumerate(generated.tolist()):
        if token in eos_token_ids:
            return i
    return len(generated)


def post_process_generation(
    tokenizer: Any,
    generate_output: Any,
    video_metadata: Sequence[dict[str, Any]],
    prompt_length: int,
    point_predictions: Any = None,
    trajectory_predictions: Any = None,
    phrases: Sequence[str] | Sequence[Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """Decode generated answers with their grounded phrases (pixel coordinates) and time spans (seconds).

    Args:
        tokenizer: the processor's tokenizer.
        generate_output: `sequences` (B, prompt_length + T_new), or an object with `.sequences` and optionally
            `.point_predictions` (B, T_new, 2) / `.trajectory_predictions` (B, T_new, P, N, 2).
        video_metadata: the processor's `video_metadata`, one dict per sample (one video per sample).
        prompt_length: the (left-padded) prompt length, `input_ids.shape[1]`.
        point_predictions, trajectory_predictions: override/supply the per-token predictions.
        phrases: phrases to look for (one list for every sample, or one list per sample); None = word rule.

    Returns:
        per sample: {"text", "phrases": [{"text", "char_span", "token_indices", "point" (2,) px or None,
        "trajectory" (P, N, 2) px (NaN where absent) or None}], "time_spans" [(start_s, end_s)],
        "frame_index_spans" [(s, e)]}.
    """
    sequences = _to_numpy(getattr(generate_output, "sequences", generate_output))
    if point_predictions is None:
        point_predictions = getattr(generate_output, "point_predictions", None)
    if trajectory_predictions is None:
        trajectory_predictions = getattr(generate_output, "trajectory_predictions", None)
    points = _to_numpy(point_predictions)
    trajectories = _to_numpy(trajectory_predictions)
    if sequences.ndim != 2:
        raise ValueError(f"sequences must be (B, L), got shape {sequences.shape}")
    batch, total = sequences.shape
    num_new = total - prompt_length
    if num_new < 0:
        raise ValueError(f"prompt_length {prompt_length} exceeds the sequence length {total}")
    if len(video_metadata) != batch:
        raise ValueError(f"got {len(video_metadata)} video_metadata entries for {batch} sequences")
    for name, array, tail in (("point_predictions", points, 1), ("trajectory_predictions", trajectories, 3)):
        if array is not None and (array.ndim != 2 + tail or array.shape[:2] != (batch, num_new)):
            raise ValueError(f"{name} must be (B={batch}, T_new={num_new}, ...), got shape {array.shape}")
    if phrases is not None and (len(phrases) == 0 or isinstance(phrases[0], str)):
        phrases = [phrases] * batch
    eos_ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()

    results = []
    for b in range(batch):
        metadata = video_metadata[b]
        generated = sequences[b, prompt_length:]
        length = _eos_cut(generated, eos_ids)
        text, spans = token_character_spans(tokenizer, generated[:length])
        found = []
        for start, end in _find_units(text, None if phrases is None else phrases[b]):
            tokens = np.flatnonzero((spans[:, 0] < end) & (spans[:, 1] > start))
            if len(tokens) == 0:
                continue
            unit: dict[str, Any] = {
                "text": text[start:end],
                "char_span": (start, end),
                "token_indices": tokens.tolist(),
            }
            # The word rule decides on the trajectory when the model predicts one, else on the point.
            keep = phrases is not None
            for key, array in (("point", points), ("trajectory", trajectories)):
                if array is None:
                    unit[key] = None
                    continue
                mean = array[b, tokens].astype(np.float64).mean(axis=0)
                unit[key], visible = _to_pixels(mean, metadata["width"], metadata["height"])
                if phrases is None and (key == "trajectory" or trajectories is None):
                    keep = bool(visible.any())
            if keep:
                found.append(unit)
        duration, num_frames = metadata.get("duration"), len(metadata["frame_indices"])
        time_spans = parse_time_spans(text, duration, num_frames) if duration and num_frames <= MAX_TEXT_FRAMES else []
        results.append(
            {
                "text": text,
                "phrases": found,
                "time_spans": time_spans,
                "frame_index_spans": parse_frame_index_spans(text),
            }
        )
    return results
