"""Held-out evaluation of the demo: each of the model's numbers beside the baseline it must beat.

Everything runs through `pite.eval` (readers, `PiTeGenerator`, `evaluate_trajectories`, metrics), as
`pite eval` does on real benchmarks:
- trajectories: teacher-forced on the held-out videos' stage-2 conversations (masked L1 in normalised coordinates
  and PCK), against the constant-centre prediction and against the untrained model; split by the place of the token
  in its phrase and by how many objects the video's captions name (`by_object_count`);
- temporal grounding on the held-out ActivityNet-Captions-format file (mIoU, R@1, VTimeLLM's "reference" protocol as
  in the paper's table), against uniformly random intervals (seeded, mean over 100 draws, same protocol) and against
  one span answered to every query, the one that scores best on the training events (`constant_span_answer`): what
  a model that learnt only where events tend to lie, and nothing of the video, would reach;
- video QA on the held-out ActivityNet-QA-format files: exact match of the normalised answer (the world's answers are
  a closed set, so no LLM judge is needed), against answering each question with the most frequent training answer
  of its question kind;
- the frozen frame encoder on its own: each colour's centre read linearly from every sampled frame's feature
  (`frame_encoder_readout`), against the object held still at its mean position: how much of where things move the
  features hold, whatever the LLM above them makes of it;
- grounded words: teacher-forced on the held-out captions, the words `post_process_generation` reports as grounded
  (without `phrases=`) against the world's truth (the words of its object phrases), precision and recall, against
  reporting every word.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from pite.data.records import BadRecordError, read_json_records
from pite.data.targets import build_training_features
from pite.eval.datasets import read_activitynet_captions, read_activitynet_qa
from pite.eval.grounding import grounding_scores, grounding_text_scores
from pite.eval.model_runner import PiTeGenerator
from pite.eval.trajectory_runner import REFERENCE_PREDICTORS, evaluate_trajectories, pool_scores
from pite.modeling_pite.losses_pite import IGNORE_INDEX, valid_point_mask
from pite.processing import format_time_span
from pite.processing.postprocessing_pite import WORD_PATTERN


def normalise_answer(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


def question_kind(question: str) -> str:
    """The first two words ("what colour", "how many", "in which", "does the"): the question's kind."""
    return " ".join(question.lower().split()[:2])


def _answers(generator: PiTeGenerator, records: list) -> list[str]:
    outputs = generator(records)
    return [output if isinstance(output, str) else "" for output in outputs]


def trajectory_records(trajectories_file: str | Path) -> Iterator[dict[str, Any]]:
    """The video records of a PiTe-143k-style file (JSONL or a JSON list), read by `pite.data.records`; a line that is
    not JSON stops with the `BadRecordError` naming it."""
    for _, record in read_json_records(str(trajectories_file)):
        if isinstance(record, BadRecordError):
            raise record
        yield record


def training_event_fractions(trajectories_file: str) -> np.ndarray:
    """(E, 2) start and end of every event of a PiTe-143k-style file, as fractions of its video's duration."""
    spans = []
    for record in trajectory_records(trajectories_file):
        spans += [
            (event["start"] / record["duration"], event["end"] / record["duration"]) for event in record["events"]
        ]
    return np.asarray(spans, dtype=np.float64).reshape(-1, 2)


def constant_span_answer(event_fractions: np.ndarray, num_frames: int) -> str:
    """The one answer "From SS to EE." (frame indices of `num_frames`) whose span has the highest mean IoU with the
    given events (fractions of their videos, as VTimeLLM's reference scoring compares them)."""
    if len(event_fractions) == 0:
        raise ValueError("no events to choose a span from")
    first, last = np.triu_indices(num_frames, k=1)  # every span start < end
    starts, ends = first[:, None] / num_frames, last[:, None] / num_frames
    overlap = np.clip(np.minimum(ends, event_fractions[:, 1]) - np.maximum(starts, event_fractions[:, 0]), 0, None)
    union = np.maximum(ends, event_fractions[:, 1]) - np.minimum(starts, event_fractions[:, 0])
    best = int(np.argmax((overlap / union).mean(axis=1)))
    return f"From {first[best]:02d} to {last[best]:02d}."


def grounding_evaluation(
    model, processor, captions_file: str, videos_dir: str, training_events: np.ndarray, seed: int = 0
) -> dict[str, Any]:
    """`training_events`: (E, 2) training events as fractions of their videos (`training_event_fractions`), for the
    constant-span baseline."""
    records = read_activitynet_captions(captions_file, videos_dir, task="grounding").records
    answers = _answers(PiTeGenerator(model, processor), records)
    references, durations = [r.intervals[0] for r in records], [r.duration for r in records]
    num_frames = model.config.num_frames
    # Scored as the paper's table was (VTimeLLM's evaluation code: the "reference" protocol), and so are the baselines.
    scores = grounding_text_scores(answers, references, durations, num_frames)
    rng = np.random.default_rng(seed)
    random_mious = [
        grounding_scores([tuple(sorted(rng.uniform(0, r.duration, size=2))) for r in records], references)["mIoU"]
        for _ in range(100)
    ]
    constant = constant_span_answer(training_events, num_frames)
    answered = Counter(answers)
    return {
        "model": scores,
        "random_interval_mIoU": float(np.mean(random_mious)),
        "constant_span": {
            "answer": constant,
            "mIoU": grounding_text_scores([constant] * len(records), references, durations, num_frames)["mIoU"],
        },
        "distinct_answers": len(answered),
        "most_common_answer": list(answered.most_common(1)[0]),
        "examples": [
            {"question": r.query, "answer": a, "truth": list(r.intervals[0])}
            for r, a in list(zip(records, answers))[:5]
        ],
    }


def qa_evaluation(
    model, processor, questions_file: str, answers_file: str, videos_dir: str, training_qa: list[tuple[str, str]]
) -> dict[str, Any]:
    """`training_qa`: (question, answer) pairs of the training set, for the majority baseline."""
    records = read_activitynet_qa(questions_file, answers_file, videos_dir).records
    predicted = _answers(PiTeGenerator(model, processor), records)
    correct = [normalise_answer(p) == normalise_answer(r.answer) for p, r in zip(predicted, records)]
    by_kind: dict[str, Counter] = {}
    for question, answer in training_qa:
        by_kind.setdefault(question_kind(question), Counter())[normalise_answer(answer)] += 1
    overall = Counter(normalise_answer(answer) for _, answer in training_qa)
    majority = [
        by_kind.get(question_kind(r.query), overall).most_common(1)[0][0] == normalise_answer(r.answer)
        for r in records
    ]
    per_kind: dict[str, dict[str, int]] = {}
    for record, model_right, majority_right in zip(records, correct, majority):
        counts = per_kind.setdefault(
            question_kind(record.query), {"questions": 0, "model_correct": 0, "majority_correct": 0}
        )
        counts["questions"] += 1
        counts["model_correct"] += int(model_right)
        counts["majority_correct"] += int(majority_right)
    return {
        "model_accuracy": 100.0 * float(np.mean(correct)),
        "majority_accuracy": 100.0 * float(np.mean(majority)),
        "num_questions": len(records),
        "by_kind": per_kind,
        "examples": [
            {"question": r.query, "answer": p, "truth": r.answer} for r, p in list(zip(records, predicted))[:5]
        ],
    }


def trajectory_evaluation(
    trained, untrained, processor, trajectories_file: str, videos_dir: str, after_stage2=None
) -> dict[str, Any]:
    """Scores of the final model, the untrained one, the constant centre, and (if given) the stage-2 checkpoint:
    stage 3 trains answers only, so comparing it with stage 2 shows how much it moved what the head reads."""
    result = evaluate_trajectories(trained, processor, trajectories_file, videos_dir, progress=False)
    before = evaluate_trajectories(untrained, processor, trajectories_file, videos_dir, progress=False)
    scores = {
        "trained": result.scores,
        "untrained": before.scores,
        "constant_centre": result.baseline,
        "by_phrase_position": result.by_phrase_position,
        "by_object_count": by_object_count(result.per_video, trajectories_file),
        "num_videos": result.num_videos,
        "skipped": result.skipped,
    }
    if after_stage2 is not None:
        scores["after_stage2"] = evaluate_trajectories(
            after_stage2, processor, trajectories_file, videos_dir, progress=False
        ).scores
    return scores


def by_object_count(per_video: list[dict[str, Any]], trajectories_file: str | Path) -> dict[str, dict[str, Any]]:
    """Trajectory L1 of the model and of the reference predictors (`REFERENCE_PREDICTORS`), all tokens, pooled over the
    videos whose captions name the same number of distinct objects.

    With one object in the video, placing the phrase's object asks nothing of picking out which one is named: what is
    left is reading where it is from the frame tokens.

    Args:
        per_video: `TrajectoryEvalResult.per_video` (rows with "video_id" and "by_phrase_position").
        trajectories_file: the PiTe-143k-style file they were scored on (JSONL, one video per line).

    Returns:
        {"1": {"num_videos", "model", "constant_centre", "scene_mean", "object_mean", "held_still" (each an L1)},
        "2": ...}.
    """
    named = {
        record["video_id"]: len({obj["phrase"] for event in record["events"] for obj in event["objects"]})
        for record in trajectory_records(trajectories_file)
    }
    groups: dict[int, list[dict[str, Any]]] = {}
    for row in per_video:
        if row["video_id"] not in named:
            raise ValueError(f"{trajectories_file}: no record of the scored video {row['video_id']!r}")
        groups.setdefault(named[row["video_id"]], []).append(row["by_phrase_position"]["all"])
    return {
        str(count): {
            "num_videos": len(rows),
            **{name: pool_scores([row[name] for row in rows], thresholds=())["L1"] for name in REFERENCE_PREDICTORS},
        }
        for count, rows in sorted(groups.items())
    }


def no_foresight_scores(
    trajectories_file: str | Path,
    read_positions: dict[str, np.ndarray],
    present: dict[str, np.ndarray],
    colours: tuple[str, ...],
) -> dict[str, Any]:
    """Two feature read-outs scored on the trajectory targets of a PiTe-143k-style file, each event's object once.

    "named_colour": every key point of "the red circle" at the red read-out of its frame (what the phrase's last token,
    predicted after the colour word, could say from the features); "scene": at the mean read-out of the colours
    present in the frame (what its first words, predicted before the colour is read, could say: where things are,
    frame by frame, not which one is named); "constant_centre" at (0.5, 0.5). Object phrases are "the {colour} ...".

    Args:
        read_positions: video file name -> (N, C, 2) read-out per sampled frame and colour.
        present: video file name -> (N, C) whether each colour is drawn in the frame.
    """
    sums = {"named_colour": 0.0, "scene": 0.0, "constant_centre": 0.0}
    count = 0
    for record in trajectory_records(trajectories_file):
        positions, shown = read_positions[record["video"]], present[record["video"]]
        weights = shown / np.maximum(shown.sum(axis=1, keepdims=True), 1)
        scene = np.where(shown.any(axis=1)[:, None], np.einsum("nc,nck->nk", weights, positions), 0.5)
        for event in record["events"]:
            for obj in event["objects"]:
                target = np.asarray(obj["trajectory"], dtype=np.float64)  # (P, N, 2), -1 where absent
                visible = valid_point_mask(torch.from_numpy(target)).numpy()
                named = positions[:, colours.index(obj["phrase"].split()[1])]
                for name, guess in (("named_colour", named), ("scene", scene), ("constant_centre", 0.5)):
                    sums[name] += float(np.abs(guess - target).sum(-1)[visible].sum())
                count += int(visible.sum())
    if count == 0:
        raise ValueError(f"{trajectories_file}: no visible trajectory point")
    return {**{f"{name}_L1": total / count for name, total in sums.items()}, "num_points": count}


def no_foresight_reference(scores: dict[str, Any], by_phrase_position: dict[str, Any]) -> dict[str, float]:
    """`no_foresight_scores` combined as the trajectory split weights a phrase's tokens: "scene" on its first and inner
    tokens, "named_colour" on its last; as L1 and as a fraction of the constant centre on the same points."""
    points = {
        place: by_phrase_position.get(place, {}).get("model", {}).get("num_points") or 0
        for place in ("first", "inner", "last")
    }
    total = sum(points.values())
    if total == 0:
        raise ValueError("the trajectory split holds no points")
    before_colour = points["first"] + points["inner"]
    l1 = (before_colour * scores["scene_L1"] + points["last"] * scores["named_colour_L1"]) / total
    return {"L1": l1, "fraction_of_centre": l1 / scores["constant_centre_L1"]}


@torch.no_grad()
def frame_encoder_readout(model, processor, manifest, video_cache: str | Path) -> dict[str, Any]:
    """`pite.demo.vision_pretraining.per_colour_readout` of the model's frozen tower: fitted on the training videos'
    cached features, scored on the held-out videos' sampled frames (read and encoded as the model reads them), with
    each colour's centre taken from the renderer's labels of the same frames; and under "trajectory_targets", the
    same read-out scored on the held-out trajectory targets (`no_foresight_scores`)."""
    from pite.data.feature_cache import FeatureCache
    from pite.demo.vision_pretraining import colour_position_targets, fit_colour_readout, per_colour_readout
    from pite.demo.world import make_video
    from pite.demo.world.scene import WorldConfig
    from pite.processing.video_reading_pite import sample_frame_indices

    config = WorldConfig.from_dict(manifest.config)
    num_frames, num_shapes = processor.num_frames, len(config.shapes)

    def targets(split: str, name: str) -> np.ndarray:
        video = make_video(config, manifest.seed, split, int(Path(name).stem.rsplit("_", 1)[1]))
        frames = sample_frame_indices(len(video.frames), num_frames)
        colours, shapes = [o.colour for o in video.scene.objects], [o.shape for o in video.scene.objects]
        return colour_position_targets(video.labels[frames], colours, shapes, config.colours, config.shapes)

    cache = FeatureCache(video_cache)
    names = sorted(cache.index["entries"])
    train_features = np.concatenate([cache.load(name).float().numpy() for name in names])
    train_targets = np.concatenate([targets("train", name) for name in names])
    eval_features, eval_targets = {}, {}
    for path in sorted(Path(manifest.eval_videos_dir).glob("*.mp4")):
        pixels = processor(videos=[str(path)], return_tensors="pt")["pixel_values_videos"]
        features = model.model.get_video_features(pixels.to(model.dtype)).pooler_output[0]
        eval_features[path.name], eval_targets[path.name] = features.float().numpy(), targets("eval", path.name)
    read = fit_colour_readout(train_features, train_targets, num_shapes)
    scores = per_colour_readout(
        read,
        np.concatenate(list(eval_features.values())),
        np.concatenate(list(eval_targets.values())),
        np.repeat(list(eval_features), num_frames),
        num_shapes,
    )
    scores["trajectory_targets"] = no_foresight_scores(
        manifest.eval_trajectories,
        {name: read(features) for name, features in eval_features.items()},
        {name: rows.reshape(num_frames, -1, 3 + num_shapes)[..., 0] > 0 for name, rows in eval_targets.items()},
        config.colours,
    )
    return scores


def _precision_recall(reported: int, true: int, hits: int) -> dict[str, float]:
    precision = hits / reported if reported else 0.0
    recall = hits / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": 100.0 * precision, "recall": 100.0 * recall, "F1": 100.0 * f1}


@torch.no_grad()
def grounded_word_evaluation(model, processor, trajectories_file: str, videos_dir: str) -> dict[str, Any]:
    """Which words of the held-out captions the model grounds, teacher-forced, by `post_process_generation`'s rule.

    Each event's caption is the answer to "What is happening from SS to EE?"; the model's trajectory predictions for
    the caption's tokens go through `post_process_generation` exactly as generated tokens would. A word is truly
    grounded when it lies in an object phrase whose object is visible in at least one frame. Baseline: report every
    word (what a model trained with `absent_targets="mask"` tends to do).
    """
    words = reported = truly = hits = 0
    for record in trajectory_records(trajectories_file):
        video = processor(videos=str(Path(videos_dir) / record["video"]))
        for event in record["events"]:
            times = format_time_span(
                event["start"], event["end"], record["duration"], model.config.num_frames, clip=True
            )
            question = f"What is happening {times}?"
            caption = event["caption"]
            messages = [
                {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]},
                {"role": "assistant", "content": caption},
            ]
            features = build_training_features(processor, messages)
            ids = torch.as_tensor(features["input_ids"])[None]
            start = int(np.flatnonzero(features["labels"] != IGNORE_INDEX)[0])  # the answer's first token
            predictions = model(input_ids=ids, pixel_values_videos=video["pixel_values_videos"]).trajectory_predictions
            # the prediction for token t comes from position t - 1, as during generation
            generated = SimpleNamespace(sequences=ids, trajectory_predictions=predictions[:, start - 1 : -1])
            (result,) = processor.post_process_generation(generated, video["video_metadata"], start)
            if result["text"] != caption:
                raise ValueError(f"{record['video']}: the caption does not decode back to itself: {result['text']!r}")
            objects = [
                tuple(obj["span"])
                for obj in event["objects"]
                if (np.asarray(obj["trajectory"]) >= 0).all(axis=-1).any()
            ]
            spans = [match.span() for match in WORD_PATTERN.finditer(caption)]
            truth = {span for span in spans if any(a < span[1] and span[0] < b for a, b in objects)}
            grounded = {tuple(phrase["char_span"]) for phrase in result["phrases"]}
            words, reported, truly = words + len(spans), reported + len(grounded), truly + len(truth)
            hits += len(grounded & truth)
    return {
        "model": _precision_recall(reported, truly, hits),
        "every_word": _precision_recall(words, truly, truly),
        "words": words,
        "object_words": truly,
        "reported": reported,
        "absent_targets": model.config.absent_targets,
    }
