"""π₀ backend (openpi's flow-matching VLA): PaliGemma prefix + Gemma action expert, real checkpoints."""
