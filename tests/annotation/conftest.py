"""Fixtures for the annotation tests: the demo's synthetic world (known motion) and ground-truth mask components.

The ground truth plugs into the pipeline where the models would: `ColourMasker` masks a phrase's object on the
grounding frame by its colour word ("the red circle" -> pixels near red), `ColourPropagator` follows each first-frame
mask by thresholding every later frame around that mask's mean colour. Both read the *decoded* video, as the models
would; the world's objects have distinct saturated colours on a light background, so this is the objects' true mask
up to the codec's blur at their edges.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

import numpy as np
import pytest

from pite.demo.world import generate_world, make_video
from pite.demo.world.scene import COLOURS, WorldConfig

WORLD_SEED = 3
WORLD_FRAMES = 40  # N for the world's files and the annotator (small: fast tests)
COLOUR_DISTANCE = 60.0  # objects' colours are > 160 apart from each other and from the background


def colour_mask(frame: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels within COLOUR_DISTANCE of `rgb`."""
    return np.linalg.norm(frame.astype(np.float64) - np.asarray(rgb, dtype=np.float64), axis=-1) < COLOUR_DISTANCE


class ColourMasker:
    """FirstFrameMasker from colour words; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def masks(self, image: np.ndarray, phrases: list[str]) -> list[np.ndarray | str]:
        self.calls += 1
        results: list[np.ndarray | str] = []
        for phrase in phrases:
            colours = [name for name in COLOURS if name in phrase.lower().split()]
            mask = colour_mask(image, COLOURS[colours[0]]) if colours else None
            results.append(mask if mask is not None and mask.any() else "not_grounded")
        return results


class ColourPropagator:
    """Propagator: each object is the pixels near its first-frame mask's mean decoded colour."""

    def propagate(self, frames: Iterable[np.ndarray], first_masks: np.ndarray) -> Iterator[np.ndarray]:
        colours = None
        for frame in frames:
            if colours is None:
                colours = [frame[mask].mean(axis=0) for mask in first_masks]
            yield np.stack([colour_mask(frame, colour) for colour in colours]) if len(colours) else first_masks


@pytest.fixture(scope="session")
def world_config() -> WorldConfig:
    return dataclasses.replace(WorldConfig(), num_frames=WORLD_FRAMES)


@pytest.fixture(scope="session")
def synthetic_world(tmp_path_factory, world_config):
    """(manifest, [SyntheticVideo of each held-out video]) of a small world: 3 held-out videos, 1 training video."""
    root = tmp_path_factory.mktemp("world")
    manifest = generate_world(
        root, num_train_videos=1, num_eval_videos=3, num_images=0, num_frames=WORLD_FRAMES, seed=WORLD_SEED
    )
    videos = [make_video(world_config, WORLD_SEED, "eval", index) for index in range(3)]
    return manifest, videos


# ---- tiny random-weight models (plumbing tests) ---------------------------------------------------------------------

TINY_IMAGE = 64


def _tiny_clip_tokenizer():
    """A CLIP BPE tokenizer over single characters (no merges): enough to tokenize any lower-case phrase."""
    import string

    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {}
    for character in string.ascii_lowercase + string.digits + "'.,-":
        vocab[character] = len(vocab)
        vocab[character + "</w>"] = len(vocab)
    # Special tokens last, as in CLIP: OWL treats a query whose first token id is 0 as padding.
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[])


def save_tiny_owlv2(path) -> None:
    import torch
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessorPil, Owlv2Processor

    tokenizer = _tiny_clip_tokenizer()
    torch.manual_seed(0)
    config = Owlv2Config(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=16,
            bos_token_id=len(tokenizer) - 2,
            eos_token_id=len(tokenizer) - 1,
            pad_token_id=len(tokenizer) - 1,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=TINY_IMAGE,
            patch_size=16,
        ),
        projection_dim=32,
    )
    model = Owlv2ForObjectDetection(config)
    with torch.no_grad():  # random box-head weights saturate every box to zero width; shrink them so that the
        for parameter in model.box_head.parameters():  # boxes sit near their patches (garbage, but valid boxes)
            parameter.mul_(0.01)
    model.save_pretrained(path)
    image_processor = Owlv2ImageProcessorPil(size={"height": TINY_IMAGE, "width": TINY_IMAGE})
    Owlv2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)


def save_tiny_sam(path) -> None:
    import torch
    from transformers import SamConfig, SamImageProcessorPil, SamModel, SamProcessor

    torch.manual_seed(0)
    config = SamConfig(
        vision_config=dict(
            hidden_size=32,
            output_channels=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=TINY_IMAGE,
            patch_size=8,
            mlp_dim=37,
            global_attn_indexes=[0],
            window_size=0,
            num_pos_feats=8,
        ),
        prompt_encoder_config=dict(hidden_size=16, image_size=TINY_IMAGE, patch_size=8, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=16, mlp_dim=32, num_attention_heads=2, iou_head_hidden_dim=16),
    )
    model = SamModel(config)
    model.save_pretrained(path)
    image_processor = SamImageProcessorPil(
        size={"longest_edge": TINY_IMAGE},
        pad_size={"height": TINY_IMAGE, "width": TINY_IMAGE},
        mask_size={"longest_edge": TINY_IMAGE // 4},
        mask_pad_size={"height": TINY_IMAGE // 4, "width": TINY_IMAGE // 4},
    )
    SamProcessor(image_processor=image_processor).save_pretrained(path)


def save_tiny_sam2_video(path) -> None:
    """A ~1M-parameter SAM2 video model. Constraints found by building it: the memory encoder must output 64
    channels (the memory attention's key/value width is fixed at 64), and the hidden size must be a multiple of
    64 larger than it (object pointers are split into hidden / 64 memory tokens)."""
    import torch
    from transformers import Sam2VideoConfig, Sam2VideoModel

    size, feature = TINY_IMAGE, TINY_IMAGE // 4
    backbone = dict(
        model_type="sam2_hiera_det_model",
        hidden_size=8,
        image_size=[size, size],
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[8, 16, 32, 64],
        num_attention_heads_per_stage=[1, 1, 1, 1],
        window_size_per_stage=[4, 4, 4, 2],
        global_attention_blocks=[3],
        window_positional_embedding_background_size=[2, 2],
    )
    vision = dict(
        model_type="sam2_vision_model",
        backbone_config=backbone,
        backbone_channel_list=[64, 32, 16, 8],
        backbone_feature_sizes=[[feature, feature], [feature // 2, feature // 2], [feature // 4, feature // 4]],
        fpn_hidden_size=128,
    )
    torch.manual_seed(0)
    config = Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config=dict(hidden_size=128, image_size=size, patch_size=16, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=128, mlp_dim=32, num_attention_heads=2, iou_head_hidden_dim=16),
        image_size=size,
        num_maskmem=3,
        memory_attention_hidden_size=128,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=32,
        memory_attention_rope_feat_sizes=[size // 16, size // 16],
        memory_encoder_hidden_size=128,
        memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=32,
        memory_fuser_num_layers=1,
        max_object_pointers_in_encoder=4,
    )
    Sam2VideoModel(config).save_pretrained(path)


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, str]:
    """Folders of tiny random OWLv2, SAM and SAM2-video checkpoints, in save_pretrained layout."""
    root = tmp_path_factory.mktemp("tiny_models")
    paths = {name: str(root / name) for name in ("owlv2", "sam", "sam2_video")}
    save_tiny_owlv2(paths["owlv2"])
    save_tiny_sam(paths["sam"])
    save_tiny_sam2_video(paths["sam2_video"])
    return paths
