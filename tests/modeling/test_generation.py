import torch

from pite.modeling_pite import PiTeGenerateBeamOutput, PiTeGenerateOutput


def _generate(model, ids, features, attention_mask=None, **kwargs):
    kwargs.setdefault("max_new_tokens", 6)
    return model.generate(
        input_ids=ids,
        attention_mask=attention_mask,
        video_features=features,
        return_dict_in_generate=True,
        pad_token_id=0,
        eos_token_id=2,
        **kwargs,
    )


def test_generate_returns_per_token_predictions_equal_to_teacher_forcing(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    features = torch.randn(1, 4, 24)
    out = _generate(tiny_model, ids, features, do_sample=False, min_new_tokens=6)
    assert isinstance(out, PiTeGenerateOutput)
    new = out.sequences.shape[1] - ids.shape[1]
    assert new == 6
    assert out.point_predictions.shape == (1, new, 2)
    assert out.trajectory_predictions.shape == (1, new, 3, 4, 2)
    with torch.no_grad():
        forced = tiny_model(input_ids=out.sequences, video_features=features)
    # The prediction at position t belongs to token t + 1: generated token i comes from position prompt_len - 1 + i.
    span = slice(ids.shape[1] - 1, out.sequences.shape[1] - 1)
    torch.testing.assert_close(out.point_predictions, forced.point_predictions[:, span], rtol=0, atol=1e-5)
    torch.testing.assert_close(out.trajectory_predictions, forced.trajectory_predictions[:, span], rtol=0, atol=1e-5)
    # Greedy tokens are the argmax of the teacher-forced logits.
    assert torch.equal(forced.logits[:, span].argmax(-1), out.sequences[:, ids.shape[1] :])


def test_sampling_also_returns_aligned_predictions(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    features = torch.randn(1, 4, 24)
    torch.manual_seed(3)
    out = _generate(
        tiny_model, ids, features, do_sample=True, top_k=0, temperature=1.0, min_new_tokens=5, max_new_tokens=5
    )
    with torch.no_grad():
        forced = tiny_model(input_ids=out.sequences, video_features=features)
    span = slice(ids.shape[1] - 1, out.sequences.shape[1] - 1)
    torch.testing.assert_close(out.trajectory_predictions, forced.trajectory_predictions[:, span], rtol=0, atol=1e-5)


def test_left_padded_batch_equals_one_by_one(tiny_model, make_video_prompt):
    prompts = [make_video_prompt(4, prefix=(1, 5)), make_video_prompt(4, prefix=(1, 5, 6, 9, 10, 11))]
    features = torch.randn(2, 4, 24)
    width = max(len(p) for p in prompts)
    ids = torch.zeros(2, width, dtype=torch.long)
    mask = torch.zeros(2, width, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = prompt
        mask[row, width - len(prompt) :] = 1
    batched = _generate(tiny_model, ids, features, attention_mask=mask, do_sample=False, min_new_tokens=6)
    for row, prompt in enumerate(prompts):
        single = _generate(tiny_model, prompt[None], features[row : row + 1], do_sample=False, min_new_tokens=6)
        assert torch.equal(batched.sequences[row, width:], single.sequences[0, len(prompt) :])
        torch.testing.assert_close(
            batched.trajectory_predictions[row], single.trajectory_predictions[0], rtol=0, atol=1e-5
        )


def test_generate_from_pixels_and_default_is_greedy(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    pixels = torch.randn(1, 4, 3, 28, 28)
    first = tiny_model.generate(input_ids=ids, pixel_values_videos=pixels, max_new_tokens=4, pad_token_id=0)
    second = tiny_model.generate(input_ids=ids, pixel_values_videos=pixels, max_new_tokens=4, pad_token_id=0)
    assert isinstance(first, torch.Tensor) and torch.equal(first, second)


def test_kv_cache_accepted_under_both_names(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    features = torch.randn(1, 4, 24)
    with torch.no_grad():
        prefill = tiny_model(input_ids=ids, video_features=features, use_cache=True)
        cache = prefill.cache if "cache" in prefill else prefill.past_key_values
        next_token = prefill.logits[:, -1:].argmax(-1)
        full = tiny_model(input_ids=torch.cat([ids, next_token], 1), video_features=features)
        import copy

        for name in ("cache", "past_key_values"):
            step = tiny_model(input_ids=next_token, **{name: copy.deepcopy(cache)}, use_cache=True)
            torch.testing.assert_close(
                step.trajectory_predictions[:, -1], full.trajectory_predictions[:, -1], rtol=0, atol=1e-5
            )


def test_beam_search_predictions_follow_beam_indices(tiny_model, make_video_prompt):
    """Each returned token's point/trajectory is the one predicted on the beam that produced it: equal to a
    teacher-forced forward over the returned sequence."""
    ids, features = make_video_prompt(4)[None], torch.randn(1, 4, 24)
    out = _generate(tiny_model, ids, features, num_beams=3, num_return_sequences=2, max_new_tokens=4, min_new_tokens=4)
    assert isinstance(out, PiTeGenerateBeamOutput)
    assert out.point_predictions.shape == (2, 4, 2) and out.beam_indices.shape == (2, 4)
    with torch.no_grad():
        forced = tiny_model(input_ids=out.sequences, video_features=features.expand(2, -1, -1))
    span = slice(ids.shape[1] - 1, out.sequences.shape[1] - 1)
    torch.testing.assert_close(out.point_predictions, forced.point_predictions[:, span], rtol=0, atol=1e-5)
    torch.testing.assert_close(out.trajectory_predictions, forced.trajectory_predictions[:, span], rtol=0, atol=1e-5)
