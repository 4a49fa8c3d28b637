"""The task questions put to the model for each benchmark (the text only; the chat template is the processor's).

Grounding and dense captioning use VTimeLLM's evaluation questions (`questions` in `vtimellm/eval/eval.py`), which
PiTe's protocol follows: the grounding sentence is stripped, lower-cased and loses a final period before it is
inserted; that question is the training data's too, so it is defined with the training templates
(`pite.data.templates.grounding_question`). QA asks the dataset's question unchanged (Video-ChatGPT's protocol).

Usage:
    >>> grounding_question("A person opens the door.")
    'During which frames can we see a person opens the door?'
"""

from __future__ import annotations

from pite.data.templates import GROUNDING_QUESTION, grounding_question
from pite.eval.datasets import EvalRecord

__all__ = ["DENSE_CAPTIONING_QUESTION", "GROUNDING_QUESTION", "grounding_question", "task_question"]

DENSE_CAPTIONING_QUESTION = (
    "Could you please describe the events in the video in detail? Be specific about the activities of individuals, "
    "their surroundings, and interactions with others. The output should be in JSON format, structured as follows: "
    '{"event": "xx", "timestamps": "from xx to xx"}.'
)


def task_question(record: EvalRecord) -> str:
    """The question to ask the model for `record`."""
    if record.task == "grounding":
        return grounding_question(record.query or "")
    if record.task == "dense_captioning":
        return DENSE_CAPTIONING_QUESTION
    if record.task == "qa":
        return record.query or ""
    raise ValueError(f"unknown task {record.task!r} of record {record.sample_id!r}")
