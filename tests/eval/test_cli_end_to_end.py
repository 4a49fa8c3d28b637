"""`pite eval` end to end through `pite.cli.main.main`: a tiny random PiTe saved with its processor, synthetic videos
and annotation files in the published formats (ActivityNet Captions / -QA from `pite.demo.world`, Charades-STA,
MSVD-QA, MSRVTT-QA written here), tables and results JSON, resume after interruption, skipped videos, the judge over
HTTP on 127.0.0.1 (the `chat_server` fixture), teacher-forced trajectories.

The model is untrained, so the numbers are garbage: the tests check structure, counts, determinism, resumption and
identities that hold for any model (L1 == the stage-2 trajectory loss; a model predicting the centre == the baseline).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pite.cli.main import main
from pite.eval.model_runner import PiTeGenerator

from ..conftest import TINY_TEXT_CONFIG, TINY_VISION_CONFIG

NUM_FRAMES = 8


def build_tiny_pite(folder: Path, corpus: list[str], centre_trajectories: bool = False) -> Path:
    """Save a random PiTe (hidden 32, 2 layers, N=8) and its processor to `folder`.

    Weights are drawn with std 0.2 (not 0.02) so that different prompts get different greedy answers; with
    `centre_trajectories` the trajectory head predicts (0.5, 0.5) for every token.
    """
    from transformers import CLIPImageProcessorPil

    from pite.demo.tokenizer import train_llama_tokenizer
    from pite.modeling_pite import PiTeConfig, PiTeForConditionalGeneration
    from pite.processing import PiTeProcessor

    tokenizer = train_llama_tokenizer(corpus, vocab_size=400)
    processor = PiTeProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}),
        tokenizer=tokenizer,
        num_frames=NUM_FRAMES,
    )
    config = PiTeConfig(
        vision_config=dict(TINY_VISION_CONFIG, initializer_range=0.2),
        text_config=dict(
            TINY_TEXT_CONFIG,
            vocab_size=len(tokenizer),
            max_position_embeddings=2048,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            initializer_range=0.2,
        ),
        num_frames=NUM_FRAMES,
        video_token_id=processor.video_token_id,
        initializer_range=0.2,
    )
    torch.manual_seed(0)
    model = PiTeForConditionalGeneration(config).eval()
    if centre_trajectories:
        with torch.no_grad():
            model.trajectory_head.weight.zero_()
            model.trajectory_head.bias.fill_(0.5)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Two held-out synthetic videos with ActivityNet Captions, ActivityNet-QA and stage-2 trajectory files, plus an
    undecodable `v_broken.mp4` in the same folder."""
    from pite.demo.world import generate_world

    manifest = generate_world(
        tmp_path_factory.mktemp("world"),
        num_train_videos=0,
        num_eval_videos=2,
        num_images=0,
        num_frames=NUM_FRAMES,
        eval_questions_per_video=2,
    )
    (Path(manifest.eval_videos_dir) / "v_broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a real video")
    return manifest


@pytest.fixture(scope="module")
def model_dir(world, tmp_path_factory):
    from pite.demo.world.scene import WorldConfig
    from pite.demo.world.text import world_corpus
    from pite.eval.prompts import DENSE_CAPTIONING_QUESTION

    corpus = world_corpus(WorldConfig.from_dict(world.config)) + [DENSE_CAPTIONING_QUESTION]
    return build_tiny_pite(tmp_path_factory.mktemp("tiny-pite"), corpus)


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory):
    """A tiny random Llama with its tokenizer saved to a folder: a local judge (it writes no dict)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from pite.demo.tokenizer import train_llama_tokenizer
    from pite.eval.judge import SYSTEM_MESSAGE, user_message

    folder = tmp_path_factory.mktemp("judge")
    tokenizer = train_llama_tokenizer([SYSTEM_MESSAGE, user_message("question", "answer", "prediction")] * 5, 400)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def pite_eval(capsys, *argv: object) -> tuple[int, str, str]:
    """Run `pite eval ...` in-process; (exit status, stdout, stderr)."""
    capsys.readouterr()
    status = main(["eval", *map(str, argv), "--no-progress"])
    out, err = capsys.readouterr()
    return status, out, err


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def grounding_data(world, tmp_path: Path) -> Path:
    """The world's ActivityNet Captions with a video that does not exist first and the broken video last."""
    captions = read_json(world.eval_captions)
    data = {"v_missing": {"duration": 10.0, "timestamps": [[1.0, 2.0]], "sentences": ["nothing is here"]}}
    data.update(captions)
    data["v_broken"] = {"duration": 5.0, "timestamps": [[0.0, 1.0]], "sentences": ["the file is corrupt"]}
    path = tmp_path / "val_1.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_grounding_resumes_after_interruption_skips_bad_videos_and_is_deterministic(
    world, model_dir, tmp_path, capsys, monkeypatch
):
    data = grounding_data(world, tmp_path)
    answerable = sum(len(v["sentences"]) for v in read_json(world.eval_captions).values())
    args = [
        "grounding",
        "--model",
        model_dir,
        "--data",
        data,
        "--videos",
        world.eval_videos_dir,
        "--max-new-tokens",
        6,
        "--batch-size",
        4,
        "--model-name",
        "tiny",
    ]
    output = tmp_path / "run" / "grounding.json"
    predictions_file = tmp_path / "run" / "grounding.predictions.json"

    # 1. The model fails on its second batch: the first batch's answers are on disk, the error propagates.
    real_generate, calls = PiTeGenerator.generate, []

    def failing_generate(self, inputs):
        calls.append(inputs["input_ids"].shape[0])
        if len(calls) == 2:
            raise RuntimeError("simulated out of memory")
        return real_generate(self, inputs)

    monkeypatch.setattr(PiTeGenerator, "generate", failing_generate)
    with pytest.raises(RuntimeError, match="simulated out of memory"):
        pite_eval(capsys, *args, "--output", output)
    assert "run the same command again to resume" in capsys.readouterr().err
    first = read_json(predictions_file)
    assert len(first["predictions"]) == 4 and not output.exists()
    assert set(first["skipped"]) == {"v_missing#0"}  # recorded before generation started

    # 2. The rerun answers only the rest, skips the broken video, and writes table + results.
    asked = []
    real_call = PiTeGenerator.__call__
    monkeypatch.setattr(PiTeGenerator, "generate", real_generate)
    monkeypatch.setattr(
        PiTeGenerator,
        "__call__",
        lambda self, records: asked.extend(r.sample_id for r in records) or real_call(self, records),
    )
    status, out, _ = pite_eval(capsys, *args, "--output", output)
    assert status == 0
    assert not set(asked) & set(first["predictions"]) and len(asked) == answerable - 4 + 1  # + the broken video
    results, stored = read_json(output), read_json(predictions_file)
    assert results["counts"] == {
        "records": answerable + 2,
        "answered": answerable,
        "generated_now": answerable - 4,
        "answered_before": 4,
        "skipped": 2,
        "missing_videos": 1,
    }
    assert set(results["skipped"]) == set(stored["skipped"]) == {"v_missing#0", "v_broken#0"}
    assert "not found" in stored["skipped"]["v_missing#0"] and "unreadable video" in stored["skipped"]["v_broken#0"]
    assert {k: v for k, v in first["predictions"].items()} == {
        k: stored["predictions"][k] for k in first["predictions"]
    }
    scores = results["scores"]
    assert scores["num_queries"] == answerable and scores["num_unanswered"] == 2
    assert set(scores) >= {"R@0.3", "R@0.5", "R@0.7", "mIoU"} and all(0 <= scores[k] <= 100 for k in ("mIoU", "R@0.5"))
    assert results["table"].splitlines()[0] == "| Model | R@0.3 | R@0.5 | R@0.7 | mIoU | SODA_c | CIDEr | METEOR |"
    assert results["table"].splitlines()[2].startswith("| tiny | ") and results["table"] in out
    assert results["settings"]["num_frames"] == NUM_FRAMES and results["settings"]["do_sample"] is False

    # 3. A third run has nothing to generate; a fresh run one video at a time gives the same greedy answers.
    asked.clear()
    assert pite_eval(capsys, *args, "--output", output)[0] == 0
    assert asked == ["v_broken#0"] and read_json(output)["counts"]["generated_now"] == 0
    fresh = tmp_path / "fresh" / "grounding.json"
    assert pite_eval(capsys, *args, "--batch-size", 1, "--output", fresh)[0] == 0
    fresh_outputs = read_json(tmp_path / "fresh" / "grounding.predictions.json")["predictions"]
    assert fresh_outputs == stored["predictions"]
    assert len({entry["output"] for entry in fresh_outputs.values()}) > 1  # the answers depend on the question

    # 4. Settings that change the answers cannot be mixed into the same predictions file.
    status, _, err = pite_eval(capsys, *args, "--max-new-tokens", 7, "--output", output)  # the last value counts
    assert status == 2 and "different settings (['max_new_tokens'])" in err


def test_dense_captioning_without_java_still_scores_cider(world, model_dir, tmp_path, capsys, no_java):
    output = tmp_path / "dvc.json"
    with pytest.warns(UserWarning, match="Java"):
        status, out, err = pite_eval(
            capsys,
            "dense-captioning",
            "--model",
            model_dir,
            "--data",
            world.eval_captions,
            "--videos",
            world.eval_videos_dir,
            "--max-new-tokens",
            8,
            "--output",
            output,
        )
    assert status == 0 and "java" in err.lower()
    results = read_json(output)
    scores = results["scores"]
    assert scores["METEOR"] is None and scores["SODA_c"] is None and scores["tokenizer"] == "python"
    assert isinstance(scores["CIDEr"], float) and scores["num_videos"] == 2 and results["counts"]["answered"] == 2
    row = " | - | - | - | - | - | " + f"{scores['CIDEr']:.1f}" + " | - |\n\nProtocol: reference"
    assert row in results["table"] and results["protocol"] == scores["protocol"] == "reference"
    assert set(read_json(tmp_path / "dvc.predictions.json")["predictions"]) == set(read_json(world.eval_captions))


def test_qa_judged_over_http_cached_and_unusable_replies_counted(
    world, model_dir, tmp_path, capsys, chat_server, monkeypatch
):
    monkeypatch.delenv("PITE_TEST_JUDGE_KEY", raising=False)
    args = [
        "qa",
        "--format",
        "activitynet-qa",
        "--model",
        model_dir,
        "--data",
        world.eval_qa_questions,
        "--answers",
        world.eval_qa_answers,
        "--videos",
        world.eval_videos_dir,
        "--max-new-tokens",
        5,
        "--judge",
        "openai",
        "--judge-base-url",
        chat_server.base_url,
        "--judge-api-key-env",
        "PITE_TEST_JUDGE_KEY",
        "--output",
        tmp_path / "qa.json",
    ]
    num_questions = len(read_json(world.eval_qa_questions))
    status, out, _ = pite_eval(capsys, *args, "--judge-model", "judge-a")
    assert status == 0 and len(chat_server.requests) == num_questions
    results = read_json(tmp_path / "qa.json")
    summary = results["scores"]
    assert summary["judge_model"] == "judge-a" and summary["temperature"] == 0.0
    # the default judge says yes only for exact matches: an untrained model matches none
    assert (summary["num_yes"], summary["num_no"], summary["num_skipped"]) == (0, num_questions, 0)
    assert (summary["accuracy"], summary["score"]) == (0.0, 1.0)
    assert [j["verdict"] for j in results["judgments"]] == ["no"] * num_questions
    assert "| 0.0 | 1.0 |\n\nJudge: judge-a (temperature 0.0)\nProtocol: reference" in results["table"]
    # ActivityNet-QA's official exact match beside the judge, over every question of the answers file
    assert results["exact_match"]["num_questions"] == len(read_json(world.eval_qa_answers))
    assert results["exact_match"]["accuracy"] == 0.0 and "Exact-match accuracy: 0.0" in results["table"]
    assert results["table"] in out
    assert "Authorization" not in chat_server.requests[0]["headers"]
    sent = chat_server.requests[0]["body"]
    assert sent["model"] == "judge-a" and sent["temperature"] == 0.0

    # Rerun: answers come from the predictions file, judgments from the cache: the judge is not asked again.
    assert pite_eval(capsys, *args, "--judge-model", "judge-a")[0] == 0
    assert len(chat_server.requests) == num_questions and read_json(tmp_path / "qa.json")["scores"] == summary

    # Another judge that replies with prose: every reply is skipped and counted, nothing crashes.
    chat_server.respond = lambda body: (200, chat_server.completion("I think the answer is correct."), 0.0)
    assert pite_eval(capsys, *args, "--judge-model", "judge-b")[0] == 0
    prose = read_json(tmp_path / "qa.json")
    assert prose["scores"]["num_skipped"] == num_questions and prose["scores"]["accuracy"] is None
    assert prose["counts"]["generated_now"] == 0 and "| - | - |" in prose["table"]

    # A judge that refuses the request: exit 1, saying that what was judged is cached.
    chat_server.respond = lambda body: (400, b'{"error": "bad model"}', 0.0)
    status, _, err = pite_eval(capsys, *args, "--judge-model", "judge-c")
    assert status == 1 and "HTTP 400" in err and "qa.judgments.sqlite" in err


def link_videos(world, folder: Path, names: list[str]) -> Path:
    """`folder/{name}.mp4` copies of the world's two videos, in turn."""
    folder.mkdir()
    for index, name in enumerate(names):
        shutil.copy(world.eval_videos[index % len(world.eval_videos)], folder / f"{name}.mp4")
    return folder


def test_charades_msvd_and_msrvtt_formats_end_to_end(
    world, model_dir, judge_dir, tmp_path, capsys, chat_server, monkeypatch
):
    common = ["--model", model_dir, "--max-new-tokens", 4]
    judge = ["--judge", "openai", "--judge-base-url", chat_server.base_url, "--judge-model", "judge"]

    # Charades-STA, with a model that always answers "frames 00 to 07": with N = 8 that is the whole video, [0, 7.7] s
    # (the corrected protocol's reading; VTimeLLM's would be [0, 7/8] of the video).
    charades = link_videos(world, tmp_path / "charades", ["AO8RW"])
    (tmp_path / "sta.txt").write_text(
        "AO8RW 0.0 3.5##a person opens a door.\nAO8RW 2 7.1##a person sits down.\nZZZZZ 1 2##gone.\n", encoding="utf-8"
    )
    (tmp_path / "Charades_v1_test.csv").write_text("id,subject,length\nAO8RW,x,7.7\nZZZZZ,y,30\n", encoding="utf-8")
    with monkeypatch.context() as patch:
        patch.setattr(PiTeGenerator, "generate", lambda self, inputs: ["From 00 to 07."] * len(inputs["input_ids"]))
        status, out, _ = pite_eval(
            capsys,
            "grounding",
            "--format",
            "charades-sta",
            "--charades-csv",
            tmp_path / "Charades_v1_test.csv",
            "--data",
            tmp_path / "sta.txt",
            "--videos",
            charades,
            "--output",
            tmp_path / "charades.json",
            "--protocol",
            "corrected",
            *common,
        )
    results = read_json(tmp_path / "charades.json")
    assert status == 0 and results["counts"]["answered"] == 2 and list(results["skipped"]) == ["ZZZZZ#0"]
    ious = [3.5 / 7.7, 5.1 / 7.7]
    scores = results["scores"]
    assert (scores["R@0.3"], scores["R@0.5"], scores["R@0.7"]) == (100.0, 50.0, 0.0)
    assert scores["mIoU"] == pytest.approx(100 * sum(ious) / 2) and f"| {scores['mIoU']:.1f} |" in out

    msvd = link_videos(world, tmp_path / "msvd", ["-4wsuPCjDBc_5_15", "bQJQGoJF7_k_162_169"])
    (tmp_path / "youtube_mapping.txt").write_text(
        "-4wsuPCjDBc_5_15 vid1\nbQJQGoJF7_k_162_169 vid2\n", encoding="utf-8"
    )
    (tmp_path / "msvd_test_qa.json").write_text(
        json.dumps(
            [
                {"answer": "circle", "id": 0, "question": "what moves?", "video_id": 1},
                {"answer": "red", "id": 1, "question": "what colour is the square?", "video_id": 2},
            ]
        ),
        encoding="utf-8",
    )
    status, out, _ = pite_eval(
        capsys,
        "qa",
        "--format",
        "msvd-qa",
        "--youtube-mapping",
        tmp_path / "youtube_mapping.txt",
        "--data",
        tmp_path / "msvd_test_qa.json",
        "--videos",
        msvd,
        "--output",
        tmp_path / "msvd.json",
        *common,
        *judge,
    )
    assert status == 0 and read_json(tmp_path / "msvd.json")["counts"]["answered"] == 2
    assert out.startswith("| Model | MSVD-QA Acc. | MSVD-QA Score |")

    msrvtt = link_videos(world, tmp_path / "msrvtt", ["video7010"])
    (tmp_path / "msrvtt_test_qa.json").write_text(
        json.dumps(
            [
                {"answer": "square", "id": 7, "question": "what shape is there?", "video_id": 7010},
                {"answer": "two", "id": 8, "question": "how many objects?", "video_id": 7011},  # no video7011.mp4
            ]
        ),
        encoding="utf-8",
    )
    # judged by a local transformers model this time: greedy, recorded as temperature 0.0
    status, out, _ = pite_eval(
        capsys,
        "qa",
        "--format",
        "msrvtt-qa",
        "--data",
        tmp_path / "msrvtt_test_qa.json",
        "--videos",
        msrvtt,
        "--output",
        tmp_path / "msrvtt.json",
        *common,
        "--judge",
        "local",
        "--judge-model",
        judge_dir,
        "--judge-max-new-tokens",
        6,
    )
    results = read_json(tmp_path / "msrvtt.json")
    assert status == 0 and results["counts"]["answered"] == 1 and list(results["skipped"]) == ["8"]
    assert results["scores"]["judge_model"] == str(judge_dir) and results["scores"]["temperature"] == 0.0
    (judgment,) = results["judgments"]
    assert judgment["sample_id"] == "7" and (judgment["verdict"] is None) == (judgment["skipped_reason"] is not None)
    assert out.startswith("| Model | MSRVTT-QA Acc. | MSRVTT-QA Score |")
    assert out.count(f"Judge: {judge_dir} (temperature 0.0)") == 1


def test_bad_input_gives_clear_errors_before_loading_the_model(world, model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("pite.core.loading.load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    videos = world.eval_videos_dir
    broken = tmp_path / "val_1.json"
    broken.write_text('{"v_a": {"duration": 10, "timestamps": [[1, 2]]}}', encoding="utf-8")
    status, _, err = pite_eval(
        capsys,
        "grounding",
        "--model",
        model_dir,
        "--data",
        broken,
        "--videos",
        videos,
        "--output",
        tmp_path / "out.json",
    )
    assert status == 2 and "val_1.json: video 'v_a': field 'sentences' is missing" in err

    status, _, err = pite_eval(
        capsys,
        "grounding",
        "--format",
        "charades-sta",
        "--model",
        model_dir,
        "--data",
        broken,
        "--videos",
        videos,
        "--output",
        tmp_path / "out.json",
    )
    assert status == 2 and "--format charades-sta needs --charades-csv" in err
    status, _, err = pite_eval(
        capsys,
        "qa",
        "--format",
        "msrvtt-qa",
        "--youtube-mapping",
        broken,
        "--model",
        model_dir,
        "--data",
        broken,
        "--videos",
        videos,
        "--judge",
        "openai",
        "--judge-model",
        "j",
        "--output",
        tmp_path / "out.json",
    )
    assert status == 2 and "--youtube-mapping belongs to --format msvd-qa" in err
    status, _, err = pite_eval(
        capsys,
        "qa",
        "--format",
        "msrvtt-qa",
        "--model",
        model_dir,
        "--data",
        broken,
        "--videos",
        videos,
        "--judge",
        "local",
        "--judge-model",
        "j",
        "--judge-temperature",
        0.7,
        "--output",
        tmp_path / "out.json",
    )
    assert status == 2 and "a local judge decodes greedily" in err
    status, _, err = pite_eval(
        capsys,
        "grounding",
        "--model",
        model_dir,
        "--data",
        world.eval_captions,
        "--videos",
        videos,
        "--num-frames",
        101,
        "--output",
        tmp_path / "out.json",
    )
    assert status == 2 and "--num-frames must be <= 100" in err
    status, _, err = pite_eval(
        capsys,
        "grounding",
        "--model",
        tmp_path,
        "--data",
        world.eval_captions,
        "--videos",
        videos,
        "--output",
        tmp_path / "out.json",
    )
    assert status == 2 and "not a saved model folder" in err
    assert not (tmp_path / "out.json").exists()
    with pytest.raises(SystemExit):
        main(["eval", "segmentation", "--model", str(model_dir)])


def test_trust_remote_code_runs_the_folder_code_with_the_same_answers(world, model_dir, tmp_path, capsys):
    """`--trust-remote-code` loads through AutoModel/AutoProcessor (the Hub user's path): same greedy answers."""
    first = next(iter(read_json(world.eval_captions).items()))
    data = tmp_path / "one_video.json"
    data.write_text(
        json.dumps(
            {first[0]: {**first[1], "timestamps": first[1]["timestamps"][:2], "sentences": first[1]["sentences"][:2]}}
        ),
        encoding="utf-8",
    )
    args = [
        "eval",
        "grounding",
        "--model",
        str(model_dir),
        "--data",
        str(data),
        "--videos",
        world.eval_videos_dir,
        "--max-new-tokens",
        "6",
        "--no-progress",
    ]
    assert main([*args, "--output", str(tmp_path / "installed.json")]) == 0
    modules = tmp_path / "modules"
    env = {**os.environ, "HF_MODULES_CACHE": str(modules), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "pite.cli.main",
            *args,
            "--trust-remote-code",
            "--output",
            str(tmp_path / "remote.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    assert list(modules.rglob("modeling_pite.py")) and list(modules.rglob("processing_pite.py"))
    installed = read_json(tmp_path / "installed.predictions.json")["predictions"]
    assert read_json(tmp_path / "remote.predictions.json")["predictions"] == installed and len(installed) == 2


# ----------------------------------------------------------------------------------------------------- trajectories
def trajectory_data(world, tmp_path: Path) -> Path:
    """The world's trajectory records, then one whose video is missing and one without any grounded object."""
    lines = Path(world.eval_trajectories).read_text(encoding="utf-8").splitlines()
    missing = json.loads(lines[0]) | {"video_id": "gone", "video": "gone.mp4"}
    unground = json.loads(lines[1]) | {"video_id": "no_objects"}
    unground["events"] = [{**event, "objects": []} for event in unground["events"]]
    path = tmp_path / "trajectories.jsonl"
    path.write_text("\n".join([*lines, json.dumps(missing), json.dumps(unground)]) + "\n", encoding="utf-8")
    return path


def trajectory_loss(model_dir: Path, data: Path, videos: str) -> tuple[float, int]:
    """The model's own stage-2 trajectory loss over present targets (and their count) on the world's videos."""
    from pite.data.pite143k import pite143k_example
    from pite.data.records import read_json_records
    from pite.eval.model_runner import load_for_inference
    from pite.training import ExampleFeaturizer, PiTeDataCollator

    model, processor = load_for_inference(model_dir, device="cpu")
    # The metric scores the points that are present: the training loss that counts only those is the "mask" one.
    model.config.absent_targets = "mask"
    featurizer = ExampleFeaturizer(processor, num_points=model.config.num_trajectory_points, max_length=None)
    samples = [
        featurizer(pite143k_example(record, where, videos, NUM_FRAMES, 3))
        for where, record in list(read_json_records(str(data)))[:2]
    ]
    batch = PiTeDataCollator(pad_token_id=processor.tokenizer.pad_token_id)(samples)
    with torch.no_grad():
        output = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            pixel_values_videos=batch["pixel_values_videos"],
            trajectory_labels=batch["trajectory_labels"],
        )
    points = int((batch["trajectory_labels"][:, 1:] != -1).all(-1).sum())
    return float(output.trajectory_loss), points


def test_trajectory_with_the_wrong_videos_folder_says_in_one_line_what_was_skipped(world, model_dir, tmp_path, capsys):
    data, empty = trajectory_data(world, tmp_path), tmp_path / "no_videos"
    empty.mkdir()
    args = ("trajectory", "--model", model_dir, "--data", data, "--videos", empty, "--output", tmp_path / "t.json")
    status, _, err = pite_eval(capsys, *args)
    assert status != 0 and not (tmp_path / "t.json").exists()
    message = err.strip().splitlines()[-1]
    first = f"trajectories.jsonl line 1 ({json.loads(Path(data).read_text().splitlines()[0])['video_id']})"
    assert f"could be scored (4 skipped: 4 x video not found (first: {first}: video not found: " in message
    assert message.count(".mp4") == 1  # one example, not every path


def test_trajectory_end_to_end_equals_the_training_loss(world, model_dir, tmp_path, capsys):
    data = trajectory_data(world, tmp_path)
    args = [
        "trajectory",
        "--model",
        model_dir,
        "--data",
        data,
        "--videos",
        world.eval_videos_dir,
        "--model-name",
        "tiny",
    ]
    status, out, _ = pite_eval(capsys, *args, "--batch-size", 2, "--output", tmp_path / "t2.json")
    assert status == 0
    results = read_json(tmp_path / "t2.json")
    assert results["num_videos"] == 2 and [row["video_id"] for row in results["per_video"]] == [
        json.loads(line)["video_id"] for line in Path(world.eval_trajectories).read_text().splitlines()
    ]
    assert results["skipped"] == {
        "trajectories.jsonl line 3 (gone)": f"video not found: {str(Path(world.eval_videos_dir) / 'gone.mp4')!r}",
        "trajectories.jsonl line 4 (no_objects)": "no grounded object with a visible point",
    }
    loss, points = trajectory_loss(model_dir, data, world.eval_videos_dir)
    assert results["scores"]["num_points"] == results["baseline"]["num_points"] == points > 0
    assert results["scores"]["L1"] == pytest.approx(loss, rel=1e-5)
    assert 0 <= results["baseline"]["PCK@0.05"] <= results["baseline"]["PCK@0.1"] <= 100
    table = results["table"].splitlines()
    assert table[0] == "| Model | L1 | PCK@5% | PCK@10% | Points |" and table[2].startswith("| tiny | ")
    assert table[3].startswith("| constant centre (0.5, 0.5) | ") and results["table"] in out

    # One video per forward pass (no padding) gives the same numbers.
    assert pite_eval(capsys, *args, "--batch-size", 1, "--output", tmp_path / "t1.json")[0] == 0
    single = read_json(tmp_path / "t1.json")
    for key in ("L1", "PCK@0.05", "PCK@0.1"):
        assert single["scores"][key] == pytest.approx(results["scores"][key], rel=1e-5, abs=1e-9)
    assert single["baseline"] == results["baseline"]


def test_trajectory_of_a_centre_predicting_model_is_the_baseline(world, tmp_path, capsys):
    from pite.demo.world.scene import WorldConfig
    from pite.demo.world.text import world_corpus

    centre = build_tiny_pite(
        tmp_path / "centre", world_corpus(WorldConfig.from_dict(world.config)), centre_trajectories=True
    )
    status, out, _ = pite_eval(
        capsys,
        "trajectory",
        "--model",
        centre,
        "--data",
        world.eval_trajectories,
        "--videos",
        world.eval_videos_dir,
        "--output",
        tmp_path / "centre.json",
    )
    results = read_json(tmp_path / "centre.json")
    assert status == 0 and results["skipped"] == {}
    # two Markdown tables, the split after a blank line so that it renders as a table of its own
    assert results["table"] in out and "|\n\n| L1 | all tokens | first token |" in results["table"]
    for key in ("L1", "PCK@0.05", "PCK@0.1", "num_points"):
        assert results["scores"][key] == pytest.approx(results["baseline"][key], abs=1e-6)
    # and so in every part of the phrase-position split, whose parts hold every point once
    by_position = results["by_phrase_position"]
    assert by_position["all"]["model"] == results["scores"]
    assert (
        sum(by_position[place]["model"]["num_points"] for place in ("first", "inner", "last"))
        == (results["scores"]["num_points"])
    )
    for place, scores in by_position.items():
        assert scores["model"]["L1"] == pytest.approx(scores["constant_centre"]["L1"], abs=1e-6), place
        assert scores["object_mean"]["L1"] < scores["scene_mean"]["L1"] < scores["constant_centre"]["L1"], place
        # held still at best: the video's median until the object is named, the object's own after
        held_still_at_most = scores["object_mean" if place == "last" else "scene_mean"]["L1"]
        assert scores["held_still"]["L1"] <= held_still_at_most + 1e-9, place
    assert np.isclose(results["scores"]["L1"], results["baseline"]["L1"])
