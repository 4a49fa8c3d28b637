"""Training arrays (`pite.data.targets`, built with the processor's tokenization): assistant-only labels, per-token
trajectory targets, Localized Narratives points."""

from __future__ import annotations

import numpy as np
import pytest

from pite.data.targets import (
    SpanTarget,
    build_point_labels,
    build_training_features,
    localized_narrative_targets,
    tokenize_conversation,
)
from pite.modeling_pite.losses_pite import IGNORE_INDEX

N = 8
P = 3
ANSWER_1 = "the purple hexagon zigzags."  # "purple hexagon zigzags" is outside the training corpus: many tokens
ANSWER_2 = "from 10 to 45."
MESSAGES = [
    {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What is moving?"}]},
    {"role": "assistant", "content": ANSWER_1},
    {"role": "user", "content": "When?"},
    {"role": "assistant", "content": [{"type": "text", "text": ANSWER_2}]},
]


def supervised_text(tokenizer, features):
    """The supervised tokens of each run of consecutive supervised positions, decoded."""
    labels = features["labels"]
    runs, current = [], []
    for position, label in enumerate(labels):
        if label != IGNORE_INDEX:
            current.append(int(label))
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return [tokenizer.decode(run) for run in runs]


def test_labels_mask_everything_but_the_assistant_turns(processor, tokenizer):
    features = build_training_features(processor, MESSAGES)
    ids, labels = features["input_ids"], features["labels"]
    assert ids.shape == labels.shape
    supervised = labels != IGNORE_INDEX
    np.testing.assert_array_equal(labels[supervised], ids[supervised])
    assert supervised_text(tokenizer, features) == [ANSWER_1 + "</s>", ANSWER_2 + "</s>"]
    assert ids[0] == tokenizer.bos_token_id and labels[0] == IGNORE_INDEX
    assert (ids == processor.video_token_id).sum() == N and not supervised[ids == processor.video_token_id].any()


def test_training_ids_extend_the_inference_prompt(processor, indexed_frames):
    """Training tokenizes the whole conversation exactly as inference tokenizes the prompt (no boundary drift)."""
    features = build_training_features(processor, MESSAGES[:2])
    prompt = processor.apply_chat_template(MESSAGES[:1], add_generation_prompt=True)
    inference = processor(text=prompt, videos=indexed_frames(10), video_fps=5)["input_ids"][0].numpy()
    np.testing.assert_array_equal(features["input_ids"][: len(inference)], inference)
    assert (features["labels"][: len(inference)] == IGNORE_INDEX).all()
    assert (features["labels"][len(inference) :] != IGNORE_INDEX).all()


def test_multi_token_phrase_targets(processor, tokenizer):
    phrase_start = ANSWER_1.index("purple hexagon")
    span = (phrase_start, phrase_start + len("purple hexagon"))
    trajectory = np.random.default_rng(0).uniform(0, 1, (P, N, 2)).astype(np.float32)
    trajectory[1, :3] = -1  # this key point is absent in the first frames
    second = np.full((P, N, 2), 0.25, np.float32)
    features = build_training_features(
        processor,
        MESSAGES,
        trajectory_targets=[
            SpanTarget(span, trajectory, turn=0, name="purple hexagon"),
            SpanTarget((0, 4), second, turn=1, name="from"),
        ],
    )
    labels = features["trajectory_labels"]
    assert labels.shape == (len(features["input_ids"]), P, N, 2)
    carriers = np.flatnonzero((labels != -1).any(axis=(1, 2, 3)))
    conversation = tokenize_conversation(tokenizer, MESSAGES, N)
    start = conversation.assistant_turns[0][0]
    phrase_tokens = [
        i
        for i in carriers
        if conversation.offsets[i, 0] < start + span[1] and conversation.offsets[i, 1] > start + span[0]
    ]
    assert len(phrase_tokens) >= 3  # the phrase really is split into several tokens
    assert tokenizer.decode(features["input_ids"][phrase_tokens]).strip() == "purple hexagon"
    for i in phrase_tokens:
        np.testing.assert_array_equal(labels[i], trajectory)
    from_tokens = sorted(set(carriers) - set(phrase_tokens))
    assert tokenizer.decode(features["input_ids"][from_tokens]).strip() == "from"
    for i in from_tokens:
        np.testing.assert_array_equal(labels[i], second)
    # tokens of neighbouring words carry nothing
    before, after = phrase_tokens[0] - 1, phrase_tokens[-1] + 1
    assert (labels[before] == -1).all() and (labels[after] == -1).all()


@pytest.mark.parametrize(
    "target, message",
    [
        (SpanTarget((5, 99), np.zeros((P, N, 2))), r"span \[5, 99\) lies outside the answer text of length 27"),
        (SpanTarget((4, 4), np.zeros((P, N, 2))), r"span \[4, 4\) .*empty"),
        (SpanTarget((-1, 3), np.zeros((P, N, 2))), r"span \[-1, 3\)"),
        (
            SpanTarget((0, 3), np.zeros((P, N + 1, 2)), turn=0, name="the"),
            r"'the'.*expected shape \(3, 8, 2\), got \(3, 9, 2\)",
        ),
        (SpanTarget((0, 3), np.zeros((N, 2)), turn=0), r"expected shape \(3, 8, 2\), got \(8, 2\)"),
        (SpanTarget((0, 3), np.full((P, N, 2), np.nan), turn=0), "NaN"),
        (SpanTarget((0, 3), np.zeros((P, N, 2)), turn=5), "assistant turn 5 does not exist"),
    ],
)
def test_bad_trajectory_targets(processor, target, message):
    if target.turn == -1:
        target.turn = 0
    with pytest.raises(ValueError, match=message):
        build_training_features(processor, MESSAGES, trajectory_targets=[target])


def test_overlapping_targets_are_rejected(processor):
    zeros = np.zeros((P, N, 2))
    with pytest.raises(ValueError, match="target 1 .*and target 0 overlap the same token"):
        build_training_features(
            processor,
            MESSAGES,
            trajectory_targets=[SpanTarget((4, 10), zeros, turn=0), SpanTarget((8, 14), zeros, turn=0)],
        )


# ---------------------------------------------------------------- Localized Narratives (stage 1)
LN_RECORD = {
    "dataset_id": "synthetic",
    "image_id": "img_0001",
    "annotator_id": 3,
    "caption": "In this image we can see a person holding a cup.",
    "timed_caption": [
        {"utterance": "In this image", "start_time": 0.0, "end_time": 1.0},
        {"utterance": "we can see", "start_time": 1.0, "end_time": 1.5},
        {"utterance": "a person", "start_time": 1.6, "end_time": 2.4},
        {"utterance": "holding a cup.", "start_time": 2.5, "end_time": 3.5},
    ],
    "traces": [
        [{"x": 0.1, "y": 0.2, "t": 0.2}, {"x": 0.3, "y": 0.4, "t": 0.8}, {"x": 0.5, "y": 0.5, "t": 1.55}],
        [{"x": 0.6, "y": 0.7, "t": 1.7}, {"x": 0.8, "y": 0.9, "t": 2.0}, {"x": 1.02, "y": 0.5, "t": 2.3}],
        [{"x": 0.4, "y": 0.4, "t": 2.6}],
    ],
    "voice_recording": "synthetic/img_0001.ogg",
}


def test_localized_narrative_points_per_token(processor, tokenizer):
    targets = localized_narrative_targets(LN_RECORD)
    # "we can see" has no trace point inside [1.0, 1.5] (1.55 is after it): no target
    assert [t.name for t in targets] == ["In this image", "a person", "holding a cup."]
    np.testing.assert_allclose(targets[0].value, [0.2, 0.3])
    np.testing.assert_allclose(targets[1].value, [(0.6 + 0.8 + 1.02) / 3, (0.7 + 0.9 + 0.5) / 3])  # not clipped
    np.testing.assert_allclose(targets[2].value, [0.4, 0.4])

    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the image."}]},
        {"role": "assistant", "content": LN_RECORD["caption"]},
    ]
    features = build_training_features(processor, messages, point_targets=targets)
    points = features["point_labels"]
    assert points.shape == (len(features["input_ids"]), 2)
    assert (features["input_ids"] == processor.video_token_id).sum() == 1  # an image is one token
    conversation = tokenize_conversation(tokenizer, messages, N)
    start, caption = conversation.assistant_turns[0]
    for target in targets:
        lo, hi = start + target.span[0], start + target.span[1]
        inside = (conversation.offsets[:, 0] < hi) & (conversation.offsets[:, 1] > lo)
        assert inside.sum() >= 1
        np.testing.assert_allclose(points[inside], np.broadcast_to(target.value, (inside.sum(), 2)), rtol=1e-6)
        assert tokenizer.decode(features["input_ids"][inside]).strip() == target.name
    see = caption.index("we can see")
    silent = (conversation.offsets[:, 0] < start + see + 10) & (conversation.offsets[:, 1] > start + see)
    assert silent.any() and (points[silent] == -1).all()
    prompt = conversation.offsets[:, 1] <= start
    assert prompt.sum() > 10 and (points[prompt] == -1).all()


def test_localized_narrative_bad_records():
    broken = dict(LN_RECORD, timed_caption=[{"utterance": "a giraffe", "start_time": 0, "end_time": 1}])
    with pytest.raises(ValueError, match=r"'img_0001'.*utterance 0 'a giraffe' not found"):
        localized_narrative_targets(broken)
    missing = {k: v for k, v in LN_RECORD.items() if k != "traces"}
    with pytest.raises(ValueError, match="'img_0001'.*missing field 'traces'"):
        localized_narrative_targets(missing)
    bad_trace = dict(LN_RECORD, traces=[[{"x": 0.1, "y": 0.2}]])
    with pytest.raises(ValueError, match=r"'img_0001'.*\{x, y, t\}"):
        localized_narrative_targets(bad_trace)


def test_point_target_shape_is_checked(tokenizer):
    conversation = tokenize_conversation(tokenizer, MESSAGES, N)
    with pytest.raises(ValueError, match=r"expected shape \(2,\), got \(3,\)"):
        build_point_labels(conversation, [SpanTarget((0, 3), [0.1, 0.2, 0.3])])
