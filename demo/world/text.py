"""The words of the synthetic world: closed-set video questions, and the corpus the demo's tokenizer learns from.

Answers come from small closed sets (colour names, shape names, number words, directions, yes/no), so QA accuracy
can be compared with always giving the majority answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from pite.processing.chat_template_pite import V1_SYSTEM
from pite.processing.time_pite import format_frame_index, format_time_span

from .image import LOCATIONS
from .scene import COLOURS, DIRECTIONS, SHAPES, STILL_EVENTS, VideoScene, WorldConfig, event_verb

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
# ActivityNet-QA `type` codes: 0 motion, 3 yes/no, 4 colour, 5 object, 7 number.
QA_TYPE_CODES = {"direction": 0, "disappears": 3, "colour": 4, "shape": 5, "count": 7}

# Prompt texts, as corpus material only: the chat template (and its system line) lives in `pite.processing`, and the
# stage-2 question templates the trainer uses belong to `pite.training`: pass those through `extra_texts`.
ANSWER_REPEATS = 20
SCAFFOLDING_REPEATS = 50
GROUNDING_QUESTIONS = (
    "During which frames can we see {event}?",
    "When does {event} happen in the video?",
    "In which frames does {event} take place?",
)
DENSE_CAPTION_QUESTIONS = (
    "Could you describe the events in the video and when each of them happens?",
    "What happens in the video? Give the start and end frame of every event.",
    "Describe the events of the video with their timestamps.",
)


@dataclass(frozen=True)
class VideoQuestion:
    """One single-turn question about a video with its closed-set answer; `kind` is a key of QA_TYPE_CODES."""

    question: str
    answer: str
    kind: str

    @property
    def type_code(self) -> int:
        return QA_TYPE_CODES[self.kind]


def video_questions(scene: VideoScene) -> list[VideoQuestion]:
    """Every question the world asks about `scene`, in a fixed order (count first, then per object)."""
    questions = [VideoQuestion("How many objects are there in the video?", NUMBER_WORDS[len(scene.objects)], "count")]
    for obj, script in zip(scene.objects, scene.scripts):
        first_move = next(segment.event for segment in script if segment.kind == "move")
        disappears = any(segment.event == "disappears" for segment in script)
        questions += [
            VideoQuestion(f"What colour is the {obj.shape}?", obj.colour, "colour"),
            VideoQuestion(f"What shape is the {obj.colour} object?", obj.shape, "shape"),
            VideoQuestion(f"In which direction does {obj.phrase} move first?", first_move, "direction"),
            VideoQuestion(f"Does {obj.phrase} disappear?", "yes" if disappears else "no", "disappears"),
        ]
    return questions


def temporal_instructions(scene: VideoScene, num_frames: int) -> list[tuple[str, str]]:
    """One grounding instruction per event, (question, answer), worded exactly as stage 2 and the evaluation ask.

    The instruction sets of real stage-3 data hold temporal questions too; without them a small model forgets the
    time-span answer format while it learns the one-word answers of the other questions.
    """
    from pite.data.templates import GROUNDING_ANSWER, grounding_question
    from pite.processing import format_time_span

    pairs = []
    for event in scene.events:
        _, start, _, end = format_time_span(event.start, event.end, scene.duration, num_frames, clip=True).split(" ")
        pairs.append((grounding_question(event.caption), GROUNDING_ANSWER.format(start=start, end=end)))
    return pairs


def answer_vocabulary() -> dict[str, tuple[str, ...]]:
    """The closed answer set of each question kind."""
    return {
        "count": tuple(NUMBER_WORDS.values()),
        "colour": tuple(COLOURS),
        "shape": SHAPES,
        "direction": tuple(DIRECTIONS),
        "disappears": ("yes", "no"),
    }


def world_corpus(config: WorldConfig | None = None, extra_texts: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Every text the demo tokenizes, in a fixed order, for training the offline tokenizer.

    Covers: the v1 system prompt and role tags, the video prefix, every object phrase, event caption, image caption
    phrase, question and answer the world can produce, grounding and dense-captioning prompts filled with every
    caption, two-digit frame indices 00-99 and "from XX to YY" time answers; then `extra_texts`.
    """
    config = config or WorldConfig()
    # The prompt scaffolding opens every training sample: repeated so that BPE spends merges on it and prompts
    # stay short, as they are with a real LLM vocabulary.
    scaffolding = [V1_SYSTEM, "USER:", "ASSISTANT:", f"This is a video with {config.num_frames} frames:"]
    texts = scaffolding * SCAFFOLDING_REPEATS
    captions = []
    for colour in config.colours:
        for shape in config.shapes:
            phrase = f"the {colour} {shape}"
            texts += [phrase, f"a {colour} {shape}"]
            captions += [f"{phrase} {event_verb(kind)}" for kind in (*DIRECTIONS, *STILL_EVENTS)]
            texts += [f"a {colour} {shape} {where}" for where in LOCATIONS.values()]
            texts += [
                f"What colour is the {shape}?",
                f"What shape is the {colour} object?",
                f"In which direction does {phrase} move first?",
                f"Does {phrase} disappear?",
            ]
    texts += captions
    texts += ["How many objects are there in the video?", "with", "and"]
    # Each closed-set answer must be one "▁word" token, as it would be in Vicuna's vocabulary: appearing once, rare
    # words ("no", "two") stay split into characters, and a one-word answer becomes a character-by-character decision.
    for answers in answer_vocabulary().values():
        texts += list(answers) * ANSWER_REPEATS
    # Time answers in the processor's own format; an index i is i seconds of a 100 s video sampled at N = 100.
    count = max(100, config.num_frames)
    texts += [format_frame_index(i, count) for i in range(count)]

    def span(first: int, last: int) -> str:
        return format_time_span(float(first), float(last), float(count), count)

    for i, caption in enumerate(captions):
        start = (7 * i) % 90
        answer = span(start, min(count - 1, start + 5 + (13 * i) % 40))
        texts += [template.format(event=caption) for template in GROUNDING_QUESTIONS]
        texts += [f"{caption}, {answer}.", f"{answer[0].upper()}{answer[1:]}."]
    texts += list(DENSE_CAPTION_QUESTIONS)
    texts += [span(s, min(count - 1, s + 10 + s % 37)) for s in range(count)]
    texts += list(extra_texts)
    return texts
