"""transformers' `ProcessorTesterMixin` and `VideoProcessingTestMixin` run on PiTe's processors.

The mixins are transformers' code, fetched at test time from the installed version's sdist
(`tests/transformers_common.py`), never copied here. Every mixin test that does not apply to PiTe is skipped below
with its reason.
"""

from __future__ import annotations

import unittest

import pytest

pytest.importorskip("parameterized", reason="transformers' common tests need `parameterized` (the test extra)")

from ..transformers_common import processing_tests, video_processing_tests  # noqa: E402

processing_common = processing_tests()
video_processing_common = video_processing_tests()

NUM_FRAMES = 4
CORPUS = ["lower newer upper older longer string", "A chat between a curious user and an assistant."] * 10


def _tiny_tokenizer():
    from pite.demo.tokenizer import train_llama_tokenizer

    return train_llama_tokenizer(CORPUS, vocab_size=300)


def _skip(reason: str):
    """A mixin test replaced by a skip that names why it does not apply to PiTe."""

    def test(self, *args, **kwargs):
        self.skipTest(reason)

    return test


NO_NETWORK = "reads sample media from Hugging Face Hub URLs; the test suite runs offline"
NO_AUDIO = "PiTe takes no audio"
NO_FPS_SAMPLING = (
    "PiTe samples num_frames frames spread over the whole video (the release's rule); sampling at a "
    "target fps is refused"
)
NO_MIXED_VISUALS = (
    "PiTe takes videos or images in one call, not both: each fills a <video> placeholder, so mixing "
    "them would make the placeholders ambiguous"
)


class PiTeProcessorTest(processing_common.ProcessorTesterMixin, unittest.TestCase):
    from pite.processing import PiTeProcessor as processor_class

    @classmethod
    def _setup_image_processor(cls):
        from transformers import CLIPImageProcessorPil

        return CLIPImageProcessorPil(size={"shortest_edge": 20}, crop_size={"height": 18, "width": 18})

    @classmethod
    def _setup_video_processor(cls):
        from pite.processing import PiTeVideoProcessor

        return PiTeVideoProcessor(
            size={"shortest_edge": 20}, crop_size={"height": 18, "width": 18}, num_frames=NUM_FRAMES
        )

    @classmethod
    def _setup_tokenizer(cls):
        return _tiny_tokenizer()

    def get_component(self, attribute, use_tiny_ckpt=True, **kwargs):
        # transformers makes AutoVideoProcessor require torchvision; the class loads itself without it.
        if attribute == "video_processor":
            from pite.processing import PiTeVideoProcessor

            return PiTeVideoProcessor.from_pretrained(self.tmpdirname, **kwargs)
        return super().get_component(attribute, use_tiny_ckpt=use_tiny_ckpt, **kwargs)


def _skip_tests(test_class: type, reasons: dict[str, str]) -> None:
    """Replace the mixin tests named in `reasons` (and their parameterized variants, `name_0`, ...) by skips."""
    names = [name for name in dir(test_class) if name.startswith("test_")]
    for prefix, reason in reasons.items():
        # parameterized.expand adds `name_0`, `name_1`, ...; the bare name then is no test of its own
        variants = [
            name for name in names if name.startswith(prefix + "_") and name[len(prefix) + 1 :].split("_")[0].isdigit()
        ]
        matched = variants or [name for name in names if name == prefix]
        assert matched, f"no mixin test named {prefix}: update the skip list"
        for name in matched:
            setattr(test_class, name, _skip(reason))


_skip_tests(
    PiTeProcessorTest,
    {
        "test_apply_chat_template_audio": NO_AUDIO,
        "test_chat_template_audio_sampling_rate": NO_AUDIO,
        "test_chat_template_audio_from_video": NO_AUDIO,
        "test_get_num_multimodal_tokens_matches_processor_call_audio": NO_AUDIO,
        "test_apply_chat_template_video_frame_sampling": NO_NETWORK,
        "test_apply_chat_template_video": NO_NETWORK,
        "test_apply_chat_template_image": NO_NETWORK,
        "test_model_input_names": NO_MIXED_VISUALS,
        "test_flat_kwarg_applied_when_modality_dict_lacks_it": NO_MIXED_VISUALS,
        "test_processor_text_has_no_visual": NO_MIXED_VISUALS,
        "test_processor_with_multiple_inputs": NO_MIXED_VISUALS,
        "test_replacement_offsets": (
            "PiTe expands <video> at the id level (the release's chunked tokenization), not by replacing text, so "
            "there are no text replacements to report; its offsets refer to the text as given"
        ),
        "test_get_num_multimodal_tokens_matches_processor_call_video": (
            "the helper counts tokens under the processor's defaults (num_frames sampled per video); the test calls "
            "with do_sample_frames=False, which the helper cannot see (tested with the defaults in "
            "test_processor_kwargs.py)"
        ),
        "test_processor_from_and_save_pretrained_as_nested_dict": (
            "loads each component through its Auto class: transformers' AutoVideoProcessor requires torchvision "
            "(no CPU build here), and transformers' remote-code saving writes the processor's auto_map into the image "
            "processor's config, so AutoImageProcessor asks for trust_remote_code; the round trip through "
            "PiTeProcessor.from_pretrained is test_processor_from_and_save_pretrained"
        ),
    },
)


class PiTeVideoProcessingTest(video_processing_common.VideoProcessingTestMixin, unittest.TestCase):
    from pite.processing import PiTeVideoProcessor as fast_video_processing_class

    def setUp(self):
        super().setUp()
        self.video_processor_dict = {
            "size": {"shortest_edge": 20},
            "crop_size": {"height": 18, "width": 18},
            "do_normalize": True,
            "image_mean": [0.5] * 3,
            "image_std": [0.5] * 3,
            "do_convert_rgb": True,
            "num_frames": NUM_FRAMES,
        }
        self.video_processor_tester = VideoProcessorTester()


class VideoProcessorTester:
    """What `VideoProcessingTestMixin` asks of a model's tester: sizes, inputs and expected output shapes."""

    batch_size = 3
    num_channels = 3
    num_frames = 8
    min_resolution = 30
    max_resolution = 60

    def prepare_video_inputs(self, equal_resolution=False, return_tensors="pil"):
        return video_processing_common.prepare_video_inputs(
            batch_size=self.batch_size,
            num_frames=self.num_frames,
            num_channels=self.num_channels,
            min_resolution=self.min_resolution,
            max_resolution=self.max_resolution,
            equal_resolution=equal_resolution,
            return_tensors=return_tensors,
        )

    def expected_output_video_shape(self, videos):
        return [NUM_FRAMES, self.num_channels, 18, 18]


def _auto_video_processor_needs_torchvision(self):
    from transformers.utils import is_torchvision_available

    if not is_torchvision_available():
        self.skipTest(
            "transformers' AutoVideoProcessor requires torchvision, which has no CPU build here; "
            "test_auto_classes_with_torchvision.py loads PiTe's through it in a side environment with "
            "torchvision"
        )
    video_processing_common.VideoProcessingTestMixin.test_video_processor_save_load_with_autovideoprocessor(self)


PiTeVideoProcessingTest.test_video_processor_save_load_with_autovideoprocessor = (
    _auto_video_processor_needs_torchvision
)
_skip_tests(PiTeVideoProcessingTest, {"test_call_sample_frames": NO_FPS_SAMPLING})
