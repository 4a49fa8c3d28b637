"""Dense video captioning metrics: the ActivityNet Captions evaluator ("densevid_eval") protocol, plus SODA_c.

Inputs are the published JSON shapes (docs/FORMATS.md):
- predictions: the `"results"` field of a submission, `{video_id: [{"sentence": str, "timestamp": [s, e]}, ...]}`;
- references: one or several loaded ground-truth files (`val_1.json`, `val_2.json`),
  `{video_id: {"duration": float, "timestamps": [[s, e], ...], "sentences": [str, ...]}}`.
The videos scored are those of `predictions` (as in VTimeLLM's evaluation); give a video with no readable event an
empty list so that it scores 0 rather than being left out. Every predicted video must be in some reference file.

Protocol, per tIoU in (0.3, 0.5, 0.7, 0.9) (the 2018 densevid_eval as VTimeLLM runs it):
- each video keeps its first `max_proposals` (1000) predictions; non-ASCII characters become spaces;
- Precision / Recall: a prediction (ground-truth event) is covered when some ground-truth event (prediction) overlaps
  it with tIoU *strictly greater* than the threshold; precision = covered predictions / #predictions, recall = covered
  ground truth / #ground truth, per video the best over reference files, then the mean over videos;
  F1 = 2PR / (P + R) of the means, per tIoU;
- METEOR / CIDEr: every prediction is paired with *every* ground-truth sentence overlapping it at tIoU >= the
  threshold (one pair each, so duplicate predictions make duplicate pairs); a prediction overlapping none is paired
  with a dummy reference no caption can match. Sentences are PTB-tokenized (pycocoevalcap). A video's METEOR is the
  aggregated METEOR of its pairs, its CIDEr the toolkit's CIDEr over its pairs (idf from those pairs only), 0 when it
  has no pairs; then the mean over videos;
- each number is then averaged over the tIoUs and reported x100. SODA_c (see `pite.eval.soda`) is added.

`protocol` (`pite.eval.protocols`) changes only SODA_c here (see `pite.eval.soda`): the densevid_eval numbers are the
same under both. How answer *text* becomes these predictions differs per protocol (`pite.eval.runner`). A predicted
video whose reference has no event is refused (the reference script divides by zero there; scoring it 0 would be
silently wrong).

Two deliberate departures from the reference script, neither of which changes a score: the dummy reference is a fixed
token (`DUMMY_REFERENCE`) instead of a random 10-20 letter string (same single unmatched token, but deterministic), and
the METEOR / tokenizer Java processes are driven by `pite.eval.caption_scorers`. The tIoU is the script's formula,
`intersection / (union + 1e-8)` with `union = min(hull, len_a + len_b)`; the 1e-8 makes an exact tie (tIoU equal to
the threshold) miss, as it does there.

Without Java, METEOR and SODA_c are `None`, `"unavailable"` says why, a `UserWarning` is issued, and CIDEr,
precision and recall are still computed, with `pite.eval.caption_scorers.python_tokenize` in place of PTB
(`"tokenizer": "python"`).

Usage:
    >>> import json
    >>> from pite.eval.dense_captioning import dense_captioning_scores
    >>> scores = dense_captioning_scores(json.load(open("pred.json"))["results"],
    ...                                  [json.load(open("val_2.json"))])  # doctest: +SKIP
    >>> scores["SODA_c"], scores["CIDEr"], scores["METEOR"]  # doctest: +SKIP
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

from pite.eval.caption_scorers import (
    JavaNotFoundError,
    MeteorScorer,
    cider_score,
    ptb_tokenize,
    python_tokenize,
    require_java,
)
from pite.eval.intervals import CaptionEvent
from pite.eval.protocols import DEFAULT_PROTOCOL, check_protocol
from pite.eval.soda import soda_c_scores

DEFAULT_TIOUS = (0.3, 0.5, 0.7, 0.9)
DEFAULT_MAX_PROPOSALS = 1000
DUMMY_REFERENCE = "zqxjvkwzqxjvkw"


def densevid_tiou(first: tuple[float, float], second: tuple[float, float]) -> float:
    """densevid_eval's tIoU: `intersection / (union + 1e-8)`; a reversed interval simply overlaps nothing."""
    (start_a, end_a), (start_b, end_b) = first, second
    intersection = max(0.0, min(end_a, end_b) - max(start_a, start_b))
    union = min(max(end_a, end_b) - min(start_a, start_b), (end_a - start_a) + (end_b - start_b))
    return intersection / (union + 1e-8)


def remove_nonascii(text: str) -> str:
    """Replace every non-ASCII character by a space, as densevid_eval does before scoring."""
    return "".join(character if ord(character) < 128 else " " for character in text)


def _finite_pair(value: object, what: str) -> tuple[float, float]:
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, Sequence)
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        raise ValueError(f"{what}: expected [start, end] of two finite numbers, got {value!r}")
    return float(value[0]), float(value[1])


def read_predicted_events(
    predictions: Mapping[str, Sequence[Mapping]], max_proposals: int | None = DEFAULT_MAX_PROPOSALS
) -> dict[str, list[CaptionEvent]]:
    """Validate submission `results` and return them as events (first `max_proposals` per video, all if `None`;
    ASCII only).

    A reversed predicted timestamp is kept (it overlaps nothing and so scores nothing); a missing or non-string
    sentence, or a timestamp that is not two finite numbers, raises a `ValueError` naming the video and index.
    """
    if not isinstance(predictions, Mapping):
        raise ValueError(f"predictions must map video ids to lists of events, got {type(predictions).__name__}")
    events = {}
    for video_id, items in predictions.items():
        if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
            raise ValueError(f"predictions[{video_id!r}] must be a list of events, got {type(items).__name__}")
        video_events = []
        for index, item in enumerate(items[:max_proposals]):
            where = f"predictions[{video_id!r}][{index}]"
            if not isinstance(item, Mapping) or not isinstance(item.get("sentence"), str):
                raise ValueError(f"{where}: expected {{'sentence': str, 'timestamp': [s, e]}}, got {item!r}")
            start, end = _finite_pair(item.get("timestamp"), f"{where}['timestamp']")
            video_events.append(CaptionEvent(remove_nonascii(item["sentence"]), start, end))
        events[str(video_id)] = video_events
    return events


def read_reference_events(reference: Mapping[str, Mapping], name: str = "references") -> dict[str, list[CaptionEvent]]:
    """Validate one ground-truth file's content and return it as events (ASCII only).

    Raises a `ValueError` naming the video and index for: missing `timestamps` / `sentences`, lists of different
    lengths, a timestamp that is not two finite numbers, or a reversed timestamp.
    """
    if not isinstance(reference, Mapping):
        raise ValueError(f"{name} must map video ids to annotations, got {type(reference).__name__}")
    events = {}
    for video_id, annotation in reference.items():
        where = f"{name}[{video_id!r}]"
        if not isinstance(annotation, Mapping):
            raise ValueError(f"{where}: expected an object with 'timestamps' and 'sentences'")
        timestamps, sentences = annotation.get("timestamps"), annotation.get("sentences")
        if not isinstance(timestamps, list) or not isinstance(sentences, list):
            raise ValueError(f"{where}: 'timestamps' and 'sentences' must both be lists")
        if len(timestamps) != len(sentences):
            raise ValueError(f"{where}: {len(timestamps)} timestamps but {len(sentences)} sentences")
        video_events = []
        for index, (timestamp, sentence) in enumerate(zip(timestamps, sentences)):
            start, end = _finite_pair(timestamp, f"{where}['timestamps'][{index}]")
            if start > end:
                raise ValueError(f"{where}['timestamps'][{index}]: reversed interval {timestamp!r}")
            if not isinstance(sentence, str):
                raise ValueError(f"{where}['sentences'][{index}]: expected a string, got {sentence!r}")
            video_events.append(CaptionEvent(remove_nonascii(sentence), start, end))
        events[str(video_id)] = video_events
    return events


def _caption_pairs(
    predicted: Sequence[CaptionEvent], references: Sequence[Sequence[CaptionEvent]], tiou: float
) -> list[tuple[str, str]]:
    """(predicted sentence, reference sentence) pairs of one video at one tIoU; unmatched -> the dummy reference."""
    pairs = []
    for prediction in predicted:
        matched = [
            reference.sentence
            for reference_set in references
            for reference in reference_set
            if densevid_tiou((prediction.start, prediction.end), (reference.start, reference.end)) >= tiou
        ]
        pairs.extend((prediction.sentence, sentence) for sentence in matched or [DUMMY_REFERENCE])
    return pairs


def _precision_recall(
    predicted: Sequence[CaptionEvent], references: Sequence[Sequence[CaptionEvent]], tiou: float
) -> tuple[float, float]:
    """Best (precision, recall) of one video over its reference sets, strict `> tiou`."""
    best_precision = best_recall = 0.0
    for reference_set in references:
        covered_predictions, covered_references = set(), set()
        for i, prediction in enumerate(predicted):
            for k, reference in enumerate(reference_set):
                if densevid_tiou((prediction.start, prediction.end), (reference.start, reference.end)) > tiou:
                    covered_predictions.add(i)
                    covered_references.add(k)
        best_precision = max(best_precision, len(covered_predictions) / max(len(predicted), 1))
        best_recall = max(best_recall, len(covered_references) / max(len(reference_set), 1))
    return best_precision, best_recall


def dense_captioning_scores(
    predictions: Mapping[str, Sequence[Mapping]],
    references: Mapping[str, Mapping] | Sequence[Mapping[str, Mapping]],
    tious: Sequence[float] = DEFAULT_TIOUS,
    meteor: MeteorScorer | None = None,
    max_proposals: int = DEFAULT_MAX_PROPOSALS,
    protocol: str = DEFAULT_PROTOCOL,
) -> dict[str, object]:
    """SODA_c, CIDEr, METEOR, Precision, Recall and F1 (x100) of dense-captioning predictions.

    Args:
        predictions: `{video_id: [{"sentence", "timestamp": [s, e]}]}` (a submission's `"results"`).
        references: one ground-truth mapping, or a list of them (e.g. val_1 and val_2 together).
        tious: the tIoU thresholds to average over.
        meteor: a running `MeteorScorer` to reuse (its JVM start-up costs seconds); one is started and closed here
            otherwise.
        max_proposals: predictions kept per video.
        protocol: `"reference"` (VTimeLLM's SODA code, quirks included) or `"corrected"` (see `pite.eval.soda`).

    Returns:
        `{"SODA_c", "CIDEr", "METEOR", "Precision", "Recall", "F1"}` averaged over tIoUs, `"per_tiou"`
        (`{tiou: {metric: value}}`), `"num_videos"`, `"tokenizer"` ("ptb" or "python") and `"unavailable"`
        (`{metric: reason}` for metrics that could not be computed, whose value is then `None`), `"protocol"`.
    """
    check_protocol(protocol)
    reference_list = [references] if isinstance(references, Mapping) else list(references)
    if not reference_list:
        raise ValueError("no reference files given")
    if not tious:
        raise ValueError("no tIoU thresholds given")
    predicted = read_predicted_events(predictions, max_proposals)
    # VTimeLLM's SODA code (dvc_eval/SODA/dataset.py) reads every prediction; only densevid_eval keeps max_proposals
    soda_predicted = predicted if protocol == "corrected" else read_predicted_events(predictions, None)
    if not predicted:
        raise ValueError("no predicted videos to score")
    reference_sets = [read_reference_events(r, f"references[{i}]") for i, r in enumerate(reference_list)]
    unknown = sorted(v for v in predicted if not any(v in refs for refs in reference_sets))
    if unknown:
        raise ValueError(f"{len(unknown)} predicted videos are in no reference file: {unknown[:10]}")
    video_references = {v: [refs[v] for refs in reference_sets if v in refs] for v in predicted}
    for video_id, sets in video_references.items():
        for index, events in enumerate(sets):
            if not events:
                raise ValueError(
                    f"reference video {video_id!r} has no events (timestamps and sentences are empty): nothing to "
                    "score its predictions against; remove it or give its events"
                )

    pairs_per_tiou = {
        tiou: {v: _caption_pairs(predicted[v], video_references[v], tiou) for v in predicted} for tiou in tious
    }
    sentences = sorted(
        {
            s
            for pairs in pairs_per_tiou.values()
            for video_pairs in pairs.values()
            for pair in video_pairs
            for s in pair
        }
        | {e.sentence for refs in reference_sets for events in refs.values() for e in events}
        | {e.sentence for events in soda_predicted.values() for e in events}
    )
    unavailable: dict[str, str] = {}
    try:
        require_java("METEOR and SODA_c (which scores captions with METEOR)")
    except JavaNotFoundError as error:
        unavailable = {"METEOR": str(error), "SODA_c": str(error)}
        warnings.warn(f"{error} CIDEr, precision and recall are computed with a Python tokenizer.", UserWarning)
        tokenizer_name, tokenized = "python", dict(zip(sentences, python_tokenize(sentences)))
    else:
        tokenizer_name, tokenized = "ptb", dict(zip(sentences, ptb_tokenize(sentences)))

    own_meteor = meteor is None and not unavailable
    if own_meteor:
        meteor = MeteorScorer()
    try:
        per_tiou = {}
        for tiou in tious:
            numbers: dict[str, float | None] = {"CIDEr": 0.0, "METEOR": None if unavailable else 0.0}
            for video_id in predicted:
                pairs = [(tokenized[h], [tokenized[r]]) for h, r in pairs_per_tiou[tiou][video_id]]
                if pairs:
                    numbers["CIDEr"] += cider_score(pairs)
                    if not unavailable:
                        numbers["METEOR"] += meteor.corpus_score(pairs)
            precision_recall = [_precision_recall(predicted[v], video_references[v], tiou) for v in predicted]
            numbers["Precision"] = sum(p for p, _ in precision_recall)
            numbers["Recall"] = sum(r for _, r in precision_recall)
            numbers = {k: None if v is None else 100.0 * v / len(predicted) for k, v in numbers.items()}
            p, r = numbers["Precision"], numbers["Recall"]
            numbers["F1"] = 2 * p * r / (p + r) if p + r > 0 else 0.0
            per_tiou[tiou] = numbers
        soda = None
        if not unavailable:
            tokenized_predictions = {
                v: [CaptionEvent(tokenized[e.sentence], e.start, e.end) for e in events]
                for v, events in soda_predicted.items()
            }
            tokenized_references = [
                {
                    v: [CaptionEvent(tokenized[e.sentence], e.start, e.end) for e in events]
                    for v, events in refs.items()
                }
                for refs in reference_sets
            ]
            soda = soda_c_scores(
                tokenized_predictions,
                tokenized_references,
                lambda pairs: meteor.segment_scores([(h, [r]) for h, r in pairs]),
                protocol,
            )["SODA_c"]
    finally:
        if own_meteor:
            meteor.close()

    result: dict[str, object] = {"SODA_c": soda}
    for metric in ("CIDEr", "METEOR", "Precision", "Recall", "F1"):
        values = [per_tiou[t][metric] for t in tious]
        result[metric] = None if any(v is None for v in values) else sum(values) / len(values)
    result.update(
        per_tiou=per_tiou,
        num_videos=len(predicted),
        tokenizer=tokenizer_name,
        unavailable=unavailable,
        protocol=protocol,
    )
    return result
