"""The stage-2 record checker rejects each kind of malformed record, naming where."""

from __future__ import annotations

import copy

import pytest

from pite.annotation.stage2_format import Stage2FormatError, check_stage2_record, read_stage2_jsonl

GOOD = {
    "video_id": "v",
    "video": "v.mp4",
    "duration": 4.0,
    "events": [
        {
            "caption": "the red circle stops",
            "start": 0.5,
            "end": 2.0,
            "objects": [{"phrase": "the red circle", "span": [0, 14], "trajectory": [[[0.1, 0.2], [-1, -1]]] * 3}],
        }
    ],
}


def mutated(path, value):
    record = copy.deepcopy(GOOD)
    target = record
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return record


def test_good_record_passes_with_and_without_shape_checks():
    check_stage2_record(GOOD)
    check_stage2_record(GOOD, num_key_points=3, num_frames=2)


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("duration",), 0, r"\.duration: must be a positive number"),
        (("video",), KeyError, r"keys must be"),
        (("events", 0, "end"), 0.1, r"events\[0\]: end 0.1 < start 0.5"),
        (("events", 0, "objects", 0, "span"), [4, 14], r"phrase: 'the red circle' != caption\[4:14\]"),
        (("events", 0, "objects", 0, "span"), [0, 99], r"span: must be \[start, end\) inside the caption"),
        (("events", 0, "objects", 0, "trajectory"), [[0.1, 0.2]], r"trajectory: must have shape \(P, N, 2\)"),
        (("events", 0, "objects", 0, "trajectory"), [[[1.5, 0.2]]] * 3, r"values must be in \[0, 1\], or \[-1, -1\]"),
        (("events", 0, "objects", 0, "trajectory"), [[[-1, 0.2]]] * 3, r"values must be in \[0, 1\], or \[-1, -1\]"),
    ],
)
def test_each_problem_is_named(path, value, message):
    with pytest.raises(Stage2FormatError, match=message):
        check_stage2_record(mutated(path, value), where="line 3")


def test_shape_mismatch_with_expected_p_and_n():
    with pytest.raises(Stage2FormatError, match="has P=3, expected 5"):
        check_stage2_record(GOOD, num_key_points=5)
    with pytest.raises(Stage2FormatError, match="has N=2, expected 100"):
        check_stage2_record(GOOD, num_frames=100)


def test_reading_tolerates_only_a_cut_short_last_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"video_id": "a"}\n{"video_id": "b"', encoding="utf-8")
    assert [r["video_id"] for r in read_stage2_jsonl(path, tolerate_truncated_tail=True)] == ["a"]
    with pytest.raises(Stage2FormatError, match=r"a.jsonl:2: not valid JSON"):
        list(read_stage2_jsonl(path))
    path.write_text('{"video_id": "a"\n{"video_id": "b"}\n', encoding="utf-8")
    with pytest.raises(Stage2FormatError, match=r"a.jsonl:1: not valid JSON"):
        list(read_stage2_jsonl(path, tolerate_truncated_tail=True))
