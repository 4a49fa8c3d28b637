"""Frozen-tower feature cache: run CLIP once over a media folder, train from the stored per-frame features.

Layout of a cache folder:
    index.json                  format, what produced the features, and which shard holds each file's features
    features-00000.safetensors  up to `shard_size` tensors, one per media file: (F, D) float32, F = N frames
    ...                         (F = 1 for an image), keyed by the file's path relative to the media folder
    parts/00001-of-00004/       a multi-process run's part: the same layout, written by process 1 of 4 alone

Every file is written atomically (`pite.core.file_writing`), the index after its
shard, so an interrupted run leaves a consistent cache and `extract_features` resumes with the files not yet indexed.

Several processes (`part=(rank, world_size)`): process `rank` takes files `rank, rank + world_size, ...` of the sorted
list and writes its own part folder, resumable like a whole cache; nobody else writes there. `merge_feature_parts`
(the main process, after all parts finished) writes the one `index.json` naming every part's shards
(`parts/.../features-*.safetensors`): the files are not copied. Its entries, failures and metadata are those of a
one-process run over the same files; only the shard file each entry points to differs.
`fingerprint` identifies the pixels -> features function (tower weights, vision_feature, image processor, N):
training refuses a cache whose fingerprint differs from the model's and processor's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from pite.core.file_writing import TEMPORARY_PREFIX, atomic_write, write_json

from .extraction_pipeline import ExtractionTimes, load_batches
from .records import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

logger = logging.getLogger(__name__)

INDEX_NAME = "index.json"
FORMAT_VERSION = 1
PARTS_FOLDER = "parts"


def feature_fingerprint(model: Any, processor: Any) -> str:
    """sha256 over the vision tower's weights, `vision_feature`, the image processor's settings and N."""
    tower = model.get_base_model() if hasattr(model, "get_base_model") else model
    tower = tower.model.vision_tower if hasattr(tower, "model") else tower.vision_tower
    digest = hashlib.sha256()
    for name, tensor in sorted(tower.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    digest.update(str(getattr(model.config, "vision_feature", "")).encode())
    digest.update(processor.image_processor.to_json_string().encode())
    digest.update(str(processor.num_frames).encode())
    return digest.hexdigest()


def list_media(media_dir: str, extensions: Iterable[str] = VIDEO_EXTENSIONS + IMAGE_EXTENSIONS) -> list[str]:
    """Media files under `media_dir` (recursively), as sorted POSIX paths relative to it."""
    wanted = tuple(e.lower() for e in extensions)
    found = []
    for root, _, files in os.walk(media_dir):
        for name in files:
            if name.lower().endswith(wanted) and not name.startswith(TEMPORARY_PREFIX):
                found.append(os.path.relpath(os.path.join(root, name), media_dir).replace(os.sep, "/"))
    return sorted(found)


class FeatureCache:
    """Read access to a cache folder written by `extract_features`."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = os.fspath(directory)
        path = os.path.join(self.directory, INDEX_NAME)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"no feature cache at {self.directory!r} ({INDEX_NAME} missing); run `pite extract-features`"
            )
        with open(path, encoding="utf-8") as handle:
            self.index = json.load(handle)
        if self.index.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported feature cache format {self.index.get('format_version')!r}")
        self._handles: dict[str, Any] = {}

    @property
    def fingerprint(self) -> str:
        return self.index["fingerprint"]

    @property
    def failed(self) -> dict[str, str]:
        """Files that could not be read during extraction, with the reason."""
        return self.index.get("failed", {})

    def __contains__(self, key: str) -> bool:
        return key in self.index["entries"]

    def __len__(self) -> int:
        return len(self.index["entries"])

    def check_compatible(self, fingerprint: str) -> None:
        if fingerprint != self.fingerprint:
            raise ValueError(
                f"the feature cache {self.directory!r} was extracted with a different vision tower (weights or "
                "dtype), image processor or num_frames than this model and processor (fingerprints differ); re-run "
                "`pite extract-features` with this checkpoint and dtype, or train from pixels"
            )

    def load(self, key: str) -> torch.Tensor:
        """(F, D) float32 features of media file `key` (F = N for a video, 1 for an image)."""
        shard = self.index["entries"].get(key)
        if shard is None:
            reason = self.failed.get(key)
            raise KeyError(
                f"{key!r} is not in the feature cache {self.directory!r}"
                + (f" (extraction failed: {reason})" if reason else "")
            )
        handle = self._handles.get(shard)
        if handle is None:
            handle = self._handles[shard] = safe_open(os.path.join(self.directory, shard), framework="pt")
        return handle.get_tensor(key)

    def __getstate__(self) -> dict[str, Any]:  # file handles stay in their process (DataLoader workers pickle us)
        return {"directory": self.directory, "index": self.index, "_handles": {}}


@dataclass
class ExtractionReport:
    directory: str
    extracted: int = 0
    already_cached: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    times: ExtractionTimes = field(default_factory=ExtractionTimes)


def _shard_name(number: int) -> str:
    return f"features-{number:05d}.safetensors"


def _next_shard_number(directory: str) -> int:
    """One past the highest shard number in `directory`: a new shard never replaces one (indexed or not)."""
    numbers = [int(name[9:14]) for name in os.listdir(directory) if re.fullmatch(r"features-\d{5}\.safetensors", name)]
    return max(numbers, default=-1) + 1


def _write_shard(directory: str, index: dict, shard_number: int, features: dict[str, torch.Tensor]) -> None:
    name = _shard_name(shard_number)
    atomic_write(os.path.join(directory, name), lambda temporary: save_file(features, temporary))
    for key in features:
        index["entries"][key] = name
    write_json(os.path.join(directory, INDEX_NAME), index)


def part_directory(output_dir: str | os.PathLike, rank: int, world_size: int) -> str:
    """The folder process `rank` of `world_size` writes its part of the cache to."""
    return os.path.join(os.fspath(output_dir), PARTS_FOLDER, f"{rank:05d}-of-{world_size:05d}")


def _part_indexes(output_dir: str) -> list[tuple[str, dict]]:
    """(path relative to output_dir, index) of every part folder holding an index, sorted by path."""
    root = os.path.join(output_dir, PARTS_FOLDER)
    if not os.path.isdir(root):
        return []
    found = []
    for name in sorted(os.listdir(root)):
        if os.path.isfile(os.path.join(root, name, INDEX_NAME)):
            found.append((f"{PARTS_FOLDER}/{name}", FeatureCache(os.path.join(root, name)).index))
    return found


def _new_index(model: Any, processor: Any, fingerprint: str) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "fingerprint": fingerprint,
        "num_frames": processor.num_frames,
        "vision_feature": model.config.vision_feature,
        "feature_dim": model.config.vision_feature_dim,
        "entries": {},
        "failed": {},
    }


def _open_index(directory: str, fingerprint: str) -> dict | None:
    if not os.path.isfile(os.path.join(directory, INDEX_NAME)):
        return None
    cache = FeatureCache(directory)
    cache.check_compatible(fingerprint)
    return cache.index


def merge_feature_parts(output_dir: str | os.PathLike) -> int:
    """Write `output_dir/index.json` over the cache's own shards and those of every part folder; returns the
    number of entries taken from parts. Run it in one process, after every part's writer has finished.

    Raises ValueError if a part was extracted by another model than the cache (fingerprints differ).
    """
    output_dir = os.fspath(output_dir)
    parts = _part_indexes(output_dir)
    if not parts:
        return 0
    if os.path.isfile(os.path.join(output_dir, INDEX_NAME)):
        index = FeatureCache(output_dir).index
    else:
        index = {key: value for key, value in parts[0][1].items() if key not in ("entries", "failed")}
        index.update(entries={}, failed={})
    taken = 0
    for folder, part in parts:
        if part["fingerprint"] != index["fingerprint"]:
            raise ValueError(
                f"{os.path.join(output_dir, folder)} was extracted with another vision tower, image "
                f"processor or num_frames than the rest of {output_dir!r} (fingerprints differ); "
                "remove one of them"
            )
        for key, shard in part["entries"].items():
            location = f"{folder}/{shard}"
            taken += index["entries"].get(key) != location
            index["entries"][key] = location
            index["failed"].pop(key, None)
        for key, reason in part["failed"].items():
            if key not in index["entries"]:
                index["failed"][key] = reason
    index["entries"] = dict(sorted(index["entries"].items()))
    index["failed"] = dict(sorted(index["failed"].items()))
    write_json(os.path.join(output_dir, INDEX_NAME), index)
    return taken


@torch.no_grad()
def extract_features(
    model: Any,
    processor: Any,
    media_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    files: Sequence[str] | None = None,
    batch_size: int = 8,
    shard_size: int = 256,
    skip_bad_records: bool = False,
    progress: bool = True,
    part: tuple[int, int] = (0, 1),
    num_workers: int = 0,
) -> ExtractionReport:
    """Compute and store the frozen tower's per-frame features of every media file under `media_dir`.

    Args:
        model: a `PiTeForConditionalGeneration`; its `get_video_features` computes the features (training's code).
        processor: the `PiTeProcessor` training uses (frame sampling and CLIP normalisation).
        files: paths relative to `media_dir` (default: every video/image found under it).
        batch_size: files per forward pass of the tower (videos of one batch are stacked, so all have N frames).
        skip_bad_records: record unreadable files in the index's "failed" map and go on, instead of raising.
        part: (rank, world_size): extract files rank, rank + world_size, ... of the sorted list into this process's
            part folder (see the module docstring); the caller merges the parts with `merge_feature_parts`.
        num_workers: DataLoader workers decoding the next batches while the tower runs (`extraction_pipeline`);
            0 reads in this process. The features do not depend on it.

    Resumes: files already in the cache or in any of its parts are skipped; a one-process run first merges parts
    an earlier multi-process run left unmerged. Raises ValueError if the folder holds a cache of another model.
    """
    from tqdm.auto import tqdm

    rank, world_size = part
    if not (isinstance(world_size, int) and world_size >= 1 and isinstance(rank, int) and 0 <= rank < world_size):
        raise ValueError(f"part must be (rank, world_size) with 0 <= rank < world_size, got {part}")
    media_dir, output_dir = os.fspath(media_dir), os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    fingerprint = feature_fingerprint(model, processor)
    if world_size == 1:
        merge_feature_parts(output_dir)
    done = set((_open_index(output_dir, fingerprint) or {"entries": {}})["entries"])
    for folder, part_index in _part_indexes(output_dir):
        if part_index["fingerprint"] == fingerprint:
            done.update(part_index["entries"])
    target = output_dir if world_size == 1 else part_directory(output_dir, rank, world_size)
    os.makedirs(target, exist_ok=True)
    index = _open_index(target, fingerprint) or _new_index(model, processor, fingerprint)
    keys = sorted(files) if files is not None else list_media(media_dir)
    keys = keys[rank::world_size]
    todo = [key for key in keys if key not in done]
    report = ExtractionReport(directory=target, already_cached=len(keys) - len(todo))
    was_training = model.training
    model.eval()
    try:
        batches = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
        bar = tqdm(total=len(batches), desc="extracting features", unit="batch", disable=not progress)
        started = time.perf_counter()
        _extract_into(
            model, processor, media_dir, target, index, batches, shard_size, skip_bad_records, report, bar, num_workers
        )
        report.times.wall_s = time.perf_counter() - started
    finally:
        model.train(was_training)
    return report


def _extract_into(
    model: Any,
    processor: Any,
    media_dir: str,
    directory: str,
    index: dict,
    batches: list[list[str]],
    shard_size: int,
    skip_bad_records: bool,
    report: ExtractionReport,
    bar: Any,
    num_workers: int = 0,
) -> None:
    """Extract `batches` of files into the cache folder `directory` whose index is `index`; shards of >= shard_size."""
    shard_number = _next_shard_number(directory)
    pending: dict[str, torch.Tensor] = {}
    tower_device = next(model.model.vision_tower.parameters()).device  # only the tower needs to be on the accelerator
    for loaded in load_batches(processor, media_dir, batches, num_workers, report.times):
        batch_keys, pixels = [], []
        for item in loaded:
            key, path = item.key, os.path.join(media_dir, item.key)
            if item.error is not None:
                if not skip_bad_records:
                    raise ValueError(f"cannot extract features of {path!r}: {item.error}") from item.error
                report.failed[key] = index["failed"][key] = str(item.error)
                logger.warning("skipping unreadable media %s: %s", path, item.error)
                continue
            batch_keys.append(key)
            pixels.append(item.pixels)
            index["failed"].pop(key, None)
        started = time.perf_counter()
        for group in _same_shape_groups(batch_keys, pixels):
            stacked = torch.stack([pixels[i] for i in group]).to(tower_device)
            features = model.get_video_features(stacked).pooler_output.float().cpu()
            for row, i in enumerate(group):
                pending[batch_keys[i]] = features[row].contiguous()
            report.times.frames += stacked.shape[0] * stacked.shape[1]
        report.times.tower_s += time.perf_counter() - started
        report.extracted += len(batch_keys)
        if len(pending) >= shard_size:
            _write_shard(directory, index, shard_number, pending)
            shard_number, pending = shard_number + 1, {}
        bar.update(1)
    bar.close()
    if pending:
        _write_shard(directory, index, shard_number, pending)
    else:
        write_json(os.path.join(directory, INDEX_NAME), index)


def _same_shape_groups(keys: list[str], pixels: list[torch.Tensor]) -> list[list[int]]:
    groups: dict[tuple, list[int]] = {}
    for i, tensor in enumerate(pixels):
        groups.setdefault(tuple(tensor.shape), []).append(i)
    return list(groups.values())
