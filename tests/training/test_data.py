"""Loaders of the three stages, the bad-record policy, and the collator."""

import json
import shutil

import numpy as np
import pytest
import torch

from pite.modeling_pite.losses_pite import IGNORE_INDEX
from pite.training import BadRecordError, ExampleFeaturizer, PiTeDataCollator, build_stage_dataset, load_stage_examples

N, P = 4, 3  # the tiny world's frames and key points (checked against the `dims` fixture below)


@pytest.fixture(scope="module")
def featurizer(processor, dims):
    assert (dims.frames, dims.points) == (N, P)
    return ExampleFeaturizer(processor, P, max_length=256)


def _decode(processor, ids):
    return processor.tokenizer.decode([i for i in ids if i != processor.video_token_id])


def test_stage1_points_sit_on_the_narrated_words(world, processor, featurizer):
    examples, report = load_stage_examples(1, [world["narratives"]], [world["images"]], featurizer)
    assert report.kept == 4 and not report.skipped
    example = examples[0]
    assert example.media_kind == "image" and example.media_key == "img0.jpg"
    sample = featurizer(example)
    ids, labels, points = sample["input_ids"], sample["labels"], sample["point_labels"]
    assert (ids == processor.video_token_id).sum() == 1  # an image is one visual token
    assert sample["pixel_values"].shape == (3, 28, 28)
    supervised = labels != IGNORE_INDEX
    assert "In this image we can see a red square on a grey table." in _decode(processor, ids[supervised].tolist())
    first_utterance = (points[:, 0] != -1) & supervised
    # the first utterance's point is the mean of its two trace points; the second utterance has its own point
    expected = torch.tensor([0.26, 0.51])
    torch.testing.assert_close(points[first_utterance][0], expected)
    assert "red square" in _decode(processor, ids[first_utterance].tolist())
    assert ((points != -1).all(-1) <= supervised).all()  # targets only on answer tokens


def test_stage2_conversation_times_and_trajectories(world, processor, featurizer, make_trajectory):
    examples, _ = load_stage_examples(2, [world["pite"]], [world["videos"]], featurizer)
    example = examples[0]
    answers = [m["content"] for m in example.messages if m["role"] == "assistant"]
    # dense captions with two-digit frame indices of N=4 frames over 2 s: [0, 2] -> 00..03, [1, 2] -> 02..03
    assert (
        answers[0]
        == "the red square moves to the right, from 00 to 03. the red square moves to the right, from 02 to 03."
    )
    assert len(answers) == 3  # dense captioning + one question per event: one grounding, one segment captioning
    questions = [m["content"] for m in example.messages[2::2]]
    assert "During which frames can we see the red square moves to the right?" in questions  # the eval's question
    grounding = questions.index("During which frames can we see the red square moves to the right?")
    assert answers[1 + grounding] in ("From 00 to 03.", "From 02 to 03.")
    sample = featurizer(example)
    assert sample["pixel_values_videos"].shape == (N, 3, 28, 28)
    labels, targets = sample["labels"], sample["trajectory_labels"]
    assert targets.shape == (len(labels), P, N, 2)
    carrying = (targets != -1).any(dim=(1, 2, 3))
    assert carrying.any() and (carrying <= (labels != IGNORE_INDEX)).all()
    phrase_text = _decode(processor, sample["input_ids"][carrying].tolist())
    assert "red square" in phrase_text and "moves" not in phrase_text
    full = torch.tensor(make_trajectory(1))
    late = torch.tensor(make_trajectory(1, 2))  # second event: absent before frame 2
    rows = {tuple(row.flatten().tolist()) for row in targets[carrying]}
    assert rows == {tuple(full.flatten().tolist()), tuple(late.flatten().tolist())}


def test_stage3_detects_valley_and_videoinstruct(world, processor, featurizer):
    examples, report = load_stage_examples(3, [world["valley"], world["videoinstruct"]], [world["videos"]], featurizer)
    assert report.kept == 8
    valley, videoinstruct = examples[0], examples[4]
    assert valley.messages[0]["content"] == [
        {"type": "video"},
        {"type": "text", "text": "What colour is the moving shape?"},
    ]
    assert valley.messages[1] == {"role": "assistant", "content": "It is red."}
    assert videoinstruct.media_key == "vid0.mp4" and videoinstruct.messages[1]["content"] == "There is one shape."
    sample = featurizer(valley)
    assert "point_labels" not in sample and "trajectory_labels" not in sample
    assert (
        _decode(processor, sample["input_ids"][sample["labels"] != IGNORE_INDEX].tolist()).strip() == "It is red.</s>"
    )


def _rewrite(path, out, edit):
    lines = [json.loads(line) for line in open(path, encoding="utf-8")]
    edit(lines)
    out.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(out)


@pytest.mark.parametrize(
    "name, edit, message",
    [
        (
            "missing video",
            lambda r: r[1].update(video="nowhere.mp4"),
            r"pite.jsonl line 2 \(video_id 'vid1'\): media file not found",
        ),
        (
            "bad trajectory",
            lambda r: r[2]["events"][0]["objects"][0].update(trajectory=[[[0.1, 0.2]] * N] * 2),
            r"line 3 \(video_id 'vid2'\) event 0: object 0 \('the green square'\): trajectory has shape "
            r"\(2, 4, 2\), expected",
        ),
        (
            "trajectory outside [0, 1]",
            lambda r: r[2]["events"][1]["objects"][0]["trajectory"][1][3].__setitem__(0, 1.25),
            r"pite.jsonl line 3 \(video_id 'vid2'\) event 1: object 0 \('the green square'\): "
            r"trajectory point 1 of frame 3 is \[1.25, 0.5\]: coordinates must be normalised to \[0, 1\]",
        ),
        (
            "half-absent point",
            lambda r: r[0]["events"][0]["objects"][0]["trajectory"][0][0].__setitem__(1, -1),
            r"line 1 .*trajectory point 0 of frame 0 is \[0.3, -1.0\]",
        ),
        ("empty conversation", lambda r: r[3].update(events=[]), r"line 4 \(video_id 'vid3'\): empty conversation"),
        (
            "duration not the video's",
            lambda r: r[1].update(duration=r[1]["duration"] * 3),
            r"line 2 \(video_id 'vid1'\): duration [\d.]+ s but its video .*vid1.mp4' lasts [\d.]+ s",
        ),
        (
            "span off the phrase",
            lambda r: r[0]["events"][0]["objects"][0].update(span=[1, 5]),
            r"line 1 .*covers 'he r', not the phrase",
        ),
    ],
)
def test_bad_stage2_records_name_the_record_or_are_skipped(world, featurizer, tmp_path, name, edit, message):
    path = _rewrite(world["pite"], tmp_path / "pite.jsonl", edit)
    with pytest.raises(BadRecordError, match=message):
        load_stage_examples(2, [path], [world["videos"]], featurizer)
    examples, report = load_stage_examples(2, [path], [world["videos"]], featurizer, skip_bad_records=True)
    assert report.kept == len(examples) == 3 and len(report.skipped) == 1
    assert "3 of 4 records kept, 1 skipped" in report.per_file[path]


def test_unreadable_video_and_invalid_json_line(world, featurizer, tmp_path):
    videos = tmp_path / "videos"
    shutil.copytree(world["videos"], videos)
    (videos / "vid1.mp4").write_bytes(b"this is not a video")
    with pytest.raises(BadRecordError, match=r"line 2 \(video_id 'vid1'\): unreadable video .*vid1.mp4"):
        load_stage_examples(2, [world["pite"]], [str(videos)], featurizer)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(open(world["pite"], encoding="utf-8").read() + "{not json\n")
    with pytest.raises(BadRecordError, match=r"broken.jsonl line 5: not valid JSON"):
        load_stage_examples(2, [str(broken)], [world["videos"]], featurizer)
    _, report = load_stage_examples(2, [str(broken)], [str(videos)], featurizer, skip_bad_records=True)
    assert report.kept == 3 and len(report.skipped) == 2


def test_no_usable_record_says_why(world, featurizer, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"training records in \[.*empty.jsonl'\]: the files hold no records"):
        load_stage_examples(2, [str(empty)], [world["videos"]], featurizer)
    first = r"pite.jsonl line 1 \(video_id 'vid0'\): media file not found"
    with pytest.raises(ValueError, match=rf"all 4 records skipped as bad, the first: {first}"):
        load_stage_examples(2, [world["pite"]], [str(tmp_path)], featurizer, skip_bad_records=True)


def test_bad_instruction_records(world, featurizer, tmp_path):
    records = json.load(open(world["valley"], encoding="utf-8"))
    records[0]["conversations"] = []
    records[1]["conversations"][1]["from"] = "human"
    path = tmp_path / "valley.json"
    path.write_text(json.dumps(records))
    with pytest.raises(BadRecordError, match=r"valley.json item 0 \(id 'valley0'\): empty conversation"):
        load_stage_examples(3, [str(path)], [world["videos"]], featurizer)
    _, report = load_stage_examples(3, [str(path)], [world["videos"]], featurizer, skip_bad_records=True)
    assert report.kept == 2 and "turns must alternate" in report.skipped[1]


def test_missing_image_names_the_record_and_the_tried_paths(world, featurizer, tmp_path):
    records = [json.loads(line) for line in open(world["narratives"], encoding="utf-8")]
    records[2]["image_id"] = "gone"
    path = tmp_path / "ln.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(
        BadRecordError, match=r"ln.jsonl line 3 \(image_id 'gone'\): media file not found \(tried .*gone.jpg.*gone.png"
    ):
        load_stage_examples(1, [str(path)], [world["images"]], featurizer)


def test_too_long_conversations_are_refused_not_cut_through_the_video(world, processor):
    short = ExampleFeaturizer(processor, P, max_length=5)
    with pytest.raises(BadRecordError, match="max_length=5 would cut the video"):
        load_stage_examples(2, [world["pite"]], [world["videos"]], short)


def test_dataset_rows_read_as_model_inputs_and_collate(world, processor, featurizer):
    dataset, _ = build_stage_dataset(2, [world["pite"]], [world["videos"]], featurizer)
    samples = [dataset[0], dataset[3]]
    batch = PiTeDataCollator(pad_token_id=processor.tokenizer.pad_token_id)(samples)
    lengths = [len(s["input_ids"]) for s in samples]
    width = max(lengths)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (2, width)
    assert batch["trajectory_labels"].shape == (2, width, P, N, 2)
    assert batch["pixel_values_videos"].shape == (2, N, 3, 28, 28)
    short = int(np.argmin(lengths))
    pad = slice(lengths[short], width)
    assert (batch["attention_mask"][short, pad] == 0).all() and (batch["labels"][short, pad] == IGNORE_INDEX).all()
    assert (batch["trajectory_labels"][short, pad] == -1).all()
    assert (batch["input_ids"][short, pad] == processor.tokenizer.pad_token_id).all()
    torch.testing.assert_close(
        batch["trajectory_labels"][short, : lengths[short]], samples[short]["trajectory_labels"]
    )


def test_collator_names_the_samples_it_cannot_batch(processor):
    collate = PiTeDataCollator(pad_token_id=0)
    video = {
        "example_id": "a.jsonl line 1",
        "input_ids": torch.ones(3, dtype=torch.long),
        "labels": torch.ones(3, dtype=torch.long),
        "video_features": torch.zeros(4, 24),
    }
    image = {**video, "example_id": "b.jsonl line 7", "video_features": torch.zeros(1, 24)}
    with pytest.raises(ValueError, match=r"video_features differ in shape.*b.jsonl line 7: \(1, 24\)"):
        collate([video, image])
    with pytest.raises(ValueError, match="must carry the same inputs"):
        collate([video, {**video, "point_labels": torch.zeros(3, 2)}])


def test_stage2_conversations_do_not_always_open_with_dense_captioning(world, processor):
    """Half of the videos ask an event question first; the dense answer's phrases keep their trajectories."""
    import zlib

    from pite.data.pite143k import pite143k_example

    record = json.loads(open(world["pite"], encoding="utf-8").readline())
    featurizer = ExampleFeaturizer(processor, P, max_length=1024)  # the whole conversation, nothing cut
    openers = {}
    for number in range(8):
        video_id = f"video-{number}"
        example = pite143k_example({**record, "video_id": video_id}, "test", world["videos"], N, P)
        dense_first = zlib.crc32(f"order:{video_id}".encode()) % 2 == 0
        answers = [m["content"] for m in example.messages if m["role"] == "assistant"]
        dense_turn = 0 if dense_first else 1
        assert ", from 00 to 03." in answers[dense_turn]
        assert example.messages[0]["content"][0] == {"type": "video"}  # the opening turn always holds the video
        assert all(isinstance(m["content"], str) for m in example.messages[1:])
        sample = featurizer(example)
        carrying = (sample["trajectory_labels"] != -1).any(dim=(1, 2, 3))
        # the dense answer's two phrases and the segment answer's one carry trajectories, wherever they sit
        assert _decode(processor, sample["input_ids"][carrying].tolist()).count("red square") == 3
        openers[dense_first] = answers[0]
    assert set(openers) == {True, False}, "both orders must occur among these ids"


def test_skip_summary_counts_each_kind_of_reason_and_shows_its_first():
    from pite.data.records import skip_summary

    skipped = {f"t.jsonl line {n}": f"video not found: 'v/{n}.mp4'" for n in range(1, 501)}
    skipped["t.jsonl line 501"] = "no grounded object"
    summary = skip_summary(skipped)
    assert summary == (
        "501 skipped: 500 x video not found (first: t.jsonl line 1: video not found: 'v/1.mp4'); "
        "1 x no grounded object (first: t.jsonl line 501: no grounded object)"
    )
    assert skip_summary({}) == "none skipped"
