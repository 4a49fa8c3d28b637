"""`pite build`: base checkpoints -> an untrained PiTe whose copied weights equal the sources and which runs."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, CLIPVisionModelWithProjection, LlamaForCausalLM

from pite.cli.main import main as pite_main
from pite.hub import build_from_base
from pite.modeling_pite import PiTeForConditionalGeneration
from pite.processing import PiTeProcessor

from .conftest import IMAGE_SIZE, NUM_FRAMES


def _assert_copied(model: PiTeForConditionalGeneration, llm_dir, vision_dir) -> None:
    llm = LlamaForCausalLM.from_pretrained(llm_dir)
    vision = CLIPVisionModelWithProjection.from_pretrained(vision_dir)
    ours = model.state_dict()
    old_vocab = llm.config.vocab_size
    for name, tensor in llm.state_dict().items():
        key = name if name.startswith("lm_head.") else "model.language_model." + name[len("model.") :]
        copied = ours[key][:old_vocab] if name in ("model.embed_tokens.weight", "lm_head.weight") else ours[key]
        assert torch.equal(copied, tensor), key
    for name, tensor in vision.state_dict().items():
        assert torch.equal(ours["model.vision_tower." + name], tensor), name
    assert "model.vision_tower.visual_projection.weight" in ours


def test_build_copies_weights_adds_video_token_and_runs(tmp_path, llm_dir, clip_dir):
    out = tmp_path / "pite"
    status = pite_main(
        [
            "build",
            "--llm",
            str(llm_dir),
            "--vision",
            str(clip_dir),
            "--out",
            str(out),
            "--num-frames",
            str(NUM_FRAMES),
            "--dtype",
            "float32",
        ]
    )
    assert status == 0
    source_tokenizer = AutoTokenizer.from_pretrained(llm_dir)
    model = PiTeForConditionalGeneration.from_pretrained(out).eval()
    processor = PiTeProcessor.from_pretrained(out)

    # <video> is a new special token with a new embedding row; the old rows are untouched.
    video_id = processor.video_token_id
    assert video_id == len(source_tokenizer) == model.config.video_token_id
    assert model.config.text_config.vocab_size == len(source_tokenizer) + 1
    assert model.get_input_embeddings().weight.shape[0] == model.lm_head.weight.shape[0] == video_id + 1
    assert processor.tokenizer.tokenize("USER: <video>\nhi").count("<video>") == 1
    assert processor.tokenizer.pad_token == "<unk>" and processor.tokenizer.padding_side == "left"
    assert processor.num_frames == NUM_FRAMES == model.config.num_frames
    assert processor.image_processor.crop_size == {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    _assert_copied(model, llm_dir, clip_dir)

    # Fresh heads: trajectory head = localization head repeated P * N times (eq. 9), adapter not zero.
    repeats = model.config.num_trajectory_points * NUM_FRAMES
    assert torch.equal(model.trajectory_head.weight, model.localization_head.weight.repeat(repeats, 1))
    assert model.model.video_adapter.weight.abs().sum() > 0
    assert not any(p.requires_grad for p in model.model.vision_tower.parameters())

    # No source path leaks into the saved config (nested configs keep `_name_or_path` otherwise).
    config_text = (out / "config.json").read_text()
    assert str(llm_dir) not in config_text and str(clip_dir) not in config_text
    assert json.loads(config_text)["auto_map"]["AutoModel"] == "modeling_pite.PiTeForConditionalGeneration"

    # A forward pass from processor inputs (decoded frames) runs and has the documented shapes.
    frames = (torch.rand(6, 40, 50, 3) * 255).to(torch.uint8).numpy()
    inputs = processor(
        text=processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What moves?"}]}],
            add_generation_prompt=True,
        ),
        videos=frames,
        video_fps=5,
    )
    with torch.no_grad():
        output = model(**inputs)
    length = inputs["input_ids"].shape[1]
    assert output.logits.shape == (1, length, video_id + 1)
    assert output.trajectory_predictions.shape == (1, length, 3, NUM_FRAMES, 2)
    assert torch.isfinite(output.logits).all() and torch.isfinite(output.trajectory_predictions).all()


def test_build_accepts_a_vision_with_projection_folder_and_a_dtype(tmp_path, llm_dir, clip_vision_dir):
    out = build_from_base(llm_dir, clip_vision_dir, tmp_path / "pite", num_frames=NUM_FRAMES, dtype=torch.bfloat16)
    weights = load_file(out / "model.safetensors")
    assert {tensor.dtype for tensor in weights.values()} == {torch.bfloat16}
    model = PiTeForConditionalGeneration.from_pretrained(out, dtype=torch.float32)
    vision = CLIPVisionModelWithProjection.from_pretrained(clip_vision_dir)
    projection = model.model.vision_tower.visual_projection.weight
    assert torch.equal(projection, vision.visual_projection.weight.to(torch.bfloat16).float())


def test_build_rejects_a_vision_tower_without_projection(tmp_path, llm_dir):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from .conftest import VISION_SIZES, _save_image_processor

    folder = tmp_path / "clip-no-projection"
    CLIPVisionModel(CLIPVisionConfig(**VISION_SIZES)).save_pretrained(folder)
    _save_image_processor(folder)
    with pytest.raises(ValueError, match="visual_projection"):
        build_from_base(llm_dir, folder, tmp_path / "pite", num_frames=NUM_FRAMES)
    assert not (tmp_path / "pite").exists()


def test_build_errors_name_the_bad_input(tmp_path, llm_dir, clip_dir, capsys, monkeypatch):
    with pytest.raises(ValueError, match=r"model_type is 'clip'.*Llama"):
        build_from_base(clip_dir, clip_dir, tmp_path / "a")
    bare_clip = tmp_path / "clip-without-processor"
    bare_clip.mkdir()
    (bare_clip / "config.json").write_text((clip_dir / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="preprocessor_config.json"):
        build_from_base(llm_dir, bare_clip, tmp_path / "b")
    sentencepiece_only = tmp_path / "vicuna-sentencepiece-only"  # Vicuna ships tokenizer.model, no tokenizer.json
    sentencepiece_only.mkdir()
    (sentencepiece_only / "tokenizer.model").write_bytes(b"\x00")
    import pite.hub.assemble as assemble

    monkeypatch.setattr(assemble, "find_spec", lambda name: None if name == "sentencepiece" else object())
    with pytest.raises(
        ValueError, match=r"tokenizer\.model.*pip install sentencepiece protobuf.*missing: sentencepiece\)$"
    ):
        build_from_base(sentencepiece_only, clip_dir, tmp_path / "c")
    existing = tmp_path / "exists"
    existing.mkdir()
    status = pite_main(["build", "--llm", str(llm_dir), "--vision", str(clip_dir), "--out", str(existing)])
    assert status == 2 and "already exists" in capsys.readouterr().err
    assert list(existing.iterdir()) == []
    # no partial folders
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "clip-without-processor",
        "exists",
        "vicuna-sentencepiece-only",
    ]
