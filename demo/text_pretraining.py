"""A briefly pretrained tiny language model for the demo, standing in for Vicuna.

PiTe fine-tunes a pretrained Vicuna with LoRA; it never learns language from scratch. A randomly initialised tiny
Llama under LoRA would spend the demo's whole budget learning to spell. So, as with the frame encoder, the demo
first trains the tiny Llama as a plain causal LM on the world's text (captions, questions, answers, prompt
scaffolding: `world_corpus`), then hands it to the three PiTe stages, which train LoRA adapters on top as the paper
does. No video and no time/trajectory supervision is used here; the report states this choice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def pack_corpus(tokenizer, texts: Sequence[str], block_size: int) -> torch.Tensor:
    """Tokenize `texts` (each wrapped in <s> ... </s>) and cut the stream into (num_blocks, block_size) ids."""
    stream: list[int] = []
    for text in texts:
        stream += tokenizer(text, add_special_tokens=True)["input_ids"] + [tokenizer.eos_token_id]
    usable = len(stream) // block_size * block_size
    if usable == 0:
        raise ValueError(f"the corpus has {len(stream)} tokens, fewer than one block of {block_size}")
    return torch.tensor(stream[:usable]).reshape(-1, block_size)


def pretrain_language_model(
    text_config: LlamaConfig,
    blocks: torch.Tensor,
    steps: int = 200,
    batch_size: int = 16,
    learning_rate: float = 3e-3,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[LlamaForCausalLM, dict[str, float]]:
    """Train a `LlamaForCausalLM` of `text_config` on packed `blocks` (M, T); returns it and its first/last loss."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(text_config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=steps, pct_start=0.1)
    first = last = float("nan")
    for step in range(steps):
        rows = torch.randint(0, blocks.shape[0], (batch_size,), generator=generator)
        batch = blocks[rows]
        loss = model(input_ids=batch, labels=batch, use_cache=False).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        last = loss.item()
        if step == 0:
            first = last
        if progress is not None:
            progress(step, last)
    return model.eval(), {"initial_loss": first, "final_loss": last}
