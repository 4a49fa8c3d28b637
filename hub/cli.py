"""`pite build | convert-original | export | push`: argument parsers and dispatch for the hub commands."""

from __future__ import annotations

import argparse

from pite.core.arguments import positive_int
from pite.core.errors import report
from pite.core.loading import DTYPE_NAMES

COMMANDS = ("build", "convert-original", "export", "push")


def _shard_size(text: str) -> str | int:
    return int(text) if text.isdigit() else text


def _add_shape_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-frames", type=positive_int, default=100, help="N, frames per video (default 100)")
    parser.add_argument(
        "--num-trajectory-points", type=positive_int, default=3, help="P, key points per object (default 3)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def build_parser(command: str) -> argparse.ArgumentParser:
    """The argument parser of one hub command."""
    if command == "build":
        parser = argparse.ArgumentParser(
            description="Assemble an untrained PiTe (ready for stage 1) from local Llama/Vicuna and CLIP checkpoints."
        )
        parser.add_argument(
            "--llm", required=True, help="LlamaForCausalLM folder with its tokenizer (e.g. vicuna-7b-v1.5)"
        )
        parser.add_argument(
            "--vision",
            required=True,
            help="CLIPModel or CLIPVisionModelWithProjection folder with preprocessor_config.json",
        )
        parser.add_argument("--out", required=True, help="folder to write (created atomically)")
        parser.add_argument(
            "--dtype",
            choices=sorted(DTYPE_NAMES),
            default=None,
            help="weights dtype (default: the language model checkpoint's)",
        )
        _add_shape_options(parser)
    elif command == "convert-original":
        parser = argparse.ArgumentParser(
            description="Convert the authors' release (base Vicuna, CLIP, three LoRA "
            "stage folders) into a PiTe checkpoint."
        )
        parser.add_argument("--base", required=True, help="vicuna-7b-v1.5 (or 13b) folder with its tokenizer")
        parser.add_argument("--clip", required=True, help="clip-vit-large-patch14 folder")
        for stage in (1, 2, 3):
            parser.add_argument(f"--stage{stage}", required=True, help=f"pite-vicuna-*-stage{stage} folder")
        parser.add_argument("--out", required=True, help="folder to write (created atomically)")
        parser.add_argument(
            "--dtype",
            choices=sorted(DTYPE_NAMES),
            default="float16",
            help="dtype to merge the LoRAs in and store (default float16, as the release runs)",
        )
        parser.add_argument(
            "--skip-unmatched-keys",
            action="store_true",
            help="drop non_lora_trainables keys that name no parameter (the release's loader does)",
        )
        _add_shape_options(parser)
    elif command == "export":
        parser = argparse.ArgumentParser(
            description="Write a Hub-ready folder: remote code, processor, sharded "
            "safetensors, greedy generation config, README.md from the model card."
        )
        parser.add_argument("model_dir", metavar="MODEL_DIR", help="a PiTe checkpoint folder with its processor")
        parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write (created atomically)")
        parser.add_argument(
            "--max-shard-size",
            type=_shard_size,
            default="5GB",
            help="largest safetensors shard, e.g. 5GB or a byte count (default 5GB)",
        )
        parser.add_argument("--repo-id", default=None, help="Hub repo the card's demo loads (default org/pite-7b)")
        parser.add_argument(
            "--model-card", default=None, help="card template (default: the repository's model_card.md)"
        )
        parser.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists")
    elif command == "push":
        parser = argparse.ArgumentParser(
            description="Upload a folder written by `pite export` to the Hub "
            "(log in with `hf auth login` or set HF_TOKEN)."
        )
        parser.add_argument("folder", metavar="OUT_DIR", help="the exported folder")
        parser.add_argument("--repo-id", required=True, help="owner/name of the model repo (created if missing)")
        parser.add_argument("--private", action="store_true", help="create the repo private")
        parser.add_argument("--commit-message", default="Upload PiTe checkpoint")
        parser.add_argument(
            "--create-pr", action="store_true", help="open a pull request instead of committing to main"
        )
    else:
        raise ValueError(f"pite.hub.cli has no command {command!r}; it provides {COMMANDS}")
    return parser


def run(command: str, args: argparse.Namespace) -> int:
    """Run one hub command; returns the exit status (2 with a one-line message for bad input)."""
    from pite.core.loading import torch_dtype

    from . import build_from_base, convert_original, export_for_hub, push_to_hub

    try:
        if command == "build":
            out = build_from_base(
                args.llm,
                args.vision,
                args.out,
                num_frames=args.num_frames,
                num_trajectory_points=args.num_trajectory_points,
                dtype=torch_dtype(args.dtype) if args.dtype else None,
                overwrite=args.overwrite,
            )
            print(f"wrote an untrained PiTe to {out}")
        elif command == "convert-original":
            out = convert_original(
                args.base,
                args.clip,
                [args.stage1, args.stage2, args.stage3],
                args.out,
                num_frames=args.num_frames,
                num_trajectory_points=args.num_trajectory_points,
                dtype=torch_dtype(args.dtype),
                skip_unmatched_keys=args.skip_unmatched_keys,
                overwrite=args.overwrite,
            )
            print(f"wrote the converted PiTe to {out}")
        elif command == "export":
            out = export_for_hub(
                args.model_dir,
                args.out_dir,
                max_shard_size=args.max_shard_size,
                repo_id=args.repo_id,
                model_card=args.model_card,
                overwrite=args.overwrite,
            )
            print(f"wrote a hub-ready folder to {out}")
        elif command == "push":
            url = push_to_hub(
                args.folder,
                args.repo_id,
                private=args.private,
                commit_message=args.commit_message,
                create_pr=args.create_pr,
            )
            print(f"uploaded {args.folder} to {args.repo_id}: {url}")
        else:
            raise ValueError(f"pite.hub.cli has no command {command!r}; it provides {COMMANDS}")
    except ValueError as error:  # the hub functions' checks of their inputs; missing paths go to pite.cli.main
        return report(command, error)
    return 0
