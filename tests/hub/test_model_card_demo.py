"""The model card's demo, copied verbatim, runs against an exported tiny checkpoint in an interpreter without `pite`.

Only two literals change: the repo id becomes the exported folder and the example video a generated mp4. The demo's
printed answer and grounded phrases must equal what the same checkpoint produces in-process.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import torch
from PIL import Image

from pite.modeling_pite import PiTeForConditionalGeneration
from pite.processing import PiTeProcessor

from .conftest import BLOCK_PITE, EXPORT_REPO_ID, clean_subprocess_env, write_test_video

MODEL_CARD = Path(__file__).resolve().parents[2] / "model_card.md"
EXAMPLE_VIDEO = '"cooking.mp4"'


def card_demo() -> str:
    """The first python block of the card's Quick start section."""
    text = MODEL_CARD.read_text()
    quick_start = text.split("## Quick start", 1)[1]
    return re.search(r"```python\n(.*?)```", quick_start, re.DOTALL).group(1)


def _expected_result(model_dir: Path, video: str) -> dict:
    """The demo's steps, in-process, with the package's classes."""
    model = PiTeForConditionalGeneration.from_pretrained(model_dir).eval()
    processor = PiTeProcessor.from_pretrained(model_dir)
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "video"},
                {"type": "text", "text": re.search(r'question = "(.*)"', card_demo()).group(1)},
            ],
        }
    ]
    inputs = processor(text=processor.apply_chat_template(messages, add_generation_prompt=True), videos=video)
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=256, return_dict_in_generate=True)
    return processor.post_process_generation(
        output, inputs["video_metadata"], prompt_length=inputs["input_ids"].shape[1]
    )[0]


def test_model_card_demo_runs_without_the_package(tmp_path, exported_dir):
    demo = card_demo()
    for needle in (
        "AutoModel.from_pretrained",
        "AutoProcessor.from_pretrained",
        "trust_remote_code=True",
        "return_dict_in_generate=True",
        "post_process_generation",
        "save_contact_sheet",
    ):
        assert needle in demo, needle
    assert demo.count('"org/pite-7b"') == 1 and demo.count(EXAMPLE_VIDEO) == 1
    readme_demo = (exported_dir / "README.md").read_text().split("## Quick start", 1)[1]
    assert demo.replace('"org/pite-7b"', f'"{EXPORT_REPO_ID}"') in readme_demo  # the published card runs this code

    video = write_test_video(tmp_path / "clip.mp4", num_frames=15)
    script = tmp_path / "demo.py"
    script.write_text(
        BLOCK_PITE + demo.replace('"org/pite-7b"', repr(str(exported_dir))).replace(EXAMPLE_VIDEO, repr(video))
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_subprocess_env(tmp_path / "hf-home"),
    )
    assert result.returncode == 0, result.stderr[-4000:]

    expected = _expected_result(exported_dir, video)
    assert expected["text"], "the tiny model generated nothing: the comparison below would be vacuous"
    assert f"answer: {expected['text']}\n" in result.stdout
    grounded = [line for line in result.stdout.splitlines() if line.startswith("grounded ")]
    assert [line.split(":", 1)[0] for line in grounded] == [f"grounded {p['text']!r}" for p in expected["phrases"]]
    assert result.stdout.count("time span: ") == len(expected["time_spans"])
    assert "saved pite_trajectories.png" in result.stdout
    with Image.open(tmp_path / "pite_trajectories.png") as sheet:
        assert sheet.format == "PNG" and sheet.width > 0 and sheet.height > 0
