"""Can the demo's stand-in LLM read *where* in a sequence something is? A text-only probe of what grounding needs.

Temporal grounding asks the LLM to write the indices of an event's frames ("From 12 to 45."). PiTe gives it one
feature per frame and nothing that says which frame it is: a frame's index exists for the LLM only as its place in
the sequence. Llama's rotary embeddings encode relative offsets, so an absolute index has to be counted (through
causal attention). Vicuna learnt to do that from trillions of tokens; the demo's stand-in Llama is trained from scratch
for a few hundred steps (`pite.demo.text_pretraining`).

This probe trains the stand-in's architecture (the demo's text config, from scratch) on the same reading task with
words in place of frames: N filler words with one word repeated over a run of positions, "During which frames can we
see {word}?" -> "From SS to EE." (the demo's time format), the loss on the answer only. Held-out answers are scored
with the demo's grounding metric (mIoU, VTimeLLM's reference protocol) against one span answered to every query, the
best on the training spans (`pite.demo.evaluation.constant_span_answer`), exactly as the demo scores the model on
videos. Nothing about the content is hard here (the queried word is in the question and in the run): only the reading
of positions is. A stand-in that cannot learn this from text in more steps than the demo trains cannot learn it from
video features in the demo, and the demo's grounding figures then measure the stand-in, not PiTe.

`pite demo --probe-stand-in` runs it and writes OUT/stand_in_probe.json.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import LlamaForCausalLM
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from pite.data.templates import GROUNDING_ANSWER, GROUNDING_QUESTION
from pite.processing import format_frame_index, format_time_span

FILLER_WORDS = ("red", "green", "blue", "yellow", "purple", "circle", "square", "triangle")


@dataclass(frozen=True)
class SpanQuery:
    """One probe sample: `prompt` (the words and the question), `answer`, and the run's first and last position."""

    prompt: str
    answer: str
    start: int
    end: int


def span_query(rng: np.random.Generator, num_positions: int, words: Sequence[str] = FILLER_WORDS) -> SpanQuery:
    """N words drawn from `words` but one, which fills positions [start, end] (inclusive) and nowhere else."""
    if num_positions < 4 or len(words) < 2:
        raise ValueError(f"need num_positions >= 4 and two words or more, got {num_positions} and {len(words)}")
    queried = int(rng.integers(len(words)))
    others = [word for index, word in enumerate(words) if index != queried]
    start = int(rng.integers(0, num_positions - 1))
    end = int(min(num_positions - 1, start + rng.integers(1, max(2, num_positions // 2))))
    sequence = [others[int(i)] for i in rng.integers(len(others), size=num_positions)]
    sequence[start : end + 1] = [words[queried]] * (end - start + 1)
    question = GROUNDING_QUESTION.format(words[queried])
    prompt = f"This is a video with {num_positions} frames: {' '.join(sequence)}\n{question}"
    answer = GROUNDING_ANSWER.format(
        start=format_frame_index(start, num_positions), end=format_frame_index(end, num_positions)
    )
    return SpanQuery(prompt, answer, start, end)


def probe_corpus(num_positions: int) -> list[str]:
    """Texts for the probe's tokenizer: the words, the question, every answer index."""
    rng = np.random.default_rng(0)
    texts = [f"{q.prompt} {q.answer}" for q in (span_query(rng, num_positions) for _ in range(200))]
    # Frame i of num_positions is i seconds of a num_positions-second video: the processor's span form of index i.
    texts += [
        format_time_span(float(i), float(i), float(num_positions), num_positions) for i in range(num_positions)
    ] * 5
    return texts


def tokenize_query(tokenizer: Any, query: SpanQuery) -> dict[str, list[int]]:
    """`input_ids` (BOS, prompt, answer, EOS) and `labels` (-100 but on the answer and EOS) for SFT's collator."""
    prompt = tokenizer(query.prompt, add_special_tokens=True)["input_ids"]
    answer = tokenizer(" " + query.answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return {"input_ids": prompt + answer, "labels": [-100] * len(prompt) + answer}


@torch.no_grad()
def read_spans(model: LlamaForCausalLM, tokenizer: Any, queries: Sequence[SpanQuery], batch_size: int = 32) -> list:
    """Greedy answers of `model` to `queries` (left-padded batches)."""
    model.eval()
    answers = []
    for first in range(0, len(queries), batch_size):
        chunk = queries[first : first + batch_size]
        encoded = tokenizer([q.prompt for q in chunk], return_tensors="pt", padding=True, padding_side="left")
        output = model.generate(**encoded, max_new_tokens=10, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        answers += tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
    return [answer.strip() for answer in answers]


def score_span_answers(answers: Sequence[str], queries: Sequence[SpanQuery], num_positions: int) -> dict[str, Any]:
    """mIoU and R@1 of `answers`, scored as the demo scores grounding (the span in index units: a position is a
    second of an N-second video sampled at N frames)."""
    from pite.eval.grounding import grounding_text_scores

    spans = [(float(q.start), float(q.end)) for q in queries]
    return grounding_text_scores(list(answers), spans, [float(num_positions)] * len(queries), num_positions)


def span_reading_probe(
    text_config: Any,
    tokenizer: Any,
    steps: int,
    num_positions: int = 100,
    batch_size: int = 16,
    learning_rate: float = 3e-3,
    num_eval_queries: int = 200,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train a `LlamaForCausalLM` of `text_config` from scratch on span reading for `steps`; score held-out queries.

    Returns {"steps", "num_positions", "model" (grounding scores), "constant_span" ({"answer", scores}),
    "examples", "loss_first", "loss_last", "seconds"}.
    """
    from pite.demo.evaluation import constant_span_answer

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    train_rng, eval_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1_000_003)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(text_config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=steps, pct_start=0.1)
    clock = time.perf_counter()
    seen: list[tuple[float, float]] = []
    losses = []
    # TRL's SFT collator: right padding, labels padded with -100, the attention mask.
    collate = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)
    for step in range(steps):
        queries = [span_query(train_rng, num_positions) for _ in range(batch_size)]
        seen += [(q.start / num_positions, q.end / num_positions) for q in queries]
        loss = model(**collate([tokenize_query(tokenizer, q) for q in queries]), use_cache=False).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if progress is not None:
            progress(step, losses[-1])
    held_out = [span_query(eval_rng, num_positions) for _ in range(num_eval_queries)]
    answers = read_spans(model, tokenizer, held_out)
    constant = constant_span_answer(np.asarray(seen), num_positions)
    return {
        "steps": steps,
        "num_positions": num_positions,
        "model": score_span_answers(answers, held_out, num_positions),
        "constant_span": {
            "answer": constant,
            **score_span_answers([constant] * len(held_out), held_out, num_positions),
        },
        "distinct_answers": len(set(answers)),
        "examples": [{"truth": q.answer, "answer": a} for q, a in list(zip(held_out, answers))[:5]],
        "loss_first": losses[0],
        "loss_last": float(np.mean(losses[-20:])),
        "seconds": time.perf_counter() - clock,
    }
