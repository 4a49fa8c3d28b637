"""One rank of the 2-process CPU DDP test (launched by test_ddp.py with torchrun; not collected by pytest).

argv: base_checkpoint output_dir data_file media_dir. Trains stage 1 for 2 steps with gloo and writes this rank's
merged weights to {output_dir}/rank{RANK}.safetensors and its logged loss terms to rank{RANK}_log.json.
"""

import json
import os
import sys

import torch

torch.set_num_threads(1)

from safetensors.torch import save_file  # noqa: E402

from pite.training import run_stage  # noqa: E402


def main() -> None:
    base, output, data_file, media_dir = sys.argv[1:5]
    overrides = dict(
        use_cpu=True,
        ddp_backend="gloo",
        bf16=False,
        gradient_checkpointing=False,
        per_device_train_batch_size=1,
        global_batch_size=4,
        dataloader_num_workers=0,
        lora_r=4,
        lora_alpha=8,
        logging_steps=1,
        save_strategy="no",
        learning_rate=5e-3,
        warmup_steps=0,
        max_steps=2,
        max_length=256,
        report_to="none",
        seed=0,
        disable_tqdm=True,
    )
    run = run_stage(1, base, output, [data_file], media_dir, overrides=overrides)
    assert run.config.world_size == 2 and run.config.gradient_accumulation_steps == 2
    rank = int(os.environ["RANK"])
    weights = {name: tensor.detach().contiguous() for name, tensor in run.model.state_dict().items()}
    save_file(weights, os.path.join(output, f"rank{rank}.safetensors"))
    terms = [{k: v for k, v in entry.items() if k.endswith("_loss")} for entry in run.trainer.state.log_history]
    with open(os.path.join(output, f"rank{rank}_log.json"), "w", encoding="utf-8") as handle:
        json.dump(terms, handle)


if __name__ == "__main__":
    main()
