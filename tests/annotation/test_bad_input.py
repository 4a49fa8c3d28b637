"""Bad input to `pite annotate`: a captions file with nothing to annotate is an error naming the file (not a run
that exits 0 having annotated nothing), and an --out that is an input or not a stage-2 file is refused before any
model loads."""

from __future__ import annotations

import json

import pytest

from pite.annotation.captions import CaptionsError, load_captions
from pite.cli.main import main


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the captions file holds no videos"),
        ("\n\n", "the captions file holds no videos"),
        ("[]", "the captions file holds no videos"),
        ("{}", "the captions file holds no videos"),
        (
            '{"video_id": "a", "events": []}\n{"video_id": "b", "events": []}\n',
            "none of its 2 videos has a caption event",
        ),
        (
            json.dumps({"v_a": {"duration": 3, "timestamps": [], "sentences": []}}),
            "none of its 1 videos has a caption",
        ),
    ],
)
def test_nothing_to_annotate_is_a_captions_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "captions.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CaptionsError, match=message) as caught:
        load_captions(path)
    assert str(caught.value).startswith(f"{path}: ")


@pytest.fixture
def no_models(monkeypatch):
    import pite.annotation.cli as annotation_cli

    def build_pipeline(args):
        raise AssertionError("models were loaded before the inputs were checked")

    monkeypatch.setattr(annotation_cli, "build_pipeline", build_pipeline)


def _annotate(tmp_path, captions, out):
    return main(["annotate", "--videos", str(tmp_path), "--captions", str(captions), "--out", str(out)])


def test_empty_captions_exit_2_naming_the_file(tmp_path, capsys, no_models):
    captions = tmp_path / "captions.json"
    captions.write_text("")
    assert _annotate(tmp_path, captions, tmp_path / "out.jsonl") == 2
    assert capsys.readouterr().err == f"pite annotate: {captions}: the captions file holds no videos\n"
    assert not (tmp_path / "out.jsonl").exists()


def test_out_that_is_the_captions_or_not_stage2_is_refused(tmp_path, capsys, no_models):
    captions = tmp_path / "captions.jsonl"
    text = json.dumps({"video_id": "a", "video": "a.mp4", "events": [{"caption": "a dog", "start": 0, "end": 1}]})
    captions.write_text(text + "\n")
    assert _annotate(tmp_path, captions, captions) == 2
    assert f"the output {captions} is the input --captions" in capsys.readouterr().err
    other = tmp_path / "mine.jsonl"
    other.write_text('{"note": 1}\n')
    assert _annotate(tmp_path, captions, other) == 2
    assert f"{other}: record 1 has no string video_id" in capsys.readouterr().err
    assert captions.read_text() == text + "\n" and other.read_text() == '{"note": 1}\n'
