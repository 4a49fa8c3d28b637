"""Stage 3 data: Valley-Instruct and VideoInstruct-100K instruction files + videos -> QA conversations.

- Valley-Instruct (JSON list, LLaVA style): `{"id", "video", "conversations": [{"from": "human"|"gpt", "value"}]}`;
  `video` is relative to the videos folder; the `<video>` placeholder in the first human turn (or, if absent, the
  start of that turn) is where the video goes. Conversations are kept whole.
- VideoInstruct-100K (JSON list): `{"video_id", "q", "a"}`; video `{videos_dir}/{video_id}.mp4` (other common
  extensions tried). One single-turn conversation per record.
"""

from __future__ import annotations

from typing import Any

from pite.processing import VIDEO_TOKEN

from .records import VIDEO_EXTENSIONS, BadRecordError, TrainingExample, find_media, media_in_folder, media_key, require

ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


def detect_instruction_format(record: Any, path: str) -> str:
    """ "valley" or "videoinstruct", from the keys of a file's first record."""
    if isinstance(record, dict) and "conversations" in record:
        return "valley"
    if isinstance(record, dict) and {"q", "a"} <= set(record):
        return "videoinstruct"
    keys = sorted(record) if isinstance(record, dict) else type(record).__name__
    raise ValueError(
        f"{path}: cannot tell the instruction format from the first record ({keys}); expected Valley-Instruct "
        "records with 'conversations' or VideoInstruct-100K records with 'video_id', 'q', 'a'"
    )


def _user_content_with_video(text: str, where: str) -> list[dict[str, Any]]:
    """The first user turn as content items, the video where its `<video>` placeholder was (else first)."""
    if text.count(VIDEO_TOKEN) > 1:
        raise BadRecordError(
            where,
            f"the first human turn holds {text.count(VIDEO_TOKEN)} {VIDEO_TOKEN} placeholders; one video per record",
        )
    before, found, after = text.partition(VIDEO_TOKEN)
    if not found:
        before, after = "", text
    # The chat template writes "<video>\n" itself: drop the newline that separated the placeholder from the text.
    before, after = before.rstrip("\n"), after.lstrip("\n")
    content = [{"type": "text", "text": before}] if before.strip() else []
    content.append({"type": "video"})
    if after.strip():
        content.append({"type": "text", "text": after})
    return content


def valley_example(record: dict[str, Any], where: str, videos_dir: str) -> TrainingExample:
    require(record, ("video", "conversations"), where)
    example_id = str(record.get("id", record.get("v_id", record["video"])))
    where = f"{where} (id {example_id!r})"
    turns = record["conversations"]
    if not isinstance(turns, list) or not turns:
        raise BadRecordError(where, "empty conversation")
    messages = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict) or turn.get("from") not in ROLES or not isinstance(turn.get("value"), str):
            raise BadRecordError(
                where, f"turn {index} must be {{'from': 'human'|'gpt', 'value': str}}, got {turn!r:.80}"
            )
        role = ROLES[turn["from"]]
        expected = "user" if index % 2 == 0 else "assistant"
        if role != expected:
            raise BadRecordError(where, f"turn {index} is from {turn['from']!r}; turns must alternate human, gpt, ...")
        text = turn["value"]
        if not text.strip():
            raise BadRecordError(where, f"empty conversation: turn {index} is empty")
        if index == 0:
            messages.append({"role": role, "content": _user_content_with_video(text, where)})
        else:
            if VIDEO_TOKEN in text:
                raise BadRecordError(where, f"turn {index} holds a {VIDEO_TOKEN} placeholder; only the first may")
            messages.append({"role": role, "content": text})
    if messages[-1]["role"] != "assistant":
        raise BadRecordError(where, "the conversation ends with a human turn (no answer to learn)")
    path, key = media_in_folder(videos_dir, record["video"], where)
    return TrainingExample(example_id, where, "video", path, key, messages)


def videoinstruct_example(record: dict[str, Any], where: str, videos_dir: str) -> TrainingExample:
    require(record, ("video_id", "q", "a"), where)
    video_id = str(record["video_id"])
    where = f"{where} (video_id {video_id!r})"
    question, answer = record["q"], record["a"]
    if not isinstance(question, str) or not question.strip() or not isinstance(answer, str) or not answer.strip():
        raise BadRecordError(where, "empty conversation: the question or the answer is empty")
    if VIDEO_TOKEN in question or VIDEO_TOKEN in answer:
        raise BadRecordError(where, f"the question or answer holds a literal {VIDEO_TOKEN}")
    path = find_media(videos_dir, video_id, VIDEO_EXTENSIONS, where)
    messages = [
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]},
        {"role": "assistant", "content": answer},
    ]
    return TrainingExample(video_id, where, "video", path, media_key(videos_dir, path), messages)
