"""`pite train` and `pite extract-features` (dispatched from `pite.cli.main`)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap

import yaml

from pite.core.loading import DTYPE_NAMES

COMMANDS = ("train", "extract-features")


class _IntermixedParser(argparse.ArgumentParser):
    """Options and `key=value` overrides in any order (`--resume` or `--config` between overrides)."""

    def parse_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201 - argparse's signature
        return self.parse_intermixed_args(args, namespace)


def _train_parser() -> argparse.ArgumentParser:
    # Built from the standard-library dataclass of PiTe's fields only: `--help` must not import torch/transformers.
    from .arguments import stage_field_help

    rows = []
    for name, default, help_text in stage_field_help():
        wrapped = textwrap.fill(help_text, width=96, initial_indent="      ", subsequent_indent="      ")
        rows.append(f"  {name} (default: {default!r})\n{wrapped}")
    parser = _IntermixedParser(
        description=textwrap.fill(
            width=96,
            text="Train one stage of the PiTe recipe. Recipe values come from the stage's YAML file (default: the "
            "one shipped with the package); any field of it, of PiTe's fields below, of TRL's SFTConfig / "
            "transformers' TrainingArguments or of trl.ModelConfig (model_name_or_path, lora_r, lora_alpha, "
            "lora_dropout, lora_target_modules, ...) can be overridden as key=value, typed by its field "
            "(key=[a, b] for lists, key=null for none). Options and overrides may come in any order.",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="PiTe fields (besides every SFTConfig / TrainingArguments / ModelConfig field):\n"
        + "\n".join(rows)
        + "\n\nexample:\n  pite train --stage 2 model_name_or_path=out/stage1 data_files=[pite143k.jsonl] "
        "media_dir=videos output_dir=out/stage2\n"
        "multi-process: torchrun --nproc_per_node 8 -m pite.cli.main train --stage 2 ...\n"
        "  (shipped accelerate configs for FSDP / DeepSpeed ZeRO-3: pite/training/configs/accelerate/)",
    )
    parser.add_argument("--stage", type=int, required=True, choices=(1, 2, 3), help="recipe stage")
    parser.add_argument(
        "--config", default=None, help="YAML file of config fields (default: the shipped stage recipe)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="resume from the newest complete checkpoint-* in output_dir (incomplete ones, without "
        "trainer_state.json, are skipped with a warning)",
    )
    parser.add_argument("--resume-from", default=None, metavar="CHECKPOINT", help="resume from this checkpoint folder")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides, e.g. lora_r=16 bf16=false"
    )
    return parser


def _extract_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Run the frozen CLIP tower of a PiTe checkpoint once over a folder of videos/images and cache the "
        "per-frame features (safetensors shards + index.json), so training reads features instead of "
        "pixels. Resumable: files already cached are skipped. Under torchrun / accelerate launch each "
        "process extracts every WORLD_SIZE-th file into its own part, merged into one index at the end.",
    )
    parser.add_argument("--model", required=True, help="PiTe checkpoint folder (its processor is used too)")
    parser.add_argument("--media-dir", required=True, help="folder of videos/images (searched recursively)")
    parser.add_argument("--output-dir", required=True, help="cache folder (pass it to training as feature_cache_dir)")
    parser.add_argument("--files", nargs="*", default=None, help="only these files (paths relative to --media-dir)")
    parser.add_argument("--batch-size", type=int, default=8, help="files per tower forward pass")
    parser.add_argument("--shard-size", type=int, default=256, help="files per safetensors shard")
    parser.add_argument(
        "--num-workers",
        type=int,
        default=0,
        help="DataLoader worker processes decoding the next batches while the tower runs on this one "
        "(default 0: decode in the main process, as DataLoader and Trainer default); the "
        "features are the same either way",
    )
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--dtype", default=None, choices=DTYPE_NAMES, help="tower dtype")
    parser.add_argument(
        "--skip-bad-records",
        action="store_true",
        help="record unreadable files in the index and go on, instead of stopping",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def build_parser(command: str) -> argparse.ArgumentParser:
    if command == "train":
        return _train_parser()
    if command == "extract-features":
        return _extract_parser()
    raise ValueError(f"pite.training.cli provides {COMMANDS}, not {command!r}")


def run(command: str, args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if command == "train":
            return _train(args)
        if command == "extract-features":
            return _extract(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"pite {command}: error: {error}", file=sys.stderr)
        return 2
    except yaml.YAMLError as error:  # the --config file (overrides are parsed with their own message)
        problem = " ".join(str(error).split())
        print(f"pite {command}: error: {args.config}: not valid YAML ({problem})", file=sys.stderr)
        return 2
    raise ValueError(f"pite.training.cli provides {COMMANDS}, not {command!r}")


def _train(args: argparse.Namespace) -> int:
    from .api import train_stage

    try:
        output = train_stage(
            args.stage,
            None,
            None,
            config_file=args.config,
            overrides=args.overrides,
            resume_from_checkpoint=args.resume_from or args.resume,
        )
    except (ValueError, OSError) as error:  # bad config, data or paths: one line, no traceback
        message = " ".join(str(error).split())
        print(f"pite train: error: {message}", file=sys.stderr)
        return 2
    print(f"stage {args.stage} written to {output}")
    return 0


def _extract(args: argparse.Namespace) -> int:
    """Under a launcher, each process extracts its part; the main process merges the parts once all are done."""
    import torch

    from pite.core.errors import InvalidInputError, MissingInputError
    from pite.core.inputs import check_checkpoint_weights, reading
    from pite.core.loading import load_pite
    from pite.core.processes import launched_state
    from pite.data.feature_cache import INDEX_NAME, FeatureCache, extract_features, list_media, merge_feature_parts

    state = launched_state()
    part = (state.process_index, state.num_processes) if state is not None else (0, 1)
    if args.num_workers < 0:
        raise ValueError(f"--num-workers must be >= 0, got {args.num_workers}")
    if not os.path.isdir(args.media_dir):
        raise MissingInputError(
            f"--media-dir {args.media_dir} is not a folder", path=args.media_dir, field="--media-dir"
        )
    if args.files is None and not list_media(args.media_dir):  # else it would "succeed" having extracted nothing
        raise InvalidInputError(
            f"--media-dir {args.media_dir} holds no video or image file", path=args.media_dir, field="--media-dir"
        )
    if os.path.isdir(args.model):  # name a truncated weights file before transformers' anonymous error
        check_checkpoint_weights(args.model)
    index = os.path.join(args.output_dir, INDEX_NAME)
    if os.path.isfile(index):  # an existing cache is resumed: it must be readable before the model loads
        with reading(index, "the feature cache index"):
            FeatureCache(args.output_dir)
    with reading(args.model, "the PiTe checkpoint (--model)"):
        model, processor = load_pite(args.model, dtype=args.dtype)
    device = args.device or (state.device if state is not None else "cuda" if torch.cuda.is_available() else "cpu")
    model.model.vision_tower.to(device)  # the language model is not needed to extract frame features
    report = extract_features(
        model,
        processor,
        args.media_dir,
        args.output_dir,
        files=args.files,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        skip_bad_records=args.skip_bad_records,
        progress=not args.no_progress and (state is None or state.is_main_process),
        part=part,
        num_workers=args.num_workers,
    )
    where = "" if state is None else f"process {part[0]} of {part[1]}: "
    print(
        f"{where}features of {report.extracted} file(s) written to {report.directory} "
        f"({report.already_cached} already cached, {len(report.failed)} unreadable)"
    )
    if report.times.files:
        print(f"{where}{report.times.summary()}")
    for key, reason in report.failed.items():
        print(f"  unreadable: {key}: {reason}", file=sys.stderr)
    if state is not None:
        state.wait_for_everyone()
        if state.is_main_process:
            merged = merge_feature_parts(args.output_dir)
            print(f"merged {merged} new entries of {part[1]} parts into {args.output_dir}")
        state.wait_for_everyone()
    return 0
