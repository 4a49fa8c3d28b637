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

Several processes (`annotate_videos_in_processes`, under torchrun / accelerate launch): process `rank` of
`world_size` annotates the videos at positions rank, rank + world_size, ... of the captions into its own part,
`OUT.jsonl.part-{rank:05d}-of-{world_size:05d}` (with that part's own partial, failures and summary files, so a
killed process resumes its part like a one-process run). When every process has finished, the main process merges
the parts into `OUT.jsonl` in captions order (after OUT's earlier lines) and removes them: a fresh run writes the same
`OUT.jsonl` as one process would. Rerun a killed multi-process run with the same number of processes.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from pite.core.file_writing import atomic_write, write_json, write_jsonl, write_text

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
    done_elsewhere: Collection[str] = (),
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
        done_elsewhere: video ids finished in another file (a multi-process run's merged output): skipped as done.
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
    done = set(done_final) | set(done_partial) | set(done_elsewhere)
    mine = [video for position, video in enumerate(videos) if position % count == index]
    todo = [video for video in mine if video.video_id not in done]
    if limit is not None:
        todo = todo[:limit]
    config = pipeline.config
    summary = RunSummary(
        output=out,
        videos_in_captions=len(videos),
        videos_in_shard=len(mine),
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
                check_stage2_record(
                    record, config.num_key_points, config.num_frames, where=f"video {video.video_id!r}"
                )
            except Exception as error:  # one bad video must not stop the run: record it and go on
                summary.videos_failed += 1
                summary.failures.append(
                    {"video_id": video.video_id, "where": video.where, "error": f"{type(error).__name__}: {error}"}
                )
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


def part_path(out: str | os.PathLike, rank: int, world_size: int) -> str:
    """The output file of process `rank` of `world_size` (its partial, failures and summary files sit next to it)."""
    return f"{os.fspath(out)}.part-{rank:05d}-of-{world_size:05d}"


def _part_files(out: str) -> list[str]:
    """Finished part outputs next to `out`, of any number of processes, sorted."""
    pattern = re.compile(re.escape(os.path.basename(out)) + r"\.part-\d{5}-of-\d{5}")
    return sorted(
        path for path in glob.glob(glob.escape(out) + ".part-*") if pattern.fullmatch(os.path.basename(path))
    )


def merge_annotation_parts(videos: list[CaptionedVideo], out: str | os.PathLike, world_size: int) -> RunSummary | None:
    """Merge every finished part next to `out` into it (after its own lines, in captions order) and remove them.

    Run in one process once all parts' writers have finished. The failures and summary of the `world_size` parts of
    this run are combined into `OUT.failures.jsonl` and `OUT.summary.json` (`settings.processes` = world_size);
    returns that combined summary (None when there was no part of this run).
    """
    out = os.fspath(out)
    parts = _part_files(out)
    position = {video.video_id: index for index, video in enumerate(videos)}
    done_final, _ = _done_ids(out, tolerate_truncated_tail=False)
    lines: dict[str, str] = {}
    for part in parts:
        with open(part, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    video_id = json.loads(line)["video_id"]
                    if video_id not in done_final:
                        lines.setdefault(video_id, line if line.endswith("\n") else line + "\n")
    ordered = sorted(lines, key=lambda video_id: position.get(video_id, len(position)))
    merged_tail = partial_path(out) + ".parts"
    write_text(merged_tail, "".join(lines[video_id] for video_id in ordered))
    _merge(out, merged_tail)
    os.unlink(merged_tail)

    summaries = []
    for rank in range(world_size):
        path = summary_path(part_path(out, rank, world_size))
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                summaries.append(json.load(handle))
    combined = None
    if summaries:
        combined = RunSummary(
            output=out,
            videos_in_captions=len(videos),
            videos_in_shard=0,
            videos_already_done=0,
            settings={**summaries[0]["settings"], "shard": [0, 1], "processes": world_size},
        )
        for summary in summaries:
            combined.videos_in_shard += summary["videos_in_shard"]
            combined.videos_already_done += summary["videos_already_done"]
            combined.videos_annotated += summary["videos_annotated"]
            combined.videos_failed += summary["videos_failed"]
            combined.counts.update(summary["counts"])
        for rank in range(world_size):
            failures = failures_path(part_path(out, rank, world_size))
            if os.path.exists(failures):
                with open(failures, encoding="utf-8") as handle:
                    combined.failures += [json.loads(line) for line in handle if line.strip()]
        write_jsonl(failures_path(out), combined.failures)
        write_json(summary_path(out), combined.to_json())
    for part in parts:
        for path in (part, failures_path(part), summary_path(part)):
            if os.path.exists(path):
                os.unlink(path)
    return combined


def annotate_videos_in_processes(
    videos: list[CaptionedVideo],
    videos_dir: str | os.PathLike,
    out: str | os.PathLike,
    pipeline: AnnotationPipeline,
    state: "PartialState",  # noqa: F821  (accelerate's, or anything with the same four members)
    progress: bool = True,
    limit: int | None = None,
) -> tuple[RunSummary, RunSummary | None]:
    """Annotate this process's part of `videos` (see the module docstring), wait for all, merge on the main process.

    Args:
        state: `process_index`, `num_processes`, `is_main_process` and `wait_for_everyone()` of the launch.
        limit: per process.

    Returns (this process's part summary, the merged summary on the main process or None elsewhere).
    """
    out = os.fspath(out)
    rank, world_size = state.process_index, state.num_processes
    done_final, _ = _done_ids(out, tolerate_truncated_tail=False)
    part = annotate_videos(
        videos,
        videos_dir,
        part_path(out, rank, world_size),
        pipeline,
        shard=(rank, world_size),
        progress=progress,
        limit=limit,
        done_elsewhere=done_final,
    )
    state.wait_for_everyone()
    merged = merge_annotation_parts(videos, out, world_size) if state.is_main_process else None
    state.wait_for_everyone()
    return part, merged
