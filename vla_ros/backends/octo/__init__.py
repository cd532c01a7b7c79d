"""Octo-design backend: task/observation/readout tokens, blockwise-causal transformer, diffusion head."""
