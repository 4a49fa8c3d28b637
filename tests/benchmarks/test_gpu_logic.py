"""The GPU rows' logic on CPU: device limits, the bandwidth bound, the LoRA FLOPs and MFU arithmetic, the LoRA
set-up (peft and the local fallback), and `gpu_records` end to end on a tiny config."""

from __future__ import annotations

import pathlib

import pytest
import torch
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("NVIDIA H200", ("H200", 4.8e12, 989e12)),
        ("NVIDIA H100 80GB HBM3", ("H100", 3.35e12, 989e12)),
        ("NVIDIA H100 PCIe", ("H100 PCIe", 2.0e12, 756e12)),
        ("NVIDIA H100 NVL", ("H100 NVL", 3.9e12, 835e12)),
        ("Tesla T4", None),
    ],
)
def test_device_spec(bench, name, expected):
    assert bench("gpu").device_spec(name) == expected


def test_decode_bound_of_the_7b_config(bench):
    """Bytes read per decode step, from the architecture by hand: 32 layers of Vicuna-7B, final norm, the vocabulary
    head (32001 rows) and the two regression heads; not the embedding table, CLIP or the adapter."""
    from pite.modeling_pite import PiTeConfig, PiTeForConditionalGeneration

    gpu = bench("gpu")
    with torch.device("meta"):
        model = PiTeForConditionalGeneration(PiTeConfig()).to(torch.bfloat16)
    hidden, inner, layers, vocab = 4096, 11008, 32, 32001
    per_layer = 4 * hidden * hidden + 3 * hidden * inner + 2 * hidden
    heads = vocab * hidden + (hidden * 2 + 2) + (hidden * 600 + 600)
    expected_params = layers * per_layer + hidden + heads
    assert gpu.decode_weight_bytes(model) == 2 * expected_params
    bound = gpu.bandwidth_bound_tokens_per_s(gpu.decode_weight_bytes(model), gpu.H200_BANDWIDTH)
    assert bound == pytest.approx(4.8e12 / (2 * expected_params)) and 360 < bound < 366  # 13.2 GB of bf16 weights
    with pytest.raises(ValueError, match="must be > 0"):
        gpu.bandwidth_bound_tokens_per_s(0, 4.8e12)


def test_lora_flops_and_mfu_arithmetic(bench):
    gpu = bench("gpu")
    # 10 frozen (4 FLOPs each), 3 trainable (6 each), attention 12 * 2 layers * 8 hidden * 16 tokens
    assert gpu.lora_training_flops_per_token(10, 3, 2, 8, 16) == 40 + 18 + 3072
    assert gpu.model_flops_utilisation(1000.0, 1e9, 1e13) == pytest.approx(0.1)


@pytest.mark.parametrize("use_peft", [True, False])
def test_apply_lora_trains_the_stage_2_parameters(bench, tiny_config, use_peft):
    gpu = bench("gpu")
    model = gpu.build_model(tiny_config, torch.device("cpu"), torch.float32)
    frozen_before, _ = gpu.matmul_parameter_counts(model.requires_grad_(False))
    model.requires_grad_(True)
    hidden, inner, kv = 32, 64, 16  # tiny config: hidden 32, intermediate 64, 2 of 4 heads for k/v (head dim 8)
    shapes = [
        (hidden, hidden),
        (hidden, kv),
        (hidden, kv),
        (hidden, hidden),
        (hidden, inner),
        (hidden, inner),
        (inner, hidden),
    ]
    lora = 2 * sum(64 * (fan_in + fan_out) for fan_in, fan_out in shapes)  # r 64 on every linear layer of 2 layers
    trajectory_head = hidden * tiny_config.trajectory_dim + tiny_config.trajectory_dim

    trained, kind = gpu.apply_lora(model, use_peft=use_peft)
    assert kind == ("peft" if use_peft else "local")
    frozen, trainable = gpu.matmul_parameter_counts(trained)
    assert trainable == lora + trajectory_head
    assert frozen == frozen_before - trajectory_head  # the head's frozen original (peft keeps one) does no work
    names = [n for n, p in trained.named_parameters() if p.requires_grad]
    assert all("lora_" in n or "trajectory_head" in n for n in names)


def test_local_lora_starts_as_the_base_layer(bench):
    gpu = bench("gpu")
    base = torch.nn.Linear(8, 5)
    layer = gpu.LoRALinear(base, r=4, alpha=8, dropout=0.0)
    x = torch.randn(3, 8)
    torch.testing.assert_close(layer(x), base(x))
    assert not base.weight.requires_grad and layer.lora_A.weight.requires_grad and layer.scale == 2.0


def test_stage_2_constants_match_the_recipe(bench):
    recipe = yaml.safe_load((REPO / "training" / "configs" / "stage2.yaml").read_text())
    gpu = bench("gpu")
    assert (recipe["lora_r"], recipe["lora_alpha"], recipe["lora_dropout"]) == tuple(gpu.STAGE2_LORA.values())
    assert recipe["lora_target_modules"] is None  # every linear layer, as apply_lora does
    assert recipe["per_device_train_batch_size"] == gpu.GpuSettings().train_batch


def test_gpu_records_run_on_cpu_with_a_tiny_config(bench, tiny_config):
    gpu = bench("gpu")
    settings = gpu.GpuSettings(
        decode_tokens=2,
        question_text_tokens=12,
        train_batch=2,
        train_length=20,
        train_steps=1,
        repeats=1,
        compile_decode=False,
    )
    records = gpu.gpu_records(tiny_config, torch.device("cpu"), settings, "NVIDIA H200")
    assert [r["row"] for r in records] == [
        "gpu decode (dynamic cache)",
        "gpu decode (static cache)",
        "gpu prefill",
        "gpu stage-2 training",
    ]
    assert not [r for r in records if "error" in r]
    decode = records[0]["figures"]
    assert decode["bound_tokens_per_s_H200_spec"] == decode["bound_tokens_per_s_4.8TBps"]
    for record in records[:2]:  # eager variants: nothing compiled
        assert (record["figures"]["compiled_graphs"], record["figures"]["graph_breaks"]) == (0, 0)
    prefill = records[2]["figures"]
    assert prefill["time_to_first_token_s"] > prefill["vision_tower_s"] > 0
    assert prefill.get("flash_attention_2") == "not installed" or "time_to_first_token_flash_attention_2_s" in prefill
    assert records[0]["ratio"] == pytest.approx(decode["tokens_per_s"] / decode["bound_tokens_per_s_4.8TBps"])
    training = records[-1]
    assert training["ratio_is"].startswith("MFU") and training["figures"]["lora"] == "peft"
    flops = training["figures"]["model_tflops_per_token"] * 1e12
    assert training["ratio"] == pytest.approx(training["figures"]["tokens_per_s"] * flops / 989e12)


def test_gpu_row_is_skipped_without_cuda(bench, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (record,) = bench("gpu").row_gpu(bench("models").BenchSizes())
    assert "no CUDA device" in record["skipped"]
