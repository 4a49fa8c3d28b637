"""Reading captions: ActivityNet Captions as published, per-video JSONL / JSON lists, and their errors."""

from __future__ import annotations

import json

import pytest

from pite.annotation.captions import CaptionedEvent, CaptionsError, load_captions


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_activitynet_captions_as_published(tmp_path):
    data = {
        "v_abc": {
            "duration": 12.5,
            "timestamps": [[0.0, 3.2], [2.0, 12.9]],
            "sentences": ["A man opens a door. ", " He walks in."],
        }
    }
    (videos,) = [load_captions(write(tmp_path, "val_1.json", json.dumps(data)))]
    assert (
        len(videos) == 1 and videos[0].video_id == "v_abc" and videos[0].duration == 12.5 and videos[0].video is None
    )
    assert videos[0].events == [
        CaptionedEvent("A man opens a door.", 0.0, 3.2),
        CaptionedEvent("He walks in.", 2.0, 12.9),
    ]
    (tmp_path / "videos").mkdir()
    with pytest.raises(FileNotFoundError, match=r"v_abc.*tried v_abc.mp4, .*abc.mp4"):
        videos[0].resolve(tmp_path / "videos")
    (tmp_path / "videos" / "abc.mkv").write_bytes(b"")
    assert videos[0].resolve(tmp_path / "videos").name == "abc.mkv", "ActivityNet ids are also tried without 'v_'"


def test_jsonl_and_json_list_records(tmp_path):
    records = [
        {
            "video_id": "a",
            "video": "sub/a.mp4",
            "duration": 4,
            "events": [{"caption": "a dog runs", "start": 0, "end": 2}],
        },
        {"video": "b.webm", "events": []},
    ]
    from_jsonl = load_captions(write(tmp_path, "c.jsonl", "\n".join(json.dumps(r) for r in records) + "\n\n"))
    from_list = load_captions(write(tmp_path, "c.json", json.dumps(records)))
    for videos in (from_jsonl, from_list):
        assert [v.video_id for v in videos] == ["a", "b"]
        assert videos[0].video == "sub/a.mp4" and videos[0].duration == 4.0 and videos[1].duration is None
    assert from_jsonl[0].where.endswith("c.jsonl:1") and from_list[1].where.endswith("c.json[1]")


def test_stage2_records_are_valid_input(tmp_path):
    record = {
        "video_id": "s",
        "video": "s.mp4",
        "duration": 3.0,
        "events": [
            {
                "caption": "the red circle stops",
                "start": 0.5,
                "end": 1.0,
                "objects": [{"phrase": "the red circle", "span": [0, 14], "trajectory": []}],
            }
        ],
    }
    (video,) = load_captions(write(tmp_path, "s.jsonl", json.dumps(record) + "\n"))
    assert video.events == [CaptionedEvent("the red circle stops", 0.5, 1.0)]


@pytest.mark.parametrize(
    "text, message",
    [
        (
            '{"video_id": "a", "events": [{"caption": "x", "start": 2, "end": 1}]}',
            r"c.jsonl:1.events\[0\]: event times must satisfy",
        ),
        (
            '{"video_id": "a", "events": [{"caption": "", "start": 0, "end": 1}]}',
            r"caption must be a non-empty string",
        ),
        ('{"video_id": "a", "events": [{"caption": "x", "start": "0", "end": 1}]}', r"start must be a finite number"),
        ('{"video_id": "a", "duration": -3, "events": []}', r"duration must be > 0"),
        ('{"events": []}', r"needs 'video_id' or 'video'"),
        ('{"video_id": "a", "video": "/abs/a.mp4", "events": []}', r"relative to the videos folder"),
        (
            '{"video_id": "a", "events": []}\n{"video_id": "a", "events": []}',
            r"c.jsonl:2: video_id 'a' already used at .*c.jsonl:1",
        ),
        ('{"video_id": "a", "events": []}\n{"video_id": "b", "events": [', r"c.jsonl:2: not valid JSON"),
        ('{"video_id": "a", "events": {"caption": "x"}}', r"events must be a list"),
    ],
)
def test_bad_records_name_file_record_and_field(tmp_path, text, message):
    with pytest.raises(CaptionsError, match=message):
        load_captions(write(tmp_path, "c.jsonl", text))


def test_bad_activitynet_entries(tmp_path):
    with pytest.raises(CaptionsError, match=r"\['v_x'\]: timestamps and sentences must be lists of the same length"):
        load_captions(
            write(tmp_path, "a.json", json.dumps({"v_x": {"duration": 3, "timestamps": [[0, 1]], "sentences": []}}))
        )
    with pytest.raises(CaptionsError, match=r"missing field\(s\) \['sentences'\]"):
        load_captions(write(tmp_path, "a.json", json.dumps({"v_x": {"timestamps": []}})))
    with pytest.raises(FileNotFoundError, match="captions file not found"):
        load_captions(tmp_path / "none.json")
