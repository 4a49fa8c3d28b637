"""Held-out evaluation of the demo: each of the model's numbers beside the baseline it must beat.

- trajectories: teacher-forced on the held-out videos' stage-2 conversations (the phrase tokens' trajectory
  predictions against the ground truth; masked L1 in normalised coordinates, `pite.eval.trajectory`), against a
  constant-centre prediction and against the untrained model;
- temporal grounding: "During which frames can we see {event}?" answered by greedy generation, parsed and scored
  with `pite.eval.grounding` (mIoU, R@1), against uniformly random intervals (seeded, averaged over 100 draws);
- video QA: the held-out ActivityNet-QA-format questions answered by greedy generation; exact match of the
  normalised answer (the world's answers are a closed set, so no LLM judge is needed), against answering every
  question with the most frequent training answer of its question type.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pite.eval.grounding import grounding_scores
from pite.eval.intervals import parse_grounding_answer
from pite.eval.prompts import grounding_question
from pite.eval.trajectory import trajectory_scores


def _normalise_answer(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


@torch.no_grad()
def answer_questions(model, processor, questions: list[tuple[str, str]], batch_size: int = 8,
                     max_new_tokens: int = 16) -> list[str]:
    """Greedy answers to (video path, question) pairs, batched with left padding."""
    answers = []
    model.eval()
    for start in range(0, len(questions), batch_size):
        batch = questions[start:start + batch_size]
        prompts = [
            processor.apply_chat_template(
                [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}],
                add_generation_prompt=True,
            )
            for _, question in batch
        ]
        inputs = processor(text=prompts, videos=[video for video, _ in batch])
        inputs.pop("video_metadata")
        sequences = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new_tokens = sequences[:, inputs["input_ids"].shape[1]:]
        answers += processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return [answer.strip() for answer in answers]


def grounding_evaluation(model, processor, captions_file: str, videos_dir: str, seed: int = 0) -> dict[str, Any]:
    captions = json.loads(Path(captions_file).read_text())
    queries, references, durations = [], [], []
    for video_id, entry in captions.items():
        for sentence, interval in zip(entry["sentences"], entry["timestamps"]):
            queries.append((str(Path(videos_dir) / f"{video_id}.mp4"), grounding_question(sentence)))
            references.append(tuple(interval))
            durations.append(entry["duration"])
    answers = answer_questions(model, processor, queries)
    predictions = [parse_grounding_answer(a, d, model.config.num_frames) for a, d in zip(answers, durations)]
    model_scores = grounding_scores(predictions, references)
    rng = np.random.default_rng(seed)
    random_mious = []
    for _ in range(100):
        draws = [tuple(sorted(rng.uniform(0, d, size=2))) for d in durations]
        random_mious.append(grounding_scores(draws, references)["mIoU"])
    return {"model": model_scores, "random_interval_mIoU": float(np.mean(random_mious)),
            "examples": [{"question": q, "answer": a, "truth": r} for (_, q), a, r in list(zip(queries, answers, references))[:5]]}


def qa_evaluation(model, processor, questions_file: str, answers_file: str, videos_dir: str,
                  training_questions: list[dict]) -> dict[str, Any]:
    questions = json.loads(Path(questions_file).read_text())
    answers = {a["question_id"]: a for a in json.loads(Path(answers_file).read_text())}
    pairs = [(str(Path(videos_dir) / f"v_{q['video_name']}.mp4"), q["question"]) for q in questions]
    predicted = answer_questions(model, processor, pairs)
    truths = [answers[q["question_id"]]["answer"] for q in questions]
    types = [answers[q["question_id"]]["type"] for q in questions]
    correct = [_normalise_answer(p) == _normalise_answer(t) for p, t in zip(predicted, truths)]
    # Majority baseline: the most frequent training answer of each question type (its first word decides the type
    # here, as the eval files' type codes are not in the training formats).
    by_kind: dict[str, Counter] = {}
    for record in training_questions:
        by_kind.setdefault(_question_kind(record["q"]), Counter())[_normalise_answer(record["a"])] += 1
    overall = Counter(_normalise_answer(r["a"]) for r in training_questions)
    majority_correct = []
    for question, truth in zip(questions, truths):
        counter = by_kind.get(_question_kind(question["question"]), overall)
        majority_correct.append(counter.most_common(1)[0][0] == _normalise_answer(truth))
    return {"model_accuracy": 100.0 * float(np.mean(correct)), "majority_accuracy": 100.0 * float(np.mean(majority_correct)),
            "num_questions": len(questions), "question_types": dict(Counter(types)),
            "examples": [{"question": q["question"], "answer": p, "truth": t}
                         for q, p, t in list(zip(questions, predicted, truths))[:5]]}


def _question_kind(question: str) -> str:
    words = question.lower().split()
    return " ".join(words[:2])


@torch.no_grad()
def trajectory_evaluation(models: dict[str, Any], processor, trajectories_file: str, videos_dir: str) -> dict[str, Any]:
    """Teacher-forced trajectory error of each model on the held-out stage-2 conversations, plus the centre baseline."""
    from pite.training.data_pite143k import pite143k_example
    from pite.training.featurize import ExampleFeaturizer

    any_model = next(iter(models.values()))
    config = any_model.config
    featurizer = ExampleFeaturizer(processor, config.num_trajectory_points, 4096, None)
    predictions: dict[str, list[np.ndarray]] = {name: [] for name in models}
    targets: list[np.ndarray] = []
    for line_number, line in enumerate(Path(trajectories_file).read_text().splitlines(), 1):
        record = json.loads(line)
        example = pite143k_example(record, f"{trajectories_file}:{line_number}", videos_dir, config.num_frames,
                                   config.num_trajectory_points)
        features = featurizer(example)
        labels = torch.as_tensor(features["trajectory_labels"])[None]
        valid_tokens = (labels[0, 1:] != -1).any(-1).any(-1).any(-1)  # target tokens t (predicted from t - 1)
        if not valid_tokens.any():
            continue
        targets.append(labels[0, 1:][valid_tokens].numpy())
        inputs = {"input_ids": torch.as_tensor(features["input_ids"])[None]}  # one conversation: no padding
        visual_key = "pixel_values_videos" if "pixel_values_videos" in features else "video_features"
        inputs[visual_key] = torch.as_tensor(features[visual_key])[None]
        for name, model in models.items():
            output = model.eval()(**inputs)
            predictions[name].append(output.trajectory_predictions[0, :-1][valid_tokens].float().numpy())
    truth = np.concatenate(targets)
    result = {name: trajectory_scores(np.concatenate(p), truth) for name, p in predictions.items()}
    result["constant_centre"] = trajectory_scores(np.full_like(truth, 0.5), truth)
    return result
