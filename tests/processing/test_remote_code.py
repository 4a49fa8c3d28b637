"""The processor saved to a folder loads through AutoProcessor(trust_remote_code=True) where `pite` cannot be
imported."""

from __future__ import annotations

import os
import sys
import textwrap

import numpy as np
import torch

from .conftest import run_without_pite

# Run by `run_without_pite`: only the copied flat files can provide the processor.
CHILD = textwrap.dedent(
    """
    import sys

    import torch
    from transformers import AutoProcessor

    folder, video, out = sys.argv[1:4]
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert type(processor).__name__ == "PiTeProcessor", type(processor)
    assert not type(processor).__module__.startswith("pite"), type(processor).__module__
    content = [{"type": "video", "path": video}, {"type": "text", "text": "What moves?"}]
    messages = [{"role": "user", "content": content}]
    batch = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    spans = processor.post_process_generation(batch["input_ids"], batch["video_metadata"], 0)[0]
    # dict(): the metadata class lives in the remote-code module, which the parent process cannot unpickle
    metadata = [dict(entry) for entry in batch["video_metadata"]]
    torch.save({"input_ids": batch["input_ids"], "pixel_values_videos": batch["pixel_values_videos"],
                "metadata": metadata, "num_frames": processor.num_frames,
                "template": processor.chat_template, "decoded": spans["text"]}, out)
    """
)


def test_flat_files_need_only_torch_transformers_numpy_and_pil(processor, tmp_path):
    """transformers refuses remote code whose imports are missing: decord/av must stay lazy (the GPU image lacks
    them)."""
    from transformers.dynamic_module_utils import get_imports, get_relative_imports

    processor.save_pretrained(tmp_path)
    allowed = {"torch", "transformers", "numpy", "PIL"} | set(sys.stdlib_module_names)
    for path in tmp_path.glob("*_pite.py"):
        assert set(get_imports(path)) <= allowed, (path.name, get_imports(path))
        assert all((tmp_path / f"{module}.py").exists() for module in get_relative_imports(path)), path.name
        source = path.read_text()
        assert "import pite" not in source and "from pite" not in source, path.name


def test_saved_processor_loads_without_pite(processor, video_factory, tmp_path):
    folder = tmp_path / "checkpoint"
    processor.save_pretrained(folder)
    saved = sorted(os.listdir(folder))
    flat_files = {
        "processing_pite.py",
        "chat_template_pite.py",
        "postprocessing_pite.py",
        "time_pite.py",
        "video_reading_pite.py",
        "visualization_pite.py",
    }
    assert flat_files <= set(saved) and "__init__.py" not in saved

    video = video_factory(40, fps=10)
    out = tmp_path / "child.pt"
    run_without_pite(CHILD, [str(folder), video, str(out)], tmp_path)
    result = torch.load(out, weights_only=False)

    messages = [
        {"role": "user", "content": [{"type": "video", "path": video}, {"type": "text", "text": "What moves?"}]}
    ]
    expected = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    assert result["num_frames"] == processor.num_frames and result["template"] == processor.chat_template
    torch.testing.assert_close(result["input_ids"], expected["input_ids"])
    torch.testing.assert_close(result["pixel_values_videos"], expected["pixel_values_videos"])
    assert result["metadata"] == [dict(metadata) for metadata in expected["video_metadata"]]
    assert result["decoded"].endswith("What moves? ASSISTANT:")
    assert np.linspace(0, 39, processor.num_frames, dtype=np.int32).tolist() == result["metadata"][0]["frame_indices"]
