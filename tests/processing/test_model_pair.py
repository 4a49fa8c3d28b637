"""A processor and a tiny PiTe model saved to one folder answer about an mp4 where `pite` cannot be imported."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch

from .conftest import run_without_pite

# Run by `run_without_pite`: the child sees only the saved folder.
CHILD = textwrap.dedent(
    """
    import json, sys

    import torch
    from transformers import AutoModel, AutoProcessor

    folder, video, sheet = sys.argv[1:4]
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    assert not type(processor).__module__.startswith("pite") and not type(model).__module__.startswith("pite")
    messages = [{"role": "user", "content": [{"type": "video", "path": video},
                                             {"type": "text", "text": "What is moving in the video?"}]}]
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    # Byte-fallback tokens are suppressed so the random model writes whole-word pieces (readable words).
    suppress = [model.config.video_token_id] + processor.tokenizer.convert_tokens_to_ids(
        [f"<0x{i:02X}>" for i in range(256)])
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=8, min_new_tokens=8, do_sample=False,
                                suppress_tokens=suppress, return_dict_in_generate=True)
    prompt_length = inputs["input_ids"].shape[1]
    (generated,) = processor.post_process_generation(output, inputs["video_metadata"], prompt_length)
    words = generated["text"].split()
    (result,) = processor.post_process_generation(output, inputs["video_metadata"], prompt_length, phrases=words[:1])
    phrase = result["phrases"][0]
    frames = processor.read_videos(video)[0].frames
    processor.save_contact_sheet(frames, sheet, predicted=phrase["trajectory"], coordinates="pixels", columns=2)
    print(json.dumps({
        "sequences": output.sequences.tolist(),
        "trajectory_shape": list(output.trajectory_predictions.shape),
        "text": result["text"], "phrase": phrase["text"], "token_indices": phrase["token_indices"],
        "trajectory": [
            [[None if v != v else v for v in point] for point in key] for key in phrase["trajectory"].tolist()
        ],
        "metadata": [dict(metadata) for metadata in inputs["video_metadata"]],
    }))
    """
)


@pytest.fixture
def model_and_processor(tokenizer, make_tiny_config):
    from transformers import CLIPImageProcessorPil

    from pite.modeling_pite import PiTeForConditionalGeneration
    from pite.processing import PiTeProcessor

    config = make_tiny_config()
    size = config.vision_config.image_size
    processor = PiTeProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size}),
        tokenizer=tokenizer,
        num_frames=config.num_frames,
    )
    text_config = config.text_config.to_dict()
    text_config.update(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = make_tiny_config(text_config=text_config, video_token_id=processor.video_token_id)
    torch.manual_seed(0)
    return PiTeForConditionalGeneration(config).eval(), processor


def test_processor_and_model_answer_about_an_mp4_without_pite(model_and_processor, video_factory, tmp_path):
    model, processor = model_and_processor
    folder = tmp_path / "pite-tiny"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    video = video_factory(24, fps=8, width=160, height=48)
    sheet = tmp_path / "sheet.png"
    stdout = run_without_pite(CHILD, [str(folder), video, str(sheet)], tmp_path)
    answer = json.loads(stdout.strip().splitlines()[-1])

    config = model.config
    messages = [
        {
            "role": "user",
            "content": [{"type": "video", "path": video}, {"type": "text", "text": "What is moving in the video?"}],
        }
    ]
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    suppress = [config.video_token_id] + processor.tokenizer.convert_tokens_to_ids(
        [f"<0x{i:02X}>" for i in range(256)]
    )
    with torch.no_grad():
        local = model.generate(
            **inputs,
            max_new_tokens=8,
            min_new_tokens=8,
            do_sample=False,
            suppress_tokens=suppress,
            return_dict_in_generate=True,
        )
    prompt_length = inputs["input_ids"].shape[1]
    assert answer["sequences"] == local.sequences.tolist()
    assert answer["trajectory_shape"] == [1, 8, config.num_trajectory_points, config.num_frames, 2]
    assert answer["text"] == processor.decode(local.sequences[0, prompt_length:], skip_special_tokens=True)
    assert answer["phrase"] and answer["phrase"].lower() in answer["text"].lower()
    assert 0 < len(answer["token_indices"]) < 8  # one word of a several-word answer
    assert answer["metadata"][0]["width"] == 160 and answer["metadata"][0]["num_source_frames"] == 24

    # the phrase's trajectory: mean over its tokens' predictions, in pixels of the 160x48 video
    predictions = local.trajectory_predictions[0, answer["token_indices"]].double().mean(dim=0).numpy()
    absent = ~((predictions >= 0) & (predictions <= 1)).all(axis=-1)  # outside the image = absent
    expected = np.where(absent[..., None], np.nan, predictions * [160, 48])
    remote = np.asarray(answer["trajectory"], dtype=np.float64)
    np.testing.assert_allclose(remote, expected, rtol=1e-4, atol=1e-4)
    assert sheet.stat().st_size > 0
