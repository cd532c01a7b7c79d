"""The prompt tokenizer of the π₀ family: PaliGemma's SentencePiece model, formatted as the checkpoint's origin does.

Prompt -> BOS + pieces, right-padded with id 0 (mask False) or truncated to `max_len`:
- π₀, openpi (`PaligemmaTokenizer`): the cleaned prompt, then "\\n" encoded on its own;
- π₀, LeRobot: `task + "\\n"` (newline added only if missing, no cleaning) encoded at once;
- π₀.5, both: "Task: <cleaned>, State: <bins>;\\nAction: " encoded at once, where the bins are
  the normalised state (D,) discretised into 256 bins over [-1, 1] (values outside give -1 or 255);
  a π₀.5 trained without the state in the prompt (openpi `discrete_state_input=False`, pi05_libero)
  takes π₀'s prompt and no state (openpi `models/tokenizer.py` `tokenize` with state None).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import sentencepiece

STATE_BINS = 256


def train_sentencepiece(texts, vocab_size: int, model_type: str = "unigram", **options) -> bytes:
    """A SentencePiece model (its bytes) trained on `texts` with PaliGemma's special ids (pad 0, eos 1, bos 2,
    unk 3), a "\\n" piece and no dummy prefix, for small test checkpoints (tiny.py, and the parity fixture
    script, which imports this module in LeRobot's environment); options: more of SentencePieceTrainer's."""
    out = io.BytesIO()
    special = dict(pad_id=0, eos_id=1, bos_id=2, unk_id=3, user_defined_symbols=["\n"])
    quiet = dict(hard_vocab_limit=False, minloglevel=2, num_threads=1)  # one thread: the same model every time
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=out,
        vocab_size=vocab_size,
        model_type=model_type,
        add_dummy_prefix=False,
        **special,
        **options,
        **quiet,
    )
    return out.getvalue()


def clean_prompt(prompt: str) -> str:
    """openpi's cleaning: strip, underscores and newlines to spaces."""
    return prompt.strip().replace("_", " ").replace("\n", " ")


def discretize_state(state: np.ndarray) -> np.ndarray:
    """Normalised state (D,) -> bin indices (D,) int, 256 bins over [-1, 1] (openpi's rule)."""
    return np.digitize(state, bins=np.linspace(-1, 1, STATE_BINS + 1)[:-1]) - 1


def prompt_segments(prompt: str, origin: str = "openpi", state: np.ndarray | None = None) -> list[str]:
    """The text pieces encoded one after the other (BOS before the first)."""
    if state is not None:
        bins = " ".join(map(str, discretize_state(state)))
        return [f"Task: {clean_prompt(prompt)}, State: {bins};\nAction: "]
    if origin == "lerobot":
        return [prompt if prompt.endswith("\n") else prompt + "\n"]
    return [clean_prompt(prompt), "\n"]


class PaligemmaTokenizer:
    def __init__(
        self,
        model_file: Path,
        max_len: int = 48,
        origin: str = "openpi",
        pi05: bool = False,
        state_in_prompt: bool | None = None,
    ):
        self.max_len = max_len
        self.origin = origin
        self.pi05 = pi05
        self.state_in_prompt = pi05 and state_in_prompt is not False  # π₀.5's discrete state input (default on)
        self.processor = sentencepiece.SentencePieceProcessor(model_proto=Path(model_file).read_bytes())

    def __call__(self, prompt: str, state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """ids (max_len,) int64 and valid mask (max_len,) bool. state: the normalised state (π₀.5 with the
        state in the prompt only; ignored otherwise)."""
        if self.state_in_prompt and state is None:
            raise ValueError("π₀.5 prompts carry the normalised state: pass `state`")
        segments = prompt_segments(prompt, self.origin, state if self.state_in_prompt else None)
        ids = [i for k, text in enumerate(segments) for i in self.processor.encode(text, add_bos=k == 0)]
        ids = ids[: self.max_len]
        out = np.zeros(self.max_len, dtype=np.int64)
        out[: len(ids)] = ids
        return out, np.arange(self.max_len) < len(ids)
