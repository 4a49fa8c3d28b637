"""Putting a PiTe together from a Llama language model, a CLIP vision tower and a tokenizer.

Shared by `pite build` (base checkpoints, new adapter and heads) and `pite convert-original` (the authors'
merged weights): both end with a Llama causal LM and a CLIP tower in memory and need the same `<video>` token,
embedding resize, key mapping, config and save.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoTokenizer,
    CLIPImageProcessorPil,
    CLIPVisionModelWithProjection,
    LlamaForCausalLM,
)
from transformers.utils import logging as transformers_logging

from pite.core.errors import MissingInputError
from pite.core.inputs import check_checkpoint_weights, reading
from pite.core.loading import check_model_and_processor
from pite.modeling_pite import PiTeConfig, PiTeForConditionalGeneration
from pite.processing import VIDEO_TOKEN, PiTeProcessor

from .files import atomic_directory, forget_tokenizer_loading_state, portable_config_dict

# Keys of a PiTe state dict that no base checkpoint provides: `pite build` initialises them.
NEW_MODULE_KEYS = (
    "model.video_adapter.weight",
    "model.video_adapter.bias",
    "localization_head.weight",
    "localization_head.bias",
    "trajectory_head.weight",
    "trajectory_head.bias",
)
# A CLIPModel folder also holds the text tower; loading its vision half leaves exactly these unused.
CLIP_TEXT_PREFIXES = ("text_model.", "text_projection.", "logit_scale")


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports while we check loading results ourselves."""
    previous = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(previous)


def _module_available(name: str) -> bool:
    try:
        return find_spec(name) is not None
    except ModuleNotFoundError:  # a missing parent package ("google" of "google.protobuf")
        return False


def load_tokenizer(llm_dir: str | os.PathLike) -> Any:
    """The language model's tokenizer with PiTe's conventions: a `<video>` special token, a pad token
    (`<unk>` when the tokenizer has none, Vicuna's convention) and left padding for batched generation."""
    folder = Path(llm_dir)
    if (folder / "tokenizer.model").is_file() and not (folder / "tokenizer.json").is_file():
        # Vicuna ships only the SentencePiece model; transformers converts it, which needs these two packages.
        missing = [name for name in ("sentencepiece", "google.protobuf") if not _module_available(name)]
        if missing:
            raise ValueError(
                f"{folder / 'tokenizer.model'}: reading a SentencePiece tokenizer needs "
                f"`pip install sentencepiece protobuf` (missing: {', '.join(missing)})"
            )
    try:
        tokenizer = AutoTokenizer.from_pretrained(os.fspath(llm_dir))
    except (OSError, ValueError) as error:
        raise ValueError(f"{llm_dir}: no loadable tokenizer in the language-model folder ({error})") from error
    if tokenizer.pad_token is None:
        if tokenizer.unk_token is None:
            raise ValueError(f"{llm_dir}: the tokenizer has neither a pad nor an unk token to pad batches with")
        tokenizer.pad_token = tokenizer.unk_token
    tokenizer.padding_side = "left"
    forget_tokenizer_loading_state(tokenizer)
    if tokenizer.convert_tokens_to_ids(VIDEO_TOKEN) in (None, tokenizer.unk_token_id):
        tokenizer.add_special_tokens({"extra_special_tokens": [VIDEO_TOKEN]}, replace_extra_special_tokens=False)
    if tokenizer.tokenize(VIDEO_TOKEN) != [VIDEO_TOKEN]:
        raise ValueError(f"{llm_dir}: the tokenizer splits {VIDEO_TOKEN!r}; it must be one special token")
    return tokenizer


def load_language_model(llm_dir: str | os.PathLike, dtype: torch.dtype | None) -> LlamaForCausalLM:
    """A Llama/Vicuna causal LM folder; `dtype=None` keeps the checkpoint's dtype."""
    with reading(llm_dir, "the language model's config"):
        config = AutoConfig.from_pretrained(os.fspath(llm_dir))
    if config.model_type != "llama":
        raise ValueError(
            f"{Path(llm_dir) / 'config.json'}: model_type is {config.model_type!r}; PiTe needs a Llama/Vicuna LM"
        )
    check_checkpoint_weights(llm_dir)
    with quiet_transformers(), reading(llm_dir, "the language model's weights"):
        model, info = LlamaForCausalLM.from_pretrained(
            os.fspath(llm_dir), dtype=dtype or "auto", output_loading_info=True
        )
    missing = set(info["missing_keys"])
    if config.tie_word_embeddings:  # a tied lm_head is not stored
        missing.discard("lm_head.weight")
    missing = sorted(missing)
    if missing or info["mismatched_keys"]:
        raise ValueError(
            f"{llm_dir}: weights missing or of the wrong shape for LlamaForCausalLM: "
            f"{missing[:5] or sorted(info['mismatched_keys'])[:5]}"
        )
    return model


def load_vision_tower(vision_dir: str | os.PathLike, dtype: torch.dtype | None) -> CLIPVisionModelWithProjection:
    """The CLIP vision tower with its projection, from a CLIPModel or CLIPVisionModelWithProjection folder."""
    with reading(vision_dir, "the CLIP config"):
        config = AutoConfig.from_pretrained(os.fspath(vision_dir))
    if config.model_type not in ("clip", "clip_vision_model"):
        raise ValueError(
            f"{Path(vision_dir) / 'config.json'}: model_type is {config.model_type!r}; PiTe needs a CLIP model"
        )
    check_checkpoint_weights(vision_dir)
    with quiet_transformers(), reading(vision_dir, "the CLIP weights"):
        tower, info = CLIPVisionModelWithProjection.from_pretrained(
            os.fspath(vision_dir), dtype=dtype or "auto", output_loading_info=True
        )
    missing = sorted(info["missing_keys"])
    unexpected = sorted(k for k in info["unexpected_keys"] if not k.startswith(CLIP_TEXT_PREFIXES))
    if missing or unexpected or info["mismatched_keys"]:
        hint = (
            " (a CLIPVisionModel folder has no visual_projection: use the full CLIPModel)"
            if any(k.startswith("visual_projection") for k in missing)
            else ""
        )
        raise ValueError(
            f"{vision_dir}: not a CLIP vision tower with projection; missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, mismatched {sorted(info['mismatched_keys'])[:5]}{hint}"
        )
    return tower


def load_image_processor(vision_dir: str | os.PathLike) -> CLIPImageProcessorPil:
    """The CLIP image processor saved with the vision checkpoint (its resize, crop and normalisation)."""
    path = Path(vision_dir) / "preprocessor_config.json"
    if not path.is_file():
        raise MissingInputError(
            f"{path} is missing: the CLIP folder must hold its image processor configuration", path=path
        )
    with reading(path, "the image processor configuration"):
        return CLIPImageProcessorPil.from_pretrained(os.fspath(vision_dir))


def resize_for_tokenizer(language_model: LlamaForCausalLM, tokenizer: Any) -> int:
    """Grow the embeddings (and an untied lm_head) to cover the tokenizer; returns the `<video>` id.

    New rows start at the mean of the existing ones (transformers' mean resizing); existing rows are unchanged.
    """
    vocab_size = language_model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > vocab_size:
        language_model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    return int(tokenizer.convert_tokens_to_ids(VIDEO_TOKEN))


def language_model_weights(language_model: LlamaForCausalLM) -> dict[str, torch.Tensor]:
    """A LlamaForCausalLM state dict under PiTe's names (`model.*` -> `model.language_model.*`, `lm_head.*`)."""
    weights = {}
    for name, tensor in language_model.state_dict().items():
        if name.startswith("model."):
            weights["model.language_model." + name[len("model.") :]] = tensor
        elif name.startswith("lm_head."):
            weights[name] = tensor
        else:
            raise ValueError(f"unexpected language-model weight {name!r}")
    return weights


def assemble_pite(
    language_model: LlamaForCausalLM,
    vision_tower: CLIPVisionModelWithProjection,
    video_token_id: int,
    new_weights: Mapping[str, torch.Tensor] | None = None,
    num_frames: int = 100,
    num_trajectory_points: int = 3,
    dtype: torch.dtype | None = None,
) -> PiTeForConditionalGeneration:
    """A PiTe holding these towers' weights, exactly.

    Args:
        language_model: Llama causal LM, embeddings already resized to hold `video_token_id`.
        vision_tower: CLIP vision model with projection (its `image_embeds` feed the adapter).
        new_weights: PiTe-named weights of the adapter and heads (see NEW_MODULE_KEYS); those not given are
            initialised as for training (adapter and localization head at random, trajectory head from the
            localization head as in the paper's eq. 9).
        dtype: dtype of the result; None keeps the language model's.
    """
    new_weights = dict(new_weights or {})
    unknown = sorted(set(new_weights) - set(NEW_MODULE_KEYS))
    if unknown:
        raise ValueError(f"not adapter/head weights: {unknown}")
    text_config = portable_config_dict(language_model.config)
    text_config["vocab_size"] = language_model.get_input_embeddings().weight.shape[0]
    config = PiTeConfig(
        vision_config=portable_config_dict(vision_tower.config),
        text_config=text_config,
        num_frames=num_frames,
        num_trajectory_points=num_trajectory_points,
        vision_feature="image_embeds",
        video_token_id=video_token_id,
        tie_word_embeddings=bool(language_model.config.tie_word_embeddings),
    )
    state_dict = language_model_weights(language_model)
    state_dict.update({"model.vision_tower." + name: tensor for name, tensor in vision_tower.state_dict().items()})
    state_dict.update(new_weights)
    with quiet_transformers():
        model, info = PiTeForConditionalGeneration.from_pretrained(
            None, config=config, state_dict=state_dict, dtype=dtype or language_model.dtype, output_loading_info=True
        )
    expected_missing = set(NEW_MODULE_KEYS) - set(new_weights)
    if set(info["missing_keys"]) != expected_missing or info["unexpected_keys"] or info["mismatched_keys"]:
        raise RuntimeError(
            "assembling PiTe did not map every weight: "
            f"missing {sorted(set(info['missing_keys']) - expected_missing)}, "
            f"unexpected {sorted(info['unexpected_keys'])[:5]}, mismatched {sorted(info['mismatched_keys'])[:5]}"
        )
    return model.eval()


def make_processor(image_processor: Any, tokenizer: Any, num_frames: int) -> PiTeProcessor:
    """The PiTe processor for these parts."""
    return PiTeProcessor(image_processor=image_processor, tokenizer=tokenizer, num_frames=num_frames)


def save_checkpoint(
    model: PiTeForConditionalGeneration, processor: PiTeProcessor, out_dir: str | os.PathLike, overwrite: bool = False
) -> Path:
    """Write model (remote code, safetensors, generation config) and processor to `out_dir`, atomically."""
    check_model_and_processor(model, processor)
    with atomic_directory(out_dir, overwrite=overwrite) as staging:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
    return Path(out_dir)
