"""`pite demo --quick` runs end to end through the real command and writes its artefacts."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """One `pite demo --quick` run through the real command, shared by the tests of this module."""
    out = tmp_path_factory.mktemp("quick") / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "pite.cli.main", "demo", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_pite_demo_quick_writes_report_metrics_pictures_and_model(quick_demo):
    out = quick_demo
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_counts"]["train_videos"] == 8
    assert metrics["frame_encoder"]["final_loss"] < metrics["frame_encoder"]["initial_loss"]
    assert metrics["language_model"]["final_loss"] < metrics["language_model"]["initial_loss"]
    for stage in ("stage1", "stage2", "stage3"):
        assert metrics["training"][stage]["steps"] >= 1, stage
    evaluation = metrics["evaluation"]
    for name in ("trained", "untrained", "constant_centre"):
        assert evaluation["trajectory"][name]["num_points"] > 0
    assert evaluation["grounding"]["model"]["num_queries"] == metrics["world_counts"]["eval_events"]
    assert evaluation["qa"]["num_questions"] == metrics["world_counts"]["eval_questions"]
    by_kind = evaluation["qa"]["by_kind"]
    assert sum(counts["questions"] for counts in by_kind.values()) == evaluation["qa"]["num_questions"]
    assert sum(counts["model_correct"] for counts in by_kind.values()) == pytest.approx(
        evaluation["qa"]["model_accuracy"] * evaluation["qa"]["num_questions"] / 100
    )
    assert set(metrics["beats_baselines"]) == {
        "trajectory_vs_constant_centre",
        "trajectory_vs_untrained",
        "grounding_vs_random_interval",
        "grounding_vs_constant_span",
        "qa_vs_majority",
        "grounded_words_vs_every_word",
    }
    words = evaluation["grounded_words"]
    assert {words[name]["absent_targets"] for name in words} == {"regress", "mask"}
    other = "regress" if metrics["settings"]["absent_targets"] == "mask" else "mask"
    assert metrics["training"][f"stage2-{other}"]["steps"] >= 1
    assert words["shipped"]["absent_targets"] == metrics["settings"]["absent_targets"]
    for name, scores in words.items():  # every caption word is counted once, whatever the model
        assert scores["words"] == words["shipped"]["words"] > scores["object_words"] > 0, name
        assert scores["every_word"]["recall"] == 100.0 and 0 <= scores["model"]["precision"] <= 100, name
    by_position = evaluation["trajectory"]["by_phrase_position"]
    assert by_position["all"]["model"] == evaluation["trajectory"]["trained"]
    assert by_position["all"]["constant_centre"] == evaluation["trajectory"]["constant_centre"]
    by_count = evaluation["trajectory"]["by_object_count"]
    assert sum(row["num_videos"] for row in by_count.values()) == evaluation["trajectory"]["num_videos"]
    assert all(count.isdigit() and 0 <= row["model"] for count, row in by_count.items())
    readout = evaluation["frame_encoder_readout"]
    assert readout["num_points"] > 0 and 0 <= readout["object_mean_L1"] < readout["constant_centre_L1"]
    assert np.isfinite(readout["readout_L1"])
    report = (out / "report.md").read_text()
    assert f"is off by L1 {readout['readout_L1']:.3f}, against {readout['object_mean_L1']:.3f}" in report
    no_foresight = readout["no_foresight"]
    assert no_foresight["fraction_of_centre"] == pytest.approx(
        no_foresight["L1"] / readout["trajectory_targets"]["constant_centre_L1"]
    )
    assert f"would score {no_foresight['L1']:.3f}, {no_foresight['fraction_of_centre']:.2f} of the centre" in report
    better = readout["readout_L1"] < readout["object_mean_L1"]
    assert ("better than its mean position does" in report) == better
    assert "| objects | videos | trained PiTe | object held still | video's mean point | centre |" in report
    for count, row in by_count.items():
        assert f"| {count} | {row['num_videos']} | {row['model']:.3f} | {row['object_mean']:.3f} |" in report
    assert ("there is no object to pick out by its name" in report) == ("1" in by_count)
    assert "| temporal grounding | mIoU (%)" in report and "Held-out example" in report
    assert "| L1 | all tokens | first token |" in report and "| trained PiTe | " in report
    held_still = evaluation["trajectory"]["by_phrase_position"]["all"]["held_still"]["L1"]
    assert held_still <= evaluation["trajectory"]["by_phrase_position"]["all"]["scene_mean"]["L1"]
    assert f"Held still at best, all tokens: {held_still:.3f}" in report
    assert "| held still at best: the video's median point, the object's once named |" in report
    grounding = evaluation["grounding"]
    assert f'best on the training events ("{grounding["constant_span"]["answer"]}")' in report
    assert 1 <= grounding["distinct_answers"] <= grounding["model"]["num_queries"]
    assert "| grounded words, shipped model (mask) | precision / recall / F1 (%)" in report
    assert "| grounded words, stage 2 retrained with the other absent_targets (regress) |" in report
    assert 'The shipped model was trained with `absent_targets="mask"`' in report
    assert metrics["settings"]["stage3_rehearsal"] and "stage 3 also replays the stage-2 conversations" in report
    example = metrics["example"]
    assert any(example["phrase"] in caption for caption, _ in example["true_events"])
    assert 0 <= example["teacher_forced_L1"] < 4 and isinstance(example["frame_index_spans"], list)
    if example["drawn"] == "generated":  # drawn from the tokens the model wrote, not teacher-forced
        assert example["phrase"] in example["answer"] and 0 <= example["generated_L1"] < 4
    else:
        assert example["drawn"] == "teacher-forced" and example["generated_L1"] is None
    assert 'trajectory_window="video"' in report
    with Image.open(out / "trajectories.png") as sheet:
        assert sheet.size[0] > 0
    with Image.open(out / "trajectories.gif") as gif:
        assert gif.n_frames > 10  # PIL merges identical consecutive frames
    for name in (
        "config.json",
        "model.safetensors",
        "modeling_pite.py",
        "processing_pite.py",
        "processor_config.json",
    ):
        assert (out / "model" / name).exists(), name


# A user's machine without pite: any `import pite...` fails, so only the folder's own remote code can load it.
CLEAN_ANSWER = textwrap.dedent(
    """
    import json, sys
    class BlockPite:
        def find_spec(self, name, path=None, target=None):
            if name == "pite" or name.startswith("pite."):
                raise ImportError("pite is not installed here: " + name)
    sys.meta_path.insert(0, BlockPite())
    from transformers import AutoModel, AutoProcessor
    folder, video = sys.argv[1:3]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert not type(model).__module__.startswith("pite") and not type(processor).__module__.startswith("pite")
    question = "During which frames can we see the red circle moves up?"
    messages = [{"role": "user", "content": [{"type": "video", "path": video}, {"type": "text", "text": question}]}]
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    metadata = inputs.pop("video_metadata")
    output = model.generate(**inputs, max_new_tokens=8, return_dict_in_generate=True)
    result = processor.post_process_generation(output, metadata, prompt_length=inputs["input_ids"].shape[1])[0]
    new_tokens = int(output.sequences.shape[1] - inputs["input_ids"].shape[1])
    print(json.dumps({"text": result["text"], "new_tokens": new_tokens,
                      "trajectory_shape": list(output.trajectory_predictions.shape)}))
    """
)


def test_demo_model_folder_answers_without_pite(quick_demo, tmp_path):
    """The demo's DIR/model loads with AutoModel + AutoProcessor where pite is not importable and answers about a
    held-out video with text and per-token trajectories."""
    out = quick_demo
    video = sorted((out / "data" / "eval" / "videos").glob("*.mp4"))[0]
    script = tmp_path / "answer.py"
    script.write_text(CLEAN_ANSWER)
    result = subprocess.run(
        [sys.executable, str(script), str(out / "model"), str(video)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HF_HOME": str(tmp_path / "hf")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["new_tokens"] >= 1 and isinstance(answer["text"], str)
    metrics = json.loads((out / "metrics.json").read_text())
    assert answer["trajectory_shape"] == [1, answer["new_tokens"], 3, metrics["settings"]["num_frames"], 2]
