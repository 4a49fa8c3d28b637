"""The annotator's input: captioned videos, in one of two formats (chosen by content, not by file name).

1. **ActivityNet Captions JSON, as published** (`train.json`, `val_1.json`, ...):
   `{"v_xxx": {"duration": 12.3, "timestamps": [[s, e], ...], "sentences": [str, ...]}, ...}`.
   The video is looked up as `{videos_dir}/{id}{ext}`, and for ids starting with "v_" also without the prefix.
2. **Per-video records**, as JSONL (one object a line) or as a JSON list:
   `{"video_id": "clip_001", "video": "sub/clip_001.mp4", "duration": 12.3,
     "events": [{"caption": "a man opens the door", "start": 0.5, "end": 3.0}, ...]}`
   `video` (relative to the videos folder) is optional when `video_id` names the file (same lookup as above);
   `video_id` is optional when `video` is given (then it is the file's stem); `duration` (seconds) is optional
   (the decoded video's is used). Stage-2 files (DESIGN.md) are valid input too: their `objects` are ignored and
   replaced.

Times are seconds on the video's clock. Every problem is reported with the file, the record (line or key) and
the field.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")


class CaptionsError(ValueError):
    """A captions file or record that cannot be used."""


@dataclass(frozen=True)
class CaptionedEvent:
    """One event: its caption and [start, end] in seconds."""

    caption: str
    start: float
    end: float


@dataclass
class CaptionedVideo:
    """One video to annotate. `video` is the path relative to the videos folder, or None to look it up by id."""

    video_id: str
    video: str | None
    duration: float | None
    events: list[CaptionedEvent]
    where: str = field(default="", compare=False)  # "file:line" / "file[key]", for error messages

    def resolve(self, videos_dir: str | os.PathLike) -> Path:
        """The video file under `videos_dir`; FileNotFoundError naming every path tried."""
        root = Path(videos_dir)
        if self.video is not None:
            path = root / self.video
            if not path.is_file():
                raise FileNotFoundError(f"{self.where}: video {str(path)!r} not found")
            return path
        stems = [self.video_id] + ([self.video_id[2:]] if self.video_id.startswith("v_") else [])
        tried = [root / f"{stem}{ext}" for stem in stems for ext in VIDEO_EXTENSIONS]
        for path in tried:
            if path.is_file():
                return path
        names = ", ".join(p.name for p in tried)
        raise FileNotFoundError(f"{self.where}: no video for id {self.video_id!r} in {str(root)!r} (tried {names})")


def _number(value: object, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CaptionsError(f"{where}: {name} must be a finite number of seconds, got {value!r}")
    return float(value)


def _event(caption: object, start: object, end: object, where: str) -> CaptionedEvent:
    if not isinstance(caption, str) or not caption.strip():
        raise CaptionsError(f"{where}: caption must be a non-empty string, got {caption!r}")
    start_s, end_s = _number(start, where, "start"), _number(end, where, "end")
    if start_s < 0 or end_s < start_s:
        raise CaptionsError(f"{where}: event times must satisfy 0 <= start <= end, got start={start_s}, end={end_s}")
    return CaptionedEvent(caption, start_s, end_s)


def _duration(value: object, where: str) -> float | None:
    if value is None:
        return None
    duration = _number(value, where, "duration")
    if duration <= 0:
        raise CaptionsError(f"{where}: duration must be > 0 seconds, got {duration}")
    return duration


def _from_activitynet(data: dict, path: str) -> list[CaptionedVideo]:
    videos = []
    for video_id, entry in data.items():
        where = f"{path}[{video_id!r}]"
        if not isinstance(entry, dict):
            raise CaptionsError(
                f"{where}: expected an object with duration/timestamps/sentences, got {type(entry).__name__}"
            )
        missing = [key for key in ("timestamps", "sentences") if key not in entry]
        if missing:
            raise CaptionsError(f"{where}: missing field(s) {missing}")
        timestamps, sentences = entry["timestamps"], entry["sentences"]
        if not isinstance(timestamps, list) or not isinstance(sentences, list) or len(timestamps) != len(sentences):
            raise CaptionsError(f"{where}: timestamps and sentences must be lists of the same length")
        events = []
        for index, (span, sentence) in enumerate(zip(timestamps, sentences)):
            if not isinstance(span, list) or len(span) != 2:
                raise CaptionsError(f"{where}.timestamps[{index}]: expected [start, end], got {span!r}")
            events.append(
                _event(
                    sentence.strip() if isinstance(sentence, str) else sentence,
                    span[0],
                    span[1],
                    f"{where}.events[{index}]",
                )
            )
        videos.append(CaptionedVideo(str(video_id), None, _duration(entry.get("duration"), where), events, where))
    return videos


def _from_record(record: object, where: str) -> CaptionedVideo:
    if not isinstance(record, dict):
        raise CaptionsError(f"{where}: expected a JSON object, got {type(record).__name__}")
    video, video_id = record.get("video"), record.get("video_id")
    if video is not None and (not isinstance(video, str) or not video or os.path.isabs(video)):
        raise CaptionsError(f"{where}: video must be a non-empty path relative to the videos folder, got {video!r}")
    if video_id is None:
        if video is None:
            raise CaptionsError(f"{where}: needs 'video_id' or 'video'")
        video_id = Path(video).stem
    if not isinstance(video_id, str) or not video_id:
        raise CaptionsError(f"{where}: video_id must be a non-empty string, got {video_id!r}")
    events = record.get("events")
    if not isinstance(events, list):
        raise CaptionsError(f"{where}: events must be a list of {{caption, start, end}}, got {type(events).__name__}")
    parsed = []
    for index, event in enumerate(events):
        event_where = f"{where}.events[{index}]"
        if not isinstance(event, dict) or not {"caption", "start", "end"} <= set(event):
            raise CaptionsError(f"{event_where}: expected an object with caption, start and end, got {event!r}")
        parsed.append(_event(event["caption"], event["start"], event["end"], event_where))
    return CaptionedVideo(video_id, video, _duration(record.get("duration"), where), parsed, where)


def load_captions(path: str | os.PathLike) -> list[CaptionedVideo]:
    """Read a captions file in either format (see the module docstring). Video ids must be unique; a file without
    videos, or whose videos have no events, is a CaptionsError (there would be nothing to annotate)."""
    path = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"captions file not found: {path!r}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None  # not one JSON document: JSONL
    if isinstance(data, dict) and "events" in data:
        videos = [_from_record(data, f"{path}:1")]  # a JSONL file of one line
    elif isinstance(data, dict):
        videos = _from_activitynet(data, path)
    elif isinstance(data, list):
        videos = [_from_record(record, f"{path}[{index}]") for index, record in enumerate(data)]
    elif data is not None:
        raise CaptionsError(
            f"{path}: expected an ActivityNet Captions object, a JSON list or JSONL, got a JSON {type(data).__name__}"
        )
    else:
        videos = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise CaptionsError(f"{path}:{number}: not valid JSON ({error.msg} at column {error.colno})") from None
            videos.append(_from_record(record, f"{path}:{number}"))
    seen: dict[str, str] = {}
    for video in videos:
        if video.video_id in seen:
            raise CaptionsError(f"{video.where}: video_id {video.video_id!r} already used at {seen[video.video_id]}")
        seen[video.video_id] = video.where
    # An empty file would otherwise "succeed" having annotated nothing.
    if not videos:
        raise CaptionsError(f"{path}: the captions file holds no videos")
    if not any(video.events for video in videos):
        raise CaptionsError(f"{path}: none of its {len(videos)} videos has a caption event to annotate")
    return videos
