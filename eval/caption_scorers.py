"""Caption scorers of the COCO toolkit (pycocoevalcap): PTB tokenization, METEOR 1.5, CIDEr.

METEOR and the Stanford PTB tokenizer are Java programs shipped inside pycocoevalcap; CIDEr is pure Python.
Without `java` on PATH, `ptb_tokenize` and `MeteorScorer` raise `JavaNotFoundError` (saying so), and
`python_tokenize` stands in for the PTB tokenizer so that CIDEr can still be computed (marked in the results).

Why our own drivers rather than pycocoevalcap's classes: its METEOR wrapper pipes the JVM's stderr without reading it
(a deadlock risk), spawns `java` from PATH without checking, and closes the process only in `__del__`; its PTB wrapper
writes a temporary file into site-packages. Here the same jars run with the same arguments, stderr discarded,
one METEOR process per `MeteorScorer` (start-up loads the paraphrase table: ~10 s; share one scorer across calls),
closed by `close()` / a `with` block, or at garbage collection at the latest.

Usage:
    >>> with MeteorScorer() as meteor:  # doctest: +SKIP
    ...     meteor.segment_scores([("a man walks", ["a man walks"])])
    [1.0]
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path


class JavaNotFoundError(RuntimeError):
    """Raised when a Java-based scorer is needed but no `java` executable is on PATH."""


def find_java() -> str | None:
    """Path of the `java` executable on PATH, or `None`."""
    return shutil.which("java")


def require_java(purpose: str) -> str:
    """Path of `java`, or a `JavaNotFoundError` explaining that `purpose` needs it."""
    java = find_java()
    if java is None:
        raise JavaNotFoundError(
            f"{purpose} needs a Java runtime, but no 'java' executable is on PATH: pycocoevalcap runs METEOR 1.5 and "
            "the Stanford PTB tokenizer as Java programs. Install a JRE "
            "(e.g. apt-get install openjdk-17-jre-headless) or put java on PATH."
        )
    return java


def _pycocoevalcap_dir() -> Path:
    try:
        import pycocoevalcap
    except ImportError as error:  # an optional extra: say which one
        raise ImportError("caption metrics need pycocoevalcap: pip install 'pite[eval]'") from error
    # pycocoevalcap 1.2 has no __init__.py (a namespace package): take its first search-path entry.
    return Path(list(pycocoevalcap.__path__)[0])


def _ptb_punctuation() -> frozenset[str]:
    """The tokens pycocoevalcap's PTB wrapper drops after tokenizing (its protocol constant, not a copy)."""
    _pycocoevalcap_dir()
    from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS

    return frozenset(PUNCTUATIONS)


def ptb_tokenize(sentences: Sequence[str]) -> list[str]:
    """Tokenize like pycocoevalcap's `PTBTokenizer`: Stanford PTB, lower-cased, punctuation tokens dropped.

    One JVM run for all `sentences` (start them together). Note the toolkit's quirk, kept: brackets become
    `-lrb-` / `-rrb-` tokens, which survive because the drop list holds only their upper-case forms.

    Returns:
        one space-joined token string per sentence, aligned with `sentences`.
    """
    java = require_java("PTB tokenization")
    if not sentences:
        return []
    jar = _pycocoevalcap_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"
    text = "\n".join(sentence.replace("\n", " ").replace("\r", " ") for sentence in sentences)
    completed = subprocess.run(
        [java, "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase"],
        input=text.encode("utf-8"),
        capture_output=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"PTB tokenizer failed ({completed.returncode}): {completed.stderr.decode()[-500:]}")
    lines = completed.stdout.decode("utf-8", errors="replace").split("\n")
    if len(lines) < len(sentences):  # trailing empty sentences may come back without their line
        lines += [""] * (len(sentences) - len(lines))
    drop = _ptb_punctuation()
    return [
        " ".join(token for token in line.rstrip().split(" ") if token and token not in drop)
        for line in lines[: len(sentences)]
    ]


_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
_PY_TOKEN = re.compile(r"n't|'(?:s|re|ve|ll|d|m)\b|\d+(?:[.,]\d+)*|\w+(?:[-.]\w+)*|\.\.\.|--|\S")


def python_tokenize(sentences: Sequence[str]) -> list[str]:
    """A pure-Python stand-in for `ptb_tokenize`, used for CIDEr when Java is missing.

    Lower-cases, splits punctuation and the clitics `n't 's 're 've 'll 'd 'm` off words, writes brackets as PTB does
    (`-lrb-` ...), and drops the same punctuation tokens. It agrees with PTB on plain captions; it may differ on rarer
    constructions (quotes, abbreviations), so results computed with it say `"tokenizer": "python"`.
    """
    drop = _ptb_punctuation()
    tokenized = []
    for sentence in sentences:
        lowered = sentence.lower()
        # "don't" -> "do n't" as PTB does, before the word regex can keep "n" with its word
        lowered = re.sub(r"(\w)n't\b", r"\1 n't", lowered)
        tokens = [_BRACKETS.get(token, token) for token in _PY_TOKEN.findall(lowered)]
        tokens = ["``" if token == '"' else token for token in tokens]
        tokenized.append(" ".join(token for token in tokens if token not in drop))
    return tokenized


def _clean_meteor_text(text: str) -> str:
    # "|||" separates fields and a newline ends a command in the METEOR stdio protocol.
    return " ".join(text.replace("|||", "").split())


def _terminate(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            process.stdin.close()
        except OSError:
            pass
        process.kill()
    process.wait()
    process.stdout.close()


class MeteorScorer:
    """One METEOR 1.5 process (`-l en -norm`, as pycocoevalcap runs it), shared by every call on this object.

    `segment_scores` gives each (hypothesis, references) pair its own METEOR score; `corpus_score` gives the
    score of a set of pairs aggregated over their statistics, which is what pycocoevalcap's `Meteor.compute_score`
    returns as its first value (not the mean of the segment scores).
    """

    def __init__(self, max_heap: str = "2G") -> None:
        java = require_java("METEOR")
        meteor_dir = _pycocoevalcap_dir() / "meteor"
        command = [java, "-jar", f"-Xmx{max_heap}", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en", "-norm"]
        self._process = subprocess.Popen(
            command, cwd=meteor_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self._lock = threading.Lock()
        self._stats_cache: dict[tuple[str, tuple[str, ...]], str] = {}
        self._finalizer = weakref.finalize(self, _terminate, self._process)

    def __enter__(self) -> MeteorScorer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        """End the Java process (idempotent)."""
        self._finalizer()

    def _request(self, line: str, num_replies: int) -> list[str]:
        if self.closed:
            raise RuntimeError("this MeteorScorer is closed")
        self._process.stdin.write((line + "\n").encode("utf-8"))
        self._process.stdin.flush()
        replies = []
        for _ in range(num_replies):
            reply = self._process.stdout.readline()
            if not reply:
                raise RuntimeError(f"the METEOR process ended unexpectedly (exit code {self._process.poll()})")
            replies.append(reply.decode("utf-8").strip())
        return replies

    def _stats(self, hypothesis: str, references: Sequence[str]) -> str:
        key = (_clean_meteor_text(hypothesis), tuple(_clean_meteor_text(r) for r in references))
        if not key[1]:
            raise ValueError(f"METEOR needs at least one reference for hypothesis {hypothesis!r}")
        if key not in self._stats_cache:
            line = " ||| ".join(("SCORE", " ||| ".join(key[1]), key[0]))
            self._stats_cache[key] = self._request(line, 1)[0]
        return self._stats_cache[key]

    def _evaluate(self, pairs: Sequence[tuple[str, Sequence[str]]]) -> tuple[list[float], float]:
        with self._lock:
            stats = [self._stats(hypothesis, references) for hypothesis, references in pairs]
            replies = self._request("EVAL ||| " + " ||| ".join(stats), len(stats) + 1)
        return [float(reply) for reply in replies[:-1]], float(replies[-1])

    def segment_scores(self, pairs: Sequence[tuple[str, Sequence[str]]]) -> list[float]:
        """METEOR of each `(hypothesis, references)` pair on its own, in order."""
        if not pairs:
            return []
        return self._evaluate(pairs)[0]

    def corpus_score(self, pairs: Sequence[tuple[str, Sequence[str]]]) -> float:
        """METEOR of all pairs together (aggregated statistics), as pycocoevalcap's `compute_score` reports it."""
        if not pairs:
            raise ValueError("corpus_score needs at least one pair")
        return self._evaluate(pairs)[1]


def cider_score(pairs: Sequence[tuple[str, Sequence[str]]]) -> float:
    """pycocoevalcap's CIDEr (its CIDEr-D variant: n = 4, sigma = 6) of tokenized `(hypothesis, references)` pairs.

    Document frequencies come from the references of these pairs only; with a single pair every n-gram has idf 0,
    so the score is 0 (a property of the toolkit, kept).
    """
    if not pairs:
        raise ValueError("cider_score needs at least one pair")
    _pycocoevalcap_dir()
    from pycocoevalcap.cider.cider import Cider

    hypotheses = {index: [hypothesis] for index, (hypothesis, _) in enumerate(pairs)}
    references = {index: list(refs) for index, (_, refs) in enumerate(pairs)}
    score, _ = Cider().compute_score(references, hypotheses)
    return float(score)
