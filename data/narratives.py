"""Stage 1 data: Localized Narratives (JSONL, as published) + images -> point-supervised conversations.

One record becomes one single-turn conversation: the user shows the image (one `<video>` token) and asks for a
description; the answer is the record's `caption`. Each utterance of the caption is supervised with the mean mouse
position of its time span (`pite.data.targets.localized_narrative_targets`), on every token of the utterance.
Images are `{images_dir}/{image_id}.jpg` (`.png`, `.jpeg` also tried).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .records import IMAGE_EXTENSIONS, BadRecordError, TrainingExample, find_media, media_key, require
from .targets import localized_narrative_targets
from .templates import NARRATIVE_QUESTIONS, pick


def narrative_example(record: dict, where: str, images_dir: str) -> TrainingExample:
    """A `TrainingExample` of one Localized Narratives record; BadRecordError naming the record when unusable."""
    require(record, ("image_id", "caption", "timed_caption", "traces"), where)
    image_id = str(record["image_id"])
    where = f"{where} (image_id {image_id!r})"
    caption = record["caption"]
    if not isinstance(caption, str) or not caption.strip():
        raise BadRecordError(where, "empty conversation: the caption is empty")
    try:
        targets = localized_narrative_targets(record)
    except ValueError as error:
        raise BadRecordError(where, str(error)) from error
    path = find_media(images_dir, image_id, IMAGE_EXTENSIONS, where)
    point_targets = []
    for target in targets:
        value = np.asarray(target.value, dtype=np.float64)
        if not np.isfinite(value).all():
            raise BadRecordError(where, f"utterance {target.name!r} has a non-finite trace point")
        point_targets.append(dataclasses.replace(target, value=value, turn=-1))
    question = pick(NARRATIVE_QUESTIONS, image_id, "narrative")
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]},
        {"role": "assistant", "content": caption},
    ]
    return TrainingExample(
        example_id=image_id,
        where=where,
        media_kind="image",
        media_path=path,
        media_key=media_key(images_dir, path),
        messages=messages,
        point_targets=point_targets,
    )
