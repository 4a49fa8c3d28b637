"""PiTe: Pixel-Temporal Alignment for Large Video-Language Model (Liu et al., ECCV 2024).

A frozen CLIP tower turns each sampled frame into one feature, a linear adapter maps it into a Llama language model
at the positions of the `<video>` placeholder tokens, and three heads read the language model's last hidden state of
every token: the vocabulary head, a localization head (one 2-D point) and a trajectory head (P points x N frames).

Hub remote code: this file is copied flat next to `config.json`; it imports only torch, transformers and its siblings.
"""

import inspect
import json
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import CLIPVisionModel, CLIPVisionModelWithProjection, LlamaModel, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs, logging
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import can_return_tuple

try:
    from transformers.utils import torch_compilable_check
except ImportError:  # transformers without it: torch's own check, a compiler hint as well

    def torch_compilable_check(condition: torch.Tensor, message: str) -> None:
        torch._check_tensor_all(condition, lambda: message)


from .configuration_pite import PiTeConfig
from .generation_pite import (
    CACHE_KWARG,
    PiTeGenerateBeamOutput,
    PiTeGenerateOutput,
    PiTeGenerationMixin,
    forbid_video_token,
)
from .losses_pite import (
    ABSENT_COORDINATE,
    IGNORE_INDEX,
    shifted_cross_entropy_sum,
    shifted_masked_l1_sum,
    valid_point_mask,
)

logger = logging.get_logger(__name__)

# Loss-normalisation counts a trainer may pass for exact gradient accumulation (see `PiTeForConditionalGeneration`).
LOSS_COUNT_KWARGS = ("num_items_in_batch", "num_point_items_in_batch", "num_trajectory_items_in_batch")


class PiTeKwargs(TransformersKwargs, total=False):
    """Forward kwargs beyond transformers' own: loss normalisers (see `PiTeForConditionalGeneration`) and
    `shift_labels`, labels already shifted by one (sequence / context parallelism), used instead of `labels`."""

    num_point_items_in_batch: torch.Tensor | int | None
    num_trajectory_items_in_batch: torch.Tensor | int | None
    shift_labels: torch.LongTensor | None


def _past_key_values_deprecated(function):
    """`past_key_values=` gives transformers' own deprecation warning where the installed version calls it `cache`."""
    if CACHE_KWARG != "cache":
        return function
    return deprecate_kwarg("past_key_values", version="5.40.0", new_name="cache")(function)


@dataclass
class PiTeModelOutputWithPast(ModelOutput):
    """Output of `PiTeModel`.

    Args:
        last_hidden_state: (B, L, hidden) the language model's last hidden states.
        cache (transformers >= 5.2x) or past_key_values (older): the KV cache.
        hidden_states: per-layer hidden states when `output_hidden_states=True`.
        attentions: per-layer attentions when `output_attentions=True`.
        video_embeds: (B, N, hidden) adapter outputs placed at the `<video>` positions, when a video was given.
        image_outputs / video_outputs: the vision tower's outputs (`get_video_features`, images as one-frame videos)
            when images (`pixel_values`) / frames (`pixel_values_videos`) were given as pixels.
    """

    last_hidden_state: torch.FloatTensor | None = None
    if CACHE_KWARG == "cache":  # one field, named as the installed transformers' generate() reads it
        cache: Any | None = None
    else:
        past_key_values: Any | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    video_embeds: torch.FloatTensor | None = None
    image_outputs: BaseModelOutputWithPooling | None = None
    video_outputs: BaseModelOutputWithPooling | None = None


@dataclass
class PiTeCausalLMOutputWithPast(ModelOutput):
    """Output of `PiTeForConditionalGeneration`.

    Args:
        loss: lm_loss + localization_loss_weight * (localization_loss + trajectory_loss), the terms that were
            supervised.
        lm_loss: next-token cross-entropy (label-smoothed if configured), mean over supervised tokens.
        localization_loss: L1 distance of points, mean over valid (token) points.
        trajectory_loss: L1 distance of trajectory points, mean over valid (token, point, frame) entries.
        logits: (B, L', V) vocabulary scores (L' = L, or the kept positions with `logits_to_keep`).
        point_predictions: (B, L', 2) predicted point of the token that follows each position.
        trajectory_predictions: (B, L', P, N, 2) predicted trajectories of the token that follows each position.
        cache / past_key_values, hidden_states, attentions, video_embeds, image_outputs, video_outputs: as in
            `PiTeModelOutputWithPast`.
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
    image_outputs: BaseModelOutputWithPooling | None = None
    video_outputs: BaseModelOutputWithPooling | None = None


def _copy_into(tensor: torch.Tensor, value: torch.Tensor) -> None:
    with torch.no_grad():
        tensor.copy_(value)


def _damaged_safetensors(folder: Any) -> str | None:
    """The first `*.safetensors` file of a local folder whose size disagrees with its header, or None."""
    if not isinstance(folder, (str, os.PathLike)) or not os.path.isdir(folder):
        return None
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not name.endswith(".safetensors"):
            continue
        try:
            with open(path, "rb") as handle:
                length = int.from_bytes(handle.read(8), "little")
                header = json.loads(handle.read(length))
            end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
            if 8 + length + end != os.path.getsize(path):
                return path
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return path
    return None


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
        try:
            loaded = super().from_pretrained(*args, **kwargs)
        except Exception as error:
            if type(error).__name__ != "SafetensorError":  # safetensors' own error names no file
                raise
            source = args[0] if args else kwargs.get("pretrained_model_name_or_path")
            raise OSError(
                f"{_damaged_safetensors(source) or source}: the weights are truncated or corrupted "
                f"({error}); save, export or download them again"
            ) from error
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

    def train(self, mode: bool = True) -> "PiTeModel":
        super().train(mode)
        # A frozen tower stays in eval mode while the rest trains: its features must not depend on the phase.
        if self.config.freeze_vision_tower:
            self.vision_tower.eval()
        return self

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    @can_return_tuple
    def get_video_features(
        self, pixel_values_videos: torch.FloatTensor, **kwargs: Unpack[TransformersKwargs]
    ) -> tuple | BaseModelOutputWithPooling:
        """Frame features of the (frozen) vision tower, one per frame.

        Args:
            pixel_values_videos: (B, N, 3, H, W) CLIP-normalised frames.
            output_hidden_states, output_attentions, return_dict (kwargs): as for any transformers model.

        Returns:
            `BaseModelOutputWithPooling` with `pooler_output` (B, N, D) the features the adapter reads (D =
            `config.vision_feature_dim`, 768 projected CLS for ViT-L/14), and the tower's `last_hidden_state`
            (B, N, S, H_vision), `hidden_states` (each (B, N, S, H_vision)) and `attentions` (each (B, N, heads, S, S))
            with the frame axis restored.
        """
        if pixel_values_videos.dim() != 5:
            raise ValueError(
                "pixel_values_videos must have shape (batch, frames, 3, height, width), got "
                f"{tuple(pixel_values_videos.shape)}"
            )
        batch, frames = pixel_values_videos.shape[:2]
        frames_flat = pixel_values_videos.flatten(0, 1).to(self.vision_tower.dtype)
        needs_grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.vision_tower.parameters())
        with torch.set_grad_enabled(needs_grad):
            outputs = self.vision_tower(pixel_values=frames_flat, return_dict=True, **kwargs)
        features = outputs.image_embeds if self.config.vision_feature == "image_embeds" else outputs.pooler_output

        def per_video(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.unflatten(0, (batch, frames))

        return BaseModelOutputWithPooling(
            last_hidden_state=per_video(outputs.last_hidden_state),
            pooler_output=per_video(features),
            # Entries are None for layers not asked for (`output_hidden_states` given as layer indices).
            hidden_states=None if outputs.hidden_states is None else tuple(map(per_video, outputs.hidden_states)),
            attentions=None if outputs.attentions is None else tuple(map(per_video, outputs.attentions)),
        )

    def _visual_input(
        self,
        pixel_values_videos: torch.Tensor | None,
        pixel_values: torch.Tensor | None,
        video_features: torch.Tensor | None,
    ) -> tuple[str, torch.Tensor] | None:
        """(name, tensor) of the one visual input given, images as one-frame videos; None without one."""
        given = [
            n
            for n, v in (
                ("pixel_values_videos", pixel_values_videos),
                ("pixel_values", pixel_values),
                ("video_features", video_features),
            )
            if v is not None
        ]
        if len(given) > 1:
            raise ValueError(f"give one visual input per call, got {given}")
        if pixel_values is not None:
            if pixel_values.dim() != 4:
                raise ValueError(
                    f"pixel_values (images) must have shape (batch, 3, height, width), got {tuple(pixel_values.shape)}"
                )
            return "pixel_values", pixel_values.unsqueeze(1)  # an image is a one-frame video
        if pixel_values_videos is not None:
            if pixel_values_videos.dim() != 5:
                raise ValueError(
                    "pixel_values_videos must have shape (batch, frames, 3, height, width), got "
                    f"{tuple(pixel_values_videos.shape)}"
                )
            return "pixel_values_videos", pixel_values_videos
        if video_features is not None:
            expected = self.config.vision_feature_dim
            if video_features.dim() != 3 or video_features.shape[-1] != expected:
                raise ValueError(
                    f"video_features must have shape (batch, frames, {expected}) for vision_feature="
                    f"{self.config.vision_feature!r}, got {tuple(video_features.shape)}"
                )
            return "video_features", video_features
        return None

    def _video_placeholder_mask(self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor) -> torch.Tensor:
        if input_ids is not None:
            return input_ids == self.config.video_token_id
        video_token_embedding = self.get_input_embeddings()(
            torch.tensor(self.config.video_token_id, device=inputs_embeds.device)
        )
        return (inputs_embeds == video_token_embedding).all(-1)

    def _check_prompt(
        self,
        input_ids: torch.Tensor | None,
        placeholder_mask: torch.Tensor,
        visual: tuple[str, torch.Tensor] | None,
    ) -> None:
        """Checks of a prefill, read back from the device in one transfer: token ids inside the vocabulary, one
        placeholder per frame feature, finite visual input. Decode steps skip it (no host sync in a compiled step)."""
        vocab_size = self.config.text_config.vocab_size
        stats = [placeholder_mask.sum()]
        if input_ids is not None:
            stats += [input_ids.min(), input_ids.max()]
        bad_frames = None
        if visual is not None:
            bad_frames = ~torch.isfinite(visual[1]).flatten(2).all(-1)  # (B, N)
            stats.append(bad_frames.sum())
        values = torch.stack([v.to(torch.long) for v in stats]).tolist()
        num_placeholders = values[0]
        if input_ids is not None and not 0 <= values[1] <= values[2] < vocab_size:
            bad = values[1] if values[1] < 0 else values[2]
            raise ValueError(
                f"input_ids holds token id {bad}, outside the vocabulary [0, {vocab_size}) "
                "(text_config.vocab_size): was the text tokenized with another tokenizer?"
            )
        if visual is None:
            if num_placeholders:
                raise ValueError(
                    f"the text holds {num_placeholders} <video> placeholder tokens but no video was given "
                    "(pass pixel_values_videos, pixel_values or video_features)"
                )
            return
        name, frames = visual
        if values[-1]:
            video, frame = bad_frames.nonzero()[0].tolist()
            where = f"image {video}" if name == "pixel_values" else f"video {video}, frame {frame}"
            raise ValueError(
                f"{name} holds non-finite values (NaN or inf): first at {where} "
                f"({values[-1]} such {'images' if name == 'pixel_values' else 'frames'} in the batch)"
            )
        num_features = frames.shape[0] * frames.shape[1]
        if num_placeholders != num_features:
            raise ValueError(
                f"the text holds {num_placeholders} <video> placeholder tokens (id {self.config.video_token_id}) but "
                f"{frames.shape[0]} video(s) x {frames.shape[1]} frames = {num_features} frame features were given; "
                "the processor expands each <video> to one placeholder per frame"
            )

    @can_return_tuple
    @_past_key_values_deprecated
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
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple | PiTeModelOutputWithPast:
        """Embed text, put one adapted frame feature at each `<video>` placeholder, run the decoder.

        Args:
            input_ids: (B, L) token ids holding N `<video>` placeholders per video (left or right padded).
            pixel_values_videos: (B, N, 3, H, W) frames; or `pixel_values` (B, 3, H, W) images (one-frame videos);
                or `video_features` (B, N, D) precomputed vision-tower features (training with a feature cache).
            cache: the KV cache (`past_key_values`, its older name, is accepted with transformers' deprecation
                warning where the installed version calls it `cache`).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids or inputs_embeds")
        if cache is not None and past_key_values is not None:
            raise ValueError("give the KV cache as `cache` or as `past_key_values`, not both")
        cache = cache if cache is not None else past_key_values
        if input_ids is not None and input_ids.shape[-1] == 0:
            raise ValueError(f"input_ids is empty (shape {tuple(input_ids.shape)}): give at least one token")
        visual = self._visual_input(pixel_values_videos, pixel_values, video_features)
        is_prefill = cache is None or cache.get_seq_length() == 0
        placeholder_mask = None
        # Decode steps (a filled cache) skip the checks, so a compiled decode step has no host sync.
        if not torch.compiler.is_compiling() and (is_prefill or visual is not None):
            placeholder_mask = self._video_placeholder_mask(input_ids, inputs_embeds)
            self._check_prompt(input_ids, placeholder_mask, visual)
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        video_embeds, tower_outputs = None, {}
        if visual is not None:
            name, frames = visual
            if name == "video_features":
                features = frames
            else:
                vision_kwargs = {k: kwargs[k] for k in ("output_hidden_states", "output_attentions") if k in kwargs}
                tower = self.get_video_features(frames, return_dict=True, **vision_kwargs)
                tower_outputs["image_outputs" if name == "pixel_values" else "video_outputs"] = tower
                features = tower.pooler_output
            if placeholder_mask is None:  # compiling: the prompt checks were skipped; keep this one as a graph assert
                placeholder_mask = self._video_placeholder_mask(input_ids, inputs_embeds)
                torch_compilable_check(
                    placeholder_mask.sum() == frames.shape[0] * frames.shape[1],
                    "the number of <video> placeholder tokens differs from the number of frame features given",
                )
            video_embeds = self.video_adapter(features.to(self.video_adapter.weight.dtype))
            inputs_embeds = inputs_embeds.masked_scatter(
                placeholder_mask.unsqueeze(-1).expand_as(inputs_embeds),
                video_embeds.to(inputs_embeds.dtype),
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
            **tower_outputs,
            **{CACHE_KWARG: getattr(outputs, CACHE_KWARG, None)},
        )


class PiTeForConditionalGeneration(PiTePreTrainedModel, PiTeGenerationMixin):
    """PiTe with its three heads: vocabulary, localization (point per token), trajectory (P x N points per token).

    Loss normalisation: every term is a sum divided by its number of supervised items. A trainer doing gradient
    accumulation passes the counts of the whole accumulated batch (`num_items_in_batch` for tokens, transformers'
    convention; `num_point_items_in_batch` / `num_trajectory_items_in_batch` for the L1 terms), which makes the
    accumulated gradient equal to that of one large batch. Given only `num_items_in_batch` (plain `Trainer`), each
    L1 mean is weighted by this micro-batch's share of supervised tokens, so the scale stays right.
    """

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}
    _tp_plan = {"lm_head": "colwise_gather_output"}

    def __init__(self, config: PiTeConfig) -> None:
        super().__init__(config)
        self.model = PiTeModel(config)
        hidden = config.text_config.hidden_size
        self.lm_head = nn.Linear(hidden, config.text_config.vocab_size, bias=False)
        # Registered localization-then-trajectory: `_init_weights` relies on that order for eq. 9.
        self.localization_head = nn.Linear(hidden, config.coordinate_dim)
        self.trajectory_head = nn.Linear(hidden, config.trajectory_dim)
        self.post_init()
        if self.generation_config is not None:
            forbid_video_token(self.generation_config, config.video_token_id)

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.lm_head = value

    def get_video_features(
        self, pixel_values_videos: torch.FloatTensor, **kwargs: Unpack[TransformersKwargs]
    ) -> tuple | BaseModelOutputWithPooling:
        """(B, N, 3, H, W) frames -> `pooler_output` (B, N, D) vision-tower features; see
        `PiTeModel.get_video_features`."""
        return self.model.get_video_features(pixel_values_videos, **kwargs)

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

    def _check_target_shape(
        self, name: str, targets: torch.Tensor, reference: torch.Tensor, entry_shape: tuple
    ) -> None:
        expected = (reference.shape[0], reference.shape[1], *entry_shape)
        if tuple(targets.shape) != expected:
            raise ValueError(f"{name} must have shape {expected} (batch, length, ...), got {tuple(targets.shape)}")

    @can_return_tuple
    @_past_key_values_deprecated
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
        **kwargs: Unpack[PiTeKwargs],
    ) -> tuple | PiTeCausalLMOutputWithPast:
        r"""
        Args:
            input_ids, pixel_values_videos, pixel_values, video_features, attention_mask, position_ids,
            cache / past_key_values, inputs_embeds, use_cache: as in `PiTeModel.forward`.
            labels: (B, L) token ids, `-100` where not supervised; unshifted.
            point_labels: (B, L, 2) normalised target point of token t at t; `-1` where none (stage 1).
            trajectory_labels: (B, L, P, N, 2) target trajectories of token t at t; `-1` where none or absent
                (stage 2).
            point_mask, trajectory_mask: optional boolean masks, (B, L) or the full point shape, ANDed with the
                `-1` rule.
            logits_to_keep: compute heads only for the last `logits_to_keep` positions (0 = all).
            video_metadata: accepted so processor outputs can be passed whole; not used by the network.
            num_items_in_batch, num_point_items_in_batch, num_trajectory_items_in_batch (kwargs): loss normalisers
                for gradient accumulation (see the class docstring).
            shift_labels (kwargs): (B, L) labels already shifted (position t holds the label of token t + 1), as
                sequence/context-parallel training passes them; used instead of `labels` for the token loss.
            return_dict (kwargs): False (or `config.return_dict=False`) returns a tuple.

        A labelled batch with no supervised token gives `lm_loss` 0 and a one-time warning, not an error: one
        micro-batch of a data-parallel step can legitimately be fully masked after truncation.
        """
        loss_counts = {name: kwargs.pop(name, None) for name in LOSS_COUNT_KWARGS}
        shift_labels = kwargs.pop("shift_labels", None)
        if not torch.compiler.is_compiling():
            self._check_targets(labels, shift_labels, point_labels, trajectory_labels, point_mask, trajectory_mask)
        outputs = self.model(
            input_ids=input_ids,
            pixel_values_videos=pixel_values_videos,
            pixel_values=pixel_values,
            video_features=video_features,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache if cache is not None else past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            return_dict=True,
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
            logits,
            point_predictions,
            trajectory_predictions,
            labels,
            point_labels,
            trajectory_labels,
            point_mask,
            trajectory_mask,
            shift_labels=shift_labels,
            **loss_counts,
        )
        return PiTeCausalLMOutputWithPast(
            logits=logits,
            point_predictions=point_predictions,
            trajectory_predictions=trajectory_predictions,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            video_embeds=outputs.video_embeds,
            image_outputs=outputs.image_outputs,
            video_outputs=outputs.video_outputs,
            **loss_terms,
            **{CACHE_KWARG: outputs[CACHE_KWARG] if CACHE_KWARG in outputs else None},
        )

    def _check_targets(
        self,
        labels: torch.Tensor | None,
        shift_labels: torch.Tensor | None,
        point_labels: torch.Tensor | None,
        trajectory_labels: torch.Tensor | None,
        point_mask: torch.Tensor | None,
        trajectory_mask: torch.Tensor | None,
    ) -> None:
        """Training targets, read back from the device in one transfer: supervised tokens exist (else a one-time
        warning), every used coordinate target is in [0, 1] or the absent sentinel."""
        if shift_labels is not None and (point_labels is not None or trajectory_labels is not None):
            raise ValueError(
                "shift_labels (sequence/context parallelism) applies to the token loss only; point_labels and "
                "trajectory_labels are shifted inside the model and cannot be split that way: pass labels instead"
            )
        stats, coordinate_targets = [], []
        token_labels = shift_labels if shift_labels is not None else None if labels is None else labels[:, 1:]
        if token_labels is not None:
            stats.append((token_labels != IGNORE_INDEX).sum())
        for name, targets, mask in (
            ("point_labels", point_labels, point_mask),
            ("trajectory_labels", trajectory_labels, trajectory_mask),
        ):
            if targets is None:
                continue
            used = valid_point_mask(targets, mask, ABSENT_COORDINATE).unsqueeze(-1)
            outside = used & ~((targets >= 0) & (targets <= 1)) & (targets != ABSENT_COORDINATE)
            coordinate_targets.append((name, targets, outside))
            stats.append(outside.sum())
        if not stats:
            return
        values = torch.stack([v.to(torch.long) for v in stats]).tolist()
        if token_labels is not None:
            if values[0] == 0:
                logger.warning_once(
                    f"{'shift_labels' if shift_labels is not None else 'labels'} supervise no token (every label the "
                    "token loss reads is -100): lm_loss is 0 for this batch. Expected for a fully masked micro-batch "
                    "after truncation; if every batch looks like this, the labels are wrong."
                )
            values = values[1:]
        for (name, targets, outside), count in zip(coordinate_targets, values):
            if count:
                index = outside.nonzero()[0].tolist()
                value = targets[tuple(index)].item()
                raise ValueError(
                    f"{name}{index} = {value} is outside [0, 1] (normalised image coordinates) and is not the absent "
                    f"sentinel {ABSENT_COORDINATE} ({count} such values in the batch)"
                )

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
        shift_labels: torch.Tensor | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        num_point_items_in_batch: torch.Tensor | int | None = None,
        num_trajectory_items_in_batch: torch.Tensor | int | None = None,
    ) -> dict[str, torch.Tensor]:
        config = self.config
        terms: dict[str, torch.Tensor] = {}
        token_share = None  # this micro-batch's share of the accumulated supervised tokens
        if labels is not None or shift_labels is not None:
            name, given = ("shift_labels", shift_labels) if shift_labels is not None else ("labels", labels)
            if given.shape != logits.shape[:2]:
                raise ValueError(
                    f"{name} must have shape {tuple(logits.shape[:2])} (batch, length), got {tuple(given.shape)}"
                )
            ce_sum, ce_count = shifted_cross_entropy_sum(
                logits, labels, config.label_smoothing, shift_labels=shift_labels
            )
            denominator = num_items_in_batch if num_items_in_batch is not None else ce_count.clamp(min=1)
            terms["lm_loss"] = ce_sum / denominator
            if num_items_in_batch is not None:
                token_share = ce_count / num_items_in_batch
        regression = self.regression_loss_terms(
            point_predictions,
            trajectory_predictions,
            labels,
            point_labels,
            trajectory_labels,
            point_mask,
            trajectory_mask,
            num_point_items_in_batch,
            num_trajectory_items_in_batch,
            token_share,
        )
        terms.update(regression)
        if terms:
            loss = terms.get("lm_loss", 0.0)
            for value in regression.values():
                loss = loss + config.localization_loss_weight * value
            terms["loss"] = loss
        return terms

    def regression_loss_terms(
        self,
        point_predictions: torch.Tensor,
        trajectory_predictions: torch.Tensor,
        labels: torch.Tensor | None,
        point_labels: torch.Tensor | None,
        trajectory_labels: torch.Tensor | None,
        point_mask: torch.Tensor | None = None,
        trajectory_mask: torch.Tensor | None = None,
        num_point_items_in_batch: torch.Tensor | int | None = None,
        num_trajectory_items_in_batch: torch.Tensor | int | None = None,
        token_share: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """`localization_loss` / `trajectory_loss` of the targets given (trainers that compute the token loss
        themselves add these): the L1 sum divided by the whole accumulated step's count when given, else by this
        batch's count (scaled by `token_share`, this batch's share of the step's supervised tokens, when known)."""
        config = self.config
        terms: dict[str, torch.Tensor] = {}
        for name, predictions, targets, mask, count, entry_shape in (
            (
                "point_labels",
                point_predictions,
                point_labels,
                point_mask,
                num_point_items_in_batch,
                (config.coordinate_dim,),
            ),
            (
                "trajectory_labels",
                trajectory_predictions,
                trajectory_labels,
                trajectory_mask,
                num_trajectory_items_in_batch,
                (config.num_trajectory_points, config.num_frames, config.coordinate_dim),
            ),
        ):
            if targets is None:
                continue
            self._check_target_shape(name, targets, predictions, entry_shape)
            l1_sum, l1_count = shifted_masked_l1_sum(
                predictions, targets, mask, ABSENT_COORDINATE, labels, config.absent_targets
            )
            if count is not None:
                value = l1_sum / count if count else l1_sum * 0.0
            else:
                value = l1_sum / l1_count.clamp(min=1)
                if token_share is not None:
                    value = value * token_share
            terms["localization_loss" if name == "point_labels" else "trajectory_loss"] = value
        return terms


# transformers inspects the signature of a remote-code model's forward on every decode step: compute it once.
PiTeForConditionalGeneration.forward.__signature__ = inspect.signature(PiTeForConditionalGeneration.forward)

# `save_pretrained` copies this file, its siblings and the config's file next to the weights (Hub remote code).
PiTeConfig.register_for_auto_class()
PiTeForConditionalGeneration.register_for_auto_class("AutoModel")

__all__ = [
    "PiTeCausalLMOutputWithPast",
    "PiTeForConditionalGeneration",
    "PiTeGenerateBeamOutput",
    "PiTeGenerateOutput",
    "PiTeModel",
    "PiTeModelOutputWithPast",
    "PiTePreTrainedModel",
]
