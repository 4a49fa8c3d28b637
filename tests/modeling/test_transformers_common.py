"""transformers' `ModelTesterMixin` run on PiTe (see transformers_common.py for where the mixin comes from).

Tests of the mixin that do not apply to PiTe are skipped with the reason in `NOT_APPLICABLE`; a name there that the
mixin no longer has fails `test_every_listed_skip_exists`, so the list stays honest.
"""

from __future__ import annotations

import copy
import unittest

import pytest
import torch

from .generation_behaviours import PiTeGenerationTests

try:
    from .transformers_common import common_tests

    common = common_tests(PiTeGenerationTests)
except Exception as error:  # noqa: BLE001 - no network to PyPI: say why nothing ran
    pytest.skip(f"transformers' common tests unavailable: {error}", allow_module_level=True)

from pite.modeling_pite import PiTeConfig, PiTeForConditionalGeneration  # noqa: E402

# Low, so that the mixin's resize tests, which clamp ids to a smaller vocabulary, keep the placeholders, and above
# the ids (0-4) the mixin draws when it pads a batch with random rows.
VIDEO_TOKEN_ID = 5
NUM_FRAMES = 3

# (test name, why it does not apply to PiTe)
NOT_APPLICABLE: dict[str, str] = {
    "test_multimodal_outputs_are_returned": (
        "checks `image_outputs` only (its own FIXME: video not yet covered); PiTe's common inputs are videos, whose "
        "tower outputs are `video_outputs`: see test_forward.py::test_vision_tower_outputs_are_returned"
    ),
}


# Per-test tester settings, where a mixin test needs inputs PiTe's default tester does not give.
TESTER_SETTINGS = {
    # The test pads the batch to 7 rows with random ids and random pixels, which cannot hold one placeholder per
    # frame: give it 7 real rows instead.
    "test_eager_matches_sdpa_inference": dict(batch_size=7),
    # The test watches the first checkpointing layer, which is the vision tower's: PiTe freezes the tower by default
    # and runs it without autograd, where there is nothing to checkpoint. Train it here.
    "test_training_gradient_checkpointing": dict(freeze_vision_tower=False),
}


class PiTeModelTester:
    def __init__(self, parent: unittest.TestCase, batch_size: int = 2, text_length: int = 6,
                 freeze_vision_tower: bool = True) -> None:
        self.freeze_vision_tower = freeze_vision_tower
        self.parent = parent
        self.batch_size = batch_size
        self.num_frames = NUM_FRAMES
        self.seq_length = text_length + NUM_FRAMES
        self.is_training = True
        self.vocab_size = 64
        self.hidden_size = 32
        self.num_hidden_layers = 2
        self.num_attention_heads = 4
        self.image_size = 28
        self.patch_size = 14
        self.vision_config = dict(hidden_size=32, intermediate_size=64, projection_dim=24, num_hidden_layers=2,
                                  num_attention_heads=2, image_size=self.image_size, patch_size=self.patch_size)
        self.text_config = dict(vocab_size=self.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                pad_token_id=0, bos_token_id=1, eos_token_id=2)

    def get_config(self) -> PiTeConfig:
        return PiTeConfig(vision_config=copy.deepcopy(self.vision_config), text_config=copy.deepcopy(self.text_config),
                          num_frames=NUM_FRAMES, num_trajectory_points=2, video_token_id=VIDEO_TOKEN_ID,
                          freeze_vision_tower=self.freeze_vision_tower)

    def prepare_config_and_inputs_for_common(self) -> tuple[PiTeConfig, dict]:
        generator = torch.Generator().manual_seed(0)
        text = torch.randint(VIDEO_TOKEN_ID + 1, self.vocab_size, (self.batch_size, self.seq_length - NUM_FRAMES - 1), generator=generator)
        input_ids = torch.cat([torch.ones(self.batch_size, 1, dtype=torch.long),
                               torch.full((self.batch_size, NUM_FRAMES), VIDEO_TOKEN_ID), text], dim=1)
        pixels = torch.rand(self.batch_size, NUM_FRAMES, 3, self.image_size, self.image_size, generator=generator)
        inputs = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), pixel_values_videos=pixels)
        return self.get_config(), inputs


class PiTeModelTest(common.ModelTesterMixin, PiTeGenerationTests, unittest.TestCase):
    all_model_classes = (PiTeForConditionalGeneration,)
    _is_composite = True
    additional_model_inputs = ["pixel_values_videos"]

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        # The mixin adds labels for the causal-LM / image-text-to-text classes it knows by name; PiTe is one too.
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels:
            inputs["labels"] = inputs["input_ids"].masked_fill(inputs["input_ids"] == VIDEO_TOKEN_ID, -100)
        return inputs

    def setUp(self) -> None:
        settings = next((value for prefix, value in TESTER_SETTINGS.items()
                         if self._testMethodName.startswith(prefix)), {})
        self.model_tester = PiTeModelTester(self, **settings)

    def test_every_listed_skip_exists(self) -> None:
        missing = sorted(name for name in NOT_APPLICABLE if not hasattr(self, name))
        self.assertEqual(missing, [], "NOT_APPLICABLE names tests the mixin does not have")


for _name, _reason in NOT_APPLICABLE.items():
    if hasattr(PiTeModelTest, _name):
        setattr(PiTeModelTest, _name, unittest.skip(_reason)(getattr(PiTeModelTest, _name)))
