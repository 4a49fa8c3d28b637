"""One rank of the 2-process CPU FSDP test (launched by test_fsdp.py with `accelerate launch --config_file
training/configs/accelerate/fsdp.yaml`; not collected by pytest).

argv: input_checkpoint output_dir resumed_output_dir data_file media_dir. Trains stage 2 for 3 steps (global batch 4,
lora_dropout 0, a sharded checkpoint at step 2) on CPU with gloo into output_dir; then, in resumed_output_dir, resumes
a copy of that step-2 checkpoint to step 3. Rank 0 writes each run's merged weights to {output}/gathered.safetensors.
"""

import os
import shutil
import sys

import torch

torch.set_num_threads(1)

from safetensors.torch import save_file  # noqa: E402

from pite.training import run_stage  # noqa: E402

OVERRIDES = dict(
    use_cpu=True,
    ddp_backend="gloo",
    bf16=False,
    gradient_checkpointing=False,
    per_device_train_batch_size=1,
    global_batch_size=4,
    dataloader_num_workers=0,
    lora_r=4,
    lora_alpha=8,
    lora_dropout=0.0,
    logging_steps=1,
    save_strategy="steps",
    save_steps=2,
    learning_rate=5e-3,
    warmup_steps=0,
    max_steps=3,
    max_length=256,
    report_to="none",
    seed=0,
    data_seed=0,
    disable_tqdm=True,
)


def enable_fsdp_on_cpu() -> None:
    """accelerate turns on FSDP only for accelerator process groups (MULTI_GPU, ...), never for MULTI_CPU. Join the
    gloo group on CPU, then label it MULTI_GPU before the Trainer builds its Accelerator: from there on accelerate's
    own FSDP2 path runs unchanged (fully_shard, sharded checkpoints, full state dict for saving) on CPU tensors."""
    from accelerate import PartialState
    from accelerate.utils import DistributedType

    state = PartialState(cpu=True, backend="gloo")
    assert state.distributed_type == DistributedType.MULTI_CPU and state.num_processes == 2
    PartialState._shared_state["distributed_type"] = DistributedType.MULTI_GPU


def train(source: str, output: str, data_file: str, media_dir: str, resume: bool) -> None:
    # use_configured_state: the Trainer keeps the process group prepared above instead of starting its own.
    overrides = {**OVERRIDES, "accelerator_config": {"use_configured_state": True}}
    run = run_stage(2, source, output, [data_file], media_dir, overrides=overrides, resume_from_checkpoint=resume)
    # One file per process and run: lines printed by two processes at once can interleave on the shared stdout.
    with open(os.path.join(output, f"distributed-rank{os.environ['RANK']}.txt"), "w", encoding="utf-8") as handle:
        handle.write(f"{run.trainer.accelerator.distributed_type} fsdp: {run.trainer.is_fsdp_enabled}\n")
    if run.trainer.accelerator.is_main_process:
        weights = {name: tensor.detach().contiguous() for name, tensor in run.model.state_dict().items()}
        save_file(weights, os.path.join(output, "gathered.safetensors"))


def main() -> None:
    source, output, resumed, data_file, media_dir = sys.argv[1:6]
    enable_fsdp_on_cpu()
    train(source, output, data_file, media_dir, resume=False)
    if int(os.environ["RANK"]) == 0:
        shutil.copytree(os.path.join(output, "checkpoint-2"), os.path.join(resumed, "checkpoint-2"))
    torch.distributed.barrier()
    train(source, resumed, data_file, media_dir, resume=True)


if __name__ == "__main__":
    main()
