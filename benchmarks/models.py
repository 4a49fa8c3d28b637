"""Benchmark sizes, the small PiTe and Llama models the CPU rows compare, and their prompts."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BenchSizes:
    """Every size a CPU row uses; `--set NAME=VALUE` overrides one (tests use tiny ones).

    The defaults are a small Llama (hidden 256, 4 layers) that keeps Vicuna's 32001-row vocabulary, so the cost of
    the vocabulary head against the trunk is realistic, and PiTe's 100 frames.
    """

    hidden_size: int = 256
    intermediate_size: int = 688
    num_layers: int = 4
    num_heads: int = 4
    vocab_size: int = 32001  # the last id is the <video> token
    vision_hidden_size: int = 128
    vision_layers: int = 2
    image_size: int = 112  # a multiple of CLIP's 14-pixel patch
    num_frames: int = 100
    train_text_tokens: int = 412  # text tokens of a training sequence (besides BOS and the frames)
    prompt_text_tokens: int = 20  # text tokens of a question
    new_tokens: int = 32  # generated tokens per answer
    repeats: int = 7  # timed repetitions per side of a ratio
    video_seconds: int = 120
    video_fps: int = 30
    video_width: int = 854
    video_height: int = 480
    hd_seconds: int = 20  # the 720p and 1080p streams of the video row
    uhd_frames: int = 100  # frames of the 4K clip of the video_memory row (all sampled)
    extraction_videos: int = 8  # videos of the extraction row
    batch_sizes: tuple[int, ...] = (1, 4, 8)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            values = value if isinstance(value, tuple) else (value,)
            if not values or any(not isinstance(v, int) or v < 1 for v in values):
                raise ValueError(
                    f"benchmark size {field.name} must be a positive integer (or a list of them), got {value!r}"
                )
        if self.image_size % 14:
            raise ValueError(
                f"benchmark size image_size must be a multiple of the 14-pixel patch, got {self.image_size}"
            )
        if self.hidden_size % self.num_heads or self.vision_hidden_size % 4:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must divide by num_heads ({self.num_heads}) and vision_hidden_size "
                f"({self.vision_hidden_size}) by the vision tower's 4 heads"
            )
        if self.vocab_size < 8:
            raise ValueError(
                f"benchmark size vocab_size must be >= 8 (special tokens + <video>), got {self.vocab_size}"
            )
        if self.train_text_tokens < 9 or self.prompt_text_tokens < 9:
            raise ValueError(
                "train_text_tokens and prompt_text_tokens must be >= 9 (8 tokens before the frames + 1 after)"
            )

    @property
    def video_token_id(self) -> int:
        return self.vocab_size - 1

    def replace(self, overrides: typing.Mapping[str, str]) -> BenchSizes:
        """A copy with `NAME=VALUE` strings applied (`batch_sizes=1,4,8` for the tuple), with specific errors."""
        fields = {field.name: field for field in dataclasses.fields(self)}
        changes: dict[str, object] = {}
        for name, text in overrides.items():
            if name not in fields:
                raise ValueError(f"unknown benchmark size {name!r}; choose from {sorted(fields)}")
            try:
                if name == "batch_sizes":
                    changes[name] = tuple(int(part) for part in text.split(",") if part.strip())
                else:
                    changes[name] = int(text)
            except ValueError:
                kind = "an integer list" if name == "batch_sizes" else "an integer"
                raise ValueError(f"benchmark size {name}={text!r} is not {kind}") from None
        return dataclasses.replace(self, **changes)


def text_config(sizes: BenchSizes, vocab_size: int | None = None) -> dict:
    """Llama config kwargs at the benchmark size."""
    return dict(
        vocab_size=vocab_size or sizes.vocab_size,
        hidden_size=sizes.hidden_size,
        intermediate_size=sizes.intermediate_size,
        num_hidden_layers=sizes.num_layers,
        num_attention_heads=sizes.num_heads,
        num_key_value_heads=sizes.num_heads,
        max_position_embeddings=8192,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )


def vision_config(sizes: BenchSizes) -> dict:
    """CLIP vision config kwargs at the benchmark size (4 heads, 14-pixel patches)."""
    return dict(
        hidden_size=sizes.vision_hidden_size,
        intermediate_size=4 * sizes.vision_hidden_size,
        projection_dim=sizes.vision_hidden_size,
        num_hidden_layers=sizes.vision_layers,
        num_attention_heads=4,
        image_size=sizes.image_size,
        patch_size=14,
    )


def pite_model(sizes: BenchSizes, seed: int = 0):
    """A randomly initialised `PiTeForConditionalGeneration` at the benchmark size (train mode, fp32, CPU)."""
    from pite.modeling_pite import PiTeConfig, PiTeForConditionalGeneration

    config = PiTeConfig(
        vision_config=vision_config(sizes),
        text_config=text_config(sizes),
        num_frames=sizes.num_frames,
        video_token_id=sizes.video_token_id,
    )
    torch.manual_seed(seed)
    return PiTeForConditionalGeneration(config)


def llama_model(sizes: BenchSizes, seed: int = 0):
    """A plain `LlamaForCausalLM` with PiTe's language-model config."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**text_config(sizes)))


def prompt_ids(sizes: BenchSizes, num_frames: int, text_tokens: int, seed: int = 0) -> torch.Tensor:
    """(1, 1 + num_frames + text_tokens) ids: BOS, 8 text tokens, the frame placeholders, the other text tokens.

    Text ids are drawn from [3, video_token_id), so they are never BOS/EOS/PAD nor a placeholder.
    """
    generator = torch.Generator().manual_seed(seed)
    high = sizes.video_token_id
    before = torch.randint(3, high, (8,), generator=generator)
    after = torch.randint(3, high, (text_tokens - 8,), generator=generator)
    frames = torch.full((num_frames,), sizes.video_token_id)
    return torch.cat([torch.tensor([1]), before, frames, after])[None]


def as_plain_text(ids: torch.Tensor, sizes: BenchSizes) -> torch.Tensor:
    """The same ids with placeholders replaced by an ordinary token: what plain Llama reads at the same length."""
    return ids.masked_fill(ids == sizes.video_token_id, sizes.video_token_id - 1)


def greedy_kwargs(sizes: BenchSizes) -> dict:
    """generate() kwargs for exactly `sizes.new_tokens` greedy tokens."""
    return dict(max_new_tokens=sizes.new_tokens, min_new_tokens=sizes.new_tokens, do_sample=False, pad_token_id=0)


def enable_checkpointing(model: torch.nn.Module) -> None:
    """Non-reentrant activation checkpointing of every decoder layer, under the name the installed transformers
    uses (`activation_checkpointing_enable` since 5.2x; `gradient_checkpointing_enable`, now deprecated, before)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
