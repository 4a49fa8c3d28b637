"""transformers' `ModelTesterMixin` run on PiTe (see transformers_common.py for where the mixin comes from).

Tests of the mixin that do not apply to PiTe are skipped with the reason in `NOT_APPLICABLE`; a name there that the
mixin no longer has fails `test_every_listed_skip_exists`, so the list stays honest.
"""

from __future__ import annotations

import copy
import unittest

import pytest
import torch

from ..conftest import TINY_TEXT_CONFIG, TINY_VISION_CONFIG
from .generation_behaviours import PiTeGenerationTests

try:
    from ..transformers_common import common_tests, configuration_tests

    common = common_tests(PiTeGenerationTests)
    configuration_common = configuration_tests(PiTeGenerationTests)
except Exception as error:  # noqa: BLE001 - no network to PyPI: say why nothing ran
    pytest.skip(f"transformers' common tests unavailable: {error}", allow_module_level=True)

from transformers.models.auto import modeling_auto  # noqa: E402

from pite.modeling_pite import PiTeConfig, PiTeForConditionalGeneration, PiTeModel  # noqa: E402
from pite.modeling_pite.losses_pite import ABSENT_COORDINATE  # noqa: E402

# Low, so that the mixin's resize tests, which clamp ids to a smaller vocabulary, keep the placeholders, and above
# the ids (0-4) the mixin draws when it pads a batch with random rows.
VIDEO_TOKEN_ID = 5
NUM_FRAMES = 3

# (test name, why it does not apply to PiTe)
NOT_APPLICABLE: dict[str, str] = {
    "test_sdpa_can_dispatch_non_composite_models": (
        "PiTe is a composite model (CLIP tower + Llama): test_sdpa_can_dispatch_composite_models covers it"
    ),
    "test_can_init_all_missing_weights": (
        "transformers initialises custom-code models (PiTe) module by module and skips a module whose own parameters "
        "are done, so CLIP's parent-level init of its Linears (CLIPAttention, CLIPMLP, visual_projection) does not "
        "run from meta: the tower gets the generic init. Every PiTe-owned weight re-initialises as in __init__: "
        "test_transformers_conventions.py::test_missing_weights_outside_the_tower_initialise_as_in_init"
    ),
    **{
        f"test_model_rope_scaling_from_config_{i}_{kind}": (
            "feeds random token ids, which hold PiTe's <video> placeholder id, with no video: PiTe refuses "
            "placeholders without frames (test_forward.py::test_placeholders_without_video_are_rejected); "
            "RoPE scaling is Llama's"
        )
        for i, kind in enumerate(("linear", "dynamic", "yarn"))
    },
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

# Mixin tests that get PiTe's training inputs without point/trajectory targets, and why.
WITHOUT_REGRESSION_TARGETS = {
    # `shift_labels` is refused together with regression targets (they are shifted inside the model and cannot be
    # sharded that way: test_transformers_conventions.py::test_shift_labels_with_regression_targets_are_refused).
    "test_causal_lm_loss_honors_shift_labels",
}


class PiTeModelTester:
    def __init__(
        self, parent: unittest.TestCase, batch_size: int = 2, text_length: int = 6, freeze_vision_tower: bool = True
    ) -> None:
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
        self.vision_config = dict(TINY_VISION_CONFIG, image_size=self.image_size, patch_size=self.patch_size)
        self.text_config = dict(TINY_TEXT_CONFIG, vocab_size=self.vocab_size)

    def get_config(self) -> PiTeConfig:
        return PiTeConfig(
            vision_config=copy.deepcopy(self.vision_config),
            text_config=copy.deepcopy(self.text_config),
            num_frames=NUM_FRAMES,
            num_trajectory_points=2,
            video_token_id=VIDEO_TOKEN_ID,
            freeze_vision_tower=self.freeze_vision_tower,
        )

    def prepare_config_and_inputs_for_common(self) -> tuple[PiTeConfig, dict]:
        generator = torch.Generator().manual_seed(0)
        text_shape = (self.batch_size, self.seq_length - NUM_FRAMES - 1)
        text = torch.randint(VIDEO_TOKEN_ID + 1, self.vocab_size, text_shape, generator=generator)
        input_ids = torch.cat(
            [
                torch.ones(self.batch_size, 1, dtype=torch.long),
                torch.full((self.batch_size, NUM_FRAMES), VIDEO_TOKEN_ID),
                text,
            ],
            dim=1,
        )
        pixels = torch.rand(self.batch_size, NUM_FRAMES, 3, self.image_size, self.image_size, generator=generator)
        inputs = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), pixel_values_videos=pixels)
        return self.get_config(), inputs


# The mixin picks some tests by the class names in transformers' Auto tables (base model, image-text-to-text head);
# PiTe registers with the Auto classes at run time, not in those tables: list it there while the tests run.
AUTO_TABLE_ENTRIES = (
    (modeling_auto.MODEL_MAPPING_NAMES, PiTeModel.__name__),
    (modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES, PiTeForConditionalGeneration.__name__),
)


class PiTeModelTest(common.ModelTesterMixin, PiTeGenerationTests, unittest.TestCase):
    all_model_classes = (PiTeModel, PiTeForConditionalGeneration)
    _is_composite = True
    additional_model_inputs = ["pixel_values_videos"]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        for table, class_name in AUTO_TABLE_ENTRIES:
            table[PiTeConfig.model_type] = class_name
            cls.addClassCleanup(table.pop, PiTeConfig.model_type, None)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        # The mixin adds labels for the causal-LM / image-text-to-text classes it knows by name; PiTe is one too, and
        # its training batches also carry point and trajectory targets (so that every head gets a gradient).
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels:
            ids = inputs["input_ids"]
            inputs["labels"] = ids.masked_fill(ids == VIDEO_TOKEN_ID, -100)
            if self._testMethodName in WITHOUT_REGRESSION_TARGETS:
                return inputs
            text = ids != VIDEO_TOKEN_ID
            config = self.model_tester.get_config()
            generator = torch.Generator().manual_seed(1)
            points = torch.rand(*ids.shape, config.coordinate_dim, generator=generator)
            trajectories = torch.rand(
                *ids.shape, config.num_trajectory_points, config.num_frames, config.coordinate_dim, generator=generator
            )
            inputs["point_labels"] = points.masked_fill(~text[..., None], ABSENT_COORDINATE)
            inputs["trajectory_labels"] = trajectories.masked_fill(~text[..., None, None, None], ABSENT_COORDINATE)
        return inputs

    def setUp(self) -> None:
        settings = next(
            (value for prefix, value in TESTER_SETTINGS.items() if self._testMethodName.startswith(prefix)), {}
        )
        self.model_tester = PiTeModelTester(self, **settings)

    def test_config(self) -> None:
        """transformers' `ConfigTester` on PiTeConfig (composite: no text-modality fields at the top level). Its
        JSON round trip compares every given value as is, so only PiTe's own scalar fields are given."""
        tester = configuration_common.ConfigTester(
            self,
            config_class=PiTeConfig,
            has_text_modality=False,
            num_frames=NUM_FRAMES,
            num_trajectory_points=2,
            vision_feature="cls",
            localization_loss_weight=0.5,
            label_smoothing=0.1,
            freeze_vision_tower=False,
        )
        tester.run_common_tests()

    def test_every_listed_skip_exists(self) -> None:
        missing = sorted(name for name in NOT_APPLICABLE if not hasattr(self, name))
        self.assertEqual(missing, [], "NOT_APPLICABLE names tests the mixin does not have")


for _name, _reason in NOT_APPLICABLE.items():
    if hasattr(PiTeModelTest, _name):
        setattr(PiTeModelTest, _name, unittest.skip(_reason)(getattr(PiTeModelTest, _name)))
