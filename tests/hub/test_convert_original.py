"""`pite convert-original`: the authors' release layout -> PiTe, numerically equal to the original model.

The test plays the authors: a tiny model with the release's module layout and key names is trained in three
stages (random non-LoRA trainables and random non-zero LoRA weights per stage, merged after each stage), and each
stage is saved in the release's folder layout. The converter sees only those folders; its output must reproduce
the in-memory reference's logits (on the original vocabulary rows), points and trajectories.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import AutoTokenizer, LlamaForCausalLM

from pite.cli.main import main as pite_main
from pite.hub import merge_original_stages
from pite.modeling_pite import PiTeForConditionalGeneration
from pite.processing import PiTeProcessor

from .conftest import NUM_FRAMES, VISION_SIZES

PLACEHOLDER = -200  # the release's VIDEO_TOKEN_INDEX: a negative id, not a vocabulary entry
POINTS = 3
FEATURE_DIM = VISION_SIZES["projection_dim"]
LLM_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class OriginalLayoutPiTe(LlamaForCausalLM):
    """The release's PiTeLlamaForCausalLM layout: three extra Linear modules on `.model`; the forward splices the
    adapted frame features at the single negative placeholder, as the release's `prepare_inputs_labels_for_video`."""

    def __init__(self, config) -> None:
        super().__init__(config)
        hidden = config.hidden_size
        self.model.vision_adapter = nn.Linear(FEATURE_DIM, hidden)
        self.model.localization_projector = nn.Linear(hidden, 2)
        self.model.trajectory_projector = nn.Linear(hidden, POINTS * NUM_FRAMES * 2)

    @torch.no_grad()
    def predict(self, ids: list[int], features: torch.Tensor):
        """ids holding one PLACEHOLDER; features (N, D). Returns logits (L, V), points (L, 2), trajectories
        (L, P, N, 2)."""
        at = ids.index(PLACEHOLDER)
        embed = self.model.embed_tokens
        pieces = [
            embed(torch.tensor(ids[:at])),
            self.model.vision_adapter(features),
            embed(torch.tensor(ids[at + 1 :])),
        ]
        # The release reads hidden_states[-1] of transformers 4.x, which is the final-norm output: last_hidden_state.
        hidden = self.model(inputs_embeds=torch.cat(pieces)[None]).last_hidden_state[0]
        trajectories = self.model.trajectory_projector(hidden).view(-1, POINTS, NUM_FRAMES, 2)
        return self.lm_head(hidden), self.model.localization_projector(hidden), trajectories


def _randomize(module: nn.Linear, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * 0.2)
        module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.2)


def _state(module: nn.Linear, name: str, prefix: str) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}model.{name}.weight": module.weight.detach().clone(),
        f"{prefix}model.{name}.bias": module.bias.detach().clone(),
    }


def _train_stage(reference, stage_dir: Path, seed: int, target_modules, safetensors: bool):
    """Wrap with a random non-zero LoRA, save the adapter in stage_dir, merge it: the next stage's base."""
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=target_modules, init_lora_weights=False)
    peft_model = get_peft_model(reference, config)
    peft_model.save_pretrained(stage_dir, safe_serialization=safetensors)
    return peft_model.merge_and_unload()


@pytest.fixture(scope="module")
def release(tmp_path_factory, llm_dir):
    """(the release's folders, the reference model after all three stages)."""
    root = tmp_path_factory.mktemp("release")
    stages = [root / f"pite-vicuna-tiny-stage{i}" for i in (1, 2, 3)]
    for stage in stages:
        stage.mkdir()
    reference = OriginalLayoutPiTe(LlamaForCausalLM.from_pretrained(llm_dir).config)
    missing, unexpected = reference.load_state_dict(
        LlamaForCausalLM.from_pretrained(llm_dir).state_dict(), strict=False
    )
    assert not unexpected and all(
        k.split(".")[1] in ("vision_adapter", "localization_projector", "trajectory_projector") for k in missing
    )
    layout = reference.model
    # Stage 1: adapter (its own file, keys as LLaVA's projector files) and localization projector (non-LoRA,
    # "base_model.model.model." keys) are trained with a LoRA.
    _randomize(layout.vision_adapter, 1)
    _randomize(layout.localization_projector, 2)
    torch.save(_state(layout.vision_adapter, "vision_adapter", ""), stages[0] / "vision_adapter.bin")
    torch.save(
        _state(layout.localization_projector, "localization_projector", "base_model.model."),
        stages[0] / "non_lora_trainables.bin",
    )
    reference = _train_stage(reference, stages[0], 101, LLM_LINEAR, safetensors=True)
    # Stage 2: trajectory projector (non-LoRA, "model.model." keys) and a new LoRA saved as adapter_model.bin.
    layout = reference.model
    _randomize(layout.trajectory_projector, 3)
    torch.save(
        _state(layout.trajectory_projector, "trajectory_projector", "model."), stages[1] / "non_lora_trainables.bin"
    )
    reference = _train_stage(reference, stages[1], 102, LLM_LINEAR, safetensors=False)
    # Stage 3: LoRA only, on every Linear but lm_head, as the release's find_all_linear_names (heads included).
    torch.save({}, stages[2] / "non_lora_trainables.bin")
    reference = _train_stage(
        reference,
        stages[2],
        103,
        LLM_LINEAR + ["vision_adapter", "localization_projector", "trajectory_projector"],
        safetensors=True,
    )
    assert (stages[1] / "adapter_model.bin").is_file() and (stages[0] / "adapter_model.safetensors").is_file()
    return stages, reference.eval()


@pytest.fixture(scope="module")
def converted(tmp_path_factory, release, llm_dir, clip_dir) -> Path:
    """The release's three stages through `pite convert-original` (once for the tests that only read the result)."""
    stages, _ = release
    out = tmp_path_factory.mktemp("converted") / "converted"
    status = pite_main(
        [
            "convert-original",
            "--base",
            str(llm_dir),
            "--clip",
            str(clip_dir),
            *[arg for i, stage in enumerate(stages) for arg in (f"--stage{i + 1}", str(stage))],
            "--out",
            str(out),
            "--num-frames",
            str(NUM_FRAMES),
            "--dtype",
            "float32",
        ]
    )
    assert status == 0
    return out


def test_converted_model_matches_the_original_layout(release, llm_dir, converted):
    _, reference = release
    out = converted
    model = PiTeForConditionalGeneration.from_pretrained(out).eval()
    processor = PiTeProcessor.from_pretrained(out)
    original_vocab = len(AutoTokenizer.from_pretrained(llm_dir))
    video_id = processor.video_token_id
    assert video_id == model.config.video_token_id == original_vocab  # appended after the original 32000-like rows

    generator = torch.Generator().manual_seed(5)
    for prompt_length, at in ((12, 4), (7, 1)):
        ids = torch.randint(3, original_vocab, (prompt_length,), generator=generator).tolist()
        features = torch.randn(NUM_FRAMES, FEATURE_DIM, generator=generator)
        logits, points, trajectories = reference.predict(ids[:at] + [PLACEHOLDER] + ids[at:], features)
        ours_ids = torch.tensor([ids[:at] + [video_id] * NUM_FRAMES + ids[at:]])
        with torch.no_grad():
            ours = model(input_ids=ours_ids, video_features=features[None])
        torch.testing.assert_close(ours.logits[0, :, :original_vocab], logits, rtol=0, atol=1e-5)
        torch.testing.assert_close(ours.point_predictions[0], points, rtol=0, atol=1e-5)
        torch.testing.assert_close(ours.trajectory_predictions[0], trajectories, rtol=0, atol=1e-5)
    # The LoRAs changed the model: matching the un-merged base would mean they were not applied.
    base = LlamaForCausalLM.from_pretrained(llm_dir)
    assert not torch.allclose(
        base.model.layers[0].self_attn.q_proj.weight, model.model.language_model.layers[0].self_attn.q_proj.weight
    )


def test_vision_adapter_of_stage_2_wins_over_stage_1(tmp_path, release, llm_dir):
    stages, _ = release
    copied = [Path(shutil.copytree(stage, tmp_path / stage.name)) for stage in stages]
    without = merge_original_stages(llm_dir, copied, FEATURE_DIM, POINTS * NUM_FRAMES * 2, torch.float32)
    stage1_file = torch.load(copied[0] / "vision_adapter.bin")
    stage2_file = {k: torch.randn_like(v) for k, v in stage1_file.items()}
    torch.save(
        {"base_model.model.model.vision_adapter." + k.split(".")[-1]: v for k, v in stage2_file.items()},
        copied[1] / "vision_adapter.bin",
    )
    with_stage2 = merge_original_stages(llm_dir, copied, FEATURE_DIM, POINTS * NUM_FRAMES * 2, torch.float32)
    # The stage-3 LoRA adds the same delta to whichever adapter was loaded.
    for kind in ("weight", "bias"):
        key = f"model.vision_adapter.{kind}"
        delta = with_stage2.get_parameter(key) - without.get_parameter(key)
        torch.testing.assert_close(delta, stage2_file[key] - stage1_file[key], rtol=0, atol=1e-6)


def test_release_problems_are_named(tmp_path, release, llm_dir, clip_dir):
    stages, _ = release
    copied = [Path(shutil.copytree(stage, tmp_path / stage.name)) for stage in stages]
    dims = (FEATURE_DIM, POINTS * NUM_FRAMES * 2, torch.float32)

    torch.save({}, copied[1] / "non_lora_trainables.bin")  # the trajectory projector is never provided
    with pytest.raises(ValueError, match=r"no stage provides model\.trajectory_projector\.weight"):
        merge_original_stages(llm_dir, copied, *dims)

    planted = torch.load(stages[1] / "non_lora_trainables.bin")
    planted["base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"] = torch.zeros(1)
    torch.save(planted, copied[1] / "non_lora_trainables.bin")
    with pytest.raises(ValueError, match=r"stage2.*non_lora_trainables\.bin.*base_layer.*--skip-unmatched-keys"):
        merge_original_stages(llm_dir, copied, *dims)
    # The release's own behaviour, on request: the unmatched key is dropped, the rest loads.
    skipped = merge_original_stages(llm_dir, copied, *dims, skip_unmatched=True)
    reference = merge_original_stages(llm_dir, stages, *dims)
    assert torch.equal(skipped.model.trajectory_projector.weight, reference.model.trajectory_projector.weight)

    with pytest.raises(ValueError, match=r"trajectory_projector\.weight has shape.*--num-frames"):
        merge_original_stages(llm_dir, stages, FEATURE_DIM, POINTS * 5 * 2, torch.float32)

    (copied[2] / "adapter_config.json").unlink()
    status = pite_main(
        [
            "convert-original",
            "--base",
            str(llm_dir),
            "--clip",
            str(clip_dir),
            "--stage1",
            str(stages[0]),
            "--stage2",
            str(stages[1]),
            "--stage3",
            str(copied[2]),
            "--out",
            str(tmp_path / "out"),
            "--num-frames",
            str(NUM_FRAMES),
        ]
    )
    assert status == 2 and not (tmp_path / "out").exists()


def _release_ids(tokenizer, prompt: str) -> list[int]:
    """The release's `tokenizer_video_token`: chunks around "<video>" tokenized alone, BOS once, one placeholder."""
    chunks = [tokenizer(chunk).input_ids for chunk in prompt.split("<video>")]
    has_bos = bool(chunks[0]) and chunks[0][0] == tokenizer.bos_token_id
    ids = list(chunks[0])
    for chunk in chunks[1:]:
        ids += [PLACEHOLDER] + list(chunk[1:] if has_bos else chunk)
    return ids


def test_converted_release_answers_as_the_release_on_its_own_inputs(tmp_path, release, llm_dir, clip_dir, converted):
    """Greedy answer of the converted checkpoint through PiTeProcessor + generate == the release replica's greedy
    answer on inputs built the release's way: full decode + int32 linspace frames, CLIP image_embeds, chunked ids."""
    import av
    import numpy as np
    from transformers import CLIPImageProcessorPil, CLIPVisionModelWithProjection

    from pite.processing import V1_SYSTEM

    from .conftest import write_test_video

    _, reference = release
    out = converted
    model = PiTeForConditionalGeneration.from_pretrained(out).eval()
    processor = PiTeProcessor.from_pretrained(out)
    video = write_test_video(tmp_path / "clip.mp4", num_frames=23)
    question = "What is moving in the video?"

    # The release's side, written from its code (inference.py, utils/misc.py, utils/mm_utils.py, conversation v1).
    with av.open(video) as container:
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    picked = frames[np.linspace(0, len(frames) - 1, NUM_FRAMES, dtype=np.int32)]
    pixels = CLIPImageProcessorPil.from_pretrained(clip_dir)(list(picked), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        features = CLIPVisionModelWithProjection.from_pretrained(clip_dir)(pixel_values=pixels).image_embeds
    tokenizer = AutoTokenizer.from_pretrained(llm_dir)
    ids = _release_ids(tokenizer, f"{V1_SYSTEM} USER: <video>\n{question} ASSISTANT:")
    release_answer = []
    for _ in range(8):
        logits, _, _ = reference.predict(ids + release_answer, features)
        release_answer.append(int(logits[-1].argmax()))
        if release_answer[-1] == tokenizer.eos_token_id:
            break

    # Ours: the chat template, the processor and generate.
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=prompt, videos=video)
    expected_ids = [i if i != PLACEHOLDER else processor.video_token_id for i in ids]
    position = expected_ids.index(processor.video_token_id)
    expected_ids[position : position + 1] = [processor.video_token_id] * NUM_FRAMES
    assert inputs["input_ids"][0].tolist() == expected_ids
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    ours = output[0, inputs["input_ids"].shape[1] :].tolist()
    assert ours[: len(release_answer)] == release_answer
    assert len(release_answer) >= 4, "too short an answer to show much"


def test_damaged_release_files_are_named(tmp_path, release, llm_dir):
    """A truncated LoRA safetensors, an adapter config that is not JSON, an unreadable vision_adapter.bin: each
    error names the file (not safetensors' / peft's / torch's anonymous error)."""
    from pite.core.errors import InvalidInputError

    stages, _ = release
    dims = (FEATURE_DIM, POINTS * NUM_FRAMES * 2, torch.float32)
    damages = [
        ("stage1", "adapter_model.safetensors", lambda p: p.write_bytes(p.read_bytes()[:-16]), "truncated"),
        ("stage3", "adapter_config.json", lambda p: p.write_text('{"peft_type": '), "cannot read the LoRA adapter"),
        ("stage1", "vision_adapter.bin", lambda p: p.write_bytes(b"not a pickle"), "not a readable PyTorch weights"),
    ]
    for number, (stage, name, damage, message) in enumerate(damages):
        copied = [Path(shutil.copytree(stage_dir, tmp_path / str(number) / stage_dir.name)) for stage_dir in stages]
        if name == "vision_adapter.bin":
            (copied[1] / name).unlink(missing_ok=True)  # stage 2's copy would win over stage 1's
        target = copied[int(stage[-1]) - 1] / name
        damage(target)
        with pytest.raises(InvalidInputError, match=message) as caught:
            merge_original_stages(llm_dir, copied, *dims)
        assert str(target) in str(caught.value)
