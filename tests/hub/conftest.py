"""Tiny local stand-ins for the checkpoints the hub commands read: a Vicuna-like Llama folder (weights + tokenizer
without `<video>`), CLIP folders (full CLIPModel and vision-with-projection) with their image processor, and a
short mp4 to run the model card's demo on."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

CORPUS = [
    "A chat between a curious user and an artificial intelligence assistant.",
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
    "USER: ASSISTANT: the red circle moves to the left of the blue square.",
    "What is moving in the video? During which frames can we see the circle? from 10 to 45.",
]
IMAGE_SIZE = 28
NUM_FRAMES = 4
TEXT_SIZES = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
)
VISION_SIZES = dict(
    hidden_size=32,
    intermediate_size=64,
    projection_dim=24,
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=IMAGE_SIZE,
    patch_size=14,
)

# Prepended to a script run in a fresh interpreter: `import pite` must fail there, as on a machine with only
# transformers (the editable-install finder is removed and any `pite` import is refused).
BLOCK_PITE = textwrap.dedent(
    """
    import importlib.abc, sys
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()
                        and "editable" not in getattr(f, "__name__", "").lower()]
    class _BlockPite(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "pite" or name.startswith("pite."):
                raise ImportError("pite is not installed here")
    sys.meta_path.insert(0, _BlockPite())
    try:
        import pite.modeling_pite
    except ImportError:
        pass
    else:
        raise SystemExit("pite must not be importable in this check")
    """
)


def clean_subprocess_env(home: Path) -> dict[str, str]:
    """Environment for a subprocess that sees no pite and no network: offline, one thread, private HF cache."""
    return {
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PATH": "/usr/bin:/bin",
        "HF_HOME": str(home),
    }


def train_vicuna_like_tokenizer():
    """A byte-fallback BPE Llama tokenizer with `<unk>`, `<s>`, `</s>` and no pad or `<video>` token (as Vicuna's)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaTokenizer

    backend = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    backend.train_from_iterator(
        CORPUS * 10, trainer=trainers.BpeTrainer(vocab_size=360, special_tokens=specials, show_progress=False)
    )
    merges = [tuple(m) for m in json.loads(backend.to_str())["model"]["merges"]]
    return LlamaTokenizer(vocab=backend.get_vocab(), merges=merges, legacy=False, add_prefix_space=True)


@pytest.fixture(scope="session")
def llm_dir(tmp_path_factory) -> Path:
    """A tiny LlamaForCausalLM folder with its tokenizer; vocabulary = tokenizer size (as Vicuna's 32000)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("vicuna-tiny")
    tokenizer = train_vicuna_like_tokenizer()
    torch.manual_seed(10)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
        **TEXT_SIZES,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _save_image_processor(folder: Path) -> None:
    from transformers import CLIPImageProcessorPil

    CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    ).save_pretrained(folder)


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    """A tiny full CLIPModel folder (text tower included, as openai/clip-vit-large-patch14) with its processor."""
    from transformers import CLIPConfig, CLIPModel

    folder = tmp_path_factory.mktemp("clip-tiny")
    torch.manual_seed(11)
    config = CLIPConfig(
        vision_config=VISION_SIZES,
        projection_dim=VISION_SIZES["projection_dim"],
        text_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, vocab_size=100
        ),
    )
    CLIPModel(config).save_pretrained(folder)
    _save_image_processor(folder)
    return folder


@pytest.fixture(scope="session")
def clip_vision_dir(tmp_path_factory) -> Path:
    """A tiny CLIPVisionModelWithProjection folder with its processor."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    folder = tmp_path_factory.mktemp("clip-vision-tiny")
    torch.manual_seed(12)
    CLIPVisionModelWithProjection(CLIPVisionConfig(**VISION_SIZES)).save_pretrained(folder)
    _save_image_processor(folder)
    return folder


@pytest.fixture(scope="session")
def built_dir(tmp_path_factory, llm_dir, clip_dir) -> Path:
    """`pite build` output from the tiny checkpoints (N = 4 frames), shared by the export tests."""
    from pite.hub import build_from_base

    out = tmp_path_factory.mktemp("built") / "pite-tiny"
    torch.manual_seed(13)
    return build_from_base(llm_dir, clip_dir, out, num_frames=NUM_FRAMES, dtype=torch.float32)


def write_test_video(path: str | os.PathLike, num_frames: int = 12, width: int = 64, height: int = 48) -> str:
    """A short mp4 (H.264, 10 fps) of a bright square moving left to right over a grey background."""
    import av

    with av.open(os.fspath(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(num_frames):
            frame = np.full((height, width, 3), 90, dtype=np.uint8)
            x = 4 + index * (width - 20) // max(1, num_frames - 1)
            frame[16:32, x : x + 16] = (230, 40, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return os.fspath(path)


EXPORT_REPO_ID = "someone/pite-tiny"


@pytest.fixture(scope="session")
def exported_dir(tmp_path_factory, built_dir) -> Path:
    """`pite export` of the built tiny checkpoint for EXPORT_REPO_ID, in shards of at most 150 KB (3 shards)."""
    from pite.hub import export_for_hub

    out = tmp_path_factory.mktemp("exported") / "pite-tiny-hub"
    return export_for_hub(built_dir, out, max_shard_size="150KB", repo_id=EXPORT_REPO_ID)
