"""Fast paths, each measured before and after in one run: SDPA, static cache, torch.compile, batched generation,
gradient checkpointing, bf16. Ratios are "before / after" in time (or "after / before" in throughput), so > 1
means the fast path wins; checkpointing trades time for memory, and its ratio is the time it costs."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
import time
from typing import Any

import torch

from .measure import (
    clear_dynamo_counts,
    current_rss_bytes,
    dynamo_counts,
    peak_rss_bytes,
    result,
    saved_activation_bytes,
    seconds_ratio,
    skipped,
    timed_alternating,
)
from .models import BenchSizes, enable_checkpointing, greedy_kwargs, pite_model, prompt_ids


def _train_inputs(model: Any, sizes: BenchSizes, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """A stage-2-like training batch of one: cached features, token labels and per-token trajectories."""
    ids = prompt_ids(sizes, sizes.num_frames, sizes.train_text_tokens)
    generator = torch.Generator().manual_seed(1)
    config = model.config
    return dict(
        input_ids=ids,
        labels=ids,
        video_features=torch.randn(1, sizes.num_frames, config.vision_feature_dim, generator=generator).to(dtype),
        trajectory_labels=torch.rand(
            1, ids.shape[1], config.num_trajectory_points, sizes.num_frames, 2, generator=generator
        ),
    )


def _train_step(model: Any, inputs: dict[str, torch.Tensor]) -> None:
    model.zero_grad(set_to_none=True)
    model(**inputs, use_cache=False).loss.backward()


def _question(model: Any, sizes: BenchSizes, batch: int = 1) -> dict[str, torch.Tensor]:
    """generate() inputs for `batch` video questions, left-padded to a common length (prompts differ by 0-2 tokens)."""
    prompts = [
        prompt_ids(sizes, sizes.num_frames, sizes.prompt_text_tokens + row % 3, seed=row)[0] for row in range(batch)
    ]
    length = max(len(p) for p in prompts)
    input_ids = torch.zeros(batch, length, dtype=torch.long)  # pad id 0
    attention_mask = torch.zeros(batch, length, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, length - len(prompt) :] = prompt
        attention_mask[row, length - len(prompt) :] = 1
    features = torch.randn(
        batch,
        sizes.num_frames,
        model.config.vision_feature_dim,
        generator=torch.Generator().manual_seed(2),
        dtype=model.dtype,
    )
    return dict(input_ids=input_ids, attention_mask=attention_mask, video_features=features)


def _answer(model: Any, question: dict[str, torch.Tensor], sizes: BenchSizes, **options: Any) -> Any:
    with torch.no_grad():
        return model.generate(**question, return_dict_in_generate=True, **greedy_kwargs(sizes), **options)


def row_sdpa(sizes: BenchSizes) -> list[dict[str, Any]]:
    """Eager attention against SDPA (the default), for a training step and for generation."""
    sdpa = pite_model(sizes).train()
    eager = copy.deepcopy(sdpa)
    eager.set_attn_implementation("eager")
    inputs = _train_inputs(sdpa, sizes)
    train = timed_alternating(
        {"eager": lambda: _train_step(eager, inputs), "sdpa": lambda: _train_step(sdpa, inputs)}, repeats=sizes.repeats
    )
    sdpa.eval(), eager.eval()
    question = _question(sdpa, sizes)
    generate = timed_alternating(
        {"eager": lambda: _answer(eager, question, sizes), "sdpa": lambda: _answer(sdpa, question, sizes)},
        repeats=sizes.repeats,
    )
    length = inputs["input_ids"].shape[1]
    return [
        seconds_ratio(
            "sdpa (train step)",
            train,
            "eager",
            "sdpa",
            "eager / SDPA",
            f"fwd+bwd, {length} tokens, {sizes.num_heads} heads of {sizes.hidden_size // sizes.num_heads}",
        ),
        seconds_ratio(
            "sdpa (generate)",
            generate,
            "eager",
            "sdpa",
            "eager / SDPA",
            f"prefill {question['input_ids'].shape[1]} + {sizes.new_tokens} tokens",
        ),
    ]


def row_static(sizes: BenchSizes) -> dict[str, Any]:
    """Static (preallocated) KV cache against the default dynamic cache, no compilation; same tokens checked."""
    model = pite_model(sizes).eval()
    question = _question(model, sizes)
    dynamic, static = (
        _answer(model, question, sizes),
        _answer(model, question, sizes, cache_implementation="static", disable_compile=True),
    )
    if not torch.equal(dynamic.sequences, static.sequences):
        raise RuntimeError("static and dynamic caches generated different tokens")
    times = timed_alternating(
        {
            "dynamic": lambda: _answer(model, question, sizes),
            "static": lambda: _answer(model, question, sizes, cache_implementation="static", disable_compile=True),
        },
        repeats=sizes.repeats,
    )
    return seconds_ratio(
        "static cache",
        times,
        "dynamic",
        "static",
        "dynamic cache / static cache",
        f"prefill {question['input_ids'].shape[1]} + {sizes.new_tokens} tokens, eager",
    )


def compile_config(backend: str = "inductor") -> Any:
    """generate()'s compile options for the decode step: `backend="eager"` traces with dynamo only (graphs and
    graph breaks counted, no code generated), which the tests use."""
    from transformers import CompileConfig

    # mode "reduce-overhead" would mean CUDA graphs
    config = CompileConfig(fullgraph=False, dynamic=False, backend=backend, mode="default")
    config._compile_all_devices = True  # generate() compiles on CUDA only unless told (transformers' own flag)
    return config


def row_compile(sizes: BenchSizes) -> dict[str, Any]:
    """Static cache + torch.compile of the library's decode step against static-cache eager decoding, same run."""
    try:
        import torch._dynamo
    except ImportError as error:
        return skipped("compile", f"torch.compile unavailable: {error}")
    model = pite_model(sizes).eval()
    question = _question(model, sizes)
    static = dict(cache_implementation="static")
    reference = _answer(model, question, sizes, disable_compile=True, **static)
    torch._dynamo.reset()
    clear_dynamo_counts()  # this row's graphs and graph breaks only
    start = time.perf_counter()
    try:
        first = _answer(model, question, sizes, compile_config=compile_config(), **static)
    except Exception as error:  # no C++ compiler, an unsupported backend, ...: report, do not fail the suite
        return skipped("compile", f"torch.compile failed on this machine: {type(error).__name__}: {error}")
    compile_s = time.perf_counter() - start
    figures: dict[str, Any] = dynamo_counts()
    if not torch.equal(first.sequences, reference.sequences):
        raise RuntimeError("compiled generation produced other tokens than eager generation")
    drift = float((first.trajectory_predictions - reference.trajectory_predictions).abs().max())
    times = timed_alternating(
        {
            "eager": lambda: _answer(model, question, sizes, disable_compile=True, **static),
            "compiled": lambda: _answer(model, question, sizes, compile_config=compile_config(), **static),
        },
        repeats=sizes.repeats,
    )
    torch._dynamo.reset()
    figures.update(
        eager_s=times["eager"], compiled_s=times["compiled"], first_call_s=compile_s, trajectory_max_abs_diff=drift
    )
    return result(
        "compile",
        times["eager"] / times["compiled"],
        "static eager / static compiled",
        figures,
        f"inductor, decode steps compiled (prefill eager), {sizes.new_tokens} tokens; first_call_s includes "
        "compilation",
    )


def row_batch(sizes: BenchSizes) -> list[dict[str, Any]]:
    """Generated tokens per second at each batch size (left-padded video questions) against batch 1."""
    model = pite_model(sizes).eval()
    questions = {batch: _question(model, sizes, batch) for batch in sorted(set(sizes.batch_sizes) | {1})}
    times = timed_alternating(
        {f"b{batch}": (lambda q=q: _answer(model, q, sizes)) for batch, q in questions.items()},
        repeats=max(1, sizes.repeats // 2),
    )
    tokens_per_s = {batch: batch * sizes.new_tokens / times[f"b{batch}"] for batch in questions}
    return [
        result(
            f"batch {batch}",
            tokens_per_s[batch] / tokens_per_s[1],
            "tokens/s at batch / tokens/s at batch 1",
            dict(tokens_per_s=tokens_per_s[batch], batch_1_tokens_per_s=tokens_per_s[1], seconds=times[f"b{batch}"]),
            f"{sizes.new_tokens} greedy tokens per answer, left-padded prompts of "
            f"{questions[batch]['input_ids'].shape[1]} tokens",
        )
        for batch in questions
        if batch != 1
    ]


def training_step_peak_rss(sizes_fields: dict[str, Any], checkpointing: bool) -> dict[str, int]:
    """In a fresh process: RSS before the first training step and the peak during it, in bytes."""
    sizes = BenchSizes(**{k: tuple(v) if isinstance(v, list) else v for k, v in sizes_fields.items()})
    model = pite_model(sizes).train()
    if checkpointing:
        enable_checkpointing(model)
    inputs = _train_inputs(model, sizes)
    before = current_rss_bytes()
    _train_step(model, inputs)
    return dict(rss_before=before, peak=peak_rss_bytes())


_PEAK_RSS_CHILD = """
import json, sys
from pite.cli.bench import load_benchmarks
load_benchmarks()
from pite_benchmarks.fast_paths import training_step_peak_rss
print(json.dumps(training_step_peak_rss(json.loads(sys.argv[1]), sys.argv[2] == "1")))
"""


def _peak_rss_in_child(sizes: BenchSizes, checkpointing: bool) -> dict[str, int]:
    fields = dataclasses.asdict(sizes)
    completed = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS_CHILD, json.dumps(fields), str(int(checkpointing))],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if completed.returncode:
        raise RuntimeError(f"peak-RSS child process failed: {completed.stderr.strip()[-500:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def row_checkpointing(sizes: BenchSizes) -> dict[str, Any]:
    """Gradient checkpointing: training-step time (measured alternately) against the activation memory it frees
    (bytes saved for backward, exact; and the step's peak RSS over the RSS before it, each side in a fresh process)."""
    plain = pite_model(sizes).train()
    checkpointed = copy.deepcopy(plain)
    enable_checkpointing(checkpointed)
    inputs = _train_inputs(plain, sizes)
    saved = {}
    for name, model in (("plain", plain), ("checkpointed", checkpointed)):
        saved[name], loss = saved_activation_bytes(
            lambda m=model: m(**inputs, use_cache=False).loss, model.parameters()
        )
        loss.backward()
    times = timed_alternating(
        {"plain": lambda: _train_step(plain, inputs), "checkpointed": lambda: _train_step(checkpointed, inputs)},
        repeats=sizes.repeats,
    )
    figures: dict[str, Any] = dict(
        plain_s=times["plain"],
        checkpointed_s=times["checkpointed"],
        saved_mb_plain=saved["plain"] / 2**20,
        saved_mb_checkpointed=saved["checkpointed"] / 2**20,
    )
    try:
        for name, flag in (("plain", False), ("checkpointed", True)):
            rss = _peak_rss_in_child(sizes, flag)
            figures[f"step_peak_rss_mb_{name}"] = (rss["peak"] - rss["rss_before"]) / 2**20
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as error:
        figures["step_peak_rss"] = f"unavailable ({error})"
    return result(
        "checkpointing",
        times["checkpointed"] / times["plain"],
        "checkpointed step / plain step",
        figures,
        f"fwd+bwd, {inputs['input_ids'].shape[1]} tokens, {sizes.num_layers} layers, non-reentrant; "
        "saved_mb = activations kept for backward",
    )


def _cpu_bf16_flags() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    found = [flag for flag in ("avx512_bf16", "amx_bf16") if flag in flags]
    return "+".join(found) if found else "none"


def row_bf16(sizes: BenchSizes) -> list[dict[str, Any]]:
    """bf16 weights and activations against fp32 on CPU, for a training step and for generation."""
    fp32 = pite_model(sizes).train()
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    hardware = f"CPU {torch.backends.cpu.get_cpu_capability()}, bf16 instructions: {_cpu_bf16_flags()}"
    inputs32, inputs16 = _train_inputs(fp32, sizes), _train_inputs(bf16, sizes, torch.bfloat16)
    try:
        _train_step(bf16, inputs16)  # doubles as the warm-up: without bf16 instructions a step can take a minute
    except RuntimeError as error:
        return [skipped("bf16", f"bf16 training step unsupported here ({hardware}): {error}")]
    _train_step(fp32, inputs32)
    repeats = max(1, sizes.repeats // 4)
    train = timed_alternating(
        {"fp32": lambda: _train_step(fp32, inputs32), "bf16": lambda: _train_step(bf16, inputs16)},
        repeats=repeats,
        warmup=0,
    )
    fp32.eval(), bf16.eval()
    question32, question16 = _question(fp32, sizes), _question(bf16, sizes)
    generate = timed_alternating(
        {"fp32": lambda: _answer(fp32, question32, sizes), "bf16": lambda: _answer(bf16, question16, sizes)},
        repeats=max(1, sizes.repeats // 2),
    )
    return [
        seconds_ratio(
            "bf16 (train step)",
            train,
            "fp32",
            "bf16",
            "fp32 / bf16",
            f"fwd+bwd, {inputs32['input_ids'].shape[1]} tokens; {hardware}",
        ),
        seconds_ratio(
            "bf16 (generate)",
            generate,
            "fp32",
            "bf16",
            "fp32 / bf16",
            f"prefill {question32['input_ids'].shape[1]} + {sizes.new_tokens} tokens; {hardware}",
        ),
    ]
