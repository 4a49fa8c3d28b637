"""Shared test setup: offline, single-threaded, tiny models."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

TINY_VOCAB = 64
TINY_VIDEO_TOKEN_ID = 63
# The tiny towers of the unit tests: a CLIP ViT and a Llama with hidden 32 and 2 layers.
TINY_VISION_CONFIG = dict(
    hidden_size=32,
    intermediate_size=64,
    projection_dim=24,
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=28,
    patch_size=14,
)
TINY_TEXT_CONFIG = dict(
    vocab_size=TINY_VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
)


def tiny_pite_config(**overrides):
    """A PiTe config small enough for CPU unit tests: ViT and Llama with hidden 32, 2 layers, 4 frames."""
    from pite.modeling_pite import PiTeConfig

    kwargs = dict(
        vision_config=dict(TINY_VISION_CONFIG),
        text_config=dict(TINY_TEXT_CONFIG),
        num_frames=4,
        video_token_id=TINY_VIDEO_TOKEN_ID,
    )
    kwargs.update(overrides)
    return PiTeConfig(**kwargs)


@pytest.fixture
def tiny_config():
    return tiny_pite_config()


@pytest.fixture
def tiny_model(tiny_config):
    from pite.modeling_pite import PiTeForConditionalGeneration

    torch.manual_seed(0)
    return PiTeForConditionalGeneration(tiny_config).eval()


@pytest.fixture
def make_tiny_config():
    """Factory for tiny configs with overrides, e.g. `make_tiny_config(num_frames=3)`."""
    return tiny_pite_config


def video_prompt_ids(num_frames: int, prefix=(1, 5, 6), suffix=(7, 8, 9)) -> torch.Tensor:
    """(L,) ids: prefix, `num_frames` video placeholders, suffix."""
    return torch.tensor([*prefix, *([TINY_VIDEO_TOKEN_ID] * num_frames), *suffix])


@pytest.fixture
def make_video_prompt():
    return video_prompt_ids
