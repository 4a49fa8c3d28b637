"""Rendering `model_card.md` (the repository's model card template) into an exported folder's README.md.

The template is a complete card for "org/pite-7b". Rendering replaces that placeholder repo id with the real one
and the `<!-- pite:checkpoint-details -->` marker with a table describing the exported checkpoint, then checks the
Hub metadata header.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pite.core.errors import InvalidInputError, MissingInputError

PLACEHOLDER_REPO_ID = "org/pite-7b"
DETAILS_MARKER = "<!-- pite:checkpoint-details -->"
REQUIRED_METADATA = ("license", "library_name", "pipeline_tag", "base_model", "datasets", "tags")
# The repository's card sits next to the package folders (hub/ ..); an installed wheel has no copy of it.
REPOSITORY_MODEL_CARD = Path(__file__).resolve().parent.parent / "model_card.md"


def default_model_card_path() -> Path:
    """The repository's `model_card.md`; raises FileNotFoundError saying how to pass one when not installed."""
    if not REPOSITORY_MODEL_CARD.is_file():
        raise MissingInputError(
            f"no model card template at {REPOSITORY_MODEL_CARD} (installed without the repository?): "
            "pass --model-card PATH to the model_card.md of the PiTe repository",
            path=REPOSITORY_MODEL_CARD,
        )
    return REPOSITORY_MODEL_CARD


def checkpoint_details(config: Any, num_parameters: int, dtype: str) -> str:
    """A markdown table of what this checkpoint is, from its PiTeConfig."""
    text, vision = config.text_config, config.vision_config
    rows = [
        (
            "language model",
            f"Llama, {text.num_hidden_layers} layers, hidden {text.hidden_size}, "
            f"vocabulary {text.vocab_size} (`<video>` = id {config.video_token_id})",
        ),
        (
            "vision tower",
            f"CLIP ViT, {vision.num_hidden_layers} layers, hidden {vision.hidden_size}, "
            f"{vision.image_size} px, patch {vision.patch_size}, frozen",
        ),
        ("frame feature", f"`{config.vision_feature}` ({config.vision_feature_dim}-d), one per frame"),
        ("frames per video (N)", str(config.num_frames)),
        ("key points per object (P)", str(config.num_trajectory_points)),
        ("parameters", f"{num_parameters / 1e9:.2f} B" if num_parameters >= 1e8 else f"{num_parameters:,}"),
        ("weights dtype", dtype),
    ]
    lines = ["## This checkpoint", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def render_model_card(template: str, config: Any, num_parameters: int, dtype: str, repo_id: str | None = None) -> str:
    """The README.md text of an exported checkpoint.

    Args:
        template: the text of `model_card.md`.
        config: the checkpoint's PiTeConfig.
        num_parameters: its parameter count.
        dtype: its weights' dtype name ("bfloat16", ...).
        repo_id: the Hub repo the folder is for; replaces "org/pite-7b" everywhere. None keeps the placeholder.
    """
    from huggingface_hub import ModelCard

    if DETAILS_MARKER not in template:
        raise ValueError(f"the model card template has no {DETAILS_MARKER} marker")
    if repo_id is not None:
        if repo_id.count("/") != 1 or not all(repo_id.split("/")):
            raise ValueError(f"repo id must look like 'owner/name', got {repo_id!r}")
        template = template.replace(PLACEHOLDER_REPO_ID, repo_id)
    text = template.replace(DETAILS_MARKER, checkpoint_details(config, num_parameters, dtype))
    metadata = ModelCard(text).data.to_dict()
    missing = [key for key in REQUIRED_METADATA if not metadata.get(key)]
    if missing:
        raise ValueError(f"the model card's metadata header lacks {missing}")
    return text


def read_model_card_template(path: str | os.PathLike | None = None) -> str:
    """The template text, from `path` or the repository's model_card.md."""
    card = Path(path if path is not None else default_model_card_path())
    if not card.is_file():
        raise MissingInputError(f"the model card template {card} does not exist", path=card, field="--model-card")
    try:
        return card.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInputError(f"{card}: the model card template is not UTF-8 text ({error})", path=card) from None
