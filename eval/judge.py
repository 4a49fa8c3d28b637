"""Video QA scored by an LLM judge: the Video-ChatGPT protocol, a disk cache of judgments, and the aggregate.

Protocol (Video-ChatGPT's `evaluate_activitynet_qa.py`, used for MSVD-QA, MSRVTT-QA and ActivityNet-QA):
- the judge gets `SYSTEM_MESSAGE` and `user_message(question, answer, prediction)`, verbatim (their odd spacing too);
- its reply is parsed with `ast.literal_eval` into a dict with `'pred'` and `'score'`; the score is `int(score)`
  (a reply of 4.8 counts 4, as there); the verdict is "yes" if `'yes'` occurs in `pred.lower()`, else "no" if `'no'`
  occurs, else "neither";
- accuracy = yes / (yes + no) (percent); score = mean of the integer scores of every parsed reply ("neither" included).
Replies that are not such a dict (not a Python literal, not a dict, keys missing, score not a number or outside 0-5)
are *skipped*: counted, with the raw reply kept, never a crash. Protocols (`pite.eval.protocols`): under
`"reference"` any integer score counts, as in the original; under `"corrected"` a score outside 0-5 makes the reply
unusable (skipped). Every result records its protocol.

Results drift with the judge model and its temperature, so every judgment and every result records both, and the
disk cache (`JudgmentCache`, SQLite) is keyed by (judge model, temperature, question, answer, prediction): a rerun
asks the judge nothing it has already answered. Judgments are written to the cache as they arrive, so an interrupted
run (network failure after all retries, Ctrl-C) loses nothing: run it again.

Usage:
    >>> from pite.eval.judge import JudgmentCache, QASample, judge_qa
    >>> from pite.eval.judge_backends import OpenAIChatJudge
    >>> judge = OpenAIChatJudge("https://api.openai.com/v1", "gpt-3.5-turbo-0125")  # key from $OPENAI_API_KEY
    >>> result = judge_qa([QASample("q1", "what is he doing?", "running", "he runs")], judge,
    ...                   JudgmentCache("judgments.sqlite"))  # doctest: +SKIP
    >>> result.accuracy, result.score, result.judge_model, result.temperature  # doctest: +SKIP
"""

from __future__ import annotations

import ast
import hashlib
import json
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from pite.eval.protocols import DEFAULT_PROTOCOL, check_protocol

SYSTEM_MESSAGE = (
    "You are an intelligent chatbot designed for evaluating the correctness of generative outputs for "
    "question-answer pairs. "
    "Your task is to compare the predicted answer with the correct answer and determine if they match "
    "meaningfully. Here's how you can accomplish the task:"
    "------"
    "##INSTRUCTIONS: "
    "- Focus on the meaningful match between the predicted answer and the correct answer.\n"
    "- Consider synonyms or paraphrases as valid matches.\n"
    "- Evaluate the correctness of the prediction compared to the answer."
)


def user_message(question: str, answer: str, prediction: str) -> str:
    """The Video-ChatGPT user message for one question / correct answer / predicted answer."""
    return (
        "Please evaluate the following video-based question-answer pair:\n\n"
        f"Question: {question}\n"
        f"Correct Answer: {answer}\n"
        f"Predicted Answer: {prediction}\n\n"
        "Provide your evaluation only as a yes/no and score where the score is an integer value between 0 and 5, "
        "with 5 indicating the highest meaningful match. "
        "Please generate the response in the form of a Python dictionary string with keys 'pred' and 'score', "
        "where value of 'pred' is  a string of 'yes' or 'no' and value of 'score' is in INTEGER, not STRING."
        "DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the Python dictionary string. "
        "For example, your response should look like this: {'pred': 'yes', 'score': 4.8}."
    )


def judge_messages(question: str, answer: str, prediction: str) -> list[dict[str, str]]:
    """The chat messages (system, user) sent to the judge."""
    return [
        {"role": "system", "content": SYSTEM_MESSAGE},
        {"role": "user", "content": user_message(question, answer, prediction)},
    ]


class JudgeBackend(Protocol):
    """What `judge_qa` needs from a judge: a name, a temperature, and a chat completion."""

    model_name: str
    temperature: float

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The judge's reply text to `messages`."""


@dataclass(frozen=True)
class QASample:
    """One question with its correct answer and the model's predicted answer."""

    sample_id: str
    question: str
    answer: str
    prediction: str


@dataclass(frozen=True)
class Judgment:
    """The judge's verdict on one sample. `verdict` is None and `skipped_reason` says why when the reply was
    unusable."""

    sample_id: str
    raw_reply: str
    judge_model: str
    temperature: float
    verdict: str | None = None  # "yes" | "no" | "neither"
    score: int | None = None
    skipped_reason: str | None = None


def parse_judge_reply(reply: str, protocol: str = DEFAULT_PROTOCOL) -> tuple[str, int] | str:
    """`(verdict, score)` from a judge reply, or a string saying why the reply cannot be used.

    Under `"corrected"` a score outside 0-5 is unusable; under `"reference"` it counts as given.
    """
    try:
        parsed = ast.literal_eval(reply.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as error:
        return f"not a Python literal ({type(error).__name__})"
    if not isinstance(parsed, dict):
        return f"not a dict but a {type(parsed).__name__}"
    if "pred" not in parsed or "score" not in parsed:
        return f"dict without 'pred' and 'score' (keys: {sorted(map(str, parsed))})"
    pred, raw_score = parsed["pred"], parsed["score"]
    if not isinstance(pred, str):
        return f"'pred' is not a string: {pred!r}"
    if isinstance(raw_score, bool) or not isinstance(raw_score, (int, float, str)):
        return f"'score' is not a number: {raw_score!r}"
    try:
        score = int(raw_score)
    except (ValueError, OverflowError):
        return f"'score' is not an integer: {raw_score!r}"
    if check_protocol(protocol) == "corrected" and not 0 <= score <= 5:
        return f"'score' outside 0-5: {raw_score!r}"
    lowered = pred.lower()
    verdict = "yes" if "yes" in lowered else "no" if "no" in lowered else "neither"
    return verdict, score


def judgment_from_reply(
    sample_id: str, reply: str, judge_model: str, temperature: float, protocol: str = DEFAULT_PROTOCOL
) -> Judgment:
    """Parse `reply` into a `Judgment` (a skipped one if unusable)."""
    parsed = parse_judge_reply(reply, protocol)
    if isinstance(parsed, str):
        return Judgment(sample_id, reply, judge_model, temperature, skipped_reason=parsed)
    return Judgment(sample_id, reply, judge_model, temperature, verdict=parsed[0], score=parsed[1])


class JudgmentCache:
    """Judge replies on disk (SQLite), keyed by (judge model, temperature, question, answer, prediction).

    Raw replies are stored, not parsed ones, so a change of the parsing rules applies to cached replies too.
    Safe to share between threads of one process.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(self.path, check_same_thread=False)
        with self._connection:
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS judgments (key TEXT PRIMARY KEY, judge_model TEXT, temperature REAL, "
                "question TEXT, answer TEXT, prediction TEXT, reply TEXT)"
            )

    @staticmethod
    def key(judge_model: str, temperature: float, question: str, answer: str, prediction: str) -> str:
        payload = json.dumps([judge_model, float(temperature), question, answer, prediction], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def get(self, judge_model: str, temperature: float, sample: QASample) -> str | None:
        """The cached reply for `sample` from this judge, or None."""
        key = self.key(judge_model, temperature, sample.question, sample.answer, sample.prediction)
        with self._lock:
            row = self._connection.execute("SELECT reply FROM judgments WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def put(self, judge_model: str, temperature: float, sample: QASample, reply: str) -> None:
        """Store (and commit) one reply."""
        key = self.key(judge_model, temperature, sample.question, sample.answer, sample.prediction)
        with self._lock, self._connection:
            self._connection.execute(
                "INSERT OR REPLACE INTO judgments VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, judge_model, float(temperature), sample.question, sample.answer, sample.prediction, reply),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._connection.execute("SELECT COUNT(*) FROM judgments").fetchone()[0]

    def close(self) -> None:
        self._connection.close()


@dataclass
class QAJudgeResult:
    """Accuracy (percent) and mean score of a set of judgments, with the judge that made them."""

    accuracy: float | None
    score: float | None
    num_yes: int
    num_no: int
    num_neither: int
    num_skipped: int
    judge_model: str
    temperature: float
    judgments: list[Judgment] = field(default_factory=list)
    protocol: str = DEFAULT_PROTOCOL

    def summary(self) -> dict[str, object]:
        """Everything but the per-sample judgments, JSON-ready."""
        summary = asdict(self)
        summary.pop("judgments")
        return summary


def aggregate_judgments(
    judgments: Sequence[Judgment], judge_model: str, temperature: float, protocol: str = DEFAULT_PROTOCOL
) -> QAJudgeResult:
    """Accuracy = yes / (yes + no) x100 and score = mean integer score over parsed replies (None when undefined)."""
    counts = {"yes": 0, "no": 0, "neither": 0}
    scores = []
    for judgment in judgments:
        if judgment.verdict is not None:
            counts[judgment.verdict] += 1
            scores.append(judgment.score)
    decided = counts["yes"] + counts["no"]
    return QAJudgeResult(
        accuracy=100.0 * counts["yes"] / decided if decided else None,
        score=sum(scores) / len(scores) if scores else None,
        num_yes=counts["yes"],
        num_no=counts["no"],
        num_neither=counts["neither"],
        num_skipped=sum(1 for j in judgments if j.verdict is None),
        judge_model=judge_model,
        temperature=temperature,
        judgments=list(judgments),
        protocol=protocol,
    )


def judge_qa(
    samples: Sequence[QASample],
    backend: JudgeBackend,
    cache: JudgmentCache | None = None,
    num_workers: int = 1,
    protocol: str = DEFAULT_PROTOCOL,
) -> QAJudgeResult:
    """Judge every sample (cached replies are reused, new ones cached as they arrive) and aggregate.

    Args:
        samples: the predictions to judge; `sample_id`s must be unique.
        backend: the judge (see `pite.eval.judge_backends`).
        cache: where replies are kept; without one every call asks the judge again.
        num_workers: concurrent requests to the judge (threads; replies are cached by the calling thread).
        protocol: how replies are parsed (`parse_judge_reply`); the cache holds raw replies, so both share it.

    Raises:
        whatever the backend raises once its own retries are exhausted; replies received before are in the cache.
    """
    check_protocol(protocol)
    ids = [s.sample_id for s in samples]
    if len(set(ids)) != len(ids):
        raise ValueError("sample_id values must be unique")
    model, temperature = backend.model_name, float(backend.temperature)
    if not model:
        raise ValueError("the judge backend has no model_name: results and the cache key need it")
    replies: dict[str, str] = {}
    pending = []
    for sample in samples:
        cached = cache.get(model, temperature, sample) if cache is not None else None
        if cached is None:
            pending.append(sample)
        else:
            replies[sample.sample_id] = cached

    def ask(sample: QASample) -> str:
        return backend.complete(judge_messages(sample.question, sample.answer, sample.prediction))

    def keep(sample: QASample, reply: str) -> None:
        replies[sample.sample_id] = reply
        if cache is not None:
            cache.put(model, temperature, sample, reply)

    if num_workers <= 1:
        for sample in pending:
            keep(sample, ask(sample))
    else:
        with ThreadPoolExecutor(max_workers=num_workers) as pool:
            futures = {pool.submit(ask, sample): sample for sample in pending}
            failure = None
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                if future.exception() is None:
                    keep(futures[future], future.result())  # requests already running still get cached
                elif failure is None:
                    failure = future.exception()
                    for other in futures:
                        other.cancel()
            if failure is not None:
                raise failure
    judgments = [judgment_from_reply(s.sample_id, replies[s.sample_id], model, temperature, protocol) for s in samples]
    return aggregate_judgments(judgments, model, temperature, protocol)
