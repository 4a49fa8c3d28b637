import math

import pytest
import torch

from pite.modeling_pite import PiTeForConditionalGeneration


def _video(batch=1, frames=4):
    return torch.randn(batch, frames, 3, 28, 28)


def test_forward_shapes_with_pixels(tiny_model, make_video_prompt):
    ids = make_video_prompt(4).repeat(2, 1)
    out = tiny_model(input_ids=ids, pixel_values_videos=_video(2))
    L = ids.shape[1]
    assert out.logits.shape == (2, L, 64)
    assert out.point_predictions.shape == (2, L, 2)
    assert out.trajectory_predictions.shape == (2, L, 3, 4, 2)
    assert out.video_embeds.shape == (2, 4, 32)
    assert out.loss is None


def test_video_features_equal_pixels(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    pixels = _video()
    with torch.no_grad():
        from_pixels = tiny_model(input_ids=ids, pixel_values_videos=pixels)
        features = tiny_model.get_video_features(pixels).pooler_output
        from_features = tiny_model(input_ids=ids, video_features=features)
    assert features.shape == (1, 4, 24)
    torch.testing.assert_close(from_pixels.logits, from_features.logits, rtol=0, atol=0)


def test_video_features_land_on_placeholders_in_order(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    features = torch.randn(1, 4, 24)
    captured = {}
    hook = tiny_model.model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: captured.update(embeds=kwargs["inputs_embeds"]), with_kwargs=True
    )
    with torch.no_grad():
        tiny_model(input_ids=ids, video_features=features)
    hook.remove()
    adapted = tiny_model.model.video_adapter(features)
    torch.testing.assert_close(captured["embeds"][0, 3:7], adapted[0])
    text_embeds = tiny_model.get_input_embeddings()(ids)
    torch.testing.assert_close(captured["embeds"][0, :3], text_embeds[0, :3])


def test_image_is_a_one_frame_video(tiny_model, make_video_prompt):
    ids = make_video_prompt(1)[None]
    image = torch.randn(1, 3, 28, 28)
    with torch.no_grad():
        as_image = tiny_model(input_ids=ids, pixel_values=image)
        as_video = tiny_model(input_ids=ids, pixel_values_videos=image[:, None])
    torch.testing.assert_close(as_image.logits, as_video.logits, rtol=0, atol=0)


def test_placeholder_count_mismatch_names_both_counts(tiny_model, make_video_prompt):
    ids = make_video_prompt(3)[None]
    with pytest.raises(ValueError, match=r"3 <video> placeholder tokens.*1 video\(s\) x 4 frames = 4"):
        tiny_model(input_ids=ids, pixel_values_videos=_video())


def test_placeholders_without_video_are_rejected(tiny_model, make_video_prompt):
    with pytest.raises(ValueError, match="4 <video> placeholder tokens but no video"):
        tiny_model(input_ids=make_video_prompt(4)[None])


def test_wrong_feature_shape_is_rejected(tiny_model, make_video_prompt):
    with pytest.raises(ValueError, match=r"video_features must have shape \(batch, frames, 24\)"):
        tiny_model(input_ids=make_video_prompt(4)[None], video_features=torch.randn(1, 4, 32))
    with pytest.raises(ValueError, match="pixel_values_videos must have shape"):
        tiny_model(input_ids=make_video_prompt(4)[None], pixel_values_videos=torch.randn(4, 3, 28, 28))
    with pytest.raises(ValueError, match="one visual input"):
        tiny_model(
            input_ids=make_video_prompt(4)[None], video_features=torch.randn(1, 4, 24), pixel_values_videos=_video()
        )


@pytest.mark.parametrize(
    "name, shape",
    [
        ("point_labels", (1, 10, 3)),
        ("point_labels", (1, 11, 2)),
        ("trajectory_labels", (1, 10, 3, 5, 2)),
        ("trajectory_labels", (1, 10, 2)),
    ],
)
def test_targets_of_wrong_shape_are_rejected(tiny_model, make_video_prompt, name, shape):
    ids = make_video_prompt(4)[None]
    with pytest.raises(ValueError, match=f"{name} must have shape"):
        tiny_model(input_ids=ids, video_features=torch.randn(1, 4, 24), **{name: torch.zeros(shape)})


def test_losses_match_a_hand_computation(make_tiny_config, make_video_prompt):
    """absent_targets="mask": only present targets count."""
    torch.manual_seed(0)
    model = PiTeForConditionalGeneration(
        make_tiny_config(localization_loss_weight=0.5, label_smoothing=0.0, absent_targets="mask")
    ).eval()
    ids = make_video_prompt(4)[None]  # 3 text, 4 video (positions 3-6), 3 text tokens
    L = ids.shape[1]
    labels = ids.clone()
    labels[0, :7] = -100  # supervise the 3 text tokens after the video: positions 7, 8, 9
    point_labels = torch.full((1, L, 2), -1.0)
    point_labels[0, 7] = torch.tensor([0.25, 0.75])
    point_labels[0, 9] = torch.tensor([0.5, 0.1])
    point_labels[0, 0] = torch.tensor([0.3, 0.3])  # position 0 can never be predicted: must not count
    trajectory_labels = torch.full((1, L, 3, 4, 2), -1.0)
    trajectory_labels[0, 9] = torch.rand(3, 4, 2)
    trajectory_labels[0, 9, 1, 2] = -1.0  # an absent point inside a supervised token
    trajectory_mask = torch.ones(1, L, dtype=torch.bool)
    features = torch.randn(1, 4, 24)
    with torch.no_grad():
        out = model(
            input_ids=ids,
            video_features=features,
            labels=labels,
            point_labels=point_labels,
            trajectory_labels=trajectory_labels,
            trajectory_mask=trajectory_mask,
        )

    logp = torch.log_softmax(out.logits[0].double(), dim=-1)
    ce = [-logp[t - 1, ids[0, t]].item() for t in (7, 8, 9)]
    expected_lm = sum(ce) / 3
    p = out.point_predictions[0].double()
    expected_point = (
        sum(abs(p[6, c] - point_labels[0, 7, c]).item() for c in range(2))
        + sum(abs(p[8, c] - point_labels[0, 9, c]).item() for c in range(2))
    ) / 2
    traj = out.trajectory_predictions[0, 8].double()
    total, count = 0.0, 0
    for pi in range(3):
        for n in range(4):
            if pi == 1 and n == 2:
                continue
            total += sum(abs(traj[pi, n, c] - trajectory_labels[0, 9, pi, n, c]).item() for c in range(2))
            count += 1
    expected_traj = total / count
    assert count == 11
    assert math.isclose(out.lm_loss.item(), expected_lm, rel_tol=1e-5)
    assert math.isclose(out.localization_loss.item(), expected_point, rel_tol=1e-5)
    assert math.isclose(out.trajectory_loss.item(), expected_traj, rel_tol=1e-5)
    assert math.isclose(out.loss.item(), expected_lm + 0.5 * (expected_point + expected_traj), rel_tol=1e-5)


def test_regressed_absent_targets_match_a_hand_computation(make_tiny_config, make_video_prompt):
    """absent_targets="regress" (the release, the default): every supervised text position regresses its target,
    (-1, -1) where it has none or the object is absent; prompt, video and padding positions never count."""
    torch.manual_seed(0)
    config = make_tiny_config(localization_loss_weight=0.5)
    assert config.absent_targets == "regress"
    model = PiTeForConditionalGeneration(config).eval()
    ids = make_video_prompt(4)[None]  # 3 text, 4 video (positions 3-6), 3 text tokens
    L = ids.shape[1]
    labels = ids.clone()
    labels[0, :7] = -100  # supervised: positions 7, 8, 9
    point_labels = torch.full((1, L, 2), -1.0)
    point_labels[0, 7] = torch.tensor([0.25, 0.75])
    point_labels[0, 2] = torch.tensor([0.3, 0.3])  # a prompt position: never counts
    trajectory_labels = torch.full((1, L, 3, 4, 2), -1.0)
    trajectory_labels[0, 9] = torch.rand(3, 4, 2)
    trajectory_labels[0, 9, 1, 2] = -1.0  # absent in one frame: regressed to (-1, -1)
    with torch.no_grad():
        out = model(
            input_ids=ids,
            video_features=torch.randn(1, 4, 24),
            labels=labels,
            point_labels=point_labels,
            trajectory_labels=trajectory_labels,
        )
    p = out.point_predictions[0].double()
    expected_point = sum(abs(p[t - 1, c] - point_labels[0, t, c]).item() for t in (7, 8, 9) for c in range(2)) / 3
    traj = out.trajectory_predictions[0].double()
    expected_traj = sum(abs(traj[t - 1] - trajectory_labels[0, t].double()).sum().item() for t in (7, 8, 9)) / 36
    assert math.isclose(out.localization_loss.item(), expected_point, rel_tol=1e-5)
    assert math.isclose(out.trajectory_loss.item(), expected_traj, rel_tol=1e-5)
    # the same targets under "mask" count only the one present point and the 11 present trajectory entries
    model.config.absent_targets = "mask"
    with torch.no_grad():
        masked = model(
            input_ids=ids,
            video_features=torch.randn(1, 4, 24),
            labels=labels,
            point_labels=point_labels,
            trajectory_labels=trajectory_labels,
        )
    assert not math.isclose(masked.localization_loss.item(), out.localization_loss.item(), rel_tol=1e-3)
    model.config.absent_targets = "regress"
    with pytest.raises(ValueError, match="absent_targets='regress'.*pass `labels`"):
        model(input_ids=ids, video_features=torch.randn(1, 4, 24), point_labels=point_labels)
    with pytest.raises(ValueError, match="absent_targets must be one of"):
        make_tiny_config(absent_targets="ignore")


def test_explicit_mask_removes_targets(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    L = ids.shape[1]
    point_labels = torch.rand(1, L, 2)
    mask = torch.zeros(1, L, dtype=torch.bool)
    mask[0, 5] = True
    with torch.no_grad():
        out = tiny_model(
            input_ids=ids, video_features=torch.randn(1, 4, 24), point_labels=point_labels, point_mask=mask
        )
    expected = (out.point_predictions[0, 4] - point_labels[0, 5]).abs().sum()
    torch.testing.assert_close(out.localization_loss, expected)


def test_label_smoothing_changes_only_the_lm_term(make_tiny_config, make_video_prompt):
    ids = make_video_prompt(4)[None]
    features = torch.randn(1, 4, 24)
    losses = []
    for smoothing in (0.0, 0.1):
        torch.manual_seed(0)
        model = PiTeForConditionalGeneration(make_tiny_config(label_smoothing=smoothing)).eval()
        with torch.no_grad():
            out = model(input_ids=ids, video_features=features, labels=ids)
        logp = torch.log_softmax(out.logits[0, :-1].double(), -1)
        nll = -logp.gather(-1, ids[0, 1:, None]).squeeze(-1)
        expected = ((1 - smoothing) * nll - smoothing * logp.mean(-1)).mean()
        assert math.isclose(out.lm_loss.item(), expected.item(), rel_tol=1e-5)
        losses.append(out.lm_loss.item())
    assert losses[0] != losses[1]


def test_trajectory_head_starts_as_tiled_localization_head(tiny_model, make_video_prompt):
    head, loc = tiny_model.trajectory_head, tiny_model.localization_head
    assert torch.equal(head.weight, loc.weight.repeat(12, 1)) and torch.equal(head.bias, loc.bias.repeat(12))
    with torch.no_grad():
        out = tiny_model(input_ids=make_video_prompt(4)[None], video_features=torch.randn(1, 4, 24))
    # Every trajectory point of every token equals that token's localization point before training.
    expanded = out.point_predictions[:, :, None, None, :].expand_as(out.trajectory_predictions)
    torch.testing.assert_close(out.trajectory_predictions, expanded)
    # The public method redoes the init after the heads diverged.
    with torch.no_grad():
        loc.weight.add_(1.0)
    assert not torch.equal(head.weight, loc.weight.repeat(12, 1))
    tiny_model.initialize_trajectory_head_from_localization_head()
    assert torch.equal(head.weight, loc.weight.repeat(12, 1))


def test_l1_gradient_reaches_heads_and_adapter(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    L = ids.shape[1]
    tiny_model.train()
    every = torch.ones(1, L, dtype=torch.bool)  # without labels, the positions to regress are named by masks
    out = tiny_model(
        input_ids=ids,
        video_features=torch.randn(1, 4, 24),
        point_labels=torch.rand(1, L, 2),
        trajectory_labels=torch.rand(1, L, 3, 4, 2),
        point_mask=every,
        trajectory_mask=every,
    )
    out.loss.backward()
    for module in (tiny_model.localization_head, tiny_model.trajectory_head, tiny_model.model.video_adapter):
        assert module.weight.grad is not None and module.weight.grad.abs().sum() > 0
    assert tiny_model.lm_head.weight.grad is None  # no LM term was asked for


def test_gradient_checkpointing_matches_plain_backward(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    features = torch.randn(1, 4, 24)
    grads = []
    for checkpointing in (False, True):
        tiny_model.zero_grad()
        tiny_model.train()
        if checkpointing:
            enable = (
                getattr(tiny_model, "activation_checkpointing_enable", None)
                or tiny_model.gradient_checkpointing_enable
            )
            enable()
            assert tiny_model.is_gradient_checkpointing
        tiny_model(input_ids=ids, video_features=features, labels=ids, use_cache=False).loss.backward()
        grads.append(tiny_model.model.video_adapter.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_bf16_forward_runs(tiny_model, make_video_prompt):
    model = tiny_model.to(torch.bfloat16)
    with torch.no_grad():
        out = model(input_ids=make_video_prompt(4)[None], pixel_values_videos=_video())
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.trajectory_predictions.float()).all()


def test_return_dict_false_gives_a_tuple(tiny_model, make_video_prompt):
    ids = make_video_prompt(4)[None]
    with torch.no_grad():
        out = tiny_model(input_ids=ids, video_features=torch.randn(1, 4, 24), labels=ids, return_dict=False)
    assert isinstance(out, tuple) and out[0].dim() == 0  # loss first, as transformers' convention
