"""A word-level tokenizer whose vocabulary ships in the checkpoint's config (runs offline)."""

from __future__ import annotations

import re

import numpy as np

PAD, UNK = 0, 1


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class WordTokenizer:
    def __init__(self, vocab: tuple[str, ...], max_tokens: int):
        self.index = {w: i + 2 for i, w in enumerate(vocab)}
        self.max_tokens = max_tokens

    @property
    def vocab_size(self) -> int:
        return len(self.index) + 2

    def __call__(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Token ids (max_tokens,) int64 and the valid mask (max_tokens,) bool."""
        ids = [self.index.get(w, UNK) for w in words(text)][: self.max_tokens]
        out = np.full(self.max_tokens, PAD, np.int64)
        out[: len(ids)] = ids
        return out, out != PAD

    @staticmethod
    def build_vocab(texts: list[str]) -> tuple[str, ...]:
        return tuple(sorted({w for t in texts for w in words(t)}))
