"""`pite export`: a complete, portable, atomically written Hub folder; the model card rendered into README.md."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import save_file

from pite.cli.main import main as pite_main
from pite.hub import check_export_folder, export_for_hub, machine_specific_strings, render_model_card
from pite.modeling_pite import PiTeForConditionalGeneration
from pite.processing import V1_CHAT_TEMPLATE

from .conftest import EXPORT_REPO_ID

MODEL_CARD = Path(__file__).resolve().parents[2] / "model_card.md"


def test_exported_folder_has_every_hub_part(exported_dir, built_dir):
    files = {p.name for p in exported_dir.iterdir()}
    config = json.loads((exported_dir / "config.json").read_text())
    assert config["model_type"] == "pite"
    for auto_class in ("AutoConfig", "AutoModel", "AutoModelForCausalLM", "AutoModelForImageTextToText"):
        module = config["auto_map"][auto_class].split(".")[0]
        assert f"{module}.py" in files, auto_class
    processor_config = json.loads((exported_dir / "processor_config.json").read_text())
    assert processor_config["auto_map"]["AutoProcessor"] == "processing_pite.PiTeProcessor"
    assert {"processing_pite.py", "modeling_pite.py", "configuration_pite.py", "losses_pite.py"} <= files
    assert check_export_folder(exported_dir) == []  # includes: every `from .x import` has its x.py

    # Sharded safetensors with an index that covers every shard.
    index = json.loads((exported_dir / "model.safetensors.index.json").read_text())
    shards = sorted(f for f in files if f.endswith(".safetensors"))
    assert len(shards) >= 2 and sorted(set(index["weight_map"].values())) == shards

    # Tokenizer with <video>, chat template, greedy generation config.
    assert "tokenizer.json" in files
    tokenizer_config = json.loads((exported_dir / "tokenizer_config.json").read_text())
    assert "<video>" in tokenizer_config["extra_special_tokens"]
    assert not {"local_files_only", "is_local", "name_or_path"} & set(tokenizer_config)
    chat_template = (
        (exported_dir / "chat_template.jinja").read_text()
        if "chat_template.jinja" in files
        else processor_config["chat_template"]
    )
    assert chat_template == V1_CHAT_TEMPLATE
    generation = json.loads((exported_dir / "generation_config.json").read_text())
    assert generation["do_sample"] is False and generation.get("num_beams", 1) == 1
    assert not {"temperature", "top_p", "top_k"} & set(generation)
    assert generation["bad_words_ids"] == [[config["video_token_id"]]]
    assert generation["pad_token_id"] == 0 and generation["eos_token_id"] == 2

    # The weights are the checkpoint's, bit for bit.
    exported = PiTeForConditionalGeneration.from_pretrained(exported_dir)
    source = PiTeForConditionalGeneration.from_pretrained(built_dir)
    assert exported.state_dict().keys() == source.state_dict().keys()
    assert all(torch.equal(a, source.state_dict()[k]) for k, a in exported.state_dict().items())


def test_readme_is_the_rendered_model_card(exported_dir):
    readme = (exported_dir / "README.md").read_text()
    metadata = ModelCard(readme).data.to_dict()
    assert metadata["library_name"] == "transformers" and metadata["pipeline_tag"] == "video-text-to-text"
    assert metadata["base_model"] == ["lmsys/vicuna-7b-v1.5", "openai/clip-vit-large-patch14"]
    assert metadata["license"] and metadata["datasets"] and "pite" in metadata["tags"]
    assert f'repo_id = "{EXPORT_REPO_ID}"' in readme and "org/pite-7b" not in readme
    assert "<!-- pite:checkpoint-details -->" not in readme
    assert "| frames per video (N) | 4 |" in readme and "| weights dtype | float32 |" in readme
    # The paper's results are labelled as the paper's, not as measurements of this checkpoint.
    evaluation = readme.split("## Evaluation", 1)[1].split("\n## ", 1)[0]
    assert "**The numbers below are the paper's" in evaluation
    assert "| PiTe 7B (paper) | 68.4 / 3.9 | 56.4 / 3.5 | 42.0 / 3.3 |" in evaluation
    assert "| PiTe 7B (paper) | 30.4 / 17.8 / 7.8 / 22.0 | 5.1 / 21.7 / 5.8 |" in evaluation
    citation = readme.split("## Citation", 1)[1]
    assert "@inproceedings{liu2024pite" in citation and "2409.07239" in citation


def test_no_file_names_this_machine(exported_dir, built_dir, tmp_path_factory):
    roots = {
        str(exported_dir),
        str(built_dir),
        str(tmp_path_factory.getbasetemp()),
        os.path.expanduser("~"),
        "/tmp/",
        "/work/",
        "/home/",
        "/root/",
        str(Path.cwd()),
    }
    for path in exported_dir.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            for root in roots:
                assert root.encode() not in raw, f"{path.name} contains {root!r}"


def test_export_writes_atomically(tmp_path, built_dir, monkeypatch, capsys):
    out = tmp_path / "hub"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    assert pite_main(["export", str(built_dir), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and [p.name for p in out.iterdir()] == ["keep.txt"]

    import pite.hub.export as export_module

    monkeypatch.setattr(export_module, "check_export_folder", lambda folder, forbidden=(): ["config.json: planted"])
    with pytest.raises(ValueError, match="planted"):
        export_for_hub(built_dir, out, overwrite=True)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]  # the old folder survives a failed export
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub"]  # no partial folders left behind

    monkeypatch.undo()
    assert pite_main(["export", str(built_dir), str(out), "--overwrite", "--max-shard-size", "100000000"]) == 0
    names = {p.name for p in out.iterdir()}
    assert "keep.txt" not in names and "model.safetensors" in names  # one shard under a large limit
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub"]


def test_export_requires_the_processor(tmp_path, built_dir):
    model_only = tmp_path / "model-only"
    model_only.mkdir()
    for path in built_dir.iterdir():
        if path.name in ("config.json", "model.safetensors", "generation_config.json") or path.name.endswith(
            "_pite.py"
        ):
            shutil.copy(path, model_only / path.name)
    with pytest.raises(FileNotFoundError, match="processor_config.json"):
        export_for_hub(model_only, tmp_path / "out")
    (model_only / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match="model_type is 'llama'"):
        export_for_hub(model_only, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_portability_check_finds_paths_and_host_names(tmp_path, monkeypatch):
    monkeypatch.setattr("socket.gethostname", lambda: "trainbox-17.cluster.example")
    (tmp_path / "config.json").write_text(json.dumps({"_name_or_path": "/home/alice/ckpt"}))
    (tmp_path / "notes.md").write_text("trained on trainbox-17 in D:\\\\runs")
    save_file({"w": torch.zeros(2)}, tmp_path / "model.safetensors", metadata={"source": "/scratch/run7/model"})
    (tmp_path / "tokenizer.json").write_text('{"vocab": {"trainbox-17": 5}}')  # a vocabulary may hold any word
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe" + str(tmp_path / "x").encode())
    problems = machine_specific_strings(tmp_path, extra_forbidden=[tmp_path / "x"])
    joined = "\n".join(problems)
    assert "config.json: absolute path" in joined and "/home/alice" in joined
    assert "notes.md: names this machine ('trainbox-17')" in joined and "notes.md: absolute path" in joined
    assert "model.safetensors: absolute path" in joined and "/scratch/run7" in joined
    assert "blob.bin: contains" in joined
    assert not any(line.startswith("tokenizer.json") for line in problems)
    for name in ("config.json", "notes.md", "model.safetensors", "blob.bin"):
        (tmp_path / name).unlink()
    assert machine_specific_strings(tmp_path) == []


def test_model_card_rendering_checks(built_dir):
    config = PiTeForConditionalGeneration.config_class.from_pretrained(built_dir)
    template = MODEL_CARD.read_text()
    rendered = render_model_card(template, config, 7_000_000_000, "bfloat16", "me/pite")
    assert "| parameters | 7.00 B |" in rendered and 'repo_id = "me/pite"' in rendered
    with pytest.raises(ValueError, match="owner/name"):
        render_model_card(template, config, 1, "float32", "pite")
    with pytest.raises(ValueError, match="marker"):
        render_model_card(template.replace("<!-- pite:checkpoint-details -->", ""), config, 1, "float32")
    with pytest.raises(ValueError, match=r"lacks \['license'\]"):
        render_model_card(template.replace("license: llama2\n", ""), config, 1, "float32")
