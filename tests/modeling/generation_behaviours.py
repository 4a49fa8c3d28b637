"""PiTe's own tests of the behaviours transformers' `GenerationTesterMixin` checks.

transformers' sdist does not ship `tests/generation/test_utils.py` (see transformers_common.py), so this class stands
in for the mixin: every decoding mode returns transformers' standard output class with consistent scores, logits,
hidden states and attentions, plus PiTe's per-token point/trajectory predictions, which must equal a teacher-forced
forward pass over the returned sequences (beam search: along `beam_indices`).
"""

from __future__ import annotations

import copy

import torch
from transformers.generation.utils import GenerateBeamDecoderOnlyOutput, GenerateDecoderOnlyOutput

from pite.modeling_pite.losses_pite import ABSENT_COORDINATE

MAX_NEW_TOKENS = 4


class PiTeGenerationTests:
    """Mixed into a `unittest.TestCase` whose `model_tester` is a `PiTeModelTester`."""

    def _model_and_inputs(self, batch_size: int | None = None):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        torch.manual_seed(0)
        model = self.all_generative_model_classes[0](config).eval()
        model.set_attn_implementation("eager")  # SDPA returns no attention weights
        if batch_size is not None:
            inputs = {name: value[:batch_size] for name, value in inputs.items()}
        return model, inputs

    def _generate(self, model, inputs, **kwargs):
        settings = dict(
            max_new_tokens=MAX_NEW_TOKENS,
            min_new_tokens=MAX_NEW_TOKENS,
            pad_token_id=0,
            return_dict_in_generate=True,
            output_scores=True,
            output_logits=True,
            output_hidden_states=True,
            output_attentions=True,
        )
        settings.update(kwargs)
        with torch.no_grad():
            return model.generate(**inputs, **settings)

    def _check_output(self, model, inputs, output, beams: int = 1, returned: int = 1) -> None:
        config = model.config
        rows = inputs["input_ids"].shape[0] * returned
        prompt_length = inputs["input_ids"].shape[1]
        new = output.sequences.shape[1] - prompt_length
        self.assertEqual(new, MAX_NEW_TOKENS)
        expected_class = GenerateBeamDecoderOnlyOutput if beams > 1 else GenerateDecoderOnlyOutput
        self.assertIsInstance(output, expected_class)
        self.assertEqual(len(output.scores), new)
        self.assertEqual(len(output.logits), new)
        self.assertEqual(
            output.scores[0].shape,
            (inputs["input_ids"].shape[0] * max(beams, returned), config.text_config.vocab_size),
        )
        self.assertEqual(len(output.hidden_states), new)
        self.assertEqual(len(output.attentions), new)
        self.assertEqual(output.point_predictions.shape, (rows, new, config.coordinate_dim))
        self.assertEqual(
            output.trajectory_predictions.shape,
            (rows, new, config.num_trajectory_points, config.num_frames, config.coordinate_dim),
        )

    def _check_teacher_forced(self, model, inputs, output) -> None:
        """Each returned token's prediction equals the forward pass over the returned sequence at the position
        that predicted it."""
        prompt_length = inputs["input_ids"].shape[1]
        repeats = output.sequences.shape[0] // inputs["input_ids"].shape[0]
        visual = {
            name: value.repeat_interleave(repeats, 0)
            for name, value in inputs.items()
            if name in ("pixel_values_videos", "video_features")
        }
        with torch.no_grad():
            forced = model(input_ids=output.sequences, **visual)
        span = slice(prompt_length - 1, output.sequences.shape[1] - 1)
        used = torch.ones(output.point_predictions.shape[:2], dtype=torch.bool)
        if getattr(output, "beam_indices", None) is not None:
            used = output.beam_indices >= 0
        torch.testing.assert_close(
            output.point_predictions[used], forced.point_predictions[:, span][used], rtol=0, atol=1e-5
        )
        torch.testing.assert_close(
            output.trajectory_predictions[used], forced.trajectory_predictions[:, span][used], rtol=0, atol=1e-5
        )

    def test_greedy_generate_dict_outputs(self):
        model, inputs = self._model_and_inputs()
        output = self._generate(model, inputs, do_sample=False)
        self._check_output(model, inputs, output)
        self._check_teacher_forced(model, inputs, output)
        with torch.no_grad():
            plain = model.generate(
                **inputs, max_new_tokens=MAX_NEW_TOKENS, min_new_tokens=MAX_NEW_TOKENS, pad_token_id=0, do_sample=False
            )
        self.assertTrue(torch.equal(plain, output.sequences))

    def test_sample_generate_dict_outputs(self):
        model, inputs = self._model_and_inputs()
        output = self._generate(model, inputs, do_sample=True, num_return_sequences=2)
        self._check_output(model, inputs, output, returned=2)
        self._check_teacher_forced(model, inputs, output)

    def test_beam_search_generate_dict_outputs(self):
        model, inputs = self._model_and_inputs()
        output = self._generate(model, inputs, do_sample=False, num_beams=3, num_return_sequences=2)
        self._check_output(model, inputs, output, beams=3, returned=2)
        self.assertEqual(output.beam_indices.shape, output.point_predictions.shape[:2])
        self._check_teacher_forced(model, inputs, output)

    def test_beam_search_predictions_after_a_sequence_ends_are_absent(self):
        model, inputs = self._model_and_inputs()
        with torch.no_grad():
            model.lm_head.weight[2] = model.lm_head.weight[2] + 0.5 * model.lm_head.weight.abs().max()  # eos likely
        output = self._generate(
            model, inputs, do_sample=False, num_beams=2, min_new_tokens=0, eos_token_id=2, max_new_tokens=6
        )
        ended = output.beam_indices < 0
        self.assertTrue(bool(ended.any()), "no returned beam ended early: the test's eos bias is too weak")
        self.assertTrue(bool((output.point_predictions[ended] == ABSENT_COORDINATE).all()))
        self._check_teacher_forced(model, inputs, output)

    def test_beam_sample_generate_dict_outputs(self):
        model, inputs = self._model_and_inputs()
        output = self._generate(model, inputs, do_sample=True, num_beams=2)
        self._check_output(model, inputs, output, beams=2)
        self._check_teacher_forced(model, inputs, output)

    def test_assisted_decoding_dict_outputs(self):
        model, inputs = self._model_and_inputs(batch_size=1)
        assistant = copy.deepcopy(model)  # same weights: every candidate is accepted, several tokens per step
        output = self._generate(model, inputs, do_sample=False, assistant_model=assistant)
        self._check_output(model, inputs, output)
        self._check_teacher_forced(model, inputs, output)
        greedy = self._generate(model, inputs, do_sample=False)
        self.assertTrue(torch.equal(output.sequences, greedy.sequences))

    def test_prompt_lookup_decoding_dict_outputs(self):
        model, inputs = self._model_and_inputs(batch_size=1)
        output = self._generate(model, inputs, do_sample=False, prompt_lookup_num_tokens=2)
        self._check_output(model, inputs, output)
        self._check_teacher_forced(model, inputs, output)

    def test_generate_from_inputs_embeds(self):
        model, inputs = self._model_and_inputs()
        from_ids = self._generate(model, inputs, do_sample=False)
        embedded = dict(inputs, inputs_embeds=model.get_input_embeddings()(inputs.pop("input_ids")).detach())
        from_embeds = self._generate(model, embedded, do_sample=False)
        prompt_length = embedded["inputs_embeds"].shape[1]
        self.assertTrue(torch.equal(from_embeds.sequences, from_ids.sequences[:, prompt_length:]))
        torch.testing.assert_close(from_embeds.point_predictions, from_ids.point_predictions, rtol=0, atol=1e-5)
