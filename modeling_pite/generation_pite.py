"""PiTe's additions to `generate()`: the regression heads' point and trajectory of every generated token.

Hub remote code: copied flat next to `config.json` with modeling_pite.py; imports only torch and transformers.
"""

import copy
import inspect
from dataclasses import dataclass
from typing import Any

import torch
from transformers import GenerationMixin, LlamaModel
from transformers.generation import GenerationMode
from transformers.generation.utils import GenerateBeamDecoderOnlyOutput, GenerateDecoderOnlyOutput
from transformers.utils import ModelOutput, logging

from .losses_pite import ABSENT_COORDINATE

logger = logging.get_logger(__name__)

# transformers 5.24 calls the KV cache `cache`; 5.17 (the GPU benchmark machine) calls it `past_key_values`.
# Forward accepts both names and hands the cache on, and back, under the name the installed version uses.
CACHE_KWARG = "cache" if "cache" in inspect.signature(LlamaModel.forward).parameters else "past_key_values"

# Generation modes whose forward passes map onto output tokens (see `PiTeGenerationMixin.generate`).
SEQUENCE_ALIGNED_MODES = (GenerationMode.GREEDY_SEARCH, GenerationMode.SAMPLE, GenerationMode.ASSISTED_GENERATION)
BEAM_MODES = (GenerationMode.BEAM_SEARCH, GenerationMode.BEAM_SAMPLE)


def forbid_video_token(generation_config: Any, video_token_id: int) -> None:
    """Keep the `<video>` placeholder out of generated answers: emitted, it would be read back as a missing frame.

    Through `bad_words_ids` (a one-token ban is a mask computed once) rather than `suppress_tokens` (rebuilt every
    step). The model sets it on its own generation config; `pite export` sets it again on a config read from a folder.
    """
    banned = list(generation_config.bad_words_ids or [])
    if [video_token_id] not in banned:
        generation_config.bad_words_ids = [*banned, [video_token_id]]


@dataclass
class PiTeGenerateOutput(GenerateDecoderOnlyOutput):
    """`generate(..., return_dict_in_generate=True)` output of greedy search, sampling and assisted decoding (prompt
    lookup included), with the regression heads' predictions.

    Args:
        point_predictions: (B, T_new, 2) the point predicted with each generated token (aligned with
            `sequences[:, -T_new:]`); None for decoding modes whose steps do not map onto tokens.
        trajectory_predictions: (B, T_new, P, N, 2) the trajectories predicted with each generated token.
    """

    point_predictions: torch.FloatTensor | None = None
    trajectory_predictions: torch.FloatTensor | None = None


@dataclass
class PiTeGenerateBeamOutput(GenerateBeamDecoderOnlyOutput):
    """`generate(..., return_dict_in_generate=True)` output of beam search and beam sampling.

    Args:
        point_predictions: (B * num_return_sequences, T_new, 2) the point predicted with each token of each returned
            sequence, taken from the beam that produced the token (`beam_indices`); `ABSENT_COORDINATE` after a
            sequence ended (where `beam_indices` is -1).
        trajectory_predictions: (B * num_return_sequences, T_new, P, N, 2) likewise.
    """

    point_predictions: torch.FloatTensor | None = None
    trajectory_predictions: torch.FloatTensor | None = None


class _PredictionRecorder:
    """The regression heads' outputs of every generate() step, in the order of the steps.

    `assisted`: assisted decoding verifies several candidate tokens in one pass (`logits_to_keep` = candidates + 1),
    so a step's accepted tokens were predicted at its first `num_new_tokens` kept positions; in every other mode a
    step adds one token per row, predicted at the last position.
    """

    def __init__(self, assisted: bool) -> None:
        self.assisted = assisted
        self.points: list[torch.Tensor] = []
        self.trajectories: list[torch.Tensor] = []

    def record(self, outputs: ModelOutput, num_new_tokens: int) -> None:
        points, trajectories = outputs.point_predictions, outputs.trajectory_predictions
        kept = slice(0, num_new_tokens) if self.assisted else slice(-1, None)
        self.points.append(points[:, kept].detach().clone())
        self.trajectories.append(trajectories[:, kept].detach().clone())


class PiTeGenerationMixin(GenerationMixin):
    """`GenerationMixin` that records the regression heads' outputs of every step (see `generate`)."""

    _prediction_recorder: _PredictionRecorder | None = None

    def _update_model_kwargs_for_generation(
        self, outputs: ModelOutput, model_kwargs: dict, *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        # Called once after every forward of generate(): recording here keeps forward free of side effects (a
        # compiled / CUDA-graphed decode step), and cloning keeps buffers a graph replay would overwrite.
        if self._prediction_recorder is not None:
            num_new_tokens = kwargs.get("num_new_tokens", args[1] if len(args) > 1 else 1)
            self._prediction_recorder.record(outputs, num_new_tokens)
        return super()._update_model_kwargs_for_generation(outputs, model_kwargs, *args, **kwargs)

    def prepare_inputs_for_generation(
        self,
        input_ids: torch.LongTensor,
        inputs_embeds: torch.FloatTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        is_first_iteration: bool | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        cache = kwargs.get(CACHE_KWARG)
        if is_first_iteration is None:  # transformers versions without the flag: an empty cache means prefill
            is_first_iteration = cache is None or cache.get_seq_length() == 0
        else:
            # transformers calls no step of an assistant's generate() "first" (it is called again for each draft),
            # yet the assistant's first prefill, into an empty cache, must see the frames. Cache lengths are host ints.
            is_first_iteration = is_first_iteration or (cache is not None and cache.get_seq_length() == 0)
            kwargs["is_first_iteration"] = is_first_iteration
        model_inputs = super().prepare_inputs_for_generation(
            input_ids, inputs_embeds=inputs_embeds, attention_mask=attention_mask, **kwargs
        )
        if not is_first_iteration and model_inputs.get("use_cache", True):
            # The frames are in the KV cache after prefill (transformers drops pixel inputs itself; features too).
            for name in ("video_features", "pixel_values", "pixel_values_videos"):
                model_inputs.pop(name, None)
        return model_inputs

    def generate(self, *args: Any, **kwargs: Any) -> torch.LongTensor | ModelOutput:
        """`GenerationMixin.generate`, plus the point and trajectory of every generated token.

        With `return_dict_in_generate=True` the result is transformers' output of the decoding mode with two more
        fields, `point_predictions` (B, T_new, 2) and `trajectory_predictions` (B, T_new, P, N, 2), taken from the
        same forward passes that produced the tokens: nothing is re-run and no hidden-state history is kept.
        Greedy search, sampling and assisted decoding (prompt lookup included) give `PiTeGenerateOutput`; beam
        search and beam sampling give `PiTeGenerateBeamOutput`, whose predictions follow `beam_indices`. Other modes
        (e.g. DoLa, custom decoding) return their output with both fields None.
        """
        generation_config = copy.deepcopy(kwargs.get("generation_config") or self.generation_config)
        generation_config.update(**{k: v for k, v in kwargs.items() if hasattr(generation_config, k)})
        if not generation_config.return_dict_in_generate:
            return super().generate(*args, **kwargs)
        mode = generation_config.get_generation_mode(kwargs.get("assistant_model"))
        previous = self._prediction_recorder  # an assistant may be this very model
        recorder = _PredictionRecorder(assisted=mode == GenerationMode.ASSISTED_GENERATION)
        self._prediction_recorder = recorder
        try:
            output = super().generate(*args, **kwargs)
        finally:
            self._prediction_recorder = previous
        if isinstance(output, GenerateBeamDecoderOnlyOutput):
            output_class = PiTeGenerateBeamOutput
        elif isinstance(output, GenerateDecoderOnlyOutput):
            output_class = PiTeGenerateOutput
        else:
            return output
        points = trajectories = None
        if recorder.points and mode in SEQUENCE_ALIGNED_MODES:
            points, trajectories = torch.cat(recorder.points, 1), torch.cat(recorder.trajectories, 1)
        elif recorder.points and mode in BEAM_MODES and output.beam_indices is not None:
            points, trajectories = (
                self._follow_beams(torch.cat(steps, 1), output.beam_indices)
                for steps in (recorder.points, recorder.trajectories)
            )
        if points is not None and (points.shape[0], points.shape[1]) != self._generated_shape(output, args, kwargs):
            logger.warning_once(
                f"generate() recorded {tuple(points.shape[:2])} (sequences, tokens) predictions but returned "
                f"{self._generated_shape(output, args, kwargs)} new tokens: point/trajectory predictions are None"
            )
            points = trajectories = None
        return output_class(**output, point_predictions=points, trajectory_predictions=trajectories)

    def _follow_beams(self, steps: torch.Tensor, beam_indices: torch.Tensor) -> torch.Tensor:
        """(B * beams, T_steps, ...) per-step predictions -> (R, T_new, ...) along each returned sequence's beams."""
        num_tokens = beam_indices.shape[1]
        rows = beam_indices.clamp(min=0).to(device=steps.device, dtype=torch.long)
        positions = torch.arange(num_tokens, device=steps.device).expand_as(rows)
        followed = steps[rows, positions]
        ended = (beam_indices < 0).to(steps.device).reshape(*rows.shape, *(1,) * (followed.dim() - 2))
        return followed.masked_fill(ended, ABSENT_COORDINATE)

    @staticmethod
    def _generated_shape(output: ModelOutput, args: tuple, kwargs: dict) -> tuple[int, int]:
        prompt = kwargs.get("input_ids", kwargs.get("inputs", args[0] if args else None))
        prompt_length = prompt.shape[1] if isinstance(prompt, torch.Tensor) else 0
        return output.sequences.shape[0], output.sequences.shape[1] - prompt_length
