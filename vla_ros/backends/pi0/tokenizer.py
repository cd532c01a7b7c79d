"""The prompt tokenizer of π₀: PaliGemma's SentencePiece model, openpi's `PaligemmaTokenizer` format.

Prompt -> BOS + pieces of the cleaned prompt + pieces of "\\n" (the start-of-answer marker),
right-padded with id 0 (mask False) or truncated to `max_len`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sentencepiece


def clean_prompt(prompt: str) -> str:
    """openpi's cleaning: strip, underscores and newlines to spaces."""
    return prompt.strip().replace("_", " ").replace("\n", " ")


class PaligemmaTokenizer:
    def __init__(self, model_file: Path, max_len: int = 48):
        self.max_len = max_len
        self.processor = sentencepiece.SentencePieceProcessor(model_proto=Path(model_file).read_bytes())

    def __call__(self, prompt: str) -> tuple[np.ndarray, np.ndarray]:
        """ids (max_len,) int64 and valid mask (max_len,) bool."""
        ids = self.processor.encode(clean_prompt(prompt), add_bos=True) + self.processor.encode("\n")
        ids = ids[: self.max_len]
        out = np.zeros(self.max_len, dtype=np.int64)
        out[: len(ids)] = ids
        return out, np.arange(self.max_len) < len(ids)
