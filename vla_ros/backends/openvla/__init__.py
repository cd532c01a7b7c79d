"""OpenVLA backend (Prismatic VLM: fused DINOv2 + SigLIP towers, Llama-2, 256-bin action tokens), real checkpoints."""
