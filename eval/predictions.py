"""A resumable store of model outputs: one JSON file, rewritten atomically.

Layout:
    {"meta": {...what produced them: task, data file, model...},
     "predictions": {sample_id: {"output": "model text", ...anything else}},
     "skipped": {sample_id: "why no output was made (video not found, unreadable video)"}}

The file is written atomically (`pite.core.file_writing`: temporary file, then `os.replace`), so it is
always either the previous or the new complete version, never half-written. Reopening an existing file resumes it:
`has(sample_id)` tells the runner what to skip. Skipped samples are recorded with their reason but do not count as
done: a rerun tries them again (e.g. after the missing videos were added). Reopening with different `meta` is refused
(mixing outputs of two models or two prompts in one file would silently corrupt the results).

Usage:
    >>> store = PredictionStore("runs/charades/predictions.json", meta={"task": "grounding"})  # doctest: +SKIP
    >>> store.add("3MSZA#0", "From 05 to 20.")  # doctest: +SKIP
    >>> store.flush()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

from pite.core.file_writing import write_json


class PredictionStore:
    """Model outputs keyed by sample id, persisted to one JSON file.

    Args:
        path: the JSON file (created on the first flush; loaded if it exists).
        meta: what produced the predictions; must equal the stored meta when resuming.
        flush_interval: seconds between automatic flushes in `add` (0 = flush on every add). Call `flush()` at the end
            (the runner does, also when generation fails).
    """

    def __init__(
        self, path: str | Path, meta: Mapping[str, object] | None = None, flush_interval: float = 10.0
    ) -> None:
        self.path = Path(path)
        self.meta = dict(meta or {})
        self.flush_interval = flush_interval
        self._predictions: dict[str, dict] = {}
        self._skipped: dict[str, str] = {}
        self._dirty = False
        self._last_flush = time.monotonic()
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                stored = json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"{self.path}: not a valid predictions file ({error})") from error
        if not isinstance(stored, dict) or not isinstance(stored.get("predictions"), dict):
            raise ValueError(f"{self.path}: not a predictions file (expected an object with a 'predictions' object)")
        stored_meta = json.loads(json.dumps(stored.get("meta", {})))
        wanted_meta = json.loads(json.dumps(self.meta))  # compare as JSON sees them (tuples -> lists)
        if self.meta and stored_meta != wanted_meta:
            differing = sorted(
                k for k in set(stored_meta) | set(wanted_meta) if stored_meta.get(k) != wanted_meta.get(k)
            )
            raise ValueError(
                f"{self.path} holds predictions made with different settings ({differing}); "
                "use another output file, or delete this one to start over"
            )
        self.meta = stored_meta
        for sample_id, entry in stored["predictions"].items():
            if not isinstance(entry, dict) or not isinstance(entry.get("output"), str):
                raise ValueError(f"{self.path}: prediction {sample_id!r} has no string 'output'")
        skipped = stored.get("skipped", {})
        if not isinstance(skipped, dict) or not all(isinstance(reason, str) for reason in skipped.values()):
            raise ValueError(f"{self.path}: 'skipped' must map sample ids to reasons (strings)")
        self._predictions = stored["predictions"]
        self._skipped = dict(skipped)

    def __len__(self) -> int:
        return len(self._predictions)

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self._predictions

    def has(self, sample_id: str) -> bool:
        return sample_id in self._predictions

    def output(self, sample_id: str) -> str:
        """The stored model output of `sample_id` (KeyError if none)."""
        return self._predictions[sample_id]["output"]

    def entries(self) -> dict[str, dict]:
        """A copy of all entries."""
        return {k: dict(v) for k, v in self._predictions.items()}

    def add(self, sample_id: str, output: str, **extra: object) -> None:
        """Record one output (replacing any earlier one); flushes if `flush_interval` has passed."""
        if not isinstance(output, str):
            raise TypeError(f"output of {sample_id!r} must be a string, got {type(output).__name__}")
        self._predictions[sample_id] = {"output": output, **extra}
        self._skipped.pop(sample_id, None)
        self._dirty = True
        if time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def skip(self, sample_id: str, reason: str) -> None:
        """Record that `sample_id` got no output and why; a later `add` of it clears the record."""
        if sample_id in self._predictions:
            raise ValueError(f"{sample_id!r} already has an output in {self.path}; it cannot be marked skipped")
        if self._skipped.get(sample_id) != reason:
            self._skipped[sample_id] = str(reason)
            self._dirty = True

    def skipped(self) -> dict[str, str]:
        """A copy of the skipped samples and their reasons."""
        return dict(self._skipped)

    def flush(self) -> None:
        """Write the file atomically if anything changed since the last write."""
        if self._dirty or not self.path.exists():
            write_json(self.path, {"meta": self.meta, "predictions": self._predictions, "skipped": self._skipped})
            self._dirty = False
        self._last_flush = time.monotonic()
