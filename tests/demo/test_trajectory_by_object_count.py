"""The demo's trajectory L1 grouped by how many objects a video's captions name, the held-still reference, and the
report's reading of both."""

import json

import pytest

from pite.demo.evaluation import by_object_count
from pite.demo.pipeline import held_still_line, object_count_lines


def _record(video_id: str, phrases: list[list[str]]) -> dict:
    events = [{"caption": " ".join(names), "objects": [{"phrase": name} for name in names]} for names in phrases]
    return {"video_id": video_id, "events": events}


def _row(video_id: str, model: float, points: int) -> dict:
    scores = {"model": model, "constant_centre": 0.4, "scene_mean": 0.3, "object_mean": 0.1, "held_still": 0.09}
    return {
        "video_id": video_id,
        "by_phrase_position": {"all": {name: {"L1": value, "num_points": points} for name, value in scores.items()}},
    }


def test_videos_are_grouped_by_distinct_named_objects_and_pooled_by_points(tmp_path):
    trajectories = tmp_path / "trajectories.jsonl"
    records = [
        _record("a", [["the red circle"], ["the red circle"]]),  # one object, named twice
        _record("b", [["the blue square"]]),
        _record("c", [["the red circle"], ["the green triangle", "the red circle"]]),
    ]
    trajectories.write_text("".join(json.dumps(record) + "\n" for record in records))
    rows = [_row("a", 0.2, 30), _row("b", 0.5, 10), _row("c", 0.25, 50)]
    groups = by_object_count(rows, trajectories)
    assert list(groups) == ["1", "2"]
    assert groups["1"]["num_videos"] == 2 and groups["2"]["num_videos"] == 1
    assert groups["1"]["model"] == pytest.approx((0.2 * 30 + 0.5 * 10) / 40)  # 0.275, weighted by points
    assert groups["2"]["model"] == pytest.approx(0.25)
    assert groups["1"]["object_mean"] == pytest.approx(0.1) and groups["1"]["constant_centre"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="no record of the scored video 'd'"):
        by_object_count([_row("d", 0.1, 1)], trajectories)


def test_the_report_says_whether_one_object_is_placed_better_than_held_still():
    row = {"num_videos": 9, "model": 0.234, "object_mean": 0.149, "scene_mean": 0.16, "constant_centre": 0.33}
    lines = object_count_lines({"1": row, "3": dict(row, num_videos=6)})
    assert "| 1 | 9 | 0.234 | 0.149 | 0.160 | 0.330 |" in lines
    assert "| 3 | 6 | 0.234 | 0.149 | 0.160 | 0.330 |" in lines
    assert "places it at 0.234, worse than the object held still at its mean position (0.149)" in lines[-1]
    better = object_count_lines({"1": dict(row, model=0.12)})
    assert "at least as well as the object held still" in better[-1]
    assert not any("one object in the video" in line for line in object_count_lines({"2": row}))


def test_trajectory_files_are_read_as_jsonl_or_a_json_list_and_bad_lines_are_named(tmp_path):
    from pite.data.records import BadRecordError
    from pite.demo.evaluation import trajectory_records

    records = [_record("a", [["the red circle"]]), _record("b", [["the blue square"]])]
    as_lines, as_list = tmp_path / "lines.jsonl", tmp_path / "list.json"
    as_lines.write_text("".join(json.dumps(record) + "\n" for record in records))
    as_list.write_text(json.dumps(records))
    assert list(trajectory_records(as_lines)) == list(trajectory_records(as_list)) == records
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(records[0]) + "\n{not json\n")
    with pytest.raises(BadRecordError, match="broken.jsonl line 2"):
        list(trajectory_records(broken))


def test_the_report_says_whether_the_model_beats_points_held_still():
    all_tokens = {"model": {"L1": 0.327}, "constant_centre": {"L1": 0.4}, "held_still": {"L1": 0.235}}
    line = held_still_line(all_tokens)
    assert line.startswith("Held still at best, all tokens: 0.235, 0.59 of the centre;")
    assert "does not yet place the objects as well as their best fixed points" in line
    below = held_still_line(dict(all_tokens, model={"L1": 0.2}))
    assert "the trained model is below it, so it follows some of the motion" in below
