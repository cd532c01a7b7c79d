"""The SmolVLM2 backbone's files this backend reads offline (`vlm_config.json`, tokenizer files), made at chosen
sizes for small test checkpoints: by the tiny checkpoint (tiny.py) and by the parity fixture script
(scripts/fixtures/make_smolvla_fixture.py, which imports this module in LeRobot's environment: keep it free of
other vla_ros imports; transformers and tokenizers are imported when called).
"""

from __future__ import annotations

from pathlib import Path

# SmolVLM2's special tokens, ids 0..3 in this order (the language model's pad_token_id is 3)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>")
ROLES = {"bos_token": "<|im_start|>", "eos_token": "<|endoftext|>", "pad_token": "<pad>"}


def sizes(width: int, mlp: int, layers: int, heads: int, **rest) -> dict:
    """A transformer's width, MLP width, depth and heads under transformers' config names, then `rest` as given."""
    return dict(hidden_size=width, intermediate_size=mlp, num_hidden_layers=layers, num_attention_heads=heads, **rest)


def smolvlm_config(vision: dict, text: dict, scale_factor: int, vocab: int):
    """transformers' SmolVLMConfig of a SmolVLM2 with the `vision` and `text` (Llama) sizes (see `sizes`), pixel
    shuffle `scale_factor` and a `vocab`-token vocabulary; the rest as SmolVLM2's (RMSNorm eps 1e-5, RoPE theta
    1e5, pad id 3, untied embeddings)."""
    from transformers import SmolVLMConfig

    return SmolVLMConfig(
        vision_config=dict(vision, model_type="smolvlm_vision"),
        text_config=dict(
            text, model_type="llama", vocab_size=vocab, rms_norm_eps=1e-5, rope_theta=100_000.0, pad_token_id=3
        ),
        scale_factor=scale_factor,
        vocab_size=vocab,
        tie_word_embeddings=False,
    )


def bpe_tokenizer(folder: Path, texts, vocab_size: int, special_tokens: tuple[str, ...] = SPECIAL_TOKENS, **roles):
    """A byte-level BPE tokenizer (SmolVLM2's kind) trained on `texts`, saved in `folder` as transformers files
    and returned (transformers' PreTrainedTokenizerFast). roles: special token roles besides `ROLES`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **ROLES, **roles)
    fast.save_pretrained(str(folder))
    return fast
