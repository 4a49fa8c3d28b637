"""The release's conversation format ("v1", LLaVA/Vicuna) as a Jinja chat template, and its tokenization for training.

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
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers.utils.chat_template_utils import render_jinja_template

VIDEO_TOKEN = "<video>"
IGNORE_INDEX = -100
V1_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)

# Whitespace control: every literal the format needs is written as a string expression, so `{%-`/`-%}` only
# trim the template's own indentation.
V1_CHAT_TEMPLATE = (
    "{%- set default_system = \"" + V1_SYSTEM + "\" -%}"
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


@dataclass
class TokenizedConversation:
    """One conversation tokenized for training, `<video>` already expanded.

    Attributes:
        text: the rendered conversation, each video still one "<video>" placeholder.
        input_ids: (L,) token ids, BOS first, one `<video>` id per frame.
        labels: (L,) copy of input_ids with IGNORE_INDEX (-100) everywhere but the assistant turns
            (answer text and its "</s>"). Not shifted: the model shifts.
        offsets: (L, 2) character span [start, end) of each token in `text` (expanded video tokens share
            their placeholder's span; BOS is (0, 0)).
        assistant_turns: per assistant turn, (start character of its content in `text`, content string).
    """

    text: str
    input_ids: np.ndarray
    labels: np.ndarray
    offsets: np.ndarray
    assistant_turns: list[tuple[int, str]]


def message_text(message: dict[str, Any]) -> str:
    """The text of a message whose content is a string or a list of `{"type": "text"}` items."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(item.get("text", "") for item in content if item.get("type") == "text")


def count_visual_items(messages: Sequence[dict[str, Any]]) -> list[str]:
    """The `"video"`/`"image"` content items of a conversation, in order (one `<video>` placeholder each)."""
    kinds = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            kinds.extend(item["type"] for item in content if item.get("type") in ("video", "image"))
    return kinds


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


def render_conversation(
    messages: Sequence[dict[str, Any]], chat_template: str = V1_CHAT_TEMPLATE, add_generation_prompt: bool = False
) -> tuple[str, list[tuple[int, int]]]:
    """Render one conversation; returns the text and the [start, end) character spans of the assistant turns."""
    rendered, generation_indices = render_jinja_template(
        conversations=[list(messages)],
        chat_template=chat_template,
        return_assistant_tokens_mask=True,
        add_generation_prompt=add_generation_prompt,
    )
    return rendered[0], [tuple(span) for span in generation_indices[0]]


def tokenize_conversation(
    tokenizer: Any,
    messages: Sequence[dict[str, Any]],
    num_frames: int,
    chat_template: str = V1_CHAT_TEMPLATE,
    video_token: str = VIDEO_TOKEN,
) -> TokenizedConversation:
    """Tokenize a full conversation for training, masking everything but the assistant turns.

    The rendered text is tokenized with `tokenize_around_video`, exactly as the processor tokenizes a prompt at
    inference (and as the release does), and a token is supervised iff its character span overlaps an assistant
    turn's content+"</s>". A token straddling the boundary (e.g. "▁The" whose "▁" is the separator space) is
    supervised: it is the token the model must produce to start the answer.

    Args:
        tokenizer: a fast (tokenizers-backed) Llama tokenizer with `video_token` as a special token.
        messages: `[{"role": "system"|"user"|"assistant", "content": str | [{"type": "text"|"video"|"image", ...}]}]`.
        num_frames: N, the `<video>` tokens per video (an image gets one).
    """
    text, assistant_spans = render_conversation(messages, chat_template)
    token_ids, offsets = tokenize_around_video(tokenizer, text, video_token, return_offsets=True)
    ids = np.asarray(token_ids, dtype=np.int64)
    supervised = np.zeros(len(ids), dtype=bool)
    for start, end in assistant_spans:
        supervised |= (offsets[:, 0] < end) & (offsets[:, 1] > start) & (offsets[:, 1] > offsets[:, 0])
    labels = np.where(supervised, ids, IGNORE_INDEX)

    frames_per_placeholder = [num_frames if kind == "video" else 1 for kind in count_visual_items(messages)]
    video_token_id = tokenizer.convert_tokens_to_ids(video_token)
    expand = expand_video_tokens(ids, video_token_id, frames_per_placeholder, source="the conversation")

    assistant_messages = [message for message in messages if message.get("role") == "assistant"]
    assistant_turns = []
    for (start, _), message in zip(assistant_spans, assistant_messages):
        content = message_text(message)
        if text[start : start + len(content)] != content:  # the template must render answers verbatim
            raise ValueError(f"chat template did not render the assistant answer {content[:40]!r} verbatim")
        assistant_turns.append((start, content))
    return TokenizedConversation(
        text=text, input_ids=ids[expand], labels=labels[expand], offsets=offsets[expand], assistant_turns=assistant_turns
    )
