"""Question templates of the training conversations (VTimeLLM-style wording, written for this package).

A record always gets the same template (chosen from a stable hash of its id and a purpose), so a dataset is
reproducible across runs and processes without a shared random state.
Stage-3 records carry their own questions.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

# Stage 1: Localized Narratives, the answer is the narrative; its words are grounded to points.
NARRATIVE_QUESTIONS = (
    "Describe this image in detail.",
    "Describe what you see in the image, one thing after another.",
    "Give a detailed narration of the picture.",
    "What can be seen in this image? Describe it thoroughly.",
)

# Stage 2: dense captioning of the whole video; the answer lists "{caption}, from SS to EE." per event.
DENSE_CAPTION_QUESTIONS = (
    "Could you please detail the events that took place during different time segments in the video?",
    "Describe the events of the video, with the time segment of each.",
    "What happens in the video, and when? List the events with their time segments.",
    "Give a breakdown of the events in the video together with their time segments.",
)

# Stage 2: temporal grounding of one event asks the evaluation's question (VTimeLLM's `questions` in
# `vtimellm/eval/eval.py`; `pite.eval.prompts` asks it too), so training and evaluation ask alike; the answer is:
GROUNDING_QUESTION = "During which frames can we see {}?"
GROUNDING_ANSWER = "From {start} to {end}."

# Stage 2: captioning of one segment; the answer is the event's caption.
SEGMENT_CAPTION_QUESTIONS = (
    "What is happening from {start} to {end}?",
    "Describe what occurs in the video from {start} to {end}.",
    "What can we see between frames {start} and {end}?",
)

DENSE_CAPTION_ITEM = "{caption}, from {start} to {end}."


def pick(templates: Sequence[str], key: str, purpose: str) -> str:
    """The template of `templates` that record `key` uses for `purpose` (stable across runs and machines)."""
    return templates[zlib.crc32(f"{purpose}:{key}".encode()) % len(templates)]


def grounding_question(sentence: str) -> str:
    """VTimeLLM's grounding question for an event sentence: stripped, lower-cased, without a final period.

    >>> grounding_question("A person opens the door.")
    'During which frames can we see a person opens the door?'
    """
    sentence = sentence.strip().lower()
    if sentence.endswith("."):
        sentence = sentence[:-1]
    return GROUNDING_QUESTION.format(sentence)
