"""A saved PiTe answering evaluation records: the `generate_fn` that `pite.eval.runner.generate_predictions` calls.

Per batch of `EvalRecord`s:
1. the question (`pite.eval.prompts.task_question`) goes into the v1 chat template exactly as training asks it:
   `[{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]` with the generation
   prompt (`processor.apply_chat_template`), so the model sees "... USER: <video>\\n{question} ASSISTANT:";
2. the processor samples N frames of each video and pads the prompts on the LEFT (forced here: generation appends
   to the end of every row, so the padding must not sit between a prompt and its answer);
3. `model.generate` runs greedy (`do_sample=False`) unless sampling is asked for, at most `max_new_tokens`;
4. only the new tokens are decoded (special tokens dropped, whitespace stripped).

A video that cannot be read (corrupt, empty, undecodable) does not stop the run: the batch is retried without it
and the record gets a `SkippedSample` naming the file and the error, which the runner records in the predictions
file. Errors of the model itself (out of memory, ...) propagate: the runner has saved every earlier batch.

Usage:
    >>> generator = PiTeGenerator.from_pretrained("runs/pite-7b", max_new_tokens=256)  # doctest: +SKIP
    >>> generate_predictions(dataset, generator, store, batch_size=8)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pite.core.loading import check_model_and_processor, load_pite
from pite.eval.datasets import EvalRecord
from pite.eval.prompts import task_question
from pite.eval.runner import SkippedSample

logger = logging.getLogger(__name__)

# A video the processor cannot read raises one of these (its VideoInputError is a ValueError; a vanished file an
# OSError; decoders may raise RuntimeError). Caught per video only, never around `generate`.
VIDEO_READ_ERRORS = (ValueError, OSError, RuntimeError)


@dataclass(frozen=True)
class GenerationSettings:
    """How answers are generated; all of it is recorded with the predictions (it changes the outputs).

    `num_frames` None means the processor's own N. Greedy unless `do_sample`; `temperature` / `top_p` / `seed`
    only apply when sampling.
    """

    max_new_tokens: int = 256
    num_frames: int | None = None
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.num_frames is not None and self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.do_sample and not (self.temperature > 0 and 0 < self.top_p <= 1):
            raise ValueError(
                f"sampling needs temperature > 0 and 0 < top_p <= 1, got {self.temperature}, {self.top_p}"
            )

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `model.generate`."""
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample}
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        return kwargs


def inference_device_and_dtype(device: str | None, dtype: str | None) -> tuple[str, str]:
    """Evaluation's defaults: CUDA when available, else the CPU; float32 on the CPU (half-precision matmuls are
    slow or missing there), the checkpoint's own dtype ("auto") elsewhere."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return device, dtype or ("float32" if torch.device(device).type == "cpu" else "auto")


def load_for_inference(
    model_dir: str | Path, device: str | None = None, dtype: str | None = None, trust_remote_code: bool = False
) -> tuple[Any, Any]:
    """(model in eval mode on `device`, processor) of a saved PiTe folder, with evaluation's device and dtype
    defaults (`inference_device_and_dtype`); loaded and checked by `pite.core.loading.load_pite`."""
    device, dtype = inference_device_and_dtype(device, dtype)
    return load_pite(model_dir, trust_remote_code, dtype=dtype, device=device, eval_mode=True)


def chat_prompt(processor: Any, question: str) -> str:
    """The v1 prompt asking `question` about one video, ending with the generation prompt "ASSISTANT:"."""
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


class PiTeGenerator:
    """`generate_fn` for `generate_predictions`: answers a batch of records with a PiTe model.

    Args:
        model: a `PiTeForConditionalGeneration` (or the remote-code class) in eval mode.
        processor: its `PiTeProcessor`; its tokenizer is switched to left padding.
        settings: generation settings.
    """

    def __init__(self, model: Any, processor: Any, settings: GenerationSettings | None = None) -> None:
        check_model_and_processor(model, processor)
        self.model = model
        self.processor = processor
        self.settings = settings or GenerationSettings()
        self.num_frames = self.settings.num_frames or int(processor.num_frames)
        tokenizer = processor.tokenizer
        tokenizer.padding_side = "left"
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if self.pad_token_id is None:
            raise ValueError("the tokenizer has neither a pad nor an eos token: batched generation cannot pad")

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        settings: GenerationSettings | None = None,
        device: str | None = None,
        dtype: str | None = None,
        trust_remote_code: bool = False,
    ) -> PiTeGenerator:
        """Load a saved PiTe folder (see `load_for_inference`) and wrap it."""
        model, processor = load_for_inference(model_dir, device, dtype, trust_remote_code)
        return cls(model, processor, settings)

    def __call__(self, records: Sequence[EvalRecord]) -> list[str | SkippedSample]:
        """One answer per record, in order; `SkippedSample` for records whose video cannot be read."""
        results: list[str | SkippedSample | None] = [None] * len(records)
        readable = []
        for index, record in enumerate(records):
            if record.video_path is None:
                results[index] = SkippedSample(f"record {record.sample_id!r} has no video path")
            else:
                readable.append(index)
        try:
            inputs = self._batch_inputs(records, readable)
        except VIDEO_READ_ERRORS:
            # Some video cannot be read: find which, one by one, and run the others as one batch.
            for index in list(readable):
                reason = self._unreadable(records[index].video_path)
                if reason is not None:
                    logger.warning("skipping %s: %s", records[index].sample_id, reason)
                    results[index] = SkippedSample(reason)
                    readable.remove(index)
            inputs = self._batch_inputs(records, readable)
        if inputs is not None:
            for index, answer in zip(readable, self.generate(inputs)):
                results[index] = answer
        return results  # every slot is filled: readable ones by generate, the others with a SkippedSample

    def _batch_inputs(self, records: Sequence[EvalRecord], indices: list[int]) -> dict[str, Any] | None:
        """Processor outputs (left-padded prompts, frames, metadata) for `records[indices]`; None if there are none."""
        if not indices:
            return None
        prompts = [chat_prompt(self.processor, task_question(records[index])) for index in indices]
        videos = [str(records[index].video_path) for index in indices]
        return self.processor(
            text=prompts, videos=videos, num_frames=self.num_frames, padding=True, return_tensors="pt"
        )

    def _unreadable(self, video: Path) -> str | None:
        """Why `video` cannot be read, or None if it can."""
        try:
            self.processor.read_videos([str(video)], num_frames=self.num_frames)
        except VIDEO_READ_ERRORS as error:
            return f"unreadable video {str(video)!r}: {type(error).__name__}: {error}"
        return None

    @torch.no_grad()
    def generate(self, inputs: dict[str, Any]) -> list[str]:
        """Decoded answers (new tokens only) for processor outputs `inputs` (B rows, left-padded)."""
        device = self.model.device
        model_inputs = {key: value.to(device) for key, value in inputs.items() if isinstance(value, torch.Tensor)}
        if self.settings.do_sample:
            torch.manual_seed(self.settings.seed)
        sequences = self.model.generate(
            **model_inputs, pad_token_id=self.pad_token_id, **self.settings.generate_kwargs()
        )
        new_tokens = sequences[:, model_inputs["input_ids"].shape[1] :]
        texts = self.processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [text.strip() for text in texts]
