"""The one loader of a PiTe folder (`pite.core.loading`): dtype names, the model/processor consistency check, and
errors that name the path (and the option that gave it) before transformers is asked."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from pite.core.loading import (
    DTYPE_NAMES,
    check_model_and_processor,
    load_model,
    load_pite,
    load_processor,
    torch_dtype,
)


def test_dtype_names_map_to_torch_dtypes_and_others_are_named():
    assert [torch_dtype(name) for name in DTYPE_NAMES] == [torch.float32, torch.bfloat16, torch.float16]
    with pytest.raises(ValueError, match=r"dtype must be one of \['bfloat16', 'float16', 'float32'\], got 'fp8'"):
        torch_dtype("fp8")


def _pair(video_token_id=5, num_frames=4, vocab_size=10, tokenizer_size=10, processor_frames=4, processor_video=5):
    config = SimpleNamespace(
        video_token_id=video_token_id, num_frames=num_frames, text_config=SimpleNamespace(vocab_size=vocab_size)
    )
    processor = SimpleNamespace(
        video_token_id=processor_video, num_frames=processor_frames, tokenizer=[None] * tokenizer_size
    )
    return SimpleNamespace(config=config), processor


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"processor_video": 6}, r"ckpt: the processor's <video> id 6 differs from the model's video_token_id 5"),
        (
            {"processor_frames": 8},
            r"ckpt: the processor samples 8 frames but the model's trajectory head has "
            r"num_frames=4",
        ),
        ({"tokenizer_size": 11}, r"ckpt: the tokenizer has 11 tokens, the model's vocabulary 10"),
    ],
)
def test_a_processor_that_does_not_fit_the_model_is_refused(changes, message):
    check_model_and_processor(*_pair(), where="ckpt")  # a matching pair passes
    with pytest.raises(ValueError, match=message):
        check_model_and_processor(*_pair(**changes), where="ckpt")


@pytest.mark.parametrize("load", [load_model, load_processor, load_pite])
def test_missing_or_empty_folders_are_named_with_their_option(load, tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"model_name_or_path='{tmp_path / 'nope'}': no such folder"):
        load(tmp_path / "nope", field="model_name_or_path")
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path} is not a saved model folder \(no config.json\)"):
        load(tmp_path)
