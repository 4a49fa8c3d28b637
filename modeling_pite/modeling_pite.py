"""PiTe: Pixel-Temporal Alignment for Large Video-Language Model (Liu et al., ECCV 2024).

A frozen CLIP tower turns each sampled frame into one feature, a linear adapter maps it into a Llama language model
at the positions of the `<video>` placeholder tokens, and three heads read the language model's last hidden state of
every token: the vocabulary head, a localization head (one 2-D point) and a trajectory head (P points x N frames).

Hub remote code: this file is copied flat next to `config.json`; it imports only torch, transformers and its siblings.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import CLIPVisionModel, CLIPVisionModelWithProjection, GenerationMixin, LlamaModel, PreTrainedModel
from transformers.generation.utils import GenerateDecoderOnlyOutput
from transformers.utils import ModelOutput

from .configuration_pite import PiTeConfig
from .losses_pite import shifted_cross_entropy_sum, shifted_masked_l1_sum

# transformers 5.24 calls the KV cache `cache`; 5.17 (the GPU benchmark machine) calls it `past_key_values`.
# Forward accepts both names and hands the cache on, and back, under the name the installed version uses.
CACHE_KWARG = "cache" if "cache" in inspect.signature(LlamaModel.forward).parameters else "past_key_values"

# Loss-normalisation counts a trainer may pass for exact gradient accumulation (see `PiTeForConditionalGeneration`).
LOSS_COUNT_KWARGS = ("num_items_in_batch", "num_point_items_in_batch", "num_trajectory_items_in_batch")


@dataclass
class PiTeModelOutputWithPast(ModelOutput):
    """Output of `PiTeModel`.

    Args:
        last_hidden_state: (B, L, hidden) the language model's last hidden states.
        cache (transformers >= 5.2x) or past_key_values (older): the KV cache.
        hidden_states: per-layer hidden states when `output_hidden_states=True`.
        attentions: per-layer attentions when `output_attentions=True`.
        video_embeds: (B, N, hidden) adapter outputs placed at the `<video>` positions, when a video was given.
    """

    last_hidden_state: torch.FloatTensor | None = None
    if CACHE_KWARG == "cache":  # one field, named as the installed transformers' generate() reads it
        cache: Any | None = None
    else:
        past_key_values: Any | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    video_embeds: torch.FloatTensor | None = None


@dataclass
class PiTeCausalLMOutputWithPast(ModelOutput):
    """Output of `PiTeForConditionalGeneration`.

    Args:
        loss: lm_loss + localization_loss_weight * (localization_loss + trajectory_loss), the terms that were supervised.
        lm_loss: next-token cross-entropy (label-smoothed if configured), mean over supervised tokens.
        localization_loss: L1 distance of points, mean over valid (token) points.
        trajectory_loss: L1 distance of trajectory points, mean over valid (token, point, frame) entries.
        logits: (B, L', V) vocabulary scores (L' = L, or the kept positions with `logits_to_keep`).
        point_predictions: (B, L', 2) predicted point of the token that follows each position.
        trajectory_predictions: (B, L', P, N, 2) predicted trajectories of the token that follows each position.
        cache / past_key_values, hidden_states, attentions, video_embeds: as in `PiTeModelOutputWithPast`.
    """

    loss: torch.FloatTensor | None = None
    lm_loss: torch.FloatTensor | None = None
    localization_loss: torch.FloatTensor | None = None
    trajectory_loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    point_predictions: torch.FloatTensor | None = None
    trajectory_predictions: torch.FloatTensor | None = None
    if CACHE_KWARG == "cache":  # one field, named as the installed transformers' generate() reads it
        cache: Any | None = None
    else:
        past_key_values: Any | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    video_embeds: torch.FloatTensor | None = None


@dataclass
class PiTeGenerateOutput(GenerateDecoderOnlyOutput):
    """`generate(..., return_dict_in_generate=True)` output with the regression heads' predictions.

    Args:
        point_predictions: (B, T_new, 2) the point predicted with each generated token (aligned with
            `sequences[:, -T_new:]`).
        trajectory_predictions: (B, T_new, P, N, 2) the trajectories predicted with each generated token.
    """

    point_predictions: torch.FloatTensor | None = None
    trajectory_predictions: torch.FloatTensor | None = None


def _copy_into(tensor: torch.Tensor, value: torch.Tensor) -> None:
    with torch.no_grad():
        tensor.copy_(value)


class PiTePreTrainedModel(PreTrainedModel):
    config_class = PiTeConfig
    config: PiTeConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    input_modalities = ("video", "image", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["LlamaDecoderLayer", "CLIPEncoderLayer"]
    _skip_keys_device_placement = ["past_key_values", "cache"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # A static-cache decode step compiles to one graph (tests/benchmarks/test_decode_step.py); the placeholder-count
    # check that syncs with the host runs on the prefill step only.
    _can_compile_fullgraph = True

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any):
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        # Loading rebuilds every parameter with requires_grad=True: re-apply the configured freezing.
        for module in model.modules():
            if isinstance(module, PiTeModel):
                module.apply_freezing()
        return loaded

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        # Eq. 9: the trajectory head starts as the localization head repeated P*N times. The localization head is
        # registered first, so it is already initialised (or loaded from a checkpoint) when we get here.
        if module is getattr(self, "trajectory_head", None):
            self.initialize_trajectory_head_from_localization_head()


class PiTeModel(PiTePreTrainedModel):
    """Vision tower + adapter + Llama decoder, without heads."""

    def __init__(self, config: PiTeConfig) -> None:
        super().__init__(config)
        tower_class = CLIPVisionModelWithProjection if config.vision_feature == "image_embeds" else CLIPVisionModel
        self.vision_tower = tower_class(config.vision_config)
        self.video_adapter = nn.Linear(config.vision_feature_dim, config.text_config.hidden_size)
        self.language_model = LlamaModel(config.text_config)
        self.apply_freezing()
        self.post_init()

    def apply_freezing(self) -> None:
        """Freeze the vision tower when `config.freeze_vision_tower` (the paper's setting)."""
        if self.config.freeze_vision_tower:
            self.vision_tower.requires_grad_(False)
            self.vision_tower.eval()

    def train(self, mode: bool = True) -> PiTeModel:
        super().train(mode)
        # A frozen tower stays in eval mode while the rest trains: its features must not depend on the phase.
        if self.config.freeze_vision_tower:
            self.vision_tower.eval()
        return self

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_video_features(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        """Frame features of the (frozen) vision tower, one per frame.

        Args:
            pixel_values_videos: (B, N, 3, H, W) CLIP-normalised frames.

        Returns:
            (B, N, D) features, D = `config.vision_feature_dim` (768 projected CLS for ViT-L/14).
        """
        if pixel_values_videos.dim() != 5:
            raise ValueError(
                f"pixel_values_videos must have shape (batch, frames, 3, height, width), got {tuple(pixel_values_videos.shape)}"
            )
        batch, frames = pixel_values_videos.shape[:2]
        frames_flat = pixel_values_videos.flatten(0, 1).to(self.vision_tower.dtype)
        needs_grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.vision_tower.parameters())
        with torch.set_grad_enabled(needs_grad):
            outputs = self.vision_tower(pixel_values=frames_flat, return_dict=True)
        features = outputs.image_embeds if self.config.vision_feature == "image_embeds" else outputs.pooler_output
        return features.reshape(batch, frames, -1)

    def _video_features_from_inputs(
        self,
        pixel_values_videos: torch.Tensor | None,
        pixel_values: torch.Tensor | None,
        video_features: torch.Tensor | None,
    ) -> torch.Tensor | None:
        given = [n for n, v in (("pixel_values_videos", pixel_values_videos), ("pixel_values", pixel_values),
                                ("video_features", video_features)) if v is not None]
        if len(given) > 1:
            raise ValueError(f"give one visual input per call, got {given}")
        if pixel_values is not None:
            if pixel_values.dim() != 4:
                raise ValueError(f"pixel_values (images) must have shape (batch, 3, height, width), got {tuple(pixel_values.shape)}")
            pixel_values_videos = pixel_values.unsqueeze(1)  # an image is a one-frame video
        if pixel_values_videos is not None:
            return self.get_video_features(pixel_values_videos)
        if video_features is not None:
            expected = self.config.vision_feature_dim
            if video_features.dim() != 3 or video_features.shape[-1] != expected:
                raise ValueError(
                    f"video_features must have shape (batch, frames, {expected}) for vision_feature="
                    f"{self.config.vision_feature!r}, got {tuple(video_features.shape)}"
                )
        return video_features

    def _video_placeholder_mask(self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor) -> torch.Tensor:
        if input_ids is not None:
            return input_ids == self.config.video_token_id
        video_token_embedding = self.get_input_embeddings()(
            torch.tensor(self.config.video_token_id, device=inputs_embeds.device)
        )
        return (inputs_embeds == video_token_embedding).all(-1)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        video_features: torch.FloatTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Any | None = None,
        past_key_values: Any | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Any,
    ) -> PiTeModelOutputWithPast:
        """Embed text, put one adapted frame feature at each `<video>` placeholder, run the decoder.

        Args:
            input_ids: (B, L) token ids holding N `<video>` placeholders per video (left or right padded).
            pixel_values_videos: (B, N, 3, H, W) frames; or `pixel_values` (B, 3, H, W) images (one-frame videos);
                or `video_features` (B, N, D) precomputed vision-tower features (training with a feature cache).
            cache / past_key_values: KV cache under either name.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids or inputs_embeds")
        if cache is not None and past_key_values is not None:
            raise ValueError("give the KV cache as `cache` or as `past_key_values`, not both")
        cache = cache if cache is not None else past_key_values
        kwargs.pop("return_dict", None)
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        features = self._video_features_from_inputs(pixel_values_videos, pixel_values, video_features)
        placeholder_mask = self._video_placeholder_mask(input_ids, inputs_embeds)
        video_embeds = None
        if features is not None:
            num_placeholders = int(placeholder_mask.sum())
            num_features = features.shape[0] * features.shape[1]
            if num_placeholders != num_features:
                raise ValueError(
                    f"the text holds {num_placeholders} <video> placeholder tokens (id {self.config.video_token_id}) but "
                    f"{features.shape[0]} video(s) x {features.shape[1]} frames = {num_features} frame features were given; "
                    "the processor expands each <video> to one placeholder per frame"
                )
            video_embeds = self.video_adapter(features.to(self.video_adapter.weight.dtype))
            inputs_embeds = inputs_embeds.masked_scatter(
                placeholder_mask.unsqueeze(-1).expand_as(inputs_embeds),
                video_embeds.to(inputs_embeds.dtype),
            )
        elif (
            # Decode steps (a filled cache) skip the check, so a compiled decode step has no host sync.
            not torch.compiler.is_compiling()
            and (cache is None or cache.get_seq_length() == 0)
            and bool(placeholder_mask.any())
        ):
            raise ValueError(
                f"the text holds {int(placeholder_mask.sum())} <video> placeholder tokens but no video was given "
                "(pass pixel_values_videos, pixel_values or video_features)"
            )

        outputs = self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            return_dict=True,
            **{CACHE_KWARG: cache},
            **kwargs,
        )
        return PiTeModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            video_embeds=video_embeds,
            **{CACHE_KWARG: getattr(outputs, CACHE_KWARG, None)},
        )


class PiTeForConditionalGeneration(PiTePreTrainedModel, GenerationMixin):
    """PiTe with its three heads: vocabulary, localization (point per token), trajectory (P x N points per token).

    Loss normalisation: every term is a sum divided by its number of supervised items. A trainer doing gradient
    accumulation passes the counts of the whole accumulated batch (`num_items_in_batch` for tokens, transformers'
    convention; `num_point_items_in_batch` / `num_trajectory_items_in_batch` for the L1 terms), which makes the
    accumulated gradient equal to that of one large batch. Given only `num_items_in_batch` (plain `Trainer`), each
    L1 mean is weighted by this micro-batch's share of supervised tokens, so the scale stays right.
    """

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}

    def __init__(self, config: PiTeConfig) -> None:
        super().__init__(config)
        self.model = PiTeModel(config)
        hidden = config.text_config.hidden_size
        self.lm_head = nn.Linear(hidden, config.text_config.vocab_size, bias=False)
        # Registered localization-then-trajectory: `_init_weights` relies on that order for eq. 9.
        self.localization_head = nn.Linear(hidden, config.coordinate_dim)
        self.trajectory_head = nn.Linear(hidden, config.trajectory_dim)
        self._prediction_recorder: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self.post_init()
        # A placeholder is never a valid answer token: emitted, it would be read back as a missing frame.
        # `bad_words_ids` of one token is a mask computed once; `suppress_tokens` rebuilds it on every step.
        if self.generation_config is not None and not self.generation_config.bad_words_ids:
            self.generation_config.bad_words_ids = [[config.video_token_id]]

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.lm_head = value

    def get_video_features(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        """(B, N, 3, H, W) frames -> (B, N, D) vision-tower features; see `PiTeModel.get_video_features`."""
        return self.model.get_video_features(pixel_values_videos)

    @torch.no_grad()
    def initialize_trajectory_head_from_localization_head(self) -> None:
        """The paper's eq. 9: trajectory head = localization head repeated P * N times along the output axis.

        Row (p, n, c) of the trajectory head becomes row c of the localization head, so before training every
        trajectory point equals the token's localization point.
        """
        repeats = self.config.num_trajectory_points * self.config.num_frames
        _copy_into(self.trajectory_head.weight, self.localization_head.weight.repeat(repeats, 1))
        _copy_into(self.trajectory_head.bias, self.localization_head.bias.repeat(repeats))

    def _regression_predictions(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        points = self.localization_head(hidden_states)
        trajectories = self.trajectory_head(hidden_states).unflatten(
            -1, (self.config.num_trajectory_points, self.config.num_frames, self.config.coordinate_dim)
        )
        return points, trajectories

    def _check_target_shape(self, name: str, targets: torch.Tensor, reference: torch.Tensor, entry_shape: tuple) -> None:
        expected = (reference.shape[0], reference.shape[1], *entry_shape)
        if tuple(targets.shape) != expected:
            raise ValueError(f"{name} must have shape {expected} (batch, length, ...), got {tuple(targets.shape)}")

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        video_features: torch.FloatTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Any | None = None,
        past_key_values: Any | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        point_labels: torch.FloatTensor | None = None,
        trajectory_labels: torch.FloatTensor | None = None,
        point_mask: torch.Tensor | None = None,
        trajectory_mask: torch.Tensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        video_metadata: list[dict] | None = None,
        **kwargs: Any,
    ) -> PiTeCausalLMOutputWithPast | tuple:
        r"""
        Args:
            input_ids, pixel_values_videos, pixel_values, video_features, attention_mask, position_ids,
            cache / past_key_values, inputs_embeds, use_cache: as in `PiTeModel.forward`.
            labels: (B, L) token ids, `-100` where not supervised; unshifted.
            point_labels: (B, L, 2) normalised target point of token t at t; `-1` where none (stage 1).
            trajectory_labels: (B, L, P, N, 2) target trajectories of token t at t; `-1` where none or absent (stage 2).
            point_mask, trajectory_mask: optional boolean masks, (B, L) or the full point shape, ANDed with the `-1` rule.
            logits_to_keep: compute heads only for the last `logits_to_keep` positions (0 = all).
            video_metadata: accepted so processor outputs can be passed whole; not used by the network.
            num_items_in_batch, num_point_items_in_batch, num_trajectory_items_in_batch (kwargs): loss normalisers
                for gradient accumulation (see the class docstring).
        """
        return_dict = kwargs.pop("return_dict", None)
        loss_counts = {name: kwargs.pop(name, None) for name in LOSS_COUNT_KWARGS}
        outputs = self.model(
            input_ids=input_ids,
            pixel_values_videos=pixel_values_videos,
            pixel_values=pixel_values,
            video_features=video_features,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        if isinstance(logits_to_keep, int):
            kept = hidden_states[:, -logits_to_keep:, :] if logits_to_keep else hidden_states
        else:
            kept = hidden_states[:, logits_to_keep, :]
        logits = self.lm_head(kept)
        point_predictions, trajectory_predictions = self._regression_predictions(kept)

        loss_terms = self._loss_terms(
            logits, point_predictions, trajectory_predictions, labels, point_labels, trajectory_labels,
            point_mask, trajectory_mask, **loss_counts,
        )
        result = PiTeCausalLMOutputWithPast(
            logits=logits,
            point_predictions=point_predictions,
            trajectory_predictions=trajectory_predictions,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            video_embeds=outputs.video_embeds,
            **loss_terms,
            **{CACHE_KWARG: outputs[CACHE_KWARG] if CACHE_KWARG in outputs else None},
        )
        return result if return_dict is not False else result.to_tuple()

    def _loss_terms(
        self,
        logits: torch.Tensor,
        point_predictions: torch.Tensor,
        trajectory_predictions: torch.Tensor,
        labels: torch.Tensor | None,
        point_labels: torch.Tensor | None,
        trajectory_labels: torch.Tensor | None,
        point_mask: torch.Tensor | None,
        trajectory_mask: torch.Tensor | None,
        num_items_in_batch: torch.Tensor | int | None = None,
        num_point_items_in_batch: torch.Tensor | int | None = None,
        num_trajectory_items_in_batch: torch.Tensor | int | None = None,
    ) -> dict[str, torch.Tensor]:
        config = self.config
        terms: dict[str, torch.Tensor] = {}
        token_share = None  # this micro-batch's share of the accumulated supervised tokens
        if labels is not None:
            if labels.shape != logits.shape[:2]:
                raise ValueError(f"labels must have shape {tuple(logits.shape[:2])} (batch, length), got {tuple(labels.shape)}")
            ce_sum, ce_count = shifted_cross_entropy_sum(logits, labels, config.label_smoothing)
            denominator = num_items_in_batch if num_items_in_batch is not None else ce_count.clamp(min=1)
            terms["lm_loss"] = ce_sum / denominator
            if num_items_in_batch is not None:
                token_share = ce_count / num_items_in_batch
        regression = []
        for name, predictions, targets, mask, count, entry_shape in (
            ("point_labels", point_predictions, point_labels, point_mask, num_point_items_in_batch,
             (config.coordinate_dim,)),
            ("trajectory_labels", trajectory_predictions, trajectory_labels, trajectory_mask,
             num_trajectory_items_in_batch,
             (config.num_trajectory_points, config.num_frames, config.coordinate_dim)),
        ):
            if targets is None:
                continue
            self._check_target_shape(name, targets, predictions, entry_shape)
            l1_sum, l1_count = shifted_masked_l1_sum(
                predictions, targets, mask, config.absent_coordinate, labels, config.absent_targets
            )
            if count is not None:
                value = l1_sum / count if count else l1_sum * 0.0
            else:
                value = l1_sum / l1_count.clamp(min=1)
                if token_share is not None:
                    value = value * token_share
            terms["localization_loss" if name == "point_labels" else "trajectory_loss"] = value
            regression.append(value)
        if terms:
            loss = terms.get("lm_loss", 0.0)
            for value in regression:
                loss = loss + config.localization_loss_weight * value
            terms["loss"] = loss
        return terms

    def _update_model_kwargs_for_generation(self, outputs: ModelOutput, model_kwargs: dict, *args: Any, **kwargs: Any):
        # Called once after every forward of generate(): recording here keeps forward free of side effects (a
        # compiled / CUDA-graphed decode step), and cloning keeps buffers a graph replay would overwrite.
        if self._prediction_recorder is not None:
            self._prediction_recorder.append((outputs.point_predictions[:, -1].detach().clone(),
                                              outputs.trajectory_predictions[:, -1].detach().clone()))
        return super()._update_model_kwargs_for_generation(outputs, model_kwargs, *args, **kwargs)

    def prepare_inputs_for_generation(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        is_first_iteration = kwargs.get("is_first_iteration")
        model_inputs = super().prepare_inputs_for_generation(*args, **kwargs)
        if is_first_iteration is None:  # transformers versions without the flag: an empty cache means prefill
            cache = model_inputs.get(CACHE_KWARG)
            is_first_iteration = cache is None or cache.get_seq_length() == 0
        if not is_first_iteration and model_inputs.get("use_cache", True):
            # The frames are in the KV cache after prefill (transformers drops pixel inputs itself; features too).
            for name in ("video_features", "pixel_values", "pixel_values_videos"):
                model_inputs.pop(name, None)
        return model_inputs

    def generate(self, *args: Any, **kwargs: Any) -> torch.LongTensor | ModelOutput:
        """`GenerationMixin.generate`, plus the point and trajectory of every generated token.

        With `return_dict_in_generate=True` the result is a `PiTeGenerateOutput` whose `point_predictions`
        (B, T_new, 2) and `trajectory_predictions` (B, T_new, P, N, 2) come from the same forward passes that produced
        the tokens (the last position of each step): nothing is re-run and no hidden-state history is kept.
        Greedy search and sampling are supported; beam search and assisted decoding are not (their steps do not map
        one-to-one onto output tokens).
        """
        generation_config = kwargs.get("generation_config") or self.generation_config
        return_dict = kwargs.get("return_dict_in_generate", getattr(generation_config, "return_dict_in_generate", False))
        if not return_dict:
            return super().generate(*args, **kwargs)
        num_beams = kwargs.get("num_beams", getattr(generation_config, "num_beams", 1)) or 1
        if num_beams > 1 or kwargs.get("assistant_model") is not None or kwargs.get("prompt_lookup_num_tokens"):
            raise ValueError(
                "per-token point/trajectory outputs need one forward pass per generated token: use greedy search or "
                "sampling (num_beams=1, no assisted decoding), or call generate with return_dict_in_generate=False"
            )
        if self._prediction_recorder is not None:
            raise RuntimeError("generate() is already running on this model (nested or concurrent calls)")
        self._prediction_recorder = []
        try:
            output = super().generate(*args, **kwargs)
            recorded = self._prediction_recorder
        finally:
            self._prediction_recorder = None
        num_new = len(recorded)
        points = torch.stack([p for p, _ in recorded], dim=1) if recorded else None
        trajectories = torch.stack([t for _, t in recorded], dim=1) if recorded else None
        if points is not None and points.shape[0] != output.sequences.shape[0]:
            raise RuntimeError(
                f"recorded predictions for {points.shape[0]} sequences but generate returned {output.sequences.shape[0]}"
            )
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        generated = output.sequences.shape[1] - (input_ids.shape[1] if input_ids is not None else 0)
        if generated != num_new:
            raise RuntimeError(f"{num_new} forward steps recorded for {generated} generated tokens")
        return PiTeGenerateOutput(**output, point_predictions=points, trajectory_predictions=trajectories)


# transformers inspects the signature of a remote-code model's forward on every decode step: compute it once.
PiTeForConditionalGeneration.forward.__signature__ = inspect.signature(PiTeForConditionalGeneration.forward)

# `save_pretrained` copies this file, its siblings and the config's file next to the weights (Hub remote code).
PiTeConfig.register_for_auto_class()
PiTeForConditionalGeneration.register_for_auto_class("AutoModel")

__all__ = [
    "PiTeCausalLMOutputWithPast",
    "PiTeForConditionalGeneration",
    "PiTeGenerateOutput",
    "PiTeModel",
    "PiTeModelOutputWithPast",
    "PiTePreTrainedModel",
]
