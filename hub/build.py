"""`pite build`: an untrained PiTe from local Llama/Vicuna and CLIP checkpoints, ready for stage 1."""

from __future__ import annotations

import os
from pathlib import Path

import torch

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
    tokenizer = load_tokenizer(llm_dir)
    image_processor = load_image_processor(vision_dir)
    language_model = load_language_model(llm_dir, dtype)
    video_token_id = resize_for_tokenizer(language_model, tokenizer)
    vision_tower = load_vision_tower(vision_dir, dtype or language_model.dtype)
    model = assemble_pite(language_model, vision_tower, video_token_id, num_frames=num_frames,
                          num_trajectory_points=num_trajectory_points, dtype=dtype)
    del language_model, vision_tower  # the model holds its own copies; free the sources before writing
    processor = make_processor(image_processor, tokenizer, num_frames)
    return save_checkpoint(model, processor, out_dir, overwrite=overwrite)
