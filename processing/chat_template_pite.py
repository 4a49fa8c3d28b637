"""The release's conversation format ("v1", LLaVA/Vicuna) as a Jinja chat template, and its tokenization.

Rendered form (LLaVA `conv_vicuna_v1`: sep=" ", sep2="</s>"):

    {system} USER: <video>\\n{query} ASSISTANT: {answer}</s>USER: {query2} ASSISTANT: {answer2}</s>

With `add_generation_prompt=True` the text ends with "ASSISTANT:". A `{"type": "video"}` (or `"image"`) content item
renders as the single placeholder "<video>\\n"; the processor expands it to one `<video>` token per frame.
The assistant content and its "</s>" sit inside a `{% generation %}` block so transformers can report their
character spans: training labels supervise exactly the tokens overlapping those spans.

This file is Hub remote code: it imports only numpy, transformers and the standard library.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

VIDEO_TOKEN = "<video>"
V1_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)

# Whitespace control: every literal the format needs is written as a string expression, so `{%-`/`-%}` only
# trim the template's own indentation.
V1_CHAT_TEMPLATE = (
    '{%- set default_system = "' + V1_SYSTEM + '" -%}'
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- if messages[0]['content'] is string -%}{%- set system = messages[0]['content'] -%}"
    "{%- else -%}{%- set system = messages[0]['content'] | map(attribute='text') | join('') -%}{%- endif -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set system = default_system -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{{- system + ' ' -}}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{- 'USER: ' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'video' or item['type'] == 'image' -%}{{- '<video>\\n' -}}"
    "{%- elif item['type'] == 'text' -%}{{- item['text'] -}}"
    "{%- else -%}{{- raise_exception('unsupported content type: ' + item['type']) -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- ' ' -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- 'ASSISTANT: ' -}}"
    "{%- generation -%}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for item in message['content'] -%}{{- item['text'] -}}{%- endfor -%}{%- endif -%}"
    "{{- '</s>' -}}"
    "{%- endgeneration -%}"
    "{%- else -%}{{- raise_exception('unsupported role: ' + message['role']) -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'ASSISTANT:' -}}{%- endif -%}"
)


def expand_video_tokens(
    input_ids: Sequence[int], video_token_id: int, frames_per_placeholder: Sequence[int], source: str = "text"
) -> np.ndarray:
    """Indices into `input_ids` that repeat each `<video>` token k times (k = frames of its video).

    Returns int64 array (L_expanded,); `np.asarray(input_ids)[result]` is the expanded sequence, and the same
    index array expands labels and offsets. Raises ValueError naming both counts if the number of `<video>`
    tokens differs from the number of videos.
    """
    ids = np.asarray(input_ids, dtype=np.int64)
    positions = np.flatnonzero(ids == video_token_id)
    if len(positions) != len(frames_per_placeholder):
        raise ValueError(
            f"{source} holds {len(positions)} {VIDEO_TOKEN} placeholder(s) but {len(frames_per_placeholder)} "
            "video(s)/image(s) were given; put one placeholder per video"
        )
    repeats = np.ones(len(ids), dtype=np.int64)
    repeats[positions] = np.asarray(frames_per_placeholder, dtype=np.int64)
    return np.repeat(np.arange(len(ids)), repeats)


def tokenize_around_video(
    tokenizer: Any,
    text: str,
    video_token: str = VIDEO_TOKEN,
    add_special_tokens: bool = True,
    return_offsets: bool = False,
) -> tuple[list[int], np.ndarray | None]:
    """Token ids of `text` with one `<video>` id per placeholder, tokenized as the authors' release tokenizes.

    The release (`tokenizer_video_token` in yliu-cs/PiTe `utils/mm_utils.py`, LLaVA's `tokenizer_image_token`)
    splits the prompt at each "<video>", tokenizes every chunk on its own with the tokenizer's special tokens,
    keeps the first chunk whole and drops the first token of every later chunk when the first chunk began with
    BOS. A SentencePiece (Llama) tokenizer therefore starts every later chunk with its dummy-prefix "▁": the text
    "USER: <video>\nWhat" becomes `... ▁USER : ▁ <video> ▁ <0x0A> What`, not what tokenizing the whole string
    gives. Training and inference both use this function, so a model sees the same ids in both.

    Args:
        tokenizer: any transformers tokenizer; `return_offsets=True` needs a fast one.
        text: the prompt or rendered conversation, each video written as one `video_token`.
        add_special_tokens: let the tokenizer add its special tokens (BOS) to the chunks, as the release does.
        return_offsets: also return each token's [start, end) characters in `text` (the placeholder's span for
            a `<video>` id, (0, 0) for BOS).

    Returns:
        (ids, offsets (L, 2) int64 or None).
    """
    video_token_id = tokenizer.convert_tokens_to_ids(video_token)
    chunks = text.split(video_token)
    encodings = [
        tokenizer(chunk, add_special_tokens=add_special_tokens, return_offsets_mapping=return_offsets)
        for chunk in chunks
    ]
    first = list(encodings[0]["input_ids"])
    drop = 1 if first and tokenizer.bos_token_id is not None and first[0] == tokenizer.bos_token_id else 0
    ids: list[int] = []
    offsets: list[tuple[int, int]] = []
    chunk_start = 0
    for index, (chunk, encoding) in enumerate(zip(chunks, encodings)):
        skip = drop if index else 0
        if index:
            ids.append(video_token_id)
            offsets.append((chunk_start - len(video_token), chunk_start))
        ids.extend(encoding["input_ids"][skip:])
        if return_offsets:
            for start, end in encoding["offset_mapping"][skip:]:
                # Special tokens (BOS) cover no characters: an empty span where their chunk starts.
                offsets.append((start + chunk_start, end + chunk_start) if end > start else (chunk_start, chunk_start))
        chunk_start += len(chunk) + len(video_token)
    if return_offsets:
        return ids, np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    return ids, None
