"""post_process_generation: text, grounded words/phrases in pixel coordinates, time spans in seconds."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from pite.processing import token_character_spans

P, N = 3, 100
METADATA = {
    "fps": 5.0,
    "duration": 20.0,
    "num_source_frames": 100,
    "frame_indices": list(range(N)),
    "timestamps": [i / 5 for i in range(N)],
    "width": 640,
    "height": 360,
}


def fake_generation(tokenizer, answers, prompt_length=6):
    """sequences (B, prompt + T_new): prompt, answer tokens, </s>, then pad; plus per-token word ownership."""
    prompt = [tokenizer.bos_token_id] + [tokenizer.convert_tokens_to_ids("▁the")] * (prompt_length - 1)
    generated = [
        tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for answer in answers
    ]
    width = max(len(g) for g in generated) + 2
    rows = [prompt + g + [tokenizer.pad_token_id] * (width - len(g)) for g in generated]
    return torch.tensor(rows), width


def tokens_of(tokenizer, sequence_row, prompt_length, word, text):
    """Indices of generated tokens overlapping `word` in `text` (via character spans)."""
    decoded, spans = token_character_spans(tokenizer, sequence_row[prompt_length:].tolist())
    start = text.index(word)
    return [i for i, (lo, hi) in enumerate(spans) if lo < start + len(word) and hi > start]


def test_token_character_spans_cover_the_text(tokenizer):
    ids = tokenizer("the purple circle moves from 10 to 45.", add_special_tokens=False)["input_ids"]
    text, spans = token_character_spans(tokenizer, ids)
    assert text == "the purple circle moves from 10 to 45."
    assert spans[0, 0] == 0 and spans[-1, 1] == len(text)
    assert (spans[1:, 0] == spans[:-1, 1]).all()  # contiguous, in order
    assert "".join(text[lo:hi] for lo, hi in spans) == text


def test_words_and_phrases_in_pixels_with_time_spans(processor, tokenizer):
    answers = ["the red circle moves from 10 to 50.", "a blue square."]
    sequences, width = fake_generation(tokenizer, answers)
    prompt_length = 6
    trajectories = np.full((2, width, P, N, 2), -1.0, np.float32)
    red = tokens_of(tokenizer, sequences[0], prompt_length, "red", answers[0])
    circle = tokens_of(tokenizer, sequences[0], prompt_length, "circle", answers[0])
    rng = np.random.default_rng(1)
    red_value, circle_value = rng.uniform(0, 1, (P, N, 2)), rng.uniform(0, 1, (P, N, 2))
    red_value[0, :5] = -1  # the model says this key point is absent in the first five frames
    trajectories[0, red], trajectories[0, circle] = red_value, circle_value
    square = tokens_of(tokenizer, sequences[1], prompt_length, "square", answers[1])
    trajectories[1, square] = 0.5
    trajectories[1, square, 2, 7] = [1.3, 0.5]  # outside the image: absent in that frame, still grounded
    output = SimpleNamespace(
        sequences=sequences, trajectory_predictions=torch.from_numpy(trajectories), point_predictions=None
    )

    results = processor.post_process_generation(output, [METADATA, METADATA], prompt_length)
    assert [r["text"] for r in results] == answers
    first = results[0]
    assert [p["text"] for p in first["phrases"]] == ["red", "circle"]
    scale = np.asarray([640, 360])
    red_px = first["phrases"][0]["trajectory"]
    assert np.isnan(red_px[0, :5]).all()
    np.testing.assert_allclose(red_px[0, 5:], red_value[0, 5:] * scale, rtol=1e-5)
    np.testing.assert_allclose(first["phrases"][1]["trajectory"], circle_value * scale, rtol=1e-5)
    assert first["phrases"][0]["token_indices"] == red and first["phrases"][0]["point"] is None
    assert first["frame_index_spans"] == [(10, 50)]
    assert first["time_spans"] == [pytest.approx((2.0, 10.0))]  # "from 10 to 50" of 20 s: end e * D / N
    assert [p["text"] for p in results[1]["phrases"]] == ["square"] and results[1]["time_spans"] == []
    square_px = results[1]["phrases"][0]["trajectory"]
    assert np.isnan(square_px[2, 7]).all() and np.isnan(square_px).sum() == 2

    # phrases given: the phrase aggregates (mean) over all of its tokens
    by_phrase = processor.post_process_generation(
        output, [METADATA, METADATA], prompt_length, phrases=["Red Circle", "square"]
    )
    (red_circle,) = by_phrase[0]["phrases"]
    assert red_circle["text"] == "red circle" and red_circle["token_indices"] == red + circle
    expected = np.mean([*[trajectories[0, i] for i in red], *[trajectories[0, i] for i in circle]], axis=0)
    visible = ((expected >= 0) & (expected <= 1)).all(axis=-1)
    assert not visible.all() and np.isnan(red_circle["trajectory"][~visible]).all()
    np.testing.assert_allclose(red_circle["trajectory"][visible], (expected * scale)[visible], rtol=1e-5)
    assert by_phrase[1]["phrases"][0]["text"] == "square"
    assert np.isnan(by_phrase[1]["phrases"][0]["trajectory"][2, 7]).all()  # outside the image = absent there


def test_point_predictions_and_plain_sequences(processor, tokenizer):
    answers = ["a person holding a cup."]
    sequences, width = fake_generation(tokenizer, answers)
    points = torch.full((1, width, 2), -1.0)
    cup = tokens_of(tokenizer, sequences[0], 6, "cup", answers[0])
    points[0, cup] = torch.tensor([0.25, 0.75])
    (result,) = processor.post_process_generation(sequences, [METADATA], 6, point_predictions=points)
    assert [p["text"] for p in result["phrases"]] == ["cup"]
    np.testing.assert_allclose(result["phrases"][0]["point"], [160, 270])
    assert result["phrases"][0]["trajectory"] is None
    # without predictions only the text and the times come back
    (plain,) = processor.post_process_generation(sequences, [METADATA], 6)
    assert plain["text"] == answers[0] and plain["phrases"] == []


def test_bad_post_processing_inputs(processor, tokenizer):
    sequences, width = fake_generation(tokenizer, ["a cup."])
    with pytest.raises(ValueError, match=r"trajectory_predictions must be \(B=1, T_new=\d+, \.\.\.\)"):
        processor.post_process_generation(sequences, [METADATA], 6, trajectory_predictions=torch.zeros(1, 2, P, N, 2))
    with pytest.raises(ValueError, match="got 2 video_metadata entries for 1 sequences"):
        processor.post_process_generation(sequences, [METADATA, METADATA], 6)
    with pytest.raises(ValueError, match="prompt_length 99 exceeds"):
        processor.post_process_generation(sequences, [METADATA], 99)
