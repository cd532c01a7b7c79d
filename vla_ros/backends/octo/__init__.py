"""Octo backend: task/observation/readout tokens, Octo's group attention, diffusion head (one model, modeling.py)."""
