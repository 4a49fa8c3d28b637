"""Readers of the published evaluation formats, on tiny files written here; malformed files and missing videos."""

import json

import pytest

from pite.eval.datasets import (
    DatasetFormatError,
    read_activitynet_captions,
    read_activitynet_qa,
    read_charades_sta,
    read_msrvtt_qa,
    read_msvd_qa,
)


def write(path, content):
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


@pytest.fixture
def videos(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ["v_abc.mkv", "3MSZA.mp4", "-4wsuPCjDBc_5_15.avi", "video7010.mp4", "v_1QIUV7WYKXg.webm"]:
        (folder / name).write_bytes(b"")
    return folder


ANET_CAPTIONS = {
    "v_abc": {
        "duration": 82.73,
        "timestamps": [[0.83, 19.86], [17.37, 60.81]],
        "sentences": ["A man walks.", "He sits."],
    },
    "v_gone": {"duration": 10.0, "timestamps": [[0, 5], [5, 10]], "sentences": ["Nothing here.", "Still nothing."]},
}


def test_activitynet_captions_dense_and_grounding(tmp_path, videos):
    path = write(tmp_path / "val_2.json", ANET_CAPTIONS)
    dense = read_activitynet_captions(path, videos)
    assert [r.sample_id for r in dense.records] == ["v_abc", "v_gone"]
    first = dense.records[0]
    assert first.task == "dense_captioning" and first.duration == 82.73
    assert first.intervals == ((0.83, 19.86), (17.37, 60.81)) and first.sentences == ("A man walks.", "He sits.")
    assert first.video_path == videos / "v_abc.mkv"
    assert dense.missing_videos == ["v_gone"] and [r.video_id for r in dense.with_videos()] == ["v_abc"]

    grounding = read_activitynet_captions(path, videos, task="grounding")
    assert [(r.sample_id, r.query, r.intervals) for r in grounding.records[:2]] == [
        ("v_abc#0", "A man walks.", ((0.83, 19.86),)),
        ("v_abc#1", "He sits.", ((17.37, 60.81),)),
    ]
    assert len(grounding.records) == 4 and grounding.missing_videos == ["v_gone"]  # a video is listed once
    assert read_activitynet_captions(path).missing_videos == []  # no folder, no lookup


def test_charades_sta_with_csv_durations(tmp_path, videos):
    sta = write(
        tmp_path / "charades_sta_test.txt",
        "3MSZA 24.3 30.4##person turns on the light.\n3MSZA 0 5.5##a person opens a door\n\nZZZZZ 1 2##someone\n",
    )
    csv_path = write(
        tmp_path / "Charades_v1_test.csv",
        "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
        '3MSZA,XYZ,Bedroom,6,7,Yes,"A person, turns on the light",light,"desc, with comma",c001 0 5,31.25\n'
        "ZZZZZ,XYZ,Kitchen,6,7,Yes,script,obj,desc,,12\n",
    )
    data = read_charades_sta(sta, csv_path, videos)
    assert [r.sample_id for r in data.records] == ["3MSZA#0", "3MSZA#1", "ZZZZZ#0"]
    first = data.records[0]
    assert (first.task, first.duration, first.query, first.intervals) == (
        "grounding",
        31.25,
        "person turns on the light.",
        ((24.3, 30.4),),
    )
    assert first.video_path == videos / "3MSZA.mp4"
    assert data.missing_videos == ["ZZZZZ"]


def test_msvd_qa_maps_through_youtube_names(tmp_path, videos):
    qa = write(
        tmp_path / "test_qa.json",
        [
            {"answer": "dance", "id": 0, "question": "what is the man doing?", "video_id": 1},
            {"answer": "cat", "id": 1, "question": "what animal?", "video_id": 2},
        ],
    )
    mapping = write(tmp_path / "youtube_mapping.txt", "-4wsuPCjDBc_5_15 vid1\n-7KMZQEsJW4_205_208 vid2\n")
    data = read_msvd_qa(qa, mapping, videos)
    assert [(r.sample_id, r.video_id, r.query, r.answer) for r in data.records] == [
        ("0", "1", "what is the man doing?", "dance"),
        ("1", "2", "what animal?", "cat"),
    ]
    assert data.records[0].video_path == videos / "-4wsuPCjDBc_5_15.avi"
    assert data.missing_videos == ["2"]


def test_msrvtt_qa(tmp_path, videos):
    qa = write(
        tmp_path / "test_qa.json", [{"answer": "man", "id": 158581, "question": "who talks?", "video_id": 7010}]
    )
    data = read_msrvtt_qa(qa, videos)
    record = data.records[0]
    assert (record.sample_id, record.task, record.answer, record.video_path) == (
        "158581",
        "qa",
        "man",
        videos / "video7010.mp4",
    )
    assert data.missing_videos == []


def test_activitynet_qa_joins_questions_and_answers(tmp_path, videos):
    questions = write(
        tmp_path / "test_q.json",
        [
            {
                "video_name": "1QIUV7WYKXg",
                "question": "is the athlete wearing trousers",
                "question_id": "v_1QIUV7WYKXg_1",
            },
            {"video_name": "missing01", "question": "what is he doing", "question_id": "v_missing01_0"},
        ],
    )
    answers = write(
        tmp_path / "test_a.json",
        [
            {"answer": "no", "type": 3, "question_id": "v_1QIUV7WYKXg_1"},
            {"answer": "surfing", "type": 1, "question_id": "v_missing01_0"},
        ],
    )
    data = read_activitynet_qa(questions, answers, videos)
    first = data.records[0]
    assert (first.sample_id, first.query, first.answer, first.extra) == (
        "v_1QIUV7WYKXg_1",
        "is the athlete wearing trousers",
        "no",
        {"type": 3},
    )
    assert first.video_path == videos / "v_1QIUV7WYKXg.webm"  # the v_ prefix the QA file drops
    assert data.missing_videos == ["missing01"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", r"val\.json: not valid JSON"),
        ([1, 2], "expected an object mapping video ids"),
        ({"v": {"timestamps": [[0, 1]], "sentences": ["a"]}}, r"video 'v': field 'duration' is missing"),
        ({"v": {"duration": -3, "timestamps": [], "sentences": []}}, r"video 'v': duration must be a positive"),
        ({"v": {"duration": 3, "timestamps": [[0, 1]], "sentences": []}}, "1 timestamps but 0 sentences"),
        (
            {"v": {"duration": 3, "timestamps": [[2, 1]], "sentences": ["a"]}},
            r"video 'v', event 0: field 'timestamps' is not a valid",
        ),
        ({"v": {"duration": 3, "timestamps": [[0, 1]], "sentences": [5]}}, r"event 0: field 'sentences' must be str"),
    ],
)
def test_malformed_activitynet_captions(tmp_path, content, message):
    with pytest.raises(DatasetFormatError, match=message):
        read_activitynet_captions(write(tmp_path / "val.json", content))


def test_malformed_charades(tmp_path):
    csv_path = write(tmp_path / "c.csv", "id,length\n3MSZA,31.25\n")
    with pytest.raises(DatasetFormatError, match=r"sta\.txt: line 2: expected 'VIDEO_ID START END##sentence'"):
        read_charades_sta(write(tmp_path / "sta.txt", "3MSZA 1 2##ok\n3MSZA 1 2 no separator\n"), csv_path)
    with pytest.raises(DatasetFormatError, match="line 1: start/end are not numbers"):
        read_charades_sta(write(tmp_path / "sta.txt", "3MSZA one 2##a\n"), csv_path)
    with pytest.raises(DatasetFormatError, match="line 1: video 'OTHER' has no 'length'"):
        read_charades_sta(write(tmp_path / "sta.txt", "OTHER 1 2##a\n"), csv_path)
    with pytest.raises(DatasetFormatError, match=r"bad\.csv: header lacks column\(s\) \['length'\]"):
        read_charades_sta(
            write(tmp_path / "sta.txt", "3MSZA 1 2##a\n"), write(tmp_path / "bad.csv", "id,scene\nx,y\n")
        )
    with pytest.raises(DatasetFormatError, match=r"bad\.csv: line 2: 'length' is not a number"):
        read_charades_sta(
            write(tmp_path / "sta.txt", "3MSZA 1 2##a\n"), write(tmp_path / "bad.csv", "id,length\n3MSZA,\n")
        )


def test_malformed_qa_files(tmp_path):
    mapping = write(tmp_path / "map.txt", "abc vid1\n")
    with pytest.raises(DatasetFormatError, match=r"qa\.json: record 1: field 'question' is missing"):
        read_msrvtt_qa(
            write(
                tmp_path / "qa.json",
                [
                    {"answer": "a", "id": 1, "question": "q", "video_id": 1},
                    {"answer": "a", "id": 2, "video_id": 1},
                ],
            )
        )
    with pytest.raises(DatasetFormatError, match="record 1: duplicate id '1'"):
        read_msrvtt_qa(write(tmp_path / "qa.json", [{"answer": "a", "id": 1, "question": "q", "video_id": 1}] * 2))
    with pytest.raises(DatasetFormatError, match=r"record 0: video_id '7' \(vid7\) is not in"):
        read_msvd_qa(write(tmp_path / "qa.json", [{"answer": "a", "id": 1, "question": "q", "video_id": 7}]), mapping)
    with pytest.raises(DatasetFormatError, match="map2.txt: line 1: expected 'youtube_clip_name vidN'"):
        read_msvd_qa(write(tmp_path / "qa.json", []), write(tmp_path / "map2.txt", "only-one-field\n"))
    questions = write(tmp_path / "q.json", [{"video_name": "x", "question": "q", "question_id": "x_0"}])
    with pytest.raises(DatasetFormatError, match=r"q\.json: record 0: question_id 'x_0' has no answer"):
        read_activitynet_qa(questions, write(tmp_path / "a.json", []))
    with pytest.raises(DatasetFormatError, match=r"a\.json: 1 answers have no question"):
        read_activitynet_qa(
            questions,
            write(
                tmp_path / "a.json",
                [
                    {"answer": "y", "type": 0, "question_id": "x_0"},
                    {"answer": "n", "type": 0, "question_id": "x_9"},
                ],
            ),
        )
    with pytest.raises(FileNotFoundError, match="videos folder"):
        read_msrvtt_qa(write(tmp_path / "qa.json", []), tmp_path / "nowhere")
