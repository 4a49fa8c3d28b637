import json
import subprocess
import sys
import textwrap

import torch
from safetensors.torch import load_file, save_file

from pite.modeling_pite import PiTeForConditionalGeneration

# Runs in a fresh interpreter where `import pite` is impossible, as on a user's machine that only has transformers.
CLEAN_LOADER = textwrap.dedent(
    """
    import importlib.abc, sys
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()
                        and "editable" not in getattr(f, "__name__", "").lower()]
    class BlockPite(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "pite" or name.startswith("pite."):
                raise ImportError("pite is not installed here")
    sys.meta_path.insert(0, BlockPite())
    try:
        import pite.modeling_pite
    except ImportError:
        pass
    else:
        raise SystemExit("pite must not be importable in this check")
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForImageTextToText
    model_dir, inputs_file, outputs_file = sys.argv[1:4]
    config = AutoConfig.from_pretrained(model_dir, trust_remote_code=True)
    assert type(config).__name__ == "PiTeConfig", type(config)
    for auto in (AutoModelForCausalLM, AutoModelForImageTextToText):
        assert type(auto.from_pretrained(model_dir, trust_remote_code=True)).__name__ == "PiTeForConditionalGeneration"
    model = AutoModel.from_pretrained(model_dir, trust_remote_code=True).eval()
    assert "pite" not in type(model).__module__.split(".")[0], type(model).__module__
    inputs = load_file(inputs_file)
    with torch.no_grad():
        out = model(**inputs)
        gen = model.generate(**inputs, max_new_tokens=3, return_dict_in_generate=True, pad_token_id=0)
    save_file({"logits": out.logits, "points": out.point_predictions, "trajectories": out.trajectory_predictions,
               "generated_trajectories": gen.trajectory_predictions}, outputs_file)
    """
)


def _inputs(make_video_prompt):
    torch.manual_seed(1)
    return {"input_ids": make_video_prompt(4)[None], "pixel_values_videos": torch.randn(1, 4, 3, 28, 28)}


def test_save_load_round_trip_is_bit_identical(tmp_path, tiny_model, make_video_prompt):
    inputs = _inputs(make_video_prompt)
    tiny_model.save_pretrained(tmp_path)
    loaded = PiTeForConditionalGeneration.from_pretrained(tmp_path).eval()
    for (name, a), (_, b) in zip(tiny_model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    with torch.no_grad():
        before, after = tiny_model(**inputs), loaded(**inputs)
    for key in ("logits", "point_predictions", "trajectory_predictions"):
        assert torch.equal(before[key], after[key]), key
    assert loaded.generation_config.bad_words_ids == [[tiny_model.config.video_token_id]]
    assert not any(p.requires_grad for p in loaded.model.vision_tower.parameters())


def test_saved_folder_is_self_contained_remote_code(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    remote_code = ("configuration_pite.py", "modeling_pite.py", "generation_pite.py", "losses_pite.py")
    assert {*remote_code, "config.json", "model.safetensors"} <= files
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_pite.PiTeForConditionalGeneration"
    for name in remote_code:
        source = (tmp_path / name).read_text()
        assert "import pite" not in source and "from pite" not in source, name


def test_remote_code_loads_without_the_package(tmp_path, tiny_model, make_video_prompt):
    model_dir = tmp_path / "model"
    inputs_file, outputs_file = tmp_path / "inputs.safetensors", tmp_path / "out.safetensors"
    tiny_model.save_pretrained(model_dir)
    inputs = _inputs(make_video_prompt)
    save_file(inputs, inputs_file)
    script = tmp_path / "load.py"
    script.write_text(CLEAN_LOADER)
    result = subprocess.run(
        [sys.executable, str(script), str(model_dir), str(inputs_file), str(outputs_file)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HF_HOME": str(tmp_path / "hf")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = load_file(outputs_file)
    with torch.no_grad():
        local = tiny_model(**inputs)
        generated = tiny_model.generate(**inputs, max_new_tokens=3, return_dict_in_generate=True, pad_token_id=0)
    assert torch.equal(remote["logits"], local.logits)
    assert torch.equal(remote["points"], local.point_predictions)
    assert torch.equal(remote["trajectories"], local.trajectory_predictions)
    # Incremental decoding on freshly loaded (differently laid out) weights may pick other matmul kernels:
    # equal to float rounding, not bit for bit.
    torch.testing.assert_close(remote["generated_trajectories"], generated.trajectory_predictions, rtol=0, atol=1e-6)


def test_device_map_and_attention_backends_load_and_agree(tmp_path, tiny_model, make_video_prompt):
    inputs = _inputs(make_video_prompt)
    tiny_model.save_pretrained(tmp_path)
    sdpa = PiTeForConditionalGeneration.from_pretrained(tmp_path, device_map="auto").eval()
    eager = PiTeForConditionalGeneration.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert sdpa.config.text_config._attn_implementation == "sdpa"
    assert eager.config.text_config._attn_implementation == "eager"
    with torch.no_grad():
        a, b = sdpa(**inputs), eager(**inputs)
    torch.testing.assert_close(a.trajectory_predictions, b.trajectory_predictions, rtol=0, atol=1e-5)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=1e-5)
