"""The PiTe metrics as `evaluate` modules: use them by import, or by `evaluate.load(<local path>)` offline.

Each class, its script (`metric_script_path(name)`) and its inputs:
- `TemporalGrounding` (`temporal_grounding`): predictions `[start, end]` (`[]` = none) and references
  `[start, end]`, seconds; config "text": predictions are answers, plus `durations=`.
- `DenseVideoCaptioning` (`dense_video_captioning`): per video, predictions `[{"sentence", "timestamp"}]` and
  references `{"timestamps", "sentences"}`.
- `TrajectoryAccuracy` (`trajectory_accuracy`): per sample, points `[[x, y], ...]` (reshape (P, N, 2) to (-1, 2));
  optional `width=`, `height=` per sample.
- `VideoQAJudge` (`video_qa_judge`): predicted and correct answers (strings), plus `questions=`, `judge=` (a
  backend), optional `cache=`.

Usage:
    >>> import evaluate
    >>> from pite.eval.hf_metrics import metric_script_path
    >>> grounding = evaluate.load(metric_script_path("temporal_grounding"))  # works with HF_HUB_OFFLINE=1
    >>> grounding.compute(predictions=[[0, 5]], references=[[0, 10]])["mIoU"]
    50.0

The scoring protocol (`pite.eval.protocols`: `"reference"`, VTimeLLM's / Video-ChatGPT's numbers, the default; or
`"corrected"`) is chosen by the config name (`evaluate.load(path, "corrected")`; grounding also `"text"`,
`"text-corrected"`, `"text-reference"`) or by `compute(..., protocol=...)`, which wins; every result says which.

`evaluate.load("meteor")` and friends fetch scripts from the Hub and fail offline; these do not.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import evaluate
import numpy as np

from pite.eval.dense_captioning import DEFAULT_MAX_PROPOSALS, DEFAULT_TIOUS, dense_captioning_scores
from pite.eval.grounding import grounding_scores, grounding_text_scores
from pite.eval.intervals import DEFAULT_NUM_FRAMES
from pite.eval.judge import JudgmentCache, QASample, judge_qa
from pite.eval.protocols import DEFAULT_PROTOCOL, PROTOCOLS, check_protocol
from pite.eval.trajectory import DEFAULT_THRESHOLDS, trajectory_scores

METRIC_SCRIPTS_DIR = Path(__file__).parent / "metric_scripts"
METRIC_NAMES = ("temporal_grounding", "dense_video_captioning", "trajectory_accuracy", "video_qa_judge")

_CITATION_PITE = (
    "@inproceedings{liu2024pite, title={PiTe: Pixel-Temporal Alignment for Large Video-Language Model}, "
    "author={Liu, Yang and Ding, Pengxiang and Huang, Siteng and Zhang, Min and Zhao, Han and Wang, Donglin}, "
    "booktitle={ECCV}, year={2024}}"
)


def metric_script_path(name: str) -> str:
    """Local path of the `evaluate` script folder of metric `name` (one of `METRIC_NAMES`)."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; choose one of {METRIC_NAMES}")
    return str(METRIC_SCRIPTS_DIR / name)


_INTERVAL = datasets.Sequence(datasets.Value("float64"))


def parse_config_name(config_name: str | None) -> tuple[bool, str]:
    """(answers given as text?, protocol) of a config name: "default", "text", a protocol, or "text-<protocol>"."""
    parts = [] if config_name in (None, "default") else config_name.split("-", 1)
    text = bool(parts) and parts[0] == "text"
    if text:
        parts = parts[1:]
    protocol = parts[0] if parts else DEFAULT_PROTOCOL
    if protocol not in PROTOCOLS:
        raise ValueError(
            f"unknown config {config_name!r}: use 'default', 'text', one of {PROTOCOLS} or 'text-<protocol>'"
        )
    return text, protocol


class TemporalGrounding(evaluate.Metric):
    """R@1 at IoU 0.3 / 0.5 / 0.7 and mIoU, percent (`pite.eval.grounding`)."""

    def _info(self) -> evaluate.MetricInfo:
        prediction = datasets.Value("string") if parse_config_name(self.config_name)[0] else _INTERVAL
        return evaluate.MetricInfo(
            description=grounding_scores.__doc__,
            citation=_CITATION_PITE,
            inputs_description=(
                "predictions: [start, end] seconds, [] when the answer named none (config 'text': the answer strings, "
                "with durations=[seconds] and optionally num_frames=100); references: [start, end] seconds."
            ),
            features=datasets.Features({"predictions": prediction, "references": _INTERVAL}),
        )

    def _compute(
        self,
        predictions,
        references,
        durations=None,
        num_frames: int = DEFAULT_NUM_FRAMES,
        thresholds=(0.3, 0.5, 0.7),
        protocol=None,
        query_ids=None,
    ):
        text, config_protocol = parse_config_name(self.config_name)
        protocol = check_protocol(protocol or config_protocol)
        references = [tuple(r) for r in references]
        if text:
            if durations is None or len(durations) != len(predictions):
                raise ValueError("config 'text' needs durations=[seconds], one per prediction")
            return grounding_text_scores(
                predictions, references, durations, num_frames, thresholds, protocol, query_ids
            )
        intervals = [tuple(p) if len(p) else None for p in predictions]
        return grounding_scores(intervals, references, thresholds, protocol, query_ids)


class DenseVideoCaptioning(evaluate.Metric):
    """SODA_c, CIDEr, METEOR, precision, recall, x100 (`pite.eval.dense_captioning`); one row per video."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=dense_captioning_scores.__doc__,
            citation=_CITATION_PITE,
            inputs_description=(
                "predictions: per video a list of {'sentence', 'timestamp': [s, e]}; references: per video "
                "{'timestamps': [[s, e], ...], 'sentences': [...]}; optional video_ids=[...], tious, max_proposals, "
                "meteor (a running pite.eval.caption_scorers.MeteorScorer)."
            ),
            features=datasets.Features(
                {
                    "predictions": [{"sentence": datasets.Value("string"), "timestamp": _INTERVAL}],
                    "references": {
                        "timestamps": datasets.Sequence(_INTERVAL),
                        "sentences": datasets.Sequence(datasets.Value("string")),
                    },
                }
            ),
        )

    def _compute(
        self,
        predictions,
        references,
        video_ids=None,
        tious=DEFAULT_TIOUS,
        max_proposals=DEFAULT_MAX_PROPOSALS,
        meteor=None,
        protocol=None,
    ):
        protocol = check_protocol(protocol or parse_config_name(self.config_name)[1])
        video_ids = [str(i) for i in range(len(predictions))] if video_ids is None else [str(v) for v in video_ids]
        if len(video_ids) != len(predictions) or len(set(video_ids)) != len(video_ids):
            raise ValueError("video_ids must be unique, one per prediction")
        return dense_captioning_scores(
            dict(zip(video_ids, predictions)), dict(zip(video_ids, references)), tious, meteor, max_proposals, protocol
        )


class TrajectoryAccuracy(evaluate.Metric):
    """Masked L1 and PCK@5% / 10% of the frame diagonal (`pite.eval.trajectory`)."""

    def _info(self) -> evaluate.MetricInfo:
        points = datasets.Sequence(datasets.Sequence(datasets.Value("float64")))
        return evaluate.MetricInfo(
            description=trajectory_scores.__doc__,
            citation=_CITATION_PITE,
            inputs_description=(
                "predictions / references: per sample a list of [x, y] points (normalised; -1 marks absent targets); "
                "optional width=[...], height=[...] per sample (frame size or aspect), thresholds."
            ),
            features=datasets.Features({"predictions": points, "references": points}),
        )

    def _compute(self, predictions, references, width=None, height=None, thresholds=DEFAULT_THRESHOLDS):
        sizes = [len(p) for p in predictions]
        if sizes != [len(r) for r in references]:
            raise ValueError("each prediction must have as many points as its reference")
        flat_predictions = np.asarray([point for sample in predictions for point in sample], dtype=np.float64)
        flat_references = np.asarray([point for sample in references for point in sample], dtype=np.float64)
        if (width is None) != (height is None):
            raise ValueError("give both width and height, or neither")
        if width is not None:  # one size per sample -> one per point
            width, height = np.repeat(np.asarray(width, float), sizes), np.repeat(np.asarray(height, float), sizes)
        return trajectory_scores(
            flat_predictions.reshape(-1, 2), flat_references.reshape(-1, 2), width, height, thresholds
        )


class VideoQAJudge(evaluate.Metric):
    """Video-ChatGPT judge accuracy (percent) and mean score (`pite.eval.judge`)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=judge_qa.__doc__,
            citation=_CITATION_PITE,
            inputs_description=(
                "predictions: predicted answers; references: correct answers; questions=[...]; judge=a backend from "
                "pite.eval.judge_backends; optional cache=JudgmentCache or a path, sample_ids=[...], num_workers."
            ),
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(
        self,
        predictions,
        references,
        questions=None,
        judge=None,
        cache=None,
        sample_ids=None,
        num_workers=1,
        protocol=None,
    ):
        protocol = check_protocol(protocol or parse_config_name(self.config_name)[1])
        if judge is None or questions is None or len(questions) != len(predictions):
            raise ValueError("give judge= (a backend) and questions=[...], one per prediction")
        sample_ids = [str(i) for i in range(len(predictions))] if sample_ids is None else [str(s) for s in sample_ids]
        if cache is not None and not isinstance(cache, JudgmentCache):
            cache = JudgmentCache(cache)
        samples = [QASample(*fields) for fields in zip(sample_ids, questions, references, predictions)]
        return judge_qa(samples, judge, cache, num_workers, protocol).summary()
