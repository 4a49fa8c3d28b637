"""`pite build`: an untrained PiTe from local Llama/Vicuna and CLIP checkpoints, ready for stage 1."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import CLIPVisionModelWithProjection, LlamaForCausalLM

from pite.core.inputs import check_output_folder

from .assemble import (
    assemble_pite,
    load_image_processor,
    load_language_model,
    load_tokenizer,
    load_vision_tower,
    make_processor,
    resize_for_tokenizer,
    save_checkpoint,
)
from .files import require_directory


def build_from_base(
    llm_dir: str | os.PathLike,
    vision_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    num_frames: int = 100,
    num_trajectory_points: int = 3,
    dtype: torch.dtype | None = None,
    overwrite: bool = False,
) -> Path:
    """Assemble and save an untrained PiTe.

    Copies the language model (decoder, norm, lm_head) and the CLIP vision tower (with its visual projection)
    unchanged, adds `<video>` to the tokenizer and one embedding/lm_head row for it, and initialises the adapter
    and both heads (trajectory head = localization head repeated, eq. 9). Saves model, tokenizer and processor.

    Args:
        llm_dir: a LlamaForCausalLM folder (e.g. vicuna-7b-v1.5) with its tokenizer.
        vision_dir: a CLIPModel or CLIPVisionModelWithProjection folder with its preprocessor_config.json.
        out_dir: the folder to create (written atomically).
        num_frames: N, frames per video; sets the trajectory head's width P * N * 2.
        num_trajectory_points: P, key points per object.
        dtype: weights' dtype; None keeps the language model checkpoint's.
        overwrite: replace an existing `out_dir`.
    """
    require_directory(llm_dir, "--llm")
    require_directory(vision_dir, "--vision")
    check_output_folder(out_dir, overwrite, {"--llm": llm_dir, "--vision": vision_dir})
    tokenizer = load_tokenizer(llm_dir)
    image_processor = load_image_processor(vision_dir)
    language_model = load_language_model(llm_dir, dtype)
    vision_tower = load_vision_tower(vision_dir, dtype or language_model.dtype)
    return build_checkpoint(
        language_model,
        vision_tower,
        tokenizer,
        image_processor,
        out_dir,
        num_frames=num_frames,
        num_trajectory_points=num_trajectory_points,
        dtype=dtype,
        overwrite=overwrite,
    )


def build_checkpoint(
    language_model: LlamaForCausalLM,
    vision_tower: CLIPVisionModelWithProjection,
    tokenizer: Any,
    image_processor: Any,
    out_dir: str | os.PathLike,
    *,
    new_weights: Mapping[str, torch.Tensor] | None = None,
    num_frames: int = 100,
    num_trajectory_points: int = 3,
    dtype: torch.dtype | None = None,
    overwrite: bool = False,
) -> Path:
    """Save a PiTe checkpoint folder (model, tokenizer with `<video>`, processor) made of these loaded parts.

    The last steps of both `pite build` and `pite convert-original`: give the language model one embedding and
    lm_head row for `<video>` (already added to `tokenizer` by `load_tokenizer`), assemble PiTe with
    `vision_tower` and `new_weights` (see `assemble_pite`), and write it with its processor to `out_dir` atomically.
    The language model is resized in place.
    """
    video_token_id = resize_for_tokenizer(language_model, tokenizer)
    model = assemble_pite(
        language_model,
        vision_tower,
        video_token_id,
        new_weights=new_weights,
        num_frames=num_frames,
        num_trajectory_points=num_trajectory_points,
        dtype=dtype,
    )
    processor = make_processor(image_processor, tokenizer, num_frames)
    return save_checkpoint(model, processor, out_dir, overwrite=overwrite)
