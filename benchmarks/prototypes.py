"""Prototypes of changes to `modeling_pite.py`, measured against the library as it is (the report carries the diffs
for the model's owner). Nothing here is imported by the library; the classes are swapped onto deep copies of a built
model, so both sides of a comparison share weights exactly.

A. Cheaper decode steps (`cheap_decode_copy`, the `generation` row):
   1. The `<video>` token is kept out of answers with `generation_config.suppress_tokens`, whose processor builds
      `arange(vocab)` and runs `isin` over it on every step. `bad_words_ids=[[video_token_id]]` has the same effect
      with a bias computed once and added per step.
   2. transformers calls `inspect.signature(model.forward)` on every decode step of a registered (remote-code)
      model, as PiTe is; caching the signature on the function (`forward.__signature__`) makes that free.

B. A decode step torch.compile captures whole (`compilable_copy`, the `compile` and `gpu` rows):
   1. `PiTeModel.forward` counts the `<video>` placeholders on every call (`int(placeholder_mask.sum())`): a host
      sync, and a graph break under torch.compile. The count is only needed when frame features are given (to check
      them against the placeholders) or while the cache is empty (to reject placeholders without a video). A compiled
      call without frames is a decode step (generate compiles decode steps only, the prefill runs eagerly), and even
      the cache length is a tensor there (static cache), so `DecodeStepWithoutPlaceholderCount` skips the check when
      `torch.compiler.is_compiling()` and no frames are given, as transformers skips its own checks under dynamo.
   2. `PiTeForConditionalGeneration.forward` appends each step's predictions to a Python list. Dynamo guards on the
      list's length, so every decode step recompiles until the recompile limit, after which the step runs eagerly;
      and with CUDA graphs the recorded outputs would be overwritten by the next replay. `PiTeRecordingOutsideForward`
      records copies in `_update_model_kwargs_for_generation`, which `generate()` calls with each step's outputs
      outside the compiled forward, and so keeps the forward free of side effects.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import torch
from transformers import GenerationMixin

from pite.modeling_pite import PiTeForConditionalGeneration, PiTeModel
from pite.modeling_pite.modeling_pite import CACHE_KWARG, PiTeGenerateOutput, PiTeModelOutputWithPast


class DecodeStepWithoutPlaceholderCount(PiTeModel):
    """`PiTeModel` that, in a compiled call without frames (a decode step), embeds the tokens and runs the decoder
    without counting placeholders; every other call goes through `PiTeModel.forward` unchanged."""

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
        # Under torch.compile (generate compiles decode steps only; prefill runs eagerly and is still checked), a
        # call without frames skips the count: even the cache length is a tensor for a static cache.
        kv_cache = cache if cache is not None else past_key_values
        text_only_compiled = (
            torch.compiler.is_compiling() and input_ids is not None and inputs_embeds is None
            and pixel_values_videos is None and pixel_values is None and video_features is None
            and (cache is None or past_key_values is None)
        )
        if not text_only_compiled:
            return super().forward(
                input_ids=input_ids, pixel_values_videos=pixel_values_videos, pixel_values=pixel_values,
                video_features=video_features, attention_mask=attention_mask, position_ids=position_ids, cache=cache,
                past_key_values=past_key_values, inputs_embeds=inputs_embeds, use_cache=use_cache, **kwargs,
            )
        kwargs.pop("return_dict", None)
        outputs = self.language_model(
            attention_mask=attention_mask, position_ids=position_ids, inputs_embeds=self.get_input_embeddings()(input_ids),
            use_cache=use_cache, return_dict=True, **{CACHE_KWARG: kv_cache}, **kwargs,
        )
        return PiTeModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state, hidden_states=outputs.hidden_states,
            attentions=outputs.attentions, **{CACHE_KWARG: getattr(outputs, CACHE_KWARG, None)},
        )


class PiTeRecordingOutsideForward(PiTeForConditionalGeneration):
    """`PiTeForConditionalGeneration` that records each generated token's point and trajectory from the step outputs
    that `generate()` hands to `_update_model_kwargs_for_generation`, not inside `forward`."""

    _step_predictions: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def _update_model_kwargs_for_generation(self, outputs: Any, model_kwargs: dict[str, Any], *args: Any, **kwargs: Any):
        if self._step_predictions is not None:
            # Copies: a compiled step with CUDA graphs overwrites its output buffers on the next replay.
            self._step_predictions.append(
                (outputs.point_predictions[:, -1].detach().clone(), outputs.trajectory_predictions[:, -1].detach().clone())
            )
        return super()._update_model_kwargs_for_generation(outputs, model_kwargs, *args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any):
        """As `PiTeForConditionalGeneration.generate` (greedy or sampling; the same `PiTeGenerateOutput`)."""
        generation_config = kwargs.get("generation_config") or self.generation_config
        return_dict = kwargs.get("return_dict_in_generate", getattr(generation_config, "return_dict_in_generate", False))
        if not return_dict:
            return GenerationMixin.generate(self, *args, **kwargs)
        num_beams = kwargs.get("num_beams", getattr(generation_config, "num_beams", 1)) or 1
        if num_beams > 1 or kwargs.get("assistant_model") is not None or kwargs.get("prompt_lookup_num_tokens"):
            raise ValueError("per-token point/trajectory outputs need greedy search or sampling (num_beams=1)")
        if self._step_predictions is not None:
            raise RuntimeError("generate() is already running on this model (nested or concurrent calls)")
        self._step_predictions = []
        try:
            output = GenerationMixin.generate(self, *args, **kwargs)
            recorded = self._step_predictions
        finally:
            self._step_predictions = None
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        generated = output.sequences.shape[1] - (input_ids.shape[1] if input_ids is not None else 0)
        if generated != len(recorded):
            raise RuntimeError(f"{len(recorded)} forward steps recorded for {generated} generated tokens")
        points = torch.stack([p for p, _ in recorded], dim=1) if recorded else None
        trajectories = torch.stack([t for _, t in recorded], dim=1) if recorded else None
        return PiTeGenerateOutput(**output, point_predictions=points, trajectory_predictions=trajectories)


def compilable_copy(model: PiTeForConditionalGeneration) -> PiTeRecordingOutsideForward:
    """A deep copy of `model` (same weights) with the changes of B."""
    if type(model) is not PiTeForConditionalGeneration or type(model.model) is not PiTeModel:
        raise TypeError(f"expected a plain PiTeForConditionalGeneration, got {type(model).__name__}")
    prototype = copy.deepcopy(model)
    prototype.__class__ = PiTeRecordingOutsideForward
    prototype.model.__class__ = DecodeStepWithoutPlaceholderCount
    return prototype


class PiTeWithCachedSignature(PiTeForConditionalGeneration):
    """`PiTeForConditionalGeneration` whose forward carries its signature, so per-step `inspect.signature` is free."""

    def forward(self, *args: Any, **kwargs: Any):
        return super().forward(*args, **kwargs)


PiTeWithCachedSignature.forward.__signature__ = inspect.signature(PiTeForConditionalGeneration.forward)


def cheap_decode_copy(model: PiTeForConditionalGeneration) -> PiTeWithCachedSignature:
    """A deep copy of `model` (same weights) with the changes of A: `<video>` kept out by `bad_words_ids`, and the
    forward signature cached."""
    if type(model) is not PiTeForConditionalGeneration:
        raise TypeError(f"expected a plain PiTeForConditionalGeneration, got {type(model).__name__}")
    prototype = copy.deepcopy(model)
    prototype.__class__ = PiTeWithCachedSignature
    prototype.generation_config.suppress_tokens = None
    prototype.generation_config.bad_words_ids = [[model.config.video_token_id]]
    return prototype
