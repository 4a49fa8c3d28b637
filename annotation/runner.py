"""Annotating many videos: resumable, failure-tolerant, with atomic final files.

Files, for `--out OUT.jsonl`:
- `OUT.jsonl.partial`: the working file. Each finished video is appended as one line and flushed to disk at once,
  so an interrupted run loses at most the video in progress. A last line cut short by a crash is dropped on resume.
- `OUT.jsonl`: written at the end of a run, atomically (temporary file + `os.replace`): the lines of a previous
  `OUT.jsonl` followed by the new ones. Then the partial file is removed.
- `OUT.jsonl.failures.jsonl`: one line per video that failed in this run (`video_id`, `where`, `error`), atomically.
- `OUT.jsonl.summary.json`: video counts, every filter's count, the settings, atomically.

Resuming: videos whose `video_id` is already in `OUT.jsonl` or in the partial file are skipped. Failed videos are
not recorded as done, so the next run retries them. A failing video never stops the run: its error is recorded
and the next video starts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pite.processing.file_writing_pite import atomic_write, write_json, write_jsonl, write_text

from .captions import CaptionedVideo
from .pipeline import AnnotationPipeline
from .stage2_format import Stage2FormatError, check_stage2_record, read_stage2_jsonl

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What a run did. `counts` sums the per-video filter counts of the videos annotated in this run."""

    output: str
    videos_in_captions: int
    videos_in_shard: int
    videos_already_done: int
    videos_annotated: int = 0
    videos_failed: int = 0
    counts: Counter = field(default_factory=Counter)
    failures: list[dict] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["counts"] = dict(sorted(self.counts.items()))
        data.pop("failures")
        data["failures_file"] = failures_path(self.output)
        return data


def partial_path(out: str | os.PathLike) -> str:
    return os.fspath(out) + ".partial"


def failures_path(out: str | os.PathLike) -> str:
    return os.fspath(out) + ".failures.jsonl"


def summary_path(out: str | os.PathLike) -> str:
    return os.fspath(out) + ".summary.json"


def _done_ids(path: str, tolerate_truncated_tail: bool) -> tuple[list[str], bool]:
    """(video ids in a stage-2 file, whether its last line was cut short and dropped)."""
    if not os.path.exists(path):
        return [], False
    ids, lines = [], 0
    for number, record in enumerate(read_stage2_jsonl(path, tolerate_truncated_tail), start=1):
        if not isinstance(record, dict) or not isinstance(record.get("video_id"), str):
            raise Stage2FormatError(f"{path}: record {number} has no string video_id; is this a stage-2 file?")
        ids.append(record["video_id"])
        lines = number
    with open(path, encoding="utf-8") as handle:
        nonempty = sum(1 for line in handle if line.strip())
    return ids, nonempty > lines


def _rewrite_without_tail(path: str) -> None:
    """Atomically drop a cut-short last line (one without a newline), so that appending starts on a clean line."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.readlines()
    kept = lines[:-1] if lines and not lines[-1].endswith("\n") else lines
    write_text(path, "".join(kept))


def _merge(out: str, partial: str) -> None:
    """Atomically replace `out` by its own lines followed by the partial file's, streaming line by line.

    A partial line whose video is already in `out` is skipped: a run stopped after its merge but before removing
    the partial file leaves such duplicates.
    """

    def write(temporary: str) -> None:
        seen: set[str] = set()
        with open(temporary, "w", encoding="utf-8") as target:
            for source in (out, partial):
                if not os.path.exists(source):
                    continue
                with open(source, encoding="utf-8") as handle:
                    for line in handle:
                        if not line.strip():
                            continue
                        video_id = json.loads(line)["video_id"]
                        if video_id in seen:
                            continue
                        seen.add(video_id)
                        target.write(line if line.endswith("\n") else line + "\n")

    atomic_write(out, write)


def annotate_videos(
    videos: list[CaptionedVideo],
    videos_dir: str | os.PathLike,
    out: str | os.PathLike,
    pipeline: AnnotationPipeline,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    limit: int | None = None,
) -> RunSummary:
    """Annotate `videos` (those of shard `index` of `count`: position % count == index) into `out`.

    Args:
        videos: from `load_captions`.
        videos_dir: the folder the videos' paths are relative to.
        out: the stage-2 JSONL to write (see the module docstring for the files next to it).
        pipeline: the configured annotator.
        shard: (index, count) to split a captions file between processes writing different `out` files.
        progress: show a progress bar.
        limit: annotate at most this many not-yet-done videos in this run.
    """
    index, count = shard
    if not (isinstance(count, int) and count >= 1 and isinstance(index, int) and 0 <= index < count):
        raise ValueError(f"shard must be (index, count) with 0 <= index < count, got {shard}")
    out = os.fspath(out)
    partial = partial_path(out)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    done_final, _ = _done_ids(out, tolerate_truncated_tail=False)
    done_partial, truncated = _done_ids(partial, tolerate_truncated_tail=True)
    if truncated:
        logger.warning("%s: dropping a last line cut short by an interrupted run", partial)
        _rewrite_without_tail(partial)
    done = set(done_final) | set(done_partial)
    mine = [video for position, video in enumerate(videos) if position % count == index]
    todo = [video for video in mine if video.video_id not in done]
    if limit is not None:
        todo = todo[:limit]
    config = pipeline.config
    summary = RunSummary(
        output=out, videos_in_captions=len(videos), videos_in_shard=len(mine),
        videos_already_done=sum(video.video_id in done for video in mine),
        settings={**dataclasses.asdict(config), "shard": list(shard), "videos_dir": os.fspath(videos_dir)},
    )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="annotate", unit="video")
    with open(partial, "a", encoding="utf-8") as sink:
        for video in todo:
            try:
                path = video.resolve(videos_dir)
                annotation = pipeline.annotate(video, path)
                relative = Path(os.path.relpath(path, videos_dir)).as_posix()
                record = annotation.to_record(relative, config.decimals)
                check_stage2_record(record, config.num_key_points, config.num_frames, where=f"video {video.video_id!r}")
            except Exception as error:  # one bad video must not stop the run: record it and go on
                summary.videos_failed += 1
                summary.failures.append({"video_id": video.video_id, "where": video.where, "error": f"{type(error).__name__}: {error}"})
                logger.warning("annotation of %s failed: %s: %s", video.video_id, type(error).__name__, error)
            else:
                sink.write(json.dumps(record) + "\n")
                sink.flush()
                os.fsync(sink.fileno())
                summary.videos_annotated += 1
                summary.counts.update(annotation.counts)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=summary.videos_failed, objects=summary.counts["objects"])
    if bar is not None:
        bar.close()
    _merge(out, partial)
    os.unlink(partial)
    write_jsonl(failures_path(out), summary.failures)
    write_json(summary_path(out), summary.to_json())
    return summary
