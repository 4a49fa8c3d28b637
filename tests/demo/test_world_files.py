"""Every file `generate_world` writes: published formats, decodable media, determinism, corpus coverage."""

import json
import re
from pathlib import Path

import decord
import numpy as np
import pytest
from PIL import Image

from pite.demo.world import COLOURS, WorldManifest, generate_world, make_image, make_video
from pite.demo.world.image import LOCATIONS, image_caption_words
from pite.demo.world.scene import WorldConfig
from pite.demo.world.text import answer_vocabulary, world_corpus

N = 20  # num_frames of the tiny world (conftest)
P = WorldConfig().num_key_points
LN_KEYS = {"dataset_id", "image_id", "annotator_id", "caption", "timed_caption", "traces", "voice_recording"}


def _lines(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def _relative_bytes(manifest):
    root = Path(manifest.root)
    return {str(Path(f).relative_to(root)): Path(f).read_bytes() for f in manifest.files()}


def test_manifest_lists_every_file_and_round_trips(tiny_world, tiny_world_kwargs):
    assert tiny_world.config["num_frames"] == tiny_world_kwargs["num_frames"] == N
    on_disk = {str(p) for p in Path(tiny_world.root).rglob("*") if p.is_file()}
    assert on_disk == set(tiny_world.files())
    assert len(tiny_world.train_videos) == 4 and len(tiny_world.eval_videos) == 3 and len(tiny_world.images) == 6
    assert WorldManifest.load(tiny_world.root) == tiny_world
    with pytest.raises(FileNotFoundError, match="no world manifest"):
        WorldManifest.load(Path(tiny_world.root) / "stage1")


def test_videos_decode_with_the_expected_frames_and_fps(tiny_world):
    config = tiny_world.world_config()
    for split, paths in (("train", tiny_world.train_videos), ("eval", tiny_world.eval_videos)):
        for index, path in enumerate(paths):
            scene = make_video(config, tiny_world.seed, split, index).scene
            reader = decord.VideoReader(path)
            assert Path(path).name == f"{scene.video_id}.mp4"
            assert len(reader) == scene.num_source_frames
            assert reader.get_avg_fps() == pytest.approx(config.fps)
            assert reader[0].shape == (config.height, config.width, 3)


def test_stage2_jsonl_is_pite_143k_style(tiny_world):
    records = _lines(tiny_world.stage2_annotations)
    fps = tiny_world.world_config().fps
    assert len(records) == 4 and tiny_world.counts["train_events"] == sum(len(r["events"]) for r in records)
    for record in records:
        assert set(record) == {"video_id", "video", "duration", "events"}
        assert (Path(tiny_world.train_videos_dir) / record["video"]).is_file()
        assert record["events"] and [e["start"] for e in record["events"]] == sorted(
            e["start"] for e in record["events"]
        )
        for event in record["events"]:
            assert 0 <= event["start"] < event["end"] <= record["duration"]
            for obj in event["objects"]:
                start, end = obj["span"]
                assert event["caption"][start:end] == obj["phrase"]
                trajectory = np.array(obj["trajectory"])
                assert trajectory.shape == (P, N, 2)
                absent = trajectory == -1
                assert np.array_equal(absent[..., 0], absent[..., 1])  # -1 marks whole points
                assert np.all((trajectory[~absent] >= 0) & (trajectory[~absent] < 1))
                source_frames = round(record["duration"] * fps)
                times = np.linspace(0, source_frames - 1, N, dtype=np.int32) / fps  # times of the sampled frames
                assert absent[:, times < event["start"] - 1e-9].all()


def test_stage3_valley_and_videoinstruct_formats(tiny_world):
    valley = json.loads(Path(tiny_world.valley_instruct).read_text())
    videoinstruct = json.loads(Path(tiny_world.videoinstruct).read_text())
    answers = {a for values in answer_vocabulary().values() for a in values}
    assert valley and videoinstruct
    for record in valley:
        assert set(record) == {"id", "source", "v_id", "video", "conversations"}
        human, gpt = record["conversations"]
        assert human["from"] == "human" and human["value"].startswith("<video>\n") and gpt["from"] == "gpt"
        assert gpt["value"] in answers
        assert (Path(tiny_world.train_videos_dir) / record["video"]).is_file()
    temporal = 0
    for record in videoinstruct:
        assert set(record) == {"video_id", "q", "a"}
        if record["q"].startswith("During which frames can we see "):  # temporal instructions, "From SS to EE."
            assert re.fullmatch(r"From (\d\d) to (\d\d)\.", record["a"]), record
            start, end = map(int, re.findall(r"\d\d", record["a"]))
            assert 0 <= start <= end < tiny_world.config["num_frames"]
            temporal += 1
        else:
            assert record["a"] in answers
        assert (Path(tiny_world.train_videos_dir) / f"{record['video_id']}.mp4").is_file()
    assert temporal == tiny_world.counts["train_events"] == tiny_world.counts["train_temporal_instructions"]
    assert len({r["id"] for r in valley}) == len(valley)


def test_eval_sets_follow_activitynet_formats(tiny_world):
    captions = json.loads(Path(tiny_world.eval_captions).read_text())
    assert len(captions) == 3
    for video_id, entry in captions.items():
        assert video_id.startswith("v_") and (Path(tiny_world.eval_videos_dir) / f"{video_id}.mp4").is_file()
        assert set(entry) == {"duration", "timestamps", "sentences"}
        assert len(entry["timestamps"]) == len(entry["sentences"]) > 0
        assert all(0 <= s < e <= entry["duration"] for s, e in entry["timestamps"])
    questions = json.loads(Path(tiny_world.eval_qa_questions).read_text())
    answers = json.loads(Path(tiny_world.eval_qa_answers).read_text())
    assert len(questions) == len(answers) == tiny_world.counts["eval_questions"] > 0
    closed = {a for values in answer_vocabulary().values() for a in values}
    for question, answer in zip(questions, answers):
        assert set(question) == {"video_name", "question", "question_id"} and set(answer) == {
            "answer",
            "type",
            "question_id",
        }
        assert question["question_id"] == answer["question_id"]
        assert f"v_{question['video_name']}" in captions  # file v_{video_name}.mp4, as ActivityNet-QA runners expect
        assert answer["answer"] in closed and isinstance(answer["type"], int)
    assert len({q["question_id"] for q in questions}) == len(questions)
    trajectories = _lines(tiny_world.eval_trajectories)
    assert [r["video_id"] for r in trajectories] == list(captions)
    for record in trajectories:
        assert [e["caption"] for e in record["events"]] == captions[record["video_id"]]["sentences"]


def test_eval_questions_per_video_keeps_distinct_kinds(tmp_path):
    manifest = generate_world(tmp_path, 0, 3, 0, num_frames=8, seed=1, eval_questions_per_video=2)
    answers = json.loads(Path(manifest.eval_qa_answers).read_text())
    questions = json.loads(Path(manifest.eval_qa_questions).read_text())
    assert len(questions) == 6
    for first, second in zip(answers[::2], answers[1::2]):
        assert first["type"] != second["type"]


def test_localized_narratives_format_and_traces_on_the_named_objects(tiny_world):
    config = tiny_world.world_config()
    records = _lines(tiny_world.stage1_annotations)
    assert len(records) == 6
    for index, record in enumerate(records):
        assert set(record) == LN_KEYS
        scene, _image, labels, _ = make_image(config, tiny_world.seed, index)
        jpeg = np.asarray(
            Image.open(Path(tiny_world.stage1_images_dir) / f"{record['image_id']}.jpg").convert("RGB")
        ).astype(int)
        assert jpeg.shape == (config.height, config.width, 3)
        utterances = record["timed_caption"]
        assert " ".join(u["utterance"] for u in utterances) == record["caption"]
        assert all(u["start_time"] < u["end_time"] for u in utterances)
        (trace,) = record["traces"]
        times = np.array([p["t"] for p in trace])
        assert np.all(np.diff(times) > 0)
        xy = np.array([[p["x"], p["y"]] for p in trace])
        for utterance, (word, owner) in zip(utterances, image_caption_words(scene)):
            assert utterance["utterance"] == word
            during = (times >= utterance["start_time"]) & (times <= utterance["end_time"])
            assert during.sum() >= 3  # every word gets points
            if owner is None:
                continue
            cols, rows = np.floor(xy[during] * [config.width, config.height]).astype(int).T
            assert np.all(labels[rows, cols] == owner), (record["image_id"], word)
            colour = np.array(COLOURS[scene.objects[owner].colour])
            assert np.abs(jpeg[rows, cols] - colour).max() <= 60
        for k, (obj, cell) in enumerate(zip(scene.objects, scene.cells)):  # locations name the object's thirds
            assert tuple(np.floor(scene.centres[k] * 3).astype(int)) == cell
            named = [word for word, owner in image_caption_words(scene) if owner == k]
            assert named == f"a {obj.colour} {obj.shape} {LOCATIONS[cell]}".split()


def test_same_seed_same_bytes_other_seed_other_world(tiny_world, tiny_world_kwargs, tmp_path):
    again = generate_world(tmp_path / "again", **tiny_world_kwargs)
    assert _relative_bytes(again) == _relative_bytes(tiny_world)
    other = generate_world(tmp_path / "other", **{**tiny_world_kwargs, "seed": tiny_world_kwargs["seed"] + 1})
    first, second = _relative_bytes(tiny_world), _relative_bytes(other)
    assert first.keys() == second.keys()
    differing = [name for name in first if first[name] != second[name]]
    assert len(differing) >= len(first) - 2  # all but maybe a coincidentally equal file


def test_train_and_held_out_videos_are_disjoint(tiny_world):
    def signature(record):
        return tuple((e["caption"], e["start"], e["end"]) for e in record["events"])

    train = {signature(r) for r in _lines(tiny_world.stage2_annotations)}
    held_out = {signature(r) for r in _lines(tiny_world.eval_trajectories)}
    assert not train & held_out
    assert not {Path(p).stem for p in tiny_world.train_videos} & {Path(p).stem for p in tiny_world.eval_videos}


def test_corpus_covers_every_written_text_and_trains_the_tokenizer(tiny_world):
    from pite.demo.tokenizer import train_llama_tokenizer

    corpus = world_corpus()
    texts = set(corpus)
    for record in _lines(tiny_world.stage2_annotations):
        assert {e["caption"] for e in record["events"]} <= texts
    for record in json.loads(Path(tiny_world.videoinstruct).read_text()):
        assert record["q"] in texts
        # Time answers are too many to list; their pieces are: "From", the two-digit numbers, "to".
        assert record["a"] in texts or re.fullmatch(r"From \d\d to \d\d\.", record["a"])
    assert any(t.startswith("From ") for t in corpus)
    words = {w for text in corpus for w in text.split()}
    for record in _lines(tiny_world.stage1_annotations):
        assert set(record["caption"].split()) <= words
    assert all(f"{i:02d}" in texts for i in range(100))
    assert all(any(t.startswith(f"from {i:02d} to ") for t in corpus) for i in range(100))
    tokenizer = train_llama_tokenizer(corpus, vocab_size=600)
    caption = next(iter(_lines(tiny_world.stage2_annotations)))["events"][0]["caption"]
    tokens = tokenizer.tokenize(f"{caption}, from 07 to 42.")
    assert not [t for t in tokens if t.startswith("<0x")]  # no byte fallback: the corpus covers the alphabet
    assert len(tokenizer.tokenize(corpus[0])) < 40  # the system prompt is merged into few tokens
    # A one-word answer is one token, as in a real LLM vocabulary (rare words would otherwise split into letters).
    for answers in answer_vocabulary().values():
        for answer in answers:
            assert tokenizer.tokenize(f"ASSISTANT: {answer}")[1:] == [f"\u2581{answer}"], answer


def test_generate_world_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="num_images"):
        generate_world(tmp_path, 1, 1, -1)
    with pytest.raises(ValueError, match="seed"):
        generate_world(tmp_path, 1, 1, 1, seed=-3)
    assert not any(tmp_path.iterdir())  # nothing written


def test_the_project_readers_accept_the_files(tiny_world):
    """The real data path: the evaluation readers and the stage-1 target builder read the world as written."""
    from pite.data.targets import localized_narrative_targets
    from pite.eval.datasets import read_activitynet_captions, read_activitynet_qa

    grounding = read_activitynet_captions(tiny_world.eval_captions, tiny_world.eval_videos_dir, task="grounding")
    assert len(grounding.records) == tiny_world.counts["eval_events"] and not grounding.missing_videos
    qa = read_activitynet_qa(tiny_world.eval_qa_questions, tiny_world.eval_qa_answers, tiny_world.eval_videos_dir)
    assert len(qa.records) == tiny_world.counts["eval_questions"] and not qa.missing_videos
    config = tiny_world.world_config()
    for index, record in enumerate(_lines(tiny_world.stage1_annotations)):
        scene, _image, labels, _ = make_image(config, tiny_world.seed, index)
        targets = localized_narrative_targets(record)
        words = image_caption_words(scene)
        assert [t.name for t in targets] == [word for word, _ in words]  # every word gets a point
        for target, (_word, owner) in zip(targets, words):
            if owner is not None:
                col, row = np.floor(np.asarray(target.value) * [config.width, config.height]).astype(int)
                assert labels[row, col] == owner
