"""The GPU rows: the real 7B config (CLIP ViT-L/14 + Vicuna-7B sizes, `PiTeConfig()`) with random bf16 weights.

- decode: batch-1 tokens/s (dynamic cache; static cache; static cache + torch.compile of the decode step)
  against the memory-bandwidth bound, bytes read per decode step / HBM bandwidth;
- prefill: latency of a 100-frame video question (vision tower + prefill + first token), with SDPA and, where
  flash-attn is installed, flash-attention 2;
- training: stage-2 LoRA (r 64, alpha 128, every linear layer of the LLM, trajectory head trained, gradient
  checkpointing, cached features) tokens/s and MFU.

Runs where `torch.cuda.is_available()`. The GPU machine has torch 2.11 and transformers 5.17 and neither trl nor
decord: nothing here imports them (nor `pite.training`, which imports trl), and peft is optional (`apply_lora`
falls back to a local LoRA with the same FLOPs). `gpu_records` takes any device, so the CPU tests run its logic on
a tiny config.
"""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .measure import clear_dynamo_counts, dynamo_counts, failed, result, skipped
from .models import enable_checkpointing

H200_BANDWIDTH = 4.8e12  # B/s, H200 HBM3e: the memory-bound decode target

# name fragment -> (HBM bytes/s, dense bf16 FLOP/s) from the vendor's data sheets; first match wins.
DEVICE_SPECS: tuple[tuple[str, float, float], ...] = (
    ("H200", 4.8e12, 989e12),
    ("H100 NVL", 3.9e12, 835e12),
    ("H100 PCIe", 2.0e12, 756e12),
    ("H100", 3.35e12, 989e12),  # SXM5 ("NVIDIA H100 80GB HBM3")
)

# Stage 2 of the recipe (training/configs/stage2.yaml): not imported, `pite.training` needs trl.
STAGE2_LORA = dict(r=64, alpha=128, dropout=0.05)
STAGE2_TRAINED_MODULES = ("trajectory_head",)


@dataclass(frozen=True)
class GpuSettings:
    """Sizes of the GPU measurements (the CPU tests shrink them)."""

    decode_tokens: int = 128
    question_text_tokens: int = 40
    train_batch: int = 8  # the recipe's per-device batch
    train_length: int = 512  # 100 frames + a stage-2 caption and its question
    train_steps: int = 5
    repeats: int = 3
    compile_decode: bool = True


def device_spec(device_name: str) -> tuple[str, float, float] | None:
    """(matched name, HBM bytes/s, dense bf16 FLOP/s) for a CUDA device name, or None when unknown."""
    for fragment, bandwidth, flops in DEVICE_SPECS:
        if fragment.lower() in device_name.lower():
            return fragment, bandwidth, flops
    return None


def _unique_parameters(modules: list[nn.Module]) -> list[nn.Parameter]:
    seen, parameters = set(), []
    for module in modules:
        for parameter in module.parameters():
            if id(parameter) not in seen:
                seen.add(id(parameter))
                parameters.append(parameter)
    return parameters


def decode_weight_bytes(model: nn.Module) -> int:
    """Bytes of weights one decode step reads: the LLM's decoder layers and final norm, the vocabulary head and the
    two regression heads. Not the embedding table (one row is gathered per token), the vision tower or the adapter
    (prefill only)."""
    language_model = model.model.language_model
    modules = [
        language_model.layers,
        language_model.norm,
        model.lm_head,
        model.localization_head,
        model.trajectory_head,
    ]
    return sum(p.numel() * p.element_size() for p in _unique_parameters(modules))


def bandwidth_bound_tokens_per_s(weight_bytes: int, bandwidth: float) -> float:
    """Batch-1 decode cannot beat reading every weight once per token: bandwidth / weight bytes."""
    if weight_bytes <= 0 or bandwidth <= 0:
        raise ValueError(f"weight_bytes and bandwidth must be > 0, got {weight_bytes} and {bandwidth}")
    return bandwidth / weight_bytes


def matmul_parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(frozen, trainable) parameters of the linear layers a training token passes through: the LLM's (LoRA A/B
    included, being linear layers) and the three heads. Embedding (a gather), vision tower and adapter (run per frame
    on cached features, not per token) are left out."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    frozen = trainable = 0
    for module in [base.model.language_model, base.lm_head, base.localization_head, base.trajectory_head]:
        # peft keeps an unused frozen copy of a module it trains (`original_module`): it does no work.
        linears = [
            m for path, m in module.named_modules() if isinstance(m, nn.Linear) and "original_module" not in path
        ]
        for linear in linears:
            for parameter in linear.parameters(recurse=False):
                if parameter.requires_grad:
                    trainable += parameter.numel()
                else:
                    frozen += parameter.numel()
    return frozen, trainable


def lora_training_flops_per_token(
    frozen: int, trainable: int, num_layers: int, hidden_size: int, length: int
) -> float:
    """Model FLOPs per token of a LoRA step (PaLM's accounting, recomputation not counted).

    Frozen weights: forward 2 + input-gradient 2 per parameter (no weight gradient). Trainable ones: 2 + 2 + 2.
    Attention scores and values: 12 * layers * hidden * length (forward and both backward products).
    """
    return 4.0 * frozen + 6.0 * trainable + 12.0 * num_layers * hidden_size * length


def model_flops_utilisation(tokens_per_s: float, flops_per_token: float, peak_flops: float) -> float:
    """Achieved model FLOP/s over the device's dense peak."""
    return tokens_per_s * flops_per_token / peak_flops


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update, `scale * B(A(dropout(x)))`, B starting at zero; the
    fallback where peft is not installed (same FLOPs as peft's LoRA)."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float) -> None:
        super().__init__()
        self.base_layer = base.requires_grad_(False)
        device = base.weight.device
        self.lora_A = nn.Linear(base.in_features, r, bias=False, device=device, dtype=torch.float32)
        self.lora_B = nn.Linear(r, base.out_features, bias=False, device=device, dtype=torch.float32)
        nn.init.zeros_(self.lora_B.weight)
        self.dropout = nn.Dropout(dropout)
        self.scale = alpha / r

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        update = self.lora_B(self.lora_A(self.dropout(hidden.to(self.lora_A.weight.dtype))))
        return self.base_layer(hidden) + (self.scale * update).to(hidden.dtype)


def apply_lora(model: nn.Module, use_peft: bool = True) -> tuple[nn.Module, str]:
    """Freeze `model` and add the stage-2 LoRA and trained modules; returns (model to train, "peft" or "local")."""
    model.requires_grad_(False)
    names = sorted(
        {path.rsplit(".", 1)[-1] for path, m in model.model.language_model.named_modules() if isinstance(m, nn.Linear)}
    )
    if use_peft:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            use_peft = False
    if use_peft:
        config = LoraConfig(
            r=STAGE2_LORA["r"],
            lora_alpha=STAGE2_LORA["alpha"],
            lora_dropout=STAGE2_LORA["dropout"],
            target_modules=r"model\.language_model\..*\.(" + "|".join(map(re.escape, names)) + ")",
            modules_to_save=list(STAGE2_TRAINED_MODULES),
            bias="none",
        )
        return get_peft_model(model, config), "peft"
    for path, module in list(model.model.language_model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(
                    module,
                    child_name,
                    LoRALinear(child, STAGE2_LORA["r"], STAGE2_LORA["alpha"], STAGE2_LORA["dropout"]),
                )
    for name in STAGE2_TRAINED_MODULES:
        getattr(model, name).requires_grad_(True)
    return model, "local"


def build_model(config: Any, device: torch.device, dtype: torch.dtype = torch.bfloat16) -> nn.Module:
    """A randomly initialised PiTe built directly on `device` in `dtype`.

    No meta tensors, so the rotary buffers stay right.
    """
    from pite.modeling_pite import PiTeForConditionalGeneration

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            torch.manual_seed(0)
            model = PiTeForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise RuntimeError(f"random initialisation left non-finite values in {bad[:3]}")
    return model.eval()


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_on(device: torch.device, function: Callable[[], object], repeats: int) -> float:
    """Median seconds of `function` with the device drained before and after each call; one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        function()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _question_ids(config: Any, text_tokens: int, device: torch.device) -> torch.Tensor:
    """(1, 1 + 10 + N + text_tokens - 10) ids: BOS, text, N frame placeholders, the rest of the text."""
    generator = torch.Generator().manual_seed(0)
    text = torch.randint(3, config.video_token_id, (text_tokens,), generator=generator)
    frames = torch.full((config.num_frames,), config.video_token_id)
    return torch.cat([torch.tensor([1]), text[:10], frames, text[10:]])[None].to(device)


def _decode_records(
    model: nn.Module, settings: GpuSettings, device: torch.device, bandwidths: dict[str, float]
) -> list[dict]:
    config = model.config
    ids = _question_ids(config, settings.question_text_tokens, device)
    features = torch.randn(1, config.num_frames, config.vision_feature_dim, device=device, dtype=model.dtype)
    variants: list[tuple[str, dict]] = [
        ("dynamic cache", {}),
        ("static cache", dict(cache_implementation="static", disable_compile=True)),
    ]
    if settings.compile_decode:
        # The library's decode step compiles into one graph (the CPU `compile` row and its test count them);
        # generate() compiles it by itself on CUDA with a static cache.
        variants.append(("static cache + compile", dict(cache_implementation="static")))
    weight_bytes = decode_weight_bytes(model)
    records, baseline = [], None
    for name, options in variants:
        clear_dynamo_counts()

        def answer(tokens: int, options=options) -> None:
            with torch.no_grad():
                model.generate(
                    input_ids=ids,
                    video_features=features,
                    max_new_tokens=tokens,
                    min_new_tokens=tokens,
                    do_sample=False,
                    pad_token_id=0,
                    return_dict_in_generate=True,
                    **options,
                )

        try:
            long = _timed_on(device, lambda: answer(settings.decode_tokens + 1), settings.repeats)
            short = _timed_on(device, lambda: answer(1), settings.repeats)
        except Exception as error:  # one variant failing (e.g. compile on an old stack) must not lose the others
            records.append(failed(f"gpu decode ({name})", error))
            continue
        tokens_per_s = settings.decode_tokens / max(long - short, 1e-9)
        baseline = baseline or tokens_per_s
        compiled = dynamo_counts()
        figures = dict(
            tokens_per_s=tokens_per_s,
            speedup_over_dynamic=tokens_per_s / baseline,
            weight_gb=weight_bytes / 1e9,
            compiled_graphs=compiled["graphs"],
            graph_breaks=compiled["graph_breaks"],
        )
        for label, bandwidth in bandwidths.items():
            figures[f"bound_tokens_per_s_{label}"] = bandwidth_bound_tokens_per_s(weight_bytes, bandwidth)
        issue_bound = figures["bound_tokens_per_s_4.8TBps"]
        records.append(
            result(
                f"gpu decode ({name})",
                tokens_per_s / issue_bound,
                "tokens/s / (4.8 TB/s / weight bytes)",
                figures,
                f"batch 1, prompt {ids.shape[1]} tokens, {settings.decode_tokens} tokens timed "
                "(generate(1 + n) - generate(1)), per-token trajectories returned",
            )
        )
    return records


def _prefill_record(model: nn.Module, settings: GpuSettings, device: torch.device) -> dict:
    config = model.config
    ids = _question_ids(config, settings.question_text_tokens, device)
    size = config.vision_config.image_size
    pixels = torch.randn(1, config.num_frames, 3, size, size, device=device, dtype=model.dtype)

    def first_token() -> None:
        with torch.no_grad():
            model.generate(
                input_ids=ids, pixel_values_videos=pixels, max_new_tokens=1, do_sample=False, pad_token_id=0
            )

    def vision() -> None:
        with torch.no_grad():
            model.get_video_features(pixels)

    latency = _timed_on(device, first_token, settings.repeats)
    vision_s = _timed_on(device, vision, settings.repeats)
    figures: dict[str, Any] = dict(time_to_first_token_s=latency, vision_tower_s=vision_s, prompt_tokens=ids.shape[1])
    if importlib.util.find_spec("flash_attn") is None:
        figures["flash_attention_2"] = "not installed"
    else:
        previous = model.config._attn_implementation
        try:
            model.set_attn_implementation("flash_attention_2")
            figures["time_to_first_token_flash_attention_2_s"] = _timed_on(device, first_token, settings.repeats)
        except Exception as error:  # an unsupported GPU or build: report it beside the SDPA figure
            figures["flash_attention_2"] = f"failed: {type(error).__name__}: {error}"
        finally:
            model.set_attn_implementation(previous)
    return result(
        "gpu prefill",
        None,
        "absolute (GPU)",
        figures,
        f"{config.num_frames} frames at {size} px through the vision tower, prefill, first token",
    )


def _training_record(model: nn.Module, settings: GpuSettings, device: torch.device, peak_flops: float | None) -> dict:
    config = model.config
    train_model, lora_kind = apply_lora(model)
    enable_checkpointing(train_model)
    train_model.train()
    batch, length = settings.train_batch, settings.train_length
    text = length - 1 - config.num_frames
    if text < 10:
        raise ValueError(f"train_length {length} leaves no room for text around {config.num_frames} frames")
    ids = torch.cat([_question_ids(config, text, device)] * batch)
    features = torch.randn(batch, config.num_frames, config.vision_feature_dim, device=device, dtype=model.dtype)
    trajectories = torch.rand(batch, length, config.num_trajectory_points, config.num_frames, 2, device=device)
    parameters = [p for p in train_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=1e-4)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = train_model(
                input_ids=ids, labels=ids, video_features=features, trajectory_labels=trajectories, use_cache=False
            ).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step_s = _timed_on(device, step, settings.train_steps)
    tokens_per_s = batch * length / step_s
    frozen, trainable = matmul_parameter_counts(train_model)
    text_config = config.text_config
    flops = lora_training_flops_per_token(
        frozen, trainable, text_config.num_hidden_layers, text_config.hidden_size, length
    )
    figures: dict[str, Any] = dict(
        tokens_per_s=tokens_per_s,
        step_s=step_s,
        trainable_params=trainable,
        model_tflops_per_token=flops / 1e12,
        lora=lora_kind,
    )
    if device.type == "cuda":
        figures["peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    detail = (
        f"stage-2 LoRA r {STAGE2_LORA['r']} on every LLM linear layer + trajectory head, batch {batch} x {length} "
        f"tokens ({config.num_frames} frames, cached features), gradient checkpointing, bf16 autocast, AdamW"
    )
    if peak_flops is None:
        return result(
            "gpu stage-2 training", tokens_per_s * flops / 1e12, "model TFLOP/s (device peak unknown)", figures, detail
        )
    mfu = model_flops_utilisation(tokens_per_s, flops, peak_flops)
    return result("gpu stage-2 training", mfu, "MFU (model FLOP/s / dense bf16 peak)", figures, detail)


def gpu_records(
    config: Any, device: torch.device, settings: GpuSettings, device_name: str = ""
) -> list[dict[str, Any]]:
    """Decode, prefill and training records for `config` on `device` (the tests call it on CPU with a tiny config)."""
    spec = device_spec(device_name)
    bandwidths = {"4.8TBps": H200_BANDWIDTH}
    if spec is not None:
        bandwidths[f"{spec[0].replace(' ', '_')}_spec"] = spec[1]
    model = build_model(config, device)
    records = _decode_records(model, settings, device, bandwidths)
    for name, measure in (
        ("gpu prefill", lambda: _prefill_record(model, settings, device)),
        ("gpu stage-2 training", lambda: _training_record(model, settings, device, spec[2] if spec else None)),
    ):
        try:
            records.append(measure())
        except Exception as error:
            records.append(failed(name, error))
    return records


def row_gpu(sizes: Any) -> list[dict[str, Any]]:
    """The 7B rows on the current CUDA device; skipped without one."""
    if not torch.cuda.is_available():
        return [
            skipped("gpu", "no CUDA device (torch.cuda.is_available() is False): the 7B rows run on a GPU machine")
        ]
    from pite.modeling_pite import PiTeConfig

    device = torch.device("cuda", torch.cuda.current_device())
    return gpu_records(PiTeConfig(), device, GpuSettings(), torch.cuda.get_device_name(device))
