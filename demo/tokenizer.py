"""A Llama-style tokenizer trained offline on a small corpus.

Real PiTe uses Vicuna's 32k SentencePiece vocabulary, which cannot be downloaded here. The demo and the
tests need a tokenizer with the same *behaviour* (BPE with byte fallback, a Metaspace "▁" pre-tokenizer,
`<s>`/`</s>`/`<unk>`, left padding) so that every code path that touches tokenization is the real one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import LlamaTokenizer

VIDEO_TOKEN = "<video>"
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"]
# Byte-fallback tokens, as in Llama's vocabulary: any character outside the trained alphabet still encodes.
BYTE_TOKENS = [f"<0x{i:02X}>" for i in range(256)]


def train_llama_tokenizer(texts: Iterable[str], vocab_size: int = 1000) -> LlamaTokenizer:
    """Train a byte-fallback BPE tokenizer on `texts` and wrap it as a transformers `LlamaTokenizer`.

    The returned tokenizer has `<video>` registered as an additional special token (one id, never split),
    `pad_token = <unk>` (Vicuna's convention) and left padding for batched generation.

    Args:
        texts: the training corpus, one string per document.
        vocab_size: target vocabulary size, special and byte tokens included. Must exceed 259 + 3.
    """
    minimum = len(SPECIAL_TOKENS) + len(BYTE_TOKENS) + 1
    if vocab_size <= minimum:
        raise ValueError(f"vocab_size must be > {minimum} (special + byte-fallback tokens), got {vocab_size}")
    backend = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    # Train on "▁"-prefixed words (split=True) so merges look like Llama's ("▁circle"), never spanning words.
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS + BYTE_TOKENS,
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    vocab = backend.get_vocab()
    merges = [tuple(m) for m in json.loads(backend.to_str())["model"]["merges"]]
    tokenizer = LlamaTokenizer(vocab=vocab, merges=merges, legacy=False, add_prefix_space=True, add_bos_token=True)
    tokenizer.add_special_tokens({"additional_special_tokens": [VIDEO_TOKEN]})
    tokenizer.pad_token = tokenizer.unk_token
    tokenizer.padding_side = "left"
    return tokenizer
