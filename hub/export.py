"""`pite export`: a PiTe checkpoint folder -> a folder ready to upload to the Hub.

The result loads with `AutoModel` / `AutoProcessor` and `trust_remote_code=True` on a machine without this package:
config with `auto_map`, flat remote code for model and processor, sharded safetensors, tokenizer, processor config
with its chat template, a greedy generation config and README.md rendered from the model card template. It never
names the machine it was written on (checked before the folder appears).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pite.core.errors import InvalidInputError, MissingInputError
from pite.core.inputs import check_checkpoint_weights, check_output_folder, reading
from pite.core.loading import check_model_and_processor, load_model, load_processor
from pite.modeling_pite import PiTeForConditionalGeneration
from pite.modeling_pite.generation_pite import forbid_video_token
from pite.processing import PiTeProcessor

from .files import atomic_directory, forget_config_sources, forget_tokenizer_loading_state, require_directory
from .model_card import read_model_card_template, render_model_card
from .portability import machine_specific_strings

# The authors' inference script allows 1024 new tokens.
MAX_NEW_TOKENS = 1024
RELATIVE_IMPORT = re.compile(r"^\s*from \.(\w+) import", re.MULTILINE)
REQUIRED_FILES = ("config.json", "generation_config.json", "processor_config.json", "README.md")


def greedy_generation_config(model: PiTeForConditionalGeneration, tokenizer: Any) -> None:
    """Greedy decoding (the release samples at temperature 0.05; greedy is its deterministic limit), the tokenizer's
    special ids, and `<video>` never generated."""
    config = model.generation_config
    config._from_model_config = False  # curated here: generate() must not re-derive it from the model config
    config.do_sample = False
    config.num_beams = 1
    config.temperature = None
    config.top_p = None
    config.top_k = None
    config.max_new_tokens = MAX_NEW_TOKENS
    config.bos_token_id = tokenizer.bos_token_id
    config.eos_token_id = tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    forbid_video_token(config, model.config.video_token_id)
    config.validate(strict=True)


def load_checkpoint(model_dir: Path) -> tuple[PiTeForConditionalGeneration, PiTeProcessor]:
    """(model, processor) of a PiTe checkpoint folder, with consistency checks between them."""
    config_file = model_dir / "config.json"
    if not config_file.is_file():
        raise MissingInputError(f"{config_file} is missing: {model_dir} is not a saved model folder", path=config_file)
    with reading(config_file, "the model config"):
        config_values = json.loads(config_file.read_text(encoding="utf-8"))
    model_type = config_values.get("model_type") if isinstance(config_values, dict) else None
    if model_type != "pite":
        raise InvalidInputError(f"{config_file}: model_type is {model_type!r}, expected 'pite'", path=config_file)
    if not (model_dir / "processor_config.json").is_file():
        raise MissingInputError(
            f"{model_dir / 'processor_config.json'} is missing: save the PiTeProcessor next to the model "
            "(`processor.save_pretrained(MODEL_DIR)`; `pite build` and `pite convert-original` do)",
            path=model_dir / "processor_config.json",
        )
    check_checkpoint_weights(model_dir)
    with reading(model_dir, "the PiTe checkpoint"):
        model = load_model(model_dir, dtype="auto")
        processor = load_processor(model_dir)
    check_model_and_processor(model, processor, where=os.fspath(model_dir))
    return model, processor


def export_for_hub(
    model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    max_shard_size: str | int = "5GB",
    repo_id: str | None = None,
    model_card: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the hub-ready folder `out_dir` (atomically: a temporary folder next to it, then one rename).

    Args:
        model_dir: a PiTe checkpoint folder with its processor (from `pite build`, `pite convert-original`,
            or training).
        max_shard_size: largest safetensors shard, e.g. "5GB" or a byte count.
        repo_id: the Hub repo this folder is for; the card's demo loads it. None keeps "org/pite-7b".
        model_card: the card template; None uses the repository's model_card.md.
        overwrite: replace an existing `out_dir` (never `model_dir` itself or a folder holding it).
    """
    source = require_directory(model_dir, "MODEL_DIR").absolute()
    target = check_output_folder(out_dir, overwrite, {"MODEL_DIR": source})
    template = read_model_card_template(model_card)
    model, processor = load_checkpoint(source)
    forget_config_sources(model.config)
    forget_tokenizer_loading_state(processor.tokenizer)
    greedy_generation_config(model, processor.tokenizer)
    readme = render_model_card(
        template, model.config, model.num_parameters(), str(model.dtype).removeprefix("torch."), repo_id
    )
    with atomic_directory(target, overwrite=overwrite) as staging:
        model.save_pretrained(staging, max_shard_size=max_shard_size)
        processor.save_pretrained(staging)
        (staging / "README.md").write_text(readme, encoding="utf-8")
        problems = check_export_folder(staging, forbidden=(source, target, staging, Path.cwd()))
        if problems:
            raise ValueError("the exported folder is not portable:\n  " + "\n  ".join(problems))
    return target


def check_export_folder(folder: str | os.PathLike, forbidden: tuple = ()) -> list[str]:
    """Problems that keep `folder` from working as a Hub repo: required files, remote code named by auto_map,
    weights, tokenizer, and machine-specific strings. Empty when it is ready."""
    folder = Path(folder)
    problems = [f"{name} is missing" for name in REQUIRED_FILES if not (folder / name).is_file()]
    if not any(folder.glob("*.safetensors")):
        problems.append("no *.safetensors weights")
    if not any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
        problems.append("no tokenizer (tokenizer.json or tokenizer.model)")
    for name in ("config.json", "processor_config.json"):
        if (folder / name).is_file():
            with reading(folder / name, "the exported configuration"):
                values = json.loads((folder / name).read_text(encoding="utf-8"))
            auto_map = (values.get("auto_map") if isinstance(values, dict) else None) or {}
            if not auto_map:
                problems.append(f"{name} has no auto_map")
            for reference in auto_map.values():
                module = reference.split("--")[-1].rsplit(".", 1)[0]  # "repo--module.Class" or "module.Class"
                if not (folder / f"{module}.py").is_file():
                    problems.append(f"{name}: auto_map names {reference} but {module}.py is missing")
    for code in sorted(folder.glob("*.py")):
        for module in RELATIVE_IMPORT.findall(code.read_text(encoding="utf-8")):
            if not (folder / f"{module}.py").is_file():
                problems.append(f"{code.name} imports .{module} but {module}.py is missing")
    problems += machine_specific_strings(folder, forbidden)
    return problems
