"""Torch building blocks shared by backends: masked attention, samplers, embeddings."""
