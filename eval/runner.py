"""Benchmark runner scaffolding: batched generation into a resumable store, then scoring per task.

The model is plugged in as a `generate_fn(records) -> outputs`: it receives a batch of `EvalRecord`s (video path,
duration, and `pite.eval.prompts.task_question(record)` to ask) and returns one output string per record, in order,
or a `SkippedSample(reason)` in place of the string for a record it could not process (an unreadable video).
`pite.eval.model_runner.PiTeGenerator` is that function for a saved PiTe; everything here needs no model.

    dataset = read_charades_sta("charades_sta_test.txt", "Charades_v1_test.csv", videos_dir="videos")
    store = PredictionStore("runs/charades/predictions.json", meta={"task": "grounding", "model": "pite-7b"})
    summary = generate_predictions(dataset, generate_fn, store, batch_size=8)   # resumable
    scores = score_grounding(dataset, store)                                    # R@0.3/0.5/0.7, mIoU
    print(activitynet_table({"PiTe-7B": {"grounding": scores}}))               # pite.eval.tables

Records whose video was looked for and not found, and records `generate_fn` skipped, are recorded with their reason
in the store's `skipped` section and listed in the summary (a rerun tries them again); records already in the store are
not generated again, and the store is flushed even when `generate_fn` raises, so nothing already generated is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from pite.eval.datasets import EvalDataset, EvalRecord
from pite.eval.dense_captioning import dense_captioning_scores
from pite.eval.grounding import grounding_text_scores
from pite.eval.intervals import DEFAULT_NUM_FRAMES, parse_dense_captions
from pite.eval.judge import JudgeBackend, JudgmentCache, QAJudgeResult, QASample, judge_qa
from pite.eval.predictions import PredictionStore
from pite.eval.protocols import DEFAULT_PROTOCOL, check_protocol, vtimellm_dense_captions


@dataclass(frozen=True)
class SkippedSample:
    """What a `generate_fn` returns for a record it could not answer (e.g. its video cannot be decoded)."""

    reason: str


GenerateFn = Callable[[list[EvalRecord]], Sequence["str | SkippedSample"]]


@dataclass
class GenerationSummary:
    """What one `generate_predictions` call did.

    `skipped_samples` lists the records without output (missing videos first, then those `generate_fn` skipped),
    `skip_reasons` says why for each.
    """

    generated: int = 0
    already_done: int = 0
    missing_videos: list[str] = field(default_factory=list)
    skipped_samples: list[str] = field(default_factory=list)
    skip_reasons: dict[str, str] = field(default_factory=dict)

    def _skip(self, store: PredictionStore, sample_id: str, reason: str) -> None:
        self.skipped_samples.append(sample_id)
        self.skip_reasons[sample_id] = reason
        store.skip(sample_id, reason)


def generate_predictions(
    dataset: EvalDataset,
    generate_fn: GenerateFn,
    store: PredictionStore,
    batch_size: int = 8,
    progress: bool = True,
) -> GenerationSummary:
    """Run `generate_fn` over the records not yet in `store`, `batch_size` at a time, storing every output.

    Raises:
        TypeError / ValueError if `generate_fn` does not return one string per record (after saving the batches
        before it); any exception of `generate_fn` (likewise after saving).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    missing = set(dataset.missing_videos)
    summary = GenerationSummary(missing_videos=list(dataset.missing_videos))
    todo = []
    for record in dataset.records:
        if store.has(record.sample_id):  # an output made before the video went missing is still an output
            summary.already_done += 1
        elif record.video_id in missing:
            summary._skip(store, record.sample_id, f"video {record.video_id!r} not found in the videos folder")
        else:
            todo.append(record)
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
    try:
        with tqdm(total=len(todo), desc=f"generating {dataset.name}", unit="sample", disable=not progress) as bar:
            for batch in batches:
                outputs = generate_fn(batch)
                _check_outputs(outputs, batch)
                for record, output in zip(batch, outputs):
                    if isinstance(output, SkippedSample):
                        summary._skip(store, record.sample_id, output.reason)
                    else:
                        store.add(record.sample_id, output)
                        summary.generated += 1
                bar.update(len(batch))
    finally:
        store.flush()
    return summary


def _check_outputs(outputs: object, batch: list[EvalRecord]) -> None:
    if not isinstance(outputs, Sequence) or isinstance(outputs, str) or len(outputs) != len(batch):
        length = len(outputs) if isinstance(outputs, Sequence) else "?"
        raise ValueError(
            f"generate_fn returned {type(outputs).__name__} of length {length} for a batch of {len(batch)} records"
        )
    for record, output in zip(batch, outputs):
        if not isinstance(output, (str, SkippedSample)):
            raise TypeError(
                f"generate_fn returned {type(output).__name__} for {record.sample_id!r}, not str (or SkippedSample)"
            )


def _predicted(dataset: EvalDataset, store: PredictionStore, task: str) -> list[EvalRecord]:
    wrong = sorted({r.task for r in dataset.records if r.task != task})
    if wrong:
        raise ValueError(f"{dataset.name} holds {wrong} records; this scorer needs {task!r} records")
    if not dataset.records:
        kind = task.replace("_", "-")
        raise ValueError(f"the references file {dataset.name} holds no {kind} queries: nothing to score")
    records = [r for r in dataset.records if store.has(r.sample_id)]
    if not records:
        raise ValueError(f"no predictions in {store.path} for the records of {dataset.name}")
    return records


def score_grounding(
    dataset: EvalDataset,
    store: PredictionStore,
    num_frames: int = DEFAULT_NUM_FRAMES,
    protocol: str = DEFAULT_PROTOCOL,
) -> dict[str, object]:
    """R@1 at IoU 0.3 / 0.5 / 0.7 and mIoU (percent) of the stored answers; records without output are counted out.

    Answers are read per `protocol` (`pite.eval.grounding.grounding_text_scores`). Adds `"num_unanswered"`: records
    of the dataset with no stored output (e.g. missing videos).
    """
    records = _predicted(dataset, store, "grounding")
    scores = grounding_text_scores(
        [store.output(r.sample_id) for r in records],
        [r.intervals[0] for r in records],
        [r.duration for r in records],
        num_frames,
        protocol=protocol,
        query_ids=[r.sample_id for r in records],
    )
    scores["num_unanswered"] = len(dataset.records) - len(records)
    return scores


def read_dense_captions(
    answer: str, duration: float, num_frames: int = DEFAULT_NUM_FRAMES, protocol: str = DEFAULT_PROTOCOL
) -> list[dict]:
    """One dense-captioning answer in ActivityNet prediction form `[{"sentence", "timestamp": [s, e]}]`.

    `"reference"`: VTimeLLM's reading (`pite.eval.protocols.vtimellm_dense_captions`: its JSON list only, spans by
    position, similar touching events merged, reversed spans and empty captions kept). `"corrected"`:
    `pite.eval.intervals.parse_dense_captions` (JSON list or free text, unusable events dropped, nothing merged).
    """
    if check_protocol(protocol) == "reference":
        return vtimellm_dense_captions(answer, duration, num_frames)
    return [event.to_json() for event in parse_dense_captions(answer, duration, num_frames)]


def dense_caption_predictions(
    records: Sequence[EvalRecord],
    store: PredictionStore,
    num_frames: int = DEFAULT_NUM_FRAMES,
    protocol: str = DEFAULT_PROTOCOL,
) -> dict[str, list[dict]]:
    """Stored answers parsed into ActivityNet prediction form `{video_id: [{"sentence", "timestamp"}]}`."""
    return {
        r.video_id: read_dense_captions(store.output(r.sample_id), r.duration, num_frames, protocol) for r in records
    }


def score_dense_captioning(
    dataset: EvalDataset,
    store: PredictionStore,
    num_frames: int = DEFAULT_NUM_FRAMES,
    meteor=None,
    protocol: str = DEFAULT_PROTOCOL,
) -> dict[str, object]:
    """SODA_c, CIDEr, METEOR, precision, recall (x100) of the stored answers against the dataset's events."""
    records = _predicted(dataset, store, "dense_captioning")
    references = {
        r.video_id: {
            "duration": r.duration,
            "timestamps": [list(i) for i in r.intervals],
            "sentences": list(r.sentences),
        }
        for r in dataset.records
    }
    scores = dense_captioning_scores(
        dense_caption_predictions(records, store, num_frames, protocol), references, meteor=meteor, protocol=protocol
    )
    scores["num_unanswered"] = len(dataset.records) - len(records)
    return scores


def score_qa(
    dataset: EvalDataset,
    store: PredictionStore,
    judge: JudgeBackend,
    cache: JudgmentCache | None = None,
    num_workers: int = 1,
    protocol: str = DEFAULT_PROTOCOL,
) -> QAJudgeResult:
    """Judge the stored answers (Video-ChatGPT protocol) and aggregate accuracy and score."""
    records = _predicted(dataset, store, "qa")
    samples = [QASample(r.sample_id, r.query or "", r.answer or "", store.output(r.sample_id)) for r in records]
    return judge_qa(samples, judge, cache, num_workers=num_workers, protocol=protocol)
