"""Annotation files of a stage -> a `datasets.Dataset` of checked examples, featurized on access.

`build_stage_dataset` reads every file with its stage's loader, checks every example once (conversation, targets,
length, media: see `ExampleFeaturizer.check`) under the bad-record policy, and returns a `datasets.Dataset` whose rows
are the examples and whose format transform produces the model inputs (pixels are decoded when a row is read, so
nothing large is stored).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import datasets

from .featurize import ExampleFeaturizer
from .instructions import detect_instruction_format, valley_example, videoinstruct_example
from .narratives import narrative_example
from .pite143k import pite143k_example
from .records import BadRecordError, BadRecordPolicy, TrainingExample, read_json_records, row_features

logger = logging.getLogger(__name__)


@dataclass
class DataReport:
    """What loading kept and skipped, per file."""

    kept: int = 0
    skipped: list[str] = field(default_factory=list)
    per_file: dict[str, str] = field(default_factory=dict)


def _converter(
    stage: int, path: str, media_dir: str, num_frames: int, num_points: int, max_events: int | None, first_record: Any
) -> Callable[[Any, str], TrainingExample]:
    if stage == 1:
        return lambda record, where: narrative_example(record, where, media_dir)
    if stage == 2:
        return lambda record, where: pite143k_example(record, where, media_dir, num_frames, num_points, max_events)
    if detect_instruction_format(first_record, path) == "valley":
        return lambda record, where: valley_example(record, where, media_dir)
    return lambda record, where: videoinstruct_example(record, where, media_dir)


def load_stage_examples(
    stage: int,
    data_files: Sequence[str],
    media_dirs: Sequence[str],
    featurizer: ExampleFeaturizer,
    skip_bad_records: bool = False,
    verify_media: bool = True,
    max_events_per_video: int | None = None,
) -> tuple[list[TrainingExample], DataReport]:
    """Read and check every record of `data_files` (media folder: one for all files, or one per file)."""
    if not data_files:
        raise ValueError(f"no data files given for stage {stage} (set data_files)")
    if len(media_dirs) not in (1, len(data_files)):
        raise ValueError(
            f"give one media folder for all data files or one per file: {len(data_files)} files, "
            f"{len(media_dirs)} folders"
        )
    report = DataReport()
    examples: list[TrainingExample] = []
    num_frames, num_points = featurizer.processor.num_frames, featurizer.num_points
    for number, path in enumerate(data_files):
        media_dir = media_dirs[0] if len(media_dirs) == 1 else media_dirs[number]
        if not os.path.isfile(path):
            raise FileNotFoundError(f"data file not found: {path!r}")
        if not os.path.isdir(media_dir):
            raise FileNotFoundError(f"media folder not found: {media_dir!r} (for {path!r})")
        policy = BadRecordPolicy(skip=skip_bad_records)
        total, convert = 0, None
        for where, record in read_json_records(path):
            total += 1
            if convert is None and not isinstance(record, BadRecordError):
                convert = _converter(stage, path, media_dir, num_frames, num_points, max_events_per_video, record)
            try:
                if isinstance(record, BadRecordError):
                    raise record
                try:
                    example = convert(record, where)
                except (
                    TypeError,
                    KeyError,
                    AttributeError,
                ) as error:  # malformed values the loaders did not anticipate
                    raise BadRecordError(where, f"malformed record ({type(error).__name__}: {error})") from error
                featurizer.check(example, verify_media)
            except BadRecordError as error:
                policy.handle(error)
                continue
            examples.append(example)
        summary = policy.summary(total, os.path.basename(path))
        report.per_file[path] = summary
        report.skipped += policy.skipped
        (logger.warning if policy.skipped else logger.info)(summary)
    report.kept = len(examples)
    if not examples:
        why = (
            f"all {len(report.skipped)} records skipped as bad, the first: {report.skipped[0]}"
            if report.skipped
            else "the files hold no records"
        )
        raise ValueError(f"no usable training records in {list(data_files)}: {why}")
    return examples, report


def examples_to_dataset(examples: Sequence[TrainingExample], featurizer: ExampleFeaturizer) -> datasets.Dataset:
    """A `datasets.Dataset` of the examples whose rows read as model inputs (see `ExampleFeaturizer.transform`)."""
    rows = [example.to_row() for example in examples]
    dataset = datasets.Dataset.from_list(rows, features=row_features())
    return dataset.with_transform(featurizer.transform)


def with_rehearsal(examples: Sequence[TrainingExample], rehearsal: Sequence[TrainingExample]) -> list[TrainingExample]:
    """Stage-3 instructions plus replayed stage-2 conversations, as one list whose samples batch together.

    Every instruction gets an empty list of trajectory targets and `supervises_regression=False` (it adds nothing to
    the trajectory term, also where absent targets are regressed), so each sample carries `trajectory_labels` and
    instructions and rehearsal share batches.
    """
    for example in rehearsal:
        if example.trajectory_targets is None:
            raise ValueError(f"{example.where}: a rehearsal record must carry trajectory targets (a PiTe-143k record)")
    padded = [
        example
        if example.trajectory_targets is not None
        else dataclasses.replace(example, trajectory_targets=[], supervises_regression=False)
        for example in examples
    ]
    return [*padded, *rehearsal]


def build_stage_dataset(
    stage: int,
    data_files: Sequence[str],
    media_dirs: Sequence[str],
    featurizer: ExampleFeaturizer,
    skip_bad_records: bool = False,
    verify_media: bool = True,
    max_events_per_video: int | None = None,
    rehearsal_data_files: Sequence[str] = (),
    rehearsal_media_dirs: Sequence[str] = (),
) -> tuple[datasets.Dataset, DataReport]:
    """`load_stage_examples` + `examples_to_dataset`; stage 3 mixes in `rehearsal_data_files` (stage-2 format,
    media in `rehearsal_media_dirs`, default `media_dirs`) with `with_rehearsal`."""
    examples, report = load_stage_examples(
        stage, data_files, media_dirs, featurizer, skip_bad_records, verify_media, max_events_per_video
    )
    if rehearsal_data_files:
        if stage != 3:
            raise ValueError(f"rehearsal data is for stage 3, not stage {stage}")
        rehearsal, rehearsal_report = load_stage_examples(
            2,
            rehearsal_data_files,
            rehearsal_media_dirs or media_dirs,
            featurizer,
            skip_bad_records,
            verify_media,
            max_events_per_video,
        )
        examples = with_rehearsal(examples, rehearsal)
        report.kept += rehearsal_report.kept
        report.skipped += rehearsal_report.skipped
        report.per_file.update(rehearsal_report.per_file)
    return examples_to_dataset(examples, featurizer), report
