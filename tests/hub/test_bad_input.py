"""Bad input to the hub commands and loaders: each case names the error type and checks the message names the
file or folder; existing folders are refused before any weight loads, and a command's own input never replaced."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch
from safetensors.torch import save_file

from pite.core.errors import InvalidInputError, MissingInputError, OutputExistsError
from pite.core.inputs import check_checkpoint_weights, check_safetensors_file
from pite.hub import build_from_base, convert_original, export_for_hub, push_to_hub
from pite.hub.export import load_checkpoint
from pite.hub.files import load_weights_file
from pite.hub.model_card import read_model_card_template


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"a": torch.arange(64, dtype=torch.float32), "b": torch.ones(3, 5)}, path)
    return path


def _fake_checkpoint(folder, weights):
    """Just enough of a PiTe folder to reach the weight check (config, processor config, weights)."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "pite"}))
    (folder / "processor_config.json").write_text("{}")
    shutil.copy(weights, folder / "model.safetensors")
    return folder


def _cut(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:keep])


def test_a_complete_safetensors_file_passes(weights):
    check_safetensors_file(weights)


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda p: _cut(p, -10),
            r"truncated or corrupted safetensors file: its header describes \d+ bytes, the file has",
        ),
        (lambda p: p.write_bytes(p.read_bytes() + b"\0" * 7), r"header describes \d+ bytes, the file has"),
        (lambda p: _cut(p, 5), r"not a safetensors file \(5 bytes"),
        (lambda p: _cut(p, 30), r"not a complete safetensors file \(header of \d+ bytes declared"),
        (lambda p: p.write_bytes(b"\x10\0\0\0\0\0\0\0" + b"{not json here!}" + b"\0" * 8), r"its header is not JSON"),
        (lambda p: p.write_bytes(b"PK\x03\x04" + b"\0" * 100), r"not a complete safetensors file"),
    ],
)
def test_damaged_safetensors_is_named(weights, damage, message):
    damage(weights)
    with pytest.raises(InvalidInputError, match=message) as caught:
        check_safetensors_file(weights)
    assert str(weights) in str(caught.value) and caught.value.path == weights


def test_sharded_checkpoint_missing_or_truncated_shard(tmp_path, weights):
    folder = tmp_path / "sharded"
    folder.mkdir()
    shutil.copy(weights, folder / "model-00001-of-00002.safetensors")
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})
    )
    with pytest.raises(MissingInputError, match="model-00002-of-00002.safetensors is missing"):
        check_checkpoint_weights(folder)
    shutil.copy(weights, folder / "model-00002-of-00002.safetensors")
    check_checkpoint_weights(folder)
    _cut(folder / "model-00002-of-00002.safetensors", -1)
    with pytest.raises(InvalidInputError, match="model-00002-of-00002.safetensors: truncated"):
        check_checkpoint_weights(folder)
    (folder / "model.safetensors.index.json").write_text("{")
    with pytest.raises(InvalidInputError, match="model.safetensors.index.json: not a safetensors index"):
        check_checkpoint_weights(folder)


def test_load_weights_file_names_missing_and_truncated_files(tmp_path, weights):
    with pytest.raises(MissingInputError, match="nothing.safetensors does not exist"):
        load_weights_file(tmp_path / "nothing.safetensors")
    _cut(weights, -3)
    with pytest.raises(InvalidInputError, match="model.safetensors: truncated"):
        load_weights_file(weights)


def test_loading_a_truncated_checkpoint_names_the_file(tmp_path, weights):
    """from_pretrained through our loader: the file is named, not safetensors' anonymous header error."""
    folder = _fake_checkpoint(tmp_path / "ckpt", weights)
    _cut(folder / "model.safetensors", -100)
    with pytest.raises(InvalidInputError, match="ckpt/model.safetensors: truncated"):
        load_checkpoint(folder)
    with pytest.raises(InvalidInputError, match="ckpt/model.safetensors: truncated"):
        export_for_hub(folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_corrupted_config_is_named(tmp_path, weights):
    folder = _fake_checkpoint(tmp_path / "ckpt", weights)
    (folder / "config.json").write_text('{"model_type": ')
    with pytest.raises(InvalidInputError, match=r"ckpt/config.json: cannot read the model config"):
        load_checkpoint(folder)


def test_export_onto_its_own_input_is_refused_even_with_overwrite(tmp_path, weights):
    source = _fake_checkpoint(tmp_path / "ckpt", weights)
    (source / "lora").mkdir()
    (source / "lora" / "adapter_model.safetensors").write_bytes(b"lora")
    (source / "pite_training.json").write_text("{}")
    for out in (source, tmp_path, tmp_path / "." / "ckpt"):
        with pytest.raises(OutputExistsError, match="would destroy that input"):
            export_for_hub(source, out, overwrite=True)
    assert (source / "lora" / "adapter_model.safetensors").read_bytes() == b"lora"
    assert (source / "pite_training.json").is_file()


@pytest.fixture
def no_loading(monkeypatch):
    """Loading any weights fails the test: existing outputs must be refused first."""

    def loaded(*args, **kwargs):
        raise AssertionError("weights were loaded before the output was checked")

    for module in ("pite.hub.build", "pite.hub.convert_original"):
        monkeypatch.setattr(sys.modules[module], "load_tokenizer", loaded)
    monkeypatch.setattr(sys.modules["pite.hub.export"], "load_checkpoint", loaded)


def test_existing_out_is_refused_before_loading(tmp_path, no_loading):
    for name in ("base", "clip", "s1", "s2", "s3", "ckpt"):
        (tmp_path / name).mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match=f"{out} already exists"):
        build_from_base(tmp_path / "base", tmp_path / "clip", out)
    with pytest.raises(OutputExistsError, match=f"{out} already exists"):
        convert_original(tmp_path / "base", tmp_path / "clip", [tmp_path / s for s in ("s1", "s2", "s3")], out)
    with pytest.raises(OutputExistsError, match=f"{out} already exists"):
        export_for_hub(tmp_path / "ckpt", out)
    with pytest.raises(OutputExistsError, match=r"is the input --llm .*would destroy that input"):
        build_from_base(tmp_path / "base", tmp_path / "clip", tmp_path / "base", overwrite=True)
    with pytest.raises(OutputExistsError, match=r"is the input --stage2 .*would destroy that input"):
        convert_original(
            tmp_path / "base",
            tmp_path / "clip",
            [tmp_path / s for s in ("s1", "s2", "s3")],
            tmp_path / "s2",
            overwrite=True,
        )
    assert (out / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "role, call",
    [
        ("--llm", lambda t: build_from_base(t / "missing", t, t / "out")),
        ("--base", lambda t: convert_original(t / "missing", t, [t, t, t], t / "out")),
        ("MODEL_DIR", lambda t: export_for_hub(t / "missing", t / "out")),
        ("OUT_DIR", lambda t: push_to_hub(t / "missing", "someone/x")),
    ],
)
def test_missing_folders_name_role_and_path(tmp_path, role, call):
    with pytest.raises(MissingInputError, match=f"{role}: {tmp_path / 'missing'} does not exist") as caught:
        call(tmp_path)
    assert caught.value.field == role


def test_push_names_a_corrupted_config(tmp_path):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "config.json").write_text("{")
    with pytest.raises(InvalidInputError, match="export/config.json: cannot read"):
        push_to_hub(tmp_path / "export", "someone/x")


def test_model_card_template_missing_or_not_text(tmp_path):
    with pytest.raises(MissingInputError, match="card.md does not exist"):
        read_model_card_template(tmp_path / "card.md")
    (tmp_path / "card.md").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(InvalidInputError, match="card.md: the model card template is not UTF-8"):
        read_model_card_template(tmp_path / "card.md")
